//! With the `serde` feature, `Stats` (with its `Counters`, `Percentiles` and
//! `Duration`s) serialises to JSON, and the key fields read back from a
//! `serde_json::Value` equal the `Stats` they came from.

#![cfg(feature = "serde")]
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use pool_metrics::{Metrics, Stats};
use serde_json::{Value, json};

fn stats() -> Stats {
    let metrics = Metrics::with_latency(2, true);
    for index in 0..2 {
        let mut writer = metrics.writer(index).unwrap();
        writer.add_processed(10);
        writer.add_failed(index as u64);
        writer.add_busy(Duration::from_millis(1_500));
        writer.add_idle(Duration::from_millis(500));
        writer.record_latency(Duration::from_micros(2_500));
        writer.shard().add("retries", 3);
        writer.shard().inc(String::from("cache \"miss\""));
    }
    metrics.stats_with_total(Duration::new(2, 5))
}

/// A `Duration` read back from serde's `{ "secs": .., "nanos": .. }`.
fn duration(value: &Value) -> Duration {
    Duration::new(
        value["secs"].as_u64().unwrap(),
        u32::try_from(value["nanos"].as_u64().unwrap()).unwrap(),
    )
}

#[test]
fn key_fields_round_trip_through_json() {
    let stats = stats();
    let text = serde_json::to_string(&stats).unwrap();
    let json: Value = serde_json::from_str(&text).unwrap();

    assert_eq!(json["workers"], json!(2));
    assert_eq!(json["processed"].as_u64(), Some(stats.processed));
    assert_eq!(json["failed"].as_u64(), Some(stats.failed));
    assert_eq!(json["dropped"].as_u64(), Some(0));
    assert_eq!(duration(&json["processing_time"]), stats.processing_time);
    assert_eq!(
        duration(&json["processing_time_sum"]),
        Duration::from_secs(3)
    );
    assert_eq!(duration(&json["wait_time"]), stats.wait_time);
    assert_eq!(duration(&json["init_time"]), Duration::ZERO);
    assert_eq!(duration(&json["wrap_up_time"]), Duration::ZERO);
    assert_eq!(duration(&json["total_time"]), Duration::new(2, 5));

    // Counters are a JSON object keyed by name.
    assert_eq!(
        json["counters"],
        json!({ "cache \"miss\"": 2, "retries": 6 })
    );

    // Percentiles, with their durations.
    let latency = stats.latency.unwrap();
    assert_eq!(json["latency"]["count"].as_u64(), Some(2));
    assert_eq!(duration(&json["latency"]["p50"]), latency.p50);
    assert_eq!(duration(&json["latency"]["p999"]), latency.p999);
    assert_eq!(duration(&json["latency"]["max"]), latency.max);
    assert_eq!(duration(&json["latency"]["sum"]), Duration::from_millis(5));

    // The derived values, so readers need not recompute them.
    assert_eq!(json["rate_per_sec"].as_f64(), Some(stats.rate_per_sec()));
    assert_eq!(duration(&json["avg_latency"]), stats.avg_latency());
    assert_eq!(json["failed_rate"].as_f64(), Some(stats.failed_rate()));
    // One word for failed items everywhere: no `errors` or `error_rate` keys.
    assert!(json.get("errors").is_none() && json.get("error_rate").is_none());
    assert_eq!(json["dropped_rate"].as_f64(), Some(0.0));
    assert_eq!(json["utilization"].as_f64(), Some(0.75));
}

#[test]
fn stats_without_latency_serialise_it_as_null() {
    let stats = Metrics::new(1).stats_with_total(Duration::ZERO);
    let json = serde_json::to_value(&stats).unwrap();
    assert_eq!(json["latency"], Value::Null);
    assert_eq!(json["counters"], json!({}));
    assert_eq!(json["rate_per_sec"], json!(0.0));
    assert_eq!(json["utilization"], json!(0.0));
}

#[test]
fn counters_and_percentiles_serialise_alone() {
    let stats = stats();
    assert_eq!(
        serde_json::to_value(&stats.counters).unwrap(),
        json!({ "cache \"miss\"": 2, "retries": 6 })
    );
    let percentiles = serde_json::to_value(stats.latency.unwrap()).unwrap();
    let fields: Vec<&str> = percentiles
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut expected = ["count", "p50", "p90", "p99", "p999", "max", "sum"];
    expected.sort_unstable();
    assert_eq!(fields, expected, "serde_json sorts object keys");
}
