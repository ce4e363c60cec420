//! Fetches a few hundred URLs from a real HTTP server through a pool: retries
//! for transient failures only, one rate limit shared by every worker, and
//! failures counted and listed instead of stopping the run.
//!
//! The example starts its own server first (`tiny_http` on 127.0.0.1, on a
//! port the system picks, answering on four threads of its own). It serves
//! `/item/0` to `/item/{N-1}`, and some of them fail on purpose, by a fixed
//! rule on the item number `i`:
//!
//! | item           | the server answers                          | so the client ends with            |
//! |----------------|---------------------------------------------|------------------------------------|
//! | `i % 50 == 7`  | 404 every time ("missing")                  | failed at once: a 4xx is permanent |
//! | `i % 50 == 13` | 500 every time ("broken")                   | failed after 3 attempts            |
//! | `i % 10 == 3`, not the above | 503 the first time, 200 after ("flaky") | fetched on the second attempt |
//! | any other      | 200 with a body of 200 to 1,000 bytes       | fetched                            |
//!
//! The server counts the requests for each path, so a flaky path really
//! recovers on the server's side: nothing on the client is faked.
//!
//! The client is a pool of `--workers` threads sharing one `ureq::Agent`
//! (and so its connection pool). Each URL goes through two layers:
//!
//! - [`Retry`] (outermost): 3 attempts, backoff from 5 ms doubling up to
//!   50 ms, and only for transient errors (a 5xx, a 429, or no answer at all),
//!   decided by a predicate on the error. A 404 fails at once.
//! - [`RateLimiter`]: one token bucket for all workers, `--rate` requests a
//!   second. It sits inside `Retry`, so every attempt takes a token: a retry is
//!   a request like any other as far as the server is concerned.
//!
//! The pool runs with `continue_on_error`: a URL that fails is counted and kept
//! in the report, and the others go on. Custom counters from `ctx.metrics()`
//! count every request (`requests`), each response by status class
//! (`status_2xx`, `status_4xx`, `status_5xx`) and the body bytes read
//! (`bytes_fetched`). The retries are `requests` minus the URLs: `Retry` does
//! not count them itself.
//!
//! ```sh
//! cargo run -p workforce --example fetch_urls                      # 300 URLs, 8 workers, 1,000 requests/s
//! cargo run -p workforce --example fetch_urls -- --urls 2000 --workers 16 --rate 5000
//! ```
//!
//! It prints the pool's stats table with the counters, one `failed` line per
//! failed URL with its reason, and two lines for scripts: what the client saw
//! and what the server served (the two agree):
//!
//! ```text
//! failed /item/7      HTTP 404 Not Found, not retried
//! failed /item/13     HTTP 500 Internal Server Error, gave up after 3 attempts
//! ...
//! fetched=300 ok=288 failed=12 bytes=172200 requests=336 retries=36
//! server requests=336 bytes=172200
//! ```

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context as _;
use workforce::middleware::{MiddlewareError, RateLimiter, Retry};
use workforce::prelude::*;
use workforce::{BoxError, find_error};

const USAGE: &str = "usage: fetch_urls [--urls N] [--workers N] [--rate REQUESTS_PER_SECOND]";

/// The command line: `--urls N --workers N --rate N`.
struct Settings {
    n_urls: u64,
    n_workers: usize,
    rate_per_sec: f64,
}

impl Settings {
    fn from_args() -> anyhow::Result<Settings> {
        let mut settings = Settings {
            n_urls: 300,
            // Fetching is waiting on the network, not computing, so more
            // threads than cores pays off.
            n_workers: 8,
            rate_per_sec: 1_000.0,
        };
        let mut args = std::env::args().skip(1);
        while let Some(flag) = args.next() {
            if flag == "--help" || flag == "-h" {
                println!("{USAGE}");
                std::process::exit(0);
            }
            let value = args
                .next()
                .with_context(|| format!("{flag} needs a value; {USAGE}"))?;
            let invalid = || format!("{flag} takes a number, got {value:?}");
            match flag.as_str() {
                "--urls" => settings.n_urls = value.parse().with_context(invalid)?,
                "--workers" => settings.n_workers = value.parse().with_context(invalid)?,
                "--rate" => settings.rate_per_sec = value.parse().with_context(invalid)?,
                _ => anyhow::bail!("unknown flag {flag:?}; {USAGE}"),
            }
        }
        Ok(settings)
    }
}

// ---------------------------------------------------------------------------
// The server: real HTTP on 127.0.0.1, with failures by design.
// ---------------------------------------------------------------------------

/// What the server does with `/item/{item}` (the table in the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Planned {
    /// 200 with a body.
    Found,
    /// 404 every time.
    Missing,
    /// 500 every time.
    Broken,
    /// 503 on the first request, 200 from the second on.
    Flaky,
}

fn planned(item: u64) -> Planned {
    match (item % 50, item % 10) {
        (7, _) => Planned::Missing,
        (13, _) => Planned::Broken,
        (_, 3) => Planned::Flaky,
        _ => Planned::Found,
    }
}

/// The body of a found item: 200 to 1,000 bytes, different per item.
fn item_body(item: u64) -> Vec<u8> {
    let len = 200 + (item % 9) as usize * 100;
    let letter = b'a' + (item % 26) as u8;
    vec![letter; len]
}

/// What the server keeps: requests per item (what makes a flaky item recover)
/// and totals to compare with the client's counters.
struct Tally {
    requests_per_item: Vec<AtomicU32>,
    requests: AtomicU64,
    body_bytes: AtomicU64,
}

/// What the server served, once it has stopped.
#[derive(Debug)]
struct Served {
    requests: u64,
    body_bytes: u64,
}

/// An HTTP server on its own threads, stopped and joined on drop.
struct ItemServer {
    server: Arc<tiny_http::Server>,
    tally: Arc<Tally>,
    stopping: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    base_url: String,
}

impl ItemServer {
    /// Serves `/item/0` to `/item/{n_items - 1}` on `n_threads` threads.
    fn start(n_items: u64, n_threads: usize) -> anyhow::Result<ItemServer> {
        // Port 0: the system picks a free port, so runs never collide.
        let server = tiny_http::Server::http("127.0.0.1:0")
            .map_err(|error| anyhow::anyhow!("could not start the HTTP server: {error}"))?;
        let address = server
            .server_addr()
            .to_ip()
            .context("the server listens on TCP, so it has an IP address")?;
        let n_items = usize::try_from(n_items).context("--urls is too large for this machine")?;
        let tally = Arc::new(Tally {
            requests_per_item: (0..n_items).map(|_| AtomicU32::new(0)).collect(),
            requests: AtomicU64::new(0),
            body_bytes: AtomicU64::new(0),
        });
        let mut item_server = ItemServer {
            server: Arc::new(server),
            tally,
            stopping: Arc::new(AtomicBool::new(false)),
            threads: Vec::with_capacity(n_threads),
            base_url: format!("http://{address}"),
        };
        for index in 0..n_threads {
            let server = Arc::clone(&item_server.server);
            let tally = Arc::clone(&item_server.tally);
            let stopping = Arc::clone(&item_server.stopping);
            let thread = std::thread::Builder::new()
                .name(format!("server-{index}"))
                .spawn(move || serve(&server, &tally, &stopping))
                .context("could not start a server thread")?;
            item_server.threads.push(thread);
        }
        Ok(item_server)
    }

    /// `http://127.0.0.1:{port}`.
    fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Stops the server threads and returns what they served.
    fn stop(mut self) -> Served {
        self.shut_down();
        Served {
            requests: self.tally.requests.load(Ordering::Relaxed),
            body_bytes: self.tally.body_bytes.load(Ordering::Relaxed),
        }
    }

    fn shut_down(&mut self) {
        self.stopping.store(true, Ordering::Release);
        // Each `unblock` wakes one thread waiting in `recv`.
        for _ in &self.threads {
            self.server.unblock();
        }
        for thread in self.threads.drain(..) {
            if thread.join().is_err() {
                eprintln!("a server thread panicked");
            }
        }
    }
}

impl Drop for ItemServer {
    fn drop(&mut self) {
        self.shut_down();
    }
}

/// One server thread: answers requests until the server is stopped.
fn serve(server: &tiny_http::Server, tally: &Tally, stopping: &AtomicBool) {
    loop {
        match server.recv() {
            Ok(request) => {
                if let Err(error) = respond(request, tally) {
                    eprintln!("server: could not answer a request: {error}");
                }
            }
            // `recv` fails when `unblock` wakes it, or on a connection error.
            Err(_) if stopping.load(Ordering::Acquire) => return,
            Err(error) => eprintln!("server: {error}"),
        }
    }
}

fn respond(request: tiny_http::Request, tally: &Tally) -> std::io::Result<()> {
    tally.requests.fetch_add(1, Ordering::Relaxed);
    let item = request
        .url()
        .strip_prefix("/item/")
        .and_then(|number| number.parse::<u64>().ok())
        .and_then(|item| {
            let counter = tally.requests_per_item.get(usize::try_from(item).ok()?)?;
            Some((item, counter))
        });
    let Some((item, counter)) = item else {
        return request
            .respond(tiny_http::Response::from_string("no such item").with_status_code(404));
    };
    let attempt = counter.fetch_add(1, Ordering::Relaxed) + 1;
    let status = match (planned(item), attempt) {
        (Planned::Missing, _) => 404,
        (Planned::Broken, _) => 500,
        (Planned::Flaky, 1) => 503,
        (Planned::Flaky | Planned::Found, _) => 200,
    };
    if status != 200 {
        let message = format!("item {item} fails on purpose with {status}");
        return request.respond(tiny_http::Response::from_string(message).with_status_code(status));
    }
    let body = item_body(item);
    tally
        .body_bytes
        .fetch_add(body.len() as u64, Ordering::Relaxed);
    request.respond(tiny_http::Response::from_data(body))
}

// ---------------------------------------------------------------------------
// The client: a pool of fetching workers.
// ---------------------------------------------------------------------------

/// Why fetching one URL failed.
#[derive(Debug)]
enum FetchError {
    /// The server answered, with a status other than 2xx.
    Status { item: u64, status: u16 },
    /// No usable answer: connection refused or reset, a timeout, a cut body.
    Transport { item: u64, source: ureq::Error },
}

impl FetchError {
    /// The item whose URL failed.
    fn item(&self) -> u64 {
        match self {
            FetchError::Status { item, .. } | FetchError::Transport { item, .. } => *item,
        }
    }

    /// Whether trying again may help: the server's trouble (5xx), its "slow
    /// down" (429), or the network's. Any other 4xx will not change.
    fn is_transient(&self) -> bool {
        match self {
            FetchError::Status { status, .. } => *status >= 500 || *status == 429,
            FetchError::Transport { .. } => true,
        }
    }
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FetchError::Status { status, .. } => {
                let reason = ureq::http::StatusCode::from_u16(*status)
                    .ok()
                    .and_then(|code| code.canonical_reason())
                    .unwrap_or("");
                write!(f, "HTTP {status} {reason}")
            }
            FetchError::Transport { source, .. } => write!(f, "no answer: {source}"),
        }
    }
}

impl std::error::Error for FetchError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            FetchError::Status { .. } => None,
            FetchError::Transport { source, .. } => Some(source),
        }
    }
}

/// The retry predicate: only transient fetch errors are worth another try.
/// `find_error` finds the [`FetchError`] inside whatever the middleware put
/// around it (here, the rate limiter's `MiddlewareError::Worker`).
fn is_transient(error: &BoxError) -> bool {
    find_error::<FetchError>(&**error).is_some_and(FetchError::is_transient)
}

/// The counter name for a status code's class.
fn status_class(status: u16) -> &'static str {
    match status / 100 {
        1 => "status_1xx",
        2 => "status_2xx",
        3 => "status_3xx",
        4 => "status_4xx",
        _ => "status_5xx",
    }
}

/// One attempt at one URL, `/item/{item}`: a GET whose body is read to the end.
fn fetch(agent: &ureq::Agent, base_url: &str, ctx: &Ctx, item: u64) -> Result<(), FetchError> {
    let metrics = ctx.metrics();
    metrics.inc("requests");
    let mut response = match agent.get(format!("{base_url}/item/{item}")).call() {
        Ok(response) => response,
        Err(source) => return Err(FetchError::Transport { item, source }),
    };
    let status = response.status().as_u16();
    metrics.inc(status_class(status));
    if !response.status().is_success() {
        return Err(FetchError::Status { item, status });
    }
    match response.body_mut().read_to_vec() {
        Ok(body) => {
            metrics.add("bytes_fetched", body.len() as u64);
            Ok(())
        }
        Err(source) => Err(FetchError::Transport { item, source }),
    }
}

/// A failure as one line (the URL's path, the error, what the retry did),
/// with the item number to sort the lines by.
fn describe_failure(error: &PoolError) -> (Option<u64>, String) {
    // `find` sees through the retry's `RetriesExhausted` and the rate
    // limiter's `Worker` around the worker's own error.
    let fetch = match error {
        PoolError::Worker { source, .. } => error.find::<FetchError>().map(|fetch| (source, fetch)),
        _ => None,
    };
    let Some((source, fetch)) = fetch else {
        return (None, format!("failed (not a fetch): {error}"));
    };
    let retried = match source.downcast_ref::<MiddlewareError>() {
        Some(MiddlewareError::RetriesExhausted { attempts, .. }) => {
            format!("gave up after {attempts} attempts")
        }
        Some(MiddlewareError::RetryCancelled { attempts, .. }) => {
            format!("cancelled after {attempts} attempts")
        }
        _ => "not retried".to_owned(),
    };
    let path = format!("/item/{}", fetch.item());
    (
        Some(fetch.item()),
        format!("failed {path:<12} {fetch}, {retried}"),
    )
}

fn main() -> anyhow::Result<()> {
    let settings = Settings::from_args()?;
    let server = ItemServer::start(settings.n_urls, 4)?;

    let agent: ureq::Agent = ureq::Agent::config_builder()
        // A 404 or a 500 is an answer to classify, not a transport error.
        .http_status_as_error(false)
        // No request may hang the run.
        .timeout_global(Some(Duration::from_secs(10)))
        // Keep one idle connection per worker, so they are reused.
        .max_idle_connections_per_host(settings.n_workers.max(1))
        .build()
        .into();
    let base_url = server.base_url().to_owned();

    let retry = Retry::new(3, Duration::from_millis(5))?
        .max_delay(Duration::from_millis(50))
        .retry_if(is_transient);
    // The bucket starts with a token per worker, so all of them start at once.
    let burst = u32::try_from(settings.n_workers.max(1)).unwrap_or(u32::MAX);
    let rate_limiter = RateLimiter::new(settings.rate_per_sec, burst).context("invalid --rate")?;
    let pool = Pool::builder()
        .workers(settings.n_workers)
        // One URL at a time to whichever worker is free: a request takes far
        // longer than handing it over, so batching would save nothing.
        .batch_size(1)
        .continue_on_error()
        .layer(retry)
        .layer(rate_limiter)
        .build(move |ctx: &Ctx, item: u64| fetch(&agent, &base_url, ctx, item))?;

    let mut submitter = pool.submitter();
    for item in 0..settings.n_urls {
        submitter.submit(item)?;
    }
    drop(submitter);
    // `finish`, not `wait`: under continue-on-error the failures are part of
    // the report, not a reason to stop.
    let report = pool.join();
    let served = server.stop();

    let stats = report.stats();
    println!("{stats}");
    println!();
    let mut failures: Vec<_> = report.errors().iter().map(describe_failure).collect();
    failures.sort();
    for (_item, line) in &failures {
        println!("{line}");
    }
    if report.error_total() > report.errors().len() as u64 {
        println!(
            "... and {} more failures (the report keeps the first {})",
            report.error_total() - report.errors().len() as u64,
            report.errors().len()
        );
    }
    let requests = stats.counters.get("requests");
    println!(
        "fetched={} ok={} failed={} bytes={} requests={requests} retries={}",
        report.submitted(),
        report.processed(),
        report.failed(),
        stats.counters.get("bytes_fetched"),
        requests.saturating_sub(report.submitted()),
    );
    println!(
        "server requests={} bytes={}",
        served.requests, served.body_bytes
    );
    anyhow::ensure!(
        report.is_balanced(),
        "the accounting does not add up: {report}"
    );
    Ok(())
}
