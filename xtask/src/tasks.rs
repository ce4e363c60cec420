//! The commands themselves: which cargo invocations each one runs, and how.
//!
//! Each command has a building block that adds its steps to a [`Steps`] run
//! (`lint`, `loom`, `bench`), so `ci` calls exactly the same code as the
//! stand-alone commands.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::args::BenchArgs;
use crate::steps::Steps;

/// Default preemption bound for loom; higher values explode the search space.
const DEFAULT_LOOM_MAX_PREEMPTIONS: &str = "2";

/// What to print when cargo-deny is missing.
const DENY_MISSING: &str =
    "cargo-deny not installed: skipped (install with `cargo install cargo-deny --locked`)";

/// `cargo xtask lint`.
pub(crate) fn lint_command() -> anyhow::Result<()> {
    let mut steps = Steps::new("lint");
    lint(&mut steps, "");
    steps.finish()
}

/// `cargo xtask loom`.
pub(crate) fn loom_command() -> anyhow::Result<()> {
    let mut steps = Steps::new("loom");
    loom(&mut steps);
    steps.finish()
}

/// `cargo xtask bench …`.
pub(crate) fn bench_command(bench_args: &BenchArgs) -> anyhow::Result<()> {
    let mut steps = Steps::new("bench");
    bench(&mut steps, bench_args);
    steps.finish()
}

/// `cargo xtask ci`: every step runs; the run fails at the end if any failed.
pub(crate) fn ci_command() -> anyhow::Result<()> {
    let mut steps = Steps::new("ci");
    lint(&mut steps, "lint: ");
    steps.run("test", &mut cargo(&["test", "--workspace"]));
    steps.run("doc tests", &mut cargo(&["test", "--workspace", "--doc"]));
    // Optional features are off in `cargo test --workspace`; test them here.
    steps.run(
        "test: serde feature",
        &mut cargo(&["test", "-p", "pool-metrics", "--features", "serde"]),
    );
    loom(&mut steps);
    let quick = BenchArgs {
        quick: true,
        ..BenchArgs::default()
    };
    bench(&mut steps, &quick);
    steps.finish()
}

/// Adds the lint steps, each name prefixed with `prefix`.
fn lint(steps: &mut Steps, prefix: &str) {
    steps.run(
        &format!("{prefix}fmt"),
        &mut cargo(&["fmt", "--all", "--check"]),
    );
    steps.run(
        &format!("{prefix}clippy"),
        &mut cargo(&[
            "clippy",
            "--workspace",
            "--all-targets",
            "--all-features",
            "--",
            "-D",
            "warnings",
        ]),
    );
    let mut doc = cargo(&["doc", "--workspace", "--no-deps"]);
    doc.env("RUSTDOCFLAGS", "-D warnings");
    steps.run(&format!("{prefix}doc"), &mut doc);

    let deny_name = format!("{prefix}deny");
    if cargo_deny_installed() {
        // Run from the workspace root, cargo-deny reads the root `deny.toml`.
        steps.run(
            &deny_name,
            &mut cargo(&["deny", "check", "licenses", "bans", "sources"]),
        );
    } else {
        steps.skip(&deny_name, DENY_MISSING, "cargo-deny not installed");
    }
}

/// Adds the loom step: the model tests of pool-core, built with `--cfg loom`
/// into their own target directory so the normal build cache stays valid.
fn loom(steps: &mut Steps) {
    let mut command = cargo(&["test", "-p", "pool-core", "--release", "--lib", "loom"]);
    let rustflags = match std::env::var("RUSTFLAGS") {
        Ok(existing) if !existing.trim().is_empty() => format!("{existing} --cfg loom"),
        _ => "--cfg loom".to_owned(),
    };
    let preemptions = std::env::var_os("LOOM_MAX_PREEMPTIONS")
        .unwrap_or_else(|| OsString::from(DEFAULT_LOOM_MAX_PREEMPTIONS));
    command
        .env("RUSTFLAGS", rustflags)
        .env("LOOM_MAX_PREEMPTIONS", preemptions)
        .env("CARGO_TARGET_DIR", target_dir().join("loom"));
    steps.run("loom", &mut command);
}

/// Adds the bench step: `peer-bench` in release mode with `bench_args`.
fn bench(steps: &mut Steps, bench_args: &BenchArgs) {
    let mut command = cargo(&[
        "run",
        "--release",
        "-p",
        "workforce-benches",
        "--bin",
        "peer-bench",
        "--",
    ]);
    command.args(bench_args.to_peer_bench_args());
    let name = if bench_args.quick {
        "bench --quick"
    } else {
        "bench"
    };
    steps.run(name, &mut command);
}

/// The workspace root: the parent of this package's directory.
fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
}

/// The cargo target directory: `CARGO_TARGET_DIR` when set (relative paths are
/// taken from the current directory, as cargo does), else `<root>/target`.
fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                std::env::current_dir()
                    .map(|cwd| cwd.join(&dir))
                    .unwrap_or(dir)
            }
        }
        _ => workspace_root().join("target"),
    }
}

/// A `cargo` command with `args`, run from the workspace root. Uses the cargo
/// that started xtask (`$CARGO`) so the same toolchain runs every step.
fn cargo(args: &[&str]) -> Command {
    let program = std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    let mut command = Command::new(program);
    command.args(args).current_dir(workspace_root());
    command
}

/// Whether `cargo deny --version` runs successfully.
fn cargo_deny_installed() -> bool {
    cargo(&["deny", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}
