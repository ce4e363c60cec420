//! State out: a pool built after `keep_workers` (or `keep_state`) hands each
//! worker (or what it gathered) back from `join_with_workers`, exactly once,
//! in worker order, after every thread has joined: also after errors,
//! cancels, panics in the work or in `finish`, in batch pools, under layers,
//! and with fallible makers.
#![allow(clippy::unwrap_used)] // Tests may unwrap: a panic is a test failure.

mod common;
#[path = "common/threads.rs"]
mod threads;

use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};

use pool_core::{
    BatchWorker, BuildError, Ctx, PanicSite, Pool, PoolError, Report, Worker, WorkerId, layer_fn,
};

/// What a worker did: the items it saw, and how often it was finished and
/// dropped (the drops count for every worker of a test, so the test can check
/// each worker is dropped exactly once: by the test, after it came back).
struct Tally {
    worker: WorkerId,
    items: Vec<u64>,
    finished: u32,
    drops: Arc<AtomicUsize>,
    /// Fail on these items.
    fail_on: fn(u64) -> Outcome,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Ok,
    Fail,
    Panic,
}

fn always_ok(_item: u64) -> Outcome {
    Outcome::Ok
}

impl Tally {
    fn new(ctx: &Ctx, drops: &Arc<AtomicUsize>, fail_on: fn(u64) -> Outcome) -> Self {
        Tally {
            worker: ctx.worker_id(),
            items: Vec::new(),
            finished: 0,
            drops: Arc::clone(drops),
            fail_on,
        }
    }

    fn take(&mut self, item: u64) -> std::io::Result<()> {
        self.items.push(item);
        match (self.fail_on)(item) {
            Outcome::Ok => Ok(()),
            Outcome::Fail => Err(std::io::Error::other(format!("item {item} fails"))),
            Outcome::Panic => panic!("deliberate panic on item {item}"),
        }
    }
}

impl Drop for Tally {
    fn drop(&mut self) {
        self.drops.fetch_add(1, SeqCst);
    }
}

impl Worker<u64> for Tally {
    type Error = std::io::Error;
    fn work(&mut self, _ctx: &Ctx, item: u64) -> std::io::Result<()> {
        self.take(item)
    }
    fn finish(&mut self, _ctx: &Ctx) -> std::io::Result<()> {
        self.finished += 1;
        Ok(())
    }
}

impl BatchWorker<u64> for Tally {
    type Error = std::io::Error;
    fn work_batch(&mut self, _ctx: &Ctx, batch: &mut Vec<u64>) -> std::io::Result<()> {
        let mut result = Ok(());
        for item in batch.drain(..) {
            if let Err(error) = self.take(item) {
                result = Err(error);
            }
        }
        result
    }
    fn finish(&mut self, _ctx: &Ctx) -> std::io::Result<()> {
        self.finished += 1;
        Ok(())
    }
}

/// Every worker came back once, in order, finished once and not dropped; the
/// items they saw are the items the report says ran (processed or failed),
/// each once.
fn assert_every_worker_once(report: &Report, workers: &[Tally], n_workers: usize) {
    let ids: Vec<usize> = workers.iter().map(|tally| tally.worker.index()).collect();
    assert_eq!(ids, (0..n_workers).collect::<Vec<_>>());
    assert!(workers.iter().all(|tally| tally.finished == 1));
    assert_eq!(
        workers[0].drops.load(SeqCst),
        0,
        "no kept worker was dropped"
    );
    let mut seen: Vec<u64> = workers
        .iter()
        .flat_map(|tally| tally.items.clone())
        .collect();
    let n_seen = seen.len();
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen.len(), n_seen, "an item was seen twice");
    assert_eq!(n_seen as u64, report.processed() + report.failed());
    for (tally, share) in workers.iter().zip(report.workers()) {
        assert_eq!(
            tally.items.len() as u64,
            share.counts.processed + share.counts.failed
        );
    }
    assert!(report.is_balanced(), "{report}");
}

#[test]
fn every_worker_comes_back_once_in_order() {
    let drops = Arc::new(AtomicUsize::new(0));
    let maker_drops = Arc::clone(&drops);
    let pool = Pool::builder()
        .workers(4)
        .thread_name("keep-plain")
        .keep_workers()
        .build_stateful(move |ctx: &Ctx| Tally::new(ctx, &maker_drops, always_ok))
        .unwrap();
    pool.submitter().submit_iter(0..10_000).unwrap();
    let (report, workers) = pool.wait_with_workers().unwrap();
    assert_eq!(threads::live_threads_named("keep-plain").unwrap_or(0), 0);
    assert_eq!(report.processed(), 10_000);
    assert_every_worker_once(&report, &workers, 4);
    drop(workers);
    assert_eq!(
        drops.load(SeqCst),
        4,
        "each worker is dropped once, by its owner"
    );
}

#[test]
fn workers_come_back_after_failed_and_panicking_items() {
    common::quiet_deliberate_panics();
    fn flaky(item: u64) -> Outcome {
        match item % 10 {
            3 => Outcome::Fail,
            7 => Outcome::Panic,
            _ => Outcome::Ok,
        }
    }
    let drops = Arc::new(AtomicUsize::new(0));
    let maker_drops = Arc::clone(&drops);
    let pool = Pool::builder()
        .workers(3)
        .continue_on_error()
        .keep_workers()
        .build_stateful(move |ctx: &Ctx| Tally::new(ctx, &maker_drops, flaky))
        .unwrap();
    pool.submitter().submit_iter(0..1_000).unwrap();
    let (report, workers) = pool.join_with_workers();
    assert_eq!((report.processed(), report.failed()), (800, 200));
    assert_every_worker_once(&report, &workers, 3);
    // `wait_with_workers` says the run failed.
    let maker_drops = Arc::clone(&drops);
    let pool = Pool::builder()
        .workers(2)
        .continue_on_error()
        .keep_workers()
        .build_stateful(move |ctx: &Ctx| Tally::new(ctx, &maker_drops, flaky))
        .unwrap();
    pool.submitter().submit_iter(0..10).unwrap();
    assert!(matches!(
        pool.wait_with_workers(),
        Err(PoolError::Many { .. })
    ));
}

#[test]
fn workers_come_back_after_the_first_error_stops_the_pool() {
    fn fails_at_50(item: u64) -> Outcome {
        if item == 50 {
            Outcome::Fail
        } else {
            Outcome::Ok
        }
    }
    let drops = Arc::new(AtomicUsize::new(0));
    let maker_drops = Arc::clone(&drops);
    let pool = Pool::builder()
        .workers(2)
        .keep_workers()
        .build_stateful(move |ctx: &Ctx| Tally::new(ctx, &maker_drops, fails_at_50))
        .unwrap();
    let mut submitter = pool.submitter();
    for item in 0..10_000 {
        if submitter.submit(item).is_err() {
            break; // cancelled by the error
        }
    }
    drop(submitter);
    let (report, workers) = pool.join_with_workers();
    assert!(report.was_cancelled());
    assert_eq!(report.failed(), 1);
    assert_every_worker_once(&report, &workers, 2);
}

#[test]
fn workers_come_back_after_a_cancel() {
    let gate = common::Gate::default();
    let worker_gate = gate.clone();
    let started = Arc::new(AtomicUsize::new(0));
    let worker_started = Arc::clone(&started);
    let drops = Arc::new(AtomicUsize::new(0));
    let maker_drops = Arc::clone(&drops);
    let pool = Pool::builder()
        .workers(2)
        .batch_size(1)
        .keep_workers()
        .build_stateful(move |ctx: &Ctx| {
            let mut tally = Tally::new(ctx, &maker_drops, always_ok);
            let (gate, started) = (worker_gate.clone(), Arc::clone(&worker_started));
            move |ctx: &Ctx, item: u64| {
                started.fetch_add(1, SeqCst);
                gate.wait();
                tally.take(item)?;
                ctx.metrics().inc("taken");
                Ok::<_, std::io::Error>(())
            }
        })
        .unwrap();
    let sender = pool.sender();
    for item in 0..100 {
        sender.send(item).unwrap();
    }
    // Both workers hold an item; the rest is queued.
    common::wait_until(|| started.load(SeqCst) == 2);
    pool.cancel();
    gate.open();
    let (report, closures) = pool.join_with_workers();
    assert_eq!(report.processed(), 2);
    assert_eq!(report.dropped(), 98);
    assert!(report.is_balanced());
    // The closures (each with its tally) came back; dropping them drops the tallies.
    assert_eq!(closures.len(), 2);
    assert_eq!(drops.load(SeqCst), 0);
    drop(closures);
    assert_eq!(drops.load(SeqCst), 2);
}

#[test]
fn workers_come_back_after_finish_fails_or_panics() {
    common::quiet_deliberate_panics();
    /// Fails (even) or panics (odd) in `finish`.
    struct BadFinish(WorkerId, u64);
    impl Worker<u64> for BadFinish {
        type Error = std::io::Error;
        fn work(&mut self, _ctx: &Ctx, _item: u64) -> std::io::Result<()> {
            self.1 += 1;
            Ok(())
        }
        fn finish(&mut self, _ctx: &Ctx) -> std::io::Result<()> {
            if self.0.index().is_multiple_of(2) {
                return Err(std::io::Error::other("finish fails"));
            }
            panic!("deliberate panic in finish");
        }
    }
    let pool = Pool::builder()
        .workers(4)
        .continue_on_error()
        .keep_workers()
        .build_stateful(|ctx: &Ctx| BadFinish(ctx.worker_id(), 0))
        .unwrap();
    pool.submitter().submit_iter(0..1_000).unwrap();
    let (report, workers) = pool.join_with_workers();
    assert_eq!(report.processed(), 1_000);
    assert_eq!(report.error_total(), 4);
    let ids: Vec<usize> = workers.iter().map(|worker| worker.0.index()).collect();
    assert_eq!(ids, [0, 1, 2, 3]);
    assert_eq!(workers.iter().map(|worker| worker.1).sum::<u64>(), 1_000);
}

#[test]
fn batch_workers_come_back() {
    common::quiet_deliberate_panics();
    fn flaky(item: u64) -> Outcome {
        if item % 100 == 99 {
            Outcome::Panic
        } else {
            Outcome::Ok
        }
    }
    for fail in [false, true] {
        let drops = Arc::new(AtomicUsize::new(0));
        let maker_drops = Arc::clone(&drops);
        let rule = if fail { flaky } else { always_ok };
        let pool = Pool::builder()
            .workers(3)
            .batch_size(10)
            .continue_on_error()
            .thread_name("keep-batch")
            .keep_workers()
            .build_batch_stateful(move |ctx: &Ctx| Tally::new(ctx, &maker_drops, rule))
            .unwrap();
        pool.submitter().submit_iter(0..1_000).unwrap();
        let (report, workers) = pool.join_with_workers();
        assert_eq!(threads::live_threads_named("keep-batch").unwrap_or(0), 0);
        let ids: Vec<usize> = workers.iter().map(|tally| tally.worker.index()).collect();
        assert_eq!(ids, [0, 1, 2]);
        assert!(workers.iter().all(|tally| tally.finished == 1));
        // A batch that panicked counts all its items as failed; the tallies
        // saw every item up to the panic.
        let seen: usize = workers.iter().map(|tally| tally.items.len()).sum();
        if fail {
            assert!(report.failed() > 0);
        } else {
            assert_eq!(seen, 1_000);
            assert_eq!(report.processed(), 1_000);
        }
        assert!(report.is_balanced());
        drop(workers);
        assert_eq!(drops.load(SeqCst), 3);
    }
}

#[test]
fn fallible_makers_keep_their_workers_too() {
    let drops = Arc::new(AtomicUsize::new(0));
    let build = |fail: bool| {
        let drops = Arc::clone(&drops);
        Pool::builder()
            .workers(3)
            .thread_name("keep-try")
            .keep_workers()
            .try_build_stateful(move |ctx: &Ctx| {
                if fail && ctx.worker_id().index() == 1 {
                    return Err("worker #1 cannot start");
                }
                Ok(Tally::new(ctx, &drops, always_ok))
            })
    };
    let error = build(true).expect_err("worker #1's maker fails");
    assert!(
        matches!(error, BuildError::Maker { worker, error: "worker #1 cannot start" } if worker.index() == 1)
    );
    assert_eq!(drops.load(SeqCst), 2, "the two workers made were dropped");
    assert_eq!(threads::live_threads_named("keep-try").unwrap_or(0), 0);

    drops.store(0, SeqCst);
    let pool = build(false).unwrap();
    pool.submitter().submit_iter(0..300).unwrap();
    let (report, workers) = pool.wait_with_workers().unwrap();
    assert_every_worker_once(&report, &workers, 3);

    // And in batch pools.
    let maker_drops = Arc::clone(&drops);
    let pool = Pool::builder()
        .workers(2)
        .keep_workers()
        .try_build_batch_stateful(move |ctx: &Ctx| {
            Ok::<_, std::io::Error>(Tally::new(ctx, &maker_drops, always_ok))
        })
        .unwrap();
    pool.submitter().submit_iter(0..300).unwrap();
    let (report, workers) = pool.wait_with_workers().unwrap();
    assert_every_worker_once(&report, &workers, 2);
}

#[test]
fn layered_workers_come_back_from_inside_the_layers() {
    let drops = Arc::new(AtomicUsize::new(0));
    let maker_drops = Arc::clone(&drops);
    let pool = Pool::builder()
        .workers(2)
        .layer(layer_fn(
            |mut next: pool_core::Next<'_, u64>, ctx: &Ctx, item: u64| {
                ctx.metrics().inc("outer");
                next.work(ctx, item)
            },
        ))
        .layer(layer_fn(
            |mut next: pool_core::Next<'_, u64>, ctx: &Ctx, item: u64| {
                ctx.metrics().inc("inner");
                next.work(ctx, item)
            },
        ))
        .keep_workers()
        .build_stateful(move |ctx: &Ctx| Tally::new(ctx, &maker_drops, always_ok))
        .unwrap();
    pool.submitter().submit_iter(0..500).unwrap();
    let (report, workers) = pool.wait_with_workers().unwrap();
    assert_eq!(report.stats().counters.get("outer"), 500);
    assert_eq!(report.stats().counters.get("inner"), 500);
    assert_every_worker_once(&report, &workers, 2);
}

#[test]
fn keep_state_runs_on_the_worker_thread_after_finish_and_before_on_worker_done() {
    /// Not `Send`: it can only come back as what it gathered.
    struct Local {
        seen: Rc<std::cell::Cell<u64>>,
        finished: bool,
    }
    impl Worker<u64> for Local {
        type Error = std::convert::Infallible;
        fn work(&mut self, _ctx: &Ctx, _item: u64) -> Result<(), Self::Error> {
            self.seen.set(self.seen.get() + 1);
            Ok(())
        }
        fn finish(&mut self, _ctx: &Ctx) -> Result<(), Self::Error> {
            self.finished = true;
            Ok(())
        }
    }
    let events = Arc::new(Mutex::new(Vec::new()));
    let (keep_events, done_events) = (Arc::clone(&events), Arc::clone(&events));
    let pool = Pool::builder()
        .workers(3)
        .thread_name("keep-state")
        .on_worker_done(move |id, _counts| {
            done_events.lock().unwrap().push(format!("done {id}"));
        })
        .keep_state(move |ctx: &Ctx, local: Local| {
            assert!(local.finished, "kept after finish");
            let thread = std::thread::current().name().unwrap_or("").to_owned();
            assert_eq!(thread, format!("keep-state-{}", ctx.worker_id().index()));
            keep_events
                .lock()
                .unwrap()
                .push(format!("keep {}", ctx.worker_id()));
            (ctx.worker_id(), local.seen.get(), ctx.counts().processed)
        })
        .build_stateful(|_ctx: &Ctx| Local {
            seen: Rc::new(std::cell::Cell::new(0)),
            finished: false,
        })
        .unwrap();
    pool.submitter().submit_iter(0..999).unwrap();
    let (report, states) = pool.wait_with_workers().unwrap();
    assert_eq!(states.len(), 3);
    for (index, (id, seen, processed)) in states.iter().enumerate() {
        assert_eq!(id.index(), index);
        assert_eq!(seen, processed);
    }
    assert_eq!(
        states.iter().map(|state| state.1).sum::<u64>(),
        report.processed()
    );
    let events = events.lock().unwrap();
    for id in 0..3 {
        let keep = events
            .iter()
            .position(|event| *event == format!("keep #{id}"));
        let done = events
            .iter()
            .position(|event| *event == format!("done #{id}"));
        assert!(keep.unwrap() < done.unwrap(), "{events:?}");
    }
}

#[test]
fn a_panicking_keep_function_loses_only_its_workers_state() {
    common::quiet_deliberate_panics();
    let pool = Pool::builder()
        .workers(3)
        .continue_on_error()
        .keep_state(
            |ctx: &Ctx, _worker: fn(&Ctx, u64) -> Result<(), std::io::Error>| {
                if ctx.worker_id().index() == 1 {
                    panic!("deliberate panic in keep");
                }
                ctx.worker_id()
            },
        )
        .build_stateful(
            |_ctx: &Ctx| -> fn(&Ctx, u64) -> Result<(), std::io::Error> { |_ctx, _item| Ok(()) },
        )
        .unwrap();
    pool.submitter().submit_iter(0..30).unwrap();
    let (report, states) = pool.join_with_workers();
    assert_eq!(
        states.iter().map(|id| id.index()).collect::<Vec<_>>(),
        [0, 2]
    );
    assert!(matches!(
        report.errors(),
        [PoolError::Panicked { site: PanicSite::Callback, worker: Some(worker), .. }] if worker.index() == 1
    ));
}

#[test]
fn a_worker_whose_maker_panicked_leaves_nothing() {
    common::quiet_deliberate_panics();
    type Work = fn(&Ctx, u64) -> Result<(), std::io::Error>;
    let pool = Pool::builder()
        .workers(3)
        .keep_workers()
        .build_stateful(|ctx: &Ctx| -> Work {
            if ctx.worker_id().index() == 0 {
                panic!("deliberate maker panic");
            }
            |_ctx, _item| Ok(())
        })
        .unwrap();
    let (report, states) = pool.join_with_workers();
    assert_eq!(states.len(), 2);
    assert!(report.was_cancelled());
}

#[test]
fn a_pool_that_keeps_nothing_hands_back_nothing() {
    let pool = Pool::builder()
        .workers(2)
        .build(|_ctx: &Ctx, _n: u64| Ok::<(), std::io::Error>(()))
        .unwrap();
    pool.submitter().submit_iter(0..10).unwrap();
    let (report, states) = pool.join_with_workers();
    assert_eq!(report.processed(), 10);
    assert!(states.is_empty());
}

#[test]
fn kept_pools_built_and_dropped_leave_no_thread_and_drop_every_worker() {
    let drops = Arc::new(AtomicUsize::new(0));
    for round in 0..200 {
        let maker_drops = Arc::clone(&drops);
        let pool = Pool::builder()
            .workers(1 + round % 3)
            .thread_name("keep-loop")
            .keep_workers()
            .build_stateful(move |ctx: &Ctx| Tally::new(ctx, &maker_drops, always_ok))
            .unwrap();
        pool.submitter().submit_iter(0..10).unwrap();
        if round % 2 == 0 {
            drop(pool); // the kept workers are dropped with it
        } else {
            let (_report, workers) = pool.join_with_workers();
            assert_eq!(workers.len(), 1 + round % 3);
        }
        assert_eq!(threads::live_threads_named("keep-loop").unwrap_or(0), 0);
    }
    let made: usize = (0..200).map(|round| 1 + round % 3).sum();
    assert_eq!(drops.load(SeqCst), made);
}
