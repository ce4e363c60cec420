//! Panics in every place user code runs, beyond the worker itself: stateful
//! makers (all of them, keyed or not, item or batch workers), `finish` hooks
//! and the worker's own `Drop`, `on_worker_done` on every worker and in a pool
//! dropped without `wait`, the `chunk_by` key function, and the `Drop` of items
//! (after processing, left in a batch, on cancel, buffered in a submitter on
//! cancel, handed back on refusal). Each is reported as
//! `PoolError::Panicked` with its site and message (or reaches the caller where
//! that is the documented behaviour), nothing hangs (every run sits behind a
//! hang detector), the process does not abort, and
//! `submitted == processed + failed + dropped`.
//!
//! The last tests pinned library defects found here, now fixed: an item whose
//! `Drop` panicked where the pool dropped it outside `catch_unwind` killed a
//! worker thread or leaked reserved room, and the pool then hung in `wait`;
//! and two such items in one batch the pool dropped at once aborted the
//! process (that test runs its body in a child process, so an abort cannot
//! take the suite down).
#![allow(clippy::unwrap_used)] // Tests may unwrap: a panic is a test failure.

mod common;
#[path = "common/fragile.rs"]
mod fragile;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::time::Duration;

use common::{Gate, Routing, Tracked, wait_until};
use fragile::{Fragile, within};
use pool_core::__private::panic_message;
use pool_core::{
    BatchWorker, Ctx, PanicSite, Pool, PoolError, Report, SendError, SubmitError, TrySendError,
    TrySubmitError, Worker,
};
use rstest::rstest;

const N_ITEMS: u64 = 1_000;
const N_WORKERS: usize = 3;

/// Per-item workers or batch workers: they reach the pool's accounting
/// through different code.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Item,
    Batch,
}

/// The report's errors as `(worker, site, message)`, sorted; fails the test on
/// an error that is not a caught panic. A panic on no worker (the pool's own
/// callback) sorts last, as `usize::MAX`.
fn panics(report: &Report) -> Vec<(usize, PanicSite, String)> {
    let mut panics: Vec<_> = report
        .errors()
        .iter()
        .map(|error| match error {
            PoolError::Panicked {
                worker,
                site,
                message,
                ..
            } => (
                worker.map_or(usize::MAX, |worker| worker.index()),
                *site,
                message.clone(),
            ),
            other => panic!("expected only caught panics, got {other}"),
        })
        .collect();
    panics.sort_by(|a, b| (a.0, &a.2).cmp(&(b.0, &b.2)));
    panics
}

/// Submits `Tracked` items `0..n_items`, dropping refused ones; returns how
/// many were refused.
fn submit_tracked(pool: &Pool<Tracked>, n_items: u64, drops: &Arc<AtomicU64>) -> u64 {
    let mut submitter = pool.submitter();
    let mut refused = 0;
    for value in 0..n_items {
        if let Err(error) = submitter.submit(Tracked::new(value, drops)) {
            drop(error.into_inner());
            refused += 1;
        }
    }
    refused
}

#[rstest]
fn every_maker_panicking_cancels_the_pool_and_accounts_for_every_item(
    #[values(Routing::Stealing, Routing::Keyed)] routing: Routing,
    #[values(Kind::Item, Kind::Batch)] kind: Kind,
) {
    common::quiet_deliberate_panics();
    let drops = Arc::new(AtomicU64::new(0));
    let producer_drops = Arc::clone(&drops);
    let (report, refused) = within("a pool whose makers all panic", move || {
        // A small capacity, so the producer blocks and must be released by
        // the cancel that the maker panics cause.
        let builder = Pool::builder()
            .workers(N_WORKERS)
            .batch_size(8)
            .capacity(32);
        let builder = common::route(builder, routing, |item: &Tracked| item.value);
        let pool = match kind {
            Kind::Item => {
                builder.build_stateful(|ctx: &Ctx| -> fn(&Ctx, Tracked) -> std::io::Result<()> {
                    panic!(
                        "deliberate maker panic on worker {}",
                        ctx.worker_id().index()
                    )
                })
            }
            Kind::Batch => builder.build_batch_stateful(
                |ctx: &Ctx| -> fn(&Ctx, &mut Vec<Tracked>) -> std::io::Result<()> {
                    panic!(
                        "deliberate maker panic on worker {}",
                        ctx.worker_id().index()
                    )
                },
            ),
        }
        .expect("valid settings");
        let refused = submit_tracked(&pool, N_ITEMS, &producer_drops);
        (pool.join(), refused)
    });
    assert!(report.was_cancelled(), "{report}");
    assert!(report.is_balanced(), "{report}");
    assert_eq!(report.submitted() + refused, N_ITEMS);
    // No worker ever existed, so nothing was processed or failed.
    assert_eq!((report.processed(), report.failed()), (0, 0), "{report}");
    assert_eq!(drops.load(SeqCst), N_ITEMS, "every item dropped once");
    let expected: Vec<_> = (0..N_WORKERS)
        .map(|index| {
            (
                index,
                PanicSite::Maker,
                format!("deliberate maker panic on worker {index}"),
            )
        })
        .collect();
    assert_eq!(panics(&report), expected);
}

/// A stateful worker whose `finish` panics on worker 0 and whose `Drop`
/// panics on worker 1; worker 2 is well behaved.
struct Fussy {
    worker: usize,
}

impl Fussy {
    fn finish_hook(&self) -> std::io::Result<()> {
        if self.worker == 0 {
            panic!("deliberate finish panic on worker 0");
        }
        Ok(())
    }
}

impl Worker<Tracked> for Fussy {
    type Error = std::io::Error;
    fn work(&mut self, _ctx: &Ctx, _item: Tracked) -> std::io::Result<()> {
        Ok(())
    }
    fn finish(&mut self, _ctx: &Ctx) -> std::io::Result<()> {
        self.finish_hook()
    }
}

impl BatchWorker<Tracked> for Fussy {
    type Error = std::io::Error;
    fn work_batch(&mut self, _ctx: &Ctx, _batch: &mut Vec<Tracked>) -> std::io::Result<()> {
        Ok(())
    }
    fn finish(&mut self, _ctx: &Ctx) -> std::io::Result<()> {
        self.finish_hook()
    }
}

impl Drop for Fussy {
    fn drop(&mut self) {
        if self.worker == 1 && !std::thread::panicking() {
            panic!("deliberate drop panic of worker 1");
        }
    }
}

#[rstest]
fn finish_and_worker_drop_panics_are_finish_panics_after_every_item(
    #[values(Kind::Item, Kind::Batch)] kind: Kind,
) {
    common::quiet_deliberate_panics();
    let drops = Arc::new(AtomicU64::new(0));
    let producer_drops = Arc::clone(&drops);
    let report = within("a pool whose finish hooks panic", move || {
        // The default policy, stop on error: the hooks run after the last
        // item, so the cancel they cause drops nothing.
        let builder = Pool::builder().workers(N_WORKERS).batch_size(16);
        let maker = |ctx: &Ctx| Fussy {
            worker: ctx.worker_id().index(),
        };
        let pool = match kind {
            Kind::Item => builder.build_stateful(maker),
            Kind::Batch => builder.build_batch_stateful(maker),
        }
        .expect("valid settings");
        assert_eq!(submit_tracked(&pool, N_ITEMS, &producer_drops), 0);
        pool.join()
    });
    assert!(report.is_balanced(), "{report}");
    assert_eq!(
        (report.processed(), report.failed(), report.dropped()),
        (N_ITEMS, 0, 0),
        "{report}"
    );
    assert_eq!(drops.load(SeqCst), N_ITEMS);
    assert_eq!(
        panics(&report),
        [
            (
                0,
                PanicSite::Finish,
                "deliberate finish panic on worker 0".to_owned()
            ),
            (
                1,
                PanicSite::Finish,
                "deliberate drop panic of worker 1".to_owned()
            ),
        ]
    );
    assert!(matches!(
        report.into_result(),
        Err(PoolError::Panicked {
            site: PanicSite::Finish,
            ..
        })
    ));
}

#[test]
fn on_worker_done_panicking_on_every_worker_is_reported_for_each() {
    common::quiet_deliberate_panics();
    let callbacks = Arc::new(AtomicU64::new(0));
    let drops = Arc::new(AtomicU64::new(0));
    let (pool_callbacks, producer_drops) = (Arc::clone(&callbacks), Arc::clone(&drops));
    let report = within("a pool whose on_worker_done panics", move || {
        let pool = Pool::builder()
            .workers(N_WORKERS)
            .on_worker_done(move |id, counts| {
                pool_callbacks.fetch_add(1, SeqCst);
                assert!(counts.items() <= N_ITEMS);
                panic!("deliberate callback panic on worker {}", id.index());
            })
            .build(|_ctx: &Ctx, _item: Tracked| Ok::<(), std::io::Error>(()))
            .expect("valid settings");
        assert_eq!(submit_tracked(&pool, N_ITEMS, &producer_drops), 0);
        pool.join()
    });
    // One callback's panic (which cancels, under stop-on-error) does not keep
    // the other workers' callbacks from running.
    assert_eq!(callbacks.load(SeqCst), N_WORKERS as u64);
    assert!(report.is_balanced(), "{report}");
    assert_eq!((report.processed(), report.dropped()), (N_ITEMS, 0));
    assert_eq!(drops.load(SeqCst), N_ITEMS);
    let expected: Vec<_> = (0..N_WORKERS)
        .map(|index| {
            (
                index,
                PanicSite::Callback,
                format!("deliberate callback panic on worker {index}"),
            )
        })
        .collect();
    assert_eq!(panics(&report), expected);
}

#[test]
fn callback_panics_in_a_pool_dropped_without_wait_stay_inside_the_drop() {
    common::quiet_deliberate_panics();
    let worker_callbacks = Arc::new(AtomicU64::new(0));
    let pool_report = Arc::new(AtomicU64::new(u64::MAX));
    let drops = Arc::new(AtomicU64::new(0));
    let (on_worker, on_pool, producer_drops) = (
        Arc::clone(&worker_callbacks),
        Arc::clone(&pool_report),
        Arc::clone(&drops),
    );
    within("dropping a pool whose callbacks panic", move || {
        let pool = Pool::builder()
            .workers(2)
            .on_worker_done(move |_id, _counts| {
                on_worker.fetch_add(1, SeqCst);
                panic!("deliberate worker callback panic");
            })
            .on_pool_done(move |report| {
                assert!(report.is_balanced());
                on_pool.store(report.processed(), SeqCst);
                panic!("deliberate pool callback panic");
            })
            .build(|_ctx: &Ctx, _item: Tracked| Ok::<(), std::io::Error>(()))
            .expect("valid settings");
        assert_eq!(submit_tracked(&pool, 100, &producer_drops), 0);
        // Dropping must not panic: both panics are caught inside.
        drop(pool);
    });
    assert_eq!(worker_callbacks.load(SeqCst), 2);
    assert_eq!(pool_report.load(SeqCst), 100);
    assert_eq!(drops.load(SeqCst), 100);
}

/// The ways an item goes into a pool.
#[derive(Debug, Clone, Copy)]
enum Entry {
    Submit,
    TrySubmit,
    SubmitTimeout,
    Send,
}

/// The key that panics.
const BAD_KEY: u64 = 13;

#[rstest]
fn a_panicking_key_function_reaches_the_caller_and_takes_nothing(
    #[values(Entry::Submit, Entry::TrySubmit, Entry::SubmitTimeout, Entry::Send)] entry: Entry,
    #[values(1, 64)] batch_size: usize,
) {
    common::quiet_deliberate_panics();
    let drops = Arc::new(AtomicU64::new(0));
    let bad_drops = Arc::new(AtomicU64::new(0));
    let (producer_drops, producer_bad_drops) = (Arc::clone(&drops), Arc::clone(&bad_drops));
    let report = within("a pool whose key function panics", move || {
        let pool = Pool::builder()
            .workers(2)
            .batch_size(batch_size)
            // Room for every item: `try_submit` never meets a full pool.
            .capacity(1_024)
            .chunk_by(|item: &Tracked| {
                assert!(item.value != BAD_KEY, "deliberate key panic on {BAD_KEY}");
                item.value
            })
            .build(|_ctx: &Ctx, _item: Tracked| Ok::<(), std::io::Error>(()))
            .expect("valid settings");
        let key_panic = catch_unwind(AssertUnwindSafe(|| {
            pool.worker_for(&Tracked::new(BAD_KEY, &producer_bad_drops))
        }))
        .expect_err("worker_for runs the key function on the caller's thread");
        assert_eq!(
            panic_message(&*key_panic),
            format!("deliberate key panic on {BAD_KEY}")
        );
        assert_eq!(producer_bad_drops.load(SeqCst), 1);
        let mut submitter = pool.submitter();
        let sender = pool.sender();
        for value in 0..100 {
            let counter = if value == BAD_KEY {
                &producer_bad_drops
            } else {
                &producer_drops
            };
            let item = Tracked::new(value, counter);
            let outcome = catch_unwind(AssertUnwindSafe(|| match entry {
                Entry::Submit => submitter.submit(item).map_err(|error| error.to_string()),
                Entry::TrySubmit => submitter
                    .try_submit(item)
                    .map_err(|error| error.to_string()),
                Entry::SubmitTimeout => submitter
                    .submit_timeout(item, Duration::from_secs(3_600))
                    .map_err(|error| error.to_string()),
                Entry::Send => sender.send(item).map_err(|error| error.to_string()),
            }));
            if value == BAD_KEY {
                let payload = outcome.expect_err("the key panic reaches the caller");
                assert_eq!(
                    panic_message(&*payload),
                    format!("deliberate key panic on {BAD_KEY}")
                );
                // The item was not taken: it was dropped while unwinding.
                assert_eq!(producer_bad_drops.load(SeqCst), 2);
            } else {
                outcome
                    .expect("other keys do not panic")
                    .expect("the pool accepts the item");
            }
        }
        drop(submitter);
        // If the panic had left room reserved, the workers would never see
        // the pool drained and this would hang.
        pool.join()
    });
    assert!(report.is_balanced(), "{report}");
    assert!(!report.was_cancelled());
    assert_eq!(report.error_total(), 0, "{:?}", report.errors());
    assert_eq!((report.submitted(), report.processed()), (99, 99));
    assert_eq!(drops.load(SeqCst), 99);
    assert_eq!(bad_drops.load(SeqCst), 2);
}

/// Whether item `value` panics when dropped.
fn explodes(value: u64) -> bool {
    value % 10 == 3
}

#[rstest]
fn a_drop_panic_of_an_item_the_worker_consumed_is_a_work_panic(
    #[values(Routing::Stealing, Routing::Keyed)] routing: Routing,
    #[values(1, 64)] batch_size: usize,
) {
    common::quiet_deliberate_panics();
    let drops = Arc::new(AtomicU64::new(0));
    let producer_drops = Arc::clone(&drops);
    let report = within("items whose drop panics in the worker", move || {
        let builder = Pool::builder()
            .workers(2)
            .batch_size(batch_size)
            .continue_on_error();
        let pool = common::route(builder, routing, |item: &Fragile| item.value)
            // The item is dropped at the end of the call, inside the worker.
            .build(|_ctx: &Ctx, item: Fragile| {
                std::hint::black_box(item.value);
                Ok::<(), std::io::Error>(())
            })
            .expect("valid settings");
        let mut submitter = pool.submitter();
        for value in 0..N_ITEMS {
            let item = Fragile::new(value, explodes(value), &producer_drops);
            submitter.submit(item).expect("pool open");
        }
        drop(submitter);
        pool.join()
    });
    let n_fragile = (0..N_ITEMS).filter(|&value| explodes(value)).count() as u64;
    assert!(report.is_balanced(), "{report}");
    assert_eq!(
        (report.processed(), report.failed()),
        (N_ITEMS - n_fragile, n_fragile)
    );
    assert_eq!(drops.load(SeqCst), N_ITEMS);
    let mut messages: Vec<String> = panics(&report)
        .into_iter()
        .map(|(_worker, site, message)| {
            assert_eq!(site, PanicSite::Work);
            message
        })
        .collect();
    messages.sort();
    let mut expected: Vec<String> = (0..N_ITEMS)
        .filter(|&value| explodes(value))
        .map(|value| format!("deliberate drop panic on {value}"))
        .collect();
    expected.sort();
    assert_eq!(messages, expected);
}

#[test]
fn refused_fragile_items_come_back_whole_and_undropped() {
    common::quiet_deliberate_panics();
    let drops = Arc::new(AtomicU64::new(0));
    let producer_drops = Arc::clone(&drops);
    let report = within("refusing items whose drop panics", move || {
        let gate = Gate::default();
        let worker_gate = gate.clone();
        let in_hand = Arc::new(AtomicU64::new(0));
        let worker_in_hand = Arc::clone(&in_hand);
        let pool = Pool::builder()
            .workers(1)
            .batch_size(1)
            .capacity(4)
            .build(move |_ctx: &Ctx, item: Fragile| {
                worker_in_hand.fetch_add(1, SeqCst);
                worker_gate.wait();
                item.defuse();
                Ok::<(), std::io::Error>(())
            })
            .expect("valid settings");
        let mut submitter = pool.submitter();
        let sender = pool.sender();
        // Four sturdy items fill the pool: the worker holds one at the gate.
        for value in 0..4 {
            submitter
                .submit(Fragile::new(value, false, &producer_drops))
                .expect("pool open");
        }
        wait_until(|| in_hand.load(SeqCst) == 1);
        let fragile = |value| Fragile::new(value, true, &producer_drops);
        // Each refused item comes back as it went in, still fragile: the pool
        // has not dropped it (the drop count has not moved).
        let check = |item: Fragile, value: u64| {
            assert_eq!((item.value, item.is_fragile()), (value, true));
            assert_eq!(producer_drops.load(SeqCst), 0, "the pool dropped nothing");
            item.defuse();
            producer_drops.fetch_sub(1, SeqCst);
        };
        let full = |error: TrySubmitError<Fragile>| match error {
            TrySubmitError::Full(item) => item,
            other => panic!("expected Full, got {other:?}"),
        };
        check(full(submitter.try_submit(fragile(10)).unwrap_err()), 10);
        let wait = Duration::from_millis(1);
        check(
            full(submitter.submit_timeout(fragile(11), wait).unwrap_err()),
            11,
        );
        let full_send = |error: TrySendError<Fragile>| match error {
            TrySendError::Full(item) => item,
            other => panic!("expected Full, got {other:?}"),
        };
        check(full_send(sender.try_send(fragile(12)).unwrap_err()), 12);
        check(
            full_send(sender.send_timeout(fragile(13), wait).unwrap_err()),
            13,
        );

        pool.close();
        let closed = |error: SubmitError<Fragile>| match error {
            SubmitError::Closed(item) => item,
            other => panic!("expected Closed, got {other:?}"),
        };
        check(closed(submitter.submit(fragile(20)).unwrap_err()), 20);
        let sent_closed = |error: SendError<Fragile>| match error {
            SendError::Closed(item) => item,
            other => panic!("expected Closed, got {other:?}"),
        };
        check(sent_closed(sender.send(fragile(21)).unwrap_err()), 21);

        pool.cancel();
        let cancelled = |error: SubmitError<Fragile>| match error {
            SubmitError::Cancelled(item) => item,
            other => panic!("expected Cancelled, got {other:?}"),
        };
        check(cancelled(submitter.submit(fragile(30)).unwrap_err()), 30);
        let sent_cancelled = |error: SendError<Fragile>| match error {
            SendError::Cancelled(item) => item,
            other => panic!("expected Cancelled, got {other:?}"),
        };
        check(sent_cancelled(sender.send(fragile(31)).unwrap_err()), 31);

        drop(submitter);
        gate.open();
        pool.join()
    });
    assert!(report.is_balanced(), "{report}");
    // The item in the worker's hands finished; the three queued were dropped.
    assert_eq!(
        (report.submitted(), report.processed(), report.dropped()),
        (4, 1, 3)
    );
    assert_eq!(drops.load(SeqCst), 4);
}

// The tests below pinned defects, now fixed: they failed (by the hang
// detector, or by the child process's abort) until the pool dropped the items
// it owns one at a time inside `catch_unwind`, reported as `PanicSite::Drop`.

#[test]
fn a_drop_panic_of_an_item_a_batch_worker_left_in_its_batch_is_reported() {
    common::quiet_deliberate_panics();
    let drops = Arc::new(AtomicU64::new(0));
    let producer_drops = Arc::clone(&drops);
    let fragile_value = N_ITEMS / 2;
    let report = within(
        "a batch worker whose leftover item panics on drop",
        move || {
            let pool = Pool::builder()
                .workers(2)
                .batch_size(64)
                .continue_on_error()
                // Like most batch workers, it reads the items and leaves them in
                // the batch for the pool to drop.
                .build_batch(|_ctx: &Ctx, batch: &mut Vec<Fragile>| {
                    std::hint::black_box(batch.len());
                    Ok::<(), std::io::Error>(())
                })
                .expect("valid settings");
            let mut submitter = pool.submitter();
            for value in 0..N_ITEMS {
                let item = Fragile::new(value, value == fragile_value, &producer_drops);
                submitter.submit(item).expect("pool open");
            }
            drop(submitter);
            pool.join()
        },
    );
    assert!(report.is_balanced(), "{report}");
    assert_eq!(report.submitted(), N_ITEMS);
    assert_eq!(drops.load(SeqCst), N_ITEMS);
    assert!(
        matches!(report.errors(), [PoolError::Panicked { message, site: PanicSite::Drop, .. }]
            if *message == format!("deliberate drop panic on {fragile_value}")),
        "{:?}",
        report.errors()
    );
}

#[rstest]
fn a_drop_panic_of_an_item_dropped_on_cancel_is_reported(
    #[values(Routing::Stealing, Routing::Keyed)] routing: Routing,
    #[values(1, 64)] batch_size: usize,
) {
    common::quiet_deliberate_panics();
    let drops = Arc::new(AtomicU64::new(0));
    let producer_drops = Arc::clone(&drops);
    // The last item is still queued when the pool is cancelled.
    let fragile_value = N_ITEMS - 1;
    let report = within("dropping queued items on cancel", move || {
        let gate = Gate::default();
        let worker_gate = gate.clone();
        let in_hand = Arc::new(AtomicU64::new(0));
        let worker_in_hand = Arc::clone(&in_hand);
        let builder = Pool::builder()
            .workers(2)
            .batch_size(batch_size)
            .continue_on_error();
        let pool = common::route(builder, routing, |item: &Fragile| item.value)
            .build(move |_ctx: &Ctx, item: Fragile| {
                worker_in_hand.fetch_add(1, SeqCst);
                worker_gate.wait();
                item.defuse();
                Ok::<(), std::io::Error>(())
            })
            .expect("valid settings");
        let mut submitter = pool.submitter();
        for value in 0..N_ITEMS {
            let item = Fragile::new(value, value == fragile_value, &producer_drops);
            submitter.submit(item).expect("pool open");
        }
        drop(submitter);
        // Both workers hold an item at the gate; everything else is queued.
        wait_until(|| in_hand.load(SeqCst) == 2);
        pool.cancel();
        gate.open();
        pool.join()
    });
    assert!(report.is_balanced(), "{report}");
    assert_eq!(
        (report.processed(), report.dropped()),
        (2, N_ITEMS - 2),
        "{report}"
    );
    assert_eq!(drops.load(SeqCst), N_ITEMS);
    assert!(
        report.errors().iter().any(|error| matches!(error,
            PoolError::Panicked { message, site: PanicSite::Drop, .. }
                if *message == format!("deliberate drop panic on {fragile_value}"))),
        "{:?}",
        report.errors()
    );
}

#[rstest]
fn a_drop_panic_of_a_buffered_item_dropped_by_its_producer_on_cancel_keeps_the_accounting(
    #[values(Routing::Stealing, Routing::Keyed)] routing: Routing,
) {
    common::quiet_deliberate_panics();
    let drops = Arc::new(AtomicU64::new(0));
    let producer_drops = Arc::clone(&drops);
    let report = within(
        "a producer dropping its buffered items on cancel",
        move || {
            let builder = Pool::builder().workers(1).batch_size(64);
            let pool = common::route(builder, routing, |_item: &Fragile| 0u8)
                .build(|_ctx: &Ctx, item: Fragile| {
                    item.defuse();
                    Ok::<(), std::io::Error>(())
                })
                .expect("valid settings");
            let mut submitter = pool.submitter();
            for value in 0..10 {
                let item = Fragile::new(value, value == 5, &producer_drops);
                submitter.submit(item).expect("pool open");
            }
            assert_eq!(submitter.buffered(), 10);
            pool.cancel();
            // The drop panic may reach the caller of `flush` (it runs on the
            // caller's thread, like the key function); either way the pool must
            // count the ten items and give their room back.
            let _ = catch_unwind(AssertUnwindSafe(|| submitter.flush()));
            drop(submitter);
            pool.join()
        },
    );
    assert!(report.is_balanced(), "{report}");
    assert_eq!((report.submitted(), report.dropped()), (10, 10), "{report}");
    assert_eq!(drops.load(SeqCst), 10);
}

/// Set in the child process that runs the body of
/// [`items_whose_drop_panics_even_while_unwinding_do_not_abort_the_process`].
const ABORT_CHILD: &str = "WORKFORCE_TEST_ABORT_CHILD";

/// An item whose `Drop` panics for some values even while its thread is
/// already unwinding, as a careless `Drop` does.
struct Bomb(u64);

impl Drop for Bomb {
    fn drop(&mut self) {
        assert!(self.0 % 10 != 3, "deliberate bomb {}", self.0);
    }
}

#[test]
fn items_whose_drop_panics_even_while_unwinding_do_not_abort_the_process() {
    if std::env::var_os(ABORT_CHILD).is_some() {
        common::quiet_deliberate_panics();
        let report = within("a batch worker with careless items", || {
            let pool = Pool::builder()
                .workers(1)
                .batch_size(64)
                .continue_on_error()
                .build_batch(|_ctx: &Ctx, batch: &mut Vec<Bomb>| {
                    std::hint::black_box(batch.len());
                    Ok::<(), std::io::Error>(())
                })
                .expect("valid settings");
            let mut submitter = pool.submitter();
            for value in 0..100 {
                if let Err(error) = submitter.submit(Bomb(value)) {
                    std::mem::forget(error.into_inner());
                }
            }
            drop(submitter);
            pool.join()
        });
        assert!(report.is_balanced(), "{report}");
        assert!(report.error_total() > 0, "{report}");
        return;
    }
    // An abort cannot be caught in-process: run the body in a child process
    // (this same test binary and test) and look at how it ended.
    let output = std::process::Command::new(std::env::current_exe().expect("the test binary"))
        .args([
            "--exact",
            "items_whose_drop_panics_even_while_unwinding_do_not_abort_the_process",
            "--include-ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ABORT_CHILD, "1")
        .output()
        .expect("the test binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("1 passed"),
        "the child process must run the body exactly once; its stdout: {stdout}"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    let tail: Vec<&str> = stderr.lines().rev().take(6).collect();
    assert!(
        output.status.success(),
        "the child process ended with {}; last lines of its stderr: {tail:?}",
        output.status
    );
}
