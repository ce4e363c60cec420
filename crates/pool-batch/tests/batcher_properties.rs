//! Property tests of `Batcher`, run with proptest against a small model.
//!
//! For any batch size and any sequence of push, flush and recycle (of batches
//! it handed out and of foreign `Vec`s), this proves:
//!
//! - the concatenation of every batch handed out, followed by the final flush,
//!   is exactly the pushed items in push order: nothing lost, duplicated or
//!   reordered, and no item of a recycled `Vec` ever reappears;
//! - a push hands out a batch exactly when it fills one, and that batch has
//!   exactly `batch_size` items; `flush` hands out exactly the remainder
//!   (`1..batch_size` items) and `None` when there is none;
//! - `len`, `is_empty` and `batch_size` always match the model, and every
//!   batch handed out has room for a full batch;
//! - `Batcher::new` accepts exactly the sizes a `Vec<T>` can hold, and refuses
//!   the others with the typed error, whose `max` is the largest accepted size.
//!
//! Which buffers are kept as spares and reused, and how many, is checked by the
//! crate's own unit tests (`src/tests/spares_model.rs`), which can see them.
//!
//! Proptest shrinks a failing case to a minimal one (the shortest sequence of
//! operations and the smallest batch size that still fail) and prints it. The
//! seed is fixed, so CI runs the same cases every time; `PROPTEST_RNG_SEED`
//! picks other ones.

use std::collections::VecDeque;

use pool_batch::{BatchSizeError, Batcher};
use proptest::prelude::*;
use proptest::test_runner::RngSeed;

/// The seed of every run unless `PROPTEST_RNG_SEED` says otherwise.
const SEED: u64 = 0x5eed_ba7c_4e55_0001;

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

#[path = "common/ops.rs"]
mod ops;
use ops::{Op, op};

/// What the `Batcher` should hold, kept independently of it.
struct Model {
    batch_size: usize,
    /// Items in the open batch.
    open_len: usize,
}

impl Model {
    /// Checks a batch just handed out: its size, and room for a full batch.
    fn check_handed_out(&mut self, batch: &[u32], capacity: usize, expected_len: usize) {
        assert_eq!(batch.len(), expected_len, "batch length");
        assert!(
            capacity >= self.batch_size,
            "a batch buffer holds a full batch"
        );
        self.open_len = 0;
    }
}

/// Runs `ops` on a `Batcher` of `batch_size` and checks it against the model.
fn run(batch_size: usize, ops: &[Op]) {
    let mut batcher = Batcher::<u32>::new(batch_size).expect("sizes here are valid");
    let mut model = Model {
        batch_size,
        open_len: 0,
    };
    let mut next_item: u32 = 0;
    // Everything handed out, in the order it was handed out.
    let mut handed_out: Vec<u32> = Vec::new();
    // Batches the consumer holds and may recycle later.
    let mut held: VecDeque<Vec<u32>> = VecDeque::new();

    for op in ops {
        match *op {
            Op::Push(count) => {
                for _ in 0..count {
                    let filled = model.open_len + 1 == batch_size;
                    let outcome = batcher.push(next_item);
                    next_item += 1;
                    match outcome {
                        Some(batch) => {
                            assert!(filled, "a batch was handed out before it was full");
                            model.check_handed_out(&batch, batch.capacity(), batch_size);
                            handed_out.extend_from_slice(&batch);
                            held.push_back(batch);
                        }
                        None => {
                            assert!(!filled, "the push that filled the batch handed out nothing");
                            model.open_len += 1;
                        }
                    }
                }
            }
            Op::Flush => match batcher.flush() {
                Some(batch) => {
                    assert!(model.open_len > 0, "flush of an empty batch handed out one");
                    assert!(batch.len() < batch_size, "a flushed batch is never full");
                    let expected_len = model.open_len;
                    model.check_handed_out(&batch, batch.capacity(), expected_len);
                    handed_out.extend_from_slice(&batch);
                    held.push_back(batch);
                }
                None => assert_eq!(model.open_len, 0, "flush lost the open batch"),
            },
            Op::Recycle(pick) => {
                if !held.is_empty() {
                    let batch = held.remove(pick % held.len()).expect("index is in range");
                    batcher.recycle(batch);
                }
            }
            Op::RecycleForeign { capacity, filled } => {
                let mut foreign = Vec::with_capacity(capacity);
                // Values no push ever makes, so a leftover would show in the output.
                foreign.extend((0..filled.min(capacity)).map(|n| u32::MAX - n as u32));
                batcher.recycle(foreign);
            }
            Op::DropHeld(pick) => {
                if !held.is_empty() {
                    drop(held.remove(pick % held.len()));
                }
            }
        }
        assert_eq!(batcher.len(), model.open_len, "len");
        assert_eq!(batcher.is_empty(), model.open_len == 0, "is_empty");
        assert!(batcher.len() < batch_size, "the open batch is never full");
        assert_eq!(batcher.batch_size(), batch_size, "batch_size never changes");
    }

    if let Some(rest) = batcher.flush() {
        let expected_len = model.open_len;
        model.check_handed_out(&rest, rest.capacity(), expected_len);
        handed_out.extend_from_slice(&rest);
    }
    assert!(batcher.is_empty(), "the final flush empties the batcher");
    let pushed: Vec<u32> = (0..next_item).collect();
    assert_eq!(
        handed_out, pushed,
        "handed-out batches are not the pushed items"
    );
}

/// Whether a `Vec<T>` of `n` items fits the allocator's limit of `isize::MAX`
/// bytes: the documented rule, computed here without `Layout`.
fn fits<T>(n: usize) -> bool {
    n.checked_mul(size_of::<T>())
        .is_some_and(|bytes| bytes <= isize::MAX as usize)
}

/// `Batcher::<T>::new(n)` is `Ok` exactly when `1 <= n` and `n` items fit, and
/// otherwise the matching typed error, whose `max` is the largest size that fits.
fn check_new<T>(n: usize) {
    match Batcher::<T>::new(n) {
        Ok(batcher) => {
            assert!(n >= 1 && fits::<T>(n), "accepted {n}");
            assert_eq!(batcher.batch_size(), n);
            assert!(batcher.is_empty());
        }
        Err(BatchSizeError::Zero) => {
            assert_eq!(n, 0, "refused {n} as zero");
            assert!(BatchSizeError::Zero.to_string().contains("batch_size"));
        }
        Err(error @ BatchSizeError::TooLarge { batch_size, max }) => {
            assert_eq!(batch_size, n, "the error names the refused size");
            assert!(!fits::<T>(n), "refused {n}, which fits");
            assert!(fits::<T>(max), "max {max} does not fit");
            assert!(
                !fits::<T>(max + 1),
                "max {max} is not the largest size that fits"
            );
            assert!(error.to_string().contains("batch_size"), "{error}");
        }
    }
}

/// Sizes around every boundary of `T`, and anything else.
fn size_for<T>() -> impl Strategy<Value = usize> {
    let largest = (isize::MAX as usize)
        .checked_div(size_of::<T>())
        .unwrap_or(usize::MAX);
    prop_oneof![
        0..=64usize,
        largest.saturating_sub(64)..=largest.saturating_add(64),
        any::<usize>(),
    ]
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn every_item_comes_back_once_in_order_in_exact_batches(
        batch_size in 1..=40usize,
        ops in prop::collection::vec(op(), 0..120),
    ) {
        run(batch_size, &ops);
    }

    #[test]
    fn new_accepts_exactly_the_sizes_a_vec_can_hold(
        for_u8 in size_for::<u8>(),
        for_u64 in size_for::<u64>(),
        for_odd in size_for::<[u8; 3]>(),
        for_wide in size_for::<[u64; 5]>(),
        for_zst in size_for::<()>(),
    ) {
        check_new::<u8>(for_u8);
        check_new::<u64>(for_u64);
        check_new::<[u8; 3]>(for_odd);
        check_new::<[u64; 5]>(for_wide);
        check_new::<()>(for_zst);
    }
}
