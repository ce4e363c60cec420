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
//! | `pool.NewStateful[T](n, func() Worker[T])` | `.build_stateful(\|worker_id\| make_worker())` |
//! | `.WithBatchSize(10)` | `.batch_size(64)` (the default) |
//! | `.WithWorkerChanSize(n)` | `.capacity(n)`: one bound on everything in flight |
//! | `.WithContinueOnError()` | `.continue_on_error()` (`.error_limit(n)` keeps the first `n`) |
//! | `.WithChunkFn(func(v T) string)` | `.chunk_by(\|v: &T\| key)` (any `K: Hash`, jump consistent hash) |
//! | `.WithCompleteFn(fn)` | `.on_worker_done(fn)`, `.on_pool_done(fn)` |
//! | `p.Go(ctx)` | nothing: `build` starts the threads |
//! | `p.Submit(v)` | `submitter.submit(v)?` (or `submit_iter`, `try_submit`, `submit_timeout`) |
//! | `p.Send(v)` (from other goroutines) | `pool.sender()`, then `sender.send(v)?` |
//! | `p.Close(ctx)` / `p.Wait()` | `pool.wait()?` (or `join()` for the report whatever happened) |
//! | `ctx` cancel | `.cancel_token(token)` or `pool.cancel()` |
//! | `metrics.Get(ctx).Inc("name")` | `ctx.metrics().inc("name")` |
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
//! assert_eq!((stats.processed, stats.errors, stats.counters.get("lines")), (2, 1, 2));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Two of go-pkgz/pool's `GetStats` figures mean something other than their
//! names suggest; [`Stats`](crate::Stats) computes them as named and keeps Go's
//! formulas beside them for comparison: `avg_latency` is the summed processing
//! time per item (Go's `go_avg_latency` is the pool's wall time per item, 4×
//! smaller at 4 workers), and `utilization` is busy time over busy plus idle
//! time (Go's `go_utilization` divides the busiest worker's time by everyone's
//! summed wait).
//!
//! # bigopool
//!
//! | bigopool | workforce |
//! |---|---|
//! | `bigopool.NewDispatcher(workers, queue)` + `d.Run()` | `Dispatcher::<R, E>::builder().workers(n).queue(q).build()?` |
//! | `d.Enqueue(job)` (`Execute() (interface{}, error)`) | `dispatcher.submit(\|\| -> Result<R, E>)` or a [`Job`](crate::collect::Job) type |
//! | `results, errs := d.Wait()` | `let Outcome { results, errors, .. } = dispatcher.wait();` |
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
//!   `Dispatcher<R, E>` returns `Vec<R>` and `Errors<JobError<E>>`.
//! - **Items lost on cancel.** Go pools drop queued work silently on context
//!   cancellation (pond #138). Here queued items are dropped *and counted*:
//!   `submitted == processed + failed + dropped` always holds.
//! - **Deadlocks on close with queued work** (pond #138): `wait`, `finish`,
//!   `cancel` and drop never wait on a queue nobody drains; the tests
//!   `go_pool_issues_stay_fixed.rs` keep each of these fixed.
