//! `CancelToken::on_cancel`: a callback runs once, on the thread that
//! cancels (or at once, on the registering thread, when the token is
//! cancelled already), is reached through parents, is deregistered by
//! dropping its registration, and a panicking callback neither stops the
//! other listeners nor takes a pool's worker down.
#![allow(clippy::unwrap_used)] // Tests may unwrap: a panic is a test failure.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;

use common::quiet_deliberate_panics;
use pool_core::{CancelToken, Ctx, PanicSite, Pool, PoolError};

/// A callback that counts its calls and notes the thread of the last one.
fn recorder() -> (
    Arc<AtomicUsize>,
    Arc<Mutex<Option<ThreadId>>>,
    impl FnOnce() + Send + 'static,
) {
    let calls = Arc::new(AtomicUsize::new(0));
    let thread = Arc::new(Mutex::new(None));
    let (counted, noted) = (Arc::clone(&calls), Arc::clone(&thread));
    let callback = move || {
        counted.fetch_add(1, SeqCst);
        *noted.lock().unwrap() = Some(std::thread::current().id());
    };
    (calls, thread, callback)
}

#[test]
fn a_callback_runs_once_on_the_cancelling_thread() {
    let token = CancelToken::new();
    let (calls, thread, callback) = recorder();
    let registration = token.on_cancel(callback);
    assert!(!registration.has_run());
    let canceller = std::thread::spawn({
        let token = token.clone();
        move || {
            token.cancel();
            token.cancel(); // idempotent: no second call
            std::thread::current().id()
        }
    });
    let cancelling_thread = canceller.join().unwrap();
    token.cancel();
    assert_eq!(calls.load(SeqCst), 1);
    assert_eq!(*thread.lock().unwrap(), Some(cancelling_thread));
    assert!(registration.has_run());
}

#[test]
fn a_callback_registered_after_the_cancel_runs_at_once_here() {
    let token = CancelToken::new();
    token.cancel();
    let (calls, thread, callback) = recorder();
    let registration = token.on_cancel(callback);
    assert_eq!(calls.load(SeqCst), 1);
    assert_eq!(*thread.lock().unwrap(), Some(std::thread::current().id()));
    assert!(registration.has_run());
    token.cancel();
    assert_eq!(calls.load(SeqCst), 1);
}

#[test]
fn a_parent_cancel_reaches_a_childs_callbacks_but_not_the_other_way() {
    let root = CancelToken::new();
    // The middle token is dropped at once; the chain still holds.
    let grandchild = root.child().child();
    let (child_calls, _, on_grandchild) = recorder();
    let (root_calls, _, on_root) = recorder();
    let _on_grandchild = grandchild.on_cancel(on_grandchild);
    let _on_root = root.on_cancel(on_root);
    grandchild.child().cancel();
    assert_eq!((child_calls.load(SeqCst), root_calls.load(SeqCst)), (0, 0));
    root.cancel();
    assert_eq!((child_calls.load(SeqCst), root_calls.load(SeqCst)), (1, 1));
}

#[test]
fn dropping_the_registration_deregisters_the_callback() {
    let token = CancelToken::new();
    let (calls, _, callback) = recorder();
    let (kept_calls, _, kept) = recorder();
    let registration = token.on_cancel(callback);
    let _kept = token.on_cancel(kept);
    drop(registration);
    token.cancel();
    assert_eq!(calls.load(SeqCst), 0);
    assert_eq!(kept_calls.load(SeqCst), 1);
}

#[test]
fn the_callback_is_dropped_with_its_registration() {
    let token = CancelToken::new();
    let owned = Arc::new(());
    let held = Arc::clone(&owned);
    let registration = token.on_cancel(move || drop(held));
    assert_eq!(Arc::strong_count(&owned), 2);
    drop(registration);
    // The token keeps no reference to what the callback owned.
    assert_eq!(Arc::strong_count(&owned), 1);
    drop(token);
}

#[test]
fn a_callback_may_use_the_token_and_drop_its_own_registration() {
    let token = CancelToken::new();
    let slot: Arc<Mutex<Option<pool_core::CancelRegistration>>> = Arc::new(Mutex::new(None));
    let (inner_calls, _, inner) = recorder();
    let registration = token.on_cancel({
        let token = token.clone();
        let slot = Arc::clone(&slot);
        move || {
            assert!(token.is_cancelled());
            // Registering from a callback: runs at once.
            let _late = token.on_cancel(inner);
            drop(slot.lock().unwrap().take());
        }
    });
    *slot.lock().unwrap() = Some(registration);
    token.cancel();
    assert_eq!(inner_calls.load(SeqCst), 1);
    assert!(slot.lock().unwrap().is_none());
}

#[test]
fn a_panicking_callback_does_not_keep_the_others_from_running() {
    quiet_deliberate_panics();
    let token = CancelToken::new();
    let child = token.child();
    let (before, _, first) = recorder();
    let (after, _, last) = recorder();
    let _first = token.on_cancel(first);
    let _panics = token.on_cancel(|| panic!("deliberate panic in a cancel callback"));
    let _last = token.on_cancel(last);
    let cancelled = std::panic::catch_unwind(|| token.cancel());
    assert!(
        cancelled.is_err(),
        "the callback's panic goes on from cancel"
    );
    assert_eq!((before.load(SeqCst), after.load(SeqCst)), (1, 1));
    assert!(token.is_cancelled() && child.is_cancelled());
}

#[test]
fn a_pool_cancelled_by_its_first_error_reports_a_panicking_callback() {
    quiet_deliberate_panics();
    let pool = Pool::builder()
        .workers(2)
        .build(|_ctx: &Ctx, n: u32| {
            if n == 3 {
                return Err(std::io::Error::other("deliberate failure"));
            }
            Ok(())
        })
        .unwrap();
    let (calls, _, callback) = recorder();
    let _registration = pool.token().on_cancel(callback);
    let _panics = pool
        .token()
        .on_cancel(|| panic!("deliberate panic in a cancel callback"));
    let mut submitter = pool.submitter();
    for n in 0..100 {
        if submitter.submit(n).is_err() {
            break;
        }
    }
    drop(submitter);
    let report = pool.join();
    assert!(report.was_cancelled());
    assert!(report.is_balanced());
    assert_eq!(calls.load(SeqCst), 1);
    assert!(report.errors().iter().any(|error| matches!(
        error,
        PoolError::Panicked {
            site: PanicSite::Callback,
            ..
        }
    )));
}
