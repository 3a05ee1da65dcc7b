//! `Throttle`: at most `count` calls per `period`, across processes.

use std::time::Duration;

use crate::cache::Cache;
use crate::error::{Error, Result};
use crate::options::SetOptions;

use super::{positive, seconds, wall_clock};

/// Limits calls to `count` per `period` over every thread and process on
/// the cache directory (python-diskcache's `throttle` decorator, as a value).
///
/// ## Algorithm
///
/// Calls are spaced evenly, at least `period / count` apart: the key `name`
/// holds the earliest time the next call may start (in seconds since the
/// Unix epoch, from the system clock). [`Throttle::wait`] reserves the next
/// start time and pushes the stored one a spacing further, in one
/// transaction, then sleeps until its reserved time; waiters are served in
/// the order they reserved, with one transaction each and no polling.
///
/// So any window of length `period` holds at most `count` starts, with no
/// burst: python-diskcache's token bucket instead lets `count` calls through
/// at once after an idle spell, so one of its windows may see almost
/// `2 × count` calls. A caller that is late (descheduled after its wait)
/// can still run close to the next one; the spacing is of start times.
///
/// The key expires a `period` after the last reserved start, since an idle
/// throttle needs no state.
///
/// ```
/// use std::time::{Duration, Instant};
/// use diskq::Throttle;
///
/// let dir = tempfile::tempdir()?;
/// let cache = diskq::Cache::open(dir.path())?;
/// // At most 100 calls a second: one every 10 ms.
/// let api = Throttle::new(&cache, "api-calls", 100, Duration::from_secs(1))?;
/// let started = Instant::now();
/// for _ in 0..3 {
///     api.call(|| { /* call the rate-limited service */ })?;
/// }
/// assert!(started.elapsed() >= Duration::from_millis(20));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Throttle {
    cache: Cache,
    name: String,
    period: Duration,
    /// Seconds between two starts.
    spacing: f64,
}

impl Throttle {
    /// A throttle of `count` calls per `period`, its state under the key
    /// `name`. Every handle on one name must use the same rate.
    ///
    /// # Errors
    ///
    /// Fails with [`Error::InvalidSetting`] for a zero `count` or `period`.
    ///
    /// ```
    /// use std::time::Duration;
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::Cache::open(dir.path())?;
    /// let t = diskq::Throttle::new(&cache, "emails", 10, Duration::from_secs(60))?;
    /// assert_eq!(t.name(), "emails");
    /// assert!(diskq::Throttle::new(&cache, "emails", 0, Duration::from_secs(60)).is_err());
    /// assert!(diskq::Throttle::new(&cache, "emails", 10, Duration::ZERO).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(cache: &Cache, name: impl Into<String>, count: u32, period: Duration) -> Result<Throttle> {
        if count == 0 {
            return Err(Error::InvalidSetting {
                name: "count".into(),
                message: "Throttle's count must be at least 1".into(),
            });
        }
        let period = positive("Throttle", "period", period)?;
        Ok(Throttle {
            cache: cache.clone(),
            name: name.into(),
            period,
            spacing: period.as_secs_f64() / f64::from(count),
        })
    }

    /// The throttle's name, which is also its key.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # let dir = tempfile::tempdir()?;
    /// # let cache = diskq::Cache::open(dir.path())?;
    /// let t = diskq::Throttle::new(&cache, "emails", 10, Duration::from_secs(60))?;
    /// assert_eq!(t.name(), "emails");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Waits (sleeping, not polling) until this caller may start a call.
    ///
    /// # Errors
    ///
    /// The storage errors of a write ([the crate's errors](crate#errors)), and
    /// [`Error::InvalidUse`] on a read-only cache; never [`Error::Timeout`]:
    /// the write waits for the lock as long as it takes; [`Error::Decode`] when
    /// the key holds a value that is not a throttle's state.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # let dir = tempfile::tempdir()?;
    /// # let cache = diskq::Cache::open(dir.path())?;
    /// let t = diskq::Throttle::new(&cache, "emails", 1000, Duration::from_secs(1))?;
    /// t.wait()?; // an idle throttle lets the first call through at once
    /// t.wait()?; // the next one about 1 ms later
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn wait(&self) -> Result<()> {
        let delay = self.reserve(true)?.unwrap_or(Duration::ZERO);
        if !delay.is_zero() {
            std::thread::sleep(delay);
        }
        Ok(())
    }

    /// Takes a start only if one is free right now; true if taken (the
    /// caller may call), false if it would have to wait.
    ///
    /// # Errors
    ///
    /// As [`Throttle::wait`]; no free start is not an error (`Ok(false)`).
    ///
    /// ```
    /// # use std::time::Duration;
    /// # let dir = tempfile::tempdir()?;
    /// # let cache = diskq::Cache::open(dir.path())?;
    /// let t = diskq::Throttle::new(&cache, "emails", 1, Duration::from_secs(60))?;
    /// assert!(t.try_wait()?);
    /// assert!(!t.try_wait()?, "the next start is a minute away");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_wait(&self) -> Result<bool> {
        Ok(self.reserve(false)?.is_some())
    }

    /// Waits as [`Throttle::wait`] does, then runs `f` and returns its result.
    ///
    /// # Errors
    ///
    /// As [`Throttle::wait`]; `f` runs only after a successful wait.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # let dir = tempfile::tempdir()?;
    /// # let cache = diskq::Cache::open(dir.path())?;
    /// let t = diskq::Throttle::new(&cache, "emails", 1000, Duration::from_secs(1))?;
    /// let sent = t.call(|| "sent")?;
    /// assert_eq!(sent, "sent");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn call<T>(&self, f: impl FnOnce() -> T) -> Result<T> {
        self.wait()?;
        Ok(f())
    }

    /// Reserves the next start in one transaction and returns how long to
    /// wait for it; with `!queue`, reserves only a start that is due now
    /// (`None` when there is none).
    fn reserve(&self, queue: bool) -> Result<Option<Duration>> {
        self.cache.transact_with(true, |c| {
            let now = wall_clock();
            let next = c.get::<f64>(self.name.as_str())?.unwrap_or(now);
            let start = next.max(now);
            if !queue && start > now {
                return Ok(None);
            }
            let after = start + self.spacing;
            let keep = seconds(after - now).saturating_add(self.period);
            let opts = SetOptions::new().expire(keep);
            c.set_with(self.name.as_str(), &after, &opts)?;
            Ok(Some(seconds(start - now)))
        })
    }
}
