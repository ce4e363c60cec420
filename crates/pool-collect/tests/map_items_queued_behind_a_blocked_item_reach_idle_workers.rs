//! An item queued behind a blocked item does not wait for it while another
//! worker is idle: `pool-core` wakes a parked worker to take it (its
//! invariant I11, `crates/pool-core/src/queues.rs`).
//!
//! A map pushes one item at a time, and a `pool-core` worker takes queued
//! items a handful at a time into its own deque, so an item can land behind
//! one whose call blocks. If no parked sibling were woken to steal it, it
//! would wait until that call ended. Here a blocked call ends only once the
//! items that should run meanwhile have run, so a stranded item would never
//! run; every wait is bounded by [`LIVENESS_BOUND`], which turns what would be
//! a hang into a failed assertion.
//!
//! The interleaving that strands an item depends on scheduling, so each case
//! runs for many rounds. The second test is the case the map's notes once
//! described ("8 jobs on 8 idle workers that all block, and sometimes only 5
//! start"): with `pool-core`'s wake-ups for leftovers taken back to what they
//! were before commit bcb745b, it failed in every run, for 2 and for 8
//! workers, within 200 rounds. The first test passed there too: a worker
//! that never blocks looks for work again and steals what sits behind a
//! blocked one; it checks that the map keeps that property.
#![allow(clippy::unwrap_used)] // Tests may unwrap: a panic is a test failure.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use pool_collect::{MapConfig, map_ordered, map_unordered};
use pool_core::CancelToken;
use rstest::rstest;

/// How long the test waits for the items that should run while others block.
/// Reached only when an item is stranded: a liveness bound that fails the
/// test instead of hanging it, not a speed expectation.
const LIVENESS_BOUND: Duration = Duration::from_secs(20);

/// How long a blocked item waits before it gives up by itself: longer than
/// [`LIVENESS_BOUND`], so that when the test gives up first its assertion,
/// not a blocked item, reports what went wrong.
const BLOCKED_ITEM_BOUND: Duration = Duration::from_secs(40);

/// Fresh maps per case: the stranding interleaving is a race.
const ROUNDS: usize = 200;

#[derive(Debug, Clone, Copy)]
enum Order {
    Ordered,
    Unordered,
}

/// Maps `f` over `0..n_items` with `config` and returns the results, in input
/// order for the ordered map and in completion order for the other.
fn run<R, F>(order: Order, n_items: usize, config: MapConfig, f: F) -> Vec<R>
where
    R: Send + 'static,
    F: Fn(usize) -> R + Send + Sync + 'static,
{
    match order {
        Order::Ordered => map_ordered(0..n_items, config, f).unwrap().collect(),
        Order::Unordered => map_unordered(0..n_items, config, f).unwrap().collect(),
    }
}

/// Which items of a round block.
#[derive(Debug, Clone, Copy)]
enum Blocking {
    /// Item 0 only: one slow item, every other one behind it.
    First,
    /// Every other item, starting with item 0.
    Even,
    /// Every item but the last one.
    AllButLast,
}

impl Blocking {
    fn blocks(self, item: usize, n_items: usize) -> bool {
        match self {
            Blocking::First => item == 0,
            Blocking::Even => item.is_multiple_of(2),
            Blocking::AllButLast => item + 1 < n_items,
        }
    }
}

/// The items that do not block, counted as they run.
#[derive(Default)]
struct Ran {
    count: Mutex<usize>,
    changed: Condvar,
}

/// Some items block until every item that does not block has run; fewer
/// items block than there are workers. A worker takes several queued items
/// at once, so quick items end up queued behind a blocked one; each blocked
/// item's wait ends only if a free worker takes them.
#[rstest]
#[case::one_slow_item_on_two_workers(2, 8, Blocking::First)]
#[case::one_slow_item_on_four_workers(4, 16, Blocking::First)]
#[case::one_slow_item_on_eight_workers(8, 8, Blocking::First)]
#[case::half_the_workers_blocked(8, 8, Blocking::Even)]
#[case::all_workers_but_one_blocked(8, 8, Blocking::AllButLast)]
fn items_queued_behind_a_blocked_item_run_on_idle_workers(
    #[values(Order::Ordered, Order::Unordered)] order: Order,
    #[case] n_workers: usize,
    #[case] n_items: usize,
    #[case] blocking: Blocking,
) {
    let n_blocking = (0..n_items)
        .filter(|&item| blocking.blocks(item, n_items))
        .count();
    assert!(n_blocking < n_workers, "the case leaves a worker free");
    let n_quick = n_items - n_blocking;
    // The window takes every item at once.
    let config = MapConfig::default().workers(n_workers).window(n_items);
    for round in 0..ROUNDS {
        let ran = Arc::new(Ran::default());
        // A blocked item returns whether every quick item ran while it
        // waited; a quick item returns `true`.
        let results = run(order, n_items, config, move |item| {
            let mut count = ran.count.lock().unwrap();
            if !blocking.blocks(item, n_items) {
                *count += 1;
                ran.changed.notify_all();
                return true;
            }
            let (_count, waited) = ran
                .changed
                .wait_timeout_while(count, LIVENESS_BOUND, |count| *count < n_quick)
                .unwrap();
            !waited.timed_out()
        });
        assert_eq!(
            results,
            vec![true; n_items],
            "round {round}: a quick item queued behind a blocked one waited for it \
             while a worker was free ({n_blocking} blocked on {n_workers} workers)"
        );
    }
}

/// Every worker blocks: as many items as workers, each blocked until the
/// test has seen all of them start. Each item must start on a worker of its
/// own, so the items a worker took along with the one it blocks on must be
/// stolen by siblings that were parked, and someone must wake them.
#[rstest]
fn every_item_starts_while_every_worker_blocks(
    #[values(Order::Ordered, Order::Unordered)] order: Order,
    #[values(2, 8)] n_workers: usize,
) {
    let config = MapConfig::default().workers(n_workers).window(n_workers);
    for round in 0..ROUNDS {
        let (started, started_rx) = mpsc::channel::<usize>();
        let gate = CancelToken::new();
        let worker_gate = gate.clone();
        let (n_started, results) = std::thread::scope(|scope| {
            let consumer = scope.spawn(move || {
                run(order, n_workers, config, move |item| {
                    started.send(item).unwrap();
                    // Opened by the test once every item started, or when it
                    // gave up waiting.
                    worker_gate.wait_timeout(BLOCKED_ITEM_BOUND)
                })
            });
            let deadline = Instant::now() + LIVENESS_BOUND;
            let mut n_started = 0;
            while n_started < n_workers {
                let left = deadline.saturating_duration_since(Instant::now());
                match started_rx.recv_timeout(left) {
                    Ok(_) => n_started += 1,
                    Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
                }
            }
            // Let the items go, whatever happened, so the map can end.
            gate.cancel();
            (n_started, consumer.join().unwrap())
        });
        assert_eq!(
            n_started, n_workers,
            "round {round}: only {n_started} of {n_workers} items started while \
             every worker that had one blocked"
        );
        assert_eq!(
            results,
            vec![true; n_workers],
            "round {round}: every gate opened"
        );
    }
}
