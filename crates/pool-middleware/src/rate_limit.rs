//! `RateLimiter`: one token bucket for all the workers of a pool.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use pool_core::{Ctx, Layer, Worker};

use crate::{Clock, MiddlewareError, MiddlewareSettingError, SystemClock};

/// Lets at most `rate_per_sec` calls a second through, with bursts of up to
/// `burst` calls, across all the workers of a pool together.
///
/// # The bucket
///
/// A token bucket that holds up to `burst` tokens and gains one every
/// `1 / rate_per_sec` seconds (the *interval*, rounded to the nanosecond); a
/// call takes one token, waiting for it if the bucket is empty. The bucket
/// starts full. So from any moment, over any span `s` the calls let through
/// number at most `burst + s · rate_per_sec` (rounded down); over one second,
/// at most `rate + burst`.
///
/// Waiting callers queue in arrival order: each takes the next free slot when
/// it arrives and sleeps until that slot (the generic cell rate algorithm, an
/// exact form of the token bucket). A wait that the pool's cancellation cuts
/// short fails the item with [`MiddlewareError::Cancelled`] before the worker
/// sees it; its slot is not given back, so a cancellation never lets the rate
/// run over.
///
/// # Shared on purpose
///
/// One bucket serves every worker thread's stack: that is what makes the rate
/// the pool's, not each thread's. Clones of a `RateLimiter` share the bucket
/// too, so one limiter added to two pools bounds both together; make a second
/// limiter for a second budget. The bucket sits behind a mutex held for a few
/// arithmetic operations per call (never while sleeping).
///
/// ```
/// use pool_core::{Ctx, Pool};
/// use pool_middleware::RateLimiter;
///
/// let pool = Pool::builder()
///     .workers(4)
///     .layer(RateLimiter::new(1_000.0, 10)?) // at most 1,000 calls a second, bursts of 10
///     .build(|_ctx: &Ctx, _request: u32| Ok::<(), std::io::Error>(()))?;
/// let mut submitter = pool.submitter();
/// for request in 0..20 { submitter.submit(request)?; }
/// drop(submitter);
/// assert_eq!(pool.wait()?.processed(), 20);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
#[must_use = "a middleware does nothing until it is added with `.layer(..)`"]
pub struct RateLimiter {
    bucket: Arc<Bucket>,
}

impl RateLimiter {
    /// At most `rate_per_sec` calls a second, bursts of up to `burst`.
    ///
    /// # Errors
    ///
    /// - [`MiddlewareSettingError::Rate`] if `rate_per_sec` is not a finite
    ///   number above zero, or so small that the interval does not fit in a
    ///   `Duration`.
    /// - [`MiddlewareSettingError::ZeroBurst`] if `burst` is 0.
    pub fn new(rate_per_sec: f64, burst: u32) -> Result<Self, MiddlewareSettingError> {
        if !(rate_per_sec.is_finite() && rate_per_sec > 0.0) {
            return Err(MiddlewareSettingError::Rate(rate_per_sec));
        }
        if burst == 0 {
            return Err(MiddlewareSettingError::ZeroBurst);
        }
        let interval = Duration::try_from_secs_f64(rate_per_sec.recip())
            .map_err(|_| MiddlewareSettingError::Rate(rate_per_sec))?;
        Ok(RateLimiter {
            bucket: Arc::new(Bucket::new(
                rate_per_sec,
                burst,
                interval,
                Arc::new(SystemClock),
            )),
        })
    }

    /// The clock the bucket reads and sleeps on (default [`SystemClock`]).
    /// It starts a new, full bucket: set the clock before cloning the limiter,
    /// or the clones keep the old bucket.
    pub fn clock(self, clock: Arc<dyn Clock>) -> Self {
        let bucket = &self.bucket;
        RateLimiter {
            bucket: Arc::new(Bucket::new(
                bucket.rate_per_sec,
                bucket.burst,
                bucket.interval,
                clock,
            )),
        }
    }

    /// The time between two tokens: `1 / rate_per_sec`, rounded to the
    /// nanosecond.
    pub fn interval(&self) -> Duration {
        self.bucket.interval
    }
}

impl fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimiter")
            .field("rate_per_sec", &self.bucket.rate_per_sec)
            .field("burst", &self.bucket.burst)
            .finish_non_exhaustive()
    }
}

impl<W> Layer<W> for RateLimiter {
    type Worker = RateLimiterWorker<W>;

    fn layer(&self, inner: W) -> RateLimiterWorker<W> {
        RateLimiterWorker {
            inner,
            bucket: Arc::clone(&self.bucket),
        }
    }
}

/// The worker [`RateLimiter`] wraps around each worker thread's stack.
pub struct RateLimiterWorker<W> {
    inner: W,
    bucket: Arc<Bucket>,
}

impl<W> fmt::Debug for RateLimiterWorker<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimiterWorker").finish_non_exhaustive()
    }
}

impl<T, W: Worker<T>> Worker<T> for RateLimiterWorker<W> {
    type Error = MiddlewareError;

    #[inline]
    fn work(&mut self, ctx: &Ctx, item: T) -> Result<(), MiddlewareError> {
        self.bucket.acquire(ctx)?;
        self.inner
            .work(ctx, item)
            .map_err(MiddlewareError::from_inner)
    }

    fn finish(&mut self, ctx: &Ctx) -> Result<(), MiddlewareError> {
        self.inner.finish(ctx).map_err(MiddlewareError::from_inner)
    }
}

/// The shared token bucket, kept as a theoretical arrival time (GCRA): the
/// bucket is full when `next_free <= now`, and each call moves `next_free` on
/// by one interval. Whole nanoseconds throughout, so a schedule is exact.
struct Bucket {
    rate_per_sec: f64,
    burst: u32,
    interval: Duration,
    /// How far `next_free` may run ahead of now before a call must wait:
    /// `burst - 1` intervals.
    tolerance: Duration,
    clock: Arc<dyn Clock>,
    state: Mutex<BucketState>,
}

struct BucketState {
    /// Time is measured from the first call.
    origin: Option<Instant>,
    /// The slot the next call takes, since `origin`.
    next_free: Duration,
}

impl Bucket {
    fn new(rate_per_sec: f64, burst: u32, interval: Duration, clock: Arc<dyn Clock>) -> Self {
        Bucket {
            rate_per_sec,
            burst,
            interval,
            tolerance: interval.saturating_mul(burst - 1),
            clock,
            state: Mutex::new(BucketState {
                origin: None,
                next_free: Duration::ZERO,
            }),
        }
    }

    /// Takes a token, sleeping until it is due; `Err` if the pool was
    /// cancelled meanwhile.
    fn acquire(&self, ctx: &Ctx) -> Result<(), MiddlewareError> {
        let wait = self.reserve();
        if !wait.is_zero() && self.clock.sleep(ctx.token(), wait) {
            // Seen by the pool as interrupted (see `MiddlewareError::wrapped`).
            crate::error::register();
            return Err(MiddlewareError::Cancelled);
        }
        Ok(())
    }

    /// Reserves the next slot and returns how long until it is due.
    fn reserve(&self) -> Duration {
        let now = self.clock.now();
        // The state is two plain values updated together; no panic can
        // happen between the writes.
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let origin = *state.origin.get_or_insert(now);
        let now = now.saturating_duration_since(origin);
        // An idle bucket refills: a slot in the past is taken at `now`.
        let slot = state.next_free.max(now);
        state.next_free = slot.saturating_add(self.interval);
        // The call may go once fewer than `burst` slots are booked ahead of it.
        slot.saturating_sub(self.tolerance).saturating_sub(now)
    }
}
