//! W12 `broker`: entries through a Redis stream's consumer group. 200,000
//! entries (10,000 under `--quick`) are added to a stream first; then they
//! are read and acknowledged by a bare `XREADGROUP COUNT 256` + `XACK` loop
//! doing the work inline (the floor: no pool), by one `pool-source`
//! consumer process, and, with work that dominates, by one and by two
//! consumer processes (each with one worker, so two processes is scale-out,
//! not more threads in one). The clock runs from the consumers' go to the
//! group having nothing left to deliver and nothing pending. A consumer
//! process is this binary again (`--broker-consumer`), so the bench needs no
//! other build. Needs `redis-server` on PATH; without it the workload is
//! skipped with a line saying so.

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::TcpListener;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use pool_core::Ctx;
use pool_source::{Consumer, Delivery, StreamEntry};
use redis::Commands as _;
use serde::Serialize;

use crate::report::{TargetCheck, thousands};
use crate::workload::work;

/// W12's id in tables and `--workload`.
pub(crate) const ID: &str = "W12";

/// W12's name.
pub(crate) const NAME: &str = "broker";

/// Entries per row.
pub(crate) const ENTRIES: u64 = 200_000;

/// Entries per row under `--quick`.
pub(crate) const QUICK_ENTRIES: u64 = 10_000;

/// The light work: `work(x, 200)`, some 100 ns, well below a round trip.
const LIGHT_ROUNDS: u32 = 200;

/// The heavy work: `work(x, 20_000)`, some 10-20 µs, far above the broker's
/// cost per entry.
const HEAVY_ROUNDS: u32 = 20_000;

/// Entries per read, the bare loop's and the consumers' pool capacity.
const BATCH: usize = 256;

/// The first argument that turns this binary into a consumer process.
pub(crate) const CONSUMER_FLAG: &str = "--broker-consumer";

/// Whether `text` names this workload on the command line.
pub(crate) fn matches(text: &str) -> bool {
    text.eq_ignore_ascii_case(ID) || text.eq_ignore_ascii_case(NAME)
}

/// One row.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct BrokerRow {
    /// What ran.
    pub(crate) implementation: String,
    /// Consumer processes (the bare loop: one thread).
    pub(crate) consumers: usize,
    /// Rounds of `work` per entry.
    pub(crate) rounds: u32,
    /// Wall time, seconds.
    pub(crate) secs: f64,
    /// Entries per second.
    pub(crate) entries_per_sec: f64,
    /// The ratio to the row it is compared with, and that row.
    pub(crate) ratio: Option<(f64, &'static str)>,
}

/// W12's results, or why it was skipped.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct BrokerTable {
    /// `W12`.
    pub(crate) workload: &'static str,
    /// Entries per row.
    pub(crate) entries: u64,
    /// The rows; empty when skipped.
    pub(crate) rows: Vec<BrokerRow>,
    /// Why the workload did not run.
    pub(crate) skipped: Option<String>,
}

/// A redis-server of the bench's own, killed on drop.
struct Server {
    child: Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts redis-server on a free loopback port, or says why not.
fn start_server() -> Result<Server, String> {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map_err(|error| format!("no free port: {error}"))?
        .port();
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|error| {
            format!(
                "redis-server not installed ({error}): `cargo xtask test` installs it, \
                 or `apt-get install redis-server`"
            )
        })?;
    let server = Server {
        child,
        url: format!("redis://127.0.0.1:{port}/"),
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let ping = redis::Client::open(server.url.as_str())
            .and_then(|client| client.get_connection())
            .and_then(|mut connection| redis::cmd("PING").query::<String>(&mut connection));
        if ping.is_ok() {
            return Ok(server);
        }
        if Instant::now() > deadline {
            return Err("redis-server did not answer within 10 s".to_owned());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs W12, or returns a table that says why it was skipped.
pub(crate) fn measure(quick: bool) -> anyhow::Result<BrokerTable> {
    let entries = if quick { QUICK_ENTRIES } else { ENTRIES };
    let mut table = BrokerTable {
        workload: ID,
        entries,
        rows: Vec::new(),
        skipped: None,
    };
    let server = match start_server() {
        Ok(server) => server,
        Err(reason) => {
            table.skipped = Some(reason);
            return Ok(table);
        }
    };
    let mut connection = redis::Client::open(server.url.as_str())?.get_connection()?;
    let bare = {
        let stream = fill(&mut connection, "bare", entries)?;
        let started = Instant::now();
        bare_loop(&mut connection, &stream, LIGHT_ROUNDS)?;
        row(
            "bare XREADGROUP + XACK loop (floor)",
            1,
            LIGHT_ROUNDS,
            entries,
            started.elapsed(),
            None,
        )
    };
    let light = consumers_row(
        &server.url,
        &mut connection,
        "light",
        1,
        LIGHT_ROUNDS,
        entries,
    )?;
    let heavy_one = consumers_row(
        &server.url,
        &mut connection,
        "heavy1",
        1,
        HEAVY_ROUNDS,
        entries,
    )?;
    let heavy_two = consumers_row(
        &server.url,
        &mut connection,
        "heavy2",
        2,
        HEAVY_ROUNDS,
        entries,
    )?;
    let light = BrokerRow {
        ratio: Some((
            light.entries_per_sec / bare.entries_per_sec,
            "the bare loop",
        )),
        ..light
    };
    let heavy_two = BrokerRow {
        ratio: Some((
            heavy_two.entries_per_sec / heavy_one.entries_per_sec,
            "one consumer",
        )),
        ..heavy_two
    };
    table.rows = vec![bare, light, heavy_one, heavy_two];
    Ok(table)
}

/// A row from a measured time.
fn row(
    implementation: &str,
    consumers: usize,
    rounds: u32,
    entries: u64,
    elapsed: Duration,
    ratio: Option<(f64, &'static str)>,
) -> BrokerRow {
    BrokerRow {
        implementation: implementation.to_owned(),
        consumers,
        rounds,
        secs: elapsed.as_secs_f64(),
        entries_per_sec: entries as f64 / elapsed.as_secs_f64(),
        ratio,
    }
}

/// Adds `entries` entries `{n}` to a new stream `w12-<name>` with group `g`
/// at its start; returns the stream's name.
fn fill(connection: &mut redis::Connection, name: &str, entries: u64) -> anyhow::Result<String> {
    let stream = format!("w12-{name}");
    let mut next = 0;
    while next < entries {
        let end = (next + 1_000).min(entries);
        let mut pipe = redis::pipe();
        for n in next..end {
            pipe.cmd("XADD")
                .arg(&stream)
                .arg("*")
                .arg("n")
                .arg(n)
                .ignore();
        }
        pipe.query::<()>(connection)?;
        next = end;
    }
    connection
        .xgroup_create::<_, _, _, ()>(&stream, "g", "0")
        .context("XGROUP CREATE")?;
    Ok(stream)
}

/// The floor: read 256, work on each inline, ack them, until nothing is left.
fn bare_loop(connection: &mut redis::Connection, stream: &str, rounds: u32) -> anyhow::Result<u64> {
    let options = redis::streams::StreamReadOptions::default()
        .group("g", "bare")
        .count(BATCH);
    let mut sum = 0u64;
    loop {
        let reply: Option<redis::streams::StreamReadReply> =
            connection.xread_options(&[stream], &[">"], &options)?;
        let ids: Vec<redis::streams::StreamId> = reply
            .map(|reply| reply.keys.into_iter().flat_map(|key| key.ids).collect())
            .unwrap_or_default();
        if ids.is_empty() {
            return Ok(sum);
        }
        let mut done = Vec::with_capacity(ids.len());
        for entry in ids {
            let n: u64 = entry.get("n").context("field n")?;
            sum = sum.wrapping_add(std::hint::black_box(work(n, rounds)));
            done.push(entry.id);
        }
        connection.xack::<_, _, _, ()>(stream, "g", &done)?;
    }
}

/// A consumer process of this binary.
struct ConsumerProcess {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

/// Runs `consumers` consumer processes over a filled stream and times them
/// from their go to an empty, settled group.
fn consumers_row(
    url: &str,
    connection: &mut redis::Connection,
    name: &str,
    consumers: usize,
    rounds: u32,
    entries: u64,
) -> anyhow::Result<BrokerRow> {
    let stream = fill(connection, name, entries)?;
    let exe = std::env::current_exe().context("this binary's path")?;
    let mut processes = Vec::new();
    for index in 0..consumers {
        let mut child = Command::new(&exe)
            .args([
                CONSUMER_FLAG,
                url,
                &stream,
                &format!("c{index}"),
                &rounds.to_string(),
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting a consumer process")?;
        let stdin = child.stdin.take().context("piped stdin")?;
        let mut stdout = BufReader::new(child.stdout.take().context("piped stdout")?);
        let mut line = String::new();
        stdout.read_line(&mut line)?;
        if line.trim() != "ready" {
            bail!("a consumer process said {line:?} instead of `ready`");
        }
        processes.push(ConsumerProcess {
            child,
            stdin,
            stdout,
        });
    }
    let started = Instant::now();
    for process in &mut processes {
        writeln!(process.stdin, "go")?;
    }
    loop {
        let groups: redis::streams::StreamInfoGroupsReply = connection.xinfo_groups(&stream)?;
        let group = groups.groups.first().context("the group")?;
        if group.lag == Some(0) && group.pending == 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let elapsed = started.elapsed();
    let mut acked = 0u64;
    for mut process in processes {
        writeln!(process.stdin, "stop")?;
        let mut line = String::new();
        process.stdout.read_line(&mut line)?;
        acked += line
            .trim()
            .strip_prefix("acked=")
            .and_then(|count| count.parse::<u64>().ok())
            .with_context(|| format!("a consumer process said {line:?} instead of `acked=N`"))?;
        process.child.wait()?;
    }
    if acked < entries {
        bail!("{acked} of {entries} entries acked");
    }
    let implementation = format!(
        "workforce pool-source, {consumers} consumer process{}",
        if consumers == 1 { "" } else { "es" }
    );
    Ok(row(
        &implementation,
        consumers,
        rounds,
        entries,
        elapsed,
        None,
    ))
}

/// The consumer process (`peer-bench --broker-consumer URL STREAM NAME
/// ROUNDS`): says `ready`, waits for `go`, runs one worker until `stop`,
/// then says `acked=N`.
pub(crate) fn consumer_main(args: &[String]) -> anyhow::Result<()> {
    let [url, stream, name, rounds] = args else {
        bail!("usage: {CONSUMER_FLAG} URL STREAM NAME ROUNDS");
    };
    let rounds: u32 = rounds.parse()?;
    let mut stdin = std::io::stdin().lock();
    println!("ready");
    let mut line = String::new();
    stdin.read_line(&mut line)?;
    let consumer = Consumer::redis(url.as_str())
        .stream(stream.as_str())
        .group("g")
        .consumer(name.as_str())
        .read_block(Duration::from_millis(10))
        .pool(move |builder| {
            builder
                .workers(1)
                .capacity(BATCH)
                .continue_on_error()
                .build(
                    move |_ctx: &Ctx, entry: Delivery<StreamEntry>| -> anyhow::Result<()> {
                        let n: u64 = entry.message.get_str("n").context("field n")?.parse()?;
                        std::hint::black_box(work(n, rounds));
                        Ok(())
                    },
                )
        })
        .build()?;
    let stop = consumer.stop_handle();
    let running = std::thread::spawn(move || consumer.run());
    line.clear();
    stdin.read_line(&mut line)?;
    stop.stop();
    let report = running
        .join()
        .map_err(|_| anyhow::anyhow!("the consumer panicked"))??;
    println!("acked={}", report.acked);
    Ok(())
}

impl BrokerTable {
    /// The title line.
    fn title(&self) -> String {
        format!(
            "{ID} {NAME}: {} entries from a Redis stream's consumer group (each consumer \
             process: 1 worker, capacity {BATCH}; light work(x, {LIGHT_ROUNDS}), heavy \
             work(x, {HEAVY_ROUNDS}))",
            thousands(self.entries)
        )
    }

    fn cells(&self) -> (Vec<&'static str>, Vec<Vec<String>>) {
        let header = vec![
            "implementation",
            "work rounds",
            "seconds",
            "entries/s",
            "ratio",
        ];
        let rows = self
            .rows
            .iter()
            .map(|row| {
                vec![
                    row.implementation.clone(),
                    thousands(u64::from(row.rounds)),
                    format!("{:.3}", row.secs),
                    thousands(row.entries_per_sec as u64),
                    row.ratio
                        .map_or_else(String::new, |(ratio, to)| format!("{ratio:.2}x {to}")),
                ]
            })
            .collect();
        (header, rows)
    }

    /// The table as aligned text (or the skip line).
    pub(crate) fn to_text(&self) -> String {
        if let Some(reason) = &self.skipped {
            return format!("{ID} {NAME}: skipped: {reason}\n");
        }
        let (header, rows) = self.cells();
        crate::table::aligned(&self.title(), &header, &rows)
    }

    /// The table as Markdown (or the skip line).
    pub(crate) fn to_markdown(&self) -> String {
        if let Some(reason) = &self.skipped {
            return format!("### {ID} {NAME}\n\nSkipped: {reason}\n");
        }
        let (header, rows) = self.cells();
        crate::table::markdown(&self.title(), &header, &rows)
    }
}

/// The two targets of BENCHMARKS.md: one consumer at least 80% of the bare
/// loop with light work; two at least 1.8x one with heavy work.
pub(crate) fn check_targets(table: &BrokerTable) -> Vec<TargetCheck> {
    let mut checks = Vec::new();
    if let Some((ratio, _)) = table.rows.get(1).and_then(|row| row.ratio) {
        checks.push(TargetCheck {
            workload: ID,
            workers: 1,
            name: format!("{ID} one consumer vs the bare loop (light work)"),
            target: ">= 0.80x the bare loop's entries/s".to_owned(),
            measured: format!("{ratio:.2}x"),
            met: ratio >= 0.8,
            informational: false,
        });
    }
    if let Some((ratio, _)) = table.rows.get(3).and_then(|row| row.ratio) {
        checks.push(TargetCheck {
            workload: ID,
            workers: 2,
            name: format!("{ID} two consumers vs one (heavy work)"),
            target: ">= 1.8x one consumer's entries/s".to_owned(),
            measured: format!("{ratio:.2}x"),
            met: ratio >= 1.8,
            informational: false,
        });
    }
    checks
}
