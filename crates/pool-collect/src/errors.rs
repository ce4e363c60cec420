//! `Errors<E>`: every error of a run, kept in order.

use std::fmt;

/// Every error a run produced, in the order they were recorded.
///
/// `Display` joins them: `3 errors: first; second; third`.
///
/// ```
/// use pool_collect::Errors;
///
/// let mut errors = Errors::new();
/// assert!(errors.is_empty());
/// errors.push("disk full");
/// errors.push("timed out");
/// assert_eq!(errors.len(), 2);
/// assert_eq!(errors.to_string(), "2 errors: disk full; timed out");
/// assert!(errors.into_result().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Errors<E> {
    errors: Vec<E>,
}

impl<E> Default for Errors<E> {
    fn default() -> Self {
        Errors { errors: Vec::new() }
    }
}

impl<E> Errors<E> {
    /// No errors.
    pub fn new() -> Self {
        Errors::default()
    }

    /// Records one more error.
    pub fn push(&mut self, error: E) {
        self.errors.push(error);
    }

    /// Whether there were no errors.
    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    /// How many errors there were.
    pub fn len(&self) -> usize {
        self.errors.len()
    }

    /// The errors, in order.
    pub fn iter(&self) -> std::slice::Iter<'_, E> {
        self.errors.iter()
    }

    /// The errors, in order, by value.
    pub fn all(self) -> Vec<E> {
        self.errors
    }

    /// `Ok(())` when there were no errors, `Err(self)` otherwise.
    pub fn into_result(self) -> Result<(), Errors<E>> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(self)
        }
    }
}

impl<E> FromIterator<E> for Errors<E> {
    fn from_iter<I: IntoIterator<Item = E>>(iter: I) -> Self {
        Errors {
            errors: iter.into_iter().collect(),
        }
    }
}

impl<E> IntoIterator for Errors<E> {
    type Item = E;
    type IntoIter = std::vec::IntoIter<E>;

    fn into_iter(self) -> Self::IntoIter {
        self.errors.into_iter()
    }
}

impl<'a, E> IntoIterator for &'a Errors<E> {
    type Item = &'a E;
    type IntoIter = std::slice::Iter<'a, E>;

    fn into_iter(self) -> Self::IntoIter {
        self.errors.iter()
    }
}

/// Writes `error` with the caller's alternate flag (`{:#}`), so an error that
/// prints its causes that way (anyhow's does) still does inside a list.
fn write_passing_flags<E: fmt::Display>(f: &mut fmt::Formatter<'_>, error: &E) -> fmt::Result {
    if f.alternate() {
        write!(f, "{error:#}")
    } else {
        write!(f, "{error}")
    }
}

impl<E: fmt::Display> fmt::Display for Errors<E> {
    /// `"3 errors: a; b; c"`. With `{:#}` each error is written with `{:#}`
    /// too, so anyhow errors show their causes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.errors.len() {
            0 => write!(f, "no errors"),
            n => {
                write!(f, "{n} error{}: ", if n == 1 { "" } else { "s" })?;
                for (index, error) in self.errors.iter().enumerate() {
                    if index > 0 {
                        f.write_str("; ")?;
                    }
                    write_passing_flags(f, error)?;
                }
                Ok(())
            }
        }
    }
}

impl<E: fmt::Display + fmt::Debug> std::error::Error for Errors<E> {}
