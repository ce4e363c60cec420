//! The broker side of a consumer: the [`Source`] trait every engine
//! implements, and what it hands out ([`Delivery`]).

use std::time::Duration;

/// One entry handed to the pool: the broker's id for it and the message.
///
/// The consumer remembers the id while the entry is in flight and settles it
/// from the item's outcome: acknowledged after success, redelivered or
/// dead-lettered after failure, left pending when the item was dropped.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery<M> {
    /// The broker's id of the entry (a Redis stream id such as `1700000000000-0`).
    pub id: String,
    /// The entry itself.
    pub message: M,
}

/// A broker that hands out entries to one consumer of a group and takes back
/// their outcomes: the part of a consumer that knows the engine.
///
/// The consumer loop (see [`Consumer`](crate::Consumer)) calls it from one
/// thread only. The contract, which other engines (NATS JetStream with
/// explicit acks, Postgres with `SELECT … FOR UPDATE SKIP LOCKED`) can meet
/// as well as Redis Streams:
///
/// - [`fetch`](Source::fetch) hands out at most `max` new entries, waiting at
///   most `wait` for the first; an entry handed out stays the consumer's
///   ("pending") until it is acknowledged, dead-lettered or claimed by another
///   consumer.
/// - [`ack`](Source::ack) settles entries that succeeded, many at once.
/// - [`redeliver`](Source::redeliver) hands entries that failed out again,
///   counting the delivery; [`deliveries`](Source::deliveries) says how often
///   an entry was handed out.
/// - [`dead_letter`](Source::dead_letter) moves an entry that failed too
///   often out of the way, with its error text, and settles it.
/// - [`claim_idle`](Source::claim_idle) takes over entries another consumer
///   left pending longer than the idle time.
/// - An entry that is never settled (the item was dropped, the process died)
///   stays pending for redelivery.
pub trait Source {
    /// What an entry carries.
    type Message: Send + 'static;
    /// The engine's error.
    type Error: std::error::Error + Send + Sync + 'static;

    /// At most `max` (≥ 1) entries never handed out before, waiting at most
    /// `wait` when there are none (`Duration::ZERO`: do not wait).
    fn fetch(
        &mut self,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<Delivery<Self::Message>>, Self::Error>;

    /// Settles entries that succeeded; returns how many the broker settled
    /// (an entry already settled or no longer pending is not counted).
    fn ack(&mut self, ids: &[String]) -> Result<usize, Self::Error>;

    /// Hands the named entries (pending for this consumer) out again, each
    /// delivery counted. Entries the broker no longer has are left out.
    fn redeliver(&mut self, ids: &[String]) -> Result<Vec<Delivery<Self::Message>>, Self::Error>;

    /// How many times the entry has been handed out (0 when it is no longer
    /// pending).
    fn deliveries(&mut self, id: &str) -> Result<u64, Self::Error>;

    /// Moves the entry to the dead letters with `error` and its delivery
    /// count, and settles it.
    fn dead_letter(&mut self, id: &str, error: &str, deliveries: u64) -> Result<(), Self::Error>;

    /// At most `max` entries that other consumers left pending for at least
    /// the idle time, now handed to this one.
    fn claim_idle(&mut self, max: usize) -> Result<Vec<Delivery<Self::Message>>, Self::Error>;

    /// Whether `error` means the connection is gone (the loop reconnects)
    /// rather than a refused command (the loop stops with it).
    fn is_connection_error(error: &Self::Error) -> bool;

    /// Whether `error` is a system call cut short by a signal (Ctrl-C during a
    /// blocking read): the loop reconnects at once, without counting it.
    fn is_interrupted(error: &Self::Error) -> bool {
        let _ = error;
        false
    }

    /// Opens a new connection after a connection error.
    fn reconnect(&mut self) -> Result<(), Self::Error>;
}
