//! Counters, timings and statistics for the workforce pools, usable alone.
//!
//! Counting what a pool did must not become a point of contention, so each
//! worker writes only its own [`Shard`] (cache-padded, one writer for the
//! built-in counts) and readers merge the shards when they ask. `pool-core`
//! keeps one shard per worker; the same types work for any set of threads.
//!
//! - Built-in counts and times per shard (processed, failed, dropped, busy,
//!   idle, init, wrap-up), written through the shard's one [`ShardWriter`].
//! - Custom counters by name ([`Shard::inc`], [`Shard::add`], [`Shard::get`])
//!   or by handle ([`Shard::counter`]: resolved once, then one atomic add).
//!   Names may be `&'static str` (no allocation) or `String`.
//! - [`Stats`]: everything merged, with derived values (rate, average
//!   latency, failed and dropped rates, utilization); `Display` prints a
//!   small table.
//! - Latency [`Percentiles`] (p50, p90, p99, p99.9, max, exact count and sum)
//!   from per-shard `hdrhistogram`s, when switched on
//!   ([`Metrics::with_latency`]); writers publish without waiting for readers.
//! - Custom counters for threads that own no shard (a producer, a reader,
//!   a consumer): the [`outside`](Metrics::outside) shard, merged with the
//!   others.
//! - Export: [`prometheus_text`] (the Prometheus text format) and, with the
//!   `serde` feature, `Serialize` for [`Stats`], [`Percentiles`] and
//!   [`Counters`]. Into the application's own registry: with the `metrics`
//!   feature, `record_metrics` publishes a `Stats` to the `metrics` crate's
//!   facade; with the `prometheus` feature, `PrometheusCollector` is a
//!   `prometheus-client` collector that reads the stats at every scrape.
//!
//! Reads do not stop writers. A snapshot taken while workers run holds, for
//! each value, one that its writer really wrote, but not all from the same
//! instant (an item may already be counted while its time is not yet added,
//! and latencies appear only when published). Take the final [`Stats`] once
//! the writers are done (dropped or flushed).
//!
//! ```
//! use pool_metrics::Metrics;
//! use std::time::Duration;
//!
//! let metrics = Metrics::new(2);
//! std::thread::scope(|scope| {
//!     for index in 0..2 {
//!         let mut writer = metrics.writer(index).expect("one writer per shard");
//!         scope.spawn(move || {
//!             let retries = writer.shard().counter("retries");
//!             for item in 0..1_000u64 {
//!                 if item % 10 == 0 {
//!                     retries.inc();
//!                 }
//!                 writer.add_processed(1);
//!             }
//!             writer.add_busy(Duration::from_millis(5));
//!         });
//!     }
//! });
//! let stats = metrics.stats();
//! assert_eq!(stats.processed, 2_000);
//! assert_eq!(stats.counters.get("retries"), 200);
//! assert_eq!(metrics.get("retries"), 200);
//! ```
//!
//! # What it is not for
//!
//! - A metrics registry or exporter: it serves no HTTP endpoint and keeps no
//!   global state. [`prometheus_text`] renders the text; serve it yourself,
//!   or hand the figures to the registry the application already has (the
//!   `metrics` and `prometheus` features).
//! - Benchmarking: timings describe a run; they are not a measurement harness.

// On docs.rs (`--cfg docsrs`), items behind a feature say which one.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(missing_docs)]

/// The README's example, run by `cargo test --doc` so it cannot go stale.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeExample;

mod export;
#[cfg(feature = "metrics")]
mod facade;
#[cfg(feature = "prometheus")]
mod prometheus;
mod shard;
mod stats;
mod writer;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use crossbeam_utils::CachePadded;
use hdrhistogram::Histogram;

pub use export::prometheus_text;
#[cfg(feature = "metrics")]
#[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
pub use facade::record_metrics;
#[cfg(feature = "prometheus")]
#[cfg_attr(docsrs, doc(cfg(feature = "prometheus")))]
pub use prometheus::PrometheusCollector;
pub use shard::{Counter, Name, Shard};
pub use stats::{Counters, Percentiles, Stats};
pub use writer::{LATENCY_SIGFIG, ShardWriter};

/// A fixed set of shards, one per worker, and the merged views of them.
///
/// Shared as `Arc<Metrics>`: writers hold a reference, readers call
/// [`stats`](Metrics::stats), [`get`](Metrics::get) or
/// [`counters`](Metrics::counters) from any thread, at any time, without
/// stopping the writers.
pub struct Metrics {
    shards: Box<[CachePadded<Shard>]>,
    /// Custom counters written by threads that own no shard (see
    /// [`Metrics::outside`]); merged into every view of the counters.
    outside: CachePadded<Shard>,
    writers: Box<[AtomicBool]>,
    latency: bool,
    started: Instant,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics")
            .field("shards", &self.shards.len())
            .field("latency", &self.latency)
            .finish_non_exhaustive()
    }
}

impl Metrics {
    /// `n_shards` shards without latency recording.
    pub fn new(n_shards: usize) -> Arc<Metrics> {
        Metrics::with_latency(n_shards, false)
    }

    /// `n_shards` shards; with `latency`, writers keep latency histograms and
    /// [`Stats::latency`] holds percentiles.
    pub fn with_latency(n_shards: usize, latency: bool) -> Arc<Metrics> {
        Arc::new(Metrics {
            shards: (0..n_shards).map(|_| CachePadded::default()).collect(),
            outside: CachePadded::default(),
            writers: (0..n_shards).map(|_| AtomicBool::new(false)).collect(),
            latency,
            started: Instant::now(),
        })
    }

    /// The number of shards.
    pub fn len(&self) -> usize {
        self.shards.len()
    }

    /// Whether there are no shards.
    pub fn is_empty(&self) -> bool {
        self.shards.is_empty()
    }

    /// Whether latencies are recorded.
    pub fn latency_enabled(&self) -> bool {
        self.latency
    }

    /// Shard `index`, or `None` past the end.
    pub fn shard(&self, index: usize) -> Option<&Shard> {
        self.shards.get(index).map(|shard| &**shard)
    }

    /// Shard `index`; the caller checked the index.
    #[inline]
    pub(crate) fn shard_at(&self, index: usize) -> &Shard {
        &self.shards[index]
    }

    /// Every shard, in order. The [`outside`](Metrics::outside) shard is
    /// not among them.
    pub fn shards(&self) -> impl Iterator<Item = &Shard> {
        self.shards.iter().map(|shard| &**shard)
    }

    /// The shard for custom counters written by threads that own no shard:
    /// a producer, a reader, a collector's consumer, a supervisor. It has no
    /// writer, so its built-in counts stay zero; its custom counters
    /// ([`Shard::inc`], [`Shard::add`], [`Shard::counter`]) are merged with
    /// the other shards' into [`get`](Metrics::get),
    /// [`counters`](Metrics::counters) and [`Stats::counters`].
    ///
    /// Every thread that writes here shares its cells, so a counter written
    /// from many threads at a high rate contends on one cache line: the
    /// per-shard counters are for the hot path, this one for everyone else.
    ///
    /// ```
    /// use pool_metrics::Metrics;
    ///
    /// let metrics = Metrics::new(2);
    /// metrics.shard(0).expect("shard 0").add("rows", 10); // a worker's own
    /// metrics.outside().add("rows", 5); // a reader thread's
    /// assert_eq!(metrics.get("rows"), 15);
    /// assert_eq!(metrics.stats().counters.get("rows"), 15);
    /// assert_eq!(metrics.stats().processed, 0); // no built-in count outside
    /// ```
    pub fn outside(&self) -> &Shard {
        &self.outside
    }

    /// The worker shards and then the outside shard: every shard that holds
    /// custom counters.
    fn counter_shards(&self) -> impl Iterator<Item = &Shard> {
        self.shards().chain(std::iter::once(&*self.outside))
    }

    /// The one writer of shard `index`, or `None` past the end or while another
    /// writer of that shard is alive.
    pub fn writer(self: &Arc<Self>, index: usize) -> Option<ShardWriter> {
        let taken = self.writers.get(index)?;
        if taken.swap(true, SeqCst) {
            return None;
        }
        Some(ShardWriter::new(Arc::clone(self), index))
    }

    /// The custom counter `name` summed over every shard (the
    /// [`outside`](Metrics::outside) one too); 0 when never used.
    pub fn get(&self, name: &str) -> u64 {
        self.counter_shards()
            .map(|shard| shard.get(name))
            .fold(0, u64::wrapping_add)
    }

    /// Every custom counter, summed over shards (the
    /// [`outside`](Metrics::outside) one too), sorted by name.
    pub fn counters(&self) -> Counters {
        let mut merged = BTreeMap::new();
        for shard in self.counter_shards() {
            shard.for_each_counter(|name, value| {
                let total: &mut u64 = merged.entry(name.to_owned()).or_default();
                *total = total.wrapping_add(value);
            });
        }
        Counters(merged)
    }

    /// Latency percentiles over every shard's published latencies; `None` when
    /// latencies are off. Holds each shard's histogram only while merging it
    /// into the result; writers never wait for it (they publish later instead).
    pub fn percentiles(&self) -> Option<Percentiles> {
        if !self.latency {
            return None;
        }
        let mut merged = writer_histogram();
        let mut sum_ns = 0u64;
        for shard in self.shards() {
            let published = shard.latency.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(histogram) = &published.histogram {
                // Both histograms auto-resize, so adding cannot run out of range.
                let _ = merged.add(histogram);
            }
            sum_ns = sum_ns.saturating_add(published.sum_ns);
        }
        Some(percentiles_of(&merged, sum_ns))
    }

    /// Everything merged, with `total_time` measured from when the metrics were
    /// made.
    pub fn stats(&self) -> Stats {
        self.stats_with_total(self.started.elapsed())
    }

    /// Everything merged, with the given wall-clock `total_time` (a pool passes
    /// its own run time).
    pub fn stats_with_total(&self, total_time: Duration) -> Stats {
        let mut stats = Stats {
            workers: self.shards.len(),
            total_time,
            latency: self.percentiles(),
            counters: self.counters(),
            ..Stats::default()
        };
        for shard in self.shards() {
            stats.processed = stats.processed.wrapping_add(shard.processed());
            stats.failed = stats.failed.wrapping_add(shard.failed());
            stats.dropped = stats.dropped.wrapping_add(shard.dropped());
            let busy = shard.busy();
            stats.processing_time = stats.processing_time.max(busy);
            stats.processing_time_sum = stats.processing_time_sum.saturating_add(busy);
            stats.wait_time = stats.wait_time.saturating_add(shard.idle());
            stats.init_time = stats.init_time.saturating_add(shard.init());
            stats.wrap_up_time = stats.wrap_up_time.saturating_add(shard.wrap_up());
        }
        stats
    }
}

/// An empty histogram of the writers' shape.
fn writer_histogram() -> Histogram<u64> {
    writer::new_histogram()
}

/// The percentiles of `histogram` (nanoseconds) whose values add up to
/// `sum_ns`.
pub(crate) fn percentiles_of(histogram: &Histogram<u64>, sum_ns: u64) -> Percentiles {
    let at = |quantile: f64| Duration::from_nanos(histogram.value_at_quantile(quantile));
    Percentiles {
        count: histogram.len(),
        p50: at(0.50),
        p90: at(0.90),
        p99: at(0.99),
        p999: at(0.999),
        max: Duration::from_nanos(histogram.max()),
        sum: Duration::from_nanos(sum_ns),
    }
}
