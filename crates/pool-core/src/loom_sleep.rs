//! Exhaustive checks of the sleep protocol. Run with
//! `RUSTFLAGS="--cfg loom" cargo test -p pool-core --release --lib loom`
//! (or `cargo xtask loom`).
//!
//! Queues are reduced to counters: what matters to the protocol is that a
//! push is a `SeqCst` write that the re-check reads. In the "wake before
//! close" runs the producer waits until every item is done before it closes
//! the pool, so a lost wake-up cannot be rescued by the close's `notify_all`:
//! it leaves every thread blocked, which loom reports as a deadlock.

use crate::sleep::{Parker, Sleep, unparker_of};
use crate::sync::SeqCst;
use crate::sync::check_model;
use loom::sync::atomic::{AtomicBool, AtomicUsize};
use loom::sync::{Arc, Condvar, Mutex};

struct Model {
    /// Unkeyed: one queue every worker takes from. Keyed: one inbox per worker.
    queues: Vec<AtomicUsize>,
    keyed: bool,
    closed: AtomicBool,
    finished: Mutex<usize>,
    all_finished: Condvar,
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

impl Model {
    fn queue_of(&self, index: usize) -> &AtomicUsize {
        &self.queues[if self.keyed { index } else { 0 }]
    }

    fn finish_one(&self) {
        *self.finished.lock().expect("loom mutex") += 1;
        self.all_finished.notify_all();
    }

    fn wait_all_finished(&self, n_items: usize) {
        let mut finished = self.finished.lock().expect("loom mutex");
        while *finished < n_items {
            finished = self.all_finished.wait(finished).expect("loom condvar");
        }
    }
}

fn worker_loop(model: &Model, index: usize, parker: &Parker) -> usize {
    let queue = model.queue_of(index);
    let mut done = 0;
    loop {
        if try_pop(queue) {
            done += 1;
            model.finish_one();
            continue;
        }
        if model.closed.load(SeqCst) && queue.load(SeqCst) == 0 {
            return done;
        }
        model.sleep.start_searching();
        if try_pop(queue) {
            model.sleep.stop_searching();
            done += 1;
            model.finish_one();
            continue;
        }
        model.sleep.sleep(index, parker, || {
            queue.load(SeqCst) > 0 || model.closed.load(SeqCst)
        });
    }
}

/// Runs `n_workers` workers and one producer pushing one item per entry of
/// `targets` (a worker index in keyed mode, a wake-up hint otherwise).
fn run_model(
    name: &'static str,
    n_workers: usize,
    keyed: bool,
    targets: &'static [usize],
    wake_before_close: bool,
) {
    check_model(name, move || {
        let parkers: Vec<Parker> = (0..n_workers).map(|_| Parker::new()).collect();
        let unparkers = parkers.iter().map(unparker_of).collect();
        let n_queues = if keyed { n_workers } else { 1 };
        let model = Arc::new(Model {
            queues: (0..n_queues).map(|_| AtomicUsize::new(0)).collect(),
            keyed,
            closed: AtomicBool::new(false),
            finished: Mutex::new(0),
            all_finished: Condvar::new(),
            sleep: Sleep::new(unparkers),
        });
        let handles: Vec<_> = parkers
            .into_iter()
            .enumerate()
            .map(|(index, parker)| {
                let model = Arc::clone(&model);
                loom::thread::spawn(move || worker_loop(&model, index, &parker))
            })
            .collect();
        for &target in targets {
            if keyed {
                model.queues[target].fetch_add(1, SeqCst);
                model.sleep.notify_worker(target);
            } else {
                model.queues[0].fetch_add(1, SeqCst);
                model.sleep.notify_one(target);
            }
        }
        if wake_before_close {
            model.wait_all_finished(targets.len());
        }
        model.closed.store(true, SeqCst);
        model.sleep.notify_all();
        let done: Vec<usize> = handles
            .into_iter()
            .map(|handle| handle.join().expect("worker thread"))
            .collect();
        // Every item is taken exactly once, and in keyed mode by its own worker.
        assert_eq!(done.iter().sum::<usize>(), targets.len());
        if keyed {
            for (index, &n_done) in done.iter().enumerate() {
                assert_eq!(n_done, targets.iter().filter(|&&t| t == index).count());
            }
        }
    });
}

#[test]
fn loom_one_worker_no_lost_wakeup() {
    run_model("one_worker_no_lost_wakeup", 1, false, &[0, 1], true);
}

#[test]
fn loom_two_workers_no_lost_wakeup() {
    run_model("two_workers_no_lost_wakeup", 2, false, &[0, 1], true);
}

#[test]
fn loom_two_workers_shutdown_drains() {
    run_model("two_workers_shutdown_drains", 2, false, &[0, 1, 2], false);
}

#[test]
fn loom_keyed_wakes_the_target_worker() {
    run_model("keyed_wakes_the_target_worker", 2, true, &[1, 1], true);
}

#[test]
fn loom_keyed_items_for_both_workers() {
    run_model("keyed_items_for_both_workers", 2, true, &[0, 1], true);
}

#[test]
fn loom_keyed_shutdown_drains() {
    run_model("keyed_shutdown_drains", 2, true, &[1, 0], false);
}
