//! The capacity gate: one counter that bounds a pool and tells its workers
//! when to exit, and the gate where producers wait for room.
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
//!
//! # Waiting for room
//!
//! A producer that finds no room waits at the gate, counted in
//! `waiting_producers` and, while it sees no room at all, in `full_waiters`. It
//! counts itself as a full waiter *before* it reads `in_flight`, and a release
//! writes `in_flight` before it reads the counts, so (store buffering again) a
//! release the producer's read misses sees the producer counted and wakes it.
//! The wake-up takes the gate's lock, which the producer holds from its check
//! until it waits, so the wake-up cannot fall between the two.
//!
//! # Which refusal
//!
//! A cancel sets the token first and then closes the pool, so `closed` covers
//! both, and whoever finds the pool closed reads the token *after* `closed` to
//! say `Cancelled` or `Closed`. Reading the token first would let a cancel that
//! lands between the two reads show as a plain close (the loom model
//! `loom_cancel_unblocks_a_producer_at_capacity` found that order).
//!
//! The `loom` models at the bottom of this file check close, cancel and the
//! counter with real `Capacity` and `Sleep` values.

use std::time::{Duration, Instant};

use crossbeam_utils::CachePadded;

use crate::sync::{
    Acquire, AtomicBool, AtomicU64, AtomicUsize, Clock, Gate, Relaxed, SeqCst, fence, seq_cst_point,
};

/// The longest a producer that sees room lingers for the pool to drain to its
/// low-water mark (see `Capacity::wait_for_room`).
const LINGER: Duration = Duration::from_micros(500);

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

/// What the gate needs from the pool around it. The pool implements it with
/// its cancellation token and its sleeping workers; the loom models with
/// model-checked stand-ins. Generic, so both calls inline into the gate.
pub(crate) trait Surroundings {
    /// Whether the pool has been cancelled.
    fn is_cancelled(&self) -> bool;
    /// Wakes every parked worker: called when no input will come any more.
    fn wake_workers(&self);
}

/// The counters producers write once per batch: the reservation, then the count
/// of accepted items. `submitted` is not part of the protocol; it sits here so
/// that a producer's two writes per batch touch one cache line.
struct Flow {
    /// Written by producers (per batch) and workers (per release).
    in_flight: AtomicUsize,
    submitted: AtomicU64,
}

/// The capacity counter, the closed flag and the producers' gate of one pool.
pub(crate) struct Capacity {
    flow: CachePadded<Flow>,
    /// Read on every submit, written once: kept off the counter's cache line.
    closed: CachePadded<AtomicBool>,
    waiting_producers: AtomicUsize,
    /// Waiting producers that found no room at all (a subset of the above).
    full_waiters: AtomicUsize,
    limit: usize,
    /// See [`Capacity::wait_for_room`].
    low_water: usize,
    gate: Gate,
}

impl Capacity {
    /// A gate for `limit` items in flight, reserved at most `batch_size` at once.
    pub(crate) fn new(limit: usize, batch_size: usize) -> Self {
        Capacity {
            flow: CachePadded::new(Flow {
                in_flight: AtomicUsize::new(0),
                submitted: AtomicU64::new(0),
            }),
            closed: CachePadded::new(AtomicBool::new(false)),
            waiting_producers: AtomicUsize::new(0),
            full_waiters: AtomicUsize::new(0),
            limit,
            // Room for at least half the pool, and for any one reservation. The
            // builder checks `batch_size <= limit`; saturating keeps a bad value
            // from panicking here all the same.
            low_water: limit.saturating_sub(batch_size.max(limit / 2)),
            gate: Gate::new(),
        }
    }

    /// Whether no new input is accepted.
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
    pub(crate) fn refuses_quickly(&self, pool: &impl Surroundings) -> Option<Refusal> {
        if self.closed.load(Relaxed) {
            Some(refusal(pool))
        } else {
            None
        }
    }

    /// Workers may exit: no input will come and every reserved item is finished.
    #[inline]
    pub(crate) fn is_done(&self) -> bool {
        if !self.closed.load(SeqCst) {
            return false;
        }
        seq_cst_point();
        self.flow.in_flight.load(SeqCst) == 0
    }

    pub(crate) fn in_flight(&self) -> usize {
        self.flow.in_flight.load(SeqCst)
    }

    /// Items accepted so far.
    pub(crate) fn submitted(&self) -> u64 {
        self.flow.submitted.load(SeqCst)
    }

    /// Counts `n` items as accepted.
    #[inline]
    pub(crate) fn count_submitted(&self, n: u64) {
        self.flow.submitted.fetch_add(n, SeqCst);
    }

    /// Reserves room for `k` items, waiting as `wait` allows.
    pub(crate) fn reserve(
        &self,
        k: usize,
        wait: Wait,
        pool: &impl Surroundings,
    ) -> Result<(), Refusal> {
        loop {
            let mut current = self.flow.in_flight.load(SeqCst);
            while current + k <= self.limit {
                match self.flow.in_flight.compare_exchange_weak(
                    current,
                    current + k,
                    SeqCst,
                    SeqCst,
                ) {
                    Ok(_) => {
                        seq_cst_point();
                        // The token is read again when the pool is closed: a
                        // cancel sets the token first and closes the pool after,
                        // so a cancel that lands between the two reads shows
                        // only as `closed`, and must still say `Cancelled`.
                        let refusal = if pool.is_cancelled() {
                            Some(Refusal::Cancelled)
                        } else if self.closed.load(SeqCst) {
                            Some(refusal(pool))
                        } else {
                            None
                        };
                        return match refusal {
                            Some(refusal) => {
                                self.release(k, pool);
                                Err(refusal)
                            }
                            None => Ok(()),
                        };
                    }
                    Err(actual) => current = actual,
                }
            }
            if let Some(refusal) = self.refuses_quickly(pool) {
                return Err(refusal);
            }
            match wait {
                Wait::No => return Err(Refusal::Full),
                Wait::Until(_) | Wait::Forever => self.wait_for_room(k, wait, pool)?,
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
    /// the pool still above its low-water mark, lingers for at most [`LINGER`]
    /// before it takes the room: the pool has plenty of queued work meanwhile,
    /// and the wake-up at the low-water mark lets it refill half the pool at
    /// once. It stops lingering at once when a worker runs out of work (see
    /// [`Capacity::wake_producers_if_waiting`]), so a pool never idles while a
    /// producer waits. Room is never withheld for longer than `LINGER`: workers
    /// that hold items for long (or forever, waiting for this very producer)
    /// cannot stall it.
    ///
    /// Lingering is a latency trade and not part of the no-hang argument: only
    /// producers without room wait without a deadline, and every release wakes
    /// them. Under loom a timed wait may end at any point (see
    /// `Gate::wait_until`), so the models cover a linger that ends early, late
    /// or not at all before the room is gone again.
    #[cold]
    fn wait_for_room(&self, k: usize, wait: Wait, pool: &impl Surroundings) -> Result<(), Refusal> {
        let deadline = match wait {
            Wait::No => return Err(Refusal::Full),
            Wait::Until(deadline) => Some(deadline),
            Wait::Forever => None,
        };
        let mut clock = Clock::start();
        let mut guard = self.gate.lock();
        self.waiting_producers.fetch_add(1, SeqCst);
        let mut linger_until: Option<Instant> = None;
        let outcome = loop {
            // A cancel closes the pool, so `closed` covers both; the token
            // is read after it, to say which (see `reserve`).
            if self.closed.load(SeqCst) {
                break Err(refusal(pool));
            }
            // Counted as a full waiter before reading the count: a release
            // that this read misses then sees the count and wakes us.
            self.full_waiters.fetch_add(1, SeqCst);
            seq_cst_point();
            let in_flight = self.flow.in_flight.load(SeqCst);
            let has_room = in_flight + k <= self.limit;
            if has_room {
                self.full_waiters.fetch_sub(1, SeqCst);
                if in_flight <= self.low_water {
                    break Ok(());
                }
            }
            let now = clock.now();
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
                Some(until) => self.gate.wait_until(guard, &mut clock, now, until),
                None => self.gate.wait(guard),
            };
            if !has_room {
                self.full_waiters.fetch_sub(1, SeqCst);
            }
        };
        self.waiting_producers.fetch_sub(1, SeqCst);
        drop(guard);
        outcome
    }

    /// Wakes waiting producers, lingering ones included: called by a worker
    /// that found no work, so the pool needs input now.
    #[inline]
    pub(crate) fn wake_producers_if_waiting(&self) {
        if self.waiting_producers.load(SeqCst) > 0 {
            self.gate.notify_all();
        }
    }

    /// Gives back room for `k` finished (or backed-out) items.
    pub(crate) fn release(&self, k: usize, pool: &impl Surroundings) {
        let previous = self.flow.in_flight.fetch_sub(k, SeqCst);
        debug_assert!(previous >= k, "released more than reserved");
        seq_cst_point();
        // Producers that found no room wait for any release; lingering ones
        // (they saw room) only for the low-water mark. See `wait_for_room`.
        if self.waiting_producers.load(SeqCst) > 0
            && (self.full_waiters.load(SeqCst) > 0 || previous - k <= self.low_water)
        {
            self.gate.notify_all();
        }
        if previous == k && self.closed.load(SeqCst) {
            pool.wake_workers();
        }
    }

    /// Stops accepting input and wakes everyone (workers, then producers) so
    /// they can drain and exit.
    pub(crate) fn close(&self, pool: &impl Surroundings) {
        self.closed.store(true, SeqCst);
        pool.wake_workers();
        self.gate.notify_all();
    }
}

/// Why a closed pool refuses. Call only after reading `closed == true`.
#[cold]
fn refusal(pool: &impl Surroundings) -> Refusal {
    // The read of `closed` may have been `Relaxed` (`refuses_quickly`), which
    // does not make the cancel's earlier write of the token visible; with this
    // fence it does (the fence synchronises with the close's `SeqCst` store),
    // so a cancelled pool says `Cancelled`, on weakly ordered CPUs too.
    fence(Acquire);
    if pool.is_cancelled() {
        Refusal::Cancelled
    } else {
        Refusal::Closed
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    //! Exhaustive checks of close, cancel and the capacity counter, with real
    //! `Capacity` and `Sleep` values. Run with `cargo xtask loom`.
    //!
    //! The pool is reduced to what these protocols touch: the queues become
    //! one counter of pushed items (a push is a `SeqCst` write that a worker's
    //! re-check reads, which is all the protocols rely on), a worker is the
    //! loop of `run::run_worker` without its bounded spin (the spin only
    //! re-checks what the re-check after the announcement checks again), and a
    //! producer is the unbatched submit path. A thread that waits forever
    //! (a worker nobody wakes, a producer stuck at the gate) leaves the model
    //! with every thread blocked, which loom reports as a deadlock.

    use super::*;
    use crate::sleep::{Parker, Sleep, unparker_of};
    use crate::sync::check_model;
    use loom::sync::Arc;

    /// The parts of a pool that close, cancel and capacity involve.
    struct Model {
        capacity: Capacity,
        cancelled: AtomicBool,
        /// Items pushed and not yet taken by a worker.
        queued: AtomicUsize,
        /// Items workers took (processed, or dropped after a cancel).
        taken: AtomicUsize,
        sleep: Sleep,
    }

    impl Surroundings for Model {
        fn is_cancelled(&self) -> bool {
            self.cancelled.load(SeqCst)
        }

        fn wake_workers(&self) {
            self.sleep.notify_all();
        }
    }

    impl Model {
        /// A model pool with `n_workers` workers; returns their parkers too.
        fn new(limit: usize, batch_size: usize, n_workers: usize) -> (Arc<Model>, Vec<Parker>) {
            let parkers: Vec<Parker> = (0..n_workers).map(|_| Parker::new()).collect();
            let model = Model {
                capacity: Capacity::new(limit, batch_size),
                cancelled: AtomicBool::new(false),
                queued: AtomicUsize::new(0),
                taken: AtomicUsize::new(0),
                sleep: Sleep::new(parkers.iter().map(unparker_of).collect()),
            };
            (Arc::new(model), parkers)
        }

        /// What `CancelToken::cancel` does to a pool: set the flag, then tell
        /// the pool, which closes (`Shared::on_cancel`).
        fn cancel(&self) {
            self.cancelled.store(true, SeqCst);
            self.capacity.close(self);
        }

        /// `Submitter::submit` at batch size 1 (also `Sender::send`).
        fn submit(&self, wait: Wait) -> Result<(), Refusal> {
            if let Some(refusal) = self.capacity.refuses_quickly(self) {
                return Err(refusal);
            }
            self.capacity.reserve(1, wait, self)?;
            self.queued.fetch_add(1, SeqCst);
            self.sleep.notify_one(0);
            Ok(())
        }

        /// Takes `n` items of room before the model's threads start, as if
        /// workers held them.
        fn preload(&self, n: usize) {
            for _ in 0..n {
                self.capacity
                    .reserve(1, Wait::No, self)
                    .expect("the model starts with room");
            }
        }
    }

    fn try_pop(queued: &AtomicUsize) -> bool {
        let mut current = queued.load(SeqCst);
        while current > 0 {
            match queued.compare_exchange(current, current - 1, SeqCst, SeqCst) {
                Ok(_) => return true,
                Err(actual) => current = actual,
            }
        }
        false
    }

    /// The worker loop of `run::run_worker`: take work; when there is none,
    /// release what it finished, wake waiting producers, exit if done, else
    /// park. `unreleased` is room for items it finished before the model
    /// starts.
    fn worker_loop(model: &Model, index: usize, parker: &Parker, mut unreleased: usize) {
        loop {
            if try_pop(&model.queued) {
                model.taken.fetch_add(1, SeqCst);
                unreleased += 1;
                continue;
            }
            if unreleased > 0 {
                model.capacity.release(unreleased, model);
                unreleased = 0;
            }
            model.capacity.wake_producers_if_waiting();
            if model.capacity.is_done() {
                return;
            }
            model.sleep.start_searching();
            model.sleep.sleep(index, parker, || {
                model.queued.load(SeqCst) > 0 || model.capacity.is_done()
            });
        }
    }

    /// Starts the workers; worker 0 holds `held` finished items (already
    /// reserved with `Model::preload`).
    fn spawn_workers(
        model: &Arc<Model>,
        parkers: Vec<Parker>,
        held: usize,
    ) -> Vec<loom::thread::JoinHandle<()>> {
        parkers
            .into_iter()
            .enumerate()
            .map(|(index, parker)| {
                let model = Arc::clone(model);
                let unreleased = if index == 0 { held } else { 0 };
                loom::thread::spawn(move || worker_loop(&model, index, &parker, unreleased))
            })
            .collect()
    }

    /// (a) Close while workers are parking: one worker still holds an item,
    /// the other is idle. The close's wake-up may come before the idle
    /// worker parks or while it parks with the item still in flight; then
    /// only the release that drains the closed pool can wake it. No worker
    /// may sleep through both.
    #[test]
    fn loom_close_while_workers_park() {
        check_model("close_while_workers_park", || {
            let (model, parkers) = Model::new(2, 1, 2);
            model.preload(1);
            let workers = spawn_workers(&model, parkers, 1);
            model.capacity.close(&*model);
            for worker in workers {
                worker.join().expect("worker thread");
            }
            assert_eq!(model.capacity.in_flight(), 0);
        });
    }

    /// (a) The one-counter argument: a submit racing the close is either
    /// refused, or accepted and then processed before the last worker exits.
    /// An accepted item pushed after the workers left would stay queued.
    #[test]
    fn loom_close_races_a_submit() {
        check_model("close_races_a_submit", || {
            let (model, parkers) = Model::new(2, 1, 1);
            let workers = spawn_workers(&model, parkers, 0);
            let producer = {
                let model = Arc::clone(&model);
                loom::thread::spawn(move || model.submit(Wait::No))
            };
            model.capacity.close(&*model);
            let accepted = producer.join().expect("producer thread");
            for worker in workers {
                worker.join().expect("worker thread");
            }
            match accepted {
                Ok(()) => assert_eq!(model.taken.load(SeqCst), 1),
                Err(refusal) => {
                    assert_eq!(refusal, Refusal::Closed);
                    assert_eq!(model.taken.load(SeqCst), 0);
                }
            }
            assert_eq!(model.queued.load(SeqCst), 0);
            assert_eq!(model.capacity.in_flight(), 0);
        });
    }

    /// (b) Cancel while a producer waits at capacity (the room is held by a
    /// worker that never lets go, like a worker blocked in user code): the
    /// producer returns `Cancelled`, whenever the cancel lands.
    #[test]
    fn loom_cancel_unblocks_a_producer_at_capacity() {
        check_model("cancel_unblocks_a_producer_at_capacity", || {
            let (model, _parkers) = Model::new(1, 1, 0);
            model.preload(1);
            let producer = {
                let model = Arc::clone(&model);
                loom::thread::spawn(move || model.submit(Wait::Forever))
            };
            model.cancel();
            let outcome = producer.join().expect("producer thread");
            assert_eq!(outcome, Err(Refusal::Cancelled));
            assert_eq!(model.capacity.in_flight(), 1);
        });
    }

    /// (b) Cancel while a producer waits at capacity and a worker finishes
    /// the item that holds the room: the producer gets the room before the
    /// cancel or is refused with `Cancelled`; the worker takes whatever was
    /// pushed and exits; the counter returns to zero.
    #[test]
    fn loom_cancel_while_a_producer_waits_and_a_worker_drains() {
        check_model("cancel_while_a_producer_waits_and_a_worker_drains", || {
            let (model, parkers) = Model::new(1, 1, 1);
            model.preload(1);
            let workers = spawn_workers(&model, parkers, 1);
            let producer = {
                let model = Arc::clone(&model);
                loom::thread::spawn(move || model.submit(Wait::Forever))
            };
            model.cancel();
            let outcome = producer.join().expect("producer thread");
            for worker in workers {
                worker.join().expect("worker thread");
            }
            match outcome {
                Ok(()) => assert_eq!(model.taken.load(SeqCst), 1),
                Err(refusal) => {
                    assert_eq!(refusal, Refusal::Cancelled);
                    assert_eq!(model.taken.load(SeqCst), 0);
                }
            }
            assert_eq!(model.capacity.in_flight(), 0);
        });
    }

    /// (c) The counter under two producers and `n_releasers` workers that each
    /// finish one held item, release it and go idle (which wakes waiting
    /// producers), after which releases stop. The pool starts full. Every
    /// reservation keeps `in_flight <= limit`, and both producers get room:
    /// none waits forever while room exists.
    fn two_producers(name: &'static str, limit: usize, n_releasers: usize) {
        check_model(name, move || {
            let (model, _parkers) = Model::new(limit, 1, 0);
            model.preload(limit);
            let releasers: Vec<_> = (0..n_releasers)
                .map(|_| {
                    let model = Arc::clone(&model);
                    loom::thread::spawn(move || {
                        model.capacity.release(1, &*model);
                        model.capacity.wake_producers_if_waiting();
                    })
                })
                .collect();
            let producers: Vec<_> = (0..2)
                .map(|_| {
                    let model = Arc::clone(&model);
                    loom::thread::spawn(move || {
                        let outcome = model.capacity.reserve(1, Wait::Forever, &*model);
                        assert!(model.capacity.in_flight() <= limit, "over capacity");
                        outcome
                    })
                })
                .collect();
            // With one releaser only one producer can get room; the other waits
            // until this thread, standing in for a later release, gives more.
            if n_releasers == 1 {
                model.capacity.release(1, &*model);
            }
            for releaser in releasers {
                releaser.join().expect("releaser thread");
            }
            for producer in producers {
                assert_eq!(producer.join().expect("producer thread"), Ok(()));
            }
            assert_eq!(model.capacity.in_flight(), limit);
        });
    }

    /// (c) Capacity 2, no lingering possible (the low-water mark is 1).
    #[test]
    fn loom_capacity_two_producers_two_releasers() {
        two_producers("capacity_two_producers_two_releasers", 2, 2);
    }

    /// (c) Capacity 2, one releaser and one later release from the main thread.
    #[test]
    fn loom_capacity_two_producers_one_releaser() {
        two_producers("capacity_two_producers_one_releaser", 2, 1);
    }

    /// (c) Capacity 4 (low-water mark 2): after one release a producer sees room
    /// above the low-water mark and lingers; its timed wait may end at any
    /// point, including after the other producer took that room.
    #[test]
    fn loom_capacity_lingering_producers() {
        two_producers("capacity_lingering_producers", 4, 1);
    }
}
