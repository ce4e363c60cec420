//! A real `redis-server` per test, on a free loopback port, stopped on drop.
//! No mock: a missing `redis-server` fails the test, saying how to install it.

#![allow(dead_code, unreachable_pub)]

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// What a test says when redis-server is missing.
pub const INSTALL: &str = "redis-server is not installed; the pool-source tests start their own. \
Run `cargo xtask test` (it installs it when it can), or install it yourself: \
`sudo apt-get update && sudo apt-get install -y redis-server` (Debian/Ubuntu), \
`brew install redis` (macOS)";

/// A running redis-server, killed when dropped.
pub struct RedisServer {
    pub port: u16,
    child: Child,
    /// The append-only file's folder of a persistent server.
    dir: Option<std::path::PathBuf>,
}

impl RedisServer {
    /// Starts a server with no persistence on a free port.
    pub fn start() -> Self {
        let port = free_port();
        Self::start_on(port)
    }

    /// Starts a server on `port` (again, after `stop`), no persistence.
    pub fn start_on(port: u16) -> Self {
        let mut command = Command::new("redis-server");
        command.args(["--save", "", "--appendonly", "no"]);
        Self::spawn(port, command, None)
    }

    /// Starts a server on `port` that keeps its data in `dir` across a
    /// restart (append-only file, fsync on every write), so a restart test
    /// finds its stream again.
    pub fn start_persistent(port: u16, dir: &std::path::Path) -> Self {
        std::fs::create_dir_all(dir).expect("a folder for the append-only file");
        let mut command = Command::new("redis-server");
        command
            .args([
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
            ])
            .arg("--dir")
            .arg(dir);
        Self::spawn(port, command, Some(dir.to_owned()))
    }

    fn spawn(port: u16, mut command: Command, dir: Option<std::path::PathBuf>) -> Self {
        let child = command
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| panic!("{INSTALL} ({error})"));
        let server = Self { port, child, dir };
        server.wait_ready();
        server
    }

    /// The URL of the server.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// A fresh connection.
    pub fn connection(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .expect("a valid URL")
            .get_connection()
            .expect("the test server answers")
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let answered = redis::Client::open(self.url())
                .and_then(|client| client.get_connection())
                .and_then(|mut connection| redis::cmd("PING").query::<String>(&mut connection));
            if answered.is_ok() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "redis-server on port {} did not start",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the server (SIGKILL); a persistent one keeps its folder.
    pub fn kill(mut self) -> u16 {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.dir = None;
        self.port
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// The pending count of one consumer of the group.
pub fn pending_of(
    connection: &mut redis::Connection,
    stream: &str,
    group: &str,
    consumer: &str,
) -> usize {
    let reply: redis::streams::StreamPendingCountReply = redis::cmd("XPENDING")
        .arg(stream)
        .arg(group)
        .arg("-")
        .arg("+")
        .arg(1_000_000)
        .arg(consumer)
        .query(connection)
        .expect("XPENDING");
    reply.ids.len()
}

/// A port nobody listens on now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free loopback port")
        .port()
}

/// Adds `n` entries `{n: i}` to `stream`, in pipelines of 1,000; returns their ids.
pub fn produce(connection: &mut redis::Connection, stream: &str, n: usize) -> Vec<String> {
    let mut ids = Vec::with_capacity(n);
    for start in (0..n).step_by(1_000) {
        let mut pipe = redis::pipe();
        for i in start..(start + 1_000).min(n) {
            pipe.cmd("XADD").arg(stream).arg("*").arg("n").arg(i);
        }
        let batch: Vec<String> = pipe.query(connection).expect("XADD");
        ids.extend(batch);
    }
    ids
}

/// The group's pending count (all consumers).
pub fn pending(connection: &mut redis::Connection, stream: &str, group: &str) -> usize {
    let reply: redis::streams::StreamPendingReply = redis::cmd("XPENDING")
        .arg(stream)
        .arg(group)
        .query(connection)
        .expect("XPENDING");
    reply.count()
}

/// Polls `condition` every 10 ms for up to 60 s.
pub fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}
