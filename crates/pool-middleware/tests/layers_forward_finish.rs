//! Every built-in layer forwards `finish`, alone, stacked, and stacked with
//! closure middleware (`layer_fn`) on either side: a stateful worker's
//! `finish` (its flush) runs exactly once per worker thread whatever wraps
//! it, after every item the stack let through.
#![allow(clippy::unwrap_used)] // Tests may unwrap: a panic is a test failure.

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::time::Duration;

use common::quiet_deliberate_panics;
use pool_core::{Ctx, Next, Pool, Report, Worker, layer_fn};
use pool_middleware::{ManualClock, RateLimiter, Recovery, Retry, Timeout, Validator};
use rstest::rstest;

const ITEMS: u32 = 500;

/// A stateful worker that buffers the items it accepts and flushes them in
/// `finish`. It panics on multiples of 11 (every time) and fails multiples
/// of 7 the first time it sees them, so `Recovery` and `Retry` have work.
struct Flushing {
    buffered: u64,
    failed_once: HashSet<u32>,
    flushes: Arc<AtomicUsize>,
    flushed_items: Arc<AtomicU64>,
}

impl Worker<u32> for Flushing {
    type Error = std::io::Error;

    fn work(&mut self, _ctx: &Ctx, item: u32) -> std::io::Result<()> {
        assert!(!item.is_multiple_of(11), "deliberate panic on {item}");
        if item.is_multiple_of(7) && self.failed_once.insert(item) {
            return Err(std::io::Error::other(format!("{item} fails once")));
        }
        self.buffered += 1;
        Ok(())
    }

    fn finish(&mut self, _ctx: &Ctx) -> std::io::Result<()> {
        self.flushes.fetch_add(1, SeqCst);
        self.flushed_items.fetch_add(self.buffered, SeqCst);
        self.buffered = 0;
        Ok(())
    }
}

/// What wraps the worker, outermost first.
#[derive(Debug, Clone, Copy)]
enum Stack {
    /// Retry, Recovery.
    RetryRecovery,
    /// A closure layer, Retry, Recovery.
    ClosureOutside,
    /// Retry, Recovery, a closure layer.
    ClosureInside,
    /// Validator, RateLimiter, a closure layer, Retry, Recovery, Timeout, a
    /// closure layer.
    AllFiveAndClosures,
}

impl Stack {
    /// How many closure layers the stack has.
    fn closure_layers(self) -> u64 {
        match self {
            Stack::RetryRecovery => 0,
            Stack::ClosureOutside | Stack::ClosureInside => 1,
            Stack::AllFiveAndClosures => 2,
        }
    }
}

/// The report, the workers' `finish` calls and flushed items, and the items
/// the closure layers passed on.
struct Run {
    report: Report,
    flushes: usize,
    flushed_items: u64,
    closure_calls: u64,
}

fn run(stack: Stack, n_workers: usize) -> Run {
    quiet_deliberate_panics();
    let flushes = Arc::new(AtomicUsize::new(0));
    let flushed_items = Arc::new(AtomicU64::new(0));
    let closure_calls = Arc::new(AtomicU64::new(0));
    let maker = {
        let flushes = Arc::clone(&flushes);
        let flushed_items = Arc::clone(&flushed_items);
        move |_ctx: &Ctx| Flushing {
            buffered: 0,
            failed_once: HashSet::new(),
            flushes: Arc::clone(&flushes),
            flushed_items: Arc::clone(&flushed_items),
        }
    };
    let counting = {
        let closure_calls = Arc::clone(&closure_calls);
        layer_fn(move |mut next: Next<'_, u32>, ctx: &Ctx, item: u32| {
            closure_calls.fetch_add(1, SeqCst);
            next.work(ctx, item)
        })
    };
    let clock = Arc::new(ManualClock::new());
    let retry = Retry::new(2, Duration::from_millis(1))
        .unwrap()
        .clock(clock.clone());
    let builder = Pool::builder()
        .workers(n_workers)
        .batch_size(8)
        .continue_on_error();
    let pool = match stack {
        Stack::RetryRecovery => builder
            .layer(retry)
            .layer(Recovery::new())
            .build_stateful(maker),
        Stack::ClosureOutside => builder
            .layer(counting)
            .layer(retry)
            .layer(Recovery::new())
            .build_stateful(maker),
        Stack::ClosureInside => builder
            .layer(retry)
            .layer(Recovery::new())
            .layer(counting)
            .build_stateful(maker),
        Stack::AllFiveAndClosures => builder
            .layer(Validator::predicate("any u32", |_item: &u32| true))
            .layer(RateLimiter::new(10_000.0, 50).unwrap().clock(clock.clone()))
            .layer(counting.clone())
            .layer(retry)
            .layer(Recovery::new())
            .layer(
                Timeout::new(Duration::from_secs(3_600))
                    .unwrap()
                    .clock(clock.clone()),
            )
            .layer(counting)
            .build_stateful(maker),
    }
    .unwrap();
    common::submit(&pool, 0..ITEMS);
    let report = pool.join();
    Run {
        report,
        flushes: flushes.load(SeqCst),
        flushed_items: flushed_items.load(SeqCst),
        closure_calls: closure_calls.load(SeqCst),
    }
}

#[rstest]
fn every_worker_flushes_once_under_any_stack(
    #[values(
        Stack::RetryRecovery,
        Stack::ClosureOutside,
        Stack::ClosureInside,
        Stack::AllFiveAndClosures
    )]
    stack: Stack,
    #[values(1, 3)] n_workers: usize,
) {
    let ran = run(stack, n_workers);
    let report = &ran.report;
    let panicking = (0..ITEMS).filter(|item| item % 11 == 0).count() as u64;
    let processed = u64::from(ITEMS) - panicking;
    assert_eq!(ran.flushes, n_workers, "one `finish` per worker: {report}");
    assert_eq!(
        ran.flushed_items, processed,
        "every accepted item was flushed"
    );
    assert_eq!(
        (report.processed(), report.failed()),
        (processed, panicking)
    );
    assert!(report.is_balanced(), "{report}");
    assert!(!report.was_cancelled());
    // A closure layer outside `Retry` sees each item once; one inside sees
    // each attempt (a second one for multiples of 7 and of 11).
    let retried = (0..ITEMS)
        .filter(|item| item % 7 == 0 || item % 11 == 0)
        .count() as u64;
    let expected_calls = match stack.closure_layers() {
        0 => 0,
        1 if matches!(stack, Stack::ClosureOutside) => u64::from(ITEMS),
        1 => u64::from(ITEMS) + retried,
        _ => 2 * u64::from(ITEMS) + retried,
    };
    assert_eq!(ran.closure_calls, expected_calls);
}
