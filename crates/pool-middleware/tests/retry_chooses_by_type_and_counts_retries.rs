//! `Retry::retry_on::<E>()` retries exactly the errors that are or hold an
//! `E` (inside an `anyhow::Error`, under `Timeout` and `Recovery`), and
//! passes every other error on after one attempt; the `on_retry` hook sees
//! each retry with the failed attempt's number, its error and the wait; the
//! retry counter is on the worker's own metrics shard and counts the retries
//! made. Time is a `ManualClock`: nothing sleeps.
#![allow(clippy::unwrap_used)] // Tests may unwrap: a panic is a test failure.

mod common;

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Kind, middleware_errors, run, run_with};
use pool_core::{Ctx, Pool, find_error};
use pool_middleware::{
    DEFAULT_RETRY_COUNTER, ManualClock, MiddlewareError, Recovery, Retry, Timeout,
};
use rstest::rstest;

const BASE: Duration = Duration::from_millis(10);
const ATTEMPTS: u32 = 3;

#[derive(Debug, thiserror::Error)]
enum StoreError {
    #[error("the store is busy")]
    Busy,
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

/// A retry with an exact schedule (no jitter) on `clock`.
fn exact_retry(max_attempts: u32, clock: &Arc<ManualClock>) -> Retry {
    Retry::new(max_attempts, BASE)
        .unwrap()
        .jitter(0.0)
        .unwrap()
        .clock(clock.clone())
}

/// Item 0 fails with a `StoreError` made into an `anyhow::Error` with `?`,
/// item 1 with one under a context, item 2 with an `io::Error` (as anyhow),
/// item 3 with a plain message, item 4 succeeds.
fn mixed_worker(attempts: &Attempts) -> impl Fn(&Ctx, u32) -> anyhow::Result<()> + Clone + use<> {
    let attempts = attempts.clone();
    move |_ctx: &Ctx, item: u32| {
        attempts.record(item);
        match item {
            0 => Err(StoreError::Busy)?,
            1 => Err(anyhow::Error::new(StoreError::Busy).context("writing the row")),
            2 => Err(io::Error::new(io::ErrorKind::TimedOut, "no answer").into()),
            3 => anyhow::bail!("malformed row"),
            _ => Ok(()),
        }
    }
}

#[rstest]
fn retry_on_retries_only_errors_holding_the_chosen_type_through_timeout_and_recovery(
    #[values(Kind::Stateless, Kind::Stateful)] kind: Kind,
) {
    let clock = Arc::new(ManualClock::new());
    let attempts = Attempts::default();
    let ran = run_with(
        kind,
        Pool::builder()
            .workers(1)
            .continue_on_error()
            .layer(exact_retry(ATTEMPTS, &clock).retry_on::<StoreError>())
            .layer(
                Timeout::new(Duration::from_secs(60))
                    .unwrap()
                    .clock(clock.clone()),
            )
            .layer(Recovery::new()),
        mixed_worker(&attempts),
        0..5,
        |builder, work| builder.build(work),
    );
    let attempts: Vec<u32> = (0..5).map(|item| attempts.of(item)).collect();
    assert_eq!(attempts, [ATTEMPTS, ATTEMPTS, 1, 1, 1]);
    let report = &ran.report;
    assert_eq!((report.processed(), report.failed()), (1, 4));
    assert_eq!(
        report.stats().counters.get(DEFAULT_RETRY_COUNTER),
        u64::from(2 * (ATTEMPTS - 1))
    );
    // The retried ones gave up; the others passed through unchanged.
    let errors = middleware_errors(report);
    assert!(matches!(
        errors.as_slice(),
        [
            MiddlewareError::RetriesExhausted {
                attempts: ATTEMPTS,
                ..
            },
            MiddlewareError::RetriesExhausted {
                attempts: ATTEMPTS,
                ..
            },
            MiddlewareError::Worker(_),
            MiddlewareError::Worker(_),
        ]
    ));
    assert_eq!(errors[2].to_string(), "no answer");
    assert_eq!(errors[3].to_string(), "malformed row");
}

#[rstest]
#[case::the_io_errors(true)]
#[case::the_store_errors(false)]
fn retry_on_picks_one_type_among_plain_worker_errors(#[case] retry_io: bool) {
    // The worker returns its own `Result<(), Failure>`, no anyhow: item 0 an
    // `io::Error` inside it, item 1 a `StoreError` inside it.
    #[derive(Debug, thiserror::Error)]
    enum Failure {
        #[error("input")]
        Input(#[source] io::Error),
        #[error("store")]
        Store(#[source] StoreError),
    }
    let clock = Arc::new(ManualClock::new());
    let attempts = Attempts::default();
    let worker_attempts = attempts.clone();
    let retry = exact_retry(ATTEMPTS, &clock);
    let retry = if retry_io {
        retry.retry_on::<io::Error>()
    } else {
        retry.retry_on::<StoreError>()
    };
    let ran = run!(
        Kind::Stateless,
        Pool::builder().workers(1).continue_on_error(),
        retry,
        move |_ctx: &Ctx, item: u32| -> Result<(), Failure> {
            worker_attempts.record(item);
            Err(if item == 0 {
                Failure::Input(io::Error::other("unreadable"))
            } else {
                Failure::Store(StoreError::Busy)
            })
        },
        0..2,
    );
    let expected = if retry_io {
        [ATTEMPTS, 1]
    } else {
        [1, ATTEMPTS]
    };
    assert_eq!([attempts.of(0), attempts.of(1)], expected);
    assert_eq!(
        ran.report.stats().counters.get(DEFAULT_RETRY_COUNTER),
        u64::from(ATTEMPTS - 1)
    );
}

#[test]
fn the_predicate_sees_the_workers_own_error_not_a_wrapper_around_it() {
    // Under `Timeout` and `Recovery`, `retry_if` gets the worker's error
    // itself: a plain `downcast_ref` finds an error the worker returned as
    // its own type.
    let clock = Arc::new(ManualClock::new());
    let attempts = Attempts::default();
    let worker_attempts = attempts.clone();
    let ran = run_with(
        Kind::Stateless,
        Pool::builder()
            .workers(1)
            .continue_on_error()
            .layer(
                exact_retry(ATTEMPTS, &clock)
                    .retry_if(|error| error.downcast_ref::<io::Error>().is_some()),
            )
            .layer(
                Timeout::new(Duration::from_secs(60))
                    .unwrap()
                    .clock(clock.clone()),
            )
            .layer(Recovery::new()),
        move |_ctx: &Ctx, item: u32| -> io::Result<()> {
            worker_attempts.record(item);
            Err(io::Error::other("flaky"))
        },
        0..1,
        |builder, work| builder.build(work),
    );
    assert_eq!(attempts.of(0), ATTEMPTS);
    let [MiddlewareError::RetriesExhausted { source, .. }] = middleware_errors(&ran.report)[..]
    else {
        panic!(
            "expected the retry to give up, got {:?}",
            ran.report.errors()
        );
    };
    // The last error itself is the source, not a `Worker` around it.
    assert!(source.downcast_ref::<io::Error>().is_some());
}

/// One retry as the hook saw it.
type Seen = (u32, String, Duration);

#[rstest]
fn on_retry_sees_each_retry_with_the_failed_attempt_its_error_and_the_wait(
    #[values(Kind::Stateless, Kind::Stateful)] kind: Kind,
) {
    let clock = Arc::new(ManualClock::new());
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let hook_seen = Arc::clone(&seen);
    let attempts = Attempts::default();
    let worker_attempts = attempts.clone();
    // One worker, so items run in order: item 0 always fails, item 1 fails
    // once, item 2 fails with an error the predicate refuses.
    let ran = run!(
        kind,
        Pool::builder().workers(1).continue_on_error(),
        exact_retry(4, &clock)
            .max_delay(Duration::from_millis(30))
            .retry_on::<StoreError>()
            .on_retry(move |attempt, error, delay| {
                hook_seen
                    .lock()
                    .unwrap()
                    .push((attempt, error.to_string(), delay));
            }),
        move |_ctx: &Ctx, item: u32| -> anyhow::Result<()> {
            let attempt = worker_attempts.record(item);
            match (item, attempt) {
                (0, _) | (1, 1) => Err(anyhow::Error::new(StoreError::Busy)
                    .context(format!("item {item}, attempt {attempt}"))),
                (2, _) => anyhow::bail!("not retried"),
                _ => Ok(()),
            }
        },
        0..3,
    );
    let ms = Duration::from_millis;
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen,
        [
            (1, "item 0, attempt 1".to_owned(), ms(10)),
            (2, "item 0, attempt 2".to_owned(), ms(20)),
            // Capped by `max_delay`.
            (3, "item 0, attempt 3".to_owned(), ms(30)),
            (1, "item 1, attempt 1".to_owned(), ms(10)),
        ]
    );
    assert_eq!([attempts.of(0), attempts.of(1), attempts.of(2)], [4, 2, 1]);
    assert_eq!(clock.sleeps(), [ms(10), ms(20), ms(30), ms(10)]);
    assert_eq!(ran.report.stats().counters.get(DEFAULT_RETRY_COUNTER), 4);
}

#[rstest]
fn the_retry_counter_is_the_workers_own_and_counts_before_each_retry(
    #[values(Kind::Stateless, Kind::Stateful)] kind: Kind,
) {
    // Each attempt reads its worker's own shard: the first sees the retries
    // of earlier items only, each retry one more.
    let clock = Arc::new(ManualClock::new());
    let readings: Arc<Mutex<Vec<(u32, u64)>>> = Arc::default();
    let worker_readings = Arc::clone(&readings);
    let ran = run!(
        kind,
        Pool::builder().workers(1).continue_on_error(),
        exact_retry(ATTEMPTS, &clock),
        move |ctx: &Ctx, item: u32| -> io::Result<()> {
            worker_readings
                .lock()
                .unwrap()
                .push((item, ctx.metrics().get(DEFAULT_RETRY_COUNTER)));
            Err(io::Error::other("always"))
        },
        0..2,
    );
    assert_eq!(
        *readings.lock().unwrap(),
        [(0, 0), (0, 1), (0, 2), (1, 2), (1, 3), (1, 4)]
    );
    assert_eq!(ran.report.stats().counters.get(DEFAULT_RETRY_COUNTER), 4);
}

#[test]
fn the_counter_can_be_renamed_or_left_out() {
    let clock = Arc::new(ManualClock::new());
    let always = |_ctx: &Ctx, _item: u32| -> io::Result<()> { Err(io::Error::other("always")) };
    let renamed = run!(
        Kind::Stateless,
        Pool::builder().workers(2).continue_on_error(),
        exact_retry(ATTEMPTS, &clock).counter_name("store retries"),
        always,
        0..5,
    );
    let counters = &renamed.report.stats().counters;
    assert_eq!(counters.get("store retries"), u64::from(5 * (ATTEMPTS - 1)));
    assert_eq!(counters.get(DEFAULT_RETRY_COUNTER), 0);

    let uncounted = run!(
        Kind::Stateless,
        Pool::builder().workers(2).continue_on_error(),
        exact_retry(ATTEMPTS, &clock).no_counter(),
        always,
        0..5,
    );
    assert_eq!(uncounted.report.failed(), 5);
    assert_eq!(
        uncounted.report.stats().counters.get(DEFAULT_RETRY_COUNTER),
        0
    );
}

#[test]
fn a_retry_cancelled_during_its_wait_is_announced_but_not_counted() {
    // The worker cancels the pool as it fails: the hook hears of the retry
    // before the wait, the wait ends at once, and no retry is made.
    let clock = Arc::new(ManualClock::new());
    let announced: Arc<Mutex<Vec<u32>>> = Arc::default();
    let hook_announced = Arc::clone(&announced);
    let attempts = Attempts::default();
    let worker_attempts = attempts.clone();
    let ran = run!(
        Kind::Stateless,
        Pool::builder().workers(1).continue_on_error(),
        exact_retry(ATTEMPTS, &clock).on_retry(move |attempt, _error, _delay| {
            hook_announced.lock().unwrap().push(attempt);
        }),
        move |ctx: &Ctx, item: u32| -> io::Result<()> {
            worker_attempts.record(item);
            ctx.token().cancel();
            Err(io::Error::other("failing on the way out"))
        },
        0..1,
    );
    assert_eq!(*announced.lock().unwrap(), [1]);
    assert_eq!(attempts.of(0), 1);
    assert_eq!(ran.report.stats().counters.get(DEFAULT_RETRY_COUNTER), 0);
    let errors = middleware_errors(&ran.report);
    let [
        MiddlewareError::RetryCancelled {
            attempts: 1,
            source,
        },
    ] = errors.as_slice()
    else {
        panic!("expected the retry to stop, got {errors:?}");
    };
    assert!(find_error::<io::Error>(&**source).is_some());
}
