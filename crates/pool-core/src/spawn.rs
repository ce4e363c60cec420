//! Tree-shaped work: a worker adds items to its own pool while it runs one
//! ([`Ctx::spawn`], [`Spawner`]), never waiting for room.
//!
//! # Typed, through an untyped `Ctx`
//!
//! `Ctx` is not generic (workers, layers and middleware all take `&Ctx`), so
//! it holds its pool's shared state with the item type erased
//! (`Ctx::pool`, an `Arc<dyn Any>`), and [`Ctx::spawner`] gets it back as a
//! `Shared<T>` with a type check: `Some` only when `T` is the pool's item
//! type and the worker is running items. A [`Spawner`] borrows the `Ctx`, so
//! it cannot outlive the call it was made in.
//!
//! # Where a spawned item goes
//!
//! - Keyed pool: to its key's inbox, like any item (I8). A worker is a
//!   producer like another: the items it spawns for one key are processed
//!   in the order it spawned them.
//! - Unkeyed pool, on the worker's own thread: to the worker's deque of
//!   spawned items (a crossbeam `Worker`, not `Sync`, reached through a
//!   thread-local slot the worker thread fills when it starts: [`enter`]),
//!   last in, first out, so a tree is walked depth first and its frontier
//!   stays small; idle siblings steal the oldest item, the largest subtree.
//!   A `SeqCst` fence after the push makes it the write the sleep protocol
//!   needs, as for a shared batch (`Queues::share`).
//! - Unkeyed pool, on another thread (a `&Ctx` handed to a scoped thread
//!   during the call): to the global injector.
//!
//! # Counted, bounded, and the tree's end
//!
//! Before the push, a spawned item takes one unit of room without waiting
//! and without looking at `closed` (`Capacity::take_for_spawn`, from units
//! its worker takes 32 at a time: it may go over the capacity, which is the
//! *overshoot*), and is counted as submitted on the worker's own counter
//! (`Ledger::count_spawned`). So the books balance as
//! for any item (I1), and `in_flight` stays above zero from a root's
//! reservation until the last item of its tree finished: a closed pool's
//! workers leave only when no item is queued, running, or able to spawn
//! more (capacity.rs, "Spawned items"; loom: `loom_tree.rs`).
//!
//! That argument needs the caller to hold an item: a spawn is possible only
//! while the worker is in its run loop (`Ctx::running`, set around
//! `WorkerThread::run`): not from the maker, `finish` or a `Drop`. An item
//! pulled by `Pool::run` holds no room; its spawns go to its own worker's
//! deque (or, from another thread, to the injector, which that worker looks
//! at before it may leave), so nothing is stranded either. And they are
//! outstanding in the pull source (`Parcel::Grown`, pull.rs "Descendants"),
//! so `Pool::run` too returns only when the trees of its items are done.
//!
//! # Cost
//!
//! Nothing on any path but the spawn's own: the worker thread fills its slot
//! once, `find_job` pops an empty deque of spawned items with two loads, and
//! an idle worker looks at its spawn credits with one load. A spawn costs a
//! relaxed load of the cancel flag, a CAS on its worker's credits (and one
//! add to `in_flight` per 32 spawns), an add to the worker's own count, a
//! thread-local look-up, the deque push, a fence, and the sleep check (a
//! load when nobody sleeps).

use std::any::Any;
use std::cell::RefCell;
use std::fmt;
use std::rc::Rc;
use std::sync::atomic::Ordering::Relaxed;

use crossbeam_deque::Worker as LocalQueue;

use crate::queues::{Parcel, Target};
use crate::shared::Shared;
use crate::{Ctx, SpawnError, TrySpawnError};

thread_local! {
    /// The deque of spawned items of the worker running on this thread (a
    /// `LocalQueue<Parcel<T>>` of the pool `thread::is_worker_of` names),
    /// filled once when a worker thread starts.
    static OWN_DEQUE: RefCell<Option<Rc<dyn Any>>> = const { RefCell::new(None) };
}

/// Called once by a worker thread before its maker runs: the items this
/// worker spawns on its own thread go to `deque`.
/// `deque` is an `Rc<LocalQueue<Parcel<T>>>` with its type erased
/// (`Launch::erase_local`).
pub(crate) fn enter(deque: Rc<dyn Any>) {
    OWN_DEQUE.with(|slot| *slot.borrow_mut() = Some(deque));
}

/// Called once by a worker thread before it ends: the thread's spawn slot
/// lets go of its deque, which goes back to the seat (`Pool::set_workers`).
pub(crate) fn leave() {
    // `try_with`: during the thread's teardown the slot is gone already.
    let _ = OWN_DEQUE.try_with(|slot| slot.borrow_mut().take());
}

/// Pushes `parcel` onto the deque of spawned items of the worker running
/// on this thread, if this thread is one of `shared`'s workers; otherwise
/// hands it back.
fn push_here<T: 'static>(
    shared: &Shared<T>,
    parcel: Parcel<T>,
    hint: usize,
) -> Result<(), Parcel<T>> {
    if !crate::thread::is_worker_of(shared) {
        return Err(parcel);
    }
    let mut parcel = Some(parcel);
    // `try_with`: during the thread's teardown the slot is gone, and the
    // item goes to the injector instead.
    let _ = OWN_DEQUE.try_with(|slot| {
        let slot = slot.borrow();
        if let Some(deque) = slot
            .as_ref()
            .and_then(|deque| deque.downcast_ref::<LocalQueue<Parcel<T>>>())
            && let Some(parcel) = parcel.take()
        {
            shared.queues.share(deque, parcel, hint);
        }
    });
    match parcel {
        None => Ok(()),
        Some(parcel) => Err(parcel),
    }
}

/// A worker's handle for adding items of type `T` to its own pool, from
/// [`Ctx::spawner`]: the type check done once for many spawns. It borrows
/// the `Ctx`, so it lives no longer than the call it was made in.
///
/// ```
/// use pool_core::{Ctx, Pool};
///
/// // Every number below 1000 once, grown from the root 1: n's children are
/// // 2n and 2n + 1.
/// let pool = Pool::builder().workers(2).build(|ctx: &Ctx, n: u32| -> anyhow::Result<()> {
///     let spawner = ctx.spawner::<u32>().expect("a pool of u32 running an item");
///     for child in [2 * n, 2 * n + 1] {
///         if child < 1000 {
///             spawner.spawn(child)?;
///         }
///     }
///     Ok(())
/// })?;
/// pool.sender().send(1)?;
/// let report = pool.wait()?; // returns when the whole tree is done
/// assert_eq!((report.processed(), report.spawned()), (999, 998));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Spawner<'ctx, T> {
    shared: &'ctx Shared<T>,
    worker: usize,
}

impl<T> Clone for Spawner<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Spawner<'_, T> {}

impl<T> fmt::Debug for Spawner<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Spawner")
            .field("worker", &self.worker)
            .field("in_flight", &self.shared.capacity.in_flight())
            .finish()
    }
}

impl<T: Send + 'static> Spawner<'_, T> {
    /// Adds `item` to the pool. Never waits: when the pool is at capacity
    /// the item goes over it (see [`Ctx::spawn`] for the rule, the order and
    /// the end of the tree). Refused, with the item handed back, only when
    /// the pool was cancelled.
    ///
    /// In a keyed pool the item's key is computed here; if the key function
    /// panics, the panic reaches the caller and the item is not taken.
    #[inline]
    pub fn spawn(&self, item: T) -> Result<(), SpawnError<T>> {
        let shared = self.shared;
        if shared.token.flag().load(Relaxed) {
            return Err(SpawnError::Cancelled(item));
        }
        // Before any room is taken, as for a sent item: a panicking key
        // function leaves nothing behind.
        let target = shared.queues.target(&item, self.worker + 1);
        shared.capacity.take_for_spawn(self.worker);
        self.push(item, target);
        Ok(())
    }

    /// Adds `item` to the pool only if the pool has room for it now;
    /// otherwise hands it back as [`TrySpawnError::Full`] (the worker may
    /// then process it itself). Spawning only this way keeps `in_flight`
    /// within the capacity: a hard bound on memory, where
    /// [`spawn`](Spawner::spawn) lets a tree go over.
    #[inline]
    pub fn try_spawn(&self, item: T) -> Result<(), TrySpawnError<T>> {
        let shared = self.shared;
        if shared.token.flag().load(Relaxed) {
            return Err(TrySpawnError::Cancelled(item));
        }
        let target = shared.queues.target(&item, self.worker + 1);
        if !shared.capacity.try_take(1) {
            return Err(TrySpawnError::Full(item));
        }
        self.push(item, target);
        Ok(())
    }

    /// Counts an item whose room is taken and pushes it to `target`.
    #[inline]
    fn push(&self, item: T, target: Target) {
        let shared = self.shared;
        // Counted before the push, so `submitted` is complete when it finishes.
        shared.ledger.count_spawned(self.worker, 1);
        // Grown from an item of a pull run (one load when none is going
        // on): outstanding there too, so `Pool::run` waits for it.
        let parcel = match shared.queues.lineage(self.worker).current() {
            None => Parcel::One(item),
            Some(source) => {
                source.parcel_pushed();
                Parcel::Grown(item, source)
            }
        };
        let parcel = match target {
            Target::Any(hint) => match push_here(shared, parcel, hint) {
                Ok(()) => return,
                Err(parcel) => parcel,
            },
            Target::Worker(_) => parcel,
        };
        shared.push(parcel, target);
    }
}

impl Ctx {
    /// A handle for adding items of type `T` to this worker's own pool, or
    /// `None` when the pool's items are of another type (a call pool's
    /// items are `Call`s) or the worker is not running an item (in its
    /// maker, its `finish` or a `Drop`). See [`Ctx::spawn`].
    ///
    /// The type check is done here, once, so a worker that spawns many
    /// items takes a spawner first; the spawner borrows the `Ctx`.
    ///
    /// ```
    /// use pool_core::{Ctx, Pool, Worker};
    ///
    /// struct Probe;
    /// impl Worker<u64> for Probe {
    ///     type Error = std::convert::Infallible;
    ///     fn work(&mut self, ctx: &Ctx, n: u64) -> Result<(), Self::Error> {
    ///         assert!(ctx.spawner::<u64>().is_some()); // the pool's item type, in a call
    ///         assert!(ctx.spawner::<u32>().is_none()); // another type
    ///         if n == 0 {
    ///             let spawner = ctx.spawner::<u64>().expect("checked above");
    ///             (1..=3).try_for_each(|child| spawner.spawn(child)).expect("not cancelled");
    ///         }
    ///         Ok(())
    ///     }
    ///     fn finish(&mut self, ctx: &Ctx) -> Result<(), Self::Error> {
    ///         assert!(ctx.spawner::<u64>().is_none()); // no item in hand
    ///         Ok(())
    ///     }
    /// }
    ///
    /// let pool = Pool::builder().workers(1).build_stateful(|_id| Probe)?;
    /// pool.sender().send(0)?;
    /// assert_eq!(pool.wait()?.processed(), 4);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline]
    pub fn spawner<T: Send + 'static>(&self) -> Option<Spawner<'_, T>> {
        if !self.running.load(Relaxed) {
            return None;
        }
        let shared = self.pool.as_deref()?.downcast_ref::<Shared<T>>()?;
        Some(Spawner {
            shared,
            worker: self.worker.0,
        })
    }

    /// Adds `item` to this worker's own pool, for tree-shaped work: walking
    /// a directory tree, crawling links, expanding a search. Never waits for
    /// room.
    ///
    /// - **Capacity.** The item takes one unit of room like any other, but
    ///   never waits for it: when the pool is at capacity it goes over (the
    ///   overshoot, visible in [`Pool::in_flight`](crate::Pool::in_flight) and
    ///   [`Snapshot::in_flight`](crate::Snapshot::in_flight)). Producers
    ///   outside the pool wait while the pool is over, so the overshoot is
    ///   made only of the tree's own items; a worker's own spawns are taken
    ///   last in, first out (depth first), which keeps a tree's frontier
    ///   small. [`try_spawn`](Ctx::try_spawn) refuses instead, for a hard
    ///   bound.
    /// - **Counts.** The item counts as submitted (and as
    ///   [`spawned`](crate::Report::spawned)), then as processed, failed or
    ///   dropped like any item: `submitted == processed + failed + dropped`
    ///   holds for the whole tree.
    /// - **The end.** It is accepted after [`Pool::close`](crate::Pool::close)
    ///   (which stops producers outside the pool, not the tree), so
    ///   [`Pool::wait`](crate::Pool::wait) returns when the whole tree is done:
    ///   no item queued, running, or able to spawn more.
    /// - **Cancel.** After a cancel it is refused
    ///   ([`SpawnError::Cancelled`], the item handed back), and what the tree
    ///   had queued is dropped and counted as dropped.
    /// - **Order.** In a keyed pool ([`Builder::chunk_by`](crate::Builder::chunk_by))
    ///   the item goes to its key's worker; the items one worker spawns for
    ///   a key are processed in the order it spawned them.
    ///
    /// It is refused as [`SpawnError::Unavailable`] when `T` is not the
    /// pool's item type, or outside the processing of an item (see
    /// [`spawner`](Ctx::spawner)). `T` is the type of `item` as written: an
    /// integer literal is an `i32` unless told otherwise, so in a pool of
    /// `u64` write `ctx.spawn(3u64)`, or take `ctx.spawner::<u64>()`. Through middleware, every attempt of a
    /// retried item spawns what it spawns.
    ///
    /// ```
    /// use pool_core::{Ctx, Pool};
    ///
    /// // A directory tree, as (depth, index) pairs: three children per
    /// // directory down to depth 6. One worker, room for one item: the
    /// // spawns go over the capacity rather than wait for the worker itself.
    /// let pool = Pool::builder().workers(1).capacity(1).batch_size(1).build(
    ///     |ctx: &Ctx, (depth, index): (u32, u64)| -> anyhow::Result<()> {
    ///         if depth < 6 {
    ///             for child in 0..3 {
    ///                 ctx.spawn((depth + 1, index * 3 + child))?;
    ///             }
    ///         }
    ///         Ok(())
    ///     },
    /// )?;
    /// pool.sender().send((0, 0))?;
    /// let report = pool.wait()?; // closes at once; the tree still completes
    /// assert_eq!(report.processed(), (3u64.pow(7) - 1) / 2); // 1 + 3 + ... + 729
    /// assert!(report.is_balanced());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline]
    pub fn spawn<T: Send + 'static>(&self, item: T) -> Result<(), SpawnError<T>> {
        match self.spawner() {
            Some(spawner) => spawner.spawn(item),
            None => Err(SpawnError::Unavailable(item)),
        }
    }

    /// Adds `item` to this worker's own pool if the pool has room for it
    /// now; otherwise hands it back as [`TrySpawnError::Full`], so the
    /// worker can process it itself. Otherwise as [`spawn`](Ctx::spawn).
    ///
    /// ```
    /// use pool_core::{Ctx, Pool, TrySpawnError};
    ///
    /// // Sums a tree of 2^10 - 1 nodes within a capacity of 8: a child that
    /// // finds no room is walked right here instead.
    /// fn walk(ctx: &Ctx, depth: u32) -> u64 {
    ///     let mut here = 1;
    ///     if depth < 9 {
    ///         for _ in 0..2 {
    ///             match ctx.try_spawn(depth + 1) {
    ///                 Ok(()) => {}
    ///                 Err(TrySpawnError::Full(child)) => here += walk(ctx, child),
    ///                 Err(refused) => panic!("{refused}"),
    ///             }
    ///         }
    ///     }
    ///     here
    /// }
    /// let pool = Pool::builder().workers(2).capacity(8).batch_size(1).build(
    ///     |ctx: &Ctx, depth: u32| {
    ///         ctx.metrics().add("nodes", walk(ctx, depth));
    ///         Ok::<(), std::convert::Infallible>(())
    ///     },
    /// )?;
    /// pool.sender().send(0)?;
    /// let report = pool.wait()?;
    /// assert_eq!(report.stats().counters.get("nodes"), 1023);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline]
    pub fn try_spawn<T: Send + 'static>(&self, item: T) -> Result<(), TrySpawnError<T>> {
        match self.spawner() {
            Some(spawner) => spawner.try_spawn(item),
            None => Err(TrySpawnError::Unavailable(item)),
        }
    }
}
