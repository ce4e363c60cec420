//! The `async` feature: a collector's consumer as a future
//! ([`Collector::recv_async`]) or a `futures_core::Stream`
//! ([`Collector::stream`]), on any runtime.
//!
//! An async consumer takes the same step as a sync one, under the lock
//! (`Shared::take`). When it must wait it registers a listener at
//! `readable_async` and counts itself in `async_consumers`, both under the
//! lock; every change that ends a wait is made under the lock and then
//! notifies the listeners if the count says any wait (one more per value,
//! all on close, cancel or the last sender's drop). The registration and
//! the notification are ordered by the lock, so no wake-up is lost; with no
//! async consumer, producers pay nothing for it. A consumer that is woken
//! uncounts itself under the lock before it looks; one dropped while
//! registered uncounts itself in its `Drop`, and `event_listener` passes a
//! notification it got on to another listener.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use event_listener::EventListener;

use super::{CollectError, Collector};

/// One async consumer's registration.
#[derive(Default)]
struct Reader {
    listener: Option<EventListener>,
    counted: bool,
}

impl<V> Collector<V> {
    /// The next value, waiting without blocking the thread: the async step
    /// of [`iter`](Collector::iter). `None` once the stream has ended
    /// (closed and drained, or every sender gone and nothing left); after a
    /// cancel, one `Some(Err(CollectError::Cancelled))` and then `None`.
    ///
    /// Cancel-safe: a future dropped before it completed took no value.
    ///
    /// ```
    /// use pool_collect::Collector;
    ///
    /// let collector = Collector::new(4)?;
    /// let sender = collector.sender();
    /// let producer = std::thread::spawn(move || {
    ///     for n in 0..10u32 { sender.send(n).expect("the consumer is reading"); }
    /// });
    /// let runtime = tokio::runtime::Builder::new_current_thread().build()?;
    /// let sum = runtime.block_on(async {
    ///     let mut sum = 0;
    ///     while let Some(value) = collector.recv_async().await {
    ///         sum += value.expect("not cancelled");
    ///     }
    ///     sum
    /// });
    /// producer.join().expect("producer thread");
    /// assert_eq!(sum, 45);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn recv_async(&self) -> RecvFuture<'_, V> {
        RecvFuture {
            collector: self,
            reader: Reader::default(),
        }
    }

    /// The values as a [`futures_core::Stream`], as they arrive: the async
    /// [`iter`](Collector::iter), with the same items and the same end.
    ///
    /// ```
    /// use futures_util::StreamExt;
    /// use pool_collect::Collector;
    ///
    /// let collector = Collector::new(16)?;
    /// let sender = collector.sender();
    /// std::thread::spawn(move || {
    ///     for word in ["a", "b", "c"] { sender.send(word).expect("the consumer is reading"); }
    /// });
    /// let runtime = tokio::runtime::Builder::new_current_thread().build()?;
    /// let words: Vec<_> = runtime.block_on(collector.stream().map(|word| word.expect("not cancelled")).collect());
    /// assert_eq!(words, ["a", "b", "c"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn stream(&self) -> CollectorStream<'_, V> {
        CollectorStream {
            collector: self,
            reader: Reader::default(),
        }
    }

    /// One step of an async consumer (see the module notes).
    fn poll_recv(
        &self,
        reader: &mut Reader,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<V, CollectError>>> {
        let shared = &*self.shared;
        loop {
            if let Some(listener) = reader.listener.as_mut() {
                match Pin::new(listener).poll(cx) {
                    Poll::Ready(()) => reader.listener = None,
                    Poll::Pending => return Poll::Pending,
                }
            }
            let mut state = shared.lock();
            let discarded = shared.sync_token(&mut state);
            if reader.counted {
                reader.counted = false;
                state.async_consumers -= 1;
            }
            let outcome = shared.take(&mut state);
            if outcome.is_none() {
                reader.listener = Some(shared.readable_async.listen());
                reader.counted = true;
                state.async_consumers += 1;
            }
            drop(state);
            // Values a cancel dropped are dropped outside the lock.
            drop(discarded);
            if let Some(outcome) = outcome {
                return Poll::Ready(outcome);
            }
        }
    }

    /// Uncounts a reader that is dropped while registered.
    fn leave(&self, reader: &mut Reader) {
        reader.listener = None;
        if reader.counted {
            reader.counted = false;
            self.shared.lock().async_consumers -= 1;
        }
    }
}

/// The future of [`Collector::recv_async`].
#[must_use = "a future does nothing unless polled"]
pub struct RecvFuture<'a, V> {
    collector: &'a Collector<V>,
    reader: Reader,
}

impl<V> fmt::Debug for RecvFuture<'_, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecvFuture").finish_non_exhaustive()
    }
}

impl<V> Future for RecvFuture<'_, V> {
    type Output = Option<Result<V, CollectError>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        this.collector.poll_recv(&mut this.reader, cx)
    }
}

impl<V> Drop for RecvFuture<'_, V> {
    fn drop(&mut self) {
        self.collector.leave(&mut self.reader);
    }
}

/// The stream of [`Collector::stream`]: each item is `Ok(value)`, a cancel
/// ends it with one `Err(CollectError::Cancelled)`, and once it returned
/// `None` it keeps returning `None`.
#[must_use = "a stream does nothing unless polled"]
pub struct CollectorStream<'a, V> {
    collector: &'a Collector<V>,
    reader: Reader,
}

impl<V> fmt::Debug for CollectorStream<'_, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CollectorStream").finish_non_exhaustive()
    }
}

impl<V> futures_core::Stream for CollectorStream<'_, V> {
    type Item = Result<V, CollectError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        this.collector.poll_recv(&mut this.reader, cx)
    }
}

impl<V> Drop for CollectorStream<'_, V> {
    fn drop(&mut self) {
        self.collector.leave(&mut self.reader);
    }
}
