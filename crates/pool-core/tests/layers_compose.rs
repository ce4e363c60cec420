//! Middleware composition with `Builder::layer`: the first layer added is the
//! outermost, every worker thread builds its own stack, closure layers and
//! small layer types mix, and accounting is unchanged.
#![allow(clippy::unwrap_used)] // Tests may unwrap: a panic is a test failure.

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};

use pool_core::{Ctx, Layer, Next, Pool, Worker, layer_fn};
use rstest::rstest;

type Log = Arc<Mutex<Vec<String>>>;

/// A layer that logs `name` before and after the rest of the stack.
struct Named {
    name: &'static str,
    log: Log,
    stacks_built: Arc<AtomicUsize>,
}

struct NamedWorker<W> {
    name: &'static str,
    log: Log,
    inner: W,
}

impl<W> Layer<W> for Named {
    type Worker = NamedWorker<W>;

    fn layer(&self, inner: W) -> NamedWorker<W> {
        self.stacks_built.fetch_add(1, SeqCst);
        NamedWorker {
            name: self.name,
            log: Arc::clone(&self.log),
            inner,
        }
    }
}

impl<T, W: Worker<T>> Worker<T> for NamedWorker<W> {
    type Error = W::Error;

    fn work(&mut self, ctx: &Ctx, item: T) -> Result<(), W::Error> {
        self.log.lock().unwrap().push(format!("{} in", self.name));
        let outcome = self.inner.work(ctx, item);
        self.log.lock().unwrap().push(format!("{} out", self.name));
        outcome
    }

    fn finish(&mut self, ctx: &Ctx) -> Result<(), W::Error> {
        self.log
            .lock()
            .unwrap()
            .push(format!("{} finish", self.name));
        self.inner.finish(ctx)
    }
}

#[rstest]
fn the_first_layer_added_is_the_outermost(#[values(false, true)] stateful: bool) {
    let log: Log = Arc::default();
    let stacks_built = Arc::new(AtomicUsize::new(0));
    let named = |name| Named {
        name,
        log: Arc::clone(&log),
        stacks_built: Arc::clone(&stacks_built),
    };
    let closure_log = Arc::clone(&log);
    let builder = Pool::builder()
        .workers(1)
        .layer(named("a"))
        .layer(layer_fn(
            move |mut next: Next<'_, u32>, ctx: &Ctx, item: u32| {
                closure_log.lock().unwrap().push("closure in".to_owned());
                let outcome = next.work(ctx, item);
                closure_log.lock().unwrap().push("closure out".to_owned());
                outcome
            },
        ))
        .layer(named("c"));
    let worker_log = Arc::clone(&log);
    let pool = if stateful {
        builder
            .build_stateful(move |_ctx: &Ctx| {
                let log = Arc::clone(&worker_log);
                move |_ctx: &Ctx, item: u32| {
                    log.lock().unwrap().push(format!("worker {item}"));
                    Ok::<(), std::io::Error>(())
                }
            })
            .unwrap()
    } else {
        builder
            .build(move |_ctx: &Ctx, item: u32| {
                worker_log.lock().unwrap().push(format!("worker {item}"));
                Ok::<(), std::io::Error>(())
            })
            .unwrap()
    };
    pool.submitter().submit(7).unwrap();
    assert_eq!(pool.wait().unwrap().processed(), 1);
    let log = log.lock().unwrap();
    assert_eq!(
        log[..7],
        [
            "a in",
            "closure in",
            "c in",
            "worker 7",
            "c out",
            "closure out",
            "a out"
        ]
    );
    // `finish` runs through the whole stack too, outermost first: the closure
    // layer forwards it to the layers and worker under it.
    assert_eq!(log[7..], ["a finish", "c finish"]);
}

#[rstest]
fn each_worker_thread_builds_its_own_stack(#[values(1, 4)] n_workers: usize) {
    let stacks_built = Arc::new(AtomicUsize::new(0));
    let layer = Named {
        name: "per-thread",
        log: Arc::default(),
        stacks_built: Arc::clone(&stacks_built),
    };
    let pool = Pool::builder()
        .workers(n_workers)
        .continue_on_error()
        .layer(layer)
        .build(|_ctx: &Ctx, n: u64| {
            if n.is_multiple_of(10) {
                anyhow::bail!("{n} is a multiple of ten");
            }
            Ok(())
        })
        .unwrap();
    let mut submitter = pool.submitter();
    for n in 0..1_000 {
        submitter.submit(n).unwrap();
    }
    drop(submitter);
    let report = pool.join();
    assert_eq!(stacks_built.load(SeqCst), n_workers);
    assert_eq!((report.processed(), report.failed()), (900, 100));
    assert!(report.is_balanced());
}
