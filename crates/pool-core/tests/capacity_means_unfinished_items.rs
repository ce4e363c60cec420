//! `capacity` means what it says: "at most `capacity` items not yet finished
//! by a worker". A worker gives room back in bulk, but a producer that may
//! not wait (`try_send`, `try_submit`, `send_timeout`) first takes back the
//! room of items already finished, so it is refused as `Full` only when
//! `capacity` items really are unfinished. This pins the service case where
//! a pool of capacity 64 said `Full` to most `try_send`s with fewer than 64
//! requests outstanding.

mod common;

use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use common::wait_until;
use pool_core::{Ctx, Pool, TrySendError, TrySubmitError};

const CAPACITY: usize = 64;

/// A pool whose workers each wait for a permit before finishing an item, so
/// the test decides how many items are unfinished.
fn gated_pool(batch_size: usize) -> (Pool<u64>, mpsc::Sender<()>) {
    let (permits, gate) = mpsc::channel::<()>();
    let gate = Arc::new(Mutex::new(gate));
    let pool = Pool::builder()
        .workers(2)
        .batch_size(batch_size)
        .capacity(CAPACITY)
        .build(move |_ctx: &Ctx, _item: u64| {
            // A closed channel (the test's end) lets every item through.
            let _permit = gate.lock().expect("no panic holds it").recv();
            Ok::<(), std::convert::Infallible>(())
        })
        .expect("valid settings");
    (pool, permits)
}

#[test]
fn try_send_succeeds_whenever_fewer_than_capacity_items_are_unfinished() {
    let (pool, permits) = gated_pool(1);
    let sender = pool.sender();
    for item in 0..CAPACITY as u64 {
        sender
            .try_send(item)
            .expect("room for the first `capacity` items");
    }
    assert_eq!(sender.try_send(999), Err(TrySendError::Full(999)));
    // One item finishes at a time; each time exactly one more fits.
    for round in 1..=500u64 {
        permits.send(()).expect("the workers hold the gate");
        wait_until(|| pool.metrics().finished() == round);
        let item = CAPACITY as u64 + round;
        sender.try_send(item).unwrap_or_else(|error| {
            panic!("round {round}: {error:?} with {} unfinished", CAPACITY - 1)
        });
        assert_eq!(
            sender.try_send(0),
            Err(TrySendError::Full(0)),
            "round {round}: over capacity"
        );
    }
    drop(permits);
    let report = pool.wait().expect("clean run");
    assert_eq!(report.processed(), CAPACITY as u64 + 500);
}

/// The same for a submitter, whose batches reserve room a batch at a time:
/// with batch size 1 every item is its own reservation.
#[test]
fn try_submit_unbatched_succeeds_whenever_fewer_than_capacity_items_are_unfinished() {
    let (pool, permits) = gated_pool(1);
    let mut submitter = pool.submitter();
    for item in 0..CAPACITY as u64 {
        submitter.try_submit(item).expect("room");
    }
    assert_eq!(submitter.try_submit(999), Err(TrySubmitError::Full(999)));
    for round in 1..=200u64 {
        permits.send(()).expect("the workers hold the gate");
        wait_until(|| pool.metrics().finished() == round);
        submitter
            .try_submit(CAPACITY as u64 + round)
            .unwrap_or_else(|error| panic!("round {round}: {error:?}"));
    }
    drop(permits);
    drop(submitter);
    assert_eq!(
        pool.wait().expect("clean run").processed(),
        CAPACITY as u64 + 200
    );
}
