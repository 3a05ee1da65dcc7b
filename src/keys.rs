//! Iteration over keys in insertion order, from either end.

use std::collections::VecDeque;

use crate::cache::Cache;
use crate::error::Result;
use crate::key::Key;

/// Rows fetched per query.
const PAGE: i64 = 100;

/// The live keys of a [`Cache`] in insertion order, from [`Cache::keys`].
///
/// Double-ended: `.rev()` walks from the newest key. Keys are read a page at
/// a time; the iteration covers the rows that existed when it started, and
/// skips those removed (or expired) since.
#[derive(Debug)]
pub struct Keys {
    cache: Cache,
    now: f64,
    /// Last rowid taken from the front (exclusive lower bound).
    lo: i64,
    /// Last rowid taken from the back (exclusive upper bound).
    hi: i64,
    front: VecDeque<(i64, Key)>,
    back: VecDeque<(i64, Key)>,
    failed: bool,
}

impl Keys {
    fn fetch(&mut self, ascending: bool) -> Option<Result<()>> {
        let page = self
            .cache
            .store()
            .read(|s| s.keys_page(self.lo, self.hi, self.now, ascending, PAGE));
        match page {
            Ok(rows) if rows.is_empty() => None,
            Ok(rows) => {
                if ascending {
                    self.front.extend(rows)
                } else {
                    self.back.extend(rows)
                }
                Some(Ok(()))
            }
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

impl Iterator for Keys {
    type Item = Result<Key>;

    fn next(&mut self) -> Option<Result<Key>> {
        if self.failed {
            return None;
        }
        if self.front.is_empty()
            && let Err(e) = self.fetch(true)?
        {
            return Some(Err(e));
        }
        let (rowid, key) = self.front.pop_front()?;
        if rowid >= self.hi {
            self.front.clear();
            return None;
        }
        self.lo = rowid;
        Some(Ok(key))
    }
}

impl DoubleEndedIterator for Keys {
    fn next_back(&mut self) -> Option<Result<Key>> {
        if self.failed {
            return None;
        }
        if self.back.is_empty()
            && let Err(e) = self.fetch(false)?
        {
            return Some(Err(e));
        }
        let (rowid, key) = self.back.pop_front()?;
        if rowid <= self.lo {
            self.back.clear();
            return None;
        }
        self.hi = rowid;
        Some(Ok(key))
    }
}

impl Cache {
    /// The live keys in insertion order (double-ended).
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::Cache::open(dir.path())?;
    /// for k in ["b", "a", "c"] {
    ///     cache.set(k, &0)?;
    /// }
    /// let keys: Vec<_> = cache.keys()?.map(|k| k.map(|k| k.to_string())).collect::<Result<_, _>>()?;
    /// assert_eq!(keys, ["\"b\"", "\"a\"", "\"c\""]);
    /// let last = cache.keys()?.next_back().transpose()?;
    /// assert_eq!(last, Some(diskq::Key::from("c")));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn keys(&self) -> Result<Keys> {
        let max = self.store().read(|s| s.max_rowid())?;
        Ok(Keys {
            cache: self.clone(),
            now: self.now(),
            lo: 0,
            hi: max.saturating_add(1),
            front: VecDeque::new(),
            back: VecDeque::new(),
            failed: false,
        })
    }
}
