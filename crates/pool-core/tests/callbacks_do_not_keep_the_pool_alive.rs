//! An `on_worker_done` callback that owns a `Sender` to its own pool (say, to
//! hand a last item on) forms a cycle: the pool's shared state holds the
//! callback, the callback holds the sender, the sender holds the shared state.
//! The pool takes the callback out once every worker has finished, so the
//! cycle is broken and everything the callback owns is dropped: after `wait`
//! and after a drop without `wait`.
#![allow(clippy::unwrap_used)] // Tests may unwrap: a panic is a test failure.

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, OnceLock};

use pool_core::{Ctx, Pool, Sender};
use rstest::rstest;

/// Sets its flag when dropped.
struct DropFlag(Arc<AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, SeqCst);
    }
}

#[rstest]
fn a_callback_owning_a_sender_to_its_own_pool_is_dropped(#[values(true, false)] wait: bool) {
    let dropped = Arc::new(AtomicBool::new(false));
    let calls = Arc::new(AtomicU64::new(0));
    let own_sender: Arc<OnceLock<Sender<u64>>> = Arc::new(OnceLock::new());
    let flag = DropFlag(Arc::clone(&dropped));
    let (callback_sender, callback_calls) = (Arc::clone(&own_sender), Arc::clone(&calls));
    let pool = Pool::builder()
        .workers(2)
        .on_worker_done(move |_worker, _counts| {
            let _keep = &flag;
            callback_calls.fetch_add(1, SeqCst);
            // The pool is closed by now: the send is refused, the item comes back.
            if let Some(sender) = callback_sender.get() {
                assert!(sender.try_send(0).is_err());
            }
        })
        .build(|_ctx: &Ctx, _item: u64| Ok::<(), Infallible>(()))
        .unwrap();
    own_sender.set(pool.sender()).ok().unwrap();
    drop(own_sender);
    let mut submitter = pool.submitter();
    for item in 0..100 {
        submitter.submit(item).unwrap();
    }
    drop(submitter);
    if wait {
        assert_eq!(pool.wait().unwrap().processed(), 100);
    } else {
        drop(pool);
    }
    assert_eq!(calls.load(SeqCst), 2, "one call per worker");
    assert!(
        dropped.load(SeqCst),
        "the callback, and the sender it owns, outlived the pool"
    );
}
