//! Exhaustive checks of the completion condition with spawned items
//! (`Ctx::spawn`), with real `Capacity` and `Sleep` values. Run with
//! `cargo xtask loom`.
//!
//! A pool is done when no item is queued, running, or able to spawn more;
//! its workers leave on `closed && in_flight == 0` (capacity.rs, "Spawned
//! items"). The models race the close against a tree being worked through:
//! a root that spawns `fan_out` leaves, on two workers, unkeyed (any worker
//! takes any item) or keyed (the root is worker 0's, its leaves worker 1's:
//! only that worker may take them). A worker that left while a leaf was
//! queued for it, or before a running root spawned its leaves, would strand
//! them (the assertions fail); one that slept through the last release
//! would hang (loom reports a deadlock). The keyed models are the sharp
//! ones: unkeyed, the worker that spawns a leaf could always take it
//! itself. Releasing the root's room before it spawns (as if an item gave
//! its room back before it returned) makes them fail.
//!
//! As in `loom_capacity.rs`, the queues are counters (a push is a `SeqCst`
//! write the worker's re-check reads), a worker is the loop of
//! `WorkerThread::run` without its bounded spin, and it gives room back
//! (finished items' and its unused spawn credits) when it goes idle. A
//! spawn is what `Spawner::spawn` does: take a unit with
//! `Capacity::take_for_spawn` (no limit, no look at `closed`; a block of two
//! under loom, so a leaf may use a credit its sibling's spawn took, and a
//! credit may be left to give back), push, wake.

use crate::capacity::{Capacity, Wait};
use crate::sleep::{Parker, Sleep, unparker_of};
use crate::sync::{AtomicUsize, SeqCst, check_model};
use loom::sync::Arc;

/// A pool working through one tree.
struct Tree {
    capacity: Capacity,
    /// Roots queued: each spawns `fan_out` leaves when it runs.
    roots: AtomicUsize,
    /// Leaves queued: one queue all take from (unkeyed), or one inbox per
    /// worker (keyed).
    leaves: [AtomicUsize; 2],
    keyed: bool,
    /// Items run, roots and leaves.
    processed: AtomicUsize,
    fan_out: usize,
    sleep: Sleep,
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

impl Tree {
    fn new(fan_out: usize, keyed: bool) -> (Arc<Tree>, Vec<Parker>) {
        let parkers: Vec<Parker> = (0..2).map(|_| Parker::new()).collect();
        let tree = Tree {
            capacity: Capacity::new(1, 1, 2),
            roots: AtomicUsize::new(0),
            leaves: [AtomicUsize::new(0), AtomicUsize::new(0)],
            keyed,
            processed: AtomicUsize::new(0),
            fan_out,
            sleep: Sleep::new(parkers.iter().map(unparker_of).collect()),
        };
        (Arc::new(tree), parkers)
    }

    /// The leaves worker `index` may take.
    fn leaves_of(&self, index: usize) -> &AtomicUsize {
        &self.leaves[if self.keyed { index } else { 0 }]
    }

    /// Whether worker `index` has something to take (keyed: roots are
    /// worker 0's).
    fn has_work(&self, index: usize) -> bool {
        let roots = !self.keyed || index == 0;
        (roots && self.roots.load(SeqCst) > 0) || self.leaves_of(index).load(SeqCst) > 0
    }

    /// Whether anything is queued at all.
    fn anything_queued(&self) -> bool {
        self.has_work(0) || self.has_work(1)
    }

    /// `Spawner::spawn` by worker `index`: room without waiting (over the
    /// capacity of one; from the worker's credits, two at a time under
    /// loom), then the push and the wake-up (keyed: into the other worker's
    /// inbox, and that worker's wake-up).
    fn spawn_leaf(&self, index: usize) {
        self.capacity.take_for_spawn(index);
        if self.keyed {
            let target = (index + 1) % 2;
            self.leaves[target].fetch_add(1, SeqCst);
            self.sleep.notify_worker(target);
        } else {
            self.leaves[0].fetch_add(1, SeqCst);
            self.sleep.notify_one(index + 1);
        }
    }

    /// What a producer does with the root (`Sender::send`): reserve its
    /// room, push, wake.
    fn submit_root(&self) {
        self.capacity
            .reserve(1, Wait::No)
            .expect("an open, empty pool has room");
        self.roots.fetch_add(1, SeqCst);
        if self.keyed {
            self.sleep.notify_worker(0);
        } else {
            self.sleep.notify_one(0);
        }
    }

    /// Runs a root: spawns its leaves.
    fn run_root(&self, index: usize) {
        for _ in 0..self.fan_out {
            self.spawn_leaf(index);
        }
        self.processed.fetch_add(1, SeqCst);
    }

    /// `Shared::close`.
    fn close(&self) {
        self.capacity.close();
        self.sleep.notify_all();
    }

    /// `WorkerThread::run` and `idle`: take a job (a root spawns its leaves
    /// while it runs), give the room of finished items back when out of
    /// work, leave when done, else park. With `pulled_root`, the worker
    /// starts with a root in hand that holds no room, as a chunk pulled by
    /// `Pool::run` is (the source's parcel, which held the room, may be
    /// retired by then).
    fn worker_loop(&self, index: usize, parker: &Parker, pulled_root: bool) {
        if pulled_root {
            self.run_root(index);
        }
        let mut unreleased = 0;
        loop {
            if (!self.keyed || index == 0) && try_pop(&self.roots) {
                self.run_root(index);
                unreleased += 1;
                continue;
            }
            if try_pop(self.leaves_of(index)) {
                self.processed.fetch_add(1, SeqCst);
                unreleased += 1;
                continue;
            }
            if unreleased > 0 {
                if self.capacity.release(unreleased) {
                    self.sleep.notify_all();
                }
                unreleased = 0;
            }
            if self.capacity.return_spawn_credits(index) {
                self.sleep.notify_all();
            }
            self.capacity.wake_producers_if_waiting();
            if self.capacity.is_done() {
                return;
            }
            self.sleep.start_searching();
            self.sleep.sleep(index, parker, || {
                self.has_work(index) || self.capacity.is_done()
            });
        }
    }
}

/// Starts a root and closes the pool at once, while two workers take the
/// root and its leaves: every item runs before the last worker leaves. The
/// root is submitted (it holds room) or, with `pulled`, in worker 0's hands
/// from the start without room.
fn close_races_a_tree(name: &'static str, fan_out: usize, keyed: bool, pulled: bool) {
    check_model(name, move || {
        let (tree, parkers) = Tree::new(fan_out, keyed);
        let workers: Vec<_> = parkers
            .into_iter()
            .enumerate()
            .map(|(index, parker)| {
                let tree = Arc::clone(&tree);
                let pulled_root = pulled && index == 0;
                loom::thread::spawn(move || tree.worker_loop(index, &parker, pulled_root))
            })
            .collect();
        if !pulled {
            tree.submit_root();
        }
        tree.close();
        for worker in workers {
            worker.join().expect("worker thread");
        }
        assert_eq!(tree.processed.load(SeqCst), 1 + fan_out, "an item stranded");
        assert!(!tree.anything_queued());
        assert_eq!(tree.capacity.in_flight(), 0);
    });
}

/// A root that holds room spawns one leaf, over the capacity of one, while
/// the pool closes; any worker takes any item.
#[test]
fn loom_tree_completes_after_the_close() {
    close_races_a_tree("tree_completes_after_the_close", 1, false, false);
}

/// Keyed: the leaf goes to the other worker's inbox, which only that worker
/// takes from; it must not have left.
#[test]
fn loom_keyed_tree_completes_after_the_close() {
    close_races_a_tree("keyed_tree_completes_after_the_close", 1, true, false);
}

/// Keyed, two leaves: the other worker may run the first leaf, give its
/// room back and look at the exit condition while the second is spawned.
#[test]
fn loom_keyed_tree_of_two_leaves_completes_after_the_close() {
    close_races_a_tree(
        "keyed_tree_of_two_leaves_completes_after_the_close",
        2,
        true,
        false,
    );
}

/// A root that holds no room (pulled by `Pool::run`, in unkeyed pools
/// only): `in_flight` may be 0 with the pool closed while it runs, so the
/// sibling may leave; the worker that runs it takes the leaf it spawned
/// before it looks at the exit condition.
#[test]
fn loom_tree_from_a_root_without_room_completes() {
    close_races_a_tree("tree_from_a_root_without_room_completes", 1, false, true);
}

/// A worker's spawn credits and a producer's `reclaim` race: the worker
/// spawns twice (the first spawn takes a block of two units, the second may
/// use the credit left), while a producer that may not wait asks for room,
/// and, finding the pool full, takes back every worker's credits. Each unit
/// is used by a spawn or given back, once: when the worker has returned
/// what is left, the count is the root, its two leaves and the producer's
/// item if it got room (only before the spawns: after them the pool is
/// over its two units).
#[test]
fn loom_spawn_credits_are_used_or_given_back_once() {
    check_model("spawn_credits_are_used_or_given_back_once", || {
        let capacity = Arc::new(Capacity::new(2, 1, 1));
        capacity
            .reserve(1, Wait::No)
            .expect("an empty pool has room for the root");
        let worker = {
            let capacity = Arc::clone(&capacity);
            loom::thread::spawn(move || {
                capacity.take_for_spawn(0);
                capacity.take_for_spawn(0);
            })
        };
        let producer = {
            let capacity = Arc::clone(&capacity);
            loom::thread::spawn(move || capacity.reserve(1, Wait::No))
        };
        worker.join().expect("worker thread");
        let outcome = producer.join().expect("producer thread");
        let _drained = capacity.return_spawn_credits(0);
        let admitted = match outcome {
            Ok(()) => 1,
            Err(refusal) => {
                assert_eq!(refusal, crate::capacity::Refusal::Full);
                0
            }
        };
        assert_eq!(
            capacity.in_flight(),
            3 + admitted,
            "the root, its two leaves and the producer's item, if admitted"
        );
    });
}
