//! A `Collector` delivers every accepted value exactly once and then ends:
//! iteration, `all`, many producers, closing (also twice) and the rule that the
//! last dropped sender closes it. No test sleeps; threads meet on channels and
//! joins, and each assertion can fail.

#![allow(clippy::unwrap_used)]

use std::sync::mpsc;
use std::thread;

use pool_collect::{Collector, CollectorBuildError, SendError, TrySendError};
use rstest::rstest;

#[test]
fn iteration_yields_one_producers_values_in_order_and_ends_when_its_sender_is_dropped() {
    let collector = Collector::new(4).unwrap();
    let sender = collector.sender();
    let producer = thread::spawn(move || {
        for n in 0..1_000u32 {
            sender.send(n).unwrap();
        }
    });
    let values: Vec<u32> = collector.iter().map(Result::unwrap).collect();
    producer.join().unwrap();
    assert_eq!(values, (0..1_000).collect::<Vec<_>>());
    assert!(collector.is_closed());
    // The iterator is fused: a second pass finds the collector closed and empty.
    assert_eq!(collector.iter().count(), 0);
}

#[rstest]
#[case::capacity_one(1)]
#[case::capacity_three(3)]
#[case::capacity_larger_than_the_stream(10_000)]
fn all_returns_every_value_from_many_producers_exactly_once(#[case] capacity: usize) {
    const PRODUCERS: u64 = 8;
    const PER_PRODUCER: u64 = 500;
    let collector = Collector::new(capacity).unwrap();
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|producer| {
            let sender = collector.sender();
            thread::spawn(move || {
                for n in 0..PER_PRODUCER {
                    sender.send(producer * PER_PRODUCER + n).unwrap();
                }
            })
        })
        .collect();
    let mut values = collector.all().unwrap();
    for producer in producers {
        producer.join().unwrap();
    }
    assert_eq!(values.len() as u64, PRODUCERS * PER_PRODUCER);
    values.sort_unstable();
    assert_eq!(values, (0..PRODUCERS * PER_PRODUCER).collect::<Vec<_>>());
}

#[test]
fn each_producer_keeps_its_own_order_among_many() {
    let collector = Collector::new(2).unwrap();
    let producers: Vec<_> = (0..4u32)
        .map(|producer| {
            let sender = collector.sender();
            thread::spawn(move || {
                for n in 0..300u32 {
                    sender.send((producer, n)).unwrap();
                }
            })
        })
        .collect();
    let mut next = [0u32; 4];
    for value in &collector {
        let (producer, n) = value.unwrap();
        assert_eq!(
            n, next[producer as usize],
            "producer {producer} out of order"
        );
        next[producer as usize] += 1;
    }
    for producer in producers {
        producer.join().unwrap();
    }
    assert_eq!(next, [300; 4]);
}

#[test]
fn closing_twice_is_harmless_and_buffered_values_are_still_delivered() {
    let collector = Collector::new(4).unwrap();
    let sender = collector.sender();
    sender.send(1).unwrap();
    sender.send(2).unwrap();
    collector.close();
    collector.close();
    sender.close();
    assert!(collector.is_closed());
    assert!(sender.is_closed());
    assert_eq!(sender.send(3), Err(SendError::Closed(3)));
    assert_eq!(sender.try_send(4), Err(TrySendError::Closed(4)));
    drop(sender); // the last sender of a closed collector: nothing changes
    assert_eq!(collector.all().unwrap(), [1, 2]);
}

#[test]
fn close_wakes_a_consumer_waiting_on_an_empty_collector() {
    let collector = Collector::new(4).unwrap();
    let sender = collector.sender(); // stays alive: only `close` can end the stream
    let (seen_tx, seen_rx) = mpsc::channel();
    thread::scope(|scope| {
        let consumer = scope.spawn(|| {
            let mut values = Vec::new();
            for value in collector.iter() {
                values.push(value.unwrap());
                seen_tx.send(()).unwrap();
            }
            values
        });
        sender.send(7).unwrap();
        // The consumer has taken the value, so it is iterating and about to wait.
        seen_rx.recv().unwrap();
        collector.close();
        assert_eq!(consumer.join().unwrap(), [7]);
    });
    assert_eq!(sender.send(8), Err(SendError::Closed(8)));
}

#[test]
fn close_hands_the_value_of_a_blocked_producer_back() {
    let collector = Collector::new(1).unwrap();
    let sender = collector.sender();
    sender.send(1).unwrap();
    let (ready_tx, ready_rx) = mpsc::channel();
    thread::scope(|scope| {
        let producer = scope.spawn(|| {
            // The collector is full, so the blocking submit below waits
            // (unless the close below is quicker; both end the same way).
            assert_eq!(sender.try_send(2), Err(TrySendError::Full(2)));
            ready_tx.send(()).unwrap();
            sender.send(2)
        });
        ready_rx.recv().unwrap();
        collector.close();
        assert_eq!(producer.join().unwrap(), Err(SendError::Closed(2)));
    });
    drop(sender);
    assert_eq!(collector.all().unwrap(), [1]);
}

#[test]
fn a_sender_count_of_zero_closes_nothing_until_the_consumer_looks() {
    // Regression: with "the last dropped sender closes", a loop that takes a
    // sender, spawns a producer with it, and takes the next one could find the
    // collector closed under it when an early producer finished first.
    let collector = Collector::new(8).unwrap();
    let first = collector.sender();
    first.send('a').unwrap();
    drop(first);
    assert!(!collector.is_closed());
    let second = collector.sender();
    let third = second.clone();
    second.send('b').unwrap();
    drop(second);
    third.send('c').unwrap();
    drop(third);
    assert!(
        !collector.is_closed(),
        "only the consumer closes on an empty, senderless collector"
    );
    let values: Vec<char> = collector.iter().map(Result::unwrap).collect();
    assert_eq!(values, ['a', 'b', 'c']);
    // Having found it empty with no sender alive, the consumer closed it.
    assert!(collector.is_closed());
    let late = collector.sender();
    assert_eq!(late.send('d'), Err(SendError::Closed('d')));
}

#[test]
fn a_consumer_waiting_when_the_last_sender_drops_finishes() {
    let collector = Collector::<u8>::new(2).unwrap();
    let sender = collector.sender();
    let (seen_tx, seen_rx) = mpsc::channel();
    thread::scope(|scope| {
        let consumer = scope.spawn(|| {
            let mut values = Vec::new();
            for value in collector.iter() {
                values.push(value.unwrap());
                seen_tx.send(()).unwrap();
            }
            values
        });
        sender.send(9).unwrap();
        seen_rx.recv().unwrap(); // the consumer iterates and is about to wait
        drop(sender);
        assert_eq!(consumer.join().unwrap(), [9]);
    });
}

#[test]
fn a_full_collector_refuses_try_submit_and_takes_the_value_once_there_is_room() {
    let collector = Collector::new(2).unwrap();
    let sender = collector.sender();
    sender.try_send(1).unwrap();
    sender.try_send(2).unwrap();
    assert_eq!(collector.len(), 2);
    let refused = sender.try_send(3).unwrap_err();
    assert_eq!(refused, TrySendError::Full(3));
    assert_eq!(collector.iter().next(), Some(Ok(1)));
    sender.try_send(refused.into_inner()).unwrap();
    drop(sender);
    assert_eq!(collector.all().unwrap(), [2, 3]);
}

#[test]
fn zero_capacity_is_a_typed_error_naming_the_setting() {
    let error = Collector::<u8>::new(0).unwrap_err();
    assert_eq!(error, CollectorBuildError::ZeroCapacity);
    assert!(error.to_string().contains("`capacity`"), "{error}");
    let token = pool_core::CancelToken::new();
    assert_eq!(
        Collector::<u8>::with_token(0, token).unwrap_err(),
        CollectorBuildError::ZeroCapacity
    );
}
