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
//! # Room comes back as items finish
//!
//! Bulk release would make `try_send` say `Full` while fewer than `capacity`
//! items are unfinished: finished items could still hold room in a worker's
//! hands. So each worker publishes a running total of the reserved items it
//! finished (`note_finished`, a plain store per job, before the item is
//! counted in the metrics), and room is given back up to that total by a
//! `fetch_max` on the worker's `given_back` watermark (`give_back`). The
//! worker does it in bulk as before; a producer that finds no room and may
//! not wait for long (`Wait::No`, `Wait::Until`) does it for every worker
//! first (`reclaim`). Whoever moves a watermark releases exactly the
//! difference, so a unit of room is never given back twice. Between moving
//! a watermark and releasing, a thread counts itself in the worker's
//! `giving`; `reclaim` waits for those few instructions to end and the
//! producer then reads the counter once more, so room already claimed by
//! someone else is never missed (loom:
//! `loom_a_producer_that_saw_an_item_finish_gets_its_room`, which fails
//! without the wait).
//!
//! # Spawned items: the whole tree, then the exit
//!
//! A worker adds items to its own pool with `Ctx::spawn` (`spawn.rs`). Such
//! an item takes one unit of room like any other
//! ([`Capacity::take_for_spawn`], from units the worker takes a block at a
//! time), but never waits for it and is taken even after a close: it may
//! take `in_flight` over the limit (the *overshoot*). Producers outside the pool
//! then wait until the tree is back under the limit, so the overshoot is
//! made only of spawned items; how far it goes is the tree's business (its
//! frontier: a worker's own spawns are taken last-in first-out, depth
//! first), and `Ctx::try_spawn` refuses instead, for a hard bound.
//!
//! The exit condition needs nothing new. A spawned item's unit is added
//! while its parent is running, and a running item holds its own unit until
//! it has returned (`note_finished` comes after the call). So, by induction
//! from a root that a producer reserved before the close, `in_flight > 0`
//! from the root's reservation until the last item of its tree finishes:
//! `closed && in_flight == 0` means no item is queued, running, or able to
//! spawn more, and no worker leaves before then. A worker's unused credits
//! are units of `in_flight` too, so they only delay the end until that
//! worker runs out of work, when it gives them back before it looks at the
//! exit condition; a producer that finds the pool full takes them back as
//! it takes back finished room, so `Full` still means that many units are
//! held by unfinished items. An item that holds no room
//! (pulled from `Pool::run`) spawns onto its own worker's deque, which that
//! worker empties before it looks at the exit condition. The loom model
//! `loom_tree.rs` checks this with close racing the tree.
//!
//! # Going over the limit instead of waiting
//!
//! Two callers would wait for room that only they can give back, so they go
//! over the limit instead ([`Capacity::reserve_with`]'s `leeway`, asked only
//! when the pool is full and the caller is about to wait):
//! - one of the pool's own workers (a `Sender::send` into its own pool):
//!   every worker blocked sending would wait forever, so a worker never
//!   waits for room in its own pool (unlimited leeway, the same overshoot
//!   as a spawn);
//! - a thread whose own submitters hold room in partly filled batches
//!   (`held.rs`): the room is given back only when they push, which that
//!   thread cannot do while it waits. It may go over by exactly that much,
//!   so `in_flight <= capacity + held` for it, and of several such threads
//!   at least one always fits once the workers drained what was pushed.
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
//! # What the gate does not do
//!
//! It knows nothing of queues, workers or tokens. Its transitions return what
//! the caller must do next: [`Capacity::release`] says when it drained a closed
//! pool (wake the workers so they exit), and [`Capacity::close`] says whether
//! the pool was open. The pool (`shared.rs`) does those wake-ups.
//!
//! The `loom` models in `loom_capacity.rs` check close, cancel and the counter
//! with real `Capacity` and `Sleep` values.

use std::time::{Duration, Instant};

use crossbeam_utils::CachePadded;

use crate::sync::{
    Acquire, AtomicBool, AtomicU64, AtomicUsize, Gate, GateClock, Relaxed, SeqCst, SpinWait, fence,
    seq_cst_point,
};

/// The longest a producer that sees room lingers for the pool to drain to its
/// low-water mark (see `Capacity::wait_for_room`).
const LINGER: Duration = Duration::from_micros(500);

/// How long a producer may wait for capacity.
#[derive(Clone, Copy)]
pub(crate) enum Wait {
    /// Not at all: a caller's `try_*`. Takes back finished room first.
    No,
    /// Not at all, and without taking back finished room: a submitter's look
    /// for room before it flushes its partly filled batches and reserves
    /// again with the caller's own `Wait`.
    Probe,
    /// Until this time: a caller's `*_timeout`. Takes back finished room first.
    Until(Instant),
    /// As long as it takes: a caller's blocking `submit`/`send`.
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

/// The flags that stop input, both written once.
struct Shut {
    /// No new input is accepted (closed, waited, dropped or cancelled).
    closed: AtomicBool,
    /// Set by [`Capacity::cancel`] just before it closes; read only after
    /// `closed`, to say which refusal.
    cancelled: AtomicBool,
}

/// One worker's finished reserved items and the room given back for them.
struct Returns {
    /// Reserved items the worker finished, in all. Written by that worker.
    finished: AtomicU64,
    /// How much of `finished` has been released. Moved forward only, by the
    /// worker or by a producer that needs room, with `fetch_max`.
    given_back: AtomicU64,
    /// Threads between moving `given_back` and releasing the room it moved
    /// over: a producer that finds nothing to take back waits for them, so
    /// room already claimed is released before it says `Full`.
    giving: AtomicUsize,
    /// Units the worker took ahead for the items it spawns (see "Spawned
    /// items"): counted in `in_flight`, held by no item yet.
    spawn_credits: AtomicUsize,
}

/// How many units of room a worker takes at once for the items it spawns:
/// one shared write per this many spawns. Under loom, few, so the models
/// reach the point where they run out.
#[cfg(not(loom))]
const SPAWN_CREDITS: usize = 32;
#[cfg(loom)]
const SPAWN_CREDITS: usize = 2;

/// The capacity counter, the closed flag and the producers' gate of one pool.
pub(crate) struct Capacity {
    /// Tasks waiting for room without blocking a thread (`send_async`, a
    /// `CallService`'s `poll_ready`): every release notifies one per unit
    /// freed, at the cost of one load when none waits (see `signal.rs`).
    #[cfg(feature = "async")]
    pub(crate) room: crate::signal::Signal,
    /// Items reserved and not yet finished. Written by producers (per batch)
    /// and workers (per release).
    in_flight: CachePadded<AtomicUsize>,
    /// Read on every submit, written once: kept off the counter's cache line
    /// and off the line the producers' waiting counts and lock write to.
    shut: CachePadded<Shut>,
    waiting_producers: AtomicUsize,
    /// Waiting producers that found no room at all (a subset of the above).
    full_waiters: AtomicUsize,
    limit: usize,
    /// See [`Capacity::wait_for_room`].
    low_water: usize,
    gate: Gate,
    /// One per worker: see "Room comes back as items finish".
    returns: Box<[CachePadded<Returns>]>,
}

impl Capacity {
    /// A gate for `limit` items in flight, reserved at most `batch_size` at
    /// once, and finished by `n_workers` workers.
    pub(crate) fn new(limit: usize, batch_size: usize, n_workers: usize) -> Self {
        Capacity {
            #[cfg(feature = "async")]
            room: crate::signal::Signal::new(),
            in_flight: CachePadded::new(AtomicUsize::new(0)),
            shut: CachePadded::new(Shut {
                closed: AtomicBool::new(false),
                cancelled: AtomicBool::new(false),
            }),
            waiting_producers: AtomicUsize::new(0),
            full_waiters: AtomicUsize::new(0),
            limit,
            // Room for at least half the pool, and for any one reservation. The
            // builder checks `batch_size <= limit`; saturating keeps a bad value
            // from panicking here all the same.
            low_water: limit.saturating_sub(batch_size.max(limit / 2)),
            gate: Gate::new(),
            returns: (0..n_workers)
                .map(|_| {
                    CachePadded::new(Returns {
                        finished: AtomicU64::new(0),
                        given_back: AtomicU64::new(0),
                        giving: AtomicUsize::new(0),
                        spawn_credits: AtomicUsize::new(0),
                    })
                })
                .collect(),
        }
    }

    /// Worker `worker` has finished `total` reserved items in all (a running
    /// total). A plain store: call it before the items are counted where
    /// others can see them, so whoever sees them finished can reclaim their
    /// room.
    #[inline]
    pub(crate) fn note_finished(&self, worker: usize, total: u64) {
        self.returns[worker].finished.store(total, Relaxed);
    }

    /// Gives back the room of every item worker `worker` finished that nobody
    /// gave back yet. Returns how many units, and whether that drained a
    /// closed pool (see [`release`](Capacity::release)).
    pub(crate) fn give_back(&self, worker: usize) -> (usize, bool) {
        let returns = &self.returns[worker];
        returns.giving.fetch_add(1, SeqCst);
        let finished = returns.finished.load(Acquire);
        let before = returns.given_back.fetch_max(finished, SeqCst);
        let outcome = if finished > before {
            // Fits: it is room that was reserved, so at most `limit`.
            let units = usize::try_from(finished - before).unwrap_or(usize::MAX);
            (units, self.release(units))
        } else {
            (0, false)
        };
        returns.giving.fetch_sub(1, SeqCst);
        outcome
    }

    /// Gives back what every worker finished, for a producer that found no
    /// room; then waits for anyone still between moving a watermark and
    /// releasing (a few instructions), so that every room already claimed
    /// has been released when the caller looks at the counter again.
    #[cold]
    fn reclaim(&self) {
        for worker in 0..self.returns.len() {
            let _ = self.give_back(worker);
            let _ = self.return_spawn_credits(worker);
        }
        for returns in self.returns.iter() {
            let spin = SpinWait::new();
            while returns.giving.load(SeqCst) > 0 {
                spin.snooze();
            }
        }
    }

    /// Whether no new input is accepted.
    #[inline]
    pub(crate) fn is_closed(&self) -> bool {
        self.shut.closed.load(SeqCst)
    }

    /// A cheap early refusal for the submit paths; the authoritative check is the
    /// one after the reservation. One load per item: cancelling the pool also
    /// closes it (the pool listens to its token, and `cancel` tells listeners
    /// before it returns), so `closed` covers both, and the token is read only
    /// to say which.
    #[inline]
    pub(crate) fn refuses_quickly(&self) -> Option<Refusal> {
        if self.shut.closed.load(Relaxed) {
            Some(self.refusal())
        } else {
            None
        }
    }

    /// The refusal of a closed pool, read with `SeqCst` (unlike
    /// [`refuses_quickly`](Capacity::refuses_quickly)): for an async waiter's
    /// re-check, which must see a close that its registration raced with,
    /// and for `Pool::set_workers`.
    pub(crate) fn refuses(&self) -> Option<Refusal> {
        if self.shut.closed.load(SeqCst) {
            Some(self.refusal())
        } else {
            None
        }
    }

    /// Workers may exit: no input will come and every reserved item is finished.
    #[inline]
    pub(crate) fn is_done(&self) -> bool {
        if !self.shut.closed.load(SeqCst) {
            return false;
        }
        seq_cst_point();
        self.in_flight.load(SeqCst) == 0
    }

    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight.load(SeqCst)
    }

    /// Reserves room for `k` items, waiting as `wait` allows.
    ///
    /// A refusal of a closed pool may come after a reservation that was
    /// backed out, and that release may have drained the pool: the caller
    /// wakes the workers when [`is_done`](Capacity::is_done) says so.
    #[cfg(all(test, loom))]
    pub(crate) fn reserve(&self, k: usize, wait: Wait) -> Result<(), Refusal> {
        self.reserve_with(k, wait, || 0)
    }

    /// [`reserve`](Capacity::reserve) for a caller that may go over the
    /// limit by `leeway()` units rather than wait (see "Going over the
    /// limit"). `leeway` is asked at most once, and only when the pool is
    /// full and the caller would wait (`Wait::Until`, `Wait::Forever`): the
    /// path that finds room never calls it.
    pub(crate) fn reserve_with(
        &self,
        k: usize,
        wait: Wait,
        leeway: impl FnOnce() -> usize,
    ) -> Result<(), Refusal> {
        let mut reclaimed = false;
        let mut limit = self.limit;
        let mut leeway = Some(leeway);
        loop {
            let mut current = self.in_flight.load(SeqCst);
            while current + k <= limit {
                match self
                    .in_flight
                    .compare_exchange_weak(current, current + k, SeqCst, SeqCst)
                {
                    Ok(_) => {
                        seq_cst_point();
                        // The cancel flag is read again when the pool is closed:
                        // a cancel sets it first and closes the pool after, so
                        // a cancel that lands between the two reads shows only
                        // as `closed`, and must still say `Cancelled`.
                        let refusal = if self.shut.cancelled.load(SeqCst) {
                            Some(Refusal::Cancelled)
                        } else if self.shut.closed.load(SeqCst) {
                            Some(self.refusal())
                        } else {
                            None
                        };
                        return match refusal {
                            Some(refusal) => {
                                // Whether this drained the pool is the
                                // caller's to check (see above).
                                let _drained = self.release(k);
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
            // A caller about to wait whose own thread holds room it cannot
            // give back while it waits (see "Going over the limit") goes
            // over by that much instead.
            if matches!(wait, Wait::Until(_) | Wait::Forever)
                && let Some(leeway) = leeway.take()
            {
                let extra = leeway();
                if extra > 0 {
                    limit = self.limit.saturating_add(extra);
                    continue;
                }
            }
            // A caller that may not wait (or not for long) takes back the
            // room of items already finished, and looks at the counter once
            // more, before it is told `Full`. One that waits forever leaves
            // that to the workers' bulk releases, which keep its wake-ups few
            // (see `wait_for_room`), and so does a submitter's probe: taking
            // room back there would let a blocking submitter skip its
            // linger and contend with the workers for every batch.
            if matches!(wait, Wait::No | Wait::Until(_)) && !reclaimed {
                self.reclaim();
                reclaimed = true;
                continue;
            }
            match wait {
                Wait::No | Wait::Probe => return Err(Refusal::Full),
                Wait::Until(_) | Wait::Forever => self.wait_for_room(k, wait, limit)?,
            }
        }
    }

    /// Takes room for one item worker `worker` spawns
    /// ([`Ctx::spawn`](crate::Ctx::spawn)): never waits, never refuses, and
    /// goes over the limit when the pool is full (see "Spawned items").
    /// Neither `closed` nor the cancel flag is read: the caller holds an
    /// item, so the workers are still there (or, with an item pulled from
    /// `Pool::run`, which holds no room, the spawned item goes to the
    /// caller's own deque, which its worker empties before it may leave).
    ///
    /// The room is taken [`SPAWN_CREDITS`] units at a time: a spawn uses one
    /// of the worker's credits (a CAS on its own line) and adds to
    /// `in_flight` only when it has none. The credits are units of
    /// `in_flight` like any: they keep the pool from finishing while they
    /// are held, and the worker gives them back before it looks at the exit
    /// condition ([`return_spawn_credits`](Capacity::return_spawn_credits),
    /// in `idle`), as does a producer about to say `Full` (`reclaim`).
    #[inline]
    pub(crate) fn take_for_spawn(&self, worker: usize) {
        let credits = &self.returns[worker].spawn_credits;
        let mut current = credits.load(Relaxed);
        while current > 0 {
            match credits.compare_exchange_weak(current, current - 1, Relaxed, Relaxed) {
                Ok(_) => return,
                Err(actual) => current = actual,
            }
        }
        self.take_spawn_credits(worker);
    }

    /// Takes a block of room for worker `worker`'s spawns: one unit for the
    /// spawn at hand, the rest as credits.
    #[cold]
    fn take_spawn_credits(&self, worker: usize) {
        self.in_flight.fetch_add(SPAWN_CREDITS, SeqCst);
        self.returns[worker]
            .spawn_credits
            .fetch_add(SPAWN_CREDITS - 1, Relaxed);
    }

    /// Gives back the room worker `worker` took ahead for spawns and did not
    /// use. Returns whether that drained a closed pool (see
    /// [`release`](Capacity::release)). Counted in the worker's `giving`
    /// meanwhile, so that a producer's `reclaim` does not say `Full` before
    /// the units are back.
    pub(crate) fn return_spawn_credits(&self, worker: usize) -> bool {
        let returns = &self.returns[worker];
        if returns.spawn_credits.load(Relaxed) == 0 {
            return false;
        }
        returns.giving.fetch_add(1, SeqCst);
        let units = returns.spawn_credits.swap(0, SeqCst);
        let drained = units > 0 && self.release(units);
        returns.giving.fetch_sub(1, SeqCst);
        drained
    }

    /// Takes room for `k` spawned items only if the pool has it
    /// ([`Ctx::try_spawn`](crate::Ctx::try_spawn)): `false` when full, after
    /// taking back the room of finished items once (as a `try_send` does).
    /// Like [`take`](Capacity::take), it does not look at `closed`.
    pub(crate) fn try_take(&self, k: usize) -> bool {
        let mut reclaimed = false;
        loop {
            let mut current = self.in_flight.load(SeqCst);
            while current + k <= self.limit {
                match self
                    .in_flight
                    .compare_exchange_weak(current, current + k, SeqCst, SeqCst)
                {
                    Ok(_) => return true,
                    Err(actual) => current = actual,
                }
            }
            if reclaimed {
                return false;
            }
            self.reclaim();
            reclaimed = true;
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
    ///
    /// `limit` is the pool's, or more for a caller with leeway.
    #[cold]
    fn wait_for_room(&self, k: usize, wait: Wait, limit: usize) -> Result<(), Refusal> {
        let deadline = match wait {
            Wait::No | Wait::Probe => return Err(Refusal::Full),
            Wait::Until(deadline) => Some(deadline),
            Wait::Forever => None,
        };
        let mut clock = GateClock::start();
        let mut guard = self.gate.lock();
        self.waiting_producers.fetch_add(1, SeqCst);
        let mut linger_until: Option<Instant> = None;
        let outcome = loop {
            // A cancel closes the pool, so `closed` covers both; the token
            // is read after it, to say which (see `reserve`).
            if self.shut.closed.load(SeqCst) {
                break Err(self.refusal());
            }
            // Counted as a full waiter before reading the count: a release
            // that this read misses then sees the count and wakes us.
            self.full_waiters.fetch_add(1, SeqCst);
            seq_cst_point();
            let in_flight = self.in_flight.load(SeqCst);
            let has_room = in_flight + k <= limit;
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

    /// Gives back room for `k` finished (or backed-out) items. Returns `true`
    /// when this release drained a closed pool: the caller must then wake the
    /// workers, which may have parked while the items were in flight.
    #[must_use = "`true` means the pool is closed and drained: wake the workers"]
    pub(crate) fn release(&self, k: usize) -> bool {
        let previous = self.in_flight.fetch_sub(k, SeqCst);
        debug_assert!(previous >= k, "released more than reserved");
        seq_cst_point();
        // Producers that found no room wait for any release; lingering ones
        // (they saw room) only for the low-water mark. See `wait_for_room`.
        if self.waiting_producers.load(SeqCst) > 0
            && (self.full_waiters.load(SeqCst) > 0 || previous - k <= self.low_water)
        {
            self.gate.notify_all();
        }
        #[cfg(feature = "async")]
        self.room.notify(k);
        previous == k && self.shut.closed.load(SeqCst)
    }

    /// Stops accepting input and wakes waiting producers (they return their
    /// items as refused). Returns whether the pool was open. The caller wakes
    /// the workers afterwards, so they can drain and exit.
    pub(crate) fn close(&self) -> bool {
        let was_open = !self.shut.closed.swap(true, SeqCst);
        self.gate.notify_all();
        #[cfg(feature = "async")]
        self.room.notify_all();
        was_open
    }

    /// Marks the pool cancelled, then closes it: from now on refusals say
    /// `Cancelled`. Returns whether the pool was open; the caller wakes the
    /// workers as after [`close`](Capacity::close).
    pub(crate) fn cancel(&self) -> bool {
        self.shut.cancelled.store(true, SeqCst);
        self.close()
    }

    /// Whether the pool was cancelled (its refusals say `Cancelled`).
    pub(crate) fn is_cancelled(&self) -> bool {
        self.shut.cancelled.load(SeqCst)
    }

    /// Why a closed pool refuses. Call only after reading `closed == true`.
    #[cold]
    fn refusal(&self) -> Refusal {
        // The read of `closed` may have been `Relaxed` (`refuses_quickly`),
        // which does not make the cancel's earlier write of its flag visible;
        // with this fence it does (the fence synchronises with the close's
        // `SeqCst` write), so a cancelled pool says `Cancelled`, on weakly
        // ordered CPUs too.
        fence(Acquire);
        if self.shut.cancelled.load(SeqCst) {
            Refusal::Cancelled
        } else {
            Refusal::Closed
        }
    }
}
