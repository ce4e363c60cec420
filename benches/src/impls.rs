//! The implementations compared: the sequential floor, the peers and workforce.
//!
//! Every implementation gets the items `0..n` from one producer, one by one, and
//! returns the wrapping sum of the work results. Each times only the streaming
//! part, from the first item handed over to the last result folded in (for a
//! pool: the return of `wait`/`join`). Thread pools and threads are built before
//! the clock starts wherever the peer allows it.

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use pool_core::{Ctx, Layer, MetricsMode, Pool, Worker, WorkerId};
use pool_middleware::{Recovery, Retry, Validator};
use rayon::iter::{IntoParallelIterator as _, ParallelBridge as _, ParallelIterator as _};
use serde::Serialize;

use crate::workload::{N_KEYS, Workload, key_of};

/// Capacity of the crossbeam-channel peer's queue (BENCHMARKS.md: `bounded(100)`).
const CHANNEL_CAPACITY: usize = 100;

/// The batch size workforce uses by default.
pub(crate) const WORKFORCE_DEFAULT_BATCH: usize = 64;

/// Which role an implementation plays in the comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Kind {
    /// One thread, no pool: the floor that `floor = sequential / min(workers, cores)` uses.
    Sequential,
    /// A peer that consumes a stream item by item: candidates for "best peer".
    StreamingPeer,
    /// A peer that sees the whole range up front: an upper bound, for context only.
    NonStreamingPeer,
    /// The pool under test.
    Workforce,
}

/// One implementation of "process items `0..n` with `workers` threads".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Implementation {
    /// A plain loop on the calling thread.
    Sequential,
    /// rayon `par_bridge()` over the producer's iterator.
    RayonParBridge,
    /// rayon `into_par_iter()` over the whole range.
    RayonIntoParIter,
    /// A hand-written pool: crossbeam-channel `bounded(100)` and `workers` threads.
    CrossbeamChannel,
    /// pool-core with a stateful summing worker at this batch size.
    Workforce {
        /// Items per batch; 1 is unbatched.
        batch_size: usize,
        /// Whether items are routed by key (`chunk_by(x % 1024)`) instead of
        /// stolen.
        keyed: bool,
        /// What the pool measures (`Builder::metrics`).
        metrics: MetricsMode,
        /// The middleware stack around the worker.
        layers: Layers,
    },
}

/// Which middleware stack wraps the workforce worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Layers {
    /// No middleware.
    None,
    /// Three minimal pass-through layers: the cost of layering itself.
    PassThrough,
    /// `Recovery`, `Validator` and `Retry` from pool-middleware (no clock reads
    /// on success).
    BuiltIn,
}

/// A work-stealing workforce pool at `batch_size`.
const fn stealing(batch_size: usize) -> Implementation {
    Implementation::Workforce {
        batch_size,
        keyed: false,
        metrics: MetricsMode::Times,
        layers: Layers::None,
    }
}

/// A keyed workforce pool at `batch_size`.
const fn keyed(batch_size: usize) -> Implementation {
    Implementation::Workforce {
        batch_size,
        keyed: true,
        metrics: MetricsMode::Times,
        layers: Layers::None,
    }
}

/// The default pool with a 3-layer middleware stack.
const fn layered(layers: Layers) -> Implementation {
    Implementation::Workforce {
        batch_size: WORKFORCE_DEFAULT_BATCH,
        keyed: false,
        metrics: MetricsMode::Times,
        layers,
    }
}

/// A work-stealing workforce pool at the default batch size measuring `metrics`.
const fn measuring(metrics: MetricsMode) -> Implementation {
    Implementation::Workforce {
        batch_size: WORKFORCE_DEFAULT_BATCH,
        keyed: false,
        metrics,
        layers: Layers::None,
    }
}

/// The implementations of the uniform workloads (W1, W2), in the order they are
/// interleaved within a repetition.
pub(crate) const ALL_IMPLEMENTATIONS: [Implementation; 7] = [
    Implementation::Sequential,
    Implementation::RayonParBridge,
    Implementation::RayonIntoParIter,
    Implementation::CrossbeamChannel,
    stealing(1),
    stealing(WORKFORCE_DEFAULT_BATCH),
    stealing(100),
];

/// W1 also measures the cost of metrics: off and latency percentiles beside the
/// default (times).
const W1_IMPLEMENTATIONS: [Implementation; 11] = [
    Implementation::Sequential,
    Implementation::RayonParBridge,
    Implementation::RayonIntoParIter,
    Implementation::CrossbeamChannel,
    stealing(1),
    measuring(MetricsMode::Off),
    stealing(WORKFORCE_DEFAULT_BATCH),
    measuring(MetricsMode::Latency),
    layered(Layers::PassThrough),
    layered(Layers::BuiltIn),
    stealing(100),
];

/// W4: routing cost, keyed against stealing at each batch size.
const KEYED_IMPLEMENTATIONS: [Implementation; 9] = [
    Implementation::Sequential,
    Implementation::RayonParBridge,
    Implementation::CrossbeamChannel,
    stealing(1),
    keyed(1),
    stealing(WORKFORCE_DEFAULT_BATCH),
    keyed(WORKFORCE_DEFAULT_BATCH),
    stealing(100),
    keyed(100),
];

/// W5: uneven items, work stealing against static (keyed) routing.
const SKEWED_IMPLEMENTATIONS: [Implementation; 8] = [
    Implementation::Sequential,
    Implementation::RayonParBridge,
    Implementation::RayonIntoParIter,
    Implementation::CrossbeamChannel,
    stealing(1),
    stealing(WORKFORCE_DEFAULT_BATCH),
    keyed(1),
    keyed(WORKFORCE_DEFAULT_BATCH),
];

/// The implementations measured on `workload`.
pub(crate) fn implementations_for(workload: &Workload) -> &'static [Implementation] {
    if workload.keyed {
        &KEYED_IMPLEMENTATIONS
    } else if workload.skew.is_some() {
        &SKEWED_IMPLEMENTATIONS
    } else if workload.rounds == 0 {
        &W1_IMPLEMENTATIONS
    } else {
        &ALL_IMPLEMENTATIONS
    }
}

/// What one timed run produced.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Run {
    /// Time from the first item handed over to the last result folded in.
    pub(crate) elapsed: Duration,
    /// The wrapping sum of all work results.
    pub(crate) sum: u64,
}

impl Implementation {
    /// The name shown in tables and progress lines.
    pub(crate) fn name(self) -> String {
        match self {
            Self::Sequential => "sequential".to_owned(),
            Self::RayonParBridge => "rayon par_bridge".to_owned(),
            Self::RayonIntoParIter => "rayon into_par_iter".to_owned(),
            Self::CrossbeamChannel => "crossbeam-channel bounded(100)".to_owned(),
            Self::Workforce {
                batch_size,
                keyed,
                metrics,
                layers,
            } => format!(
                "workforce{} batch={batch_size}{}{}{}",
                if keyed { " keyed" } else { "" },
                if batch_size == WORKFORCE_DEFAULT_BATCH {
                    " (default)"
                } else {
                    ""
                },
                match metrics {
                    MetricsMode::Off => " metrics=off",
                    MetricsMode::Latency => " metrics=latency",
                    _ => "",
                },
                match layers {
                    Layers::None => "",
                    Layers::PassThrough => " +3 pass-through layers",
                    Layers::BuiltIn => " +recovery,validator,retry",
                }
            ),
        }
    }

    /// The role this implementation plays in the comparison.
    pub(crate) fn kind(self) -> Kind {
        match self {
            Self::Sequential => Kind::Sequential,
            Self::RayonParBridge | Self::CrossbeamChannel => Kind::StreamingPeer,
            Self::RayonIntoParIter => Kind::NonStreamingPeer,
            Self::Workforce { .. } => Kind::Workforce,
        }
    }

    /// The workforce batch size, for workforce implementations.
    pub(crate) fn batch_size(self) -> Option<usize> {
        match self {
            Self::Workforce { batch_size, .. } => Some(batch_size),
            _ => None,
        }
    }

    /// Whether this is a keyed workforce pool.
    pub(crate) fn is_keyed(self) -> bool {
        matches!(self, Self::Workforce { keyed: true, .. })
    }

    /// Whether this is a workforce pool with the default metrics (times).
    pub(crate) fn has_default_metrics(self) -> bool {
        matches!(
            self,
            Self::Workforce {
                metrics: MetricsMode::Times,
                layers: Layers::None,
                ..
            }
        )
    }

    /// The middleware stack of a workforce pool, if any.
    pub(crate) fn layers(self) -> Option<Layers> {
        match self {
            Self::Workforce { layers, .. } if layers != Layers::None => Some(layers),
            _ => None,
        }
    }

    /// The metrics mode of a workforce pool.
    pub(crate) fn metrics_mode(self) -> Option<MetricsMode> {
        match self {
            Self::Workforce { metrics, .. } => Some(metrics),
            _ => None,
        }
    }

    /// Runs `workload` once with `workers` threads and times it. `rayon_pool`
    /// is built once per worker count, outside the timing.
    pub(crate) fn run(
        self,
        workload: &Workload,
        workers: usize,
        rayon_pool: &rayon::ThreadPool,
    ) -> anyhow::Result<Run> {
        match self {
            Self::Sequential => Ok(run_sequential(workload)),
            Self::RayonParBridge => Ok(run_rayon_par_bridge(workload, rayon_pool)),
            Self::RayonIntoParIter => Ok(run_rayon_into_par_iter(workload, rayon_pool)),
            Self::CrossbeamChannel => run_crossbeam_channel(workload, workers),
            Self::Workforce {
                batch_size,
                keyed,
                metrics,
                layers,
            } => run_workforce(workload, workers, batch_size, keyed, metrics, layers),
        }
    }
}

/// The floor: one thread, no hand-over. `black_box` on each item stops the
/// compiler from vectorising or folding the loop into a formula, so this
/// measures one item at a time the way a producer hands them over.
fn run_sequential(workload: &Workload) -> Run {
    let workload = black_box(*workload);
    let n_items = black_box(workload.n_items);
    let started = Instant::now();
    let mut sum = 0_u64;
    for item in 0..n_items {
        sum = sum.wrapping_add(workload.work(black_box(item)));
    }
    let elapsed = started.elapsed();
    Run { elapsed, sum }
}

/// rayon `par_bridge()`: the streaming peer. The iterator is shared by the
/// pool's threads, which each take items from it and reduce locally.
fn run_rayon_par_bridge(workload: &Workload, rayon_pool: &rayon::ThreadPool) -> Run {
    let workload = *workload;
    let n_items = workload.n_items;
    let started = Instant::now();
    let sum = rayon_pool.install(|| {
        (0..n_items)
            .par_bridge()
            .map(|item| workload.work(item))
            .reduce(|| 0, u64::wrapping_add)
    });
    Run {
        elapsed: started.elapsed(),
        sum,
    }
}

/// rayon `into_par_iter()`: splits the known range up front, so it is not a
/// streaming pool; shown as an upper bound for context.
fn run_rayon_into_par_iter(workload: &Workload, rayon_pool: &rayon::ThreadPool) -> Run {
    let workload = *workload;
    let n_items = workload.n_items;
    let started = Instant::now();
    let sum = rayon_pool.install(|| {
        (0..n_items)
            .into_par_iter()
            .map(|item| workload.work(item))
            .reduce(|| 0, u64::wrapping_add)
    });
    Run {
        elapsed: started.elapsed(),
        sum,
    }
}

/// The hand-written Go-style pool: a `bounded(100)` channel and `workers`
/// threads, each summing locally and returning its sum through `join`.
/// The threads are spawned and waiting on a barrier before the clock starts.
fn run_crossbeam_channel(workload: &Workload, workers: usize) -> anyhow::Result<Run> {
    let workload_copy = *workload;
    let (sender, receiver) = crossbeam_channel::bounded::<u64>(CHANNEL_CAPACITY);
    let start_line = Arc::new(Barrier::new(workers + 1));
    let handles: Vec<_> = (0..workers)
        .map(|_| {
            let receiver = receiver.clone();
            let start_line = Arc::clone(&start_line);
            std::thread::spawn(move || {
                start_line.wait();
                let mut local_sum = 0_u64;
                for item in receiver {
                    local_sum = local_sum.wrapping_add(workload_copy.work(item));
                }
                local_sum
            })
        })
        .collect();
    drop(receiver);
    start_line.wait();

    let started = Instant::now();
    for item in 0..workload.n_items {
        sender
            .send(item)
            .context("crossbeam-channel workers hung up early")?;
    }
    drop(sender);
    let mut sum = 0_u64;
    for handle in handles {
        let local_sum = handle
            .join()
            .map_err(|_| anyhow!("a crossbeam-channel worker panicked"))?;
        sum = sum.wrapping_add(local_sum);
    }
    Ok(Run {
        elapsed: started.elapsed(),
        sum,
    })
}

/// A stateful pool-core worker: sums its results locally and adds the total
/// into the shared counter once, in `finish`, so no shared write happens per item.
/// On keyed workloads it also checks that each key's items come in increasing
/// order (one producer submits `0..n` in order), at the same cost for keyed and
/// stealing pools; only keyed pools promise that order.
struct SumWorker {
    /// This worker's wrapping sum of work results.
    local_sum: u64,
    /// The workload, for the per-item work.
    workload: Workload,
    /// Per key: 1 + the last item seen (0: none yet); empty unless keyed.
    last: Vec<u64>,
    /// Items that came before an earlier item of their key.
    out_of_order: u64,
    /// Where the local sum and the disorder count go when the worker finishes.
    total: Arc<AtomicU64>,
    disorder: Arc<AtomicU64>,
}

impl Worker<u64> for SumWorker {
    type Error = std::convert::Infallible;

    #[inline]
    fn work(&mut self, _ctx: &Ctx, item: u64) -> Result<(), Self::Error> {
        if let Some(last) = self.last.get_mut(key_of(item) as usize) {
            if *last > item {
                self.out_of_order += 1;
            }
            *last = item + 1;
        }
        self.local_sum = self.local_sum.wrapping_add(self.workload.work(item));
        Ok(())
    }

    fn finish(&mut self, _ctx: &Ctx) -> Result<(), Self::Error> {
        // `fetch_add` wraps on overflow, matching the wrapping sums elsewhere.
        self.total.fetch_add(self.local_sum, Ordering::Relaxed);
        self.disorder
            .fetch_add(self.out_of_order, Ordering::Relaxed);
        Ok(())
    }
}

/// A minimal middleware: counts the items it passes on (per worker) and hands
/// each to the next layer, so a stack of them measures the cost of layering.
struct PassThrough;

/// The worker a [`PassThrough`] layer wraps around `W`.
struct PassThroughWorker<W> {
    /// Items passed on.
    passed: u64,
    /// The rest of the stack.
    inner: W,
}

impl<W> Layer<W> for PassThrough {
    type Worker = PassThroughWorker<W>;

    fn layer(&self, inner: W) -> PassThroughWorker<W> {
        PassThroughWorker { passed: 0, inner }
    }
}

impl<T, W: Worker<T>> Worker<T> for PassThroughWorker<W> {
    type Error = W::Error;

    #[inline]
    fn work(&mut self, ctx: &Ctx, item: T) -> Result<(), W::Error> {
        self.passed += 1;
        self.inner.work(ctx, item)
    }

    fn finish(&mut self, ctx: &Ctx) -> Result<(), W::Error> {
        black_box(self.passed);
        self.inner.finish(ctx)
    }
}

/// workforce: build the pool (threads start here, untimed), then time from the
/// first `submit` to the return of `wait`.
fn run_workforce(
    workload: &Workload,
    workers: usize,
    batch_size: usize,
    keyed: bool,
    metrics: MetricsMode,
    layers: Layers,
) -> anyhow::Result<Run> {
    let total = Arc::new(AtomicU64::new(0));
    let disorder = Arc::new(AtomicU64::new(0));
    let (maker_total, maker_disorder) = (Arc::clone(&total), Arc::clone(&disorder));
    let workload_copy = *workload;
    let mut builder = Pool::builder()
        .workers(workers)
        .batch_size(batch_size)
        .metrics(metrics);
    if keyed {
        builder = builder.chunk_by(|item: &u64| key_of(*item));
    }
    let maker = move |_id: WorkerId| SumWorker {
        local_sum: 0,
        workload: workload_copy,
        last: if workload_copy.keyed {
            vec![0; N_KEYS as usize]
        } else {
            Vec::new()
        },
        out_of_order: 0,
        total: Arc::clone(&maker_total),
        disorder: Arc::clone(&maker_disorder),
    };
    let built = match layers {
        Layers::None => builder.build_stateful(maker),
        Layers::PassThrough => builder
            .layer(PassThrough)
            .layer(PassThrough)
            .layer(PassThrough)
            .build_stateful(maker),
        Layers::BuiltIn => builder
            .layer(Recovery::new())
            .layer(Validator::predicate("below 2^62", |item: &u64| {
                *item < 1 << 62
            }))
            .layer(
                Retry::new(3, Duration::from_millis(1))
                    .map_err(|error| anyhow!("retry settings: {error}"))?,
            )
            .build_stateful(maker),
    };
    let pool: Pool<u64> =
        built.map_err(|error| anyhow!("building the workforce pool failed: {error}"))?;

    let started = Instant::now();
    let mut submitter = pool.submitter();
    for item in 0..workload.n_items {
        if submitter.submit(item).is_err() {
            bail!("the workforce pool closed while item {item} was being submitted");
        }
    }
    drop(submitter);
    let report = pool
        .wait()
        .map_err(|error| anyhow!("the workforce pool failed: {error}"))?;
    let elapsed = started.elapsed();

    if report.processed() != workload.n_items {
        bail!(
            "workforce batch={batch_size} processed {} of {} items",
            report.processed(),
            workload.n_items
        );
    }
    let out_of_order = disorder.load(Ordering::Relaxed);
    if keyed && out_of_order > 0 {
        bail!("workforce keyed batch={batch_size}: {out_of_order} items came out of key order");
    }
    Ok(Run {
        elapsed,
        sum: total.load(Ordering::Relaxed),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small workload so every implementation can be checked quickly.
    const TINY: Workload = Workload {
        id: "T",
        name: "tiny",
        n_items: 10_000,
        rounds: 3,
        skew: None,
        keyed: false,
    };

    #[test]
    fn every_implementation_reproduces_the_sequential_sum() {
        let expected = TINY.expected_sum();
        let rayon_pool = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .expect("a 3-thread rayon pool builds");
        let skewed = Workload {
            skew: Some(crate::workload::Skew {
                every: 10,
                factor: 5,
            }),
            ..TINY
        };
        let keyed = Workload {
            keyed: true,
            ..TINY
        };
        // Zero rounds selects W1's list: metrics modes and the layered stack.
        let overhead = Workload { rounds: 0, ..TINY };
        for workload in [TINY, skewed, keyed, overhead] {
            let expected = workload.expected_sum();
            for implementation in implementations_for(&workload) {
                let run = implementation
                    .run(&workload, 3, &rayon_pool)
                    .expect("the implementation runs");
                assert_eq!(run.sum, expected, "{} on {workload}", implementation.name());
            }
        }
        assert_ne!(skewed.expected_sum(), expected);
    }
}
