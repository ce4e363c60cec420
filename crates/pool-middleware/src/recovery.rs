//! `Recovery`: a panic in the worker becomes an error for that item.

use std::any::Any;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use pool_core::__private::panic_message;
use pool_core::{Ctx, Layer, PanicPayload, Worker};

use crate::MiddlewareError;

type OnPanic = dyn Fn(&str, &(dyn Any + Send)) + Send + Sync;

/// Catches a panic in the wrapped worker, calls the
/// [`on_panic`](Recovery::on_panic) (or
/// [`on_panic_payload`](Recovery::on_panic_payload)) handler, if any, with
/// the panic message (and payload), and fails the item with
/// [`MiddlewareError::Panicked`], which keeps the payload. The worker thread
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
    /// worker's thread, before the item fails. Replaces an
    /// [`on_panic_payload`](Recovery::on_panic_payload) handler.
    pub fn on_panic(self, handler: impl Fn(&str) + Send + Sync + 'static) -> Self {
        self.on_panic_payload(move |message, _payload| handler(message))
    }

    /// Calls `handler` with the message and the payload of every caught
    /// panic (the value given to `panic!` or [`std::panic::panic_any`], as
    /// [`std::thread::JoinHandle::join`] would return it), on the worker's
    /// thread, before the item fails. The payload then goes on in the
    /// item's [`MiddlewareError::Panicked`]. Replaces an
    /// [`on_panic`](Recovery::on_panic) handler.
    ///
    /// ```
    /// use pool_core::{Ctx, Pool, PoolError};
    /// use pool_middleware::{MiddlewareError, Recovery};
    /// use std::sync::{Arc, Mutex};
    ///
    /// /// What the worker panics with.
    /// #[derive(Debug)]
    /// struct Poisoned { row: u32 }
    ///
    /// let rows = Arc::new(Mutex::new(Vec::new()));
    /// let seen = Arc::clone(&rows);
    /// let pool = Pool::builder()
    ///     .workers(1)
    ///     .layer(Recovery::new().on_panic_payload(move |_message, payload| {
    ///         if let Some(poisoned) = payload.downcast_ref::<Poisoned>() {
    ///             seen.lock().unwrap().push(poisoned.row);
    ///         }
    ///     }))
    ///     .build(|_ctx: &Ctx, row: u32| -> std::io::Result<()> {
    ///         std::panic::panic_any(Poisoned { row })
    ///     })?;
    /// pool.submitter().submit(4)?;
    /// let Err(PoolError::Worker { mut source, .. }) = pool.wait() else { panic!("expected the item's error") };
    /// assert_eq!(*rows.lock().unwrap(), [4]);
    /// // The payload also travels in the error:
    /// let Some(MiddlewareError::Panicked { payload, .. }) = source.downcast_mut::<MiddlewareError>() else {
    ///     panic!("expected the caught panic")
    /// };
    /// assert_eq!(payload.get_mut().downcast_ref::<Poisoned>().map(|p| p.row), Some(4));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn on_panic_payload(
        mut self,
        handler: impl Fn(&str, &(dyn Any + Send)) + Send + Sync + 'static,
    ) -> Self {
        self.on_panic = Some(Arc::new(handler));
        self
    }

    /// The error for a caught panic, after the handler has seen it.
    #[cold]
    #[inline(never)]
    fn caught(on_panic: Option<&OnPanic>, payload: Box<dyn Any + Send>) -> MiddlewareError {
        let message = panic_message(&*payload);
        if let Some(handler) = on_panic {
            handler(&message, &*payload);
        }
        MiddlewareError::Panicked {
            message,
            payload: PanicPayload::new(payload),
        }
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
            Err(payload) => Err(Recovery::caught(self.on_panic.as_deref(), payload)),
        }
    }

    fn finish(&mut self, ctx: &Ctx) -> Result<(), MiddlewareError> {
        match catch_unwind(AssertUnwindSafe(|| self.inner.finish(ctx))) {
            Ok(outcome) => outcome.map_err(MiddlewareError::from_inner),
            Err(payload) => Err(Recovery::caught(self.on_panic.as_deref(), payload)),
        }
    }
}
