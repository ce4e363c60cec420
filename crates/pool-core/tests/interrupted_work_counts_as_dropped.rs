//! `Ctx::check` and `Interrupted`: work that stops because the pool was
//! cancelled counts as interrupted, a part of dropped, not as failed; its
//! error is not recorded and the report still balances. Whatever the
//! worker's error type wraps it in (boxed as it is, `anyhow`, `io::Error`, a
//! `thiserror` enum with `#[from]` or `#[error(transparent)]`), for lone
//! items and batches, item and batch workers. An `Interrupted` that comes
//! back while the pool is *not* cancelled, or any other error after a
//! cancel, is a failure as before. Middleware stacks are tested in
//! pool-middleware's `interrupted_work_through_middleware.rs`.

#![allow(clippy::unwrap_used)] // Tests may unwrap: a panic is a test failure.

mod common;

use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use common::{Gate, wait_until};
use pool_core::{BoxError, Ctx, Interrupted, Pool, PoolError, Report};
use rstest::rstest;

/// A worker's own error enum, as `thiserror` users write them.
#[derive(Debug, thiserror::Error)]
enum JobError {
    #[error("stopped: {0}")]
    Stopped(#[from] Interrupted),
    #[error("bad input")]
    #[allow(dead_code)]
    BadInput,
}

/// The same, forwarding everything to the wrapped error.
#[derive(Debug, thiserror::Error)]
enum Transparent {
    #[error(transparent)]
    Stopped(#[from] Interrupted),
}

/// How the worker's error type carries the `Interrupted` of `ctx.check()`.
#[derive(Debug, Clone, Copy)]
enum Wrap {
    Boxed,
    Anyhow,
    AnyhowContext,
    Io,
    ThisError,
    ThisErrorTransparent,
}

fn with_anyhow(ctx: &Ctx) -> anyhow::Result<()> {
    Ok(ctx.check()?)
}

fn with_anyhow_context(ctx: &Ctx) -> anyhow::Result<()> {
    use anyhow::Context as _;
    ctx.check().context("while copying block 3")
}

fn with_this_error(ctx: &Ctx) -> Result<(), JobError> {
    Ok(ctx.check()?)
}

fn with_transparent(ctx: &Ctx) -> Result<(), Transparent> {
    Ok(ctx.check()?)
}

/// `ctx.check()` as a worker with error type `wrap` would write it.
fn check(ctx: &Ctx, wrap: Wrap) -> Result<(), BoxError> {
    match wrap {
        Wrap::Boxed => ctx.check()?,
        Wrap::Anyhow => with_anyhow(ctx)?,
        Wrap::AnyhowContext => with_anyhow_context(ctx)?,
        Wrap::Io => ctx.check().map_err(std::io::Error::other)?,
        Wrap::ThisError => with_this_error(ctx)?,
        Wrap::ThisErrorTransparent => with_transparent(ctx)?,
    }
    Ok(())
}

/// Sends items `0..n` in batches of `batch_size` (1: through a `Sender`).
fn submit(pool: &Pool<u64>, n: u64, batch_size: usize) {
    if batch_size == 1 {
        let sender = pool.sender();
        for id in 0..n {
            sender.send(id).unwrap();
        }
    } else {
        pool.submitter().submit_iter(0..n).unwrap();
    }
}

fn assert_interrupted(report: &Report, processed: u64, interrupted: u64, dropped: u64) {
    assert_eq!(
        (
            report.processed(),
            report.failed(),
            report.interrupted(),
            report.dropped()
        ),
        (processed, 0, interrupted, dropped),
        "{report}"
    );
    assert_eq!(report.error_total(), 0, "{:?}", report.errors());
    assert!(report.is_balanced(), "{report}");
    assert!(report.was_cancelled());
}

#[rstest]
fn a_worker_stopped_by_the_cancel_counts_as_interrupted_whatever_wraps_the_error(
    #[values(
        Wrap::Boxed,
        Wrap::Anyhow,
        Wrap::AnyhowContext,
        Wrap::Io,
        Wrap::ThisError,
        Wrap::ThisErrorTransparent
    )]
    wrap: Wrap,
    #[values(1, 64)] batch_size: usize,
) {
    let handed = Arc::new(Mutex::new(Vec::new()));
    let callback_handed = Arc::clone(&handed);
    let pool = Pool::builder()
        .workers(1)
        .batch_size(batch_size)
        .on_dropped(move |id: u64| callback_handed.lock().unwrap().push(id))
        .build(move |ctx: &Ctx, id: u64| {
            if id == 10 {
                ctx.token().cancel(); // a shutdown, reaching the work mid-item
            }
            check(ctx, wrap)
        })
        .unwrap();
    submit(&pool, 30, batch_size);
    let report = pool.join();
    // 0..10 ran, 10 was interrupted, 11..30 never started.
    assert_interrupted(&report, 10, 1, 20);
    assert_eq!(*handed.lock().unwrap(), (11..30).collect::<Vec<_>>());
    assert_eq!(report.workers()[0].counts.dropped, 20);
    assert!(
        report.to_string().contains("dropped 20 (1 interrupted)"),
        "{report}"
    );
}

#[test]
fn wait_reports_an_interrupted_run_as_cancelled_not_as_a_failure() {
    let pool = Pool::builder()
        .workers(1)
        .build(|ctx: &Ctx, id: u64| -> anyhow::Result<()> {
            if id == 3 {
                ctx.token().cancel();
            }
            ctx.check()?;
            Ok(())
        })
        .unwrap();
    submit(&pool, 10, 64);
    match pool.wait() {
        Err(PoolError::Cancelled { dropped }) => assert_eq!(dropped, 7),
        other => panic!("expected Cancelled, got {other:?}"),
    }
}

#[rstest]
fn every_worker_interrupted_at_once_leaves_the_queue_to_on_dropped(
    #[values(1, 16)] batch_size: usize,
) {
    let workers = 3;
    let gate = Gate::default();
    let worker_gate = gate.clone();
    let started = Arc::new(AtomicU64::new(0));
    let worker_started = Arc::clone(&started);
    let handed = Arc::new(AtomicU64::new(0));
    let callback_handed = Arc::clone(&handed);
    let pool = Pool::builder()
        .workers(workers)
        .batch_size(batch_size)
        .capacity(1024)
        .on_dropped(move |_id: u64| {
            callback_handed.fetch_add(1, SeqCst);
        })
        .build(move |ctx: &Ctx, _id: u64| -> anyhow::Result<()> {
            worker_started.fetch_add(1, SeqCst);
            worker_gate.wait();
            ctx.check()?;
            Ok(())
        })
        .unwrap();
    submit(&pool, 500, batch_size);
    wait_until(|| started.load(SeqCst) >= 1);
    pool.cancel();
    gate.open();
    let report = pool.join();
    let interrupted = started.load(SeqCst);
    assert!((1..=workers as u64).contains(&interrupted));
    assert_interrupted(&report, 0, interrupted, 500);
    assert_eq!(handed.load(SeqCst), report.dropped() - report.interrupted());
}

#[test]
fn a_batch_worker_interrupted_part_way_hands_back_what_it_left() {
    let handed = Arc::new(Mutex::new(Vec::new()));
    let callback_handed = Arc::clone(&handed);
    let pool = Pool::builder()
        .workers(1)
        .batch_size(10)
        .on_dropped(move |id: u64| callback_handed.lock().unwrap().push(id))
        .build_batch(|ctx: &Ctx, batch: &mut Vec<u64>| -> anyhow::Result<()> {
            // Works from the front; the shutdown comes at item 13.
            while !batch.is_empty() {
                let id = batch.remove(0);
                if id == 13 {
                    ctx.token().cancel();
                }
                ctx.check()?;
            }
            Ok(())
        })
        .unwrap();
    submit(&pool, 30, 10);
    let report = pool.join();
    // Batch 0..10 ran; of 10..20, four were taken (10 to 13), six left;
    // batch 20..30 never started.
    assert_interrupted(&report, 10, 4, 20);
    let mut handed = handed.lock().unwrap().clone();
    handed.sort_unstable();
    assert_eq!(handed, (14..30).collect::<Vec<_>>());
}

#[test]
fn an_interrupted_from_elsewhere_is_a_failure_while_the_pool_runs() {
    // An `Interrupted` made by another, cancelled pool...
    let (out, stale) = mpsc::channel();
    let other = Pool::builder()
        .workers(1)
        .build(move |ctx: &Ctx, _id: u64| {
            ctx.token().cancel();
            out.send(ctx.check().unwrap_err()).unwrap();
            Ok::<(), std::io::Error>(())
        })
        .unwrap();
    other.sender().send(0).unwrap();
    let _ = other.join();
    let stale = stale.recv().unwrap();
    // ...returned by a pool that is not cancelled: a failure like any other.
    let pool = Pool::builder()
        .workers(1)
        .continue_on_error()
        .build(move |_ctx: &Ctx, id: u64| if id == 2 { Err(stale) } else { Ok(()) })
        .unwrap();
    submit(&pool, 5, 1);
    let report = pool.join();
    assert_eq!(
        (report.processed(), report.failed(), report.interrupted()),
        (4, 1, 0)
    );
    assert_eq!(report.error_total(), 1);
    assert!(!report.was_cancelled());
}

#[test]
fn another_error_after_the_cancel_is_still_a_failure() {
    let pool = Pool::builder()
        .workers(1)
        .build(|ctx: &Ctx, id: u64| -> anyhow::Result<()> {
            if id == 1 {
                ctx.token().cancel();
                anyhow::bail!("the disk is full");
            }
            Ok(())
        })
        .unwrap();
    submit(&pool, 5, 64);
    let report = pool.join();
    assert_eq!(
        (
            report.processed(),
            report.failed(),
            report.interrupted(),
            report.dropped()
        ),
        (1, 1, 0, 3)
    );
    assert_eq!(report.error_total(), 1);
    assert!(report.is_balanced());
}

#[test]
fn check_passes_before_a_cancel_and_ignores_a_passed_deadline() {
    let results = Arc::new(Mutex::new(Vec::new()));
    let worker_results = Arc::clone(&results);
    let pool = Pool::builder()
        .workers(1)
        .build(move |ctx: &Ctx, _id: u64| {
            let before = ctx.check().is_ok();
            let past = Instant::now().checked_sub(Duration::from_secs(1)).unwrap();
            let late = ctx.with_deadline(past, || (ctx.is_cancelled(), ctx.check().is_ok()));
            worker_results.lock().unwrap().push((before, late));
            Ok::<(), std::io::Error>(())
        })
        .unwrap();
    submit(&pool, 1, 1);
    assert_eq!(pool.wait().unwrap().processed(), 1);
    // Past the deadline the work "is cancelled" (it should stop), but it was
    // not interrupted by the pool: `check` says Ok.
    assert_eq!(*results.lock().unwrap(), [(true, (true, true))]);
}

#[test]
fn the_live_snapshot_counts_interrupted_items_among_the_dropped() {
    let pool = Pool::builder()
        .workers(1)
        .batch_size(1)
        .build(move |ctx: &Ctx, _id: u64| -> anyhow::Result<()> {
            ctx.token().cancel();
            ctx.check()?;
            Ok(())
        })
        .unwrap();
    pool.sender().send(0).unwrap();
    wait_until(|| pool.metrics().interrupted == 1);
    let snapshot = pool.metrics();
    assert_eq!((snapshot.stats.dropped, snapshot.stats.failed), (1, 0));
    assert_eq!(snapshot.error_total, 0);
    let report = pool.join();
    assert_interrupted(&report, 0, 1, 1);
}

#[test]
fn is_in_finds_only_an_interrupted() {
    let unrelated = std::io::Error::other(anyhow::anyhow!("unrelated"));
    assert!(!Interrupted::is_in(&unrelated));
    let display = Pool::builder()
        .workers(1)
        .build(|ctx: &Ctx, _id: u64| {
            ctx.token().cancel();
            let error = ctx.check().unwrap_err();
            assert_eq!(error.to_string(), "work interrupted");
            let cause = std::error::Error::source(&error).unwrap();
            assert_eq!(cause.to_string(), "the pool was cancelled");
            assert!(
                Interrupted::is_in(cause),
                "the private source is recognised too"
            );
            assert_eq!(
                format!("{:#}", anyhow::Error::from(error)),
                "work interrupted: the pool was cancelled"
            );
            Err(error)
        })
        .unwrap();
    display.sender().send(0).unwrap();
    assert_eq!(display.join().interrupted(), 1);
}
