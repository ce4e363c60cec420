//! Two `stream_worker` processes on one stream of 100,000 entries; one is
//! killed (SIGKILL) mid-run. The other claims what it left pending: every
//! entry ends acked (none dead-lettered, none pending), and the entries
//! processed twice are no more than the killed one had in flight (its pool's
//! capacity).

mod support;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use redis::Commands as _;
use support::{RedisServer, eventually, pending, pending_of};

const ENTRIES: u64 = 100_000;
const CAPACITY: u64 = 256;

/// target/<profile>/deps/<this test> -> target/<profile>/examples/<name>.
fn example_path(name: &str) -> PathBuf {
    let test_binary = std::env::current_exe().expect("the test binary has a path");
    let path = test_binary
        .parent()
        .and_then(|deps| deps.parent())
        .expect("the test binary sits in target/<profile>/deps")
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.exists(),
        "example `{name}` is not built at {}: run `cargo test -p pool-source` (it builds the examples)",
        path.display()
    );
    path
}

/// Starts a consumer process and waits for its `ready` line.
fn start_worker(server: &RedisServer, name: &str) -> (Child, BufReader<std::process::ChildStdout>) {
    let mut child = Command::new(example_path("stream_worker"))
        .args(["--url", &server.url(), "--stream", "jobs", "--group", "g"])
        .args(["--consumer", name, "--workers", "2", "--rounds", "200"])
        .args(["--capacity", &CAPACITY.to_string(), "--record", "seen"])
        .args(["--min-idle-ms", "1000", "--claim-interval-ms", "200"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the example starts");
    let mut stdout = BufReader::new(child.stdout.take().expect("piped"));
    let mut line = String::new();
    stdout.read_line(&mut line).expect("a ready line");
    assert!(
        line.starts_with("ready pid="),
        "expected `ready pid=`, got {line:?}"
    );
    (child, stdout)
}

#[test]
fn every_entry_is_acked_after_a_consumer_is_killed() {
    let server = RedisServer::start();
    let producer = Command::new(example_path("stream_producer"))
        .args([
            "--url",
            &server.url(),
            "--stream",
            "jobs",
            "--count",
            &ENTRIES.to_string(),
        ])
        .status()
        .expect("the producer starts");
    assert!(producer.success());
    let mut connection = server.connection();

    let (mut doomed, _doomed_out) = start_worker(&server, "doomed");
    let (survivor, mut survivor_out) = start_worker(&server, "survivor");
    eventually("a quarter processed", || {
        connection.hlen::<_, u64>("seen").expect("HLEN") >= ENTRIES / 4
    });
    doomed.kill().expect("SIGKILL");
    doomed.wait().expect("reaped");
    let in_flight_at_kill = pending_of(&mut connection, "jobs", "g", "doomed") as u64;
    assert!(in_flight_at_kill <= CAPACITY);

    eventually("every entry processed and settled", || {
        let info: redis::streams::StreamInfoGroupsReply =
            connection.xinfo_groups("jobs").expect("XINFO GROUPS");
        info.groups[0].lag == Some(0) && pending(&mut connection, "jobs", "g") == 0
    });
    let stopped = Command::new("kill")
        .args(["-INT", &survivor.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(stopped.success());
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut survivor_out, &mut rest).expect("the summary");
    let mut survivor = survivor;
    assert!(survivor.wait().expect("exits").success(), "{rest}");
    assert!(rest.contains("balanced=true"), "{rest}");
    assert!(
        rest.contains("reconnects=0"),
        "a stop is not a lost connection: {rest}"
    );

    let seen: Vec<u64> = connection.hvals("seen").expect("HVALS");
    assert_eq!(seen.len() as u64, ENTRIES, "every entry was processed");
    let duplicates: u64 = seen.iter().map(|times| times - 1).sum();
    assert!(
        duplicates <= in_flight_at_kill,
        "{duplicates} entries processed twice, more than the {in_flight_at_kill} in flight at the kill"
    );
    assert_eq!(connection.xlen::<_, u64>("jobs:dead").expect("XLEN"), 0);
    assert_eq!(pending(&mut connection, "jobs", "g"), 0);
    println!(
        "duplicates: {duplicates} (killed consumer had {in_flight_at_kill} pending); survivor {rest}"
    );
}
