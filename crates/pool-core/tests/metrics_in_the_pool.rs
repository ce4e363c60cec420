//! Metrics in a running pool: `ctx.metrics()` counters by name and by handle,
//! a live `Pool::metrics` snapshot read from another thread mid-run, final
//! `Report::stats` equal to the report's counts, and what each `MetricsMode`
//! measures.
#![allow(clippy::unwrap_used)] // Tests may unwrap: a panic is a test failure.

mod common;

use std::time::Duration;

use common::{Gate, wait_until};
use pool_core::{Counter, Ctx, MetricsMode, Pool, Worker};
use rstest::rstest;

#[test]
fn a_live_snapshot_is_readable_from_another_thread_mid_run() {
    let gate = Gate::default();
    let worker_gate = gate.clone();
    let pool = Pool::builder()
        .workers(1)
        .batch_size(1)
        .capacity(100)
        .continue_on_error()
        .build(move |ctx: &Ctx, n: u64| {
            ctx.metrics().inc("seen");
            if n == 50 {
                worker_gate.wait();
            }
            if n % 10 == 3 {
                return Err(std::io::Error::other(format!("{n} ends in 3")));
            }
            Ok(())
        })
        .unwrap();
    let mut submitter = pool.submitter();
    for n in 0..100 {
        submitter.submit(n).unwrap();
    }
    drop(submitter);
    // Items 0..50 are finished and item 50 is held at the gate.
    wait_until(|| pool.metrics().finished() == 50);
    let snapshot = std::thread::scope(|scope| scope.spawn(|| pool.metrics()).join().unwrap());
    assert_eq!(snapshot.submitted, 100);
    assert_eq!(snapshot.stats.processed, 45);
    assert_eq!(snapshot.stats.failed, 5);
    assert_eq!(snapshot.error_total, 5);
    assert_eq!(snapshot.queued, 50);
    assert!(snapshot.in_flight >= 50, "{snapshot:?}");
    assert_eq!(snapshot.stats.counters.get("seen"), 51);
    assert!(!snapshot.closed && !snapshot.cancelled);
    gate.open();
    let report = pool.join();
    let stats = report.stats();
    assert_eq!(stats.processed, report.processed());
    assert_eq!(stats.failed, report.failed());
    assert_eq!(stats.dropped, report.dropped());
    assert_eq!((stats.processed, stats.failed), (90, 10));
    assert_eq!(stats.counters.get("seen"), 100);
    assert_eq!(stats.workers, 1);
}

/// A stateful worker that counts with a handle resolved once (on its first
/// item, from its own shard), and by name.
#[derive(Default)]
struct Counting {
    evens: Option<Counter>,
}

impl Worker<u64> for Counting {
    type Error = std::convert::Infallible;

    fn work(&mut self, ctx: &Ctx, n: u64) -> Result<(), Self::Error> {
        let mine = ctx.metrics().add("items", 1);
        // `add` returns this worker's new value, `get` reads it back.
        assert_eq!(ctx.metrics().get("items"), mine);
        let evens = self
            .evens
            .get_or_insert_with(|| ctx.metrics().counter("evens"));
        if n.is_multiple_of(2) {
            evens.inc();
        }
        ctx.metrics().add(String::from("sum"), n);
        Ok(())
    }
}

#[rstest]
fn worker_counters_by_name_and_handle_are_exact(#[values(1, 4)] n_workers: usize) {
    let pool = Pool::builder()
        .workers(n_workers)
        .build_stateful(|_ctx: &Ctx| Counting::default())
        .unwrap();
    let mut submitter = pool.submitter();
    for n in 0..10_000u64 {
        submitter.submit(n).unwrap();
    }
    drop(submitter);
    let report = pool.wait().unwrap();
    let counters = &report.stats().counters;
    assert_eq!(counters.get("items"), 10_000);
    assert_eq!(counters.get("evens"), 5_000);
    assert_eq!(counters.get("sum"), (0..10_000u64).sum::<u64>());
    assert_eq!(counters.get("never used"), 0);
}

#[test]
fn metrics_off_reads_no_clock_and_latency_counts_every_call() {
    let run = |mode: MetricsMode| {
        let pool = Pool::builder()
            .workers(2)
            .metrics(mode)
            .build(|_ctx: &Ctx, n: u64| {
                std::hint::black_box((0..n % 100).sum::<u64>());
                Ok::<(), std::io::Error>(())
            })
            .unwrap();
        let mut submitter = pool.submitter();
        for n in 0..5_000 {
            submitter.submit(n).unwrap();
        }
        drop(submitter);
        pool.wait().unwrap()
    };
    let off = run(MetricsMode::Off);
    let stats = off.stats();
    assert_eq!(stats.processed, 5_000);
    assert_eq!(stats.processing_time_sum, Duration::ZERO);
    assert_eq!(stats.wait_time, Duration::ZERO);
    assert_eq!(stats.init_time, Duration::ZERO);
    assert!(stats.latency.is_none());
    assert!(
        off.workers()
            .iter()
            .all(|w| w.busy.is_zero() && w.idle.is_zero())
    );

    let times = run(MetricsMode::Times);
    assert!(times.stats().processing_time_sum > Duration::ZERO);
    assert!(times.stats().processing_time <= times.stats().processing_time_sum);
    assert!(times.stats().latency.is_none());
    let busy: Duration = times.workers().iter().map(|w| w.busy).sum();
    assert_eq!(busy, times.stats().processing_time_sum);

    let latency = run(MetricsMode::Latency);
    let percentiles = latency.stats().latency.unwrap();
    assert_eq!(percentiles.count, 5_000);
    assert!(percentiles.p50 <= percentiles.p99 && percentiles.p99 <= percentiles.max);
}

#[rstest]
fn final_stats_match_the_report_under_errors_and_cancel(
    #[values(1, 16)] batch_size: usize,
    #[values(false, true)] keyed: bool,
) {
    common::quiet_deliberate_panics();
    let mut builder = Pool::builder().workers(3).batch_size(batch_size);
    if keyed {
        builder = builder.chunk_by(|n: &u64| n % 7);
    }
    let pool = builder
        .build(|_ctx: &Ctx, n: u64| {
            if n == 500 {
                panic!("deliberate panic on {n}");
            }
            if n % 97 == 5 {
                anyhow::bail!("item {n} failed");
            }
            Ok(())
        })
        .unwrap();
    let mut submitter = pool.submitter();
    let mut refused = 0;
    for n in 0..5_000u64 {
        if submitter.submit(n).is_err() {
            refused += 1;
        }
    }
    drop(submitter);
    let report = pool.join();
    let stats = report.stats();
    assert!(report.was_cancelled());
    assert_eq!(report.submitted() + refused, 5_000);
    assert_eq!(stats.processed, report.processed());
    assert_eq!(stats.failed, report.failed());
    assert_eq!(stats.dropped, report.dropped());
    assert_eq!(stats.total_items(), report.submitted());
}

/// An unbatched submitter's items are counted as submitted before a worker
/// can finish them, even while the submitter is still alive (it counts in
/// blocks ahead of its items): a live snapshot never shows more finished
/// than submitted. Its unused count is given back on drop, so the report is
/// exact.
#[rstest]
fn an_unbatched_submitter_counts_its_items_before_they_finish(
    #[values(1, 255, 256, 257, 1000)] n_items: u64,
) {
    let pool = Pool::builder()
        .workers(2)
        .batch_size(1)
        .build(|_ctx: &Ctx, _item: u64| Ok::<(), std::convert::Infallible>(()))
        .expect("valid settings");
    let mut submitter = pool.submitter();
    for item in 0..n_items {
        submitter.submit(item).expect("the pool is open");
    }
    // Every item finished while the submitter is still held.
    wait_until(|| pool.metrics().finished() == n_items);
    let snapshot = pool.metrics();
    assert!(
        snapshot.submitted >= snapshot.finished(),
        "submitted {} < finished {}",
        snapshot.submitted,
        snapshot.finished()
    );
    assert!(
        snapshot.submitted < n_items + 256,
        "counted ahead by at most a block"
    );
    drop(submitter);
    assert_eq!(
        pool.metrics().submitted,
        n_items,
        "the unused block is given back"
    );
    let report = pool.wait().expect("clean run");
    assert_eq!((report.submitted(), report.processed()), (n_items, n_items));
}
