//! Helpers shared by the behaviour tests (included with `mod common;`).

#![allow(dead_code, unreachable_pub, missing_docs, clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};

/// An item that counts how often values of it are dropped, to prove each item
/// is dropped exactly once (processed, failed, dropped or handed back).
#[derive(Debug)]
pub struct Tracked {
    pub value: u64,
    drops: Arc<AtomicU64>,
}

impl Tracked {
    pub fn new(value: u64, drops: &Arc<AtomicU64>) -> Self {
        Tracked {
            value,
            drops: Arc::clone(drops),
        }
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.drops.fetch_add(1, SeqCst);
    }
}

/// A gate workers wait at until the test opens it, so a test can hold items in
/// the pool without sleeping.
#[derive(Clone, Default)]
pub struct Gate(Arc<(std::sync::Mutex<bool>, std::sync::Condvar)>);

impl Gate {
    pub fn wait(&self) {
        let (open, signal) = &*self.0;
        let mut open = open.lock().unwrap();
        while !*open {
            open = signal.wait(open).unwrap();
        }
    }

    pub fn open(&self) {
        let (open, signal) = &*self.0;
        *open.lock().unwrap() = true;
        signal.notify_all();
    }
}

/// Spins (yielding) until `condition` holds: waiting on an observable state, not
/// on time.
pub fn wait_until(mut condition: impl FnMut() -> bool) {
    while !condition() {
        std::thread::yield_now();
    }
}

/// Silences the default panic message for panics whose text contains
/// "deliberate", so deliberate panics do not flood the test output; every other
/// panic is printed as usual.
pub fn quiet_deliberate_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let text = info
                .payload()
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| info.payload().downcast_ref::<&str>().copied())
                .unwrap_or("");
            if !text.contains("deliberate") {
                default(info);
            }
        }));
    });
}

/// How a test pool routes items: the behaviour tests run both ways, since keyed
/// pools must keep every guarantee unkeyed ones give.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Routing {
    /// Work stealing (no `chunk_by`).
    Stealing,
    /// `chunk_by` with the given key function.
    Keyed,
}

/// Applies `routing` to `builder`, keying items by `key`.
pub fn route<T: Send + 'static, K: std::hash::Hash>(
    builder: pool_core::Builder<T>,
    routing: Routing,
    key: impl Fn(&T) -> K + Send + Sync + 'static,
) -> pool_core::Builder<T> {
    match routing {
        Routing::Stealing => builder,
        Routing::Keyed => builder.chunk_by(key),
    }
}
