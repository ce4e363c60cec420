//! `Submitter::submit_iter` behaves as one `submit` per item: every item is
//! processed once, also when the pool is full and the producer blocks; a closed
//! or cancelled pool hands back the refused item and leaves the rest in the
//! iterator; the accounting balances.
#![allow(clippy::unwrap_used)] // Tests may unwrap: a panic is a test failure.

mod common;

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};

use common::Routing;
use pool_core::{CancelToken, Ctx, Pool, SubmitError};
use rstest::rstest;

const N: u64 = 10_000;

#[rstest]
fn every_item_is_processed_once(
    #[values(Routing::Stealing, Routing::Keyed)] routing: Routing,
    #[values(1, 7, 64)] batch_size: usize,
    #[values(64, 1000)] capacity: usize,
) {
    let sum = Arc::new(AtomicU64::new(0));
    let seen = Arc::new(AtomicU64::new(0));
    let (worker_sum, worker_seen) = (Arc::clone(&sum), Arc::clone(&seen));
    let builder = Pool::builder()
        .workers(3)
        .batch_size(batch_size)
        .capacity(capacity);
    let pool = common::route(builder, routing, |item: &u64| *item % 17)
        .build(move |_ctx: &Ctx, item: u64| {
            worker_sum.fetch_add(item, SeqCst);
            worker_seen.fetch_add(1, SeqCst);
            Ok::<(), Infallible>(())
        })
        .unwrap();
    let mut submitter = pool.submitter();
    submitter.submit_iter(0..N / 2).unwrap();
    // Mixed with single submits, the batches stay consistent.
    submitter.submit(N / 2).unwrap();
    submitter.submit_iter(N / 2 + 1..N).unwrap();
    drop(submitter);
    let report = pool.wait().unwrap();
    assert_eq!((report.submitted(), report.processed()), (N, N));
    assert_eq!(seen.load(SeqCst), N);
    assert_eq!(sum.load(SeqCst), N * (N - 1) / 2);
}

#[rstest]
fn a_closed_pool_hands_back_the_first_item_and_leaves_the_rest(
    #[values(Routing::Stealing, Routing::Keyed)] routing: Routing,
    #[values(1, 64)] batch_size: usize,
) {
    let builder = Pool::builder().workers(2).batch_size(batch_size);
    let pool = common::route(builder, routing, |item: &u64| *item)
        .build(|_ctx: &Ctx, _item: u64| Ok::<(), Infallible>(()))
        .unwrap();
    pool.close();
    let mut items = 0..100_u64;
    let refused = pool.submitter().submit_iter(items.by_ref());
    assert_eq!(refused, Err(SubmitError::Closed(0)));
    assert_eq!(items.next(), Some(1));
    assert_eq!(pool.wait().unwrap().submitted(), 0);
}

#[rstest]
fn a_cancel_mid_stream_stops_the_producer_and_the_counts_balance(
    #[values(Routing::Stealing, Routing::Keyed)] routing: Routing,
    #[values(1, 64)] batch_size: usize,
) {
    let token = CancelToken::new();
    let worker_token = token.clone();
    let builder = Pool::builder()
        .workers(2)
        .batch_size(batch_size)
        .capacity(256)
        .cancel_token(token);
    let pool = common::route(builder, routing, |item: &u64| *item)
        .build(move |_ctx: &Ctx, item: u64| {
            if item == 1_000 {
                worker_token.cancel();
            }
            Ok::<(), Infallible>(())
        })
        .unwrap();
    // Capacity 256 makes the producer block long before the end, so the
    // cancel reaches it while it still has items to give.
    let mut items = 0..1_000_000_u64;
    let refused = pool.submitter().submit_iter(items.by_ref());
    let Err(SubmitError::Cancelled(item)) = refused else {
        panic!("expected a cancelled refusal, got {refused:?}");
    };
    let report = pool.join();
    let taken = items.next().unwrap();
    assert_eq!(taken, item + 1, "the items after the refused one stay");
    assert_eq!(
        report.submitted(),
        item,
        "every item before the refused one was accepted"
    );
    assert_eq!(
        report.submitted(),
        report.processed() + report.failed() + report.dropped()
    );
}
