//! Cancel while producers are blocked at capacity and workers are busy: every
//! producer returns, queued items are dropped and counted, nothing hangs.
#![allow(clippy::unwrap_used)] // Tests may unwrap: a panic is a test failure.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};

use common::{Gate, Routing, Tracked, wait_until};
use pool_core::{CancelToken, Ctx, Pool, PoolError, SubmitError};
use rstest::rstest;

#[rstest]
fn cancel_releases_producers_blocked_at_capacity(
    #[values(Routing::Stealing, Routing::Keyed)] routing: Routing,
) {
    let drops = Arc::new(AtomicU64::new(0));
    let gate = Gate::default();
    let worker_gate = gate.clone();
    let builder = Pool::builder().workers(2).batch_size(4).capacity(16);
    let pool = common::route(builder, routing, |item: &Tracked| item.value % 13)
        .build(move |_ctx: &Ctx, _item: Tracked| {
            worker_gate.wait();
            Ok::<(), std::io::Error>(())
        })
        .expect("valid settings");
    let n_producers = 4u64;
    let per_producer = 1_000u64;
    let refused = AtomicU64::new(0);
    std::thread::scope(|scope| {
        for producer in 0..n_producers {
            let (pool, drops, refused) = (&pool, &drops, &refused);
            scope.spawn(move || {
                let mut submitter = pool.submitter();
                for value in 0..per_producer {
                    let item = Tracked::new(producer * per_producer + value, drops);
                    if let Err(error) = submitter.submit(item) {
                        assert!(matches!(error, SubmitError::Cancelled(_)));
                        refused.fetch_add(per_producer - value, SeqCst);
                        // The rest of this producer's items are never made.
                        drops.fetch_add(per_producer - value - 1, SeqCst);
                        break;
                    }
                }
            });
        }
        // The pool is full: workers hold their items at the gate.
        wait_until(|| pool.in_flight() == pool.capacity());
        pool.cancel();
        gate.open();
    });
    let report = pool.join();
    assert!(report.was_cancelled());
    assert!(report.is_balanced(), "{report}");
    assert_eq!(
        report.submitted() + refused.load(SeqCst),
        n_producers * per_producer
    );
    assert!(report.dropped() > 0, "{report}");
    assert_eq!(drops.load(SeqCst), n_producers * per_producer);
}

#[test]
fn a_parent_token_cancels_several_pools() {
    let parent = CancelToken::new();
    let gate = Gate::default();
    let in_hand = Arc::new(AtomicU64::new(0));
    let make = |gate: Gate, token: CancelToken| {
        let in_hand = Arc::clone(&in_hand);
        Pool::builder()
            .workers(1)
            .batch_size(1)
            .capacity(100)
            .cancel_token(token)
            .build(move |ctx: &Ctx, _item: u64| {
                in_hand.fetch_add(1, SeqCst);
                gate.wait();
                assert!(ctx.is_cancelled());
                Ok::<(), std::io::Error>(())
            })
            .expect("valid settings")
    };
    // The parent itself, and a child of it that nobody else holds (the link
    // from the parent must survive the child token being dropped).
    let pools = [
        make(gate.clone(), parent.clone()),
        make(gate.clone(), parent.child()),
    ];
    for pool in &pools {
        let mut submitter = pool.submitter();
        for item in 0..50 {
            submitter.submit(item).expect("pool open");
        }
    }
    // Each pool's worker holds its first item at the gate.
    wait_until(|| in_hand.load(SeqCst) == 2);
    parent.cancel();
    gate.open();
    for pool in pools {
        assert!(pool.token().is_cancelled());
        let report = pool.join();
        assert!(report.is_balanced(), "{report}");
        assert_eq!(report.submitted(), 50);
        // The item in the worker's hands when the cancel came finished; the rest
        // was dropped.
        assert_eq!(report.processed(), 1, "{report}");
        assert_eq!(report.dropped(), 49);
        assert!(matches!(
            report.into_result(),
            Err(PoolError::Cancelled { dropped: 49 })
        ));
    }
    // Cancelling a pool does not cancel its parent.
    let own = CancelToken::new();
    let pool = Pool::builder()
        .workers(1)
        .cancel_token(own.clone())
        .build(|_ctx: &Ctx, _item: u64| Ok::<(), std::io::Error>(()))
        .expect("valid settings");
    pool.cancel();
    assert!(!own.is_cancelled());
}

#[test]
fn stop_on_error_cancels_and_counts_the_rest_as_dropped() {
    let gate = Gate::default();
    let worker_gate = gate.clone();
    let pool = Pool::builder()
        .workers(1)
        .batch_size(1)
        .capacity(1_000)
        .build(move |_ctx: &Ctx, item: u64| {
            worker_gate.wait();
            if item == 0 {
                anyhow::bail!("the first item fails");
            }
            Ok(())
        })
        .expect("valid settings");
    let mut submitter = pool.submitter();
    for item in 0..1_000 {
        submitter.submit(item).expect("pool open");
    }
    drop(submitter);
    gate.open();
    let report = pool.join();
    assert_eq!(report.failed(), 1);
    assert_eq!(report.processed(), 0);
    assert_eq!(report.dropped(), 999);
    assert!(report.is_balanced());
    match report.into_result() {
        Err(PoolError::Worker { worker, source, .. }) => {
            assert_eq!(worker.index(), 0);
            assert_eq!(source.to_string(), "the first item fails");
        }
        other => panic!("expected the first error, got {other:?}"),
    }
}
