//! A job's panic keeps its payload: `JobError::Panicked` carries the value
//! given to `panic!` or `panic_any`, as `JoinHandle::join` would hand it
//! over, and equality of job errors still compares only what they say.
#![allow(clippy::unwrap_used)] // Tests may unwrap: a panic is a test failure.

use pool_collect::{Dispatcher, JobError};
use pool_core::PanicPayload;

/// What the jobs panic with: not a string, so only the payload says it.
#[derive(Debug, Clone, PartialEq)]
struct Quota {
    job: u32,
}

/// Keeps the default hook quiet about the deliberate panics.
fn quiet() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let text = info.payload().downcast_ref::<&str>().copied().unwrap_or("");
            if !info.payload().is::<Quota>() && !text.contains("deliberate") {
                previous(info);
            }
        }));
    });
}

#[test]
fn a_panicking_job_hands_its_payload_back() {
    quiet();
    let dispatcher = Dispatcher::<u32, String>::builder()
        .workers(2)
        .ordered(true)
        .build()
        .unwrap();
    for job in 0..6 {
        dispatcher.submit(move || match job % 3 {
            0 => Ok(job),
            1 => std::panic::panic_any(Quota { job }),
            _ => panic!("deliberate panic in job {job}"),
        });
    }
    let outcome = dispatcher.wait();
    let results: Vec<(u64, u32)> = outcome
        .results
        .iter()
        .map(|result| (result.index, result.value))
        .collect();
    assert_eq!(results, [(0, 0), (3, 3)]);
    let mut failed_jobs: Vec<u64> = outcome.errors.iter().map(|error| error.index).collect();
    failed_jobs.sort_unstable();
    assert_eq!(failed_jobs, [1, 2, 4, 5]);
    let payloads: Vec<PanicPayload> = outcome
        .errors
        .into_iter()
        .map(|error| error.value.into_panic_payload().unwrap())
        .collect();
    assert_eq!(payloads.len(), 4);
    let mut quotas = Vec::new();
    let mut texts = Vec::new();
    for payload in payloads {
        match payload.downcast::<Quota>() {
            Ok(quota) => quotas.push(*quota),
            Err(payload) => texts.push(*payload.downcast::<String>().unwrap()),
        }
    }
    assert_eq!(quotas, [Quota { job: 1 }, Quota { job: 4 }]);
    assert_eq!(
        texts,
        ["deliberate panic in job 2", "deliberate panic in job 5"]
    );
}

#[test]
fn job_errors_compare_by_what_they_say_not_by_payload() {
    let panicked = |payload: u32| JobError::<String>::Panicked {
        message: "boom".to_owned(),
        payload: PanicPayload::new(Box::new(payload)),
    };
    assert_eq!(panicked(1), panicked(2));
    assert_ne!(panicked(1), JobError::Failed("boom".to_owned()));
    assert_eq!(
        JobError::<String>::Failed("disk full".to_owned()),
        JobError::Failed("disk full".to_owned())
    );
    let error = panicked(7);
    assert!(error.is_panic());
    assert_eq!(error.panic_message(), Some("boom"));
    assert_eq!(error.to_string(), "job panicked: boom");
    assert!(
        JobError::Failed::<String>("x".to_owned())
            .into_panic_payload()
            .is_none()
    );
}
