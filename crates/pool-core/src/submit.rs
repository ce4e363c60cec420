//! The two ways in: a batching `Submitter` per producer and a cloneable
//! `Sender`. Both end in the same two paths: [`Shared::send_one`] for a lone
//! item, and `Submitter::push_batch` for a batch.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use pool_batch::Batcher;

use crate::capacity::{Refusal, Wait};
use crate::held::Holding;
use crate::queues::{Parcel, Target};
use crate::roster::{Route, generation_of};
use crate::shared::Shared;
use crate::{SendError, SubmitError, TrySendError, TrySubmitError};

/// How many items an unbatched `Submitter` counts as submitted at once, ahead
/// of submitting them: one shared write per this many items instead of one
/// per item, and every item counted before it is pushed. What it has not
/// used is given back on flush and drop.
const PRECOUNT: u64 = 256;

fn refused<T>(refusal: Refusal, item: T) -> TrySubmitError<T> {
    match refusal {
        Refusal::Full => TrySubmitError::Full(item),
        Refusal::Closed => TrySubmitError::Closed(item),
        Refusal::Cancelled => TrySubmitError::Cancelled(item),
    }
}

fn blocking<T>(error: TrySubmitError<T>) -> SubmitError<T> {
    match error {
        TrySubmitError::Closed(item) => SubmitError::Closed(item),
        TrySubmitError::Cancelled(item) => SubmitError::Cancelled(item),
        TrySubmitError::Full(item) => {
            // A reservation that may wait forever returns only once it has
            // room or the pool refuses; never `Full`.
            debug_assert!(false, "a blocking reservation never reports Full");
            SubmitError::Closed(item)
        }
    }
}

impl<T> Shared<T> {
    /// The one way a lone item enters the pool (`Sender::send`, and a
    /// `Submitter` with batch size 1): refuse early if closed, route (the key
    /// function runs before any room is reserved, so a panicking one leaves
    /// no room behind), reserve room for one, let `count` count it, push.
    #[inline]
    pub(crate) fn send_one(
        &self,
        item: T,
        wait: Wait,
        hint: usize,
        count: impl FnOnce(),
    ) -> Result<(), (Refusal, T)> {
        if let Some(refusal) = self.capacity.refuses_quickly() {
            return Err((refusal, item));
        }
        let target = self.queues.target(&item, hint);
        if let Err(refusal) = self.reserve(1, wait) {
            return Err((refusal, item));
        }
        // Counted before the push, so `submitted` is complete when it finishes.
        count();
        self.push(Parcel::One(item), target);
        Ok(())
    }
}

/// A producer's handle: batches items locally and pushes whole batches.
///
/// Take one per producer thread with [`Pool::submitter`](crate::Pool::submitter).
/// It borrows the pool, so the pool cannot be waited on or dropped while a
/// submitter still holds items: share it across threads with
/// [`std::thread::scope`]. Its methods take `&mut self`, so one submitter cannot be
/// used from two threads at once by accident.
///
/// Items are buffered until a batch is full, then pushed as one job. The buffer is
/// flushed by [`flush`](Submitter::flush) and on drop. **Buffered items are not yet
/// visible to workers**: flush before waiting on something the workers make of
/// them. Room for a whole batch is reserved when its first item arrives, so
/// `submit` blocks (and `try_submit` refuses) only on the first item of a batch.
///
/// The room a partly filled batch holds cannot block its own thread: a
/// `Sender::send` (or another submitter) on the same thread that finds the
/// pool full may go over the capacity by the room this thread's submitters
/// hold, instead of waiting for room only this thread could give back (see
/// [`Builder::capacity`](crate::Builder::capacity)). And on one of the pool's
/// own workers, `submit` never waits for room at all.
///
/// ```
/// use pool_core::{Ctx, Pool};
///
/// let pool = Pool::builder().workers(2).batch_size(16).continue_on_error().build(|_ctx: &Ctx, n: u32| {
///     if n % 1000 == 7 { Err(std::io::Error::other(format!("{n} ends in seven"))) } else { Ok(()) }
/// })?;
/// std::thread::scope(|scope| {
///     for producer in 0..2u32 {
///         let pool = &pool;
///         scope.spawn(move || {
///             let mut submitter = pool.submitter();
///             for n in 0..100 {
///                 submitter.submit(producer * 1000 + n).expect("pool open");
///             }
///         });
///     }
/// });
/// let report = pool.join();
/// assert_eq!((report.processed(), report.failed()), (198, 2));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Submitter<'pool, T> {
    shared: &'pool Shared<T>,
    /// The open batch: one for an unkeyed pool, one per worker for a keyed pool.
    batchers: Box<[Batcher<T>]>,
    batch_size: usize,
    /// Room reserved and not used yet.
    credits: usize,
    /// Batches of more than one item: the fast path of `submit_with` applies.
    batched: bool,
    /// Unbatched items counted in the pool's `submitted` ahead of time and
    /// not submitted yet (batched items are counted when their batch is
    /// pushed).
    precounted: u64,
    hint: usize,
    /// The room this submitter holds (`credits` and buffered items), counted
    /// on its thread's record so that a blocked reservation on the same
    /// thread may use it (`held.rs`).
    holding: Holding,
    /// The generation of the worker count its open batches were routed
    /// with (keyed pools: see `roster.rs`, "Items routed but not pushed").
    generation: u64,
}

impl<T> fmt::Debug for Submitter<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Submitter")
            .field("buffered", &self.buffered())
            .field("batch_size", &self.batch_size)
            .field("open_batches", &self.batchers.len())
            .finish()
    }
}

impl<'pool, T> Submitter<'pool, T> {
    pub(crate) fn new(
        shared: &'pool Shared<T>,
        batchers: Box<[Batcher<T>]>,
        batch_size: usize,
        hint: usize,
    ) -> Self {
        Submitter {
            shared,
            batchers,
            batch_size,
            credits: 0,
            batched: batch_size > 1,
            precounted: 0,
            hint,
            holding: Holding::default(),
            generation: generation_of(shared.queues.roster().word()),
        }
    }

    /// Submits an item, blocking while the pool is at capacity.
    ///
    /// Returns the item back if the pool is closed or cancelled (also while
    /// blocked); the items buffered before that are flushed (or, on cancel,
    /// dropped and counted).
    ///
    /// In a keyed pool the item's key is computed here, on the caller's thread;
    /// if the key function panics, the panic reaches the caller and the item is
    /// not taken.
    #[inline]
    pub fn submit(&mut self, item: T) -> Result<(), SubmitError<T>> {
        self.submit_with(item, Wait::Forever).map_err(blocking)
    }

    /// Submits every item of `items` in order, blocking while the pool is at
    /// capacity: the same as calling [`submit`](Submitter::submit) for each,
    /// and faster for an unkeyed pool with batches, where the open batch is
    /// filled straight from the iterator with one room and closed check per
    /// batch instead of per item.
    ///
    /// On refusal (the pool closed or was cancelled) the refused item comes
    /// back in the error, as with `submit`; the items after it were never
    /// taken from the iterator, so pass `iter.by_ref()` to keep them. Items
    /// taken before the refusal were accepted (or, on cancel, dropped and
    /// counted), exactly as with one `submit` per item.
    ///
    /// ```
    /// use pool_core::{Ctx, Pool};
    ///
    /// let pool = Pool::builder().workers(2).build(|_ctx: &Ctx, n: u64| {
    ///     std::hint::black_box(n);
    ///     Ok::<_, std::convert::Infallible>(())
    /// })?;
    /// pool.submitter().submit_iter(0..10_000).expect("pool open");
    /// assert_eq!(pool.wait()?.processed(), 10_000);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn submit_iter<I>(&mut self, items: I) -> Result<(), SubmitError<T>>
    where
        I: IntoIterator<Item = T>,
    {
        let mut items = items.into_iter();
        if !self.batched || self.shared.queues.is_keyed() {
            return items.try_for_each(|item| self.submit(item));
        }
        loop {
            if self.credits == 0 {
                // Room for the next batch is reserved with its first item in
                // hand, so a refusal has an item to hand back.
                let Some(item) = items.next() else {
                    return Ok(());
                };
                self.submit(item)?;
                continue;
            }
            if let Some(refusal) = self.shared.capacity.refuses_quickly() {
                let Some(item) = items.next() else {
                    return Ok(());
                };
                self.flush();
                return Err(blocking(refused(refusal, item)));
            }
            // The open batch has room for exactly `credits` more items (room is
            // reserved a batch at a time), so filling stops at the batch's end.
            let batcher = &mut self.batchers[0];
            let mut credits = self.credits;
            let mut full = None;
            let mut exhausted = false;
            while credits > 0 {
                let Some(item) = items.next() else {
                    exhausted = true;
                    break;
                };
                credits -= 1;
                if let Some(batch) = batcher.push(item) {
                    full = Some(batch);
                    break;
                }
            }
            self.credits = credits;
            if let Some(batch) = full {
                self.push_batch(Target::Any(self.hint), batch);
            }
            if exhausted {
                return Ok(());
            }
        }
    }

    /// Submits an item if there is room now; otherwise hands it back as
    /// [`TrySubmitError::Full`]. With batch size 1 that happens only when
    /// `capacity` items really are unfinished; with batches, room is reserved
    /// a batch at a time (see [`Builder::capacity`](crate::Builder::capacity)).
    #[inline]
    pub fn try_submit(&mut self, item: T) -> Result<(), TrySubmitError<T>> {
        self.submit_with(item, Wait::No)
    }

    /// Submits an item, waiting at most `timeout` for room; hands it back as
    /// [`TrySubmitError::Full`] when the time runs out.
    pub fn submit_timeout(&mut self, item: T, timeout: Duration) -> Result<(), TrySubmitError<T>> {
        self.submit_with(item, Wait::timeout(timeout))
    }

    /// How many items are buffered and not yet pushed.
    pub fn buffered(&self) -> usize {
        self.batchers.iter().map(Batcher::len).sum()
    }

    /// Pushes the buffered items now and gives back the room reserved for the
    /// rest of the batch. If the pool was cancelled meanwhile, the buffered items
    /// are dropped and counted as dropped.
    pub fn flush(&mut self) {
        self.push_buffered();
        if self.credits > 0 {
            self.holding.release(self.credits);
            self.shared.release(self.credits);
            self.credits = 0;
        }
        self.return_precount();
    }

    /// The per-item path. A batching submitter with room reserved only routes
    /// the item (keyed pools) and appends it to its open batch, after one
    /// relaxed load of the closed flag; everything else (reserving room, lone
    /// items, refusals) is out of line in `submit_slow`, so this part inlines
    /// into the caller's loop. A panicking key function here leaves nothing
    /// behind: the room it would have used stays with this submitter, which
    /// gives it back on flush or drop.
    #[inline(always)]
    fn submit_with(&mut self, item: T, wait: Wait) -> Result<(), TrySubmitError<T>> {
        let shared = self.shared;
        if self.batched && self.credits > 0 && shared.capacity.refuses_quickly().is_none() {
            let target = shared.queues.target(&item, self.hint);
            self.append(target, item);
            return Ok(());
        }
        self.submit_slow(item, wait)
    }

    #[inline(never)]
    fn submit_slow(&mut self, item: T, wait: Wait) -> Result<(), TrySubmitError<T>> {
        let shared = self.shared;
        if !self.batched {
            if self.precounted == 0 {
                shared.ledger.count_submitted(PRECOUNT);
                self.precounted = PRECOUNT;
            }
            return shared
                .send_one(item, wait, self.hint, || self.precounted -= 1)
                .map_err(|(refusal, item)| refused(refusal, item));
        }
        if let Some(refusal) = shared.capacity.refuses_quickly() {
            self.flush();
            return Err(refused(refusal, item));
        }
        // Before reserving: see `Shared::send_one`.
        let target = shared.queues.target(&item, self.hint);
        if self.credits == 0
            && let Err(refusal) = self.take_credits(wait)
        {
            return Err(refused(refusal, item));
        }
        self.append(target, item);
        Ok(())
    }

    /// Adds an item whose room is reserved to the open batch of `target`,
    /// and pushes that batch when it is full. In a keyed pool whose worker
    /// count changed since the open batches were routed, they are routed
    /// again first (one comparison per item, of the submitter's own field).
    #[inline(always)]
    fn append(&mut self, target: Target, item: T) {
        let target = match target {
            Target::Worker(route) if route.generation != self.generation => self.regroup_for(route),
            other => other,
        };
        self.credits -= 1;
        if let Some(batch) = self.batchers[target.batch_index()].push(item) {
            self.push_batch(target, batch);
        }
    }

    /// A new item was routed with a newer worker count than the open
    /// batches: routes them again, then the item (by its key's hash) with
    /// the same count.
    #[cold]
    #[inline(never)]
    fn regroup_for(&mut self, route: Route) -> Target {
        let word = self.regroup(Vec::new());
        Target::Worker(Route::of(route.hash, word))
    }

    /// Reserves room for a batch. If there is none right now, first pushes the
    /// partly filled batches (a keyed submitter fills one per worker): their
    /// items hold room too, and only this submitter can push them, so waiting
    /// with them held back could wait forever. On refusal everything buffered is
    /// flushed, so nothing accepted stays behind.
    #[cold]
    fn take_credits(&mut self, wait: Wait) -> Result<(), Refusal> {
        let outcome = match self.shared.reserve(self.batch_size, Wait::Probe) {
            Err(Refusal::Full) => {
                self.push_buffered();
                self.shared.reserve(self.batch_size, wait)
            }
            other => other,
        };
        match outcome {
            Ok(()) => {
                self.credits = self.batch_size;
                self.holding.hold(self.shared, self.batch_size);
                Ok(())
            }
            Err(refusal) => {
                self.flush();
                Err(refusal)
            }
        }
    }

    /// Pushes every open batch that holds items.
    fn push_buffered(&mut self) {
        if !self.shared.queues.is_keyed() {
            if let Some(batch) = self.batchers[0].flush() {
                self.push_batch(Target::Any(self.hint), batch);
            }
            return;
        }
        // One open batch per seat. A push that finds the worker count
        // changed routes everything buffered again: start over.
        let mut index = 0;
        while index < self.batchers.len() {
            if let Some(batch) = self.batchers[index].flush()
                && !self.push_keyed(index, batch)
            {
                index = 0;
                continue;
            }
            index += 1;
        }
    }

    /// Pushes a batch whose room is already reserved, to `target`. Once per
    /// batch, so out of line: the per-item path stays small.
    #[inline(never)]
    fn push_batch(&mut self, target: Target, batch: Vec<T>) {
        let shared = self.shared;
        match target {
            Target::Any(hint) => {
                // Its room is held by the pool's queue from now on.
                self.holding.release(batch.len());
                // Counted before the push, so `submitted` is complete when
                // they finish.
                shared.ledger.count_submitted(batch.len() as u64);
                // Pushed even when the pool was cancelled: the workers drop
                // and count it (they are still there, its reserved room keeps
                // them), on the one path that survives items whose `Drop`
                // panics (see `Bench::drop_items`).
                shared.push(Parcel::Many(batch), Target::Any(hint));
                if let Some(spare) = shared.queues.take_spare() {
                    self.batchers[0].recycle(spare);
                }
            }
            Target::Worker(route) => {
                self.push_keyed(route.index, batch);
            }
        }
    }

    /// Pushes a keyed open batch of seat `index`, counted as a batch is
    /// above. `false` if the worker count changed since its items were
    /// routed: then they and every open batch were routed again
    /// ([`Submitter::regroup`]).
    fn push_keyed(&mut self, index: usize, batch: Vec<T>) -> bool {
        let shared = self.shared;
        let holding = &mut self.holding;
        let pushed = shared.push_batch(batch, index, self.generation, |n| {
            holding.release(n);
            shared.ledger.count_submitted(n as u64);
        });
        match pushed {
            Ok(()) => {
                if let Some(spare) = shared.queues.take_spare() {
                    self.batchers[index].recycle(spare);
                }
                true
            }
            Err((batch, _word)) => {
                self.regroup(batch);
                false
            }
        }
    }

    /// Routes every buffered item again with the current worker count:
    /// `first` (a batch a push handed back), then each open batch, into the
    /// open batches (a group of a whole batch or more is pushed at once).
    /// Returns the word it routed with. The items of one key were in one
    /// batch (one key, one worker), `first` before the open one, and they
    /// stay together and in order, so each key's order holds
    /// (`roster.rs`). Room and counts do not change: the items keep the room
    /// they hold, and are counted when pushed.
    ///
    /// The key function runs again for each item. It returned a key for
    /// the item before; if it panics now, the item goes to the worker of
    /// hash 0 rather than be lost.
    #[cold]
    #[inline(never)]
    fn regroup(&mut self, first: Vec<T>) -> u64 {
        let shared = self.shared;
        let mut items = first;
        for batcher in self.batchers.iter_mut() {
            if let Some(batch) = batcher.flush() {
                items.extend(batch);
            }
        }
        loop {
            let word = shared.queues.roster().word();
            self.generation = generation_of(word);
            let mut groups: Vec<Vec<T>> = (0..self.batchers.len()).map(|_| Vec::new()).collect();
            for item in items.drain(..) {
                let route = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    shared.queues.route_in(&item, word)
                }));
                let index = match route {
                    Ok(Some(route)) => route.index,
                    Ok(None) => 0,
                    Err(payload) => {
                        crate::thread::drop_payload(payload);
                        Route::of(0, word).index
                    }
                };
                groups[index].push(item);
            }
            let mut stale = None;
            for (index, group) in groups.iter_mut().enumerate() {
                let group = std::mem::take(group);
                if group.len() < self.batch_size {
                    for item in group {
                        // The open batch is empty and gets less than a
                        // batch: it does not fill.
                        let full = self.batchers[index].push(item);
                        debug_assert!(full.is_none(), "a regrouped batch never fills");
                    }
                    continue;
                }
                let holding = &mut self.holding;
                let pushed = shared.push_batch(group, index, self.generation, |n| {
                    holding.release(n);
                    shared.ledger.count_submitted(n as u64);
                });
                if let Err((back, _word)) = pushed {
                    stale = Some((index, back));
                    break;
                }
            }
            let Some((index, back)) = stale else {
                return word;
            };
            // The count changed again meanwhile: all over, with everything
            // still buffered.
            items = back;
            for group in &mut groups[index + 1..] {
                items.append(group);
            }
            for batcher in self.batchers.iter_mut() {
                if let Some(batch) = batcher.flush() {
                    items.extend(batch);
                }
            }
        }
    }

    /// Gives back the part of the count taken ahead of time that no item
    /// used, so the pool's `submitted` is exact again.
    #[inline]
    fn return_precount(&mut self) {
        if self.precounted > 0 {
            self.shared.ledger.withdraw_submitted(self.precounted);
            self.precounted = 0;
        }
    }
}

impl<T> Drop for Submitter<'_, T> {
    fn drop(&mut self) {
        self.flush();
    }
}

/// A cloneable, thread-safe handle that submits one item at a time.
///
/// It owns a reference to the pool's shared state, so it can be moved into
/// `'static` threads or into another pool's workers to build pipelines. Items are
/// pushed immediately (no buffering), so nothing waits in a `Sender`. Sending
/// after the pool is closed, waited on or dropped hands the item back.
///
/// A worker may send into its own pool: on one of the pool's own workers,
/// `send` and `send_timeout` never wait for room (the item goes over the
/// capacity, as a [`Ctx::spawn`](crate::Ctx::spawn) does), so workers that
/// all send into their full pool cannot wait for each other. Unlike a spawn,
/// a send is refused once the pool is closed; for tree-shaped work, where
/// items make more items until the whole tree is done, use
/// [`Ctx::spawn`](crate::Ctx::spawn).
///
/// ```
/// use pool_core::{Ctx, Pool};
///
/// let pool = Pool::builder().workers(2).build(|_ctx: &Ctx, _n: u64| Ok::<(), std::io::Error>(()))?;
/// let sender = pool.sender();
/// let handles: Vec<_> = (0..3u64)
///     .map(|t| {
///         let sender = sender.clone();
///         std::thread::spawn(move || for n in 0..10 { sender.send(t * 100 + n).expect("open") })
///     })
///     .collect();
/// for handle in handles { handle.join().unwrap(); }
/// assert_eq!(pool.wait()?.processed(), 30);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Sender<T> {
    shared: Arc<Shared<T>>,
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        Sender {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender")
            .field("closed", &self.shared.capacity.is_closed())
            .finish()
    }
}

impl<T> Sender<T> {
    pub(crate) fn new(shared: Arc<Shared<T>>) -> Self {
        Sender { shared }
    }

    /// The state every thread of the pool shares.
    pub(crate) fn shared(&self) -> &Arc<Shared<T>> {
        &self.shared
    }

    /// Sends an item, blocking while the pool is at capacity. Hands the item back
    /// if the pool is closed or cancelled (also while blocked).
    ///
    /// It does not wait for room it could never get: on one of the pool's own
    /// workers it never waits (it goes over the capacity), and on a thread
    /// whose own [`Submitter`]s hold room in partly filled batches it may go
    /// over by that room (see [`Builder::capacity`](crate::Builder::capacity)).
    ///
    /// ```
    /// use std::sync::{Arc, OnceLock, mpsc};
    /// use pool_core::{Ctx, Pool, Sender};
    ///
    /// // One worker and room for one item: the item in hand holds it, so the
    /// // worker's send goes over the capacity instead of waiting for itself.
    /// let own: Arc<OnceLock<Sender<u32>>> = Arc::new(OnceLock::new());
    /// let (done, finished) = mpsc::channel();
    /// let pool = Pool::builder().workers(1).capacity(1).batch_size(1).build({
    ///     let own = Arc::clone(&own);
    ///     move |_ctx: &Ctx, n: u32| -> anyhow::Result<()> {
    ///         match n {
    ///             0 => done.send(())?,
    ///             _ => own.get().expect("set before the first send").send(n - 1)?,
    ///         }
    ///         Ok(())
    ///     }
    /// })?;
    /// own.set(pool.sender()).expect("set once");
    /// pool.sender().send(10)?;
    /// finished.recv()?; // the last send happened: now close and wait
    /// assert_eq!(pool.wait()?.processed(), 11);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn send(&self, item: T) -> Result<(), SendError<T>> {
        self.send_with(item, Wait::Forever)
            .map_err(|error| match error {
                TrySendError::Closed(item) => SendError::Closed(item),
                TrySendError::Cancelled(item) => SendError::Cancelled(item),
                TrySendError::Full(item) | TrySendError::Disconnected(item) => {
                    debug_assert!(
                        false,
                        "a blocking send neither reports Full nor Disconnected"
                    );
                    SendError::Closed(item)
                }
            })
    }

    /// Sends an item if there is room now; otherwise hands it back as `Full`,
    /// which it says only when `capacity` items really are unfinished (see
    /// [`Builder::capacity`](crate::Builder::capacity)).
    pub fn try_send(&self, item: T) -> Result<(), TrySendError<T>> {
        self.send_with(item, Wait::No)
    }

    /// Sends an item, waiting at most `timeout` for room.
    pub fn send_timeout(&self, item: T, timeout: Duration) -> Result<(), TrySendError<T>> {
        self.send_with(item, Wait::timeout(timeout))
    }

    /// Whether the pool no longer accepts items.
    pub fn is_closed(&self) -> bool {
        self.shared.capacity.is_closed()
    }

    #[inline]
    fn send_with(&self, item: T, wait: Wait) -> Result<(), TrySendError<T>> {
        let shared = &*self.shared;
        shared
            .send_one(item, wait, 0, || shared.ledger.count_submitted(1))
            .map_err(|(refusal, item)| match refusal {
                Refusal::Full => TrySendError::Full(item),
                Refusal::Closed => TrySendError::Closed(item),
                Refusal::Cancelled => TrySendError::Cancelled(item),
            })
    }
}
