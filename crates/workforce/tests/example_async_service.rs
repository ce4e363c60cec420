//! The `async_service` example, run on small input: a real axum server on
//! 127.0.0.1, a real client over loopback, every request answered 200 with
//! the right hash (every 16th checked by the client), and the pool's report
//! agreeing with the client: one call per request, processed, none failed or
//! dropped. A capacity far below the client's concurrency makes handlers
//! wait for room, which they must do without blocking the runtime.
#![cfg(feature = "async")]
#![allow(clippy::unwrap_used)] // Tests may unwrap: a panic is a test failure.

// The helpers are `pub` for every test crate that includes them.
#[allow(unreachable_pub)]
mod common;

use std::collections::BTreeMap;

/// The `key=value` pairs of the example's one line.
fn fields(line: &str) -> BTreeMap<String, u64> {
    line.split_whitespace()
        .filter_map(|field| field.split_once('='))
        .map(|(key, value)| (key.to_owned(), value.parse().unwrap()))
        .collect()
}

#[test]
fn every_request_is_one_call_answered_with_the_right_hash() {
    let mut command = common::example("async_service");
    command.args([
        "--requests",
        "600",
        "--concurrency",
        "12",
        "--workers",
        "2",
        "--capacity",
        "3",
    ]);
    let output = common::run_ok(command);
    let lines = common::stdout_lines(&output);
    let line = lines
        .iter()
        .find(|line| line.starts_with("requests="))
        .unwrap_or_else(|| panic!("no summary line in {lines:#?}"));
    let fields = fields(line);
    assert_eq!(fields["requests"], 600);
    assert_eq!(fields["ok"], 600, "{line}");
    assert_eq!(fields["failed"], 0, "{line}");
    // 0, 16, ..., 592: every 16th request's hash was compared.
    assert_eq!(fields["checked"], 38, "{line}");
    assert_eq!(fields["processed"], 600, "{line}");
    assert_eq!(fields["pool_failed"], 0, "{line}");
    assert_eq!(fields["dropped"], 0, "{line}");
    assert!(
        fields["threads"] >= 12,
        "the client's threads are counted: {line}"
    );
}
