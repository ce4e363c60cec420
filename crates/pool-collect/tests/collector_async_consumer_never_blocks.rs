//! A collector's async consumer (`recv_async`, `stream`) on a current-thread
//! runtime: it waits without blocking the thread (the values it waits for
//! come from tasks on the same thread, so a blocking wait would hang), it is
//! woken by a value, a close, a cancel and the last sender's drop, and a
//! consumer dropped while woken passes the wake-up on.

#![cfg(feature = "async")]
#![allow(clippy::unwrap_used)]

use std::future::Future;
use std::sync::mpsc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use futures_util::StreamExt;
use pool_collect::{CollectError, Collector};

/// Runs `body` on a current-thread runtime on its own thread; fails the test
/// if it has not finished within a minute (a hang, not a timing).
fn on_one_thread<R: Send + 'static>(body: impl Future<Output = R> + Send + 'static) -> R {
    let (done, finished) = mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let _ = done.send(runtime.block_on(body));
    });
    finished
        .recv_timeout(Duration::from_secs(60))
        .expect("HANG: the runtime thread was blocked")
}

fn poll_once<F: Future + Unpin>(future: &mut F) -> Poll<F::Output> {
    std::pin::Pin::new(future).poll(&mut Context::from_waker(Waker::noop()))
}

#[test]
fn values_sent_by_a_task_on_the_same_thread_reach_an_async_consumer() {
    let total = on_one_thread(async {
        let collector = std::sync::Arc::new(Collector::new(4).unwrap());
        let sender = collector.sender();
        // Spawned first, runs only when the consumer below waits: a
        // blocking wait would never let it run.
        let producer = tokio::spawn(async move {
            for n in 0..1_000u64 {
                loop {
                    match sender.try_send(n) {
                        Ok(()) => break,
                        Err(pool_collect::TrySendError::Full(_)) => tokio::task::yield_now().await,
                        Err(error) => panic!("refused: {error}"),
                    }
                }
            }
        });
        let mut total = 0;
        while let Some(value) = collector.recv_async().await {
            total += value.unwrap();
        }
        producer.await.unwrap();
        total
    });
    assert_eq!(total, 999 * 1000 / 2);
}

#[test]
fn the_stream_yields_every_value_of_many_threads_once() {
    let collector = Collector::new(8).unwrap();
    let mut producers = Vec::new();
    for producer in 0..4u64 {
        let sender = collector.sender();
        producers.push(std::thread::spawn(move || {
            for n in 0..500 {
                sender.send(producer * 1_000 + n).unwrap();
            }
        }));
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut values: Vec<u64> =
        runtime.block_on(collector.stream().map(Result::unwrap).collect::<Vec<_>>());
    for producer in producers {
        producer.join().unwrap();
    }
    values.sort_unstable();
    let expected: Vec<u64> = (0..4)
        .flat_map(|producer| (0..500).map(move |n| producer * 1_000 + n))
        .collect();
    assert_eq!(values, expected);
}

#[test]
fn close_cancel_and_the_last_sender_wake_a_waiting_consumer() {
    // Close.
    let collector = Collector::<u8>::new(2).unwrap();
    let _sender = collector.sender();
    let mut next = collector.recv_async();
    assert!(poll_once(&mut next).is_pending());
    collector.close();
    assert_eq!(poll_once(&mut next), Poll::Ready(None));
    drop(next);

    // Cancel.
    let collector = Collector::<u8>::new(2).unwrap();
    let _sender = collector.sender();
    let mut stream = collector.stream();
    assert!(
        stream
            .poll_next_unpin(&mut Context::from_waker(Waker::noop()))
            .is_pending()
    );
    collector.cancel();
    assert_eq!(
        stream.poll_next_unpin(&mut Context::from_waker(Waker::noop())),
        Poll::Ready(Some(Err(CollectError::Cancelled { dropped: 0 })))
    );
    assert_eq!(
        stream.poll_next_unpin(&mut Context::from_waker(Waker::noop())),
        Poll::Ready(None)
    );
    drop(stream);

    // The last sender's drop, from a task on the same thread.
    let ended = on_one_thread(async {
        let collector = std::sync::Arc::new(Collector::<u8>::new(2).unwrap());
        let sender = collector.sender();
        let dropper = tokio::spawn(async move { drop(sender) });
        let end = collector.recv_async().await;
        dropper.await.unwrap();
        end
    });
    assert_eq!(ended, None);
}

#[test]
fn a_consumer_dropped_after_its_wake_up_passes_it_on() {
    let collector = Collector::new(4).unwrap();
    let sender = collector.sender();
    let mut first = collector.recv_async();
    let mut second = collector.recv_async();
    assert!(poll_once(&mut first).is_pending());
    assert!(poll_once(&mut second).is_pending());
    sender.send(7).unwrap(); // wakes the first registered consumer
    drop(first);
    // The second sees the value only if the wake-up came on to it: a
    // registered consumer that was not woken stays pending.
    assert_eq!(poll_once(&mut second), Poll::Ready(Some(Ok(7))));
}
