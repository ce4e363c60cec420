//! Parking idle workers without losing a wake-up.
//!
//! # The protocol
//!
//! Every worker has a slot whose state is `AWAKE`, `SLEEPING` or `NOTIFIED`, and the
//! pool keeps a count of sleeping workers. All operations below are `SeqCst`.
//!
//! A worker that found nothing to do, after a short bounded spin:
//! 1. stores `SLEEPING` in its slot and increments `sleepers` (the announcement);
//! 2. re-checks every source of work and the exit condition;
//! 3. if it found something, takes the announcement back with a CAS
//!    `SLEEPING -> AWAKE` (if the CAS fails, a waker has already claimed it and
//!    decremented `sleepers`; the unpark token it left makes one later `park`
//!    return early, which the loop below absorbs);
//! 4. otherwise parks until its state is no longer `SLEEPING`.
//!
//! Before announcing, an idle worker counts itself as *searching* while it spins,
//! and stops searching right after the announcement (before the re-check).
//!
//! A producer publishes work (an `Injector::push`, whose tail update is a `SeqCst`
//! CAS) and then loads `sleepers`. If it is zero it does nothing else: that is the
//! whole cost on the hot path when every worker is busy. If a worker is searching
//! it does nothing either: the searcher either finds the work while spinning or
//! re-checks after its announcement (the same litmus argument, on `searching`),
//! so a producer that outpaces nobody does not pay a futex wake per batch. If a
//! worker sleeps and none searches, it claims one
//! sleeper with a CAS `SLEEPING -> NOTIFIED`, decrements `sleepers` and unparks it.
//! The CAS makes sure two producers never both spend their wake-up on the same
//! thread while another one sleeps on.
//!
//! Why no wake-up is lost: the worker writes its announcement and then reads the
//! queues; the producer writes the queue and then reads the announcement. With all
//! four operations in the single `SeqCst` order, at least one side sees the other's
//! write (the store-buffering litmus test), so either the worker finds the work in
//! step 2 or the producer finds the sleeper. Close and cancel set their flag first
//! and then wake every sleeper, and the re-check in step 2 includes those flags, so
//! the same argument covers shutdown. The `loom` models in `loom_sleep.rs` check
//! the protocol exhaustively for two workers and one producer.

use crossbeam_utils::CachePadded;

// Under loom, `seq_cst_point` is a fence that gives loom the `SeqCst` guarantee
// the protocol above relies on (see its comment); otherwise it is nothing.
use crate::sync::{AtomicU8, AtomicUsize, Relaxed, SeqCst, seq_cst_point};

const AWAKE: u8 = 0;
const SLEEPING: u8 = 1;
const NOTIFIED: u8 = 2;

#[cfg(not(loom))]
pub(crate) use crossbeam_utils::sync::{Parker, Unparker};

#[cfg(loom)]
pub(crate) use loom_parker::{Parker, Unparker};

/// A token parker built from loom's mutex and condition variable, standing in for
/// crossbeam's futex-based `Parker` under the model checker.
#[cfg(loom)]
mod loom_parker {
    use loom::sync::{Arc, Condvar, Mutex};

    #[derive(Default)]
    struct Token {
        available: Mutex<bool>,
        condvar: Condvar,
    }

    pub(crate) struct Parker(Arc<Token>);
    #[derive(Clone)]
    pub(crate) struct Unparker(Arc<Token>);

    impl Parker {
        pub(crate) fn new() -> Self {
            Parker(Arc::new(Token::default()))
        }
        pub(crate) fn unparker_owned(&self) -> Unparker {
            Unparker(self.0.clone())
        }
        pub(crate) fn park(&self) {
            let mut available = self.0.available.lock().expect("loom mutex");
            while !*available {
                available = self.0.condvar.wait(available).expect("loom condvar");
            }
            *available = false;
        }
    }

    impl Unparker {
        pub(crate) fn unpark(&self) {
            *self.0.available.lock().expect("loom mutex") = true;
            self.0.condvar.notify_one();
        }
    }
}

/// The unparker that wakes `parker`.
#[cfg(not(loom))]
pub(crate) fn unparker_of(parker: &Parker) -> Unparker {
    parker.unparker().clone()
}

/// The unparker that wakes `parker`.
#[cfg(loom)]
pub(crate) fn unparker_of(parker: &Parker) -> Unparker {
    parker.unparker_owned()
}

/// A worker's parking slot.
struct Slot {
    state: AtomicU8,
    unparker: Unparker,
}

/// What producers read on every push, kept on one cache line.
struct Idle {
    /// Workers announced as sleeping.
    sleepers: AtomicUsize,
    /// Workers awake and looking for work (spinning before they park).
    searching: AtomicUsize,
}

/// The sleeping workers of one pool.
pub(crate) struct Sleep {
    idle: CachePadded<Idle>,
    slots: Box<[CachePadded<Slot>]>,
}

impl Sleep {
    /// One slot per worker, in worker order.
    pub(crate) fn new(unparkers: Vec<Unparker>) -> Self {
        Sleep {
            idle: CachePadded::new(Idle {
                sleepers: AtomicUsize::new(0),
                searching: AtomicUsize::new(0),
            }),
            slots: unparkers
                .into_iter()
                .map(|unparker| {
                    CachePadded::new(Slot {
                        state: AtomicU8::new(AWAKE),
                        unparker,
                    })
                })
                .collect(),
        }
    }

    /// Wakes one sleeping worker, if any sleeps and none is already searching
    /// (a searcher will find the work, see `sleep`). Call after publishing work.
    /// `hint` spreads wake-ups over the slots (any value works).
    #[inline]
    pub(crate) fn notify_one(&self, hint: usize) {
        seq_cst_point();
        if self.idle.sleepers.load(SeqCst) == 0 || self.idle.searching.load(SeqCst) > 0 {
            return;
        }
        self.notify_one_slow(hint);
    }

    /// Wakes worker `index` if it sleeps. Call after publishing work that only that
    /// worker can take (its keyed inbox). If it is awake, even while searching, it
    /// re-checks its inbox before it parks (same argument as for `notify_one`).
    #[inline]
    pub(crate) fn notify_worker(&self, index: usize) {
        seq_cst_point();
        let slot = &self.slots[index];
        if slot.state.load(SeqCst) == SLEEPING {
            self.wake_if_sleeping(slot);
        }
    }

    /// Whether some worker sleeps: it spun for work and found none, so it
    /// has been idle for a while. A hint (a relaxed load) for sharing work,
    /// not part of the wake-up protocol. Searching workers do not count:
    /// they are idle only for a moment when items are short, and splitting
    /// batches of short items for them costs more than it gains.
    #[inline]
    pub(crate) fn anyone_asleep(&self) -> bool {
        self.idle.sleepers.load(Relaxed) > 0
    }

    /// Counts a worker as asleep without parking it: a test's stand-in for
    /// a sibling that sleeps.
    #[cfg(test)]
    pub(crate) fn pretend_one_sleeps(&self) {
        self.idle.sleepers.fetch_add(1, SeqCst);
    }

    /// The calling worker ran out of work and starts looking (spinning).
    #[inline]
    pub(crate) fn start_searching(&self) {
        self.idle.searching.fetch_add(1, SeqCst);
    }

    /// The calling worker found work while searching.
    #[inline]
    pub(crate) fn stop_searching(&self) {
        self.idle.searching.fetch_sub(1, SeqCst);
    }

    #[cold]
    fn notify_one_slow(&self, hint: usize) {
        let n_slots = self.slots.len();
        for offset in 0..n_slots {
            if self.wake_if_sleeping(&self.slots[(hint + offset) % n_slots]) {
                return;
            }
        }
    }

    /// Wakes every sleeping worker. Call after setting the closed or cancelled flag.
    pub(crate) fn notify_all(&self) {
        seq_cst_point();
        for slot in self.slots.iter() {
            self.wake_if_sleeping(slot);
        }
    }

    /// Claims `slot` if its worker sleeps (so no other waker spends a wake-up on
    /// it), takes it off the sleeper count and unparks it.
    fn wake_if_sleeping(&self, slot: &Slot) -> bool {
        let claimed = slot
            .state
            .compare_exchange(SLEEPING, NOTIFIED, SeqCst, SeqCst)
            .is_ok();
        if claimed {
            self.idle.sleepers.fetch_sub(1, SeqCst);
            slot.unparker.unpark();
        }
        claimed
    }

    /// Parks worker `index`, which must be searching (see `start_searching`),
    /// unless `should_wake` (re-checked after the announcement) finds work or a
    /// reason to exit. The worker stops searching here, after announcing itself
    /// and before the re-check: a producer that skipped its wake-up because it saw
    /// this worker searching pushed before that re-check, so the re-check sees it.
    pub(crate) fn sleep(&self, index: usize, parker: &Parker, should_wake: impl Fn() -> bool) {
        let slot = &self.slots[index];
        slot.state.store(SLEEPING, SeqCst);
        self.idle.sleepers.fetch_add(1, SeqCst);
        self.idle.searching.fetch_sub(1, SeqCst);
        seq_cst_point();
        if should_wake() {
            if slot
                .state
                .compare_exchange(SLEEPING, AWAKE, SeqCst, SeqCst)
                .is_ok()
            {
                self.idle.sleepers.fetch_sub(1, SeqCst);
            } else {
                // A waker claimed this slot and already took it off `sleepers`.
                slot.state.store(AWAKE, SeqCst);
            }
            return;
        }
        // A stale unpark token from an earlier claimed-but-unneeded wake-up can end
        // `park` early; the state tells whether this wake-up was meant.
        while slot.state.load(SeqCst) == SLEEPING {
            parker.park();
        }
        slot.state.store(AWAKE, SeqCst);
    }
}
