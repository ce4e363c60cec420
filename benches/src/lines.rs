//! W7 `lines`: a real workload. A generated access log is read line by line
//! (`BufReader::lines()`, so every line is an allocated `String`, as a user
//! writes it), each line is parsed (status and path; a malformed line counts
//! as bad), counted per status and per path in per-worker maps, and the maps
//! are merged at the end. Every run's merged counts must equal the counts the
//! generator wrote, which the sequential loop reproduces; a mismatch fails the
//! whole benchmark.
//!
//! Its items are `String`s rather than `u64`s, so it has its own runner and
//! table: wall time, CPU time and context switches per implementation, each
//! against the sequential loop and rayon `par_bridge`.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, BufRead as _, BufReader, BufWriter, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use pool_core::{Ctx, Pool, Worker};
use rayon::iter::{ParallelBridge as _, ParallelIterator as _};
use serde::Serialize;

use crate::impls::Kind;
use crate::peers::CHANNEL_CAPACITY;
use crate::report::{TargetCheck, median, thousands};
use crate::rng::SplitMix64;
use crate::rusage::{self, Usage};
use crate::system::civil_from_days;

/// W7's id in tables, targets and `--workload`.
pub(crate) const ID: &str = "W7";

/// W7's name.
pub(crate) const NAME: &str = "lines";

/// Size of the generated log: at least this many bytes (100 MiB, so "at least
/// 100 MB" either way).
pub(crate) const LOG_BYTES: u64 = 100 * 1024 * 1024;

/// The log's size under `--quick`.
pub(crate) const QUICK_LOG_BYTES: u64 = 5 * 1024 * 1024;

/// Distinct request paths in the log.
pub(crate) const N_PATHS: usize = 1_000;

/// One line in this many is malformed on average (0.1%).
const MALFORMED_ONE_IN: u64 = 1_000;

/// The seed of the log's generator: every run reads the same bytes.
const LOG_SEED: u64 = 0x5EED_0007;

/// Distinct client addresses.
const N_CLIENTS: u64 = 2_000;

/// The first request's time: 2024-03-01 00:00:00, written with a `-0700` offset.
const FIRST_SECOND: i64 = 1_709_251_200;

/// Whether `text` selects W7 (`W7`, `lines`, any case).
pub(crate) fn matches(text: &str) -> bool {
    text.eq_ignore_ascii_case(ID) || text.eq_ignore_ascii_case(NAME)
}

// ---------------------------------------------------------------------------
// Parsing and counting: the job every implementation does.
// ---------------------------------------------------------------------------

/// A hash map with ahash's hasher, as a user who cares about speed writes it.
type Map<K> = HashMap<K, u64, ahash::RandomState>;

/// Parses one Apache common-log line,
/// `host ident user [date] "METHOD /path PROTOCOL" status size`,
/// into its status and path; `None` for a malformed line.
pub(crate) fn parse_line(line: &str) -> Option<(u16, &str)> {
    // Single-character searches only: `str::find` with a string pattern sets
    // up a substring searcher per call (measured here: parsing and counting
    // took about 15% longer with `find(" [")` and `find("] \"")`).
    let date_start = line.find('[')?;
    let mut prefix = line[..date_start].strip_suffix(' ')?.split(' ');
    let (host, ident, user) = (prefix.next()?, prefix.next()?, prefix.next()?);
    if prefix.next().is_some() || host.is_empty() || ident.is_empty() || user.is_empty() {
        return None;
    }
    let date_end = date_start + line[date_start..].find(']')?;
    let request_start = date_end + 3;
    if line.get(date_end..request_start)? != "] \"" {
        return None;
    }
    let request_end = line.rfind('"')?;
    if request_end < request_start {
        return None;
    }
    let mut request = line[request_start..request_end].split(' ');
    let (method, path, protocol) = (request.next()?, request.next()?, request.next()?);
    if request.next().is_some()
        || method.is_empty()
        || !method.bytes().all(|byte| byte.is_ascii_uppercase())
        || !path.starts_with('/')
        || !protocol.starts_with("HTTP/")
    {
        return None;
    }
    let (status, size) = line[request_end + 1..].strip_prefix(' ')?.split_once(' ')?;
    if status.len() != 3 || !status.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    let status: u16 = status.parse().ok()?;
    let size_ok =
        size == "-" || (!size.is_empty() && size.bytes().all(|byte| byte.is_ascii_digit()));
    ((100..=599).contains(&status) && size_ok).then_some((status, path))
}

/// What a worker (or the whole run) counted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    /// Lines seen, malformed ones included.
    pub(crate) lines: u64,
    /// Malformed lines.
    pub(crate) bad: u64,
    /// Well-formed lines per status code.
    pub(crate) by_status: Map<u16>,
    /// Well-formed lines per request path.
    pub(crate) by_path: Map<String>,
}

impl Counts {
    /// Parses and counts one line. A path seen before costs no allocation.
    #[inline]
    pub(crate) fn add(&mut self, line: &str) {
        self.lines += 1;
        let Some((status, path)) = parse_line(line) else {
            self.bad += 1;
            return;
        };
        *self.by_status.entry(status).or_insert(0) += 1;
        match self.by_path.get_mut(path) {
            Some(count) => *count += 1,
            None => {
                self.by_path.insert(path.to_owned(), 1);
            }
        }
    }

    /// Both counts added up (the smaller map merged into the larger).
    pub(crate) fn merged(mut self, mut other: Self) -> Self {
        if other.by_path.len() > self.by_path.len() {
            std::mem::swap(&mut self, &mut other);
        }
        self.lines += other.lines;
        self.bad += other.bad;
        for (status, count) in other.by_status {
            *self.by_status.entry(status).or_insert(0) += count;
        }
        for (path, count) in other.by_path {
            *self.by_path.entry(path).or_insert(0) += count;
        }
        self
    }

    /// Where `self` differs from `expected`, in a few words.
    fn difference(&self, expected: &Self) -> String {
        let mut parts = Vec::new();
        if self.lines != expected.lines {
            parts.push(format!("{} lines, expected {}", self.lines, expected.lines));
        }
        if self.bad != expected.bad {
            parts.push(format!("{} bad, expected {}", self.bad, expected.bad));
        }
        if self.by_status != expected.by_status {
            parts.push(format!(
                "per-status counts differ ({} statuses, expected {})",
                self.by_status.len(),
                expected.by_status.len()
            ));
        }
        if self.by_path != expected.by_path {
            let wrong = expected
                .by_path
                .iter()
                .filter(|(path, count)| self.by_path.get(*path) != Some(count))
                .count();
            parts.push(format!(
                "{wrong} of {} paths counted wrong ({} paths seen)",
                expected.by_path.len(),
                self.by_path.len()
            ));
        }
        parts.join("; ")
    }
}

// ---------------------------------------------------------------------------
// The log file.
// ---------------------------------------------------------------------------

/// The request paths, hottest first: a few site-wide ones, then sections.
fn path_table() -> Vec<String> {
    let mut paths: Vec<String> = [
        "/",
        "/index.html",
        "/apache_pb.gif",
        "/favicon.ico",
        "/css/site.css",
        "/js/app.js",
        "/api/v1/health",
        "/login",
        "/robots.txt",
        "/feed.xml",
    ]
    .map(str::to_owned)
    .to_vec();
    let sections = [
        ("/api/v1/users/", ""),
        ("/blog/2024/post-", ".html"),
        ("/images/photo-", ".jpg"),
        ("/api/v1/orders/", "/items"),
        ("/docs/guide/chapter-", ".html"),
        ("/static/js/chunk-", ".js"),
        ("/products/", "?ref=home"),
        ("/search?q=term", "&page=2"),
    ];
    let mut index = 0;
    while paths.len() < N_PATHS {
        let (head, tail) = sections[index % sections.len()];
        paths.push(format!("{head}{}{tail}", index * 7 + 13));
        index += 1;
    }
    paths
}

/// Picks from a fixed list by integer weights.
#[derive(Debug, Clone)]
struct Weighted<T> {
    /// The choices with their cumulative weights.
    choices: Vec<(u64, T)>,
    /// The sum of the weights.
    total: u64,
}

impl<T: Copy> Weighted<T> {
    /// A picker over `(weight, value)` pairs.
    fn new(pairs: &[(u64, T)]) -> Self {
        let mut total = 0;
        let choices = pairs
            .iter()
            .map(|&(weight, value)| {
                total += weight;
                (total, value)
            })
            .collect();
        Self { choices, total }
    }

    /// One value, drawn with probability weight / total.
    fn pick(&self, rng: &mut SplitMix64) -> T {
        let draw = rng.below(self.total);
        let index = self
            .choices
            .partition_point(|&(cumulative, _)| cumulative <= draw);
        self.choices[index.min(self.choices.len() - 1)].1
    }
}

/// What was written: the file's size and the counts every run must find.
#[derive(Debug, Clone)]
pub(crate) struct GeneratedLog {
    /// Where the log is.
    pub(crate) path: PathBuf,
    /// Bytes written.
    pub(crate) bytes: u64,
    /// The counts of what was written (the expected result).
    pub(crate) expected: Counts,
    /// How long writing it took.
    pub(crate) took: Duration,
}

/// A temporary directory of this process, removed when dropped.
#[derive(Debug)]
pub(crate) struct TempDir {
    /// The directory.
    path: PathBuf,
}

impl TempDir {
    /// Creates `<temp>/peer-bench-w7-<pid>-<nanos>`.
    pub(crate) fn new() -> anyhow::Result<Self> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.subsec_nanos());
        let path =
            std::env::temp_dir().join(format!("peer-bench-w7-{}-{nanos}", std::process::id()));
        std::fs::create_dir(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(Self { path })
    }

    /// The directory.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if let Err(error) = std::fs::remove_dir_all(&self.path) {
            eprintln!(
                "peer-bench: could not remove {}: {error}",
                self.path.display()
            );
        }
    }
}

/// Writes a common-log-format file of at least `min_bytes` bytes to `path`
/// from the fixed seed, and counts what it writes.
///
/// Clients: 2,000 addresses; users mostly `-`; one to three seconds between
/// requests; methods GET (88%), POST, HEAD, PUT, DELETE, OPTIONS; 1,000 paths
/// with Zipf(1) popularity (the hottest, `/`, takes 13%); status 200 (85%),
/// 304 (7%), 404 (5%), 301, 302, 403, 500, 503; log-normal sizes around
/// 2.5 kB (`-` for 304s and HEADs). About one line in 1,000 is malformed:
/// half of them a valid line cut short before its size, 40% printable
/// garbage, 10% empty.
pub(crate) fn generate(path: &Path, min_bytes: u64) -> anyhow::Result<GeneratedLog> {
    let started = Instant::now();
    let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let mut rng = SplitMix64::new(LOG_SEED);

    let paths = path_table();
    let popularity: Vec<(u64, usize)> = (0..N_PATHS)
        // Zipf(1) in integer weights: 1,000,000 / rank.
        .map(|index| (1_000_000 / (index as u64 + 1), index))
        .collect();
    let popularity = Weighted::new(&popularity);
    let methods = Weighted::new(&[
        (880, "GET"),
        (70, "POST"),
        (30, "HEAD"),
        (10, "PUT"),
        (5, "DELETE"),
        (5, "OPTIONS"),
    ]);
    let statuses = Weighted::new(&[
        (850, 200_u16),
        (70, 304),
        (50, 404),
        (10, 301),
        (5, 302),
        (5, 403),
        (8, 500),
        (2, 503),
    ]);
    let protocols = Weighted::new(&[(70, "HTTP/1.1"), (10, "HTTP/1.0"), (20, "HTTP/2.0")]);
    let users = ["frank", "alice", "bob", "carol", "dave", "erin", "mallory"];
    let clients: Vec<String> = (0..N_CLIENTS)
        .map(|client| {
            let bits = SplitMix64::new(client).next_u64();
            format!(
                "{}.{}.{}.{}",
                [10, 172, 192, 81][(bits & 3) as usize],
                (bits >> 8) & 0xFF,
                (bits >> 16) & 0xFF,
                1 + (bits >> 24) % 254
            )
        })
        .collect();
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];

    let mut expected = Counts::default();
    let mut path_counts = vec![0_u64; N_PATHS];
    let mut second = FIRST_SECOND;
    let mut line = String::with_capacity(256);
    let mut bytes = 0_u64;
    while bytes < min_bytes {
        line.clear();
        second += 1 + rng.below(3) as i64;
        let local = second - 7 * 3_600;
        let (year, month, day) = civil_from_days(local.div_euclid(86_400));
        let of_day = local.rem_euclid(86_400);
        let method = methods.pick(&mut rng);
        let status = statuses.pick(&mut rng);
        let path_index = popularity.pick(&mut rng);
        let user = if rng.below(20) == 0 {
            users[rng.below(users.len() as u64) as usize]
        } else {
            "-"
        };
        let _ = write!(
            line,
            "{} - {user} [{day:02}/{}/{year}:{:02}:{:02}:{:02} -0700] \"{method} {} {}\" {status} ",
            clients[rng.below(N_CLIENTS) as usize],
            MONTHS[(month - 1) as usize],
            of_day / 3_600,
            of_day / 60 % 60,
            of_day % 60,
            paths[path_index],
            protocols.pick(&mut rng),
        );
        if status == 304 || method == "HEAD" {
            line.push('-');
        } else {
            let median = if status == 200 { 2_500.0 } else { 300.0 };
            let size = rng.log_normal(median, 1.2).clamp(0.0, 50_000_000.0) as u64;
            let _ = write!(line, "{size}");
        }
        if rng.below(MALFORMED_ONE_IN) == 0 {
            malform(&mut line, &mut rng);
            expected.bad += 1;
        } else {
            *expected.by_status.entry(status).or_insert(0) += 1;
            path_counts[path_index] += 1;
        }
        expected.lines += 1;
        line.push('\n');
        out.write_all(line.as_bytes())
            .with_context(|| format!("writing {}", path.display()))?;
        bytes += line.len() as u64;
    }
    out.flush()
        .with_context(|| format!("writing {}", path.display()))?;
    expected.by_path = paths
        .into_iter()
        .zip(path_counts)
        .filter(|&(_, count)| count > 0)
        .collect();
    Ok(GeneratedLog {
        path: path.to_owned(),
        bytes,
        expected,
        took: started.elapsed(),
    })
}

/// Turns a well-formed line (no newline yet) into one the parser must reject.
fn malform(line: &mut String, rng: &mut SplitMix64) {
    match rng.below(10) {
        // Cut short before the size field: the status and size can never both be there.
        0..=4 => {
            let last_space = line.rfind(' ').unwrap_or(0) as u64;
            line.truncate(rng.below(last_space.max(1)) as usize);
        }
        // Printable garbage without `"` or `[`, so no request or date can be found.
        5..=8 => {
            const GARBAGE: &[u8] =
                b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 -_/.:;,!?%&=+*#@";
            line.clear();
            let length = 1 + rng.below(120);
            for _ in 0..length {
                line.push(char::from(
                    GARBAGE[rng.below(GARBAGE.len() as u64) as usize],
                ));
            }
        }
        _ => line.clear(),
    }
}

// ---------------------------------------------------------------------------
// The implementations.
// ---------------------------------------------------------------------------

/// One way of running the job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LinesImpl {
    /// One thread reads, parses and counts: the floor for CPU.
    Sequential,
    /// rayon `par_bridge()` over `lines()`, `try_fold` into maps, `try_reduce`.
    RayonParBridge,
    /// The reading thread sends each line into a crossbeam-channel
    /// `bounded(100)`; N threads count into their own maps, merged after `join`.
    CrossbeamChannel,
    /// A workforce pool (`keep_workers().build_stateful`, default batch) fed
    /// by a `Submitter` on the reading thread; each worker's maps come back
    /// from `wait_with_workers`.
    WorkforcePush,
    /// A workforce pool whose workers pull the lines from the iterator
    /// themselves (`pool.run(lines)`, then `wait`).
    WorkforcePull,
}

/// Every implementation, in the order each repetition runs them.
pub(crate) const ALL_LINES_IMPLS: &[LinesImpl] = &[
    LinesImpl::Sequential,
    LinesImpl::RayonParBridge,
    LinesImpl::CrossbeamChannel,
    LinesImpl::WorkforcePush,
    LinesImpl::WorkforcePull,
];

impl LinesImpl {
    /// The name in the table.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Sequential => "sequential",
            Self::RayonParBridge => "rayon par_bridge",
            Self::CrossbeamChannel => "crossbeam-channel bounded(100)",
            Self::WorkforcePush => "workforce push (Submitter, batch=64)",
            Self::WorkforcePull => "workforce pull (pool.run(lines))",
        }
    }

    /// Its role.
    pub(crate) fn kind(self) -> Kind {
        match self {
            Self::Sequential => Kind::Sequential,
            Self::RayonParBridge | Self::CrossbeamChannel => Kind::StreamingPeer,
            Self::WorkforcePush => Kind::Workforce,
            Self::WorkforcePull => Kind::Workforce,
        }
    }

    /// Runs the job once on the log at `path` and measures it.
    pub(crate) fn run(
        self,
        path: &Path,
        workers: usize,
        rayon_pool: &rayon::ThreadPool,
    ) -> anyhow::Result<LinesRun> {
        match self {
            Self::Sequential => run_sequential(path),
            Self::RayonParBridge => run_rayon_par_bridge(path, rayon_pool),
            Self::CrossbeamChannel => run_crossbeam_channel(path, workers),
            Self::WorkforcePush => run_workforce_push(path, workers),
            Self::WorkforcePull => run_workforce_pull(path, workers),
        }
    }
}

/// One measured run.
#[derive(Debug, Clone)]
pub(crate) struct LinesRun {
    /// From opening the file to the merged counts.
    pub(crate) wall: Duration,
    /// CPU time and context switches of the process in that window, where
    /// readable.
    pub(crate) usage: Option<Usage>,
    /// What the run counted.
    pub(crate) counts: Counts,
}

/// The clock and the process's usage, started together.
struct Meter {
    /// When the window opened.
    started: Instant,
    /// Usage at that moment.
    usage: Option<Usage>,
}

impl Meter {
    /// Opens the window: usage first, so reading it is not timed.
    fn start() -> Self {
        let usage = rusage::usage();
        Self {
            started: Instant::now(),
            usage,
        }
    }

    /// Closes the window on `counts`.
    fn stop(self, counts: Counts) -> LinesRun {
        let wall = self.started.elapsed();
        let usage = self
            .usage
            .zip(rusage::usage())
            .map(|(before, after)| before.until(after));
        LinesRun {
            wall,
            usage,
            counts,
        }
    }
}

/// Opens the log for reading.
fn open(path: &Path) -> anyhow::Result<BufReader<File>> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    Ok(BufReader::new(file))
}

/// The floor: one thread reads, parses and counts.
fn run_sequential(path: &Path) -> anyhow::Result<LinesRun> {
    let meter = Meter::start();
    let mut counts = Counts::default();
    for line in open(path)?.lines() {
        counts.add(&line.context("reading the log")?);
    }
    Ok(meter.stop(counts))
}

/// rayon: `par_bridge` hands the `lines()` iterator to the pool's threads,
/// which take lines from it (one at a time, under rayon's lock) and fold them
/// into maps of their own; the maps are reduced pairwise.
fn run_rayon_par_bridge(path: &Path, rayon_pool: &rayon::ThreadPool) -> anyhow::Result<LinesRun> {
    let meter = Meter::start();
    let reader = open(path)?;
    let counts = rayon_pool.install(|| {
        reader
            .lines()
            .par_bridge()
            .try_fold(Counts::default, |mut counts, line| {
                counts.add(&line?);
                Ok::<_, io::Error>(counts)
            })
            .try_reduce(Counts::default, |left, right| Ok(left.merged(right)))
    });
    let counts = counts.context("reading the log")?;
    Ok(meter.stop(counts))
}

/// The hand-written pool: the reading thread sends every line into a
/// `bounded(100)` channel; `workers` threads (started and waiting before the
/// clock) count into their own maps and return them through `join`.
fn run_crossbeam_channel(path: &Path, workers: usize) -> anyhow::Result<LinesRun> {
    let (sender, receiver) = crossbeam_channel::bounded::<String>(CHANNEL_CAPACITY);
    let start_line = Arc::new(Barrier::new(workers + 1));
    let threads: Vec<_> = (0..workers)
        .map(|_| {
            let receiver = receiver.clone();
            let start_line = Arc::clone(&start_line);
            std::thread::spawn(move || {
                start_line.wait();
                let mut counts = Counts::default();
                for line in receiver {
                    counts.add(&line);
                }
                counts
            })
        })
        .collect();
    drop(receiver);
    start_line.wait();

    let meter = Meter::start();
    let read = (|| -> anyhow::Result<()> {
        for line in open(path)?.lines() {
            sender
                .send(line.context("reading the log")?)
                .map_err(|_| anyhow!("crossbeam-channel workers hung up early"))?;
        }
        Ok(())
    })();
    drop(sender);
    let mut counts = Counts::default();
    for thread in threads {
        let part = thread
            .join()
            .map_err(|_| anyhow!("a crossbeam-channel worker panicked"))?;
        counts = counts.merged(part);
    }
    read?;
    Ok(meter.stop(counts))
}

/// A workforce worker: counts into its own maps, which come back whole when
/// the pool ends (`keep_workers` and `wait_with_workers`: no channel, no lock).
#[derive(Default)]
struct LineWorker {
    /// This worker's counts.
    counts: Counts,
}

impl Worker<String> for LineWorker {
    type Error = std::convert::Infallible;

    #[inline]
    fn work(&mut self, _ctx: &Ctx, line: String) -> Result<(), Self::Error> {
        self.counts.add(&line);
        Ok(())
    }
}

/// A workforce pool of `workers` [`LineWorker`]s, kept to be handed back at
/// the end (the threads start here, before the clock).
fn line_pool(workers: usize) -> anyhow::Result<Pool<String, LineWorker>> {
    Pool::builder()
        .workers(workers)
        .keep_workers()
        .build_stateful(|_ctx: &Ctx| LineWorker::default())
        .map_err(|error| anyhow!("building the workforce pool failed: {error}"))
}

/// Waits for `pool` and merges the counts of its `workers` workers.
fn finish_pool(pool: Pool<String, LineWorker>, workers: usize) -> anyhow::Result<Counts> {
    let (report, parts) = pool
        .wait_with_workers()
        .map_err(|error| anyhow!("the workforce pool failed: {error}"))?;
    if parts.len() != workers {
        bail!("{} of {workers} workforce workers came back", parts.len());
    }
    let merged = parts
        .into_iter()
        .map(|part| part.counts)
        .fold(Counts::default(), Counts::merged);
    if report.processed() != merged.lines {
        bail!(
            "the workforce pool processed {} lines, its workers counted {}",
            report.processed(),
            merged.lines
        );
    }
    Ok(merged)
}

/// workforce, pushed: the reading thread submits every line through one
/// `Submitter` (default batch), then drops it and waits.
fn run_workforce_push(path: &Path, workers: usize) -> anyhow::Result<LinesRun> {
    let pool = line_pool(workers)?;
    let meter = Meter::start();
    let read = (|| -> anyhow::Result<()> {
        let mut submitter = pool.submitter();
        for line in open(path)?.lines() {
            submitter
                .submit(line.context("reading the log")?)
                .map_err(|_| anyhow!("the workforce pool closed while lines were submitted"))?;
        }
        Ok(())
    })();
    let counts = finish_pool(pool, workers)?;
    read?;
    Ok(meter.stop(counts))
}

/// Workforce, pulled: the pool's workers take the lines from the iterator
/// themselves (`Pool::run`: no Submitter, no reading thread of ours); `run`
/// returns how many it took and `wait` ends the run. An I/O error ends the
/// iterator and is reported after `wait`, as a user would do it with an item
/// type of `String`.
fn run_workforce_pull(path: &Path, workers: usize) -> anyhow::Result<LinesRun> {
    let pool = line_pool(workers)?;
    let meter = Meter::start();
    let io_error = Arc::new(std::sync::Mutex::new(None::<io::Error>));
    let seen = Arc::clone(&io_error);
    let lines = open(path)?.lines().map_while(move |line| match line {
        Ok(line) => Some(line),
        Err(error) => {
            *seen
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(error);
            None
        }
    });
    let taken = pool
        .run(lines)
        .map_err(|_| anyhow!("the workforce pool refused the lines (closed or cancelled)"))?;
    let counts = finish_pool(pool, workers)?;
    if let Some(error) = io_error
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take()
    {
        return Err(error).context("reading the log");
    }
    if taken != counts.lines {
        bail!(
            "pool.run took {taken} lines, the workers counted {}",
            counts.lines
        );
    }
    Ok(meter.stop(counts))
}

// ---------------------------------------------------------------------------
// The table.
// ---------------------------------------------------------------------------

/// One repetition of one implementation.
#[derive(Debug, Clone, Copy, Serialize)]
pub(crate) struct LinesSample {
    /// Wall time, ms.
    pub(crate) wall_ms: f64,
    /// CPU time of the process (user + sys), ms.
    pub(crate) cpu_ms: Option<f64>,
    /// Voluntary context switches.
    pub(crate) voluntary_switches: Option<u64>,
    /// Involuntary context switches.
    pub(crate) involuntary_switches: Option<u64>,
}

impl LinesSample {
    /// The sample of `run`.
    pub(crate) fn of(run: &LinesRun) -> Self {
        Self {
            wall_ms: run.wall.as_secs_f64() * 1e3,
            cpu_ms: run.usage.map(|usage| usage.cpu.as_secs_f64() * 1e3),
            voluntary_switches: run.usage.map(|usage| usage.voluntary),
            involuntary_switches: run.usage.map(|usage| usage.involuntary),
        }
    }

    /// Voluntary plus involuntary switches.
    fn switches(&self) -> Option<u64> {
        Some(self.voluntary_switches? + self.involuntary_switches?)
    }
}

/// One implementation's repetitions.
#[derive(Debug, Clone)]
pub(crate) struct LinesSamples {
    /// Which implementation.
    pub(crate) implementation: LinesImpl,
    /// Its repetitions, in run order.
    pub(crate) samples: Vec<LinesSample>,
}

/// One row of W7's table.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct LinesRow {
    /// Display name.
    pub(crate) implementation: String,
    /// Role in the comparison.
    pub(crate) kind: Kind,
    /// Timed repetitions.
    pub(crate) reps: usize,
    /// Median wall time, ms.
    pub(crate) median_wall_ms: f64,
    /// Fastest repetition, ms.
    pub(crate) min_wall_ms: f64,
    /// Slowest repetition, ms.
    pub(crate) max_wall_ms: f64,
    /// Median wall time per line (malformed ones included), ns.
    pub(crate) ns_per_line: f64,
    /// Median CPU time (user + sys, whole process), ms.
    pub(crate) median_cpu_ms: Option<f64>,
    /// Median CPU time over the sequential row's.
    pub(crate) cpu_vs_sequential: Option<f64>,
    /// Median context switches, voluntary + involuntary.
    pub(crate) median_switches: Option<f64>,
    /// Median voluntary context switches.
    pub(crate) median_voluntary_switches: Option<f64>,
    /// Median involuntary context switches.
    pub(crate) median_involuntary_switches: Option<f64>,
    /// Median wall time over the sequential row's (below 1 is faster).
    pub(crate) vs_sequential: Option<f64>,
    /// Median wall time over rayon `par_bridge`'s.
    pub(crate) vs_rayon: Option<f64>,
    /// Every repetition.
    pub(crate) samples: Vec<LinesSample>,
}

/// W7's results.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct LinesTable {
    /// `W7`.
    pub(crate) workload: &'static str,
    /// `lines`.
    pub(crate) workload_name: &'static str,
    /// Size of the log, bytes.
    pub(crate) file_bytes: u64,
    /// Lines in the log.
    pub(crate) lines: u64,
    /// Malformed lines in it.
    pub(crate) bad_lines: u64,
    /// Distinct paths and statuses among the well-formed lines.
    pub(crate) distinct_paths: usize,
    /// Distinct statuses.
    pub(crate) distinct_statuses: usize,
    /// Worker threads of the parallel rows.
    pub(crate) workers: usize,
    /// Cores of the machine.
    pub(crate) cores: usize,
    /// The machine's CPU model.
    pub(crate) cpu_model: String,
    /// The date of the run.
    pub(crate) date: String,
    /// Timed repetitions per implementation.
    pub(crate) reps: usize,
    /// Whether each implementation ran once untimed first.
    pub(crate) warm_up: bool,
    /// How CPU time and context switches were read.
    pub(crate) usage_source: &'static str,
    /// What the clock covers.
    pub(crate) timing: &'static str,
    /// One row per implementation, in run order.
    pub(crate) rows: Vec<LinesRow>,
    /// Anything the header must add.
    pub(crate) notes: Vec<String>,
}

/// What W7's clock covers.
pub(crate) const LINES_TIMING: &str = "timed from opening the file to the merged counts \
     (reading, parsing, counting, merging; workers' exit included); pools and threads are built \
     before, the log is in the page cache (written just before, read every run)";

/// The median of some optional figures, if every one is there.
fn median_of(values: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    let values: Option<Vec<f64>> = values.collect();
    values
        .filter(|values| !values.is_empty())
        .map(|values| median(&values))
}

impl LinesTable {
    /// The table of `samples`, measured on `log` at `workers` workers.
    pub(crate) fn new(
        log: &GeneratedLog,
        workers: usize,
        system: &crate::system::SystemInfo,
        reps: usize,
        warm_up: bool,
        samples: Vec<LinesSamples>,
        notes: Vec<String>,
    ) -> Self {
        let lines = log.expected.lines;
        let medians = |implementation: LinesImpl| {
            samples
                .iter()
                .find(|samples| samples.implementation == implementation)
                .map(|samples| {
                    let wall: Vec<f64> = samples.samples.iter().map(|s| s.wall_ms).collect();
                    (
                        median(&wall),
                        median_of(samples.samples.iter().map(|s| s.cpu_ms)),
                    )
                })
        };
        let sequential = medians(LinesImpl::Sequential);
        let rayon = medians(LinesImpl::RayonParBridge);
        let rows = samples
            .into_iter()
            .map(
                |LinesSamples {
                     implementation,
                     samples,
                 }| {
                    let wall: Vec<f64> = samples.iter().map(|sample| sample.wall_ms).collect();
                    let median_wall_ms = median(&wall);
                    let median_cpu_ms = median_of(samples.iter().map(|sample| sample.cpu_ms));
                    let switches = |pick: fn(&LinesSample) -> Option<u64>| {
                        median_of(samples.iter().map(|sample| pick(sample).map(|n| n as f64)))
                    };
                    LinesRow {
                        implementation: implementation.name().to_owned(),
                        kind: implementation.kind(),
                        reps: samples.len(),
                        median_wall_ms,
                        min_wall_ms: wall.iter().copied().fold(f64::INFINITY, f64::min),
                        max_wall_ms: wall.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                        ns_per_line: median_wall_ms * 1e6 / lines.max(1) as f64,
                        median_cpu_ms,
                        cpu_vs_sequential: median_cpu_ms
                            .zip(sequential.and_then(|(_, cpu)| cpu))
                            .map(|(cpu, base)| cpu / base),
                        median_switches: switches(LinesSample::switches),
                        median_voluntary_switches: switches(|sample| sample.voluntary_switches),
                        median_involuntary_switches: switches(|sample| sample.involuntary_switches),
                        vs_sequential: sequential.map(|(base, _)| median_wall_ms / base),
                        vs_rayon: rayon.map(|(base, _)| median_wall_ms / base),
                        samples,
                    }
                },
            )
            .collect();
        Self {
            workload: ID,
            workload_name: NAME,
            file_bytes: log.bytes,
            lines,
            bad_lines: log.expected.bad,
            distinct_paths: log.expected.by_path.len(),
            distinct_statuses: log.expected.by_status.len(),
            workers,
            cores: system.cores,
            cpu_model: system.cpu_model.clone(),
            date: system.date.clone(),
            reps,
            warm_up,
            usage_source: rusage::SOURCE,
            timing: LINES_TIMING,
            rows,
            notes,
        }
    }

    /// The title line.
    fn title(&self) -> String {
        format!(
            "{} {}: a {:.1} MB access log, {} lines ({} malformed), {} paths, {} statuses; \
             BufReader::lines(), parse, count per status and path in per-worker maps, merge; \
             workers={}, {} rep(s){}",
            self.workload,
            self.workload_name,
            self.file_bytes as f64 / 1e6,
            thousands(self.lines),
            thousands(self.bad_lines),
            thousands(self.distinct_paths as u64),
            self.distinct_statuses,
            self.workers,
            self.reps,
            if self.warm_up {
                " after a warm-up"
            } else {
                ", no warm-up"
            },
        )
    }

    /// The cells, header first.
    fn cells(&self) -> Vec<Vec<String>> {
        let header = [
            "implementation",
            "median ms",
            "min–max ms",
            "ns/line",
            "CPU ms",
            "CPU vs seq",
            "ctx switches",
            "vs sequential",
            "vs rayon",
        ]
        .map(str::to_owned)
        .to_vec();
        let ratio = |value: Option<f64>| value.map_or_else(|| "n/a".to_owned(), format_ratio);
        let rows = self.rows.iter().map(|row| {
            vec![
                row.implementation.clone(),
                format!("{:.1}", row.median_wall_ms),
                format!("{:.1}–{:.1}", row.min_wall_ms, row.max_wall_ms),
                format!("{:.1}", row.ns_per_line),
                row.median_cpu_ms
                    .map_or_else(|| "n/a".to_owned(), |cpu| format!("{cpu:.1}")),
                ratio(row.cpu_vs_sequential),
                row.median_switches
                    .map_or_else(|| "n/a".to_owned(), |n| thousands(n.round() as u64)),
                ratio(row.vs_sequential),
                ratio(row.vs_rayon),
            ]
        });
        std::iter::once(header).chain(rows).collect()
    }

    /// The lines under the title.
    fn subtitle(&self) -> Vec<String> {
        let mut lines = vec![
            format!(
                "machine: {} cores, {}; {}",
                self.cores, self.cpu_model, self.date
            ),
            format!("timing: {}", self.timing),
            format!("CPU and switches: {}", self.usage_source),
            "every run's merged counts are checked against the generator's (lines, bad lines, \
             per status, per path); ratios are medians over the sequential and rayon par_bridge rows"
                .to_owned(),
        ];
        lines.extend(self.notes.iter().map(|note| format!("note: {note}")));
        lines
    }

    /// The table as aligned plain text.
    pub(crate) fn to_text(&self) -> String {
        let cells = self.cells();
        let mut widths = vec![0_usize; cells[0].len()];
        for row in &cells {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        let _ = writeln!(out, "{}", self.title());
        for line in self.subtitle() {
            let _ = writeln!(out, "  {line}");
        }
        for (index, row) in cells.iter().enumerate() {
            let mut line = String::from(" ");
            for (column, (cell, width)) in row.iter().zip(&widths).enumerate() {
                let padding = " ".repeat(width - cell.chars().count());
                if column == 0 {
                    let _ = write!(line, " {cell}{padding}");
                } else {
                    let _ = write!(line, "  {padding}{cell}");
                }
            }
            let _ = writeln!(out, "{}", line.trim_end());
            if index == 0 {
                let total: usize = widths.iter().sum::<usize>() + 2 * widths.len();
                let _ = writeln!(out, "  {}", "-".repeat(total));
            }
        }
        out
    }

    /// The table as a Markdown section.
    pub(crate) fn to_markdown(&self) -> String {
        let mut out = format!("### {}\n\n", self.title());
        for line in self.subtitle() {
            let _ = writeln!(out, "- {line}");
        }
        out.push('\n');
        for (index, row) in self.cells().iter().enumerate() {
            let _ = writeln!(out, "| {} |", row.join(" | "));
            if index == 0 {
                let _ = writeln!(out, "|---|{}", "---:|".repeat(row.len() - 1));
            }
        }
        out
    }

    /// The median of the row named by `implementation`, if it ran.
    fn row(&self, implementation: LinesImpl) -> Option<&LinesRow> {
        self.rows
            .iter()
            .find(|row| row.implementation == implementation.name())
    }
}

/// Formats a ratio as `1.23x`.
fn format_ratio(value: f64) -> String {
    if value.is_finite() {
        format!("{value:.2}x")
    } else {
        "n/a".to_owned()
    }
}

/// W7 wants workforce at least this many times faster than sequential.
pub(crate) const SPEEDUP_OVER_SEQUENTIAL: f64 = 1.6;

/// ... using at most this many times the sequential loop's CPU time.
pub(crate) const CPU_OVER_SEQUENTIAL: f64 = 1.3;

/// ... with at most this many times rayon `par_bridge`'s context switches.
pub(crate) const SWITCHES_OVER_RAYON: f64 = 2.0;

/// W7's targets for every workforce row: at least 1.6× sequential's speed
/// and at least rayon's, CPU at most 1.3× sequential's, context switches at
/// most 2× rayon's. A check whose baseline did not run is left out.
pub(crate) fn check_targets(table: &LinesTable) -> Vec<TargetCheck> {
    let sequential = table.row(LinesImpl::Sequential);
    let rayon = table.row(LinesImpl::RayonParBridge);
    let mut checks = Vec::new();
    let check = |name: String, target: String, measured: String, met: bool| TargetCheck {
        workload: ID,
        workers: table.workers,
        name,
        target,
        measured,
        met,
        informational: false,
    };
    for row in table.rows.iter().filter(|row| row.kind == Kind::Workforce) {
        let name = format!("{ID} {}", row.implementation);
        if let Some(sequential) = sequential {
            let speedup = sequential.median_wall_ms / row.median_wall_ms;
            checks.push(check(
                format!("{name} vs sequential"),
                format!(
                    ">= {SPEEDUP_OVER_SEQUENTIAL}x faster than sequential at {} workers",
                    table.workers
                ),
                format!(
                    "{speedup:.2}x ({:.1} vs {:.1} ms)",
                    row.median_wall_ms, sequential.median_wall_ms
                ),
                speedup >= SPEEDUP_OVER_SEQUENTIAL,
            ));
            if let (Some(cpu), Some(base)) = (row.median_cpu_ms, sequential.median_cpu_ms) {
                checks.push(check(
                    format!("{name} CPU time"),
                    format!("<= {CPU_OVER_SEQUENTIAL}x the sequential loop's CPU time"),
                    format!("{} ({cpu:.1} vs {base:.1} ms)", format_ratio(cpu / base)),
                    cpu <= CPU_OVER_SEQUENTIAL * base,
                ));
            }
        }
        if let Some(rayon) = rayon {
            checks.push(check(
                format!("{name} vs rayon par_bridge"),
                "at least as fast as rayon par_bridge (<= 1.00x its wall time)".to_owned(),
                format!(
                    "{} ({:.1} vs {:.1} ms)",
                    format_ratio(row.median_wall_ms / rayon.median_wall_ms),
                    row.median_wall_ms,
                    rayon.median_wall_ms
                ),
                row.median_wall_ms <= rayon.median_wall_ms,
            ));
            if let (Some(switches), Some(base)) = (row.median_switches, rayon.median_switches) {
                checks.push(check(
                    format!("{name} context switches"),
                    format!("<= {SWITCHES_OVER_RAYON}x rayon par_bridge's"),
                    format!(
                        "{} ({} vs {})",
                        format_ratio(switches / base.max(1.0)),
                        thousands(switches.round() as u64),
                        thousands(base.round() as u64)
                    ),
                    switches <= SWITCHES_OVER_RAYON * base,
                ));
            }
        }
    }
    checks
}

/// Checks a run's counts against the generator's.
pub(crate) fn check_counts(
    implementation: LinesImpl,
    workers: usize,
    counts: &Counts,
    expected: &Counts,
) -> anyhow::Result<()> {
    if counts != expected {
        bail!(
            "{} on {ID} {NAME} (workers={workers}) counted wrong: {}",
            implementation.name(),
            counts.difference(expected)
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str =
        r#"127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326"#;

    #[test]
    fn the_parser_takes_common_log_lines_and_rejects_the_rest() {
        assert_eq!(parse_line(GOOD), Some((200, "/apache_pb.gif")));
        assert_eq!(
            parse_line(r#"10.0.0.1 - - [01/Mar/2024:00:00:01 -0700] "HEAD /x?q=1 HTTP/2.0" 304 -"#),
            Some((304, "/x?q=1"))
        );
        for cut in 0..GOOD.rfind(' ').expect("a space") {
            assert_eq!(parse_line(&GOOD[..cut]), None, "cut at {cut}");
        }
        for bad in [
            "",
            "garbage",
            r#"127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /a HTTP/1.0" 2000 1"#,
            r#"127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /a HTTP/1.0" 200 12x"#,
            r#"127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET a HTTP/1.0" 200 1"#,
            r#"127.0.0.1 - [10/Oct/2000:13:55:36 -0700] "GET /a HTTP/1.0" 200 1"#,
            r#"127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "get /a HTTP/1.0" 200 1"#,
            r#"127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /a HTTP/1.0" 099 1"#,
        ] {
            assert_eq!(parse_line(bad), None, "{bad}");
        }
    }

    #[test]
    fn counts_merge_to_the_sequential_counts() {
        let lines = [GOOD, "junk", GOOD, r#"1 - - [d] "POST /b HTTP/1.1" 404 -"#];
        let mut all = Counts::default();
        lines.iter().for_each(|line| all.add(line));
        assert_eq!((all.lines, all.bad), (4, 1));
        assert_eq!(all.by_status.get(&200), Some(&2));
        assert_eq!(all.by_path.get("/b"), Some(&1));
        let (mut left, mut right) = (Counts::default(), Counts::default());
        lines[..1].iter().for_each(|line| left.add(line));
        lines[1..].iter().for_each(|line| right.add(line));
        assert_eq!(left.clone().merged(right.clone()), all);
        assert_eq!(right.merged(left), all);
        assert!(all.difference(&Counts::default()).contains("4 lines"));
    }

    #[test]
    fn the_log_is_fixed_and_every_implementation_counts_it_right() {
        let dir = TempDir::new().expect("a temp dir");
        let log = generate(&dir.path().join("access.log"), 300_000).expect("the log is written");
        assert!(log.bytes >= 300_000);
        let again = generate(&dir.path().join("again.log"), 300_000).expect("written again");
        assert_eq!(
            std::fs::read(&log.path).expect("readable"),
            std::fs::read(&again.path).expect("readable")
        );
        let expected = &log.expected;
        assert!(expected.lines > 2_000 && expected.bad > 0 && expected.bad < 20);
        assert!(expected.by_path.len() > 300, "{}", expected.by_path.len());
        assert!(expected.by_path["/"] > expected.lines / 20);
        assert!(expected.by_status[&200] > expected.lines * 3 / 4);
        let rayon_pool = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .expect("a rayon pool");
        for &implementation in ALL_LINES_IMPLS {
            let run = implementation
                .run(&log.path, 3, &rayon_pool)
                .expect("the implementation runs");
            check_counts(implementation, 3, &run.counts, expected).expect("right counts");
            assert!(run.usage.is_none_or(|usage| usage.cpu > Duration::ZERO));
        }
        let path = dir.path().to_owned();
        drop(dir);
        assert!(!path.exists());
    }

    #[test]
    fn targets_compare_workforce_with_sequential_and_rayon() {
        let sample = |wall_ms: f64, cpu_ms: f64, switches: u64| LinesSample {
            wall_ms,
            cpu_ms: Some(cpu_ms),
            voluntary_switches: Some(switches),
            involuntary_switches: Some(0),
        };
        let samples = vec![
            LinesSamples {
                implementation: LinesImpl::Sequential,
                samples: vec![sample(100.0, 100.0, 10)],
            },
            LinesSamples {
                implementation: LinesImpl::RayonParBridge,
                samples: vec![sample(70.0, 150.0, 1_000)],
            },
            LinesSamples {
                implementation: LinesImpl::WorkforcePush,
                samples: vec![sample(60.0, 125.0, 3_000), sample(50.0, 120.0, 1_500)],
            },
        ];
        let log = GeneratedLog {
            path: PathBuf::new(),
            bytes: 1_000,
            expected: Counts {
                lines: 10,
                ..Counts::default()
            },
            took: Duration::ZERO,
        };
        let system = crate::report::tests::machine();
        let table = LinesTable::new(&log, 2, &system, 2, false, samples, Vec::new());
        let workforce = &table.rows[2];
        assert!((workforce.median_wall_ms - 55.0).abs() < 1e-9);
        assert!((workforce.ns_per_line - 5.5e6).abs() < 1e-3);
        let checks = check_targets(&table);
        let outcome: Vec<(&str, bool)> = checks
            .iter()
            .map(|check| (check.name.rsplit(") ").next().unwrap_or(""), check.met))
            .collect();
        // 100 / 55 = 1.82x; CPU 1.225x; 55 <= 70; 2,250 > 2 x 1,000.
        assert_eq!(
            outcome,
            [
                ("vs sequential", true),
                ("CPU time", true),
                ("vs rayon par_bridge", true),
                ("context switches", false)
            ]
        );
        assert!(table.to_text().contains("workforce push"));
        assert!(table.to_markdown().contains("|---|---:|"));
    }
}
