//! Spans and events for `tracing` subscribers: the `tracing` feature.
//!
//! The rest of the crate calls these hooks unconditionally. With the feature
//! off each one is an empty `#[inline(always)]` function, or a zero-sized guard
//! without `Drop`, so nothing of them is left in the compiled pool (the hot
//! path's instruction counts are unchanged; see the crate docs). With the
//! feature on each hook is one `tracing` macro, whose cost without an
//! interested subscriber is a check of a cached level and callsite interest.
//!
//! What is emitted, with which level and fields, is listed in the crate docs
//! ("Tracing"); keep that list and this file in step.

#[cfg(feature = "tracing")]
pub(crate) use on::*;

#[cfg(not(feature = "tracing"))]
pub(crate) use off::*;

/// The target of every span and event, whatever module emits it: filters say
/// `pool_core=debug`.
#[cfg(feature = "tracing")]
macro_rules! target {
    () => {
        "pool_core"
    };
}

#[cfg(feature = "tracing")]
mod on {
    use tracing::span::EnteredSpan;

    use crate::{Ctx, ItemKey, PanicSite, PoolError, WorkerId};

    /// An entered span; leaving the scope exits it.
    pub(crate) type Guard = EnteredSpan;

    /// The span of a worker thread's whole life: maker, every job, `finish`,
    /// the worker's drop and the `on_worker_done` callback.
    #[inline]
    pub(crate) fn worker_span(index: usize) -> Guard {
        tracing::info_span!(target: target!(), "worker", worker = index).entered()
    }

    /// The span of one batch (a `Vec` of items pushed together), processed or
    /// dropped. Lone items (`batch_size(1)`, `Sender::send`) get none: they are
    /// the path where a span per item would cost most, relative to the item.
    #[inline]
    pub(crate) fn batch_span(index: usize, n_items: usize) -> Guard {
        tracing::debug_span!(target: target!(), "batch", worker = index, n_items).entered()
    }

    /// One event per recorded error, kept in the report or not (`error_limit`).
    #[cold]
    pub(crate) fn error_recorded(error: &PoolError) {
        match error {
            PoolError::Worker {
                worker,
                key,
                source,
            } => {
                let error: &(dyn std::error::Error + Send + Sync + 'static) = &**source;
                tracing::warn!(
                    target: target!(),
                    worker = worker.index(),
                    site = "work",
                    key = key.as_ref().map(tracing::field::display),
                    error,
                    "work failed"
                );
            }
            PoolError::Finish { worker, source } => {
                let error: &(dyn std::error::Error + Send + Sync + 'static) = &**source;
                tracing::error!(
                    target: target!(),
                    worker = worker.index(),
                    site = "finish",
                    error,
                    "finish failed"
                );
            }
            PoolError::Panicked {
                worker,
                site,
                key,
                message,
                ..
            } => {
                tracing::error!(
                    target: target!(),
                    worker = worker.map(crate::WorkerId::index),
                    site = site_name(*site),
                    key = key.as_ref().map(tracing::field::display),
                    panic = message.as_str(),
                    "panic caught"
                );
            }
            // Not recorded as they happen: built by `wait` from the others.
            PoolError::Cancelled { .. } | PoolError::Many { .. } => {}
        }
    }

    /// An item's call failed with `Interrupted` after the cancel: counted as
    /// dropped, not recorded as an error.
    #[cold]
    pub(crate) fn work_interrupted(worker: WorkerId, key: Option<&ItemKey>) {
        tracing::debug!(
            target: target!(),
            worker = worker.index(),
            key = key.map(tracing::field::display),
            "work interrupted"
        );
    }

    /// A short lower-case name for a panic site, fit for a field value.
    fn site_name(site: PanicSite) -> &'static str {
        match site {
            PanicSite::Work => "work",
            PanicSite::Maker => "maker",
            PanicSite::Finish => "finish",
            PanicSite::Callback => "callback",
            PanicSite::Drop => "drop",
            PanicSite::Source => "source",
        }
    }

    /// The worker is about to leave; its counts are final.
    #[cold]
    pub(crate) fn worker_finished(ctx: &Ctx) {
        let counts = ctx.counts();
        tracing::debug!(
            target: target!(),
            worker = ctx.worker_id().index(),
            processed = counts.processed,
            failed = counts.failed,
            dropped = counts.dropped,
            "worker finished"
        );
    }

    /// The pool's token was cancelled (once per pool).
    #[cold]
    pub(crate) fn pool_cancelled(submitted: u64, in_flight: usize) {
        tracing::info!(target: target!(), submitted, in_flight, "pool cancelled");
    }

    /// The pool stopped taking input (once per pool; see `Shared::close`).
    #[cold]
    pub(crate) fn pool_closed(submitted: u64) {
        tracing::debug!(target: target!(), submitted, "pool closed");
    }

    /// `Pool::set_workers` changed the number of workers.
    pub(crate) fn pool_resized(from: usize, to: usize) {
        tracing::debug!(target: target!(), from, to, "pool resized");
    }
}

/// The same hooks doing nothing: what the pool compiles to without the feature.
#[cfg(not(feature = "tracing"))]
mod off {
    use crate::{Ctx, ItemKey, PoolError, WorkerId};

    /// Stands in for an entered span: zero-sized, no `Drop`.
    pub(crate) struct Guard;

    #[inline(always)]
    pub(crate) fn worker_span(_index: usize) -> Guard {
        Guard
    }

    #[inline(always)]
    pub(crate) fn batch_span(_index: usize, _n_items: usize) -> Guard {
        Guard
    }

    #[inline(always)]
    pub(crate) fn error_recorded(_error: &PoolError) {}

    #[inline(always)]
    pub(crate) fn work_interrupted(_worker: WorkerId, _key: Option<&ItemKey>) {}

    #[inline(always)]
    pub(crate) fn worker_finished(_ctx: &Ctx) {}

    #[inline(always)]
    pub(crate) fn pool_cancelled(_submitted: u64, _in_flight: usize) {}

    #[inline(always)]
    pub(crate) fn pool_closed(_submitted: u64) {}
    pub(crate) fn pool_resized(_from: usize, _to: usize) {}
}
