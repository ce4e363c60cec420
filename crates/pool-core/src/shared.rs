//! The state all threads of one pool share: queues, sleep slots, the capacity
//! counter, the cancellation token and the error store.
//!
//! # Close, cancel and capacity: one counter
//!
//! `in_flight` counts items that a producer has reserved and no worker has
//! finished. It is the capacity bound and the exit condition at once:
//! - a producer reserves `k` items with a `SeqCst` CAS that keeps
//!   `in_flight <= capacity`, and only then reads `closed` and the cancel flag
//!   (`SeqCst`); if either is set it releases the `k` and hands the items back;
//! - a worker exits only when `closed && in_flight == 0`.
//!
//! If a producer's reservation lands after a worker read `in_flight == 0`, the
//! single `SeqCst` order puts the producer's read of `closed` after the close, so
//! it backs out: no item is ever pushed into a pool whose workers have left.
//! Reserved items are always pushed (or, when cancelled, dropped and counted), so
//! workers never wait for an item that will not come.
//!
//! Workers release capacity in bulk (every `release_every` items and always before
//! going idle), so the counter is touched once per batch, not per item. A release
//! that brings the count to zero on a closed pool wakes every worker so they exit.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crossbeam_deque::{Injector, Steal, Stealer, Worker as LocalQueue};
use crossbeam_queue::ArrayQueue;
use crossbeam_utils::CachePadded;

use pool_chunk::Router;

use crate::cancel::OnCancel;
use crate::error::panic_message;
use pool_metrics::Metrics;

use crate::report::WorkerCounts;
use crate::sleep::Sleep;
use crate::{CancelToken, PanicSite, PoolError, WorkerId};

/// The longest a producer that sees room lingers for the pool to drain to its
/// low-water mark (see `Shared::wait_for_room`).
const LINGER: Duration = Duration::from_micros(500);

/// A unit in the queues: a lone item (no allocation) or a batch.
pub(crate) enum Job<T> {
    One(T),
    Many(Vec<T>),
}

/// How long a producer may wait for capacity.
#[derive(Clone, Copy)]
pub(crate) enum Wait {
    No,
    Until(Instant),
    Forever,
}

impl Wait {
    pub(crate) fn timeout(timeout: Duration) -> Wait {
        match Instant::now().checked_add(timeout) {
            Some(deadline) => Wait::Until(deadline),
            None => Wait::Forever,
        }
    }
}

/// Why a reservation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    Full,
    Closed,
    Cancelled,
}

/// The counters producers write: kept apart from the workers' shards.
struct Flow {
    in_flight: AtomicUsize,
    submitted: AtomicU64,
}

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

pub(crate) type WorkerDoneFn = Box<dyn Fn(WorkerId, &WorkerCounts) + Send + Sync>;

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
    flow: CachePadded<Flow>,
    closed: CachePadded<AtomicBool>,
    /// Items accepted by a producer and then dropped because the pool was
    /// cancelled before the producer could push them.
    producer_dropped: AtomicU64,
    waiting_producers: AtomicUsize,
    /// Waiting producers that found no room at all (a subset of the above).
    full_waiters: AtomicUsize,
    gate: Mutex<()>,
    gate_signal: Condvar,
    pub(crate) token: CancelToken,
    pub(crate) recycle: ArrayQueue<Vec<T>>,
    /// One shard per worker: counts, times, latencies, custom counters.
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) errors: Mutex<ErrorStore>,
    /// Every error recorded, kept or not; readable without the lock, so a
    /// live snapshot never waits for a worker that records an error.
    error_total: AtomicU64,
    pub(crate) on_worker_done: Option<WorkerDoneFn>,
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
            flow: CachePadded::new(Flow {
                in_flight: AtomicUsize::new(0),
                submitted: AtomicU64::new(0),
            }),
            closed: CachePadded::new(AtomicBool::new(false)),
            producer_dropped: AtomicU64::new(0),
            waiting_producers: AtomicUsize::new(0),
            full_waiters: AtomicUsize::new(0),
            gate: Mutex::new(()),
            gate_signal: Condvar::new(),
            token,
            recycle: ArrayQueue::new(recycle_slots),
            metrics: Metrics::with_latency(
                n_workers,
                config.metrics_mode == crate::MetricsMode::Latency,
            ),
            errors: Mutex::new(ErrorStore::default()),
            error_total: AtomicU64::new(0),
            on_worker_done,
            config,
        }
    }

    /// Whether no new input is accepted (closed, waited, dropped or cancelled).
    #[inline]
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(SeqCst)
    }

    /// A cheap early refusal for the submit paths; the authoritative check is the
    /// one after the reservation. One load per item: cancelling the pool also
    /// closes it (the pool listens to its token, and `cancel` tells listeners
    /// before it returns), so `closed` covers both, and the token is read only
    /// to say which.
    #[inline]
    pub(crate) fn refuses_quickly(&self) -> Option<Refusal> {
        if self.closed.load(std::sync::atomic::Ordering::Relaxed) {
            Some(self.refusal())
        } else {
            None
        }
    }

    /// Why a closed pool refuses.
    #[cold]
    fn refusal(&self) -> Refusal {
        if self.token.is_cancelled() {
            Refusal::Cancelled
        } else {
            Refusal::Closed
        }
    }

    /// Workers may exit: no input will come and every reserved item is finished.
    #[inline]
    pub(crate) fn is_done(&self) -> bool {
        self.closed.load(SeqCst) && self.flow.in_flight.load(SeqCst) == 0
    }

    pub(crate) fn in_flight(&self) -> usize {
        self.flow.in_flight.load(SeqCst)
    }

    pub(crate) fn submitted(&self) -> u64 {
        self.flow.submitted.load(SeqCst)
    }

    /// Errors recorded so far (item errors, finish errors, panics).
    pub(crate) fn error_total(&self) -> u64 {
        self.error_total.load(SeqCst)
    }

    /// The merged metrics, with the items producers dropped (accepted, then
    /// cancelled before the push) counted as dropped, like the report does.
    pub(crate) fn stats(&self, total_time: std::time::Duration) -> pool_metrics::Stats {
        let mut stats = self.metrics.stats_with_total(total_time);
        stats.dropped = stats.dropped.wrapping_add(self.producer_dropped());
        stats
    }

    pub(crate) fn producer_dropped(&self) -> u64 {
        self.producer_dropped.load(SeqCst)
    }

    /// Counts `n` items as accepted. Called before they are pushed, so the count is
    /// complete by the time a worker can finish them.
    #[inline]
    pub(crate) fn count_submitted(&self, n: u64) {
        self.flow.submitted.fetch_add(n, SeqCst);
    }

    /// Counts `n` accepted items that were dropped before they could be pushed.
    pub(crate) fn count_producer_dropped(&self, n: u64) {
        self.producer_dropped.fetch_add(n, SeqCst);
    }

    /// Reserves room for `k` items, waiting as `wait` allows.
    pub(crate) fn reserve(&self, k: usize, wait: Wait) -> Result<(), Refusal> {
        loop {
            let mut current = self.flow.in_flight.load(SeqCst);
            while current + k <= self.config.capacity {
                match self.flow.in_flight.compare_exchange_weak(
                    current,
                    current + k,
                    SeqCst,
                    SeqCst,
                ) {
                    Ok(_) => {
                        let refusal = if self.token.is_cancelled() {
                            Some(Refusal::Cancelled)
                        } else if self.closed.load(SeqCst) {
                            Some(Refusal::Closed)
                        } else {
                            None
                        };
                        return match refusal {
                            Some(refusal) => {
                                self.release(k);
                                Err(refusal)
                            }
                            None => Ok(()),
                        };
                    }
                    Err(actual) => current = actual,
                }
            }
            if let Some(refusal) = self.refuses_quickly() {
                return Err(refusal);
            }
            match wait {
                Wait::No => return Err(Refusal::Full),
                Wait::Until(_) | Wait::Forever => self.wait_for_room(k, wait)?,
            }
        }
    }

    /// Blocks until `k` items might fit, the deadline passes, or the pool closes.
    ///
    /// # Hysteresis
    ///
    /// Waking the producer for every release costs two context switches and a
    /// futex call per release; on a machine with as many workers as cores the
    /// woken producer also preempts a worker. So a producer that finds room, but
    /// the pool still above its low-water mark (see [`Shared::low_water`]),
    /// lingers for at most [`LINGER`] before it takes the room: the pool has
    /// plenty of queued work meanwhile, and the wake-up at the low-water mark
    /// lets it refill half the pool at once. It stops lingering at once when a
    /// worker runs out of work (see [`Shared::wake_producers_if_waiting`]), so
    /// a pool never idles while a producer waits. Room is never withheld for
    /// longer than `LINGER`: workers that hold items for long (or forever,
    /// waiting for this very producer) cannot stall it.
    #[cold]
    fn wait_for_room(&self, k: usize, wait: Wait) -> Result<(), Refusal> {
        let deadline = match wait {
            Wait::No => return Err(Refusal::Full),
            Wait::Until(deadline) => Some(deadline),
            Wait::Forever => None,
        };
        let mut guard = self.gate.lock().unwrap_or_else(PoisonError::into_inner);
        self.waiting_producers.fetch_add(1, SeqCst);
        let mut linger_until: Option<Instant> = None;
        let outcome = loop {
            if self.token.is_cancelled() {
                break Err(Refusal::Cancelled);
            }
            if self.closed.load(SeqCst) {
                break Err(Refusal::Closed);
            }
            // Counted as a full waiter before reading the count: a release
            // that this read misses then sees the count and wakes us.
            self.full_waiters.fetch_add(1, SeqCst);
            let in_flight = self.flow.in_flight.load(SeqCst);
            let has_room = in_flight + k <= self.config.capacity;
            if has_room {
                self.full_waiters.fetch_sub(1, SeqCst);
                if in_flight <= self.low_water() {
                    break Ok(());
                }
            }
            let now = Instant::now();
            // With room: linger (see above). Without: any release may bring
            // room, and releases wake full waiters.
            let until = if has_room {
                let linger = *linger_until.get_or_insert(now + LINGER);
                if now >= linger {
                    break Ok(());
                }
                Some(deadline.map_or(linger, |deadline| deadline.min(linger)))
            } else {
                deadline
            };
            guard = match until {
                Some(until) if now >= until => {
                    if !has_room {
                        self.full_waiters.fetch_sub(1, SeqCst);
                    }
                    // The caller's deadline passed (lingering never outlasts it).
                    break if has_room { Ok(()) } else { Err(Refusal::Full) };
                }
                Some(until) => {
                    self.gate_signal
                        .wait_timeout(guard, until - now)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
                None => self
                    .gate_signal
                    .wait(guard)
                    .unwrap_or_else(PoisonError::into_inner),
            };
            if !has_room {
                self.full_waiters.fetch_sub(1, SeqCst);
            }
        };
        self.waiting_producers.fetch_sub(1, SeqCst);
        outcome
    }

    /// The in-flight count at or below which every waiting producer is woken:
    /// room for at least half the pool, and for any one reservation (`k` is at
    /// most the batch size).
    #[inline]
    fn low_water(&self) -> usize {
        let capacity = self.config.capacity;
        capacity - self.config.batch_size.max(capacity / 2)
    }

    /// Wakes waiting producers, lingering ones included: called by a worker
    /// that found no work, so the pool needs input now.
    #[inline]
    pub(crate) fn wake_producers_if_waiting(&self) {
        if self.waiting_producers.load(SeqCst) > 0 {
            self.wake_producers();
        }
    }

    /// Gives back room for `k` finished (or backed-out) items.
    pub(crate) fn release(&self, k: usize) {
        let previous = self.flow.in_flight.fetch_sub(k, SeqCst);
        debug_assert!(previous >= k, "released more than reserved");
        // Producers that found no room wait for any release; lingering ones
        // (they saw room) only for the low-water mark. See `wait_for_room`.
        if self.waiting_producers.load(SeqCst) > 0
            && (self.full_waiters.load(SeqCst) > 0 || previous - k <= self.low_water())
        {
            self.wake_producers();
        }
        if previous == k && self.closed.load(SeqCst) {
            self.sleep.notify_all();
        }
    }

    #[cold]
    fn wake_producers(&self) {
        let _guard = self.gate.lock().unwrap_or_else(PoisonError::into_inner);
        self.gate_signal.notify_all();
    }

    /// Stops accepting input and wakes everyone so they can drain and exit.
    pub(crate) fn close(&self) {
        self.closed.store(true, SeqCst);
        self.sleep.notify_all();
        self.wake_producers();
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

impl<T: Send> OnCancel for Shared<T> {
    fn on_cancel(&self) {
        self.close();
    }
}
