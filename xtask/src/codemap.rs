//! The code map check of `cargo xtask lint`: every library source file
//! (`crates/*/src/**/*.rs`, as tracked by git) is named in ARCHITECTURE.md by
//! its full repo-relative path, so the map cannot quietly fall behind the code.
//!
//! The check itself is [`missing_from_code_map`], a pure function of the file
//! list and the text; [`code_map`] lists the files with `git ls-files` and
//! turns the answer into a lint step.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use crate::steps::{Failure, Steps};

/// The file, at the repository root, whose code map must name every library
/// source file.
const ARCHITECTURE: &str = "ARCHITECTURE.md";

/// Adds the code map step, called `name`, for the repository at `root`.
pub(crate) fn code_map(steps: &mut Steps, name: &str, root: &Path) {
    let what = "every tracked crates/*/src/**/*.rs is named in ARCHITECTURE.md";
    steps.check(name, what, || check(root));
}

/// Lists the tracked files, reads ARCHITECTURE.md and reports what is missing.
fn check(root: &Path) -> Result<String, Failure> {
    let output = Command::new("git")
        .args(["ls-files", "-z", "--", "crates"])
        .current_dir(root)
        .output();
    let files: Vec<String> = match output {
        Ok(output) if output.status.success() => String::from_utf8_lossy(&output.stdout)
            .split('\0')
            .filter(|path| !path.is_empty())
            .map(str::to_owned)
            .collect(),
        Ok(output) => {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let report = format!(
                "`git ls-files` failed ({}): {}",
                output.status,
                stderr.trim()
            );
            return Err(Failure::new(report, "git ls-files failed"));
        }
        Err(error) => {
            let report = format!("could not run `git ls-files` (the check needs git): {error}");
            return Err(Failure::new(report, "git not found"));
        }
    };
    let text = std::fs::read_to_string(root.join(ARCHITECTURE)).map_err(|error| {
        let report = format!("could not read {ARCHITECTURE} at the repository root: {error}");
        Failure::new(report, &format!("no {ARCHITECTURE}"))
    })?;
    let missing = missing_from_code_map(&files, &text);
    if missing.is_empty() {
        let checked = files.iter().filter(|path| is_library_source(path)).count();
        Ok(format!(
            "all {checked} library source files are named in {ARCHITECTURE}"
        ))
    } else {
        let reason = format!("{} file(s) missing from {ARCHITECTURE}", missing.len());
        Err(Failure::new(report(&missing), &reason))
    }
}

/// The library source files among `files` (repo-relative, `/`-separated) that
/// `architecture` does not name by their full path, in the order given.
pub(crate) fn missing_from_code_map<'a>(files: &'a [String], architecture: &str) -> Vec<&'a str> {
    files
        .iter()
        .map(String::as_str)
        .filter(|path| is_library_source(path) && !is_named(architecture, path))
        .collect()
}

/// Whether `path` is a library source file: `crates/<crate>/src/**/*.rs`.
fn is_library_source(path: &str) -> bool {
    let parts: Vec<&str> = path.split('/').collect();
    matches!(
        parts.as_slice(),
        ["crates", krate, "src", .., file] if !krate.is_empty() && file.ends_with(".rs")
    )
}

/// Whether `text` names `path` as a whole path: not as the tail of a longer
/// one (`other/crates/…`) nor the head of one (`…/lib.rs2`, `…/src/a.rs/b`).
/// A `.` may follow, as at the end of a sentence.
fn is_named(text: &str, path: &str) -> bool {
    let part_of_path = |c: char| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '/');
    text.match_indices(path).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + path.len()..].chars().next();
        !before.is_some_and(part_of_path) && !after.is_some_and(|c| c != '.' && part_of_path(c))
    })
}

/// The failure report: every missing file and what to do about it.
fn report(missing: &[&str]) -> String {
    let mut out = format!(
        "{} library source file(s) are not named in {ARCHITECTURE}:\n",
        missing.len()
    );
    for path in missing {
        // Writing into a String cannot fail.
        let _ = writeln!(out, "  {path}");
    }
    let _ = write!(
        out,
        "For each file above, add an entry for it to {ARCHITECTURE}'s code map:\n\
         its full repo-relative path as listed (e.g. `crates/pool-core/src/pool.rs`)\n\
         and what it holds."
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Turns string literals into the owned paths `git ls-files` gives.
    fn owned(paths: &[&str]) -> Vec<String> {
        paths.iter().map(|path| (*path).to_owned()).collect()
    }

    #[test]
    fn only_library_sources_are_checked() {
        let files = owned(&[
            "crates/pool-core/src/pool.rs",
            "crates/pool-core/src/sync/loom.rs",
            "crates/pool-core/tests/drop_without_wait.rs",
            "crates/pool-core/benches/route.rs",
            "crates/pool-core/Cargo.toml",
            "crates/pool-core/src/notes.md",
            "benches/src/main.rs",
            "xtask/src/main.rs",
        ]);
        let missing = missing_from_code_map(&files, "");
        assert_eq!(
            missing,
            [
                "crates/pool-core/src/pool.rs",
                "crates/pool-core/src/sync/loom.rs"
            ]
        );
    }

    #[test]
    fn files_named_by_full_path_pass_in_any_markdown_form() {
        let files = owned(&[
            "crates/pool-core/src/pool.rs",
            "crates/pool-core/src/run.rs",
            "crates/pool-batch/src/lib.rs",
            "crates/workforce/src/guide.rs",
        ]);
        let text = "\
| `crates/pool-core/src/pool.rs` | Builder |
- [run](crates/pool-core/src/run.rs): the worker loop
crates/pool-batch/src/lib.rs  Batcher
The guide is crates/workforce/src/guide.rs.
";
        assert!(missing_from_code_map(&files, text).is_empty());
    }

    #[test]
    fn partial_and_longer_paths_do_not_count() {
        let files = owned(&[
            "crates/pool-core/src/pool.rs",
            "crates/pool-core/src/run.rs",
            "crates/pool-core/src/lib.rs",
            "crates/pool-core/src/sync.rs",
        ]);
        let text = "\
crates/
  pool-core
    src/pool.rs      Builder
old/crates/pool-core/src/run.rs
crates/pool-core/src/lib.rs2
crates/pool-core/src/sync.rs/loom.rs
";
        assert_eq!(missing_from_code_map(&files, text), files);
    }

    #[test]
    fn the_report_lists_every_missing_file_and_what_to_do() {
        let report = report(&["crates/a/src/lib.rs", "crates/b/src/x/y.rs"]);
        assert!(report.starts_with("2 library source file(s) are not named in ARCHITECTURE.md:\n"));
        assert!(report.contains("\n  crates/a/src/lib.rs\n  crates/b/src/x/y.rs\n"));
        assert!(report.contains("add an entry for it to ARCHITECTURE.md's code map"));
    }
}
