//! A panic in the mapped function reaches the consumer on its own thread with
//! its payload, in the item's place; nothing hangs, nothing else is lost.
#![allow(clippy::unwrap_used)]

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};

use pool_collect::{MapConfig, map_ordered, map_unordered};

fn message(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| {
            payload
                .downcast_ref::<&str>()
                .map(|text| (*text).to_owned())
        })
        .unwrap_or_default()
}

fn cursed(item: u32) -> u32 {
    if item == 37 {
        panic!("item {item} is cursed");
    }
    item * 2
}

#[test]
fn the_ordered_map_yields_the_items_before_then_raises_the_panic() {
    let mut yielded = Vec::new();
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        for value in
            map_ordered(0..100u32, MapConfig::default().workers(4).window(8), cursed).unwrap()
        {
            yielded.push(value);
        }
    }));
    let payload = outcome.expect_err("the panic of item 37 reaches the consumer");
    assert_eq!(message(&*payload), "item 37 is cursed");
    assert_eq!(yielded, (0..37).map(|item| item * 2).collect::<Vec<_>>());
}

#[rstest::rstest]
fn after_a_caught_panic_the_map_goes_on_and_loses_nothing(#[values(true, false)] ordered: bool) {
    let config = MapConfig::default().workers(3).window(5);
    let mut map: Box<dyn Iterator<Item = u32>> = if ordered {
        Box::new(map_ordered(0..100u32, config, cursed).unwrap())
    } else {
        Box::new(map_unordered(0..100u32, config, cursed).unwrap())
    };
    let mut values = Vec::new();
    let mut panics = Vec::new();
    loop {
        match catch_unwind(AssertUnwindSafe(|| map.next())) {
            Ok(Some(value)) => values.push(value),
            Ok(None) => break,
            Err(payload) => panics.push((values.len(), message(&*payload))),
        }
    }
    assert_eq!(panics.len(), 1);
    assert_eq!(panics[0].1, "item 37 is cursed");
    if ordered {
        assert_eq!(panics[0].0, 37, "the panic comes in item 37's place");
    } else {
        values.sort_unstable();
    }
    let expected: Vec<u32> = (0..100)
        .filter(|&item| item != 37)
        .map(|item| item * 2)
        .collect();
    assert_eq!(values, expected);
}

#[test]
fn every_item_panicking_does_not_hang() {
    let outcome = catch_unwind(|| {
        map_unordered(
            0..1_000u32,
            MapConfig::default().workers(2).window(4),
            |item| -> u32 { panic!("item {item}") },
        )
        .unwrap()
        .count()
    });
    assert!(message(&*outcome.unwrap_err()).starts_with("item "));
}
