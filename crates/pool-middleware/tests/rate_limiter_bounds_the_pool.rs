//! `RateLimiter` is one token bucket for the whole pool: over a simulated
//! second at most `rate + burst` calls pass, waits are exactly one interval
//! apart, an idle bucket refills only up to `burst`, clones share the bucket,
//! and a cancellation during a wait fails the item before the worker sees it.
//! Time is a `ManualClock`: virtual, exact, and nobody sleeps.
#![allow(clippy::unwrap_used)] // Tests may unwrap: a panic is a test failure.

mod common;

use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Kind, middleware_errors, run};
use pool_core::{Ctx, Next, Pool, layer_fn};
use pool_middleware::{ManualClock, MiddlewareError, RateLimiter};
use rstest::rstest;

const SECOND: Duration = Duration::from_secs(1);

/// A limiter on `clock`.
fn limiter(rate_per_sec: f64, burst: u32, clock: &Arc<ManualClock>) -> RateLimiter {
    RateLimiter::new(rate_per_sec, burst)
        .unwrap()
        .clock(clock.clone())
}

/// The virtual times of a worker's calls.
type Times = Arc<Mutex<Vec<Duration>>>;

/// A worker that records the virtual time of each call it gets.
fn timestamping(
    clock: &Arc<ManualClock>,
) -> (
    Times,
    impl Fn(&Ctx, u32) -> Result<(), std::io::Error> + Clone + Send + Sync + 'static,
) {
    let times = Arc::new(Mutex::new(Vec::new()));
    let (worker_times, worker_clock) = (Arc::clone(&times), Arc::clone(clock));
    let work = move |_ctx: &Ctx, _item: u32| {
        worker_times.lock().unwrap().push(worker_clock.elapsed());
        Ok(())
    };
    (times, work)
}

#[rstest]
fn one_worker_gets_a_burst_then_one_call_per_interval(
    #[values(Kind::Stateless, Kind::Stateful)] kind: Kind,
) {
    let clock = Arc::new(ManualClock::new());
    let (times, work) = timestamping(&clock);
    let ran = run!(
        kind,
        Pool::builder().workers(1).batch_size(1),
        limiter(10.0, 3, &clock),
        work,
        0..20,
    );
    assert_eq!(ran.report.processed(), 20);
    let interval = Duration::from_millis(100);
    // The burst passes at once; each later call waits exactly one interval.
    assert_eq!(clock.sleeps(), vec![interval; 17]);
    let times = times.lock().unwrap();
    let expected: Vec<Duration> = [Duration::ZERO; 3]
        .into_iter()
        .chain((1..=17).map(|n| interval * n))
        .collect();
    assert_eq!(*times, expected);
    // Over the first simulated second: rate + burst calls, not one more.
    assert_eq!(times.iter().filter(|time| **time <= SECOND).count(), 10 + 3);
}

#[rstest]
fn four_workers_together_stay_under_rate_plus_burst(
    #[values(Kind::Stateless, Kind::Stateful)] kind: Kind,
) {
    let clock = Arc::new(ManualClock::new());
    let (times, work) = timestamping(&clock);
    let ran = run!(
        kind,
        Pool::builder().workers(4).batch_size(2),
        limiter(50.0, 5, &clock),
        work,
        0..200,
    );
    assert_eq!(ran.report.processed(), 200);
    assert!(ran.report.is_balanced());
    let times = times.lock().unwrap();
    let within_a_second = times.iter().filter(|time| **time <= SECOND).count();
    // A manual clock adds up concurrent sleeps, so virtual time can only run
    // ahead: fewer calls may fall in the second, never more.
    assert!(
        within_a_second <= 50 + 5,
        "{within_a_second} calls in the first second"
    );
    assert!(
        within_a_second >= 5,
        "the burst passes at once: {within_a_second}"
    );
    if kind == Kind::Stateful {
        assert_eq!(ran.finished.len(), 4);
    }
}

#[test]
fn an_idle_bucket_refills_only_up_to_the_burst() {
    let clock = Arc::new(ManualClock::new());
    let worker_clock = Arc::clone(&clock);
    let ran = run!(
        Kind::Stateless,
        Pool::builder().workers(1).batch_size(1),
        limiter(1.0, 2, &clock),
        move |_ctx: &Ctx, item: u32| {
            if item == 1 {
                // Ten idle seconds: worth ten tokens, but the bucket holds two.
                worker_clock.advance(Duration::from_secs(10));
            }
            Ok::<(), std::io::Error>(())
        },
        0..6,
    );
    assert_eq!(ran.report.processed(), 6);
    // Items 0 and 1 are the first burst, 2 and 3 the refilled one; 4 and 5 wait.
    assert_eq!(clock.sleeps(), [SECOND, SECOND]);
}

#[test]
fn clones_share_one_bucket_across_pools() {
    let clock = Arc::new(ManualClock::new());
    let shared = limiter(4.0, 3, &clock);
    let (_, work) = timestamping(&clock);
    let first = run!(
        Kind::Stateless,
        Pool::builder().workers(1),
        shared.clone(),
        work.clone(),
        0..3,
    );
    assert_eq!(first.report.processed(), 3);
    assert!(clock.sleeps().is_empty(), "the first pool used the burst");
    let second = run!(
        Kind::Stateless,
        Pool::builder().workers(1),
        shared,
        work,
        0..1,
    );
    assert_eq!(second.report.processed(), 1);
    assert_eq!(
        clock.sleeps(),
        [Duration::from_millis(250)],
        "the burst was spent"
    );
}

#[test]
fn a_separate_limiter_has_its_own_bucket() {
    let clock = Arc::new(ManualClock::new());
    let (_, work) = timestamping(&clock);
    for _ in 0..2 {
        let ran = run!(
            Kind::Stateless,
            Pool::builder().workers(1),
            limiter(4.0, 3, &clock),
            work.clone(),
            0..3,
        );
        assert_eq!(ran.report.processed(), 3);
    }
    assert!(clock.sleeps().is_empty());
}

#[test]
fn a_cancel_while_waiting_interrupts_the_item_before_the_worker() {
    let clock = Arc::new(ManualClock::new());
    let calls = Arc::new(AtomicU32::new(0));
    let worker_calls = Arc::clone(&calls);
    // Outside the limiter: cancels the pool as the second item arrives, so
    // the limiter's wait for it sees a cancelled token.
    let cancel_on_second = layer_fn(|mut next: Next<'_, u32>, ctx: &Ctx, item: u32| {
        if item == 1 {
            ctx.token().cancel();
        }
        next.work(ctx, item)
    });
    let pool = Pool::builder()
        .workers(1)
        .batch_size(1)
        .layer(cancel_on_second)
        .layer(limiter(1.0, 1, &clock))
        .build(move |_ctx: &Ctx, _item: u32| {
            worker_calls.fetch_add(1, SeqCst);
            Ok::<(), std::io::Error>(())
        })
        .unwrap();
    common::submit(&pool, 0..5);
    let report = pool.join();
    assert_eq!(
        calls.load(SeqCst),
        1,
        "the worker never saw the cancelled item"
    );
    // Stopped by the shutdown, not failed: counted as interrupted (a part
    // of dropped), with no error recorded; the 3 items behind it dropped.
    assert_eq!(
        (
            report.processed(),
            report.failed(),
            report.dropped(),
            report.interrupted()
        ),
        (1, 0, 4, 1)
    );
    assert!(report.was_cancelled());
    assert!(report.is_balanced());
    assert!(middleware_errors(&report).is_empty());
    // The error itself still says what happened, and is found as interrupted.
    let error = MiddlewareError::Cancelled;
    assert!(pool_core::Interrupted::is_in(&error));
    assert!(error.find::<pool_core::Interrupted>().is_some());
    // The wait was asked for and cut short: no virtual time passed.
    assert_eq!(clock.sleeps(), [SECOND]);
    assert_eq!(clock.elapsed(), Duration::ZERO);
}

#[test]
fn the_interval_is_rounded_to_the_nanosecond() {
    let clock = Arc::new(ManualClock::new());
    assert_eq!(
        limiter(3.0, 1, &clock).interval(),
        Duration::from_nanos(333_333_333)
    );
    assert_eq!(limiter(0.5, 1, &clock).interval(), Duration::from_secs(2));
}
