//! Pull mode ([`Pool::run`](crate::Pool::run)): the workers take items from
//! the caller's iterator themselves, a chunk at a time, so each item is made,
//! processed and freed on one thread and no producer thread competes with the
//! workers for the cores.
//!
//! # How it works
//!
//! `run` puts one [`Parcel::Pull`](crate::queues::Parcel) into the queues. A
//! worker that takes it locks the iterator, takes up to a chunk of items,
//! unlocks, pushes the parcel back (so an idle sibling can take the next chunk
//! while this one runs), counts the chunk as submitted and runs it like a
//! batch. When the iterator ends, the pool closes or is cancelled, the worker
//! that notices does not push the parcel back. `run` waits until no parcel is
//! queued and no chunk is in a worker's hands, then returns.
//!
//! # Descendants: what the taken items lead to
//!
//! Two kinds of parcels carry a pulled item's work on, and `run` waits for
//! them too (each is *outstanding* from before it is pushed until after it
//! ran): the back half of a chunk a worker hands to an idle sibling
//! (`Parcel::Pulled`, `Bench::hand_over`), and an item spawned while a
//! pulled item, or one of its descendants, runs (`Parcel::Grown`,
//! `Ctx::spawn`). Which source a worker's current job descends from is in
//! its [`Lineage`] slot, which the worker writes only when that changes (a
//! pull run's chunks all come from one source), and a spawn reads with one
//! load when no pull run is in progress. So `run` returns when no item taken
//! from the iterator, nor any item grown from one, is queued or running.
//!
//! # Invariants owned here
//!
//! - **Nothing lost** (I1, with the ledger): an item is either still in the
//!   iterator (handed back by `run` on refusal), or taken and counted as
//!   submitted before it runs, then counted by the worker that took it.
//! - **No hang**: the parcel holds one unit of capacity from `run` until it is
//!   retired for good, so workers cannot exit while it is queued; `run` waits
//!   only for chunks that workers are running, and refuses to be called from
//!   one of the pool's own workers (it would wait for itself).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed, Ordering::SeqCst};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

/// The side of a pull source the workers see, whatever the iterator's type.
pub(crate) trait Pull<T>: Send + Sync {
    /// Takes up to `max` items into `chunk`. Returns whether more may come:
    /// `false` once the iterator ended or panicked, or the source was stopped.
    /// A panic of the iterator is caught and returned as `Err`.
    fn fill(&self, chunk: &mut Vec<T>, max: usize) -> Result<bool, Box<dyn std::any::Any + Send>>;
    /// Stops the source: no worker takes from it any more.
    fn stop(&self);
    /// One more parcel is outstanding: the source's own (a worker pushed it
    /// back), part of a chunk handed to a sibling, or an item spawned from a
    /// pulled item or its descendants. Called before the parcel is pushed.
    fn parcel_pushed(&self);
    /// A worker is done with one outstanding parcel (what it took from the
    /// source's parcel, a chunk or nothing; a handed-over part; a spawned
    /// item): when none is outstanding any more, `run` may return.
    fn parcel_done(&self);
}

/// The pull source the job a worker runs descends from, if any: one slot
/// per worker (in `Queues`), so an item spawned during the job is counted as
/// outstanding in that source (see "Descendants").
pub(crate) struct Lineage<T> {
    /// Whether `source` holds one: a spawn outside any pull run reads only
    /// this.
    set: AtomicBool,
    source: Mutex<Option<Arc<dyn Pull<T>>>>,
}

impl<T> Lineage<T> {
    pub(crate) fn new() -> Self {
        Lineage {
            set: AtomicBool::new(false),
            source: Mutex::new(None),
        }
    }

    /// The worker's next jobs descend from `source` (or from none). The
    /// worker calls it only when that changes.
    #[cold]
    pub(crate) fn enter(&self, source: Option<&Arc<dyn Pull<T>>>) {
        let mut slot = lock(&self.source);
        *slot = source.map(Arc::clone);
        self.set.store(slot.is_some(), Relaxed);
    }

    /// The source the current job descends from. The worker wrote the slot
    /// before the job, on its thread (a helper thread of the job started
    /// after), so a relaxed load sees it.
    #[inline]
    pub(crate) fn current(&self) -> Option<Arc<dyn Pull<T>>> {
        if !self.set.load(Relaxed) {
            return None;
        }
        lock(&self.source).clone()
    }
}

/// How a pull run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ending {
    /// Still going.
    Open,
    /// The iterator returned `None`.
    Exhausted,
    /// A worker stopped taking items: the pool closed or was cancelled.
    Stopped,
    /// The iterator panicked.
    Panicked,
}

/// Where a pull run stands, behind the source's lock.
struct Progress {
    /// Items taken from the iterator so far.
    taken: u64,
    ending: Ending,
}

/// A pull source over an iterator of type `I`.
pub(crate) struct Source<I> {
    /// `None` once the iterator panicked: its state is unknown then.
    items: Mutex<Option<I>>,
    progress: Mutex<Progress>,
    /// Parcels queued, chunks in workers' hands, and descendants not yet
    /// run (see "Descendants"). An atomic, so that a spawn does not take
    /// the lock; the last `parcel_done` notifies under it.
    outstanding: AtomicUsize,
    /// Signalled when `outstanding` reaches 0.
    idle: Condvar,
}

fn lock<G>(mutex: &Mutex<G>) -> MutexGuard<'_, G> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<I: Iterator> Source<I> {
    /// A source with one parcel about to be queued.
    pub(crate) fn new(items: I) -> Self {
        Source {
            items: Mutex::new(Some(items)),
            progress: Mutex::new(Progress {
                taken: 0,
                ending: Ending::Open,
            }),
            outstanding: AtomicUsize::new(1),
            idle: Condvar::new(),
        }
    }

    /// Waits until no parcel is queued and no chunk is in hand; returns how
    /// many items were taken, how the run ended, and the iterator (`None` if
    /// it panicked).
    pub(crate) fn wait(&self) -> (u64, Ending, Option<I>) {
        let mut progress = lock(&self.progress);
        // Read under the lock, which the last `parcel_done` takes before it
        // notifies: it cannot fall between this check and the wait.
        while self.outstanding.load(SeqCst) > 0 {
            progress = self
                .idle
                .wait(progress)
                .unwrap_or_else(PoisonError::into_inner);
        }
        let (taken, ending) = (progress.taken, progress.ending);
        drop(progress);
        (taken, ending, lock(&self.items).take())
    }
}

impl<T, I> Pull<T> for Source<I>
where
    I: Iterator<Item = T> + Send,
    T: Send,
{
    fn fill(&self, chunk: &mut Vec<T>, max: usize) -> Result<bool, Box<dyn std::any::Any + Send>> {
        if lock(&self.progress).ending != Ending::Open {
            return Ok(false);
        }
        let mut items = lock(&self.items);
        let Some(iter) = items.as_mut() else {
            return Ok(false);
        };
        let before = chunk.len();
        let pulled = catch_unwind(AssertUnwindSafe(|| {
            for _ in 0..max {
                match iter.next() {
                    Some(item) => chunk.push(item),
                    None => return false,
                }
            }
            true
        }));
        let taken = (chunk.len() - before) as u64;
        let more = match &pulled {
            Ok(more) => *more,
            Err(_) => {
                // The iterator's state is unknown after a panic: never call
                // it again.
                *items = None;
                false
            }
        };
        drop(items);
        let mut progress = lock(&self.progress);
        progress.taken += taken;
        if !more && progress.ending == Ending::Open {
            progress.ending = if pulled.is_err() {
                Ending::Panicked
            } else {
                Ending::Exhausted
            };
        }
        drop(progress);
        pulled.map(|_| more)
    }

    fn stop(&self) {
        let mut progress = lock(&self.progress);
        if progress.ending == Ending::Open {
            progress.ending = Ending::Stopped;
        }
    }

    fn parcel_pushed(&self) {
        self.outstanding.fetch_add(1, SeqCst);
    }

    fn parcel_done(&self) {
        if self.outstanding.fetch_sub(1, SeqCst) == 1 {
            let _progress = lock(&self.progress);
            self.idle.notify_all();
        }
    }
}
