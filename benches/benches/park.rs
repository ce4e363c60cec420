//! The park/wake path: the round trip of one item through an idle pool.
//!
//! `park/round_trip` submits one item (batch 1, so it is pushed at once) and
//! spins until the worker that ran it has stored its sequence number in an
//! atomic; the timing is from `submit` to seeing that store. Two cases:
//!
//! - `parked`: before each item the bench sleeps [`IDLE_GAP`] (untimed), long
//!   enough for every worker to finish its short spin and park, so the round
//!   trip includes a futex wake-up and the worker getting back on a core.
//! - `spinning`: the next item follows as soon as the previous one is seen,
//!   while the worker that ran it is still spinning for more: the cost of the
//!   queue and the hand-off without the wake-up.
//!
//! Pools of 1 and 2 workers, with the default metrics (times, read when a
//! worker goes busy or idle). On a shared machine the parked case mostly
//! measures the scheduler.
//!
//! Run with `cargo bench -p workforce-benches --bench park`.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, criterion_main};
use pool_core::{Ctx, Pool};

/// The untimed pause before each item in the `parked` case. Idle workers spin
/// for a few microseconds before they park, so this is ample.
const IDLE_GAP: Duration = Duration::from_micros(200);

/// Spins before the waiting bench thread starts yielding its core. Keep it
/// short: a woken worker may be put on the bench thread's own core, and with
/// 4096 spins it waited there about 140 µs for the spinning to end, which the
/// `parked` case then reported as wake-up latency.
const SPINS_BEFORE_YIELD: u32 = 64;

/// Waits until `done` holds `seq`.
fn wait_for(done: &AtomicU64, seq: u64) {
    let mut spins = 0_u32;
    while done.load(Ordering::Acquire) != seq {
        if spins < SPINS_BEFORE_YIELD {
            spins += 1;
            std::hint::spin_loop();
        } else {
            std::thread::yield_now();
        }
    }
}

/// The round trip of one item into a pool of 1 and 2 workers, parked and
/// spinning.
fn round_trip(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group("park/round_trip");
    group.sample_size(20);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(2));
    for n_workers in [1_usize, 2] {
        let done = Arc::new(AtomicU64::new(0));
        let worker_done = Arc::clone(&done);
        let pool: Pool<u64> = Pool::builder()
            .workers(n_workers)
            .batch_size(1)
            .build(move |_ctx: &Ctx, seq: u64| {
                worker_done.store(seq, Ordering::Release);
                Ok::<(), Infallible>(())
            })
            .expect("workers and batch size are valid");
        let mut seq = 0_u64;
        for (case, gap) in [("parked", Some(IDLE_GAP)), ("spinning", None)] {
            group.bench_function(
                BenchmarkId::new(case, format!("workers={n_workers}")),
                |bencher| {
                    bencher.iter_custom(|iterations| {
                        let mut submitter = pool.submitter();
                        let mut timed = Duration::ZERO;
                        for _ in 0..iterations {
                            seq += 1;
                            if let Some(gap) = gap {
                                std::thread::sleep(gap);
                            }
                            let started = Instant::now();
                            assert!(
                                submitter.submit(seq).is_ok(),
                                "the pool stays open during the bench"
                            );
                            wait_for(&done, seq);
                            timed += started.elapsed();
                        }
                        timed
                    });
                },
            );
        }
        let report = pool.wait().expect("the worker cannot fail");
        assert_eq!(report.processed(), seq, "every item ran once");
    }
    group.finish();
}

/// The group `criterion_main!` runs. It lives in a private module because
/// `criterion_group!` generates a `pub fn` that cannot carry a doc comment and
/// `missing_docs` is denied for public items.
mod group {
    use super::round_trip;

    criterion::criterion_group!(benches, round_trip);
}

criterion_main!(group::benches);
