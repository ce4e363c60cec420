//! `Recovery`: a panic in the worker becomes an error for that item.

use std::any::Any;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use pool_core::__private::panic_message;
use pool_core::{Ctx, Layer, Worker};

use crate::MiddlewareError;

type OnPanic = dyn Fn(&str) + Send + Sync;

/// Catches a panic in the wrapped worker, calls the
/// [`on_panic`](Recovery::on_panic) handler (if any) with the panic message,
/// and fails the item with [`MiddlewareError::Panicked`]. The worker thread
/// and the worker itself carry on with the next item.
///
/// The pool catches panics by itself too, and reports them as
/// [`PoolError::Panicked`](pool_core::PoolError::Panicked); what `Recovery`
/// adds is a handler (log, count, alert), and a panic that is an ordinary
/// item error to everything outside it. Under the pool's default
/// stop-on-error policy that error still cancels the pool; with
/// `continue_on_error` the run goes on. Layers outside `Recovery` see the
/// error, so `.layer(retry).layer(Recovery::new())` retries panics.
///
/// Panics in the worker's `finish` hook are caught the same way.
///
/// Caveats:
/// - The worker is used again after it panicked (as the pool does without
///   `Recovery`). A stateful worker whose state a panic can leave broken
///   should repair it, or not be wrapped.
/// - The panic hook still runs: the default hook prints each panic to stderr.
///   Silencing it is the program's choice (`std::panic::set_hook`), not a
///   middleware's.
/// - A panic in the handler itself is not caught here; the pool catches and
///   reports it.
///
/// ```
/// use pool_core::{Ctx, Pool};
/// use pool_middleware::Recovery;
/// use std::sync::atomic::{AtomicU32, Ordering};
/// use std::sync::Arc;
///
/// let panics = Arc::new(AtomicU32::new(0));
/// let seen = Arc::clone(&panics);
/// let pool = Pool::builder()
///     .workers(2)
///     .continue_on_error()
///     .layer(Recovery::new().on_panic(move |_message| {
///         seen.fetch_add(1, Ordering::Relaxed);
///     }))
///     .build(|_ctx: &Ctx, n: u32| {
///         assert!(n != 3, "three is right out");
///         Ok::<(), std::io::Error>(())
///     })?;
/// let mut submitter = pool.submitter();
/// for n in 0..5 { submitter.submit(n)?; }
/// drop(submitter);
/// let report = pool.join();
/// assert_eq!((report.processed(), report.failed()), (4, 1));
/// assert_eq!(panics.load(Ordering::Relaxed), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Default)]
#[must_use = "a middleware does nothing until it is added with `.layer(..)`"]
pub struct Recovery {
    on_panic: Option<Arc<OnPanic>>,
}

impl Recovery {
    /// Catches panics; no handler.
    pub fn new() -> Self {
        Self::default()
    }

    /// Calls `handler` with the panic message of every caught panic, on the
    /// worker's thread, before the item fails.
    pub fn on_panic(mut self, handler: impl Fn(&str) + Send + Sync + 'static) -> Self {
        self.on_panic = Some(Arc::new(handler));
        self
    }

    /// The error for a caught panic, after the handler has seen it.
    fn caught(on_panic: Option<&OnPanic>, payload: &(dyn Any + Send)) -> MiddlewareError {
        let message = panic_message(payload);
        if let Some(handler) = on_panic {
            handler(&message);
        }
        MiddlewareError::Panicked { message }
    }
}

impl fmt::Debug for Recovery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Recovery")
            .field("on_panic", &self.on_panic.is_some())
            .finish()
    }
}

impl<W> Layer<W> for Recovery {
    type Worker = RecoveryWorker<W>;

    fn layer(&self, inner: W) -> RecoveryWorker<W> {
        RecoveryWorker {
            inner,
            on_panic: self.on_panic.clone(),
        }
    }
}

/// The worker [`Recovery`] wraps around each worker thread's stack.
pub struct RecoveryWorker<W> {
    inner: W,
    on_panic: Option<Arc<OnPanic>>,
}

impl<W> fmt::Debug for RecoveryWorker<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecoveryWorker").finish_non_exhaustive()
    }
}

impl<T, W: Worker<T>> Worker<T> for RecoveryWorker<W> {
    type Error = MiddlewareError;

    #[inline]
    fn work(&mut self, ctx: &Ctx, item: T) -> Result<(), MiddlewareError> {
        // Unwind safety: the worker is reused after a panic, as documented.
        match catch_unwind(AssertUnwindSafe(|| self.inner.work(ctx, item))) {
            Ok(outcome) => outcome.map_err(MiddlewareError::from_inner),
            Err(payload) => Err(Recovery::caught(self.on_panic.as_deref(), &*payload)),
        }
    }

    fn finish(&mut self, ctx: &Ctx) -> Result<(), MiddlewareError> {
        match catch_unwind(AssertUnwindSafe(|| self.inner.finish(ctx))) {
            Ok(outcome) => outcome.map_err(MiddlewareError::from_inner),
            Err(payload) => Err(Recovery::caught(self.on_panic.as_deref(), &*payload)),
        }
    }
}
