//! A pool built and dropped 10,000 times (waited on or just dropped, with and
//! without items, cancelled, keyed or not) leaves no thread behind.
//!
//! Two checks, both on `/proc/self/task`:
//! - After every pool, no thread with the pools' name prefix is alive. This
//!   one is exact and immune to other threads: `common/threads.rs` counts by
//!   name and skips threads that have begun to exit, so it needs no waiting
//!   right after `join`.
//! - Every 1,000 pools and at the end, the whole process's thread count is
//!   back at (or below) where it started. That count is process-wide and the
//!   harness runs a binary's tests on parallel threads, so this file holds
//!   one test of its own (plus the helper's unit test, whose thread can only
//!   end while this runs: hence "at or below"). A joined thread can stay
//!   listed for a moment after `join` returns (the kernel wakes the joiner
//!   before it unlists the thread), so the count is polled until it is back;
//!   a leak never gets there, and the poll gives up after a generous bound.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used)] // Tests may unwrap: a panic is a test failure.

use std::time::{Duration, Instant};

#[path = "common/threads.rs"]
mod threads;

use pool_core::{Ctx, Pool};

const N_POOLS: usize = 10_000;
/// How often the count is checked while the pools come and go.
const CHECK_EVERY: usize = 1_000;
/// How long the count may take to come back before the test calls it a leak.
/// A bound for "never", not a timing assertion.
const SETTLE_LIMIT: Duration = Duration::from_secs(30);
/// The pools' thread name prefix (threads are `leakcheck-0`, `leakcheck-1`).
const PREFIX: &str = "leakcheck";

fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task")
        .expect("Linux lists a process's threads in /proc/self/task")
        .count()
}

/// The thread count once it is back at or below `baseline`, or the last count
/// seen when it does not get there within [`SETTLE_LIMIT`].
fn settled_count(baseline: usize) -> usize {
    let give_up = Instant::now() + SETTLE_LIMIT;
    loop {
        let count = thread_count();
        if count <= baseline || Instant::now() >= give_up {
            return count;
        }
        std::thread::yield_now();
    }
}

/// Builds pool number `round` and ends it. The round picks the shape: one or
/// two workers, keyed or not, with or without items, ended by `wait`, by a
/// plain drop, or by `cancel` and `finish`.
fn one_pool(round: usize) {
    let n_workers = 1 + round % 2;
    let with_items = (round / 2).is_multiple_of(2);
    let builder = Pool::builder()
        .workers(n_workers)
        .batch_size(4)
        .thread_name(PREFIX);
    let builder = if round.is_multiple_of(3) {
        builder.chunk_by(|item: &u64| *item)
    } else {
        builder
    };
    let pool = builder
        .build(|_ctx: &Ctx, item: u64| {
            std::hint::black_box(item);
            Ok::<(), std::io::Error>(())
        })
        .expect("valid settings");
    if with_items {
        let mut submitter = pool.submitter();
        for item in 0..10 {
            submitter.submit(item).expect("pool open");
        }
    }
    match round / 4 % 3 {
        0 => {
            let report = pool.wait().expect("a clean run");
            assert_eq!(report.processed(), if with_items { 10 } else { 0 });
        }
        1 => drop(pool),
        _ => {
            pool.cancel();
            assert!(pool.join().is_balanced());
        }
    }
}

#[test]
fn ten_thousand_pools_leave_no_thread_behind() {
    let baseline = thread_count();
    // The named count sees a live pool's workers (a thread names itself once
    // it runs, so wait for that): the check after each pool is not vacuous.
    {
        let pool = Pool::builder()
            .workers(2)
            .thread_name(PREFIX)
            .build(|_ctx: &Ctx, _item: u64| Ok::<(), std::io::Error>(()))
            .expect("valid settings");
        while threads::live_threads_named(PREFIX) != Some(2) {
            std::thread::yield_now();
        }
        drop(pool);
    }
    let started = Instant::now();
    for round in 0..N_POOLS {
        one_pool(round);
        assert_eq!(
            threads::live_threads_named(PREFIX),
            Some(0),
            "pool {round} left a worker thread alive"
        );
        if (round + 1) % CHECK_EVERY == 0 {
            let count = settled_count(baseline);
            assert!(
                count <= baseline,
                "{} threads left behind after {} pools",
                count - baseline,
                round + 1
            );
        }
    }
    let count = settled_count(baseline);
    assert!(
        count <= baseline,
        "{} threads left behind",
        count - baseline
    );
    println!("{N_POOLS} pools built and ended in {:?}", started.elapsed());
}
