//! The process's CPU time and memory as the OS counts them, read from Linux's
//! `/proc` with the standard library only. Elsewhere every reader returns
//! `None` and the measurements that need it say "n/a".

use std::collections::BTreeMap;
use std::time::Duration;

/// Clock ticks per second of the `utime`/`stime` fields of `/proc/self/stat`
/// (`USER_HZ`). It is 100 on every mainstream Linux configuration; reading it
/// properly needs `sysconf`, which std does not expose.
const USER_HZ: u64 = 100;

/// CPU time used so far, in the most precise form available.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CpuSnapshot {
    /// Per thread id, nanoseconds on CPU (`/proc/self/task/*/schedstat`).
    PerThread(BTreeMap<u64, u64>),
    /// `utime + stime` of the whole process in `USER_HZ` ticks (`/proc/self/stat`).
    Ticks(u64),
}

/// CPU time used between two snapshots, and how it was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CpuUsed {
    /// CPU time, all threads added up.
    pub(crate) time: Duration,
    /// Where the figure comes from (and so how precise it is).
    pub(crate) source: &'static str,
}

/// Reads the CPU time of every thread of this process, falling back to the
/// process totals when the per-thread figures cannot be read.
pub(crate) fn cpu_snapshot() -> Option<CpuSnapshot> {
    per_thread_cpu().map(CpuSnapshot::PerThread).or_else(|| {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        parse_stat_ticks(&stat).map(CpuSnapshot::Ticks)
    })
}

/// `/proc/self/task/<tid>/schedstat` for every live thread.
fn per_thread_cpu() -> Option<BTreeMap<u64, u64>> {
    let mut times = BTreeMap::new();
    for entry in std::fs::read_dir("/proc/self/task").ok()? {
        let Ok(entry) = entry else { continue };
        let Some(tid) = entry
            .file_name()
            .to_str()
            .and_then(|name| name.parse().ok())
        else {
            continue;
        };
        // A thread that ended since the directory was listed has no file: skip it.
        if let Ok(text) = std::fs::read_to_string(entry.path().join("schedstat"))
            && let Some(on_cpu) = parse_schedstat(&text)
        {
            times.insert(tid, on_cpu);
        }
    }
    (!times.is_empty()).then_some(times)
}

/// The CPU time used between `before` and `after`. Per thread, a thread that
/// started in between counts from zero; one that ended in between is lost,
/// which is why the measurements keep their threads alive across the window.
pub(crate) fn cpu_used(before: &CpuSnapshot, after: &CpuSnapshot) -> Option<CpuUsed> {
    match (before, after) {
        (CpuSnapshot::PerThread(before), CpuSnapshot::PerThread(after)) => {
            let nanos: u64 = after
                .iter()
                .map(|(tid, now)| now.saturating_sub(before.get(tid).copied().unwrap_or(0)))
                .sum();
            Some(CpuUsed {
                time: Duration::from_nanos(nanos),
                source: "per-thread /proc/self/task/*/schedstat (ns)",
            })
        }
        (CpuSnapshot::Ticks(before), CpuSnapshot::Ticks(after)) => Some(CpuUsed {
            time: Duration::from_millis(after.saturating_sub(*before) * 1_000 / USER_HZ),
            source: "/proc/self/stat utime+stime (10 ms ticks)",
        }),
        _ => None,
    }
}

/// The first field of a `schedstat` file: nanoseconds spent on a CPU.
pub(crate) fn parse_schedstat(text: &str) -> Option<u64> {
    text.split_whitespace().next()?.parse().ok()
}

/// `utime + stime` (fields 14 and 15) of a `/proc/<pid>/stat` line. The command
/// name in field 2 may contain spaces and parentheses, so fields are counted
/// from the last `)`.
pub(crate) fn parse_stat_ticks(text: &str) -> Option<u64> {
    let after_name = &text[text.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some(user + system)
}

/// The resident set now and its peak, in KiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MemoryStatus {
    /// `VmRSS`: resident now.
    pub(crate) rss_kib: u64,
    /// `VmHWM`: the peak resident set (since the start or the last reset).
    pub(crate) peak_kib: u64,
}

/// Reads `VmRSS` and `VmHWM` from `/proc/self/status`.
pub(crate) fn memory_status() -> Option<MemoryStatus> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    Some(MemoryStatus {
        rss_kib: parse_status_kib(&status, "VmRSS")?,
        peak_kib: parse_status_kib(&status, "VmHWM")?,
    })
}

/// Just `VmRSS`, for sampling in a loop.
pub(crate) fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_status_kib(&status, "VmRSS")
}

/// The value of a `Key:   1234 kB` line of `/proc/<pid>/status`, in KiB.
pub(crate) fn parse_status_kib(status: &str, key: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        if name != key {
            return None;
        }
        let mut parts = value.split_whitespace();
        let amount: u64 = parts.next()?.parse().ok()?;
        match parts.next() {
            Some("kB") | None => Some(amount),
            Some(_) => None,
        }
    })
}

/// Resets `VmHWM` to the current resident set (Linux 4.0 and later: writing 5
/// to `/proc/self/clear_refs`). Returns whether it worked.
pub(crate) fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines_parse_in_kib() {
        let status = "Name:\tpeer-bench\nVmHWM:\t   10240 kB\nVmRSS:\t    8192 kB\nThreads:\t9\n";
        assert_eq!(parse_status_kib(status, "VmRSS"), Some(8_192));
        assert_eq!(parse_status_kib(status, "VmHWM"), Some(10_240));
        assert_eq!(parse_status_kib(status, "VmSwap"), None);
        assert_eq!(parse_status_kib("VmRSS:\t12 MB\n", "VmRSS"), None);
        // `VmRSS` must not match a longer key that starts the same way.
        assert_eq!(parse_status_kib("VmRSSx:\t1 kB\n", "VmRSS"), None);
    }

    #[test]
    fn stat_ticks_skip_a_command_name_with_spaces_and_parentheses() {
        let stat = "4924 (a (b) c) R 4918 4918 28929 0 -1 4194304 98 0 0 0 56 2 0 0 20 0 1 0";
        assert_eq!(parse_stat_ticks(stat), Some(58));
        assert_eq!(parse_stat_ticks("garbage"), None);
        assert_eq!(parse_schedstat("576558771 713416 41\n"), Some(576_558_771));
        assert_eq!(parse_schedstat(""), None);
    }

    #[test]
    fn cpu_used_adds_per_thread_deltas_and_counts_new_threads_from_zero() {
        let before = CpuSnapshot::PerThread(BTreeMap::from([(1, 1_000), (2, 5_000)]));
        let after = CpuSnapshot::PerThread(BTreeMap::from([(1, 1_500), (2, 5_000), (3, 250)]));
        let used = cpu_used(&before, &after).expect("same kind of snapshot");
        assert_eq!(used.time, Duration::from_nanos(750));
        let ticks = cpu_used(&CpuSnapshot::Ticks(10), &CpuSnapshot::Ticks(13));
        assert_eq!(ticks.map(|used| used.time), Some(Duration::from_millis(30)));
        assert_eq!(cpu_used(&before, &CpuSnapshot::Ticks(1)), None);
    }

    #[test]
    fn this_process_can_be_read_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(cpu_snapshot().is_some());
            let memory = memory_status().expect("/proc/self/status is readable");
            assert!(memory.rss_kib > 0 && memory.peak_kib >= memory.rss_kib);
        }
    }
}
