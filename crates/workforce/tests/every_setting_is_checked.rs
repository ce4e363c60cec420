//! Every setting of every crate refuses its invalid values with a typed error
//! whose message names the setting, and accepts the values at its limits.
//!
//! One table per crate, through the facade's re-exports: the `pool-core`
//! `Builder` (through each of its build methods), the `pool-collect`
//! `DispatcherBuilder`, `Collector` and `MapConfig` (through both maps), the
//! `pool-middleware` constructors and setters, `pool-chunk`'s `Router` and
//! `jump_hash`, and `pool-batch`'s `Batcher`. Each row asserts the exact error
//! variant with its values, and that its `Display` names the setting. A
//! second table per crate builds the values just inside each limit, so an
//! off-by-one in a check fails here too.
//! (`pool-metrics` has no setting to check: `Metrics::new` takes any shard
//! count, 0 being a documented empty set, and returns no error.)
//!
//! Regression tests at the end pin settings that once panicked or named the
//! wrong setting: a thread name with a NUL byte, and a map whose default
//! window, derived from absurd `workers`, was blamed on `window`. Two
//! settings once accepted aborted the process on an allocation of terabytes:
//! `map_ordered` with a window near `MAX_WINDOW` (it reserved its whole
//! reorder buffer up front; `window_at_max_ordered` below would abort if it
//! still did) and a `Pool<u64>` with `batch_size` and `capacity` near
//! `MAX_CAPACITY` (its first submit allocated the whole batch; such batch
//! sizes are now refused above `MAX_BATCH_SIZE`, and the largest accepted
//! one runs below).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Duration;

use rstest::rstest;
use workforce::batch::{BatchSizeError, Batcher};
use workforce::chunk::{ChunkError, MAX_BUCKETS, Router, jump_hash};
use workforce::collect::{
    Collector, CollectorBuildError, DispatchError, Dispatcher, MAX_WINDOW, MapConfig, MapError,
    map_ordered, map_unordered,
};
use workforce::executor::{
    BuildError, Builder, CancelToken, Ctx, MAX_BATCH_SIZE, MAX_CAPACITY, MAX_WORKERS, Pool,
};
use workforce::middleware::{MiddlewareSettingError, RateLimiter, Recovery, Retry, Timeout};

/// The largest `batch_size` a `Vec<u64>` can hold: `isize::MAX` bytes.
const MAX_U64_BATCH: usize = isize::MAX as usize / size_of::<u64>();

/// Asserts that `message` names `setting`.
fn names(message: &str, setting: &str) {
    assert!(
        message.contains(setting),
        "{message:?} does not name {setting}"
    );
}

// ---------------------------------------------------------------------------
// pool-core: Builder
// ---------------------------------------------------------------------------

/// The ways to start a pool; each checks the settings the same way.
#[derive(Debug, Clone, Copy)]
enum BuildWith {
    Shared,
    Stateful,
    Batch,
    BatchStateful,
    WithLayer,
}

fn build(builder: Builder<u64>, with: BuildWith) -> Result<Pool<u64>, BuildError> {
    fn ok<E>() -> Result<(), E> {
        Ok(())
    }
    match with {
        BuildWith::Shared => builder.build(|_ctx: &Ctx, _item: u64| ok::<std::io::Error>()),
        BuildWith::Stateful => {
            builder.build_stateful(|_worker| |_ctx: &Ctx, _item: u64| ok::<std::io::Error>())
        }
        BuildWith::Batch => {
            builder.build_batch(|_ctx: &Ctx, _batch: &mut Vec<u64>| ok::<std::io::Error>())
        }
        BuildWith::BatchStateful => builder.build_batch_stateful(|_worker| {
            |_ctx: &Ctx, _batch: &mut Vec<u64>| ok::<std::io::Error>()
        }),
        BuildWith::WithLayer => builder
            .layer(Recovery::new())
            .build(|_ctx: &Ctx, _item: u64| ok::<std::io::Error>()),
    }
}

#[rstest]
#[case::workers_not_set(Pool::builder(), BuildError::WorkersNotSet, "`workers`")]
#[case::zero_workers(Pool::builder().workers(0), BuildError::ZeroWorkers, "`workers`")]
#[case::workers_above_max(
    Pool::builder().workers(MAX_WORKERS + 1),
    BuildError::TooManyWorkers { workers: MAX_WORKERS + 1, max: MAX_WORKERS },
    "`workers`"
)]
#[case::workers_usize_max(
    Pool::builder().workers(usize::MAX),
    BuildError::TooManyWorkers { workers: usize::MAX, max: MAX_WORKERS },
    "`workers`"
)]
#[case::zero_capacity(Pool::builder().workers(1).capacity(0), BuildError::ZeroCapacity, "`capacity`")]
#[case::capacity_above_max(
    Pool::builder().workers(1).capacity(MAX_CAPACITY + 1),
    BuildError::CapacityTooLarge { capacity: MAX_CAPACITY + 1, max: MAX_CAPACITY },
    "`capacity`"
)]
#[case::capacity_usize_max(
    Pool::builder().workers(1).capacity(usize::MAX),
    BuildError::CapacityTooLarge { capacity: usize::MAX, max: MAX_CAPACITY },
    "`capacity`"
)]
#[case::zero_batch(
    Pool::builder().workers(1).batch_size(0),
    BuildError::BatchSize(BatchSizeError::Zero),
    "`batch_size`"
)]
#[case::batch_above_capacity(
    Pool::builder().workers(1).batch_size(10).capacity(5),
    BuildError::BatchExceedsCapacity { batch_size: 10, capacity: 5 },
    "`batch_size`"
)]
#[case::batch_above_max(
    Pool::builder().workers(1).batch_size(MAX_BATCH_SIZE + 1),
    BuildError::BatchTooLarge { batch_size: MAX_BATCH_SIZE + 1, max: MAX_BATCH_SIZE },
    "`batch_size`"
)]
#[case::batch_above_max_with_room_for_it(
    Pool::builder().workers(1).batch_size(MAX_BATCH_SIZE + 1).capacity(MAX_CAPACITY),
    BuildError::BatchTooLarge { batch_size: MAX_BATCH_SIZE + 1, max: MAX_BATCH_SIZE },
    "`batch_size`"
)]
// The case that aborted: a batch of 2^40 `u64`s (8 TB) on the first submit.
#[case::batch_equal_to_max_capacity(
    Pool::builder().workers(1).batch_size(MAX_CAPACITY).capacity(MAX_CAPACITY),
    BuildError::BatchTooLarge { batch_size: MAX_CAPACITY, max: MAX_BATCH_SIZE },
    "`batch_size`"
)]
// `MAX_BATCH_SIZE` is checked first: it is the tighter bound for any item type
// of less than terabytes.
#[case::batch_above_the_default_capacity(
    Pool::builder().workers(1).batch_size(MAX_CAPACITY + 1),
    BuildError::BatchTooLarge { batch_size: MAX_CAPACITY + 1, max: MAX_BATCH_SIZE },
    "`batch_size`"
)]
#[case::batch_one_past_isize_max_bytes(
    Pool::builder().workers(1).batch_size(MAX_U64_BATCH + 1),
    BuildError::BatchTooLarge { batch_size: MAX_U64_BATCH + 1, max: MAX_BATCH_SIZE },
    "`batch_size`"
)]
#[case::batch_usize_max(
    Pool::builder().workers(1).batch_size(usize::MAX),
    BuildError::BatchTooLarge { batch_size: usize::MAX, max: MAX_BATCH_SIZE },
    "`batch_size`"
)]
#[case::batch_at_max_above_capacity(
    Pool::builder().workers(1).batch_size(MAX_BATCH_SIZE).capacity(MAX_BATCH_SIZE - 1),
    BuildError::BatchExceedsCapacity { batch_size: MAX_BATCH_SIZE, capacity: MAX_BATCH_SIZE - 1 },
    "`batch_size`"
)]
#[case::thread_name_with_nul(
    Pool::builder().workers(1).thread_name("bad\0name"),
    BuildError::ThreadName { name: "bad\0name".to_owned() },
    "`thread_name`"
)]
#[case::thread_name_only_nul(
    Pool::builder().workers(1).thread_name("\0"),
    BuildError::ThreadName { name: "\0".to_owned() },
    "`thread_name`"
)]
#[case::zero_error_limit(Pool::builder().workers(1).error_limit(0), BuildError::ZeroErrorLimit, "`error_limit`")]
#[case::zero_error_limit_continuing(
    Pool::builder().workers(1).continue_on_error().error_limit(0),
    BuildError::ZeroErrorLimit,
    "`error_limit`"
)]
fn pool_builder_refuses(
    #[case] builder: Builder<u64>,
    #[case] expected: BuildError,
    #[case] setting: &str,
    #[values(
        BuildWith::Shared,
        BuildWith::Stateful,
        BuildWith::Batch,
        BuildWith::BatchStateful,
        BuildWith::WithLayer
    )]
    with: BuildWith,
) {
    let error = build(builder, with).expect_err("an invalid setting was accepted");
    assert_eq!(error, expected);
    names(&error.to_string(), setting);
}

#[rstest]
#[case::one_worker(Pool::builder().workers(1))]
#[case::capacity_at_max(Pool::builder().workers(1).capacity(MAX_CAPACITY))]
#[case::batch_equal_to_capacity(Pool::builder().workers(1).batch_size(7).capacity(7))]
#[case::batch_of_one_capacity_of_one(Pool::builder().workers(1).batch_size(1).capacity(1))]
#[case::error_limit_one(Pool::builder().workers(1).continue_on_error().error_limit(1))]
#[case::error_limit_one_stopping(Pool::builder().workers(1).error_limit(1))]
#[case::batch_at_max(Pool::builder().workers(1).batch_size(MAX_BATCH_SIZE))]
#[case::batch_at_max_capacity_at_max(
    Pool::builder().workers(1).batch_size(MAX_BATCH_SIZE).capacity(MAX_CAPACITY)
)]
#[case::batch_at_max_equal_to_capacity(
    Pool::builder().workers(4).batch_size(MAX_BATCH_SIZE).capacity(MAX_BATCH_SIZE)
)]
#[case::empty_thread_name(Pool::builder().workers(1).thread_name(""))]
#[case::unicode_thread_name(Pool::builder().workers(1).thread_name("wörker-🦀"))]
fn pool_builder_accepts_the_limits(#[case] builder: Builder<u64>) {
    let pool = build(builder, BuildWith::Shared).expect("a valid setting was refused");
    let report = pool.wait().expect("an empty run has no errors");
    assert_eq!(report.submitted(), 0);
}

/// The largest batch size runs, through every build method: each submitter
/// allocates one batch of `MAX_BATCH_SIZE` items (8 MiB of `u64`s) when it
/// starts filling it, and nothing when the pool is built.
#[rstest]
fn pool_runs_at_the_largest_batch_size(
    #[values(
        BuildWith::Shared,
        BuildWith::Stateful,
        BuildWith::Batch,
        BuildWith::BatchStateful,
        BuildWith::WithLayer
    )]
    with: BuildWith,
) {
    let builder = Pool::builder()
        .workers(2)
        .batch_size(MAX_BATCH_SIZE)
        .capacity(MAX_CAPACITY);
    let pool = build(builder, with).expect("the largest batch size is valid");
    assert_eq!(pool.batch_size(), MAX_BATCH_SIZE);
    let mut submitter = pool.submitter();
    for n in 0..1_000u64 {
        submitter.submit(n).expect("the pool is open");
    }
    drop(submitter);
    let report = pool.wait().expect("the workers never fail");
    assert_eq!(report.processed(), 1_000);
}

// ---------------------------------------------------------------------------
// pool-collect: DispatcherBuilder, Collector, MapConfig
// ---------------------------------------------------------------------------

type Dispatch = Dispatcher<u8, String>;

#[rstest]
#[case::workers_not_set(None, None, DispatchError::WorkersNotSet, "`workers`")]
#[case::zero_workers(Some(0), None, DispatchError::ZeroWorkers, "`workers`")]
#[case::workers_above_max(
    Some(MAX_WORKERS + 1),
    None,
    DispatchError::TooManyWorkers { workers: MAX_WORKERS + 1, max: MAX_WORKERS },
    "`workers`"
)]
#[case::workers_usize_max(
    Some(usize::MAX),
    Some(1),
    DispatchError::TooManyWorkers { workers: usize::MAX, max: MAX_WORKERS },
    "`workers`"
)]
#[case::zero_queue(Some(1), Some(0), DispatchError::ZeroQueue, "`queue`")]
#[case::queue_above_max(
    Some(1),
    Some(MAX_CAPACITY),
    DispatchError::QueueTooLarge { queue: MAX_CAPACITY, max: MAX_CAPACITY - 1 },
    "`queue`"
)]
#[case::queue_usize_max(
    Some(4),
    Some(usize::MAX),
    DispatchError::QueueTooLarge { queue: usize::MAX, max: MAX_CAPACITY - 4 },
    "`queue`"
)]
fn dispatcher_builder_refuses(
    #[case] workers: Option<usize>,
    #[case] queue: Option<usize>,
    #[case] expected: DispatchError,
    #[case] setting: &str,
) {
    let mut builder = Dispatch::builder();
    if let Some(workers) = workers {
        builder = builder.workers(workers);
    }
    if let Some(queue) = queue {
        builder = builder.queue(queue);
    }
    let error = builder
        .build()
        .expect_err("an invalid setting was accepted");
    assert_eq!(error, expected);
    names(&error.to_string(), setting);
}

#[rstest]
#[case::nul_in_the_middle("bad\0name")]
#[case::only_nul("\0")]
fn dispatcher_builder_refuses_a_thread_name_with_nul(#[case] name: &str) {
    let error = Dispatch::builder()
        .workers(1)
        .thread_name(name)
        .build()
        .expect_err("a thread name with a NUL byte was accepted");
    assert_eq!(
        error,
        DispatchError::ThreadName {
            name: name.to_owned()
        }
    );
    names(&error.to_string(), "`thread_name`");
}

#[rstest]
#[case::one_worker_default_queue(1, None)]
#[case::queue_of_one(2, Some(1))]
#[case::queue_at_max(1, Some(MAX_CAPACITY - 1))]
fn dispatcher_builder_accepts_the_limits(#[case] workers: usize, #[case] queue: Option<usize>) {
    let mut builder = Dispatch::builder().workers(workers);
    if let Some(queue) = queue {
        builder = builder.queue(queue);
    }
    let dispatcher = builder.build().expect("a valid setting was refused");
    assert_eq!(dispatcher.queue(), queue.unwrap_or(workers));
    assert_eq!(dispatcher.wait().jobs(), 0);
}

#[rstest]
#[case::new(Collector::<u8>::new(0))]
#[case::with_token(Collector::<u8>::with_token(0, CancelToken::new()))]
fn collector_refuses_zero_capacity(#[case] built: Result<Collector<u8>, CollectorBuildError>) {
    let error = built.expect_err("capacity 0 was accepted");
    assert_eq!(error, CollectorBuildError::ZeroCapacity);
    names(&error.to_string(), "`capacity`");
}

#[rstest]
#[case::one(1)]
#[case::usize_max(usize::MAX)]
fn collector_accepts_any_capacity_from_one(#[case] capacity: usize) {
    let collector = Collector::<u8>::new(capacity).expect("a valid capacity was refused");
    assert_eq!(collector.capacity(), capacity);
    let with_token = Collector::<u8>::with_token(capacity, CancelToken::new())
        .expect("a valid capacity was refused");
    assert_eq!(with_token.capacity(), capacity);
}

/// The two maps; both check their `MapConfig` the same way.
#[derive(Debug, Clone, Copy)]
enum MapKind {
    Ordered,
    Unordered,
}

/// Starts a map of three items with `config` and returns its results.
fn run_map(kind: MapKind, config: MapConfig) -> Result<Vec<u32>, MapError> {
    let double = |n: u32| n * 2;
    Ok(match kind {
        MapKind::Ordered => map_ordered(0..3u32, config, double)?.collect(),
        MapKind::Unordered => {
            let mut results: Vec<u32> = map_unordered(0..3u32, config, double)?.collect();
            results.sort_unstable();
            results
        }
    })
}

#[rstest]
#[case::zero_workers(MapConfig::default().workers(0), MapError::ZeroWorkers, "`workers`")]
#[case::zero_workers_and_window(
    MapConfig::default().workers(0).window(0),
    MapError::ZeroWorkers,
    "`workers`"
)]
#[case::zero_window(MapConfig::default().workers(1).window(0), MapError::ZeroWindow, "`window`")]
#[case::window_above_max(
    MapConfig::default().workers(1).window(MAX_WINDOW + 1),
    MapError::WindowTooLarge { window: MAX_WINDOW + 1, max: MAX_WINDOW },
    "`window`"
)]
#[case::window_usize_max(
    MapConfig::default().workers(1).window(usize::MAX),
    MapError::WindowTooLarge { window: usize::MAX, max: MAX_WINDOW },
    "`window`"
)]
#[case::workers_above_max(
    MapConfig::default().workers(MAX_WORKERS + 1).window(8),
    MapError::Pool(BuildError::TooManyWorkers { workers: MAX_WORKERS + 1, max: MAX_WORKERS }),
    "`workers`"
)]
#[case::workers_above_max_default_window(
    MapConfig::default().workers(MAX_WORKERS + 1),
    MapError::Pool(BuildError::TooManyWorkers { workers: MAX_WORKERS + 1, max: MAX_WORKERS }),
    "`workers`"
)]
// The default window, four per worker, would be above `MAX_WINDOW` too; the
// error names `workers`, the setting that was given.
#[case::workers_whose_default_window_is_above_max(
    MapConfig::default().workers(MAX_WINDOW / 4 + 1),
    MapError::Pool(BuildError::TooManyWorkers { workers: MAX_WINDOW / 4 + 1, max: MAX_WORKERS }),
    "`workers`"
)]
#[case::workers_usize_max_default_window(
    MapConfig::default().workers(usize::MAX),
    MapError::Pool(BuildError::TooManyWorkers { workers: usize::MAX, max: MAX_WORKERS }),
    "`workers`"
)]
fn map_config_refuses(
    #[case] config: MapConfig,
    #[case] expected: MapError,
    #[case] setting: &str,
    #[values(MapKind::Ordered, MapKind::Unordered)] kind: MapKind,
) {
    let error = run_map(kind, config).expect_err("an invalid setting was accepted");
    assert_eq!(error, expected);
    names(&error.to_string(), setting);
}

#[rstest]
#[case::window_one(MapKind::Ordered, MapConfig::default().workers(1).window(1))]
#[case::window_one_unordered(MapKind::Unordered, MapConfig::default().workers(1).window(1))]
#[case::default_window(MapKind::Ordered, MapConfig::default().workers(2))]
// The ordered map once reserved its whole reorder buffer up front and aborted
// here; it now grows the buffer with the results actually waiting.
#[case::window_at_max_ordered(MapKind::Ordered, MapConfig::default().workers(1).window(MAX_WINDOW))]
#[case::window_at_max_unordered(MapKind::Unordered, MapConfig::default().workers(1).window(MAX_WINDOW))]
fn map_config_accepts_the_limits(#[case] kind: MapKind, #[case] config: MapConfig) {
    let results = run_map(kind, config).expect("a valid setting was refused");
    assert_eq!(results, [0, 2, 4]);
}

// ---------------------------------------------------------------------------
// pool-middleware: Retry, Timeout, RateLimiter
// ---------------------------------------------------------------------------

fn millis(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

fn retry_jitter(jitter: f64) -> Result<(), MiddlewareSettingError> {
    Retry::new(3, millis(1))?.jitter(jitter).map(drop)
}

#[rstest]
#[case::retry_zero_attempts(
    Retry::new(0, millis(10)).map(drop),
    MiddlewareSettingError::ZeroAttempts,
    "max_attempts"
)]
#[case::retry_zero_attempts_zero_delay(
    Retry::new(0, Duration::ZERO).map(drop),
    MiddlewareSettingError::ZeroAttempts,
    "max_attempts"
)]
#[case::jitter_negative(retry_jitter(-0.1), MiddlewareSettingError::Jitter(-0.1), "jitter")]
#[case::jitter_above_one(retry_jitter(1.0 + f64::EPSILON), MiddlewareSettingError::Jitter(1.0 + f64::EPSILON), "jitter")]
#[case::jitter_two(retry_jitter(2.0), MiddlewareSettingError::Jitter(2.0), "jitter")]
#[case::jitter_nan(
    retry_jitter(f64::NAN),
    MiddlewareSettingError::Jitter(f64::NAN),
    "jitter"
)]
#[case::jitter_infinite(
    retry_jitter(f64::INFINITY),
    MiddlewareSettingError::Jitter(f64::INFINITY),
    "jitter"
)]
#[case::jitter_minus_infinite(
    retry_jitter(f64::NEG_INFINITY),
    MiddlewareSettingError::Jitter(f64::NEG_INFINITY),
    "jitter"
)]
#[case::timeout_zero(Timeout::new(Duration::ZERO).map(drop), MiddlewareSettingError::ZeroLimit, "limit")]
#[case::rate_zero(RateLimiter::new(0.0, 1).map(drop), MiddlewareSettingError::Rate(0.0), "rate_per_sec")]
#[case::rate_minus_zero(RateLimiter::new(-0.0, 1).map(drop), MiddlewareSettingError::Rate(-0.0), "rate_per_sec")]
#[case::rate_negative(RateLimiter::new(-5.0, 1).map(drop), MiddlewareSettingError::Rate(-5.0), "rate_per_sec")]
#[case::rate_nan(RateLimiter::new(f64::NAN, 1).map(drop), MiddlewareSettingError::Rate(f64::NAN), "rate_per_sec")]
#[case::rate_infinite(
    RateLimiter::new(f64::INFINITY, 1).map(drop),
    MiddlewareSettingError::Rate(f64::INFINITY),
    "rate_per_sec"
)]
#[case::rate_too_small_for_a_duration(
    RateLimiter::new(f64::MIN_POSITIVE, 1).map(drop),
    MiddlewareSettingError::Rate(f64::MIN_POSITIVE),
    "rate_per_sec"
)]
#[case::burst_zero(RateLimiter::new(10.0, 0).map(drop), MiddlewareSettingError::ZeroBurst, "burst")]
#[case::rate_and_burst_both_zero(
    RateLimiter::new(0.0, 0).map(drop),
    MiddlewareSettingError::Rate(0.0),
    "rate_per_sec"
)]
fn middleware_refuses(
    #[case] outcome: Result<(), MiddlewareSettingError>,
    #[case] expected: MiddlewareSettingError,
    #[case] setting: &str,
) {
    let error = outcome.expect_err("an invalid setting was accepted");
    // `Debug` compares the variant and its value, NaN included (NaN != NaN).
    assert_eq!(format!("{error:?}"), format!("{expected:?}"));
    assert_eq!(error.setting(), setting);
    names(&error.to_string(), &format!("`{setting}`"));
}

#[rstest]
#[case::retry_one_attempt_no_delay(Retry::new(1, Duration::ZERO).map(drop))]
#[case::retry_max_attempts(Retry::new(u32::MAX, Duration::MAX).map(drop))]
#[case::jitter_zero(retry_jitter(0.0))]
#[case::jitter_one(retry_jitter(1.0))]
#[case::timeout_one_nanosecond(Timeout::new(Duration::from_nanos(1)).map(drop))]
#[case::timeout_max(Timeout::new(Duration::MAX).map(drop))]
#[case::rate_one_per_day(RateLimiter::new(1.0 / 86_400.0, 1).map(drop))]
#[case::burst_max(RateLimiter::new(1.0, u32::MAX).map(drop))]
fn middleware_accepts_the_limits(#[case] outcome: Result<(), MiddlewareSettingError>) {
    outcome.expect("a valid setting was refused");
}

// ---------------------------------------------------------------------------
// pool-chunk: Router and jump_hash; pool-batch: Batcher
// ---------------------------------------------------------------------------

#[rstest]
#[case::router_zero(Router::new(0).map(drop), ChunkError::ZeroBuckets)]
#[case::router_above_max(
    Router::new(MAX_BUCKETS + 1).map(drop),
    ChunkError::TooManyBuckets { buckets: u64::from(MAX_BUCKETS) + 1, max: MAX_BUCKETS }
)]
#[case::router_u32_max(
    Router::new(u32::MAX).map(drop),
    ChunkError::TooManyBuckets { buckets: u64::from(u32::MAX), max: MAX_BUCKETS }
)]
#[case::with_buckets_zero(Router::with_buckets(0).map(drop), ChunkError::ZeroBuckets)]
#[case::with_buckets_beyond_u32(
    Router::with_buckets(usize::MAX).map(drop),
    ChunkError::TooManyBuckets { buckets: usize::MAX as u64, max: MAX_BUCKETS }
)]
#[case::jump_hash_zero(jump_hash(7, 0).map(drop), ChunkError::ZeroBuckets)]
#[case::jump_hash_above_max(
    jump_hash(7, MAX_BUCKETS + 1).map(drop),
    ChunkError::TooManyBuckets { buckets: u64::from(MAX_BUCKETS) + 1, max: MAX_BUCKETS }
)]
fn buckets_are_refused(#[case] outcome: Result<(), ChunkError>, #[case] expected: ChunkError) {
    let error = outcome.expect_err("an invalid bucket count was accepted");
    assert_eq!(error, expected);
    names(&error.to_string(), "buckets");
}

#[rstest]
#[case::router_one(Router::new(1).map(drop))]
#[case::router_max(Router::new(MAX_BUCKETS).map(drop))]
#[case::with_buckets_max(Router::with_buckets(MAX_BUCKETS as usize).map(drop))]
#[case::jump_hash_max(jump_hash(7, MAX_BUCKETS).map(drop))]
fn buckets_are_accepted_at_the_limits(#[case] outcome: Result<(), ChunkError>) {
    outcome.expect("a valid bucket count was refused");
}

#[rstest]
#[case::zero(0, BatchSizeError::Zero)]
#[case::one_past_isize_max_bytes(
    MAX_U64_BATCH + 1,
    BatchSizeError::TooLarge { batch_size: MAX_U64_BATCH + 1, max: MAX_U64_BATCH }
)]
#[case::usize_max(
    usize::MAX,
    BatchSizeError::TooLarge { batch_size: usize::MAX, max: MAX_U64_BATCH }
)]
fn batcher_refuses(#[case] batch_size: usize, #[case] expected: BatchSizeError) {
    let error = Batcher::<u64>::new(batch_size).expect_err("an invalid batch_size was accepted");
    assert_eq!(error, expected);
    names(&error.to_string(), "batch_size");
}

#[rstest]
#[case::one(1)]
// `new` allocates nothing, so the largest size is cheap to accept.
#[case::isize_max_bytes(MAX_U64_BATCH)]
fn batcher_accepts_the_limits(#[case] batch_size: usize) {
    let batcher = Batcher::<u64>::new(batch_size).expect("a valid batch_size was refused");
    assert_eq!(batcher.batch_size(), batch_size);
}

// ---------------------------------------------------------------------------
// Regressions: settings that panicked or named the wrong setting.
// ---------------------------------------------------------------------------

/// Runs `build` and turns a panic into a test failure that says so.
fn no_panic<R>(what: &str, build: impl FnOnce() -> R) -> R {
    catch_unwind(AssertUnwindSafe(build))
        .unwrap_or_else(|_| panic!("{what} panicked instead of returning an error"))
}

/// `std::thread::Builder::spawn` panics on a name with a NUL byte; the pool
/// passed the name on unchecked.
#[test]
fn pool_thread_name_with_a_nul_byte_is_refused() {
    let builder = Pool::builder().workers(1).thread_name("bad\0name");
    let outcome = no_panic("Builder::build", || build(builder, BuildWith::Shared).err());
    let error = outcome.expect("a thread name with a NUL byte was accepted");
    names(&error.to_string(), "`thread_name`");
}

/// The dispatcher passed its thread name to its pool unchecked.
#[test]
fn dispatcher_thread_name_with_a_nul_byte_is_refused() {
    let builder = Dispatch::builder().workers(1).thread_name("bad\0name");
    let outcome = no_panic("DispatcherBuilder::build", || builder.build().err());
    let error = outcome.expect("a thread name with a NUL byte was accepted");
    names(&error.to_string(), "`thread_name`");
}

/// With workers above `MAX_WINDOW / 4` and no window set, the map reported
/// `WindowTooLarge`, naming `window`, which was never set.
#[test]
fn map_with_absurd_workers_names_workers() {
    let config = MapConfig::default().workers(MAX_WINDOW / 4 + 1);
    let error = run_map(MapKind::Unordered, config).expect_err("refused");
    names(&error.to_string(), "`workers`");
}
