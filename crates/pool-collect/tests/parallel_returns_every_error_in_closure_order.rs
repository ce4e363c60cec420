//! `parallel` runs every closure, waits for all of them and returns every
//! error in closure order (not completion order); panics become errors; the
//! closures may borrow local data.
#![allow(clippy::unwrap_used)]

use std::sync::Mutex;
use std::time::Duration;

use pool_collect::{Parallel, ParallelError, parallel};
use pool_core::CancelToken;
use rstest::rstest;

/// How long a closure waits for a sibling before the test gives up on it. Only
/// a guard against a hang if the code under test is broken: the closures are
/// released by each other, never by the clock.
const HANG_GUARD: Duration = Duration::from_secs(60);

#[test]
fn three_of_five_fail_and_the_errors_come_in_closure_order_not_completion_order() {
    // Closure 4 finishes first and lets closure 3 go, which lets closure 2 go, and
    // so on: they complete in the order 4, 3, 2, 1, 0. Closures 0, 2 and 4 fail.
    let gates: Vec<CancelToken> = (0..5).map(|_| CancelToken::new()).collect();
    let completions = Mutex::new(Vec::new());
    let result = parallel((0..5).map(|index| {
        let (gates, completions) = (&gates, &completions);
        move || {
            if index < 4 {
                assert!(
                    gates[index].wait_timeout(HANG_GUARD),
                    "closure {index} was never let go"
                );
            }
            completions.lock().unwrap().push(index);
            if index > 0 {
                gates[index - 1].cancel();
            }
            if index.is_multiple_of(2) {
                Err(format!("closure {index} failed"))
            } else {
                Ok(())
            }
        }
    }));

    assert_eq!(*completions.lock().unwrap(), [4, 3, 2, 1, 0]);
    let errors = result.expect_err("three closures fail");
    assert_eq!(errors.len(), 3);
    let indices: Vec<usize> = errors.iter().map(ParallelError::index).collect();
    assert_eq!(indices, [0, 2, 4]);
    let messages: Vec<String> = errors
        .into_iter()
        .filter_map(ParallelError::into_error)
        .collect();
    assert_eq!(
        messages,
        ["closure 0 failed", "closure 2 failed", "closure 4 failed"]
    );
}

#[rstest]
#[case::none(&[], 3)]
#[case::the_first(&[0], 3)]
#[case::the_last(&[2], 3)]
#[case::all(&[0, 1, 2, 3, 4, 5, 6, 7], 8)]
#[case::a_single_closure(&[0], 1)]
#[case::every_other(&[1, 3, 5], 7)]
fn every_error_is_returned(#[case] failing: &[usize], #[case] n_closures: usize) {
    let ran = Mutex::new(Vec::new());
    let result = parallel((0..n_closures).map(|index| {
        let ran = &ran;
        move || {
            ran.lock().unwrap().push(index);
            if failing.contains(&index) {
                Err(index)
            } else {
                Ok(())
            }
        }
    }));
    let mut ran = ran.into_inner().unwrap();
    ran.sort_unstable();
    assert_eq!(
        ran,
        (0..n_closures).collect::<Vec<_>>(),
        "every closure runs"
    );
    match result {
        Ok(()) => assert!(failing.is_empty()),
        Err(errors) => {
            let returned: Vec<usize> = errors
                .into_iter()
                .filter_map(ParallelError::into_error)
                .collect();
            assert_eq!(returned, failing);
        }
    }
}

#[test]
fn closures_borrow_local_data_mutably_and_shared() {
    let input: Vec<u64> = (1..=1_000).collect();
    let mut sums = [0u64; 4];
    let chunk_len = input.len() / sums.len();
    parallel(
        input
            .chunks(chunk_len)
            .zip(sums.iter_mut())
            .map(|(chunk, sum)| {
                move || {
                    *sum = chunk.iter().sum();
                    Ok::<(), String>(())
                }
            }),
    )
    .unwrap();
    assert_eq!(sums.iter().sum::<u64>(), 500_500);
    assert_eq!(sums[0], (1..=250).sum::<u64>());
}

#[test]
fn a_panic_becomes_an_error_and_the_others_still_finish() {
    let finished = Mutex::new(Vec::new());
    let result = parallel((0..4).map(|index| {
        let finished = &finished;
        move || {
            match index {
                1 => panic!("closure {index} panics"),
                3 => std::panic::panic_any(17u32),
                _ => {}
            }
            finished.lock().unwrap().push(index);
            Err::<(), _>(format!("closure {index} failed"))
        }
    }));
    let mut finished = finished.into_inner().unwrap();
    finished.sort_unstable();
    assert_eq!(finished, [0, 2]);
    let errors = result.expect_err("every closure fails").all();
    assert_eq!(
        errors,
        [
            ParallelError::Failed {
                index: 0,
                error: "closure 0 failed".to_owned()
            },
            ParallelError::Panicked {
                index: 1,
                message: "closure 1 panics".to_owned()
            },
            ParallelError::Failed {
                index: 2,
                error: "closure 2 failed".to_owned()
            },
            ParallelError::Panicked {
                index: 3,
                message: "a panic with a non-string payload".to_owned()
            },
        ]
    );
}

#[test]
fn the_builder_takes_closures_of_different_types() {
    let mut text = String::new();
    let mut numbers = Vec::new();
    let flag = CancelToken::new();
    let parallel_run = Parallel::default()
        .task(|| {
            text.push_str("loaded");
            Ok(())
        })
        .task(|| {
            numbers.extend([1, 2, 3]);
            Err("numbers are odd")
        })
        .cancelable_task(|token: &CancelToken| {
            // The failure of closure 1 cancels the run token; this one waits for it.
            assert!(token.wait_timeout(HANG_GUARD));
            flag.cancel();
            Ok(())
        });
    assert_eq!(parallel_run.len(), 3);
    let errors = parallel_run.run().expect_err("closure 1 fails");
    assert_eq!(
        errors.to_string(),
        "1 error: closure 1 failed: numbers are odd"
    );
    assert_eq!((text.as_str(), numbers.len()), ("loaded", 3));
    assert!(flag.is_cancelled());
}

#[test]
fn the_errors_convert_into_anyhow_with_the_question_mark() {
    fn load() -> anyhow::Result<()> {
        parallel([|| anyhow::bail!("no disk"), || anyhow::bail!("no network")])?;
        Ok(())
    }
    let error = load().unwrap_err();
    assert_eq!(
        error.to_string(),
        "2 errors: closure 0 failed: no disk; closure 1 failed: no network"
    );
}

/// `{:#}` on the error list reaches each closure's error, so an anyhow error
/// shows its causes; `{}` shows only the outermost message.
#[test]
fn the_alternate_format_shows_every_cause() {
    let errors = parallel((0..2).map(|index| {
        move || -> anyhow::Result<()> {
            Err(anyhow::anyhow!("disk full").context(format!("writing part {index}")))
        }
    }))
    .expect_err("both closures fail");
    assert_eq!(
        errors.to_string(),
        "2 errors: closure 0 failed: writing part 0; closure 1 failed: writing part 1"
    );
    assert_eq!(
        format!("{errors:#}"),
        "2 errors: closure 0 failed: writing part 0: disk full; \
         closure 1 failed: writing part 1: disk full"
    );
}
