//! `cancelable_parallel`: the first error or panic cancels the run token, every
//! other closure observes it, all are awaited and every error is returned; the
//! caller's token cancels the run, the run never cancels the caller's token.
#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use pool_collect::{Parallel, ParallelError, cancelable_parallel};
use pool_core::CancelToken;

/// How long a closure waits for the cancellation before the test gives up on
/// it: only a guard against a hang if the code under test is broken. A closure
/// that times out reports it, so the test fails instead of hanging.
const HANG_GUARD: Duration = Duration::from_secs(60);

/// Waits for the run to be cancelled; an error if it never was.
fn wait_for_cancel(index: usize, token: &CancelToken) -> Result<(), String> {
    if token.wait_timeout(HANG_GUARD) {
        Err(format!("closure {index} saw the cancel"))
    } else {
        Err(format!("closure {index} never saw the cancel"))
    }
}

#[test]
fn the_first_error_cancels_the_others_and_every_error_is_returned() {
    let caller = CancelToken::new();
    let result = cancelable_parallel(
        &caller,
        (0..5).map(|index| {
            move |token: &CancelToken| {
                if index == 2 {
                    return Err("closure 2 fails first".to_owned());
                }
                wait_for_cancel(index, token)
            }
        }),
    );
    let errors: Vec<String> = result
        .expect_err("every closure fails")
        .into_iter()
        .filter_map(ParallelError::into_error)
        .collect();
    assert_eq!(
        errors,
        [
            "closure 0 saw the cancel",
            "closure 1 saw the cancel",
            "closure 2 fails first",
            "closure 3 saw the cancel",
            "closure 4 saw the cancel",
        ]
    );
    assert!(
        !caller.is_cancelled(),
        "the run must not cancel the caller's token"
    );
}

#[test]
fn closures_that_return_ok_after_the_cancel_leave_only_the_real_failure() {
    let observed = AtomicUsize::new(0);
    let result = cancelable_parallel(
        &CancelToken::new(),
        (0..4).map(|index| {
            let observed = &observed;
            move |token: &CancelToken| {
                if index == 0 {
                    return Err("the real failure");
                }
                // A worker loop that checks the flag between units of work.
                let give_up = Instant::now() + HANG_GUARD;
                while !token.is_cancelled() {
                    if Instant::now() > give_up {
                        return Err("never saw the cancel");
                    }
                    std::thread::yield_now();
                }
                observed.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }
        }),
    );
    assert_eq!(observed.load(Ordering::SeqCst), 3);
    let errors = result.expect_err("closure 0 fails").all();
    assert_eq!(
        errors,
        [ParallelError::Failed {
            index: 0,
            error: "the real failure"
        }]
    );
}

#[test]
fn the_callers_token_reaches_every_closure() {
    let caller = CancelToken::new();
    let result = cancelable_parallel(
        &caller,
        (0..4).map(|index| {
            let caller = &caller;
            move |token: &CancelToken| {
                if index == 3 {
                    // Someone outside the run shuts it down.
                    caller.cancel();
                    return Ok(());
                }
                match wait_for_cancel(index, token) {
                    Err(message) if message.ends_with("saw the cancel") => Ok(()),
                    other => other,
                }
            }
        }),
    );
    assert_eq!(result, Ok(()));
}

#[test]
fn a_cancelled_callers_token_is_seen_at_once() {
    let caller = CancelToken::new();
    caller.cancel();
    let seen = AtomicUsize::new(0);
    let result = cancelable_parallel(
        &caller,
        (0..3).map(|_| {
            let seen = &seen;
            move |token: &CancelToken| {
                if token.is_cancelled() {
                    seen.fetch_add(1, Ordering::SeqCst);
                }
                Ok::<(), String>(())
            }
        }),
    );
    assert_eq!(result, Ok(()));
    assert_eq!(seen.load(Ordering::SeqCst), 3, "the closures still run");
}

#[test]
fn a_panic_cancels_the_others_and_is_returned_with_them() {
    let result = cancelable_parallel(
        &CancelToken::new(),
        (0..3).map(|index| {
            move |token: &CancelToken| {
                if index == 1 {
                    panic!("closure 1 lost its mind");
                }
                wait_for_cancel(index, token)
            }
        }),
    );
    let errors = result.expect_err("every closure fails").all();
    assert_eq!(
        errors,
        [
            ParallelError::Failed {
                index: 0,
                error: "closure 0 saw the cancel".to_owned()
            },
            ParallelError::Panicked {
                index: 1,
                message: "closure 1 lost its mind".to_owned()
            },
            ParallelError::Failed {
                index: 2,
                error: "closure 2 saw the cancel".to_owned()
            },
        ]
    );
}

#[test]
fn a_closure_may_cancel_its_siblings_without_failing() {
    let result = cancelable_parallel(
        &CancelToken::new(),
        (0..3).map(|index| {
            move |token: &CancelToken| {
                if index == 0 {
                    // Found what everyone was looking for: stop the search.
                    token.cancel();
                    return Ok(());
                }
                match wait_for_cancel(index, token) {
                    Err(message) if message.ends_with("saw the cancel") => Ok(()),
                    other => other,
                }
            }
        }),
    );
    assert_eq!(result, Ok::<(), _>(()));
}

#[test]
fn the_builder_runs_plain_and_cancelable_closures_under_the_callers_token() {
    let caller = CancelToken::new();
    let plain_ran = AtomicUsize::new(0);
    let result = Parallel::default()
        .task(|| {
            plain_ran.fetch_add(1, Ordering::SeqCst);
            Err("plain closure fails".to_owned())
        })
        .cancelable_task(|token: &CancelToken| wait_for_cancel(1, token))
        .run_with(&caller);
    let errors = result.expect_err("both fail").all();
    assert_eq!(errors.len(), 2);
    assert_eq!(
        errors[0].error().map(String::as_str),
        Some("plain closure fails")
    );
    assert_eq!(
        errors[1].error().map(String::as_str),
        Some("closure 1 saw the cancel")
    );
    assert_eq!(plain_ran.load(Ordering::SeqCst), 1);
    assert!(!caller.is_cancelled());
}
