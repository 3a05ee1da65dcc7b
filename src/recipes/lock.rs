//! `Lock`: a mutual-exclusion lock with an expiry, shared by processes.

use std::time::Duration;

use crate::cache::Cache;
use crate::error::{Error, Result};
use crate::options::SetOptions;

use super::{holder_token, positive, wait_for};

/// A lock shared by every thread and process on the cache directory
/// (python-diskcache's `Lock`), that a dead holder keeps only until its
/// expiry.
///
/// The lock is the key `name`: acquiring [`Cache::add`]s it with this
/// handle's token and the expiry, releasing deletes it if it still holds the
/// token. A holder that dies (or runs past the expiry) loses the lock when
/// the key expires, and the next caller takes it. [`Lock::refresh`] pushes
/// the expiry back for long work.
///
/// The holder is this `Lock` value and its clones, not the thread: a clone
/// (like an [`RLock`](crate::RLock) clone with a [`holder`](crate::RLock::holder)
/// id) is the same holder, so it can release what the original took, e.g.
/// from the thread the work moved to. Give each independent thread (or
/// task) its own `Lock::new`. The lock is not re-entrant: acquiring it again
/// through the handle that holds it (or a clone) waits until the expiry.
///
/// ```
/// use std::time::Duration;
/// use diskq::Lock;
///
/// let dir = tempfile::tempdir()?;
/// let cache = diskq::Cache::open(dir.path())?;
/// let lock = Lock::new(&cache, "report-123", Duration::from_secs(60))?;
/// {
///     let _guard = lock.lock()?;
///     assert!(lock.locked()?);
///     // Another handle (here or in another process) cannot take it now.
///     let other = Lock::new(&cache, "report-123", Duration::from_secs(60))?;
///     assert!(!other.try_acquire()?);
/// }
/// assert!(!lock.locked()?);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Lock {
    cache: Cache,
    name: String,
    expire: Duration,
    token: String,
}

impl Lock {
    /// A handle on the lock stored under the key `name`, which holders keep
    /// for at most `expire` (after which others may take it).
    ///
    /// # Errors
    ///
    /// Fails with [`Error::InvalidSetting`] for a zero `expire`. Nothing is
    /// written until the first acquire.
    ///
    /// ```
    /// use std::time::Duration;
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::Cache::open(dir.path())?;
    /// let lock = diskq::Lock::new(&cache, "nightly-job", Duration::from_secs(600))?;
    /// assert_eq!(lock.name(), "nightly-job");
    /// assert!(diskq::Lock::new(&cache, "nightly-job", Duration::ZERO).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(cache: &Cache, name: impl Into<String>, expire: Duration) -> Result<Lock> {
        Ok(Lock {
            cache: cache.clone(),
            name: name.into(),
            expire: positive("Lock", "expire", expire)?,
            token: holder_token(),
        })
    }

    /// The lock's name, which is also its key.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # let dir = tempfile::tempdir()?;
    /// # let cache = diskq::Cache::open(dir.path())?;
    /// let lock = diskq::Lock::new(&cache, "report-123", Duration::from_secs(60))?;
    /// assert_eq!(lock.name(), "report-123");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Takes the lock if it is free (or its holder's expiry has passed);
    /// true if this call took it. Does not wait for the holder.
    ///
    /// # Errors
    ///
    /// The storage errors of a write ([the crate's errors](crate#errors)), and
    /// [`Error::InvalidUse`] on a read-only cache; never [`Error::Timeout`]:
    /// the write waits for the lock as long as it takes. A lock held by another
    /// is not an error (`Ok(false)`).
    ///
    /// ```
    /// # use std::time::Duration;
    /// # let dir = tempfile::tempdir()?;
    /// # let cache = diskq::Cache::open(dir.path())?;
    /// let lock = diskq::Lock::new(&cache, "report-123", Duration::from_secs(60))?;
    /// assert!(lock.try_acquire()?);
    /// assert!(!lock.try_acquire()?, "not re-entrant");
    /// lock.release()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_acquire(&self) -> Result<bool> {
        let opts = SetOptions::new().expire(self.expire).retry(true);
        self.cache.add_with(self.name.as_str(), &self.token, &opts)
    }

    /// Waits until the lock is free and takes it. Blocks for as long as
    /// another holder keeps it (at most its expiry, if it never releases).
    ///
    /// # Errors
    ///
    /// As [`Lock::try_acquire`]: the storage errors of a write ([the crate's
    /// errors](crate#errors)), and [`Error::InvalidUse`] on a read-only cache;
    /// never [`Error::Timeout`]: the write waits for the lock as long as it
    /// takes.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # let dir = tempfile::tempdir()?;
    /// # let cache = diskq::Cache::open(dir.path())?;
    /// let lock = diskq::Lock::new(&cache, "report-123", Duration::from_secs(60))?;
    /// lock.acquire()?;
    /// // ... work ...
    /// lock.release()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn acquire(&self) -> Result<()> {
        wait_for(None, || self.try_acquire()).map(|_| ())
    }

    /// Waits up to `timeout` for the lock; true if it was taken, false if
    /// the timeout passed first.
    ///
    /// # Errors
    ///
    /// As [`Lock::try_acquire`]; the timeout passing is not an error
    /// (`Ok(false)`).
    ///
    /// ```
    /// # use std::time::Duration;
    /// # let dir = tempfile::tempdir()?;
    /// # let cache = diskq::Cache::open(dir.path())?;
    /// let first = diskq::Lock::new(&cache, "report-123", Duration::from_secs(60))?;
    /// let second = diskq::Lock::new(&cache, "report-123", Duration::from_secs(60))?;
    /// assert!(first.acquire_timeout(Duration::from_millis(10))?);
    /// assert!(!second.acquire_timeout(Duration::from_millis(10))?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<bool> {
        wait_for(Some(timeout), || self.try_acquire())
    }

    /// Waits for the lock and returns a guard that releases it when dropped.
    ///
    /// # Errors
    ///
    /// As [`Lock::acquire`].
    ///
    /// ```
    /// # use std::time::Duration;
    /// # let dir = tempfile::tempdir()?;
    /// # let cache = diskq::Cache::open(dir.path())?;
    /// let lock = diskq::Lock::new(&cache, "report-123", Duration::from_secs(60))?;
    /// {
    ///     let _guard = lock.lock()?;
    ///     assert!(lock.locked()?);
    /// }
    /// assert!(!lock.locked()?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn lock(&self) -> Result<LockGuard<'_>> {
        self.acquire()?;
        Ok(LockGuard { lock: self, held: true })
    }

    /// Releases the lock, atomically: deletes the key only if it still
    /// holds this handle's token.
    ///
    /// # Errors
    ///
    /// Releasing a lock this handle does not hold (never acquired, already
    /// released, or expired and perhaps taken by another) is an error,
    /// [`Error::InvalidUse`], and changes nothing: it never frees someone
    /// else's lock.
    ///
    /// Also the storage errors of a write ([the crate's errors](crate#errors)).
    ///
    /// ```
    /// # use std::time::Duration;
    /// # let dir = tempfile::tempdir()?;
    /// # let cache = diskq::Cache::open(dir.path())?;
    /// let lock = diskq::Lock::new(&cache, "report-123", Duration::from_secs(60))?;
    /// lock.acquire()?;
    /// lock.release()?;
    /// assert!(matches!(lock.release(), Err(diskq::Error::InvalidUse(_))));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn release(&self) -> Result<()> {
        if self.if_held(|c| c.delete(self.name.as_str()))? {
            Ok(())
        } else {
            Err(Error::InvalidUse(format!(
                "release of the Lock {:?}, which this handle does not hold \
                 (never acquired, already released, or expired)",
                self.name
            )))
        }
    }

    /// True when some holder (of any process) has the lock now.
    ///
    /// # Errors
    ///
    /// Only the storage errors of a read ([the crate's errors](crate#errors)).
    ///
    /// ```
    /// # use std::time::Duration;
    /// # let dir = tempfile::tempdir()?;
    /// # let cache = diskq::Cache::open(dir.path())?;
    /// let lock = diskq::Lock::new(&cache, "report-123", Duration::from_secs(60))?;
    /// assert!(!lock.locked()?);
    /// lock.acquire()?;
    /// assert!(lock.locked()?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn locked(&self) -> Result<bool> {
        self.cache.contains_key(self.name.as_str())
    }

    /// Restarts the expiry (a full `expire` from now) if this handle holds
    /// the lock; true if it did. For work that may run longer than the
    /// expiry: refresh well within it.
    ///
    /// # Errors
    ///
    /// The storage errors of a write ([the crate's errors](crate#errors)), and
    /// [`Error::InvalidUse`] on a read-only cache; never [`Error::Timeout`]:
    /// the write waits for the lock as long as it takes. A lock this handle
    /// does not hold is not an error (`Ok(false)`).
    ///
    /// ```
    /// # use std::time::Duration;
    /// # let dir = tempfile::tempdir()?;
    /// # let cache = diskq::Cache::open(dir.path())?;
    /// let lock = diskq::Lock::new(&cache, "report-123", Duration::from_secs(60))?;
    /// assert!(!lock.refresh()?);
    /// lock.acquire()?;
    /// assert!(lock.refresh()?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn refresh(&self) -> Result<bool> {
        self.if_held(|c| c.touch(self.name.as_str(), Some(self.expire)))
    }

    /// Runs `f` in one transaction if the key holds this handle's token.
    fn if_held(&self, f: impl FnOnce(&Cache) -> Result<bool>) -> Result<bool> {
        self.cache.transact_with(true, |c| {
            let holder = match c.get::<String>(self.name.as_str()) {
                Ok(holder) => holder,
                // Some other value (a Python lock's None, say): not ours.
                Err(e) if e.is_decode() => None,
                Err(e) => return Err(e),
            };
            if holder.as_deref() == Some(self.token.as_str()) {
                f(c)
            } else {
                Ok(false)
            }
        })
    }
}

/// Holds a [`Lock`] until dropped (or [`LockGuard::release`]d).
///
/// A release that fails on drop (the lock had expired, or the database
/// failed) is ignored; call [`LockGuard::release`] to see it.
///
/// ```
/// use std::time::Duration;
/// let dir = tempfile::tempdir()?;
/// let cache = diskq::Cache::open(dir.path())?;
/// let lock = diskq::Lock::new(&cache, "report-123", Duration::from_secs(60))?;
/// let guard = lock.lock()?;
/// guard.release()?;
/// assert!(!lock.locked()?);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct LockGuard<'a> {
    lock: &'a Lock,
    held: bool,
}

impl LockGuard<'_> {
    /// Releases the lock now, reporting an error that a drop would ignore
    /// (see [`Lock::release`]).
    ///
    /// # Errors
    ///
    /// As [`Lock::release`]: [`Error::InvalidUse`] when the lock had expired
    /// and is no longer this guard's.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # let dir = tempfile::tempdir()?;
    /// # let cache = diskq::Cache::open(dir.path())?;
    /// let lock = diskq::Lock::new(&cache, "report-123", Duration::from_secs(60))?;
    /// lock.lock()?.release()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn release(mut self) -> Result<()> {
        self.held = false;
        self.lock.release()
    }
}

impl Drop for LockGuard<'_> {
    fn drop(&mut self) {
        if self.held {
            // Drop cannot report; an expired lock is free anyway.
            let _ = self.lock.release();
        }
    }
}
