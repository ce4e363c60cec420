//! Per-item results: a pool whose worker returns a value, and a call that
//! hands one item in and gets its answer back.
//!
//! # How a call resolves
//!
//! A [`Call`] is the item and the sending half of a `oneshot` slot; its
//! [`CallHandle`] is the receiving half. The pool carries calls like any
//! other item (counted, queued, stolen, dropped on cancel). On the worker
//! thread the processor hands the call to [`Resolve`], the outermost worker
//! of a call pool, which splits it: the item goes through the layer stack
//! (layers see the item itself, so every middleware works unchanged) down
//! to [`Answering`], which runs the user's [`CallWorker`] and leaves its
//! value in a per-thread cell that `Resolve` shares with it. Then `Resolve`
//! answers:
//!
//! - the stack returned `Ok`: the value from the cell (or
//!   [`CallError::Skipped`] if a layer never reached the worker); counted
//!   processed;
//! - it returned an error: the error goes to the handle, and the processor
//!   records an error with the same text (counted failed, error policy
//!   applied);
//! - it panicked: the payload goes to the handle, and `Resolve` raises a
//!   panic carrying the message, which the processor records as usual
//!   (counted failed);
//! - the item never ran: the call is dropped with its slot unanswered (by
//!   `Bench::drop_items` on cancel, like any item), which the handle reads
//!   as [`CallError::Dropped`]; counted dropped.
//!
//! A caller that dropped its handle gets nothing; then the error or the
//! payload goes to the pool's report whole.

use std::cell::Cell;
use std::fmt;
use std::ops::Deref;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use crate::capacity::{Refusal, Wait};
use crate::error::panic_message;
use crate::layer::SharedFn;
use crate::makers::States;
use crate::process::ItemProcessor;
use crate::scope::Launch;
use crate::shared::Shared;
use crate::thread::Makers;
use crate::{
    BoxError, BuildError, Builder, Ctx, Layer, Pool, SendError, Sender, TrySendError, Worker,
};

mod handle;

pub(crate) use handle::Answer;
pub use handle::{CallError, CallHandle, CallPanic};

/// A pool whose items are calls: built by [`Builder::build_call`] or
/// [`Builder::build_call_stateful`], fed by [`Pool::call`] (and
/// `try_call`, `call_timeout`, `call_async`).
pub type CallPool<T, R> = Pool<Call<T, R>>;

/// One called item: the item and the slot its answer goes to.
///
/// [`Pool::call`] makes one for you. Make one yourself with
/// [`Call::new`] to hand calls to a [`Submitter`](crate::Submitter) (batched)
/// or to a [`Sender`] you already have. Dropping a call before it runs
/// answers its handle with [`CallError::Dropped`]; it derefs to its item.
///
/// ```
/// use pool_core::{Call, Ctx, Pool};
///
/// let pool = Pool::builder().workers(2).build_call(|_ctx: &Ctx, n: u64| Ok::<_, std::io::Error>(n + 1))?;
/// let mut submitter = pool.submitter();
/// let mut handles = Vec::new();
/// for n in 0..100 {
///     let (call, handle) = Call::new(n);
///     submitter.submit(call)?;
///     handles.push(handle);
/// }
/// drop(submitter); // pushes the last batch
/// let total: u64 = handles.into_iter().map(|handle| handle.wait().expect("n + 1")).sum();
/// assert_eq!(total, 5050);
/// # pool.wait()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Call<T, R> {
    item: T,
    reply: oneshot::Sender<Answer<R>>,
}

impl<T, R> Call<T, R> {
    /// A call of `item`, and the handle its answer comes to. Allocates the
    /// slot between them (one allocation).
    pub fn new(item: T) -> (Call<T, R>, CallHandle<R>) {
        let (reply, receiver) = oneshot::channel();
        (Call { item, reply }, CallHandle::new(receiver))
    }

    /// The item.
    pub fn item(&self) -> &T {
        &self.item
    }

    /// Takes the item out; the handle then resolves as [`CallError::Dropped`].
    pub fn into_item(self) -> T {
        self.item
    }
}

impl<T, R> Deref for Call<T, R> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.item
    }
}

impl<T: fmt::Debug, R> fmt::Debug for Call<T, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Call")
            .field("item", &self.item)
            .field("caller_waits", &!self.reply.is_closed())
            .finish()
    }
}

/// Processes items one at a time and returns a value for each: the worker of
/// a call pool ([`Builder::build_call_stateful`]).
///
/// Closures `FnMut(&Ctx, T) -> Result<R, E>` implement it. Implement it on
/// your own type for a worker that owns state (a connection, a cache) and
/// needs [`finish`](CallWorker::finish) at the end, as with [`Worker`].
///
/// ```
/// use pool_core::{CallWorker, Ctx, Pool, WorkerId};
///
/// /// Answers from a cache of its own; `finish` could persist it.
/// struct Cached { squares: std::collections::HashMap<u64, u64> }
///
/// impl CallWorker<u64> for Cached {
///     type Output = u64;
///     type Error = std::convert::Infallible;
///     fn call(&mut self, _ctx: &Ctx, n: u64) -> Result<u64, Self::Error> {
///         Ok(*self.squares.entry(n).or_insert_with(|| n * n))
///     }
/// }
///
/// let pool = Pool::builder()
///     .workers(2)
///     .build_call_stateful(|_ctx: &Ctx| Cached { squares: Default::default() })?;
/// assert_eq!(pool.call(12)?.wait()?, 144);
/// # pool.wait()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait CallWorker<T> {
    /// The value a call returns.
    type Output;
    /// The worker's error type; anything that converts into [`BoxError`].
    type Error: Into<BoxError> + 'static;

    /// Processes one item and returns its value. An error answers the call
    /// with [`CallError::Failed`], counts the item as failed and is handled
    /// by the pool's error policy.
    fn call(&mut self, ctx: &Ctx, item: T) -> Result<Self::Output, Self::Error>;

    /// Called once on the worker's own thread after its last item, as
    /// [`Worker::finish`].
    fn finish(&mut self, ctx: &Ctx) -> Result<(), Self::Error> {
        let _ = ctx;
        Ok(())
    }
}

impl<T, R, E, F> CallWorker<T> for F
where
    F: FnMut(&Ctx, T) -> Result<R, E>,
    E: Into<BoxError> + 'static,
{
    type Output = R;
    type Error = E;

    #[inline]
    fn call(&mut self, ctx: &Ctx, item: T) -> Result<R, E> {
        self(ctx, item)
    }
}

impl<T, R, E, F> CallWorker<T> for SharedFn<F>
where
    F: Fn(&Ctx, T) -> Result<R, E>,
    E: Into<BoxError> + 'static,
{
    type Output = R;
    type Error = E;

    #[inline]
    fn call(&mut self, ctx: &Ctx, item: T) -> Result<R, E> {
        (self.0)(ctx, item)
    }
}

/// The per-thread cell where the innermost worker leaves a call's value for
/// [`Resolve`]. Both live on one worker thread (I10), so no lock.
type ValueCell<R> = Rc<Cell<Option<R>>>;

/// The innermost worker of a call pool, which the layers wrap: runs the
/// user's [`CallWorker`] and keeps its value for the call's answer.
///
/// Public but unnameable, as [`SharedFn`]: it appears in the bounds of
/// [`Builder::build_call`] and [`Builder::build_call_stateful`], and a layer
/// generic in its worker covers it.
pub struct Answering<W, R> {
    inner: W,
    value: ValueCell<R>,
}

impl<W, R> fmt::Debug for Answering<W, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Answering").finish_non_exhaustive()
    }
}

impl<T, R, W: CallWorker<T, Output = R>> Worker<T> for Answering<W, R> {
    type Error = W::Error;

    #[inline]
    fn work(&mut self, ctx: &Ctx, item: T) -> Result<(), W::Error> {
        let value = self.inner.call(ctx, item)?;
        // A second success (a layer that calls twice) replaces the first.
        self.value.set(Some(value));
        Ok(())
    }

    fn finish(&mut self, ctx: &Ctx) -> Result<(), W::Error> {
        self.inner.finish(ctx)
    }
}

/// The outermost worker of a call pool: splits each call, runs its item
/// through the stack and answers the handle (see the module notes).
struct Resolve<S, R> {
    stack: S,
    value: ValueCell<R>,
}

/// What the pool's report keeps of an error that went to a call's handle:
/// its text (the error and its sources).
#[derive(Debug)]
struct AnsweredError(String);

impl fmt::Display for AnsweredError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for AnsweredError {}

/// The error's text and its sources', as `anyhow` prints them with `{:#}`.
fn error_text(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

impl<T, R, S: Worker<T>> Worker<Call<T, R>> for Resolve<S, R> {
    type Error = BoxError;

    #[inline]
    fn work(&mut self, ctx: &Ctx, call: Call<T, R>) -> Result<(), BoxError> {
        let Call { item, reply } = call;
        let outcome = catch_unwind(AssertUnwindSafe(|| self.stack.work(ctx, item)));
        let value = self.value.take();
        match outcome {
            Ok(Ok(())) => {
                // A caller that dropped its handle does not want the value.
                let _ = reply.send(value.ok_or(CallError::Skipped));
                Ok(())
            }
            Ok(Err(error)) => {
                drop(value);
                let error = crate::box_error(error);
                // Closed, or interrupted by a cancel (`Ctx::check`): the
                // pool gets the whole error, so it counts the call as
                // interrupted (dropped), and the handle, whose answer is
                // dropped here, says `CallError::Dropped`.
                if reply.is_closed() || (ctx.is_cancelled() && crate::Interrupted::is_in(&*error)) {
                    return Err(error);
                }
                let text = error_text(&*error);
                match reply.send(Err(CallError::Failed(error))) {
                    Ok(()) => Err(Box::new(AnsweredError(text))),
                    // The caller left meanwhile: the report gets the error.
                    Err(unsent) => match unsent.into_inner() {
                        Err(CallError::Failed(error)) => Err(error),
                        _ => Err(Box::new(AnsweredError(text))),
                    },
                }
            }
            Err(payload) => {
                drop(value);
                if reply.is_closed() {
                    resume_unwind(payload);
                }
                let message = panic_message(&*payload);
                let panic = CallPanic::new(message.clone(), payload);
                match reply.send(Err(CallError::Panicked(panic))) {
                    // Raised again for the processor, which records it;
                    // `resume_unwind` runs no panic hook, so nothing is
                    // printed twice.
                    Ok(()) => resume_unwind(Box::new(message)),
                    Err(unsent) => match unsent.into_inner() {
                        Err(CallError::Panicked(panic)) => resume_unwind(panic.into_payload()),
                        _ => resume_unwind(Box::new(message)),
                    },
                }
            }
        }
    }

    fn finish(&mut self, ctx: &Ctx) -> Result<(), BoxError> {
        self.stack.finish(ctx).map_err(Into::into)
    }
}

/// Call pools: the same builder, a worker that returns a value.
///
/// In a scoped pool ([`Builder::scoped`]) the workers and makers may borrow,
/// and so may the answers; the items of a call pool are `'static`.
impl<'env, T: Send + 'static, L, Lc: Launch<'env>> Builder<T, L, Lc> {
    /// Starts a pool whose workers share one function that returns a value
    /// per item: a call pool. Hand it items with [`Pool::call`] and get each
    /// answer from its [`CallHandle`].
    ///
    /// Every setting and every pool property applies to calls: layers
    /// ([`layer`](Builder::layer)) wrap the worker and see the item itself
    /// (the handle gets the outermost layer's error), [`chunk_by`](Builder::chunk_by)
    /// keys the item, metrics and the error policy work as for any item, a
    /// cancel drops queued calls (their handles say
    /// [`CallError::Dropped`]), and each call is counted as submitted, then
    /// processed, failed or dropped.
    ///
    /// Calls go in one at a time ([`Pool::call`] does not batch), so the
    /// batch size matters only to a [`Submitter`](crate::Submitter) of
    /// [`Call`]s; a pool with a capacity below the default batch size (64)
    /// needs `.batch_size(1)`. A panic's payload goes to the call's handle,
    /// so [`Builder::resume_panics`] re-raises only the panics of calls whose
    /// handle was dropped (with their payload) and a panic carrying the
    /// message for the others.
    ///
    /// ```
    /// use pool_core::{Ctx, Next, Pool, layer_fn};
    ///
    /// let pool = Pool::builder()
    ///     .workers(4)
    ///     .continue_on_error()
    ///     .layer(layer_fn(|mut next: Next<'_, String>, ctx: &Ctx, text: String| {
    ///         ctx.metrics().inc("requests");
    ///         next.work(ctx, text)
    ///     }))
    ///     .build_call(|_ctx: &Ctx, text: String| -> anyhow::Result<usize> {
    ///         anyhow::ensure!(!text.is_empty(), "empty request");
    ///         Ok(text.split_whitespace().count())
    ///     })?;
    /// assert_eq!(pool.call("three little words".to_owned())?.wait()?, 3);
    /// assert!(pool.call(String::new())?.wait().is_err());
    /// let report = pool.join();
    /// assert_eq!((report.processed(), report.failed()), (1, 1));
    /// assert_eq!(report.stats().counters.get("requests"), 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn build_call<F, R, E>(self, work: F) -> Result<Pool<Call<T, R>>, BuildError>
    where
        F: Fn(&Ctx, T) -> Result<R, E> + Send + Sync + 'env,
        E: Into<BoxError> + 'static,
        R: Send + 'env,
        L: Layer<Answering<SharedFn<F>, R>> + Send + Sync + 'env,
        L::Worker: Worker<T> + 'env,
    {
        let work = Arc::new(work);
        let (bare, layers) = self.split();
        bare.into_calls::<R>().start_infallible(move |_ctx: &Ctx| {
            let value = Rc::new(Cell::new(None));
            let inner = Answering {
                inner: SharedFn(Arc::clone(&work)),
                value: Rc::clone(&value),
            };
            ItemProcessor(Resolve {
                stack: layers.layer(inner),
                value,
            })
        })
    }

    /// Starts a call pool where each thread builds its own [`CallWorker`]
    /// with `maker`, on that thread (it may own a connection and need not
    /// be `Send`), as [`build_stateful`](Builder::build_stateful) does for
    /// workers without values: the maker gets the worker's [`Ctx`]. Layers
    /// are built around it on the same thread.
    pub fn build_call_stateful<M, W>(self, maker: M) -> Result<Pool<Call<T, W::Output>>, BuildError>
    where
        M: Fn(&Ctx) -> W + Send + Sync + 'env,
        W: CallWorker<T> + 'env,
        W::Output: Send + 'env,
        L: Layer<Answering<W, W::Output>> + Send + Sync + 'env,
        L::Worker: Worker<T> + 'env,
    {
        let (bare, layers) = self.split();
        bare.into_calls::<W::Output>()
            .start_infallible(move |ctx: &Ctx| answering(&layers, maker(ctx)))
    }

    /// Starts a call pool where each thread builds its own [`CallWorker`]
    /// with a maker that may fail, and fails the build if any maker fails:
    /// the call form of [`try_build_stateful`](Builder::try_build_stateful),
    /// with the same waiting, errors ([`BuildError::Maker`]) and clean-up.
    ///
    /// ```
    /// use pool_core::{BuildError, Ctx, Pool};
    ///
    /// let built = Pool::builder().workers(2).try_build_call_stateful(|ctx: &Ctx| {
    ///     let worker = ctx.worker_id().index();
    ///     if worker == 1 {
    ///         return Err(std::io::Error::other("model file missing"));
    ///     }
    ///     Ok(move |_ctx: &Ctx, n: u64| Ok::<_, std::io::Error>(n + worker as u64))
    /// });
    /// let Err(BuildError::Maker { worker, error }) = built else { panic!("worker #1 fails") };
    /// assert_eq!((worker.index(), error.to_string()), (1, "model file missing".to_owned()));
    ///
    /// let pool = Pool::builder()
    ///     .workers(1)
    ///     .try_build_call_stateful(|_ctx: &Ctx| Ok::<_, std::io::Error>(|_ctx: &Ctx, n: u64| Ok::<_, std::io::Error>(n * 2)))?;
    /// assert_eq!(pool.call(21)?.wait()?, 42);
    /// # pool.wait()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_build_call_stateful<M, W, E>(
        self,
        maker: M,
    ) -> Result<Pool<Call<T, W::Output>>, BuildError<E>>
    where
        M: Fn(&Ctx) -> Result<W, E> + Send + Sync + 'env,
        E: Send + 'static,
        W: CallWorker<T> + 'env,
        W::Output: Send + 'env,
        L: Layer<Answering<W, W::Output>> + Send + Sync + 'env,
        L::Worker: Worker<T> + 'env,
    {
        let (bare, layers) = self.split();
        let make = move |ctx: &Ctx| maker(ctx).map(|worker| answering(&layers, worker));
        bare.into_calls::<W::Output>()
            .start(Makers(make), States::none(), true)
    }
}

/// A call pool's worker: `inner` answering into a cell, inside `layers`,
/// inside [`Resolve`].
fn answering<T, W, L>(layers: &L, inner: W) -> ItemProcessor<Resolve<L::Worker, W::Output>>
where
    W: CallWorker<T>,
    L: Layer<Answering<W, W::Output>>,
{
    let value = Rc::new(Cell::new(None));
    let inner = Answering {
        inner,
        value: Rc::clone(&value),
    };
    ItemProcessor(Resolve {
        stack: layers.layer(inner),
        value,
    })
}

/// Hands a lone call to the pool, as `Sender::send` hands an item.
fn call_with<T, R>(
    shared: &Shared<Call<T, R>>,
    item: T,
    wait: Wait,
) -> Result<CallHandle<R>, TrySendError<T>> {
    let (call, handle) = Call::new(item);
    shared
        .send_one(call, wait, 0, || shared.ledger.count_submitted(1))
        .map(|()| handle)
        .map_err(|(refusal, call)| {
            let item = call.into_item();
            match refusal {
                Refusal::Full => TrySendError::Full(item),
                Refusal::Closed => TrySendError::Closed(item),
                Refusal::Cancelled => TrySendError::Cancelled(item),
            }
        })
}

/// A blocking call's refusal: never `Full`.
fn blocking<T>(error: TrySendError<T>) -> SendError<T> {
    match error {
        TrySendError::Closed(item) => SendError::Closed(item),
        TrySendError::Cancelled(item) => SendError::Cancelled(item),
        TrySendError::Full(item) | TrySendError::Disconnected(item) => {
            debug_assert!(
                false,
                "a blocking call neither reports Full nor Disconnected"
            );
            SendError::Closed(item)
        }
    }
}

/// Calls into a call pool from the thread that owns the pool (or borrows it).
impl<T: Send, R: Send> Pool<Call<T, R>> {
    /// Hands `item` to the pool, blocking while it is at capacity, and
    /// returns the handle its answer comes to. The item is counted and
    /// processed as any other; one allocation per call (the answer's slot).
    ///
    /// Hands the item back if the pool is closed or cancelled (also while
    /// blocked). From async code use `call_async` (the
    /// `async` feature), which waits for room without blocking the thread.
    ///
    /// ```
    /// use pool_core::{Ctx, Pool};
    ///
    /// let pool = Pool::builder().workers(2).build_call(|_ctx: &Ctx, n: u64| Ok::<_, std::io::Error>(n * 2))?;
    /// let handles: Vec<_> = (0..4).map(|n| pool.call(n)).collect::<Result<_, _>>()?;
    /// let doubled: Vec<u64> = handles.into_iter().map(|h| h.wait()).collect::<Result<_, _>>()?;
    /// assert_eq!(doubled, [0, 2, 4, 6]);
    /// pool.close();
    /// assert!(pool.call(5).is_err()); // handed back
    /// # pool.wait()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn call(&self, item: T) -> Result<CallHandle<R>, SendError<T>> {
        call_with(self.shared(), item, Wait::Forever).map_err(blocking)
    }

    /// Hands `item` to the pool if there is room now; otherwise hands it
    /// back as [`TrySendError::Full`] (said only when `capacity` items are
    /// unfinished, see [`Builder::capacity`]).
    pub fn try_call(&self, item: T) -> Result<CallHandle<R>, TrySendError<T>> {
        call_with(self.shared(), item, Wait::No)
    }

    /// Hands `item` to the pool, waiting at most `timeout` for room.
    pub fn call_timeout(
        &self,
        item: T,
        timeout: Duration,
    ) -> Result<CallHandle<R>, TrySendError<T>> {
        call_with(self.shared(), item, Wait::timeout(timeout))
    }
}

/// Calls from any thread: a [`Sender`] of a call pool is cloneable and
/// `'static`, so it can go into threads and async tasks.
impl<T: Send, R: Send> Sender<Call<T, R>> {
    /// As [`Pool::call`]: blocks while the pool is at capacity.
    ///
    /// ```
    /// use pool_core::{Ctx, Pool};
    ///
    /// let pool = Pool::builder().workers(2).build_call(|_ctx: &Ctx, n: u64| Ok::<_, std::io::Error>(n * n))?;
    /// let callers: Vec<_> = (0..4u64)
    ///     .map(|n| {
    ///         let sender = pool.sender();
    ///         std::thread::spawn(move || sender.call(n).expect("open").wait().expect("a square"))
    ///     })
    ///     .collect();
    /// let squares: Vec<u64> = callers.into_iter().map(|caller| caller.join().unwrap()).collect();
    /// assert_eq!(squares, [0, 1, 4, 9]);
    /// # pool.wait()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn call(&self, item: T) -> Result<CallHandle<R>, SendError<T>> {
        call_with(self.shared(), item, Wait::Forever).map_err(blocking)
    }

    /// As [`Pool::try_call`].
    pub fn try_call(&self, item: T) -> Result<CallHandle<R>, TrySendError<T>> {
        call_with(self.shared(), item, Wait::No)
    }

    /// As [`Pool::call_timeout`].
    pub fn call_timeout(
        &self,
        item: T,
        timeout: Duration,
    ) -> Result<CallHandle<R>, TrySendError<T>> {
        call_with(self.shared(), item, Wait::timeout(timeout))
    }
}
