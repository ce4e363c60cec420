//! Waiting for a pool to make progress without polling:
//! [`Pool::wait_for_change`] (a progress bar redraws when items finish) and
//! [`Pool::join_timeout`] / [`Pool::join_until`] (wait for the end, but not
//! for ever, and keep the pool if it is not there yet).
//!
//! # The protocol
//!
//! A [`Progress`] is a flag, `armed`, and a lock with a condition variable
//! that waiters sleep on. A waiter, holding the lock, sets `armed`
//! (`SeqCst`), issues a `SeqCst` fence, and looks at what it waits for (the
//! counts, the flags, the workers still running); if that has not changed
//! it waits on the condition variable, which releases the lock. A
//! notifier, after its own change, reads `armed`; only if it is set does it
//! clear it (`swap`), take the lock and wake every waiter. So with nobody
//! waiting a notifier pays one load of a flag that is never written, and
//! with waiters only the first notifier after each arming takes the lock.
//!
//! Two kinds of notifier:
//!
//! - **After each job** ([`Progress::job_done`], in the worker loop): a
//!   relaxed load of `armed`, nothing else. Without a fence the load may
//!   miss a waiter that armed just now (the worker's count may still sit in
//!   its store buffer while the waiter reads the old one). That wake-up is
//!   late, not lost: the same worker notifies again after its next job, and
//!   always when it runs out of work.
//! - **After a change every waiter must see** ([`Progress::changed`]): a
//!   worker going idle (after it published its counts and gave its room
//!   back), a worker thread leaving, the pool closing or being cancelled.
//!   Here a `SeqCst` fence comes between the change and the load of
//!   `armed`. With the waiter's fence between its store of `armed` and its
//!   look, the two fences are ordered one way or the other: either the
//!   waiter's look sees the change, or the notifier's load sees `armed` (or
//!   a later value: a `false` from another notifier's swap, which then
//!   wakes the waiter). The waiter holds the lock from arming until it
//!   waits, and a notifier takes the lock before it wakes, so the wake-up
//!   cannot fall between the look and the wait.
//!
//! Hence `wait_for_change` returns at the latest when a worker that counted
//! an item finishes its next job or runs out of work, and `join_until` as
//! soon as the last worker has left; neither ever polls.

use std::sync::atomic::{AtomicBool, Ordering::Relaxed, Ordering::SeqCst, fence};
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crossbeam_utils::CachePadded;

use crate::{Pool, Report, Snapshot};

/// Where threads wait for a pool to change (see the module notes).
pub(crate) struct Progress {
    /// Set by a waiter that found nothing new; cleared by the first
    /// notifier that sees it. Read after every job: on a line of its own,
    /// which stays in every core's cache while nobody waits.
    armed: CachePadded<AtomicBool>,
    /// The number of waiting threads; its lock orders a waiter's last look
    /// before its wait against a notifier's wake-up.
    waiters: Mutex<usize>,
    changed: Condvar,
}

impl Progress {
    pub(crate) fn new() -> Self {
        Progress {
            armed: CachePadded::new(AtomicBool::new(false)),
            waiters: Mutex::new(0),
            changed: Condvar::new(),
        }
    }

    /// A worker finished a job: one relaxed load when nobody waits. May be
    /// late for a waiter that armed this very moment (see the module notes).
    #[inline]
    pub(crate) fn job_done(&self) {
        if self.armed.load(Relaxed) {
            self.wake();
        }
    }

    /// Something every waiter must see has changed (a worker went idle or
    /// left, the pool closed or was cancelled): a fence, then as
    /// [`job_done`](Progress::job_done). Not on the per-job path.
    #[inline]
    pub(crate) fn changed(&self) {
        fence(SeqCst);
        if self.armed.load(Relaxed) {
            self.wake();
        }
    }

    #[cold]
    #[inline(never)]
    fn wake(&self) {
        if self.armed.swap(false, SeqCst) {
            let _waiters = self.lock();
            self.changed.notify_all();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, usize> {
        // The lock guards a count that no user code touches.
        self.waiters.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits until `ready` says so or `deadline` (if any) passes; returns
    /// whether `ready` did. `ready` runs under the lock, after the arming
    /// fence: keep it to a few loads.
    pub(crate) fn wait_until(
        &self,
        deadline: Option<Instant>,
        mut ready: impl FnMut() -> bool,
    ) -> bool {
        let mut waiters = self.lock();
        *waiters += 1;
        let outcome = loop {
            self.armed.store(true, SeqCst);
            fence(SeqCst);
            if ready() {
                break true;
            }
            waiters = match deadline {
                None => self
                    .changed
                    .wait(waiters)
                    .unwrap_or_else(PoisonError::into_inner),
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        break false;
                    }
                    self.changed
                        .wait_timeout(waiters, deadline - now)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
            };
        };
        *waiters -= 1;
        if *waiters == 0 {
            // Nobody left to wake: spare the workers the one wake-up.
            self.armed.store(false, Relaxed);
        }
        outcome
    }
}

/// What a progress waiter compares: the counts a worker changes and the
/// flags a close or cancel changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Mark {
    finished: u64,
    errors: u64,
    closed: bool,
    cancelled: bool,
}

impl Mark {
    fn of(snapshot: &Snapshot) -> Self {
        Mark {
            finished: snapshot.finished(),
            errors: snapshot.error_total,
            closed: snapshot.closed,
            cancelled: snapshot.cancelled,
        }
    }
}

impl<T: Send + 'static, S> Pool<T, S> {
    /// The mark of the pool right now: a few loads, no lock but the shards'.
    fn mark(&self) -> Mark {
        let shared = self.shared();
        Mark {
            finished: shared.ledger.finished(),
            errors: shared.ledger.error_total(),
            closed: shared.capacity.is_closed(),
            cancelled: shared.token.is_cancelled(),
        }
    }

    /// Waits until the pool has moved on from `since` (an earlier
    /// [`metrics`](Pool::metrics) snapshot) and returns a fresh snapshot;
    /// `None` if `timeout` passed first. A progress bar redraws on each
    /// change instead of sleeping and polling.
    ///
    /// A change is: more items finished (processed, failed or dropped),
    /// more errors, the pool closed, or the pool cancelled. Items submitted
    /// or reserved room are not changes (producers do not notify). Returns
    /// at once if `since` is already out of date. Any number of threads may
    /// wait at once; a worker of this very pool should not (it would wait
    /// for itself).
    ///
    /// **Cost.** Nothing on the items' path while nobody waits: a worker
    /// reads one flag after each job (a batch, or a lone item) and notifies
    /// only when a waiter set it, at most once per wait. While a thread
    /// waits, the first worker to finish a job takes the waiter's lock once
    /// to wake it. So the wake-up comes when a job ends: at the latest when
    /// the worker that counted an item finishes its next job or runs out of
    /// work (see `progress.rs`); the counts of a job in progress are not
    /// seen before it ends.
    ///
    /// ```
    /// use pool_core::{Ctx, Pool};
    /// use std::time::Duration;
    ///
    /// let pool = Pool::builder().workers(2).build(|_ctx: &Ctx, _n: u64| Ok::<(), std::io::Error>(()))?;
    /// std::thread::scope(|scope| -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    ///     let pool = &pool;
    ///     scope.spawn(move || {
    ///         let _ = pool.run(0..10_000);
    ///         pool.close(); // a change too: the loop below sees the end
    ///     });
    ///     let mut snapshot = pool.metrics();
    ///     while !(snapshot.closed && snapshot.finished() == snapshot.submitted) {
    ///         // draw(&snapshot);
    ///         snapshot = pool
    ///             .wait_for_change(&snapshot, Duration::from_millis(200))
    ///             .unwrap_or_else(|| pool.metrics()); // redraw now and then anyway
    ///     }
    ///     assert_eq!(snapshot.finished(), 10_000);
    ///     Ok(())
    /// })?;
    /// assert_eq!(pool.wait()?.processed(), 10_000);
    /// # Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
    /// ```
    pub fn wait_for_change(&self, since: &Snapshot, timeout: Duration) -> Option<Snapshot> {
        let since = Mark::of(since);
        let deadline = Instant::now().checked_add(timeout);
        let changed = self
            .shared()
            .progress
            .wait_until(deadline, || self.mark() != since);
        changed.then(|| self.metrics())
    }

    /// [`join`](Pool::join) with a time limit: closes the pool, waits up to
    /// `timeout` for every accepted item to finish and every worker to
    /// leave, and returns the report; if the time runs out first, hands the
    /// pool back (closed, still draining) so the caller can wait again,
    /// [`cancel`](Pool::cancel) it, or drop it (which joins).
    ///
    /// The report holds the run's errors as `join`'s does;
    /// [`Report::into_result`] makes of it what [`wait`](Pool::wait) would
    /// return. With [`Builder::resume_panics`](crate::Builder::resume_panics),
    /// a caught panic is re-raised here, as by `join`. The wait is for the
    /// last worker's exit, which wakes it (no polling); the threads are then
    /// joined, which returns at once.
    ///
    /// ```
    /// use pool_core::{Ctx, Pool};
    /// use std::sync::mpsc;
    /// use std::time::Duration;
    ///
    /// let (release, gate) = mpsc::channel::<()>();
    /// let gate = std::sync::Mutex::new(gate);
    /// let pool = Pool::builder().workers(1).build(move |_ctx: &Ctx, _n: u32| {
    ///     gate.lock().expect("one worker").recv() // each item waits for a release
    /// })?;
    /// pool.sender().send(1)?;
    /// // Not done in time: the pool comes back.
    /// let pool = pool.join_timeout(Duration::from_millis(10)).expect_err("the item waits");
    /// assert!(pool.is_closed());
    /// release.send(())?;
    /// let report = pool.join_timeout(Duration::from_secs(60)).expect("released");
    /// assert_eq!(report.processed(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn join_timeout(self, timeout: Duration) -> Result<Report, Pool<T, S>> {
        match Instant::now().checked_add(timeout) {
            Some(deadline) => self.join_until(deadline),
            None => Ok(self.join()),
        }
    }

    /// [`join_timeout`](Pool::join_timeout) with a deadline: the report if
    /// the pool finished by `deadline`, else the pool back (closed).
    pub fn join_until(self, deadline: Instant) -> Result<Report, Pool<T, S>> {
        if self.drained_by(deadline) {
            Ok(self.join())
        } else {
            Err(self)
        }
    }

    /// [`join_with_workers`](Pool::join_with_workers) with a time limit: the
    /// report and what each worker left if the pool finished within
    /// `timeout`, else the pool back (closed, still draining), with the
    /// workers' states still in it. `join_timeout` on a pool built with
    /// [`keep_workers`](crate::Builder::keep_workers) or
    /// [`keep_state`](crate::Builder::keep_state) drops the states; this
    /// keeps them.
    ///
    /// ```
    /// use pool_core::{Ctx, Pool};
    /// use std::time::Duration;
    ///
    /// type Work = fn(&Ctx, u32) -> Result<(), std::io::Error>;
    /// let pool = Pool::builder()
    ///     .workers(2)
    ///     .keep_state(|ctx: &Ctx, _work: Work| ctx.counts().processed)
    ///     .build_stateful(|_ctx: &Ctx| -> Work { |_ctx, _n| Ok(()) })?;
    /// pool.submitter().submit_iter(0..100)?;
    /// let (report, processed) = pool
    ///     .join_with_workers_timeout(Duration::from_secs(60))
    ///     .expect("a hundred empty items finish in time");
    /// assert_eq!(report.processed(), 100);
    /// assert_eq!(processed.iter().sum::<u64>(), 100);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn join_with_workers_timeout(
        self,
        timeout: Duration,
    ) -> Result<(Report, Vec<S>), Pool<T, S>> {
        match Instant::now().checked_add(timeout) {
            Some(deadline) => self.join_with_workers_until(deadline),
            None => Ok(self.join_with_workers()),
        }
    }

    /// [`join_with_workers_timeout`](Pool::join_with_workers_timeout) with a
    /// deadline.
    pub fn join_with_workers_until(
        self,
        deadline: Instant,
    ) -> Result<(Report, Vec<S>), Pool<T, S>> {
        if self.drained_by(deadline) {
            Ok(self.join_with_workers())
        } else {
            Err(self)
        }
    }

    /// Closes the pool and waits until every worker left or `deadline`
    /// passed; true if they all left.
    fn drained_by(&self, deadline: Instant) -> bool {
        self.close();
        let shared = self.shared();
        shared
            .progress
            .wait_until(Some(deadline), || shared.exits.all_left())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ready_waiter_returns_without_waiting_and_disarms() {
        let progress = Progress::new();
        assert!(progress.wait_until(None, || true));
        assert!(!progress.armed.load(SeqCst));
        // Nobody waits: notifying does nothing, and needs no lock.
        progress.job_done();
        progress.changed();
    }

    #[test]
    fn a_waiter_past_its_deadline_reports_no_change() {
        let progress = Progress::new();
        assert!(!progress.wait_until(Some(Instant::now()), || false));
    }

    #[test]
    fn a_change_wakes_a_waiter() {
        let progress = Progress::new();
        let flag = AtomicBool::new(false);
        std::thread::scope(|scope| {
            let waiter = scope.spawn(|| progress.wait_until(None, || flag.load(SeqCst)));
            flag.store(true, SeqCst);
            progress.changed();
            assert!(waiter.join().expect("waiter thread"));
        });
    }
}
