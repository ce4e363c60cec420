//! Bugs reported against the Go worker pools this workspace starts from
//! (alitto/pond, panjf2000/ants), one test each, named after the issue: the
//! same situation here ends without a hang, a lost panic or held memory.
#![allow(clippy::unwrap_used)] // Tests may unwrap: a panic is a test failure.

mod common;
#[path = "common/fragile.rs"]
mod fragile;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Gate, Routing, Tracked, wait_until};
use fragile::within;
use pool_core::__private::panic_message;
use pool_core::{
    CancelToken, Ctx, PanicSite, Pool, PoolError, SendError, SubmitError, TrySendError,
    TrySubmitError,
};
use rstest::rstest;

/// pond #138: "Deadlock when context is cancelled before tasks can be
/// processed (bulk submission)". Tasks were submitted in bulk, the pool's
/// context was cancelled while one long task held the only worker, and the
/// worker then exited without taking the queued tasks off the queue; the
/// group's wait counted them as pending forever.
///
/// Here the parent token is cancelled while the queue is full of bulk-submitted
/// items and every worker holds one: `wait` returns at once with every queued
/// item counted as dropped.
#[rstest]
fn pond_138_cancelling_with_queued_work_does_not_deadlock(
    #[values(Routing::Stealing, Routing::Keyed)] routing: Routing,
    #[values(1, 64)] batch_size: usize,
    #[values(1, 4)] n_workers: usize,
) {
    const N_ITEMS: u64 = 2_000;
    let drops = Arc::new(AtomicU64::new(0));
    let producer_drops = Arc::clone(&drops);
    let outcome = within("waiting on a cancelled pool with queued work", move || {
        let context = CancelToken::new();
        let gate = Gate::default();
        let worker_gate = gate.clone();
        let in_hand = Arc::new(AtomicU64::new(0));
        let worker_in_hand = Arc::clone(&in_hand);
        let builder = Pool::builder()
            .workers(n_workers)
            .batch_size(batch_size)
            .capacity(4_096)
            .cancel_token(context.clone());
        // A key per item, so every worker has items to hold.
        let pool = common::route(builder, routing, |item: &Tracked| item.value)
            .build(move |_ctx: &Ctx, _item: Tracked| {
                worker_in_hand.fetch_add(1, SeqCst);
                worker_gate.wait();
                Ok::<(), std::io::Error>(())
            })
            .expect("valid settings");
        let mut submitter = pool.submitter();
        for value in 0..N_ITEMS {
            submitter
                .submit(Tracked::new(value, &producer_drops))
                .expect("pool open");
        }
        drop(submitter);
        wait_until(|| in_hand.load(SeqCst) == n_workers as u64);
        context.cancel();
        gate.open();
        pool.wait()
    });
    match outcome {
        Err(PoolError::Cancelled { dropped }) => {
            assert_eq!(dropped, N_ITEMS - n_workers as u64);
        }
        other => panic!("expected Cancelled, got {other:?}"),
    }
    assert_eq!(drops.load(SeqCst), N_ITEMS);
}

/// How a test stops a pool from outside.
#[derive(Debug, Clone, Copy)]
enum Stop {
    Close,
    Cancel,
}

/// How a producer feeds a pool.
#[derive(Debug, Clone, Copy)]
enum Producer {
    Submitter,
    Sender,
}

/// pond #108 ("deadlock on submitWaiters channel", fixed by pond PR #109) and
/// pond #115 ("prevent race condition with blocking pools"): in a blocking
/// pool, a `Submit` waiting for room could stay blocked forever when the pool
/// was stopped and no further task came to wake it.
///
/// Here a producer on its own thread blocks at capacity (the workers hold
/// their items at a gate), and the pool is closed or cancelled from the test
/// thread: the producer returns at once with its item handed back, and the
/// items accepted before are processed (close) or dropped (cancel).
#[rstest]
fn pond_108_and_115_a_producer_blocked_at_capacity_returns_when_the_pool_stops(
    #[values(Stop::Close, Stop::Cancel)] stop: Stop,
    #[values(Producer::Submitter, Producer::Sender)] producer: Producer,
    #[values(1, 4)] batch_size: usize,
) {
    const CAPACITY: u64 = 16;
    let report = within("a producer blocked while the pool stops", move || {
        let gate = Gate::default();
        let worker_gate = gate.clone();
        let pool = Pool::builder()
            .workers(2)
            .batch_size(batch_size)
            .capacity(CAPACITY as usize)
            .build(move |_ctx: &Ctx, _item: u64| {
                worker_gate.wait();
                Ok::<(), std::io::Error>(())
            })
            .expect("valid settings");
        let attempts = AtomicU64::new(0);
        let (error, item) = std::thread::scope(|scope| {
            let (pool, attempts) = (&pool, &attempts);
            let blocked = scope.spawn(move || {
                let mut submitter = pool.submitter();
                let sender = pool.sender();
                for item in 0.. {
                    attempts.fetch_add(1, SeqCst);
                    let outcome = match producer {
                        Producer::Submitter => submitter.submit(item),
                        Producer::Sender => sender.send(item).map_err(|error| match error {
                            SendError::Closed(item) | SendError::Disconnected(item) => {
                                SubmitError::Closed(item)
                            }
                            SendError::Cancelled(item) => SubmitError::Cancelled(item),
                        }),
                    };
                    if let Err(error) = outcome {
                        return (error, item);
                    }
                }
                unreachable!("the pool stops before u64::MAX items")
            });
            // Full, and the producer has gone for the item that does not fit
            // (it may still be on its way into the wait: it must return
            // either way).
            wait_until(|| pool.in_flight() == pool.capacity());
            wait_until(|| attempts.load(SeqCst) > CAPACITY);
            match stop {
                Stop::Close => pool.close(),
                Stop::Cancel => pool.cancel(),
            }
            blocked.join().expect("the producer returns")
        });
        match (stop, error) {
            (Stop::Close, SubmitError::Closed(back))
            | (Stop::Cancel, SubmitError::Cancelled(back)) => {
                assert_eq!(back, item, "the refused item comes back");
            }
            (stop, error) => panic!("{stop:?} refused with {error:?}"),
        }
        gate.open();
        // Items are numbered from zero and the producer stopped at its first
        // refusal: the ones before it were accepted.
        (pool.join(), item)
    });
    let (report, accepted) = report;
    assert_eq!(accepted, CAPACITY, "the producer filled the pool exactly");
    assert!(report.is_balanced(), "{report}");
    assert_eq!(report.submitted(), accepted, "{report}");
    match stop {
        Stop::Close => {
            assert_eq!(report.processed(), accepted);
            assert!(!report.was_cancelled());
        }
        Stop::Cancel => assert!(report.was_cancelled()),
    }
}

/// ants #35 ("worker exit on panic"): a panicking task made its worker exit,
/// without a panic handler the panic was not visible to the caller, and once
/// enough tasks had panicked the pool had no workers left and blocked every
/// task. pond #129 ("Optional panic recovery") is the other half: the pool
/// recovered panics of fire-and-forget tasks and silently consumed them.
///
/// Here every item panics, far more often than there are workers: each panic
/// is reported with its message (and re-raised by `wait` on request), every
/// worker survives to process the later items and to run its
/// `on_worker_done`, and nothing blocks.
#[test]
fn ants_35_and_pond_129_a_panic_is_reported_and_its_worker_keeps_going() {
    common::quiet_deliberate_panics();
    const N_ITEMS: u64 = 1_000;
    const N_WORKERS: usize = 2;
    let worker_items = Arc::new(Mutex::new(Vec::new()));
    let done = Arc::clone(&worker_items);
    let report = within("a pool whose every item panics", move || {
        let pool = Pool::builder()
            .workers(N_WORKERS)
            .batch_size(8)
            .continue_on_error()
            .error_limit(N_ITEMS as usize)
            .on_worker_done(move |id, counts| {
                done.lock().unwrap().push((id.index(), counts.items()));
            })
            .build(|_ctx: &Ctx, item: u64| -> std::io::Result<()> {
                panic!("deliberate panic on item {item}")
            })
            .expect("valid settings");
        let mut submitter = pool.submitter();
        for item in 0..N_ITEMS {
            submitter.submit(item).expect("pool open");
        }
        drop(submitter);
        pool.join()
    });
    assert!(report.is_balanced(), "{report}");
    assert_eq!((report.processed(), report.failed()), (0, N_ITEMS));
    let mut panicked: Vec<u64> = report
        .errors()
        .iter()
        .map(|error| match error {
            PoolError::Panicked {
                site: PanicSite::Work,
                message,
                ..
            } => message
                .strip_prefix("deliberate panic on item ")
                .unwrap()
                .parse()
                .unwrap(),
            other => panic!("expected a work panic, got {other}"),
        })
        .collect();
    panicked.sort_unstable();
    assert_eq!(panicked, (0..N_ITEMS).collect::<Vec<_>>());
    // Each worker thread lived to its end and accounted for its own items.
    let mut workers = worker_items.lock().unwrap().clone();
    workers.sort_unstable();
    assert_eq!(
        workers.iter().map(|&(index, _)| index).collect::<Vec<_>>(),
        (0..N_WORKERS).collect::<Vec<_>>()
    );
    assert_eq!(
        workers.iter().map(|&(_, items)| items).sum::<u64>(),
        N_ITEMS
    );

    // With `resume_panics`, the first panic reaches the caller of `wait`
    // itself, after the later items ran on the same (single) worker.
    let after = Arc::new(AtomicU64::new(0));
    let worker_after = Arc::clone(&after);
    let payload = within("re-raising a panic from wait", move || {
        let pool = Pool::builder()
            .workers(1)
            .batch_size(1)
            .continue_on_error()
            .resume_panics(true)
            .build(move |_ctx: &Ctx, item: u64| {
                assert!(item != 3, "deliberate panic on item {item}");
                if item > 3 {
                    worker_after.fetch_add(1, SeqCst);
                }
                Ok::<(), std::io::Error>(())
            })
            .expect("valid settings");
        let mut submitter = pool.submitter();
        for item in 0..10 {
            submitter.submit(item).expect("pool open");
        }
        drop(submitter);
        catch_unwind(AssertUnwindSafe(|| pool.wait())).map(|_| ())
    })
    .expect_err("the panic is re-raised by wait");
    assert_eq!(panic_message(&*payload), "deliberate panic on item 3");
    assert_eq!(after.load(SeqCst), 6, "items 4..10 ran after the panic");
}

/// pond #110 ("Memory leak in versions >= v2.2.0"): memory grew without bound
/// while tasks were submitted in a loop, because finished tasks (and the
/// payloads their closures captured) stayed referenced by the pool.
///
/// Here every item owns a 16 KiB payload. While 20,000 items (over 300 MiB in
/// all) go through, the live payloads never exceed what the capacity admits,
/// and once the last item is held at a gate with the pool still running, it
/// is the only payload alive.
#[rstest]
fn pond_110_finished_items_hold_no_memory(
    #[values(Routing::Stealing, Routing::Keyed)] routing: Routing,
    #[values(1, 64)] batch_size: usize,
) {
    const N_ITEMS: u64 = 20_000;
    const CAPACITY: usize = 256;

    /// An item with a payload, counted while alive.
    struct Payload {
        value: u64,
        _bytes: Vec<u8>,
        live: Arc<AtomicU64>,
    }

    impl Payload {
        fn new(value: u64, live: &Arc<AtomicU64>) -> Self {
            live.fetch_add(1, SeqCst);
            Payload {
                value,
                _bytes: vec![1; 16 * 1024],
                live: Arc::clone(live),
            }
        }
    }

    impl Drop for Payload {
        fn drop(&mut self) {
            self.live.fetch_sub(1, SeqCst);
        }
    }

    let live = Arc::new(AtomicU64::new(0));
    let most_alive = Arc::new(AtomicU64::new(0));
    let (test_live, test_most) = (Arc::clone(&live), Arc::clone(&most_alive));
    let report = within("streaming items with payloads", move || {
        let (live, most_alive) = (test_live, test_most);
        let gate = Gate::default();
        let held = Arc::new(AtomicU64::new(0));
        let (worker_gate, worker_held, worker_live, worker_most) = (
            gate.clone(),
            Arc::clone(&held),
            Arc::clone(&live),
            Arc::clone(&most_alive),
        );
        let builder = Pool::builder()
            .workers(1)
            .batch_size(batch_size)
            .capacity(CAPACITY);
        let pool = common::route(builder, routing, |item: &Payload| item.value % 7)
            .build(move |_ctx: &Ctx, item: Payload| {
                worker_most.fetch_max(worker_live.load(SeqCst), SeqCst);
                if item.value == N_ITEMS {
                    worker_held.store(1, SeqCst);
                    worker_gate.wait();
                }
                Ok::<(), std::io::Error>(())
            })
            .expect("valid settings");
        let mut submitter = pool.submitter();
        for value in 0..N_ITEMS {
            submitter
                .submit(Payload::new(value, &live))
                .unwrap_or_else(|_| panic!("pool open"));
        }
        drop(submitter);
        // The last item goes in on its own and holds the only worker, after
        // every earlier item (one worker takes its queue in order).
        pool.sender()
            .send(Payload::new(N_ITEMS, &live))
            .unwrap_or_else(|_| panic!("pool open"));
        wait_until(|| held.load(SeqCst) == 1);
        assert_eq!(live.load(SeqCst), 1, "only the held item is alive");
        gate.open();
        pool.join()
    });
    assert!(report.is_balanced(), "{report}");
    assert_eq!(report.processed(), N_ITEMS + 1);
    assert_eq!(live.load(SeqCst), 0);
    // Alive at once: at most the capacity (queued, in hand, or reserved by
    // the submitter's open batch) plus the one the producer was making.
    let most = most_alive.load(SeqCst);
    assert!(
        most <= CAPACITY as u64 + 1,
        "{most} payloads were alive at once"
    );
}

/// ants #237 ("Can add SubmitWithContext"): a `Submit` on a full blocking
/// pool waited for a free worker with no way to give up or be cancelled; the
/// only way out was a non-blocking pool that fails at once.
///
/// Here `submit_timeout` and `send_timeout` give up after their timeout and
/// hand the item back, and a producer blocked in a plain `submit` or `send`
/// is released by cancelling the caller's own token (the pool's parent) from
/// another thread.
#[test]
fn ants_237_a_blocked_submit_can_time_out_or_be_cancelled() {
    let report = within("giving up on a full pool", || {
        let context = CancelToken::new();
        let gate = Gate::default();
        let worker_gate = gate.clone();
        let pool = Pool::builder()
            .workers(1)
            .batch_size(1)
            .capacity(2)
            .cancel_token(context.clone())
            .build(move |_ctx: &Ctx, _item: u64| {
                worker_gate.wait();
                Ok::<(), std::io::Error>(())
            })
            .expect("valid settings");
        let mut submitter = pool.submitter();
        submitter.submit(0).expect("pool open");
        submitter.submit(1).expect("pool open");
        let wait = Duration::from_millis(20);
        assert!(matches!(
            submitter.submit_timeout(2, wait),
            Err(TrySubmitError::Full(2))
        ));
        assert!(matches!(
            pool.sender().send_timeout(3, wait),
            Err(TrySendError::Full(3))
        ));
        let entered = AtomicU64::new(0);
        std::thread::scope(|scope| {
            let (pool, entered) = (&pool, &entered);
            let blocked_submit = scope.spawn(move || {
                let mut submitter = pool.submitter();
                entered.fetch_add(1, SeqCst);
                submitter.submit(4)
            });
            let blocked_send = scope.spawn(move || {
                entered.fetch_add(1, SeqCst);
                pool.sender().send(5)
            });
            wait_until(|| entered.load(SeqCst) == 2);
            context.cancel();
            assert_eq!(
                blocked_submit.join().expect("the producer returns"),
                Err(SubmitError::Cancelled(4))
            );
            assert_eq!(
                blocked_send.join().expect("the producer returns"),
                Err(SendError::Cancelled(5))
            );
        });
        drop(submitter);
        gate.open();
        pool.join()
    });
    assert!(report.is_balanced(), "{report}");
    assert!(report.was_cancelled());
    assert_eq!(report.submitted(), 2);
}
