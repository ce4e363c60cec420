//! Scoped pools: [`scope`] and [`Scope`], and the [`Launch`] trait through
//! which a [`Builder`](crate::Builder) starts its threads, either detached
//! ([`Detached`], every ordinary pool) or inside a scope.
//!
//! # Why this is sound without `unsafe`
//!
//! A scoped pool's threads are started with
//! [`std::thread::Builder::spawn_scoped`] on the [`std::thread::Scope`] that
//! [`scope`] runs the caller's closure in, so `std` joins them before
//! `scope` returns, whatever becomes of the `Pool` handle (dropped,
//! forgotten, returned out of the closure). Everything that borrows from
//! the caller's stack lives on those threads only: the worker (or the maker,
//! the `keep_state` function and the middleware stack, in the staff each
//! thread holds) and the items, whose type says how long they live. The
//! state the `Pool` handle shares with its threads holds no such borrow:
//! the pool's hooks (`item_key`, `chunk_by`, `on_dropped`,
//! `on_worker_done`, `on_pool_done`) stay `'static`, as does the
//! cancellation token. So a `Pool<u64>` whose workers borrow a local map may
//! even leave the closure: by then its threads have ended, and all it can
//! still do is refuse items and report.
//!
//! # Closing what the closure left open
//!
//! `std` would wait for ever for a pool nobody closes (one forgotten with
//! `std::mem::forget`, or returned out of the closure). So every scoped pool
//! registers with its scope (a weak reference), and when the closure returns
//! or unwinds, the scope closes every pool still alive; their workers drain
//! what was accepted and leave, and `std` joins them. A panic of the closure
//! is re-raised by `std` after that join.
//!
//! # Cancellation
//!
//! A token cannot reach into a scope (it is `'static`; the pool's state is
//! not, once its items borrow), so a scoped pool does not subscribe its
//! state to its token as an ordinary pool does. Instead, each pool's token
//! rings the scope's [`Bell`] (`'static`), and one watcher thread per scope
//! (started with the first pool) passes each cancel on to the pools whose
//! token it was. Ordinary pools never see any of this.

use std::any::Any;
use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::rc::Rc;
use std::sync::{Arc, Condvar, Mutex, PoisonError, Weak};
use std::thread::JoinHandle;

use crate::CancelToken;
use crate::cancel::OnCancel;
use crate::thread::{Hire, Hiring, Staff};

mod sealed {
    /// Only this crate launches threads.
    pub trait Sealed {}
}

/// How a [`Builder`](crate::Builder) starts its pool's threads: detached
/// ([`Detached`], the default) or inside a [`Scope`]. `'env` is what the
/// workers, makers and items may borrow: `'static` for a detached pool, the
/// scope's environment for a scoped one. Implemented by these two only.
pub trait Launch<'env>: sealed::Sealed {
    /// What the pool keeps of a started thread: its handle (detached), or
    /// nothing (scoped: `std` joins it).
    #[doc(hidden)]
    type Handle<R>;

    /// Starts one thread running `body`.
    #[doc(hidden)]
    fn spawn_thread<F, R>(&self, name: String, body: F) -> io::Result<Self::Handle<R>>
    where
        F: FnOnce() -> R + Send + 'env,
        R: Send + 'env;

    /// The handle to join, if the pool joins the thread itself.
    #[doc(hidden)]
    fn joinable<R>(handle: Self::Handle<R>) -> Option<JoinHandle<R>>;

    /// What starts threads on free seats when the pool grows
    /// (`Pool::set_workers`): only a detached pool has it, since its staff
    /// is `'static`.
    #[doc(hidden)]
    #[expect(
        private_bounds,
        private_interfaces,
        reason = "sealed: only this crate implements or calls it"
    )]
    fn hiring<T, St>(staff: &Arc<St>, thread_name: &str) -> Option<Box<dyn Hire<T>>>
    where
        T: Send + 'env,
        St: Staff<T> + 'env;

    /// The pool's state with its type erased, for `Ctx::spawner` (which
    /// looks it up by `TypeId`, so it must be `'static`); `None` in a scoped
    /// pool.
    #[doc(hidden)]
    fn erase<X: Send + Sync + 'env>(pool: &Arc<X>) -> Option<Arc<dyn Any + Send + Sync>>;

    /// A worker's deque of spawned items with its type erased, for the
    /// thread-local slot `Ctx::spawn` pushes to; `None` in a scoped pool.
    #[doc(hidden)]
    fn erase_local<X: 'env>(deque: &Rc<X>) -> Option<Rc<dyn Any>>;

    /// Has the pool hear its token's cancel, and (scoped) registers it with
    /// its scope.
    #[doc(hidden)]
    fn watch<X: Watched + 'env>(&self, pool: &Arc<X>) -> io::Result<()>;
}

/// What a scope or a token needs of a pool's state: its token, the cancel
/// and the close. Public but unnameable (`Launch` names it).
pub trait Watched: OnCancel {
    /// The pool's own token.
    fn token(&self) -> &CancelToken;
    /// Stops accepting input (`Pool::close`).
    fn close(&self);
}

/// The launcher of every ordinary pool: detached threads, joined by the
/// pool ([`Pool::wait`](crate::Pool::wait), [`join`](crate::Pool::join) or
/// its drop). Its workers, makers and items are `'static`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Detached;

impl sealed::Sealed for Detached {}

impl Launch<'static> for Detached {
    type Handle<R> = JoinHandle<R>;

    fn spawn_thread<F, R>(&self, name: String, body: F) -> io::Result<JoinHandle<R>>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        std::thread::Builder::new().name(name).spawn(body)
    }

    fn joinable<R>(handle: JoinHandle<R>) -> Option<JoinHandle<R>> {
        Some(handle)
    }

    #[expect(
        private_bounds,
        private_interfaces,
        reason = "sealed: only this crate implements or calls it"
    )]
    fn hiring<T, St>(staff: &Arc<St>, thread_name: &str) -> Option<Box<dyn Hire<T>>>
    where
        T: Send + 'static,
        St: Staff<T> + 'static,
    {
        Some(Box::new(Hiring {
            staff: Arc::clone(staff),
            thread_name: thread_name.to_owned(),
        }))
    }

    fn erase<X: Send + Sync + 'static>(pool: &Arc<X>) -> Option<Arc<dyn Any + Send + Sync>> {
        Some(Arc::clone(pool) as Arc<dyn Any + Send + Sync>)
    }

    fn erase_local<X: 'static>(deque: &Rc<X>) -> Option<Rc<dyn Any>> {
        Some(Rc::clone(deque) as Rc<dyn Any>)
    }

    fn watch<X: Watched + 'static>(&self, pool: &Arc<X>) -> io::Result<()> {
        let listener: Weak<dyn OnCancel> = Arc::downgrade(pool) as Weak<dyn OnCancel>;
        pool.token().subscribe(listener);
        Ok(())
    }
}

/// Runs `body` with a [`Scope`] in which pools may borrow local data, like
/// [`std::thread::scope`]: every thread of every pool built in the scope
/// has ended when `scope` returns.
///
/// Build a pool in the scope with [`Scope::builder`] (or
/// [`Builder::scoped`](crate::Builder::scoped)); every setting and every
/// build method works as for an ordinary pool, but the workers, the makers
/// and the items may borrow what outlives the scope: `&str` lines of a
/// buffer, a `&HashMap`, `&mut` slices split per worker, a `&Connection`.
///
/// When `body` returns (or panics), every pool built in it that is still
/// open is closed, so a pool left running (returned, or forgotten with
/// `std::mem::forget`) drains what it accepted and ends instead of hanging
/// the scope; then every thread is joined. A panic of `body` is re-raised
/// after that join, as `std::thread::scope` does.
///
/// What stays `'static` in a scoped pool: the pool's hooks (`item_key`,
/// `chunk_by`, `on_dropped`, `on_worker_done`, `on_pool_done`), the
/// iterator given to [`Pool::run`](crate::Pool::run) (submit borrowed items
/// with a [`Submitter`](crate::Submitter) instead), and worker errors.
/// [`Ctx::spawn`](crate::Ctx::spawn) is not available in a scoped pool: it
/// finds the pool by the item type's `TypeId`, which needs `'static` types,
/// so [`Ctx::spawner`](crate::Ctx::spawner) returns `None` there.
///
/// ```
/// use std::collections::HashMap;
/// use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
/// use pool_core::Ctx;
///
/// let text = String::from("GET 200\nGET 404\nPUT 200\nGET 500");
/// let wanted: HashMap<&str, &str> = HashMap::from([("200", "ok"), ("404", "missing")]);
/// let known = AtomicUsize::new(0);
/// let report = pool_core::scope(|s| -> Result<_, Box<dyn std::error::Error>> {
///     let pool = s.builder().workers(2).build(|_ctx: &Ctx, line: &str| {
///         let status = line.split_whitespace().nth(1).unwrap_or("");
///         if wanted.contains_key(status) { known.fetch_add(1, Relaxed); }
///         Ok::<(), std::convert::Infallible>(())
///     })?;
///     // The items borrow `text`; a refused one comes back in the error, so
///     // only the error's text may leave the scope.
///     pool.submitter()
///         .submit_iter(text.lines())
///         .map_err(|refused| refused.to_string())?;
///     Ok(pool.wait()?)
/// })?;
/// assert_eq!(report.processed(), 4);
/// assert_eq!(known.load(Relaxed), 3);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// The same worker on an ordinary pool does not compile: its threads may
/// outlive `wanted` and `known`, so its worker must be `'static`.
///
/// ```compile_fail
/// use std::collections::HashMap;
/// use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
/// use pool_core::{Ctx, Pool};
///
/// let wanted: HashMap<&str, &str> = HashMap::from([("200", "ok"), ("404", "missing")]);
/// let known = AtomicUsize::new(0);
/// let pool = Pool::builder().workers(2).build(|_ctx: &Ctx, status: String| {
///     if wanted.contains_key(status.as_str()) { known.fetch_add(1, Relaxed); } // borrows locals
///     Ok::<(), std::convert::Infallible>(())
/// })?;
/// pool.sender().send("200".to_owned())?;
/// pool.wait()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn scope<'env, F, R>(body: F) -> R
where
    F: for<'scope> FnOnce(&Scope<'scope, 'env>) -> R,
{
    std::thread::scope(|threads| {
        let scope = Scope {
            threads,
            registry: Arc::new(Registry::new()),
            _env: PhantomData,
        };
        // Dropped when `body` returns or unwinds, before `std` joins.
        let _closer = Closer(&scope.registry);
        body(&scope)
    })
}

/// A scope to build pools in that may borrow local data; see [`scope`].
pub struct Scope<'scope, 'env> {
    threads: &'scope std::thread::Scope<'scope, 'env>,
    registry: Arc<Registry<'env>>,
    _env: PhantomData<&'scope mut &'env ()>,
}

impl fmt::Debug for Scope<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scope").finish_non_exhaustive()
    }
}

impl<'scope, 'env> Scope<'scope, 'env> {
    /// A builder of a pool whose threads run in this scope: the same
    /// settings and build methods as [`Pool::builder`](crate::Pool::builder),
    /// with workers, makers and items that may borrow what outlives the
    /// scope.
    ///
    /// ```
    /// use pool_core::{Ctx, Worker};
    ///
    /// // Each worker adds into its own `&mut` part of a local array.
    /// struct Add<'a>(&'a mut [u64]);
    /// impl Worker<u64> for Add<'_> {
    ///     type Error = std::convert::Infallible;
    ///     fn work(&mut self, _ctx: &Ctx, n: u64) -> Result<(), Self::Error> {
    ///         self.0[0] += n;
    ///         Ok(())
    ///     }
    /// }
    ///
    /// let mut sums = [0u64; 2];
    /// let parts = std::sync::Mutex::new(sums.chunks_mut(1).collect::<Vec<_>>());
    /// pool_core::scope(|s| -> Result<_, Box<dyn std::error::Error>> {
    ///     let pool = s.builder().workers(2).build_stateful(|_ctx: &Ctx| {
    ///         Add(parts.lock().unwrap().pop().expect("one part per worker"))
    ///     })?;
    ///     pool.submitter().submit_iter(1..=100)?;
    ///     Ok(pool.wait()?)
    /// })?;
    /// drop(parts);
    /// assert_eq!(sums.iter().sum::<u64>(), 5050);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn builder<T: Send + 'env>(&self) -> crate::Builder<T, crate::Identity, Self> {
        crate::Pool::builder().scoped(self)
    }

    /// The same scope, for a builder to launch in.
    pub(crate) fn share(&self) -> Self {
        Scope {
            threads: self.threads,
            registry: Arc::clone(&self.registry),
            _env: PhantomData,
        }
    }
}

impl sealed::Sealed for Scope<'_, '_> {}

impl<'scope, 'env> Launch<'env> for Scope<'scope, 'env> {
    type Handle<R> = ();

    fn spawn_thread<F, R>(&self, name: String, body: F) -> io::Result<()>
    where
        F: FnOnce() -> R + Send + 'env,
        R: Send + 'env,
    {
        // `std` joins the thread at the end of the scope; the pool waits for
        // it to count itself out (`Exits`) instead of joining a handle.
        std::thread::Builder::new()
            .name(name)
            .spawn_scoped(self.threads, body)
            .map(|_handle| ())
    }

    fn joinable<R>((): ()) -> Option<JoinHandle<R>> {
        None
    }

    #[expect(
        private_bounds,
        private_interfaces,
        reason = "sealed: only this crate implements or calls it"
    )]
    fn hiring<T, St>(_staff: &Arc<St>, _thread_name: &str) -> Option<Box<dyn Hire<T>>>
    where
        T: Send + 'env,
        St: Staff<T> + 'env,
    {
        None
    }

    fn erase<X: Send + Sync + 'env>(_pool: &Arc<X>) -> Option<Arc<dyn Any + Send + Sync>> {
        None
    }

    fn erase_local<X: 'env>(_deque: &Rc<X>) -> Option<Rc<dyn Any>> {
        None
    }

    fn watch<X: Watched + 'env>(&self, pool: &Arc<X>) -> io::Result<()> {
        let weak: Weak<dyn Watched + 'env> = Arc::downgrade(pool) as Weak<dyn Watched + 'env>;
        let start_watcher = self.registry.add(weak);
        if start_watcher {
            let registry = Arc::clone(&self.registry);
            let started = std::thread::Builder::new()
                .name("workforce-scope".to_owned())
                .spawn_scoped(self.threads, move || registry.watch());
            if let Err(error) = started {
                self.registry.watcher_failed();
                return Err(error);
            }
        }
        // After the pool is in the registry: a token cancelled already rings
        // at once, and the watcher finds the pool.
        let bell: Weak<dyn OnCancel> = Arc::downgrade(&self.registry.bell) as Weak<dyn OnCancel>;
        pool.token().subscribe(bell);
        Ok(())
    }
}

/// The pools of one scope and its cancel bell.
struct Registry<'env> {
    state: Mutex<Members<'env>>,
    bell: Arc<Bell>,
}

struct Members<'env> {
    /// Each pool, and whether its cancel was passed on.
    pools: Vec<(Weak<dyn Watched + 'env>, bool)>,
    /// Whether the watcher thread was started.
    watching: bool,
}

impl<'env> Registry<'env> {
    fn new() -> Self {
        Registry {
            state: Mutex::new(Members {
                pools: Vec::new(),
                watching: false,
            }),
            bell: Arc::new(Bell::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Members<'env>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds a pool; `true` if the caller is to start the watcher.
    fn add(&self, pool: Weak<dyn Watched + 'env>) -> bool {
        let mut members = self.lock();
        members.pools.retain(|(pool, _)| pool.strong_count() > 0);
        members.pools.push((pool, false));
        !std::mem::replace(&mut members.watching, true)
    }

    /// The watcher could not start; the next pool tries again.
    fn watcher_failed(&self) {
        self.lock().watching = false;
    }

    /// The watcher thread's body: at each ring, passes the cancel on to
    /// every pool whose token is cancelled; returns when the scope ends.
    fn watch(&self) {
        while self.bell.wait() {
            let cancelled: Vec<_> = {
                let mut members = self.lock();
                members
                    .pools
                    .iter_mut()
                    .filter_map(|(pool, told)| {
                        let pool = pool.upgrade()?;
                        (!*told && pool.token().is_cancelled()).then(|| {
                            *told = true;
                            pool
                        })
                    })
                    .collect()
            };
            // Outside the lock: `on_cancel` wakes the pool's threads.
            for pool in cancelled {
                pool.on_cancel();
            }
        }
    }

    /// The scope's closure is over: closes every pool still alive and lets
    /// the watcher go.
    fn end(&self) {
        let open: Vec<_> = {
            let mut members = self.lock();
            std::mem::take(&mut members.pools)
                .into_iter()
                .filter_map(|(pool, _)| pool.upgrade())
                .collect()
        };
        for pool in open {
            pool.close();
        }
        self.bell.end();
    }
}

/// Ends the registry when the scope's closure returns or unwinds.
struct Closer<'a, 'env>(&'a Registry<'env>);

impl Drop for Closer<'_, '_> {
    fn drop(&mut self) {
        self.0.end();
    }
}

/// Rung by the tokens of a scope's pools when one is cancelled (it is
/// `'static`, so a token may hold it), and once more at the scope's end.
#[derive(Default)]
struct Bell {
    state: Mutex<Rings>,
    rung: Condvar,
}

#[derive(Default)]
struct Rings {
    /// A token rang since the watcher last looked.
    pending: bool,
    /// The scope's closure is over.
    ended: bool,
}

impl Bell {
    fn lock(&self) -> std::sync::MutexGuard<'_, Rings> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits for a ring: `true` for a cancel, `false` at the end.
    fn wait(&self) -> bool {
        let mut rings = self.lock();
        loop {
            if rings.ended {
                return false;
            }
            if std::mem::take(&mut rings.pending) {
                return true;
            }
            rings = self
                .rung
                .wait(rings)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    fn end(&self) {
        self.lock().ended = true;
        self.rung.notify_all();
    }
}

impl OnCancel for Bell {
    fn on_cancel(&self) {
        self.lock().pending = true;
        self.rung.notify_all();
    }
}
