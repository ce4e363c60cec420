//! Panics in middleware, not in the worker: in a layer's constructor, in a
//! layer's `work` or `finish` (a custom `Layer` or a `layer_fn`), and in the
//! user hooks the built-ins call (a `Validator` check, a `Recovery` handler, a
//! `Retry` predicate, the `Clock` of `Retry`, `Timeout` and `RateLimiter`).
//! Each is caught by the pool and reported as `PoolError::Panicked` with the
//! right site and message, for shared and stateful workers alike; the worker
//! goes on with the next item, the accounting closes, and a panic under
//! `Timeout` leaves no deadline behind for the next item.
#![allow(clippy::unwrap_used)] // Tests may unwrap: a panic is a test failure.

mod common;

use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Kind, Run, quiet_deliberate_panics, run};
use pool_core::{
    CancelToken, Ctx, Layer, Next, PanicSite, Pool, PoolError, Report, Worker, layer_fn,
};
use pool_middleware::{Clock, RateLimiter, Recovery, Retry, Timeout, Validator};
use rstest::rstest;

const N_ITEMS: u32 = 100;
const N_WORKERS: usize = 2;

/// The report's errors as `(site, message)`, sorted; fails the test on an
/// error that is not a caught panic.
fn panics(report: &Report) -> Vec<(PanicSite, String)> {
    let mut panics: Vec<_> = report
        .errors()
        .iter()
        .map(|error| match error {
            PoolError::Panicked { site, message, .. } => (*site, message.clone()),
            other => panic!("expected only caught panics, got {other}"),
        })
        .collect();
    sort(&mut panics);
    panics
}

/// Sorts `(site, message)` pairs (sites have no order of their own).
fn sort(panics: &mut [(PanicSite, String)]) {
    panics.sort_by_key(|(site, message)| (site.to_string(), message.clone()));
}

fn builder() -> pool_core::Builder<u32> {
    Pool::builder()
        .workers(N_WORKERS)
        .batch_size(8)
        .continue_on_error()
}

fn ok(_ctx: &Ctx, _item: u32) -> std::io::Result<()> {
    Ok(())
}

/// A layer whose constructor panics: each worker thread builds its stack
/// with it, so every thread's maker fails.
struct PanicsWhenBuilt;

impl<W> Layer<W> for PanicsWhenBuilt {
    type Worker = W;
    fn layer(&self, _inner: W) -> W {
        panic!("deliberate panic building the layer")
    }
}

#[rstest]
fn a_panicking_layer_constructor_is_a_maker_panic(
    #[values(Kind::Stateless, Kind::Stateful)] kind: Kind,
) {
    quiet_deliberate_panics();
    let ran = run!(kind, builder(), PanicsWhenBuilt, ok, 0..N_ITEMS);
    let report = &ran.report;
    assert!(report.was_cancelled(), "{report}");
    assert!(report.is_balanced(), "{report}");
    assert_eq!((report.processed(), report.failed()), (0, 0));
    let maker = (
        PanicSite::Maker,
        "deliberate panic building the layer".to_owned(),
    );
    assert_eq!(panics(report), vec![maker; N_WORKERS]);
    assert_eq!(ran.worker_calls(), 0, "no stateful worker ran, or finished");
}

#[rstest]
fn a_panicking_layer_fn_is_a_work_panic_and_the_worker_still_finishes(
    #[values(Kind::Stateless, Kind::Stateful)] kind: Kind,
) {
    quiet_deliberate_panics();
    // A `layer_fn` closure runs per item, so its panic is the item's.
    let flaky = layer_fn(|mut next: Next<'_, u32>, ctx: &Ctx, item: u32| {
        assert!(item % 10 != 3, "deliberate panic in layer_fn on {item}");
        next.work(ctx, item)
    });
    let ran = run!(kind, builder(), flaky, ok, 0..N_ITEMS);
    let report = &ran.report;
    assert!(report.is_balanced(), "{report}");
    assert!(!report.was_cancelled());
    let n_panics = (0..N_ITEMS).filter(|item| item % 10 == 3).count() as u64;
    assert_eq!(
        (report.processed(), report.failed()),
        (u64::from(N_ITEMS) - n_panics, n_panics)
    );
    let mut expected: Vec<_> = (0..N_ITEMS)
        .filter(|item| item % 10 == 3)
        .map(|item| {
            (
                PanicSite::Work,
                format!("deliberate panic in layer_fn on {item}"),
            )
        })
        .collect();
    sort(&mut expected);
    assert_eq!(panics(report), expected);
    if kind == Kind::Stateful {
        // Every worker's `finish` ran under the closure layer.
        assert_eq!(ran.finished.len(), N_WORKERS);
        assert_eq!(ran.worker_calls(), u64::from(N_ITEMS) - n_panics);
    }
}

/// A layer that panics on items ending in 3 before the worker sees them,
/// and in `finish` after forwarding it.
struct Flaky;

struct FlakyWorker<W>(W);

impl<W> Layer<W> for Flaky {
    type Worker = FlakyWorker<W>;
    fn layer(&self, inner: W) -> FlakyWorker<W> {
        FlakyWorker(inner)
    }
}

impl<W: Worker<u32>> Worker<u32> for FlakyWorker<W> {
    type Error = W::Error;
    fn work(&mut self, ctx: &Ctx, item: u32) -> Result<(), W::Error> {
        assert!(item % 10 != 3, "deliberate layer panic on {item}");
        self.0.work(ctx, item)
    }
    fn finish(&mut self, ctx: &Ctx) -> Result<(), W::Error> {
        let outcome = self.0.finish(ctx);
        panic!("deliberate layer panic in finish ({})", outcome.is_ok());
    }
}

#[rstest]
fn a_panicking_layer_is_a_work_or_finish_panic_and_the_worker_goes_on(
    #[values(Kind::Stateless, Kind::Stateful)] kind: Kind,
) {
    quiet_deliberate_panics();
    let ran: Run = run!(kind, builder(), Flaky, ok, 0..N_ITEMS);
    let report = &ran.report;
    assert!(report.is_balanced(), "{report}");
    assert!(!report.was_cancelled());
    let n_panics = (0..N_ITEMS).filter(|item| item % 10 == 3).count() as u64;
    assert_eq!(
        (report.processed(), report.failed()),
        (u64::from(N_ITEMS) - n_panics, n_panics)
    );
    let mut expected: Vec<_> = (0..N_ITEMS)
        .filter(|item| item % 10 == 3)
        .map(|item| (PanicSite::Work, format!("deliberate layer panic on {item}")))
        .collect();
    let finish = (
        PanicSite::Finish,
        "deliberate layer panic in finish (true)".to_owned(),
    );
    expected.extend(vec![finish; N_WORKERS]);
    sort(&mut expected);
    assert_eq!(panics(report), expected);
    if kind == Kind::Stateful {
        // The inner `finish` ran before the layer panicked, and the worker
        // saw every item the layer let through.
        assert_eq!(ran.finished.len(), N_WORKERS);
        assert_eq!(ran.worker_calls(), u64::from(N_ITEMS) - n_panics);
    }
}

/// The built-in layer whose user hook panics.
#[derive(Debug, Clone, Copy)]
enum Hook {
    /// A `Validator` check.
    ValidatorCheck,
    /// A `Recovery` handler, called for a panic the worker raised.
    RecoveryHandler,
    /// A `Retry` predicate, called for an error the worker returned.
    RetryPredicate,
    /// The clock `Retry` sleeps on between attempts.
    RetryClock,
}

/// A clock that panics when slept on.
struct PanickingSleep;

impl Clock for PanickingSleep {
    fn now(&self) -> Instant {
        Instant::now()
    }
    fn sleep(&self, _token: &CancelToken, _duration: Duration) -> bool {
        panic!("deliberate clock panic")
    }
}

/// Item 7 trips the hook: the worker panics on it (for `Recovery`) or fails
/// it (for `Retry`), or the check panics on it.
const TRIGGER: u32 = 7;

fn trips(_ctx: &Ctx, item: u32) -> std::io::Result<()> {
    if item == TRIGGER {
        return Err(std::io::Error::other("the trigger fails"));
    }
    Ok(())
}

fn panics_on_trigger(_ctx: &Ctx, item: u32) -> std::io::Result<()> {
    assert!(item != TRIGGER, "deliberate worker panic");
    Ok(())
}

#[rstest]
fn a_panicking_hook_of_a_built_in_layer_is_a_work_panic(
    #[values(
        Hook::ValidatorCheck,
        Hook::RecoveryHandler,
        Hook::RetryPredicate,
        Hook::RetryClock
    )]
    hook: Hook,
    #[values(Kind::Stateless, Kind::Stateful)] kind: Kind,
) {
    quiet_deliberate_panics();
    let retry = || Retry::new(3, Duration::from_millis(1)).expect("valid retry");
    let (ran, message) = match hook {
        Hook::ValidatorCheck => (
            run!(
                kind,
                builder(),
                Validator::new(|item: &u32| {
                    assert!(*item != TRIGGER, "deliberate check panic");
                    Ok(())
                }),
                ok,
                0..N_ITEMS,
            ),
            "deliberate check panic",
        ),
        Hook::RecoveryHandler => (
            run!(
                kind,
                builder(),
                Recovery::new()
                    .on_panic(|message| panic!("deliberate handler panic after: {message}")),
                panics_on_trigger,
                0..N_ITEMS,
            ),
            "deliberate handler panic after: deliberate worker panic",
        ),
        Hook::RetryPredicate => (
            run!(
                kind,
                builder(),
                retry().retry_if(|_error| panic!("deliberate predicate panic")),
                trips,
                0..N_ITEMS,
            ),
            "deliberate predicate panic",
        ),
        Hook::RetryClock => (
            run!(
                kind,
                builder(),
                retry().clock(Arc::new(PanickingSleep)),
                trips,
                0..N_ITEMS,
            ),
            "deliberate clock panic",
        ),
    };
    let report = &ran.report;
    assert!(report.is_balanced(), "{report}");
    assert_eq!(
        (report.processed(), report.failed()),
        (u64::from(N_ITEMS) - 1, 1)
    );
    assert_eq!(panics(report), [(PanicSite::Work, message.to_owned())]);
    if kind == Kind::Stateful {
        // Every worker survived to its `finish`.
        assert_eq!(ran.finished.len(), N_WORKERS);
    }
}

/// A clock whose `now` panics on one chosen call (counted over all threads).
struct PanicsOnCall {
    calls: AtomicU64,
    panic_on: u64,
}

impl Clock for PanicsOnCall {
    fn now(&self) -> Instant {
        let call = self.calls.fetch_add(1, SeqCst);
        assert!(
            call != self.panic_on,
            "deliberate clock panic on call {call}"
        );
        Instant::now()
    }
    fn sleep(&self, token: &CancelToken, duration: Duration) -> bool {
        token.wait_timeout(duration)
    }
}

#[rstest]
fn a_panicking_clock_fails_one_item_and_leaves_the_layer_working(
    #[values(true, false)] rate_limiter: bool,
) {
    quiet_deliberate_panics();
    let clock = Arc::new(PanicsOnCall {
        calls: AtomicU64::new(0),
        panic_on: 10,
    });
    let builder = builder().workers(1);
    let ran = if rate_limiter {
        // A rate far above what the test reaches: no call ever waits.
        let limiter = RateLimiter::new(1e9, 1_000)
            .expect("valid limiter")
            .clock(clock.clone());
        run!(Kind::Stateless, builder, limiter, ok, 0..N_ITEMS)
    } else {
        let timeout = Timeout::new(Duration::from_secs(3_600))
            .expect("valid timeout")
            .clock(clock.clone());
        run!(Kind::Stateless, builder, timeout, ok, 0..N_ITEMS)
    };
    let report = &ran.report;
    assert!(report.is_balanced(), "{report}");
    assert_eq!(
        (report.processed(), report.failed()),
        (u64::from(N_ITEMS) - 1, 1)
    );
    assert_eq!(
        panics(report),
        [(
            PanicSite::Work,
            "deliberate clock panic on call 10".to_owned()
        )]
    );
    // The layer kept reading its clock for every later item: once per item
    // for the rate limiter, twice (start and end) for the timeout, whose
    // start reading panicked for one item.
    let expected_calls = if rate_limiter {
        u64::from(N_ITEMS)
    } else {
        2 * u64::from(N_ITEMS) - 1
    };
    assert_eq!(clock.calls.load(SeqCst), expected_calls);
}

#[test]
fn a_panic_under_timeout_leaves_no_deadline_for_the_next_item() {
    quiet_deliberate_panics();
    // Deadlines seen outside the `Timeout` layer, where there should be none.
    let stale = Arc::new(Mutex::new(Vec::new()));
    let outside = Arc::clone(&stale);
    let inside_without = Arc::new(AtomicU64::new(0));
    let worker_inside = Arc::clone(&inside_without);
    let pool = Pool::builder()
        .workers(1)
        .batch_size(1)
        .continue_on_error()
        .layer(layer_fn(
            move |mut next: Next<'_, u32>, ctx: &Ctx, item: u32| {
                if ctx.deadline().is_some() {
                    outside.lock().unwrap().push(item);
                }
                next.work(ctx, item)
            },
        ))
        .layer(Timeout::new(Duration::from_secs(3_600)).expect("valid timeout"))
        .build(move |ctx: &Ctx, item: u32| {
            if ctx.deadline().is_none() {
                worker_inside.fetch_add(1, SeqCst);
            }
            assert!(item % 4 != 1, "deliberate panic under a deadline on {item}");
            Ok::<(), std::io::Error>(())
        })
        .expect("valid settings");
    common::submit(&pool, 0..20);
    let report = pool.join();
    assert!(report.is_balanced(), "{report}");
    assert_eq!((report.processed(), report.failed()), (15, 5));
    assert_eq!(
        inside_without.load(SeqCst),
        0,
        "the worker always runs under the deadline"
    );
    assert!(
        stale.lock().unwrap().is_empty(),
        "items that saw a deadline left by an earlier panic: {:?}",
        stale.lock().unwrap()
    );
    assert_eq!(panics(&report).len(), 5);
}

#[rstest]
fn a_panic_passes_through_retry_without_a_second_attempt(
    #[values(Kind::Stateless, Kind::Stateful)] kind: Kind,
) {
    quiet_deliberate_panics();
    let attempts = Arc::new(AtomicU64::new(0));
    let counted = Arc::clone(&attempts);
    let ran = run!(
        kind,
        builder(),
        Retry::new(5, Duration::from_millis(1)).expect("valid retry"),
        move |_ctx: &Ctx, item: u32| {
            if item == TRIGGER {
                counted.fetch_add(1, SeqCst);
                panic!("deliberate panic inside retry");
            }
            Ok::<(), std::io::Error>(())
        },
        0..N_ITEMS,
    );
    let report = &ran.report;
    assert!(report.is_balanced(), "{report}");
    assert_eq!(
        (report.processed(), report.failed()),
        (u64::from(N_ITEMS) - 1, 1)
    );
    assert_eq!(
        panics(report),
        [(PanicSite::Work, "deliberate panic inside retry".to_owned())]
    );
    // Retry retries errors; a panic is not one (Recovery inside it would make
    // it one), so the item had exactly one attempt.
    assert_eq!(attempts.load(SeqCst), 1);
}
