//! Paged iteration over rows, from either end: keys in insertion order
//! (`Cache::keys`), items in insertion order (`Index`), and the integer queue
//! in key order (`Deque`).

use std::collections::VecDeque;

use crate::cache::Cache;
use crate::codec::Stored;
use crate::error::{Error, Result};
use crate::key::Key;
use crate::store::{PageKind, PageRow, QUEUE_BOUND, ValueRow};

/// Rows fetched per query.
const PAGE: i64 = 100;

/// A double-ended walk over live rows between two cursors, a page at a time.
/// It covers the rows that existed when it started. Each page is read in one
/// snapshot: a row removed (or expired) before its page is read is skipped,
/// one removed after may still be yielded. Fused: once it has returned
/// `None` (from either end), or the error of a page it could not read, it
/// returns `None` for good.
#[derive(Debug)]
pub(crate) struct Pager {
    cache: Cache,
    kind: PageKind,
    now: f64,
    /// Last cursor taken from the front (exclusive lower bound).
    lo: i64,
    /// Last cursor taken from the back (exclusive upper bound).
    hi: i64,
    front: VecDeque<PageRow>,
    back: VecDeque<PageRow>,
    /// Ended (exhausted, or a page could not be read).
    done: bool,
    /// An error to yield first (the walk could not start).
    pending: Option<Error>,
}

impl Pager {
    fn new(cache: &Cache, kind: PageKind, lo: i64, hi: i64) -> Pager {
        Pager {
            cache: cache.clone(),
            kind,
            now: cache.now(),
            lo,
            hi,
            front: VecDeque::new(),
            back: VecDeque::new(),
            done: false,
            pending: None,
        }
    }

    /// A walk over items that could not start: yields `error`, then ends.
    pub(crate) fn failed_items(cache: &Cache, error: Error) -> Pager {
        Pager {
            pending: Some(error),
            ..Pager::new(cache, PageKind::Items, 0, 0)
        }
    }

    /// Ends the walk after a `None`, so it stays ended (fused).
    fn step(&mut self, ascending: bool) -> Option<Result<(Key, Option<Stored>)>> {
        if let Some(e) = self.pending.take() {
            self.done = true;
            return Some(Err(e));
        }
        if self.done {
            return None;
        }
        let row = if ascending { self.front_row() } else { self.back_row() };
        if row.is_none() {
            self.done = true;
        }
        row
    }

    /// The next row from the front, with its value loaded (`None` for a
    /// value whose file vanished: the caller skips it).
    pub(crate) fn next_row(&mut self) -> Option<Result<(Key, Option<Stored>)>> {
        self.step(true)
    }

    /// The next row from the back.
    pub(crate) fn next_back_row(&mut self) -> Option<Result<(Key, Option<Stored>)>> {
        self.step(false)
    }

    fn fetch(&mut self, ascending: bool) -> Option<Result<()>> {
        let page = self
            .cache
            .store()
            .read(|s| s.page(self.kind, (self.lo, self.hi), self.now, ascending, PAGE));
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
                // A page that cannot be read ends the walk (one row that
                // cannot be loaded does not).
                self.done = true;
                Some(Err(e))
            }
        }
    }

    fn front_row(&mut self) -> Option<Result<(Key, Option<Stored>)>> {
        loop {
            if self.front.is_empty()
                && let Err(e) = self.fetch(true)?
            {
                return Some(Err(e));
            }
            let (cursor, key, row) = self.front.pop_front()?;
            if cursor >= self.hi {
                self.front.clear();
                return None;
            }
            self.lo = cursor;
            match self.load(key, row) {
                Some(item) => return Some(item),
                None => continue,
            }
        }
    }

    fn back_row(&mut self) -> Option<Result<(Key, Option<Stored>)>> {
        loop {
            if self.back.is_empty()
                && let Err(e) = self.fetch(false)?
            {
                return Some(Err(e));
            }
            let (cursor, key, row) = self.back.pop_front()?;
            if cursor <= self.lo {
                self.back.clear();
                return None;
            }
            self.hi = cursor;
            match self.load(key, row) {
                Some(item) => return Some(item),
                None => continue,
            }
        }
    }

    /// `None` when the row's value file is gone (removed since the page was read).
    fn load(&mut self, key: Result<Key>, row: Option<ValueRow>) -> Option<Result<(Key, Option<Stored>)>> {
        let key = match key {
            Ok(key) => key,
            Err(e) => return Some(Err(e)),
        };
        match row {
            None => Some(Ok((key, None))),
            Some(mut row) => match self.cache.load(&mut row) {
                Ok(Some(stored)) => Some(Ok((key, Some(stored)))),
                Ok(None) => None,
                Err(e) => Some(Err(e)),
            },
        }
    }
}

/// The live keys of a [`Cache`] in insertion order, from [`Cache::keys`].
///
/// Double-ended: `.rev()` walks from the newest key. Keys are read a page at
/// a time (100 rows, each page one snapshot); the iteration covers the rows
/// that existed when it started, and skips those removed (or expired) before
/// their page was read.
///
/// ```
/// let dir = tempfile::tempdir()?;
/// let cache = diskq::Cache::open(dir.path())?;
/// cache.set("first", &1)?;
/// cache.set(2, &2)?;
/// let keys: diskq::Keys = cache.keys()?;
/// let newest_first: Vec<diskq::Key> = keys.rev().collect::<Result<_, _>>()?;
/// assert_eq!(newest_first, [diskq::Key::Int(2), diskq::Key::from("first")]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Keys {
    pager: Pager,
}

impl Iterator for Keys {
    type Item = Result<Key>;

    fn next(&mut self) -> Option<Result<Key>> {
        self.pager.next_row().map(|r| r.map(|(key, _)| key))
    }
}

impl DoubleEndedIterator for Keys {
    fn next_back(&mut self) -> Option<Result<Key>> {
        self.pager.next_back_row().map(|r| r.map(|(key, _)| key))
    }
}

impl std::iter::FusedIterator for Keys {}

impl Cache {
    /// The live keys in insertion order (double-ended).
    ///
    /// # Errors
    ///
    /// Only the storage errors of a read ([the crate's errors](crate#errors)).
    /// Reading a key later, from the iterator, can fail the same way (each item
    /// is a `Result`).
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
        Ok(Keys {
            pager: self.rows(PageKind::Keys)?,
        })
    }

    /// A pager over the keys of every live row, in insertion order.
    pub(crate) fn key_pager(&self) -> Result<Pager> {
        self.rows(PageKind::Keys)
    }

    /// A pager over every live item (key and value), in insertion order.
    pub(crate) fn item_pager(&self) -> Result<Pager> {
        self.rows(PageKind::Items)
    }

    /// A pager over the live items of the integer queue, in key order.
    pub(crate) fn queue_pager(&self) -> Pager {
        Pager::new(self, PageKind::Queue, 0, QUEUE_BOUND)
    }

    /// A pager over every live row in insertion order.
    fn rows(&self, kind: PageKind) -> Result<Pager> {
        let max = self.store().read(|s| s.max_rowid())?;
        Ok(Pager::new(self, kind, 0, max.saturating_add(1)))
    }
}
