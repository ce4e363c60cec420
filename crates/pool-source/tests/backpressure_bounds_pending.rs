//! Reads never ask for more than the pool has room for: while every worker
//! is held, this consumer's pending entries stop at the pool's capacity and
//! the rest stays in the stream.

mod support;

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use pool_core::Ctx;
use pool_source::{Consumer, Delivery, StreamEntry};
use support::{RedisServer, eventually, pending, produce};

/// A gate the workers wait at until the test opens it.
#[derive(Default)]
struct Gate {
    open: Mutex<bool>,
    opened: Condvar,
}

#[test]
fn pending_never_exceeds_the_pool_capacity() {
    let server = RedisServer::start();
    let mut connection = server.connection();
    produce(&mut connection, "jobs", 200);

    let gate = Arc::new(Gate::default());
    let gate_in = Arc::clone(&gate);
    let consumer = Consumer::redis(server.url())
        .stream("jobs")
        .group("g")
        .consumer("c1")
        .create_group(true)
        .read_block(Duration::from_millis(10))
        .pool(move |builder| {
            builder.workers(2).capacity(8).batch_size(1).build(
                move |_ctx: &Ctx, _job: Delivery<StreamEntry>| -> anyhow::Result<()> {
                    let open = gate_in.open.lock().expect("not poisoned");
                    let _open = gate_in
                        .opened
                        .wait_while(open, |open| !*open)
                        .expect("not poisoned");
                    Ok(())
                },
            )
        })
        .build()
        .expect("the consumer builds");
    let stop = consumer.stop_handle();
    let running = std::thread::spawn(move || consumer.run());

    eventually("the pool is full", || {
        pending(&mut connection, "jobs", "g") == 8
    });
    // The loop keeps turning (it waits at most read_block for an outcome);
    // over many turns it never reads past the room it has.
    for _ in 0..50 {
        assert_eq!(pending(&mut connection, "jobs", "g"), 8);
        std::thread::sleep(Duration::from_millis(5));
    }
    *gate.open.lock().expect("not poisoned") = true;
    gate.opened.notify_all();
    eventually("every entry acked", || {
        let info: redis::streams::StreamInfoGroupsReply = redis::cmd("XINFO")
            .arg("GROUPS")
            .arg("jobs")
            .query(&mut connection)
            .expect("XINFO");
        info.groups[0].last_delivered_id != "0-0"
            && pending(&mut connection, "jobs", "g") == 0
            && info.groups[0].lag == Some(0)
    });
    stop.stop();
    let report = running.join().expect("no panic").expect("the run succeeds");
    assert_eq!((report.read, report.acked), (200, 200), "{report:?}");
    assert!(report.balances());
}
