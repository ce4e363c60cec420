//! The `fetch_urls` example, run against its own HTTP server on small input:
//! every URL ends fetched or failed, the failures are exactly the paths the
//! server fails on purpose for good (404s, and 500s once the retries run
//! out), the flaky paths (a 503 the first time) are fetched on a retry, and
//! the client's counters agree with the stats table and with the server.
#![allow(clippy::unwrap_used)] // Tests may unwrap: a panic is a test failure.

// The helpers are `pub` for every test crate that includes them.
#[allow(unreachable_pub)]
mod common;

use std::collections::{BTreeMap, BTreeSet};

use rstest::rstest;

/// The server's rule for `/item/{item}` (see the example's docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Planned {
    Found,
    Missing,
    Broken,
    Flaky,
}

fn planned(item: u64) -> Planned {
    if item % 50 == 7 {
        Planned::Missing
    } else if item % 50 == 13 {
        Planned::Broken
    } else if item % 10 == 3 {
        Planned::Flaky
    } else {
        Planned::Found
    }
}

/// The example makes 3 attempts at a URL that keeps failing transiently.
const MAX_ATTEMPTS: u64 = 3;

/// The `key=value` pairs of the line starting with `prefix`.
fn fields(lines: &[String], prefix: &str) -> BTreeMap<String, u64> {
    let line = lines
        .iter()
        .find(|line| line.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starting with {prefix:?} in {lines:#?}"));
    line.split_whitespace()
        .filter_map(|field| field.split_once('='))
        .map(|(key, value)| (key.to_owned(), value.parse().unwrap()))
        .collect()
}

/// The number on the stats table's row `name` (`processed    288`).
fn table_value(lines: &[String], name: &str) -> u64 {
    lines
        .iter()
        .find_map(|line| {
            let mut words = line.split_whitespace();
            (words.next() == Some(name)).then(|| words.next().unwrap().parse().unwrap())
        })
        .unwrap_or_else(|| panic!("no {name:?} row in {lines:#?}"))
}

/// The custom counter `name` from the stats table (`  status_2xx = 288`).
fn counter(lines: &[String], name: &str) -> u64 {
    lines
        .iter()
        .find_map(|line| {
            let (key, value) = line.trim().split_once(" = ")?;
            (key == name).then(|| value.parse().unwrap())
        })
        .unwrap_or_else(|| panic!("no counter {name:?} in {lines:#?}"))
}

#[rstest]
#[case::one_worker(120, 1)]
#[case::many_workers(257, 6)]
fn failures_are_exactly_the_permanent_ones(#[case] n_urls: u64, #[case] n_workers: usize) {
    let mut command = common::example("fetch_urls");
    command.args(["--urls", &n_urls.to_string()]);
    command.args(["--workers", &n_workers.to_string()]);
    // A generous rate: the test checks counts, not pacing.
    command.args(["--rate", "100000"]);
    let lines = common::stdout_lines(&common::run_ok(command));

    let count = |kind: Planned| (0..n_urls).filter(|&item| planned(item) == kind).count() as u64;
    let (missing, broken, flaky) = (
        count(Planned::Missing),
        count(Planned::Broken),
        count(Planned::Flaky),
    );
    assert!(
        missing > 0 && broken > 0 && flaky > 0,
        "the input covers every kind"
    );

    // Every URL ends fetched or failed; the failures are not fatal.
    let summary = fields(&lines, "fetched=");
    assert_eq!(summary["fetched"], n_urls);
    assert_eq!(summary["ok"] + summary["failed"], n_urls);
    assert_eq!(summary["failed"], missing + broken);

    // The failed paths are exactly the missing and the broken ones, and the
    // listed reasons say which were retried.
    let failed: BTreeSet<u64> = lines
        .iter()
        .filter_map(|line| line.strip_prefix("failed /item/"))
        .map(|rest| {
            let (item, reason) = rest.split_once(' ').unwrap();
            let item: u64 = item.parse().unwrap();
            match planned(item) {
                Planned::Missing => assert!(
                    reason.contains("404") && reason.ends_with("not retried"),
                    "{rest}"
                ),
                Planned::Broken => assert!(
                    reason.contains("500")
                        && reason.ends_with(&format!("gave up after {MAX_ATTEMPTS} attempts")),
                    "{rest}"
                ),
                other => panic!("item {item} ({other:?}) should not fail: {rest}"),
            }
            item
        })
        .collect();
    let designed_to_fail: BTreeSet<u64> = (0..n_urls)
        .filter(|&item| matches!(planned(item), Planned::Missing | Planned::Broken))
        .collect();
    assert_eq!(failed, designed_to_fail);

    // The flaky paths were fetched on their second attempt: one retry each,
    // and the broken ones used up their attempts; 404s are not retried.
    assert_eq!(
        summary["requests"],
        n_urls + flaky + (MAX_ATTEMPTS - 1) * broken
    );
    assert_eq!(summary["retries"], flaky + (MAX_ATTEMPTS - 1) * broken);
    assert_eq!(counter(&lines, "status_2xx"), summary["ok"]);
    assert_eq!(counter(&lines, "status_4xx"), missing);
    assert_eq!(counter(&lines, "status_5xx"), flaky + MAX_ATTEMPTS * broken);
    assert_eq!(counter(&lines, "requests"), summary["requests"]);
    assert_eq!(counter(&lines, "bytes_fetched"), summary["bytes"]);

    // The stats table counts the same items.
    assert_eq!(table_value(&lines, "processed"), summary["ok"]);
    assert_eq!(table_value(&lines, "failed"), summary["failed"]);
    assert_eq!(table_value(&lines, "dropped"), 0);
    assert_eq!(table_value(&lines, "workers"), n_workers as u64);

    // The server saw every request the client made and sent every byte the
    // client read.
    let server = fields(&lines, "server ");
    assert_eq!(server["requests"], summary["requests"]);
    assert_eq!(server["bytes"], summary["bytes"]);
    assert!(summary["bytes"] > 0);
}

#[test]
fn an_unknown_flag_is_refused_by_name() {
    let mut command = common::example("fetch_urls");
    command.arg("--url");
    command.arg("5");
    let output = command.output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("unknown flag \"--url\""), "{stderr}");
}
