//! Every bad setting fails `build()` with an error naming it; a server that is
//! not there fails it with a message saying how to get one.

mod support;

use std::time::Duration;

use pool_core::Ctx;
use pool_source::{BuildError, Consumer, ConsumerBuilder, Delivery, StreamEntry};

fn complete(url: &str) -> ConsumerBuilder {
    Consumer::redis(url)
        .stream("jobs")
        .group("g")
        .consumer("c")
        .pool(|builder| {
            builder
                .workers(1)
                .build(|_: &Ctx, _: Delivery<StreamEntry>| Ok::<(), std::io::Error>(()))
        })
}

fn message(builder: ConsumerBuilder) -> String {
    builder
        .build()
        .expect_err("a bad setting fails the build")
        .to_string()
}

#[test]
fn each_bad_setting_is_named() {
    let url = format!("redis://127.0.0.1:{}/", support::free_port());
    let cases: Vec<(ConsumerBuilder, &str)> = vec![
        (
            Consumer::redis(&url).group("g").consumer("c"),
            "`stream` is required",
        ),
        (complete(&url).group(""), "`group` must not be empty"),
        (
            complete(&url).max_deliveries(0),
            "`max_deliveries` must be at least 1",
        ),
        (
            complete(&url).min_idle(Duration::ZERO),
            "`min_idle` must be longer than zero",
        ),
        (
            complete(&url).claim_interval(Duration::ZERO),
            "`claim_interval`",
        ),
        (complete(&url).read_block(Duration::ZERO), "`read_block`"),
        (
            complete(&url).dead_letter_stream("jobs"),
            "`dead_letter_stream` must differ",
        ),
        (
            Consumer::redis(&url).stream("s").group("g").consumer("c"),
            "`pool` is required",
        ),
        (
            complete(&url).pool(|builder| {
                builder.build(|_: &Ctx, _: Delivery<StreamEntry>| Ok::<(), std::io::Error>(()))
            }),
            "`pool`",
        ),
        (complete("http://nowhere"), "`url` is not a Redis URL"),
    ];
    for (builder, expected) in cases {
        let text = message(builder);
        assert!(
            text.contains(expected),
            "{text:?} should contain {expected:?}"
        );
    }
}

#[test]
fn a_refused_connection_says_how_to_get_a_server() {
    let url = format!("redis://127.0.0.1:{}/", support::free_port());
    let error = complete(&url).build().expect_err("nobody listens there");
    assert!(matches!(error, BuildError::Connect { .. }), "{error:?}");
    let text = error.to_string();
    assert!(text.contains("redis-server --port"), "{text}");
    assert!(text.contains("apt-get install redis-server"), "{text}");
}
