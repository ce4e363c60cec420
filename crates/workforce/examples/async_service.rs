//! An HTTP service that offloads CPU-heavy work to a pool and awaits each
//! answer without blocking its async runtime.
//!
//! The server is axum on a tokio runtime with as many runtime threads as
//! cores, listening on 127.0.0.1 (a port the system picks). `GET /hash/{n}`
//! hashes 64 KiB (BLAKE3 of `n` and a fixed buffer) on a workforce call pool
//! of `--workers` threads and `--capacity` room; the handler is one line:
//! `pool.call_async(n).await?.await?`. While the pool is full, the handler's
//! task waits for room without holding a runtime thread; a pool that stops
//! answers 503, a failed call 500.
//!
//! A real client drives it over loopback: `--concurrency` threads, each with
//! its own keep-alive connection (`ureq`), sending `--requests` requests in
//! all and checking every 16th answer against a hash computed locally.
//!
//! A heartbeat task on the same runtime sleeps 1 ms at a time and records how
//! late it wakes: if handlers blocked the runtime threads, it would be late by
//! the length of a hash or more.
//!
//! ```sh
//! cargo run --release -p workforce --features async --example async_service
//! cargo run --release -p workforce --features async --example async_service -- --requests 100000 --concurrency 128
//! ```
//!
//! It prints one line for scripts (and the test):
//!
//! ```text
//! requests=20000 ok=20000 failed=0 checked=1250 throughput=27411 p50_us=2241 p99_us=4012 heartbeat_p99_late_us=1103 threads=79 peak_rss_kib=15324 processed=20000 pool_failed=0 dropped=0
//! ```

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use workforce::{Call, CallError, Ctx, Pool};

/// Bytes hashed per request.
const WORK_BYTES: usize = 64 * 1024;

/// The fixed buffer every request hashes after its number.
fn buffer() -> &'static [u8] {
    static BUFFER: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    BUFFER.get_or_init(|| (0..WORK_BYTES).map(|i| (i * 31 % 251) as u8).collect())
}

/// The CPU-heavy part: BLAKE3 of `n` and the buffer, in hex.
fn hash(n: u64) -> String {
    let mut hasher = blake3::Hasher::new();
    hasher.update(&n.to_le_bytes());
    hasher.update(buffer());
    hasher.finalize().to_hex().to_string()
}

/// The service's state: the call pool, shared by every handler.
type Hasher = Arc<Pool<Call<u64, String>>>;

/// `GET /hash/{n}`: the pool computes, the handler's task awaits.
async fn hash_handler(
    State(pool): State<Hasher>,
    Path(n): Path<u64>,
) -> Result<String, (StatusCode, String)> {
    let answer = pool
        .call_async(n)
        .await
        .map_err(|refused| (StatusCode::SERVICE_UNAVAILABLE, refused.to_string()))?;
    answer.await.map_err(|error: CallError| {
        let status = if matches!(error, CallError::Dropped) {
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            StatusCode::INTERNAL_SERVER_ERROR
        };
        (status, error.to_string())
    })
}

/// Command-line settings.
#[derive(Debug, Clone, Copy)]
struct Settings {
    /// Requests in all.
    requests: u64,
    /// Client threads, each with one connection.
    concurrency: u64,
    /// Pool threads.
    workers: usize,
    /// Calls queued or running in the pool at most.
    capacity: usize,
}

/// Parses `--requests N --concurrency N --workers N --capacity N`.
fn settings() -> anyhow::Result<Settings> {
    let cores = std::thread::available_parallelism().map_or(2, usize::from);
    let mut settings = Settings {
        requests: 20_000,
        concurrency: 64,
        workers: cores,
        capacity: 64,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value: u64 = args
            .next()
            .with_context(|| format!("{flag} needs a value"))?
            .parse()
            .with_context(|| format!("{flag} needs a positive integer"))?;
        match flag.as_str() {
            "--requests" => settings.requests = value,
            "--concurrency" => settings.concurrency = value.max(1),
            "--workers" => settings.workers = usize::try_from(value)?,
            "--capacity" => settings.capacity = usize::try_from(value)?,
            other => bail!(
                "unknown flag {other}; expected --requests, --concurrency, --workers, --capacity"
            ),
        }
    }
    Ok(settings)
}

/// What the client threads saw.
#[derive(Debug, Default)]
struct ClientTally {
    /// Answers with status 200.
    ok: u64,
    /// Other answers and transport errors.
    failed: u64,
    /// Answers compared with a local hash (all equal, or the run fails).
    checked: u64,
    /// Per-request latency, µs.
    latencies_us: Vec<u64>,
}

/// One client thread: requests `first`, `first + stride`, ... below `requests`.
fn client(
    address: SocketAddr,
    first: u64,
    stride: u64,
    requests: u64,
) -> anyhow::Result<ClientTally> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut tally = ClientTally::default();
    let mut n = first;
    while n < requests {
        let asked = Instant::now();
        let answer = agent.get(&format!("http://{address}/hash/{n}")).call();
        match answer {
            Ok(mut response) if response.status() == 200 => {
                let body = response.body_mut().read_to_string()?;
                tally.latencies_us.push(asked.elapsed().as_micros() as u64);
                tally.ok += 1;
                if n.is_multiple_of(16) {
                    anyhow::ensure!(body == hash(n), "wrong hash for {n}: {body}");
                    tally.checked += 1;
                }
            }
            Ok(_) | Err(_) => tally.failed += 1,
        }
        n += stride;
    }
    Ok(tally)
}

/// The process's `Threads:` and `VmHWM:` from `/proc/self/status` (Linux).
fn threads_and_peak_rss() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |key: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(key))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|value| value.parse().ok())
            .unwrap_or(0)
    };
    (field("Threads:"), field("VmHWM:"))
}

/// The value at quantile `q` of sorted `values`.
fn quantile(values: &[u64], q: f64) -> u64 {
    let last = values.len().saturating_sub(1);
    values
        .get(((last as f64) * q).round() as usize)
        .copied()
        .unwrap_or(0)
}

fn main() -> anyhow::Result<()> {
    let settings = settings()?;
    let cores = std::thread::available_parallelism().map_or(2, usize::from);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores)
        .enable_all()
        .build()?;
    let pool: Hasher = Arc::new(
        Pool::builder()
            .workers(settings.workers)
            .capacity(settings.capacity)
            .build_call(|_ctx: &Ctx, n: u64| Ok::<_, std::convert::Infallible>(hash(n)))?,
    );
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let address = listener.local_addr()?;
    let app = axum::Router::new()
        .route("/hash/{n}", get(hash_handler))
        .with_state(Arc::clone(&pool));
    let stop = Arc::new(AtomicBool::new(false));
    let (shutdown_tx, shutdown_rx) = tokio::sync::oneshot::channel::<()>();
    let server = runtime.spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = shutdown_rx.await;
            })
            .await
    });
    let heartbeat = runtime.spawn({
        let stop = Arc::clone(&stop);
        async move {
            let mut late_us = Vec::new();
            let mut peak_threads = 0;
            while !stop.load(Ordering::Relaxed) {
                let asleep = Instant::now();
                tokio::time::sleep(Duration::from_millis(1)).await;
                let late = asleep.elapsed().saturating_sub(Duration::from_millis(1));
                late_us.push(late.as_micros() as u64);
                peak_threads = peak_threads.max(threads_and_peak_rss().0);
            }
            (late_us, peak_threads)
        }
    });

    // The client: plain threads, as a load generator on another machine would be.
    let started = Instant::now();
    let clients: Vec<_> = (0..settings.concurrency)
        .map(|first| {
            let (stride, requests) = (settings.concurrency, settings.requests);
            std::thread::spawn(move || client(address, first, stride, requests))
        })
        .collect();
    let mut tally = ClientTally::default();
    for handle in clients {
        let part = handle
            .join()
            .map_err(|_| anyhow::anyhow!("a client thread panicked"))??;
        tally.ok += part.ok;
        tally.failed += part.failed;
        tally.checked += part.checked;
        tally.latencies_us.extend(part.latencies_us);
    }
    let elapsed = started.elapsed();

    stop.store(true, Ordering::Relaxed);
    let _ = shutdown_tx.send(());
    let (mut late_us, peak_threads) = runtime.block_on(heartbeat)?;
    runtime.block_on(server)??;
    // Every handler has returned, so the pool is ours alone: close it and
    // wait for its workers from the runtime, without blocking a thread.
    let pool =
        Arc::try_unwrap(pool).map_err(|_| anyhow::anyhow!("a handler still holds the pool"))?;
    let report = runtime.block_on(pool.wait_async())?;
    let (_, peak_rss_kib) = threads_and_peak_rss();

    tally.latencies_us.sort_unstable();
    late_us.sort_unstable();
    println!(
        "requests={} ok={} failed={} checked={} throughput={:.0} p50_us={} p99_us={} \
         heartbeat_p99_late_us={} threads={} peak_rss_kib={} processed={} pool_failed={} dropped={}",
        settings.requests,
        tally.ok,
        tally.failed,
        tally.checked,
        tally.ok as f64 / elapsed.as_secs_f64(),
        quantile(&tally.latencies_us, 0.5),
        quantile(&tally.latencies_us, 0.99),
        quantile(&late_us, 0.99),
        peak_threads,
        peak_rss_kib,
        report.processed(),
        report.failed(),
        report.dropped(),
    );
    Ok(())
}
