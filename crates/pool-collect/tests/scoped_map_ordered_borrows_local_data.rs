//! The scoped maps (`pool_collect::scoped`) take a function and items that
//! borrow local data, keep input order (ordered), yield every result once
//! (unordered), and re-raise a panic of `f` after the scope joined its
//! threads.
#![allow(clippy::unwrap_used)] // Tests may unwrap: a panic is a test failure.

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};

use pool_collect::{MapConfig, scoped};

#[test]
fn scoped_map_ordered_keeps_input_order_over_borrowed_data() {
    let text: String = (0..2_000).map(|n| format!("word{}\n", n % 37)).collect();
    let lengths: HashMap<String, usize> = (0..37).map(|n| (format!("word{n}"), n)).collect();
    let results: Vec<(&str, usize)> = pool_core::scope(|s| {
        scoped::map_ordered(
            s,
            text.lines(),
            MapConfig::default().workers(3).window(16),
            |line: &str| (line, lengths[line]),
        )
        .unwrap()
        .collect()
    });
    assert_eq!(results.len(), 2_000);
    for (n, (line, value)) in results.into_iter().enumerate() {
        assert_eq!(value, n % 37);
        assert_eq!(line, format!("word{}", n % 37));
    }
}

#[test]
fn scoped_map_unordered_yields_every_result_once() {
    let mut numbers: Vec<u64> = (0..1_000).collect();
    let factor = 3;
    let mut seen: Vec<u64> = pool_core::scope(|s| {
        scoped::map_unordered(
            s,
            numbers.chunks_mut(10),
            MapConfig::default().workers(2),
            |chunk: &mut [u64]| {
                chunk.iter_mut().for_each(|n| *n *= factor);
                chunk[0]
            },
        )
        .unwrap()
        .collect()
    });
    seen.sort_unstable();
    assert_eq!(seen, (0..100).map(|n| n * 30).collect::<Vec<_>>());
    assert!(
        numbers
            .iter()
            .enumerate()
            .all(|(n, &value)| value == 3 * n as u64)
    );
}

#[test]
fn a_panic_in_a_scoped_map_reaches_the_consumer() {
    let limit = 5u32;
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        pool_core::scope(|s| {
            scoped::map_ordered(s, 0..10u32, MapConfig::default().workers(2), |n| {
                assert!(n < limit, "{n} is too big");
                n
            })
            .unwrap()
            .collect::<Vec<_>>()
        })
    }));
    let payload = outcome.unwrap_err();
    assert_eq!(
        payload.downcast_ref::<String>().map(String::as_str),
        Some("5 is too big")
    );
}
