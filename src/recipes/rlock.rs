//! `RLock`: a re-entrant lock with an expiry, shared by processes.

use std::time::Duration;

use crate::cache::Cache;
use crate::error::{Error, Result};
use crate::options::SetOptions;

use super::{positive, wait_for};

/// A re-entrant lock shared by every thread and process on the cache
/// directory (python-diskcache's `RLock`): its holder may acquire it again,
/// and must release it as many times.
///
/// The key `name` holds `(holder, count)`. The holder is the calling thread
/// (`"<process id>-<thread id>"`, read at each call), or the id given to
/// [`RLock::holder`]. Every acquire and release restarts the expiry, so a
/// holder that dies frees the lock `expire` after its last call; the last
/// release deletes the key.
///
/// ```
/// use std::time::Duration;
/// use diskq::RLock;
///
/// let dir = tempfile::tempdir()?;
/// let cache = diskq::Cache::open(dir.path())?;
/// let rlock = RLock::new(&cache, "user-123", Duration::from_secs(60))?;
/// rlock.acquire()?;
/// rlock.acquire()?; // the same thread: re-entry
/// rlock.release()?;
/// rlock.release()?;
/// assert!(!rlock.locked()?);
/// assert!(matches!(rlock.release(), Err(diskq::Error::InvalidUse(_))));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct RLock {
    cache: Cache,
    name: String,
    expire: Duration,
    holder: Option<String>,
}

impl RLock {
    /// A handle on the re-entrant lock stored under the key `name`; a holder
    /// keeps it for at most `expire` after its last acquire or release.
    ///
    /// # Errors
    ///
    /// Fails with [`Error::InvalidSetting`] for a zero `expire`.
    ///
    /// ```
    /// use std::time::Duration;
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::Cache::open(dir.path())?;
    /// let rlock = diskq::RLock::new(&cache, "user-123", Duration::from_secs(60))?;
    /// assert_eq!(rlock.name(), "user-123");
    /// assert!(diskq::RLock::new(&cache, "user-123", Duration::ZERO).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(cache: &Cache, name: impl Into<String>, expire: Duration) -> Result<RLock> {
        Ok(RLock {
            cache: cache.clone(),
            name: name.into(),
            expire: positive("RLock", "expire", expire)?,
            holder: None,
        })
    }

    /// Uses `id` as the holder instead of the calling thread: every handle
    /// (of any thread or process) with the same id is the same holder, for
    /// a lock that moves between threads with the work.
    ///
    /// ```
    /// use std::time::Duration;
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::Cache::open(dir.path())?;
    /// let expire = Duration::from_secs(60);
    /// let a = diskq::RLock::new(&cache, "user-123", expire)?.holder("job-7");
    /// let b = diskq::RLock::new(&cache, "user-123", expire)?.holder("job-7");
    /// a.acquire()?;
    /// std::thread::spawn(move || b.release()).join().unwrap()?;
    /// assert!(!a.locked()?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use = "returns the changed handle; the original is consumed"]
    pub fn holder(mut self, id: impl Into<String>) -> RLock {
        self.holder = Some(id.into());
        self
    }

    /// The lock's name, which is also its key.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # let dir = tempfile::tempdir()?;
    /// # let cache = diskq::Cache::open(dir.path())?;
    /// let rlock = diskq::RLock::new(&cache, "user-123", Duration::from_secs(60))?;
    /// assert_eq!(rlock.name(), "user-123");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Takes the lock if it is free or already held by this holder (adding
    /// one to the count); true if taken. Does not wait.
    ///
    /// # Errors
    ///
    /// The storage errors of a write ([the crate's errors](crate#errors)), and
    /// [`Error::InvalidUse`] on a read-only cache; never [`Error::Timeout`]:
    /// the write waits for the lock as long as it takes; [`Error::InvalidUse`]
    /// when this holder's count would overflow. A lock of another holder is not
    /// an error (`Ok(false)`).
    ///
    /// ```
    /// # use std::time::Duration;
    /// # let dir = tempfile::tempdir()?;
    /// # let cache = diskq::Cache::open(dir.path())?;
    /// let rlock = diskq::RLock::new(&cache, "user-123", Duration::from_secs(60))?;
    /// assert!(rlock.try_acquire()?);
    /// assert!(rlock.try_acquire()?);
    /// let other = rlock.clone();
    /// assert!(!std::thread::spawn(move || other.try_acquire()).join().unwrap()?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_acquire(&self) -> Result<bool> {
        self.try_acquire_as(&self.me())
    }

    /// Waits until the lock is free (or held by this holder) and takes it.
    ///
    /// # Errors
    ///
    /// As [`RLock::try_acquire`].
    ///
    /// ```
    /// # use std::time::Duration;
    /// # let dir = tempfile::tempdir()?;
    /// # let cache = diskq::Cache::open(dir.path())?;
    /// let rlock = diskq::RLock::new(&cache, "user-123", Duration::from_secs(60))?;
    /// rlock.acquire()?;
    /// rlock.release()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn acquire(&self) -> Result<()> {
        let me = self.me();
        wait_for(None, || self.try_acquire_as(&me)).map(|_| ())
    }

    /// Waits up to `timeout` for the lock; true if it was taken.
    ///
    /// # Errors
    ///
    /// As [`RLock::try_acquire`]; the timeout passing is not an error
    /// (`Ok(false)`).
    ///
    /// ```
    /// # use std::time::Duration;
    /// # let dir = tempfile::tempdir()?;
    /// # let cache = diskq::Cache::open(dir.path())?;
    /// let rlock = diskq::RLock::new(&cache, "user-123", Duration::from_secs(60))?;
    /// assert!(rlock.acquire_timeout(Duration::from_millis(10))?);
    /// let other = rlock.clone();
    /// let taken = std::thread::spawn(move || other.acquire_timeout(Duration::from_millis(10)));
    /// assert!(!taken.join().unwrap()?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<bool> {
        let me = self.me();
        wait_for(Some(timeout), || self.try_acquire_as(&me))
    }

    /// Waits for the lock and returns a guard that releases it (once) when
    /// dropped. The guard remembers the holder, so it may be dropped on
    /// another thread.
    ///
    /// # Errors
    ///
    /// As [`RLock::acquire`].
    ///
    /// ```
    /// # use std::time::Duration;
    /// # let dir = tempfile::tempdir()?;
    /// # let cache = diskq::Cache::open(dir.path())?;
    /// let rlock = diskq::RLock::new(&cache, "user-123", Duration::from_secs(60))?;
    /// {
    ///     let _outer = rlock.lock()?;
    ///     let _inner = rlock.lock()?;
    /// }
    /// assert!(!rlock.locked()?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn lock(&self) -> Result<RLockGuard<'_>> {
        let me = self.me();
        wait_for(None, || self.try_acquire_as(&me))?;
        Ok(RLockGuard {
            rlock: self,
            holder: Some(me),
        })
    }

    /// Gives back one acquisition; the last one frees the lock.
    ///
    /// # Errors
    ///
    /// Fails with [`Error::InvalidUse`], changing nothing, when the caller
    /// does not hold the lock (another holder has it, it is free, or it
    /// expired).
    ///
    /// Also the storage errors of a write ([the crate's errors](crate#errors)).
    ///
    /// ```
    /// # use std::time::Duration;
    /// # let dir = tempfile::tempdir()?;
    /// # let cache = diskq::Cache::open(dir.path())?;
    /// let rlock = diskq::RLock::new(&cache, "user-123", Duration::from_secs(60))?;
    /// rlock.acquire()?;
    /// let other = rlock.clone();
    /// let err = std::thread::spawn(move || other.release()).join().unwrap().unwrap_err();
    /// assert!(matches!(err, diskq::Error::InvalidUse(_)));
    /// rlock.release()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn release(&self) -> Result<()> {
        self.release_as(&self.me())
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
    /// let rlock = diskq::RLock::new(&cache, "user-123", Duration::from_secs(60))?;
    /// assert!(!rlock.locked()?);
    /// rlock.acquire()?;
    /// assert!(rlock.locked()?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn locked(&self) -> Result<bool> {
        Ok(self
            .cache
            .get::<(String, u64)>(self.name.as_str())?
            .is_some_and(|(_, n)| n > 0))
    }

    /// The caller's holder id.
    fn me(&self) -> String {
        match &self.holder {
            Some(id) => id.clone(),
            None => format!("{}-{:?}", std::process::id(), std::thread::current().id()),
        }
    }

    fn opts(&self) -> SetOptions {
        SetOptions::new().expire(self.expire).retry(true)
    }

    fn try_acquire_as(&self, me: &str) -> Result<bool> {
        self.cache.transact_with(true, |c| {
            let count = match c.get::<(String, u64)>(self.name.as_str())? {
                Some((holder, n)) if n > 0 && holder != me => return Ok(false),
                Some((_, n)) => n,
                None => 0,
            };
            let count = count
                .checked_add(1)
                .ok_or_else(|| Error::InvalidUse(format!("the RLock {:?} is acquired too many times", self.name)))?;
            c.set_with(self.name.as_str(), &(me, count), &self.opts())?;
            Ok(true)
        })
    }

    fn release_as(&self, me: &str) -> Result<()> {
        self.cache
            .transact_with(true, |c| match c.get::<(String, u64)>(self.name.as_str())? {
                Some((holder, n)) if n > 0 && holder == me => {
                    if n == 1 {
                        c.delete(self.name.as_str())?;
                    } else {
                        c.set_with(self.name.as_str(), &(me, n - 1), &self.opts())?;
                    }
                    Ok(())
                }
                _ => Err(Error::InvalidUse(format!(
                    "release of the RLock {:?} by {me}, which does not hold it",
                    self.name
                ))),
            })
    }
}

/// Holds one acquisition of an [`RLock`] until dropped (or
/// [`RLockGuard::release`]d). A failed release on drop is ignored.
///
/// ```
/// use std::time::Duration;
/// let dir = tempfile::tempdir()?;
/// let cache = diskq::Cache::open(dir.path())?;
/// let rlock = diskq::RLock::new(&cache, "user-123", Duration::from_secs(60))?;
/// let guard = rlock.lock()?;
/// guard.release()?;
/// assert!(!rlock.locked()?);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct RLockGuard<'a> {
    rlock: &'a RLock,
    holder: Option<String>,
}

impl RLockGuard<'_> {
    /// Releases this acquisition now, reporting an error that a drop would
    /// ignore (see [`RLock::release`]).
    ///
    /// # Errors
    ///
    /// As [`RLock::release`]: [`Error::InvalidUse`] when the lock expired and
    /// this holder no longer has it.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # let dir = tempfile::tempdir()?;
    /// # let cache = diskq::Cache::open(dir.path())?;
    /// let rlock = diskq::RLock::new(&cache, "user-123", Duration::from_secs(60))?;
    /// rlock.lock()?.release()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn release(mut self) -> Result<()> {
        match self.holder.take() {
            Some(me) => self.rlock.release_as(&me),
            None => Ok(()),
        }
    }
}

impl Drop for RLockGuard<'_> {
    fn drop(&mut self) {
        if let Some(me) = self.holder.take() {
            // Drop cannot report; an expired lock is free anyway.
            let _ = self.rlock.release_as(&me);
        }
    }
}
