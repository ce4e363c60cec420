//! The `sqlite_ingest` example, run on small input with one and several
//! workers, batched and unbatched: every requested row lands in the database,
//! and the example's own checks with a fresh connection (count, per-user sums,
//! per-user order, one worker per user) pass. Its scratch directory is gone
//! afterwards.
#![allow(clippy::unwrap_used)] // Tests may unwrap: a panic is a test failure.

// The helpers are `pub` for every test crate that includes them.
#[allow(unreachable_pub)]
mod common;

use std::collections::BTreeMap;
use std::path::Path;

use rstest::rstest;

/// The `key=value` pairs of the line starting with `prefix`.
fn fields(lines: &[String], prefix: &str) -> BTreeMap<String, String> {
    let line = lines
        .iter()
        .find(|line| line.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starting with {prefix:?} in {lines:#?}"));
    line.split_whitespace()
        .filter_map(|field| field.split_once('='))
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .collect()
}

/// The value on the line starting with `prefix` (`database     /tmp/...`).
fn value_after<'a>(lines: &'a [String], prefix: &str) -> &'a str {
    lines
        .iter()
        .find_map(|line| line.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no line starting with {prefix:?} in {lines:#?}"))
        .trim()
}

#[rstest]
#[case::one_worker(1, 64)]
#[case::four_workers(4, 64)]
#[case::unbatched(3, 1)]
fn every_row_lands_and_verifies(#[case] n_workers: usize, #[case] batch_size: usize) {
    const ROWS: u64 = 3_000;
    const USERS: u64 = 40;
    let mut command = common::example("sqlite_ingest");
    command.args(["--rows", &ROWS.to_string()]);
    command.args(["--users", &USERS.to_string()]);
    command.args(["--workers", &n_workers.to_string()]);
    command.args(["--batch", &batch_size.to_string()]);
    let lines = common::stdout_lines(&common::run_ok(command));

    let summary = fields(&lines, "rows=");
    assert_eq!(summary["rows"], ROWS.to_string());
    assert_eq!(summary["users"], USERS.to_string());
    assert_eq!(summary["verified"], "true");

    // Each check the example made passed.
    let checks: Vec<&String> = lines
        .iter()
        .filter(|line| line.starts_with("check"))
        .collect();
    assert_eq!(checks.len(), 4, "{lines:#?}");
    assert!(
        checks.iter().all(|line| line.ends_with(": ok")),
        "{checks:#?}"
    );

    // The pool had the requested workers, and every row was one insert.
    assert_eq!(value_after(&lines, "workers "), n_workers.to_string());
    assert_eq!(value_after(&lines, "processed "), ROWS.to_string());
    assert!(
        lines
            .iter()
            .any(|line| line.trim() == format!("rows_inserted = {ROWS}"))
    );
    // One transaction per batch: at least rows / batch of them, and exactly
    // one per row when unbatched.
    let transactions: u64 = lines
        .iter()
        .find_map(|line| line.trim().strip_prefix("transactions = "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        transactions >= ROWS.div_ceil(batch_size as u64),
        "{transactions}"
    );
    if batch_size == 1 {
        assert_eq!(transactions, ROWS);
    }

    // The scratch directory with the database is removed at the end.
    let database = Path::new(value_after(&lines, "database "));
    assert!(database.ends_with("events.db"));
    assert!(
        !database.parent().unwrap().exists(),
        "{} is left behind",
        database.display()
    );
}
