//! Key routing for the workforce pools: which worker gets an item with a
//! given key.
//!
//! Sending every item with the same key (a user id, an account, a file path) to
//! the same worker keeps the items of one key in submission order and keeps a
//! worker's per-key cache warm. `pool-core` uses this crate on its submit path
//! (`Builder::chunk_by`); it depends on no other workspace crate and is usable
//! alone by anyone who needs to route keys to a fixed number of buckets.
//!
//! Two steps, each usable on its own:
//! - [`KeyHasher`]: any `K: Hash` to a `u64`, with `ahash` under fixed seeds, so
//!   a key gets the same hash in every run and every process of the same build.
//! - [`jump_hash`]: a `u64` to a bucket in `0..buckets` by Lamping and Veach's
//!   jump consistent hash: no table, no allocation, an even spread, and when the
//!   number of buckets grows from `n` to `n + 1` only about `1 / (n + 1)` of the
//!   keys move, all of them into the new bucket.
//!
//! [`Router`] combines the two: key in, bucket (worker index) out, in one call.
//!
//! ```
//! use pool_chunk::Router;
//!
//! let router = Router::new(4)?;
//! let worker = router.route("customer-42");
//! assert!(worker < 4);
//! // The same key always lands on the same worker.
//! assert_eq!(router.route("customer-42"), worker);
//! assert_eq!(Router::new(4)?.route("customer-42"), worker);
//! # Ok::<(), pool_chunk::ChunkError>(())
//! ```
//!
//! # Stability
//!
//! A key's hash, and so its bucket, depends only on the key's `Hash`
//! implementation, the fixed seeds in this crate, the `ahash` version, and the
//! target (`ahash` picks an AES-based or a portable algorithm at compile time
//! from the target's features, and its output differs between the two). Within
//! one build it is the same in every run and every process. It may change with a
//! new major (0.x minor) version of `ahash`, a different target or target
//! features, or a change to the key type's `Hash` (for example `#[derive(Hash)]`
//! after fields are reordered). The tests pin some values, so an update that
//! changes them fails loudly. [`jump_hash`] itself is fixed by the published
//! algorithm and never changes.
//!
//! # What it is not for
//!
//! - Hashing untrusted input where collisions could be forced: fixed seeds make
//!   the hash predictable, so it offers no HashDoS resistance.
//! - A general `HashMap` hasher, or a persistent hash whose values are stored and
//!   compared across builds.
//! - Weighted or load-aware balancing: every bucket gets an equal share of keys,
//!   however busy it is. A hot key makes a hot worker.

// On docs.rs (`--cfg docsrs`), items behind a feature say which one.
#![cfg_attr(docsrs, feature(doc_cfg))]

use std::hash::{BuildHasher, Hash, Hasher};

/// The largest number of buckets [`jump_hash`] and [`Router`] accept.
///
/// Jump hash is defined for up to 2³¹ buckets (its LCG step yields 31 bits of
/// randomness per jump), which is also far beyond any pool's worker count.
pub const MAX_BUCKETS: u32 = 1 << 31;

/// The fixed `ahash` seeds of [`KeyHasher`]: the first 32 bytes of the
/// fractional part of π, as in many published hash seeds. Changing them changes
/// every key's bucket.
const SEEDS: [u64; 4] = [
    0x243f_6a88_85a3_08d3,
    0x1319_8a2e_0370_7344,
    0xa409_3822_299f_31d0,
    0x082e_fa98_ec4e_6c89,
];

/// Why a bucket count was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChunkError {
    /// `buckets` was 0: there is no bucket to route to.
    #[error("buckets must be at least 1, got 0")]
    ZeroBuckets,
    /// `buckets` was above [`MAX_BUCKETS`].
    #[error("buckets must be at most {max}, got {buckets}")]
    TooManyBuckets {
        /// The requested number of buckets.
        buckets: u64,
        /// The largest number accepted.
        max: u32,
    },
}

fn check_buckets(buckets: u32) -> Result<(), ChunkError> {
    if buckets == 0 {
        Err(ChunkError::ZeroBuckets)
    } else if buckets > MAX_BUCKETS {
        Err(ChunkError::TooManyBuckets {
            buckets: u64::from(buckets),
            max: MAX_BUCKETS,
        })
    } else {
        Ok(())
    }
}

/// The multiplier of the 64-bit linear congruential generator in the paper.
const LCG_MULTIPLIER: u64 = 2_862_933_555_777_941_757;

/// Jump consistent hash (Lamping and Veach, "A Fast, Minimal Memory, Consistent
/// Hash Algorithm", 2014): the bucket in `0..buckets` for `key`.
///
/// Keys should already be well mixed (for example by [`KeyHasher`]); the
/// algorithm itself only seeds a random walk with the key. Takes about
/// `ln(buckets)` steps, with no table and no allocation.
///
/// # Errors
///
/// [`ChunkError::ZeroBuckets`] for 0 buckets and [`ChunkError::TooManyBuckets`]
/// above [`MAX_BUCKETS`]. [`Router`] checks once at construction instead of on
/// every call.
///
/// ```
/// use pool_chunk::{ChunkError, jump_hash};
///
/// assert_eq!(jump_hash(2, 100_001)?, 80_343); // a published reference value
/// assert_eq!(jump_hash(7, 1)?, 0);
/// assert_eq!(jump_hash(7, 0), Err(ChunkError::ZeroBuckets));
/// # Ok::<(), ChunkError>(())
/// ```
pub fn jump_hash(key: u64, buckets: u32) -> Result<u32, ChunkError> {
    check_buckets(buckets)?;
    Ok(jump_unchecked(key, buckets))
}

/// How far (in units of `(b + 1) * 2^31` against `buckets * (r + 1)`) the exact
/// quotient must clear `buckets` for the integer exit test of [`jump_unchecked`]
/// to agree with the paper's floating-point one; see there.
const EXIT_SLACK: u64 = 2_048;

/// [`jump_hash`] for a bucket count already checked to be in `1..=MAX_BUCKETS`.
///
/// The paper's step computes `j = floor((b + 1) * (2^31 / (r + 1)))` in `f64`,
/// with `r` the top 31 bits of the LCG state, and stops when `j >= buckets`.
/// The division is most of the cost, and the last step only needs the
/// comparison. With `A = (b + 1) * 2^31` and `B = r + 1` (both exact in `u64`,
/// at most 2^62), the exact quotient is `A / B`, and the two roundings of the
/// `f64` version move it by at most `A / B * 2^-52 <= 1024 / B`. So when
/// `A >= buckets * B + 2048`, the `f64` quotient is above `buckets` too and the
/// walk ends without dividing. Otherwise the `f64` step runs exactly as in the
/// paper, so the result is bit-for-bit the published algorithm's (the tests
/// check it against reference values and an independent implementation).
#[inline]
fn jump_unchecked(mut key: u64, buckets: u32) -> u32 {
    let n = u64::from(buckets);
    let mut bucket: u64 = 0;
    loop {
        key = key.wrapping_mul(LCG_MULTIPLIER).wrapping_add(1);
        let divisor = (key >> 33) + 1;
        let scaled = (bucket + 1) << 31;
        if scaled >= n * divisor + EXIT_SLACK {
            break;
        }
        // The paper's step: jump to (b + 1) * 2^31 / (top 31 bits of key + 1).
        // `as` saturates on overflow, which only makes the walk end.
        let scale = (1u64 << 31) as f64 / divisor as f64;
        let next = ((bucket + 1) as f64 * scale) as u64;
        if next >= n {
            break;
        }
        bucket = next;
    }
    // Every bucket the walk visits is below `buckets` <= 2^31.
    bucket as u32
}

/// Hashes any `K: Hash` to a `u64` with `ahash` under fixed seeds (the first
/// 32 bytes of the fractional part of π).
///
/// The same key gets the same hash in every run and process of one build (see
/// the crate's "Stability" section for what may change it).
///
/// ```
/// use pool_chunk::KeyHasher;
///
/// let hasher = KeyHasher::new();
/// assert_eq!(hasher.hash(&"order-17"), KeyHasher::default().hash(&"order-17"));
/// assert_ne!(hasher.hash(&1u64), hasher.hash(&2u64));
/// ```
#[derive(Clone, Debug)]
pub struct KeyHasher {
    state: ahash::RandomState,
}

impl KeyHasher {
    /// A hasher with the fixed seeds.
    pub fn new() -> Self {
        KeyHasher {
            state: ahash::RandomState::with_seeds(SEEDS[0], SEEDS[1], SEEDS[2], SEEDS[3]),
        }
    }

    /// The 64-bit hash of `key`.
    #[inline]
    #[expect(
        clippy::manual_hash_one,
        reason = "ahash's hash_one differs from this on nightly, see the comment"
    )]
    pub fn hash<K: Hash + ?Sized>(&self, key: &K) -> u64 {
        // Not `hash_one` (inherent or `BuildHasher`'s): on a nightly compiler
        // ahash overrides it with specialized code for integers and strings
        // whose output differs from this generic path, so a `u64` key would
        // hash differently on stable and nightly, and `&x` unlike `&&x`.
        let mut hasher = self.state.build_hasher();
        key.hash(&mut hasher);
        hasher.finish()
    }
}

impl Default for KeyHasher {
    fn default() -> Self {
        KeyHasher::new()
    }
}

/// Routes keys to buckets (worker indexes) in `0..buckets`: [`KeyHasher`] then
/// [`jump_hash`], with the bucket count checked once, here.
///
/// ```
/// use pool_chunk::Router;
///
/// let router = Router::new(8)?;
/// let counts = (0..8_000u64).fold([0u32; 8], |mut counts, user_id| {
///     counts[router.route(&user_id)] += 1;
///     counts
/// });
/// assert!(counts.iter().all(|&n| (800..1_200).contains(&n)), "{counts:?}");
/// # Ok::<(), pool_chunk::ChunkError>(())
/// ```
#[derive(Clone, Debug)]
pub struct Router {
    hasher: KeyHasher,
    buckets: u32,
}

impl Router {
    /// A router over `buckets` buckets.
    ///
    /// # Errors
    ///
    /// [`ChunkError::ZeroBuckets`] for 0 and [`ChunkError::TooManyBuckets`] above
    /// [`MAX_BUCKETS`].
    pub fn new(buckets: u32) -> Result<Self, ChunkError> {
        check_buckets(buckets)?;
        Ok(Router {
            hasher: KeyHasher::new(),
            buckets,
        })
    }

    /// A router over `buckets` buckets given as a `usize` (a worker count).
    ///
    /// # Errors
    ///
    /// As [`Router::new`]; counts that do not fit in `u32` are
    /// [`ChunkError::TooManyBuckets`].
    pub fn with_buckets(buckets: usize) -> Result<Self, ChunkError> {
        match u32::try_from(buckets) {
            Ok(buckets) => Router::new(buckets),
            Err(_) => Err(ChunkError::TooManyBuckets {
                buckets: buckets as u64,
                max: MAX_BUCKETS,
            }),
        }
    }

    /// The number of buckets.
    pub fn buckets(&self) -> u32 {
        self.buckets
    }

    /// The hasher this router uses.
    pub fn hasher(&self) -> &KeyHasher {
        &self.hasher
    }

    /// The bucket of `key`.
    #[inline]
    pub fn route<K: Hash + ?Sized>(&self, key: &K) -> usize {
        self.route_hash(self.hasher.hash(key))
    }

    /// The bucket of a key already hashed by [`KeyHasher`]: [`jump_hash`]
    /// without the bucket count check, done once in [`Router::new`].
    #[inline]
    fn route_hash(&self, hash: u64) -> usize {
        jump_unchecked(hash, self.buckets) as usize
    }
}

#[cfg(test)]
mod tests;
