//! Fallible makers (`try_build_stateful`, `try_build_batch_stateful`,
//! `try_build_call_stateful`): the build waits for every maker; one failure
//! (or panic) fails the build whole with a typed error naming the worker,
//! after every thread has been joined and every worker made was dropped
//! (without `finish` or a callback); a build that failed can be made again.
#![allow(clippy::unwrap_used)] // Tests may unwrap: a panic is a test failure.

mod common;
#[path = "common/threads.rs"]
mod threads;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};

use pool_core::{
    BatchWorker, BuildError, Builder, CallWorker, Ctx, Pool, PoolError, Worker, layer_fn,
};

/// The kinds of fallible build.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Item,
    Batch,
    Call,
}

const KINDS: [Kind; 3] = [Kind::Item, Kind::Batch, Kind::Call];

/// What the workers of a test did: made, dropped, finished; and what the
/// pool's callbacks saw.
#[derive(Default)]
struct Book {
    made: AtomicUsize,
    dropped: AtomicUsize,
    finished: AtomicUsize,
    worked: AtomicUsize,
    worker_done: AtomicUsize,
    pool_done: AtomicUsize,
}

/// A worker of every kind, booked.
struct Booked(Arc<Book>);

impl Drop for Booked {
    fn drop(&mut self) {
        self.0.dropped.fetch_add(1, SeqCst);
    }
}

impl Worker<u64> for Booked {
    type Error = std::io::Error;
    fn work(&mut self, _ctx: &Ctx, _item: u64) -> std::io::Result<()> {
        self.0.worked.fetch_add(1, SeqCst);
        Ok(())
    }
    fn finish(&mut self, _ctx: &Ctx) -> std::io::Result<()> {
        self.0.finished.fetch_add(1, SeqCst);
        Ok(())
    }
}

impl BatchWorker<u64> for Booked {
    type Error = std::io::Error;
    fn work_batch(&mut self, _ctx: &Ctx, batch: &mut Vec<u64>) -> std::io::Result<()> {
        self.0.worked.fetch_add(batch.len(), SeqCst);
        Ok(())
    }
    fn finish(&mut self, _ctx: &Ctx) -> std::io::Result<()> {
        self.0.finished.fetch_add(1, SeqCst);
        Ok(())
    }
}

impl CallWorker<u64> for Booked {
    type Output = u64;
    type Error = std::io::Error;
    fn call(&mut self, _ctx: &Ctx, item: u64) -> std::io::Result<u64> {
        self.0.worked.fetch_add(1, SeqCst);
        Ok(item)
    }
    fn finish(&mut self, _ctx: &Ctx) -> std::io::Result<()> {
        self.0.finished.fetch_add(1, SeqCst);
        Ok(())
    }
}

/// The maker's error: a type of the test's own, to show it comes back as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
struct NoConnection {
    worker: usize,
}

impl std::fmt::Display for NoConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "no connection for worker {}", self.worker)
    }
}

/// A builder of `n_workers` threads named `prefix`, whose callbacks are booked.
fn builder(n_workers: usize, prefix: &str, book: &Arc<Book>) -> Builder<u64> {
    let (worker_done, pool_done) = (Arc::clone(book), Arc::clone(book));
    Pool::builder()
        .workers(n_workers)
        .thread_name(prefix)
        .on_worker_done(move |_id, _counts| {
            worker_done.worker_done.fetch_add(1, SeqCst);
        })
        .on_pool_done(move |_report| {
            pool_done.pool_done.fetch_add(1, SeqCst);
        })
}

/// Builds a pool of `kind` whose maker fails where `fails` says, submits
/// `n_items` if it was built, and returns the build's error or the report.
fn build_and_run(
    kind: Kind,
    builder: Builder<u64>,
    book: &Arc<Book>,
    fails: impl Fn(usize) -> bool + Send + Sync + 'static,
    n_items: u64,
) -> Result<pool_core::Report, BuildError<NoConnection>> {
    let book = Arc::clone(book);
    let maker = move |ctx: &Ctx| {
        let worker = ctx.worker_id().index();
        if fails(worker) {
            return Err(NoConnection { worker });
        }
        book.made.fetch_add(1, SeqCst);
        Ok(Booked(Arc::clone(&book)))
    };
    match kind {
        Kind::Item => {
            let pool = builder.try_build_stateful(maker)?;
            pool.submitter().submit_iter(0..n_items).unwrap();
            Ok(pool.wait().unwrap())
        }
        Kind::Batch => {
            let pool = builder.try_build_batch_stateful(maker)?;
            pool.submitter().submit_iter(0..n_items).unwrap();
            Ok(pool.wait().unwrap())
        }
        Kind::Call => {
            let pool = builder.try_build_call_stateful(maker)?;
            let handles: Vec<_> = (0..n_items).map(|n| pool.call(n).unwrap()).collect();
            for (n, handle) in (0..n_items).zip(handles) {
                assert_eq!(handle.wait().unwrap(), n);
            }
            Ok(pool.wait().unwrap())
        }
    }
}

#[test]
fn a_failing_maker_fails_the_build_with_its_worker_and_its_error() {
    for kind in KINDS {
        let prefix = "mkfail-one";
        let book = Arc::new(Book::default());
        let error = build_and_run(kind, builder(4, prefix, &book), &book, |w| w == 2, 100)
            .expect_err("worker #2's maker fails");
        assert_eq!(
            error.to_string(),
            "the maker of worker #2 failed: no connection for worker 2"
        );
        let BuildError::Maker { worker, error } = error else {
            panic!("{kind:?}: a maker error, got {error:?}");
        };
        assert_eq!(worker.index(), 2, "{kind:?}");
        assert_eq!(error, NoConnection { worker: 2 }, "{kind:?}");
        // Every thread was joined before the build returned: none is left.
        assert_eq!(
            threads::live_threads_named(prefix).unwrap_or(0),
            0,
            "{kind:?}"
        );
        // The three workers that were made were dropped, and nothing else ran.
        assert_eq!(book.made.load(SeqCst), 3, "{kind:?}");
        assert_eq!(book.dropped.load(SeqCst), 3, "{kind:?}");
        assert_eq!(book.finished.load(SeqCst), 0, "{kind:?}");
        assert_eq!(book.worked.load(SeqCst), 0, "{kind:?}");
        assert_eq!(book.worker_done.load(SeqCst), 0, "{kind:?}");
        assert_eq!(book.pool_done.load(SeqCst), 0, "{kind:?}");
    }
}

#[test]
fn when_several_makers_fail_the_lowest_worker_is_named() {
    for kind in KINDS {
        let book = Arc::new(Book::default());
        let error = build_and_run(
            kind,
            builder(6, "mkfail-many", &book),
            &book,
            |w| w % 2 == 1,
            10,
        )
        .expect_err("the odd workers' makers fail");
        let BuildError::Maker { worker, error } = error else {
            panic!("{kind:?}: a maker error, got {error:?}");
        };
        assert_eq!((worker.index(), error.worker), (1, 1), "{kind:?}");
        assert_eq!(book.dropped.load(SeqCst), 3, "{kind:?}");
        assert_eq!(threads::live_threads_named("mkfail-many").unwrap_or(0), 0);
    }
}

#[test]
fn every_maker_failing_leaves_nothing_either() {
    for kind in KINDS {
        let book = Arc::new(Book::default());
        let error = build_and_run(kind, builder(3, "mkfail-all", &book), &book, |_| true, 10)
            .expect_err("every maker fails");
        assert!(matches!(error, BuildError::Maker { ref worker, .. } if worker.index() == 0));
        assert_eq!(book.made.load(SeqCst), 0);
        assert_eq!(threads::live_threads_named("mkfail-all").unwrap_or(0), 0);
    }
}

#[test]
fn a_build_that_failed_can_be_made_again_and_then_runs() {
    for kind in KINDS {
        // The database is down for the first attempt only.
        let down = Arc::new(AtomicBool::new(true));
        let book = Arc::new(Book::default());
        let attempt = |book: &Arc<Book>| {
            let down = Arc::clone(&down);
            build_and_run(
                kind,
                builder(3, "mkfail-retry", book),
                book,
                move |worker| worker == 0 && down.swap(false, SeqCst),
                1_000,
            )
        };
        let first = attempt(&book).expect_err("the first attempt fails");
        assert!(matches!(first, BuildError::Maker { ref worker, .. } if worker.index() == 0));
        assert_eq!(threads::live_threads_named("mkfail-retry").unwrap_or(0), 0);

        let book = Arc::new(Book::default());
        let report = attempt(&book).expect("the second attempt succeeds");
        assert_eq!(report.processed(), 1_000, "{kind:?}");
        assert!(report.is_balanced());
        assert_eq!(book.made.load(SeqCst), 3);
        assert_eq!(book.worked.load(SeqCst), 1_000);
        assert_eq!(book.finished.load(SeqCst), 3);
        assert_eq!(book.dropped.load(SeqCst), 3);
        assert_eq!(book.worker_done.load(SeqCst), 3);
        assert_eq!(book.pool_done.load(SeqCst), 1);
        assert_eq!(threads::live_threads_named("mkfail-retry").unwrap_or(0), 0);
    }
}

#[test]
fn the_build_returns_once_every_maker_is_done() {
    for kind in KINDS {
        let book = Arc::new(Book::default());
        let maker_book = Arc::clone(&book);
        let maker = move |_ctx: &Ctx| {
            maker_book.made.fetch_add(1, SeqCst);
            Ok::<_, NoConnection>(Booked(Arc::clone(&maker_book)))
        };
        let builder = Pool::builder().workers(5);
        // Read before anything else happens to the pool: the build waited.
        let made = match kind {
            Kind::Item => {
                let pool = builder.try_build_stateful(maker).unwrap();
                let made = book.made.load(SeqCst);
                pool.wait().unwrap();
                made
            }
            Kind::Batch => {
                let pool = builder.try_build_batch_stateful(maker).unwrap();
                let made = book.made.load(SeqCst);
                pool.wait().unwrap();
                made
            }
            Kind::Call => {
                let pool = builder.try_build_call_stateful(maker).unwrap();
                let made = book.made.load(SeqCst);
                pool.wait().unwrap();
                made
            }
        };
        assert_eq!(made, 5, "{kind:?}");
    }
}

#[test]
fn a_panicking_maker_fails_the_build_with_its_message() {
    common::quiet_deliberate_panics();
    let book = Arc::new(Book::default());
    let maker_book = Arc::clone(&book);
    let built = builder(3, "mkfail-panic", &book).try_build_stateful(move |ctx: &Ctx| {
        if ctx.worker_id().index() == 1 {
            panic!("deliberate maker panic");
        }
        maker_book.made.fetch_add(1, SeqCst);
        Ok::<_, NoConnection>(Booked(Arc::clone(&maker_book)))
    });
    let error = built.expect_err("worker #1's maker panics");
    let BuildError::MakerPanicked { worker, message } = error else {
        panic!("a maker panic, got {error:?}");
    };
    assert_eq!(worker.index(), 1);
    assert_eq!(message, "deliberate maker panic");
    assert_eq!(book.made.load(SeqCst), 2);
    assert_eq!(book.dropped.load(SeqCst), 2);
    assert_eq!(book.pool_done.load(SeqCst), 0);
    assert_eq!(threads::live_threads_named("mkfail-panic").unwrap_or(0), 0);
}

/// A panic's payload of the test's own type.
#[derive(Debug, PartialEq)]
struct Poisoned(u32);

#[test]
fn with_resume_panics_a_makers_panic_is_raised_again_after_the_threads_are_joined() {
    // This payload has no text: silence the default hook for it.
    common::quiet_deliberate_panics();
    let quiet = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !info.payload().is::<Poisoned>() {
            quiet(info);
        }
    }));
    let raised = catch_unwind(AssertUnwindSafe(|| {
        Pool::<u64>::builder()
            .workers(2)
            .thread_name("mkfail-resume")
            .resume_panics(true)
            .try_build_stateful(|ctx: &Ctx| {
                if ctx.worker_id().index() == 0 {
                    std::panic::panic_any(Poisoned(7));
                }
                Ok::<_, NoConnection>(|_ctx: &Ctx, _n: u64| Ok::<(), std::io::Error>(()))
            })
    }));
    let payload = raised.expect_err("the maker's panic is raised again");
    assert_eq!(payload.downcast_ref::<Poisoned>(), Some(&Poisoned(7)));
    assert_eq!(threads::live_threads_named("mkfail-resume").unwrap_or(0), 0);
}

#[test]
fn a_setting_error_comes_before_any_maker_runs() {
    let called = Arc::new(AtomicUsize::new(0));
    let maker_called = Arc::clone(&called);
    let built = Pool::<u64>::builder()
        .workers(0)
        .try_build_stateful(move |_ctx: &Ctx| {
            maker_called.fetch_add(1, SeqCst);
            Ok::<_, NoConnection>(|_ctx: &Ctx, _n: u64| Ok::<(), std::io::Error>(()))
        });
    assert_eq!(built.unwrap_err(), BuildError::ZeroWorkers);
    assert_eq!(called.load(SeqCst), 0);
}

#[test]
fn layers_are_built_around_a_fallible_makers_worker() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let layer_seen = Arc::clone(&seen);
    let build = |fail: bool| {
        let layer_seen = Arc::clone(&layer_seen);
        Pool::<u64>::builder()
            .workers(2)
            .thread_name("mkfail-layer")
            .layer(layer_fn(
                move |mut next: pool_core::Next<'_, u64>, ctx: &Ctx, item: u64| {
                    layer_seen.lock().unwrap().push(item);
                    next.work(ctx, item)
                },
            ))
            .try_build_stateful(move |ctx: &Ctx| {
                if fail && ctx.worker_id().index() == 1 {
                    return Err(anyhow::anyhow!("no connection"));
                }
                Ok(|_ctx: &Ctx, _n: u64| Ok::<(), std::io::Error>(()))
            })
    };
    let error = build(true).expect_err("worker #1 fails");
    // An anyhow error is a maker error like any other, and the build error
    // goes into anyhow with `?`.
    assert_eq!(
        error.to_string(),
        "the maker of worker #1 failed: no connection"
    );
    let as_anyhow: anyhow::Error = error.into();
    assert!(as_anyhow.to_string().contains("no connection"));
    assert_eq!(threads::live_threads_named("mkfail-layer").unwrap_or(0), 0);

    let pool = build(false).expect("no maker fails");
    pool.submitter().submit_iter(0..10).unwrap();
    assert_eq!(pool.wait().unwrap().processed(), 10);
    let mut seen = seen.lock().unwrap().clone();
    seen.sort_unstable();
    assert_eq!(seen, (0..10).collect::<Vec<_>>());
}

#[test]
fn a_keyed_pool_with_fallible_makers_fails_and_runs_the_same() {
    let build = |fail: bool| {
        Pool::<u64>::builder()
            .workers(3)
            .thread_name("mkfail-keyed")
            .chunk_by(|n: &u64| *n % 7)
            .continue_on_error()
            .try_build_stateful(move |ctx: &Ctx| {
                if fail && ctx.worker_id().index() == 2 {
                    return Err(NoConnection { worker: 2 });
                }
                Ok(|_ctx: &Ctx, n: u64| {
                    if n == 3 {
                        return Err(std::io::Error::other("three"));
                    }
                    Ok(())
                })
            })
    };
    assert!(matches!(build(true), Err(BuildError::Maker { .. })));
    assert_eq!(threads::live_threads_named("mkfail-keyed").unwrap_or(0), 0);
    let pool = build(false).unwrap();
    pool.submitter().submit_iter(0..100).unwrap();
    let report = pool.join();
    assert_eq!((report.processed(), report.failed()), (99, 1));
    assert!(matches!(report.errors(), [PoolError::Worker { .. }]));
}

#[test]
fn a_dropped_pool_of_fallible_makers_leaves_no_thread() {
    for round in 0..200 {
        let fail = round % 2 == 0;
        let built = Pool::<u64>::builder()
            .workers(1 + round % 3)
            .thread_name("mkfail-loop")
            .try_build_stateful(move |ctx: &Ctx| {
                if fail && ctx.worker_id().index() == 0 {
                    return Err(NoConnection { worker: 0 });
                }
                Ok(|_ctx: &Ctx, _n: u64| Ok::<(), std::io::Error>(()))
            });
        match built {
            Ok(pool) => {
                assert!(!fail);
                pool.submitter().submit_iter(0..10).unwrap();
                drop(pool);
            }
            Err(error) => assert!(fail, "{error}"),
        }
        assert_eq!(threads::live_threads_named("mkfail-loop").unwrap_or(0), 0);
    }
}
