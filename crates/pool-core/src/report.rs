//! What a run reports: per-worker counts, the final [`Report`] and the live
//! [`Snapshot`]. Both are built by the ledger (`ledger.rs`).

use std::any::Any;
use std::fmt;
use std::time::Duration;

use pool_metrics::{Shard, Stats};

use crate::error::panic_message;
use crate::ledger::FirstPanic;
use crate::{PanicPayload, PanicSite, PoolError, WorkerId};

/// A worker's item counts at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WorkerCounts {
    /// Items the worker processed successfully.
    pub processed: u64,
    /// Items whose processing returned an error or panicked.
    pub failed: u64,
    /// Items the worker dropped unprocessed because the pool was cancelled
    /// (including those it interrupted: see [`Report::interrupted`]).
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
/// panics, cancellation and close. [`interrupted`](Report::interrupted) is a
/// part of `dropped`.
#[derive(Debug)]
pub struct Report {
    pub(crate) submitted: u64,
    pub(crate) spawned: u64,
    pub(crate) processed: u64,
    pub(crate) failed: u64,
    pub(crate) dropped: u64,
    pub(crate) interrupted: u64,
    pub(crate) workers: Vec<WorkerReport>,
    pub(crate) errors: Vec<PoolError>,
    pub(crate) error_total: u64,
    pub(crate) cancelled: bool,
    pub(crate) stop_on_error: bool,
    pub(crate) elapsed: Duration,
    pub(crate) stats: Stats,
}

impl Report {
    /// Items accepted by `submit`/`send`, and spawned by workers with
    /// [`Ctx::spawn`](crate::Ctx::spawn) (refused items are not counted).
    pub fn submitted(&self) -> u64 {
        self.submitted
    }

    /// The part of [`submitted`](Report::submitted) that workers spawned
    /// into their own pool ([`Ctx::spawn`](crate::Ctx::spawn)): a tree of
    /// `n` items grown from one submitted root reports `n` submitted and
    /// `n - 1` spawned.
    ///
    /// ```
    /// use pool_core::{Ctx, Pool};
    ///
    /// // A chain: each item below 10 spawns the next.
    /// let pool = Pool::builder().workers(2).build(|ctx: &Ctx, n: u32| {
    ///     if n < 10 { ctx.spawn(n + 1)?; }
    ///     Ok::<(), pool_core::SpawnError<u32>>(())
    /// })?;
    /// pool.sender().send(1)?;
    /// let report = pool.wait()?;
    /// assert_eq!((report.submitted(), report.spawned(), report.processed()), (10, 9, 10));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn spawned(&self) -> u64 {
        self.spawned
    }

    /// Items processed successfully.
    pub fn processed(&self) -> u64 {
        self.processed
    }

    /// Items whose worker returned an error or panicked.
    pub fn failed(&self) -> u64 {
        self.failed
    }

    /// Items dropped unprocessed because the pool was cancelled: those still
    /// queued (or in a batch being worked through) when the cancel came, and
    /// the [`interrupted`](Report::interrupted) ones. With
    /// [`Builder::on_dropped`](crate::Builder::on_dropped), every dropped item
    /// but the interrupted ones went to the callback: `dropped() -
    /// interrupted()` calls in all.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Items whose worker stopped them because the pool was cancelled: the
    /// call failed with [`Interrupted`](crate::Interrupted) (from
    /// [`Ctx::check`](crate::Ctx::check)) after the cancel. A part of
    /// [`dropped`](Report::dropped), not of [`failed`](Report::failed): their
    /// errors are not recorded. The worker had the item, so it is not handed
    /// to [`on_dropped`](crate::Builder::on_dropped).
    pub fn interrupted(&self) -> u64 {
        self.interrupted
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
    pub fn error_total(&self) -> u64 {
        self.error_total
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
        if self.error_total > 0 {
            if self.stop_on_error && !self.errors.is_empty() {
                return Err(self.errors.swap_remove(0));
            }
            return Err(PoolError::Many {
                errors: std::mem::take(&mut self.errors),
                total: self.error_total,
            });
        }
        if self.cancelled {
            return Err(PoolError::Cancelled {
                dropped: self.dropped,
            });
        }
        Ok(self)
    }

    /// Adds a panic of the `on_pool_done` callback, which runs after the
    /// books are closed and on no worker.
    pub(crate) fn record_callback_panic(&mut self, payload: Box<dyn Any + Send>) {
        self.error_total += 1;
        self.errors.push(PoolError::Panicked {
            worker: None,
            site: PanicSite::Callback,
            key: None,
            message: panic_message(&*payload),
            payload: PanicPayload::new(payload),
        });
    }

    /// Takes the run's first panic payload out, to re-raise it
    /// ([`Builder::resume_panics`](crate::Builder::resume_panics)); a kept
    /// error that held it leaves the report, which is dropped next.
    pub(crate) fn take_first_panic(&mut self, first: FirstPanic) -> Option<Box<dyn Any + Send>> {
        match first {
            FirstPanic::None => None,
            FirstPanic::Unkept(payload) => Some(payload),
            FirstPanic::Kept(index) => {
                // Always a panic: kept errors are only ever appended to.
                let held = matches!(self.errors.get(index), Some(PoolError::Panicked { .. }));
                match held.then(|| self.errors.remove(index)) {
                    Some(PoolError::Panicked { payload, .. }) => Some(payload.into_inner()),
                    _ => None,
                }
            }
        }
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "submitted {}, processed {}, failed {}, dropped {}{}, errors {}{} in {:.3?}, \
             busiest worker at {:.2}x the mean load",
            self.submitted,
            self.processed,
            self.failed,
            self.dropped,
            Interruptions(self.interrupted),
            self.error_total,
            if self.cancelled { ", cancelled" } else { "" },
            self.elapsed,
            self.imbalance()
        )
    }
}

/// ` (N interrupted)` after the dropped count, when there were any.
struct Interruptions(u64);

impl fmt::Display for Interruptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            0 => Ok(()),
            n => write!(f, " ({n} interrupted)"),
        }
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
    /// Items accepted so far. A batching `Submitter` counts its buffered
    /// items when it pushes their batch; an unbatched one (`batch_size(1)`)
    /// counts in blocks of 256 ahead of its items and gives back the unused
    /// part when it is flushed or dropped, so this may run ahead by up to
    /// 255 items per such submitter. Either way an item is counted before a
    /// worker can finish it: `finished() <= submitted` always holds, and the
    /// final [`Report`] is exact.
    pub submitted: u64,
    /// The part of `submitted` that workers spawned into their own pool
    /// ([`Ctx::spawn`](crate::Ctx::spawn)).
    pub spawned: u64,
    /// Accepted items not finished yet: queued, or in a worker's hands.
    pub queued: u64,
    /// Room taken right now: queued items plus room reserved by submitters for
    /// batches they are filling (what `capacity` bounds). Above the capacity
    /// by the *overshoot* while spawned items (or sends from the pool's own
    /// workers) went over it: see [`Builder::capacity`](crate::Builder::capacity).
    pub in_flight: usize,
    /// Errors recorded so far (item errors, `finish` errors, panics).
    pub error_total: u64,
    /// Items interrupted so far: a part of the dropped ones (see
    /// [`Report::interrupted`]).
    pub interrupted: u64,
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
