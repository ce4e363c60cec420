//! [`map_ordered`] and [`map_unordered`] on a scoped pool: the function, the
//! items and the results may borrow local data, since the pool's threads run
//! in a [`pool_core::scope`] and end before it returns.
//!
//! The maps are those of the crate root (the same window, order, panics and
//! drop), started on a pool from [`Scope::builder`]; the iterator they return
//! is wrapped in [`Scoped`], which keeps it inside the scope.

use std::fmt;
use std::iter::FusedIterator;
use std::marker::PhantomData;

use pool_core::Scope;

use crate::{MapConfig, MapError, MapOrdered, MapUnordered};

/// A map's iterator that cannot leave the scope it was started in (its
/// pool's threads end with the scope).
#[must_use = "a map takes no input until it is iterated"]
pub struct Scoped<'scope, M> {
    map: M,
    _scope: PhantomData<&'scope ()>,
}

impl<M: Iterator> Iterator for Scoped<'_, M> {
    type Item = M::Item;

    fn next(&mut self) -> Option<M::Item> {
        self.map.next()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.map.size_hint()
    }
}

impl<M: FusedIterator> FusedIterator for Scoped<'_, M> {}

impl<M: fmt::Debug> fmt::Debug for Scoped<'_, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Scoped").field(&self.map).finish()
    }
}

/// [`map_ordered`](crate::map_ordered) on a pool in `scope`: `f`, the items
/// and the results may borrow what outlives the scope. Results come in input
/// order, with the same window, panics and drop as the unscoped map.
///
/// ```
/// use std::collections::HashMap;
/// use pool_collect::{MapConfig, scoped};
///
/// let text = String::from("b a c a");
/// let ranks: HashMap<&str, u32> = HashMap::from([("a", 1), ("b", 2), ("c", 3)]);
/// let ranked: Vec<(&str, u32)> = pool_core::scope(|s| {
///     scoped::map_ordered(
///         s,
///         text.split(' '),                          // items borrow `text`
///         MapConfig::default().workers(2),
///         |word: &str| (word, ranks[word]),         // `f` borrows `ranks`
///     )
///     .map(Iterator::collect)
/// })?;
/// assert_eq!(ranked, [("b", 2), ("a", 1), ("c", 3), ("a", 1)]);
/// # Ok::<(), pool_collect::MapError>(())
/// ```
pub fn map_ordered<'scope, 'env, I, F, R>(
    scope: &Scope<'scope, 'env>,
    input: I,
    config: MapConfig,
    f: F,
) -> Result<Scoped<'scope, MapOrdered<I::IntoIter, R>>, MapError>
where
    I: IntoIterator,
    I::Item: Send + 'env,
    F: Fn(I::Item) -> R + Send + Sync + 'env,
    R: Send + 'env,
{
    let map = MapOrdered::start(scope.builder(), input.into_iter(), config, f)?;
    Ok(Scoped {
        map,
        _scope: PhantomData,
    })
}

/// [`map_unordered`](crate::map_unordered) on a pool in `scope`: `f`, the
/// items and the results may borrow what outlives the scope. Results come as
/// they finish.
///
/// ```
/// use pool_collect::{MapConfig, scoped};
///
/// let mut rows = vec![vec![1u64, 2], vec![3], vec![4, 5, 6]];
/// let mut lengths: Vec<usize> = pool_core::scope(|s| {
///     // Each item is a `&mut` row of the local table.
///     scoped::map_unordered(s, rows.iter_mut(), MapConfig::default().workers(2), |row: &mut Vec<u64>| {
///         row.iter_mut().for_each(|n| *n *= 10);
///         row.len()
///     })
///     .map(Iterator::collect)
/// })?;
/// lengths.sort();
/// assert_eq!(lengths, [1, 2, 3]);
/// assert_eq!(rows[2], [40, 50, 60]);
/// # Ok::<(), pool_collect::MapError>(())
/// ```
pub fn map_unordered<'scope, 'env, I, F, R>(
    scope: &Scope<'scope, 'env>,
    input: I,
    config: MapConfig,
    f: F,
) -> Result<Scoped<'scope, MapUnordered<I::IntoIter, R>>, MapError>
where
    I: IntoIterator,
    I::Item: Send + 'env,
    F: Fn(I::Item) -> R + Send + Sync + 'env,
    R: Send + 'env,
{
    let map = MapUnordered::start(scope.builder(), input.into_iter(), config, f)?;
    Ok(Scoped {
        map,
        _scope: PhantomData,
    })
}
