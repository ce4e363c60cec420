//! The workloads of BENCHMARKS.md that peer-bench runs, and the per-item work.

use std::fmt;

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
};

/// W2 `cpu`: CPU-bound items, measuring scaling against `sequential / cores`.
pub(crate) const W2_CPU: Workload = Workload {
    id: "W2",
    name: "cpu",
    n_items: 200_000,
    rounds: 200,
    skew: None,
    keyed: false,
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
};

/// Every workload peer-bench knows, in the order it runs them.
pub(crate) const ALL_WORKLOADS: [Workload; 4] = [W1_OVERHEAD, W2_CPU, W4_KEYED, W5_SKEWED];

/// How many times smaller the item count is under `--quick`.
pub(crate) const QUICK_DIVISOR: u64 = 20;

impl Workload {
    /// Finds a workload by id (`W1`) or name (`overhead`), ignoring case.
    pub(crate) fn find(text: &str) -> Option<Self> {
        ALL_WORKLOADS.into_iter().find(|workload| {
            workload.id.eq_ignore_ascii_case(text) || workload.name.eq_ignore_ascii_case(text)
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

    /// The rounds `item` does.
    #[inline]
    pub(crate) fn rounds_of(&self, item: u64) -> u32 {
        match self.skew {
            Some(skew) if item.is_multiple_of(skew.every) => self.rounds * skew.factor,
            _ => self.rounds,
        }
    }

    /// The work of one item of this workload.
    #[inline]
    pub(crate) fn work(&self, item: u64) -> u64 {
        work(item, self.rounds_of(item))
    }

    /// A description of the per-item work for table titles.
    pub(crate) fn work_text(&self) -> String {
        let mut text = format!("work(x, {})", self.rounds);
        if let Some(skew) = self.skew {
            text.push_str(&format!(", every {}th x {}", skew.every, skew.factor));
        }
        if self.keyed {
            text.push_str(&format!(", key x % {N_KEYS}"));
        }
        text
    }
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
        assert_eq!(W5_SKEWED.rounds_of(0), 20_000);
        assert_eq!(W5_SKEWED.rounds_of(1), 200);
        assert_eq!(W5_SKEWED.rounds_of(300), 20_000);
        assert_eq!(W2_CPU.rounds_of(300), 200);
        assert_eq!(W5_SKEWED.work(7), work(7, 200));
    }

    #[test]
    fn workloads_are_found_by_id_or_name() {
        assert_eq!(Workload::find("w1"), Some(W1_OVERHEAD));
        assert_eq!(Workload::find("CPU"), Some(W2_CPU));
        assert_eq!(Workload::find("skewed"), Some(W5_SKEWED));
        assert_eq!(Workload::find("W3"), None);
        assert_eq!(W1_OVERHEAD.quick().n_items, 50_000);
    }
}
