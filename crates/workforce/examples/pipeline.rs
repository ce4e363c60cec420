//! A three-stage pipeline, parse → transform → format, ending in a
//! `Collector` that one writer thread drains.
//!
//! ```sh
//! cargo run -p workforce --example pipeline                          # 200,000 lines
//! cargo run -p workforce --example pipeline -- --lines 20000
//! cargo run --release -p workforce --example pipeline -- --out rows.csv
//! ```
//!
//! What it shows:
//!
//! - **Pools feeding pools.** Each stage is its own pool. A stage's workers
//!   feed the next pool through a [`Sender`], which blocks when the next stage
//!   is full, so memory stays bounded end to end.
//! - **A `Collector` at the end.** The last stage's workers submit formatted
//!   lines to a bounded [`Collector`]; one writer thread takes them and writes
//!   them out (to `--out`, or counts them), because a file is written by one
//!   hand. If the writer fails, it cancels the collector: the format workers'
//!   submits are refused instead of blocking forever, and the refusals are
//!   counted as that stage's failures.
//! - **Shutdown stage by stage.** When the input is done, `finish` on the
//!   first pool drains it (every parse has sent its record on), then on the
//!   second, then on the third; then the collector is closed, and the writer
//!   ends after the last line.
//! - **Nothing lost.** Every stage's report satisfies `submitted == processed +
//!   failed + dropped`, each stage accepted what the one before processed, and
//!   the writer wrote what the last stage processed.
//!
//! Output: one line per stage with its invariant,
//! `<stage>: submitted <n> = processed <n> + failed <n> + dropped <n>`, the
//! writer's line `collector: wrote <n> lines, <n> bytes`, and
//! `summary: lines=<n> written=<n> failed=<n> dropped=<n>`. One input line in a
//! thousand is malformed and fails at the parse stage.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

use anyhow::Context as _;
use workforce::collect::Collector;
use workforce::prelude::*;

const USAGE: &str = "usage: pipeline [--lines N] [--out FILE]";

/// The command line.
struct Options {
    lines: u64,
    out: Option<PathBuf>,
}

fn parse_args() -> anyhow::Result<Options> {
    let mut options = Options {
        lines: 200_000,
        out: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--lines" => options.lines = value()?.parse().context("--lines")?,
            "--out" => options.out = Some(PathBuf::from(value()?)),
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => anyhow::bail!("unknown argument {other:?}\n{USAGE}"),
        }
    }
    Ok(options)
}

/// A parsed input line.
struct Record {
    id: u64,
    amount_cents: i64,
}

/// A record after the transform stage.
struct Row {
    id: u64,
    net_eur: f64,
    vat_eur: f64,
}

/// `"<id>,<amount in cents>"`; anything else is an error.
fn parse(line: &str) -> anyhow::Result<Record> {
    let (id, amount) = line
        .split_once(',')
        .with_context(|| format!("no comma in {line:?}"))?;
    Ok(Record {
        id: id.trim().parse()?,
        amount_cents: amount.trim().parse()?,
    })
}

/// The input: `lines` lines, one in a thousand malformed.
fn input(lines: u64) -> impl Iterator<Item = String> {
    (0..lines).map(|n| {
        if n % 1_000 == 999 {
            format!("{n};broken")
        } else {
            format!("{n},{}", n % 10_000)
        }
    })
}

/// The one writer: takes every line from the collector until it is closed.
/// Returns the lines and bytes written.
fn write_lines(collector: &Collector<String>, out: &mut dyn Write) -> anyhow::Result<(u64, u64)> {
    let (mut lines, mut bytes) = (0u64, 0u64);
    for line in collector {
        let line = line?; // only a cancelled collector yields an error
        out.write_all(line.as_bytes())?;
        lines += 1;
        bytes += line.len() as u64;
    }
    out.flush()?;
    Ok((lines, bytes))
}

/// `<stage>: submitted S = processed P + failed F + dropped D`.
fn stage_line(stage: &str, report: &Report) -> String {
    format!(
        "{stage}: submitted {} = processed {} + failed {} + dropped {}",
        report.submitted(),
        report.processed(),
        report.failed(),
        report.dropped()
    )
}

fn main() -> anyhow::Result<()> {
    let options = parse_args()?;
    let mut out: Box<dyn Write + Send> = match &options.out {
        Some(path) => Box::new(BufWriter::new(
            File::create(path).with_context(|| format!("cannot create {}", path.display()))?,
        )),
        None => Box::new(std::io::sink()),
    };

    // The end of the line: a bounded collection point for one consumer.
    let collector = Collector::<String>::new(4_096)?;

    // Stage 3: format each row as a CSV line for the writer.
    let to_writer = collector.sender();
    let format = Pool::builder()
        .workers(2)
        .build(move |_ctx: &Ctx, row: Row| {
            let line = format!("{},{:.2},{:.2}\n", row.id, row.net_eur, row.vat_eur);
            to_writer
                .send(line)
                .map_err(|_| anyhow::anyhow!("the writer stopped early"))
        })?;

    // Stage 2: transform, sending each row on to stage 3.
    let to_format = format.sender();
    let transform = Pool::builder()
        .workers(2)
        .build(move |_ctx: &Ctx, record: Record| {
            let net_eur = record.amount_cents as f64 / 100.0;
            let row = Row {
                id: record.id,
                net_eur,
                vat_eur: net_eur * 0.2,
            };
            to_format
                .send(row)
                .map_err(|_| anyhow::anyhow!("the format stage closed early"))
        })?;

    // Stage 1: parse, sending each record on to stage 2. A malformed line is
    // its item's error, not the run's.
    let to_transform = transform.sender();
    let parse_stage = Pool::builder()
        .workers(2)
        .continue_on_error()
        .error_limit(10)
        .build(move |_ctx: &Ctx, line: String| {
            let record = parse(&line)?;
            to_transform
                .send(record)
                .map_err(|_| anyhow::anyhow!("the transform stage closed early"))
        })?;

    let (parsed, transformed, formatted, written) =
        std::thread::scope(|scope| -> anyhow::Result<_> {
            let collector = &collector;
            let writer = scope.spawn(move || {
                let written = write_lines(collector, &mut out);
                if written.is_err() {
                    // Refuse the format workers' lines instead of letting them
                    // wait for a reader that has gone.
                    collector.cancel();
                }
                written
            });

            let mut submitter = parse_stage.submitter();
            for line in input(options.lines) {
                submitter
                    .submit(line)
                    .map_err(|error| anyhow::anyhow!("input refused: {error}"))?;
            }
            drop(submitter);

            // Close stage by stage: each `finish` drains its pool, so every item
            // it accepted has been sent on before the next stage is closed.
            let parsed = parse_stage.join();
            let transformed = transform.join();
            let formatted = format.join();
            collector.close();
            let written = writer
                .join()
                .map_err(|_| anyhow::anyhow!("the writer panicked"))
                .and_then(|written| written);
            Ok((parsed, transformed, formatted, written))
        })?;

    // Every stage's account holds whatever happened, a failed writer included.
    println!("{}", stage_line("parse", &parsed));
    println!("{}", stage_line("transform", &transformed));
    println!("{}", stage_line("format", &formatted));
    let (written_lines, written_bytes) = written.context("the writer failed")?;
    println!("collector: wrote {written_lines} lines, {written_bytes} bytes");

    // Nothing lost across the stages.
    for report in [&parsed, &transformed, &formatted] {
        anyhow::ensure!(report.is_balanced(), "unbalanced stage: {report}");
    }
    anyhow::ensure!(parsed.processed() == transformed.submitted());
    anyhow::ensure!(transformed.processed() == formatted.submitted());
    anyhow::ensure!(formatted.processed() == written_lines);
    let failed = parsed.failed() + transformed.failed() + formatted.failed();
    let dropped = parsed.dropped() + transformed.dropped() + formatted.dropped();
    anyhow::ensure!(written_lines + failed + dropped == options.lines);
    println!(
        "summary: lines={} written={written_lines} failed={failed} dropped={dropped}",
        options.lines
    );
    Ok(())
}
