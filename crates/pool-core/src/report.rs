//! Per-worker counters, the context handed to workers, and the final report.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use pool_metrics::{Metrics, Shard, Stats};

use crate::{CancelToken, PoolError, WorkerId};

/// A worker's item counts at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WorkerCounts {
    /// Items the worker processed successfully.
    pub processed: u64,
    /// Items whose processing returned an error or panicked.
    pub failed: u64,
    /// Items the worker dropped unprocessed because the pool was cancelled.
    pub dropped: u64,
}

impl WorkerCounts {
    /// Every item that reached this worker: processed, failed or dropped. Its
    /// share of all items is the worker's load.
    pub fn items(&self) -> u64 {
        self.processed + self.failed + self.dropped
    }
}

impl WorkerCounts {
    /// The counts of one worker's metrics shard.
    pub(crate) fn of(shard: &Shard) -> Self {
        WorkerCounts {
            processed: shard.processed(),
            failed: shard.failed(),
            dropped: shard.dropped(),
        }
    }
}

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
}

impl Ctx {
    pub(crate) fn new(worker: WorkerId, token: CancelToken, metrics: Arc<Metrics>) -> Self {
        Ctx {
            worker,
            token,
            metrics,
            epoch: Instant::now(),
            deadline: AtomicU64::new(0),
        }
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
    /// [`Report::stats`] at the end, summed over workers.
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

/// One worker's share of a finished run.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct WorkerReport {
    /// The worker.
    pub worker: WorkerId,
    /// Its item counts.
    pub counts: WorkerCounts,
    /// Time spent processing (from finding work to running out of it).
    pub busy: Duration,
    /// Time spent idle: spinning, parked or waiting for work.
    pub idle: Duration,
    /// Time the maker took to build the worker (zero for shared workers).
    pub init: Duration,
    /// Time the `finish` hook and the `on_worker_done` callback took.
    pub wrap_up: Duration,
}

/// What happened in a run: counts, per-worker shares and errors.
///
/// The counts always satisfy `submitted == processed + failed + dropped`
/// ([`is_balanced`](Report::is_balanced)); the pool's tests check it under errors,
/// panics, cancellation and close.
#[derive(Debug)]
pub struct Report {
    pub(crate) submitted: u64,
    pub(crate) processed: u64,
    pub(crate) failed: u64,
    pub(crate) dropped: u64,
    pub(crate) workers: Vec<WorkerReport>,
    pub(crate) errors: Vec<PoolError>,
    pub(crate) error_count: u64,
    pub(crate) cancelled: bool,
    pub(crate) stop_on_error: bool,
    pub(crate) elapsed: Duration,
    pub(crate) stats: Stats,
}

impl Report {
    /// Items accepted by `submit`/`send` (refused items are not counted).
    pub fn submitted(&self) -> u64 {
        self.submitted
    }

    /// Items processed successfully.
    pub fn processed(&self) -> u64 {
        self.processed
    }

    /// Items whose worker returned an error or panicked.
    pub fn failed(&self) -> u64 {
        self.failed
    }

    /// Items dropped unprocessed because the pool was cancelled.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Whether `submitted == processed + failed + dropped`.
    pub fn is_balanced(&self) -> bool {
        self.submitted == self.processed + self.failed + self.dropped
    }

    /// Each worker's share, in worker order. A hot key or a slow worker shows here.
    pub fn workers(&self) -> &[WorkerReport] {
        &self.workers
    }

    /// The busiest worker's load over the mean load: `1.0` when every worker got
    /// the same number of items, `workers` when one got them all (and `1.0` for
    /// an empty run). In a keyed pool ([`Builder::chunk_by`](crate::Builder::chunk_by))
    /// a hot key shows here; [`workers`](Report::workers) says which worker.
    ///
    /// ```
    /// use pool_core::{Ctx, Pool};
    ///
    /// let pool = Pool::builder()
    ///     .workers(2)
    ///     .chunk_by(|_n: &u32| "one hot key")
    ///     .build(|_ctx: &Ctx, _n: u32| Ok::<(), std::io::Error>(()))?;
    /// let mut submitter = pool.submitter();
    /// for n in 0..100 { submitter.submit(n)?; }
    /// drop(submitter);
    /// let report = pool.wait()?;
    /// assert_eq!(report.imbalance(), 2.0); // one worker did everything
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn imbalance(&self) -> f64 {
        let total: u64 = self
            .workers
            .iter()
            .map(|worker| worker.counts.items())
            .sum();
        let busiest = self
            .workers
            .iter()
            .map(|worker| worker.counts.items())
            .max()
            .unwrap_or(0);
        if total == 0 {
            return 1.0;
        }
        busiest as f64 * self.workers.len() as f64 / total as f64
    }

    /// The errors kept (all of them up to the pool's `error_limit`), in the order
    /// they were recorded.
    pub fn errors(&self) -> &[PoolError] {
        &self.errors
    }

    /// How many errors happened in all, kept or not (item errors, `finish` errors
    /// and caught panics).
    pub fn error_count(&self) -> u64 {
        self.error_count
    }

    /// Whether the pool was cancelled (explicitly, by its token, or by the first
    /// error under stop-on-error).
    pub fn was_cancelled(&self) -> bool {
        self.cancelled
    }

    /// Time from the pool's build to the end of `wait`.
    pub fn elapsed(&self) -> Duration {
        self.elapsed
    }

    /// The run's [`Stats`], merged from every worker: counts, processing, wait,
    /// init and wrap-up times, rates, utilization, latency percentiles (when
    /// [`MetricsMode::Latency`](crate::MetricsMode::Latency) is on) and custom
    /// counters. `Display` renders it as a table.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// `Ok(self)` for a clean run; otherwise the error `wait` returns: the first
    /// error under stop-on-error, [`PoolError::Many`] under continue-on-error, or
    /// [`PoolError::Cancelled`] when the pool was cancelled without an error.
    pub fn into_result(mut self) -> Result<Report, PoolError> {
        if self.error_count > 0 {
            if self.stop_on_error && !self.errors.is_empty() {
                return Err(self.errors.swap_remove(0));
            }
            return Err(PoolError::Many {
                errors: std::mem::take(&mut self.errors),
                total: self.error_count,
            });
        }
        if self.cancelled {
            return Err(PoolError::Cancelled {
                dropped: self.dropped,
            });
        }
        Ok(self)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "submitted {}, processed {}, failed {}, dropped {}, errors {}{} in {:.3?}, \
             busiest worker at {:.2}x the mean load",
            self.submitted,
            self.processed,
            self.failed,
            self.dropped,
            self.error_count,
            if self.cancelled { ", cancelled" } else { "" },
            self.elapsed,
            self.imbalance()
        )
    }
}

/// A live view of a running pool, from [`Pool::metrics`](crate::Pool::metrics).
///
/// Taking one never blocks a worker: counts and times are read from the
/// workers' shards as they stand (each at most one update old), latencies as
/// last published (workers publish about once per batch and never wait for a
/// reader).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Snapshot {
    /// Items accepted so far. A `Submitter` counts its buffered items when it
    /// pushes their batch.
    pub submitted: u64,
    /// Accepted items not finished yet: queued, or in a worker's hands.
    pub queued: u64,
    /// Room taken right now: queued items plus room reserved by submitters for
    /// batches they are filling (what `capacity` bounds).
    pub in_flight: usize,
    /// Errors recorded so far (item errors, `finish` errors, panics).
    pub error_count: u64,
    /// Whether the pool stopped accepting items.
    pub closed: bool,
    /// Whether the pool was cancelled.
    pub cancelled: bool,
    /// Counts, times, rates, latency percentiles and custom counters so far.
    pub stats: Stats,
}

impl Snapshot {
    /// Items finished so far: processed, failed or dropped.
    pub fn finished(&self) -> u64 {
        self.stats.total_items()
    }
}
