//! 10,000 entries through 2 workers: each processed and acked exactly once,
//! nothing left pending, and the report balances.

mod support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use pool_core::Ctx;
use pool_source::{Consumer, Delivery, StreamEntry};
use support::{RedisServer, eventually, pending, produce};

#[test]
fn ten_thousand_entries_are_processed_and_acked_exactly_once() {
    let server = RedisServer::start();
    let mut connection = server.connection();
    let ids = produce(&mut connection, "jobs", 10_000);

    let seen: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    let done = Arc::new(AtomicU64::new(0));
    let (seen_in, done_in) = (Arc::clone(&seen), Arc::clone(&done));
    let consumer = Consumer::redis(server.url())
        .stream("jobs")
        .group("workers")
        .consumer("c1")
        .create_group(true)
        .pool(move |builder| {
            builder.workers(2).capacity(256).build(
                move |_ctx: &Ctx, job: Delivery<StreamEntry>| -> anyhow::Result<()> {
                    anyhow::ensure!(job.message.get_str("n").is_some(), "no n");
                    *seen_in
                        .lock()
                        .expect("not poisoned")
                        .entry(job.id)
                        .or_default() += 1;
                    done_in.fetch_add(1, Ordering::SeqCst);
                    Ok(())
                },
            )
        })
        .build()
        .expect("the consumer builds");
    let stop = consumer.stop_handle();
    let running = consumer.spawn().expect("the loop's thread starts");
    eventually("10,000 processed and nothing pending", || {
        done.load(Ordering::SeqCst) == 10_000 && pending(&mut connection, "jobs", "workers") == 0
    });
    stop.stop();
    let report = running.join().expect("no panic").expect("the run succeeds");

    assert_eq!(report.read, 10_000);
    assert_eq!(report.acked, 10_000);
    assert_eq!(
        (report.failed, report.dead_lettered, report.left_pending),
        (0, 0, 0)
    );
    assert!(report.balances(), "{report:?}");
    let seen = seen.lock().expect("not poisoned");
    assert_eq!(seen.len(), 10_000);
    assert!(ids.iter().all(|id| seen.get(id) == Some(&1)));
    assert_eq!(pending(&mut server.connection(), "jobs", "workers"), 0);
}
