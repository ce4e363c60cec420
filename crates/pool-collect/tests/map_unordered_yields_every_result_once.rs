//! `map_unordered` yields every result exactly once, as the workers finish
//! them: a held first item does not hold back the others.
#![allow(clippy::unwrap_used)]

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use pool_collect::{MapConfig, map_unordered};
use pool_core::CancelToken;
use rstest::rstest;

/// How long the held item waits before it goes on by itself: only a guard
/// against a hang if the code under test is broken (then item 0 shows up among
/// the early results and the test fails).
const HANG_GUARD: Duration = Duration::from_secs(60);

fn uneven_work(item: u64) -> u64 {
    let rounds = if item.wrapping_mul(0x9E37_79B9_7F4A_7C15).is_multiple_of(7) {
        20_000
    } else {
        20
    };
    (0..rounds).fold(item, |acc, _| {
        std::hint::black_box(acc.rotate_left(7) ^ 0xBF58_476D)
    })
}

#[rstest]
#[case(1, 1)]
#[case(2, 3)]
#[case(4, 16)]
#[case(8, 128)]
fn ten_thousand_items_each_come_back_exactly_once(#[case] n_workers: usize, #[case] window: usize) {
    const N_ITEMS: u64 = 10_000;
    let config = MapConfig::default().workers(n_workers).window(window);
    let mut seen = vec![0u32; N_ITEMS as usize];
    for (item, checksum) in
        map_unordered(0..N_ITEMS, config, |item| (item, uneven_work(item))).unwrap()
    {
        assert_eq!(
            checksum,
            uneven_work(item),
            "result of item {item} is not its own"
        );
        seen[item as usize] += 1;
    }
    let not_once: Vec<usize> = (0..seen.len()).filter(|&item| seen[item] != 1).collect();
    assert!(
        not_once.is_empty(),
        "items not yielded exactly once: {not_once:?}"
    );
}

#[test]
fn a_held_first_item_does_not_hold_back_the_others() {
    const WINDOW: usize = 8;
    let gate = CancelToken::new();
    let worker_gate = gate.clone();
    let pulled = Rc::new(Cell::new(0usize));
    let input_pulled = Rc::clone(&pulled);
    let input = (0..200usize).inspect(move |_| input_pulled.set(input_pulled.get() + 1));
    let mut map = map_unordered(
        input,
        MapConfig::default().workers(4).window(WINDOW),
        move |item| {
            if item == 0 {
                worker_gate.wait_timeout(HANG_GUARD);
            }
            item
        },
    )
    .unwrap();

    // Item 0 is held at its gate; three times a window of other items come
    // through meanwhile, and item 0 keeps only its own slot of the window.
    let early: Vec<usize> = map.by_ref().take(3 * WINDOW).collect();
    assert!(
        !early.contains(&0),
        "item 0 came back while it was held: {early:?}"
    );
    assert!(!gate.is_cancelled());
    assert!(pulled.get() <= early.len() + WINDOW);

    gate.cancel();
    let mut all: Vec<usize> = early.into_iter().chain(map).collect();
    all.sort_unstable();
    assert_eq!(all, (0..200).collect::<Vec<_>>());
}
