//! The `prometheus` feature: a pool's [`Stats`] as a collector of a
//! [`prometheus_client`] registry, read afresh at every scrape.

use std::fmt;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;

use crate::Stats;
use crate::export::{Kind, Value, families};

/// Where a [`PrometheusCollector`] reads its figures.
type Source = Box<dyn Fn() -> Stats + Send + Sync>;

/// A [`prometheus_client`] [`Collector`] that reads a pool's [`Stats`] from
/// `source` each time the registry is encoded, so a scrape always sees the
/// figures of that moment and nothing is copied in between.
///
/// Register it with
/// [`Registry::register_collector`](prometheus_client::registry::Registry::register_collector),
/// under a prefix ([`Registry::sub_registry_with_prefix`](prometheus_client::registry::Registry::sub_registry_with_prefix))
/// and labels of your choice. The families are those of
/// [`prometheus_text`](crate::prometheus_text) (the same names after the
/// registry's prefix, help texts and values): `processed_total`,
/// `failed_total`, `dropped_total`, `custom_total{name="..."}` (counters),
/// `workers`, the `*_seconds` times, `rate_per_second`,
/// `utilization_ratio` (gauges), and with latencies recorded
/// `latency_seconds{quantile="..."}`, `latency_seconds_sum` and
/// `latency_seconds_count` (gauges: the client has no summary type).
///
/// The source runs on the thread that encodes the registry; for a pool it
/// is a handle's `stats` (`pool_core::MetricsHandle::stats`), which never
/// blocks a worker.
///
/// ```
/// use pool_metrics::{Metrics, PrometheusCollector};
/// use prometheus_client::encoding::text::encode;
/// use prometheus_client::registry::Registry;
///
/// let metrics = Metrics::new(1);
/// let mut writer = metrics.writer(0).expect("the only writer of shard 0");
/// writer.add_processed(3);
///
/// let mut registry = Registry::default();
/// let source = std::sync::Arc::clone(&metrics);
/// registry
///     .sub_registry_with_prefix("ingest")
///     .register_collector(Box::new(PrometheusCollector::new(move || source.stats())));
/// let mut text = String::new();
/// encode(&mut text, &registry)?;
/// assert!(text.contains("\ningest_processed_total 3\n"));
///
/// writer.add_processed(2); // read again at the next scrape
/// text.clear();
/// encode(&mut text, &registry)?;
/// assert!(text.contains("\ningest_processed_total 5\n"));
/// # Ok::<(), std::fmt::Error>(())
/// ```
pub struct PrometheusCollector {
    source: Source,
}

impl fmt::Debug for PrometheusCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrometheusCollector")
            .finish_non_exhaustive()
    }
}

impl PrometheusCollector {
    /// A collector that calls `source` for the figures at every scrape.
    pub fn new(source: impl Fn() -> Stats + Send + Sync + 'static) -> Self {
        PrometheusCollector {
            source: Box::new(source),
        }
    }
}

impl Collector for PrometheusCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), fmt::Error> {
        let stats = (self.source)();
        for family in families(&stats) {
            let (name, metric_type) = match family.kind {
                // The client adds `_total` to a counter's samples itself.
                Kind::Counter => (
                    family.name.strip_suffix("_total").unwrap_or(family.name),
                    MetricType::Counter,
                ),
                Kind::Gauge => (family.name, MetricType::Gauge),
            };
            let mut metric = encoder.encode_descriptor(name, family.help, None, metric_type)?;
            for sample in &family.samples {
                match &sample.label {
                    None => encode_value(&mut metric, family.kind, sample.value)?,
                    Some((key, value)) => {
                        let labels = [(*key, value.as_str())];
                        let mut labelled = metric.encode_family(&labels)?;
                        encode_value(&mut labelled, family.kind, sample.value)?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// One sample's value, as the family's kind.
fn encode_value(metric: &mut MetricEncoder<'_>, kind: Kind, value: Value) -> fmt::Result {
    match (kind, value) {
        (Kind::Counter, Value::Count(count)) => {
            metric.encode_counter::<NoLabelSet, _, u64>(&count, None)
        }
        (Kind::Counter, Value::Float(value)) => {
            metric.encode_counter::<NoLabelSet, _, f64>(&value, None)
        }
        (Kind::Gauge, Value::Count(count)) => metric.encode_gauge(&count),
        (Kind::Gauge, Value::Float(value)) => metric.encode_gauge(&value),
    }
}
