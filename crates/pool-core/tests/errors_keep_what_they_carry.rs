//! The pool's errors keep what they carry. A caught panic keeps its payload
//! (`PoolError::Panicked::payload`), wherever the panic was (work, maker,
//! `finish`, callbacks, an item's `Drop`), and `resume_panics` still
//! re-raises the first one, kept in the report or not. A worker's error keeps
//! its type: `PoolError::find` and `find_error` find it through `anyhow`
//! (which the pool now boxes whole), `PoolError::Many`, `Finish`, every kind
//! of worker (`build`, `build_stateful`, `build_batch`, `BoxWorker`) and a
//! closure layer, and through a wrapper registered with `see_through`.
#![allow(clippy::unwrap_used)] // Tests may unwrap: a panic is a test failure.

mod common;

use std::error::Error;
use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};

use pool_core::{
    BoxError, BoxWorker, Ctx, Next, PanicPayload, PanicSite, Pool, PoolError, Report, SeeThrough,
    Worker, box_error, find_error, layer_fn, see_through,
};

/// What the deliberate panics carry: no text, so only the payload says it.
#[derive(Debug, Clone, PartialEq)]
struct Poisoned(u64);

/// Keeps the default hook quiet about `Poisoned` panics (and, through
/// `common`, about panics whose text says "deliberate").
fn quiet() {
    common::quiet_deliberate_panics();
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !info.payload().is::<Poisoned>() {
                previous(info);
            }
        }));
    });
}

fn submit(pool: &Pool<u64>, items: std::ops::Range<u64>) {
    let mut submitter = pool.submitter();
    for item in items {
        submitter.submit(item).unwrap();
    }
}

/// The report's errors, by value.
fn errors(report: Report) -> Vec<PoolError> {
    match report.into_result() {
        Err(PoolError::Many { errors, .. }) => errors,
        Err(error) => vec![error],
        Ok(_) => Vec::new(),
    }
}

/// Each caught panic's site and payload, if the payload is a `Poisoned`.
fn poisoned(errors: Vec<PoolError>) -> Vec<(PanicSite, Option<Poisoned>)> {
    errors
        .into_iter()
        .filter_map(|error| match error {
            PoolError::Panicked { site, payload, .. } => Some((
                site,
                payload.downcast::<Poisoned>().ok().map(|boxed| *boxed),
            )),
            _ => None,
        })
        .collect()
}

#[test]
fn a_work_panic_keeps_the_value_given_to_panic_any() {
    quiet();
    let pool = Pool::builder()
        .workers(2)
        .continue_on_error()
        .build(|_ctx: &Ctx, item: u64| {
            if item % 10 == 3 {
                std::panic::panic_any(Poisoned(item));
            }
            Ok::<(), io::Error>(())
        })
        .unwrap();
    submit(&pool, 0..30);
    let mut found = poisoned(errors(pool.join()));
    found.sort_by_key(|(_, poisoned)| poisoned.as_ref().map(|p| p.0));
    assert_eq!(
        found,
        [3, 13, 23].map(|item| (PanicSite::Work, Some(Poisoned(item))))
    );
}

/// A stateful worker whose `finish` and `Drop` panic with payloads.
struct Brittle(u64);

impl Worker<u64> for Brittle {
    type Error = io::Error;

    fn work(&mut self, _ctx: &Ctx, _item: u64) -> io::Result<()> {
        Ok(())
    }

    fn finish(&mut self, _ctx: &Ctx) -> io::Result<()> {
        std::panic::panic_any(Poisoned(self.0))
    }
}

#[test]
fn maker_finish_and_callback_panics_keep_their_payloads() {
    quiet();
    let pool = Pool::builder()
        .workers(2)
        .continue_on_error()
        .on_worker_done(|id, _counts| std::panic::panic_any(Poisoned(100 + id.index() as u64)))
        .on_pool_done(|_report| std::panic::panic_any(Poisoned(1_000)))
        .build_stateful(|ctx: &Ctx| Brittle(10 + ctx.worker_id().index() as u64))
        .unwrap();
    submit(&pool, 0..10);
    let mut found = poisoned(errors(pool.join()));
    found.sort_by_key(|(_, poisoned)| poisoned.as_ref().map(|p| p.0));
    assert_eq!(
        found,
        [
            (PanicSite::Finish, Some(Poisoned(10))),
            (PanicSite::Finish, Some(Poisoned(11))),
            (PanicSite::Callback, Some(Poisoned(100))),
            (PanicSite::Callback, Some(Poisoned(101))),
            (PanicSite::Callback, Some(Poisoned(1_000))),
        ]
    );

    let pool = Pool::builder()
        .workers(1)
        .build_stateful(|_ctx: &Ctx| -> fn(&Ctx, u64) -> io::Result<()> {
            std::panic::panic_any(Poisoned(7))
        })
        .unwrap();
    assert_eq!(
        poisoned(errors(pool.join())),
        [(PanicSite::Maker, Some(Poisoned(7)))]
    );
}

#[test]
fn resume_panics_re_raises_the_first_payload_kept_in_the_report_or_not() {
    quiet();
    // One worker, items in order: an error first, then two panics. With room
    // for one error the first panic is not kept; with room for all it is the
    // second error kept. Either way it is the one re-raised.
    for error_limit in [1, 10] {
        let pool = Pool::builder()
            .workers(1)
            .continue_on_error()
            .error_limit(error_limit)
            .resume_panics(true)
            .build(|_ctx: &Ctx, item: u64| {
                if item > 0 {
                    std::panic::panic_any(Poisoned(item));
                }
                Err(io::Error::other("an ordinary error first"))
            })
            .unwrap();
        submit(&pool, 0..3);
        let payload = catch_unwind(AssertUnwindSafe(|| pool.wait())).expect_err("re-raised");
        assert_eq!(
            payload.downcast_ref::<Poisoned>(),
            Some(&Poisoned(1)),
            "error_limit {error_limit}"
        );
    }
}

#[test]
fn a_payload_can_be_read_borrowed_mutably_taken_or_re_raised() {
    let mut payload = PanicPayload::new(Box::new(Poisoned(5)));
    assert!(payload.is::<Poisoned>());
    assert!(!payload.is::<String>());
    assert_eq!(
        payload.with(|payload| payload.downcast_ref::<Poisoned>().cloned()),
        Some(Poisoned(5))
    );
    payload.get_mut().downcast_mut::<Poisoned>().unwrap().0 = 6;
    assert_eq!(payload.message(), "a panic with a non-string payload");
    let payload = payload.downcast::<String>().unwrap_err();
    let resumed = catch_unwind(AssertUnwindSafe(|| payload.resume())).unwrap_err();
    assert_eq!(resumed.downcast_ref::<Poisoned>(), Some(&Poisoned(6)));
    let text = PanicPayload::from(Box::new("text") as Box<dyn std::any::Any + Send>);
    assert_eq!(text.message(), "text");
    assert_eq!(format!("{text:?}"), "PanicPayload(..)");
}

#[derive(Debug, thiserror::Error)]
enum StoreError {
    #[error("key {0} not found")]
    NotFound(u64),
    #[error("the disk failed")]
    Disk(#[source] io::Error),
}

/// The one worker error of `report`, and the `StoreError` and `io::Error`
/// kind a search finds in it, by `PoolError::find` and by `find_error` (the
/// two must agree).
fn found(report: Report) -> (Option<String>, Option<io::ErrorKind>) {
    let mut errors = errors(report);
    assert_eq!(errors.len(), 1, "{errors:?}");
    let error = errors.pop().unwrap();
    let by_method = (
        error.find::<StoreError>().map(ToString::to_string),
        error.find::<io::Error>().map(io::Error::kind),
    );
    let by_function = (
        find_error::<StoreError>(&error).map(ToString::to_string),
        find_error::<io::Error>(&error).map(io::Error::kind),
    );
    assert_eq!(by_method, by_function);
    by_method
}

fn not_found(key: u64) -> (Option<String>, Option<io::ErrorKind>) {
    (Some(format!("key {key} not found")), None)
}

#[test]
fn find_reaches_a_typed_error_inside_anyhow_from_every_kind_of_worker() {
    let typed = |_ctx: &Ctx, item: u64| -> anyhow::Result<()> { Err(StoreError::NotFound(item))? };
    let pool = Pool::builder().workers(1).build(typed).unwrap();
    submit(&pool, 4..5);
    assert_eq!(found(pool.join()), not_found(4));

    let pool = Pool::builder()
        .workers(1)
        .build_stateful(move |_ctx: &Ctx| typed)
        .unwrap();
    submit(&pool, 5..6);
    assert_eq!(found(pool.join()), not_found(5));

    let pool = Pool::builder()
        .workers(1)
        .build_batch(|_ctx: &Ctx, batch: &mut Vec<u64>| -> anyhow::Result<()> {
            Err(anyhow::anyhow!(StoreError::NotFound(batch[0])).context("the batch"))
        })
        .unwrap();
    submit(&pool, 6..7);
    assert_eq!(found(pool.join()), not_found(6));

    let pool = Pool::builder()
        .workers(1)
        .build_stateful(move |_ctx: &Ctx| BoxWorker::new(typed))
        .unwrap();
    submit(&pool, 7..8);
    assert_eq!(found(pool.join()), not_found(7));

    let pool = Pool::builder()
        .workers(1)
        .layer(layer_fn(|mut next: Next<'_, u64>, ctx: &Ctx, item: u64| {
            next.work(ctx, item)
        }))
        .build(typed)
        .unwrap();
    submit(&pool, 8..9);
    assert_eq!(found(pool.join()), not_found(8));

    // An io::Error as the typed error's source, inside anyhow.
    let pool = Pool::builder()
        .workers(1)
        .build(|_ctx: &Ctx, _item: u64| -> anyhow::Result<()> {
            Err(StoreError::Disk(io::Error::from(io::ErrorKind::PermissionDenied)).into())
        })
        .unwrap();
    submit(&pool, 0..1);
    assert_eq!(
        found(pool.join()),
        (
            Some("the disk failed".to_owned()),
            Some(io::ErrorKind::PermissionDenied)
        )
    );
}

/// A worker whose `finish` fails with an anyhow error.
struct FailsToFinish;

impl Worker<u64> for FailsToFinish {
    type Error = anyhow::Error;

    fn work(&mut self, _ctx: &Ctx, _item: u64) -> anyhow::Result<()> {
        Ok(())
    }

    fn finish(&mut self, _ctx: &Ctx) -> anyhow::Result<()> {
        Err(anyhow::Error::new(StoreError::NotFound(99)).context("flushing"))
    }
}

#[test]
fn find_reaches_a_finish_error_and_searches_every_error_of_many() {
    let pool = Pool::builder()
        .workers(1)
        .build_stateful(|_ctx: &Ctx| FailsToFinish)
        .unwrap();
    submit(&pool, 0..3);
    let error = pool.wait().unwrap_err();
    assert!(matches!(error, PoolError::Finish { .. }));
    assert!(matches!(
        error.find::<StoreError>(),
        Some(StoreError::NotFound(99))
    ));

    // Under continue-on-error the first match of `Many`'s errors, in order.
    let pool = Pool::builder()
        .workers(1)
        .continue_on_error()
        .build(|_ctx: &Ctx, item: u64| -> anyhow::Result<()> {
            match item {
                0 => anyhow::bail!("a message only"),
                _ => Err(StoreError::NotFound(item))?,
            }
        })
        .unwrap();
    submit(&pool, 0..3);
    let error = pool.wait().unwrap_err();
    assert!(matches!(error, PoolError::Many { total: 3, .. }));
    assert!(matches!(
        error.find::<StoreError>(),
        Some(StoreError::NotFound(1))
    ));
    assert!(error.find::<io::Error>().is_none());
}

#[test]
fn box_error_keeps_anyhow_whole_and_changes_nothing_it_shows() {
    /// `Debug` without the backtrace (captured where each error was made,
    /// when `RUST_BACKTRACE` asks for one).
    fn debug(error: &BoxError) -> String {
        let debug = format!("{error:?}");
        debug
            .split("\n\nStack backtrace:")
            .next()
            .unwrap()
            .to_owned()
    }
    for context in [false, true] {
        let made = || {
            let error = anyhow::Error::new(StoreError::NotFound(3));
            if context {
                error.context("looking it up")
            } else {
                error
            }
        };
        let kept = box_error(made());
        let lost: BoxError = made().into();
        // The same message, `Debug` and chain as anyhow's own conversion...
        assert_eq!(kept.to_string(), lost.to_string());
        assert_eq!(format!("{kept:#}"), format!("{lost:#}"));
        assert_eq!(debug(&kept), debug(&lost));
        assert_eq!(
            kept.source().map(ToString::to_string),
            lost.source().map(ToString::to_string)
        );
        // ...but the typed error is still reachable. anyhow's conversion
        // hides the outermost error (a context's source is still there).
        assert!(find_error::<StoreError>(&*kept).is_some());
        assert_eq!(find_error::<StoreError>(&*lost).is_some(), context);
    }
    // Anything else is boxed as `Into` boxes it.
    assert!(
        box_error(io::Error::other("x"))
            .downcast_ref::<io::Error>()
            .is_some()
    );
}

/// A wrapper of the user's own whose `source` skips what it wraps.
#[derive(Debug, thiserror::Error)]
enum JobFailure {
    #[error(transparent)]
    Other(BoxError),
}

impl SeeThrough for JobFailure {
    fn wrapped(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            JobFailure::Other(inner) => Some(&**inner),
        }
    }
}

#[test]
fn a_registered_wrapper_is_seen_through() {
    let run = || {
        let pool = Pool::builder()
            .workers(1)
            .build(|_ctx: &Ctx, item: u64| -> Result<(), JobFailure> {
                Err(JobFailure::Other(Box::new(StoreError::NotFound(item))))
            })
            .unwrap();
        submit(&pool, 2..3);
        pool.wait().unwrap_err()
    };
    let error = run();
    // `source()` skips the wrapped error, so until the type is registered
    // (only this test registers it) the search cannot see it...
    assert!(error.find::<StoreError>().is_none());
    // ...and after, it does; registering twice changes nothing.
    see_through::<JobFailure>();
    see_through::<JobFailure>();
    assert!(matches!(
        error.find::<StoreError>(),
        Some(StoreError::NotFound(2))
    ));
    assert!(matches!(
        run().find::<StoreError>(),
        Some(StoreError::NotFound(2))
    ));
}
