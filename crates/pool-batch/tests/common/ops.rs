//! The producer/consumer steps both property tests of `Batcher` draw from:
//! `tests/batcher_properties.rs` (what users see) and the crate's own
//! `src/tests/spares_model.rs` (the spare list), which includes this file by
//! path so the two never drift apart.

use proptest::prelude::*;

/// One step of a producer and its consumer.
#[derive(Debug, Clone)]
pub(crate) enum Op {
    /// Push this many items, one after another.
    Push(usize),
    /// Flush the open batch.
    Flush,
    /// Give back one of the batches the consumer holds (picked modulo how many
    /// it holds; nothing if it holds none).
    Recycle(usize),
    /// Give back a `Vec` the `Batcher` never handed out, with this capacity
    /// and this many items still in it.
    RecycleForeign { capacity: usize, filled: usize },
    /// The consumer drops one of the batches it holds without recycling it.
    DropHeld(usize),
}

pub(crate) fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (1..=40usize).prop_map(Op::Push),
        2 => Just(Op::Flush),
        3 => any::<usize>().prop_map(Op::Recycle),
        1 => (0..=80usize, 0..=8usize)
            .prop_map(|(capacity, filled)| Op::RecycleForeign { capacity, filled }),
        1 => any::<usize>().prop_map(Op::DropHeld),
    ]
}
