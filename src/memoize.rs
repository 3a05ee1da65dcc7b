//! `Cache::memoize`: get, or compute once and store, across processes.

use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::cache::Cache;
use crate::error::Error;
use crate::key::Key;
use crate::options::SetOptions;

/// How long a computation may hold its memoize lock before others stop
/// waiting for it (a computer that died releases the lock this way).
const LOCK_TTL: Duration = Duration::from_secs(60);
/// The longest pause between two looks of a waiting caller.
const MAX_PAUSE: Duration = Duration::from_millis(50);

impl Cache {
    /// The value of `key` (made as [`Key::of`] makes it), or, on a miss, the result of `compute`, stored
    /// with `expire` (`Some(Duration::ZERO)` computes without storing).
    ///
    /// Safe against a thundering herd: of many threads or processes that miss
    /// at once, one computes (holding a lock item with a 60 s expiry) while
    /// the others wait for its result; if it fails, dies or takes longer than
    /// the lock's expiry, the next caller computes.
    ///
    /// # Errors
    ///
    /// `compute`'s own error, returned as it is (nothing is stored, and the
    /// next caller computes). Errors of the cache, converted into `E`:
    /// [`Error::Encode`] when `key` or the value cannot be serialized,
    /// [`Error::Decode`] when the stored value is not a `V`, and those of a
    /// write (see [`Cache::set`]).
    ///
    /// ```
    /// use std::time::Duration;
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::Cache::open(dir.path())?;
    /// let slow_square = |n: i64| -> Result<i64, diskq::Error> { Ok(n * n) };
    /// let v = cache.memoize(("square", 12), Some(Duration::from_secs(300)), || slow_square(12))?;
    /// assert_eq!(v, 144);
    /// // The second call is served from the cache.
    /// let v: i64 = cache.memoize(("square", 12), None, || -> Result<i64, diskq::Error> { unreachable!() })?;
    /// assert_eq!(v, 144);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn memoize<K, V, E, F>(&self, key: K, expire: Option<Duration>, compute: F) -> Result<V, E>
    where
        K: Serialize,
        V: Serialize + DeserializeOwned,
        E: From<Error>,
        F: FnOnce() -> Result<V, E>,
    {
        self.memoize_key(Key::of(&key)?, expire, compute)
    }

    /// [`Cache::memoize`] on a key already made.
    pub(crate) fn memoize_key<V, E, F>(&self, key: Key, expire: Option<Duration>, compute: F) -> Result<V, E>
    where
        V: Serialize + DeserializeOwned,
        E: From<Error>,
        F: FnOnce() -> Result<V, E>,
    {
        let lock = Key::encode(&("diskq.memoize.lock", &key))?;
        let started = Instant::now();
        let mut pause = Duration::from_millis(1);
        loop {
            if let Some(value) = self.get::<V>(&key)? {
                return Ok(value);
            }
            let lock_opts = SetOptions::new().expire(LOCK_TTL).retry(true);
            let waited_too_long = started.elapsed() > LOCK_TTL;
            if waited_too_long || self.add_with(&lock, &std::process::id(), &lock_opts)? {
                let result = compute();
                let stored = match &result {
                    Ok(value) if expire != Some(Duration::ZERO) => {
                        let opts = SetOptions {
                            expire,
                            tag: None,
                            retry: true,
                        };
                        self.set_with(&key, value, &opts)
                    }
                    _ => Ok(()),
                };
                // The lock goes even when storing failed (a value that does
                // not serialize), or every caller would wait out its TTL.
                self.delete(&lock)?;
                stored?;
                return result;
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(MAX_PAUSE);
        }
    }
}
