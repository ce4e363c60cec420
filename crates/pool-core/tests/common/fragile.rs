//! Helpers for the tests about panics in unusual places and about hangs
//! (included with `#[path = "common/fragile.rs"] mod fragile;`).

#![allow(dead_code, unreachable_pub, missing_docs, clippy::unwrap_used)]

use std::panic::resume_unwind;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

/// How long a body may run before [`within`] calls it a hang. Generous on
/// purpose: it detects hangs, it does not assert a timing.
pub const HANG_LIMIT: Duration = Duration::from_secs(60);

/// Runs `body` on its own thread and returns what it returns; re-raises its
/// panic. If it has not finished after [`HANG_LIMIT`], fails the test with a
/// message naming `what` instead of hanging the whole test binary (the stuck
/// thread is left behind: the test has failed anyway).
pub fn within<R: Send + 'static>(what: &str, body: impl FnOnce() -> R + Send + 'static) -> R {
    let (done, finished) = mpsc::channel();
    let handle = std::thread::Builder::new()
        .name(format!("hang detector: {what}"))
        .spawn(move || {
            let value = body();
            // The receiver may have given up already; then nobody listens.
            let _ = done.send(());
            value
        })
        .expect("the test can start a thread");
    match finished.recv_timeout(HANG_LIMIT) {
        // A panic in `body` drops the sender without sending: join to get it.
        Ok(()) | Err(RecvTimeoutError::Disconnected) => handle
            .join()
            .unwrap_or_else(|payload| resume_unwind(payload)),
        Err(RecvTimeoutError::Timeout) => {
            panic!("HANG: {what} did not finish within {HANG_LIMIT:?}")
        }
    }
}

/// An item whose `Drop` panics if it was made fragile, and which counts every
/// drop (fragile or not, counted before the panic), to prove each item is
/// dropped exactly once wherever its `Drop` runs.
///
/// It does not panic while its thread is already unwinding: a second panic
/// would abort the process, which is Rust's rule, not the pool's doing. The
/// pool must cope with one panicking `Drop` at a time.
#[derive(Debug)]
pub struct Fragile {
    pub value: u64,
    fragile: bool,
    drops: Arc<AtomicU64>,
}

impl Fragile {
    /// An item that panics when dropped if `fragile`.
    pub fn new(value: u64, fragile: bool, drops: &Arc<AtomicU64>) -> Self {
        Fragile {
            value,
            fragile,
            drops: Arc::clone(drops),
        }
    }

    /// Drops the item without a panic (for items handed back to the test).
    pub fn defuse(mut self) {
        self.fragile = false;
    }

    pub fn is_fragile(&self) -> bool {
        self.fragile
    }
}

impl Drop for Fragile {
    fn drop(&mut self) {
        self.drops.fetch_add(1, SeqCst);
        if self.fragile && !std::thread::panicking() {
            panic!("deliberate drop panic on {}", self.value);
        }
    }
}
