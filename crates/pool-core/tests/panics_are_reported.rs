//! Panics in a worker, a maker, a `finish` hook or a callback are caught,
//! reported with the worker id and message, and never hang the pool.
#![allow(clippy::unwrap_used)] // Tests may unwrap: a panic is a test failure.

mod common;

use std::panic::{AssertUnwindSafe, catch_unwind};

use pool_core::{Ctx, PanicSite, Pool, PoolError, Worker};

fn submit_all(pool: &Pool<u64>, n_items: u64) -> u64 {
    let mut submitter = pool.submitter();
    let mut refused = 0;
    for item in 0..n_items {
        if submitter.submit(item).is_err() {
            refused += 1;
        }
    }
    refused
}

#[test]
fn a_worker_panic_is_reported_and_the_pool_goes_on() {
    common::quiet_deliberate_panics();
    let pool = Pool::builder()
        .workers(2)
        .continue_on_error()
        .build(|_ctx: &Ctx, item: u64| {
            if item == 10 {
                panic!("deliberate panic on {item}");
            }
            Ok::<(), std::io::Error>(())
        })
        .expect("valid settings");
    submit_all(&pool, 100);
    let report = pool.join();
    assert_eq!((report.processed(), report.failed()), (99, 1));
    match report.errors() {
        [
            PoolError::Panicked {
                worker,
                site: PanicSite::Work,
                message,
                payload,
                ..
            },
        ] => {
            assert!(worker.is_some_and(|worker| worker.index() < 2));
            assert_eq!(message, "deliberate panic on 10");
            // The payload itself, as `panic!` with arguments made it.
            assert_eq!(
                payload.with(|payload| payload.downcast_ref::<String>().cloned()),
                Some("deliberate panic on 10".to_owned())
            );
        }
        other => panic!("expected one panic, got {other:?}"),
    }
}

#[test]
fn a_maker_panic_cancels_the_pool_and_counts_every_item() {
    common::quiet_deliberate_panics();
    let pool = Pool::builder()
        .workers(2)
        .continue_on_error()
        .build_stateful(|ctx: &Ctx| {
            if ctx.worker_id().index() == 1 {
                panic!("deliberate maker panic");
            }
            |_ctx: &Ctx, _item: u64| Ok::<(), std::io::Error>(())
        })
        .expect("valid settings");
    let refused = submit_all(&pool, 1_000);
    let report = pool.join();
    assert!(report.was_cancelled());
    assert!(report.is_balanced(), "{report}");
    assert_eq!(report.submitted() + refused, 1_000);
    assert!(report.errors().iter().any(|error| matches!(
        error,
        PoolError::Panicked { site: PanicSite::Maker, worker, .. } if worker.is_some_and(|worker| worker.index() == 1)
    )));
}

struct PanicsInFinish;

impl Worker<u64> for PanicsInFinish {
    type Error = std::io::Error;
    fn work(&mut self, _ctx: &Ctx, _item: u64) -> Result<(), std::io::Error> {
        Ok(())
    }
    fn finish(&mut self, ctx: &Ctx) -> Result<(), std::io::Error> {
        if ctx.worker_id().index() == 0 {
            panic!("deliberate finish panic");
        }
        Err(std::io::Error::other("flush failed"))
    }
}

#[test]
fn finish_hook_and_callback_panics_are_reported() {
    common::quiet_deliberate_panics();
    let pool = Pool::builder()
        .workers(2)
        .continue_on_error()
        .on_worker_done(|id, _counts| {
            if id.index() == 1 {
                panic!("deliberate callback panic");
            }
        })
        .on_pool_done(|_report| panic!("deliberate pool callback panic"))
        .build_stateful(|_id| PanicsInFinish)
        .expect("valid settings");
    submit_all(&pool, 100);
    let report = pool.join();
    assert_eq!(report.processed(), 100);
    let sites: Vec<String> = report
        .errors()
        .iter()
        .map(|error| match error {
            PoolError::Panicked { site, .. } => site.to_string(),
            PoolError::Finish { source, .. } => format!("finish error: {source}"),
            other => format!("unexpected {other}"),
        })
        .collect();
    let mut sorted = sites.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        [
            "callback",
            "callback",
            "finish",
            "finish error: flush failed"
        ],
        "{sites:?}"
    );
    assert_eq!(report.error_total(), 4);
}

#[test]
fn resume_panics_re_raises_the_original_payload_after_shutdown() {
    common::quiet_deliberate_panics();
    let pool = Pool::builder()
        .workers(2)
        .resume_panics(true)
        .build(|_ctx: &Ctx, item: u64| {
            if item == 3 {
                std::panic::panic_any(format!("deliberate payload {item}"));
            }
            Ok::<(), std::io::Error>(())
        })
        .expect("valid settings");
    submit_all(&pool, 10);
    let payload = catch_unwind(AssertUnwindSafe(|| pool.wait())).expect_err("the panic is resumed");
    assert_eq!(
        payload.downcast_ref::<String>().map(String::as_str),
        Some("deliberate payload 3")
    );
}
