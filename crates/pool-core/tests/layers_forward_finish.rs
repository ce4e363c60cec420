//! A closure middleware (`layer_fn`) cannot lose the `finish` of what it
//! wraps: a stateful worker's `finish` (its flush, its commit) runs exactly
//! once per worker thread under any number of closure layers, whatever the
//! closure does with the items, and an error from it is reported.
#![allow(clippy::unwrap_used)] // Tests may unwrap: a panic is a test failure.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::SeqCst};

use pool_core::{BoxError, Builder, Ctx, Next, Pool, PoolError, Report, Worker, layer_fn};
use rstest::rstest;

const ITEMS: u64 = 1_000;

/// A stateful worker that buffers what it sees and flushes it in `finish`,
/// into shared totals the test reads afterwards.
struct Flushing {
    buffered: u64,
    flushes: Arc<AtomicUsize>,
    flushed_items: Arc<AtomicU64>,
    fail_finish: bool,
}

impl Worker<u64> for Flushing {
    type Error = std::io::Error;

    fn work(&mut self, _ctx: &Ctx, _item: u64) -> std::io::Result<()> {
        self.buffered += 1;
        Ok(())
    }

    fn finish(&mut self, _ctx: &Ctx) -> std::io::Result<()> {
        self.flushes.fetch_add(1, SeqCst);
        self.flushed_items.fetch_add(self.buffered, SeqCst);
        self.buffered = 0;
        if self.fail_finish {
            return Err(std::io::Error::other("deliberate flush failure"));
        }
        Ok(())
    }
}

/// What the closure layers do with each item.
#[derive(Debug, Clone, Copy)]
enum Closure {
    /// Passes every item on.
    PassOn,
    /// Passes even items on and succeeds on odd ones without passing them.
    SkipOdd,
    /// Fails odd items without passing them on.
    FailOdd,
}

impl Closure {
    fn handle(self, next: &mut Next<'_, u64>, ctx: &Ctx, item: u64) -> Result<(), BoxError> {
        match self {
            Closure::PassOn => next.work(ctx, item),
            Closure::SkipOdd if item % 2 == 1 => Ok(()),
            Closure::FailOdd if item % 2 == 1 => Err(format!("{item} is odd").into()),
            Closure::SkipOdd | Closure::FailOdd => next.work(ctx, item),
        }
    }
}

/// The run's report, and how many `finish` calls and flushed items the
/// workers counted.
struct Run {
    report: Report,
    flushes: usize,
    flushed_items: u64,
}

/// Runs `ITEMS` items through `n_layers` closure layers (each doing `closure`)
/// around one `Flushing` worker per thread.
fn run(n_workers: usize, n_layers: usize, closure: Closure, fail_finish: bool) -> Run {
    let flushes = Arc::new(AtomicUsize::new(0));
    let flushed_items = Arc::new(AtomicU64::new(0));
    let maker_flushes = Arc::clone(&flushes);
    let maker_items = Arc::clone(&flushed_items);
    let maker = move |_ctx: &Ctx| Flushing {
        buffered: 0,
        flushes: Arc::clone(&maker_flushes),
        flushed_items: Arc::clone(&maker_items),
        fail_finish,
    };
    let builder: Builder<u64> = Pool::builder().workers(n_workers).continue_on_error();
    let wrap =
        move |mut next: Next<'_, u64>, ctx: &Ctx, item: u64| closure.handle(&mut next, ctx, item);
    let pool = match n_layers {
        0 => builder.build_stateful(maker),
        1 => builder.layer(layer_fn(wrap)).build_stateful(maker),
        2 => builder
            .layer(layer_fn(wrap))
            .layer(layer_fn(wrap))
            .build_stateful(maker),
        _ => unreachable!("the table has 0 to 2 layers"),
    }
    .unwrap();
    let mut submitter = pool.submitter();
    for item in 0..ITEMS {
        submitter.submit(item).unwrap();
    }
    drop(submitter);
    let report = pool.join();
    Run {
        report,
        flushes: flushes.load(SeqCst),
        flushed_items: flushed_items.load(SeqCst),
    }
}

#[rstest]
fn every_worker_flushes_once_under_closure_layers(
    #[values(1, 4)] n_workers: usize,
    #[values(0, 1, 2)] n_layers: usize,
) {
    let ran = run(n_workers, n_layers, Closure::PassOn, false);
    assert_eq!(ran.flushes, n_workers, "one `finish` per worker");
    assert_eq!(ran.flushed_items, ITEMS, "every item was flushed");
    assert_eq!(ran.report.processed(), ITEMS);
    assert!(ran.report.is_balanced(), "{}", ran.report);
    assert!(ran.report.errors().is_empty(), "{}", ran.report);
}

#[rstest]
// A closure that keeps items from the worker still leaves its `finish` alone.
#[case::skipping(Closure::SkipOdd, ITEMS, 0)]
#[case::failing(Closure::FailOdd, ITEMS / 2, ITEMS / 2)]
fn finish_runs_whatever_the_closure_does_with_items(
    #[case] closure: Closure,
    #[case] processed: u64,
    #[case] failed: u64,
) {
    let n_workers = 3;
    let ran = run(n_workers, 1, closure, false);
    assert_eq!(ran.flushes, n_workers);
    assert_eq!(
        ran.flushed_items,
        ITEMS / 2,
        "the even items reached the worker"
    );
    assert_eq!(
        (ran.report.processed(), ran.report.failed()),
        (processed, failed)
    );
    assert!(ran.report.is_balanced(), "{}", ran.report);
}

#[rstest]
fn a_failed_finish_under_closure_layers_is_reported(#[values(1, 2)] n_layers: usize) {
    let n_workers = 2;
    let ran = run(n_workers, n_layers, Closure::PassOn, true);
    assert_eq!(ran.flushes, n_workers);
    assert_eq!(ran.report.processed(), ITEMS);
    let finish_errors = ran
        .report
        .errors()
        .iter()
        .filter(|error| {
            matches!(error, PoolError::Finish { source, .. }
                if source.to_string() == "deliberate flush failure")
        })
        .count();
    assert_eq!(finish_errors, n_workers, "{}", ran.report);
}
