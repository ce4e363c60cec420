//! `Validator` rejects items before the worker: a rejected item never reaches
//! the worker, fails with `Invalid` and its reason, and is counted as failed.
#![allow(clippy::unwrap_used)] // Tests may unwrap: a panic is a test failure.

mod common;

use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex};

use common::{Kind, middleware_errors, run};
use pool_core::{Ctx, Pool};
use pool_middleware::{Check, MiddlewareError, Validator};
use rstest::rstest;

/// The items a worker saw.
type Seen = Arc<Mutex<Vec<u32>>>;

/// The items the worker saw, and a worker that records them.
fn recording_worker() -> (
    Seen,
    impl Fn(&Ctx, u32) -> Result<(), std::io::Error> + Clone + Send + Sync + 'static,
) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let worker_seen = Arc::clone(&seen);
    let work = move |_ctx: &Ctx, item: u32| {
        worker_seen.lock().unwrap().push(item);
        Ok(())
    };
    (seen, work)
}

fn sorted_reasons(errors: Vec<&MiddlewareError>) -> Vec<String> {
    let mut reasons: Vec<String> = errors
        .into_iter()
        .map(|error| match error {
            MiddlewareError::Invalid { reason } => reason.clone(),
            other => panic!("expected Invalid, got {other:?}"),
        })
        .collect();
    reasons.sort();
    reasons
}

#[rstest]
fn rejected_items_never_reach_the_worker(#[values(Kind::Stateless, Kind::Stateful)] kind: Kind) {
    let (seen, work) = recording_worker();
    let validator = Validator::new(|item: &u32| {
        if item.is_multiple_of(3) {
            Err(format!("{item:03} is a multiple of 3"))
        } else {
            Ok(())
        }
    });
    let ran = run!(
        kind,
        Pool::builder().workers(3).batch_size(4).continue_on_error(),
        validator,
        work,
        0..100,
    );
    let report = &ran.report;
    assert_eq!((report.processed(), report.failed()), (66, 34));
    assert!(report.is_balanced());
    let mut seen = seen.lock().unwrap().clone();
    seen.sort_unstable();
    assert_eq!(
        seen,
        (0..100).filter(|item| item % 3 != 0).collect::<Vec<_>>()
    );
    let expected: Vec<String> = (0..100)
        .filter(|item| item % 3 == 0)
        .map(|item| format!("{item:03} is a multiple of 3"))
        .collect();
    assert_eq!(sorted_reasons(middleware_errors(report)), expected);
    if kind == Kind::Stateful {
        assert_eq!(ran.finished.len(), 3);
        assert_eq!(ran.worker_calls(), 66);
    }
}

#[rstest]
fn a_predicate_rejects_with_its_reason(#[values(Kind::Stateless, Kind::Stateful)] kind: Kind) {
    let (seen, work) = recording_worker();
    let ran = run!(
        kind,
        Pool::builder().workers(2).continue_on_error(),
        Validator::predicate("odd", |item: &u32| item.is_multiple_of(2)),
        work,
        0..10,
    );
    assert_eq!((ran.report.processed(), ran.report.failed()), (5, 5));
    assert_eq!(seen.lock().unwrap().len(), 5);
    assert_eq!(sorted_reasons(middleware_errors(&ran.report)), ["odd"; 5]);
    let message = middleware_errors(&ran.report)[0].to_string();
    assert_eq!(message, "invalid item: odd");
}

/// A reusable check: items must fall in a range.
struct InRange {
    low: u32,
    high: u32,
    checked: Arc<AtomicU64>,
}

impl Check<u32> for InRange {
    fn check(&self, item: &u32) -> Result<(), String> {
        self.checked.fetch_add(1, SeqCst);
        if (self.low..self.high).contains(item) {
            Ok(())
        } else {
            Err(format!("{item} is outside {}..{}", self.low, self.high))
        }
    }
}

#[test]
fn a_check_type_checks_every_item_once() {
    let (seen, work) = recording_worker();
    let checked = Arc::new(AtomicU64::new(0));
    let validator = Validator::from_check(InRange {
        low: 10,
        high: 20,
        checked: Arc::clone(&checked),
    });
    let pool = Pool::builder()
        .workers(4)
        .batch_size(2)
        .continue_on_error()
        .layer(validator)
        .build(work)
        .unwrap();
    common::submit(&pool, 0..30);
    let report = pool.join();
    assert_eq!((report.processed(), report.failed()), (10, 20));
    assert_eq!(checked.load(SeqCst), 30);
    let mut seen = seen.lock().unwrap().clone();
    seen.sort_unstable();
    assert_eq!(seen, (10..20).collect::<Vec<_>>());
    let reasons = sorted_reasons(middleware_errors(&report));
    assert_eq!(reasons.len(), 20);
    assert!(
        reasons.contains(&"25 is outside 10..20".to_owned()),
        "{reasons:?}"
    );
}
