//! Every built-in works in a stateless pool (`build`) and a stateful one
//! (`build_stateful`) with four workers: exact counts, a balanced report,
//! the expected errors, and (stateful) every worker's `finish` reached through
//! the layer. The whole stack of five is run the same way.
#![allow(clippy::unwrap_used)] // Tests may unwrap: a panic is a test failure.

mod common;

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Kind, Run, middleware_errors, quiet_deliberate_panics, run};
use pool_core::{CancelToken, Ctx, Pool};
use pool_middleware::{
    Clock, ManualClock, MiddlewareError, RateLimiter, Recovery, Retry, Timeout, Validator,
};
use rstest::rstest;

const ITEMS: u32 = 200;
const WORKERS: usize = 4;

fn builder() -> pool_core::Builder<u32> {
    Pool::builder()
        .workers(WORKERS)
        .batch_size(4)
        .continue_on_error()
}

/// Checks the counts, the balance and, for stateful pools, that `finish`
/// reached every worker and how many calls got through to them.
fn assert_counts(ran: &Run, kind: Kind, processed: u64, failed: u64, worker_calls: u64) {
    let report = &ran.report;
    assert_eq!((report.processed(), report.failed()), (processed, failed));
    assert_eq!(report.submitted(), u64::from(ITEMS));
    assert!(report.is_balanced());
    assert_eq!(report.error_total(), failed);
    if kind == Kind::Stateful {
        assert_eq!(ran.finished.len(), WORKERS, "finish reached every worker");
        assert_eq!(ran.worker_calls(), worker_calls);
    }
}

fn count(items: impl Fn(u32) -> bool) -> u64 {
    (0..ITEMS).filter(|item| items(*item)).count() as u64
}

#[rstest]
fn retry(#[values(Kind::Stateless, Kind::Stateful)] kind: Kind) {
    let clock = Arc::new(ManualClock::new());
    let attempts = Arc::new(Mutex::new(HashMap::<u32, u32>::new()));
    let worker_attempts = Arc::clone(&attempts);
    let retry = Retry::new(3, Duration::from_millis(5))
        .unwrap()
        .seed(1)
        .clock(clock.clone());
    // Multiples of 4 fail once; items ending in 1 always fail.
    let ran = run!(
        kind,
        builder(),
        retry,
        move |_ctx: &Ctx, item: u32| -> anyhow::Result<()> {
            let attempt = {
                let mut attempts = worker_attempts.lock().unwrap();
                let attempt = attempts.entry(item).or_default();
                *attempt += 1;
                *attempt
            };
            anyhow::ensure!(item % 10 != 1, "{item} always fails");
            anyhow::ensure!(!item.is_multiple_of(4) || attempt > 1, "{item} fails once");
            Ok(())
        },
        0..ITEMS,
    );
    let always = count(|item| item % 10 == 1);
    let once = count(|item| item % 4 == 0);
    assert_counts(
        &ran,
        kind,
        u64::from(ITEMS) - always,
        always,
        u64::from(ITEMS) + once + 2 * always,
    );
    assert!(
        middleware_errors(&ran.report)
            .iter()
            .all(|error| matches!(error, MiddlewareError::RetriesExhausted { attempts: 3, .. }))
    );
    assert_eq!(clock.sleeps().len() as u64, once + 2 * always);
}

thread_local! {
    /// Virtual time passed on this thread, for [`ThreadClock`].
    static THREAD_ELAPSED: Cell<Duration> = const { Cell::new(Duration::ZERO) };
}

/// A clock with virtual time per thread: each worker's calls take the time
/// it says, whatever the other workers do meanwhile. (A shared
/// `ManualClock` would add the workers' time together.)
struct ThreadClock {
    start: Instant,
}

impl ThreadClock {
    fn advance(duration: Duration) {
        THREAD_ELAPSED.with(|elapsed| elapsed.set(elapsed.get() + duration));
    }
}

impl Clock for ThreadClock {
    fn now(&self) -> Instant {
        self.start + THREAD_ELAPSED.with(Cell::get)
    }

    fn sleep(&self, token: &CancelToken, duration: Duration) -> bool {
        if token.is_cancelled() {
            return true;
        }
        Self::advance(duration);
        false
    }
}

#[rstest]
fn timeout(#[values(Kind::Stateless, Kind::Stateful)] kind: Kind) {
    let limit = Duration::from_secs(60);
    let clock = Arc::new(ThreadClock {
        start: Instant::now(),
    });
    // Multiples of 5 take two minutes; items ending in 7 fail on time.
    let ran = run!(
        kind,
        builder(),
        Timeout::new(limit).unwrap().clock(clock),
        move |_ctx: &Ctx, item: u32| -> anyhow::Result<()> {
            if item.is_multiple_of(5) {
                ThreadClock::advance(2 * limit);
            }
            anyhow::ensure!(item % 10 != 7, "{item} failed on time");
            Ok(())
        },
        0..ITEMS,
    );
    let late = count(|item| item % 5 == 0);
    let failed_on_time = count(|item| item % 10 == 7);
    assert_counts(
        &ran,
        kind,
        u64::from(ITEMS) - late - failed_on_time,
        late + failed_on_time,
        u64::from(ITEMS),
    );
    let errors = middleware_errors(&ran.report);
    let timed_out = errors
        .iter()
        .filter(|error| matches!(error, MiddlewareError::TimedOut { elapsed, .. } if *elapsed == 2 * limit))
        .count() as u64;
    let passed_through = errors
        .iter()
        .filter(|error| matches!(error, MiddlewareError::Worker(_)))
        .count() as u64;
    assert_eq!((timed_out, passed_through), (late, failed_on_time));
}

#[rstest]
fn recovery(#[values(Kind::Stateless, Kind::Stateful)] kind: Kind) {
    quiet_deliberate_panics();
    let ran = run!(
        kind,
        builder(),
        Recovery::new(),
        |_ctx: &Ctx, item: u32| {
            assert!(!item.is_multiple_of(8), "deliberate panic on {item}");
            Ok::<(), std::io::Error>(())
        },
        0..ITEMS,
    );
    let panics = count(|item| item % 8 == 0);
    assert_counts(
        &ran,
        kind,
        u64::from(ITEMS) - panics,
        panics,
        u64::from(ITEMS),
    );
    assert!(
        middleware_errors(&ran.report)
            .iter()
            .all(|error| matches!(error, MiddlewareError::Panicked { .. }))
    );
}

#[rstest]
fn validator(#[values(Kind::Stateless, Kind::Stateful)] kind: Kind) {
    let ran = run!(
        kind,
        builder(),
        Validator::predicate("a multiple of 3", |item: &u32| !item.is_multiple_of(3)),
        |_ctx: &Ctx, _item: u32| Ok::<(), std::io::Error>(()),
        0..ITEMS,
    );
    let rejected = count(|item| item % 3 == 0);
    assert_counts(
        &ran,
        kind,
        u64::from(ITEMS) - rejected,
        rejected,
        u64::from(ITEMS) - rejected,
    );
}

#[rstest]
fn rate_limiter(#[values(Kind::Stateless, Kind::Stateful)] kind: Kind) {
    let clock = Arc::new(ManualClock::new());
    // Items ending in 3 fail in the worker, after their token.
    let ran = run!(
        kind,
        builder(),
        RateLimiter::new(1_000.0, 10).unwrap().clock(clock.clone()),
        |_ctx: &Ctx, item: u32| -> anyhow::Result<()> {
            anyhow::ensure!(item % 10 != 3, "{item} failed");
            Ok(())
        },
        0..ITEMS,
    );
    let failed = count(|item| item % 10 == 3);
    assert_counts(
        &ran,
        kind,
        u64::from(ITEMS) - failed,
        failed,
        u64::from(ITEMS),
    );
    // The last of 200 calls is due 190 intervals after the burst.
    assert!(
        clock.elapsed() >= Duration::from_millis(190),
        "{:?}",
        clock.elapsed()
    );
}

#[rstest]
fn all_five_together(#[values(Kind::Stateless, Kind::Stateful)] kind: Kind) {
    quiet_deliberate_panics();
    let clock = Arc::new(ManualClock::new());
    // Outermost first: Validator, RateLimiter, Retry, Recovery, Timeout, worker.
    // Items ending in 5 panic (then retried once, and panic again).
    let outer = builder()
        .layer(Validator::predicate("a multiple of 3", |item: &u32| {
            !item.is_multiple_of(3)
        }))
        .layer(RateLimiter::new(10_000.0, 50).unwrap().clock(clock.clone()))
        .layer(
            Retry::new(2, Duration::from_millis(1))
                .unwrap()
                .clock(clock.clone()),
        )
        .layer(Recovery::new());
    let ran = run!(
        kind,
        outer,
        Timeout::new(Duration::from_secs(3600))
            .unwrap()
            .clock(clock.clone()),
        |_ctx: &Ctx, item: u32| {
            assert!(item % 10 != 5, "deliberate panic on {item}");
            Ok::<(), std::io::Error>(())
        },
        0..ITEMS,
    );
    let rejected = count(|item| item % 3 == 0);
    let panicking = count(|item| item % 3 != 0 && item % 10 == 5);
    assert_counts(
        &ran,
        kind,
        u64::from(ITEMS) - rejected - panicking,
        rejected + panicking,
        u64::from(ITEMS) - rejected + panicking,
    );
    let errors = middleware_errors(&ran.report);
    let exhausted = errors
        .iter()
        .filter(|error| {
            matches!(error, MiddlewareError::RetriesExhausted { attempts: 2, source }
                if matches!(source.downcast_ref::<MiddlewareError>(), Some(MiddlewareError::Panicked { .. })))
        })
        .count() as u64;
    assert_eq!(exhausted, panicking);
}
