//! The consumer: a loop on its own thread that reads entries from a
//! [`Source`] into a workforce pool and settles each from its outcome.
//!
//! The loop keeps every entry it handed to the pool in `in_flight` (id to
//! nothing but its presence) until it is settled: acknowledged after success,
//! dead-lettered after its last failure, or redelivered after an earlier one
//! (it stays in `in_flight` meanwhile). Outcomes come back on a channel from
//! the [`Settle`] layer, the outermost layer of every worker, so retries and
//! other middleware inside it have run before an outcome is known. An item
//! the pool drops (a cancel) never reports an outcome: its entry stays
//! pending for redelivery. Reads ask for at most `capacity - in_flight`
//! entries, so this consumer never holds more than `capacity` pending
//! entries and the broker keeps the rest.

use std::collections::HashSet;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{OnceLock, mpsc};
use std::thread::Thread;
use std::time::{Duration, Instant};

use pool_core::{BoxError, Ctx, Identity, Interrupted, Layer, Pool, Report, Stack, Worker};

use crate::error::{BuildError, RunError};
use crate::redis_streams::{RedisSettings, RedisStreams, StreamEntry};
use crate::source::{Delivery, Source};

/// The pool builder a consumer hands to its `pool` closure: the [`Settle`]
/// layer is already on it, outermost.
pub type PoolBuilder<M> = pool_core::Builder<Delivery<M>, Stack<Settle, Identity>>;

/// The loop's end of the outcomes: the channel and the wake-up.
#[derive(Debug)]
struct Inbox {
    outcomes: mpsc::Receiver<Outcome>,
    wake: Arc<Wake>,
}

/// What one item came to, sent by [`Settle`] to the consumer loop.
#[derive(Debug)]
struct Outcome {
    id: String,
    /// `Err` holds the error text (for the dead letter).
    result: Result<(), String>,
}

/// Where workers send outcomes: the channel to the consumer loop, and the
/// wake-up that lets the loop sleep until many outcomes are in instead of
/// waking for each (one wake-up per outcome cost W12 a context switch per
/// entry).
#[derive(Debug, Clone)]
struct Outbox {
    sender: mpsc::Sender<Outcome>,
    wake: Arc<Wake>,
}

/// The loop's side of the wake-up. A worker sends, then counts; the loop
/// announces the count it waits for, then looks at the channel, then parks.
/// Either the worker's count comes after the announcement (it unparks the
/// loop) or its outcome is already in the channel when the loop looks: no
/// wake-up is lost, and `park_timeout` bounds the wait anyway.
#[derive(Debug)]
struct Wake {
    /// Outcomes sent so far.
    sent: AtomicUsize,
    /// The `sent` count the loop waits for (`usize::MAX`: not waiting).
    wanted: AtomicUsize,
    /// The loop's thread, set when `run` starts.
    thread: OnceLock<Thread>,
}

impl Wake {
    fn new() -> Self {
        Self {
            sent: AtomicUsize::new(0),
            wanted: AtomicUsize::new(usize::MAX),
            thread: OnceLock::new(),
        }
    }
}

impl Outbox {
    fn send(&self, outcome: Outcome) -> Result<(), mpsc::SendError<Outcome>> {
        self.sender.send(outcome)?;
        let sent = self.wake.sent.fetch_add(1, Ordering::SeqCst) + 1;
        if sent >= self.wake.wanted.load(Ordering::SeqCst)
            && let Some(thread) = self.wake.thread.get()
        {
            thread.unpark();
        }
        Ok(())
    }
}

/// The outermost layer of a consumer's pool: tells the consumer loop how each
/// item ended (success, or failure with the error's text; a panic is a
/// failure). Public because it is part of [`PoolBuilder`]; made only by the
/// consumer.
#[derive(Debug, Clone)]
pub struct Settle {
    outcomes: Outbox,
}

/// The worker [`Settle`] wraps around the rest of the stack.
#[derive(Debug)]
pub struct Settled<W> {
    inner: W,
    outcomes: Outbox,
}

impl<W> Layer<W> for Settle {
    type Worker = Settled<W>;
    fn layer(&self, inner: W) -> Settled<W> {
        Settled {
            inner,
            outcomes: self.outcomes.clone(),
        }
    }
}

impl<M, W: Worker<Delivery<M>>> Worker<Delivery<M>> for Settled<W> {
    type Error = BoxError;

    fn work(&mut self, ctx: &Ctx, item: Delivery<M>) -> Result<(), BoxError> {
        let id = item.id.clone();
        let outcome = catch_unwind(AssertUnwindSafe(|| self.inner.work(ctx, item)));
        // A send fails only when the consumer loop is gone; the entry then
        // stays pending, which is what an unsettled entry does.
        match outcome {
            Ok(Ok(())) => {
                let _ = self.outcomes.send(Outcome { id, result: Ok(()) });
                Ok(())
            }
            Ok(Err(error)) => {
                let error: BoxError = error.into();
                // An item cut short by a cancel is dropped, not failed: its
                // entry stays pending for redelivery.
                if !Interrupted::is_in(error.as_ref()) {
                    let text = error.to_string();
                    let _ = self.outcomes.send(Outcome {
                        id,
                        result: Err(text),
                    });
                }
                Err(error)
            }
            Err(payload) => {
                let text = format!(
                    "panicked: {}",
                    pool_core::__private::panic_message(&*payload)
                );
                let _ = self.outcomes.send(Outcome {
                    id,
                    result: Err(text),
                });
                resume_unwind(payload)
            }
        }
    }

    fn finish(&mut self, ctx: &Ctx) -> Result<(), BoxError> {
        self.inner.finish(ctx).map_err(Into::into)
    }
}

/// What a consumer does with the items in its pool when it is stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StopPolicy {
    /// Finish every item already handed to the pool, settle them, then stop
    /// (default).
    #[default]
    Drain,
    /// Cancel the pool: items not started are dropped and their entries stay
    /// pending for redelivery.
    Cancel,
}

/// Stops a running consumer from any thread (a Ctrl-C handler, a test).
/// Cloneable; stopping twice is harmless.
#[derive(Debug, Clone)]
pub struct StopHandle {
    state: Arc<AtomicU8>,
    token: pool_core::CancelToken,
    policy: StopPolicy,
    wake: Arc<Wake>,
}

/// `StopHandle::state` values.
const RUNNING: u8 = 0;
const STOPPING: u8 = 1;

impl StopHandle {
    /// Stops reading and ends the run by the consumer's [`StopPolicy`].
    pub fn stop(&self) {
        self.state.store(STOPPING, Ordering::SeqCst);
        if self.policy == StopPolicy::Cancel {
            self.token.cancel();
        }
        self.wake_loop();
    }

    /// Stops reading and cancels the pool, whatever the policy.
    pub fn cancel(&self) {
        self.state.store(STOPPING, Ordering::SeqCst);
        self.token.cancel();
        self.wake_loop();
    }

    /// Wakes the loop if it waits for outcomes, so it sees the stop now.
    fn wake_loop(&self) {
        if let Some(thread) = self.wake.thread.get() {
            thread.unpark();
        }
    }

    /// Whether a stop was asked for.
    pub fn is_stopped(&self) -> bool {
        self.state.load(Ordering::SeqCst) != RUNNING
    }
}

/// What a consumer did. Entries are counted once each however often they
/// were delivered: `read == acked + dead_lettered + left_pending` always
/// ([`ConsumerReport::balances`]).
#[derive(Debug, Default)]
pub struct ConsumerReport {
    /// Entries taken in: new ones read plus ones claimed from other consumers.
    pub read: u64,
    /// Of those, entries claimed from other consumers (idle too long).
    pub claimed: u64,
    /// Entries acknowledged after success.
    pub acked: u64,
    /// Failed deliveries (an entry that failed three times counts three).
    pub failed: u64,
    /// Deliveries of failed entries to this consumer again.
    pub redelivered: u64,
    /// Entries moved to the dead-letter stream after `max_deliveries`.
    pub dead_lettered: u64,
    /// Entries still pending at the end (dropped, or failed and not yet
    /// redelivered): another consumer, or this one's next run, takes them.
    /// Also entries that failed here and were meanwhile claimed by another
    /// consumer (no longer this one's to settle).
    pub left_pending: u64,
    /// Times the connection was lost and made again.
    pub reconnects: u64,
    /// The pool's own report (absent when the run ended with an error).
    pub pool: Option<Report>,
}

impl ConsumerReport {
    /// Whether every entry taken in is accounted for.
    pub fn balances(&self) -> bool {
        self.read == self.acked + self.dead_lettered + self.left_pending
    }
}

/// The settings of the consumer loop, whatever the engine.
#[derive(Debug, Clone)]
pub struct LoopSettings {
    /// Deliveries after which a failing entry goes to the dead letters.
    pub max_deliveries: u64,
    /// How often idle entries of other consumers are looked for.
    pub claim_interval: Duration,
    /// How long one read waits for new entries when nothing is in flight.
    pub read_block: Duration,
    /// How long the loop tries to reconnect before it gives up.
    pub reconnect_for: Duration,
    /// What a stop does with the pool's items.
    pub stop_policy: StopPolicy,
}

impl Default for LoopSettings {
    fn default() -> Self {
        Self {
            max_deliveries: DEFAULT_MAX_DELIVERIES,
            claim_interval: DEFAULT_CLAIM_INTERVAL,
            read_block: DEFAULT_READ_BLOCK,
            reconnect_for: DEFAULT_RECONNECT_FOR,
            stop_policy: StopPolicy::Drain,
        }
    }
}

/// Default `max_deliveries`.
pub const DEFAULT_MAX_DELIVERIES: u64 = 5;
/// Default `min_idle`: an entry pending this long is taken as abandoned.
pub const DEFAULT_MIN_IDLE: Duration = Duration::from_secs(60);
/// Default `claim_interval`.
pub const DEFAULT_CLAIM_INTERVAL: Duration = Duration::from_secs(10);
/// Default `read_block`.
pub const DEFAULT_READ_BLOCK: Duration = Duration::from_millis(100);
/// Default `reconnect_for`.
pub const DEFAULT_RECONNECT_FOR: Duration = Duration::from_secs(60);

/// The closure that builds a consumer's pool.
type MakePool<M> = Box<dyn FnOnce(Settle) -> Result<Pool<Delivery<M>>, pool_core::BuildError>>;

/// Sets up a Redis Streams consumer; see [`Consumer::redis`].
pub struct ConsumerBuilder {
    url: String,
    stream: Option<String>,
    group: Option<String>,
    consumer: Option<String>,
    dead_letter_stream: Option<String>,
    create_group: bool,
    min_idle: Duration,
    settings: LoopSettings,
    pool: Option<MakePool<StreamEntry>>,
}

impl std::fmt::Debug for ConsumerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsumerBuilder")
            .field("url", &self.url)
            .field("stream", &self.stream)
            .field("group", &self.group)
            .field("consumer", &self.consumer)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl ConsumerBuilder {
    /// The stream to read (required).
    pub fn stream(mut self, stream: impl Into<String>) -> Self {
        self.stream = Some(stream.into());
        self
    }
    /// The consumer group (required).
    pub fn group(mut self, group: impl Into<String>) -> Self {
        self.group = Some(group.into());
        self
    }
    /// This consumer's name in the group (required; unique per process).
    pub fn consumer(mut self, consumer: impl Into<String>) -> Self {
        self.consumer = Some(consumer.into());
        self
    }
    /// Creates the group (and the stream, `MKSTREAM`) when it does not exist,
    /// reading from the stream's start. Default: off.
    pub fn create_group(mut self, create: bool) -> Self {
        self.create_group = create;
        self
    }
    /// Where entries go after `max_deliveries` failures. Default: the
    /// stream's name with `:dead` appended.
    pub fn dead_letter_stream(mut self, stream: impl Into<String>) -> Self {
        self.dead_letter_stream = Some(stream.into());
        self
    }
    /// Deliveries after which a failing entry is dead-lettered (at least 1;
    /// default 5).
    pub fn max_deliveries(mut self, max: u64) -> Self {
        self.settings.max_deliveries = max;
        self
    }
    /// How long an entry must have been pending with another consumer before
    /// this one claims it (default 60 s). Longer than the slowest item, or a
    /// slow item is claimed and run twice.
    pub fn min_idle(mut self, idle: Duration) -> Self {
        self.min_idle = idle;
        self
    }
    /// How often to look for idle entries to claim (default 10 s).
    pub fn claim_interval(mut self, interval: Duration) -> Self {
        self.settings.claim_interval = interval;
        self
    }
    /// How long a read waits for new entries when nothing is in flight
    /// (default 100 ms): also how soon an idle consumer sees a stop.
    pub fn read_block(mut self, block: Duration) -> Self {
        self.settings.read_block = block;
        self
    }
    /// How long to keep reconnecting after the connection is lost (default
    /// 60 s); the run then ends with [`RunError::ConnectionLost`].
    pub fn reconnect_for(mut self, duration: Duration) -> Self {
        self.settings.reconnect_for = duration;
        self
    }
    /// What a stop does with the items in the pool (default: drain).
    pub fn stop_policy(mut self, policy: StopPolicy) -> Self {
        self.settings.stop_policy = policy;
        self
    }
    /// Builds the pool (required): any per-item pool (`build`,
    /// `build_stateful`, with `item_key`, layers, an error policy). The
    /// builder comes with the consumer's [`Settle`] layer on it and with
    /// `continue_on_error` set: a failed entry is delivered again, then
    /// dead-lettered, and the consumer goes on (set `stop_on_error` to end
    /// the run at the first failure instead). Its capacity bounds this
    /// consumer's pending entries.
    pub fn pool<F>(mut self, make: F) -> Self
    where
        F: FnOnce(
                PoolBuilder<StreamEntry>,
            ) -> Result<Pool<Delivery<StreamEntry>>, pool_core::BuildError>
            + 'static,
    {
        self.pool = Some(Box::new(move |settle: Settle| {
            make(Pool::builder().continue_on_error().layer(settle))
        }));
        self
    }

    /// Builds a batch pool instead (one of `pool` and `batch_pool` is
    /// required): `configure` sets the pool up (workers, capacity, batch
    /// size, key, error policy; it starts with `continue_on_error`, as for
    /// [`pool`](ConsumerBuilder::pool)) and `work` gets a batch at a time. A batch
    /// settles as a whole, as a batch pool counts it: `Ok` acknowledges every
    /// entry of it, `Err` fails every entry (each is redelivered, then
    /// dead-lettered, on its own).
    pub fn batch_pool<C, F, E>(mut self, configure: C, work: F) -> Self
    where
        C: FnOnce(
                pool_core::Builder<Delivery<StreamEntry>>,
            ) -> pool_core::Builder<Delivery<StreamEntry>>
            + 'static,
        F: Fn(&Ctx, &mut Vec<Delivery<StreamEntry>>) -> Result<(), E> + Send + Sync + 'static,
        E: Into<BoxError> + 'static,
    {
        self.pool = Some(Box::new(move |settle: Settle| {
            configure(Pool::builder().continue_on_error()).build_batch(settled_batch(settle, work))
        }));
        self
    }

    /// Checks every setting, connects (creating the group when asked) and
    /// starts the pool.
    pub fn build(self) -> Result<Consumer<RedisStreams>, BuildError> {
        let stream = required("stream", self.stream)?;
        let group = required("group", self.group)?;
        let consumer = required("consumer", self.consumer)?;
        let dead_letter_stream = self
            .dead_letter_stream
            .unwrap_or_else(|| format!("{stream}:dead"));
        if dead_letter_stream.is_empty() {
            return Err(BuildError::Empty("dead_letter_stream"));
        }
        if dead_letter_stream == stream {
            return Err(BuildError::DeadLetterIsStream(stream));
        }
        check_settings(&self.settings)?;
        if self.min_idle.is_zero() {
            return Err(BuildError::ZeroDuration("min_idle"));
        }
        let make_pool = self.pool.ok_or(BuildError::Missing("pool"))?;
        if let Err(source) = redis::Client::open(self.url.as_str()) {
            return Err(BuildError::Url {
                url: self.url,
                source,
            });
        }
        // The pool first: a bad pool setting is named before any connection.
        let (pool, outcomes) = settled_pool(make_pool)?;
        let url = self.url.clone();
        let source = RedisStreams::connect(RedisSettings {
            url: self.url,
            stream,
            group,
            consumer,
            dead_letter_stream,
            min_idle: self.min_idle,
            create_group: self.create_group,
        })
        .map_err(|source| {
            if source.code().is_some() {
                BuildError::Command {
                    command: "XGROUP CREATE",
                    source,
                }
            } else {
                BuildError::Connect { url, source }
            }
        })?;
        Ok(Consumer::assemble(source, self.settings, pool, outcomes))
    }
}

/// A required name setting, present and not empty.
fn required(name: &'static str, value: Option<String>) -> Result<String, BuildError> {
    match value {
        None => Err(BuildError::Missing(name)),
        Some(value) if value.is_empty() => Err(BuildError::Empty(name)),
        Some(value) => Ok(value),
    }
}

/// The engine-independent settings' checks.
fn check_settings(settings: &LoopSettings) -> Result<(), BuildError> {
    if settings.max_deliveries == 0 {
        return Err(BuildError::ZeroMaxDeliveries);
    }
    for (name, duration) in [
        ("claim_interval", settings.claim_interval),
        ("read_block", settings.read_block),
        ("reconnect_for", settings.reconnect_for),
    ] {
        if duration.is_zero() {
            return Err(BuildError::ZeroDuration(name));
        }
    }
    Ok(())
}

/// The user's pool, built with the [`Settle`] layer outermost, and the
/// receiving end of its outcomes.
fn settled_pool<M: Send + 'static>(
    make_pool: impl FnOnce(Settle) -> Result<Pool<Delivery<M>>, pool_core::BuildError>,
) -> Result<(Pool<Delivery<M>>, Inbox), BuildError> {
    let (sender, outcomes) = mpsc::channel();
    let wake = Arc::new(Wake::new());
    let pool = make_pool(Settle {
        outcomes: Outbox {
            sender,
            wake: Arc::clone(&wake),
        },
    })?;
    Ok((pool, Inbox { outcomes, wake }))
}

/// A batch function that reports the outcome of every entry of its batch
/// (the whole batch's, as a batch pool counts it) to the consumer loop.
fn settled_batch<M, F, E>(
    settle: Settle,
    work: F,
) -> impl Fn(&Ctx, &mut Vec<Delivery<M>>) -> Result<(), BoxError> + Send + Sync
where
    F: Fn(&Ctx, &mut Vec<Delivery<M>>) -> Result<(), E> + Send + Sync,
    E: Into<BoxError> + 'static,
{
    let outcomes = settle.outcomes;
    move |ctx: &Ctx, batch: &mut Vec<Delivery<M>>| {
        let ids: Vec<String> = batch.iter().map(|delivery| delivery.id.clone()).collect();
        let outcome = catch_unwind(AssertUnwindSafe(|| work(ctx, batch)));
        let send = |result: Result<(), String>| {
            for id in &ids {
                let _ = outcomes.send(Outcome {
                    id: id.clone(),
                    result: result.clone(),
                });
            }
        };
        match outcome {
            Ok(Ok(())) => {
                send(Ok(()));
                Ok(())
            }
            Ok(Err(error)) => {
                let error: BoxError = error.into();
                if !Interrupted::is_in(error.as_ref()) {
                    send(Err(error.to_string()));
                }
                Err(error)
            }
            Err(payload) => {
                send(Err(format!(
                    "panicked: {}",
                    pool_core::__private::panic_message(&*payload)
                )));
                resume_unwind(payload)
            }
        }
    }
}

/// A pool fed from a [`Source`], ready to [`run`](Consumer::run).
pub struct Consumer<S: Source> {
    source: S,
    pool: Pool<Delivery<S::Message>>,
    outcomes: Inbox,
    settings: LoopSettings,
    stop: StopHandle,
}

impl<S: Source> std::fmt::Debug for Consumer<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Consumer<RedisStreams> {
    /// Starts setting up a consumer of a Redis stream at `url`
    /// (`redis://127.0.0.1:6379/`).
    pub fn redis(url: impl Into<String>) -> ConsumerBuilder {
        ConsumerBuilder {
            url: url.into(),
            stream: None,
            group: None,
            consumer: None,
            dead_letter_stream: None,
            create_group: false,
            min_idle: DEFAULT_MIN_IDLE,
            settings: LoopSettings::default(),
            pool: None,
        }
    }
}

impl<S: Source> Consumer<S> {
    /// A consumer of any engine's `source`, with its pool made by `make_pool`.
    pub fn start(
        source: S,
        settings: LoopSettings,
        make_pool: impl FnOnce(
            PoolBuilder<S::Message>,
        ) -> Result<Pool<Delivery<S::Message>>, pool_core::BuildError>,
    ) -> Result<Self, BuildError> {
        check_settings(&settings)?;
        let (pool, outcomes) =
            settled_pool(|settle: Settle| make_pool(Pool::builder().layer(settle)))?;
        Ok(Self::assemble(source, settings, pool, outcomes))
    }

    fn assemble(
        source: S,
        settings: LoopSettings,
        pool: Pool<Delivery<S::Message>>,
        outcomes: Inbox,
    ) -> Self {
        let stop = StopHandle {
            state: Arc::new(AtomicU8::new(RUNNING)),
            token: pool.token().clone(),
            policy: settings.stop_policy,
            wake: Arc::clone(&outcomes.wake),
        };
        Self {
            source,
            pool,
            outcomes,
            settings,
            stop,
        }
    }

    /// A handle that stops the run from another thread.
    pub fn stop_handle(&self) -> StopHandle {
        self.stop.clone()
    }

    /// Runs the loop on a thread of its own (named `pool-source`) and
    /// returns its handle; stop it with [`stop_handle`](Self::stop_handle),
    /// taken before.
    pub fn spawn(self) -> std::io::Result<std::thread::JoinHandle<Result<ConsumerReport, RunError>>>
    where
        S: Send + 'static,
    {
        std::thread::Builder::new()
            .name("pool-source".to_owned())
            .spawn(move || self.run())
    }

    /// Runs until stopped: reads, hands entries to the pool, settles them.
    /// Returns what was done; on an error the report is in it.
    pub fn run(self) -> Result<ConsumerReport, RunError> {
        let Consumer {
            source,
            pool,
            outcomes,
            settings,
            stop,
        } = self;
        let capacity = pool.capacity();
        let mut run = Run {
            source,
            settings,
            stop,
            in_flight: HashSet::with_capacity(capacity),
            acks: Vec::new(),
            failures: Vec::new(),
            retries: Vec::new(),
            received: 0,
            released: 0,
            report: ConsumerReport::default(),
        };
        // The loop parks on this thread while it gathers outcomes.
        let _ = outcomes.wake.thread.set(std::thread::current());
        let sender = pool.sender();
        let outcome = run.main_loop(&pool, &sender, &outcomes, capacity);
        drop(sender);
        if outcome.is_err() || run.stop.token.is_cancelled() {
            pool.cancel();
        }
        pool.close();
        let pool_report = pool.join();
        // Every outcome was sent before its item finished, and the layers
        // (with their senders) are gone after the join.
        run.take_outcomes(outcomes.outcomes.try_iter());
        let settled = outcome.and_then(|()| run.settle());
        run.report.left_pending = run.in_flight.len() as u64 + run.released;
        run.report.pool = Some(pool_report);
        match settled {
            Ok(()) => Ok(run.report),
            Err(error) => Err(error.with_report(run.report)),
        }
    }
}

/// How the loop ended early (the report is added by `run`).
enum Stop<E> {
    Broker(E),
    Lost(Duration, E),
}

impl<E: std::error::Error + Send + Sync + 'static> Stop<E> {
    fn with_report(self, report: ConsumerReport) -> RunError {
        match self {
            Stop::Broker(source) => RunError::Broker {
                source: Box::new(source),
                report: Box::new(report),
            },
            Stop::Lost(waited, source) => RunError::ConnectionLost {
                waited,
                source: Box::new(source),
                report: Box::new(report),
            },
        }
    }
}

/// The loop's state.
struct Run<S: Source> {
    source: S,
    settings: LoopSettings,
    stop: StopHandle,
    /// Entries handed to the pool and not yet settled.
    in_flight: HashSet<String>,
    /// Succeeded, not yet acknowledged.
    acks: Vec<String>,
    /// Failed, with the error text, not yet looked at.
    failures: Vec<(String, String)>,
    /// Failed and to be delivered again.
    retries: Vec<String>,
    /// Outcomes taken from the channel so far (compared with `Wake::sent`).
    received: usize,
    /// Entries let go of because the broker no longer had them pending here.
    released: u64,
    report: ConsumerReport,
}

/// First and longest pause between reconnection attempts.
const BACKOFF_FIRST: Duration = Duration::from_millis(20);
const BACKOFF_LONGEST: Duration = Duration::from_secs(1);

impl<S: Source> Run<S> {
    /// Calls `op` on the source, reconnecting with backoff while the
    /// connection is lost (at most `reconnect_for`), then calling it again.
    fn call<R>(
        &mut self,
        mut op: impl FnMut(&mut S) -> Result<R, S::Error>,
    ) -> Result<R, Stop<S::Error>> {
        let mut lost_since: Option<Instant> = None;
        let mut backoff = BACKOFF_FIRST;
        loop {
            let error = match op(&mut self.source) {
                Ok(value) => return Ok(value),
                Err(error) if S::is_connection_error(&error) => error,
                Err(error) => return Err(Stop::Broker(error)),
            };
            if S::is_interrupted(&error) {
                // A signal (Ctrl-C) cut a blocking read short: the connection
                // may hold half a reply, so it is made anew, but nothing was
                // lost and nothing is counted.
                match self.source.reconnect() {
                    Ok(()) => continue,
                    Err(error) if S::is_connection_error(&error) => {}
                    Err(error) => return Err(Stop::Broker(error)),
                }
            }
            let mut last = error;
            let since = *lost_since.get_or_insert_with(Instant::now);
            loop {
                if since.elapsed() >= self.settings.reconnect_for {
                    return Err(Stop::Lost(since.elapsed(), last));
                }
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(BACKOFF_LONGEST);
                match self.source.reconnect() {
                    Ok(()) => {
                        self.report.reconnects += 1;
                        break;
                    }
                    Err(error) if S::is_connection_error(&error) => last = error,
                    Err(error) => return Err(Stop::Broker(error)),
                }
            }
        }
    }

    /// Lets go of an entry that is no longer pending with this consumer: it
    /// counts as left pending (elsewhere) and frees its room.
    fn release(&mut self, id: &str) {
        if self.in_flight.remove(id) {
            self.released += 1;
        }
    }

    /// Waits for at least `wanted` outcomes, at most `read_block` in all
    /// (a stop is seen within that time).
    /// No more are waited for than the pool holds.
    fn gather(&mut self, inbox: &Inbox, wanted: usize) {
        let in_pool = self
            .in_flight
            .len()
            .saturating_sub(self.retries.len() + self.acks.len() + self.failures.len());
        let target = self.received + wanted.min(in_pool).max(1);
        let deadline = Instant::now() + self.settings.read_block;
        inbox.wake.wanted.store(target, Ordering::SeqCst);
        loop {
            self.take_outcomes(inbox.outcomes.try_iter());
            if self.received >= target || self.stop.is_stopped() {
                break;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            std::thread::park_timeout(left);
        }
        inbox.wake.wanted.store(usize::MAX, Ordering::SeqCst);
    }

    fn take_outcomes(&mut self, outcomes: impl Iterator<Item = Outcome>) {
        for outcome in outcomes {
            self.received += 1;
            match outcome.result {
                Ok(()) => self.acks.push(outcome.id),
                Err(text) => {
                    self.report.failed += 1;
                    self.failures.push((outcome.id, text));
                }
            }
        }
    }

    /// Acknowledges the successes in one `XACK` and looks at the failures:
    /// dead letter after `max_deliveries`, else redelivery.
    fn settle(&mut self) -> Result<(), Stop<S::Error>> {
        if !self.acks.is_empty() {
            let acks = std::mem::take(&mut self.acks);
            self.call(|source| source.ack(&acks))?;
            for id in &acks {
                if self.in_flight.remove(id) {
                    self.report.acked += 1;
                }
            }
        }
        for (id, error) in std::mem::take(&mut self.failures) {
            let deliveries = self.call(|source| source.deliveries(&id))?;
            if deliveries == 0 {
                // No longer pending here (claimed away, or a server restarted
                // without its data lost it): not ours to settle any more.
                self.release(&id);
            } else if deliveries >= self.settings.max_deliveries {
                self.call(|source| source.dead_letter(&id, &error, deliveries))?;
                self.report.dead_lettered += 1;
                self.in_flight.remove(&id);
            } else {
                self.retries.push(id);
            }
        }
        Ok(())
    }

    /// Hands `deliveries` to the pool; `new` ones are counted as read.
    fn hand_over(
        &mut self,
        sender: &pool_core::Sender<Delivery<S::Message>>,
        deliveries: Vec<Delivery<S::Message>>,
        new: bool,
    ) {
        for delivery in deliveries {
            if new {
                if !self.in_flight.insert(delivery.id.clone()) {
                    // Claimed back while still ours: it is already in the pool.
                    continue;
                }
                self.report.read += 1;
            }
            // Refused only when the pool is closed or cancelled: the entry
            // stays pending (it is still in `in_flight`).
            let _ = sender.send(delivery);
        }
    }

    fn main_loop(
        &mut self,
        pool: &Pool<Delivery<S::Message>>,
        sender: &pool_core::Sender<Delivery<S::Message>>,
        outcomes: &Inbox,
        capacity: usize,
    ) -> Result<(), Stop<S::Error>> {
        let mut next_claim = Instant::now();
        loop {
            self.take_outcomes(outcomes.outcomes.try_iter());
            self.settle()?;
            if self.stop.is_stopped() || pool.token().is_cancelled() {
                return Ok(());
            }
            if !self.retries.is_empty() {
                let retries = std::mem::take(&mut self.retries);
                let again = self.call(|source| source.redeliver(&retries))?;
                let delivered: HashSet<&str> = again.iter().map(|d| d.id.as_str()).collect();
                for id in &retries {
                    // Gone from the broker: nothing left to settle.
                    if !delivered.contains(id.as_str()) {
                        self.release(id);
                    }
                }
                self.report.redelivered += again.len() as u64;
                self.hand_over(sender, again, false);
            }
            let room = capacity.saturating_sub(self.in_flight.len());
            if room > 0 && Instant::now() >= next_claim {
                next_claim = Instant::now() + self.settings.claim_interval;
                let claimed = self.call(|source| source.claim_idle(room))?;
                let before = self.report.read;
                self.hand_over(sender, claimed, true);
                self.report.claimed += self.report.read - before;
            }
            let room = capacity.saturating_sub(self.in_flight.len());
            // Read when half the room is free (or nothing is in flight): a
            // read, like an ack, is a round trip, so each should carry many
            // entries; the pool still has the other half to work on.
            let low_water = (capacity / 2).max(1);
            let mut fetched = 0;
            if room >= low_water || self.in_flight.is_empty() {
                let wait = if self.in_flight.is_empty() {
                    self.settings.read_block
                } else {
                    Duration::ZERO
                };
                let entries = self.call(|source| source.fetch(room, wait))?;
                fetched = entries.len();
                self.hand_over(sender, entries, true);
            }
            if fetched == 0 && !self.in_flight.is_empty() {
                // Nothing new to read, or too little room: gather outcomes
                // until half the room is free or `read_block` has passed.
                self.gather(outcomes, low_water.saturating_sub(room).max(1));
            }
        }
    }
}
