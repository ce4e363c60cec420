//! Workers that need set-up, and their state at the end: the fallible
//! makers (`try_build_stateful` and its siblings), and the pools that hand
//! each worker (or what it gathered) back when they end
//! ([`Builder::keep_workers`], [`KeepBuilder`], [`Pool::join_with_workers`]).
//!
//! # Fallible makers
//!
//! A `try_` build runs the maker on each worker thread, as every stateful
//! build does (the worker need not be `Send`), and waits for every maker's
//! outcome before it returns (`thread::Startup`): all made, and the pool
//! runs; one failed or panicked, and every thread drops what it made and
//! leaves before the build returns [`BuildError::Maker`] (or
//! [`BuildError::MakerPanicked`]). No item, `finish` or callback runs in a
//! pool whose build failed, and no thread is left: the build may simply be
//! tried again.
//!
//! # State out
//!
//! A kept pool wraps each worker, innermost (inside every layer), in
//! [`Kept`], which hands the worker to a cell on its thread when the stack
//! around it is dropped. After `finish` the thread drops the stack, takes
//! the worker from the cell, runs the [`KeepState`] function on it (on the
//! worker's thread, so the worker need not be `Send`; what it returns must
//! be), and puts the result in the worker's slot of [`States`], which
//! [`Pool::join_with_workers`] empties after joining every thread. Cost: a
//! test of an `Option` per call of the worker, and nothing per item in pools
//! that keep nothing.

use std::cell::Cell;
use std::fmt;
use std::marker::PhantomData;
use std::rc::Rc;
use std::sync::{Arc, Mutex, PoisonError};

use crate::layer::Identity;
use crate::process::{BatchProcessor, Bench, ItemProcessor, Processor};
use crate::scope::{Detached, Launch};
use crate::shared::Shared;
use crate::thread::{Makers, Staff};
use crate::{BatchWorker, BoxError, BuildError, Builder, Ctx, Layer, PanicSite, Pool, Worker};

/// Fallible makers: `try_build_stateful` and `try_build_batch_stateful`.
impl<'env, T: Send + 'env, L, Lc: Launch<'env>> Builder<T, L, Lc> {
    /// Starts a pool where each thread builds its own worker with a maker
    /// that may fail (opening a database connection, loading a model), and
    /// fails the build if any maker fails.
    ///
    /// As in [`build_stateful`](Builder::build_stateful), the maker runs on
    /// the worker's own thread (the worker need not be `Send`), gets the
    /// worker's [`Ctx`] (its id, the pool's token, its metrics shard: resolve
    /// counter handles here), and layers are built around the worker on the
    /// same thread. Unlike it, the build **waits for every maker**: it
    /// returns the pool once every worker is made, and no item runs before.
    ///
    /// # Errors
    ///
    /// A setting error as every build ([`BuildError`]). If a maker returns
    /// an error, [`BuildError::Maker`] with the worker and the error as the
    /// maker returned it (the lowest-numbered worker's, if several failed);
    /// if one panics, [`BuildError::MakerPanicked`] (or, with
    /// [`resume_panics`](Builder::resume_panics), the panic itself, re-raised
    /// here). Either way the build fails whole: the workers the other makers
    /// made are dropped on their threads (no [`finish`](Worker::finish), no
    /// `on_worker_done`, no `on_pool_done`, since no item ran), and every
    /// thread is joined before the error returns. Nothing is left behind, so
    /// a build that failed for a passing reason may simply be tried again:
    /// a build consumes its builder, so make the builder in a function (or a
    /// closure, as below) and call it again.
    ///
    /// Running with fewer workers instead was the alternative; it was not
    /// chosen: a pool that silently has half its workers is a worse surprise
    /// than an error at start, and a caller who wants it can retry with
    /// fewer.
    ///
    /// ```
    /// use pool_core::{BuildError, Ctx, Pool, Worker};
    /// use std::sync::atomic::{AtomicBool, Ordering};
    ///
    /// /// Stands for a database connection: the first attempt to open the
    /// /// second one fails, as when the server is still starting.
    /// struct Connection { worker: usize }
    /// static STARTED: AtomicBool = AtomicBool::new(false);
    ///
    /// fn connect(ctx: &Ctx) -> Result<Connection, std::io::Error> {
    ///     let worker = ctx.worker_id().index();
    ///     if worker == 1 && !STARTED.load(Ordering::SeqCst) {
    ///         return Err(std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "not yet"));
    ///     }
    ///     Ok(Connection { worker })
    /// }
    ///
    /// impl Worker<u32> for Connection {
    ///     type Error = std::io::Error;
    ///     fn work(&mut self, _ctx: &Ctx, _row: u32) -> std::io::Result<()> {
    ///         let _ = self.worker; // insert the row
    ///         Ok(())
    ///     }
    /// }
    ///
    /// let build = || Pool::builder().workers(2).try_build_stateful(connect);
    /// match build() {
    ///     Err(BuildError::Maker { worker, error }) => {
    ///         assert_eq!(worker.index(), 1);
    ///         assert_eq!(error.kind(), std::io::ErrorKind::ConnectionRefused);
    ///     }
    ///     other => panic!("the first build fails: {other:?}"),
    /// }
    /// STARTED.store(true, Ordering::SeqCst); // the server is up
    /// let pool = build()?; // the same build again
    /// pool.submitter().submit_iter(0..100)?;
    /// assert_eq!(pool.wait()?.processed(), 100);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_build_stateful<M, W, E>(self, maker: M) -> Result<Pool<T>, BuildError<E>>
    where
        M: Fn(&Ctx) -> Result<W, E> + Send + Sync + 'env,
        E: Send + 'static,
        W: Worker<T> + 'env,
        L: Layer<W> + Send + Sync + 'env,
        L::Worker: Worker<T> + 'env,
    {
        let (bare, layers) = self.split();
        let make = move |ctx: &Ctx| maker(ctx).map(|worker| ItemProcessor(layers.layer(worker)));
        bare.start(Makers(make), States::none(), true)
    }

    /// Keeps each worker when the pool ends, to be handed back by
    /// [`Pool::join_with_workers`] (in worker order, each exactly once),
    /// instead of dropping it: per-worker maps, counts or buffers come back
    /// without an `Arc<Mutex<_>>` or a channel. The worker must be `Send`
    /// (it was made on its thread and comes back to yours); for one that is
    /// not, keep what it gathered instead, with
    /// [`keep_state`](Builder::keep_state).
    ///
    /// Call it after every other setting: it returns a [`KeepBuilder`], whose
    /// stateful build methods return a `Pool<T, W>`.
    ///
    /// ```
    /// use std::collections::HashMap;
    /// use pool_core::{Ctx, Pool, Worker};
    ///
    /// /// Counts words per length in a map of its own.
    /// #[derive(Default)]
    /// struct Lengths(HashMap<usize, u64>);
    ///
    /// impl Worker<&'static str> for Lengths {
    ///     type Error = std::convert::Infallible;
    ///     fn work(&mut self, _ctx: &Ctx, word: &'static str) -> Result<(), Self::Error> {
    ///         *self.0.entry(word.len()).or_default() += 1;
    ///         Ok(())
    ///     }
    /// }
    ///
    /// let pool = Pool::builder()
    ///     .workers(2)
    ///     .keep_workers()
    ///     .build_stateful(|_ctx: &Ctx| Lengths::default())?;
    /// pool.run(["a", "bb", "cc", "ddd", "ee"])?;
    /// let (report, workers) = pool.wait_with_workers()?;
    /// let mut lengths = HashMap::new();
    /// for Lengths(part) in workers {
    ///     for (length, n) in part { *lengths.entry(length).or_insert(0) += n; }
    /// }
    /// assert_eq!(report.processed(), 5);
    /// assert_eq!((lengths[&1], lengths[&2], lengths[&3]), (1, 3, 1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn keep_workers(self) -> KeepBuilder<T, L, KeepWorker, Lc> {
        KeepBuilder {
            builder: self,
            keep: KeepWorker,
        }
    }

    /// Runs `keep` on each worker when the pool ends, on the worker's own
    /// thread, after its [`finish`](Worker::finish) and before
    /// [`on_worker_done`](Builder::on_worker_done), and keeps what it
    /// returns, to be handed back by [`Pool::join_with_workers`]: the typed
    /// way to see each worker at its end. `keep` gets the worker's [`Ctx`]
    /// (its id, its counts) and the worker itself, by value; it returns
    /// what to keep (`Send`: it comes back to your thread), which may be
    /// `()` for a hook that only looks.
    ///
    /// The worker itself need not be `Send`: keep what it gathered. A panic
    /// in `keep` is caught and reported
    /// ([`PanicSite::Callback`](crate::PanicSite::Callback)); that worker
    /// then leaves nothing.
    ///
    /// Call it after every other setting: it returns a [`KeepBuilder`]. The
    /// worker's type must be written out in `keep`'s arguments (the
    /// builder does not know it yet).
    ///
    /// ```
    /// use std::rc::Rc;
    /// use pool_core::{Ctx, Pool, Worker};
    ///
    /// /// Not `Send` (an `Rc`), so it cannot come back itself: its sum can.
    /// struct Summer { seen: Rc<Vec<u64>> }
    ///
    /// impl Worker<u64> for Summer {
    ///     type Error = std::convert::Infallible;
    ///     fn work(&mut self, _ctx: &Ctx, n: u64) -> Result<(), Self::Error> {
    ///         Rc::make_mut(&mut self.seen).push(n);
    ///         Ok(())
    ///     }
    /// }
    ///
    /// let pool = Pool::builder()
    ///     .workers(2)
    ///     .keep_state(|ctx: &Ctx, summer: Summer| (ctx.worker_id(), summer.seen.iter().sum::<u64>()))
    ///     .build_stateful(|_ctx: &Ctx| Summer { seen: Rc::new(Vec::new()) })?;
    /// pool.submitter().submit_iter(1..=100)?;
    /// let (_report, sums) = pool.wait_with_workers()?;
    /// assert_eq!(sums.iter().map(|(_worker, sum)| sum).sum::<u64>(), 5050);
    /// assert_eq!(sums.len(), 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn keep_state<K>(self, keep: K) -> KeepBuilder<T, L, K, Lc>
    where
        K: Send + Sync + 'env,
    {
        KeepBuilder {
            builder: self,
            keep,
        }
    }
}

impl<'env, T: Send + 'env, Lc: Launch<'env>> Builder<T, Identity, Lc> {
    /// Starts a pool where each thread builds its own [`BatchWorker`] with a
    /// maker that may fail, and fails the build if any maker fails: the
    /// batch form of [`try_build_stateful`](Builder::try_build_stateful),
    /// with the same waiting, errors and clean-up.
    ///
    /// ```
    /// use pool_core::{BuildError, Ctx, Pool};
    ///
    /// let built = Pool::builder().workers(2).try_build_batch_stateful(|ctx: &Ctx| {
    ///     if ctx.worker_id().index() == 0 {
    ///         return Err(format!("no bulk endpoint for worker {}", ctx.worker_id()));
    ///     }
    ///     Ok(|_ctx: &Ctx, _batch: &mut Vec<u32>| Ok::<(), std::io::Error>(()))
    /// });
    /// let Err(BuildError::Maker { worker, error }) = built else { panic!("worker #0 fails") };
    /// assert_eq!((worker.index(), error.as_str()), (0, "no bulk endpoint for worker #0"));
    /// ```
    pub fn try_build_batch_stateful<M, W, E>(self, maker: M) -> Result<Pool<T>, BuildError<E>>
    where
        M: Fn(&Ctx) -> Result<W, E> + Send + Sync + 'env,
        E: Send + 'static,
        W: BatchWorker<T> + 'env,
    {
        let make = move |ctx: &Ctx| {
            maker(ctx).map(|worker| BatchProcessor {
                worker,
                single: Vec::with_capacity(1),
            })
        };
        self.start(Makers(make), States::none(), true)
    }
}

/// What a kept pool ([`Builder::keep_workers`], [`Builder::keep_state`])
/// keeps of each worker at its end, on the worker's thread: the worker
/// itself ([`KeepWorker`]) or what a function makes of it.
///
/// Implemented by [`KeepWorker`] and by closures
/// `Fn(&Ctx, W) -> S + Send + Sync + 'static` with `S: Send + 'static`; you
/// do not implement it yourself.
///
/// ```
/// use pool_core::{Ctx, KeepState, KeepWorker, Pool};
///
/// fn kept<K: KeepState<Vec<u8>>>(keep: &K, ctx: &Ctx, worker: Vec<u8>) -> K::State {
///     keep.keep(ctx, worker)
/// }
/// // Both forms, as a pool's thread uses them at a worker's end.
/// let pool = Pool::builder().workers(1).build_stateful(|ctx: &Ctx| {
///     assert_eq!(kept(&KeepWorker, ctx, vec![1, 2]), vec![1, 2]);
///     assert_eq!(kept(&|_ctx: &Ctx, worker: Vec<u8>| worker.len(), ctx, vec![1, 2]), 2);
///     |_ctx: &Ctx, _n: u32| Ok::<(), std::io::Error>(())
/// })?;
/// pool.wait()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait KeepState<W>: Send + Sync {
    /// What is kept, and handed back by [`Pool::join_with_workers`].
    type State: Send;

    /// Makes what is kept of `worker`, on its thread, after its `finish`.
    fn keep(&self, ctx: &Ctx, worker: W) -> Self::State;
}

/// Keeps the worker itself ([`Builder::keep_workers`]); the worker must be
/// `Send`.
///
/// ```
/// use pool_core::{Ctx, KeepWorker, Pool};
///
/// // `keep_workers()` is `keep_state(KeepWorker)`.
/// let pool = Pool::builder()
///     .workers(2)
///     .keep_state(KeepWorker)
///     .build_stateful(|ctx: &Ctx| {
///         let me = ctx.worker_id();
///         move |ctx: &Ctx, _n: u32| {
///             assert_eq!(ctx.worker_id(), me);
///             Ok::<(), std::io::Error>(())
///         }
///     })?;
/// let (_report, workers) = pool.wait_with_workers()?;
/// assert_eq!(workers.len(), 2);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct KeepWorker;

impl<W: Send> KeepState<W> for KeepWorker {
    type State = W;

    fn keep(&self, _ctx: &Ctx, worker: W) -> W {
        worker
    }
}

impl<W, S, F> KeepState<W> for F
where
    F: Fn(&Ctx, W) -> S + Send + Sync,
    S: Send,
{
    type State = S;

    fn keep(&self, ctx: &Ctx, worker: W) -> S {
        self(ctx, worker)
    }
}

/// A [`Builder`] whose pools keep each worker (or what `K` makes of it) for
/// [`Pool::join_with_workers`]: made by [`Builder::keep_workers`] or
/// [`Builder::keep_state`], after every other setting. Its build methods
/// are the stateful ones of a `Builder`, returning a `Pool<T, S>`, where `S`
/// is what is kept (the worker itself for `keep_workers`).
///
/// Per-worker state is the way to aggregate without sharing: each worker
/// counts into its own map, and the maps are merged once at the end.
///
/// ```
/// use std::collections::HashMap;
/// use std::io::BufRead;
/// use pool_core::{Counter, Ctx, Pool, Worker};
///
/// /// Counts lines per status code in a map of its own, and malformed lines
/// /// into a counter of the pool's metrics, resolved when it was made.
/// struct StatusCount { counts: HashMap<u16, u64>, malformed: Counter }
///
/// impl Worker<std::io::Result<String>> for StatusCount {
///     type Error = std::io::Error;
///     fn work(&mut self, _ctx: &Ctx, line: std::io::Result<String>) -> std::io::Result<()> {
///         match line?.rsplit(' ').nth(1).and_then(|status| status.parse().ok()) {
///             Some(status) => *self.counts.entry(status).or_default() += 1,
///             None => { self.malformed.inc(); }
///         }
///         Ok(())
///     }
/// }
///
/// let log = std::io::Cursor::new("GET /a 200 12\nGET /b 404 0\ngarbage\nGET /a 200 12\n");
/// let pool = Pool::builder()
///     .workers(2)
///     .keep_workers()
///     .build_stateful(|ctx: &Ctx| StatusCount {
///         counts: HashMap::new(),
///         malformed: ctx.metrics().counter("malformed"),
///     })?;
/// pool.run(log.lines())?;
/// let (report, workers) = pool.wait_with_workers()?;
/// let mut counts = HashMap::new();
/// for worker in workers {
///     for (status, n) in worker.counts { *counts.entry(status).or_insert(0) += n; }
/// }
/// assert_eq!((counts[&200], counts[&404]), (2, 1));
/// assert_eq!(report.stats().counters.get("malformed"), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "a builder does nothing until one of its build methods is called"]
pub struct KeepBuilder<T, L = Identity, K = KeepWorker, Lc = Detached> {
    builder: Builder<T, L, Lc>,
    keep: K,
}

impl<T, L, K, Lc> fmt::Debug for KeepBuilder<T, L, K, Lc> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeepBuilder")
            .field("builder", &self.builder)
            .finish_non_exhaustive()
    }
}

impl<'env, T: Send + 'env, L, K, Lc: Launch<'env>> KeepBuilder<T, L, K, Lc> {
    /// As [`Builder::build_stateful`], keeping each worker (or what `K`
    /// makes of it) for [`Pool::join_with_workers`]. A maker that panics
    /// leaves its thread without a worker, so without a state.
    ///
    /// ```
    /// use pool_core::{Ctx, Pool, WorkerId, layer_fn, Next};
    ///
    /// /// Remembers which worker it is and what it saw.
    /// struct Seen { worker: WorkerId, items: Vec<u32> }
    ///
    /// impl pool_core::Worker<u32> for Seen {
    ///     type Error = std::convert::Infallible;
    ///     fn work(&mut self, _ctx: &Ctx, n: u32) -> Result<(), Self::Error> {
    ///         self.items.push(n);
    ///         Ok(())
    ///     }
    /// }
    ///
    /// let pool = Pool::builder()
    ///     .workers(3)
    ///     // Layers wrap the kept worker as any other; it comes back from inside them.
    ///     .layer(layer_fn(|mut next: Next<'_, u32>, ctx: &Ctx, n: u32| next.work(ctx, n)))
    ///     .keep_workers()
    ///     .build_stateful(|ctx: &Ctx| Seen { worker: ctx.worker_id(), items: Vec::new() })?;
    /// pool.submitter().submit_iter(0..300)?;
    /// let (_report, workers) = pool.wait_with_workers()?;
    /// let order: Vec<usize> = workers.iter().map(|seen| seen.worker.index()).collect();
    /// assert_eq!(order, [0, 1, 2]); // in worker order, each once
    /// assert_eq!(workers.iter().map(|seen| seen.items.len()).sum::<usize>(), 300);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn build_stateful<M, W>(self, maker: M) -> Result<Pool<T, K::State>, BuildError>
    where
        M: Fn(&Ctx) -> W + Send + Sync + 'env,
        W: Worker<T> + 'env,
        K: KeepState<W> + 'env,
        K::State: 'env,
        L: Layer<Kept<W>> + Send + Sync + 'env,
        L::Worker: Worker<T> + 'env,
    {
        self.start_items(move |ctx: &Ctx| Ok(maker(ctx)), false)
            .map_err(|error: BuildError<std::convert::Infallible>| error)
    }

    /// As [`Builder::try_build_stateful`] (the build waits for every maker
    /// and fails whole if one fails), keeping each worker (or what `K` makes
    /// of it) for [`Pool::join_with_workers`]. A pool that is built has
    /// every worker, so the list has one state per worker (unless a `keep`
    /// function panicked).
    ///
    /// ```
    /// use std::collections::HashMap;
    /// use pool_core::{BuildError, Ctx, Pool, Worker};
    ///
    /// /// Squares, cached; the cache is loaded by the maker, which can fail.
    /// struct Squares(HashMap<u64, u64>);
    ///
    /// impl Worker<u64> for Squares {
    ///     type Error = std::convert::Infallible;
    ///     fn work(&mut self, _ctx: &Ctx, n: u64) -> Result<(), Self::Error> {
    ///         self.0.entry(n).or_insert(n * n);
    ///         Ok(())
    ///     }
    /// }
    ///
    /// let build = |fail: bool| {
    ///     Pool::builder()
    ///         .workers(2)
    ///         // What comes back: each cache's size (the whole worker would do too).
    ///         .keep_state(|_ctx: &Ctx, squares: Squares| squares.0.len())
    ///         .try_build_stateful(move |ctx: &Ctx| {
    ///             if fail && ctx.worker_id().index() == 0 {
    ///                 return Err("cache file unreadable");
    ///             }
    ///             Ok(Squares(HashMap::new()))
    ///         })
    /// };
    /// assert!(matches!(build(true), Err(BuildError::Maker { error: "cache file unreadable", .. })));
    /// let pool = build(false)?;
    /// pool.submitter().submit_iter((0..100).map(|n| n % 10))?;
    /// let (_report, sizes) = pool.wait_with_workers()?;
    /// assert_eq!(sizes.len(), 2);
    /// assert!(sizes.iter().all(|&size| size <= 10));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_build_stateful<M, W, E>(self, maker: M) -> Result<Pool<T, K::State>, BuildError<E>>
    where
        M: Fn(&Ctx) -> Result<W, E> + Send + Sync + 'env,
        E: Send + 'static,
        W: Worker<T> + 'env,
        K: KeepState<W> + 'env,
        K::State: 'env,
        L: Layer<Kept<W>> + Send + Sync + 'env,
        L::Worker: Worker<T> + 'env,
    {
        self.start_items(maker, true)
    }

    /// The per-item builds: the worker, kept, inside the layers.
    fn start_items<M, W, E>(
        self,
        maker: M,
        checked: bool,
    ) -> Result<Pool<T, K::State>, BuildError<E>>
    where
        M: Fn(&Ctx) -> Result<W, E> + Send + Sync + 'env,
        E: Send + 'static,
        W: Worker<T> + 'env,
        K: KeepState<W> + 'env,
        K::State: 'env,
        L: Layer<Kept<W>> + Send + Sync + 'env,
        L::Worker: Worker<T> + 'env,
    {
        let (bare, layers) = self.builder.split();
        let states = States::none();
        let make = move |ctx: &Ctx| {
            maker(ctx).map(|worker| {
                let (kept, cell) = Kept::new(worker);
                Keeping {
                    processor: ItemProcessor(layers.layer(kept)),
                    cell,
                }
            })
        };
        let staff = Keepers {
            make,
            keep: self.keep,
            states: Arc::clone(&states),
            _worker: PhantomData,
        };
        bare.start(staff, states, checked)
    }
}

impl<'env, T: Send + 'env, K, Lc: Launch<'env>> KeepBuilder<T, Identity, K, Lc> {
    /// As [`Builder::build_batch_stateful`], keeping each worker (or what
    /// `K` makes of it) for [`Pool::join_with_workers`].
    ///
    /// ```
    /// use pool_core::{BatchWorker, Ctx, Pool};
    ///
    /// /// Remembers the size of every batch it got.
    /// #[derive(Default)]
    /// struct Sizes(Vec<usize>);
    ///
    /// impl BatchWorker<u32> for Sizes {
    ///     type Error = std::convert::Infallible;
    ///     fn work_batch(&mut self, _ctx: &Ctx, batch: &mut Vec<u32>) -> Result<(), Self::Error> {
    ///         self.0.push(batch.len());
    ///         batch.clear();
    ///         Ok(())
    ///     }
    /// }
    ///
    /// let pool = Pool::builder()
    ///     .workers(2)
    ///     .batch_size(10)
    ///     .keep_workers()
    ///     .build_batch_stateful(|_ctx: &Ctx| Sizes::default())?;
    /// pool.submitter().submit_iter(0..100)?;
    /// let (_report, workers) = pool.wait_with_workers()?;
    /// let items: usize = workers.iter().flat_map(|Sizes(sizes)| sizes).sum();
    /// assert_eq!(items, 100);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn build_batch_stateful<M, W>(self, maker: M) -> Result<Pool<T, K::State>, BuildError>
    where
        M: Fn(&Ctx) -> W + Send + Sync + 'env,
        W: BatchWorker<T> + 'env,
        K: KeepState<W> + 'env,
        K::State: 'env,
    {
        self.start_batches(move |ctx: &Ctx| Ok(maker(ctx)), false)
            .map_err(|error: BuildError<std::convert::Infallible>| error)
    }

    /// As [`Builder::try_build_batch_stateful`], keeping each worker (or what
    /// `K` makes of it) for [`Pool::join_with_workers`].
    ///
    /// ```
    /// use pool_core::{Ctx, Pool};
    ///
    /// type Insert = fn(&Ctx, &mut Vec<u32>) -> std::io::Result<()>;
    /// let pool = Pool::builder()
    ///     .workers(2)
    ///     .keep_state(|ctx: &Ctx, _insert: Insert| ctx.counts().processed)
    ///     .try_build_batch_stateful(|_ctx: &Ctx| -> std::io::Result<Insert> {
    ///         // Open the bulk connection here; an error fails the build.
    ///         Ok(|_ctx, batch| { batch.clear(); Ok(()) })
    ///     })?;
    /// pool.submitter().submit_iter(0..1_000)?;
    /// let (_report, processed) = pool.wait_with_workers()?;
    /// assert_eq!(processed.iter().sum::<u64>(), 1_000);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_build_batch_stateful<M, W, E>(
        self,
        maker: M,
    ) -> Result<Pool<T, K::State>, BuildError<E>>
    where
        M: Fn(&Ctx) -> Result<W, E> + Send + Sync + 'env,
        E: Send + 'static,
        W: BatchWorker<T> + 'env,
        K: KeepState<W> + 'env,
        K::State: 'env,
    {
        self.start_batches(maker, true)
    }

    /// The batch builds: the worker, kept.
    fn start_batches<M, W, E>(
        self,
        maker: M,
        checked: bool,
    ) -> Result<Pool<T, K::State>, BuildError<E>>
    where
        M: Fn(&Ctx) -> Result<W, E> + Send + Sync + 'env,
        E: Send + 'static,
        W: BatchWorker<T> + 'env,
        K: KeepState<W> + 'env,
        K::State: 'env,
    {
        let bare = self.builder;
        let states = States::none();
        let make = move |ctx: &Ctx| {
            maker(ctx).map(|worker| {
                let (kept, cell) = Kept::new(worker);
                Keeping {
                    processor: BatchProcessor {
                        worker: kept,
                        single: Vec::with_capacity(1),
                    },
                    cell,
                }
            })
        };
        let staff = Keepers {
            make,
            keep: self.keep,
            states: Arc::clone(&states),
            _worker: PhantomData,
        };
        bare.start(staff, states, checked)
    }
}

/// The cell on a worker thread where [`Kept`] leaves its worker.
type WorkerCell<W> = Rc<Cell<Option<W>>>;

/// The innermost worker of a kept pool: the user's worker, handed to its
/// thread's cell when the stack around it is dropped (also when a layer's
/// `Drop` panics: the fields are still dropped).
///
/// Public but unnameable, like [`SharedFn`](crate::layer::SharedFn): it
/// appears in the bounds of [`KeepBuilder::build_stateful`], and a layer
/// generic in its worker covers it.
pub struct Kept<W> {
    worker: Option<W>,
    cell: WorkerCell<W>,
}

impl<W> Kept<W> {
    fn new(worker: W) -> (Self, WorkerCell<W>) {
        let cell = Rc::new(Cell::new(None));
        let kept = Kept {
            worker: Some(worker),
            cell: Rc::clone(&cell),
        };
        (kept, cell)
    }

    /// The worker; there until the drop.
    #[inline]
    fn worker(&mut self) -> &mut W {
        self.worker
            .as_mut()
            .expect("a kept worker is there until it is dropped")
    }
}

impl<W> Drop for Kept<W> {
    fn drop(&mut self) {
        self.cell.set(self.worker.take());
    }
}

impl<W> fmt::Debug for Kept<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Kept").finish_non_exhaustive()
    }
}

impl<T, W: Worker<T>> Worker<T> for Kept<W> {
    type Error = W::Error;

    #[inline]
    fn work(&mut self, ctx: &Ctx, item: T) -> Result<(), W::Error> {
        self.worker().work(ctx, item)
    }

    fn finish(&mut self, ctx: &Ctx) -> Result<(), W::Error> {
        self.worker().finish(ctx)
    }
}

impl<T, W: BatchWorker<T>> BatchWorker<T> for Kept<W> {
    type Error = W::Error;

    #[inline]
    fn work_batch(&mut self, ctx: &Ctx, batch: &mut Vec<T>) -> Result<(), W::Error> {
        self.worker().work_batch(ctx, batch)
    }

    fn finish(&mut self, ctx: &Ctx) -> Result<(), W::Error> {
        self.worker().finish(ctx)
    }
}

/// A kept pool's processor: the usual one, and the cell its worker ends in.
pub(crate) struct Keeping<P, W> {
    processor: P,
    cell: WorkerCell<W>,
}

impl<T, P: Processor<T>, W> Processor<T> for Keeping<P, W> {
    #[inline]
    fn one(&mut self, item: T, bench: &mut Bench<'_, T>) {
        self.processor.one(item, bench);
    }

    #[inline]
    fn many(&mut self, batch: &mut Vec<T>, bench: &mut Bench<'_, T>) {
        self.processor.many(batch, bench);
    }

    fn finish(&mut self, ctx: &Ctx) -> Result<(), BoxError> {
        self.processor.finish(ctx)
    }
}

/// The staff of a kept pool: a maker, and at the end, `keep` on each
/// worker, whose result goes to its slot.
struct Keepers<Mk, K, W, S> {
    make: Mk,
    keep: K,
    states: Arc<States<S>>,
    _worker: PhantomData<fn(W)>,
}

impl<T, P, W, E, S, K, Mk> Staff<T> for Keepers<Mk, K, W, S>
where
    P: Processor<T>,
    E: Send + 'static,
    S: Send,
    K: KeepState<W, State = S>,
    Mk: Fn(&Ctx) -> Result<Keeping<P, W>, E> + Send + Sync,
{
    type Processor = Keeping<P, W>;
    type Error = E;

    fn make(&self, ctx: &Ctx) -> Result<Keeping<P, W>, E> {
        (self.make)(ctx)
    }

    fn retire(&self, shared: &Shared<T>, ctx: &Ctx, keeping: Keeping<P, W>) {
        let Keeping { processor, cell } = keeping;
        // Drops the layers; the worker itself goes to the cell.
        shared.guard(ctx.worker, PanicSite::Finish, || drop(processor));
        let Some(worker) = cell.take() else {
            return;
        };
        if let Some(state) = shared.guard(ctx.worker, PanicSite::Callback, || {
            self.keep.keep(ctx, worker)
        }) {
            self.states.put(ctx.worker.index(), state);
        }
    }
}

/// What the workers of a pool left at the end, one slot per seat (a seat
/// holds one state per worker that sat on it: `Pool::set_workers` retires
/// workers and may later start others there), filled on the workers'
/// threads and emptied by [`Pool::join_with_workers`].
pub(crate) struct States<S>(Mutex<Vec<Vec<S>>>);

impl<S> States<S> {
    /// No state yet (the slots grow as workers leave theirs).
    pub(crate) fn none() -> Arc<Self> {
        Arc::new(States(Mutex::new(Vec::new())))
    }

    /// The worker on seat `index` leaves `state`; once per worker.
    fn put(&self, index: usize, state: S) {
        let mut slots = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if slots.len() <= index {
            slots.resize_with(index + 1, Vec::new);
        }
        slots[index].push(state);
    }

    /// Every state left, by seat, and on a seat in the order its workers
    /// left; call once every worker has left.
    pub(crate) fn take(&self) -> Vec<S> {
        let mut slots = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        std::mem::take(&mut *slots).into_iter().flatten().collect()
    }
}
