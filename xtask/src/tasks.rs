//! The commands themselves: which cargo invocations each one runs, and how.
//!
//! Each command has a building block that adds its steps to a [`Steps`] run
//! (`lint`, `loom`, `valgrind`, `bench`), so `ci` calls exactly the same code
//! as the stand-alone commands.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::args::{BenchArgs, StressArgs};
use crate::codemap;
use crate::steps::Steps;

/// Default preemption bound for loom; higher values explode the search space.
const DEFAULT_LOOM_MAX_PREEMPTIONS: &str = "2";

/// The pool-core test targets run under valgrind, every test in each (see
/// `cargo xtask valgrind --help` for why these). An explicit list, so a new
/// slow test file does not quietly lengthen every CI run.
const VALGRIND_TESTS: &[&str] = &[
    "pool_core",
    "accounting_invariant",
    "blocked_workers_strand_nothing",
    "cancel_never_hangs",
    "drop_without_wait",
    "layers_compose",
    "metrics_in_the_pool",
    "panics_anywhere_are_reported",
    "panics_are_reported",
    "refused_items_come_back",
    "submit_iter_is_submit_per_item",
    "worker_kinds",
];

/// The memcheck flags (the suppressions file is added by [`valgrind`]). Leaks
/// of the kinds that are errors by default (definitely and possibly lost) fail
/// the run, named here so the rule is visible. `--fair-sched` hands valgrind's
/// one running thread slot to all threads in turn, so a thread that spins or
/// yields while it waits for another cannot starve it.
const VALGRIND_FLAGS: &[&str] = &[
    "--error-exitcode=1",
    "--leak-check=full",
    "--errors-for-leak-kinds=definite,possible",
    "--fair-sched=yes",
];

/// The suppressions file, relative to the workspace root. It explains each entry.
const VALGRIND_SUPPRESSIONS: &str = "xtask/valgrind.supp";

/// What to print when valgrind is missing.
const VALGRIND_MISSING: &str =
    "valgrind not installed (install it with `apt-get install valgrind` or the like)";

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

/// `cargo xtask valgrind`: fails when valgrind is missing, as it was asked for.
pub(crate) fn valgrind_command() -> anyhow::Result<()> {
    let mut steps = Steps::new("valgrind");
    valgrind(&mut steps, IfMissing::Fail);
    steps.finish()
}

/// `cargo xtask stress …`.
pub(crate) fn stress_command(stress_args: &StressArgs) -> anyhow::Result<()> {
    let mut steps = Steps::new("stress");
    let mut command = cargo(&[
        "test",
        "--release",
        "-p",
        "pool-core",
        "--test",
        "random_scripts_keep_the_invariant",
    ]);
    let vars = stress_args.env();
    // Either flag decides both variables, so `--seed S` alone replays exactly
    // one script even when WORKFORCE_SCRIPTS is set in the environment.
    if !vars.is_empty() {
        command
            .env_remove("WORKFORCE_SCRIPTS")
            .env_remove("WORKFORCE_SEED");
    }
    command.envs(vars);
    steps.run("stress", &mut command);
    steps.finish()
}

/// `cargo xtask bench …`.
pub(crate) fn bench_command(bench_args: &BenchArgs) -> anyhow::Result<()> {
    let mut steps = Steps::new("bench");
    bench(&mut steps, bench_args);
    steps.finish()
}

/// `cargo xtask test`: the README's test command.
pub(crate) fn test_command() -> anyhow::Result<()> {
    let mut steps = Steps::new("test");
    test(&mut steps);
    steps.finish()
}

/// `cargo xtask ci`: every step runs; the run fails at the end if any failed.
pub(crate) fn ci_command() -> anyhow::Result<()> {
    let mut steps = Steps::new("ci");
    lint(&mut steps, "lint: ");
    test(&mut steps);
    steps.run(
        "doc tests",
        &mut cargo(&["test", "--workspace", "--all-features", "--doc"]),
    );
    // And the default build, features off, still compiles (tests included).
    steps.run(
        "check: no features",
        &mut cargo(&["check", "--workspace", "--all-targets"]),
    );
    loom(&mut steps);
    valgrind(&mut steps, IfMissing::Skip);
    let quick = BenchArgs {
        quick: true,
        ..BenchArgs::default()
    };
    bench(&mut steps, &quick);
    steps.finish()
}

/// Adds the test steps (see `cargo xtask test --help`): make sure
/// `redis-server` is installed (pool-source's tests start their own), then
/// every test and doc test of the workspace with every feature on (serde,
/// tracing, async, tower, redis; the tracing test is a binary of its own
/// because it installs a global subscriber). The tests run even when
/// redis-server could not be installed: pool-source's then fail, each saying
/// how to install it.
fn test(steps: &mut Steps) {
    redis_server(steps);
    steps.run(
        "test",
        &mut cargo(&["test", "--workspace", "--all-features"]),
    );
}

/// The package that holds `redis-server` on Debian and Ubuntu.
const REDIS_PACKAGE: &str = "redis-server";

/// What to run when redis-server is missing and this process cannot install it.
const REDIS_MISSING: &str = "redis-server is not installed, and this user cannot install it. \
Install it, then run `cargo xtask test` again:
  Debian/Ubuntu:  sudo apt-get update && sudo apt-get install -y redis-server
  Fedora/RHEL:    sudo dnf install -y redis
  macOS:          brew install redis
or put any `redis-server` (Redis 6.2 or later) on PATH. pool-source's tests start
their own servers on free loopback ports and fail without one.";

/// Adds the `redis-server` step: passes when `redis-server --version` runs;
/// otherwise, as root with apt-get, installs the package
/// (`apt-get update && apt-get install -y redis-server`) and checks again;
/// else fails, saying exactly what to run.
fn redis_server(steps: &mut Steps) {
    let name = "redis-server";
    if let Some(version) = tool_output("redis-server", &["--version"]) {
        steps.check(name, "is redis-server installed?", || {
            Ok(format!("found: {}", version.trim()))
        });
        return;
    }
    let is_root = tool_output("id", &["-u"]).is_some_and(|uid| uid.trim() == "0");
    if !is_root || !tool_runs("apt-get", &["--version"]) {
        steps.fail(name, REDIS_MISSING);
        return;
    }
    let mut update = Command::new("apt-get");
    update.arg("update");
    if !steps.run("redis-server: apt-get update", &mut update) {
        steps.fail(name, REDIS_MISSING);
        return;
    }
    let mut install = Command::new("apt-get");
    install
        .args(["install", "-y", "--no-install-recommends", REDIS_PACKAGE])
        .env("DEBIAN_FRONTEND", "noninteractive");
    if !steps.run("redis-server: apt-get install", &mut install) {
        steps.fail(name, REDIS_MISSING);
        return;
    }
    match tool_output("redis-server", &["--version"]) {
        Some(version) => {
            steps.check(name, "is redis-server installed?", || {
                Ok(format!("installed: {}", version.trim()))
            });
        }
        None => steps.fail(name, REDIS_MISSING),
    }
}

/// Adds the lint steps (see `cargo xtask lint --help`), each name prefixed
/// with `prefix`.
fn lint(steps: &mut Steps, prefix: &str) {
    steps.run(
        &format!("{prefix}fmt"),
        &mut cargo(&["fmt", "--all", "--check"]),
    );
    codemap::code_map(steps, &format!("{prefix}code map"), workspace_root());
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
    // `--nocapture` shows each model's line with its iteration count.
    let mut command = cargo(&[
        "test",
        "-p",
        "pool-core",
        "--release",
        "--lib",
        "loom",
        "--",
        "--nocapture",
    ]);
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

/// What to do when a tool a step needs is not installed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IfMissing {
    /// Record the step as failed.
    Fail,
    /// Record the step as skipped.
    Skip,
}

/// Adds the valgrind steps: build the pool-core test binaries (release), then
/// run each of [`VALGRIND_TESTS`] under memcheck, one step per binary.
fn valgrind(steps: &mut Steps, if_missing: IfMissing) {
    if !tool_runs("valgrind", &["--version"]) {
        match if_missing {
            IfMissing::Fail => steps.fail("valgrind", VALGRIND_MISSING),
            IfMissing::Skip => {
                steps.skip("valgrind", VALGRIND_MISSING, "valgrind not installed");
            }
        }
        return;
    }
    let mut build = cargo(&[
        "test",
        "-p",
        "pool-core",
        "--release",
        "--no-run",
        "--message-format=json-render-diagnostics",
    ]);
    let Some(messages) = steps.run_captured("valgrind: build tests", &mut build) else {
        return;
    };
    let binaries = test_executables(&messages);
    for &target in VALGRIND_TESTS {
        let name = format!("valgrind: {target}");
        match binaries.iter().find(|(found, _)| found == target) {
            Some((_, executable)) => {
                let mut suppressions = OsString::from("--suppressions=");
                suppressions.push(workspace_root().join(VALGRIND_SUPPRESSIONS));
                let mut command = Command::new("valgrind");
                command
                    .args(VALGRIND_FLAGS)
                    .arg(suppressions)
                    .arg(executable)
                    .arg("--test-threads=1")
                    .current_dir(workspace_root().join("crates").join("pool-core"));
                steps.run(&name, &mut command);
            }
            None => steps.fail(
                &name,
                &format!("cargo built no test binary named `{target}` (renamed or removed?)"),
            ),
        }
    }
}

/// The test executables in cargo's JSON messages, as (target name, path).
/// Only the two string fields are needed, so they are picked out by hand
/// rather than with a JSON parser: in cargo's compact output, the target's
/// `name` is the first `"name"` after `"target":{`.
fn test_executables(messages: &str) -> Vec<(String, PathBuf)> {
    messages
        .lines()
        .filter(|line| line.contains(r#""reason":"compiler-artifact""#))
        .filter_map(|line| {
            let executable = json_string_after(line, r#""executable":""#)?;
            let target = &line[line.find(r#""target":{"#)?..];
            let name = json_string_after(target, r#""name":""#)?;
            Some((name, PathBuf::from(executable)))
        })
        .collect()
}

/// The JSON string that follows `key` (which ends with the opening quote) in
/// `text`, with `\\` and `\"` unescaped; `None` when `key` is absent (as with
/// `"executable":null`).
fn json_string_after(text: &str, key: &str) -> Option<String> {
    let start = text.find(key)? + key.len();
    let mut value = String::new();
    let mut chars = text[start..].chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Some(value),
            '\\' => value.push(chars.next()?),
            c => value.push(c),
        }
    }
    None
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

/// Whether `program args` runs successfully (the tool is installed).
fn tool_runs(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// The standard output of `program args` when it runs successfully.
fn tool_output(program: &str, args: &[&str]) -> Option<String> {
    let output = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Whether `cargo deny --version` runs successfully.
fn cargo_deny_installed() -> bool {
    cargo(&["deny", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_executables_are_found_in_cargo_messages() {
        let messages = concat!(
            r#"{"reason":"compiler-artifact","package_id":"x","target":{"kind":["lib"],"#,
            r#""crate_types":["lib"],"name":"pool_core","src_path":"/w/src/lib.rs","test":true},"#,
            r#""profile":{"test":true},"filenames":["/t/deps/pool_core-1"],"#,
            r#""executable":"/t/deps/pool_core-1","fresh":true}"#,
            "\n",
            r#"{"reason":"compiler-artifact","package_id":"y","target":{"kind":["lib"],"#,
            r#""name":"pool_batch","test":false},"executable":null,"fresh":true}"#,
            "\n",
            r#"{"reason":"compiler-artifact","target":{"kind":["test"],"name":"worker_kinds"},"#,
            r#""executable":"C:\\t\\worker_kinds-2.exe"}"#,
            "\n",
            r#"{"reason":"build-finished","success":true}"#,
        );
        assert_eq!(
            test_executables(messages),
            vec![
                ("pool_core".to_owned(), PathBuf::from("/t/deps/pool_core-1")),
                (
                    "worker_kinds".to_owned(),
                    PathBuf::from(r"C:\t\worker_kinds-2.exe")
                ),
            ]
        );
    }
}
