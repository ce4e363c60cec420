//! # The workforce guide
//!
//! One chapter per concept, each with an example that runs as a doc test
//! (`cargo test --doc -p workforce`). The [crate root](crate) has the map of
//! the crates; [`coming_from_go`](crate::coming_from_go) puts go-pkgz/pool and
//! bigopool calls beside these.
//!
//! 1. [Workers: shared, stateful, batch](#1-workers-shared-stateful-batch)
//! 2. [Feeding a pool: `run` (pull), `Submitter` and `Sender` (push), backpressure](#2-feeding-a-pool-run-pull-submitter-and-sender-push-backpressure)
//! 3. [Batching](#3-batching)
//! 4. [Keys](#4-keys)
//! 5. [Errors and panics](#5-errors-and-panics)
//! 6. [Cancellation and shutdown](#6-cancellation-and-shutdown)
//! 7. [Metrics](#7-metrics)
//! 8. [Middleware](#8-middleware)
//! 9. [Collecting results](#9-collecting-results)
//! 10. [Tracing](#10-tracing)
//! 11. [A service with per-item results](#11-a-service-with-per-item-results)
//! 12. [An async caller](#12-an-async-caller)
//! 13. [A job runner: ids, typed retries, a shutdown report](#13-a-job-runner-ids-typed-retries-a-shutdown-report)
//! 14. [Tree-shaped work](#14-tree-shaped-work)
//! 15. [Scoped pools: borrowing local data](#15-scoped-pools-borrowing-local-data)
//! 16. [Resizing a running pool](#16-resizing-a-running-pool)
//! 17. [Scaling out: a Redis stream](#17-scaling-out-a-redis-stream)
//!
//! The promise behind every chapter: each item you hand to a pool ends up
//! **processed**, **failed** or **dropped**, and the [`Report`](crate::Report)
//! says how many of each (`submitted == processed + failed + dropped`); an
//! item the pool refuses comes back to you inside the error.
//!
//! # 1. Workers: shared, stateful, batch
//!
//! [`Builder::build`](crate::Builder::build) takes one function shared by every
//! worker thread (`Fn`, so it needs `Sync` state). [`build_stateful`](crate::Builder::build_stateful)
//! takes a *maker*, called once on each worker thread with that worker's
//! [`Ctx`](crate::Ctx) (its id, the pool's token, its metrics shard): the
//! worker it returns is owned by that thread, may be `FnMut` or any
//! [`Worker`](crate::Worker) type, need not be `Send`, and gets a
//! [`finish`](crate::Worker::finish) call after the last item (flush a
//! buffer, commit, close a connection).
//! [`build_batch`](crate::Builder::build_batch) (and `build_batch_stateful`)
//! hands whole batches, `&mut Vec<T>`, for one round trip per batch.
//!
//! ```
//! use workforce::prelude::*;
//!
//! /// A worker that owns a buffer and writes it out in `finish`.
//! struct Writer {
//!     lines: Vec<String>,
//!     written: std::sync::Arc<std::sync::Mutex<usize>>,
//! }
//!
//! impl Worker<u32> for Writer {
//!     type Error = std::io::Error;
//!     fn work(&mut self, _ctx: &Ctx, n: u32) -> Result<(), Self::Error> {
//!         self.lines.push(format!("line {n}"));
//!         Ok(())
//!     }
//!     fn finish(&mut self, _ctx: &Ctx) -> Result<(), Self::Error> {
//!         *self.written.lock().expect("not poisoned") += self.lines.len();
//!         Ok(())
//!     }
//! }
//!
//! let written = std::sync::Arc::new(std::sync::Mutex::new(0));
//! let total = std::sync::Arc::clone(&written);
//! let pool = Pool::builder()
//!     .workers(3)
//!     .build_stateful(move |_ctx: &Ctx| Writer { lines: Vec::new(), written: total.clone() })?;
//! pool.submitter().submit_iter(0..1_000)?;
//! assert_eq!(pool.wait()?.processed(), 1_000);
//! assert_eq!(*written.lock().expect("not poisoned"), 1_000);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! **Set-up that can fail.** A worker that opens a connection or loads a
//! file has a maker that can fail:
//! [`try_build_stateful`](crate::Builder::try_build_stateful) (and
//! `try_build_batch_stateful`, `try_build_call_stateful`) takes a maker that
//! returns a `Result`. The build waits for every maker: if any fails, it
//! fails whole with [`BuildError::Maker`](crate::BuildError::Maker), naming
//! the worker and carrying the maker's error as it returned it, after
//! every thread has been joined and the workers already made have been
//! dropped (no item ran, no `finish`, no callback). So a build that failed
//! for a passing reason can simply be tried again. The maker is also the
//! place to resolve counter handles
//! ([`ctx.metrics().counter(..)`](crate::Shard::counter)) once, instead of
//! looking a name up per item.
//!
//! **State at the end.** [`keep_workers`](crate::Builder::keep_workers),
//! the last setting before a stateful build, keeps each worker when the
//! pool ends, and [`wait_with_workers`](crate::Pool::wait_with_workers)
//! (or `join_with_workers`) hands them back, in worker order, each exactly
//! once, also after errors, cancels and panics: per-worker maps merge
//! without an `Arc<Mutex<_>>`. A worker that is not `Send` keeps what it
//! gathered instead, with [`keep_state`](crate::Builder::keep_state), a
//! function that runs on the worker's thread after its `finish` and sees
//! the worker itself.
//!
//! ```
//! use std::collections::HashMap;
//! use workforce::prelude::*;
//! use workforce::{BuildError, Counter};
//!
//! /// A connection of sorts, and this worker's word counts.
//! struct Indexer { words: HashMap<String, u64>, indexed: Counter }
//!
//! fn connect(ctx: &Ctx) -> Result<Indexer, std::io::Error> {
//!     // A real maker would open the connection here, and could fail.
//!     Ok(Indexer { words: HashMap::new(), indexed: ctx.metrics().counter("indexed") })
//! }
//!
//! impl Worker<String> for Indexer {
//!     type Error = std::io::Error;
//!     fn work(&mut self, _ctx: &Ctx, line: String) -> Result<(), Self::Error> {
//!         for word in line.split_whitespace() {
//!             *self.words.entry(word.to_owned()).or_default() += 1;
//!         }
//!         self.indexed.inc();
//!         Ok(())
//!     }
//! }
//!
//! let pool = match Pool::builder().workers(3).keep_workers().try_build_stateful(connect) {
//!     Ok(pool) => pool,
//!     Err(BuildError::Maker { worker, error }) => panic!("worker {worker} could not connect: {error}"),
//!     Err(setting) => panic!("{setting}"),
//! };
//! pool.run(["a rose is", "a rose", "is a rose"].map(String::from))?;
//! let (report, indexers) = pool.wait_with_workers()?;
//! let mut words = HashMap::new();
//! for indexer in indexers {
//!     for (word, n) in indexer.words { *words.entry(word).or_insert(0) += n; }
//! }
//! assert_eq!((words["rose"], words["is"]), (3, 2));
//! assert_eq!(report.stats().counters.get("indexed"), 3);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # 2. Feeding a pool: `run` (pull), `Submitter` and `Sender` (push), backpressure
//!
//! **Processing a file, a listing, any iterator: [`Pool::run`](crate::Pool::run).**
//! The workers take the items from the iterator themselves, a chunk at a
//! time: each line is read, processed and freed on one thread, and no
//! producer thread competes with the workers for the cores. `run` returns
//! when the iterator is exhausted and every item has run; `wait` gives the
//! report. Per-worker state is the usual way to aggregate: each worker counts
//! into its own map, and the workers come back at the end
//! ([chapter 1](#1-workers-shared-stateful-batch): `keep_workers`).
//!
//! ```
//! use std::collections::HashMap;
//! use std::io::BufRead;
//! use workforce::prelude::*;
//!
//! /// Counts lines per status code, in a map of its own.
//! #[derive(Default)]
//! struct StatusCount {
//!     counts: HashMap<u16, u64>,
//! }
//!
//! impl Worker<std::io::Result<String>> for StatusCount {
//!     type Error = anyhow::Error;
//!     fn work(&mut self, _ctx: &Ctx, line: std::io::Result<String>) -> anyhow::Result<()> {
//!         let line = line?;
//!         let status = line.rsplit(' ').nth(1).and_then(|s| s.parse().ok());
//!         let status = status.ok_or_else(|| anyhow::anyhow!("malformed line: {line}"))?;
//!         *self.counts.entry(status).or_default() += 1;
//!         Ok(())
//!     }
//! }
//!
//! // In a real program: std::io::BufReader::new(std::fs::File::open(path)?)
//! let log = std::io::Cursor::new("GET /a 200 12\nGET /b 404 0\ngarbage\nGET /a 200 12\n");
//! let pool = Pool::builder()
//!     .workers(2)
//!     .continue_on_error() // a bad line fails alone
//!     .keep_workers()
//!     .build_stateful(|_ctx: &Ctx| StatusCount::default())?;
//! pool.run(log.lines())?;
//! let (report, workers) = pool.join_with_workers(); // the report, errors included
//! assert_eq!((report.processed(), report.failed()), (3, 1));
//! let mut counts = HashMap::new();
//! for worker in workers {
//!     for (status, n) in worker.counts { *counts.entry(status).or_insert(0) += n; }
//! }
//! assert_eq!((counts[&200], counts[&404]), (2, 1));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! **Items that arrive over time, from several threads or a socket: push.**
//! A [`Submitter`](crate::Submitter) is a producer's own handle (`&mut self`,
//! one per thread): it fills a batch locally and pushes it whole, so the cost
//! per item is a few nanoseconds. [`submit_iter`](crate::Submitter::submit_iter)
//! takes a whole iterator. A [`Sender`](crate::Sender) is `Clone + Send +
//! Sync` and pushes one item at a time: hand it to other threads, or to the
//! workers of another pool to chain stages.
//!
//! Pushed items that own heap memory (a `String` per line, a `Vec` per
//! record) are allocated on the producer's thread and freed on a worker's.
//! glibc's malloc is slow at that: on the 100 MB log of `cargo xtask bench`
//! (W7), the push row spends about 13% of its samples in `malloc`/`free`
//! against under 2% for the same lines pulled with `run`, and the pool's own
//! code is under 2% in both. If the items come from an iterator, `run` avoids
//! it; if they must be pushed, a thread-caching allocator (mimalloc,
//! jemalloc) as the program's `#[global_allocator]` recovers most of it (W7
//! push: 265 → 230 ms, CPU 452 → 404 ms on 2 cores).
//!
//! `capacity` bounds the items in flight (queued or being processed). At the
//! bound, `submit` blocks; `try_submit` and `submit_timeout` hand the item
//! back in [`TrySubmitError`](crate::TrySubmitError), and `submit` on a closed
//! or cancelled pool hands it back in [`SubmitError`](crate::SubmitError).
//!
//! ```
//! use workforce::prelude::*;
//!
//! let gate = CancelToken::new(); // used here as a latch the workers wait on
//! let worker_gate = gate.clone();
//! let pool = Pool::builder()
//!     .workers(1)
//!     .batch_size(1)
//!     .capacity(2)
//!     .build(move |_ctx: &Ctx, _n: u32| {
//!         let _opened = worker_gate.wait_timeout(std::time::Duration::from_secs(60));
//!         Ok::<(), std::convert::Infallible>(())
//!     })?;
//! let mut submitter = pool.submitter();
//! submitter.submit(1)?;
//! submitter.submit(2)?;
//! // Two items in flight: the third is handed back, not lost.
//! assert_eq!(submitter.try_submit(3), Err(TrySubmitError::Full(3)));
//! gate.cancel(); // opens the latch
//! drop(submitter);
//! assert_eq!(pool.wait()?.processed(), 2);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # 3. Batching
//!
//! `batch_size` (default 64) is how many items a `Submitter` groups before it
//! pushes them as one job; a worker takes a job at a time, so the queue, the
//! capacity counter and the wake-ups are touched once per batch. Batch 1
//! hands over every item alone (lowest latency, about 5× the cost per item).
//! Items buffered in a `Submitter` are pushed on [`flush`](crate::Submitter::flush)
//! and on drop: flush before you wait on something the workers produce.
//! [`batch::Batcher`](crate::batch::Batcher) is the same buffer on its own.
//!
//! ```
//! use workforce::prelude::*;
//!
//! let pool = Pool::builder()
//!     .workers(2)
//!     .batch_size(100)
//!     .build_batch(|_ctx: &Ctx, rows: &mut Vec<u64>| {
//!         // One "INSERT ... VALUES (...), (...), ..." per batch.
//!         assert!(rows.len() <= 100);
//!         Ok::<(), std::convert::Infallible>(())
//!     })?;
//! pool.submitter().submit_iter(0..1_050)?;
//! assert_eq!(pool.wait()?.processed(), 1_050);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # 4. Keys
//!
//! [`Builder::chunk_by`](crate::Builder::chunk_by) routes every item with the
//! same key to the same worker (ahash with fixed seeds, then jump consistent
//! hashing), in each producer's order, and no other worker may steal it. A
//! stateful worker can then keep a per-key cache without locks, and events of
//! one account are applied in order. [`Pool::worker_for`](crate::Pool::worker_for)
//! tells which worker a key goes to; [`Report::imbalance`](crate::Report::imbalance)
//! shows a hot key. The price: a key's items cannot be balanced across workers.
//!
//! ```
//! use std::collections::{HashMap, HashSet};
//! use std::sync::{Arc, Mutex};
//! use workforce::prelude::*;
//!
//! // Which workers saw each customer.
//! let seen: Arc<Mutex<HashMap<String, HashSet<usize>>>> = Arc::default();
//! let record = Arc::clone(&seen);
//! let pool = Pool::builder()
//!     .workers(4)
//!     .chunk_by(|order: &(String, u32)| order.0.clone())
//!     .build(move |ctx: &Ctx, (customer, _amount): (String, u32)| {
//!         let mut seen = record.lock().expect("not poisoned");
//!         seen.entry(customer).or_default().insert(ctx.worker_id().index());
//!         Ok::<(), std::convert::Infallible>(())
//!     })?;
//! let alice = pool.worker_for(&("alice".to_owned(), 0)).expect("a keyed pool names the worker");
//! let mut submitter = pool.submitter();
//! for n in 0..300 {
//!     let customer = ["alice", "bob", "carol"][n % 3];
//!     submitter.submit((customer.to_owned(), n as u32))?;
//! }
//! drop(submitter);
//! pool.wait()?;
//! let seen = seen.lock().expect("not poisoned");
//! assert!(seen.values().all(|workers| workers.len() == 1)); // one worker per customer
//! assert_eq!(seen["alice"], HashSet::from([alice.index()]));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # 5. Errors and panics
//!
//! The default policy stops at the first error: the pool is cancelled, queued
//! items are dropped (and counted), and [`wait`](crate::Pool::wait) returns
//! that error. [`continue_on_error`](crate::Builder::continue_on_error) keeps
//! going and returns every error (up to `error_limit`, with the total). A
//! panic in a worker, a maker, `finish`, a callback or an item's `Drop` is
//! caught and reported as [`PoolError::Panicked`](crate::PoolError::Panicked)
//! with the worker and the [`PanicSite`](crate::PanicSite); the worker thread
//! goes on. [`resume_panics`](crate::Builder::resume_panics) re-raises the
//! first panic from `wait` instead, after the accounting is done.
//!
//! ```
//! use workforce::prelude::*;
//!
//! let pool = Pool::builder()
//!     .workers(2)
//!     .continue_on_error()
//!     .build(|_ctx: &Ctx, n: u32| {
//!         if n == 7 {
//!             panic!("seven is not allowed");
//!         }
//!         if n % 5 == 0 { Err(std::io::Error::other(format!("{n}: divisible by 5"))) } else { Ok(()) }
//!     })?;
//! pool.submitter().submit_iter(1..=20)?;
//! let report = pool.join(); // the report even when there were errors
//! assert_eq!((report.processed(), report.failed()), (15, 5));
//! assert!(report.errors().iter().any(|error| matches!(error, PoolError::Panicked { .. })));
//! assert!(report.is_balanced());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! To ask what went wrong, [`PoolError::find::<E>()`](crate::PoolError::find)
//! finds the worker's own error of type `E` wherever it sits: behind the
//! pool's error, inside an `anyhow::Error` (the pool keeps it whole), among
//! its sources, under the middleware's wrappers, in each error of
//! `PoolError::Many`. [`find_error`](crate::find_error) does the same for
//! any other error (a retry predicate's, say). A caught panic keeps its
//! payload, the value given to `panic!` or `std::panic::panic_any`, as a
//! [`PanicPayload`](crate::PanicPayload) to downcast or re-raise.
//!
//! ```
//! use std::time::Duration;
//! use workforce::middleware::{Retry, Timeout};
//! use workforce::prelude::*;
//!
//! #[derive(Debug, thiserror::Error)]
//! enum ImportError {
//!     #[error("row {0} is malformed")]
//!     Malformed(u32),
//! }
//!
//! /// What a worker panics with, for whoever reads the report.
//! #[derive(Debug)]
//! struct Corrupt(u32);
//!
//! let pool = Pool::builder()
//!     .workers(1)
//!     .continue_on_error()
//!     .layer(Retry::new(2, Duration::ZERO)?)
//!     .layer(Timeout::new(Duration::from_secs(30))?)
//!     .build(|_ctx: &Ctx, row: u32| -> anyhow::Result<()> {
//!         match row {
//!             1 => Err(ImportError::Malformed(row).into()),
//!             2 => std::panic::panic_any(Corrupt(row)),
//!             _ => Ok(()),
//!         }
//!     })?;
//! pool.submitter().submit_iter(0..3)?;
//! let Err(PoolError::Many { errors, .. }) = pool.wait() else { panic!("two rows failed") };
//! for error in errors {
//!     if let Some(ImportError::Malformed(row)) = error.find::<ImportError>() {
//!         assert_eq!(*row, 1); // through Retry, Timeout and anyhow
//!     } else if let PoolError::Panicked { payload, .. } = error {
//!         assert_eq!(payload.downcast::<Corrupt>().map(|corrupt| corrupt.0).ok(), Some(2));
//!     } else {
//!         panic!("unexpected {error}");
//!     }
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # 6. Cancellation and shutdown
//!
//! [`Pool::cancel`](crate::Pool::cancel), or a [`CancelToken`](crate::CancelToken)
//! given to the builder (a child of your service's token, say): queued items
//! are dropped and counted as dropped, producers blocked at capacity get their
//! item back, workers see `ctx.is_cancelled()` and may stop early.
//! [`close`](crate::Pool::close) stops accepting input and lets the queue
//! drain; `wait` and `finish` close, drain and join; dropping the pool does
//! too. No pool leaves a thread behind.
//!
//! ```
//! use workforce::prelude::*;
//!
//! let service = CancelToken::new();
//! let pool = Pool::builder()
//!     .workers(2)
//!     .capacity(64)
//!     .cancel_token(service.child())
//!     .build(|ctx: &Ctx, _n: u64| {
//!         // A long item checks the token now and then.
//!         if ctx.is_cancelled() { return Ok(()); }
//!         Ok::<(), std::convert::Infallible>(())
//!     })?;
//! std::thread::scope(|scope| {
//!     scope.spawn(|| {
//!         let mut submitter = pool.submitter();
//!         for n in 0.. {
//!             if let Err(refused) = submitter.submit(n) {
//!                 // Cancelled while blocked or between items: the item is ours again.
//!                 assert!(matches!(refused, SubmitError::Cancelled(_)));
//!                 break;
//!             }
//!         }
//!     });
//!     service.cancel(); // e.g. on Ctrl-C
//! });
//! let report = pool.join();
//! assert!(report.was_cancelled());
//! assert!(report.is_balanced());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! **Which jobs: failed, interrupted, never run.** A job runner must say
//! more than how many. Three settings tell it which:
//! - [`item_key`](crate::Builder::item_key) names items in errors: a failed or
//!   panicking item's [`PoolError`](crate::PoolError) carries its
//!   [`ItemKey`](crate::ItemKey) (`error.key()`, and `on item {key}` in the
//!   text), in the report and in `tracing` events. One call of the key
//!   function per item, only in pools that set it.
//! - [`on_dropped`](crate::Builder::on_dropped) hands back every item the
//!   pool drops after a cancel (queued, or pushed after it), one call per
//!   item, so the runner can queue exactly those again.
//! - [`ctx.check()?`](crate::Ctx::check) stops a long job when the pool is
//!   cancelled, with an [`Interrupted`](crate::Interrupted) error that the
//!   pool counts as **interrupted** (part of dropped), not as a failure: the
//!   report keeps "stopped by the shutdown" apart from real errors, through
//!   `anyhow`, `?` conversions and middleware alike.
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use workforce::prelude::*;
//!
//! #[derive(Debug)]
//! struct Job { id: u32, steps: u32 }
//!
//! let not_run = Arc::new(Mutex::new(Vec::new()));
//! let requeue = Arc::clone(&not_run);
//! let pool = Pool::builder()
//!     .workers(1)
//!     .continue_on_error()
//!     .item_key(|job: &Job| job.id)
//!     .on_dropped(move |job: Job| requeue.lock().unwrap().push(job.id))
//!     .build(|ctx: &Ctx, job: Job| -> anyhow::Result<()> {
//!         anyhow::ensure!(job.steps > 0, "job {} has nothing to do", job.id);
//!         for step in 0..job.steps {
//!             ctx.check()?; // stop here if the service shuts down
//!             if job.id == 4 && step == 1 {
//!                 ctx.token().cancel(); // the shutdown, arriving mid-job
//!             }
//!         }
//!         Ok(())
//!     })?;
//! let mut submitter = pool.submitter();
//! for (id, steps) in [(1, 3), (2, 0), (3, 2), (4, 5), (5, 1), (6, 2)] {
//!     submitter.submit(Job { id, steps })?;
//! }
//! drop(submitter);
//! let report = pool.join();
//! let failed: Vec<u64> = report.errors().iter().filter_map(|e| e.key()?.as_u64()).collect();
//! assert_eq!(failed, [2]);                          // a real failure, by id
//! assert_eq!(report.interrupted(), 1);              // job 4, stopped by the shutdown
//! assert_eq!(*not_run.lock().unwrap(), [5, 6]);     // never started: run them again
//! assert_eq!((report.processed(), report.failed(), report.dropped()), (2, 1, 3));
//! assert!(report.is_balanced());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! **Hearing about a cancel.** [`CancelToken::on_cancel`](crate::CancelToken::on_cancel)
//! registers a callback that runs once, on the thread that cancels (or at
//! once, if the token is cancelled already): close a socket, stop a timer,
//! wake something a token cannot. Keep the returned
//! [`CancelRegistration`](crate::CancelRegistration) while the callback
//! should stay registered; dropping it deregisters the callback. A
//! collector built with a token uses it, so no thread watches the token.
//!
//! **Waiting, but not for ever.** [`join_timeout`](crate::Pool::join_timeout)
//! (and `join_until`) close the pool and wait up to a limit for the last
//! item: the report if it came, the pool itself if not, to wait again,
//! cancel or drop. A pool that keeps its workers' states (chapter 2) has
//! `join_with_workers_timeout` for the same, so the states are not dropped
//! with the report.
//!
//! ```
//! use std::sync::atomic::{AtomicBool, Ordering};
//! use std::sync::Arc;
//! use std::time::Duration;
//! use workforce::prelude::*;
//!
//! let service = CancelToken::new();
//! let stopped = Arc::new(AtomicBool::new(false));
//! let flag = Arc::clone(&stopped);
//! let _registration = service.on_cancel(move || flag.store(true, Ordering::SeqCst));
//!
//! let pool = Pool::builder()
//!     .workers(1)
//!     .cancel_token(service.child())
//!     .build(|ctx: &Ctx, _job: u32| {
//!         ctx.token().wait_timeout(Duration::from_secs(3600)); // a job that waits for the shutdown
//!         Ok::<(), std::convert::Infallible>(())
//!     })?;
//! pool.sender().send(1)?;
//! // The job cannot end before the shutdown: the pool comes back.
//! let pool = match pool.join_timeout(Duration::from_millis(10)) {
//!     Ok(_) => unreachable!("the job waits for the cancel"),
//!     Err(pool) => pool,
//! };
//! service.cancel(); // the callback runs here, and the job ends
//! assert!(stopped.load(Ordering::SeqCst));
//! let report = pool.join_timeout(Duration::from_secs(60)).expect("the job ended");
//! assert!(report.was_cancelled() && report.is_balanced());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # 7. Metrics
//!
//! Each worker writes its own shard, so counting costs no shared write:
//! `ctx.metrics().inc("name")`, or a [`Counter`](crate::Counter) handle
//! resolved once. [`Pool::metrics`](crate::Pool::metrics) is a live
//! [`Snapshot`](crate::Snapshot) any thread may take without stopping the
//! workers (drive a progress bar with it: the `progress` and `hash_files`
//! examples). [`Report::stats`](crate::Report::stats) holds the final
//! [`Stats`](crate::Stats): counts, times, rate, utilization, the custom
//! counters, and latency percentiles with [`MetricsMode::Latency`](crate::MetricsMode::Latency).
//! [`metrics::prometheus_text`](crate::metrics::prometheus_text) exports them.
//!
//! ```
//! use workforce::prelude::*;
//!
//! let pool = Pool::builder()
//!     .workers(2)
//!     .metrics(MetricsMode::Latency)
//!     .build(|ctx: &Ctx, word: String| {
//!         ctx.metrics().add("bytes", word.len() as u64);
//!         Ok::<(), std::convert::Infallible>(())
//!     })?;
//! pool.submitter().submit_iter(["one", "two", "three"].map(String::from))?;
//! let report = pool.wait()?;
//! let stats = report.stats();
//! assert_eq!(stats.counters.get("bytes"), 11);
//! assert_eq!(stats.latency.as_ref().map(|latency| latency.count), Some(3));
//! println!("{stats}"); // a table: counts, times, rate, utilization, percentiles
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! **Progress without polling.** [`Pool::wait_for_change`](crate::Pool::wait_for_change)
//! sleeps until the pool has moved on from a snapshot (items finished, an
//! error, a close or a cancel) and returns a fresh one, so a progress bar
//! redraws when there is something new instead of on a timer. While nobody
//! waits it costs the workers one load of a flag per job; while a thread
//! waits, one wake-up per change it waits for. The `progress` and
//! `hash_files` examples draw their bars this way.
//!
//! **Counting outside the workers.** A producer, a reader or a consumer is
//! no worker and has no shard: [`Pool::metrics_handle`](crate::Pool::metrics_handle)
//! gives a [`MetricsHandle`](crate::MetricsHandle) (cloneable, `'static`)
//! whose counters (`handle.add("name", n)`, as go-pkgz's `p.Metrics().Add`)
//! go to a shard of their own and are merged with the workers' counters in
//! every snapshot and in the report.
//!
//! ```
//! use std::time::Duration;
//! use workforce::prelude::*;
//!
//! let pool = Pool::builder().workers(2).build(|ctx: &Ctx, _line: String| {
//!     ctx.metrics().inc("lines");
//!     Ok::<(), std::convert::Infallible>(())
//! })?;
//! let metrics = pool.metrics_handle();
//! std::thread::scope(|scope| {
//!     let pool = &pool;
//!     scope.spawn(move || {
//!         let mut submitter = pool.submitter();
//!         for line in ["a", "# a comment", "b", "c"] {
//!             if line.starts_with('#') {
//!                 metrics.inc("comments"); // counted by the producer
//!                 continue;
//!             }
//!             submitter.submit(line.to_owned()).expect("the pool is open");
//!         }
//!         drop(submitter);
//!         pool.close(); // a change: the loop below sees the end
//!     });
//!     let mut snapshot = pool.metrics();
//!     while !(snapshot.closed && snapshot.finished() == snapshot.submitted) {
//!         // bar.set_position(snapshot.finished());
//!         snapshot = pool
//!             .wait_for_change(&snapshot, Duration::from_millis(250))
//!             .unwrap_or_else(|| pool.metrics());
//!     }
//! });
//! let report = pool.wait()?;
//! assert_eq!(report.stats().counters.get("lines"), 3);
//! assert_eq!(report.stats().counters.get("comments"), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! **Into your registry.** Besides the text dump, two features hand the
//! same figures to the registry a service already has: `metrics` adds
//! [`metrics::record_metrics`](crate::metrics), which publishes a `Stats`
//! to the [`metrics`](https://docs.rs/metrics) facade (call it on each
//! change or on a timer, with a `pool` label), and `prometheus` adds
//! `metrics::PrometheusCollector`, a collector of a
//! [`prometheus-client`](https://docs.rs/prometheus-client) registry that
//! reads the stats at every scrape through a metrics handle:
//!
//! ```
//! # #[cfg(feature = "prometheus")]
//! # {
//! use prometheus_client::registry::Registry;
//! use workforce::metrics::PrometheusCollector;
//! use workforce::prelude::*;
//!
//! let pool = Pool::builder().workers(2).build(|_ctx: &Ctx, _n: u64| Ok::<(), std::io::Error>(()))?;
//! let mut registry = Registry::default();
//! let handle = pool.metrics_handle();
//! registry
//!     .sub_registry_with_prefix("ingest")
//!     .register_collector(Box::new(PrometheusCollector::new(move || handle.stats())));
//! pool.run(0..1_000)?;
//! let mut scraped = String::new();
//! prometheus_client::encoding::text::encode(&mut scraped, &registry)?;
//! assert!(scraped.contains("ingest_processed_total 1000"));
//! pool.wait()?;
//! # }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # 8. Middleware
//!
//! [`Builder::layer`](crate::Builder::layer) wraps every worker in a
//! [`Layer`](crate::Layer), the way `tower` wraps services: [`middleware`](crate::middleware)
//! has `Retry` (backoff, jitter, retrying only the errors that hold a type
//! with `retry_on::<E>()` or a predicate, an `on_retry` hook, a per-worker
//! `retries` counter), `Timeout` (a deadline the worker can poll),
//! `Recovery` (a panic becomes an error that keeps its payload), `Validator` and a
//! `RateLimiter` shared by all workers; [`layer_fn`](crate::layer_fn) makes one
//! from a closure around each item (the worker's `finish` still runs). The
//! first layer added is the outermost. Each worker thread
//! builds its own stack, and the stack is a type, so it inlines.
//!
//! ```
//! use std::sync::atomic::{AtomicU32, Ordering};
//! use std::time::Duration;
//! use workforce::middleware::{Retry, Validator};
//! use workforce::prelude::*;
//!
//! let attempts = std::sync::Arc::new(AtomicU32::new(0));
//! let counted = attempts.clone();
//! let pool = Pool::builder()
//!     .workers(1)
//!     .continue_on_error()
//!     .layer(Validator::predicate("not empty", |url: &String| !url.is_empty()))
//!     .layer(Retry::new(3, Duration::from_micros(10))?)
//!     .build(move |_ctx: &Ctx, url: String| {
//!         // Fails twice, then works: the retry hides it.
//!         anyhow::ensure!(counted.fetch_add(1, Ordering::Relaxed) >= 2, "{url}: busy");
//!         Ok(())
//!     })?;
//! pool.submitter().submit_iter(["http://a".to_owned(), String::new()])?;
//! let report = pool.join();
//! assert_eq!((report.processed(), report.failed()), (1, 1)); // the empty URL never reached the worker
//! assert_eq!(attempts.load(Ordering::Relaxed), 3);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # 9. Collecting results
//!
//! A pool's workers return `Result<(), E>`: results leave through something
//! the worker owns. (When each caller wants the answer to *its* item, build
//! a call pool instead: [chapter 11](#11-a-service-with-per-item-results).) [`collect`](crate::collect) has the usual shapes:
//! - [`Collector`](crate::collect::Collector): a bounded collection point;
//!   workers send through a cloneable sender, the consumer iterates. It
//!   keeps its own books ([`counts`](crate::collect::Collector::counts):
//!   received, taken, dropped, buffered, refused), so a pipeline's
//!   accounting goes on past the pool: every processed item's value was
//!   received or refused, and every received one taken or dropped.
//! - [`Dispatcher`](crate::collect::Dispatcher): jobs returning `Result<R, E>`;
//!   `wait()` gives every result and every error, each with the index
//!   `submit` returned for its job.
//! - [`map_ordered`](crate::collect::map_ordered) / `map_unordered`: a function
//!   over an iterator, results in input order (bounded reorder window) or as
//!   they come.
//! - [`parallel`](crate::collect::parallel) / `cancelable_parallel`: a few
//!   closures at once, every error back in closure order.
//!
//! ```
//! use workforce::collect::{Collector, MapConfig, map_ordered, parallel};
//! use workforce::prelude::*;
//!
//! // Workers send results to a collector; the consumer takes them all.
//! let collector = Collector::new(1_000)?;
//! let results = collector.sender();
//! let pool = Pool::builder().workers(2).build(move |_ctx: &Ctx, n: u64| {
//!     results.send(n * n).map_err(|refused| anyhow::anyhow!("collector gone: {refused}"))
//! })?;
//! pool.submitter().submit_iter(0..10)?;
//! pool.wait()?; // drops the pool's worker, and with it the last sender
//! let books = collector.counts();
//! assert_eq!((books.received, books.refused), (10, 0)); // one value per processed item
//! let mut squares = collector.all()?;
//! squares.sort_unstable();
//! assert_eq!(squares, [0, 1, 4, 9, 16, 25, 36, 49, 64, 81]);
//!
//! // A function over an iterator, results in input order.
//! let lengths: Vec<usize> = map_ordered(["a", "bb", "ccc"], MapConfig::default().workers(2), str::len)?.collect();
//! assert_eq!(lengths, [1, 2, 3]);
//!
//! // Three calls at once; every error comes back, in closure order.
//! let outcome = parallel((0..3).map(|i| move || if i == 0 { Ok(()) } else { Err(format!("call {i} failed")) }));
//! assert_eq!(outcome.map_err(|errors| errors.len()), Err(2));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # 10. Tracing
//!
//! With the `tracing` feature (off by default, and then compiled out), the
//! pool emits a span per worker thread and per batch and an event per error
//! and per panic, for any `tracing` subscriber. See the `pool-core` crate
//! docs for the names, fields and levels.
//!
//! # 11. A service with per-item results
//!
//! When each caller hands in one item and wants *its* answer back, build a
//! **call pool**: [`build_call`](crate::Builder::build_call) (or
//! [`build_call_stateful`](crate::Builder::build_call_stateful) with a
//! [`CallWorker`](crate::CallWorker)) takes a worker that returns a value,
//! and [`Pool::call`](crate::Pool::call) returns a
//! [`CallHandle`](crate::CallHandle) to wait on. It is the same pool: the
//! builder's settings, layers, keys, metrics, the error policy, cancellation
//! and the accounting all apply to called items.
//!
//! A handle resolves exactly once: to the value, or to a
//! [`CallError`](crate::CallError) that says why not: the worker's error
//! (after every layer, as its own type, boxed), a panic (its message and
//! its original payload, which the handle owns), or `Dropped` when the pool
//! was cancelled or stopped before the item ran. Callers on other threads
//! take a cloned [`Sender`](crate::Sender), which has the same `call`;
//! `try_call` and `call_timeout` hand the item back instead of blocking when
//! the pool is full. Each call allocates its answer's slot; items pushed
//! without a call cost what they always did.
//!
//! ```
//! use std::time::Duration;
//! use workforce::middleware::Retry;
//! use workforce::prelude::*;
//!
//! #[derive(Debug, Clone)]
//! struct Request { id: u32, body: String }
//!
//! #[derive(Debug, thiserror::Error)]
//! #[error("request {0} has an empty body")]
//! struct EmptyBody(u32);
//!
//! let pool: CallPool<Request, usize> = Pool::builder()
//!     .workers(4)
//!     .capacity(64)                    // callers wait beyond 64 unfinished requests
//!     .continue_on_error()             // one bad request does not stop the service
//!     .layer(Retry::new(3, Duration::from_millis(1))?) // layers see the Request itself
//!     .build_call(|_ctx: &Ctx, request: Request| {
//!         if request.body.is_empty() {
//!             return Err(EmptyBody(request.id));
//!         }
//!         Ok(request.body.split_whitespace().count())
//!     })?;
//!
//! // Eight caller threads, each waiting for its own answers.
//! std::thread::scope(|scope| {
//!     for caller in 0..8u32 {
//!         let sender = pool.sender();
//!         scope.spawn(move || {
//!             let request = Request { id: caller, body: "a few words ".repeat(caller as usize + 1) };
//!             let words = sender.call(request).expect("the service is open").wait();
//!             assert_eq!(words.expect("a count"), 3 * (caller as usize + 1));
//!         });
//!     }
//! });
//!
//! // The worker's own error type comes back to the caller.
//! let answer = pool.call(Request { id: 99, body: String::new() })?.wait();
//! match answer {
//!     Err(CallError::Failed(error)) => assert!(error.to_string().contains("request 99")),
//!     other => panic!("expected the worker's error, got {other:?}"),
//! }
//!
//! // Without blocking: poll, or wait a while.
//! let mut handle = pool.call(Request { id: 100, body: "late but fine".into() })?;
//! let words = loop {
//!     if let Some(outcome) = handle.wait_timeout(Duration::from_millis(10)) {
//!         break outcome?;
//!     }
//!     // ... do something else meanwhile ...
//! };
//! assert_eq!(words, 3);
//!
//! let report = pool.join();
//! assert_eq!((report.processed(), report.failed()), (9, 1));
//! assert!(report.is_balanced());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! A panic reaches its caller with the payload, as
//! `std::thread::JoinHandle::join` hands it over; a shutdown answers every
//! call still queued with `Dropped`, so a caller can tell "did not run" from
//! "failed":
//!
//! ```
//! use workforce::prelude::*;
//!
//! #[derive(Debug, PartialEq)]
//! struct BadBlock(u64);
//!
//! let started = std::sync::Arc::new(std::sync::Barrier::new(2));
//! let release = std::sync::Arc::new(std::sync::Barrier::new(2));
//! let (worker_started, worker_release) = (started.clone(), release.clone());
//! let pool = Pool::builder()
//!     .workers(1)
//!     .continue_on_error()
//!     .build_call(move |_ctx: &Ctx, block: u64| -> std::io::Result<u64> {
//!         match block {
//!             13 => std::panic::panic_any(BadBlock(13)),
//!             0 => { worker_started.wait(); worker_release.wait(); Ok(0) }
//!             n => Ok(n),
//!         }
//!     })?;
//! # let quiet = std::panic::take_hook();
//! # std::panic::set_hook(Box::new(move |info| if !info.payload().is::<BadBlock>() { quiet(info) }));
//! match pool.call(13)?.wait() {
//!     Err(CallError::Panicked(panic)) => {
//!         assert_eq!(panic.into_payload().downcast_ref::<BadBlock>(), Some(&BadBlock(13)));
//!     }
//!     other => panic!("expected the panic, got {other:?}"),
//! }
//!
//! let busy = pool.call(0)?;      // the worker holds this one...
//! started.wait();
//! let queued = pool.call(1)?;    // ...while this one waits in the queue
//! pool.cancel();                 // shutting down
//! release.wait();
//! assert_eq!(busy.wait()?, 0);   // the item in hand finishes
//! assert!(matches!(queued.wait(), Err(CallError::Dropped)));
//! let report = pool.join();
//! assert_eq!((report.processed(), report.failed(), report.dropped()), (1, 1, 1));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # 12. An async caller
//!
//! With the `async` feature (any runtime; none is built in), nothing an
//! async caller does blocks its thread:
//! `Sender::send_async` and `call_async` wait
//! for room as tasks, a [`CallHandle`](crate::CallHandle) is a future, and
//! `Pool::join_async` /
//! `wait_async` wait for the workers without
//! blocking. So a pool can live inside the runtime, taking CPU-heavy work
//! off it: `sender.call_async(item).await?` waits for room (the pool's
//! `capacity` is the backpressure) and hands the item in, and awaiting the
//! handle waits for the answer. A collector's
//! `stream` and `recv_async` are the
//! async consumer of values the workers send; with the `tower` feature,
//! `Pool::service` puts a call pool in a tower
//! stack (`poll_ready` is room in the pool).
//!
//! Both `send_async` and `call_async` are **cancel-safe**: a future dropped
//! before it completed (a `select!` that went the other way, a timeout)
//! never submitted its item, which is dropped with it and not counted;
//! once it completed, the item is in the pool and counted, and dropping
//! the handle does not take it back. Building a pool, `close`, `cancel` and
//! `metrics` never block; dropping a pool does (it joins its threads), so
//! end one with `join_async` or `wait_async`.
//!
//! ```
//! # #[cfg(feature = "async")]
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use workforce::prelude::*;
//!
//! /// CPU-heavy work that must not run on the runtime's threads.
//! fn checksum(data: &[u8]) -> u64 {
//!     data.iter().fold(0xcbf2_9ce4_8422_2325_u64, |hash, &byte| (hash ^ u64::from(byte)).wrapping_mul(0x100_0000_01b3))
//! }
//!
//! // One thread runs every task: a blocking call would stop them all.
//! let runtime = tokio::runtime::Builder::new_current_thread().build()?;
//! let report = runtime.block_on(async {
//!     let pool = Pool::builder()
//!         .workers(2)
//!         .batch_size(1) // calls go in one at a time; a capacity below 64 needs this
//!         .capacity(8)   // at most 8 requests queued or running; callers wait as tasks
//!         .build_call(|_ctx: &Ctx, data: Vec<u8>| Ok::<_, std::convert::Infallible>(checksum(&data)))?;
//!     let mut tasks = Vec::new();
//!     for request in 0..100u8 {
//!         let sender = pool.sender(); // cloneable, 'static: one per task
//!         tasks.push(tokio::spawn(async move {
//!             let data = vec![request; 64 * 1024];
//!             let expected = checksum(&data);
//!             let sum = sender.call_async(data).await?.await?; // room, then the answer
//!             assert_eq!(sum, expected);
//!             Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
//!         }));
//!     }
//!     for task in tasks {
//!         task.await?.map_err(|error| error.to_string())?;
//!     }
//!     Ok::<_, Box<dyn std::error::Error>>(pool.join_async().await)
//! })?;
//! assert_eq!(report.processed(), 100);
//! assert!(report.is_balanced());
//! # Ok(())
//! # }
//! # #[cfg(not(feature = "async"))]
//! # fn main() {}
//! ```
//!
//! # 13. A job runner: ids, typed retries, a shutdown report
//!
//! A job runner needs to know, per job, what happened: done (with its
//! answer), failed for good (which error), retried (how often), stopped by
//! the shutdown, or never started. Each is one setting, and none needs a map
//! of its own:
//! - a call pool ([chapter 11](#11-a-service-with-per-item-results)) answers
//!   each job on its own handle: the value, or the error with its type;
//! - [`Retry::retry_on::<E>()`](crate::middleware::Retry::retry_on) retries
//!   only errors that are or hold an `E` (found through `anyhow` and the
//!   other layers), and [`on_retry`](crate::middleware::Retry::on_retry)
//!   sees each retry; the report counts them (`retries`);
//! - [`item_key`](crate::Builder::item_key) names a job in the report's
//!   errors, [`on_dropped`](crate::Builder::on_dropped) hands back the jobs a
//!   shutdown kept from starting, and [`ctx.check()`](crate::Ctx::check)
//!   stops a running one as **interrupted**, not failed.
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use std::time::Duration;
//! use workforce::middleware::Retry;
//! use workforce::prelude::*;
//! use workforce::{CallError, CallHandle, find_error};
//!
//! /// A failure worth retrying: the database was busy.
//! #[derive(Debug, thiserror::Error)]
//! #[error("database busy")]
//! struct Busy;
//!
//! /// A failure that no retry fixes.
//! #[derive(Debug, thiserror::Error)]
//! #[error("job {0}: no such customer")]
//! struct NoCustomer(u32);
//!
//! #[derive(Debug, Clone)]
//! struct Job { id: u32 }
//!
//! let attempts = Arc::new(Mutex::new(std::collections::HashMap::<u32, u32>::new()));
//! let retried = Arc::new(Mutex::new(Vec::new()));
//! let (seen, log) = (Arc::clone(&attempts), Arc::clone(&retried));
//! let pool = Pool::builder()
//!     .workers(1)
//!     .continue_on_error()
//!     .item_key(|job: &Job| job.id)
//!     .layer(
//!         Retry::new(3, Duration::ZERO)?
//!             .retry_on::<Busy>()
//!             .on_retry(move |attempt, error, _delay| log.lock().unwrap().push((attempt, error.to_string()))),
//!     )
//!     .build_call(move |_ctx: &Ctx, job: Job| -> anyhow::Result<String> {
//!         let n = { let mut seen = seen.lock().unwrap(); *seen.entry(job.id).and_modify(|n| *n += 1).or_insert(1) };
//!         match job.id {
//!             2 if n == 1 => Err(Busy.into()),                 // busy once: retried, then done
//!             3 => Err(NoCustomer(3).into()),                  // permanent: not retried
//!             _ => Ok(format!("invoice for job {}", job.id)),
//!         }
//!     })?;
//! let handles: Vec<(u32, CallHandle<String>)> =
//!     (1..=3).map(|id| Ok((id, pool.call(Job { id })?))).collect::<Result<_, SendError<_>>>()?;
//! for (id, handle) in handles {
//!     match handle.wait() {
//!         Ok(invoice) => assert_eq!(invoice, format!("invoice for job {id}")),
//!         Err(CallError::Failed(error)) => {
//!             // The worker's own type, through Retry and anyhow.
//!             assert_eq!(find_error::<NoCustomer>(&*error).map(|e| e.0), Some(3));
//!         }
//!         Err(other) => panic!("job {id}: {other}"),
//!     }
//! }
//! assert_eq!(*retried.lock().unwrap(), [(1, "database busy".to_owned())]);
//! let report = pool.join();
//! assert_eq!((report.processed(), report.failed()), (2, 1));
//! assert_eq!(report.stats().counters.get("retries"), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! At shutdown, the same pool with [`on_dropped`](crate::Builder::on_dropped)
//! and `ctx.check()?` in long jobs tells the three other outcomes apart
//! (see the example in [chapter 6](#6-cancellation-and-shutdown)): the
//! callback gets each job that never started (its handle says
//! [`CallError::Dropped`](crate::CallError::Dropped)), a job stopped by
//! `check` counts in [`Report::interrupted`](crate::Report::interrupted),
//! and only real failures are in [`Report::errors`](crate::Report::errors),
//! each with its job's key.
//!
//! # 14. Tree-shaped work
//!
//! Some work makes more work: walking a directory tree (each directory
//! lists more), crawling links (each page links to more pages), expanding
//! a search. Nobody knows the items up front, so no producer can submit
//! them: the worker that finds an item adds it to its own pool with
//! [`ctx.spawn(item)`](crate::Ctx::spawn), and the pool is done when the
//! whole tree is.
//!
//! - **It never waits.** A spawned item takes a unit of room like any item,
//!   but never waits for it: a full pool goes over its capacity instead
//!   (workers waiting for room only workers can free would wait forever).
//!   Producers outside the pool wait while it is over, so the overshoot is
//!   made of the tree's own items; a worker takes the items it spawned last
//!   in, first out (depth first), which keeps the frontier small, and idle
//!   workers steal the oldest, the largest subtrees.
//!   [`ctx.try_spawn`](crate::Ctx::try_spawn) refuses with `Full` instead,
//!   for a hard bound: the worker then handles the item itself.
//! - **It ends when the tree does.** [`wait`](crate::Pool::wait) closes the
//!   pool, which stops producers outside it, not the tree: it returns when
//!   no item is queued, running, or able to spawn more.
//!   [`run`](crate::Pool::run) returns when the trees of the items it
//!   pulled are done.
//! - **Every item counts.** A spawned item counts as submitted (and in
//!   [`Report::spawned`](crate::Report::spawned)), then as processed, failed
//!   or dropped: `submitted == processed + failed + dropped` for the whole
//!   tree. After a cancel, spawns are refused
//!   ([`SpawnError::Cancelled`](crate::SpawnError::Cancelled), the item
//!   handed back) and what the tree had queued is dropped and counted.
//! - **Order.** In a keyed pool the spawned item goes to its key's worker,
//!   and the items one worker spawns for a key are processed in the order
//!   it spawned them.
//! - **Typed.** `Ctx` is not generic: `spawn` checks that the item's type is
//!   the pool's ([`SpawnError::Unavailable`](crate::SpawnError::Unavailable)
//!   otherwise, also outside an item: a maker, `finish`).
//!   [`ctx.spawner::<T>()`](crate::Ctx::spawner) does the check once for
//!   many spawns. Mind integer literals: `ctx.spawn(3)` spawns an `i32`.
//!
//! A directory walk, on a tree made for the example:
//!
//! ```
//! use std::path::PathBuf;
//! use workforce::prelude::*;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // 4 directories of 3 directories of 5 files each, in a temporary directory.
//! let root = std::env::temp_dir().join(format!("workforce-guide-walk-{}", std::process::id()));
//! for a in 0..4 {
//!     for b in 0..3 {
//!         let dir = root.join(format!("a{a}")).join(format!("b{b}"));
//!         std::fs::create_dir_all(&dir)?;
//!         for file in 0..5 {
//!             std::fs::write(dir.join(format!("{file}.txt")), "some text")?;
//!         }
//!     }
//! }
//!
//! let pool = Pool::builder().workers(4).build(|ctx: &Ctx, dir: PathBuf| -> anyhow::Result<()> {
//!     for entry in std::fs::read_dir(&dir)? {
//!         let entry = entry?;
//!         if entry.file_type()?.is_dir() {
//!             ctx.spawn(entry.path())?; // a directory: walked by whichever worker is free
//!         } else {
//!             ctx.metrics().add("bytes", entry.metadata()?.len());
//!             ctx.metrics().inc("files");
//!         }
//!     }
//!     Ok(())
//! })?;
//! pool.sender().send(root.clone())?;
//! let report = pool.wait()?; // the whole tree, however deep
//! std::fs::remove_dir_all(&root)?;
//! assert_eq!(report.processed(), 1 + 4 + 4 * 3); // the directories
//! assert_eq!(report.spawned(), 4 + 4 * 3);
//! assert_eq!(report.stats().counters.get("files"), 4 * 3 * 5);
//! assert_eq!(report.stats().counters.get("bytes"), 4 * 3 * 5 * 9);
//! # Ok(())
//! # }
//! ```
//!
//! A search stops at the first find: the worker that finds it cancels the
//! pool; later spawns are refused, what was queued is dropped, and the books
//! still balance.
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use workforce::prelude::*;
//!
//! // The numbers 2^a * 3^b below 2^40, each once (double only before the
//! // first triple); find one that ends in 376.
//! let found = Arc::new(Mutex::new(None));
//! let report = {
//!     let found = Arc::clone(&found);
//!     let pool = Pool::builder().workers(2).build(move |ctx: &Ctx, n: u64| {
//!         if n % 1000 == 376 {
//!             found.lock().unwrap().get_or_insert(n);
//!             ctx.token().cancel();
//!             return Ok(());
//!         }
//!         let double = (n % 3 != 0).then_some(2 * n);
//!         for next in double.into_iter().chain([3 * n]) {
//!             if next < 1 << 40 {
//!                 match ctx.spawn(next) {
//!                     Ok(()) | Err(SpawnError::Cancelled(_)) => {} // found elsewhere: stop
//!                     Err(refused) => return Err(refused),
//!                 }
//!             }
//!         }
//!         Ok(())
//!     })?;
//!     pool.sender().send(1u64)?;
//!     pool.join() // a cancelled pool's `wait` says `Cancelled`; `join` gives the report
//! };
//! let n = found.lock().unwrap().expect("2^a 3^b ends in 376 for some a, b");
//! assert_eq!(n % 1000, 376);
//! assert!(report.was_cancelled());
//! assert!(report.is_balanced()); // queued items were dropped and counted
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Two older ways of feeding a pool from inside no longer wait forever
//! either: a worker's [`Sender::send`](crate::Sender::send) into its own full
//! pool goes over the capacity rather than wait for the workers (all of them
//! might be sending), and a thread whose own [`Submitter`](crate::Submitter)
//! holds room in a partly filled batch may use that room for a `send` to
//! the same pool. A `Sender` is still refused once the pool is closed, so a
//! tree built with one ends at the first `wait`: use `ctx.spawn`.
//!
//! The `crawl` example (`cargo run -p workforce --example crawl`) crawls a
//! 3,000-page site on 127.0.0.1 this way, a visited set deciding which links
//! are new, and checks that every page was fetched exactly once.
//!
//! # 15. Scoped pools: borrowing local data
//!
//! An ordinary pool's threads may outlive anything on your stack, so its
//! workers, makers and items are `'static`: shared data goes in an `Arc`,
//! lines become `String`s. [`scope`](crate::scope) works like
//! [`std::thread::scope`]: a pool built in it with
//! [`Scope::builder`](crate::Scope::builder) (or
//! [`Builder::scoped`](crate::Builder::scoped)) runs its threads in the
//! scope, and every one of them has ended when `scope` returns. So the
//! workers, the makers and the items may borrow: `&str` lines of a buffer, a
//! `&HashMap` of rules, `&mut` slices split per worker, a `&Connection`.
//! Every setting and every build method (`build`, `build_stateful`,
//! `try_build_stateful`, the batch and call builds, `keep_workers`) works
//! as for an ordinary pool, and the report balances as always.
//!
//! ```
//! use std::collections::HashMap;
//! use workforce::prelude::*;
//!
//! /// Adds up the bytes per status code of the lines it sees, in a map of its own.
//! struct Tally<'a> { sizes: HashMap<&'a str, u64>, rules: &'a HashMap<&'static str, u64> }
//!
//! impl<'a> Worker<&'a str> for Tally<'a> {
//!     type Error = std::num::ParseIntError;
//!     fn work(&mut self, _ctx: &Ctx, line: &'a str) -> Result<(), Self::Error> {
//!         let mut fields = line.split(' ');
//!         let (status, bytes) = (fields.next().unwrap_or(""), fields.next().unwrap_or(""));
//!         let weight = self.rules.get(status).copied().unwrap_or(1);
//!         *self.sizes.entry(status).or_default() += weight * bytes.parse::<u64>()?;
//!         Ok(())
//!     }
//! }
//!
//! let log = String::from("200 10\n404 1\n200 30\n500 2"); // read once, never copied
//! let rules = HashMap::from([("500", 100)]);                // borrowed by every worker
//! let mut totals: HashMap<&str, u64> = HashMap::new();
//! workforce::scope(|s| {
//!     let pool = s
//!         .builder()
//!         .workers(2)
//!         .keep_workers()
//!         .build_stateful(|_ctx: &Ctx| Tally { sizes: HashMap::new(), rules: &rules })?;
//!     // The items are `&str`s of `log`; a refusal hands one back, so keep
//!     // only the error's text where the error must outlive the scope.
//!     pool.submitter().submit_iter(log.lines()).map_err(|refused| refused.to_string())?;
//!     let (report, workers) = pool.wait_with_workers()?;
//!     assert!(report.is_balanced());
//!     for worker in workers {
//!         for (status, bytes) in worker.sizes { *totals.entry(status).or_default() += bytes; }
//!     }
//!     Ok::<(), Box<dyn std::error::Error>>(())
//! })?;
//! assert_eq!((totals["200"], totals["404"], totals["500"]), (40, 1, 200));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! **The end of the scope.** When the closure returns or panics, every pool
//! built in it that is still open is closed: a pool you returned out of the
//! closure, or forgot with `std::mem::forget`, drains what it accepted and
//! ends instead of hanging the scope. Then every thread is joined, and only
//! then does a panic of the closure go on (a worker's panic, with
//! `resume_panics`, comes out of `wait` after the pool's threads finished).
//!
//! **Keeping what an item borrows.** A worker that stores its `&str` items
//! (a map keyed by a field of the line) is best a named type, as `Tally`
//! above. A closure written `|_ctx: &Ctx, line: &str| ...` takes lines of
//! *any* lifetime, so the compiler will not let it keep one ("`line`
//! escapes the closure body"). The same goes for `keep_state`: take the
//! worker apart in the pattern, `.keep_state(|_ctx: &Ctx, Tally { sizes, .. }| sizes)`,
//! and its lifetime is inferred; spelling the parameter `tally: Tally` asks
//! for any lifetime again.
//!
//! **Maps over borrowed data.** [`collect::scoped::map_ordered`](crate::collect::scoped::map_ordered)
//! and [`map_unordered`](crate::collect::scoped::map_unordered) are the maps
//! of [chapter 9](#9-collecting-results) on a scoped pool: `f`, the items and
//! the results may borrow.
//!
//! ```
//! use workforce::collect::{MapConfig, scoped};
//!
//! let text = String::from("three little words");
//! let stop = ["little"];
//! let kept: Vec<&str> = workforce::scope(|s| {
//!     scoped::map_ordered(s, text.split(' '), MapConfig::default().workers(2), |word: &str| {
//!         (!stop.contains(&word)).then_some(word)
//!     })
//!     .map(|words| words.flatten().collect())
//! })?;
//! assert_eq!(kept, ["three", "words"]);
//! # Ok::<(), workforce::collect::MapError>(())
//! ```
//!
//! **What stays `'static`.** The pool's hooks (`item_key`, `chunk_by`,
//! `on_dropped`, `on_worker_done`, `on_pool_done`) may not borrow: they live
//! in the state the `Pool` handle shares, which nothing ties to the scope.
//! A closure that captures nothing, like `chunk_by(|line: &&str| line.len())`,
//! is `'static` whatever it takes. So are worker errors, the iterator of
//! [`Pool::run`](crate::Pool::run) (hand borrowed items in through a
//! `Submitter`), and the items of a call pool (its worker and its answers may
//! borrow). [`Ctx::spawn`](crate::Ctx::spawn) is not available in a scoped
//! pool: it finds its pool by the item type's `TypeId`. A cancel from a
//! parent token reaches a scoped pool through a watcher thread of the scope,
//! a moment after the workers see it; [`Pool::cancel`](crate::Pool::cancel)
//! itself takes effect at once.
//!
//! # 16. Resizing a running pool
//!
//! `pool.set_workers(n)` changes the number of worker threads while items
//! flow. Give the builder room to grow with
//! [`max_workers`](crate::Builder::max_workers) (the default is the
//! starting `workers`: no growth); every per-worker structure is made for
//! that many seats up front, so the item path pays nothing for it (a
//! relaxed load of a line only a resize writes, per job and per item of a
//! batch).
//!
//! - **Shrinking**: the workers that leave finish the item in hand (the
//!   rest of their batch goes to the others), run `finish`, their
//!   [`keep_workers`](crate::Builder::keep_workers) retirement and
//!   [`on_worker_done`](crate::Builder::on_worker_done), and their threads
//!   end before `set_workers` returns.
//! - **Growing**: the new threads run the maker; `set_workers` returns once
//!   every new worker is made, or with the maker's error and the old count.
//! - **Keys**: jump hashing moves only the keys whose worker changes, and
//!   each producer's per-key order holds across the move: the resize lets
//!   what was routed with the old count finish first, and submitters route
//!   their open batches again. No other pool resizes with key affinity.
//! - The accounting, the capacity and the report are as for a pool that
//!   never changed; [`Report::workers`](crate::Report::workers) lists every
//!   seat that had a worker, and `join_with_workers` returns the states of
//!   the retired workers too (by seat, then in the order they left).
//!
//! ```
//! use std::collections::HashMap;
//! use workforce::prelude::*;
//!
//! /// The last balance per account this worker saw: it sees each account's
//! /// payments in order, so the running balance is right.
//! #[derive(Default)]
//! struct Ledger { balances: HashMap<u32, i64>, out_of_order: u32, last: HashMap<u32, u32> }
//!
//! impl Worker<(u32, u32, i64)> for Ledger {
//!     type Error = std::convert::Infallible;
//!     fn work(&mut self, _ctx: &Ctx, (account, seq, cents): (u32, u32, i64)) -> Result<(), Self::Error> {
//!         if self.last.get(&account).is_some_and(|&last| last >= seq) {
//!             self.out_of_order += 1;
//!         }
//!         self.last.insert(account, seq);
//!         *self.balances.entry(account).or_default() += cents;
//!         Ok(())
//!     }
//! }
//!
//! let pool = Pool::builder()
//!     .workers(2)
//!     .max_workers(6)
//!     .chunk_by(|payment: &(u32, u32, i64)| payment.0)
//!     .keep_workers()
//!     .build_stateful(|_ctx: &Ctx| Ledger::default())?;
//! let mut submitter = pool.submitter();
//! for seq in 0..300 {
//!     for account in 0..20 {
//!         submitter.submit((account, seq, 1))?;
//!     }
//!     match seq {
//!         100 => pool.set_workers(6)?, // busy: more workers
//!         200 => pool.set_workers(3)?, // quiet again
//!         _ => {}
//!     }
//! }
//! drop(submitter);
//! let (report, ledgers) = pool.wait_with_workers()?;
//! assert_eq!(report.processed(), 6_000);
//! // Accounts moved between workers at each resize, in order every time:
//! // a moved account's payments were split over workers, and each part
//! // came after the last.
//! assert!(ledgers.iter().all(|ledger| ledger.out_of_order == 0));
//! // Six workers ran (2, then 4 more); the three retired ones came back too.
//! assert_eq!(ledgers.len(), 6);
//! let total: i64 = ledgers.iter().flat_map(|ledger| ledger.balances.values()).sum();
//! assert_eq!(total, 6_000);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! A keyed resize waits until the items routed with the old count have
//! run, so it takes about as long as the pool needs to drain what it holds
//! (`cargo xtask bench` measures it, W11); an unkeyed one waits only for the
//! leaving workers' items in hand. Call `set_workers` from any thread that
//! holds the pool, not from one of its workers
//! ([`ResizeError::FromWorker`](crate::ResizeError::FromWorker)).
//! A scoped pool (chapter 15) keeps its starting number of workers:
//! `set_workers` on it returns [`ResizeError::InScope`](crate::ResizeError::InScope).
//!
//! # 17. Scaling out: a Redis stream
//!
//! One pool uses one machine. When the work outgrows it, or must survive a
//! process dying, put a broker in front: producers add jobs to a Redis
//! stream, and every worker process runs a
//! `workforce::source::Consumer` (`redis` feature, crate `pool-source`) over the
//! stream's consumer group. Each process reads its own share with
//! `XREADGROUP`, never more than its pool has room for (the backlog waits in
//! Redis, not in memory), and acknowledges an entry (`XACK`, many at once)
//! only after its item succeeded. Add processes, on any machine, to go
//! faster; stop them (Ctrl-C drains) or lose them, and nothing is lost.
//!
//! **When.** The jobs outlive a process (a deploy, a crash), come from other
//! programs, or need more than one machine. For work that starts and ends
//! inside one program, a plain pool is simpler and faster.
//!
//! **At least once, so make workers idempotent.** An entry is settled only
//! after success. A process killed mid-item leaves its entries pending, and
//! another consumer claims them (`XAUTOCLAIM`) once they were idle for
//! `min_idle`: an item can run twice (an upsert, not an insert; a key you
//! check first). A failing entry is delivered again until `max_deliveries`,
//! then moved to the dead-letter stream (`<stream>:dead`) with its error
//! text, its delivery count and its fields.
//!
//! **Order.** None across consumers. Within one consumer a keyed pool
//! (`chunk_by`) runs one key's entries in the order they were read, except
//! an entry that comes back after a failure or a claim.
//!
//! **Settings** (checked at `build()`, each error naming its setting):
//! `stream`, `group`, `consumer` (required; unique per process),
//! `create_group` (off), `max_deliveries` (5), `min_idle` (60 s: longer than
//! your slowest item, or a slow item is claimed and run twice),
//! `claim_interval` (10 s), `read_block` (100 ms), `reconnect_for` (60 s of
//! reconnecting with backoff before the run ends), `stop_policy` (drain), and
//! the pool: `pool` for any per-item pool (its builder starts with
//! `continue_on_error`: a failure is delivered again, then dead-lettered,
//! and the consumer goes on), `batch_pool` for a batch one.
//! The pool's capacity is the most entries this consumer holds pending.
//!
//! **Coming from Sidekiq or Celery.** A queue is a stream; a Sidekiq
//! process or Celery worker is a consumer (its `concurrency` is `workers`);
//! `retry: 5`/`max_retries` is `max_deliveries`; the dead set or a dead
//! letter queue is the dead-letter stream; Celery's `acks_late=True` is how
//! every entry is acknowledged here; `visibility_timeout` is `min_idle`;
//! `prefetch_multiplier` is the pool's capacity. Retries here come at once
//! (delivery again to the same consumer), not after an exponential delay:
//! put a [`middleware`](crate::middleware) retry layer in the pool for that.
//!
//! Example programs: `cargo run -p pool-source --example stream_producer`,
//! then one `stream_worker` per process
//! (`--consumer w1`, `--consumer w2`, …).
//!
//! ```no_run
//! # #[cfg(feature = "redis")]
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use workforce::prelude::*;
//! use workforce::source::{Consumer, Delivery, StreamEntry};
//!
//! let consumer = Consumer::redis("redis://127.0.0.1:6379/")
//!     .stream("emails")
//!     .group("senders")
//!     .consumer(format!("sender-{}", std::process::id()))
//!     .create_group(true)
//!     .max_deliveries(5)
//!     .pool(|builder| {
//!         builder.workers(8).capacity(256).build(
//!             |_ctx: &Ctx, job: Delivery<StreamEntry>| -> anyhow::Result<()> {
//!                 let to = job.message.get_str("to").ok_or_else(|| anyhow::anyhow!("no `to`"))?;
//!                 println!("sending {} to {to}", job.id); // idempotent: keyed by job.id
//!                 Ok(())
//!             },
//!         )
//!     })
//!     .build()?;
//! let stop = consumer.stop_handle();
//! ctrlc::set_handler(move || stop.stop())?; // Ctrl-C: stop reading, drain, flush acks
//! let report = consumer.run()?;
//! assert_eq!(report.read, report.acked + report.dead_lettered + report.left_pending);
//! println!("acked {}, dead-lettered {}, claimed {}", report.acked, report.dead_lettered, report.claimed);
//! # Ok(())
//! # }
//! # #[cfg(not(feature = "redis"))]
//! # fn main() {}
//! ```
