//! bigopool's bad input (0 workers, 0 queue) and other impossible settings are
//! typed errors that name the setting, returned before any thread starts.

#![allow(clippy::unwrap_used)]

use pool_collect::{DispatchError, Dispatcher};
use pool_core::{MAX_CAPACITY, MAX_WORKERS};
use rstest::rstest;

type Builder = pool_collect::DispatcherBuilder<u32, String>;

#[rstest]
#[case::workers_never_set(|b: Builder| b.queue(4), DispatchError::WorkersNotSet, "`workers`")]
#[case::zero_workers(|b: Builder| b.workers(0).queue(4), DispatchError::ZeroWorkers, "`workers`")]
#[case::zero_queue(|b: Builder| b.workers(2).queue(0), DispatchError::ZeroQueue, "`queue`")]
#[case::too_many_workers(
    |b: Builder| b.workers(MAX_WORKERS + 1),
    DispatchError::TooManyWorkers { workers: MAX_WORKERS + 1, max: MAX_WORKERS },
    "`workers`"
)]
#[case::queue_too_large(
    |b: Builder| b.workers(2).queue(MAX_CAPACITY),
    DispatchError::QueueTooLarge { queue: MAX_CAPACITY, max: MAX_CAPACITY - 2 },
    "`queue`"
)]
fn bad_settings_are_typed_errors_naming_the_setting(
    #[case] configure: fn(Builder) -> Builder,
    #[case] expected: DispatchError,
    #[case] setting: &str,
) {
    let error = configure(Dispatcher::builder()).build().unwrap_err();
    assert_eq!(error, expected);
    assert!(error.to_string().contains(setting), "{error}");
}

#[test]
fn good_settings_are_kept_and_the_queue_defaults_to_the_worker_count() {
    let dispatcher = Dispatcher::<u32, String>::builder()
        .workers(3)
        .build()
        .unwrap();
    assert_eq!((dispatcher.workers(), dispatcher.queue()), (3, 3));
    assert!(!dispatcher.is_ordered());
    let ordered = Dispatcher::<u32, String>::builder()
        .workers(1)
        .queue(MAX_CAPACITY - 1)
        .ordered(true)
        .build()
        .unwrap();
    assert_eq!(ordered.queue(), MAX_CAPACITY - 1);
    assert!(ordered.is_ordered());
    assert_eq!(ordered.wait().jobs(), 0);
}
