//! The errors of the built-in middleware: what a wrapped call can fail with,
//! and which setting a constructor refused.

use std::time::Duration;

use pool_core::BoxError;

/// Why a call through a built-in middleware failed.
///
/// Every built-in wrapper returns this type; the wrapped worker's own errors
/// pass through as [`MiddlewareError::Worker`]. An inner built-in's error is
/// passed on as it is, never wrapped in `Worker`; only `Retry` and `Timeout`
/// keep it, as the `source` of the error they add. The pool reports it as the
/// source of a [`PoolError::Worker`](pool_core::PoolError::Worker), where
/// `downcast_ref::<MiddlewareError>()` finds it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MiddlewareError {
    /// The wrapped worker's own error, unchanged (its `Display` and `source`
    /// are the worker's).
    #[error(transparent)]
    Worker(BoxError),
    /// [`Retry`](crate::Retry) made every attempt it was allowed and the last
    /// one failed too.
    #[error("gave up after {attempts} attempts: {source}")]
    RetriesExhausted {
        /// How many attempts were made.
        attempts: u32,
        /// The last attempt's error.
        #[source]
        source: BoxError,
    },
    /// The pool was cancelled while [`Retry`](crate::Retry) waited to try
    /// again; it stopped at once.
    #[error("cancelled during the backoff after {attempts} attempts; last error: {source}")]
    RetryCancelled {
        /// How many attempts were made before the cancellation.
        attempts: u32,
        /// The last attempt's error.
        #[source]
        source: BoxError,
    },
    /// The call returned after its [`Timeout`](crate::Timeout)'s limit. Its
    /// result, success or error, was discarded (but whatever it did, it did).
    #[error("the call took {elapsed:?}, over its limit of {limit:?}")]
    TimedOut {
        /// The limit the call had.
        limit: Duration,
        /// How long it took, by the timeout's clock.
        elapsed: Duration,
        /// The call's own error, if it failed as well as being late.
        #[source]
        source: Option<BoxError>,
    },
    /// The wrapped worker panicked; [`Recovery`](crate::Recovery) caught it.
    #[error("the worker panicked: {message}")]
    Panicked {
        /// The panic payload as text (`&str` and `String` payloads; others say so).
        message: String,
    },
    /// A [`Validator`](crate::Validator) rejected the item; the worker never
    /// saw it.
    #[error("invalid item: {reason}")]
    Invalid {
        /// Why the item was rejected.
        reason: String,
    },
    /// The pool was cancelled while the call waited for the
    /// [`RateLimiter`](crate::RateLimiter); the worker never saw the item.
    #[error("cancelled while waiting for the rate limiter")]
    Cancelled,
}

impl MiddlewareError {
    /// Wraps a worker's error, or passes an inner middleware's error on as it
    /// is so stacks do not nest `Worker(MiddlewareError)`. Error path only: the
    /// downcast costs nothing on success.
    pub(crate) fn from_inner(error: impl Into<BoxError>) -> Self {
        match error.into().downcast::<MiddlewareError>() {
            Ok(own) => *own,
            Err(other) => MiddlewareError::Worker(other),
        }
    }
}

/// A middleware setting that cannot work, refused by the constructor or
/// setter it was given to. Each variant names the setting.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum MiddlewareSettingError {
    /// `max_attempts` was 0: a retry must make at least one attempt.
    #[error("`max_attempts` must be at least 1, got 0")]
    ZeroAttempts,
    /// `jitter` was outside `0.0..=1.0` (or NaN).
    #[error("`jitter` must be a fraction in 0.0..=1.0, got {0}")]
    Jitter(f64),
    /// A timeout's `limit` was zero, which would time out every call.
    #[error("`limit` must be more than zero")]
    ZeroLimit,
    /// `rate_per_sec` was zero, negative, NaN, infinite, or so small that
    /// the time between two calls does not fit in a `Duration`.
    #[error("`rate_per_sec` must be a finite number above zero, got {0}")]
    Rate(f64),
    /// `burst` was 0, which would let no call through.
    #[error("`burst` must be at least 1, got 0")]
    ZeroBurst,
}

impl MiddlewareSettingError {
    /// The name of the setting that was refused, as the constructor or
    /// setter calls it.
    pub fn setting(&self) -> &'static str {
        match self {
            MiddlewareSettingError::ZeroAttempts => "max_attempts",
            MiddlewareSettingError::Jitter(_) => "jitter",
            MiddlewareSettingError::ZeroLimit => "limit",
            MiddlewareSettingError::Rate(_) => "rate_per_sec",
            MiddlewareSettingError::ZeroBurst => "burst",
        }
    }
}
