//! Error types: build errors, refusals and run errors.
//!
//! One error per verb, in every crate of the workspace (crossbeam-channel's
//! habit): the verb and its error share a name.
//!
//! | verb | blocking | `try_` and `_timeout` |
//! |---|---|---|
//! | `submit` (a [`Submitter`](crate::Submitter), pool-collect's `Dispatcher`) | [`SubmitError`] | [`TrySubmitError`] |
//! | `send` (a pool's [`Sender`](crate::Sender), pool-collect's collector sender) | [`SendError`] | [`TrySendError`] |
//! | `spawn` (a worker's [`Ctx`](crate::Ctx) or [`Spawner`](crate::Spawner), into its own pool; never blocks) | [`SpawnError`] | [`TrySpawnError`] |
//! | `build` (every builder) | the crate's own build error, naming the setting | |
//! | `run` (a pool pulling from an iterator) | [`RunError`] | |
//! | `wait` | [`PoolError`] | |

use std::any::Any;
use std::fmt;
use std::sync::{Mutex, PoisonError};

use crate::{ItemKey, WorkerId};

/// The boxed error every worker error converts into.
///
/// `anyhow::Error`, `std::io::Error` and any `thiserror` enum convert into it
/// with `Into`, so a worker may return whichever error type suits it.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a pool could not be built: an invalid setting, reported by
/// [`Builder::build`](crate::Builder::build) and its siblings before any
/// thread starts, or a thread that could not start or make its worker.
///
/// Each setting variant names the setting that is wrong.
///
/// **The maker's error.** `E` is the error type of a fallible maker
/// ([`Builder::try_build_stateful`](crate::Builder::try_build_stateful) and
/// its siblings): [`Maker`](Self::Maker) carries it as the maker returned
/// it, with the worker that failed. Builds whose makers cannot fail return
/// the plain `BuildError` (`E` is [`Infallible`](std::convert::Infallible),
/// so that variant cannot occur), which is `Clone` and `Eq`.
///
/// `BuildError<E>` is an error (`std::error::Error`) whenever `E` is
/// `Debug + Display`, which `anyhow::Error` is too, so `?` takes it into
/// `anyhow` or a `Box<dyn Error>`. Its [`source`](std::error::Error::source)
/// is `None` for [`Maker`](Self::Maker) (a generic `E` need not be an
/// error type); the maker's message is part of its own.
///
/// ```
/// use pool_core::{BuildError, Ctx, Pool};
///
/// let built = Pool::builder().workers(2).try_build_stateful(|ctx: &Ctx| {
///     if ctx.worker_id().index() == 1 {
///         return Err("no connection for worker #1");
///     }
///     Ok(|_ctx: &Ctx, _n: u32| Ok::<(), std::io::Error>(()))
/// });
/// let Err(BuildError::Maker { worker, error }) = built else { panic!("worker #1 fails") };
/// assert_eq!((worker.index(), error), (1, "no connection for worker #1"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError<E = std::convert::Infallible> {
    /// `workers` was never set.
    #[error("`workers` is required: call `.workers(n)` with n >= 1")]
    WorkersNotSet,
    /// `workers` was 0.
    #[error("`workers` must be at least 1, got 0")]
    ZeroWorkers,
    /// `workers` was larger than [`MAX_WORKERS`](crate::MAX_WORKERS).
    #[error("`workers` must be at most {max}, got {workers}")]
    TooManyWorkers {
        /// The requested number of workers.
        workers: usize,
        /// The largest number accepted.
        max: usize,
    },
    /// `max_workers` was below `workers`: a pool has seats for at least its
    /// starting workers.
    #[error("`max_workers` ({max_workers}) must be at least `workers` ({workers})")]
    MaxWorkersBelowWorkers {
        /// The requested most workers.
        max_workers: usize,
        /// The starting workers.
        workers: usize,
    },
    /// `max_workers` was larger than [`MAX_WORKERS`](crate::MAX_WORKERS).
    #[error("`max_workers` must be at most {max}, got {max_workers}")]
    MaxWorkersTooLarge {
        /// The requested most workers.
        max_workers: usize,
        /// The largest number accepted.
        max: usize,
    },
    /// `batch_size` was invalid for the item type: 0, or so large that one
    /// batch of these items would exceed `isize::MAX` bytes (which takes an
    /// item type of terabytes, since [`BatchTooLarge`](Self::BatchTooLarge)
    /// is checked first).
    // Not `#[from]`: that would also make the inner error the `source`, and
    // reporters that print the chain (anyhow's `{:#}`) showed it twice.
    #[error("invalid `batch_size`: {0}")]
    BatchSize(pool_batch::BatchSizeError),
    /// `batch_size` was larger than [`MAX_BATCH_SIZE`](crate::MAX_BATCH_SIZE),
    /// for any item type.
    #[error("`batch_size` must be at most {max}, got {batch_size}")]
    BatchTooLarge {
        /// The requested batch size.
        batch_size: usize,
        /// The largest batch size accepted.
        max: usize,
    },
    /// `capacity` was 0.
    #[error("`capacity` must be at least 1, got 0")]
    ZeroCapacity,
    /// `capacity` was larger than [`MAX_CAPACITY`](crate::MAX_CAPACITY).
    #[error("`capacity` must be at most {max}, got {capacity}")]
    CapacityTooLarge {
        /// The requested capacity.
        capacity: usize,
        /// The largest capacity accepted.
        max: usize,
    },
    /// `batch_size` was larger than `capacity`, so no batch could ever be admitted.
    #[error("`batch_size` ({batch_size}) must not exceed `capacity` ({capacity})")]
    BatchExceedsCapacity {
        /// The requested batch size.
        batch_size: usize,
        /// The requested (or default) capacity.
        capacity: usize,
    },
    /// `error_limit` was 0, so the report would keep no error at all. It is
    /// refused under either error policy: with `stop_on_error` (the default)
    /// the limit also applies, to the error that stops the pool and to any
    /// that other workers hit before they see the cancel.
    #[error("`error_limit` must be at least 1")]
    ZeroErrorLimit,
    /// `thread_name` contained a NUL byte, which no operating system accepts
    /// in a thread name.
    #[error("`thread_name` must not contain a NUL byte, got {name:?}")]
    ThreadName {
        /// The refused thread name prefix.
        name: String,
    },
    /// The operating system refused to start a worker thread.
    #[error("could not spawn worker thread {worker}: {message}")]
    Spawn {
        /// The worker whose thread failed to start.
        worker: WorkerId,
        /// The operating system's message.
        message: String,
    },
    /// A fallible maker ([`Builder::try_build_stateful`](crate::Builder::try_build_stateful)
    /// and its siblings) returned an error. If several makers failed, this
    /// is the failure of the lowest-numbered worker. No item ran: every
    /// thread was shut down and joined before the build returned, and the
    /// workers other makers made were dropped on their threads (without
    /// [`finish`](crate::Worker::finish) or any callback). Nothing of the
    /// pool is left, so a build that failed for a passing reason (a
    /// database still starting) may simply be tried again.
    #[error("the maker of worker {worker} failed: {error}")]
    Maker {
        /// The worker whose maker failed.
        worker: WorkerId,
        /// The maker's error, as it returned it.
        error: E,
    },
    /// A fallible maker panicked (see [`Maker`](Self::Maker) for what is
    /// left of the pool: nothing). With
    /// [`Builder::resume_panics`](crate::Builder::resume_panics) the build
    /// re-raises the panic with its payload instead, after joining the
    /// threads.
    #[error("the maker of worker {worker} panicked: {message}")]
    MakerPanicked {
        /// The worker whose maker panicked.
        worker: WorkerId,
        /// The panic's message.
        message: String,
    },
}

impl<E> From<pool_batch::BatchSizeError> for BuildError<E> {
    fn from(error: pool_batch::BatchSizeError) -> Self {
        BuildError::BatchSize(error)
    }
}

impl BuildError {
    /// The same error, in a build whose makers fail with `E` (a build error
    /// of infallible makers never is a [`Maker`](BuildError::Maker) error).
    pub(crate) fn widen<E>(self) -> BuildError<E> {
        match self {
            BuildError::WorkersNotSet => BuildError::WorkersNotSet,
            BuildError::ZeroWorkers => BuildError::ZeroWorkers,
            BuildError::TooManyWorkers { workers, max } => {
                BuildError::TooManyWorkers { workers, max }
            }
            BuildError::MaxWorkersBelowWorkers {
                max_workers,
                workers,
            } => BuildError::MaxWorkersBelowWorkers {
                max_workers,
                workers,
            },
            BuildError::MaxWorkersTooLarge { max_workers, max } => {
                BuildError::MaxWorkersTooLarge { max_workers, max }
            }
            BuildError::BatchSize(error) => BuildError::BatchSize(error),
            BuildError::BatchTooLarge { batch_size, max } => {
                BuildError::BatchTooLarge { batch_size, max }
            }
            BuildError::ZeroCapacity => BuildError::ZeroCapacity,
            BuildError::CapacityTooLarge { capacity, max } => {
                BuildError::CapacityTooLarge { capacity, max }
            }
            BuildError::BatchExceedsCapacity {
                batch_size,
                capacity,
            } => BuildError::BatchExceedsCapacity {
                batch_size,
                capacity,
            },
            BuildError::ZeroErrorLimit => BuildError::ZeroErrorLimit,
            BuildError::ThreadName { name } => BuildError::ThreadName { name },
            BuildError::Spawn { worker, message } => BuildError::Spawn { worker, message },
            BuildError::Maker { error, .. } => match error {},
            BuildError::MakerPanicked { worker, message } => {
                BuildError::MakerPanicked { worker, message }
            }
        }
    }
}

/// Why a submission was refused. Every variant hands the item back.
#[derive(PartialEq, Eq, thiserror::Error)]
pub enum SubmitError<T> {
    /// The pool was closed (`close`, `wait` or drop); the item was not taken.
    #[error("the pool is closed; the item was handed back")]
    Closed(T),
    /// The pool was cancelled; the item was not taken.
    #[error("the pool is cancelled; the item was handed back")]
    Cancelled(T),
}

impl<T> SubmitError<T> {
    /// Takes the refused item back.
    pub fn into_inner(self) -> T {
        match self {
            SubmitError::Closed(item) | SubmitError::Cancelled(item) => item,
        }
    }
}

impl<T> fmt::Debug for SubmitError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubmitError::Closed(_) => f.write_str("Closed(..)"),
            SubmitError::Cancelled(_) => f.write_str("Cancelled(..)"),
        }
    }
}

/// Why a non-blocking or timed submission was refused. Every variant hands the item back.
#[derive(PartialEq, Eq, thiserror::Error)]
pub enum TrySubmitError<T> {
    /// The pool was at capacity (for `submit_timeout`: for the whole timeout).
    #[error("the pool is at capacity; the item was handed back")]
    Full(T),
    /// The pool was closed; the item was not taken.
    #[error("the pool is closed; the item was handed back")]
    Closed(T),
    /// The pool was cancelled; the item was not taken.
    #[error("the pool is cancelled; the item was handed back")]
    Cancelled(T),
}

impl<T> TrySubmitError<T> {
    /// Takes the refused item back.
    pub fn into_inner(self) -> T {
        match self {
            TrySubmitError::Full(item)
            | TrySubmitError::Closed(item)
            | TrySubmitError::Cancelled(item) => item,
        }
    }
}

impl<T> fmt::Debug for TrySubmitError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySubmitError::Full(_) => f.write_str("Full(..)"),
            TrySubmitError::Closed(_) => f.write_str("Closed(..)"),
            TrySubmitError::Cancelled(_) => f.write_str("Cancelled(..)"),
        }
    }
}

impl<T> From<SubmitError<T>> for TrySubmitError<T> {
    fn from(error: SubmitError<T>) -> Self {
        match error {
            SubmitError::Closed(item) => TrySubmitError::Closed(item),
            SubmitError::Cancelled(item) => TrySubmitError::Cancelled(item),
        }
    }
}

/// Why [`Sender::send`](crate::Sender::send) (or a collector's `send`, in
/// `pool-collect`) refused an item. Every variant hands the item back.
///
/// A pool's [`Sender`](crate::Sender) never says `Disconnected`: it keeps
/// the pool's shared state alive, and a pool that was waited on or dropped
/// is closed. A collector's sender says it when the consumer is gone.
#[derive(PartialEq, Eq, thiserror::Error)]
pub enum SendError<T> {
    /// The receiving side was closed; the item was not taken.
    #[error("closed; the item was handed back")]
    Closed(T),
    /// The receiving side was cancelled; the item was not taken.
    #[error("cancelled; the item was handed back")]
    Cancelled(T),
    /// Nobody would receive the item (a collector's consumer was dropped);
    /// it was not taken.
    #[error("the receiver is gone; the item was handed back")]
    Disconnected(T),
}

impl<T> SendError<T> {
    /// Takes the refused item back.
    pub fn into_inner(self) -> T {
        match self {
            SendError::Closed(item)
            | SendError::Cancelled(item)
            | SendError::Disconnected(item) => item,
        }
    }
}

impl<T> fmt::Debug for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SendError::Closed(_) => "Closed(..)",
            SendError::Cancelled(_) => "Cancelled(..)",
            SendError::Disconnected(_) => "Disconnected(..)",
        })
    }
}

/// Why [`Sender::try_send`](crate::Sender::try_send) or
/// [`Sender::send_timeout`](crate::Sender::send_timeout) (or a collector's
/// `try_send`) refused an item. Every variant hands the item back.
#[derive(PartialEq, Eq, thiserror::Error)]
pub enum TrySendError<T> {
    /// No room (for `send_timeout`: for the whole timeout).
    #[error("full; the item was handed back")]
    Full(T),
    /// The receiving side was closed; the item was not taken.
    #[error("closed; the item was handed back")]
    Closed(T),
    /// The receiving side was cancelled; the item was not taken.
    #[error("cancelled; the item was handed back")]
    Cancelled(T),
    /// Nobody would receive the item; it was not taken.
    #[error("the receiver is gone; the item was handed back")]
    Disconnected(T),
}

impl<T> TrySendError<T> {
    /// Takes the refused item back.
    pub fn into_inner(self) -> T {
        match self {
            TrySendError::Full(item)
            | TrySendError::Closed(item)
            | TrySendError::Cancelled(item)
            | TrySendError::Disconnected(item) => item,
        }
    }
}

impl<T> fmt::Debug for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TrySendError::Full(_) => "Full(..)",
            TrySendError::Closed(_) => "Closed(..)",
            TrySendError::Cancelled(_) => "Cancelled(..)",
            TrySendError::Disconnected(_) => "Disconnected(..)",
        })
    }
}

impl<T> From<SendError<T>> for TrySendError<T> {
    fn from(error: SendError<T>) -> Self {
        match error {
            SendError::Closed(item) => TrySendError::Closed(item),
            SendError::Cancelled(item) => TrySendError::Cancelled(item),
            SendError::Disconnected(item) => TrySendError::Disconnected(item),
        }
    }
}

/// Why [`Ctx::spawn`](crate::Ctx::spawn) (or [`Spawner::spawn`](crate::Spawner::spawn))
/// refused an item. Every variant hands the item back; a refused item was
/// not counted.
///
/// A spawn never waits for room and is not refused when the pool is closed
/// (close stops producers outside the pool, not the tree being worked
/// through), so there is no `Full` and no `Closed` here.
#[derive(PartialEq, Eq, thiserror::Error)]
pub enum SpawnError<T> {
    /// The pool was cancelled; the item was not taken.
    #[error("the pool is cancelled; the item was handed back")]
    Cancelled(T),
    /// This context cannot spawn items of this type now: the pool's items
    /// are of another type (a call pool's items are `Call`s), or the
    /// worker is not running an item (its maker, `finish`, a `Drop`).
    /// [`Ctx::spawner`](crate::Ctx::spawner) says `None` in the same cases.
    #[error("no pool of this item type is running an item here; the item was handed back")]
    Unavailable(T),
}

impl<T> SpawnError<T> {
    /// Takes the refused item back.
    pub fn into_inner(self) -> T {
        match self {
            SpawnError::Cancelled(item) | SpawnError::Unavailable(item) => item,
        }
    }
}

impl<T> fmt::Debug for SpawnError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SpawnError::Cancelled(_) => "Cancelled(..)",
            SpawnError::Unavailable(_) => "Unavailable(..)",
        })
    }
}

/// Why [`Ctx::try_spawn`](crate::Ctx::try_spawn) (or
/// [`Spawner::try_spawn`](crate::Spawner::try_spawn)) refused an item. Every
/// variant hands the item back; a refused item was not counted.
#[derive(PartialEq, Eq, thiserror::Error)]
pub enum TrySpawnError<T> {
    /// The pool was at capacity (the room of finished items was taken back
    /// first): the worker may process the item itself instead.
    #[error("the pool is at capacity; the item was handed back")]
    Full(T),
    /// The pool was cancelled; the item was not taken.
    #[error("the pool is cancelled; the item was handed back")]
    Cancelled(T),
    /// As [`SpawnError::Unavailable`].
    #[error("no pool of this item type is running an item here; the item was handed back")]
    Unavailable(T),
}

impl<T> TrySpawnError<T> {
    /// Takes the refused item back.
    pub fn into_inner(self) -> T {
        match self {
            TrySpawnError::Full(item)
            | TrySpawnError::Cancelled(item)
            | TrySpawnError::Unavailable(item) => item,
        }
    }
}

impl<T> fmt::Debug for TrySpawnError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TrySpawnError::Full(_) => "Full(..)",
            TrySpawnError::Cancelled(_) => "Cancelled(..)",
            TrySpawnError::Unavailable(_) => "Unavailable(..)",
        })
    }
}

impl<T> From<SpawnError<T>> for TrySpawnError<T> {
    fn from(error: SpawnError<T>) -> Self {
        match error {
            SpawnError::Cancelled(item) => TrySpawnError::Cancelled(item),
            SpawnError::Unavailable(item) => TrySpawnError::Unavailable(item),
        }
    }
}

/// Why [`Pool::run`](crate::Pool::run) stopped before the end of its items.
/// The items not taken come back in [`Rest`], an iterator; every item taken
/// was counted and is in the pool's report.
#[derive(thiserror::Error)]
pub enum RunError<I: Iterator> {
    /// The pool was closed (before or during the run); the rest of the items
    /// were not taken.
    #[error("the pool is closed; the rest of the items were handed back")]
    Closed(Rest<I>),
    /// The pool was cancelled; the rest of the items were not taken.
    #[error("the pool is cancelled; the rest of the items were handed back")]
    Cancelled(Rest<I>),
    /// The iterator panicked in `next`. The items taken before were run; the
    /// panic is in the pool's report ([`PanicSite::Source`]). The iterator
    /// is not called again, so nothing is handed back.
    #[error("the items' iterator panicked after {taken} items (see the pool's report)")]
    SourcePanicked {
        /// Items taken (and run) before the panic.
        taken: u64,
    },
    /// `run` was called on a thread of this pool's own workers, where it would
    /// wait for itself; nothing was taken.
    #[error("Pool::run was called from one of the pool's own workers; the items were handed back")]
    InsideWorker(Rest<I>),
}

impl<I: Iterator> fmt::Debug for RunError<I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::Closed(_) => f.write_str("Closed(..)"),
            RunError::Cancelled(_) => f.write_str("Cancelled(..)"),
            RunError::SourcePanicked { taken } => f
                .debug_struct("SourcePanicked")
                .field("taken", taken)
                .finish(),
            RunError::InsideWorker(_) => f.write_str("InsideWorker(..)"),
        }
    }
}

impl<I: Iterator> RunError<I> {
    /// The items not taken, if any came back.
    pub fn into_rest(self) -> Option<Rest<I>> {
        match self {
            RunError::Closed(rest) | RunError::Cancelled(rest) | RunError::InsideWorker(rest) => {
                Some(rest)
            }
            RunError::SourcePanicked { .. } => None,
        }
    }
}

/// The items a [`Pool::run`](crate::Pool::run) did not take, in order: an
/// iterator over the one item refused at the door (a keyed pool's run hands
/// items in one by one) and then the rest of the caller's iterator.
pub struct Rest<I: Iterator> {
    refused: Option<I::Item>,
    rest: I,
}

impl<I: Iterator> Rest<I> {
    pub(crate) fn new(refused: Option<I::Item>, rest: I) -> Self {
        Rest { refused, rest }
    }
}

impl<I: Iterator> fmt::Debug for Rest<I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rest")
            .field("refused", &self.refused.is_some())
            .finish_non_exhaustive()
    }
}

impl<I: Iterator> Iterator for Rest<I> {
    type Item = I::Item;

    fn next(&mut self) -> Option<I::Item> {
        self.refused.take().or_else(|| self.rest.next())
    }
}

/// Where a caught panic happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PanicSite {
    /// In the worker, while processing an item or a batch.
    Work,
    /// In the maker that builds a stateful worker.
    Maker,
    /// In a worker's `finish` hook.
    Finish,
    /// In an `on_worker_done` or `on_pool_done` callback.
    Callback,
    /// In an item's `Drop`, when the pool dropped an item it owned: on cancel,
    /// without a worker (its maker panicked), or left in its batch by a batch
    /// worker. The item still counts as dropped (or as processed or failed,
    /// with its batch); the rest of its batch is still dropped, one at a time.
    Drop,
    /// In the `next` of the iterator a [`Pool::run`](crate::Pool::run) pulls
    /// from, on the worker that was taking items. The run stops there.
    Source,
}

impl fmt::Display for PanicSite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PanicSite::Work => "work",
            PanicSite::Maker => "maker",
            PanicSite::Finish => "finish",
            PanicSite::Callback => "callback",
            PanicSite::Drop => "dropping an item",
            PanicSite::Source => "the items' iterator",
        })
    }
}

/// What went wrong during a run, as returned by [`Pool::wait`](crate::Pool::wait)
/// and listed by [`Report::errors`](crate::Report::errors).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PoolError {
    /// A worker returned an error for an item (or a batch, for batch workers).
    #[error("worker {worker} failed{}: {source}", OnItem(.key))]
    Worker {
        /// The worker that failed.
        worker: WorkerId,
        /// The item's key, when the pool has an
        /// [`item_key`](crate::Builder::item_key) function (for a batch
        /// worker: the key of the batch's first item).
        key: Option<ItemKey>,
        /// The worker's own error.
        #[source]
        source: BoxError,
    },
    /// A worker's `finish` hook returned an error.
    #[error("worker {worker} failed to finish: {source}")]
    Finish {
        /// The worker whose hook failed.
        worker: WorkerId,
        /// The hook's own error.
        #[source]
        source: BoxError,
    },
    /// User code panicked; the panic was caught and the pool kept its accounting.
    #[error("{} panicked in {site}{}: {message}", Who(*.worker), OnItem(.key))]
    Panicked {
        /// The worker thread that caught the panic; `None` for code that runs
        /// on no worker (the `on_pool_done` callback).
        worker: Option<WorkerId>,
        /// Which piece of user code panicked.
        site: PanicSite,
        /// The key of the item being worked on, when the pool has an
        /// [`item_key`](crate::Builder::item_key) function and the panic
        /// happened in the work ([`PanicSite::Work`]; for a batch worker,
        /// the key of the batch's first item). `None` at every other site.
        key: Option<ItemKey>,
        /// The panic payload rendered as text (`&str` and `String` payloads; others say so).
        message: String,
        /// The panic payload itself, as [`std::thread::JoinHandle::join`]
        /// would return it: downcast it to the value given to `panic!` or
        /// [`std::panic::panic_any`], or re-raise it with
        /// [`PanicPayload::resume`].
        payload: PanicPayload,
    },
    /// The pool was cancelled (by `cancel()` or its token) before all items ran.
    #[error("the pool was cancelled; {dropped} items were dropped")]
    Cancelled {
        /// How many submitted items were dropped unprocessed.
        dropped: u64,
    },
    /// Several errors under `continue_on_error`: the retained ones and the total.
    #[error("{total} errors (first {} kept); first: {}", .errors.len(), FirstError(.errors))]
    Many {
        /// The retained errors, in the order they were recorded (at most `error_limit`).
        errors: Vec<PoolError>,
        /// How many errors happened in all.
        total: u64,
    },
}

/// Who panicked: a worker, or the pool itself (code run on no worker).
struct Who(Option<WorkerId>);

impl fmt::Display for Who {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(worker) => write!(f, "worker {worker}"),
            None => f.write_str("the pool"),
        }
    }
}

/// ` on item {key}`, or nothing for an error without a key.
struct OnItem<'a>(&'a Option<ItemKey>);

impl fmt::Display for OnItem<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(key) => write!(f, " on item {key}"),
            None => Ok(()),
        }
    }
}

struct FirstError<'a>(&'a [PoolError]);

impl fmt::Display for FirstError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.first() {
            Some(error) => fmt::Display::fmt(error, f),
            None => f.write_str("none kept"),
        }
    }
}

impl PoolError {
    /// Finds an `E` in this error: the worker's own error behind
    /// [`Worker`](PoolError::Worker) or [`Finish`](PoolError::Finish), its
    /// sources, each error retained by [`Many`](PoolError::Many), seeing
    /// through the built-in middleware's wrappers and `anyhow::Error`. The
    /// first found, outermost first. See [`find_error`](crate::find_error)
    /// for exactly what it sees through.
    ///
    /// ```
    /// use pool_core::{Ctx, Pool};
    ///
    /// #[derive(Debug, thiserror::Error)]
    /// enum ImportError {
    ///     #[error("row {0} is malformed")]
    ///     Malformed(u32),
    /// }
    ///
    /// let pool = Pool::builder().workers(1).build(|_ctx: &Ctx, row: u32| -> anyhow::Result<()> {
    ///     Err(ImportError::Malformed(row))?
    /// })?;
    /// pool.submitter().submit(7)?;
    /// let error = pool.wait().unwrap_err();
    /// assert!(matches!(error.find::<ImportError>(), Some(ImportError::Malformed(7))));
    /// assert!(error.find::<std::io::Error>().is_none());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn find<E>(&self) -> Option<&E>
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        crate::find_error(self)
    }

    /// The worker the error came from, where there is one.
    pub fn worker(&self) -> Option<WorkerId> {
        match self {
            PoolError::Worker { worker, .. } | PoolError::Finish { worker, .. } => Some(*worker),
            PoolError::Panicked { worker, .. } => *worker,
            PoolError::Cancelled { .. } | PoolError::Many { .. } => None,
        }
    }

    /// The key of the item the error is about, when the pool has an
    /// [`item_key`](crate::Builder::item_key) function (see
    /// [`PoolError::Worker`] and [`PoolError::Panicked`]).
    ///
    /// ```
    /// use pool_core::{Ctx, Pool};
    ///
    /// let pool = Pool::builder()
    ///     .workers(1)
    ///     .item_key(|job: &(u64, &'static str)| job.0)
    ///     .build(|_ctx: &Ctx, job: (u64, &'static str)| {
    ///         anyhow::ensure!(!job.1.is_empty(), "empty job");
    ///         Ok(())
    ///     })?;
    /// pool.sender().send((41, "fine"))?;
    /// pool.sender().send((42, ""))?;
    /// let error = pool.wait().unwrap_err();
    /// assert_eq!(error.key().and_then(|key| key.as_u64()), Some(42));
    /// assert_eq!(error.to_string(), "worker #0 failed on item 42: empty job");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn key(&self) -> Option<&ItemKey> {
        match self {
            PoolError::Worker { key, .. } | PoolError::Panicked { key, .. } => key.as_ref(),
            PoolError::Finish { .. } | PoolError::Cancelled { .. } | PoolError::Many { .. } => None,
        }
    }
}

/// Why [`Pool::set_workers`](crate::Pool::set_workers) did not change the
/// number of workers. Nothing changed then: the pool runs on with the
/// workers it had.
///
/// ```
/// use pool_core::{Ctx, Pool, ResizeError};
///
/// let pool = Pool::builder().workers(2).max_workers(4).build(|_ctx: &Ctx, _n: u32| {
///     Ok::<(), std::io::Error>(())
/// })?;
/// assert!(matches!(pool.set_workers(0), Err(ResizeError::Zero)));
/// let error = pool.set_workers(8).unwrap_err();
/// assert!(matches!(error, ResizeError::AboveMax { requested: 8, max_workers: 4 }));
/// assert!(error.to_string().contains("Builder::max_workers"));
/// pool.close();
/// assert!(matches!(pool.set_workers(3), Err(ResizeError::Closed)));
/// assert_eq!(pool.workers(), 2);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ResizeError {
    /// 0 workers were asked for: a pool has at least one.
    #[error("`set_workers` needs at least 1 worker, got 0 (the most is `Builder::max_workers`)")]
    Zero,
    /// More workers were asked for than the pool has seats for.
    #[error(
        "`set_workers({requested})` is above the pool's {max_workers} seats: raise `Builder::max_workers`"
    )]
    AboveMax {
        /// The number asked for.
        requested: usize,
        /// The pool's [`Builder::max_workers`](crate::Builder::max_workers).
        max_workers: usize,
    },
    /// The pool is closed ([`Pool::close`](crate::Pool::close)).
    #[error("the pool is closed: its workers are not resized")]
    Closed,
    /// The pool is cancelled.
    #[error("the pool is cancelled: its workers are not resized")]
    Cancelled,
    /// Called from one of the pool's own workers, which a resize may wait
    /// for (a retiring worker's item, a keyed pool's drain).
    #[error("`set_workers` was called from one of the pool's own workers, which it may wait for")]
    FromWorker,
    /// The pool runs in a [`scope`](crate::scope): its workers may borrow
    /// from the scope, and it keeps the number it was built with.
    #[error(
        "a scoped pool keeps its number of workers: `set_workers` needs a pool built outside `scope`"
    )]
    InScope,
    /// The operating system refused a new worker thread.
    #[error("could not spawn worker thread {worker}: {message}")]
    Spawn {
        /// The worker whose thread did not start.
        worker: WorkerId,
        /// The operating system's message.
        message: String,
    },
    /// A fallible maker ([`Builder::try_build_stateful`](crate::Builder::try_build_stateful)
    /// and its siblings) returned an error for a new worker: the other new
    /// workers were dropped on their threads without running anything.
    #[error("the maker of new worker {worker} failed")]
    Maker {
        /// The worker whose maker failed.
        worker: WorkerId,
        /// The maker's error ([`MakerError::downcast`] gets it back).
        error: MakerError,
    },
    /// A maker panicked making a new worker (in any pool: a grow waits for
    /// its makers, and a panic fails the grow instead of cancelling the
    /// pool).
    #[error("the maker of new worker {worker} panicked: {message}")]
    MakerPanicked {
        /// The worker whose maker panicked.
        worker: WorkerId,
        /// The panic's message.
        message: String,
    },
}

/// A fallible maker's error in [`ResizeError::Maker`], as it returned it:
/// the pool does not name the maker's error type, so it is kept as `Any`
/// (behind a lock, so the error stays `Sync`).
///
/// ```
/// use pool_core::{Ctx, Pool, ResizeError};
///
/// let pool = Pool::builder().workers(1).max_workers(2).try_build_stateful(|ctx: &Ctx| {
///     if ctx.worker_id().index() == 1 {
///         return Err(std::io::Error::other("no second connection"));
///     }
///     Ok(|_ctx: &Ctx, _n: u32| Ok::<(), std::io::Error>(()))
/// })?;
/// let Err(ResizeError::Maker { worker, error }) = pool.set_workers(2) else {
///     panic!("worker 1 fails")
/// };
/// let error: std::io::Error = error.downcast().expect("the maker's own error type");
/// assert_eq!((worker.index(), error.to_string()), (1, "no second connection".to_owned()));
/// assert_eq!(pool.workers(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct MakerError(Mutex<Box<dyn Any + Send>>);

impl MakerError {
    pub(crate) fn new(error: Box<dyn Any + Send>) -> Self {
        MakerError(Mutex::new(error))
    }

    /// The maker's error, if it is an `E`; otherwise `self` back.
    pub fn downcast<E: 'static>(self) -> Result<E, Self> {
        let error = self.0.into_inner().unwrap_or_else(PoisonError::into_inner);
        error
            .downcast::<E>()
            .map(|error| *error)
            .map_err(MakerError::new)
    }

    /// Whether the maker's error is an `E`.
    pub fn is<E: 'static>(&self) -> bool {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is::<E>()
    }
}

impl fmt::Debug for MakerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MakerError").finish_non_exhaustive()
    }
}

/// A caught panic's payload: the value given to `panic!` (a `&'static str`
/// or a `String`) or to [`std::panic::panic_any`], as
/// [`std::thread::JoinHandle::join`] returns it, kept by the errors that
/// report a panic ([`PoolError::Panicked`], and in the other crates
/// pool-middleware's `MiddlewareError::Panicked` and pool-collect's
/// `JobError::Panicked`).
///
/// A payload is only `Send`; it sits behind a lock so that the errors holding
/// it stay `Send + Sync` (and so go into `anyhow::Error` and
/// [`BoxError`]). [`into_inner`](PanicPayload::into_inner) and
/// [`get_mut`](PanicPayload::get_mut) never lock; [`with`](PanicPayload::with)
/// and [`is`](PanicPayload::is) lock for the call. Errors that hold a payload
/// are not `Clone`.
///
/// ```
/// use pool_core::{Ctx, PanicPayload, Pool, PoolError};
///
/// #[derive(Debug, PartialEq)]
/// struct Corrupt { row: u32 }
///
/// let pool = Pool::builder().workers(1).build(|_ctx: &Ctx, row: u32| -> std::io::Result<()> {
///     std::panic::panic_any(Corrupt { row })
/// })?;
/// pool.submitter().submit(7)?;
/// let Err(PoolError::Panicked { payload, .. }) = pool.wait() else { panic!("expected the panic") };
/// assert!(payload.is::<Corrupt>());
/// let corrupt: Box<Corrupt> = payload.downcast().expect("the value given to panic_any");
/// assert_eq!(*corrupt, Corrupt { row: 7 });
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct PanicPayload(Mutex<Box<dyn Any + Send>>);

impl PanicPayload {
    /// Keeps `payload`, as `catch_unwind` or `JoinHandle::join` handed it over.
    pub fn new(payload: Box<dyn Any + Send>) -> Self {
        PanicPayload(Mutex::new(payload))
    }

    /// The payload, as `catch_unwind` caught it.
    pub fn into_inner(self) -> Box<dyn Any + Send> {
        self.0.into_inner().unwrap_or_else(PoisonError::into_inner)
    }

    /// The payload, borrowed mutably (no lock: `&mut self` is exclusive).
    pub fn get_mut(&mut self) -> &mut (dyn Any + Send) {
        &mut **self.0.get_mut().unwrap_or_else(PoisonError::into_inner)
    }

    /// Calls `read` with the payload, under the lock, and returns what it
    /// returns.
    ///
    /// ```
    /// # use pool_core::PanicPayload;
    /// let payload = PanicPayload::new(Box::new(404_u16));
    /// assert_eq!(payload.with(|payload| payload.downcast_ref::<u16>().copied()), Some(404));
    /// ```
    pub fn with<R>(&self, read: impl FnOnce(&(dyn Any + Send)) -> R) -> R {
        let payload = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        read(&**payload)
    }

    /// Whether the payload is a `T`.
    pub fn is<T: Any>(&self) -> bool {
        self.with(|payload| payload.is::<T>())
    }

    /// The payload as the `T` it is, or the payload back if it is not a `T`.
    ///
    /// # Errors
    ///
    /// The payload itself, unchanged, when it is not a `T`.
    pub fn downcast<T: Any>(self) -> Result<Box<T>, PanicPayload> {
        self.into_inner().downcast::<T>().map_err(PanicPayload::new)
    }

    /// The payload rendered as text, as the errors' `message` fields have
    /// it: the `&str` or `String` given to `panic!`, or a placeholder.
    pub fn message(&self) -> String {
        self.with(panic_message)
    }

    /// Re-raises the panic with its original payload
    /// ([`std::panic::resume_unwind`]), as if it had never been caught.
    pub fn resume(self) -> ! {
        std::panic::resume_unwind(self.into_inner())
    }
}

impl From<Box<dyn Any + Send>> for PanicPayload {
    fn from(payload: Box<dyn Any + Send>) -> Self {
        PanicPayload::new(payload)
    }
}

impl fmt::Debug for PanicPayload {
    /// `PanicPayload(..)`: the text is in the errors' `message`, and the
    /// payload's type cannot be named.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PanicPayload(..)")
    }
}

/// Renders a caught panic's payload as text, the way the pool reports panics
/// in [`PoolError::Panicked`]: the `&str` or `String` message, or a
/// placeholder for any other payload. Shared with the workspace's other
/// crates through `pool_core::__private`, not part of the API.
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&'static str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "a panic with a non-string payload".to_owned()
    }
}
