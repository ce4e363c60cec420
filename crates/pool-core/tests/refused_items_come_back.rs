//! A refused submission hands the item back: full, timed out, closed, cancelled,
//! for `Submitter` and `Sender` alike, in stealing and keyed pools.
#![allow(clippy::unwrap_used)] // Tests may unwrap: a panic is a test failure.

mod common;

use std::convert::Infallible;
use std::time::Duration;

use common::{Gate, Routing};
use pool_core::{Ctx, Pool, SendError, SubmitError, TrySendError, TrySubmitError};
use rstest::rstest;

/// A one-worker pool with room for one item whose worker waits at `gate`.
fn gated_pool(gate: &Gate, routing: Routing) -> Pool<u64> {
    let gate = gate.clone();
    let builder = Pool::builder().workers(1).batch_size(1).capacity(1);
    common::route(builder, routing, |item: &u64| *item)
        .build(move |_ctx: &Ctx, _item: u64| {
            gate.wait();
            Ok::<(), Infallible>(())
        })
        .expect("valid settings")
}

#[rstest]
fn try_submit_and_submit_timeout_hand_the_item_back_when_full(
    #[values(Routing::Stealing, Routing::Keyed)] routing: Routing,
) {
    let gate = Gate::default();
    let pool = gated_pool(&gate, routing);
    let mut submitter = pool.submitter();
    submitter.try_submit(1).expect("room for one");
    assert_eq!(submitter.try_submit(2), Err(TrySubmitError::Full(2)));
    assert_eq!(
        submitter.submit_timeout(3, Duration::from_millis(5)),
        Err(TrySubmitError::Full(3))
    );
    let sender = pool.sender();
    assert_eq!(sender.try_send(4), Err(TrySendError::Full(4)));
    assert_eq!(
        sender.send_timeout(5, Duration::from_millis(5)),
        Err(TrySendError::Full(5))
    );
    gate.open();
    drop(submitter);
    let report = pool.wait().expect("clean run");
    assert_eq!((report.submitted(), report.processed()), (1, 1));
}

#[rstest]
fn submit_after_close_hands_the_item_back(
    #[values(Routing::Stealing, Routing::Keyed)] routing: Routing,
) {
    let pool = common::route(Pool::builder().workers(2), routing, |item: &String| {
        item.clone()
    })
    .build(|_ctx: &Ctx, _item: String| Ok::<(), Infallible>(()))
    .expect("valid settings");
    pool.close();
    pool.close(); // closing twice is harmless
    let mut submitter = pool.submitter();
    assert_eq!(
        submitter.submit("a".into()),
        Err(SubmitError::Closed("a".into()))
    );
    assert_eq!(
        submitter.try_submit("b".into()),
        Err(TrySubmitError::Closed("b".into()))
    );
    let sender = pool.sender();
    assert_eq!(sender.send("c".into()), Err(SendError::Closed("c".into())));
    drop(submitter);
    let report = pool.wait().expect("clean run");
    assert_eq!(report.submitted(), 0);
    // A sender that outlives the pool refuses too.
    assert!(sender.is_closed());
    assert_eq!(
        sender.send("d".into()).map_err(SendError::into_inner),
        Err("d".to_owned())
    );
}

#[rstest]
fn submit_after_cancel_hands_the_item_back(
    #[values(Routing::Stealing, Routing::Keyed)] routing: Routing,
) {
    let pool = common::route(Pool::builder().workers(2), routing, |item: &u64| *item)
        .build(|_ctx: &Ctx, _item: u64| Ok::<(), Infallible>(()))
        .expect("valid settings");
    pool.cancel();
    let mut submitter = pool.submitter();
    assert_eq!(submitter.submit(7), Err(SubmitError::Cancelled(7)));
    assert_eq!(pool.sender().try_send(8), Err(TrySendError::Cancelled(8)));
    drop(submitter);
    match pool.wait() {
        Err(pool_core::PoolError::Cancelled { dropped: 0 }) => {}
        other => panic!("expected a cancelled run, got {other:?}"),
    }
}

#[rstest]
fn items_buffered_before_close_are_still_processed(
    #[values(Routing::Stealing, Routing::Keyed)] routing: Routing,
) {
    let builder = Pool::builder().workers(2).batch_size(10);
    let pool = common::route(builder, routing, |item: &u64| *item)
        .build(|_ctx: &Ctx, _item: u64| Ok::<(), Infallible>(()))
        .expect("valid settings");
    let mut submitter = pool.submitter();
    for item in 0..5 {
        submitter.submit(item).expect("pool open");
    }
    assert_eq!(submitter.buffered(), 5);
    pool.close();
    assert_eq!(submitter.submit(99), Err(SubmitError::Closed(99)));
    drop(submitter);
    let report = pool.wait().expect("clean run");
    assert_eq!((report.submitted(), report.processed()), (5, 5));
}

/// A producer blocked at capacity goes on as soon as one item's room is free,
/// even while the workers stay busy: here the worker's next item waits for that
/// very producer. (Waking blocked producers only at a low watermark deadlocks
/// this; the bound below only turns such a hang into a failure.)
#[test]
fn a_blocked_producer_goes_on_as_soon_as_room_frees() {
    let gate = Gate::default();
    let worker_gate = gate.clone();
    let pool = Pool::builder()
        .workers(1)
        .batch_size(1)
        .capacity(4)
        .build(move |_ctx: &Ctx, n: u64| {
            if n == 1 {
                worker_gate.wait();
            }
            Ok::<(), Infallible>(())
        })
        .expect("valid settings");
    let (done, returned) = std::sync::mpsc::channel();
    std::thread::scope(|scope| {
        let pool = &pool;
        scope.spawn(move || {
            let mut submitter = pool.submitter();
            for n in 0..5 {
                // Item 4 blocks: items 1..=3 fill the pool, item 1 holds the
                // worker until item 4 is in.
                let _ = submitter.submit(n);
            }
            let _ = done.send(());
        });
        let woken = returned.recv_timeout(Duration::from_secs(60)).is_ok();
        gate.open();
        if !woken {
            pool.cancel();
        }
        assert!(woken, "the blocked producer was never woken");
    });
    assert_eq!(pool.wait().unwrap().processed(), 5);
}
