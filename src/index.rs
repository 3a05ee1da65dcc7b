//! `Index<K, V>`: a persistent map in insertion order, shared by processes,
//! and its iterators.

use std::borrow::Borrow;
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
/// rank.insert("rust", &1)?;
/// rank.insert("python", &2)?;
/// rank.insert("c", &3)?;
/// assert_eq!(rank.get("python")?, Some(2));
/// assert_eq!(rank.first()?, Some(("rust".to_string(), 1)));
/// assert_eq!(rank.pop_last()?, Some(("c".to_string(), 3)));
/// let keys: Vec<String> = rank.keys()?.collect::<Result<_, _>>()?;
/// assert_eq!(keys, ["rust", "python"]);
/// // Get or compute: the closure runs only for a missing key.
/// assert_eq!(rank.get_or_insert_with("go", || 4)?, 4);
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
    ///
    /// # Errors
    ///
    /// As [`Cache::open`]: [`Error::NotADirectory`], [`Error::NotADatabase`],
    /// [`Error::InvalidSetting`], [`Error::UnsupportedFormat`] or [`Error::Io`]
    /// when the directory cannot be opened as a cache.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let status: diskq::Index<String, u16> = diskq::Index::open(dir.path())?;
    /// status.insert("/", &200)?;
    /// let again: diskq::Index<String, u16> = diskq::Index::open(dir.path())?;
    /// assert_eq!(again.get("/")?, Some(200));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open(dir: impl AsRef<Path>) -> Result<Index<K, V>> {
        Ok(Index::from_cache(
            Cache::builder().eviction_policy(EvictionPolicy::None).open(dir)?,
        ))
    }

    /// An index over an open cache (all of its items).
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::Cache::open(dir.path())?;
    /// cache.set("a", &1)?;
    /// let index: diskq::Index<String, i64> = diskq::Index::from_cache(cache);
    /// assert_eq!(index.get("a")?, Some(1)); // every key of the cache is an item
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn from_cache(cache: Cache) -> Index<K, V> {
        Index {
            cache,
            _types: PhantomData,
        }
    }

    /// The cache underneath.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let index: diskq::Index<String, i64> = diskq::Index::open(dir.path())?;
    /// index.insert("a", &1)?;
    /// assert_eq!(index.cache().get::<i64>("a")?, Some(1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    /// Sets the value of `key`; a new key goes last, an existing one keeps
    /// its place.
    ///
    /// Unlike `BTreeMap::insert` the old value is not read back (that would
    /// cost a read of a value that may be a large file, and fail on a value
    /// of another type); use [`Index::remove`] for that.
    ///
    /// The key and the value are `&K` and `&V` or forms they borrow as
    /// (`&str` for a `String`, `&[T]` for a `Vec<T>`), as with
    /// [`Index::get`].
    ///
    /// # Errors
    ///
    /// [`Error::Encode`] when the key or the value cannot be serialized;
    /// [`Error::InvalidKey`] for a NaN float key; [`Error::Io`] when a large
    /// value's file cannot be written; the errors of any write ([the crate's
    /// errors](crate#errors)): [`Error::Timeout`] when the write lock stays
    /// taken past the timeout, [`Error::InvalidUse`] on a read-only handle.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let names = diskq::Index::<String, String>::open(dir.path())?;
    /// names.insert("ada", "Lovelace")?;
    /// assert_eq!(names.get("ada")?.as_deref(), Some("Lovelace"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn insert<Q, W>(&self, key: &Q, value: &W) -> Result<()>
    where
        Q: Serialize + ?Sized,
        W: Serialize + ?Sized,
        K: Borrow<Q>,
        V: Borrow<W>,
    {
        self.cache.set(Key::of(key)?, value)
    }

    /// Inserts every pair in one transaction (all or none).
    ///
    /// # Errors
    ///
    /// [`Error::Encode`] when a key or value cannot be serialized (then none is
    /// inserted); the errors of any write ([the crate's errors](crate#errors)):
    /// [`Error::Timeout`] when the write lock stays taken past the timeout,
    /// [`Error::InvalidUse`] on a read-only handle.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let index: diskq::Index<String, u32> = diskq::Index::open(dir.path())?;
    /// let (a, b) = ("a".to_string(), "b".to_string());
    /// index.extend([(&a, &1), (&b, &2)])?; // one commit
    /// assert_eq!(index.len()?, 2);
    /// assert_eq!(index.get("b")?, Some(2));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
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
    ///
    /// The key is a `&K` or any form `K` borrows as, the way
    /// `HashMap::get` takes one: `&str` for an `Index<String, _>`, `&[u8]`
    /// for an `Index<Vec<u8>, _>`. std's borrowed forms serialize as their
    /// owned types do, so they name the same row. An `Index<i64, _>` still
    /// takes only `i64` keys.
    ///
    /// # Errors
    ///
    /// [`Error::Encode`] when the key cannot be serialized; [`Error::Decode`]
    /// or [`Error::Pickled`], naming the key, when the stored value does not
    /// decode as `V`; otherwise the errors of [`Cache::get`].
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let ages = diskq::Index::<String, u32>::open(dir.path())?;
    /// ages.insert("ada", &36)?;
    /// assert_eq!(ages.get("ada")?, Some(36));
    /// assert_eq!(ages.get(&"ada".to_string())?, Some(36));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// ```compile_fail
    /// # let dir = tempfile::tempdir().unwrap();
    /// let by_id = diskq::Index::<i64, String>::open(dir.path()).unwrap();
    /// by_id.get("7").unwrap(); // an i64 does not borrow as a str
    /// ```
    pub fn get<Q: Serialize + ?Sized>(&self, key: &Q) -> Result<Option<V>>
    where
        K: Borrow<Q>,
    {
        self.cache.get(Key::of(key)?)
    }

    /// Removes `key` and returns its value (atomic: of concurrent removals
    /// of one key, one gets the value). The key is a `&K` or a borrowed
    /// form, as with [`Index::get`].
    ///
    /// # Errors
    ///
    /// [`Error::Encode`] when the key cannot be serialized; [`Error::Decode`]
    /// or [`Error::Pickled`] when the value does not decode as `V` (it then
    /// stays); the errors of any write ([the crate's errors](crate#errors)):
    /// [`Error::Timeout`] when the write lock stays taken past the timeout,
    /// [`Error::InvalidUse`] on a read-only handle.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let ages = diskq::Index::<String, u32>::open(dir.path())?;
    /// ages.insert("ada", &36)?;
    /// assert_eq!(ages.remove("ada")?, Some(36));
    /// assert_eq!(ages.remove("ada")?, None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn remove<Q: Serialize + ?Sized>(&self, key: &Q) -> Result<Option<V>>
    where
        K: Borrow<Q>,
    {
        self.cache.pop(Key::of(key)?)
    }

    /// True when `key` is present. The key is a `&K` or a borrowed form,
    /// as with [`Index::get`].
    ///
    /// # Errors
    ///
    /// [`Error::Encode`] when the key cannot be serialized; the storage errors
    /// of a read ([the crate's errors](crate#errors)).
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let seen = diskq::Index::<String, ()>::open(dir.path())?;
    /// seen.insert("https://example.com/", &())?;
    /// assert!(seen.contains_key("https://example.com/")?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn contains_key<Q: Serialize + ?Sized>(&self, key: &Q) -> Result<bool>
    where
        K: Borrow<Q>,
    {
        self.cache.contains_key(Key::of(key)?)
    }

    /// The number of items.
    ///
    /// # Errors
    ///
    /// Only the storage errors of a read ([the crate's errors](crate#errors)).
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let index: diskq::Index<String, u32> = diskq::Index::open(dir.path())?;
    /// index.insert("a", &1)?;
    /// index.insert("a", &2)?; // same key: still one item
    /// assert_eq!(index.len()?, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn len(&self) -> Result<usize> {
        self.cache.len()
    }

    /// True when there are no items.
    ///
    /// # Errors
    ///
    /// Only the storage errors of a read ([the crate's errors](crate#errors)).
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let index: diskq::Index<String, u32> = diskq::Index::open(dir.path())?;
    /// assert!(index.is_empty()?);
    /// index.insert("a", &1)?;
    /// assert!(!index.is_empty()?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_empty(&self) -> Result<bool> {
        self.cache.is_empty()
    }

    /// Removes every item; returns how many.
    ///
    /// # Errors
    ///
    /// The errors of any write ([the crate's errors](crate#errors)):
    /// [`Error::Timeout`] when the write lock stays taken past the timeout,
    /// [`Error::InvalidUse`] on a read-only handle. A batch that fails leaves
    /// the batches before it done.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let index: diskq::Index<String, u32> = diskq::Index::open(dir.path())?;
    /// index.insert("a", &1)?;
    /// index.insert("b", &2)?;
    /// assert_eq!(index.clear()?, 2);
    /// assert!(index.is_empty()?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn clear(&self) -> Result<usize> {
        self.cache.clear()
    }

    /// The keys in insertion order (double-ended).
    ///
    /// # Errors
    ///
    /// Only the storage errors of a read ([the crate's errors](crate#errors))
    /// when the walk cannot start; each key is a `Result` too
    /// ([`Error::Decode`] for a key that is not a `K`).
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let index: diskq::Index<String, u32> = diskq::Index::open(dir.path())?;
    /// index.insert("b", &1)?;
    /// index.insert("a", &2)?;
    /// let keys: Vec<String> = index.keys()?.collect::<Result<_, _>>()?;
    /// assert_eq!(keys, ["b", "a"]); // insertion order, not sorted
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn keys(&self) -> Result<Keys<K>> {
        Ok(Keys {
            pager: self.cache.key_pager()?,
            _types: PhantomData,
        })
    }

    /// The values in insertion order of their keys (double-ended).
    ///
    /// # Errors
    ///
    /// Only the storage errors of a read ([the crate's errors](crate#errors))
    /// when the walk cannot start; each value is a `Result` too
    /// ([`Error::Decode`] for a value that is not a `V`).
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let index: diskq::Index<String, u32> = diskq::Index::open(dir.path())?;
    /// index.insert("b", &1)?;
    /// index.insert("a", &2)?;
    /// let newest_first: Vec<u32> = index.values()?.rev().collect::<Result<_, _>>()?;
    /// assert_eq!(newest_first, [2, 1]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn values(&self) -> Result<Values<V>> {
        Ok(Values {
            pager: self.cache.item_pager()?,
            _types: PhantomData,
        })
    }

    /// The items in insertion order (double-ended). Fails when the end of
    /// the walk (the newest row) cannot be read; each item is a `Result`
    /// too. `&Index` is also [`IntoIterator`], for a `for` loop: there a
    /// failure to start is the first item.
    ///
    /// # Errors
    ///
    /// The storage errors of a read ([the crate's errors](crate#errors)) when
    /// the newest row, the end of the walk, cannot be read; each item is a
    /// `Result` too.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let status = diskq::Index::<String, u16>::open(dir.path())?;
    /// status.insert("/", &200)?;
    /// status.insert("/gone", &404)?;
    /// let pages: Vec<(String, u16)> = status.iter()?.collect::<Result<_, _>>()?;
    /// assert_eq!(pages, [("/".to_string(), 200), ("/gone".to_string(), 404)]);
    /// for item in &status {
    ///     let (page, code) = item?;
    ///     println!("{page}: {code}");
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn iter(&self) -> Result<Iter<K, V>> {
        Ok(Iter {
            pager: self.cache.item_pager()?,
            _types: PhantomData,
        })
    }

    /// The first item in insertion order, left in place.
    ///
    /// # Errors
    ///
    /// [`Error::Decode`] or [`Error::Pickled`] when the key is not a `K` or the
    /// value not a `V`; the storage errors of a read ([the crate's
    /// errors](crate#errors)).
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let index: diskq::Index<String, u32> = diskq::Index::open(dir.path())?;
    /// assert_eq!(index.first()?, None);
    /// index.insert("old", &1)?;
    /// index.insert("new", &2)?;
    /// assert_eq!(index.first()?, Some(("old".to_string(), 1)));
    /// assert_eq!(index.len()?, 2, "left in place");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn first(&self) -> Result<Option<(K, V)>> {
        self.peek_edge(false)
    }

    /// The last item in insertion order, left in place.
    ///
    /// # Errors
    ///
    /// [`Error::Decode`] or [`Error::Pickled`] when the key is not a `K` or the
    /// value not a `V`; the storage errors of a read ([the crate's
    /// errors](crate#errors)).
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let index: diskq::Index<String, u32> = diskq::Index::open(dir.path())?;
    /// index.insert("old", &1)?;
    /// index.insert("new", &2)?;
    /// assert_eq!(index.last()?, Some(("new".to_string(), 2)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
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
    ///
    /// # Errors
    ///
    /// [`Error::Decode`] or [`Error::Pickled`] when the key is not a `K` or the
    /// value not a `V` (the item then stays); the errors of any write ([the
    /// crate's errors](crate#errors)): [`Error::Timeout`] when the write lock
    /// stays taken past the timeout, [`Error::InvalidUse`] on a read-only
    /// handle.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let index: diskq::Index<String, u32> = diskq::Index::open(dir.path())?;
    /// index.insert("old", &1)?;
    /// index.insert("new", &2)?;
    /// assert_eq!(index.pop_first()?, Some(("old".to_string(), 1)));
    /// assert_eq!(index.len()?, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn pop_first(&self) -> Result<Option<(K, V)>> {
        self.pop_edge(false)
    }

    /// Removes and returns the last item (atomic).
    ///
    /// # Errors
    ///
    /// [`Error::Decode`] or [`Error::Pickled`] when the key is not a `K` or the
    /// value not a `V` (the item then stays); the errors of any write ([the
    /// crate's errors](crate#errors)): [`Error::Timeout`] when the write lock
    /// stays taken past the timeout, [`Error::InvalidUse`] on a read-only
    /// handle.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let index: diskq::Index<String, u32> = diskq::Index::open(dir.path())?;
    /// index.insert("old", &1)?;
    /// index.insert("new", &2)?;
    /// assert_eq!(index.pop_last()?, Some(("new".to_string(), 2)));
    /// assert_eq!(index.pop_last()?, Some(("old".to_string(), 1)));
    /// assert_eq!(index.pop_last()?, None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
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
    ///
    /// The key is a `&K` or a borrowed form, as with [`Index::get`].
    ///
    /// # Errors
    ///
    /// [`Error::Encode`] when the key or the made value cannot be serialized;
    /// [`Error::Decode`] or [`Error::Pickled`] when the stored value is not a
    /// `V`; the errors of any write ([the crate's errors](crate#errors)):
    /// [`Error::Timeout`] when the write lock stays taken past the timeout,
    /// [`Error::InvalidUse`] on a read-only handle.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let visits: diskq::Index<String, u32> = diskq::Index::open(dir.path())?;
    /// assert_eq!(visits.get_or_insert_with("/", || 1)?, 1); // inserted
    /// assert_eq!(visits.get_or_insert_with("/", || 99)?, 1); // found: `make` not called
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get_or_insert_with<Q: Serialize + ?Sized>(&self, key: &Q, make: impl FnOnce() -> V) -> Result<V>
    where
        K: Borrow<Q>,
    {
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
    /// `Index.push`); returns the new key. The value is a `&V` or a
    /// borrowed form, as with [`Index::get`].
    ///
    /// # Errors
    ///
    /// As [`Cache::push`]: [`Error::Encode`], [`Error::InvalidUse`] when the
    /// queue's key range is used up, and the errors of a write.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let jobs = diskq::Index::<i64, String>::open(dir.path())?;
    /// let key = jobs.push("first")?;
    /// assert_eq!(jobs.pull()?, Some((key, "first".to_string())));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn push<W: Serialize + ?Sized>(&self, value: &W) -> Result<Key>
    where
        V: Borrow<W>,
    {
        self.cache.push(value)
    }

    /// Pushes with a prefix (keys `"<prefix>-<15 digits>"`), a side, an expiry or a tag.
    ///
    /// # Errors
    ///
    /// As [`Cache::push_with`].
    ///
    /// ```
    /// use diskq::{PushOptions, PullOptions};
    /// let dir = tempfile::tempdir()?;
    /// let index: diskq::Index<String, String> = diskq::Index::open(dir.path())?;
    /// let key = index.push_with("crawl /", &PushOptions::new().prefix("jobs"))?;
    /// assert_eq!(key.as_str(), Some("jobs-500000000000000"));
    /// assert_eq!(index.pull_with(&PullOptions::new().prefix("jobs"))?, Some((key, "crawl /".to_string())));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn push_with<W: Serialize + ?Sized>(&self, value: &W, opts: &PushOptions) -> Result<Key>
    where
        V: Borrow<W>,
    {
        self.cache.push_with(value, opts)
    }

    /// Takes the front item of the integer-keyed queue.
    ///
    /// # Errors
    ///
    /// As [`Cache::pull_with`]: [`Error::Decode`] or [`Error::Pickled`], naming
    /// the key, for a value that is not a `V` (it stays queued), and the errors
    /// of a write.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let index: diskq::Index<i64, String> = diskq::Index::open(dir.path())?;
    /// index.push("a")?;
    /// index.push("b")?;
    /// assert_eq!(index.pull()?.map(|(_, v)| v).as_deref(), Some("a"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn pull(&self) -> Result<Option<(Key, V)>> {
        self.cache.pull()
    }

    /// Takes an item from a prefixed queue or from the back.
    ///
    /// # Errors
    ///
    /// As [`Cache::pull_with`].
    ///
    /// ```
    /// use diskq::{PullOptions, Side};
    /// let dir = tempfile::tempdir()?;
    /// let index: diskq::Index<i64, String> = diskq::Index::open(dir.path())?;
    /// index.push("a")?;
    /// index.push("b")?;
    /// let newest = index.pull_with(&PullOptions::new().side(Side::Back))?;
    /// assert_eq!(newest.map(|(_, v)| v).as_deref(), Some("b"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn pull_with(&self, opts: &PullOptions) -> Result<Option<(Key, V)>> {
        self.cache.pull_with(opts)
    }

    /// Leases the front item of a queue of this index (at-least-once
    /// delivery; see [`Cache::lease`]).
    ///
    /// # Errors
    ///
    /// As [`Cache::lease`].
    ///
    /// ```
    /// use std::time::Duration;
    /// let dir = tempfile::tempdir()?;
    /// let index: diskq::Index<i64, String> = diskq::Index::open(dir.path())?;
    /// index.push("job")?;
    /// let lease = index.lease_with(&diskq::LeaseOptions::new(Duration::from_secs(30)))?.expect("queued");
    /// assert_eq!(lease.value(), "job");
    /// assert!(lease.ack()?);
    /// assert!(index.is_empty()?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn lease_with(&self, opts: &LeaseOptions) -> Result<Option<Lease<V>>> {
        self.cache.lease(opts)
    }

    /// Runs `f` in one transaction: the index operations it calls (on this
    /// thread) are atomic together, across processes.
    ///
    /// # Errors
    ///
    /// As [`Cache::transact`]: `f`'s own error after the rollback, or the
    /// transaction's [`Error::Timeout`] (and the other errors of a write)
    /// converted into `E`.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let balances: diskq::Index<String, i64> = diskq::Index::open(dir.path())?;
    /// balances.insert("alice", &10)?;
    /// balances.transact(|ix| {
    ///     let a = ix.get("alice")?.unwrap_or(0);
    ///     ix.insert("alice", &(a - 3))?;
    ///     ix.insert("bob", &3)
    /// })?;
    /// assert_eq!(balances.get("bob")?, Some(3));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn transact<R, E: From<Error>>(&self, f: impl FnOnce(&Index<K, V>) -> Result<R, E>) -> Result<R, E> {
        self.cache.transact(|_| f(self))
    }

    /// The value of `key`, or on a miss the result of `compute`, stored
    /// under `key`; of many callers that miss at once, one computes while
    /// the others wait (see [`Cache::memoize`]).
    ///
    /// The key is a `&K` or a borrowed form, as with [`Index::get`].
    ///
    /// # Errors
    ///
    /// As [`Cache::memoize`]: `compute`'s own error, or the cache's converted
    /// into `E` ([`Error::Encode`] for a key or value that cannot be
    /// serialized, [`Error::Decode`] for a stored value that is not a `V`, and
    /// those of a write).
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let lengths: diskq::Index<String, usize> = diskq::Index::open(dir.path())?;
    /// let n = lengths.memoize("https://example.com/", || Ok::<_, diskq::Error>(1256))?;
    /// assert_eq!(n, 1256);
    /// // Stored: the second call does not compute.
    /// let again = lengths.memoize("https://example.com/", || -> Result<usize, diskq::Error> { unreachable!() })?;
    /// assert_eq!(again, 1256);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn memoize<Q, E>(&self, key: &Q, compute: impl FnOnce() -> Result<V, E>) -> Result<V, E>
    where
        Q: Serialize + ?Sized,
        K: Borrow<Q>,
        E: From<Error>,
    {
        self.cache.memoize_key(Key::of(key)?, None, compute)
    }
}

/// The keys of an [`Index`] in insertion order, from [`Index::keys`].
///
/// ```
/// let dir = tempfile::tempdir()?;
/// let index: diskq::Index<u32, String> = diskq::Index::open(dir.path())?;
/// index.insert(&3, "c")?;
/// index.insert(&1, "a")?;
/// let keys: diskq::index::Keys<u32> = index.keys()?;
/// assert_eq!(keys.collect::<Result<Vec<_>, _>>()?, [3, 1]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Keys<K> {
    pager: Pager,
    _types: PhantomData<fn() -> K>,
}

/// The values of an [`Index`] in insertion order, from [`Index::values`].
///
/// ```
/// let dir = tempfile::tempdir()?;
/// let index: diskq::Index<u32, String> = diskq::Index::open(dir.path())?;
/// index.insert(&3, "c")?;
/// index.insert(&1, "a")?;
/// let values: diskq::index::Values<String> = index.values()?;
/// assert_eq!(values.collect::<Result<Vec<_>, _>>()?, ["c", "a"]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Values<V> {
    pager: Pager,
    _types: PhantomData<fn() -> V>,
}

/// The items of an [`Index`] in insertion order, from [`Index::iter`].
///
/// ```
/// let dir = tempfile::tempdir()?;
/// let index: diskq::Index<String, u16> = diskq::Index::open(dir.path())?;
/// index.insert("/", &200)?;
/// index.insert("/gone", &404)?;
/// let iter: diskq::index::Iter<String, u16> = index.iter()?;
/// let missing: Vec<String> = iter
///     .filter_map(|item| match item {
///         Ok((page, 404)) => Some(Ok(page)),
///         Ok(_) => None,
///         Err(e) => Some(Err(e)),
///     })
///     .collect::<Result<_, _>>()?;
/// assert_eq!(missing, ["/gone"]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Iter<K, V> {
    pager: Pager,
    _types: PhantomData<fn() -> (K, V)>,
}

/// `for item in &index`: the items in insertion order, as [`Index::iter`];
/// if the walk cannot start, that error is the first (and only) item.
impl<K, V> IntoIterator for &Index<K, V>
where
    K: Serialize + DeserializeOwned,
    V: Serialize + DeserializeOwned,
{
    type Item = Result<(K, V)>;
    type IntoIter = Iter<K, V>;

    fn into_iter(self) -> Iter<K, V> {
        let pager = self
            .cache
            .item_pager()
            .unwrap_or_else(|e| Pager::failed_items(&self.cache, e));
        Iter {
            pager,
            _types: PhantomData,
        }
    }
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

        impl<$($t: DeserializeOwned),+> std::iter::FusedIterator for $name<$($t),+> {}
    };
}

rows_iterator!(Keys<K>, K, key_of);
rows_iterator!(Values<V>, V, value_of);
rows_iterator!(Iter<K, V>, (K, V), item_of);
