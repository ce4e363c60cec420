//! `Pool::set_workers`: a running pool grows and shrinks; new workers are
//! made by the maker and retired ones finish; the accounting and the report
//! cover every worker that ever ran; a keyed pool keeps each producer's
//! per-key order across every resize; under load (four producers, a thousand
//! resizes) every item is seen exactly once and no thread is left behind;
//! and the refusals are typed.
#![allow(clippy::unwrap_used)] // Tests may unwrap: a panic is a test failure.

#[path = "common/threads.rs"]
mod threads;

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex, mpsc};

use pool_core::{Ctx, Pool, ResizeError, Worker, WorkerId};
use rstest::rstest;

/// An item of the order tests: which producer sent it, its key, its place
/// in that producer's sequence, and an id unique in the run.
#[derive(Debug, Clone, Copy)]
struct Item {
    producer: usize,
    key: u32,
    seq: u64,
    id: usize,
}

/// What the workers of a run saw, shared by all of them.
struct Seen {
    /// How often each id was processed.
    times: Vec<AtomicU64>,
    /// The last sequence number per (producer, key), and how many items
    /// came after a later one of their producer and key.
    last: Mutex<Vec<Option<u64>>>,
    out_of_order: AtomicU64,
    n_keys: u32,
}

impl Seen {
    fn new(n_ids: usize, n_producers: usize, n_keys: u32) -> Arc<Self> {
        Arc::new(Seen {
            times: (0..n_ids).map(|_| AtomicU64::new(0)).collect(),
            last: Mutex::new(vec![None; n_producers * n_keys as usize]),
            out_of_order: AtomicU64::new(0),
            n_keys,
        })
    }

    fn record(&self, item: Item) {
        self.times[item.id].fetch_add(1, SeqCst);
        let slot = item.producer * self.n_keys as usize + item.key as usize;
        let mut last = self.last.lock().unwrap();
        if last[slot].is_some_and(|last| last >= item.seq) {
            self.out_of_order.fetch_add(1, SeqCst);
        }
        last[slot] = Some(item.seq);
    }

    fn each_seen_once(&self, n_ids: usize) -> bool {
        self.times[..n_ids]
            .iter()
            .all(|times| times.load(SeqCst) == 1)
    }
}

/// A worker that counts its items and is counted when made and finished.
struct Counting {
    items: u64,
    finished: Arc<AtomicUsize>,
}

impl Worker<u64> for Counting {
    type Error = std::convert::Infallible;

    fn work(&mut self, _ctx: &Ctx, _n: u64) -> Result<(), Self::Error> {
        self.items += 1;
        Ok(())
    }

    fn finish(&mut self, _ctx: &Ctx) -> Result<(), Self::Error> {
        self.finished.fetch_add(1, SeqCst);
        Ok(())
    }
}

#[rstest]
fn a_stateless_pool_grows_and_shrinks_and_counts_everything(#[values(false, true)] keyed: bool) {
    let builder = Pool::builder().workers(2).max_workers(6).batch_size(16);
    let work = |_ctx: &Ctx, n: u64| {
        std::hint::black_box(n);
        Ok::<(), std::io::Error>(())
    };
    let pool = if keyed {
        builder.chunk_by(|n: &u64| n % 97).build(work)
    } else {
        builder.build(work)
    }
    .unwrap();
    let mut submitter = pool.submitter();
    let mut next = 0;
    for n_workers in [6, 1, 3, 3, 5, 2] {
        submitter.submit_iter(next..next + 5_000).unwrap();
        next += 5_000;
        pool.set_workers(n_workers).unwrap();
        assert_eq!(pool.workers(), n_workers);
    }
    drop(submitter);
    let report = pool.wait().unwrap();
    assert_eq!(report.submitted(), next);
    assert_eq!(report.processed(), next);
    assert!(report.is_balanced());
    assert_eq!(report.workers().len(), 6, "every seat that had a worker");
    assert_eq!(
        report
            .workers()
            .iter()
            .map(|worker| worker.counts.processed)
            .sum::<u64>(),
        next
    );
}

#[test]
fn a_stateful_pool_makes_new_workers_and_finishes_retired_ones() {
    // The seats of the workers made so far, in the order they were made.
    let made = Arc::new(Mutex::new(Vec::new()));
    let finished = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(Mutex::new(Vec::new()));
    let pool = Pool::builder()
        .workers(2)
        .max_workers(5)
        .on_worker_done({
            let done = Arc::clone(&done);
            move |worker: WorkerId, _counts| done.lock().unwrap().push(worker.index())
        })
        .keep_workers()
        .build_stateful({
            let made = Arc::clone(&made);
            let finished = Arc::clone(&finished);
            move |ctx: &Ctx| {
                made.lock().unwrap().push(ctx.worker_id().index());
                Counting {
                    items: 0,
                    finished: Arc::clone(&finished),
                }
            }
        })
        .unwrap();
    let mut submitter = pool.submitter();
    submitter.submit_iter(0..1_000).unwrap();
    pool.set_workers(5).unwrap();
    // `set_workers` returns once the new makers ran (the first two run
    // on their own time: a build does not wait for its makers).
    let seats_made = |seat: usize| {
        made.lock()
            .unwrap()
            .iter()
            .filter(|&&made| made == seat)
            .count()
    };
    assert_eq!((seats_made(2), seats_made(3), seats_made(4)), (1, 1, 1));
    submitter.submit_iter(0..1_000).unwrap();
    pool.set_workers(2).unwrap();
    // ...and once the retired workers finished, left their state and ran
    // `on_worker_done`.
    assert_eq!(finished.load(SeqCst), 3);
    let mut retired = done.lock().unwrap().clone();
    retired.sort_unstable();
    assert_eq!(retired, [2, 3, 4]);
    submitter.submit_iter(0..1_000).unwrap();
    pool.set_workers(4).unwrap(); // seats 2 and 3 again
    assert_eq!((seats_made(2), seats_made(3), seats_made(4)), (2, 2, 1));
    drop(submitter);
    let (report, workers) = pool.join_with_workers();
    assert!(report.is_balanced());
    assert_eq!(report.processed(), 3_000);
    assert_eq!(made.lock().unwrap().len(), 7);
    assert_eq!(finished.load(SeqCst), 7);
    assert_eq!(done.lock().unwrap().len(), 7);
    // Every worker that ever ran comes back, retired ones included.
    assert_eq!(workers.len(), 7);
    assert_eq!(
        workers.iter().map(|worker| worker.items).sum::<u64>(),
        3_000
    );
    assert_eq!(report.workers().len(), 5);
}

#[rstest]
fn keyed_items_keep_their_order_across_resizes(#[values(1, 16)] batch_size: usize) {
    const N_KEYS: u32 = 64;
    const PER_ROUND: usize = 2_000;
    let sizes = [3, 8, 1, 5, 2, 7, 4, 8, 1, 6];
    let n_ids = PER_ROUND * (sizes.len() + 1);
    let seen = Seen::new(n_ids, 2, N_KEYS);
    let pool = Pool::builder()
        .workers(4)
        .max_workers(8)
        .batch_size(batch_size)
        .chunk_by(|item: &Item| item.key)
        .build({
            let seen = Arc::clone(&seen);
            move |_ctx: &Ctx, item: Item| {
                seen.record(item);
                Ok::<(), std::io::Error>(())
            }
        })
        .unwrap();
    // This thread resizes while its own submitter holds open batches, and
    // a sender on it sends too: neither waits for the other.
    let mut submitter = pool.submitter();
    let sender = pool.sender();
    let mut id = 0;
    let mut seq = [0_u64; 2];
    let mut submit_round = |submitter: &mut pool_core::Submitter<'_, Item>| {
        for n in 0..PER_ROUND {
            let producer = n % 2;
            let item = Item {
                producer,
                key: (n as u32 * 7) % N_KEYS,
                seq: seq[producer],
                id,
            };
            seq[producer] += 1;
            id += 1;
            if producer == 0 {
                submitter.submit(item).unwrap();
            } else {
                sender.send(item).unwrap();
            }
        }
    };
    for n_workers in sizes {
        submit_round(&mut submitter);
        pool.set_workers(n_workers).unwrap();
        assert_eq!(pool.workers(), n_workers);
    }
    submit_round(&mut submitter);
    drop(submitter);
    let report = pool.wait().unwrap();
    assert_eq!(report.processed(), n_ids as u64);
    assert_eq!(seen.out_of_order.load(SeqCst), 0, "per-key order broke");
    assert!(seen.each_seen_once(n_ids));
}

/// Runs four producers (three submitters and a sender) against a pool that
/// another thread resizes `N_RESIZES` times; checks the books, every item
/// once, per-key order (keyed), and that every thread was joined.
#[rstest]
fn four_producers_and_a_thousand_resizes(#[values(false, true)] keyed: bool) {
    const N_RESIZES: usize = 1_000;
    const N_PRODUCERS: usize = 4;
    const N_KEYS: u32 = 32;
    const MAX_PER_PRODUCER: usize = 1_000_000;
    let prefix = if keyed { "resize-k" } else { "resize-u" };
    let seen = Seen::new(N_PRODUCERS * MAX_PER_PRODUCER, N_PRODUCERS, N_KEYS);
    let started = Arc::new(AtomicUsize::new(0));
    let ended = Arc::new(AtomicUsize::new(0));
    let builder = Pool::builder()
        .workers(2)
        .max_workers(6)
        .batch_size(8)
        .thread_name(prefix)
        .on_worker_done({
            let ended = Arc::clone(&ended);
            move |_worker, _counts| {
                ended.fetch_add(1, SeqCst);
            }
        });
    let builder = if keyed {
        builder.chunk_by(|item: &Item| item.key)
    } else {
        builder
    };
    let pool = builder
        .build_stateful({
            let seen = Arc::clone(&seen);
            let started = Arc::clone(&started);
            move |_ctx: &Ctx| {
                started.fetch_add(1, SeqCst);
                let seen = Arc::clone(&seen);
                move |_ctx: &Ctx, item: Item| {
                    seen.record(item);
                    Ok::<(), std::io::Error>(())
                }
            }
        })
        .unwrap();
    let resizing = AtomicBool::new(true);
    let sent: Vec<usize> = std::thread::scope(|scope| {
        let producers: Vec<_> = (0..N_PRODUCERS)
            .map(|producer| {
                let (pool, resizing) = (&pool, &resizing);
                scope.spawn(move || {
                    let mut submitter = pool.submitter();
                    let sender = pool.sender();
                    let mut n = 0;
                    while resizing.load(SeqCst) && n < MAX_PER_PRODUCER {
                        let item = Item {
                            producer,
                            key: (n as u32).wrapping_mul(2_654_435_761) % N_KEYS,
                            seq: n as u64,
                            id: producer * MAX_PER_PRODUCER + n,
                        };
                        if producer == 3 {
                            sender.send(item).unwrap();
                        } else {
                            submitter.submit(item).unwrap();
                        }
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        // A fixed sequence of sizes from an LCG, up and down.
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..N_RESIZES {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            let n_workers = 1 + (state >> 33) as usize % 6;
            pool.set_workers(n_workers).unwrap();
            assert_eq!(pool.workers(), n_workers);
        }
        resizing.store(false, SeqCst);
        producers
            .into_iter()
            .map(|producer| producer.join().unwrap())
            .collect()
    });
    let report = pool.wait().unwrap();
    let total: usize = sent.iter().sum();
    assert!(report.is_balanced());
    assert_eq!(report.submitted(), total as u64);
    assert_eq!(report.processed(), total as u64);
    if keyed {
        // Unkeyed pools promise no order: items are stolen.
        assert_eq!(seen.out_of_order.load(SeqCst), 0, "per-key order broke");
    }
    for (producer, &n) in sent.iter().enumerate() {
        let ids = &seen.times[producer * MAX_PER_PRODUCER..][..n];
        assert!(ids.iter().all(|times| times.load(SeqCst) == 1));
    }
    // Every worker thread that started ended, and none is alive.
    assert_eq!(started.load(SeqCst), ended.load(SeqCst));
    assert!(started.load(SeqCst) > 2);
    if let Some(live) = threads::live_threads_named(prefix) {
        assert_eq!(live, 0);
    }
}

#[test]
fn refusals_are_typed_and_change_nothing() {
    let pool = Pool::builder()
        .workers(2)
        .max_workers(3)
        .build(|_ctx: &Ctx, _n: u32| Ok::<(), std::io::Error>(()))
        .unwrap();
    assert!(matches!(pool.set_workers(0), Err(ResizeError::Zero)));
    let above = pool.set_workers(4).unwrap_err();
    assert!(matches!(
        above,
        ResizeError::AboveMax {
            requested: 4,
            max_workers: 3
        }
    ));
    assert!(above.to_string().contains("Builder::max_workers"));
    pool.set_workers(2).unwrap(); // the current count: nothing to do
    assert_eq!(pool.workers(), 2);
    pool.close();
    assert!(matches!(pool.set_workers(3), Err(ResizeError::Closed)));
    assert_eq!(pool.workers(), 2);
    pool.wait().unwrap();

    let pool = Pool::builder()
        .workers(1)
        .max_workers(2)
        .build(|_ctx: &Ctx, _n: u32| Ok::<(), std::io::Error>(()))
        .unwrap();
    pool.cancel();
    assert!(matches!(pool.set_workers(2), Err(ResizeError::Cancelled)));
    let _ = pool.join();
}

#[test]
fn a_worker_cannot_resize_its_own_pool() {
    type Slot = Arc<Mutex<Option<Arc<Pool<u32>>>>>;
    let slot: Slot = Arc::new(Mutex::new(None));
    let (answer, answered) = mpsc::channel();
    let pool = Arc::new(
        Pool::builder()
            .workers(1)
            .max_workers(2)
            .build({
                let slot = Arc::clone(&slot);
                move |_ctx: &Ctx, _n: u32| {
                    let pool = slot.lock().unwrap().clone().expect("set before the item");
                    let outcome = pool.set_workers(2);
                    drop(pool); // before the answer: the test holds the last handle
                    answer
                        .send(outcome.map_err(|error| error.to_string()))
                        .unwrap();
                    Ok::<(), std::io::Error>(())
                }
            })
            .unwrap(),
    );
    *slot.lock().unwrap() = Some(Arc::clone(&pool));
    pool.sender().send(1).unwrap();
    let outcome = answered.recv().unwrap();
    assert!(outcome.unwrap_err().contains("own workers"));
    slot.lock().unwrap().take();
    let pool = Arc::try_unwrap(pool).unwrap();
    assert_eq!(pool.workers(), 1);
    assert_eq!(pool.wait().unwrap().processed(), 1);
}

#[test]
fn a_failed_grow_keeps_the_workers_the_pool_had() {
    let allow = Arc::new(AtomicUsize::new(2));
    let pool = Pool::builder()
        .workers(2)
        .max_workers(4)
        .try_build_stateful({
            let allow = Arc::clone(&allow);
            move |ctx: &Ctx| {
                if ctx.worker_id().index() >= allow.load(SeqCst) {
                    return Err(format!("no room for worker {}", ctx.worker_id()));
                }
                Ok(|_ctx: &Ctx, _n: u32| Ok::<(), std::io::Error>(()))
            }
        })
        .unwrap();
    let Err(ResizeError::Maker { worker, error }) = pool.set_workers(4) else {
        panic!("worker 2's maker fails")
    };
    assert_eq!(worker.index(), 2);
    assert_eq!(error.downcast::<String>().unwrap(), "no room for worker #2");
    assert_eq!(pool.workers(), 2);
    allow.store(4, SeqCst);
    pool.set_workers(4).unwrap(); // the same seats, free again
    assert_eq!(pool.workers(), 4);
    pool.submitter().submit_iter(0..100).unwrap();
    assert_eq!(pool.wait().unwrap().processed(), 100);

    let pool = Pool::builder()
        .workers(1)
        .max_workers(2)
        .build_stateful(|ctx: &Ctx| {
            assert!(ctx.worker_id().index() == 0, "no second worker");
            |_ctx: &Ctx, _n: u32| Ok::<(), std::io::Error>(())
        })
        .unwrap();
    let Err(ResizeError::MakerPanicked { worker, message }) = pool.set_workers(2) else {
        panic!("worker 1's maker panics")
    };
    assert_eq!((worker.index(), message.as_str()), (1, "no second worker"));
    assert_eq!(pool.workers(), 1);
    pool.submitter().submit_iter(0..10).unwrap();
    assert_eq!(pool.wait().unwrap().processed(), 10);
}
