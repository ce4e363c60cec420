//! `Retry`: runs a failed item again, with exponential backoff and jitter.

use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;
use std::time::Duration;

use pool_core::{BoxError, Ctx, Layer, Worker, WorkerId};

use crate::{Clock, MiddlewareError, MiddlewareSettingError, SystemClock};

/// The jitter [`Retry`] adds unless told otherwise: up to 20% of the delay.
pub const DEFAULT_JITTER: f64 = 0.2;

type RetryIf = dyn Fn(&BoxError) -> bool + Send + Sync;

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
/// - An error that [`retry_if`](Retry::retry_if) refuses is returned at once,
///   unchanged, as [`MiddlewareError::Worker`] (or as the inner middleware's
///   own `MiddlewareError`).
/// - The pool is cancelled during a backoff: the wait ends at once and
///   [`MiddlewareError::RetryCancelled`] says after how many attempts.
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
    /// error). It sees the worker's error boxed; `downcast_ref` finds its
    /// type, and an inner middleware's error is a [`MiddlewareError`].
    pub fn retry_if(mut self, retry: impl Fn(&BoxError) -> bool + Send + Sync + 'static) -> Self {
        self.policy.retry_if = Some(Arc::new(retry));
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
                Err(error) => self.backoff.after_failure(ctx, attempt, error.into())?,
            }
        }
        self.inner
            .work(ctx, item)
            .map_err(|error| self.backoff.give_up(max_attempts, error.into()))
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
        if self.policy.clock.sleep(ctx.token(), delay) {
            return Err(MiddlewareError::RetryCancelled {
                attempts,
                source: error,
            });
        }
        Ok(())
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
