//! Each shard has at most one `ShardWriter` alive: `writer(i)` is `None`
//! while one is, `Some` again once it is dropped (on any thread), and `None`
//! past the last shard. `Metrics::new(0)` has no shards and zero stats.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use pool_metrics::{Metrics, ShardWriter, Stats};

#[test]
fn a_second_writer_is_refused_until_the_first_is_dropped() {
    let metrics = Metrics::new(2);
    let first = metrics.writer(0).unwrap();
    assert_eq!(first.index(), 0);
    assert!(metrics.writer(0).is_none(), "shard 0 already has a writer");
    assert!(metrics.writer(0).is_none(), "asking again does not free it");

    let other = metrics.writer(1);
    assert!(other.is_some(), "shard 1 is independent of shard 0");

    drop(first);
    let again = metrics.writer(0);
    assert!(again.is_some(), "dropping the writer frees the shard");
    assert!(
        metrics.writer(1).is_none(),
        "shard 1's writer is still alive"
    );
}

#[test]
fn a_writer_dropped_on_another_thread_frees_the_shard() {
    fn assert_send<T: Send>(_: &T) {}

    let metrics = Metrics::new(1);
    let mut writer = metrics.writer(0).unwrap();
    assert_send(&writer);
    std::thread::spawn(move || {
        writer.add_processed(5);
        drop(writer);
    })
    .join()
    .unwrap();
    let mut writer = metrics.writer(0).unwrap();
    assert_eq!(
        writer.shard().processed(),
        5,
        "the next writer continues the counts"
    );
    writer.add_processed(1);
    assert_eq!(metrics.stats().processed, 6);
}

#[test]
fn out_of_range_is_none() {
    let metrics = Metrics::new(3);
    assert!(metrics.writer(3).is_none());
    assert!(metrics.writer(usize::MAX).is_none());
    assert!(metrics.shard(3).is_none());
    assert!(metrics.writer(2).is_some());
    assert_eq!(metrics.len(), 3);
    assert_eq!(metrics.shards().count(), 3);
}

#[test]
fn writes_land_on_the_writers_shard_only() {
    let metrics = Metrics::new(2);
    let mut writer: ShardWriter = metrics.writer(1).unwrap();
    writer.add_processed(3);
    writer.add_failed(2);
    writer.add_dropped(1);
    writer.add_busy(Duration::from_millis(7));
    writer.add_busy(Duration::from_millis(3));
    writer.add_idle(Duration::from_millis(4));
    writer.set_init(Duration::from_millis(9));
    writer.set_init(Duration::from_millis(2));
    writer.set_wrap_up(Duration::from_millis(5));

    let shard = metrics.shard(1).unwrap();
    assert_eq!(
        (shard.processed(), shard.failed(), shard.dropped()),
        (3, 2, 1)
    );
    assert_eq!(shard.busy(), Duration::from_millis(10), "busy time adds up");
    assert_eq!(shard.idle(), Duration::from_millis(4));
    assert_eq!(
        shard.init(),
        Duration::from_millis(2),
        "init time is set, not added"
    );
    assert_eq!(shard.wrap_up(), Duration::from_millis(5));

    let untouched = metrics.shard(0).unwrap();
    assert_eq!(
        (untouched.processed(), untouched.failed(), untouched.busy()),
        (0, 0, Duration::ZERO)
    );
}

#[test]
fn zero_shards_work_and_give_zero_stats() {
    for latency in [false, true] {
        let metrics = Metrics::with_latency(0, latency);
        assert!(metrics.is_empty());
        assert_eq!(metrics.len(), 0);
        assert!(metrics.writer(0).is_none());
        assert!(metrics.shard(0).is_none());
        assert_eq!(metrics.get("anything"), 0);
        assert!(metrics.counters().is_empty());

        let stats = metrics.stats_with_total(Duration::from_secs(1));
        let mut expected = Stats::default();
        expected.total_time = Duration::from_secs(1);
        expected.latency = metrics.percentiles();
        assert_eq!(stats, expected);
        assert_eq!(stats.workers, 0);
        assert_eq!(stats.rate_per_sec(), 0.0);
        assert_eq!(stats.utilization(), 0.0);
        assert_eq!(stats.avg_latency(), Duration::ZERO);
        match stats.latency {
            None => assert!(!latency),
            Some(percentiles) => {
                assert!(latency);
                assert_eq!(percentiles.count, 0);
                assert_eq!(percentiles.max, Duration::ZERO);
            }
        }
    }
}
