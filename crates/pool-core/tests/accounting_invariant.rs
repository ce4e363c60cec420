//! `submitted == processed + failed + dropped` under every mix of worker count,
//! batch size, error policy, worker kind and routing (stealing or keyed), with
//! errors and panics.
#![allow(clippy::unwrap_used)] // Tests may unwrap: a panic is a test failure.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};

use common::{Routing, Tracked};
use pool_core::{Builder, Ctx, Pool, PoolError, Report};
use rstest::rstest;

const N_ITEMS: u64 = 5_000;

#[derive(Debug, Clone, Copy)]
enum Kind {
    Shared,
    Stateful,
    Batch,
}

#[derive(Debug, Clone, Copy)]
enum Policy {
    Stop,
    Continue,
}

/// Fails on multiples of 7, panics on multiples of 11 (not of 7).
fn check(value: u64) -> anyhow::Result<()> {
    if value % 7 == 3 {
        anyhow::bail!("item {value} is bad");
    }
    if value % 11 == 5 {
        panic!("deliberate panic on item {value}");
    }
    Ok(())
}

fn build(builder: Builder<Tracked>, kind: Kind) -> Pool<Tracked> {
    match kind {
        Kind::Shared => builder.build(|_ctx: &Ctx, item: Tracked| check(item.value)),
        Kind::Stateful => builder.build_stateful(|_ctx: &Ctx| {
            // Per-worker state that a shared worker could not have.
            let mut last = None;
            move |_ctx: &Ctx, item: Tracked| {
                assert!(last < Some(u64::MAX));
                last = Some(item.value);
                check(item.value)
            }
        }),
        Kind::Batch => builder.build_batch(|_ctx: &Ctx, batch: &mut Vec<Tracked>| {
            batch.iter().try_for_each(|item| check(item.value))
        }),
    }
    .expect("valid settings")
}

fn run(
    n_workers: usize,
    batch_size: usize,
    policy: Policy,
    kind: Kind,
    routing: Routing,
) -> (Report, u64, u64) {
    common::quiet_deliberate_panics();
    let drops = Arc::new(AtomicU64::new(0));
    let mut builder = Pool::builder()
        .workers(n_workers)
        .batch_size(batch_size)
        .capacity(256.max(batch_size));
    builder = common::route(builder, routing, |item: &Tracked| item.value % 97);
    builder = match policy {
        Policy::Stop => builder.stop_on_error(),
        Policy::Continue => builder.continue_on_error(),
    };
    let pool = build(builder, kind);
    let mut refused = 0;
    let mut submitter = pool.submitter();
    for value in 0..N_ITEMS {
        if let Err(error) = submitter.submit(Tracked::new(value, &drops)) {
            // The item comes back inside the error and is dropped here.
            assert_eq!(error.into_inner().value, value);
            refused += 1;
        }
    }
    drop(submitter);
    let report = pool.join();
    (report, refused, drops.load(SeqCst))
}

#[rstest]
fn every_item_is_accounted_for(
    #[values(1, 2, 4, 8)] n_workers: usize,
    #[values(1, 3, 64)] batch_size: usize,
    #[values(Policy::Stop, Policy::Continue)] policy: Policy,
    #[values(Kind::Shared, Kind::Stateful, Kind::Batch)] kind: Kind,
    #[values(Routing::Stealing, Routing::Keyed)] routing: Routing,
) {
    let (report, refused, drops) = run(n_workers, batch_size, policy, kind, routing);
    assert!(report.is_balanced(), "{report}");
    assert_eq!(report.submitted() + refused, N_ITEMS, "{report}");
    // Every item value, accepted or refused, was dropped exactly once.
    assert_eq!(drops, N_ITEMS);
    let per_worker: u64 = report
        .workers()
        .iter()
        .map(|worker| worker.counts.processed + worker.counts.failed + worker.counts.dropped)
        .sum();
    let dropped_by_workers: u64 = report.workers().iter().map(|w| w.counts.dropped).sum();
    let dropped_by_producers = report.dropped() - dropped_by_workers;
    assert_eq!(per_worker + dropped_by_producers, report.submitted());
    match policy {
        Policy::Continue => {
            assert_eq!(refused, 0);
            assert_eq!(report.dropped(), 0);
            assert!(!report.was_cancelled());
            if let Kind::Batch = kind {
                assert!(report.failed() >= report.error_total());
            } else {
                let bad = (0..N_ITEMS).filter(|v| check_is_bad(*v)).count() as u64;
                assert_eq!(report.failed(), bad);
                assert_eq!(report.processed(), N_ITEMS - bad);
                assert_eq!(report.error_total(), bad);
            }
        }
        Policy::Stop => {
            assert!(report.was_cancelled());
            assert!(report.error_total() >= 1);
            assert!(report.failed() >= 1);
        }
    }
}

fn check_is_bad(value: u64) -> bool {
    value % 7 == 3 || value % 11 == 5
}

#[test]
fn continue_on_error_returns_every_error() {
    common::quiet_deliberate_panics();
    let pool = Pool::builder()
        .workers(3)
        .continue_on_error()
        .error_limit(N_ITEMS as usize)
        .build(|_ctx: &Ctx, value: u64| check(value))
        .expect("valid settings");
    let mut submitter = pool.submitter();
    for value in 0..N_ITEMS {
        submitter.submit(value).expect("pool open");
    }
    drop(submitter);
    let bad = (0..N_ITEMS).filter(|v| check_is_bad(*v)).count();
    match pool.wait() {
        Err(PoolError::Many { errors, total }) => {
            assert_eq!(total, bad as u64);
            assert_eq!(errors.len(), bad);
            let panics = errors
                .iter()
                .filter(|e| matches!(e, PoolError::Panicked { .. }))
                .count();
            assert_eq!(
                panics,
                (0..N_ITEMS).filter(|v| v % 11 == 5 && v % 7 != 3).count()
            );
        }
        other => panic!("expected every error, got {other:?}"),
    }
}

#[test]
fn error_limit_keeps_the_first_errors_and_counts_all() {
    let pool = Pool::builder()
        .workers(2)
        .continue_on_error()
        .error_limit(10)
        .build(|_ctx: &Ctx, value: u64| -> Result<(), std::io::Error> {
            Err(std::io::Error::other(format!("item {value}")))
        })
        .expect("valid settings");
    let mut submitter = pool.submitter();
    for value in 0..100 {
        submitter.submit(value).expect("pool open");
    }
    drop(submitter);
    let report = pool.join();
    assert_eq!(report.errors().len(), 10);
    assert_eq!(report.error_total(), 100);
    assert_eq!(report.failed(), 100);
    let error = report.into_result().expect_err("errors happened");
    assert!(
        error.to_string().starts_with("100 errors (first 10 kept)"),
        "{error}"
    );
}
