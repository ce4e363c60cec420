//! How a worker thread turns a job into outcomes: one [`Processor`] for
//! per-item workers and one for batch workers, each counting every item it
//! was handed as processed, failed or dropped, exactly once.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::Instant;

use pool_metrics::ShardWriter;

use crate::ledger::Ledger;
use crate::{BatchWorker, BoxError, Ctx, PanicSite, PoolError, Worker};

/// What a processor works with besides the items: the worker's context, the
/// pool's books, the worker's own metrics writer and the cancel flag.
pub(crate) struct Bench<'a> {
    pub(crate) ctx: &'a Ctx,
    pub(crate) ledger: &'a Ledger,
    pub(crate) out: &'a mut ShardWriter,
    pub(crate) cancelled: &'a AtomicBool,
}

impl Bench<'_> {
    /// Whether the pool was cancelled: the one way the worker thread reads
    /// it. A relaxed load of the token's flag, checked before each item; a
    /// cancel that this load misses is seen at the next item.
    #[inline]
    pub(crate) fn is_cancelled(&self) -> bool {
        self.cancelled.load(Relaxed)
    }

    /// Records a failed or panicked call; returns whether the call succeeded.
    #[inline]
    fn succeeded<E: Into<BoxError>>(&self, outcome: std::thread::Result<Result<(), E>>) -> bool {
        match outcome {
            Ok(Ok(())) => true,
            Ok(Err(error)) => {
                self.ledger.record_error(PoolError::Worker {
                    worker: self.ctx.worker,
                    source: error.into(),
                });
                false
            }
            Err(payload) => {
                self.ledger
                    .record_panic(Some(self.ctx.worker), PanicSite::Work, payload);
                false
            }
        }
    }

    /// Drops items the pool owns, one at a time, each under `catch_unwind`,
    /// and returns how many. A panicking `Drop` is recorded
    /// (`PanicSite::Drop`) and the rest are still dropped: a worker thread
    /// never dies of an item's `Drop` (which would leave its items uncounted
    /// and the pool waiting for them), and no `Drop` runs while another one's
    /// panic unwinds (which would abort). Types without drop glue skip the
    /// loop entirely.
    pub(crate) fn drop_items<T>(&self, items: impl Iterator<Item = T>) -> u64 {
        if !std::mem::needs_drop::<T>() {
            return items.count() as u64;
        }
        let mut n_items = 0;
        for item in items {
            n_items += 1;
            if let Err(payload) = catch_unwind(AssertUnwindSafe(|| drop(item))) {
                self.ledger
                    .record_panic(Some(self.ctx.worker), PanicSite::Drop, payload);
            }
        }
        n_items
    }

    /// Runs `call`, timing it into the latency histogram when latencies are
    /// on (two clock reads per call; none otherwise).
    #[inline]
    fn timed<R>(&mut self, call: impl FnOnce() -> R) -> R {
        if self.out.records_latency() {
            let started = Instant::now();
            let result = call();
            self.out.record_latency(started.elapsed());
            result
        } else {
            call()
        }
    }
}

/// How a worker thread turns jobs into outcomes.
pub(crate) trait Processor<T> {
    /// Processes a lone item and counts its outcome.
    fn one(&mut self, item: T, bench: &mut Bench<'_>);
    /// Processes a batch, leaving `batch` empty, and counts every item's outcome.
    fn many(&mut self, batch: &mut Vec<T>, bench: &mut Bench<'_>);
    /// The worker's `finish` hook.
    fn finish(&mut self, ctx: &Ctx) -> Result<(), BoxError>;
}

/// Runs a per-item [`Worker`].
pub(crate) struct ItemProcessor<W>(pub(crate) W);

impl<W> ItemProcessor<W> {
    /// Calls the worker on one item; returns whether it succeeded.
    #[inline]
    fn call<T>(&mut self, item: T, bench: &Bench<'_>) -> bool
    where
        W: Worker<T>,
    {
        let outcome = catch_unwind(AssertUnwindSafe(|| self.0.work(bench.ctx, item)));
        bench.succeeded(outcome)
    }
}

impl<T, W: Worker<T>> Processor<T> for ItemProcessor<W> {
    #[inline]
    fn one(&mut self, item: T, bench: &mut Bench<'_>) {
        let succeeded = if bench.out.records_latency() {
            let started = Instant::now();
            let succeeded = self.call(item, bench);
            bench.out.record_latency(started.elapsed());
            succeeded
        } else {
            self.call(item, bench)
        };
        if succeeded {
            bench.out.add_processed(1);
        } else {
            bench.out.add_failed(1);
        }
    }

    fn many(&mut self, batch: &mut Vec<T>, bench: &mut Bench<'_>) {
        let mut processed = 0;
        let mut failed = 0;
        let mut dropped = 0;
        // With latencies on, one clock read per item: each item's end is the
        // next one's start.
        let mut started = bench.out.records_latency().then(Instant::now);
        let mut items = batch.drain(..);
        while let Some(item) = items.next() {
            if bench.is_cancelled() {
                dropped = bench.drop_items(std::iter::once(item).chain(items.by_ref()));
                break;
            }
            if self.call(item, bench) {
                processed += 1;
            } else {
                failed += 1;
            }
            if let Some(since) = started.as_mut() {
                let now = Instant::now();
                bench.out.record_latency(now - *since);
                *since = now;
            }
        }
        drop(items);
        bench.out.add_processed(processed);
        bench.out.add_failed(failed);
        bench.out.add_dropped(dropped);
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
    fn one(&mut self, item: T, bench: &mut Bench<'_>) {
        let mut single = std::mem::take(&mut self.single);
        single.push(item);
        self.many(&mut single, bench);
        self.single = single;
    }

    fn many(&mut self, batch: &mut Vec<T>, bench: &mut Bench<'_>) {
        let n_items = batch.len() as u64;
        if bench.is_cancelled() {
            let dropped = bench.drop_items(batch.drain(..));
            bench.out.add_dropped(dropped);
            return;
        }
        let worker = &mut self.worker;
        let ctx = bench.ctx;
        let outcome =
            bench.timed(|| catch_unwind(AssertUnwindSafe(|| worker.work_batch(ctx, batch))));
        // What the batch worker left in the batch is part of the batch's count.
        bench.drop_items(batch.drain(..));
        if bench.succeeded(outcome) {
            bench.out.add_processed(n_items);
        } else {
            bench.out.add_failed(n_items);
        }
    }

    fn finish(&mut self, ctx: &Ctx) -> Result<(), BoxError> {
        self.worker.finish(ctx).map_err(Into::into)
    }
}
