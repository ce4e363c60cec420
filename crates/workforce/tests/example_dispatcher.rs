//! The `dispatcher` example hands back every job's outcome: a thumbnail for
//! each good image and an error for each broken one (returned errors and a
//! caught panic), in submission order, whatever the number of workers.
#![allow(clippy::unwrap_used)] // Tests may unwrap: a panic is a test failure.

// Shared by every example test: each uses a part of it, and its `pub` items
// are reachable only from this test crate.
#[allow(dead_code, unreachable_pub)]
mod common;

use common::{example, run_ok, stdout_lines};
use rstest::rstest;

/// The example's images, as its `load` documents them: which outcome each
/// should have.
fn expected_outcome(id: usize) -> &'static str {
    if id % 13 == 12 {
        "panicked" // an 8x8 icon: the thumbnailer divides by zero
    } else if id % 11 == 5 || id % 7 == 3 {
        "failed" // CMYK, or truncated
    } else {
        "ok"
    }
}

/// The image names on the lines starting with `kind`, in output order.
fn names(lines: &[String], kind: &str) -> Vec<String> {
    lines
        .iter()
        .filter_map(|line| line.strip_prefix(kind))
        .map(|rest| {
            rest.trim_start()
                .split([' ', ':'])
                .next()
                .unwrap()
                .to_owned()
        })
        .collect()
}

#[rstest]
#[case::the_default_run(None, 2)]
#[case::one_worker(Some(40), 1)]
#[case::more_workers_than_cores(Some(60), 4)]
fn every_image_gets_its_thumbnail_or_its_error_in_submission_order(
    #[case] images: Option<usize>,
    #[case] workers: usize,
) {
    let mut command = example("dispatcher");
    command.args(["--workers", &workers.to_string()]);
    if let Some(images) = images {
        command.args(["--images", &images.to_string()]);
    }
    let lines = stdout_lines(&run_ok(command));
    let images = images.unwrap_or(24);

    let expected = |kind: &str| -> Vec<String> {
        (0..images)
            .filter(|&id| expected_outcome(id) == kind)
            .map(|id| format!("img-{id:03}"))
            .collect()
    };
    assert_eq!(names(&lines, "ok "), expected("ok"), "{lines:#?}");
    assert_eq!(names(&lines, "failed "), expected("failed"), "{lines:#?}");
    assert_eq!(
        names(&lines, "panicked "),
        expected("panicked"),
        "{lines:#?}"
    );
    for line in lines.iter().filter(|line| line.starts_with("panicked ")) {
        assert!(line.ends_with(": attempt to divide by zero"), "{line}");
    }
    for line in lines.iter().filter(|line| line.starts_with("failed ")) {
        assert!(
            line.contains(": truncated pixel data: ")
                || line.contains(": unsupported pixel format "),
            "{line}"
        );
    }
    assert_eq!(
        lines.last().unwrap(),
        &format!(
            "summary: jobs={images} ok={} failed={} panicked={}",
            expected("ok").len(),
            expected("failed").len(),
            expected("panicked").len()
        )
    );
}

#[test]
fn the_default_run_has_every_kind_of_outcome() {
    let lines = stdout_lines(&run_ok(example("dispatcher")));
    assert_eq!(
        lines.last().unwrap(),
        "summary: jobs=24 ok=18 failed=5 panicked=1"
    );
    assert!(lines.contains(&"panicked  img-012: attempt to divide by zero".to_owned()));
}
