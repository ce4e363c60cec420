//! Any pool kind runs over a stream: a keyed pool keeps per-key order of the
//! entries one consumer reads, and a batch pool settles each batch whole.

mod support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use pool_core::Ctx;
use pool_source::{Consumer, Delivery, StreamEntry};
use support::{RedisServer, eventually, pending, produce};

fn n_of(delivery: &Delivery<StreamEntry>) -> u64 {
    delivery
        .message
        .get_str("n")
        .and_then(|n| n.parse().ok())
        .unwrap_or_default()
}

#[test]
fn a_keyed_pool_keeps_per_key_order_within_one_consumer() {
    let server = RedisServer::start();
    let mut connection = server.connection();
    produce(&mut connection, "jobs", 5_000);
    let last_per_key: Arc<Mutex<HashMap<u64, u64>>> = Arc::default();
    let done = Arc::new(AtomicU64::new(0));
    let (last_in, done_in) = (Arc::clone(&last_per_key), Arc::clone(&done));
    let consumer = Consumer::redis(server.url())
        .stream("jobs")
        .group("g")
        .consumer("c1")
        .create_group(true)
        .pool(move |builder| {
            builder
                .workers(2)
                .capacity(128)
                .chunk_by(|delivery: &Delivery<StreamEntry>| n_of(delivery) % 16)
                .build(
                    move |_ctx: &Ctx, job: Delivery<StreamEntry>| -> anyhow::Result<()> {
                        let n = n_of(&job);
                        let mut last = last_in.lock().expect("not poisoned");
                        if let Some(previous) = last.insert(n % 16, n) {
                            anyhow::ensure!(previous < n, "key {}: {n} after {previous}", n % 16);
                        }
                        done_in.fetch_add(1, Ordering::SeqCst);
                        Ok(())
                    },
                )
        })
        .build()
        .expect("the consumer builds");
    let stop = consumer.stop_handle();
    let running = std::thread::spawn(move || consumer.run());
    eventually("all processed and settled", || {
        done.load(Ordering::SeqCst) == 5_000 && pending(&mut connection, "jobs", "g") == 0
    });
    stop.stop();
    let report = running.join().expect("no panic").expect("the run succeeds");
    assert_eq!((report.acked, report.failed), (5_000, 0), "{report:?}");
}

#[test]
fn a_batch_pool_settles_each_batch_whole() {
    let server = RedisServer::start();
    let mut connection = server.connection();
    produce(&mut connection, "jobs", 3_000);
    let batches = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let (batches_in, done_in) = (Arc::clone(&batches), Arc::clone(&done));
    let consumer = Consumer::redis(server.url())
        .stream("jobs")
        .group("g")
        .consumer("c1")
        .create_group(true)
        .max_deliveries(2)
        .batch_pool(
            |builder| {
                builder
                    .workers(2)
                    .capacity(128)
                    .batch_size(32)
                    .continue_on_error()
            },
            move |_ctx: &Ctx, batch: &mut Vec<Delivery<StreamEntry>>| -> anyhow::Result<()> {
                batches_in.fetch_add(1, Ordering::SeqCst);
                done_in.fetch_add(batch.len() as u64, Ordering::SeqCst);
                // Entry 0 poisons its whole batch, every time.
                anyhow::ensure!(batch.iter().all(|job| n_of(job) != 0), "a poisoned batch");
                Ok(())
            },
        )
        .build()
        .expect("the consumer builds");
    let stop = consumer.stop_handle();
    let running = std::thread::spawn(move || consumer.run());
    eventually("all settled", || {
        done.load(Ordering::SeqCst) >= 3_000 && pending(&mut connection, "jobs", "g") == 0
    });
    stop.stop();
    let report = running.join().expect("no panic").expect("the run succeeds");
    assert!(report.balances(), "{report:?}");
    assert_eq!(report.read, 3_000);
    // Entry 0 is dead-lettered after 2 deliveries; the entries that shared a
    // batch with it were failed with it, and acked or dead-lettered later.
    assert!(report.dead_lettered >= 1, "{report:?}");
    assert_eq!(report.acked + report.dead_lettered, 3_000);
    assert!(batches.load(Ordering::SeqCst) >= 3_000 / 32);
}
