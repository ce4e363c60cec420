//! The submit path: what a producer pays to hand items to a running pool.
//!
//! - `submit/submitter`: [`Submitter::submit`] of [`ITEMS`] trivial items at
//!   batch 1, 64 and 100, then [`Submitter::flush`].
//! - `submit/sender`: [`Sender::send`] of [`ITEMS`] single items.
//! - `submit/keyed`: [`Submitter::submit`] into a keyed pool
//!   ([`Builder::chunk_by`](pool_core::Builder::chunk_by), the item is its own
//!   key) at batch 1 and 64: routing plus one open batch per worker.
//!
//! Every pool has [`WORKERS`] workers and room for twice [`ITEMS`], so a
//! producer never blocks for room: the timing is the producer's side only
//! (reserving room, batching, pushing, waking a sleeper), while the workers
//! drain concurrently and contend on the same queues as they would in a run.
//! The pool is built once per benchmark and kept running; after each timed
//! loop the bench waits, untimed, until the workers have finished everything,
//! so every iteration starts from an empty pool whose workers may be asleep.
//!
//! Run with `cargo bench -p workforce-benches --bench submit`.

use std::convert::Infallible;
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_main};
use pool_core::{Ctx, Pool};

/// Items submitted per iteration.
const ITEMS: u64 = 50_000;

/// Worker threads of every pool here (the producer is one more thread).
const WORKERS: usize = 2;

/// Samples per benchmark: few, the timed loop is long.
const SAMPLES: usize = 10;

/// The worker: touches the item and nothing else.
fn trivial(_ctx: &Ctx, item: u64) -> Result<(), Infallible> {
    black_box(item);
    Ok(())
}

/// Waits, untimed, until the pool has finished every item accepted so far.
fn wait_until_drained(pool: &Pool<u64>) {
    while pool.in_flight() > 0 {
        std::thread::yield_now();
    }
}

/// A running unkeyed pool of [`WORKERS`] trivial workers at `batch_size`.
fn running_pool(batch_size: usize) -> Pool<u64> {
    Pool::builder()
        .workers(WORKERS)
        .batch_size(batch_size)
        .capacity(2 * ITEMS as usize)
        .build(trivial)
        .expect("workers, batch size and capacity are valid")
}

/// A running keyed pool (each item is its own key) at `batch_size`.
fn running_keyed_pool(batch_size: usize) -> Pool<u64> {
    Pool::builder()
        .workers(WORKERS)
        .batch_size(batch_size)
        .capacity(2 * ITEMS as usize)
        .chunk_by(|item: &u64| *item)
        .build(trivial)
        .expect("workers, batch size and capacity are valid")
}

/// Times `iterations` rounds of submitting [`ITEMS`] through a [`Submitter`]
/// of `pool` (flush included), draining the pool untimed after each round.
///
/// [`Submitter`]: pool_core::Submitter
fn time_submitter(pool: &Pool<u64>, iterations: u64) -> Duration {
    let mut timed = Duration::ZERO;
    let mut submitter = pool.submitter();
    for _ in 0..iterations {
        let started = Instant::now();
        for item in 0..ITEMS {
            assert!(
                submitter.submit(black_box(item)).is_ok(),
                "the pool stays open during the bench"
            );
        }
        submitter.flush();
        timed += started.elapsed();
        wait_until_drained(pool);
    }
    timed
}

/// `Submitter::submit` into a running unkeyed pool at batch 1, 64 and 100.
fn submitter(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group("submit/submitter");
    group.throughput(Throughput::Elements(ITEMS));
    group.sample_size(SAMPLES);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(2));
    for batch_size in [1_usize, 64, 100] {
        let pool = running_pool(batch_size);
        group.bench_with_input(
            BenchmarkId::new(format!("workers={WORKERS}/batch"), batch_size),
            &pool,
            |bencher, pool| bencher.iter_custom(|iterations| time_submitter(pool, iterations)),
        );
        let report = pool.wait().expect("a trivial worker cannot fail");
        assert!(
            report.is_balanced(),
            "every submitted item is accounted for"
        );
    }
    group.finish();
}

/// `Sender::send` of single items into a running unkeyed pool.
fn sender(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group("submit/sender");
    group.throughput(Throughput::Elements(ITEMS));
    group.sample_size(SAMPLES);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(2));
    let pool = running_pool(1);
    group.bench_function(format!("workers={WORKERS}"), |bencher| {
        let sender = pool.sender();
        bencher.iter_custom(|iterations| {
            let mut timed = Duration::ZERO;
            for _ in 0..iterations {
                let started = Instant::now();
                for item in 0..ITEMS {
                    assert!(
                        sender.send(black_box(item)).is_ok(),
                        "the pool stays open during the bench"
                    );
                }
                timed += started.elapsed();
                wait_until_drained(&pool);
            }
            timed
        });
    });
    let report = pool.wait().expect("a trivial worker cannot fail");
    assert!(report.is_balanced(), "every sent item is accounted for");
    group.finish();
}

/// `Submitter::submit` into a running keyed pool at batch 1 and 64.
fn keyed(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group("submit/keyed");
    group.throughput(Throughput::Elements(ITEMS));
    group.sample_size(SAMPLES);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(2));
    for batch_size in [1_usize, 64] {
        let pool = running_keyed_pool(batch_size);
        group.bench_with_input(
            BenchmarkId::new(format!("workers={WORKERS}/batch"), batch_size),
            &pool,
            |bencher, pool| bencher.iter_custom(|iterations| time_submitter(pool, iterations)),
        );
        let report = pool.wait().expect("a trivial worker cannot fail");
        assert!(
            report.is_balanced(),
            "every submitted item is accounted for"
        );
    }
    group.finish();
}

/// The group `criterion_main!` runs. It lives in a private module because
/// `criterion_group!` generates a `pub fn` that cannot carry a doc comment and
/// `missing_docs` is denied for public items.
mod group {
    use super::{keyed, sender, submitter};

    criterion::criterion_group!(benches, submitter, sender, keyed);
}

criterion_main!(group::benches);
