//! How a worker thread turns a job into outcomes: one [`Processor`] for
//! per-item workers and one for batch workers, each counting every item it
//! was handed as processed, failed or dropped, exactly once.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::Instant;

use crossbeam_deque::Worker as LocalQueue;
use pool_metrics::ShardWriter;

use crate::capacity::Capacity;
use crate::ledger::Ledger;
use crate::queues::{Parcel, Queues};
use crate::{BatchWorker, BoxError, Ctx, PanicSite, PoolError, Worker, box_error};

/// What a processor works with besides the items: the worker's context, the
/// pool's books, the worker's own metrics writer, the cancel flag, and the
/// queues it may hand the rest of a batch to.
pub(crate) struct Bench<'a, T> {
    pub(crate) ctx: &'a Ctx,
    pub(crate) ledger: &'a Ledger,
    pub(crate) out: &'a mut ShardWriter,
    pub(crate) cancelled: &'a AtomicBool,
    pub(crate) queues: &'a Queues<T>,
    /// This worker's own deque, which idle siblings steal from.
    pub(crate) local: &'a LocalQueue<Parcel<T>>,
    pub(crate) index: usize,
    /// Items of the current batch handed to siblings (see `share_rest`).
    pub(crate) handed_over: usize,
    /// Whether room was reserved for the current batch's items (pushed), or
    /// not (taken from a pull source): the part handed over keeps that.
    pub(crate) room: Room,
    /// The capacity gate, told when reserved items finish.
    pub(crate) capacity: &'a Capacity,
    /// This worker's running total of finished reserved items.
    pub(crate) finished: &'a mut u64,
}

/// Whether room in the capacity gate was reserved for a batch's items.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Room {
    /// Pushed items: reserved by the producer, given back when they finish.
    Reserved,
    /// Items taken from a pull source: never reserved.
    Unreserved,
}

impl<T> Bench<'_, T> {
    /// `n` items of the current job are finished: their room may be given
    /// back from now on, by this worker or by a producer that needs it.
    /// Called before they are counted in the metrics, so anyone who sees
    /// them counted sees their room as returnable.
    #[inline]
    pub(crate) fn note_finished(&mut self, n: usize) {
        if self.room == Room::Reserved {
            *self.finished += n as u64;
            self.capacity.note_finished(self.index, *self.finished);
        }
    }

    /// **No item held hostage.** Called before each item of a batch runs: if
    /// a sibling sleeps and no other work is queued, hands the back half of
    /// what is left after it (`items`, at least two) to this worker's own
    /// deque, where the idle sibling steals it. So while others idle, a slow
    /// item delays at most the front half of what follows it, and that half
    /// shrinks by half again at each following item.
    /// Costs one load of the sleeper count per item while everyone is busy;
    /// keyed pools never split (a key's items stay on its worker, in order).
    #[inline]
    fn share_rest(&mut self, items: &mut std::vec::Drain<'_, T>) {
        if items.len() >= 2 && self.queues.siblings_wait_for_work(self.index, self.local) {
            self.hand_over(items);
        }
    }

    #[cold]
    #[inline(never)]
    fn hand_over(&mut self, items: &mut std::vec::Drain<'_, T>) {
        let give = items.len() / 2;
        let mut rest = self.queues.take_spare().unwrap_or_default();
        rest.extend(items.by_ref().rev().take(give));
        rest.reverse();
        self.handed_over += rest.len();
        let parcel = match self.room {
            Room::Reserved => Parcel::Many(rest),
            Room::Unreserved => Parcel::Pulled(rest),
        };
        self.queues.share(self.local, parcel, self.index);
    }

    /// Whether the pool was cancelled: the one way the worker thread reads
    /// it. A relaxed load of the token's flag, checked before each item; a
    /// cancel that this load misses is seen at the next item.
    #[inline]
    pub(crate) fn is_cancelled(&self) -> bool {
        self.cancelled.load(Relaxed)
    }

    /// Records a failed or panicked call; returns whether the call succeeded.
    #[inline]
    fn succeeded<E: Into<BoxError> + 'static>(
        &self,
        outcome: std::thread::Result<Result<(), E>>,
    ) -> bool {
        match outcome {
            Ok(Ok(())) => true,
            Ok(Err(error)) => {
                self.ledger.record_error(PoolError::Worker {
                    worker: self.ctx.worker,
                    source: box_error(error),
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
    pub(crate) fn drop_items(&self, items: impl Iterator<Item = T>) -> u64 {
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
    fn one(&mut self, item: T, bench: &mut Bench<'_, T>);
    /// Processes a batch, leaving `batch` empty, and counts every item's outcome.
    fn many(&mut self, batch: &mut Vec<T>, bench: &mut Bench<'_, T>);
    /// The worker's `finish` hook.
    fn finish(&mut self, ctx: &Ctx) -> Result<(), BoxError>;
}

/// Runs a per-item [`Worker`].
pub(crate) struct ItemProcessor<W>(pub(crate) W);

impl<W> ItemProcessor<W> {
    /// Calls the worker on one item; returns whether it succeeded.
    #[inline]
    fn call<T>(&mut self, item: T, bench: &Bench<'_, T>) -> bool
    where
        W: Worker<T>,
    {
        let outcome = catch_unwind(AssertUnwindSafe(|| self.0.work(bench.ctx, item)));
        bench.succeeded(outcome)
    }
}

impl<T, W: Worker<T>> Processor<T> for ItemProcessor<W> {
    #[inline]
    fn one(&mut self, item: T, bench: &mut Bench<'_, T>) {
        let succeeded = if bench.out.records_latency() {
            let started = Instant::now();
            let succeeded = self.call(item, bench);
            bench.out.record_latency(started.elapsed());
            succeeded
        } else {
            self.call(item, bench)
        };
        bench.note_finished(1);
        if succeeded {
            bench.out.add_processed(1);
        } else {
            bench.out.add_failed(1);
        }
    }

    fn many(&mut self, batch: &mut Vec<T>, bench: &mut Bench<'_, T>) {
        let mut processed = 0;
        let mut failed = 0;
        let mut dropped = 0;
        // With latencies on, one clock read per item: each item's end is the
        // next one's start.
        let mut started = bench.out.records_latency().then(Instant::now);
        let mut items = batch.drain(..);
        while let Some(item) = items.next() {
            // Before the item runs, which may take long: see `share_rest`.
            bench.share_rest(&mut items);
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
        bench.note_finished((processed + failed + dropped) as usize);
        bench.out.add_processed(processed);
        bench.out.add_failed(failed);
        bench.out.add_dropped(dropped);
    }

    fn finish(&mut self, ctx: &Ctx) -> Result<(), BoxError> {
        self.0.finish(ctx).map_err(box_error)
    }
}

/// Runs a [`BatchWorker`]; lone items go through a reused one-slot batch.
/// With latencies on, one sample per call (the whole batch's time).
pub(crate) struct BatchProcessor<W, T> {
    pub(crate) worker: W,
    pub(crate) single: Vec<T>,
}

impl<T, W: BatchWorker<T>> Processor<T> for BatchProcessor<W, T> {
    fn one(&mut self, item: T, bench: &mut Bench<'_, T>) {
        let mut single = std::mem::take(&mut self.single);
        single.push(item);
        self.many(&mut single, bench);
        self.single = single;
    }

    fn many(&mut self, batch: &mut Vec<T>, bench: &mut Bench<'_, T>) {
        let n_items = batch.len() as u64;
        if bench.is_cancelled() {
            let dropped = bench.drop_items(batch.drain(..));
            bench.note_finished(dropped as usize);
            bench.out.add_dropped(dropped);
            return;
        }
        let worker = &mut self.worker;
        let ctx = bench.ctx;
        let outcome =
            bench.timed(|| catch_unwind(AssertUnwindSafe(|| worker.work_batch(ctx, batch))));
        // What the batch worker left in the batch is part of the batch's count.
        bench.drop_items(batch.drain(..));
        bench.note_finished(n_items as usize);
        if bench.succeeded(outcome) {
            bench.out.add_processed(n_items);
        } else {
            bench.out.add_failed(n_items);
        }
    }

    fn finish(&mut self, ctx: &Ctx) -> Result<(), BoxError> {
        self.worker.finish(ctx).map_err(box_error)
    }
}

#[cfg(test)]
mod tests;
