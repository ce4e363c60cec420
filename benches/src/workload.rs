//! The workloads of BENCHMARKS.md that peer-bench runs, and the per-item work.

use std::fmt;
use std::hint::black_box;
use std::sync::OnceLock;
use std::time::Duration;

use crate::rng::SplitMix64;

/// One workload: which items are submitted and how much work each one is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Workload {
    /// Short id from BENCHMARKS.md (`W1`, `W2`).
    pub(crate) id: &'static str,
    /// Descriptive name (`overhead`, `cpu`).
    pub(crate) name: &'static str,
    /// Number of items `0..n_items` submitted by the producer.
    pub(crate) n_items: u64,
    /// Rounds of xorshift64 per item (the argument `r` of [`work`]).
    pub(crate) rounds: u32,
    /// Uneven items: every `every`-th item (item % every == 0) does `factor`
    /// times the rounds.
    pub(crate) skew: Option<Skew>,
    /// Whether keyed pools are measured and per-key order is checked (W4).
    pub(crate) keyed: bool,
    /// What one item does: xorshift rounds, or the go-pkgz/pool seed task (W3).
    pub(crate) task: Task,
    /// Producer threads submitting the items (W6: 4; otherwise 1).
    pub(crate) producers: usize,
    /// Repetitions at most, unless `--reps` says otherwise: W3's runs take a
    /// second or two each.
    pub(crate) max_reps: Option<usize>,
    /// Whether each implementation runs once untimed before the repetitions
    /// (outside `--quick`). Off where one run is long enough to warm itself up.
    pub(crate) warm_up: bool,
}

/// What the work of one item is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Task {
    /// `work(x, rounds)`: rounds of xorshift64 (W1, W2, W4, W5, W6).
    Xorshift,
    /// The go-pkgz/pool benchmark task (W3): see [`seed_work`].
    Seed,
    /// `work(x, rounds[x])` with the rounds drawn once from a log-normal
    /// distribution (W8): see [`heavy_tail_rounds`].
    HeavyTail,
}

/// Uneven work: one item in `every` is `factor` times as heavy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Skew {
    /// One item in this many is heavy.
    pub(crate) every: u64,
    /// How many times the rounds a heavy item does.
    pub(crate) factor: u32,
}

/// Keys of the keyed workloads: `item % N_KEYS`.
pub(crate) const N_KEYS: u64 = 1_024;

/// The key of `item` in keyed runs.
#[inline]
pub(crate) fn key_of(item: u64) -> u64 {
    item % N_KEYS
}

/// W1 `overhead`: trivial items, measuring the per-item cost of the pool itself.
pub(crate) const W1_OVERHEAD: Workload = Workload {
    id: "W1",
    name: "overhead",
    n_items: 1_000_000,
    rounds: 0,
    skew: None,
    keyed: false,
    task: Task::Xorshift,
    producers: 1,
    max_reps: None,
    warm_up: true,
};

/// W2 `cpu`: CPU-bound items, measuring scaling against `sequential / cores`.
pub(crate) const W2_CPU: Workload = Workload {
    id: "W2",
    name: "cpu",
    n_items: 200_000,
    rounds: 200,
    skew: None,
    keyed: false,
    task: Task::Xorshift,
    producers: 1,
    max_reps: None,
    warm_up: true,
};

/// W3 `seed`: the go-pkgz/pool benchmark task, its own headline at 8 workers.
/// Its floor is the static split of the range over the threads (BENCHMARKS.md),
/// not `sequential / threads`. One run takes one to two seconds, so three
/// repetitions and no warm-up.
pub(crate) const W3_SEED: Workload = Workload {
    id: "W3",
    name: "seed",
    n_items: 1_000_000,
    rounds: 0,
    skew: None,
    keyed: false,
    task: Task::Seed,
    producers: 1,
    max_reps: Some(3),
    warm_up: false,
};

/// W4 `keyed`: W1's trivial items with key `x % 1024`, measuring the cost of
/// routing; keyed runs check per-key order.
pub(crate) const W4_KEYED: Workload = Workload {
    id: "W4",
    name: "keyed",
    n_items: 1_000_000,
    rounds: 0,
    skew: None,
    keyed: true,
    task: Task::Xorshift,
    producers: 1,
    max_reps: None,
    warm_up: true,
};

/// W5 `skewed`: W2's items, but every 100th does 100 times the rounds: work
/// stealing against static (keyed) routing.
pub(crate) const W5_SKEWED: Workload = Workload {
    id: "W5",
    name: "skewed",
    n_items: 200_000,
    rounds: 200,
    skew: Some(Skew {
        every: 100,
        factor: 100,
    }),
    keyed: false,
    task: Task::Xorshift,
    producers: 1,
    max_reps: None,
    warm_up: true,
};

/// W6 `multi-producer`: W1's trivial items from 4 producer threads, each
/// submitting a contiguous quarter of the range: contention on submission.
pub(crate) const W6_MULTI_PRODUCER: Workload = Workload {
    id: "W6",
    name: "multi-producer",
    n_items: 1_000_000,
    rounds: 0,
    skew: None,
    keyed: false,
    task: Task::Xorshift,
    producers: 4,
    max_reps: None,
    warm_up: true,
};

/// Median rounds of a W8 item: about 100 ns at the ~1.65 ns per round
/// `work` takes on the reference machine (W2's 200 rounds are about 330 ns).
pub(crate) const HEAVY_TAIL_MEDIAN_ROUNDS: u32 = 60;

/// The log-normal's sigma for W8: the mean is `median * e^(sigma^2 / 2)`, about
/// 3.1 times the median (some 185 rounds), and one item in a thousand does
/// over 100 times the median.
pub(crate) const HEAVY_TAIL_SIGMA: f64 = 1.5;

/// W8's cap on one item's rounds: about 100 µs (reached 4.6 sigma out, by
/// about one item in 500,000).
pub(crate) const HEAVY_TAIL_MAX_ROUNDS: u32 = 60_000;

/// The seed of W8's rounds table.
const HEAVY_TAIL_SEED: u64 = 0x5EED_0008;

/// W8 `heavy-tail`: items whose cost is log-normal (median about 100 ns, a
/// tail to about 100 µs), the same costs for every implementation: stealing
/// and batching against items that are sometimes a thousand times heavier.
pub(crate) const W8_HEAVY_TAIL: Workload = Workload {
    id: "W8",
    name: "heavy-tail",
    n_items: 300_000,
    rounds: HEAVY_TAIL_MEDIAN_ROUNDS,
    skew: None,
    keyed: false,
    task: Task::HeavyTail,
    producers: 1,
    max_reps: None,
    warm_up: true,
};

/// Every `u64` workload peer-bench knows, in the order it runs them (W7,
/// whose items are lines, has its own runner: [`crate::lines`]).
pub(crate) const ALL_WORKLOADS: [Workload; 7] = [
    W1_OVERHEAD,
    W2_CPU,
    W3_SEED,
    W4_KEYED,
    W5_SKEWED,
    W6_MULTI_PRODUCER,
    W8_HEAVY_TAIL,
];

/// The rounds of W8's items, one per item of the full workload, drawn once
/// per process from a fixed seed: `median * e^(sigma * z)` rounded, at least
/// 1 and at most [`HEAVY_TAIL_MAX_ROUNDS`]. Built on first use (the expected
/// sum computes it before any run is timed).
pub(crate) fn heavy_tail_rounds() -> &'static [u32] {
    static ROUNDS: OnceLock<Vec<u32>> = OnceLock::new();
    ROUNDS.get_or_init(|| {
        let mut rng = SplitMix64::new(HEAVY_TAIL_SEED);
        (0..W8_HEAVY_TAIL.n_items)
            .map(|_| {
                let rounds = rng.log_normal(f64::from(HEAVY_TAIL_MEDIAN_ROUNDS), HEAVY_TAIL_SIGMA);
                rounds.round().clamp(1.0, f64::from(HEAVY_TAIL_MAX_ROUNDS)) as u32
            })
            .collect()
    })
}

/// The rounds W8's `item` does: its entry in the table (items past the table,
/// which no workload submits, wrap around).
#[inline]
fn heavy_tail_rounds_of(item: u64) -> u32 {
    let rounds = heavy_tail_rounds();
    match rounds.get(item as usize) {
        Some(&value) => value,
        None => rounds[(item % rounds.len() as u64) as usize],
    }
}

/// Pushes per W3 item (the seed's `benchTask(1000)`).
pub(crate) const SEED_PUSHES: usize = 1_000;

/// How many times smaller the item count is under `--quick`.
pub(crate) const QUICK_DIVISOR: u64 = 20;

impl Workload {
    /// Finds a workload by id (`W1`) or name (`overhead`, `multi-producer`),
    /// ignoring case; `multiproducer` and `multi_producer` are accepted too.
    pub(crate) fn find(text: &str) -> Option<Self> {
        let wanted = text.replace('_', "-");
        ALL_WORKLOADS.into_iter().find(|workload| {
            workload.id.eq_ignore_ascii_case(&wanted)
                || workload.name.eq_ignore_ascii_case(&wanted)
                || workload.name.replace('-', "").eq_ignore_ascii_case(&wanted)
        })
    }

    /// The same workload with `n_items` divided for a quick smoke run.
    pub(crate) fn quick(self) -> Self {
        Self {
            n_items: (self.n_items / QUICK_DIVISOR).max(1),
            ..self
        }
    }

    /// The wrapping sum of `work(x, rounds)` over all items: what every
    /// implementation must reproduce, so that none can skip or repeat work.
    pub(crate) fn expected_sum(&self) -> u64 {
        (0..self.n_items).fold(0_u64, |sum, item| sum.wrapping_add(self.work(item)))
    }

    /// The work of one item of this workload.
    #[inline]
    pub(crate) fn work(&self, item: u64) -> u64 {
        self.kernel().work(item)
    }

    /// Just what the per-item work needs, small enough to copy into one
    /// closure per item (the threadpool and thread-per-item peers).
    #[inline]
    pub(crate) fn kernel(&self) -> Kernel {
        Kernel {
            rounds: self.rounds,
            skew: self.skew,
            task: self.task,
        }
    }

    /// The same workload with `n_items` items (thread-per-item runs fewer).
    pub(crate) fn with_items(self, n_items: u64) -> Self {
        Self { n_items, ..self }
    }

    /// A description of the per-item work for table titles.
    pub(crate) fn work_text(&self) -> String {
        if self.task == Task::Seed {
            return format!(
                "Vec::with_capacity({SEED_PUSHES}) + {SEED_PUSHES} x push(black_box(task(1)))"
            );
        }
        if self.task == Task::HeavyTail {
            return format!(
                "work(x, r[x]), r log-normal: median {}, sigma {HEAVY_TAIL_SIGMA}, at most {} \
                 (fixed seed)",
                self.rounds,
                crate::report::thousands(u64::from(HEAVY_TAIL_MAX_ROUNDS))
            );
        }
        let mut text = format!("work(x, {})", self.rounds);
        if let Some(skew) = self.skew {
            text.push_str(&format!(", every {}th x {}", skew.every, skew.factor));
        }
        if self.keyed {
            text.push_str(&format!(", key x % {N_KEYS}"));
        }
        if self.producers > 1 {
            text.push_str(&format!(", {} producer threads", self.producers));
        }
        text
    }
}

/// The per-item work of a workload without the rest of its description.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Kernel {
    /// Rounds of xorshift64 per item.
    rounds: u32,
    /// Uneven items, if any.
    skew: Option<Skew>,
    /// What an item does.
    task: Task,
}

impl Kernel {
    /// The rounds `item` does.
    #[inline]
    pub(crate) fn rounds_of(self, item: u64) -> u32 {
        if self.task == Task::HeavyTail {
            return heavy_tail_rounds_of(item);
        }
        match self.skew {
            Some(skew) if item.is_multiple_of(skew.every) => self.rounds * skew.factor,
            _ => self.rounds,
        }
    }

    /// The work of one item.
    #[inline]
    pub(crate) fn work(self, item: u64) -> u64 {
        match self.task {
            Task::Xorshift | Task::HeavyTail => work(item, self.rounds_of(item)),
            Task::Seed => seed_work(item),
        }
    }
}

/// Part `part` of `0..n_items` split into `parts` contiguous ranges whose
/// lengths differ by at most one.
pub(crate) fn split_range(n_items: u64, parts: usize, part: usize) -> std::ops::Range<u64> {
    let parts = parts.max(1) as u64;
    let part = part as u64;
    let (share, remainder) = (n_items / parts, n_items % parts);
    let start = part * share + part.min(remainder);
    let len = share + u64::from(part < remainder);
    start..start + len
}

impl fmt::Display for Workload {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{} {}", self.id, self.name)
    }
}

/// The per-item work: `rounds` rounds of xorshift64 starting from `item | 1`
/// (the `| 1` keeps the state non-zero, which xorshift needs). With zero
/// rounds the result is `item | 1`.
#[inline]
pub(crate) fn work(item: u64, rounds: u32) -> u64 {
    let mut value = item | 1;
    for _ in 0..rounds {
        value ^= value << 13;
        value ^= value >> 7;
        value ^= value << 17;
    }
    value
}

/// The seed's `task(n)`: the sum of `0..n`, "some CPU work".
#[inline]
fn seed_task(n: u64) -> u64 {
    (0..n).sum()
}

/// The go-pkgz/pool benchmark task: allocate a vector of capacity 1000 and push
/// `black_box(task(1))` into it 1000 times, as the seed's `benchTask(1000)` does.
/// The vector goes through `black_box` so the allocation and the pushes stay;
/// the result, `(item | 1) + len + last` (`last` is `task(1)` = 0), depends on
/// the item so the folded sum still catches skipped or repeated items.
///
/// Never inlined: a call is nothing next to its thousand pushes, and inlining
/// it into every per-item loop would bloat the loops of the other workloads,
/// which dispatch on the task at run time.
#[inline(never)]
pub(crate) fn seed_work(item: u64) -> u64 {
    let mut values: Vec<u64> = Vec::with_capacity(SEED_PUSHES);
    for _ in 0..SEED_PUSHES {
        values.push(black_box(seed_task(1)));
    }
    let values = black_box(values);
    let last = values.last().copied().unwrap_or(0);
    (item | 1)
        .wrapping_add(values.len() as u64)
        .wrapping_add(last)
}

/// What one timed run produced.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Run {
    /// Time from the first item handed over to the last result folded in.
    pub(crate) elapsed: Duration,
    /// The wrapping sum of all work results.
    pub(crate) sum: u64,
    /// Items processed (fewer than the workload's for thread-per-item).
    pub(crate) n_items: u64,
}

impl Run {
    /// A run of `n_items` items that took `elapsed` and folded to `sum`.
    pub(crate) fn new(elapsed: Duration, sum: u64, n_items: u64) -> Self {
        Self {
            elapsed,
            sum,
            n_items,
        }
    }

    /// Nanoseconds per item.
    pub(crate) fn ns_per_item(&self) -> f64 {
        self.elapsed.as_nanos() as f64 / self.n_items.max(1) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_rounds_returns_the_item_made_odd() {
        assert_eq!(work(0, 0), 1);
        assert_eq!(work(6, 0), 7);
    }

    #[test]
    fn one_round_is_one_xorshift64_step() {
        let mut value: u64 = 1;
        value ^= value << 13;
        value ^= value >> 7;
        value ^= value << 17;
        assert_eq!(work(0, 1), value);
        assert_ne!(work(1, 200), work(3, 200));
    }

    #[test]
    fn skewed_items_do_more_rounds() {
        assert_eq!(W5_SKEWED.kernel().rounds_of(0), 20_000);
        assert_eq!(W5_SKEWED.kernel().rounds_of(1), 200);
        assert_eq!(W5_SKEWED.kernel().rounds_of(300), 20_000);
        assert_eq!(W2_CPU.kernel().rounds_of(300), 200);
        assert_eq!(W5_SKEWED.work(7), work(7, 200));
    }

    #[test]
    fn workloads_are_found_by_id_or_name() {
        assert_eq!(Workload::find("w1"), Some(W1_OVERHEAD));
        assert_eq!(Workload::find("CPU"), Some(W2_CPU));
        assert_eq!(Workload::find("skewed"), Some(W5_SKEWED));
        assert_eq!(Workload::find("W3"), Some(W3_SEED));
        assert_eq!(Workload::find("multi-producer"), Some(W6_MULTI_PRODUCER));
        assert_eq!(Workload::find("heavy-tail"), Some(W8_HEAVY_TAIL));
        assert_eq!(Workload::find("heavytail"), Some(W8_HEAVY_TAIL));
        // W7 has its own runner and is selected in main.
        assert_eq!(Workload::find("W7"), None);
        assert_eq!(W1_OVERHEAD.quick().n_items, 50_000);
    }

    #[test]
    fn heavy_tail_costs_are_log_normal_and_fixed() {
        let rounds = heavy_tail_rounds();
        assert_eq!(rounds.len() as u64, W8_HEAVY_TAIL.n_items);
        let mut sorted = rounds.to_vec();
        sorted.sort_unstable();
        let median = sorted[sorted.len() / 2];
        assert!((55..=65).contains(&median), "median {median}");
        let max = sorted[sorted.len() - 1];
        assert!(max <= HEAVY_TAIL_MAX_ROUNDS && max > 20_000, "max {max}");
        assert!(sorted[0] >= 1);
        // The tail: one item in a thousand is over 100 times the median.
        let heavy = sorted.iter().filter(|&&value| value > 6_000).count();
        assert!(
            (150..=500).contains(&heavy),
            "{heavy} items over 6,000 rounds"
        );
        let mean = sorted.iter().map(|&value| f64::from(value)).sum::<f64>() / sorted.len() as f64;
        assert!((165.0..205.0).contains(&mean), "mean {mean}");
        // Every implementation does the same work for an item.
        assert_eq!(W8_HEAVY_TAIL.work(5), work(5, rounds[5]));
        assert_eq!(W8_HEAVY_TAIL.kernel().rounds_of(300_001), rounds[1]);
    }

    #[test]
    fn seed_work_allocates_and_still_depends_on_the_item() {
        assert_eq!(seed_task(1), 0);
        assert_eq!(seed_task(4), 6);
        assert_eq!(seed_work(6), 7 + 1_000);
        assert_eq!(W3_SEED.work(2), 3 + 1_000);
    }

    #[test]
    fn producer_ranges_cover_the_items_once() {
        for (n_items, parts) in [(10, 4), (3, 4), (1_000_000, 4), (7, 1), (0, 3)] {
            let mut next = 0;
            for part in 0..parts {
                let range = split_range(n_items, parts, part);
                assert_eq!(range.start, next, "{n_items} items in {parts} parts");
                assert!(range.end - range.start <= n_items / parts as u64 + 1);
                next = range.end;
            }
            assert_eq!(next, n_items);
        }
        assert_eq!(
            split_range(W6_MULTI_PRODUCER.n_items, W6_MULTI_PRODUCER.producers, 3),
            750_000..1_000_000
        );
    }
}
