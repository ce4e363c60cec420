//! Key affinity (`Builder::chunk_by`): each key's items are processed by one
//! worker only, the one `Pool::worker_for` names, in submission order per
//! producer; hot keys are processed in full and show in the report; keyed
//! submitters never wait on room their own buffered batches hold.
#![allow(clippy::unwrap_used)] // Tests may unwrap: a panic is a test failure.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};

use pool_core::{Ctx, Pool, TrySubmitError, Worker, WorkerId};
use rstest::rstest;

const N_KEYS: u32 = 1_024;

/// An item of the order test: which producer sent it, its key and its place in
/// that producer's sequence.
#[derive(Debug, Clone, Copy)]
struct Item {
    producer: u32,
    key: u32,
    seq: u64,
}

/// Checks, per item, that its key has only ever been seen by this worker, that
/// this is the worker the pool names for it, and that it comes after the
/// previous item of the same key and producer.
struct OrderChecker {
    me: WorkerId,
    /// For each key, 1 + the index of the first worker that saw it (0: unseen).
    owners: Arc<Vec<AtomicUsize>>,
    /// The last sequence number seen per (producer, key).
    last: Vec<Option<u64>>,
    /// Built like the pool's router: the same key must give the same worker.
    router: pool_chunk::Router,
}

impl Worker<Item> for OrderChecker {
    type Error = String;

    fn work(&mut self, _ctx: &Ctx, item: Item) -> Result<(), String> {
        let owner = &self.owners[item.key as usize];
        let me = self.me.index() + 1;
        if let Err(other) = owner.compare_exchange(0, me, SeqCst, SeqCst)
            && other != me
        {
            return Err(format!(
                "key {} seen by workers {} and {}",
                item.key,
                other - 1,
                me - 1
            ));
        }
        if self.router.route(&item.key) != self.me.index() {
            return Err(format!("{item:?} reached {} but routes elsewhere", self.me));
        }
        let slot = &mut self.last[(item.producer * N_KEYS + item.key) as usize];
        if slot.is_some_and(|last| last >= item.seq) {
            return Err(format!("{item:?} came after seq {slot:?}"));
        }
        *slot = Some(item.seq);
        Ok(())
    }
}

#[derive(Debug, Clone, Copy)]
enum Handle {
    Submitter,
    Sender,
}

fn run_order_test(n_producers: u32, batch_size: usize, handle: Handle, n_items: u64) {
    let owners: Arc<Vec<AtomicUsize>> =
        Arc::new((0..N_KEYS).map(|_| AtomicUsize::new(0)).collect());
    let pool = Pool::builder()
        .workers(4)
        .batch_size(batch_size)
        .continue_on_error()
        .error_limit(10)
        .chunk_by(|item: &Item| item.key)
        .build_stateful({
            let owners = Arc::clone(&owners);
            move |ctx: &Ctx| OrderChecker {
                me: ctx.worker_id(),
                owners: Arc::clone(&owners),
                last: vec![None; (n_producers * N_KEYS) as usize],
                router: pool_chunk::Router::with_buckets(4).unwrap(),
            }
        })
        .unwrap();
    let per_producer = n_items / u64::from(n_producers);
    std::thread::scope(|scope| {
        for producer in 0..n_producers {
            let pool = &pool;
            scope.spawn(move || {
                let mut submitter = pool.submitter();
                let sender = pool.sender();
                for seq in 0..per_producer {
                    // Spread each producer's keys in a different pattern.
                    let key = ((seq * 7_919 + u64::from(producer) * 31) % u64::from(N_KEYS)) as u32;
                    let item = Item { producer, key, seq };
                    match handle {
                        Handle::Submitter => submitter.submit(item).unwrap(),
                        Handle::Sender => sender.send(item).unwrap(),
                    }
                }
            });
        }
    });
    let report = pool.join();
    assert!(report.errors().is_empty(), "{:?}", report.errors());
    assert_eq!(report.failed(), 0);
    assert_eq!(report.processed(), per_producer * u64::from(n_producers));
    assert!(report.is_balanced(), "{report}");
    let seen = owners
        .iter()
        .filter(|owner| owner.load(SeqCst) != 0)
        .count();
    assert_eq!(seen, N_KEYS as usize, "every key was processed");
}

#[rstest]
fn each_key_is_seen_by_one_worker_in_submission_order(
    #[values(1, 4)] n_producers: u32,
    #[values(1, 64, 100)] batch_size: usize,
) {
    run_order_test(n_producers, batch_size, Handle::Submitter, 1_000_000);
}

#[rstest]
fn senders_keep_per_key_order_too(#[values(1, 4)] n_producers: u32) {
    run_order_test(n_producers, 64, Handle::Sender, 1_000_000);
}

#[test]
fn a_hot_key_is_processed_in_full_and_shows_in_the_report() {
    let n_items = 200_000u64;
    let pool = Pool::builder()
        .workers(4)
        .chunk_by(|n: &u64| {
            if n.is_multiple_of(2) {
                0
            } else {
                n % 1_000 + 1
            }
        })
        .build(|_ctx: &Ctx, _n: u64| Ok::<(), std::io::Error>(()))
        .unwrap();
    let hot = pool.worker_for(&0).unwrap();
    let mut submitter = pool.submitter();
    for n in 0..n_items {
        submitter.submit(n).unwrap();
    }
    drop(submitter);
    let report = pool.wait().unwrap();
    assert_eq!(report.processed(), n_items);
    assert!(report.is_balanced());
    let hot_items = report.workers()[hot.index()].counts.items();
    // Half the items have key 0; a share of the other keys lands there too.
    assert!(hot_items >= n_items / 2, "{hot_items}");
    let total: u64 = report.workers().iter().map(|w| w.counts.items()).sum();
    assert_eq!(total, n_items);
    assert!(report.imbalance() >= 2.0, "{}", report.imbalance());
    assert!(report.to_string().contains("busiest worker at"), "{report}");
}

/// Each worker's keys, handed over by its `finish` hook.
type Caches = Arc<Mutex<Vec<(WorkerId, HashSet<u32>)>>>;

/// A stateful worker with a per-key cache; on `finish` it hands its keys over.
struct Cache {
    me: WorkerId,
    keys: HashSet<u32>,
    out: Caches,
}

impl Worker<u32> for Cache {
    type Error = std::convert::Infallible;

    fn work(&mut self, _ctx: &Ctx, key: u32) -> Result<(), Self::Error> {
        self.keys.insert(key);
        Ok(())
    }

    fn finish(&mut self, _ctx: &Ctx) -> Result<(), Self::Error> {
        let keys = std::mem::take(&mut self.keys);
        self.out.lock().unwrap().push((self.me, keys));
        Ok(())
    }
}

#[rstest]
fn stateful_workers_see_only_their_own_keys(#[values(1, 16)] batch_size: usize) {
    let out = Arc::new(Mutex::new(Vec::new()));
    let pool = Pool::builder()
        .workers(3)
        .batch_size(batch_size)
        .chunk_by(|key: &u32| *key)
        .build_stateful({
            let out = Arc::clone(&out);
            move |ctx: &Ctx| Cache {
                me: ctx.worker_id(),
                keys: HashSet::new(),
                out: Arc::clone(&out),
            }
        })
        .unwrap();
    let owner_of: Vec<WorkerId> = (0..500u32)
        .map(|key| pool.worker_for(&key).unwrap())
        .collect();
    let mut submitter = pool.submitter();
    for round in 0..20 {
        for key in 0..500u32 {
            submitter.submit((key * 7 + round) % 500).unwrap();
        }
    }
    drop(submitter);
    assert_eq!(pool.wait().unwrap().processed(), 10_000);
    let caches = out.lock().unwrap();
    assert_eq!(caches.len(), 3);
    let mut all = HashSet::new();
    for (worker, keys) in caches.iter() {
        for key in keys {
            assert_eq!(owner_of[*key as usize], *worker, "key {key}");
            assert!(all.insert(*key), "key {key} cached by two workers");
        }
    }
    assert_eq!(all.len(), 500);
    // Every worker got some keys: jump hashing spreads 500 keys over 3 workers.
    assert!(caches.iter().all(|(_, keys)| !keys.is_empty()));
}

#[test]
fn a_keyed_submitter_never_waits_on_its_own_buffered_batches() {
    // Room for exactly one batch, eight targets: the submitter's partly filled
    // batches take all the room long before any of them is full. It must push
    // them before it waits, or it waits forever.
    let pool = Pool::builder()
        .workers(8)
        .batch_size(16)
        .capacity(16)
        .chunk_by(|n: &u64| *n)
        .build(|_ctx: &Ctx, _n: u64| Ok::<(), std::io::Error>(()))
        .unwrap();
    let mut submitter = pool.submitter();
    for n in 0..10_000 {
        submitter.submit(n).unwrap();
    }
    drop(submitter);
    let report = pool.wait().unwrap();
    assert_eq!(report.processed(), 10_000);
}

#[test]
fn try_submit_on_a_full_keyed_pool_pushes_what_it_holds() {
    let pool = Pool::builder()
        .workers(4)
        .batch_size(8)
        .capacity(8)
        .chunk_by(|n: &u64| *n)
        .build(|_ctx: &Ctx, _n: u64| Ok::<(), std::io::Error>(()))
        .unwrap();
    let mut submitter = pool.submitter();
    for n in 0..2_000 {
        let mut item = n;
        loop {
            match submitter.try_submit(item) {
                Ok(()) => break,
                Err(TrySubmitError::Full(back)) => {
                    assert_eq!(back, n);
                    // Refused for room, the submitter has pushed its buffered
                    // items: they are what holds the room.
                    assert_eq!(submitter.buffered(), 0);
                    item = back;
                    std::thread::yield_now();
                }
                Err(other) => panic!("unexpected {other:?}"),
            }
        }
    }
    drop(submitter);
    let report = pool.wait().unwrap();
    assert_eq!(report.processed(), 2_000);
    assert!(report.is_balanced());
}

#[test]
fn unkeyed_pools_name_no_worker() {
    let pool = Pool::builder()
        .workers(2)
        .build(|_ctx: &Ctx, _n: u64| Ok::<(), std::io::Error>(()))
        .unwrap();
    assert!(!pool.is_keyed());
    assert_eq!(pool.worker_for(&1), None);
    let keyed = Pool::builder()
        .workers(2)
        .chunk_by(|n: &u64| *n)
        .build(|_ctx: &Ctx, _n: u64| Ok::<(), std::io::Error>(()))
        .unwrap();
    assert!(keyed.is_keyed());
    let router = pool_chunk::Router::new(2).unwrap();
    for n in 0..100u64 {
        assert_eq!(
            keyed.worker_for(&n).map(WorkerId::index),
            Some(router.route(&n))
        );
    }
}
