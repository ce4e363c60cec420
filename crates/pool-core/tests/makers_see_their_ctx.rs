//! A maker gets its worker's `Ctx`, the one the worker's calls get: its id,
//! the pool's token, and its metrics shard, so counter handles are resolved
//! once at construction. In every kind of stateful build.
#![allow(clippy::unwrap_used)] // Tests may unwrap: a panic is a test failure.

use std::sync::{Arc, Mutex};

use pool_core::{BatchWorker, CallWorker, CancelToken, Counter, Ctx, Pool, Worker, WorkerId};

/// Counts its items into a handle resolved by its maker, and checks that its
/// calls see the id its maker saw.
struct Counting {
    made_as: WorkerId,
    items: Counter,
}

impl Counting {
    fn new(ctx: &Ctx, makers: &Mutex<Vec<WorkerId>>) -> Self {
        makers.lock().unwrap().push(ctx.worker_id());
        Counting {
            made_as: ctx.worker_id(),
            items: ctx.metrics().counter("items"),
        }
    }
}

impl Worker<u64> for Counting {
    type Error = std::convert::Infallible;
    fn work(&mut self, ctx: &Ctx, _item: u64) -> Result<(), Self::Error> {
        assert_eq!(ctx.worker_id(), self.made_as);
        self.items.inc();
        Ok(())
    }
}

impl BatchWorker<u64> for Counting {
    type Error = std::convert::Infallible;
    fn work_batch(&mut self, ctx: &Ctx, batch: &mut Vec<u64>) -> Result<(), Self::Error> {
        assert_eq!(ctx.worker_id(), self.made_as);
        self.items.add(batch.len() as u64);
        Ok(())
    }
}

impl CallWorker<u64> for Counting {
    type Output = WorkerId;
    type Error = std::convert::Infallible;
    fn call(&mut self, ctx: &Ctx, _item: u64) -> Result<WorkerId, Self::Error> {
        assert_eq!(ctx.worker_id(), self.made_as);
        self.items.inc();
        Ok(self.made_as)
    }
}

/// Each worker's maker ran once, with its own id.
fn assert_one_maker_per_worker(makers: &Mutex<Vec<WorkerId>>, n_workers: usize) {
    let mut ids: Vec<usize> = makers.lock().unwrap().iter().map(|id| id.index()).collect();
    ids.sort_unstable();
    assert_eq!(ids, (0..n_workers).collect::<Vec<_>>());
}

#[test]
fn a_counter_resolved_by_the_maker_counts_into_the_report() {
    const N: u64 = 10_000;
    let makers = Arc::new(Mutex::new(Vec::new()));
    let maker_makers = Arc::clone(&makers);
    let pool = Pool::builder()
        .workers(4)
        .build_stateful(move |ctx: &Ctx| Counting::new(ctx, &maker_makers))
        .unwrap();
    pool.submitter().submit_iter(0..N).unwrap();
    let report = pool.wait().unwrap();
    assert_eq!(report.stats().counters.get("items"), N);
    assert_one_maker_per_worker(&makers, 4);
}

#[test]
fn the_counter_is_the_workers_own_shard() {
    // Per worker: the counter a worker resolved counts exactly its items.
    let pool = Pool::builder()
        .workers(3)
        .keep_state(|ctx: &Ctx, counting: Counting| {
            (
                ctx.worker_id(),
                counting.items.get(),
                ctx.counts().processed,
            )
        })
        .build_stateful(|ctx: &Ctx| Counting::new(ctx, &Mutex::new(Vec::new())))
        .unwrap();
    pool.submitter().submit_iter(0..3_000).unwrap();
    let (report, states) = pool.wait_with_workers().unwrap();
    assert_eq!(states.len(), 3);
    for (id, counted, processed) in states {
        assert_eq!(counted, processed, "worker {id}");
        assert_eq!(processed, report.workers()[id.index()].counts.processed);
    }
}

#[test]
fn batch_and_call_makers_see_their_ctx_too() {
    let makers = Arc::new(Mutex::new(Vec::new()));
    let maker_makers = Arc::clone(&makers);
    let pool = Pool::builder()
        .workers(2)
        .batch_size(7)
        .build_batch_stateful(move |ctx: &Ctx| Counting::new(ctx, &maker_makers))
        .unwrap();
    pool.submitter().submit_iter(0..1_000).unwrap();
    assert_eq!(pool.wait().unwrap().stats().counters.get("items"), 1_000);
    assert_one_maker_per_worker(&makers, 2);

    let makers = Arc::new(Mutex::new(Vec::new()));
    let maker_makers = Arc::clone(&makers);
    let pool = Pool::builder()
        .workers(3)
        .build_call_stateful(move |ctx: &Ctx| Counting::new(ctx, &maker_makers))
        .unwrap();
    let handles: Vec<_> = (0..300).map(|n| pool.call(n).unwrap()).collect();
    for handle in handles {
        assert!(handle.wait().unwrap().index() < 3);
    }
    assert_eq!(pool.wait().unwrap().stats().counters.get("items"), 300);
    assert_one_maker_per_worker(&makers, 3);
}

#[test]
fn fallible_makers_see_their_ctx_too() {
    let makers = Arc::new(Mutex::new(Vec::new()));
    let maker_makers = Arc::clone(&makers);
    let pool = Pool::builder()
        .workers(3)
        .try_build_stateful(move |ctx: &Ctx| {
            Ok::<_, std::io::Error>(Counting::new(ctx, &maker_makers))
        })
        .unwrap();
    pool.submitter().submit_iter(0..500).unwrap();
    assert_eq!(pool.wait().unwrap().stats().counters.get("items"), 500);
    assert_one_maker_per_worker(&makers, 3);
}

#[test]
fn the_makers_token_is_the_pools() {
    let parent = CancelToken::new();
    let tokens = Arc::new(Mutex::new(Vec::new()));
    let maker_tokens = Arc::clone(&tokens);
    let pool = Pool::builder()
        .workers(2)
        .cancel_token(parent.clone())
        .try_build_stateful(move |ctx: &Ctx| {
            assert!(!ctx.is_cancelled());
            maker_tokens.lock().unwrap().push(ctx.token().clone());
            Ok::<_, std::io::Error>(|_ctx: &Ctx, _n: u64| Ok::<(), std::io::Error>(()))
        })
        .unwrap();
    // The build waited for the makers, so both tokens are here.
    let tokens = tokens.lock().unwrap().clone();
    assert_eq!(tokens.len(), 2);
    assert!(tokens.iter().all(|token| !token.is_cancelled()));
    parent.cancel();
    assert!(tokens.iter().all(CancelToken::is_cancelled));
    assert!(pool.token().is_cancelled());
    assert!(pool.join().was_cancelled());
}
