//! Cost of routing one key: [`Router::route`] for `u64` and 16-byte `String`
//! keys at 2, 8 and 64 buckets, and [`jump_hash`] alone on pre-hashed keys.
//!
//! Run with `cargo bench -p pool-chunk --bench route` (add `-- --quick` for a
//! short run). Each iteration routes a batch of [`BATCH`] keys and the
//! throughput is reported per key, so the time per element is nanoseconds per
//! route.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_main};
use pool_chunk::{KeyHasher, Router, jump_hash};

/// Keys routed per iteration; large enough to amortise the loop overhead, small
/// enough that the keys stay in cache.
const BATCH: usize = 1024;

/// Bucket counts measured: a tiny pool, a typical one and a large one.
const BUCKETS: [u32; 3] = [2, 8, 64];

/// `BATCH` distinct, well-spread `u64` keys (a splitmix64 sequence).
fn u64_keys() -> Vec<u64> {
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    (0..BATCH)
        .map(|_| {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        })
        .collect()
}

/// `BATCH` distinct 16-byte `String` keys, shaped like ids ("user-0000000042").
fn string_keys() -> Vec<String> {
    (0..BATCH).map(|i| format!("user-{i:011}")).collect()
}

/// `Router::route` over `keys` at every bucket count, as group `name`.
fn route_group<K: std::hash::Hash>(c: &mut Criterion, name: &str, keys: &[K]) {
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Elements(BATCH as u64));
    for buckets in BUCKETS {
        let router = Router::new(buckets).expect("bucket count in range");
        group.bench_with_input(BenchmarkId::from_parameter(buckets), keys, |b, keys| {
            b.iter(|| {
                for key in keys {
                    black_box(router.route(black_box(key)));
                }
            });
        });
    }
    group.finish();
}

/// `Router::route` on `u64` keys.
fn route_u64(c: &mut Criterion) {
    route_group(c, "route_u64", &u64_keys());
}

/// `Router::route` on 16-byte `String` keys.
fn route_string(c: &mut Criterion) {
    let keys = string_keys();
    debug_assert!(keys.iter().all(|k| k.len() == 16));
    route_group(c, "route_string16", &keys);
}

/// `KeyHasher::hash` alone on `u64` keys, for the split between hashing and
/// jumping.
fn hash_u64(c: &mut Criterion) {
    let keys = u64_keys();
    let hasher = KeyHasher::new();
    let mut group = c.benchmark_group("key_hasher_u64");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("hash", |b| {
        b.iter(|| {
            for key in &keys {
                black_box(hasher.hash(black_box(key)));
            }
        });
    });
    group.finish();
}

/// `jump_hash` alone on keys that are already hashed (includes its bucket-count
/// check, which `Router` does once at construction instead).
fn jump_only(c: &mut Criterion) {
    let keys = u64_keys();
    let mut group = c.benchmark_group("jump_hash");
    group.throughput(Throughput::Elements(BATCH as u64));
    for buckets in BUCKETS {
        group.bench_with_input(BenchmarkId::from_parameter(buckets), &keys, |b, keys| {
            b.iter(|| {
                for &key in keys {
                    black_box(jump_hash(black_box(key), black_box(buckets)).ok());
                }
            });
        });
    }
    group.finish();
}

/// The group `criterion_main!` runs. It lives in a private module because
/// `criterion_group!` generates a `pub fn` that cannot carry a doc comment and
/// `missing_docs` is denied for public items.
mod group {
    use super::{hash_u64, jump_only, route_string, route_u64};

    criterion::criterion_group!(benches, route_u64, route_string, hash_u64, jump_only);
}

criterion_main!(group::benches);
