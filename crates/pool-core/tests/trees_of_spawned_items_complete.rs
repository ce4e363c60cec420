//! Tree-shaped work: workers add items to their own pool with `Ctx::spawn`,
//! which never waits for room, so a tree completes at any capacity; `wait`
//! returns when the whole tree is done (a close stops producers outside the
//! pool, not the tree); a cancel mid-tree drops and counts what was queued,
//! and refuses later spawns with the item handed back.
#![allow(clippy::unwrap_used)] // Tests may unwrap: a panic is a test failure.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex};

use common::{Gate, Routing};
use pool_core::{Ctx, Pool, SpawnError, TrySpawnError, Worker};
use rstest::rstest;

/// The children of node `id` in a complete tree of `n` nodes with `fan_out`
/// children per node (breadth-first numbering): `fan_out * id + 1 ..`.
fn children(id: u64, fan_out: u64, n: u64) -> impl Iterator<Item = u64> {
    (1..=fan_out)
        .map(move |k| fan_out * id + k)
        .filter(move |&child| child < n)
}

#[rstest]
fn a_worker_spawning_into_its_own_pool_at_capacity_one_with_one_worker_finishes(
    #[values(Routing::Stealing, Routing::Keyed)] routing: Routing,
) {
    let n = 8_191; // a binary tree of depth 13
    let builder = Pool::builder().workers(1).capacity(1).batch_size(1);
    let pool = common::route(builder, routing, |id: &u64| *id % 5)
        .build(move |ctx: &Ctx, id: u64| {
            for child in children(id, 2, n) {
                ctx.spawn(child)?;
            }
            Ok::<(), SpawnError<u64>>(())
        })
        .unwrap();
    pool.sender().send(0).unwrap();
    let report = pool.wait().unwrap();
    assert_eq!(report.processed(), n);
    assert_eq!((report.submitted(), report.spawned()), (n, n - 1));
    assert!(report.is_balanced());
}

#[test]
fn a_million_items_grown_from_one_root_are_each_processed_once() {
    let n = 1_000_000;
    let ids = Arc::new(AtomicU64::new(0));
    let seen = Arc::clone(&ids);
    let pool = Pool::builder()
        .workers(4)
        .build(move |ctx: &Ctx, id: u64| {
            seen.fetch_add(id, SeqCst);
            let spawner = ctx.spawner::<u64>().expect("a pool of u64 running an item");
            for child in children(id, 8, n) {
                spawner.spawn(child)?;
            }
            Ok::<(), SpawnError<u64>>(())
        })
        .unwrap();
    pool.sender().send(0).unwrap();
    // Closes at once: the tree still completes.
    let report = pool.wait().unwrap();
    assert_eq!(report.processed(), n);
    assert_eq!((report.submitted(), report.spawned()), (n, n - 1));
    assert!(report.is_balanced());
    // Every id once: their sum is 0 + 1 + ... + (n - 1).
    assert_eq!(ids.load(SeqCst), n * (n - 1) / 2);
}

#[test]
fn a_keyed_tree_is_processed_once_per_item_on_its_keys_worker() {
    let n = 100_000;
    let ids = Arc::new(AtomicU64::new(0));
    let seen = Arc::clone(&ids);
    let pool = Pool::builder()
        .workers(3)
        .chunk_by(|id: &u64| *id % 7)
        .build(move |ctx: &Ctx, id: u64| {
            seen.fetch_add(id, SeqCst);
            for child in children(id, 4, n) {
                ctx.spawn(child)?;
            }
            Ok::<(), SpawnError<u64>>(())
        })
        .unwrap();
    let owners: Vec<_> = (0..7u64).map(|key| pool.worker_for(&key)).collect();
    pool.sender().send(0).unwrap();
    let report = pool.wait().unwrap();
    assert_eq!(report.processed(), n);
    assert_eq!(ids.load(SeqCst), n * (n - 1) / 2);
    // Each worker processed exactly the items of its keys.
    for worker in report.workers() {
        let expected = (0..n)
            .filter(|id| owners[(id % 7) as usize] == Some(worker.worker))
            .count() as u64;
        assert_eq!(worker.counts.processed, expected);
    }
}

#[test]
fn the_items_one_worker_spawns_for_a_key_are_processed_in_that_order() {
    /// Checks that each key's sequence numbers arrive in increasing order.
    struct InOrder(HashMap<u32, u32>);
    impl Worker<(u32, u32)> for InOrder {
        type Error = anyhow::Error;
        fn work(&mut self, ctx: &Ctx, (key, seq): (u32, u32)) -> anyhow::Result<()> {
            if key == u32::MAX {
                // The root: 3,000 items, interleaving five keys.
                for seq in 0..3_000u32 {
                    ctx.spawn((seq % 5, seq))?;
                }
                return Ok(());
            }
            let last = self.0.insert(key, seq);
            anyhow::ensure!(last < Some(seq), "key {key}: {seq} after {last:?}");
            Ok(())
        }
    }
    let pool = Pool::builder()
        .workers(3)
        .chunk_by(|&(key, _): &(u32, u32)| key)
        .build_stateful(|_id| InOrder(HashMap::new()))
        .unwrap();
    pool.sender().send((u32::MAX, 0)).unwrap();
    assert_eq!(pool.wait().unwrap().processed(), 3_001);
}

#[rstest]
fn a_tree_started_before_the_close_completes_after_it(
    #[values(Routing::Stealing, Routing::Keyed)] routing: Routing,
) {
    let n = 10_000;
    let gate = Gate::default();
    let root_waits = gate.clone();
    let builder = Pool::builder().workers(2).capacity(4).batch_size(1);
    let pool = common::route(builder, routing, |id: &u64| *id % 11)
        .build(move |ctx: &Ctx, id: u64| {
            if id == 0 {
                root_waits.wait(); // until the pool is closed
            }
            for child in children(id, 3, n) {
                ctx.spawn(child)?;
            }
            Ok::<(), SpawnError<u64>>(())
        })
        .unwrap();
    pool.sender().send(0).unwrap();
    pool.close();
    assert!(pool.is_closed());
    gate.open();
    let report = pool.wait().unwrap();
    assert_eq!(report.processed(), n);
    assert!(report.is_balanced());
}

#[rstest]
fn a_cancel_mid_tree_drops_and_counts_what_is_queued_and_refuses_later_spawns(
    #[values(Routing::Stealing, Routing::Keyed)] routing: Routing,
) {
    let n = 200_000;
    let processed = Arc::new(Mutex::new(Vec::new()));
    let refused = Arc::new(Mutex::new(Vec::new()));
    let dropped = Arc::new(Mutex::new(Vec::new()));
    let builder = Pool::builder().workers(3);
    let pool = common::route(builder, routing, |id: &u64| *id % 13)
        .on_dropped({
            let dropped = Arc::clone(&dropped);
            move |id: u64| dropped.lock().unwrap().push(id)
        })
        .build({
            let (processed, refused) = (Arc::clone(&processed), Arc::clone(&refused));
            move |ctx: &Ctx, id: u64| {
                processed.lock().unwrap().push(id);
                if id == 5_000 {
                    ctx.token().cancel();
                }
                for child in children(id, 4, n) {
                    match ctx.spawn(child) {
                        Ok(()) => {}
                        Err(SpawnError::Cancelled(child)) => refused.lock().unwrap().push(child),
                        Err(other) => panic!("unexpected {other}"),
                    }
                }
                Ok::<(), std::convert::Infallible>(())
            }
        })
        .unwrap();
    pool.sender().send(0).unwrap();
    let report = pool.join();
    assert!(report.was_cancelled());
    assert!(report.is_balanced());
    let (processed, refused, dropped) = (
        processed.lock().unwrap().clone(),
        refused.lock().unwrap().clone(),
        dropped.lock().unwrap().clone(),
    );
    assert_eq!(report.processed(), processed.len() as u64);
    assert_eq!(report.dropped(), dropped.len() as u64);
    assert_eq!(report.submitted(), report.spawned() + 1);
    assert!(processed.len() < n as usize, "the cancel stopped the tree");
    // Every child of a processed item was spawned (then processed or
    // dropped) or refused, exactly once; and nothing else was.
    let mut expected: Vec<u64> = processed
        .iter()
        .flat_map(|&id| children(id, 4, n))
        .chain([0])
        .collect();
    let mut accounted: Vec<u64> = processed
        .iter()
        .chain(&dropped)
        .chain(&refused)
        .copied()
        .collect();
    expected.sort_unstable();
    accounted.sort_unstable();
    assert_eq!(accounted, expected);
}

#[rstest]
fn try_spawn_says_full_when_the_pool_is_and_hands_the_item_back(
    #[values(Routing::Stealing, Routing::Keyed)] routing: Routing,
) {
    let builder = Pool::builder().workers(1).capacity(1).batch_size(1);
    let pool = common::route(builder, routing, |id: &u64| *id)
        .build(|ctx: &Ctx, id: u64| {
            if id == 0 {
                // This item holds the only unit of room.
                match ctx.try_spawn(1u64) {
                    Err(TrySpawnError::Full(1)) => {}
                    other => panic!("expected Full(1), got {other:?}"),
                }
            }
            Ok::<(), std::convert::Infallible>(())
        })
        .unwrap();
    pool.sender().send(0).unwrap();
    let report = pool.wait().unwrap();
    assert_eq!((report.processed(), report.spawned()), (1, 0));
}

#[test]
fn try_spawn_takes_room_that_is_free() {
    let n = 1_000;
    let pool = Pool::builder()
        .workers(2)
        .capacity(n as usize)
        .batch_size(1)
        .build(move |ctx: &Ctx, id: u64| -> anyhow::Result<()> {
            // Room for the whole tree: never full.
            for child in children(id, 2, n) {
                ctx.try_spawn(child)
                    .map_err(|error| anyhow::anyhow!("{error}"))?;
            }
            Ok(())
        })
        .unwrap();
    pool.sender().send(0).unwrap();
    let report = pool.wait().unwrap();
    assert_eq!(report.processed(), n);
}

#[test]
fn a_spawn_is_unavailable_for_another_item_type_and_outside_an_item() {
    /// Tries to spawn from `finish`, where no item is held.
    struct SpawnsAtTheEnd(Arc<Mutex<Vec<String>>>);
    impl Worker<u64> for SpawnsAtTheEnd {
        type Error = std::convert::Infallible;
        fn work(&mut self, ctx: &Ctx, _id: u64) -> Result<(), Self::Error> {
            assert!(ctx.spawner::<u64>().is_some());
            assert!(ctx.spawner::<String>().is_none());
            let refused = ctx.spawn("not a u64".to_owned());
            assert!(matches!(refused, Err(SpawnError::Unavailable(_))));
            self.0
                .lock()
                .unwrap()
                .push(refused.unwrap_err().into_inner());
            Ok(())
        }
        fn finish(&mut self, ctx: &Ctx) -> Result<(), Self::Error> {
            assert!(ctx.spawner::<u64>().is_none());
            assert!(matches!(ctx.spawn(7u64), Err(SpawnError::Unavailable(7))));
            assert!(matches!(
                ctx.try_spawn(7u64),
                Err(TrySpawnError::Unavailable(7))
            ));
            self.0.lock().unwrap().push("finish".to_owned());
            Ok(())
        }
    }
    let log = Arc::new(Mutex::new(Vec::new()));
    let pool = Pool::builder()
        .workers(1)
        .build_stateful({
            let log = Arc::clone(&log);
            move |_id| SpawnsAtTheEnd(Arc::clone(&log))
        })
        .unwrap();
    pool.sender().send(1).unwrap();
    let report = pool.wait().unwrap();
    assert_eq!((report.processed(), report.submitted()), (1, 1));
    assert_eq!(*log.lock().unwrap(), ["not a u64", "finish"]);
}

#[test]
fn items_spawned_from_a_helper_thread_during_the_call_complete() {
    let n = 20_000;
    let pool = Pool::builder()
        .workers(2)
        .build(move |ctx: &Ctx, id: u64| {
            // The `Ctx` is `Sync`: a helper thread of this call spawns the
            // children (into the shared queue, not this worker's deque).
            std::thread::scope(|scope| {
                scope
                    .spawn(|| {
                        for child in children(id, 2, n) {
                            ctx.spawn(child)?;
                        }
                        Ok::<(), SpawnError<u64>>(())
                    })
                    .join()
                    .unwrap()
            })
        })
        .unwrap();
    pool.sender().send(0).unwrap();
    let report = pool.wait().unwrap();
    assert_eq!(report.processed(), n);
    assert!(report.is_balanced());
}

#[rstest]
fn run_returns_when_the_trees_of_the_items_it_pulled_are_done(#[values(1, 16)] batch_size: usize) {
    let n_roots = 1_000u64;
    let per_root = 15; // a root and a binary tree of 14 more below it
    let done = Arc::new(AtomicU64::new(0));
    let count = Arc::clone(&done);
    let pool = Pool::builder()
        .workers(3)
        .batch_size(batch_size)
        .build(move |ctx: &Ctx, (root, id): (u64, u64)| {
            for child in children(id, 2, per_root) {
                ctx.spawn((root, child))?;
            }
            count.fetch_add(1, SeqCst);
            Ok::<(), SpawnError<(u64, u64)>>(())
        })
        .unwrap();
    let taken = pool.run((0..n_roots).map(|root| (root, 0))).unwrap();
    assert_eq!(taken, n_roots);
    // Every tree is done when `run` returns, not only the roots it pulled.
    assert_eq!(done.load(SeqCst), n_roots * per_root);
    let report = pool.wait().unwrap();
    assert_eq!(report.processed(), n_roots * per_root);
    assert_eq!(report.spawned(), n_roots * (per_root - 1));
    assert!(report.is_balanced());
}
