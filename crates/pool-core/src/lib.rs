//! The executor of `workforce`: a fixed set of worker threads that process a
//! stream of typed items with work stealing, bounded memory and exact accounting.
//!
//! **What it is for**: pushing many items (records, files, rows, requests) through
//! a few threads, with backpressure, batching, cancellation, an error policy and a
//! report that says what happened to every item; and, with a call pool
//! ([`Builder::build_call`], [`Pool::call`]), per-item answers for callers on
//! threads or async tasks (the `async` feature waits without blocking the
//! thread). **What it is not for**: running async tasks (use tokio),
//! splitting one in-memory collection (use rayon's `par_iter`), or unbounded
//! fire-and-forget spawning.
//!
//! # Shape
//!
//! ```
//! use pool_core::{Ctx, Pool};
//!
//! let pool = Pool::builder()
//!     .workers(4)                 // required; 0 is a build error
//!     .batch_size(64)             // items per pushed batch; 1 = unbatched
//!     .capacity(4096)             // items in flight; submit blocks beyond it
//!     .continue_on_error()        // default: stop on the first error
//!     .build(|ctx: &Ctx, line: String| -> anyhow::Result<()> {
//!         anyhow::ensure!(!line.is_empty(), "empty line on worker {}", ctx.worker_id());
//!         Ok(())
//!     })?;
//!
//! let mut submitter = pool.submitter(); // one per producer thread
//! for line in ["a", "", "c"] {
//!     submitter.submit(line.to_owned())?; // Err hands the item back
//! }
//! drop(submitter); // flushes the last batch
//!
//! let report = pool.join(); // `wait()` would return the errors as `Err`
//! assert_eq!((report.processed(), report.failed()), (2, 1));
//! assert!(report.is_balanced()); // submitted == processed + failed + dropped
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # How it works
//!
//! A [`Submitter`] fills a batch locally and pushes it, whole, to a global
//! `crossbeam_deque::Injector`; a batch size of 1 pushes single items without
//! allocating. Each worker takes a handful of jobs at once with
//! `steal_batch_and_pop` into its own deque, which idle siblings steal from. One
//! counter, `in_flight`, is both the capacity bound (producers reserve room per
//! batch, workers give it back in bulk) and the exit condition (workers leave when
//! the pool is closed and nothing is in flight). Idle workers spin briefly and then
//! park; a producer wakes one only if some sleep, which costs one atomic load when
//! none do. The protocols and their proofs sit beside the code: sleeping and
//! waking in `sleep.rs`, the capacity counter, close and lingering producers in
//! `capacity.rs`; each has loom models (`cargo xtask loom`).
//!
//! A worker adds items to its own pool with [`Ctx::spawn`] (tree-shaped work):
//! they go to a last-in first-out deque of its own, so it walks its part of
//! the tree depth first while idle siblings steal the oldest items, the
//! largest subtrees. A spawned item takes room without waiting (it may go
//! over the capacity) and counts like any item; a close stops only producers
//! outside the pool, and `in_flight` stays above zero until the whole tree
//! is done.
//!
//! A keyed pool ([`Builder::chunk_by`]) gives each worker an inbox of its own
//! instead: the submitter routes each item with `pool_chunk::Router`, fills one
//! batch per worker, and pushes it to that worker's inbox, which nobody else
//! takes from; the producer wakes exactly that worker if it sleeps.
//!
//! # Guarantees
//!
//! - **Nothing lost**: every accepted item is processed, failed or dropped (only
//!   on cancel), and [`Report`] counts each; a refused item is handed back in the
//!   error ([`SubmitError`], [`TrySubmitError`]), and a dropped one can be too
//!   ([`Builder::on_dropped`]).
//! - **Which item**: with [`Builder::item_key`], a failed or panicking item's
//!   error names it ([`ItemKey`]); work stopped by the cancel
//!   ([`Ctx::check`], [`Interrupted`]) counts as interrupted, apart from the
//!   failures.
//! - **No hang** on a panicking worker, maker or callback (caught and reported as
//!   [`PoolError::Panicked`]), on cancel while producers are blocked, or on drop
//!   without `wait`.
//! - **Trees finish**: a worker adds items to its own pool with [`Ctx::spawn`],
//!   which never waits for room; [`Pool::wait`] (and [`Pool::run`]) return
//!   when the whole tree is done: no item queued, running, or able to spawn
//!   more. No wait for room can last forever because of the waiter itself: a
//!   worker's `send` into its own full pool does not wait, and a thread whose
//!   own [`Submitter`] holds room in a partly filled batch may use it.
//! - **Bad settings fail at build** with a [`BuildError`] that names the setting.
//!
//! # Features
//!
//! - `async`: `Sender::send_async`, `call_async`, `Pool::join_async` /
//!   `Pool::wait_async`: waiting for room, answers and the workers
//!   without blocking the thread, on any runtime (`event-listener`; no
//!   runtime in this crate). Releases of room notify waiting tasks at the
//!   cost of one atomic load when none waits.
//! - `tower`: `Pool::service`, a call pool as a `tower_service::Service`
//!   (implies `async`).
//! - `tracing`: see below.
//!
//! # Tracing
//!
//! With the `tracing` feature (off by default; `workforce/tracing` in the
//! facade) the pool reports to whatever [`tracing`](https://docs.rs/tracing)
//! subscriber is installed. Every span and event has the target `pool_core`,
//! so `RUST_LOG=pool_core=debug` (with `EnvFilter`) shows them all.
//!
//! | What | Kind, name | Level | Fields |
//! |---|---|---|---|
//! | a worker thread's life: maker, jobs, `finish`, callback | span `worker` | INFO | `worker` |
//! | one batch, processed or dropped | span `batch` | DEBUG | `worker`, `n_items` |
//! | an item (or a batch worker's batch) failed | event "work failed" | WARN | `worker`, `site = "work"`, `key`, `error` |
//! | a worker's `finish` failed | event "finish failed" | ERROR | `worker`, `site = "finish"`, `error` |
//! | user code panicked (caught) | event "panic caught" | ERROR | `worker`, `site`, `key`, `panic` |
//! | an item stopped by the cancel ([`Interrupted`]) | event "work interrupted" | DEBUG | `worker`, `key` |
//! | a worker leaves | event "worker finished" | DEBUG | `worker`, `processed`, `failed`, `dropped` |
//! | the pool was cancelled, once | event "pool cancelled" | INFO | `submitted`, `in_flight` |
//! | the pool stopped taking input, once | event "pool closed" | DEBUG | `submitted` |
//!
//! `worker` is the worker's index ([`WorkerId::index`]). `error` is the
//! worker's error as a `dyn Error` (subscribers can walk its sources); `panic`
//! is the payload's text as in [`PoolError::Panicked`]; `site` is `work`,
//! `maker`, `finish`, `callback` or `drop` (the [`PanicSite`]). `key` is the
//! item's [`ItemKey`], shown with `Display`, in pools built with
//! [`Builder::item_key`] (for a batch worker, its batch's first item); without
//! one, or for a panic at a site other than `work`, the field is absent.
//! No span or event is per item: the key appears only where an item failed,
//! panicked or was interrupted. An event is
//! emitted for every error, also past [`Builder::error_limit`], which bounds
//! only what the report keeps. Error events happen inside the `worker` span
//! (and the `batch` span when a batch was running). The cancel and close
//! events come from the thread that cancelled or closed the pool. Worker spans
//! are roots: the worker threads do not know the span their pool was built in.
//!
//! Lone items (`batch_size(1)`, [`Sender::send`]) get no span of their own:
//! that is where a span per item would cost most, relative to the item, and
//! a worker that wants one can open it in its own `work`.
//!
//! **Cost.** Without the feature none of this is compiled in: the worker
//! loop's machine code is the same as before the feature existed. With it and
//! no subscriber (or one that filters `pool_core` out), each batch pays a
//! check of tracing's cached level and callsite interest; errors, panics and
//! the per-thread and per-pool events are rare. With a subscriber that records
//! `batch` spans, the subscriber's cost per span is paid once per batch, never
//! per item. A subscriber must be global (`set_global_default`) to see the
//! worker threads: a thread-local default (`with_default`) covers only the
//! thread that set it.

// On docs.rs (`--cfg docsrs`), items behind a feature say which one.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(missing_docs)]

mod call;
mod cancel;
mod capacity;
mod ctx;
mod error;
mod find;
mod held;
mod item;
mod layer;
mod ledger;
#[cfg(all(test, loom))]
mod loom_capacity;
#[cfg(all(test, loom))]
mod loom_sleep;
#[cfg(all(test, loom))]
mod loom_tree;
mod makers;
mod metrics_handle;
#[cfg(feature = "async")]
mod nonblocking;
mod pool;
mod process;
mod progress;
mod pull;
mod queues;
mod report;
mod roster;
mod scope;
#[cfg(feature = "tower")]
mod service;
mod shared;
mod signal;
mod sleep;
mod spawn;
mod submit;
mod sync;
mod thread;
mod trace;
mod worker;

pub use call::{Call, CallError, CallHandle, CallPanic, CallPool, CallWorker};
pub use cancel::{CancelRegistration, CancelToken};
pub use ctx::Ctx;
pub use error::{
    BoxError, BuildError, MakerError, PanicPayload, PanicSite, PoolError, ResizeError, Rest,
    RunError, SendError, SpawnError, SubmitError, TrySendError, TrySpawnError, TrySubmitError,
};
pub use find::{SeeThrough, box_error, find_error, see_through};

/// Items shared with the other crates of the workspace. Not part of the API:
/// they may change in any release.
#[doc(hidden)]
pub mod __private {
    pub use crate::error::panic_message;
}
pub use item::{Interrupted, ItemKey};
pub use layer::{BoxWorker, Identity, Layer, LayerFn, LayerFnWorker, Next, Stack, layer_fn};
pub use makers::{KeepBuilder, KeepState, KeepWorker};
pub use metrics_handle::MetricsHandle;
#[cfg(feature = "async")]
pub use nonblocking::SendFuture;
pub use pool::{
    Builder, DEFAULT_BATCH_SIZE, DEFAULT_MIN_CAPACITY, MAX_BATCH_SIZE, MAX_CAPACITY, MAX_WORKERS,
    MetricsMode, Pool,
};
pub use pool_metrics::{Counter, Counters, Percentiles, Shard, Stats};
pub use report::{Report, Snapshot, WorkerCounts, WorkerReport};
pub use scope::{Detached, Launch, Scope, scope};
#[cfg(feature = "tower")]
pub use service::{CallService, ServiceError, ServiceFuture};
pub use spawn::Spawner;
pub use submit::{Sender, Submitter};
pub use worker::{BatchWorker, Worker, WorkerId};
