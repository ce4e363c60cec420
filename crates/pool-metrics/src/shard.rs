//! One worker's shard: the pool's own counters and times (one writer), custom
//! counters (any thread), and the worker's share of the latency histogram.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{
    AtomicU64,
    Ordering::{Acquire, Relaxed, Release},
};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use hdrhistogram::Histogram;

/// A counter name: `&'static str` (no allocation) or `String`.
pub type Name = Cow<'static, str>;

type CounterMap = HashMap<Name, Arc<AtomicU64>, ahash::RandomState>;

/// A counter written by one thread only and read by any: adds are a plain load
/// and store, not a locked read-modify-write.
///
/// Stores are `Release` and loads `Acquire` (plain moves on x86): a reader
/// that sees a count also sees what the writer did before counting. The pool
/// relies on it: a worker publishes the room of a finished item before it
/// counts the item, so whoever sees the item finished can take its room back.
#[derive(Default)]
pub(crate) struct OwnedCell(AtomicU64);

impl OwnedCell {
    #[inline]
    pub(crate) fn add(&self, n: u64) {
        self.0.store(self.0.load(Relaxed).wrapping_add(n), Release);
    }

    #[inline]
    pub(crate) fn set(&self, n: u64) {
        self.0.store(n, Release);
    }

    #[inline]
    pub(crate) fn get(&self) -> u64 {
        self.0.load(Acquire)
    }
}

/// Nanoseconds in `duration`, saturating at `u64::MAX` (584 years).
pub(crate) fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

/// One worker's counters.
///
/// The built-in counts and times are written only through the shard's
/// [`ShardWriter`](crate::ShardWriter) (one per shard, so one writer) and read
/// by anyone. Custom counters ([`inc`](Shard::inc), [`add`](Shard::add),
/// [`counter`](Shard::counter)) may be written from any thread; they live on
/// this shard, so when each worker uses its own shard no two threads write the
/// same cache line.
#[derive(Default)]
pub struct Shard {
    pub(crate) processed: OwnedCell,
    pub(crate) failed: OwnedCell,
    pub(crate) dropped: OwnedCell,
    pub(crate) busy_ns: OwnedCell,
    pub(crate) idle_ns: OwnedCell,
    pub(crate) init_ns: OwnedCell,
    pub(crate) wrap_up_ns: OwnedCell,
    /// Custom counters by name. Taken for writing only when a name is first
    /// used on this shard; reads of known names share it.
    pub(crate) counters: RwLock<CounterMap>,
    /// The worker's published latencies, merged into by its writer with
    /// `try_lock` (so a reader never blocks the worker).
    pub(crate) latency: Mutex<PublishedLatency>,
}

/// A shard's published latencies: the histogram and the exact sum of the same
/// values, kept under one lock so a reader sees both from the same publish.
#[derive(Default)]
pub(crate) struct PublishedLatency {
    /// Created on the first publish, so a shard that records nothing allocates
    /// nothing.
    pub(crate) histogram: Option<Histogram<u64>>,
    /// Nanoseconds, saturating at `u64::MAX` (584 years).
    pub(crate) sum_ns: u64,
}

impl fmt::Debug for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shard")
            .field("processed", &self.processed())
            .field("failed", &self.failed())
            .field("dropped", &self.dropped())
            .finish_non_exhaustive()
    }
}

impl Shard {
    /// Items this worker processed successfully.
    pub fn processed(&self) -> u64 {
        self.processed.get()
    }

    /// Items this worker failed (an error or a panic).
    pub fn failed(&self) -> u64 {
        self.failed.get()
    }

    /// Items this worker dropped unprocessed (cancellation).
    pub fn dropped(&self) -> u64 {
        self.dropped.get()
    }

    /// Time spent processing, as published so far.
    pub fn busy(&self) -> Duration {
        Duration::from_nanos(self.busy_ns.get())
    }

    /// Time spent idle (waiting for work), as published so far.
    pub fn idle(&self) -> Duration {
        Duration::from_nanos(self.idle_ns.get())
    }

    /// Time the worker took to start (its maker).
    pub fn init(&self) -> Duration {
        Duration::from_nanos(self.init_ns.get())
    }

    /// Time the worker took to wrap up (finish hook and callbacks).
    pub fn wrap_up(&self) -> Duration {
        Duration::from_nanos(self.wrap_up_ns.get())
    }

    /// Adds 1 to the custom counter `name` and returns its new value on this
    /// shard.
    #[inline]
    pub fn inc(&self, name: impl Into<Name>) -> u64 {
        self.add(name, 1)
    }

    /// Adds `n` to the custom counter `name` and returns its new value on this
    /// shard (wrapping at `u64::MAX`).
    ///
    /// Looks the name up on every call; for a hot counter take a
    /// [`counter`](Shard::counter) handle once instead.
    #[inline]
    pub fn add(&self, name: impl Into<Name>, n: u64) -> u64 {
        let name = name.into();
        if let Some(cell) = self
            .counters
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&*name)
        {
            return cell.fetch_add(n, Relaxed).wrapping_add(n);
        }
        self.new_cell(name).fetch_add(n, Relaxed).wrapping_add(n)
    }

    /// The custom counter `name` on this shard; 0 if it was never used here.
    pub fn get(&self, name: &str) -> u64 {
        self.counters
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .map_or(0, |cell| cell.load(Relaxed))
    }

    /// A handle to the custom counter `name` on this shard: the name is looked up
    /// once, here, and every [`Counter::add`] after that is one atomic add.
    pub fn counter(&self, name: impl Into<Name>) -> Counter {
        Counter {
            cell: self.cell(name.into()),
        }
    }

    /// Every custom counter of this shard, by name.
    pub(crate) fn for_each_counter(&self, mut visit: impl FnMut(&str, u64)) {
        let counters = self.counters.read().unwrap_or_else(PoisonError::into_inner);
        for (name, cell) in counters.iter() {
            visit(name, cell.load(Relaxed));
        }
    }

    /// The cell of `name`, created on first use.
    #[inline]
    fn cell(&self, name: Name) -> Arc<AtomicU64> {
        if let Some(cell) = self
            .counters
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&*name)
        {
            return Arc::clone(cell);
        }
        self.new_cell(name)
    }

    #[cold]
    fn new_cell(&self, name: Name) -> Arc<AtomicU64> {
        let mut counters = self
            .counters
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        Arc::clone(counters.entry(name).or_default())
    }
}

/// A custom counter resolved once ([`Shard::counter`]); adding is one atomic
/// add on the shard's own cell, with no hashing or lookup.
///
/// ```
/// use pool_metrics::Metrics;
///
/// let metrics = Metrics::new(2);
/// let fetch_errors = metrics.shard(0).expect("shard 0").counter("fetch_errors");
/// fetch_errors.inc();
/// assert_eq!(fetch_errors.add(2), 3);
/// assert_eq!(metrics.get("fetch_errors"), 3);
/// ```
#[derive(Clone)]
pub struct Counter {
    cell: Arc<AtomicU64>,
}

impl fmt::Debug for Counter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Counter").field(&self.get()).finish()
    }
}

impl Counter {
    /// Adds 1 and returns the new value.
    #[inline]
    pub fn inc(&self) -> u64 {
        self.add(1)
    }

    /// Adds `n` and returns the new value (wrapping at `u64::MAX`).
    #[inline]
    pub fn add(&self, n: u64) -> u64 {
        self.cell.fetch_add(n, Relaxed).wrapping_add(n)
    }

    /// The current value.
    pub fn get(&self) -> u64 {
        self.cell.load(Relaxed)
    }
}
