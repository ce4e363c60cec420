//! The `async` feature on a current-thread runtime, where one blocked call
//! blocks everything: each test makes the pool's progress depend on a task
//! of that same runtime, so a caller that blocked the thread instead of
//! returning `Pending` would hang the test (caught by `within`), not slow it.
//!
//! Also: `send_async` is cancel-safe at every point (dropped before its
//! first poll, while waiting for room, after it was woken but before it
//! looked, after it completed: the item is counted exactly when it was
//! sent), every outcome of an awaited call, and `join_async`.

#![cfg(feature = "async")]
#![allow(clippy::unwrap_used)]

mod common;
#[path = "common/fragile.rs"]
mod fragile;

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

use common::{Gate, Tracked};
use fragile::within;
use pool_core::{CallError, Ctx, Pool, SendError};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
}

fn poll_once<F: Future + Unpin>(future: &mut F) -> Poll<F::Output> {
    std::pin::Pin::new(future).poll(&mut Context::from_waker(Waker::noop()))
}

/// A waker that records that it was woken and unparks the test thread.
struct Flag {
    woken: AtomicBool,
    thread: std::thread::Thread,
}

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.woken.store(true, SeqCst);
        self.thread.unpark();
    }
}

/// Permits a worker waits for, one per item, handed out by the test (or by
/// a task on the runtime): a worker cannot finish an item without one.
#[derive(Clone)]
struct Permits {
    tx: Arc<Mutex<Option<mpsc::Sender<()>>>>,
    rx: Arc<Mutex<mpsc::Receiver<()>>>,
}

impl Permits {
    fn new() -> Self {
        let (tx, rx) = mpsc::channel();
        Permits {
            tx: Arc::new(Mutex::new(Some(tx))),
            rx: Arc::new(Mutex::new(rx)),
        }
    }
    fn take(&self) {
        // After `open_all` the channel is closed and `recv` returns at once.
        let _ = self.rx.lock().unwrap().recv();
    }
    fn give(&self) {
        if let Some(tx) = &*self.tx.lock().unwrap() {
            tx.send(()).unwrap();
        }
    }
    fn open_all(&self) {
        self.tx.lock().unwrap().take();
    }
}

/// 10,000 awaited calls from 64 tasks through a pool of capacity 8. Each
/// item needs a ticket that a task of the same runtime hands out one at a
/// time: the pool makes progress only while the runtime thread is free to
/// run that task, so a caller that blocked it while waiting for room (or
/// for its answer) would hang the test.
#[test]
fn ten_thousand_awaited_calls_through_a_pool_of_capacity_eight() {
    let report = within("10,000 awaited calls", || {
        let (tickets, ticket_box) = tokio::sync::mpsc::channel::<()>(1);
        let ticket_box = Mutex::new(ticket_box);
        let pool = Pool::builder()
            .workers(2)
            .batch_size(1)
            .capacity(8)
            .build_call(move |_ctx: &Ctx, n: u64| {
                ticket_box
                    .lock()
                    .unwrap()
                    .blocking_recv()
                    .expect("a ticket per item");
                Ok::<_, std::io::Error>(n * 3)
            })
            .unwrap();
        let runtime = runtime();
        runtime.block_on(async {
            let dealer = tokio::spawn(async move {
                for _ in 0..10_000 {
                    tickets.send(()).await.unwrap();
                }
            });
            let mut callers = Vec::new();
            for task in 0..64u64 {
                let sender = pool.sender();
                callers.push(tokio::spawn(async move {
                    let mut sum = 0;
                    for n in (task..10_000).step_by(64) {
                        let handle = sender.call_async(n).await.unwrap();
                        sum += handle.await.unwrap();
                        assert_eq!(sum % 3, 0);
                    }
                    sum
                }));
            }
            let mut total = 0;
            for caller in callers {
                total += caller.await.unwrap();
            }
            dealer.await.unwrap();
            assert_eq!(total, 3 * (0..10_000u64).sum::<u64>());
            pool.join_async().await
        })
    });
    assert_eq!(report.submitted(), 10_000);
    assert_eq!(report.processed(), 10_000);
    assert!(report.is_balanced());
}

/// The room a waiting `send_async` needs is freed only after a task on the
/// same runtime hands out a permit, and that task runs only if the send
/// returned `Pending`.
#[test]
fn send_async_waits_for_room_without_blocking_the_thread() {
    let report = within("send_async at capacity", || {
        let permits = Permits::new();
        let worker_permits = permits.clone();
        let pool = Pool::builder()
            .workers(1)
            .batch_size(1)
            .capacity(1)
            .build(move |_ctx: &Ctx, _n: u64| {
                worker_permits.take();
                Ok::<(), std::io::Error>(())
            })
            .unwrap();
        let sender = pool.sender();
        runtime().block_on(async {
            sender.send_async(0).await.unwrap(); // the only room
            let giver = tokio::spawn(async move {
                for _ in 0..100 {
                    permits.give();
                    tokio::task::yield_now().await;
                }
            });
            for n in 1..100 {
                sender.send_async(n).await.unwrap();
            }
            giver.await.unwrap();
            pool.join_async().await
        })
    });
    assert_eq!((report.submitted(), report.processed()), (100, 100));
}

/// A pool whose one worker holds item 0 until the test gives a permit:
/// capacity 1 is then taken, and every `send_async` must wait.
fn full_pool(drops: &Arc<AtomicU64>) -> (Pool<Tracked>, Permits) {
    let permits = Permits::new();
    let worker_permits = permits.clone();
    let pool = Pool::builder()
        .workers(1)
        .batch_size(1)
        .capacity(1)
        .build(move |_ctx: &Ctx, _item: Tracked| {
            worker_permits.take();
            Ok::<(), std::io::Error>(())
        })
        .unwrap();
    pool.sender().send(Tracked::new(0, drops)).unwrap();
    (pool, permits)
}

#[test]
fn send_async_dropped_before_its_first_poll_sends_nothing() {
    let drops = Arc::new(AtomicU64::new(0));
    let (pool, permits) = full_pool(&drops);
    let sender = pool.sender();
    drop(sender.send_async(Tracked::new(1, &drops)));
    assert_eq!(drops.load(SeqCst), 1, "the item is dropped with the future");
    assert_eq!(pool.metrics().submitted, 1, "and was never counted");
    permits.open_all();
    let report = pool.wait().unwrap();
    assert_eq!((report.submitted(), report.processed()), (1, 1));
    assert_eq!(drops.load(SeqCst), 2);
}

#[test]
fn send_async_dropped_while_waiting_for_room_sends_nothing() {
    let drops = Arc::new(AtomicU64::new(0));
    let (pool, permits) = full_pool(&drops);
    let sender = pool.sender();
    let mut waiting = sender.send_async(Tracked::new(1, &drops));
    assert!(poll_once(&mut waiting).is_pending(), "the pool is full");
    assert_eq!(pool.metrics().submitted, 1);
    assert_eq!(pool.in_flight(), 1, "a waiting send holds no room");
    drop(waiting);
    assert_eq!(drops.load(SeqCst), 1, "the item is dropped with the future");
    assert_eq!(pool.metrics().submitted, 1, "and was never counted");
    permits.open_all();
    let report = pool.wait().unwrap();
    assert_eq!((report.submitted(), report.processed()), (1, 1));
    assert!(report.is_balanced());
}

/// Two sends wait; room for one comes back and wakes the first, which is
/// dropped before it looks: its item was not sent, and the wake-up goes on
/// to the second, which sends (a second that stayed asleep would hang).
#[test]
fn send_async_woken_then_dropped_passes_the_room_on() {
    let drops = Arc::new(AtomicU64::new(0));
    let report = within("a dropped waiter's wake-up goes on", {
        let drops = Arc::clone(&drops);
        move || {
            let (pool, permits) = full_pool(&drops);
            let sender = pool.sender();
            let flag = Arc::new(Flag {
                woken: AtomicBool::new(false),
                thread: std::thread::current(),
            });
            let mut first = sender.send_async(Tracked::new(1, &drops));
            let mut second = sender.send_async(Tracked::new(2, &drops));
            let flag_waker = Waker::from(Arc::clone(&flag));
            let polled = std::pin::Pin::new(&mut first).poll(&mut Context::from_waker(&flag_waker));
            assert!(polled.is_pending());
            assert!(poll_once(&mut second).is_pending());
            permits.give(); // item 0 finishes: one unit of room comes back
            while !flag.woken.load(SeqCst) {
                std::thread::park();
            }
            drop(first);
            // Item 0 (processed) and the woken send's item, dropped unsent.
            assert_eq!(drops.load(SeqCst), 2);
            assert_eq!(
                pool.metrics().submitted,
                1,
                "the woken send's item was not sent"
            );
            runtime().block_on(second).unwrap();
            assert_eq!(pool.metrics().submitted, 2, "item 0 and the second send");
            permits.open_all();
            pool.wait().unwrap()
        }
    });
    assert_eq!((report.submitted(), report.processed()), (2, 2));
    assert_eq!(drops.load(SeqCst), 3);
}

#[test]
fn send_async_that_completed_has_sent_its_item() {
    let drops = Arc::new(AtomicU64::new(0));
    let pool = Pool::builder()
        .workers(1)
        .build(|_ctx: &Ctx, _item: Tracked| Ok::<(), std::io::Error>(()))
        .unwrap();
    let sender = pool.sender();
    let mut sending = sender.send_async(Tracked::new(1, &drops));
    assert!(matches!(poll_once(&mut sending), Poll::Ready(Ok(()))));
    drop(sending);
    let report = pool.wait().unwrap();
    assert_eq!((report.submitted(), report.processed()), (1, 1));
    assert_eq!(drops.load(SeqCst), 1);
}

/// `tokio::select!` drops the losing send: the item is not counted.
#[test]
fn a_send_that_loses_a_select_sends_nothing() {
    let drops = Arc::new(AtomicU64::new(0));
    let (pool, permits) = full_pool(&drops);
    let sender = pool.sender();
    let gave_up = runtime().block_on(async {
        let (give_up, told) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move { give_up.send(()) });
        tokio::select! {
            sent = sender.send_async(Tracked::new(1, &drops)) => panic!("no room, yet {sent:?}"),
            _ = told => true,
        }
    });
    assert!(gave_up);
    assert_eq!(drops.load(SeqCst), 1);
    assert_eq!(pool.metrics().submitted, 1);
    permits.open_all();
    let report = pool.wait().unwrap();
    assert_eq!((report.submitted(), report.processed()), (1, 1));
}

#[test]
fn a_close_or_cancel_hands_a_waiting_item_back() {
    let drops = Arc::new(AtomicU64::new(0));
    for cancel in [false, true] {
        let (pool, permits) = full_pool(&drops);
        let sender = pool.sender();
        let mut waiting = sender.send_async(Tracked::new(1, &drops));
        assert!(poll_once(&mut waiting).is_pending());
        if cancel {
            pool.cancel();
        } else {
            pool.close();
        }
        match (cancel, poll_once(&mut waiting)) {
            (false, Poll::Ready(Err(SendError::Closed(item))))
            | (true, Poll::Ready(Err(SendError::Cancelled(item)))) => assert_eq!(item.value, 1),
            (_, other) => panic!("expected the item back, got {other:?}"),
        }
        permits.open_all();
        let report = pool.join();
        assert_eq!(report.submitted(), 1);
        assert!(report.is_balanced());
    }
}

/// Every outcome of an awaited call: a value, the worker's error, a panic
/// with its payload, a call dropped by a cancel and one dropped by the
/// stop-on-error policy.
#[test]
fn awaited_calls_resolve_every_outcome() {
    #[derive(Debug, PartialEq)]
    struct Corrupt(u64);
    let previous_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !info.payload().is::<Corrupt>() {
            previous_hook(info);
        }
    }));
    within("awaited outcomes", || {
        runtime().block_on(async {
            let pool = Pool::builder()
                .workers(2)
                .continue_on_error()
                .build_call(|_ctx: &Ctx, n: u64| match n {
                    0 => Err(std::io::Error::other("zero")),
                    13 => std::panic::panic_any(Corrupt(13)),
                    n => Ok(n),
                })
                .unwrap();
            assert_eq!(pool.call_async(5).await.unwrap().await.unwrap(), 5);
            match pool.call_async(0).await.unwrap().await {
                Err(CallError::Failed(error)) => {
                    assert!(error.downcast_ref::<std::io::Error>().is_some());
                }
                other => panic!("expected the error, got {other:?}"),
            }
            match pool.call_async(13).await.unwrap().await {
                Err(CallError::Panicked(panic)) => {
                    let payload = panic.into_payload();
                    assert_eq!(payload.downcast_ref::<Corrupt>(), Some(&Corrupt(13)));
                }
                other => panic!("expected the panic, got {other:?}"),
            }
            let report = pool.join_async().await;
            assert_eq!((report.processed(), report.failed()), (1, 2));

            // Dropped: by a cancel, and by the first error under stop-on-error.
            for stop_on_error in [false, true] {
                let gate = Gate::default();
                let worker_gate = gate.clone();
                let (started, mut has_started) = tokio::sync::mpsc::unbounded_channel();
                let pool = Pool::builder()
                    .workers(1)
                    .build_call(move |_ctx: &Ctx, n: u64| {
                        if n < 2 {
                            let _ = started.send(());
                        }
                        worker_gate.wait();
                        if n == 0 {
                            Err(std::io::Error::other("first"))
                        } else {
                            Ok(n)
                        }
                    })
                    .unwrap();
                let first = pool
                    .call_async(if stop_on_error { 0 } else { 1 })
                    .await
                    .unwrap();
                has_started.recv().await.unwrap(); // the first is in the worker's hands
                let mut behind = Vec::new();
                for n in 2..6 {
                    behind.push(pool.call_async(n).await.unwrap());
                }
                if !stop_on_error {
                    pool.cancel();
                }
                gate.open();
                let first = first.await;
                assert_eq!(first.is_err(), stop_on_error);
                for handle in behind {
                    assert!(matches!(handle.await, Err(CallError::Dropped)));
                }
                let report = pool.join_async().await;
                assert_eq!(report.dropped(), 4);
                assert!(report.is_balanced());
            }
        });
    });
}

/// A pool's wrap-up (each worker's `finish`) waits for a task on the same
/// runtime: `join_async` must let it run. And a `join_async` dropped early
/// leaves the joining to another thread, so dropping it does not block.
#[test]
fn join_async_waits_for_the_workers_without_blocking_the_thread() {
    within("join_async", || {
        struct Finishing(Arc<Gate>);
        impl pool_core::Worker<u64> for Finishing {
            type Error = std::io::Error;
            fn work(&mut self, _ctx: &Ctx, _n: u64) -> std::io::Result<()> {
                Ok(())
            }
            fn finish(&mut self, _ctx: &Ctx) -> std::io::Result<()> {
                self.0.wait();
                Ok(())
            }
        }
        let runtime = runtime();
        for drop_early in [false, true] {
            let gate = Arc::new(Gate::default());
            let maker_gate = Arc::clone(&gate);
            let pool = Pool::builder()
                .workers(2)
                .build_stateful(move |_id| Finishing(Arc::clone(&maker_gate)))
                .unwrap();
            pool.sender().send(1).unwrap();
            let report = runtime.block_on(async {
                let opener = {
                    let gate = Arc::clone(&gate);
                    tokio::spawn(async move {
                        tokio::task::yield_now().await;
                        gate.open();
                    })
                };
                if drop_early {
                    let mut joining = Box::pin(pool.join_async());
                    assert!(poll_once(&mut joining).is_pending(), "finish waits");
                    drop(joining); // must not join here: the opener has not run
                    opener.await.unwrap();
                    None
                } else {
                    let report = pool.wait_async().await.unwrap();
                    opener.await.unwrap();
                    Some(report)
                }
            });
            if let Some(report) = report {
                assert_eq!(report.processed(), 1);
            }
        }
    });
}
