//! Property tests of `Router` and `jump_hash`, run with proptest.
//!
//! For any bucket count and any keys (integers, strings, composite keys, raw
//! hashes), this proves:
//!
//! - a key's bucket is below the bucket count;
//! - the same key always gets the same bucket: twice from one router, from a
//!   new router, from `Router::with_buckets`, and by hashing it with the
//!   router's `KeyHasher` then calling `jump_hash`, at every bucket count;
//! - growing the buckets from `n` to `n + 1` moves a key only into the new
//!   bucket `n`, and growing from `n` to `m` only into the new buckets `n..m`;
//! - `jump_hash` and `Router::new` accept exactly `1..=MAX_BUCKETS` and refuse
//!   0 and everything above with the typed error whose message names
//!   `buckets`; `Router::with_buckets` refuses counts beyond `u32` the same way.
//!
//! Proptest shrinks a failing case to a minimal one (the smallest bucket count
//! and the simplest key that still fail) and prints it. The seed is fixed, so
//! CI runs the same cases every time; `PROPTEST_RNG_SEED` picks other ones.

use pool_chunk::{ChunkError, MAX_BUCKETS, Router, jump_hash};
use proptest::prelude::*;
use proptest::test_runner::RngSeed;

/// The seed of every run unless `PROPTEST_RNG_SEED` says otherwise.
const SEED: u64 = 0x5eed_c4a2_0000_0002;

/// `cases` cases from the fixed seed, and no regression files in the source tree:
/// a failure prints its minimal input, and the fixed seed reproduces it.
fn config(cases: u32) -> ProptestConfig {
    let mut config = ProptestConfig::with_cases(cases);
    if config.rng_seed == RngSeed::Random {
        config.rng_seed = RngSeed::Fixed(SEED);
    }
    config.failure_persistence = None;
    config
}

/// The kinds of key a pool is routed by.
#[derive(Debug, Clone, Hash)]
enum Key {
    Number(u64),
    Text(String),
    Composite(u32, Vec<u8>),
}

fn key() -> impl Strategy<Value = Key> {
    prop_oneof![
        any::<u64>().prop_map(Key::Number),
        ".{0,24}".prop_map(Key::Text),
        (any::<u32>(), prop::collection::vec(any::<u8>(), 0..16))
            .prop_map(|(id, bytes)| Key::Composite(id, bytes)),
    ]
}

/// Bucket counts in the checked range, weighted towards its edges.
fn valid_buckets() -> impl Strategy<Value = u32> {
    prop_oneof![
        1..=1024u32,
        (MAX_BUCKETS - 1024)..=MAX_BUCKETS,
        1..=MAX_BUCKETS,
    ]
}

fn router(buckets: u32) -> Router {
    Router::new(buckets).expect("bucket counts here are in range")
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn a_key_always_gets_the_same_bucket_below_the_count(
        buckets in 1..=1024u32,
        keys in prop::collection::vec(key(), 1..32),
    ) {
        let first = router(buckets);
        let second = router(buckets);
        let from_usize = Router::with_buckets(buckets as usize).expect("in range");
        prop_assert_eq!(first.buckets(), buckets);
        for key in &keys {
            let bucket = first.route(key);
            prop_assert!(bucket < buckets as usize, "{key:?} went to {bucket} of {buckets}");
            prop_assert_eq!(first.route(key), bucket, "same router, same key");
            prop_assert_eq!(second.route(key), bucket, "new router, same key");
            prop_assert_eq!(from_usize.route(key), bucket, "with_buckets, same key");
            let hash = first.hasher().hash(key);
            prop_assert_eq!(jump_hash(hash, buckets), Ok(bucket as u32), "jump_hash of the key's hash");
        }
    }

    #[test]
    fn growing_by_one_moves_keys_only_into_the_new_bucket(
        buckets in 1..1024u32,
        keys in prop::collection::vec(key(), 1..32),
    ) {
        let before = router(buckets);
        let after = router(buckets + 1);
        for key in &keys {
            let (old, new) = (before.route(key), after.route(key));
            prop_assert!(
                new == old || new == buckets as usize,
                "{key:?} moved from {old} to {new} when {buckets} buckets became {}",
                buckets + 1
            );
        }
    }

    #[test]
    fn growing_any_count_moves_hashes_only_into_new_buckets(
        buckets in valid_buckets(),
        growth in 1..=64u32,
        hashes in prop::collection::vec(any::<u64>(), 1..32),
    ) {
        let grown = buckets.saturating_add(growth).min(MAX_BUCKETS);
        prop_assume!(grown > buckets);
        for hash in hashes {
            let old = jump_hash(hash, buckets).expect("in range");
            let next = jump_hash(hash, buckets + 1).expect("in range");
            let new = jump_hash(hash, grown).expect("in range");
            prop_assert!(old < buckets && next <= buckets && new < grown);
            prop_assert!(next == old || next == buckets, "{hash}: {old} -> {next} on +1");
            prop_assert!(new == old || new >= buckets, "{hash}: {old} -> {new} on {buckets} -> {grown}");
        }
    }

    #[test]
    fn every_count_up_to_the_maximum_is_accepted(
        buckets in valid_buckets(),
        hash in any::<u64>(),
        key in key(),
    ) {
        let bucket = jump_hash(hash, buckets);
        prop_assert!(matches!(bucket, Ok(bucket) if bucket < buckets), "{bucket:?}");
        // A router of any accepted count routes a key as `jump_hash` of its hash.
        let router = router(buckets);
        let routed = router.route(&key);
        prop_assert!(routed < buckets as usize, "{key:?} went to {routed} of {buckets}");
        prop_assert_eq!(jump_hash(router.hasher().hash(&key), buckets), Ok(routed as u32));
    }

    #[test]
    fn zero_and_too_many_buckets_are_typed_errors(
        too_many in (MAX_BUCKETS + 1)..=u32::MAX,
        beyond_u32 in (u64::from(u32::MAX) + 1)..=u64::MAX,
        hash in any::<u64>(),
    ) {
        prop_assert_eq!(jump_hash(hash, 0), Err(ChunkError::ZeroBuckets));
        prop_assert_eq!(Router::new(0).err(), Some(ChunkError::ZeroBuckets));
        prop_assert_eq!(Router::with_buckets(0).err(), Some(ChunkError::ZeroBuckets));
        prop_assert!(ChunkError::ZeroBuckets.to_string().contains("buckets"));

        let expected = ChunkError::TooManyBuckets { buckets: u64::from(too_many), max: MAX_BUCKETS };
        prop_assert_eq!(jump_hash(hash, too_many), Err(expected));
        prop_assert_eq!(Router::new(too_many).err(), Some(expected));
        prop_assert_eq!(Router::with_buckets(too_many as usize).err(), Some(expected));
        let message = expected.to_string();
        prop_assert!(message.contains("buckets") && message.contains(&too_many.to_string()), "{message}");

        if let Ok(beyond_u32) = usize::try_from(beyond_u32) {
            prop_assert_eq!(
                Router::with_buckets(beyond_u32).err(),
                Some(ChunkError::TooManyBuckets { buckets: beyond_u32 as u64, max: MAX_BUCKETS })
            );
        }
    }
}
