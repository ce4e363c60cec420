//! Waiting on a running pool without polling: `join_timeout` / `join_until`
//! hand the pool back when it is not done and give the report when it is;
//! `wait_for_change` wakes when items finish, when the pool closes or is
//! cancelled, returns at once for an out-of-date snapshot, and keeps up with
//! a whole run in pull and push mode. No test sleeps to synchronise or
//! asserts a duration: items are held at gates, and the time limits only
//! stop a broken build from hanging.
#![allow(clippy::unwrap_used)] // Tests may unwrap: a panic is a test failure.

mod common;
#[path = "common/fragile.rs"]
mod fragile;

use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::Gate;
use fragile::{HANG_LIMIT, within};
use pool_core::{Ctx, Pool};
use rstest::rstest;

/// A pool of one worker whose items each wait for the test: `started`
/// says an item is in the worker's hands, `release` lets one through.
fn gated_pool() -> (Pool<u32>, mpsc::Receiver<u32>, mpsc::Sender<()>) {
    let (started, started_rx) = mpsc::channel();
    let (release, release_rx) = mpsc::channel::<()>();
    let release_rx = std::sync::Mutex::new(release_rx);
    let pool = Pool::builder()
        .workers(1)
        .batch_size(1)
        .build(move |_ctx: &Ctx, n: u32| {
            started.send(n).unwrap();
            release_rx.lock().unwrap().recv()
        })
        .unwrap();
    (pool, started_rx, release)
}

#[test]
fn join_timeout_hands_the_pool_back_until_the_items_are_done() {
    within("join_timeout", || {
        let (pool, started, release) = gated_pool();
        pool.sender().send(1).unwrap();
        pool.sender().send(2).unwrap();
        assert_eq!(started.recv().unwrap(), 1);
        // Item 1 cannot finish before the release: not done, whatever the time.
        let pool = pool.join_timeout(Duration::ZERO).unwrap_err();
        assert!(pool.is_closed());
        let pool = pool
            .join_until(Instant::now() + Duration::from_millis(1))
            .unwrap_err();
        // Closed by the first try: new items are refused, accepted ones run.
        assert!(pool.sender().send(3).is_err());
        release.send(()).unwrap();
        assert_eq!(started.recv().unwrap(), 2);
        let pool = pool.join_timeout(Duration::ZERO).unwrap_err();
        release.send(()).unwrap();
        let report = pool.join_timeout(HANG_LIMIT).unwrap();
        assert_eq!((report.submitted(), report.processed()), (2, 2));
        assert!(report.is_balanced());
    });
}

#[test]
fn a_pool_handed_back_can_be_cancelled_and_joined() {
    within("cancel after join_timeout", || {
        let (pool, started, release) = gated_pool();
        let sender = pool.sender();
        for n in 0..5 {
            sender.send(n).unwrap();
        }
        assert_eq!(started.recv().unwrap(), 0);
        let pool = pool.join_timeout(Duration::ZERO).unwrap_err();
        pool.cancel();
        release.send(()).unwrap();
        let report = pool.join_timeout(HANG_LIMIT).unwrap();
        assert_eq!(report.processed(), 1);
        assert_eq!(report.dropped(), 4);
        assert!(report.was_cancelled() && report.is_balanced());
    });
}

#[test]
fn join_with_workers_timeout_keeps_the_states_through_a_hand_back() {
    within("join_with_workers_timeout", || {
        let (started, started_rx) = mpsc::channel();
        let (release, release_rx) = mpsc::channel::<()>();
        let release_rx = std::sync::Arc::new(std::sync::Mutex::new(release_rx));
        let pool = Pool::builder()
            .workers(1)
            .batch_size(1)
            .keep_state(|ctx: &Ctx, _worker| ctx.counts().processed)
            .build_stateful(move |_ctx: &Ctx| {
                let (started, release_rx) = (started.clone(), release_rx.clone());
                let mut seen = Vec::new();
                move |_ctx: &Ctx, n: u32| {
                    seen.push(n);
                    started.send(seen.clone()).unwrap();
                    release_rx.lock().unwrap().recv()
                }
            })
            .unwrap();
        pool.sender().send(7).unwrap();
        pool.sender().send(8).unwrap();
        assert_eq!(started_rx.recv().unwrap(), [7]);
        // Not done: the pool comes back with its worker still in it.
        let Err(pool) = pool.join_with_workers_timeout(Duration::ZERO) else {
            panic!("item 7 waits for its release");
        };
        assert!(pool.is_closed());
        release.send(()).unwrap();
        assert_eq!(started_rx.recv().unwrap(), [7, 8]);
        let Err(pool) = pool.join_with_workers_until(Instant::now()) else {
            panic!("item 8 waits for its release");
        };
        release.send(()).unwrap();
        let Ok((report, workers)) = pool.join_with_workers_timeout(HANG_LIMIT) else {
            panic!("released");
        };
        assert_eq!(report.processed(), 2);
        // The one worker's state, taken after both items.
        assert_eq!(workers, [2]);
    });
}

#[test]
fn join_timeout_of_an_idle_pool_returns_its_report() {
    within("join_timeout of an idle pool", || {
        let pool = Pool::builder()
            .workers(3)
            .build(|_ctx: &Ctx, _n: u64| Ok::<(), std::io::Error>(()))
            .unwrap();
        pool.run(0..1_000).unwrap();
        let report = pool.join_timeout(HANG_LIMIT).unwrap();
        assert_eq!(report.processed(), 1_000);
        assert_eq!(report.workers().len(), 3);
    });
}

#[test]
fn wait_for_change_wakes_when_an_item_finishes() {
    within("wait_for_change on an item", || {
        let (pool, started, release) = gated_pool();
        pool.sender().send(7).unwrap();
        assert_eq!(started.recv().unwrap(), 7);
        let before = pool.metrics();
        assert_eq!(before.finished(), 0);
        std::thread::scope(|scope| {
            let waiter = scope.spawn(|| pool.wait_for_change(&before, HANG_LIMIT));
            release.send(()).unwrap();
            let after = waiter
                .join()
                .unwrap()
                .expect("woken by the item, not the limit");
            assert_eq!(after.finished(), 1);
            assert_eq!(after.stats.processed, 1);
        });
        pool.wait().unwrap();
    });
}

#[test]
fn wait_for_change_times_out_when_nothing_can_change() {
    within("wait_for_change without a change", || {
        let (pool, started, release) = gated_pool();
        pool.sender().send(1).unwrap();
        assert_eq!(started.recv().unwrap(), 1);
        let snapshot = pool.metrics();
        // The only item waits for the release, so nothing changes.
        assert!(
            pool.wait_for_change(&snapshot, Duration::from_millis(20))
                .is_none()
        );
        release.send(()).unwrap();
        pool.wait().unwrap();
    });
}

#[test]
fn an_out_of_date_snapshot_returns_at_once() {
    within("wait_for_change on a stale snapshot", || {
        let pool = Pool::builder()
            .workers(2)
            .build(|_ctx: &Ctx, _n: u64| Ok::<(), std::io::Error>(()))
            .unwrap();
        let stale = pool.metrics();
        pool.run(0..100).unwrap(); // every item has run when `run` returns
        let fresh = pool.wait_for_change(&stale, HANG_LIMIT).unwrap();
        assert_eq!(fresh.finished(), 100);
        pool.wait().unwrap();
    });
}

#[rstest]
fn close_and_cancel_are_changes(#[values(false, true)] cancel: bool) {
    within("close or cancel as a change", move || {
        let gate = Gate::default();
        let worker_gate = gate.clone();
        let pool = Pool::builder()
            .workers(1)
            .build(move |_ctx: &Ctx, _n: u32| {
                worker_gate.wait();
                Ok::<(), std::io::Error>(())
            })
            .unwrap();
        pool.sender().send(1).unwrap();
        let before = pool.metrics();
        std::thread::scope(|scope| {
            let waiter = scope.spawn(|| pool.wait_for_change(&before, HANG_LIMIT));
            if cancel {
                pool.cancel();
            } else {
                pool.close();
            }
            let after = waiter
                .join()
                .unwrap()
                .expect("woken by the close or cancel");
            assert!(after.closed);
            assert_eq!(after.cancelled, cancel);
        });
        gate.open();
        let report = pool.join();
        assert!(report.is_balanced());
    });
}

#[test]
fn an_error_is_a_change() {
    within("an error as a change", || {
        let gate = Gate::default();
        let worker_gate = gate.clone();
        let pool = Pool::builder()
            .workers(1)
            .continue_on_error()
            .build(move |_ctx: &Ctx, _n: u32| {
                worker_gate.wait();
                Err(std::io::Error::other("deliberate"))
            })
            .unwrap();
        pool.sender().send(1).unwrap();
        let before = pool.metrics();
        std::thread::scope(|scope| {
            let waiter = scope.spawn(|| pool.wait_for_change(&before, HANG_LIMIT));
            gate.open();
            let after = waiter.join().unwrap().expect("woken by the failure");
            assert_eq!(after.stats.failed, 1);
        });
        assert_eq!(pool.join().error_total(), 1);
    });
}

/// A progress loop as an application writes it follows a whole run to its
/// end, woken only by changes: the last wake-up comes when the workers run
/// out of work or the pool closes, so the loop never waits for its limit.
#[rstest]
fn a_progress_loop_follows_a_run_to_the_end(#[values(false, true)] pull: bool) {
    within("a progress loop", move || {
        let pool = Pool::builder()
            .workers(3)
            .batch_size(16)
            .build(|ctx: &Ctx, n: u64| {
                if n.is_multiple_of(1_000) {
                    ctx.metrics().inc("thousands");
                }
                Ok::<(), std::io::Error>(())
            })
            .unwrap();
        std::thread::scope(|scope| {
            let pool = &pool;
            scope.spawn(move || {
                if pull {
                    pool.run(0..200_000).unwrap();
                } else {
                    let mut submitter = pool.submitter();
                    for n in 0..200_000 {
                        submitter.submit(n).unwrap();
                    }
                }
                pool.close();
            });
            let mut snapshot = pool.metrics();
            let mut wake_ups = 0u64;
            while !(snapshot.closed && snapshot.finished() == snapshot.submitted) {
                snapshot = pool
                    .wait_for_change(&snapshot, HANG_LIMIT)
                    .expect("a change comes before the limit");
                wake_ups += 1;
            }
            assert_eq!(snapshot.finished(), 200_000);
            assert_eq!(snapshot.stats.counters.get("thousands"), 200);
            assert!(wake_ups >= 1);
        });
        assert_eq!(pool.wait().unwrap().processed(), 200_000);
    });
}

#[test]
fn several_waiters_are_all_woken() {
    within("several waiters", || {
        let (pool, started, release) = gated_pool();
        pool.sender().send(1).unwrap();
        assert_eq!(started.recv().unwrap(), 1);
        let before = pool.metrics();
        std::thread::scope(|scope| {
            let waiters: Vec<_> = (0..4)
                .map(|_| scope.spawn(|| pool.wait_for_change(&before, HANG_LIMIT)))
                .collect();
            release.send(()).unwrap();
            for waiter in waiters {
                assert_eq!(waiter.join().unwrap().unwrap().finished(), 1);
            }
        });
        pool.wait().unwrap();
    });
}
