//! A small seeded random number generator for the generated workloads (W7's
//! log file, W8's per-item costs).
//!
//! Written out here rather than taken from the `rand` crate: the workloads must
//! be the same bytes and the same costs on every run and every machine, and
//! `rand` documents that its seedable generators' output may change between
//! versions (`StdRng` explicitly), while the log-normal distribution would need
//! `rand_distr` too. Twenty lines of splitmix64 fix the sequence forever.

/// splitmix64 (Steele, Lea and Flood; the seeder of xoshiro): one 64-bit state,
/// every seed fine (zero included), good enough statistics for picking log
/// lines and item costs.
#[derive(Debug, Clone)]
pub(crate) struct SplitMix64 {
    /// The state, advanced by the golden-ratio increment per draw.
    state: u64,
}

impl SplitMix64 {
    /// A generator starting from `seed`.
    pub(crate) fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// The next 64 random bits.
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform float in `[0, 1)` (53 random bits).
    pub(crate) fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1_u64 << 53) as f64)
    }

    /// A uniform integer in `0..bound` (`bound` > 0), by multiply-shift
    /// (Lemire; the bias is below 2^-32 for the small bounds used here).
    pub(crate) fn below(&mut self, bound: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(bound)) >> 64) as u64
    }

    /// A standard normal deviate (Box–Muller, one of the pair).
    pub(crate) fn standard_normal(&mut self) -> f64 {
        // 1 - [0, 1) is (0, 1]: the logarithm stays finite.
        let radius = (-2.0 * (1.0 - self.next_f64()).ln()).sqrt();
        radius * (std::f64::consts::TAU * self.next_f64()).cos()
    }

    /// A log-normal deviate: `median * exp(sigma * z)`, z standard normal.
    pub(crate) fn log_normal(&mut self, median: f64, sigma: f64) -> f64 {
        median * (sigma * self.standard_normal()).exp()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sequence_is_fixed_by_the_seed() {
        // splitmix64's published first output for seed 0.
        assert_eq!(SplitMix64::new(0).next_u64(), 0xE220_A839_7B1D_CDAF);
        let (mut left, mut right) = (SplitMix64::new(7), SplitMix64::new(7));
        assert!((0..100).all(|_| left.next_u64() == right.next_u64()));
    }

    #[test]
    fn draws_stay_in_range_and_look_uniform_and_normal() {
        let mut rng = SplitMix64::new(42);
        let draws = 100_000;
        let mut below_ten = [0_u32; 10];
        let (mut sum, mut sum_sq) = (0.0, 0.0);
        for _ in 0..draws {
            let unit = rng.next_f64();
            assert!((0.0..1.0).contains(&unit));
            below_ten[rng.below(10) as usize] += 1;
            let z = rng.standard_normal();
            sum += z;
            sum_sq += z * z;
        }
        assert!(
            below_ten
                .iter()
                .all(|&count| (9_000..11_000).contains(&count))
        );
        let mean = sum / f64::from(draws);
        let variance = sum_sq / f64::from(draws) - mean * mean;
        assert!(mean.abs() < 0.02, "mean {mean}");
        assert!((variance - 1.0).abs() < 0.03, "variance {variance}");
    }
}
