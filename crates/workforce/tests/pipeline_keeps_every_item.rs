//! A three-stage pipeline (parse → transform → write, each stage a pool feeding
//! the next through a `Sender`, closed stage by stage) loses nothing: every
//! input line is written, failed at some stage, or dropped at some stage, also
//! when a middle stage is cancelled mid-stream.
#![allow(clippy::unwrap_used)] // Tests may unwrap: a panic is a test failure.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};

use rstest::rstest;
use workforce::prelude::*;

const N_LINES: u64 = 20_000;

#[rstest]
fn every_line_is_written_failed_or_dropped(
    #[values(false, true)] cancel_transform: bool,
    #[values(1, 64)] batch_size: usize,
) {
    let written = Arc::new(AtomicU64::new(0));
    let sink = Arc::clone(&written);
    let write = Pool::builder()
        .workers(2)
        .batch_size(batch_size)
        .build(move |_ctx: &Ctx, _row: (u64, i64)| {
            sink.fetch_add(1, SeqCst);
            Ok::<(), std::io::Error>(())
        })
        .unwrap();
    let to_write = write.sender();
    let transform = Pool::builder()
        .workers(2)
        .batch_size(batch_size)
        .build(move |ctx: &Ctx, (id, cents): (u64, i64)| {
            if cancel_transform && id == N_LINES / 2 {
                // The whole stage stops: queued records are dropped and counted,
                // the parse stage's further sends are refused.
                ctx.token().cancel();
            }
            to_write
                .send((id, cents * 2))
                .map_err(|_| anyhow::anyhow!("write stage refused {id}"))
        })
        .unwrap();
    let to_transform = transform.sender();
    let parse = Pool::builder()
        .workers(2)
        .batch_size(batch_size)
        .continue_on_error()
        .build(move |_ctx: &Ctx, line: String| {
            let (id, cents) = line
                .split_once(',')
                .ok_or_else(|| anyhow::anyhow!("malformed line {line:?}"))?;
            let record = (id.parse::<u64>()?, cents.parse::<i64>()?);
            to_transform
                .send(record)
                .map_err(|_| anyhow::anyhow!("transform stage refused {line:?}"))
        })
        .unwrap();

    let mut submitter = parse.submitter();
    for n in 0..N_LINES {
        let line = if n % 100 == 42 {
            format!("{n};broken")
        } else {
            format!("{n},{}", n % 997)
        };
        submitter.submit(line).unwrap();
    }
    drop(submitter);
    let parsed = parse.join();
    let transformed = transform.join();
    let wrote = write.join();

    for report in [&parsed, &transformed, &wrote] {
        assert!(report.is_balanced(), "{report}");
    }
    // What a stage accepted is what the stage before it passed on.
    assert_eq!(parsed.submitted(), N_LINES);
    assert_eq!(transformed.submitted(), parsed.processed());
    assert_eq!(wrote.submitted(), transformed.processed());
    assert_eq!(written.load(SeqCst), wrote.processed());
    // Nothing lost: every line ends written, failed or dropped somewhere.
    let failed = parsed.failed() + transformed.failed() + wrote.failed();
    let dropped = parsed.dropped() + transformed.dropped() + wrote.dropped();
    assert_eq!(written.load(SeqCst) + failed + dropped, N_LINES);
    // The malformed lines fail at the parse stage.
    assert!(parsed.failed() >= N_LINES / 100);
    if cancel_transform {
        assert!(transformed.was_cancelled());
        assert!(written.load(SeqCst) < N_LINES - N_LINES / 100);
    } else {
        assert_eq!(parsed.failed(), N_LINES / 100);
        assert_eq!(written.load(SeqCst), N_LINES - N_LINES / 100);
    }
}
