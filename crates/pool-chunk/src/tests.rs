//! Unit tests of `Router::route_hash`, which only the crate can call: it is
//! exactly `jump_hash` on any raw hash, at every accepted bucket count, and
//! `route` is exactly `route_hash` of the key's `KeyHasher` hash. The
//! integration tests in `tests/` check the same routing through the public API
//! (`Router::route`, and `jump_hash` of `KeyHasher::hash`).

use proptest::prelude::*;
use proptest::test_runner::RngSeed;

use super::*;

/// The seed of every run unless `PROPTEST_RNG_SEED` says otherwise.
const SEED: u64 = 0x5eed_c4a2_0000_0003;

/// `cases` cases from the fixed seed, and no regression files in the source tree.
fn config(cases: u32) -> ProptestConfig {
    let mut config = ProptestConfig::with_cases(cases);
    if config.rng_seed == RngSeed::Random {
        config.rng_seed = RngSeed::Fixed(SEED);
    }
    config.failure_persistence = None;
    config
}

/// Bucket counts in the checked range, weighted towards its edges.
fn valid_buckets() -> impl Strategy<Value = u32> {
    prop_oneof![
        1..=1024u32,
        (MAX_BUCKETS - 1024)..=MAX_BUCKETS,
        1..=MAX_BUCKETS,
    ]
}

#[test]
fn one_bucket_is_always_bucket_0() {
    let router = Router::new(1).expect("1 is in range");
    for hash in [0, 1, 42, 1 << 63, u64::MAX] {
        assert_eq!(router.route_hash(hash), 0);
    }
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn route_hash_is_jump_hash_at_every_count(
        buckets in valid_buckets(),
        hashes in prop::collection::vec(any::<u64>(), 1..32),
    ) {
        let router = Router::new(buckets).expect("in range");
        for hash in hashes {
            let bucket = router.route_hash(hash);
            prop_assert!(bucket < buckets as usize, "{hash} went to {bucket} of {buckets}");
            prop_assert_eq!(jump_hash(hash, buckets), Ok(bucket as u32), "{}", hash);
        }
    }

    #[test]
    fn route_is_route_hash_of_the_key_hash(
        buckets in valid_buckets(),
        keys in prop::collection::vec((any::<u64>(), ".{0,24}"), 1..32),
    ) {
        let router = Router::new(buckets).expect("in range");
        for (number, text) in &keys {
            let hasher = router.hasher();
            prop_assert_eq!(router.route(number), router.route_hash(hasher.hash(number)));
            prop_assert_eq!(router.route(text), router.route_hash(hasher.hash(text)));
        }
    }
}
