//! # Coming from Go: go-pkgz/pool and bigopool
//!
//! workforce started from two Go libraries. This page puts their calls beside
//! workforce's and lists the Go pitfalls that Rust's types rule out here.
//!
//! # go-pkgz/pool
//!
//! | go-pkgz/pool | workforce |
//! |---|---|
//! | `pool.New[T](n, pool.WorkerFunc(fn))` | `Pool::builder().workers(n).build(fn)` |
//! | `pool.NewStateful[T](n, func() Worker[T])` | `.build_stateful(\|ctx\| make_worker())` (`try_build_stateful` when making one can fail) |
//! | `.WithBatchSize(10)` | `.batch_size(64)` (the default) |
//! | `.WithWorkerChanSize(n)` | `.capacity(n)`: one bound on everything in flight |
//! | `.WithContinueOnError()` | `.continue_on_error()` (`.error_limit(n)` keeps the first `n`) |
//! | `.WithChunkFn(func(v T) string)` | `.chunk_by(\|v: &T\| key)` (any `K: Hash`, jump consistent hash) |
//! | `.WithCompleteFn(fn)` | `.on_worker_done(fn)`, `.on_pool_done(fn)`; `.keep_state(\|ctx, worker\| ..)` sees the worker itself |
//! | workers' state into a collector at the end | `.keep_workers()`, then `pool.wait_with_workers()?` |
//! | `p.Go(ctx)` | nothing: `build` starts the threads |
//! | `p.Submit(v)` | `submitter.submit(v)?` (or `submit_iter`, `try_submit`, `submit_timeout`) |
//! | `p.Send(v)` (from other goroutines) | `pool.sender()`, then `sender.send(v)?` |
//! | `p.Submit(v)` from inside a worker (tree-shaped work) | `ctx.spawn(v)?`: never waits for room, and `wait` returns when the whole tree is done |
//! | `p.Close(ctx)` / `p.Wait()` | `pool.wait()?` (or `join()` for the report whatever happened; `join_timeout(d)` hands the pool back if it is not done in time) |
//! | `ctx` cancel | `.cancel_token(token)` or `pool.cancel()` |
//! | `metrics.Get(ctx).Inc("name")` | `ctx.metrics().inc("name")` |
//! | `p.Metrics().Add("name", n)` (outside a worker) | `pool.metrics_handle().add("name", n)` |
//! | `p.Metrics().GetStats()` | `pool.metrics().stats` (live) or `report.stats()` (final) |
//! | `p.Use(middleware.Retry(3, time.Second))` | `.layer(Retry::new(3, Duration::from_secs(1))?)` |
//! | `middleware.Timeout`, `Recovery`, `Validator`, `RateLimiter` | the same names in [`middleware`](crate::middleware) |
//! | `pool.NewCollector[T](ctx, size)` | [`Collector::new(size)`](crate::collect::Collector::new) |
//!
//! The same program in both. In Go:
//!
//! ```text
//! p := pool.New[string](4, pool.WorkerFunc[string](func(ctx context.Context, line string) error {
//!     if line == "" { return errors.New("empty line") }
//!     metrics.Get(ctx).Inc("lines")
//!     return nil
//! })).WithContinueOnError()
//! if err := p.Go(ctx); err != nil { return err }
//! for _, line := range lines { p.Submit(line) }
//! err := p.Close(ctx)
//! stats := p.Metrics().GetStats()
//! ```
//!
//! In Rust:
//!
//! ```
//! use workforce::prelude::*;
//!
//! let lines = vec!["a".to_owned(), String::new(), "c".to_owned()];
//! let pool = Pool::builder()
//!     .workers(4)
//!     .continue_on_error()
//!     .build(|ctx: &Ctx, line: String| {
//!         anyhow::ensure!(!line.is_empty(), "empty line");
//!         ctx.metrics().inc("lines");
//!         Ok(())
//!     })?;
//! pool.submitter().submit_iter(lines)?;
//! let report = pool.join();
//! let stats = report.stats();
//! assert_eq!((stats.processed, stats.failed, stats.counters.get("lines")), (2, 1, 2));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Go's `GetStats` figures
//!
//! [`Stats`](crate::Stats) has go-pkgz/pool's counts and times under these
//! names: `Processed` is `processed`, `Errors` (failed items) is `failed`,
//! `Dropped` is `dropped`, `ProcessingTime` (the busiest worker's) is
//! `processing_time`, `WaitTime`, `InitTime`, `WrapTime` and `TotalTime` are
//! `wait_time`, `init_time`, `wrap_up_time` and `total_time`. `RatePerSec`,
//! `ErrorRate` and `DroppedRate` are `rate_per_sec()`, `failed_rate()` and
//! `dropped_rate()`, with the same formulas.
//!
//! Two figures mean something other than their names suggest, and workforce
//! computes them differently:
//!
//! - Go's `AvgLatency` is `ProcessingTime / Processed`: the busiest worker's
//!   time over every worker's successful items. That is the pool's wall time
//!   per item, not how long an item takes (4 times too small with 4 equally
//!   busy workers), and failed items are left out of the count although their
//!   time is in it. [`Stats::avg_latency`](crate::Stats::avg_latency) is
//!   `processing_time_sum / (processed + failed)`.
//! - Go's `Utilization` is `ProcessingTime / (ProcessingTime + WaitTime)`: the
//!   busiest worker's time against every worker's summed wait, which
//!   under-reports any pool of more than one worker.
//!   [`Stats::utilization`](crate::Stats::utilization) is
//!   `processing_time_sum / (processing_time_sum + wait_time)`.
//!
//! To compare with numbers from a Go pool, compute Go's formulas from the
//! public fields. Four workers, each 1 s busy with 100 items and 1 s idle:
//!
//! ```
//! use std::time::Duration;
//! use workforce::Stats;
//! use workforce::metrics::Metrics;
//!
//! /// Go's `AvgLatency`: `processing_time / processed`, zero when nothing was
//! /// processed.
//! fn go_avg_latency(stats: &Stats) -> Duration {
//!     let nanos = stats.processing_time.as_nanos().checked_div(u128::from(stats.processed));
//!     Duration::from_nanos(nanos.map_or(0, |nanos| u64::try_from(nanos).unwrap_or(u64::MAX)))
//! }
//!
//! /// Go's `Utilization`: `processing_time / (processing_time + wait_time)`, zero
//! /// when no time was recorded.
//! fn go_utilization(stats: &Stats) -> f64 {
//!     let busy = stats.processing_time.as_secs_f64();
//!     let whole = busy + stats.wait_time.as_secs_f64();
//!     if whole > 0.0 { busy / whole } else { 0.0 }
//! }
//!
//! let metrics = Metrics::new(4);
//! for worker in 0..4 {
//!     let mut writer = metrics.writer(worker).expect("one writer per shard");
//!     writer.add_processed(100);
//!     writer.add_busy(Duration::from_secs(1));
//!     writer.add_idle(Duration::from_secs(1));
//! }
//! let stats = metrics.stats_with_total(Duration::from_secs(2));
//!
//! // One item takes 10 ms of a worker's time; Go reports 1 s / 400 items.
//! assert_eq!(stats.avg_latency(), Duration::from_millis(10));
//! assert_eq!(go_avg_latency(&stats), Duration::from_micros(2_500));
//! // Every worker was busy half the time; Go reports 1 s / (1 s + 4 s).
//! assert_eq!(stats.utilization(), 0.5);
//! assert_eq!(go_utilization(&stats), 0.2);
//! ```
//!
//! # bigopool
//!
//! | bigopool | workforce |
//! |---|---|
//! | `bigopool.NewDispatcher(workers, queue)` + `d.Run()` | `Dispatcher::<R, E>::builder().workers(n).queue(q).build()?` |
//! | `d.Enqueue(job)` (`Execute() (interface{}, error)`) | `dispatcher.submit(\|\| -> Result<R, E>)` or a [`Job`](crate::collect::Job) type |
//! | `results, errs := d.Wait()` | `let Outcome { results, errors, .. } = dispatcher.wait();` (each with its job's index) |
//! | `bigopool.Parallel(f1, f2, f3)` | [`parallel`](crate::collect::parallel)`([f1, f2, f3])` or the [`Parallel`](crate::collect::Parallel) builder |
//! | `bigopool.CancelableParallel(ctx, fns...)` | [`cancelable_parallel`](crate::collect::cancelable_parallel)`(&token, fns)` |
//! | `Errors.All()` | [`Errors::all`](crate::collect::Errors::all), with each error's index |
//!
//! ```
//! use workforce::collect::{Dispatcher, Outcome};
//!
//! let dispatcher = Dispatcher::<u64, String>::builder().workers(4).queue(16).build()?;
//! for n in 0..20u64 {
//!     dispatcher.submit(move || if n == 13 { Err(format!("job {n} failed")) } else { Ok(n * 2) });
//! }
//! let Outcome { results, errors, .. } = dispatcher.wait();
//! assert_eq!((results.len(), errors.len()), (19, 1));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Go pitfalls the types rule out
//!
//! - **Submit after close.** In Go, sending on a closed channel panics. Here
//!   `submit` on a closed pool returns [`SubmitError::Closed(item)`](crate::SubmitError):
//!   the item comes back.
//! - **A producer blocked forever.** A Go `Submit` blocked on a full channel
//!   does not see the context end (pond #108, #115; ants #237). Here a blocked
//!   `submit` returns `Cancelled(item)` as soon as the pool is cancelled, and
//!   `submit_timeout` gives up after a time.
//! - **A pool used before it is started.** go-pkgz/pool needs `Go(ctx)` before
//!   `Submit`. `build` returns a running pool, or a typed
//!   [`BuildError`](crate::BuildError) naming the bad setting.
//! - **Panics that kill the process or vanish.** An unrecovered panic in a
//!   goroutine ends the program (ants #35, pond #129). Here every panic in user
//!   code, even in an item's `Drop`, is caught, reported with its worker and
//!   site, and the worker goes on.
//! - **Shared worker state without a lock.** A Go worker closure may race on
//!   captured state. Here a shared worker must be `Sync` (checked at compile
//!   time), and a stateful worker owns its state on its own thread.
//! - **`interface{}` results.** bigopool's results need type assertions. A
//!   `Dispatcher<R, E>` returns typed values and `JobError<E>`s, each with
//!   the index of the job that produced it ([`Indexed`](crate::collect::Indexed)).
//! - **Items lost on cancel.** Go pools drop queued work silently on context
//!   cancellation (pond #138). Here queued items are dropped *and counted*:
//!   `submitted == processed + failed + dropped` always holds, and
//!   [`Builder::on_dropped`](crate::Builder::on_dropped) hands each dropped
//!   item back.
//! - **Deadlocks on close with queued work** (pond #138): `wait`, `finish`,
//!   `cancel` and drop never wait on a queue nobody drains; the tests
//!   `go_pool_issues_stay_fixed.rs` keep each of these fixed.
