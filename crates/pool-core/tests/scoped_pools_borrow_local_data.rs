//! Scoped pools (`pool_core::scope`): items, workers and makers borrow local
//! data, every build method works in a scope, the books balance, and the
//! scope ends every thread before it returns, also when the closure panics,
//! a worker panics, or a pool is forgotten.
#![allow(clippy::unwrap_used)] // Tests may unwrap: a panic is a test failure.

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::mpsc;

use pool_core::{BuildError, CancelToken, Ctx, Pool, ResizeError, Worker};

/// A log of `n_lines` lines, `status` cycling through four codes.
fn log(n_lines: usize) -> String {
    let statuses = ["200", "404", "500", "200"];
    (0..n_lines)
        .map(|n| format!("GET /page/{n} {}\n", statuses[n % 4]))
        .collect()
}

#[test]
fn items_borrow_a_buffer_and_workers_borrow_a_map() {
    let buffer = log(1_000);
    let weights: HashMap<&str, u64> = HashMap::from([("200", 1), ("404", 10), ("500", 100)]);
    let total = AtomicU64::new(0);
    let seen = AtomicUsize::new(0);
    let report = pool_core::scope(|s| {
        let pool = s
            .builder()
            .workers(3)
            .batch_size(16)
            .build(|_ctx: &Ctx, line: &str| {
                let status = line.split_whitespace().nth(2).unwrap();
                total.fetch_add(weights[status], SeqCst);
                seen.fetch_add(1, SeqCst);
                Ok::<(), std::convert::Infallible>(())
            })
            .unwrap();
        pool.submitter().submit_iter(buffer.lines()).unwrap();
        pool.wait().unwrap()
    });
    // 500 lines of 200, 250 of 404, 250 of 500.
    assert_eq!(total.load(SeqCst), 500 + 250 * 10 + 250 * 100);
    assert_eq!(seen.load(SeqCst), 1_000);
    assert_eq!(report.submitted(), 1_000);
    assert_eq!(report.processed(), 1_000);
    assert!(report.is_balanced());
}

#[test]
fn each_worker_fills_its_own_mut_slice() {
    const WORKERS: usize = 4;
    let mut per_worker = [0u64; WORKERS];
    {
        let parts = Mutex::new(per_worker.chunks_mut(1).collect::<Vec<_>>());
        pool_core::scope(|s| {
            let pool = s
                .builder()
                .workers(WORKERS)
                .build_stateful(|_ctx: &Ctx| {
                    let part: &mut [u64] = parts.lock().unwrap().pop().unwrap();
                    move |_ctx: &Ctx, n: u64| {
                        part[0] += n;
                        Ok::<(), std::convert::Infallible>(())
                    }
                })
                .unwrap();
            pool.submitter().submit_iter(1..=1_000).unwrap();
            assert!(pool.wait().unwrap().is_balanced());
        });
    }
    assert_eq!(per_worker.iter().sum::<u64>(), 500_500);
}

#[test]
fn items_are_mut_chunks_of_a_local_vec() {
    let mut data: Vec<u64> = (0..10_000).collect();
    let report = pool_core::scope(|s| {
        let pool = s
            .builder()
            .workers(3)
            .build(|_ctx: &Ctx, chunk: &mut [u64]| {
                chunk.iter_mut().for_each(|n| *n *= 2);
                Ok::<(), std::convert::Infallible>(())
            })
            .unwrap();
        pool.submitter().submit_iter(data.chunks_mut(128)).unwrap();
        pool.wait().unwrap()
    });
    assert_eq!(report.processed(), 10_000usize.div_ceil(128) as u64);
    assert!(
        data.iter()
            .enumerate()
            .all(|(n, &value)| value == 2 * n as u64)
    );
}

/// Counts itself finished in a local counter; panics on item 13.
struct Finisher<'a> {
    finished: &'a AtomicUsize,
    processed: &'a AtomicUsize,
}

impl Worker<u32> for Finisher<'_> {
    type Error = std::convert::Infallible;
    fn work(&mut self, _ctx: &Ctx, n: u32) -> Result<(), Self::Error> {
        assert_ne!(n, 13, "thirteen");
        self.processed.fetch_add(1, SeqCst);
        Ok(())
    }
    fn finish(&mut self, _ctx: &Ctx) -> Result<(), Self::Error> {
        self.finished.fetch_add(1, SeqCst);
        Ok(())
    }
}

#[test]
fn a_worker_panic_is_raised_after_every_thread_finished() {
    const WORKERS: usize = 3;
    let finished = AtomicUsize::new(0);
    let processed = AtomicUsize::new(0);
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        pool_core::scope(|s| {
            let pool = s
                .builder()
                .workers(WORKERS)
                .resume_panics(true)
                .build_stateful(|_ctx: &Ctx| Finisher {
                    finished: &finished,
                    processed: &processed,
                })
                .unwrap();
            pool.submitter().submit_iter(0..100).unwrap();
            pool.wait()
        })
    }));
    let payload = outcome.unwrap_err();
    assert_eq!(
        pool_core::__private::panic_message(&*payload),
        "assertion `left != right` failed: thirteen\n  left: 13\n right: 13"
    );
    assert_eq!(finished.load(SeqCst), WORKERS);
}

#[test]
fn a_panic_in_the_scope_is_raised_after_every_thread_joined() {
    const WORKERS: usize = 4;
    let finished = AtomicUsize::new(0);
    let processed = AtomicUsize::new(0);
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        pool_core::scope(|s| {
            let pool = s
                .builder()
                .workers(WORKERS)
                .build_stateful(|_ctx: &Ctx| Finisher {
                    finished: &finished,
                    processed: &processed,
                })
                .unwrap();
            pool.submitter().submit_iter(100..1_100).unwrap();
            // The pool is still open and its items queued: the scope closes
            // it and waits for its threads before the panic goes on.
            std::mem::forget(pool);
            panic!("the scope's own panic");
        })
    }));
    let payload = outcome.unwrap_err();
    assert_eq!(
        payload.downcast_ref::<&str>(),
        Some(&"the scope's own panic")
    );
    assert_eq!(finished.load(SeqCst), WORKERS);
    assert_eq!(processed.load(SeqCst), 1_000);
}

#[test]
fn a_forgotten_pool_does_not_hang_the_scope() {
    let processed = AtomicUsize::new(0);
    let finished = AtomicUsize::new(0);
    pool_core::scope(|s| {
        let pool = s
            .builder()
            .workers(2)
            .build_stateful(|_ctx: &Ctx| Finisher {
                finished: &finished,
                processed: &processed,
            })
            .unwrap();
        pool.submitter().submit_iter(100..600).unwrap();
        std::mem::forget(pool);
    });
    assert_eq!(processed.load(SeqCst), 500);
    assert_eq!(finished.load(SeqCst), 2);
}

#[test]
fn a_pool_returned_out_of_its_scope_is_closed_and_reports() {
    let limit = 1_000;
    let pool = pool_core::scope(|s| {
        let pool = s
            .builder()
            .workers(2)
            .continue_on_error()
            .build(|_ctx: &Ctx, n: u32| {
                anyhow::ensure!(n < limit, "{n} is over the limit");
                Ok(())
            })
            .unwrap();
        pool.submitter().submit_iter(995..1_005).unwrap();
        pool
    });
    assert!(pool.is_closed());
    assert!(pool.sender().send(1).is_err());
    let report = pool.join();
    assert_eq!((report.processed(), report.failed()), (5, 5));
    assert!(report.is_balanced());
}

#[test]
fn a_parent_token_cancels_a_scoped_pool() {
    let parent = CancelToken::new();
    let (started, first_started) = mpsc::channel();
    let report = pool_core::scope(|s| {
        let pool = s
            .builder()
            .workers(1)
            .cancel_token(parent.clone())
            .build(|ctx: &Ctx, n: u32| {
                started.send(n).unwrap();
                // Runs until the cancel reaches the pool.
                while !ctx.is_cancelled() {
                    std::thread::yield_now();
                }
                Ok::<(), std::convert::Infallible>(())
            })
            .unwrap();
        let mut submitter = pool.submitter();
        submitter.submit_iter(0..10).unwrap();
        submitter.flush();
        assert_eq!(first_started.recv().unwrap(), 0);
        // The worker sees the token at once; the pool hears it through the
        // scope's watcher, and the worker's item ends only then.
        parent.cancel();
        drop(submitter);
        pool.join()
    });
    assert_eq!((report.processed(), report.dropped()), (1, 9));
    assert!(report.is_balanced());
}

#[test]
fn a_parent_token_reaches_producers_blocked_on_room() {
    let parent = CancelToken::new();
    let (started, first_started) = mpsc::channel();
    let (open, gate) = mpsc::channel::<()>();
    let gate = Mutex::new(gate);
    pool_core::scope(|s| {
        let pool = s
            .builder()
            .workers(1)
            .batch_size(1)
            .capacity(1)
            .cancel_token(parent.clone())
            .build(|_ctx: &Ctx, n: u32| {
                started.send(n).unwrap();
                // Holds the only unit of room until the gate opens: only the
                // cancel can end the producer's wait below.
                let _ = gate.lock().unwrap().recv();
                Ok::<(), std::convert::Infallible>(())
            })
            .unwrap();
        let sender = pool.sender();
        sender.send(0).unwrap();
        assert_eq!(first_started.recv().unwrap(), 0);
        std::thread::scope(|threads| {
            let blocked = threads.spawn(|| sender.send(1));
            parent.cancel();
            assert_eq!(
                blocked.join().unwrap(),
                Err(pool_core::SendError::Cancelled(1))
            );
        });
        open.send(()).unwrap();
        let report = pool.join();
        assert_eq!(report.processed(), 1);
        assert!(report.is_balanced());
    });
}

#[test]
fn pool_cancel_takes_effect_before_it_returns() {
    let (started, first_started) = mpsc::channel();
    pool_core::scope(|s| {
        let pool = s
            .builder()
            .workers(1)
            .build(|ctx: &Ctx, n: u32| {
                started.send(n).unwrap();
                while !ctx.is_cancelled() {
                    std::thread::yield_now();
                }
                Ok::<(), std::convert::Infallible>(())
            })
            .unwrap();
        let mut submitter = pool.submitter();
        submitter.submit_iter(0..10).unwrap();
        submitter.flush();
        assert_eq!(first_started.recv().unwrap(), 0);
        pool.cancel();
        assert!(matches!(
            submitter.submit(99),
            Err(pool_core::SubmitError::Cancelled(99))
        ));
        drop(submitter);
        let report = pool.join();
        assert_eq!((report.processed(), report.dropped()), (1, 9));
        assert!(report.is_balanced());
    });
}

#[test]
fn every_build_method_works_in_a_scope() {
    let words: Vec<String> = ["apple", "kiwi", "banana", "fig", "cherry"]
        .map(String::from)
        .to_vec();
    let min_len = 4;
    let prefix = String::from("fruit:");
    let long = AtomicUsize::new(0);
    pool_core::scope(|s| {
        // build_batch: the batch function borrows `min_len`.
        let pool = s
            .builder()
            .workers(2)
            .build_batch(|_ctx: &Ctx, batch: &mut Vec<&String>| {
                let n = batch.drain(..).filter(|word| word.len() > min_len).count();
                long.fetch_add(n, SeqCst);
                Ok::<(), std::convert::Infallible>(())
            })
            .unwrap();
        pool.submitter().submit_iter(&words).unwrap();
        assert_eq!(pool.wait().unwrap().processed(), 5);
        assert_eq!(long.load(SeqCst), 3);

        // try_build_stateful: a maker that borrows and fails.
        let built = s.builder().workers(2).try_build_stateful(|ctx: &Ctx| {
            if ctx.worker_id().index() == 1 {
                return Err(format!("{prefix} no worker 1"));
            }
            Ok(|_ctx: &Ctx, _word: &String| Ok::<(), std::convert::Infallible>(()))
        });
        let Err(BuildError::Maker { worker, error }) = built else {
            panic!("worker 1's maker fails")
        };
        assert_eq!((worker.index(), error.as_str()), (1, "fruit: no worker 1"));

        // keep_workers: each worker keeps the borrowed words it saw.
        let pool = s
            .builder()
            .workers(2)
            .chunk_by(|word: &&String| word.len())
            .keep_workers()
            .build_stateful(|_ctx: &Ctx| Collect { seen: Vec::new() })
            .unwrap();
        pool.submitter().submit_iter(&words).unwrap();
        let (report, workers) = pool.wait_with_workers().unwrap();
        assert_eq!(report.processed(), 5);
        let mut seen: Vec<&str> = workers.into_iter().flat_map(|worker| worker.seen).collect();
        seen.sort_unstable();
        assert_eq!(seen, ["apple", "banana", "cherry", "fig", "kiwi"]);

        // keep_state: what the workers gathered, borrowing `prefix`.
        let pool = s
            .builder()
            .workers(2)
            .keep_state(|_ctx: &Ctx, worker: Gather<'_>| worker.seen)
            .build_stateful(|_ctx: &Ctx| Gather {
                prefix: &prefix,
                seen: Vec::new(),
            })
            .unwrap();
        pool.submitter().submit_iter(&words).unwrap();
        let (_report, gathered) = pool.wait_with_workers().unwrap();
        let mut all: Vec<String> = gathered.into_iter().flatten().collect();
        all.sort();
        assert_eq!(all[0], "fruit:apple");
        assert_eq!(all.len(), 5);

        // build_call: a call pool whose worker borrows `words`.
        let pool = s
            .builder()
            .workers(2)
            .batch_size(1)
            .build_call(|_ctx: &Ctx, index: usize| {
                words
                    .get(index)
                    .map(String::as_str)
                    .ok_or_else(|| std::io::Error::other("no such word"))
            })
            .unwrap();
        assert_eq!(pool.call(1).unwrap().wait().unwrap(), "kiwi");
        assert!(pool.call(9).unwrap().wait().is_err());
        let report = pool.join();
        assert_eq!((report.processed(), report.failed()), (1, 1));
    });
}

/// Keeps the words it sees, borrowed.
struct Collect<'a> {
    seen: Vec<&'a str>,
}

impl<'a> Worker<&'a String> for Collect<'a> {
    type Error = std::convert::Infallible;
    fn work(&mut self, _ctx: &Ctx, word: &'a String) -> Result<(), Self::Error> {
        self.seen.push(word);
        Ok(())
    }
}

/// Keeps each word it sees with a borrowed prefix.
struct Gather<'a> {
    prefix: &'a str,
    seen: Vec<String>,
}

impl<'w> Worker<&'w String> for Gather<'_> {
    type Error = std::convert::Infallible;
    fn work(&mut self, _ctx: &Ctx, word: &'w String) -> Result<(), Self::Error> {
        self.seen.push(format!("{}{word}", self.prefix));
        Ok(())
    }
}

#[test]
fn spawning_is_not_available_in_a_scoped_pool() {
    let spawners = AtomicUsize::new(0);
    pool_core::scope(|s| {
        let pool = s
            .builder()
            .workers(1)
            .build(|ctx: &Ctx, _n: u64| {
                if ctx.spawner::<u64>().is_some() {
                    spawners.fetch_add(1, SeqCst);
                }
                Ok::<(), std::convert::Infallible>(())
            })
            .unwrap();
        pool.sender().send(1).unwrap();
        assert_eq!(pool.wait().unwrap().processed(), 1);
    });
    assert_eq!(spawners.load(SeqCst), 0);
}

#[test]
fn a_scoped_pool_keeps_its_number_of_workers() {
    let seen = AtomicUsize::new(0);
    pool_core::scope(|s| {
        let pool = s
            .builder()
            .workers(2)
            .max_workers(4)
            .build(|_ctx: &Ctx, _n: u64| {
                seen.fetch_add(1, SeqCst);
                Ok::<(), std::convert::Infallible>(())
            })
            .unwrap();
        assert!(matches!(pool.set_workers(4), Err(ResizeError::InScope)));
        assert!(matches!(pool.set_workers(1), Err(ResizeError::InScope)));
        assert_eq!(pool.workers(), 2);
        pool.submitter().submit_iter(0..100).unwrap();
        let report = pool.wait().unwrap();
        assert_eq!(report.processed(), 100);
        assert!(report.is_balanced());
    });
    assert_eq!(seen.load(SeqCst), 100);
}

#[test]
fn scoped_and_ordinary_pools_live_side_by_side() {
    let ordinary = Pool::builder()
        .workers(1)
        .build(|_ctx: &Ctx, _n: u64| Ok::<(), std::convert::Infallible>(()))
        .unwrap();
    let sum = AtomicU64::new(0);
    pool_core::scope(|s| {
        let scoped = s
            .builder()
            .workers(2)
            .build(|_ctx: &Ctx, n: u64| {
                sum.fetch_add(n, SeqCst);
                Ok::<(), std::convert::Infallible>(())
            })
            .unwrap();
        let sender = scoped.sender();
        ordinary.sender().send(1).unwrap();
        sender.send(41).unwrap();
        drop(sender);
        assert_eq!(scoped.wait().unwrap().processed(), 1);
    });
    assert_eq!(sum.load(SeqCst), 41);
    assert_eq!(ordinary.wait().unwrap().processed(), 1);
}
