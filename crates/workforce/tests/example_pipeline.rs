//! The `pipeline` example prints each stage's `submitted = processed + failed +
//! dropped` and it holds, stage to stage and end to end; with `--out`, the file
//! holds exactly the well-formed input lines, each once.
#![allow(clippy::unwrap_used)] // Tests may unwrap: a panic is a test failure.

// Shared by every example test: each uses a part of it, and its `pub` items
// are reachable only from this test crate.
#[allow(dead_code, unreachable_pub)]
mod common;

use std::collections::BTreeSet;
use std::time::{SystemTime, UNIX_EPOCH};

use common::{example, run_ok, stdout_lines};

/// A stage's counts: submitted, processed, failed, dropped.
type Counts = [u64; 4];

/// Parses `<stage>: submitted S = processed P + failed F + dropped D`.
fn stage(lines: &[String], name: &str) -> Counts {
    let prefix = format!("{name}: ");
    let line = lines
        .iter()
        .find_map(|line| line.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {name} line in {lines:#?}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(words.len(), 11, "{line}");
    assert_eq!(
        [0, 2, 3, 5, 6, 8, 9].map(|index| words[index]),
        ["submitted", "=", "processed", "+", "failed", "+", "dropped"],
        "{line}"
    );
    [1, 4, 7, 10].map(|index| words[index].parse().unwrap())
}

/// Runs the example on `lines` input lines and checks every printed account.
/// Returns how many lines were written.
fn run_and_check(lines: u64, extra: &[&str]) -> u64 {
    let mut command = example("pipeline");
    command.args(["--lines", &lines.to_string()]).args(extra);
    let output = stdout_lines(&run_ok(command));

    let parse = stage(&output, "parse");
    let transform = stage(&output, "transform");
    let format = stage(&output, "format");
    for [submitted, processed, failed, dropped] in [parse, transform, format] {
        assert_eq!(submitted, processed + failed + dropped, "{output:#?}");
    }
    // Each stage accepted what the one before passed on.
    assert_eq!(parse[0], lines);
    assert_eq!(transform[0], parse[1]);
    assert_eq!(format[0], transform[1]);
    // One line in a thousand is malformed; nothing else fails or is dropped.
    let malformed = lines / 1_000;
    assert_eq!(parse[1..], [lines - malformed, malformed, 0]);
    assert_eq!(transform[1..], [lines - malformed, 0, 0]);
    assert_eq!(format[1..], [lines - malformed, 0, 0]);

    let written = lines - malformed;
    let collector = output
        .iter()
        .find(|line| line.starts_with("collector: "))
        .unwrap();
    assert!(
        collector.starts_with(&format!("collector: wrote {written} lines, ")),
        "{collector}"
    );
    assert_eq!(
        output.last().unwrap(),
        &format!("summary: lines={lines} written={written} failed={malformed} dropped=0")
    );
    written
}

#[test]
fn every_stage_accounts_for_every_line() {
    run_and_check(20_000, &[]);
}

#[test]
fn a_run_shorter_than_one_batch_is_accounted_too() {
    run_and_check(10, &[]);
}

#[test]
fn the_output_file_has_every_good_line_once() {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let path = std::env::temp_dir().join(format!(
        "workforce-pipeline-{}-{nanos}.csv",
        std::process::id()
    ));
    /// Removes the output file also when an assertion fails first.
    struct RemoveOnDrop<'a>(&'a std::path::Path);
    impl Drop for RemoveOnDrop<'_> {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(self.0);
        }
    }
    let _remove = RemoveOnDrop(&path);
    let written = run_and_check(5_000, &["--out", path.to_str().unwrap()]);
    let csv = std::fs::read_to_string(&path).unwrap();

    let ids: Vec<u64> = csv
        .lines()
        .map(|line| line.split(',').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(ids.len() as u64, written);
    let unique: BTreeSet<u64> = ids.iter().copied().collect();
    let expected: BTreeSet<u64> = (0..5_000).filter(|n| n % 1_000 != 999).collect();
    assert_eq!(unique, expected);
    // `<id>,<net>,<vat>`: 20% VAT on the amount in cents, as euros.
    let line_of_1234 = csv.lines().find(|line| line.starts_with("1234,")).unwrap();
    assert_eq!(line_of_1234, "1234,12.34,2.47");
}
