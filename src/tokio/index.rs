//! The async [`Index`].

use std::borrow::Borrow;
use std::path::Path;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::cache::{Cache, open_blocking};
use super::lease::Lease;
use super::wait::take_until;
use super::wait::{coop, turn};
use crate::error::Result;
use crate::key::Key;
use crate::lease::LeaseOptions;
use crate::options::{PullOptions, PushOptions};

/// A persistent ordered map (see [`crate::Index`]) whose operations are
/// awaited. Cheap to clone; a sync [`crate::Index`] on the same directory
/// sees the same map.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use diskq::tokio::Index;
/// let dir = tempfile::tempdir()?;
/// let names: Index<String, String> = Index::open(dir.path()).await?;
/// names.insert("ada", "Lovelace").await?;
/// names.insert("alan", "Turing").await?;
/// assert_eq!(names.get("ada").await?.as_deref(), Some("Lovelace"));
/// assert_eq!(names.first().await?, Some(("ada".into(), "Lovelace".into())));
/// assert_eq!(names.remove("alan").await?.as_deref(), Some("Turing"));
/// assert_eq!(names.len().await?, 1);
/// # Ok(()) }
/// ```
pub struct Index<K, V> {
    inner: crate::Index<K, V>,
}

impl<K, V> Clone for Index<K, V> {
    fn clone(&self) -> Self {
        Index {
            inner: self.inner.clone(),
        }
    }
}

impl<K, V> std::fmt::Debug for Index<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.fmt(f)
    }
}

impl<K, V> From<crate::Index<K, V>> for Index<K, V> {
    fn from(inner: crate::Index<K, V>) -> Index<K, V> {
        Index { inner }
    }
}

impl<K, V> Index<K, V>
where
    K: Serialize + DeserializeOwned,
    V: Serialize + DeserializeOwned,
{
    /// Opens (creating if needed) the index in `dir` (on the blocking pool;
    /// see [`crate::Index::open`]).
    ///
    /// # Errors
    ///
    /// As the sync [`crate::Index::open`].
    pub async fn open(dir: impl AsRef<Path>) -> Result<Index<K, V>>
    where
        K: 'static,
        V: 'static,
    {
        open_blocking(dir.as_ref(), |dir| crate::Index::open(dir).map(Index::from)).await
    }

    /// An index over an open cache (all of its items).
    #[must_use]
    pub fn from_cache(cache: Cache) -> Index<K, V> {
        Index {
            inner: crate::Index::from_cache(cache.sync().clone()),
        }
    }

    /// The sync index underneath (the same handle).
    #[must_use]
    pub fn sync(&self) -> &crate::Index<K, V> {
        &self.inner
    }

    /// The cache underneath.
    #[must_use]
    pub fn cache(&self) -> Cache {
        Cache::from(self.inner.cache().clone())
    }

    /// Sets the value of `key` (see [`crate::Index::insert`]).
    ///
    /// # Errors
    ///
    /// As the sync [`crate::Index::insert`].
    pub async fn insert<Q, W>(&self, key: &Q, value: &W) -> Result<()>
    where
        Q: Serialize + ?Sized,
        W: Serialize + ?Sized,
        K: Borrow<Q>,
        V: Borrow<W>,
    {
        turn().await;
        self.inner.insert(key, value)
    }

    /// Inserts every pair in one transaction (see [`crate::Index::extend`]).
    ///
    /// # Errors
    ///
    /// As the sync [`crate::Index::extend`].
    pub async fn extend<'a, I>(&self, items: I) -> Result<()>
    where
        I: IntoIterator<Item = (&'a K, &'a V)>,
        K: 'a,
        V: 'a,
    {
        turn().await;
        self.inner.extend(items)
    }

    /// The value of `key` (see [`crate::Index::get`]).
    ///
    /// # Errors
    ///
    /// As the sync [`crate::Index::get`].
    pub async fn get<Q: Serialize + ?Sized>(&self, key: &Q) -> Result<Option<V>>
    where
        K: Borrow<Q>,
    {
        coop().await;
        self.inner.get(key)
    }

    /// Removes `key` and returns its value (see [`crate::Index::remove`]).
    ///
    /// # Errors
    ///
    /// As the sync [`crate::Index::remove`].
    pub async fn remove<Q: Serialize + ?Sized>(&self, key: &Q) -> Result<Option<V>>
    where
        K: Borrow<Q>,
    {
        turn().await;
        self.inner.remove(key)
    }

    /// True if `key` is in the index.
    ///
    /// # Errors
    ///
    /// As the sync [`crate::Index::contains_key`].
    pub async fn contains_key<Q: Serialize + ?Sized>(&self, key: &Q) -> Result<bool>
    where
        K: Borrow<Q>,
    {
        coop().await;
        self.inner.contains_key(key)
    }

    /// How many items the index holds.
    ///
    /// # Errors
    ///
    /// As the sync [`crate::Index::len`].
    pub async fn len(&self) -> Result<usize> {
        coop().await;
        self.inner.len()
    }

    /// True when the index holds nothing.
    ///
    /// # Errors
    ///
    /// As the sync [`crate::Index::is_empty`].
    pub async fn is_empty(&self) -> Result<bool> {
        coop().await;
        self.inner.is_empty()
    }

    /// Removes every item; how many.
    ///
    /// # Errors
    ///
    /// As the sync [`crate::Index::clear`].
    pub async fn clear(&self) -> Result<usize> {
        turn().await;
        self.inner.clear()
    }

    /// The first item (in insertion order), left in place.
    ///
    /// # Errors
    ///
    /// As the sync [`crate::Index::first`].
    pub async fn first(&self) -> Result<Option<(K, V)>> {
        coop().await;
        self.inner.first()
    }

    /// The last item, left in place.
    ///
    /// # Errors
    ///
    /// As the sync [`crate::Index::last`].
    pub async fn last(&self) -> Result<Option<(K, V)>> {
        coop().await;
        self.inner.last()
    }

    /// Removes and returns the first item (see [`crate::Index::pop_first`]).
    ///
    /// # Errors
    ///
    /// As the sync [`crate::Index::pop_first`].
    pub async fn pop_first(&self) -> Result<Option<(K, V)>> {
        turn().await;
        self.inner.pop_first()
    }

    /// Removes and returns the last item.
    ///
    /// # Errors
    ///
    /// As the sync [`crate::Index::pop_last`].
    pub async fn pop_last(&self) -> Result<Option<(K, V)>> {
        turn().await;
        self.inner.pop_last()
    }

    /// The value of `key`, inserting `make()` first when it is missing (see
    /// [`crate::Index::get_or_insert_with`]).
    ///
    /// # Errors
    ///
    /// As the sync [`crate::Index::get_or_insert_with`].
    pub async fn get_or_insert_with<Q: Serialize + ?Sized>(&self, key: &Q, make: impl FnOnce() -> V) -> Result<V>
    where
        K: Borrow<Q>,
    {
        turn().await;
        self.inner.get_or_insert_with(key, make)
    }

    /// Pushes onto the back of the index's integer-keyed queue (see [`crate::Index::push`]).
    ///
    /// # Errors
    ///
    /// As the sync [`crate::Index::push`].
    pub async fn push<W: Serialize + ?Sized>(&self, value: &W) -> Result<Key>
    where
        V: Borrow<W>,
    {
        turn().await;
        self.inner.push(value)
    }

    /// Pushes onto either end of a queue (see [`crate::Index::push_with`]).
    ///
    /// # Errors
    ///
    /// As the sync [`crate::Index::push_with`].
    pub async fn push_with<W: Serialize + ?Sized>(&self, value: &W, opts: &PushOptions) -> Result<Key>
    where
        V: Borrow<W>,
    {
        turn().await;
        self.inner.push_with(value, opts)
    }

    /// Takes the front item of the integer-keyed queue.
    ///
    /// # Errors
    ///
    /// As the sync [`crate::Index::pull`].
    pub async fn pull(&self) -> Result<Option<(Key, V)>> {
        turn().await;
        self.inner.pull()
    }

    /// Takes an item from either end of a queue.
    ///
    /// # Errors
    ///
    /// As the sync [`crate::Index::pull_with`].
    pub async fn pull_with(&self, opts: &PullOptions) -> Result<Option<(Key, V)>> {
        turn().await;
        self.inner.pull_with(opts)
    }

    /// [`Index::pull_with`], waiting up to `wait` for an item, holding no
    /// thread while it waits (see [`Cache::pull_timeout`]).
    ///
    /// # Errors
    ///
    /// As the sync [`crate::Index::pull_timeout`].
    pub async fn pull_timeout(&self, opts: &PullOptions, wait: Duration) -> Result<Option<(Key, V)>> {
        turn().await;
        let until = crate::deadline::from_now(wait);
        let cache = self.inner.cache();
        take_until(
            cache.store(),
            until,
            |slice| cache.pull_by(opts, Some(slice)),
            || Ok(None),
        )
        .await
    }

    /// Leases the front item of a queue (see [`crate::Index::lease_with`]).
    ///
    /// # Errors
    ///
    /// As the sync [`crate::Index::lease_with`].
    pub async fn lease_with(&self, opts: &LeaseOptions) -> Result<Option<Lease<V>>> {
        turn().await;
        Ok(self.inner.lease_with(opts)?.map(Lease::from))
    }
}
