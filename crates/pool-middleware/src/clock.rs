//! Time as a dependency: the system clock for real runs, a manual clock for
//! tests and simulations.

use std::fmt;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use pool_core::CancelToken;

/// Where [`Retry`](crate::Retry), [`Timeout`](crate::Timeout) and
/// [`RateLimiter`](crate::RateLimiter) read the time and sleep.
///
/// The default everywhere is [`SystemClock`]. Tests and simulations pass a
/// [`ManualClock`] (or their own implementation) with `.clock(..)`, so backoff
/// schedules and rates can be asserted exactly without sleeping.
pub trait Clock: Send + Sync {
    /// The current time.
    fn now(&self) -> Instant;

    /// Sleeps for `duration`, or less if `token` is cancelled first. Returns
    /// whether the token was cancelled, in which case the caller stops. A
    /// token that is already cancelled returns `true` at once, also for a zero
    /// `duration`.
    fn sleep(&self, token: &CancelToken, duration: Duration) -> bool;
}

/// The real clock: [`Instant::now`] and a sleep that ends at once when the
/// token is cancelled ([`CancelToken::wait_timeout`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn sleep(&self, token: &CancelToken, duration: Duration) -> bool {
        token.wait_timeout(duration)
    }
}

/// Virtual time for tests and simulations: [`sleep`](Clock::sleep) returns at
/// once after moving the clock forward by its duration, and every sleep asked
/// for is recorded.
///
/// Time starts at the [`Instant`] the clock was created at and moves only
/// through sleeps and [`advance`](ManualClock::advance). Thread-safe; the
/// clock is meant to be shared behind an `Arc`.
///
/// Sleeps do not overlap: each one moves the clock forward by its full
/// duration, even when several threads sleep "at the same time". For one
/// thread the clock is exact; with several, virtual time can only run ahead of
/// what real concurrent sleepers would see, so a rate measured on it is never
/// too high.
///
/// ```
/// use pool_core::CancelToken;
/// use pool_middleware::{Clock, ManualClock};
/// use std::time::Duration;
///
/// let clock = ManualClock::new();
/// let start = clock.now();
/// let token = CancelToken::new();
/// assert!(!clock.sleep(&token, Duration::from_secs(60))); // returns at once
/// assert_eq!(clock.now() - start, Duration::from_secs(60));
///
/// token.cancel();
/// assert!(clock.sleep(&token, Duration::from_secs(5))); // cancelled: time stands still
/// assert_eq!(clock.elapsed(), Duration::from_secs(60));
/// assert_eq!(clock.sleeps(), [Duration::from_secs(60), Duration::from_secs(5)]);
/// ```
pub struct ManualClock {
    start: Instant,
    state: Mutex<ManualState>,
}

struct ManualState {
    now: Instant,
    sleeps: Vec<Duration>,
}

impl ManualState {
    /// Moves the clock forward. A step past what `Instant` can hold (a
    /// sleep of `Duration::MAX`) leaves the clock where it is instead of
    /// panicking; no test or simulation gets there by accident.
    fn advance(&mut self, duration: Duration) {
        if let Some(later) = self.now.checked_add(duration) {
            self.now = later;
        }
    }
}

impl ManualClock {
    /// A clock that starts now and stands still until it is slept on or
    /// advanced.
    pub fn new() -> Self {
        let start = Instant::now();
        ManualClock {
            start,
            state: Mutex::new(ManualState {
                now: start,
                sleeps: Vec::new(),
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, ManualState> {
        // The state is two plain values that no panic can leave half-written.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Moves the clock forward by `duration` without recording a sleep: the
    /// time a simulated piece of work takes.
    pub fn advance(&self, duration: Duration) {
        self.state().advance(duration);
    }

    /// Virtual time passed since the clock was created.
    pub fn elapsed(&self) -> Duration {
        self.state().now - self.start
    }

    /// Every sleep asked for, in order, including those cut short by a
    /// cancelled token (which did not move the clock).
    pub fn sleeps(&self) -> Vec<Duration> {
        self.state().sleeps.clone()
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state();
        f.debug_struct("ManualClock")
            .field("elapsed", &(state.now - self.start))
            .field("sleeps", &state.sleeps.len())
            .finish()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        self.state().now
    }

    fn sleep(&self, token: &CancelToken, duration: Duration) -> bool {
        let mut state = self.state();
        state.sleeps.push(duration);
        if token.is_cancelled() {
            return true;
        }
        state.advance(duration);
        false
    }
}
