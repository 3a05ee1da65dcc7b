//! `BoundedSemaphore`: at most N holders at once, each slot with an expiry.

use std::time::Duration;

use crate::cache::Cache;
use crate::error::{Error, Result};
use crate::options::SetOptions;

use super::{holder_token, positive, wait_for};

/// A semaphore shared by every thread and process on the cache directory
/// (python-diskcache's `BoundedSemaphore`): at most `value` acquisitions are
/// held at once.
///
/// Unlike python-diskcache's, which keeps a bare count (so a holder that
/// dies keeps its unit for ever), each acquisition is a *slot*: one of the
/// keys `name:0` … `name:{value-1}`, taken with [`Cache::add`] and holding
/// the handle's token with the expiry. A dead holder's slot frees itself when
/// it expires; releasing deletes a slot this handle holds, so a handle can
/// never release more than it acquired, nor free another holder's slot.
/// Acquire and release look at up to `value` keys in one transaction: keep
/// `value` in the hundreds at most.
///
/// The holder is this handle and its clones (like [`Lock`](crate::Lock)'s);
/// one handle may hold several slots.
///
/// ```
/// use std::time::Duration;
/// use diskq::BoundedSemaphore;
///
/// let dir = tempfile::tempdir()?;
/// let cache = diskq::Cache::open(dir.path())?;
/// let connections = BoundedSemaphore::new(&cache, "max-connections", 2, Duration::from_secs(60))?;
/// connections.acquire()?;
/// connections.acquire()?;
/// assert!(!connections.try_acquire()?, "both slots are taken");
/// connections.release()?;
/// {
///     let _slot = connections.lock()?;
///     assert_eq!(connections.available()?, 0);
/// }
/// connections.release()?;
/// assert!(matches!(connections.release(), Err(diskq::Error::InvalidUse(_))));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct BoundedSemaphore {
    cache: Cache,
    name: String,
    value: usize,
    expire: Duration,
    token: String,
}

impl BoundedSemaphore {
    /// A handle on the semaphore named `name` with `value` slots, each kept
    /// by its holder for at most `expire`.
    ///
    /// Every handle on one name must use the same `value`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidSetting`] for a zero `value` or `expire`.
    ///
    /// ```
    /// use std::time::Duration;
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::Cache::open(dir.path())?;
    /// let expire = Duration::from_secs(60);
    /// let sem = diskq::BoundedSemaphore::new(&cache, "downloads", 4, expire)?;
    /// assert_eq!(sem.available()?, 4);
    /// assert!(diskq::BoundedSemaphore::new(&cache, "downloads", 0, expire).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(cache: &Cache, name: impl Into<String>, value: usize, expire: Duration) -> Result<BoundedSemaphore> {
        if value == 0 {
            return Err(Error::InvalidSetting {
                name: "value".into(),
                message: "BoundedSemaphore's value must be at least 1".into(),
            });
        }
        Ok(BoundedSemaphore {
            cache: cache.clone(),
            name: name.into(),
            value,
            expire: positive("BoundedSemaphore", "expire", expire)?,
            token: holder_token(),
        })
    }

    /// The semaphore's name, the prefix of its slot keys.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # let dir = tempfile::tempdir()?;
    /// # let cache = diskq::Cache::open(dir.path())?;
    /// let sem = diskq::BoundedSemaphore::new(&cache, "downloads", 4, Duration::from_secs(60))?;
    /// assert_eq!(sem.name(), "downloads");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Takes a free slot if there is one; true if taken. Does not wait.
    ///
    /// # Errors
    ///
    /// The storage errors of a write ([the crate's errors](crate#errors)), and
    /// [`Error::InvalidUse`] on a read-only cache; never [`Error::Timeout`]:
    /// the write waits for the lock as long as it takes. No free slot is not an
    /// error (`Ok(false)`).
    ///
    /// ```
    /// # use std::time::Duration;
    /// # let dir = tempfile::tempdir()?;
    /// # let cache = diskq::Cache::open(dir.path())?;
    /// let sem = diskq::BoundedSemaphore::new(&cache, "downloads", 1, Duration::from_secs(60))?;
    /// assert!(sem.try_acquire()?);
    /// assert!(!sem.try_acquire()?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_acquire(&self) -> Result<bool> {
        Ok(self.take_slot()?.is_some())
    }

    /// Waits until a slot is free and takes it.
    ///
    /// # Errors
    ///
    /// As [`BoundedSemaphore::try_acquire`].
    ///
    /// ```
    /// # use std::time::Duration;
    /// # let dir = tempfile::tempdir()?;
    /// # let cache = diskq::Cache::open(dir.path())?;
    /// let sem = diskq::BoundedSemaphore::new(&cache, "downloads", 2, Duration::from_secs(60))?;
    /// sem.acquire()?;
    /// sem.release()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn acquire(&self) -> Result<()> {
        wait_for(None, || self.try_acquire()).map(|_| ())
    }

    /// Waits up to `timeout` for a slot; true if one was taken.
    ///
    /// # Errors
    ///
    /// As [`BoundedSemaphore::try_acquire`]; the timeout passing is not an
    /// error (`Ok(false)`).
    ///
    /// ```
    /// # use std::time::Duration;
    /// # let dir = tempfile::tempdir()?;
    /// # let cache = diskq::Cache::open(dir.path())?;
    /// let sem = diskq::BoundedSemaphore::new(&cache, "downloads", 1, Duration::from_secs(60))?;
    /// assert!(sem.acquire_timeout(Duration::from_millis(10))?);
    /// assert!(!sem.acquire_timeout(Duration::from_millis(10))?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<bool> {
        wait_for(Some(timeout), || self.try_acquire())
    }

    /// Waits for a slot and returns a guard that releases that slot when
    /// dropped.
    ///
    /// # Errors
    ///
    /// As [`BoundedSemaphore::acquire`].
    ///
    /// ```
    /// # use std::time::Duration;
    /// # let dir = tempfile::tempdir()?;
    /// # let cache = diskq::Cache::open(dir.path())?;
    /// let sem = diskq::BoundedSemaphore::new(&cache, "downloads", 2, Duration::from_secs(60))?;
    /// {
    ///     let _slot = sem.lock()?;
    ///     assert_eq!(sem.available()?, 1);
    /// }
    /// assert_eq!(sem.available()?, 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn lock(&self) -> Result<SemaphoreGuard<'_>> {
        let mut slot = None;
        wait_for(None, || {
            slot = self.take_slot()?;
            Ok(slot.is_some())
        })?;
        Ok(SemaphoreGuard { semaphore: self, slot })
    }

    /// Gives back one slot this handle holds.
    ///
    /// # Errors
    ///
    /// Fails with [`Error::InvalidUse`], changing nothing, when the handle
    /// holds none: a release beyond its acquisitions (which would raise the
    /// semaphore above its bound), or after its slots expired.
    ///
    /// Also the storage errors of a write ([the crate's errors](crate#errors)).
    ///
    /// ```
    /// # use std::time::Duration;
    /// # let dir = tempfile::tempdir()?;
    /// # let cache = diskq::Cache::open(dir.path())?;
    /// let sem = diskq::BoundedSemaphore::new(&cache, "downloads", 2, Duration::from_secs(60))?;
    /// sem.acquire()?;
    /// sem.release()?;
    /// assert!(matches!(sem.release(), Err(diskq::Error::InvalidUse(_))));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn release(&self) -> Result<()> {
        let released = self.cache.transact_with(true, |c| {
            for slot in 0..self.value {
                if self.holds(c, slot)? {
                    return c.delete(self.slot_key(slot));
                }
            }
            Ok(false)
        })?;
        if released {
            Ok(())
        } else {
            Err(Error::InvalidUse(format!(
                "release of the BoundedSemaphore {:?} by a handle that holds none of its slots \
                 (more releases than acquires, or its slots expired)",
                self.name
            )))
        }
    }

    /// How many slots are free now (a snapshot: other processes may take
    /// them at once).
    ///
    /// # Errors
    ///
    /// Only the storage errors of a read ([the crate's errors](crate#errors)).
    ///
    /// ```
    /// # use std::time::Duration;
    /// # let dir = tempfile::tempdir()?;
    /// # let cache = diskq::Cache::open(dir.path())?;
    /// let sem = diskq::BoundedSemaphore::new(&cache, "downloads", 3, Duration::from_secs(60))?;
    /// sem.acquire()?;
    /// assert_eq!(sem.available()?, 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn available(&self) -> Result<usize> {
        self.cache.transact_with(true, |c| {
            let mut free = 0;
            for slot in 0..self.value {
                if !c.contains_key(self.slot_key(slot))? {
                    free += 1;
                }
            }
            Ok(free)
        })
    }

    fn slot_key(&self, slot: usize) -> String {
        format!("{}:{slot}", self.name)
    }

    /// Takes the first free slot, in one transaction.
    fn take_slot(&self) -> Result<Option<usize>> {
        let opts = SetOptions::new().expire(self.expire);
        self.cache.transact_with(true, |c| {
            for slot in 0..self.value {
                if c.add_with(self.slot_key(slot), &self.token, &opts)? {
                    return Ok(Some(slot));
                }
            }
            Ok(None)
        })
    }

    /// True when `slot` holds this handle's token.
    fn holds(&self, c: &Cache, slot: usize) -> Result<bool> {
        match c.get::<String>(self.slot_key(slot)) {
            Ok(holder) => Ok(holder.as_deref() == Some(self.token.as_str())),
            Err(e) if e.is_decode() => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn release_slot(&self, slot: usize) -> Result<bool> {
        self.cache.transact_with(true, |c| {
            if self.holds(c, slot)? {
                c.delete(self.slot_key(slot))
            } else {
                Ok(false)
            }
        })
    }
}

/// Holds one slot of a [`BoundedSemaphore`] until dropped (or
/// [`SemaphoreGuard::release`]d). A failed release on drop is ignored.
///
/// ```
/// use std::time::Duration;
/// let dir = tempfile::tempdir()?;
/// let cache = diskq::Cache::open(dir.path())?;
/// let sem = diskq::BoundedSemaphore::new(&cache, "downloads", 1, Duration::from_secs(60))?;
/// let slot = sem.lock()?;
/// assert_eq!(sem.available()?, 0);
/// slot.release()?;
/// assert_eq!(sem.available()?, 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
#[must_use = "the slot is released as soon as the guard is dropped"]
pub struct SemaphoreGuard<'a> {
    semaphore: &'a BoundedSemaphore,
    slot: Option<usize>,
}

impl SemaphoreGuard<'_> {
    /// Releases the slot now, reporting an error that a drop would ignore.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidUse`] when the slot had expired (and may belong to
    /// another holder now); the storage errors of a write ([the crate's
    /// errors](crate#errors)).
    ///
    /// ```
    /// # use std::time::Duration;
    /// # let dir = tempfile::tempdir()?;
    /// # let cache = diskq::Cache::open(dir.path())?;
    /// let sem = diskq::BoundedSemaphore::new(&cache, "downloads", 1, Duration::from_secs(60))?;
    /// sem.lock()?.release()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn release(mut self) -> Result<()> {
        let Some(slot) = self.slot.take() else {
            return Ok(());
        };
        if self.semaphore.release_slot(slot)? {
            Ok(())
        } else {
            Err(Error::InvalidUse(format!(
                "slot {slot} of the BoundedSemaphore {:?} expired before its release",
                self.semaphore.name
            )))
        }
    }
}

impl Drop for SemaphoreGuard<'_> {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            // Drop cannot report; an expired slot is free anyway.
            let _ = self.semaphore.release_slot(slot);
        }
    }
}
