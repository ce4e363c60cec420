//! `prometheus_text` output read back by a small parser of the text
//! exposition format (0.0.4): every family has `# HELP` then `# TYPE` before
//! its samples, its samples are together, the types are right, label values
//! unescape to the counter names, and every value matches the `Stats`.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use pool_metrics::{Metrics, Stats, prometheus_text};

/// One sample line: `name{labels} value`.
#[derive(Debug, Clone, PartialEq)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// One metric family: its HELP, its TYPE and its samples, in order.
#[derive(Debug, Default)]
struct Family {
    help: String,
    kind: String,
    samples: Vec<Sample>,
}

/// Parses `text`, asserting the format's rules on the way. Families in the
/// order they appear.
fn parse(text: &str) -> Vec<(String, Family)> {
    assert!(
        text.ends_with('\n'),
        "the last line must end with a line feed"
    );
    let mut families: Vec<(String, Family)> = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap();
            assert_name(name);
            assert!(
                families.iter().all(|(known, _)| known != name),
                "second HELP for {name}"
            );
            families.push((
                name.to_owned(),
                Family {
                    help: help.to_owned(),
                    ..Family::default()
                },
            ));
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            let (current, family) = families.last_mut().expect("TYPE before any HELP");
            assert_eq!(current, name, "TYPE right after its family's HELP");
            assert!(family.kind.is_empty(), "second TYPE for {name}");
            assert!(family.samples.is_empty(), "TYPE after samples of {name}");
            assert!(
                ["counter", "gauge", "summary", "histogram", "untyped"].contains(&kind),
                "unknown type {kind}"
            );
            family.kind = kind.to_owned();
        } else {
            assert!(!line.starts_with('#'), "unexpected comment {line:?}");
            assert!(!line.trim().is_empty(), "empty line");
            let sample = parse_sample(line);
            let (current, family) = families.last_mut().expect("sample before any HELP");
            assert!(
                !family.kind.is_empty(),
                "sample of {current} before its TYPE"
            );
            let belongs = sample.name == *current
                || (family.kind == "summary"
                    && [format!("{current}_sum"), format!("{current}_count")]
                        .contains(&sample.name));
            assert!(belongs, "{} is not in family {current}", sample.name);
            family.samples.push(sample);
        }
    }
    families
}

/// A metric name: `[a-zA-Z_:][a-zA-Z0-9_:]*`.
fn assert_name(name: &str) {
    let mut chars = name.chars();
    let first = chars.next().unwrap();
    assert!(
        first.is_ascii_alphabetic() || first == '_' || first == ':',
        "{name}"
    );
    assert!(
        chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
        "{name}"
    );
}

fn parse_sample(line: &str) -> Sample {
    let name_end = line.find(['{', ' ']).unwrap();
    let name = &line[..name_end];
    assert_name(name);
    let mut labels = BTreeMap::new();
    let mut rest = &line[name_end..];
    if let Some(after_brace) = rest.strip_prefix('{') {
        let mut chars = after_brace.char_indices();
        loop {
            let (start, _) = chars.next().unwrap();
            let label_end = after_brace[start..].find('=').unwrap() + start;
            let key = &after_brace[start..label_end];
            assert!(
                key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                "{key}"
            );
            // Skip to the opening quote.
            while chars.next().unwrap().0 < label_end {}
            assert_eq!(chars.next().unwrap().1, '"');
            let mut value = String::new();
            loop {
                match chars.next().unwrap().1 {
                    '\\' => match chars.next().unwrap().1 {
                        '\\' => value.push('\\'),
                        '"' => value.push('"'),
                        'n' => value.push('\n'),
                        other => panic!("bad escape \\{other} in {line:?}"),
                    },
                    '"' => break,
                    '\n' => panic!("raw line feed in a label value"),
                    other => value.push(other),
                }
            }
            assert!(
                labels.insert(key.to_owned(), value).is_none(),
                "label {key} twice"
            );
            let (index, next) = chars.next().unwrap();
            match next {
                ',' => continue,
                '}' => {
                    rest = &after_brace[index + 1..];
                    break;
                }
                other => panic!("unexpected {other:?} after a label in {line:?}"),
            }
        }
    }
    let value_text = rest.strip_prefix(' ').unwrap();
    assert!(
        !value_text.contains(' '),
        "a timestamp or junk after the value: {line:?}"
    );
    let value = match value_text {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        number => number.parse().unwrap(),
    };
    Sample {
        name: name.to_owned(),
        labels,
        value,
    }
}

const ODD_NAME: &str = "say \"hi\" to C:\\temp\nthen {leave}";

/// Stats with every kind of value: counts, times, counters (one with a quote,
/// a backslash, a newline and braces in its name) and latencies.
fn busy_stats() -> Stats {
    let metrics = Metrics::with_latency(2, true);
    for index in 0..2 {
        let mut writer = metrics.writer(index).unwrap();
        writer.add_processed(40 + index as u64);
        writer.add_failed(3);
        writer.add_dropped(1);
        writer.add_busy(Duration::from_millis(1_500 + 500 * index as u64));
        writer.add_idle(Duration::from_millis(250));
        writer.set_init(Duration::from_micros(1_250));
        writer.set_wrap_up(Duration::from_micros(75));
        for millis in 1..=100 {
            writer.record_latency(Duration::from_millis(millis));
        }
        writer.shard().add("retries", 2 + index as u64);
        writer.shard().inc(ODD_NAME);
    }
    metrics.stats_with_total(Duration::from_secs(4))
}

/// The value of the one sample named `name` with labels `labels`, in any
/// family (a summary's `_sum` and `_count` are in the summary's).
fn value(families: &[(String, Family)], name: &str, labels: &[(&str, &str)]) -> f64 {
    let labels: BTreeMap<String, String> = labels
        .iter()
        .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
        .collect();
    let found: Vec<_> = families
        .iter()
        .flat_map(|(_, family)| &family.samples)
        .filter(|sample| sample.name == name && sample.labels == labels)
        .collect();
    assert_eq!(found.len(), 1, "{name} {labels:?}");
    found[0].value
}

#[test]
fn every_family_is_typed_and_every_value_matches() {
    let stats = busy_stats();
    let text = prometheus_text(&stats, "ingest");
    let families = parse(&text);

    let kinds: Vec<(&str, &str)> = families
        .iter()
        .map(|(name, family)| (name.as_str(), family.kind.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("ingest_processed_total", "counter"),
            ("ingest_failed_total", "counter"),
            ("ingest_dropped_total", "counter"),
            ("ingest_custom_total", "counter"),
            ("ingest_workers", "gauge"),
            ("ingest_processing_time_max_seconds", "gauge"),
            ("ingest_processing_time_sum_seconds", "gauge"),
            ("ingest_wait_time_seconds", "gauge"),
            ("ingest_init_time_seconds", "gauge"),
            ("ingest_wrap_up_time_seconds", "gauge"),
            ("ingest_total_time_seconds", "gauge"),
            ("ingest_rate_per_second", "gauge"),
            ("ingest_utilization_ratio", "gauge"),
            ("ingest_latency_seconds", "summary"),
        ]
    );
    for (name, family) in &families {
        assert!(!family.help.is_empty(), "{name} has an empty HELP");
        assert!(!family.samples.is_empty(), "{name} has no samples");
    }

    let count = |name: &str| value(&families, name, &[]);
    assert_eq!(count("ingest_processed_total"), 81.0);
    assert_eq!(count("ingest_failed_total"), 6.0);
    assert_eq!(count("ingest_dropped_total"), 2.0);
    assert_eq!(count("ingest_workers"), 2.0);
    assert_eq!(count("ingest_processing_time_max_seconds"), 2.0);
    assert_eq!(count("ingest_processing_time_sum_seconds"), 3.5);
    assert_eq!(count("ingest_wait_time_seconds"), 0.5);
    assert_eq!(count("ingest_init_time_seconds"), 0.0025);
    assert_eq!(count("ingest_wrap_up_time_seconds"), 0.00015);
    assert_eq!(count("ingest_total_time_seconds"), 4.0);
    assert_eq!(count("ingest_rate_per_second"), stats.rate_per_sec());
    assert_eq!(count("ingest_rate_per_second"), 20.25);
    assert_eq!(count("ingest_utilization_ratio"), stats.utilization());
    assert_eq!(count("ingest_utilization_ratio"), 3.5 / 4.0);

    // Custom counters: one family, one sample per name, names unescaped.
    let custom = &families[3].1;
    assert_eq!(custom.samples.len(), stats.counters.len());
    assert_eq!(
        value(&families, "ingest_custom_total", &[("name", "retries")]),
        5.0
    );
    assert_eq!(
        value(&families, "ingest_custom_total", &[("name", ODD_NAME)]),
        2.0
    );

    // The summary: quantiles, sum and count of the recorded latencies.
    let latency = stats.latency.unwrap();
    let summary = &families[13].1;
    let quantile = |q: &str| value(&families, "ingest_latency_seconds", &[("quantile", q)]);
    assert_eq!(quantile("0.5"), latency.p50.as_secs_f64());
    assert_eq!(quantile("0.9"), latency.p90.as_secs_f64());
    assert_eq!(quantile("0.99"), latency.p99.as_secs_f64());
    assert_eq!(quantile("0.999"), latency.p999.as_secs_f64());
    assert_eq!(quantile("1"), latency.max.as_secs_f64());
    let quantiles: Vec<&str> = summary
        .samples
        .iter()
        .filter_map(|sample| sample.labels.get("quantile").map(String::as_str))
        .collect();
    assert_eq!(quantiles, ["0.5", "0.9", "0.99", "0.999", "1"]);
    assert!(
        (quantile("0.5") - 0.050).abs() <= 0.050 * 0.001,
        "p50 of 1..=100 ms twice"
    );
    // 2 × (1 + ... + 100) ms = 10.1 s, exactly; 200 observations.
    assert_eq!(count("ingest_latency_seconds_sum"), 10.1);
    assert_eq!(count("ingest_latency_seconds_count"), 200.0);
}

#[test]
fn optional_families_are_left_out_when_empty() {
    let metrics = Metrics::new(1);
    metrics.writer(0).unwrap().add_processed(1);
    let text = prometheus_text(&metrics.stats_with_total(Duration::ZERO), "pool");
    let families = parse(&text);
    let names: Vec<&str> = families.iter().map(|(name, _)| name.as_str()).collect();
    assert!(!names.contains(&"pool_custom_total"), "{names:?}");
    assert!(!names.contains(&"pool_latency_seconds"), "{names:?}");
    assert_eq!(names.len(), 12);
    assert_eq!(value(&families, "pool_processed_total", &[]), 1.0);
    assert_eq!(value(&families, "pool_rate_per_second", &[]), 0.0);
}

#[test]
fn an_invalid_prefix_is_sanitised_not_refused() {
    let stats = busy_stats();
    for (prefix, expected) in [
        ("my-pool.v2", "my_pool_v2_"),
        ("9lives", "_9lives_"),
        ("ingest_", "ingest_"),
        ("", ""),
    ] {
        let families = parse(&prometheus_text(&stats, prefix));
        assert_eq!(families.len(), 14);
        for (name, _) in &families {
            assert!(name.starts_with(expected), "{prefix:?}: {name}");
            let rest = &name[expected.len()..];
            assert!(!rest.starts_with('_'), "{prefix:?}: {name}");
        }
        assert_eq!(
            value(&families, &format!("{expected}processed_total"), &[]),
            81.0
        );
    }
}
