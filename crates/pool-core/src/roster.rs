//! How many workers a pool has right now, and the protocol that changes it
//! while the pool runs (`Pool::set_workers`).
//!
//! # The word
//!
//! A pool is built with seats for `max_workers` workers (every per-worker
//! structure: deques, parkers, inboxes, metrics shards, watermarks); the
//! first `active` seats have threads. The [`Roster`] keeps `active` in one
//! word with a *generation* (bumped by every change) and a *resizing* bit.
//! The word is written only by a resize, so the line stays in every core's
//! cache: a worker reads it once per job (and once per item of a batch:
//! `Bench::share_rest`), a keyed producer once per item, to route.
//!
//! # Shrinking and growing
//!
//! A worker whose seat is at or past `active` retires: after the item in
//! hand (the rest of its batch goes to its own deque), it hands what its
//! deques hold to the injector, runs `finish`, its retirement and
//! `on_worker_done`, and its thread ends, handing the seat's parts back to
//! the pool for a later grow. `Sleep` never wakes an empty seat (its slot
//! stays `AWAKE`), and a resize wakes each retiring seat after the switch
//! (the worker's sleep re-check reads the word: the store-buffering argument
//! of `sleep.rs`). A grow makes the new workers first, on their threads,
//! and lets them run only after the switch.
//!
//! # Keyed pools: per-key order across a move
//!
//! Jump hashing moves only the keys whose worker changes. A moved key's
//! items routed with the old count must all be done before its new worker
//! starts on it. So a resize of a keyed pool is a barrier:
//!
//! 1. The resizer sets the resizing bit (`SeqCst`).
//! 2. Every push into an inbox first *announces* itself on that inbox
//!    (`pushed += 1`, `SeqCst`), then reads the word (`SeqCst`). A thread
//!    outside the pool that sees the bit, or any thread that sees a newer
//!    generation than the one it routed with, takes the announcement back
//!    (`withdrawn += 1`), waits for the switch if one is under way, routes
//!    again with the new word and retries. A worker's own pushes (spawns,
//!    sends) during the barrier go on with the old count: they are part of
//!    what is drained.
//! 3. The resizer waits until the pool is *drained*: it reads every inbox's
//!    `done` (jobs its worker finished) and `withdrawn`, then every
//!    `pushed`, and waits until the sums are equal (on `Progress`, which
//!    workers tell after each job and when they go idle; a withdrawal tells
//!    it too).
//! 4. It stores the new word: new count, next generation, no bit. Producers
//!    waiting at step 2 are woken (a lock and condition variable, used only
//!    around a resize).
//!
//! *Why drained means nothing queued or running.* All three counters only
//! grow. Each unit of `done` or `withdrawn` has its own announcement, which
//! happens before it (a job's announcement is before its push, the push
//! before the pop, the pop before the `Release` store of `done`), so a
//! reader that sees the unit sees the announcement in its later read of
//! `pushed`: per inbox, `done + withdrawn <= pushed` as read. Equal sums
//! then mean every announcement the resizer read is done or withdrawn. An
//! announcement it did not read is either a worker's push from a job that
//! is not done — but that job's own announcement was read and is not done,
//! a contradiction, by induction down to a job pushed from outside — or a
//! push from outside the pool, whose `SeqCst` announcement came after the
//! resizer's `SeqCst` read of that counter, hence after its store of the
//! bit: that push reads the bit (store buffering) and withdraws. So at the
//! switch no item routed with the old count is queued or running, and none
//! can still arrive.
//!
//! *Items routed but not pushed.* A `Submitter`'s open batches were routed
//! with the generation it remembers; when a route (of a new item) or a push
//! meets a newer generation, it routes every buffered item again, in order,
//! before it takes the new item (`Submitter::regroup`). A lone item
//! (`Sender`, spawn) carries its key's hash in its `Route`, so it is routed
//! again without calling the key function. The items of one key move
//! together and keep their order; the old worker finished the key's pushed
//! items before the switch; so each producer's per-key order holds across
//! the move (**I17**).
//!
//! *It never hangs on the pool's own state.* Nothing a producer holds
//! outside the pool (room, open batches, the calling thread's own
//! submitters) is part of the drain; workers never wait for room; a
//! cancelled pool's workers drop what is queued, which counts as done. A
//! worker whose item waits for a producer that the barrier holds would wait
//! for ever; so would any resize that waits for that item, which is why a
//! resize from one of the pool's own workers is refused.

use std::sync::{Condvar, Mutex, PoisonError};

use crossbeam_utils::CachePadded;

use crate::sync::{AtomicU64, Relaxed, Release, SeqCst};

/// Bits of the word that hold the active count (`MAX_WORKERS` fits).
const COUNT_BITS: u32 = 16;
const COUNT_MASK: u64 = (1 << COUNT_BITS) - 1;
/// Set while a keyed pool drains for a resize.
const RESIZING: u64 = 1 << 63;
/// One generation.
const GENERATION: u64 = 1 << COUNT_BITS;

/// The active count of a word.
#[inline(always)]
pub(crate) fn count_of(word: u64) -> usize {
    (word & COUNT_MASK) as usize
}

/// The generation of a word (without the resizing bit).
#[inline(always)]
pub(crate) fn generation_of(word: u64) -> u64 {
    (word & !RESIZING) >> COUNT_BITS
}

/// Where a keyed item goes: its worker under the generation it was routed
/// with, and its key's hash, to route it again without the key function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Route {
    pub(crate) index: usize,
    pub(crate) generation: u64,
    pub(crate) hash: u64,
}

impl Route {
    /// The route of the key hashed to `hash` under `word`.
    #[inline(always)]
    pub(crate) fn of(hash: u64, word: u64) -> Route {
        let buckets = u32::try_from(count_of(word)).unwrap_or(1);
        // The count is in 1..=MAX_WORKERS, so the jump never fails.
        let index = pool_chunk::jump_hash(hash, buckets).unwrap_or(0) as usize;
        Route {
            index,
            generation: generation_of(word),
            hash,
        }
    }
}

/// The active count, its generation and the resize barrier of one pool.
pub(crate) struct Roster {
    word: CachePadded<AtomicU64>,
    /// Producers held by a keyed resize wait here for the switch.
    held: Mutex<()>,
    switched: Condvar,
}

impl Roster {
    pub(crate) fn new(n_workers: usize) -> Self {
        Roster {
            word: CachePadded::new(AtomicU64::new(n_workers as u64)),
            held: Mutex::new(()),
            switched: Condvar::new(),
        }
    }

    /// The word, for routing (a relaxed load: a push checks it again).
    #[inline(always)]
    pub(crate) fn word(&self) -> u64 {
        self.word.load(Relaxed)
    }

    /// The word, read `SeqCst`.
    #[inline]
    pub(crate) fn word_now(&self) -> u64 {
        self.word.load(SeqCst)
    }

    /// The number of workers with threads.
    #[inline]
    pub(crate) fn active(&self) -> usize {
        count_of(self.word.load(Relaxed))
    }

    /// Whether the worker on seat `index` is to leave: one relaxed load.
    #[inline(always)]
    pub(crate) fn retires(&self, index: usize) -> bool {
        index >= count_of(self.word.load(Relaxed))
    }

    /// Whether a push routed with `generation` may go in now: a thread
    /// outside the pool must not while a resize drains; any thread must
    /// not with an old generation. Read after the push's announcement.
    #[inline]
    pub(crate) fn admits(
        &self,
        generation: u64,
        from_worker: impl FnOnce() -> bool,
    ) -> Result<(), u64> {
        let word = self.word.load(SeqCst);
        if generation_of(word) == generation && (word & RESIZING == 0 || from_worker()) {
            Ok(())
        } else {
            Err(word)
        }
    }

    /// Waits while a resize that `word` shows is under way; returns the
    /// word to route with.
    #[cold]
    pub(crate) fn wait_for_switch(&self, word: u64) -> u64 {
        if word & RESIZING == 0 {
            return self.word_now();
        }
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            let now = self.word.load(SeqCst);
            if now != word {
                return now;
            }
            held = self
                .switched
                .wait(held)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Step 1 of a keyed resize: holds pushes from outside the pool.
    pub(crate) fn begin_resize(&self) {
        self.word.fetch_or(RESIZING, SeqCst);
    }

    /// Step 4 (and the whole of an unkeyed resize): `n_workers` from now
    /// on, in the next generation; wakes held producers.
    pub(crate) fn switch(&self, n_workers: usize) {
        let word = self.word.load(SeqCst);
        let next = ((generation_of(word) + 1) * GENERATION) | n_workers as u64;
        let _held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        self.word.store(next & !RESIZING, SeqCst);
        self.switched.notify_all();
    }
}

/// One keyed inbox's counts for the barrier (see the module notes).
pub(crate) struct Entries {
    /// Announced pushes, and announcements taken back: written by producers.
    arrivals: CachePadded<Arrivals>,
    /// Jobs of this inbox its worker finished: written by that worker only.
    done: CachePadded<AtomicU64>,
}

struct Arrivals {
    pushed: AtomicU64,
    withdrawn: AtomicU64,
}

impl Entries {
    pub(crate) fn new() -> Self {
        Entries {
            arrivals: CachePadded::new(Arrivals {
                pushed: AtomicU64::new(0),
                withdrawn: AtomicU64::new(0),
            }),
            done: CachePadded::new(AtomicU64::new(0)),
        }
    }

    /// A push into this inbox is about to happen (before the word is read).
    #[inline]
    pub(crate) fn announce(&self) {
        self.arrivals.pushed.fetch_add(1, SeqCst);
    }

    /// An announced push did not happen.
    #[cold]
    pub(crate) fn withdraw(&self) {
        self.arrivals.withdrawn.fetch_add(1, SeqCst);
    }

    /// The inbox's worker finished a job from it: a plain store by the one
    /// writer, after the job (and every push it made).
    #[inline]
    pub(crate) fn job_done(&self) {
        let done = self.done.load(Relaxed);
        self.done.store(done + 1, Release);
    }
}

/// Whether nothing pushed into these inboxes is queued or running (see the
/// module notes: `done` and `withdrawn` are read before `pushed`).
pub(crate) fn drained<'a>(entries: impl Iterator<Item = &'a Entries> + Clone) -> bool {
    let settled: u64 = entries
        .clone()
        .map(|entries| entries.done.load(SeqCst) + entries.arrivals.withdrawn.load(SeqCst))
        .sum();
    let pushed: u64 = entries
        .map(|entries| entries.arrivals.pushed.load(SeqCst))
        .sum();
    settled == pushed
}
