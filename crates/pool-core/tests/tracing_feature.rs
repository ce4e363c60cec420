//! The `tracing` feature: one span per worker thread, batch spans whose
//! lengths add up to the items, one event per failed item, per failed
//! `finish` and per caught panic (with the item's key when the pool has an
//! `item_key`), one per interrupted item, and one event per cancel and per
//! close.
//!
//! Run with `cargo test -p pool-core --features tracing --test tracing_feature`.
//!
//! The subscriber is global (`set_global_default`, installed once for this
//! binary): a scoped default (`with_default`, `set_default`) is a thread-local
//! that the pool's worker threads would not inherit, and the pool has no way to
//! be handed a dispatcher. Tests run in parallel, so each one picks out its own
//! records: those made on its pool's threads (each test names them with its own
//! `thread_name`) and those made on the test's own thread (`wait`, `cancel`).
#![cfg(feature = "tracing")]
#![allow(clippy::unwrap_used)] // Tests may unwrap: a panic is a test failure.

mod common;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Mutex, Once};
use std::thread::ThreadId;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

use pool_core::{Ctx, Pool, Worker};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Span,
    Event,
}

/// A span as it was created, or an event as it was emitted.
#[derive(Debug, Clone)]
struct Record {
    kind: Kind,
    /// The span's name, or the event's message.
    name: String,
    level: Level,
    target: String,
    fields: BTreeMap<&'static str, String>,
    /// The names of the spans around it, innermost first.
    scope: Vec<&'static str>,
    thread_name: Option<String>,
    thread_id: ThreadId,
}

impl Record {
    fn field(&self, name: &str) -> &str {
        self.fields
            .get(name)
            .unwrap_or_else(|| panic!("{self:?} has no field `{name}`"))
    }

    fn number(&self, name: &str) -> u64 {
        self.field(name).parse().unwrap()
    }
}

static RECORDS: Mutex<Vec<Record>> = Mutex::new(Vec::new());

/// Records every span and event, with its fields, scope and thread.
struct Capture;

impl Capture {
    fn push(
        kind: Kind,
        name: String,
        metadata: &tracing::Metadata<'_>,
        fields: BTreeMap<&'static str, String>,
        scope: Vec<&'static str>,
    ) {
        let thread = std::thread::current();
        RECORDS.lock().unwrap().push(Record {
            kind,
            name,
            level: *metadata.level(),
            target: metadata.target().to_owned(),
            fields,
            scope,
            thread_name: thread.name().map(str::to_owned),
            thread_id: thread.id(),
        });
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Capture {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = BTreeMap::new();
        attrs.record(&mut Fields(&mut fields));
        let scope = ctx
            .span(id)
            .and_then(|span| span.parent())
            .map(|parent| parent.scope().map(|span| span.name()).collect())
            .unwrap_or_default();
        let metadata = attrs.metadata();
        Capture::push(
            Kind::Span,
            metadata.name().to_owned(),
            metadata,
            fields,
            scope,
        );
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut fields = BTreeMap::new();
        event.record(&mut Fields(&mut fields));
        let scope = ctx
            .event_scope(event)
            .map(|scope| scope.map(|span| span.name()).collect())
            .unwrap_or_default();
        let message = fields.remove("message").unwrap_or_default();
        Capture::push(Kind::Event, message, event.metadata(), fields, scope);
    }
}

struct Fields<'a>(&'a mut BTreeMap<&'static str, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name(), format!("{value:?}"));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name(), value.to_owned());
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0.insert(field.name(), value.to_string());
    }
}

/// One test's view of the global capture.
struct Run {
    /// The test pool's `thread_name`.
    prefix: &'static str,
    test_thread: ThreadId,
}

impl Run {
    fn start(prefix: &'static str) -> Run {
        static INSTALL: Once = Once::new();
        INSTALL.call_once(|| {
            let subscriber = tracing_subscriber::registry().with(Capture);
            tracing::subscriber::set_global_default(subscriber)
                .expect("this binary installs no other subscriber");
        });
        Run {
            prefix,
            test_thread: std::thread::current().id(),
        }
    }

    /// The worker index in a thread name of this test's pool.
    fn worker_of(&self, record: &Record) -> Option<u64> {
        let name = record.thread_name.as_deref()?;
        name.strip_prefix(self.prefix)?
            .strip_prefix('-')?
            .parse()
            .ok()
    }

    /// Everything this test's pool and this test's thread recorded.
    fn records(&self) -> Vec<Record> {
        RECORDS
            .lock()
            .unwrap()
            .iter()
            .filter(|record| {
                record.thread_id == self.test_thread || self.worker_of(record).is_some()
            })
            .cloned()
            .collect()
    }
}

fn named<'a>(records: &'a [Record], kind: Kind, name: &str) -> Vec<&'a Record> {
    records
        .iter()
        .filter(|record| record.kind == kind && record.name == name)
        .collect()
}

fn submit_all(pool: &Pool<u64>, n_items: u64) {
    let mut submitter = pool.submitter();
    for item in 0..n_items {
        submitter.submit(item).unwrap();
    }
}

#[test]
fn each_worker_gets_one_span_and_the_batch_spans_add_up_to_the_items() {
    let run = Run::start("tracing-spans");
    let n_workers = 3;
    let n_items = 100;
    let pool = Pool::builder()
        .workers(n_workers)
        .batch_size(8)
        .thread_name(run.prefix)
        .build(|_ctx: &Ctx, _item: u64| Ok::<(), std::io::Error>(()))
        .unwrap();
    submit_all(&pool, n_items);
    let report = pool.wait().unwrap();
    assert_eq!(report.processed(), n_items);
    let records = run.records();

    let workers = named(&records, Kind::Span, "worker");
    let mut indexes: Vec<u64> = workers.iter().map(|span| span.number("worker")).collect();
    indexes.sort_unstable();
    assert_eq!(indexes, [0, 1, 2], "{workers:#?}");
    for span in &workers {
        assert_eq!(
            (span.level, span.target.as_str()),
            (Level::INFO, "pool_core")
        );
        assert_eq!(Some(span.number("worker")), run.worker_of(span));
        assert!(span.scope.is_empty(), "worker spans are roots: {span:?}");
    }

    let batches = named(&records, Kind::Span, "batch");
    for span in &batches {
        assert_eq!(
            (span.level, span.target.as_str()),
            (Level::DEBUG, "pool_core")
        );
        assert_eq!(Some(span.number("worker")), run.worker_of(span));
        assert_eq!(span.scope, ["worker"]);
        assert!((1..=8).contains(&span.number("n_items")), "{span:?}");
    }
    let batched: u64 = batches.iter().map(|span| span.number("n_items")).sum();
    assert_eq!(batched, n_items);

    let finished = named(&records, Kind::Event, "worker finished");
    assert_eq!(finished.len(), n_workers);
    let processed: u64 = finished.iter().map(|event| event.number("processed")).sum();
    assert_eq!(processed, n_items);

    assert!(
        records
            .iter()
            .all(|record| record.level > Level::WARN || record.kind == Kind::Span),
        "no warnings or errors in a clean run: {records:#?}"
    );
    assert_eq!(named(&records, Kind::Event, "pool closed").len(), 1);
    assert!(named(&records, Kind::Event, "pool cancelled").is_empty());
}

#[test]
fn each_failed_item_is_one_warning_with_its_worker_and_message() {
    let run = Run::start("tracing-errors");
    let pool = Pool::builder()
        .workers(2)
        .batch_size(4)
        .continue_on_error()
        .thread_name(run.prefix)
        .build(|_ctx: &Ctx, item: u64| {
            if item % 10 == 3 {
                return Err(std::io::Error::other(format!("item {item} is bad")));
            }
            Ok(())
        })
        .unwrap();
    submit_all(&pool, 40);
    let report = pool.join();
    assert_eq!(report.failed(), 4);
    let records = run.records();

    let failures = named(&records, Kind::Event, "work failed");
    let mut messages: Vec<&str> = failures.iter().map(|event| event.field("error")).collect();
    messages.sort_unstable();
    let mut expected = [3, 13, 23, 33].map(|item| format!("item {item} is bad"));
    expected.sort_unstable();
    assert_eq!(messages, expected);
    for event in &failures {
        assert_eq!(
            (event.level, event.target.as_str()),
            (Level::WARN, "pool_core")
        );
        assert_eq!(event.field("site"), "work");
        assert_eq!(Some(event.number("worker")), run.worker_of(event));
        assert_eq!(event.scope, ["batch", "worker"]);
    }
    assert!(named(&records, Kind::Event, "pool cancelled").is_empty());
}

/// Panics on item 7; every worker's `finish` fails.
struct Flaky;

impl Worker<u64> for Flaky {
    type Error = std::io::Error;

    fn work(&mut self, _ctx: &Ctx, item: u64) -> Result<(), std::io::Error> {
        if item == 7 {
            panic!("deliberate panic on {item}");
        }
        Ok(())
    }

    fn finish(&mut self, ctx: &Ctx) -> Result<(), std::io::Error> {
        Err(std::io::Error::other(format!(
            "worker {} could not flush",
            ctx.worker_id().index()
        )))
    }
}

#[test]
fn panics_and_finish_errors_are_error_events_with_site_and_message() {
    common::quiet_deliberate_panics();
    let run = Run::start("tracing-panics");
    let pool = Pool::builder()
        .workers(2)
        .batch_size(4)
        .continue_on_error()
        .thread_name(run.prefix)
        .build_stateful(|_id| Flaky)
        .unwrap();
    submit_all(&pool, 20);
    let report = pool.join();
    assert_eq!((report.processed(), report.failed()), (19, 1));
    let records = run.records();

    let panics = named(&records, Kind::Event, "panic caught");
    assert_eq!(panics.len(), 1, "{records:#?}");
    let panic = panics[0];
    assert_eq!(
        (panic.level, panic.target.as_str()),
        (Level::ERROR, "pool_core")
    );
    assert_eq!(panic.field("site"), "work");
    assert_eq!(panic.field("panic"), "deliberate panic on 7");
    assert_eq!(Some(panic.number("worker")), run.worker_of(panic));
    assert_eq!(panic.scope, ["batch", "worker"]);

    let finishes = named(&records, Kind::Event, "finish failed");
    assert_eq!(finishes.len(), 2, "{records:#?}");
    for event in &finishes {
        assert_eq!(event.level, Level::ERROR);
        assert_eq!(event.field("site"), "finish");
        let worker = event.number("worker");
        assert_eq!(Some(worker), run.worker_of(event));
        assert_eq!(
            event.field("error"),
            format!("worker {worker} could not flush")
        );
        assert_eq!(event.scope, ["worker"]);
    }
}

#[test]
fn a_cancel_and_a_close_are_reported_once_each() {
    let run = Run::start("tracing-cancel");
    let pool = Pool::builder()
        .workers(2)
        .thread_name(run.prefix)
        .build(|_ctx: &Ctx, _item: u64| Ok::<(), std::io::Error>(()))
        .unwrap();
    submit_all(&pool, 10);
    pool.cancel();
    pool.cancel();
    pool.close();
    let report = pool.join();
    assert!(report.is_balanced());
    let records = run.records();

    let cancels = named(&records, Kind::Event, "pool cancelled");
    assert_eq!(cancels.len(), 1, "{records:#?}");
    assert_eq!(cancels[0].level, Level::INFO);
    assert_eq!(cancels[0].number("submitted"), 10);
    let closes = named(&records, Kind::Event, "pool closed");
    assert_eq!(closes.len(), 1, "{records:#?}");
    assert_eq!(closes[0].level, Level::DEBUG);
}

/// Fails items ending in 3, panics on item 7, each item named by its key.
fn keyed_flaky(_ctx: &Ctx, item: u64) -> Result<(), std::io::Error> {
    if item == 7 {
        panic!("deliberate panic on {item}");
    }
    if item % 10 == 3 {
        return Err(std::io::Error::other(format!("item {item} is bad")));
    }
    Ok(())
}

#[test]
fn error_and_panic_events_carry_the_item_key() {
    common::quiet_deliberate_panics();
    let run = Run::start("tracing-keys");
    let pool = Pool::builder()
        .workers(2)
        .batch_size(4)
        .continue_on_error()
        .thread_name(run.prefix)
        .item_key(|item: &u64| format!("job-{item}"))
        .build(keyed_flaky)
        .unwrap();
    submit_all(&pool, 30);
    let report = pool.join();
    assert_eq!((report.failed(), report.error_total()), (4, 4));
    let records = run.records();

    let failures = named(&records, Kind::Event, "work failed");
    let mut keys: Vec<(&str, &str)> = failures
        .iter()
        .map(|event| (event.field("key"), event.field("error")))
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            ("job-13", "item 13 is bad"),
            ("job-23", "item 23 is bad"),
            ("job-3", "item 3 is bad"),
        ]
    );
    let panics = named(&records, Kind::Event, "panic caught");
    assert_eq!(panics.len(), 1, "{records:#?}");
    assert_eq!(panics[0].field("key"), "job-7");
    assert_eq!(panics[0].field("site"), "work");
}

#[test]
fn without_an_item_key_the_events_have_no_key_field() {
    common::quiet_deliberate_panics();
    let run = Run::start("tracing-nokeys");
    let pool = Pool::builder()
        .workers(2)
        .batch_size(4)
        .continue_on_error()
        .thread_name(run.prefix)
        .build(keyed_flaky)
        .unwrap();
    submit_all(&pool, 10);
    assert_eq!(pool.join().failed(), 2);
    let records = run.records();
    let errors: Vec<&Record> = records
        .iter()
        .filter(|record| record.name == "work failed" || record.name == "panic caught")
        .collect();
    assert_eq!(errors.len(), 2, "{records:#?}");
    for event in errors {
        assert!(!event.fields.contains_key("key"), "{event:?}");
    }
}

#[test]
fn an_interrupted_item_is_a_debug_event_with_its_key_not_a_warning() {
    let run = Run::start("tracing-interr");
    let pool = Pool::builder()
        .workers(1)
        .thread_name(run.prefix)
        .item_key(|item: &u64| *item)
        .build(|ctx: &Ctx, item: u64| -> anyhow::Result<()> {
            if item == 5 {
                ctx.token().cancel();
            }
            ctx.check()?;
            Ok(())
        })
        .unwrap();
    submit_all(&pool, 10);
    let report = pool.join();
    // Items 0 to 4 ran, 5 was interrupted, 6 to 9 were dropped unrun.
    assert_eq!(
        (report.processed(), report.interrupted(), report.dropped()),
        (5, 1, 5)
    );
    let records = run.records();
    let interrupted = named(&records, Kind::Event, "work interrupted");
    assert_eq!(interrupted.len(), 1, "{records:#?}");
    assert_eq!(interrupted[0].level, Level::DEBUG);
    assert_eq!(interrupted[0].field("key"), "5");
    assert_eq!(
        Some(interrupted[0].number("worker")),
        run.worker_of(interrupted[0])
    );
    assert!(named(&records, Kind::Event, "work failed").is_empty());
}
