//! Batches: many gets in one snapshot, many sets in one transaction
//! (python-diskcache has neither: its issue #45).

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::cache::{Cache, new_row};
use crate::codec;
use crate::error::Result;
use crate::key::Key;
use crate::options::SetOptions;

impl Cache {
    /// The values of `keys`, in order, read from one consistent snapshot
    /// (`None` for absent or expired keys).
    ///
    /// Faster than one `get` per key: the read lock is taken once. Under the
    /// least-recently-used and least-frequently-used policies, and with
    /// statistics on, accesses are not recorded by a batch read.
    ///
    /// # Errors
    ///
    /// [`Error::Decode`](crate::Error::Decode) (naming the key and `V`) when
    /// the stored value does not decode as `V`, and
    /// [`Error::Pickled`](crate::Error::Pickled) for a Python pickle, for the
    /// first key whose value does not decode (then no value is returned);
    /// [`Error::InvalidKey`](crate::Error::InvalidKey) for a key that cannot be
    /// stored.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::Cache::open(dir.path())?;
    /// cache.set_many([("a", &1), ("b", &2)], &Default::default())?;
    /// let values: Vec<Option<i64>> = cache.get_many(["a", "x", "b"])?;
    /// assert_eq!(values, [Some(1), None, Some(2)]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get_many<K, V, I>(&self, keys: I) -> Result<Vec<Option<V>>>
    where
        K: Into<Key>,
        V: DeserializeOwned,
        I: IntoIterator<Item = K>,
    {
        let keys = keys
            .into_iter()
            .map(|k| {
                let k = k.into();
                k.validate().map(|()| k)
            })
            .collect::<Result<Vec<Key>>>()?;
        self.store().read_snapshot(|s| {
            let now = self.now();
            keys.iter()
                .map(|key| match s.get_live(key, now)? {
                    Some(mut row) => self.load(&mut row)?.map(|st| codec::decode(st, key)).transpose(),
                    None => Ok(None),
                })
                .collect()
        })
    }

    /// Stores every `(key, value)` pair in one transaction: all or none, and
    /// one commit instead of one per item. Returns how many were stored.
    ///
    /// # Errors
    ///
    /// [`Error::Encode`](crate::Error::Encode) when the value cannot be
    /// serialized (a serde error, such as a map with non-text keys or a failing
    /// `Serialize` impl), for any item (then none is stored);
    /// [`Error::Io`](crate::Error::Io) for a value file; the errors of any
    /// write ([the crate's errors](crate#errors)):
    /// [`Error::Timeout`](crate::Error::Timeout) when the write lock stays
    /// taken past the timeout, [`Error::InvalidUse`](crate::Error::InvalidUse)
    /// on a read-only handle. With `opts.retry`, a lock timeout is retried
    /// instead.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::Cache::open(dir.path())?;
    /// let stored = cache.set_many([("a", &1), ("b", &2), ("c", &3)], &diskq::SetOptions::new())?;
    /// assert_eq!(stored, 3);
    /// assert_eq!(cache.get_many::<_, i64, _>(["a", "c", "z"])?, [Some(1), Some(3), None]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set_many<'v, K, V, I>(&self, items: I, opts: &SetOptions) -> Result<usize>
    where
        K: Into<Key>,
        V: Serialize + ?Sized + 'v,
        I: IntoIterator<Item = (K, &'v V)>,
    {
        // Encode (and write value files) before taking the lock.
        let mut prepared = Vec::new();
        for (key, value) in items {
            let key = key.into();
            let item = key.validate().and_then(|()| self.prepare(codec::encode(value)?));
            match item {
                Ok(p) => prepared.push((key, p)),
                Err(e) => {
                    // Nothing of the batch is stored: its files go too.
                    for name in prepared.iter().filter_map(|(_, p)| p.filename.as_deref()) {
                        self.store().disk.remove(name);
                    }
                    return Err(e);
                }
            }
        }
        let files: Vec<String> = prepared.iter().filter_map(|(_, p)| p.filename.clone()).collect();
        self.store().write_with_files(opts.retry, files, |s| {
            let now = self.now();
            let expire_time = Self::expire_time(now, opts.expire);
            for (key, p) in &prepared {
                s.upsert(key, now, &new_row(p, expire_time, opts.tag.as_deref()))?;
            }
            self.cull_after_write(s, now)?;
            Ok(prepared.len())
        })
    }
}
