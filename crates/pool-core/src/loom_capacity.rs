//! Exhaustive checks of close, cancel and the capacity counter, with real
//! `Capacity` and `Sleep` values. Run with `cargo xtask loom`.
//!
//! The pool is reduced to what these protocols touch: the queues become
//! one counter of pushed items (a push is a `SeqCst` write that a worker's
//! re-check reads, which is all the protocols rely on), a worker is the
//! loop of `WorkerThread::run` (`thread.rs`) without its bounded spin (the spin only
//! re-checks what the re-check after the announcement checks again), and a
//! producer is the unbatched submit path. A thread that waits forever
//! (a worker nobody wakes, a producer stuck at the gate) leaves the model
//! with every thread blocked, which loom reports as a deadlock.

use crate::capacity::{Capacity, Refusal, Wait};
use crate::sleep::{Parker, Sleep, unparker_of};
use crate::sync::{AtomicUsize, SeqCst, check_model};
use loom::sync::Arc;

/// The parts of a pool that close, cancel and capacity involve.
struct Model {
    capacity: Capacity,
    /// Items pushed and not yet taken by a worker.
    queued: AtomicUsize,
    /// Items workers took (processed, or dropped after a cancel).
    taken: AtomicUsize,
    sleep: Sleep,
}

impl Model {
    /// A model pool with `n_workers` workers; returns their parkers too.
    fn new(limit: usize, batch_size: usize, n_workers: usize) -> (Arc<Model>, Vec<Parker>) {
        let parkers: Vec<Parker> = (0..n_workers).map(|_| Parker::new()).collect();
        let model = Model {
            capacity: Capacity::new(limit, batch_size, n_workers.max(1)),
            queued: AtomicUsize::new(0),
            taken: AtomicUsize::new(0),
            sleep: Sleep::new(parkers.iter().map(unparker_of).collect()),
        };
        (Arc::new(model), parkers)
    }

    /// What a cancel does to a pool (`Shared::cancel`, called by the token):
    /// mark the gate cancelled and close it, then wake every worker.
    fn cancel(&self) {
        self.capacity.cancel();
        self.sleep.notify_all();
    }

    /// What `Shared::close` does: close the gate, then wake every worker.
    fn close(&self) {
        self.capacity.close();
        self.sleep.notify_all();
    }

    /// What `Shared::release` does: a release that drains a closed pool
    /// wakes every worker.
    fn release(&self, k: usize) {
        if self.capacity.release(k) {
            self.sleep.notify_all();
        }
    }

    /// What `Shared::give_back` does: a give-back that drains a closed pool
    /// wakes every worker.
    fn give_back(&self, worker: usize) {
        if self.capacity.give_back(worker).1 {
            self.sleep.notify_all();
        }
    }

    /// What `Shared::reserve` does: a refusal of a closed pool may have
    /// drained it (the reservation was backed out), so wake the workers then.
    fn reserve(&self, k: usize, wait: Wait) -> Result<(), Refusal> {
        let reserved = self.capacity.reserve(k, wait);
        if matches!(reserved, Err(Refusal::Closed | Refusal::Cancelled)) && self.capacity.is_done()
        {
            self.sleep.notify_all();
        }
        reserved
    }

    /// `Submitter::submit` at batch size 1 (also `Sender::send`).
    fn submit(&self, wait: Wait) -> Result<(), Refusal> {
        if let Some(refusal) = self.capacity.refuses_quickly() {
            return Err(refusal);
        }
        self.reserve(1, wait)?;
        self.queued.fetch_add(1, SeqCst);
        self.sleep.notify_one(0);
        Ok(())
    }

    /// Takes `n` items of room before the model's threads start, as if
    /// workers held them.
    fn preload(&self, n: usize) {
        for _ in 0..n {
            self.reserve(1, Wait::No)
                .expect("the model starts with room");
        }
    }
}

fn try_pop(queued: &AtomicUsize) -> bool {
    let mut current = queued.load(SeqCst);
    while current > 0 {
        match queued.compare_exchange(current, current - 1, SeqCst, SeqCst) {
            Ok(_) => return true,
            Err(actual) => current = actual,
        }
    }
    false
}

/// The worker loop of `WorkerThread::run` (`thread.rs`): take work; when there is none,
/// release what it finished, wake waiting producers, exit if done, else
/// park. `unreleased` is room for items it finished before the model
/// starts.
fn worker_loop(model: &Model, index: usize, parker: &Parker, mut unreleased: usize) {
    loop {
        if try_pop(&model.queued) {
            model.taken.fetch_add(1, SeqCst);
            unreleased += 1;
            continue;
        }
        if unreleased > 0 {
            model.release(unreleased);
            unreleased = 0;
        }
        model.capacity.wake_producers_if_waiting();
        if model.capacity.is_done() {
            return;
        }
        model.sleep.start_searching();
        model.sleep.sleep(index, parker, || {
            model.queued.load(SeqCst) > 0 || model.capacity.is_done()
        });
    }
}

/// Starts the workers; worker 0 holds `held` finished items (already
/// reserved with `Model::preload`).
fn spawn_workers(
    model: &Arc<Model>,
    parkers: Vec<Parker>,
    held: usize,
) -> Vec<loom::thread::JoinHandle<()>> {
    parkers
        .into_iter()
        .enumerate()
        .map(|(index, parker)| {
            let model = Arc::clone(model);
            let unreleased = if index == 0 { held } else { 0 };
            loom::thread::spawn(move || worker_loop(&model, index, &parker, unreleased))
        })
        .collect()
}

/// (a) Close while workers are parking: one worker still holds an item,
/// the other is idle. The close's wake-up may come before the idle
/// worker parks or while it parks with the item still in flight; then
/// only the release that drains the closed pool can wake it. No worker
/// may sleep through both.
#[test]
fn loom_close_while_workers_park() {
    check_model("close_while_workers_park", || {
        let (model, parkers) = Model::new(2, 1, 2);
        model.preload(1);
        let workers = spawn_workers(&model, parkers, 1);
        model.close();
        for worker in workers {
            worker.join().expect("worker thread");
        }
        assert_eq!(model.capacity.in_flight(), 0);
    });
}

/// (a) The one-counter argument: a submit racing the close is either
/// refused, or accepted and then processed before the last worker exits.
/// An accepted item pushed after the workers left would stay queued.
#[test]
fn loom_close_races_a_submit() {
    check_model("close_races_a_submit", || {
        let (model, parkers) = Model::new(2, 1, 1);
        let workers = spawn_workers(&model, parkers, 0);
        let producer = {
            let model = Arc::clone(&model);
            loom::thread::spawn(move || model.submit(Wait::No))
        };
        model.close();
        let accepted = producer.join().expect("producer thread");
        for worker in workers {
            worker.join().expect("worker thread");
        }
        match accepted {
            Ok(()) => assert_eq!(model.taken.load(SeqCst), 1),
            Err(refusal) => {
                assert_eq!(refusal, Refusal::Closed);
                assert_eq!(model.taken.load(SeqCst), 0);
            }
        }
        assert_eq!(model.queued.load(SeqCst), 0);
        assert_eq!(model.capacity.in_flight(), 0);
    });
}

/// (b) Cancel while a producer waits at capacity (the room is held by a
/// worker that never lets go, like a worker blocked in user code): the
/// producer returns `Cancelled`, whenever the cancel lands.
#[test]
fn loom_cancel_unblocks_a_producer_at_capacity() {
    check_model("cancel_unblocks_a_producer_at_capacity", || {
        let (model, _parkers) = Model::new(1, 1, 0);
        model.preload(1);
        let producer = {
            let model = Arc::clone(&model);
            loom::thread::spawn(move || model.submit(Wait::Forever))
        };
        model.cancel();
        let outcome = producer.join().expect("producer thread");
        assert_eq!(outcome, Err(Refusal::Cancelled));
        assert_eq!(model.capacity.in_flight(), 1);
    });
}

/// (b) Cancel while a producer waits at capacity and a worker finishes
/// the item that holds the room: the producer gets the room before the
/// cancel or is refused with `Cancelled`; the worker takes whatever was
/// pushed and exits; the counter returns to zero.
#[test]
fn loom_cancel_while_a_producer_waits_and_a_worker_drains() {
    check_model("cancel_while_a_producer_waits_and_a_worker_drains", || {
        let (model, parkers) = Model::new(1, 1, 1);
        model.preload(1);
        let workers = spawn_workers(&model, parkers, 1);
        let producer = {
            let model = Arc::clone(&model);
            loom::thread::spawn(move || model.submit(Wait::Forever))
        };
        model.cancel();
        let outcome = producer.join().expect("producer thread");
        for worker in workers {
            worker.join().expect("worker thread");
        }
        match outcome {
            Ok(()) => assert_eq!(model.taken.load(SeqCst), 1),
            Err(refusal) => {
                assert_eq!(refusal, Refusal::Cancelled);
                assert_eq!(model.taken.load(SeqCst), 0);
            }
        }
        assert_eq!(model.capacity.in_flight(), 0);
    });
}

/// (c) The counter under two producers and `n_releasers` workers that each
/// finish one held item, release it and go idle (which wakes waiting
/// producers), after which releases stop. The pool starts full. Every
/// reservation keeps `in_flight <= limit`, and both producers get room:
/// none waits forever while room exists.
fn two_producers(name: &'static str, limit: usize, n_releasers: usize) {
    check_model(name, move || {
        let (model, _parkers) = Model::new(limit, 1, 0);
        model.preload(limit);
        let releasers: Vec<_> = (0..n_releasers)
            .map(|_| {
                let model = Arc::clone(&model);
                loom::thread::spawn(move || {
                    model.release(1);
                    model.capacity.wake_producers_if_waiting();
                })
            })
            .collect();
        let producers: Vec<_> = (0..2)
            .map(|_| {
                let model = Arc::clone(&model);
                loom::thread::spawn(move || {
                    let outcome = model.reserve(1, Wait::Forever);
                    assert!(model.capacity.in_flight() <= limit, "over capacity");
                    outcome
                })
            })
            .collect();
        // With one releaser only one producer can get room; the other waits
        // until this thread, standing in for a later release, gives more.
        if n_releasers == 1 {
            model.release(1);
        }
        for releaser in releasers {
            releaser.join().expect("releaser thread");
        }
        for producer in producers {
            assert_eq!(producer.join().expect("producer thread"), Ok(()));
        }
        assert_eq!(model.capacity.in_flight(), limit);
    });
}

/// (c) Capacity 2, no lingering possible (the low-water mark is 1).
#[test]
fn loom_capacity_two_producers_two_releasers() {
    two_producers("capacity_two_producers_two_releasers", 2, 2);
}

/// (c) Capacity 2, one releaser and one later release from the main thread.
#[test]
fn loom_capacity_two_producers_one_releaser() {
    two_producers("capacity_two_producers_one_releaser", 2, 1);
}

/// (c) Capacity 4 (low-water mark 2): after one release a producer sees room
/// above the low-water mark and lingers; its timed wait may end at any
/// point, including after the other producer took that room.
#[test]
fn loom_capacity_lingering_producers() {
    two_producers("capacity_lingering_producers", 4, 1);
}

/// (d) Room comes back as items finish: a worker finished the item that
/// holds the only unit of room and is giving it back, while two producers
/// that may not wait ask for room and, finding none, take back what that
/// worker finished. Whoever moves the worker's watermark releases the unit,
/// exactly once: one producer at most gets room, the others are told `Full`,
/// and the count never goes over the limit nor below zero.
#[test]
fn loom_producers_take_back_finished_room_exactly_once() {
    check_model("producers_take_back_finished_room", || {
        let (model, _parkers) = Model::new(1, 1, 1);
        model.preload(1);
        let worker = {
            let model = Arc::clone(&model);
            loom::thread::spawn(move || {
                model.capacity.note_finished(0, 1);
                model.give_back(0);
            })
        };
        let other = {
            let model = Arc::clone(&model);
            loom::thread::spawn(move || model.reserve(1, Wait::No))
        };
        let outcomes = [
            model.reserve(1, Wait::No),
            other.join().expect("producer thread"),
        ];
        worker.join().expect("worker thread");
        let admitted = outcomes.iter().filter(|outcome| outcome.is_ok()).count();
        assert!(admitted <= 1, "one unit of room admitted {admitted} items");
        for outcome in outcomes {
            assert!(matches!(outcome, Ok(()) | Err(Refusal::Full)));
        }
        assert_eq!(model.capacity.in_flight(), admitted);
    });
}

/// (d) `Full` means full: a producer that saw an item counted as finished
/// gets its room from `try_*`, whether the worker that finished it has not
/// given it back yet, is in the middle of doing so, or is done.
#[test]
fn loom_a_producer_that_saw_an_item_finish_gets_its_room() {
    check_model("producer_that_saw_an_item_finish_gets_its_room", || {
        let (model, _parkers) = Model::new(1, 1, 1);
        model.preload(1);
        // Stands in for the item's count in the worker's metrics shard.
        let counted = Arc::new(loom::sync::atomic::AtomicBool::new(false));
        let worker = {
            let model = Arc::clone(&model);
            let counted = Arc::clone(&counted);
            loom::thread::spawn(move || {
                model.capacity.note_finished(0, 1);
                counted.store(true, loom::sync::atomic::Ordering::Release);
                model.give_back(0);
            })
        };
        while !counted.load(loom::sync::atomic::Ordering::Acquire) {
            loom::thread::yield_now();
        }
        assert_eq!(
            model.reserve(1, Wait::No),
            Ok(()),
            "the finished item's room"
        );
        worker.join().expect("worker thread");
        assert_eq!(model.capacity.in_flight(), 1);
    });
}
