//! `Timeout`: a deadline for each call, and a late result turned into an error.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use pool_core::{Ctx, Layer, Worker};

use crate::{Clock, MiddlewareError, MiddlewareSettingError, SystemClock};

/// Gives each call a time limit: sets the call's deadline in its [`Ctx`] and
/// turns a call that returns at or after the deadline into
/// [`MiddlewareError::TimedOut`].
///
/// # It cannot stop a running call
///
/// A thread cannot be pre-empted: `Timeout` does not interrupt the worker, and
/// a worker that never looks runs to its end, however long that takes. What
/// it does:
///
/// - inside the call, [`ctx.deadline()`](Ctx::deadline) is the deadline and
///   [`ctx.is_cancelled()`](Ctx::is_cancelled) turns `true` once it has
///   passed, so a worker that polls either between steps (or hands the
///   deadline to a socket or a database driver) can stop early;
/// - when the call returns late, its result is discarded and the item fails
///   with `TimedOut` (the call's own error, if any, as the source). Whatever
///   the call did, it did: a late success has still had its effects.
///
/// Nested timeouts keep the earlier deadline in `Ctx`; each still measures its
/// own limit.
///
/// # Clocks
///
/// The deadline is `clock.now() + limit` and lateness is judged by the same
/// clock (default [`SystemClock`]). With a [`ManualClock`](crate::ManualClock)
/// the deadline in `Ctx` is in virtual time, but
/// [`Ctx::is_cancelled`] compares it with the system clock, so in such tests
/// judge lateness by the manual clock (as `Timeout` does), not by
/// `ctx.is_cancelled()`.
///
/// ```
/// use pool_core::{Ctx, Pool};
/// use pool_middleware::Timeout;
/// use std::time::Duration;
///
/// let pool = Pool::builder()
///     .workers(1)
///     .layer(Timeout::new(Duration::from_secs(30))?)
///     .build(|ctx: &Ctx, rows: u32| -> anyhow::Result<()> {
///         for _row in 0..rows {
///             anyhow::ensure!(!ctx.is_cancelled(), "out of time"); // poll between steps
///             // ... one row's work ...
///         }
///         Ok(())
///     })?;
/// pool.submitter().submit(1_000)?;
/// assert_eq!(pool.wait()?.processed(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
#[must_use = "a middleware does nothing until it is added with `.layer(..)`"]
pub struct Timeout {
    limit: Duration,
    clock: Arc<dyn Clock>,
}

impl Timeout {
    /// Calls get `limit` each.
    ///
    /// # Errors
    ///
    /// [`MiddlewareSettingError::ZeroLimit`] if `limit` is zero.
    pub fn new(limit: Duration) -> Result<Self, MiddlewareSettingError> {
        if limit.is_zero() {
            return Err(MiddlewareSettingError::ZeroLimit);
        }
        Ok(Timeout {
            limit,
            clock: Arc::new(SystemClock),
        })
    }

    /// The clock that sets the deadline and judges lateness (default
    /// [`SystemClock`]).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }
}

impl fmt::Debug for Timeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timeout")
            .field("limit", &self.limit)
            .finish_non_exhaustive()
    }
}

impl<W> Layer<W> for Timeout {
    type Worker = TimeoutWorker<W>;

    fn layer(&self, inner: W) -> TimeoutWorker<W> {
        TimeoutWorker {
            inner,
            limit: self.limit,
            clock: Arc::clone(&self.clock),
        }
    }
}

/// The worker [`Timeout`] wraps around each worker thread's stack.
pub struct TimeoutWorker<W> {
    inner: W,
    limit: Duration,
    clock: Arc<dyn Clock>,
}

impl<W> fmt::Debug for TimeoutWorker<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimeoutWorker")
            .field("limit", &self.limit)
            .finish_non_exhaustive()
    }
}

impl<T, W: Worker<T>> Worker<T> for TimeoutWorker<W> {
    type Error = MiddlewareError;

    #[inline]
    fn work(&mut self, ctx: &Ctx, item: T) -> Result<(), MiddlewareError> {
        let started = self.clock.now();
        let outcome = match started.checked_add(self.limit) {
            Some(deadline) => ctx.with_deadline(deadline, || self.inner.work(ctx, item)),
            // A limit past what `Instant` can hold is no limit at all.
            None => {
                return self
                    .inner
                    .work(ctx, item)
                    .map_err(MiddlewareError::from_inner);
            }
        };
        let elapsed = self.clock.now().saturating_duration_since(started);
        if elapsed >= self.limit {
            return Err(MiddlewareError::TimedOut {
                limit: self.limit,
                elapsed,
                source: outcome.err().map(MiddlewareError::unwrap_inner),
            });
        }
        outcome.map_err(MiddlewareError::from_inner)
    }

    fn finish(&mut self, ctx: &Ctx) -> Result<(), MiddlewareError> {
        self.inner.finish(ctx).map_err(MiddlewareError::from_inner)
    }
}
