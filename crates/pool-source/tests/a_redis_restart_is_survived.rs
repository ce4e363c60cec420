//! The server is killed mid-run and started again (its data kept in an
//! append-only file): the consumer reconnects with backoff, counts it, and
//! every entry is still processed and acked; entries delivered while the
//! connection broke stay pending and are claimed back after `min_idle`.

mod support;

use std::collections::HashSet;
use std::net::TcpListener;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pool_core::Ctx;
use pool_source::{Consumer, Delivery, StreamEntry};
use support::{RedisServer, eventually, free_port, pending, produce};

#[test]
fn the_consumer_reconnects_after_a_restart_and_finishes() {
    let port = free_port();
    let dir =
        std::env::temp_dir().join(format!("pool-source-restart-{}-{port}", std::process::id()));
    let server = RedisServer::start_persistent(port, &dir);
    let mut connection = server.connection();
    let ids = produce(&mut connection, "jobs", 5_000);

    let seen: Arc<Mutex<HashSet<String>>> = Arc::default();
    let done = Arc::new(AtomicU64::new(0));
    let (seen_in, done_in) = (Arc::clone(&seen), Arc::clone(&done));
    let consumer = Consumer::redis(server.url())
        .stream("jobs")
        .group("g")
        .consumer("c1")
        .create_group(true)
        .min_idle(Duration::from_millis(500))
        .claim_interval(Duration::from_millis(100))
        .read_block(Duration::from_millis(20))
        .pool(move |builder| {
            builder.workers(2).capacity(64).build(
                move |_ctx: &Ctx, job: Delivery<StreamEntry>| -> anyhow::Result<()> {
                    std::thread::sleep(Duration::from_micros(200));
                    seen_in.lock().expect("not poisoned").insert(job.id);
                    done_in.fetch_add(1, Ordering::SeqCst);
                    Ok(())
                },
            )
        })
        .build()
        .expect("the consumer builds");
    let stop = consumer.stop_handle();
    let running = std::thread::spawn(move || consumer.run());

    eventually("1,000 processed", || done.load(Ordering::SeqCst) >= 1_000);
    drop(connection);
    let port = server.kill();
    // Stand in for the server until the consumer knocks: a connection
    // attempt on the port proves it saw the loss and is reconnecting. Only
    // then does the server come back.
    let stand_in = TcpListener::bind(("127.0.0.1", port)).expect("the port is free again");
    stand_in.set_nonblocking(true).expect("non-blocking");
    eventually("the consumer tries to reconnect", || {
        stand_in.accept().is_ok()
    });
    drop(stand_in);
    let server = RedisServer::start_persistent(port, &dir);
    let mut connection = server.connection();
    eventually("every entry seen and nothing pending", || {
        seen.lock().expect("not poisoned").len() == 5_000
            && pending(&mut connection, "jobs", "g") == 0
    });
    stop.stop();
    let report = running
        .join()
        .expect("no panic")
        .expect("the run survives the restart");

    assert!(report.reconnects >= 1, "{report:?}");
    assert!(report.balances(), "{report:?}");
    assert_eq!(report.left_pending, 0);
    let seen = seen.lock().expect("not poisoned");
    assert!(ids.iter().all(|id| seen.contains(id)));
}
