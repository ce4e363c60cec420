//! `Validator`: rejects an item before the worker sees it.

use std::fmt;
use std::sync::Arc;

use pool_core::{Ctx, Layer, Worker};

use crate::MiddlewareError;

/// A check [`Validator`] runs on each item: `Ok(())` lets it through, `Err`
/// says why not.
///
/// Closures `Fn(&T) -> Result<(), String>` implement it, and so does the
/// [`Predicate`] that [`Validator::predicate`] builds; implement it on your
/// own type for a reusable check (a schema, a set of allowed values).
pub trait Check<T>: Send + Sync {
    /// Checks `item`; `Err(reason)` rejects it.
    fn check(&self, item: &T) -> Result<(), String>;
}

impl<T, F> Check<T> for F
where
    F: Fn(&T) -> Result<(), String> + Send + Sync,
{
    #[inline]
    fn check(&self, item: &T) -> Result<(), String> {
        self(item)
    }
}

/// A `bool` check with a fixed reason for rejections; built by
/// [`Validator::predicate`].
pub struct Predicate<P> {
    accept: P,
    reason: String,
}

impl<P> fmt::Debug for Predicate<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Predicate")
            .field("reason", &self.reason)
            .finish_non_exhaustive()
    }
}

impl<T, P> Check<T> for Predicate<P>
where
    P: Fn(&T) -> bool + Send + Sync,
{
    #[inline]
    fn check(&self, item: &T) -> Result<(), String> {
        if (self.accept)(item) {
            Ok(())
        } else {
            Err(self.reason.clone())
        }
    }
}

/// Checks each item before the worker: a rejected item fails with
/// [`MiddlewareError::Invalid`] and the worker is not called.
///
/// The check is shared by every worker thread (behind an `Arc`), so it must
/// be `Send + Sync`; it runs on the worker's thread, per item. Submitting
/// only valid items is cheaper still: the check costs a worker's time that a
/// producer could have spent; use `Validator` when the pool is the place
/// where items are trusted or not.
///
/// ```
/// use pool_core::{Ctx, Pool};
/// use pool_middleware::Validator;
///
/// let pool = Pool::builder()
///     .workers(2)
///     .continue_on_error()
///     .layer(Validator::new(|line: &String| {
///         if line.is_empty() { Err("empty line".to_owned()) } else { Ok(()) }
///     }))
///     .layer(Validator::predicate("longer than 80 characters", |line: &String| line.len() <= 80))
///     .build(|_ctx: &Ctx, _line: String| Ok::<(), std::io::Error>(()))?;
/// let mut submitter = pool.submitter();
/// for line in ["a", "", "b", &"x".repeat(81)] {
///     submitter.submit(line.to_owned())?;
/// }
/// drop(submitter);
/// let report = pool.join();
/// assert_eq!((report.processed(), report.failed()), (2, 2));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "a middleware does nothing until it is added with `.layer(..)`"]
pub struct Validator<C> {
    check: Arc<C>,
}

impl<C> Validator<C> {
    /// Rejects the items `check` returns `Err(reason)` for.
    pub fn new<T>(check: C) -> Self
    where
        C: Fn(&T) -> Result<(), String> + Send + Sync + 'static,
    {
        Self::from_check(check)
    }

    /// Uses any [`Check`] implementation.
    pub fn from_check(check: C) -> Self {
        Validator {
            check: Arc::new(check),
        }
    }
}

impl<P> Validator<Predicate<P>> {
    /// Rejects the items `accept` returns `false` for, with `reason` as the
    /// reason.
    pub fn predicate<T>(reason: impl Into<String>, accept: P) -> Self
    where
        P: Fn(&T) -> bool + Send + Sync + 'static,
    {
        Self::from_check(Predicate {
            accept,
            reason: reason.into(),
        })
    }
}

impl<C> Clone for Validator<C> {
    fn clone(&self) -> Self {
        Validator {
            check: Arc::clone(&self.check),
        }
    }
}

impl<C> fmt::Debug for Validator<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Validator").finish_non_exhaustive()
    }
}

impl<W, C> Layer<W> for Validator<C> {
    type Worker = ValidatorWorker<W, C>;

    fn layer(&self, inner: W) -> ValidatorWorker<W, C> {
        ValidatorWorker {
            inner,
            check: Arc::clone(&self.check),
        }
    }
}

/// The worker [`Validator`] wraps around each worker thread's stack.
pub struct ValidatorWorker<W, C> {
    inner: W,
    check: Arc<C>,
}

impl<W, C> fmt::Debug for ValidatorWorker<W, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ValidatorWorker").finish_non_exhaustive()
    }
}

impl<T, W: Worker<T>, C: Check<T>> Worker<T> for ValidatorWorker<W, C> {
    type Error = MiddlewareError;

    #[inline]
    fn work(&mut self, ctx: &Ctx, item: T) -> Result<(), MiddlewareError> {
        if let Err(reason) = self.check.check(&item) {
            return Err(MiddlewareError::Invalid { reason });
        }
        self.inner
            .work(ctx, item)
            .map_err(MiddlewareError::from_inner)
    }

    fn finish(&mut self, ctx: &Ctx) -> Result<(), MiddlewareError> {
        self.inner.finish(ctx).map_err(MiddlewareError::from_inner)
    }
}
