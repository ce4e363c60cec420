//! `Builder::item_key`: a failed or panicking item's error names it, in
//! `PoolError::Worker` and `PoolError::Panicked` (and their `Display`), in
//! the report's retained errors, and in what `wait` returns; a batch worker's
//! error names the batch's first item; the key function runs once per item
//! (once per batch for a batch worker) and never for a pool without it.
//! The tracing events' `key` field is checked in `tracing_feature.rs`.

#![allow(clippy::unwrap_used)] // Tests may unwrap: a panic is a test failure.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};

use rstest::rstest;

use pool_core::{Ctx, ItemKey, PanicSite, Pool, PoolError, Report};

/// A job as a job runner has them: an id, and something to do.
#[derive(Debug)]
struct Job {
    id: u64,
    fails: bool,
    panics: bool,
}

impl Job {
    /// Job `id`: fails when `id % 10 == 3`, panics when `id % 10 == 7`.
    fn numbered(id: u64) -> Self {
        Job {
            id,
            fails: id % 10 == 3,
            panics: id % 10 == 7,
        }
    }
}

fn run_job(_ctx: &Ctx, job: Job) -> anyhow::Result<()> {
    if job.panics {
        panic!("deliberate panic in job {}", job.id);
    }
    anyhow::ensure!(!job.fails, "job {} failed", job.id);
    Ok(())
}

/// The keys of the report's errors, as numbers, split into worker errors
/// and panics at the work.
fn keys_of(report: &Report) -> (BTreeSet<u64>, BTreeSet<u64>) {
    let mut failed = BTreeSet::new();
    let mut panicked = BTreeSet::new();
    for error in report.errors() {
        let key = error.key().and_then(ItemKey::as_u64).unwrap();
        match error {
            PoolError::Worker { .. } => assert!(failed.insert(key), "{error}"),
            PoolError::Panicked {
                site: PanicSite::Work,
                ..
            } => assert!(panicked.insert(key), "{error}"),
            other => panic!("unexpected error {other}"),
        }
    }
    (failed, panicked)
}

#[rstest]
fn every_retained_error_names_its_item(
    #[values(1, 4, 64)] batch_size: usize,
    #[values(false, true)] keyed: bool,
) {
    common::quiet_deliberate_panics();
    let n_jobs = 200;
    let calls = Arc::new(AtomicU64::new(0));
    let key_calls = Arc::clone(&calls);
    let builder = Pool::builder()
        .workers(3)
        .batch_size(batch_size)
        .continue_on_error()
        .item_key(move |job: &Job| {
            key_calls.fetch_add(1, SeqCst);
            job.id
        });
    let builder = if keyed {
        builder.chunk_by(|job: &Job| job.id % 5)
    } else {
        builder
    };
    let pool = builder.build(run_job).unwrap();
    let mut submitter = pool.submitter();
    for id in 0..n_jobs {
        submitter.submit(Job::numbered(id)).unwrap();
    }
    drop(submitter);
    let report = pool.join();
    assert!(report.is_balanced(), "{report}");

    let (failed, panicked) = keys_of(&report);
    let expected =
        |rest: u64| -> BTreeSet<u64> { (0..n_jobs).filter(|id| id % 10 == rest).collect() };
    assert_eq!(failed, expected(3));
    assert_eq!(panicked, expected(7));
    assert_eq!(report.failed(), 40);
    // The cost the docs state: one key per item, on the worker side.
    assert_eq!(calls.load(SeqCst), n_jobs);
    for error in report.errors() {
        let key = error.key().unwrap();
        assert!(
            error.to_string().contains(&format!(" on item {key}: ")),
            "{error}"
        );
    }
}

#[test]
fn the_error_wait_returns_names_the_item_and_says_it() {
    let pool = Pool::builder()
        .workers(1)
        .item_key(|job: &Job| format!("job-{}", job.id))
        .build(run_job)
        .unwrap();
    let sender = pool.sender();
    for id in [1, 2, 3] {
        sender.send(Job::numbered(id)).unwrap();
    }
    let error = pool.wait().unwrap_err();
    assert!(matches!(error, PoolError::Worker { .. }), "{error:?}");
    assert_eq!(error.key().and_then(ItemKey::as_str), Some("job-3"));
    assert_eq!(
        error.to_string(),
        "worker #0 failed on item job-3: job 3 failed"
    );
}

#[test]
fn a_panic_names_its_item_and_says_it() {
    common::quiet_deliberate_panics();
    let pool = Pool::builder()
        .workers(1)
        .item_key(|job: &Job| job.id)
        .build(run_job)
        .unwrap();
    pool.sender().send(Job::numbered(17)).unwrap();
    let error = pool.wait().unwrap_err();
    match &error {
        PoolError::Panicked {
            site: PanicSite::Work,
            key: Some(key),
            message,
            ..
        } => {
            assert_eq!(key.as_u64(), Some(17));
            assert_eq!(message, "deliberate panic in job 17");
        }
        other => panic!("expected a keyed panic, got {other:?}"),
    }
    assert_eq!(
        error.to_string(),
        "worker #0 panicked in work on item 17: deliberate panic in job 17"
    );
}

#[test]
fn without_an_item_key_errors_have_none_and_read_as_before() {
    common::quiet_deliberate_panics();
    let pool = Pool::builder()
        .workers(2)
        .continue_on_error()
        .build(run_job)
        .unwrap();
    let mut submitter = pool.submitter();
    for id in 0..20 {
        submitter.submit(Job::numbered(id)).unwrap();
    }
    drop(submitter);
    let report = pool.join();
    assert_eq!(report.errors().len(), 4);
    for error in report.errors() {
        assert_eq!(error.key(), None);
        assert!(!error.to_string().contains("on item"), "{error}");
    }
}

#[test]
fn a_batch_workers_error_names_the_first_item_of_its_batch() {
    common::quiet_deliberate_panics();
    let calls = Arc::new(AtomicU64::new(0));
    let key_calls = Arc::clone(&calls);
    let pool = Pool::builder()
        .workers(1)
        .batch_size(10)
        .continue_on_error()
        .item_key(move |job: &Job| {
            key_calls.fetch_add(1, SeqCst);
            job.id
        })
        .build_batch(|_ctx: &Ctx, batch: &mut Vec<Job>| {
            let ids: Vec<u64> = batch.drain(..).map(|job| job.id).collect();
            if ids.contains(&27) {
                panic!("deliberate panic in the batch of {ids:?}");
            }
            anyhow::ensure!(!ids.contains(&13), "a batch with job 13");
            Ok(())
        })
        .unwrap();
    let mut submitter = pool.submitter();
    for id in 0..40 {
        submitter.submit(Job::numbered(id)).unwrap();
    }
    drop(submitter);
    let report = pool.join();
    assert_eq!((report.processed(), report.failed()), (20, 20));
    let mut named: Vec<(bool, u64)> = report
        .errors()
        .iter()
        .map(|error| {
            (
                matches!(error, PoolError::Panicked { .. }),
                error.key().and_then(ItemKey::as_u64).unwrap(),
            )
        })
        .collect();
    named.sort_unstable();
    // Batches of ten: job 13 is in the batch that starts at 10, job 27 in
    // the one that starts at 20.
    assert_eq!(named, [(false, 10), (true, 20)]);
    // One key per batch, not per item.
    assert_eq!(calls.load(SeqCst), 4);
}

#[test]
fn a_panicking_key_function_fails_its_item_with_an_unkeyed_panic() {
    common::quiet_deliberate_panics();
    let ran = Arc::new(AtomicU64::new(0));
    let worker_ran = Arc::clone(&ran);
    let pool = Pool::builder()
        .workers(1)
        .continue_on_error()
        .item_key(|id: &u64| {
            assert!(*id != 4, "deliberate panic in the key of {id}");
            *id
        })
        .build(move |_ctx: &Ctx, _id: u64| {
            worker_ran.fetch_add(1, SeqCst);
            Ok::<(), std::io::Error>(())
        })
        .unwrap();
    let mut submitter = pool.submitter();
    for id in 0..10 {
        submitter.submit(id).unwrap();
    }
    drop(submitter);
    let report = pool.join();
    assert_eq!((report.processed(), report.failed()), (9, 1));
    assert_eq!(
        ran.load(SeqCst),
        9,
        "the item whose key panicked did not run"
    );
    match report.errors() {
        [
            PoolError::Panicked {
                site: PanicSite::Work,
                key: None,
                message,
                ..
            },
        ] => assert_eq!(message, "deliberate panic in the key of 4"),
        other => panic!("expected one unkeyed panic, got {other:?}"),
    }
}

#[test]
fn keys_of_any_displayable_type_come_back_as_that_type() {
    #[derive(Debug, Clone, PartialEq)]
    struct Path(String);
    impl std::fmt::Display for Path {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "<{}>", self.0)
        }
    }
    let pool = Pool::builder()
        .workers(1)
        .item_key(|path: &String| ItemKey::new(Path(path.clone())))
        .build(|_ctx: &Ctx, path: String| {
            anyhow::ensure!(path.ends_with(".csv"), "not a CSV file");
            Ok(())
        })
        .unwrap();
    pool.sender().send("data/a.txt".to_owned()).unwrap();
    let error = pool.wait().unwrap_err();
    let key = error.key().unwrap();
    assert_eq!(key.downcast_ref::<Path>(), Some(&Path("data/a.txt".into())));
    assert_eq!(key.as_str(), None);
    assert_eq!(
        error.to_string(),
        "worker #0 failed on item <data/a.txt>: not a CSV file"
    );
}

#[test]
fn item_keys_compare_by_value() {
    assert_eq!(ItemKey::from(7u8), ItemKey::from(7i64));
    assert_eq!(ItemKey::from(7usize).as_i64(), Some(7));
    assert_eq!(ItemKey::from(-1i32).as_u64(), None);
    assert_eq!(ItemKey::from("a"), ItemKey::from("a".to_owned()));
    assert_ne!(ItemKey::from("7"), ItemKey::from(7u32));
    assert_eq!(ItemKey::new(1.5f64), ItemKey::new(1.5f64));
    let set: std::collections::HashSet<ItemKey> =
        [ItemKey::from(1u64), ItemKey::from(1i8), ItemKey::from("1")]
            .into_iter()
            .collect();
    assert_eq!(set.len(), 2);
    assert_eq!(format!("{:?}", ItemKey::from("job")), "ItemKey(\"job\")");
}
