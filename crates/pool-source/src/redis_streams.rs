//! The Redis Streams [`Source`]: a consumer group read with `XREADGROUP`,
//! settled with `XACK`, failures redelivered with `XCLAIM` and dead-lettered
//! with `XADD` to a second stream, idle entries of dead consumers taken over
//! with `XAUTOCLAIM`. Sync API: the consumer loop is a thread of its own.

use std::collections::HashMap;
use std::time::Duration;

use redis::streams::{
    StreamAutoClaimOptions, StreamAutoClaimReply, StreamClaimReply, StreamId,
    StreamPendingCountReply, StreamRangeReply, StreamReadOptions, StreamReadReply,
};
use redis::{Commands as _, Value};

use crate::source::{Delivery, Source};

/// One stream entry: its fields, as the producer added them (`XADD`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamEntry {
    /// Field name to value bytes.
    pub fields: HashMap<String, Vec<u8>>,
}

impl StreamEntry {
    /// The value of `field`, as bytes.
    pub fn get(&self, field: &str) -> Option<&[u8]> {
        self.fields.get(field).map(Vec::as_slice)
    }

    /// The value of `field` as text, when it is UTF-8.
    pub fn get_str(&self, field: &str) -> Option<&str> {
        self.get(field)
            .and_then(|bytes| std::str::from_utf8(bytes).ok())
    }
}

/// Where a [`RedisStreams`] source reads: the server, the stream, the group and
/// this consumer's name in it. Checked by the consumer's `build`.
#[derive(Debug, Clone)]
pub(crate) struct RedisSettings {
    pub(crate) url: String,
    pub(crate) stream: String,
    pub(crate) group: String,
    pub(crate) consumer: String,
    pub(crate) dead_letter_stream: String,
    pub(crate) min_idle: Duration,
    pub(crate) create_group: bool,
}

/// The Redis Streams source. Made by [`ConsumerBuilder::build`](crate::ConsumerBuilder::build).
pub struct RedisStreams {
    settings: RedisSettings,
    client: redis::Client,
    connection: redis::Connection,
    /// Where the next `XAUTOCLAIM` scan starts (`0-0` after a full pass).
    claim_cursor: String,
}

impl std::fmt::Debug for RedisStreams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStreams")
            .field("settings", &self.settings)
            .field("claim_cursor", &self.claim_cursor)
            .finish_non_exhaustive()
    }
}

/// How long a command may take beyond its own `BLOCK` before the connection
/// is taken as lost.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);

impl RedisStreams {
    /// Connects and, when asked, creates the group (`XGROUP CREATE … $
    /// MKSTREAM`; an existing group is kept).
    pub(crate) fn connect(settings: RedisSettings) -> Result<Self, redis::RedisError> {
        let client = redis::Client::open(settings.url.as_str())?;
        let connection = open(&client)?;
        let mut source = Self {
            settings,
            client,
            connection,
            claim_cursor: "0-0".to_owned(),
        };
        if source.settings.create_group {
            source.create_group()?;
        }
        Ok(source)
    }

    /// `XGROUP CREATE stream group 0 MKSTREAM`, where `BUSYGROUP` (the group
    /// exists) is success. The group starts at the stream's beginning, so
    /// entries added before the first consumer are not skipped.
    fn create_group(&mut self) -> Result<(), redis::RedisError> {
        let created: Result<(), _> = self.connection.xgroup_create_mkstream(
            &self.settings.stream,
            &self.settings.group,
            "0",
        );
        match created {
            Err(error) if error.code() == Some("BUSYGROUP") => Ok(()),
            other => other,
        }
    }

    /// A reply's entries as deliveries.
    fn deliveries_of(ids: Vec<StreamId>) -> Vec<Delivery<StreamEntry>> {
        ids.into_iter()
            .map(|entry| Delivery {
                id: entry.id,
                message: StreamEntry {
                    fields: entry
                        .map
                        .into_iter()
                        .map(|(name, value)| (name, bytes_of(value)))
                        .collect(),
                },
            })
            .collect()
    }
}

/// A connection with read and write timeouts, so a server that vanishes
/// mid-command turns into an error instead of a hang.
fn open(client: &redis::Client) -> Result<redis::Connection, redis::RedisError> {
    let connection = client.get_connection_with_timeout(COMMAND_TIMEOUT)?;
    connection.set_write_timeout(Some(COMMAND_TIMEOUT))?;
    Ok(connection)
}

/// A field's value as bytes (integers and other simple values as their text).
fn bytes_of(value: Value) -> Vec<u8> {
    match value {
        Value::BulkString(bytes) => bytes,
        Value::SimpleString(text) => text.into_bytes(),
        Value::Int(number) => number.to_string().into_bytes(),
        other => format!("{other:?}").into_bytes(),
    }
}

impl Source for RedisStreams {
    type Message = StreamEntry;
    type Error = redis::RedisError;

    fn fetch(
        &mut self,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<Delivery<StreamEntry>>, redis::RedisError> {
        let mut options = StreamReadOptions::default()
            .group(&self.settings.group, &self.settings.consumer)
            .count(max);
        let block_ms = usize::try_from(wait.as_millis()).unwrap_or(usize::MAX);
        if block_ms > 0 {
            options = options.block(block_ms);
        }
        self.connection
            .set_read_timeout(Some(wait + COMMAND_TIMEOUT))?;
        let reply: Option<StreamReadReply> =
            self.connection
                .xread_options(&[&self.settings.stream], &[">"], &options)?;
        Ok(reply
            .map(|reply| {
                reply
                    .keys
                    .into_iter()
                    .flat_map(|key| Self::deliveries_of(key.ids))
                    .collect()
            })
            .unwrap_or_default())
    }

    fn ack(&mut self, ids: &[String]) -> Result<usize, redis::RedisError> {
        if ids.is_empty() {
            return Ok(0);
        }
        self.connection
            .xack(&self.settings.stream, &self.settings.group, ids)
    }

    fn redeliver(
        &mut self,
        ids: &[String],
    ) -> Result<Vec<Delivery<StreamEntry>>, redis::RedisError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        // XCLAIM to ourselves with no idle time: hands the entries out again
        // and counts the delivery (entries deleted meanwhile are left out).
        let reply: StreamClaimReply = self.connection.xclaim(
            &self.settings.stream,
            &self.settings.group,
            &self.settings.consumer,
            0,
            ids,
        )?;
        Ok(Self::deliveries_of(reply.ids))
    }

    fn deliveries(&mut self, id: &str) -> Result<u64, redis::RedisError> {
        let reply: StreamPendingCountReply = self.connection.xpending_count(
            &self.settings.stream,
            &self.settings.group,
            id,
            id,
            1,
        )?;
        Ok(reply
            .ids
            .first()
            .map_or(0, |pending| pending.times_delivered as u64))
    }

    fn dead_letter(
        &mut self,
        id: &str,
        error: &str,
        deliveries: u64,
    ) -> Result<(), redis::RedisError> {
        // The entry's own fields go along, so the dead letter can be replayed.
        let original: StreamRangeReply =
            self.connection
                .xrange_count(&self.settings.stream, id, id, 1)?;
        let mut fields: Vec<(String, Vec<u8>)> = vec![
            ("id".to_owned(), id.as_bytes().to_vec()),
            ("error".to_owned(), error.as_bytes().to_vec()),
            ("deliveries".to_owned(), deliveries.to_string().into_bytes()),
            (
                "consumer".to_owned(),
                self.settings.consumer.as_bytes().to_vec(),
            ),
        ];
        for entry in Self::deliveries_of(original.ids) {
            for (name, value) in entry.message.fields {
                fields.push((format!("field:{name}"), value));
            }
        }
        // Add and acknowledge in one transaction: a dead letter is never
        // written without the entry leaving the pending list, nor the reverse.
        redis::pipe()
            .atomic()
            .xadd(&self.settings.dead_letter_stream, "*", &fields)
            .ignore()
            .xack(&self.settings.stream, &self.settings.group, &[id])
            .ignore()
            .query::<()>(&mut self.connection)
    }

    fn claim_idle(&mut self, max: usize) -> Result<Vec<Delivery<StreamEntry>>, redis::RedisError> {
        let min_idle_ms = usize::try_from(self.settings.min_idle.as_millis()).unwrap_or(usize::MAX);
        let reply: StreamAutoClaimReply = self.connection.xautoclaim_options(
            &self.settings.stream,
            &self.settings.group,
            &self.settings.consumer,
            min_idle_ms,
            &self.claim_cursor,
            StreamAutoClaimOptions::default().count(max),
        )?;
        self.claim_cursor = reply.next_stream_id;
        Ok(Self::deliveries_of(reply.claimed))
    }

    fn is_connection_error(error: &redis::RedisError) -> bool {
        error.is_io_error()
            || error.is_connection_dropped()
            || error.is_connection_refusal()
            || error.is_timeout()
            || error.is_unrecoverable_error()
    }

    fn is_interrupted(error: &redis::RedisError) -> bool {
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
        while let Some(current) = cause {
            if let Some(io) = current.downcast_ref::<std::io::Error>() {
                return io.kind() == std::io::ErrorKind::Interrupted;
            }
            cause = current.source();
        }
        error.is_io_error() && error.to_string().contains("os error 4")
    }

    fn reconnect(&mut self) -> Result<(), redis::RedisError> {
        self.connection = open(&self.client)?;
        if self.settings.create_group {
            // A server restarted without its data lost the group too.
            self.create_group()?;
        }
        Ok(())
    }
}
