//! The worker thread: find a job, run it, account for it, sleep when idle.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use crossbeam_deque::Worker as LocalQueue;
use crossbeam_utils::Backoff;

use pool_metrics::ShardWriter;

use crate::shared::{Job, Shared};
use crate::sleep::Parker;
use crate::trace;
use crate::{BatchWorker, BoxError, Ctx, MetricsMode, PanicSite, PoolError, Worker, WorkerId};

/// How a worker thread turns jobs into outcomes. One implementation for per-item
/// workers and one for batch workers; the thread loop is shared.
pub(crate) trait Processor<T> {
    /// Processes a lone item and counts its outcome.
    fn one(&mut self, ctx: &Ctx, item: T, shared: &Shared<T>, out: &mut ShardWriter);
    /// Processes a batch, leaving `batch` empty, and counts every item's outcome.
    fn many(&mut self, ctx: &Ctx, batch: &mut Vec<T>, shared: &Shared<T>, out: &mut ShardWriter);
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

/// Runs `call`, timing it into the latency histogram when latencies are on (two
/// clock reads per call; none otherwise).
#[inline]
fn timed<R>(out: &mut ShardWriter, call: impl FnOnce() -> R) -> R {
    if out.records_latency() {
        let started = Instant::now();
        let result = call();
        out.record_latency(started.elapsed());
        result
    } else {
        call()
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
        let outcome = catch_unwind(AssertUnwindSafe(|| self.0.work(ctx, item)));
        succeeded(shared, ctx, outcome)
    }
}

impl<T, W: Worker<T>> Processor<T> for ItemProcessor<W> {
    #[inline]
    fn one(&mut self, ctx: &Ctx, item: T, shared: &Shared<T>, out: &mut ShardWriter) {
        if timed(out, || self.call(ctx, item, shared)) {
            out.add_processed(1);
        } else {
            out.add_failed(1);
        }
    }

    fn many(&mut self, ctx: &Ctx, batch: &mut Vec<T>, shared: &Shared<T>, out: &mut ShardWriter) {
        let cancelled = shared.token.flag();
        let mut processed = 0;
        let mut failed = 0;
        let mut dropped = 0;
        // With latencies on, one clock read per item: each item's end is the
        // next one's start.
        let mut started = out.records_latency().then(Instant::now);
        let mut items = batch.drain(..);
        while let Some(item) = items.next() {
            if cancelled.load(Relaxed) {
                dropped = drop_items(shared, ctx, std::iter::once(item).chain(items.by_ref()));
                break;
            }
            if self.call(ctx, item, shared) {
                processed += 1;
            } else {
                failed += 1;
            }
            if let Some(since) = started.as_mut() {
                let now = Instant::now();
                out.record_latency(now - *since);
                *since = now;
            }
        }
        drop(items);
        out.add_processed(processed);
        out.add_failed(failed);
        out.add_dropped(dropped);
    }

    fn finish(&mut self, ctx: &Ctx) -> Result<(), BoxError> {
        self.0.finish(ctx).map_err(Into::into)
    }
}

/// Runs a [`BatchWorker`]; lone items go through a reused one-slot batch.
/// With latencies on, one sample per call (the whole batch's time).
pub(crate) struct BatchProcessor<W, T> {
    pub(crate) worker: W,
    pub(crate) single: Vec<T>,
}

impl<T, W: BatchWorker<T>> Processor<T> for BatchProcessor<W, T> {
    fn one(&mut self, ctx: &Ctx, item: T, shared: &Shared<T>, out: &mut ShardWriter) {
        let mut single = std::mem::take(&mut self.single);
        single.push(item);
        self.many(ctx, &mut single, shared, out);
        self.single = single;
    }

    fn many(&mut self, ctx: &Ctx, batch: &mut Vec<T>, shared: &Shared<T>, out: &mut ShardWriter) {
        let n_items = batch.len() as u64;
        if shared.token.is_cancelled() {
            drop_items(shared, ctx, batch.drain(..));
            out.add_dropped(n_items);
            return;
        }
        let outcome = timed(out, || {
            catch_unwind(AssertUnwindSafe(|| self.worker.work_batch(ctx, batch)))
        });
        // What the batch worker left in the batch is part of the batch's count.
        drop_items(shared, ctx, batch.drain(..));
        if succeeded(shared, ctx, outcome) {
            out.add_processed(n_items);
        } else {
            out.add_failed(n_items);
        }
    }

    fn finish(&mut self, ctx: &Ctx) -> Result<(), BoxError> {
        self.worker.finish(ctx).map_err(Into::into)
    }
}

/// Busy and idle time, published to the worker's shard. With timing on, the
/// clock is read at busy/idle transitions and when capacity is released (once
/// per `release_every` items, at least a batch); with `MetricsMode::Off`, never.
struct Clock {
    on: bool,
    since: Instant,
    busy: bool,
    /// Releases since latencies were last published.
    releases: u32,
}

/// Latencies are published every this many releases while busy (and always
/// when going idle): merging a histogram walks all its buckets, too much to do
/// every release.
const LATENCY_PUBLISH_RELEASES: u32 = 16;

impl Clock {
    #[inline]
    fn mark_busy(&mut self, out: &mut ShardWriter) {
        if self.on && !self.busy {
            let now = Instant::now();
            out.add_idle(now - self.since);
            self.since = now;
        }
        self.busy = true;
    }

    /// Publishes the busy time so far (a live snapshot sees it) and, now and
    /// then, the latencies.
    #[inline]
    fn publish(&mut self, out: &mut ShardWriter) {
        if self.on && self.busy {
            let now = Instant::now();
            out.add_busy(now - self.since);
            self.since = now;
        }
        self.releases += 1;
        if self.releases >= LATENCY_PUBLISH_RELEASES {
            self.releases = 0;
            out.publish_latency();
        }
    }

    fn mark_idle(&mut self, out: &mut ShardWriter) {
        if self.on && self.busy {
            let now = Instant::now();
            out.add_busy(now - self.since);
            self.since = now;
        }
        self.busy = false;
        self.releases = 0;
        out.publish_latency();
    }

    /// Adds the idle time up to now (the worker is leaving).
    fn finish_idle(&mut self, out: &mut ShardWriter) {
        if self.on && !self.busy {
            out.add_idle(self.since.elapsed());
        }
    }
}

/// The body of worker thread `index`.
pub(crate) fn worker_main<T, P>(
    shared: Arc<Shared<T>>,
    index: usize,
    local: LocalQueue<Job<T>>,
    parker: Parker,
    mut out: ShardWriter,
    make: impl FnOnce(&Ctx) -> P,
) where
    P: Processor<T>,
{
    // Entered for the thread's whole life, so the maker's, `finish`'s and the
    // callback's events fall in it too. Without the `tracing` feature this and
    // every other `trace` hook compile to nothing.
    let _worker_span = trace::worker_span(index);
    let ctx = Ctx::new(
        WorkerId(index),
        shared.token.clone(),
        Arc::clone(&shared.metrics),
    );
    let timing = shared.config.metrics_mode != MetricsMode::Off;
    let init_started = timing.then(Instant::now);
    // A maker that panics leaves this thread without a worker; the pool is
    // cancelled (see `Shared::guard`) and this thread only drops and counts.
    let mut processor = shared.guard(ctx.worker, PanicSite::Maker, || make(&ctx));
    if let Some(started) = init_started {
        out.set_init(started.elapsed());
    }
    let mut clock = Clock {
        on: timing,
        since: Instant::now(),
        busy: false,
        releases: 0,
    };

    let release_every = shared.config.release_every;
    let mut unreleased = 0usize;
    loop {
        if let Some(job) = shared.find_job(index, &local) {
            clock.mark_busy(&mut out);
            unreleased += run_job(&shared, &ctx, &mut out, processor.as_mut(), job);
            if unreleased >= release_every {
                shared.release(unreleased);
                unreleased = 0;
                clock.publish(&mut out);
            }
            continue;
        }
        // Out of work: give capacity back first, so blocked producers can go on
        // and the exit condition can become true.
        if unreleased > 0 {
            shared.release(unreleased);
            unreleased = 0;
        }
        shared.wake_producers_if_waiting();
        clock.mark_idle(&mut out);
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
    clock.finish_idle(&mut out);

    let wrap_started = timing.then(Instant::now);
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
    if let Some(callback) = shared.worker_done_callback() {
        let counts = ctx.counts();
        shared.guard(ctx.worker, PanicSite::Callback, || {
            callback(ctx.worker, &counts)
        });
    }
    if let Some(started) = wrap_started {
        out.set_wrap_up(started.elapsed());
    }
    out.flush_latency();
    trace::worker_finished(&ctx);
}

/// Drops items the pool owns, one at a time, each under `catch_unwind`, and
/// returns how many. A panicking `Drop` is recorded (`PanicSite::Drop`) and the
/// rest are still dropped: a worker thread never dies of an item's `Drop`
/// (which would leave its items uncounted and the pool waiting for them), and
/// no `Drop` runs while another one's panic unwinds (which would abort).
/// Types without drop glue skip the loop entirely.
fn drop_items<T>(shared: &Shared<T>, ctx: &Ctx, items: impl Iterator<Item = T>) -> u64 {
    if !std::mem::needs_drop::<T>() {
        return items.count() as u64;
    }
    let mut n_items = 0;
    for item in items {
        n_items += 1;
        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| drop(item))) {
            shared.record_panic(ctx.worker, PanicSite::Drop, payload, false);
        }
    }
    n_items
}

/// Runs one job and returns how many items it held.
#[inline]
fn run_job<T, P: Processor<T>>(
    shared: &Shared<T>,
    ctx: &Ctx,
    out: &mut ShardWriter,
    processor: Option<&mut P>,
    job: Job<T>,
) -> usize {
    match job {
        Job::One(item) => {
            match processor {
                Some(processor) if !shared.token.flag().load(Relaxed) => {
                    processor.one(ctx, item, shared, out);
                }
                _ => {
                    out.add_dropped(drop_items(shared, ctx, std::iter::once(item)));
                }
            }
            1
        }
        Job::Many(mut batch) => {
            let n_items = batch.len();
            // Once per batch, never per item: lone items (`Job::One`) get no
            // span, since that is where one would cost most per item.
            let _batch_span = trace::batch_span(ctx.worker.0, n_items);
            match processor {
                Some(processor) => processor.many(ctx, &mut batch, shared, out),
                None => {
                    out.add_dropped(drop_items(shared, ctx, batch.drain(..)));
                }
            }
            // A full recycle queue just means enough spares exist; drop this one.
            let _ = shared.recycle.push(batch);
            n_items
        }
    }
}
