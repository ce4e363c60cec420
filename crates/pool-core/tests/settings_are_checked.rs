//! Invalid settings fail at `build()` with a typed error naming the setting.
#![allow(clippy::unwrap_used)] // Tests may unwrap: a panic is a test failure.

use pool_core::{BuildError, Builder, Ctx, MAX_CAPACITY, MAX_WORKERS, Pool};
use rstest::rstest;

fn noop(builder: Builder<u64>) -> Result<Pool<u64>, BuildError> {
    builder.build(|_ctx: &Ctx, _item: u64| Ok::<(), std::io::Error>(()))
}

#[rstest]
#[case::workers_not_set(Pool::builder(), "`workers` is required")]
#[case::zero_workers(Pool::builder().workers(0), "`workers` must be at least 1")]
#[case::too_many_workers(Pool::builder().workers(MAX_WORKERS + 1), "`workers` must be at most")]
#[case::zero_batch(Pool::builder().workers(1).batch_size(0), "batch_size")]
#[case::absurd_batch(Pool::builder().workers(1).batch_size(usize::MAX), "batch_size")]
#[case::zero_capacity(Pool::builder().workers(1).capacity(0), "`capacity` must be at least 1")]
#[case::huge_capacity(Pool::builder().workers(1).capacity(MAX_CAPACITY + 1), "`capacity` must be at most")]
#[case::batch_over_capacity(Pool::builder().workers(1).batch_size(10).capacity(5), "`batch_size` (10) must not exceed `capacity` (5)")]
#[case::zero_error_limit(Pool::builder().workers(1).error_limit(0), "`error_limit`")]
fn invalid_settings_name_the_setting(#[case] builder: Builder<u64>, #[case] expected: &str) {
    let error = noop(builder).expect_err("invalid settings");
    assert!(error.to_string().contains(expected), "{error}");
}

#[test]
fn errors_are_typed() {
    assert_eq!(
        noop(Pool::builder().workers(0)).unwrap_err(),
        BuildError::ZeroWorkers
    );
    assert!(matches!(
        noop(Pool::builder().workers(1).batch_size(0)).unwrap_err(),
        BuildError::BatchSize(_)
    ));
}

#[test]
fn defaults_are_documented_values() {
    let pool = noop(Pool::builder().workers(3)).expect("valid");
    assert_eq!(pool.workers(), 3);
    assert_eq!(pool.batch_size(), pool_core::DEFAULT_BATCH_SIZE);
    assert_eq!(
        pool.capacity(),
        pool_core::DEFAULT_MIN_CAPACITY.max(4 * pool_core::DEFAULT_BATCH_SIZE * 3)
    );
}

/// The batch-size error says everything in its own message and has no
/// `source`: reporters that print the chain (anyhow's `{:#}`) show it once.
#[test]
fn a_zero_batch_error_is_printed_once_in_a_chain() {
    let error = Pool::<u64>::builder()
        .workers(1)
        .batch_size(0)
        .build(|_ctx: &pool_core::Ctx, _item: u64| Ok::<(), std::convert::Infallible>(()))
        .expect_err("batch 0 is refused");
    assert!(error.to_string().contains("`batch_size`"), "{error}");
    assert!(std::error::Error::source(&error).is_none());
}
