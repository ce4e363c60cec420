//! The pool's books: how many items came in, what became of each, every
//! error, and the first panic. The [`Report`] and [`Snapshot`] are read from
//! here and nowhere else.
//!
//! # Invariant owned here
//!
//! **Nothing lost** (I1): at the end of a run, `submitted == processed +
//! failed + dropped`. `submitted` is counted here before an item can reach a
//! worker ([`Ledger::count_submitted`] runs before the push); each pushed item
//! is then counted by exactly one worker, in its own metrics shard, as
//! processed, failed or dropped. The report adds up the shards after every
//! worker has left. Tests: `accounting_invariant.rs`,
//! `random_scripts_keep_the_invariant.rs`.
//!
//! # Vocabulary
//!
//! The same words everywhere: an item is **processed** (the worker returned
//! `Ok`), **failed** (it returned an error or panicked; a failed batch counts
//! each of its items) or **dropped** (never run: cancel). Part of dropped,
//! an item is **interrupted** when its worker stopped it because the pool was
//! cancelled (it failed with [`Interrupted`](crate::Interrupted) after the
//! cancel): it ran, but did not finish, and is no failure. An **error** is one
//! recorded `PoolError`: a failed call, a failed `finish`, a caught panic.
//! `errors()` lists the ones kept (up to `error_limit`); `error_total()`
//! counts them all.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crossbeam_utils::CachePadded;
use pool_metrics::{Metrics, ShardWriter};

use crate::error::panic_message;
use crate::report::{Report, Snapshot, WorkerCounts, WorkerReport};
use crate::{CancelToken, ItemKey, PanicPayload, PanicSite, PoolError, WorkerId};

/// Errors and where the first panic's payload is, behind a lock taken only
/// on failure.
#[derive(Default)]
struct ErrorStore {
    kept: Vec<PoolError>,
    first_panic: FirstPanic,
}

/// Where the payload of the run's first panic is, for
/// [`Builder::resume_panics`](crate::Builder::resume_panics).
#[derive(Default)]
pub(crate) enum FirstPanic {
    /// No panic yet.
    #[default]
    None,
    /// In the `PoolError::Panicked` kept at this index of the errors.
    Kept(usize),
    /// Not kept (past `error_limit`), so held here.
    Unkept(Box<dyn Any + Send>),
}

/// The counts, errors and error policy of one pool.
pub(crate) struct Ledger {
    /// Written by producers once per batch (or once per `Sender` item).
    submitted: CachePadded<AtomicU64>,
    /// Items spawned by each worker (`Ctx::spawn`), each on its own line:
    /// a spawn writes only its worker's counter. Part of `submitted()`.
    spawned: Box<[CachePadded<AtomicU64>]>,
    /// One shard per worker: processed/failed/dropped, times, latencies and
    /// custom counters, each written by its worker only.
    metrics: Arc<Metrics>,
    /// Seats that have had a worker (`Pool::set_workers` may grow into
    /// more): the report shows these, retired workers' counts included.
    seats_used: AtomicUsize,
    errors: Mutex<ErrorStore>,
    /// Every error recorded, kept or not; readable without the lock, so a
    /// live snapshot never waits for a worker that records an error.
    error_total: AtomicU64,
    /// Items counted as dropped in the shards because their worker stopped
    /// them for the cancel (`Interrupted`): written only after a cancel.
    interrupted: AtomicU64,
    error_limit: usize,
    /// The error policy: an error cancels the pool through `token`.
    stop_on_error: bool,
    token: CancelToken,
}

impl Ledger {
    /// Books for `n_seats` seats, the first `n_workers` with workers; with
    /// `latency`, per-item latency histograms too.
    pub(crate) fn new(
        n_seats: usize,
        n_workers: usize,
        latency: bool,
        error_limit: usize,
        stop_on_error: bool,
        token: CancelToken,
    ) -> Self {
        Ledger {
            submitted: CachePadded::new(AtomicU64::new(0)),
            spawned: (0..n_seats)
                .map(|_| CachePadded::new(AtomicU64::new(0)))
                .collect(),
            metrics: Metrics::with_latency(n_seats, latency),
            seats_used: AtomicUsize::new(n_workers),
            errors: Mutex::new(ErrorStore::default()),
            error_total: AtomicU64::new(0),
            interrupted: AtomicU64::new(0),
            error_limit,
            stop_on_error,
            token,
        }
    }

    /// Counts `n` items as accepted. Called before they are pushed, so the
    /// count is complete by the time a worker can finish them.
    #[inline]
    pub(crate) fn count_submitted(&self, n: u64) {
        self.submitted.fetch_add(n, SeqCst);
    }

    /// Takes back `n` items counted ahead of time and never submitted (an
    /// unbatched `Submitter` counts its items in blocks, before it pushes
    /// them). Runs before the submitter is gone, so before any report.
    #[cold]
    pub(crate) fn withdraw_submitted(&self, n: u64) {
        self.submitted.fetch_sub(n, SeqCst);
    }

    /// Counts `n` items spawned by worker `worker` (`Ctx::spawn`) as
    /// accepted, on that worker's own counter. Called before they are
    /// pushed, as [`count_submitted`](Ledger::count_submitted).
    #[inline]
    pub(crate) fn count_spawned(&self, worker: usize, n: u64) {
        self.spawned[worker].fetch_add(n, SeqCst);
    }

    /// Items spawned by workers so far (a part of
    /// [`submitted`](Ledger::submitted)).
    pub(crate) fn spawned(&self) -> u64 {
        self.spawned.iter().map(|count| count.load(SeqCst)).sum()
    }

    /// Items accepted so far, spawned ones included (for a live snapshot,
    /// plus what unbatched submitters counted ahead of time: at most 255
    /// each).
    pub(crate) fn submitted(&self) -> u64 {
        self.submitted.load(SeqCst) + self.spawned()
    }

    /// The metrics shards (workers' contexts hold them too).
    pub(crate) fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Seats `0..n_seats` have had a worker.
    pub(crate) fn seats_used(&self, n_seats: usize) {
        self.seats_used.fetch_max(n_seats, SeqCst);
    }

    /// The one writer of worker `index`'s shard.
    pub(crate) fn writer(&self, index: usize) -> ShardWriter {
        self.metrics
            .writer(index)
            .expect("each worker takes its shard's writer once, at start")
    }

    /// Items the workers finished so far (processed, failed or dropped): a
    /// load of each shard's three counts, no lock.
    pub(crate) fn finished(&self) -> u64 {
        self.metrics.shards().fold(0, |total, shard| {
            total
                .wrapping_add(shard.processed())
                .wrapping_add(shard.failed())
                .wrapping_add(shard.dropped())
        })
    }

    /// Errors recorded so far (item errors, finish errors, panics).
    pub(crate) fn error_total(&self) -> u64 {
        self.error_total.load(SeqCst)
    }

    /// Counts `n` items that their workers already counted as dropped as
    /// interrupted too. After a cancel only.
    #[cold]
    pub(crate) fn count_interrupted(&self, n: u64) {
        self.interrupted.fetch_add(n, SeqCst);
    }

    /// Items interrupted so far (part of the dropped ones).
    pub(crate) fn interrupted(&self) -> u64 {
        self.interrupted.load(SeqCst)
    }

    /// Records an error; under stop-on-error, cancels the pool.
    #[cold]
    pub(crate) fn record_error(&self, error: PoolError) {
        let worker = error.worker();
        drop(self.keep(error));
        self.apply_policy(worker);
    }

    /// Records a caught panic of user code; under stop-on-error, cancels.
    #[cold]
    pub(crate) fn record_panic(
        &self,
        worker: Option<WorkerId>,
        site: PanicSite,
        payload: Box<dyn Any + Send>,
    ) {
        self.keep_panic(worker, site, None, payload);
        self.apply_policy(worker);
    }

    /// Records a caught panic of user code that had an item in hand, named
    /// by its key; under stop-on-error, cancels.
    #[cold]
    pub(crate) fn record_item_panic(
        &self,
        worker: WorkerId,
        site: PanicSite,
        key: Option<ItemKey>,
        payload: Box<dyn Any + Send>,
    ) {
        self.keep_panic(Some(worker), site, key, payload);
        self.apply_policy(Some(worker));
    }

    /// Records a caught panic after which the pool cannot go on (a maker's:
    /// its thread has no worker), and cancels the pool whatever the policy.
    #[cold]
    pub(crate) fn record_panic_and_cancel(
        &self,
        worker: Option<WorkerId>,
        site: PanicSite,
        payload: Box<dyn Any + Send>,
    ) {
        self.keep_panic(worker, site, None, payload);
        self.cancel_token(worker);
    }

    /// Cancels the pool's token from a worker thread. A callback registered
    /// on the token ([`CancelToken::on_cancel`]) runs here, on this thread;
    /// its panic must not take the worker down (every other listener has
    /// been told by then), so it is recorded as a callback's panic.
    fn cancel_token(&self, worker: Option<WorkerId>) {
        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| self.token.cancel())) {
            self.keep_panic(worker, PanicSite::Callback, None, payload);
        }
    }

    fn keep_panic(
        &self,
        worker: Option<WorkerId>,
        site: PanicSite,
        key: Option<ItemKey>,
        payload: Box<dyn Any + Send>,
    ) {
        let message = panic_message(&*payload);
        let error = PoolError::Panicked {
            worker,
            site,
            key,
            message,
            payload: PanicPayload::new(payload),
        };
        // A payload neither kept nor first is dropped after the lock is
        // released, under `catch_unwind`: its `Drop` is user code.
        if let Some(PoolError::Panicked { payload, .. }) = self.keep(error) {
            let payload = payload.into_inner();
            if let Err(nested) = catch_unwind(AssertUnwindSafe(move || drop(payload))) {
                // A payload whose drop panics in turn is leaked, as `std` does.
                std::mem::forget(nested);
            }
        }
    }

    /// Keeps `error` if there is room, and notes where the first panic's
    /// payload is. Returns `error` when it was not kept.
    fn keep(&self, error: PoolError) -> Option<PoolError> {
        // Outside the lock (a subscriber may be slow), and for every error,
        // kept in the store or not.
        crate::trace::error_recorded(&error);
        let mut store = self.errors.lock().unwrap_or_else(PoisonError::into_inner);
        self.error_total.fetch_add(1, SeqCst);
        let first_panic = matches!(error, PoolError::Panicked { .. })
            && matches!(store.first_panic, FirstPanic::None);
        if store.kept.len() < self.error_limit {
            if first_panic {
                store.first_panic = FirstPanic::Kept(store.kept.len());
            }
            store.kept.push(error);
            None
        } else if first_panic && let PoolError::Panicked { payload, .. } = error {
            store.first_panic = FirstPanic::Unkept(payload.into_inner());
            None
        } else {
            Some(error)
        }
    }

    fn apply_policy(&self, worker: Option<WorkerId>) {
        if self.stop_on_error {
            self.cancel_token(worker);
        }
    }

    /// A live view: counts so far, errors, times. `in_flight` and `closed`
    /// come from the capacity gate; `elapsed` is the pool's age.
    pub(crate) fn snapshot(&self, in_flight: usize, closed: bool, elapsed: Duration) -> Snapshot {
        // Read `submitted` before the counts, so `finished <= submitted` holds
        // in the snapshot as it does in the pool.
        let spawned = self.spawned();
        let submitted = self.submitted();
        // Before the shards, which count an interrupted item as dropped
        // first: so `interrupted <= stats.dropped` in the snapshot too.
        let interrupted = self.interrupted();
        let mut stats = self.metrics.stats_with_total(elapsed);
        stats.workers = self.seats_used.load(SeqCst);
        let finished = stats.total_items();
        Snapshot {
            submitted,
            spawned,
            queued: submitted.saturating_sub(finished),
            in_flight,
            error_total: self.error_total(),
            interrupted,
            closed,
            cancelled: self.token.is_cancelled(),
            stats,
        }
    }

    /// The final report, and where the first panic's payload is. Call once
    /// every worker has left: the counts are final then, and the errors are
    /// taken.
    pub(crate) fn close_books(&self, elapsed: Duration) -> (Report, FirstPanic) {
        let seats_used = self.seats_used.load(SeqCst);
        let workers: Vec<WorkerReport> = self
            .metrics
            .shards()
            .take(seats_used)
            .enumerate()
            .map(|(index, shard)| WorkerReport {
                worker: WorkerId(index),
                counts: WorkerCounts::of(shard),
                busy: shard.busy(),
                idle: shard.idle(),
                init: shard.init(),
                wrap_up: shard.wrap_up(),
            })
            .collect();
        let sum = |field: fn(&WorkerCounts) -> u64| -> u64 {
            workers.iter().map(|worker| field(&worker.counts)).sum()
        };
        let (errors, first_panic) = {
            let mut store = self.errors.lock().unwrap_or_else(PoisonError::into_inner);
            (
                std::mem::take(&mut store.kept),
                std::mem::take(&mut store.first_panic),
            )
        };
        let mut stats = self.metrics.stats_with_total(elapsed);
        stats.workers = seats_used;
        let report = Report {
            submitted: self.submitted(),
            spawned: self.spawned(),
            processed: sum(|counts| counts.processed),
            failed: sum(|counts| counts.failed),
            dropped: sum(|counts| counts.dropped),
            interrupted: self.interrupted(),
            workers,
            errors,
            error_total: self.error_total(),
            cancelled: self.token.is_cancelled(),
            stop_on_error: self.stop_on_error,
            elapsed,
            stats,
        };
        (report, first_panic)
    }
}
