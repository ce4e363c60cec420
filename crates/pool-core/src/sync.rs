//! The synchronisation primitives the pool's protocols are written with:
//! `loom`'s under `cfg(loom)`, so the model tests run the real protocol code
//! and not a copy of it, and `std`'s otherwise, where this module adds nothing.
//!
//! Two things differ in substance between the two builds, and both are here so
//! the protocol code reads the same in either:
//! - [`seq_cst_point`]: a `SeqCst` fence under loom, nothing otherwise;
//! - [`GateClock`] and [`Gate::wait_until`]: real time otherwise; under loom, a
//!   timed wait that may return at any point and then counts as timed out.

use std::sync::PoisonError;
use std::time::Instant;

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, fence};
#[cfg(not(loom))]
use std::sync::{Condvar, Mutex, MutexGuard};

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, fence};
#[cfg(loom)]
use loom::sync::{Condvar, Mutex, MutexGuard};

pub(crate) use std::sync::atomic::Ordering::{Acquire, Relaxed, Release, SeqCst};

/// Loom treats `SeqCst` loads and stores as `AcqRel` (its README, "Unsupported
/// features"), and a `SeqCst` load may even read around the newest write of a
/// read-modify-write. So it would report the store-buffering patterns of the
/// sleep and capacity protocols (each side writes one location and then reads
/// the other's) as lost wake-ups, although the C11 model forbids that outcome
/// for `SeqCst` accesses (and x86's locked instructions do too). Under loom, a
/// `SeqCst` fence, which loom does model, restores the guarantee the real code
/// gets from its `SeqCst` accesses; in normal builds this is nothing, so the
/// hot paths keep exactly their atomics.
#[inline(always)]
pub(crate) fn seq_cst_point() {
    #[cfg(loom)]
    fence(SeqCst);
}

/// One step of a short wait for another thread to finish a few
/// instructions: crossbeam's backoff normally; under loom a yield, which lets
/// the model run the other thread.
pub(crate) struct SpinWait {
    #[cfg(not(loom))]
    backoff: crossbeam_utils::Backoff,
}

impl SpinWait {
    pub(crate) fn new() -> Self {
        SpinWait {
            #[cfg(not(loom))]
            backoff: crossbeam_utils::Backoff::new(),
        }
    }

    pub(crate) fn snooze(&self) {
        #[cfg(not(loom))]
        self.backoff.snooze();
        #[cfg(loom)]
        loom::thread::yield_now();
    }
}

/// The time source of one timed wait loop.
///
/// Loom does not model time: its `Condvar::wait_timeout` never times out, and
/// `Instant::now()` would make a model's runs differ from one another, which
/// loom forbids. So under loom the clock is logical: it starts at the real
/// time once and then moves only when a timed wait returns, to that wait's end
/// (see [`Gate::wait_until`]). Otherwise it is `Instant::now()`.
pub(crate) struct GateClock {
    #[cfg(loom)]
    now: Instant,
}

impl GateClock {
    /// A clock for a wait loop that starts now.
    #[inline]
    pub(crate) fn start() -> Self {
        GateClock {
            #[cfg(loom)]
            now: Instant::now(),
        }
    }

    /// The current time.
    #[cfg(not(loom))]
    #[inline]
    pub(crate) fn now(&self) -> Instant {
        Instant::now()
    }

    /// The current (logical) time.
    #[cfg(loom)]
    pub(crate) fn now(&self) -> Instant {
        self.now
    }
}

/// A lock and its condition variable: where producers wait for room.
///
/// The lock guards no data (hence poisoning is ignored); it orders a waiter's
/// last check of its condition before its wait against a waker's notify.
pub(crate) struct Gate {
    lock: Mutex<()>,
    signal: Condvar,
}

/// The held lock of a [`Gate`].
pub(crate) type GateGuard<'a> = MutexGuard<'a, ()>;

impl Gate {
    pub(crate) fn new() -> Self {
        Gate {
            lock: Mutex::new(()),
            signal: Condvar::new(),
        }
    }

    /// Takes the lock.
    pub(crate) fn lock(&self) -> GateGuard<'_> {
        self.lock.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits for a notification (or a spurious wake-up).
    pub(crate) fn wait<'a>(&self, guard: GateGuard<'a>) -> GateGuard<'a> {
        self.signal
            .wait(guard)
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits for a notification until `until` (after `now`, as read from
    /// `clock`); may return early.
    #[cfg(not(loom))]
    pub(crate) fn wait_until<'a>(
        &'a self,
        guard: GateGuard<'a>,
        _clock: &mut GateClock,
        now: Instant,
        until: Instant,
    ) -> GateGuard<'a> {
        self.signal
            .wait_timeout(guard, until - now)
            .unwrap_or_else(PoisonError::into_inner)
            .0
    }

    /// Under loom a timed wait "may return at any time": it lets go of the
    /// lock, lets every other thread run as far as loom chooses, takes the
    /// lock again and counts as timed out (the clock jumps to `until`). Loom
    /// thus explores the wait ending before, between and after whatever the
    /// other threads do, which covers both a notification and a timeout; the
    /// caller's loop re-checks its condition either way. Loom's own
    /// `wait_timeout` would instead wait for a notification nobody owes a
    /// timed waiter, and report a deadlock the real code cannot have.
    #[cfg(loom)]
    pub(crate) fn wait_until<'a>(
        &'a self,
        guard: GateGuard<'a>,
        clock: &mut GateClock,
        _now: Instant,
        until: Instant,
    ) -> GateGuard<'a> {
        drop(guard);
        loom::thread::yield_now();
        clock.now = clock.now.max(until);
        self.lock()
    }

    /// Wakes every waiter. Taking the lock first means a waiter is either
    /// already waiting or has not yet made the check that would make it wait.
    pub(crate) fn notify_all(&self) {
        let _guard = self.lock();
        self.signal.notify_all();
    }
}

/// Runs a loom model and prints how many interleavings (iterations) loom
/// explored, which `cargo xtask loom` shows with `--nocapture`.
#[cfg(all(test, loom))]
pub(crate) fn check_model<F>(name: &str, model: F)
where
    F: Fn() + Send + Sync + 'static,
{
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize as StdAtomicUsize;

    // A std atomic, outside the model: it counts runs, it is not part of them.
    let iterations = Arc::new(StdAtomicUsize::new(0));
    let counter = Arc::clone(&iterations);
    let started = Instant::now();
    loom::model(move || {
        counter.fetch_add(1, Relaxed);
        model();
    });
    println!(
        "loom model {name}: {} iterations in {:.1?} (LOOM_MAX_PREEMPTIONS={})",
        iterations.load(Relaxed),
        started.elapsed(),
        std::env::var("LOOM_MAX_PREEMPTIONS").unwrap_or_else(|_| "unbounded".to_owned()),
    );
}
