//! Unit tests of what the public API cannot see: when buffers are allocated,
//! how many spares are kept ([`MAX_SPARES`], `spare_count`) and which ones.
//! The integration tests in `tests/` check the public behaviour; the model
//! based property test of the spare list is in [`spares_model`].

use rstest::rstest;

use super::*;

mod spares_model;

#[test]
fn new_batcher_allocates_nothing() {
    let batcher = Batcher::<u64>::new(16).expect("16 is a valid batch_size");
    assert_eq!(batcher.open.capacity(), 0);
    assert_eq!(batcher.spares.capacity(), 0);
    assert_eq!(batcher.spare_count(), 0);
}

#[test]
fn first_push_allocates_exactly_one_batch() {
    let mut batcher = Batcher::<u64>::new(16).expect("16 is a valid batch_size");
    assert!(batcher.push(1).is_none());
    assert!(batcher.open.capacity() >= 16);
    assert_eq!(batcher.spares.capacity(), 0);
}

#[test]
fn fill_leaves_no_buffer_until_next_push() {
    let mut batcher = Batcher::<u64>::new(2).expect("2 is a valid batch_size");
    assert!(batcher.push(1).is_none());
    let batch = batcher.push(2).expect("second push fills a batch of 2");
    assert_eq!(batch, [1, 2]);
    assert_eq!(batcher.open.capacity(), 0);
}

#[test]
fn flush_of_empty_batcher_is_none_and_allocates_nothing() {
    let mut batcher = Batcher::<u64>::new(4).expect("4 is a valid batch_size");
    assert!(batcher.flush().is_none());
    assert_eq!(batcher.open.capacity(), 0);
}

#[test]
fn pushing_into_a_spare_never_reallocates() {
    let mut batcher = Batcher::<u64>::new(3).expect("3 is a valid batch_size");
    batcher.recycle(Vec::with_capacity(3));
    let spare_ptr = batcher.spares[0].as_ptr();
    assert!(batcher.push(1).is_none());
    assert!(batcher.push(2).is_none());
    let batch = batcher.push(3).expect("third push fills a batch of 3");
    assert_eq!(batch.as_ptr(), spare_ptr);
}

#[test]
fn spare_list_is_allocated_once_with_room_for_the_bound() {
    let mut batcher = Batcher::<u8>::new(1).expect("1 is a valid batch_size");
    for _ in 0..MAX_SPARES + 2 {
        batcher.recycle(Vec::with_capacity(1));
    }
    assert_eq!(batcher.spares.len(), MAX_SPARES);
    assert_eq!(batcher.spares.capacity(), MAX_SPARES);
}

#[test]
fn max_batch_size_matches_layout_array() {
    fn check<T>() {
        let max = max_batch_size::<T>();
        assert!(Layout::array::<T>(max).is_ok());
        if let Some(over) = max.checked_add(1) {
            assert!(Layout::array::<T>(over).is_err());
        }
    }
    check::<u8>();
    check::<u16>();
    check::<u64>();
    check::<[u8; 3]>();
    check::<[u64; 3]>();
    check::<(u8, u64)>();
    check::<String>();
    check::<()>();
}

#[test]
fn debug_shows_sizes_without_requiring_item_debug() {
    struct NotDebug;
    let mut batcher = Batcher::new(3).expect("3 is a valid batch_size");
    assert!(batcher.push(NotDebug).is_none());
    assert_eq!(
        format!("{batcher:?}"),
        "Batcher { batch_size: 3, len: 1, spare_count: 0 }"
    );
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
fn a_recycled_batch_is_kept_until_the_next_batch_takes_it(
    #[values(1, 2, 7, 64)] batch_size: usize,
) {
    let mut batcher = Batcher::new(batch_size).expect("valid batch_size");
    let first = fill(&mut batcher);
    batcher.recycle(first);
    assert_eq!(batcher.spare_count(), 1);

    for _round in 0..10 {
        let batch = fill(&mut batcher);
        assert_eq!(batcher.spare_count(), 0, "the fill took the spare");
        batcher.recycle(batch);
        assert_eq!(batcher.spare_count(), 1);
    }
}

#[test]
fn two_recycled_batches_are_two_spares_taken_one_per_batch() {
    let mut batcher = Batcher::new(3).expect("3 is a valid batch_size");
    let older = fill(&mut batcher);
    let newer = fill(&mut batcher);
    batcher.recycle(older);
    batcher.recycle(newer);
    assert_eq!(batcher.spare_count(), 2);

    let _first_refill = fill(&mut batcher);
    assert_eq!(batcher.spare_count(), 1);
    let _second_refill = fill(&mut batcher);
    assert_eq!(batcher.spare_count(), 0);
}

#[rstest]
fn buffer_smaller_than_batch_size_is_not_kept(#[values(2, 7, 64)] batch_size: usize) {
    let mut batcher = Batcher::<usize>::new(batch_size).expect("valid batch_size");
    batcher.recycle(Vec::with_capacity(batch_size - 1));
    assert_eq!(batcher.spare_count(), 0);
    batcher.recycle(Vec::with_capacity(batch_size));
    assert_eq!(batcher.spare_count(), 1);
}

#[rstest]
fn spare_list_is_bounded(#[values(1, 2, 7, 64)] batch_size: usize) {
    let mut batcher = Batcher::<usize>::new(batch_size).expect("valid batch_size");
    for n_recycled in 1..=MAX_SPARES + 3 {
        batcher.recycle(Vec::with_capacity(batch_size));
        assert_eq!(batcher.spare_count(), n_recycled.min(MAX_SPARES));
    }
}

#[test]
fn a_recycled_batch_with_items_is_kept_empty() {
    let mut batcher = Batcher::new(3).expect("3 is a valid batch_size");
    let batch = fill(&mut batcher);
    batcher.recycle(batch);
    assert_eq!(batcher.spare_count(), 1);
    assert!(
        batcher.spares.iter().all(Vec::is_empty),
        "the spare held items"
    );
}
