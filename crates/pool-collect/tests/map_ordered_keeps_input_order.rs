//! `map_ordered` yields results in input order whatever order the workers
//! finish them in: with per-item work that varies with the data, with
//! completions forced into a shuffled order by per-item gates, and for
//! `Result`s, whose first error in input order is the one `collect` stops at.
#![allow(clippy::unwrap_used)]

use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::Duration;

use pool_collect::{MapConfig, map_ordered};
use pool_core::CancelToken;
use rstest::rstest;

/// How long a gated item or the releaser waits before the test gives up: only
/// a guard against a hang if the code under test is broken. Items are let go by
/// the test's releaser, never by the clock.
const HANG_GUARD: Duration = Duration::from_secs(60);

/// A fixed-seed mixer (splitmix64): the same data always gets the same work.
fn mix(value: u64) -> u64 {
    let mut z = value.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Work whose amount depends on the item: one item in seven (by its hash)
/// takes a thousand times longer than the others.
fn uneven_work(item: u64) -> u64 {
    let rounds = if mix(item).is_multiple_of(7) {
        20_000
    } else {
        20
    };
    (0..rounds).fold(item, |acc, _| black_box(mix(acc)))
}

#[rstest]
#[case::one_worker_window_one(1, 1)]
#[case::one_worker(1, 4)]
#[case::window_one(2, 1)]
#[case::window_two(2, 2)]
#[case::odd_sizes(3, 7)]
#[case::four_workers(4, 16)]
#[case::wide_window(8, 64)]
fn ten_thousand_items_with_uneven_work_come_back_in_input_order(
    #[case] n_workers: usize,
    #[case] window: usize,
) {
    const N_ITEMS: u64 = 10_000;
    let finish_rank = Arc::new(AtomicUsize::new(0));
    let rank = Arc::clone(&finish_rank);
    let config = MapConfig::default().workers(n_workers).window(window);
    let results: Vec<(u64, u64, usize)> = map_ordered(0..N_ITEMS, config, move |item| {
        let checksum = uneven_work(item);
        (item, checksum, rank.fetch_add(1, Ordering::SeqCst))
    })
    .unwrap()
    .collect();

    assert_eq!(results.len(), 10_000);
    for (position, (item, _checksum, _rank)) in results.iter().enumerate() {
        assert_eq!(*item, position as u64, "result {position} is out of order");
    }
    // The test proves something only if the workers did finish out of order.
    let finished_out_of_order = results
        .windows(2)
        .filter(|pair| pair[0].2 > pair[1].2)
        .count();
    if n_workers > 1 && window > 1 {
        assert!(
            finished_out_of_order > 0,
            "the uneven work never reordered completions"
        );
    } else {
        assert_eq!(
            finished_out_of_order, 0,
            "one item at a time finishes in order"
        );
    }
}

/// Per-item gates, opened by the test in a shuffled order.
struct Gates {
    open: Vec<CancelToken>,
    done: Vec<CancelToken>,
    /// Items waiting at their gate, not yet let go.
    arrived: Mutex<Vec<usize>>,
    arrival: Condvar,
    completions: Mutex<Vec<usize>>,
}

#[test]
fn order_is_kept_when_items_finish_in_a_shuffled_order() {
    const N_ITEMS: usize = 400;
    const WINDOW: usize = 8;
    const SEED: u64 = 0x5EED_F0DE;
    let gates = Arc::new(Gates {
        open: (0..N_ITEMS).map(|_| CancelToken::new()).collect(),
        done: (0..N_ITEMS).map(|_| CancelToken::new()).collect(),
        arrived: Mutex::new(Vec::new()),
        arrival: Condvar::new(),
        completions: Mutex::new(Vec::new()),
    });
    let worker_gates = Arc::clone(&gates);
    let map = map_ordered(
        0..N_ITEMS,
        MapConfig::default().workers(4).window(WINDOW),
        move |item| {
            worker_gates.arrived.lock().unwrap().push(item);
            worker_gates.arrival.notify_all();
            assert!(
                worker_gates.open[item].wait_timeout(HANG_GUARD),
                "item {item} was never let go"
            );
            worker_gates.completions.lock().unwrap().push(item);
            worker_gates.done[item].cancel();
            item * 3
        },
    )
    .unwrap();

    let (results, release_order) = thread::scope(|scope| {
        let releaser = scope.spawn(|| {
            // Lets one item go at a time, picked at random among those waiting at
            // their gates, and waits until it has finished, so the items finish
            // exactly in the release order. Only items a worker is running can be
            // picked: an item queued behind a held one could not finish.
            let mut state = SEED;
            let mut release_order = Vec::with_capacity(N_ITEMS);
            while release_order.len() < N_ITEMS {
                let mut arrived = gates.arrived.lock().unwrap();
                while arrived.is_empty() {
                    let (guard, timeout) = gates.arrival.wait_timeout(arrived, HANG_GUARD).unwrap();
                    assert!(
                        !timeout.timed_out(),
                        "seed {SEED:#x}: no item arrived at its gate"
                    );
                    arrived = guard;
                }
                state = mix(state);
                let pick = (state % arrived.len() as u64) as usize;
                let item = arrived.swap_remove(pick);
                drop(arrived);
                gates.open[item].cancel();
                assert!(
                    gates.done[item].wait_timeout(HANG_GUARD),
                    "seed {SEED:#x}: item {item} never finished"
                );
                release_order.push(item);
            }
            release_order
        });
        let results: Vec<usize> = map.collect();
        (results, releaser.join().unwrap())
    });

    assert_eq!(
        results,
        (0..N_ITEMS).map(|item| item * 3).collect::<Vec<_>>()
    );
    let completions = gates.completions.lock().unwrap().clone();
    assert_eq!(
        completions, release_order,
        "items finish in the order they are let go"
    );
    assert!(
        completions.windows(2).any(|pair| pair[0] > pair[1]),
        "seed {SEED:#x}: the items never finished out of order"
    );
}

#[test]
fn results_carry_errors_and_collect_stops_at_the_first_in_input_order() {
    // Item 3 is slow, so the errors of items 13, 23, ... are usually ready
    // before it; the ordered map still puts item 3's error first.
    let parse = |item: u64| -> Result<u64, String> {
        let rounds = if item == 3 { 200_000 } else { 10 };
        let checksum = (0..rounds).fold(item, |acc, _| black_box(mix(acc)));
        if item % 10 == 3 {
            Err(format!("item {item} is bad"))
        } else {
            Ok(checksum)
        }
    };
    let config = MapConfig::default().workers(4).window(32);
    let all: Vec<Result<u64, String>> = map_ordered(0..1_000u64, config, parse).unwrap().collect();
    assert_eq!(all.iter().filter(|result| result.is_err()).count(), 100);
    assert_eq!(all[13], Err("item 13 is bad".to_owned()));

    let first_error = map_ordered(0..1_000u64, config, parse)
        .unwrap()
        .collect::<Result<Vec<u64>, String>>();
    assert_eq!(first_error, Err("item 3 is bad".to_owned()));
}

#[test]
fn the_input_may_borrow_local_data() {
    let words: Vec<String> = ["pool", "collect", "map", "ordered"]
        .map(String::from)
        .to_vec();
    // The iterator borrows `words`; only its items (lengths) go to the pool.
    let doubled: Vec<usize> = map_ordered(
        words.iter().map(String::len),
        MapConfig::default().workers(2).window(2),
        |len| len * 2,
    )
    .unwrap()
    .collect();
    assert_eq!(doubled, [8, 14, 6, 14]);
}
