//! `Recovery` turns every panic in the worker into an ordinary item error:
//! through 1,000 panics the pool keeps its four threads and exact accounting,
//! the pool itself never sees a panic, and the handler hears each message.
#![allow(clippy::unwrap_used)] // Tests may unwrap: a panic is a test failure.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;

use common::{Kind, middleware_errors, quiet_deliberate_panics, run};
use pool_core::{Ctx, Pool, PoolError, Worker};
use pool_middleware::{MiddlewareError, Recovery};
use rstest::rstest;

const PANICS: u32 = 1_000;

#[rstest]
fn a_thousand_panics_leave_four_threads_and_exact_counts(
    #[values(Kind::Stateless, Kind::Stateful)] kind: Kind,
) {
    quiet_deliberate_panics();
    let messages = Arc::new(Mutex::new(Vec::new()));
    let handler_messages = Arc::clone(&messages);
    let threads = Arc::new(Mutex::new(HashSet::<ThreadId>::new()));
    let worker_threads = Arc::clone(&threads);
    let workers_done = Arc::new(AtomicU64::new(0));
    let done = Arc::clone(&workers_done);
    let recovery = Recovery::new().on_panic(move |message| {
        handler_messages.lock().unwrap().push(message.to_owned());
    });
    // Every odd item panics, every even one succeeds: 1,000 of each.
    let ran = run!(
        kind,
        Pool::builder()
            .workers(4)
            .batch_size(8)
            .continue_on_error()
            .error_limit(2 * PANICS as usize)
            .on_worker_done(move |_id, _counts| {
                done.fetch_add(1, SeqCst);
            }),
        recovery,
        move |_ctx: &Ctx, item: u32| {
            worker_threads
                .lock()
                .unwrap()
                .insert(std::thread::current().id());
            assert!(item.is_multiple_of(2), "deliberate panic on {item}");
            Ok::<(), std::io::Error>(())
        },
        0..2 * PANICS,
    );
    let report = &ran.report;
    assert_eq!(report.submitted(), u64::from(2 * PANICS));
    assert_eq!(
        (report.processed(), report.failed(), report.dropped()),
        (u64::from(PANICS), u64::from(PANICS), 0)
    );
    assert!(report.is_balanced());
    assert_eq!(report.error_total(), u64::from(PANICS));
    assert!(
        !report
            .errors()
            .iter()
            .any(|error| matches!(error, PoolError::Panicked { .. })),
        "Recovery caught every panic before the pool did"
    );
    let mut panicked_items: Vec<u32> = middleware_errors(report)
        .into_iter()
        .map(|error| match error {
            MiddlewareError::Panicked { message, .. } => message
                .strip_prefix("deliberate panic on ")
                .unwrap()
                .parse()
                .unwrap(),
            other => panic!("expected Panicked, got {other:?}"),
        })
        .collect();
    panicked_items.sort_unstable();
    assert_eq!(
        panicked_items,
        (0..PANICS).map(|n| 2 * n + 1).collect::<Vec<_>>()
    );

    let messages = messages.lock().unwrap();
    assert_eq!(
        messages.len(),
        PANICS as usize,
        "the handler heard every panic"
    );
    assert!(
        messages
            .iter()
            .all(|message| message.starts_with("deliberate panic on "))
    );

    // The same four threads did all the work, and each wound down normally.
    assert!(threads.lock().unwrap().len() <= 4);
    assert_eq!(workers_done.load(SeqCst), 4);
    assert_eq!(report.workers().len(), 4);
    if kind == Kind::Stateful {
        // Each worker kept its state through the panics and finished.
        assert_eq!(ran.finished.len(), 4);
        assert_eq!(ran.worker_calls(), u64::from(2 * PANICS));
    }
}

#[test]
fn errors_pass_through_and_non_string_payloads_are_named() {
    quiet_deliberate_panics();
    let pool = Pool::builder()
        .workers(1)
        .batch_size(1)
        .continue_on_error()
        .layer(Recovery::new())
        .build(|_ctx: &Ctx, item: u32| -> anyhow::Result<()> {
            match item {
                0 => anyhow::bail!("an ordinary error"),
                1 => std::panic::panic_any(42_u32),
                _ => panic!("deliberate panic with {}", "a formatted message"),
            }
        })
        .unwrap();
    let mut submitter = pool.submitter();
    for item in 0..3 {
        submitter.submit(item).unwrap();
    }
    drop(submitter);
    let report = pool.join();
    let errors = middleware_errors(&report);
    let [
        MiddlewareError::Worker(ordinary),
        MiddlewareError::Panicked {
            message: odd,
            payload: odd_payload,
        },
        MiddlewareError::Panicked {
            message: formatted, ..
        },
    ] = errors.as_slice()
    else {
        panic!("unexpected errors {errors:?}");
    };
    assert_eq!(ordinary.to_string(), "an ordinary error");
    assert_eq!(odd, "a panic with a non-string payload");
    // The message cannot say what the payload was; the payload itself can.
    assert_eq!(
        odd_payload.with(|payload| payload.downcast_ref::<u32>().copied()),
        Some(42)
    );
    assert_eq!(formatted, "deliberate panic with a formatted message");
}

/// A stateful worker whose `finish` panics.
struct PanicsInFinish;

impl Worker<u32> for PanicsInFinish {
    type Error = std::io::Error;

    fn work(&mut self, _ctx: &Ctx, _item: u32) -> std::io::Result<()> {
        Ok(())
    }

    fn finish(&mut self, _ctx: &Ctx) -> std::io::Result<()> {
        panic!("deliberate panic in finish")
    }
}

#[test]
fn a_panic_in_finish_becomes_a_finish_error() {
    quiet_deliberate_panics();
    let handled = Arc::new(AtomicU64::new(0));
    let handler_count = Arc::clone(&handled);
    let pool = Pool::builder()
        .workers(2)
        .continue_on_error()
        .layer(Recovery::new().on_panic(move |message| {
            assert_eq!(message, "deliberate panic in finish");
            handler_count.fetch_add(1, SeqCst);
        }))
        .build_stateful(|_id| PanicsInFinish)
        .unwrap();
    pool.submitter().submit(1).unwrap();
    let report = pool.join();
    assert_eq!(report.processed(), 1);
    assert_eq!(handled.load(SeqCst), 2);
    assert_eq!(report.errors().len(), 2);
    for error in report.errors() {
        let PoolError::Finish { source, .. } = error else {
            panic!("expected a finish error, got {error}");
        };
        assert!(matches!(
            source.downcast_ref::<MiddlewareError>(),
            Some(MiddlewareError::Panicked { message, .. }) if message == "deliberate panic in finish"
        ));
    }
}
