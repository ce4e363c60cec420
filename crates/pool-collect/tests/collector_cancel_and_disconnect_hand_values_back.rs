//! Cancelling a `Collector` ends the consumer's iteration with one error and
//! accounts for every accepted value; cancelling and dropping the consumer
//! hand refused values back to producers, also to producers blocked on a full
//! collector. No test sleeps; threads meet on channels and joins.

#![allow(clippy::unwrap_used)]

use std::sync::mpsc;
use std::thread;

use pool_collect::{CollectError, Collector, SendError, TrySendError};
use pool_core::CancelToken;
use rstest::rstest;

/// Submits 0, 1, 2, ... until refused; returns how many were accepted and the
/// refusal.
fn submit_until_refused(sender: &pool_collect::CollectorSender<u64>) -> (u64, SendError<u64>) {
    let mut accepted = 0;
    loop {
        match sender.send(accepted) {
            Ok(()) => accepted += 1,
            Err(refused) => return (accepted, refused),
        }
    }
}

#[rstest]
#[case::by_the_collector(false)]
#[case::by_the_parent_token(true)]
fn cancel_mid_stream_ends_iteration_with_one_error_and_accounts_for_every_value(
    #[case] through_token: bool,
) {
    const TAKEN_BEFORE_CANCEL: usize = 10;
    let token = CancelToken::new();
    let collector = if through_token {
        Collector::with_token(4, token.clone()).unwrap()
    } else {
        Collector::new(4).unwrap()
    };
    let sender = collector.sender();
    let producer = thread::spawn(move || submit_until_refused(&sender));

    let mut iter = collector.iter();
    let taken: Vec<u64> = iter
        .by_ref()
        .take(TAKEN_BEFORE_CANCEL)
        .map(Result::unwrap)
        .collect();
    assert_eq!(taken, (0..TAKEN_BEFORE_CANCEL as u64).collect::<Vec<_>>());
    if through_token {
        token.cancel();
    } else {
        collector.cancel();
    }
    let rest: Vec<_> = iter.collect();
    let (accepted, refused) = producer.join().unwrap();

    assert_eq!(rest.len(), 1, "exactly one item after the cancel: {rest:?}");
    let Err(CollectError::Cancelled { dropped }) = rest[0] else {
        panic!("expected the cancellation, got {:?}", rest[0]);
    };
    // Every accepted value was either delivered or dropped and counted.
    assert_eq!(accepted, TAKEN_BEFORE_CANCEL as u64 + dropped as u64);
    // The refused value is the next one, handed back.
    assert_eq!(refused, SendError::Cancelled(accepted));
    // The error is seen once: later iterations just end.
    assert_eq!(collector.iter().count(), 0);
    assert!(collector.is_cancelled());
}

#[test]
fn cancel_accounts_for_every_value_of_many_producers() {
    const PRODUCERS: usize = 4;
    const TAKEN_BEFORE_CANCEL: usize = 500;
    let collector = Collector::new(8).unwrap();
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|_| {
            let sender = collector.sender();
            thread::spawn(move || submit_until_refused(&sender))
        })
        .collect();
    let mut iter = collector.iter();
    assert_eq!(
        iter.by_ref()
            .take(TAKEN_BEFORE_CANCEL)
            .filter(Result::is_ok)
            .count(),
        TAKEN_BEFORE_CANCEL
    );
    collector.cancel();
    let Some(Err(CollectError::Cancelled { dropped })) = iter.next() else {
        panic!("expected the cancellation");
    };
    assert_eq!(iter.next(), None);
    let mut accepted = 0;
    for producer in producers {
        let (count, refused) = producer.join().unwrap();
        assert_eq!(refused, SendError::Cancelled(count));
        accepted += count;
    }
    assert_eq!(accepted, (TAKEN_BEFORE_CANCEL + dropped) as u64);
}

#[test]
fn a_parent_token_cancel_wakes_a_consumer_waiting_on_an_empty_collector() {
    let token = CancelToken::new();
    let collector = Collector::<u32>::with_token(4, token.clone()).unwrap();
    let sender = collector.sender(); // keeps the collector open
    let (seen_tx, seen_rx) = mpsc::channel();
    thread::scope(|scope| {
        let consumer = scope.spawn(|| {
            let mut items = Vec::new();
            for item in collector.iter() {
                items.push(item);
                seen_tx.send(()).unwrap();
            }
            items
        });
        sender.send(5).unwrap();
        seen_rx.recv().unwrap(); // the consumer iterates and is about to wait
        token.cancel();
        assert_eq!(
            consumer.join().unwrap(),
            [Ok(5), Err(CollectError::Cancelled { dropped: 0 })]
        );
    });
    assert_eq!(sender.send(6), Err(SendError::Cancelled(6)));
}

#[test]
fn a_parent_token_cancel_hands_the_value_of_a_blocked_producer_back() {
    let token = CancelToken::new();
    let collector = Collector::with_token(1, token.clone()).unwrap();
    let sender = collector.sender();
    sender.send(1).unwrap();
    let (ready_tx, ready_rx) = mpsc::channel();
    let producer = thread::spawn(move || {
        assert_eq!(sender.try_send(2), Err(TrySendError::Full(2)));
        ready_tx.send(()).unwrap();
        sender.send(2)
    });
    ready_rx.recv().unwrap();
    token.cancel();
    assert_eq!(producer.join().unwrap(), Err(SendError::Cancelled(2)));
    assert_eq!(collector.all(), Err(CollectError::Cancelled { dropped: 1 }));
}

#[test]
fn a_token_cancelled_before_the_collector_is_built_refuses_everything() {
    let token = CancelToken::new();
    token.cancel();
    let collector = Collector::with_token(4, token).unwrap();
    assert!(collector.is_cancelled());
    let sender = collector.sender();
    assert_eq!(sender.try_send("x"), Err(TrySendError::Cancelled("x")));
    assert_eq!(
        collector.iter().collect::<Vec<_>>(),
        [Err(CollectError::Cancelled { dropped: 0 })]
    );
}

#[test]
fn cancelling_the_collector_leaves_the_parent_token_alone() {
    let token = CancelToken::new();
    let collector = Collector::<u8>::with_token(4, token.clone()).unwrap();
    collector.cancel();
    collector.cancel(); // idempotent
    assert!(collector.is_cancelled());
    assert!(!token.is_cancelled());
    drop(collector); // stops and joins the watcher without cancelling the parent
    assert!(!token.is_cancelled());
}

#[test]
fn all_counts_the_values_it_had_taken_as_dropped_on_cancel() {
    let token = CancelToken::new();
    let collector = Collector::with_token(8, token.clone()).unwrap();
    let sender = collector.sender(); // keeps the collector open
    for n in 0..3 {
        sender.send(n).unwrap();
    }
    let consumer = thread::spawn(move || collector.all());
    // Whether `all` took the three values before the cancel or the cancel
    // dropped them from the buffer, all three are reported as dropped.
    token.cancel();
    assert_eq!(
        consumer.join().unwrap(),
        Err(CollectError::Cancelled { dropped: 3 })
    );
    // `all` consumed the collector, so the consumer is gone: that comes first.
    assert_eq!(sender.send(4), Err(SendError::Disconnected(4)));
}

#[test]
fn dropping_the_consumer_hands_back_the_value_of_a_blocked_producer() {
    // Repeated so that both interleavings (the drop before or after the
    // producer starts waiting) are exercised; each round asserts the same outcome.
    for round in 0..50 {
        let collector = Collector::new(1).unwrap();
        let sender = collector.sender();
        sender.send(1).unwrap();
        let (ready_tx, ready_rx) = mpsc::channel();
        let producer = thread::spawn(move || {
            assert_eq!(sender.try_send(2), Err(TrySendError::Full(2)));
            ready_tx.send(()).unwrap();
            let blocked = sender.send(2);
            (blocked, sender.send(3), sender.is_closed())
        });
        ready_rx.recv().unwrap();
        drop(collector);
        let (blocked, later, closed) = producer.join().unwrap();
        assert_eq!(blocked, Err(SendError::Disconnected(2)), "round {round}");
        assert_eq!(later, Err(SendError::Disconnected(3)), "round {round}");
        assert!(closed, "round {round}");
    }
}

#[test]
fn dropping_a_collector_with_a_watcher_while_producers_live_does_not_cancel_them() {
    let token = CancelToken::new();
    let collector = Collector::with_token(2, token.clone()).unwrap();
    let sender = collector.sender();
    drop(collector);
    // The consumer is gone: that, not a cancellation, is what the producer hears.
    assert_eq!(sender.send(1), Err(SendError::Disconnected(1)));
    assert!(!token.is_cancelled());
}
