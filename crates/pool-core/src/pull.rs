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
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

/// The side of a pull source the workers see, whatever the iterator's type.
pub(crate) trait Pull<T>: Send + Sync {
    /// Takes up to `max` items into `chunk`. Returns whether more may come:
    /// `false` once the iterator ended or panicked, or the source was stopped.
    /// A panic of the iterator is caught and returned as `Err`.
    fn fill(&self, chunk: &mut Vec<T>, max: usize) -> Result<bool, Box<dyn std::any::Any + Send>>;
    /// Stops the source: no worker takes from it any more.
    fn stop(&self);
    /// One more parcel is queued (a worker pushed it back).
    fn parcel_pushed(&self);
    /// A worker is done with what it took from one parcel (a chunk, or
    /// nothing): when no parcel is queued and no chunk is in hand any more,
    /// `run` may return.
    fn parcel_done(&self);
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
    /// Parcels queued plus chunks in workers' hands.
    outstanding: usize,
    /// Items taken from the iterator so far.
    taken: u64,
    ending: Ending,
}

/// A pull source over an iterator of type `I`.
pub(crate) struct Source<I> {
    /// `None` once the iterator panicked: its state is unknown then.
    items: Mutex<Option<I>>,
    progress: Mutex<Progress>,
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
                outstanding: 1,
                taken: 0,
                ending: Ending::Open,
            }),
            idle: Condvar::new(),
        }
    }

    /// Waits until no parcel is queued and no chunk is in hand; returns how
    /// many items were taken, how the run ended, and the iterator (`None` if
    /// it panicked).
    pub(crate) fn wait(&self) -> (u64, Ending, Option<I>) {
        let mut progress = lock(&self.progress);
        while progress.outstanding > 0 {
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
        lock(&self.progress).outstanding += 1;
    }

    fn parcel_done(&self) {
        let mut progress = lock(&self.progress);
        progress.outstanding -= 1;
        if progress.outstanding == 0 {
            self.idle.notify_all();
        }
    }
}
