//! The caller's side of a call: [`CallHandle`], and what a call can end in
//! besides a value ([`CallError`], [`CallPanic`]).

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::panic::resume_unwind;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

use oneshot::{AsyncReceiver, Receiver, RecvError, RecvTimeoutError, TryRecvError};

use crate::BoxError;

/// What a call's slot carries: the value, or why there is none.
pub(crate) type Answer<R> = Result<R, CallError>;

/// Why a call gave no value. Every called item ends in exactly one outcome:
/// its value (`Ok`) or one of these.
///
/// `Send + Sync + 'static`, so `handle.wait()?` converts it into
/// `Box<dyn Error + Send + Sync>` or `anyhow::Error`.
///
/// ```
/// use pool_core::{CallError, Ctx, Pool};
///
/// let pool = Pool::builder().workers(2).continue_on_error().build_call(|_ctx: &Ctx, n: u32| {
///     if n == 0 { return Err(std::io::Error::other("zero")) }
///     if n == 13 { panic!("unlucky") }
///     Ok(100 / n)
/// })?;
/// assert_eq!(pool.call(4)?.wait()?, 25);
/// match pool.call(0)?.wait() {
///     Err(CallError::Failed(error)) => assert!(error.downcast_ref::<std::io::Error>().is_some()),
///     other => panic!("expected the worker's error, got {other:?}"),
/// }
/// match pool.call(13)?.wait() {
///     Err(CallError::Panicked(panic)) => assert_eq!(panic.message(), "unlucky"),
///     other => panic!("expected the panic, got {other:?}"),
/// }
/// let report = pool.join();
/// assert_eq!((report.processed(), report.failed()), (1, 2));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    /// The worker, or a layer around it, returned this error: the error the
    /// outermost layer returned, as the worker's type boxed
    /// (`error.downcast_ref::<E>()` finds it). It counts as failed, and the
    /// pool's report keeps its text.
    #[error(transparent)]
    Failed(BoxError),
    /// The worker (or a layer) panicked. The handle owns the panic's payload
    /// (see [`CallPanic`]); the pool's report keeps its message. It counts as
    /// failed.
    #[error("the call panicked: {0}")]
    Panicked(CallPanic),
    /// The item never ran: the pool dropped it, on [`Pool::cancel`](crate::Pool::cancel),
    /// a cancelled token, or the first error under the default stop-on-error
    /// policy. It counts as dropped.
    #[error("the call was dropped before it ran (the pool was cancelled)")]
    Dropped,
    /// A layer returned `Ok` without passing the item on to the worker (a
    /// filter written with [`layer_fn`](crate::layer_fn)), so there is no
    /// value. It counts as processed.
    #[error("a layer let the call succeed without running the worker: there is no value")]
    Skipped,
}

impl CallError {
    /// The worker's error, if the call failed with one (not a panic).
    pub fn as_failed(&self) -> Option<&(dyn std::error::Error + Send + Sync + 'static)> {
        match self {
            CallError::Failed(error) => Some(&**error),
            _ => None,
        }
    }
}

/// A caught panic of a called item: its message, and its payload, which the
/// call's handle owns as [`std::thread::JoinHandle::join`] hands one over.
///
/// The payload sits behind a lock that is never contended, so that
/// [`CallError`] is `Sync`; [`payload_mut`](CallPanic::payload_mut) and
/// [`into_payload`](CallPanic::into_payload) reach it without locking.
///
/// ```
/// use pool_core::{CallError, Ctx, Pool};
///
/// #[derive(Debug, PartialEq)]
/// struct Corrupt { block: u64 }
///
/// let pool = Pool::builder().workers(1).build_call(|_ctx: &Ctx, block: u64| -> Result<u64, std::io::Error> {
///     std::panic::panic_any(Corrupt { block })
/// })?;
/// let Err(CallError::Panicked(panic)) = pool.call(7)?.wait() else { panic!("expected a panic") };
/// assert_eq!(panic.message(), "a panic with a non-string payload");
/// let payload = panic.into_payload();
/// assert_eq!(payload.downcast_ref::<Corrupt>(), Some(&Corrupt { block: 7 }));
/// # let _ = pool.join();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct CallPanic {
    message: String,
    payload: Mutex<Box<dyn Any + Send>>,
}

impl CallPanic {
    pub(crate) fn new(message: String, payload: Box<dyn Any + Send>) -> Self {
        CallPanic {
            message,
            payload: Mutex::new(payload),
        }
    }

    /// The panic's message (a `&str` or `String` payload), or "a panic with
    /// a non-string payload".
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The payload, to look at (`downcast_ref`) or change.
    pub fn payload_mut(&mut self) -> &mut (dyn Any + Send) {
        &mut **self
            .payload
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The payload, as `std::thread::JoinHandle::join` returns it.
    pub fn into_payload(self) -> Box<dyn Any + Send> {
        self.payload
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Raises the panic again on the calling thread, with its payload.
    pub fn resume(self) -> ! {
        resume_unwind(self.into_payload())
    }
}

impl fmt::Debug for CallPanic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallPanic")
            .field("message", &self.message)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for CallPanic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Where a handle's answer is: not looked at yet (blocking receives work
/// directly), polled as a future once, or taken.
enum State<R> {
    Waiting(Receiver<Answer<R>>),
    Polled(AsyncReceiver<Answer<R>>),
    Taken,
}

/// The answer to one call: blocks ([`wait`](CallHandle::wait),
/// [`wait_timeout`](CallHandle::wait_timeout)), looks
/// ([`try_get`](CallHandle::try_get)), or is awaited (it is a `Future`):
/// one handle for sync and async callers, from [`Pool::call`](crate::Pool::call),
/// [`Sender::call`](crate::Sender::call), [`Call::new`](crate::Call::new)
/// and their `try_`, `_timeout` and `_async` siblings.
///
/// It resolves exactly once, to the worker's value or a [`CallError`]: the
/// worker's error, a panic with its payload, [`Dropped`](CallError::Dropped)
/// when the pool dropped the item before it ran, or
/// [`Skipped`](CallError::Skipped). Never to a bare channel error.
///
/// Dropping the handle does not cancel the call: the item still runs, its
/// value is dropped, and an error or panic it ends in goes to the pool's
/// report whole (the payload too, for [`Builder::resume_panics`](crate::Builder::resume_panics)).
///
/// Behind it is one allocation per call (a `oneshot` channel), made by
/// `Call::new`; waiting parks the thread, or registers the task's waker.
///
/// ```
/// use std::time::Duration;
/// use pool_core::{Ctx, Pool};
///
/// let pool = Pool::builder().workers(2).build_call(|_ctx: &Ctx, word: String| {
///     Ok::<_, std::convert::Infallible>(word.len())
/// })?;
/// let mut handle = pool.call("pool".to_owned())?;
/// let length = match handle.wait_timeout(Duration::from_secs(10)) {
///     Some(outcome) => outcome?,
///     None => panic!("not answered within ten seconds"),
/// };
/// assert_eq!(length, 4);
/// # pool.wait()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "a handle is how the call's value or error comes back; dropping it discards them"]
pub struct CallHandle<R> {
    state: State<R>,
}

impl<R> fmt::Debug for CallHandle<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Taken => "taken",
            _ if self.is_finished() => "answered",
            _ => "waiting",
        };
        f.debug_struct("CallHandle").field("state", &state).finish()
    }
}

/// The slot's disconnection means the item was dropped unanswered: a call
/// that ran always answers before its slot goes.
fn answered<R>(outcome: Result<Answer<R>, RecvError>) -> Answer<R> {
    outcome.unwrap_or(Err(CallError::Dropped))
}

impl<R> CallHandle<R> {
    pub(crate) fn new(receiver: Receiver<Answer<R>>) -> Self {
        CallHandle {
            state: State::Waiting(receiver),
        }
    }

    /// Blocks until the call is answered and returns its outcome.
    ///
    /// # Panics
    ///
    /// If the outcome was already taken (by `try_get`, `wait_timeout` or
    /// polling).
    pub fn wait(self) -> Result<R, CallError> {
        match self.state {
            State::Waiting(receiver) => answered(receiver.recv()),
            State::Polled(mut receiver) => answered(
                block_on(&mut receiver, None).expect("a wait without a deadline ends answered"),
            ),
            State::Taken => panic!("the call's outcome was already taken"),
        }
    }

    /// Waits at most `timeout` for the outcome: `Some` once answered (the
    /// outcome is then taken), `None` if the time ran out (wait again later).
    ///
    /// # Panics
    ///
    /// If the outcome was already taken.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<Result<R, CallError>> {
        let deadline = Instant::now().checked_add(timeout);
        let outcome = match &mut self.state {
            State::Waiting(receiver) => match deadline {
                Some(deadline) => match receiver.recv_deadline(deadline) {
                    Ok(answer) => Some(answer),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => Some(Err(CallError::Dropped)),
                },
                None => Some(answered(receiver.recv_ref())),
            },
            State::Polled(receiver) => block_on(receiver, deadline).map(answered),
            State::Taken => panic!("the call's outcome was already taken"),
        };
        if outcome.is_some() {
            self.state = State::Taken;
        }
        outcome
    }

    /// The outcome if the call has been answered (it is then taken), or
    /// `None` without waiting.
    ///
    /// ```
    /// use pool_core::{Ctx, Pool};
    ///
    /// let pool = Pool::builder().workers(2).build_call(|_ctx: &Ctx, n: u64| Ok::<_, std::io::Error>(n * n))?;
    /// let mut pending: Vec<_> = (0..10).map(|n| pool.call(n)).collect::<Result<_, _>>()?;
    /// let mut sum = 0;
    /// while !pending.is_empty() {
    ///     pending.retain_mut(|handle| match handle.try_get() {
    ///         Some(square) => { sum += square.expect("squares succeed"); false }
    ///         None => true,
    ///     });
    ///     std::thread::yield_now();
    /// }
    /// assert_eq!(sum, 285);
    /// # pool.wait()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Panics
    ///
    /// If the outcome was already taken.
    pub fn try_get(&mut self) -> Option<Result<R, CallError>> {
        let outcome = match &mut self.state {
            State::Waiting(receiver) => match receiver.try_recv() {
                Ok(answer) => Some(answer),
                Err(TryRecvError::Empty) => None,
                Err(TryRecvError::Disconnected) => Some(Err(CallError::Dropped)),
            },
            State::Polled(receiver) => {
                if receiver.has_message() || receiver.is_closed() {
                    // Ready for sure now: the waker is never used.
                    let mut cx = Context::from_waker(Waker::noop());
                    match Pin::new(receiver).poll(&mut cx) {
                        Poll::Ready(outcome) => Some(answered(outcome)),
                        Poll::Pending => None,
                    }
                } else {
                    None
                }
            }
            State::Taken => panic!("the call's outcome was already taken"),
        };
        if outcome.is_some() {
            self.state = State::Taken;
        }
        outcome
    }

    /// Whether the call has been answered (or its outcome taken): a
    /// [`try_get`](CallHandle::try_get) would return `Some`.
    pub fn is_finished(&self) -> bool {
        match &self.state {
            State::Waiting(receiver) => receiver.has_message() || receiver.is_closed(),
            State::Polled(receiver) => receiver.has_message() || receiver.is_closed(),
            State::Taken => true,
        }
    }
}

/// Awaiting a handle waits for the call without blocking the thread. It
/// works with any executor (the slot wakes the task's waker).
///
/// # Panics
///
/// When polled after it returned `Ready`, or after the outcome was taken.
impl<R> Future for CallHandle<R> {
    type Output = Result<R, CallError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if let State::Waiting(_) = this.state {
            let State::Waiting(receiver) = std::mem::replace(&mut this.state, State::Taken) else {
                unreachable!("matched just above")
            };
            this.state = State::Polled(std::future::IntoFuture::into_future(receiver));
        }
        let State::Polled(receiver) = &mut this.state else {
            panic!("a CallHandle polled after its outcome was taken")
        };
        match Pin::new(receiver).poll(cx) {
            Poll::Ready(outcome) => {
                this.state = State::Taken;
                Poll::Ready(answered(outcome))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

/// Wakes a thread parked in [`block_on`].
struct Unpark(Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// Blocks the thread on a receiver that was polled as a future (it has no
/// blocking receive of its own any more): polls with a waker that unparks
/// this thread, and parks between polls. `None` if `deadline` passed.
fn block_on<R>(
    receiver: &mut AsyncReceiver<Answer<R>>,
    deadline: Option<Instant>,
) -> Option<Result<Answer<R>, RecvError>> {
    let waker = Waker::from(Arc::new(Unpark(thread::current())));
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(outcome) = Pin::new(&mut *receiver).poll(&mut cx) {
            return Some(outcome);
        }
        match deadline {
            None => thread::park(),
            Some(deadline) => {
                let now = Instant::now();
                if now >= deadline {
                    return None;
                }
                thread::park_timeout(deadline - now);
            }
        }
    }
}
