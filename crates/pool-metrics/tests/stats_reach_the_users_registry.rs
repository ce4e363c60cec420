//! The registry exporters publish what `prometheus_text` renders: with the
//! `metrics` feature, every sample reaches the installed recorder (here
//! `metrics-util`'s debugging recorder) with its name, labels and value;
//! with the `prometheus` feature, a `prometheus-client` registry encodes the
//! same samples at every scrape, read afresh from the source.
#![allow(clippy::unwrap_used)]
#![cfg(any(feature = "metrics", feature = "prometheus"))]

use std::collections::BTreeMap;
use std::time::Duration;

use pool_metrics::{Metrics, Stats, prometheus_text};

/// Stats with every kind of figure: counts, times, custom counters (one
/// written outside the workers, one needing escapes) and latencies.
fn busy_stats() -> Stats {
    let metrics = Metrics::with_latency(2, true);
    for index in 0..2 {
        let mut writer = metrics.writer(index).unwrap();
        writer.add_processed(10 + index as u64);
        writer.add_failed(2);
        writer.add_dropped(1);
        writer.add_busy(Duration::from_millis(30));
        writer.add_idle(Duration::from_millis(5));
        for micros in 1..=20 {
            writer.record_latency(Duration::from_micros(micros));
        }
        writer.shard().add("retries", 3);
        writer.flush_latency();
    }
    metrics.outside().add("rows read", 42);
    metrics.outside().inc("quote \" in a name");
    metrics.stats_with_total(Duration::from_secs(2))
}

/// A sample's identity: its full name and its labels, sorted.
type Key = (String, BTreeMap<String, String>);

/// The samples of `prometheus_text` (the reference), by name and labels;
/// the latency summary's `_sum` and `_count` keep their names, so they
/// match the exporters' gauges of the same names.
fn reference(stats: &Stats, prefix: &str) -> BTreeMap<Key, f64> {
    parse_samples(&prometheus_text(stats, prefix))
}

/// Sample lines of the text exposition formats (Prometheus 0.0.4 or
/// OpenMetrics): `name{k="v",...} value`, unescaping label values.
fn parse_samples(text: &str) -> BTreeMap<Key, f64> {
    let mut samples = BTreeMap::new();
    for line in text.lines() {
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap();
        let (name, labels) = match series.split_once('{') {
            None => (series.to_owned(), BTreeMap::new()),
            Some((name, rest)) => (
                name.to_owned(),
                parse_labels(rest.strip_suffix('}').unwrap()),
            ),
        };
        let previous = samples.insert((name, labels), value.parse::<f64>().unwrap());
        assert!(previous.is_none(), "sample twice: {line}");
    }
    samples
}

fn parse_labels(text: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut chars = text.chars().peekable();
    while chars.peek().is_some() {
        let key: String = chars.by_ref().take_while(|&c| c != '=').collect();
        assert_eq!(chars.next(), Some('"'));
        let mut value = String::new();
        loop {
            match chars.next().unwrap() {
                '\\' => match chars.next().unwrap() {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                '"' => break,
                other => value.push(other),
            }
        }
        labels.insert(key, value);
        if chars.peek() == Some(&',') {
            chars.next();
        }
    }
    labels
}

#[cfg(feature = "metrics")]
mod facade {
    use super::*;
    use metrics::Label;
    use metrics_util::MetricKind;
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};

    /// One published value: the value, whether it is a counter, whether
    /// it was described.
    type Published = (f64, bool, bool);

    /// What the debugging recorder holds after `record_metrics`.
    fn recorded(stats: &Stats, labels: &[Label]) -> BTreeMap<Key, Published> {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        metrics::with_local_recorder(&recorder, || {
            pool_metrics::record_metrics(stats, "ingest", labels);
        });
        snapshotter
            .snapshot()
            .into_vec()
            .into_iter()
            .map(|(key, _unit, help, value)| {
                let is_counter = key.kind() == MetricKind::Counter;
                let name = key.key().name().to_owned();
                let labels = key
                    .key()
                    .labels()
                    .map(|label| (label.key().to_owned(), label.value().to_owned()))
                    .collect();
                let value = match value {
                    DebugValue::Counter(count) => count as f64,
                    DebugValue::Gauge(gauge) => gauge.into_inner(),
                    DebugValue::Histogram(_) => panic!("no histograms are published"),
                };
                ((name, labels), (value, is_counter, help.is_some()))
            })
            .collect()
    }

    #[test]
    fn every_sample_reaches_the_recorder_with_its_value() {
        let stats = busy_stats();
        let published = recorded(&stats, &[]);
        let mut expected = reference(&stats, "ingest");
        // The summary's quantiles are gauges of the same name and labels.
        assert!(
            expected
                .keys()
                .any(|(name, _)| name == "ingest_latency_seconds")
        );
        for ((name, labels), value) in &expected {
            let (got, is_counter, described) = published
                .get(&(name.clone(), labels.clone()))
                .unwrap_or_else(|| panic!("{name} {labels:?} not published"));
            assert_eq!(got, value, "{name} {labels:?}");
            assert_eq!(*is_counter, name.ends_with("_total"), "{name}");
            assert!(described, "{name} has no help text");
        }
        expected.retain(|key, _| !published.contains_key(key));
        assert!(expected.is_empty());
        assert_eq!(published.len(), reference(&stats, "ingest").len());
        // The values themselves, for the record.
        let get = |name: &str, labels: &[(&str, &str)]| {
            let labels = labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
            published[&(name.to_owned(), labels)].0
        };
        assert_eq!(get("ingest_processed_total", &[]), 21.0);
        assert_eq!(get("ingest_failed_total", &[]), 4.0);
        assert_eq!(get("ingest_dropped_total", &[]), 2.0);
        assert_eq!(get("ingest_custom_total", &[("name", "retries")]), 6.0);
        assert_eq!(get("ingest_custom_total", &[("name", "rows read")]), 42.0);
        assert_eq!(
            get("ingest_custom_total", &[("name", "quote \" in a name")]),
            1.0
        );
        assert_eq!(get("ingest_workers", &[]), 2.0);
        assert_eq!(get("ingest_latency_seconds_count", &[]), 40.0);
    }

    #[test]
    fn the_callers_labels_go_on_every_sample() {
        let stats = busy_stats();
        let published = recorded(&stats, &[Label::new("pool", "orders")]);
        assert!(!published.is_empty());
        for (name, labels) in published.keys() {
            assert_eq!(
                labels.get("pool").map(String::as_str),
                Some("orders"),
                "{name}"
            );
        }
        let custom = published
            .keys()
            .filter(|(name, _)| name == "ingest_custom_total")
            .count();
        assert_eq!(custom, 3);
    }

    #[test]
    fn without_a_recorder_nothing_happens() {
        pool_metrics::record_metrics(&busy_stats(), "ingest", &[]);
    }
}

#[cfg(feature = "prometheus")]
mod prometheus {
    use super::*;
    use pool_metrics::PrometheusCollector;
    use prometheus_client::encoding::text::encode;
    use prometheus_client::registry::Registry;
    use std::sync::{Arc, Mutex};

    #[test]
    fn a_scrape_encodes_the_same_samples_as_the_text_format() {
        let stats = busy_stats();
        let source = stats.clone();
        let mut registry = Registry::default();
        registry
            .sub_registry_with_prefix("ingest")
            .register_collector(Box::new(PrometheusCollector::new(move || source.clone())));
        let mut text = String::new();
        encode(&mut text, &registry).unwrap();
        assert!(text.ends_with("# EOF\n"), "{text}");
        assert!(text.contains("# TYPE ingest_processed counter\n"), "{text}");
        assert!(text.contains("# TYPE ingest_workers gauge\n"), "{text}");
        assert_eq!(parse_samples(&text), reference(&stats, "ingest"));
    }

    #[test]
    fn every_scrape_reads_the_source_again() {
        let metrics = Metrics::new(1);
        let mut writer = metrics.writer(0).unwrap();
        let scrapes = Arc::new(Mutex::new(0u32));
        let mut registry = Registry::with_prefix("pool");
        let source = Arc::clone(&metrics);
        let counted = Arc::clone(&scrapes);
        registry.register_collector(Box::new(PrometheusCollector::new(move || {
            *counted.lock().unwrap() += 1;
            source.stats()
        })));
        let scrape = || {
            let mut text = String::new();
            encode(&mut text, &registry).unwrap();
            parse_samples(&text)
        };
        let processed = |samples: &BTreeMap<Key, f64>| {
            samples[&("pool_processed_total".to_owned(), BTreeMap::new())]
        };
        writer.add_processed(3);
        assert_eq!(processed(&scrape()), 3.0);
        writer.add_processed(4);
        metrics.outside().add("late", 1);
        let second = scrape();
        assert_eq!(processed(&second), 7.0);
        let late = (
            "pool_custom_total".to_owned(),
            BTreeMap::from([("name".to_owned(), "late".to_owned())]),
        );
        assert_eq!(second[&late], 1.0);
        assert_eq!(*scrapes.lock().unwrap(), 2);
    }
}
