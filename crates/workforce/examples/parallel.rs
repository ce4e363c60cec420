//! bigopool's `Parallel` with cancellation: three services run side by side
//! on `workforce::collect::Parallel`; when one fails, the others see the run's
//! cancel token and stop early, and every error comes back in closure order.
//!
//! ```sh
//! cargo run -p workforce --example parallel                                 # message 1234 is malformed
//! cargo run -p workforce --example parallel -- --poison none                # a clean run
//! cargo run -p workforce --example parallel -- --messages 50000 --poison 40000
//! ```
//!
//! The services, in closure order:
//!
//! 0. `heartbeat`: beats every 5 ms until the run is cancelled.
//! 1. `cache`: refreshes a price table every 10 ms until the run is cancelled.
//! 2. `consumer`: handles a stream of `--messages` messages (about 50 µs
//!    each); a malformed one (`--poison N`) is an error, which cancels the run.
//!    At the end of a clean stream it cancels the run itself, so that the
//!    other two stop without anything having failed.
//!
//! What it shows:
//!
//! - **Closures of different types in one run** with [`Parallel`]'s
//!   `cancelable_task`, each borrowing a local it fills in (no `Arc`, no
//!   `'static`): the run is scoped, so the locals are readable afterwards.
//! - **Cancellation is a signal.** Each closure gets `&` the run token; the
//!   first error (or panic) cancels it, and the closures that watch it stop.
//!   Here they wait with `token.wait_timeout(..)` instead of `sleep`, so they
//!   wake the moment it fires. A closure that stops because of the cancel
//!   returns `Ok(())`: the error list keeps to the real failures.
//! - **Every error, in closure order** (not completion order), each with the
//!   closure's index: `closure 2 failed: ...`.
//!
//! Output: one line per service (`<name> <how it ended>`), the errors, and
//! `summary: heartbeat=<ok|failed> cache=<ok|failed> consumer=<ok|failed>
//! consumed=<n> errors=<n>`. The counts of beats and refreshes depend on
//! timing; everything else does not.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use workforce::collect::Parallel;
use workforce::prelude::*;

const USAGE: &str = "usage: parallel [--messages N] [--poison N|none]";

/// The command line.
struct Options {
    messages: u64,
    /// The malformed message, if any.
    poison: Option<u64>,
}

fn parse_args() -> anyhow::Result<Options> {
    let mut options = Options {
        messages: 2_000,
        poison: Some(1_234),
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--messages" => options.messages = value()?.parse().context("--messages")?,
            "--poison" => {
                options.poison = match value()?.as_str() {
                    "none" => None,
                    number => Some(number.parse().context("--poison")?),
                }
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => anyhow::bail!("unknown argument {other:?}\n{USAGE}"),
        }
    }
    Ok(options)
}

/// How a service that runs until the run is cancelled ended.
#[derive(Debug, Default)]
struct Stopped {
    rounds: u64,
}

/// Message `n` of the consumer's stream: `"<n>:<amount>"`, or a malformed one.
fn message(n: u64, poison: Option<u64>) -> String {
    if Some(n) == poison {
        format!("{n}:12x4")
    } else {
        format!("{n}:{}", n * 7 % 1_000)
    }
}

/// Handles one message: parses it and does about 50 µs of work with it.
fn handle(message: &str) -> anyhow::Result<u64> {
    let (_, amount) = message
        .split_once(':')
        .with_context(|| format!("no `:` in {message:?}"))?;
    let amount: u64 = amount
        .parse()
        .with_context(|| format!("malformed payload {message:?}"))?;
    let started = Instant::now();
    let mut value = amount | 1;
    while started.elapsed() < Duration::from_micros(50) {
        value ^= value << 13;
        value ^= value >> 7;
        value ^= value << 17;
    }
    Ok(std::hint::black_box(value) % 2 + amount)
}

fn main() -> anyhow::Result<()> {
    let options = parse_args()?;

    let mut heartbeat = Stopped::default();
    let mut cache = Stopped::default();
    let mut prices = vec![0u64; 1_000];
    let mut consumed = 0u64;

    let result = Parallel::default()
        .cancelable_task(|token: &CancelToken| {
            // `wait_timeout` is the sleep: it returns `true` the moment the
            // run is cancelled.
            while !token.wait_timeout(Duration::from_millis(5)) {
                heartbeat.rounds += 1;
            }
            Ok(())
        })
        .cancelable_task(|token: &CancelToken| {
            while !token.wait_timeout(Duration::from_millis(10)) {
                cache.rounds += 1;
                for (index, price) in prices.iter_mut().enumerate() {
                    *price = (index as u64 * 31 + cache.rounds) % 997;
                }
            }
            Ok(())
        })
        .cancelable_task(|token: &CancelToken| -> anyhow::Result<()> {
            for n in 0..options.messages {
                if token.is_cancelled() {
                    return Ok(()); // another service failed: stop here
                }
                handle(&message(n, options.poison)).with_context(|| format!("message {n}"))?;
                consumed += 1;
            }
            // The stream is done: shut the other services down.
            token.cancel();
            Ok(())
        })
        .run();

    let errors = match result {
        Ok(()) => Vec::new(),
        Err(errors) => errors.all(),
    };
    let failed = |index: usize| errors.iter().any(|error| error.index() == index);
    let how = |index: usize, stopped: &Stopped, unit: &str| {
        if failed(index) {
            "failed".to_owned()
        } else {
            format!("stopped by the cancel after {} {unit}", stopped.rounds)
        }
    };
    println!("heartbeat  {}", how(0, &heartbeat, "beats"));
    println!("cache      {}", how(1, &cache, "refreshes"));
    if failed(2) {
        println!(
            "consumer   failed after {consumed} of {} messages",
            options.messages
        );
    } else {
        println!(
            "consumer   handled {consumed} of {} messages",
            options.messages
        );
    }
    println!("errors in closure order: {}", errors.len());
    for error in &errors {
        // `{:#}` shows the whole chain of an anyhow error on one line.
        match error.error() {
            Some(cause) => println!("  closure {} failed: {cause:#}", error.index()),
            None => println!("  {error}"), // a panic
        }
    }
    let verdict = |index: usize| if failed(index) { "failed" } else { "ok" };
    println!(
        "summary: heartbeat={} cache={} consumer={} consumed={consumed} errors={}",
        verdict(0),
        verdict(1),
        verdict(2),
        errors.len()
    );
    Ok(())
}
