//! Property test of the spare list against a small model, run with proptest.
//!
//! The integration test `tests/batcher_properties.rs` checks what users see
//! (every item once, in order, in exact batches); this one checks the spares,
//! which only the crate can see. For any batch size and any sequence of push,
//! flush and recycle (of batches it handed out and of foreign `Vec`s), it
//! proves:
//!
//! - `spare_count` always matches the model, and at most [`MAX_SPARES`] spares
//!   are kept: a recycled `Vec` is kept exactly when its capacity is at least
//!   `batch_size` and fewer than `MAX_SPARES` are held;
//! - the spare list holds exactly the model's buffers (same address, same
//!   capacity, in the same order), each of them empty;
//! - a recycled buffer is the one the next batch is filled in (last in, first
//!   out) and it is never reallocated while that batch fills: the batch comes
//!   back with the same pointer and the same capacity.
//!
//! The seed is fixed, so CI runs the same cases every time;
//! `PROPTEST_RNG_SEED` picks other ones.

use std::collections::VecDeque;

use proptest::prelude::*;
use proptest::test_runner::RngSeed;

use crate::{Batcher, MAX_SPARES};

/// The seed of every run unless `PROPTEST_RNG_SEED` says otherwise.
const SEED: u64 = 0x5eed_ba7c_4e55_0002;

/// `cases` cases from the fixed seed, and no regression files in the source tree.
fn config(cases: u32) -> ProptestConfig {
    let mut config = ProptestConfig::with_cases(cases);
    if config.rng_seed == RngSeed::Random {
        config.rng_seed = RngSeed::Fixed(SEED);
    }
    config.failure_persistence = None;
    config
}

#[path = "../../tests/common/ops.rs"]
mod ops;
use ops::{Op, op};

/// A buffer by address and capacity: what must not change while a batch fills.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Buffer {
    address: usize,
    capacity: usize,
}

impl Buffer {
    fn of(buffer: &Vec<u32>) -> Self {
        Buffer {
            address: buffer.as_ptr().addr(),
            capacity: buffer.capacity(),
        }
    }
}

/// What the `Batcher`'s buffers should be, kept independently of it.
struct Model {
    batch_size: usize,
    /// Items in the open batch.
    open_len: usize,
    /// The buffer the open batch is filled in, when it came from the spares
    /// (a freshly allocated one has an address the model cannot know).
    open_buffer: Option<Buffer>,
    /// The spares, last recycled last.
    spares: Vec<Buffer>,
}

impl Model {
    /// Checks a batch just handed out: for a reused spare, that it was filled
    /// in that very allocation without reallocating.
    fn handed_out(&mut self, batch: &Vec<u32>) {
        if let Some(spare) = self.open_buffer.take() {
            assert_eq!(
                Buffer::of(batch),
                spare,
                "the batch was not filled in the recycled buffer, or it was reallocated"
            );
        }
        self.open_len = 0;
    }

    /// Recycles `batch` into both the `Batcher` and the model.
    fn recycle(&mut self, batcher: &mut Batcher<u32>, batch: Vec<u32>) {
        let buffer = Buffer::of(&batch);
        batcher.recycle(batch);
        if buffer.capacity >= self.batch_size && self.spares.len() < MAX_SPARES {
            self.spares.push(buffer);
        }
    }

    /// The `Batcher`'s spares are exactly the model's, each empty.
    fn check_spares(&self, batcher: &Batcher<u32>) {
        assert_eq!(batcher.spare_count(), self.spares.len(), "spare_count");
        assert!(batcher.spare_count() <= MAX_SPARES, "spares are bounded");
        let actual: Vec<Buffer> = batcher.spares.iter().map(Buffer::of).collect();
        assert_eq!(actual, self.spares, "the spare list");
        assert!(
            batcher.spares.iter().all(Vec::is_empty),
            "a spare still holds items"
        );
    }
}

/// Runs `ops` on a `Batcher` of `batch_size` and checks its spares against the
/// model after every step.
fn run(batch_size: usize, ops: &[Op]) {
    let mut batcher = Batcher::<u32>::new(batch_size).expect("sizes here are valid");
    let mut model = Model {
        batch_size,
        open_len: 0,
        open_buffer: None,
        spares: Vec::new(),
    };
    // Batches the consumer holds and may recycle later.
    let mut held: VecDeque<Vec<u32>> = VecDeque::new();
    let mut next_item: u32 = 0;

    for op in ops {
        match *op {
            Op::Push(count) => {
                for _ in 0..count {
                    if model.open_len == 0 {
                        // This push starts a batch: in the last spare if there is one.
                        model.open_buffer = model.spares.pop();
                    }
                    let outcome = batcher.push(next_item);
                    next_item += 1;
                    match outcome {
                        Some(batch) => {
                            model.handed_out(&batch);
                            held.push_back(batch);
                        }
                        None => model.open_len += 1,
                    }
                }
            }
            Op::Flush => {
                if let Some(batch) = batcher.flush() {
                    model.handed_out(&batch);
                    held.push_back(batch);
                }
            }
            Op::Recycle(pick) => {
                if !held.is_empty() {
                    let batch = held.remove(pick % held.len()).expect("index is in range");
                    model.recycle(&mut batcher, batch);
                }
            }
            Op::RecycleForeign { capacity, filled } => {
                let mut foreign = Vec::with_capacity(capacity);
                foreign.extend((0..filled.min(capacity)).map(|n| u32::MAX - n as u32));
                model.recycle(&mut batcher, foreign);
            }
            Op::DropHeld(pick) => {
                if !held.is_empty() {
                    drop(held.remove(pick % held.len()));
                }
            }
        }
        model.check_spares(&batcher);
        if let Some(open) = model.open_buffer {
            assert_eq!(Buffer::of(&batcher.open), open, "the open batch moved");
        }
    }
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn spares_are_bounded_and_reused_last_in_first_out(
        batch_size in 1..=40usize,
        ops in prop::collection::vec(op(), 0..120),
    ) {
        run(batch_size, &ops);
    }
}
