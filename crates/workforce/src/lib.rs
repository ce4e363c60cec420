//! # workforce
//!
//! Worker pools for Rust: a fixed number of threads that process a stream of
//! typed items fast, with bounded memory, and tell you exactly what happened to
//! every item. This crate is a thin facade: it re-exports the workspace's crates
//! so you can depend on one name, and it holds this guide. Each module can also be
//! used on its own as its own crate.
//!
//! | module | crate | what it holds |
//! |---|---|---|
//! | [`core`] | `pool-core` | the work-stealing executor: [`Pool`], [`Submitter`], [`Sender`], cancellation, error policy, [`Report`] |
//! | [`batch`] | `pool-batch` | [`Batcher`](batch::Batcher): fill-to-N buffers with recycled `Vec`s |
//! | [`chunk`] | `pool-chunk` | key routing: [`Router`](chunk::Router) (fixed-seed ahash + jump consistent hash) |
//! | [`metrics`] | `pool-metrics` | per-worker shards, custom counters, [`Stats`], latency percentiles, Prometheus text |
//! | [`collect`] | `pool-collect` | [`Collector`](collect::Collector), [`Dispatcher`](collect::Dispatcher), `parallel`, ordered `map` |
//! | [`middleware`] | `pool-middleware` | retry with backoff, timeout, panic recovery, validation, a shared rate limiter |
//!
//! # Features
//!
//! | feature | what it adds |
//! |---|---|
//! | `async` | waiting without blocking the thread, on any runtime: `Sender::send_async`, `call_async`, `Pool::join_async` / `Pool::wait_async`, a collector's `recv_async` and `stream` |
//! | `tower` | a call pool as a `tower_service::Service` (`CallService`); implies `async` |
//! | `tracing` | spans and events for `tracing` subscribers |
//! | `serde` | `Serialize` for [`Stats`], [`Counters`], [`Percentiles`] |
//! | `metrics` | `metrics::record_metrics`: a pool's [`Stats`] published to the [`metrics`](https://docs.rs/metrics) crate's facade, into whatever recorder the application installed |
//! | `prometheus` | `metrics::PrometheusCollector`: a pool's [`Stats`] as a collector of a [`prometheus-client`](https://docs.rs/prometheus-client) registry, read at every scrape |
//!
//! The [`guide`] walks through every concept with runnable examples;
//! [`coming_from_go`] maps go-pkgz/pool and bigopool calls to these. The
//! examples in `crates/workforce/examples/` are small real programs (`cargo run
//! -p workforce --example NAME`): `fetch_urls`, `sqlite_ingest`, `hash_files`,
//! `pipeline`, `graceful_shutdown`, `dispatcher`, `parallel`, `progress`,
//! `crawl`.
//!
//! # A first pool
//!
//! ```
//! use workforce::prelude::*;
//!
//! // Four threads; the first error cancels the rest (the default policy).
//! let pool = Pool::builder()
//!     .workers(4)
//!     .build(|_ctx: &Ctx, word: String| -> anyhow::Result<()> {
//!         anyhow::ensure!(word.chars().all(char::is_alphabetic), "not a word: {word:?}");
//!         Ok(())
//!     })?;
//!
//! let mut submitter = pool.submitter();
//! for word in ["alpha", "beta", "gamma"] {
//!     submitter.submit(word.to_owned())?;
//! }
//! drop(submitter); // flushes the batch being filled
//!
//! let report = pool.wait()?;
//! assert_eq!(report.processed(), 3);
//! assert!(report.is_balanced()); // submitted == processed + failed + dropped
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Concepts
//!
//! - **Shared or stateful workers.** [`Builder::build`] takes one `Fn` shared by
//!   every thread. [`Builder::build_stateful`] takes a maker called once on each
//!   worker thread with its [`Ctx`], so each worker may own a connection or a
//!   buffer (it need not be `Send`) and flush it in [`Worker::finish`]. A maker
//!   that can fail goes to [`Builder::try_build_stateful`] (the build fails
//!   whole, naming the worker); [`Builder::keep_workers`] hands each worker back
//!   at the end ([`Pool::wait_with_workers`]), to merge per-worker state.
//! - **Batch workers.** [`Builder::build_batch`] hands whole batches (`&mut Vec<T>`)
//!   to the worker: one database round trip per batch instead of per row.
//! - **Submit or send.** A [`Submitter`] (one per producer, `&mut self`) batches
//!   locally and pushes whole batches; a [`Sender`] (`Clone + Send + Sync`) pushes
//!   one item at a time and can live inside another pool's workers.
//! - **Tree-shaped work.** A worker adds items to its own pool with
//!   [`Ctx::spawn`] (a directory walk, a crawl, a search): it never waits for
//!   room, and `wait` returns when the whole tree is done. See the guide's
//!   chapter 14 and the `crawl` example.
//! - **Backpressure.** `capacity` bounds the items in flight; `submit` blocks,
//!   `try_submit` and `submit_timeout` hand the item back instead.
//! - **Errors.** Stop on the first error (default) or `continue_on_error` and get
//!   every error back. Panics are caught and reported with the worker id.
//! - **Cancellation.** [`Pool::cancel`] or a shared [`CancelToken`]; queued items
//!   are dropped and counted, blocked producers get their items back.
//! - **Metrics.** `ctx.metrics()` gives a worker its own counter shard
//!   (`inc("name")`, or a [`Counter`] handle resolved once); [`Pool::metrics`]
//!   is a live [`Snapshot`] any thread can take without blocking a worker;
//!   [`Report::stats`] holds the final [`Stats`] (times, rates, utilization,
//!   latency percentiles with [`MetricsMode::Latency`]).
//!   [`Pool::wait_for_change`] sleeps until the pool moves on, so
//!   `cargo run --release -p workforce --example progress` drives a progress
//!   bar from snapshots without polling. Threads that are not workers count
//!   through [`Pool::metrics_handle`]; the `metrics` and `prometheus`
//!   features hand the stats to the application's registry.
//! - **Middleware.** [`Builder::layer`] wraps every worker in a [`Layer`]
//!   (retry, timeout, recovery, validation, rate limiting in [`middleware`], or
//!   your own type or [`layer_fn`] closure); the first layer added is the
//!   outermost, and each worker thread gets its own stack.
//! - **Key affinity.** [`Builder::chunk_by`] sends every item with the same key
//!   to the same worker, in submission order per producer, and never lets another
//!   worker steal it: per-key ordering and lock-free per-key caches in stateful
//!   workers. [`Report::imbalance`] shows a hot key.
//!
//! ```
//! use workforce::prelude::*;
//!
//! // Events of one account are applied in order, by one worker.
//! let pool = Pool::builder()
//!     .workers(3)
//!     .chunk_by(|event: &(u32, u64)| event.0)
//!     .build_stateful(|_worker| {
//!         let mut last_seen = std::collections::HashMap::<u32, u64>::new();
//!         move |_ctx: &Ctx, (account, seq): (u32, u64)| {
//!             let previous = last_seen.insert(account, seq);
//!             anyhow::ensure!(previous < Some(seq), "account {account}: {seq} after {previous:?}");
//!             Ok(())
//!         }
//!     })?;
//! let mut submitter = pool.submitter();
//! for seq in 0..3_000u64 {
//!     submitter.submit(((seq % 7) as u32, seq))?;
//! }
//! drop(submitter);
//! assert_eq!(pool.wait()?.processed(), 3_000);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ```
//! use workforce::prelude::*;
//!
//! // Continue on error: every error comes back, with the exact counts.
//! let pool = Pool::builder()
//!     .workers(2)
//!     .continue_on_error()
//!     .build(|_ctx: &Ctx, n: u32| {
//!         if n % 3 == 0 { Err(std::io::Error::other(format!("{n} divisible by 3"))) } else { Ok(()) }
//!     })?;
//! let mut submitter = pool.submitter();
//! for n in 1..=9 {
//!     submitter.submit(n)?;
//! }
//! drop(submitter);
//! match pool.wait() {
//!     Err(PoolError::Many { errors, total }) => {
//!         assert_eq!(total, 3);
//!         assert_eq!(errors.len(), 3);
//!     }
//!     other => panic!("expected three errors, got {other:?}"),
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

// On docs.rs (`--cfg docsrs`), items behind a feature say which one.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(missing_docs)]

pub mod coming_from_go;
pub mod guide;

/// The executor (`pool-core`). Named `executor`, not `core`, so that it
/// never shadows the `core` crate in a `use workforce::*;` scope.
pub use pool_core as executor;

/// Batching (`pool-batch`).
pub use pool_batch as batch;

/// Key affinity (`pool-chunk`).
pub use pool_chunk as chunk;

/// Metrics (`pool-metrics`).
pub use pool_metrics as metrics;

/// Result collection (`pool-collect`).
pub use pool_collect as collect;

/// Middleware (`pool-middleware`).
pub use pool_middleware as middleware;

/// Pools fed by a broker: a Redis stream's consumer group (`redis` feature;
/// see [`pool_source`] and the guide's "Scaling out" chapter).
#[cfg(feature = "redis")]
pub use pool_source as source;

pub use pool_core::{
    BatchWorker, BoxError, BoxWorker, BuildError, Builder, Call, CallError, CallHandle, CallPanic,
    CallPool, CallWorker, CancelRegistration, CancelToken, Counter, Counters, Ctx, Detached,
    Identity, KeepBuilder, KeepState, KeepWorker, Launch, Layer, LayerFn, LayerFnWorker,
    MakerError, MetricsHandle, MetricsMode, Next, PanicPayload, PanicSite, Percentiles, Pool,
    PoolError, Report, ResizeError, Scope, SeeThrough, SendError, Sender, Shard, Snapshot,
    SpawnError, Spawner, Stack, Stats, SubmitError, Submitter, TrySendError, TrySpawnError,
    TrySubmitError, Worker, WorkerCounts, WorkerId, WorkerReport, box_error, find_error, layer_fn,
    scope, see_through,
};
/// Item identity and outcomes: keys that name failed items, and the error of
/// [`Ctx::check`] that counts an item as interrupted.
pub use pool_core::{Interrupted, ItemKey};

/// The future of [`Sender::send_async`] (the `async` feature).
#[cfg(feature = "async")]
pub use pool_core::SendFuture;

/// A call pool as a `tower_service::Service` (the `tower` feature).
#[cfg(feature = "tower")]
pub use pool_core::{CallService, ServiceError, ServiceFuture};

/// The workspace README's examples, compiled and run as doc tests so they
/// cannot go stale.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct ReadmeExamples;

/// The names most programs need: `use workforce::prelude::*;`.
pub mod prelude {
    pub use pool_core::{
        BatchWorker, CallError, CallHandle, CallPool, CallWorker, CancelToken, Ctx, MetricsMode,
        Pool, PoolError, Report, ResizeError, Scope, SendError, Sender, SpawnError, SubmitError,
        Submitter, TrySendError, TrySpawnError, TrySubmitError, Worker, WorkerId, scope,
    };
}
