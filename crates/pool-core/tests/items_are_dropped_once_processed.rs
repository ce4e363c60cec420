//! While a pool is still running, every item whose call has ended has already
//! been dropped: no recycled batch, local queue or one-slot buffer keeps a
//! processed item alive until the pool shuts down. Checked with every worker
//! held at a gate, for batch sizes 1 and 64, for stealing and keyed pools, and
//! for per-item and batch workers (whose batches the pool clears and recycles).
#![allow(clippy::unwrap_used)] // Tests may unwrap: a panic is a test failure.

mod common;
#[path = "common/fragile.rs"]
mod fragile;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};

use common::{Gate, Routing, Tracked, wait_until};
use fragile::within;
use pool_core::{Builder, Ctx, Pool};
use rstest::rstest;

const N_ITEMS: u64 = 5_000;
const N_WORKERS: usize = 2;

#[derive(Debug, Clone, Copy)]
enum Kind {
    /// A per-item worker: it consumes each item.
    Item,
    /// A batch worker that reads its batch and leaves the items in it for
    /// the pool to drop, as most batch workers do.
    Batch,
}

/// What the workers saw, shared with the test.
#[derive(Default)]
struct Seen {
    /// Items handed to a worker call so far.
    items: AtomicU64,
    /// Items in the hands of a worker held at the gate.
    in_hand: AtomicU64,
    /// Workers held at the gate.
    held: AtomicU64,
}

/// Items with a value of at least `N_ITEMS` hold their worker at the gate.
fn is_hold(item: &Tracked) -> bool {
    item.value >= N_ITEMS
}

fn build(builder: Builder<Tracked>, kind: Kind, seen: &Arc<Seen>, gate: &Gate) -> Pool<Tracked> {
    let (seen, gate) = (Arc::clone(seen), gate.clone());
    match kind {
        Kind::Item => builder.build(move |_ctx: &Ctx, item: Tracked| {
            seen.items.fetch_add(1, SeqCst);
            if is_hold(&item) {
                seen.in_hand.fetch_add(1, SeqCst);
                seen.held.fetch_add(1, SeqCst);
                gate.wait();
            }
            Ok::<(), std::io::Error>(())
        }),
        Kind::Batch => builder.build_batch(move |_ctx: &Ctx, batch: &mut Vec<Tracked>| {
            seen.items.fetch_add(batch.len() as u64, SeqCst);
            if batch.iter().any(is_hold) {
                seen.in_hand.fetch_add(batch.len() as u64, SeqCst);
                seen.held.fetch_add(1, SeqCst);
                gate.wait();
            }
            Ok::<(), std::io::Error>(())
        }),
    }
    .expect("valid settings")
}

/// One hold item per worker. A stealing pool gives any item to any idle
/// worker, so any values do; a keyed pool needs one value routed to each.
fn hold_values(pool: &Pool<Tracked>) -> Vec<u64> {
    let scratch = Arc::new(AtomicU64::new(0));
    let mut values: Vec<Option<u64>> = vec![None; N_WORKERS];
    let mut value = N_ITEMS;
    while values.iter().any(Option::is_none) {
        let slot = match pool.worker_for(&Tracked::new(value, &scratch)) {
            Some(worker) => worker.index(),
            None => (value - N_ITEMS) as usize,
        };
        values[slot].get_or_insert(value);
        value += 1;
    }
    values.into_iter().map(Option::unwrap).collect()
}

#[rstest]
fn processed_items_are_dropped_while_the_pool_runs(
    #[values(Routing::Stealing, Routing::Keyed)] routing: Routing,
    #[values(1, 64)] batch_size: usize,
    #[values(Kind::Item, Kind::Batch)] kind: Kind,
) {
    let drops = Arc::new(AtomicU64::new(0));
    let test_drops = Arc::clone(&drops);
    let (report, finished_calls) = within("holding every worker at the gate", move || {
        let drops = test_drops;
        let seen = Arc::new(Seen::default());
        let gate = Gate::default();
        let builder = Pool::builder().workers(N_WORKERS).batch_size(batch_size);
        let builder = common::route(builder, routing, |item: &Tracked| item.value);
        let pool = build(builder, kind, &seen, &gate);
        let holds = hold_values(&pool);
        let mut submitter = pool.submitter();
        for value in 0..N_ITEMS {
            submitter
                .submit(Tracked::new(value, &drops))
                .expect("pool open");
        }
        drop(submitter);
        // One hold item per worker, each pushed on its own (a `Sender` does
        // not batch), so no worker can take two.
        let sender = pool.sender();
        for &value in &holds {
            sender.send(Tracked::new(value, &drops)).expect("pool open");
        }
        wait_until(|| seen.held.load(SeqCst) == N_WORKERS as u64);
        // Every worker is inside a held call now, so no other call is under
        // way: each item handed to a call that has ended must be dropped.
        let finished_calls = seen.items.load(SeqCst) - seen.in_hand.load(SeqCst);
        assert!(finished_calls > 0, "some items ran before the hold");
        assert_eq!(
            drops.load(SeqCst),
            finished_calls,
            "items processed but not dropped while the pool runs"
        );
        gate.open();
        (pool.join(), finished_calls)
    });
    assert!(report.is_balanced(), "{report}");
    let total = N_ITEMS + N_WORKERS as u64;
    assert_eq!(report.processed(), total, "{report}");
    assert!(finished_calls <= N_ITEMS);
    // Exactly once: a drop counted twice would push this past the total.
    assert_eq!(drops.load(SeqCst), total);
}
