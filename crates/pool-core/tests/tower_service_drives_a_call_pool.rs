//! A call pool as a `tower::Service`, driven through `tower::ServiceExt` on a
//! current-thread runtime: `ready` reserves room (and waits for it without
//! blocking the thread), `call` returns the answer's future, `oneshot` and
//! `call_all` work, a reservation that is never used is given back, a closed
//! pool makes the service fail, and every call is counted.

#![cfg(feature = "tower")]
#![allow(clippy::unwrap_used)]

#[path = "common/fragile.rs"]
mod fragile;

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use fragile::within;
use futures_util::StreamExt;
use pool_core::{CallError, Ctx, Pool, ServiceError};
use tower::{Service, ServiceExt};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
}

fn lengths() -> pool_core::CallPool<String, usize> {
    Pool::builder()
        .workers(2)
        .batch_size(1)
        .capacity(4)
        .continue_on_error()
        .build_call(
            |_ctx: &Ctx, text: String| -> Result<usize, std::io::Error> {
                if text.is_empty() {
                    return Err(std::io::Error::other("empty"));
                }
                Ok(text.len())
            },
        )
        .unwrap()
}

#[test]
fn ready_call_oneshot_and_call_all() {
    let report = within("tower service", || {
        let pool = lengths();
        runtime().block_on(async {
            let mut service = pool.service();
            let length = service.ready().await.unwrap().call("four".to_owned()).await;
            assert_eq!(length.unwrap(), 4);

            let failed = pool.service().oneshot(String::new()).await;
            assert!(matches!(
                failed,
                Err(ServiceError::Call(CallError::Failed(_)))
            ));

            let requests = futures_util::stream::iter((0..100).map(|n| "x".repeat(n + 1)));
            let answers: Vec<usize> = pool
                .service()
                .call_all(requests)
                .map(Result::unwrap)
                .collect()
                .await;
            assert_eq!(answers, (1..=100).collect::<Vec<_>>());
            drop(service);
            pool.join_async().await
        })
    });
    assert_eq!(
        (report.submitted(), report.processed(), report.failed()),
        (102, 101, 1)
    );
    assert!(report.is_balanced());
}

/// Many tasks share the pool through clones of one service; the pool's room
/// (4) is far below the number of tasks, so most wait in `ready`, and the
/// workers finish items only once a task of the same runtime lets them.
#[test]
fn tasks_wait_in_ready_without_blocking_the_thread() {
    let report = within("tasks waiting in ready", || {
        let (permits, permit_box) = tokio::sync::mpsc::channel::<()>(1);
        let permit_box = Mutex::new(permit_box);
        let pool = Pool::builder()
            .workers(2)
            .batch_size(1)
            .capacity(4)
            .build_call(move |_ctx: &Ctx, n: u64| {
                permit_box.lock().unwrap().blocking_recv().unwrap();
                Ok::<_, std::io::Error>(n + 1)
            })
            .unwrap();
        runtime().block_on(async {
            let dealer = tokio::spawn(async move {
                for _ in 0..1_000 {
                    permits.send(()).await.unwrap();
                }
            });
            let service = pool.service();
            let mut tasks = Vec::new();
            for task in 0..50u64 {
                let mut service = service.clone();
                tasks.push(tokio::spawn(async move {
                    let mut sum = 0;
                    for n in 0..20 {
                        sum += service
                            .ready()
                            .await
                            .unwrap()
                            .call(task * 100 + n)
                            .await
                            .unwrap();
                    }
                    sum
                }));
            }
            let mut total = 0;
            for task in tasks {
                total += task.await.unwrap();
            }
            dealer.await.unwrap();
            assert_eq!(
                total,
                (0..50u64)
                    .flat_map(|t| (0..20).map(move |n| t * 100 + n + 1))
                    .sum::<u64>()
            );
            drop(service);
            pool.join_async().await
        })
    });
    assert_eq!(report.processed(), 1_000);
}

#[test]
fn an_unused_reservation_is_given_back_and_a_closed_pool_fails_the_service() {
    let pool = lengths();
    let mut services: Vec<_> = (0..4).map(|_| pool.service()).collect();
    let noop = &mut Context::from_waker(Waker::noop());
    for service in &mut services {
        assert!(matches!(service.poll_ready(noop), Poll::Ready(Ok(()))));
    }
    assert_eq!(
        pool.in_flight(),
        4,
        "each ready service holds one unit of room"
    );
    let mut fifth = pool.service();
    assert!(
        fifth.poll_ready(noop).is_pending(),
        "capacity 4 is reserved"
    );
    drop(services.pop());
    assert_eq!(pool.in_flight(), 3, "a dropped service gives its room back");
    assert!(matches!(fifth.poll_ready(noop), Poll::Ready(Ok(()))));
    let answer = fifth.call("abc".to_owned());
    let handle = answer.into_handle();
    assert_eq!(handle.wait().unwrap(), 3);
    drop(services);
    drop(fifth);
    pool.close();
    let mut late = pool.service();
    assert!(matches!(
        late.poll_ready(noop),
        Poll::Ready(Err(ServiceError::Closed))
    ));
    let report = pool.wait().unwrap();
    assert_eq!((report.submitted(), report.processed()), (1, 1));
    assert!(report.is_balanced());
}

#[test]
fn a_waiting_ready_is_woken_by_a_cancel() {
    let pool = Arc::new(lengths());
    let mut holders: Vec<_> = (0..4).map(|_| pool.service()).collect();
    let noop = &mut Context::from_waker(Waker::noop());
    for holder in &mut holders {
        assert!(holder.poll_ready(noop).is_ready());
    }
    let mut waiting = pool.service();
    let mut ready = Box::pin(waiting.ready());
    assert!(ready.as_mut().poll(noop).is_pending());
    pool.cancel();
    assert!(matches!(
        ready.as_mut().poll(noop),
        Poll::Ready(Err(ServiceError::Cancelled))
    ));
    drop(ready);
    drop(holders);
    let pool = Arc::try_unwrap(pool).unwrap();
    let report = pool.join();
    assert_eq!(report.submitted(), 0);
}
