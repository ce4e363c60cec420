//! `find::<E>()` finds the worker's own error through every stack of the
//! built-in layers, from every place a program holds the error: the pool's
//! `PoolError` (alone and inside `PoolError::Many`), the `BoxError` source
//! it carries (`pool_core::find_error`) and the `MiddlewareError` that source
//! is (`MiddlewareError::find`). The worker's error is an `anyhow::Error`
//! (made from a typed error with `?`, with `anyhow!`, with a context on top,
//! with an `io::Error` as the typed error's source), a plain `io::Error`, or
//! a thiserror enum; each stack runs with both kinds of pool.
#![allow(clippy::unwrap_used)] // Tests may unwrap: a panic is a test failure.

mod common;

use std::error::Error;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use common::{Kind, Run, run_with};
use pool_core::{Builder, Ctx, Identity, Next, Pool, PoolError, find_error, layer_fn};
use pool_middleware::{
    ManualClock, MiddlewareError, RateLimiter, Recovery, Retry, Timeout, Validator,
};

/// The item every run submits: the worker's error names it.
const ITEM: u32 = 7;
/// The `Timeout` limit of every stack.
const LIMIT: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
enum StoreError {
    #[error("key {0} not found")]
    NotFound(u32),
    #[error("the disk failed")]
    Disk(#[source] io::Error),
}

/// What a search found: the `StoreError`'s message and the `io::Error`'s
/// kind, if any.
type Found = (Option<String>, Option<io::ErrorKind>);

/// How the worker fails, and what a search must find.
#[derive(Debug, Clone, Copy)]
enum Failure {
    /// `Err(StoreError::NotFound(item))?` in a function returning `anyhow::Result`.
    AnyhowFromTyped,
    /// `anyhow!(StoreError::NotFound(item))`.
    AnyhowMacro,
    /// `anyhow::Error::new(StoreError::NotFound(item)).context(..)`.
    AnyhowWithContext,
    /// An anyhow error made from `StoreError::Disk(io_error)`.
    AnyhowWithIoSource,
    /// A plain `io::Error`.
    Io,
    /// The thiserror enum itself.
    Thiserror,
}

impl Failure {
    fn expected(self) -> Found {
        match self {
            Failure::AnyhowFromTyped
            | Failure::AnyhowMacro
            | Failure::AnyhowWithContext
            | Failure::Thiserror => (Some(format!("key {ITEM} not found")), None),
            Failure::AnyhowWithIoSource => (
                Some("the disk failed".to_owned()),
                Some(io::ErrorKind::ConnectionReset),
            ),
            Failure::Io => (None, Some(io::ErrorKind::ConnectionReset)),
        }
    }
}

fn reset() -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionReset, "the peer hung up")
}

fn found(store: Option<&StoreError>, io: Option<&io::Error>) -> Found {
    (store.map(ToString::to_string), io.map(io::Error::kind))
}

/// Every way to search the one error of `ran`, each of which must find what
/// `failure` put there.
fn assert_found(stack: &str, kind: Kind, failure: Failure, ran: Run) {
    let context = format!("{stack}, {kind:?}, {failure:?}");
    let expected = failure.expected();
    let report = ran.report;
    assert_eq!(
        (report.processed(), report.failed()),
        (0, 1),
        "{context}: one item, failed"
    );
    let [error] = report.errors() else {
        panic!("{context}: expected one error, got {:?}", report.errors());
    };
    assert_eq!(
        found(error.find(), error.find()),
        expected,
        "{context}: PoolError::find on {error:?}"
    );
    let as_dyn: &(dyn Error + 'static) = error;
    assert_eq!(
        found(find_error(as_dyn), find_error(as_dyn)),
        expected,
        "{context}: find_error on the PoolError"
    );
    let PoolError::Worker { source, .. } = error else {
        panic!("{context}: expected a worker error, got {error:?}");
    };
    assert_eq!(
        found(find_error(&**source), find_error(&**source)),
        expected,
        "{context}: find_error on the source {source:?}"
    );
    if let Some(middleware) = source.downcast_ref::<MiddlewareError>() {
        assert_eq!(
            found(middleware.find(), middleware.find()),
            expected,
            "{context}: MiddlewareError::find on {middleware:?}"
        );
    }
    // Nothing of another type is found.
    assert!(error.find::<std::fmt::Error>().is_none(), "{context}");
    let many = report.into_result().unwrap_err();
    assert!(
        matches!(many, PoolError::Many { .. }),
        "{context}: {many:?}"
    );
    assert_eq!(
        found(many.find(), many.find()),
        expected,
        "{context}: PoolError::find on Many"
    );
}

/// The base of every stack: one worker, every error kept.
fn base() -> Builder<u32, Identity> {
    Pool::builder().workers(1).continue_on_error()
}

/// A retry that tries 3 times on the manual clock.
fn retry(clock: &Arc<ManualClock>) -> Retry {
    Retry::new(3, Duration::from_millis(1))
        .unwrap()
        .jitter(0.0)
        .unwrap()
        .clock(clock.clone())
}

fn timeout(clock: &Arc<ManualClock>) -> Timeout {
    Timeout::new(LIMIT).unwrap().clock(clock.clone())
}

/// Runs the stack `$builder` (re-evaluated for each run) with every kind of
/// failure and both kinds of pool, and checks every search of each run's
/// error. The worker first advances `$clock` by `$late` (its work's length,
/// for `Timeout`), then fails.
macro_rules! check_stack {
    ($stack:expr, $clock:expr, $late:expr, $builder:expr $(,)?) => {{
        let clock: Arc<ManualClock> = Arc::clone(&$clock);
        let late: Duration = $late;
        for kind in [Kind::Stateless, Kind::Stateful] {
            macro_rules! check {
                ($failure:expr, $work:expr) => {{
                    let clock = Arc::clone(&clock);
                    let work = $work;
                    let ran = run_with(
                        kind,
                        $builder,
                        move |ctx: &Ctx, item: u32| {
                            clock.advance(late);
                            work(ctx, item)
                        },
                        ITEM..ITEM + 1,
                        |builder, work| builder.build(work),
                    );
                    assert_found($stack, kind, $failure, ran);
                }};
            }
            check!(
                Failure::AnyhowFromTyped,
                |_ctx: &Ctx, item: u32| -> anyhow::Result<()> { Err(StoreError::NotFound(item))? }
            );
            check!(Failure::AnyhowMacro, |_ctx: &Ctx,
                                          item: u32|
             -> anyhow::Result<()> {
                Err(anyhow::anyhow!(StoreError::NotFound(item)))
            });
            check!(
                Failure::AnyhowWithContext,
                |_ctx: &Ctx, item: u32| -> anyhow::Result<()> {
                    Err(anyhow::Error::new(StoreError::NotFound(item)).context("looking it up"))
                }
            );
            check!(
                Failure::AnyhowWithIoSource,
                |_ctx: &Ctx, _item: u32| -> anyhow::Result<()> {
                    Err(StoreError::Disk(reset()).into())
                }
            );
            check!(Failure::Io, |_ctx: &Ctx, _item: u32| -> io::Result<()> {
                Err(reset())
            });
            check!(Failure::Thiserror, |_ctx: &Ctx,
                                        item: u32|
             -> Result<(), StoreError> {
                Err(StoreError::NotFound(item))
            });
        }
    }};
}

#[test]
fn no_layer() {
    let clock = Arc::new(ManualClock::new());
    check_stack!("no layer", clock, Duration::ZERO, base());
}

#[test]
fn retry_alone() {
    let clock = Arc::new(ManualClock::new());
    check_stack!("Retry", clock, Duration::ZERO, base().layer(retry(&clock)));
}

#[test]
fn timeout_alone() {
    let clock = Arc::new(ManualClock::new());
    check_stack!(
        "Timeout",
        clock,
        Duration::ZERO,
        base().layer(timeout(&clock))
    );
}

#[test]
fn timeout_alone_with_a_late_failing_call() {
    let clock = Arc::new(ManualClock::new());
    check_stack!(
        "Timeout, late",
        clock,
        LIMIT * 2,
        base().layer(timeout(&clock))
    );
}

#[test]
fn recovery_alone() {
    let clock = Arc::new(ManualClock::new());
    check_stack!(
        "Recovery",
        clock,
        Duration::ZERO,
        base().layer(Recovery::new())
    );
}

#[test]
fn validator_alone() {
    let clock = Arc::new(ManualClock::new());
    check_stack!(
        "Validator",
        clock,
        Duration::ZERO,
        base().layer(Validator::predicate("never refused", |_n: &u32| true))
    );
}

#[test]
fn rate_limiter_alone() {
    let clock = Arc::new(ManualClock::new());
    check_stack!(
        "RateLimiter",
        clock,
        Duration::ZERO,
        base().layer(RateLimiter::new(1_000.0, 100).unwrap().clock(clock.clone()))
    );
}

#[test]
fn retry_around_timeout_around_recovery() {
    let clock = Arc::new(ManualClock::new());
    check_stack!(
        "Retry(Timeout(Recovery))",
        clock,
        Duration::ZERO,
        base()
            .layer(retry(&clock))
            .layer(timeout(&clock))
            .layer(Recovery::new())
    );
}

#[test]
fn retry_around_timeout_around_recovery_with_late_failing_calls() {
    // Each attempt is `TimedOut` with the worker's error as its source; the
    // retry gives up with the last `TimedOut` as its own.
    let clock = Arc::new(ManualClock::new());
    check_stack!(
        "Retry(Timeout(Recovery)), late",
        clock,
        LIMIT * 2,
        base()
            .layer(retry(&clock))
            .layer(timeout(&clock))
            .layer(Recovery::new())
    );
}

#[test]
fn timeout_around_retry() {
    let clock = Arc::new(ManualClock::new());
    check_stack!(
        "Timeout(Retry)",
        clock,
        Duration::ZERO,
        base().layer(timeout(&clock)).layer(retry(&clock))
    );
}

#[test]
fn recovery_around_retry_around_timeout() {
    let clock = Arc::new(ManualClock::new());
    check_stack!(
        "Recovery(Retry(Timeout))",
        clock,
        Duration::ZERO,
        base()
            .layer(Recovery::new())
            .layer(retry(&clock))
            .layer(timeout(&clock))
    );
}

#[test]
fn a_closure_layer_around_the_built_ins() {
    let clock = Arc::new(ManualClock::new());
    check_stack!(
        "layer_fn(Retry(Recovery))",
        clock,
        Duration::ZERO,
        base()
            .layer(layer_fn(|mut next: Next<'_, u32>, ctx: &Ctx, item: u32| {
                next.work(ctx, item)
            }))
            .layer(retry(&clock))
            .layer(Recovery::new())
    );
}

#[test]
fn every_built_in_at_once() {
    let clock = Arc::new(ManualClock::new());
    check_stack!(
        "Validator(RateLimiter(Retry(Recovery(Timeout))))",
        clock,
        Duration::ZERO,
        base()
            .layer(Validator::predicate("never refused", |_n: &u32| true))
            .layer(RateLimiter::new(1_000.0, 100).unwrap().clock(clock.clone()))
            .layer(retry(&clock))
            .layer(Recovery::new())
            .layer(timeout(&clock))
    );
}

#[test]
fn the_built_ins_own_errors_are_found_too() {
    // A timed-out call that succeeded: the `TimedOut` itself is what there
    // is to find, under the retry's `RetriesExhausted`.
    let clock = Arc::new(ManualClock::new());
    let late_clock = Arc::clone(&clock);
    let ran = run_with(
        Kind::Stateless,
        base().layer(retry(&clock)).layer(timeout(&clock)),
        move |_ctx: &Ctx, _item: u32| -> io::Result<()> {
            late_clock.advance(LIMIT);
            Ok(())
        },
        0..1,
        |builder, work| builder.build(work),
    );
    let [error] = ran.report.errors() else {
        panic!("expected one error, got {:?}", ran.report.errors());
    };
    assert!(matches!(
        error.find::<MiddlewareError>(),
        Some(MiddlewareError::RetriesExhausted { attempts: 3, .. })
    ));
    let PoolError::Worker { source, .. } = error else {
        panic!("expected a worker error, got {error:?}");
    };
    let Some(MiddlewareError::RetriesExhausted { source, .. }) =
        source.downcast_ref::<MiddlewareError>()
    else {
        panic!("expected the retry's error, got {source:?}");
    };
    assert!(matches!(
        find_error::<MiddlewareError>(&**source),
        Some(MiddlewareError::TimedOut { source: None, .. })
    ));
    assert!(error.find::<io::Error>().is_none());
}

/// The messages of `error` and its chain of sources.
fn chain(error: &(dyn Error + 'static)) -> Vec<String> {
    let mut chain = vec![error.to_string()];
    let mut next = error.source();
    while let Some(link) = next {
        chain.push(link.to_string());
        next = link.source();
    }
    chain
}

#[test]
fn the_wrappers_add_nothing_to_the_chain_a_reporter_prints() {
    // Seeing through `Worker` and keeping the anyhow error whole change no
    // text: the chain (anyhow's context chain included) reads as it does
    // without any layer.
    fn the_chain(ran: Run) -> Vec<String> {
        let [error] = ran.report.errors() else {
            panic!("expected one error, got {:?}", ran.report.errors());
        };
        chain(error)
    }
    let work = |_ctx: &Ctx, item: u32| -> anyhow::Result<()> {
        Err(anyhow::Error::new(StoreError::NotFound(item)).context("looking it up"))
    };
    let clock = Arc::new(ManualClock::new());
    let layered = run_with(
        Kind::Stateless,
        base().layer(timeout(&clock)).layer(Recovery::new()),
        work,
        ITEM..ITEM + 1,
        |builder, work| builder.build(work),
    );
    let bare = run_with(
        Kind::Stateless,
        base(),
        work,
        ITEM..ITEM + 1,
        |builder, work| builder.build(work),
    );
    let layered = the_chain(layered);
    assert_eq!(layered, the_chain(bare));
    assert_eq!(
        layered[1..],
        ["looking it up".to_owned(), "key 7 not found".to_owned()]
    );
}
