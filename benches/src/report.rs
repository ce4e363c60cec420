//! Turning timed runs into tables, target checks, JSON and Markdown.

use std::fmt::Write as _;

use serde::Serialize;

use crate::impls::{Implementation, Kind, WORKFORCE_DEFAULT_BATCH};
use crate::system::SystemInfo;
use crate::workload::Workload;

/// What the clock measures, printed in every table header and stored in the report.
pub(crate) const TIMING_NOTE: &str = "timed from the first item handed over to wait()/join() returning; \
     pool and thread construction excluded (threads are started and parked before the clock starts)";

/// The same, short enough for a table header.
const TIMING_NOTE_SHORT: &str =
    "timed: first submit -> wait()/join() returns; pool and thread construction excluded";

/// The whole report, as written to `report.json`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Report {
    /// The machine.
    pub(crate) system: SystemInfo,
    /// Whether sizes were reduced by `--quick`.
    pub(crate) quick: bool,
    /// Timed repetitions per implementation.
    pub(crate) reps: usize,
    /// What the timings include.
    pub(crate) timing: &'static str,
    /// One table per (workload, workers).
    pub(crate) tables: Vec<Table>,
    /// The BENCHMARKS.md targets, met or missed (informational only).
    pub(crate) targets: Vec<TargetCheck>,
}

/// Results of one workload at one worker count.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Table {
    /// Workload id (`W1`).
    pub(crate) workload: &'static str,
    /// Workload name (`overhead`).
    pub(crate) workload_name: &'static str,
    /// Items per run.
    pub(crate) n_items: u64,
    /// Rounds of work per item.
    pub(crate) rounds: u32,
    /// The per-item work, as text.
    pub(crate) work: String,
    /// Worker threads.
    pub(crate) workers: usize,
    /// Cores of the machine.
    pub(crate) cores: usize,
    /// `sequential / min(workers, cores)`, ns per item.
    pub(crate) floor_ns_per_item: f64,
    /// The fastest streaming peer by median, if any ran.
    pub(crate) best_peer: Option<String>,
    /// That peer's median, ns per item.
    pub(crate) best_peer_ns_per_item: Option<f64>,
    /// One row per implementation, in run order.
    pub(crate) rows: Vec<Row>,
    /// Figures measured elsewhere and quoted for comparison, not re-run here.
    pub(crate) reference: Option<String>,
}

/// go-pkgz/pool's chunked figure, quoted beside W4 at 2 workers: measured on
/// this machine (2 cores) for issue 3 with Go 1.24, `WithChunkFn` on `x % 1024`,
/// batch 100. Go cannot be installed by the project's own files, so it is quoted,
/// not re-run.
const GO_PKGZ_CHUNKED_NS_PER_ITEM: f64 = 69.5;

/// The quoted figure for a table, if there is one.
fn reference_for(workload: &Workload, workers: usize) -> Option<String> {
    (workload.id == "W4" && workers == 2).then(|| {
        format!(
            "reference (quoted, not re-run): go-pkgz/pool chunked, batch 100, 2 workers: \
             {GO_PKGZ_CHUNKED_NS_PER_ITEM} ns/item"
        )
    })
}

/// One implementation's results within a table.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Row {
    /// Display name.
    pub(crate) implementation: String,
    /// Role in the comparison.
    pub(crate) kind: Kind,
    /// workforce batch size, for workforce rows.
    pub(crate) batch_size: Option<usize>,
    /// Whether this is a keyed workforce pool.
    pub(crate) keyed: bool,
    /// The workforce metrics mode (`off`, `times`, `latency`).
    pub(crate) metrics: Option<String>,
    /// The middleware stack around the worker, if any (`pass_through`, `built_in`).
    pub(crate) layers: Option<String>,
    /// Whether the row has the default metrics (times) and no layers; target
    /// checks use only those.
    #[serde(skip)]
    pub(crate) default_metrics: bool,
    /// Median over repetitions, ns per item.
    pub(crate) median_ns_per_item: f64,
    /// Fastest repetition, ns per item.
    pub(crate) min_ns_per_item: f64,
    /// Slowest repetition, ns per item.
    pub(crate) max_ns_per_item: f64,
    /// Items per second at the median.
    pub(crate) items_per_sec: f64,
    /// Median divided by the best streaming peer's median (below 1 is faster).
    pub(crate) vs_best_peer: Option<f64>,
    /// Median divided by the floor (1 is perfect scaling).
    pub(crate) vs_floor: f64,
    /// Every repetition, ns per item, in run order.
    pub(crate) samples_ns_per_item: Vec<f64>,
}

/// One BENCHMARKS.md target, checked against one table.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct TargetCheck {
    /// Workload id.
    pub(crate) workload: &'static str,
    /// Worker count of the table checked.
    pub(crate) workers: usize,
    /// What is checked (`W1 default (batch 64)`).
    pub(crate) name: String,
    /// The target (`<= 8 ns/item`).
    pub(crate) target: String,
    /// The measured value, formatted.
    pub(crate) measured: String,
    /// Whether the target was met.
    pub(crate) met: bool,
    /// A figure reported for the record, with no target to meet.
    pub(crate) informational: bool,
}

impl Table {
    /// Builds a table from each implementation's samples (ns per item).
    pub(crate) fn new(
        workload: &Workload,
        workers: usize,
        cores: usize,
        samples: Vec<(Implementation, Vec<f64>)>,
    ) -> Self {
        let medians: Vec<(Implementation, f64)> = samples
            .iter()
            .map(|(implementation, values)| (*implementation, median(values)))
            .collect();
        let sequential = medians
            .iter()
            .find(|(implementation, _)| implementation.kind() == Kind::Sequential)
            .map_or(f64::NAN, |(_, value)| *value);
        let parallelism = workers.min(cores).max(1);
        let floor = sequential / parallelism as f64;
        let best_peer = medians
            .iter()
            .filter(|(implementation, _)| implementation.kind() == Kind::StreamingPeer)
            .min_by(|left, right| left.1.total_cmp(&right.1))
            .copied();

        let rows = samples
            .into_iter()
            .map(|(implementation, values)| {
                let median_value = median(&values);
                Row {
                    implementation: implementation.name(),
                    kind: implementation.kind(),
                    batch_size: implementation.batch_size(),
                    keyed: implementation.is_keyed(),
                    metrics: implementation
                        .metrics_mode()
                        .map(|mode| format!("{mode:?}").to_lowercase()),
                    layers: implementation
                        .layers()
                        .map(|layers| format!("{layers:?}").to_lowercase()),
                    default_metrics: implementation.has_default_metrics(),
                    median_ns_per_item: median_value,
                    min_ns_per_item: values.iter().copied().fold(f64::INFINITY, f64::min),
                    max_ns_per_item: values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                    items_per_sec: 1e9 / median_value,
                    vs_best_peer: best_peer.map(|(_, best)| median_value / best),
                    vs_floor: median_value / floor,
                    samples_ns_per_item: values,
                }
            })
            .collect();
        Self {
            workload: workload.id,
            workload_name: workload.name,
            n_items: workload.n_items,
            rounds: workload.rounds,
            work: workload.work_text(),
            workers,
            cores,
            floor_ns_per_item: floor,
            best_peer: best_peer.map(|(implementation, _)| implementation.name()),
            best_peer_ns_per_item: best_peer.map(|(_, value)| value),
            rows,
            reference: reference_for(workload, workers),
        }
    }

    /// The title line shared by the text and Markdown renderings.
    fn title(&self, reps: usize) -> String {
        format!(
            "{} {}: N={} items, {}, workers={} on {} cores, {} rep(s); floor {} ns/item; best peer: {}",
            self.workload,
            self.workload_name,
            thousands(self.n_items),
            self.work,
            self.workers,
            self.cores,
            reps,
            format_ns(self.floor_ns_per_item),
            self.best_peer.as_deref().unwrap_or("none"),
        )
    }

    /// The cells of every row, formatted, header first.
    fn cells(&self) -> Vec<[String; 6]> {
        let mut cells = vec![[
            "implementation".to_owned(),
            "median ns/item".to_owned(),
            "min–max".to_owned(),
            "items/s".to_owned(),
            "vs best peer".to_owned(),
            "vs floor".to_owned(),
        ]];
        for row in &self.rows {
            cells.push([
                row.implementation.clone(),
                format_ns(row.median_ns_per_item),
                format!(
                    "{}–{}",
                    format_ns(row.min_ns_per_item),
                    format_ns(row.max_ns_per_item)
                ),
                format_rate(row.items_per_sec),
                row.vs_best_peer
                    .map_or_else(|| "–".to_owned(), format_ratio),
                format_ratio(row.vs_floor),
            ]);
        }
        cells
    }

    /// The median of the work-stealing workforce row at this batch size.
    fn workforce_median(&self, batch_size: usize) -> Option<f64> {
        self.median_of(batch_size, false)
    }

    /// The median of the workforce row at this batch size, keyed or not.
    fn median_of(&self, batch_size: usize, keyed: bool) -> Option<f64> {
        self.rows
            .iter()
            .find(|row| {
                row.batch_size == Some(batch_size) && row.keyed == keyed && row.default_metrics
            })
            .map(|row| row.median_ns_per_item)
    }

    /// Renders the table as aligned plain text.
    pub(crate) fn to_text(&self, reps: usize) -> String {
        let cells = self.cells();
        let mut widths = [0_usize; 6];
        for row in &cells {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        let _ = writeln!(out, "{}", self.title(reps));
        let _ = writeln!(out, "  ({TIMING_NOTE_SHORT})");
        for (index, row) in cells.iter().enumerate() {
            let mut line = String::from(" ");
            for (column, (cell, width)) in row.iter().zip(widths).enumerate() {
                let padding = " ".repeat(width - cell.chars().count());
                if column == 0 {
                    let _ = write!(line, " {cell}{padding}");
                } else {
                    let _ = write!(line, "  {padding}{cell}");
                }
            }
            let _ = writeln!(out, "{}", line.trim_end());
            if index == 0 {
                let total: usize = widths.iter().sum::<usize>() + 2 * widths.len();
                let _ = writeln!(out, "  {}", "-".repeat(total));
            }
        }
        if let Some(reference) = &self.reference {
            let _ = writeln!(out, "  {reference}");
        }
        out
    }

    /// Renders the table as a Markdown section.
    fn to_markdown(&self, reps: usize) -> String {
        let cells = self.cells();
        let mut out = String::new();
        let _ = writeln!(out, "### {}\n", self.title(reps));
        for (index, row) in cells.iter().enumerate() {
            let _ = writeln!(out, "| {} |", row.join(" | "));
            if index == 0 {
                let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|");
            }
        }
        if let Some(reference) = &self.reference {
            let _ = writeln!(out, "\n{reference}");
        }
        out
    }
}

impl Report {
    /// Renders the target checks as plain text lines.
    pub(crate) fn targets_text(&self) -> String {
        let mut out =
            String::from("targets from BENCHMARKS.md (informational, never a failure):\n");
        if self.quick {
            out.push_str("  (quick run: reduced sizes and one repetition, so these say little)\n");
        }
        for check in &self.targets {
            let _ = writeln!(
                out,
                "  {:<6} {} [workers={}]: target {}, measured {}",
                status(check),
                check.name,
                check.workers,
                check.target,
                check.measured,
            );
        }
        if self.targets.is_empty() {
            out.push_str("  (no table covers a target)\n");
        }
        out
    }

    /// Renders the whole report as Markdown.
    pub(crate) fn to_markdown(&self) -> String {
        let mut out = String::from("# workforce peer benchmark\n\n");
        let _ = writeln!(
            out,
            "- machine: {} cores, {}\n- date: {}\n- repetitions: {}{}\n- timing: {}\n- numbers: median ns per item (min–max over repetitions); \
             ratios are median / best streaming peer and median / floor, where floor = sequential / min(workers, cores)\n",
            self.system.cores,
            self.system.cpu_model,
            self.system.date,
            self.reps,
            if self.quick { " (quick: N/20)" } else { "" },
            self.timing,
        );
        for table in &self.tables {
            out.push_str(&table.to_markdown(self.reps));
            out.push('\n');
        }
        out.push_str("## Targets\n\n| status | check | workers | target | measured |\n|---|---|---:|---|---|\n");
        for check in &self.targets {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} |",
                status(check).to_lowercase(),
                check.name,
                check.workers,
                check.target,
                check.measured,
            );
        }
        out
    }
}

/// Checks the BENCHMARKS.md targets for W1 and W2 against every table that
/// has the numbers for them.
pub(crate) fn check_targets(tables: &[Table]) -> Vec<TargetCheck> {
    let mut checks = Vec::new();
    for table in tables {
        match table.workload {
            "W1" => {
                let per_batch = [
                    (WORKFORCE_DEFAULT_BATCH, "W1 default", 8.0),
                    (100, "W1 batch 100", 4.0),
                    (1, "W1 unbatched", 15.0),
                ];
                for (batch_size, label, limit) in per_batch {
                    if let Some(measured) = table.workforce_median(batch_size) {
                        checks.push(TargetCheck {
                            workload: table.workload,
                            workers: table.workers,
                            name: format!("{label} (batch {batch_size})"),
                            target: format!("<= {limit} ns/item"),
                            measured: format!("{} ns/item", format_ns(measured)),
                            met: measured <= limit,
                            informational: false,
                        });
                    }
                }
            }
            "W2" => {
                if let Some(measured) = table.workforce_median(WORKFORCE_DEFAULT_BATCH) {
                    let efficiency = table.floor_ns_per_item / measured;
                    checks.push(TargetCheck {
                        workload: table.workload,
                        workers: table.workers,
                        name: format!("W2 default (batch {WORKFORCE_DEFAULT_BATCH}) efficiency"),
                        target: ">= 97% of ideal (ideal = sequential / min(workers, cores))"
                            .to_owned(),
                        measured: format!(
                            "{:.1}% (ideal {} ns/item, measured {})",
                            efficiency * 100.0,
                            format_ns(table.floor_ns_per_item),
                            format_ns(measured)
                        ),
                        met: efficiency >= 0.97,
                        informational: false,
                    });
                }
            }
            "W4" => {
                for batch_size in [1, WORKFORCE_DEFAULT_BATCH, 100] {
                    let (Some(keyed), Some(stealing)) = (
                        table.median_of(batch_size, true),
                        table.median_of(batch_size, false),
                    ) else {
                        continue;
                    };
                    let ratio = keyed / stealing;
                    checks.push(TargetCheck {
                        workload: table.workload,
                        workers: table.workers,
                        name: format!("W4 keyed (batch {batch_size}), per-key order checked"),
                        target: "<= 1.5x unkeyed at the same batch size".to_owned(),
                        measured: format!(
                            "{} ({} vs {} ns/item)",
                            format_ratio(ratio),
                            format_ns(keyed),
                            format_ns(stealing)
                        ),
                        met: ratio <= 1.5,
                        informational: false,
                    });
                }
            }
            "W5" => {
                // Only stealing has a target; the keyed row beside it in the table
                // is the static-routing contrast.
                if let Some(measured) = table.median_of(WORKFORCE_DEFAULT_BATCH, false) {
                    let efficiency = table.floor_ns_per_item / measured;
                    checks.push(TargetCheck {
                        workload: table.workload,
                        workers: table.workers,
                        name: format!("W5 stealing (batch {WORKFORCE_DEFAULT_BATCH}) efficiency"),
                        target: ">= 90% of ideal".to_owned(),
                        measured: format!(
                            "{:.1}% (ideal {} ns/item, measured {})",
                            efficiency * 100.0,
                            format_ns(table.floor_ns_per_item),
                            format_ns(measured)
                        ),
                        met: efficiency >= 0.90,
                        informational: false,
                    });
                }
            }
            _ => {}
        }
    }
    checks.extend(check_oversubscription(tables));
    checks.extend(tables.iter().filter_map(metrics_cost));
    checks.extend(tables.iter().filter_map(layers_cost));
    checks
}

/// W1: the cost of latency percentiles over the default metrics, and of the
/// default over none. No target in BENCHMARKS.md; reported for the record.
fn metrics_cost(table: &Table) -> Option<TargetCheck> {
    if table.workload != "W1" {
        return None;
    }
    let median = |metrics: &str| {
        table
            .rows
            .iter()
            .find(|row| {
                row.batch_size == Some(WORKFORCE_DEFAULT_BATCH)
                    && !row.keyed
                    && row.layers.is_none()
                    && row.metrics.as_deref() == Some(metrics)
            })
            .map(|row| row.median_ns_per_item)
    };
    let (off, times, latency) = (median("off")?, median("times")?, median("latency")?);
    Some(TargetCheck {
        workload: table.workload,
        workers: table.workers,
        name: format!("W1 metrics cost (batch {WORKFORCE_DEFAULT_BATCH})"),
        target: "reported, no target".to_owned(),
        measured: format!(
            "off {} | times (default) {} | latency percentiles {} ns/item",
            format_ns(off),
            format_ns(times),
            format_ns(latency)
        ),
        met: true,
        informational: true,
    })
}

/// W1 at 8 workers on fewer cores must stay within 1.5 × the figure at
/// workers = cores (default batch size).
fn check_oversubscription(tables: &[Table]) -> Option<TargetCheck> {
    let w1_at = |workers: usize| {
        tables
            .iter()
            .find(|table| table.workload == "W1" && table.workers == workers)
    };
    let oversubscribed = w1_at(8)?;
    if oversubscribed.cores >= 8 {
        return None;
    }
    let baseline = w1_at(oversubscribed.cores)?;
    let at_eight = oversubscribed.workforce_median(WORKFORCE_DEFAULT_BATCH)?;
    let at_cores = baseline.workforce_median(WORKFORCE_DEFAULT_BATCH)?;
    let ratio = at_eight / at_cores;
    Some(TargetCheck {
        workload: "W1",
        workers: 8,
        name: format!(
            "W1 oversubscribed (8 workers on {} cores, default batch)",
            oversubscribed.cores
        ),
        target: format!("<= 1.5x the {}-worker figure", oversubscribed.cores),
        measured: format!(
            "{} ({} vs {} ns/item)",
            format_ratio(ratio),
            format_ns(at_eight),
            format_ns(at_cores)
        ),
        met: ratio <= 1.5,
        informational: false,
    })
}

/// W1: the cost of a 3-layer middleware stack over the bare default pool. No
/// target in BENCHMARKS.md; reported for the record.
fn layers_cost(table: &Table) -> Option<TargetCheck> {
    if table.workload != "W1" {
        return None;
    }
    let bare = table.median_of(WORKFORCE_DEFAULT_BATCH, false)?;
    let stack = |layers: &str| {
        table
            .rows
            .iter()
            .find(|row| row.layers.as_deref() == Some(layers))
            .map(|row| row.median_ns_per_item)
    };
    let (pass_through, built_in) = (stack("passthrough")?, stack("builtin")?);
    Some(TargetCheck {
        workload: table.workload,
        workers: table.workers,
        name: format!("W1 3-layer middleware stacks (batch {WORKFORCE_DEFAULT_BATCH})"),
        target: "reported, no target".to_owned(),
        measured: format!(
            "bare {} | 3 pass-through {} ({}) | recovery+validator+retry {} ({}) ns/item",
            format_ns(bare),
            format_ns(pass_through),
            format_ratio(pass_through / bare),
            format_ns(built_in),
            format_ratio(built_in / bare)
        ),
        met: true,
        informational: true,
    })
}

/// How a check is shown: `met`, `MISSED` or `info`.
fn status(check: &TargetCheck) -> &'static str {
    if check.informational {
        "info"
    } else if check.met {
        "met"
    } else {
        "MISSED"
    }
}

/// The median of `values` (the mean of the middle two for an even count).
pub(crate) fn median(values: &[f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let middle = sorted.len() / 2;
    if sorted.len() % 2 == 1 {
        sorted[middle]
    } else {
        f64::midpoint(sorted[middle - 1], sorted[middle])
    }
}

/// Formats ns per item with precision that suits its size.
fn format_ns(value: f64) -> String {
    if !value.is_finite() {
        "n/a".to_owned()
    } else if value < 10.0 {
        format!("{value:.2}")
    } else if value < 100.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.0}")
    }
}

/// Formats a rate in items per second with an SI prefix.
fn format_rate(value: f64) -> String {
    if !value.is_finite() {
        "n/a".to_owned()
    } else if value >= 1e9 {
        format!("{:.2} G", value / 1e9)
    } else if value >= 1e6 {
        format!("{:.1} M", value / 1e6)
    } else {
        format!("{:.1} k", value / 1e3)
    }
}

/// Formats a ratio as `1.23x`.
fn format_ratio(value: f64) -> String {
    if value.is_finite() {
        format!("{value:.2}x")
    } else {
        "n/a".to_owned()
    }
}

/// Formats an integer with comma thousands separators.
fn thousands(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::impls::ALL_IMPLEMENTATIONS;
    use crate::workload::W1_OVERHEAD;

    #[test]
    fn medians_and_formatting() {
        assert!((median(&[3.0, 1.0, 2.0]) - 2.0).abs() < f64::EPSILON);
        assert!((median(&[4.0, 1.0, 2.0, 3.0]) - 2.5).abs() < f64::EPSILON);
        assert_eq!(thousands(1_000_000), "1,000,000");
        assert_eq!(thousands(999), "999");
        assert_eq!(format_ns(2.345_67), "2.35");
        assert_eq!(format_rate(2.5e8), "250.0 M");
    }

    #[test]
    fn best_peer_excludes_sequential_and_into_par_iter() {
        let samples = ALL_IMPLEMENTATIONS
            .iter()
            .enumerate()
            .map(|(index, implementation)| (*implementation, vec![1.0 + index as f64]))
            .collect();
        let table = Table::new(&W1_OVERHEAD, 2, 2, samples);
        assert_eq!(table.best_peer.as_deref(), Some("rayon par_bridge"));
        assert!((table.floor_ns_per_item - 0.5).abs() < f64::EPSILON);
        let checks = check_targets(&[table]);
        let met: Vec<bool> = checks.iter().map(|check| check.met).collect();
        // Default 6 <= 8, batch 100: 7 > 4, unbatched 5 <= 15.
        assert_eq!(met, [true, false, true]);
    }
}
