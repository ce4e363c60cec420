//! A pool dropped without `wait` closes, drains and joins: items processed,
//! every item value dropped once, every worker finished.
#![allow(clippy::unwrap_used)] // Tests may unwrap: a panic is a test failure.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::SeqCst};

use common::Tracked;
use pool_core::{Ctx, Pool};

#[test]
fn dropping_a_pool_drains_it_and_joins_its_threads() {
    let drops = Arc::new(AtomicU64::new(0));
    let processed = Arc::new(AtomicU64::new(0));
    let finished_workers = Arc::new(AtomicUsize::new(0));
    let pool_reports = Arc::new(AtomicUsize::new(0));
    {
        let (processed, finished, reports) = (
            Arc::clone(&processed),
            Arc::clone(&finished_workers),
            Arc::clone(&pool_reports),
        );
        let pool = Pool::builder()
            .workers(3)
            .batch_size(8)
            .on_worker_done(move |_id, _counts| {
                finished.fetch_add(1, SeqCst);
            })
            .on_pool_done(move |report| {
                assert!(report.is_balanced());
                reports.fetch_add(1, SeqCst);
            })
            .build(move |_ctx: &Ctx, _item: Tracked| {
                processed.fetch_add(1, SeqCst);
                Ok::<(), std::io::Error>(())
            })
            .expect("valid settings");
        let mut submitter = pool.submitter();
        for value in 0..10_000 {
            submitter
                .submit(Tracked::new(value, &drops))
                .expect("pool open");
        }
        // Dropped in reverse order: the submitter flushes, then the pool drains.
    }
    assert_eq!(processed.load(SeqCst), 10_000);
    assert_eq!(drops.load(SeqCst), 10_000);
    assert_eq!(finished_workers.load(SeqCst), 3);
    assert_eq!(pool_reports.load(SeqCst), 1);
}

#[test]
fn items_are_dropped_as_soon_as_they_are_processed() {
    // The worker sees the drop count of every earlier item of its own batch: no
    // recycled batch keeps items alive.
    let drops = Arc::new(AtomicU64::new(0));
    let worker_drops = Arc::clone(&drops);
    let pool = Pool::builder()
        .workers(1)
        .batch_size(16)
        .build(move |_ctx: &Ctx, item: Tracked| {
            // Every item before this one has been processed and dropped.
            assert_eq!(worker_drops.load(SeqCst), item.value);
            Ok::<(), std::io::Error>(())
        })
        .expect("valid settings");
    let mut submitter = pool.submitter();
    for value in 0..1_000 {
        submitter
            .submit(Tracked::new(value, &drops))
            .expect("pool open");
    }
    drop(submitter);
    assert_eq!(pool.wait().expect("clean run").processed(), 1_000);
}
