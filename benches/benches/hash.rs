//! Routing keys to workers, briefly: [`jump_hash`] on pre-hashed `u64` keys
//! and [`Router::route`] (hash plus jump) on `u64` keys, at 2, 8 and 64
//! buckets. The detailed version, with string keys and the hasher alone, is
//! `cargo bench -p pool-chunk --bench route`.
//!
//! Each iteration routes [`BATCH`] keys; the throughput is per key.
//!
//! Run with `cargo bench -p workforce-benches --bench hash`.

use std::hint::black_box;
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, BenchmarkId, Criterion, Throughput, criterion_main};
use pool_chunk::{Router, jump_hash};

/// Keys per iteration: enough to amortise the loop, few enough to stay in cache.
const BATCH: usize = 1024;

/// Bucket counts measured: a tiny pool, a typical one and a large one.
const BUCKETS: [u32; 3] = [2, 8, 64];

/// `BATCH` distinct, well-spread `u64` keys (a splitmix64 sequence).
fn u64_keys() -> Vec<u64> {
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    (0..BATCH)
        .map(|_| {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut mixed = state;
            mixed = (mixed ^ (mixed >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            mixed = (mixed ^ (mixed >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            mixed ^ (mixed >> 31)
        })
        .collect()
}

/// A short group: these loops are nanoseconds per key and settle quickly.
fn short_group<'c>(criterion: &'c mut Criterion, name: &str) -> BenchmarkGroup<'c, WallTime> {
    let mut group = criterion.benchmark_group(name);
    group.throughput(Throughput::Elements(BATCH as u64));
    group.sample_size(20);
    group.warm_up_time(Duration::from_millis(300));
    group.measurement_time(Duration::from_secs(1));
    group
}

/// `jump_hash` alone on keys that are already well mixed (its bucket-count
/// check included).
fn jump(criterion: &mut Criterion) {
    let keys = u64_keys();
    let mut group = short_group(criterion, "hash/jump_hash");
    for buckets in BUCKETS {
        group.bench_with_input(
            BenchmarkId::from_parameter(buckets),
            &keys,
            |bencher, keys| {
                bencher.iter(|| {
                    for &key in keys {
                        black_box(jump_hash(black_box(key), black_box(buckets)).ok());
                    }
                });
            },
        );
    }
    group.finish();
}

/// `Router::route` on `u64` keys: `KeyHasher` plus the jump.
fn route(criterion: &mut Criterion) {
    let keys = u64_keys();
    let mut group = short_group(criterion, "hash/route_u64");
    for buckets in BUCKETS {
        let router = Router::new(buckets).expect("bucket counts above are in range");
        group.bench_with_input(
            BenchmarkId::from_parameter(buckets),
            &keys,
            |bencher, keys| {
                bencher.iter(|| {
                    for key in keys {
                        black_box(router.route(black_box(key)));
                    }
                });
            },
        );
    }
    group.finish();
}

/// The group `criterion_main!` runs. It lives in a private module because
/// `criterion_group!` generates a `pub fn` that cannot carry a doc comment and
/// `missing_docs` is denied for public items.
mod group {
    use super::{jump, route};

    criterion::criterion_group!(benches, jump, route);
}

criterion_main!(group::benches);
