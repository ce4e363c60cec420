//! `Stats` merged from hand-made shards: which times are summed and which is
//! the max, the derived values on known inputs, and no `NaN`, infinity or
//! out-of-range rate for zero items, zero time, only failures or only drops.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use pool_metrics::{Metrics, Stats};
use rstest::rstest;

/// What one hand-made worker did.
#[derive(Debug, Clone, Copy, Default)]
struct Worker {
    processed: u64,
    failed: u64,
    dropped: u64,
    busy_ms: u64,
    idle_ms: u64,
    init_ms: u64,
    wrap_up_ms: u64,
}

/// Stats of one shard per worker, written through each shard's writer.
fn stats_of(workers: &[Worker], total_ms: u64) -> Stats {
    let metrics = Metrics::new(workers.len());
    for (index, worker) in workers.iter().enumerate() {
        let mut writer = metrics.writer(index).unwrap();
        writer.add_processed(worker.processed);
        writer.add_failed(worker.failed);
        writer.add_dropped(worker.dropped);
        writer.add_busy(Duration::from_millis(worker.busy_ms));
        writer.add_idle(Duration::from_millis(worker.idle_ms));
        writer.set_init(Duration::from_millis(worker.init_ms));
        writer.set_wrap_up(Duration::from_millis(worker.wrap_up_ms));
    }
    metrics.stats_with_total(Duration::from_millis(total_ms))
}

/// A worker that processed `n` items in `busy_ms` and waited `idle_ms`.
fn worker(processed: u64, busy_ms: u64, idle_ms: u64) -> Worker {
    Worker {
        processed,
        busy_ms,
        idle_ms,
        ..Worker::default()
    }
}

/// Every derived float is finite, and the shares are in `0.0..=1.0`; the
/// table prints no `NaN` or infinity.
fn assert_sane(stats: &Stats) {
    let rate = stats.rate_per_sec();
    assert!(rate.is_finite() && rate >= 0.0, "rate {rate}");
    for (what, share) in [
        ("failed_rate", stats.failed_rate()),
        ("dropped_rate", stats.dropped_rate()),
        ("utilization", stats.utilization()),
    ] {
        assert!((0.0..=1.0).contains(&share), "{what} = {share}");
    }
    let text = stats.to_string();
    for bad in ["NaN", "inf"] {
        assert!(!text.contains(bad), "{bad} printed:\n{text}");
    }
}

/// Expected derived values; times in microseconds to keep the table short.
#[derive(Debug)]
struct Derived {
    rate_per_sec: f64,
    avg_latency_us: u64,
    failed_rate: f64,
    dropped_rate: f64,
    utilization: f64,
}

#[rstest]
#[case::nothing_happened(
    vec![Worker::default()],
    0,
    Derived { rate_per_sec: 0.0, avg_latency_us: 0,
              failed_rate: 0.0, dropped_rate: 0.0, utilization: 0.0 },
)]
#[case::items_but_zero_time(
    vec![worker(10, 0, 0)],
    0,
    Derived { rate_per_sec: 0.0, avg_latency_us: 0,
              failed_rate: 0.0, dropped_rate: 0.0, utilization: 0.0 },
)]
#[case::only_failures(
    vec![Worker { failed: 10, busy_ms: 1_000, ..Worker::default() }],
    2_000,
    // Failed items ran, so their time counts in the average.
    Derived { rate_per_sec: 0.0, avg_latency_us: 100_000,
              failed_rate: 1.0, dropped_rate: 0.0, utilization: 1.0 },
)]
#[case::only_dropped(
    vec![Worker { dropped: 7, idle_ms: 500, ..Worker::default() }],
    1_000,
    Derived { rate_per_sec: 0.0, avg_latency_us: 0,
              failed_rate: 0.0, dropped_rate: 1.0, utilization: 0.0 },
)]
#[case::one_worker(
    vec![worker(100, 750, 250)],
    1_000,
    Derived { rate_per_sec: 100.0, avg_latency_us: 7_500,
              failed_rate: 0.0, dropped_rate: 0.0, utilization: 0.75 },
)]
#[case::four_workers_half_busy(
    // Each worker: 100 items in 1 s busy, 1 s idle, over a 2 s run. One item
    // takes 10 ms, and every worker was busy half the time.
    vec![worker(100, 1_000, 1_000); 4],
    2_000,
    Derived { rate_per_sec: 200.0, avg_latency_us: 10_000,
              failed_rate: 0.0, dropped_rate: 0.0, utilization: 0.5 },
)]
#[case::failures_and_drops_share_the_denominator(
    vec![
        Worker { processed: 6, failed: 3, busy_ms: 900, idle_ms: 100, ..Worker::default() },
        Worker { processed: 0, dropped: 1, busy_ms: 0, idle_ms: 1_000, ..Worker::default() },
    ],
    1_000,
    // 9 items (6 processed, 3 failed) took 900 ms of work.
    Derived { rate_per_sec: 6.0, avg_latency_us: 100_000,
              failed_rate: 0.3, dropped_rate: 0.1, utilization: 900.0 / 2_000.0 },
)]
fn derived_values(#[case] workers: Vec<Worker>, #[case] total_ms: u64, #[case] want: Derived) {
    let stats = stats_of(&workers, total_ms);
    assert_sane(&stats);
    assert_eq!(stats.rate_per_sec(), want.rate_per_sec, "rate_per_sec");
    assert_eq!(
        stats.avg_latency(),
        Duration::from_micros(want.avg_latency_us),
        "avg_latency"
    );
    assert_eq!(stats.failed_rate(), want.failed_rate, "failed_rate");
    assert_eq!(stats.dropped_rate(), want.dropped_rate, "dropped_rate");
    assert_eq!(stats.utilization(), want.utilization, "utilization");
}

#[test]
fn processing_time_is_the_max_and_the_other_times_are_sums() {
    let stats = stats_of(
        &[
            Worker {
                processed: 1,
                failed: 2,
                dropped: 3,
                busy_ms: 300,
                idle_ms: 10,
                init_ms: 5,
                wrap_up_ms: 1,
            },
            Worker {
                processed: 10,
                failed: 20,
                dropped: 30,
                busy_ms: 700,
                idle_ms: 20,
                init_ms: 6,
                wrap_up_ms: 2,
            },
            Worker {
                processed: 100,
                failed: 200,
                dropped: 300,
                busy_ms: 100,
                idle_ms: 40,
                init_ms: 7,
                wrap_up_ms: 4,
            },
        ],
        5_000,
    );
    assert_eq!(stats.workers, 3);
    assert_eq!(
        (stats.processed, stats.failed, stats.dropped),
        (111, 222, 333)
    );
    assert_eq!(stats.total_items(), 666);
    assert_eq!(
        stats.processing_time,
        Duration::from_millis(700),
        "max, as Go"
    );
    assert_eq!(stats.processing_time_sum, Duration::from_millis(1_100));
    assert_eq!(stats.wait_time, Duration::from_millis(70), "sum, as Go");
    assert_eq!(stats.init_time, Duration::from_millis(18), "sum, as Go");
    assert_eq!(stats.wrap_up_time, Duration::from_millis(7), "sum, as Go");
    assert_eq!(stats.total_time, Duration::from_secs(5));
    assert_sane(&stats);
}

#[test]
fn huge_values_saturate_instead_of_panicking() {
    let everything = Worker {
        processed: u64::MAX,
        failed: u64::MAX,
        dropped: u64::MAX,
        busy_ms: u64::MAX,
        idle_ms: u64::MAX,
        init_ms: u64::MAX,
        wrap_up_ms: u64::MAX,
    };
    let stats = stats_of(&[everything, everything], u64::MAX);
    assert_eq!(stats.total_items(), u64::MAX);
    assert_sane(&stats);
    assert!(stats.avg_latency() > Duration::ZERO);
}
