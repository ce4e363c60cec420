//! Middleware composition: a [`Layer`] wraps a worker and returns a worker, in
//! the shape of `tower::Layer`.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use crate::{BoxError, Ctx, Worker, box_error};

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
    /// `outer` wrapped around `inner`. Only [`Builder::layer`](crate::Builder::layer)
    /// builds stacks: users add layers there.
    pub(crate) fn new(inner: Inner, outer: Outer) -> Self {
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

/// A worker behind a box, with its error boxed: one type for stacks whose
/// shape is chosen at run time. One dynamic call per item.
///
/// ```
/// use pool_core::{BoxWorker, Ctx, Worker};
///
/// let verbose = std::env::var_os("VERBOSE").is_some();
/// let worker: BoxWorker<u32> = if verbose {
///     BoxWorker::new(|_ctx: &Ctx, n: u32| { eprintln!("{n}"); Ok::<(), std::io::Error>(()) })
/// } else {
///     BoxWorker::new(|_ctx: &Ctx, _n: u32| Ok::<(), std::fmt::Error>(()))
/// };
/// # let _ = worker;
/// ```
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
        self.0.work(ctx, item).map_err(box_error)
    }

    fn finish(&mut self, ctx: &Ctx) -> Result<(), BoxError> {
        self.0.finish(ctx).map_err(box_error)
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

/// A middleware written as a closure `|next, ctx, item| ...`, called for every
/// item: it gets the rest of the stack as [`Next`], the item's [`Ctx`] and the
/// item, and passes the item on with [`Next::work`] (or not: an error it
/// returns fails the item).
///
/// The closure wraps `work` only. The rest of the stack's
/// [`finish`](Worker::finish) is called by the layer itself
/// ([`LayerFnWorker`]), once per worker thread, whatever the closure does, so
/// a stateful worker under a closure middleware still flushes or commits.
/// A middleware that needs a `finish` of its own, or state per worker
/// thread, implements [`Layer`] instead (its docs show how).
///
/// The one closure serves every worker thread, so it is `Fn` and shares what
/// it captures; each item costs one dynamic call into the rest of the stack.
///
/// What [`Next::work`] returns is the rest of the stack's error, boxed with
/// [`box_error`] (an `anyhow::Error` stays searchable with
/// [`find_error`](crate::find_error)); box an error of the closure's own
/// with `box_error` too, rather than with `into`.
///
/// ```
/// use pool_core::{Ctx, Next, Pool, layer_fn};
///
/// let pool = Pool::builder()
///     .workers(2)
///     .layer(layer_fn(|mut next: Next<'_, String>, ctx: &Ctx, line: String| {
///         let started = std::time::Instant::now();
///         let outcome = next.work(ctx, line);
///         let _took = started.elapsed(); // log it, count it...
///         outcome
///     }))
///     .build(|_ctx: &Ctx, line: String| -> anyhow::Result<()> {
///         anyhow::ensure!(!line.is_empty(), "empty line");
///         Ok(())
///     })?;
/// pool.submitter().submit("a line".to_owned())?;
/// assert_eq!(pool.wait()?.processed(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// A stateful worker's `finish` runs under it, as without it:
///
/// ```
/// use pool_core::{Ctx, Next, Pool, Worker, WorkerId, layer_fn};
/// use std::sync::{Arc, Mutex};
///
/// /// Buffers rows and writes them out in `finish`.
/// struct RowWriter { rows: Vec<u32>, sink: Arc<Mutex<Vec<u32>>> }
///
/// impl Worker<u32> for RowWriter {
///     type Error = std::io::Error;
///     fn work(&mut self, _ctx: &Ctx, row: u32) -> std::io::Result<()> {
///         self.rows.push(row);
///         Ok(())
///     }
///     fn finish(&mut self, _ctx: &Ctx) -> std::io::Result<()> {
///         self.sink.lock().expect("sink lock").append(&mut self.rows);
///         Ok(())
///     }
/// }
///
/// let sink = Arc::new(Mutex::new(Vec::new()));
/// let maker_sink = Arc::clone(&sink);
/// let pool = Pool::builder()
///     .workers(2)
///     // Drops odd rows before the worker sees them.
///     .layer(layer_fn(|mut next: Next<'_, u32>, ctx: &Ctx, row: u32| {
///         if row % 2 == 0 { next.work(ctx, row) } else { Ok(()) }
///     }))
///     .build_stateful(move |_ctx: &Ctx| {
///         RowWriter { rows: Vec::new(), sink: Arc::clone(&maker_sink) }
///     })?;
/// let mut submitter = pool.submitter();
/// for row in 0..100 { submitter.submit(row)?; }
/// drop(submitter);
/// assert_eq!(pool.wait()?.processed(), 100);
/// assert_eq!(sink.lock().unwrap().len(), 50); // every worker's `finish` wrote its rows
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn layer_fn<T, F>(wrap: F) -> LayerFn<F, T>
where
    F: Fn(Next<'_, T>, &Ctx, T) -> Result<(), BoxError>,
{
    LayerFn {
        wrap: Arc::new(wrap),
        _items: PhantomData,
    }
}

/// The layer [`layer_fn`] makes: it wraps each worker thread's stack in a
/// [`LayerFnWorker`] that calls the closure.
pub struct LayerFn<F, T> {
    wrap: Arc<F>,
    _items: PhantomData<fn(T)>,
}

impl<F, T> Clone for LayerFn<F, T> {
    fn clone(&self) -> Self {
        LayerFn {
            wrap: Arc::clone(&self.wrap),
            _items: PhantomData,
        }
    }
}

impl<F, T> fmt::Debug for LayerFn<F, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LayerFn").finish_non_exhaustive()
    }
}

impl<F, T, W> Layer<W> for LayerFn<F, T>
where
    W: Worker<T>,
    F: Fn(Next<'_, T>, &Ctx, T) -> Result<(), BoxError>,
{
    type Worker = LayerFnWorker<F, W>;

    fn layer(&self, inner: W) -> LayerFnWorker<F, W> {
        LayerFnWorker {
            wrap: Arc::clone(&self.wrap),
            inner: Boxed(inner),
        }
    }
}

/// The worker a [`LayerFn`] wraps around the rest of the stack: its `work`
/// calls the closure, and its [`finish`](Worker::finish) calls the rest of the
/// stack's `finish`, always, without the closure.
pub struct LayerFnWorker<F, W> {
    wrap: Arc<F>,
    inner: Boxed<W>,
}

impl<F, W> fmt::Debug for LayerFnWorker<F, W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LayerFnWorker").finish_non_exhaustive()
    }
}

impl<T, F, W> Worker<T> for LayerFnWorker<F, W>
where
    W: Worker<T>,
    F: Fn(Next<'_, T>, &Ctx, T) -> Result<(), BoxError>,
{
    type Error = BoxError;

    #[inline]
    fn work(&mut self, ctx: &Ctx, item: T) -> Result<(), BoxError> {
        (self.wrap)(Next::new(&mut self.inner), ctx, item)
    }

    /// Forwards to the rest of the stack: the closure has no say in it.
    fn finish(&mut self, ctx: &Ctx) -> Result<(), BoxError> {
        self.inner.finish(ctx)
    }
}

/// The rest of the stack as a [`layer_fn`] closure sees it: the closure can
/// pass the item on with [`work`](Next::work), and nothing else. The rest of
/// the stack's `finish` is not reachable from here; [`LayerFnWorker`] calls it.
pub struct Next<'a, T> {
    inner: &'a mut dyn Worker<T, Error = BoxError>,
}

impl<'a, T> Next<'a, T> {
    fn new<W: Worker<T>>(inner: &'a mut Boxed<W>) -> Self {
        Next { inner }
    }

    /// Passes `item` to the rest of the stack: the next layer, or the worker.
    /// Its error, boxed, is what the closure usually returns.
    #[inline]
    pub fn work(&mut self, ctx: &Ctx, item: T) -> Result<(), BoxError> {
        self.inner.work(ctx, item)
    }
}

impl<T> fmt::Debug for Next<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Next").finish_non_exhaustive()
    }
}

/// The worker each thread runs for [`Builder::build`](crate::Builder::build):
/// the shared function, behind an `Arc`. Layers wrap it.
///
/// Public but unnameable on purpose: it appears in the bound of the public
/// `Builder::build` (`L: Layer<SharedFn<F>>`), so it stays `pub` (a
/// crate-private type there trips the `private_bounds` lint), yet no user
/// needs to name it: a layer generic in its worker covers it. It sits in this
/// private module and `lib.rs` does not re-export it, so nothing outside the
/// crate can name it and it can change freely. The price: generic code over
/// a `Builder<T, L>` cannot restate `build`'s bound (`build_stateful`'s bound
/// names only the user's own worker type).
pub struct SharedFn<F>(pub(crate) Arc<F>);

impl<F> fmt::Debug for SharedFn<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedFn").finish_non_exhaustive()
    }
}

impl<T, F, E> Worker<T> for SharedFn<F>
where
    F: Fn(&Ctx, T) -> Result<(), E>,
    E: Into<BoxError> + 'static,
{
    type Error = E;

    #[inline]
    fn work(&mut self, ctx: &Ctx, item: T) -> Result<(), E> {
        (self.0)(ctx, item)
    }
}
