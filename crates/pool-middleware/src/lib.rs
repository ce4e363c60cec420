//! Middleware for `pool-core` workers: retries with backoff, timeouts, panic
//! recovery, validation and a shared rate limit, added with
//! [`Builder::layer`](pool_core::Builder::layer) instead of being written
//! into each worker.
//!
//! **What it is for**: the usual wrappers around a blocking worker on a pool
//! thread, composed statically (each layer's worker is a concrete type the
//! compiler can inline), each with its settings checked when it is made.
//! **What it is not for**: `tower` services or async code, and pre-emptive
//! cancellation: nothing here can stop a call that is running (see
//! [`Timeout`]).
//!
//! # The built-ins
//!
//! | Layer | What it does | Fails an item with |
//! |---|---|---|
//! | [`Retry`] | runs a failed item again, exponential backoff with jitter, optional cap; only errors holding a type ([`retry_on`](Retry::retry_on)) or passing a predicate; an [`on_retry`](Retry::on_retry) hook and a per-worker `retries` counter; needs `T: Clone` | [`RetriesExhausted`](MiddlewareError::RetriesExhausted), [`RetryCancelled`](MiddlewareError::RetryCancelled) |
//! | [`Timeout`] | sets the call's deadline in [`Ctx`](pool_core::Ctx); a late return becomes an error | [`TimedOut`](MiddlewareError::TimedOut) |
//! | [`Recovery`] | catches a panic in the worker, calls a handler with its message and payload | [`Panicked`](MiddlewareError::Panicked), which keeps the payload |
//! | [`Validator`] | checks the item before the worker, which never sees a rejected one | [`Invalid`](MiddlewareError::Invalid) |
//! | [`RateLimiter`] | one token bucket for all workers of the pool | [`Cancelled`](MiddlewareError::Cancelled) (only if cancelled while waiting) |
//!
//! Every built-in's worker returns [`MiddlewareError`]; the wrapped worker's
//! own errors pass through as [`MiddlewareError::Worker`], with their message
//! unchanged, and an inner built-in's error passes through as it is. The pool
//! reports it as the source of a
//! [`PoolError::Worker`](pool_core::PoolError::Worker). To match the
//! worker's own error through any stack, use
//! [`PoolError::find`](pool_core::PoolError::find) (or
//! [`MiddlewareError::find`], [`pool_core::find_error`]): it sees through
//! every built-in wrapper and through `anyhow::Error`.
//!
//! ```
//! use pool_core::{Ctx, Pool, PoolError};
//! use pool_middleware::{MiddlewareError, Validator};
//!
//! let pool = Pool::builder()
//!     .workers(1)
//!     .layer(Validator::predicate("zero", |n: &u32| *n != 0))
//!     .build(|_ctx: &Ctx, _n: u32| Ok::<(), std::io::Error>(()))?;
//! pool.submitter().submit(0)?;
//! match pool.wait() {
//!     Err(PoolError::Worker { source, .. }) => assert!(matches!(
//!         source.downcast_ref::<MiddlewareError>(),
//!         Some(MiddlewareError::Invalid { reason }) if reason == "zero"
//!     )),
//!     other => panic!("expected the validator's error, got {other:?}"),
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Order
//!
//! The first layer added is the outermost: `.layer(a).layer(b)` runs `a`,
//! which calls `b`, which calls the worker. Some orders that matter:
//!
//! - `.layer(retry).layer(timeout)`: each attempt has its own time limit;
//!   `.layer(timeout).layer(retry)`: all attempts share one.
//! - `.layer(retry).layer(Recovery::new())`: panics are retried like errors.
//! - `.layer(validator).layer(retry)`: an invalid item is rejected once, not
//!   retried.
//! - `.layer(rate_limiter).layer(retry)`: one token per item;
//!   `.layer(retry).layer(rate_limiter)`: one per attempt.
//!
//! ```
//! use pool_core::{Ctx, Pool};
//! use pool_middleware::{RateLimiter, Recovery, Retry, Timeout, Validator};
//! use std::time::Duration;
//!
//! let pool = Pool::builder()
//!     .workers(4)
//!     .continue_on_error()
//!     .layer(Validator::predicate("an empty order", |order: &String| !order.is_empty()))
//!     .layer(RateLimiter::new(10_000.0, 100)?)
//!     .layer(Retry::new(3, Duration::from_millis(1))?.max_delay(Duration::from_millis(10)))
//!     .layer(Recovery::new().on_panic(|message| eprintln!("worker panicked: {message}")))
//!     .layer(Timeout::new(Duration::from_secs(5))?)
//!     .build(|_ctx: &Ctx, order: String| -> anyhow::Result<()> {
//!         let _ = order.len(); // ship the order...
//!         Ok(())
//!     })?;
//! let mut submitter = pool.submitter();
//! for order in ["a", "", "b"] {
//!     submitter.submit(order.to_owned())?;
//! }
//! drop(submitter);
//! let report = pool.join();
//! assert_eq!((report.processed(), report.failed()), (2, 1));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Settings
//!
//! Settings are checked where they are given: the constructors, and the one
//! setter that can be wrong ([`Retry::jitter`]), return a
//! [`MiddlewareSettingError`] naming the setting, instead of quietly using a
//! default. Zero attempts, a zero timeout, a rate that is not a finite number
//! above zero and a zero burst are all refused.
//!
//! # Time
//!
//! [`Retry`], [`Timeout`] and [`RateLimiter`] read the time and sleep through
//! a [`Clock`] (default [`SystemClock`]). A [`ManualClock`] makes time
//! virtual, so tests and simulations assert backoff schedules, jitter bounds
//! and rates exactly, without sleeping. Sleeps end at once when the pool is
//! cancelled.
//!
//! # Your own middleware
//!
//! Implement [`Layer`] on a small type whose worker implements
//! [`Worker`](pool_core::Worker) (forward `finish` to the inner worker), or
//! write a closure around each item with [`layer_fn`](pool_core::layer_fn),
//! which forwards `finish` by itself; the [`Layer`] docs show both.

// On docs.rs (`--cfg docsrs`), items behind a feature say which one.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(missing_docs)]

mod clock;
mod error;
mod rate_limit;
mod recovery;
mod retry;
mod timeout;
mod validator;

pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{MiddlewareError, MiddlewareSettingError};
pub use pool_core::{BoxError, Layer, PanicPayload};
pub use rate_limit::{RateLimiter, RateLimiterWorker};
pub use recovery::{Recovery, RecoveryWorker};
pub use retry::{DEFAULT_JITTER, DEFAULT_RETRY_COUNTER, Retry, RetryWorker};
pub use timeout::{Timeout, TimeoutWorker};
pub use validator::{Check, Predicate, Validator, ValidatorWorker};

/// The README's example, run by `cargo test --doc` so it cannot go stale.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
