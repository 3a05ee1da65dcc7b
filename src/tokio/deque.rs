//! The async [`Deque`].

use std::borrow::Borrow;
use std::path::Path;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::cache::{Cache, open_blocking};
use super::lease::{Lease, next_lease_end};
use super::wait::{LookTime, take_until};
use super::wait::{coop, turn};
use crate::counters::QueueStats;
use crate::error::{Error, Result};
use crate::lease::{Backlog, LeaseOptions};
use crate::options::{PullOptions, PushOptions, Side};

/// A persistent double-ended queue (see [`crate::Deque`]) whose operations
/// are awaited, and whose waits hold no thread. Cheap to clone; a sync
/// [`crate::Deque`] on the same directory, in this process or another,
/// sees one queue.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use diskq::tokio::Deque;
///
/// let dir = tempfile::tempdir()?;
/// let jobs: Deque<String> = Deque::open(dir.path()).await?;
/// jobs.push_back("b").await?;
/// jobs.push_front("a").await?;
/// assert_eq!(jobs.len().await?, 2);
/// assert_eq!(jobs.pop_front().await?.as_deref(), Some("a"));
/// // Waits up to 10 ms for a push by any process; no thread waits.
/// assert_eq!(jobs.pop_back_timeout(Duration::from_millis(10)).await?.as_deref(), Some("b"));
/// assert_eq!(jobs.pop_back_timeout(Duration::from_millis(10)).await?, None);
/// // The sync deque on the same directory sees the same queue.
/// let sync: &diskq::Deque<String> = jobs.sync();
/// sync.push_back("c")?;
/// assert_eq!(jobs.pop_front().await?.as_deref(), Some("c"));
/// # Ok(()) }
/// ```
pub struct Deque<T> {
    inner: crate::Deque<T>,
}

impl<T> Clone for Deque<T> {
    fn clone(&self) -> Self {
        Deque {
            inner: self.inner.clone(),
        }
    }
}

impl<T> std::fmt::Debug for Deque<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.fmt(f)
    }
}

impl<T> From<crate::Deque<T>> for Deque<T> {
    fn from(inner: crate::Deque<T>) -> Deque<T> {
        Deque { inner }
    }
}

fn end(side: Side) -> PullOptions {
    PullOptions {
        prefix: None,
        side,
        retry: false,
    }
}

impl<T: Serialize + DeserializeOwned> Deque<T> {
    /// Opens (creating if needed) the deque in `dir` (on the blocking pool;
    /// see [`crate::Deque::open`]).
    ///
    /// # Errors
    ///
    /// Those of [`crate::Deque::open`], which this awaits.
    pub async fn open(dir: impl AsRef<Path>) -> Result<Deque<T>>
    where
        T: 'static,
    {
        open_blocking(dir.as_ref(), |dir| crate::Deque::open(dir).map(Deque::from)).await
    }

    /// A deque over an open cache (see [`crate::Deque::from_cache`]).
    #[must_use]
    pub fn from_cache(cache: Cache) -> Deque<T> {
        Deque {
            inner: crate::Deque::from_cache(cache.sync().clone()),
        }
    }

    /// Bounds the deque (see [`crate::Deque::with_maxlen`]).
    ///
    /// # Errors
    ///
    /// Those of [`crate::Deque::with_maxlen`], which this awaits.
    pub async fn with_maxlen(self, maxlen: usize) -> Result<Deque<T>> {
        turn().await;
        Ok(Deque {
            inner: self.inner.with_maxlen(maxlen)?,
        })
    }

    /// The bound set by [`Deque::with_maxlen`].
    #[must_use]
    pub fn maxlen(&self) -> Option<usize> {
        self.inner.maxlen()
    }

    /// The sync deque underneath (the same handle).
    #[must_use]
    pub fn sync(&self) -> &crate::Deque<T> {
        &self.inner
    }

    /// The cache underneath.
    #[must_use]
    pub fn cache(&self) -> Cache {
        Cache::from(self.inner.cache().clone())
    }

    /// Appends an item at the back (see [`crate::Deque::push_back`]).
    ///
    /// # Errors
    ///
    /// Those of [`crate::Deque::push_back`], which this awaits.
    pub async fn push_back<Q: Serialize + ?Sized>(&self, value: &Q) -> Result<()>
    where
        T: Borrow<Q>,
    {
        turn().await;
        self.inner.push_back(value)
    }

    /// Appends an item that no pop or lease takes before `delay` has passed
    /// (see [`crate::Deque::push_back_delayed`]); a task awaiting a pop is
    /// woken when it becomes due.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::time::Duration;
    /// let dir = tempfile::tempdir()?;
    /// let jobs = diskq::tokio::Deque::<String>::open(dir.path()).await?;
    /// jobs.push_back_delayed("later", Duration::from_secs(3600)).await?;
    /// assert_eq!(jobs.pop_front().await?, None, "not due for an hour");
    /// assert_eq!(jobs.backlog().await?.scheduled, 1);
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// Those of [`crate::Deque::push_back_delayed`], which this awaits.
    pub async fn push_back_delayed<Q: Serialize + ?Sized>(&self, value: &Q, delay: Duration) -> Result<()>
    where
        T: Borrow<Q>,
    {
        turn().await;
        self.inner.push_back_delayed(value, delay)
    }

    /// Appends an item with options: a delay or due time, a priority, a
    /// unique key; `false` when the unique key is taken (see
    /// [`crate::Deque::push_back_with`]).
    ///
    /// # Errors
    ///
    /// Those of [`crate::Deque::push_back_with`], which this awaits.
    pub async fn push_back_with<Q: Serialize + ?Sized>(&self, value: &Q, opts: &PushOptions) -> Result<bool>
    where
        T: Borrow<Q>,
    {
        turn().await;
        self.inner.push_back_with(value, opts)
    }

    /// Prepends an item at the front (see [`crate::Deque::push_front`]).
    ///
    /// # Errors
    ///
    /// Those of [`crate::Deque::push_front`], which this awaits.
    pub async fn push_front<Q: Serialize + ?Sized>(&self, value: &Q) -> Result<()>
    where
        T: Borrow<Q>,
    {
        turn().await;
        self.inner.push_front(value)
    }

    /// Appends every item at the back in one transaction (see [`crate::Deque::extend`]).
    ///
    /// # Errors
    ///
    /// Those of [`crate::Deque::extend`], which this awaits.
    pub async fn extend<'a, Q, I>(&self, values: I) -> Result<()>
    where
        Q: Serialize + ?Sized + 'a,
        T: Borrow<Q>,
        I: IntoIterator<Item = &'a Q>,
    {
        turn().await;
        self.inner.extend(values)
    }

    /// Removes and returns the front item (see [`crate::Deque::pop_front`]).
    ///
    /// # Errors
    ///
    /// Those of [`crate::Deque::pop_front`], which this awaits.
    pub async fn pop_front(&self) -> Result<Option<T>> {
        turn().await;
        self.inner.pop_front()
    }

    /// Removes and returns the back item.
    ///
    /// # Errors
    ///
    /// Those of [`crate::Deque::pop_back`], which this awaits.
    pub async fn pop_back(&self) -> Result<Option<T>> {
        turn().await;
        self.inner.pop_back()
    }

    /// Removes up to `n` items from the front in one transaction.
    ///
    /// # Errors
    ///
    /// Those of [`crate::Deque::pop_front_many`], which this awaits.
    pub async fn pop_front_many(&self, n: usize) -> Result<Vec<T>> {
        turn().await;
        self.inner.pop_front_many(n)
    }

    /// Removes up to `n` items from the back in one transaction, back first.
    ///
    /// # Errors
    ///
    /// Those of [`crate::Deque::pop_back_many`], which this awaits.
    pub async fn pop_back_many(&self, n: usize) -> Result<Vec<T>> {
        turn().await;
        self.inner.pop_back_many(n)
    }

    /// Waits up to `timeout` for a front item pushed by any thread, task or
    /// process, holding no thread while it waits (see the [module
    /// docs](crate::tokio#waiting-costs-no-thread) and
    /// [`crate::Deque::pop_front_timeout`]). `None` when nothing came in time.
    ///
    /// Cancellation-safe: dropping the future at any await (a
    /// `tokio::time::timeout` or a `select!` branch that lost) takes no
    /// item; the item is taken inside the poll that returns it.
    ///
    /// # Errors
    ///
    /// Those of [`crate::Deque::pop_front_timeout`], which this awaits.
    pub async fn pop_front_timeout(&self, timeout: Duration) -> Result<Option<T>> {
        turn().await;
        self.pop_timeout(Side::Front, timeout).await
    }

    /// [`Deque::pop_front_timeout`] at the back.
    ///
    /// # Errors
    ///
    /// Those of [`crate::Deque::pop_back_timeout`], which this awaits.
    pub async fn pop_back_timeout(&self, timeout: Duration) -> Result<Option<T>> {
        turn().await;
        self.pop_timeout(Side::Back, timeout).await
    }

    async fn pop_timeout(&self, side: Side, timeout: Duration) -> Result<Option<T>> {
        let until = crate::deadline::from_now(timeout);
        let cache = self.inner.cache();
        let opts = end(side);
        let look = LookTime::new(cache.now());
        let item = take_until(
            cache.store(),
            until,
            |slice| {
                look.set(cache.now());
                cache.pull_by::<T>(&opts, Some(slice))
            },
            // At the front, a delayed job that becomes due ends the wait.
            || match side {
                Side::Front => cache.next_job_wake(None, look.get()),
                _ => Ok(None),
            },
        )
        .await?;
        Ok(item.map(|(_, v)| v))
    }

    /// Leases the front item for `duration` (see [`crate::Deque::lease`]).
    ///
    /// # Errors
    ///
    /// Those of [`crate::Deque::lease`], which this awaits.
    pub async fn lease(&self, duration: Duration) -> Result<Option<Lease<T>>> {
        turn().await;
        Ok(self.inner.lease(duration)?.map(Lease::from))
    }

    /// Leases the front item with a delivery limit and a dead-letter queue
    /// (see [`crate::Deque::lease_with`]).
    ///
    /// # Errors
    ///
    /// Those of [`crate::Deque::lease_with`], which this awaits.
    pub async fn lease_with(&self, opts: &LeaseOptions) -> Result<Option<Lease<T>>> {
        turn().await;
        Ok(self.inner.lease_with(opts)?.map(Lease::from))
    }

    /// [`Deque::lease_with`], waiting up to `wait` for an item pushed by any
    /// process or freed by a lease that ran out, holding no thread while it
    /// waits (see [`crate::Deque::lease_timeout`]). Cancellation-safe: a
    /// dropped future leased nothing.
    ///
    /// # Errors
    ///
    /// Those of [`crate::Deque::lease_timeout`], which this awaits.
    pub async fn lease_timeout(&self, opts: &LeaseOptions, wait: Duration) -> Result<Option<Lease<T>>> {
        turn().await;
        if opts.prefix.is_some() {
            return Err(Error::InvalidUse(
                "a deque leases from the integer-keyed queue: no prefix".into(),
            ));
        }
        let until = crate::deadline::from_now(wait);
        let cache = self.inner.cache();
        let look = LookTime::new(cache.now());
        let leased = take_until(
            cache.store(),
            until,
            |slice| {
                look.set(cache.now());
                cache.lease_by::<T>(opts, Some(slice))
            },
            || next_lease_end(cache, "", look.get()),
        )
        .await?;
        Ok(leased.map(Lease::from))
    }

    /// Takes the front dead letter of `opts` (see [`crate::Deque::pop_dead_letter`]).
    ///
    /// # Errors
    ///
    /// Those of [`crate::Deque::pop_dead_letter`], which this awaits.
    pub async fn pop_dead_letter(&self, opts: &LeaseOptions) -> Result<Option<T>> {
        turn().await;
        self.inner.pop_dead_letter(opts)
    }

    /// The dead letters of `opts` with their delivery counts and last
    /// errors (see [`crate::Deque::dead_letters`]).
    ///
    /// # Errors
    ///
    /// Those of [`crate::Deque::dead_letters`], which this awaits.
    pub async fn dead_letters(&self, opts: &LeaseOptions, limit: usize) -> Result<Vec<crate::DeadLetter>> {
        coop().await;
        self.inner.dead_letters(opts, limit)
    }

    /// The deque's running leases, the first to run out first (see
    /// [`crate::Deque::running_leases`]).
    ///
    /// # Errors
    ///
    /// Those of [`crate::Deque::running_leases`], which this awaits.
    pub async fn running_leases(&self, limit: usize) -> Result<Vec<crate::RunningLease>> {
        coop().await;
        self.inner.running_leases(limit)
    }

    /// Moves every dead letter of `opts` back to the back of the deque.
    ///
    /// # Errors
    ///
    /// Those of [`crate::Deque::requeue_dead_letters`], which this awaits.
    pub async fn requeue_dead_letters(&self, opts: &LeaseOptions) -> Result<usize> {
        turn().await;
        self.inner.requeue_dead_letters(opts)
    }

    /// Moves an end item that does not decode as `T` to the dead-letter
    /// queue (see [`crate::Deque::dead_letter_undecodable`]).
    ///
    /// # Errors
    ///
    /// Those of [`crate::Deque::dead_letter_undecodable`], which this awaits.
    pub async fn dead_letter_undecodable(&self, side: Side) -> Result<Option<crate::Key>> {
        turn().await;
        self.inner.dead_letter_undecodable(side)
    }

    /// Items queued and items leased, in one snapshot.
    ///
    /// # Errors
    ///
    /// Those of [`crate::Deque::backlog`], which this awaits.
    pub async fn backlog(&self) -> Result<Backlog> {
        coop().await;
        self.inner.backlog()
    }

    /// The deque's counters (see [`crate::Deque::stats`]).
    ///
    /// # Errors
    ///
    /// Those of [`crate::Deque::stats`], which this awaits.
    pub async fn stats(&self) -> Result<QueueStats> {
        coop().await;
        self.inner.stats()
    }

    /// The front item, left in place.
    ///
    /// # Errors
    ///
    /// Those of [`crate::Deque::front`], which this awaits.
    pub async fn front(&self) -> Result<Option<T>> {
        coop().await;
        self.inner.front()
    }

    /// The back item, left in place.
    ///
    /// # Errors
    ///
    /// Those of [`crate::Deque::back`], which this awaits.
    pub async fn back(&self) -> Result<Option<T>> {
        coop().await;
        self.inner.back()
    }

    /// The queued item at `index` from the front (see [`crate::Deque::get`]).
    ///
    /// # Errors
    ///
    /// Those of [`crate::Deque::get`], which this awaits.
    pub async fn get(&self, index: usize) -> Result<Option<T>> {
        coop().await;
        self.inner.get(index)
    }

    /// How many items the deque holds, leased and dead letters included
    /// (see [`crate::Deque::len`]).
    ///
    /// # Errors
    ///
    /// Those of [`crate::Deque::len`], which this awaits.
    pub async fn len(&self) -> Result<usize> {
        coop().await;
        self.inner.len()
    }

    /// True when the deque holds nothing.
    ///
    /// # Errors
    ///
    /// Those of [`crate::Deque::is_empty`], which this awaits.
    pub async fn is_empty(&self) -> Result<bool> {
        coop().await;
        self.inner.is_empty()
    }

    /// Removes every item of the deque; how many (see [`crate::Deque::clear`]).
    ///
    /// # Errors
    ///
    /// Those of [`crate::Deque::clear`], which this awaits.
    pub async fn clear(&self) -> Result<usize> {
        turn().await;
        self.inner.clear()
    }
}
