//! Finding an error of a given type inside any error: [`find_error`], the
//! boxing that keeps an `anyhow::Error` searchable ([`box_error`]), and the
//! registry of wrappers whose `source` skips what they wrap ([`SeeThrough`]).
//!
//! # What the walk sees through
//!
//! `find_error::<E>(error)` looks at `error`, then at each error of its
//! `source()` chain, and returns the first that is an `E`. On the way it sees
//! through what a plain `downcast_ref` on each link misses:
//!
//! - **`anyhow::Error`.** anyhow's own conversion into a boxed error
//!   (`From<anyhow::Error> for Box<dyn Error + Send + Sync>`) hides the
//!   error it was made from (the outermost one, under any context) behind a
//!   private type: `downcast_ref` never finds it, and `source()` skips it. So the pool boxes worker errors with [`box_error`],
//!   which keeps an `anyhow::Error` whole inside a private wrapper (whose
//!   `Display`, `Debug` and `source` are those of anyhow's own conversion,
//!   so messages and chains read as before), and the walk asks it with
//!   `anyhow::Error::downcast_ref`, which also looks through `.context(..)`.
//! - **[`PoolError::Many`].** Each retained error is searched, in order.
//! - **Transparent wrappers** (`#[error(transparent)]` variants such as
//!   pool-middleware's `MiddlewareError::Worker(inner)`): their `Display` is
//!   `inner`'s and their `source()` is `inner.source()`, so `inner` itself is
//!   in no chain. Such a type implements [`SeeThrough`] and is registered with
//!   [`see_through`]; the walk then continues from the error it wraps.
//!
//! # Why a registry
//!
//! The walk holds a `&dyn Error` and can only ask it "are you type X?" for
//! types it can name; pool-core cannot name pool-middleware's types (it is
//! the lower crate), and stable Rust has no way to ask a `dyn Error` for what
//! it wraps (`Error::provide` is unstable). Making the wrapper visible in the
//! chain instead (`source()` returning `inner`) would print the worker's
//! message twice in every chain report (`{:#}`, `Caused by:` lists). So a
//! crate with such a wrapper registers, once, a function that looks inside
//! it; registering is idempotent and cheap, and reading the registry happens
//! only when a search runs (the error path). pool-middleware registers
//! `MiddlewareError` before it makes its first value of the wrapping kind
//! and whenever one of its `find` methods runs.

use std::any::{Any, TypeId};
use std::error::Error;
use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};

use crate::{BoxError, PoolError};

/// Finds an `E` in `error` or anywhere in its chain of sources, seeing
/// through the pool's and middleware's wrappers and through
/// `anyhow::Error` (see the module notes above for exactly what). Returns
/// the first found, outermost first.
///
/// The same search is [`PoolError::find`] on a pool's error, and
/// `MiddlewareError::find` in pool-middleware; this free function serves
/// any other error, for example the `&BoxError` a retry predicate or a
/// [`layer_fn`](crate::layer_fn) closure sees.
///
/// ```
/// use pool_core::{Ctx, Pool, find_error};
/// use std::io;
///
/// let pool = Pool::builder().workers(1).build(|_ctx: &Ctx, path: &'static str| -> anyhow::Result<()> {
///     let _text = std::fs::read_to_string(path)?; // an io::Error, as an anyhow::Error
///     Ok(())
/// })?;
/// pool.submitter().submit("/no/such/dir/in.csv")?;
/// let error = pool.wait().unwrap_err();
/// // Through the pool's error and the anyhow error:
/// let io_error = find_error::<io::Error>(&error).expect("an io::Error inside");
/// assert_eq!(io_error.kind(), io::ErrorKind::NotFound);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// Limits: an `anyhow::Error` held inside a type of your own (a
/// `#[error(transparent)] Other(anyhow::Error)` variant, a `#[source]
/// anyhow::Error` field) shows the walk only anyhow's private type; match
/// your own type and call `anyhow::Error::downcast_ref` there. A panic
/// payload is not an error and is not searched (see
/// [`PanicPayload`](crate::PanicPayload)).
pub fn find_error<'a, E>(error: &'a (dyn Error + 'static)) -> Option<&'a E>
where
    E: Error + Send + Sync + 'static,
{
    find_in(error, &lenses())
}

fn find_in<'a, E>(mut error: &'a (dyn Error + 'static), lenses: &[Lens]) -> Option<&'a E>
where
    E: Error + Send + Sync + 'static,
{
    loop {
        if let Some(found) = error.downcast_ref::<E>() {
            return Some(found);
        }
        if let Some(AnyhowError(anyhow)) = error.downcast_ref::<AnyhowError>()
            && let Some(found) = anyhow.downcast_ref::<E>()
        {
            return Some(found);
        }
        if let Some(PoolError::Many { errors, .. }) = error.downcast_ref::<PoolError>() {
            return errors.iter().find_map(|error| find_in(error, lenses));
        }
        error = match lenses.iter().find_map(|lens| (lens.look)(error)) {
            Some(wrapped) => wrapped,
            None => error.source()?,
        };
    }
}

/// Boxes a worker's error the way the pool does: exactly like
/// `Into::<BoxError>::into`, except that an `anyhow::Error` is kept whole (in
/// a private wrapper that shows the same message, `Debug` and `source` as
/// anyhow's own conversion), so [`find_error`] can still reach the error it
/// was made from. anyhow's own conversion loses it.
///
/// The pool calls it for every error a worker returns, and pool-middleware
/// for every error an inner worker returns. Call it yourself where your own
/// code turns a worker's error into a [`BoxError`] (a custom [`Layer`]'s
/// worker, a [`layer_fn`](crate::layer_fn) closure). It costs a type
/// comparison, resolved at compile time for all but `anyhow::Error`.
///
/// [`Layer`]: crate::Layer
///
/// ```
/// use pool_core::{BoxError, box_error, find_error};
/// use std::io;
///
/// let typed = anyhow::Error::new(io::Error::other("disk full"));
/// let lost: BoxError = typed.into(); // anyhow's conversion
/// assert!(find_error::<io::Error>(&*lost).is_none());
///
/// let typed = anyhow::Error::new(io::Error::other("disk full"));
/// let kept = box_error(typed);
/// assert!(find_error::<io::Error>(&*kept).is_some());
/// assert_eq!(kept.to_string(), "disk full");
/// ```
pub fn box_error<E>(error: E) -> BoxError
where
    E: Into<BoxError> + 'static,
{
    if TypeId::of::<E>() != TypeId::of::<anyhow::Error>() {
        return error.into();
    }
    // `E` is `anyhow::Error`: move it out through `Any` (no `unsafe`).
    let mut slot = Some(error);
    match (&mut slot as &mut dyn Any)
        .downcast_mut::<Option<anyhow::Error>>()
        .and_then(Option::take)
    {
        Some(anyhow) => Box::new(AnyhowError(anyhow)),
        None => slot.map_or_else(|| unreachable!("taken only as anyhow"), Into::into),
    }
}

/// An `anyhow::Error` kept whole inside a [`BoxError`] (see [`box_error`]).
/// It shows what anyhow's own conversion into a box shows: the outermost
/// message (the `Display` of the error behind the `anyhow::Error`, with no
/// chain even under `{:#}`: the chain is `source`'s), anyhow's `Debug` (with
/// its `Caused by:` list and backtrace), and the same `source`.
struct AnyhowError(anyhow::Error);

impl fmt::Display for AnyhowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&*self.0, f)
    }
}

impl fmt::Debug for AnyhowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl Error for AnyhowError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.0.source()
    }
}

/// An error type with a value that stands for another error without showing
/// it as its `source`: a `#[error(transparent)]` variant, whose `Display` is
/// the wrapped error's and whose `source()` is the wrapped error's source, so
/// the wrapped error itself is in no chain. Implement it and register the
/// type with [`see_through`], and [`find_error`] (with [`PoolError::find`])
/// looks inside.
///
/// ```
/// use pool_core::{BoxError, SeeThrough, find_error, see_through};
/// use std::error::Error;
///
/// #[derive(Debug, thiserror::Error)]
/// enum JobError {
///     #[error(transparent)]
///     Other(BoxError),
///     #[error("the job was refused")]
///     Refused,
/// }
///
/// impl SeeThrough for JobError {
///     fn wrapped(&self) -> Option<&(dyn Error + 'static)> {
///         match self {
///             JobError::Other(inner) => Some(&**inner),
///             JobError::Refused => None,
///         }
///     }
/// }
///
/// see_through::<JobError>();
/// let error = JobError::Other(Box::new(std::fmt::Error));
/// assert!(find_error::<std::fmt::Error>(&error).is_some());
/// ```
pub trait SeeThrough: Error + 'static {
    /// The error this value stands for, if it is a wrapping one. The search
    /// continues from it, instead of from `self.source()`, so its own
    /// sources are searched too.
    fn wrapped(&self) -> Option<&(dyn Error + 'static)>;
}

/// Registers `W` so that [`find_error`] and [`PoolError::find`] see inside
/// its wrapping values ([`SeeThrough::wrapped`]). Idempotent: registering a
/// type again does nothing. Registration is for the whole process; it is
/// read only when a search runs.
pub fn see_through<W: SeeThrough>() {
    let id = TypeId::of::<W>();
    if lenses().iter().any(|lens| lens.id == id) {
        return;
    }
    let mut registry = REGISTRY.write().unwrap_or_else(PoisonError::into_inner);
    let known = registry.as_deref().unwrap_or_default();
    if !known.iter().any(|lens| lens.id == id) {
        let mut lenses = known.to_vec();
        lenses.push(Lens {
            id,
            look: look_inside::<W>,
        });
        *registry = Some(lenses.into());
    }
}

fn look_inside<'e, W: SeeThrough>(
    error: &'e (dyn Error + 'static),
) -> Option<&'e (dyn Error + 'static)> {
    error.downcast_ref::<W>().and_then(W::wrapped)
}

/// One registered wrapper type and the function that looks inside it.
#[derive(Clone, Copy)]
struct Lens {
    id: TypeId,
    look: for<'e> fn(&'e (dyn Error + 'static)) -> Option<&'e (dyn Error + 'static)>,
}

/// The registered lenses, replaced whole on each (rare) registration, so a
/// search takes a snapshot (one reference count) and holds no lock while it
/// runs the lenses, which are user code and may search in turn.
static REGISTRY: RwLock<Option<Arc<[Lens]>>> = RwLock::new(None);

/// A snapshot of the registered lenses.
fn lenses() -> Arc<[Lens]> {
    REGISTRY
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
        .unwrap_or_else(|| Arc::new([]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("typed")]
    struct Typed;

    #[test]
    fn box_error_keeps_anyhow_errors_and_boxes_the_rest_as_into_does() {
        let kept = box_error(anyhow::Error::new(Typed).context("outer"));
        assert_eq!(kept.to_string(), "outer");
        assert!(kept.downcast_ref::<AnyhowError>().is_some());
        assert!(find_error::<Typed>(&*kept).is_some());

        let plain = box_error(Typed);
        assert!(plain.downcast_ref::<Typed>().is_some());
        let text = box_error("text");
        assert_eq!(text.to_string(), "text");
    }

    #[test]
    fn the_walk_follows_sources_and_stops_at_the_end() {
        #[derive(Debug, thiserror::Error)]
        #[error("outer")]
        struct Outer(#[source] Typed);
        assert!(find_error::<Typed>(&Outer(Typed)).is_some());
        assert!(find_error::<std::fmt::Error>(&Outer(Typed)).is_none());
    }
}
