//! Cancellation tokens that a parent can share with several pools.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

/// Something that wants to hear about a cancellation (a pool, a child token).
pub(crate) trait OnCancel: Send + Sync {
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
    for listener in listeners {
        if let Some(listener) = listener.upgrade() {
            listener.on_cancel();
        }
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
    fn child_of_a_cancelled_token_starts_cancelled() {
        let root = CancelToken::new();
        root.cancel();
        assert!(root.child().is_cancelled());
    }
}
