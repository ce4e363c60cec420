//! `peer-bench`: workforce against its peers on the workloads of BENCHMARKS.md.
//!
//! Runs W1 (`overhead`), W2 (`cpu`), W4 (`keyed`) and W5 (`skewed`) at
//! workers = cores and workers = 8 for the sequential floor, rayon
//! (`par_bridge` and, for context, `into_par_iter`), a crossbeam-channel
//! `bounded(100)` pool and workforce at batch sizes 1, 64 and 100, stealing
//! and (W4, W5) keyed. Implementations are interleaved (A B C A B C …) so drift in the
//! machine's speed hits all of them alike. Every run's folded sum is checked
//! against the sequential result; a mismatch fails the whole run.
//!
//! Prints one table per (workload, workers) and writes `target/bench/report.json`
//! and `target/bench/report.md`. Speed targets are reported, never enforced.
//!
//! Run it through `cargo xtask bench` (see `--help`).

mod impls;
mod report;
mod system;
mod workload;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};

use crate::impls::{Implementation, implementations_for};
use crate::report::{Report, TIMING_NOTE, Table};
use crate::system::SystemInfo;
use crate::workload::{ALL_WORKLOADS, QUICK_DIVISOR, Workload};

/// Worker count always measured besides the number of cores (the seed's setting).
const OVERSUBSCRIBED_WORKERS: usize = 8;

/// Default timed repetitions per implementation.
const DEFAULT_REPS: usize = 5;

/// Help text for `--help`.
const HELP: &str = "\
peer-bench: workforce against sequential, rayon and crossbeam-channel (BENCHMARKS.md W1, W2, W4, W5)

Usage: peer-bench [--quick] [--workload W] [--workers N] [--reps N] [--json]

  --quick          1 repetition and N/20 items; a smoke test
  --workload W     only W1 (overhead), W2 (cpu), W4 (keyed) or W5 (skewed); default: all
  --workers N      only N workers; default: the number of cores and 8
  --reps N         timed repetitions per implementation (default 5, --quick: 1)
  --only TEXT      only implementations whose name contains TEXT (for profiling;
                   without `sequential` the floor is n/a)
  --json           also print the JSON report to stdout
  -h, --help       print this help

Writes <target>/bench/report.json and report.md, where <target> is
$CARGO_TARGET_DIR or <workspace>/target.";

/// Parsed command-line options.
#[derive(Debug, Clone, Default)]
struct Options {
    /// Reduced sizes, one repetition, no warm-up.
    quick: bool,
    /// Only this workload.
    workload: Option<Workload>,
    /// Only this worker count.
    workers: Option<usize>,
    /// Timed repetitions per implementation.
    reps: Option<usize>,
    /// Also print the JSON report to stdout.
    json: bool,
    /// Only implementations whose name contains this text.
    only: Option<String>,
}

/// Runs the benchmark and maps failure to a non-zero exit code.
fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let options = match parse_args(&args) {
        Ok(Some(options)) => options,
        Ok(None) => {
            println!("{HELP}");
            return ExitCode::SUCCESS;
        }
        Err(error) => {
            eprintln!("peer-bench: {error:#}\n\n{HELP}");
            return ExitCode::from(2);
        }
    };
    match run(&options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("peer-bench: FAILED: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Parses the arguments; `Ok(None)` means help was asked for.
fn parse_args(args: &[String]) -> anyhow::Result<Option<Options>> {
    let mut options = Options::default();
    let mut remaining = args.iter();
    while let Some(arg) = remaining.next() {
        let (flag, inline_value) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => (flag, Some(value.to_owned())),
            _ => (arg.as_str(), None),
        };
        let mut value = || {
            inline_value
                .clone()
                .or_else(|| remaining.next().cloned())
                .with_context(|| format!("`{flag}` needs a value"))
        };
        match flag {
            "-h" | "--help" => return Ok(None),
            "--quick" => options.quick = true,
            "--json" => options.json = true,
            "--workload" => {
                let text = value()?;
                options.workload = Some(Workload::find(&text).with_context(|| {
                    format!("unknown workload `{text}`: expected W1, W2, W4 or W5")
                })?);
            }
            "--workers" => options.workers = Some(positive(flag, &value()?)?),
            "--reps" => options.reps = Some(positive(flag, &value()?)?),
            "--only" => options.only = Some(value()?),
            other => bail!("unknown argument `{other}`"),
        }
    }
    Ok(Some(options))
}

/// Parses a count that must be at least 1.
fn positive(flag: &str, text: &str) -> anyhow::Result<usize> {
    match text.parse::<usize>() {
        Ok(0) | Err(_) => bail!("`{flag}` expects a positive integer, got `{text}`"),
        Ok(count) => Ok(count),
    }
}

/// Measures every selected (workload, workers), prints and writes the report.
fn run(options: &Options) -> anyhow::Result<()> {
    let system = SystemInfo::detect();
    let reps = options
        .reps
        .unwrap_or(if options.quick { 1 } else { DEFAULT_REPS });
    let workloads: Vec<Workload> = match options.workload {
        Some(workload) => vec![workload],
        None => ALL_WORKLOADS.to_vec(),
    };
    let worker_counts: Vec<usize> = match options.workers {
        Some(workers) => vec![workers],
        None if system.cores == OVERSUBSCRIBED_WORKERS => vec![system.cores],
        None => vec![system.cores, OVERSUBSCRIBED_WORKERS],
    };

    println!(
        "peer-bench: {} cores, {}, {}{}",
        system.cores,
        system.cpu_model,
        system.date,
        if options.quick {
            format!(" (quick: N/{QUICK_DIVISOR}, no warm-up)")
        } else {
            String::new()
        }
    );
    println!("timing: {TIMING_NOTE}");
    println!();

    let mut tables = Vec::new();
    for base_workload in workloads {
        let workload = if options.quick {
            base_workload.quick()
        } else {
            base_workload
        };
        let expected_sum = workload.expected_sum();
        for &workers in &worker_counts {
            let implementations: Vec<Implementation> = implementations_for(&workload)
                .iter()
                .copied()
                .filter(|implementation| {
                    options
                        .only
                        .as_ref()
                        .is_none_or(|only| implementation.name().contains(only.as_str()))
                })
                .collect();
            let table = measure(
                &workload,
                &implementations,
                workers,
                reps,
                !options.quick,
                expected_sum,
                &system,
            )?;
            println!("{}", table.to_text(reps));
            tables.push(table);
        }
    }

    let targets = report::check_targets(&tables);
    let report = Report {
        system,
        quick: options.quick,
        reps,
        timing: TIMING_NOTE,
        tables,
        targets,
    };
    print!("{}", report.targets_text());

    let json = serde_json::to_string_pretty(&report).context("serialising the report")?;
    let out_dir = target_dir().join("bench");
    std::fs::create_dir_all(&out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    write_file(&out_dir.join("report.json"), &json)?;
    write_file(&out_dir.join("report.md"), &report.to_markdown())?;
    println!();
    println!(
        "wrote {} and report.md",
        out_dir.join("report.json").display()
    );
    if options.json {
        println!("{json}");
    }
    Ok(())
}

/// Runs every implementation `reps` times, interleaved, at `workers` threads,
/// checking each run's sum against `expected_sum`.
fn measure(
    workload: &Workload,
    implementations: &[Implementation],
    workers: usize,
    reps: usize,
    warm_up: bool,
    expected_sum: u64,
    system: &SystemInfo,
) -> anyhow::Result<Table> {
    // Built once and outside the timing, like the other pools' threads.
    let rayon_pool = rayon::ThreadPoolBuilder::new()
        .num_threads(workers)
        .build()
        .context("building the rayon thread pool")?;
    let label = format!("[{} workers={workers}]", workload.id);

    if warm_up {
        for &implementation in implementations {
            eprintln!("{label} warm-up {}", implementation.name());
            let run = implementation.run(workload, workers, &rayon_pool)?;
            check_sum(implementation, workload, workers, run.sum, expected_sum)?;
        }
    }

    let mut samples: Vec<(Implementation, Vec<f64>)> = implementations
        .iter()
        .map(|implementation| (*implementation, Vec::with_capacity(reps)))
        .collect();
    for rep in 1..=reps {
        for (implementation, values) in &mut samples {
            eprintln!("{label} rep {rep}/{reps} {}", implementation.name());
            let run = implementation.run(workload, workers, &rayon_pool)?;
            check_sum(*implementation, workload, workers, run.sum, expected_sum)?;
            values.push(run.elapsed.as_nanos() as f64 / workload.n_items as f64);
        }
    }
    Ok(Table::new(workload, workers, system.cores, samples))
}

/// Fails, naming the implementation and workload, when a run's sum is wrong.
fn check_sum(
    implementation: Implementation,
    workload: &Workload,
    workers: usize,
    sum: u64,
    expected_sum: u64,
) -> anyhow::Result<()> {
    if sum != expected_sum {
        bail!(
            "{} on {workload} (workers={workers}) folded sum {sum:#018x}, expected {expected_sum:#018x}: \
             items were skipped or processed twice",
            implementation.name()
        );
    }
    Ok(())
}

/// The cargo target directory: `$CARGO_TARGET_DIR` (relative to the current
/// directory, as cargo reads it) or `<workspace root>/target`.
fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                std::env::current_dir().map_or(dir.clone(), |cwd| cwd.join(&dir))
            }
        }
        _ => {
            let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
            manifest_dir.parent().unwrap_or(manifest_dir).join("target")
        }
    }
}

/// Writes `contents` to `path`, saying which file failed.
fn write_file(path: &Path, contents: &str) -> anyhow::Result<()> {
    std::fs::write(path, contents).with_context(|| format!("writing {}", path.display()))
}
