//! Ctrl-C stops a long run cleanly: the pool is cancelled, every worker
//! finishes the item in its hands, the queued items are dropped and counted,
//! and the program prints the report and exits with status 0.
//!
//! ```sh
//! cargo run -p workforce --example graceful_shutdown                   # press Ctrl-C while it runs
//! cargo run -p workforce --example graceful_shutdown -- --items 5000   # a short run to its end
//! cargo run -p workforce --example graceful_shutdown -- --items 10000000 --work-us 50 --workers 4
//! ```
//!
//! What it shows:
//!
//! - **A token shared with a signal handler.** The `ctrlc` handler (it runs on
//!   a thread of its own, not inside the signal) cancels a [`CancelToken`];
//!   the pool was built with [`Builder::cancel_token`](workforce::Builder::cancel_token),
//!   so its own token, a child, fires with it. A second Ctrl-C exits at once
//!   with status 130, for a run that does not stop quickly enough.
//! - **What cancelling does.** Workers finish the item they hold (work that
//!   takes long should poll `ctx.is_cancelled()`); queued items are dropped
//!   and counted as `dropped`; the producer blocked in `submit_iter` gets its
//!   item back as `SubmitError::Cancelled` and stops. Items it never submitted
//!   are not the pool's: the report does not count them, the summary does.
//! - **The accounting.** `submitted == processed + failed + dropped` holds for
//!   a cancelled run too. One item in a thousand is a "corrupt record" that
//!   fails, so all three counts show up; `continue_on_error` keeps the run
//!   going past them, and `pool.join()` returns the report (`wait()` would
//!   turn a cancelled run into `Err(PoolError::Cancelled)`).
//!
//! Output on stdout: `ready pid=<pid>` once the first item is being processed
//! (a script or test waits for it, then sends SIGINT), the report, the first
//! error, and a last line to parse:
//! `summary: items=N submitted=S processed=P failed=F dropped=D not_submitted=U cancelled=true|false`.
//! The exit status is 0 whether or not the run was interrupted.

use std::sync::Once;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use workforce::prelude::*;

const USAGE: &str = "usage: graceful_shutdown [--items N] [--work-us MICROS] [--workers N]";

/// The command line.
struct Options {
    items: u64,
    work: Duration,
    workers: usize,
}

fn parse_args() -> anyhow::Result<Options> {
    let mut options = Options {
        items: 100_000,
        work: Duration::from_micros(20),
        workers: std::thread::available_parallelism().map_or(2, usize::from),
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut number = || -> anyhow::Result<u64> {
            let value = args
                .next()
                .with_context(|| format!("{flag} needs a number"))?;
            value
                .parse()
                .with_context(|| format!("{flag} {value:?} is not a number"))
        };
        match flag.as_str() {
            "--items" => options.items = number()?,
            "--work-us" => options.work = Duration::from_micros(number()?),
            "--workers" => options.workers = usize::try_from(number()?)?,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => anyhow::bail!("unknown argument {other:?}\n{USAGE}"),
        }
    }
    Ok(options)
}

/// Slow-ish work: computes for `work`, as parsing or checksumming a record
/// would.
fn process(item: u64, work: Duration) -> anyhow::Result<u64> {
    let started = Instant::now();
    let mut value = item | 1;
    while started.elapsed() < work {
        for _ in 0..64 {
            value ^= value << 13;
            value ^= value >> 7;
            value ^= value << 17;
        }
    }
    anyhow::ensure!(item % 1_000 != 999, "item {item}: corrupt record");
    Ok(value)
}

fn main() -> anyhow::Result<()> {
    let options = parse_args()?;

    // Installed before any work starts, so no Ctrl-C can find the default
    // handler (which would kill the process without a report).
    let shutdown = CancelToken::new();
    let on_signal = shutdown.clone();
    ctrlc::set_handler(move || {
        if on_signal.is_cancelled() {
            eprintln!("graceful_shutdown: second Ctrl-C, exiting without a report");
            std::process::exit(130);
        }
        eprintln!(
            "graceful_shutdown: Ctrl-C, cancelling: items in hand finish, queued items are dropped"
        );
        on_signal.cancel();
    })
    .context("cannot install the Ctrl-C handler")?;

    let ready = Once::new();
    let work = options.work;
    let pool = Pool::builder()
        .workers(options.workers)
        .continue_on_error()
        .cancel_token(shutdown.clone())
        .build(move |_ctx: &Ctx, item: u64| {
            ready.call_once(|| {
                println!("ready pid={}", std::process::id());
            });
            std::hint::black_box(process(item, work)?);
            Ok::<(), anyhow::Error>(())
        })?;

    // Blocks while the pool is full. On Ctrl-C the pool refuses the next item
    // (handing it back as `SubmitError::Cancelled`) and the producer stops
    // there; the temporary submitter's drop pushes (or, cancelled, drops and
    // counts) the batch it was filling.
    match pool.submitter().submit_iter(0..options.items) {
        Ok(()) | Err(SubmitError::Cancelled(_)) => {}
        Err(refused) => anyhow::bail!("the pool refused an item: {refused}"),
    }

    let report = pool.join();
    println!("report: {report}");
    if let Some(first) = report.errors().first() {
        println!("first error: {first}");
    }
    anyhow::ensure!(
        report.is_balanced(),
        "the accounting does not add up: {report}"
    );
    println!(
        "summary: items={} submitted={} processed={} failed={} dropped={} not_submitted={} cancelled={}",
        options.items,
        report.submitted(),
        report.processed(),
        report.failed(),
        report.dropped(),
        options.items - report.submitted(),
        report.was_cancelled(),
    );
    Ok(())
}
