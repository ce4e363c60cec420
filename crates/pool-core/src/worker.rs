//! The worker traits and their closure implementations.

use std::fmt;

use crate::{BoxError, Ctx};

/// The index of a worker thread, `0..workers`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WorkerId(pub(crate) usize);

impl WorkerId {
    /// The worker's index, `0..workers`.
    pub fn index(self) -> usize {
        self.0
    }
}

impl fmt::Display for WorkerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// Processes items one at a time.
///
/// Closures `FnMut(&Ctx, T) -> Result<(), E>` implement it, so most users never
/// name this trait. Implement it on your own type for a stateful worker that owns
/// a connection, a cache or a buffer and needs [`finish`](Worker::finish) to
/// flush or close it when the pool winds down.
///
/// ```
/// use pool_core::{Ctx, Pool, Worker, WorkerId};
/// use std::sync::{Arc, Mutex};
///
/// /// Buffers rows and writes them out in `finish`.
/// struct RowWriter { rows: Vec<u32>, sink: Arc<Mutex<Vec<u32>>> }
///
/// impl Worker<u32> for RowWriter {
///     type Error = std::io::Error;
///     fn work(&mut self, _ctx: &Ctx, row: u32) -> Result<(), std::io::Error> {
///         self.rows.push(row);
///         Ok(())
///     }
///     fn finish(&mut self, _ctx: &Ctx) -> Result<(), std::io::Error> {
///         self.sink.lock().expect("sink lock").append(&mut self.rows);
///         Ok(())
///     }
/// }
///
/// let sink = Arc::new(Mutex::new(Vec::new()));
/// let maker_sink = Arc::clone(&sink);
/// let pool = Pool::builder()
///     .workers(2)
///     .build_stateful(move |_ctx: &Ctx| RowWriter { rows: Vec::new(), sink: Arc::clone(&maker_sink) })?;
/// let mut submitter = pool.submitter();
/// for row in 0..100 {
///     submitter.submit(row)?;
/// }
/// drop(submitter);
/// let report = pool.wait()?;
/// assert_eq!(report.processed(), 100);
/// assert_eq!(sink.lock().unwrap().len(), 100);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait Worker<T> {
    /// The worker's error type; anything that converts into [`BoxError`]
    /// (the pool boxes it with [`box_error`](crate::box_error), which keeps
    /// an `anyhow::Error` searchable).
    type Error: Into<BoxError> + 'static;

    /// Processes one item. An error counts the item as failed and is handled by
    /// the pool's error policy.
    fn work(&mut self, ctx: &Ctx, item: T) -> Result<(), Self::Error>;

    /// Called once on the worker's own thread after its last item, before the
    /// thread exits. An error is reported as [`PoolError::Finish`](crate::PoolError::Finish).
    fn finish(&mut self, ctx: &Ctx) -> Result<(), Self::Error> {
        let _ = ctx;
        Ok(())
    }
}

impl<T, E, F> Worker<T> for F
where
    F: FnMut(&Ctx, T) -> Result<(), E>,
    E: Into<BoxError> + 'static,
{
    type Error = E;

    #[inline]
    fn work(&mut self, ctx: &Ctx, item: T) -> Result<(), E> {
        self(ctx, item)
    }
}

/// Processes a whole batch at once: the downstream batching that bulk inserts and
/// batched API calls need (one round trip per batch instead of per item).
///
/// The pool hands the worker a `&mut Vec<T>` holding the batch; whatever the
/// worker leaves in it is dropped afterwards. An `Ok` counts every item of the
/// batch as processed, an `Err` counts every item as failed (errors are per batch,
/// accounting is per item).
///
/// Closures `FnMut(&Ctx, &mut Vec<T>) -> Result<(), E>` implement it.
pub trait BatchWorker<T> {
    /// The worker's error type; anything that converts into [`BoxError`]
    /// (the pool boxes it with [`box_error`](crate::box_error), which keeps
    /// an `anyhow::Error` searchable).
    type Error: Into<BoxError> + 'static;

    /// Processes one batch.
    fn work_batch(&mut self, ctx: &Ctx, batch: &mut Vec<T>) -> Result<(), Self::Error>;

    /// Called once on the worker's own thread after its last batch.
    fn finish(&mut self, ctx: &Ctx) -> Result<(), Self::Error> {
        let _ = ctx;
        Ok(())
    }
}

impl<T, E, F> BatchWorker<T> for F
where
    F: FnMut(&Ctx, &mut Vec<T>) -> Result<(), E>,
    E: Into<BoxError> + 'static,
{
    type Error = E;

    #[inline]
    fn work_batch(&mut self, ctx: &Ctx, batch: &mut Vec<T>) -> Result<(), E> {
        self(ctx, batch)
    }
}
