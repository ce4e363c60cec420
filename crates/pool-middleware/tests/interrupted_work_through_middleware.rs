//! A worker stopped by the pool's cancel (`ctx.check()?`, pool-core's
//! `Interrupted`) counts as interrupted, not failed, when the error comes
//! back through middleware: each built-in that wraps errors, the stack
//! `Retry(Timeout(Recovery(worker)))`, and a closure layer that adds anyhow
//! context. The pool finds the `Interrupted` by walking the error's source
//! chain; `MiddlewareError::Worker` forwards `source` past the error it
//! wraps (`#[error(transparent)]`), and the `Interrupted`'s own source is
//! what the walk finds there.

#![allow(clippy::unwrap_used)] // Tests may unwrap: a panic is a test failure.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use pool_core::{BoxError, Ctx, Interrupted, Next, Pool, Report, layer_fn};
use pool_middleware::{MiddlewareError, Recovery, Retry, Timeout};

const ITEMS: u64 = 30;
/// The item during which the pool is cancelled.
const CANCEL_AT: u64 = 10;

/// The worker: item `CANCEL_AT` cancels the pool (as a shutdown would,
/// from anywhere), and every item checks before it finishes.
fn work(ctx: &Ctx, id: u64) -> anyhow::Result<()> {
    if id == CANCEL_AT {
        ctx.token().cancel();
    }
    ctx.check()?;
    Ok(())
}

/// Runs `ITEMS` items through `pool` and returns the report and the ids
/// handed to `on_dropped` (already set on the builder through `handed`).
fn run(pool: Pool<u64>, handed: &Mutex<Vec<u64>>) -> (Report, Vec<u64>) {
    pool.submitter().submit_iter(0..ITEMS).unwrap();
    let report = pool.join();
    let mut handed = handed.lock().unwrap().clone();
    handed.sort_unstable();
    (report, handed)
}

/// A one-worker builder whose dropped items go to the returned list.
fn builder() -> (pool_core::Builder<u64>, Arc<Mutex<Vec<u64>>>) {
    let handed = Arc::new(Mutex::new(Vec::new()));
    let callback = Arc::clone(&handed);
    let builder = Pool::builder()
        .workers(1)
        .batch_size(8)
        .on_dropped(move |id: u64| callback.lock().unwrap().push(id));
    (builder, handed)
}

fn assert_interrupted_not_failed((report, handed): (Report, Vec<u64>)) {
    assert_eq!(
        (
            report.processed(),
            report.failed(),
            report.interrupted(),
            report.dropped()
        ),
        (CANCEL_AT, 0, 1, ITEMS - CANCEL_AT),
        "{report}: {:?}",
        report.errors()
    );
    assert_eq!(report.error_total(), 0);
    assert!(report.is_balanced());
    assert_eq!(handed, (CANCEL_AT + 1..ITEMS).collect::<Vec<_>>());
}

fn retry() -> Retry {
    // The cancel ends the backoff at once: `RetryCancelled`, whose source
    // holds the `Interrupted`.
    Retry::new(3, Duration::from_secs(3600)).unwrap()
}

fn timeout() -> Timeout {
    Timeout::new(Duration::from_secs(3600)).unwrap()
}

#[test]
fn through_recovery() {
    let (builder, handed) = builder();
    let pool = builder.layer(Recovery::new()).build(work).unwrap();
    assert_interrupted_not_failed(run(pool, &handed));
}

#[test]
fn through_retry() {
    let (builder, handed) = builder();
    let pool = builder.layer(retry()).build(work).unwrap();
    assert_interrupted_not_failed(run(pool, &handed));
}

#[test]
fn through_timeout() {
    let (builder, handed) = builder();
    let pool = builder.layer(timeout()).build(work).unwrap();
    assert_interrupted_not_failed(run(pool, &handed));
}

#[test]
fn through_retry_timeout_and_recovery() {
    let (builder, handed) = builder();
    let pool = builder
        .layer(retry())
        .layer(timeout())
        .layer(Recovery::new())
        .build(work)
        .unwrap();
    assert_interrupted_not_failed(run(pool, &handed));
}

#[test]
fn through_a_closure_layer_that_adds_context() {
    let (builder, handed) = builder();
    let pool = builder
        .layer(retry())
        .layer(layer_fn(|mut next: Next<'_, u64>, ctx: &Ctx, id: u64| {
            next.work(ctx, id).map_err(|error| {
                anyhow::Error::from_boxed(error)
                    .context(format!("job {id}"))
                    .into()
            })
        }))
        .layer(Recovery::new())
        .build(work)
        .unwrap();
    assert_interrupted_not_failed(run(pool, &handed));
}

#[test]
fn the_wrapped_error_still_holds_the_interrupted() {
    // What the pool sees, step by step, from the outermost layer in.
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&seen);
    let (builder, handed) = builder();
    let pool = builder
        .layer(layer_fn(
            move |mut next: Next<'_, u64>, ctx: &Ctx, id: u64| {
                let outcome = next.work(ctx, id);
                if let Err(error) = &outcome {
                    let error: &(dyn std::error::Error + 'static) = &**error;
                    let middleware =
                        error
                            .downcast_ref::<MiddlewareError>()
                            .map(|error| match error {
                                MiddlewareError::RetryCancelled { .. } => "RetryCancelled",
                                MiddlewareError::Worker(_) => "Worker",
                                _ => "other",
                            });
                    record
                        .lock()
                        .unwrap()
                        .push((middleware, Interrupted::is_in(error)));
                }
                outcome
            },
        ))
        .layer(retry())
        .layer(Recovery::new())
        .build(work)
        .unwrap();
    assert_interrupted_not_failed(run(pool, &handed));
    assert_eq!(*seen.lock().unwrap(), [(Some("RetryCancelled"), true)]);
}

#[test]
fn a_real_failure_through_the_stack_is_still_a_failure() {
    let (builder, handed) = builder();
    let pool = builder
        .continue_on_error()
        .layer(Retry::new(2, Duration::from_millis(1)).unwrap())
        .layer(Recovery::new())
        .build(|_ctx: &Ctx, id: u64| -> Result<(), BoxError> {
            if id == 4 {
                return Err("the disk is full".into());
            }
            Ok(())
        })
        .unwrap();
    let (report, handed) = run(pool, &handed);
    assert_eq!(
        (report.processed(), report.failed(), report.interrupted()),
        (ITEMS - 1, 1, 0)
    );
    assert_eq!(report.error_total(), 1);
    assert!(handed.is_empty());
}
