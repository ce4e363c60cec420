//! `Dispatcher<R, E>`: jobs that return values, run on a `pool_core::Pool`,
//! with every result and every error handed back.
//!
//! # How it works
//!
//! The dispatcher owns a [`Pool`] of `Task`s: a job boxed behind a private
//! object-safe trait, tagged with its submission number. The pool runs with batch
//! size 1 (so a job is pushed the moment it is submitted and a free worker can
//! take it at once), continue-on-error, metrics off, and a capacity of
//! `queue + workers`: the `queue` jobs waiting plus the one each worker runs.
//!
//! Each worker thread owns a `Runner` (a stateful `pool-core` worker) that
//! runs a job inside `catch_unwind` and appends the outcome to its own `Vec`;
//! the `Runner` hands that `Vec` over when the pool drops it at the end, under
//! one lock per worker for the whole run. No lock is taken per job. The
//! unordered mode takes one completion ticket per job from a shared atomic
//! counter (a single `fetch_add`, no lock) to recover the completion order
//! across workers; the ordered mode uses the submission number instead. `wait`
//! concatenates the per-worker lists, sorts them by that key (each list is
//! already almost sorted, which the merge sort exploits) and splits results
//! from errors, each with its job's submission number: the index
//! [`Dispatcher::submit`] returned for it.

use std::any::Any;
use std::convert::Infallible;
use std::fmt;
use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};

use pool_core::__private::panic_message;
use pool_core::{
    BuildError, Ctx, MAX_CAPACITY, MAX_WORKERS, MetricsMode, PanicPayload, Pool, PoolError, Sender,
    TrySendError, TrySubmitError, Worker,
};

use crate::Errors;

/// A unit of work that returns a value.
///
/// A job runs once, so `execute` takes it by value. That lets every
/// `FnOnce() -> Result<R, E> + Send` closure be a job directly, and lets a job
/// move what it owns into its result without `Option` juggling.
///
/// ```
/// use pool_collect::{Dispatcher, Job};
///
/// /// Counts the bytes of one file.
/// struct CountBytes(Vec<u8>);
///
/// impl Job<usize, std::io::Error> for CountBytes {
///     fn execute(self) -> Result<usize, std::io::Error> {
///         Ok(self.0.len())
///     }
/// }
///
/// let dispatcher = Dispatcher::builder().workers(2).build()?;
/// dispatcher.submit(CountBytes(vec![0; 3]));
/// dispatcher.submit(|| Ok(7)); // a closure is a job too
/// let mut lengths = dispatcher.wait().into_result()?;
/// lengths.sort();
/// assert_eq!(lengths, [3, 7]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait Job<R, E>: Send {
    /// Runs the job. An `Err` is collected as [`JobError::Failed`]; a panic is
    /// caught and collected as [`JobError::Panicked`].
    fn execute(self) -> Result<R, E>;
}

impl<R, E, F> Job<R, E> for F
where
    F: FnOnce() -> Result<R, E> + Send,
{
    fn execute(self) -> Result<R, E> {
        self()
    }
}

/// What went wrong with one job.
///
/// `Display` shows the job's own error unchanged (and `source` is the job
/// error's source), or `job panicked: {message}`.
///
/// A panic keeps its payload ([`PanicPayload`]), so a `JobError` is not
/// `Clone`. Two errors are equal when they are the same variant with equal
/// errors, or equal panic messages (payloads are not compared).
#[derive(Debug)]
pub enum JobError<E> {
    /// The job returned an error.
    Failed(E),
    /// The job panicked; the panic was caught, the worker went on.
    Panicked {
        /// The panic payload rendered as text (`&str` and `String` payloads; others say so).
        message: String,
        /// The panic payload itself, as [`std::thread::JoinHandle::join`]
        /// would return it: downcast it to the value given to `panic!` or
        /// [`std::panic::panic_any`], or re-raise it.
        payload: PanicPayload,
    },
}

impl<E> JobError<E> {
    /// Whether the job panicked.
    pub fn is_panic(&self) -> bool {
        matches!(self, JobError::Panicked { .. })
    }

    /// The job's own error, if it returned one.
    pub fn failed(&self) -> Option<&E> {
        match self {
            JobError::Failed(error) => Some(error),
            JobError::Panicked { .. } => None,
        }
    }

    /// The job's own error by value, if it returned one.
    pub fn into_failed(self) -> Option<E> {
        match self {
            JobError::Failed(error) => Some(error),
            JobError::Panicked { .. } => None,
        }
    }

    /// The panic message, if the job panicked.
    pub fn panic_message(&self) -> Option<&str> {
        match self {
            JobError::Failed(_) => None,
            JobError::Panicked { message, .. } => Some(message),
        }
    }

    /// The panic payload by value, if the job panicked: the value given to
    /// `panic!` or [`std::panic::panic_any`].
    ///
    /// ```
    /// use pool_collect::Dispatcher;
    ///
    /// #[derive(Debug, PartialEq)]
    /// struct Quota { used: u32 }
    ///
    /// let dispatcher = Dispatcher::<(), std::io::Error>::builder().workers(1).build()?;
    /// dispatcher.submit(|| -> Result<(), std::io::Error> { std::panic::panic_any(Quota { used: 9 }) });
    /// let mut errors = dispatcher.wait().errors.into_iter();
    /// let payload = errors.next().and_then(|error| error.value.into_panic_payload()).expect("the job panicked");
    /// assert_eq!(*payload.downcast::<Quota>().expect("a Quota"), Quota { used: 9 });
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn into_panic_payload(self) -> Option<PanicPayload> {
        match self {
            JobError::Failed(_) => None,
            JobError::Panicked { payload, .. } => Some(payload),
        }
    }
}

impl<E: PartialEq> PartialEq for JobError<E> {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (JobError::Failed(a), JobError::Failed(b)) => a == b,
            (JobError::Panicked { message: a, .. }, JobError::Panicked { message: b, .. }) => {
                a == b
            }
            _ => false,
        }
    }
}

impl<E: Eq> Eq for JobError<E> {}

impl<E: fmt::Display> fmt::Display for JobError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JobError::Failed(error) => fmt::Display::fmt(error, f),
            JobError::Panicked { message, .. } => write!(f, "job panicked: {message}"),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for JobError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            // Display already shows the job's error, so it is not repeated as
            // a source (the `#[error(transparent)]` convention).
            JobError::Failed(error) => error.source(),
            JobError::Panicked { .. } => None,
        }
    }
}

/// An invalid [`Dispatcher`] setting, reported by
/// [`DispatcherBuilder::build`] before any thread starts. Each variant names
/// the setting that is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DispatchError {
    /// `workers` was never set.
    #[error("`workers` is required: call `.workers(n)` with n >= 1")]
    WorkersNotSet,
    /// `workers` was 0: no job would ever run.
    #[error("`workers` must be at least 1, got 0")]
    ZeroWorkers,
    /// `workers` was larger than [`pool_core::MAX_WORKERS`].
    #[error("`workers` must be at most {max}, got {workers}")]
    TooManyWorkers {
        /// The requested number of workers.
        workers: usize,
        /// The largest number accepted.
        max: usize,
    },
    /// `queue` was 0: every submitted job needs a place to wait until a
    /// worker takes it.
    #[error("`queue` must be at least 1, got 0")]
    ZeroQueue,
    /// `queue + workers` was larger than [`pool_core::MAX_CAPACITY`].
    #[error("`queue` must be at most {max} with this many workers, got {queue}")]
    QueueTooLarge {
        /// The requested queue bound.
        queue: usize,
        /// The largest queue bound accepted with the requested workers.
        max: usize,
    },
    /// `thread_name` contained a NUL byte, which no operating system accepts
    /// in a thread name.
    #[error("`thread_name` must not contain a NUL byte, got {name:?}")]
    ThreadName {
        /// The refused thread name prefix.
        name: String,
    },
    /// The underlying pool refused to start (for example, a thread could not
    /// be spawned).
    #[error("the dispatcher's pool could not start: {0}")]
    Pool(#[source] BuildError),
}

/// A job behind a box, with a way back to its concrete type for refusals.
trait ErasedJob<R, E>: Send {
    fn run(self: Box<Self>) -> Result<R, E>;
    fn into_any(self: Box<Self>) -> Box<dyn Any>;
}

impl<R, E, J: Job<R, E> + 'static> ErasedJob<R, E> for J {
    fn run(self: Box<Self>) -> Result<R, E> {
        (*self).execute()
    }

    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }
}

/// What the pool carries: a job and its submission number.
struct Task<R, E> {
    seq: u64,
    job: Box<dyn ErasedJob<R, E>>,
}

impl<R, E> Task<R, E> {
    /// The job of a task the pool handed back, as the type it was submitted with.
    fn into_job<J: 'static>(self) -> J {
        *self
            .job
            .into_any()
            .downcast::<J>()
            .expect("a refused task holds the job that was just boxed from a `J`")
    }
}

/// A job's outcome with its sort key (submission number or completion
/// ticket) and its submission number.
struct Done<R, E> {
    key: u64,
    index: u64,
    outcome: Result<R, JobError<E>>,
}

/// Where the workers' outcome lists end up.
struct Sink<R, E> {
    lists: Mutex<Vec<Vec<Done<R, E>>>>,
    /// The next completion ticket (unordered mode).
    completions: AtomicU64,
}

/// One worker thread's job runner; collects outcomes locally.
struct Runner<R, E> {
    ordered: bool,
    done: Vec<Done<R, E>>,
    sink: Arc<Sink<R, E>>,
}

impl<R, E> Worker<Task<R, E>> for Runner<R, E> {
    type Error = Infallible;

    fn work(&mut self, _ctx: &Ctx, task: Task<R, E>) -> Result<(), Infallible> {
        let Task { seq, job } = task;
        let outcome = match catch_unwind(AssertUnwindSafe(|| job.run())) {
            Ok(Ok(result)) => Ok(result),
            Ok(Err(error)) => Err(JobError::Failed(error)),
            // The payload goes to the caller whole, like `JoinHandle::join`'s:
            // dropping it (and running its `Drop`) is the caller's business.
            Err(payload) => Err(JobError::Panicked {
                message: panic_message(&*payload),
                payload: PanicPayload::new(payload),
            }),
        };
        let key = if self.ordered {
            seq
        } else {
            self.sink.completions.fetch_add(1, Relaxed)
        };
        self.done.push(Done {
            key,
            index: seq,
            outcome,
        });
        Ok(())
    }
}

impl<R, E> Drop for Runner<R, E> {
    fn drop(&mut self) {
        // The pool drops each worker on its own thread before `finish` returns,
        // so by then every list is in the sink.
        if !self.done.is_empty() {
            let done = std::mem::take(&mut self.done);
            self.sink
                .lists
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(done);
        }
    }
}

/// Configures and starts a [`Dispatcher`]; from [`Dispatcher::builder`].
///
/// `build` checks every setting and returns a [`DispatchError`] naming the
/// wrong one.
#[must_use = "a builder does nothing until `build` is called"]
pub struct DispatcherBuilder<R, E> {
    workers: Option<usize>,
    queue: Option<usize>,
    ordered: bool,
    thread_name: String,
    _outcomes: PhantomData<fn() -> (R, E)>,
}

impl<R, E> fmt::Debug for DispatcherBuilder<R, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DispatcherBuilder")
            .field("workers", &self.workers)
            .field("queue", &self.queue)
            .field("ordered", &self.ordered)
            .field("thread_name", &self.thread_name)
            .finish()
    }
}

impl<R: Send + 'static, E: Send + 'static> DispatcherBuilder<R, E> {
    /// The number of worker threads (required, at least 1).
    pub fn workers(mut self, n_workers: usize) -> Self {
        self.workers = Some(n_workers);
        self
    }

    /// How many submitted jobs may wait for a worker (at least 1; default: as
    /// many as there are workers). `submit` blocks and `try_submit` refuses
    /// beyond it.
    ///
    /// Precisely: at most `queue + workers` jobs are submitted and not yet
    /// finished at any time. Workers give room back in small bulks (see
    /// `pool-core`'s capacity), so a finished job may hold its room a little
    /// longer; the bound is never exceeded, and never waited on forever.
    pub fn queue(mut self, queue: usize) -> Self {
        self.queue = Some(queue);
        self
    }

    /// `true`: [`Outcome::results`] and [`Outcome::errors`] are in submission
    /// order. `false` (the default): in completion order.
    pub fn ordered(mut self, ordered: bool) -> Self {
        self.ordered = ordered;
        self
    }

    /// The prefix of worker thread names (`{prefix}-{index}`; default
    /// `dispatcher`). It must not contain a NUL byte
    /// ([`DispatchError::ThreadName`]).
    pub fn thread_name(mut self, prefix: impl Into<String>) -> Self {
        self.thread_name = prefix.into();
        self
    }

    /// Checks the settings and starts the worker threads.
    ///
    /// ```
    /// use pool_collect::{DispatchError, Dispatcher};
    ///
    /// let zero = Dispatcher::<u8, String>::builder().workers(0).build();
    /// assert_eq!(zero.unwrap_err(), DispatchError::ZeroWorkers);
    /// let no_queue = Dispatcher::<u8, String>::builder().workers(2).queue(0).build();
    /// assert_eq!(no_queue.unwrap_err(), DispatchError::ZeroQueue);
    /// let bad_name = Dispatcher::<u8, String>::builder().workers(1).thread_name("a\0b").build();
    /// assert_eq!(bad_name.unwrap_err(), DispatchError::ThreadName { name: "a\0b".into() });
    /// ```
    pub fn build(self) -> Result<Dispatcher<R, E>, DispatchError> {
        let n_workers = self.workers.ok_or(DispatchError::WorkersNotSet)?;
        if n_workers == 0 {
            return Err(DispatchError::ZeroWorkers);
        }
        if n_workers > MAX_WORKERS {
            return Err(DispatchError::TooManyWorkers {
                workers: n_workers,
                max: MAX_WORKERS,
            });
        }
        let queue = self.queue.unwrap_or(n_workers);
        if queue == 0 {
            return Err(DispatchError::ZeroQueue);
        }
        let max_queue = MAX_CAPACITY - n_workers;
        if queue > max_queue {
            return Err(DispatchError::QueueTooLarge {
                queue,
                max: max_queue,
            });
        }
        // The pool would refuse it too, but as its own error wrapped in
        // `Pool`; this is a setting of the dispatcher's, so it is named here.
        if self.thread_name.contains('\0') {
            return Err(DispatchError::ThreadName {
                name: self.thread_name,
            });
        }
        let sink = Arc::new(Sink {
            lists: Mutex::new(Vec::with_capacity(n_workers)),
            completions: AtomicU64::new(0),
        });
        let ordered = self.ordered;
        let maker_sink = Arc::clone(&sink);
        let pool = Pool::builder()
            .workers(n_workers)
            .batch_size(1)
            .capacity(queue + n_workers)
            .continue_on_error()
            .metrics(MetricsMode::Off)
            .thread_name(self.thread_name)
            .build_stateful(move |_ctx: &Ctx| Runner {
                ordered,
                done: Vec::new(),
                sink: Arc::clone(&maker_sink),
            })
            .map_err(DispatchError::Pool)?;
        Ok(Dispatcher {
            sender: pool.sender(),
            pool,
            sink,
            next_seq: AtomicU64::new(0),
            ordered,
            queue,
        })
    }
}

/// Runs [`Job`]s on a fixed set of worker threads and hands back every result
/// and every error, built on a `pool_core::Pool`.
///
/// - [`submit`](Dispatcher::submit) blocks while the queue is full;
///   [`try_submit`](Dispatcher::try_submit) hands the job back instead. Both
///   take `&self`, so several threads may submit at once (share the
///   dispatcher with [`std::thread::scope`]).
/// - [`wait`](Dispatcher::wait) runs every submitted job to its end and returns
///   an [`Outcome`]: `results.len() + errors.len()` is the number of jobs
///   submitted. A job that returns `Err` becomes [`JobError::Failed`], one that
///   panics becomes [`JobError::Panicked`]; neither stops the other jobs.
/// - Results and errors come in completion order, or in submission order with
///   [`ordered(true)`](DispatcherBuilder::ordered).
///
/// Every accepted job runs: a dispatcher has no cancel (a job that should stop
/// early can check a [`CancelToken`](pool_core::CancelToken) it captured).
/// Dropping a dispatcher without `wait` still runs every submitted job and
/// discards the outcomes.
///
/// ```
/// use pool_collect::Dispatcher;
///
/// let dispatcher = Dispatcher::builder().workers(4).queue(16).ordered(true).build()?;
/// for n in 0..100u64 {
///     dispatcher.submit(move || if n % 10 == 3 { Err(format!("{n} is unlucky")) } else { Ok(n * n) });
/// }
/// let outcome = dispatcher.wait();
/// assert_eq!(outcome.results.len() + outcome.errors.len(), 100);
/// let squares: Vec<u64> = outcome.results[..4].iter().map(|result| result.value).collect();
/// assert_eq!(squares, [0, 1, 4, 16]); // submission order; job 3 failed
/// assert_eq!(outcome.results[3].index, 4); // each result says which job made it
/// assert_eq!(outcome.errors.len(), 10);
/// assert!(outcome.errors.to_string().starts_with("10 errors: job 3: 3 is unlucky; job 13: 13 is unlucky"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Dispatcher<R: Send + 'static, E: Send + 'static> {
    pool: Pool<Task<R, E>>,
    /// Kept, so `submit` does not clone an `Arc` per job.
    sender: Sender<Task<R, E>>,
    sink: Arc<Sink<R, E>>,
    next_seq: AtomicU64,
    ordered: bool,
    queue: usize,
}

impl<R: Send + 'static, E: Send + 'static> fmt::Debug for Dispatcher<R, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dispatcher")
            .field("workers", &self.pool.workers())
            .field("queue", &self.queue)
            .field("ordered", &self.ordered)
            .field("submitted", &self.next_seq.load(Relaxed))
            .finish()
    }
}

impl<R: Send + 'static, E: Send + 'static> Dispatcher<R, E> {
    /// A builder; `workers` must be set.
    pub fn builder() -> DispatcherBuilder<R, E> {
        DispatcherBuilder {
            workers: None,
            queue: None,
            ordered: false,
            thread_name: "dispatcher".to_owned(),
            _outcomes: PhantomData,
        }
    }

    fn task<J: Job<R, E> + 'static>(&self, job: J) -> Task<R, E> {
        Task {
            seq: self.next_seq.fetch_add(1, Relaxed),
            job: Box::new(job),
        }
    }

    /// Submits a job, blocking while the queue is full, and returns its
    /// **index**: the number its result or error carries in the
    /// [`Outcome`] ([`Indexed::index`]).
    ///
    /// Indices count up from 0 in submission order, one per `submit` or
    /// `try_submit` call, across every thread that submits. A `try_submit`
    /// that is refused uses its number up too, so after refusals the
    /// indices of accepted jobs have gaps; each is still unique.
    ///
    /// It cannot be refused: the dispatcher's pool is closed only by
    /// [`wait`](Dispatcher::wait), which takes the dispatcher, and nothing
    /// cancels it.
    ///
    /// ```
    /// use std::collections::HashMap;
    /// use pool_collect::Dispatcher;
    ///
    /// let dispatcher = Dispatcher::builder().workers(3).build()?;
    /// let mut names = HashMap::new();
    /// for name in ["alpha", "beta", "gamma", "delta"] {
    ///     let index = dispatcher.submit(move || {
    ///         if name.len() == 4 { Err(format!("{name}: too short")) } else { Ok(name.len()) }
    ///     });
    ///     names.insert(index, name);
    /// }
    /// let outcome = dispatcher.wait(); // completion order: any
    /// for result in &outcome.results {
    ///     assert_eq!(result.value, names[&result.index].len());
    /// }
    /// let failed: Vec<&str> = outcome.errors.iter().map(|error| names[&error.index]).collect();
    /// assert_eq!(failed, ["beta"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn submit<J: Job<R, E> + 'static>(&self, job: J) -> u64 {
        let task = self.task(job);
        let index = task.seq;
        let sent = self.sender.send(task);
        debug_assert!(
            sent.is_ok(),
            "the dispatcher's pool is never closed before `wait` and never cancelled"
        );
        index
    }

    /// Submits a job if the queue has room now and returns its index (see
    /// [`submit`](Dispatcher::submit)); otherwise hands it back as
    /// [`TrySubmitError::Full`] (the only refusal a dispatcher makes).
    ///
    /// ```
    /// use pool_collect::Dispatcher;
    /// use std::sync::{Arc, Barrier};
    ///
    /// let dispatcher = Dispatcher::<(), String>::builder().workers(1).queue(1).build()?;
    /// let gate = Arc::new(Barrier::new(2));
    /// let held = Arc::clone(&gate);
    /// dispatcher.submit(move || { held.wait(); Ok(()) }); // the worker's job
    /// dispatcher.submit(|| Ok(()));                       // the queue's one place
    /// let refused = dispatcher.try_submit(|| Ok(())).unwrap_err();
    /// gate.wait(); // lets the first job finish
    /// dispatcher.submit(refused.into_inner()); // waits for room this time
    /// assert_eq!(dispatcher.wait().results.len(), 3);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_submit<J: Job<R, E> + 'static>(&self, job: J) -> Result<u64, TrySubmitError<J>> {
        let task = self.task(job);
        let index = task.seq;
        self.sender
            .try_send(task)
            .map(|()| index)
            .map_err(|error| match error {
                TrySendError::Full(task) => TrySubmitError::Full(task.into_job()),
                TrySendError::Closed(task)
                | TrySendError::Cancelled(task)
                | TrySendError::Disconnected(task) => {
                    debug_assert!(
                        false,
                        "the dispatcher's pool is never closed before `wait` and never cancelled"
                    );
                    TrySubmitError::Closed(task.into_job())
                }
            })
    }

    /// The old name of [`submit`](Dispatcher::submit).
    #[deprecated(since = "0.1.0", note = "renamed to `submit`, the verb of every pool")]
    pub fn enqueue<J: Job<R, E> + 'static>(&self, job: J) {
        let _ = self.submit(job);
    }

    /// The old name of [`try_submit`](Dispatcher::try_submit).
    #[deprecated(
        since = "0.1.0",
        note = "renamed to `try_submit`, the verb of every pool"
    )]
    pub fn try_enqueue<J: Job<R, E> + 'static>(&self, job: J) -> Result<(), TrySubmitError<J>> {
        self.try_submit(job).map(|_index| ())
    }

    /// The number of worker threads.
    pub fn workers(&self) -> usize {
        self.pool.workers()
    }

    /// The queue bound (see [`DispatcherBuilder::queue`]).
    pub fn queue(&self) -> usize {
        self.queue
    }

    /// Whether outcomes come in submission order.
    pub fn is_ordered(&self) -> bool {
        self.ordered
    }

    /// Waits for every submitted job, stops the workers and returns every
    /// result and every error, each with the index of the job that produced
    /// it.
    pub fn wait(self) -> Outcome<R, E> {
        let Dispatcher {
            pool, sender, sink, ..
        } = self;
        drop(sender);
        let report = pool.join();
        let lists = std::mem::take(&mut *sink.lists.lock().unwrap_or_else(PoisonError::into_inner));
        let mut done: Vec<Done<R, E>> = lists.into_iter().flatten().collect();
        // Stable merge sort: each worker's list is a sorted run already.
        done.sort_by_key(|done| done.key);
        let mut results = Vec::with_capacity(done.len());
        let mut errors = Errors::new();
        for Done { index, outcome, .. } in done {
            match outcome {
                Ok(value) => results.push(Indexed { index, value }),
                Err(value) => errors.push(Indexed { index, value }),
            }
        }
        // The runner catches every panic of a job and never fails, so the pool
        // has nothing to report; should that ever change, say so rather than
        // lose it.
        let pool_errors = match report.into_result() {
            Ok(_) | Err(PoolError::Cancelled { .. }) => Vec::new(),
            Err(PoolError::Many { errors, .. }) => errors,
            Err(other) => vec![other],
        };
        for error in pool_errors {
            let message = error.to_string();
            let payload = match error {
                PoolError::Panicked { payload, .. } => payload,
                _ => PanicPayload::new(Box::new(message.clone())),
            };
            errors.push(Indexed {
                index: NO_JOB,
                value: JobError::Panicked { message, payload },
            });
        }
        Outcome { results, errors }
    }
}

/// The index of an error that names no job: one the dispatcher's pool itself
/// reported (never expected: the runner catches every job's panic).
const NO_JOB: u64 = u64::MAX;

/// A job's result or error with the job's **index**: the number
/// [`Dispatcher::submit`] (or [`try_submit`](Dispatcher::try_submit))
/// returned for it, counting submissions from 0.
///
/// `Display` shows `job {index}: {value}`; as an error, its `source` is the
/// value's own `source` (the value is already in the text).
///
/// ```
/// use pool_collect::{Dispatcher, Indexed};
///
/// let dispatcher = Dispatcher::<u32, String>::builder().workers(2).ordered(true).build()?;
/// for n in 0..3 {
///     dispatcher.submit(move || if n == 1 { Err("one is odd".to_owned()) } else { Ok(n * 10) });
/// }
/// let outcome = dispatcher.wait();
/// assert_eq!(outcome.results, [Indexed { index: 0, value: 0 }, Indexed { index: 2, value: 20 }]);
/// assert_eq!(outcome.errors.iter().map(|error| error.index).collect::<Vec<_>>(), [1]);
/// assert_eq!(outcome.errors.to_string(), "1 error: job 1: one is odd");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// Indexed values order by index first (derived `Ord`), so sorting a list
/// of them puts it in submission order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Indexed<V> {
    /// The job's index: its submission number, from 0 (`u64::MAX` only for
    /// an error the dispatcher's pool reported on its own, naming no job,
    /// which its design rules out).
    pub index: u64,
    /// The job's value, or its error.
    pub value: V,
}

impl<V> Indexed<V> {
    /// The value without its index.
    pub fn into_value(self) -> V {
        self.value
    }
}

impl<V: fmt::Display> fmt::Display for Indexed<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "job {}: ", self.index)?;
        // The caller's `{:#}` reaches the value (anyhow shows its causes).
        if f.alternate() {
            write!(f, "{:#}", self.value)
        } else {
            write!(f, "{}", self.value)
        }
    }
}

impl<V: std::error::Error> std::error::Error for Indexed<V> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.value.source()
    }
}

/// Everything a [`Dispatcher`] run produced: [`Dispatcher::wait`]'s answer.
///
/// `results.len() + errors.len()` equals the number of jobs submitted. Both are
/// in completion order, or in submission order for an
/// [`ordered`](DispatcherBuilder::ordered) dispatcher, and each says which job
/// it came from ([`Indexed::index`], the number `submit` returned).
#[derive(Debug)]
#[non_exhaustive]
pub struct Outcome<R, E> {
    /// The values of the jobs that succeeded, with their jobs' indices.
    pub results: Vec<Indexed<R>>,
    /// The errors of the jobs that failed or panicked, with their jobs'
    /// indices.
    pub errors: Errors<Indexed<JobError<E>>>,
}

impl<R, E> Outcome<R, E> {
    /// How many jobs ran: results plus errors.
    pub fn jobs(&self) -> usize {
        self.results.len() + self.errors.len()
    }

    /// `Ok(values)` if no job failed, otherwise `Err(errors)`, both without
    /// their indices (the results of the jobs that did succeed are dropped;
    /// read the fields to keep both, and the indices).
    pub fn into_result(self) -> Result<Vec<R>, Errors<JobError<E>>> {
        if self.errors.is_empty() {
            Ok(self.results.into_iter().map(Indexed::into_value).collect())
        } else {
            Err(self.errors.into_iter().map(Indexed::into_value).collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runner_hands_its_outcomes_over_on_drop_in_key_order() {
        let sink = Arc::new(Sink::<u32, String> {
            lists: Mutex::new(Vec::new()),
            completions: AtomicU64::new(0),
        });
        let mut runner = Runner {
            ordered: false,
            done: Vec::new(),
            sink: Arc::clone(&sink),
        };
        for seq in 0..3u64 {
            runner.done.push(Done {
                key: sink.completions.fetch_add(1, Relaxed),
                index: seq,
                outcome: Ok(u32::try_from(seq).expect("small")),
            });
        }
        drop(runner);
        let lists = sink.lists.lock().expect("sink lock");
        assert_eq!(lists.len(), 1);
        let keys: Vec<u64> = lists[0].iter().map(|done| done.key).collect();
        assert_eq!(keys, [0, 1, 2]);
    }

    #[test]
    fn a_refused_task_gives_back_the_concrete_job() {
        /// Recovers a job of the same type as `_like` (closure types have no name).
        fn recover_like<J: 'static>(task: Task<u8, String>, _like: &J) -> J {
            task.into_job::<J>()
        }
        let job = || Ok::<u8, String>(5);
        let task: Task<u8, String> = Task {
            seq: 0,
            job: Box::new(job),
        };
        let back = recover_like(task, &job);
        assert_eq!(back(), Ok(5));
    }
}
