//! `Index<K, V>`: a persistent map in insertion order, shared by processes,
//! and its iterators.

use std::marker::PhantomData;
use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::cache::Cache;
use crate::codec;
use crate::error::{Error, Result};
use crate::key::Key;
use crate::keys::Pager;
use crate::lease::{Lease, LeaseOptions};
use crate::options::{PullOptions, PushOptions, SetOptions};
use crate::settings::EvictionPolicy;
use crate::store::PageKind;

/// A persistent map that keeps its keys in insertion order, shared by
/// threads and processes (python-diskcache's `Index`, on the same format).
///
/// Every operation is one transaction. Keys are made by [`Key::of`]:
/// integers, floats, strings and byte strings are the native keys a Python
/// `diskcache.Index` on the same directory sees; other key types are
/// MessagePack. Values are any serde type (scalars natively, the rest as
/// MessagePack). Re-inserting a key keeps its place, as in a Python dict.
///
/// ```
/// use diskq::Index;
///
/// let dir = tempfile::tempdir()?;
/// let rank: Index<String, u32> = Index::open(dir.path())?;
/// rank.insert(&"rust".into(), &1)?;
/// rank.insert(&"python".into(), &2)?;
/// rank.insert(&"c".into(), &3)?;
/// assert_eq!(rank.get(&"python".into())?, Some(2));
/// assert_eq!(rank.first()?, Some(("rust".to_string(), 1)));
/// assert_eq!(rank.pop_last()?, Some(("c".to_string(), 3)));
/// let keys: Vec<String> = rank.keys()?.collect::<Result<_, _>>()?;
/// assert_eq!(keys, ["rust", "python"]);
/// // Get or compute: the closure runs only for a missing key.
/// assert_eq!(rank.get_or_insert_with(&"go".into(), || 4)?, 4);
/// assert_eq!(rank.len()?, 3);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Index<K, V> {
    cache: Cache,
    _types: PhantomData<fn() -> (K, V)>,
}

impl<K, V> Clone for Index<K, V> {
    fn clone(&self) -> Self {
        Index {
            cache: self.cache.clone(),
            _types: PhantomData,
        }
    }
}

impl<K, V> std::fmt::Debug for Index<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Index")
            .field("directory", &self.cache.directory())
            .finish()
    }
}

impl<K, V> Index<K, V>
where
    K: Serialize + DeserializeOwned,
    V: Serialize + DeserializeOwned,
{
    /// Opens (creating if needed) the index in `dir`, with eviction policy
    /// `none` (an index never drops items to save space).
    pub fn open(dir: impl AsRef<Path>) -> Result<Index<K, V>> {
        Ok(Index::from_cache(
            Cache::builder().eviction_policy(EvictionPolicy::None).open(dir)?,
        ))
    }

    /// An index over an open cache (all of its items).
    pub fn from_cache(cache: Cache) -> Index<K, V> {
        Index {
            cache,
            _types: PhantomData,
        }
    }

    /// The cache underneath.
    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    /// Sets the value of `key`; a new key goes last, an existing one keeps
    /// its place.
    ///
    /// Unlike `BTreeMap::insert` the old value is not read back (that would
    /// cost a read of a value that may be a large file, and fail on a value
    /// of another type); use [`Index::remove`] for that.
    pub fn insert(&self, key: &K, value: &V) -> Result<()> {
        self.cache.set(Key::of(key)?, value)
    }

    /// Inserts every pair in one transaction (all or none).
    pub fn extend<'a, I>(&self, items: I) -> Result<()>
    where
        I: IntoIterator<Item = (&'a K, &'a V)>,
        K: 'a,
        V: 'a,
    {
        let items = items
            .into_iter()
            .map(|(k, v)| Ok((Key::of(k)?, v)))
            .collect::<Result<Vec<_>>>()?;
        self.cache.set_many(items, &SetOptions::default()).map(drop)
    }

    /// The value of `key`.
    pub fn get(&self, key: &K) -> Result<Option<V>> {
        self.cache.get(Key::of(key)?)
    }

    /// Removes `key` and returns its value (atomic: of concurrent removals
    /// of one key, one gets the value).
    pub fn remove(&self, key: &K) -> Result<Option<V>> {
        self.cache.pop(Key::of(key)?)
    }

    /// True when `key` is present.
    pub fn contains_key(&self, key: &K) -> Result<bool> {
        self.cache.contains_key(Key::of(key)?)
    }

    /// The number of items.
    pub fn len(&self) -> Result<usize> {
        self.cache.len()
    }

    /// True when there are no items.
    pub fn is_empty(&self) -> Result<bool> {
        self.cache.is_empty()
    }

    /// Removes every item; returns how many.
    pub fn clear(&self) -> Result<usize> {
        self.cache.clear()
    }

    /// The keys in insertion order (double-ended).
    pub fn keys(&self) -> Result<Keys<K>> {
        Ok(Keys {
            pager: self.cache.rows(PageKind::Keys)?,
            _types: PhantomData,
        })
    }

    /// The values in insertion order of their keys (double-ended).
    pub fn values(&self) -> Result<Values<V>> {
        Ok(Values {
            pager: self.cache.rows(PageKind::Items)?,
            _types: PhantomData,
        })
    }

    /// The items in insertion order (double-ended).
    pub fn iter(&self) -> Result<Iter<K, V>> {
        Ok(Iter {
            pager: self.cache.rows(PageKind::Items)?,
            _types: PhantomData,
        })
    }

    /// The first item in insertion order, left in place.
    pub fn first(&self) -> Result<Option<(K, V)>> {
        self.peek_edge(false)
    }

    /// The last item in insertion order, left in place.
    pub fn last(&self) -> Result<Option<(K, V)>> {
        self.peek_edge(true)
    }

    fn peek_edge(&self, last: bool) -> Result<Option<(K, V)>> {
        let item = if last {
            self.cache.last_item::<V>()?
        } else {
            self.cache.first_item::<V>()?
        };
        Ok(match item {
            Some((key, value)) => Some((key.decode()?, value)),
            None => None,
        })
    }

    /// Removes and returns the first item (atomic).
    pub fn pop_first(&self) -> Result<Option<(K, V)>> {
        self.pop_edge(false)
    }

    /// Removes and returns the last item (atomic).
    pub fn pop_last(&self) -> Result<Option<(K, V)>> {
        self.pop_edge(true)
    }

    fn pop_edge(&self, last: bool) -> Result<Option<(K, V)>> {
        let cache = &self.cache;
        cache.store().write(false, None, |s| {
            let now = cache.now();
            loop {
                let Some((key, _)) = s.edge_item(last, now)? else {
                    return Ok(None);
                };
                let Some(mut row) = s.pop_live(&key, now)? else {
                    return Ok(None);
                };
                // A row whose value file vanished is dropped and skipped.
                if let Some(stored) = cache.load(&mut row)? {
                    let k = key.decode()?;
                    return Ok(Some((k, codec::decode(stored, &key)?)));
                }
            }
        })
    }

    /// The value of `key`; if it is missing, `make()` is stored and returned
    /// (python-diskcache's `setdefault`). Atomic: `make` runs inside the
    /// write transaction, so of concurrent callers exactly one inserts.
    pub fn get_or_insert_with(&self, key: &K, make: impl FnOnce() -> V) -> Result<V> {
        let key = Key::of(key)?;
        if let Some(value) = self.cache.get(&key)? {
            return Ok(value);
        }
        self.cache.transact(|c| match c.get(&key)? {
            Some(value) => Ok(value),
            None => {
                let value = make();
                c.set(&key, &value)?;
                Ok(value)
            }
        })
    }

    /// Pushes onto the back of the integer-keyed queue (python-diskcache's
    /// `Index.push`); returns the new key.
    pub fn push(&self, value: &V) -> Result<Key> {
        self.cache.push(value)
    }

    /// Pushes with a prefix (keys `"<prefix>-<15 digits>"`), a side, an expiry or a tag.
    pub fn push_with(&self, value: &V, opts: &PushOptions) -> Result<Key> {
        self.cache.push_with(value, opts)
    }

    /// Takes the front item of the integer-keyed queue.
    pub fn pull(&self) -> Result<Option<(Key, V)>> {
        self.cache.pull()
    }

    /// Takes an item from a prefixed queue or from the back.
    pub fn pull_with(&self, opts: &PullOptions) -> Result<Option<(Key, V)>> {
        self.cache.pull_with(opts)
    }

    /// Leases the front item of a queue of this index (at-least-once
    /// delivery; see [`Cache::lease`]).
    pub fn lease_with(&self, opts: &LeaseOptions) -> Result<Option<Lease<V>>> {
        self.cache.lease(opts)
    }

    /// Runs `f` in one transaction: the index operations it calls (on this
    /// thread) are atomic together, across processes.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let balances: diskq::Index<String, i64> = diskq::Index::open(dir.path())?;
    /// balances.insert(&"alice".into(), &10)?;
    /// balances.transact(|ix| {
    ///     let a = ix.get(&"alice".into())?.unwrap_or(0);
    ///     ix.insert(&"alice".into(), &(a - 3))?;
    ///     ix.insert(&"bob".into(), &3)
    /// })?;
    /// assert_eq!(balances.get(&"bob".into())?, Some(3));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn transact<R, E: From<Error>>(&self, f: impl FnOnce(&Index<K, V>) -> Result<R, E>) -> Result<R, E> {
        self.cache.transact(|_| f(self))
    }

    /// The value of `key`, or on a miss the result of `compute`, stored
    /// under `key`; of many callers that miss at once, one computes while
    /// the others wait (see [`Cache::memoize`]).
    pub fn memoize<E: From<Error>>(&self, key: &K, compute: impl FnOnce() -> Result<V, E>) -> Result<V, E> {
        self.cache.memoize_key(Key::of(key)?, None, compute)
    }
}

/// The keys of an [`Index`] in insertion order, from [`Index::keys`].
#[derive(Debug)]
pub struct Keys<K> {
    pager: Pager,
    _types: PhantomData<fn() -> K>,
}

/// The values of an [`Index`] in insertion order, from [`Index::values`].
#[derive(Debug)]
pub struct Values<V> {
    pager: Pager,
    _types: PhantomData<fn() -> V>,
}

/// The items of an [`Index`] in insertion order, from [`Index::iter`].
#[derive(Debug)]
pub struct Iter<K, V> {
    pager: Pager,
    _types: PhantomData<fn() -> (K, V)>,
}

type Row = Result<(Key, Option<codec::Stored>)>;

fn value<V: DeserializeOwned>(key: &Key, stored: Option<codec::Stored>) -> Result<V> {
    match stored {
        Some(stored) => codec::decode(stored, key),
        None => Err(Error::Corrupt(format!("no value was read for key {key}"))),
    }
}

fn key_of<K: DeserializeOwned>(row: Row) -> Result<K> {
    row?.0.decode()
}

fn value_of<V: DeserializeOwned>(row: Row) -> Result<V> {
    let (key, stored) = row?;
    value(&key, stored)
}

fn item_of<K: DeserializeOwned, V: DeserializeOwned>(row: Row) -> Result<(K, V)> {
    let (key, stored) = row?;
    Ok((key.decode()?, value(&key, stored)?))
}

macro_rules! rows_iterator {
    ($name:ident<$($t:ident),+>, $item:ty, $convert:ident) => {
        impl<$($t: DeserializeOwned),+> Iterator for $name<$($t),+> {
            type Item = Result<$item>;

            fn next(&mut self) -> Option<Result<$item>> {
                self.pager.next_row().map($convert)
            }
        }

        impl<$($t: DeserializeOwned),+> DoubleEndedIterator for $name<$($t),+> {
            fn next_back(&mut self) -> Option<Result<$item>> {
                self.pager.next_back_row().map($convert)
            }
        }
    };
}

rows_iterator!(Keys<K>, K, key_of);
rows_iterator!(Values<V>, V, value_of);
rows_iterator!(Iter<K, V>, (K, V), item_of);
