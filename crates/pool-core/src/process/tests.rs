//! The batch split of `Bench::share_rest`, checked on a real `ItemProcessor`
//! with real queues and sleep slots, and an idle sibling stood in for by the
//! sleeper count: which items run here, which are handed over, and that a
//! keyed pool never splits.

use std::sync::{Arc, Mutex};

use crossbeam_deque::Worker as LocalQueue;
use pool_chunk::KeyHasher;

use super::{Bench, ItemProcessor, Processor};
use crate::capacity::Capacity;
use crate::item::DroppedHook;
use crate::ledger::Ledger;
use crate::queues::{Parcel, Queues, RouteFn};
use crate::sleep::{Parker, Sleep, unparker_of};
use crate::{CancelToken, Ctx, WorkerId};

/// Runs `batch` on worker 0 of a two-worker pool whose worker 1 is
/// asleep (`idle_sibling`) or busy; returns the items run here,
/// what was left on worker 0's deque, and the handed-over count.
fn run_batch(batch: Vec<u32>, idle_sibling: bool, keyed: bool) -> (Vec<u32>, Vec<u32>, usize) {
    let parkers: Vec<Parker> = (0..2).map(|_| Parker::new()).collect();
    let sleep = Sleep::new(parkers.iter().map(unparker_of).collect());
    let locals: Vec<LocalQueue<Parcel<u32>>> = (0..2).map(|_| LocalQueue::new_fifo()).collect();
    let spawned: Vec<LocalQueue<Parcel<u32>>> = (0..2).map(|_| LocalQueue::new_lifo()).collect();
    let route: RouteFn<u32> = Box::new(|item: &u32, hasher: &KeyHasher| hasher.hash(item));
    let keyed = keyed.then_some(route);
    let queues = Queues::new(
        locals.iter().map(LocalQueue::stealer).collect(),
        spawned.iter().map(LocalQueue::stealer).collect(),
        keyed,
        2,
        4,
        sleep,
    );
    if idle_sibling {
        queues.sleep().pretend_one_sleeps();
    }
    let token = CancelToken::new();
    let ledger = Ledger::new(2, 2, false, 10, false, token.clone());
    let ctx = Ctx::new(WorkerId(0), token.clone(), Arc::clone(ledger.metrics()));
    let mut out = ledger.writer(0);
    let capacity = Capacity::new(64, 8, 2);
    let mut finished = 0;
    let on_dropped = DroppedHook::new(None);
    let ran = Arc::new(Mutex::new(Vec::new()));
    let mut processor = ItemProcessor({
        let ran = Arc::clone(&ran);
        move |_ctx: &Ctx, item: u32| {
            ran.lock().expect("no panic holds it").push(item);
            Ok::<(), std::convert::Infallible>(())
        }
    });
    let mut bench = Bench {
        ctx: &ctx,
        ledger: &ledger,
        out: &mut out,
        cancelled: token.flag(),
        queues: &queues,
        local: &locals[0],
        index: 0,
        handed_over: 0,
        pulled_from: None,
        capacity: &capacity,
        finished: &mut finished,
        item_key: None,
        on_dropped: &on_dropped,
    };
    let mut batch = batch;
    processor.many(&mut batch, &mut bench);
    let handed_over = bench.handed_over;
    let mut left = Vec::new();
    while let Some(parcel) = locals[0].pop() {
        match parcel {
            Parcel::Many(items) => left.extend(items),
            _ => panic!("a split hands over a reserved batch"),
        }
    }
    let ran = ran.lock().expect("no panic").clone();
    (ran, left, handed_over)
}

#[test]
fn an_idle_sibling_gets_the_back_half_before_the_first_item_runs() {
    let (ran, left, handed_over) = run_batch((0..8).collect(), true, false);
    // Before item 0: 7 left, the back 3 go. Then the deque holds work, so
    // no further split until a sibling takes it.
    assert_eq!(ran, vec![0, 1, 2, 3, 4]);
    assert_eq!(left, vec![5, 6, 7]);
    assert_eq!(handed_over, 3);
}

#[test]
fn busy_siblings_leave_the_batch_whole() {
    let (ran, left, handed_over) = run_batch((0..8).collect(), false, false);
    assert_eq!(ran, (0..8).collect::<Vec<_>>());
    assert!(left.is_empty());
    assert_eq!(handed_over, 0);
}

#[test]
fn a_keyed_pool_never_splits_a_batch() {
    let (ran, left, handed_over) = run_batch((0..8).collect(), true, true);
    assert_eq!(ran, (0..8).collect::<Vec<_>>());
    assert!(left.is_empty());
    assert_eq!(handed_over, 0);
}
