//! The named sub-collections of a `FanoutCache`: a `Cache`, `Deque` or
//! `Index` in `<dir>/cache/<name>`, `<dir>/deque/<name>` or `<dir>/index/<name>`,
//! where python-diskcache's `FanoutCache` puts them.

use std::path::{Component, Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{FanoutCache, open_patiently};
use crate::cache::{Cache, CacheBuilder};
use crate::deque::Deque;
use crate::error::{Error, Result};
use crate::index::Index;
use crate::settings::EvictionPolicy;

impl FanoutCache {
    /// Resolves a sub-collection name to its directory, as python-diskcache
    /// does: `<dir>/<kind>/<name>`, a `/` in the name making subfolders.
    fn named_dir(&self, kind: &str, name: &str) -> Result<PathBuf> {
        let invalid = |why: &str| Error::InvalidUse(format!("invalid {kind} name {name:?}: {why}"));
        if name.is_empty() {
            return Err(invalid("it is empty"));
        }
        let mut dir = self.inner.dir.join(kind);
        for part in name.split('/') {
            if part.is_empty() {
                return Err(invalid("it has an empty part (a leading, trailing or doubled '/')"));
            }
            if part == "." || part == ".." {
                return Err(invalid("'.' and '..' would leave the fanout cache's folder"));
            }
            if part.contains(['\\', '\0']) {
                return Err(invalid("backslashes and NUL are not allowed"));
            }
            let mut components = Path::new(part).components();
            let plain = matches!(components.next(), Some(Component::Normal(_))) && components.next().is_none();
            if !plain {
                return Err(invalid("each '/'-separated part must be a plain folder name"));
            }
            dir.push(part);
        }
        Ok(dir)
    }

    /// The open handle on a named sub-collection, opening it on first use.
    fn named(&self, dir: PathBuf, open: impl FnOnce(&Path) -> Result<Cache>) -> Result<Cache> {
        let lock = || self.inner.named.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(cache) = lock().get(&dir) {
            return Ok(cache.clone());
        }
        // Opened outside the lock: opening may wait for other processes.
        let cache = open(&dir)?;
        Ok(lock().entry(dir).or_insert(cache).clone())
    }

    /// The [`Cache`] named `name`, in `<dir>/cache/<name>` (python-diskcache's
    /// `FanoutCache.cache`): default settings, a 60 s timeout. A `/` in the
    /// name makes subfolders (`"a/b"` is `<dir>/cache/a/b`), as in Python.
    /// Handles are kept: asking again for a name returns a clone.
    ///
    /// # Errors
    ///
    /// Fails with [`Error::InvalidUse`] for an empty name, an empty part,
    /// `.` or `..`, a backslash or NUL.
    ///
    /// Also the errors of [`Cache::open`] for the collection's directory.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let fanout = diskq::FanoutCache::open(dir.path())?;
    /// let sessions = fanout.cache("sessions")?;
    /// sessions.set("abc", &123)?;
    /// assert_eq!(sessions.directory(), dir.path().canonicalize()?.join("cache/sessions"));
    /// assert!(fanout.cache("../escape").is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn cache(&self, name: &str) -> Result<Cache> {
        let dir = self.named_dir("cache", name)?;
        self.named(dir, |dir| open_patiently(&Cache::builder(), &self.inner.dir, dir))
    }

    /// [`FanoutCache::cache`] opened with options (a new handle each call).
    ///
    /// # Errors
    ///
    /// As [`FanoutCache::cache`]: [`Error::InvalidUse`] for an invalid name,
    /// and the errors of [`CacheBuilder::open`] with `builder` (such as
    /// [`Error::InvalidSetting`] for an invalid option).
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let fanout = diskq::FanoutCache::open(dir.path())?;
    /// let small = fanout.cache_with("thumbnails", diskq::Cache::builder().size_limit(1 << 20))?;
    /// assert_eq!(small.size_limit(), 1 << 20);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn cache_with(&self, name: &str, builder: CacheBuilder) -> Result<Cache> {
        let dir = self.named_dir("cache", name)?;
        open_patiently(&builder, &self.inner.dir, &dir)
    }

    /// The [`Deque`] named `name`, in `<dir>/deque/<name>` (python-diskcache's
    /// `FanoutCache.deque`; eviction policy `none`). Names as for
    /// [`FanoutCache::cache`]; bound it with [`Deque::with_maxlen`].
    ///
    /// # Errors
    ///
    /// As [`FanoutCache::cache`]: [`Error::InvalidUse`] for an invalid name,
    /// and the errors of [`Deque::open`].
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let fanout = diskq::FanoutCache::open(dir.path())?;
    /// let frontier = fanout.deque::<String>("frontier")?;
    /// frontier.push_back("https://example.com/")?;
    /// assert_eq!(fanout.deque::<String>("frontier")?.len()?, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn deque<T: Serialize + DeserializeOwned>(&self, name: &str) -> Result<Deque<T>> {
        let dir = self.named_dir("deque", name)?;
        let cache = self.named(dir, |d| open_unevicted(&self.inner.dir, d))?;
        Ok(Deque::from_cache(cache))
    }

    /// The [`Index`] named `name`, in `<dir>/index/<name>` (python-diskcache's
    /// `FanoutCache.index`; eviction policy `none`). Names as for
    /// [`FanoutCache::cache`].
    ///
    /// # Errors
    ///
    /// As [`FanoutCache::cache`]: [`Error::InvalidUse`] for an invalid name,
    /// and the errors of [`Index::open`].
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let fanout = diskq::FanoutCache::open(dir.path())?;
    /// let status = fanout.index::<String, u16>("status")?;
    /// status.insert("/", &200)?;
    /// assert_eq!(status.get("/")?, Some(200));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn index<K, V>(&self, name: &str) -> Result<Index<K, V>>
    where
        K: Serialize + DeserializeOwned,
        V: Serialize + DeserializeOwned,
    {
        let dir = self.named_dir("index", name)?;
        let cache = self.named(dir, |d| open_unevicted(&self.inner.dir, d))?;
        Ok(Index::from_cache(cache))
    }
}

/// Opens a deque's or an index's cache, as `Deque::open` and `Index::open` do.
fn open_unevicted(root: &Path, dir: &Path) -> Result<Cache> {
    open_patiently(&Cache::builder().eviction_policy(EvictionPolicy::None), root, dir)
}
