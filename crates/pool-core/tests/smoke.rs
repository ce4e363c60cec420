//! Smoke test: items go through at several batch sizes.
use pool_core::{Ctx, Pool};
use std::convert::Infallible;

#[test]
fn smoke() {
    for batch in [1, 2, 64] {
        let pool = Pool::builder().workers(2).batch_size(batch).build(|_c: &Ctx, _x: u64| Ok::<(), Infallible>(())).unwrap();
        let mut s = pool.submitter();
        for x in 0..100_000u64 { s.submit(x).unwrap(); }
        drop(s);
        let r = pool.wait().unwrap();
        assert_eq!(r.processed(), 100_000);
        assert!(r.is_balanced());
    }
}
