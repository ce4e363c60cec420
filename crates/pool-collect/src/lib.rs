//! Results out of the workforce pools: collectors, dispatchers, parallel
//! helpers and ordered maps.
//!
//! `pool-core` pools run workers for their side effects. This crate is for
//! work that produces values: it builds on `pool-core` (and `std` threads for
//! the scoped helpers) and adds no executor of its own.
//!
//! - [`Collector`]: a bounded collection point; workers submit values through
//!   [`CollectorSender`]s, a consumer iterates them or takes them all.
//!   Cancellation ends the iteration with one error; a dropped consumer makes
//!   sends hand the value back instead of blocking.
//! - [`Dispatcher`]: jobs that return values; `wait` hands
//!   back every result and every error, each with its job's index.
//! - [`parallel`] and [`cancelable_parallel`]: a few closures at once, every
//!   error returned.
//! - [`map_ordered`] and [`map_unordered`]: a function over an iterator on a
//!   pool, results in input order (with a bounded reorder window) or as they
//!   come; [`scoped::map_ordered`] and [`scoped::map_unordered`] are the same
//!   maps on a pool in a `pool_core::scope`, whose function and items borrow.
//!
//! In a multi-stage pipeline the stages need none of these: each stage is a
//! pool whose workers feed the next through a `pool_core::Sender`; only the
//! end, where the results leave the pools, is a `Collector`. See the
//! `workforce` crate's `pipeline` example and its `pipeline_keeps_every_item`
//! test.
//!
//! # What it is not for
//!
//! - A general channel: for plain message passing use `crossbeam-channel` or
//!   `std::sync::mpsc`.
//! - Async work: its helpers run closures on threads. An async *consumer*
//!   is fine: with the `async` feature a [`Collector`] has `recv_async` and
//!   `stream` (a `futures_core::Stream`), which wait without blocking the
//!   thread on any runtime.

// On docs.rs (`--cfg docsrs`), items behind a feature say which one.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(missing_docs)]

/// The README's example, run as a doc test so it cannot go stale.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeExample;

mod collector;
mod dispatcher;
mod errors;
mod map;
mod parallel;
pub mod scoped;

pub use collector::{
    CollectError, Collector, CollectorBuildError, CollectorCounts, CollectorIter, CollectorSender,
};
#[cfg(feature = "async")]
pub use collector::{CollectorStream, RecvFuture};
pub use dispatcher::{
    DispatchError, Dispatcher, DispatcherBuilder, Indexed, Job, JobError, Outcome,
};
pub use errors::Errors;
pub use map::{
    MAX_WINDOW, MapConfig, MapError, MapOrdered, MapUnordered, map_ordered, map_unordered,
};
pub use parallel::{Parallel, ParallelError, ParallelResult, cancelable_parallel, parallel};
/// A collector's `send` and `try_send` refuse with the workspace's one error
/// per verb, shared with a pool's `Sender`.
pub use pool_core::{PanicPayload, SendError, TrySendError};
