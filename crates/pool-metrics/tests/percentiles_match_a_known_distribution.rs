//! Latency percentiles of a known distribution (1..=10,000 µs, once each,
//! spread over 4 writers) are within hdrhistogram's stated precision
//! (`LATENCY_SIGFIG` = 3 significant figures: 0.1%); count and sum are exact;
//! recorded latencies are visible only once published.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use pool_metrics::{LATENCY_SIGFIG, Metrics, Percentiles};
use rstest::rstest;

const N: u64 = 10_000;

/// Records 1..=N µs round-robin on `n_writers` writers and publishes them.
fn uniform(n_writers: usize) -> Percentiles {
    let metrics = Metrics::with_latency(n_writers, true);
    let mut writers: Vec<_> = (0..n_writers)
        .map(|index| metrics.writer(index).unwrap())
        .collect();
    for micros in 1..=N {
        let writer = &mut writers[micros as usize % n_writers];
        writer.record_latency(Duration::from_micros(micros));
    }
    for writer in &mut writers {
        // No reader holds a shard's histogram here, so publishing succeeds.
        writer.publish_latency();
    }
    let percentiles = metrics.percentiles().unwrap();
    assert_eq!(metrics.stats().latency, Some(percentiles));
    percentiles
}

/// `measured` is no further from `exact` than the histogram's precision.
fn assert_within_precision(what: &str, measured: Duration, exact: Duration) {
    let precision = 10f64.powi(-i32::from(LATENCY_SIGFIG));
    let exact_ns = exact.as_nanos() as f64;
    let error = (measured.as_nanos() as f64 - exact_ns).abs() / exact_ns;
    assert!(
        error <= precision,
        "{what}: {measured:?} is {:.4}% from {exact:?}",
        error * 100.0
    );
}

#[rstest]
#[case::one_writer(1)]
#[case::four_writers(4)]
fn uniform_latencies_give_the_exact_quantiles_within_precision(#[case] n_writers: usize) {
    let percentiles = uniform(n_writers);
    assert_eq!(percentiles.count, N);
    // Sum of 1..=N µs, exactly.
    assert_eq!(percentiles.sum, Duration::from_micros(N * (N + 1) / 2));
    // The q-quantile of 1..=N µs is the value of rank ceil(q * N): q * N µs.
    for (what, measured, exact_micros) in [
        ("p50", percentiles.p50, 5_000),
        ("p90", percentiles.p90, 9_000),
        ("p99", percentiles.p99, 9_900),
        ("p99.9", percentiles.p999, 9_990),
        ("max", percentiles.max, 10_000),
    ] {
        assert_within_precision(what, measured, Duration::from_micros(exact_micros));
    }
    assert!(
        percentiles.p50 <= percentiles.p90
            && percentiles.p90 <= percentiles.p99
            && percentiles.p99 <= percentiles.p999
            && percentiles.p999 <= percentiles.max,
        "{percentiles:?}"
    );
}

#[test]
fn latencies_are_visible_only_once_published() {
    let metrics = Metrics::with_latency(2, true);
    let mut writer = metrics.writer(1).unwrap();
    assert!(writer.records_latency());

    writer.record_latency(Duration::from_millis(3));
    assert_eq!(metrics.percentiles().unwrap().count, 0, "not yet published");

    writer.publish_latency();
    let after_publish = metrics.percentiles().unwrap();
    assert_eq!(after_publish.count, 1);
    assert_eq!(after_publish.sum, Duration::from_millis(3));
    assert_within_precision("max", after_publish.max, Duration::from_millis(3));

    writer.record_latency(Duration::from_millis(5));
    assert_eq!(
        metrics.percentiles().unwrap().count,
        1,
        "the second is not published"
    );
    writer.flush_latency();
    assert_eq!(metrics.percentiles().unwrap().count, 2);

    writer.record_latency(Duration::from_millis(7));
    writer.publish_latency();
    writer.publish_latency();
    assert_eq!(
        metrics.percentiles().unwrap().count,
        3,
        "publishing twice adds once"
    );

    writer.record_latency(Duration::from_millis(1));
    drop(writer);
    let after_drop = metrics.percentiles().unwrap();
    assert_eq!(
        after_drop.count, 4,
        "dropping the writer publishes the rest"
    );
    assert_eq!(after_drop.sum, Duration::from_millis(16));
}

#[test]
fn a_zero_latency_counts_as_the_smallest_value() {
    let metrics = Metrics::with_latency(1, true);
    let mut writer = metrics.writer(0).unwrap();
    writer.record_latency(Duration::ZERO);
    writer.flush_latency();
    let percentiles = metrics.percentiles().unwrap();
    assert_eq!(percentiles.count, 1);
    assert_eq!(percentiles.max, Duration::from_nanos(1));
    assert_eq!(percentiles.sum, Duration::ZERO);
}

#[test]
fn latencies_off_record_nothing() {
    let metrics = Metrics::new(1);
    assert!(!metrics.latency_enabled());
    let mut writer = metrics.writer(0).unwrap();
    assert!(!writer.records_latency());
    writer.record_latency(Duration::from_millis(1));
    writer.flush_latency();
    assert_eq!(metrics.percentiles(), None);
    assert_eq!(metrics.stats().latency, None);
}
