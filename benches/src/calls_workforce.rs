//! W9's workforce row: a pool of `workers` threads and capacity 64 whose
//! worker returns each call's hash; tokio tasks call it with
//! `call_async(i).await?.await`, which waits for room without blocking the
//! runtime thread and then for the answer.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;

use anyhow::Context as _;
use pool_core::{Call, Ctx, Pool};

/// The result of an issued call.
pub(crate) type Pending = Pin<Box<dyn Future<Output = anyhow::Result<u64>> + Send>>;

/// A workforce pool that answers calls.
pub(crate) struct CallPool {
    /// The pool; its worker hashes.
    pool: Pool<Call<u64, u64>>,
}

impl CallPool {
    /// Builds the pool: `workers` threads, `capacity` calls queued or running.
    pub(crate) fn new(workers: usize, capacity: usize) -> anyhow::Result<Self> {
        let pool = Pool::builder()
            .workers(workers)
            .capacity(capacity)
            .build_call(|_ctx: &Ctx, call: u64| Ok::<_, Infallible>(crate::calls::work(call)))
            .context("building the workforce call pool")?;
        Ok(Self { pool })
    }

    /// One awaited call.
    pub(crate) async fn call(&self, i: u64) -> anyhow::Result<u64> {
        let handle = self
            .pool
            .call_async(i)
            .await
            .context("handing the call in")?;
        handle.await.context("the call's answer")
    }

    /// Issues a call, waiting for room only; the future awaits the answer.
    pub(crate) async fn issue(&self, i: u64) -> anyhow::Result<Pending> {
        let handle = self
            .pool
            .call_async(i)
            .await
            .context("handing the call in")?;
        Ok(Box::pin(async move {
            handle.await.context("the call's answer")
        }))
    }

    /// Closes the pool and waits for its threads; every call must have run.
    pub(crate) fn close(self) -> anyhow::Result<()> {
        let report = self.pool.wait().context("the workforce call pool")?;
        anyhow::ensure!(
            report.failed() == 0 && report.dropped() == 0,
            "the call pool failed {} and dropped {} calls",
            report.failed(),
            report.dropped()
        );
        Ok(())
    }
}
