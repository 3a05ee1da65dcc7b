//! `MemoizeStampede`: memoize with early probabilistic recomputation.

use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::cache::Cache;
use crate::error::{Error, Result};
use crate::key::Key;
use crate::options::SetOptions;

use super::{positive, random_unit, seconds};

/// The first element of the key of the "someone is recomputing" marker.
const RECOMPUTE_MARK: &str = "diskq.stampede.recompute";

/// Memoizing that protects against cache stampedes by recomputing a value
/// *before* it expires, with a probability that rises as expiry nears
/// (python-diskcache's `memoize_stampede`; Vattani, Chierichetti and
/// Lowenstein, "Optimal Probabilistic Cache Stampede Prevention", VLDB 2015).
///
/// The key holds `(value, delta)`, `delta` being how long the computation
/// took in seconds. A caller that finds it, with `ttl` seconds left before
/// expiry, recomputes early when `-delta × beta × ln(u) ≥ ttl` for a uniform
/// random `u` in (0, 1]; so slow computations start earlier, and a larger
/// `beta` (default 1) favours earlier recomputation. Of the callers that
/// draw early recomputation, one (the one that adds a marker item, keyed by
/// `("diskq.stampede.recompute", key)` and expiring after `delta`) recomputes;
/// the others return the value they found, which is still fresh.
///
/// The early recomputation runs **in the calling thread**, which waits for
/// it and gets the new value, where python-diskcache starts a background
/// thread: so `compute` need not be `Send` or `'static`, and its error goes
/// to that caller (the old value stays until it expires, and the marker
/// keeps other callers from retrying for `delta`).
///
/// A miss (nothing stored, or expired) goes through [`Cache::memoize`]: one
/// caller computes while the others wait for its result.
///
/// ```
/// use std::time::Duration;
/// use diskq::MemoizeStampede;
///
/// let dir = tempfile::tempdir()?;
/// let cache = diskq::Cache::open(dir.path())?;
/// let memo = MemoizeStampede::new(&cache, Duration::from_secs(60))?;
/// let report = |day: u32| -> Result<String, diskq::Error> { Ok(format!("report for day {day}")) };
/// let first: String = memo.memoize(("report", 12), || report(12))?;
/// // Served from the cache while fresh (this closure does not run).
/// let again: String = memo.memoize(("report", 12), || -> Result<String, diskq::Error> { unreachable!() })?;
/// assert_eq!(first, again);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct MemoizeStampede {
    cache: Cache,
    expire: Duration,
    beta: f64,
}

impl MemoizeStampede {
    /// Memoizing into `cache`, each value kept for `expire` after it is
    /// computed; `beta` 1.
    ///
    /// # Errors
    ///
    /// Fails with [`Error::InvalidSetting`] for a zero `expire`.
    ///
    /// ```
    /// use std::time::Duration;
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::Cache::open(dir.path())?;
    /// let memo = diskq::MemoizeStampede::new(&cache, Duration::from_secs(60))?;
    /// assert_eq!(memo.memoize("answer", || Ok::<_, diskq::Error>(42))?, 42);
    /// assert!(diskq::MemoizeStampede::new(&cache, Duration::ZERO).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(cache: &Cache, expire: Duration) -> Result<MemoizeStampede> {
        Ok(MemoizeStampede {
            cache: cache.clone(),
            expire: positive("MemoizeStampede", "expire", expire)?,
            beta: 1.0,
        })
    }

    /// Sets `beta`: 0 never recomputes early, larger values recompute
    /// earlier.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidSetting`] for a negative, NaN or infinite `beta`.
    ///
    /// ```
    /// use std::time::Duration;
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::Cache::open(dir.path())?;
    /// let eager = diskq::MemoizeStampede::new(&cache, Duration::from_secs(60))?.beta(2.0)?;
    /// assert_eq!(eager.memoize("answer", || Ok::<_, diskq::Error>(42))?, 42);
    /// assert!(diskq::MemoizeStampede::new(&cache, Duration::from_secs(60))?.beta(-1.0).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn beta(mut self, beta: f64) -> Result<MemoizeStampede> {
        if !beta.is_finite() || beta < 0.0 {
            return Err(Error::InvalidSetting {
                name: "beta".into(),
                message: format!("MemoizeStampede's beta must be a finite number of at least 0, not {beta}"),
            });
        }
        self.beta = beta;
        Ok(self)
    }

    /// The value of `key` (made as [`Key::of`] makes it), computed by
    /// `compute` on a miss or, with a probability rising as expiry nears,
    /// early (see the type's documentation).
    ///
    /// # Errors
    ///
    /// `compute`'s own error, returned as it is (nothing is stored). The
    /// cache's errors, converted into `E`: [`Error::Encode`] when `key` or the
    /// value cannot be serialized, [`Error::Decode`] when the stored value is
    /// not a `V`, and the storage errors of a write.
    ///
    /// ```
    /// use std::time::Duration;
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::Cache::open(dir.path())?;
    /// let memo = diskq::MemoizeStampede::new(&cache, Duration::from_secs(60))?;
    /// let fib = |n: u64| -> Result<u64, diskq::Error> {
    ///     let (mut a, mut b) = (0u64, 1u64);
    ///     for _ in 0..n { (a, b) = (b, a + b); }
    ///     Ok(a)
    /// };
    /// assert_eq!(memo.memoize(("fib", 90), || fib(90))?, 2880067194370816120);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn memoize<K, V, E, F>(&self, key: K, compute: F) -> Result<V, E>
    where
        K: Serialize,
        V: Serialize + DeserializeOwned,
        E: From<Error>,
        F: FnOnce() -> Result<V, E>,
    {
        let stored = Key::of(&key)?;
        let Some(entry) = self.cache.get_entry::<(V, f64)>(&stored)? else {
            let pair = self.cache.memoize_key(stored, Some(self.expire), || timed(compute))?;
            return Ok(pair.0);
        };
        let (value, delta) = entry.value;
        let Some(expire_time) = entry.expire_time else {
            // Stored without an expiry (not by us): it never goes stale.
            return Ok(value);
        };
        let ttl = expire_time
            .duration_since(SystemTime::now())
            .map_or(0.0, |left| left.as_secs_f64());
        if -delta * self.beta * random_unit().ln() < ttl {
            return Ok(value);
        }
        let mark = Key::encode(&(RECOMPUTE_MARK, &stored))?;
        let mark_opts = SetOptions::new()
            .expire(seconds(delta).clamp(Duration::from_millis(1), self.expire))
            .retry(true);
        if !self.cache.add_with(&mark, &std::process::id(), &mark_opts)? {
            return Ok(value); // another caller is recomputing
        }
        // On an error the marker stays until it expires, so a failing
        // computation is retried once per `delta`, not by every caller.
        let fresh = timed(compute)?;
        let opts = SetOptions::new().expire(self.expire).retry(true);
        self.cache.set_with(&stored, &fresh, &opts)?;
        self.cache.delete(&mark)?;
        Ok(fresh.0)
    }
}

/// Runs `compute`, pairing its value with the seconds it took.
fn timed<V, E>(compute: impl FnOnce() -> Result<V, E>) -> Result<(V, f64), E> {
    let started = Instant::now();
    let value = compute()?;
    Ok((value, started.elapsed().as_secs_f64()))
}
