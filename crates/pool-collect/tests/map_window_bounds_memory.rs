//! The window bounds memory: at every step, the items taken from the input and
//! not yet handed to the consumer never exceed the window, for the ordered and
//! the unordered map; a slow first item does not let the input run ahead; a
//! map dropped early reads no further.
#![allow(clippy::unwrap_used)]

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use pool_collect::{MapConfig, map_ordered, map_unordered};
use pool_core::CancelToken;
use rstest::rstest;

/// How long the held item waits before the test gives up: only a guard against
/// a hang if the code under test is broken. The item is let go by the test.
const HANG_GUARD: Duration = Duration::from_secs(60);

/// Counts items pulled from the input and handed to the consumer, and the most
/// that were ever pulled and not handed over. `Rc`/`Cell`: the input is pulled
/// on the consumer's thread, so it need not be `Send`.
#[derive(Default)]
struct Probe {
    pulled: Cell<usize>,
    handed: Cell<usize>,
    most_ahead: Cell<usize>,
}

impl Probe {
    fn pull(&self) {
        self.pulled.set(self.pulled.get() + 1);
        let ahead = self.pulled.get() - self.handed.get();
        self.most_ahead.set(self.most_ahead.get().max(ahead));
    }

    fn hand(&self, window: usize) {
        // The item just handed over was pulled and not handed yet: it counts.
        let ahead = self.pulled.get() - self.handed.get();
        assert!(
            ahead <= window,
            "{ahead} items ahead of the consumer with a window of {window}"
        );
        self.handed.set(self.handed.get() + 1);
    }
}

/// A few microseconds of work that varies with the item, so items finish out
/// of order.
fn uneven_work(item: u64) -> u64 {
    let rounds = if item.is_multiple_of(7) { 5_000 } else { 10 };
    (0..rounds).fold(item, |acc, _| {
        std::hint::black_box(acc.rotate_left(5) ^ 0x9E37_79B9)
    })
}

#[rstest]
#[case::window_one(2, 1)]
#[case::one_worker(1, 5)]
#[case::odd_sizes(3, 7)]
#[case::more_workers_than_window(8, 4)]
#[case::wide_window(4, 64)]
fn taken_minus_handed_never_exceeds_the_window(
    #[case] n_workers: usize,
    #[case] window: usize,
    #[values(true, false)] ordered: bool,
) {
    const N_ITEMS: u64 = 3_000;
    let probe = Rc::new(Probe::default());
    let input_probe = Rc::clone(&probe);
    let input = (0..N_ITEMS).inspect(move |_| input_probe.pull());
    let config = MapConfig::default().workers(n_workers).window(window);
    let work = |item: u64| (item, uneven_work(item));
    let mut items = Vec::new();
    if ordered {
        for (item, _) in map_ordered(input, config, work).unwrap() {
            probe.hand(window);
            items.push(item);
        }
    } else {
        for (item, _) in map_unordered(input, config, work).unwrap() {
            probe.hand(window);
            items.push(item);
        }
        items.sort_unstable();
    }
    assert_eq!(items, (0..N_ITEMS).collect::<Vec<_>>());
    assert_eq!((probe.pulled.get(), probe.handed.get()), (3_000, 3_000));
    // The bound holds, and the window is used in full (it is not smaller either).
    assert_eq!(probe.most_ahead.get(), window);
}

#[test]
fn a_held_first_item_stops_the_input_at_the_window() {
    const WINDOW: usize = 16;
    let pulled = Arc::new(AtomicUsize::new(0));
    let others_finished = Arc::new(AtomicUsize::new(0));
    let pulled_when_let_go = Arc::new(AtomicUsize::new(usize::MAX));
    let gate = CancelToken::new();

    let input_pulled = Arc::clone(&pulled);
    let input = (0..1_000usize).inspect(move |_| {
        input_pulled.fetch_add(1, Ordering::SeqCst);
    });
    let (worker_pulled, worker_finished, worker_snapshot, worker_gate) = (
        Arc::clone(&pulled),
        Arc::clone(&others_finished),
        Arc::clone(&pulled_when_let_go),
        gate.clone(),
    );
    let config = MapConfig::default().workers(4).window(WINDOW);
    let results: Vec<usize> = map_ordered(input, config, move |item| {
        if item == 0 {
            assert!(
                worker_gate.wait_timeout(HANG_GUARD),
                "item 0 was never let go"
            );
        } else if worker_finished.fetch_add(1, Ordering::SeqCst) + 1 == WINDOW - 1 {
            // Every other item of the first window is done and waits behind item
            // 0. Were the input read ahead, more items would have been pulled by
            // now; the consumer is still waiting for item 0, so no more can be.
            worker_snapshot.store(worker_pulled.load(Ordering::SeqCst), Ordering::SeqCst);
            worker_gate.cancel();
        }
        item
    })
    .unwrap()
    .collect();

    assert_eq!(pulled_when_let_go.load(Ordering::SeqCst), WINDOW);
    assert_eq!(results, (0..1_000).collect::<Vec<_>>());
    assert!(gate.is_cancelled());
}

#[rstest]
fn a_map_dropped_early_reads_no_further_than_the_window(#[values(true, false)] ordered: bool) {
    const WINDOW: usize = 16;
    let pulled = Rc::new(Cell::new(0usize));
    let input_pulled = Rc::clone(&pulled);
    let input = (0..1_000_000u64).inspect(move |_| input_pulled.set(input_pulled.get() + 1));
    let calls = Arc::new(AtomicUsize::new(0));
    let worker_calls = Arc::clone(&calls);
    let work = move |item: u64| {
        worker_calls.fetch_add(1, Ordering::SeqCst);
        item
    };
    let config = MapConfig::default().workers(4).window(WINDOW);
    let first_five: Vec<u64> = if ordered {
        map_ordered(input, config, work).unwrap().take(5).collect()
    } else {
        let mut some: Vec<u64> = map_unordered(input, config, work)
            .unwrap()
            .take(5)
            .collect();
        some.sort_unstable();
        some.dedup();
        some
    };
    // The map is gone here: its pool was cancelled and joined.
    assert_eq!(first_five.len(), 5);
    if ordered {
        assert_eq!(first_five, [0, 1, 2, 3, 4]);
    }
    assert!(pulled.get() <= 5 + WINDOW, "pulled {} items", pulled.get());
    assert!(calls.load(Ordering::SeqCst) <= pulled.get());
}
