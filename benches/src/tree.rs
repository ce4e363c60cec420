//! W10 `tree`: tree-shaped work. A balanced tree of 1,000,000 nodes is
//! expanded from its root: running a node computes its work and hands each of
//! its children to the executor from inside the running node. Nobody knows
//! the nodes up front, so no iterator can be split; what is measured is the
//! cost of adding work from inside the work: workforce's `ctx.spawn` against
//! rayon's `scope.spawn`, with a sequential walk as the floor of the work
//! itself.
//!
//! The tree: node `i`'s children are `8i + 1 ..= 8i + 8` (those below N),
//! the breadth-first numbering of a complete 8-ary tree, so every run
//! expands the same nodes. A node's work is `work(i, 20)` (20 rounds of
//! xorshift, some 30 ns), added into a per-thread sum (a cache-padded slot
//! per worker thread, so no row touches a shared counter per node). Every
//! run's sum must equal the sequential walk's.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use pool_core::{Ctx, Pool, SpawnError};
use serde::Serialize;

use crate::report::{TargetCheck, median, thousands};
use crate::workload::{QUICK_DIVISOR, work};

/// W10's id in tables, targets and `--workload`.
pub(crate) const ID: &str = "W10";

/// W10's name.
pub(crate) const NAME: &str = "tree";

/// Nodes per run.
pub(crate) const NODES: u64 = 1_000_000;

/// Nodes per run under `--quick`.
pub(crate) const QUICK_NODES: u64 = NODES / QUICK_DIVISOR;

/// Children per node.
pub(crate) const FAN_OUT: u64 = 8;

/// Rounds of `work` per node.
pub(crate) const ROUNDS: u32 = 20;

/// Whether `text` names this workload on the command line.
pub(crate) fn matches(text: &str) -> bool {
    text.eq_ignore_ascii_case(ID) || text.eq_ignore_ascii_case(NAME)
}

/// The children of node `id` in a tree of `nodes` nodes.
#[inline]
fn children(id: u64, nodes: u64) -> impl Iterator<Item = u64> {
    (1..=FAN_OUT)
        .map(move |k| FAN_OUT * id + k)
        .filter(move |&child| child < nodes)
}

/// A per-thread sum on a cache line of its own.
#[repr(align(128))]
#[derive(Default)]
struct Slot(AtomicU64);

/// One slot per thread.
fn slots(threads: usize) -> Arc<Vec<Slot>> {
    Arc::new((0..threads).map(|_| Slot::default()).collect())
}

/// The wrapping sum of every slot.
fn total(slots: &[Slot]) -> u64 {
    slots
        .iter()
        .fold(0u64, |sum, slot| sum.wrapping_add(slot.0.load(Relaxed)))
}

/// The implementations W10 compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TreeImpl {
    /// A depth-first walk with a `Vec` as the stack, on one thread.
    Sequential,
    /// `pool.scope(|s| …)`, each node `s.spawn`s its children.
    RayonScope,
    /// A pool fed the root by a `Sender`; each node `spawn`s its children
    /// through its worker's `Spawner`.
    Workforce,
}

/// Every implementation, in table order.
pub(crate) const ALL_TREE_IMPLS: [TreeImpl; 3] = [
    TreeImpl::Sequential,
    TreeImpl::RayonScope,
    TreeImpl::Workforce,
];

impl TreeImpl {
    /// The row's name.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Sequential => "sequential (depth first, Vec stack)",
            Self::RayonScope => "rayon scope.spawn",
            Self::Workforce => "workforce ctx.spawn",
        }
    }

    /// Expands a tree of `nodes` nodes on `workers` threads (the sequential
    /// walk on one); the clock runs from the root handed over to the last
    /// node's end. Pools are built before the clock starts.
    pub(crate) fn run(self, workers: usize, nodes: u64) -> anyhow::Result<TreeRun> {
        match self {
            Self::Sequential => Ok(run_sequential(nodes)),
            Self::RayonScope => run_rayon(workers, nodes),
            Self::Workforce => run_workforce(workers, nodes),
        }
    }
}

/// One timed run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TreeRun {
    /// From the root handed over to the last node done.
    pub(crate) elapsed: Duration,
    /// Wrapping sum of every node's work.
    pub(crate) sum: u64,
}

fn run_sequential(nodes: u64) -> TreeRun {
    let started = Instant::now();
    let mut sum = 0u64;
    let mut stack = vec![0u64];
    while let Some(id) = stack.pop() {
        sum = sum.wrapping_add(work(id, ROUNDS));
        stack.extend(children(id, nodes));
    }
    TreeRun {
        elapsed: started.elapsed(),
        sum,
    }
}

/// Runs node `id` in `scope` and spawns its children there.
fn visit<'scope>(scope: &rayon::Scope<'scope>, id: u64, nodes: u64, sums: &'scope [Slot]) {
    let slot = rayon::current_thread_index().unwrap_or(0);
    sums[slot].0.fetch_add(work(id, ROUNDS), Relaxed);
    for child in children(id, nodes) {
        scope.spawn(move |scope| visit(scope, child, nodes, sums));
    }
}

fn run_rayon(workers: usize, nodes: u64) -> anyhow::Result<TreeRun> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(workers)
        .build()
        .context("building the rayon pool")?;
    let sums = slots(workers);
    let started = Instant::now();
    pool.scope(|scope| visit(scope, 0, nodes, &sums));
    let elapsed = started.elapsed();
    Ok(TreeRun {
        elapsed,
        sum: total(&sums),
    })
}

fn run_workforce(workers: usize, nodes: u64) -> anyhow::Result<TreeRun> {
    let sums = slots(workers);
    let pool = Pool::builder().workers(workers).build({
        let sums = Arc::clone(&sums);
        move |ctx: &Ctx, id: u64| {
            sums[ctx.worker_id().index()]
                .0
                .fetch_add(work(id, ROUNDS), Relaxed);
            let spawner = ctx.spawner::<u64>().expect("a pool of u64 running an item");
            for child in children(id, nodes) {
                spawner.spawn(child)?;
            }
            Ok::<(), SpawnError<u64>>(())
        }
    })?;
    let started = Instant::now();
    pool.sender()
        .send(0)
        .map_err(|error| anyhow!("sending the root: {error}"))?;
    // Closes the pool at once; returns when the whole tree is done.
    let report = pool.wait().context("the workforce pool")?;
    let elapsed = started.elapsed();
    if report.processed() != nodes || report.spawned() != nodes - 1 {
        bail!(
            "workforce ran {} nodes ({} spawned) of {nodes}",
            report.processed(),
            report.spawned()
        );
    }
    Ok(TreeRun {
        elapsed,
        sum: total(&sums),
    })
}

/// One implementation's repetitions.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct TreeRow {
    /// The implementation's name.
    pub(crate) implementation: &'static str,
    /// Every repetition, ns per node.
    pub(crate) ns_per_node: Vec<f64>,
    /// Their median.
    pub(crate) median_ns_per_node: f64,
}

impl TreeRow {
    /// The row of `implementation` over `runs` of `nodes` nodes.
    pub(crate) fn of(implementation: TreeImpl, runs: &[TreeRun], nodes: u64) -> Self {
        let ns_per_node: Vec<f64> = runs
            .iter()
            .map(|run| run.elapsed.as_secs_f64() * 1e9 / nodes as f64)
            .collect();
        Self {
            implementation: implementation.name(),
            median_ns_per_node: median(&ns_per_node),
            ns_per_node,
        }
    }

    fn min_max(&self) -> (f64, f64) {
        let min = self
            .ns_per_node
            .iter()
            .copied()
            .fold(f64::INFINITY, f64::min);
        let max = self.ns_per_node.iter().copied().fold(0.0, f64::max);
        (min, max)
    }
}

/// W10's results.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct TreeTable {
    /// `W10`.
    pub(crate) workload: &'static str,
    /// Nodes per run.
    pub(crate) nodes: u64,
    /// Worker threads of the parallel rows.
    pub(crate) workers: usize,
    /// Timed repetitions per implementation.
    pub(crate) reps: usize,
    /// One row per implementation.
    pub(crate) rows: Vec<TreeRow>,
}

impl TreeTable {
    /// The row of `implementation`, if it ran.
    fn row(&self, implementation: TreeImpl) -> Option<&TreeRow> {
        self.rows
            .iter()
            .find(|row| row.implementation == implementation.name())
    }

    /// `value / base`, or `n/a`.
    fn ratio(value: f64, base: Option<&TreeRow>) -> String {
        base.map_or_else(
            || "n/a".to_owned(),
            |base| format!("{:.2}x", value / base.median_ns_per_node),
        )
    }

    /// The header and the cells of every row.
    fn cells(&self) -> (Vec<&'static str>, Vec<Vec<String>>) {
        let header = vec![
            "implementation",
            "median ns/node",
            "min–max",
            "nodes/s",
            "vs rayon",
            "vs sequential",
        ];
        let rayon = self.row(TreeImpl::RayonScope);
        let sequential = self.row(TreeImpl::Sequential);
        let rows = self
            .rows
            .iter()
            .map(|row| {
                let (min, max) = row.min_max();
                vec![
                    row.implementation.to_owned(),
                    format!("{:.1}", row.median_ns_per_node),
                    format!("{min:.1}–{max:.1}"),
                    thousands((1e9 / row.median_ns_per_node) as u64),
                    Self::ratio(row.median_ns_per_node, rayon),
                    Self::ratio(row.median_ns_per_node, sequential),
                ]
            })
            .collect();
        (header, rows)
    }

    /// The title line.
    fn title(&self) -> String {
        format!(
            "{ID} {NAME}: a balanced tree of {} nodes ({FAN_OUT} children per node) expanded from \
             one root, work(x, {ROUNDS}) per node, workers={}, {} rep(s)",
            thousands(self.nodes),
            self.workers,
            self.reps,
        )
    }

    /// The table as aligned text.
    pub(crate) fn to_text(&self) -> String {
        let (header, rows) = self.cells();
        crate::table::aligned(&self.title(), &header, &rows)
    }

    /// The table as Markdown.
    pub(crate) fn to_markdown(&self) -> String {
        let (header, rows) = self.cells();
        crate::table::markdown(&self.title(), &header, &rows)
    }
}

/// W10's target: workforce's `ctx.spawn` at most 1.5× rayon's `scope.spawn`
/// per node; and, for the record, what a spawn adds over the sequential
/// walk's work per node.
pub(crate) fn check_targets(table: &TreeTable) -> Vec<TargetCheck> {
    let Some(ours) = table.row(TreeImpl::Workforce) else {
        return Vec::new();
    };
    let mut checks = Vec::new();
    if let Some(rayon) = table.row(TreeImpl::RayonScope) {
        checks.push(TargetCheck {
            workload: ID,
            workers: table.workers,
            name: format!("{ID} {} vs rayon scope.spawn", ours.implementation),
            target: "<= 1.5x rayon scope.spawn's ns/node".to_owned(),
            measured: format!(
                "{:.1} vs {:.1} ns/node ({:.2}x)",
                ours.median_ns_per_node,
                rayon.median_ns_per_node,
                ours.median_ns_per_node / rayon.median_ns_per_node
            ),
            met: ours.median_ns_per_node <= 1.5 * rayon.median_ns_per_node,
            informational: false,
        });
    }
    if let Some(sequential) = table.row(TreeImpl::Sequential) {
        checks.push(TargetCheck {
            workload: ID,
            workers: table.workers,
            name: format!("{ID} {} cost per node", ours.implementation),
            target: "reported, no target".to_owned(),
            measured: format!(
                "{:.1} ns/node over {} workers vs {:.1} ns/node sequential",
                ours.median_ns_per_node, table.workers, sequential.median_ns_per_node
            ),
            met: true,
            informational: true,
        });
    }
    checks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_expands_the_same_tree() {
        let nodes = 10_000;
        let expected = (0..nodes).fold(0u64, |sum, id| sum.wrapping_add(work(id, ROUNDS)));
        for implementation in ALL_TREE_IMPLS {
            let run = implementation.run(2, nodes).expect("the run completes");
            assert_eq!(run.sum, expected, "{}", implementation.name());
        }
    }

    #[test]
    fn the_tree_is_complete_and_each_node_has_one_parent() {
        let nodes = 1_000;
        let mut parents = vec![0u32; nodes as usize];
        for id in 0..nodes {
            for child in children(id, nodes) {
                parents[child as usize] += 1;
            }
        }
        assert_eq!(parents[0], 0);
        assert!(parents[1..].iter().all(|&n| n == 1));
    }
}
