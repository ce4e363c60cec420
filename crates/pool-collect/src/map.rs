//! `map_ordered` and `map_unordered`: a function over an iterator on a pool,
//! with a bounded window.
//!
//! # Design
//!
//! - **On a `pool_core::Pool`.** Each map builds one pool of `workers`
//!   threads (no thread per item) whose worker calls `f` and sends the result
//!   back over a channel. The pool is shut down when the map ends or is dropped.
//! - **Pulled by the consumer.** There is no feeder thread: the input iterator
//!   is advanced inside [`Iterator::next`] of the map, on the consumer's thread,
//!   and only while the window has room. So the input need not be `Send` or
//!   `'static` (it may borrow local data or be an `Rc`-based iterator), and
//!   the input is read exactly as far as the window allows, never further.
//! - **One window bounds memory.** `window` bounds the items taken from the
//!   input and not yet handed to the consumer: queued, in a worker's hands, or
//!   finished and waiting in the reorder buffer. When one item is slow, the
//!   ones after it finish and wait in the buffer, and the input is not read
//!   further until the slow one is handed over; the buffer never holds more
//!   than `window` results. The unordered map uses the same bound for items
//!   in flight. Nothing proportional to the window is allocated up front:
//!   the reorder buffer grows with the results actually waiting, and the
//!   pool reserves no memory for its capacity, so a window of
//!   [`MAX_WINDOW`] costs only what is in flight.
//! - **`'static` work, or scoped.** The threads of an ordinary pool outlive
//!   any borrow the caller could hand them, so `f`, the items and the
//!   results of [`map_ordered`] and [`map_unordered`] are `'static`. The
//!   same maps on a scoped pool ([`scoped`](crate::scoped), in a
//!   `pool_core::scope`) take `f`, items and results that borrow: the pool's
//!   threads end before the scope returns. Both start the one `Engine` here
//!   from a pool builder, detached or scoped.
//! - **Panics surface where the result would have.** A panic in `f` is caught
//!   on the worker (the pool and the other items go on) and re-raised on the
//!   consumer's thread with its original payload when the consumer reaches
//!   that item: in input order for the ordered map, when it comes for the
//!   unordered one. This is what `rayon` and `std::thread::scope` do. Results
//!   of type `Result` are plain values here: they come through untouched.
//! - **An item waits behind a slow one only while every worker is busy.**
//!   `pool-core` workers take queued jobs a few at a time, so an item can be
//!   queued behind one whose `f` blocks; but a worker that takes more than
//!   the job it runs wakes a parked sibling for the rest (unless one is
//!   already looking for work), and whoever steals does the same for what is
//!   left (`pool-core`'s invariant I11, owned by `Queues::find_job`). So
//!   while a worker is idle or parked, an item is not held until the slow
//!   item before it finishes; only when every worker is in a long call does
//!   it wait for one of them. Nothing is lost, and the order and window
//!   bounds hold either way. Test:
//!   `map_items_queued_behind_a_blocked_item_reach_idle_workers.rs`.
//! - **No blocking in the pool.** The pool's capacity is twice the window.
//!   `pool-core` holds back at most a quarter of its capacity as
//!   finished-but-unreleased room, so the in-pool count never reaches the
//!   capacity while the window has room, and submitting never blocks.

use std::any::Any;
use std::collections::VecDeque;
use std::convert::Infallible;
use std::fmt;
use std::iter::FusedIterator;
use std::num::NonZeroUsize;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::mpsc;

use pool_core::{
    BuildError, Builder, Ctx, Identity, Launch, MAX_CAPACITY, MAX_WORKERS, MetricsMode, Pool,
    Sender,
};

/// The largest window accepted: half of [`pool_core::MAX_CAPACITY`], since a
/// map's pool gets twice the window as its capacity.
pub const MAX_WINDOW: usize = MAX_CAPACITY / 2;

/// The settings of [`map_ordered`] and [`map_unordered`].
///
/// Defaults: one worker per available core
/// ([`std::thread::available_parallelism`], 1 if unknown), and a window of
/// four items per worker, so each worker has work queued behind the item in
/// its hands and a slow item does not stall the others at once. A larger
/// window tolerates longer stalls of one item at the cost of holding more
/// results. The settings are checked when the map starts; a wrong one is a
/// [`MapError`] naming it.
///
/// ```
/// use pool_collect::MapConfig;
///
/// let config = MapConfig::default().workers(4).window(64);
/// assert_eq!((config.n_workers(), config.window_size()), (4, 64));
/// assert_eq!(MapConfig::default().workers(2).window_size(), 8); // 4 per worker
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MapConfig {
    workers: usize,
    window: Option<usize>,
}

impl Default for MapConfig {
    fn default() -> Self {
        MapConfig {
            workers: std::thread::available_parallelism().map_or(1, NonZeroUsize::get),
            window: None,
        }
    }
}

impl MapConfig {
    /// The number of worker threads (at least 1, at most
    /// [`pool_core::MAX_WORKERS`]).
    pub fn workers(mut self, n_workers: usize) -> Self {
        self.workers = n_workers;
        self
    }

    /// The most items taken from the input and not yet handed to the consumer
    /// (at least 1, at most [`MAX_WINDOW`]). Default: four per worker, which
    /// is always within the bounds once `workers` is.
    pub fn window(mut self, window: usize) -> Self {
        self.window = Some(window);
        self
    }

    /// The number of worker threads.
    pub fn n_workers(&self) -> usize {
        self.workers
    }

    /// The window: set, or four per worker.
    pub fn window_size(&self) -> usize {
        self.window
            .unwrap_or_else(|| self.workers.saturating_mul(4))
    }

    fn validate(&self) -> Result<usize, MapError> {
        if self.workers == 0 {
            return Err(MapError::ZeroWorkers);
        }
        // Checked before the window: an unset window is derived from
        // `workers`, and a derived window that is too large is the fault of
        // `workers`, which the error must name. Within `MAX_WORKERS` the
        // derived window (at most 4 * 4096) is far below `MAX_WINDOW`.
        if self.workers > MAX_WORKERS {
            return Err(MapError::Pool(BuildError::TooManyWorkers {
                workers: self.workers,
                max: MAX_WORKERS,
            }));
        }
        let window = self.window_size();
        if window == 0 {
            return Err(MapError::ZeroWindow);
        }
        if window > MAX_WINDOW {
            return Err(MapError::WindowTooLarge {
                window,
                max: MAX_WINDOW,
            });
        }
        Ok(window)
    }
}

/// A [`MapConfig`] setting that is wrong, or a pool that could not start.
///
/// ```
/// use pool_collect::{map_ordered, MapConfig, MapError};
///
/// let error = map_ordered(0..10u32, MapConfig::default().window(0), |n| n).err();
/// assert_eq!(error, Some(MapError::ZeroWindow));
/// assert_eq!(MapError::ZeroWorkers.to_string(), "`workers` must be at least 1, got 0");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MapError {
    /// `workers` was 0.
    #[error("`workers` must be at least 1, got 0")]
    ZeroWorkers,
    /// `window` was 0, so no item could ever be taken.
    #[error("`window` must be at least 1, got 0")]
    ZeroWindow,
    /// `window` was larger than [`MAX_WINDOW`].
    #[error("`window` must be at most {max}, got {window}")]
    WindowTooLarge {
        /// The requested window.
        window: usize,
        /// The largest window accepted.
        max: usize,
    },
    /// `workers` was above [`pool_core::MAX_WORKERS`]
    /// ([`BuildError::TooManyWorkers`], checked before the window), or the
    /// pool refused to start: a thread could not be spawned.
    #[error("the map's pool did not start: {0}")]
    Pool(#[from] BuildError),
}

/// Maps `f` over `input` on a pool and yields the results in input order.
///
/// At most `window` items are taken from `input` and not yet yielded at any
/// time (see [`MapConfig::window`]): a slow item holds the results after it in
/// a buffer of at most `window`, and `input` is not advanced until it is
/// yielded. `input` is advanced on the caller's thread, inside `next`, so it
/// may borrow; `f`, the items and the results go to the pool's threads and
/// are `'static` (share big read-only data through an `Arc`).
///
/// A panic in `f` is re-raised by `next` with its original payload when its
/// item's turn comes; the results before it are yielded first. A `Result`
/// returned by `f` is yielded as it is, so `collect::<Result<Vec<_>, _>>()`
/// stops at the first error in input order (dropping the map, which cancels
/// the rest).
///
/// Dropping the map before the end cancels its pool: items not started are
/// dropped unprocessed, and the drop waits for the items in workers' hands
/// (at most one per worker).
///
/// The map runs on a [`pool_core::Pool`] of its own, built here and shut down
/// when the map ends or is dropped. If `f` blocks for long (I/O, a lock), an
/// item queued behind it on the same worker may wait for it even while other
/// workers idle; give such maps a few more workers than cores.
///
/// ```
/// use pool_collect::{map_ordered, MapConfig};
///
/// let lines = vec!["3", "1", "x", "4"]; // borrowed by the input iterator
/// let parsed: Vec<Result<u32, String>> = map_ordered(
///     lines.iter().map(|line| line.to_string()),
///     MapConfig::default().workers(2).window(8),
///     |line: String| line.parse::<u32>().map_err(|error| format!("{line}: {error}")),
/// )?
/// .collect();
/// assert_eq!(parsed[0], Ok(3));
/// assert_eq!(parsed[1], Ok(1));
/// assert!(parsed[2].is_err());
/// assert_eq!(parsed[3], Ok(4));
/// # Ok::<(), pool_collect::MapError>(())
/// ```
pub fn map_ordered<I, F, R>(
    input: I,
    config: MapConfig,
    f: F,
) -> Result<MapOrdered<I::IntoIter, R>, MapError>
where
    I: IntoIterator,
    I::Item: Send + 'static,
    F: Fn(I::Item) -> R + Send + Sync + 'static,
    R: Send + 'static,
{
    MapOrdered::start(Pool::builder(), input.into_iter(), config, f)
}

/// Maps `f` over `input` on a pool and yields the results as they finish.
///
/// Every result is yielded exactly once, in the order the workers finish
/// them. At most `window` items are taken from `input` and not yet yielded,
/// as for [`map_ordered`], but a slow item holds back nothing but its own
/// slot. Panics are re-raised by `next` when the panicked item's turn comes
/// in completion order; `input`, dropping and `'static` are as for
/// [`map_ordered`]. To know which input a result belongs to, put the index in
/// the item (`input.enumerate()`) and return it from `f`.
///
/// ```
/// use pool_collect::{map_unordered, MapConfig};
///
/// let mut squares: Vec<(usize, u64)> =
///     map_unordered((0..100u64).enumerate(), MapConfig::default().workers(4), |(index, n)| {
///         (index, n * n)
///     })?
///     .collect();
/// squares.sort();
/// assert_eq!(squares.len(), 100);
/// assert_eq!(squares[9], (9, 81));
/// # Ok::<(), pool_collect::MapError>(())
/// ```
pub fn map_unordered<I, F, R>(
    input: I,
    config: MapConfig,
    f: F,
) -> Result<MapUnordered<I::IntoIter, R>, MapError>
where
    I: IntoIterator,
    I::Item: Send + 'static,
    F: Fn(I::Item) -> R + Send + Sync + 'static,
    R: Send + 'static,
{
    MapUnordered::start(Pool::builder(), input.into_iter(), config, f)
}

/// The iterator of [`map_ordered`]: results in input order.
#[must_use = "a map takes no input until it is iterated"]
pub struct MapOrdered<I, R>
where
    I: Iterator,
    I::Item: Send,
    R: Send,
{
    engine: Engine<I, R>,
    /// Finished results waiting for the ones before them; slot `k` holds the
    /// item `engine.yielded + k`. Never longer than the window, and only as
    /// long as the furthest result that arrived early.
    reorder: VecDeque<Option<Caught<R>>>,
}

/// The iterator of [`map_unordered`]: results as they finish.
#[must_use = "a map takes no input until it is iterated"]
pub struct MapUnordered<I, R>
where
    I: Iterator,
    I::Item: Send,
    R: Send,
{
    engine: Engine<I, R>,
}

impl<I, R> MapOrdered<I, R>
where
    I: Iterator,
    I::Item: Send,
    R: Send,
{
    /// Starts the map on a pool from `builder` (detached, or in a scope).
    pub(crate) fn start<'env, F, Lc>(
        builder: Builder<(usize, I::Item), Identity, Lc>,
        input: I,
        config: MapConfig,
        f: F,
    ) -> Result<Self, MapError>
    where
        I::Item: 'env,
        R: 'env,
        F: Fn(I::Item) -> R + Send + Sync + 'env,
        Lc: Launch<'env>,
    {
        let engine = Engine::start(builder, input, config, f, "map-ordered")?;
        Ok(MapOrdered {
            // Empty: it grows with the results actually waiting, so a large
            // window costs memory only when a slow item makes results pile up.
            reorder: VecDeque::new(),
            engine,
        })
    }
}

impl<I, R> MapUnordered<I, R>
where
    I: Iterator,
    I::Item: Send,
    R: Send,
{
    /// Starts the map on a pool from `builder` (detached, or in a scope).
    pub(crate) fn start<'env, F, Lc>(
        builder: Builder<(usize, I::Item), Identity, Lc>,
        input: I,
        config: MapConfig,
        f: F,
    ) -> Result<Self, MapError>
    where
        I::Item: 'env,
        R: 'env,
        F: Fn(I::Item) -> R + Send + Sync + 'env,
        Lc: Launch<'env>,
    {
        let engine = Engine::start(builder, input, config, f, "map-unordered")?;
        Ok(MapUnordered { engine })
    }
}

/// What `f` did with one item: its result, or its panic's payload.
type Caught<R> = Result<R, Box<dyn Any + Send>>;

/// The part both maps share: the input, the pool, the results channel and the
/// window accounting.
struct Engine<I, R>
where
    I: Iterator,
    I::Item: Send,
    R: Send,
{
    input: I,
    /// Whether `input` returned `None`; it is not asked again (the map is fused
    /// even when the input is not).
    input_done: bool,
    /// `None` once the map has ended and the pool has been shut down.
    pool: Option<Pool<(usize, I::Item)>>,
    sender: Sender<(usize, I::Item)>,
    results: mpsc::Receiver<(usize, Caught<R>)>,
    window: usize,
    /// Items taken from the input so far (the next item's index).
    taken: usize,
    /// Results handed to the consumer so far.
    yielded: usize,
}

impl<I, R> Engine<I, R>
where
    I: Iterator,
    I::Item: Send,
    R: Send,
{
    /// Starts the map's pool from `builder`: detached, or in a scope
    /// (`scoped.rs`), where `f`, the items and the results may borrow.
    fn start<'env, F, Lc>(
        builder: Builder<(usize, I::Item), Identity, Lc>,
        input: I,
        config: MapConfig,
        f: F,
        thread_name: &str,
    ) -> Result<Self, MapError>
    where
        I::Item: 'env,
        R: 'env,
        F: Fn(I::Item) -> R + Send + Sync + 'env,
        Lc: Launch<'env>,
    {
        let window = config.validate()?;
        let (result_sender, results) = mpsc::channel();
        let pool = builder
            .workers(config.workers)
            // One item per push: the window is small, and a batch waiting to fill
            // would hold items back from idle workers.
            .batch_size(1)
            // See the module notes: twice the window means `send` never blocks.
            .capacity(window.saturating_mul(2))
            // `f` never fails from the pool's point of view: its panics are caught
            // below and its `Result`s are values.
            .continue_on_error()
            .metrics(MetricsMode::Off)
            .thread_name(thread_name)
            .build(move |_ctx: &Ctx, (index, item): (usize, I::Item)| {
                // `AssertUnwindSafe`: after a panic, `f` is used again for later
                // items, as `rayon` does; the panic itself reaches the consumer.
                let outcome = catch_unwind(AssertUnwindSafe(|| f(item)));
                // The receiver is gone only when the map was dropped, and then
                // nobody wants the result.
                let _ = result_sender.send((index, outcome));
                Ok::<(), Infallible>(())
            })?;
        Ok(Engine {
            input,
            input_done: false,
            sender: pool.sender(),
            pool: Some(pool),
            results,
            window,
            taken: 0,
            yielded: 0,
        })
    }

    /// Items taken and not yet handed to the consumer.
    fn outstanding(&self) -> usize {
        self.taken - self.yielded
    }

    /// Takes items from the input and submits them while the window has room.
    fn top_up(&mut self) {
        while !self.input_done && self.outstanding() < self.window {
            match self.input.next() {
                Some(item) => {
                    self.sender
                        .send((self.taken, item))
                        .expect("the map's pool is closed or cancelled only when the map ends");
                    self.taken += 1;
                }
                None => self.input_done = true,
            }
        }
    }

    /// Waits for the next result to finish.
    fn receive(&mut self) -> (usize, Caught<R>) {
        self.results
            .recv()
            .expect("the pool's worker holds the result sender while items are outstanding")
    }

    /// Shuts the pool down after the last result: every item has finished, so
    /// this only joins idle threads.
    fn end(&mut self) {
        self.pool = None;
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let outstanding = self.outstanding();
        if self.input_done {
            return (outstanding, Some(outstanding));
        }
        let (low, high) = self.input.size_hint();
        (
            low.saturating_add(outstanding),
            high.and_then(|high| high.checked_add(outstanding)),
        )
    }
}

impl<I, R> Drop for Engine<I, R>
where
    I: Iterator,
    I::Item: Send,
    R: Send,
{
    fn drop(&mut self) {
        if let Some(pool) = self.pool.take() {
            // Nobody will read the remaining results: drop the queued items instead
            // of processing them. Dropping the pool waits for the items in hand.
            pool.cancel();
        }
    }
}

impl<I, R> fmt::Debug for Engine<I, R>
where
    I: Iterator,
    I::Item: Send,
    R: Send,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Map")
            .field("window", &self.window)
            .field("taken", &self.taken)
            .field("yielded", &self.yielded)
            .field("input_done", &self.input_done)
            .finish()
    }
}

/// Hands a result over, or re-raises its panic on the consumer's thread.
fn hand_over<R>(outcome: Caught<R>) -> R {
    match outcome {
        Ok(result) => result,
        Err(payload) => resume_unwind(payload),
    }
}

impl<I, R> Iterator for MapOrdered<I, R>
where
    I: Iterator,
    I::Item: Send,
    R: Send,
{
    type Item = R;

    fn next(&mut self) -> Option<R> {
        let engine = &mut self.engine;
        engine.top_up();
        loop {
            if let Some(Some(_)) = self.reorder.front() {
                let outcome = self
                    .reorder
                    .pop_front()
                    .flatten()
                    .expect("the front slot was just seen full");
                engine.yielded += 1;
                return Some(hand_over(outcome));
            }
            if engine.outstanding() == 0 {
                engine.end();
                return None;
            }
            let (index, outcome) = engine.receive();
            // `index` is taken and not yielded, so the slot is inside the window.
            let slot = index - engine.yielded;
            if self.reorder.len() <= slot {
                self.reorder.resize_with(slot + 1, || None);
            }
            self.reorder[slot] = Some(outcome);
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.engine.size_hint()
    }
}

impl<I, R> FusedIterator for MapOrdered<I, R>
where
    I: Iterator,
    I::Item: Send,
    R: Send,
{
}

impl<I, R> fmt::Debug for MapOrdered<I, R>
where
    I: Iterator,
    I::Item: Send,
    R: Send,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("MapOrdered").field(&self.engine).finish()
    }
}

impl<I, R> Iterator for MapUnordered<I, R>
where
    I: Iterator,
    I::Item: Send,
    R: Send,
{
    type Item = R;

    fn next(&mut self) -> Option<R> {
        let engine = &mut self.engine;
        engine.top_up();
        if engine.outstanding() == 0 {
            engine.end();
            return None;
        }
        let (_index, outcome) = engine.receive();
        engine.yielded += 1;
        Some(hand_over(outcome))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.engine.size_hint()
    }
}

impl<I, R> FusedIterator for MapUnordered<I, R>
where
    I: Iterator,
    I::Item: Send,
    R: Send,
{
}

impl<I, R> fmt::Debug for MapUnordered<I, R>
where
    I: Iterator,
    I::Item: Send,
    R: Send,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("MapUnordered").field(&self.engine).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_checked() {
        let zero_workers = map_ordered(0..1u8, MapConfig::default().workers(0), |n| n).err();
        assert_eq!(zero_workers, Some(MapError::ZeroWorkers));
        let too_wide =
            map_unordered(0..1u8, MapConfig::default().window(MAX_WINDOW + 1), |n| n).err();
        assert_eq!(
            too_wide,
            Some(MapError::WindowTooLarge {
                window: MAX_WINDOW + 1,
                max: MAX_WINDOW
            })
        );
        let too_many = map_ordered(
            0..1u8,
            MapConfig::default().workers(usize::MAX).window(1),
            |n| n,
        )
        .err();
        assert!(matches!(
            too_many,
            Some(MapError::Pool(BuildError::TooManyWorkers { .. }))
        ));
        // With no window set, the window derived from `workers` would be too
        // large too; the error names `workers`, the setting the user gave.
        let derived = map_unordered(
            0..1u8,
            MapConfig::default().workers(MAX_WINDOW / 4 + 1),
            |n| n,
        )
        .err();
        assert_eq!(
            derived,
            Some(MapError::Pool(BuildError::TooManyWorkers {
                workers: MAX_WINDOW / 4 + 1,
                max: MAX_WORKERS
            }))
        );
    }

    #[test]
    fn the_reorder_buffer_starts_empty() {
        let map = map_ordered(
            0..3u32,
            MapConfig::default().workers(1).window(MAX_WINDOW),
            |n| n + 1,
        )
        .expect("the largest window is valid");
        assert_eq!(map.reorder.capacity(), 0);
        assert_eq!(map.collect::<Vec<_>>(), [1, 2, 3]);
    }

    #[test]
    fn an_empty_input_ends_at_once_and_stays_ended() {
        let mut map = map_ordered(
            std::iter::empty::<u8>(),
            MapConfig::default().workers(1),
            |n| n,
        )
        .expect("valid settings");
        assert_eq!(map.size_hint(), (0, Some(0)));
        assert_eq!(map.next(), None);
        assert_eq!(map.next(), None);
    }

    #[test]
    fn size_hint_counts_outstanding_items() {
        let mut map = map_unordered(0..10u32, MapConfig::default().workers(2).window(4), |n| n)
            .expect("valid settings");
        assert_eq!(map.size_hint(), (10, Some(10)));
        map.next();
        assert_eq!(map.size_hint(), (9, Some(9)));
        assert_eq!(map.count(), 9);
    }
}
