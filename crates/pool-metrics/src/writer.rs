//! The one writer of a shard's built-in counts, times and latencies.

use std::fmt;
use std::marker::PhantomData;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::{Arc, PoisonError, TryLockError};
use std::time::Duration;

use hdrhistogram::Histogram;

use crate::Metrics;
use crate::shard::{PublishedLatency, Shard, nanos};

/// Significant figures kept by the latency histograms: values are exact to
/// within 0.1%.
pub const LATENCY_SIGFIG: u8 = 3;

/// A new, auto-resizing latency histogram (nanoseconds).
pub(crate) fn new_histogram() -> Histogram<u64> {
    // `new` only fails for more than 5 significant figures.
    Histogram::new(LATENCY_SIGFIG).unwrap_or_else(|_| unreachable!("3 significant figures"))
}

/// The only handle that writes a shard's built-in counts, times and latencies,
/// taken once per shard with [`Metrics::writer`]. It is `Send` but not `Sync`
/// or `Clone`, so exactly one thread writes them, with plain stores instead of
/// locked instructions.
///
/// Latencies are recorded into a histogram the writer owns and published to
/// the shard with [`publish_latency`](ShardWriter::publish_latency), which never
/// waits for a reader: if a reader holds the shard's histogram, publishing is
/// put off to the next call.
pub struct ShardWriter {
    metrics: Arc<Metrics>,
    index: usize,
    /// Latencies recorded and not yet published.
    local: LocalLatency,
    /// Not `Sync`: two threads must not write through one writer.
    _not_sync: PhantomData<std::cell::Cell<()>>,
}

impl fmt::Debug for ShardWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShardWriter")
            .field("shard", &self.index)
            .field("latency", &self.local.histogram.is_some())
            .finish()
    }
}

impl ShardWriter {
    pub(crate) fn new(metrics: Arc<Metrics>, index: usize) -> Self {
        let local = LocalLatency {
            histogram: metrics.latency_enabled().then(new_histogram),
            sum_ns: 0,
            unpublished: 0,
        };
        ShardWriter {
            metrics,
            index,
            local,
            _not_sync: PhantomData,
        }
    }

    /// The shard this writer writes.
    #[inline]
    pub fn shard(&self) -> &Shard {
        self.metrics.shard_at(self.index)
    }

    /// The index of the shard.
    pub fn index(&self) -> usize {
        self.index
    }

    /// Counts `n` items processed successfully.
    #[inline]
    pub fn add_processed(&mut self, n: u64) {
        self.shard().processed.add(n);
    }

    /// Counts `n` failed items.
    #[inline]
    pub fn add_failed(&mut self, n: u64) {
        self.shard().failed.add(n);
    }

    /// Counts `n` items dropped unprocessed.
    #[inline]
    pub fn add_dropped(&mut self, n: u64) {
        self.shard().dropped.add(n);
    }

    /// Adds processing time.
    #[inline]
    pub fn add_busy(&mut self, time: Duration) {
        self.shard().busy_ns.add(nanos(time));
    }

    /// Adds waiting (idle) time.
    #[inline]
    pub fn add_idle(&mut self, time: Duration) {
        self.shard().idle_ns.add(nanos(time));
    }

    /// Sets the time the worker took to start.
    pub fn set_init(&mut self, time: Duration) {
        self.shard().init_ns.set(nanos(time));
    }

    /// Sets the time the worker took to wrap up.
    pub fn set_wrap_up(&mut self, time: Duration) {
        self.shard().wrap_up_ns.set(nanos(time));
    }

    /// Whether latencies are recorded (the [`Metrics`] were made with them on).
    #[inline]
    pub fn records_latency(&self) -> bool {
        self.local.histogram.is_some()
    }

    /// Records one item's latency, if latencies are on. Not visible to readers
    /// until [`publish_latency`](ShardWriter::publish_latency) (or
    /// [`flush_latency`](ShardWriter::flush_latency), or dropping the writer).
    ///
    /// The histogram keeps values of 1 ns and more, so a zero latency counts as
    /// 1 ns in the percentiles; [`Percentiles::sum`](crate::Percentiles::sum)
    /// adds the latency as given.
    #[inline]
    pub fn record_latency(&mut self, latency: Duration) {
        let local = &mut self.local;
        if let Some(histogram) = &mut local.histogram {
            let latency_ns = nanos(latency);
            let value = latency_ns.max(1);
            // `record` grows the auto-resizing histogram to fit the value;
            // `saturating_record` would clamp it to the current top instead
            // (2 ns for a new histogram), so it is only the fallback for a
            // resize that cannot happen on a 64-bit target.
            if histogram.record(value).is_err() {
                histogram.saturating_record(value);
            }
            local.sum_ns = local.sum_ns.saturating_add(latency_ns);
            local.unpublished += 1;
        }
    }

    /// Merges the latencies recorded since the last publish into the shard, unless
    /// a reader holds the shard's histogram right now (then they wait for the next
    /// call). Never blocks.
    pub fn publish_latency(&mut self) {
        if self.local.unpublished == 0 {
            return;
        }
        let shard = self.metrics.shard_at(self.index);
        let mut shared = match shard.latency.try_lock() {
            Ok(shared) => shared,
            // Readers only read the shard's histogram while they hold the lock,
            // so a reader that panicked left it intact: publish anyway instead of
            // never again (before, a poisoned lock stopped every later publish).
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(TryLockError::WouldBlock) => return,
        };
        self.local.merge_into(&mut shared);
    }

    /// Merges every recorded latency into the shard, waiting for a reader if one
    /// holds it (readers hold it only to merge it). Call when the worker is done;
    /// dropping the writer calls it too.
    pub fn flush_latency(&mut self) {
        if self.local.unpublished == 0 {
            return;
        }
        let shard = self.metrics.shard_at(self.index);
        let mut shared = shard.latency.lock().unwrap_or_else(PoisonError::into_inner);
        self.local.merge_into(&mut shared);
    }
}

/// A writer's latencies recorded since its last publish.
struct LocalLatency {
    /// `None` when latencies are off.
    histogram: Option<Histogram<u64>>,
    /// Exact sum of the recorded latencies, in nanoseconds.
    sum_ns: u64,
    /// Latencies recorded since the last publish.
    unpublished: u64,
}

impl LocalLatency {
    /// Adds the local latencies into the shard's and starts the local ones
    /// afresh.
    fn merge_into(&mut self, shared: &mut PublishedLatency) {
        if let Some(local) = &mut self.histogram {
            let target = shared.histogram.get_or_insert_with(new_histogram);
            // Both histograms auto-resize, so adding cannot run out of range.
            let _ = target.add(&*local);
            shared.sum_ns = shared.sum_ns.saturating_add(self.sum_ns);
            local.reset();
        }
        self.sum_ns = 0;
        self.unpublished = 0;
    }
}

impl Drop for ShardWriter {
    fn drop(&mut self) {
        self.flush_latency();
        self.metrics.release_writer(self.index);
    }
}

impl Metrics {
    /// Marks the writer of shard `index` as free again.
    fn release_writer(&self, index: usize) {
        if let Some(taken) = self.writers.get(index) {
            taken.store(false, SeqCst);
        }
    }
}
