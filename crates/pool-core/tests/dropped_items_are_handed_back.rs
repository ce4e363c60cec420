//! `Builder::on_dropped`: every item the pool drops goes to the callback
//! exactly once, and only those: after a cancel (from the test, from a
//! worker, from stop-on-error), with several producers, through every way in
//! (batching and unbatched `Submitter`s, `Sender`s, `Pool::run`), keyed and
//! not, for item and batch workers, and when the pool is dropped instead of
//! waited on. Items are told apart by their ids: each one ends up run, handed
//! back, refused at the door, or (pull mode) still in the iterator, and in
//! exactly one of those.
//!
//! No test sleeps: workers hold their items at a gate until the test opens it
//! (`Gate`), or the pool is cancelled by a worker at a given item.

#![allow(clippy::unwrap_used)] // Tests may unwrap: a panic is a test failure.

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex, OnceLock};

use common::{Gate, Routing, wait_until};
use pool_core::{Builder, Ctx, PanicSite, Pool, PoolError, RunError, SendError, SubmitError};
use rstest::rstest;

/// What became of the items, by id, as the test's side records it.
#[derive(Default)]
struct Seen {
    /// Ids a worker started (and then finished: processed or failed).
    ran: Mutex<Vec<u64>>,
    /// Ids the `on_dropped` callback got.
    handed: Mutex<Vec<u64>>,
    /// Ids a producer's `submit`/`send` refused (handed back in the error).
    refused: Mutex<Vec<u64>>,
}

impl Seen {
    fn ran(&self, id: u64) {
        self.ran.lock().unwrap().push(id);
    }

    fn handed(&self, id: u64) {
        self.handed.lock().unwrap().push(id);
    }

    fn refused(&self, id: u64) {
        self.refused.lock().unwrap().push(id);
    }

    fn n_ran(&self) -> usize {
        self.ran.lock().unwrap().len()
    }

    /// The ids of one list as a set, after checking it holds no id twice.
    fn set(list: &Mutex<Vec<u64>>, what: &str) -> BTreeSet<u64> {
        let list = list.lock().unwrap();
        let set: BTreeSet<u64> = list.iter().copied().collect();
        assert_eq!(set.len(), list.len(), "an id was {what} twice: {list:?}");
        set
    }

    /// Checks that the lists are disjoint and that, with `untaken` (ids
    /// never handed to the pool), they hold every id of `all` exactly once.
    /// Returns (ran, handed, refused).
    fn partition(
        &self,
        all: &BTreeSet<u64>,
        untaken: &BTreeSet<u64>,
    ) -> (BTreeSet<u64>, BTreeSet<u64>, BTreeSet<u64>) {
        let ran = Seen::set(&self.ran, "run");
        let handed = Seen::set(&self.handed, "handed back");
        let refused = Seen::set(&self.refused, "refused");
        let lists = [&ran, &handed, &refused, untaken];
        for (i, a) in lists.iter().enumerate() {
            for b in &lists[i + 1..] {
                assert!(a.is_disjoint(b), "an id is in two places: {a:?} / {b:?}");
            }
        }
        let union: BTreeSet<u64> = lists.iter().flat_map(|set| set.iter().copied()).collect();
        assert_eq!(&union, all, "every id ends up in exactly one place");
        (ran, handed, refused)
    }
}

/// Hands dropped ids to `seen`.
fn collecting<T: Send + 'static>(
    builder: Builder<T>,
    seen: &Arc<Seen>,
    id: fn(&T) -> u64,
) -> Builder<T> {
    let seen = Arc::clone(seen);
    builder.on_dropped(move |item: T| seen.handed(id(&item)))
}

/// How producers hand items in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WayIn {
    /// A `Submitter` per producer, with this batch size.
    Submitter(usize),
    /// A `Sender` per producer (the pool batches nothing).
    Sender,
}

impl WayIn {
    fn batch_size(self) -> usize {
        match self {
            WayIn::Submitter(batch_size) => batch_size,
            WayIn::Sender => 1,
        }
    }
}

/// Producer `producer`'s ids: `producer * per_producer ..` onwards.
fn ids_of(producer: u64, per_producer: u64) -> std::ops::Range<u64> {
    producer * per_producer..(producer + 1) * per_producer
}

/// Hands `ids` to `pool` the way `way_in` says; a refused id and every id
/// after it go to `seen.refused` (a refusal ends the producer).
fn produce(pool: &Pool<u64>, way_in: WayIn, ids: std::ops::Range<u64>, seen: &Seen) {
    let end = ids.end;
    match way_in {
        WayIn::Submitter(_) => {
            let mut submitter = pool.submitter();
            for id in ids {
                if let Err(error) = submitter.submit(id) {
                    assert!(matches!(error, SubmitError::Cancelled(_)), "{error:?}");
                    (error.into_inner()..end).for_each(|id| seen.refused(id));
                    return;
                }
            }
        }
        WayIn::Sender => {
            let sender = pool.sender();
            for id in ids {
                if let Err(error) = sender.send(id) {
                    assert!(matches!(error, SendError::Cancelled(_)), "{error:?}");
                    (error.into_inner()..end).for_each(|id| seen.refused(id));
                    return;
                }
            }
        }
    }
}

#[rstest]
fn a_cancel_hands_back_exactly_the_items_still_queued(
    #[values(WayIn::Submitter(1), WayIn::Submitter(8), WayIn::Sender)] way_in: WayIn,
    #[values(Routing::Stealing, Routing::Keyed)] routing: Routing,
    #[values(1, 3)] workers: usize,
) {
    let n_producers = 3;
    let per_producer = 200;
    let seen = Arc::new(Seen::default());
    let gate = Gate::default();
    let builder = Pool::builder()
        .workers(workers)
        .batch_size(way_in.batch_size())
        .capacity(1024);
    let builder = common::route(builder, routing, |id: &u64| id % 7);
    let (worker_seen, worker_gate) = (Arc::clone(&seen), gate.clone());
    let pool = collecting(builder, &seen, |id| *id)
        .build(move |_ctx: &Ctx, id: u64| {
            worker_seen.ran(id);
            worker_gate.wait();
            Ok::<(), std::io::Error>(())
        })
        .unwrap();
    std::thread::scope(|scope| {
        for producer in 0..n_producers {
            let (pool, seen) = (&pool, &*seen);
            scope.spawn(move || produce(pool, way_in, ids_of(producer, per_producer), seen));
        }
    });
    // Every item is queued (the capacity holds them all), and a worker
    // holds one at the gate.
    wait_until(|| seen.n_ran() >= 1);
    pool.cancel();
    gate.open();
    let report = pool.join();

    let all: BTreeSet<u64> = (0..n_producers * per_producer).collect();
    let (ran, handed, refused) = seen.partition(&all, &BTreeSet::new());
    assert!(
        refused.is_empty(),
        "nothing was refused: all came in before the cancel"
    );
    assert!(
        ran.len() <= workers,
        "only the items held at the gate ran: {ran:?}"
    );
    assert_eq!(report.submitted(), all.len() as u64);
    assert_eq!(report.processed(), ran.len() as u64);
    assert_eq!(report.dropped(), handed.len() as u64);
    assert_eq!(report.interrupted(), 0);
    assert!(report.is_balanced(), "{report}");
}

#[rstest]
fn a_batch_worker_hands_back_the_batches_it_did_not_start(
    #[values(Routing::Stealing, Routing::Keyed)] routing: Routing,
) {
    let seen = Arc::new(Seen::default());
    let gate = Gate::default();
    let builder = Pool::builder().workers(2).batch_size(10).capacity(1000);
    let builder = common::route(builder, routing, |id: &u64| id % 3);
    let (worker_seen, worker_gate) = (Arc::clone(&seen), gate.clone());
    let pool = collecting(builder, &seen, |id| *id)
        .build_batch(move |_ctx: &Ctx, batch: &mut Vec<u64>| {
            batch.drain(..).for_each(|id| worker_seen.ran(id));
            worker_gate.wait();
            Ok::<(), std::io::Error>(())
        })
        .unwrap();
    produce(&pool, WayIn::Submitter(10), 0..500, &seen);
    wait_until(|| seen.n_ran() >= 1);
    pool.cancel();
    gate.open();
    let report = pool.join();
    let all: BTreeSet<u64> = (0..500).collect();
    let (ran, handed, _) = seen.partition(&all, &BTreeSet::new());
    assert!(ran.len() <= 20, "at most one batch per worker ran: {ran:?}");
    assert_eq!(report.processed(), ran.len() as u64);
    assert_eq!(report.dropped(), handed.len() as u64);
    assert!(report.is_balanced(), "{report}");
}

/// Producers race a cancel that a worker makes at its `cancel_at`-th item:
/// some items run, some are handed back (queued, in a batch being worked
/// through, or pushed after the cancel by a submitter's flush), some are
/// refused at the door; each exactly once, whatever the interleaving.
#[rstest]
fn producers_racing_a_cancel_lose_no_item_and_get_none_twice(
    #[values(WayIn::Submitter(1), WayIn::Submitter(16), WayIn::Sender)] way_in: WayIn,
    #[values(Routing::Stealing, Routing::Keyed)] routing: Routing,
) {
    let mut handed_in_all = 0;
    for round in 0..10u64 {
        let n_producers = 4;
        let per_producer = 2_000;
        let cancel_at = 100 + round * 37;
        let seen = Arc::new(Seen::default());
        let builder = Pool::builder()
            .workers(3)
            .batch_size(way_in.batch_size())
            .capacity(64);
        let builder = common::route(builder, routing, |id: &u64| id % 11);
        let worker_seen = Arc::clone(&seen);
        let count = Arc::new(AtomicU64::new(0));
        let pool = collecting(builder, &seen, |id| *id)
            .build(move |ctx: &Ctx, id: u64| {
                worker_seen.ran(id);
                if count.fetch_add(1, SeqCst) + 1 == cancel_at {
                    ctx.token().cancel();
                }
                Ok::<(), std::io::Error>(())
            })
            .unwrap();
        std::thread::scope(|scope| {
            for producer in 0..n_producers {
                let (pool, seen) = (&pool, &*seen);
                scope.spawn(move || produce(pool, way_in, ids_of(producer, per_producer), seen));
            }
        });
        let report = pool.join();
        let all: BTreeSet<u64> = (0..n_producers * per_producer).collect();
        let (ran, handed, refused) = seen.partition(&all, &BTreeSet::new());
        assert!(report.was_cancelled());
        assert!(ran.len() as u64 >= cancel_at);
        assert_eq!(
            report.submitted(),
            (ran.len() + handed.len()) as u64,
            "{report}"
        );
        assert_eq!(report.submitted() + refused.len() as u64, all.len() as u64);
        assert_eq!(report.processed(), ran.len() as u64);
        assert_eq!(report.dropped(), handed.len() as u64);
        assert!(report.is_balanced(), "{report}");
        handed_in_all += handed.len();
    }
    // Not promised for any one round, but a run with nothing to hand back
    // would not test the callback at all.
    assert!(handed_in_all > 0);
}

/// `Pool::run` cancelled part-way by a worker: items taken from the iterator
/// run or are handed back; the items it still held come back in the
/// `RunError`'s rest and were never submitted.
#[rstest]
fn a_cancelled_pull_run_hands_back_taken_items_and_returns_the_rest(
    #[values(1, 4)] workers: usize,
    #[values(1, 8)] batch_size: usize,
    #[values(Routing::Stealing, Routing::Keyed)] routing: Routing,
) {
    let mut handed_in_all = 0;
    for round in 0..10u64 {
        let n_items = 5_000;
        let cancel_at = 50 + round * 13;
        let seen = Arc::new(Seen::default());
        let builder = Pool::builder().workers(workers).batch_size(batch_size);
        let builder = common::route(builder, routing, |id: &u64| id % 5);
        let worker_seen = Arc::clone(&seen);
        let count = Arc::new(AtomicU64::new(0));
        let pool = collecting(builder, &seen, |id| *id)
            .build(move |ctx: &Ctx, id: u64| {
                worker_seen.ran(id);
                if count.fetch_add(1, SeqCst) + 1 == cancel_at {
                    ctx.token().cancel();
                }
                Ok::<(), std::io::Error>(())
            })
            .unwrap();
        let rest: BTreeSet<u64> = match pool.run(0..n_items) {
            Err(RunError::Cancelled(rest)) => rest.collect(),
            Ok(taken) => panic!("the run was cancelled, yet took all {taken} items"),
            Err(other) => panic!("expected Cancelled, got {other:?}"),
        };
        let report = pool.join();
        let all: BTreeSet<u64> = (0..n_items).collect();
        let (ran, handed, _) = seen.partition(&all, &rest);
        assert!(!rest.is_empty());
        assert_eq!(
            report.submitted(),
            (ran.len() + handed.len()) as u64,
            "{report}"
        );
        assert_eq!(report.processed(), ran.len() as u64);
        assert_eq!(report.dropped(), handed.len() as u64);
        assert!(report.is_balanced(), "{report}");
        handed_in_all += handed.len();
    }
    if batch_size > 1 {
        // A chunk (or a keyed run's batch) cut short by the cancel.
        assert!(handed_in_all > 0);
    }
}

#[rstest]
fn stop_on_error_hands_back_what_the_first_error_left_unrun(
    #[values(WayIn::Submitter(1), WayIn::Submitter(32), WayIn::Sender)] way_in: WayIn,
) {
    let seen = Arc::new(Seen::default());
    let worker_seen = Arc::clone(&seen);
    let pool = collecting(
        Pool::builder()
            .workers(3)
            .batch_size(way_in.batch_size())
            .capacity(4096)
            .stop_on_error(),
        &seen,
        |id| *id,
    )
    .build(move |_ctx: &Ctx, id: u64| {
        worker_seen.ran(id);
        anyhow::ensure!(id != 777, "job {id} failed");
        Ok(())
    })
    .unwrap();
    std::thread::scope(|scope| {
        for producer in 0..2 {
            let (pool, seen) = (&pool, &*seen);
            scope.spawn(move || produce(pool, way_in, ids_of(producer, 2_000), seen));
        }
    });
    let report = pool.join();
    let all: BTreeSet<u64> = (0..4_000).collect();
    let (ran, handed, refused) = seen.partition(&all, &BTreeSet::new());
    assert!(ran.contains(&777));
    assert_eq!(report.failed(), 1);
    assert_eq!(report.processed() + 1, ran.len() as u64);
    assert_eq!(report.dropped(), handed.len() as u64);
    assert_eq!(report.submitted() + refused.len() as u64, 4_000);
    assert!(report.is_balanced(), "{report}");
    match report.into_result() {
        Err(PoolError::Worker { source, .. }) => assert_eq!(source.to_string(), "job 777 failed"),
        other => panic!("expected the failure of job 777, got {other:?}"),
    }
}

#[test]
fn dropping_a_cancelled_pool_hands_back_its_queued_items_before_drop_returns() {
    let seen = Arc::new(Seen::default());
    let gate = Gate::default();
    let (worker_seen, worker_gate) = (Arc::clone(&seen), gate.clone());
    let pool = collecting(Pool::builder().workers(2).batch_size(4), &seen, |id| *id)
        .build(move |_ctx: &Ctx, id: u64| {
            worker_seen.ran(id);
            worker_gate.wait();
            Ok::<(), std::io::Error>(())
        })
        .unwrap();
    produce(&pool, WayIn::Submitter(4), 0..100, &seen);
    wait_until(|| seen.n_ran() >= 1);
    pool.cancel();
    gate.open();
    drop(pool);
    let all: BTreeSet<u64> = (0..100).collect();
    let (ran, handed, _) = seen.partition(&all, &BTreeSet::new());
    assert!(ran.len() <= 2);
    assert_eq!(handed.len(), 100 - ran.len());
}

#[test]
fn without_a_cancel_nothing_is_handed_back() {
    let seen = Arc::new(Seen::default());
    let worker_seen = Arc::clone(&seen);
    let pool = collecting(Pool::builder().workers(3).batch_size(8), &seen, |id| *id)
        .build(move |_ctx: &Ctx, id: u64| {
            worker_seen.ran(id);
            Ok::<(), std::io::Error>(())
        })
        .unwrap();
    produce(&pool, WayIn::Submitter(8), 0..1_000, &seen);
    let report = pool.wait().unwrap();
    assert_eq!(report.processed(), 1_000);
    assert!(seen.handed.lock().unwrap().is_empty());
}

#[test]
fn a_panicking_callback_is_reported_and_the_other_items_still_come_back() {
    common::quiet_deliberate_panics();
    let seen = Arc::new(Seen::default());
    let gate = Gate::default();
    let (worker_seen, worker_gate) = (Arc::clone(&seen), gate.clone());
    let callback_seen = Arc::clone(&seen);
    let pool = Pool::builder()
        .workers(1)
        .batch_size(10)
        .on_dropped(move |id: u64| {
            assert!(id != 5, "deliberate panic handing back {id}");
            callback_seen.handed(id);
        })
        .build(move |_ctx: &Ctx, id: u64| {
            worker_seen.ran(id);
            worker_gate.wait();
            Ok::<(), std::io::Error>(())
        })
        .unwrap();
    produce(&pool, WayIn::Submitter(10), 0..30, &seen);
    wait_until(|| seen.n_ran() >= 1);
    pool.cancel();
    gate.open();
    let report = pool.join();
    // Item 0 ran; 1 to 29 were dropped, and all but 5 came back.
    assert_eq!((report.processed(), report.dropped()), (1, 29));
    assert!(report.is_balanced());
    let mut all: BTreeSet<u64> = (0..30).collect();
    all.remove(&5);
    let (ran, handed, _) = seen.partition(&all, &BTreeSet::new());
    assert_eq!(ran, BTreeSet::from([0]));
    assert_eq!(handed.len(), 28);
    match report.errors() {
        [
            PoolError::Panicked {
                site: PanicSite::Callback,
                message,
                worker: Some(_),
                ..
            },
        ] => assert_eq!(message, "deliberate panic handing back 5"),
        other => panic!("expected the callback's panic, got {other:?}"),
    }
}

/// Sets its flag when dropped.
struct DropFlag(Arc<AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, SeqCst);
    }
}

#[test]
fn the_callback_may_own_a_sender_to_its_own_pool_and_is_dropped_by_join() {
    let own_sender: Arc<OnceLock<pool_core::Sender<u64>>> = Arc::new(OnceLock::new());
    let dropped = Arc::new(AtomicBool::new(false));
    let flag = DropFlag(Arc::clone(&dropped));
    let callback_sender = Arc::clone(&own_sender);
    let refused_again = Arc::new(AtomicU64::new(0));
    let callback_refused = Arc::clone(&refused_again);
    let gate = Gate::default();
    let worker_gate = gate.clone();
    let pool = Pool::builder()
        .workers(1)
        .batch_size(1)
        .on_dropped(move |id: u64| {
            let _owned = &flag;
            // A cancelled pool refuses it: the item comes straight back.
            let sender = callback_sender.get().unwrap();
            assert!(matches!(sender.send(id), Err(SendError::Cancelled(_))));
            callback_refused.fetch_add(1, SeqCst);
        })
        .build(move |_ctx: &Ctx, _id: u64| {
            worker_gate.wait();
            Ok::<(), std::io::Error>(())
        })
        .unwrap();
    own_sender.set(pool.sender()).unwrap();
    let sender = pool.sender();
    for id in 0..10 {
        sender.send(id).unwrap();
    }
    pool.cancel();
    gate.open();
    let report = pool.join();
    assert_eq!(report.dropped(), refused_again.load(SeqCst));
    assert!(report.dropped() >= 9);
    assert!(dropped.load(SeqCst), "join dropped the callback");
}
