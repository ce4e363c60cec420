//! What a workforce pool costs the machine besides time per item: CPU while
//! idle, the latency of waking an idle worker, and memory while a long stream
//! goes through a bounded pool. The OS's own counters are read from `/proc`
//! ([`crate::procfs`]); where they are missing a figure is reported as n/a.

use std::convert::Infallible;
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use pool_core::{Ctx, Pool};
use serde::Serialize;

use crate::procfs;

/// Idle target of BENCHMARKS.md: 8 idle workers for 2 s use less than 20 ms
/// of CPU. A shorter window (under `--quick`) scales the limit with it.
pub(crate) const IDLE_CPU_LIMIT_PER_2S: Duration = Duration::from_millis(20);

/// Wake-up target of BENCHMARKS.md: p99 at most 50 µs.
pub(crate) const WAKE_UP_P99_LIMIT_US: f64 = 50.0;

/// Pause between wake-up tries, so that every worker has finished its bounded
/// spin and parked (the spin lasts microseconds; a millisecond is far beyond it).
pub(crate) const WAKE_UP_GAP: Duration = Duration::from_millis(1);

/// "Flat" memory, as checked: the peak resident set while the items stream
/// grows at most this much over the resident set with the pool built and
/// warmed up. 8 MiB is a tenth of what 10,000,000 queued `u64` items take
/// (80 MB), so a queue that grows with the stream fails it, while allocator
/// and thread-stack noise passes.
pub(crate) const MEMORY_GROWTH_LIMIT_KIB: u64 = 8 * 1024;

/// Interval at which a sampler thread reads `VmRSS` during the stream (as a
/// cross-check of `VmHWM`, and the only figure where `VmHWM` cannot be reset).
const RSS_SAMPLE_INTERVAL: Duration = Duration::from_millis(1);

/// One of the three measurements, selectable with `--workload`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Measurement {
    /// CPU used by idle workers.
    Idle,
    /// Latency from submitting one item into an idle pool to its start.
    WakeUp,
    /// Peak resident set while a long stream goes through a bounded pool.
    Memory,
}

/// Every measurement, in the order a full run takes them: memory first, while
/// the process has no freed heap that a growing queue could reuse unseen.
pub(crate) const ALL_MEASUREMENTS: [Measurement; 3] =
    [Measurement::Memory, Measurement::Idle, Measurement::WakeUp];

impl Measurement {
    /// Finds a measurement by name (`idle`, `wakeup` or `wake-up`, `memory`).
    pub(crate) fn find(text: &str) -> Option<Self> {
        match text.to_ascii_lowercase().replace(['-', '_'], "").as_str() {
            "idle" => Some(Self::Idle),
            "wakeup" => Some(Self::WakeUp),
            "memory" | "mem" => Some(Self::Memory),
            _ => None,
        }
    }
}

/// How big each measurement is: full size, or reduced under `--quick`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub(crate) struct Sizes {
    /// How long the idle pool sits.
    pub(crate) idle: Duration,
    /// Wake-up tries per implementation.
    pub(crate) wake_up_tries: usize,
    /// Items streamed through the bounded pool.
    pub(crate) memory_items: u64,
}

impl Sizes {
    /// BENCHMARKS.md's sizes, or the `--quick` ones (a quarter of the idle
    /// window, a tenth of the tries and of the items).
    pub(crate) fn new(quick: bool) -> Self {
        if quick {
            Self {
                idle: Duration::from_millis(500),
                wake_up_tries: 1_000,
                memory_items: 1_000_000,
            }
        } else {
            Self {
                idle: Duration::from_secs(2),
                wake_up_tries: 10_000,
                memory_items: 10_000_000,
            }
        }
    }
}

/// Idle CPU of a workforce pool.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct IdleCpu {
    /// Worker threads.
    pub(crate) workers: usize,
    /// Length of the idle window, ms.
    pub(crate) window_ms: f64,
    /// CPU used by the whole process in the window, ms.
    pub(crate) cpu_ms: f64,
    /// The limit for this window, ms (20 ms per 2 s).
    pub(crate) limit_ms: f64,
    /// Where the CPU time was read.
    pub(crate) source: &'static str,
}

/// Wake-up latency of one implementation.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct WakeUp {
    /// Which pool.
    pub(crate) implementation: String,
    /// Whether this row is workforce (the target applies to it alone).
    pub(crate) workforce: bool,
    /// Worker threads, all parked before each try.
    pub(crate) workers: usize,
    /// Tries measured.
    pub(crate) tries: usize,
    /// Median, µs.
    pub(crate) p50_us: f64,
    /// 90th percentile, µs.
    pub(crate) p90_us: f64,
    /// 99th percentile, µs.
    pub(crate) p99_us: f64,
    /// Slowest try, µs.
    pub(crate) max_us: f64,
}

/// Memory while items stream through a bounded workforce pool.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct MemoryGrowth {
    /// Worker threads.
    pub(crate) workers: usize,
    /// Items streamed.
    pub(crate) items: u64,
    /// The pool's capacity (items in flight).
    pub(crate) capacity: usize,
    /// Time the stream took, ms.
    pub(crate) elapsed_ms: f64,
    /// Resident set before the stream (pool built and warmed up), KiB.
    pub(crate) rss_before_kib: u64,
    /// Peak resident set during the stream, KiB.
    pub(crate) peak_kib: u64,
    /// `peak - before`, KiB.
    pub(crate) growth_kib: u64,
    /// Resident set after `wait` returned, KiB.
    pub(crate) rss_after_kib: u64,
    /// What the items alone would take if all were queued at once, KiB.
    pub(crate) unbounded_queue_kib: u64,
    /// How the peak was found.
    pub(crate) peak_source: &'static str,
}

/// The results of whichever measurements ran.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct Resources {
    /// Idle CPU, if measured and readable.
    pub(crate) idle: Option<IdleCpu>,
    /// Wake-up latency per implementation (workforce first).
    pub(crate) wake_up: Vec<WakeUp>,
    /// Memory growth, if measured and readable.
    pub(crate) memory: Option<MemoryGrowth>,
    /// Measurements that could not be taken here, and why.
    pub(crate) unavailable: Vec<String>,
}

impl Resources {
    /// Whether nothing was measured.
    pub(crate) fn is_empty(&self) -> bool {
        self.idle.is_none()
            && self.wake_up.is_empty()
            && self.memory.is_none()
            && self.unavailable.is_empty()
    }
}

/// Idle CPU: builds a workforce pool of `workers`, runs 10,000 trivial items
/// through it so every worker has been busy, and from the moment the last one
/// finished (so the window includes the workers' bounded spin before they
/// park) lets it sit for `window`, reading the process's CPU time before and
/// after. The calling thread sleeps meanwhile.
pub(crate) fn measure_idle(workers: usize, window: Duration) -> anyhow::Result<Option<IdleCpu>> {
    const WARM_ITEMS: u64 = 10_000;
    let done = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&done);
    let pool: Pool<u64> = Pool::builder()
        .workers(workers)
        .build(move |_ctx: &Ctx, item: u64| {
            black_box(item);
            counter.fetch_add(1, Ordering::Release);
            Ok::<(), Infallible>(())
        })
        .map_err(|error| anyhow!("building the idle pool: {error}"))?;
    let mut submitter = pool.submitter();
    for item in 0..WARM_ITEMS {
        submitter
            .submit(item)
            .map_err(|_| anyhow!("the idle pool closed early"))?;
    }
    drop(submitter);
    while done.load(Ordering::Acquire) < WARM_ITEMS {
        std::thread::yield_now();
    }
    let before = procfs::cpu_snapshot();
    std::thread::sleep(window);
    let after = procfs::cpu_snapshot();
    let report = pool
        .wait()
        .map_err(|error| anyhow!("the idle pool failed: {error}"))?;
    if report.processed() != WARM_ITEMS {
        bail!(
            "the idle pool processed {} of {WARM_ITEMS} items",
            report.processed()
        );
    }
    let (Some(before), Some(after)) = (before, after) else {
        return Ok(None);
    };
    let Some(used) = procfs::cpu_used(&before, &after) else {
        return Ok(None);
    };
    Ok(Some(IdleCpu {
        workers,
        window_ms: window.as_secs_f64() * 1e3,
        cpu_ms: used.time.as_secs_f64() * 1e3,
        limit_ms: IDLE_CPU_LIMIT_PER_2S.as_secs_f64() * 1e3 * window.as_secs_f64() / 2.0,
        source: used.source,
    }))
}

/// A pool that reports, for each submitted instant, how long after it a
/// worker started the item.
trait Pinged {
    /// Submits `now` and waits for the latency a worker measured.
    fn ping(&mut self) -> anyhow::Result<Duration>;
}

/// workforce: the item is the submit instant, sent through a `Sender` (which
/// pushes at once, no batching); the worker measures the time since it on
/// entry and sends the latency back.
struct WorkforcePing {
    /// The pool (kept until the end).
    pool: Option<Pool<Instant>>,
    /// The pool's sender.
    sender: pool_core::Sender<Instant>,
    /// Latencies coming back from the workers.
    latencies: crossbeam_channel::Receiver<Duration>,
}

impl WorkforcePing {
    /// Builds the pool with `workers` threads.
    fn new(workers: usize) -> anyhow::Result<Self> {
        let (report, latencies) = crossbeam_channel::unbounded();
        let pool: Pool<Instant> = Pool::builder()
            .workers(workers)
            .build(move |_ctx: &Ctx, submitted: Instant| {
                let latency = submitted.elapsed();
                // The receiver lives until the pool is waited on.
                let _ = report.send(latency);
                Ok::<(), Infallible>(())
            })
            .map_err(|error| anyhow!("building the wake-up pool: {error}"))?;
        let sender = pool.sender();
        Ok(Self {
            pool: Some(pool),
            sender,
            latencies,
        })
    }

    /// Waits for the pool.
    fn finish(mut self) -> anyhow::Result<()> {
        if let Some(pool) = self.pool.take() {
            drop(self.sender);
            pool.wait()
                .map_err(|error| anyhow!("the wake-up pool failed: {error}"))?;
        }
        Ok(())
    }
}

impl Pinged for WorkforcePing {
    fn ping(&mut self) -> anyhow::Result<Duration> {
        self.sender
            .send(Instant::now())
            .map_err(|_| anyhow!("the wake-up pool closed"))?;
        self.latencies
            .recv()
            .context("the wake-up pool's workers hung up")
    }
}

/// The crossbeam-channel pool for contrast: `workers` threads blocked in
/// `recv` on a `bounded(100)` channel (a futex wait, no spin of their own).
struct ChannelPing {
    /// Instants to the workers (dropping it stops them).
    sender: Option<crossbeam_channel::Sender<Instant>>,
    /// Latencies back.
    latencies: crossbeam_channel::Receiver<Duration>,
    /// The worker threads.
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl ChannelPing {
    /// Starts `workers` threads.
    fn new(workers: usize) -> Self {
        let (sender, receiver) =
            crossbeam_channel::bounded::<Instant>(crate::peers::CHANNEL_CAPACITY);
        let (report, latencies) = crossbeam_channel::unbounded();
        let threads = (0..workers)
            .map(|_| {
                let (receiver, report) = (receiver.clone(), report.clone());
                std::thread::spawn(move || {
                    for submitted in receiver {
                        let _ = report.send(submitted.elapsed());
                    }
                })
            })
            .collect();
        Self {
            sender: Some(sender),
            latencies,
            threads,
        }
    }

    /// Stops and joins the threads.
    fn finish(mut self) -> anyhow::Result<()> {
        drop(self.sender.take());
        for thread in self.threads.drain(..) {
            thread
                .join()
                .map_err(|_| anyhow!("a wake-up channel worker panicked"))?;
        }
        Ok(())
    }
}

impl Pinged for ChannelPing {
    fn ping(&mut self) -> anyhow::Result<Duration> {
        self.sender
            .as_ref()
            .context("the channel pool is stopped")?
            .send(Instant::now())
            .context("the channel workers hung up")?;
        self.latencies.recv().context("the channel workers hung up")
    }
}

/// Wake-up latency: `tries` times, wait [`WAKE_UP_GAP`] so every worker is
/// parked, submit one item carrying the current instant, and record how long
/// after it a worker started it. workforce and the crossbeam-channel pool
/// (for contrast) alternate try by try; `on_try` is told how far it got.
pub(crate) fn measure_wake_up(
    workers: usize,
    tries: usize,
    mut on_try: impl FnMut(usize),
) -> anyhow::Result<Vec<WakeUp>> {
    let mut workforce = WorkforcePing::new(workers)?;
    let mut channel = ChannelPing::new(workers);
    let mut samples = [Vec::with_capacity(tries), Vec::with_capacity(tries)];
    for attempt in 0..tries {
        if attempt % 100 == 0 {
            on_try(attempt);
        }
        std::thread::sleep(WAKE_UP_GAP);
        samples[0].push(workforce.ping()?);
        std::thread::sleep(WAKE_UP_GAP);
        samples[1].push(channel.ping()?);
    }
    workforce.finish()?;
    channel.finish()?;
    let names = [
        ("workforce Sender::send (default pool)", true),
        ("crossbeam-channel bounded(100) pool", false),
    ];
    Ok(names
        .into_iter()
        .zip(samples)
        .map(|((name, is_workforce), mut latencies)| {
            latencies.sort_unstable();
            let micros = |latency: Option<Duration>| {
                latency.map_or(f64::NAN, |latency| latency.as_secs_f64() * 1e6)
            };
            WakeUp {
                implementation: name.to_owned(),
                workforce: is_workforce,
                workers,
                tries: latencies.len(),
                p50_us: micros(percentile(&latencies, 50.0)),
                p90_us: micros(percentile(&latencies, 90.0)),
                p99_us: micros(percentile(&latencies, 99.0)),
                max_us: micros(latencies.last().copied()),
            }
        })
        .collect())
}

/// The `pct`-th percentile of `sorted` by the nearest-rank method: the
/// smallest value with at least `pct`% of the values at or below it.
pub(crate) fn percentile<T: Copy>(sorted: &[T], pct: f64) -> Option<T> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (pct / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

/// Memory: builds a default workforce pool of `workers`, warms it up with
/// 100,000 items, and reads the resident set; then resets the kernel's peak
/// (`VmHWM`), streams `items` trivial items through it from one producer
/// while a sampler thread reads `VmRSS` every millisecond, and takes the peak
/// as the larger of the new `VmHWM` and the highest sample.
pub(crate) fn measure_memory(workers: usize, items: u64) -> anyhow::Result<Option<MemoryGrowth>> {
    const WARM_ITEMS: u64 = 100_000;
    let pool: Pool<u64> = Pool::builder()
        .workers(workers)
        .build(|_ctx: &Ctx, item: u64| {
            black_box(item);
            Ok::<(), Infallible>(())
        })
        .map_err(|error| anyhow!("building the memory pool: {error}"))?;
    let capacity = pool.capacity();
    let mut submitter = pool.submitter();
    for item in 0..WARM_ITEMS {
        submitter
            .submit(item)
            .map_err(|_| anyhow!("the memory pool closed early"))?;
    }
    drop(submitter);
    while pool.in_flight() > 0 {
        std::thread::yield_now();
    }

    // The sampler starts first, so its own stack is in the baseline.
    let stop = Arc::new(AtomicBool::new(false));
    let highest = Arc::new(AtomicU64::new(0));
    let sampler = {
        let (stop, highest) = (Arc::clone(&stop), Arc::clone(&highest));
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if let Some(rss) = procfs::rss_kib() {
                    highest.fetch_max(rss, Ordering::Relaxed);
                }
                std::thread::sleep(RSS_SAMPLE_INTERVAL);
            }
        })
    };
    std::thread::sleep(Duration::from_millis(5));
    let peak_was_reset = procfs::reset_peak_rss();
    let Some(before) = procfs::memory_status() else {
        stop.store(true, Ordering::Relaxed);
        let _ = sampler.join();
        pool.wait()
            .map_err(|error| anyhow!("the memory pool failed: {error}"))?;
        return Ok(None);
    };
    highest.store(before.rss_kib, Ordering::Relaxed);

    let started = Instant::now();
    let mut submitter = pool.submitter();
    for item in 0..items {
        submitter
            .submit(item)
            .map_err(|_| anyhow!("the memory pool closed early"))?;
    }
    drop(submitter);
    // Read before `wait` joins the workers and frees their stacks.
    let during = procfs::memory_status();
    let report = pool
        .wait()
        .map_err(|error| anyhow!("the memory pool failed: {error}"))?;
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    sampler
        .join()
        .map_err(|_| anyhow!("the RSS sampler panicked"))?;
    if report.processed() != WARM_ITEMS + items {
        bail!(
            "the memory pool processed {} of {} items",
            report.processed(),
            WARM_ITEMS + items
        );
    }
    let after = procfs::memory_status().unwrap_or(before);
    let sampled = highest.load(Ordering::Relaxed);
    let (peak_kib, peak_source) = match (peak_was_reset, during) {
        (true, Some(during)) => (
            during.peak_kib.max(after.peak_kib).max(sampled),
            "VmHWM (reset before the stream) and VmRSS sampled every 1 ms",
        ),
        _ => (
            sampled,
            "VmRSS sampled every 1 ms (VmHWM could not be reset)",
        ),
    };
    Ok(Some(MemoryGrowth {
        workers,
        items,
        capacity,
        elapsed_ms: elapsed.as_secs_f64() * 1e3,
        rss_before_kib: before.rss_kib,
        peak_kib,
        growth_kib: peak_kib.saturating_sub(before.rss_kib),
        rss_after_kib: after.rss_kib,
        unbounded_queue_kib: items * size_of::<u64>() as u64 / 1024,
        peak_source,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let hundred: Vec<u32> = (1..=100).collect();
        assert_eq!(percentile(&hundred, 50.0), Some(50));
        assert_eq!(percentile(&hundred, 99.0), Some(99));
        assert_eq!(percentile(&hundred, 100.0), Some(100));
        assert_eq!(percentile(&hundred, 0.0), Some(1));
        let few = [10, 20, 30];
        assert_eq!(percentile(&few, 50.0), Some(20));
        assert_eq!(percentile(&few, 99.0), Some(30));
        assert_eq!(percentile::<u32>(&[], 50.0), None);
    }

    #[test]
    fn measurements_are_found_by_name() {
        assert_eq!(Measurement::find("wakeup"), Some(Measurement::WakeUp));
        assert_eq!(Measurement::find("Wake-Up"), Some(Measurement::WakeUp));
        assert_eq!(Measurement::find("idle"), Some(Measurement::Idle));
        assert_eq!(Measurement::find("memory"), Some(Measurement::Memory));
        assert_eq!(Measurement::find("W1"), None);
    }

    #[test]
    fn the_measurements_run_and_count_every_item() {
        // Tiny sizes: this checks the plumbing, not the figures.
        let idle = measure_idle(2, Duration::from_millis(20)).expect("idle runs");
        if cfg!(target_os = "linux") {
            assert!(idle.is_some());
        }
        let wake_up = measure_wake_up(2, 5, |_| {}).expect("wake-up runs");
        assert_eq!(wake_up.len(), 2);
        assert!(
            wake_up
                .iter()
                .all(|row| row.tries == 5 && row.p50_us <= row.max_us)
        );
        let memory = measure_memory(2, 10_000).expect("memory runs");
        if let Some(memory) = memory {
            assert!(memory.peak_kib >= memory.rss_before_kib);
        }
    }
}
