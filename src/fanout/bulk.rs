//! Operations that span the shards of a `FanoutCache`: sizes, statistics,
//! `check`, bulk removals and key iteration.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;

use super::{FanoutCache, FanoutStats};
use crate::cache::Cache;
use crate::error::Result;
use crate::key::Key;
use crate::maintenance::Removal;
use crate::options::{CheckOptions, Warning};
use crate::settings::EvictionPolicy;

/// Rows removed per transaction by `expire`, `evict` and `clear`.
const BATCH: u64 = 100;
/// Rows removed per transaction by `cull` (python-diskcache's number).
const CULL_BATCH: u64 = 10;

impl FanoutCache {
    /// The number of live items in all shards.
    ///
    /// # Errors
    ///
    /// Only the storage errors of a read ([the crate's errors](crate#errors)).
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::FanoutCache::open(dir.path())?;
    /// for i in 0..10 {
    ///     cache.set(i, &i)?;
    /// }
    /// assert_eq!(cache.len()?, 10); // summed over the shards
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn len(&self) -> Result<usize> {
        self.inner.shards.iter().map(Cache::len).sum()
    }

    /// True when no shard holds a live item.
    ///
    /// # Errors
    ///
    /// Only the storage errors of a read ([the crate's errors](crate#errors)).
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::FanoutCache::open(dir.path())?;
    /// assert!(cache.is_empty()?);
    /// cache.set("k", &1)?;
    /// assert!(!cache.is_empty()?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_empty(&self) -> Result<bool> {
        for shard in &self.inner.shards {
            if !shard.is_empty()? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Bytes on disk of all shards ([`Cache::volume`]); named sub-collections
    /// are not included.
    ///
    /// # Errors
    ///
    /// Only the storage errors of a read ([the crate's errors](crate#errors)),
    /// for the first shard that fails.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::FanoutCache::open(dir.path())?;
    /// let before = cache.volume()?;
    /// cache.set_bytes("big", &[0u8; 100_000])?;
    /// assert!(cache.volume()? >= before + 100_000);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn volume(&self) -> Result<u64> {
        self.inner.shards.iter().map(Cache::volume).sum()
    }

    /// Hits and misses summed over the shards, and this handle's timeouts.
    ///
    /// Unlike python-diskcache's `stats()`, reading them does not turn
    /// statistics on: use [`FanoutCache::set_statistics`].
    ///
    /// # Errors
    ///
    /// Only the storage errors of a read ([the crate's errors](crate#errors)).
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::FanoutCache::builder().statistics(true).open(dir.path())?;
    /// cache.set("a", &1)?;
    /// cache.get::<i64>("a")?;
    /// cache.get::<i64>("b")?;
    /// let stats = cache.stats()?;
    /// assert_eq!((stats.hits, stats.misses, stats.timeouts), (1, 1, 0));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn stats(&self) -> Result<FanoutStats> {
        let mut total = FanoutStats {
            timeouts: self.inner.timeouts.load(Ordering::Relaxed),
            ..FanoutStats::default()
        };
        for shard in &self.inner.shards {
            let s = shard.stats()?;
            total.hits += s.hits;
            total.misses += s.misses;
            total.culled += s.culled;
        }
        Ok(total)
    }

    /// Whether the shards count hits and misses (the first shard's setting).
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// assert!(!diskq::FanoutCache::open(dir.path())?.statistics());
    /// assert!(diskq::FanoutCache::builder().statistics(true).open(dir.path())?.statistics());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn statistics(&self) -> bool {
        self.inner.shards[0].statistics()
    }

    /// Turns hit and miss counting on or off in every shard (waiting for
    /// locked shards).
    ///
    /// # Errors
    ///
    /// The storage errors of a write ([the crate's errors](crate#errors));
    /// shards before a failing one keep the new setting.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::FanoutCache::open(dir.path())?;
    /// cache.set_statistics(true)?;
    /// cache.get::<i64>("missing")?;
    /// assert_eq!(cache.stats()?.misses, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set_statistics(&self, enable: bool) -> Result<()> {
        for shard in &self.inner.shards {
            self.until_done(|| shard.set_statistics(enable))?;
        }
        Ok(())
    }

    /// Sets the hit and miss counts of every shard, and this handle's
    /// timeout count, back to zero (waiting for locked shards).
    ///
    /// # Errors
    ///
    /// The storage errors of a write ([the crate's errors](crate#errors));
    /// shards before a failing one are reset.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::FanoutCache::builder().statistics(true).open(dir.path())?;
    /// cache.get::<i64>("missing")?;
    /// cache.reset_stats()?;
    /// assert_eq!(cache.stats()?, diskq::fanout::FanoutStats::default());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn reset_stats(&self) -> Result<()> {
        for shard in &self.inner.shards {
            self.until_done(|| shard.reset_stats())?;
        }
        self.inner.timeouts.store(0, Ordering::Relaxed);
        Ok(())
    }

    /// Checks every shard ([`Cache::check`], report only) and returns all
    /// warnings, shard by shard. Waits for locked shards (python-diskcache
    /// raises instead).
    ///
    /// # Errors
    ///
    /// As [`Cache::check`], for the first shard that fails (the warnings of the
    /// shards before it are lost with it).
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::FanoutCache::open(dir.path())?;
    /// assert!(cache.check()?.is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn check(&self) -> Result<Vec<Warning>> {
        self.check_with(&CheckOptions::new())
    }

    /// Checks and repairs every shard ([`Cache::repair`]), shard by shard.
    ///
    /// # Errors
    ///
    /// As [`Cache::repair`], for the first shard that fails; the shards before
    /// it stay repaired.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::FanoutCache::open(dir.path())?;
    /// assert!(cache.repair()?.is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn repair(&self) -> Result<Vec<Warning>> {
        self.check_with(&CheckOptions::new().fix(true))
    }

    /// [`FanoutCache::check`] with options (the grace period of orphan
    /// files, see [`Cache::check_with`](crate::Cache::check_with)), shard
    /// by shard.
    ///
    /// # Errors
    ///
    /// As [`Cache::check_with`], for the first shard that fails.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::FanoutCache::open(dir.path())?;
    /// let opts = diskq::CheckOptions::new().fix(true).orphan_grace(std::time::Duration::ZERO);
    /// assert!(cache.check_with(&opts)?.is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn check_with(&self, opts: &CheckOptions) -> Result<Vec<Warning>> {
        let mut warnings = Vec::new();
        for shard in &self.inner.shards {
            warnings.extend(self.until_done(|| shard.check_with(opts))?);
        }
        Ok(warnings)
    }

    /// Removes every expired item; returns how many.
    ///
    /// This and the other bulk removals ([`FanoutCache::evict`],
    /// [`FanoutCache::clear`], [`FanoutCache::cull`]) work in small batches,
    /// each its own transaction, and, as python-diskcache's do, go on past
    /// shard timeouts until every shard is done: they wait for a locked
    /// shard, count its timeouts, and count every item removed.
    ///
    /// # Errors
    ///
    /// The storage errors of a write ([the crate's errors](crate#errors)) other
    /// than timeouts, which are waited out; what was removed before the failure
    /// stays removed.
    ///
    /// ```
    /// use std::sync::{Arc, atomic::{AtomicU64, Ordering}};
    /// use std::time::{Duration, SystemTime};
    /// let now = Arc::new(AtomicU64::new(1_000_000)); // seconds, moved by hand
    /// let clock = now.clone();
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::FanoutCache::builder()
    ///     .clock(move || SystemTime::UNIX_EPOCH + Duration::from_secs(clock.load(Ordering::SeqCst)))
    ///     .open(dir.path())?;
    /// let brief = diskq::SetOptions::new().expire(Duration::from_secs(60));
    /// for i in 0..5 {
    ///     cache.set_with(i, &i, &brief)?;
    /// }
    /// cache.set("forever", &0)?;
    /// now.fetch_add(61, Ordering::SeqCst);
    /// assert_eq!(cache.expire()?, 5);
    /// assert_eq!(cache.len()?, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn expire(&self) -> Result<usize> {
        self.inner
            .shards
            .iter()
            .map(|shard| self.remove_batches(shard, Removal::Expired { now: shard.now() }, BATCH))
            .sum()
    }

    /// Removes every item with `tag`; returns how many.
    ///
    /// # Errors
    ///
    /// As [`FanoutCache::expire`].
    ///
    /// ```
    /// use diskq::SetOptions;
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::FanoutCache::builder().tag_index(true).open(dir.path())?;
    /// for n in 0..10 {
    ///     cache.set_with(n, &n, &SetOptions::new().tag("even-or-odd"))?;
    /// }
    /// assert_eq!(cache.evict("even-or-odd")?, 10);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn evict(&self, tag: &str) -> Result<usize> {
        self.inner
            .shards
            .iter()
            .map(|shard| self.remove_batches(shard, Removal::Tagged(tag), BATCH))
            .sum()
    }

    /// Removes every item of every shard; returns how many.
    ///
    /// # Errors
    ///
    /// As [`FanoutCache::expire`].
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::FanoutCache::open(dir.path())?;
    /// for i in 0..10 {
    ///     cache.set(i, &i)?;
    /// }
    /// assert_eq!(cache.clear()?, 10);
    /// assert!(cache.is_empty()?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn clear(&self) -> Result<usize> {
        self.inner
            .shards
            .iter()
            .map(|shard| self.remove_batches(shard, Removal::All, BATCH))
            .sum()
    }

    /// Removes expired items, then, in each shard over its share of the
    /// size limit, items by the eviction policy until it is under; returns
    /// how many.
    ///
    /// # Errors
    ///
    /// As [`FanoutCache::expire`].
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// // No culling by writes, and no room: `cull` removes everything.
    /// let cache = diskq::FanoutCache::builder().size_limit(0).cull_limit(0).open(dir.path())?;
    /// for i in 0..4 {
    ///     cache.set(i, &i)?;
    /// }
    /// assert_eq!(cache.cull()?, 4);
    /// assert!(cache.is_empty()?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn cull(&self) -> Result<usize> {
        let mut removed = self.expire()?;
        for shard in &self.inner.shards {
            let policy = shard.eviction_policy();
            if policy == EvictionPolicy::None {
                continue;
            }
            while self.until_done(|| shard.volume())? > shard.size_limit() {
                let n = self.remove_batch(shard, Removal::Policy(policy), CULL_BATCH)?;
                if n == 0 {
                    break;
                }
                removed += n;
            }
        }
        Ok(removed)
    }

    /// Removes one batch from `shard`, retrying it past timeouts.
    fn remove_batch(&self, shard: &Cache, batch: Removal<'_>, size: u64) -> Result<usize> {
        self.until_done(|| shard.remove_batch(batch, size))
    }

    /// Removes batches from `shard` until none is left; returns how many.
    fn remove_batches(&self, shard: &Cache, batch: Removal<'_>, size: u64) -> Result<usize> {
        let mut total = 0;
        loop {
            match self.remove_batch(shard, batch, size)? {
                0 => return Ok(total),
                n => total += n,
            }
        }
    }

    /// The live keys of every shard: shard `000`'s in insertion order, then
    /// `001`'s, ... (double-ended: `.rev()` starts from the last shard's
    /// newest key). Iteration order is not insertion order across shards.
    ///
    /// # Errors
    ///
    /// The storage errors of a read ([the crate's errors](crate#errors)) when a
    /// shard's walk cannot start; each key is a `Result` too.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::FanoutCache::open(dir.path())?;
    /// for n in [3, 1, 2] {
    ///     cache.set(n, &0)?;
    /// }
    /// // Integer keys below the shard count sit in the shard of their number.
    /// let keys: Vec<i64> = cache.keys()?.map(|k| k.map(|k| k.as_int().unwrap_or(-1))).collect::<Result<_, _>>()?;
    /// assert_eq!(keys, [1, 2, 3]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn keys(&self) -> Result<Keys> {
        Ok(Keys {
            shards: self.inner.shards.iter().map(Cache::keys).collect::<Result<_>>()?,
        })
    }
}

/// The live keys of a [`FanoutCache`], shard after shard, from
/// [`FanoutCache::keys`].
///
/// Double-ended; each shard's keys are read a page at a time, as
/// [`crate::Keys`] reads them.
///
/// ```
/// let dir = tempfile::tempdir()?;
/// let cache = diskq::FanoutCache::open(dir.path())?;
/// cache.set("a", &1)?;
/// cache.set("b", &2)?;
/// let keys: diskq::fanout::Keys = cache.keys()?;
/// let mut names: Vec<diskq::Key> = keys.collect::<Result<_, _>>()?;
/// names.sort_by_key(|k| k.as_str().map(str::to_owned)); // shard order, not insertion order
/// assert_eq!(names, [diskq::Key::from("a"), diskq::Key::from("b")]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Keys {
    shards: VecDeque<crate::Keys>,
}

impl Iterator for Keys {
    type Item = Result<Key>;

    fn next(&mut self) -> Option<Result<Key>> {
        loop {
            match self.shards.front_mut()?.next() {
                Some(key) => return Some(key),
                None => {
                    self.shards.pop_front();
                }
            }
        }
    }
}

impl DoubleEndedIterator for Keys {
    fn next_back(&mut self) -> Option<Result<Key>> {
        loop {
            match self.shards.back_mut()?.next_back() {
                Some(key) => return Some(key),
                None => {
                    self.shards.pop_back();
                }
            }
        }
    }
}
