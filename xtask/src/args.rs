//! Hand-written command-line parsing and the help texts.
//!
//! The set of flags is small and stable, so a parser dependency would cost more
//! build time than it saves code.

use anyhow::{Context as _, bail};

/// Help for `cargo xtask` itself.
pub(crate) const MAIN_HELP: &str = "\
Project automation for the workforce workspace.

Usage: cargo xtask <COMMAND> [FLAGS]

Commands:
  lint      rustfmt check, clippy (-D warnings), rustdoc (-D warnings), cargo-deny if installed
  loom      exhaustive loom model tests of pool-core (release, --cfg loom, own target dir)
  valgrind  valgrind memcheck over a chosen subset of the pool-core tests (release build)
  stress    the random-script stress test of pool-core, with a chosen number of scripts
            and seed (--scripts N, --seed S)
  bench     the peer comparison of BENCHMARKS.md (W1-W6 against sequential, rayon,
            crossbeam-channel, threadpool, std mpsc and thread-per-item) and the pool's
            idle CPU, wake-up latency and memory
  ci        lint, tests, doc tests, loom, valgrind and `bench --quick`; reports every step
  help      print this help

Run `cargo xtask <COMMAND> --help` for the flags of one command.";

/// Help for `cargo xtask lint`.
const LINT_HELP: &str = "\
Run every lint step and report all failures at the end.

Usage: cargo xtask lint

Steps (each runs even when an earlier one failed):
  1. cargo fmt --all --check
  2. cargo clippy --workspace --all-targets -- -D warnings
  3. cargo doc --workspace --no-deps            (RUSTDOCFLAGS=\"-D warnings\")
  4. cargo deny check licenses bans sources     (with the root deny.toml; skipped when
                                                cargo-deny is not installed)

Flags:
  -h, --help    print this help";

/// Help for `cargo xtask loom`.
const LOOM_HELP: &str = "\
Run the loom model tests of pool-core.

Usage: cargo xtask loom

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
much longer.

Flags:
  -h, --help    print this help";

/// Help for `cargo xtask valgrind`.
const VALGRIND_HELP: &str = "\
Run valgrind memcheck over a subset of the pool-core tests.

Usage: cargo xtask valgrind

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
`cargo xtask ci` the step is skipped when valgrind is missing.

Flags:
  -h, --help    print this help";

/// Help for `cargo xtask stress`.
const STRESS_HELP: &str = "\
Run the random-script stress test of pool-core.

Usage: cargo xtask stress [--scripts N] [--seed S]

Runs `cargo test --release -p pool-core --test random_scripts_keep_the_invariant`,
which builds pools from random scripts (settings, producers, errors, panics,
cancellation, close) and checks that every item is accounted for. The flags become
the environment variables that test reads:
  --scripts N   WORKFORCE_SCRIPTS=N: run N scripts (N >= 1)
  --seed S      WORKFORCE_SEED=S: the first seed (a whole number); with --seed alone,
                only that one script runs (to replay a failure)
Without flags the test runs its default number of scripts from seed 0 (or what those
variables already say in the environment). A failing script prints its seed.

Flags:
      --scripts N   how many scripts to run
      --seed S      the seed of the first script
  -h, --help        print this help";

/// Help for `cargo xtask bench`.
const BENCH_HELP: &str = "\
Build and run the peer comparison of BENCHMARKS.md (package workforce-benches, binary
peer-bench) in release mode.

Usage: cargo xtask bench [FLAGS]

What it runs (default: everything, at workers = cores and workers = 8):
  W1 overhead        1,000,000 trivial items: the pool's own cost per item
  W2 cpu             200,000 CPU-bound items (200 xorshift rounds): scaling
  W3 seed            1,000,000 go-pkgz/pool benchmark tasks (a Vec of 1000 pushes each);
                     floor = a static split; 3 reps, no warm-up
  W4 keyed           W1 with key x % 1024: routing cost, per-key order checked
  W5 skewed          W2 with every 100th item 100x heavier: stealing vs static routing
  W6 multi-producer  W1 from 4 producer threads (cloned Senders, a Submitter each)
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
Writes target/bench/report.json, report.md and <workload>-w<workers>.svg (a bar chart
per table, linked from report.md).

Flags:
      --quick          a smoke test in seconds (CI): N/20 items, one repetition, no warm-up,
                       idle 0.5 s, 1,000 wake-up tries, 1,000,000 items for memory;
                       asserts nothing about speed
      --workload W     run only W: W1..W6 or a name above (overhead, cpu, seed, keyed,
                       skewed, multi-producer, idle, wakeup, memory); default: all
      --workers N      run only at N workers (also the pool size for idle, wakeup and
                       memory); default: the number of cores and 8 (idle/wakeup/memory: 8)
      --reps N         repetitions per implementation for every row (default 5; W3 and
                       thread per item 3; --quick 1)
      --only TEXT      only implementations whose name contains TEXT (for profiling);
                       skips idle, wakeup and memory
      --json           also print the JSON report to stdout
  -h, --help           print this help";

/// Help for `cargo xtask ci`.
const CI_HELP: &str = "\
Run the whole CI sequence. Every step runs even when an earlier one failed;
the summary lists each step with its elapsed time, and the command exits
non-zero if any step failed.

Usage: cargo xtask ci

Steps:
  lint (fmt, clippy, doc, deny)   see `cargo xtask lint --help`
  cargo test --workspace
  cargo test --workspace --doc
  loom                            see `cargo xtask loom --help`
  valgrind                        see `cargo xtask valgrind --help` (skipped when
                                  valgrind is not installed)
  bench --quick                   see `cargo xtask bench --help`

Flags:
  -h, --help    print this help";

/// A command to run, with its parsed flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Command {
    /// `cargo xtask lint`.
    Lint,
    /// `cargo xtask loom`.
    Loom,
    /// `cargo xtask valgrind`.
    Valgrind,
    /// `cargo xtask stress …`.
    Stress(StressArgs),
    /// `cargo xtask bench …`.
    Bench(BenchArgs),
    /// `cargo xtask ci`.
    Ci,
}

/// What the command line asks for: run a command, or print a help text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ParseOutcome {
    /// Run this command.
    Run(Command),
    /// Print this help text and exit successfully.
    Help(&'static str),
}

/// Flags of `cargo xtask bench`, validated here and passed on to `peer-bench`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct BenchArgs {
    /// Reduced size and one repetition.
    pub(crate) quick: bool,
    /// Only this workload (`W1` … `W6`, `idle`, `wakeup` or `memory`), when given.
    pub(crate) workload: Option<String>,
    /// Only this worker count, when given.
    pub(crate) workers: Option<usize>,
    /// Repetitions per implementation, when given.
    pub(crate) reps: Option<usize>,
    /// Also print the JSON report to stdout.
    pub(crate) json: bool,
    /// Only implementations whose name contains this text, when given.
    pub(crate) only: Option<String>,
}

impl BenchArgs {
    /// The arguments for `peer-bench`, in its own flag syntax.
    pub(crate) fn to_peer_bench_args(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.quick {
            out.push("--quick".to_owned());
        }
        if let Some(workload) = &self.workload {
            out.push("--workload".to_owned());
            out.push(workload.clone());
        }
        if let Some(workers) = self.workers {
            out.push("--workers".to_owned());
            out.push(workers.to_string());
        }
        if let Some(reps) = self.reps {
            out.push("--reps".to_owned());
            out.push(reps.to_string());
        }
        if let Some(only) = &self.only {
            out.push("--only".to_owned());
            out.push(only.clone());
        }
        if self.json {
            out.push("--json".to_owned());
        }
        out
    }
}

/// Flags of `cargo xtask stress`: each, when given, becomes an environment
/// variable of the stress test.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct StressArgs {
    /// How many scripts to run (`WORKFORCE_SCRIPTS`), when given.
    pub(crate) scripts: Option<u64>,
    /// The seed of the first script (`WORKFORCE_SEED`), when given.
    pub(crate) seed: Option<u64>,
}

impl StressArgs {
    /// The environment variables to set for the stress test.
    pub(crate) fn env(&self) -> Vec<(&'static str, String)> {
        let mut vars = Vec::new();
        if let Some(scripts) = self.scripts {
            vars.push(("WORKFORCE_SCRIPTS", scripts.to_string()));
        }
        if let Some(seed) = self.seed {
            vars.push(("WORKFORCE_SEED", seed.to_string()));
        }
        vars
    }
}

/// Parses the arguments after `cargo xtask`.
pub(crate) fn parse(raw_args: &[String]) -> anyhow::Result<ParseOutcome> {
    let Some((name, rest)) = raw_args.split_first() else {
        return Ok(ParseOutcome::Help(MAIN_HELP));
    };
    let help = match name.as_str() {
        "help" | "-h" | "--help" => return Ok(ParseOutcome::Help(MAIN_HELP)),
        "lint" => LINT_HELP,
        "loom" => LOOM_HELP,
        "ci" => CI_HELP,
        "valgrind" => VALGRIND_HELP,
        "stress" => STRESS_HELP,
        "bench" => BENCH_HELP,
        other => bail!("unknown command `{other}`"),
    };
    if rest.iter().any(|arg| arg == "-h" || arg == "--help") {
        return Ok(ParseOutcome::Help(help));
    }
    if !matches!(name.as_str(), "bench" | "stress")
        && let Some(extra) = rest.first()
    {
        bail!("`{name}` takes no arguments, got `{extra}` (see `cargo xtask {name} --help`)");
    }
    let command = match name.as_str() {
        "lint" => Command::Lint,
        "loom" => Command::Loom,
        "ci" => Command::Ci,
        "valgrind" => Command::Valgrind,
        "stress" => Command::Stress(parse_stress(rest)?),
        _ => Command::Bench(parse_bench(rest)?),
    };
    Ok(ParseOutcome::Run(command))
}

/// Parses the flags of `stress`. Accepts both `--flag value` and `--flag=value`.
fn parse_stress(rest: &[String]) -> anyhow::Result<StressArgs> {
    let mut parsed = StressArgs::default();
    let mut remaining = rest.iter();
    while let Some(arg) = remaining.next() {
        let (flag, inline_value) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => (flag, Some(value.to_owned())),
            _ => (arg.as_str(), None),
        };
        let value = match inline_value {
            Some(value) => value,
            None => match flag {
                "--scripts" | "--seed" => remaining
                    .next()
                    .cloned()
                    .with_context(|| format!("`{flag}` needs a value (a whole number)"))?,
                other => {
                    bail!("unknown flag `{other}` for `stress` (see `cargo xtask stress --help`)")
                }
            },
        };
        match flag {
            "--scripts" => {
                let scripts = parse_positive(flag, &value)?;
                parsed.scripts = Some(u64::try_from(scripts).context("`--scripts` is too large")?);
            }
            "--seed" => {
                parsed.seed =
                    Some(value.parse().with_context(|| {
                        format!("`--seed` expects a whole number, got `{value}`")
                    })?)
            }
            other => bail!("unknown flag `{other}` for `stress` (see `cargo xtask stress --help`)"),
        }
    }
    Ok(parsed)
}

/// Parses the flags of `bench`. Accepts both `--flag value` and `--flag=value`.
fn parse_bench(rest: &[String]) -> anyhow::Result<BenchArgs> {
    let mut parsed = BenchArgs::default();
    let mut remaining = rest.iter();
    while let Some(arg) = remaining.next() {
        let (flag, inline_value) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => (flag, Some(value.to_owned())),
            _ => (arg.as_str(), None),
        };
        // Fetches the flag's value from `--flag=value` or from the next argument.
        let mut value = |what: &str| -> anyhow::Result<String> {
            match inline_value.clone() {
                Some(value) => Ok(value),
                None => remaining
                    .next()
                    .cloned()
                    .with_context(|| format!("`{flag}` needs a value ({what})")),
            }
        };
        match flag {
            "--quick" => parsed.quick = true,
            "--json" => parsed.json = true,
            "--workload" => {
                parsed.workload = Some(normalise_workload(&value(
                    "W1..W6, idle, wakeup or memory",
                )?)?)
            }
            "--only" => parsed.only = Some(value("part of an implementation's name")?),
            "--workers" => parsed.workers = Some(parse_positive(flag, &value("a worker count")?)?),
            "--reps" => parsed.reps = Some(parse_positive(flag, &value("a repetition count")?)?),
            other => bail!("unknown flag `{other}` for `bench` (see `cargo xtask bench --help`)"),
        }
    }
    Ok(parsed)
}

/// Accepts a workload's id or name in any case (`W4`, `keyed`, `multi-producer`)
/// and returns its id, or a resource measurement's name (`idle`, `wakeup`,
/// `memory`).
fn normalise_workload(value: &str) -> anyhow::Result<String> {
    let id = match value.to_ascii_lowercase().replace('_', "-").as_str() {
        "w1" | "overhead" => "W1",
        "w2" | "cpu" => "W2",
        "w3" | "seed" => "W3",
        "w4" | "keyed" => "W4",
        "w5" | "skewed" => "W5",
        "w6" | "multi-producer" | "multiproducer" => "W6",
        "idle" => "idle",
        "wakeup" | "wake-up" => "wakeup",
        "memory" => "memory",
        _ => bail!(
            "unknown workload `{value}`: expected W1 (overhead), W2 (cpu), W3 (seed), W4 (keyed), \
             W5 (skewed), W6 (multi-producer), idle, wakeup or memory"
        ),
    };
    Ok(id.to_owned())
}

/// Parses a count that must be at least 1.
fn parse_positive(flag: &str, value: &str) -> anyhow::Result<usize> {
    let parsed: usize = value
        .parse()
        .with_context(|| format!("`{flag}` expects a positive integer, got `{value}`"))?;
    if parsed == 0 {
        bail!("`{flag}` must be at least 1");
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Turns string literals into the owned arguments `parse` takes.
    fn owned(args: &[&str]) -> Vec<String> {
        args.iter().map(|arg| (*arg).to_owned()).collect()
    }

    #[test]
    fn bench_flags_round_trip_to_peer_bench() {
        let outcome = parse(&owned(&[
            "bench",
            "--quick",
            "--workload=cpu",
            "--workers",
            "3",
            "--only=workforce",
            "--json",
        ]))
        .expect("valid flags parse");
        let ParseOutcome::Run(Command::Bench(bench)) = outcome else {
            panic!("expected a bench command, got {outcome:?}");
        };
        assert_eq!(
            bench.to_peer_bench_args(),
            owned(&[
                "--quick",
                "--workload",
                "W2",
                "--workers",
                "3",
                "--only",
                "workforce",
                "--json"
            ])
        );
    }

    #[test]
    fn stress_flags_become_environment_variables() {
        let outcome =
            parse(&owned(&["stress", "--scripts=200", "--seed", "7"])).expect("valid flags parse");
        let ParseOutcome::Run(Command::Stress(stress)) = outcome else {
            panic!("expected a stress command, got {outcome:?}");
        };
        assert_eq!(
            stress.env(),
            vec![
                ("WORKFORCE_SCRIPTS", "200".to_owned()),
                ("WORKFORCE_SEED", "7".to_owned())
            ]
        );
        let outcome = parse(&owned(&["stress"])).expect("no flags parse");
        assert_eq!(
            outcome,
            ParseOutcome::Run(Command::Stress(StressArgs::default()))
        );
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
        ];
        for (given, expected) in cases {
            assert_eq!(normalise_workload(given).expect(given), expected);
        }
    }

    #[test]
    fn help_is_offered_for_every_command() {
        for name in ["lint", "loom", "valgrind", "stress", "bench", "ci"] {
            let outcome = parse(&owned(&[name, "--help"])).expect("help parses");
            assert!(
                matches!(outcome, ParseOutcome::Help(_)),
                "{name}: {outcome:?}"
            );
        }
    }

    #[test]
    fn bad_input_is_rejected() {
        assert!(parse(&owned(&["bench", "--workers", "0"])).is_err());
        assert!(parse(&owned(&["bench", "--workload", "W9"])).is_err());
        assert!(parse(&owned(&["bench", "--workers"])).is_err());
        assert!(parse(&owned(&["lint", "--fix"])).is_err());
        assert!(parse(&owned(&["valgrind", "--all"])).is_err());
        assert!(parse(&owned(&["stress", "--scripts", "0"])).is_err());
        assert!(parse(&owned(&["stress", "--seed", "-1"])).is_err());
        assert!(parse(&owned(&["stress", "--seed"])).is_err());
        assert!(parse(&owned(&["stress", "--fast"])).is_err());
        assert!(parse(&owned(&["deploy"])).is_err());
    }
}
