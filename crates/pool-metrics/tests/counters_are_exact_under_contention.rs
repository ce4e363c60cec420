//! Custom counters stay exact when 4 threads add to the same name at once, by
//! `&'static str`, by `String` and by handle, on one shard and on a shard each;
//! `add` returns the new value, unknown names read 0, and `Counters` prints
//! sorted by name.

#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Barrier};

use pool_metrics::Metrics;
use rstest::rstest;

const THREADS: usize = 4;
const PER_THREAD: u64 = 1_000_000;
const NAME: &str = "fetch_errors";

/// How the threads name the counter they add to.
#[derive(Debug, Clone, Copy)]
enum By {
    /// `shard.counter("fetch_errors")` once per thread, then `counter.inc()`.
    Handle,
    /// Increment `i` of thread `t` uses form `(i + t) % 3`: `&'static str`,
    /// `String`, handle. So every form adds to the counter while the others
    /// do, the first use of the name races between forms, and all must reach
    /// the one counter.
    EveryForm,
}

/// Where the threads' counters live.
#[derive(Debug, Clone, Copy)]
enum Layout {
    /// All 4 threads add to shard 0 (contended atomics, concurrent first use).
    SameShard,
    /// Thread `i` adds to shard `i`, as pool workers do.
    OwnShard,
}

/// Adds 1 `PER_THREAD` times and returns, per thread, (the last value `inc`
/// returned, the sum of every returned value, whether the values rose
/// strictly).
fn hammer(metrics: &Arc<Metrics>, by: By, layout: Layout) -> Vec<(u64, u128, bool)> {
    let start = Barrier::new(THREADS);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..THREADS)
            .map(|thread| {
                let start = &start;
                let shard_index = match layout {
                    Layout::SameShard => 0,
                    Layout::OwnShard => thread,
                };
                let shard = metrics.shard(shard_index).unwrap();
                scope.spawn(move || {
                    let owned_name = String::from(NAME);
                    // Resolved before the start for `Handle`; at its first use
                    // (racing the other forms) for `EveryForm`.
                    let mut handle = matches!(by, By::Handle).then(|| shard.counter(NAME));
                    start.wait();
                    let mut last = 0u64;
                    let mut sum = 0u128;
                    let mut rising = true;
                    for increment in 0..PER_THREAD as usize {
                        let value = match (by, (increment + thread) % 3) {
                            (By::Handle, _) | (By::EveryForm, 2) => {
                                handle.get_or_insert_with(|| shard.counter(NAME)).inc()
                            }
                            (By::EveryForm, 0) => shard.inc(NAME),
                            (By::EveryForm, _) => shard.inc(owned_name.clone()),
                        };
                        rising &= value > last;
                        last = value;
                        sum += u128::from(value);
                    }
                    (last, sum, rising)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

#[rstest]
fn four_threads_count_exactly(
    #[values(By::Handle, By::EveryForm)] by: By,
    #[values(Layout::SameShard, Layout::OwnShard)] layout: Layout,
) {
    let metrics = Metrics::new(THREADS);
    let per_thread = hammer(&metrics, by, layout);

    let total = THREADS as u64 * PER_THREAD;
    assert_eq!(metrics.get(NAME), total);
    assert_eq!(metrics.counters().get(NAME), total);
    assert_eq!(metrics.stats().counters.get(NAME), total);
    assert_eq!(
        metrics.counters().len(),
        1,
        "one counter, whatever the name's form"
    );
    for (thread, (_, _, rising)) in per_thread.iter().enumerate() {
        assert!(
            rising,
            "thread {thread}: inc returned a value not above its last"
        );
    }

    match layout {
        Layout::SameShard => {
            assert_eq!(metrics.shard(0).unwrap().get(NAME), total);
            // Every inc returned a new value of the one counter: together they are
            // 1..=total, so their sum is total * (total + 1) / 2 and the largest
            // is total.
            let sum: u128 = per_thread.iter().map(|(_, sum, _)| sum).sum();
            let total_128 = u128::from(total);
            assert_eq!(sum, total_128 * (total_128 + 1) / 2);
            let largest = per_thread.iter().map(|(last, _, _)| *last).max();
            assert_eq!(largest, Some(total));
        }
        Layout::OwnShard => {
            for (index, (last, sum, _)) in per_thread.iter().enumerate() {
                assert_eq!(metrics.shard(index).unwrap().get(NAME), PER_THREAD);
                // Alone on its shard, a thread sees exactly 1..=PER_THREAD.
                assert_eq!(*last, PER_THREAD);
                let n = u128::from(PER_THREAD);
                assert_eq!(*sum, n * (n + 1) / 2);
            }
        }
    }
}

#[test]
fn add_returns_the_new_value() {
    let metrics = Metrics::new(2);
    let shard = metrics.shard(0).unwrap();
    assert_eq!(shard.add("bytes", 10), 10);
    assert_eq!(shard.add(String::from("bytes"), 5), 15);
    assert_eq!(shard.inc("bytes"), 16);
    assert_eq!(shard.add("bytes", 0), 16);

    let handle = shard.counter("bytes");
    assert_eq!(handle.get(), 16, "a handle sees what names added before");
    assert_eq!(handle.add(4), 20);
    assert_eq!(shard.get("bytes"), 20, "names see what the handle added");

    // The other shard keeps its own value; the merged read adds both.
    assert_eq!(metrics.shard(1).unwrap().add("bytes", 1), 1);
    assert_eq!(metrics.get("bytes"), 21);
}

#[test]
fn add_wraps_at_u64_max() {
    let metrics = Metrics::new(1);
    let handle = metrics.shard(0).unwrap().counter("wraps");
    assert_eq!(handle.add(u64::MAX), u64::MAX);
    assert_eq!(handle.add(2), 1);
}

#[test]
fn unknown_names_read_zero() {
    let metrics = Metrics::new(2);
    metrics.shard(0).unwrap().inc("known");
    assert_eq!(metrics.get("unknown"), 0);
    assert_eq!(metrics.shard(0).unwrap().get("unknown"), 0);
    assert_eq!(metrics.shard(1).unwrap().get("known"), 0);
    assert_eq!(metrics.counters().get("unknown"), 0);
    assert_eq!(metrics.get("known"), 1);
    assert!(
        !metrics.counters().iter().any(|(name, _)| name == "unknown"),
        "reading a name must not create it"
    );
}

#[test]
fn counters_display_sorted_by_name_and_merged_over_shards() {
    let metrics = Metrics::new(3);
    // Created in an order that is neither sorted nor reverse-sorted, on
    // different shards, with one name on two shards.
    metrics.shard(2).unwrap().add("retries", 2);
    metrics.shard(0).unwrap().add(String::from("cache_miss"), 7);
    metrics.shard(1).unwrap().add("zeta", 1);
    metrics.shard(0).unwrap().add("retries", 3);
    metrics.shard(1).unwrap().add("Alpha", 4);

    let counters = metrics.counters();
    assert_eq!(
        counters.to_string(),
        "Alpha = 4\ncache_miss = 7\nretries = 5\nzeta = 1\n",
        "byte order: upper case sorts before lower case"
    );
    let names: Vec<&str> = counters.iter().map(|(name, _)| name).collect();
    assert_eq!(names, ["Alpha", "cache_miss", "retries", "zeta"]);
    assert_eq!(counters.len(), 4);
    assert!(!counters.is_empty());
    assert_eq!(metrics.stats().counters, counters);
}
