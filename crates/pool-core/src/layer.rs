//! Middleware composition: a [`Layer`] wraps a worker and returns a worker, in
//! the shape of `tower::Layer`.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use crate::{BoxError, Ctx, Worker};

/// Wraps a worker in another worker: retries, timeouts, logging, validation.
///
/// Added with [`Builder::layer`](crate::Builder::layer). Layers compose
/// statically (each wrapped worker is a concrete type), so the compiler can
/// inline the whole stack into the pool's hot loop. Each worker thread gets its
/// own stack, built on that thread around its own worker; state a layer wants
/// shared between threads (a rate limiter's bucket) sits behind an `Arc` inside
/// the layer and is shared on purpose.
///
/// Implement it on a small type for a reusable middleware, or use [`layer_fn`]
/// for a closure.
///
/// ```
/// use pool_core::{BoxError, Ctx, Layer, Pool, Worker};
///
/// /// Counts the items it lets through (per worker thread).
/// struct Counting;
///
/// struct CountingWorker<W> { inner: W, seen: u64 }
///
/// impl<W> Layer<W> for Counting {
///     type Worker = CountingWorker<W>;
///     fn layer(&self, inner: W) -> CountingWorker<W> {
///         CountingWorker { inner, seen: 0 }
///     }
/// }
///
/// impl<T, W: Worker<T>> Worker<T> for CountingWorker<W> {
///     type Error = W::Error;
///     fn work(&mut self, ctx: &Ctx, item: T) -> Result<(), W::Error> {
///         self.seen += 1;
///         ctx.metrics().inc("seen by the counting layer");
///         self.inner.work(ctx, item)
///     }
///     fn finish(&mut self, ctx: &Ctx) -> Result<(), W::Error> {
///         self.inner.finish(ctx)
///     }
/// }
///
/// let pool = Pool::builder()
///     .workers(2)
///     .layer(Counting)
///     .build(|_ctx: &Ctx, _n: u32| Ok::<(), std::io::Error>(()))?;
/// let mut submitter = pool.submitter();
/// for n in 0..10 { submitter.submit(n)?; }
/// drop(submitter);
/// let report = pool.wait()?;
/// assert_eq!(report.stats().counters.get("seen by the counting layer"), 10);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait Layer<W> {
    /// The wrapped worker.
    type Worker;

    /// Wraps `inner`.
    fn layer(&self, inner: W) -> Self::Worker;
}

/// The empty stack: the worker as it is.
#[derive(Debug, Clone, Copy, Default)]
pub struct Identity;

impl<W> Layer<W> for Identity {
    type Worker = W;

    #[inline]
    fn layer(&self, inner: W) -> W {
        inner
    }
}

/// Two layers, `outer` around `inner`. [`Builder::layer`](crate::Builder::layer)
/// builds these, so the first layer added ends up outermost.
#[derive(Debug, Clone, Copy, Default)]
pub struct Stack<Inner, Outer> {
    inner: Inner,
    outer: Outer,
}

impl<Inner, Outer> Stack<Inner, Outer> {
    /// `outer` wrapped around `inner`.
    pub fn new(inner: Inner, outer: Outer) -> Self {
        Stack { inner, outer }
    }
}

impl<W, Inner, Outer> Layer<W> for Stack<Inner, Outer>
where
    Inner: Layer<W>,
    Outer: Layer<Inner::Worker>,
{
    type Worker = Outer::Worker;

    #[inline]
    fn layer(&self, worker: W) -> Self::Worker {
        self.outer.layer(self.inner.layer(worker))
    }
}

/// A worker behind a box, with its error boxed: what a closure middleware
/// ([`layer_fn`]) receives as `next`. One dynamic call per item.
pub struct BoxWorker<T> {
    inner: Box<dyn Worker<T, Error = BoxError>>,
}

impl<T> fmt::Debug for BoxWorker<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoxWorker").finish_non_exhaustive()
    }
}

/// Adapts a worker's error to [`BoxError`].
struct Boxed<W>(W);

impl<T, W: Worker<T>> Worker<T> for Boxed<W> {
    type Error = BoxError;

    #[inline]
    fn work(&mut self, ctx: &Ctx, item: T) -> Result<(), BoxError> {
        self.0.work(ctx, item).map_err(Into::into)
    }

    fn finish(&mut self, ctx: &Ctx) -> Result<(), BoxError> {
        self.0.finish(ctx).map_err(Into::into)
    }
}

impl<T> BoxWorker<T> {
    /// Boxes `worker`.
    pub fn new<W: Worker<T> + 'static>(worker: W) -> Self {
        BoxWorker {
            inner: Box::new(Boxed(worker)),
        }
    }
}

impl<T> Worker<T> for BoxWorker<T> {
    type Error = BoxError;

    #[inline]
    fn work(&mut self, ctx: &Ctx, item: T) -> Result<(), BoxError> {
        self.inner.work(ctx, item)
    }

    fn finish(&mut self, ctx: &Ctx) -> Result<(), BoxError> {
        self.inner.finish(ctx)
    }
}

/// A middleware written as a closure `|next| worker`: it gets the rest of the
/// stack as a [`BoxWorker`] and returns the worker that wraps it. The closure
/// runs once per worker thread; the worker it returns runs per item.
///
/// ```
/// use pool_core::{BoxWorker, Ctx, Pool, Worker, layer_fn};
///
/// let pool = Pool::builder()
///     .workers(2)
///     .layer(layer_fn(|mut next: BoxWorker<String>| {
///         move |ctx: &Ctx, line: String| {
///             let started = std::time::Instant::now();
///             let outcome = next.work(ctx, line);
///             let _took = started.elapsed(); // log it, count it...
///             outcome
///         }
///     }))
///     .build(|_ctx: &Ctx, line: String| -> anyhow::Result<()> {
///         anyhow::ensure!(!line.is_empty(), "empty line");
///         Ok(())
///     })?;
/// pool.submitter().submit("a line".to_owned())?;
/// assert_eq!(pool.wait()?.processed(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn layer_fn<T, F, Out>(make: F) -> LayerFn<F, T>
where
    F: Fn(BoxWorker<T>) -> Out,
{
    LayerFn {
        make,
        _items: PhantomData,
    }
}

/// The layer [`layer_fn`] makes.
pub struct LayerFn<F, T> {
    make: F,
    _items: PhantomData<fn(T)>,
}

impl<F, T> fmt::Debug for LayerFn<F, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LayerFn").finish_non_exhaustive()
    }
}

impl<F, T, W, Out> Layer<W> for LayerFn<F, T>
where
    W: Worker<T> + 'static,
    F: Fn(BoxWorker<T>) -> Out,
{
    type Worker = Out;

    fn layer(&self, inner: W) -> Out {
        (self.make)(BoxWorker::new(inner))
    }
}

/// The worker each thread runs for [`Builder::build`](crate::Builder::build):
/// the shared function, behind an `Arc`. Layers wrap it.
pub struct SharedFn<F>(pub(crate) Arc<F>);

impl<F> fmt::Debug for SharedFn<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedFn").finish_non_exhaustive()
    }
}

impl<T, F, E> Worker<T> for SharedFn<F>
where
    F: Fn(&Ctx, T) -> Result<(), E>,
    E: Into<BoxError>,
{
    type Error = E;

    #[inline]
    fn work(&mut self, ctx: &Ctx, item: T) -> Result<(), E> {
        (self.0)(ctx, item)
    }
}
