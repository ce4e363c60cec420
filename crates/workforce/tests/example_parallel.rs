//! The `parallel` example: when its consumer fails, the two other services see
//! the cancel and stop, and the one error comes back with its closure index;
//! when the stream ends cleanly, the consumer's own cancel stops them with no
//! error at all.
#![allow(clippy::unwrap_used)] // Tests may unwrap: a panic is a test failure.

// Shared by every example test: each uses a part of it, and its `pub` items
// are reachable only from this test crate.
#[allow(dead_code, unreachable_pub)]
mod common;

use common::{example, run_ok, stdout_lines};
use rstest::rstest;

/// Checks a service line: `<name> stopped by the cancel after <n> <unit>`.
/// The count depends on timing, so only its shape is checked.
fn assert_stopped_by_cancel(line: &str, name: &str, unit: &str) {
    let rest = line
        .strip_prefix(name)
        .and_then(|rest| {
            rest.trim_start()
                .strip_prefix("stopped by the cancel after ")
        })
        .and_then(|rest| rest.strip_suffix(unit))
        .unwrap_or_else(|| panic!("unexpected {name} line: {line:?}"));
    rest.trim().parse::<u64>().unwrap();
}

#[rstest]
#[case::the_default_poison(&[], 2_000, 1_234)]
#[case::the_first_message(&["--poison", "0"], 2_000, 0)]
#[case::the_last_message(&["--messages", "300", "--poison", "299"], 300, 299)]
fn a_failing_consumer_cancels_the_others_and_its_error_is_closure_2(
    #[case] args: &[&str],
    #[case] messages: u64,
    #[case] poison: u64,
) {
    let mut command = example("parallel");
    command.args(args);
    let lines = stdout_lines(&run_ok(command));
    assert_eq!(lines.len(), 6, "{lines:#?}");
    assert_stopped_by_cancel(&lines[0], "heartbeat", "beats");
    assert_stopped_by_cancel(&lines[1], "cache", "refreshes");
    assert_eq!(
        lines[2..],
        [
            format!("consumer   failed after {poison} of {messages} messages"),
            "errors in closure order: 1".to_owned(),
            format!(
                "  closure 2 failed: message {poison}: malformed payload \"{poison}:12x4\": \
                 invalid digit found in string"
            ),
            format!("summary: heartbeat=ok cache=ok consumer=failed consumed={poison} errors=1"),
        ]
    );
}

#[test]
fn a_clean_stream_ends_the_run_without_errors() {
    let mut command = example("parallel");
    command.args(["--messages", "300", "--poison", "none"]);
    let lines = stdout_lines(&run_ok(command));
    assert_eq!(lines.len(), 5, "{lines:#?}");
    assert_stopped_by_cancel(&lines[0], "heartbeat", "beats");
    assert_stopped_by_cancel(&lines[1], "cache", "refreshes");
    assert_eq!(
        lines[2..],
        [
            "consumer   handled 300 of 300 messages",
            "errors in closure order: 0",
            "summary: heartbeat=ok cache=ok consumer=ok consumed=300 errors=0",
        ]
    );
}
