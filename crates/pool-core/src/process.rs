//! How a worker thread turns a job into outcomes: one [`Processor`] for
//! per-item workers and one for batch workers, each counting every item it
//! was handed as processed, failed or dropped (interrupted items among the
//! dropped), exactly once.
//!
//! Item keys (`Builder::item_key`) and the `on_dropped` hook live here too:
//! whether a pool has a key function is tested once per job, and the per-item
//! loop is compiled twice (`KEYED`), so a pool without keys runs the same
//! loop as before they existed; dropped items go to the hook where they are
//! dropped, in [`Bench::drop_items`].

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::Instant;

use crossbeam_deque::Worker as LocalQueue;
use pool_metrics::ShardWriter;

use crate::capacity::Capacity;
use crate::item::{DroppedHook, KeyFn};
use crate::ledger::Ledger;
use crate::pull::Pull;
use crate::queues::{Parcel, Queues};
use crate::{
    BatchWorker, BoxError, Ctx, Interrupted, ItemKey, PanicSite, PoolError, Worker, box_error,
};

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
    /// Whether room was reserved for the current batch's items (`None`:
    /// pushed or spawned), or not (`Some`: taken from this pull source): the
    /// part handed over keeps that, and stays outstanding in the source.
    pub(crate) pulled_from: Option<&'a Arc<dyn Pull<T>>>,
    /// The capacity gate, told when reserved items finish.
    pub(crate) capacity: &'a Capacity,
    /// This worker's running total of finished reserved items.
    pub(crate) finished: &'a mut u64,
    /// The pool's key function (`Builder::item_key`), if it has one.
    pub(crate) item_key: Option<&'a KeyFn<T>>,
    /// Where dropped items go (`Builder::on_dropped`).
    pub(crate) on_dropped: &'a DroppedHook<T>,
}

/// What became of one call of the worker (an item, or a batch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Done {
    Processed,
    Failed,
    /// Failed with [`Interrupted`] after the pool was cancelled: counted as
    /// dropped (and interrupted), not as failed; no error is recorded.
    Interrupted,
}

impl<T> Bench<'_, T> {
    /// `n` items of the current job are finished: their room may be given
    /// back from now on, by this worker or by a producer that needs it.
    /// Called before they are counted in the metrics, so anyone who sees
    /// them counted sees their room as returnable.
    #[inline]
    pub(crate) fn note_finished(&mut self, n: usize) {
        // Items taken from a pull source were never reserved.
        if self.pulled_from.is_none() {
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
    ///
    /// Also, when the worker's seat is to be empty (`Pool::set_workers`), the
    /// whole rest goes, so the worker leaves after the item in hand: one
    /// relaxed load of the roster per item (a line only a resize writes).
    /// A keyed worker is never told to leave while it runs a batch
    /// (`roster.rs`).
    #[inline]
    fn share_rest(&mut self, items: &mut std::vec::Drain<'_, T>) {
        if items.len() >= 2 && self.queues.siblings_wait_for_work(self.index, self.local) {
            self.hand_over(items, items.len() / 2);
        } else if items.len() > 0 && self.queues.roster().retires(self.index) {
            self.hand_over_all(items);
        }
    }

    /// The seat is to be empty: the rest of the batch goes to siblings.
    #[cold]
    #[inline(never)]
    fn hand_over_all(&mut self, items: &mut std::vec::Drain<'_, T>) {
        if !self.queues.is_keyed() {
            self.hand_over(items, items.len());
        }
    }

    #[cold]
    #[inline(never)]
    fn hand_over(&mut self, items: &mut std::vec::Drain<'_, T>, give: usize) {
        let mut rest = self.queues.take_spare().unwrap_or_default();
        rest.extend(items.by_ref().rev().take(give));
        rest.reverse();
        self.handed_over += rest.len();
        let parcel = match self.pulled_from {
            None => Parcel::Many(rest),
            Some(source) => {
                // Outstanding before it is pushed: `run` waits for it.
                source.parcel_pushed();
                Parcel::Pulled(rest, Arc::clone(source))
            }
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

    /// Records a failed or panicked call (with the key of its item, if the
    /// pool names items) and says what became of it.
    /// Per item: the success path is one match, inlined into the item loop;
    /// both failure paths are out of line and cold.
    #[inline(always)]
    fn outcome(
        &self,
        outcome: std::thread::Result<Option<BoxError>>,
        key: Option<ItemKey>,
    ) -> Done {
        match outcome {
            Ok(None) => Done::Processed,
            Ok(Some(error)) => self.failed(error, key),
            Err(payload) => self.panicked(payload, key),
        }
    }

    /// Records a call's panic.
    #[cold]
    #[inline(never)]
    fn panicked(&self, payload: Box<dyn std::any::Any + Send>, key: Option<ItemKey>) -> Done {
        self.ledger
            .record_item_panic(self.ctx.worker, PanicSite::Work, key, payload);
        Done::Failed
    }

    /// A call returned an error: an interruption if the pool is cancelled
    /// and the error says so ([`Interrupted::is_in`]), a recorded failure
    /// otherwise. The cancel flag is read after the worker's own check saw
    /// it set, on this thread, so this load sees it too.
    #[cold]
    #[inline(never)]
    fn failed(&self, error: BoxError, key: Option<ItemKey>) -> Done {
        if self.is_cancelled() && Interrupted::is_in(&*error) {
            crate::trace::work_interrupted(self.ctx.worker, key.as_ref());
            return Done::Interrupted;
        }
        self.ledger.record_error(PoolError::Worker {
            worker: self.ctx.worker,
            key,
            source: error,
        });
        Done::Failed
    }

    /// Drops items the pool owns and counts them as dropped (the caller
    /// adds the count to the shard): hands each to the `on_dropped`
    /// callback if the pool has one, else drops it ([`Bench::discard_items`]).
    /// Returns how many.
    #[inline]
    pub(crate) fn drop_items(&self, items: impl Iterator<Item = T>) -> u64 {
        if self.on_dropped.is_set() {
            return self.hand_back(items);
        }
        self.discard_items(items)
    }

    /// Hands dropped items to the `on_dropped` callback, one call per item,
    /// under the callback's lock (taken once for all of `items`). A panic in
    /// the callback is recorded (`PanicSite::Callback`) and the next item
    /// still goes to it.
    #[cold]
    #[inline(never)]
    fn hand_back(&self, items: impl Iterator<Item = T>) -> u64 {
        self.on_dropped.with(|mut callback| {
            let mut n_items = 0;
            for item in items {
                n_items += 1;
                let Some(callback) = callback.as_mut() else {
                    // Taken out: only after every worker left, so never here.
                    self.discard_items(std::iter::once(item));
                    continue;
                };
                if let Err(payload) = catch_unwind(AssertUnwindSafe(|| callback(item))) {
                    self.ledger
                        .record_panic(Some(self.ctx.worker), PanicSite::Callback, payload);
                }
            }
            n_items
        })
    }

    /// Drops items the pool owns, one at a time, each under `catch_unwind`,
    /// and returns how many; no callback sees them (what a batch worker left
    /// in its batch belongs to the batch's count, not to the dropped ones).
    /// A panicking `Drop` is recorded
    /// (`PanicSite::Drop`) and the rest are still dropped: a worker thread
    /// never dies of an item's `Drop` (which would leave its items uncounted
    /// and the pool waiting for them), and no `Drop` runs while another one's
    /// panic unwinds (which would abort). Types without drop glue skip the
    /// loop entirely.
    pub(crate) fn discard_items(&self, items: impl Iterator<Item = T>) -> u64 {
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

/// A call's result with its error boxed: what comes out of `catch_unwind`
/// is then one pointer-sized option, not the worker's own error type (a
/// middleware stack's error is several words, and moving it through the
/// unwinding guard costs on every item, also when there is no error). The
/// boxing is out of line and cold.
#[inline(always)]
fn boxed<E: Into<BoxError> + 'static>(result: Result<(), E>) -> Option<BoxError> {
    match result {
        Ok(()) => None,
        Err(error) => Some(box_cold(error)),
    }
}

/// [`box_error`], out of line.
#[cold]
#[inline(never)]
fn box_cold<E: Into<BoxError> + 'static>(error: E) -> BoxError {
    box_error(error)
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
    /// Calls the worker on one item and says what became of it. `KEYED`:
    /// the pool has a key function, which runs first (under the same
    /// `catch_unwind`: the worker consumes the item, so its key is taken
    /// before). Without keys this is the plain call.
    #[inline]
    fn call<T, const KEYED: bool>(&mut self, item: T, bench: &Bench<'_, T>) -> Done
    where
        W: Worker<T>,
    {
        if KEYED && let Some(key_fn) = bench.item_key {
            let mut key = None;
            let outcome = catch_unwind(AssertUnwindSafe(|| {
                key = Some(key_fn(&item));
                boxed(self.0.work(bench.ctx, item))
            }));
            return bench.outcome(outcome, key);
        }
        let outcome = catch_unwind(AssertUnwindSafe(|| boxed(self.0.work(bench.ctx, item))));
        bench.outcome(outcome, None)
    }

    /// [`Processor::one`], with or without keys.
    #[inline]
    fn one_item<T, const KEYED: bool>(&mut self, item: T, bench: &mut Bench<'_, T>)
    where
        W: Worker<T>,
    {
        let done = if bench.out.records_latency() {
            let started = Instant::now();
            let done = self.call::<T, KEYED>(item, bench);
            bench.out.record_latency(started.elapsed());
            done
        } else {
            self.call::<T, KEYED>(item, bench)
        };
        bench.note_finished(1);
        match done {
            Done::Processed => bench.out.add_processed(1),
            Done::Failed => bench.out.add_failed(1),
            Done::Interrupted => {
                bench.out.add_dropped(1);
                bench.ledger.count_interrupted(1);
            }
        }
    }

    /// [`Processor::many`], with or without keys.
    #[inline]
    fn many_items<T, const KEYED: bool>(&mut self, batch: &mut Vec<T>, bench: &mut Bench<'_, T>)
    where
        W: Worker<T>,
    {
        let mut processed = 0;
        let mut failed = 0;
        let mut dropped = 0;
        let mut interrupted = 0;
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
            match self.call::<T, KEYED>(item, bench) {
                Done::Processed => processed += 1,
                Done::Failed => failed += 1,
                Done::Interrupted => interrupted += 1,
            }
            if let Some(since) = started.as_mut() {
                let now = Instant::now();
                bench.out.record_latency(now - *since);
                *since = now;
            }
        }
        drop(items);
        bench.note_finished((processed + failed + dropped + interrupted) as usize);
        bench.out.add_processed(processed);
        bench.out.add_failed(failed);
        bench.out.add_dropped(dropped + interrupted);
        if interrupted > 0 {
            // After the shard's count: see `Ledger::snapshot`.
            bench.ledger.count_interrupted(interrupted);
        }
    }
}

impl<T, W: Worker<T>> Processor<T> for ItemProcessor<W> {
    #[inline]
    fn one(&mut self, item: T, bench: &mut Bench<'_, T>) {
        if bench.item_key.is_some() {
            self.one_item::<T, true>(item, bench);
        } else {
            self.one_item::<T, false>(item, bench);
        }
    }

    fn many(&mut self, batch: &mut Vec<T>, bench: &mut Bench<'_, T>) {
        // Once per batch: each loop is compiled for its case.
        if bench.item_key.is_some() {
            self.many_items::<T, true>(batch, bench);
        } else {
            self.many_items::<T, false>(batch, bench);
        }
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
        let key_fn = bench.item_key;
        // A failed batch is named by its first item (one key per batch).
        let mut key = None;
        let outcome = bench.timed(|| {
            catch_unwind(AssertUnwindSafe(|| {
                if let Some(key_fn) = key_fn {
                    key = batch.first().map(key_fn);
                }
                boxed(worker.work_batch(ctx, batch))
            }))
        });
        let done = bench.outcome(outcome, key);
        if done == Done::Interrupted {
            // What the worker left in the batch never ran: dropped, like the
            // items of a batch that was never started; the rest interrupted.
            let left = bench.drop_items(batch.drain(..));
            let interrupted = n_items.saturating_sub(left);
            bench.note_finished(n_items as usize);
            bench.out.add_dropped(n_items);
            if interrupted > 0 {
                // After the shard's count: see `Ledger::snapshot`.
                bench.ledger.count_interrupted(interrupted);
            }
            return;
        }
        // What the batch worker left in the batch is part of the batch's count.
        bench.discard_items(batch.drain(..));
        bench.note_finished(n_items as usize);
        if done == Done::Processed {
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
