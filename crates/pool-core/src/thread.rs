//! A worker thread's life: start (make the worker), then find a job, run it,
//! give room back, go idle when there is none, and wrap up (finish, the
//! callback) once the pool is closed and drained. Also where the pool's
//! threads are spawned and joined.

use std::any::Any;
use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Instant;

use crossbeam_deque::Worker as LocalQueue;
use crossbeam_utils::Backoff;

use pool_metrics::ShardWriter;

use crate::process::{Bench, Processor};
use crate::pull::Pull;
use crate::queues::Parcel;
use crate::report::WorkerCounts;
use crate::scope::{Detached, Launch};
use crate::shared::Shared;
use crate::sleep::{Parker, Sleep, unparker_of};
use crate::trace;
use crate::{
    BuildError, Ctx, MakerError, MetricsMode, PanicSite, PoolError, ResizeError, WorkerId,
};

thread_local! {
    /// The shared state of the pool this thread works for (its address), or
    /// 0: lets `Pool::run` refuse to wait for its own workers from one of
    /// them.
    static WORKS_FOR: Cell<usize> = const { Cell::new(0) };
}

/// Whether the calling thread is one of the workers of the pool `shared`.
pub(crate) fn is_worker_of<T>(shared: &Shared<T>) -> bool {
    WORKS_FOR.with(|works_for| works_for.get() == std::ptr::from_ref(shared) as usize)
}

/// The `on_worker_done` callback.
pub(crate) type WorkerDoneFn = Arc<dyn Fn(WorkerId, &WorkerCounts) + Send + Sync>;

/// The `on_worker_done` callback, taken out once every worker has finished
/// ([`join`]): a callback may own a `Sender` to this very pool, and that
/// cycle would keep the pool's memory alive forever.
pub(crate) struct WorkerDoneHook(Mutex<Option<WorkerDoneFn>>);

impl WorkerDoneHook {
    pub(crate) fn new(callback: Option<WorkerDoneFn>) -> Self {
        WorkerDoneHook(Mutex::new(callback))
    }

    /// The callback, if any and not yet taken out.
    fn get(&self) -> Option<WorkerDoneFn> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Drops the callback; call once every worker finished.
    fn take_out(&self) {
        let callback = self.0.lock().unwrap_or_else(PoisonError::into_inner).take();
        // Dropped outside the lock: its captures may be anything, this pool's
        // own `Sender` included.
        drop(callback);
    }
}

/// The parts of a new pool's seats that must exist before the shared
/// state: each seat's deques and parker. [`Sleep`] and the stealers go into
/// the shared state; the rest, with each seat's metrics writer, into the
/// [`Seat`]s ([`Seats::into_seats`]).
pub(crate) struct Seats<T> {
    locals: Vec<LocalQueue<Parcel<T>>>,
    /// Each seat's deque of the items its worker spawns (`Ctx::spawn`): last
    /// in, first out, so a tree is walked depth first.
    spawned: Vec<LocalQueue<Parcel<T>>>,
    parkers: Vec<Parker>,
}

impl<T> Seats<T> {
    pub(crate) fn new(n_seats: usize) -> Self {
        Seats {
            locals: (0..n_seats).map(|_| LocalQueue::new_fifo()).collect(),
            spawned: (0..n_seats).map(|_| LocalQueue::new_lifo()).collect(),
            parkers: (0..n_seats).map(|_| Parker::new()).collect(),
        }
    }

    /// The handles siblings steal spawned items with.
    pub(crate) fn spawn_stealers(&self) -> Vec<crossbeam_deque::Stealer<Parcel<T>>> {
        self.spawned.iter().map(LocalQueue::stealer).collect()
    }

    /// The sleep slots that wake these workers.
    pub(crate) fn sleep(&self) -> Sleep {
        Sleep::new(self.parkers.iter().map(unparker_of).collect())
    }

    /// The handles siblings steal with.
    pub(crate) fn stealers(&self) -> Vec<crossbeam_deque::Stealer<Parcel<T>>> {
        self.locals.iter().map(LocalQueue::stealer).collect()
    }

    /// Each seat's parts, with its shard's one writer from `shared`'s ledger.
    pub(crate) fn into_seats(self, shared: &Shared<T>) -> Vec<Seat<T>> {
        let deques = self.locals.into_iter().zip(self.spawned);
        deques
            .zip(self.parkers)
            .enumerate()
            .map(|(index, ((local, spawned), parker))| Seat {
                local,
                spawned,
                parker,
                out: shared.ledger.writer(index),
                finished: 0,
            })
            .collect()
    }
}

/// What a seat keeps from one worker thread to the next (`Pool::set_workers`
/// retires a thread and may later start another on the same seat): the
/// deques siblings steal from (their stealers are in the shared state), the
/// parker its sleep slot wakes, its shard's one writer, and its running
/// total of finished reserved items (the capacity watermarks are per seat).
pub(crate) struct Seat<T> {
    local: LocalQueue<Parcel<T>>,
    spawned: LocalQueue<Parcel<T>>,
    parker: Parker,
    out: ShardWriter,
    finished: u64,
}

/// Where each seat of a pool is: a thread working on it, or its parts,
/// free for the next grow. Held by the `Pool`, behind a lock that also
/// makes resizes one at a time.
pub(crate) struct Crew<T> {
    seats: Vec<SeatState<T>>,
    /// Starts threads on free seats with the pool's staff; `None` in a
    /// scoped pool (its staff borrows from the scope, and its threads'
    /// parts never come back: it cannot resize).
    hire: Option<Box<dyn Hire<T>>>,
}

enum SeatState<T> {
    Working(JoinHandle<Seat<T>>),
    /// Its thread runs in a scope, which joins it: the parts do not come
    /// back.
    Scoped,
    Free(Seat<T>),
    /// Its thread could not start, or ended in a panic of the pool's own
    /// code: the parts are gone.
    Lost,
}

impl<T: Send> Crew<T> {
    /// Every seat is free; `hire` starts threads on them.
    pub(crate) fn new(seats: Vec<Seat<T>>, hire: Option<Box<dyn Hire<T>>>) -> Self {
        Crew {
            seats: seats.into_iter().map(SeatState::Free).collect(),
            hire,
        }
    }

    /// Whether any thread was started and not yet joined.
    pub(crate) fn has_threads(&self) -> bool {
        self.seats
            .iter()
            .any(|seat| matches!(seat, SeatState::Working(_) | SeatState::Scoped))
    }

    /// The free parts of seats `from..to`, for a grow; `Err` names the
    /// first seat whose parts are lost.
    pub(crate) fn take_free(
        &mut self,
        from: usize,
        to: usize,
    ) -> Result<Vec<(usize, Seat<T>)>, usize> {
        if let Some(lost) =
            (from..to).find(|&index| !matches!(self.seats[index], SeatState::Free(_)))
        {
            return Err(lost);
        }
        Ok((from..to)
            .map(
                |index| match std::mem::replace(&mut self.seats[index], SeatState::Lost) {
                    SeatState::Free(seat) => (index, seat),
                    _ => unreachable!("checked above"),
                },
            )
            .collect())
    }

    /// Starts threads on seats `from..to` (free), each making its worker;
    /// once every worker is made, runs `go` and lets them run. If a maker
    /// fails or a thread does not start, no new worker runs an item, the
    /// new threads are joined, and the seats are free again.
    pub(crate) fn grow(
        &mut self,
        shared: &Arc<Shared<T>>,
        from: usize,
        to: usize,
        go: &mut dyn FnMut(),
    ) -> Result<(), ResizeError> {
        if self.hire.is_none() {
            return Err(ResizeError::InScope);
        }
        let seats = self
            .take_free(from, to)
            .map_err(|index| ResizeError::Spawn {
                worker: WorkerId(index),
                message: "an earlier thread on this seat failed to start".to_owned(),
            })?;
        let Some(hire) = &self.hire else {
            return Err(ResizeError::InScope);
        };
        match hire.hire(shared, seats, go) {
            Ok(threads) => {
                for (index, handle) in threads {
                    self.seats[index] = SeatState::Working(handle);
                }
                Ok(())
            }
            Err((threads, error)) => {
                for (index, handle) in threads {
                    self.seats[index] = match handle.join() {
                        Ok(seat) => SeatState::Free(seat),
                        Err(_) => SeatState::Lost,
                    };
                }
                Err(error)
            }
        }
    }

    /// Records started threads on their seats.
    pub(crate) fn seat(&mut self, threads: Vec<(usize, Option<JoinHandle<Seat<T>>>)>) {
        for (index, handle) in threads {
            self.seats[index] = handle.map_or(SeatState::Scoped, SeatState::Working);
        }
    }

    /// Joins the threads of seats `from..to` (told to retire), keeping
    /// their parts for a later grow.
    pub(crate) fn shrink(&mut self, shared: &Shared<T>, from: usize, to: usize) {
        for index in from..to {
            let state = std::mem::replace(&mut self.seats[index], SeatState::Lost);
            self.seats[index] = match state {
                SeatState::Working(handle) => match handle.join() {
                    Ok(seat) => SeatState::Free(seat),
                    Err(payload) => {
                        shared.ledger.record_panic(None, PanicSite::Work, payload);
                        SeatState::Lost
                    }
                },
                other => other,
            };
        }
    }

    /// Every thread started and not yet joined, for the pool's end.
    pub(crate) fn take_threads(&mut self) -> Vec<JoinHandle<Seat<T>>> {
        let mut threads = Vec::new();
        for seat in &mut self.seats {
            if matches!(seat, SeatState::Working(_))
                && let SeatState::Working(handle) = std::mem::replace(seat, SeatState::Lost)
            {
                threads.push(handle);
            }
        }
        threads
    }
}

/// Starts worker threads on free seats with a pool's staff: the staff's
/// type erased, since a `Pool` does not name it.
pub(crate) trait Hire<T>: Send + Sync {
    /// See [`Crew::grow`]. On failure, the threads that did start (told to
    /// leave) and the error.
    #[expect(clippy::type_complexity, reason = "a pair of plain parts, used once")]
    fn hire(
        &self,
        shared: &Arc<Shared<T>>,
        seats: Vec<(usize, Seat<T>)>,
        go: &mut dyn FnMut(),
    ) -> Result<Vec<(usize, JoinHandle<Seat<T>>)>, (Vec<(usize, JoinHandle<Seat<T>>)>, ResizeError)>;
}

/// The [`Hire`] of every pool: its staff and its threads' name prefix.
pub(crate) struct Hiring<St> {
    pub(crate) staff: Arc<St>,
    pub(crate) thread_name: String,
}

impl<T: Send + 'static, St: Staff<T> + 'static> Hire<T> for Hiring<St> {
    fn hire(
        &self,
        shared: &Arc<Shared<T>>,
        seats: Vec<(usize, Seat<T>)>,
        go: &mut dyn FnMut(),
    ) -> Result<Vec<(usize, JoinHandle<Seat<T>>)>, (Vec<(usize, JoinHandle<Seat<T>>)>, ResizeError)>
    {
        let startup = Arc::new(Startup::new());
        let mut threads = Vec::with_capacity(seats.len());
        let mut spawn_error = None;
        for (index, seat) in seats {
            match start_thread(
                &Detached,
                shared,
                index,
                seat,
                &self.thread_name,
                &self.staff,
                Some(&startup),
            ) {
                Ok(handle) => threads.push((index, handle)),
                Err(BuildError::Spawn { worker, message }) => {
                    spawn_error = Some(ResizeError::Spawn { worker, message });
                    break;
                }
                Err(other) => {
                    spawn_error = Some(ResizeError::Spawn {
                        worker: WorkerId(index),
                        message: other.to_string(),
                    });
                    break;
                }
            }
        }
        let mut failures = startup.outcomes(threads.len());
        let error = match (spawn_error, failures.is_empty()) {
            (None, true) => None,
            (Some(error), _) => Some(error),
            (None, false) => {
                let (index, failure) = failures.remove(0);
                Some(match failure {
                    MakerFailure::Failed(error) => ResizeError::Maker {
                        worker: WorkerId(index),
                        error: MakerError::new(Box::new(error)),
                    },
                    MakerFailure::Panicked(payload) => {
                        let message = crate::error::panic_message(&*payload);
                        drop_payload(payload);
                        ResizeError::MakerPanicked {
                            worker: WorkerId(index),
                            message,
                        }
                    }
                })
            }
        };
        // Only the first failure is reported; a payload's `Drop` is user code.
        for (_, failure) in failures {
            if let MakerFailure::Panicked(payload) = failure {
                drop_payload(payload);
            }
        }
        match error {
            None => {
                go();
                startup.decide(true);
                Ok(threads)
            }
            Some(error) => {
                startup.decide(false);
                Err((threads, error))
            }
        }
    }
}

/// How a pool's threads get their workers and what becomes of each at the
/// end: the maker (run on each worker thread, fallible for the `try_`
/// builds) and the retirement after `finish` (drop the worker, or hand its
/// state to the pool: `Builder::keep_workers`).
pub(crate) trait Staff<T>: Send + Sync {
    /// What the thread runs its items through.
    type Processor: Processor<T>;
    /// A fallible maker's error (`Infallible` for the others).
    type Error: Send + 'static;

    /// Makes this thread's worker (with its layers), on the thread.
    fn make(&self, ctx: &Ctx) -> Result<Self::Processor, Self::Error>;

    /// Ends the worker after its `finish`, on its thread: drops it (its
    /// `Drop` is user code, so under `guard`), or hands its state out.
    fn retire(&self, shared: &Shared<T>, ctx: &Ctx, processor: Self::Processor) {
        shared.guard(ctx.worker, PanicSite::Finish, || drop(processor));
    }
}

/// The staff of most pools: a maker, and workers dropped at the end.
pub(crate) struct Makers<Mk>(pub(crate) Mk);

impl<T, P, E, Mk> Staff<T> for Makers<Mk>
where
    P: Processor<T>,
    E: Send + 'static,
    Mk: Fn(&Ctx) -> Result<P, E> + Send + Sync,
{
    type Processor = P;
    type Error = E;

    fn make(&self, ctx: &Ctx) -> Result<P, E> {
        (self.0)(ctx)
    }
}

/// Why a fallible maker left its thread without a worker.
pub(crate) enum MakerFailure<E> {
    /// It returned this error.
    Failed(E),
    /// It panicked with this payload.
    Panicked(Box<dyn Any + Send>),
}

/// The start of a pool whose makers may fail (the `try_` builds): each
/// thread reports its maker's outcome, then waits for the verdict; the
/// building thread waits for every outcome, then gives the verdict: go (every
/// worker was made) or stop (the threads drop what they made and leave,
/// without running an item, `finish` or a callback).
///
/// One lock and condition variable, used a few times per thread, once per
/// build: no part of the pool's running.
pub(crate) struct Startup<E> {
    state: Mutex<StartupState<E>>,
    changed: Condvar,
}

struct StartupState<E> {
    /// Threads that reported their maker's outcome.
    reported: usize,
    /// The failed makers, by worker index.
    failures: Vec<(usize, MakerFailure<E>)>,
    /// `Some(true)`: run; `Some(false)`: leave.
    verdict: Option<bool>,
}

impl<E> Startup<E> {
    pub(crate) fn new() -> Self {
        Startup {
            state: Mutex::new(StartupState {
                reported: 0,
                failures: Vec::new(),
                verdict: None,
            }),
            changed: Condvar::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, StartupState<E>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A worker thread's maker is done: `failure` says how it failed, if it did.
    fn report(&self, index: usize, failure: Option<MakerFailure<E>>) {
        let mut state = self.lock();
        state.reported += 1;
        if let Some(failure) = failure {
            state.failures.push((index, failure));
        }
        drop(state);
        self.changed.notify_all();
    }

    /// Waits for the building thread's verdict: whether to run.
    fn verdict(&self) -> bool {
        let mut state = self.lock();
        loop {
            if let Some(go) = state.verdict {
                return go;
            }
            state = self
                .changed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Waits until `n_threads` threads reported, and returns the failures,
    /// lowest worker first.
    pub(crate) fn outcomes(&self, n_threads: usize) -> Vec<(usize, MakerFailure<E>)> {
        let mut state = self.lock();
        while state.reported < n_threads {
            state = self
                .changed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
        let mut failures = std::mem::take(&mut state.failures);
        failures.sort_by_key(|(index, _)| *index);
        failures
    }

    /// Tells every waiting thread whether to run (`go`) or leave.
    pub(crate) fn decide(&self, go: bool) {
        self.lock().verdict = Some(go);
        self.changed.notify_all();
    }
}

/// Starts one thread on each of `seats` through `launch`, running
/// [`WorkerThread::main`] with a worker from `staff`, and adds them to
/// `threads` (with their handles; a scoped thread has none: `std` joins
/// it). With a `startup`, each thread reports its maker's outcome there and
/// waits for the verdict before it runs. On a failed spawn the threads
/// started so far are in `threads`, for the caller to stop (`startup`),
/// close the pool and join.
pub(crate) fn spawn<'env, T, St, Lc>(
    launch: &Lc,
    shared: &Arc<Shared<T>>,
    seats: Vec<(usize, Seat<T>)>,
    thread_name: &str,
    staff: &Arc<St>,
    startup: Option<&Arc<Startup<St::Error>>>,
    threads: &mut Vec<(usize, Lc::Handle<Seat<T>>)>,
) -> Result<(), BuildError>
where
    T: Send + 'env,
    St: Staff<T> + 'env,
    Lc: Launch<'env>,
{
    for (index, seat) in seats {
        let handle = start_thread(launch, shared, index, seat, thread_name, staff, startup)?;
        threads.push((index, handle));
    }
    Ok(())
}

/// Starts the thread of seat `index` through `launch`, counted in `Exits`
/// before it starts; its handle, if the pool joins it (detached).
fn start_thread<'env, T, St, Lc>(
    launch: &Lc,
    shared: &Arc<Shared<T>>,
    index: usize,
    seat: Seat<T>,
    thread_name: &str,
    staff: &Arc<St>,
    startup: Option<&Arc<Startup<St::Error>>>,
) -> Result<Lc::Handle<Seat<T>>, BuildError>
where
    T: Send + 'env,
    St: Staff<T> + 'env,
    Lc: Launch<'env>,
{
    let thread_shared = Arc::clone(shared);
    let staff = Arc::clone(staff);
    let startup = startup.map(Arc::clone);
    let pool = Lc::erase(shared);
    shared.exits.arrive();
    launch
        .spawn_thread(format!("{thread_name}-{index}"), move || {
            let worker = WorkerThread::new(thread_shared, index, seat, pool);
            let own_deque = Lc::erase_local(&worker.spawned);
            worker.main(staff, startup.as_deref(), own_deque)
        })
        .map_err(|error| {
            // Counted out as the thread would have done.
            drop(shared.exits.leaving(&shared.progress));
            BuildError::Spawn {
                worker: WorkerId(index),
                message: error.to_string(),
            }
        })
}

/// Waits for every worker thread to leave, then drops the `on_worker_done`
/// and `on_dropped` callbacks (only workers drop items). Call after closing
/// the pool. A thread counts itself out of `Exits` as its last act on the
/// pool (a scoped pool's threads have no handles: `std` joins them at the
/// end of their scope); the handles of detached threads are joined after.
pub(crate) fn join<T>(shared: &Shared<T>, threads: Vec<JoinHandle<Seat<T>>>) {
    shared.progress.wait_until(None, || shared.exits.all_left());
    for handle in threads {
        // Worker threads catch every panic of user code, so a join error would
        // be a bug in the pool itself; the report still shows it.
        if let Err(payload) = handle.join() {
            shared.ledger.record_panic(None, PanicSite::Work, payload);
        }
    }
    shared.worker_done.take_out();
    shared.on_dropped.take_out();
}

/// Busy and idle time, published to the worker's shard. With timing on, the
/// clock is read at busy/idle transitions and when capacity is released (once
/// per `release_every` items, at least a batch); with `MetricsMode::Off`, never.
struct BusyTimer {
    on: bool,
    since: Instant,
    busy: bool,
    /// Releases since latencies were last published.
    releases: u32,
}

/// Latencies are published every this many releases while busy (and always
/// when going idle): merging a histogram walks all its buckets, too much to do
/// every release.
const LATENCY_PUBLISH_RELEASES: u32 = 16;

impl BusyTimer {
    #[inline]
    fn mark_busy(&mut self, out: &mut ShardWriter) {
        if self.on && !self.busy {
            let now = Instant::now();
            out.add_idle(now - self.since);
            self.since = now;
        }
        self.busy = true;
    }

    /// Publishes the busy time so far (a live snapshot sees it) and, now and
    /// then, the latencies.
    #[inline]
    fn publish(&mut self, out: &mut ShardWriter) {
        if self.on && self.busy {
            let now = Instant::now();
            out.add_busy(now - self.since);
            self.since = now;
        }
        self.releases += 1;
        if self.releases >= LATENCY_PUBLISH_RELEASES {
            self.releases = 0;
            out.publish_latency();
        }
    }

    fn mark_idle(&mut self, out: &mut ShardWriter) {
        if self.on && self.busy {
            let now = Instant::now();
            out.add_busy(now - self.since);
            self.since = now;
        }
        self.busy = false;
        self.releases = 0;
        out.publish_latency();
    }

    /// Adds the idle time up to now (the worker is leaving).
    fn finish_idle(&mut self, out: &mut ShardWriter) {
        if self.on && !self.busy {
            out.add_idle(self.since.elapsed());
        }
    }
}

/// One worker thread's state, from start to wrap-up.
pub(crate) struct WorkerThread<T> {
    shared: Arc<Shared<T>>,
    index: usize,
    local: LocalQueue<Parcel<T>>,
    /// The deque of the items this worker spawns, shared with the thread's
    /// spawn slot (`spawn::enter`), through which `Ctx::spawn` reaches it.
    spawned: Rc<LocalQueue<Parcel<T>>>,
    parker: Parker,
    ctx: Ctx,
    out: ShardWriter,
    timer: BusyTimer,
    /// Reserved items this worker finished, in all (published to the
    /// capacity gate as it goes: `Capacity::note_finished`).
    finished: u64,
    /// `finished` when this worker last gave room back.
    given_back_at: u64,
    /// The pull source its jobs descend from (its address), 0 for none: what
    /// its lineage slot holds (`descend_from`).
    lineage_at: usize,
}

impl<T: Send> WorkerThread<T> {
    /// `pool` is the pool's state with its type erased, for
    /// `Ctx::spawner` (`None` in a scoped pool: see `scope.rs`).
    fn new(
        shared: Arc<Shared<T>>,
        index: usize,
        seat: Seat<T>,
        pool: Option<Arc<dyn Any + Send + Sync>>,
    ) -> Self {
        let Seat {
            local,
            spawned,
            parker,
            out,
            finished,
        } = seat;
        let mut ctx = Ctx::new(
            WorkerId(index),
            shared.token.clone(),
            Arc::clone(shared.ledger.metrics()),
        );
        ctx.pool = pool;
        let timer = BusyTimer {
            on: shared.config.metrics_mode != MetricsMode::Off,
            since: Instant::now(),
            busy: false,
            releases: 0,
        };
        WorkerThread {
            shared,
            index,
            local,
            spawned: Rc::new(spawned),
            parker,
            ctx,
            out,
            timer,
            finished,
            given_back_at: finished,
            lineage_at: 0,
        }
    }

    /// The seat's parts, for the next thread on it; call last.
    fn into_seat(self) -> Seat<T> {
        // The thread's spawn slot holds the only other handle.
        crate::spawn::leave();
        let spawned = Rc::try_unwrap(self.spawned)
            .expect("the spawn slot was emptied, so the worker holds the only handle");
        Seat {
            local: self.local,
            spawned,
            parker: self.parker,
            out: self.out,
            finished: self.finished,
        }
    }

    /// The thread's body; hands the seat's parts back at the end.
    /// `own_deque` is this worker's deque of spawned items with its type
    /// erased, for `Ctx::spawn` (`None` in a scoped pool).
    fn main<St: Staff<T>>(
        mut self,
        staff: Arc<St>,
        startup: Option<&Startup<St::Error>>,
        own_deque: Option<Rc<dyn Any>>,
    ) -> Seat<T> {
        // Dropped last, after `wrap_up` and after this thread's hold on the
        // staff (also when unwinding): counts this worker out for
        // `Pool::join`, `Pool::join_async`, `Pool::join_until` and a
        // resize, which then find every maker and worker of this thread
        // dropped.
        let shared = Arc::clone(&self.shared);
        let _leaving = shared.exits.leaving(&shared.progress);
        let staff = staff;
        let staff = &*staff;
        // Entered for the thread's whole life, so the maker's, `finish`'s and
        // the callback's events fall in it too. Without the `tracing` feature
        // this and every other `trace` hook compile to nothing.
        let _worker_span = trace::worker_span(self.index);
        WORKS_FOR.with(|works_for| works_for.set(Arc::as_ptr(&self.shared) as usize));
        if let Some(own_deque) = own_deque {
            crate::spawn::enter(own_deque);
        }
        let Some(mut processor) = self.start(staff, startup) else {
            // The build (or grow) failed: nothing runs here, nothing is
            // reported.
            return self.into_seat();
        };
        // Items may be spawned only while the worker runs items: then the
        // pool cannot finish under them (see `spawn.rs`).
        self.ctx.set_running(true);
        self.run(processor.as_mut());
        self.ctx.set_running(false);
        if self.shared.queues.roster().retires(self.index) {
            self.step_down();
        }
        self.wrap_up(staff, processor);
        self.into_seat()
    }

    /// The seat is to be empty (`Pool::set_workers`): gives back its room
    /// and spawn credits, hands what its deques hold to the injector for
    /// the siblings, and tells progress waiters (a resize waits for them).
    fn step_down(&mut self) {
        if self.finished > self.given_back_at {
            self.give_back();
        }
        if self.shared.capacity.return_spawn_credits(self.index) {
            self.shared.queues.wake_all();
        }
        self.descend_from(None);
        let shared = &*self.shared;
        shared
            .queues
            .hand_off(self.index, &self.local, &self.spawned);
        shared.capacity.wake_producers_if_waiting();
        self.timer.mark_idle(&mut self.out);
        shared.progress.changed();
    }

    /// Makes the worker. A maker that panics leaves this thread without one;
    /// the pool is cancelled and this thread only drops and counts. With a
    /// `startup` (a `try_` build), the maker's outcome goes there instead,
    /// and `None` means the build failed: the thread leaves at once (the
    /// worker it made, if any, is dropped here).
    fn start<St: Staff<T>>(
        &mut self,
        staff: &St,
        startup: Option<&Startup<St::Error>>,
    ) -> Option<Option<St::Processor>> {
        let started = self.timer.on.then(Instant::now);
        let ctx = &self.ctx;
        let out = &mut self.out;
        // The maker's own time: not the wait for the verdict.
        let mut made = || {
            if let Some(started) = started {
                out.set_init(started.elapsed());
            }
        };
        let processor = match startup {
            None => {
                let processor = self.shared.guard_maker(ctx.worker, || staff.make(ctx));
                made();
                match processor {
                    Some(Ok(processor)) => Some(processor),
                    Some(Err(error)) => {
                        // Only fallible makers fail, and they report to a
                        // `startup`: not reached. Stop as a maker's panic does.
                        drop(error);
                        self.shared.token.cancel();
                        None
                    }
                    None => None,
                }
            }
            Some(startup) => {
                let outcome = catch_unwind(AssertUnwindSafe(|| staff.make(ctx)));
                made();
                let (processor, failure) = match outcome {
                    Ok(Ok(processor)) => (Some(processor), None),
                    Ok(Err(error)) => (None, Some(MakerFailure::Failed(error))),
                    Err(payload) => (None, Some(MakerFailure::Panicked(payload))),
                };
                startup.report(self.index, failure);
                if !startup.verdict() {
                    // The build failed elsewhere (or here): leave without
                    // running. The worker's `Drop` is user code; its panic
                    // has nowhere to go but away.
                    if let Err(payload) = catch_unwind(AssertUnwindSafe(|| drop(processor))) {
                        drop_payload(payload);
                    }
                    return None;
                }
                processor
            }
        };
        self.timer.since = Instant::now();
        Some(processor)
    }

    /// The next job this worker may take.
    #[inline]
    fn find(&self) -> Option<Parcel<T>> {
        self.shared
            .queues
            .find_job(self.index, &self.local, &self.spawned)
    }

    /// Runs jobs until the pool is closed and drained, or the seat is to
    /// be empty (after the job in hand).
    fn run<P: Processor<T>>(&mut self, mut processor: Option<&mut P>) {
        loop {
            if let Some(parcel) = self.find() {
                self.timer.mark_busy(&mut self.out);
                self.run_job(processor.as_deref_mut(), parcel);
                if self.finished - self.given_back_at >= self.shared.config.release_every as u64 {
                    self.give_back();
                    self.timer.publish(&mut self.out);
                }
                // Keyed: a store to the seat's own count (a resize's drain
                // reads it). Otherwise: one relaxed load of the roster; a
                // keyed worker leaves only with its inbox empty (`idle`).
                let retires = self.shared.queues.job_done(self.index);
                // One relaxed load unless a thread waits for progress.
                self.shared.progress.job_done();
                if retires {
                    return;
                }
                continue;
            }
            if !self.idle() {
                return;
            }
        }
    }

    /// Gives back the room of what this worker finished (producers may have
    /// taken some of it back already: see `Capacity::give_back`).
    #[inline]
    fn give_back(&mut self) {
        self.shared.give_back(self.index);
        self.given_back_at = self.finished;
    }

    /// Counts `n` reserved units as finished outside a job's processing
    /// (a pull source's parcel, retired).
    fn note_finished(&mut self, n: u64) {
        self.finished += n;
        self.shared
            .capacity
            .note_finished(self.index, self.finished);
    }

    /// What a processor works with for one job (see [`Bench`]);
    /// `pulled_from` is the pull source the job's items came from (they hold
    /// no room), `None` for items that hold room.
    #[inline]
    fn bench<'a>(&'a mut self, pulled_from: Option<&'a Arc<dyn Pull<T>>>) -> Bench<'a, T> {
        let shared = &*self.shared;
        Bench {
            ctx: &self.ctx,
            ledger: &shared.ledger,
            out: &mut self.out,
            cancelled: shared.token.flag(),
            queues: &shared.queues,
            local: &self.local,
            index: self.index,
            handed_over: 0,
            pulled_from,
            capacity: &shared.capacity,
            finished: &mut self.finished,
            item_key: shared.item_key.as_ref(),
            on_dropped: &shared.on_dropped,
        }
    }

    /// Runs one job.
    #[inline]
    fn run_job<P: Processor<T>>(&mut self, processor: Option<&mut P>, parcel: Parcel<T>) {
        match parcel {
            Parcel::One(item) => {
                self.descend_from(None);
                run_one(processor, item, &mut self.bench(None));
            }
            Parcel::Many(batch) => {
                self.descend_from(None);
                run_batch(processor, batch, &mut self.bench(None));
            }
            Parcel::Pull(source) => self.run_pull(processor, source),
            Parcel::Pulled(batch, source) => {
                self.descend_from(Some(&source));
                // No room was reserved for pulled items.
                run_batch(processor, batch, &mut self.bench(Some(&source)));
                source.parcel_done();
            }
            Parcel::Grown(item, source) => {
                self.descend_from(Some(&source));
                // It holds room, as every spawned item does.
                run_one(processor, item, &mut self.bench(None));
                source.parcel_done();
            }
        }
    }

    /// The jobs this worker runs from now on descend from `source` (a pull
    /// run's), or from none: what an item they spawn is outstanding in (see
    /// `pull.rs`, "Descendants"). Writes the worker's slot only when that
    /// changes, so a job pays one comparison.
    #[inline]
    fn descend_from(&mut self, source: Option<&Arc<dyn Pull<T>>>) {
        let at = source.map_or(0, |source| Arc::as_ptr(source).cast::<()>() as usize);
        if at != self.lineage_at {
            self.shared.queues.lineage(self.index).enter(source);
            self.lineage_at = at;
        }
    }

    /// Takes a chunk of items from a pull source, pushes the source back for
    /// a sibling, and runs the chunk like a batch. The chunk's items were
    /// never reserved (they go from the iterator straight into this worker's
    /// hands); the source's one unit of room is given back when it is
    /// retired here.
    #[inline(never)]
    fn run_pull<P: Processor<T>>(&mut self, processor: Option<&mut P>, source: Arc<dyn Pull<T>>) {
        let shared = &*self.shared;
        let processor = match processor {
            Some(processor)
                if !shared.token.flag().load(Relaxed) && !shared.capacity.is_closed() =>
            {
                processor
            }
            // Cancelled, closed, or no worker on this thread (its maker
            // panicked): take nothing more.
            _ => {
                source.stop();
                source.parcel_done();
                self.note_finished(1);
                return;
            }
        };
        let mut chunk = shared.queues.take_spare().unwrap_or_default();
        let more = match source.fill(&mut chunk, shared.config.batch_size) {
            Ok(more) => more,
            Err(payload) => {
                shared
                    .ledger
                    .record_panic(Some(self.ctx.worker), PanicSite::Source, payload);
                false
            }
        };
        if more {
            // Counted before it is queued, so the run cannot look finished
            // while it waits.
            source.parcel_pushed();
            shared
                .queues
                .push_any(Parcel::Pull(Arc::clone(&source)), self.index + 1);
        }
        if !chunk.is_empty() {
            // Counted before they run, as every pushed item is.
            shared.ledger.count_submitted(chunk.len() as u64);
            let _batch_span = trace::batch_span(self.index, chunk.len());
            self.descend_from(Some(&source));
            processor.many(&mut chunk, &mut self.bench(Some(&source)));
        }
        self.shared.queues.put_spare(chunk);
        source.parcel_done();
        if !more {
            self.note_finished(1);
        }
    }

    /// Out of work: gives room back (so blocked producers can go on and the
    /// exit condition can become true), spins briefly, then parks until work
    /// or the end comes. Returns `false` when the pool is closed and drained.
    fn idle(&mut self) -> bool {
        if self.finished > self.given_back_at {
            self.give_back();
        }
        // Room taken ahead for spawns, before the exit condition is read.
        if self.shared.capacity.return_spawn_credits(self.index) {
            self.shared.queues.wake_all();
        }
        // Lets go of a finished pull run's source.
        self.descend_from(None);
        let shared = &*self.shared;
        shared.capacity.wake_producers_if_waiting();
        self.timer.mark_idle(&mut self.out);
        // Everything this worker finished is counted and its room given
        // back: a progress waiter must see it now (see `progress.rs`).
        shared.progress.changed();
        let roster = shared.queues.roster();
        if shared.capacity.is_done() || roster.retires(self.index) {
            return false;
        }
        let sleep = shared.queues.sleep();
        sleep.start_searching();
        let backoff = Backoff::new();
        while !backoff.is_completed() {
            backoff.snooze();
            if shared.queues.has_work(self.index)
                || shared.capacity.is_done()
                || roster.retires(self.index)
            {
                sleep.stop_searching();
                return true;
            }
        }
        // The roster is re-checked after the announcement: a resize stores
        // the word, then wakes the seat (store buffering, as for work).
        sleep.sleep(self.index, &self.parker, || {
            !self.local.is_empty()
                || !self.spawned.is_empty()
                || shared.queues.has_work(self.index)
                || shared.capacity.is_done()
                || roster.retires(self.index)
        });
        true
    }

    /// The worker's `finish`, its retirement (its `Drop`, or its state
    /// handed to the pool), the `on_worker_done` callback, and the last
    /// figures of its shard.
    fn wrap_up<St: Staff<T>>(&mut self, staff: &St, mut processor: Option<St::Processor>) {
        self.timer.finish_idle(&mut self.out);
        let shared = &*self.shared;
        let ctx = &self.ctx;
        let started = self.timer.on.then(Instant::now);
        if let Some(processor) = processor.as_mut()
            && let Some(Err(source)) =
                shared.guard(ctx.worker, PanicSite::Finish, || processor.finish(ctx))
        {
            shared.ledger.record_error(PoolError::Finish {
                worker: ctx.worker,
                source,
            });
        }
        // The worker's own `Drop` (or the hand-over of its state) is user
        // code too: `retire` runs it under `guard`.
        if let Some(processor) = processor {
            staff.retire(shared, ctx, processor);
        }
        if let Some(callback) = shared.worker_done.get() {
            let counts = ctx.counts();
            shared.guard(ctx.worker, PanicSite::Callback, || {
                callback(ctx.worker, &counts)
            });
        }
        if let Some(started) = started {
            self.out.set_wrap_up(started.elapsed());
        }
        self.out.flush_latency();
        trace::worker_finished(ctx);
    }
}

/// Runs a lone item (or drops it, when the pool is cancelled or the thread
/// has no worker).
#[inline]
fn run_one<T, P: Processor<T>>(processor: Option<&mut P>, item: T, bench: &mut Bench<'_, T>) {
    match processor {
        Some(processor) if !bench.is_cancelled() => processor.one(item, bench),
        _ => {
            let dropped = bench.drop_items(std::iter::once(item));
            bench.note_finished(1);
            bench.out.add_dropped(dropped);
        }
    }
}

/// Runs a batch (or drops it, on a thread without a worker); what it hands
/// to siblings is counted by them.
#[inline]
fn run_batch<T, P: Processor<T>>(
    processor: Option<&mut P>,
    mut batch: Vec<T>,
    bench: &mut Bench<'_, T>,
) {
    let n_items = batch.len();
    // Once per batch, never per item: lone items get no span, since that is
    // where one would cost most per item.
    let _batch_span = trace::batch_span(bench.index, n_items);
    match processor {
        Some(processor) => processor.many(&mut batch, bench),
        None => {
            let dropped = bench.drop_items(batch.drain(..));
            bench.note_finished(dropped as usize);
            bench.out.add_dropped(dropped);
        }
    }
    bench.queues.put_spare(batch);
}

/// Drops a caught panic's payload that goes nowhere; its `Drop` is user code,
/// and a payload whose drop panics in turn is leaked, as `std` does.
pub(crate) fn drop_payload(payload: Box<dyn Any + Send>) {
    if let Err(nested) = catch_unwind(AssertUnwindSafe(move || drop(payload))) {
        std::mem::forget(nested);
    }
}
