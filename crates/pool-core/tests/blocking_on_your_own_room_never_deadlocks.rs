//! The two waits that used to last forever now finish: a worker that sends
//! into its own full pool (every worker blocked sending, each waiting for
//! room only the others could free), and a thread that holds a partly
//! filled `Submitter` and then blocks on the same pool through a `Sender`
//! (waiting for room only its own submitter could give back). A test that
//! fails here hangs.
#![allow(clippy::unwrap_used)] // Tests may unwrap: a panic is a test failure.

mod common;

use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, OnceLock, mpsc};
use std::time::Duration;

use common::{Gate, Routing};
use pool_core::{Ctx, Pool, Sender};
use rstest::rstest;

/// A pool whose workers send `id`'s two children (a binary tree of `n`
/// items) into their own pool with a blocking `Sender::send`, and report
/// on `done` when the last item is processed.
fn self_feeding_pool(
    routing: Routing,
    workers: usize,
    capacity: usize,
    n: u64,
    send_timeout: bool,
) -> (Pool<u64>, mpsc::Receiver<()>) {
    let own: Arc<OnceLock<Sender<u64>>> = Arc::new(OnceLock::new());
    let (done, finished) = mpsc::channel();
    let processed = Arc::new(AtomicU64::new(0));
    let builder = Pool::builder()
        .workers(workers)
        .capacity(capacity)
        .batch_size(1);
    let pool = common::route(builder, routing, |id: &u64| *id % 5)
        .build({
            let own = Arc::clone(&own);
            move |_ctx: &Ctx, id: u64| -> anyhow::Result<()> {
                let sender = own.get().expect("set before the root is sent");
                for child in [2 * id + 1, 2 * id + 2] {
                    if child < n {
                        if send_timeout {
                            // Never `Full` here: a worker does not wait for
                            // room in its own pool.
                            sender.send_timeout(child, Duration::from_secs(3600))?;
                        } else {
                            sender.send(child)?;
                        }
                    }
                }
                if processed.fetch_add(1, SeqCst) + 1 == n {
                    done.send(())?;
                }
                Ok(())
            }
        })
        .unwrap();
    own.set(pool.sender()).unwrap();
    (pool, finished)
}

#[rstest]
fn a_worker_sending_into_its_own_full_pool_finishes(
    #[values(Routing::Stealing, Routing::Keyed)] routing: Routing,
    #[values(false, true)] send_timeout: bool,
) {
    let n = 4_095;
    // One worker, room for one item: the item in hand holds it.
    let (pool, finished) = self_feeding_pool(routing, 1, 1, n, send_timeout);
    pool.sender().send(0).unwrap();
    finished.recv().unwrap();
    let report = pool.wait().unwrap();
    assert_eq!(report.processed(), n);
    assert!(report.is_balanced());
}

#[rstest]
fn workers_that_all_send_into_their_full_pool_finish(
    #[values(Routing::Stealing, Routing::Keyed)] routing: Routing,
) {
    let n = 65_535;
    let (pool, finished) = self_feeding_pool(routing, 3, 3, n, false);
    pool.sender().send(0).unwrap();
    finished.recv().unwrap();
    let report = pool.wait().unwrap();
    assert_eq!(report.processed(), n);
    assert!(report.is_balanced());
}

#[rstest]
fn a_partly_filled_submitter_then_a_send_on_the_same_thread_finishes(
    #[values(Routing::Stealing, Routing::Keyed)] routing: Routing,
) {
    // The submitter's batch reserves all the room there is.
    let builder = Pool::builder().workers(2).capacity(8).batch_size(8);
    let pool = common::route(builder, routing, |n: &u32| *n % 3)
        .build(|_ctx: &Ctx, _n: u32| Ok::<(), std::io::Error>(()))
        .unwrap();
    let mut submitter = pool.submitter();
    for n in 0..3 {
        submitter.submit(n).unwrap();
    }
    assert_eq!(submitter.buffered(), 3);
    let sender = pool.sender();
    for n in 100..110 {
        // Goes over the capacity by at most the room this thread holds.
        sender.send(n).unwrap();
        assert!(pool.in_flight() <= 8 + 8);
    }
    submitter.flush();
    for n in 3..20 {
        submitter.submit(n).unwrap();
    }
    drop(submitter);
    let report = pool.wait().unwrap();
    assert_eq!(report.processed(), 30);
    assert!(report.is_balanced());
}

#[rstest]
fn a_second_submitter_on_a_thread_whose_first_holds_the_room_finishes(
    #[values(Routing::Stealing, Routing::Keyed)] routing: Routing,
) {
    let builder = Pool::builder().workers(1).capacity(4).batch_size(4);
    let pool = common::route(builder, routing, |n: &u32| *n % 2)
        .build(|_ctx: &Ctx, _n: u32| Ok::<(), std::io::Error>(()))
        .unwrap();
    let mut first = pool.submitter();
    first.submit(0).unwrap();
    let mut second = pool.submitter();
    for n in 1..10 {
        second.submit(n).unwrap();
    }
    drop(second);
    drop(first);
    let report = pool.wait().unwrap();
    assert_eq!(report.processed(), 10);
}

#[test]
fn a_thread_without_held_room_still_waits_for_the_workers() {
    // The room is held by an item a worker is stuck on: a send from a
    // thread that holds nothing waits (it is not given leeway), until the
    // worker goes on.
    let gate = Gate::default();
    let worker_gate = gate.clone();
    let pool = Pool::builder()
        .workers(1)
        .capacity(1)
        .batch_size(1)
        .build(move |_ctx: &Ctx, n: u32| {
            if n == 0 {
                worker_gate.wait();
            }
            Ok::<(), std::io::Error>(())
        })
        .unwrap();
    pool.sender().send(0).unwrap();
    let sender = pool.sender();
    assert!(matches!(
        sender.try_send(1),
        Err(pool_core::TrySendError::Full(1))
    ));
    std::thread::scope(|scope| {
        let blocked = scope.spawn(|| sender.send(1));
        gate.open();
        blocked.join().unwrap().unwrap();
    });
    // Its room came from item 0, finished: never over the capacity.
    assert!(pool.in_flight() <= 1);
    assert_eq!(pool.wait().unwrap().processed(), 2);
}

/// Polls `future` to its end on this thread, parking between polls.
#[cfg(feature = "async")]
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl std::task::Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = std::task::Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut context = std::task::Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        match future.as_mut().poll(&mut context) {
            std::task::Poll::Ready(output) => return output,
            std::task::Poll::Pending => std::thread::park(),
        }
    }
}

#[cfg(feature = "async")]
#[test]
fn a_worker_blocking_on_an_async_send_into_its_own_full_pool_finishes() {
    let n = 1_023;
    let own: Arc<OnceLock<Sender<u64>>> = Arc::new(OnceLock::new());
    let (done, finished) = mpsc::channel();
    let processed = Arc::new(AtomicU64::new(0));
    let pool = Pool::builder()
        .workers(1)
        .capacity(1)
        .batch_size(1)
        .build({
            let own = Arc::clone(&own);
            move |_ctx: &Ctx, id: u64| -> anyhow::Result<()> {
                let sender = own.get().expect("set before the root is sent");
                for child in [2 * id + 1, 2 * id + 2] {
                    if child < n {
                        block_on(sender.send_async(child))?;
                    }
                }
                if processed.fetch_add(1, SeqCst) + 1 == n {
                    done.send(())?;
                }
                Ok(())
            }
        })
        .unwrap();
    own.set(pool.sender()).unwrap();
    pool.sender().send(0).unwrap();
    finished.recv().unwrap();
    assert_eq!(pool.wait().unwrap().processed(), n);
}
