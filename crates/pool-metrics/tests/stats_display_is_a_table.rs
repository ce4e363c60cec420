//! `Stats`' `Display` is a small table: counts with their rates, times,
//! rate, average latency, utilization, the percentiles when recorded and the
//! counters sorted by name; it never prints `NaN`.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use pool_metrics::Metrics;

#[test]
fn the_table_lists_every_value() {
    let metrics = Metrics::new(2);
    for index in 0..2 {
        let mut writer = metrics.writer(index).unwrap();
        writer.add_processed(495);
        writer.add_failed(5);
        writer.add_busy(Duration::from_millis(750));
        writer.add_idle(Duration::from_millis(250));
        writer.set_init(Duration::from_millis(5));
        writer.set_wrap_up(Duration::from_micros(500));
    }
    metrics.shard(1).unwrap().add("zeta", 2);
    metrics.shard(0).unwrap().add("alpha", 1);
    let text = metrics.stats_with_total(Duration::from_secs(1)).to_string();
    assert_eq!(
        text,
        "\
workers      2
processed    990
failed       10 (1.00%)
dropped      0 (0.00%)
processing   750.0ms busiest worker, 1.5s all workers
wait         500.0ms
init         10.0ms
wrap-up      1.0ms
total        1.0s
rate         990.0/s
avg latency  1.5ms
utilization  75.00%
counters
  alpha = 1
  zeta = 2"
    );
}

#[test]
fn percentiles_appear_when_recorded() {
    let metrics = Metrics::with_latency(1, true);
    let mut writer = metrics.writer(0).unwrap();
    writer.add_processed(2);
    // Below 2,048 ns the histogram's buckets are 1 ns wide, so these print as
    // recorded (larger values print as the top of their bucket, within 0.1%).
    writer.record_latency(Duration::from_nanos(1_000));
    writer.record_latency(Duration::from_nanos(2_000));
    writer.flush_latency();
    let text = metrics.stats_with_total(Duration::from_secs(1)).to_string();
    let line = text
        .lines()
        .find(|line| line.starts_with("latency"))
        .unwrap();
    assert_eq!(
        line,
        "latency      p50 1.0µs, p90 2.0µs, p99 2.0µs, p99.9 2.0µs, max 2.0µs (2 items)"
    );
    assert!(!text.contains("counters"), "no counters, no block:\n{text}");
}

#[test]
fn empty_stats_print_zeros_not_nan() {
    let text = Metrics::with_latency(0, true)
        .stats_with_total(Duration::ZERO)
        .to_string();
    for bad in ["NaN", "inf"] {
        assert!(!text.contains(bad), "{bad} in\n{text}");
    }
    assert!(text.contains("rate         0.0/s"), "{text}");
    assert!(text.contains("avg latency  0s"), "{text}");
    assert!(text.contains("utilization  0.00%"), "{text}");
    assert!(text.contains("p50 0s"), "{text}");
}
