//! `Collector<V>`: a bounded collection point between producers and one consumer.
//!
//! # The protocol
//!
//! One mutex guards the whole state (the buffered values, the flags and the
//! counts of live senders and of waiting threads); two condition variables
//! carry the wake-ups: `readable` for consumers (a value arrived, or the
//! collector closed or was cancelled) and `writable` for producers (room, or
//! the collector closed, was cancelled or lost its consumer). Every state
//! change that can end a wait is made under the mutex and followed by a
//! notification, and every waiter re-checks the state under the mutex before
//! it waits, so no wake-up is lost. A value wakes one waiting consumer and a
//! taken value one waiting producer, and only when someone waits: a
//! notification with nobody waiting still costs a system call with `std`'s
//! condition variables, so the waiting counts keep the uncontended path to a
//! lock and a push. Closing, cancelling and dropping the consumer wake
//! everybody.
//!
//! A collector built [`with_token`](Collector::with_token) registers a
//! callback on the parent [`CancelToken`] ([`CancelToken::on_cancel`]) that
//! cancels the collector, on the thread that cancels the token, before its
//! `cancel` returns; no thread of its own. The registration lives in the
//! consumer's `Collector`, so dropping the collector deregisters it. Every
//! operation also checks the token itself, as before.
//!
//! # Counts
//!
//! The collector counts, under its lock, every value it accepted
//! (`received`), handed to a consumer (`taken`), or dropped (`dropped`: on
//! cancel, or when the consumer went away with values buffered), and every
//! value it handed back to a producer (`refused`): [`CollectorCounts`],
//! readable from either side. `received == taken + dropped + buffered`
//! holds at every moment, so a pipeline's accounting continues through the
//! collector: a pool's processed items are the values sent, and each sent
//! value was received or refused.
//!
//! # When the stream ends
//!
//! The collector closes on [`Collector::close`] (from either side), or when the
//! consumer finds it empty while no [`CollectorSender`] is alive: nobody could
//! submit any more, so waiting would be forever. The decision is the
//! consumer's, taken under the lock when it needs a value, not the last
//! sender's when it drops: producers that take a sender, submit and drop it
//! one after another (the usual `for` loop that spawns threads) may bring the
//! count to zero in between, and that must not close the collector under the
//! next one. Dropping the last sender wakes a waiting consumer so that it can
//! look.
//!
//! Values dropped by the collector (on cancel, or when the consumer goes away)
//! are dropped after the mutex is released, so a value's own `Drop` never runs
//! under the collector's lock.

use std::collections::VecDeque;
use std::fmt;
use std::iter::FusedIterator;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use pool_core::{CancelRegistration, CancelToken, SendError, TrySendError};

#[cfg(feature = "async")]
mod stream;
#[cfg(feature = "async")]
pub use stream::{CollectorStream, RecvFuture};

/// The most values a new collector reserves room for up front; a larger
/// capacity grows the buffer on demand, so `Collector::new(usize::MAX)` is fine.
const INITIAL_ROOM: usize = 1024;

/// Why a [`Collector`] could not be built. Each variant names the setting or
/// the resource that is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CollectorBuildError {
    /// `capacity` was 0, so no value could ever be submitted.
    #[error("`capacity` must be at least 1, got 0")]
    ZeroCapacity,
    /// The operating system refused to start the thread that watched the
    /// parent token. No longer returned: [`Collector::with_token`] registers
    /// a callback on the token instead of starting a thread.
    #[error("could not spawn the collector's cancellation watcher: {message}")]
    Spawn {
        /// The operating system's message.
        message: String,
    },
}

/// Why iteration over a [`Collector`] ended early.
///
/// The consumer sees it once, as the last item of its iteration (or as the
/// error of [`Collector::all`]); afterwards iteration simply ends.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CollectError {
    /// The collector (or its parent token) was cancelled. Values that were
    /// buffered and not yet taken were dropped, and `dropped` says how many.
    #[error("the collector was cancelled; {dropped} values were dropped")]
    Cancelled {
        /// How many accepted values were dropped instead of delivered.
        dropped: usize,
    },
}

/// What to do when the collector is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WhenFull {
    Wait,
    Refuse,
}

/// Why a producer was refused, before the value is attached.
#[derive(Debug, Clone, Copy)]
enum Refusal {
    Full,
    Closed,
    Cancelled,
    Disconnected,
}

impl Refusal {
    fn with<V>(self, value: V) -> TrySendError<V> {
        match self {
            Refusal::Full => TrySendError::Full(value),
            Refusal::Closed => TrySendError::Closed(value),
            Refusal::Cancelled => TrySendError::Cancelled(value),
            Refusal::Disconnected => TrySendError::Disconnected(value),
        }
    }
}

struct State<V> {
    queue: VecDeque<V>,
    /// No more values are accepted; the buffered ones are still delivered.
    closed: bool,
    /// No more values are accepted and the buffered ones were dropped.
    cancelled: bool,
    /// The consumer has been handed the cancellation error.
    cancel_reported: bool,
    /// The `Collector` was dropped.
    consumer_gone: bool,
    /// Values dropped by the cancellation.
    dropped: usize,
    /// Values accepted from producers, in all.
    received: u64,
    /// Values handed to a consumer, in all.
    taken: u64,
    /// Values handed back to producers (refused), in all.
    refused: u64,
    /// Values dropped because the consumer went away with them buffered.
    dropped_on_disconnect: u64,
    /// Live `CollectorSender`s; with none and nothing buffered, the consumer
    /// closes the collector instead of waiting forever.
    senders: usize,
    waiting_producers: usize,
    waiting_consumers: usize,
    /// Async consumers registered at `readable_async` (see `stream.rs`).
    #[cfg(feature = "async")]
    async_consumers: usize,
}

struct Shared<V> {
    state: Mutex<State<V>>,
    /// Consumers wait here for a value, a close or a cancel.
    readable: Condvar,
    /// Producers wait here for room, a close, a cancel or the consumer's drop.
    writable: Condvar,
    /// Async consumers wait here, as sync ones on `readable`.
    #[cfg(feature = "async")]
    readable_async: event_listener::Event,
    capacity: usize,
    /// The parent token given to `with_token`, looked at by every operation
    /// (its cancel also reaches the collector through a callback).
    token: Option<CancelToken>,
}

impl<V> Shared<V> {
    fn lock(&self) -> MutexGuard<'_, State<V>> {
        // No user code runs under the lock, so a poisoned lock can only come from
        // an allocation failure inside it; the state is consistent either way.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A value arrived: wakes one waiting consumer of each kind, if any
    /// waits. Called under the lock.
    fn wake_one_reader(&self, state: &State<V>) {
        if state.waiting_consumers > 0 {
            self.readable.notify_one();
        }
        #[cfg(feature = "async")]
        if state.async_consumers > 0 {
            self.readable_async.notify_additional(1);
        }
    }

    /// The stream may have ended (close, cancel, the last sender gone):
    /// wakes every consumer. Called under the lock.
    fn wake_all_readers(&self, state: &State<V>) {
        if state.waiting_consumers > 0 {
            self.readable.notify_all();
        }
        #[cfg(feature = "async")]
        if state.async_consumers > 0 {
            self.readable_async.notify(usize::MAX);
        }
        #[cfg(not(feature = "async"))]
        let _ = state;
    }

    /// Waits on `signal`, counted in the waiter count `waiting` picks, then
    /// looks at the token directly (as every operation does). Values the
    /// token's cancel dropped are dropped outside the lock.
    fn wait_on<'a>(
        &'a self,
        signal: &Condvar,
        mut state: MutexGuard<'a, State<V>>,
        waiting: fn(&mut State<V>) -> &mut usize,
    ) -> MutexGuard<'a, State<V>> {
        *waiting(&mut state) += 1;
        state = signal.wait(state).unwrap_or_else(PoisonError::into_inner);
        *waiting(&mut state) -= 1;
        let late = self.sync_token(&mut state);
        if late.is_empty() {
            return state;
        }
        drop(state);
        drop(late);
        self.lock()
    }

    /// Marks the collector cancelled if its parent token fired. Returns the
    /// values that must now be dropped (outside the lock).
    fn sync_token(&self, state: &mut State<V>) -> VecDeque<V> {
        match &self.token {
            Some(token) if !state.cancelled && token.is_cancelled() => self.mark_cancelled(state),
            _ => VecDeque::new(),
        }
    }

    /// Cancels under the lock and wakes everyone; returns the dropped values.
    ///
    /// A collector that is closed and drained has ended its stream: every
    /// accepted value was taken and none can come any more. Cancelling it then
    /// drops nothing, and there is nothing to report either, so the report is
    /// marked as made: a consumer whose iteration returned `None` must keep
    /// getting `None` (`CollectorIter` is a `FusedIterator`), and one that has
    /// not looked yet sees the same clean end.
    fn mark_cancelled(&self, state: &mut State<V>) -> VecDeque<V> {
        if state.cancelled {
            return VecDeque::new();
        }
        state.cancelled = true;
        if state.closed && state.queue.is_empty() {
            state.cancel_reported = true;
            // Producers blocked on a closed collector have been woken by the
            // close already, and no consumer waits on a closed one.
            return VecDeque::new();
        }
        let discarded = std::mem::take(&mut state.queue);
        state.dropped += discarded.len();
        self.wake_all_readers(state);
        self.writable.notify_all();
        discarded
    }

    /// The counts as they stand.
    fn counts(&self) -> CollectorCounts {
        let state = self.lock();
        CollectorCounts {
            received: state.received,
            taken: state.taken,
            dropped: state.dropped as u64 + state.dropped_on_disconnect,
            buffered: state.queue.len() as u64,
            refused: state.refused,
        }
    }

    fn cancel(&self) {
        let discarded;
        {
            let mut state = self.lock();
            if state.consumer_gone {
                return;
            }
            discarded = self.mark_cancelled(&mut state);
        }
        drop(discarded);
    }

    fn close(&self) {
        let mut state = self.lock();
        if !state.closed {
            state.closed = true;
            self.wake_all_readers(&state);
            self.writable.notify_all();
        }
    }

    /// Queues a value, waiting while the collector is full.
    fn send(&self, value: V) -> Result<(), SendError<V>> {
        self.offer(value, WhenFull::Wait)
            .map_err(|error| match error {
                TrySendError::Closed(value) => SendError::Closed(value),
                TrySendError::Cancelled(value) => SendError::Cancelled(value),
                TrySendError::Disconnected(value) => SendError::Disconnected(value),
                TrySendError::Full(value) => {
                    debug_assert!(false, "a waiting send never refuses as full");
                    SendError::Closed(value)
                }
            })
    }

    /// Queues a value if there is room now.
    fn try_send(&self, value: V) -> Result<(), TrySendError<V>> {
        self.offer(value, WhenFull::Refuse)
    }

    fn offer(&self, value: V, when_full: WhenFull) -> Result<(), TrySendError<V>> {
        // Declared before the guard, so it is dropped after the lock is released.
        let discarded;
        let mut state = self.lock();
        discarded = self.sync_token(&mut state);
        let outcome = loop {
            let refusal = if state.consumer_gone {
                Some(Refusal::Disconnected)
            } else if state.cancelled {
                Some(Refusal::Cancelled)
            } else if state.closed {
                Some(Refusal::Closed)
            } else if state.queue.len() < self.capacity {
                None
            } else if when_full == WhenFull::Wait {
                state = self.wait_on(&self.writable, state, |state| &mut state.waiting_producers);
                continue;
            } else {
                Some(Refusal::Full)
            };
            break match refusal {
                Some(refusal) => {
                    state.refused += 1;
                    Err(refusal.with(value))
                }
                None => {
                    state.received += 1;
                    state.queue.push_back(value);
                    self.wake_one_reader(&state);
                    Ok(())
                }
            };
        };
        drop(state);
        drop(discarded);
        outcome
    }

    fn recv(&self) -> Option<Result<V, CollectError>> {
        let discarded;
        let mut state = self.lock();
        discarded = self.sync_token(&mut state);
        let outcome = loop {
            if let Some(outcome) = self.take(&mut state) {
                break outcome;
            }
            state = self.wait_on(&self.readable, state, |state| &mut state.waiting_consumers);
        };
        drop(state);
        drop(discarded);
        outcome
    }

    /// The consumer's step, under the lock: the next outcome of the stream
    /// (a value, the cancellation's one error, or its end), or `None` when
    /// the consumer must wait.
    #[allow(clippy::option_option)]
    fn take(&self, state: &mut State<V>) -> Option<Option<Result<V, CollectError>>> {
        if state.cancelled {
            if state.cancel_reported {
                return Some(None);
            }
            state.cancel_reported = true;
            return Some(Some(Err(CollectError::Cancelled {
                dropped: state.dropped,
            })));
        }
        if let Some(value) = state.queue.pop_front() {
            state.taken += 1;
            if state.waiting_producers > 0 {
                self.writable.notify_one();
            }
            return Some(Some(Ok(value)));
        }
        if state.closed {
            return Some(None);
        }
        if state.senders == 0 {
            // Empty, and nobody could submit: waiting would be forever.
            state.closed = true;
            self.writable.notify_all();
            return Some(None);
        }
        None
    }
}

/// A bounded collection point: producers [`send`](CollectorSender::send)
/// values through [`CollectorSender`]s, the consumer — this value —
/// [iterates](Collector::iter) them or takes them [`all`](Collector::all).
///
/// The rules:
///
/// - **Bounded**: at most `capacity` values wait to be taken; `send` blocks
///   beyond that and [`try_send`](CollectorSender::try_send) hands the
///   value back as [`TrySendError::Full`].
/// - **Closing** ends the stream: the consumer still gets every value already
///   accepted and then its iteration ends. The collector closes when
///   [`close`](Collector::close) is called (from either side; twice is harmless)
///   or when the consumer finds it **empty with no sender alive** — nobody
///   could submit any more, so a consumer iterating to the end cannot hang on
///   a producer that forgot to close. Take the senders before the consumer
///   starts (a sender made afterwards may find the collector closed and be
///   refused with [`SendError::Closed`]); between their drop and the
///   consumer's look, a sender count of zero closes nothing.
/// - **Cancelling** ([`cancel`](Collector::cancel), or the parent token of
///   [`with_token`](Collector::with_token)) ends the stream at once: buffered
///   values are dropped and counted, and the consumer's iteration ends with
///   one `Err(`[`CollectError::Cancelled`]`)`. A stream that has already
///   ended (closed, and every accepted value taken) stays ended: the cancel
///   drops nothing and reports nothing.
/// - **Dropping the consumer** drops the buffered values and makes every
///   submit, including one blocked at that moment, hand its value back as
///   [`SendError::Disconnected`] instead of blocking forever.
/// - A refused value is always handed back; no value is lost silently.
///
/// Values from one sender arrive in the order it sent them.
///
/// ```
/// use pool_collect::Collector;
///
/// let collector = Collector::new(16)?;
/// std::thread::scope(|scope| {
///     for producer in 0..4u64 {
///         let sender = collector.sender();
///         scope.spawn(move || {
///             for n in 0..100 {
///                 sender.send(producer * 1000 + n).expect("the consumer is reading");
///             }
///         }); // each thread drops its sender at the end
///     }
///     // Iteration ends once all four senders are gone and every value is taken.
///     let total: u64 = collector.iter().map(|value| value.expect("not cancelled")).sum();
///     assert_eq!(total, 4 * 4950 + 100 * (1000 + 2000 + 3000));
/// });
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Collector<V> {
    shared: Arc<Shared<V>>,
    /// The callback on the parent token that cancels this collector
    /// ([`with_token`](Collector::with_token)); dropped with the consumer.
    _on_cancel: Option<CancelRegistration>,
}

/// What a [`Collector`] did with the values offered to it, from
/// [`Collector::counts`] or [`CollectorSender::counts`].
///
/// At every moment `received == taken + dropped + buffered`
/// ([`is_balanced`](CollectorCounts::is_balanced)); `refused` values were
/// handed back to their producers and are in none of the others. So when
/// every item a pool processes sends one value, the pool's `processed`
/// equals `received + refused`, and nothing falls between the pool and the
/// consumer unaccounted for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CollectorCounts {
    /// Values accepted by `send` or `try_send`.
    pub received: u64,
    /// Values handed to a consumer (`iter`, `all`, `recv_async`, `stream`).
    /// A value [`all`](Collector::all) had taken when a cancel came is
    /// taken here, though `all` reports it in
    /// [`CollectError::Cancelled`]'s `dropped`.
    pub taken: u64,
    /// Values accepted and then dropped by the collector: buffered when it
    /// was cancelled, or when the consumer (the `Collector`) was dropped.
    pub dropped: u64,
    /// Values accepted and waiting to be taken right now.
    pub buffered: u64,
    /// Values handed back to their producer: the collector was full (for
    /// `try_send`), closed, cancelled or without a consumer.
    pub refused: u64,
}

impl CollectorCounts {
    /// Whether `received == taken + dropped + buffered` (always true of
    /// counts read from a collector).
    pub fn is_balanced(&self) -> bool {
        self.received == self.taken + self.dropped + self.buffered
    }
}

impl<V> fmt::Debug for Collector<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.shared.lock();
        f.debug_struct("Collector")
            .field("capacity", &self.shared.capacity)
            .field("len", &state.queue.len())
            .field("closed", &state.closed)
            .field("cancelled", &state.cancelled)
            .field("senders", &state.senders)
            .finish()
    }
}

impl<V> Collector<V> {
    fn with_shared(
        capacity: usize,
        token: Option<CancelToken>,
    ) -> Result<Self, CollectorBuildError> {
        if capacity == 0 {
            return Err(CollectorBuildError::ZeroCapacity);
        }
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                queue: VecDeque::with_capacity(capacity.min(INITIAL_ROOM)),
                closed: false,
                cancelled: false,
                cancel_reported: false,
                consumer_gone: false,
                dropped: 0,
                received: 0,
                taken: 0,
                refused: 0,
                dropped_on_disconnect: 0,
                senders: 0,
                waiting_producers: 0,
                waiting_consumers: 0,
                #[cfg(feature = "async")]
                async_consumers: 0,
            }),
            readable: Condvar::new(),
            writable: Condvar::new(),
            #[cfg(feature = "async")]
            readable_async: event_listener::Event::new(),
            capacity,
            token,
        });
        Ok(Collector {
            shared,
            _on_cancel: None,
        })
    }

    /// A collector that holds at most `capacity` values not yet taken.
    ///
    /// A `capacity` of 0 is refused with [`CollectorBuildError::ZeroCapacity`]:
    /// nothing could ever be submitted.
    ///
    /// ```
    /// use pool_collect::{Collector, CollectorBuildError};
    ///
    /// assert_eq!(Collector::<u8>::new(0).unwrap_err(), CollectorBuildError::ZeroCapacity);
    /// let collector = Collector::<u8>::new(8)?;
    /// assert_eq!(collector.capacity(), 8);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(capacity: usize) -> Result<Self, CollectorBuildError> {
        Self::with_shared(capacity, None)
    }

    /// Makes a producer handle; clone it or call this again for more
    /// producers. Take them before the consumer starts: once it finds the
    /// collector empty with no sender alive, the collector closes.
    pub fn sender(&self) -> CollectorSender<V> {
        self.shared.lock().senders += 1;
        CollectorSender {
            shared: Arc::clone(&self.shared),
        }
    }

    /// Iterates the values as they arrive, blocking while the collector is empty.
    ///
    /// Each item is `Ok(value)`. The iteration ends when the collector is
    /// closed and every accepted value has been taken — closed by
    /// [`close`](Collector::close), or here, on finding it empty with no
    /// sender alive. If it is cancelled instead, the last item is one
    /// `Err(`[`CollectError::Cancelled`]`)`.
    /// Several threads may iterate at once; each value goes to one of them.
    ///
    /// ```
    /// use pool_collect::{CollectError, Collector};
    ///
    /// let collector = Collector::new(4)?;
    /// let sender = collector.sender();
    /// sender.send("a")?;
    /// sender.send("b")?;
    /// collector.cancel();
    /// let seen: Vec<_> = collector.iter().collect();
    /// assert_eq!(seen, [Err(CollectError::Cancelled { dropped: 2 })]);
    /// assert!(sender.send("c").is_err()); // handed back
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn iter(&self) -> CollectorIter<'_, V> {
        CollectorIter { collector: self }
    }

    /// Takes every value until the collector is closed, in arrival order.
    ///
    /// If the collector is cancelled first, returns
    /// [`CollectError::Cancelled`]; the values this call had already taken are
    /// dropped too and included in `dropped`. If the cancellation was already
    /// reported to an earlier iteration, returns what is left (nothing).
    ///
    /// ```
    /// use pool_collect::Collector;
    ///
    /// let collector = Collector::new(8)?;
    /// let sender = collector.sender();
    /// let producer = std::thread::spawn(move || {
    ///     for n in 0..100u32 {
    ///         sender.send(n).expect("the consumer is reading");
    ///     }
    /// }); // with its only sender gone, `all` ends after the last value
    /// let values = collector.all()?;
    /// producer.join().expect("producer thread");
    /// assert_eq!(values, (0..100).collect::<Vec<_>>());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn all(self) -> Result<Vec<V>, CollectError> {
        let mut values = Vec::new();
        for value in self.iter() {
            match value {
                Ok(value) => values.push(value),
                Err(CollectError::Cancelled { dropped }) => {
                    return Err(CollectError::Cancelled {
                        dropped: dropped + values.len(),
                    });
                }
            }
        }
        Ok(values)
    }

    /// Stops accepting values. Values already accepted are still delivered;
    /// producers blocked in `send` get their value back as
    /// [`SendError::Closed`], and a consumer waiting on an empty collector
    /// finishes its iteration. Idempotent.
    pub fn close(&self) {
        self.shared.close();
    }

    /// Cancels the collector: buffered values are dropped and counted,
    /// producers get their values back as [`SendError::Cancelled`] (also when
    /// blocked), and the consumer's iteration ends with one
    /// [`CollectError::Cancelled`]. Idempotent. A parent token given to
    /// [`with_token`](Collector::with_token) is not cancelled by it.
    ///
    /// Once the collector is closed and every accepted value has been taken,
    /// the stream has ended and cancelling changes nothing for the consumer:
    /// there is nothing to drop, so no error is reported, and an iteration
    /// that returned `None` keeps returning `None`.
    /// [`is_cancelled`](Collector::is_cancelled) still says it was cancelled.
    ///
    /// ```
    /// use pool_collect::Collector;
    ///
    /// let collector = Collector::new(2)?;
    /// collector.sender().send(1)?;
    /// collector.close();
    /// let mut stream = collector.iter();
    /// assert_eq!(stream.next(), Some(Ok(1)));
    /// assert_eq!(stream.next(), None); // closed and drained: the stream ended
    /// collector.cancel();
    /// assert_eq!(stream.next(), None); // and stays ended
    /// assert!(collector.is_cancelled());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn cancel(&self) {
        self.shared.cancel();
    }

    /// Whether the collector no longer accepts values (closed or cancelled).
    pub fn is_closed(&self) -> bool {
        let mut state = self.shared.lock();
        let discarded = self.shared.sync_token(&mut state);
        let closed = state.closed || state.cancelled;
        drop(state);
        drop(discarded);
        closed
    }

    /// Whether the collector (or its parent token) has been cancelled.
    pub fn is_cancelled(&self) -> bool {
        let token_fired = self
            .shared
            .token
            .as_ref()
            .is_some_and(CancelToken::is_cancelled);
        token_fired || self.shared.lock().cancelled
    }

    /// The most values that can wait to be taken.
    pub fn capacity(&self) -> usize {
        self.shared.capacity
    }

    /// How many values wait to be taken right now.
    pub fn len(&self) -> usize {
        self.shared.lock().queue.len()
    }

    /// Whether no value waits to be taken right now.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// What the collector did with the values offered so far: received,
    /// taken, dropped, buffered and refused ([`CollectorCounts`]; they
    /// always balance).
    ///
    /// ```
    /// use pool_collect::{Collector, CollectorCounts};
    ///
    /// let collector = Collector::new(2)?;
    /// let sender = collector.sender();
    /// sender.send(1)?;
    /// sender.send(2)?;
    /// assert!(sender.try_send(3).is_err()); // full: handed back
    /// let mut values = collector.iter();
    /// assert_eq!(values.next(), Some(Ok(1)));
    /// collector.cancel(); // drops the buffered 2
    /// let counts: CollectorCounts = collector.counts();
    /// assert_eq!((counts.received, counts.taken, counts.dropped, counts.buffered), (2, 1, 1, 0));
    /// assert_eq!(counts.refused, 1);
    /// assert!(counts.is_balanced());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn counts(&self) -> CollectorCounts {
        self.shared.counts()
    }
}

impl<V: Send + 'static> Collector<V> {
    /// Like [`new`](Collector::new), and cancelled when `token` (or any of its
    /// parents) is cancelled. [`cancel`](Collector::cancel) does not cancel
    /// `token`.
    ///
    /// The cancel reaches the collector through a callback on `token`
    /// ([`CancelToken::on_cancel`]), on the thread that cancels, before its
    /// `cancel` returns: a consumer or producer waiting on the collector is
    /// woken then. No thread is started; dropping the collector deregisters
    /// the callback. If the token is cancelled already, the collector starts
    /// cancelled. The only error is [`CollectorBuildError::ZeroCapacity`].
    ///
    /// ```
    /// use pool_collect::{CollectError, Collector};
    /// use pool_core::CancelToken;
    ///
    /// let token = CancelToken::new();
    /// let collector = Collector::<u32>::with_token(4, token.clone())?;
    /// let _sender = collector.sender(); // keeps the collector open
    /// std::thread::scope(|scope| {
    ///     let consumer = scope.spawn(|| collector.iter().collect::<Vec<_>>());
    ///     token.cancel(); // wakes the consumer, waiting or not
    ///     let seen = consumer.join().expect("consumer thread");
    ///     assert_eq!(seen, [Err(CollectError::Cancelled { dropped: 0 })]);
    /// });
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_token(capacity: usize, token: CancelToken) -> Result<Self, CollectorBuildError> {
        let mut collector = Self::with_shared(capacity, Some(token.clone()))?;
        // Weak: the registration (in the consumer's `Collector`) owns the
        // callback, and a cancel after the consumer is gone has nothing to do.
        let shared = Arc::downgrade(&collector.shared);
        // Runs here at once if the token is cancelled already.
        collector._on_cancel = Some(token.on_cancel(move || {
            if let Some(shared) = shared.upgrade() {
                shared.cancel();
            }
        }));
        Ok(collector)
    }
}

impl<V> Drop for Collector<V> {
    fn drop(&mut self) {
        // Deregistered first: a cancel from now on has no consumer to tell.
        drop(self._on_cancel.take());
        let discarded = {
            let mut state = self.shared.lock();
            state.consumer_gone = true;
            self.shared.writable.notify_all();
            self.shared.readable.notify_all();
            let discarded = std::mem::take(&mut state.queue);
            state.dropped_on_disconnect += discarded.len() as u64;
            discarded
        };
        drop(discarded);
    }
}

impl<'a, V> IntoIterator for &'a Collector<V> {
    type Item = Result<V, CollectError>;
    type IntoIter = CollectorIter<'a, V>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// The consumer's iterator over a [`Collector`], from [`Collector::iter`].
///
/// Blocks in `next` while the collector is empty and open.
pub struct CollectorIter<'a, V> {
    collector: &'a Collector<V>,
}

impl<V> fmt::Debug for CollectorIter<'_, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CollectorIter").finish_non_exhaustive()
    }
}

impl<V> Iterator for CollectorIter<'_, V> {
    type Item = Result<V, CollectError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.collector.shared.recv()
    }
}

/// Once `next` returns `None` the collector is closed and drained, or its
/// cancellation was reported; both are permanent (a cancel after the stream
/// ended reports nothing, see [`Collector::cancel`]).
impl<V> FusedIterator for CollectorIter<'_, V> {}

/// A producer's handle on a [`Collector`], from [`Collector::sender`].
///
/// `Clone + Send + Sync` (for `V: Send`): share it or clone it across threads,
/// or move it into a pool's worker closure. Once every sender is dropped, the
/// consumer's iteration ends as soon as it has taken the last value.
pub struct CollectorSender<V> {
    shared: Arc<Shared<V>>,
}

impl<V> fmt::Debug for CollectorSender<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CollectorSender")
            .field("capacity", &self.shared.capacity)
            .finish_non_exhaustive()
    }
}

impl<V> Clone for CollectorSender<V> {
    fn clone(&self) -> Self {
        self.shared.lock().senders += 1;
        CollectorSender {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<V> Drop for CollectorSender<V> {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        state.senders -= 1;
        // Not a close: see "When the stream ends" in the module docs. A waiting
        // consumer looks again and closes if the collector is empty.
        if state.senders == 0 {
            self.shared.wake_all_readers(&state);
        }
    }
}

impl<V> CollectorSender<V> {
    /// Sends a value, blocking while the collector is full.
    ///
    /// Hands the value back if the collector is closed, cancelled or its
    /// consumer was dropped — also when that happens while this call is blocked.
    ///
    /// ```
    /// use pool_collect::{Collector, SendError};
    ///
    /// let collector = Collector::new(2)?;
    /// let sender = collector.sender();
    /// sender.send(1)?;
    /// drop(collector); // the consumer goes away
    /// assert_eq!(sender.send(2), Err(SendError::Disconnected(2)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn send(&self, value: V) -> Result<(), SendError<V>> {
        self.shared.send(value)
    }

    /// Sends a value if there is room now; otherwise hands it back as
    /// [`TrySendError::Full`] (or as why it was refused).
    ///
    /// ```
    /// use pool_collect::{Collector, TrySendError};
    ///
    /// let collector = Collector::new(1)?;
    /// let sender = collector.sender();
    /// sender.try_send('a')?;
    /// assert_eq!(sender.try_send('b'), Err(TrySendError::Full('b')));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_send(&self, value: V) -> Result<(), TrySendError<V>> {
        self.shared.try_send(value)
    }

    /// The old name of [`send`](CollectorSender::send).
    #[deprecated(
        since = "0.1.0",
        note = "renamed to `send`: the verb and its error share a name"
    )]
    pub fn submit(&self, value: V) -> Result<(), SendError<V>> {
        self.send(value)
    }

    /// The old name of [`try_send`](CollectorSender::try_send).
    #[deprecated(
        since = "0.1.0",
        note = "renamed to `try_send`: the verb and its error share a name"
    )]
    pub fn try_submit(&self, value: V) -> Result<(), TrySendError<V>> {
        self.try_send(value)
    }

    /// Closes the collector from the producer side; see [`Collector::close`].
    pub fn close(&self) {
        self.shared.close();
    }

    /// What the collector did with the values offered so far (see
    /// [`Collector::counts`]); readable after the consumer is gone too.
    pub fn counts(&self) -> CollectorCounts {
        self.shared.counts()
    }

    /// Whether submissions are refused now: the collector is closed or
    /// cancelled, or its consumer is gone. A producer loop can check it to stop
    /// early.
    pub fn is_closed(&self) -> bool {
        let state = self.shared.lock();
        let token_fired = self
            .shared
            .token
            .as_ref()
            .is_some_and(CancelToken::is_cancelled);
        token_fired || state.closed || state.cancelled || state.consumer_gone
    }
}
