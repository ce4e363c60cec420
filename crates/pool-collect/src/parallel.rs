//! `parallel` and `cancelable_parallel`: a few closures at once, every error
//! returned.
//!
//! # Design
//!
//! - **Scoped.** The closures run inside [`std::thread::scope`], so they may
//!   borrow local data (`&`, `&mut` of disjoint parts) and need not be
//!   `'static`; everything they borrow outlives the call.
//! - **One thread per closure.** The last closure runs on the calling thread,
//!   every other one on a thread of its own that lives only as long as its
//!   closure. This is for *a few* closures (load three things at once, run two
//!   phases side by side), not for thousands: for many items use a
//!   [`pool_core::Pool`] or [`map_ordered`](crate::map_ordered).
//! - **Every error, in closure order.** All closures are always awaited, and
//!   the errors come back as one [`Errors`] listing them by the position of the
//!   closure that returned them, not by when they happened, so the result of a
//!   run does not depend on scheduling. Each error carries that position.
//! - **Panics become errors.** A panicking closure is caught on its thread and
//!   reported as [`ParallelError::Panicked`] with its message, like a pool
//!   reports a panicking worker (`pool_core::PoolError::Panicked`). The others
//!   still run to their end (or see the cancellation, below), nothing hangs,
//!   and every failure is in the one list. `std::thread::scope` re-raises
//!   instead, which keeps only one of several panics and none of the errors;
//!   a caller who wants that can `panic!` on a [`ParallelError::Panicked`].
//!   The panic hook still runs, so the usual message is printed.
//! - **Cancellation.** Every run has one run token: a
//!   [child](CancelToken::child) of the caller's token for
//!   [`cancelable_parallel`] and [`Parallel::run_with`], a fresh token for
//!   [`parallel`] and [`Parallel::run`]. The first error or panic cancels it, so
//!   the other closures, which all get `&` the same run token, can stop early;
//!   cancelling the caller's token cancels it too. A closure may also cancel it
//!   itself to stop its siblings without failing. Cancellation is only a
//!   signal: a closure that never looks at the token runs to its end, and the
//!   run still waits for it. [`parallel`] is [`cancelable_parallel`] whose
//!   closures do not look.

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::thread::{self, ScopedJoinHandle};

use pool_core::__private::panic_message;
use pool_core::CancelToken;

use crate::Errors;

/// Why one closure of a [`parallel`] or [`cancelable_parallel`] run failed.
///
/// Every variant says which closure it was: `index` is the closure's position
/// in the list (or the order of [`Parallel::task`] calls), counting from 0.
///
/// ```
/// use pool_collect::{parallel, ParallelError};
///
/// let errors = parallel([1, 2, 3].map(|n| move || if n == 2 { Err("two") } else { Ok(()) }))
///     .expect_err("closure 1 fails");
/// assert_eq!(errors.iter().next(), Some(&ParallelError::Failed { index: 1, error: "two" }));
/// assert_eq!(errors.to_string(), "1 error: closure 1 failed: two");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParallelError<E> {
    /// The closure returned `Err(error)`.
    Failed {
        /// The closure's position.
        index: usize,
        /// What it returned.
        error: E,
    },
    /// The closure panicked; the panic was caught on its thread.
    Panicked {
        /// The closure's position.
        index: usize,
        /// The panic payload rendered as text (`&str` and `String` payloads;
        /// others say so).
        message: String,
    },
    /// The operating system refused to start the closure's thread, so the
    /// closure never ran (it was dropped). The run was cancelled so that the
    /// closures already started do not wait for it.
    Spawn {
        /// The closure's position.
        index: usize,
        /// The operating system's message.
        message: String,
    },
}

impl<E> ParallelError<E> {
    /// The position of the closure that failed.
    pub fn index(&self) -> usize {
        match self {
            ParallelError::Failed { index, .. }
            | ParallelError::Panicked { index, .. }
            | ParallelError::Spawn { index, .. } => *index,
        }
    }

    /// The closure's own error, if it returned one (rather than panicking or
    /// not starting).
    pub fn error(&self) -> Option<&E> {
        match self {
            ParallelError::Failed { error, .. } => Some(error),
            ParallelError::Panicked { .. } | ParallelError::Spawn { .. } => None,
        }
    }

    /// The closure's own error by value, if it returned one.
    pub fn into_error(self) -> Option<E> {
        match self {
            ParallelError::Failed { error, .. } => Some(error),
            ParallelError::Panicked { .. } | ParallelError::Spawn { .. } => None,
        }
    }

    /// Whether the closure panicked.
    pub fn is_panic(&self) -> bool {
        matches!(self, ParallelError::Panicked { .. })
    }
}

impl<E: fmt::Display> fmt::Display for ParallelError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // `{:#}` reaches the closure's error (anyhow prints its causes then).
            ParallelError::Failed { index, error } if f.alternate() => {
                write!(f, "closure {index} failed: {error:#}")
            }
            ParallelError::Failed { index, error } => write!(f, "closure {index} failed: {error}"),
            ParallelError::Panicked { index, message } => {
                write!(f, "closure {index} panicked: {message}")
            }
            ParallelError::Spawn { index, message } => {
                write!(
                    f,
                    "closure {index} did not start: cannot spawn a thread: {message}"
                )
            }
        }
    }
}

/// The closure's own error is the source, so error reporters that walk
/// `source()` chains show it. (`anyhow::Error` is not a `std::error::Error`;
/// `ParallelError<anyhow::Error>` still has `Display`, so
/// `Errors<ParallelError<anyhow::Error>>` is an error and converts into
/// `anyhow::Error` with `?`.)
impl<E: std::error::Error + 'static> std::error::Error for ParallelError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ParallelError::Failed { error, .. } => Some(error),
            ParallelError::Panicked { .. } | ParallelError::Spawn { .. } => None,
        }
    }
}

/// What a run returns: `Ok(())`, or every failure in closure order.
pub type ParallelResult<E> = Result<(), Errors<ParallelError<E>>>;

/// Runs every closure at once, waits for all of them and returns every error.
///
/// `fns` is any iterator of closures of one type; closures of different types
/// go through the [`Parallel`] builder (or box them as
/// `Box<dyn FnOnce() -> Result<(), E> + Send + '_>`, which is itself such a
/// closure). They may borrow local data. The last one runs on the calling
/// thread, every other one on a scoped thread of its own that lives as long as
/// its closure, so this is for a few closures, not thousands: for many items
/// use a [`pool_core::Pool`] or [`map_ordered`](crate::map_ordered).
///
/// The result lists every failure in closure order (not completion order); a
/// panic is caught and listed as [`ParallelError::Panicked`]. No closure is
/// cancelled: [`cancelable_parallel`] hands them a token that the first
/// failure cancels.
///
/// ```
/// use pool_collect::parallel;
///
/// let words = ["alpha", "beta", "gamma", "delta"];
/// let mut lengths = [0usize; 4];
/// // Each closure borrows the input and its own slot of the output.
/// let result = parallel(words.iter().zip(lengths.iter_mut()).map(|(word, slot)| {
///     move || {
///         *slot = word.len();
///         if word.starts_with('g') { Err(format!("{word} starts with g")) } else { Ok(()) }
///     }
/// }));
/// assert_eq!(lengths, [5, 4, 5, 5]);
/// let errors = result.expect_err("gamma fails");
/// assert_eq!(errors.len(), 1);
/// assert_eq!(errors.iter().next().map(|error| error.index()), Some(2));
/// ```
pub fn parallel<E, F>(fns: impl IntoIterator<Item = F>) -> ParallelResult<E>
where
    E: Send,
    F: FnOnce() -> Result<(), E> + Send,
{
    run_all(&CancelToken::new(), fns.into_iter().map(ignore_token))
}

/// Runs every closure at once with a shared cancellation token; the first
/// error or panic cancels it; waits for all of them and returns every error.
///
/// Each closure gets `&` the run token, a [child](CancelToken::child) of
/// `token`: it is cancelled by the first closure that returns an error or
/// panics, by a closure that cancels it, or when `token` is cancelled. The
/// others should watch it ([`CancelToken::is_cancelled`] in a loop,
/// [`CancelToken::wait_timeout`] instead of a sleep, or hand it to a pool with
/// [`pool_core::Builder::cancel_token`]) and return early; the run waits for
/// every closure either way. Cancelling the run token does not cancel `token`.
/// If `token` is already cancelled, the closures still run and see it at once.
///
/// What a closure returns after seeing the cancellation is up to it: `Ok(())`
/// keeps the list to the real failures; an error of its own (say
/// `Cancelled`) is listed like any other. Errors are in closure order, panics
/// are listed as [`ParallelError::Panicked`], and threads are as for
/// [`parallel`].
///
/// ```
/// use pool_collect::cancelable_parallel;
/// use pool_core::CancelToken;
/// use std::time::Duration;
///
/// let shutdown = CancelToken::new();
/// let result = cancelable_parallel(&shutdown, (0..3).map(|n| {
///     move |token: &CancelToken| {
///         if n == 0 {
///             return Err(format!("closure {n} gives up"));
///         }
///         // The others wait for work until the run is cancelled.
///         let cancelled = token.wait_timeout(Duration::from_secs(60));
///         assert!(cancelled);
///         Ok(())
///     }
/// }));
/// assert_eq!(result.expect_err("closure 0 fails").len(), 1);
/// assert!(!shutdown.is_cancelled()); // the caller's token is left alone
/// ```
pub fn cancelable_parallel<E, F>(
    token: &CancelToken,
    fns: impl IntoIterator<Item = F>,
) -> ParallelResult<E>
where
    E: Send,
    F: FnOnce(&CancelToken) -> Result<(), E> + Send,
{
    run_all(&token.child(), fns)
}

/// A boxed closure of a [`Parallel`] run.
type BoxedTask<'env, E> = Box<dyn FnOnce(&CancelToken) -> Result<(), E> + Send + 'env>;

/// Collects closures of different types for one [`parallel`] or
/// [`cancelable_parallel`] run.
///
/// Nothing runs until [`run`](Parallel::run) or [`run_with`](Parallel::run_with):
/// [`task`](Parallel::task) only records the closure (boxed, so closures of
/// different types fit in one run). Closures added with
/// [`cancelable_task`](Parallel::cancelable_task) get the run token; both kinds
/// mix in one run. Errors are listed in the order the closures were added.
///
/// ```
/// use pool_collect::Parallel;
/// use pool_core::CancelToken;
///
/// let config = String::from("threads = 4");
/// let mut users = Vec::new();
/// let mut orders = 0u64;
/// let result = Parallel::default()
///     .task(|| {
///         users.extend(["ann", "bob"]);
///         Ok::<(), std::io::Error>(())
///     })
///     .task(|| {
///         orders = 42;
///         Ok(())
///     })
///     .cancelable_task(|token: &CancelToken| {
///         assert!(config.contains("threads") && !token.is_cancelled());
///         Ok(())
///     })
///     .run();
/// assert!(result.is_ok());
/// assert_eq!((users.len(), orders), (2, 42));
/// ```
#[must_use = "a Parallel does nothing until `run` or `run_with` is called"]
pub struct Parallel<'env, E> {
    tasks: Vec<BoxedTask<'env, E>>,
}

impl<E> Default for Parallel<'_, E> {
    fn default() -> Self {
        Parallel { tasks: Vec::new() }
    }
}

impl<E> fmt::Debug for Parallel<'_, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Parallel")
            .field("closures", &self.tasks.len())
            .finish()
    }
}

impl<'env, E: Send + 'env> Parallel<'env, E> {
    /// Adds a closure that does not look at the run token.
    pub fn task(mut self, task: impl FnOnce() -> Result<(), E> + Send + 'env) -> Self {
        self.tasks.push(Box::new(ignore_token(task)));
        self
    }

    /// Adds a closure that gets `&` the run token (see [`cancelable_parallel`]).
    pub fn cancelable_task(
        mut self,
        task: impl FnOnce(&CancelToken) -> Result<(), E> + Send + 'env,
    ) -> Self {
        self.tasks.push(Box::new(task));
        self
    }

    /// How many closures were added.
    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    /// Whether no closure was added.
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// Runs the closures like [`parallel`], with a fresh run token (so only a
    /// failure inside the run, or a closure, cancels it).
    pub fn run(self) -> ParallelResult<E> {
        run_all(&CancelToken::new(), self.tasks)
    }

    /// Runs the closures like [`cancelable_parallel`]: the run token is a child
    /// of `token`.
    pub fn run_with(self, token: &CancelToken) -> ParallelResult<E> {
        run_all(&token.child(), self.tasks)
    }
}

/// Adapts a closure that takes no token to the shape every run uses.
fn ignore_token<E, F>(task: F) -> impl FnOnce(&CancelToken) -> Result<(), E> + Send
where
    F: FnOnce() -> Result<(), E> + Send,
{
    move |_token: &CancelToken| task()
}

/// A closure's place in the run while it goes.
enum Slot<'scope, E> {
    /// Running on a scoped thread.
    Running(ScopedJoinHandle<'scope, Result<(), ParallelError<E>>>),
    /// Finished (run inline) or never started.
    Done(Result<(), ParallelError<E>>),
}

/// Runs every task with `run_token`, the last on this thread, and gathers the
/// failures in task order.
fn run_all<E, F>(run_token: &CancelToken, tasks: impl IntoIterator<Item = F>) -> ParallelResult<E>
where
    E: Send,
    F: FnOnce(&CancelToken) -> Result<(), E> + Send,
{
    let mut tasks = tasks.into_iter().enumerate().peekable();
    thread::scope(|scope| {
        let mut slots = Vec::with_capacity(tasks.size_hint().0);
        while let Some((index, task)) = tasks.next() {
            if tasks.peek().is_none() {
                // The calling thread would only wait in `join`; it runs the last
                // closure instead, which saves one thread per run.
                slots.push(Slot::Done(run_one(index, task, run_token)));
                break;
            }
            let spawned = thread::Builder::new()
                .name(format!("parallel-{index}"))
                .spawn_scoped(scope, move || run_one(index, task, run_token));
            slots.push(match spawned {
                Ok(handle) => Slot::Running(handle),
                Err(error) => {
                    // Closures already started may be waiting for a sibling that
                    // will never run; the cancellation releases them.
                    run_token.cancel();
                    Slot::Done(Err(ParallelError::Spawn {
                        index,
                        message: error.to_string(),
                    }))
                }
            });
        }
        let mut errors = Errors::new();
        for (index, slot) in slots.into_iter().enumerate() {
            let outcome = match slot {
                Slot::Done(outcome) => outcome,
                // `run_one` catches the closure's panic, so a join error can only
                // come from a panic while dropping that panic's payload; it is
                // still this closure's failure.
                Slot::Running(handle) => handle.join().unwrap_or_else(|payload| {
                    Err(ParallelError::Panicked {
                        index,
                        message: panic_message(&*payload),
                    })
                }),
            };
            if let Err(error) = outcome {
                errors.push(error);
            }
        }
        errors.into_result()
    })
}

/// Runs one task, catching its panic; a failure cancels the run token.
fn run_one<E, F>(index: usize, task: F, run_token: &CancelToken) -> Result<(), ParallelError<E>>
where
    F: FnOnce(&CancelToken) -> Result<(), E>,
{
    // `AssertUnwindSafe`: after a panic the closure is gone; what it may have left
    // half-done in borrowed data is the caller's to judge, as with
    // `std::thread::scope`, and the caller is told through `Panicked`.
    let failure = match catch_unwind(AssertUnwindSafe(|| task(run_token))) {
        Ok(Ok(())) => return Ok(()),
        Ok(Err(error)) => ParallelError::Failed { index, error },
        Err(payload) => ParallelError::Panicked {
            index,
            message: panic_message(&*payload),
        },
    };
    run_token.cancel();
    Err(failure)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_run_is_ok() {
        let none: Vec<fn() -> Result<(), String>> = Vec::new();
        assert_eq!(parallel(none), Ok(()));
        assert!(Parallel::<String>::default().run().is_ok());
    }

    #[test]
    fn a_single_closure_runs_on_the_calling_thread() {
        let caller = thread::current().id();
        let mut ran_on = None;
        parallel([|| {
            ran_on = Some(thread::current().id());
            Ok::<(), String>(())
        }])
        .expect("no error");
        assert_eq!(ran_on, Some(caller));
    }

    #[test]
    fn panic_messages_of_every_payload_kind() {
        assert_eq!(panic_message(&"static"), "static");
        assert_eq!(panic_message(&String::from("owned")), "owned");
        assert_eq!(panic_message(&7u8), "a panic with a non-string payload");
    }

    #[test]
    fn display_names_the_closure() {
        let failed: ParallelError<&str> = ParallelError::Failed {
            index: 3,
            error: "boom",
        };
        let panicked: ParallelError<&str> = ParallelError::Panicked {
            index: 1,
            message: "oops".to_owned(),
        };
        assert_eq!(failed.to_string(), "closure 3 failed: boom");
        assert_eq!(panicked.to_string(), "closure 1 panicked: oops");
        assert_eq!((failed.index(), failed.error()), (3, Some(&"boom")));
        assert!(panicked.is_panic() && panicked.into_error().is_none());
    }
}
