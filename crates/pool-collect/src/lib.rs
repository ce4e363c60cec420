//! Results out of the workforce pools: collectors, dispatchers and parallel
//! helpers.
//!
//! **Status: planned, not yet implemented.** This crate has no public API
//! yet. The text below describes what it will hold, so that the workspace
//! map and the code agree; nothing here is usable today.
//!
//! # What it is for
//!
//! Getting values and errors back from work run on a `pool-core` pool, when
//! the worker produces something rather than only a side effect. It will
//! build on `pool-core` and add no executor of its own.
//!
//! # What it will hold
//!
//! - `Collector<V>`: a bounded collection point; workers submit values, a
//!   consumer iterates them or takes them all. It respects the pool's
//!   cancellation, and closing it twice is harmless.
//! - `Dispatcher`: runs jobs that return values (the shape of bigopool) and
//!   hands back every result and every error.
//! - `parallel`, which runs a few closures and returns every error, and
//!   `cancelable_parallel`, which cancels the rest at the first failure.
//! - An ordered map that hands results back in submission order where asked.
//!
//! # What it is not for
//!
//! - A general channel: for plain message passing between threads use
//!   `crossbeam-channel` or `std::sync::mpsc`.
//! - Async code: it will block threads, not poll futures.
