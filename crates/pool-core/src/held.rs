//! Room a thread holds in its submitters' partly filled batches, per pool.
//!
//! A batching [`Submitter`](crate::Submitter) reserves room for a whole batch
//! when the batch's first item arrives, and gives it back only when it pushes
//! the batch (or flushes). A thread that holds such a batch and then blocks
//! on the same pool another way (a `Sender::send`, a second submitter) used
//! to wait forever when that room was what kept the pool full: only the
//! blocked thread could give it back. So each thread keeps, per pool, the
//! units its submitters hold ([`HeldRoom`]), and a reservation about to wait
//! may go over the capacity by that much (`Shared::leeway`, capacity.rs
//! "Going over the limit instead of waiting"): the overshoot is bounded by
//! the room the thread itself holds, and once the workers drained every
//! pushed item the thread fits.
//!
//! # Cost
//!
//! A submitter updates its thread's record once per batch (when it takes
//! room, and when it pushes or gives back): a thread-local look-up and a
//! relaxed add on a counter only that thread uses. Nothing per item. The
//! record is read only by a reservation that found the pool full and is
//! about to wait.
//!
//! # A submitter that changes threads
//!
//! `Submitter` is `Send`. Its units are counted on the thread that last took
//! room for it: each time it takes room it moves its holding to the calling
//! thread's record first. A partly filled batch moved to another thread
//! stays counted on the old one until the submitter takes room again, which
//! only gives the old thread leeway it does not need (bounded by the batch).

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use crate::shared::Shared;

/// The units one thread's submitters hold in one pool.
pub(crate) struct HeldRoom {
    /// The pool's shared state (its address; only compared).
    pool: usize,
    units: AtomicUsize,
}

thread_local! {
    /// This thread's records, one per pool it submitted to. Records nobody
    /// references are pruned when a new one is made.
    static HELD: RefCell<Vec<Arc<HeldRoom>>> = const { RefCell::new(Vec::new()) };
}

/// The address that names a pool in the records.
fn address<T>(shared: &Shared<T>) -> usize {
    std::ptr::from_ref(shared) as usize
}

/// The units the calling thread's submitters hold in `shared`'s pool.
pub(crate) fn held_by_this_thread<T>(shared: &Shared<T>) -> usize {
    let pool = address(shared);
    HELD.try_with(|records| {
        records
            .borrow()
            .iter()
            .find(|record| record.pool == pool)
            .map_or(0, |record| record.units.load(Relaxed))
    })
    .unwrap_or(0)
}

/// The calling thread's record for `pool`, made if it has none.
fn record_here(pool: usize) -> Option<Arc<HeldRoom>> {
    HELD.try_with(|records| {
        let mut records = records.borrow_mut();
        if let Some(record) = records.iter().find(|record| record.pool == pool) {
            return Arc::clone(record);
        }
        // Only records a submitter still refers to can hold units.
        records.retain(|record| Arc::strong_count(record) > 1);
        let record = Arc::new(HeldRoom {
            pool,
            units: AtomicUsize::new(0),
        });
        records.push(Arc::clone(&record));
        record
    })
    .ok()
}

/// Whether `record` is the calling thread's record for its pool.
fn is_here(record: &Arc<HeldRoom>) -> bool {
    HELD.try_with(|records| {
        records
            .borrow()
            .iter()
            .any(|mine| Arc::ptr_eq(mine, record))
    })
    .unwrap_or(false)
}

/// One submitter's units, counted on a thread's record.
#[derive(Default)]
pub(crate) struct Holding {
    record: Option<Arc<HeldRoom>>,
    units: usize,
}

impl Holding {
    /// `n` more units held by this submitter (room it just reserved),
    /// counted on the calling thread's record; the units it held already
    /// move there first if they were counted on another thread's.
    pub(crate) fn hold<T>(&mut self, shared: &Shared<T>, n: usize) {
        let current = match self.record.take() {
            Some(record) if is_here(&record) => Some(record),
            moved => {
                if let Some(old) = moved {
                    old.units.fetch_sub(self.units, Relaxed);
                }
                let here = record_here(address(shared));
                if let Some(here) = &here {
                    here.units.fetch_add(self.units, Relaxed);
                }
                here
            }
        };
        if let Some(record) = &current {
            record.units.fetch_add(n, Relaxed);
        }
        self.record = current;
        self.units += n;
    }

    /// `n` units no longer held: their items were pushed, or their room
    /// given back.
    pub(crate) fn release(&mut self, n: usize) {
        if n == 0 {
            return;
        }
        debug_assert!(n <= self.units, "released more room than held");
        let n = n.min(self.units);
        if let Some(record) = &self.record {
            record.units.fetch_sub(n, Relaxed);
        }
        self.units -= n;
    }
}

impl Drop for Holding {
    fn drop(&mut self) {
        let units = self.units;
        self.release(units);
    }
}
