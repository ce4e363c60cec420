//! Item identity and outcomes: [`ItemKey`], the name an error gives its item
//! ([`Builder::item_key`](crate::Builder::item_key)); [`Interrupted`], the
//! error of [`Ctx::check`](crate::Ctx::check) that the pool counts as an
//! interrupted item instead of a failure; and, crate-private, the key
//! function and the `on_dropped` hook as the pool keeps them.
//!
//! # Costs
//!
//! Nothing here runs per item in a pool that sets neither `item_key` nor
//! `on_dropped`: the processors test whether a key function is set once per
//! job (a batch, or a lone item), and the hook is looked at only where items
//! are dropped (after a cancel). With `item_key`, the key function runs once
//! per item (once per batch for a batch worker) before the item is handed to
//! the worker, since the worker consumes the item; the key is turned into an
//! error's field only when the item fails.

use std::any::Any;
use std::borrow::Cow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, PoisonError};

/// The key function of [`Builder::item_key`](crate::Builder::item_key), with
/// the user's key type converted in.
pub(crate) type KeyFn<T> = Box<dyn Fn(&T) -> ItemKey + Send + Sync>;

/// The callback of [`Builder::on_dropped`](crate::Builder::on_dropped).
pub(crate) type DroppedFn<T> = Box<dyn FnMut(T) + Send>;

/// What a failed item is called in [`PoolError`](crate::PoolError)s, the
/// report's errors and `tracing` events: the value that
/// [`Builder::item_key`](crate::Builder::item_key)'s function returned for it.
///
/// Integers (`u8` to `u64`, `i8` to `i64`, `usize`, `isize`) and strings
/// (`&'static str`, `String`, `Cow<'static, str>`, `Box<str>`) convert into
/// a key without allocating beyond what the string already holds; any other
/// type with `Display` and `Debug` goes through [`ItemKey::new`], which
/// boxes it. `Display` shows the value as its own `Display` does.
///
/// Keys compare (and hash) by value: integers as integers, whatever their
/// type (`ItemKey::from(7u8) == ItemKey::from(7i64)`), strings as strings,
/// and keys made with [`new`](ItemKey::new) by their `Display` text.
///
/// ```
/// use pool_core::ItemKey;
///
/// assert_eq!(ItemKey::from(42u32).as_u64(), Some(42));
/// assert_eq!(ItemKey::from("job-7").as_str(), Some("job-7"));
/// assert_eq!(ItemKey::from(format!("job-{}", 8)).to_string(), "job-8");
///
/// #[derive(Debug, PartialEq)]
/// struct JobId(u32, u32);
/// impl std::fmt::Display for JobId {
///     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
///         write!(f, "{}/{}", self.0, self.1)
///     }
/// }
/// let key = ItemKey::new(JobId(3, 1));
/// assert_eq!(key.to_string(), "3/1");
/// assert_eq!(key.downcast_ref::<JobId>(), Some(&JobId(3, 1)));
/// ```
#[derive(Clone)]
pub struct ItemKey(Repr);

#[derive(Clone)]
enum Repr {
    Int(i128),
    Text(Cow<'static, str>),
    Other(Arc<dyn KeyValue>),
}

/// What [`ItemKey::new`] accepts, made into an object.
trait KeyValue: fmt::Display + fmt::Debug + Any + Send + Sync {}

impl<K: fmt::Display + fmt::Debug + Any + Send + Sync> KeyValue for K {}

impl ItemKey {
    /// A key of any type that can be shown; boxed (one allocation). Integers
    /// and strings convert with [`From`] instead, without the box.
    pub fn new<K>(key: K) -> Self
    where
        K: fmt::Display + fmt::Debug + Send + Sync + 'static,
    {
        ItemKey(Repr::Other(Arc::new(key)))
    }

    /// The key as a `u64`, if it is an integer in that range.
    pub fn as_u64(&self) -> Option<u64> {
        match &self.0 {
            Repr::Int(value) => u64::try_from(*value).ok(),
            Repr::Text(_) | Repr::Other(_) => None,
        }
    }

    /// The key as an `i64`, if it is an integer in that range.
    pub fn as_i64(&self) -> Option<i64> {
        match &self.0 {
            Repr::Int(value) => i64::try_from(*value).ok(),
            Repr::Text(_) | Repr::Other(_) => None,
        }
    }

    /// The key as text, if it is a string.
    pub fn as_str(&self) -> Option<&str> {
        match &self.0 {
            Repr::Text(text) => Some(text),
            Repr::Int(_) | Repr::Other(_) => None,
        }
    }

    /// The key as the type it was made from with [`new`](ItemKey::new); `None`
    /// for another type, and for integers and strings (use
    /// [`as_u64`](ItemKey::as_u64), [`as_i64`](ItemKey::as_i64) and
    /// [`as_str`](ItemKey::as_str) for those).
    pub fn downcast_ref<K: Any>(&self) -> Option<&K> {
        match &self.0 {
            Repr::Other(value) => {
                let value: &dyn Any = &**value;
                value.downcast_ref::<K>()
            }
            Repr::Int(_) | Repr::Text(_) => None,
        }
    }
}

impl fmt::Display for ItemKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Repr::Int(value) => fmt::Display::fmt(value, f),
            Repr::Text(text) => f.write_str(text),
            Repr::Other(value) => fmt::Display::fmt(value, f),
        }
    }
}

impl fmt::Debug for ItemKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Repr::Int(value) => f.debug_tuple("ItemKey").field(value).finish(),
            Repr::Text(text) => f.debug_tuple("ItemKey").field(text).finish(),
            Repr::Other(value) => f.debug_tuple("ItemKey").field(value).finish(),
        }
    }
}

impl PartialEq for ItemKey {
    fn eq(&self, other: &Self) -> bool {
        match (&self.0, &other.0) {
            (Repr::Int(a), Repr::Int(b)) => a == b,
            (Repr::Text(a), Repr::Text(b)) => a == b,
            (Repr::Other(a), Repr::Other(b)) => a.to_string() == b.to_string(),
            _ => false,
        }
    }
}

impl Eq for ItemKey {}

impl Hash for ItemKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        match &self.0 {
            Repr::Int(value) => {
                state.write_u8(0);
                value.hash(state);
            }
            Repr::Text(text) => {
                state.write_u8(1);
                text.hash(state);
            }
            Repr::Other(value) => {
                state.write_u8(2);
                value.to_string().hash(state);
            }
        }
    }
}

macro_rules! int_keys {
    ($($int:ty),*) => {$(
        impl From<$int> for ItemKey {
            #[inline]
            fn from(value: $int) -> Self {
                ItemKey(Repr::Int(i128::from(value)))
            }
        }
    )*};
}

int_keys!(u8, u16, u32, u64, i8, i16, i32, i64);

impl From<usize> for ItemKey {
    #[inline]
    fn from(value: usize) -> Self {
        // `usize` is at most 64 bits on every platform Rust supports.
        ItemKey(Repr::Int(value as i128))
    }
}

impl From<isize> for ItemKey {
    #[inline]
    fn from(value: isize) -> Self {
        ItemKey(Repr::Int(value as i128))
    }
}

impl From<&'static str> for ItemKey {
    #[inline]
    fn from(text: &'static str) -> Self {
        ItemKey(Repr::Text(Cow::Borrowed(text)))
    }
}

impl From<String> for ItemKey {
    #[inline]
    fn from(text: String) -> Self {
        ItemKey(Repr::Text(Cow::Owned(text)))
    }
}

impl From<Cow<'static, str>> for ItemKey {
    #[inline]
    fn from(text: Cow<'static, str>) -> Self {
        ItemKey(Repr::Text(text))
    }
}

impl From<Box<str>> for ItemKey {
    #[inline]
    fn from(text: Box<str>) -> Self {
        ItemKey(Repr::Text(Cow::Owned(text.into_string())))
    }
}

/// The error of [`Ctx::check`](crate::Ctx::check): the work stopped because
/// the pool was cancelled.
///
/// A worker that returns it (with `?`, converted into its own error type, or
/// wrapped by middleware) after its pool was cancelled has its item counted
/// as **interrupted**, which is part of **dropped**, not failed: the error is
/// not recorded, does not count in [`Report::error_total`](crate::Report::error_total),
/// and does not trigger the error policy (the pool is cancelled already). See
/// [`Report::interrupted`](crate::Report::interrupted).
///
/// # How the pool recognises it
///
/// When a call fails and the pool is cancelled, the pool walks the error and
/// its [`source`](std::error::Error::source) chain looking for an
/// `Interrupted` ([`Interrupted::is_in`]). Wrappers that forward `source`
/// instead of naming the wrapped error (`#[error(transparent)]`, as
/// pool-middleware's `MiddlewareError::Worker` is, and the box an
/// `anyhow::Error` converts into) would hide the `Interrupted` itself, so its
/// own `source` is a private marker that the walk recognises too: an
/// `Interrupted` is found through any wrapper that keeps the source chain.
/// An error that comes back while the pool is **not** cancelled is a failure
/// like any other, whatever it holds.
///
/// `Display` says `work interrupted`; its source says `the pool was
/// cancelled`.
///
/// ```
/// use pool_core::{Ctx, Pool};
/// use std::sync::mpsc;
///
/// let (started, first_started) = mpsc::channel();
/// let pool = Pool::builder().workers(1).build(move |ctx: &Ctx, step: u32| -> anyhow::Result<()> {
///     started.send(step)?;
///     while !ctx.is_cancelled() {
///         std::thread::yield_now(); // long work, polling for a cancel
///     }
///     ctx.check()?; // stops here: the pool was cancelled
///     unreachable!("check returns the error once the pool is cancelled")
/// })?;
/// pool.sender().send(1)?;
/// first_started.recv()?;
/// pool.cancel();
/// let report = pool.join();
/// assert_eq!((report.failed(), report.interrupted(), report.dropped()), (0, 1, 1));
/// assert_eq!(report.error_total(), 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interrupted {
    cause: PoolCancelled,
}

/// The source of every [`Interrupted`]: what lets the pool find one behind
/// wrappers that forward `source` past it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PoolCancelled;

impl fmt::Display for PoolCancelled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the pool was cancelled")
    }
}

impl std::error::Error for PoolCancelled {}

impl Interrupted {
    /// The error [`Ctx::check`](crate::Ctx::check) returns. Code that stops
    /// an item because the pool was cancelled in another way (a layer that
    /// gave up waiting, say) can return it, or keep it as a source, to have
    /// the item counted as interrupted. Outside a cancel it is an ordinary
    /// error.
    pub const fn new() -> Self {
        Interrupted {
            cause: PoolCancelled,
        }
    }

    /// Whether `error`, or any error in its `source` chain, is an
    /// [`Interrupted`] (or its private source, behind a wrapper that skipped
    /// it). This is the test the pool applies to a failed item's error once
    /// it is cancelled; middleware can apply it too (not to retry such an
    /// error, say).
    ///
    /// ```
    /// use pool_core::{Ctx, Interrupted, Pool};
    /// use std::sync::{Arc, Mutex};
    ///
    /// let seen = Arc::new(Mutex::new(Vec::new()));
    /// let record = Arc::clone(&seen);
    /// let pool = Pool::builder().workers(1).build(move |ctx: &Ctx, _n: u32| {
    ///     ctx.token().cancel();
    ///     let error = anyhow::Error::from(ctx.check().unwrap_err()).context("step 2");
    ///     let boxed: Box<dyn std::error::Error + Send + Sync> = error.into();
    ///     record.lock().unwrap().push(Interrupted::is_in(&*boxed));
    ///     Err(boxed)
    /// })?;
    /// pool.sender().send(1)?;
    /// assert_eq!(pool.join().interrupted(), 1);
    /// assert_eq!(*seen.lock().unwrap(), [true]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_in(error: &(dyn std::error::Error + 'static)) -> bool {
        // The same search as `find_error`: sources, a kept `anyhow::Error`,
        // registered wrappers (a middleware error that hides its source).
        crate::find_error::<Interrupted>(error).is_some()
            || crate::find_error::<PoolCancelled>(error).is_some()
    }
}

impl Default for Interrupted {
    fn default() -> Self {
        Interrupted::new()
    }
}

impl fmt::Display for Interrupted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("work interrupted")
    }
}

impl std::error::Error for Interrupted {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.cause)
    }
}

/// The `on_dropped` callback as the pool keeps it: behind a lock (workers
/// drop items concurrently; the callback is `FnMut`), taken out once every
/// worker has left, so a callback that owns a `Sender` to its own pool
/// leaves no cycle behind.
pub(crate) struct DroppedHook<T> {
    /// Whether a callback was given: read without the lock, so a pool
    /// without one drops items as before.
    set: bool,
    callback: Mutex<Option<DroppedFn<T>>>,
}

impl<T> DroppedHook<T> {
    pub(crate) fn new(callback: Option<DroppedFn<T>>) -> Self {
        DroppedHook {
            set: callback.is_some(),
            callback: Mutex::new(callback),
        }
    }

    /// Whether dropped items go to a callback.
    #[inline]
    pub(crate) fn is_set(&self) -> bool {
        self.set
    }

    /// Runs `body` with the callback, under its lock (`None` once taken
    /// out). Every call of the callback by `body` is one item handed back.
    pub(crate) fn with<R>(&self, body: impl FnOnce(Option<&mut DroppedFn<T>>) -> R) -> R {
        let mut callback = self.callback.lock().unwrap_or_else(PoisonError::into_inner);
        body(callback.as_mut())
    }

    /// Drops the callback; call once every worker finished.
    pub(crate) fn take_out(&self) {
        let callback = self
            .callback
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        // Dropped outside the lock: its captures may be anything.
        drop(callback);
    }
}
