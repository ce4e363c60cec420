//! Runs the facade's examples from integration tests.
//!
//! `cargo test` builds every example before it runs any test, into
//! `target/<profile>/examples/`, next to the `deps/` directory this test
//! binary lives in; so the tests run the very binaries `cargo run --example`
//! would, on small input, and check what they print.

use std::path::PathBuf;
use std::process::{Command, Output};

/// The path of example `name`, built by the same `cargo test` run.
pub fn example_path(name: &str) -> PathBuf {
    let test_binary = std::env::current_exe().expect("the test binary has a path");
    // target/<profile>/deps/<this test> -> target/<profile>/examples/<name>
    let profile_dir = test_binary
        .parent()
        .and_then(|deps| deps.parent())
        .expect("the test binary sits in target/<profile>/deps");
    let path = profile_dir
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.exists(),
        "example `{name}` is not built at {}: run `cargo test --workspace` \
         (it builds the examples first) or `cargo build -p workforce --examples`",
        path.display()
    );
    path
}

/// A command for example `name`, ready for arguments.
pub fn example(name: &str) -> Command {
    Command::new(example_path(name))
}

/// Runs `command` to its end and returns its output, failing the test with
/// its stderr if it did not exit successfully.
pub fn run_ok(mut command: Command) -> Output {
    let output = command.output().expect("the example starts");
    assert!(
        output.status.success(),
        "{command:?} ended with {}; stderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// The lines of `output`'s stdout.
pub fn stdout_lines(output: &Output) -> Vec<String> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}
