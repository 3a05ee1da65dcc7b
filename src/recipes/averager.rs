//! `Averager`: a running average kept by many processes.

use std::time::Duration;

use crate::cache::Cache;
use crate::error::{Error, Result};
use crate::options::SetOptions;

use super::positive;

/// A running average ("online statistics") that every thread and process on
/// the cache directory adds to (python-diskcache's `Averager`).
///
/// The key `name` holds `(total, count)`; [`Averager::add`] updates both in
/// one transaction, so concurrent adds are each counted.
///
/// ```
/// use diskq::Averager;
///
/// let dir = tempfile::tempdir()?;
/// let cache = diskq::Cache::open(dir.path())?;
/// let latency = Averager::new(&cache, "latency", None)?;
/// latency.add(0.080)?;
/// latency.add(0.120)?;
/// assert!((latency.get()?.unwrap() - 0.100).abs() < 1e-12);
/// latency.add(0.160)?;
/// assert!((latency.pop()?.unwrap() - 0.120).abs() < 1e-12);
/// assert_eq!(latency.get()?, None);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Averager {
    cache: Cache,
    name: String,
    opts: SetOptions,
}

impl Averager {
    /// A handle on the average stored under the key `name`. With `expire`,
    /// each add restarts the expiry: the average resets after that long
    /// without adds.
    ///
    /// # Errors
    ///
    /// Fails with [`Error::InvalidSetting`] for a zero `expire`.
    ///
    /// ```
    /// use std::time::Duration;
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::Cache::open(dir.path())?;
    /// let recent = diskq::Averager::new(&cache, "latency", Some(Duration::from_secs(300)))?;
    /// assert_eq!(recent.name(), "latency");
    /// assert!(diskq::Averager::new(&cache, "latency", Some(Duration::ZERO)).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(cache: &Cache, name: impl Into<String>, expire: Option<Duration>) -> Result<Averager> {
        let expire = expire.map(|e| positive("Averager", "expire", e)).transpose()?;
        Ok(Averager {
            cache: cache.clone(),
            name: name.into(),
            opts: SetOptions {
                expire,
                tag: None,
                retry: true,
            },
        })
    }

    /// Gives the stored item a tag (for [`Cache::evict`]).
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::Cache::open(dir.path())?;
    /// let ave = diskq::Averager::new(&cache, "latency", None)?.tag("metrics");
    /// ave.add(1.0)?;
    /// assert_eq!(cache.evict("metrics")?, 1);
    /// assert_eq!(ave.get()?, None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use = "returns the changed handle; the original is consumed"]
    pub fn tag(mut self, tag: impl Into<String>) -> Averager {
        self.opts.tag = Some(tag.into());
        self
    }

    /// The average's name, which is also its key.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let cache = diskq::Cache::open(dir.path())?;
    /// let ave = diskq::Averager::new(&cache, "latency", None)?;
    /// assert_eq!(ave.name(), "latency");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Adds `value` to the average. Atomic across threads and processes.
    ///
    /// # Errors
    ///
    /// Fails with [`Error::InvalidUse`] for a NaN or infinite `value`
    /// (it would poison the total for every process).
    ///
    /// The storage errors of a write ([the crate's errors](crate#errors)), and
    /// [`Error::InvalidUse`] on a read-only cache; never [`Error::Timeout`]:
    /// the write waits for the lock as long as it takes; [`Error::Decode`] when
    /// the key holds a value that is not an average.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let cache = diskq::Cache::open(dir.path())?;
    /// let ave = diskq::Averager::new(&cache, "latency", None)?;
    /// ave.add(2.0)?;
    /// ave.add(4.0)?;
    /// assert_eq!(ave.get()?, Some(3.0));
    /// assert!(ave.add(f64::NAN).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn add(&self, value: f64) -> Result<()> {
        if !value.is_finite() {
            return Err(Error::InvalidUse(format!(
                "Averager {:?}: cannot add {value}, only finite numbers",
                self.name
            )));
        }
        self.cache.transact_with(true, |c| {
            let (total, count) = c.get::<(f64, u64)>(self.name.as_str())?.unwrap_or((0.0, 0));
            c.set_with(self.name.as_str(), &(total + value, count + 1), &self.opts)
        })
    }

    /// The average of the values added so far; `None` before the first.
    ///
    /// # Errors
    ///
    /// [`Error::Decode`] when the key holds a value that is not an average; the
    /// storage errors of a read ([the crate's errors](crate#errors)).
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let cache = diskq::Cache::open(dir.path())?;
    /// let ave = diskq::Averager::new(&cache, "latency", None)?;
    /// assert_eq!(ave.get()?, None);
    /// ave.add(5.0)?;
    /// assert_eq!(ave.get()?, Some(5.0));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get(&self) -> Result<Option<f64>> {
        Ok(average(self.cache.get(self.name.as_str())?))
    }

    /// Returns the average and resets it (removes the key), atomically:
    /// of concurrent pops, one gets the average.
    ///
    /// # Errors
    ///
    /// [`Error::Decode`] when the key holds a value that is not an average (it
    /// then stays); [`Error::Timeout`] when the write lock stays taken past
    /// the cache's timeout (unlike `add`, a pop does not wait it out); the
    /// storage errors of a write ([the crate's errors](crate#errors)).
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let cache = diskq::Cache::open(dir.path())?;
    /// let ave = diskq::Averager::new(&cache, "latency", None)?;
    /// ave.add(1.0)?;
    /// assert_eq!(ave.pop()?, Some(1.0));
    /// assert_eq!(ave.pop()?, None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn pop(&self) -> Result<Option<f64>> {
        Ok(average(self.cache.pop(self.name.as_str())?))
    }
}

fn average(stored: Option<(f64, u64)>) -> Option<f64> {
    match stored {
        Some((total, count)) if count > 0 => Some(total / count as f64),
        _ => None,
    }
}
