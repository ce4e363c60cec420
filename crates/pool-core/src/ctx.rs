//! The context a worker gets with every call: its id, the cancellation
//! state (the pool's and a middleware's deadline), its counts and its metrics
//! shard.

use std::any::Any;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use pool_metrics::{Metrics, Shard};

use crate::report::WorkerCounts;
use crate::{CancelToken, Interrupted, WorkerId};

/// What a worker can see of its pool while it runs: its id, cancellation, its
/// counts and its metrics shard. One `Ctx` lives on each worker thread and is
/// passed by reference.
pub struct Ctx {
    pub(crate) worker: WorkerId,
    pub(crate) token: CancelToken,
    pub(crate) metrics: Arc<Metrics>,
    /// The origin of `deadline`.
    pub(crate) epoch: Instant,
    /// The current call's deadline as nanoseconds after `epoch`, plus one; 0 for
    /// none. Set by [`Ctx::with_deadline`] (the `Timeout` middleware).
    pub(crate) deadline: AtomicU64,
    /// The pool's shared state, with its item type erased, for
    /// [`Ctx::spawner`] (`spawn.rs`); `None` outside a pool's worker.
    pub(crate) pool: Option<Arc<dyn Any + Send + Sync>>,
    /// Whether the worker is in its run loop, where each call holds an
    /// item: only then may it spawn items (see `spawn.rs`). Written by the
    /// worker thread twice in its life.
    pub(crate) running: AtomicBool,
}

impl Ctx {
    pub(crate) fn new(worker: WorkerId, token: CancelToken, metrics: Arc<Metrics>) -> Self {
        Ctx {
            worker,
            token,
            metrics,
            epoch: Instant::now(),
            deadline: AtomicU64::new(0),
            pool: None,
            running: AtomicBool::new(false),
        }
    }

    /// The worker enters (`true`) or leaves its run loop.
    pub(crate) fn set_running(&self, running: bool) {
        self.running.store(running, Relaxed);
    }
}

impl fmt::Debug for Ctx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ctx")
            .field("worker", &self.worker)
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

impl Ctx {
    /// The id of the worker running this call.
    #[inline]
    pub fn worker_id(&self) -> WorkerId {
        self.worker
    }

    /// Whether the work should stop: the pool has been cancelled (explicitly,
    /// through its token, or by the first error under the stop-on-error policy),
    /// or the current call's [`deadline`](Ctx::deadline) has passed.
    /// Long-running work should poll it: a thread cannot be pre-empted, so a
    /// worker that never looks runs to its end.
    #[inline]
    pub fn is_cancelled(&self) -> bool {
        self.token.is_cancelled() || self.is_past_deadline()
    }

    /// `Err(Interrupted)` once the pool has been cancelled (explicitly,
    /// through its token, or by the first error under stop-on-error), `Ok`
    /// before: the `?`-friendly form of a cancellation check, for work that
    /// stops part-way when the pool shuts down.
    ///
    /// A worker that fails with this error, converted into its own error
    /// type or wrapped by middleware, has its item counted as **interrupted**
    /// (part of [`dropped`](crate::Report::dropped)), not as failed, and the
    /// error is not recorded: "stopped by the shutdown" stays apart from real
    /// failures. See [`Interrupted`] for how the pool recognises it.
    ///
    /// Unlike [`is_cancelled`](Ctx::is_cancelled), a passed
    /// [`deadline`](Ctx::deadline) does not make it fail: a late call is the
    /// `Timeout` middleware's failure, not an interruption. Check
    /// [`is_past_deadline`](Ctx::is_past_deadline) for that.
    ///
    /// ```
    /// use pool_core::{Ctx, Pool};
    ///
    /// let pool = Pool::builder().workers(1).build(|ctx: &Ctx, steps: u32| -> anyhow::Result<()> {
    ///     for step in 0..steps {
    ///         ctx.check()?; // before each expensive step
    ///         if step == 2 {
    ///             ctx.token().cancel(); // as a shutdown would, from anywhere
    ///         }
    ///     }
    ///     Ok(())
    /// })?;
    /// pool.sender().send(10)?;
    /// let report = pool.join();
    /// assert_eq!((report.processed(), report.failed()), (0, 0));
    /// assert_eq!((report.dropped(), report.interrupted()), (1, 1));
    /// assert!(report.errors().is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline]
    pub fn check(&self) -> Result<(), Interrupted> {
        if self.token.is_cancelled() {
            Err(Interrupted::new())
        } else {
            Ok(())
        }
    }

    /// The current call's deadline, if a [`with_deadline`](Ctx::with_deadline)
    /// (the `Timeout` middleware) set one.
    pub fn deadline(&self) -> Option<Instant> {
        match self.deadline.load(Relaxed) {
            0 => None,
            nanos => Some(self.epoch + Duration::from_nanos(nanos - 1)),
        }
    }

    /// Whether the current call has a deadline and it has passed. Reads the
    /// clock only when there is a deadline.
    #[inline]
    pub fn is_past_deadline(&self) -> bool {
        self.deadline.load(Relaxed) != 0 && self.deadline().is_some_and(|at| Instant::now() >= at)
    }

    /// Runs `call` with `deadline` as this worker's deadline (or the earlier one
    /// already set, when deadlines nest), and restores the previous deadline
    /// afterwards, also when `call` panics. Inside, [`deadline`](Ctx::deadline)
    /// and [`is_cancelled`](Ctx::is_cancelled) report it.
    ///
    /// ```
    /// use pool_core::{Ctx, Pool};
    /// use std::time::{Duration, Instant};
    ///
    /// let pool = Pool::builder().workers(1).build(|ctx: &Ctx, _n: u32| {
    ///     assert_eq!(ctx.deadline(), None);
    ///     let soon = Instant::now() + Duration::from_secs(60);
    ///     ctx.with_deadline(soon, || assert_eq!(ctx.deadline(), Some(soon)));
    ///     assert_eq!(ctx.deadline(), None);
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// pool.submitter().submit(1)?;
    /// assert_eq!(pool.wait()?.processed(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_deadline<R>(&self, deadline: Instant, call: impl FnOnce() -> R) -> R {
        /// Puts the previous deadline back, also on unwind.
        struct Restore<'ctx> {
            ctx: &'ctx Ctx,
            previous: u64,
        }
        impl Drop for Restore<'_> {
            fn drop(&mut self) {
                self.ctx.deadline.store(self.previous, Relaxed);
            }
        }
        let previous = self.deadline.load(Relaxed);
        let nanos = u64::try_from(deadline.saturating_duration_since(self.epoch).as_nanos())
            .unwrap_or(u64::MAX - 1)
            .saturating_add(1);
        let effective = if previous == 0 {
            nanos
        } else {
            previous.min(nanos)
        };
        self.deadline.store(effective, Relaxed);
        let _restore = Restore {
            ctx: self,
            previous,
        };
        call()
    }

    /// The pool's cancellation token, to hand to code that takes one or to cancel
    /// the pool from inside a worker.
    pub fn token(&self) -> &CancelToken {
        &self.token
    }

    /// This worker's counts so far (the current item is not counted yet).
    pub fn counts(&self) -> WorkerCounts {
        WorkerCounts::of(self.metrics())
    }

    /// This worker's metrics shard: custom counters by name
    /// ([`inc`](Shard::inc), [`add`](Shard::add), [`get`](Shard::get)) or by
    /// handle ([`counter`](Shard::counter), resolved once). They show in
    /// [`Pool::metrics`](crate::Pool::metrics) while the pool runs and in
    /// [`Report::stats`](crate::Report::stats) at the end, summed over workers.
    ///
    /// ```
    /// use pool_core::{Ctx, Pool};
    ///
    /// let pool = Pool::builder().workers(2).build(|ctx: &Ctx, n: u32| {
    ///     if n % 2 == 0 {
    ///         ctx.metrics().inc("even");
    ///     }
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// let mut submitter = pool.submitter();
    /// for n in 0..10 { submitter.submit(n)?; }
    /// drop(submitter);
    /// assert_eq!(pool.wait()?.stats().counters.get("even"), 5);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline]
    pub fn metrics(&self) -> &Shard {
        self.metrics
            .shard(self.worker.0)
            .expect("a pool has one metrics shard per worker")
    }
}
