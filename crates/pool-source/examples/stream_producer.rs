//! A producer: adds `--count` entries `{n: 0..count}` to a stream, in
//! pipelines of 1,000 `XADD`s, and prints how long it took.
//!
//! ```text
//! cargo run -p pool-source --example stream_producer -- --url redis://127.0.0.1:6379/ --stream jobs --count 100000
//! ```

use std::time::Instant;

fn main() -> anyhow::Result<()> {
    let mut url = "redis://127.0.0.1:6379/".to_owned();
    let mut stream = "jobs".to_owned();
    let mut count: u64 = 100_000;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .ok_or_else(|| anyhow::anyhow!("{flag} needs a value"))?;
        match flag.as_str() {
            "--url" => url = value,
            "--stream" => stream = value,
            "--count" => count = value.parse()?,
            other => anyhow::bail!("unknown flag {other} (expected --url, --stream, --count)"),
        }
    }
    let mut connection = redis::Client::open(url.as_str())?.get_connection()?;
    let started = Instant::now();
    let mut next = 0;
    while next < count {
        let end = (next + 1_000).min(count);
        let mut pipe = redis::pipe();
        for n in next..end {
            pipe.cmd("XADD")
                .arg(&stream)
                .arg("*")
                .arg("n")
                .arg(n)
                .ignore();
        }
        pipe.query::<()>(&mut connection)?;
        next = end;
    }
    println!(
        "produced {count} entries to {stream} in {:?}",
        started.elapsed()
    );
    Ok(())
}
