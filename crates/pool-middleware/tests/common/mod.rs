//! Helpers shared by the behaviour tests (included with `mod common;`).

#![allow(
    dead_code,
    unused_macros,
    unreachable_pub,
    missing_docs,
    clippy::unwrap_used
)]

use std::ops::Range;
use std::sync::{Arc, Mutex};

use pool_core::{BoxError, BuildError, Builder, Ctx, Layer, Pool, PoolError, Report, Worker};
use pool_middleware::MiddlewareError;

/// How a test pool gets its workers: every middleware must work both ways.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `build`: one shared function.
    Stateless,
    /// `build_stateful`: one [`Tallying`] worker per thread, with a `finish`.
    Stateful,
}

/// A stateful worker around a function: counts the calls that reach it and
/// reports the count from `finish`, which proves the layers forward `finish`.
pub struct Tallying<F> {
    work: F,
    calls: u64,
    finished: Arc<Mutex<Vec<u64>>>,
}

impl<F, E> Worker<u32> for Tallying<F>
where
    F: Fn(&Ctx, u32) -> Result<(), E>,
    E: Into<BoxError> + 'static,
{
    type Error = E;

    fn work(&mut self, ctx: &Ctx, item: u32) -> Result<(), E> {
        self.calls += 1;
        (self.work)(ctx, item)
    }

    fn finish(&mut self, _ctx: &Ctx) -> Result<(), E> {
        self.finished.lock().unwrap().push(self.calls);
        Ok(())
    }
}

/// What a run left behind.
pub struct Run {
    pub report: Report,
    /// For stateful pools, each worker's call count as its `finish` saw it
    /// (one entry per worker whose `finish` ran); empty for stateless pools.
    pub finished: Vec<u64>,
}

impl Run {
    /// The calls that reached the stateful workers, by their own count.
    pub fn worker_calls(&self) -> u64 {
        self.finished.iter().sum()
    }
}

/// Builds a pool of `kind` from `builder` with `layer` around `work`, submits
/// `items` and finishes it (the report, whatever the errors):
/// `run!(kind, builder, layer, work, items)`.
///
/// A macro, not a function: `Builder::build` is bounded by
/// `L: Layer<SharedFn<F>>` and pool-core keeps `SharedFn` unnameable, so
/// generic code cannot state that bound; expanded at the call site, the
/// stack's type is concrete and needs no bound.
macro_rules! run {
    ($kind:expr, $builder:expr, $layer:expr, $work:expr, $items:expr $(,)?) => {
        $crate::common::run_with(
            $kind,
            $builder.layer($layer),
            $work,
            $items,
            |builder, work| builder.build(work),
        )
    };
}
#[allow(unused_imports)] // Not every test uses it.
pub(crate) use run;

/// What [`run!`] expands to: builds a pool of `kind` from `builder` around
/// `work` (`build` makes the stateless one), submits `items` and finishes it.
pub fn run_with<L, F, E, B>(
    kind: Kind,
    builder: Builder<u32, L>,
    work: F,
    items: Range<u32>,
    build: B,
) -> Run
where
    F: Fn(&Ctx, u32) -> Result<(), E> + Clone + Send + Sync + 'static,
    E: Into<BoxError> + 'static,
    L: Layer<Tallying<F>> + Send + Sync + 'static,
    L::Worker: Worker<u32> + 'static,
    B: FnOnce(Builder<u32, L>, F) -> Result<Pool<u32>, BuildError>,
{
    let finished = Arc::new(Mutex::new(Vec::new()));
    let pool = match kind {
        Kind::Stateless => build(builder, work),
        Kind::Stateful => {
            let finished = Arc::clone(&finished);
            builder.build_stateful(move |_id| Tallying {
                work: work.clone(),
                calls: 0,
                finished: Arc::clone(&finished),
            })
        }
    }
    .expect("valid pool settings");
    submit(&pool, items);
    let report = pool.join();
    let finished = finished.lock().unwrap().clone();
    Run { report, finished }
}

/// Submits `items`, ignoring refusals (a cancelled pool hands items back; the
/// report counts only what it accepted).
pub fn submit(pool: &Pool<u32>, items: Range<u32>) {
    let mut submitter = pool.submitter();
    for item in items {
        if submitter.submit(item).is_err() {
            break;
        }
    }
}

/// The middleware error behind each error of the report, in order. Panics if
/// one is not a worker error carrying a `MiddlewareError`.
pub fn middleware_errors(report: &Report) -> Vec<&MiddlewareError> {
    report
        .errors()
        .iter()
        .map(|error| match error {
            PoolError::Worker { source, .. } => source
                .downcast_ref::<MiddlewareError>()
                .unwrap_or_else(|| panic!("not a middleware error: {source}")),
            other => panic!("not a worker error: {other}"),
        })
        .collect()
}

/// Silences the default panic message for panics whose text contains
/// "deliberate", so deliberate panics do not flood the test output; every other
/// panic is printed as usual.
pub fn quiet_deliberate_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let text = info
                .payload()
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| info.payload().downcast_ref::<&str>().copied())
                .unwrap_or("");
            if !text.contains("deliberate") {
                default(info);
            }
        }));
    });
}
