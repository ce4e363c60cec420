//! Every outcome of a call's handle, and the pool's properties for called
//! items: the value, the worker's error (typed), a panic with its payload, a
//! call dropped by a cancel or by the stop-on-error policy, a call a layer
//! skipped; refusals hand the item back; a handle dropped early leaves the
//! error (or the payload) to the report; and called items are counted like
//! any other (submitted == processed + failed + dropped, with the counts
//! matching what the handles said), through layers, keys, metrics and
//! batched submitters.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::Gate;
use pool_core::{
    BoxError, Call, CallError, CallHandle, CallWorker, Ctx, Next, Pool, PoolError, SendError,
    TrySendError, layer_fn,
};

/// A worker's own error type, to find again through the handle.
#[derive(Debug, PartialEq)]
struct Refused {
    code: u32,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "refused with code {}", self.code)
    }
}

impl std::error::Error for Refused {}

/// A panic payload that is not a string.
#[derive(Debug, PartialEq)]
struct Corrupt {
    block: u64,
}

/// What a test item asks its worker to do.
#[derive(Debug, Clone)]
enum Ask {
    Double(u64),
    Fail(u32),
    Panic(u64),
}

/// Silences the default panic message for the `Corrupt` panics these tests
/// cause on purpose; every other panic is printed as usual.
fn quiet_deliberate_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !info.payload().is::<Corrupt>() {
                default(info);
            }
        }));
    });
}

fn answer(ask: Ask) -> Result<u64, Refused> {
    match ask {
        Ask::Double(n) => Ok(n * 2),
        Ask::Fail(code) => Err(Refused { code }),
        Ask::Panic(block) => std::panic::panic_any(Corrupt { block }),
    }
}

#[test]
fn a_value_an_error_and_a_panic_each_reach_their_handle() {
    quiet_deliberate_panics();
    let pool = Pool::builder()
        .workers(2)
        .continue_on_error()
        .build_call(|_ctx: &Ctx, ask: Ask| answer(ask))
        .unwrap();
    assert_eq!(pool.call(Ask::Double(21)).unwrap().wait().unwrap(), 42);

    match pool.call(Ask::Fail(7)).unwrap().wait() {
        Err(CallError::Failed(error)) => {
            assert_eq!(error.downcast_ref::<Refused>(), Some(&Refused { code: 7 }));
        }
        other => panic!("expected the worker's error, got {other:?}"),
    }

    match pool.call(Ask::Panic(9)).unwrap().wait() {
        Err(CallError::Panicked(mut panic)) => {
            assert_eq!(panic.message(), "a panic with a non-string payload");
            assert_eq!(
                panic.payload_mut().downcast_ref::<Corrupt>(),
                Some(&Corrupt { block: 9 })
            );
            let payload = panic.into_payload();
            assert_eq!(
                payload.downcast::<Corrupt>().ok().map(|boxed| *boxed),
                Some(Corrupt { block: 9 })
            );
        }
        other => panic!("expected the panic, got {other:?}"),
    }

    let report = pool.join();
    assert_eq!(
        (report.submitted(), report.processed(), report.failed()),
        (3, 1, 2)
    );
    assert!(report.is_balanced());
    // The handles own the error and the payload; the report keeps the texts.
    let texts: Vec<String> = report.errors().iter().map(ToString::to_string).collect();
    assert!(
        texts
            .iter()
            .any(|text| text.contains("refused with code 7")),
        "{texts:?}"
    );
    assert!(
        texts
            .iter()
            .any(|text| text.contains("a panic with a non-string payload")),
        "{texts:?}"
    );
}

#[test]
fn calls_queued_when_the_pool_is_cancelled_resolve_dropped() {
    let gate = Gate::default();
    let (started, has_started) = mpsc::channel();
    let worker_gate = gate.clone();
    let started = Mutex::new(started);
    let pool = Pool::builder()
        .workers(1)
        .build_call(move |_ctx: &Ctx, n: u64| {
            if n == 0 {
                let _ = started.lock().unwrap().send(());
                worker_gate.wait();
            }
            Ok::<_, std::io::Error>(n)
        })
        .unwrap();
    let first = pool.call(0).unwrap();
    has_started.recv().unwrap(); // item 0 is in the worker's hands
    let queued: Vec<CallHandle<u64>> = (1..=5).map(|n| pool.call(n).unwrap()).collect();
    pool.cancel();
    match pool.call(6) {
        Err(SendError::Cancelled(6)) => {}
        other => panic!("a cancelled pool hands the item back, got {other:?}"),
    }
    gate.open();
    assert_eq!(first.wait().unwrap(), 0, "the item in hand finishes");
    for handle in queued {
        assert!(matches!(handle.wait(), Err(CallError::Dropped)));
    }
    let report = pool.join();
    assert_eq!(
        (report.submitted(), report.processed(), report.dropped()),
        (6, 1, 5)
    );
    assert!(report.is_balanced());
}

#[test]
fn under_stop_on_error_the_first_error_drops_the_calls_behind_it() {
    let gate = Gate::default();
    let worker_gate = gate.clone();
    let pool = Pool::builder()
        .workers(1)
        .build_call(move |_ctx: &Ctx, ask: Ask| {
            worker_gate.wait();
            answer(ask)
        })
        .unwrap();
    let first = pool.call(Ask::Fail(1)).unwrap();
    let behind: Vec<_> = (0..5).map(|n| pool.call(Ask::Double(n)).unwrap()).collect();
    gate.open();
    assert!(matches!(first.wait(), Err(CallError::Failed(_))));
    for handle in behind {
        assert!(matches!(handle.wait(), Err(CallError::Dropped)));
    }
    match pool.wait() {
        Err(PoolError::Worker { source, .. }) => {
            assert!(source.to_string().contains("refused with code 1"));
        }
        other => panic!("expected the first error, got {other:?}"),
    }
}

#[test]
fn a_layer_that_never_reaches_the_worker_skips_the_call() {
    let pool = Pool::builder()
        .workers(2)
        .layer(layer_fn(|mut next: Next<'_, u64>, ctx: &Ctx, n: u64| {
            if n.is_multiple_of(2) {
                next.work(ctx, n)
            } else {
                Ok(())
            }
        }))
        .build_call(|_ctx: &Ctx, n: u64| Ok::<_, std::io::Error>(n + 100))
        .unwrap();
    assert_eq!(pool.call(2).unwrap().wait().unwrap(), 102);
    assert!(matches!(
        pool.call(3).unwrap().wait(),
        Err(CallError::Skipped)
    ));
    let report = pool.wait().unwrap();
    assert_eq!(report.processed(), 2);
}

#[test]
fn a_dropped_handle_leaves_the_error_and_the_payload_to_the_report() {
    quiet_deliberate_panics();
    let gate = Gate::default();
    let worker_gate = gate.clone();
    let pool = Pool::builder()
        .workers(1)
        .continue_on_error()
        .resume_panics(true)
        .build_call(move |_ctx: &Ctx, ask: Ask| {
            worker_gate.wait();
            answer(ask)
        })
        .unwrap();
    drop(pool.call(Ask::Fail(3)).unwrap());
    drop(pool.call(Ask::Panic(4)).unwrap());
    gate.open();
    let resumed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| pool.join()));
    let payload = resumed.expect_err("resume_panics re-raises the panic");
    assert_eq!(
        payload.downcast::<Corrupt>().ok().map(|boxed| *boxed),
        Some(Corrupt { block: 4 }),
        "nobody took the payload, so the pool re-raises it whole"
    );
}

#[test]
fn the_report_finds_the_error_of_a_call_nobody_waits_for() {
    let pool = Pool::builder()
        .workers(1)
        .build_call(|_ctx: &Ctx, code: u32| Err::<u64, _>(Refused { code }))
        .unwrap();
    drop(pool.call(11).unwrap());
    match pool.wait() {
        Err(PoolError::Worker { source, .. }) => {
            assert_eq!(
                source.downcast_ref::<Refused>(),
                Some(&Refused { code: 11 })
            );
        }
        other => panic!("expected the worker's error, got {other:?}"),
    }
}

#[test]
fn try_get_wait_timeout_and_is_finished_take_the_outcome_once() {
    let gate = Gate::default();
    let worker_gate = gate.clone();
    let pool = Pool::builder()
        .workers(1)
        .build_call(move |_ctx: &Ctx, n: u64| {
            worker_gate.wait();
            Ok::<_, std::io::Error>(n)
        })
        .unwrap();
    let mut handle = pool.call(5).unwrap();
    assert!(!handle.is_finished());
    assert!(handle.try_get().is_none());
    assert!(handle.wait_timeout(Duration::ZERO).is_none());
    gate.open();
    let outcome = handle.wait_timeout(Duration::from_secs(60));
    assert_eq!(outcome.unwrap().unwrap(), 5);
    assert!(handle.is_finished());

    let mut second = pool.call(6).unwrap();
    common::wait_until(|| second.is_finished());
    assert_eq!(second.try_get().unwrap().unwrap(), 6);
    let taken_again = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| second.try_get()));
    assert!(taken_again.is_err(), "an outcome is taken once");
    pool.wait().unwrap();
}

#[test]
fn refused_calls_hand_the_item_back() {
    let gate = Gate::default();
    let worker_gate = gate.clone();
    let pool = Pool::builder()
        .workers(1)
        .batch_size(1)
        .capacity(1)
        .build_call(move |_ctx: &Ctx, text: String| {
            worker_gate.wait();
            Ok::<_, std::io::Error>(text.len())
        })
        .unwrap();
    let held = pool.call("held".to_owned()).unwrap();
    match pool.try_call("full".to_owned()) {
        Err(TrySendError::Full(text)) => assert_eq!(text, "full"),
        other => panic!("expected Full, got {other:?}"),
    }
    match pool.call_timeout("late".to_owned(), Duration::from_millis(1)) {
        Err(TrySendError::Full(text)) => assert_eq!(text, "late"),
        other => panic!("expected Full, got {other:?}"),
    }
    let sender = pool.sender();
    pool.close();
    match sender.call("closed".to_owned()) {
        Err(SendError::Closed(text)) => assert_eq!(text, "closed"),
        other => panic!("expected Closed, got {other:?}"),
    }
    gate.open();
    assert_eq!(held.wait().unwrap(), 4);
    let report = pool.wait().unwrap();
    assert_eq!(report.submitted(), 1, "refused calls are not counted");
}

/// Many calls with every kind of outcome, and a cancel halfway: the
/// report's counts are exactly what the handles said.
#[rstest::rstest]
#[case::stealing(false)]
#[case::keyed(true)]
fn the_handles_and_the_report_agree_on_every_call(#[case] keyed: bool) {
    quiet_deliberate_panics();
    let calls_run = Arc::new(AtomicU64::new(0));
    let cancel_at = 600;
    let run = Arc::clone(&calls_run);
    let builder = Pool::builder().workers(3).continue_on_error();
    let builder = if keyed {
        builder.chunk_by(|ask: &(u64, Ask)| ask.0 % 5)
    } else {
        builder
    };
    let pool = builder
        .layer(layer_fn(
            |mut next: Next<'_, (u64, Ask)>, ctx: &Ctx, item| {
                if item.0.is_multiple_of(11) {
                    return Ok(()); // skipped
                }
                next.work(ctx, item)
            },
        ))
        .build_call(move |ctx: &Ctx, (n, ask): (u64, Ask)| {
            run.fetch_add(1, SeqCst);
            if n == cancel_at {
                ctx.token().cancel();
            }
            answer(ask)
        })
        .unwrap();
    let sender = pool.sender();
    let mut handles = Vec::new();
    for n in 0..1_000u64 {
        let ask = match n % 7 {
            0 => Ask::Fail(n as u32),
            1 => Ask::Panic(n),
            _ => Ask::Double(n),
        };
        match sender.call((n, ask)) {
            Ok(handle) => handles.push(handle),
            Err(SendError::Cancelled(_)) => break,
            Err(other) => panic!("unexpected refusal {other:?}"),
        }
    }
    let (mut values, mut failed, mut dropped) = (0, 0, 0);
    for handle in handles {
        match handle.wait() {
            Ok(_) | Err(CallError::Skipped) => values += 1,
            Err(CallError::Failed(_) | CallError::Panicked(_)) => failed += 1,
            Err(CallError::Dropped) => dropped += 1,
            Err(other) => panic!("unexpected outcome {other:?}"),
        }
    }
    let report = pool.join();
    assert!(report.is_balanced());
    assert_eq!(
        (report.processed(), report.failed(), report.dropped()),
        (values, failed, dropped)
    );
    assert_eq!(report.submitted(), values + failed + dropped);
    assert!(report.was_cancelled());
}

#[test]
fn keyed_calls_of_one_key_run_on_one_worker_in_order() {
    let pool = Pool::builder()
        .workers(4)
        .chunk_by(|item: &(u32, u32)| item.0)
        .build_call_stateful(|_ctx: &Ctx| {
            let mut last = std::collections::HashMap::<u32, u32>::new();
            move |ctx: &Ctx, (key, seq): (u32, u32)| {
                let previous = last.insert(key, seq);
                assert!(previous < Some(seq), "key {key}: {seq} after {previous:?}");
                Ok::<_, std::io::Error>(ctx.worker_id())
            }
        })
        .unwrap();
    let expected = pool.worker_for(&Call::new((3, 0)).0);
    let handles: Vec<_> = (0..200).map(|seq| pool.call((3, seq)).unwrap()).collect();
    for handle in handles {
        assert_eq!(Some(handle.wait().unwrap()), expected);
    }
    pool.wait().unwrap();
}

/// A stateful call worker with `finish`, metrics from `ctx`, and calls
/// handed in through a batching submitter.
#[test]
fn stateful_call_workers_batches_and_metrics() {
    struct Summing {
        total: u64,
        totals: Arc<Mutex<Vec<u64>>>,
    }
    impl CallWorker<u64> for Summing {
        type Output = u64;
        type Error = BoxError;
        fn call(&mut self, ctx: &Ctx, n: u64) -> Result<u64, BoxError> {
            ctx.metrics().inc("called");
            self.total += n;
            Ok(n * n)
        }
        fn finish(&mut self, _ctx: &Ctx) -> Result<(), BoxError> {
            self.totals.lock().unwrap().push(self.total);
            Ok(())
        }
    }
    let totals = Arc::new(Mutex::new(Vec::new()));
    let maker_totals = Arc::clone(&totals);
    let pool = Pool::builder()
        .workers(3)
        .batch_size(16)
        .build_call_stateful(move |_id| Summing {
            total: 0,
            totals: Arc::clone(&maker_totals),
        })
        .unwrap();
    let mut submitter = pool.submitter();
    let mut handles = Vec::new();
    for n in 0..1_000u64 {
        let (call, handle) = Call::new(n);
        submitter.submit(call).unwrap();
        handles.push(handle);
    }
    drop(submitter);
    let squares: u64 = handles.into_iter().map(|h| h.wait().unwrap()).sum();
    assert_eq!(squares, (0..1_000u64).map(|n| n * n).sum::<u64>());
    let report = pool.wait().unwrap();
    assert_eq!(report.processed(), 1_000);
    assert_eq!(report.stats().counters.get("called"), 1_000);
    assert_eq!(totals.lock().unwrap().iter().sum::<u64>(), 999 * 1_000 / 2);
}
