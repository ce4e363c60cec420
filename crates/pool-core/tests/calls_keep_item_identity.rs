//! Call pools keep the item-identity settings: `item_key` names a failed
//! call's item in the report, `on_dropped` gets back the items of calls a
//! cancel dropped (and their handles say `Dropped`), a call interrupted by
//! `Ctx::check` after a cancel counts as dropped and interrupted, not failed,
//! and an `anyhow` error keeps its type for the handle's caller.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use common::Gate;
use pool_core::{CallError, CallHandle, Ctx, Pool};

/// A worker's own error type.
#[derive(Debug, PartialEq)]
struct Refused {
    code: u32,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "refused with code {}", self.code)
    }
}

impl std::error::Error for Refused {}

#[test]
fn a_failed_call_names_its_item_in_the_report() {
    let pool = Pool::builder()
        .workers(1)
        .continue_on_error()
        .item_key(|n: &u64| *n)
        .build_call(|_ctx: &Ctx, n: u64| {
            if n == 7 {
                Err(Refused { code: 7 })
            } else {
                Ok(n * 2)
            }
        })
        .unwrap();
    let handles: Vec<CallHandle<u64>> = (0..10).map(|n| pool.call(n).unwrap()).collect();
    let answers: Vec<Option<u64>> = handles.into_iter().map(|h| h.wait().ok()).collect();
    assert_eq!(answers[7], None);
    assert_eq!(answers[6], Some(12));
    let report = pool.join();
    assert_eq!((report.processed(), report.failed()), (9, 1));
    let keys: Vec<Option<u64>> = report
        .errors()
        .iter()
        .map(|error| error.key().and_then(|key| key.as_u64()))
        .collect();
    assert_eq!(keys, [Some(7)]);
}

#[test]
fn a_cancel_hands_the_queued_items_back_and_their_handles_say_dropped() {
    let gate = Gate::default();
    let (started, has_started) = mpsc::channel();
    let started = Mutex::new(started);
    let worker_gate = gate.clone();
    let (back, handed_back) = mpsc::channel();
    let pool = Pool::builder()
        .workers(1)
        .on_dropped(move |n: u64| back.send(n).unwrap())
        .build_call(move |_ctx: &Ctx, n: u64| {
            if n == 0 {
                started.lock().unwrap().send(()).unwrap();
                worker_gate.wait();
            }
            Ok::<_, std::io::Error>(n)
        })
        .unwrap();
    let first = pool.call(0).unwrap();
    has_started.recv().unwrap();
    let queued: Vec<CallHandle<u64>> = (1..=5).map(|n| pool.call(n).unwrap()).collect();
    pool.cancel();
    gate.open();
    assert_eq!(first.wait().unwrap(), 0);
    for handle in queued {
        assert!(matches!(handle.wait(), Err(CallError::Dropped)));
    }
    let report = pool.join();
    let mut back: Vec<u64> = handed_back.try_iter().collect();
    back.sort_unstable();
    assert_eq!(back, [1, 2, 3, 4, 5]);
    assert_eq!(
        (report.submitted(), report.processed(), report.dropped()),
        (6, 1, 5)
    );
    assert!(report.is_balanced());
}

#[test]
fn a_call_interrupted_by_a_cancel_is_dropped_not_failed() {
    let gate = Gate::default();
    let (started, has_started) = mpsc::channel();
    let started = Mutex::new(started);
    let worker_gate = gate.clone();
    let pool = Pool::builder()
        .workers(1)
        .build_call(move |ctx: &Ctx, n: u64| -> anyhow::Result<u64> {
            started.lock().unwrap().send(()).unwrap();
            worker_gate.wait();
            ctx.check()?; // the pool was cancelled meanwhile
            Ok(n)
        })
        .unwrap();
    let handle = pool.call(1).unwrap();
    has_started.recv().unwrap();
    pool.cancel();
    gate.open();
    assert!(matches!(handle.wait(), Err(CallError::Dropped)));
    let report = pool.join();
    assert_eq!(
        (
            report.processed(),
            report.failed(),
            report.dropped(),
            report.interrupted()
        ),
        (0, 0, 1, 1)
    );
    assert!(report.errors().is_empty());
    assert!(report.is_balanced());
}

#[test]
fn an_anyhow_error_reaches_the_caller_with_its_type() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let pool = Pool::builder()
        .workers(1)
        .continue_on_error()
        .build_call(|_ctx: &Ctx, code: u32| -> anyhow::Result<u32> {
            Err(anyhow::Error::new(Refused { code }).context("while answering"))
        })
        .unwrap();
    match pool.call(3).unwrap().wait() {
        Err(CallError::Failed(error)) => {
            let refused = pool_core::find_error::<Refused>(&*error);
            seen.lock().unwrap().push(refused.map(|r| r.code));
        }
        other => panic!("expected the worker's error, got {other:?}"),
    }
    assert_eq!(*seen.lock().unwrap(), [Some(3)]);
    let report = pool.join();
    assert_eq!(report.failed(), 1);
}
