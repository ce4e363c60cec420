//! A `Dispatcher` never holds more than `queue + workers` jobs that are
//! submitted and not finished: `try_submit` refuses beyond it and `submit`
//! blocks until a job finishes. Jobs are held by permits that only the test
//! thread hands out, so every count below is exact.

#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;

use pool_collect::Dispatcher;
use rstest::rstest;

/// A counting semaphore: jobs take a permit, the test gives them.
#[derive(Default)]
struct Permits {
    available: Mutex<u64>,
    signal: Condvar,
    given: AtomicU64,
}

impl Permits {
    fn give(&self, n: u64) {
        // `given` is raised before the permits exist, so a job that took one
        // (and anything after it) sees it counted.
        self.given.fetch_add(n, SeqCst);
        *self.available.lock().unwrap() += n;
        self.signal.notify_all();
    }

    fn take(&self) {
        let mut available = self.available.lock().unwrap();
        while *available == 0 {
            available = self.signal.wait(available).unwrap();
        }
        *available -= 1;
    }

    fn given(&self) -> u64 {
        self.given.load(SeqCst)
    }
}

#[rstest]
#[case::one_worker_one_place(1, 1)]
#[case::two_workers_three_places(2, 3)]
#[case::four_workers_one_place(4, 1)]
fn try_enqueue_refuses_exactly_beyond_queue_plus_workers(
    #[case] workers: usize,
    #[case] queue: usize,
) {
    const JOBS: u64 = 40;
    let bound = (queue + workers) as u64;
    let permits = Arc::new(Permits::default());
    let dispatcher = Dispatcher::<u64, String>::builder()
        .workers(workers)
        .queue(queue)
        .build()
        .unwrap();
    let mut submitted = 0u64;
    let mut refused = 0u64;
    for n in 0..JOBS {
        let held = Arc::clone(&permits);
        let job = move || {
            held.take();
            Ok(n)
        };
        if let Err(full) = dispatcher.try_submit(job) {
            refused += 1;
            // Let one job finish, then wait for its room.
            permits.give(1);
            dispatcher.submit(full.into_inner());
        }
        submitted += 1;
        // A job finishes only with a permit, so `submitted - given` jobs at least
        // are submitted and unfinished; the bound must cover them.
        assert!(
            submitted - permits.given() <= bound,
            "{submitted} submitted, {} permits, bound {bound}",
            permits.given()
        );
    }
    // The first `bound` jobs fit; after that the dispatcher is full every time
    // (only one job has finished for each refusal), so every try is refused.
    assert_eq!(refused, JOBS - bound);
    permits.give(bound);
    let mut results = dispatcher.wait().into_result().unwrap();
    results.sort_unstable();
    assert_eq!(results, (0..JOBS).collect::<Vec<_>>());
}

#[test]
fn enqueue_blocks_while_full_until_a_job_finishes() {
    let permits = Arc::new(Permits::default());
    let dispatcher = Dispatcher::<u32, String>::builder()
        .workers(1)
        .queue(1)
        .build()
        .unwrap();
    let held_job = |n: u32| {
        let held = Arc::clone(&permits);
        move || {
            held.take();
            Ok(n)
        }
    };
    dispatcher.submit(held_job(0)); // the worker's
    dispatcher.submit(held_job(1)); // the queue's one place
    let refused = dispatcher.try_submit(held_job(2)).unwrap_err();
    thread::scope(|scope| {
        let blocked = scope.spawn(|| {
            dispatcher.submit(refused.into_inner());
            // Room appears only when a job finishes, which needs a permit.
            permits.given()
        });
        permits.give(1);
        assert!(
            blocked.join().unwrap() >= 1,
            "submit returned before any job could finish"
        );
    });
    permits.give(2);
    let mut results = dispatcher.wait().into_result().unwrap();
    results.sort_unstable();
    assert_eq!(results, [0, 1, 2]);
}
