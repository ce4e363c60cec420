//! Called items go through the built-in middleware like any item: layers see
//! the item itself (so `Retry` needs only a `Clone` item), and the handle
//! gets the outermost layer's outcome: a value after retries, the error that
//! ended the retries, a panic turned into an error by `Recovery`, a late call
//! turned into an error by `Timeout`.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use workforce::middleware::{MiddlewareError, Recovery, Retry, Timeout};
use workforce::prelude::*;

/// Fails the first `failures` attempts of each item, then answers.
fn flaky(
    failures: u32,
) -> impl Fn(&Ctx, (u32, String)) -> Result<String, std::io::Error> + Send + Sync + 'static {
    let attempts = Arc::new(Mutex::new(HashMap::<u32, u32>::new()));
    move |_ctx: &Ctx, (id, text): (u32, String)| {
        let mut attempts = attempts.lock().unwrap();
        let seen = attempts.entry(id).or_default();
        *seen += 1;
        if *seen <= failures {
            Err(std::io::Error::other(format!(
                "attempt {seen} of {id} failed"
            )))
        } else {
            Ok(text.to_uppercase())
        }
    }
}

#[test]
fn retry_answers_with_the_value_of_the_attempt_that_succeeded() {
    let pool = Pool::builder()
        .workers(2)
        .layer(Retry::new(3, Duration::from_micros(10)).unwrap())
        .build_call(flaky(2))
        .unwrap();
    let handles: Vec<_> = (0..20)
        .map(|id| pool.call((id, format!("item {id}"))).unwrap())
        .collect();
    for (id, handle) in handles.into_iter().enumerate() {
        assert_eq!(handle.wait().unwrap(), format!("ITEM {id}"));
    }
    let report = pool.wait().unwrap();
    assert_eq!((report.processed(), report.failed()), (20, 0));
}

#[test]
fn the_error_that_ends_the_retries_reaches_the_caller() {
    let pool = Pool::builder()
        .workers(1)
        .continue_on_error()
        .layer(Retry::new(2, Duration::from_micros(10)).unwrap())
        .build_call(flaky(5))
        .unwrap();
    match pool.call((1, "never".to_owned())).unwrap().wait() {
        Err(CallError::Failed(error)) => {
            let middleware = error.downcast_ref::<MiddlewareError>().unwrap();
            assert!(
                matches!(middleware, MiddlewareError::RetriesExhausted { .. }),
                "{middleware:?}"
            );
        }
        other => panic!("expected the retries' error, got {other:?}"),
    }
    let report = pool.join();
    assert_eq!(report.failed(), 1);
    assert!(report.is_balanced());
}

#[test]
fn recovery_turns_a_panic_into_the_callers_error() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let deliberate = info
            .payload()
            .downcast_ref::<&str>()
            .is_some_and(|text| text.contains("deliberate"));
        if !deliberate {
            previous(info);
        }
    }));
    let pool = Pool::builder()
        .workers(1)
        .continue_on_error()
        .layer(Recovery::new())
        .build_call(|_ctx: &Ctx, n: u32| -> Result<u32, std::io::Error> {
            if n == 0 {
                panic!("deliberate: zero");
            }
            Ok(n)
        })
        .unwrap();
    match pool.call(0).unwrap().wait() {
        Err(CallError::Failed(error)) => assert!(matches!(
            error.downcast_ref::<MiddlewareError>(),
            Some(MiddlewareError::Panicked { .. })
        )),
        other => panic!("expected Recovery's error, got {other:?}"),
    }
    assert_eq!(pool.call(4).unwrap().wait().unwrap(), 4);
    let report = pool.join();
    assert_eq!((report.processed(), report.failed()), (1, 1));
}

#[test]
fn a_late_call_times_out_and_its_value_is_dropped() {
    let pool = Pool::builder()
        .workers(1)
        .continue_on_error()
        .layer(Timeout::new(Duration::from_millis(1)).unwrap())
        .build_call(
            |ctx: &Ctx, slow: bool| -> Result<&'static str, std::io::Error> {
                if slow {
                    // Late for sure: waits until the deadline has passed.
                    while !ctx.is_past_deadline() {
                        std::thread::yield_now();
                    }
                }
                Ok("done")
            },
        )
        .unwrap();
    match pool.call(true).unwrap().wait() {
        Err(CallError::Failed(error)) => assert!(matches!(
            error.downcast_ref::<MiddlewareError>(),
            Some(MiddlewareError::TimedOut { .. })
        )),
        other => panic!("expected the timeout, got {other:?}"),
    }
    assert_eq!(pool.call(false).unwrap().wait().unwrap(), "done");
    let report = pool.join();
    assert_eq!((report.processed(), report.failed()), (1, 1));
}
