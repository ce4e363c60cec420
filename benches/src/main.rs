//! `peer-bench`: workforce against its peers on the workloads of BENCHMARKS.md.
//!
//! Runs W7 (`lines`, a generated access log parsed and counted; its own
//! runner in [`lines`], reporting wall time, CPU time and context switches)
//! first, W9 (`calls`, async callers awaiting per-call results; its own
//! runner in [`calls`]) next, W10 (`tree`, a tree of 1,000,000 nodes expanded
//! from one root: `ctx.spawn` against rayon's `scope.spawn`; its own runner in
//! [`tree`]) after it, then W1 (`overhead`), W2 (`cpu`), W3 (`seed`), W4 (`keyed`), W5 (`skewed`),
//! W6 (`multi-producer`) and W8 (`heavy-tail`) at workers = cores and workers = 8 for the
//! sequential floor (and W3's static split), rayon (`par_bridge` and, for
//! context, `into_par_iter`), a crossbeam-channel `bounded(100)` pool, the
//! threadpool crate, the textbook std `sync_channel` + `Mutex` pool, a thread
//! per item with a limit, and workforce at batch sizes 1, 64 and 100 (keyed,
//! metrics modes, middleware stacks and `Sender`s where a workload asks for
//! them). Implementations are interleaved (A B C A B C …) so drift in the
//! machine's speed hits all of them alike. Every run's folded sum is checked
//! against the sequential result; a mismatch fails the whole run.
//!
//! Then it measures what an idle workforce pool costs: CPU while idle, the
//! latency of waking it, and memory while 10,000,000 items stream through.
//!
//! Prints one table per (workload, workers) and writes `target/bench/report.json`,
//! `report.md` and one SVG chart per table. Speed targets are reported, never
//! enforced.
//!
//! Run it through `cargo xtask bench` (see `--help`).

mod broker;
mod calls;
mod calls_workforce;
mod chart;
mod impls;
mod lines;
mod peers;
mod procfs;
mod progress;
mod report;
mod resize;
mod resources;
mod rng;
mod rusage;
mod system;
mod table;
mod tree;
mod workload;

use std::collections::HashMap;
use std::collections::hash_map::Entry as MapEntry;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context as _, bail};

use crate::calls::{ALL_CALLS_IMPLS, CallsImpl, CallsRow, CallsTable};
use crate::impls::{
    Implementation, MULTI_PRODUCER_OMITTED, Setting, THREAD_PER_ITEM_BENCHMARKS_MD_ITEMS,
    THREAD_PER_ITEM_ITEMS, implementations_for,
};
use crate::lines::{ALL_LINES_IMPLS, LinesImpl, LinesSamples, LinesTable};
use crate::progress::Progress;
use crate::report::{Report, Samples, TIMING_NOTE, Table, thousands};
use crate::resources::{ALL_MEASUREMENTS, Measurement, Resources, Sizes};
use crate::system::SystemInfo;
use crate::tree::{ALL_TREE_IMPLS, TreeImpl, TreeRow, TreeTable};
use crate::workload::{ALL_WORKLOADS, QUICK_DIVISOR, Task, Workload};

/// Worker count always measured besides the number of cores (the seed's setting),
/// and the pool size of the resource measurements.
const OVERSUBSCRIBED_WORKERS: usize = 8;

/// Default timed repetitions per implementation.
const DEFAULT_REPS: usize = 5;

/// Help text for `--help`.
const HELP: &str = "\
peer-bench: workforce against its peers on the workloads of BENCHMARKS.md

Usage: peer-bench [--quick] [--workload W] [--workers N] [--reps N] [--only TEXT] [--json]

Peers: sequential (the floor), rayon par_bridge and into_par_iter, a crossbeam-channel
bounded(100) pool, threadpool (execute per item), the std sync_channel + Mutex pool
and a thread per item with at most N alive (10,000 items, 3 reps, no warm-up: each
thread costs 50-150 us here). W3 runs 3 reps, no warm-up (a run takes 1-2 s).
W7 (lines) runs first, at workers = cores only: a generated 100 MiB access log
(5 MiB under --quick, in a temp dir removed afterwards) read with BufReader::lines(),
parsed and counted per status and path in per-worker maps by sequential, rayon
par_bridge, a crossbeam-channel bounded(100) pool and a workforce pool fed by a
Submitter; wall time, CPU time and context switches (getrusage) per run.
W9 (calls) runs next, at workers = cores: tokio spawn_blocking, rayon spawn + oneshot
and a workforce call pool (capacity 64) answer awaited calls on a runtime of
`workers` threads; throughput, latency p50/p99, a 1 ms heartbeat's lateness, peak
threads and RSS, then RSS growth while 1,000,000 calls (50,000 under --quick) are
issued at once.
W10 (tree) runs next, at workers = cores: a balanced tree of 1,000,000 nodes (50,000
under --quick), 8 children per node, expanded from one root by a sequential walk,
rayon scope.spawn and workforce ctx.spawn; ns per node.
W11 (resize) runs next: Pool::set_workers between 1 and `workers` (at least 2), 400
times (40 under --quick), while 2 producers submit short items, for an unkeyed and a
keyed pool; mean, p50, p99 and max microseconds per resize.
W12 (broker) runs next: 200,000 entries (10,000 under --quick) of a Redis stream read
by a bare XREADGROUP + XACK loop (the floor), one pool-source consumer process with
work(x, 200), then one and two consumer processes with work(x, 20000); entries/s and
ratios. Needs redis-server on PATH (the bench starts its own); skipped with a line
saying so when it is missing.

  --quick          a smoke test in seconds: N/20 items, a 5 MiB log, 1 repetition,
                   no warm-up, idle 0.5 s, 1,000 wake-up tries, 1,000,000 items for memory
  --workload W     only one workload: W1 (overhead), W2 (cpu), W3 (seed), W4 (keyed),
                   W5 (skewed), W6 (multi-producer), W7 (lines: the access log),
                   W8 (heavy-tail: 300,000 items of log-normal cost, median ~100 ns,
                   tail to ~100 us), W9 (calls: 100,000 awaited calls from 64 tokio
                   tasks, BLAKE3 over 64 KiB each, then 1,000,000 issued at once),
                   W10 (tree: 1,000,000 nodes grown from one root, spawned from inside),
                   W11 (resize: set_workers under load, unkeyed and keyed),
                   W12 (broker: a Redis stream through pool-source consumers),
                   or one pool-resource measurement: idle (CPU of
                   8 idle workers for 2 s), wakeup (p50/p99 latency of one item into
                   an idle pool, 10,000 tries), memory (peak RSS while 10,000,000 items
                   stream through a bounded pool); default: all
  --workers N      only N workers (also W7's and the pool size of idle/wakeup/memory);
                   default: the number of cores and 8 (W7: cores; resources: 8)
  --reps N         timed repetitions per implementation (default 5, W3 and thread per
                   item 3, --quick 1); when given, it applies to every row
  --only TEXT      only implementations whose name contains TEXT, no resource
                   measurements (for profiling; without `sequential` the floor is n/a)
  --json           also print the JSON report to stdout
  -h, --help       print this help

Prints W7's table (median wall ms, min-max, ns/line, CPU ms, CPU vs sequential, context
switches, wall vs sequential and vs rayon), then a table per (workload, workers): median
ns/item, min-max, items/s, ratio to the best streaming peer and to the floor; then the
pool resources and the BENCHMARKS.md targets met and missed. A progress line goes to
stderr. Writes report.json, report.md and <workload>-w<workers>.svg (a bar chart per
table; none for W7) to <target>/bench/, where <target> is $CARGO_TARGET_DIR or
<workspace>/target.";

/// Parsed command-line options.
#[derive(Debug, Clone, Default)]
struct Options {
    /// Reduced sizes, one repetition, no warm-up.
    quick: bool,
    /// Only this workload or measurement (`--workload`).
    selection: Option<Selection>,
    /// Only this worker count.
    workers: Option<usize>,
    /// Timed repetitions per implementation.
    reps: Option<usize>,
    /// Also print the JSON report to stdout.
    json: bool,
    /// Only implementations whose name contains this text.
    only: Option<String>,
}

impl Options {
    /// The rows of a workload with its own runner (W7, W9) that `--only`
    /// leaves, in table order.
    fn selected<I: Copy>(&self, all: &[I], name: fn(I) -> &'static str) -> Vec<I> {
        all.iter()
            .copied()
            .filter(|&implementation| {
                self.only
                    .as_ref()
                    .is_none_or(|only| name(implementation).contains(only.as_str()))
            })
            .collect()
    }

    /// Timed repetitions of a workload with its own runner: `--reps`, else 5
    /// (1 under `--quick`).
    fn own_runner_reps(&self) -> usize {
        self.reps
            .unwrap_or(if self.quick { 1 } else { DEFAULT_REPS })
    }
}

/// What `--workload` picked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Selection {
    /// W7 `lines`, which has its own runner.
    Lines,
    /// W9 `calls`, which has its own runner.
    Calls,
    /// W10 `tree`, which has its own runner.
    Tree,
    /// W11 `resize`, which has its own runner.
    Resize,
    /// W12 `broker`, which has its own runner.
    Broker,
    /// One table workload.
    Table(Workload),
    /// One pool-resource measurement.
    Resource(Measurement),
}

/// With `--features mimalloc`, every row runs on mimalloc (see Cargo.toml).
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Runs the benchmark and maps failure to a non-zero exit code.
fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some(broker::CONSUMER_FLAG) {
        // A W12 consumer process, started by the bench itself.
        return match broker::consumer_main(&args[1..]) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("peer-bench {}: {error:#}", broker::CONSUMER_FLAG);
                ExitCode::FAILURE
            }
        };
    }
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
            eprintln!("\npeer-bench: FAILED: {error:#}");
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
                let selection = if lines::matches(&text) {
                    Some(Selection::Lines)
                } else if calls::matches(&text) {
                    Some(Selection::Calls)
                } else if tree::matches(&text) {
                    Some(Selection::Tree)
                } else if resize::matches(&text) {
                    Some(Selection::Resize)
                } else if broker::matches(&text) {
                    Some(Selection::Broker)
                } else {
                    Workload::find(&text)
                        .map(Selection::Table)
                        .or_else(|| Measurement::find(&text).map(Selection::Resource))
                };
                options.selection = Some(selection.with_context(|| {
                    format!(
                        "unknown workload `{text}`: expected W1 to W12 (or their names), idle, wakeup or memory"
                    )
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

/// One implementation's part in a table: how many items, repetitions and
/// whether it warms up.
#[derive(Debug, Clone, Copy)]
struct Entry {
    /// Which implementation.
    implementation: Implementation,
    /// Items per run.
    n_items: u64,
    /// Timed repetitions.
    reps: usize,
    /// Whether an untimed run comes first.
    warm_up: bool,
}

/// One table to measure.
#[derive(Debug, Clone)]
struct TablePlan {
    /// The workload, sizes already reduced under `--quick`.
    workload: Workload,
    /// Worker threads.
    workers: usize,
    /// Repetitions most rows get.
    reps: usize,
    /// The implementations in interleaving order.
    entries: Vec<Entry>,
    /// What the table header must say about reductions and omissions.
    notes: Vec<String>,
}

impl TablePlan {
    /// Runs this table takes, warm-ups included.
    fn runs(&self) -> usize {
        self.entries
            .iter()
            .map(|entry| entry.reps + usize::from(entry.warm_up))
            .sum()
    }
}

/// Plans every table: which implementations, how many items and repetitions.
fn plan_tables(options: &Options, cores: usize) -> Vec<TablePlan> {
    let workloads: Vec<Workload> = match options.selection {
        Some(Selection::Table(workload)) => vec![workload],
        Some(
            Selection::Resource(_)
            | Selection::Lines
            | Selection::Calls
            | Selection::Tree
            | Selection::Resize
            | Selection::Broker,
        ) => Vec::new(),
        None => ALL_WORKLOADS.to_vec(),
    };
    let worker_counts: Vec<usize> = match options.workers {
        Some(workers) => vec![workers],
        None if cores == OVERSUBSCRIBED_WORKERS => vec![cores],
        None => vec![cores, OVERSUBSCRIBED_WORKERS],
    };
    let base_reps = options
        .reps
        .unwrap_or(if options.quick { 1 } else { DEFAULT_REPS });
    let mut plans = Vec::new();
    for base_workload in workloads {
        let workload = if options.quick {
            base_workload.quick()
        } else {
            base_workload
        };
        // `--reps` overrides every cap; otherwise long workloads get fewer.
        let table_reps = match (options.reps, workload.max_reps) {
            (None, Some(max_reps)) => base_reps.min(max_reps),
            _ => base_reps,
        };
        let table_warm_up = !options.quick && workload.warm_up;
        for &workers in &worker_counts {
            let entries: Vec<Entry> = implementations_for(&workload)
                .iter()
                .copied()
                .filter(|implementation| {
                    options
                        .only
                        .as_ref()
                        .is_none_or(|only| implementation.name().contains(only.as_str()))
                })
                .map(|implementation| Entry {
                    implementation,
                    n_items: implementation.n_items(&workload, options.quick),
                    reps: match (options.reps, implementation.max_reps()) {
                        (None, Some(max_reps)) => table_reps.min(max_reps),
                        _ => table_reps,
                    },
                    warm_up: table_warm_up && implementation.warms_up(),
                })
                .collect();
            let notes = table_notes(
                &workload,
                workers,
                cores,
                table_reps,
                base_reps,
                &entries,
                options.quick,
            );
            plans.push(TablePlan {
                workload,
                workers,
                reps: table_reps,
                entries,
                notes,
            });
        }
    }
    plans
}

/// The notes under a table's title: every way its rows differ from the
/// workload's plain description.
fn table_notes(
    workload: &Workload,
    workers: usize,
    cores: usize,
    table_reps: usize,
    base_reps: usize,
    entries: &[Entry],
    quick: bool,
) -> Vec<String> {
    let mut notes = Vec::new();
    let skips_warm_up = !quick && !workload.warm_up;
    match (table_reps < base_reps, skips_warm_up) {
        (true, true) => notes.push(format!(
            "{table_reps} reps and no warm-up for this workload: one run takes seconds"
        )),
        (true, false) => notes.push(format!(
            "{table_reps} reps for this workload: one run takes seconds"
        )),
        (false, true) => {
            notes.push("no warm-up for this workload: one run takes seconds".to_owned())
        }
        (false, false) => {}
    }
    if workload.task == Task::Seed {
        notes.push(format!(
            "floor: the range split up front over min(workers, cores) = {} threads (BENCHMARKS.md's \
             static-split floor)",
            workers.min(cores).max(1)
        ));
    }
    for entry in entries {
        if entry.n_items < workload.n_items || entry.reps < table_reps {
            let mut note = format!(
                "{}: {} of {} items, {} rep(s){}",
                entry.implementation.name(),
                thousands(entry.n_items),
                thousands(workload.n_items),
                entry.reps,
                if entry.warm_up { "" } else { ", no warm-up" },
            );
            if entry.implementation == Implementation::ThreadPerItem {
                note.push_str(&format!(
                    " (a thread per item costs 50–150 µs: {} items{} instead of BENCHMARKS.md's {})",
                    thousands(THREAD_PER_ITEM_ITEMS),
                    if quick {
                        format!(" /{QUICK_DIVISOR} under --quick")
                    } else {
                        String::new()
                    },
                    thousands(THREAD_PER_ITEM_BENCHMARKS_MD_ITEMS),
                ));
            }
            notes.push(note);
        }
    }
    if workload.producers > 1 {
        notes.push(format!(
            "{} producer threads, each submitting a contiguous share; workforce rows without a \
             suffix use a Submitter per producer, `cloned Sender` rows Sender::send per item, \
             `1 producer` rows one Submitter on one thread (the W1 setting)",
            workload.producers
        ));
        notes.push(MULTI_PRODUCER_OMITTED.to_owned());
    }
    notes
}

/// Measures every selected table and resource, prints and writes the report.
fn run(options: &Options) -> anyhow::Result<()> {
    let run_started = Instant::now();
    let system = SystemInfo::detect();
    let plans = plan_tables(options, system.cores);
    let lines_plan = plan_lines(options, system.cores);
    let calls_plan = plan_calls(options, system.cores);
    let tree_plan = plan_tree(options, system.cores);
    let resize_plan = plan_resize(options, system.cores);
    let broker_planned = plan_broker(options);
    let measurements: Vec<Measurement> = match options.selection {
        Some(Selection::Resource(measurement)) => vec![measurement],
        Some(
            Selection::Table(_)
            | Selection::Lines
            | Selection::Calls
            | Selection::Tree
            | Selection::Resize
            | Selection::Broker,
        ) => Vec::new(),
        None if options.only.is_some() => Vec::new(),
        None => ALL_MEASUREMENTS.to_vec(),
    };
    let reps = options
        .reps
        .unwrap_or(if options.quick { 1 } else { DEFAULT_REPS });

    println!(
        "peer-bench: {} cores, {}, {}{}",
        system.cores,
        system.cpu_model,
        system.date,
        if options.quick {
            format!(" (quick: N/{QUICK_DIVISOR}, 1 rep, no warm-up)")
        } else {
            String::new()
        }
    );
    println!("timing: {TIMING_NOTE}");
    println!();

    let total_runs = plans.iter().map(TablePlan::runs).sum::<usize>()
        + measurements.len()
        + lines_plan.as_ref().map_or(0, LinesPlan::runs)
        + calls_plan.as_ref().map_or(0, CallsPlan::runs)
        + tree_plan.as_ref().map_or(0, TreePlan::runs)
        + usize::from(resize_plan.is_some())
        + usize::from(broker_planned);
    let mut progress = Progress::new(total_runs);

    // The pool-resource measurements come first, in a fresh process: later,
    // the peers' queues (threadpool's unbounded channel of boxed closures
    // above all) leave tens of MiB of freed heap resident, which a growing
    // queue could reuse without the RSS moving, hiding the very growth the
    // memory check looks for. They are printed after the tables.
    let resource_workers = options.workers.unwrap_or(OVERSUBSCRIBED_WORKERS);
    let resources = measure_resources(
        &measurements,
        resource_workers,
        Sizes::new(options.quick),
        &mut progress,
    )?;

    // W7 first: the real workload leads the report.
    let lines_table = planned(
        lines_plan.as_ref(),
        &mut progress,
        |plan, progress| measure_lines(plan, &system, progress),
        |table| table.to_text(),
    )?;

    // W9 next: the other workload users bring (an async service).
    let calls_table = planned(calls_plan.as_ref(), &mut progress, measure_calls, |table| {
        table.to_text()
    })?;

    // W10 after it: tree-shaped work, spawned from inside.
    let tree_table = planned(tree_plan.as_ref(), &mut progress, measure_tree, |table| {
        table.to_text()
    })?;

    // W11 after it: resizing a running pool.
    let resize_table = planned(
        resize_plan,
        &mut progress,
        |(workers, resizes), progress| {
            progress.start(&format!("[{} workers={workers}]", resize::ID), "resizing");
            resize::measure(workers, resizes)
        },
        |table| table.to_text(),
    )?;

    // W12 after it: a broker in front of the pool (skipped, with a line,
    // when redis-server is not installed).
    let broker_table = planned(
        broker_planned.then_some(()),
        &mut progress,
        |(), progress| {
            progress.start(&format!("[{}]", broker::ID), "consuming");
            broker::measure(options.quick)
        },
        |table| table.to_text(),
    )?;

    let mut expected_sums = HashMap::new();
    let mut tables = Vec::new();
    for plan in &plans {
        let table = measure(plan, &system, &mut expected_sums, &mut progress)?;
        progress.clear();
        println!("{}", table.to_text());
        tables.push(table);
    }
    progress.clear();
    if !resources.is_empty() {
        println!("pool resources ({resource_workers} workers, measured before the tables):");
        for line in report::resources_lines(&resources) {
            println!("  {line}");
        }
        println!();
    }

    let mut targets = lines_table
        .as_ref()
        .map(lines::check_targets)
        .unwrap_or_default();
    targets.extend(
        calls_table
            .as_ref()
            .map(calls::check_targets)
            .unwrap_or_default(),
    );
    targets.extend(
        tree_table
            .as_ref()
            .map(tree::check_targets)
            .unwrap_or_default(),
    );
    targets.extend(
        broker_table
            .as_ref()
            .map(broker::check_targets)
            .unwrap_or_default(),
    );
    targets.extend(report::check_targets(&tables));
    targets.extend(report::check_resources(&resources));
    let mut report = Report {
        system,
        quick: options.quick,
        reps,
        timing: TIMING_NOTE,
        lines: lines_table,
        calls: calls_table,
        tree: tree_table,
        resize: resize_table,
        broker: broker_table,
        tables,
        resources,
        targets,
        elapsed_secs: 0.0,
    };
    print!("{}", report.targets_text());
    report.elapsed_secs = run_started.elapsed().as_secs_f64();

    let json = serde_json::to_string_pretty(&report).context("serialising the report")?;
    let out_dir = target_dir().join("bench");
    std::fs::create_dir_all(&out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    write_file(&out_dir.join("report.json"), &json)?;
    write_file(&out_dir.join("report.md"), &report.to_markdown())?;
    for table in &report.tables {
        write_file(&out_dir.join(&table.chart), &chart::render(table)?)?;
    }
    println!();
    println!(
        "wrote {}, report.md and {} chart(s) in {:.0} s",
        out_dir.join("report.json").display(),
        report.tables.len(),
        report.elapsed_secs
    );
    if options.json {
        println!("{json}");
    }
    Ok(())
}

/// W9's run: which implementations, how many calls and repetitions.
#[derive(Debug, Clone)]
struct CallsPlan {
    /// The implementations in interleaving order.
    implementations: Vec<CallsImpl>,
    /// Pool threads and runtime threads.
    workers: usize,
    /// Timed repetitions.
    reps: usize,
    /// Whether each implementation runs once untimed first.
    warm_up: bool,
    /// Calls per timed run.
    calls: u64,
    /// Calls issued at once for the memory measurement.
    burst: u64,
}

impl CallsPlan {
    /// Runs it takes: warm-ups, timed runs and one burst per implementation.
    fn runs(&self) -> usize {
        self.implementations.len() * (self.reps + usize::from(self.warm_up) + 1)
    }
}

/// Plans W9 if it is selected (or nothing is) and `--only` leaves a row.
fn plan_calls(options: &Options, cores: usize) -> Option<CallsPlan> {
    if !matches!(options.selection, None | Some(Selection::Calls)) {
        return None;
    }
    let implementations = options.selected(&ALL_CALLS_IMPLS, CallsImpl::name);
    (!implementations.is_empty()).then(|| CallsPlan {
        implementations,
        workers: options.workers.unwrap_or(cores),
        reps: options.own_runner_reps(),
        warm_up: !options.quick,
        calls: if options.quick {
            calls::QUICK_CALLS
        } else {
            calls::CALLS
        },
        burst: if options.quick {
            calls::QUICK_BURST
        } else {
            calls::BURST
        },
    })
}

/// Runs one of the workloads measured before the ns/item ones (W7, W9 to
/// W12) if it is planned: measures it, clears the progress line and prints
/// its table.
fn planned<P, T>(
    plan: Option<P>,
    progress: &mut Progress,
    measure: impl FnOnce(P, &mut Progress) -> anyhow::Result<T>,
    text: impl Fn(&T) -> String,
) -> anyhow::Result<Option<T>> {
    let Some(plan) = plan else {
        return Ok(None);
    };
    let table = measure(plan, progress)?;
    progress.clear();
    println!("{}", text(&table));
    Ok(Some(table))
}

/// Runs W9: the round trip per implementation, interleaved, then one burst
/// each; every run's sum of results must agree with the first one's.
fn measure_calls(plan: &CallsPlan, progress: &mut Progress) -> anyhow::Result<CallsTable> {
    let label = format!("[{} workers={}]", calls::ID, plan.workers);
    let mut expected: Option<u64> = None;
    let mut check = |implementation: CallsImpl, sum: u64| -> anyhow::Result<()> {
        match expected {
            None => expected = Some(sum),
            Some(expected) if expected != sum => bail!(
                "{}: the results' sum {sum:#x} differs from the first run's {expected:#x}",
                implementation.name()
            ),
            Some(_) => {}
        }
        Ok(())
    };
    if plan.warm_up {
        for &implementation in &plan.implementations {
            progress.start(&label, &format!("warm-up {}", implementation.name()));
            let run = calls::run_round_trip(implementation, plan.workers, plan.calls)?;
            check(implementation, run.sum)?;
        }
    }
    let mut runs: Vec<Vec<calls::CallsRun>> = vec![Vec::new(); plan.implementations.len()];
    for rep in 1..=plan.reps {
        for (index, &implementation) in plan.implementations.iter().enumerate() {
            progress.start(
                &label,
                &format!("rep {rep}/{} {}", plan.reps, implementation.name()),
            );
            let run = calls::run_round_trip(implementation, plan.workers, plan.calls)?;
            check(implementation, run.sum)?;
            runs[index].push(run);
        }
    }
    let mut burst_sum: Option<u64> = None;
    let mut rows = Vec::new();
    for (index, &implementation) in plan.implementations.iter().enumerate() {
        progress.start(&label, &format!("burst {}", implementation.name()));
        let burst = calls::run_burst(implementation, plan.workers, plan.burst)?;
        match burst_sum {
            None => burst_sum = Some(burst.sum),
            Some(sum) if sum != burst.sum => bail!(
                "{}: the burst's sum {:#x} differs from the first burst's {sum:#x}",
                implementation.name(),
                burst.sum
            ),
            Some(_) => {}
        }
        rows.push(CallsRow::of(implementation, &runs[index], Some(&burst)));
    }
    Ok(CallsTable {
        workload: calls::ID,
        calls: plan.calls,
        burst: plan.burst,
        workers: plan.workers,
        reps: plan.reps,
        rows,
    })
}

/// W10's run: which implementations, how many nodes and repetitions.
#[derive(Debug, Clone)]
struct TreePlan {
    /// The implementations in interleaving order.
    implementations: Vec<TreeImpl>,
    /// Worker threads of the parallel rows.
    workers: usize,
    /// Timed repetitions.
    reps: usize,
    /// Whether each implementation runs once untimed first.
    warm_up: bool,
    /// Nodes per run.
    nodes: u64,
}

impl TreePlan {
    /// Runs it takes, warm-ups included.
    fn runs(&self) -> usize {
        self.implementations.len() * (self.reps + usize::from(self.warm_up))
    }
}

/// Plans W10 if it is selected (or nothing is) and `--only` leaves a row.
fn plan_tree(options: &Options, cores: usize) -> Option<TreePlan> {
    if !matches!(options.selection, None | Some(Selection::Tree)) {
        return None;
    }
    let implementations: Vec<TreeImpl> = ALL_TREE_IMPLS
        .iter()
        .copied()
        .filter(|implementation| {
            options
                .only
                .as_ref()
                .is_none_or(|only| implementation.name().contains(only.as_str()))
        })
        .collect();
    (!implementations.is_empty()).then(|| TreePlan {
        implementations,
        workers: options.workers.unwrap_or(cores),
        reps: options
            .reps
            .unwrap_or(if options.quick { 1 } else { DEFAULT_REPS }),
        warm_up: !options.quick,
        nodes: if options.quick {
            tree::QUICK_NODES
        } else {
            tree::NODES
        },
    })
}

/// Whether W12 runs: selected, or nothing is and `--only` does not rule
/// it out.
fn plan_broker(options: &Options) -> bool {
    match options.selection {
        Some(Selection::Broker) => true,
        None => options
            .only
            .as_ref()
            .is_none_or(|only| "workforce pool-source bare".contains(only.as_str())),
        Some(_) => false,
    }
}

/// Plans W11 if it is selected (or nothing is) and `--only` does not rule
/// it out: the most workers (at least 2) and the resizes per row.
fn plan_resize(options: &Options, cores: usize) -> Option<(usize, usize)> {
    if !matches!(options.selection, None | Some(Selection::Resize)) {
        return None;
    }
    if options
        .only
        .as_ref()
        .is_some_and(|only| !"workforce".contains(only.as_str()))
    {
        return None;
    }
    let resizes = if options.quick {
        resize::QUICK_RESIZES
    } else {
        resize::RESIZES
    };
    Some((options.workers.unwrap_or(cores).max(2), resizes))
}

/// Runs W10: every implementation, interleaved; every run's sum must equal
/// the first run's (the sequential walk's, when it runs).
fn measure_tree(plan: &TreePlan, progress: &mut Progress) -> anyhow::Result<TreeTable> {
    let label = format!("[{} workers={}]", tree::ID, plan.workers);
    let mut expected: Option<u64> = None;
    let mut run = |implementation: TreeImpl| -> anyhow::Result<tree::TreeRun> {
        let run = implementation.run(plan.workers, plan.nodes)?;
        match expected {
            None => expected = Some(run.sum),
            Some(sum) if sum != run.sum => bail!(
                "{}: the nodes' sum {:#x} differs from the first run's {sum:#x}",
                implementation.name(),
                run.sum
            ),
            Some(_) => {}
        }
        Ok(run)
    };
    if plan.warm_up {
        for &implementation in &plan.implementations {
            progress.start(&label, &format!("warm-up {}", implementation.name()));
            run(implementation)?;
        }
    }
    let mut runs: Vec<Vec<tree::TreeRun>> = vec![Vec::new(); plan.implementations.len()];
    for rep in 1..=plan.reps {
        for (index, &implementation) in plan.implementations.iter().enumerate() {
            progress.start(
                &label,
                &format!("rep {rep}/{} {}", plan.reps, implementation.name()),
            );
            runs[index].push(run(implementation)?);
        }
    }
    Ok(TreeTable {
        workload: tree::ID,
        nodes: plan.nodes,
        workers: plan.workers,
        reps: plan.reps,
        rows: plan
            .implementations
            .iter()
            .zip(&runs)
            .map(|(&implementation, runs)| TreeRow::of(implementation, runs, plan.nodes))
            .collect(),
    })
}

/// W7's run: which implementations, how big a log, how many repetitions.
#[derive(Debug, Clone)]
struct LinesPlan {
    /// The implementations in interleaving order.
    implementations: Vec<LinesImpl>,
    /// Worker threads of the parallel ones.
    workers: usize,
    /// Timed repetitions.
    reps: usize,
    /// Whether each implementation runs once untimed first.
    warm_up: bool,
    /// The log's size at least, bytes.
    log_bytes: u64,
}

impl LinesPlan {
    /// Runs it takes, warm-ups and writing the log included.
    fn runs(&self) -> usize {
        1 + self.implementations.len() * (self.reps + usize::from(self.warm_up))
    }
}

/// Plans W7 if it is selected (or nothing is) and `--only` leaves a row.
fn plan_lines(options: &Options, cores: usize) -> Option<LinesPlan> {
    if !matches!(options.selection, None | Some(Selection::Lines)) {
        return None;
    }
    let implementations = options.selected(ALL_LINES_IMPLS, LinesImpl::name);
    (!implementations.is_empty()).then(|| LinesPlan {
        implementations,
        workers: options.workers.unwrap_or(cores),
        reps: options.own_runner_reps(),
        warm_up: !options.quick,
        log_bytes: if options.quick {
            lines::QUICK_LOG_BYTES
        } else {
            lines::LOG_BYTES
        },
    })
}

/// Writes W7's log into a temporary directory, runs every implementation on
/// it, interleaved, checks each run's counts, and removes the directory.
fn measure_lines(
    plan: &LinesPlan,
    system: &SystemInfo,
    progress: &mut Progress,
) -> anyhow::Result<LinesTable> {
    let workers = plan.workers;
    let label = format!("[{} workers={workers}]", lines::ID);
    progress.start(
        &label,
        &format!("writing a {:.0} MB log", plan.log_bytes as f64 / 1e6),
    );
    let dir = lines::TempDir::new()?;
    let log = lines::generate(&dir.path().join("access.log"), plan.log_bytes)?;
    let rayon_pool = rayon::ThreadPoolBuilder::new()
        .num_threads(workers)
        .build()
        .context("building the rayon thread pool")?;
    let run = |implementation: LinesImpl| -> anyhow::Result<lines::LinesRun> {
        let run = implementation.run(&log.path, workers, &rayon_pool)?;
        lines::check_counts(implementation, workers, &run.counts, &log.expected)?;
        Ok(run)
    };
    if plan.warm_up {
        for &implementation in &plan.implementations {
            progress.start(&label, &format!("warm-up {}", implementation.name()));
            run(implementation)?;
        }
    }
    let mut samples: Vec<LinesSamples> = plan
        .implementations
        .iter()
        .map(|&implementation| LinesSamples {
            implementation,
            samples: Vec::with_capacity(plan.reps),
        })
        .collect();
    for rep in 1..=plan.reps {
        for samples in &mut samples {
            progress.start(
                &label,
                &format!("rep {rep}/{} {}", plan.reps, samples.implementation.name()),
            );
            let run = run(samples.implementation)?;
            samples.samples.push(lines::LinesSample::of(&run));
        }
    }
    let mut notes = vec![format!(
        "log: {} bytes written to {} in {:.2} s from a fixed seed (removed after the runs)",
        thousands(log.bytes),
        std::env::temp_dir().display(),
        log.took.as_secs_f64()
    )];
    if workers != system.cores {
        notes.push(format!(
            "{workers} workers on {} cores (BENCHMARKS.md's setting is workers = cores)",
            system.cores
        ));
    }
    drop(dir);
    Ok(LinesTable::new(
        &log,
        workers,
        system,
        plan.reps,
        plan.warm_up,
        samples,
        notes,
    ))
}

/// Runs every implementation of `plan`, interleaved, checking each run's sum.
fn measure(
    plan: &TablePlan,
    system: &SystemInfo,
    expected_sums: &mut HashMap<(&'static str, u64), u64>,
    progress: &mut Progress,
) -> anyhow::Result<Table> {
    let workload = &plan.workload;
    let workers = plan.workers;
    let label = format!("[{} workers={workers}]", workload.id);
    // Built once and outside the timing, like the other pools' threads.
    let rayon_pool = rayon::ThreadPoolBuilder::new()
        .num_threads(workers)
        .build()
        .context("building the rayon thread pool")?;
    let setting = Setting {
        workers,
        cores: system.cores,
        rayon_pool: &rayon_pool,
    };
    for entry in &plan.entries {
        if let MapEntry::Vacant(slot) = expected_sums.entry((workload.id, entry.n_items)) {
            progress.update(
                &label,
                &format!(
                    "computing the expected sum of {} items",
                    thousands(entry.n_items)
                ),
            );
            slot.insert(workload.with_items(entry.n_items).expected_sum());
        }
    }
    let expected_for = |entry: &Entry| expected_sums[&(workload.id, entry.n_items)];

    for entry in plan.entries.iter().filter(|entry| entry.warm_up) {
        progress.start(&label, &format!("warm-up {}", entry.implementation.name()));
        let run = entry
            .implementation
            .run(&workload.with_items(entry.n_items), &setting)?;
        check_sum(
            entry.implementation,
            workload,
            workers,
            run.sum,
            expected_for(entry),
        )?;
    }

    let mut samples: Vec<Samples> = plan
        .entries
        .iter()
        .map(|entry| Samples {
            implementation: entry.implementation,
            n_items: entry.n_items,
            ns_per_item: Vec::with_capacity(entry.reps),
        })
        .collect();
    for rep in 1..=plan.reps {
        for (entry, samples) in plan.entries.iter().zip(&mut samples) {
            if rep > entry.reps {
                continue;
            }
            progress.start(
                &label,
                &format!("rep {rep}/{} {}", entry.reps, entry.implementation.name()),
            );
            let run = entry
                .implementation
                .run(&workload.with_items(entry.n_items), &setting)?;
            check_sum(
                entry.implementation,
                workload,
                workers,
                run.sum,
                expected_for(entry),
            )?;
            samples.ns_per_item.push(run.ns_per_item());
        }
    }
    Ok(Table::new(
        workload,
        workers,
        system,
        plan.reps,
        samples,
        plan.notes.clone(),
    ))
}

/// Takes the selected pool-resource measurements, memory first so that its
/// baseline is the fresh process's.
fn measure_resources(
    measurements: &[Measurement],
    workers: usize,
    sizes: Sizes,
    progress: &mut Progress,
) -> anyhow::Result<Resources> {
    let mut resources = Resources::default();
    let label = format!("[resources workers={workers}]");
    for &measurement in measurements {
        match measurement {
            Measurement::Idle => {
                progress.start(
                    &label,
                    &format!("idle CPU for {:.1} s", sizes.idle.as_secs_f64()),
                );
                match resources::measure_idle(workers, sizes.idle)? {
                    Some(idle) => resources.idle = Some(idle),
                    None => resources
                        .unavailable
                        .push("idle CPU: no CPU times readable from /proc here".to_owned()),
                }
            }
            Measurement::WakeUp => {
                let tries = sizes.wake_up_tries;
                progress.start(&label, &format!("wake-up 0/{tries} tries"));
                resources.wake_up = resources::measure_wake_up(workers, tries, |done| {
                    progress.update(&label, &format!("wake-up {done}/{tries} tries"));
                })?;
            }
            Measurement::Memory => {
                progress.start(
                    &label,
                    &format!("memory, {} items", thousands(sizes.memory_items)),
                );
                match resources::measure_memory(workers, sizes.memory_items)? {
                    Some(memory) => resources.memory = Some(memory),
                    None => resources
                        .unavailable
                        .push("memory: no VmRSS readable from /proc/self/status here".to_owned()),
                }
            }
        }
    }
    Ok(resources)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::{W1_OVERHEAD, W3_SEED};

    /// Parses `args` (string literals) into options.
    fn options(args: &[&str]) -> Options {
        let owned: Vec<String> = args.iter().map(|arg| (*arg).to_owned()).collect();
        parse_args(&owned)
            .expect("the arguments parse")
            .expect("not a help request")
    }

    #[test]
    fn a_full_plan_caps_the_slow_rows_and_notes_it() {
        let plans = plan_tables(&options(&[]), 2);
        assert_eq!(plans.len(), 2 * ALL_WORKLOADS.len());
        let seed = plans
            .iter()
            .find(|plan| plan.workload == W3_SEED && plan.workers == 8)
            .expect("W3 at 8 workers is planned");
        assert_eq!(seed.reps, 3);
        assert!(seed.entries.iter().all(|entry| !entry.warm_up));
        assert!(seed.notes.iter().any(|note| note.contains("floor")));
        let overhead = &plans[0];
        assert_eq!((overhead.workload, overhead.workers), (W1_OVERHEAD, 2));
        for entry in &overhead.entries {
            if entry.implementation == Implementation::ThreadPerItem {
                assert_eq!(
                    (entry.n_items, entry.reps, entry.warm_up),
                    (THREAD_PER_ITEM_ITEMS, 3, false)
                );
            } else {
                assert_eq!(
                    (entry.n_items, entry.reps, entry.warm_up),
                    (1_000_000, 5, true)
                );
            }
        }
        // 17 implementations: 16 x (5 + warm-up) + thread per item x 3.
        assert_eq!(overhead.entries.len(), 17);
        assert_eq!(overhead.runs(), 16 * 6 + 3);
        assert!(
            overhead
                .notes
                .iter()
                .any(|note| note.contains("10,000 of 1,000,000"))
        );
    }

    #[test]
    fn quick_and_explicit_reps_override_the_defaults() {
        let quick = plan_tables(&options(&["--quick", "--workload", "W3", "--workers=8"]), 2);
        assert_eq!(quick.len(), 1);
        assert!(
            quick[0]
                .entries
                .iter()
                .all(|entry| entry.reps == 1 && !entry.warm_up)
        );
        assert_eq!(quick[0].workload.n_items, W3_SEED.n_items / QUICK_DIVISOR);
        let explicit = plan_tables(&options(&["--reps", "7", "--workload", "seed"]), 2);
        assert!(
            explicit
                .iter()
                .flat_map(|plan| &plan.entries)
                .all(|entry| entry.reps == 7)
        );
        assert!(plan_tables(&options(&["--workload", "wakeup"]), 2).is_empty());
        assert_eq!(plan_tables(&options(&["--workload", "W1"]), 8).len(), 1);
    }

    #[test]
    fn workloads_and_measurements_are_selected_by_name() {
        assert_eq!(
            options(&["--workload", "multi-producer"]).selection,
            Some(Selection::Table(crate::workload::W6_MULTI_PRODUCER))
        );
        assert_eq!(
            options(&["--workload=idle"]).selection,
            Some(Selection::Resource(Measurement::Idle))
        );
        assert_eq!(
            options(&["--workload", "lines"]).selection,
            Some(Selection::Lines)
        );
        let lines = plan_lines(&options(&["--workload=W7", "--quick"]), 2).expect("W7 planned");
        assert_eq!(
            (lines.workers, lines.reps, lines.warm_up, lines.log_bytes),
            (2, 1, false, lines::QUICK_LOG_BYTES)
        );
        assert_eq!(lines.runs(), 1 + ALL_LINES_IMPLS.len());
        assert!(plan_tables(&options(&["--workload", "W7"]), 2).is_empty());
        assert!(plan_lines(&options(&["--workload", "W8"]), 2).is_none());
        let full = plan_lines(&options(&[]), 2).expect("W7 runs by default");
        assert_eq!((full.reps, full.log_bytes), (5, lines::LOG_BYTES));
        let only = plan_lines(&options(&["--only", "workforce"]), 2).expect("a workforce row");
        assert!(
            only.implementations
                .iter()
                .all(|row| row.name().contains("workforce"))
        );
        let owned = |args: &[&str]| args.iter().map(|arg| (*arg).to_owned()).collect::<Vec<_>>();
        assert!(parse_args(&owned(&["--workload", "W13"])).is_err());
        assert_eq!(
            options(&["--workload", "broker"]).selection,
            Some(Selection::Broker)
        );
        assert!(plan_broker(&options(&["--workload=W12"])));
        assert!(plan_broker(&options(&[])));
        assert!(!plan_broker(&options(&["--workload", "W11"])));
        assert!(!plan_broker(&options(&["--only", "rayon"])));
        assert_eq!(
            options(&["--workload", "resize"]).selection,
            Some(Selection::Resize)
        );
        assert_eq!(
            plan_resize(&options(&["--workload=W11", "--quick"]), 2),
            Some((2, resize::QUICK_RESIZES))
        );
        assert_eq!(plan_resize(&options(&[]), 1), Some((2, resize::RESIZES)));
        assert!(plan_resize(&options(&["--workload", "W10"]), 2).is_none());
        assert!(plan_resize(&options(&["--only", "rayon"]), 2).is_none());
        assert_eq!(
            options(&["--workload", "tree"]).selection,
            Some(Selection::Tree)
        );
        let tree = plan_tree(&options(&["--workload=W10", "--quick"]), 2).expect("W10 planned");
        assert_eq!(
            (tree.workers, tree.reps, tree.warm_up, tree.nodes),
            (2, 1, false, tree::QUICK_NODES)
        );
        assert_eq!(tree.runs(), ALL_TREE_IMPLS.len());
        assert!(plan_tree(&options(&["--workload", "W9"]), 2).is_none());
        assert!(plan_tables(&options(&["--workload", "W10"]), 2).is_empty());
        assert_eq!(
            options(&["--workload", "calls"]).selection,
            Some(Selection::Calls)
        );
        let calls = plan_calls(&options(&["--workload=W9", "--quick"]), 2).expect("W9 planned");
        assert_eq!(
            (
                calls.workers,
                calls.reps,
                calls.warm_up,
                calls.calls,
                calls.burst
            ),
            (2, 1, false, calls::QUICK_CALLS, calls::QUICK_BURST)
        );
        assert_eq!(calls.runs(), 2 * ALL_CALLS_IMPLS.len());
        assert!(plan_calls(&options(&["--workload", "W7"]), 2).is_none());
        assert!(plan_tables(&options(&["--workload", "W9"]), 2).is_empty());
        assert!(parse_args(&owned(&["--workers", "0"])).is_err());
        assert!(matches!(parse_args(&owned(&["--help"])), Ok(None)));
    }
}
