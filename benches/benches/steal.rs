//! The steal path: workers draining a queue that is already full.
//!
//! `steal/drain` builds a pool of 2 or 8 workers, holds every worker at a gate
//! inside its first item, submits [`ITEMS`] trivial items (batch 1 or 64)
//! while they are held, closes the pool, and then opens the gate. The timing
//! runs from opening the gate to the last worker's `finish` hook: the workers
//! take jobs from the shared injector in batches, steal from each other's
//! deques at the end, and leave once the pool is empty. It includes waking
//! the held workers from the gate's condition variable (microseconds) and
//! their exit; it excludes building the pool, submitting, joining the threads
//! and the report.
//!
//! This machine may have fewer cores than workers: 8 workers on 2 cores
//! measure the drain under oversubscription, not eight-way parallelism.
//!
//! Run with `cargo bench -p workforce-benches --bench steal`.

use std::convert::Infallible;
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_main};
use pool_core::{Ctx, Pool, Worker};

/// Items queued before the workers are let go.
const ITEMS: u64 = 100_000;

/// How long to wait for every worker to reach the gate before timing anyway.
const ARRIVAL_DEADLINE: Duration = Duration::from_secs(5);

/// Where the workers wait until the queue is full, and where they say when
/// they are done.
#[derive(Default)]
struct Gate {
    /// Workers that have reached the gate.
    arrived: AtomicUsize,
    /// Whether the gate is open.
    open: Mutex<bool>,
    /// Signalled when the gate opens.
    opened: Condvar,
    /// When the last worker so far ran its `finish` hook.
    last_done: Mutex<Option<Instant>>,
}

impl Gate {
    /// Counts the caller as arrived and blocks until the gate opens.
    fn arrive_and_wait(&self) {
        self.arrived.fetch_add(1, Ordering::SeqCst);
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        while !*open {
            open = self
                .opened
                .wait(open)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Waits until `n_workers` workers are at the gate; `false` if the
    /// deadline passed first.
    fn wait_for_arrivals(&self, n_workers: usize) -> bool {
        let deadline = Instant::now() + ARRIVAL_DEADLINE;
        while self.arrived.load(Ordering::SeqCst) < n_workers {
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::yield_now();
        }
        true
    }

    /// Opens the gate and returns when it did.
    fn open(&self) -> Instant {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let opened_at = Instant::now();
        *open = true;
        self.opened.notify_all();
        opened_at
    }

    /// Records that a worker is done.
    fn done(&self) {
        let now = Instant::now();
        let mut last = self
            .last_done
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *last = Some(last.map_or(now, |earlier| earlier.max(now)));
    }
}

/// A worker that waits at the gate in its first item and then only touches
/// its items.
struct HeldWorker {
    /// The gate shared by the pool's workers.
    gate: Arc<Gate>,
    /// Whether this worker has been through the gate.
    passed: bool,
}

impl Worker<u64> for HeldWorker {
    type Error = Infallible;

    fn work(&mut self, _ctx: &Ctx, item: u64) -> Result<(), Infallible> {
        if !self.passed {
            self.gate.arrive_and_wait();
            self.passed = true;
        }
        black_box(item);
        Ok(())
    }

    fn finish(&mut self, _ctx: &Ctx) -> Result<(), Infallible> {
        self.gate.done();
        Ok(())
    }
}

/// One drain: builds the pool, fills it while its workers are held and times
/// the drain. Returns the drain time and whether every worker was held.
fn drain_once(n_workers: usize, batch_size: usize) -> (Duration, bool) {
    let gate = Arc::new(Gate::default());
    let maker_gate = Arc::clone(&gate);
    let pool: Pool<u64> = Pool::builder()
        .workers(n_workers)
        .batch_size(batch_size)
        .capacity(2 * ITEMS as usize)
        .build_stateful(move |_ctx: &Ctx| HeldWorker {
            gate: Arc::clone(&maker_gate),
            passed: false,
        })
        .expect("workers, batch size and capacity are valid");
    let mut submitter = pool.submitter();
    for item in 0..ITEMS {
        assert!(
            submitter.submit(item).is_ok(),
            "the pool is open until close"
        );
    }
    drop(submitter);
    let all_held = gate.wait_for_arrivals(n_workers);
    pool.close();
    let opened_at = gate.open();
    let report = pool.wait().expect("a held worker cannot fail");
    let last_done = gate
        .last_done
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .expect("every worker runs its finish hook before wait returns");
    assert_eq!(report.processed(), ITEMS, "every queued item is processed");
    (last_done.duration_since(opened_at), all_held)
}

/// Drains a pre-filled queue with 2 and 8 workers at batch 1 and 64.
fn drain(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group("steal/drain");
    group.throughput(Throughput::Elements(ITEMS));
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(3));
    for n_workers in [2_usize, 8] {
        for batch_size in [1_usize, 64] {
            let mut not_held = 0_u64;
            group.bench_with_input(
                BenchmarkId::new(format!("workers={n_workers}/batch"), batch_size),
                &batch_size,
                |bencher, &batch_size| {
                    bencher.iter_custom(|iterations| {
                        let mut timed = Duration::ZERO;
                        for _ in 0..iterations {
                            let (took, all_held) = drain_once(n_workers, batch_size);
                            timed += took;
                            not_held += u64::from(!all_held);
                        }
                        timed
                    });
                },
            );
            if not_held > 0 {
                eprintln!(
                    "steal/drain workers={n_workers} batch={batch_size}: in {not_held} runs \
                     not every worker reached the gate within {ARRIVAL_DEADLINE:?}"
                );
            }
        }
    }
    group.finish();
}

/// The group `criterion_main!` runs. It lives in a private module because
/// `criterion_group!` generates a `pub fn` that cannot carry a doc comment and
/// `missing_docs` is denied for public items.
mod group {
    use super::drain;

    criterion::criterion_group!(benches, drain);
}

criterion_main!(group::benches);
