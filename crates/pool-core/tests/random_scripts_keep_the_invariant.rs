//! Random pools and random scripts of submit / try_submit / submit_timeout /
//! send / close / cancel from several producers, with workers that fail or panic
//! at random. After each run: the report balances, every refused item came back,
//! every item value was dropped exactly once, and `wait` returned.
//!
//! The seed of a failing script is printed; re-run one with
//! `WORKFORCE_SEED=<seed> cargo test -p pool-core --test random_scripts_keep_the_invariant`.
//! `WORKFORCE_SCRIPTS=<n>` runs more scripts.
#![allow(clippy::unwrap_used)] // Tests may unwrap: a panic is a test failure.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::time::Duration;

use common::Tracked;
use pool_core::{Ctx, Pool, WorkerId};

/// A small deterministic generator (xorshift64*), so a seed replays a script.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn run_script(seed: u64) {
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let n_workers = 1 + rng.below(8) as usize;
    let batch_size = 1 + rng.below(128) as usize;
    let capacity = batch_size + rng.below(1024) as usize;
    let stop_on_error = rng.below(2) == 0;
    let stateful = rng.below(2) == 0;
    let keyed = rng.below(2) == 0;
    let n_keys = 1 + rng.below(64);
    let fail_one_in = 2 + rng.below(200);
    let panic_one_in = 2 + rng.below(400);
    let n_producers = 1 + rng.below(3);
    let items_per_producer = rng.below(400);
    let close_at = rng.below(items_per_producer.max(1) * 2);
    let cancel_at = rng.below(items_per_producer.max(1) * 4);

    let drops = Arc::new(AtomicU64::new(0));
    let check = move |item: &Tracked| -> anyhow::Result<()> {
        let mix = item.value.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 20;
        if mix.is_multiple_of(panic_one_in) {
            panic!("deliberate panic on {}", item.value);
        }
        anyhow::ensure!(mix % fail_one_in != 1, "item {} failed", item.value);
        Ok(())
    };
    let mut builder = Pool::builder()
        .workers(n_workers)
        .batch_size(batch_size)
        .capacity(capacity);
    if keyed {
        builder = builder.chunk_by(move |item: &Tracked| item.value % n_keys);
    }
    builder = if stop_on_error {
        builder.stop_on_error()
    } else {
        builder.continue_on_error()
    };
    let pool = if stateful {
        builder.build_stateful(move |_id: WorkerId| move |_ctx: &Ctx, item: Tracked| check(&item))
    } else {
        builder.build(move |_ctx: &Ctx, item: Tracked| check(&item))
    }
    .expect("valid settings");

    let refused = AtomicU64::new(0);
    std::thread::scope(|scope| {
        for producer in 0..n_producers {
            let (pool, drops, refused) = (&pool, &drops, &refused);
            let mut rng = Rng(rng.next() | 1);
            scope.spawn(move || {
                let mut submitter = pool.submitter();
                let sender = pool.sender();
                for step in 0..items_per_producer {
                    let value = producer * 1_000_000 + step;
                    let item = Tracked::new(value, drops);
                    let choice = rng.below(5);
                    if choice == 2 {
                        // A thread must not block in `send` while its own submitter
                        // holds buffered items and their reserved room: the workers
                        // could run dry while the room stays taken (see Submitter's
                        // docs). Flush first, as the docs ask.
                        submitter.flush();
                    }
                    let outcome = match choice {
                        0 => submitter.try_submit(item).map_err(|e| e.into_inner()),
                        1 => submitter
                            .submit_timeout(item, Duration::from_micros(rng.below(50)))
                            .map_err(|e| e.into_inner()),
                        2 => sender.send(item).map_err(|e| e.into_inner()),
                        3 => sender.try_send(item).map_err(|e| e.into_inner()),
                        _ => submitter.submit(item).map_err(|e| e.into_inner()),
                    };
                    if let Err(item) = outcome {
                        assert_eq!(item.value, value, "the refused item is the one submitted");
                        refused.fetch_add(1, SeqCst);
                    }
                    if producer == 0 && step == close_at {
                        pool.close();
                    }
                    if producer == 0 && step == cancel_at {
                        pool.cancel();
                    }
                    if rng.below(50) == 0 {
                        submitter.flush();
                    }
                }
            });
        }
    });
    let report = pool.finish();
    let attempted = n_producers * items_per_producer;
    assert!(report.is_balanced(), "seed {seed}: {report}");
    // The merged metrics tell the same story as the report.
    let stats = report.stats();
    assert_eq!(
        (stats.processed, stats.errors, stats.dropped),
        (report.processed(), report.failed(), report.dropped()),
        "seed {seed}"
    );
    assert_eq!(
        report.submitted() + refused.load(SeqCst),
        attempted,
        "seed {seed}: {report}"
    );
    assert_eq!(
        drops.load(SeqCst),
        attempted,
        "seed {seed}: every item dropped exactly once"
    );
}

#[test]
fn random_scripts_keep_the_invariant() {
    common::quiet_deliberate_panics();
    if let Some(seed) = std::env::var("WORKFORCE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        run_script(seed);
        return;
    }
    let n_scripts: u64 = std::env::var("WORKFORCE_SCRIPTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    for seed in 0..n_scripts {
        let outcome = std::panic::catch_unwind(|| run_script(seed));
        if let Err(payload) = outcome {
            eprintln!("script with seed {seed} failed; replay with WORKFORCE_SEED={seed}");
            std::panic::resume_unwind(payload);
        }
    }
}
