//! The state all threads of one pool share: queues, sleep slots, the capacity
//! gate, the cancellation token and the error store.
//!
//! The capacity protocol (the `in_flight` counter that is both the bound and
//! the exit condition, close, and the producers' gate) lives in `capacity.rs`
//! with its proof and its loom models; this file wires it to the queues, the
//! sleeping workers and the cancellation token.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex, PoisonError};

use crossbeam_deque::{Injector, Steal, Stealer, Worker as LocalQueue};
use crossbeam_queue::ArrayQueue;
use crossbeam_utils::CachePadded;

use pool_chunk::Router;

use crate::cancel::OnCancel;
use crate::capacity::{Capacity, Surroundings};
use crate::error::panic_message;
use pool_metrics::Metrics;

use crate::report::WorkerCounts;
use crate::sleep::Sleep;
use crate::{CancelToken, PanicSite, PoolError, WorkerId};

/// A unit in the queues: a lone item (no allocation) or a batch.
pub(crate) enum Job<T> {
    One(T),
    Many(Vec<T>),
}

pub(crate) use crate::capacity::{Refusal, Wait};

/// Errors and the first panic payload, behind a lock taken only on failure.
#[derive(Default)]
pub(crate) struct ErrorStore {
    pub(crate) errors: Vec<PoolError>,
    pub(crate) total: u64,
    pub(crate) first_panic: Option<Box<dyn Any + Send>>,
}

/// Settings fixed at build time.
pub(crate) struct Config {
    pub(crate) n_workers: usize,
    pub(crate) batch_size: usize,
    pub(crate) capacity: usize,
    pub(crate) release_every: usize,
    pub(crate) stop_on_error: bool,
    pub(crate) error_limit: usize,
    pub(crate) metrics_mode: crate::MetricsMode,
}

pub(crate) type WorkerDoneFn = Arc<dyn Fn(WorkerId, &WorkerCounts) + Send + Sync>;

/// Routes an item: computes its key and asks the router for the worker. One
/// monomorphised function, so the key function, the hash and the jump inline
/// into a single dynamic call per item.
pub(crate) type RouteFn<T> = Box<dyn Fn(&T, &Router) -> usize + Send + Sync>;

/// Key affinity (`Builder::chunk_by`): every item goes to the inbox of the worker
/// its key routes to. Inboxes are never stolen from, so the items of one key are
/// processed by one worker, in the order each producer pushed them.
pub(crate) struct Keyed<T> {
    route: RouteFn<T>,
    router: Router,
    inboxes: Box<[CachePadded<Injector<Job<T>>>]>,
}

impl<T> Keyed<T> {
    pub(crate) fn new(route: RouteFn<T>, router: Router) -> Self {
        let inboxes = (0..router.buckets())
            .map(|_| CachePadded::new(Injector::new()))
            .collect();
        Keyed {
            route,
            router,
            inboxes,
        }
    }

    /// The index of the worker that processes `item`.
    #[inline]
    pub(crate) fn target(&self, item: &T) -> usize {
        (self.route)(item, &self.router)
    }

    /// The next job in worker `index`'s inbox.
    #[inline]
    fn pop(&self, index: usize) -> Option<Job<T>> {
        loop {
            match self.inboxes[index].steal() {
                Steal::Success(job) => return Some(job),
                Steal::Empty => return None,
                Steal::Retry => {}
            }
        }
    }
}

pub(crate) struct Shared<T> {
    pub(crate) config: Config,
    pub(crate) injector: Injector<Job<T>>,
    pub(crate) stealers: Box<[Stealer<Job<T>>]>,
    /// Set for pools built with `chunk_by`: then every item is keyed.
    pub(crate) keyed: Option<Keyed<T>>,
    pub(crate) sleep: Sleep,
    /// The capacity counter, the closed flag, the producers' gate, and the
    /// count of accepted items.
    capacity: Capacity,
    pub(crate) token: CancelToken,
    pub(crate) recycle: ArrayQueue<Vec<T>>,
    /// One shard per worker: counts, times, latencies, custom counters.
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) errors: Mutex<ErrorStore>,
    /// Every error recorded, kept or not; readable without the lock, so a
    /// live snapshot never waits for a worker that records an error.
    error_total: AtomicU64,
    /// Taken out once every worker has finished (`Pool::shut_down`): a
    /// callback may own a `Sender` to this very pool, and that cycle would
    /// keep the pool's memory alive forever.
    on_worker_done: Mutex<Option<WorkerDoneFn>>,
}

impl<T> Shared<T> {
    pub(crate) fn new(
        config: Config,
        stealers: Vec<Stealer<Job<T>>>,
        keyed: Option<Keyed<T>>,
        sleep: Sleep,
        token: CancelToken,
        on_worker_done: Option<WorkerDoneFn>,
    ) -> Self {
        let n_workers = config.n_workers;
        // Enough spare batches for every batch that can be in flight, within reason:
        // more would only hold memory.
        let recycle_slots = (config.capacity / config.batch_size + 2 * n_workers).clamp(1, 1024);
        Shared {
            injector: Injector::new(),
            stealers: stealers.into_boxed_slice(),
            keyed,
            sleep,
            capacity: Capacity::new(config.capacity, config.batch_size),
            token,
            recycle: ArrayQueue::new(recycle_slots),
            metrics: Metrics::with_latency(
                n_workers,
                config.metrics_mode == crate::MetricsMode::Latency,
            ),
            errors: Mutex::new(ErrorStore::default()),
            error_total: AtomicU64::new(0),
            on_worker_done: Mutex::new(on_worker_done),
            config,
        }
    }

    /// Whether no new input is accepted (closed, waited, dropped or cancelled).
    #[inline]
    pub(crate) fn is_closed(&self) -> bool {
        self.capacity.is_closed()
    }

    /// A cheap early refusal for the submit paths (see
    /// [`Capacity::refuses_quickly`]).
    #[inline]
    pub(crate) fn refuses_quickly(&self) -> Option<Refusal> {
        self.capacity.refuses_quickly(self)
    }

    /// Workers may exit: no input will come and every reserved item is finished.
    #[inline]
    pub(crate) fn is_done(&self) -> bool {
        self.capacity.is_done()
    }

    pub(crate) fn in_flight(&self) -> usize {
        self.capacity.in_flight()
    }

    pub(crate) fn submitted(&self) -> u64 {
        self.capacity.submitted()
    }

    /// Errors recorded so far (item errors, finish errors, panics).
    pub(crate) fn error_total(&self) -> u64 {
        self.error_total.load(SeqCst)
    }

    /// The merged metrics.
    pub(crate) fn stats(&self, total_time: std::time::Duration) -> pool_metrics::Stats {
        self.metrics.stats_with_total(total_time)
    }

    /// The `on_worker_done` callback, if any and not yet taken out.
    pub(crate) fn worker_done_callback(&self) -> Option<WorkerDoneFn> {
        self.on_worker_done
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Drops the `on_worker_done` callback; call once every worker finished.
    pub(crate) fn drop_worker_done_callback(&self) {
        let callback = self
            .on_worker_done
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        // Dropped outside the lock: its captures may be anything, this pool's
        // own `Sender` included.
        drop(callback);
    }

    /// Counts `n` items as accepted. Called before they are pushed, so the count is
    /// complete by the time a worker can finish them.
    #[inline]
    pub(crate) fn count_submitted(&self, n: u64) {
        self.capacity.count_submitted(n);
    }

    /// Reserves room for `k` items, waiting as `wait` allows.
    #[inline]
    pub(crate) fn reserve(&self, k: usize, wait: Wait) -> Result<(), Refusal> {
        self.capacity.reserve(k, wait, self)
    }

    /// Wakes waiting producers, lingering ones included: called by a worker
    /// that found no work, so the pool needs input now.
    #[inline]
    pub(crate) fn wake_producers_if_waiting(&self) {
        self.capacity.wake_producers_if_waiting();
    }

    /// Gives back room for `k` finished (or backed-out) items.
    #[inline]
    pub(crate) fn release(&self, k: usize) {
        self.capacity.release(k, self);
    }

    /// Stops accepting input and wakes everyone so they can drain and exit.
    pub(crate) fn close(&self) {
        // With the `tracing` feature, the closer that finds the pool open
        // reports it: once per pool, unless two threads close it at the very
        // same moment (the flag is stored, not swapped, by `Capacity::close`).
        #[cfg(feature = "tracing")]
        let was_open = !self.is_closed();
        self.capacity.close(self);
        #[cfg(feature = "tracing")]
        if was_open {
            crate::trace::pool_closed(self.submitted());
        }
    }

    /// Publishes an unkeyed job and wakes a sleeper if there is one.
    #[inline]
    pub(crate) fn push(&self, job: Job<T>, hint: usize) {
        self.injector.push(job);
        self.sleep.notify_one(hint);
    }

    /// Publishes a job into worker `target`'s inbox (keyed pools only) and wakes
    /// that worker if it sleeps. No other worker can take the job, so the wake-up
    /// goes to `target` whatever the others do.
    #[inline]
    pub(crate) fn push_to(&self, keyed: &Keyed<T>, job: Job<T>, target: usize) {
        keyed.inboxes[target].push(job);
        self.sleep.notify_worker(target);
    }

    /// Whether any queue worker `index` may take from holds a job.
    pub(crate) fn has_queued_work(&self, index: usize) -> bool {
        match &self.keyed {
            Some(keyed) => !keyed.inboxes[index].is_empty(),
            None => {
                !self.injector.is_empty() || self.stealers.iter().any(|stealer| !stealer.is_empty())
            }
        }
    }

    /// Finds the next job for worker `index`. Keyed pools: its own inbox only.
    /// Otherwise: its own queue, then a batch from the global injector, then a
    /// sibling's queue.
    #[inline]
    pub(crate) fn find_job(&self, index: usize, local: &LocalQueue<Job<T>>) -> Option<Job<T>> {
        if let Some(keyed) = &self.keyed {
            return keyed.pop(index);
        }
        if let Some(job) = local.pop() {
            // This job may block for long; let a sleeper take what is left here.
            if !local.is_empty() {
                self.sleep.notify_one(index + 1);
            }
            return Some(job);
        }
        self.steal_job(index, local)
    }

    fn steal_job(&self, index: usize, local: &LocalQueue<Job<T>>) -> Option<Job<T>> {
        let n_workers = self.stealers.len();
        loop {
            let mut retry = false;
            match self.injector.steal_batch_and_pop(local) {
                Steal::Success(job) => {
                    self.wake_for_leftovers(index);
                    return Some(job);
                }
                Steal::Retry => retry = true,
                Steal::Empty => {}
            }
            for offset in 1..n_workers {
                let victim = &self.stealers[(index + offset) % n_workers];
                match victim.steal_batch_and_pop(local) {
                    Steal::Success(job) => {
                        self.wake_for_leftovers(index);
                        return Some(job);
                    }
                    Steal::Retry => retry = true,
                    Steal::Empty => {}
                }
            }
            if !retry {
                return None;
            }
        }
    }

    /// Called after worker `index` took a job by stealing: if work is still
    /// queued anywhere, wake a sleeper (unless someone is searching).
    ///
    /// Producers skip their wake-up while a worker searches, trusting the
    /// searcher to take the work; but a searcher takes one job (or one batch),
    /// possibly not the one that was pushed, and then runs it, maybe for long.
    /// So whoever takes work re-checks for leftovers, and the last taker wakes a
    /// sleeper for them: queued jobs never wait behind blocked workers while
    /// others sleep (test: `blocked_workers_strand_nothing.rs`). Steals happen
    /// once per batch, so the scan of the queues is not per item.
    fn wake_for_leftovers(&self, index: usize) {
        if self.has_queued_work(index) {
            self.sleep.notify_one(index + 1);
        }
    }

    /// Records an error; under stop-on-error (or when `force_cancel`) cancels the pool.
    #[cold]
    pub(crate) fn record_error(
        &self,
        error: PoolError,
        panic_payload: Option<Box<dyn Any + Send>>,
        force_cancel: bool,
    ) {
        // Outside the lock (a subscriber may be slow), and for every error,
        // kept in the store or not.
        crate::trace::error_recorded(&error);
        {
            let mut store = self.errors.lock().unwrap_or_else(PoisonError::into_inner);
            store.total += 1;
            self.error_total.fetch_add(1, SeqCst);
            if store.errors.len() < self.config.error_limit {
                store.errors.push(error);
            }
            if store.first_panic.is_none() {
                store.first_panic = panic_payload;
            }
        }
        if self.config.stop_on_error || force_cancel {
            self.token.cancel();
        }
    }

    /// Records a caught panic.
    #[cold]
    pub(crate) fn record_panic(
        &self,
        worker: WorkerId,
        site: PanicSite,
        payload: Box<dyn Any + Send>,
        force_cancel: bool,
    ) {
        let message = panic_message(&*payload);
        self.record_error(
            PoolError::Panicked {
                worker,
                site,
                message,
            },
            Some(payload),
            force_cancel,
        );
    }

    /// Runs user code, turning a panic into a recorded error.
    pub(crate) fn guard<R>(
        &self,
        worker: WorkerId,
        site: PanicSite,
        body: impl FnOnce() -> R,
    ) -> Option<R> {
        match catch_unwind(AssertUnwindSafe(body)) {
            Ok(value) => Some(value),
            Err(payload) => {
                self.record_panic(worker, site, payload, site == PanicSite::Maker);
                None
            }
        }
    }
}

impl<T> Surroundings for Shared<T> {
    #[inline]
    fn is_cancelled(&self) -> bool {
        self.token.is_cancelled()
    }

    fn wake_workers(&self) {
        self.sleep.notify_all();
    }
}

impl<T: Send> OnCancel for Shared<T> {
    fn on_cancel(&self) {
        // A token tells each listener once, so this is once per pool.
        #[cfg(feature = "tracing")]
        crate::trace::pool_cancelled(self.submitted(), self.in_flight());
        self.close();
    }
}
