//! Randomised fault injection: random pools run random scripts, and every run
//! must keep the pool's accounting exact.
//!
//! **Pools**: 1-8 workers, batch 1-128, capacity batch-1024, keyed or not,
//! per-item or batch workers, shared or stateful, stop or continue on error,
//! a random error limit, `resume_panics` on or off, each metrics mode, and the
//! pool's token either its own or a child of a parent token.
//!
//! **Scripts**: producers with a `Submitter` call submit / try_submit /
//! submit_timeout / send / try_send / send_timeout, flush and replace their
//! submitter; producer threads with only a `Sender` send concurrently; workers
//! add derived items to their own pool with `try_send`, a blocking `send`
//! (which never waits for room on one of the pool's own workers) or
//! `Ctx::spawn` (which goes over the capacity and is taken after a close);
//! a producer closes the pool, a producer or a worker cancels it (directly
//! or through the parent token). Workers fail, panic, are slow (a bounded spin
//! or `yield_now` loop that stops early on cancel), and a maker may panic. The
//! run ends with `finish`, `wait`, or a drop of the pool without `wait`, while
//! the `Sender` threads may still be sending.
//!
//! **After every run**:
//! - the report balances (`submitted == processed + failed + dropped`), and
//!   each count matches what the workers saw: `processed` and `failed` are the
//!   items the workers ended with `Ok` and with an error or a panic, `dropped`
//!   the accepted items no worker saw, `error_total` the failed calls and maker
//!   panics; the report is the same from `on_pool_done` (the only report a
//!   dropped pool gives), from `finish` and from `wait`, whose `Result` has the
//!   documented shape; the pool was cancelled exactly when something cancelled
//!   it, and dropped items only then;
//! - every refused item came back to its caller, as the item offered, with a
//!   reason that was true at the time (`Closed` only after a close, `Cancelled`
//!   only after a cancel);
//! - every item value, derived ones included, was dropped exactly once (a
//!   ledger slot per value, not one total);
//! - every worker thread ran its `on_worker_done` and was joined: no thread
//!   named like this test's workers is alive (see `common/threads.rs`);
//! - keyed pools kept each key on one worker; stateful workers saw their own id;
//! - with `resume_panics`, `finish`/`wait` re-raised a deliberate panic exactly
//!   when one happened.
//!
//! The seed of a failing script is printed; replay one with
//! `WORKFORCE_SEED=<seed> cargo test -p pool-core --test random_scripts_keep_the_invariant`.
//! `WORKFORCE_SCRIPTS=<n>` runs `n` scripts (seeds `0..n`, or `seed..seed + n`
//! with `WORKFORCE_SEED` too); the default is [`DEFAULT_SCRIPTS`].
//!
//! The thread check counts threads by name, with a prefix only this binary
//! uses, rather than all threads of the process: libtest runs the tests of a
//! binary on parallel threads, so a total would see theirs.
#![allow(clippy::unwrap_used)] // Tests may unwrap: a panic is a test failure.

mod common;
#[path = "common/threads.rs"]
mod threads;

use std::ops::Range;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use pool_core::{
    CancelToken, Ctx, MetricsMode, Pool, PoolError, Report, RunError, Sender, SpawnError,
    TrySendError, TrySubmitError, WorkerId,
};

/// Scripts run by default. `cargo test --workspace` runs this binary in a
/// debug build, where these took 12-22 s on two shared cores (the run is
/// mostly thread starts and waits, so a release build is not much faster:
/// 20,000 scripts took 60-130 s); `cargo xtask stress --scripts N` runs more.
const DEFAULT_SCRIPTS: u64 = 2_000;

/// The name prefix of this binary's pool workers (`rs-worker-{index}`).
const WORKER_PREFIX: &str = "rs-worker-";

// --- Randomness -------------------------------------------------------------

/// A small deterministic generator (xorshift64*), so a seed replays a script.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// A number in `0..n` (`n` > 0).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    /// True once in `n` times.
    fn one_in(&mut self, n: u64) -> bool {
        self.below(n) == 0
    }
    /// `0` (never) once in `never_one_in` times, else a number from `min` to
    /// `min + 4095`, log-uniformly: dense faults come as often as sparse ones.
    fn rate(&mut self, never_one_in: u64, min: u64) -> u64 {
        if self.one_in(never_one_in) {
            0
        } else {
            let span = 1 << (1 + self.below(12));
            min + self.below(span)
        }
    }
}

/// A well-mixed hash of `value` (splitmix64's finaliser), so an item's fate
/// depends on its value and the script, not on which thread handles it.
fn mix(value: u64) -> u64 {
    let mut z = value.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1330_11eb);
    z ^ (z >> 31)
}

/// Whether a fault that happens once in `one_in` items (0: never) hits `roll`.
fn hits(roll: u64, one_in: u64) -> bool {
    one_in != 0 && roll.is_multiple_of(one_in)
}

// --- The script ---------------------------------------------------------------

/// How the pool's workers are built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `build`: one shared per-item function.
    Shared,
    /// `build_stateful`: a per-item worker made on each thread.
    Stateful,
    /// `build_batch`: one shared batch function.
    Batch,
    /// `build_batch_stateful`: a batch worker made on each thread.
    StatefulBatch,
}

impl Kind {
    fn has_maker(self) -> bool {
        matches!(self, Kind::Stateful | Kind::StatefulBatch)
    }
}

/// How the run ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    Finish,
    Wait,
    /// The pool is dropped without `wait`: only `on_pool_done` sees the report.
    DropWithoutWait,
}

/// The ways a producer hands in one item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Submit,
    TrySubmit,
    SubmitTimeout,
    Send,
    TrySend,
    SendTimeout,
    /// `Pool::run` over this one item: the pull machinery end to end.
    Run,
}

const SUBMITTER_OPS: [Op; 7] = [
    Op::Submit,
    Op::TrySubmit,
    Op::SubmitTimeout,
    Op::Send,
    Op::TrySend,
    Op::SendTimeout,
    Op::Run,
];
const SENDER_OPS: [Op; 3] = [Op::Send, Op::TrySend, Op::SendTimeout];

/// What the workers do to items, each fault once in so many items (0: never).
#[derive(Debug, Clone)]
struct Faults {
    /// Mixed into every item's roll, so each script picks other victims.
    salt: u64,
    fail_one_in: u64,
    panic_one_in: u64,
    slow_one_in: u64,
    /// How slow a slow item is: spin-loop iterations, or `yield_now` calls.
    slow_steps: u64,
    slow_by_yielding: bool,
    /// A worker sends a derived item back into its pool with `try_send`.
    send_one_in: u64,
    /// A worker cancels the pool through `Ctx::token`.
    cancel_one_in: u64,
    /// The maker of this worker panics (stateful kinds only).
    maker_panics_on: Option<usize>,
}

/// Everything a seed decides.
#[derive(Debug, Clone)]
struct Script {
    seed: u64,
    n_workers: usize,
    batch_size: usize,
    capacity: usize,
    /// `Some(n_keys)`: keyed by `value % n_keys`.
    n_keys: Option<u64>,
    kind: Kind,
    stop_on_error: bool,
    error_limit: Option<usize>,
    resume_panics: bool,
    metrics: MetricsMode,
    /// The pool's token is a child of a parent token, and cancels go to the parent.
    parent_token: bool,
    faults: Faults,
    /// Producers with a `Submitter` (scoped threads).
    n_submitters: u64,
    /// Producers with only a `Sender` (`'static` threads, may outlive the pool).
    n_senders: u64,
    items_per_producer: u64,
    /// The item operations the submitter producers pick from.
    submitter_ops: Vec<Op>,
    /// Submitter producer and step after which it closes the pool.
    close_at: Option<(u64, u64)>,
    /// Producer (any kind) and step after which it cancels the pool.
    cancel_at: Option<(u64, u64)>,
    ending: Ending,
    /// Join the `Sender` threads before ending the run rather than after.
    join_senders_first: bool,
    /// Before any item: wait for every maker, then see every worker thread live.
    see_the_threads: bool,
}

impl Script {
    fn new(seed: u64) -> Script {
        let mut rng = Rng::new(seed);
        let n_workers = 1 + rng.below(8) as usize;
        let batch_size = 1 + rng.below(128) as usize;
        let capacity = if rng.one_in(8) {
            batch_size // as tight as the builder allows
        } else {
            batch_size + rng.below(1025 - batch_size as u64) as usize
        };
        let n_keys = rng.one_in(2).then(|| 1 + rng.below(64));
        let kind = match rng.below(4) {
            0 => Kind::Shared,
            1 => Kind::Stateful,
            2 => Kind::Batch,
            _ => Kind::StatefulBatch,
        };
        let stop_on_error = rng.one_in(2);
        let error_limit = rng.one_in(3).then(|| 1 + rng.below(4) as usize);
        let resume_panics = rng.one_in(3);
        let metrics = match rng.below(3) {
            0 => MetricsMode::Off,
            1 => MetricsMode::Times,
            _ => MetricsMode::Latency,
        };
        let parent_token = rng.one_in(4);
        let faults = Faults {
            salt: rng.next(),
            fail_one_in: rng.rate(3, 2),
            panic_one_in: rng.rate(2, 2),
            slow_one_in: rng.rate(3, 1),
            slow_steps: rng.below(3_000),
            slow_by_yielding: rng.one_in(2),
            send_one_in: rng.rate(3, 1),
            cancel_one_in: if rng.one_in(8) {
                50 + rng.below(2_000)
            } else {
                0
            },
            maker_panics_on: (kind.has_maker() && rng.one_in(25))
                .then(|| rng.below(n_workers as u64) as usize),
        };
        let n_submitters = 1 + rng.below(3);
        let n_senders = rng.below(3);
        let items_per_producer = if rng.one_in(8) {
            rng.below(3_000)
        } else {
            rng.below(400)
        };
        let mut submitter_ops: Vec<Op> = SUBMITTER_OPS
            .into_iter()
            .filter(|_| rng.one_in(2))
            .collect();
        if submitter_ops.is_empty() {
            submitter_ops = SUBMITTER_OPS.to_vec();
        }
        let steps = items_per_producer.max(1);
        let close_at = rng
            .one_in(3)
            .then(|| (rng.below(n_submitters), rng.below(steps * 2)));
        let cancel_at = rng
            .one_in(4)
            .then(|| (rng.below(n_submitters + n_senders), rng.below(steps * 2)));
        let ending = match rng.below(3) {
            0 => Ending::Finish,
            1 => Ending::Wait,
            _ => Ending::DropWithoutWait,
        };
        Script {
            seed,
            n_workers,
            batch_size,
            capacity,
            n_keys,
            kind,
            stop_on_error,
            error_limit,
            resume_panics,
            metrics,
            parent_token,
            faults,
            n_submitters,
            n_senders,
            items_per_producer,
            submitter_ops,
            close_at,
            cancel_at,
            ending,
            join_senders_first: rng.one_in(2),
            see_the_threads: kind.has_maker() && rng.one_in(4),
        }
    }

    /// Items the producers make: one value per producer and step.
    fn n_originals(&self) -> u64 {
        (self.n_submitters + self.n_senders) * self.items_per_producer
    }
}

// --- Items and their ledger ---------------------------------------------------

/// Per item value: how many times it was made and how many times dropped.
/// Values `0..n_originals` are the producers' items; `n_originals + v` is the
/// item a worker derives from item `v`.
struct Ledger {
    made: Vec<AtomicU8>,
    dropped: Vec<AtomicU8>,
}

impl Ledger {
    fn new(n_values: u64) -> Self {
        let slots = || (0..n_values).map(|_| AtomicU8::new(0)).collect();
        Ledger {
            made: slots(),
            dropped: slots(),
        }
    }
}

/// A test item that records its own drop in the ledger.
struct Item {
    value: u64,
    ledger: Arc<Ledger>,
}

impl Item {
    fn new(value: u64, ledger: &Arc<Ledger>) -> Item {
        ledger.made[value as usize].fetch_add(1, SeqCst);
        Item {
            value,
            ledger: Arc::clone(ledger),
        }
    }
}

impl Drop for Item {
    fn drop(&mut self) {
        self.ledger.dropped[self.value as usize].fetch_add(1, SeqCst);
    }
}

// --- What one run observes ----------------------------------------------------

/// The figures of a report, as `on_pool_done`, `finish` or `wait` saw them.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Figures {
    submitted: u64,
    processed: u64,
    failed: u64,
    dropped: u64,
    balanced: bool,
    error_total: u64,
    errors_kept: usize,
    cancelled: bool,
    /// `(processed, errors, dropped)` of the merged metrics.
    stats: (u64, u64, u64),
    n_worker_reports: usize,
}

impl Figures {
    fn of(report: &Report) -> Figures {
        let stats = report.stats();
        Figures {
            submitted: report.submitted(),
            processed: report.processed(),
            failed: report.failed(),
            dropped: report.dropped(),
            balanced: report.is_balanced(),
            error_total: report.error_total(),
            errors_kept: report.errors().len(),
            cancelled: report.was_cancelled(),
            stats: (stats.processed, stats.failed, stats.dropped),
            n_worker_reports: report.workers().len(),
        }
    }
}

/// Counts kept by the test's own code (producers, workers, callbacks).
#[derive(Default)]
struct Tally {
    /// Items handed to a worker function.
    seen: AtomicU64,
    /// Items whose call returned `Ok`.
    ok_items: AtomicU64,
    /// Items whose call returned an error or panicked.
    failed_items: AtomicU64,
    /// Calls that returned an error or panicked.
    failed_calls: AtomicU64,
    /// Deliberate panics in worker calls.
    panics: AtomicU64,
    makers: AtomicU64,
    maker_panics: AtomicU64,
    /// Items offered to the pool (by producers and by workers) and refused.
    refused: AtomicU64,
    derived_sent: AtomicU64,
    derived_refused: AtomicU64,
    /// Cancels by workers, through `Ctx::token`.
    worker_cancels: AtomicU64,
    workers_done: AtomicU64,
    /// Counts the `on_worker_done` callbacks were given, summed.
    done_processed: AtomicU64,
    done_failed: AtomicU64,
    done_dropped: AtomicU64,
}

/// The state one run shares between the test, its producers and its workers.
struct Run {
    script: Script,
    ledger: Arc<Ledger>,
    tally: Tally,
    /// The pool's own sender, for workers; set before the first item.
    sender: OnceLock<Sender<Item>>,
    /// Set before anything closes the pool (`close`, the ending).
    close_requested: AtomicBool,
    /// Set before a producer or a worker cancels the pool.
    cancel_requested: AtomicBool,
    /// Cancels by producers that have returned. A `Sender` thread may cancel
    /// after the pool has ended, too late to show in the report.
    producer_cancels: AtomicU64,
    /// `on_pool_done` reports, in call order.
    pool_done: Mutex<Vec<Figures>>,
    /// For each key of a keyed pool, the first worker that got it.
    key_owner: Vec<AtomicUsize>,
    /// Checks that failed on threads where a panic would not reach the test
    /// (inside workers, where the pool catches it).
    anomalies: Mutex<Vec<String>>,
}

/// How a worker call ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Ok,
    Fail,
    Panic,
}

impl Run {
    fn new(script: Script) -> Run {
        let n_originals = script.n_originals();
        let n_keys = script.n_keys.unwrap_or(0);
        Run {
            ledger: Arc::new(Ledger::new(2 * n_originals)),
            tally: Tally::default(),
            sender: OnceLock::new(),
            close_requested: AtomicBool::new(false),
            cancel_requested: AtomicBool::new(false),
            producer_cancels: AtomicU64::new(0),
            pool_done: Mutex::new(Vec::new()),
            key_owner: (0..n_keys).map(|_| AtomicUsize::new(usize::MAX)).collect(),
            anomalies: Mutex::new(Vec::new()),
            script,
        }
    }

    fn anomaly(&self, text: String) {
        self.anomalies.lock().unwrap().push(text);
    }

    /// Whether something has cancelled the pool by now, or is about to: an
    /// explicit cancel, a maker panic, or an error under stop-on-error. Each is
    /// counted before the pool learns of it.
    fn cancel_is_explained(&self) -> bool {
        self.cancel_requested.load(SeqCst)
            || self.tally.maker_panics.load(SeqCst) > 0
            || (self.script.stop_on_error && self.tally.failed_calls.load(SeqCst) > 0)
    }

    /// Checks a refused item: it is the one offered, and the refusal's reason
    /// holds. The item is dropped here, which the ledger counts.
    fn refused(&self, who: &str, offered: u64, error: TrySubmitError<Item>) {
        self.tally.refused.fetch_add(1, SeqCst);
        let reason = match &error {
            TrySubmitError::Full(_) => "Full",
            TrySubmitError::Closed(_) => "Closed",
            TrySubmitError::Cancelled(_) => "Cancelled",
        };
        let explained = match &error {
            TrySubmitError::Full(_) => true,
            // Cancelling closes the pool too, but then the reason is `Cancelled`.
            TrySubmitError::Closed(_) => self.close_requested.load(SeqCst),
            TrySubmitError::Cancelled(_) => self.cancel_is_explained(),
        };
        if !explained {
            self.anomaly(format!("{who}: item {offered} refused as {reason} unasked"));
        }
        let item = error.into_inner();
        if item.value != offered {
            self.anomaly(format!(
                "{who}: offered item {offered}, got item {} back",
                item.value
            ));
        }
    }

    /// The faults of one item, in a worker: maybe slow, maybe a derived item
    /// sent back into the pool, maybe a cancel; then how the call ends.
    fn work_on(&self, ctx: &Ctx, item: &Item, maker_id: Option<WorkerId>) -> Fate {
        let faults = &self.script.faults;
        let roll = mix(item.value ^ faults.salt);
        if let Some(id) = maker_id
            && id != ctx.worker_id()
        {
            self.anomaly(format!("worker made for {id} runs as {}", ctx.worker_id()));
        }
        if let Some(n_keys) = self.script.n_keys {
            let key = (item.value % n_keys) as usize;
            let me = ctx.worker_id().index();
            if let Err(owner) = self.key_owner[key].compare_exchange(usize::MAX, me, SeqCst, SeqCst)
                && owner != me
            {
                self.anomaly(format!("key {key} went to workers {owner} and {me}"));
            }
        }
        if hits(roll, faults.slow_one_in) {
            for step in 0..faults.slow_steps {
                // Slow work polls for cancellation, as the docs ask.
                if step % 64 == 0 && ctx.is_cancelled() {
                    break;
                }
                if faults.slow_by_yielding {
                    if step % 100 == 0 {
                        std::thread::yield_now();
                    }
                } else {
                    std::hint::spin_loop();
                }
            }
        }
        let n_originals = self.script.n_originals();
        if item.value < n_originals && hits(roll >> 8, faults.send_one_in) {
            self.send_derived(ctx, item.value, n_originals + item.value, roll >> 48);
        }
        if hits(roll >> 16, faults.cancel_one_in) {
            self.cancel_requested.store(true, SeqCst);
            ctx.token().cancel();
            self.tally.worker_cancels.fetch_add(1, SeqCst);
        }
        if hits(roll >> 24, faults.panic_one_in) {
            Fate::Panic
        } else if hits(roll >> 40, faults.fail_one_in) {
            Fate::Fail
        } else {
            Fate::Ok
        }
    }

    /// A worker adds item `derived` to its own pool: by `try_send`, by a
    /// blocking `send` (a worker never waits for room in its own pool) or by
    /// `Ctx::spawn`, as `how` picks.
    fn send_derived(&self, ctx: &Ctx, from: u64, derived: u64, how: u64) {
        let Some(sender) = self.sender.get() else {
            self.anomaly(format!(
                "item {from} was processed before the sender was set"
            ));
            return;
        };
        let item = Item::new(derived, &self.ledger);
        let (who, outcome) = match how % 3 {
            0 => (
                "worker try_send",
                sender.try_send(item).map_err(as_submit_refusal),
            ),
            1 => (
                "worker send",
                sender
                    .send(item)
                    .map_err(|error| as_submit_refusal(error.into())),
            ),
            _ => (
                "worker spawn",
                ctx.spawn(item).map_err(|error| match error {
                    SpawnError::Cancelled(item) => TrySubmitError::Cancelled(item),
                    SpawnError::Unavailable(item) => {
                        self.anomaly(format!("item {derived}: a spawn was unavailable"));
                        TrySubmitError::Closed(item)
                    }
                }),
            ),
        };
        match outcome {
            Ok(()) => {
                self.tally.derived_sent.fetch_add(1, SeqCst);
            }
            Err(error) => {
                self.tally.derived_refused.fetch_add(1, SeqCst);
                self.refused(who, derived, error);
            }
        }
    }

    /// Ends a call on `n_items` items as `fate` says.
    fn end_call(&self, fate: Fate, n_items: u64, first: u64) -> anyhow::Result<()> {
        let tally = &self.tally;
        match fate {
            Fate::Ok => {
                tally.ok_items.fetch_add(n_items, SeqCst);
                Ok(())
            }
            Fate::Fail => {
                tally.failed_items.fetch_add(n_items, SeqCst);
                tally.failed_calls.fetch_add(1, SeqCst);
                anyhow::bail!("deliberate failure at item {first}")
            }
            Fate::Panic => {
                tally.failed_items.fetch_add(n_items, SeqCst);
                tally.failed_calls.fetch_add(1, SeqCst);
                tally.panics.fetch_add(1, SeqCst);
                panic!("deliberate panic at item {first}")
            }
        }
    }

    /// A per-item worker call.
    fn work_item(&self, ctx: &Ctx, item: Item, maker_id: Option<WorkerId>) -> anyhow::Result<()> {
        self.tally.seen.fetch_add(1, SeqCst);
        let fate = self.work_on(ctx, &item, maker_id);
        self.end_call(fate, 1, item.value)
    }

    /// A batch worker call: items in order until one fails or panics, which
    /// fails the whole batch.
    fn work_batch(
        &self,
        ctx: &Ctx,
        batch: &mut Vec<Item>,
        maker_id: Option<WorkerId>,
    ) -> anyhow::Result<()> {
        let n_items = batch.len() as u64;
        self.tally.seen.fetch_add(n_items, SeqCst);
        let first = batch.first().map_or(u64::MAX, |item| item.value);
        let mut fate = Fate::Ok;
        for item in batch.iter() {
            fate = self.work_on(ctx, item, maker_id);
            if fate != Fate::Ok {
                break;
            }
        }
        // Sometimes the worker consumes the items, sometimes it leaves them to
        // the pool to drop.
        if first.is_multiple_of(2) {
            batch.clear();
        }
        self.end_call(fate, n_items, first)
    }

    /// A maker: counts itself and maybe panics.
    fn make(&self, id: WorkerId) {
        self.tally.makers.fetch_add(1, SeqCst);
        if self.script.faults.maker_panics_on == Some(id.index()) {
            self.tally.maker_panics.fetch_add(1, SeqCst);
            panic!("deliberate panic in the maker of worker {id}");
        }
    }
}

// --- One run ------------------------------------------------------------------

fn build_pool(run: &Arc<Run>, parent: Option<&CancelToken>) -> Pool<Item> {
    let script = &run.script;
    let mut builder = Pool::builder()
        .workers(script.n_workers)
        .batch_size(script.batch_size)
        .capacity(script.capacity)
        .thread_name(WORKER_PREFIX.trim_end_matches('-'))
        .resume_panics(script.resume_panics)
        .metrics(script.metrics);
    if let Some(n_keys) = script.n_keys {
        builder = builder.chunk_by(move |item: &Item| item.value % n_keys);
    }
    builder = if script.stop_on_error {
        builder.stop_on_error()
    } else {
        builder.continue_on_error()
    };
    if let Some(limit) = script.error_limit {
        builder = builder.error_limit(limit);
    }
    if let Some(parent) = parent {
        builder = builder.cancel_token(parent.clone());
    }
    let done = Arc::clone(run);
    builder = builder.on_worker_done(move |_id, counts| {
        let tally = &done.tally;
        tally.workers_done.fetch_add(1, SeqCst);
        tally.done_processed.fetch_add(counts.processed, SeqCst);
        tally.done_failed.fetch_add(counts.failed, SeqCst);
        tally.done_dropped.fetch_add(counts.dropped, SeqCst);
    });
    let done = Arc::clone(run);
    builder = builder.on_pool_done(move |report| {
        done.pool_done.lock().unwrap().push(Figures::of(report));
    });
    let run = Arc::clone(run);
    let built = match script.kind {
        Kind::Shared => builder.build(move |ctx: &Ctx, item: Item| run.work_item(ctx, item, None)),
        Kind::Stateful => builder.build_stateful(move |ctx: &Ctx| {
            let id = ctx.worker_id();
            run.make(id);
            let run = Arc::clone(&run);
            move |ctx: &Ctx, item: Item| run.work_item(ctx, item, Some(id))
        }),
        Kind::Batch => builder
            .build_batch(move |ctx: &Ctx, batch: &mut Vec<Item>| run.work_batch(ctx, batch, None)),
        Kind::StatefulBatch => builder.build_batch_stateful(move |ctx: &Ctx| {
            let id = ctx.worker_id();
            run.make(id);
            let run = Arc::clone(&run);
            move |ctx: &Ctx, batch: &mut Vec<Item>| run.work_batch(ctx, batch, Some(id))
        }),
    };
    built.expect("the script's settings are valid")
}

/// A producer with a `Submitter` (and the pool's `Sender`).
fn submitter_producer(run: &Run, pool: &Pool<Item>, producer: u64, mut rng: Rng) {
    let script = &run.script;
    let mut submitter = pool.submitter();
    let sender = pool.sender();
    let who = format!("producer {producer}");
    for step in 0..script.items_per_producer {
        let value = producer * script.items_per_producer + step;
        let item = Item::new(value, &run.ledger);
        let mut op = script.submitter_ops[rng.below(script.submitter_ops.len() as u64) as usize];
        // A run waits for its item to finish: one in 16 of the picks, so the
        // scripts stay fast.
        if op == Op::Run && !rng.one_in(16) {
            op = Op::Submit;
        }
        let timeout = Duration::from_micros(rng.below(50));
        if matches!(op, Op::Send | Op::SendTimeout | Op::Run) {
            // A thread must not block on the pool while its own submitter holds
            // room reserved for a batch it has not pushed: workers could run dry
            // with the room still taken (see `Submitter`'s docs).
            submitter.flush();
        }
        let outcome = match op {
            Op::Submit => submitter.submit(item).map_err(TrySubmitError::from),
            Op::TrySubmit => submitter.try_submit(item),
            Op::SubmitTimeout => submitter.submit_timeout(item, timeout),
            Op::Send => sender
                .send(item)
                .map_err(|error| as_submit_refusal(error.into())),
            Op::TrySend => sender.try_send(item).map_err(as_submit_refusal),
            Op::SendTimeout => sender
                .send_timeout(item, timeout)
                .map_err(as_submit_refusal),
            Op::Run => run_one(pool, item),
        };
        if let Err(error) = outcome {
            run.refused(&who, value, error);
        }
        if script.close_at == Some((producer, step)) {
            run.close_requested.store(true, SeqCst);
            pool.close();
        }
        if script.cancel_at == Some((producer, step)) {
            run.cancel_requested.store(true, SeqCst);
            pool.token().cancel();
            run.producer_cancels.fetch_add(1, SeqCst);
        }
        if rng.one_in(32) {
            submitter.flush();
        }
        if rng.one_in(64) {
            // A new submitter: the old one flushes as it is dropped.
            submitter = pool.submitter();
        }
    }
}

/// A producer with only a `Sender`, on a `'static` thread that may outlive the
/// pool; it cancels through `token` (the pool's, or its parent).
fn sender_producer(
    run: &Run,
    sender: &Sender<Item>,
    token: &CancelToken,
    producer: u64,
    mut rng: Rng,
) {
    let script = &run.script;
    let who = format!("sender {producer}");
    for step in 0..script.items_per_producer {
        let value = producer * script.items_per_producer + step;
        let item = Item::new(value, &run.ledger);
        let outcome = match SENDER_OPS[rng.below(SENDER_OPS.len() as u64) as usize] {
            Op::TrySend => sender.try_send(item).map_err(as_submit_refusal),
            Op::SendTimeout => sender
                .send_timeout(item, Duration::from_micros(rng.below(50)))
                .map_err(as_submit_refusal),
            _ => sender
                .send(item)
                .map_err(|error| as_submit_refusal(error.into())),
        };
        if let Err(error) = outcome {
            run.refused(&who, value, error);
        }
        if script.cancel_at == Some((producer, step)) {
            run.cancel_requested.store(true, SeqCst);
            token.cancel();
            run.producer_cancels.fetch_add(1, SeqCst);
        }
    }
}

/// How many of this binary's worker threads are alive, where `/proc` says.
fn live_workers() -> Option<usize> {
    threads::live_threads_named(WORKER_PREFIX)
}

fn run_script(seed: u64) {
    let script = Script::new(seed);
    let mut rng = Rng::new(seed ^ 0x5eed);
    let run = Arc::new(Run::new(script.clone()));
    if let Some(live) = live_workers() {
        assert_eq!(
            live, 0,
            "seed {seed}: workers of an earlier pool still live"
        );
    }
    let parent = script.parent_token.then(CancelToken::new);
    let pool = build_pool(&run, parent.as_ref());
    assert!(
        run.sender.set(pool.sender()).is_ok(),
        "the sender is set once"
    );
    if script.see_the_threads && script.faults.maker_panics_on.is_none() {
        // Proves the thread check below can see this pool's workers: each
        // names its thread before it calls its maker, and none can leave
        // before the pool is closed. The best of a few reads, since a listing
        // can come out short while other threads exit (see the helper).
        common::wait_until(|| run.tally.makers.load(SeqCst) == script.n_workers as u64);
        if let Some(live) = threads::most_live_threads_named(WORKER_PREFIX, script.n_workers, 100) {
            assert_eq!(live, script.n_workers, "seed {seed}: the workers are seen");
        }
    }

    let cancel_token = parent.clone().unwrap_or_else(|| pool.token().clone());
    let sender_threads: Vec<_> = (0..script.n_senders)
        .map(|index| {
            let (run, sender, token) = (Arc::clone(&run), pool.sender(), cancel_token.clone());
            let producer = script.n_submitters + index;
            let rng = Rng::new(rng.next());
            std::thread::spawn(move || sender_producer(&run, &sender, &token, producer, rng))
        })
        .collect();
    std::thread::scope(|scope| {
        for producer in 0..script.n_submitters {
            let (run, pool) = (&*run, &pool);
            let rng = Rng::new(rng.next());
            scope.spawn(move || submitter_producer(run, pool, producer, rng));
        }
    });
    let mut sender_threads = Some(sender_threads);
    let join_senders = |threads: &mut Option<Vec<std::thread::JoinHandle<()>>>| {
        for thread in threads.take().into_iter().flatten() {
            thread.join().expect("a sender thread does not panic");
        }
    };
    if script.join_senders_first {
        join_senders(&mut sender_threads);
    }

    // The ending. A panic `finish` or `wait` re-raises is caught to be checked.
    let cancelled_before_the_ending = run.producer_cancels.load(SeqCst) > 0;
    run.close_requested.store(true, SeqCst);
    let mut returned: Option<Figures> = None;
    let mut wait_result: Option<Result<Figures, PoolError>> = None;
    let resumed = match script.ending {
        Ending::Finish => catch_unwind(AssertUnwindSafe(|| {
            returned = Some(Figures::of(&pool.join()));
        })),
        Ending::Wait => catch_unwind(AssertUnwindSafe(|| {
            wait_result = Some(pool.wait().map(|report| Figures::of(&report)));
        })),
        Ending::DropWithoutWait => {
            drop(pool);
            Ok(())
        }
    };
    join_senders(&mut sender_threads);
    check_the_run(
        &run,
        cancelled_before_the_ending,
        returned,
        wait_result,
        resumed,
    );
}

/// The checks after a run; see the module docs.
fn check_the_run(
    run: &Run,
    cancelled_before_the_ending: bool,
    returned: Option<Figures>,
    wait_result: Option<Result<Figures, PoolError>>,
    resumed: std::thread::Result<()>,
) {
    let script = &run.script;
    let seed = script.seed;
    let tally = &run.tally;
    let load = |counter: &AtomicU64| counter.load(SeqCst);

    let anomalies = run.anomalies.lock().unwrap();
    assert!(anomalies.is_empty(), "seed {seed}: {anomalies:#?}");

    // Every worker thread was joined, and finished (its callback ran).
    if let Some(live) = live_workers() {
        assert_eq!(live, 0, "seed {seed}: worker threads outlived the pool");
    }
    assert_eq!(
        load(&tally.workers_done),
        script.n_workers as u64,
        "seed {seed}"
    );
    if script.kind.has_maker() {
        assert_eq!(load(&tally.makers), script.n_workers as u64, "seed {seed}");
    }

    // The report, as the pool gave it to `on_pool_done` (once).
    let done = run.pool_done.lock().unwrap();
    assert_eq!(done.len(), 1, "seed {seed}: on_pool_done runs once");
    let figures = done[0].clone();
    assert!(figures.balanced, "seed {seed}: {figures:?}");
    assert_eq!(
        figures.submitted,
        figures.processed + figures.failed + figures.dropped,
        "seed {seed}: {figures:?}"
    );
    assert_eq!(
        figures.stats,
        (figures.processed, figures.failed, figures.dropped),
        "seed {seed}: the merged metrics tell the same story: {figures:?}"
    );
    assert_eq!(figures.n_worker_reports, script.n_workers, "seed {seed}");

    // Each count is what the test's own code saw.
    let n_offered = script.n_originals() + load(&tally.derived_sent) + load(&tally.derived_refused);
    let refused = load(&tally.refused);
    let seen = load(&tally.seen);
    assert_eq!(
        figures.submitted + refused,
        n_offered,
        "seed {seed}: every offered item was accepted or came back: {figures:?}"
    );
    assert_eq!(
        figures.processed,
        load(&tally.ok_items),
        "seed {seed}: {figures:?}"
    );
    assert_eq!(
        figures.failed,
        load(&tally.failed_items),
        "seed {seed}: {figures:?}"
    );
    assert_eq!(
        figures.dropped + seen,
        figures.submitted,
        "seed {seed}: dropped means accepted and never handed to a worker: {figures:?}"
    );
    assert_eq!(
        (load(&tally.done_processed), load(&tally.done_failed)),
        (figures.processed, figures.failed),
        "seed {seed}: on_worker_done's counts add up"
    );
    assert!(load(&tally.done_dropped) <= figures.dropped, "seed {seed}");
    let n_errors = load(&tally.failed_calls) + load(&tally.maker_panics);
    assert_eq!(figures.error_total, n_errors, "seed {seed}: {figures:?}");
    let error_limit = script.error_limit.unwrap_or(1000);
    assert_eq!(
        figures.errors_kept as u64,
        n_errors.min(error_limit as u64),
        "seed {seed}: errors kept up to the limit"
    );
    // Cancelled exactly when something cancelled it: a worker, a maker panic,
    // an error under stop-on-error or a producer before the ending must have;
    // a producer's cancel after the ending began may have.
    let must_be_cancelled = cancelled_before_the_ending
        || load(&tally.worker_cancels) > 0
        || load(&tally.maker_panics) > 0
        || (script.stop_on_error && load(&tally.failed_calls) > 0);
    if figures.cancelled {
        assert!(
            run.cancel_is_explained(),
            "seed {seed}: cancelled unasked: {figures:?}"
        );
    } else {
        assert!(
            !must_be_cancelled,
            "seed {seed}: the cancel was lost: {figures:?}"
        );
    }
    if !figures.cancelled {
        assert_eq!(
            figures.dropped, 0,
            "seed {seed}: items dropped without a cancel"
        );
    }

    // `finish` and `wait` return the same report, and `wait` its documented
    // `Result`; with `resume_panics` both re-raise a panic instead.
    let panicked = load(&tally.panics) + load(&tally.maker_panics) > 0;
    let expect_resume =
        script.resume_panics && panicked && script.ending != Ending::DropWithoutWait;
    match resumed {
        Err(payload) => {
            assert!(expect_resume, "seed {seed}: the ending panicked unasked");
            let message = pool_core::__private::panic_message(&*payload);
            assert!(
                message.contains("deliberate"),
                "seed {seed}: resumed {message:?}"
            );
        }
        Ok(()) => assert!(!expect_resume, "seed {seed}: the panic was not resumed"),
    }
    if let Some(returned) = returned {
        assert_eq!(
            returned, figures,
            "seed {seed}: finish and on_pool_done agree"
        );
    }
    if let Some(result) = wait_result {
        match result {
            Ok(returned) => {
                assert_eq!(
                    returned, figures,
                    "seed {seed}: wait and on_pool_done agree"
                );
                assert!(
                    n_errors == 0 && !figures.cancelled,
                    "seed {seed}: {figures:?}"
                );
            }
            Err(PoolError::Many { errors, total }) => {
                assert!(
                    !script.stop_on_error,
                    "seed {seed}: Many under stop-on-error"
                );
                assert_eq!(
                    (errors.len(), total),
                    (figures.errors_kept, n_errors),
                    "seed {seed}"
                );
            }
            Err(PoolError::Cancelled { dropped }) => {
                assert_eq!(n_errors, 0, "seed {seed}: Cancelled hides errors");
                assert!(figures.cancelled, "seed {seed}");
                assert_eq!(dropped, figures.dropped, "seed {seed}");
            }
            Err(error) => {
                assert!(script.stop_on_error && n_errors > 0, "seed {seed}: {error}");
            }
        }
    }

    // Every item value was dropped exactly once: processed, failed, dropped by
    // the pool, or handed back and dropped by the test.
    let ledger = &run.ledger;
    for value in 0..ledger.made.len() {
        let made = ledger.made[value].load(SeqCst);
        let dropped = ledger.dropped[value].load(SeqCst);
        let original = (value as u64) < script.n_originals();
        assert!(
            made <= 1 && (made == 1 || !original),
            "seed {seed}: item {value} made {made} times"
        );
        assert_eq!(
            dropped, made,
            "seed {seed}: item {value} made {made}, dropped {dropped} times"
        );
    }
}

// --- The runner ---------------------------------------------------------------

/// An environment variable as a number, if set.
fn env_number(name: &str) -> Option<u64> {
    let text = std::env::var(name).ok()?;
    Some(
        text.trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={text:?} is not a whole number")),
    )
}

/// The seeds to run: `WORKFORCE_SEED` alone replays one script;
/// `WORKFORCE_SCRIPTS=n` runs `n` scripts from `WORKFORCE_SEED` (default 0).
fn seeds() -> Range<u64> {
    match (
        env_number("WORKFORCE_SEED"),
        env_number("WORKFORCE_SCRIPTS"),
    ) {
        (Some(seed), None) => seed..seed + 1,
        (first, n_scripts) => {
            let first = first.unwrap_or(0);
            first..first.saturating_add(n_scripts.unwrap_or(DEFAULT_SCRIPTS))
        }
    }
}

/// Tells on stderr (past the test's output capture) which script runs while a
/// run takes far longer than any should, so a hang names its seed. It only
/// reports: the test itself asserts no time.
struct Watchdog {
    running: Arc<(AtomicU64, AtomicBool)>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Watchdog {
    const PATIENCE: Duration = Duration::from_secs(60);

    fn start() -> Watchdog {
        let running = Arc::new((AtomicU64::new(u64::MAX), AtomicBool::new(false)));
        let watched = Arc::clone(&running);
        let thread = std::thread::spawn(move || {
            let (seed, stop) = &*watched;
            let (mut last, mut since) = (u64::MAX, std::time::Instant::now());
            let mut told = false;
            while !stop.load(SeqCst) {
                std::thread::park_timeout(Self::PATIENCE);
                let now = seed.load(SeqCst);
                if now != last {
                    (last, since, told) = (now, std::time::Instant::now(), false);
                } else if !told && since.elapsed() >= Self::PATIENCE && !stop.load(SeqCst) {
                    use std::io::Write;
                    let _ = writeln!(
                        std::io::stderr(),
                        "random_scripts_keep_the_invariant: the script with seed {now} has run \
                         for over {:?}; it may hang. Replay it with WORKFORCE_SEED={now}",
                        Self::PATIENCE
                    );
                    told = true;
                }
            }
        });
        Watchdog {
            running,
            thread: Some(thread),
        }
    }

    fn now_running(&self, seed: u64) {
        self.running.0.store(seed, SeqCst);
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.running.1.store(true, SeqCst);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}

#[test]
fn random_scripts_keep_the_invariant() {
    common::quiet_deliberate_panics();
    let seeds = seeds();
    let watchdog = Watchdog::start();
    let started = std::time::Instant::now();
    for seed in seeds.clone() {
        watchdog.now_running(seed);
        if let Err(payload) = catch_unwind(|| run_script(seed)) {
            eprintln!(
                "script with seed {seed} failed; replay with WORKFORCE_SEED={seed} \
                 (and WORKFORCE_SCRIPTS unset):\n{:#?}",
                Script::new(seed)
            );
            std::panic::resume_unwind(payload);
        }
    }
    eprintln!(
        "random_scripts_keep_the_invariant: {} scripts (seeds {seeds:?}) in {:.1?}",
        seeds.end - seeds.start,
        started.elapsed()
    );
}

#[test]
fn the_thread_count_sees_named_threads_come_and_go() {
    const PREFIX: &str = "rs-probe";
    let Some(before) = threads::live_threads_named(PREFIX) else {
        return; // No `/proc`: the pool checks skip the count too.
    };
    assert_eq!(before, 0);
    // Each thread names itself as it starts, before it reaches the barrier.
    let started = Arc::new(std::sync::Barrier::new(4));
    let gate = common::Gate::default();
    let handles: Vec<_> = (0..3)
        .map(|index| {
            let (started, gate) = (Arc::clone(&started), gate.clone());
            std::thread::Builder::new()
                .name(format!("{PREFIX}-{index}"))
                .spawn(move || {
                    started.wait();
                    gate.wait();
                })
                .unwrap()
        })
        .collect();
    started.wait();
    // The other test of this binary ends threads meanwhile, which can cut a
    // listing short (see the helper's docs): hence the best of a few reads.
    assert_eq!(threads::most_live_threads_named(PREFIX, 3, 100), Some(3));
    gate.open();
    for handle in handles {
        handle.join().unwrap();
    }
    assert_eq!(threads::live_threads_named(PREFIX), Some(0));
}

/// A sender's refusal in a submitter's words: the script checks both the same
/// way. A pool's sender never says `Disconnected` (it keeps the pool alive).
fn as_submit_refusal<T>(error: TrySendError<T>) -> TrySubmitError<T> {
    match error {
        TrySendError::Full(item) => TrySubmitError::Full(item),
        TrySendError::Closed(item) => TrySubmitError::Closed(item),
        TrySendError::Cancelled(item) => TrySubmitError::Cancelled(item),
        TrySendError::Disconnected(_) => panic!("a pool's sender said Disconnected"),
    }
}

/// `Pool::run` over one item, its refusal in a submitter's words: the item
/// comes back in the `Rest` if it was not taken; if it was taken before the
/// pool stopped, it is the pool's (counted) and nothing is refused.
fn run_one(pool: &Pool<Item>, item: Item) -> Result<(), TrySubmitError<Item>> {
    match pool.run(std::iter::once(item)) {
        Ok(_) => Ok(()),
        Err(RunError::Closed(mut rest)) => rest
            .next()
            .map_or(Ok(()), |item| Err(TrySubmitError::Closed(item))),
        Err(RunError::Cancelled(mut rest)) => rest
            .next()
            .map_or(Ok(()), |item| Err(TrySubmitError::Cancelled(item))),
        Err(other) => panic!("run over one item: {other}"),
    }
}
