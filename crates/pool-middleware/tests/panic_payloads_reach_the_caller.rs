//! A panic caught by `Recovery` keeps its payload: the handler given to
//! `on_panic_payload` sees it, and it travels on in the item's
//! `MiddlewareError::Panicked` (alone, or as the source of `Retry`'s
//! `RetriesExhausted`) to the pool's report, where the caller takes it out
//! by value and downcasts it to the value given to `panic_any`.
#![allow(clippy::unwrap_used)] // Tests may unwrap: a panic is a test failure.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Kind, quiet_deliberate_panics, run, run_with};
use pool_core::{Ctx, PanicPayload, Pool, PoolError};
use pool_middleware::{ManualClock, MiddlewareError, Recovery, Retry};
use rstest::rstest;

/// What the worker panics with: not a string, so only the payload says it.
#[derive(Debug, Clone, PartialEq)]
struct Poisoned {
    row: u32,
    attempt: u32,
}

/// The deliberate panics of these tests carry no text; keep their noise out.
fn quiet() {
    quiet_deliberate_panics();
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !info.payload().is::<Poisoned>() {
                previous(info);
            }
        }));
    });
}

/// What the handler saw of one panic: its message and its `Poisoned`.
type Handled = (String, Option<Poisoned>);

/// Takes the payload out of the `MiddlewareError::Panicked` behind a pool
/// error, looking under `RetriesExhausted` too.
fn payload_of(error: PoolError) -> PanicPayload {
    let PoolError::Worker { source, .. } = error else {
        panic!("expected an item error, got {error:?}");
    };
    let Ok(middleware) = source.downcast::<MiddlewareError>() else {
        panic!("expected a middleware error");
    };
    match *middleware {
        MiddlewareError::Panicked { payload, .. } => payload,
        MiddlewareError::RetriesExhausted { source, .. } => {
            let Ok(inner) = source.downcast::<MiddlewareError>() else {
                panic!("expected a middleware error under the retry");
            };
            match *inner {
                MiddlewareError::Panicked { payload, .. } => payload,
                other => panic!("expected the caught panic, got {other:?}"),
            }
        }
        other => panic!("expected the caught panic, got {other:?}"),
    }
}

/// The report's errors, by value.
fn errors(report: pool_core::Report) -> Vec<PoolError> {
    match report.into_result() {
        Err(PoolError::Many { errors, .. }) => errors,
        Err(error) => vec![error],
        Ok(_) => Vec::new(),
    }
}

#[rstest]
fn the_handler_and_the_error_both_get_the_payload(
    #[values(Kind::Stateless, Kind::Stateful)] kind: Kind,
) {
    quiet();
    let handled: Arc<Mutex<Vec<Handled>>> = Arc::default();
    let handler_log = Arc::clone(&handled);
    let ran = run!(
        kind,
        Pool::builder().workers(1).continue_on_error(),
        Recovery::new().on_panic_payload(move |message, payload| {
            handler_log.lock().unwrap().push((
                message.to_owned(),
                payload.downcast_ref::<Poisoned>().cloned(),
            ));
        }),
        |_ctx: &Ctx, row: u32| -> std::io::Result<()> {
            if row % 2 == 1 {
                std::panic::panic_any(Poisoned { row, attempt: 1 });
            }
            Ok(())
        },
        0..4,
    );
    assert_eq!((ran.report.processed(), ran.report.failed()), (2, 2));
    let expected = |row| {
        (
            "a panic with a non-string payload".to_owned(),
            Some(Poisoned { row, attempt: 1 }),
        )
    };
    assert_eq!(*handled.lock().unwrap(), [expected(1), expected(3)]);
    let rows: Vec<Poisoned> = errors(ran.report)
        .into_iter()
        .map(|error| *payload_of(error).downcast::<Poisoned>().unwrap())
        .collect();
    assert_eq!(
        rows,
        [
            Poisoned { row: 1, attempt: 1 },
            Poisoned { row: 3, attempt: 1 }
        ]
    );
}

#[test]
fn a_retried_panic_keeps_the_last_attempts_payload() {
    quiet();
    let clock = Arc::new(ManualClock::new());
    let attempts = Arc::new(Mutex::new(0));
    let worker_attempts = Arc::clone(&attempts);
    let handled: Arc<Mutex<Vec<u32>>> = Arc::default();
    let handler_log = Arc::clone(&handled);
    let retried: Arc<Mutex<Vec<(u32, bool)>>> = Arc::default();
    let retry_log = Arc::clone(&retried);
    let ran = run_with(
        Kind::Stateless,
        Pool::builder()
            .workers(1)
            .layer(
                Retry::new(3, Duration::from_millis(1))
                    .unwrap()
                    .clock(clock)
                    .on_retry(move |attempt, error, _delay| {
                        let panicked = matches!(
                            error.downcast_ref::<MiddlewareError>(),
                            Some(MiddlewareError::Panicked { .. })
                        );
                        retry_log.lock().unwrap().push((attempt, panicked));
                    }),
            )
            .layer(Recovery::new().on_panic_payload(move |_message, payload| {
                if let Some(poisoned) = payload.downcast_ref::<Poisoned>() {
                    handler_log.lock().unwrap().push(poisoned.attempt);
                }
            })),
        move |_ctx: &Ctx, row: u32| -> std::io::Result<()> {
            let attempt = {
                let mut attempts = worker_attempts.lock().unwrap();
                *attempts += 1;
                *attempts
            };
            std::panic::panic_any(Poisoned { row, attempt })
        },
        5..6,
        |builder, work| builder.build(work),
    );
    assert_eq!(*handled.lock().unwrap(), [1, 2, 3]);
    assert_eq!(*retried.lock().unwrap(), [(1, true), (2, true)]);
    let [error] = <[PoolError; 1]>::try_from(errors(ran.report)).unwrap();
    let payload = payload_of(error);
    assert!(payload.is::<Poisoned>());
    assert_eq!(
        payload.with(|payload| payload.downcast_ref::<Poisoned>().cloned()),
        Some(Poisoned { row: 5, attempt: 3 })
    );
}

#[test]
fn the_payload_can_be_re_raised_as_it_was() {
    quiet();
    let ran = run!(
        Kind::Stateless,
        Pool::builder().workers(1),
        Recovery::new(),
        |_ctx: &Ctx, row: u32| -> std::io::Result<()> {
            std::panic::panic_any(Poisoned { row, attempt: 1 })
        },
        2..3,
    );
    let [error] = <[PoolError; 1]>::try_from(errors(ran.report)).unwrap();
    let payload = payload_of(error);
    let resumed = std::panic::catch_unwind(move || payload.resume()).unwrap_err();
    assert_eq!(
        resumed.downcast_ref::<Poisoned>(),
        Some(&Poisoned { row: 2, attempt: 1 })
    );
}
