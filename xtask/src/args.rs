//! The command line, parsed by clap (derive).
//!
//! Each command's `--help` is one of the texts below, saying what the command
//! runs and why; clap adds the usage line and the flags (from the doc comment
//! of each field), parses `--flag value` and `--flag=value`, and rejects
//! anything else with an error that names the bad argument.

use clap::{Args, Parser, Subcommand};

/// `cargo xtask`: parsed by [`Parser::parse`] in `main`.
#[derive(Debug, Parser)]
#[command(
    name = "xtask",
    bin_name = "cargo xtask",
    override_usage = "cargo xtask <COMMAND> [OPTIONS]",
    about = "Project automation for the workforce workspace.",
    after_help = "Run `cargo xtask <COMMAND> --help` for what a command runs and its flags."
)]
pub(crate) struct Cli {
    /// The command to run; without one, the overview is printed.
    #[command(subcommand)]
    pub(crate) command: Option<Command>,
}

/// A command to run, with its flags.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub(crate) enum Command {
    /// rustfmt check, clippy and rustdoc (-D warnings), the code map check, cargo-deny if installed
    #[command(long_about = LINT_HELP)]
    Lint,
    /// redis-server (installed when possible), then cargo test --workspace --all-features
    #[command(long_about = TEST_HELP)]
    Test,
    /// exhaustive loom model tests of pool-core (release, --cfg loom, own target dir)
    #[command(long_about = LOOM_HELP)]
    Loom,
    /// valgrind memcheck over a chosen subset of the pool-core tests (release build)
    #[command(long_about = VALGRIND_HELP)]
    Valgrind,
    /// the random-script stress test of pool-core, with a chosen number of scripts and seed
    #[command(long_about = STRESS_HELP)]
    Stress(StressArgs),
    /// the peer comparison of BENCHMARKS.md (W7 lines, W8 heavy tail and W1-W6
    /// against sequential, rayon, crossbeam-channel, threadpool, std mpsc and
    /// thread-per-item) and the pool's idle CPU, wake-up latency and memory
    #[command(long_about = BENCH_HELP, verbatim_doc_comment)]
    Bench(BenchArgs),
    /// lint, tests, doc tests, loom, valgrind and `bench --quick`; reports every step
    #[command(long_about = CI_HELP)]
    Ci,
}

/// Help for `cargo xtask lint`.
const LINT_HELP: &str = "\
Run every lint step and report all failures at the end.

Steps (each runs even when an earlier one failed):
  1. cargo fmt --all --check
  2. code map: every tracked crates/*/src/**/*.rs is named, by its repo-relative
     path, in ARCHITECTURE.md (lists each file that is not)
  3. cargo clippy --workspace --all-targets --all-features -- -D warnings
  4. cargo doc --workspace --no-deps            (RUSTDOCFLAGS=\"-D warnings\")
  5. cargo deny check licenses bans sources     (with the root deny.toml; skipped when
                                                cargo-deny is not installed)";

/// Help for `cargo xtask test`.
const TEST_HELP: &str = "\
Run every test of the workspace, with the broker the pool-source tests need.

Steps:
  1. redis-server: passes when `redis-server --version` runs. Otherwise, as root
     with apt-get, runs `apt-get update` and `apt-get install -y redis-server`;
     else fails and says exactly what to install (the tests still run).
  2. cargo test --workspace --all-features   (unit, behaviour and doc tests)

pool-source's tests start their own redis-server on free loopback ports (no
persistence) and stop it after; without redis-server they fail, each saying how
to install it. Nothing else needs installing.";

/// Help for `cargo xtask loom`.
const LOOM_HELP: &str = "\
Run the loom model tests of pool-core.

Runs `cargo test -p pool-core --release --lib loom -- --nocapture` with:
  RUSTFLAGS=\"--cfg loom\"          (appended to any RUSTFLAGS already set)
  LOOM_MAX_PREEMPTIONS=2          (unless already set in the environment)
  CARGO_TARGET_DIR=<target>/loom  (so the normal build cache is not invalidated)

Models (each prints how many interleavings loom explored and how long it took):
  sleep.rs     no lost wake-up (1 and 2 workers), shutdown drains, keyed inboxes
               wake their own worker and drain on shutdown
  capacity.rs  close while workers park, close racing a submit, cancel while a
               producer waits at capacity (alone and with a draining worker), the
               counter under 2 producers and 1-2 releasers (capacity 2, and 4 with
               lingering producers)
About a minute on 2 cores; a higher LOOM_MAX_PREEMPTIONS explores more and takes
much longer.";

/// Help for `cargo xtask valgrind`.
const VALGRIND_HELP: &str = "\
Run valgrind memcheck over a subset of the pool-core tests.

Builds the pool-core test binaries with `cargo test -p pool-core --release --no-run`
(release: faster under valgrind, and the release profile keeps line tables), then runs
each chosen test binary, one step per binary, under
  valgrind --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite,possible
           --fair-sched=yes --suppressions=xtask/valgrind.supp <binary> --test-threads=1
Any memory error or definitely/possibly lost block fails the step. The suppressions
file holds two entries, each explained there: blocks that std (the main thread's
handle) and crossbeam-epoch (per-thread records) keep alive on purpose until exit
behind pointers valgrind cannot follow.

The subset: every test of these targets, which between them hand items, batches,
errors and panic payloads between threads and drop them on every path (processed,
failed, refused, cancelled, dropped without wait), keyed and unkeyed. About 40 s of
valgrind on 2 cores, plus the release build when it is not cached.
  pool_core (unit tests)          drop_without_wait         panics_are_reported
  accounting_invariant            cancel_never_hangs        panics_anywhere_are_reported
  blocked_workers_strand_nothing  layers_compose            refused_items_come_back
  metrics_in_the_pool             submit_iter_is_submit_per_item    worker_kinds
Left out:
  keyed_affinity                  1,000,000-item order checks (paths covered above)
  settings_are_checked            builder validation only: no threads, no hand-offs
  random_scripts_keep_the_invariant  ~100 s, and each script's pool is leaked by the
                                  test itself (its callbacks own the pool's Sender);
                                  run it with `cargo xtask stress`
  any test file added later, until it is listed in xtask/src/tasks.rs

Needs valgrind on PATH (`apt-get install valgrind`); fails when it is missing. In
`cargo xtask ci` the step is skipped when valgrind is missing.";

/// Help for `cargo xtask stress`.
const STRESS_HELP: &str = "\
Run the random-script stress test of pool-core.

Runs `cargo test --release -p pool-core --test random_scripts_keep_the_invariant`,
which builds pools from random scripts (settings, producers, errors, panics,
cancellation, close) and checks that every item is accounted for. The flags become
the environment variables that test reads (WORKFORCE_SCRIPTS, WORKFORCE_SEED).
Without flags the test runs its default number of scripts from seed 0 (or what those
variables already say in the environment). A failing script prints its seed.";

/// Help for `cargo xtask bench`.
const BENCH_HELP: &str = "\
Build and run the peer comparison (package workforce-benches, binary peer-bench) in
release mode. The workloads, peers and targets are defined in BENCHMARKS.md at the
repository root; this is a summary.

What it runs (default: everything, at workers = cores and workers = 8):
  W1 overhead        1,000,000 trivial items: the pool's own cost per item
  W2 cpu             200,000 CPU-bound items (200 xorshift rounds): scaling
  W3 seed            1,000,000 go-pkgz/pool benchmark tasks (a Vec of 1000 pushes each);
                     floor = a static split; 3 reps, no warm-up
  W4 keyed           W1 with key x % 1024: routing cost, per-key order checked
  W5 skewed          W2 with every 100th item 100x heavier: stealing vs static routing
  W6 multi-producer  W1 from 4 producer threads (cloned Senders, a Submitter each)
  W7 lines           a generated 100 MiB access log parsed line by line (first)
  W8 heavy-tail      300,000 items of log-normal cost (median ~100 ns, tail ~100 us)
  W9 calls           100,000 awaited calls from 64 tokio tasks (BLAKE3 over 64 KiB),
                     against spawn_blocking and rayon + oneshot; then 1,000,000
                     calls issued at once (peak RSS)
  W11 resize         Pool::set_workers between 1 and N workers, 400 times (--quick 40),
                     while 2 producers submit: mean/p50/p99/max us, unkeyed and keyed
  W12 broker         200,000 entries of a Redis stream (--quick 10,000) through a bare
                     XREADGROUP+XACK loop (floor), one pool-source consumer process
                     (work(x, 200)), one and two (work(x, 20000)); entries/s and ratios;
                     skipped with a line when redis-server is not installed
  idle               CPU used by 8 idle workers over 2 s (target < 20 ms)
  wakeup             one item into an idle pool: p50/p99 latency over 10,000 tries
                     (target p99 <= 50 us)
  memory             peak RSS growth while 10,000,000 items stream through a bounded pool
Peers: sequential, rayon par_bridge and into_par_iter, crossbeam-channel bounded(100),
threadpool (execute per item), std sync_channel + Mutex, thread per item (<= N alive;
10,000 items, 3 reps). workforce runs at batch sizes 1, 64 (default) and 100.
Implementations interleave (A B C A B C ...); every run's folded sum must match the
sequential one or the run fails. A progress line goes to stderr.

Prints a table per (workload, workers) with the machine and date, the pool resources
and the BENCHMARKS.md targets met and missed (informational; speed never fails a run).
Writes report.json, report.md and <workload>-w<workers>.svg (a bar chart per table,
linked from report.md) to <target>/bench/ (<target>: $CARGO_TARGET_DIR or target/).";

/// Help for `cargo xtask ci`.
const CI_HELP: &str = "\
Run the whole CI sequence. Every step runs even when an earlier one failed;
the summary lists each step with its elapsed time, and the command exits
non-zero if any step failed.

Steps:
  lint (fmt, code map, clippy,    see `cargo xtask lint --help`
        doc, deny)
  redis-server                    installed when possible (see `cargo xtask test --help`)
  cargo test --workspace --all-features
  cargo test --workspace --all-features --doc
  cargo check --workspace --all-targets   (the default build, features off)
  loom                            see `cargo xtask loom --help`
  valgrind                        see `cargo xtask valgrind --help` (skipped when
                                  valgrind is not installed)
  bench --quick                   see `cargo xtask bench --help`";

/// Flags of `cargo xtask bench`, validated here and passed on to `peer-bench`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Args)]
pub(crate) struct BenchArgs {
    /// a smoke test in seconds (CI): N/20 items, one repetition, no warm-up,
    /// idle 0.5 s, 1,000 wake-up tries, 1,000,000 items for memory;
    /// asserts nothing about speed
    #[arg(long, verbatim_doc_comment)]
    pub(crate) quick: bool,
    /// run only W: W1..W9, W11, W12 or a name above (overhead, cpu, seed,
    /// keyed, skewed, multi-producer, lines, heavy-tail, calls, resize,
    /// broker, idle, wakeup, memory); default: all
    #[arg(long, value_name = "W", value_parser = normalise_workload, verbatim_doc_comment)]
    pub(crate) workload: Option<String>,
    /// run only at N workers (also the pool size for idle, wakeup and
    /// memory); default: the number of cores and 8 (idle/wakeup/memory: 8)
    #[arg(long, value_name = "N", value_parser = at_least_one, verbatim_doc_comment)]
    pub(crate) workers: Option<usize>,
    /// repetitions per implementation for every row (default 5; W3 and
    /// thread per item 3; --quick 1)
    #[arg(long, value_name = "N", value_parser = at_least_one, verbatim_doc_comment)]
    pub(crate) reps: Option<usize>,
    /// only implementations whose name contains TEXT (for profiling);
    /// skips idle, wakeup and memory
    #[arg(long, value_name = "TEXT", verbatim_doc_comment)]
    pub(crate) only: Option<String>,
    /// also print the JSON report to stdout
    #[arg(long)]
    pub(crate) json: bool,
}

impl BenchArgs {
    /// The arguments for `peer-bench`, in its own flag syntax.
    pub(crate) fn to_peer_bench_args(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.quick {
            out.push("--quick".to_owned());
        }
        let valued = [
            ("--workload", self.workload.clone()),
            ("--workers", self.workers.map(|n| n.to_string())),
            ("--reps", self.reps.map(|n| n.to_string())),
            ("--only", self.only.clone()),
        ];
        for (flag, value) in valued {
            if let Some(value) = value {
                out.extend([flag.to_owned(), value]);
            }
        }
        if self.json {
            out.push("--json".to_owned());
        }
        out
    }
}

/// Flags of `cargo xtask stress`: each, when given, becomes an environment
/// variable of the stress test.
#[derive(Debug, Clone, Default, PartialEq, Eq, Args)]
pub(crate) struct StressArgs {
    /// run N scripts (N >= 1): WORKFORCE_SCRIPTS=N
    #[arg(long, value_name = "N", value_parser = at_least_one)]
    pub(crate) scripts: Option<usize>,
    /// the seed of the first script (a whole number): WORKFORCE_SEED=S;
    /// with --seed alone, only that one script runs (to replay a failure)
    #[arg(long, value_name = "S", verbatim_doc_comment)]
    pub(crate) seed: Option<u64>,
}

impl StressArgs {
    /// The environment variables to set for the stress test.
    pub(crate) fn env(&self) -> Vec<(&'static str, String)> {
        let scripts = self.scripts.map(|n| ("WORKFORCE_SCRIPTS", n.to_string()));
        let seed = self.seed.map(|s| ("WORKFORCE_SEED", s.to_string()));
        scripts.into_iter().chain(seed).collect()
    }
}

/// Accepts a workload's id or name in any case (`W4`, `keyed`, `multi-producer`)
/// and returns its id, or a resource measurement's name (`idle`, `wakeup`,
/// `memory`).
fn normalise_workload(value: &str) -> Result<String, String> {
    let id = match value.to_ascii_lowercase().replace('_', "-").as_str() {
        "w1" | "overhead" => "W1",
        "w2" | "cpu" => "W2",
        "w3" | "seed" => "W3",
        "w4" | "keyed" => "W4",
        "w5" | "skewed" => "W5",
        "w6" | "multi-producer" | "multiproducer" => "W6",
        "w7" | "lines" => "W7",
        "w8" | "heavy-tail" | "heavytail" => "W8",
        "w9" | "calls" => "W9",
        "w11" | "resize" => "W11",
        "w12" | "broker" => "W12",
        "idle" => "idle",
        "wakeup" | "wake-up" => "wakeup",
        "memory" => "memory",
        _ => {
            return Err(
                "expected W1 (overhead), W2 (cpu), W3 (seed), W4 (keyed), W5 (skewed), \
                        W6 (multi-producer), W7 (lines), W8 (heavy-tail), W9 (calls), W11 (resize), \
                        W12 (broker), idle, wakeup or memory"
                    .to_owned(),
            );
        }
    };
    Ok(id.to_owned())
}

/// Parses a count that must be at least 1.
fn at_least_one(value: &str) -> Result<usize, String> {
    match value.parse() {
        Ok(0) => Err("must be at least 1".to_owned()),
        Ok(count) => Ok(count),
        Err(_) => Err("expected a positive whole number".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;
    use clap::error::ErrorKind;

    use super::*;

    /// Parses `cargo xtask <args>` into its command.
    fn parse(args: &[&str]) -> Result<Option<Command>, clap::Error> {
        Cli::try_parse_from(std::iter::once("cargo-xtask").chain(args.iter().copied()))
            .map(|cli| cli.command)
    }

    /// The rendered error for `cargo xtask <args>`, which must fail to parse.
    fn error(args: &[&str]) -> (ErrorKind, String) {
        let error = parse(args).expect_err("bad input is rejected");
        (error.kind(), error.render().to_string())
    }

    #[test]
    fn the_command_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn commands_without_flags_parse() {
        assert_eq!(parse(&[]).expect("no command parses"), None);
        let simple = [
            ("lint", Command::Lint),
            ("test", Command::Test),
            ("loom", Command::Loom),
            ("valgrind", Command::Valgrind),
            ("ci", Command::Ci),
            ("bench", Command::Bench(BenchArgs::default())),
            ("stress", Command::Stress(StressArgs::default())),
        ];
        for (name, expected) in simple {
            assert_eq!(parse(&[name]).expect(name), Some(expected));
        }
    }

    #[test]
    fn bench_flags_round_trip_to_peer_bench() {
        let parsed = parse(&[
            "bench",
            "--quick",
            "--workload=cpu",
            "--workers",
            "3",
            "--reps=2",
            "--only=workforce",
            "--json",
        ])
        .expect("valid flags parse");
        let Some(Command::Bench(bench)) = parsed else {
            panic!("expected a bench command, got {parsed:?}");
        };
        let expected = "--quick --workload W2 --workers 3 --reps 2 --only workforce --json";
        assert_eq!(bench.to_peer_bench_args().join(" "), expected);
    }

    #[test]
    fn stress_flags_become_environment_variables() {
        let parsed = parse(&["stress", "--scripts=200", "--seed", "7"]).expect("valid flags");
        let Some(Command::Stress(stress)) = parsed else {
            panic!("expected a stress command, got {parsed:?}");
        };
        let expected = [("WORKFORCE_SCRIPTS", "200"), ("WORKFORCE_SEED", "7")];
        assert_eq!(stress.env(), expected.map(|(k, v)| (k, v.to_owned())));
    }

    #[test]
    fn every_workload_and_measurement_is_accepted() {
        let cases = [
            ("w3", "W3"),
            ("seed", "W3"),
            ("Multi-Producer", "W6"),
            ("multi_producer", "W6"),
            ("idle", "idle"),
            ("wake-up", "wakeup"),
            ("memory", "memory"),
            ("calls", "W9"),
            ("resize", "W11"),
            ("broker", "W12"),
        ];
        for (given, expected) in cases {
            assert_eq!(normalise_workload(given).as_deref(), Ok(expected));
        }
    }

    #[test]
    fn help_is_offered_for_every_command() {
        for name in ["lint", "test", "loom", "valgrind", "stress", "bench", "ci"] {
            let (kind, text) = error(&[name, "--help"]);
            assert_eq!(kind, ErrorKind::DisplayHelp, "{name}");
            assert!(
                text.contains(&format!("Usage: cargo xtask {name}")),
                "{text}"
            );
        }
        let (_, bench) = error(&["bench", "--help"]);
        assert!(
            bench.contains("BENCHMARKS.md at the\nrepository root"),
            "{bench}"
        );
        assert!(bench.contains("--workload <W>"), "{bench}");
        let (_, main) = error(&["--help"]);
        assert!(main.contains("valgrind"), "{main}");
    }

    #[test]
    fn an_unknown_flag_is_named_in_the_error() {
        let (kind, text) = error(&["stress", "--fast"]);
        assert_eq!(kind, ErrorKind::UnknownArgument);
        assert!(text.contains("unexpected argument '--fast'"), "{text}");
        assert!(text.contains("Usage: cargo xtask stress"), "{text}");
        let (kind, _) = error(&["lint", "--fix"]);
        assert_eq!(kind, ErrorKind::UnknownArgument);
    }

    #[test]
    fn bad_values_are_rejected() {
        let (_, text) = error(&["bench", "--workers", "0"]);
        assert!(
            text.contains("'0' for '--workers <N>': must be at least 1"),
            "{text}"
        );
        let (_, text) = error(&["bench", "--workload", "W10"]);
        assert!(
            text.contains("'W10' for '--workload <W>': expected W1"),
            "{text}"
        );
        for bad in [
            &["bench", "--workers"][..],
            &["valgrind", "--all"],
            &["stress", "--scripts", "0"],
            &["stress", "--seed", "-1"],
            &["stress", "--seed"],
            &["deploy"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}
