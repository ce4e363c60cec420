//! Shared, stateful and batch workers; any error type converts; stateful workers
//! need not be `Send` and are built on their own thread, once each.
#![allow(clippy::unwrap_used)] // Tests may unwrap: a panic is a test failure.

use std::collections::HashSet;
use std::rc::Rc;
use std::sync::{Arc, Mutex};

use pool_core::{BatchWorker, Ctx, Pool, PoolError};

#[derive(Debug, thiserror::Error)]
enum RowError {
    #[error("row {0} rejected")]
    Rejected(u64),
}

#[test]
fn anyhow_io_and_thiserror_errors_all_work() {
    let anyhow_pool = Pool::builder()
        .workers(1)
        .build(|_ctx: &Ctx, n: u64| -> anyhow::Result<()> { anyhow::bail!("anyhow {n}") })
        .expect("valid");
    let io_pool = Pool::builder()
        .workers(1)
        .build(|_ctx: &Ctx, n: u64| Err(std::io::Error::other(format!("io {n}"))))
        .expect("valid");
    let typed_pool = Pool::builder()
        .workers(1)
        .build(|_ctx: &Ctx, n: u64| Err(RowError::Rejected(n)))
        .expect("valid");
    for (pool, expected) in [
        (anyhow_pool, "anyhow 1"),
        (io_pool, "io 1"),
        (typed_pool, "row 1 rejected"),
    ] {
        pool.submitter().submit(1).expect("open");
        let error = pool.wait().expect_err("the item fails");
        assert_eq!(error.to_string(), format!("worker #0 failed: {expected}"));
        assert!(matches!(error, PoolError::Worker { .. }));
    }
}

#[test]
fn stateful_workers_are_built_once_per_thread_and_may_be_not_send() {
    let made = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (made_in, seen_in) = (Arc::clone(&made), Arc::clone(&seen));
    let pool = Pool::builder()
        .workers(4)
        .build_stateful(move |ctx: &Ctx| {
            let id = ctx.worker_id();
            made_in
                .lock()
                .unwrap()
                .push((id, std::thread::current().name().map(str::to_owned)));
            // `Rc` makes the worker `!Send`: it never leaves its thread.
            let local = Rc::new(std::cell::Cell::new(0u64));
            let seen = Arc::clone(&seen_in);
            move |ctx: &Ctx, _item: u64| {
                assert_eq!(ctx.worker_id(), id);
                local.set(local.get() + 1);
                seen.lock().unwrap().push(id);
                Ok::<(), std::io::Error>(())
            }
        })
        .expect("valid");
    let mut submitter = pool.submitter();
    for item in 0..1_000 {
        submitter.submit(item).expect("open");
    }
    drop(submitter);
    let report = pool.wait().expect("clean run");
    let made = made.lock().unwrap();
    let ids: HashSet<usize> = made.iter().map(|(id, _)| id.index()).collect();
    assert_eq!(ids, (0..4).collect());
    assert_eq!(made.len(), 4);
    for (id, name) in made.iter() {
        assert_eq!(
            name.as_deref(),
            Some(format!("workforce-{}", id.index()).as_str())
        );
    }
    // Each worker's report matches the items it saw.
    let seen = seen.lock().unwrap();
    for worker in report.workers() {
        let count = seen.iter().filter(|id| **id == worker.worker).count() as u64;
        assert_eq!(worker.counts.processed, count);
    }
}

/// Collects batches like a bulk insert would.
struct BulkInsert {
    sizes: Arc<Mutex<Vec<usize>>>,
}

impl BatchWorker<u64> for BulkInsert {
    type Error = anyhow::Error;
    fn work_batch(&mut self, _ctx: &Ctx, rows: &mut Vec<u64>) -> anyhow::Result<()> {
        self.sizes.lock().unwrap().push(rows.len());
        anyhow::ensure!(!rows.contains(&13), "batch with row 13 rejected");
        Ok(())
    }
}

#[test]
fn batch_workers_get_whole_batches_and_errors_count_every_item() {
    let sizes = Arc::new(Mutex::new(Vec::new()));
    let sizes_in = Arc::clone(&sizes);
    let pool = Pool::builder()
        .workers(2)
        .batch_size(10)
        .continue_on_error()
        .build_batch_stateful(move |_id| BulkInsert {
            sizes: Arc::clone(&sizes_in),
        })
        .expect("valid");
    let mut submitter = pool.submitter();
    for row in 0..95 {
        submitter.submit(row).expect("open");
    }
    drop(submitter);
    let report = pool.join();
    let mut sizes = sizes.lock().unwrap().clone();
    sizes.sort_unstable();
    assert_eq!(sizes, [5, 10, 10, 10, 10, 10, 10, 10, 10, 10]);
    // The batch 10..20 failed as a whole.
    assert_eq!(
        (report.processed(), report.failed(), report.error_total()),
        (85, 10, 1)
    );
}

#[test]
fn shared_batch_closures_work_with_the_sender() {
    let total = Arc::new(Mutex::new(0u64));
    let total_in = Arc::clone(&total);
    let pool = Pool::builder()
        .workers(2)
        .build_batch(move |_ctx: &Ctx, rows: &mut Vec<u64>| {
            *total_in.lock().unwrap() += rows.drain(..).sum::<u64>();
            Ok::<(), std::io::Error>(())
        })
        .expect("valid");
    let sender = pool.sender();
    for row in 1..=100 {
        sender.send(row).expect("open");
    }
    assert_eq!(pool.wait().expect("clean").processed(), 100);
    assert_eq!(*total.lock().unwrap(), 5050);
}

#[test]
fn ctx_counts_show_the_worker_s_progress() {
    let pool = Pool::builder()
        .workers(1)
        .batch_size(1)
        .build(|ctx: &Ctx, item: u64| {
            // With one worker and unbatched items, earlier items are all counted.
            assert_eq!(ctx.counts().processed, item);
            Ok::<(), std::io::Error>(())
        })
        .expect("valid");
    let mut submitter = pool.submitter();
    for item in 0..100 {
        submitter.submit(item).expect("open");
    }
    drop(submitter);
    assert_eq!(pool.wait().expect("clean").processed(), 100);
}
