//! Property tests of `Collector`, run with proptest.
//!
//! Two properties, for any capacity and one to three producers:
//!
//! - **Against a model, one step at a time**: any interleaving of
//!   `try_submit`, `submit`, `close` (by a sender or the consumer), dropping a
//!   sender, `cancel` and taking a value gives exactly the result a small
//!   model predicts: the value taken, or the refusal (`Full`, `Closed`,
//!   `Cancelled`) with the refused value handed back; `len`, `is_closed` and
//!   `is_cancelled` match after every step; the stream ends with `None` once
//!   it is closed and drained, or after one `Cancelled` error carrying the
//!   number of values dropped; a cancel after the stream ended (closed and
//!   drained) drops and reports nothing, and the stream stays ended. Steps that would block are run for real: a
//!   `submit` into a full collector on a second thread while the consumer
//!   takes one value, and a take from an empty one on a second thread while
//!   this one submits or closes. The result is the same whichever thread gets
//!   the lock first, so the model stays exact without any sleep.
//! - **With real threads**: producers run their scripts of `submit`,
//!   `try_submit` and `close` on their own threads against a consumer that
//!   reads to the end, or drops the collector after some values, or cancels
//!   it after some values. Every value accepted with `Ok` is either yielded
//!   exactly once (in submission order per producer) or dropped by the
//!   collector exactly once (counted by the values' own `Drop`), and the
//!   cancellation's `dropped` count is exactly the number dropped; every
//!   refused value comes back to its producer as the same value; a producer
//!   that closed is refused from then on; with no close, no cancel and a
//!   consumer that reads to the end, nothing is refused but `try_submit`s
//!   into a full collector.
//!
//! Proptest shrinks a failing case to a minimal one (the shortest scripts and
//! the smallest capacity that still fail) and prints it. The seed is fixed, so
//! CI runs the same cases every time; `PROPTEST_RNG_SEED` picks other ones.
//! Thread scheduling is not controlled by the seed; the properties hold for
//! every schedule.

use std::collections::{BTreeSet, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;

use pool_collect::{CollectError, Collector, CollectorSender, SendError, TrySendError};
use proptest::prelude::*;
use proptest::test_runner::RngSeed;

/// The seed of every run unless `PROPTEST_RNG_SEED` says otherwise.
const SEED: u64 = 0x5eed_c011_ec70_0003;

/// `cases` cases from the fixed seed, and no regression files in the source tree:
/// a failure prints its minimal input, and the fixed seed reproduces it.
fn config(cases: u32) -> ProptestConfig {
    let mut config = ProptestConfig::with_cases(cases);
    if config.rng_seed == RngSeed::Random {
        config.rng_seed = RngSeed::Fixed(SEED);
    }
    config.failure_persistence = None;
    config
}

// ---------------------------------------------------------------------------
// One step at a time, against a model.
// ---------------------------------------------------------------------------

/// One step of the interleaving. Producers are picked modulo their number; a
/// step of a producer whose sender was dropped is skipped.
#[derive(Debug, Clone)]
enum Step {
    TrySubmit(usize),
    Submit(usize),
    CloseBySender(usize),
    CloseByConsumer,
    DropSender(usize),
    Cancel,
    /// Take one value. If that would block, a second thread takes it while
    /// this one unblocks it: by closing, or by submitting through a sender.
    Take {
        unblock_by_closing: bool,
    },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => any::<usize>().prop_map(Step::TrySubmit),
        6 => any::<usize>().prop_map(Step::Submit),
        8 => any::<bool>().prop_map(|unblock_by_closing| Step::Take { unblock_by_closing }),
        1 => any::<usize>().prop_map(Step::CloseBySender),
        1 => Just(Step::CloseByConsumer),
        1 => any::<usize>().prop_map(Step::DropSender),
        1 => Just(Step::Cancel),
    ]
}

/// What the collector should hold, kept independently of it.
#[derive(Debug, Default)]
struct Model {
    capacity: usize,
    queue: VecDeque<u32>,
    closed: bool,
    cancelled: bool,
    cancel_reported: bool,
    /// Values dropped by the cancellation.
    dropped: usize,
    /// The consumer's iteration returned `None`.
    ended: bool,
}

/// Why the model expects a submission to be refused, if it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    Full,
    Closed,
    Cancelled,
}

impl Model {
    /// The refusal a non-blocking submit gets now, in the documented order.
    fn refusal(&self) -> Option<Refusal> {
        if self.cancelled {
            Some(Refusal::Cancelled)
        } else if self.closed {
            Some(Refusal::Closed)
        } else if self.queue.len() == self.capacity {
            Some(Refusal::Full)
        } else {
            None
        }
    }

    /// The next item of the stream, or `Err(())` if taking it would block.
    fn take(&mut self, senders_alive: usize) -> Result<Option<Result<u32, CollectError>>, ()> {
        if self.ended {
            return Ok(None);
        }
        if self.cancelled {
            if self.cancel_reported {
                self.ended = true;
                return Ok(None);
            }
            self.cancel_reported = true;
            return Ok(Some(Err(CollectError::Cancelled {
                dropped: self.dropped,
            })));
        }
        if let Some(value) = self.queue.pop_front() {
            return Ok(Some(Ok(value)));
        }
        if self.closed || senders_alive == 0 {
            // With no sender alive, the consumer closes the empty collector.
            self.closed = true;
            self.ended = true;
            return Ok(None);
        }
        Err(())
    }
}

fn try_refusal(error: &TrySendError<u32>) -> Refusal {
    match error {
        TrySendError::Full(_) => Refusal::Full,
        TrySendError::Closed(_) => Refusal::Closed,
        TrySendError::Cancelled(_) => Refusal::Cancelled,
        TrySendError::Disconnected(_) => panic!("the consumer is alive: {error:?}"),
    }
}

fn send_refusal(error: &SendError<u32>) -> Refusal {
    match error {
        SendError::Closed(_) => Refusal::Closed,
        SendError::Cancelled(_) => Refusal::Cancelled,
        SendError::Disconnected(_) => panic!("the consumer is alive: {error:?}"),
    }
}

/// Runs `steps` against a collector of `capacity` with `n_producers` senders
/// and checks every result against the model.
fn run_steps(capacity: usize, n_producers: usize, steps: &[Step]) {
    let collector = Collector::<u32>::new(capacity).expect("capacity here is at least 1");
    let mut senders: Vec<Option<CollectorSender<u32>>> =
        (0..n_producers).map(|_| Some(collector.sender())).collect();
    let mut stream = collector.iter();
    let mut model = Model {
        capacity,
        ..Model::default()
    };
    let mut next_value: u32 = 0;
    // Every value accepted, and every value the consumer got.
    let mut accepted: Vec<u32> = Vec::new();
    let mut taken: Vec<u32> = Vec::new();

    for step in steps {
        let alive = senders.iter().flatten().count();
        match *step {
            Step::TrySubmit(producer) => {
                let Some(sender) = &senders[producer % n_producers] else {
                    continue;
                };
                let value = next_value;
                next_value += 1;
                let expected = model.refusal();
                match sender.try_send(value) {
                    Ok(()) => {
                        assert_eq!(expected, None, "try_submit({value}) was accepted");
                        model.queue.push_back(value);
                        accepted.push(value);
                    }
                    Err(error) => {
                        assert_eq!(Some(try_refusal(&error)), expected, "try_submit({value})");
                        assert_eq!(error.into_inner(), value, "the refused value came back");
                    }
                }
            }
            Step::Submit(producer) => {
                let Some(sender) = &senders[producer % n_producers] else {
                    continue;
                };
                let value = next_value;
                next_value += 1;
                match model.refusal() {
                    Some(Refusal::Full) => {
                        // Blocks until the consumer, here, takes the oldest value.
                        let oldest = *model.queue.front().expect("full means not empty");
                        let outcome = thread::scope(|scope| {
                            let producer = scope.spawn(|| sender.send(value));
                            let took = stream.next();
                            assert_eq!(took, Some(Ok(oldest)), "the take that unblocks submit");
                            producer.join().expect("the producer thread does not panic")
                        });
                        assert_eq!(outcome, Ok(()), "a blocked submit({value})");
                        model.queue.pop_front();
                        taken.push(oldest);
                        model.queue.push_back(value);
                        accepted.push(value);
                    }
                    None => {
                        assert_eq!(sender.send(value), Ok(()), "submit({value}) with room");
                        model.queue.push_back(value);
                        accepted.push(value);
                    }
                    Some(expected) => {
                        let error = sender.send(value).expect_err("refused");
                        assert_eq!(send_refusal(&error), expected, "submit({value})");
                        assert_eq!(error.into_inner(), value, "the refused value came back");
                    }
                }
            }
            Step::CloseBySender(producer) => {
                let Some(sender) = &senders[producer % n_producers] else {
                    continue;
                };
                sender.close();
                model.closed = true;
            }
            Step::CloseByConsumer => {
                collector.close();
                model.closed = true;
            }
            Step::DropSender(producer) => {
                drop(senders[producer % n_producers].take());
            }
            Step::Cancel => {
                collector.cancel();
                if !model.cancelled {
                    model.cancelled = true;
                    if model.closed && model.queue.is_empty() {
                        // The stream has ended (closed and drained): nothing to
                        // drop and nothing to report, and it stays ended.
                        model.cancel_reported = true;
                    } else {
                        model.dropped += model.queue.len();
                        model.queue.clear();
                    }
                }
            }
            Step::Take { unblock_by_closing } => match model.take(alive) {
                Ok(expected) => {
                    let took = stream.next();
                    assert_eq!(took, expected, "take");
                    if let Some(Ok(value)) = took {
                        taken.push(value);
                    }
                }
                Err(()) => {
                    // Empty and open with a sender alive: the take blocks until
                    // this thread closes the collector or submits a value.
                    let sender = senders.iter().flatten().next().expect("a sender is alive");
                    let value = next_value;
                    let took = thread::scope(|scope| {
                        let consumer = scope.spawn(|| stream.next());
                        if unblock_by_closing {
                            sender.close();
                        } else {
                            assert_eq!(
                                sender.send(value),
                                Ok(()),
                                "submit into an empty collector"
                            );
                        }
                        consumer.join().expect("the consumer thread does not panic")
                    });
                    if unblock_by_closing {
                        assert_eq!(took, None, "a close ends a waiting take");
                        model.closed = true;
                        model.ended = true;
                    } else {
                        next_value += 1;
                        assert_eq!(took, Some(Ok(value)), "a waiting take gets the value");
                        accepted.push(value);
                        taken.push(value);
                    }
                }
            },
        }
        assert_eq!(collector.len(), model.queue.len(), "len after {step:?}");
        assert!(collector.len() <= capacity, "over capacity after {step:?}");
        let refusing = model.closed || model.cancelled;
        assert_eq!(collector.is_closed(), refusing, "is_closed after {step:?}");
        assert_eq!(
            collector.is_cancelled(),
            model.cancelled,
            "is_cancelled after {step:?}"
        );
        for sender in senders.iter().flatten() {
            assert_eq!(
                sender.is_closed(),
                refusing,
                "sender.is_closed after {step:?}"
            );
        }
    }

    // With every sender gone, the stream ends after what is left.
    senders.clear();
    let mut rest = Vec::new();
    loop {
        let expected = model.take(0).expect("with no sender alive nothing blocks");
        let took = stream.next();
        assert_eq!(took, expected, "draining");
        match took {
            Some(Ok(value)) => rest.push(value),
            Some(Err(_)) => {}
            None => break,
        }
    }
    assert_eq!(stream.next(), None, "the stream stays ended");
    taken.extend(rest);

    // Every accepted value was taken once, in order, or dropped by the cancel.
    assert_eq!(taken.len() + model.dropped, accepted.len(), "accounting");
    let taken_set: BTreeSet<u32> = taken.iter().copied().collect();
    assert_eq!(taken_set.len(), taken.len(), "a value was taken twice");
    assert!(
        taken.windows(2).all(|pair| pair[0] < pair[1]),
        "out of order: {taken:?}"
    );
    assert!(
        taken_set.iter().all(|value| accepted.contains(value)),
        "took an unaccepted value"
    );
}

// ---------------------------------------------------------------------------
// Real threads.
// ---------------------------------------------------------------------------

/// A value that records in a shared log if the collector drops it. The
/// consumer and the producers disarm the values they get back, so the log
/// holds exactly the values dropped inside the collector.
#[derive(Debug)]
struct Tracked {
    id: u64,
    log: Option<Arc<Mutex<Vec<u64>>>>,
}

impl Tracked {
    /// Takes the value out of the test's accounting and returns its id.
    fn disarm(mut self) -> u64 {
        self.log = None;
        self.id
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        if let Some(log) = self.log.take() {
            log.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(self.id);
        }
    }
}

/// One step of a producer's script.
#[derive(Debug, Clone, Copy)]
enum ProducerStep {
    Submit,
    TrySubmit,
    Close,
}

fn producer_step() -> impl Strategy<Value = ProducerStep> {
    prop_oneof![
        10 => Just(ProducerStep::Submit),
        10 => Just(ProducerStep::TrySubmit),
        1 => Just(ProducerStep::Close),
    ]
}

/// What the consumer does.
#[derive(Debug, Clone, Copy)]
enum Plan {
    /// Reads until the stream ends.
    ReadAll,
    /// Reads at most this many values, then drops the collector.
    DropAfter(usize),
    /// Reads at most this many values, then cancels and reads to the end.
    CancelAfter(usize),
}

fn plan() -> impl Strategy<Value = Plan> {
    prop_oneof![
        2 => Just(Plan::ReadAll),
        1 => (0..24usize).prop_map(Plan::DropAfter),
        1 => (0..24usize).prop_map(Plan::CancelAfter),
    ]
}

/// How a producer's submission ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Accepted,
    Full,
    Closed,
    Cancelled,
    Disconnected,
}

/// One producer's record: each submitted id and how it ended, and whether the
/// producer had closed the collector before submitting it.
type ProducerLog = Vec<(u64, Outcome, bool)>;

fn produce(
    producer: u64,
    sender: &CollectorSender<Tracked>,
    script: &[ProducerStep],
    log: &Arc<Mutex<Vec<u64>>>,
) -> ProducerLog {
    let mut record = ProducerLog::new();
    let mut closed_by_me = false;
    let mut seq = 0u64;
    for step in script {
        let id = (producer << 32) | seq;
        let value = || Tracked {
            id,
            log: Some(Arc::clone(log)),
        };
        let outcome = match step {
            ProducerStep::Close => {
                sender.close();
                closed_by_me = true;
                continue;
            }
            ProducerStep::Submit => match sender.send(value()) {
                Ok(()) => Outcome::Accepted,
                Err(error) => {
                    let outcome = match &error {
                        SendError::Closed(_) => Outcome::Closed,
                        SendError::Cancelled(_) => Outcome::Cancelled,
                        SendError::Disconnected(_) => Outcome::Disconnected,
                    };
                    assert_eq!(
                        error.into_inner().disarm(),
                        id,
                        "the refused value came back"
                    );
                    outcome
                }
            },
            ProducerStep::TrySubmit => match sender.try_send(value()) {
                Ok(()) => Outcome::Accepted,
                Err(error) => {
                    let outcome = match &error {
                        TrySendError::Full(_) => Outcome::Full,
                        TrySendError::Closed(_) => Outcome::Closed,
                        TrySendError::Cancelled(_) => Outcome::Cancelled,
                        TrySendError::Disconnected(_) => Outcome::Disconnected,
                    };
                    assert_eq!(
                        error.into_inner().disarm(),
                        id,
                        "the refused value came back"
                    );
                    outcome
                }
            },
        };
        seq += 1;
        record.push((id, outcome, closed_by_me));
    }
    record
}

/// What the consumer saw.
#[derive(Debug, Default)]
struct Consumed {
    yielded: Vec<u64>,
    /// The `dropped` of the cancellation error, if it came.
    reported_dropped: Option<usize>,
    /// The consumer cancelled after the stream had ended (closed and
    /// drained), so no error came.
    cancelled_after_the_end: bool,
}

fn consume(collector: Collector<Tracked>, plan: Plan) -> Consumed {
    let capacity = collector.capacity();
    let mut consumed = Consumed::default();
    let mut stream = collector.iter();
    let limit = match plan {
        Plan::ReadAll => usize::MAX,
        Plan::DropAfter(limit) | Plan::CancelAfter(limit) => limit,
    };
    let mut ended = false;
    while consumed.yielded.len() < limit {
        assert!(collector.len() <= capacity, "over capacity");
        match stream.next() {
            Some(Ok(value)) => consumed.yielded.push(value.disarm()),
            Some(Err(error)) => panic!("nobody cancelled yet: {error}"),
            None => {
                ended = true;
                break;
            }
        }
    }
    if ended {
        assert!(stream.next().is_none(), "the stream stays ended");
    }
    if let Plan::CancelAfter(_) = plan {
        collector.cancel();
        match stream.next() {
            Some(Err(CollectError::Cancelled { dropped })) => {
                assert!(!ended, "a stream that ended reported a cancellation");
                consumed.reported_dropped = Some(dropped);
            }
            // The stream had ended (closed and drained) before the cancel,
            // whether or not this consumer had seen its end yet.
            None => consumed.cancelled_after_the_end = true,
            other => panic!("expected the cancellation or the end, got {other:?}"),
        }
        assert!(
            stream.next().is_none(),
            "the stream ends after the cancellation"
        );
        assert!(collector.is_cancelled());
    }
    // Dropping the collector drops whatever is still buffered.
    drop(collector);
    consumed
}

fn run_threads(capacity: usize, scripts: &[Vec<ProducerStep>], plan: Plan) {
    let drop_log = Arc::new(Mutex::new(Vec::new()));
    let collector = Collector::<Tracked>::new(capacity).expect("capacity here is at least 1");
    let senders: Vec<_> = scripts.iter().map(|_| collector.sender()).collect();
    let (records, consumed) = thread::scope(|scope| {
        let producers: Vec<_> = senders
            .into_iter()
            .zip(scripts)
            .enumerate()
            .map(|(producer, (sender, script))| {
                let log = &drop_log;
                scope.spawn(move || produce(producer as u64, &sender, script, log))
            })
            .collect();
        let consumer = scope.spawn(move || consume(collector, plan));
        let records: Vec<ProducerLog> = producers
            .into_iter()
            .map(|producer| producer.join().expect("a producer thread panicked"))
            .collect();
        (
            records,
            consumer.join().expect("the consumer thread panicked"),
        )
    });
    let dropped: Vec<u64> = drop_log
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();

    let accepted: BTreeSet<u64> = records
        .iter()
        .flatten()
        .filter(|(_, outcome, _)| *outcome == Outcome::Accepted)
        .map(|(id, _, _)| *id)
        .collect();
    let yielded: BTreeSet<u64> = consumed.yielded.iter().copied().collect();
    let dropped_set: BTreeSet<u64> = dropped.iter().copied().collect();
    assert_eq!(
        yielded.len(),
        consumed.yielded.len(),
        "a value was yielded twice"
    );
    assert_eq!(
        dropped_set.len(),
        dropped.len(),
        "a value was dropped twice"
    );
    assert!(
        yielded.is_disjoint(&dropped_set),
        "a value was both yielded and dropped"
    );
    let delivered_or_dropped: BTreeSet<u64> = yielded.union(&dropped_set).copied().collect();
    assert_eq!(
        delivered_or_dropped, accepted,
        "accepted values are not yielded-or-dropped"
    );
    if let Some(reported) = consumed.reported_dropped {
        assert_eq!(reported, dropped.len(), "the cancellation's dropped count");
    }
    if consumed.cancelled_after_the_end {
        assert!(
            dropped.is_empty(),
            "a cancel after the end dropped {dropped:?}"
        );
    }

    // Per producer, values arrive in the order they were submitted.
    for producer in 0..scripts.len() as u64 {
        let seqs: Vec<u64> = consumed
            .yielded
            .iter()
            .filter(|id| *id >> 32 == producer)
            .copied()
            .collect();
        assert!(
            seqs.windows(2).all(|pair| pair[0] < pair[1]),
            "producer {producer} out of order"
        );
    }

    let anyone_closes = scripts
        .iter()
        .flatten()
        .any(|step| matches!(step, ProducerStep::Close));
    for (id, outcome, closed_by_me) in records.iter().flatten() {
        if *closed_by_me {
            assert!(
                !matches!(outcome, Outcome::Accepted | Outcome::Full),
                "{id:#x} was {outcome:?} after its producer closed the collector"
            );
        }
        match plan {
            Plan::ReadAll if !anyone_closes => assert!(
                matches!(outcome, Outcome::Accepted | Outcome::Full),
                "{id:#x} was {outcome:?} with nobody closing, cancelling or leaving"
            ),
            Plan::ReadAll | Plan::DropAfter(_) => {
                assert_ne!(*outcome, Outcome::Cancelled, "{id:#x}: nobody cancelled");
            }
            Plan::CancelAfter(_) => {}
        }
    }
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn every_step_matches_the_model(
        capacity in 1..=5usize,
        n_producers in 1..=3usize,
        steps in prop::collection::vec(step(), 0..60),
    ) {
        run_steps(capacity, n_producers, &steps);
    }
}

proptest! {
    #![proptest_config(config(128))]

    #[test]
    fn threads_lose_and_duplicate_nothing(
        capacity in 1..=4usize,
        scripts in prop::collection::vec(prop::collection::vec(producer_step(), 0..40), 1..=3),
        plan in plan(),
    ) {
        run_threads(capacity, &scripts, plan);
    }
}

/// The consumer's iterator is `FusedIterator`, and the docs say an ended
/// stream stays ended ("both are permanent"). A `cancel` after the stream
/// ended once made the same iterator yield a `Cancelled` error.
#[test]
fn cancel_after_the_stream_ended_yields_nothing_more() {
    let collector = Collector::<u32>::new(2).expect("2 is a valid capacity");
    let sender = collector.sender();
    sender.send(1).expect("the consumer is alive");
    collector.close();
    let mut stream = collector.iter();
    assert_eq!(stream.next(), Some(Ok(1)));
    assert_eq!(stream.next(), None, "closed and drained");
    collector.cancel();
    assert_eq!(stream.next(), None, "an ended FusedIterator stays ended");
}

/// The same end without the consumer having looked: close with nothing
/// buffered, then cancel. Nothing was lost, so no error is reported, and
/// `all` returns every value instead of counting them as dropped.
#[test]
fn cancel_after_close_and_drain_reports_nothing() {
    let collector = Collector::<u32>::new(2).expect("2 is a valid capacity");
    let sender = collector.sender();
    sender.send(1).expect("the consumer is alive");
    sender.close();
    let mut stream = collector.iter();
    assert_eq!(stream.next(), Some(Ok(1)));
    collector.cancel();
    assert_eq!(
        stream.next(),
        None,
        "nothing was dropped, nothing to report"
    );
    assert!(collector.is_cancelled());
    assert_eq!(sender.send(2), Err(SendError::Cancelled(2)));

    let empty = Collector::<u32>::new(2).expect("2 is a valid capacity");
    empty.close();
    empty.cancel();
    assert_eq!(empty.all(), Ok(Vec::new()));
}

/// A cancel while values wait is still reported, closed or not.
#[test]
fn cancel_after_close_with_values_buffered_reports_them() {
    let collector = Collector::<u32>::new(2).expect("2 is a valid capacity");
    let sender = collector.sender();
    sender.send(1).expect("the consumer is alive");
    sender.send(2).expect("room for two");
    collector.close();
    let mut stream = collector.iter();
    assert_eq!(stream.next(), Some(Ok(1)));
    collector.cancel();
    assert_eq!(
        stream.next(),
        Some(Err(CollectError::Cancelled { dropped: 1 }))
    );
    assert_eq!(stream.next(), None);
}
