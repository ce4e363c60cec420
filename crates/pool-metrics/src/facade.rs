//! The `metrics` feature: a [`Stats`] published to the [`metrics`] crate's
//! facade, so the pool's figures land in whatever recorder the application
//! installed (a Prometheus exporter, StatsD, a test's debugging recorder).

use metrics::Label;

use crate::Stats;
use crate::export::{Kind, Value, families, metric_prefix};

/// Publishes `stats` to the [`metrics`] facade: each figure becomes a counter
/// or a gauge of the recorder that is installed (the thread's local
/// recorder if one is set, else the global one; with none, this does
/// nothing). Call it whenever the figures should be fresh: after each
/// progress change, on a timer, before a scrape, and once with a run's
/// final stats.
///
/// The names are those of [`prometheus_text`](crate::prometheus_text), each
/// after `prefix` and `_` (sanitised the same way), and each sample carries
/// `labels` (a `pool` label tells several pools apart):
///
/// | name | kind | value |
/// | --- | --- | --- |
/// | `{prefix}_processed_total`, `_failed_total`, `_dropped_total` | counter ([`absolute`](metrics::Counter::absolute)) | [`Stats::processed`], [`Stats::failed`], [`Stats::dropped`] |
/// | `{prefix}_custom_total{name="..."}` | counter | each of [`Stats::counters`] |
/// | `{prefix}_workers` | gauge | [`Stats::workers`] |
/// | `{prefix}_processing_time_max_seconds`, `_processing_time_sum_seconds`, `_wait_time_seconds`, `_init_time_seconds`, `_wrap_up_time_seconds`, `_total_time_seconds` | gauge | the times of [`Stats`] |
/// | `{prefix}_rate_per_second`, `{prefix}_utilization_ratio` | gauge | [`Stats::rate_per_sec`], [`Stats::utilization`] |
/// | `{prefix}_latency_seconds{quantile="0.5"…"1"}`, `_latency_seconds_sum`, `_latency_seconds_count` | gauge | [`Stats::latency`], if recorded |
///
/// Counters are set with `absolute`, since `Stats` holds totals: a recorder
/// keeps the largest value it was given, so publish one run's figures under
/// labels of their own rather than reuse a finished pool's names for the
/// next run. Each call describes every metric too (its help text), which
/// recorders keep once.
///
/// ```
/// use metrics::Label;
/// use metrics_util::debugging::{DebugValue, DebuggingRecorder};
/// use pool_metrics::{Metrics, record_metrics};
///
/// let metrics = Metrics::new(1);
/// let mut writer = metrics.writer(0).expect("the only writer of shard 0");
/// writer.add_processed(3);
/// metrics.outside().add("rows", 7);
///
/// let recorder = DebuggingRecorder::new();
/// let snapshotter = recorder.snapshotter();
/// metrics::with_local_recorder(&recorder, || {
///     record_metrics(&metrics.stats(), "ingest", &[Label::new("pool", "orders")]);
/// });
/// let values: Vec<(String, DebugValue)> = snapshotter
///     .snapshot()
///     .into_vec()
///     .into_iter()
///     .map(|(key, _unit, _help, value)| (key.key().name().to_owned(), value))
///     .collect();
/// assert!(values.contains(&("ingest_processed_total".to_owned(), DebugValue::Counter(3))));
/// assert!(values.contains(&("ingest_custom_total".to_owned(), DebugValue::Counter(7))));
/// ```
pub fn record_metrics(stats: &Stats, prefix: &str, labels: &[Label]) {
    let prefix = metric_prefix(prefix);
    for family in families(stats) {
        let name = format!("{prefix}{}", family.name);
        match family.kind {
            Kind::Counter => metrics::describe_counter!(name.clone(), family.help),
            Kind::Gauge => metrics::describe_gauge!(name.clone(), family.help),
        }
        for sample in family.samples {
            let mut all = labels.to_vec();
            if let Some((key, value)) = sample.label {
                all.push(Label::new(key, value));
            }
            match (family.kind, sample.value) {
                (Kind::Counter, Value::Count(count)) => {
                    metrics::counter!(name.clone(), all).absolute(count);
                }
                (Kind::Counter, Value::Float(value)) => {
                    // No counter of `Stats` is fractional; a gauge keeps
                    // such a value whole if one ever is.
                    metrics::gauge!(name.clone(), all).set(value);
                }
                (Kind::Gauge, value) => metrics::gauge!(name.clone(), all).set(value.as_f64()),
            }
        }
    }
}
