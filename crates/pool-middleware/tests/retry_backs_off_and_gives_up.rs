//! `Retry` runs a failing item again on the documented schedule: it succeeds on
//! attempt k, gives up after n with the last error as the source, lets the
//! predicate stop it, never sleeps after the last attempt, keeps its jitter in
//! bounds and stops at once when the pool is cancelled during a backoff.
//! Time is a `ManualClock`, so schedules are asserted exactly without sleeping.
#![allow(clippy::unwrap_used)] // Tests may unwrap: a panic is a test failure.

mod common;

use std::collections::HashMap;
use std::error::Error as _;
use std::io;
use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Kind, middleware_errors, run};
use pool_core::{Ctx, Pool};
use pool_middleware::{BoxError, ManualClock, MiddlewareError, Retry};
use rstest::rstest;

const BASE: Duration = Duration::from_millis(10);

/// A retry with an exact schedule (no jitter) on `clock`.
fn exact_retry(max_attempts: u32, clock: &Arc<ManualClock>) -> Retry {
    Retry::new(max_attempts, BASE)
        .unwrap()
        .jitter(0.0)
        .unwrap()
        .clock(clock.clone())
}

/// Attempts per item, shared by the workers of a pool.
#[derive(Clone, Default)]
struct Attempts(Arc<Mutex<HashMap<u32, u32>>>);

impl Attempts {
    /// Counts an attempt at `item` and returns its number (1 for the first).
    fn record(&self, item: u32) -> u32 {
        let mut attempts = self.0.lock().unwrap();
        let count = attempts.entry(item).or_default();
        *count += 1;
        *count
    }

    fn of(&self, item: u32) -> u32 {
        self.0.lock().unwrap().get(&item).copied().unwrap_or(0)
    }
}

#[rstest]
fn an_item_that_fails_k_minus_1_times_succeeds_on_attempt_k(
    #[values(Kind::Stateless, Kind::Stateful)] kind: Kind,
    #[values(1, 2, 5)] succeeding_attempt: u32,
) {
    let clock = Arc::new(ManualClock::new());
    let attempts = Attempts::default();
    let worker_attempts = attempts.clone();
    let ran = run!(
        kind,
        Pool::builder().workers(2).batch_size(1).continue_on_error(),
        exact_retry(5, &clock),
        move |_ctx: &Ctx, item: u32| -> anyhow::Result<()> {
            let attempt = worker_attempts.record(item);
            anyhow::ensure!(attempt >= succeeding_attempt, "attempt {attempt} failed");
            Ok(())
        },
        0..20,
    );
    let report = &ran.report;
    assert_eq!((report.processed(), report.failed()), (20, 0));
    assert!(report.is_balanced());
    for item in 0..20 {
        assert_eq!(attempts.of(item), succeeding_attempt, "item {item}");
    }
    // Each item waited after each of its failures: 10 ms, 20 ms, ... doubling.
    let mut sleeps = clock.sleeps();
    sleeps.sort();
    let mut expected: Vec<Duration> = (0..succeeding_attempt - 1)
        .flat_map(|retry| std::iter::repeat_n(BASE * 2u32.pow(retry), 20))
        .collect();
    expected.sort();
    assert_eq!(sleeps, expected);
    if kind == Kind::Stateful {
        assert_eq!(ran.finished.len(), 2, "finish reaches every worker");
        assert_eq!(ran.worker_calls(), u64::from(20 * succeeding_attempt));
    }
}

#[rstest]
fn an_item_that_always_fails_gives_up_after_max_attempts_with_the_last_error(
    #[values(Kind::Stateless, Kind::Stateful)] kind: Kind,
) {
    let clock = Arc::new(ManualClock::new());
    let attempts = Attempts::default();
    let worker_attempts = attempts.clone();
    let ran = run!(
        kind,
        Pool::builder().workers(2).batch_size(1).continue_on_error(),
        exact_retry(4, &clock),
        move |_ctx: &Ctx, item: u32| -> anyhow::Result<()> {
            let attempt = worker_attempts.record(item);
            anyhow::bail!("attempt {attempt} at item {item} failed")
        },
        0..10,
    );
    let report = &ran.report;
    assert_eq!((report.processed(), report.failed()), (0, 10));
    assert!(report.is_balanced());
    for item in 0..10 {
        assert_eq!(attempts.of(item), 4);
    }
    let errors = middleware_errors(report);
    assert_eq!(errors.len(), 10);
    for error in errors {
        let MiddlewareError::RetriesExhausted { attempts, source } = error else {
            panic!("expected RetriesExhausted, got {error:?}");
        };
        assert_eq!(*attempts, 4);
        let last = source.to_string();
        assert!(
            last.starts_with("attempt 4 at item "),
            "the source is the last error: {last}"
        );
        assert_eq!(
            error.source().map(ToString::to_string),
            Some(last),
            "source() is the last error"
        );
        assert!(
            error
                .to_string()
                .starts_with("gave up after 4 attempts: attempt 4 at item ")
        );
    }
    // Three backoffs per item, none after the last attempt.
    assert_eq!(clock.sleeps().len(), 10 * 3);
}

#[rstest]
#[case::one_attempt(1)]
#[case::two_attempts(2)]
#[case::three_attempts(3)]
#[case::seven_attempts(7)]
fn there_is_no_sleep_after_the_last_attempt(#[case] max_attempts: u32) {
    let clock = Arc::new(ManualClock::new());
    let calls = Arc::new(AtomicU32::new(0));
    let worker_calls = Arc::clone(&calls);
    let ran = run!(
        Kind::Stateless,
        Pool::builder().workers(1),
        exact_retry(max_attempts, &clock),
        move |_ctx: &Ctx, _item: u32| -> anyhow::Result<()> {
            worker_calls.fetch_add(1, SeqCst);
            anyhow::bail!("always fails")
        },
        0..1,
    );
    assert_eq!(ran.report.failed(), 1);
    assert_eq!(calls.load(SeqCst), max_attempts);
    let expected: Vec<Duration> = (0..max_attempts - 1)
        .map(|retry| BASE * 2u32.pow(retry))
        .collect();
    assert_eq!(clock.sleeps(), expected);
    assert_eq!(clock.elapsed(), expected.iter().sum());
}

#[test]
fn the_schedule_doubles_exactly_and_stops_at_the_cap() {
    for (cap, expected_millis) in [
        (None, vec![10, 20, 40, 80, 160, 320, 640]),
        (
            Some(Duration::from_millis(100)),
            vec![10, 20, 40, 80, 100, 100, 100],
        ),
    ] {
        let clock = Arc::new(ManualClock::new());
        let mut retry = exact_retry(8, &clock);
        if let Some(cap) = cap {
            retry = retry.max_delay(cap);
        }
        let ran = run!(
            Kind::Stateless,
            Pool::builder().workers(1),
            retry,
            |_ctx: &Ctx, _item: u32| -> anyhow::Result<()> { anyhow::bail!("always fails") },
            0..1,
        );
        assert_eq!(ran.report.failed(), 1);
        let expected: Vec<Duration> = expected_millis
            .into_iter()
            .map(Duration::from_millis)
            .collect();
        assert_eq!(clock.sleeps(), expected, "cap {cap:?}");
    }
}

/// The backoffs of one always-failing item under `retry` (one worker).
fn backoffs(retry: Retry, clock: &Arc<ManualClock>) -> Vec<Duration> {
    let ran = run!(
        Kind::Stateless,
        Pool::builder().workers(1),
        retry.clock(clock.clone()),
        |_ctx: &Ctx, _item: u32| -> anyhow::Result<()> { anyhow::bail!("always fails") },
        0..1,
    );
    assert_eq!(ran.report.failed(), 1);
    clock.sleeps()
}

#[rstest]
fn jittered_delays_stay_within_their_bounds(
    #[values(0, 1, 42, 0xDEAD_BEEF, u64::MAX)] seed: u64,
    #[values(0.2, 0.5, 1.0)] jitter: f64,
) {
    let base = Duration::from_millis(3);
    let clock = Arc::new(ManualClock::new());
    let retry = Retry::new(10, base)
        .unwrap()
        .jitter(jitter)
        .unwrap()
        .seed(seed);
    let delays = backoffs(retry, &clock);
    assert_eq!(delays.len(), 9);
    for (retry, delay) in delays.iter().enumerate() {
        let nominal = base * 2u32.pow(u32::try_from(retry).unwrap());
        let most = nominal + nominal.mul_f64(jitter);
        assert!(
            nominal <= *delay && *delay <= most,
            "seed {seed}, retry {retry}: {delay:?} outside [{nominal:?}, {most:?}]"
        );
    }
    // Jitter that never moves a delay would pass the bounds; it must spread.
    let jittered = delays
        .iter()
        .enumerate()
        .filter(|(retry, delay)| **delay > base * 2u32.pow(u32::try_from(*retry).unwrap()))
        .count();
    assert!(
        jittered >= 5,
        "seed {seed}: only {jittered} of 9 delays jittered"
    );
}

#[test]
fn jitter_never_passes_the_cap() {
    let cap = Duration::from_millis(50);
    for seed in 0..20 {
        let clock = Arc::new(ManualClock::new());
        let retry = Retry::new(12, Duration::from_millis(1))
            .unwrap()
            .jitter(1.0)
            .unwrap()
            .max_delay(cap)
            .seed(seed);
        let delays = backoffs(retry, &clock);
        assert!(
            delays.iter().all(|delay| *delay <= cap),
            "seed {seed}: {delays:?}"
        );
        assert_eq!(
            delays.last(),
            Some(&cap),
            "seed {seed}: the late delays reach the cap"
        );
    }
}

#[test]
fn a_seed_fixes_the_jitter_and_another_seed_changes_it() {
    let schedule = |seed| {
        let clock = Arc::new(ManualClock::new());
        backoffs(
            Retry::new(6, Duration::from_millis(10)).unwrap().seed(seed),
            &clock,
        )
    };
    assert_eq!(schedule(7), schedule(7));
    assert_ne!(schedule(7), schedule(8));
}

/// An error type with a transient and a permanent kind, for the predicate.
fn transient(error: &BoxError) -> bool {
    error
        .downcast_ref::<io::Error>()
        .is_some_and(|error| error.kind() == io::ErrorKind::TimedOut)
}

#[rstest]
#[case::permanent_at_once(1)]
#[case::permanent_after_two_transients(3)]
fn the_predicate_stops_retrying_and_the_error_passes_through(#[case] permanent_at: u32) {
    let clock = Arc::new(ManualClock::new());
    let calls = Arc::new(AtomicU32::new(0));
    let worker_calls = Arc::clone(&calls);
    let ran = run!(
        Kind::Stateless,
        Pool::builder().workers(1),
        exact_retry(10, &clock).retry_if(transient),
        move |_ctx: &Ctx, _item: u32| -> io::Result<()> {
            let attempt = worker_calls.fetch_add(1, SeqCst) + 1;
            if attempt < permanent_at {
                Err(io::Error::new(io::ErrorKind::TimedOut, "try again"))
            } else {
                Err(io::Error::new(io::ErrorKind::InvalidData, "bad data"))
            }
        },
        0..1,
    );
    assert_eq!(
        calls.load(SeqCst),
        permanent_at,
        "no attempt after the permanent error"
    );
    assert_eq!(
        clock.sleeps().len(),
        usize::try_from(permanent_at - 1).unwrap()
    );
    let errors = middleware_errors(&ran.report);
    let [MiddlewareError::Worker(error)] = errors.as_slice() else {
        panic!("expected the worker's own error, got {errors:?}");
    };
    assert_eq!(error.to_string(), "bad data");
    assert_eq!(
        error.downcast_ref::<io::Error>().map(io::Error::kind),
        Some(io::ErrorKind::InvalidData)
    );
}

#[test]
fn retriable_errors_still_exhaust_the_attempts_under_a_predicate() {
    let clock = Arc::new(ManualClock::new());
    let ran = run!(
        Kind::Stateless,
        Pool::builder().workers(1),
        exact_retry(3, &clock).retry_if(transient),
        |_ctx: &Ctx, _item: u32| -> io::Result<()> {
            Err(io::Error::new(io::ErrorKind::TimedOut, "try again"))
        },
        0..1,
    );
    let errors = middleware_errors(&ran.report);
    assert!(
        matches!(
            errors.as_slice(),
            [MiddlewareError::RetriesExhausted { attempts: 3, .. }]
        ),
        "{errors:?}"
    );
    assert_eq!(clock.sleeps().len(), 2);
}

#[rstest]
#[case::during_the_first_backoff(1)]
#[case::during_the_third_backoff(3)]
fn a_cancel_during_the_backoff_stops_at_once(#[case] cancelling_attempt: u32) {
    let clock = Arc::new(ManualClock::new());
    let calls = Arc::new(AtomicU32::new(0));
    let worker_calls = Arc::clone(&calls);
    let ran = run!(
        Kind::Stateless,
        Pool::builder().workers(1).batch_size(1),
        exact_retry(10, &clock),
        move |ctx: &Ctx, _item: u32| -> anyhow::Result<()> {
            let attempt = worker_calls.fetch_add(1, SeqCst) + 1;
            if attempt == cancelling_attempt {
                ctx.token().cancel();
            }
            anyhow::bail!("attempt {attempt} failed")
        },
        0..5,
    );
    assert_eq!(
        calls.load(SeqCst),
        cancelling_attempt,
        "no attempt after the cancel"
    );
    // The backoffs before the cancel ran in full; the one it cut short was asked
    // for but took no time.
    let expected: Vec<Duration> = (0..cancelling_attempt)
        .map(|retry| BASE * 2u32.pow(retry))
        .collect();
    assert_eq!(clock.sleeps(), expected);
    assert_eq!(clock.elapsed(), expected[..expected.len() - 1].iter().sum());

    let report = &ran.report;
    assert!(report.was_cancelled());
    assert_eq!((report.processed(), report.failed()), (0, 1));
    assert!(report.is_balanced());
    let errors = middleware_errors(report);
    let [MiddlewareError::RetryCancelled { attempts, source }] = errors.as_slice() else {
        panic!("expected RetryCancelled, got {errors:?}");
    };
    assert_eq!(*attempts, cancelling_attempt);
    assert_eq!(
        source.to_string(),
        format!("attempt {cancelling_attempt} failed")
    );
}

#[test]
fn the_system_clock_backoff_ends_at_once_on_cancel() {
    // An hour-long backoff: without the cancel this test would not finish.
    let ran = run!(
        Kind::Stateless,
        Pool::builder().workers(1),
        Retry::new(2, Duration::from_secs(3600)).unwrap(),
        |ctx: &Ctx, _item: u32| -> anyhow::Result<()> {
            ctx.token().cancel();
            anyhow::bail!("failed and cancelled")
        },
        0..1,
    );
    let errors = middleware_errors(&ran.report);
    assert!(
        matches!(
            errors.as_slice(),
            [MiddlewareError::RetryCancelled { attempts: 1, .. }]
        ),
        "{errors:?}"
    );
}

/// An item that counts its clones.
#[derive(Debug)]
struct Counted(Arc<AtomicU32>);

impl Clone for Counted {
    fn clone(&self) -> Self {
        self.0.fetch_add(1, SeqCst);
        Counted(Arc::clone(&self.0))
    }
}

#[rstest]
#[case::one_attempt_allowed_never_clones(1, false, 0)]
#[case::success_at_once_cloned_once(3, true, 1)]
#[case::every_attempt_but_the_last_gets_a_clone(3, false, 2)]
fn the_item_is_cloned_for_every_attempt_but_the_last(
    #[case] max_attempts: u32,
    #[case] succeeds: bool,
    #[case] expected_clones: u32,
) {
    let clock = Arc::new(ManualClock::new());
    let clones = Arc::new(AtomicU32::new(0));
    let pool = Pool::builder()
        .workers(1)
        .layer(exact_retry(max_attempts, &clock))
        .build(move |_ctx: &Ctx, _item: Counted| -> anyhow::Result<()> {
            anyhow::ensure!(succeeds, "fails");
            Ok(())
        })
        .unwrap();
    pool.submitter()
        .submit(Counted(Arc::clone(&clones)))
        .unwrap();
    let report = pool.join();
    assert!(report.is_balanced());
    assert_eq!(clones.load(SeqCst), expected_clones);
}
