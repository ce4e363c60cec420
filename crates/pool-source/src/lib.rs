//! Pools fed by a broker: a workforce pool run over a Redis stream's consumer
//! group, with acknowledgements after success only.
//!
//! What it is for: scaling a pool out over processes and machines. Each
//! process runs a [`Consumer`], which reads entries with `XREADGROUP` (never
//! more than its pool has room for, so backpressure reaches the broker),
//! hands them to the pool, and settles each from its outcome: `XACK` (in
//! batches) after success; after a failure, delivered again until
//! `max_deliveries`, then moved to a dead-letter stream with the error text.
//! Entries a dead consumer left pending are claimed (`XAUTOCLAIM`) after
//! `min_idle`. Delivery is at least once: make workers idempotent.
//!
//! What it is not for: exactly-once processing, or order across consumers.
//! Order guarantees: none across consumers (each reads its own share); within
//! one consumer, a keyed pool (`chunk_by`) runs the entries of one key in the
//! order they were read, except an entry delivered again after a failure or
//! claimed from another consumer, which runs when it comes back.
//!
//! Any pool kind works: `pool` takes a per-item pool (`build`,
//! `build_stateful`, with `chunk_by`, layers and an error policy: the
//! builder it hands you starts with `continue_on_error`, since a failed
//! entry is delivered again and then dead-lettered rather than ending the
//! run), `batch_pool` a batch pool (a batch settles whole).
//!
//! The engine is behind the [`Source`] trait; [`RedisStreams`] is the one
//! implemented (sync `redis` API, the consumer loop on its own thread).
//!
//! ```no_run
//! use pool_source::{Consumer, Delivery, StreamEntry};
//! use pool_core::Ctx;
//!
//! let consumer = Consumer::redis("redis://127.0.0.1:6379/")
//!     .stream("jobs")
//!     .group("workers")
//!     .consumer("worker-1")
//!     .create_group(true)
//!     .max_deliveries(3)
//!     .pool(|builder| {
//!         builder.workers(4).capacity(256).build(
//!             |_ctx: &Ctx, job: Delivery<StreamEntry>| -> anyhow::Result<()> {
//!                 let body = job.message.get_str("body").unwrap_or_default();
//!                 anyhow::ensure!(!body.is_empty(), "entry {} has no body", job.id);
//!                 Ok(())
//!             },
//!         )
//!     })
//!     .build()?;
//! let stop = consumer.stop_handle();
//! // In a real program: ctrlc::set_handler(move || stop.stop())?;
//! # stop.stop();
//! let report = consumer.run()?;
//! assert!(report.balances());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod consumer;
mod error;
mod redis_streams;
mod source;

pub use consumer::{
    Consumer, ConsumerBuilder, ConsumerReport, DEFAULT_CLAIM_INTERVAL, DEFAULT_MAX_DELIVERIES,
    DEFAULT_MIN_IDLE, DEFAULT_READ_BLOCK, DEFAULT_RECONNECT_FOR, LoopSettings, PoolBuilder, Settle,
    Settled, StopHandle, StopPolicy,
};
pub use error::{BuildError, RunError};
pub use redis_streams::{RedisStreams, StreamEntry};
pub use source::{Delivery, Source};
