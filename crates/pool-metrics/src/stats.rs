//! Merged statistics: `Stats`, latency `Percentiles` and `Counters`.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// Custom counters merged over every shard, sorted by name.
///
/// `Display` prints one `name = value` per line, sorted by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(transparent))]
pub struct Counters(pub BTreeMap<String, u64>);

impl Counters {
    /// The value of `name`, 0 if no shard used it.
    pub fn get(&self, name: &str) -> u64 {
        self.0.get(name).copied().unwrap_or(0)
    }

    /// Every counter, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, u64)> {
        self.0.iter().map(|(name, value)| (name.as_str(), *value))
    }

    /// Whether no counter was used.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The number of distinct counters.
    pub fn len(&self) -> usize {
        self.0.len()
    }
}

impl fmt::Display for Counters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, value) in self.iter() {
            writeln!(f, "{name} = {value}")?;
        }
        Ok(())
    }
}

/// Latency percentiles of processed items, from the merged per-worker
/// histograms.
///
/// The histograms keep 3 significant figures ([`LATENCY_SIGFIG`]): each
/// quantile and `max` is the top of the histogram bucket holding it, at most
/// 0.1% above the recorded value. `count` and `sum` are exact.
///
/// [`LATENCY_SIGFIG`]: crate::LATENCY_SIGFIG
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct Percentiles {
    /// Items measured.
    pub count: u64,
    /// Median.
    pub p50: Duration,
    /// 90th percentile.
    pub p90: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// 99.9th percentile.
    pub p999: Duration,
    /// The slowest item.
    pub max: Duration,
    /// Every measured latency added up, exactly (not from the histogram);
    /// `sum / count` is their mean.
    pub sum: Duration,
}

/// What a pool (or any set of shards) did, merged from every worker's shard.
///
/// The fields are the raw merged values; the rates, the average latency and
/// the utilization are methods. Every item that reached a worker was
/// [`processed`](Stats::processed), [`failed`](Stats::failed) or
/// [`dropped`](Stats::dropped). Counts, the wait time, the init time and the
/// wrap-up time are sums over workers; the processing time is kept both as the
/// busiest worker's time ([`processing_time`](Stats::processing_time)) and as
/// the sum ([`processing_time_sum`](Stats::processing_time_sum)).
///
/// `Display` prints a small table (never `NaN`); with the `serde` feature,
/// `Serialize` writes every field and the derived values (`rate_per_sec`,
/// `avg_latency`, `failed_rate`, `dropped_rate`, `utilization`).
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct Stats {
    /// Workers (shards) merged.
    pub workers: usize,
    /// Items processed successfully, summed over workers (failed items are
    /// not in it).
    pub processed: u64,
    /// Items that failed (the worker returned an error or panicked), summed
    /// over workers.
    pub failed: u64,
    /// Items dropped unprocessed (cancellation), summed over workers.
    pub dropped: u64,
    /// Processing time of the busiest worker: the max across workers. With
    /// balanced work it is close to the wall-clock
    /// time the pool spent processing; it is not the work done (that is
    /// [`processing_time_sum`](Stats::processing_time_sum)).
    pub processing_time: Duration,
    /// Processing time summed over workers: the worker time spent in work,
    /// failed items included. [`avg_latency`] and
    /// [`utilization`] use this sum.
    ///
    /// [`avg_latency`]: Stats::avg_latency
    /// [`utilization`]: Stats::utilization
    pub processing_time_sum: Duration,
    /// Waiting (idle) time summed over workers.
    pub wait_time: Duration,
    /// Start-up (maker) time summed over workers. Workers start concurrently,
    /// so this is worker time, not wall-clock time: the run waits at most for
    /// the slowest worker's start-up, not for the sum.
    pub init_time: Duration,
    /// Wrap-up (finish hook and callbacks) time summed over workers (worker
    /// time, not wall-clock time, as for
    /// [`init_time`](Stats::init_time)).
    pub wrap_up_time: Duration,
    /// Wall-clock time of the run: [`Metrics::stats`](crate::Metrics::stats)
    /// measures it from when the metrics were made;
    /// [`Metrics::stats_with_total`](crate::Metrics::stats_with_total) takes
    /// it from the caller.
    pub total_time: Duration,
    /// Latency percentiles, when the pool records them.
    pub latency: Option<Percentiles>,
    /// Custom counters, summed over workers (each worker keeps its own) and
    /// the [`outside`](crate::Metrics::outside) shard, where threads that are
    /// not workers count.
    pub counters: Counters,
}

/// `part / whole`, or 0 when `whole` is 0 (so never `NaN` or infinite for
/// finite inputs).
fn ratio(part: f64, whole: f64) -> f64 {
    if whole > 0.0 { part / whole } else { 0.0 }
}

/// `time / items`, exact to the nanosecond (rounded down); zero for no items.
fn per_item(time: Duration, items: u64) -> Duration {
    if items == 0 {
        return Duration::ZERO;
    }
    let nanos = time.as_nanos() / u128::from(items);
    // `time` is at most `Duration::MAX`, so the quotient's seconds fit in u64.
    let secs = u64::try_from(nanos / 1_000_000_000).unwrap_or(u64::MAX);
    let subsec = u32::try_from(nanos % 1_000_000_000).unwrap_or(0);
    Duration::new(secs, subsec)
}

impl Stats {
    /// Items that reached a worker: processed + failed + dropped (the
    /// denominator of [`failed_rate`](Stats::failed_rate) and
    /// [`dropped_rate`](Stats::dropped_rate)).
    pub fn total_items(&self) -> u64 {
        self.processed
            .saturating_add(self.failed)
            .saturating_add(self.dropped)
    }

    /// Successfully processed items per second of wall-clock time:
    /// `processed / total_time`, 0 for a zero-length run.
    pub fn rate_per_sec(&self) -> f64 {
        ratio(self.processed as f64, self.total_time.as_secs_f64())
    }

    /// The mean processing time of one item:
    /// `processing_time_sum / (processed + failed)`, the worker time of every
    /// item that ran over those items; zero when no item ran. Failed items
    /// count: their time is in the sum.
    pub fn avg_latency(&self) -> Duration {
        per_item(
            self.processing_time_sum,
            self.processed.saturating_add(self.failed),
        )
    }

    /// Failed items over all items that reached a worker:
    /// `failed / total_items`, in `0.0..=1.0` (0 when there were none).
    pub fn failed_rate(&self) -> f64 {
        ratio(self.failed as f64, self.total_items() as f64)
    }

    /// Dropped items over all items that reached a worker:
    /// `dropped / total_items`, in `0.0..=1.0` (0 when there were none).
    pub fn dropped_rate(&self) -> f64 {
        ratio(self.dropped as f64, self.total_items() as f64)
    }

    /// The share of worker time spent processing:
    /// `processing_time_sum / (processing_time_sum + wait_time)` (both sums
    /// across workers), in `0.0..=1.0`; 0 when no time was recorded. Four
    /// workers each busy half the time give 50%.
    pub fn utilization(&self) -> f64 {
        let busy = self.processing_time_sum.as_secs_f64();
        ratio(busy, busy + self.wait_time.as_secs_f64())
    }
}

/// A duration for people: `0s`, or three significant-ish digits (`1.5s`,
/// `250.0µs`).
struct Human(Duration);

impl fmt::Display for Human {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_zero() {
            f.write_str("0s")
        } else {
            write!(f, "{:.1?}", self.0)
        }
    }
}

/// A ratio in `0.0..=1.0` as a percentage; 0 for anything not finite, so
/// nothing prints `NaN`.
struct Percent(f64);

impl fmt::Display for Percent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let value = if self.0.is_finite() {
            self.0 * 100.0
        } else {
            0.0
        };
        write!(f, "{value:.2}%")
    }
}

/// A table, one value per line:
///
/// ```text
/// workers      4
/// processed    1000
/// failed       10 (0.99%)
/// dropped      0 (0.00%)
/// processing   1.5s busiest worker, 5.9s all workers
/// wait         2.0s
/// init         10.0ms
/// wrap-up      1.0ms
/// total        2.1s
/// rate         476.2/s
/// avg latency  5.8ms
/// utilization  74.68%
/// latency      p50 1.0ms, p90 1.9ms, p99 2.0ms, p99.9 2.0ms, max 2.0ms (1000 items)
/// counters
///   retries = 3
/// ```
///
/// The `latency` line appears when latencies are recorded, the `counters`
/// block when a custom counter was used; there is no trailing newline.
impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const WIDTH: usize = 12;
        writeln!(f, "{:<WIDTH$} {}", "workers", self.workers)?;
        writeln!(f, "{:<WIDTH$} {}", "processed", self.processed)?;
        writeln!(
            f,
            "{:<WIDTH$} {} ({})",
            "failed",
            self.failed,
            Percent(self.failed_rate())
        )?;
        writeln!(
            f,
            "{:<WIDTH$} {} ({})",
            "dropped",
            self.dropped,
            Percent(self.dropped_rate())
        )?;
        writeln!(
            f,
            "{:<WIDTH$} {} busiest worker, {} all workers",
            "processing",
            Human(self.processing_time),
            Human(self.processing_time_sum)
        )?;
        writeln!(f, "{:<WIDTH$} {}", "wait", Human(self.wait_time))?;
        writeln!(f, "{:<WIDTH$} {}", "init", Human(self.init_time))?;
        writeln!(f, "{:<WIDTH$} {}", "wrap-up", Human(self.wrap_up_time))?;
        writeln!(f, "{:<WIDTH$} {}", "total", Human(self.total_time))?;
        // `rate_per_sec` is finite: a count over a positive time.
        writeln!(f, "{:<WIDTH$} {:.1}/s", "rate", self.rate_per_sec())?;
        writeln!(f, "{:<WIDTH$} {}", "avg latency", Human(self.avg_latency()))?;
        write!(
            f,
            "{:<WIDTH$} {}",
            "utilization",
            Percent(self.utilization())
        )?;
        if let Some(latency) = &self.latency {
            write!(
                f,
                "\n{:<WIDTH$} p50 {}, p90 {}, p99 {}, p99.9 {}, max {} ({} items)",
                "latency",
                Human(latency.p50),
                Human(latency.p90),
                Human(latency.p99),
                Human(latency.p999),
                Human(latency.max),
                latency.count
            )?;
        }
        if !self.counters.is_empty() {
            f.write_str("\ncounters")?;
            for (name, value) in self.counters.iter() {
                write!(f, "\n  {name} = {value}")?;
            }
        }
        Ok(())
    }
}

/// Every field, then the derived values under their method names, so a JSON
/// reader need not recompute them.
#[cfg(feature = "serde")]
#[cfg_attr(docsrs, doc(cfg(feature = "serde")))]
impl serde::Serialize for Stats {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct as _;

        // Destructured without `..` so that a new field fails to compile here
        // until it is serialised too.
        let Stats {
            workers,
            processed,
            failed,
            dropped,
            processing_time,
            processing_time_sum,
            wait_time,
            init_time,
            wrap_up_time,
            total_time,
            latency,
            counters,
        } = self;
        let mut out = serializer.serialize_struct("Stats", 17)?;
        out.serialize_field("workers", workers)?;
        out.serialize_field("processed", processed)?;
        out.serialize_field("failed", failed)?;
        out.serialize_field("dropped", dropped)?;
        out.serialize_field("processing_time", processing_time)?;
        out.serialize_field("processing_time_sum", processing_time_sum)?;
        out.serialize_field("wait_time", wait_time)?;
        out.serialize_field("init_time", init_time)?;
        out.serialize_field("wrap_up_time", wrap_up_time)?;
        out.serialize_field("total_time", total_time)?;
        out.serialize_field("latency", latency)?;
        out.serialize_field("counters", counters)?;
        out.serialize_field("rate_per_sec", &self.rate_per_sec())?;
        out.serialize_field("avg_latency", &self.avg_latency())?;
        out.serialize_field("failed_rate", &self.failed_rate())?;
        out.serialize_field("dropped_rate", &self.dropped_rate())?;
        out.serialize_field("utilization", &self.utilization())?;
        out.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_item_is_exact_and_never_divides_by_zero() {
        assert_eq!(
            per_item(Duration::from_secs(1), 3),
            Duration::from_nanos(333_333_333)
        );
        assert_eq!(
            per_item(Duration::from_secs(8), 1_000),
            Duration::from_millis(8)
        );
        assert_eq!(per_item(Duration::from_secs(8), 0), Duration::ZERO);
        assert_eq!(per_item(Duration::MAX, 1), Duration::MAX);
    }

    #[test]
    fn display_prints_no_nan_for_empty_stats() {
        let text = Stats::default().to_string();
        assert!(!text.contains("NaN") && !text.contains("inf"), "{text}");
        assert!(text.contains("utilization  0.00%"), "{text}");
    }
}
