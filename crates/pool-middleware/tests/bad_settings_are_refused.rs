//! Settings that cannot work are refused when the middleware is made, with an
//! error that names the setting, instead of being replaced by a default; the
//! edge values that do work are accepted.
#![allow(clippy::unwrap_used)] // Tests may unwrap: a panic is a test failure.

use std::time::Duration;

use pool_middleware::{MiddlewareSettingError, RateLimiter, Retry, Timeout};
use rstest::rstest;

#[rstest]
#[case::zero_attempts(
    Retry::new(0, Duration::from_millis(10)).map(drop),
    MiddlewareSettingError::ZeroAttempts,
    "max_attempts"
)]
#[case::negative_jitter(
    Retry::new(3, Duration::ZERO).unwrap().jitter(-0.1).map(drop),
    MiddlewareSettingError::Jitter(-0.1),
    "jitter"
)]
#[case::jitter_above_one(
    Retry::new(3, Duration::ZERO).unwrap().jitter(1.5).map(drop),
    MiddlewareSettingError::Jitter(1.5),
    "jitter"
)]
#[case::zero_timeout(Timeout::new(Duration::ZERO).map(drop), MiddlewareSettingError::ZeroLimit, "limit")]
#[case::zero_rate(RateLimiter::new(0.0, 1).map(drop), MiddlewareSettingError::Rate(0.0), "rate_per_sec")]
#[case::negative_rate(
    RateLimiter::new(-5.0, 1).map(drop),
    MiddlewareSettingError::Rate(-5.0),
    "rate_per_sec"
)]
#[case::infinite_rate(
    RateLimiter::new(f64::INFINITY, 1).map(drop),
    MiddlewareSettingError::Rate(f64::INFINITY),
    "rate_per_sec"
)]
#[case::rate_too_small_for_an_interval(
    RateLimiter::new(1e-300, 1).map(drop),
    MiddlewareSettingError::Rate(1e-300),
    "rate_per_sec"
)]
#[case::zero_burst(RateLimiter::new(10.0, 0).map(drop), MiddlewareSettingError::ZeroBurst, "burst")]
fn a_bad_setting_is_an_error_naming_it(
    #[case] made: Result<(), MiddlewareSettingError>,
    #[case] expected: MiddlewareSettingError,
    #[case] setting: &str,
) {
    let error = made.unwrap_err();
    assert_eq!(error, expected);
    assert_eq!(error.setting(), setting);
    assert!(
        error.to_string().contains(&format!("`{setting}`")),
        "the message names the setting: {error}"
    );
}

#[test]
fn a_nan_rate_or_jitter_is_refused() {
    // NaN is not equal to itself, so these are matched, not compared.
    assert!(matches!(
        RateLimiter::new(f64::NAN, 1),
        Err(MiddlewareSettingError::Rate(rate)) if rate.is_nan()
    ));
    assert!(matches!(
        Retry::new(1, Duration::ZERO).unwrap().jitter(f64::NAN),
        Err(MiddlewareSettingError::Jitter(jitter)) if jitter.is_nan()
    ));
}

#[test]
fn the_edge_values_that_work_are_accepted() {
    assert!(Retry::new(1, Duration::ZERO).is_ok());
    assert!(Retry::new(u32::MAX, Duration::MAX).is_ok());
    for jitter in [0.0, 1.0] {
        assert!(
            Retry::new(2, Duration::from_millis(1))
                .unwrap()
                .jitter(jitter)
                .is_ok()
        );
    }
    assert!(Timeout::new(Duration::from_nanos(1)).is_ok());
    assert!(Timeout::new(Duration::MAX).is_ok());
    assert_eq!(
        RateLimiter::new(0.001, 1).unwrap().interval(),
        Duration::from_secs(1_000)
    );
    // Faster than one call a nanosecond: the interval rounds to zero, no limit.
    assert_eq!(
        RateLimiter::new(1e12, u32::MAX).unwrap().interval(),
        Duration::ZERO
    );
}
