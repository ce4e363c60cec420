//! Counters, timings and statistics for the workforce pools.
//!
//! **Status: planned, not yet implemented.** This crate has no public API
//! yet. The text below describes what it will hold, so that the workspace
//! map and the code agree; nothing here is usable today.
//!
//! # What it is for
//!
//! Counting what a pool did without making the counting a point of
//! contention: each worker writes only its own shard, and shards are merged
//! when someone reads. `pool-core` will keep one shard per worker; the
//! sharded counters will also be usable alone.
//!
//! # What it will hold
//!
//! - Per-worker counter shards (single writer, cache-padded): processed,
//!   errors, dropped, processing time, wait (idle) time, init time and
//!   wrap-up time.
//! - Custom counters by name (`inc`, `add`, `get`) and by handle, resolved
//!   once and then a plain add on the hot path.
//! - `Stats`, merged on read, with the fields of go-pkgz/pool (processed,
//!   errors, dropped, processing, wait, init, wrap-up and total time, rate
//!   per second, average latency, error rate, dropped rate, utilization),
//!   rendered by `Display` for people and by `serde` and Prometheus text for
//!   machines.
//! - Latency percentiles (p50, p90, p99, p999, max) from `hdrhistogram`,
//!   switched on per pool because they cost a clock read per item.
//! - A live snapshot that can be read while the pool runs.
//!
//! # What it is not for
//!
//! - A metrics registry or exporter: it will serve no HTTP endpoint and keep
//!   no global state. Render the text and serve it yourself.
//! - Benchmarking: timings in `Stats` describe a run, they are not a
//!   measurement harness (that is `benches/`).
