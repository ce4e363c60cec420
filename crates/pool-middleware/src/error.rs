//! The errors of the built-in middleware: what a wrapped call can fail with,
//! and which setting a constructor refused.

use std::error::Error;
use std::sync::Once;
use std::time::Duration;

use pool_core::{BoxError, Interrupted, PanicPayload, SeeThrough, box_error};

/// Why a call through a built-in middleware failed.
///
/// Every built-in wrapper returns this type; the wrapped worker's own errors
/// pass through as [`MiddlewareError::Worker`]. An inner built-in's error is
/// passed on as it is, never wrapped in `Worker`; only `Retry` and `Timeout`
/// keep an inner error, as the `source` of the error they add (the worker's
/// own error there, not a `Worker` around it). The pool reports it as the
/// source of a [`PoolError::Worker`](pool_core::PoolError::Worker), where
/// `downcast_ref::<MiddlewareError>()` finds it.
///
/// # Finding the worker's error
///
/// To ask "is there an `E` in here?" use [`find`](MiddlewareError::find) (or
/// [`PoolError::find`](pool_core::PoolError::find) on the pool's error, or
/// [`pool_core::find_error`] on any error): it looks through `Worker`, the
/// sources of `RetriesExhausted`, `RetryCancelled` and `TimedOut`, and an
/// `anyhow::Error` the worker returned. A plain `downcast_ref` on the chain
/// of sources misses the error inside `Worker`: that variant is
/// `#[error(transparent)]` (its message is the worker's, unchanged, so a
/// chain report does not print it twice), and its `source()` is the worker
/// error's source, not the worker error itself.
///
/// `MiddlewareError` implements [`SeeThrough`] for that, and registers
/// itself with [`pool_core::see_through`] (which pool-core's search reads:
/// pool-core cannot name this type) before this crate makes its first
/// `Worker` value and whenever [`find`](MiddlewareError::find) runs. A
/// `Worker` value you build yourself is seen through by `pool_core`'s
/// search once either has happened; `MiddlewareError::find` always sees
/// through it.
///
/// ```
/// use pool_core::{Ctx, Pool};
/// use pool_middleware::{Recovery, Retry, Timeout};
/// use std::time::Duration;
///
/// #[derive(Debug, thiserror::Error)]
/// #[error("the store is busy")]
/// struct Busy;
///
/// let pool = Pool::builder()
///     .workers(1)
///     .layer(Retry::new(2, Duration::ZERO)?)
///     .layer(Timeout::new(Duration::from_secs(60))?)
///     .layer(Recovery::new())
///     .build(|_ctx: &Ctx, _n: u32| -> anyhow::Result<()> { Err(Busy.into()) })?;
/// pool.submitter().submit(1)?;
/// let error = pool.wait().unwrap_err();
/// // Retry's `RetriesExhausted`, Timeout's and Recovery's `Worker`, anyhow:
/// assert!(error.find::<Busy>().is_some());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MiddlewareError {
    /// The wrapped worker's own error, unchanged (its `Display` and `source`
    /// are the worker's; [`find`](MiddlewareError::find) looks inside).
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
        /// The panic payload itself: downcast it to the value given to
        /// `panic!` or [`std::panic::panic_any`], or re-raise it.
        payload: PanicPayload,
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
    /// The pool counts the item as interrupted (a part of dropped), like an
    /// item stopped by [`Ctx::check`](pool_core::Ctx::check): the search
    /// ([`find`](MiddlewareError::find), [`pool_core::Interrupted::is_in`])
    /// finds an [`Interrupted`] in it.
    #[error("cancelled while waiting for the rate limiter")]
    Cancelled,
}

impl MiddlewareError {
    /// Finds an `E` in this error: the worker's own error (inside
    /// [`Worker`](MiddlewareError::Worker), or the source of
    /// `RetriesExhausted`, `RetryCancelled` or `TimedOut`), its sources,
    /// and inside an `anyhow::Error` the worker returned. The first found,
    /// outermost first; `self` itself if it is an `E`. The search is
    /// [`pool_core::find_error`]'s.
    ///
    /// ```
    /// use pool_core::BoxError;
    /// use pool_middleware::MiddlewareError;
    /// use std::io;
    ///
    /// let error = MiddlewareError::Worker(Box::new(io::Error::other("disk full")));
    /// // `source()` is the io::Error's source (none): a chain walk misses it.
    /// assert!(std::error::Error::source(&error).is_none());
    /// assert_eq!(error.find::<io::Error>().map(io::Error::kind), Some(io::ErrorKind::Other));
    /// ```
    pub fn find<E>(&self) -> Option<&E>
    where
        E: Error + Send + Sync + 'static,
    {
        register();
        pool_core::find_error(self)
    }

    /// Wraps a worker's error, or passes an inner middleware's error on as it
    /// is so stacks do not nest `Worker(MiddlewareError)`. Boxes with
    /// [`box_error`], so an `anyhow::Error` stays searchable. Error path
    /// only: the downcast costs nothing on success.
    #[cold]
    #[inline(never)]
    pub(crate) fn from_inner(error: impl Into<BoxError> + 'static) -> Self {
        match box_error(error).downcast::<MiddlewareError>() {
            Ok(own) => *own,
            Err(other) => {
                register();
                MiddlewareError::Worker(other)
            }
        }
    }

    /// An inner worker's error, boxed with [`box_error`], as the error
    /// itself: a `Worker` around it is taken off (the worker's own error is
    /// what a retry predicate and the `source` of `RetriesExhausted` or
    /// `TimedOut` should show). Error path only.
    #[cold]
    #[inline(never)]
    pub(crate) fn unwrap_inner(error: impl Into<BoxError> + 'static) -> BoxError {
        let boxed = box_error(error);
        if !matches!(
            boxed.downcast_ref::<MiddlewareError>(),
            Some(MiddlewareError::Worker(_))
        ) {
            return boxed;
        }
        match boxed.downcast::<MiddlewareError>() {
            Ok(own) => match *own {
                MiddlewareError::Worker(inner) => inner,
                other => Box::new(other),
            },
            Err(other) => other,
        }
    }
}

impl SeeThrough for MiddlewareError {
    /// The worker's own error inside [`Worker`](MiddlewareError::Worker);
    /// `None` for the other variants, whose `source` shows what they hold.
    fn wrapped(&self) -> Option<&(dyn Error + 'static)> {
        /// What a rate limiter cancelled by the pool stands for: the item
        /// was interrupted by the shutdown, so the pool counts it as
        /// interrupted, not failed.
        static INTERRUPTED: Interrupted = Interrupted::new();
        match self {
            MiddlewareError::Worker(inner) => Some(&**inner),
            MiddlewareError::Cancelled => Some(&INTERRUPTED),
            _ => None,
        }
    }
}

/// Registers [`MiddlewareError`] with pool-core's search, once per process.
pub(crate) fn register() {
    static REGISTERED: Once = Once::new();
    REGISTERED.call_once(pool_core::see_through::<MiddlewareError>);
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
