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
//! process, CPU in microseconds, switches exactly. It needs the one `unsafe`
//! call below (std does not wrap it).

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
#[allow(unsafe_code)] // The one FFI call; the workspace denies unsafe elsewhere.
pub(crate) fn usage() -> Option<Usage> {
    let mut raw = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: `raw` points to a whole, writable `rusage`, which is all
    // getrusage writes; RUSAGE_SELF is a valid `who`.
    let status = unsafe { libc::getrusage(libc::RUSAGE_SELF, raw.as_mut_ptr()) };
    if status != 0 {
        return None;
    }
    // SAFETY: `rusage` is plain integers, so the zeroed value was already
    // valid, and getrusage succeeded in filling it in.
    let raw = unsafe { raw.assume_init() };
    let micros = |time: libc::timeval| {
        u64::try_from(time.tv_sec).unwrap_or(0) * 1_000_000
            + u64::try_from(time.tv_usec).unwrap_or(0)
    };
    Some(Usage {
        cpu: Duration::from_micros(micros(raw.ru_utime) + micros(raw.ru_stime)),
        voluntary: u64::try_from(raw.ru_nvcsw).unwrap_or(0),
        involuntary: u64::try_from(raw.ru_nivcsw).unwrap_or(0),
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
