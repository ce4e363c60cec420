//! `Pool::run`: the workers pull items from an iterator themselves. Every
//! pool property holds for pulled items as for submitted ones: accounting
//! under errors, panics, cancel and close; per-worker state; middleware;
//! metrics; key affinity; and an iterator that panics, yields errors or
//! yields nothing. Nothing is lost: an item is either handed back in the
//! error's `Rest`, or counted in the report.

mod common;

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex, RwLock, mpsc};

use pool_core::{BoxError, Ctx, Next, PanicSite, Pool, PoolError, RunError, Worker, layer_fn};
use rstest::rstest;

/// Worker counts and batch (chunk) sizes every case runs with.
const SHAPES: [(usize, usize); 4] = [(1, 1), (1, 64), (2, 7), (4, 64)];

#[rstest]
fn every_item_is_run_once_and_counted(#[values(0, 1, 2, 3)] shape: usize) {
    let (n_workers, batch_size) = SHAPES[shape];
    let seen = Arc::new(Mutex::new(vec![0u8; 10_000]));
    let pool = Pool::builder()
        .workers(n_workers)
        .batch_size(batch_size)
        .build({
            let seen = Arc::clone(&seen);
            move |_ctx: &Ctx, item: usize| {
                seen.lock().expect("no panic holds it")[item] += 1;
                Ok::<(), Infallible>(())
            }
        })
        .expect("valid settings");
    assert_eq!(pool.run(0..10_000usize).expect("the pool is open"), 10_000);
    let report = pool.wait().expect("clean run");
    assert_eq!((report.submitted(), report.processed()), (10_000, 10_000));
    assert!(seen.lock().expect("no panic").iter().all(|&n| n == 1));
}

#[rstest]
fn an_empty_iterator_runs_nothing_and_returns_at_once(#[values(0, 3)] shape: usize) {
    let (n_workers, batch_size) = SHAPES[shape];
    let pool = Pool::builder()
        .workers(n_workers)
        .batch_size(batch_size)
        .build(|_ctx: &Ctx, _item: u64| Ok::<(), Infallible>(()))
        .expect("valid settings");
    assert_eq!(pool.run(std::iter::empty::<u64>()).expect("open"), 0);
    // Twice in a row, and then pushed items still run.
    assert_eq!(pool.run(Vec::<u64>::new()).expect("open"), 0);
    pool.submitter().submit(1).expect("open");
    let report = pool.wait().expect("clean run");
    assert_eq!((report.submitted(), report.processed()), (1, 1));
}

#[rstest]
fn errors_and_panics_are_counted_under_continue_on_error(#[values(0, 1, 2, 3)] shape: usize) {
    common::quiet_deliberate_panics();
    let (n_workers, batch_size) = SHAPES[shape];
    let pool = Pool::builder()
        .workers(n_workers)
        .batch_size(batch_size)
        .continue_on_error()
        .build(|_ctx: &Ctx, item: u64| -> Result<(), String> {
            if item.is_multiple_of(100) {
                panic!("deliberate panic on {item}");
            }
            if item.is_multiple_of(7) {
                return Err(format!("{item} is a multiple of seven"));
            }
            Ok(())
        })
        .expect("valid settings");
    assert_eq!(pool.run(1..=1_000u64).expect("open"), 1_000);
    let report = pool.join();
    // 10 multiples of 100 panic; of the other multiples of 7, 142 - 1 (700).
    assert_eq!(report.failed(), 10 + 141);
    assert_eq!(report.processed(), 1_000 - 151);
    assert_eq!(report.error_total(), 151);
    assert!(report.is_balanced(), "{report}");
    let panics = report
        .errors()
        .iter()
        .filter(|error| {
            matches!(
                error,
                PoolError::Panicked {
                    site: PanicSite::Work,
                    ..
                }
            )
        })
        .count();
    assert_eq!(panics, 10);
}

/// A first error under stop-on-error cancels the pool: the run stops taking
/// items, what was taken and not run is dropped and counted, and the rest
/// comes back from the iterator.
#[rstest]
fn stop_on_error_stops_the_run_and_hands_back_the_rest(#[values(0, 1, 2, 3)] shape: usize) {
    let (n_workers, batch_size) = SHAPES[shape];
    let pool = Pool::builder()
        .workers(n_workers)
        .batch_size(batch_size)
        .build(|_ctx: &Ctx, item: u64| -> Result<(), String> {
            if item == 500 {
                return Err("item 500 is bad".to_owned());
            }
            Ok(())
        })
        .expect("valid settings");
    let error = pool
        .run(0..10_000u64)
        .expect_err("the error cancels the run");
    let RunError::Cancelled(rest) = error else {
        panic!("expected Cancelled, got {error:?}");
    };
    let handed_back = rest.count() as u64;
    let report = pool.join();
    assert!(report.is_balanced(), "{report}");
    assert_eq!(report.failed(), 1);
    assert_eq!(report.submitted() + handed_back, 10_000, "nothing lost");
    assert!(report.was_cancelled());
}

/// A worker cancels the pool mid-run: items taken and not yet run are
/// dropped and counted; the rest of the iterator comes back.
#[rstest]
fn cancel_mid_run_drops_and_counts_what_was_taken(#[values(0, 1, 2, 3)] shape: usize) {
    let (n_workers, batch_size) = SHAPES[shape];
    let pool = Pool::builder()
        .workers(n_workers)
        .batch_size(batch_size)
        .build(|ctx: &Ctx, item: u64| {
            if item == 2_000 {
                ctx.token().cancel();
            }
            Ok::<(), Infallible>(())
        })
        .expect("valid settings");
    let error = pool.run(0..100_000u64).expect_err("cancelled");
    let RunError::Cancelled(rest) = error else {
        panic!("expected Cancelled, got {error:?}");
    };
    let handed_back = rest.count() as u64;
    let report = pool.join();
    assert!(report.is_balanced(), "{report}");
    assert_eq!(report.submitted() + handed_back, 100_000, "nothing lost");
    // Item 2,000 was taken (it cancelled); the run stopped long before the end.
    assert!(report.submitted() > 2_000, "{report}");
    assert!(handed_back > 0, "the rest came back");
}

#[test]
fn a_closed_pool_hands_every_item_back() {
    let pool = Pool::builder()
        .workers(2)
        .build(|_ctx: &Ctx, _item: u64| Ok::<(), Infallible>(()))
        .expect("valid settings");
    pool.close();
    let error = pool.run(0..100u64).expect_err("closed");
    let RunError::Closed(rest) = error else {
        panic!("expected Closed, got {error:?}");
    };
    assert_eq!(rest.collect::<Vec<_>>(), (0..100).collect::<Vec<_>>());
    assert_eq!(pool.wait().expect("clean").submitted(), 0);
}

/// The iterator panics in `next`: the items before it ran, the panic is in
/// the report as a `Source` panic, and the iterator is never called again.
#[rstest]
fn an_iterator_that_panics_ends_the_run(#[values(0, 1, 2, 3)] shape: usize) {
    common::quiet_deliberate_panics();
    let (n_workers, batch_size) = SHAPES[shape];
    let pool = Pool::builder()
        .workers(n_workers)
        .batch_size(batch_size)
        .continue_on_error()
        .build(|_ctx: &Ctx, _item: u64| Ok::<(), Infallible>(()))
        .expect("valid settings");
    let items = (0..1_000u64).inspect(|&item| {
        assert!(item != 300, "deliberate panic in the iterator at {item}");
    });
    let error = pool.run(items).expect_err("the iterator panics");
    let RunError::SourcePanicked { taken } = error else {
        panic!("expected SourcePanicked, got {error:?}");
    };
    assert_eq!(taken, 300);
    let report = pool.join();
    assert!(report.is_balanced(), "{report}");
    assert_eq!((report.submitted(), report.processed()), (300, 300));
    assert!(matches!(
        report.errors(),
        [PoolError::Panicked {
            site: PanicSite::Source,
            worker: Some(_),
            ..
        }]
    ));
}

/// An iterator of `Result`s (lines of a file): the worker decides what an
/// `Err` means, and it is counted like any failed item.
#[test]
fn an_iterator_of_results_fails_the_items_that_are_errors() {
    let pool = Pool::builder()
        .workers(2)
        .continue_on_error()
        .build(|_ctx: &Ctx, line: Result<String, String>| line.map(drop))
        .expect("valid settings");
    let lines = (0..100u32).map(|n| {
        if n.is_multiple_of(10) {
            Err(format!("line {n} is unreadable"))
        } else {
            Ok(format!("line {n}"))
        }
    });
    assert_eq!(pool.run(lines).expect("open"), 100);
    let report = pool.join();
    assert_eq!((report.processed(), report.failed()), (90, 10));
}

/// Per-worker state, `finish`, middleware and metrics all apply.
#[rstest]
fn per_worker_state_middleware_and_metrics_apply(#[values(0, 1, 2, 3)] shape: usize) {
    let (n_workers, batch_size) = SHAPES[shape];
    let (maps, merged) = mpsc::channel::<HashMap<u64, u64>>();
    let layered = Arc::new(AtomicU64::new(0));
    struct Counting {
        counts: HashMap<u64, u64>,
        out: mpsc::Sender<HashMap<u64, u64>>,
    }
    impl Worker<u64> for Counting {
        type Error = Infallible;
        fn work(&mut self, ctx: &Ctx, item: u64) -> Result<(), Infallible> {
            *self.counts.entry(item % 10).or_default() += 1;
            ctx.metrics().inc("pulled");
            Ok(())
        }
        fn finish(&mut self, _ctx: &Ctx) -> Result<(), Infallible> {
            self.out
                .send(std::mem::take(&mut self.counts))
                .expect("the test reads the maps");
            Ok(())
        }
    }
    let pool = Pool::builder()
        .workers(n_workers)
        .batch_size(batch_size)
        .layer(layer_fn({
            let layered = Arc::clone(&layered);
            move |mut next: Next<'_, u64>, ctx: &Ctx, item: u64| -> Result<(), BoxError> {
                layered.fetch_add(1, SeqCst);
                next.work(ctx, item)
            }
        }))
        .build_stateful(move |_ctx: &Ctx| Counting {
            counts: HashMap::new(),
            out: maps.clone(),
        })
        .expect("valid settings");
    assert_eq!(pool.run(0..5_000u64).expect("open"), 5_000);
    let report = pool.wait().expect("clean run");
    let mut total: HashMap<u64, u64> = HashMap::new();
    for map in merged.try_iter() {
        for (key, n) in map {
            *total.entry(key).or_default() += n;
        }
    }
    assert_eq!(total.len(), 10);
    assert!(total.values().all(|&n| n == 500));
    assert_eq!(layered.load(SeqCst), 5_000);
    assert_eq!(report.stats().processed, 5_000);
    assert_eq!(report.stats().counters.get("pulled"), 5_000);
}

/// In a keyed pool the calling thread hands each item to its key's worker:
/// each key stays on one worker, in the iterator's order.
#[test]
fn a_keyed_pool_keeps_each_key_on_one_worker_in_order() {
    /// Per key: (worker index, item) in the order the workers ran them.
    type Seen = Arc<Mutex<HashMap<u64, Vec<(usize, u64)>>>>;
    let seen: Seen = Arc::default();
    let pool = Pool::builder()
        .workers(4)
        .chunk_by(|item: &u64| item % 16)
        .build({
            let seen = Arc::clone(&seen);
            move |ctx: &Ctx, item: u64| {
                seen.lock()
                    .expect("no panic holds it")
                    .entry(item % 16)
                    .or_default()
                    .push((ctx.worker_id().index(), item));
                Ok::<(), Infallible>(())
            }
        })
        .expect("valid settings");
    assert_eq!(pool.run(0..4_000u64).expect("open"), 4_000);
    assert_eq!(pool.wait().expect("clean").processed(), 4_000);
    let seen = seen.lock().expect("no panic");
    for (key, items) in seen.iter() {
        let worker = items[0].0;
        assert!(items.iter().all(|&(w, _)| w == worker), "key {key} moved");
        assert!(
            items.windows(2).all(|pair| pair[0].1 < pair[1].1),
            "key {key} out of order"
        );
    }
}

/// `run` from one of the pool's own workers would wait for itself: it is
/// refused, and the items come back.
#[test]
fn run_from_a_worker_of_the_same_pool_is_refused() {
    let shared_pool: Arc<RwLock<Option<Pool<u64>>>> = Arc::default();
    let refused = Arc::new(AtomicU64::new(0));
    let pool = Pool::builder()
        .workers(1)
        .build({
            let shared_pool = Arc::clone(&shared_pool);
            let refused = Arc::clone(&refused);
            move |_ctx: &Ctx, item: u64| {
                if item == 0 {
                    let guard = shared_pool.read().expect("no panic holds it");
                    let pool = guard.as_ref().expect("set before the first item");
                    match pool.run(10..20u64) {
                        Err(RunError::InsideWorker(rest)) => {
                            refused.fetch_add(rest.count() as u64, SeqCst);
                        }
                        other => panic!("expected InsideWorker, got {other:?}"),
                    }
                }
                Ok::<(), Infallible>(())
            }
        })
        .expect("valid settings");
    *shared_pool.write().expect("no panic") = Some(pool);
    {
        let guard = shared_pool.read().expect("no panic");
        let pool = guard.as_ref().expect("just set");
        assert_eq!(pool.run(0..5u64).expect("open"), 5);
    }
    let pool = shared_pool
        .write()
        .expect("no panic")
        .take()
        .expect("still there");
    let report = pool.wait().expect("clean run");
    assert_eq!(refused.load(SeqCst), 10, "all ten items came back");
    assert_eq!((report.submitted(), report.processed()), (5, 5));
}

/// Close and cancel race the pull: another thread closes or cancels the pool
/// once `stop_after` items have finished, while the workers are taking
/// chunks. Whatever the interleaving, every item is either handed back or
/// counted once, and the run ends. 300 rounds over worker counts, chunk
/// sizes and stop points, from a fixed seed.
#[test]
fn close_and_cancel_racing_the_pull_lose_nothing() {
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move |below: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % below
    };
    for round in 0..300 {
        let n_workers = 1 + next(4) as usize;
        let batch_size = [1, 3, 64][next(3) as usize];
        let n_items = 1 + next(5_000);
        let stop_after = next(n_items);
        let cancel = next(2) == 0;
        let pool = Pool::builder()
            .workers(n_workers)
            .batch_size(batch_size)
            .build(|_ctx: &Ctx, _item: u64| Ok::<(), Infallible>(()))
            .expect("valid settings");
        let outcome = std::thread::scope(|scope| {
            let pool = &pool;
            scope.spawn(move || {
                common::wait_until(|| {
                    let snapshot = pool.metrics();
                    snapshot.finished() >= stop_after || snapshot.closed
                });
                if cancel {
                    pool.cancel();
                } else {
                    pool.close();
                }
            });
            let outcome = pool.run(0..n_items);
            // The stopper may still wait for items that will never come.
            pool.close();
            outcome
        });
        let handed_back = match outcome {
            Ok(taken) => {
                assert_eq!(
                    taken, n_items,
                    "round {round}: Ok means every item was taken"
                );
                0
            }
            Err(RunError::Closed(rest) | RunError::Cancelled(rest)) => rest.count() as u64,
            Err(other) => panic!("round {round}: unexpected {other:?}"),
        };
        let report = pool.join();
        assert!(report.is_balanced(), "round {round}: {report}");
        assert_eq!(
            report.submitted() + handed_back,
            n_items,
            "round {round}: taken + handed back must be every item"
        );
    }
}
