//! The whole process's CPU time and context switches, exited threads included,
//! from `getrusage(RUSAGE_SELF)`: what W7 reports per repetition.
//!
//! Why not [`crate::procfs`]: its per-thread CPU figures
//! (`/proc/self/task/*/schedstat`) lose every thread that exits inside the
//! measured window, and the crossbeam-channel and workforce pools' threads
//! exit exactly there (at `join`/`wait`); its process-wide fallback
//! (`/proc/self/stat`) counts in 10 ms ticks and has no context switches at
//! all; and `voluntary_ctxt_switches` in `/proc/self/status` is the main
//! thread's alone. `getrusage` counts the live and the exited threads of the
//! process, CPU in microseconds, switches exactly; `nix` wraps it safely
//! (std does not wrap it).

use std::time::Duration;

/// What the process has used so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Usage {
    /// User plus system CPU time, all threads (exited ones included).
    pub(crate) cpu: Duration,
    /// Voluntary context switches (a thread blocked: a lock, a channel, a park).
    pub(crate) voluntary: u64,
    /// Involuntary context switches (a thread was preempted).
    pub(crate) involuntary: u64,
}

/// Where the figures come from, for the report.
pub(crate) const SOURCE: &str = "getrusage(RUSAGE_SELF): user+sys CPU (µs) and voluntary + \
     involuntary context switches of every thread of the process, exited ones included";

impl Usage {
    /// What was used between `self` (earlier) and `later`.
    pub(crate) fn until(self, later: Self) -> Self {
        Self {
            cpu: later.cpu.saturating_sub(self.cpu),
            voluntary: later.voluntary.saturating_sub(self.voluntary),
            involuntary: later.involuntary.saturating_sub(self.involuntary),
        }
    }
}

/// The process's usage now, or `None` where `getrusage` is missing or fails.
#[cfg(unix)]
pub(crate) fn usage() -> Option<Usage> {
    use nix::sys::resource::{UsageWho, getrusage};
    use nix::sys::time::TimeValLike as _;

    let raw = getrusage(UsageWho::RUSAGE_SELF).ok()?;
    let micros =
        |time: nix::sys::time::TimeVal| u64::try_from(time.num_microseconds()).unwrap_or(0);
    Some(Usage {
        cpu: Duration::from_micros(micros(raw.user_time()) + micros(raw.system_time())),
        voluntary: u64::try_from(raw.voluntary_context_switches()).unwrap_or(0),
        involuntary: u64::try_from(raw.involuntary_context_switches()).unwrap_or(0),
    })
}

/// No `getrusage` here: the figures are reported as n/a.
#[cfg(not(unix))]
pub(crate) fn usage() -> Option<Usage> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_grows_with_work_and_counts_exited_threads() {
        if !cfg!(unix) {
            return;
        }
        let before = usage().expect("getrusage works on unix");
        // A thread that burns some CPU, parks once (a voluntary switch) and exits.
        std::thread::spawn(|| {
            let mut value = 1_u64;
            for round in 0..20_000_000_u64 {
                value = std::hint::black_box(value.wrapping_mul(31).wrapping_add(round));
            }
            std::thread::sleep(Duration::from_millis(2));
            value
        })
        .join()
        .expect("the thread runs");
        let used = before.until(usage().expect("getrusage works on unix"));
        assert!(used.cpu > Duration::ZERO, "{used:?}");
        assert!(used.voluntary >= 1, "{used:?}");
    }
}
