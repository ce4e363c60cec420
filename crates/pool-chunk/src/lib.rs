//! Key routing for the workforce pools: which worker gets an item with a
//! given key.
//!
//! **Status: planned, not yet implemented.** This crate has no public API
//! yet. The text below describes what it will hold, so that the workspace
//! map and the code agree; nothing here is usable today.
//!
//! # What it is for
//!
//! Sending every item with the same key (a user id, an account, a file path)
//! to the same worker, so that items of one key are processed in submission
//! order and a worker's per-key cache stays warm. `pool-core` will use it on
//! its submit path, and it will be usable alone by anyone who needs to route
//! keys to a fixed number of buckets. It will depend on no other workspace
//! crate.
//!
//! # What it will hold
//!
//! - A key hasher built on `ahash` with fixed seeds, so a key maps to the
//!   same worker on every run of the same build (not across `ahash` versions
//!   or platforms).
//! - Jump consistent hash (Lamping and Veach, 2014): a `u64` hash to a worker
//!   index in `0..n_workers` with no table, and the fewest keys moved when
//!   `n_workers` changes, which keeps a future resizable pool cheap.
//! - A small router type combining the two: key in, worker index out.
//!
//! # What it is not for
//!
//! - Hashing untrusted input where collisions could be forced: fixed seeds
//!   make the hash predictable, so it offers no HashDoS resistance.
//! - A general `HashMap` hasher, or a persistent hash whose values may be
//!   stored and compared across builds.
//! - Weighted or load-aware balancing: every worker gets an equal share of
//!   keys, however busy it is.
