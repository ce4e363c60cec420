//! The peers: every implementation that is not workforce, and the producer
//! harness they share with it.
//!
//! Each peer folds its results the cheapest fair way its API allows: a local
//! sum per thread, added up once at the end. Only thread-per-item adds every
//! result into one atomic, because there a thread lives for one item anyway.

use std::cell::Cell;
use std::hint::black_box;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Condvar, Mutex, PoisonError, mpsc};
use std::time::Instant;

use anyhow::{Context as _, anyhow, bail};
use rayon::iter::{IntoParallelIterator as _, ParallelBridge as _, ParallelIterator as _};

use crate::workload::{Run, Workload, split_range};

/// Capacity of the channel pools' queues (BENCHMARKS.md: `bounded(100)`; the
/// std pool gets the same `sync_channel(100)` so only the channel differs).
pub(crate) const CHANNEL_CAPACITY: usize = 100;

/// Submits the items of `workload` through `handles`, one producer thread per
/// handle, and returns the instant the clock started.
///
/// With one handle the calling thread is the producer, as in BENCHMARKS.md's
/// single-producer workloads. With several, producer `p` submits the `p`-th
/// contiguous share of the range; the threads are spawned before the clock and
/// released together from a barrier, and the call returns once every producer
/// has finished and dropped its handle (which is what closes a channel pool).
pub(crate) fn produce<H, F>(
    workload: &Workload,
    handles: Vec<H>,
    submit: F,
) -> anyhow::Result<Instant>
where
    H: Send,
    F: Fn(&mut H, u64) -> anyhow::Result<()> + Sync,
{
    produce_iter(workload, handles, |handle, items| {
        items.into_iter().try_for_each(|item| submit(handle, item))
    })
}

/// Like [`produce`], but each producer hands its whole share of the items
/// (a range) to `submit_all` at once.
pub(crate) fn produce_iter<H, F>(
    workload: &Workload,
    handles: Vec<H>,
    submit_all: F,
) -> anyhow::Result<Instant>
where
    H: Send,
    F: Fn(&mut H, Range<u64>) -> anyhow::Result<()> + Sync,
{
    let producers = handles.len();
    if producers <= 1 {
        let started = Instant::now();
        for mut handle in handles {
            submit_all(&mut handle, 0..workload.n_items)?;
        }
        return Ok(started);
    }
    let start_line = Barrier::new(producers + 1);
    let (start_line, submit_all) = (&start_line, &submit_all);
    std::thread::scope(|scope| {
        let threads: Vec<_> = handles
            .into_iter()
            .enumerate()
            .map(|(producer, mut handle)| {
                let range = split_range(workload.n_items, producers, producer);
                scope.spawn(move || -> anyhow::Result<()> {
                    start_line.wait();
                    submit_all(&mut handle, range)
                })
            })
            .collect();
        start_line.wait();
        let started = Instant::now();
        for thread in threads {
            thread
                .join()
                .map_err(|_| anyhow!("a producer thread panicked"))??;
        }
        Ok(started)
    })
}

/// The floor: one thread, no hand-over. `black_box` on each item stops the
/// compiler from vectorising or folding the loop into a formula, so this
/// measures one item at a time the way a producer hands them over.
pub(crate) fn run_sequential(workload: &Workload) -> Run {
    let workload = black_box(*workload);
    let n_items = black_box(workload.n_items);
    let started = Instant::now();
    let mut sum = 0_u64;
    for item in 0..n_items {
        sum = sum.wrapping_add(workload.work(black_box(item)));
    }
    let elapsed = started.elapsed();
    Run::new(elapsed, sum, n_items)
}

/// W3's floor: the range cut into `threads` contiguous parts up front, one
/// thread each, no queue at all. The threads are spawned and waiting on a
/// barrier before the clock starts.
pub(crate) fn run_static_split(workload: &Workload, threads: usize) -> anyhow::Result<Run> {
    let workload_copy = *workload;
    let start_line = Arc::new(Barrier::new(threads + 1));
    let handles: Vec<_> = (0..threads)
        .map(|part| {
            let start_line = Arc::clone(&start_line);
            std::thread::spawn(move || {
                start_line.wait();
                split_range(workload_copy.n_items, threads, part).fold(0_u64, |sum, item| {
                    sum.wrapping_add(workload_copy.work(black_box(item)))
                })
            })
        })
        .collect();
    start_line.wait();
    let started = Instant::now();
    let sum = join_sums(handles, "static split")?;
    Ok(Run::new(started.elapsed(), sum, workload.n_items))
}

/// rayon `par_bridge()`: the streaming peer. The iterator is shared by the
/// pool's threads, which each take items from it and reduce locally.
pub(crate) fn run_rayon_par_bridge(workload: &Workload, rayon_pool: &rayon::ThreadPool) -> Run {
    let workload = *workload;
    let n_items = workload.n_items;
    let started = Instant::now();
    let sum = rayon_pool.install(|| {
        (0..n_items)
            .par_bridge()
            .map(|item| workload.work(item))
            .reduce(|| 0, u64::wrapping_add)
    });
    Run::new(started.elapsed(), sum, n_items)
}

/// rayon `into_par_iter()`: splits the known range up front, so it is not a
/// streaming pool; shown as an upper bound for context.
pub(crate) fn run_rayon_into_par_iter(workload: &Workload, rayon_pool: &rayon::ThreadPool) -> Run {
    let workload = *workload;
    let n_items = workload.n_items;
    let started = Instant::now();
    let sum = rayon_pool.install(|| {
        (0..n_items)
            .into_par_iter()
            .map(|item| workload.work(item))
            .reduce(|| 0, u64::wrapping_add)
    });
    Run::new(started.elapsed(), sum, n_items)
}

/// The hand-written Go-style pool: a `bounded(100)` channel and `workers`
/// threads, each summing locally and returning its sum through `join`. Several
/// producers each get a clone of the sender. The threads are spawned and
/// waiting on a barrier before the clock starts.
pub(crate) fn run_crossbeam_channel(workload: &Workload, workers: usize) -> anyhow::Result<Run> {
    let workload_copy = *workload;
    let (sender, receiver) = crossbeam_channel::bounded::<u64>(CHANNEL_CAPACITY);
    let start_line = Arc::new(Barrier::new(workers + 1));
    let handles: Vec<_> = (0..workers)
        .map(|_| {
            let receiver = receiver.clone();
            let start_line = Arc::clone(&start_line);
            std::thread::spawn(move || {
                start_line.wait();
                let mut local_sum = 0_u64;
                for item in receiver {
                    local_sum = local_sum.wrapping_add(workload_copy.work(item));
                }
                local_sum
            })
        })
        .collect();
    drop(receiver);
    start_line.wait();

    let senders = (0..workload.producers).map(|_| sender.clone()).collect();
    drop(sender);
    let started = produce(workload, senders, |sender, item| {
        sender
            .send(item)
            .context("crossbeam-channel workers hung up early")
    })?;
    let sum = join_sums(handles, "crossbeam-channel")?;
    Ok(Run::new(started.elapsed(), sum, workload.n_items))
}

/// The textbook pool (the Rust book's chapter 21): a std `sync_channel(100)`
/// whose receiver `workers` threads share behind an `Arc<Mutex<_>>`, each
/// holding the lock while it waits in `recv`. It carries items, not boxed
/// closures, so it differs from the crossbeam-channel peer only in the channel
/// and the lock (the boxed-closure style is the threadpool peer). Each thread
/// sums locally and returns its sum through `join`; several producers each get
/// a clone of the `SyncSender`.
pub(crate) fn run_std_mpsc(workload: &Workload, workers: usize) -> anyhow::Result<Run> {
    let workload_copy = *workload;
    let (sender, receiver) = mpsc::sync_channel::<u64>(CHANNEL_CAPACITY);
    let receiver = Arc::new(Mutex::new(receiver));
    let start_line = Arc::new(Barrier::new(workers + 1));
    let handles: Vec<_> = (0..workers)
        .map(|_| {
            let receiver = Arc::clone(&receiver);
            let start_line = Arc::clone(&start_line);
            std::thread::spawn(move || {
                start_line.wait();
                let mut local_sum = 0_u64;
                loop {
                    // The guard lives until the end of this statement: the lock
                    // is held while waiting in `recv`, as in the book.
                    let message = receiver
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .recv();
                    match message {
                        Ok(item) => local_sum = local_sum.wrapping_add(workload_copy.work(item)),
                        Err(mpsc::RecvError) => break,
                    }
                }
                local_sum
            })
        })
        .collect();
    drop(receiver);
    start_line.wait();

    let senders = (0..workload.producers).map(|_| sender.clone()).collect();
    drop(sender);
    let started = produce(workload, senders, |sender, item| {
        sender
            .send(item)
            .map_err(|_| anyhow!("std mpsc workers hung up early"))
    })?;
    let sum = join_sums(handles, "std mpsc")?;
    Ok(Run::new(started.elapsed(), sum, workload.n_items))
}

thread_local! {
    /// The threadpool peer's per-thread sum: each `execute`d closure adds its
    /// result here, with no shared write per item.
    static THREADPOOL_LOCAL_SUM: Cell<u64> = const { Cell::new(0) };
}

/// The threadpool crate: one boxed closure per item through `execute`, the
/// way its documentation uses it. Results are folded per thread: each closure
/// adds into a thread-local sum (the threads are new for each run, so the sums
/// start at zero). After the producers finish, one flush job per thread moves
/// the thread-local sums into a shared total: each flush job first waits on a
/// barrier sized to the thread count, so every thread takes exactly one of them,
/// and the jobs queue behind every item, so each thread has finished its items
/// when it takes its flush job. `join` returning stops the clock. The threads
/// are started and waiting before the clock starts; several producers each
/// get a clone of the pool handle.
pub(crate) fn run_threadpool(workload: &Workload, workers: usize) -> anyhow::Result<Run> {
    let pool = threadpool::ThreadPool::new(workers);
    // Every thread takes one of these jobs before the clock starts: all are up.
    let start_line = Arc::new(Barrier::new(workers + 1));
    for _ in 0..workers {
        let start_line = Arc::clone(&start_line);
        pool.execute(move || {
            start_line.wait();
        });
    }
    start_line.wait();

    let kernel = workload.kernel();
    let handles = (0..workload.producers).map(|_| pool.clone()).collect();
    let started = produce(
        workload,
        handles,
        |pool: &mut threadpool::ThreadPool, item| {
            pool.execute(move || {
                let result = kernel.work(item);
                THREADPOOL_LOCAL_SUM.with(|sum| sum.set(sum.get().wrapping_add(result)));
            });
            Ok(())
        },
    )?;
    let total = Arc::new(AtomicU64::new(0));
    let flush_line = Arc::new(Barrier::new(workers));
    for _ in 0..workers {
        let (total, flush_line) = (Arc::clone(&total), Arc::clone(&flush_line));
        pool.execute(move || {
            flush_line.wait();
            total.fetch_add(THREADPOOL_LOCAL_SUM.with(Cell::take), Ordering::Relaxed);
        });
    }
    pool.join();
    let elapsed = started.elapsed();
    if pool.panic_count() > 0 {
        bail!("{} threadpool jobs panicked", pool.panic_count());
    }
    Ok(Run::new(
        elapsed,
        total.load(Ordering::Relaxed),
        workload.n_items,
    ))
}

/// At most `limit` threads alive: Go's `errgroup.SetLimit` as a counting
/// semaphore.
struct Limiter {
    /// Threads started and not yet finished.
    alive: Mutex<usize>,
    /// Signalled when a thread finishes.
    freed: Condvar,
    /// The most threads alive at once.
    limit: usize,
}

impl Limiter {
    /// A limiter that lets `limit` threads run at once.
    fn new(limit: usize) -> Self {
        Self {
            alive: Mutex::new(0),
            freed: Condvar::new(),
            limit: limit.max(1),
        }
    }

    /// Waits until fewer than `limit` threads are alive and counts one more.
    fn acquire(&self) {
        let mut alive = self.alive.lock().unwrap_or_else(PoisonError::into_inner);
        while *alive >= self.limit {
            alive = self
                .freed
                .wait(alive)
                .unwrap_or_else(PoisonError::into_inner);
        }
        *alive += 1;
    }

    /// Counts one thread fewer and lets one waiting producer go on.
    fn release(&self) {
        let mut alive = self.alive.lock().unwrap_or_else(PoisonError::into_inner);
        *alive -= 1;
        drop(alive);
        self.freed.notify_one();
    }
}

/// A thread per item with at most `workers` alive (the errgroup `SetLimit`
/// analogue): the producer takes a permit, spawns a scoped thread for the item,
/// and the thread adds its result into one shared atomic and gives the permit
/// back. The scope's end waits for every thread (errgroup's `Wait`). Several
/// producers share the one limit. One atomic add per item is nothing next to a
/// thread's creation, so the fold costs this peer nothing measurable.
pub(crate) fn run_thread_per_item(workload: &Workload, workers: usize) -> anyhow::Result<Run> {
    let limiter = Limiter::new(workers);
    let total = AtomicU64::new(0);
    let (limiter, total) = (&limiter, &total);
    let kernel = workload.kernel();
    let started = std::thread::scope(|scope| {
        let handles = vec![(); workload.producers];
        produce(workload, handles, |(), item| {
            limiter.acquire();
            std::thread::Builder::new()
                .spawn_scoped(scope, move || {
                    total.fetch_add(kernel.work(item), Ordering::Relaxed);
                    limiter.release();
                })
                .map(drop)
                .map_err(|error| {
                    limiter.release();
                    anyhow!("spawning the thread for item {item}: {error}")
                })
        })
    })?;
    Ok(Run::new(
        started.elapsed(),
        total.load(Ordering::Relaxed),
        workload.n_items,
    ))
}

/// Joins worker threads that each return their local sum; adds the sums up.
fn join_sums(handles: Vec<std::thread::JoinHandle<u64>>, who: &str) -> anyhow::Result<u64> {
    let mut sum = 0_u64;
    for handle in handles {
        let local_sum = handle
            .join()
            .map_err(|_| anyhow!("a {who} worker thread panicked"))?;
        sum = sum.wrapping_add(local_sum);
    }
    Ok(sum)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limiter_never_lets_more_than_its_limit_run() {
        let limiter = Limiter::new(2);
        let (running, most) = (AtomicU64::new(0), AtomicU64::new(0));
        std::thread::scope(|scope| {
            for _ in 0..40 {
                limiter.acquire();
                let (limiter, running, most) = (&limiter, &running, &most);
                scope.spawn(move || {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    std::thread::yield_now();
                    running.fetch_sub(1, Ordering::SeqCst);
                    limiter.release();
                });
            }
        });
        assert!(most.load(Ordering::SeqCst) <= 2);
        assert_eq!(*limiter.alive.lock().expect("not poisoned"), 0);
    }
}
