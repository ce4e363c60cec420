//! Ingests rows into SQLite through a pool: a connection per worker, one
//! transaction per batch, and every user's rows written by one worker, in
//! order. At the end a fresh connection checks what landed in the file.
//!
//! The rows are events `(user_id, seq, amount_cents)`: `--rows` of them spread
//! over `--users` users, `seq` counting each user's events from 0. They go
//! into one database file, `events.db`, in a new directory under the system's
//! temporary directory, which is removed at the end.
//!
//! # What it shows
//!
//! - **Stateful batch workers whose set-up can fail**
//!   (`Builder::try_build_batch_stateful`). Each worker thread opens its own
//!   `rusqlite::Connection` (WAL mode, a busy timeout) in its maker and
//!   keeps it, with its cache of prepared statements, for the whole run. The
//!   build waits for every maker: if a connection cannot be opened, it fails
//!   with `BuildError::Maker`, naming the worker, before any row is
//!   submitted, and leaves no thread behind. The maker also resolves the
//!   worker's counter handles once (`ctx.metrics().counter(..)`). A batch worker gets the pool's batches
//!   whole (`&mut Vec<Event>`, `--batch` rows), which is exactly the unit to
//!   commit: one `BEGIN IMMEDIATE ... COMMIT` per batch, instead of a
//!   transaction (and a journal write) per row. A per-item worker
//!   (`build_stateful`) would have to buffer rows itself, decide when to
//!   commit, and flush the rest in `Worker::finish`; here each batch is
//!   committed when it is handed over, so nothing is left to flush.
//! - **Key affinity** (`Builder::chunk_by` on `user_id`): every event of a
//!   user goes to the same worker, in the order it was submitted, and is never
//!   stolen by another. So a worker can check each user's `seq` order in a
//!   plain `HashMap` of its own (no lock), and the rows of a user reach the
//!   table in order.
//! - **Custom counters**: `transactions`, `rows_inserted`, and
//!   `write_lock_wait_us`, the time the workers spent waiting for SQLite's
//!   write lock, each a `Counter` handle resolved when the worker is made.
//!
//! A transaction can hold fewer than `--batch` rows, so `transactions` is
//! often above `rows / batch`: a keyed submitter fills one batch per worker,
//! and when it has to wait for room (the producer is faster than SQLite) it
//! first pushes the batches it is filling, full or not, so that no worker
//! idles while the producer waits. With one worker the batches stay whole.
//!
//! # SQLite has one writer at a time
//!
//! WAL mode lets readers run beside a writer, but a database still takes one
//! write transaction at a time. The workers' transactions take turns:
//! `BEGIN IMMEDIATE` waits for the write lock (the busy timeout bounds the
//! wait) and `write_lock_wait_us` adds the waits up. So more workers do not
//! make the inserts faster, and for pure inserts one worker is often the
//! fastest: try `--workers 1` against the default and compare the throughput
//! and the lock wait. Workers pay off for the work done outside the
//! transaction: here only the order check, in a real ingester the parsing,
//! validation and enrichment of each row. The shape is what the example
//! demonstrates, and it stays the same for a database that takes parallel
//! writers: per-connection state, batching in transactions, per-key order.
//!
//! # Run it
//!
//! ```sh
//! cargo run -p workforce --example sqlite_ingest                 # 100,000 rows, 1,000 users
//! cargo run --release -p workforce --example sqlite_ingest -- --rows 2000000 --workers 4 --batch 1000 --users 10000
//! ```
//!
//! It prints the pool's stats table, the throughput, one line per check made
//! on the file with a fresh connection (the row count, each user's count and
//! sum, each user's order, one worker per user), and a line for scripts:
//!
//! ```text
//! throughput   214692 rows/s (100000 rows in 0.47 s; 2 workers, batches of 500, 323 transactions, 326.5 ms waiting for the write lock)
//! check        rows: 100000 in the table, 100000 submitted: ok
//! check        per-user count and sum: 0 of 1000 users differ, 0 unknown users: ok
//! check        per-user order: 0 rows out of order: ok
//! check        one worker per user: 0 users written by several: ok
//! rows=100000 users=1000 verified=true
//! ```

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use rusqlite::{Connection, OpenFlags, TransactionBehavior, params};
use workforce::Counter;
use workforce::prelude::*;

const USAGE: &str = "usage: sqlite_ingest [--rows N] [--workers N] [--batch N] [--users N]";

/// How long a connection waits for the write lock before it gives up with
/// `SQLITE_BUSY`. Generous: the workers only ever wait for each other's commits.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// The command line: `--rows N --workers N --batch N --users N`.
struct Settings {
    n_rows: u64,
    n_workers: usize,
    batch_size: usize,
    n_users: u32,
}

impl Settings {
    fn from_args() -> anyhow::Result<Settings> {
        let mut settings = Settings {
            n_rows: 100_000,
            n_workers: 2,
            batch_size: 500,
            n_users: 1_000,
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
                "--rows" => settings.n_rows = value.parse().with_context(invalid)?,
                "--workers" => settings.n_workers = value.parse().with_context(invalid)?,
                "--batch" => settings.batch_size = value.parse().with_context(invalid)?,
                "--users" => settings.n_users = value.parse().with_context(invalid)?,
                _ => anyhow::bail!("unknown flag {flag:?}; {USAGE}"),
            }
        }
        anyhow::ensure!(settings.n_users > 0, "--users must be at least 1");
        Ok(settings)
    }
}

/// One row to ingest.
#[derive(Debug)]
struct Event {
    user_id: u32,
    /// The user's events count from 0, in submission order.
    seq: u32,
    amount_cents: i64,
}

/// What the producer submitted for one user, to check the table against.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct UserTotals {
    rows: u64,
    amount_cents: i64,
}

impl UserTotals {
    fn record(&mut self, event: &Event) {
        self.rows += 1;
        self.amount_cents += event.amount_cents;
    }
}

/// Event number `row`: it belongs to a user picked by a multiplicative hash
/// of `row` (spread evenly, not round robin), takes that user's next `seq`,
/// and has an amount of 1 to 997 cents.
fn event(row: u64, next_seq: &mut [u32]) -> Event {
    let n_users = next_seq.len() as u64;
    let user_id = ((row.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) % n_users) as u32;
    let seq = &mut next_seq[user_id as usize];
    let event = Event {
        user_id,
        seq: *seq,
        amount_cents: (row % 997) as i64 + 1,
    };
    *seq += 1;
    event
}

/// A directory of our own under the system's temporary directory, removed
/// (with the database and its `-wal` and `-shm` files) on drop.
struct ScratchDir {
    path: PathBuf,
}

impl ScratchDir {
    fn create(prefix: &str) -> anyhow::Result<ScratchDir> {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_nanos());
        let path = std::env::temp_dir().join(format!("{prefix}-{}-{nanos}", std::process::id()));
        // `create_dir`, not `create_dir_all`: it fails if the name is taken,
        // so the directory is surely ours to remove.
        std::fs::create_dir(&path)
            .with_context(|| format!("could not create {}", path.display()))?;
        Ok(ScratchDir { path })
    }

    fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        if let Err(error) = std::fs::remove_dir_all(&self.path) {
            eprintln!("could not remove {}: {error}", self.path.display());
        }
    }
}

/// Creates the table and switches the file to WAL mode (which sticks to the
/// file, so every later connection uses it too).
fn create_schema(db_path: &Path) -> anyhow::Result<()> {
    let connection = Connection::open(db_path)
        .with_context(|| format!("could not create {}", db_path.display()))?;
    let journal_mode: String =
        connection.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
    anyhow::ensure!(
        journal_mode.eq_ignore_ascii_case("wal"),
        "SQLite refused WAL mode (journal_mode is {journal_mode})"
    );
    // `id` is the rowid: it grows with every insert, so it records the order
    // rows reached the table in.
    connection.execute_batch(
        "CREATE TABLE events (
             id           INTEGER PRIMARY KEY,
             user_id      INTEGER NOT NULL,
             seq          INTEGER NOT NULL,
             amount_cents INTEGER NOT NULL,
             worker       INTEGER NOT NULL
         );",
    )?;
    Ok(())
}

/// A worker's own connection, set up for concurrent writers.
fn open_writer(db_path: &Path) -> rusqlite::Result<Connection> {
    let connection = Connection::open_with_flags(db_path, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
    connection.busy_timeout(BUSY_TIMEOUT)?;
    // With WAL, NORMAL syncs at checkpoints, not at every commit: safe
    // against a crash of this process, which is what an ingest needs.
    connection.pragma_update(None, "synchronous", "NORMAL")?;
    Ok(connection)
}

/// One pool worker: its connection, its counters, and the last `seq` of
/// each of its users.
struct Ingester {
    worker: WorkerId,
    /// Opened by the maker, on the worker's thread: if it cannot be, the
    /// build fails.
    connection: Connection,
    /// Only this worker sees these users (key affinity), so no lock.
    last_seq: HashMap<u32, u32>,
    transactions: Counter,
    rows_inserted: Counter,
    write_lock_wait_us: Counter,
}

impl Ingester {
    /// The maker: opens the worker's connection and resolves its counters.
    fn new(db_path: &Path, ctx: &Ctx) -> anyhow::Result<Ingester> {
        let connection = open_writer(db_path)
            .with_context(|| format!("could not open {}", db_path.display()))?;
        let metrics = ctx.metrics();
        Ok(Ingester {
            worker: ctx.worker_id(),
            connection,
            last_seq: HashMap::new(),
            transactions: metrics.counter("transactions"),
            rows_inserted: metrics.counter("rows_inserted"),
            write_lock_wait_us: metrics.counter("write_lock_wait_us"),
        })
    }
}

impl BatchWorker<Event> for Ingester {
    type Error = anyhow::Error;

    fn work_batch(&mut self, _ctx: &Ctx, batch: &mut Vec<Event>) -> anyhow::Result<()> {
        // The work outside the transaction: each user's events must come in
        // the order they were submitted.
        for event in batch.iter() {
            let previous = self.last_seq.insert(event.user_id, event.seq);
            anyhow::ensure!(
                previous.is_none_or(|previous| previous < event.seq),
                "user {}: event {} after event {previous:?}",
                event.user_id,
                event.seq
            );
        }

        // IMMEDIATE takes the write lock at BEGIN, where the busy timeout
        // applies, rather than at the first insert.
        let waiting_since = Instant::now();
        let transaction = self
            .connection
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let waited = waiting_since.elapsed();
        {
            let mut insert = transaction.prepare_cached(
                "INSERT INTO events (user_id, seq, amount_cents, worker) VALUES (?1, ?2, ?3, ?4)",
            )?;
            for event in batch.iter() {
                insert.execute(params![
                    event.user_id,
                    event.seq,
                    event.amount_cents,
                    self.worker.index()
                ])?;
            }
        }
        transaction.commit()?;

        self.transactions.inc();
        self.rows_inserted.add(batch.len() as u64);
        self.write_lock_wait_us
            .add(u64::try_from(waited.as_micros()).unwrap_or(u64::MAX));
        Ok(())
    }
}

/// Checks the table with a fresh connection; prints one line per check and
/// returns whether all passed.
fn verify(db_path: &Path, n_rows: u64, totals: &[UserTotals]) -> anyhow::Result<bool> {
    let connection = Connection::open_with_flags(db_path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .with_context(|| format!("could not reopen {}", db_path.display()))?;
    let mut all_passed = true;
    let mut check = |passed: bool, line: String| {
        println!(
            "check        {line}: {}",
            if passed { "ok" } else { "WRONG" }
        );
        all_passed &= passed;
    };

    let in_table: u64 =
        connection.query_row("SELECT COUNT(*) FROM events", [], |row| row.get(0))?;
    check(
        in_table == n_rows,
        format!("rows: {in_table} in the table, {n_rows} submitted"),
    );

    let mut found = vec![UserTotals::default(); totals.len()];
    let mut statement = connection
        .prepare("SELECT user_id, COUNT(*), SUM(amount_cents) FROM events GROUP BY user_id")?;
    let mut rows = statement.query([])?;
    let mut unknown_users = 0u64;
    while let Some(row) = rows.next()? {
        let user_id: usize = row.get(0)?;
        match found.get_mut(user_id) {
            Some(user) => {
                user.rows = row.get(1)?;
                user.amount_cents = row.get(2)?;
            }
            None => unknown_users += 1,
        }
    }
    let wrong_users = found
        .iter()
        .zip(totals)
        .filter(|(found, expected)| found != expected)
        .count();
    check(
        wrong_users == 0 && unknown_users == 0,
        format!(
            "per-user count and sum: {wrong_users} of {} users differ, {unknown_users} unknown users",
            totals.len()
        ),
    );

    // Each user's rows must have reached the table (rowid order) in `seq` order.
    let out_of_order: u64 = connection.query_row(
        "SELECT COUNT(*) FROM (
             SELECT seq, LAG(seq) OVER (PARTITION BY user_id ORDER BY id) AS previous
             FROM events
         ) WHERE seq <= previous",
        [],
        |row| row.get(0),
    )?;
    check(
        out_of_order == 0,
        format!("per-user order: {out_of_order} rows out of order"),
    );

    let split_users: u64 = connection.query_row(
        "SELECT COUNT(*) FROM (
             SELECT user_id FROM events GROUP BY user_id HAVING COUNT(DISTINCT worker) > 1
         )",
        [],
        |row| row.get(0),
    )?;
    check(
        split_users == 0,
        format!("one worker per user: {split_users} users written by several"),
    );
    Ok(all_passed)
}

fn main() -> anyhow::Result<()> {
    let settings = Settings::from_args()?;
    let scratch = ScratchDir::create("workforce-sqlite-ingest")?;
    let db_path = scratch.path().join("events.db");
    create_schema(&db_path)?;
    println!("database     {}", db_path.display());

    let maker_path = db_path.clone();
    let pool = Pool::builder()
        .workers(settings.n_workers)
        .batch_size(settings.batch_size)
        .chunk_by(|event: &Event| event.user_id)
        .try_build_batch_stateful(move |ctx: &Ctx| Ingester::new(&maker_path, ctx))?;

    // What was submitted, per user, to check the table against.
    let mut totals = vec![UserTotals::default(); settings.n_users as usize];
    let mut next_seq = vec![0u32; settings.n_users as usize];
    let started = Instant::now();
    let mut submitter = pool.submitter();
    for row in 0..settings.n_rows {
        let event = event(row, &mut next_seq);
        totals[event.user_id as usize].record(&event);
        if let Err(refused) = submitter.submit(event) {
            // Only a cancelled pool refuses an item here: a worker failed and
            // stopped the run (the default policy). `wait` says why.
            eprintln!("stopped submitting: {refused}");
            break;
        }
    }
    drop(submitter);
    let report = pool.wait()?;
    let elapsed = started.elapsed();

    let stats = report.stats();
    println!("{stats}");
    println!();
    let rows_per_sec = report.processed() as f64 / elapsed.as_secs_f64().max(f64::EPSILON);
    println!(
        "throughput   {rows_per_sec:.0} rows/s ({} rows in {:.2} s; {} workers, batches of {}, \
         {} transactions, {:.1} ms waiting for the write lock)",
        report.processed(),
        elapsed.as_secs_f64(),
        settings.n_workers,
        settings.batch_size,
        stats.counters.get("transactions"),
        stats.counters.get("write_lock_wait_us") as f64 / 1_000.0,
    );

    let verified = verify(&db_path, settings.n_rows, &totals)?;
    println!(
        "rows={} users={} verified={verified}",
        report.processed(),
        settings.n_users
    );
    anyhow::ensure!(verified, "the table does not hold what was submitted");
    Ok(())
}
