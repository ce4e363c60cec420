//! Criterion micro benches of the hot path.
//!
//! - `batcher/push`: filling batches with `pool_batch::Batcher`, recycling each
//!   full batch the way pool-core does (no allocation in the steady state).
//! - `pool/submit_wait`: building a pool-core pool is outside the timing; the
//!   timing covers submitting 100,000 trivial items and waiting, at batch 1,
//!   64 and 100.
//!
//! Run with `cargo bench -p workforce-benches --bench micro`. The other bench
//! targets of this crate take one path each: `submit`, `steal`, `park`,
//! `hash`, `counters` and `middleware`; `cargo bench -p workforce-benches`
//! runs them all. The peer comparison lives in the `peer-bench` binary
//! (`cargo xtask bench`).

use std::convert::Infallible;
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use pool_batch::Batcher;
use pool_core::{Ctx, Pool, Worker};

/// Items pushed per batcher iteration.
const BATCHER_ITEMS: u64 = 10_000;

/// Items submitted per pool iteration.
const POOL_ITEMS: u64 = 100_000;

/// Worker threads for the pool bench: the machine's cores.
fn n_workers() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
}

/// Pushes `BATCHER_ITEMS` into a batcher, recycling every full batch.
fn batcher_push(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group("batcher/push");
    group.throughput(Throughput::Elements(BATCHER_ITEMS));
    group.sample_size(20);
    group.warm_up_time(Duration::from_millis(300));
    group.measurement_time(Duration::from_secs(1));
    for batch_size in [1_usize, 64, 100] {
        group.bench_with_input(
            BenchmarkId::from_parameter(batch_size),
            &batch_size,
            |bencher, &batch_size| {
                let mut batcher: Batcher<u64> =
                    Batcher::new(batch_size).expect("batch sizes above are not zero");
                bencher.iter(|| {
                    let mut checksum = 0_u64;
                    for item in 0..BATCHER_ITEMS {
                        if let Some(batch) = batcher.push(black_box(item)) {
                            checksum = checksum.wrapping_add(batch.len() as u64);
                            batcher.recycle(batch);
                        }
                    }
                    if let Some(rest) = batcher.flush() {
                        checksum = checksum.wrapping_add(rest.len() as u64);
                        batcher.recycle(rest);
                    }
                    black_box(checksum)
                });
            },
        );
    }
    group.finish();
}

/// A stateful worker that sums items locally and publishes the sum once.
struct SumWorker {
    /// This worker's wrapping sum.
    local_sum: u64,
    /// Where the sum goes in `finish`.
    total: Arc<AtomicU64>,
}

impl Worker<u64> for SumWorker {
    type Error = Infallible;

    fn work(&mut self, _ctx: &Ctx, item: u64) -> Result<(), Infallible> {
        self.local_sum = self.local_sum.wrapping_add(item);
        Ok(())
    }

    fn finish(&mut self, _ctx: &Ctx) -> Result<(), Infallible> {
        self.total.fetch_add(self.local_sum, Ordering::Relaxed);
        Ok(())
    }
}

/// Submits `POOL_ITEMS` trivial items to a fresh pool and waits, timing only
/// submit..wait (the pool is built before the clock starts).
fn pool_submit_wait(criterion: &mut Criterion) {
    let workers = n_workers();
    let expected: u64 = (0..POOL_ITEMS).fold(0, u64::wrapping_add);
    let mut group = criterion.benchmark_group("pool/submit_wait");
    group.throughput(Throughput::Elements(POOL_ITEMS));
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(2));
    for batch_size in [1_usize, 64, 100] {
        group.bench_with_input(
            BenchmarkId::new(format!("workers={workers}/batch"), batch_size),
            &batch_size,
            |bencher, &batch_size| {
                bencher.iter_custom(|iterations| {
                    let mut timed = Duration::ZERO;
                    for _ in 0..iterations {
                        let total = Arc::new(AtomicU64::new(0));
                        let maker_total = Arc::clone(&total);
                        let pool: Pool<u64> = Pool::builder()
                            .workers(workers)
                            .batch_size(batch_size)
                            .build_stateful(move |_ctx: &Ctx| SumWorker {
                                local_sum: 0,
                                total: Arc::clone(&maker_total),
                            })
                            .expect("workers and batch size are valid");
                        let started = Instant::now();
                        let mut submitter = pool.submitter();
                        for item in 0..POOL_ITEMS {
                            assert!(
                                submitter.submit(item).is_ok(),
                                "the pool is open until wait"
                            );
                        }
                        drop(submitter);
                        let report = pool.wait();
                        timed += started.elapsed();
                        assert!(report.is_ok(), "a summing worker cannot fail");
                        assert_eq!(
                            total.load(Ordering::Relaxed),
                            expected,
                            "every item is summed once"
                        );
                    }
                    timed
                });
            },
        );
    }
    group.finish();
}

/// Runs every micro bench. Written out instead of `criterion_group!` and
/// `criterion_main!` because their generated `pub fn` has no doc comment and
/// the workspace denies `missing_docs`.
fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    batcher_push(&mut criterion);
    pool_submit_wait(&mut criterion);
    criterion.final_summary();
}
