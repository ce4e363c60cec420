//! Cancellation tokens that a parent can share with several pools.
//!
//! # Who hears about a cancel
//!
//! A token keeps a list of listeners, each held weakly: child tokens, pools
//! and callbacks registered with [`CancelToken::on_cancel`]. `cancel` sets
//! the flag and takes the list under the token's lock, then tells every
//! listener outside it, on the cancelling thread, in the order they
//! registered. A listener that registers after the cancel is told at once,
//! on its own thread: the flag is read under the same lock, so each
//! listener is told exactly once, either way.
//!
//! A callback's registration ([`CancelRegistration`]) holds the callback;
//! the list holds only a weak reference to it, so dropping the registration
//! deregisters the callback (the dead entry is swept at the next
//! registration). The callback sits in a slot it is taken out of before it
//! runs, by the cancel or by the registration's drop, whichever comes
//! first, so it runs at most once and never starts after the drop returned.
//!
//! A panicking callback does not stop the others: every listener is still
//! told, and then the first panic goes on from `cancel`. The pool's own
//! cancels (stop-on-error, a panicking maker) run on worker threads and
//! catch it there instead (`ledger.rs`), reporting it as a callback's panic.

use std::any::Any;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

/// Something that wants to hear about a cancellation (a pool, a child token,
/// a scope's bell). Public but unnameable: `scope::Watched` extends it.
pub trait OnCancel: Send + Sync {
    /// The token was cancelled.
    fn on_cancel(&self);
}

struct Inner {
    cancelled: AtomicBool,
    /// Children and pools to tell. Weak, so a dropped pool leaves no cycle behind.
    listeners: Mutex<Vec<Weak<dyn OnCancel>>>,
    /// Signalled (under the `listeners` lock) when the token is cancelled, for
    /// threads in [`CancelToken::wait_timeout`].
    cancelled_signal: Condvar,
    /// The parent of a child token, kept alive by it. A parent holds its
    /// children only weakly (a dropped child must not pile up in its list), so
    /// without this a chain `root -> child -> grandchild` broke as soon as
    /// nobody held `child`: `root.cancel()` then never reached the grandchild.
    /// `builder.cancel_token(service.child())` is exactly that chain.
    _parent: Option<Arc<Inner>>,
}

impl OnCancel for Inner {
    fn on_cancel(&self) {
        cancel_inner(self);
    }
}

/// A cancellation flag shared between a parent and any number of pools.
///
/// Cancelling a token cancels every [child](CancelToken::child) and every pool
/// built with it (see [`Builder::cancel_token`](crate::Builder::cancel_token)),
/// wakes their workers and blocked producers, and makes their queued items count
/// as dropped. Cancelling is permanent and idempotent. Clones share the flag.
///
/// ```
/// use pool_core::CancelToken;
///
/// let parent = CancelToken::new();
/// let child = parent.child();
/// assert!(!child.is_cancelled());
/// parent.cancel();
/// assert!(child.is_cancelled());
/// ```
#[derive(Clone)]
pub struct CancelToken {
    inner: Arc<Inner>,
}

impl Default for CancelToken {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for CancelToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancelToken")
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

impl CancelToken {
    /// A token that is not cancelled.
    pub fn new() -> Self {
        Self::with_parent(None)
    }

    fn with_parent(parent: Option<Arc<Inner>>) -> Self {
        CancelToken {
            inner: Arc::new(Inner {
                cancelled: AtomicBool::new(false),
                listeners: Mutex::new(Vec::new()),
                cancelled_signal: Condvar::new(),
                _parent: parent,
            }),
        }
    }

    /// Whether the token has been cancelled.
    #[inline]
    pub fn is_cancelled(&self) -> bool {
        self.inner.cancelled.load(Ordering::SeqCst)
    }

    /// Cancels this token and, through them, its children and pools.
    pub fn cancel(&self) {
        cancel_inner(&self.inner);
    }

    /// Waits until the token is cancelled or `timeout` has passed; returns
    /// whether it was cancelled. A backoff or rate-limit wait that must end as
    /// soon as the pool is cancelled sleeps here.
    ///
    /// ```
    /// use pool_core::CancelToken;
    /// use std::time::Duration;
    ///
    /// let token = CancelToken::new();
    /// assert!(!token.wait_timeout(Duration::from_millis(1)));
    /// token.cancel();
    /// assert!(token.wait_timeout(Duration::from_secs(3600))); // returns at once
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        match Instant::now().checked_add(timeout) {
            Some(deadline) => self.wait_until(deadline),
            None => self.wait_until_cancelled(),
        }
    }

    /// Waits until the token is cancelled or `deadline` is reached; returns
    /// whether it was cancelled.
    pub fn wait_until(&self, deadline: Instant) -> bool {
        let mut listeners = self
            .inner
            .listeners
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        loop {
            if self.is_cancelled() {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            listeners = self
                .inner
                .cancelled_signal
                .wait_timeout(listeners, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    fn wait_until_cancelled(&self) -> bool {
        let mut listeners = self
            .inner
            .listeners
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        while !self.is_cancelled() {
            listeners = self
                .inner
                .cancelled_signal
                .wait(listeners)
                .unwrap_or_else(PoisonError::into_inner);
        }
        true
    }

    /// Registers `callback` to run once when the token is cancelled (by
    /// [`cancel`](CancelToken::cancel) on it or on any of its parents), on
    /// the thread that cancels, before `cancel` returns. If the token is
    /// cancelled already, `callback` runs at once, on this thread, before
    /// `on_cancel` returns.
    ///
    /// Keep the returned [`CancelRegistration`] for as long as the callback
    /// should stay registered: dropping it deregisters the callback, and
    /// after the drop returns the callback will not start (if a cancel on
    /// another thread has already started it, it may still be running).
    /// The token holds the callback only weakly, so a registration is never
    /// kept alive by the token, and registering creates no cycle when the
    /// callback owns something that owns the token.
    ///
    /// The callback must be quick and must not block on the thread that
    /// cancels: that may be a pool's worker (the first error under
    /// stop-on-error cancels the pool's token). It may use the token itself
    /// (cancelled by then) and register further callbacks (which run at
    /// once). A panic in it does not keep the other listeners from being
    /// told; it goes on from `cancel` afterwards (from a pool's own cancel
    /// on a worker thread, it is reported as a
    /// [`PanicSite::Callback`](crate::PanicSite::Callback) panic instead).
    ///
    /// ```
    /// use pool_core::CancelToken;
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    ///
    /// let token = CancelToken::new();
    /// let calls = Arc::new(AtomicUsize::new(0));
    /// let counted = Arc::clone(&calls);
    /// let registration = token.on_cancel(move || {
    ///     counted.fetch_add(1, Ordering::SeqCst);
    /// });
    /// let dropped = token.on_cancel(|| unreachable!("deregistered before the cancel"));
    /// drop(dropped);
    ///
    /// token.child().cancel(); // a child's cancel does not reach the parent
    /// assert_eq!(calls.load(Ordering::SeqCst), 0);
    /// token.cancel(); // runs the callback here, once
    /// token.cancel();
    /// assert_eq!(calls.load(Ordering::SeqCst), 1);
    /// assert!(registration.has_run());
    ///
    /// // Registered after the cancel: runs at once.
    /// let late = Arc::clone(&calls);
    /// let _registration = token.on_cancel(move || {
    ///     late.fetch_add(1, Ordering::SeqCst);
    /// });
    /// assert_eq!(calls.load(Ordering::SeqCst), 2);
    /// ```
    pub fn on_cancel(&self, callback: impl FnOnce() + Send + 'static) -> CancelRegistration {
        let slot = Arc::new(CallbackSlot {
            callback: Mutex::new(Some(Box::new(callback))),
        });
        let weak: Weak<dyn OnCancel> = Arc::downgrade(&slot) as Weak<dyn OnCancel>;
        let registration = CancelRegistration {
            slot: Arc::clone(&slot),
        };
        self.subscribe(weak);
        registration
    }

    /// A new token that is cancelled when this one is (but not the other way round).
    pub fn child(&self) -> CancelToken {
        let child = CancelToken::with_parent(Some(Arc::clone(&self.inner)));
        let weak: Weak<dyn OnCancel> = Arc::downgrade(&child.inner) as Weak<dyn OnCancel>;
        self.subscribe(weak);
        child
    }

    /// The flag itself, for hot loops that check it per item.
    pub(crate) fn flag(&self) -> &AtomicBool {
        &self.inner.cancelled
    }

    /// Registers a listener; if the token is already cancelled, tells it at once.
    pub(crate) fn subscribe(&self, listener: Weak<dyn OnCancel>) {
        let mut listeners = self
            .inner
            .listeners
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // The flag is read under the lock that `cancel_inner` takes, so a listener
        // is either registered before the cancel drains the list or told here.
        if self.inner.cancelled.load(Ordering::SeqCst) {
            drop(listeners);
            if let Some(listener) = listener.upgrade() {
                listener.on_cancel();
            }
            return;
        }
        listeners.retain(|weak| weak.strong_count() > 0);
        listeners.push(listener);
    }
}

fn cancel_inner(inner: &Inner) {
    let listeners = {
        let mut listeners = inner
            .listeners
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if inner.cancelled.swap(true, Ordering::SeqCst) {
            return;
        }
        inner.cancelled_signal.notify_all();
        std::mem::take(&mut *listeners)
    };
    // Every listener is told, even after one panicked (a callback, or a
    // child token whose callback did); the first panic goes on afterwards.
    let mut first_panic: Option<Box<dyn Any + Send>> = None;
    for listener in listeners {
        if let Some(listener) = listener.upgrade()
            && let Err(payload) = catch_unwind(AssertUnwindSafe(|| listener.on_cancel()))
        {
            first_panic.get_or_insert(payload);
        }
    }
    if let Some(payload) = first_panic {
        resume_unwind(payload);
    }
}

type Callback = Box<dyn FnOnce() + Send>;

/// A registered callback, until a cancel or the registration's drop takes
/// it out.
struct CallbackSlot {
    callback: Mutex<Option<Callback>>,
}

impl CallbackSlot {
    fn take(&self) -> Option<Callback> {
        self.callback
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }
}

impl OnCancel for CallbackSlot {
    fn on_cancel(&self) {
        // Taken out under the lock and run outside it: a callback may drop
        // its own registration or register another.
        if let Some(callback) = self.take() {
            callback();
        }
    }
}

/// A callback registered with [`CancelToken::on_cancel`]. Dropping it
/// deregisters the callback: once the drop returns, the callback will not
/// start.
#[must_use = "dropping the registration deregisters the callback at once"]
pub struct CancelRegistration {
    slot: Arc<CallbackSlot>,
}

impl CancelRegistration {
    /// Whether the callback was taken to run: the token was cancelled (it
    /// may still be running on the cancelling thread).
    pub fn has_run(&self) -> bool {
        self.slot
            .callback
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_none()
    }
}

impl fmt::Debug for CancelRegistration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancelRegistration")
            .field("has_run", &self.has_run())
            .finish()
    }
}

impl Drop for CancelRegistration {
    fn drop(&mut self) {
        // A cancel that already took the callback runs it; otherwise it is
        // dropped here (outside the lock: its captures' `Drop` is user code)
        // and the token's weak entry is dead from now on.
        drop(self.slot.take());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grandchildren_are_cancelled_and_cancel_is_idempotent() {
        let root = CancelToken::new();
        let child = root.child();
        let grandchild = child.child();
        child.cancel();
        assert!(grandchild.is_cancelled());
        assert!(!root.is_cancelled());
        root.cancel();
        root.cancel();
        assert!(root.is_cancelled());
    }

    #[test]
    fn a_waiter_is_woken_by_the_cancel_of_a_parent() {
        let root = CancelToken::new();
        let child = root.child();
        std::thread::scope(|scope| {
            let waiter = scope.spawn(|| child.wait_timeout(Duration::MAX));
            root.cancel();
            assert!(waiter.join().expect("waiter thread"));
        });
    }

    #[test]
    fn a_chain_holds_when_nobody_keeps_the_middle_token() {
        let root = CancelToken::new();
        // The middle token is dropped at once, as in
        // `builder.cancel_token(service.child())`.
        let grandchild = root.child().child();
        root.cancel();
        assert!(grandchild.is_cancelled());
    }

    #[test]
    fn dead_registrations_are_swept_from_the_list() {
        let token = CancelToken::new();
        for _ in 0..100 {
            drop(token.on_cancel(|| {}));
        }
        let _kept = token.on_cancel(|| {});
        let listeners = token.inner.listeners.lock().expect("not poisoned");
        assert_eq!(listeners.len(), 1);
    }

    #[test]
    fn child_of_a_cancelled_token_starts_cancelled() {
        let root = CancelToken::new();
        root.cancel();
        assert!(root.child().is_cancelled());
    }
}
