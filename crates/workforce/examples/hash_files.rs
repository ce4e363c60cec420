//! `b3sum` for a whole tree: hashes every file under a directory with BLAKE3
//! on a pool, with a progress bar driven by live `Pool::metrics` snapshots
//! that redraws when files finish (`Pool::wait_for_change`), never on a timer.
//!
//! ```sh
//! cargo run -p workforce --example hash_files                       # this workspace's crates/
//! cargo run -p workforce --example hash_files -- ~/src --workers 8  # any directory
//! cargo run -p workforce --example hash_files -- DIR --no-progress > sums.b3
//! b3sum --check sums.b3                                             # the output is b3sum's
//! ```
//!
//! What it shows:
//!
//! - **A producer that walks while the workers hash.** One thread lists the
//!   tree and submits each file's path; hashing starts with the first path, and
//!   `capacity` keeps the paths in flight bounded however large the tree is.
//!   The walk only lists: every file is opened by a worker, so every unreadable
//!   file is reported in one place. `batch_size(1)`: a file costs microseconds
//!   to milliseconds, so the pool's per-item cost does not matter, while a
//!   batch goes to one worker as a unit, and 64 paths in one batch could leave
//!   the other workers idle behind one large file.
//! - **Per-worker state instead of a `Collector`.** Each worker appends its
//!   digests to a `Vec` of its own (no lock per file), and the pool hands the
//!   workers back when it ends (`keep_workers`, then `join_with_workers`: no
//!   `Arc<Mutex<_>>`, no channel). The output is sorted by path, so nothing
//!   can be printed before the last file is hashed and a stream of results
//!   to a consumer thread would buy nothing; a `Collector` fits when results
//!   are used as they come.
//! - **Errors counted, not fatal.** A file that cannot be read (permission
//!   denied, deleted since it was listed, a dangling symlink, replaced by a
//!   directory) fails its item: the worker reports it on stderr at once and
//!   returns the error, so the pool counts it (`report.failed()`) under
//!   `continue_on_error`. A directory below the root that cannot be listed is
//!   reported and counted by the walk.
//! - **A progress bar from snapshots.** `pool.metrics()` gives files submitted
//!   and finished and a custom `bytes` counter the workers add to (each
//!   through a `Counter` handle its maker resolved); taking a snapshot never
//!   blocks a worker. `pool.wait_for_change` sleeps until a file is finished
//!   (or the walk closes the pool), so the bar neither polls nor lags. The
//!   walker counts the entries it skips in a custom counter of its own
//!   (`pool.metrics_handle()`), which ends up in the report beside the
//!   workers' counters. The bar is drawn on stderr, and hidden when stderr is
//!   not a terminal or with `--no-progress`.
//!
//! Output: one line per file on stdout, exactly as `b3sum` prints it
//! (`<64 hex digits>  <path>`, where a path holding `\` or a newline is
//! escaped and the line starts with `\`), sorted by path, then one summary
//! line on stderr: `hash_files: files=<hashed> errors=<count> bytes=<total>`.
//!
//! Exit status: 0 when the walk finished, also if some files could not be
//! read; 1 (with the error) when the root itself cannot be listed. `b3sum`
//! exits 1 on any unreadable file; here a partly readable tree is a result,
//! not a failure: the sums that were computed are all printed, and the
//! summary says how many files are missing. For `b3sum`'s behaviour, end
//! `main` with `anyhow::ensure!(errors == 0, ...)`.
//!
//! Symbolic links are hashed as the file they point to (as `b3sum` does with
//! a link given on its command line); links to directories are not followed,
//! so a link cannot lead the walk in a circle. Other special files (FIFOs,
//! sockets, devices) are skipped, like `find -type f` does: opening a FIFO
//! would block.

use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use workforce::MetricsHandle;

use anyhow::Context as _;
use indicatif::{HumanBytes, ProgressBar, ProgressStyle};
use workforce::Counter;
use workforce::prelude::*;

const USAGE: &str = "usage: hash_files [DIR] [--workers N] [--no-progress]";

/// The command line.
struct Options {
    root: PathBuf,
    workers: usize,
    progress: bool,
}

fn parse_args() -> anyhow::Result<Options> {
    // The workspace's `crates/` directory, fixed when the example is compiled.
    let default_root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("the workforce crate lives in the workspace's crates/ directory")?
        .to_path_buf();
    let mut options = Options {
        root: default_root,
        workers: std::thread::available_parallelism().map_or(2, usize::from),
        progress: true,
    };
    let mut root_given = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--no-progress" => options.progress = false,
            "--workers" => {
                let value = args.next().context("--workers needs a number")?;
                options.workers = value
                    .parse()
                    .with_context(|| format!("--workers {value:?} is not a number"))?;
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            flag if flag.starts_with("--") => anyhow::bail!("unknown flag {flag}\n{USAGE}"),
            path if !root_given => {
                options.root = PathBuf::from(path);
                root_given = true;
            }
            extra => anyhow::bail!("only one directory, got {extra:?} too\n{USAGE}"),
        }
    }
    Ok(options)
}

/// One file's hash.
struct Digest {
    path: PathBuf,
    hash: blake3::Hash,
}

/// A worker: hashes the files it gets and keeps the digests to itself until
/// the end of the run, when the pool hands it back.
struct FileHasher {
    digests: Vec<Digest>,
    /// The pool's `bytes` counter, on this worker's metrics shard.
    bytes: Counter,
    /// To print an error without tearing the bar (a no-op bar when hidden).
    bar: ProgressBar,
}

impl Worker<PathBuf> for FileHasher {
    type Error = anyhow::Error;

    fn work(&mut self, _ctx: &Ctx, path: PathBuf) -> anyhow::Result<()> {
        match hash_file(&path) {
            Ok((hash, bytes)) => {
                self.bytes.add(bytes);
                self.digests.push(Digest { path, hash });
                Ok(())
            }
            Err(error) => {
                // Reported now, where a user watching the bar sees it, and
                // returned so that the pool counts the file as failed.
                let error = anyhow::Error::new(error).context(path.display().to_string());
                self.bar.suspend(|| eprintln!("hash_files: {error:#}"));
                Err(error)
            }
        }
    }
}

/// The BLAKE3 hash of the file at `path` and its length in bytes.
fn hash_file(path: &Path) -> std::io::Result<(blake3::Hash, u64)> {
    let mut hasher = blake3::Hasher::new();
    hasher.update_reader(File::open(path)?)?;
    Ok((hasher.finalize(), hasher.count()))
}

/// Lists the tree under `root` and submits every file to the pool; counts
/// the entries below the root that could not be listed (`walk errors`) and
/// the special files it skips (`skipped`) in the pool's metrics. Failing to
/// list the root itself is the one error that ends the run.
fn walk(
    root: &Path,
    mut submitter: Submitter<'_, PathBuf>,
    metrics: &MetricsHandle,
    bar: &ProgressBar,
) -> anyhow::Result<()> {
    let report = |path: &Path, error: std::io::Error| {
        bar.suspend(|| eprintln!("hash_files: {}: {error}", path.display()));
        metrics.inc("walk errors");
    };
    let mut pending = vec![root.to_path_buf()];
    // Directories wait here as paths, not as open listings: a wide tree would
    // otherwise hold a file descriptor per directory waiting its turn.
    while let Some(dir) = pending.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(error) if dir == root => {
                return Err(error)
                    .with_context(|| format!("cannot list the directory {}", root.display()));
            }
            Err(error) => {
                report(&dir, error);
                continue;
            }
        };
        for entry in entries {
            let entry = match entry {
                Ok(entry) => entry,
                Err(error) => {
                    report(&dir, error);
                    continue;
                }
            };
            let path = entry.path();
            let file_type = match entry.file_type() {
                Ok(file_type) => file_type,
                Err(error) => {
                    report(&path, error);
                    continue;
                }
            };
            let wanted = if file_type.is_dir() {
                pending.push(path);
                continue;
            } else if file_type.is_symlink() {
                // Follows the link: a file is hashed, a directory is not
                // entered; a dangling link goes to a worker, whose open
                // reports it like any other file that is not there.
                match std::fs::metadata(&path) {
                    Ok(target) => target.is_file(),
                    Err(_) => true,
                }
            } else {
                file_type.is_file()
            };
            if wanted {
                submitter
                    .submit(path)
                    .map_err(|error| anyhow::anyhow!("the pool refused a path: {error}"))?;
            } else {
                metrics.inc("skipped");
            }
        }
    }
    Ok(())
}

/// A path as `b3sum` prints it: a `\` or a newline in it is escaped, and the
/// caller marks the line with a leading `\` when that happened.
fn b3sum_path(path: &Path) -> (String, bool) {
    let text = path.to_string_lossy();
    if text.contains(['\\', '\n']) {
        (text.replace('\\', "\\\\").replace('\n', "\\n"), true)
    } else {
        (text.into_owned(), false)
    }
}

fn main() -> anyhow::Result<()> {
    let options = parse_args()?;

    let bar = if options.progress {
        ProgressBar::new(0) // drawn on stderr; hidden when it is not a terminal
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("{bar:24} {pos}/{len} files, {msg}")?.progress_chars("=> "),
    );

    let maker_bar = bar.clone();
    let pool = Pool::builder()
        .workers(options.workers)
        .batch_size(1)
        .continue_on_error()
        .keep_workers()
        .build_stateful(move |ctx: &Ctx| FileHasher {
            digests: Vec::new(),
            bytes: ctx.metrics().counter("bytes"),
            bar: maker_bar.clone(),
        })?;

    std::thread::scope(|scope| -> anyhow::Result<()> {
        let pool = &pool;
        let walker = scope.spawn(|| {
            let walked = walk(
                &options.root,
                pool.submitter(),
                &pool.metrics_handle(),
                &bar,
            );
            // Every path is submitted (the submitter is gone): closing now
            // tells the bar's loop that the listing is over.
            pool.close();
            walked
        });
        // Only a visible bar needs the snapshots; otherwise just wait for the walk.
        let mut snapshot = pool.metrics();
        while !bar.is_hidden() {
            let walking = !snapshot.closed;
            bar.set_length(snapshot.submitted);
            bar.set_position(snapshot.finished());
            bar.set_message(format!(
                "{}, {} errors{}",
                HumanBytes(snapshot.stats.counters.get("bytes")),
                snapshot.error_total + snapshot.stats.counters.get("walk errors"),
                if walking { ", listing" } else { "" },
            ));
            if !walking && snapshot.finished() >= snapshot.submitted {
                break;
            }
            // Wakes when a file is finished or the walk closes the pool; the
            // timeout only refreshes the count of listed files during a long
            // file.
            snapshot = pool
                .wait_for_change(&snapshot, Duration::from_millis(250))
                .unwrap_or_else(|| pool.metrics());
        }
        walker
            .join()
            .map_err(|_| anyhow::anyhow!("the walk panicked"))?
    })?;
    let (report, hashers) = pool.join_with_workers();
    bar.finish_and_clear();
    anyhow::ensure!(report.is_balanced(), "the pool lost files: {report}");

    let mut digests: Vec<Digest> = hashers
        .into_iter()
        .flat_map(|hasher| hasher.digests)
        .collect();
    digests.sort_unstable_by(|a, b| a.path.cmp(&b.path));
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for digest in &digests {
        let (path, escaped) = b3sum_path(&digest.path);
        let marker = if escaped { "\\" } else { "" };
        writeln!(out, "{marker}{}  {path}", digest.hash.to_hex())?;
    }
    out.flush()?;

    let errors = report.stats().counters.get("walk errors") + report.failed();
    eprintln!(
        "hash_files: files={} errors={errors} bytes={}",
        digests.len(),
        report.stats().counters.get("bytes"),
    );
    Ok(())
}
