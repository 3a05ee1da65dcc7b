//! `Barrier`: one caller at a time through a section, across processes.

use std::time::Duration;

use crate::cache::Cache;
use crate::error::{Error, Result};

use super::{Lock, positive};

/// Lets one caller at a time, of every thread and process on the cache
/// directory, run a section (python-diskcache's `barrier` decorator with
/// its `Lock`, as a value).
///
/// Each [`Barrier::run`] takes a [`Lock`] named `name` (with a holder of its
/// own, so one `Barrier` may be shared by threads), runs the closure and
/// releases the lock, also when the closure panics. A caller that dies in
/// the section holds it for at most `expire`; a section that runs longer
/// than `expire` may let the next caller in, and `run` then reports it.
///
/// Not to be confused with [`std::sync::Barrier`], which makes threads wait
/// for each other.
///
/// ```
/// use std::time::Duration;
/// use diskq::Barrier;
///
/// let dir = tempfile::tempdir()?;
/// let cache = diskq::Cache::open(dir.path())?;
/// let migrate = Barrier::new(&cache, "schema-migration", Duration::from_secs(300))?;
/// let version = migrate.run(|| {
///     // Only one process at a time gets here.
///     3
/// })?;
/// assert_eq!(version, 3);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Barrier {
    cache: Cache,
    name: String,
    expire: Duration,
}

impl Barrier {
    /// A barrier whose lock is the key `name`, held for at most `expire`.
    ///
    /// # Errors
    ///
    /// Fails with [`Error::InvalidSetting`] for a zero `expire`.
    ///
    /// ```
    /// use std::time::Duration;
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::Cache::open(dir.path())?;
    /// let b = diskq::Barrier::new(&cache, "rebuild-index", Duration::from_secs(60))?;
    /// assert_eq!(b.name(), "rebuild-index");
    /// assert!(diskq::Barrier::new(&cache, "rebuild-index", Duration::ZERO).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(cache: &Cache, name: impl Into<String>, expire: Duration) -> Result<Barrier> {
        Ok(Barrier {
            cache: cache.clone(),
            name: name.into(),
            expire: positive("Barrier", "expire", expire)?,
        })
    }

    /// The barrier's name, which is also its lock's key.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # let dir = tempfile::tempdir()?;
    /// # let cache = diskq::Cache::open(dir.path())?;
    /// let b = diskq::Barrier::new(&cache, "rebuild-index", Duration::from_secs(60))?;
    /// assert_eq!(b.name(), "rebuild-index");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Waits for the section to be free, runs `f` in it and returns its
    /// result.
    ///
    /// # Errors
    ///
    /// Fails with [`Error::InvalidUse`] when `f` ran longer than the expiry
    /// (its result is then lost: another caller may have run alongside it).
    ///
    /// The storage errors of a write ([the crate's errors](crate#errors)), and
    /// [`Error::InvalidUse`] on a read-only cache; never [`Error::Timeout`]:
    /// the write waits for the lock as long as it takes.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # let dir = tempfile::tempdir()?;
    /// # let cache = diskq::Cache::open(dir.path())?;
    /// let b = diskq::Barrier::new(&cache, "rebuild-index", Duration::from_secs(60))?;
    /// let rows = b.run(|| 42)?;
    /// assert_eq!(rows, 42);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn run<T>(&self, f: impl FnOnce() -> T) -> Result<T> {
        let lock = Lock::new(&self.cache, self.name.as_str(), self.expire)?;
        let guard = lock.lock()?;
        let out = f();
        match guard.release() {
            Ok(()) => Ok(out),
            Err(Error::InvalidUse(_)) => Err(Error::InvalidUse(format!(
                "the section of Barrier {:?} ran longer than its expiry ({:?}): \
                 another caller may have entered it",
                self.name, self.expire
            ))),
            Err(e) => Err(e),
        }
    }
}
