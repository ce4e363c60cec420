//! Custom counters written from outside the workers (`Pool::metrics_handle`):
//! producers, a reader and the workers count under one name, and the live
//! snapshot, the handle and the final report's stats all show the sum; the
//! handle outlives the pool and feeds an exporter its stats.
#![allow(clippy::unwrap_used)] // Tests may unwrap: a panic is a test failure.

use pool_core::{Ctx, Pool};

#[test]
fn producers_and_workers_count_into_the_same_counters() {
    let pool = Pool::builder()
        .workers(2)
        .build(|ctx: &Ctx, n: u64| {
            ctx.metrics().inc("seen");
            ctx.metrics().add("total", n);
            Ok::<(), std::io::Error>(())
        })
        .unwrap();
    let handle = pool.metrics_handle();
    std::thread::scope(|scope| {
        for producer in 0..4u64 {
            let pool = &pool;
            let handle = handle.clone();
            scope.spawn(move || {
                let skipped = handle.counter("skipped");
                let mut submitter = pool.submitter();
                for n in 0..1_000u64 {
                    if n % 10 == 0 {
                        skipped.inc();
                        continue;
                    }
                    submitter.submit(n).unwrap();
                    handle.add("total", producer);
                }
            });
        }
    });
    handle.inc("producers done");
    let snapshot = pool.metrics();
    assert_eq!(snapshot.stats.counters.get("skipped"), 400);
    assert_eq!(snapshot.stats.counters.get("producers done"), 1);

    let report = pool.wait().unwrap();
    let counters = &report.stats().counters;
    assert_eq!(report.processed(), 3_600);
    assert_eq!(counters.get("seen"), 3_600);
    assert_eq!(counters.get("skipped"), 400);
    let worker_sum: u64 = 4 * (0..1_000u64).filter(|n| n % 10 != 0).sum::<u64>();
    let producer_sum: u64 = (0..4u64).map(|producer| producer * 900).sum();
    assert_eq!(counters.get("total"), worker_sum + producer_sum);
    // Outside counters are no items: the accounting is unchanged.
    assert!(report.is_balanced());
    assert_eq!(report.stats().total_items(), 3_600);
    // The handle outlives the pool and still reads every shard.
    assert_eq!(handle.get("total"), worker_sum + producer_sum);
    assert_eq!(handle.counters(), *counters);
    assert_eq!(handle.stats().processed, 3_600);
}

#[test]
fn the_handle_reads_the_live_stats_from_another_thread() {
    let pool = Pool::builder()
        .workers(2)
        .build(|_ctx: &Ctx, _n: u64| Ok::<(), std::io::Error>(()))
        .unwrap();
    let handle = pool.metrics_handle();
    pool.run(0..500).unwrap();
    let exporter = std::thread::spawn(move || handle.stats());
    let stats = exporter.join().unwrap();
    assert_eq!(stats.processed, 500);
    assert_eq!(stats.workers, 2);
    pool.wait().unwrap();
}
