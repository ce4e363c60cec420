//! W11 `resize`: the time of `Pool::set_workers` under load. Producers
//! submit short items without pause (work(x, 20), some 30 ns each) while the
//! main thread resizes the pool up and down between 1 and `workers` a fixed
//! number of times; each `set_workers` call is timed from its call to its
//! return (for a shrink: the retired workers finished their item and their
//! threads ended; for a grow: the new workers were made; in a keyed pool:
//! also the drain of what was routed with the old count). Two rows: an
//! unkeyed pool and a keyed one (`chunk_by`, 1,024 keys). No peer resizes a
//! running pool with key affinity, so the rows stand alone.

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use pool_core::{Ctx, Pool};
use serde::Serialize;

use crate::report::thousands;
use crate::workload::work;

/// W11's id in tables and `--workload`.
pub(crate) const ID: &str = "W11";

/// W11's name.
pub(crate) const NAME: &str = "resize";

/// Resizes per row.
pub(crate) const RESIZES: usize = 400;

/// Resizes per row under `--quick`.
pub(crate) const QUICK_RESIZES: usize = 40;

/// Producer threads.
const PRODUCERS: usize = 2;

/// Keys of the keyed row.
const KEYS: u64 = 1_024;

/// Whether `text` names this workload on the command line.
pub(crate) fn matches(text: &str) -> bool {
    text.eq_ignore_ascii_case(ID) || text.eq_ignore_ascii_case(NAME)
}

/// One row: a pool kind and its resize latencies.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ResizeRow {
    /// `unkeyed` or `keyed`.
    pub(crate) pool: &'static str,
    /// Resizes timed.
    pub(crate) resizes: usize,
    /// Items processed while they ran.
    pub(crate) items: u64,
    /// Mean `set_workers` time, µs.
    pub(crate) mean_us: f64,
    /// Median, µs.
    pub(crate) p50_us: f64,
    /// 99th percentile, µs.
    pub(crate) p99_us: f64,
    /// Slowest, µs.
    pub(crate) max_us: f64,
}

/// W11's results.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ResizeTable {
    /// `W11`.
    pub(crate) workload: &'static str,
    /// The most workers; resizes go between 1 and this.
    pub(crate) workers: usize,
    /// One row per pool kind.
    pub(crate) rows: Vec<ResizeRow>,
}

/// Runs both rows: `resizes` resizes each, between 1 and `workers` (at
/// least 2) workers.
pub(crate) fn measure(workers: usize, resizes: usize) -> anyhow::Result<ResizeTable> {
    let workers = workers.max(2);
    let rows = [false, true]
        .into_iter()
        .map(|keyed| row(keyed, workers, resizes))
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(ResizeTable {
        workload: ID,
        workers,
        rows,
    })
}

/// One row: a pool under load from the producers, resized `resizes` times.
fn row(keyed: bool, workers: usize, resizes: usize) -> anyhow::Result<ResizeRow> {
    let builder = Pool::builder().workers(workers).max_workers(workers);
    let builder = if keyed {
        builder.chunk_by(|n: &u64| n % KEYS)
    } else {
        builder
    };
    let pool = builder
        .build(|_ctx: &Ctx, n: u64| {
            std::hint::black_box(work(n, 20));
            Ok::<(), std::convert::Infallible>(())
        })
        .context("building the pool")?;
    let running = AtomicBool::new(true);
    let mut times = std::thread::scope(|scope| -> anyhow::Result<Vec<Duration>> {
        for producer in 0..PRODUCERS as u64 {
            let (pool, running) = (&pool, &running);
            scope.spawn(move || {
                let mut submitter = pool.submitter();
                let mut n = producer;
                while running.load(Relaxed) {
                    if submitter.submit(n).is_err() {
                        break;
                    }
                    n += PRODUCERS as u64;
                }
            });
        }
        // A fixed walk up and down: 1, workers, 2, workers - 1, ...
        let mut times = Vec::with_capacity(resizes);
        let mut outcome = Ok(());
        for step in 0..resizes {
            let n_workers = if step % 2 == 0 {
                1 + (step / 2) % workers
            } else {
                workers - (step / 2) % workers
            };
            let started = Instant::now();
            if let Err(error) = pool.set_workers(n_workers) {
                outcome = Err(error).context("resizing under load");
                break;
            }
            times.push(started.elapsed());
        }
        running.store(false, Relaxed);
        outcome.map(|()| times)
    })?;
    let report = pool.join();
    anyhow::ensure!(
        report.is_balanced(),
        "the books of the resized pool do not balance"
    );
    times.sort_unstable();
    let micros = |time: Duration| time.as_secs_f64() * 1e6;
    let at = |quantile: f64| {
        let index = ((times.len() as f64 * quantile).ceil() as usize).clamp(1, times.len()) - 1;
        micros(times[index])
    };
    Ok(ResizeRow {
        pool: if keyed { "keyed" } else { "unkeyed" },
        resizes: times.len(),
        items: report.processed(),
        mean_us: times.iter().copied().map(micros).sum::<f64>() / times.len() as f64,
        p50_us: at(0.5),
        p99_us: at(0.99),
        max_us: at(1.0),
    })
}

impl ResizeTable {
    /// The header and the cells of every row.
    fn cells(&self) -> (Vec<&'static str>, Vec<Vec<String>>) {
        let header = vec![
            "pool",
            "resizes",
            "mean µs",
            "p50 µs",
            "p99 µs",
            "max µs",
            "items meanwhile",
        ];
        let rows = self
            .rows
            .iter()
            .map(|row| {
                vec![
                    row.pool.to_owned(),
                    row.resizes.to_string(),
                    format!("{:.1}", row.mean_us),
                    format!("{:.1}", row.p50_us),
                    format!("{:.1}", row.p99_us),
                    format!("{:.1}", row.max_us),
                    thousands(row.items),
                ]
            })
            .collect();
        (header, rows)
    }

    /// The title line.
    fn title(&self) -> String {
        format!(
            "{ID} {NAME}: Pool::set_workers between 1 and {} workers while {PRODUCERS} producers \
             submit work(x, 20) items without pause (keyed: {KEYS} keys)",
            self.workers
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
}
