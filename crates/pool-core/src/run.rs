//! The worker thread: find a job, run it, account for it, sleep when idle.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::PoisonError;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use crossbeam_deque::Worker as LocalQueue;
use crossbeam_utils::Backoff;

use crate::report::WorkerShard;
use crate::shared::{Job, Shared, Timings};
use crate::sleep::Parker;
use crate::{BatchWorker, BoxError, Ctx, PanicSite, PoolError, Worker, WorkerId};

/// How a worker thread turns jobs into outcomes. One implementation for per-item
/// workers and one for batch workers; the thread loop is shared.
pub(crate) trait Processor<T> {
    /// Processes a lone item and counts its outcome.
    fn one(&mut self, ctx: &Ctx, item: T, shared: &Shared<T>);
    /// Processes a batch, leaving `batch` empty, and counts every item's outcome.
    fn many(&mut self, ctx: &Ctx, batch: &mut Vec<T>, shared: &Shared<T>);
    /// The worker's `finish` hook.
    fn finish(&mut self, ctx: &Ctx) -> Result<(), BoxError>;
}

/// Records a failed or panicked call; returns whether the call succeeded.
#[inline]
fn succeeded<T, E: Into<BoxError>>(
    shared: &Shared<T>,
    ctx: &Ctx,
    outcome: std::thread::Result<Result<(), E>>,
) -> bool {
    match outcome {
        Ok(Ok(())) => true,
        Ok(Err(error)) => {
            let error = PoolError::Worker {
                worker: ctx.worker,
                source: error.into(),
            };
            shared.record_error(error, None, false);
            false
        }
        Err(payload) => {
            shared.record_panic(ctx.worker, PanicSite::Work, payload, false);
            false
        }
    }
}

/// Runs a per-item [`Worker`].
pub(crate) struct ItemProcessor<W>(pub(crate) W);

impl<W> ItemProcessor<W> {
    /// Calls the worker on one item; returns whether it succeeded.
    #[inline]
    fn call<T>(&mut self, ctx: &Ctx, item: T, shared: &Shared<T>) -> bool
    where
        W: Worker<T>,
    {
        succeeded(
            shared,
            ctx,
            catch_unwind(AssertUnwindSafe(|| self.0.work(ctx, item))),
        )
    }
}

impl<T, W: Worker<T>> Processor<T> for ItemProcessor<W> {
    #[inline]
    fn one(&mut self, ctx: &Ctx, item: T, shared: &Shared<T>) {
        let shard = &shared.shards[ctx.worker.0];
        if self.call(ctx, item, shared) {
            shard.processed.add(1);
        } else {
            shard.failed.add(1);
        }
    }

    fn many(&mut self, ctx: &Ctx, batch: &mut Vec<T>, shared: &Shared<T>) {
        let cancelled = shared.token.flag();
        let shard = &shared.shards[ctx.worker.0];
        let mut processed = 0;
        let mut failed = 0;
        let mut items = batch.drain(..);
        while let Some(item) = items.next() {
            if cancelled.load(Relaxed) {
                // The rest of the batch is dropped with `items`.
                shard.dropped.add(1 + items.len() as u64);
                break;
            }
            if self.call(ctx, item, shared) {
                processed += 1;
            } else {
                failed += 1;
            }
        }
        drop(items);
        shard.processed.add(processed);
        shard.failed.add(failed);
    }

    fn finish(&mut self, ctx: &Ctx) -> Result<(), BoxError> {
        self.0.finish(ctx).map_err(Into::into)
    }
}

/// Runs a [`BatchWorker`]; lone items go through a reused one-slot batch.
pub(crate) struct BatchProcessor<W, T> {
    pub(crate) worker: W,
    pub(crate) single: Vec<T>,
}

impl<T, W: BatchWorker<T>> Processor<T> for BatchProcessor<W, T> {
    fn one(&mut self, ctx: &Ctx, item: T, shared: &Shared<T>) {
        let mut single = std::mem::take(&mut self.single);
        single.push(item);
        self.many(ctx, &mut single, shared);
        self.single = single;
    }

    fn many(&mut self, ctx: &Ctx, batch: &mut Vec<T>, shared: &Shared<T>) {
        let shard = &shared.shards[ctx.worker.0];
        let n_items = batch.len() as u64;
        if shared.token.is_cancelled() {
            batch.clear();
            shard.dropped.add(n_items);
            return;
        }
        let outcome = catch_unwind(AssertUnwindSafe(|| self.worker.work_batch(ctx, batch)));
        batch.clear();
        if succeeded(shared, ctx, outcome) {
            shard.processed.add(n_items);
        } else {
            shard.failed.add(n_items);
        }
    }

    fn finish(&mut self, ctx: &Ctx) -> Result<(), BoxError> {
        self.worker.finish(ctx).map_err(Into::into)
    }
}

/// Busy and idle time, measured with clock reads only at busy/idle transitions.
struct Clock {
    since: Instant,
    busy: bool,
    timings: Timings,
}

impl Clock {
    #[inline]
    fn mark_busy(&mut self) {
        if !self.busy {
            let now = Instant::now();
            self.timings.idle += now - self.since;
            self.since = now;
            self.busy = true;
        }
    }

    fn mark_idle(&mut self) {
        if self.busy {
            let now = Instant::now();
            self.timings.busy += now - self.since;
            self.since = now;
            self.busy = false;
        }
    }
}

/// The body of worker thread `index`.
pub(crate) fn worker_main<T, P>(
    shared: Arc<Shared<T>>,
    index: usize,
    local: LocalQueue<Job<T>>,
    parker: Parker,
    make: impl FnOnce(&Ctx) -> P,
) where
    P: Processor<T>,
{
    let ctx = Ctx {
        worker: WorkerId(index),
        token: shared.token.clone(),
        shards: Arc::clone(&shared.shards),
    };
    let shard = &shared.shards[index];
    let init_started = Instant::now();
    // A maker that panics leaves this thread without a worker; the pool is
    // cancelled (see `Shared::guard`) and this thread only drops and counts.
    let mut processor = shared.guard(ctx.worker, PanicSite::Maker, || make(&ctx));
    let mut clock = Clock {
        since: Instant::now(),
        busy: false,
        timings: Timings {
            init: init_started.elapsed(),
            ..Timings::default()
        },
    };

    let release_every = shared.config.release_every;
    let mut unreleased = 0usize;
    loop {
        if let Some(job) = shared.find_job(index, &local) {
            clock.mark_busy();
            unreleased += run_job(&shared, &ctx, shard, processor.as_mut(), job);
            if unreleased >= release_every {
                shared.release(unreleased);
                unreleased = 0;
            }
            continue;
        }
        // Out of work: give capacity back first, so blocked producers can go on
        // and the exit condition can become true.
        if unreleased > 0 {
            shared.release(unreleased);
            unreleased = 0;
        }
        clock.mark_idle();
        if shared.is_done() {
            break;
        }
        shared.sleep.start_searching();
        let backoff = Backoff::new();
        let mut found = false;
        while !backoff.is_completed() {
            backoff.snooze();
            if shared.has_queued_work(index) || shared.is_done() {
                found = true;
                break;
            }
        }
        if found {
            shared.sleep.stop_searching();
        } else {
            shared.sleep.sleep(index, &parker, || {
                !local.is_empty() || shared.has_queued_work(index) || shared.is_done()
            });
        }
    }
    clock.mark_idle();
    clock.timings.idle += clock.since.elapsed();

    let wrap_started = Instant::now();
    if let Some(processor) = processor.as_mut()
        && let Some(Err(source)) =
            shared.guard(ctx.worker, PanicSite::Finish, || processor.finish(&ctx))
    {
        shared.record_error(
            PoolError::Finish {
                worker: ctx.worker,
                source,
            },
            None,
            false,
        );
    }
    // The worker's own `Drop` is user code too.
    shared.guard(ctx.worker, PanicSite::Finish, || drop(processor));
    if let Some(callback) = &shared.on_worker_done {
        let counts = shard.counts();
        shared.guard(ctx.worker, PanicSite::Callback, || {
            callback(ctx.worker, &counts)
        });
    }
    clock.timings.wrap_up = wrap_started.elapsed();
    shared
        .timings
        .lock()
        .unwrap_or_else(PoisonError::into_inner)[index] = clock.timings;
}

/// Runs one job and returns how many items it held.
#[inline]
fn run_job<T, P: Processor<T>>(
    shared: &Shared<T>,
    ctx: &Ctx,
    shard: &WorkerShard,
    processor: Option<&mut P>,
    job: Job<T>,
) -> usize {
    match job {
        Job::One(item) => {
            match processor {
                Some(processor) if !shared.token.flag().load(Relaxed) => {
                    processor.one(ctx, item, shared);
                }
                _ => {
                    drop(item);
                    shard.dropped.add(1);
                }
            }
            1
        }
        Job::Many(mut batch) => {
            let n_items = batch.len();
            match processor {
                Some(processor) => processor.many(ctx, &mut batch, shared),
                None => {
                    batch.clear();
                    shard.dropped.add(n_items as u64);
                }
            }
            // A full recycle queue just means enough spares exist; drop this one.
            let _ = shared.recycle.push(batch);
            n_items
        }
    }
}
