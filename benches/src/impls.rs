//! The implementations compared: the sequential floor, the peers and workforce.
//!
//! Every implementation gets the items `0..n` from the workload's producer
//! threads (one, except W6) and returns the wrapping sum of the work results.
//! Each times only the streaming part, from the first item handed over to the
//! last result folded in (for a pool: the return of `wait`/`join`). Thread
//! pools and threads are built before the clock starts wherever the peer
//! allows it. The peers themselves are in [`crate::peers`].

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{anyhow, bail};
use pool_core::{Ctx, Layer, MetricsMode, Pool, Worker};
use pool_middleware::{Recovery, Retry, Validator};
use serde::Serialize;

use crate::peers::{self, produce, produce_iter};
use crate::workload::{N_KEYS, QUICK_DIVISOR, Run, Task, Workload, key_of};

/// The batch size workforce uses by default.
pub(crate) const WORKFORCE_DEFAULT_BATCH: usize = pool_core::DEFAULT_BATCH_SIZE;

/// Items the thread-per-item peer processes (divided by the quick divisor
/// under `--quick`). A thread per item costs 50–150 µs here, so the
/// workloads' full counts would take minutes, and even BENCHMARKS.md's 50,000
/// items take 4–7 s a run, over two minutes across the twelve tables. The
/// per-item cost does not depend on the count, so 10,000 items measure it as
/// well (a run still lasts about a second).
pub(crate) const THREAD_PER_ITEM_ITEMS: u64 = 10_000;

/// The item count BENCHMARKS.md names for thread-per-item, quoted in the notes.
pub(crate) const THREAD_PER_ITEM_BENCHMARKS_MD_ITEMS: u64 = 50_000;

/// Timed repetitions the thread-per-item peer gets at most unless `--reps` is
/// given (it also skips the warm-up): each of its runs takes seconds.
pub(crate) const THREAD_PER_ITEM_MAX_REPS: usize = 3;

/// Which role an implementation plays in the comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Kind {
    /// One thread, no pool: the floor is `sequential / min(workers, cores)`.
    Sequential,
    /// The range split up front over `min(workers, cores)` threads: W3's floor.
    StaticSplit,
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
    /// The range cut into `min(workers, cores)` parts, a thread each (W3's floor).
    StaticSplit,
    /// rayon `par_bridge()` over the producer's iterator.
    RayonParBridge,
    /// rayon `into_par_iter()` over the whole range.
    RayonIntoParIter,
    /// A hand-written pool: crossbeam-channel `bounded(100)` and `workers` threads.
    CrossbeamChannel,
    /// The threadpool crate, `execute` per item.
    ThreadPool,
    /// The textbook pool: std `mpsc::sync_channel(100)` behind `Arc<Mutex<_>>`.
    StdMpsc,
    /// A scoped thread per item, at most `workers` alive (errgroup `SetLimit`).
    ThreadPerItem,
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
        /// How the producers hand items over.
        via: Via,
    },
}

/// Which middleware stack wraps the workforce worker (`none`, `passthrough`,
/// `builtin` in the report).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Layers {
    /// No middleware.
    None,
    /// Three minimal pass-through layers: the cost of layering itself.
    PassThrough,
    /// `Recovery`, `Validator` and `Retry` from pool-middleware (no clock reads
    /// on success).
    BuiltIn,
}

/// How workforce's producers hand items over (`submitters`, `senders`,
/// `one_submitter`, `submit_iter` in the report).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Via {
    /// One batching `Submitter` per producer thread of the workload.
    Submitters,
    /// One clone of the pool's `Sender` per producer thread (unbatched sends).
    Senders,
    /// A single `Submitter` on one producer thread, whatever the workload says:
    /// W6's single-producer baseline.
    OneSubmitter,
    /// One `Submitter` per producer fed the whole range with `submit_iter`
    /// (the same iterator `par_bridge` gets) instead of one `submit` per item.
    #[serde(rename = "submit_iter")]
    Iter,
    /// No producer: the pool's workers pull the range themselves with
    /// `Pool::run` (pull mode).
    #[serde(rename = "run")]
    Pull,
}

/// A work-stealing workforce pool at `batch_size`.
const fn stealing(batch_size: usize) -> Implementation {
    Implementation::Workforce {
        batch_size,
        keyed: false,
        metrics: MetricsMode::Times,
        layers: Layers::None,
        via: Via::Submitters,
    }
}

/// A keyed workforce pool at `batch_size`.
const fn keyed(batch_size: usize) -> Implementation {
    Implementation::Workforce {
        batch_size,
        keyed: true,
        metrics: MetricsMode::Times,
        layers: Layers::None,
        via: Via::Submitters,
    }
}

/// The default pool with a 3-layer middleware stack.
const fn layered(layers: Layers) -> Implementation {
    Implementation::Workforce {
        batch_size: WORKFORCE_DEFAULT_BATCH,
        keyed: false,
        metrics: MetricsMode::Times,
        layers,
        via: Via::Submitters,
    }
}

/// A work-stealing workforce pool at the default batch size measuring `metrics`.
const fn measuring(metrics: MetricsMode) -> Implementation {
    Implementation::Workforce {
        batch_size: WORKFORCE_DEFAULT_BATCH,
        keyed: false,
        metrics,
        layers: Layers::None,
        via: Via::Submitters,
    }
}

/// A work-stealing pool at `batch_size` fed with `Submitter::submit_iter`.
const fn iterated(batch_size: usize) -> Implementation {
    Implementation::Workforce {
        batch_size,
        keyed: false,
        metrics: MetricsMode::Times,
        layers: Layers::None,
        via: Via::Iter,
    }
}

/// A work-stealing pool at `batch_size` whose workers pull the range
/// themselves (`Pool::run`).
const fn pulled(batch_size: usize) -> Implementation {
    Implementation::Workforce {
        batch_size,
        keyed: false,
        metrics: MetricsMode::Times,
        layers: Layers::None,
        via: Via::Pull,
    }
}

/// The default pool fed through `via`.
const fn fed_via(via: Via) -> Implementation {
    Implementation::Workforce {
        batch_size: WORKFORCE_DEFAULT_BATCH,
        keyed: false,
        metrics: MetricsMode::Times,
        layers: Layers::None,
        via,
    }
}

/// The implementations of the uniform CPU-bound workload (W2), in the order
/// they are interleaved within a repetition.
pub(crate) const ALL_IMPLEMENTATIONS: [Implementation; 13] = [
    Implementation::Sequential,
    Implementation::RayonParBridge,
    Implementation::RayonIntoParIter,
    Implementation::CrossbeamChannel,
    Implementation::ThreadPool,
    Implementation::StdMpsc,
    Implementation::ThreadPerItem,
    stealing(1),
    stealing(WORKFORCE_DEFAULT_BATCH),
    stealing(100),
    iterated(WORKFORCE_DEFAULT_BATCH),
    iterated(100),
    pulled(WORKFORCE_DEFAULT_BATCH),
];

/// W1 also measures the cost of metrics: off and latency percentiles beside the
/// default (times), and of two middleware stacks.
const W1_IMPLEMENTATIONS: [Implementation; 17] = [
    Implementation::Sequential,
    Implementation::RayonParBridge,
    Implementation::RayonIntoParIter,
    Implementation::CrossbeamChannel,
    Implementation::ThreadPool,
    Implementation::StdMpsc,
    Implementation::ThreadPerItem,
    stealing(1),
    measuring(MetricsMode::Off),
    stealing(WORKFORCE_DEFAULT_BATCH),
    measuring(MetricsMode::Latency),
    layered(Layers::PassThrough),
    layered(Layers::BuiltIn),
    stealing(100),
    iterated(WORKFORCE_DEFAULT_BATCH),
    iterated(100),
    pulled(WORKFORCE_DEFAULT_BATCH),
];

/// W3: the seed's task; the static split is the floor.
const SEED_IMPLEMENTATIONS: [Implementation; 11] = [
    Implementation::Sequential,
    Implementation::StaticSplit,
    Implementation::RayonParBridge,
    Implementation::RayonIntoParIter,
    Implementation::CrossbeamChannel,
    Implementation::ThreadPool,
    Implementation::StdMpsc,
    Implementation::ThreadPerItem,
    stealing(1),
    stealing(WORKFORCE_DEFAULT_BATCH),
    stealing(100),
];

/// W4: routing cost, keyed against stealing at each batch size.
const KEYED_IMPLEMENTATIONS: [Implementation; 12] = [
    Implementation::Sequential,
    Implementation::RayonParBridge,
    Implementation::CrossbeamChannel,
    Implementation::ThreadPool,
    Implementation::StdMpsc,
    Implementation::ThreadPerItem,
    stealing(1),
    keyed(1),
    stealing(WORKFORCE_DEFAULT_BATCH),
    keyed(WORKFORCE_DEFAULT_BATCH),
    stealing(100),
    keyed(100),
];

/// W5: uneven items, work stealing against static (keyed) routing.
const SKEWED_IMPLEMENTATIONS: [Implementation; 13] = [
    Implementation::Sequential,
    Implementation::RayonParBridge,
    Implementation::RayonIntoParIter,
    Implementation::CrossbeamChannel,
    Implementation::ThreadPool,
    Implementation::StdMpsc,
    Implementation::ThreadPerItem,
    stealing(1),
    stealing(WORKFORCE_DEFAULT_BATCH),
    stealing(100),
    keyed(1),
    keyed(WORKFORCE_DEFAULT_BATCH),
    pulled(WORKFORCE_DEFAULT_BATCH),
];

/// W6: several producers. rayon is left out: `par_bridge` bridges one
/// iterator (one producer) and `into_par_iter` needs the whole range up front,
/// so neither can take items from 4 producer threads.
const MULTI_PRODUCER_IMPLEMENTATIONS: [Implementation; 10] = [
    Implementation::Sequential,
    Implementation::CrossbeamChannel,
    Implementation::ThreadPool,
    Implementation::StdMpsc,
    Implementation::ThreadPerItem,
    stealing(1),
    stealing(WORKFORCE_DEFAULT_BATCH),
    stealing(100),
    fed_via(Via::Senders),
    fed_via(Via::OneSubmitter),
];

/// Why W6 has no rayon rows; printed under its table.
pub(crate) const MULTI_PRODUCER_OMITTED: &str = "rayon omitted: par_bridge bridges one iterator (one producer) \
     and into_par_iter needs the whole range, so neither takes items from several producer threads";

/// The implementations measured on `workload`.
pub(crate) fn implementations_for(workload: &Workload) -> &'static [Implementation] {
    if workload.producers > 1 {
        &MULTI_PRODUCER_IMPLEMENTATIONS
    } else if workload.task == Task::Seed {
        &SEED_IMPLEMENTATIONS
    } else if workload.task == Task::HeavyTail {
        // W8: the peers and rows of W2.
        &ALL_IMPLEMENTATIONS
    } else if workload.keyed {
        &KEYED_IMPLEMENTATIONS
    } else if workload.skew.is_some() {
        &SKEWED_IMPLEMENTATIONS
    } else if workload.rounds == 0 {
        &W1_IMPLEMENTATIONS
    } else {
        &ALL_IMPLEMENTATIONS
    }
}

/// Where a run happens: the worker count, the machine's cores and the rayon
/// pool built for that worker count (outside the timing).
#[derive(Clone, Copy)]
pub(crate) struct Setting<'pool> {
    /// Worker threads asked for.
    pub(crate) workers: usize,
    /// Cores of the machine.
    pub(crate) cores: usize,
    /// A rayon pool with `workers` threads.
    pub(crate) rayon_pool: &'pool rayon::ThreadPool,
}

impl Implementation {
    /// The name shown in tables, charts and progress lines.
    pub(crate) fn name(self) -> String {
        match self {
            Self::Sequential => "sequential".to_owned(),
            Self::StaticSplit => "static split (floor)".to_owned(),
            Self::RayonParBridge => "rayon par_bridge".to_owned(),
            Self::RayonIntoParIter => "rayon into_par_iter".to_owned(),
            Self::CrossbeamChannel => "crossbeam-channel bounded(100)".to_owned(),
            Self::ThreadPool => "threadpool execute".to_owned(),
            Self::StdMpsc => "std sync_channel(100)+Mutex".to_owned(),
            Self::ThreadPerItem => "thread per item (<= workers alive)".to_owned(),
            Self::Workforce {
                batch_size,
                keyed,
                metrics,
                layers,
                via,
            } => {
                if via == Via::Senders {
                    return "workforce cloned Sender per producer".to_owned();
                }
                format!(
                    "workforce{} batch={batch_size}{}{}{}{}",
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
                    },
                    match via {
                        Via::OneSubmitter => ", 1 producer",
                        Via::Iter => " submit_iter",
                        Via::Pull => " run (pull)",
                        Via::Submitters | Via::Senders => "",
                    }
                )
            }
        }
    }

    /// The role this implementation plays in the comparison.
    pub(crate) fn kind(self) -> Kind {
        match self {
            Self::Sequential => Kind::Sequential,
            Self::StaticSplit => Kind::StaticSplit,
            Self::RayonParBridge
            | Self::CrossbeamChannel
            | Self::ThreadPool
            | Self::StdMpsc
            | Self::ThreadPerItem => Kind::StreamingPeer,
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

    /// Whether this is a workforce pool as the targets mean it: default metrics
    /// (times), no layers, one `Submitter` per producer.
    pub(crate) fn is_plain_workforce(self) -> bool {
        matches!(
            self,
            Self::Workforce {
                metrics: MetricsMode::Times,
                layers: Layers::None,
                via: Via::Submitters,
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

    /// How a workforce pool is fed.
    pub(crate) fn via(self) -> Option<Via> {
        match self {
            Self::Workforce { via, .. } => Some(via),
            _ => None,
        }
    }

    /// Items this implementation processes of `workload` (already reduced by
    /// `--quick` when `quick`): all of them, except for thread-per-item.
    pub(crate) fn n_items(self, workload: &Workload, quick: bool) -> u64 {
        match self {
            Self::ThreadPerItem => {
                let cap = if quick {
                    THREAD_PER_ITEM_ITEMS / QUICK_DIVISOR
                } else {
                    THREAD_PER_ITEM_ITEMS
                };
                workload.n_items.min(cap)
            }
            _ => workload.n_items,
        }
    }

    /// Timed repetitions at most unless `--reps` is given, if this
    /// implementation is capped.
    pub(crate) fn max_reps(self) -> Option<usize> {
        (self == Self::ThreadPerItem).then_some(THREAD_PER_ITEM_MAX_REPS)
    }

    /// Whether an untimed warm-up run is worth its time.
    pub(crate) fn warms_up(self) -> bool {
        self != Self::ThreadPerItem
    }

    /// Runs `workload` once in `setting` and times it. The caller passes the
    /// workload with this implementation's item count ([`Self::n_items`]).
    pub(crate) fn run(self, workload: &Workload, setting: &Setting<'_>) -> anyhow::Result<Run> {
        let workers = setting.workers;
        match self {
            Self::Sequential => Ok(peers::run_sequential(workload)),
            Self::StaticSplit => {
                peers::run_static_split(workload, workers.min(setting.cores).max(1))
            }
            Self::RayonParBridge => Ok(peers::run_rayon_par_bridge(workload, setting.rayon_pool)),
            Self::RayonIntoParIter => {
                Ok(peers::run_rayon_into_par_iter(workload, setting.rayon_pool))
            }
            Self::CrossbeamChannel => peers::run_crossbeam_channel(workload, workers),
            Self::ThreadPool => peers::run_threadpool(workload, workers),
            Self::StdMpsc => peers::run_std_mpsc(workload, workers),
            Self::ThreadPerItem => peers::run_thread_per_item(workload, workers),
            Self::Workforce {
                batch_size,
                keyed,
                metrics,
                layers,
                via,
            } => run_workforce(
                workload,
                workers,
                WorkforceSettings {
                    batch_size,
                    keyed,
                    metrics,
                    layers,
                    via,
                },
            ),
        }
    }
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
/// The settings of one workforce row.
struct WorkforceSettings {
    /// Items per batch.
    batch_size: usize,
    /// Routed by key.
    keyed: bool,
    /// What the pool measures.
    metrics: MetricsMode,
    /// The middleware stack.
    layers: Layers,
    /// How producers hand items over.
    via: Via,
}

fn run_workforce(
    workload: &Workload,
    workers: usize,
    settings: WorkforceSettings,
) -> anyhow::Result<Run> {
    let WorkforceSettings {
        batch_size,
        keyed,
        metrics,
        layers,
        via,
    } = settings;
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
    let maker = move |_ctx: &Ctx| SumWorker {
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

    let closed =
        |item: u64| anyhow!("the workforce pool closed while item {item} was being submitted");
    let started = match via {
        Via::Submitters | Via::OneSubmitter => {
            let producers = if via == Via::OneSubmitter {
                1
            } else {
                workload.producers
            };
            let submitters = (0..producers).map(|_| pool.submitter()).collect();
            produce(workload, submitters, |submitter, item| {
                submitter.submit(item).map_err(|_| closed(item))
            })?
        }
        Via::Iter => {
            let submitters = (0..workload.producers).map(|_| pool.submitter()).collect();
            produce_iter(workload, submitters, |submitter, items| {
                submitter
                    .submit_iter(items)
                    .map_err(|error| closed(error.into_inner()))
            })?
        }
        Via::Senders => {
            let senders = (0..workload.producers).map(|_| pool.sender()).collect();
            produce(workload, senders, |sender, item| {
                sender.send(item).map_err(|_| closed(item))
            })?
        }
        Via::Pull => {
            let started = std::time::Instant::now();
            pool.run(0..workload.n_items)
                .map_err(|error| anyhow!("the workforce pool refused the run: {error}"))?;
            started
        }
    };
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
    Ok(Run::new(
        elapsed,
        total.load(Ordering::Relaxed),
        workload.n_items,
    ))
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
        task: Task::Xorshift,
        producers: 1,
        max_reps: None,
        warm_up: true,
    };

    #[test]
    fn every_implementation_reproduces_the_sequential_sum() {
        let expected = TINY.expected_sum();
        let rayon_pool = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .expect("a 3-thread rayon pool builds");
        // Three workers on two "cores": the static split uses two threads.
        let setting = Setting {
            workers: 3,
            cores: 2,
            rayon_pool: &rayon_pool,
        };
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
        // The seed task allocates; fewer items keep the debug build quick.
        let seed = Workload {
            task: Task::Seed,
            n_items: 1_001,
            ..TINY
        };
        // An odd count so the producers' shares differ in length.
        let multi_producer = Workload {
            producers: 4,
            n_items: 10_003,
            ..overhead
        };
        // W8's table of log-normal rounds, first items only.
        let heavy_tail = Workload {
            task: Task::HeavyTail,
            n_items: 2_000,
            ..TINY
        };
        for workload in [
            TINY,
            skewed,
            keyed,
            overhead,
            seed,
            multi_producer,
            heavy_tail,
        ] {
            for implementation in implementations_for(&workload) {
                let own = workload.with_items(implementation.n_items(&workload, true));
                let run = implementation
                    .run(&own, &setting)
                    .expect("the implementation runs");
                assert_eq!(
                    run.sum,
                    own.expected_sum(),
                    "{} on {workload}",
                    implementation.name()
                );
                assert_eq!(run.n_items, own.n_items);
            }
        }
        assert_ne!(skewed.expected_sum(), expected);
    }

    #[test]
    fn thread_per_item_runs_a_reduced_count() {
        let full = crate::workload::W1_OVERHEAD;
        assert_eq!(
            Implementation::ThreadPerItem.n_items(&full, false),
            THREAD_PER_ITEM_ITEMS
        );
        assert_eq!(
            Implementation::ThreadPerItem.n_items(&full.quick(), true),
            THREAD_PER_ITEM_ITEMS / QUICK_DIVISOR
        );
        assert_eq!(stealing(1).n_items(&full, false), full.n_items);
        assert!(
            implementations_for(&crate::workload::W6_MULTI_PRODUCER)
                .iter()
                .all(
                    |implementation| implementation.kind() != Kind::NonStreamingPeer
                        && *implementation != Implementation::RayonParBridge
                )
        );
    }
}
