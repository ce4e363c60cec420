//! Prometheus text exposition of `Stats`.

use std::fmt::{self, Write as _};

use crate::Stats;

/// Renders `stats` in the Prometheus text exposition format (version 0.0.4,
/// served as `text/plain; version=0.0.4`), every metric name starting with
/// `prefix` and `_` (`"ingest"` gives `ingest_processed_total`).
///
/// `prefix` should be a valid metric name prefix: ASCII letters, digits and
/// `_`, not starting with a digit. Anything else is replaced, not refused: each
/// other character becomes `_` (colons too, which Prometheus keeps for
/// recording rules), a leading digit gets a `_` in front, trailing `_`s are
/// dropped (`"ingest_"` is `"ingest"`), and an empty prefix gives bare names
/// (`processed_total`).
///
/// Every family has `# HELP` and `# TYPE` lines before its samples:
///
/// | family | type | value |
/// | --- | --- | --- |
/// | `{prefix}_processed_total` | counter | [`Stats::processed`] |
/// | `{prefix}_failed_total` | counter | [`Stats::failed`] |
/// | `{prefix}_dropped_total` | counter | [`Stats::dropped`] |
/// | `{prefix}_custom_total{name="..."}` | counter | each of [`Stats::counters`], if any |
/// | `{prefix}_workers` | gauge | [`Stats::workers`] |
/// | `{prefix}_processing_time_max_seconds` | gauge | [`Stats::processing_time`] |
/// | `{prefix}_processing_time_sum_seconds` | gauge | [`Stats::processing_time_sum`] |
/// | `{prefix}_wait_time_seconds` | gauge | [`Stats::wait_time`] |
/// | `{prefix}_init_time_seconds` | gauge | [`Stats::init_time`] |
/// | `{prefix}_wrap_up_time_seconds` | gauge | [`Stats::wrap_up_time`] |
/// | `{prefix}_total_time_seconds` | gauge | [`Stats::total_time`] |
/// | `{prefix}_rate_per_second` | gauge | [`Stats::rate_per_sec`] |
/// | `{prefix}_utilization_ratio` | gauge | [`Stats::utilization`] |
/// | `{prefix}_latency_seconds` | summary | [`Stats::latency`], if recorded |
///
/// The summary has `quantile="0.5"`, `"0.9"`, `"0.99"`, `"0.999"` and `"1"`
/// (the maximum, the Prometheus convention for a summary's top), then `_sum` and
/// `_count`. Custom counter names go into the `name` label value, escaped as
/// the format requires (`\\`, `\"`, `\n`).
///
/// ```
/// use pool_metrics::{Metrics, prometheus_text};
///
/// let metrics = Metrics::new(1);
/// let mut writer = metrics.writer(0).expect("the only writer of shard 0");
/// writer.add_processed(3);
/// writer.shard().inc("cache \"hits\"");
/// let text = prometheus_text(&metrics.stats(), "ingest");
/// assert!(text.contains("# TYPE ingest_processed_total counter\ningest_processed_total 3\n"));
/// assert!(text.contains("ingest_custom_total{name=\"cache \\\"hits\\\"\"} 1\n"));
/// ```
pub fn prometheus_text(stats: &Stats, prefix: &str) -> String {
    let mut text = Exposition {
        out: String::with_capacity(2048),
        prefix: metric_prefix(prefix),
    };

    text.family(
        "processed_total",
        "counter",
        "Items processed successfully.",
    );
    text.sample("processed_total", "", stats.processed);
    text.family(
        "failed_total",
        "counter",
        "Items that failed (the worker returned an error or panicked).",
    );
    text.sample("failed_total", "", stats.failed);
    text.family(
        "dropped_total",
        "counter",
        "Items dropped unprocessed (cancellation).",
    );
    text.sample("dropped_total", "", stats.dropped);
    if !stats.counters.is_empty() {
        text.family("custom_total", "counter", "Custom counters, by name.");
        for (name, value) in stats.counters.iter() {
            text.sample("custom_total", &label("name", name), value);
        }
    }

    text.family("workers", "gauge", "Workers (shards) merged.");
    text.sample("workers", "", stats.workers);
    let mut seconds = |name: &str, help: &str, time: std::time::Duration| {
        text.family(name, "gauge", help);
        text.sample(name, "", Float(time.as_secs_f64()));
    };
    seconds(
        "processing_time_max_seconds",
        "Processing time of the busiest worker (the max across workers).",
        stats.processing_time,
    );
    seconds(
        "processing_time_sum_seconds",
        "Processing time summed over workers.",
        stats.processing_time_sum,
    );
    seconds(
        "wait_time_seconds",
        "Time workers waited for work, summed over workers.",
        stats.wait_time,
    );
    seconds(
        "init_time_seconds",
        "Worker start-up time, summed over workers.",
        stats.init_time,
    );
    seconds(
        "wrap_up_time_seconds",
        "Worker wrap-up time, summed over workers.",
        stats.wrap_up_time,
    );
    seconds(
        "total_time_seconds",
        "Wall-clock time of the run.",
        stats.total_time,
    );
    text.family(
        "rate_per_second",
        "gauge",
        "Items processed successfully per second of wall-clock time.",
    );
    text.sample("rate_per_second", "", Float(stats.rate_per_sec()));
    text.family(
        "utilization_ratio",
        "gauge",
        "Share of worker time spent processing: processing sum over processing sum plus wait.",
    );
    text.sample("utilization_ratio", "", Float(stats.utilization()));

    if let Some(latency) = &stats.latency {
        text.family(
            "latency_seconds",
            "summary",
            "Latency of one item; quantile 1 is the maximum.",
        );
        for (quantile, time) in [
            ("0.5", latency.p50),
            ("0.9", latency.p90),
            ("0.99", latency.p99),
            ("0.999", latency.p999),
            ("1", latency.max),
        ] {
            text.sample(
                "latency_seconds",
                &label("quantile", quantile),
                Float(time.as_secs_f64()),
            );
        }
        // The writers add up every latency they record exactly, beside the
        // histogram, so `_sum` is the true sum of the observations the
        // quantiles and `_count` describe, as the format defines it.
        text.sample("latency_seconds_sum", "", Float(latency.sum.as_secs_f64()));
        text.sample("latency_seconds_count", "", latency.count);
    }
    text.out
}

/// The text being written and the sanitised prefix (with its `_`, or empty).
struct Exposition {
    out: String,
    prefix: String,
}

impl Exposition {
    /// The `# HELP` and `# TYPE` lines of family `name`. `help` must need no
    /// escaping (no backslash, no newline): every caller passes a constant.
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        debug_assert!(!help.contains(['\\', '\n']), "help text needs escaping");
        let prefix = &self.prefix;
        // Writing to a `String` cannot fail.
        let _ = writeln!(self.out, "# HELP {prefix}{name} {help}");
        let _ = writeln!(self.out, "# TYPE {prefix}{name} {kind}");
    }

    /// One sample line; `labels` is empty or a rendered `{...}`.
    fn sample(&mut self, name: &str, labels: &str, value: impl fmt::Display) {
        let prefix = &self.prefix;
        let _ = writeln!(self.out, "{prefix}{name}{labels} {value}");
    }
}

/// What a metric family is, for the exporters to registries
/// ([`families`]).
#[cfg(any(feature = "metrics", feature = "prometheus"))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Only goes up over a run.
    Counter,
    /// A value as it stands.
    Gauge,
}

/// A sample's value: a count or a float (seconds, ratios).
#[cfg(any(feature = "metrics", feature = "prometheus"))]
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Value {
    Count(u64),
    Float(f64),
}

#[cfg(feature = "metrics")]
impl Value {
    pub(crate) fn as_f64(self) -> f64 {
        match self {
            Value::Count(n) => n as f64,
            Value::Float(x) => x,
        }
    }
}

/// One sample of a family: its label, if any, and its value.
#[cfg(any(feature = "metrics", feature = "prometheus"))]
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Sample {
    pub(crate) label: Option<(&'static str, String)>,
    pub(crate) value: Value,
}

/// One metric family of a `Stats`, named as in [`prometheus_text`] (without
/// the prefix): counters end in `_total`, times in `_seconds`.
#[cfg(any(feature = "metrics", feature = "prometheus"))]
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Family {
    pub(crate) name: &'static str,
    pub(crate) kind: Kind,
    pub(crate) help: &'static str,
    pub(crate) samples: Vec<Sample>,
}

/// The families of `stats` that the registry exporters publish: the same
/// names, help texts and values as [`prometheus_text`], except that the
/// latency summary becomes gauges (`latency_seconds{quantile=...}`,
/// `latency_seconds_sum`, `latency_seconds_count`), since neither registry
/// takes a precomputed summary.
#[cfg(any(feature = "metrics", feature = "prometheus"))]
pub(crate) fn families(stats: &Stats) -> Vec<Family> {
    fn one(name: &'static str, kind: Kind, help: &'static str, value: Value) -> Family {
        Family {
            name,
            kind,
            help,
            samples: vec![Sample { label: None, value }],
        }
    }
    let seconds = |time: std::time::Duration| Value::Float(time.as_secs_f64());
    let mut out = vec![
        one(
            "processed_total",
            Kind::Counter,
            "Items processed successfully.",
            Value::Count(stats.processed),
        ),
        one(
            "failed_total",
            Kind::Counter,
            "Items that failed (the worker returned an error or panicked).",
            Value::Count(stats.failed),
        ),
        one(
            "dropped_total",
            Kind::Counter,
            "Items dropped unprocessed (cancellation).",
            Value::Count(stats.dropped),
        ),
    ];
    if !stats.counters.is_empty() {
        out.push(Family {
            name: "custom_total",
            kind: Kind::Counter,
            help: "Custom counters, by name.",
            samples: stats
                .counters
                .iter()
                .map(|(name, value)| Sample {
                    label: Some(("name", name.to_owned())),
                    value: Value::Count(value),
                })
                .collect(),
        });
    }
    out.extend([
        one(
            "workers",
            Kind::Gauge,
            "Workers (shards) merged.",
            Value::Count(stats.workers as u64),
        ),
        one(
            "processing_time_max_seconds",
            Kind::Gauge,
            "Processing time of the busiest worker (the max across workers).",
            seconds(stats.processing_time),
        ),
        one(
            "processing_time_sum_seconds",
            Kind::Gauge,
            "Processing time summed over workers.",
            seconds(stats.processing_time_sum),
        ),
        one(
            "wait_time_seconds",
            Kind::Gauge,
            "Time workers waited for work, summed over workers.",
            seconds(stats.wait_time),
        ),
        one(
            "init_time_seconds",
            Kind::Gauge,
            "Worker start-up time, summed over workers.",
            seconds(stats.init_time),
        ),
        one(
            "wrap_up_time_seconds",
            Kind::Gauge,
            "Worker wrap-up time, summed over workers.",
            seconds(stats.wrap_up_time),
        ),
        one(
            "total_time_seconds",
            Kind::Gauge,
            "Wall-clock time of the run.",
            seconds(stats.total_time),
        ),
        one(
            "rate_per_second",
            Kind::Gauge,
            "Items processed successfully per second of wall-clock time.",
            Value::Float(stats.rate_per_sec()),
        ),
        one(
            "utilization_ratio",
            Kind::Gauge,
            "Share of worker time spent processing: processing sum over processing sum plus wait.",
            Value::Float(stats.utilization()),
        ),
    ]);
    if let Some(latency) = &stats.latency {
        out.push(Family {
            name: "latency_seconds",
            kind: Kind::Gauge,
            help: "Latency of one item, by quantile; quantile 1 is the maximum.",
            samples: [
                ("0.5", latency.p50),
                ("0.9", latency.p90),
                ("0.99", latency.p99),
                ("0.999", latency.p999),
                ("1", latency.max),
            ]
            .into_iter()
            .map(|(quantile, time)| Sample {
                label: Some(("quantile", quantile.to_owned())),
                value: seconds(time),
            })
            .collect(),
        });
        out.push(one(
            "latency_seconds_sum",
            Kind::Gauge,
            "Every measured latency added up.",
            seconds(latency.sum),
        ));
        out.push(one(
            "latency_seconds_count",
            Kind::Gauge,
            "Items whose latency was measured.",
            Value::Count(latency.count),
        ));
    }
    out
}

/// `prefix` made into a valid metric name start followed by `_`, or empty.
pub(crate) fn metric_prefix(prefix: &str) -> String {
    let mut clean: String = prefix
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    while clean.ends_with('_') {
        clean.pop();
    }
    if clean.is_empty() {
        return clean;
    }
    if clean.starts_with(|c: char| c.is_ascii_digit()) {
        clean.insert(0, '_');
    }
    clean.push('_');
    clean
}

/// `{key="value"}` with `value` escaped for the text format: backslash,
/// double quote and line feed become `\\`, `\"` and `\n`.
fn label(key: &str, value: &str) -> String {
    let mut out = String::with_capacity(key.len() + value.len() + 5);
    out.push('{');
    out.push_str(key);
    out.push_str("=\"");
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            other => out.push(other),
        }
    }
    out.push_str("\"}");
    out
}

/// A sample value as the format spells floats: Rust's shortest round-trip
/// decimal, with `+Inf`, `-Inf` and `NaN` in the format's spelling (Rust
/// writes `inf`). None of the values written here is infinite or `NaN`; this
/// only keeps the output valid if that ever changes.
struct Float(f64);

impl fmt::Display for Float {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let value = self.0;
        if value.is_nan() {
            f.write_str("NaN")
        } else if value == f64::INFINITY {
            f.write_str("+Inf")
        } else if value == f64::NEG_INFINITY {
            f.write_str("-Inf")
        } else {
            write!(f, "{value}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_is_sanitised() {
        assert_eq!(metric_prefix("ingest"), "ingest_");
        assert_eq!(metric_prefix("ingest_"), "ingest_");
        assert_eq!(metric_prefix("my-pool.v2:x"), "my_pool_v2_x_");
        assert_eq!(metric_prefix("9lives"), "_9lives_");
        assert_eq!(metric_prefix("héllo"), "h_llo_");
        assert_eq!(metric_prefix(""), "");
        assert_eq!(metric_prefix("--"), "");
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label("name", "a\\b\"c\nd"), "{name=\"a\\\\b\\\"c\\nd\"}");
        assert_eq!(label("name", "plain ü"), "{name=\"plain ü\"}");
    }

    #[test]
    fn floats_use_the_format_spelling() {
        assert_eq!(Float(0.25).to_string(), "0.25");
        assert_eq!(Float(0.0).to_string(), "0");
        assert_eq!(Float(f64::INFINITY).to_string(), "+Inf");
        assert_eq!(Float(f64::NEG_INFINITY).to_string(), "-Inf");
        assert_eq!(Float(f64::NAN).to_string(), "NaN");
    }
}
