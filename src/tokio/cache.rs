//! The async [`Cache`].

use std::path::Path;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::lease::{Lease, next_lease_end};
use super::wait::{LookTime, take_until};
use super::wait::{coop, turn};
use crate::counters::QueueStats;
use crate::error::{Error, Result};
use crate::key::Key;
use crate::lease::{Backlog, LeaseOptions};
use crate::options::{PullOptions, PushOptions, SetOptions};

/// A cache in a directory (see [`crate::Cache`]) whose operations are
/// awaited, and whose waits hold no thread. Cheap to clone; clones share
/// one state, and a sync [`crate::Cache`] on the same directory (in this
/// process or another) sees the same items.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use diskq::PullOptions;
/// use diskq::tokio::Cache;
///
/// let dir = tempfile::tempdir()?;
/// let cache = Cache::open(dir.path()).await?;
/// cache.set("greeting", "hello").await?;
/// assert_eq!(cache.get::<String>("greeting").await?.as_deref(), Some("hello"));
/// assert_eq!(cache.incr("visits", 1, 0).await?, 1);
///
/// cache.push("job-1").await?;
/// let job = cache.pull_timeout::<String>(&PullOptions::new(), Duration::from_secs(1)).await?;
/// assert_eq!(job.map(|(_, v)| v).as_deref(), Some("job-1"));
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Cache {
    inner: crate::Cache,
}

impl From<crate::Cache> for Cache {
    fn from(inner: crate::Cache) -> Cache {
        Cache { inner }
    }
}

/// Runs `open` on the blocking pool: opening may wait for another process
/// that creates the directory's schema, and reads and writes files.
pub(crate) async fn open_blocking<T: Send + 'static>(
    dir: &Path,
    open: impl FnOnce(&Path) -> Result<T> + Send + 'static,
) -> Result<T> {
    turn().await;
    let dir = dir.to_path_buf();
    let shown = dir.clone();
    match ::tokio::task::spawn_blocking(move || open(&dir)).await {
        Ok(opened) => opened,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => Err(Error::io(
            shown,
            std::io::Error::other("the runtime shut down while the directory was opened"),
        )),
    }
}

impl Cache {
    /// Opens (creating if needed) the cache in `dir` with default settings
    /// (on the blocking pool; see [`crate::Cache::open`]). For other
    /// settings, open with [`crate::Cache::builder`] and convert with
    /// [`Cache::from`].
    ///
    /// # Errors
    ///
    /// Those of [`crate::Cache::open`], which this awaits.
    pub async fn open(dir: impl AsRef<Path>) -> Result<Cache> {
        open_blocking(dir.as_ref(), |dir| crate::Cache::open(dir).map(Cache::from)).await
    }

    /// The sync cache underneath (the same handle).
    #[must_use]
    pub fn sync(&self) -> &crate::Cache {
        &self.inner
    }

    /// The cache's directory.
    #[must_use]
    pub fn directory(&self) -> &Path {
        self.inner.directory()
    }

    /// Sets `key` to `value` (see [`crate::Cache::set`]).
    ///
    /// # Errors
    ///
    /// Those of [`crate::Cache::set`], which this awaits.
    pub async fn set<V: Serialize + ?Sized>(&self, key: impl Into<Key>, value: &V) -> Result<()> {
        turn().await;
        self.inner.set(key, value)
    }

    /// Sets `key` with expiry, tag, ... (see [`crate::Cache::set_with`]).
    ///
    /// # Errors
    ///
    /// Those of [`crate::Cache::set_with`], which this awaits.
    pub async fn set_with<V: Serialize + ?Sized>(
        &self,
        key: impl Into<Key>,
        value: &V,
        opts: &SetOptions,
    ) -> Result<()> {
        turn().await;
        self.inner.set_with(key, value, opts)
    }

    /// Sets `key` to raw bytes (see [`crate::Cache::set_bytes`]).
    ///
    /// # Errors
    ///
    /// Those of [`crate::Cache::set_bytes`], which this awaits.
    pub async fn set_bytes(&self, key: impl Into<Key>, bytes: &[u8]) -> Result<()> {
        turn().await;
        self.inner.set_bytes(key, bytes)
    }

    /// The value of `key`, `None` when missing or expired (see [`crate::Cache::get`]).
    ///
    /// # Errors
    ///
    /// Those of [`crate::Cache::get`], which this awaits.
    pub async fn get<V: DeserializeOwned>(&self, key: impl Into<Key>) -> Result<Option<V>> {
        coop().await;
        self.inner.get(key)
    }

    /// The raw bytes of `key` (see [`crate::Cache::get_bytes`]).
    ///
    /// # Errors
    ///
    /// Those of [`crate::Cache::get_bytes`], which this awaits.
    pub async fn get_bytes(&self, key: impl Into<Key>) -> Result<Option<Vec<u8>>> {
        coop().await;
        self.inner.get_bytes(key)
    }

    /// Sets `key` only if it is missing; true if it was set (see [`crate::Cache::add`]).
    ///
    /// # Errors
    ///
    /// Those of [`crate::Cache::add`], which this awaits.
    pub async fn add<V: Serialize + ?Sized>(&self, key: impl Into<Key>, value: &V) -> Result<bool> {
        turn().await;
        self.inner.add(key, value)
    }

    /// Adds `delta` to the integer at `key` (`default` when missing);
    /// the new value (see [`crate::Cache::incr`]).
    ///
    /// # Errors
    ///
    /// Those of [`crate::Cache::incr`], which this awaits.
    pub async fn incr(&self, key: impl Into<Key>, delta: i64, default: i64) -> Result<i64> {
        turn().await;
        self.inner.incr(key, delta, default)
    }

    /// Subtracts `delta` from the integer at `key` (see [`crate::Cache::decr`]).
    ///
    /// # Errors
    ///
    /// Those of [`crate::Cache::decr`], which this awaits.
    pub async fn decr(&self, key: impl Into<Key>, delta: i64, default: i64) -> Result<i64> {
        turn().await;
        self.inner.decr(key, delta, default)
    }

    /// Removes `key`; true if it was there (see [`crate::Cache::delete`]).
    ///
    /// # Errors
    ///
    /// Those of [`crate::Cache::delete`], which this awaits.
    pub async fn delete(&self, key: impl Into<Key>) -> Result<bool> {
        turn().await;
        self.inner.delete(key)
    }

    /// Removes `key` and returns its value (see [`crate::Cache::pop`]).
    /// Cancellation-safe: the value is removed inside the poll that returns it.
    ///
    /// # Errors
    ///
    /// Those of [`crate::Cache::pop`], which this awaits.
    pub async fn pop<V: DeserializeOwned>(&self, key: impl Into<Key>) -> Result<Option<V>> {
        turn().await;
        self.inner.pop(key)
    }

    /// True if `key` holds an unexpired value (see [`crate::Cache::contains_key`]).
    ///
    /// # Errors
    ///
    /// Those of [`crate::Cache::contains_key`], which this awaits.
    pub async fn contains_key(&self, key: impl Into<Key>) -> Result<bool> {
        coop().await;
        self.inner.contains_key(key)
    }

    /// Sets or clears the expiry of `key` (see [`crate::Cache::touch`]).
    ///
    /// # Errors
    ///
    /// Those of [`crate::Cache::touch`], which this awaits.
    pub async fn touch(&self, key: impl Into<Key>, expire: Option<Duration>) -> Result<bool> {
        turn().await;
        self.inner.touch(key, expire)
    }

    /// How many unexpired items the cache holds (see [`crate::Cache::len`]).
    ///
    /// # Errors
    ///
    /// Those of [`crate::Cache::len`], which this awaits.
    pub async fn len(&self) -> Result<usize> {
        coop().await;
        self.inner.len()
    }

    /// True when the cache holds no unexpired item.
    ///
    /// # Errors
    ///
    /// Those of [`crate::Cache::is_empty`], which this awaits.
    pub async fn is_empty(&self) -> Result<bool> {
        coop().await;
        self.inner.is_empty()
    }

    /// Removes every item; how many (see [`crate::Cache::clear`]).
    ///
    /// # Errors
    ///
    /// Those of [`crate::Cache::clear`], which this awaits.
    pub async fn clear(&self) -> Result<usize> {
        turn().await;
        self.inner.clear()
    }

    /// Runs `f` in one write transaction (see [`crate::Cache::transact`]).
    /// `f` is sync and runs on the task's thread, holding the write lock:
    /// keep it short.
    ///
    /// # Errors
    ///
    /// Those of [`crate::Cache::transact`], which this awaits.
    pub async fn transact<T, E: From<Error>>(&self, f: impl FnOnce(&crate::Cache) -> Result<T, E>) -> Result<T, E> {
        turn().await;
        self.inner.transact(f)
    }

    /// Pushes onto the back of the integer-keyed queue; the new key (see [`crate::Cache::push`]).
    ///
    /// # Errors
    ///
    /// Those of [`crate::Cache::push`], which this awaits.
    pub async fn push<V: Serialize + ?Sized>(&self, value: &V) -> Result<Key> {
        turn().await;
        self.inner.push(value)
    }

    /// Pushes onto either end of a queue (see [`crate::Cache::push_with`]).
    ///
    /// # Errors
    ///
    /// Those of [`crate::Cache::push_with`], which this awaits.
    pub async fn push_with<V: Serialize + ?Sized>(&self, value: &V, opts: &PushOptions) -> Result<Key> {
        turn().await;
        self.inner.push_with(value, opts)
    }

    /// Pushes a job: an item with a delay, a priority or a unique key;
    /// `None` when the unique key is taken (see [`crate::Cache::push_job`]).
    ///
    /// # Errors
    ///
    /// Those of [`crate::Cache::push_job`], which this awaits.
    pub async fn push_job<V: Serialize + ?Sized>(&self, value: &V, opts: &PushOptions) -> Result<Option<Key>> {
        turn().await;
        self.inner.push_job(value, opts)
    }

    /// Takes the front item of the integer-keyed queue (see [`crate::Cache::pull`]).
    ///
    /// # Errors
    ///
    /// Those of [`crate::Cache::pull`], which this awaits.
    pub async fn pull<V: DeserializeOwned>(&self) -> Result<Option<(Key, V)>> {
        turn().await;
        self.inner.pull()
    }

    /// Takes an item from either end of a queue (see [`crate::Cache::pull_with`]).
    ///
    /// # Errors
    ///
    /// Those of [`crate::Cache::pull_with`], which this awaits.
    pub async fn pull_with<V: DeserializeOwned>(&self, opts: &PullOptions) -> Result<Option<(Key, V)>> {
        turn().await;
        self.inner.pull_with(opts)
    }

    /// [`Cache::pull_with`], waiting up to `wait` for an item pushed by any
    /// thread, task or process, with no thread held while waiting (see the
    /// [module docs](crate::tokio#waiting-costs-no-thread)); `None` when
    /// nothing came in time, as [`crate::Cache::pull_timeout`].
    /// Cancellation-safe: a dropped future took nothing.
    ///
    /// # Errors
    ///
    /// Those of [`crate::Cache::pull_timeout`], which this awaits.
    pub async fn pull_timeout<V: DeserializeOwned>(
        &self,
        opts: &PullOptions,
        wait: Duration,
    ) -> Result<Option<(Key, V)>> {
        turn().await;
        let until = crate::deadline::from_now(wait);
        let inner = &self.inner;
        // A delayed job that becomes due after a look began ends the wait.
        let look = LookTime::new(inner.now());
        take_until(
            inner.store(),
            until,
            |slice| {
                look.set(inner.now());
                inner.pull_by(opts, Some(slice))
            },
            || inner.next_job_wake(opts.prefix.as_deref(), look.get()),
        )
        .await
    }

    /// Waits up to `wait` until the queue `prefix` holds an item ready to
    /// pull; true if it does (see [`crate::Cache::wait_for_queued`]).
    ///
    /// # Errors
    ///
    /// Those of [`crate::Cache::wait_for_queued`], which this awaits.
    pub async fn wait_for_queued(&self, prefix: Option<&str>, wait: Duration) -> Result<bool> {
        turn().await;
        let until = crate::deadline::from_now(wait);
        let inner = &self.inner;
        let look = LookTime::new(inner.now());
        let queued = take_until(
            inner.store(),
            until,
            |_| {
                look.set(inner.now());
                Ok((inner.backlog(prefix)?.queued > 0).then_some(()))
            },
            || inner.next_job_wake(prefix, look.get()),
        )
        .await?;
        Ok(queued.is_some())
    }

    /// The front item of the integer-keyed queue, left in place.
    ///
    /// # Errors
    ///
    /// Those of [`crate::Cache::peek`], which this awaits.
    pub async fn peek<V: DeserializeOwned>(&self) -> Result<Option<(Key, V)>> {
        coop().await;
        self.inner.peek()
    }

    /// Leases the front item of a queue (see [`crate::Cache::lease`]).
    ///
    /// # Errors
    ///
    /// Those of [`crate::Cache::lease`], which this awaits.
    pub async fn lease<V: DeserializeOwned>(&self, opts: &LeaseOptions) -> Result<Option<Lease<V>>> {
        turn().await;
        Ok(self.inner.lease(opts)?.map(Lease::from))
    }

    /// [`Cache::lease`], waiting up to `wait` for an item pushed by any
    /// process or freed by a lease that ran out, with no thread held while
    /// waiting (see [`crate::Cache::lease_timeout`]). Cancellation-safe: a
    /// dropped future leased nothing.
    ///
    /// # Errors
    ///
    /// Those of [`crate::Cache::lease_timeout`], which this awaits.
    pub async fn lease_timeout<V: DeserializeOwned>(
        &self,
        opts: &LeaseOptions,
        wait: Duration,
    ) -> Result<Option<Lease<V>>> {
        turn().await;
        let until = crate::deadline::from_now(wait);
        let inner = &self.inner;
        let queue = opts.prefix.as_deref().unwrap_or_default();
        let look = LookTime::new(inner.now());
        let leased = take_until(
            inner.store(),
            until,
            |slice| {
                look.set(inner.now());
                inner.lease_by(opts, Some(slice))
            },
            || next_lease_end(inner, queue, look.get()),
        )
        .await?;
        Ok(leased.map(Lease::from))
    }

    /// Items queued and leased in the queue `prefix` (see [`crate::Cache::backlog`]).
    ///
    /// # Errors
    ///
    /// Those of [`crate::Cache::backlog`], which this awaits.
    pub async fn backlog(&self, prefix: Option<&str>) -> Result<Backlog> {
        coop().await;
        self.inner.backlog(prefix)
    }

    /// The counters of the queue of `prefix` (see [`crate::Cache::queue_stats`]).
    ///
    /// # Errors
    ///
    /// Those of [`crate::Cache::queue_stats`], which this awaits.
    pub async fn queue_stats(&self, prefix: Option<&str>) -> Result<QueueStats> {
        coop().await;
        self.inner.queue_stats(prefix)
    }

    /// The counters of every queue (see [`crate::Cache::all_queue_stats`]).
    ///
    /// # Errors
    ///
    /// Those of [`crate::Cache::all_queue_stats`], which this awaits.
    pub async fn all_queue_stats(&self) -> Result<Vec<(String, QueueStats)>> {
        coop().await;
        self.inner.all_queue_stats()
    }

    /// The dead letters of `opts` with their delivery counts and last
    /// errors (see [`crate::Cache::dead_letters`]).
    ///
    /// # Errors
    ///
    /// Those of [`crate::Cache::dead_letters`], which this awaits.
    pub async fn dead_letters(&self, opts: &LeaseOptions, limit: usize) -> Result<Vec<crate::DeadLetter>> {
        coop().await;
        self.inner.dead_letters(opts, limit)
    }

    /// The running leases of the queue `prefix`, the first to run out
    /// first (see [`crate::Cache::running_leases`]).
    ///
    /// # Errors
    ///
    /// Those of [`crate::Cache::running_leases`], which this awaits.
    pub async fn running_leases(&self, prefix: Option<&str>, limit: usize) -> Result<Vec<crate::RunningLease>> {
        coop().await;
        self.inner.running_leases(prefix, limit)
    }

    /// Moves the dead letters of `opts` back to their queue (see
    /// [`crate::Cache::requeue_dead_letters`]).
    ///
    /// # Errors
    ///
    /// Those of [`crate::Cache::requeue_dead_letters`], which this awaits.
    pub async fn requeue_dead_letters(&self, opts: &LeaseOptions) -> Result<usize> {
        turn().await;
        self.inner.requeue_dead_letters(opts)
    }
}
