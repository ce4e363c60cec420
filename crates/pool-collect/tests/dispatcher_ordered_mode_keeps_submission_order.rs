//! An ordered `Dispatcher` returns results and errors in submission order even
//! when jobs finish out of order; an unordered one returns them in completion
//! order. In both modes each result and error carries the index `submit`
//! returned for its job. The out-of-order finish is forced by data, not by
//! timing: the first job to start holds its worker until every other job has
//! finished.
//!
//! Only one job is ever held, so the other workers always make progress (a
//! job never waits for a job that could be queued behind it).

#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Condvar, Mutex};

use pool_collect::{Dispatcher, Indexed};
use rstest::rstest;

const JOBS: u64 = 200;
const QUEUE: usize = 4;

#[derive(Default)]
struct Stage {
    state: Mutex<StageState>,
    signal: Condvar,
}

#[derive(Default)]
struct StageState {
    /// The first job to start; it finishes last.
    holder: Option<u64>,
    released: bool,
    /// Jobs other than the holder that have finished their work.
    others_finished: u64,
    /// Job numbers in the order their work finished.
    finish_order: Vec<u64>,
}

impl Stage {
    /// Job `n`'s work: hold if it is the first to start, else finish at once.
    fn run(&self, n: u64) {
        let mut state = self.state.lock().unwrap();
        if state.holder.is_none() {
            state.holder = Some(n);
            while !state.released {
                state = self.signal.wait(state).unwrap();
            }
        } else {
            state.others_finished += 1;
            self.signal.notify_all();
        }
        state.finish_order.push(n);
    }

    /// Waits until every other job has finished, then lets the holder go.
    fn release_holder_after_the_others(&self, jobs: u64) {
        let mut state = self.state.lock().unwrap();
        while state.others_finished < jobs - 1 {
            state = self.signal.wait(state).unwrap();
        }
        state.released = true;
        self.signal.notify_all();
    }

    fn holder_and_finish_order(&self) -> (u64, Vec<u64>) {
        let state = self.state.lock().unwrap();
        (state.holder.unwrap(), state.finish_order.clone())
    }
}

#[rstest]
#[case::two_workers(2)]
#[case::four_workers(4)]
fn ordered_results_and_errors_keep_submission_order_when_jobs_finish_out_of_order(
    #[case] workers: usize,
) {
    let stage = Arc::new(Stage::default());
    let dispatcher = Dispatcher::builder()
        .workers(workers)
        .queue(QUEUE)
        .ordered(true)
        .build()
        .unwrap();
    for n in 0..JOBS {
        let stage = Arc::clone(&stage);
        let index = dispatcher.submit(move || {
            stage.run(n);
            if n % 5 == 4 { Err(n * 10) } else { Ok(n * 10) }
        });
        assert_eq!(index, n, "indices count submissions from 0");
    }
    stage.release_holder_after_the_others(JOBS);
    let outcome = dispatcher.wait();

    // The precondition that makes the test meaningful: the holder finished
    // last, and it was not the last job submitted (it started while at most
    // `QUEUE + workers` jobs had been submitted).
    let (holder, finish_order) = stage.holder_and_finish_order();
    assert_eq!(finish_order.last(), Some(&holder));
    assert!(holder < JOBS - 1, "holder {holder}");
    assert!(!finish_order.is_sorted());

    // Job `n` returns `n * 10`: each value says which job made it.
    let expected_ok: Vec<Indexed<u64>> = (0..JOBS)
        .filter(|n| n % 5 != 4)
        .map(|n| Indexed {
            index: n,
            value: n * 10,
        })
        .collect();
    let expected_failed: Vec<(u64, u64)> = (0..JOBS)
        .filter(|n| n % 5 == 4)
        .map(|n| (n, n * 10))
        .collect();
    assert_eq!(outcome.results, expected_ok);
    let failed: Vec<(u64, u64)> = outcome
        .errors
        .iter()
        .map(|e| (e.index, *e.value.failed().unwrap()))
        .collect();
    assert_eq!(failed, expected_failed);
}

#[rstest]
#[case::two_workers(2)]
#[case::four_workers(4)]
fn unordered_results_come_in_completion_order(#[case] workers: usize) {
    let stage = Arc::new(Stage::default());
    let dispatcher = Dispatcher::<u64, String>::builder()
        .workers(workers)
        .queue(QUEUE)
        .build()
        .unwrap();
    for n in 0..JOBS {
        let stage = Arc::clone(&stage);
        let index = dispatcher.submit(move || {
            stage.run(n);
            if n % 5 == 4 {
                Err(format!("job {n}"))
            } else {
                Ok(n * 10)
            }
        });
        assert_eq!(index, n, "indices count submissions from 0");
    }
    stage.release_holder_after_the_others(JOBS);
    let outcome = dispatcher.wait();
    let (holder, _) = stage.holder_and_finish_order();

    // In completion order, each result and error still names its job.
    for result in &outcome.results {
        assert_eq!(result.value, result.index * 10, "{result:?}");
    }
    for error in &outcome.errors {
        assert_eq!(
            error.value.failed().unwrap(),
            &format!("job {}", error.index)
        );
    }
    let mut indices: Vec<u64> = outcome
        .results
        .iter()
        .map(|result| result.index)
        .chain(outcome.errors.iter().map(|error| error.index))
        .collect();
    indices.sort_unstable();
    assert_eq!(indices, (0..JOBS).collect::<Vec<_>>());
    // When the holder was let go, every other job had finished its work, and
    // at most one per other worker could still be taking its completion
    // ticket; `holder < QUEUE + workers` leaves more than that many later
    // jobs, so at least one of them comes before the holder.
    assert!(holder < (QUEUE + workers) as u64, "holder {holder}");
    let finished: Vec<u64> = outcome.results.iter().map(|result| result.index).collect();
    // The holder may be a failing job: then its place is among the errors.
    let (list, holder_at) = match finished.iter().position(|&n| n == holder) {
        Some(at) => (finished, at),
        None => {
            let failed: Vec<u64> = outcome.errors.iter().map(|error| error.index).collect();
            let at = failed.iter().position(|&n| n == holder).unwrap();
            (failed, at)
        }
    };
    assert!(
        list[..holder_at].iter().any(|&n| n > holder),
        "holder {holder} at {holder_at}: {:?}",
        &list[..holder_at]
    );
}
