//! Wake-ups for waiters that must not block a thread (the `async`
//! feature): tasks waiting for room in the capacity gate, and tasks waiting
//! for a pool's workers to leave. Also the count of workers still running,
//! which exists with or without the feature.
//!
//! # The protocol
//!
//! A [`Signal`] is an `event_listener::Event` and a count of the waiters
//! that use it. The side that frees something (room, a worker's exit) first
//! changes its state with a `SeqCst` write, then reads `waiters` (`SeqCst`)
//! and notifies only if someone waits: **one atomic load when nobody waits
//! asynchronously**, which is all the room-freed notification costs the
//! workers' releases.
//!
//! A waiter ([`Place::poll_until`]) tries; if it must wait, it registers a
//! listener (which emits a `SeqCst` fence), counts itself in `waiters`
//! (`SeqCst`), and tries again before it sleeps. Store buffering under
//! `SeqCst`: either the notifier's load sees the count (and the listener,
//! registered before the count, gets the notification) or the waiter's
//! second try sees the freed state. A waiter stays counted until it is done
//! or dropped, so later frees keep notifying while it re-registers between
//! tries. A notified listener that is dropped passes its notification on to
//! another listener (`event_listener` does that), so a waiter that gives up
//! strands no wake-up.
//!
//! Room is notified per unit: a release of `k` units notifies `k` more
//! listeners (`notify_additional`), so every freed unit has a task looking
//! for it; a close notifies everyone.

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

use crate::progress::Progress;

#[cfg(feature = "async")]
use std::future::Future;
#[cfg(feature = "async")]
use std::pin::Pin;
#[cfg(feature = "async")]
use std::task::{Context, Poll};

#[cfg(feature = "async")]
use event_listener::{Event, EventListener, IntoNotification};

/// Wakes tasks waiting for something another thread frees.
#[cfg(feature = "async")]
pub(crate) struct Signal {
    event: Event,
    /// Tasks between their first failed try and their end (done or dropped).
    waiters: AtomicUsize,
}

#[cfg(feature = "async")]
impl Signal {
    pub(crate) fn new() -> Self {
        Signal {
            event: Event::new(),
            waiters: AtomicUsize::new(0),
        }
    }

    /// `n` units were freed (after the `SeqCst` write that freed them):
    /// wakes `n` more waiters. One atomic load when nobody waits.
    #[inline]
    pub(crate) fn notify(&self, n: usize) {
        if self.waiters.load(SeqCst) > 0 {
            self.wake(n);
        }
    }

    /// Something every waiter must see happened (a close, the last worker
    /// leaving): wakes them all.
    #[inline]
    pub(crate) fn notify_all(&self) {
        if self.waiters.load(SeqCst) > 0 {
            self.wake(usize::MAX);
        }
    }

    #[cold]
    #[inline(never)]
    fn wake(&self, n: usize) {
        self.event.notify(n.additional());
    }
}

#[cfg(feature = "async")]
impl std::fmt::Debug for Signal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signal")
            .field("waiters", &self.waiters.load(SeqCst))
            .finish()
    }
}

/// One waiting future's place at a [`Signal`]: its listener, and whether it
/// is counted among the signal's waiters. The owner calls
/// [`leave`](Place::leave) when it is dropped.
#[cfg(feature = "async")]
#[derive(Debug, Default)]
pub(crate) struct Place {
    listener: Option<EventListener>,
    counted: bool,
}

#[cfg(feature = "async")]
impl Place {
    /// Polls until `attempt` says `Some`: tries, and when it must wait,
    /// listens, counts itself and tries again before it returns `Pending`
    /// (see the module notes). Leaves the signal once done.
    pub(crate) fn poll_until<O>(
        &mut self,
        signal: &Signal,
        cx: &mut Context<'_>,
        mut attempt: impl FnMut() -> Option<O>,
    ) -> Poll<O> {
        loop {
            if let Some(done) = attempt() {
                self.leave(signal);
                return Poll::Ready(done);
            }
            match self.listener.as_mut() {
                None => {
                    self.listener = Some(signal.event.listen());
                    if !self.counted {
                        signal.waiters.fetch_add(1, SeqCst);
                        self.counted = true;
                    }
                    // Try again before waiting: a free this try missed may
                    // have come before the listener was there.
                }
                Some(listener) => match Pin::new(listener).poll(cx) {
                    Poll::Ready(()) => self.listener = None,
                    Poll::Pending => return Poll::Pending,
                },
            }
        }
    }

    /// Stops waiting: drops the listener (a notification it got goes on to
    /// another waiter) and the count. Idempotent.
    pub(crate) fn leave(&mut self, signal: &Signal) {
        self.listener = None;
        if self.counted {
            self.counted = false;
            signal.waiters.fetch_sub(1, SeqCst);
        }
    }
}

/// The workers of a pool that have not left yet: counted down by each worker
/// thread as the very last thing it does ([`Exits::leaving`]), so an async
/// `join` knows when joining the threads no longer blocks.
pub(crate) struct Exits {
    running: AtomicUsize,
    #[cfg(feature = "async")]
    pub(crate) signal: Signal,
}

impl Exits {
    /// No worker yet: each thread is counted in before it starts
    /// ([`Exits::arrive`]).
    pub(crate) fn new() -> Self {
        Exits {
            running: AtomicUsize::new(0),
            #[cfg(feature = "async")]
            signal: Signal::new(),
        }
    }

    /// A worker thread's guard: dropped when its thread is done (also when
    /// it unwinds), it counts the worker out, tells `progress` (for
    /// `Pool::join_until`) and wakes async joiners after the last one.
    pub(crate) fn leaving<'a>(&'a self, progress: &'a Progress) -> Leaving<'a> {
        Leaving(self, progress)
    }

    /// A worker thread is about to start (`Pool::set_workers`); it counts
    /// itself out with [`Exits::leaving`] as any worker does.
    pub(crate) fn arrive(&self) {
        self.running.fetch_add(1, SeqCst);
    }

    /// Whether every worker has left.
    pub(crate) fn all_left(&self) -> bool {
        self.running.load(SeqCst) == 0
    }
}

/// See [`Exits::leaving`].
pub(crate) struct Leaving<'a>(&'a Exits, &'a Progress);

impl Drop for Leaving<'_> {
    fn drop(&mut self) {
        let before = self.0.running.fetch_sub(1, SeqCst);
        if before == 1 {
            self.1.changed();
        }
        #[cfg(feature = "async")]
        if before == 1 {
            self.0.signal.notify_all();
        }
        #[cfg(not(feature = "async"))]
        let _ = before;
    }
}
