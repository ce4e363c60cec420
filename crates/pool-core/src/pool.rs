//! The pool's public face: the builder (settings, validation, defaults) and
//! the `Pool` handle (submitters, senders, close, cancel, wait). The parts it
//! puts together live in `shared.rs`; the threads in `thread.rs`.

use std::any::Any;
use std::convert::Infallible;
use std::fmt;
use std::hash::Hash;
use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use pool_batch::Batcher;
use pool_chunk::KeyHasher;

use crate::cancel::OnCancel;
use crate::capacity::{Capacity, Refusal, Wait};
use crate::item::{DroppedFn, DroppedHook, KeyFn};
use crate::layer::{Identity, Layer, SharedFn, Stack};
use crate::ledger::Ledger;
use crate::makers::States;
use crate::process::{BatchProcessor, ItemProcessor, Processor};
use crate::progress::Progress;
use crate::pull::{Ending, Pull, Source};
use crate::queues::{Parcel, Queues, RouteFn, Target};
use crate::report::WorkerCounts;
use crate::scope::{Detached, Launch, Scope};
use crate::shared::{Config, Shared};
use crate::signal::Exits;
use crate::thread::{
    self, Crew, MakerFailure, Makers, Seats, Staff, Startup, WorkerDoneFn, WorkerDoneHook,
};
use crate::{
    BatchWorker, BoxError, BuildError, Call, CancelToken, Ctx, ItemKey, PoolError, Report,
    ResizeError, Rest, RunError, Sender, Snapshot, SubmitError, Submitter, Worker, WorkerId,
};

/// The default batch size: large enough to amortise the per-batch queue and
/// capacity operations to about a nanosecond per item, small enough that a batch
/// of slow items does not starve the other workers (see `cargo xtask bench`).
pub const DEFAULT_BATCH_SIZE: usize = 64;
/// The smallest default capacity (items in flight); see [`Builder::capacity`].
pub const DEFAULT_MIN_CAPACITY: usize = 4096;
/// The largest number of workers a pool accepts.
pub const MAX_WORKERS: usize = 4096;
/// The largest capacity a pool accepts (no memory is reserved up front for it).
pub const MAX_CAPACITY: usize = 1 << 40;
/// The largest batch size a pool accepts: 2^20 (1,048,576) items.
///
/// A [`Submitter`] allocates room for a whole batch (`batch_size` items) when
/// it starts filling one, and a keyed pool's submitter fills one batch per
/// worker, so the batch size is memory a producer commits to. No workload
/// needs more: batching only amortises the per-batch queue and capacity
/// operations, which [`DEFAULT_BATCH_SIZE`] already brings to about a
/// nanosecond per item; and a batch goes to one worker as a unit, so a batch
/// of millions of items is a chunk no idle worker can help with. At this
/// bound a batch of `u64`s is 8 MiB; an item of a kilobyte makes it a
/// gigabyte, so large items want much smaller batches. Nothing is reserved
/// when the pool is built.
pub const MAX_BATCH_SIZE: usize = 1 << 20;

type PoolDoneFn = Box<dyn FnOnce(&Report) + Send>;

/// How much a pool measures ([`Builder::metrics`]). Counts are always kept: they
/// are the accounting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum MetricsMode {
    /// Counts and custom counters only: no clock is read, so every time in
    /// [`Stats`](pool_metrics::Stats) and [`WorkerReport`](crate::WorkerReport) is zero.
    Off,
    /// Also processing, wait, init and wrap-up times (the default). The clock
    /// is read when a worker goes busy or idle and when it gives capacity back:
    /// at most once per batch, never per item.
    #[default]
    Times,
    /// Also per-item latency percentiles (p50, p90, p99, p99.9, max) from
    /// per-worker `hdrhistogram`s: two clock reads and a histogram record per
    /// item (per call for batch workers). `cargo xtask bench` shows the cost.
    Latency,
}

/// Configures and starts a [`Pool`]. Obtained from [`Pool::builder`].
///
/// Every setting is checked by the `build` methods, which return a
/// [`BuildError`] naming the wrong setting instead of falling back to a default.
#[must_use = "a builder does nothing until one of its build methods is called"]
pub struct Builder<T, L = Identity, Lc = Detached> {
    settings: Settings<T>,
    layers: L,
    /// Where the threads start: detached, or in a [`Scope`].
    launch: Lc,
    _items: PhantomData<fn(T)>,
}

/// Every setting of a [`Builder`] but its middleware stack.
struct Settings<T> {
    workers: Option<usize>,
    max_workers: Option<usize>,
    batch_size: usize,
    capacity: Option<usize>,
    stop_on_error: bool,
    error_limit: usize,
    token: Option<CancelToken>,
    resume_panics: bool,
    thread_name: String,
    on_worker_done: Option<WorkerDoneFn>,
    on_pool_done: Option<PoolDoneFn>,
    route: Option<RouteFn<T>>,
    metrics_mode: MetricsMode,
    item_key: Option<KeyFn<T>>,
    on_dropped: Option<DroppedFn<T>>,
}

impl<T, L, Lc> fmt::Debug for Builder<T, L, Lc> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("workers", &self.settings.workers)
            .field("max_workers", &self.settings.max_workers)
            .field("batch_size", &self.settings.batch_size)
            .field("capacity", &self.settings.capacity)
            .field("stop_on_error", &self.settings.stop_on_error)
            .field("error_limit", &self.settings.error_limit)
            .field("keyed", &self.settings.route.is_some())
            .field("item_key", &self.settings.item_key.is_some())
            .field("on_dropped", &self.settings.on_dropped.is_some())
            .finish_non_exhaustive()
    }
}

impl<T: Send> Builder<T> {
    fn new() -> Self {
        Builder {
            settings: Settings {
                workers: None,
                max_workers: None,
                batch_size: DEFAULT_BATCH_SIZE,
                capacity: None,
                stop_on_error: true,
                error_limit: 1000,
                token: None,
                resume_panics: false,
                thread_name: "workforce".to_owned(),
                on_worker_done: None,
                on_pool_done: None,
                route: None,
                metrics_mode: MetricsMode::default(),
                item_key: None,
                on_dropped: None,
            },
            layers: Identity,
            launch: Detached,
            _items: PhantomData,
        }
    }
}

impl<T: Send, L> Builder<T, L> {
    /// The same settings for a pool whose threads run in `scope`, so its
    /// workers, makers and items may borrow what outlives the scope (see
    /// [`scope`](crate::scope)); [`Scope::builder`] is the short way.
    /// Every other setting and every build method works as for an
    /// ordinary pool.
    ///
    /// ```
    /// use pool_core::{Ctx, Pool};
    ///
    /// let words = vec!["alpha".to_owned(), "beta".to_owned(), "gamma".to_owned()];
    /// let limit = 4; // borrowed by the worker
    /// let report = pool_core::scope(|s| {
    ///     let pool = Pool::builder()
    ///         .workers(2)
    ///         .continue_on_error()
    ///         .scoped(s)
    ///         .build(|_ctx: &Ctx, word: &String| {
    ///             anyhow::ensure!(word.len() > limit, "{word} is too short");
    ///             Ok(())
    ///         })?;
    ///     // Items borrow `words`: a refused one comes back in the error,
    ///     // so only the error's text may leave the scope.
    ///     pool.submitter().submit_iter(&words).map_err(|refused| refused.to_string())?;
    ///     Ok::<_, Box<dyn std::error::Error>>(pool.join())
    /// })?;
    /// assert_eq!((report.processed(), report.failed()), (2, 1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn scoped<'scope, 'env>(
        self,
        scope: &Scope<'scope, 'env>,
    ) -> Builder<T, L, Scope<'scope, 'env>>
    where
        T: 'env,
    {
        Builder {
            settings: self.settings,
            layers: self.layers,
            launch: scope.share(),
            _items: PhantomData,
        }
    }
}

impl<T: Send, Lc> Builder<T, Identity, Lc> {
    /// The same settings with `layers` as the middleware stack.
    fn with_layers<L2>(self, layers: L2) -> Builder<T, L2, Lc> {
        Builder {
            settings: self.settings,
            layers,
            launch: self.launch,
            _items: PhantomData,
        }
    }
}

impl<'env, T: Send + 'env, Lc: Launch<'env>> Builder<T, Identity, Lc> {
    /// Starts a pool whose workers share one batch function
    /// (see [`BatchWorker`]). Middleware layers wrap per-item workers, so a
    /// builder with layers has no batch build methods.
    pub fn build_batch<F, E>(self, work: F) -> Result<Pool<T>, BuildError>
    where
        F: Fn(&Ctx, &mut Vec<T>) -> Result<(), E> + Send + Sync + 'env,
        E: Into<BoxError> + 'static,
    {
        let work = Arc::new(work);
        self.start_infallible(move |_ctx: &Ctx| {
            let work = Arc::clone(&work);
            BatchProcessor {
                worker: move |ctx: &Ctx, batch: &mut Vec<T>| work(ctx, batch),
                single: Vec::with_capacity(1),
            }
        })
    }

    /// Starts a pool where each thread builds its own [`BatchWorker`] with
    /// `maker`, on that thread, as [`build_stateful`](Self::build_stateful)
    /// does for per-item workers (the maker gets the worker's [`Ctx`]).
    ///
    /// ```
    /// use pool_core::{Ctx, Pool};
    ///
    /// let pool = Pool::builder().workers(2).build_batch_stateful(|ctx: &Ctx| {
    ///     let rows = ctx.metrics().counter("rows"); // resolved once, here
    ///     move |_ctx: &Ctx, batch: &mut Vec<u32>| {
    ///         rows.add(batch.len() as u64); // one round trip per batch
    ///         Ok::<(), std::io::Error>(())
    ///     }
    /// })?;
    /// pool.submitter().submit_iter(0..1_000)?;
    /// assert_eq!(pool.wait()?.stats().counters.get("rows"), 1_000);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn build_batch_stateful<M, W>(self, maker: M) -> Result<Pool<T>, BuildError>
    where
        M: Fn(&Ctx) -> W + Send + Sync + 'env,
        W: BatchWorker<T> + 'env,
    {
        self.start_infallible(move |ctx: &Ctx| BatchProcessor {
            worker: maker(ctx),
            single: Vec::with_capacity(1),
        })
    }
}

impl<T: Send, L, Lc> Builder<T, L, Lc> {
    /// Splits off the middleware stack.
    pub(crate) fn split(self) -> (Builder<T, Identity, Lc>, L) {
        let bare = Builder {
            settings: self.settings,
            layers: Identity,
            launch: self.launch,
            _items: PhantomData,
        };
        (bare, self.layers)
    }

    /// Adds a middleware layer around every worker (see [`Layer`]). The first
    /// layer added is the outermost: `.layer(a).layer(b)` runs `a`, which calls
    /// `b`, which calls the worker. Each worker thread gets its own stack.
    pub fn layer<M>(self, layer: M) -> Builder<T, Stack<M, L>, Lc> {
        let (bare, layers) = self.split();
        bare.with_layers(Stack::new(layer, layers))
    }

    /// The number of worker threads (required, at least 1).
    pub fn workers(mut self, n_workers: usize) -> Self {
        self.settings.workers = Some(n_workers);
        self
    }

    /// The most workers [`Pool::set_workers`] may ask for (default: the
    /// [`workers`](Self::workers) the pool starts with, so a pool does not
    /// grow unless this is set; at least `workers`, at most
    /// [`MAX_WORKERS`]).
    ///
    /// Every per-worker structure is made for this many seats when the pool
    /// is built (each an empty deque pair, a parker, an inbox in a keyed
    /// pool, a metrics shard: a few hundred bytes a seat); only the active
    /// seats have threads. An idle seat costs the others nothing on the
    /// item path; a worker looking for work to steal passes over its empty
    /// deques.
    ///
    /// ```
    /// use pool_core::{BuildError, Ctx, Pool};
    ///
    /// let work = |_ctx: &Ctx, _n: u32| Ok::<(), std::io::Error>(());
    /// let pool = Pool::builder().workers(2).max_workers(8).build(work)?;
    /// assert_eq!((pool.workers(), pool.max_workers()), (2, 8));
    /// let refused = Pool::builder().workers(4).max_workers(2).build(work).unwrap_err();
    /// assert_eq!(refused, BuildError::MaxWorkersBelowWorkers { max_workers: 2, workers: 4 });
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn max_workers(mut self, max_workers: usize) -> Self {
        self.settings.max_workers = Some(max_workers);
        self
    }

    /// Items per batch in a [`Submitter`] (default [`DEFAULT_BATCH_SIZE`], at
    /// least 1, at most [`MAX_BATCH_SIZE`] and at most the capacity).
    /// `1` turns batching off: every item is pushed on its own, without allocating.
    pub fn batch_size(mut self, batch_size: usize) -> Self {
        self.settings.batch_size = batch_size;
        self
    }

    /// The most items in flight at once: reserved by producers (including the room
    /// reserved for a batch being filled) and not yet finished by a worker.
    /// `submit` blocks beyond it, so memory stays flat however fast producers are.
    ///
    /// The exact rule: an item holds one unit of room from the moment a
    /// producer reserves it until a worker finishes it (processed, failed or
    /// dropped). A `Sender` and an unbatched `Submitter` reserve one item at
    /// a time; a batching `Submitter` reserves a whole batch when it starts
    /// one, so its half-filled batch holds room for items not yet submitted.
    /// Workers give room back in bulk, but [`Sender::try_send`],
    /// [`Sender::send_timeout`], [`Submitter::try_submit`] and
    /// [`Submitter::submit_timeout`] first take back the room of every
    /// finished item: they say `Full` only when `capacity` units really are
    /// held. A blocking `submit`/`send` waits for the workers' releases
    /// instead (at the latest when a worker runs out of work), which keeps
    /// its wake-ups few. Items a pool pulls with [`Pool::run`] hold no room:
    /// each worker holds at most a chunk of them.
    ///
    /// **Going over.** Three kinds of item take their room without waiting
    /// for it, and may take `in_flight` over the capacity (the overshoot,
    /// shown by [`Pool::in_flight`] and [`Snapshot::in_flight`]):
    /// - items a worker spawns into its own pool ([`Ctx::spawn`]): a tree's
    ///   items never wait for each other. The overshoot is the tree's
    ///   frontier (a worker takes its own spawns last in, first out, depth
    ///   first); [`Ctx::try_spawn`] refuses instead, for a hard bound;
    /// - items one of the pool's own workers sends or submits into it
    ///   ([`Sender::send`], [`Submitter::submit`]): a worker never waits for
    ///   room in its own pool, which only workers can free;
    /// - items sent or submitted by a thread whose own submitters hold room
    ///   in partly filled batches: that thread may go over by the room it
    ///   holds, which it could not give back while it waits.
    ///
    /// Producers that hold nothing wait while the pool is over, so the
    /// overshoot is made of those items only.
    ///
    /// Default: `max(4096, 4 * batch_size * workers)`. Must be at least `batch_size`.
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.settings.capacity = Some(capacity);
        self
    }

    /// Error policy (the default): the first error or panic cancels the pool, the
    /// remaining items are dropped and counted, and `wait` returns that error.
    pub fn stop_on_error(mut self) -> Self {
        self.settings.stop_on_error = true;
        self
    }

    /// Error policy: keep processing after errors; `wait` returns
    /// [`PoolError::Many`] with every error (up to [`error_limit`](Self::error_limit))
    /// and the total count.
    pub fn continue_on_error(mut self) -> Self {
        self.settings.stop_on_error = false;
        self
    }

    /// How many errors the report keeps (default 1000, at least 1, under
    /// either error policy); the count covers all.
    pub fn error_limit(mut self, error_limit: usize) -> Self {
        self.settings.error_limit = error_limit;
        self
    }

    /// Cancels the pool when `token` (or any of its parents) is cancelled. The pool
    /// gets a child of it, so `pool.cancel()` does not cancel the parent.
    pub fn cancel_token(mut self, token: CancelToken) -> Self {
        self.settings.token = Some(token);
        self
    }

    /// Re-raises the first caught panic from [`Pool::wait`] with its original
    /// payload, like [`std::thread::scope`] does, after the pool has shut down.
    pub fn resume_panics(mut self, resume: bool) -> Self {
        self.settings.resume_panics = resume;
        self
    }

    /// The prefix of worker thread names (`{prefix}-{index}`; default
    /// `workforce`). It must not contain a NUL byte
    /// ([`BuildError::ThreadName`]); the operating system may shorten long
    /// names (Linux keeps 15 bytes).
    pub fn thread_name(mut self, prefix: impl Into<String>) -> Self {
        self.settings.thread_name = prefix.into();
        self
    }

    /// Called on each worker's thread after its last item (and after the worker's
    /// `finish` hook), with its id and counts. A panic in it is caught and reported.
    pub fn on_worker_done(
        mut self,
        callback: impl Fn(WorkerId, &WorkerCounts) + Send + Sync + 'static,
    ) -> Self {
        self.settings.on_worker_done = Some(Arc::new(callback));
        self
    }

    /// Called once with the final report, when the pool is waited on or dropped.
    pub fn on_pool_done(mut self, callback: impl FnOnce(&Report) + Send + 'static) -> Self {
        self.settings.on_pool_done = Some(Box::new(callback));
        self
    }

    /// Names items in errors: `key` makes an [`ItemKey`] of an item (a job
    /// id, a file name), and a failed or panicking item's error carries it,
    /// in [`PoolError::Worker`] and [`PoolError::Panicked`] (see
    /// [`PoolError::key`]; `Display` says `on item {key}`), in the report's
    /// [`errors`](Report::errors), and in the `tracing` feature's error events
    /// (a `key` field).
    ///
    /// **Cost.** The worker consumes the item, so the key is computed
    /// before the call, on the worker thread: one call of `key` per item
    /// (plus the conversion into `ItemKey`, free for integers and
    /// `&'static str`; a `String` key allocates what the function allocates).
    /// The key is dropped unused when the item succeeds. A pool without
    /// `item_key` pays nothing per item: the processors test for it once per
    /// batch.
    ///
    /// A **batch worker** ([`build_batch`](Self::build_batch)) fails or
    /// panics per batch: its error carries the key of the batch's **first
    /// item** (one call of `key` per batch). Items the pool drops are not
    /// keyed (the [`on_dropped`](Self::on_dropped) callback gets the items
    /// themselves), so a panic in an item's `Drop` or in that callback has
    /// no key. A panic in `key` itself is caught like one in the work: the
    /// item counts as failed and the error is a [`PoolError::Panicked`]
    /// without a key.
    ///
    /// ```
    /// use pool_core::{Ctx, Pool, PoolError};
    ///
    /// struct Job { id: u64, path: String }
    ///
    /// let pool = Pool::builder()
    ///     .workers(2)
    ///     .continue_on_error()
    ///     .item_key(|job: &Job| job.id)
    ///     .build(|_ctx: &Ctx, job: Job| -> anyhow::Result<()> {
    ///         anyhow::ensure!(job.path.ends_with(".csv"), "{} is not a CSV file", job.path);
    ///         Ok(())
    ///     })?;
    /// let mut submitter = pool.submitter();
    /// for (id, path) in [(1, "a.csv"), (2, "b.txt"), (3, "c.csv"), (4, "d.json")] {
    ///     submitter.submit(Job { id, path: path.to_owned() })?;
    /// }
    /// drop(submitter);
    /// let report = pool.join();
    /// let mut failed: Vec<u64> = report
    ///     .errors()
    ///     .iter()
    ///     .filter_map(|error| error.key()?.as_u64())
    ///     .collect();
    /// failed.sort();
    /// assert_eq!(failed, [2, 4]);
    /// assert!(report.errors().iter().any(|error| error.to_string().ends_with("on item 2: b.txt is not a CSV file")));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn item_key<K, F>(mut self, key: F) -> Self
    where
        F: Fn(&T) -> K + Send + Sync + 'static,
        K: Into<ItemKey>,
    {
        self.settings.item_key = Some(Box::new(move |item: &T| key(item).into()));
        self
    }

    /// Hands back every item the pool drops unprocessed instead of just
    /// dropping it: on [`cancel`](Pool::cancel) (or a cancel of the pool's
    /// token, or the first error under [`stop_on_error`](Self::stop_on_error)),
    /// the items still queued, the rest of a batch a worker was working
    /// through, and the batches producers push after the cancel come to
    /// `callback`, one call per item, so a job runner can say exactly which
    /// jobs did not run and queue them again elsewhere.
    ///
    /// **Exactly once.** Every item counted in [`Report::dropped`] goes to
    /// `callback` once, except the [`interrupted`](Report::interrupted) ones
    /// (their worker had them and consumed them): `dropped() -
    /// interrupted()` calls in all. Items a producer's `submit` or `send`
    /// refused come back in the refusal instead ([`SubmitError`],
    /// [`SendError`](crate::SendError)), and items [`Pool::run`] had not
    /// taken from its iterator stay there (handed back as the
    /// [`Rest`](crate::Rest) of [`RunError::Cancelled`]): neither was
    /// submitted, neither comes here.
    ///
    /// **Where it runs.** On the worker thread that drops the item, during
    /// the run or while [`wait`](Pool::wait), [`join`](Pool::join) or the
    /// pool's drop let the workers finish; never after those return (the
    /// callback is dropped then, so it may own a [`Sender`] to this pool).
    /// Calls are one at a time (the callback is behind a lock, taken once per
    /// dropped batch), so it may be `FnMut` and need not be `Sync`; keep it
    /// short, as the other workers wait for it while they drop items. A panic
    /// in it is caught and reported ([`PanicSite::Callback`](crate::PanicSite::Callback)),
    /// and the item still counts as dropped. Without a cancel, nothing is
    /// dropped and the callback never runs.
    ///
    /// **Cost.** None per processed item: it is looked at only where the
    /// pool drops items.
    ///
    /// ```
    /// use pool_core::{Ctx, Pool};
    /// use std::sync::mpsc;
    ///
    /// let (back, not_run) = mpsc::channel();
    /// let (started, first_started) = mpsc::channel();
    /// let pool = Pool::builder()
    ///     .workers(1)
    ///     .on_dropped(move |job: u32| back.send(job).expect("the test listens"))
    ///     .build(move |ctx: &Ctx, job: u32| {
    ///         started.send(job)?;
    ///         while !ctx.is_cancelled() { std::thread::yield_now(); } // job 0 runs until the cancel
    ///         Ok::<(), mpsc::SendError<u32>>(())
    ///     })?;
    /// let mut submitter = pool.submitter();
    /// for job in 0..10 { submitter.submit(job)?; }
    /// submitter.flush();
    /// assert_eq!(first_started.recv()?, 0);
    /// pool.cancel();
    /// drop(submitter);
    /// let report = pool.join();
    /// let mut not_run: Vec<u32> = not_run.try_iter().collect();
    /// not_run.sort();
    /// assert_eq!(not_run, (1..10).collect::<Vec<_>>());
    /// assert_eq!((report.processed(), report.dropped()), (1, 9));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn on_dropped(mut self, callback: impl FnMut(T) + Send + 'static) -> Self {
        self.settings.on_dropped = Some(Box::new(callback));
        self
    }

    /// What the pool measures beyond the counts (default
    /// [`MetricsMode::Times`]); see [`Pool::metrics`] and [`Report::stats`].
    pub fn metrics(mut self, mode: MetricsMode) -> Self {
        self.settings.metrics_mode = mode;
        self
    }

    /// Key affinity: every item goes to the worker its key routes to, and only
    /// that worker processes it.
    ///
    /// `key` is called once per item on the producer's thread (in `submit` or
    /// `send`). The key is hashed with [`pool_chunk::KeyHasher`] (fixed seeds)
    /// and mapped to a worker by jump consistent hashing, so a key goes to the
    /// same worker in every run of the same build ([`Pool::worker_for`] says
    /// which).
    ///
    /// With `chunk_by`, **every item is keyed**: items wait in their worker's own
    /// inbox and are never stolen, so
    /// - the items of one key are processed by one worker, one at a time, in the
    ///   order each producer submitted them (per [`Submitter`] and per [`Sender`]
    ///   handle; items of one key from different producers interleave in the
    ///   order they reach the inbox);
    /// - a stateful worker (see [`build_stateful`](Self::build_stateful)) sees
    ///   only its own keys, so a per-key cache needs no lock;
    /// - a hot key makes a hot worker: others do not help with it. The per-worker
    ///   counts in [`Report::workers`] and [`Report::imbalance`] show it.
    ///
    /// Batching still applies: a [`Submitter`] fills one batch per target worker
    /// and pushes it when full, on [`Submitter::flush`], on drop, before it would
    /// block for room, and when the pool refuses an item. Backpressure,
    /// cancellation, the error policy and the accounting work as without keys.
    ///
    /// ```
    /// use pool_core::{Ctx, Pool};
    ///
    /// #[derive(Debug)]
    /// struct Payment { account: u32, cents: i64 }
    ///
    /// let pool = Pool::builder()
    ///     .workers(4)
    ///     .chunk_by(|payment: &Payment| payment.account)
    ///     .build_stateful(|_worker| {
    ///         // One balance table per worker, no lock: it only sees its accounts.
    ///         let mut balances = std::collections::HashMap::<u32, i64>::new();
    ///         move |_ctx: &Ctx, payment: Payment| {
    ///             *balances.entry(payment.account).or_default() += payment.cents;
    ///             Ok::<(), std::io::Error>(())
    ///         }
    ///     })?;
    /// let target = pool.worker_for(&Payment { account: 7, cents: 0 });
    /// let mut submitter = pool.submitter();
    /// for n in 0..1_000 {
    ///     submitter.submit(Payment { account: n % 10, cents: 5 })?;
    /// }
    /// drop(submitter);
    /// let report = pool.wait()?;
    /// assert_eq!(report.processed(), 1_000);
    /// assert!(target.is_some());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn chunk_by<K, F>(mut self, key: F) -> Self
    where
        K: Hash,
        F: Fn(&T) -> K + Send + Sync + 'static,
    {
        self.settings.route = Some(Box::new(move |item: &T, hasher: &KeyHasher| {
            hasher.hash(&key(item))
        }));
        self
    }
}

impl<'env, T: Send + 'env, L, Lc: Launch<'env>> Builder<T, L, Lc> {
    /// Starts a pool whose workers all share one function.
    ///
    /// ```
    /// use pool_core::{Ctx, Pool};
    /// let pool = Pool::builder().workers(2).build(|ctx: &Ctx, n: u64| {
    ///     anyhow::ensure!(n < 1_000, "{n} is too large for worker {}", ctx.worker_id());
    ///     Ok(())
    /// })?;
    /// pool.submitter().submit(5)?;
    /// assert_eq!(pool.wait()?.processed(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn build<F, E>(self, work: F) -> Result<Pool<T>, BuildError>
    where
        F: Fn(&Ctx, T) -> Result<(), E> + Send + Sync + 'env,
        E: Into<BoxError> + 'static,
        L: Layer<SharedFn<F>> + Send + Sync + 'env,
        L::Worker: Worker<T> + 'env,
    {
        let work = Arc::new(work);
        let (bare, layers) = self.split();
        bare.start_infallible(move |_ctx: &Ctx| {
            ItemProcessor(layers.layer(SharedFn(Arc::clone(&work))))
        })
    }

    /// Starts a pool where each thread builds its own worker with `maker`, on that
    /// thread: the worker may own a connection or buffer and need not be `Send`.
    /// Middleware layers are built around it on the same thread.
    ///
    /// The maker gets the worker's [`Ctx`], the one its every call gets: its
    /// id ([`Ctx::worker_id`]), the pool's token, and its metrics shard, so
    /// counter handles ([`Shard::counter`](crate::Shard::counter)) are
    /// resolved once, here, instead of on the first item.
    ///
    /// The build returns once the threads are started, without waiting for
    /// the makers. A maker that panics leaves its thread without a worker:
    /// the pool is cancelled and the panic is in the report
    /// ([`PanicSite::Maker`](crate::PanicSite::Maker)). A maker that can
    /// fail (a database connection) belongs in
    /// [`try_build_stateful`](Self::try_build_stateful), which waits for
    /// every maker and fails the build instead. To get each worker (or what
    /// it gathered) back at the end, see [`keep_workers`](Self::keep_workers).
    ///
    /// ```
    /// use pool_core::{Counter, Ctx, Pool, Worker};
    ///
    /// /// Counts long lines into a counter handle it resolved when it was made.
    /// struct Lines { long: Counter }
    ///
    /// impl Worker<String> for Lines {
    ///     type Error = std::convert::Infallible;
    ///     fn work(&mut self, _ctx: &Ctx, line: String) -> Result<(), Self::Error> {
    ///         if line.len() > 3 { self.long.inc(); }
    ///         Ok(())
    ///     }
    /// }
    ///
    /// let pool = Pool::builder()
    ///     .workers(2)
    ///     .build_stateful(|ctx: &Ctx| Lines { long: ctx.metrics().counter("long lines") })?;
    /// pool.run(["a", "bbbb", "cc", "dddd"].map(String::from))?;
    /// assert_eq!(pool.wait()?.stats().counters.get("long lines"), 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn build_stateful<M, W>(self, maker: M) -> Result<Pool<T>, BuildError>
    where
        M: Fn(&Ctx) -> W + Send + Sync + 'env,
        W: Worker<T> + 'env,
        L: Layer<W> + Send + Sync + 'env,
        L::Worker: Worker<T> + 'env,
    {
        let (bare, layers) = self.split();
        bare.start_infallible(move |ctx: &Ctx| ItemProcessor(layers.layer(maker(ctx))))
    }
}

impl<'env, T: Send + 'env, Lc: Launch<'env>> Builder<T, Identity, Lc> {
    /// The same settings for a pool of [`Call`]s of these items (see
    /// `call.rs`): only the key function depends on the item type, and it
    /// looks at the call's item.
    pub(crate) fn into_calls<R: Send + 'env>(self) -> Builder<Call<T, R>, Identity, Lc>
    where
        // The hooks are `'static` boxes of functions of `T`, wrapped here.
        T: 'static,
    {
        let Settings {
            workers,
            max_workers,
            batch_size,
            capacity,
            stop_on_error,
            error_limit,
            token,
            resume_panics,
            thread_name,
            on_worker_done,
            on_pool_done,
            route,
            metrics_mode,
            item_key,
            on_dropped,
        } = self.settings;
        let route = route.map(|route| -> RouteFn<Call<T, R>> {
            Box::new(move |call: &Call<T, R>, hasher: &KeyHasher| route(call.item(), hasher))
        });
        let item_key = item_key.map(|key| -> KeyFn<Call<T, R>> {
            Box::new(move |call: &Call<T, R>| key(call.item()))
        });
        // The callback gets the item; the call's handle, whose answer is
        // dropped with the call, says `CallError::Dropped`.
        let on_dropped = on_dropped.map(|mut hand_back| -> DroppedFn<Call<T, R>> {
            Box::new(move |call: Call<T, R>| hand_back(call.into_item()))
        });
        // Calls go in one at a time, so a batch never fills past the room a
        // small capacity leaves: clamp instead of refusing the build.
        let batch_size = capacity.map_or(batch_size, |capacity| batch_size.min(capacity.max(1)));
        Builder {
            settings: Settings {
                workers,
                max_workers,
                batch_size,
                capacity,
                stop_on_error,
                error_limit,
                token,
                resume_panics,
                thread_name,
                on_worker_done,
                on_pool_done,
                route,
                metrics_mode,
                item_key,
                on_dropped,
            },
            layers: Identity,
            launch: self.launch,
            _items: PhantomData,
        }
    }

    fn config(&self) -> Result<Config, BuildError> {
        let n_workers = self.settings.workers.ok_or(BuildError::WorkersNotSet)?;
        if n_workers == 0 {
            return Err(BuildError::ZeroWorkers);
        }
        if n_workers > MAX_WORKERS {
            return Err(BuildError::TooManyWorkers {
                workers: n_workers,
                max: MAX_WORKERS,
            });
        }
        let max_workers = self.settings.max_workers.unwrap_or(n_workers);
        if max_workers > MAX_WORKERS {
            return Err(BuildError::MaxWorkersTooLarge {
                max_workers,
                max: MAX_WORKERS,
            });
        }
        if max_workers < n_workers {
            return Err(BuildError::MaxWorkersBelowWorkers {
                max_workers,
                workers: n_workers,
            });
        }
        // The pool's own bound first: it is the tighter one for every item type
        // smaller than terabytes, and it does not depend on the type.
        if self.settings.batch_size > MAX_BATCH_SIZE {
            return Err(BuildError::BatchTooLarge {
                batch_size: self.settings.batch_size,
                max: MAX_BATCH_SIZE,
            });
        }
        // Validates the batch size the same way the submitters' batchers will.
        Batcher::<T>::new(self.settings.batch_size)?;
        let capacity = match self.settings.capacity {
            Some(capacity) => capacity,
            None => DEFAULT_MIN_CAPACITY
                .max(
                    self.settings
                        .batch_size
                        .saturating_mul(4)
                        .saturating_mul(n_workers),
                )
                .min(MAX_CAPACITY),
        };
        if capacity == 0 {
            return Err(BuildError::ZeroCapacity);
        }
        if capacity > MAX_CAPACITY {
            return Err(BuildError::CapacityTooLarge {
                capacity,
                max: MAX_CAPACITY,
            });
        }
        if self.settings.batch_size > capacity {
            return Err(BuildError::BatchExceedsCapacity {
                batch_size: self.settings.batch_size,
                capacity,
            });
        }
        if self.settings.error_limit == 0 {
            return Err(BuildError::ZeroErrorLimit);
        }
        // `std::thread::Builder::spawn` panics on such a name (it becomes a C
        // string) instead of returning an error; refusing it here keeps
        // `build` from panicking on a setting.
        if self.settings.thread_name.contains('\0') {
            return Err(BuildError::ThreadName {
                name: self.settings.thread_name.clone(),
            });
        }
        Ok(Config {
            n_workers,
            max_workers,
            batch_size: self.settings.batch_size,
            capacity,
            // Release often enough that a quarter of the capacity is never held
            // back by finished-but-unreleased items, and at least once per batch.
            release_every: (capacity / (4 * n_workers)).clamp(1, self.settings.batch_size.max(256)),
            stop_on_error: self.settings.stop_on_error,
            error_limit: self.settings.error_limit,
            metrics_mode: self.settings.metrics_mode,
        })
    }

    /// Starts a pool whose makers cannot fail (they may panic: see
    /// [`Builder::build_stateful`]), without waiting for them.
    pub(crate) fn start_infallible<P, Mk>(self, make: Mk) -> Result<Pool<T>, BuildError>
    where
        P: Processor<T> + 'env,
        Mk: Fn(&Ctx) -> P + Send + Sync + 'env,
    {
        let staff = Makers(move |ctx: &Ctx| Ok::<P, Infallible>(make(ctx)));
        self.start(staff, States::none(), false)
    }

    /// Starts the threads, each with a worker from `staff`, and hands the
    /// states it keeps to the pool. With `checked` (the `try_` builds),
    /// waits for every maker's outcome: if one failed (or a thread did not
    /// start), every thread is stopped and joined before the error returns,
    /// and no worker runs an item, `finish` or a callback.
    pub(crate) fn start<St, S>(
        self,
        staff: St,
        states: Arc<States<S>>,
        checked: bool,
    ) -> Result<Pool<T, S>, BuildError<St::Error>>
    where
        St: Staff<T> + 'env,
        S: Send + 'env,
    {
        let config = self.config().map_err(BuildError::widen)?;
        let n_workers = config.n_workers;
        let max_workers = config.max_workers;
        let started = Instant::now();
        let token = match &self.settings.token {
            Some(parent) => parent.child(),
            None => CancelToken::new(),
        };
        // Every per-worker part is made for `max_workers` seats; the first
        // `n_workers` get threads (`roster.rs`).
        let seats = Seats::new(max_workers);
        // Enough spare batches for every batch that can be in flight, within
        // reason: more would only hold memory.
        let n_spares = (config.capacity / config.batch_size + 2 * n_workers).clamp(1, 1024);
        let shared = Arc::new(Shared {
            queues: Queues::new(
                seats.stealers(),
                seats.spawn_stealers(),
                self.settings.route,
                n_workers,
                n_spares,
                seats.sleep(),
            ),
            capacity: Capacity::new(config.capacity, config.batch_size, max_workers),
            ledger: Ledger::new(
                max_workers,
                n_workers,
                config.metrics_mode == MetricsMode::Latency,
                config.error_limit,
                config.stop_on_error,
                token.clone(),
            ),
            worker_done: WorkerDoneHook::new(self.settings.on_worker_done),
            item_key: self.settings.item_key,
            on_dropped: DroppedHook::new(self.settings.on_dropped),
            exits: Exits::new(),
            progress: Progress::new(),
            token,
            config,
        });
        // Before any thread starts, so a failure leaves nothing to stop.
        self.launch
            .watch(&shared)
            .map_err(|error| BuildError::Spawn {
                worker: WorkerId(0),
                message: format!("the scope's watcher thread: {error}"),
            })?;

        let staff = Arc::new(staff);
        let thread_name = self.settings.thread_name;
        let hire = Lc::hiring(&staff, &thread_name);
        let in_scope = hire.is_none();
        let mut crew = Crew::new(seats.into_seats(&shared), hire);
        let first = crew
            .take_free(0, n_workers)
            .map_err(|_| BuildError::TooManyWorkers {
                workers: n_workers,
                max: max_workers,
            })?;
        let startup = checked.then(|| Arc::new(Startup::new()));
        let mut threads = Vec::with_capacity(n_workers);
        let spawned = thread::spawn(
            &self.launch,
            &shared,
            first,
            &thread_name,
            &staff,
            startup.as_ref(),
            &mut threads,
        );
        let n_started = threads.len();
        crew.seat(
            threads
                .into_iter()
                .map(|(index, handle)| (index, Lc::joinable(handle)))
                .collect(),
        );
        let pool = Pool {
            crew: Mutex::new(crew),
            in_scope,
            shared,
            started,
            on_pool_done: Mutex::new(self.settings.on_pool_done),
            resume_panics: self.settings.resume_panics,
            next_hint: AtomicUsize::new(0),
            states,
        };
        // On a failed spawn, the pool's drop closes it and joins the threads
        // started so far.
        if let Some(startup) = startup {
            let failures = startup.outcomes(n_started);
            let go = spawned.is_ok() && failures.is_empty();
            startup.decide(go);
            if !go {
                return Err(pool.abandon(spawned.err(), failures));
            }
        }
        spawned.map_err(BuildError::widen)?;
        Ok(pool)
    }
}

/// The error of a refused `run`, with the items not taken.
fn run_refused<I: Iterator>(refusal: Refusal, rest: Rest<I>) -> RunError<I> {
    match refusal {
        Refusal::Cancelled => RunError::Cancelled(rest),
        Refusal::Closed | Refusal::Full => RunError::Closed(rest),
    }
}

/// A fixed set of worker threads processing items of type `T`.
///
/// Threads start when the pool is built. Items go in through a [`Submitter`]
/// (batching, one per producer thread) or a [`Sender`] (cloneable, one item at a
/// time). [`close`](Pool::close) stops input, [`cancel`](Pool::cancel) stops
/// soon and drops queued items, [`wait`](Pool::wait) closes, drains, joins and
/// reports. Dropping a pool without waiting does the same as `wait` and discards
/// the report: threads are never leaked.
///
/// Every submitted item ends up processed, failed or dropped, and the
/// [`Report`] says how many of each.
///
/// ```
/// use pool_core::{Ctx, Pool};
///
/// let pool = Pool::builder()
///     .workers(4)
///     .continue_on_error()
///     .build(|_ctx: &Ctx, n: u32| {
///         if n % 10 == 0 { anyhow::bail!("{n} is a multiple of ten") }
///         Ok(())
///     })?;
/// let mut submitter = pool.submitter();
/// for n in 0..1000 {
///     submitter.submit(n)?;
/// }
/// drop(submitter);
/// let report = pool.join();
/// assert_eq!(report.submitted(), 1000);
/// assert_eq!(report.processed(), 900);
/// assert_eq!(report.failed(), 100);
/// assert_eq!(report.error_total(), 100);
/// assert!(report.is_balanced());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Pool<T: Send, S = ()> {
    shared: Arc<Shared<T>>,
    /// Each seat's thread or free parts; the lock also makes resizes one
    /// at a time.
    crew: Mutex<Crew<T>>,
    /// Whether the threads run in a [`scope`](crate::scope).
    in_scope: bool,
    started: Instant,
    /// Behind a mutex only so that `Pool` is `Sync` (producers share `&Pool`
    /// across threads) without asking the callback to be `Sync`.
    on_pool_done: Mutex<Option<PoolDoneFn>>,
    resume_panics: bool,
    next_hint: AtomicUsize,
    /// What the workers leave at the end ([`Builder::keep_workers`]); empty
    /// for other pools.
    states: Arc<States<S>>,
}

impl<T: Send, S> fmt::Debug for Pool<T, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("workers", &self.shared.queues.roster().active())
            .field("max_workers", &self.shared.config.max_workers)
            .field("batch_size", &self.shared.config.batch_size)
            .field("capacity", &self.shared.config.capacity)
            .field("in_flight", &self.shared.capacity.in_flight())
            .field("closed", &self.shared.capacity.is_closed())
            .field("cancelled", &self.shared.token.is_cancelled())
            .finish()
    }
}

impl<T: Send> Pool<T> {
    /// A builder with default settings; `workers` must be set.
    pub fn builder() -> Builder<T> {
        Builder::new()
    }
}

impl<T: Send, S> Pool<T, S> {
    /// The state every thread of this pool shares.
    pub(crate) fn shared(&self) -> &Arc<Shared<T>> {
        &self.shared
    }

    /// A batching handle for one producer thread.
    pub fn submitter(&self) -> Submitter<'_, T> {
        let batch_size = self.shared.config.batch_size;
        let open_batches = if self.shared.queues.is_keyed() && batch_size > 1 {
            self.shared.queues.seats()
        } else {
            1
        };
        let batchers = (0..open_batches)
            .map(|_| Batcher::new(batch_size).expect("the batch size was validated at build"))
            .collect();
        Submitter::new(
            &self.shared,
            batchers,
            batch_size,
            self.next_hint.fetch_add(1, Relaxed),
        )
    }

    /// Runs every item of `items` on the pool, the workers pulling them from
    /// the iterator themselves: the fast way to process a file, a directory
    /// listing or any other iterator.
    ///
    /// A worker with nothing to do locks the iterator, takes a chunk of up to
    /// [`batch_size`](Builder::batch_size) items, lets a sibling take the
    /// next chunk and runs its own. So each item is made (a `String` line
    /// read, say), processed and freed on one thread, no producer thread
    /// competes with the workers for the cores, and memory stays at a chunk
    /// per worker. Everything else is as for submitted items: per-worker
    /// state, middleware, the error policy, metrics, and the accounting (an
    /// item counts as submitted when a worker takes it).
    ///
    /// Blocks until the iterator is exhausted and every item taken from it has
    /// run, with every item those spawned ([`Ctx::spawn`]) and theirs: the
    /// whole tree of each item; returns how many items were taken. Call [`wait`](Pool::wait) (or
    /// [`join`](Pool::join)) afterwards for the report, as after submitting.
    /// The iterator's `next` runs on the workers, one at a time, under a lock.
    ///
    /// **Pull or push?** Use `run` when the items come from one iterator.
    /// Use a [`Submitter`] (push) when items arrive from elsewhere over time
    /// (a socket, a channel, several producer threads), or when the producer
    /// must keep going while the pool works.
    ///
    /// In a keyed pool ([`Builder::chunk_by`]) the calling thread takes the
    /// items and hands each to its key's worker, as a `Submitter` does: that
    /// keeps each key's items in order. `run` then returns once every item is
    /// handed over (a panic in the iterator reaches the caller there).
    ///
    /// # Errors
    ///
    /// The items not taken come back in the error, as an iterator ([`Rest`](crate::Rest)):
    /// [`RunError::Closed`] if the pool is or gets closed, [`RunError::Cancelled`]
    /// if it is or gets cancelled (items already taken are then dropped and
    /// counted, as queued items are), [`RunError::InsideWorker`] when called
    /// from one of this pool's own workers (it would wait for itself). A panic
    /// in the iterator's `next` ends the run with [`RunError::SourcePanicked`]
    /// and is reported as [`PanicSite::Source`](crate::PanicSite::Source).
    ///
    /// ```
    /// use std::collections::HashMap;
    /// use std::io::BufRead;
    /// use pool_core::{Ctx, Pool, Worker};
    ///
    /// // Each worker counts status codes in its own map; the workers come back at the end.
    /// #[derive(Default)]
    /// struct Count { statuses: HashMap<String, u64> }
    /// impl Worker<std::io::Result<String>> for Count {
    ///     type Error = std::io::Error;
    ///     fn work(&mut self, _ctx: &Ctx, line: std::io::Result<String>) -> std::io::Result<()> {
    ///         let line = line?;
    ///         if let Some(status) = line.split_whitespace().nth(1) {
    ///             *self.statuses.entry(status.to_owned()).or_default() += 1;
    ///         }
    ///         Ok(())
    ///     }
    /// }
    ///
    /// let log = std::io::Cursor::new("GET 200\nGET 404\nPUT 200\n");
    /// let pool = Pool::builder()
    ///     .workers(2)
    ///     .keep_workers()
    ///     .build_stateful(|_ctx: &Ctx| Count::default())?;
    /// assert_eq!(pool.run(log.lines())?, 3);
    /// let (report, workers) = pool.wait_with_workers()?;
    /// assert_eq!(report.processed(), 3);
    /// let mut total = HashMap::new();
    /// for worker in workers {
    ///     for (status, n) in worker.statuses { *total.entry(status).or_insert(0) += n; }
    /// }
    /// assert_eq!(total["200"], 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn run<I>(&self, items: I) -> Result<u64, RunError<I::IntoIter>>
    where
        I: IntoIterator<Item = T>,
        I::IntoIter: Send + 'static,
    {
        let items = items.into_iter();
        let shared = &self.shared;
        if thread::is_worker_of(shared) {
            return Err(RunError::InsideWorker(Rest::new(None, items)));
        }
        if shared.queues.is_keyed() {
            return self.run_keyed(items);
        }
        // The source's parcel holds one unit of room while it circulates, so
        // no worker exits while it is queued.
        if let Err(refusal) = shared.reserve(1, Wait::Forever) {
            return Err(run_refused(refusal, Rest::new(None, items)));
        }
        let source = Arc::new(Source::new(items));
        let hint = self.next_hint.fetch_add(1, Relaxed);
        shared.push(
            Parcel::Pull(Arc::clone(&source) as Arc<dyn Pull<T>>),
            Target::Any(hint),
        );
        let (taken, ending, rest) = source.wait();
        match (ending, rest) {
            (Ending::Panicked, _) | (_, None) => Err(RunError::SourcePanicked { taken }),
            (Ending::Exhausted, Some(_)) => Ok(taken),
            (Ending::Stopped | Ending::Open, Some(rest)) => {
                let refusal = if shared.token.is_cancelled() {
                    Refusal::Cancelled
                } else {
                    Refusal::Closed
                };
                Err(run_refused(refusal, Rest::new(None, rest)))
            }
        }
    }

    /// `run` in a keyed pool: the calling thread hands each item to its key's
    /// worker through a submitter, which keeps each key's items in order.
    fn run_keyed<I>(&self, mut items: I) -> Result<u64, RunError<I>>
    where
        I: Iterator<Item = T>,
    {
        let mut submitter = self.submitter();
        let mut taken = 0;
        while let Some(item) = items.next() {
            if let Err(error) = submitter.submit(item) {
                let (refusal, item) = match error {
                    SubmitError::Closed(item) => (Refusal::Closed, item),
                    SubmitError::Cancelled(item) => (Refusal::Cancelled, item),
                };
                return Err(run_refused(refusal, Rest::new(Some(item), items)));
            }
            taken += 1;
        }
        Ok(taken)
    }

    /// A cloneable handle that sends items one at a time, usable from any thread,
    /// including another pool's workers.
    pub fn sender(&self) -> Sender<T> {
        Sender::new(Arc::clone(&self.shared))
    }

    /// Stops accepting input. Items already accepted are still processed.
    /// Idempotent; blocked producers return their items as `Closed`.
    pub fn close(&self) {
        self.shared.close();
    }

    /// Cancels the pool: workers finish the item in hand (or stop it early:
    /// see [`Ctx::check`]), queued items are dropped and counted (and handed
    /// to [`Builder::on_dropped`], if set), blocked producers return their
    /// items as `Cancelled`. Idempotent.
    pub fn cancel(&self) {
        self.shared.token.cancel();
        if self.in_scope {
            // A scoped pool's token reaches it through its scope's watcher
            // thread, a moment later; its own cancel takes effect here.
            self.shared.on_cancel();
        }
    }

    /// The pool's cancellation token (a child of the builder's token, if one was
    /// given).
    pub fn token(&self) -> &CancelToken {
        &self.shared.token
    }

    /// Whether the pool no longer accepts input.
    pub fn is_closed(&self) -> bool {
        self.shared.capacity.is_closed()
    }

    /// The number of worker threads now (see [`set_workers`](Pool::set_workers)).
    pub fn workers(&self) -> usize {
        self.shared.queues.roster().active()
    }

    /// The most workers [`set_workers`](Pool::set_workers) may ask for
    /// ([`Builder::max_workers`]).
    pub fn max_workers(&self) -> usize {
        self.shared.config.max_workers
    }

    /// Changes the number of worker threads of the running pool to
    /// `n_workers` (1 to [`max_workers`](Pool::max_workers)), and returns
    /// once the change is in effect. Items keep flowing meanwhile; the
    /// accounting, the capacity and the report are as for a pool that never
    /// changed, and cover the workers that left.
    ///
    /// **Shrinking.** Workers `n_workers..` finish the item in hand (the
    /// rest of their batch goes to the others), hand over what their queues
    /// hold, run [`finish`](Worker::finish), their retirement (their state
    /// is kept, with [`keep_workers`](Builder::keep_workers)) and
    /// [`on_worker_done`](Builder::on_worker_done); `set_workers` returns
    /// when their threads have ended.
    ///
    /// **Growing.** New workers take the lowest free seats (ids
    /// `workers()..n_workers`); each thread runs the maker. `set_workers`
    /// waits for every new maker and returns its error (a fallible maker's,
    /// [`ResizeError::Maker`]) or panic ([`ResizeError::MakerPanicked`]):
    /// then no new worker runs an item, and the pool keeps the workers it
    /// had. A seat used again keeps its metrics shard, so a worker's counts
    /// ([`Report::workers`], `on_worker_done`) are per seat.
    ///
    /// **Keyed pools** ([`Builder::chunk_by`]). Keys are routed by jump
    /// consistent hashing, so only the keys whose worker changes move
    /// (about `|new - old| / max(new, old)` of them), and each producer's
    /// per-key order holds across the move: the resize waits until every
    /// item routed with the old count has run (items workers spawn or send
    /// meanwhile included; producers outside the pool wait for the switch
    /// at their next push), then switches. Items buffered in a
    /// [`Submitter`] are routed again, in order, at its next push. So a
    /// keyed resize waits for the pool to drain what it already holds, and a
    /// tree of spawned items keeps it waiting until the tree is done. The
    /// key function is called again for buffered items: it must give an item
    /// the same key every time.
    ///
    /// Call it from any thread that holds the pool, also one that holds a
    /// `Submitter` with open batches; not from one of the pool's own workers
    /// ([`ResizeError::FromWorker`]: the resize may wait for that worker).
    /// Resizes are one at a time; a closed or cancelled pool is not resized
    /// ([`ResizeError::Closed`], [`ResizeError::Cancelled`]), nor is a pool
    /// built in a [`scope`](crate::scope) ([`ResizeError::InScope`]: its
    /// threads are the scope's); asking for the current count does nothing.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use pool_core::{Ctx, Pool};
    ///
    /// static GROWN: AtomicUsize = AtomicUsize::new(0);
    /// let pool = Pool::builder()
    ///     .workers(2)
    ///     .max_workers(8)
    ///     .build_stateful(|ctx: &Ctx| {
    ///         if ctx.worker_id().index() >= 2 {
    ///             GROWN.fetch_add(1, Ordering::SeqCst); // a worker `set_workers` added
    ///         }
    ///         |_ctx: &Ctx, n: u64| { std::hint::black_box(n); Ok::<(), std::io::Error>(()) }
    ///     })?;
    /// let mut submitter = pool.submitter();
    /// submitter.submit_iter(0..10_000)?;
    /// pool.set_workers(6)?; // the load went up
    /// assert_eq!(pool.workers(), 6);
    /// assert_eq!(GROWN.load(Ordering::SeqCst), 4); // made before `set_workers` returned
    /// submitter.submit_iter(10_000..20_000)?;
    /// pool.set_workers(1)?; // and down again: five workers finished and left
    /// assert_eq!(pool.workers(), 1);
    /// drop(submitter);
    /// let report = pool.wait()?;
    /// assert_eq!(report.processed(), 20_000);
    /// assert_eq!(report.workers().len(), 6); // every seat that had a worker
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`ResizeError`]; on every error the pool keeps the workers it had.
    pub fn set_workers(&self, n_workers: usize) -> Result<(), ResizeError> {
        let shared = &self.shared;
        let max_workers = shared.config.max_workers;
        if n_workers == 0 {
            return Err(ResizeError::Zero);
        }
        if n_workers > max_workers {
            return Err(ResizeError::AboveMax {
                requested: n_workers,
                max_workers,
            });
        }
        if thread::is_worker_of(shared) {
            return Err(ResizeError::FromWorker);
        }
        if self.in_scope {
            return Err(ResizeError::InScope);
        }
        let mut crew = self.crew.lock().unwrap_or_else(PoisonError::into_inner);
        match shared.capacity.refuses() {
            Some(Refusal::Cancelled) => return Err(ResizeError::Cancelled),
            Some(Refusal::Closed | Refusal::Full) => return Err(ResizeError::Closed),
            None => {}
        }
        let current = shared.queues.roster().active();
        if n_workers > current {
            crew.grow(shared, current, n_workers, &mut || {
                shared.ledger.seats_used(n_workers);
                shared.switch_workers(n_workers);
            })?;
            crate::trace::pool_resized(current, n_workers);
        } else if n_workers < current {
            shared.switch_workers(n_workers);
            for index in n_workers..current {
                shared.queues.wake_seat(index);
            }
            crew.shrink(shared, n_workers, current);
            crate::trace::pool_resized(current, n_workers);
        }
        Ok(())
    }

    /// The configured batch size.
    pub fn batch_size(&self) -> usize {
        self.shared.config.batch_size
    }

    /// The configured capacity (items in flight).
    pub fn capacity(&self) -> usize {
        self.shared.config.capacity
    }

    /// Whether the pool routes items by key ([`Builder::chunk_by`]).
    pub fn is_keyed(&self) -> bool {
        self.shared.queues.is_keyed()
    }

    /// The worker that processes `item` in a keyed pool ([`Builder::chunk_by`]),
    /// or `None` if the pool is not keyed (any worker may take it).
    pub fn worker_for(&self, item: &T) -> Option<WorkerId> {
        self.shared.queues.worker_for(item).map(WorkerId)
    }

    /// Items reserved and not yet finished, right now.
    pub fn in_flight(&self) -> usize {
        self.shared.capacity.in_flight()
    }

    /// A live snapshot: counts so far, queued and in-flight items, errors,
    /// times, latency percentiles (with [`MetricsMode::Latency`]) and custom
    /// counters. Callable from any thread while the pool runs (share `&Pool`);
    /// it never blocks a worker. The final figures are in [`Report::stats`].
    ///
    /// ```
    /// use pool_core::{Ctx, Pool};
    ///
    /// let pool = Pool::builder().workers(2).build(|ctx: &Ctx, _n: u64| {
    ///     ctx.metrics().inc("seen");
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// let mut submitter = pool.submitter();
    /// for n in 0..1_000 { submitter.submit(n)?; }
    /// drop(submitter);
    /// let snapshot = pool.metrics(); // the run may still be going
    /// assert!(snapshot.finished() <= snapshot.submitted);
    /// assert_eq!(snapshot.submitted, 1_000);
    /// let report = pool.wait()?;
    /// assert_eq!(report.stats().processed, 1_000);
    /// assert_eq!(report.stats().counters.get("seen"), 1_000);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn metrics(&self) -> Snapshot {
        let shared = &self.shared;
        shared.ledger.snapshot(
            shared.capacity.in_flight(),
            shared.capacity.is_closed(),
            self.started.elapsed(),
        )
    }

    /// Closes the pool, waits for every accepted item, joins the threads and
    /// returns the report, or the run's error (see [`Report::into_result`]).
    ///
    /// With [`Builder::resume_panics`], a caught panic is re-raised here instead.
    pub fn wait(mut self) -> Result<Report, PoolError> {
        let (report, panic) = self.shut_down();
        if let Some(payload) = panic {
            resume_unwind(payload);
        }
        report.into_result()
    }

    /// Like [`wait`](Pool::wait) but always returns the report, errors included.
    pub fn join(mut self) -> Report {
        let (report, panic) = self.shut_down();
        if let Some(payload) = panic {
            resume_unwind(payload);
        }
        report
    }

    /// Like [`join`](Pool::join), and hands back what each worker left: its
    /// state, kept as [`Builder::keep_workers`] or
    /// [`Builder::keep_state`] said. No `Arc<Mutex<_>>` and no channel:
    /// each worker's state comes back exactly once, in worker order, after
    /// every thread has joined, also when items failed or panicked, the pool
    /// was cancelled or a `finish` failed (the worker is kept after its
    /// `finish`, whatever it returned).
    ///
    /// A worker that was never made (its maker panicked, in a pool built
    /// with [`build_stateful`](crate::KeepBuilder::build_stateful)) or whose
    /// [`keep_state`](Builder::keep_state) function panicked leaves nothing,
    /// so the list may be shorter than [`workers`](Pool::workers); the panic
    /// is in the report. A pool built without `keep_workers` hands back an
    /// empty list.
    ///
    /// ```
    /// use pool_core::{Ctx, Pool, Worker};
    ///
    /// /// Sums what it gets; fails on odd numbers.
    /// #[derive(Default)]
    /// struct Sum(u64);
    ///
    /// impl Worker<u64> for Sum {
    ///     type Error = std::io::Error;
    ///     fn work(&mut self, _ctx: &Ctx, n: u64) -> std::io::Result<()> {
    ///         if n % 2 == 1 {
    ///             return Err(std::io::Error::other(format!("{n} is odd")));
    ///         }
    ///         self.0 += n;
    ///         Ok(())
    ///     }
    /// }
    ///
    /// let pool = Pool::builder()
    ///     .workers(3)
    ///     .continue_on_error()
    ///     .keep_workers()
    ///     .build_stateful(|_ctx: &Ctx| Sum::default())?;
    /// pool.submitter().submit_iter(1..=10)?;
    /// let (report, sums) = pool.join_with_workers(); // also when items failed
    /// assert_eq!((report.processed(), report.failed()), (5, 5));
    /// assert_eq!(sums.len(), 3);
    /// assert_eq!(sums.iter().map(|sum| sum.0).sum::<u64>(), 2 + 4 + 6 + 8 + 10);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn join_with_workers(mut self) -> (Report, Vec<S>) {
        let (report, panic) = self.shut_down();
        if let Some(payload) = panic {
            resume_unwind(payload);
        }
        (report, self.states.take())
    }

    /// Like [`wait`](Pool::wait), and hands back what each worker left (see
    /// [`join_with_workers`](Pool::join_with_workers)); on an error, the
    /// states are dropped with the report (use `join_with_workers` to keep
    /// them then).
    ///
    /// ```
    /// use pool_core::{Ctx, Pool};
    ///
    /// type Check = fn(&Ctx, u32) -> std::io::Result<()>;
    /// let pool = Pool::builder()
    ///     .workers(2)
    ///     .keep_state(|ctx: &Ctx, _check: Check| ctx.counts().processed)
    ///     .build_stateful(|_ctx: &Ctx| -> Check {
    ///         |_ctx, n| if n < 5 { Ok(()) } else { Err(std::io::Error::other("too big")) }
    ///     })?;
    /// pool.submitter().submit_iter(0..10)?;
    /// // The first error stops the pool and is the run's error; the states go with it.
    /// assert!(pool.wait_with_workers().unwrap_err().to_string().contains("too big"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn wait_with_workers(self) -> Result<(Report, Vec<S>), PoolError> {
        let (report, states) = self.join_with_workers();
        Ok((report.into_result()?, states))
    }

    /// Ends a pool whose build failed (a maker failed, or a thread did not
    /// start) and says why: the threads were told to leave, they are joined
    /// here, and no callback runs.
    fn abandon<E>(
        mut self,
        spawn_error: Option<BuildError>,
        failures: Vec<(usize, MakerFailure<E>)>,
    ) -> BuildError<E> {
        // A pool that never ran has nothing to report.
        let on_pool_done = self
            .on_pool_done
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        drop(on_pool_done);
        drop(self.shut_down());
        let resume_panics = self.resume_panics;
        drop(self);
        let mut failures = failures.into_iter();
        let first = failures.next();
        // Only the first failure is reported; a payload's `Drop` is user code.
        for (_, failure) in failures {
            if let MakerFailure::Panicked(payload) = failure {
                thread::drop_payload(payload);
            }
        }
        match (spawn_error, first) {
            (Some(error), first) => {
                if let Some((_, MakerFailure::Panicked(payload))) = first {
                    thread::drop_payload(payload);
                }
                error.widen()
            }
            (None, Some((index, MakerFailure::Failed(error)))) => BuildError::Maker {
                worker: WorkerId(index),
                error,
            },
            (None, Some((index, MakerFailure::Panicked(payload)))) => {
                if resume_panics {
                    resume_unwind(payload);
                }
                let message = crate::error::panic_message(&*payload);
                thread::drop_payload(payload);
                BuildError::MakerPanicked {
                    worker: WorkerId(index),
                    message,
                }
            }
            (None, None) => unreachable!("a build is abandoned for a failed spawn or maker"),
        }
    }

    /// Closes, drains and joins; builds the report. Idempotent (the second call
    /// finds no threads and returns an empty-handed report).
    pub(crate) fn shut_down(&mut self) -> (Report, Option<Box<dyn Any + Send>>) {
        self.shared.close();
        let threads = self
            .crew
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take_threads();
        thread::join(&self.shared, threads);
        let (mut report, first_panic) = self.shared.ledger.close_books(self.started.elapsed());
        let callback = self
            .on_pool_done
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(callback) = callback
            && let Err(payload) = catch_unwind(AssertUnwindSafe(|| callback(&report)))
        {
            report.record_callback_panic(payload);
        }
        let panic = if self.resume_panics {
            report.take_first_panic(first_panic)
        } else {
            None
        };
        (report, panic)
    }
}

impl<T: Send, S> Drop for Pool<T, S> {
    fn drop(&mut self) {
        let callback_pending = self
            .on_pool_done
            .get_mut()
            .map_or(true, |callback| callback.is_some());
        let has_threads = self.crew.get_mut().map_or(true, |crew| crew.has_threads());
        if has_threads || callback_pending {
            // Dropping must not panic, so a panic to resume is discarded here.
            let _ = self.shut_down();
        }
    }
}
