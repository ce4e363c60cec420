//! Counter shards: why each worker counts on a shard of its own.
//!
//! - `counters/one_thread`: one thread adding 1 [`OPS`] times with
//!   [`Shard::inc`] by name (a read-locked hash lookup, then an atomic add),
//!   with a [`Counter`] handle (`Counter::inc`, one atomic add), and with a
//!   plain `AtomicU64::fetch_add`, the floor.
//! - `counters/two_threads`: two threads each adding 1 [`OPS`] times, by name
//!   and by handle on a shard each (the handle taken on the thread that uses
//!   it, as a pool worker does), on two atomics a cache line apart each, and
//!   on one shared atomic. The timing is the slower thread's, from a common
//!   start; the throughput counts both threads' adds.
//!
//! On a machine with other load the two-thread figures vary a lot from run
//! to run; compare them within one run.
//!
//! Run with `cargo bench -p workforce-benches --bench counters`.

use std::hint::black_box;
use std::sync::Barrier;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_main};
use pool_metrics::{Counter, Metrics, Shard};

/// Adds per thread per iteration.
const OPS: u64 = 10_000;

/// The counter's name.
const NAME: &str = "items";

/// An atomic alone on its cache line (128 bytes covers the adjacent-line
/// prefetch of recent x86 cores), so two of them never share one.
#[repr(align(128))]
#[derive(Default)]
struct Padded(AtomicU64);

/// A short group with the given throughput per iteration.
fn short_group<'c>(
    criterion: &'c mut Criterion,
    name: &str,
    adds_per_iteration: u64,
) -> BenchmarkGroup<'c, WallTime> {
    let mut group = criterion.benchmark_group(name);
    group.throughput(Throughput::Elements(adds_per_iteration));
    group.sample_size(20);
    group.warm_up_time(Duration::from_millis(300));
    group.measurement_time(Duration::from_secs(1));
    group
}

/// One thread: by name, by handle, and a plain atomic.
fn one_thread(criterion: &mut Criterion) {
    let metrics = Metrics::new(1);
    let shard: &Shard = metrics.shard(0).expect("one shard was made");
    let counter = shard.counter(NAME);
    let atomic = AtomicU64::new(0);
    let mut group = short_group(criterion, "counters/one_thread", OPS);
    group.bench_function("shard_inc_by_name", |bencher| {
        bencher.iter(|| {
            for _ in 0..OPS {
                black_box(shard.inc(black_box(NAME)));
            }
        });
    });
    group.bench_function("counter_handle_inc", |bencher| {
        bencher.iter(|| {
            for _ in 0..OPS {
                black_box(counter.inc());
            }
        });
    });
    group.bench_function("atomic_fetch_add", |bencher| {
        bencher.iter(|| {
            for _ in 0..OPS {
                black_box(atomic.fetch_add(1, Ordering::Relaxed));
            }
        });
    });
    group.finish();
}

/// Runs `iterations * OPS` calls of the operation `make(index)` builds, on two
/// threads at once (`index` 0 and 1, each building its operation on its own
/// thread), and returns the slower thread's time from a common start.
fn on_two_threads<Make, Op>(iterations: u64, make: Make) -> Duration
where
    Make: Fn(usize) -> Op + Sync,
    Op: FnMut(),
{
    let start = Barrier::new(2);
    std::thread::scope(|scope| {
        let threads = [0_usize, 1].map(|index| {
            let (start, make) = (&start, &make);
            scope.spawn(move || {
                let mut op = make(index);
                start.wait();
                let started = Instant::now();
                for _ in 0..iterations * OPS {
                    op();
                }
                started.elapsed()
            })
        });
        threads
            .into_iter()
            .map(|thread| thread.join().expect("a counting thread does not panic"))
            .max()
            .unwrap_or_default()
    })
}

/// Two threads: shards by name and by handle, padded atomics, one atomic.
fn two_threads(criterion: &mut Criterion) {
    let metrics = Metrics::new(2);
    let shards: [&Shard; 2] = [0, 1].map(|index| metrics.shard(index).expect("two shards"));
    let padded = [Padded::default(), Padded::default()];
    let shared = AtomicU64::new(0);
    let mut group = short_group(criterion, "counters/two_threads", 2 * OPS);
    group.bench_function("shard_inc_by_name/own_shard", |bencher| {
        bencher.iter_custom(|iterations| {
            on_two_threads(iterations, |index| {
                let shard = shards[index];
                move || {
                    black_box(shard.inc(black_box(NAME)));
                }
            })
        });
    });
    group.bench_function("counter_handle_inc/own_shard", |bencher| {
        bencher.iter_custom(|iterations| {
            on_two_threads(iterations, |index| {
                let counter: Counter = shards[index].counter(NAME);
                move || {
                    black_box(counter.inc());
                }
            })
        });
    });
    group.bench_function("atomic_fetch_add/own_line", |bencher| {
        bencher.iter_custom(|iterations| {
            on_two_threads(iterations, |index| {
                let atomic = &padded[index].0;
                move || {
                    black_box(atomic.fetch_add(1, Ordering::Relaxed));
                }
            })
        });
    });
    group.bench_function("atomic_fetch_add/shared", |bencher| {
        bencher.iter_custom(|iterations| {
            on_two_threads(iterations, |_index| {
                let atomic = &shared;
                move || {
                    black_box(atomic.fetch_add(1, Ordering::Relaxed));
                }
            })
        });
    });
    group.finish();
}

/// The group `criterion_main!` runs. It lives in a private module because
/// `criterion_group!` generates a `pub fn` that cannot carry a doc comment and
/// `missing_docs` is denied for public items.
mod group {
    use super::{one_thread, two_threads};

    criterion::criterion_group!(benches, one_thread, two_threads);
}

criterion_main!(group::benches);
