//! Fill-to-N batching with recycled buffers.
//!
//! A [`Batcher<T>`] collects items one at a time and hands back a full batch
//! (a `Vec<T>` of exactly `batch_size` items) from the [`push`](Batcher::push)
//! that fills it. [`flush`](Batcher::flush) hands back whatever is left. A
//! consumer that is done with a batch gives the emptied `Vec` back through
//! [`recycle`](Batcher::recycle), and the next batch is filled in that same
//! allocation, so a producer that recycles allocates nothing in its steady
//! state.
//!
//! # What it is for
//!
//! Grouping a stream of items before a step that is cheaper per item in bulk:
//! rows before a bulk `INSERT`, lines before one `write`, messages before one
//! network send, or (in `pool-core`) items before one push onto a shared work
//! queue, so the queue is touched once per batch instead of once per item.
//!
//! # What it is not for
//!
//! - It is not thread-safe and does not try to be: it takes `&mut self` and
//!   belongs to one producer. Hand the full batches to other threads instead.
//! - It knows nothing about time. It never flushes on its own after a delay;
//!   a caller that wants "at most N items or at most D milliseconds" calls
//!   [`flush`](Batcher::flush) from its own timer.
//! - It does not bound memory beyond one open batch and a few (at most four)
//!   spare buffers; batches that are handed out are the caller's to keep or
//!   drop.
//!
//! # Example: bulk insert of rows in batches of 3
//!
//! ```
//! use pool_batch::Batcher;
//!
//! struct Row {
//!     id: u32,
//! }
//!
//! /// Stands in for one bulk `INSERT`: the database is a list of inserts.
//! fn bulk_insert(database: &mut Vec<Vec<u32>>, rows: &[Row]) {
//!     database.push(rows.iter().map(|row| row.id).collect());
//! }
//!
//! let mut database: Vec<Vec<u32>> = Vec::new();
//! let mut batcher = Batcher::new(3)?;
//! for id in 1..=8 {
//!     if let Some(batch) = batcher.push(Row { id }) {
//!         bulk_insert(&mut database, &batch);
//!         // The emptied Vec becomes the buffer for the next batch.
//!         batcher.recycle(batch);
//!     }
//! }
//! if let Some(rest) = batcher.flush() {
//!     bulk_insert(&mut database, &rest);
//! }
//!
//! assert_eq!(database, vec![vec![1, 2, 3], vec![4, 5, 6], vec![7, 8]]);
//! assert!(batcher.is_empty());
//! # Ok::<(), pool_batch::BatchSizeError>(())
//! ```
//!
//! # Items are never lost silently
//!
//! Every pushed item comes back exactly once, in push order: in a full batch
//! from [`push`](Batcher::push) or in the partial batch from
//! [`flush`](Batcher::flush). Both are `#[must_use]`. The only places where
//! the `Batcher` drops items are the ones you ask for: [`recycle`](Batcher::recycle)
//! clears the `Vec` it is given, and dropping a `Batcher` drops the items of
//! its open batch, so call `flush` first.

// On docs.rs (`--cfg docsrs`), items behind a feature say which one.
#![cfg_attr(docsrs, feature(doc_cfg))]

use std::alloc::Layout;
use std::fmt;
use std::mem;

/// How many emptied buffers a [`Batcher`] keeps for reuse.
///
/// A producer that recycles every batch before the next one fills needs one
/// spare; a few more cover consumers that hold two or three batches at a time.
/// Beyond this bound [`Batcher::recycle`] drops the buffer, so a burst of
/// recycled batches cannot pin an unbounded amount of memory.
const MAX_SPARES: usize = 4;

/// The `batch_size` given to [`Batcher::new`] cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BatchSizeError {
    /// `batch_size` was 0; a batch must hold at least one item.
    #[error("batch_size must be at least 1, got 0")]
    Zero,
    /// A `Vec<T>` with room for `batch_size` items would need more than
    /// `isize::MAX` bytes, which no allocation can provide.
    #[error(
        "batch_size {batch_size} is too large for this item type: \
         a batch would need more than isize::MAX bytes (the largest batch_size is {max})"
    )]
    TooLarge {
        /// The rejected `batch_size`.
        batch_size: usize,
        /// The largest `batch_size` whose buffer layout fits in `isize::MAX` bytes.
        max: usize,
    },
}

/// Collects items into batches of exactly `batch_size` and reuses emptied
/// batch buffers.
///
/// See the [crate documentation](crate) for what it is for and an example.
///
/// Memory: a new `Batcher` allocates nothing. The first [`push`](Self::push)
/// after creation, after a fill and after a flush takes a spare buffer, or
/// allocates one with capacity `batch_size` if there is none. A fill or flush
/// leaves the `Batcher` without a buffer until that push, so a batch recycled
/// in between is the one that gets filled next, and pushing never reallocates.
pub struct Batcher<T> {
    batch_size: usize,
    /// The open batch. It has capacity 0 (no allocation) until the first push
    /// after creation, a fill or a flush; from then on its capacity is at least
    /// `batch_size`, so pushing into it never reallocates.
    open: Vec<T>,
    /// Emptied buffers, each with capacity at least `batch_size`, at most
    /// [`MAX_SPARES`] of them. Used last in, first out: the most recently
    /// recycled buffer is the one most likely still in cache.
    spares: Vec<Vec<T>>,
}

impl<T> Batcher<T> {
    /// Creates a `Batcher` that hands out batches of `batch_size` items.
    ///
    /// Allocates nothing; the first buffer is allocated by the first push.
    ///
    /// # Errors
    ///
    /// - [`BatchSizeError::Zero`] if `batch_size` is 0.
    /// - [`BatchSizeError::TooLarge`] if a `Vec<T>` of `batch_size` items would
    ///   exceed `isize::MAX` bytes. This only rejects sizes that can never be
    ///   allocated; a size that passes may still be more memory than the
    ///   machine has.
    pub fn new(batch_size: usize) -> Result<Self, BatchSizeError> {
        if batch_size == 0 {
            return Err(BatchSizeError::Zero);
        }
        // `Vec::with_capacity` accepts exactly the lengths `Layout::array` accepts,
        // so checking here means the lazy allocation in `push` cannot hit a
        // capacity overflow panic.
        if Layout::array::<T>(batch_size).is_err() {
            return Err(BatchSizeError::TooLarge {
                batch_size,
                max: max_batch_size::<T>(),
            });
        }
        Ok(Self {
            batch_size,
            open: Vec::new(),
            spares: Vec::new(),
        })
    }

    /// Adds `item` to the open batch and returns the batch if this push filled it.
    ///
    /// The returned `Vec` holds exactly [`batch_size`](Self::batch_size) items in
    /// push order. After a fill the `Batcher` is empty; the next push continues
    /// in a spare buffer (see [`recycle`](Self::recycle)) or, if there is none,
    /// in a newly allocated one of capacity `batch_size`.
    #[must_use = "the returned batch holds the pushed items; dropping it drops them"]
    #[inline]
    pub fn push(&mut self, item: T) -> Option<Vec<T>> {
        if self.open.capacity() == 0 {
            self.open = self.take_buffer();
        }
        self.open.push(item);
        if self.open.len() == self.batch_size {
            Some(mem::take(&mut self.open))
        } else {
            None
        }
    }

    /// Returns the open batch if it holds any items, else `None`.
    ///
    /// The returned batch has between 1 and `batch_size - 1` items. The
    /// `Batcher` is empty afterwards and can be pushed into again.
    #[must_use = "the returned batch holds the pushed items; dropping it drops them"]
    pub fn flush(&mut self) -> Option<Vec<T>> {
        if self.open.is_empty() {
            None
        } else {
            Some(mem::take(&mut self.open))
        }
    }

    /// Gives back a batch buffer for reuse.
    ///
    /// The `Vec` is cleared (any items still in it are dropped) and kept as a
    /// spare if its capacity is at least `batch_size` and fewer than four
    /// spares are held; otherwise it is dropped, so a burst of recycled batches
    /// cannot pin an unbounded amount of memory. Any `Vec` may be given, not
    /// only one this `Batcher` handed out.
    pub fn recycle(&mut self, mut batch: Vec<T>) {
        batch.clear();
        if batch.capacity() < self.batch_size || self.spares.len() >= MAX_SPARES {
            return;
        }
        if self.spares.capacity() == 0 {
            // One allocation for the spare list, the first time it is needed.
            self.spares.reserve_exact(MAX_SPARES);
        }
        self.spares.push(batch);
    }

    /// The number of items in the open batch, always less than `batch_size`.
    #[must_use]
    pub fn len(&self) -> usize {
        self.open.len()
    }

    /// `true` if the open batch holds no items.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.open.is_empty()
    }

    /// The number of items in a full batch, as given to [`new`](Self::new).
    #[must_use]
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// The number of spare buffers held for reuse, at most [`MAX_SPARES`].
    #[must_use]
    fn spare_count(&self) -> usize {
        self.spares.len()
    }

    /// A spare buffer if there is one, else a new one with room for a full batch.
    /// Once per batch, so out of line: `push` stays small enough to inline.
    #[inline(never)]
    fn take_buffer(&mut self) -> Vec<T> {
        self.spares
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(self.batch_size))
    }
}

impl<T> fmt::Debug for Batcher<T> {
    /// Shows the sizes only, so `T` need not be `Debug`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Batcher")
            .field("batch_size", &self.batch_size)
            .field("len", &self.open.len())
            .field("spare_count", &self.spare_count())
            .finish()
    }
}

/// The largest length `Layout::array::<T>` accepts: the byte size, rounded up
/// to the alignment, must not exceed `isize::MAX`.
fn max_batch_size<T>() -> usize {
    let item_size = mem::size_of::<T>();
    if item_size == 0 {
        return usize::MAX;
    }
    // `isize::MAX` is non-negative, so the cast is lossless.
    let max_bytes = isize::MAX as usize - (mem::align_of::<T>() - 1);
    max_bytes / item_size
}

/// Tests the README's example as a doc test, so it cannot drift from the code.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

#[cfg(test)]
mod tests;
