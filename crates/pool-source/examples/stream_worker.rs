//! A consumer process: runs a pool over a Redis stream's consumer group until
//! Ctrl-C (SIGINT), then drains, flushes its acks and prints a summary line.
//! Run several, with different `--consumer` names, to scale out.
//!
//! ```text
//! cargo run -p pool-source --example stream_worker -- \
//!     --url redis://127.0.0.1:6379/ --stream jobs --group workers --consumer w1
//! ```
//!
//! Flags (all optional but `--consumer`): `--url`, `--stream` (jobs),
//! `--group` (workers), `--workers` (2), `--capacity` (256), `--rounds` (200:
//! the xorshift rounds of `work`), `--min-idle-ms` (60000),
//! `--claim-interval-ms` (10000), `--record HASH` (count each processed entry
//! in a Redis hash, `HINCRBY HASH <n> 1`: how a test counts duplicates).

#![allow(clippy::print_stderr)]

use std::collections::HashMap;
use std::time::Duration;

use pool_core::{Ctx, Worker};
use pool_source::{Consumer, Delivery, StreamEntry};

/// The xorshift work of the benches: `rounds` rounds from `x`.
fn work(mut x: u64, rounds: u32) -> u64 {
    for _ in 0..rounds {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    x
}

/// One worker thread: its own connection when processing is recorded.
struct StreamWorker {
    rounds: u32,
    record: Option<(String, redis::Connection)>,
    sum: u64,
}

impl Worker<Delivery<StreamEntry>> for StreamWorker {
    type Error = anyhow::Error;

    fn work(&mut self, _ctx: &Ctx, job: Delivery<StreamEntry>) -> anyhow::Result<()> {
        let n: u64 = job
            .message
            .get_str("n")
            .ok_or_else(|| anyhow::anyhow!("entry {} has no field n", job.id))?
            .parse()?;
        self.sum = self.sum.wrapping_add(work(n | 1, self.rounds));
        if let Some((hash, connection)) = &mut self.record {
            redis::cmd("HINCRBY")
                .arg(&*hash)
                .arg(n)
                .arg(1)
                .query::<i64>(connection)?;
        }
        Ok(())
    }
}

fn main() -> anyhow::Result<()> {
    let mut flags: HashMap<String, String> = HashMap::new();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let name = flag
            .strip_prefix("--")
            .ok_or_else(|| anyhow::anyhow!("expected a --flag, got {flag:?}"))?;
        let value = args
            .next()
            .ok_or_else(|| anyhow::anyhow!("--{name} needs a value"))?;
        flags.insert(name.to_owned(), value);
    }
    let get = |name: &str, default: &str| {
        flags
            .get(name)
            .cloned()
            .unwrap_or_else(|| default.to_owned())
    };
    let url = get("url", "redis://127.0.0.1:6379/");
    let consumer_name = flags
        .get("consumer")
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("--consumer NAME is required (unique per process)"))?;
    let workers: usize = get("workers", "2").parse()?;
    let capacity: usize = get("capacity", "256").parse()?;
    let rounds: u32 = get("rounds", "200").parse()?;
    let min_idle = Duration::from_millis(get("min-idle-ms", "60000").parse()?);
    let claim_interval = Duration::from_millis(get("claim-interval-ms", "10000").parse()?);
    let record = flags.get("record").cloned();
    let record_url = url.clone();

    let consumer = Consumer::redis(&url)
        .stream(get("stream", "jobs"))
        .group(get("group", "workers"))
        .consumer(consumer_name)
        .create_group(true)
        .min_idle(min_idle)
        .claim_interval(claim_interval)
        .pool(move |builder| {
            builder
                .workers(workers)
                .capacity(capacity)
                .continue_on_error()
                .build_stateful(move |_ctx: &Ctx| StreamWorker {
                    rounds,
                    record: record.clone().map(|hash| {
                        let connection = redis::Client::open(record_url.as_str())
                            .and_then(|client| client.get_connection())
                            .expect("the recording connection opens");
                        (hash, connection)
                    }),
                    sum: 0,
                })
        })
        .build()?;
    let stop = consumer.stop_handle();
    ctrlc::set_handler(move || stop.stop())?;
    println!("ready pid={}", std::process::id());
    let report = consumer.run()?;
    println!(
        "summary: read={} acked={} failed={} dead_lettered={} left_pending={} claimed={} \
         redelivered={} reconnects={} balanced={}",
        report.read,
        report.acked,
        report.failed,
        report.dead_lettered,
        report.left_pending,
        report.claimed,
        report.redelivered,
        report.reconnects,
        report.balances()
    );
    Ok(())
}
