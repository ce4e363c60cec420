//! Every public handle crosses threads the way its docs say (tokio's
//! `async_send_sync.rs` habit): a change that makes one `!Send` or `!Sync`
//! by accident (an `Rc`, a `Cell`, a raw pointer in a field) fails to compile
//! here instead of in a user's program.
//!
//! The checks run for item, result and error types that are themselves
//! `Send + Sync` (`String`, `u64`): a handle is only as thread-safe as what it
//! carries.

use std::time::Duration;

use workforce::collect::{
    CollectError, Collector, CollectorBuildError, CollectorIter, CollectorSender, DispatchError,
    Dispatcher, DispatcherBuilder, Errors, JobError, MapConfig, MapError, MapOrdered, MapUnordered,
    Outcome, Parallel, ParallelError,
};
use workforce::metrics::{Counter, Counters, Percentiles, Shard, Stats};
use workforce::middleware::{
    ManualClock, MiddlewareError, MiddlewareSettingError, RateLimiter, Recovery, Retry,
    SystemClock, Timeout, Validator,
};
use workforce::{
    BuildError, Builder, Call, CallError, CallHandle, CallPanic, CallPool, CancelToken, Ctx,
    MetricsMode, PanicPayload, PanicSite, Pool, PoolError, Report, SendError, Sender, Snapshot,
    SpawnError, Spawner, SubmitError, Submitter, TrySendError, TrySpawnError, TrySubmitError,
    WorkerCounts, WorkerId, WorkerReport,
};

fn send<T: Send>() {}
fn sync<T: Sync>() {}
fn send_sync<T: Send + Sync>() {}

/// A stand-in for an iterator a `map_ordered` reads from.
type Items = std::vec::IntoIter<u64>;

#[test]
fn the_pool_and_its_ways_in_are_send_and_sync() {
    // A pool is shared by reference between producer threads (`&Pool` in a
    // scope) and may be moved to the thread that waits on it.
    send_sync::<Pool<String>>();
    // One submitter per producer thread: it moves to its thread. It is
    // `Sync` too, but its methods take `&mut self`, so it is never used from
    // two threads at once.
    send_sync::<Submitter<'static, String>>();
    // A sender is cloned into threads and other pools' workers.
    send_sync::<Sender<String>>();
    send_sync::<CancelToken>();
    // A worker's context lives on its thread; middleware may hand `&Ctx` to
    // helper threads of its own (`Timeout`).
    sync::<Ctx>();
    // A worker's spawner may go to helper threads of its call, as `&Ctx` may.
    send_sync::<Spawner<'static, String>>();
    send::<Builder<String>>();
}

#[test]
fn calls_and_their_handles_cross_threads() {
    // A call pool is a pool; its sender goes into threads and tasks.
    send_sync::<CallPool<String, u64>>();
    send_sync::<Sender<Call<String, u64>>>();
    send_sync::<Call<String, u64>>();
    // A handle moves to the thread or task that waits for the answer (it
    // is not `Sync`: one waiter at a time).
    send::<CallHandle<u64>>();
    // `Sync` too, so `handle.wait()?` converts into `anyhow::Error` and
    // `Box<dyn Error + Send + Sync>`.
    send_sync::<CallError>();
    send_sync::<CallPanic>();
}

#[cfg(feature = "async")]
#[test]
fn async_futures_can_be_spawned() {
    // Spawned tasks need `Send` futures.
    send::<workforce::SendFuture<'static, String>>();
    fn send_future<F: std::future::Future + Send>(_: &F) {}
    let pool = Pool::builder()
        .workers(1)
        .build_call(|_ctx: &Ctx, n: u64| Ok::<_, std::io::Error>(n))
        .expect("a valid pool");
    let sender = pool.sender();
    send_future(&sender.call_async(1));
    send_future(&pool.call_async(2));
    send_future(&pool.join_async());
}

#[cfg(feature = "tower")]
#[test]
fn the_tower_service_crosses_threads() {
    send_sync::<workforce::CallService<String, u64>>();
    send::<workforce::ServiceFuture<u64>>();
    send_sync::<workforce::ServiceError>();
}

#[test]
fn what_a_run_reports_is_send_and_sync() {
    send_sync::<Report>();
    send_sync::<Snapshot>();
    send_sync::<WorkerReport>();
    send_sync::<WorkerCounts>();
    send_sync::<WorkerId>();
    send_sync::<Stats>();
    send_sync::<Percentiles>();
    send_sync::<Counters>();
    send_sync::<Shard>();
    send_sync::<Counter>();
    send_sync::<MetricsMode>();
    send_sync::<PanicSite>();
    send_sync::<Duration>();
}

#[test]
fn every_error_is_send_and_sync_so_it_fits_anyhow() {
    send_sync::<PoolError>();
    send_sync::<BuildError>();
    send_sync::<SubmitError<String>>();
    send_sync::<TrySubmitError<String>>();
    send_sync::<SendError<String>>();
    send_sync::<TrySendError<String>>();
    send_sync::<SpawnError<String>>();
    send_sync::<TrySpawnError<String>>();
    send_sync::<CollectError>();
    send_sync::<CollectorBuildError>();
    send_sync::<DispatchError>();
    send_sync::<JobError<String>>();
    send_sync::<MapError>();
    send_sync::<ParallelError<String>>();
    send_sync::<Errors<String>>();
    send_sync::<MiddlewareError>();
    send_sync::<MiddlewareSettingError>();
    // A caught panic's payload is only `Send`; the wrapper that the errors
    // above hold it in keeps them `Sync`.
    send_sync::<PanicPayload>();
}

#[test]
fn collectors_dispatchers_and_maps_cross_threads() {
    send_sync::<Collector<String>>();
    send_sync::<CollectorSender<String>>();
    send::<CollectorIter<'static, String>>();
    send_sync::<Dispatcher<u64, String>>();
    send::<DispatcherBuilder<u64, String>>();
    send_sync::<Outcome<u64, String>>();
    send_sync::<MapConfig>();
    send::<MapOrdered<Items, u64>>();
    send::<MapUnordered<Items, u64>>();
    send::<Parallel<'static, String>>();
}

#[test]
fn middleware_layers_are_shared_by_every_worker_thread() {
    // A builder's layer stack is applied on each worker thread, so every
    // layer value is shared between them.
    send_sync::<Retry>();
    send_sync::<Timeout>();
    send_sync::<Recovery>();
    send_sync::<Validator<u64>>();
    send_sync::<RateLimiter>();
    send_sync::<SystemClock>();
    send_sync::<ManualClock>();
}
