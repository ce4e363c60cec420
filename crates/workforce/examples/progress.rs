//! A long CPU-bound run (BENCHMARKS.md's W2 items, 5,000,000 of them) with a
//! progress bar driven by live `Pool::metrics` snapshots, and the final stats
//! table. The workers pull the items themselves (`Pool::run`). The bar
//! redraws when the pool has moved on (`Pool::wait_for_change`), not on a
//! timer: no sleep, no polling.
//!
//! ```sh
//! cargo run --release -p workforce --example progress            # 5,000,000 items
//! cargo run --release -p workforce --example progress -- 200000  # fewer
//! ```

use std::time::Duration;

use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressStyle};
use workforce::Stats;
use workforce::prelude::*;

/// W2's per-item work: 200 rounds of xorshift64.
fn work(item: u64) -> u64 {
    let mut value = item | 1;
    for _ in 0..200 {
        value ^= value << 13;
        value ^= value >> 7;
        value ^= value << 17;
    }
    value
}

fn main() -> anyhow::Result<()> {
    let n_items: u64 = match std::env::args().nth(1) {
        Some(text) => text.parse().context("the item count must be a number")?,
        None => 5_000_000,
    };
    let workers = std::thread::available_parallelism().map_or(2, usize::from);
    let pool = Pool::builder()
        .workers(workers)
        .metrics(MetricsMode::Latency)
        .build(|ctx: &Ctx, item: u64| {
            if std::hint::black_box(work(item)).is_multiple_of(1_000) {
                ctx.metrics().inc("multiples of 1000");
            }
            Ok::<(), std::convert::Infallible>(())
        })?;

    let bar = ProgressBar::new(n_items);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} items  {per_sec}  eta {eta}  {msg}")?
            .progress_chars("=> "),
    );
    std::thread::scope(|scope| -> anyhow::Result<()> {
        let pool = &pool;
        // Pull mode: the workers take the items from the range themselves;
        // `run` returns once every item has run. Closing the pool then is a
        // change the bar's loop wakes for.
        let producer = scope.spawn(move || -> anyhow::Result<u64> {
            let taken = pool
                .run(0..n_items)
                .map_err(|error| anyhow::anyhow!("the pool stopped early: {error}"));
            pool.close();
            taken
        });
        // The bar reads snapshots; taking one never blocks a worker, and
        // waiting for the next costs the workers one load per batch.
        let mut snapshot = pool.metrics();
        loop {
            bar.set_position(snapshot.finished());
            bar.set_message(format!(
                "queued {}  in flight {}  errors {}",
                snapshot.queued, snapshot.in_flight, snapshot.error_total
            ));
            if snapshot.closed && snapshot.finished() >= snapshot.submitted {
                break;
            }
            // Wakes when items finish (or the pool closes); the timeout
            // only keeps the rate and eta ticking through a long item.
            snapshot = pool
                .wait_for_change(&snapshot, Duration::from_secs(1))
                .unwrap_or_else(|| pool.metrics());
        }
        let taken = producer
            .join()
            .map_err(|_| anyhow::anyhow!("the run panicked"))??;
        anyhow::ensure!(taken == n_items, "the pool took {taken} of {n_items} items");
        Ok(())
    })?;
    let report = pool.wait()?;
    bar.finish_with_message("done");
    let stats: &Stats = report.stats();
    println!("\n{stats}");
    anyhow::ensure!(
        report.is_balanced(),
        "the accounting does not add up: {report}"
    );
    Ok(())
}
