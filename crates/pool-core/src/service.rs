//! The `tower` feature: a call pool as a `tower_service::Service`, so it
//! drops into tower, axum or tonic stacks.
//!
//! `poll_ready` reserves room for one item in the pool (waiting without
//! blocking the thread, as `send_async` does); `call` hands the item in with
//! that room and returns the answer's future. A reservation that is never
//! used is given back when the service is dropped.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use crate::capacity::Refusal;
use crate::shared::Shared;
use crate::signal::Place;
use crate::{Call, CallError, CallHandle, Pool, Sender};

/// Why a [`CallService`] gave no response.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// The pool was closed (`close`, `wait`, dropped): `poll_ready` says so,
    /// and the service will not become ready again.
    #[error("the pool is closed")]
    Closed,
    /// The pool was cancelled: as `Closed`.
    #[error("the pool is cancelled")]
    Cancelled,
    /// The call ran (or was dropped) and gave no value: see [`CallError`].
    #[error(transparent)]
    Call(#[from] CallError),
}

/// A call pool as a [`tower_service::Service`]: `poll_ready` is room in the
/// pool (reserved for the next `call`), `call` hands the item in and returns
/// the future of its answer. From [`Pool::service`] or [`Sender::service`].
///
/// Each clone reserves its own room; a clone starts without any. A
/// reservation that `call` never used is given back when the service is
/// dropped. Waiting for room never blocks the thread.
///
/// ```
/// use pool_core::{Ctx, Pool};
/// use tower::{Service, ServiceExt};
///
/// let pool = Pool::builder().workers(2).build_call(|_ctx: &Ctx, text: String| {
///     Ok::<_, std::io::Error>(text.len())
/// })?;
/// let mut service = pool.service();
/// let runtime = tokio::runtime::Builder::new_current_thread().build()?;
/// let length = runtime.block_on(async {
///     service.ready().await?.call("four".to_owned()).await
/// })?;
/// assert_eq!(length, 4);
/// drop(service);
/// runtime.block_on(pool.wait_async())?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct CallService<T, R> {
    shared: Arc<Shared<Call<T, R>>>,
    /// Room for one item, reserved by `poll_ready` for the next `call`.
    reserved: bool,
    place: Place,
}

impl<T, R> fmt::Debug for CallService<T, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallService")
            .field("reserved", &self.reserved)
            .finish_non_exhaustive()
    }
}

impl<T, R> CallService<T, R> {
    fn new(shared: Arc<Shared<Call<T, R>>>) -> Self {
        CallService {
            shared,
            reserved: false,
            place: Place::default(),
        }
    }
}

/// A clone starts without room of its own.
impl<T, R> Clone for CallService<T, R> {
    fn clone(&self) -> Self {
        CallService::new(Arc::clone(&self.shared))
    }
}

impl<T, R> Drop for CallService<T, R> {
    fn drop(&mut self) {
        self.place.leave(&self.shared.capacity.room);
        if self.reserved {
            self.shared.release(1);
        }
    }
}

impl<T: Send + 'static, R: Send + 'static> Pool<Call<T, R>> {
    /// This pool as a [`tower_service::Service`] (see [`CallService`]).
    pub fn service(&self) -> CallService<T, R> {
        CallService::new(Arc::clone(self.shared()))
    }
}

impl<T: Send + 'static, R: Send + 'static> Sender<Call<T, R>> {
    /// The pool of this sender as a [`tower_service::Service`] (see
    /// [`CallService`]).
    pub fn service(&self) -> CallService<T, R> {
        CallService::new(Arc::clone(self.shared()))
    }
}

impl<T: Send + 'static, R: Send + 'static> tower_service::Service<T> for CallService<T, R> {
    type Response = R;
    type Error = ServiceError;
    type Future = ServiceFuture<R>;

    /// Reserves room for one item, waiting without blocking the thread.
    /// `Err(Closed)` or `Err(Cancelled)` once the pool takes no more items.
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), ServiceError>> {
        if self.reserved {
            return Poll::Ready(Ok(()));
        }
        let shared = &*self.shared;
        let outcome = self.place.poll_until(&shared.capacity.room, cx, || {
            match shared.reserve_one_now() {
                Ok(true) => Some(Ok(())),
                Ok(false) => None,
                Err(refusal) => Some(Err(refusal)),
            }
        });
        match outcome {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(())) => {
                self.reserved = true;
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(Refusal::Cancelled)) => Poll::Ready(Err(ServiceError::Cancelled)),
            Poll::Ready(Err(Refusal::Closed | Refusal::Full)) => {
                Poll::Ready(Err(ServiceError::Closed))
            }
        }
    }

    /// Hands `item` in with the room `poll_ready` reserved; the future
    /// resolves to its answer. In a keyed pool the key function runs here.
    ///
    /// # Panics
    ///
    /// If `poll_ready` did not return `Ready(Ok(()))` first (the `Service`
    /// contract).
    fn call(&mut self, item: T) -> ServiceFuture<R> {
        assert!(
            self.reserved,
            "CallService::call without room: call `poll_ready` (or `ServiceExt::ready`) first"
        );
        let (call, handle) = Call::new(item);
        // If the key function panics, the room stays reserved for the next
        // call (or is given back on drop).
        let target = self.shared.queues.target(&call, 0);
        self.reserved = false;
        self.shared.push_reserved(call, target);
        ServiceFuture { handle }
    }
}

/// The future of a [`CallService`] call: its [`CallHandle`], with the
/// error as [`ServiceError::Call`].
#[must_use = "a future does nothing unless polled"]
#[derive(Debug)]
pub struct ServiceFuture<R> {
    handle: CallHandle<R>,
}

impl<R> ServiceFuture<R> {
    /// The call's handle, to wait on it from a thread instead.
    pub fn into_handle(self) -> CallHandle<R> {
        self.handle
    }
}

impl<R> Future for ServiceFuture<R> {
    type Output = Result<R, ServiceError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.get_mut().handle)
            .poll(cx)
            .map(|outcome| outcome.map_err(ServiceError::Call))
    }
}
