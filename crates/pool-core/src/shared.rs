//! What every thread of one pool shares, as four parts that each own their
//! invariants — [`Queues`] (with the sleep slots), [`Capacity`], the
//! [`Ledger`] and the cancellation token — and the few transitions that
//! involve more than one part: close, cancel, reserve and release.
//!
//! The parts do not call each other. When a transition of one part requires
//! an action of another (a release that drains a closed pool must wake the
//! workers), the part says so in its return value and the method here acts.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::CancelToken;
use crate::cancel::OnCancel;
use crate::capacity::{Capacity, Refusal, Wait};
use crate::item::{DroppedHook, KeyFn};
use crate::ledger::Ledger;
use crate::progress::Progress;
use crate::queues::{Parcel, Queues, Target};
use crate::roster::Route;
use crate::signal::Exits;
use crate::thread::WorkerDoneHook;
use crate::{MetricsMode, PanicSite, WorkerId};

/// Settings fixed at build time.
pub(crate) struct Config {
    /// Workers at the start (`Pool::workers` says how many now).
    pub(crate) n_workers: usize,
    /// Seats: the most workers `Pool::set_workers` may ask for.
    pub(crate) max_workers: usize,
    pub(crate) batch_size: usize,
    pub(crate) capacity: usize,
    /// A worker gives room back after this many finished items (and always
    /// before it goes idle).
    pub(crate) release_every: usize,
    pub(crate) stop_on_error: bool,
    pub(crate) error_limit: usize,
    pub(crate) metrics_mode: MetricsMode,
}

/// The state all threads of one pool share.
pub(crate) struct Shared<T> {
    pub(crate) config: Config,
    pub(crate) queues: Queues<T>,
    pub(crate) capacity: Capacity,
    pub(crate) ledger: Ledger,
    pub(crate) token: CancelToken,
    /// The `on_worker_done` callback, run by each worker thread at its end.
    pub(crate) worker_done: WorkerDoneHook,
    /// `Builder::item_key`: names a failed item in its error.
    pub(crate) item_key: Option<KeyFn<T>>,
    /// `Builder::on_dropped`: where dropped items go, one by one.
    pub(crate) on_dropped: DroppedHook<T>,
    /// The workers still running, counted down as each thread ends (for
    /// `Pool::join_async` and `Pool::join_until`).
    pub(crate) exits: Exits,
    /// Where threads wait for the pool to change (`Pool::wait_for_change`,
    /// `Pool::join_until`): told after each job, when a worker goes idle or
    /// leaves, and on close and cancel.
    pub(crate) progress: Progress,
}

impl<T> Shared<T> {
    /// Reserves room for `k` items, waiting as `wait` allows. A refusal of a
    /// closed pool may have backed out a reservation that was the last item
    /// in flight; then the workers are woken so they can exit.
    ///
    /// A caller that would wait for room it cannot get goes over the limit
    /// instead (see [`Shared::leeway`]).
    #[inline]
    pub(crate) fn reserve(&self, k: usize, wait: Wait) -> Result<(), Refusal> {
        let reserved = self.capacity.reserve_with(k, wait, || self.leeway());
        if let Err(Refusal::Closed | Refusal::Cancelled) = reserved {
            self.wake_workers_if_done();
        }
        reserved
    }

    /// How far the calling thread may go over the capacity rather than wait
    /// for room (capacity.rs, "Going over the limit instead of waiting"):
    /// without limit on one of this pool's own workers, which would otherwise
    /// wait for itself; by the room its own submitters hold in partly filled
    /// batches on any other thread. Asked only when the pool is full and the
    /// caller is about to wait, so the path with room never looks.
    #[cold]
    fn leeway(&self) -> usize {
        if crate::thread::is_worker_of(self) {
            usize::MAX
        } else {
            crate::held::held_by_this_thread(self)
        }
    }

    /// Gives back room for `k` finished (or unused) items; wakes the workers
    /// when that drained a closed pool.
    #[inline]
    pub(crate) fn release(&self, k: usize) {
        if self.capacity.release(k) {
            self.queues.wake_all();
        }
    }

    /// Gives back the room of the items worker `index` finished (see
    /// `Capacity::give_back`); wakes the workers when that drained a closed
    /// pool.
    #[inline]
    pub(crate) fn give_back(&self, index: usize) {
        if self.capacity.give_back(index).1 {
            self.queues.wake_all();
        }
    }

    /// Publishes a parcel to `target`: to any worker, or to the route's
    /// worker once the resize barrier lets it in (`roster.rs`, step 2),
    /// routed again with the key's hash if the worker count changed since.
    /// Keyed batches take [`Shared::push_batch`] instead.
    #[inline]
    pub(crate) fn push(&self, parcel: Parcel<T>, target: Target) {
        match target {
            Target::Any(hint) => self.queues.push_any(parcel, hint),
            Target::Worker(mut route) => loop {
                match self.queues.enter(route.index, route.generation, || {
                    crate::thread::is_worker_of(self)
                }) {
                    Ok(()) => return self.queues.push_entered(parcel, route.index),
                    Err(word) => route = Route::of(route.hash, self.held_back(word)),
                }
            },
        }
    }

    /// Publishes a keyed batch its items were routed to seat `index` with
    /// `generation` (a `Submitter`'s open batch), `count`ing it just before
    /// the push; or, if the worker count changed since, hands it back with
    /// the word to route its items with again.
    #[inline]
    pub(crate) fn push_batch(
        &self,
        batch: Vec<T>,
        index: usize,
        generation: u64,
        count: impl FnOnce(usize),
    ) -> Result<(), (Vec<T>, u64)> {
        match self
            .queues
            .enter(index, generation, || crate::thread::is_worker_of(self))
        {
            Ok(()) => {
                count(batch.len());
                self.queues.push_entered(Parcel::Many(batch), index);
                Ok(())
            }
            Err(word) => Err((batch, self.held_back(word))),
        }
    }

    /// A push met a resize under way or a newer worker count: tells a
    /// resizer waiting for the drain (the push took its announcement back),
    /// waits for the switch if one is under way, and returns the word to
    /// route with again. One of the pool's own workers never waits (the
    /// drain may wait for it): it routes with the current word, whose
    /// generation the barrier admits from a worker.
    #[cold]
    fn held_back(&self, word: u64) -> u64 {
        self.progress.changed();
        if crate::thread::is_worker_of(self) {
            return self.queues.roster().word_now();
        }
        self.queues.roster().wait_for_switch(word)
    }

    /// Makes `n_workers` the active count (`roster.rs`): in a keyed pool
    /// after the barrier, once nothing routed with the old count is queued
    /// or running. Only `Pool::set_workers` calls it, one at a time.
    pub(crate) fn switch_workers(&self, n_workers: usize) {
        let roster = self.queues.roster();
        if self.queues.is_keyed() {
            roster.begin_resize();
            self.progress.wait_until(None, || self.queues.drained());
        }
        roster.switch(n_workers);
    }

    #[cold]
    fn wake_workers_if_done(&self) {
        if self.capacity.is_done() {
            self.queues.wake_all();
        }
    }

    /// Stops accepting input and wakes everyone so they can drain and exit.
    pub(crate) fn close(&self) {
        let was_open = self.capacity.close();
        self.queues.wake_all();
        self.progress.changed();
        if was_open {
            crate::trace::pool_closed(self.ledger.submitted());
        }
    }

    /// Runs user code; a panic becomes a recorded error (and, under
    /// stop-on-error, a cancel). `None` if it panicked.
    pub(crate) fn guard<R>(
        &self,
        worker: WorkerId,
        site: PanicSite,
        body: impl FnOnce() -> R,
    ) -> Option<R> {
        catch_unwind(AssertUnwindSafe(body))
            .map_err(|payload| self.ledger.record_panic(Some(worker), site, payload))
            .ok()
    }

    /// Runs a maker; a panic leaves its thread without a worker, so it is
    /// recorded and cancels the pool whatever the error policy.
    pub(crate) fn guard_maker<R>(&self, worker: WorkerId, body: impl FnOnce() -> R) -> Option<R> {
        catch_unwind(AssertUnwindSafe(body))
            .map_err(|payload: Box<dyn Any + Send>| {
                self.ledger
                    .record_panic_and_cancel(Some(worker), PanicSite::Maker, payload)
            })
            .ok()
    }
}

impl<T: Send> crate::scope::Watched for Shared<T> {
    fn token(&self) -> &CancelToken {
        &self.token
    }

    fn close(&self) {
        Shared::close(self);
    }
}

impl<T: Send> OnCancel for Shared<T> {
    /// Called by the pool's token, once, when it is cancelled: from then on
    /// the gate refuses with `Cancelled`, and the workers drop what is queued.
    fn on_cancel(&self) {
        // A scoped pool may hear its cancel twice: from `Pool::cancel` and
        // from its scope's watcher (`scope.rs`).
        if self.capacity.is_cancelled() {
            return;
        }
        crate::trace::pool_cancelled(self.ledger.submitted(), self.capacity.in_flight());
        let was_open = self.capacity.cancel();
        self.queues.wake_all();
        self.progress.changed();
        if was_open {
            crate::trace::pool_closed(self.ledger.submitted());
        }
    }
}
