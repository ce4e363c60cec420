//! A failing entry is delivered again until `max_deliveries`, then moved to
//! the dead-letter stream with its error text and removed from pending; an
//! entry that fails once and then succeeds is acked. All counted, with the
//! error policy the consumer's builder starts with (continue on errors).

mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use pool_core::Ctx;
use pool_source::{Consumer, Delivery, StreamEntry};
use redis::Commands as _;
use support::{RedisServer, eventually, pending, produce};

#[test]
fn failures_go_to_the_dead_letter_stream_after_max_deliveries() {
    let server = RedisServer::start();
    let mut connection = server.connection();
    produce(&mut connection, "jobs", 100);

    let attempts: Arc<Mutex<HashMap<u64, u32>>> = Arc::default();
    let attempts_in = Arc::clone(&attempts);
    let consumer = Consumer::redis(server.url())
        .stream("jobs")
        .group("g")
        .consumer("c1")
        .create_group(true)
        .max_deliveries(3)
        .pool(move |builder| {
            // No error policy set: the consumer's builder continues on
            // errors, so the first poison entry does not end the run.
            builder.workers(2).capacity(64).build(
                move |_ctx: &Ctx, job: Delivery<StreamEntry>| -> anyhow::Result<()> {
                    let n: u64 = job.message.get_str("n").unwrap_or_default().parse()?;
                    let attempt = {
                        let mut attempts = attempts_in.lock().expect("not poisoned");
                        let count = attempts.entry(n).or_default();
                        *count += 1;
                        *count
                    };
                    anyhow::ensure!(!n.is_multiple_of(10), "entry {n} is poison");
                    anyhow::ensure!(n % 10 != 1 || attempt > 1, "entry {n} failed once");
                    Ok(())
                },
            )
        })
        .build()
        .expect("the consumer builds");
    let stop = consumer.stop_handle();
    let running = std::thread::spawn(move || consumer.run());
    eventually("10 dead letters and nothing pending", || {
        connection.xlen::<_, usize>("jobs:dead").expect("XLEN") == 10
            && pending(&mut connection, "jobs", "g") == 0
    });
    stop.stop();
    let report = running.join().expect("no panic").expect("the run succeeds");

    assert_eq!(report.read, 100, "{report:?}");
    assert_eq!(report.acked, 90);
    assert_eq!(report.dead_lettered, 10);
    assert_eq!(report.failed, 10 * 3 + 10);
    assert_eq!(report.redelivered, 10 * 2 + 10);
    assert_eq!(report.left_pending, 0);
    assert!(report.balances(), "{report:?}");
    let attempts = attempts.lock().expect("not poisoned");
    for n in 0..100 {
        let expected = match n % 10 {
            0 => 3,
            1 => 2,
            _ => 1,
        };
        assert_eq!(attempts.get(&n), Some(&expected), "entry {n}");
    }
    let mut connection = server.connection();
    let dead: redis::streams::StreamRangeReply =
        connection.xrange_all("jobs:dead").expect("XRANGE");
    for letter in &dead.ids {
        let error: String = letter.get("error").expect("the error text");
        let n: String = letter.get("field:n").expect("the entry's own field");
        assert_eq!(error, format!("entry {n} is poison"));
        assert_eq!(letter.get::<String>("deliveries").as_deref(), Some("3"));
    }
}
