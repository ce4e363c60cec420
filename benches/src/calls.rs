//! W9 `calls`: an async service's round trip. Tasks on a tokio runtime hand
//! CPU-heavy work (BLAKE3 over 64 KiB) to a pool and await each result; the
//! runtime's own threads must stay free for I/O. Measured per implementation:
//! throughput, per-call latency (p50, p99), the lateness of a 1 ms heartbeat
//! task on the same runtime (how blocked the runtime is), peak threads and
//! peak RSS; then, separately, peak RSS while 1,000,000 calls are issued at
//! once (a bounded pool stays flat; `spawn_blocking` queues everything).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use hdrhistogram::Histogram;

use crate::procfs;

/// The id of the workload in tables and `--workload`.
pub(crate) const ID: &str = "W9";

/// Calls per timed run.
pub(crate) const CALLS: u64 = 100_000;

/// Calls per run under `--quick`.
pub(crate) const QUICK_CALLS: u64 = 5_000;

/// Concurrent caller tasks.
pub(crate) const CALLERS: u64 = 64;

/// Calls issued at once for the memory measurement.
pub(crate) const BURST: u64 = 1_000_000;

/// Burst under `--quick`.
pub(crate) const QUICK_BURST: u64 = 50_000;

/// Bytes hashed per call.
const WORK_BYTES: usize = 64 * 1024;

/// The workforce pool's capacity (items queued or running).
pub(crate) const CAPACITY: usize = 64;

/// Whether `text` names this workload on the command line.
pub(crate) fn matches(text: &str) -> bool {
    text.eq_ignore_ascii_case(ID) || text.eq_ignore_ascii_case("calls")
}

/// The 64 KiB every call hashes (the same bytes for every call; the call's
/// own number is hashed first, so every result differs).
fn input() -> &'static [u8] {
    static INPUT: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    INPUT.get_or_init(|| {
        let mut rng = crate::rng::SplitMix64::new(0x5eed_0009);
        (0..WORK_BYTES).map(|_| rng.next_u64() as u8).collect()
    })
}

/// One call's work: BLAKE3 of the call's number and the 64 KiB input; the
/// first 8 bytes of the digest.
pub(crate) fn work(call: u64) -> u64 {
    let mut hasher = blake3::Hasher::new();
    hasher.update(&call.to_le_bytes());
    hasher.update(input());
    let digest = hasher.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest.as_bytes()[..8]);
    u64::from_le_bytes(first)
}

/// The implementations W9 compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CallsImpl {
    /// `tokio::task::spawn_blocking(move || work(i)).await`.
    SpawnBlocking,
    /// `rayon::spawn` with a tokio `oneshot` for the result.
    RayonOneshot,
    /// A workforce pool of `cores` workers, capacity 64: `call_async(i).await`.
    Workforce,
}

/// Every implementation, in table order.
pub(crate) const ALL_CALLS_IMPLS: [CallsImpl; 3] = [
    CallsImpl::SpawnBlocking,
    CallsImpl::RayonOneshot,
    CallsImpl::Workforce,
];

impl CallsImpl {
    /// The row's name.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::SpawnBlocking => "tokio spawn_blocking",
            Self::RayonOneshot => "rayon spawn + oneshot",
            Self::Workforce => "workforce call_async (capacity 64)",
        }
    }
}

/// The pools a run hands work to, built before the timed window.
enum Executor {
    /// Nothing beyond the runtime's blocking pool.
    SpawnBlocking,
    /// A rayon pool of `workers` threads.
    Rayon(Arc<rayon::ThreadPool>),
    /// A workforce pool of `workers` threads.
    Workforce(Arc<crate::calls_workforce::CallPool>),
}

impl Executor {
    /// Builds the executor of `implementation` with `workers` threads.
    fn new(implementation: CallsImpl, workers: usize) -> anyhow::Result<Self> {
        Ok(match implementation {
            CallsImpl::SpawnBlocking => Self::SpawnBlocking,
            CallsImpl::RayonOneshot => Self::Rayon(Arc::new(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(workers)
                    .build()
                    .context("building the rayon pool")?,
            )),
            CallsImpl::Workforce => Self::Workforce(Arc::new(
                crate::calls_workforce::CallPool::new(workers, CAPACITY)?,
            )),
        })
    }

    /// Runs call `i` and returns its result.
    async fn call(&self, i: u64) -> anyhow::Result<u64> {
        match self {
            Self::SpawnBlocking => tokio::task::spawn_blocking(move || work(i))
                .await
                .map_err(|e| anyhow!("spawn_blocking: {e}")),
            Self::Rayon(pool) => {
                let (tx, rx) = tokio::sync::oneshot::channel();
                pool.spawn(move || {
                    let _ = tx.send(work(i));
                });
                rx.await.map_err(|_| anyhow!("the rayon job was dropped"))
            }
            Self::Workforce(pool) => pool.call(i).await,
        }
    }

    /// Issues call `i` without waiting for its result (waiting only for room
    /// where the executor has a bound): the future resolves to the result.
    async fn issue(
        &self,
        i: u64,
    ) -> anyhow::Result<std::pin::Pin<Box<dyn Future<Output = anyhow::Result<u64>> + Send>>> {
        Ok(match self {
            Self::SpawnBlocking => {
                let handle = tokio::task::spawn_blocking(move || work(i));
                Box::pin(async move { handle.await.map_err(|e| anyhow!("spawn_blocking: {e}")) })
            }
            Self::Rayon(pool) => {
                let (tx, rx) = tokio::sync::oneshot::channel();
                pool.spawn(move || {
                    let _ = tx.send(work(i));
                });
                Box::pin(async move { rx.await.map_err(|_| anyhow!("the rayon job was dropped")) })
            }
            Self::Workforce(pool) => pool.issue(i).await?,
        })
    }

    /// Closes the workforce pool and waits for its threads, off the runtime.
    fn close(self) -> anyhow::Result<()> {
        match self {
            Self::Workforce(pool) => Arc::try_unwrap(pool)
                .map_err(|_| anyhow!("the workforce pool is still shared"))?
                .close(),
            Self::SpawnBlocking | Self::Rayon(_) => Ok(()),
        }
    }
}

/// A fresh runtime per run: `workers` runtime threads (workers = cores), so
/// threads that `spawn_blocking` started in one run do not linger into the next.
fn runtime(workers: usize) -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_time()
        .build()
        .context("building the tokio runtime")
}

/// The number of threads of this process, from `/proc/self/status`.
fn threads() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("Threads:"))
        .and_then(|value| value.trim().parse().ok())
}

/// What the heartbeat task saw: how late each 1 ms sleep woke, and the
/// largest thread count it sampled.
struct Heartbeat {
    /// Lateness of each beat past its 1 ms, in µs.
    lateness_us: Histogram<u64>,
    /// The largest `Threads:` seen.
    peak_threads: u64,
}

/// Beats every 1 ms on the runtime until `stop`, recording lateness.
async fn heartbeat(stop: Arc<AtomicBool>) -> Heartbeat {
    let mut lateness_us = Histogram::<u64>::new(3).expect("3 significant figures are valid");
    let mut peak_threads = threads().unwrap_or(0);
    let period = Duration::from_millis(1);
    while !stop.load(Ordering::Relaxed) {
        let started = Instant::now();
        tokio::time::sleep(period).await;
        let late = started.elapsed().saturating_sub(period);
        lateness_us.saturating_record(late.as_micros() as u64);
        peak_threads = peak_threads.max(threads().unwrap_or(0));
    }
    Heartbeat {
        lateness_us,
        peak_threads,
    }
}

/// One timed run of the round trip.
#[derive(Debug, Clone)]
pub(crate) struct CallsRun {
    /// Calls per second.
    pub(crate) throughput: f64,
    /// Per-call latency, µs.
    pub(crate) p50_us: u64,
    /// Per-call latency, µs.
    pub(crate) p99_us: u64,
    /// Heartbeat lateness at p99, µs.
    pub(crate) heartbeat_p99_us: u64,
    /// Threads of the process at the peak.
    pub(crate) peak_threads: u64,
    /// Peak RSS during the run, KiB (`VmHWM` after a reset).
    pub(crate) peak_rss_kib: Option<u64>,
    /// Wrapping sum of every result (checked across implementations).
    pub(crate) sum: u64,
}

/// `calls` calls from [`CALLERS`] tasks, each awaiting its call before the
/// next, with the heartbeat beating alongside.
pub(crate) fn run_round_trip(
    implementation: CallsImpl,
    workers: usize,
    calls: u64,
) -> anyhow::Result<CallsRun> {
    let runtime = runtime(workers)?;
    let executor = Arc::new(Executor::new(implementation, workers)?);
    procfs::reset_peak_rss();
    let stop = Arc::new(AtomicBool::new(false));
    let sum = Arc::new(AtomicU64::new(0));
    let (wall, latencies, beat) = runtime.block_on({
        let executor = Arc::clone(&executor);
        let stop = Arc::clone(&stop);
        let sum = Arc::clone(&sum);
        async move {
            let beat = tokio::spawn(heartbeat(Arc::clone(&stop)));
            let started = Instant::now();
            let mut callers = Vec::with_capacity(CALLERS as usize);
            for caller in 0..CALLERS {
                let executor = Arc::clone(&executor);
                let sum = Arc::clone(&sum);
                callers.push(tokio::spawn(async move {
                    let mut latencies = Histogram::<u64>::new(3)?;
                    let mut local = 0u64;
                    let mut i = caller;
                    while i < calls {
                        let asked = Instant::now();
                        local = local.wrapping_add(executor.call(i).await?);
                        latencies.saturating_record(asked.elapsed().as_micros() as u64);
                        i += CALLERS;
                    }
                    sum.fetch_add(local, Ordering::Relaxed);
                    anyhow::Ok(latencies)
                }));
            }
            let mut latencies = Histogram::<u64>::new(3)?;
            for caller in callers {
                latencies.add(caller.await.context("a caller task panicked")??)?;
            }
            let wall = started.elapsed();
            stop.store(true, Ordering::Relaxed);
            let beat = beat.await.context("the heartbeat task panicked")?;
            anyhow::Ok((wall, latencies, beat))
        }
    })?;
    let peak_rss_kib = procfs::memory_status().map(|status| status.peak_kib);
    drop(runtime);
    Arc::try_unwrap(executor)
        .map_err(|_| anyhow!("the executor is still shared"))?
        .close()?;
    Ok(CallsRun {
        throughput: calls as f64 / wall.as_secs_f64(),
        p50_us: latencies.value_at_quantile(0.5),
        p99_us: latencies.value_at_quantile(0.99),
        heartbeat_p99_us: beat.lateness_us.value_at_quantile(0.99),
        peak_threads: beat.peak_threads,
        peak_rss_kib,
        sum: sum.load(Ordering::Relaxed),
    })
}

/// Peak RSS growth while `burst` calls are issued at once: one task issues
/// every call without awaiting any result (waiting only for room, where the
/// executor bounds it) and hands each result's future through an unbounded
/// channel to a second task that awaits them in order.
pub(crate) fn run_burst(
    implementation: CallsImpl,
    workers: usize,
    burst: u64,
) -> anyhow::Result<BurstRun> {
    let runtime = runtime(workers)?;
    let executor = Arc::new(Executor::new(implementation, workers)?);
    let base = procfs::memory_status().map(|status| status.rss_kib);
    procfs::reset_peak_rss();
    let started = Instant::now();
    let sum = runtime.block_on({
        let executor = Arc::clone(&executor);
        async move {
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
            let awaiter = tokio::spawn(async move {
                let mut sum = 0u64;
                while let Some(result) = rx.recv().await {
                    let result: std::pin::Pin<
                        Box<dyn Future<Output = anyhow::Result<u64>> + Send>,
                    > = result;
                    sum = sum.wrapping_add(result.await?);
                }
                anyhow::Ok(sum)
            });
            for i in 0..burst {
                let result = executor.issue(i).await?;
                if tx.send(result).is_err() {
                    bail!("the awaiting task ended early");
                }
            }
            drop(tx);
            awaiter.await.context("the awaiting task panicked")?
        }
    })?;
    let wall = started.elapsed();
    let peak = procfs::memory_status().map(|status| status.peak_kib);
    drop(runtime);
    Arc::try_unwrap(executor)
        .map_err(|_| anyhow!("the executor is still shared"))?
        .close()?;
    Ok(BurstRun {
        wall,
        rss_growth_kib: base.zip(peak).map(|(base, peak)| peak.saturating_sub(base)),
        sum,
    })
}

/// The memory measurement's result.
#[derive(Debug, Clone)]
pub(crate) struct BurstRun {
    /// From the first call issued to the last result.
    pub(crate) wall: Duration,
    /// Peak RSS over the RSS before the burst, KiB.
    pub(crate) rss_growth_kib: Option<u64>,
    /// Wrapping sum of every result.
    pub(crate) sum: u64,
}

/// One implementation's medians over the timed repetitions.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct CallsRow {
    /// The implementation's name.
    pub(crate) implementation: &'static str,
    /// Median calls per second.
    pub(crate) calls_per_sec: f64,
    /// Median per-call latency p50, µs.
    pub(crate) p50_us: u64,
    /// Median per-call latency p99, µs.
    pub(crate) p99_us: u64,
    /// Median heartbeat lateness p99, µs.
    pub(crate) heartbeat_p99_us: u64,
    /// Largest thread count seen in any run.
    pub(crate) peak_threads: u64,
    /// Largest peak RSS of any run, KiB.
    pub(crate) peak_rss_kib: Option<u64>,
    /// Peak RSS growth under the 1,000,000-call burst, KiB.
    pub(crate) burst_rss_growth_kib: Option<u64>,
    /// The burst's wall time, ms.
    pub(crate) burst_ms: Option<f64>,
}

/// W9's results.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct CallsTable {
    /// `W9`.
    pub(crate) workload: &'static str,
    /// Calls per timed run.
    pub(crate) calls: u64,
    /// Calls issued at once in the memory measurement.
    pub(crate) burst: u64,
    /// Pool threads (and runtime threads).
    pub(crate) workers: usize,
    /// Timed repetitions per implementation.
    pub(crate) reps: usize,
    /// One row per implementation.
    pub(crate) rows: Vec<CallsRow>,
}

/// The median of `values` (sorted in place); 0 when empty.
fn median<T: Copy + PartialOrd + Default>(values: &mut [T]) -> T {
    values.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    values.get(values.len() / 2).copied().unwrap_or_default()
}

impl CallsRow {
    /// Folds `runs` (and the burst, if measured) into a row.
    pub(crate) fn of(
        implementation: CallsImpl,
        runs: &[CallsRun],
        burst: Option<&BurstRun>,
    ) -> Self {
        let mut throughput: Vec<f64> = runs.iter().map(|run| run.throughput).collect();
        let mut p50: Vec<u64> = runs.iter().map(|run| run.p50_us).collect();
        let mut p99: Vec<u64> = runs.iter().map(|run| run.p99_us).collect();
        let mut beat: Vec<u64> = runs.iter().map(|run| run.heartbeat_p99_us).collect();
        Self {
            implementation: implementation.name(),
            calls_per_sec: median(&mut throughput),
            p50_us: median(&mut p50),
            p99_us: median(&mut p99),
            heartbeat_p99_us: median(&mut beat),
            peak_threads: runs.iter().map(|run| run.peak_threads).max().unwrap_or(0),
            peak_rss_kib: runs.iter().filter_map(|run| run.peak_rss_kib).max(),
            burst_rss_growth_kib: burst.and_then(|burst| burst.rss_growth_kib),
            burst_ms: burst.map(|burst| burst.wall.as_secs_f64() * 1e3),
        }
    }
}

/// Formats KiB as MiB with one decimal, or `n/a`.
fn mib(kib: Option<u64>) -> String {
    kib.map_or_else(
        || "n/a".to_owned(),
        |kib| format!("{:.1}", kib as f64 / 1024.0),
    )
}

impl CallsTable {
    /// The header and the cells of every row.
    fn cells(&self) -> (Vec<&'static str>, Vec<Vec<String>>) {
        let header = vec![
            "implementation",
            "calls/s",
            "p50 µs",
            "p99 µs",
            "heartbeat p99 late µs",
            "peak threads",
            "peak RSS MiB",
            "burst: RSS growth MiB",
            "burst ms",
        ];
        let rows = self
            .rows
            .iter()
            .map(|row| {
                vec![
                    row.implementation.to_owned(),
                    format!("{:.0}", row.calls_per_sec),
                    row.p50_us.to_string(),
                    row.p99_us.to_string(),
                    row.heartbeat_p99_us.to_string(),
                    row.peak_threads.to_string(),
                    mib(row.peak_rss_kib),
                    mib(row.burst_rss_growth_kib),
                    row.burst_ms
                        .map_or_else(|| "n/a".to_owned(), |ms| format!("{ms:.0}")),
                ]
            })
            .collect();
        (header, rows)
    }

    /// The title line.
    fn title(&self) -> String {
        format!(
            "{ID} calls: {} awaited calls from {CALLERS} tokio tasks, BLAKE3 over 64 KiB each, \
             {} pool threads and {} runtime threads, median of {}; burst: {} calls issued at once",
            crate::report::thousands(self.calls),
            self.workers,
            self.workers,
            self.reps,
            crate::report::thousands(self.burst),
        )
    }

    /// The table as aligned text.
    pub(crate) fn to_text(&self) -> String {
        let (header, rows) = self.cells();
        crate::table::aligned(&self.title(), &header, &rows)
    }

    /// The table as Markdown.
    pub(crate) fn to_markdown(&self) -> String {
        let (header, rows) = self.cells();
        crate::table::markdown(&self.title(), &header, &rows)
    }

    /// The row of `implementation`, if it ran.
    fn row(&self, implementation: CallsImpl) -> Option<&CallsRow> {
        self.rows
            .iter()
            .find(|row| row.implementation == implementation.name())
    }
}

/// W9's targets: throughput at least `spawn_blocking`'s, p99 latency at most
/// 1.5× its, heartbeat p99 lateness at most rayon + oneshot's, and RSS flat
/// under the burst (at most [`FLAT_BURST_MIB`] of growth).
pub(crate) fn check_targets(table: &CallsTable) -> Vec<crate::report::TargetCheck> {
    let Some(ours) = table.row(CallsImpl::Workforce) else {
        return Vec::new();
    };
    let mut checks = Vec::new();
    let check =
        |name: &str, target: String, measured: String, met: bool| crate::report::TargetCheck {
            workload: ID,
            workers: table.workers,
            name: format!("{ID} {} {name}", ours.implementation),
            target,
            measured,
            met,
            informational: false,
        };
    if let Some(blocking) = table.row(CallsImpl::SpawnBlocking) {
        checks.push(check(
            "throughput",
            "at least tokio spawn_blocking's calls/s".to_owned(),
            format!(
                "{:.0} vs {:.0} calls/s",
                ours.calls_per_sec, blocking.calls_per_sec
            ),
            ours.calls_per_sec >= blocking.calls_per_sec,
        ));
        checks.push(check(
            "p99 latency",
            "<= 1.5x tokio spawn_blocking's p99".to_owned(),
            format!("{} vs {} µs", ours.p99_us, blocking.p99_us),
            ours.p99_us as f64 <= 1.5 * blocking.p99_us as f64,
        ));
    }
    if let Some(rayon) = table.row(CallsImpl::RayonOneshot) {
        checks.push(check(
            "heartbeat lateness",
            "p99 at most rayon + oneshot's".to_owned(),
            format!("{} vs {} µs", ours.heartbeat_p99_us, rayon.heartbeat_p99_us),
            ours.heartbeat_p99_us <= rayon.heartbeat_p99_us,
        ));
    }
    if let Some(growth) = ours.burst_rss_growth_kib {
        checks.push(check(
            "RSS under the burst",
            format!("grows at most {FLAT_BURST_MIB} MiB while the burst is issued"),
            format!("{} MiB", mib(Some(growth))),
            growth <= FLAT_BURST_MIB * 1024,
        ));
    }
    checks
}

/// What "flat" means for the burst's RSS growth, MiB.
pub(crate) const FLAT_BURST_MIB: u64 = 16;
