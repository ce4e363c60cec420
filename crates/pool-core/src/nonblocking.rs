//! The `async` feature: waiting without blocking the thread, for callers on
//! an async runtime (any runtime: wake-ups go through the task's waker).
//!
//! - [`Sender::send_async`] ([`SendFuture`]) waits for room, then hands the
//!   item in; [`Sender::call_async`] and [`Pool::call_async`] do the same
//!   for a call and return its [`CallHandle`], which is itself a future.
//! - [`Pool::join_async`] and [`Pool::wait_async`] close the pool and wait
//!   for its workers to leave before they join them.
//!
//! # How a task waits for room
//!
//! A send future tries to reserve room exactly as `try_send` does. Without
//! room it registers at the capacity gate's room signal (`signal.rs`) and
//! tries again before it returns `Pending`; every release of room (a worker
//! giving back finished items, a producer taking back finished room, a
//! backed-out reservation) notifies one waiting task per unit, and a close
//! or cancel wakes them all. With nobody waiting, a release pays one atomic
//! load for this; without the feature, nothing.
//!
//! # Cancel safety
//!
//! Reserving room, counting the item as submitted and pushing it happen in
//! one `poll`, with no await point in between. So a send future is in one of
//! two states whenever it can be dropped: **not sent** (the item is inside
//! the future; dropping the future drops the item, which was never counted
//! and holds no room), or **sent** (it returned `Ready(Ok)`: the item is in
//! the pool and counted, and will be processed, failed or dropped like any
//! other). A task that was woken for room and is dropped before it looked
//! passes its wake-up on to the next waiting task.

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::panic::resume_unwind;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::capacity::{Refusal, Wait};
use crate::queues::{Parcel, Target};
use crate::shared::Shared;
use crate::signal::Place;
use crate::{Call, CallHandle, Pool, PoolError, Report, SendError, Sender};

impl<T> Shared<T> {
    /// Reserves room for one item if there is some now (taking back the
    /// room of finished items first, as `try_send` does): `Ok(true)` when
    /// reserved, `Ok(false)` when full. The closed flag is read with
    /// `SeqCst` after a full look, so a waiter's re-check sees a close that
    /// raced with its registration (see `signal.rs`).
    ///
    /// On one of this pool's own workers it never says full: it goes over
    /// the capacity, as a blocking `send` there does (a worker that blocks
    /// its thread on the future would wait for room only workers can free).
    pub(crate) fn reserve_one_now(&self) -> Result<bool, Refusal> {
        match self.reserve(1, Wait::No) {
            Ok(()) => Ok(true),
            Err(Refusal::Full) if crate::thread::is_worker_of(self) => {
                // A worker's reservation never waits: see `Shared::leeway`.
                self.reserve(1, Wait::Forever).map(|()| true)
            }
            Err(Refusal::Full) => match self.capacity.refuses() {
                Some(refusal) => Err(refusal),
                None => Ok(false),
            },
            Err(refusal) => Err(refusal),
        }
    }

    /// Counts and pushes an item whose room is reserved.
    pub(crate) fn push_reserved(&self, item: T, target: Target) {
        // Counted before the push, as every item is.
        self.ledger.count_submitted(1);
        self.push(Parcel::One(item), target);
    }
}

fn refused<T>(refusal: Refusal, item: T) -> SendError<T> {
    match refusal {
        Refusal::Cancelled => SendError::Cancelled(item),
        Refusal::Closed | Refusal::Full => SendError::Closed(item),
    }
}

/// The future of [`Sender::send_async`]: waits for room without blocking
/// the thread, then hands the item to the pool.
///
/// **Cancel-safe.** Dropped before it completed, the item was never
/// submitted: it is dropped with the future, was never counted, and holds no
/// room. Once it returned `Ready(Ok(()))` the item is in the pool and counted
/// (see the module notes of `nonblocking.rs` in the source).
#[must_use = "a future does nothing unless polled; dropping it drops the item unsent"]
pub struct SendFuture<'a, T> {
    shared: &'a Shared<T>,
    item: Option<T>,
    /// Where the item goes, worked out (the key function run) on the first
    /// poll, before any room is reserved.
    target: Option<Target>,
    place: Place,
}

/// The item is never pinned (it is moved into the pool), so the future may
/// move between polls whatever the item type.
impl<T> Unpin for SendFuture<'_, T> {}

impl<T> fmt::Debug for SendFuture<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SendFuture")
            .field("sent", &self.item.is_none())
            .finish_non_exhaustive()
    }
}

impl<'a, T> SendFuture<'a, T> {
    fn new(shared: &'a Shared<T>, item: T) -> Self {
        SendFuture {
            shared,
            item: Some(item),
            target: None,
            place: Place::default(),
        }
    }
}

impl<T> Future for SendFuture<'_, T> {
    type Output = Result<(), SendError<T>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let shared = this.shared;
        let Some(item) = this.item.as_ref() else {
            panic!("a SendFuture polled after it completed")
        };
        let target = match this.target {
            Some(target) => target,
            None => {
                if let Some(refusal) = shared.capacity.refuses_quickly() {
                    let item = this.item.take().expect("checked above");
                    return Poll::Ready(Err(refused(refusal, item)));
                }
                // The key function runs before any room is reserved, as in
                // `send`: if it panics, nothing is left behind.
                *this.target.insert(shared.queues.target(item, 0))
            }
        };
        let reserved = this.place.poll_until(&shared.capacity.room, cx, || {
            match shared.reserve_one_now() {
                Ok(true) => Some(Ok(())),
                Ok(false) => None,
                Err(refusal) => Some(Err(refusal)),
            }
        });
        match reserved {
            Poll::Pending => Poll::Pending,
            Poll::Ready(outcome) => {
                let item = this.item.take().expect("checked above");
                Poll::Ready(match outcome {
                    Ok(()) => {
                        shared.push_reserved(item, target);
                        Ok(())
                    }
                    Err(refusal) => Err(refused(refusal, item)),
                })
            }
        }
    }
}

impl<T> Drop for SendFuture<'_, T> {
    fn drop(&mut self) {
        self.place.leave(&self.shared.capacity.room);
    }
}

impl<T> Sender<T> {
    /// Sends an item, waiting for room without blocking the thread: the
    /// async [`send`](Sender::send). Hands the item back if the pool is
    /// closed or cancelled (also while waiting).
    ///
    /// Cancel-safe: dropping the future before it completes drops the item,
    /// which was never submitted (not counted, no room held); once it
    /// completed, the item is in the pool and counted (see [`SendFuture`]).
    ///
    /// ```
    /// use pool_core::{Ctx, Pool};
    ///
    /// let pool = Pool::builder()
    ///     .workers(2)
    ///     .batch_size(1)
    ///     .capacity(4)
    ///     .build(|_ctx: &Ctx, _line: String| Ok::<(), std::io::Error>(()))?;
    /// let sender = pool.sender();
    /// let runtime = tokio::runtime::Builder::new_current_thread().build()?;
    /// runtime.block_on(async {
    ///     for n in 0..100 {
    ///         // At capacity this task waits, and the runtime runs others.
    ///         sender.send_async(format!("line {n}")).await.expect("pool open");
    ///     }
    /// });
    /// let report = runtime.block_on(pool.wait_async())?;
    /// assert_eq!(report.processed(), 100);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn send_async(&self, item: T) -> SendFuture<'_, T> {
        SendFuture::new(self.shared(), item)
    }
}

/// Turns the refusal of a call into the refusal of its item.
fn uncalled<T, R>(error: SendError<Call<T, R>>) -> SendError<T> {
    match error {
        SendError::Closed(call) => SendError::Closed(call.into_item()),
        SendError::Cancelled(call) => SendError::Cancelled(call.into_item()),
        SendError::Disconnected(call) => SendError::Disconnected(call.into_item()),
    }
}

/// Hands a call in once there is room.
async fn call_async_on<T, R>(
    shared: &Shared<Call<T, R>>,
    item: T,
) -> Result<CallHandle<R>, SendError<T>> {
    let (call, handle) = Call::new(item);
    SendFuture::new(shared, call).await.map_err(uncalled)?;
    Ok(handle)
}

impl<T: Send + 'static, R: Send + 'static> Sender<Call<T, R>> {
    /// Hands `item` to the pool once there is room, waiting without
    /// blocking the thread, and returns the handle its answer comes to;
    /// await that too: `sender.call_async(item).await?.await?`.
    ///
    /// Cancel-safe as [`send_async`](Sender::send_async): dropped before it
    /// completes, the item was never submitted (dropped with the future,
    /// not counted); once it returned the handle, the item is in the pool
    /// and counted, and dropping the handle does not take it back.
    ///
    /// ```
    /// use pool_core::{Ctx, Pool};
    ///
    /// let pool = Pool::builder().workers(2).build_call(|_ctx: &Ctx, text: String| {
    ///     Ok::<_, std::io::Error>(text.to_uppercase())
    /// })?;
    /// let sender = pool.sender();
    /// let runtime = tokio::runtime::Builder::new_current_thread().build()?;
    /// let shout = runtime.block_on(async move {
    ///     sender.call_async("hello".to_owned()).await?.await.map_err(Box::<dyn std::error::Error>::from)
    /// })?;
    /// assert_eq!(shout, "HELLO");
    /// runtime.block_on(pool.wait_async())?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn call_async(&self, item: T) -> Result<CallHandle<R>, SendError<T>> {
        call_async_on(self.shared(), item).await
    }
}

impl<T: Send + 'static, R: Send + 'static> Pool<Call<T, R>> {
    /// As [`Sender::call_async`], from the task that owns (or borrows) the
    /// pool.
    pub async fn call_async(&self, item: T) -> Result<CallHandle<R>, SendError<T>> {
        call_async_on(self.shared(), item).await
    }
}

/// The first panic's payload, to re-raise with `resume_panics`.
type Payload = Box<dyn Any + Send>;

/// Closes a pool, waits for its workers to leave without blocking the
/// thread, then shuts it down (the join finds every thread finished).
struct Departure<T: Send + 'static, S: Send + 'static> {
    pool: Option<Pool<T, S>>,
    place: Place,
}

impl<T: Send + 'static, S: Send + 'static> Departure<T, S> {
    fn new(pool: Pool<T, S>) -> Self {
        pool.close();
        Departure {
            pool: Some(pool),
            place: Place::default(),
        }
    }
}

impl<T: Send + 'static, S: Send + 'static> Unpin for Departure<T, S> {}

impl<T: Send + 'static, S: Send + 'static> Future for Departure<T, S> {
    type Output = (Report, Option<Payload>);

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let pool = this.pool.as_ref().expect("polled after it completed");
        let exits = &pool.shared().exits;
        match this
            .place
            .poll_until(&exits.signal, cx, || exits.all_left().then_some(()))
        {
            Poll::Pending => Poll::Pending,
            Poll::Ready(()) => {
                let mut pool = this.pool.take().expect("checked above");
                Poll::Ready(pool.shut_down())
            }
        }
    }
}

impl<T: Send + 'static, S: Send + 'static> Drop for Departure<T, S> {
    fn drop(&mut self) {
        if let Some(pool) = self.pool.take() {
            self.place.leave(&pool.shared().exits.signal);
            // Dropped before the workers left: dropping the pool here would
            // join them on this (runtime) thread, so a thread of its own
            // does it. If that thread cannot start, the closure, and the
            // pool with it, is dropped here after all.
            if !pool.shared().exits.all_left() {
                let _ = std::thread::Builder::new()
                    .name("workforce-join".to_owned())
                    .spawn(move || drop(pool));
            }
        }
    }
}

impl<T: Send + 'static, S: Send + 'static> Pool<T, S> {
    /// Closes the pool (now, when called), waits for every accepted item and
    /// for the workers to leave without blocking the thread, then returns
    /// the report: the async [`join`](Pool::join). With [`Builder::resume_panics`](crate::Builder::resume_panics),
    /// a caught panic is re-raised when it completes.
    ///
    /// The wait is for the workers' wake-up, any runtime's: the threads are
    /// joined only once each has finished its last item, its `finish` and
    /// its callback, so the join itself returns at once. Dropped before it
    /// completes, the future hands the pool to a thread of its own that
    /// joins it, so even then the runtime thread does not block.
    ///
    /// Building a pool, [`close`](Pool::close), [`cancel`](Pool::cancel) and
    /// [`metrics`](Pool::metrics) never block; dropping a pool without
    /// waiting does (it joins the threads), so in async code end a pool with
    /// `join_async` or [`wait_async`](Pool::wait_async).
    ///
    /// ```
    /// use pool_core::{Ctx, Pool};
    ///
    /// let runtime = tokio::runtime::Builder::new_current_thread().build()?;
    /// let report = runtime.block_on(async {
    ///     let pool = Pool::builder().workers(2).build(|_ctx: &Ctx, _n: u64| Ok::<(), std::io::Error>(()))?;
    ///     let sender = pool.sender();
    ///     for n in 0..1_000 {
    ///         sender.send_async(n).await?;
    ///     }
    ///     Ok::<_, Box<dyn std::error::Error>>(pool.join_async().await)
    /// })?;
    /// assert_eq!(report.processed(), 1_000);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn join_async(self) -> impl Future<Output = Report> + Send + 'static {
        // Made (and the pool closed) now, not at the first poll: a future
        // dropped unpolled still joins on a thread of its own.
        let departure = Departure::new(self);
        async move {
            let (report, panic) = departure.await;
            if let Some(payload) = panic {
                resume_unwind(payload);
            }
            report
        }
    }

    /// Like [`join_async`](Pool::join_async), returning the run's errors as
    /// `Err`: the async [`wait`](Pool::wait) (see [`Report::into_result`]).
    pub fn wait_async(self) -> impl Future<Output = Result<Report, PoolError>> + Send + 'static {
        let joined = self.join_async();
        async move { joined.await.into_result() }
    }
}
