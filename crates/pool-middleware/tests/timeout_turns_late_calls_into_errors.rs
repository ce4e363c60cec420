//! `Timeout` sets the call's deadline in its `Ctx` (by its clock), turns a call
//! that returns at or after the deadline into `TimedOut` (keeping the call's
//! own error as the source), leaves calls on time alone, and restores the
//! previous deadline afterwards. Time is a `ManualClock` that the worker
//! advances to stand for its work.
#![allow(clippy::unwrap_used)] // Tests may unwrap: a panic is a test failure.

mod common;

use std::error::Error as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Kind, middleware_errors, run};
use pool_core::{Ctx, Pool, Worker};
use pool_middleware::{Clock, ManualClock, MiddlewareError, Timeout};
use rstest::rstest;

const LIMIT: Duration = Duration::from_secs(10);

/// A worker whose item is how long its work takes, in milliseconds of the
/// manual clock; items above 100 s fail as well.
fn slow_worker(
    clock: &Arc<ManualClock>,
) -> impl Fn(&Ctx, u32) -> anyhow::Result<()> + Clone + use<> {
    let clock = Arc::clone(clock);
    move |_ctx: &Ctx, millis: u32| {
        clock.advance(Duration::from_millis(u64::from(millis)));
        anyhow::ensure!(millis <= 100_000, "failed after {millis} ms");
        Ok(())
    }
}

/// Runs `count` calls of `millis` each, one at a time, through a 10 s timeout.
fn run_calls(kind: Kind, millis: u32, count: u32) -> (common::Run, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new());
    let timeout = Timeout::new(LIMIT).unwrap().clock(clock.clone());
    // One worker, so the manual clock only moves for the call being timed.
    let builder = Pool::builder().workers(1).batch_size(1).continue_on_error();
    let work = slow_worker(&clock);
    let ran = run!(
        kind,
        builder,
        timeout,
        move |ctx: &Ctx, _n: u32| work(ctx, millis),
        0..count,
    );
    (ran, clock)
}

#[rstest]
fn a_call_that_returns_before_the_deadline_succeeds(
    #[values(Kind::Stateless, Kind::Stateful)] kind: Kind,
) {
    let (ran, clock) = run_calls(kind, 9_999, 3);
    assert_eq!((ran.report.processed(), ran.report.failed()), (3, 0));
    assert_eq!(clock.elapsed(), Duration::from_millis(3 * 9_999));
}

#[rstest]
#[case::at_the_deadline(10_000)]
#[case::after_the_deadline(10_001)]
#[case::long_after_the_deadline(60_000)]
fn a_call_that_returns_at_or_after_the_deadline_times_out(
    #[values(Kind::Stateless, Kind::Stateful)] kind: Kind,
    #[case] millis: u32,
) {
    let (ran, _clock) = run_calls(kind, millis, 2);
    let report = &ran.report;
    assert_eq!((report.processed(), report.failed()), (0, 2));
    assert!(report.is_balanced());
    for error in middleware_errors(report) {
        let MiddlewareError::TimedOut {
            limit,
            elapsed,
            source,
        } = error
        else {
            panic!("expected TimedOut, got {error:?}");
        };
        assert_eq!(*limit, LIMIT);
        assert_eq!(*elapsed, Duration::from_millis(u64::from(millis)));
        assert!(source.is_none(), "the late call succeeded: {source:?}");
    }
    if kind == Kind::Stateful {
        assert_eq!(ran.finished, [2]);
    }
}

#[test]
fn a_late_failure_times_out_with_its_own_error_as_the_source() {
    let (ran, _clock) = run_calls(Kind::Stateless, 120_000, 1);
    let errors = middleware_errors(&ran.report);
    let [error @ MiddlewareError::TimedOut { .. }] = errors.as_slice() else {
        panic!("expected TimedOut, got {errors:?}");
    };
    assert_eq!(
        error.source().map(ToString::to_string).as_deref(),
        Some("failed after 120000 ms")
    );
    assert_eq!(
        error.to_string(),
        "the call took 120s, over its limit of 10s"
    );
}

#[test]
fn an_early_failure_passes_through_unchanged() {
    let clock = Arc::new(ManualClock::new());
    let ran = run!(
        Kind::Stateless,
        Pool::builder().workers(1),
        Timeout::new(LIMIT).unwrap().clock(clock.clone()),
        |_ctx: &Ctx, _n: u32| -> anyhow::Result<()> { anyhow::bail!("broke early") },
        0..1,
    );
    let errors = middleware_errors(&ran.report);
    let [MiddlewareError::Worker(error)] = errors.as_slice() else {
        panic!("expected the worker's own error, got {errors:?}");
    };
    assert_eq!(error.to_string(), "broke early");
}

/// When each call started and the deadline it saw.
type Seen = Arc<Mutex<Vec<(Instant, Option<Instant>)>>>;

/// Records what the worker saw of the deadline, and what it sees in `finish`
/// (outside any timed call).
struct DeadlineProbe {
    clock: Arc<ManualClock>,
    seen: Seen,
    in_finish: Arc<Mutex<Option<Option<Instant>>>>,
}

impl Worker<u32> for DeadlineProbe {
    type Error = std::io::Error;

    fn work(&mut self, ctx: &Ctx, millis: u32) -> std::io::Result<()> {
        self.seen
            .lock()
            .unwrap()
            .push((self.clock.now(), ctx.deadline()));
        self.clock.advance(Duration::from_millis(u64::from(millis)));
        Ok(())
    }

    fn finish(&mut self, ctx: &Ctx) -> std::io::Result<()> {
        *self.in_finish.lock().unwrap() = Some(ctx.deadline());
        Ok(())
    }
}

#[test]
fn the_deadline_in_ctx_is_the_clock_s_now_plus_the_limit_and_is_restored() {
    let clock = Arc::new(ManualClock::new());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let in_finish = Arc::new(Mutex::new(None));
    let (probe_clock, probe_seen, probe_finish) = (
        Arc::clone(&clock),
        Arc::clone(&seen),
        Arc::clone(&in_finish),
    );
    let pool = Pool::builder()
        .workers(1)
        .batch_size(1)
        .layer(Timeout::new(LIMIT).unwrap().clock(clock.clone()))
        .build_stateful(move |_id| DeadlineProbe {
            clock: Arc::clone(&probe_clock),
            seen: Arc::clone(&probe_seen),
            in_finish: Arc::clone(&probe_finish),
        })
        .unwrap();
    let mut submitter = pool.submitter();
    for millis in [1_000, 2_500, 0] {
        submitter.submit(millis).unwrap();
    }
    drop(submitter);
    assert_eq!(pool.wait().unwrap().processed(), 3);
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 3);
    for (now, deadline) in seen.iter() {
        assert_eq!(*deadline, Some(*now + LIMIT));
    }
    // Each call's deadline follows the clock, which the earlier calls moved.
    assert_eq!(seen[1].0 - seen[0].0, Duration::from_millis(1_000));
    assert_eq!(seen[2].0 - seen[1].0, Duration::from_millis(2_500));
    assert_eq!(
        *in_finish.lock().unwrap(),
        Some(None),
        "no deadline outside a call"
    );
}

#[test]
fn nested_timeouts_keep_the_earlier_deadline_and_each_judges_its_own_limit() {
    let clock = Arc::new(ManualClock::new());
    let outer_limit = Duration::from_secs(5);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let worker_seen = Arc::clone(&seen);
    let worker_clock = Arc::clone(&clock);
    let pool = Pool::builder()
        .workers(1)
        .batch_size(1)
        .continue_on_error()
        .layer(Timeout::new(outer_limit).unwrap().clock(clock.clone()))
        .layer(Timeout::new(LIMIT).unwrap().clock(clock.clone()))
        .build(move |ctx: &Ctx, millis: u32| {
            worker_seen
                .lock()
                .unwrap()
                .push((worker_clock.now(), ctx.deadline()));
            worker_clock.advance(Duration::from_millis(u64::from(millis)));
            Ok::<(), std::io::Error>(())
        })
        .unwrap();
    let mut submitter = pool.submitter();
    submitter.submit(6_000).unwrap(); // late for the outer limit only
    submitter.submit(11_000).unwrap(); // late for both
    drop(submitter);
    let report = pool.join();
    assert_eq!(report.failed(), 2);
    for (now, deadline) in seen.lock().unwrap().iter() {
        assert_eq!(*deadline, Some(*now + outer_limit));
    }
    // Each timeout measures its own limit: the outer one is late both times;
    // the second time the inner one was late too, and is the source.
    let errors = middleware_errors(&report);
    let [
        MiddlewareError::TimedOut {
            limit: first_limit,
            source: None,
            ..
        },
        MiddlewareError::TimedOut {
            limit: second_limit,
            source: Some(inner),
            ..
        },
    ] = errors.as_slice()
    else {
        panic!("expected two outer timeouts, got {errors:?}");
    };
    assert_eq!((*first_limit, *second_limit), (outer_limit, outer_limit));
    assert!(
        matches!(
            inner.downcast_ref::<MiddlewareError>(),
            Some(MiddlewareError::TimedOut { limit: LIMIT, elapsed, source: None })
                if *elapsed == Duration::from_secs(11)
        ),
        "{inner:?}"
    );
}

#[test]
fn with_the_system_clock_a_polling_worker_sees_the_deadline_pass() {
    // Real time, but no timing assertion: the worker spins until its own
    // `Ctx` says the 1 ms deadline has passed, which must then be a timeout.
    let pool = Pool::builder()
        .workers(1)
        .layer(Timeout::new(Duration::from_millis(1)).unwrap())
        .build(|ctx: &Ctx, _n: u32| -> anyhow::Result<()> {
            let deadline = ctx.deadline().expect("the timeout set a deadline");
            anyhow::ensure!(
                deadline > Instant::now() - Duration::from_secs(1),
                "a stale deadline"
            );
            while !ctx.is_cancelled() {
                std::thread::yield_now();
            }
            anyhow::bail!("gave up at the deadline")
        })
        .unwrap();
    pool.submitter().submit(1).unwrap();
    let report = pool.join();
    let errors = middleware_errors(&report);
    let [MiddlewareError::TimedOut { source, .. }] = errors.as_slice() else {
        panic!("expected TimedOut, got {errors:?}");
    };
    assert_eq!(
        source.as_ref().map(ToString::to_string).as_deref(),
        Some("gave up at the deadline")
    );
}
