//! The first layer added is the outermost: `.layer(a).layer(b)` runs `a`, then
//! `b`, then the worker, and unwinds in reverse. The order of built-ins
//! changes what they do, as the crate docs say.
#![allow(clippy::unwrap_used)] // Tests may unwrap: a panic is a test failure.

mod common;

use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Kind, middleware_errors, quiet_deliberate_panics, run};
use pool_core::{BoxError, Ctx, LayerFn, Next, Pool, layer_fn};
use pool_middleware::{ManualClock, MiddlewareError, Recovery, Retry, Validator};
use rstest::rstest;

type Log = Arc<Mutex<Vec<String>>>;

/// A layer that logs `name` before and after the rest of the stack.
#[allow(clippy::type_complexity)] // The closure's signature, spelled out once.
fn recording(
    name: &'static str,
    log: &Log,
) -> LayerFn<impl Fn(Next<'_, u32>, &Ctx, u32) -> Result<(), BoxError> + use<>, u32> {
    let log = Arc::clone(log);
    layer_fn(move |mut next: Next<'_, u32>, ctx: &Ctx, item: u32| {
        log.lock().unwrap().push(format!("{name} before {item}"));
        let outcome = next.work(ctx, item);
        log.lock().unwrap().push(format!("{name} after {item}"));
        outcome
    })
}

#[rstest]
fn the_first_layer_added_runs_first(#[values(Kind::Stateless, Kind::Stateful)] kind: Kind) {
    let log: Log = Arc::default();
    let worker_log = Arc::clone(&log);
    let ran = run!(
        kind,
        Pool::builder().workers(1).layer(recording("a", &log)),
        recording("b", &log),
        move |_ctx: &Ctx, item: u32| {
            worker_log.lock().unwrap().push(format!("worker {item}"));
            Ok::<(), std::io::Error>(())
        },
        7..8,
    );
    assert_eq!(ran.report.processed(), 1);
    assert_eq!(
        *log.lock().unwrap(),
        [
            "a before 7",
            "b before 7",
            "worker 7",
            "b after 7",
            "a after 7"
        ]
    );
}

#[test]
fn the_builder_nests_layers_in_the_order_they_were_added() {
    let log: Log = Arc::default();
    let worker_log = Arc::clone(&log);
    let pool = Pool::builder()
        .workers(1)
        .layer(recording("a", &log))
        .layer(recording("b", &log))
        .layer(recording("c", &log))
        .build(move |_ctx: &Ctx, item: u32| {
            worker_log.lock().unwrap().push(format!("worker {item}"));
            Ok::<(), std::io::Error>(())
        })
        .unwrap();
    pool.submitter().submit(1).unwrap();
    assert_eq!(pool.wait().unwrap().processed(), 1);
    assert_eq!(
        *log.lock().unwrap(),
        [
            "a before 1",
            "b before 1",
            "c before 1",
            "worker 1",
            "c after 1",
            "b after 1",
            "a after 1"
        ]
    );
}

fn exact_retry(max_attempts: u32, clock: &Arc<ManualClock>) -> Retry {
    Retry::new(max_attempts, Duration::from_millis(1))
        .unwrap()
        .jitter(0.0)
        .unwrap()
        .clock(clock.clone())
}

#[test]
fn a_validator_outside_a_retry_rejects_once_and_nothing_is_retried() {
    let clock = Arc::new(ManualClock::new());
    let calls = Arc::new(AtomicU32::new(0));
    let worker_calls = Arc::clone(&calls);
    let pool = Pool::builder()
        .workers(1)
        .continue_on_error()
        .layer(Validator::predicate("zero", |item: &u32| *item != 0))
        .layer(exact_retry(5, &clock))
        .build(move |_ctx: &Ctx, _item: u32| {
            worker_calls.fetch_add(1, SeqCst);
            Ok::<(), std::io::Error>(())
        })
        .unwrap();
    pool.submitter().submit(0).unwrap();
    let report = pool.join();
    let errors = middleware_errors(&report);
    assert!(
        matches!(errors.as_slice(), [MiddlewareError::Invalid { .. }]),
        "{errors:?}"
    );
    assert_eq!(calls.load(SeqCst), 0);
    assert!(clock.sleeps().is_empty());
}

#[test]
fn a_retry_outside_a_validator_retries_the_rejection() {
    // The other way round the rejection is just an error to the retry: with
    // no predicate it is retried, which is why the validator belongs outside.
    let clock = Arc::new(ManualClock::new());
    let pool = Pool::builder()
        .workers(1)
        .continue_on_error()
        .layer(exact_retry(3, &clock))
        .layer(Validator::predicate("zero", |item: &u32| *item != 0))
        .build(|_ctx: &Ctx, _item: u32| Ok::<(), std::io::Error>(()))
        .unwrap();
    pool.submitter().submit(0).unwrap();
    let report = pool.join();
    let errors = middleware_errors(&report);
    let [
        MiddlewareError::RetriesExhausted {
            attempts: 3,
            source,
        },
    ] = errors.as_slice()
    else {
        panic!("expected RetriesExhausted, got {errors:?}");
    };
    assert!(matches!(
        source.downcast_ref::<MiddlewareError>(),
        Some(MiddlewareError::Invalid { reason }) if reason == "zero"
    ));
    assert_eq!(clock.sleeps().len(), 2);
}

#[test]
fn a_retry_outside_recovery_retries_panics() {
    quiet_deliberate_panics();
    let clock = Arc::new(ManualClock::new());
    let calls = Arc::new(AtomicU32::new(0));
    let worker_calls = Arc::clone(&calls);
    let pool = Pool::builder()
        .workers(1)
        .layer(exact_retry(4, &clock))
        .layer(Recovery::new())
        .build(move |_ctx: &Ctx, _item: u32| {
            let attempt = worker_calls.fetch_add(1, SeqCst) + 1;
            assert!(attempt > 2, "deliberate panic on attempt {attempt}");
            Ok::<(), std::io::Error>(())
        })
        .unwrap();
    pool.submitter().submit(0).unwrap();
    assert_eq!(pool.wait().unwrap().processed(), 1);
    assert_eq!(calls.load(SeqCst), 3);
    assert_eq!(
        clock.sleeps(),
        [Duration::from_millis(1), Duration::from_millis(2)]
    );
}
