//! The `graceful_shutdown` example: SIGINT cancels its pool mid-run, and it
//! still exits with status 0 and a balanced report (`submitted == processed +
//! failed + dropped`); without a signal it processes every item.
#![allow(clippy::unwrap_used)] // Tests may unwrap: a panic is a test failure.

// Shared by every example test: each uses a part of it, and its `pub` items
// are reachable only from this test crate.
#[allow(dead_code, unreachable_pub)]
mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};

use common::{example, run_ok, stdout_lines};

/// The `key=value` fields of the `summary:` line.
fn summary(lines: &[String]) -> HashMap<String, String> {
    let line = lines
        .iter()
        .find_map(|line| line.strip_prefix("summary: "))
        .unwrap_or_else(|| panic!("no summary line in {lines:#?}"));
    line.split_whitespace()
        .map(|field| {
            let (key, value) = field.split_once('=').unwrap();
            (key.to_owned(), value.to_owned())
        })
        .collect()
}

fn count(summary: &HashMap<String, String>, key: &str) -> u64 {
    summary[key].parse().unwrap()
}

#[test]
fn sigint_cancels_the_run_and_it_exits_cleanly_with_a_balanced_report() {
    // Far more items than could run before the signal: about half an hour of
    // work at 20 us an item on two workers.
    const ITEMS: u64 = 100_000_000;
    let mut child = example("graceful_shutdown")
        .args(["--items", &ITEMS.to_string(), "--workers", "2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());

    // Synchronise on the example's own word that it is processing.
    let mut first_line = String::new();
    stdout.read_line(&mut first_line).unwrap();
    let pid = first_line
        .trim_end()
        .strip_prefix("ready pid=")
        .unwrap_or_else(|| panic!("expected `ready pid=`, got {first_line:?}"));
    assert_eq!(pid, child.id().to_string());

    let killed = Command::new("kill").args(["-INT", pid]).status().unwrap();
    assert!(killed.success());

    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "ended with {}; stderr:\n{stderr}",
        output.status
    );
    assert!(stderr.contains("Ctrl-C, cancelling"), "stderr:\n{stderr}");

    let lines: Vec<String> = rest.lines().map(str::to_owned).collect();
    let summary = summary(&lines);
    let [items, submitted, processed, failed, dropped, not_submitted] = [
        "items",
        "submitted",
        "processed",
        "failed",
        "dropped",
        "not_submitted",
    ]
    .map(|key| count(&summary, key));
    assert_eq!(summary["cancelled"], "true");
    assert_eq!(items, ITEMS);
    assert_eq!(submitted, processed + failed + dropped, "{summary:?}");
    assert_eq!(submitted + not_submitted, ITEMS);
    // The cancel took effect: the run ended without doing everything.
    assert!(dropped > 0 || processed < ITEMS, "{summary:?}");
    assert!(processed + failed < ITEMS, "{summary:?}");
    assert!(not_submitted > 0, "{summary:?}");
    assert!(
        lines
            .iter()
            .any(|line| line.starts_with("report: ") && line.contains("cancelled")),
        "{lines:#?}"
    );
}

#[test]
fn without_a_signal_every_item_is_processed_or_failed() {
    let mut command = example("graceful_shutdown");
    command.args(["--items", "2500", "--work-us", "1"]);
    let lines = stdout_lines(&run_ok(command));
    assert!(lines[0].starts_with("ready pid="), "{lines:#?}");
    let summary = summary(&lines);
    assert_eq!(summary["cancelled"], "false");
    // Items 999 and 1999 are the corrupt records.
    let counts = [
        "items",
        "submitted",
        "processed",
        "failed",
        "dropped",
        "not_submitted",
    ]
    .map(|key| count(&summary, key));
    assert_eq!(counts, [2_500, 2_500, 2_498, 2, 0, 0]);
    assert!(
        lines
            .iter()
            .any(|line| line.starts_with("first error: ") && line.contains(": corrupt record")),
        "{lines:#?}"
    );
}
