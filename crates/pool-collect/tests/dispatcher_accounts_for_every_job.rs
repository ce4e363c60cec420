//! A `Dispatcher` hands back one result or one error per submitted job, with
//! many workers and many jobs, some failing and some panicking, from one
//! producer or several, and also when it is dropped without `wait`.

#![allow(clippy::unwrap_used)]

use std::panic;
use std::sync::Arc;
use std::sync::Once;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::thread;

use pool_collect::{Dispatcher, Indexed, Job, JobError};
use rstest::rstest;

/// Keeps the deliberate panics of these tests off stderr; any other panic
/// (a failing assertion) still goes to the default hook.
fn quiet_deliberate_panics() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let default_hook = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            let payload = info.payload();
            let message = payload
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| payload.downcast_ref::<&str>().copied())
                .unwrap_or("");
            if !message.starts_with("deliberate") {
                default_hook(info);
            }
        }));
    });
}

/// Job `n`: panics if `n % 13 == 0`, fails if `n % 7 == 0`, else returns `n`.
fn job(n: u64) -> impl FnOnce() -> Result<u64, String> + Send + 'static {
    move || {
        if n.is_multiple_of(13) {
            panic!("deliberate panic in job {n}");
        }
        if n.is_multiple_of(7) {
            return Err(format!("job {n} failed"));
        }
        Ok(n)
    }
}

/// The job number in `job {n} failed` or `deliberate panic in job {n}`.
fn job_number(text: &str) -> u64 {
    text.split_whitespace()
        .find_map(|word| word.parse().ok())
        .unwrap()
}

#[rstest]
#[case::one_worker(1, 1, 300, false)]
#[case::few_workers_short_queue(4, 2, 2_000, false)]
#[case::many_workers_long_queue(8, 64, 5_000, false)]
#[case::ordered_one_worker(1, 1, 300, true)]
#[case::ordered_many_workers(8, 3, 5_000, true)]
fn results_and_errors_add_up_to_the_jobs(
    #[case] workers: usize,
    #[case] queue: usize,
    #[case] jobs: u64,
    #[case] ordered: bool,
) {
    quiet_deliberate_panics();
    let dispatcher = Dispatcher::builder()
        .workers(workers)
        .queue(queue)
        .ordered(ordered)
        .build()
        .unwrap();
    for n in 0..jobs {
        dispatcher.submit(job(n));
    }
    let outcome = dispatcher.wait();
    assert_eq!(outcome.jobs() as u64, jobs);
    assert_eq!((outcome.results.len() + outcome.errors.len()) as u64, jobs);

    let expected_ok: Vec<u64> = (0..jobs).filter(|n| n % 13 != 0 && n % 7 != 0).collect();
    let expected_failed: Vec<String> = (0..jobs)
        .filter(|n| n % 13 != 0 && n % 7 == 0)
        .map(|n| format!("job {n} failed"))
        .collect();
    let expected_panics: Vec<String> = (0..jobs)
        .filter(|n| n % 13 == 0)
        .map(|n| format!("deliberate panic in job {n}"))
        .collect();

    // Job `n` was the `n`-th submitted: its index is `n`, and so is its value.
    let mut results: Vec<u64> = outcome
        .results
        .iter()
        .map(|result| {
            assert_eq!(
                result.index, result.value,
                "a result carries its job's index"
            );
            result.value
        })
        .collect();
    if ordered {
        assert_eq!(
            results, expected_ok,
            "ordered results keep submission order"
        );
    } else {
        results.sort_unstable();
        assert_eq!(results, expected_ok);
    }
    let mut failed: Vec<String> = outcome
        .errors
        .iter()
        .filter_map(|e| {
            let failed = e.value.failed()?;
            assert_eq!(
                e.index,
                job_number(failed),
                "an error carries its job's index"
            );
            Some(failed.clone())
        })
        .collect();
    let mut panics: Vec<String> = outcome
        .errors
        .iter()
        .filter_map(|e| {
            let message = e.value.panic_message()?;
            assert_eq!(
                e.index,
                job_number(message),
                "a panic carries its job's index"
            );
            Some(message.to_owned())
        })
        .collect();
    if !ordered {
        failed.sort_unstable_by_key(|text| job_number(text));
        panics.sort_unstable_by_key(|text| job_number(text));
    }
    assert_eq!(failed, expected_failed);
    assert_eq!(panics, expected_panics);
}

#[test]
fn into_result_and_display_join_every_error() {
    quiet_deliberate_panics();
    let dispatcher = Dispatcher::builder()
        .workers(2)
        .ordered(true)
        .build()
        .unwrap();
    dispatcher.submit(|| Ok(1));
    dispatcher.submit(|| Err("disk full".to_owned()));
    dispatcher.submit(|| -> Result<u32, String> { panic!("deliberate: bad row") });
    let errors = dispatcher.wait().into_result().unwrap_err();
    assert_eq!(errors.len(), 2);
    assert_eq!(
        errors.to_string(),
        "2 errors: disk full; job panicked: deliberate: bad row"
    );
    assert!(errors.iter().any(JobError::is_panic));
    let all = errors.all();
    assert_eq!(all[0], JobError::Failed("disk full".to_owned()));

    let clean = Dispatcher::<u32, String>::builder()
        .workers(2)
        .build()
        .unwrap();
    for n in 0..10 {
        clean.submit(move || Ok(n));
    }
    let mut values = clean.wait().into_result().unwrap();
    values.sort_unstable();
    assert_eq!(values, (0..10).collect::<Vec<_>>());
}

/// A job type of its own, as bigopool users write them.
struct Square {
    n: u64,
    runs: Arc<AtomicUsize>,
}

impl Job<u64, std::io::Error> for Square {
    fn execute(self) -> Result<u64, std::io::Error> {
        self.runs.fetch_add(1, SeqCst);
        Ok(self.n * self.n)
    }
}

#[test]
fn jobs_from_several_producer_threads_each_run_once() {
    const PRODUCERS: u64 = 4;
    const PER_PRODUCER: u64 = 500;
    let runs = Arc::new(AtomicUsize::new(0));
    let dispatcher = Dispatcher::builder().workers(3).queue(5).build().unwrap();
    thread::scope(|scope| {
        for producer in 0..PRODUCERS {
            let dispatcher = &dispatcher;
            let runs = &runs;
            scope.spawn(move || {
                for k in 0..PER_PRODUCER {
                    let n = producer * PER_PRODUCER + k;
                    dispatcher.submit(Square {
                        n,
                        runs: Arc::clone(runs),
                    });
                }
            });
        }
    });
    let outcome = dispatcher.wait();
    assert!(outcome.errors.is_empty());
    assert_eq!(runs.load(SeqCst) as u64, PRODUCERS * PER_PRODUCER);
    let mut squares: Vec<u64> = outcome
        .results
        .into_iter()
        .map(Indexed::into_value)
        .collect();
    squares.sort_unstable();
    let expected: Vec<u64> = (0..PRODUCERS * PER_PRODUCER).map(|n| n * n).collect();
    assert_eq!(squares, expected);
}

#[test]
fn dropping_without_wait_still_runs_every_job() {
    let runs = Arc::new(AtomicUsize::new(0));
    let dispatcher = Dispatcher::builder().workers(2).queue(2).build().unwrap();
    for n in 0..100 {
        dispatcher.submit(Square {
            n,
            runs: Arc::clone(&runs),
        });
    }
    drop(dispatcher);
    assert_eq!(runs.load(SeqCst), 100);
}
