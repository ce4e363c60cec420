//! `Retry`: runs a failed item again, with exponential backoff and jitter.

use std::borrow::Cow;
use std::error::Error;
use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;
use std::time::Duration;

use pool_core::{BoxError, Counter, Ctx, Layer, Worker, WorkerId, find_error};

use crate::{Clock, MiddlewareError, MiddlewareSettingError, SystemClock};

/// The jitter [`Retry`] adds unless told otherwise: up to 20% of the delay.
pub const DEFAULT_JITTER: f64 = 0.2;

/// The name of the per-worker counter [`Retry`] adds each retry to, unless
/// [`counter_name`](Retry::counter_name) says otherwise.
pub const DEFAULT_RETRY_COUNTER: &str = "retries";

type RetryIf = dyn Fn(&BoxError) -> bool + Send + Sync;
type OnRetry = dyn Fn(u32, &BoxError, Duration) + Send + Sync;

/// Runs a failed item again, up to `max_attempts` times in all, waiting longer
/// after each failure.
///
/// # The schedule
///
/// After failed attempt `k + 1` (so `k = 0` after the first) it waits
///
/// ```text
/// d_k = min(max_delay, base_delay · 2^k + e_k),   e_k uniform in [0, base_delay · 2^k · jitter]
/// ```
///
/// so `base·2^k ≤ d_k ≤ base·2^k·(1 + jitter)` before the cap. The jitter
/// bound `base·2^k · jitter` is rounded to the nanosecond like
/// [`Duration::mul_f64`]; `e_k` is a whole number of nanoseconds. There is no
/// wait after the last attempt, so an item that always fails waits
/// `max_attempts - 1` times. The jitter comes from a small PRNG per worker
/// thread, seeded with [`seed`](Retry::seed) (random unless set) XOR the
/// worker's index, so runs with a fixed seed are reproducible and the workers
/// of one pool do not retry in lockstep.
///
/// # Errors
///
/// - The last attempt fails: [`MiddlewareError::RetriesExhausted`], with the
///   number of attempts and the last error as its `source`.
/// - An error that [`retry_if`](Retry::retry_if) or
///   [`retry_on`](Retry::retry_on) refuses is returned at once, unchanged, as
///   [`MiddlewareError::Worker`] (or as the inner middleware's own
///   `MiddlewareError`).
/// - The pool is cancelled during a backoff: the wait ends at once and
///   [`MiddlewareError::RetryCancelled`] says after how many attempts.
///
/// # Which errors, and what you see of them
///
/// Every error is retried unless [`retry_on`](Retry::retry_on) (by type) or
/// [`retry_if`](Retry::retry_if) (by predicate) narrows it down. The
/// predicate, the [`on_retry`](Retry::on_retry) hook and the `source` of
/// `RetriesExhausted` see the same error: the inner worker's own error,
/// boxed (not wrapped in [`MiddlewareError::Worker`]), or an inner built-in's
/// own `MiddlewareError` (a timeout, a caught panic). To ask whether it is or
/// holds an `E`, use [`pool_core::find_error`] (which `retry_on` does): a
/// plain `downcast_ref` misses an error the worker returned as an
/// `anyhow::Error`, and the worker's error under an inner `Timeout`'s
/// `TimedOut` (its `source`).
///
/// # Counting and watching retries
///
/// Each retry (every attempt after the first) adds 1 to the custom counter
/// [`DEFAULT_RETRY_COUNTER`] (`"retries"`; see
/// [`counter_name`](Retry::counter_name)) on the worker's own metrics shard:
/// it shows, summed over workers, in
/// [`Pool::metrics`](pool_core::Pool::metrics) and the report's
/// [`Stats::counters`](pool_core::Stats). The counter is resolved on a
/// worker's first retry; an item that succeeds at once costs nothing. The
/// [`on_retry`](Retry::on_retry) hook sees each retry as it is decided.
///
/// # The item is cloned
///
/// `Retry` needs `T: Clone`: every attempt but the last allowed one gets a
/// clone, and the last allowed one gets the original. The clones are made
/// before each attempt, since whether it will fail is not known yet, so an
/// item that succeeds at once has still been cloned once (unless
/// `max_attempts` is 1). For items that are costly to clone, submit an
/// `Arc<Item>`. The other middleware do not need `Clone`.
///
/// # Deadlines
///
/// `Retry` watches the pool's cancellation, not the call's deadline. Put it
/// outside a [`Timeout`](crate::Timeout) (`.layer(retry).layer(timeout)`) to
/// give each attempt its own limit; inside one, the whole sequence shares the
/// limit and the attempts after it should see `ctx.is_cancelled()` and fail
/// fast.
///
/// ```
/// use pool_core::{Ctx, Pool};
/// use pool_middleware::Retry;
/// use std::sync::atomic::{AtomicU32, Ordering};
/// use std::time::Duration;
///
/// let calls = AtomicU32::new(0);
/// let pool = Pool::builder()
///     .workers(1)
///     .layer(Retry::new(3, Duration::from_millis(1))?.max_delay(Duration::from_millis(5)))
///     .build(move |_ctx: &Ctx, _item: u32| {
///         // Fails the first time, succeeds the second.
///         anyhow::ensure!(calls.fetch_add(1, Ordering::Relaxed) > 0, "flaky");
///         Ok(())
///     })?;
/// pool.submitter().submit(7)?;
/// assert_eq!(pool.wait()?.processed(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
#[must_use = "a middleware does nothing until it is added with `.layer(..)`"]
pub struct Retry {
    policy: Policy,
}

/// The settings, shared by every worker stack (cloned into each: two `Arc`s
/// and a few numbers).
#[derive(Clone)]
struct Policy {
    max_attempts: u32,
    base_delay: Duration,
    max_delay: Option<Duration>,
    jitter: f64,
    retry_if: Option<Arc<RetryIf>>,
    on_retry: Option<Arc<OnRetry>>,
    counter_name: Option<Cow<'static, str>>,
    clock: Arc<dyn Clock>,
    seed: u64,
}

impl Retry {
    /// At most `max_attempts` attempts in all (the first one included), with
    /// `base_delay` as the first backoff, doubling after each failure.
    /// `base_delay` may be zero (retry at once).
    ///
    /// # Errors
    ///
    /// [`MiddlewareSettingError::ZeroAttempts`] if `max_attempts` is 0.
    pub fn new(max_attempts: u32, base_delay: Duration) -> Result<Self, MiddlewareSettingError> {
        if max_attempts == 0 {
            return Err(MiddlewareSettingError::ZeroAttempts);
        }
        Ok(Retry {
            policy: Policy {
                max_attempts,
                base_delay,
                max_delay: None,
                jitter: DEFAULT_JITTER,
                retry_if: None,
                on_retry: None,
                counter_name: Some(Cow::Borrowed(DEFAULT_RETRY_COUNTER)),
                clock: Arc::new(SystemClock),
                seed: RandomState::new().hash_one(max_attempts),
            },
        })
    }

    /// The longest backoff, jitter included (default: none).
    pub fn max_delay(mut self, max_delay: Duration) -> Self {
        self.policy.max_delay = Some(max_delay);
        self
    }

    /// The most random delay added to each backoff, as a fraction of it
    /// (default [`DEFAULT_JITTER`], 0.2). `0.0` makes the schedule exact.
    ///
    /// # Errors
    ///
    /// [`MiddlewareSettingError::Jitter`] unless `jitter` is in `0.0..=1.0`.
    pub fn jitter(mut self, jitter: f64) -> Result<Self, MiddlewareSettingError> {
        if !(0.0..=1.0).contains(&jitter) {
            return Err(MiddlewareSettingError::Jitter(jitter));
        }
        self.policy.jitter = jitter;
        Ok(self)
    }

    /// Retries only the errors `retry` returns `true` for (default: every
    /// error); replaces [`retry_on`](Retry::retry_on).
    ///
    /// `retry` sees the inner worker's error boxed as it is (not wrapped in
    /// [`MiddlewareError::Worker`]), or an inner built-in's own
    /// [`MiddlewareError`] (see "Which errors" above). `downcast_ref` finds a
    /// worker error's type only when the worker returned that type itself;
    /// [`pool_core::find_error`] also finds it inside an `anyhow::Error`,
    /// among its sources, and under an inner built-in's error.
    ///
    /// ```
    /// use pool_core::{BoxError, Ctx, Pool, find_error};
    /// use pool_middleware::{Retry, Timeout};
    /// use std::io;
    /// use std::time::Duration;
    ///
    /// fn transient(error: &BoxError) -> bool {
    ///     find_error::<io::Error>(&**error).is_some_and(|error| error.kind() == io::ErrorKind::TimedOut)
    /// }
    ///
    /// let pool = Pool::builder()
    ///     .workers(1)
    ///     .continue_on_error()
    ///     .layer(Retry::new(3, Duration::ZERO)?.retry_if(transient))
    ///     .layer(Timeout::new(Duration::from_secs(60))?)
    ///     .build(|_ctx: &Ctx, n: u32| -> anyhow::Result<()> {
    ///         let kind = if n == 0 { io::ErrorKind::TimedOut } else { io::ErrorKind::InvalidData };
    ///         Err(io::Error::new(kind, "no answer").into())
    ///     })?;
    /// let mut submitter = pool.submitter();
    /// submitter.submit(0)?; // retried twice, then gives up
    /// submitter.submit(1)?; // not retried
    /// drop(submitter);
    /// let report = pool.join();
    /// assert_eq!(report.stats().counters.get("retries"), 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn retry_if(mut self, retry: impl Fn(&BoxError) -> bool + Send + Sync + 'static) -> Self {
        self.policy.retry_if = Some(Arc::new(retry));
        self
    }

    /// Retries only errors that are or hold an `E`, as
    /// [`pool_core::find_error`] finds it: the worker's own error, inside an
    /// `anyhow::Error`, among its sources, or under an inner built-in's
    /// error. Other errors are returned at once. Replaces
    /// [`retry_if`](Retry::retry_if); for a finer choice (one kind of
    /// `io::Error`), use `retry_if` with `find_error`.
    ///
    /// ```
    /// use pool_core::{Ctx, Pool};
    /// use pool_middleware::Retry;
    /// use std::sync::atomic::{AtomicU32, Ordering};
    /// use std::time::Duration;
    ///
    /// #[derive(Debug, thiserror::Error)]
    /// enum StoreError {
    ///     #[error("the store is busy")]
    ///     Busy,
    ///     #[error("no such key")]
    ///     NotFound,
    /// }
    ///
    /// let calls = AtomicU32::new(0);
    /// let pool = Pool::builder()
    ///     .workers(1)
    ///     .continue_on_error()
    ///     .layer(Retry::new(3, Duration::ZERO)?.retry_on::<StoreError>())
    ///     .build(move |_ctx: &Ctx, n: u32| -> anyhow::Result<()> {
    ///         calls.fetch_add(1, Ordering::Relaxed);
    ///         if n == 0 { Err(StoreError::Busy)? } else { anyhow::bail!("malformed request") }
    ///     })?;
    /// let mut submitter = pool.submitter();
    /// submitter.submit(0)?; // a StoreError inside an anyhow::Error: 3 attempts
    /// submitter.submit(1)?; // something else: 1 attempt
    /// drop(submitter);
    /// let report = pool.join();
    /// assert_eq!((report.failed(), report.stats().counters.get("retries")), (2, 2));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn retry_on<E>(self) -> Self
    where
        E: Error + Send + Sync + 'static,
    {
        crate::error::register();
        self.retry_if(|error| find_error::<E>(&**error).is_some())
    }

    /// Calls `hook` on the worker's thread each time a failed attempt will be
    /// retried, before the wait: with the number of the attempt that failed
    /// (1 for the first), its error (as [`retry_if`](Retry::retry_if) sees
    /// it) and the wait before the next attempt. Not called after the last
    /// allowed attempt, nor for an error that is not retried. A panic in the
    /// hook fails the item like a panic in the worker.
    ///
    /// ```
    /// use pool_core::{Ctx, Pool};
    /// use pool_middleware::Retry;
    /// use std::sync::{Arc, Mutex};
    /// use std::time::Duration;
    ///
    /// let seen = Arc::new(Mutex::new(Vec::new()));
    /// let log = Arc::clone(&seen);
    /// let pool = Pool::builder()
    ///     .workers(1)
    ///     .layer(
    ///         Retry::new(3, Duration::from_micros(10))?
    ///             .jitter(0.0)?
    ///             .on_retry(move |attempt, error, delay| {
    ///                 log.lock().unwrap().push((attempt, error.to_string(), delay));
    ///             }),
    ///     )
    ///     .build(|_ctx: &Ctx, _n: u32| Err::<(), _>(std::io::Error::other("flaky")))?;
    /// pool.submitter().submit(1)?;
    /// assert!(pool.wait().is_err());
    /// let micros = Duration::from_micros;
    /// assert_eq!(
    ///     *seen.lock().unwrap(),
    ///     [(1, "flaky".to_owned(), micros(10)), (2, "flaky".to_owned(), micros(20))]
    /// );
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn on_retry(
        mut self,
        hook: impl Fn(u32, &BoxError, Duration) + Send + Sync + 'static,
    ) -> Self {
        self.policy.on_retry = Some(Arc::new(hook));
        self
    }

    /// The custom counter each retry adds 1 to, on the worker's own metrics
    /// shard (default [`DEFAULT_RETRY_COUNTER`], `"retries"`). Give two
    /// `Retry` layers of one stack different names to count them apart.
    pub fn counter_name(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.policy.counter_name = Some(name.into());
        self
    }

    /// Counts no retries: no counter is made or written.
    pub fn no_counter(mut self) -> Self {
        self.policy.counter_name = None;
        self
    }

    /// The clock the backoff sleeps on (default [`SystemClock`]).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.policy.clock = clock;
        self
    }

    /// Seeds the jitter (default: a random seed per `Retry`). Each worker
    /// thread draws from its own generator, seeded with `seed` XOR its index.
    pub fn seed(mut self, seed: u64) -> Self {
        self.policy.seed = seed;
        self
    }
}

impl fmt::Debug for Retry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let policy = &self.policy;
        f.debug_struct("Retry")
            .field("max_attempts", &policy.max_attempts)
            .field("base_delay", &policy.base_delay)
            .field("max_delay", &policy.max_delay)
            .field("jitter", &policy.jitter)
            .field("retry_if", &policy.retry_if.is_some())
            .field("on_retry", &policy.on_retry.is_some())
            .field("counter_name", &policy.counter_name)
            .finish_non_exhaustive()
    }
}

impl<W> Layer<W> for Retry {
    type Worker = RetryWorker<W>;

    fn layer(&self, inner: W) -> RetryWorker<W> {
        RetryWorker {
            inner,
            backoff: Backoff {
                policy: self.policy.clone(),
                rng: None,
                counter: None,
            },
        }
    }
}

/// The worker [`Retry`] wraps around each worker thread's stack.
pub struct RetryWorker<W> {
    inner: W,
    backoff: Backoff,
}

impl<W> fmt::Debug for RetryWorker<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryWorker").finish_non_exhaustive()
    }
}

impl<T: Clone, W: Worker<T>> Worker<T> for RetryWorker<W> {
    type Error = MiddlewareError;

    #[inline]
    fn work(&mut self, ctx: &Ctx, item: T) -> Result<(), MiddlewareError> {
        let max_attempts = self.backoff.policy.max_attempts;
        for attempt in 1..max_attempts {
            match self.inner.work(ctx, item.clone()) {
                Ok(()) => return Ok(()),
                Err(error) => {
                    let error = MiddlewareError::unwrap_inner(error);
                    self.backoff.after_failure(ctx, attempt, error)?;
                }
            }
        }
        self.inner.work(ctx, item).map_err(|error| {
            self.backoff
                .give_up(max_attempts, MiddlewareError::unwrap_inner(error))
        })
    }

    fn finish(&mut self, ctx: &Ctx) -> Result<(), MiddlewareError> {
        self.inner.finish(ctx).map_err(MiddlewareError::from_inner)
    }
}

/// The error path of a retry, kept out of the generic worker so it is
/// compiled once rather than per item and worker type.
struct Backoff {
    policy: Policy,
    /// Seeded on the first backoff, when the worker's id is known.
    rng: Option<SplitMix64>,
    /// The retry counter on this worker's shard, resolved on the first
    /// retry (the stack is built per worker thread, so it is this worker's).
    counter: Option<Counter>,
}

impl Backoff {
    fn retries(&self, error: &BoxError) -> bool {
        self.policy
            .retry_if
            .as_ref()
            .is_none_or(|retry| retry(error))
    }

    /// After failed attempt number `attempts` (not the last allowed one):
    /// `Ok` to try again after the backoff, or the error to stop with.
    fn after_failure(
        &mut self,
        ctx: &Ctx,
        attempts: u32,
        error: BoxError,
    ) -> Result<(), MiddlewareError> {
        if !self.retries(&error) {
            return Err(MiddlewareError::from_inner(error));
        }
        let delay = self.delay(ctx.worker_id(), attempts - 1);
        if let Some(hook) = &self.policy.on_retry {
            hook(attempts, &error, delay);
        }
        if self.policy.clock.sleep(ctx.token(), delay) {
            return Err(MiddlewareError::RetryCancelled {
                attempts,
                source: error,
            });
        }
        self.count_retry(ctx);
        Ok(())
    }

    /// Adds the retry about to be made to this worker's counter.
    fn count_retry(&mut self, ctx: &Ctx) {
        if let Some(name) = &self.policy.counter_name {
            self.counter
                .get_or_insert_with(|| ctx.metrics().counter(name.clone()))
                .inc();
        }
    }

    /// The error after the last allowed attempt failed.
    fn give_up(&self, attempts: u32, error: BoxError) -> MiddlewareError {
        if self.retries(&error) {
            MiddlewareError::RetriesExhausted {
                attempts,
                source: error,
            }
        } else {
            MiddlewareError::from_inner(error)
        }
    }

    /// The wait after failed attempt `retry + 1`.
    fn delay(&mut self, worker: WorkerId, retry: u32) -> Duration {
        let policy = &self.policy;
        let nominal = doubled(policy.base_delay, retry);
        let delay = if policy.jitter > 0.0 {
            let rng = self
                .rng
                .get_or_insert_with(|| SplitMix64(policy.seed ^ worker.index() as u64));
            nominal.saturating_add(jitter(nominal, policy.jitter, rng.next_u64()))
        } else {
            nominal
        };
        match policy.max_delay {
            Some(cap) => delay.min(cap),
            None => delay,
        }
    }
}

/// `base · 2^times`, saturating at `Duration::MAX`.
fn doubled(base: Duration, times: u32) -> Duration {
    let mut delay = base;
    for _ in 0..times {
        if delay.is_zero() || delay == Duration::MAX {
            break;
        }
        delay = delay.saturating_mul(2);
    }
    delay
}

/// A whole number of nanoseconds uniform in `[0, nominal · fraction]`, picked
/// by `random` (uniform over `u64`).
fn jitter(nominal: Duration, fraction: f64, random: u64) -> Duration {
    // The bound the docs promise, computed as `Duration::mul_f64` does it but
    // without its panic on overflow.
    let bound =
        Duration::try_from_secs_f64(nominal.as_secs_f64() * fraction).unwrap_or(Duration::MAX);
    match u64::try_from(bound.as_nanos()) {
        // `random / 2^64` scaled to `0..=bound`: never above it, exactly.
        Ok(bound_nanos) => {
            let nanos = (u128::from(random) * (u128::from(bound_nanos) + 1)) >> 64;
            Duration::from_nanos(u64::try_from(nanos).expect("at most bound_nanos, a u64"))
        }
        // A bound past 584 years: a backoff this long has no use for
        // nanosecond jitter.
        Err(_) => bound,
    }
}

/// SplitMix64 (Steele, Lea and Flood): a tiny, well-mixed PRNG. Jitter needs
/// spread, not secrecy, and a dependency for it would be out of proportion.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubling_saturates_instead_of_overflowing() {
        let second = Duration::from_secs(1);
        assert_eq!(doubled(second, 0), second);
        assert_eq!(doubled(second, 3), Duration::from_secs(8));
        assert_eq!(doubled(second, 200), Duration::MAX);
        assert_eq!(doubled(Duration::ZERO, 200), Duration::ZERO);
        assert_eq!(
            doubled(Duration::from_nanos(1), 10),
            Duration::from_nanos(1024)
        );
    }

    #[test]
    fn jitter_reaches_both_ends_of_its_bound_and_never_passes_it() {
        let nominal = Duration::from_millis(100);
        let bound = nominal.mul_f64(0.2);
        assert_eq!(jitter(nominal, 0.2, 0), Duration::ZERO);
        assert_eq!(jitter(nominal, 0.2, u64::MAX), bound);
        let mut rng = SplitMix64(7);
        for _ in 0..10_000 {
            assert!(jitter(nominal, 0.2, rng.next_u64()) <= bound);
        }
        assert_eq!(jitter(Duration::MAX, 1.0, u64::MAX), Duration::MAX);
    }

    #[test]
    fn splitmix_matches_its_reference_output() {
        // The first outputs for seed 1234567 from the reference implementation
        // (Vigna's splitmix64.c).
        let mut rng = SplitMix64(1_234_567);
        assert_eq!(rng.next_u64(), 6_457_827_717_110_365_317);
        assert_eq!(rng.next_u64(), 3_203_168_211_198_807_973);
    }
}
