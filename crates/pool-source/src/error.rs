//! The consumer's errors: one per verb (`build`, `run`).

use std::time::Duration;

/// A consumer that could not be built: a bad setting (named), a pool that
/// would not build, or a server that could not be reached.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// A required setting was not given.
    #[error("`{0}` is required")]
    Missing(&'static str),
    /// A name setting was empty.
    #[error("`{0}` must not be empty")]
    Empty(&'static str),
    /// `max_deliveries` was 0: an entry must be delivered at least once.
    #[error("`max_deliveries` must be at least 1 (got 0)")]
    ZeroMaxDeliveries,
    /// A duration setting was zero.
    #[error("`{0}` must be longer than zero")]
    ZeroDuration(&'static str),
    /// The dead-letter stream was the stream itself.
    #[error("`dead_letter_stream` must differ from `stream` (both are `{0}`)")]
    DeadLetterIsStream(String),
    /// `pool` was not given, or its builder failed.
    #[error("`pool`: {0}")]
    Pool(#[from] pool_core::BuildError),
    /// The URL could not be parsed.
    #[error("`url` is not a Redis URL ({url}): {source}")]
    Url {
        /// The URL given.
        url: String,
        /// Why.
        source: redis::RedisError,
    },
    /// The server could not be reached.
    #[error(
        "could not connect to Redis at {url}: {source}. Is a server running there? \
         Start one with `redis-server --port <port>` (install it with \
         `apt-get install redis-server` or `brew install redis`)"
    )]
    Connect {
        /// The URL given.
        url: String,
        /// Why.
        source: redis::RedisError,
    },
    /// A command at start-up (creating the group) was refused.
    #[error("Redis refused `{command}`: {source}")]
    Command {
        /// The command.
        command: &'static str,
        /// Why.
        source: redis::RedisError,
    },
}

/// Why a consumer's run ended with an error; the report of what was done
/// until then is inside.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// The broker refused a command (not a lost connection, which the loop
    /// survives by reconnecting).
    #[error("the broker refused a command: {source}")]
    Broker {
        /// The broker's error.
        source: Box<dyn std::error::Error + Send + Sync>,
        /// What was done before it.
        report: Box<crate::ConsumerReport>,
    },
    /// The connection stayed lost for longer than `reconnect_for`.
    #[error("the connection was lost and not back after {waited:?}: {source}")]
    ConnectionLost {
        /// How long the loop tried.
        waited: Duration,
        /// The last error.
        source: Box<dyn std::error::Error + Send + Sync>,
        /// What was done before it.
        report: Box<crate::ConsumerReport>,
    },
}
