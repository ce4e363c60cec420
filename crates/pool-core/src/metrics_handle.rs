//! The pool's metrics seen from outside its workers: [`MetricsHandle`], a
//! handle any thread may keep, for custom counters that producers, readers
//! or consumers write (the metrics' outside shard), and for the merged
//! stats an exporter reads.

use std::fmt;
use std::sync::Arc;

use pool_metrics::{Counter, Counters, Metrics, Name, Stats};

use crate::Pool;

/// A handle on a pool's metrics for threads that are not its workers:
/// custom counters they write (`handle.add("rows_read", n)`, as go-pkgz's
/// `p.Metrics().Add`), and the merged [`Stats`] for an exporter. From
/// [`Pool::metrics_handle`].
///
/// `Clone + Send + Sync + 'static`: give a clone to a producer thread, a
/// reader, a collector's consumer or a metrics exporter; it does not borrow
/// the pool. Its counters live in the metrics' **outside shard**
/// ([`Metrics::outside`]), apart from the workers' shards, and are merged
/// with the workers' counters of the same name wherever counters are read:
/// [`get`](MetricsHandle::get), [`Pool::metrics`]'s
/// [`Snapshot`](crate::Snapshot) and the final [`Report::stats`](crate::Report::stats).
/// Adding from many threads at a high rate contends on one cell per name;
/// a worker counts in its own shard instead ([`Ctx::metrics`](crate::Ctx::metrics)).
///
/// The final report adds up the counters when the pool is joined; what a
/// handle adds after that is in no report (the handle still reads it).
///
/// ```
/// use pool_core::{Ctx, Pool};
///
/// let pool = Pool::builder().workers(2).build(|ctx: &Ctx, line: String| {
///     ctx.metrics().add("bytes", line.len() as u64); // a worker's own shard
///     Ok::<(), std::io::Error>(())
/// })?;
/// let metrics = pool.metrics_handle();
/// let mut submitter = pool.submitter();
/// for line in ["a", "bb", "", "ccc"] {
///     if line.is_empty() {
///         metrics.inc("skipped"); // the producer counts what it did not submit
///         continue;
///     }
///     submitter.submit(line.to_owned())?;
///     metrics.add("bytes", 1); // and adds the newlines to the workers' count
/// }
/// drop(submitter);
/// let report = pool.wait()?;
/// assert_eq!(report.stats().counters.get("skipped"), 1);
/// assert_eq!(report.stats().counters.get("bytes"), 6 + 3);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct MetricsHandle {
    metrics: Arc<Metrics>,
}

impl fmt::Debug for MetricsHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetricsHandle")
            .field("workers", &self.metrics.len())
            .finish_non_exhaustive()
    }
}

impl MetricsHandle {
    /// Adds 1 to the custom counter `name` (in the outside shard).
    pub fn inc(&self, name: impl Into<Name>) {
        self.add(name, 1);
    }

    /// Adds `n` to the custom counter `name` (in the outside shard;
    /// wrapping at `u64::MAX`). Looks the name up on every call; for a hot
    /// counter take a [`counter`](MetricsHandle::counter) handle once.
    pub fn add(&self, name: impl Into<Name>, n: u64) {
        self.metrics.outside().add(name, n);
    }

    /// A handle to the custom counter `name` in the outside shard: looked
    /// up once, then one atomic add per [`Counter::add`]. Its
    /// [`get`](Counter::get) is the outside shard's share only; this
    /// handle's [`get`](MetricsHandle::get) is the total.
    pub fn counter(&self, name: impl Into<Name>) -> Counter {
        self.metrics.outside().counter(name)
    }

    /// The custom counter `name` summed over the workers' shards and the
    /// outside shard; 0 when never used.
    pub fn get(&self, name: &str) -> u64 {
        self.metrics.get(name)
    }

    /// Every custom counter, summed over all shards, sorted by name.
    pub fn counters(&self) -> Counters {
        self.metrics.counters()
    }

    /// The pool's stats right now, merged from every shard: what
    /// [`Pool::metrics`] holds in [`Snapshot::stats`](crate::Snapshot::stats),
    /// for a thread that does not hold the pool (an exporter: see the
    /// `prometheus` and `metrics` features of `pool-metrics`). Never blocks
    /// a worker.
    pub fn stats(&self) -> Stats {
        self.metrics.stats()
    }
}

impl<T: Send + 'static, S> Pool<T, S> {
    /// A handle on this pool's metrics for any thread: custom counters
    /// written from outside the workers, and the merged stats (see
    /// [`MetricsHandle`]). Cheap (an `Arc` clone); it keeps only the
    /// metrics alive, not the pool.
    pub fn metrics_handle(&self) -> MetricsHandle {
        MetricsHandle {
            metrics: Arc::clone(self.shared().ledger.metrics()),
        }
    }
}
