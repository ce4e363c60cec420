//! Where submitted work waits: the global injector, each worker's own deque
//! (which idle siblings steal from), each worker's deque of the items it
//! spawned (`Ctx::spawn`: last in, first out, so a tree is walked depth first
//! and its frontier stays small; siblings steal the oldest, the largest
//! subtrees), the keyed inboxes, and the spare batches.
//!
//! # Invariants owned here
//!
//! - **No job waits behind a blocked worker while others sleep** (I11). A
//!   producer skips its wake-up while a worker searches, trusting the searcher
//!   to take the work; but a searcher takes one job (or a handful, into its own
//!   deque) and then runs it, maybe for long. So whoever takes work re-checks
//!   for leftovers, and the last taker wakes a sleeper for them
//!   ([`Queues::find_job`]). A worker that pops its own deque with more left
//!   wakes one too: the job it runs may block. Test:
//!   `blocked_workers_strand_nothing.rs`.
//! - **Keyed items are never stolen** (I8). In a keyed pool every item goes to
//!   the inbox of the worker its key routes to, an `Injector` only that worker
//!   pops; the push wakes exactly that worker. Test: `keyed_affinity.rs`.
//!
//! Waking goes through [`Sleep`], which these queues own: the sleep protocol's
//! re-check reads the queues ([`Queues::has_work`]), and every push is followed
//! by the matching wake-up, so the two cannot drift apart.

use std::sync::Arc;

use crossbeam_deque::{Injector, Steal, Stealer, Worker as LocalQueue};
use crossbeam_queue::ArrayQueue;
use crossbeam_utils::CachePadded;

use pool_chunk::KeyHasher;

use crate::pull::{Lineage, Pull};
use crate::roster::{self, Entries, Roster, Route};
use crate::sleep::Sleep;

/// A unit in the queues: a lone item (no allocation), a batch, or a source
/// the worker that takes it pulls a chunk of items from (`Pool::run`).
pub(crate) enum Parcel<T> {
    One(T),
    Many(Vec<T>),
    Pull(Arc<dyn Pull<T>>),
    /// Items a worker took from a pull source and handed to a sibling: no
    /// room was reserved for them, so none is given back when they finish.
    /// Outstanding in their source until they ran (pull.rs, "Descendants").
    Pulled(Vec<T>, Arc<dyn Pull<T>>),
    /// An item spawned while a job descending from a pull source ran: it
    /// holds room like any spawned item, and is outstanding in the source
    /// until it ran.
    Grown(T, Arc<dyn Pull<T>>),
}

/// Where a parcel goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    /// Any worker may take it (unkeyed pools). The number spreads wake-ups
    /// over the sleeping workers; any value works.
    Any(usize),
    /// Only the route's worker may take it (keyed pools), if the route's
    /// generation is still the pool's (see `roster.rs`).
    Worker(Route),
}

impl Target {
    /// The index of the open batch a `Submitter` fills for this target: one
    /// per worker in a keyed pool, one in all for an unkeyed pool.
    #[inline]
    pub(crate) fn batch_index(self) -> usize {
        match self {
            Target::Any(_) => 0,
            Target::Worker(route) => route.index,
        }
    }
}

/// Hashes an item's key: computes its key and hashes it. One monomorphised
/// function, so the key function and the hash inline into a single dynamic
/// call per item; the jump to a worker is `Route::of`, with the active count.
pub(crate) type RouteFn<T> = Box<dyn Fn(&T, &KeyHasher) -> u64 + Send + Sync>;

/// Key affinity (`Builder::chunk_by`): the route and one inbox per seat.
struct Keyed<T> {
    route: RouteFn<T>,
    hasher: KeyHasher,
    inboxes: Box<[Inbox<T>]>,
}

/// One seat's keyed inbox, and its counts for a resize's barrier.
struct Inbox<T> {
    queue: CachePadded<Injector<Parcel<T>>>,
    entries: Entries,
}

/// The queues of one pool and the sleep slots of its workers.
pub(crate) struct Queues<T> {
    injector: Injector<Parcel<T>>,
    stealers: Box<[Stealer<Parcel<T>>]>,
    /// The other end of each worker's deque of spawned items (unkeyed pools;
    /// in a keyed pool spawned items go to their key's inbox).
    spawn_stealers: Box<[Stealer<Parcel<T>>]>,
    /// Per worker: the pull source its current job descends from.
    lineages: Box<[CachePadded<Lineage<T>>]>,
    /// Set for pools built with `chunk_by`: then every item is keyed.
    keyed: Option<Keyed<T>>,
    /// How many seats have workers, and the generation of that count.
    roster: Roster,
    /// Emptied batches, handed back to submitters so a steady stream of
    /// batches allocates nothing.
    spares: ArrayQueue<Vec<T>>,
    sleep: Sleep,
}

impl<T> Queues<T> {
    /// Queues for the seats whose deques `stealers` read (and whose
    /// deques of spawned items `spawn_stealers` read), `n_workers` of them
    /// active, keyed when `route` is set, with room for `n_spares` spare
    /// batches.
    pub(crate) fn new(
        stealers: Vec<Stealer<Parcel<T>>>,
        spawn_stealers: Vec<Stealer<Parcel<T>>>,
        route: Option<RouteFn<T>>,
        n_workers: usize,
        n_spares: usize,
        sleep: Sleep,
    ) -> Self {
        let keyed = route.map(|route| Keyed {
            inboxes: (0..stealers.len())
                .map(|_| Inbox {
                    queue: CachePadded::new(Injector::new()),
                    entries: Entries::new(),
                })
                .collect(),
            route,
            hasher: KeyHasher::new(),
        });
        let lineages = (0..stealers.len())
            .map(|_| CachePadded::new(Lineage::new()))
            .collect();
        Queues {
            lineages,
            injector: Injector::new(),
            stealers: stealers.into_boxed_slice(),
            spawn_stealers: spawn_stealers.into_boxed_slice(),
            keyed,
            roster: Roster::new(n_workers),
            spares: ArrayQueue::new(n_spares.max(1)),
            sleep,
        }
    }

    /// Whether every item goes to the worker its key routes to.
    #[inline]
    pub(crate) fn is_keyed(&self) -> bool {
        self.keyed.is_some()
    }

    /// The number of seats, active or not (`Builder::max_workers`).
    #[inline]
    pub(crate) fn seats(&self) -> usize {
        self.stealers.len()
    }

    /// The active count and its generation (`roster.rs`).
    #[inline(always)]
    pub(crate) fn roster(&self) -> &Roster {
        &self.roster
    }

    /// The worker that must process `item` in a keyed pool, now.
    #[inline]
    pub(crate) fn worker_for(&self, item: &T) -> Option<usize> {
        let keyed = self.keyed.as_ref()?;
        Some(Route::of((keyed.route)(item, &keyed.hasher), self.roster.word()).index)
    }

    /// The route of `item` under `word` (keyed pools), the key function
    /// run on the caller's thread; `None` in an unkeyed pool.
    #[inline(always)]
    pub(crate) fn route_in(&self, item: &T, word: u64) -> Option<Route> {
        let keyed = self.keyed.as_ref()?;
        Some(Route::of((keyed.route)(item, &keyed.hasher), word))
    }

    /// Where `item` goes: its key's worker in a keyed pool (the key function
    /// runs here, on the caller's thread; the active count is one relaxed
    /// load), anywhere otherwise.
    #[inline(always)]
    pub(crate) fn target(&self, item: &T, hint: usize) -> Target {
        match &self.keyed {
            Some(keyed) => Target::Worker(Route::of(
                (keyed.route)(item, &keyed.hasher),
                self.roster.word(),
            )),
            None => Target::Any(hint),
        }
    }

    /// Publishes a parcel for any worker and wakes one, if one sleeps.
    /// Keyed parcels go through `Shared::push`, which passes the resize
    /// barrier first (`enter`) and then calls `push_entered`.
    #[inline(always)]
    pub(crate) fn push_any(&self, parcel: Parcel<T>, hint: usize) {
        self.injector.push(parcel);
        self.sleep.notify_one(hint);
    }

    /// Announces a push into seat `index`'s inbox and checks it against a
    /// resize (`roster.rs`, step 2): `Err` with the word to route with
    /// again if it may not go in (the announcement is then taken back).
    #[inline]
    pub(crate) fn enter(
        &self,
        index: usize,
        generation: u64,
        from_worker: impl FnOnce() -> bool,
    ) -> Result<(), u64> {
        let Some(keyed) = &self.keyed else {
            return Ok(());
        };
        let entries = &keyed.inboxes[index].entries;
        entries.announce();
        self.roster
            .admits(generation, from_worker)
            .inspect_err(|_| {
                entries.withdraw();
            })
    }

    /// Publishes an announced parcel into seat `index`'s inbox and wakes
    /// that worker if it sleeps.
    #[inline]
    pub(crate) fn push_entered(&self, parcel: Parcel<T>, index: usize) {
        match &self.keyed {
            Some(keyed) => {
                keyed.inboxes[index].queue.push(parcel);
                self.sleep.notify_worker(index);
            }
            None => {
                // Cannot happen (only routing in a keyed pool makes such a
                // target); the injector still takes the parcel rather than
                // lose it.
                debug_assert!(false, "a worker target in an unkeyed pool");
                self.push_any(parcel, index);
            }
        }
    }

    /// Seat `index`'s worker finished a job: in a keyed pool, counted for a
    /// resize's drain (a store to the seat's own count); otherwise, whether
    /// the worker is to leave now (one relaxed load). A keyed worker leaves
    /// only once its inbox is empty.
    #[inline]
    pub(crate) fn job_done(&self, index: usize) -> bool {
        match &self.keyed {
            Some(keyed) => {
                keyed.inboxes[index].entries.job_done();
                false
            }
            None => self.roster.retires(index),
        }
    }

    /// Whether nothing pushed into a keyed inbox is queued or running
    /// (`roster.rs`, step 3); always for an unkeyed pool.
    pub(crate) fn drained(&self) -> bool {
        match &self.keyed {
            Some(keyed) => roster::drained(keyed.inboxes.iter().map(|inbox| &inbox.entries)),
            None => true,
        }
    }

    /// Hands what seat `index`'s own deques hold to the injector: its worker
    /// retires. Wakes a sibling for it.
    pub(crate) fn hand_off(
        &self,
        index: usize,
        local: &LocalQueue<Parcel<T>>,
        spawned: &LocalQueue<Parcel<T>>,
    ) {
        let mut any = false;
        while let Some(parcel) = spawned.pop().or_else(|| local.pop()) {
            self.injector.push(parcel);
            any = true;
        }
        if any {
            self.sleep.notify_one(index + 1);
        }
    }

    /// Wakes the worker on seat `index` if it sleeps (it is to retire).
    pub(crate) fn wake_seat(&self, index: usize) {
        self.sleep.notify_worker(index);
    }

    /// Whether any queue worker `index` may take from holds a job.
    pub(crate) fn has_work(&self, index: usize) -> bool {
        match &self.keyed {
            Some(keyed) => !keyed.inboxes[index].queue.is_empty(),
            None => {
                !self.injector.is_empty()
                    || self.stealers.iter().any(|stealer| !stealer.is_empty())
                    || self
                        .spawn_stealers
                        .iter()
                        .any(|stealer| !stealer.is_empty())
            }
        }
    }

    /// Finds the next parcel for worker `index`. Keyed pools: its own inbox
    /// only. Otherwise: the newest item it spawned, then its own deque, then
    /// a handful from the global injector, then a sibling's deques (the
    /// oldest of what it spawned, the largest part of its tree).
    #[inline]
    pub(crate) fn find_job(
        &self,
        index: usize,
        local: &LocalQueue<Parcel<T>>,
        spawned: &LocalQueue<Parcel<T>>,
    ) -> Option<Parcel<T>> {
        if let Some(keyed) = &self.keyed {
            return pop(&keyed.inboxes[index].queue);
        }
        // An empty deque costs two loads here: nothing is written.
        if let Some(parcel) = spawned.pop() {
            // As below: this item may block, let a sleeper take the rest.
            if !spawned.is_empty() {
                self.sleep.notify_one(index + 1);
            }
            return Some(parcel);
        }
        if let Some(parcel) = local.pop() {
            // This job may block for long; let a sleeper take what is left here.
            if !local.is_empty() {
                self.sleep.notify_one(index + 1);
            }
            return Some(parcel);
        }
        self.steal(index, local)
    }

    fn steal(&self, index: usize, local: &LocalQueue<Parcel<T>>) -> Option<Parcel<T>> {
        let n_workers = self.stealers.len();
        loop {
            let mut retry = false;
            match self.injector.steal_batch_and_pop(local) {
                Steal::Success(parcel) => {
                    self.wake_for_leftovers(index);
                    return Some(parcel);
                }
                Steal::Retry => retry = true,
                Steal::Empty => {}
            }
            for offset in 1..n_workers {
                let sibling = (index + offset) % n_workers;
                match self.stealers[sibling].steal_batch_and_pop(local) {
                    Steal::Success(parcel) => {
                        self.wake_for_leftovers(index);
                        return Some(parcel);
                    }
                    Steal::Retry => retry = true,
                    Steal::Empty => {}
                }
                // One spawned item at a time: the oldest, whose subtree is
                // the largest, goes to this worker; the rest stay with the
                // sibling that made them, depth first.
                match self.spawn_stealers[sibling].steal() {
                    Steal::Success(parcel) => {
                        self.wake_for_leftovers(index);
                        return Some(parcel);
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

    /// Called after worker `index` took work by stealing: if work is still
    /// queued anywhere, wake a sleeper (unless someone is searching). Steals
    /// happen once per batch, so the scan of the queues is not per item.
    fn wake_for_leftovers(&self, index: usize) {
        if self.has_work(index) {
            self.sleep.notify_one(index + 1);
        }
    }

    /// Whether a sibling of worker `index` sleeps with nothing queued to
    /// take: then the rest of a batch is better shared than held. Never in a
    /// keyed pool, whose items must stay on their worker. One load of the
    /// sleep counters when nobody idles; the queues are looked at only when
    /// somebody does.
    #[inline]
    pub(crate) fn siblings_wait_for_work(
        &self,
        index: usize,
        local: &LocalQueue<Parcel<T>>,
    ) -> bool {
        self.keyed.is_none()
            && self.sleep.anyone_asleep()
            && local.is_empty()
            && !self.has_work(index)
    }

    /// Puts a parcel on one of worker `index`'s own deques (part of a batch
    /// on its deque; an item it spawned on its deque of those), where an idle
    /// sibling steals it, and wakes one if it sleeps.
    pub(crate) fn share(&self, local: &LocalQueue<Parcel<T>>, parcel: Parcel<T>, index: usize) {
        local.push(parcel);
        // A deque push is not a `SeqCst` write, which the sleep protocol's
        // store-buffering argument needs (see `sleep.rs`): the fence makes
        // it one. Splits are rare, so the fence costs nothing per submitted
        // item; a spawned item pays it (with its `SeqCst` room and count).
        std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
        self.sleep.notify_one(index + 1);
    }

    /// Worker `index`'s slot: the pull source its current job descends from.
    #[inline]
    pub(crate) fn lineage(&self, index: usize) -> &Lineage<T> {
        &self.lineages[index]
    }

    /// Wakes every sleeping worker: the pool closed, was cancelled or drained.
    pub(crate) fn wake_all(&self) {
        self.sleep.notify_all();
    }

    /// The sleep slots, for the worker thread's idle protocol.
    #[inline]
    pub(crate) fn sleep(&self) -> &Sleep {
        &self.sleep
    }

    /// Keeps an emptied batch for reuse; a full shelf just drops it.
    #[inline]
    pub(crate) fn put_spare(&self, batch: Vec<T>) {
        let _ = self.spares.push(batch);
    }

    /// An emptied batch to fill again, if one is spare.
    #[inline]
    pub(crate) fn take_spare(&self) -> Option<Vec<T>> {
        self.spares.pop()
    }
}

/// The next parcel in an inbox.
#[inline]
fn pop<T>(inbox: &Injector<Parcel<T>>) -> Option<Parcel<T>> {
    loop {
        match inbox.steal() {
            Steal::Success(parcel) => return Some(parcel),
            Steal::Empty => return None,
            Steal::Retry => {}
        }
    }
}
