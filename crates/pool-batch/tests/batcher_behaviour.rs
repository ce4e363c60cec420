//! What `Batcher` promises its users: every item comes back once and in
//! order, full batches are exactly `batch_size` long, recycled buffers are
//! reused, and unusable sizes are typed errors.

use std::cell::RefCell;
use std::rc::Rc;

use pool_batch::{BatchSizeError, Batcher};
use rstest::rstest;

/// Item counts relative to the batch size, so each size gets its edge cases.
#[derive(Debug, Clone, Copy)]
enum Count {
    Zero,
    One,
    SizeMinusOne,
    Size,
    ThreeSizesPlusOne,
}

impl Count {
    fn for_size(self, batch_size: usize) -> usize {
        match self {
            Count::Zero => 0,
            Count::One => 1,
            Count::SizeMinusOne => batch_size - 1,
            Count::Size => batch_size,
            Count::ThreeSizesPlusOne => 3 * batch_size + 1,
        }
    }
}

fn batcher<T>(batch_size: usize) -> Batcher<T> {
    Batcher::new(batch_size).expect("the sizes in these tests are valid")
}

/// Fills one batch of `0..batch_size` and returns it.
fn fill(batcher: &mut Batcher<usize>) -> Vec<usize> {
    let batch_size = batcher.batch_size();
    for item in 0..batch_size - 1 {
        assert!(batcher.push(item).is_none(), "batch handed out early");
    }
    batcher
        .push(batch_size - 1)
        .expect("the last push of a batch hands it out")
}

#[rstest]
fn items_come_out_once_in_order_in_full_batches(
    #[values(1, 2, 7, 64)] batch_size: usize,
    #[values(
        Count::Zero,
        Count::One,
        Count::SizeMinusOne,
        Count::Size,
        Count::ThreeSizesPlusOne
    )]
    count: Count,
    #[values(false, true)] recycle: bool,
) {
    let n_items = count.for_size(batch_size);
    let mut batcher = batcher(batch_size);
    let mut received = Vec::new();
    let mut n_full_batches = 0;

    for item in 0..n_items {
        assert_eq!(batcher.len(), item % batch_size);
        if let Some(mut batch) = batcher.push(item) {
            assert_eq!(batch.len(), batch_size, "a full batch has batch_size items");
            n_full_batches += 1;
            received.append(&mut batch);
            if recycle {
                batcher.recycle(batch);
            }
        }
    }
    assert_eq!(n_full_batches, n_items / batch_size);
    assert_eq!(batcher.len(), n_items % batch_size);

    match batcher.flush() {
        Some(mut rest) => {
            assert_eq!(rest.len(), n_items % batch_size);
            received.append(&mut rest);
        }
        None => assert_eq!(n_items % batch_size, 0, "flush lost a partial batch"),
    }
    assert!(batcher.is_empty());
    assert_eq!(batcher.len(), 0);
    assert!(
        batcher.flush().is_none(),
        "a second flush has nothing to give"
    );

    assert_eq!(received, (0..n_items).collect::<Vec<_>>());
}

#[rstest]
fn recycled_buffer_is_the_next_batch_handed_out(#[values(1, 2, 7, 64)] batch_size: usize) {
    let mut batcher = batcher(batch_size);
    let first = fill(&mut batcher);
    let first_ptr = first.as_ptr();
    batcher.recycle(first);

    // Steady state: fill, hand out, recycle, many times, in one allocation.
    for _round in 0..10 {
        let batch = fill(&mut batcher);
        assert_eq!(
            batch.as_ptr(),
            first_ptr,
            "the recycled allocation was not reused"
        );
        assert_eq!(batch, (0..batch_size).collect::<Vec<_>>());
        batcher.recycle(batch);
    }
}

#[rstest]
fn recycled_flushed_buffer_is_reused(#[values(2, 7, 64)] batch_size: usize) {
    let mut batcher = batcher(batch_size);
    assert!(batcher.push(0).is_none());
    let partial = batcher.flush().expect("one item is pending");
    let partial_ptr = partial.as_ptr();
    batcher.recycle(partial);

    let batch = fill(&mut batcher);
    assert_eq!(batch.as_ptr(), partial_ptr);
}

#[test]
fn most_recently_recycled_spare_is_used_first() {
    let mut batcher = batcher(3);
    let older = fill(&mut batcher);
    let newer = fill(&mut batcher);
    let (older_ptr, newer_ptr) = (older.as_ptr(), newer.as_ptr());
    batcher.recycle(older);
    batcher.recycle(newer);

    let first_refill = fill(&mut batcher);
    let second_refill = fill(&mut batcher);
    assert_eq!(first_refill.as_ptr(), newer_ptr);
    assert_eq!(second_refill.as_ptr(), older_ptr);
}

#[rstest]
fn buffer_smaller_than_batch_size_is_not_kept(#[values(2, 7, 64)] batch_size: usize) {
    let mut batcher = batcher::<usize>(batch_size);
    let big = Vec::with_capacity(batch_size);
    let big_ptr = big.as_ptr();
    batcher.recycle(big);
    // Recycled last, so it would be filled first if it were kept.
    batcher.recycle(Vec::with_capacity(batch_size - 1));

    let batch = fill(&mut batcher);
    assert_eq!(
        batch.as_ptr(),
        big_ptr,
        "the small buffer was kept and filled"
    );
    assert!(batch.capacity() >= batch_size);
}

#[rstest]
#[case::zero(Batcher::<u64>::new(0).map(|b| b.batch_size()), Err(BatchSizeError::Zero))]
#[case::zero_for_zero_sized_items(Batcher::<()>::new(0).map(|b| b.batch_size()), Err(BatchSizeError::Zero))]
#[case::one(Batcher::<u64>::new(1).map(|b| b.batch_size()), Ok(1))]
#[case::u64_over_isize_max_bytes(
    Batcher::<u64>::new(usize::MAX).map(|b| b.batch_size()),
    Err(BatchSizeError::TooLarge { batch_size: usize::MAX, max: isize::MAX as usize / 8 })
)]
#[case::u8_one_past_isize_max_bytes(
    Batcher::<u8>::new(isize::MAX as usize + 1).map(|b| b.batch_size()),
    Err(BatchSizeError::TooLarge { batch_size: isize::MAX as usize + 1, max: isize::MAX as usize })
)]
// Accepted because `new` allocates nothing; only the first push would try.
#[case::u8_exactly_isize_max_bytes(
    Batcher::<u8>::new(isize::MAX as usize).map(|b| b.batch_size()),
    Ok(isize::MAX as usize)
)]
#[case::zero_sized_items_never_too_large(
    Batcher::<()>::new(usize::MAX).map(|b| b.batch_size()),
    Ok(usize::MAX)
)]
fn batch_size_is_validated(
    #[case] result: Result<usize, BatchSizeError>,
    #[case] expected: Result<usize, BatchSizeError>,
) {
    assert_eq!(result, expected);
}

#[rstest]
#[case(BatchSizeError::Zero)]
#[case(BatchSizeError::TooLarge { batch_size: usize::MAX, max: 42 })]
fn error_messages_name_the_setting(#[case] error: BatchSizeError) {
    let message = error.to_string();
    assert!(
        message.contains("batch_size"),
        "{message:?} does not name batch_size"
    );
}

/// An item that records its id in a shared log when dropped.
struct Tracked {
    id: usize,
    drop_log: Rc<RefCell<Vec<usize>>>,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.drop_log.borrow_mut().push(self.id);
    }
}

fn tracked(id: usize, drop_log: &Rc<RefCell<Vec<usize>>>) -> Tracked {
    Tracked {
        id,
        drop_log: Rc::clone(drop_log),
    }
}

#[rstest]
fn no_item_is_dropped_or_duplicated(
    #[values(1, 2, 7, 64)] batch_size: usize,
    #[values(
        Count::Zero,
        Count::One,
        Count::SizeMinusOne,
        Count::Size,
        Count::ThreeSizesPlusOne
    )]
    count: Count,
) {
    let n_items = count.for_size(batch_size);
    let drop_log = Rc::new(RefCell::new(Vec::new()));
    let mut batcher = batcher(batch_size);
    let mut received = Vec::new();

    for id in 0..n_items {
        if let Some(mut batch) = batcher.push(tracked(id, &drop_log)) {
            received.append(&mut batch);
            batcher.recycle(batch);
        }
    }
    if let Some(mut rest) = batcher.flush() {
        received.append(&mut rest);
        batcher.recycle(rest);
    }
    drop(batcher);
    assert!(
        drop_log.borrow().is_empty(),
        "items were dropped inside the batcher: {:?}",
        drop_log.borrow()
    );

    let received_ids: Vec<usize> = received.iter().map(|item| item.id).collect();
    assert_eq!(received_ids, (0..n_items).collect::<Vec<_>>());

    drop(received);
    assert_eq!(*drop_log.borrow(), (0..n_items).collect::<Vec<_>>());
}

#[test]
fn recycle_drops_the_items_left_in_the_batch_exactly_once() {
    let drop_log = Rc::new(RefCell::new(Vec::new()));
    let mut batcher = batcher(3);
    let mut handed_out = None;
    for id in 0..3 {
        handed_out = batcher.push(tracked(id, &drop_log));
    }
    let batch = handed_out.expect("three pushes fill a batch of 3");
    assert!(drop_log.borrow().is_empty());

    batcher.recycle(batch);
    assert_eq!(*drop_log.borrow(), [0, 1, 2]);

    drop(batcher);
    assert_eq!(*drop_log.borrow(), [0, 1, 2], "the spare still held items");
}

#[test]
fn dropping_the_batcher_drops_pending_items_exactly_once() {
    let drop_log = Rc::new(RefCell::new(Vec::new()));
    let mut batcher = batcher(4);
    for id in 0..3 {
        assert!(batcher.push(tracked(id, &drop_log)).is_none());
    }
    assert!(drop_log.borrow().is_empty());

    drop(batcher);
    assert_eq!(*drop_log.borrow(), [0, 1, 2]);
}
