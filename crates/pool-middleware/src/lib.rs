//! Middleware for the workforce pools: wrappers that add behaviour around a
//! worker.
//!
//! **Status: planned, not yet implemented.** This crate has no public API
//! yet. The text below describes what it will hold, so that the workspace
//! map and the code agree; nothing here is usable today.
//!
//! # What it is for
//!
//! Adding retries, timeouts, panic recovery, validation and rate limits to a
//! `pool-core` worker without writing them into the worker itself. A
//! middleware wraps a worker and returns a worker, like `tower::Layer`; the
//! first one added is the outermost. For pools with stateful workers the
//! stack is built once per worker thread, and shared state (a rate limiter's
//! bucket) lives behind an `Arc`.
//!
//! # What it will hold
//!
//! - A `Layer` trait, so users can write their own middleware.
//! - `Retry`: runs a failed item again, up to a limit.
//! - `Timeout`: sets a deadline for the call in the worker's context and
//!   turns a late result into a timeout error. It cannot pre-empt a thread;
//!   the worker has to poll the deadline to stop early.
//! - `Recovery`: turns a panic in the worker into an error for that item.
//! - `Validator`: rejects an item before the worker sees it.
//! - `RateLimiter`: bounds how many items per second all workers together
//!   start.
//!
//! # What it is not for
//!
//! - `tower` services or async code: these wrap blocking workers on threads.
//! - Pre-emptive cancellation: nothing here can stop a running call.
