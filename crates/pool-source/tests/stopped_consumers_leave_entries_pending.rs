//! Shutdown: a drained stop settles everything it read; a cancelled one
//! leaves what it did not finish pending, and a second consumer claims those
//! entries (`XAUTOCLAIM`) once they have been idle for `min_idle`.

mod support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pool_core::Ctx;
use pool_source::{Consumer, ConsumerBuilder, Delivery, StopPolicy, StreamEntry};
use support::{RedisServer, eventually, pending, pending_of, produce};

/// What the workers of every consumer saw: entry id to times processed.
type Seen = Arc<Mutex<HashMap<String, u32>>>;

fn consumer(
    server: &RedisServer,
    name: &str,
    seen: &Seen,
    done: &Arc<AtomicU64>,
) -> ConsumerBuilder {
    let (seen, done) = (Arc::clone(seen), Arc::clone(done));
    Consumer::redis(server.url())
        .stream("jobs")
        .group("g")
        .consumer(name)
        .create_group(true)
        .read_block(Duration::from_millis(20))
        .pool(move |builder| {
            builder.workers(2).capacity(64).build(
                move |ctx: &Ctx, job: Delivery<StreamEntry>| -> anyhow::Result<()> {
                    // A cancelled pool drops the item: its entry stays pending.
                    ctx.check()?;
                    std::thread::sleep(Duration::from_micros(500));
                    *seen
                        .lock()
                        .expect("not poisoned")
                        .entry(job.id)
                        .or_default() += 1;
                    done.fetch_add(1, Ordering::SeqCst);
                    Ok(())
                },
            )
        })
}

#[test]
fn a_drained_stop_settles_everything_it_read() {
    let server = RedisServer::start();
    let mut connection = server.connection();
    produce(&mut connection, "jobs", 2_000);
    let (seen, done) = (Seen::default(), Arc::new(AtomicU64::new(0)));
    let first = consumer(&server, "c1", &seen, &done)
        .build()
        .expect("builds");
    let stop = first.stop_handle();
    let running = std::thread::spawn(move || first.run());
    eventually("100 processed", || done.load(Ordering::SeqCst) >= 100);
    stop.stop();
    let report = running.join().expect("no panic").expect("the run succeeds");

    assert!(
        report.read < 2_000,
        "the stop came before the end: {report:?}"
    );
    assert_eq!(report.acked, report.read, "{report:?}");
    assert_eq!(report.left_pending, 0);
    assert_eq!(seen.lock().expect("not poisoned").len() as u64, report.read);
    assert_eq!(pending(&mut connection, "jobs", "g"), 0);
}

#[test]
fn a_second_consumer_claims_what_a_cancelled_one_left_pending() {
    let server = RedisServer::start();
    let mut connection = server.connection();
    let ids = produce(&mut connection, "jobs", 2_000);
    let (seen, done) = (Seen::default(), Arc::new(AtomicU64::new(0)));

    let first = consumer(&server, "c1", &seen, &done)
        .stop_policy(StopPolicy::Cancel)
        .build()
        .expect("builds");
    let stop = first.stop_handle();
    let running = std::thread::spawn(move || first.run());
    eventually("100 processed", || done.load(Ordering::SeqCst) >= 100);
    stop.stop();
    let first_report = running.join().expect("no panic").expect("the run succeeds");
    assert!(first_report.left_pending > 0, "{first_report:?}");
    assert!(first_report.balances(), "{first_report:?}");
    // Nothing was acked that did not succeed: every acked entry was seen.
    assert_eq!(
        seen.lock().expect("not poisoned").len() as u64,
        first_report.acked
    );
    let left = pending_of(&mut connection, "jobs", "g", "c1");
    assert_eq!(left as u64, first_report.left_pending);

    let second = consumer(&server, "c2", &seen, &done)
        .min_idle(Duration::from_millis(200))
        .claim_interval(Duration::from_millis(50))
        .build()
        .expect("builds");
    let stop = second.stop_handle();
    let running = std::thread::spawn(move || second.run());
    eventually("every entry processed and nothing pending", || {
        done.load(Ordering::SeqCst) == 2_000 && pending(&mut connection, "jobs", "g") == 0
    });
    stop.stop();
    let second_report = running.join().expect("no panic").expect("the run succeeds");

    assert_eq!(
        second_report.claimed, first_report.left_pending,
        "{second_report:?}"
    );
    assert_eq!(first_report.acked + second_report.acked, 2_000);
    assert!(second_report.balances());
    let seen = seen.lock().expect("not poisoned");
    assert!(
        ids.iter().all(|id| seen.get(id) == Some(&1)),
        "each entry processed once"
    );
}
