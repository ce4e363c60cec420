//! The middleware stack: what layers add to each item.
//!
//! - `middleware/direct`: one `Worker::work` call on a stack built with
//!   `Layer::layer` around a trivial worker: no layer, 1 and 3 static
//!   pass-through layers, 1 pass-through written with `layer_fn` (one dynamic
//!   call), and `Validator` + `Retry` + `Recovery` (outermost first) with
//!   every item valid and succeeding first time. `Ctx` has no public
//!   constructor, so the timed loop runs inside the single worker of a host
//!   pool, on the `&Ctx` that worker was given; the timing covers only the
//!   calls, not the hand-off to the host.
//! - `middleware/pool`: the same trivial worker bare and under `Validator` +
//!   `Retry` + `Recovery` in a pool of 2 workers: submitting [`POOL_ITEMS`]
//!   items at the default batch size and waiting (building the pool untimed),
//!   to see the stack against the pool's own cost per item.
//!
//! Run with `cargo bench -p workforce-benches --bench middleware`.

use std::convert::Infallible;
use std::hint::black_box;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_main};
use pool_core::{Ctx, Layer, Next, Pool, Worker, layer_fn};
use pool_middleware::{Recovery, Retry, Validator};

/// Items per iteration of `middleware/pool`.
const POOL_ITEMS: u64 = 100_000;

/// Workers of the `middleware/pool` pools.
const POOL_WORKERS: usize = 2;

/// A job for the host pool's worker: runs on that worker with its `&Ctx`.
type HostJob = Box<dyn FnOnce(&Ctx) + Send>;

/// The trivial worker every stack wraps: touches the item and succeeds.
fn trivial(_ctx: &Ctx, item: u64) -> Result<(), Infallible> {
    black_box(item);
    Ok(())
}

/// A layer that only passes items on, to measure what a static layer costs.
#[derive(Debug, Clone, Copy)]
struct PassThrough;

/// The worker [`PassThrough`] makes.
struct PassThroughWorker<W>(W);

impl<W> Layer<W> for PassThrough {
    type Worker = PassThroughWorker<W>;

    fn layer(&self, inner: W) -> PassThroughWorker<W> {
        PassThroughWorker(inner)
    }
}

impl<T, W: Worker<T>> Worker<T> for PassThroughWorker<W> {
    type Error = W::Error;

    #[inline]
    fn work(&mut self, ctx: &Ctx, item: T) -> Result<(), W::Error> {
        self.0.work(ctx, item)
    }

    fn finish(&mut self, ctx: &Ctx) -> Result<(), W::Error> {
        self.0.finish(ctx)
    }
}

/// The built-in stack measured: `Validator` outermost, then `Retry` (3
/// attempts, no delay), then `Recovery`, around `inner`.
fn builtin_stack<W>(inner: W) -> impl Worker<u64>
where
    W: Worker<u64> + 'static,
{
    let validator = Validator::predicate("u64::MAX is reserved", |item: &u64| *item != u64::MAX);
    let retry = Retry::new(3, Duration::ZERO).expect("3 attempts is a valid setting");
    validator.layer(retry.layer(Recovery::new().layer(inner)))
}

/// Runs `job` on the host pool's worker and returns what it returns.
fn on_host<R: Send + 'static>(
    host: &Pool<HostJob>,
    job: impl FnOnce(&Ctx) -> R + Send + 'static,
) -> R {
    let (reply, answer) = mpsc::channel();
    let sent = host.sender().send(Box::new(move |ctx: &Ctx| {
        // The bench thread waits on `answer` until this arrives.
        let _ = reply.send(job(ctx));
    }));
    assert!(sent.is_ok(), "the host pool stays open during the bench");
    answer.recv().expect("the host worker runs every job")
}

/// Benchmarks `iterations` calls of `Worker::work` on the stack `make` builds,
/// on the host's worker thread.
fn time_direct<W, Make>(host: &Pool<HostJob>, make: Make, iterations: u64) -> Duration
where
    W: Worker<u64>,
    Make: Fn() -> W + Send + 'static,
{
    let (took, failures) = on_host(host, move |ctx: &Ctx| {
        let mut worker = make();
        let mut failures = 0_u64;
        let started = Instant::now();
        for item in 0..iterations {
            if worker.work(ctx, black_box(item)).is_err() {
                failures += 1;
            }
        }
        (started.elapsed(), failures)
    });
    assert_eq!(failures, 0, "every item is valid and succeeds");
    took
}

/// One item through stacks of 0, 1 and 3 static layers, a dynamic layer and
/// the built-in stack, called directly on a worker's `&Ctx`.
fn direct(criterion: &mut Criterion) {
    let host: Pool<HostJob> = Pool::builder()
        .workers(1)
        .batch_size(1)
        .build(|ctx: &Ctx, job: HostJob| {
            job(ctx);
            Ok::<(), Infallible>(())
        })
        .expect("one worker at batch 1 is valid");
    let mut group = criterion.benchmark_group("middleware/direct");
    group.throughput(Throughput::Elements(1));
    group.sample_size(20);
    group.warm_up_time(Duration::from_millis(300));
    group.measurement_time(Duration::from_secs(1));
    group.bench_function("layers=0", |bencher| {
        bencher.iter_custom(|iterations| time_direct(&host, || trivial, iterations));
    });
    group.bench_function("layers=1", |bencher| {
        bencher.iter_custom(|iterations| {
            time_direct(&host, || PassThrough.layer(trivial), iterations)
        });
    });
    group.bench_function("layers=3", |bencher| {
        bencher.iter_custom(|iterations| {
            time_direct(
                &host,
                || PassThrough.layer(PassThrough.layer(PassThrough.layer(trivial))),
                iterations,
            )
        });
    });
    group.bench_function("layers=1_layer_fn", |bencher| {
        bencher.iter_custom(|iterations| {
            time_direct(
                &host,
                || {
                    layer_fn(|mut next: Next<'_, u64>, ctx: &Ctx, item: u64| next.work(ctx, item))
                        .layer(trivial)
                },
                iterations,
            )
        });
    });
    group.bench_function("validator_retry_recovery", |bencher| {
        bencher.iter_custom(|iterations| time_direct(&host, || builtin_stack(trivial), iterations));
    });
    group.finish();
    let report = host.wait().expect("the host's jobs cannot fail");
    assert!(report.is_balanced(), "every host job is accounted for");
}

/// Submits `POOL_ITEMS` to `pool` and waits; returns the time from the first
/// submit to the end of `wait`.
fn submit_and_wait(pool: Pool<u64>) -> Duration {
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
    let took = started.elapsed();
    let report = report.expect("every item is valid and succeeds");
    assert_eq!(report.processed(), POOL_ITEMS, "every item is processed");
    took
}

/// `POOL_ITEMS` items through a pool with no layer and with the built-in
/// stack.
fn through_pool(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group("middleware/pool");
    group.throughput(Throughput::Elements(POOL_ITEMS));
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(2));
    group.bench_function(
        BenchmarkId::new("layers=0", format!("workers={POOL_WORKERS}")),
        |bencher| {
            bencher.iter_custom(|iterations| {
                (0..iterations)
                    .map(|_| {
                        let pool = Pool::builder()
                            .workers(POOL_WORKERS)
                            .build(trivial)
                            .expect("the worker count is valid");
                        submit_and_wait(pool)
                    })
                    .sum()
            });
        },
    );
    group.bench_function(
        BenchmarkId::new(
            "validator_retry_recovery",
            format!("workers={POOL_WORKERS}"),
        ),
        |bencher| {
            bencher.iter_custom(|iterations| {
                (0..iterations)
                    .map(|_| {
                        let validator =
                            Validator::predicate("u64::MAX is reserved", |item: &u64| {
                                *item != u64::MAX
                            });
                        let retry =
                            Retry::new(3, Duration::ZERO).expect("3 attempts is a valid setting");
                        let pool = Pool::builder()
                            .workers(POOL_WORKERS)
                            .layer(validator)
                            .layer(retry)
                            .layer(Recovery::new())
                            .build(trivial)
                            .expect("the worker count is valid");
                        submit_and_wait(pool)
                    })
                    .sum()
            });
        },
    );
    group.finish();
}

/// The group `criterion_main!` runs. It lives in a private module because
/// `criterion_group!` generates a `pub fn` that cannot carry a doc comment and
/// `missing_docs` is denied for public items.
mod group {
    use super::{direct, through_pool};

    criterion::criterion_group!(benches, direct, through_pool);
}

criterion_main!(group::benches);
