//! Jobs queued behind a worker that blocks reach the workers that sleep: with
//! as many blocking jobs as workers, every job starts (a worker that steals
//! several jobs and then blocks must wake a sibling for the rest).
#![allow(clippy::unwrap_used)] // Tests may unwrap: a panic is a test failure.

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use pool_core::{Ctx, Pool};
use rstest::rstest;

/// How long a job waits for all its siblings to start before it reports that
/// some never did. Only reached when jobs are stranded: a liveness bound, not
/// a speed expectation.
const LIVENESS_BOUND: Duration = Duration::from_secs(60);

#[rstest]
fn every_blocking_job_starts_on_its_own_worker(#[values(2, 8)] n_workers: usize) {
    for _round in 0..200 {
        let started = Arc::new((Mutex::new(0usize), Condvar::new()));
        let job_started = Arc::clone(&started);
        let pool = Pool::builder()
            .workers(n_workers)
            .batch_size(1)
            .capacity(64)
            .build(move |_ctx: &Ctx, _n: usize| {
                let (count, signal) = &*job_started;
                let mut count = count.lock().unwrap();
                *count += 1;
                signal.notify_all();
                // Block until every job has started: a stranded job means this
                // wait runs into the bound.
                let (count, timeout) = signal
                    .wait_timeout_while(count, LIVENESS_BOUND, |count| *count < n_workers)
                    .unwrap();
                drop(count);
                if timeout.timed_out() {
                    anyhow::bail!("a job never started while workers were free");
                }
                Ok(())
            })
            .unwrap();
        let sender = pool.sender();
        for n in 0..n_workers {
            sender.send(n).unwrap();
        }
        // Wait here, not in `wait`: closing the pool wakes every worker and
        // would hide a job stranded behind a blocked one.
        let (count, signal) = &*started;
        let (count, _) = signal
            .wait_timeout_while(count.lock().unwrap(), LIVENESS_BOUND, |count| {
                *count < n_workers
            })
            .unwrap();
        assert_eq!(*count, n_workers, "a job never started while workers slept");
        drop(count);
        let report = pool.wait().unwrap();
        assert_eq!(report.processed(), n_workers as u64);
    }
}
