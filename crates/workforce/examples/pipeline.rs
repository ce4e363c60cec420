//! A three-stage pipeline: parse → transform → write.
//!
//! Each stage is its own pool. A stage's workers feed the next pool through a
//! [`Sender`], which blocks when the next stage is full, so memory stays
//! bounded end to end. Shutdown goes stage by stage: when the input is done,
//! `wait` on the first pool drains it (every parse has sent its record on), then
//! `wait` on the second, then on the third. At the end the reports of all three
//! stages are checked against each other: every line is written, failed
//! (a parse error), or dropped, and nothing disappears between stages.
//!
//! ```sh
//! cargo run --release -p workforce --example pipeline
//! ```

use std::sync::{Arc, Mutex};

use workforce::prelude::*;

/// A parsed input line.
#[derive(Debug)]
struct Record {
    id: u64,
    amount_cents: i64,
}

/// A record after the transform stage.
#[derive(Debug)]
struct Row {
    id: u64,
    amount_eur: f64,
}

/// `"<id>,<amount in cents>"`; anything else is an error.
fn parse(line: &str) -> anyhow::Result<Record> {
    let (id, amount) = line
        .split_once(',')
        .ok_or_else(|| anyhow::anyhow!("no comma in {line:?}"))?;
    Ok(Record {
        id: id.trim().parse()?,
        amount_cents: amount.trim().parse()?,
    })
}

/// The input: a million lines, one in a thousand malformed.
fn input() -> impl Iterator<Item = String> {
    (0..1_000_000u64).map(|n| {
        if n % 1_000 == 999 {
            format!("{n};broken")
        } else {
            format!("{n},{}", n % 10_000)
        }
    })
}

fn main() -> anyhow::Result<()> {
    let written = Arc::new(Mutex::new(Vec::<Row>::new()));

    // Stage 3: write. One buffer per worker, flushed in batches and in `finish`.
    let sink = Arc::clone(&written);
    let write = Pool::builder()
        .workers(1)
        .build_stateful(move |_id| Writer {
            buffer: Vec::with_capacity(1_024),
            sink: Arc::clone(&sink),
        })?;

    // Stage 2: transform, sending each row on to stage 3.
    let to_write = write.sender();
    let transform = Pool::builder()
        .workers(2)
        .build(move |_ctx: &Ctx, record: Record| {
            let row = Row {
                id: record.id,
                amount_eur: record.amount_cents as f64 / 100.0,
            };
            to_write
                .send(row)
                .map_err(|_| anyhow::anyhow!("the write stage closed early"))
        })?;

    // Stage 1: parse, sending each record on to stage 2.
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

    let mut submitter = parse_stage.submitter();
    for line in input() {
        submitter
            .submit(line)
            .map_err(|error| anyhow::anyhow!("input refused: {error}"))?;
    }
    drop(submitter);

    // Close stage by stage: each `wait` drains its pool, so every item it
    // accepted has been sent on before the next stage is closed.
    let parsed = parse_stage.finish();
    let transformed = transform.wait()?;
    let wrote = write.wait()?;

    println!("parse:     {parsed}");
    println!("transform: {transformed}");
    println!("write:     {wrote}");
    // Nothing lost across the stages.
    anyhow::ensure!(parsed.is_balanced() && transformed.is_balanced() && wrote.is_balanced());
    anyhow::ensure!(parsed.processed() == transformed.submitted());
    anyhow::ensure!(transformed.processed() == wrote.submitted());
    let rows = written
        .lock()
        .map_err(|_| anyhow::anyhow!("sink poisoned"))?
        .len() as u64;
    anyhow::ensure!(rows == wrote.processed());
    anyhow::ensure!(rows + parsed.failed() + parsed.dropped() == parsed.submitted());
    println!(
        "{} lines in: {rows} written, {} failed to parse",
        parsed.submitted(),
        parsed.failed()
    );
    Ok(())
}

/// The write stage's worker: buffers rows and appends them to the sink in
/// batches, and the rest in `finish`.
struct Writer {
    buffer: Vec<Row>,
    sink: Arc<Mutex<Vec<Row>>>,
}

impl Writer {
    fn flush(&mut self) -> anyhow::Result<()> {
        self.sink
            .lock()
            .map_err(|_| anyhow::anyhow!("sink poisoned"))?
            .append(&mut self.buffer);
        Ok(())
    }
}

impl Worker<Row> for Writer {
    type Error = anyhow::Error;

    fn work(&mut self, _ctx: &Ctx, row: Row) -> anyhow::Result<()> {
        debug_assert!(row.amount_eur >= 0.0 && row.id < u64::MAX);
        self.buffer.push(row);
        if self.buffer.len() == self.buffer.capacity() {
            self.flush()?;
        }
        Ok(())
    }

    fn finish(&mut self, _ctx: &Ctx) -> anyhow::Result<()> {
        self.flush()
    }
}
