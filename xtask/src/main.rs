//! Project automation for the workforce workspace, run as `cargo xtask <command>`.
//!
//! The alias in `.cargo/config.toml` turns `cargo xtask …` into
//! `cargo run --quiet --package xtask -- …`. Automation lives here, in Rust,
//! rather than in a folder of shell scripts, so it runs the same way on every
//! machine that can build the workspace. `.ci/run` only prepares the toolchain
//! and then calls `cargo xtask ci`.
//!
//! Commands:
//! - `lint`: rustfmt, the code map check, clippy, rustdoc and (when
//!   installed) cargo-deny.
//! - `test`: makes sure `redis-server` is installed (installing it as root
//!   with apt-get, else saying what to run), then runs every test with every
//!   feature on.
//! - `loom`: the exhaustive `loom` model tests of `pool-core`.
//! - `valgrind`: valgrind memcheck over a subset of the `pool-core` tests.
//! - `stress`: the random-script stress test of `pool-core`, with a chosen
//!   number of scripts and seed.
//! - `bench`: the peer comparison (`peer-bench` in `benches/`).
//! - `ci`: all of the above but `stress` plus the test suites, reporting every
//!   step.
//!
//! Arguments are parsed by clap (see `args.rs`); the rest is `std` and `anyhow`.

mod args;
mod codemap;
mod steps;
mod tasks;

use std::process::ExitCode;

use clap::{CommandFactory as _, Parser as _};

use crate::args::{Cli, Command};

/// Parses the command line, runs the chosen command and turns its outcome into
/// the process exit code (0 on success, 1 when a step failed, 2 on bad usage:
/// clap prints the error and exits).
fn main() -> ExitCode {
    let Some(command) = Cli::parse().command else {
        // `cargo xtask` alone prints the overview, as `cargo xtask --help` does.
        return match Cli::command().print_help() {
            Ok(()) => ExitCode::SUCCESS,
            Err(_) => ExitCode::FAILURE,
        };
    };

    let outcome = match command {
        Command::Lint => tasks::lint_command(),
        Command::Test => tasks::test_command(),
        Command::Loom => tasks::loom_command(),
        Command::Valgrind => tasks::valgrind_command(),
        Command::Stress(stress_args) => tasks::stress_command(&stress_args),
        Command::Bench(bench_args) => tasks::bench_command(&bench_args),
        Command::Ci => tasks::ci_command(),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
