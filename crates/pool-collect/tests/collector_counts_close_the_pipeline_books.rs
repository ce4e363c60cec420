//! A collector's own counts (`Collector::counts`): every value offered is
//! received or refused, every value received is taken, dropped or still
//! buffered, at every moment and after a cancel or the consumer's drop; and
//! in a pipeline, the pool's processed items are exactly the values the
//! collector received or refused. Also: a parent token's cancel reaches the
//! collector through a callback, with no thread of the collector's own.
#![allow(clippy::unwrap_used)]

use std::sync::mpsc;

use pool_collect::{CollectError, Collector, CollectorCounts, TrySendError};
use pool_core::{CancelToken, Ctx, Pool};
use rstest::rstest;

fn counts(received: u64, taken: u64, dropped: u64, buffered: u64, refused: u64) -> CollectorCounts {
    let mut counts = CollectorCounts::default();
    counts.received = received;
    counts.taken = taken;
    counts.dropped = dropped;
    counts.buffered = buffered;
    counts.refused = refused;
    counts
}

#[test]
fn each_step_moves_one_count() {
    let collector = Collector::new(2).unwrap();
    let sender = collector.sender();
    assert_eq!(collector.counts(), CollectorCounts::default());
    sender.send(1).unwrap();
    sender.send(2).unwrap();
    assert_eq!(collector.counts(), counts(2, 0, 0, 2, 0));
    assert_eq!(sender.try_send(3), Err(TrySendError::Full(3)));
    assert_eq!(collector.counts(), counts(2, 0, 0, 2, 1));
    let mut values = collector.iter();
    assert_eq!(values.next(), Some(Ok(1)));
    assert_eq!(collector.counts(), counts(2, 1, 0, 1, 1));
    collector.close();
    assert!(sender.send(4).is_err());
    assert_eq!(values.next(), Some(Ok(2)));
    assert_eq!(values.next(), None);
    let end = collector.counts();
    assert_eq!(end, counts(2, 2, 0, 0, 2));
    assert!(end.is_balanced());
}

#[rstest]
#[case::by_the_collector(false)]
#[case::by_the_parent_token(true)]
fn a_cancel_counts_the_buffered_values_as_dropped(#[case] by_token: bool) {
    let token = CancelToken::new();
    let collector = if by_token {
        Collector::with_token(8, token.clone()).unwrap()
    } else {
        Collector::new(8).unwrap()
    };
    let sender = collector.sender();
    for n in 0..5 {
        sender.send(n).unwrap();
    }
    assert_eq!(collector.iter().next(), Some(Ok(0)));
    if by_token {
        token.cancel(); // reaches the collector before `cancel` returns
    } else {
        collector.cancel();
    }
    assert_eq!(collector.counts(), counts(5, 1, 4, 0, 0));
    assert!(sender.send(9).is_err());
    assert_eq!(
        collector.iter().collect::<Vec<_>>(),
        [Err(CollectError::Cancelled { dropped: 4 })]
    );
    assert_eq!(sender.counts(), counts(5, 1, 4, 0, 1));
}

#[test]
fn the_consumers_drop_counts_what_it_left_behind() {
    let collector = Collector::new(8).unwrap();
    let sender = collector.sender();
    for n in 0..3 {
        sender.send(n).unwrap();
    }
    drop(collector);
    assert!(sender.send(3).is_err());
    let after = sender.counts();
    assert_eq!(after, counts(3, 0, 3, 0, 1));
    assert!(after.is_balanced());
}

#[test]
fn a_parent_cancel_wakes_a_waiting_consumer_from_the_cancelling_thread() {
    let token = CancelToken::new();
    let collector = Collector::<u32>::with_token(4, token.clone()).unwrap();
    let _sender = collector.sender(); // keeps the stream open
    let (waiting, consumer_waits) = mpsc::channel();
    std::thread::scope(|scope| {
        let consumer = scope.spawn(|| {
            waiting.send(()).unwrap();
            collector.iter().collect::<Vec<_>>()
        });
        consumer_waits.recv().unwrap();
        token.cancel();
        // The collector is cancelled by the time `cancel` returned.
        assert!(collector.is_closed());
        assert_eq!(
            consumer.join().unwrap(),
            [Err(CollectError::Cancelled { dropped: 0 })]
        );
    });
}

#[test]
fn a_dropped_collector_leaves_its_parent_token_alone() {
    let token = CancelToken::new();
    for _ in 0..100 {
        let collector = Collector::<u8>::with_token(1, token.clone()).unwrap();
        collector.sender().send(1).unwrap();
    }
    // Every registration went with its collector: cancelling touches none.
    token.cancel();
    let late = Collector::<u8>::with_token(1, token).unwrap();
    assert!(late.is_cancelled());
    assert_eq!(
        late.iter().next(),
        Some(Err(CollectError::Cancelled { dropped: 0 }))
    );
}

/// A pool whose workers send one value per item into a collector, consumed
/// as it runs and cancelled part way: the pool's books and the collector's
/// meet with nothing unaccounted for.
#[rstest]
fn a_pipeline_accounts_for_every_item_through_the_collector(#[values(false, true)] cancel: bool) {
    let collector = Collector::new(16).unwrap();
    let values = collector.sender();
    let pool = Pool::builder()
        .workers(3)
        .continue_on_error()
        .build(move |_ctx: &Ctx, n: u64| {
            // A refused value is the item's failure: counted by the pool.
            values
                .send(n * 2)
                .map_err(|refused| std::io::Error::other(refused.to_string()))
        })
        .unwrap();
    let taken = std::thread::scope(|scope| {
        let pool = &pool;
        scope.spawn(move || {
            let mut submitter = pool.submitter();
            for n in 0..10_000 {
                if submitter.submit(n).is_err() {
                    break;
                }
            }
        });
        let mut taken = 0u64;
        for value in collector.iter() {
            match value {
                Ok(_) => taken += 1,
                Err(_) => break, // cancelled
            }
            if cancel && taken == 500 {
                collector.cancel();
            }
            if taken == 10_000 {
                collector.close();
            }
        }
        taken
    });
    let report = pool.join();
    let books = collector.counts();
    assert!(books.is_balanced(), "{books:?}");
    assert_eq!(books.taken, taken);
    assert_eq!(books.buffered, 0);
    // Each item that ran sent one value: received or refused.
    assert_eq!(
        report.processed() + report.failed(),
        books.received + books.refused
    );
    assert_eq!(report.processed(), books.received);
    assert_eq!(report.failed(), books.refused);
    assert!(report.is_balanced());
    if !cancel {
        assert_eq!(
            (books.received, books.taken, books.dropped),
            (10_000, 10_000, 0)
        );
    }
}
