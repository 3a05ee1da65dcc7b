//! `Cache`: one directory, one `cache.db`, every operation.

use std::fmt;
use std::fs::File;
use std::io::{Cursor, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::codec::{
    self, Encoded, MODE_BINARY, MODE_MSGPACK, MODE_PICKLE, MODE_RAW, MODE_TEXT, Native, Scalar, Stored,
};
use crate::error::{Error, Result};
use crate::key::Key;
use crate::options::{Entry, SetOptions, to_system_time};
use crate::settings::{EvictionPolicy, Overrides, Synchronous};
use crate::store::{Session, Store, StoreOptions, ValueRow};

/// The source of "now" ([`CacheBuilder::clock`]). Tests replace it to drive
/// expiry without sleeping.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// let dir = tempfile::tempdir()?;
/// let frozen = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
/// let clock: diskq::Clock = std::sync::Arc::new(move || frozen);
/// assert_eq!(clock(), frozen);
/// let cache = diskq::Cache::builder().clock(move || clock()).open(dir.path())?;
/// cache.set_with("k", &1, &diskq::SetOptions::new().expire(Duration::from_secs(60)))?;
/// let entry = cache.get_entry::<i64>("k")?.expect("live by the frozen clock");
/// assert_eq!(entry.expire_time, Some(frozen + Duration::from_secs(60)));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// A persistent, multi-process cache in one directory (python-diskcache's
/// `Cache`, on the same on-disk format).
///
/// `Cache` is `Clone + Send + Sync`: clones are cheap and share one
/// connection pool. Any number of threads and processes may open the same
/// directory; every write is one SQLite transaction, so it is atomic. A write
/// that waits for the lock longer than the timeout (default 60 s) fails with
/// [`Error::Timeout`] unless its options ask to retry.
///
/// ```
/// use std::time::Duration;
/// use diskq::{Cache, SetOptions};
///
/// let dir = tempfile::tempdir()?;
/// let cache = Cache::open(dir.path())?;
/// cache.set("answer", &42)?;
/// assert_eq!(cache.get::<i64>("answer")?, Some(42));
/// cache.set_with("session", "token", &SetOptions::new().expire(Duration::from_secs(60)))?;
/// assert_eq!(cache.incr("hits", 1, 0)?, 1);
/// assert!(cache.delete("answer")?);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// The database must be on a local file system: SQLite's locking is not
/// reliable over NFS, so diskq does not support it.
#[derive(Clone)]
pub struct Cache {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    clock: Option<Clock>,
}

impl fmt::Debug for Cache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cache")
            .field("directory", &self.inner.store.dir)
            .finish()
    }
}

/// Opens a [`Cache`] with options. Each option given here overrides the
/// setting stored in the directory and is saved there; options not given keep
/// the stored value (or the default, for a new directory).
///
/// ```
/// use diskq::{Cache, EvictionPolicy};
/// let dir = tempfile::tempdir()?;
/// let cache = Cache::builder()
///     .size_limit(64 << 20)
///     .eviction_policy(EvictionPolicy::LeastRecentlyUsed)
///     .open(dir.path())?;
/// assert_eq!(cache.size_limit(), 64 << 20);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
#[must_use]
pub struct CacheBuilder {
    overrides: Overrides,
    timeout: Duration,
    sync_files: bool,
    wake_poll: Duration,
    clock: Option<Clock>,
    read_only: bool,
}

impl fmt::Debug for CacheBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheBuilder")
            .field("overrides", &self.overrides)
            .field("timeout", &self.timeout)
            .field("sync_files", &self.sync_files)
            .field("wake_poll", &self.wake_poll)
            .field("read_only", &self.read_only)
            .finish()
    }
}

impl Default for CacheBuilder {
    fn default() -> Self {
        CacheBuilder {
            overrides: Overrides::default(),
            timeout: Duration::from_secs(60),
            sync_files: true,
            wake_poll: crate::store::WAKE_POLL,
            clock: None,
            read_only: false,
        }
    }
}

impl CacheBuilder {
    /// The soft limit on [`Cache::volume`] in bytes (default 1 GiB). Writes that
    /// find the cache over it remove up to `cull_limit` items.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::Cache::builder().size_limit(1 << 20).open(dir.path())?;
    /// assert_eq!(cache.size_limit(), 1 << 20);
    /// // Saved in the directory: the next open without the option finds it.
    /// assert_eq!(diskq::Cache::open(dir.path())?.size_limit(), 1 << 20);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn size_limit(mut self, bytes: u64) -> Self {
        self.overrides.size_limit = Some(bytes);
        self
    }

    /// How many items one write may remove (default 10; 0 turns culling off,
    /// leaving it to [`Cache::cull`]).
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// // No culling by writes: the cache may grow past its limit until `cull`.
    /// let cache = diskq::Cache::builder().size_limit(0).cull_limit(0).open(dir.path())?;
    /// cache.set("a", &1)?;
    /// assert_eq!(cache.len()?, 1);
    /// assert_eq!(cache.cull()?, 1);
    /// assert_eq!(cache.len()?, 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn cull_limit(mut self, items: u64) -> Self {
        self.overrides.cull_limit = Some(items);
        self
    }

    /// Which items culling removes first (default least-recently-stored).
    ///
    /// ```
    /// use diskq::EvictionPolicy;
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::Cache::builder()
    ///     .eviction_policy(EvictionPolicy::LeastRecentlyUsed)
    ///     .open(dir.path())?;
    /// assert_eq!(cache.eviction_policy(), EvictionPolicy::LeastRecentlyUsed);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn eviction_policy(mut self, policy: EvictionPolicy) -> Self {
        self.overrides.eviction_policy = Some(policy);
        self
    }

    /// Count hits and misses (default off; each get then writes).
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::Cache::builder().statistics(true).open(dir.path())?;
    /// cache.set("a", &1)?;
    /// cache.get::<i64>("a")?;
    /// cache.get::<i64>("missing")?;
    /// let stats = cache.stats()?;
    /// assert_eq!((stats.hits, stats.misses), (1, 1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn statistics(mut self, on: bool) -> Self {
        self.overrides.statistics = Some(on);
        self
    }

    /// Keep an index on tags, so [`Cache::evict`] does not scan (default off).
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::Cache::builder().tag_index(true).open(dir.path())?;
    /// assert!(cache.tag_index());
    /// cache.set_with("a", &1, &diskq::SetOptions::new().tag("batch-7"))?;
    /// assert_eq!(cache.evict("batch-7")?, 1); // found through the index
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn tag_index(mut self, on: bool) -> Self {
        self.overrides.tag_index = Some(on);
        self
    }

    /// Text, bytes and encoded values of at least this many bytes go to
    /// their own file (default 32 KiB).
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::Cache::builder().min_file_size(4).open(dir.path())?;
    /// cache.set_bytes("small", b"abc")?; // in the database row
    /// cache.set_bytes("large", b"abcd")?; // in its own file
    /// assert!(cache.read("small")?.expect("set").path().is_none());
    /// assert!(cache.read("large")?.expect("set").path().is_some());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn min_file_size(mut self, bytes: u64) -> Self {
        self.overrides.min_file_size = Some(bytes);
        self
    }

    /// How long an operation waits for another connection's lock before
    /// [`Error::Timeout`] (default 60 s; not persisted). Any `Duration` is
    /// valid: SQLite's limit, about 24.8 days, stands for a longer one.
    /// A timed wait (`pull_timeout`, `lease_timeout`, `pop_front_timeout`)
    /// waits for the lock only until its own deadline.
    ///
    /// ```
    /// use std::time::Duration;
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::Cache::builder().timeout(Duration::from_millis(100)).open(dir.path())?;
    /// // While a transaction holds the write lock, a write from another thread
    /// // gives up after 100 ms.
    /// cache.transact(|_| {
    ///     let other = cache.clone();
    ///     let err = std::thread::spawn(move || other.set("k", &1)).join().expect("no panic");
    ///     assert!(err.expect_err("locked").is_timeout());
    ///     Ok::<_, diskq::Error>(())
    /// })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// SQLite's page cache size, in pages (`PRAGMA cache_size`, default 8192).
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::Cache::builder().sqlite_cache_size(1024).open(dir.path())?;
    /// let settings = cache.settings();
    /// assert!(settings.contains(&("sqlite_cache_size".to_string(), "1024".to_string())));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn sqlite_cache_size(mut self, pages: i64) -> Self {
        self.overrides.sqlite_cache_size = Some(pages);
        self
    }

    /// SQLite's memory-mapped I/O size in bytes (`PRAGMA mmap_size`, default 64 MiB).
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::Cache::builder().sqlite_mmap_size(0).open(dir.path())?; // no memory map
    /// let settings = cache.settings();
    /// assert!(settings.contains(&("sqlite_mmap_size".to_string(), "0".to_string())));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn sqlite_mmap_size(mut self, bytes: i64) -> Self {
        self.overrides.sqlite_mmap_size = Some(bytes);
        self
    }

    /// `PRAGMA synchronous`: [`Synchronous::Normal`] (default),
    /// [`Synchronous::Full`] or [`Synchronous::Extra`].
    /// NORMAL in WAL mode keeps every commit atomic and survives a crash of
    /// any process; a power loss may lose the last commits. FULL also
    /// survives a power loss, at one fsync per commit. OFF, which risks
    /// corruption on power loss, cannot be asked for; a stored row of 0 is
    /// refused with [`Error::InvalidSetting`], and an explicit option
    /// replaces such a row.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::Cache::builder()
    ///     .sqlite_synchronous(diskq::Synchronous::Full)
    ///     .open(dir.path())?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn sqlite_synchronous(mut self, level: Synchronous) -> Self {
        self.overrides.sqlite_synchronous = Some(level.level());
        self
    }

    /// `PRAGMA journal_mode`: `wal` (default), `delete`, `truncate` or
    /// `persist`. `memory` and `off`, which make a commit non-atomic, are
    /// refused with [`Error::InvalidSetting`], from this option and from a
    /// stored row alike; an explicit option replaces a refused row.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::Cache::builder().sqlite_journal_mode("wal").open(dir.path())?;
    /// cache.set("k", &1)?;
    /// assert!(diskq::Cache::builder().sqlite_journal_mode("off").open(dir.path()).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn sqlite_journal_mode(mut self, mode: impl Into<String>) -> Self {
        self.overrides.sqlite_journal_mode = Some(mode.into());
        self
    }

    /// Whether value files are synced to disk before their row commits
    /// (default true; not persisted). Turning it off speeds up large writes
    /// and risks empty value files after a power loss (not after a crash).
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// // Large values are not fsynced: faster, at the risk described above.
    /// let cache = diskq::Cache::builder().sync_files(false).min_file_size(4).open(dir.path())?;
    /// cache.set_bytes("blob", b"0123456789")?;
    /// assert_eq!(cache.get_bytes("blob")?.as_deref(), Some(&b"0123456789"[..]));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn sync_files(mut self, on: bool) -> Self {
        self.sync_files = on;
        self
    }

    /// How often a blocked wait (`pop_front_timeout`, `lease_timeout`, ...)
    /// looks at the database for commits that rang no doorbell: pushes by
    /// python-diskcache, or by any process where the doorbell cannot be
    /// watched (not Linux, no inotify). Default 50 ms; not persisted. On
    /// Linux, pushes by diskq processes wake waiters at once whatever this
    /// is; elsewhere it is how late a waiter can see them.
    ///
    /// ```
    /// use std::time::Duration;
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::Cache::builder().wake_poll(Duration::from_millis(10)).open(dir.path())?;
    /// let queue: diskq::Deque<i64> = diskq::Deque::from_cache(cache);
    /// assert_eq!(queue.pop_front_timeout(Duration::from_millis(30))?, None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn wake_poll(mut self, every: Duration) -> Self {
        self.wake_poll = every.max(Duration::from_millis(1));
        self
    }

    /// Replaces the clock used for expiry, lease deadlines and access times
    /// (default: [`SystemTime::now`]). For tests that drive time without
    /// sleeping.
    ///
    /// ```
    /// use std::time::{Duration, SystemTime};
    /// let dir = tempfile::tempdir()?;
    /// let an_hour_ago = SystemTime::now() - Duration::from_secs(3600);
    /// let past = diskq::Cache::builder().clock(move || an_hour_ago).open(dir.path())?;
    /// past.set_with("k", &1, &diskq::SetOptions::new().expire(Duration::from_secs(60)))?;
    /// // Set an hour ago for a minute: expired now.
    /// assert_eq!(diskq::Cache::open(dir.path())?.get::<i64>("k")?, None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn clock(mut self, clock: impl Fn() -> SystemTime + Send + Sync + 'static) -> Self {
        self.clock = Some(Arc::new(clock));
        self
    }

    /// Opens an existing cache only to read it, leaving the directory byte
    /// for byte as it was (see [`Cache::open_read_only`]). Only
    /// [`timeout`](CacheBuilder::timeout) and [`clock`](CacheBuilder::clock)
    /// combine with it: an option that would be saved in the directory makes
    /// `open` fail with [`Error::InvalidUse`].
    ///
    /// ```
    /// use std::time::Duration;
    /// let dir = tempfile::tempdir()?;
    /// diskq::Cache::open(dir.path())?.set("k", &1)?;
    /// let reader = diskq::Cache::builder().read_only().timeout(Duration::from_secs(5)).open(dir.path())?;
    /// assert_eq!(reader.get::<i64>("k")?, Some(1));
    /// assert!(diskq::Cache::builder().read_only().size_limit(1 << 20).open(dir.path()).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn read_only(mut self) -> Self {
        self.read_only = true;
        self
    }

    /// Opens (creating if needed) the cache in `dir`; with
    /// [`read_only`](CacheBuilder::read_only), opens an existing one to read.
    ///
    /// With the `postgres` feature, `dir` may instead be a PostgreSQL
    /// location, `postgres://user:password@host/database#schema`: the cache
    /// is then the tables of that schema (see the crate docs' "PostgreSQL"
    /// section for what that backend does not do). A path that starts with
    /// `postgres://` or `postgresql://` is always read as a location; write
    /// `./postgres:...` for a directory of that name.
    ///
    /// # Errors
    ///
    /// Fails with [`Error::NotADirectory`] when `dir` is a file,
    /// [`Error::NotADatabase`] when its `cache.db` is not SQLite,
    /// [`Error::InvalidSetting`] when a stored setting is invalid, and
    /// [`Error::Io`] when the directory cannot be created or written. None of
    /// these changes anything on disk.
    ///
    /// Also [`Error::UnsupportedFormat`] when a newer diskq made the directory,
    /// [`Error::Corrupt`] when `cache.db` or one of its companion files is a
    /// symbolic link, FIFO or device, [`Error::InvalidUse`] when an option that
    /// is saved in the directory is combined with
    /// [`read_only`](CacheBuilder::read_only), and [`Error::Timeout`] when
    /// making the tables waits past the timeout for another process's write
    /// lock.
    ///
    /// ```
    /// use std::time::Duration;
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::Cache::builder()
    ///     .size_limit(64 << 20)
    ///     .timeout(Duration::from_secs(5))
    ///     .open(dir.path().join("cache"))?; // the folder is made
    /// assert_eq!(cache.size_limit(), 64 << 20);
    /// // A file where the directory should be is refused.
    /// std::fs::write(dir.path().join("file"), b"")?;
    /// assert!(matches!(
    ///     diskq::Cache::builder().open(dir.path().join("file")),
    ///     Err(diskq::Error::NotADirectory(_))
    /// ));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open(self, dir: impl AsRef<Path>) -> Result<Cache> {
        let opts = StoreOptions {
            timeout: self.timeout,
            sync_files: self.sync_files,
            wake_poll: self.wake_poll,
            read_only: self.read_only,
        };
        let store = Store::open(dir.as_ref(), &self.overrides, &opts)?;
        Ok(Cache {
            inner: Arc::new(Inner {
                store,
                clock: self.clock,
            }),
        })
    }
}

/// A value prepared for its row: inline, or already written to its file.
pub(crate) struct Prepared {
    pub mode: i64,
    pub filename: Option<String>,
    pub size: i64,
    pub value: Scalar,
    /// Keeps `repair()` from taking the new file for an orphan until the
    /// row naming it has committed.
    _guard: Option<File>,
}

impl Cache {
    /// Opens (creating if needed) the cache in `dir` with the stored settings.
    ///
    /// # Errors
    ///
    /// As [`CacheBuilder::open`]: [`Error::NotADirectory`],
    /// [`Error::NotADatabase`], [`Error::InvalidSetting`] for an invalid stored
    /// setting, [`Error::UnsupportedFormat`] for a directory of a newer diskq,
    /// [`Error::Io`] when the directory cannot be made or written.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::Cache::open(dir.path())?;
    /// cache.set("k", "v")?;
    /// // Another handle (or another process) on the directory sees the write.
    /// let again = diskq::Cache::open(dir.path())?;
    /// assert_eq!(again.get::<String>("k")?.as_deref(), Some("v"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open(dir: impl AsRef<Path>) -> Result<Cache> {
        Cache::builder().open(dir)
    }

    /// Opens the existing cache in `dir` (made by diskq or python-diskcache)
    /// only to read it: the directory stays byte for byte as it was, names,
    /// sizes, contents and modification times of its files alike. Nothing is
    /// created (no schema, Settings row, lock or reserve file), a `get`
    /// counts no hit or miss and records no access time, and every writing
    /// method (`set`, `delete`, `pull`, `check` with `fix`, `transact`, ...)
    /// fails with [`Error::InvalidUse`], touching nothing.
    ///
    /// Another process may write the directory meanwhile; reads see its
    /// commits as usual. SQLite needs the write-ahead log's files
    /// (`cache.db-wal`, `cache.db-shm`) while the cache is open: when they
    /// are missing (the directory was closed cleanly), they are created and
    /// then removed again when the last connection closes, so the directory
    /// itself (not its files) gets a new modification time. Where they
    /// were there already, they are left in place; `cache.db-shm` is memory
    /// shared by the processes, which every reader writes to.
    ///
    /// # Errors
    ///
    /// Fails with [`Error::Io`] when `dir` or its `cache.db` does not
    /// exist, and with [`Error::InvalidUse`] when `cache.db` has no cache
    /// tables.
    ///
    /// Also [`Error::NotADatabase`] and [`Error::UnsupportedFormat`], as for
    /// [`Cache::open`].
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// diskq::Cache::open(dir.path())?.set("greeting", "hello")?;
    /// let cache = diskq::Cache::open_read_only(dir.path())?;
    /// assert_eq!(cache.get::<String>("greeting")?.as_deref(), Some("hello"));
    /// assert!(cache.set("greeting", "bye").is_err());
    /// assert!(diskq::Cache::open_read_only(dir.path().join("missing")).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open_read_only(dir: impl AsRef<Path>) -> Result<Cache> {
        Cache::builder().read_only().open(dir)
    }

    /// True when opened with [`Cache::open_read_only`]: writes are refused.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::Cache::open(dir.path())?;
    /// assert!(!cache.is_read_only());
    /// assert!(diskq::Cache::open_read_only(dir.path())?.is_read_only());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn is_read_only(&self) -> bool {
        self.inner.store.is_read_only()
    }

    /// A builder for opening with options.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::Cache::builder().statistics(true).open(dir.path())?;
    /// assert!(cache.statistics());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn builder() -> CacheBuilder {
        CacheBuilder::default()
    }

    /// The cache directory, as an absolute path.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::Cache::open(dir.path())?;
    /// assert_eq!(cache.directory(), dir.path().canonicalize()?);
    /// assert!(cache.directory().join("cache.db").is_file());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn directory(&self) -> &Path {
        &self.inner.store.dir
    }

    /// The size limit in bytes.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// assert_eq!(diskq::Cache::open(dir.path())?.size_limit(), 1 << 30); // the default, 1 GiB
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn size_limit(&self) -> u64 {
        self.inner.store.settings.size_limit
    }

    /// How many items one write may cull.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// assert_eq!(diskq::Cache::open(dir.path())?.cull_limit(), 10); // the default
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn cull_limit(&self) -> u64 {
        self.inner.store.settings.cull_limit
    }

    /// The eviction policy.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::Cache::open(dir.path())?;
    /// assert_eq!(cache.eviction_policy(), diskq::EvictionPolicy::LeastRecentlyStored);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn eviction_policy(&self) -> EvictionPolicy {
        self.inner.store.settings.eviction_policy
    }

    /// The size from which values go to their own file.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// assert_eq!(diskq::Cache::open(dir.path())?.min_file_size(), 32 * 1024); // the default
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn min_file_size(&self) -> u64 {
        self.inner.store.settings.min_file_size
    }

    /// Whether the tag index exists.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// assert!(!diskq::Cache::open(dir.path())?.tag_index()); // off by default
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn tag_index(&self) -> bool {
        self.inner.store.settings.tag_index
    }

    /// Every persisted setting, as `(name, value)` text pairs in
    /// python-diskcache's names (for display).
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::Cache::builder().size_limit(4096).open(dir.path())?;
    /// let settings = cache.settings();
    /// assert!(settings.contains(&("size_limit".to_string(), "4096".to_string())));
    /// assert!(settings.contains(&("eviction_policy".to_string(), "least-recently-stored".to_string())));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn settings(&self) -> Vec<(String, String)> {
        let mut rows = self.inner.store.settings.rows();
        if let Some(row) = rows.iter_mut().find(|(k, _)| *k == "statistics") {
            row.1 = Scalar::Int(self.inner.store.statistics().into());
        }
        rows.into_iter()
            .map(|(k, v)| {
                let text = match v {
                    Scalar::Int(n) => n.to_string(),
                    Scalar::Text(s) => s,
                    other => format!("{other:?}"),
                };
                (k.to_owned(), text)
            })
            .collect()
    }

    pub(crate) fn store(&self) -> &Store {
        &self.inner.store
    }

    /// Now, by the cache's clock.
    pub(crate) fn now_time(&self) -> SystemTime {
        match &self.inner.clock {
            Some(clock) => clock(),
            None => SystemTime::now(),
        }
    }

    /// Now, in seconds since the Unix epoch.
    pub(crate) fn now(&self) -> f64 {
        let now = self.now_time();
        match now.duration_since(UNIX_EPOCH) {
            Ok(since) => since.as_secs_f64(),
            Err(before) => -before.duration().as_secs_f64(),
        }
    }

    fn key(key: impl Into<Key>) -> Result<Key> {
        let key = key.into();
        key.validate()?;
        Ok(key)
    }

    /// Encodes and, when large, writes the value file (outside any lock).
    /// Encodes and prepares each value (writing the value files of large
    /// ones); on a failure removes the files written so far and fails.
    pub(crate) fn prepare_all<'v, V, I>(&self, values: I) -> Result<Vec<Prepared>>
    where
        V: Serialize + ?Sized + 'v,
        I: IntoIterator<Item = &'v V>,
    {
        let mut prepared = Vec::new();
        for value in values {
            match codec::encode(value).and_then(|e| self.prepare(e)) {
                Ok(p) => prepared.push(p),
                Err(e) => {
                    for name in prepared.iter().filter_map(|p| p.filename.as_deref()) {
                        self.store().disk.remove(name);
                    }
                    return Err(e);
                }
            }
        }
        Ok(prepared)
    }

    pub(crate) fn prepare(&self, encoded: Encoded) -> Result<Prepared> {
        let min = self.inner.store.settings.min_file_size as usize;
        let inline = |mode, value| {
            Ok(Prepared {
                mode,
                filename: None,
                size: 0,
                value,
                _guard: None,
            })
        };
        match encoded {
            Encoded::Native(Native::Int(n)) => inline(MODE_RAW, Scalar::Int(n)),
            Encoded::Native(Native::Float(x)) => inline(MODE_RAW, Scalar::Real(x)),
            Encoded::Native(Native::Text(s)) if s.len() < min => inline(MODE_RAW, Scalar::Text(s)),
            Encoded::Native(Native::Bytes(b)) if b.len() < min => inline(MODE_RAW, Scalar::Blob(b)),
            Encoded::MsgPack(b) if b.len() < min => inline(MODE_MSGPACK, Scalar::Blob(b)),
            Encoded::Native(Native::Text(s)) => self.prepare_file(MODE_TEXT, |disk| disk.write_bytes(s.as_bytes())),
            Encoded::Native(Native::Bytes(b)) => self.prepare_file(MODE_BINARY, |disk| disk.write_bytes(&b)),
            Encoded::MsgPack(b) => self.prepare_file(MODE_MSGPACK, |disk| disk.write_bytes(&b)),
        }
    }

    pub(crate) fn prepare_file(
        &self,
        mode: i64,
        write: impl FnOnce(&crate::disk::Disk) -> Result<(String, u64)>,
    ) -> Result<Prepared> {
        // Before the lock file or a value file is made.
        self.inner.store.writable()?;
        let guard = self.inner.store.disk.writer_guard()?;
        let (name, size) = write(&self.inner.store.disk)?;
        let size = i64::try_from(size).map_err(|_| Error::encode("value larger than 2^63 bytes"))?;
        Ok(Prepared {
            mode,
            filename: Some(name),
            size,
            value: Scalar::Null,
            _guard: Some(guard),
        })
    }

    pub(crate) fn expire_time(now: f64, expire: Option<Duration>) -> Option<f64> {
        expire.map(|d| now + d.as_secs_f64())
    }

    /// Loads a row's value (reading its file); `None` when the file is gone.
    /// The inline value is moved out of `row`, not copied.
    pub(crate) fn load(&self, row: &mut ValueRow) -> Result<Option<Stored>> {
        let value = std::mem::replace(&mut row.value, Scalar::Null);
        let disk = &self.inner.store.disk;
        let size = row.size;
        let file = |name: &Option<String>| -> Result<Option<Vec<u8>>> {
            match name {
                Some(name) => disk.read(name, size),
                None => Err(Error::Corrupt("a file-backed row has no file name".into())),
            }
        };
        Ok(Some(match (row.mode, value) {
            (MODE_PICKLE, _) => Stored::Pickle,
            (MODE_RAW, Scalar::Int(n)) => Stored::Native(Native::Int(n)),
            (MODE_RAW, Scalar::Real(x)) => Stored::Native(Native::Float(x)),
            (MODE_RAW | MODE_TEXT, Scalar::Text(s)) => Stored::Native(Native::Text(s)),
            (MODE_RAW | MODE_BINARY, Scalar::Blob(b)) => Stored::Native(Native::Bytes(b)),
            (MODE_MSGPACK, Scalar::Blob(b)) => Stored::MsgPack(b),
            (MODE_BINARY, Scalar::Null) => match file(&row.filename)? {
                Some(b) => Stored::Native(Native::Bytes(b)),
                None => return Ok(None),
            },
            (MODE_TEXT, Scalar::Null) => match file(&row.filename)? {
                Some(b) => Stored::Native(Native::Text(
                    String::from_utf8(b).map_err(|_| Error::Corrupt("a text value file is not UTF-8".into()))?,
                )),
                None => return Ok(None),
            },
            (MODE_MSGPACK, Scalar::Null) => match file(&row.filename)? {
                Some(b) => Stored::MsgPack(b),
                None => return Ok(None),
            },
            (mode, value) => {
                return Err(Error::Corrupt(format!(
                    "a row has mode {mode} with a value of the wrong kind: {value:?}"
                )));
            }
        }))
    }

    /// Stores `value` under `key` (replacing any value, keeping the key's
    /// place in iteration order). Atomic.
    ///
    /// How the value is stored follows what serde sees: integers (up to
    /// `i64::MAX`), floats, `str`/`String`/`char` and byte strings are stored
    /// natively, as python-diskcache stores `int`, `float`, `str` and
    /// `bytes`; everything else is MessagePack (a mode of diskq's own, which
    /// python-diskcache does not decode).
    ///
    /// **A `Vec<u8>` or `&[u8]` is not a byte string to serde** but a
    /// sequence of integers: `set("v", &vec![1u8, 2, 3])` stores MessagePack
    /// (an array), so [`Cache::get_bytes`] fails on it and a Python process
    /// cannot read it. For bytes use [`Cache::set_bytes`] (or
    /// [`Cache::set_reader`] for a large value), or wrap them in
    /// `serde_bytes::ByteBuf` / `serde_bytes::Bytes` (or mark a field
    /// `#[serde(with = "serde_bytes")]`).
    ///
    /// # Errors
    ///
    /// [`Error::Encode`] when the value cannot be serialized (a serde error,
    /// such as a map with non-text keys or a failing `Serialize` impl);
    /// [`Error::Io`] when a large value's file cannot be written (nothing is
    /// stored then). The errors of any write ([the crate's
    /// errors](crate#errors)): [`Error::Timeout`] when the write lock stays
    /// taken past the timeout, [`Error::InvalidUse`] on a read-only handle.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::Cache::open(dir.path())?;
    /// cache.set("seq", &vec![1u8, 2, 3])?; // MessagePack: a sequence
    /// assert!(cache.get_bytes("seq").is_err());
    /// assert_eq!(cache.get::<Vec<u8>>("seq")?, Some(vec![1, 2, 3])); // Rust reads it back
    /// cache.set_bytes("raw", &[1, 2, 3])?; // python-diskcache's bytes
    /// assert_eq!(cache.get_bytes("raw")?, Some(vec![1, 2, 3]));
    /// cache.set("also-raw", serde_bytes::Bytes::new(&[1, 2, 3]))?;
    /// assert_eq!(cache.get_bytes("also-raw")?, Some(vec![1, 2, 3]));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set<V: Serialize + ?Sized>(&self, key: impl Into<Key>, value: &V) -> Result<()> {
        self.set_with(key, value, &SetOptions::default())
    }

    /// [`Cache::set`] with an expiry, a tag or retry.
    ///
    /// # Errors
    ///
    /// As [`Cache::set`]: [`Error::Encode`] when the value cannot be serialized
    /// (a serde error, such as a map with non-text keys or a failing
    /// `Serialize` impl), [`Error::Io`] for a value file, and the errors of any
    /// write ([the crate's errors](crate#errors)): [`Error::Timeout`] when the
    /// write lock stays taken past the timeout, [`Error::InvalidUse`] on a
    /// read-only handle. With `opts.retry`, a lock timeout is retried instead.
    ///
    /// ```
    /// use std::time::Duration;
    /// use diskq::SetOptions;
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::Cache::open(dir.path())?;
    /// let opts = SetOptions::new().expire(Duration::from_secs(3600)).tag("user-7");
    /// cache.set_with("session:7", "token", &opts)?;
    /// let entry = cache.get_entry::<String>("session:7")?.expect("live");
    /// assert_eq!(entry.tag.as_deref(), Some("user-7"));
    /// assert!(entry.expire_time.is_some());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set_with<V: Serialize + ?Sized>(&self, key: impl Into<Key>, value: &V, opts: &SetOptions) -> Result<()> {
        let key = Self::key(key)?;
        let prepared = self.prepare(codec::encode(value)?)?;
        self.write_prepared(&key, prepared, opts)
    }

    /// Stores raw bytes (python-diskcache's `bytes`).
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when a large value's file cannot be written. The errors of
    /// any write ([the crate's errors](crate#errors)): [`Error::Timeout`] when
    /// the write lock stays taken past the timeout, [`Error::InvalidUse`] on a
    /// read-only handle.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::Cache::open(dir.path())?;
    /// cache.set_bytes("png", &[0x89, b'P', b'N', b'G'])?;
    /// assert_eq!(cache.get_bytes("png")?, Some(vec![0x89, b'P', b'N', b'G']));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set_bytes(&self, key: impl Into<Key>, bytes: &[u8]) -> Result<()> {
        self.set_bytes_with(key, bytes, &SetOptions::default())
    }

    /// [`Cache::set_bytes`] with options.
    ///
    /// # Errors
    ///
    /// As [`Cache::set_bytes`]; with `opts.retry`, a lock timeout is retried
    /// instead of returned.
    ///
    /// ```
    /// use std::time::Duration;
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::Cache::open(dir.path())?;
    /// let opts = diskq::SetOptions::new().tag("thumbnails").expire(Duration::from_secs(60));
    /// cache.set_bytes_with("thumb:1", b"\x00\x01", &opts)?;
    /// assert_eq!(cache.evict("thumbnails")?, 1);
    /// assert_eq!(cache.get_bytes("thumb:1")?, None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set_bytes_with(&self, key: impl Into<Key>, bytes: &[u8], opts: &SetOptions) -> Result<()> {
        let key = Self::key(key)?;
        let prepared = self.prepare(Encoded::Native(Native::Bytes(bytes.to_vec())))?;
        self.write_prepared(&key, prepared, opts)
    }

    /// Streams `reader` into a value file (never holding it in memory) and
    /// stores it under `key` as bytes; returns the size.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when `reader` fails or the value file cannot be written
    /// (the partial file is removed and nothing is stored). The errors of any
    /// write ([the crate's errors](crate#errors)): [`Error::Timeout`] when the
    /// write lock stays taken past the timeout, [`Error::InvalidUse`] on a
    /// read-only handle.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::Cache::open(dir.path())?;
    /// let size = cache.set_reader("blob", &mut &b"streamed bytes"[..], &Default::default())?;
    /// assert_eq!(size, 14);
    /// assert_eq!(cache.get_bytes("blob")?.as_deref(), Some(&b"streamed bytes"[..]));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set_reader(&self, key: impl Into<Key>, reader: &mut dyn Read, opts: &SetOptions) -> Result<u64> {
        let key = Self::key(key)?;
        let prepared = self.prepare_file(MODE_BINARY, |disk| disk.write_reader(reader))?;
        let size = prepared.size as u64;
        self.write_prepared(&key, prepared, opts)?;
        Ok(size)
    }

    fn write_prepared(&self, key: &Key, prepared: Prepared, opts: &SetOptions) -> Result<()> {
        self.inner.store.write(opts.retry, prepared.filename.as_deref(), |s| {
            let now = self.now();
            let row = new_row(&prepared, Self::expire_time(now, opts.expire), opts.tag.as_deref());
            s.upsert(key, now, &row)?;
            self.cull_after_write(s, now)
        })
    }

    /// Culls as python-diskcache does after each write: expired items first,
    /// then, when the volume is over the size limit, items by policy; at most
    /// `cull_limit` in all.
    pub(crate) fn cull_after_write(&self, s: &mut Session, now: f64) -> Result<()> {
        self.cull_after_push(s, now, true)
    }

    /// [`Cache::cull_after_write`], skipping the look for expired items when
    /// the caller knows there are none (a push learned it with its count).
    pub(crate) fn cull_after_push(&self, s: &mut Session, now: f64, may_have_expired: bool) -> Result<()> {
        let settings = &self.inner.store.settings;
        let mut limit = settings.cull_limit;
        if limit == 0 {
            return Ok(());
        }
        if may_have_expired {
            limit -= s.cull_expired(now, limit)? as u64;
        }
        if limit == 0 || settings.eviction_policy == EvictionPolicy::None {
            return Ok(());
        }
        if s.volume()? < settings.size_limit as i64 {
            return Ok(());
        }
        s.delete_batch(crate::store::Batch::Policy(settings.eviction_policy), limit)?;
        Ok(())
    }

    /// Reads the live row of `key` and its value, recording the access for
    /// the eviction policy and statistics.
    fn get_stored(&self, key: &Key) -> Result<Option<(ValueRow, Stored)>> {
        let store = &self.inner.store;
        let policy = store.settings.eviction_policy;
        // Opened read-only, a get records neither statistics nor access.
        let counted = store.statistics() && !store.is_read_only();
        let read_only = store.is_read_only()
            || (!counted && matches!(policy, EvictionPolicy::LeastRecentlyStored | EvictionPolicy::None));
        let fetch = |s: &mut Session| -> Result<Option<(ValueRow, Stored)>> {
            let now = self.now();
            let row = if read_only {
                s.get_live(key, now)?
            } else {
                s.get_recording(key, now, policy)?
            };
            let found = match row {
                Some(mut row) => self
                    .load(&mut row)
                    .map_err(|e| of_key(e, key))?
                    .map(|stored| (row, stored)),
                None => None,
            };
            if counted {
                s.count_access(found.is_some())?;
            }
            Ok(found)
        };
        if read_only {
            store.read(fetch)
        } else {
            store.write(false, None, fetch)
        }
    }

    /// The value of `key` decoded as `V`, or `None` when absent or expired.
    ///
    /// # Errors
    ///
    /// Fails with [`Error::Decode`] (naming the key and `V`) when the stored
    /// value is of another type, and with [`Error::Pickled`] for a Python
    /// pickle.
    ///
    /// Otherwise the storage errors of a read ([the crate's
    /// errors](crate#errors)), and, when statistics are on or the eviction
    /// policy records accesses (least-recently or least-frequently used), those
    /// of a write too, since the get then writes.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::Cache::open(dir.path())?;
    /// cache.set("answer", &42)?;
    /// assert_eq!(cache.get::<i64>("answer")?, Some(42));
    /// assert_eq!(cache.get::<i64>("question")?, None);
    /// // The wrong type is an error, not a miss.
    /// assert!(cache.get::<String>("answer").unwrap_err().is_decode());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get<V: DeserializeOwned>(&self, key: impl Into<Key>) -> Result<Option<V>> {
        let key = Self::key(key)?;
        match self.get_stored(&key)? {
            Some((_, stored)) => codec::decode(stored, &key).map(Some),
            None => Ok(None),
        }
    }

    /// The value of `key` with its expiry time and tag.
    ///
    /// # Errors
    ///
    /// As [`Cache::get`]: [`Error::Decode`] (naming the key and `V`) when the
    /// stored value does not decode as `V`, and [`Error::Pickled`] for a Python
    /// pickle.
    ///
    /// ```
    /// use std::time::Duration;
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::Cache::open(dir.path())?;
    /// cache.set("forever", &1)?;
    /// cache.set_with("brief", &2, &diskq::SetOptions::new().expire(Duration::from_secs(60)).tag("t"))?;
    /// assert_eq!(cache.get_entry::<i64>("forever")?.expect("set").expire_time, None);
    /// let brief = cache.get_entry::<i64>("brief")?.expect("set");
    /// assert_eq!((brief.value, brief.tag.as_deref()), (2, Some("t")));
    /// assert!(brief.expire_time.expect("expires") > std::time::SystemTime::now());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get_entry<V: DeserializeOwned>(&self, key: impl Into<Key>) -> Result<Option<Entry<V>>> {
        let key = Self::key(key)?;
        match self.get_stored(&key)? {
            Some((row, stored)) => Ok(Some(Entry {
                value: codec::decode(stored, &key)?,
                expire_time: row.expire_time.map(to_system_time),
                tag: row.tag,
            })),
            None => Ok(None),
        }
    }

    /// The raw bytes of a bytes value (python-diskcache's `bytes`).
    ///
    /// # Errors
    ///
    /// [`Error::Decode`] when the stored value is not bytes (text, a number,
    /// MessagePack: see the table in [`Cache::set`]), [`Error::Pickled`] for a
    /// Python pickle; the other errors of [`Cache::get`].
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::Cache::open(dir.path())?;
    /// cache.set_bytes("raw", b"\x00\xff")?;
    /// assert_eq!(cache.get_bytes("raw")?, Some(vec![0x00, 0xff]));
    /// cache.set("text", "not bytes")?;
    /// assert!(cache.get_bytes("text").unwrap_err().is_decode());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get_bytes(&self, key: impl Into<Key>) -> Result<Option<Vec<u8>>> {
        let key = Self::key(key)?;
        match self.get_stored(&key)? {
            Some((_, Stored::Native(Native::Bytes(b)))) => Ok(Some(b)),
            Some((_, other)) => Err(wrong_kind(&key, "bytes", &other)),
            None => Ok(None),
        }
    }

    /// A reader over a bytes or text value: the open value file for a large
    /// value (with its path, for serving files), memory for a small one.
    /// The value is never copied whole.
    ///
    /// # Errors
    ///
    /// [`Error::Decode`] when the value is neither bytes nor text,
    /// [`Error::Pickled`] for a pickle, [`Error::Corrupt`] when the value
    /// file's size differs from its row's, [`Error::Io`] when the file cannot
    /// be opened.
    ///
    /// ```
    /// use std::io::Read;
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::Cache::builder().min_file_size(4).open(dir.path())?;
    /// cache.set_bytes("big", b"0123456789")?;
    /// let mut reader = cache.read("big")?.expect("present");
    /// assert!(reader.path().is_some());
    /// let mut text = String::new();
    /// reader.read_to_string(&mut text).unwrap();
    /// assert_eq!(text, "0123456789");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn read(&self, key: impl Into<Key>) -> Result<Option<ValueReader>> {
        let key = Self::key(key)?;
        let store = &self.inner.store;
        store.read(|s| {
            let Some(row) = s.get_live(&key, self.now())? else {
                return Ok(None);
            };
            match (row.mode, &row.value, &row.filename) {
                (MODE_BINARY | MODE_TEXT, Scalar::Null, Some(name)) => {
                    let Some((file, path)) = store.disk.open(name)? else {
                        return Ok(None);
                    };
                    let len = file.metadata().map_err(|e| Error::io(&path, e))?.len();
                    crate::disk::check_size(&path, len, row.size).map_err(|e| of_key(e, &key))?;
                    Ok(Some(ValueReader {
                        // Never more than the row's size, even if the file grows.
                        inner: ReaderInner::File(file.take(len)),
                        path: Some(path),
                        len,
                    }))
                }
                (MODE_RAW, Scalar::Blob(b), _) => Ok(Some(ValueReader::memory(b.clone()))),
                (MODE_RAW, Scalar::Text(t), _) => Ok(Some(ValueReader::memory(t.clone().into_bytes()))),
                _ => {
                    let mut row = row;
                    let stored = self.load(&mut row)?.unwrap_or(Stored::Pickle);
                    Err(wrong_kind(&key, "bytes or text", &stored))
                }
            }
        })
    }

    /// Stores `value` only if `key` has no live value; true if it did.
    /// Atomic: of concurrent adds of one key, exactly one succeeds.
    ///
    /// # Errors
    ///
    /// As [`Cache::set`]: [`Error::Encode`] when the value cannot be serialized
    /// (a serde error, such as a map with non-text keys or a failing
    /// `Serialize` impl), [`Error::Io`] for a value file, and the errors of any
    /// write ([the crate's errors](crate#errors)): [`Error::Timeout`] when the
    /// write lock stays taken past the timeout, [`Error::InvalidUse`] on a
    /// read-only handle. A key that is already live is not an error
    /// (`Ok(false)`).
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::Cache::open(dir.path())?;
    /// assert!(cache.add("owner", "worker-1")?);
    /// assert!(!cache.add("owner", "worker-2")?, "already taken");
    /// assert_eq!(cache.get::<String>("owner")?.as_deref(), Some("worker-1"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn add<V: Serialize + ?Sized>(&self, key: impl Into<Key>, value: &V) -> Result<bool> {
        self.add_with(key, value, &SetOptions::default())
    }

    /// [`Cache::add`] with options.
    ///
    /// # Errors
    ///
    /// As [`Cache::add`]; with `opts.retry`, a lock timeout is retried instead
    /// of returned.
    ///
    /// ```
    /// use std::time::Duration;
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::Cache::open(dir.path())?;
    /// let once_a_minute = diskq::SetOptions::new().expire(Duration::from_secs(60));
    /// assert!(cache.add_with("mail-sent:7", &true, &once_a_minute)?);
    /// assert!(!cache.add_with("mail-sent:7", &true, &once_a_minute)?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn add_with<V: Serialize + ?Sized>(&self, key: impl Into<Key>, value: &V, opts: &SetOptions) -> Result<bool> {
        let key = Self::key(key)?;
        let prepared = self.prepare(codec::encode(value)?)?;
        let written = prepared.filename.clone();
        let added = self.inner.store.write(opts.retry, written.as_deref(), |s| {
            let now = self.now();
            let row = new_row(&prepared, Self::expire_time(now, opts.expire), opts.tag.as_deref());
            match s.find_slot(&key)? {
                Some(old) if is_live(old.expire_time, now) => return Ok(false),
                Some(old) => {
                    s.update_row(old.rowid, now, &row)?;
                    s.remove_after_commit(old.filename);
                }
                None => s.insert_row(&key, now, &row)?,
            }
            self.cull_after_write(s, now)?;
            Ok(true)
        })?;
        if !added && let Some(name) = &written {
            self.inner.store.disk.remove(name);
        }
        Ok(added)
    }

    /// Adds `delta` to the integer value of `key` and returns the result; an
    /// absent (or expired) key starts at `default`. Atomic across threads and
    /// processes: concurrent increments are each counted.
    ///
    /// # Errors
    ///
    /// Fails with [`Error::Decode`] when the value is not an integer, and
    /// with [`Error::Encode`] on overflow; the value is then unchanged.
    ///
    /// The errors of any write ([the crate's errors](crate#errors)):
    /// [`Error::Timeout`] when the write lock stays taken past the timeout,
    /// [`Error::InvalidUse`] on a read-only handle.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::Cache::open(dir.path())?;
    /// assert_eq!(cache.incr("hits", 1, 0)?, 1); // absent: starts at the default
    /// assert_eq!(cache.incr("hits", 5, 0)?, 6);
    /// cache.set("name", "x")?;
    /// assert!(cache.incr("name", 1, 0).unwrap_err().is_decode());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn incr(&self, key: impl Into<Key>, delta: i64, default: i64) -> Result<i64> {
        let key = Self::key(key)?;
        let policy = self.inner.store.settings.eviction_policy;
        self.inner.store.write(false, None, |s| {
            let now = self.now();
            let overflow = || Error::encode(format!("incrementing key {key} by {delta} overflows i64"));
            match s.find_any(&key)? {
                Some(old) if is_live(old.expire_time, now) => {
                    let current = match (old.mode, &old.value) {
                        (MODE_RAW, Scalar::Int(n)) => *n,
                        _ => {
                            return Err(Error::decode(&key, "i64", "incr needs an integer value", None));
                        }
                    };
                    let value = current.checked_add(delta).ok_or_else(overflow)?;
                    s.incr_update(old.rowid, now, value, policy)?;
                    Ok(value)
                }
                found => {
                    let value = default.checked_add(delta).ok_or_else(overflow)?;
                    let scalar = Scalar::Int(value);
                    let row = crate::store::NewRow {
                        expire_time: None,
                        tag: None,
                        size: 0,
                        mode: MODE_RAW,
                        filename: None,
                        value: &scalar,
                    };
                    match found {
                        Some(old) => {
                            s.update_row(old.rowid, now, &row)?;
                            s.remove_after_commit(old.filename);
                        }
                        None => s.insert_row(&key, now, &row)?,
                    }
                    self.cull_after_write(s, now)?;
                    Ok(value)
                }
            }
        })
    }

    /// Subtracts `delta`: [`Cache::incr`] with `-delta`.
    ///
    /// # Errors
    ///
    /// As [`Cache::incr`]: [`Error::Decode`] for a value that is not an
    /// integer, [`Error::Encode`] on overflow (and for a `delta` of `i64::MIN`,
    /// which cannot be negated). The errors of any write ([the crate's
    /// errors](crate#errors)): [`Error::Timeout`] when the write lock stays
    /// taken past the timeout, [`Error::InvalidUse`] on a read-only handle.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::Cache::open(dir.path())?;
    /// assert_eq!(cache.decr("stock", 1, 10)?, 9);
    /// assert_eq!(cache.decr("stock", 4, 10)?, 5);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn decr(&self, key: impl Into<Key>, delta: i64, default: i64) -> Result<i64> {
        let negated = delta
            .checked_neg()
            .ok_or_else(|| Error::encode(format!("cannot negate the delta {delta}")))?;
        self.incr(key, negated, default)
    }

    /// Deletes `key`; true if it had a live value. Atomic.
    ///
    /// # Errors
    ///
    /// The errors of any write ([the crate's errors](crate#errors)):
    /// [`Error::Timeout`] when the write lock stays taken past the timeout,
    /// [`Error::InvalidUse`] on a read-only handle. An absent key is not an
    /// error (`Ok(false)`).
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::Cache::open(dir.path())?;
    /// cache.set("k", &1)?;
    /// assert!(cache.delete("k")?);
    /// assert!(!cache.delete("k")?, "already gone");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn delete(&self, key: impl Into<Key>) -> Result<bool> {
        let key = Self::key(key)?;
        self.inner.store.write_freeing(|s| s.delete_live(&key, self.now()))
    }

    /// Removes `key` and returns its value. Atomic: of concurrent pops of one
    /// key, one gets the value. The value file is read before the removal
    /// commits, so the value cannot be lost in between, and a value that does
    /// not decode as `V` stays in the cache.
    ///
    /// # Errors
    ///
    /// [`Error::Decode`] (naming the key and `V`) when the stored value does
    /// not decode as `V`, and [`Error::Pickled`] for a Python pickle (the item
    /// then stays); the errors of any write ([the crate's
    /// errors](crate#errors)): [`Error::Timeout`] when the write lock stays
    /// taken past the timeout, [`Error::InvalidUse`] on a read-only handle.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::Cache::open(dir.path())?;
    /// cache.set("job", "resize 7.png")?;
    /// assert_eq!(cache.pop::<String>("job")?.as_deref(), Some("resize 7.png"));
    /// assert_eq!(cache.pop::<String>("job")?, None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn pop<V: DeserializeOwned>(&self, key: impl Into<Key>) -> Result<Option<V>> {
        let key = Self::key(key)?;
        // Decoding inside the transaction: a value of the wrong type stays.
        self.inner.store.write_freeing(|s| match s.pop_live(&key, self.now())? {
            Some(mut row) => self
                .load(&mut row)
                .map_err(|e| of_key(e, &key))?
                .map(|st| codec::decode(st, &key))
                .transpose(),
            None => Ok(None),
        })
    }

    /// True when `key` has a live value.
    ///
    /// # Errors
    ///
    /// Only the storage errors of a read ([the crate's errors](crate#errors)).
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::Cache::open(dir.path())?;
    /// cache.set(7, "seven")?;
    /// assert!(cache.contains_key(7)?);
    /// assert!(cache.contains_key(7.0)?, "1 and 1.0 name the same row, as in Python");
    /// assert!(!cache.contains_key("7")?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn contains_key(&self, key: impl Into<Key>) -> Result<bool> {
        let key = Self::key(key)?;
        self.inner.store.read(|s| s.contains_live(&key, self.now()))
    }

    /// Gives a live `key` a new expiry (`None`: never); true if it was live.
    ///
    /// # Errors
    ///
    /// The errors of any write ([the crate's errors](crate#errors)):
    /// [`Error::Timeout`] when the write lock stays taken past the timeout,
    /// [`Error::InvalidUse`] on a read-only handle.
    ///
    /// ```
    /// use std::time::Duration;
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::Cache::open(dir.path())?;
    /// cache.set_with("session", &1, &diskq::SetOptions::new().expire(Duration::from_secs(60)))?;
    /// assert!(cache.touch("session", None)?); // now it never expires
    /// assert_eq!(cache.get_entry::<i64>("session")?.expect("live").expire_time, None);
    /// assert!(!cache.touch("missing", None)?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn touch(&self, key: impl Into<Key>, expire: Option<Duration>) -> Result<bool> {
        let key = Self::key(key)?;
        self.inner.store.write(false, None, |s| {
            let now = self.now();
            s.touch_live(&key, now, Self::expire_time(now, expire))
        })
    }

    /// Runs `f` in one immediate transaction: the operations it calls on this
    /// cache (and its clones) from this thread are atomic together, across
    /// threads and processes. An `Err` from `f` rolls everything back
    /// (removing value files the block wrote). Nested calls are savepoints.
    ///
    /// Keep the block short: other writers wait while it runs. Readers do not.
    ///
    /// # Errors
    ///
    /// Whatever `f` returns as its `Err`, after the rollback.
    /// [`Error::Timeout`] when the transaction cannot begin within the cache's
    /// timeout, and [`Error::InvalidUse`] on a read-only handle, both converted
    /// into `E`; a failed commit is returned the same way ([the crate's
    /// errors](crate#errors)).
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::Cache::open(dir.path())?;
    /// cache.transact(|c| {
    ///     c.incr("total", 120, 0)?;
    ///     c.incr("count", 1, 0)?;
    ///     Ok::<_, diskq::Error>(())
    /// })?;
    /// let average = cache.transact(|c| {
    ///     let total: i64 = c.get("total")?.unwrap_or(0);
    ///     let count: i64 = c.get("count")?.unwrap_or(1);
    ///     Ok::<_, diskq::Error>(total / count)
    /// })?;
    /// assert_eq!(average, 120);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn transact<T, E: From<Error>>(&self, f: impl FnOnce(&Cache) -> Result<T, E>) -> Result<T, E> {
        self.transact_with(false, f)
    }

    /// [`Cache::transact`], retrying the `BEGIN` on lock timeouts when `retry`.
    ///
    /// # Errors
    ///
    /// As [`Cache::transact`]; with `retry`, a lock timeout at `BEGIN` is
    /// retried instead of returned.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::Cache::open(dir.path())?;
    /// // retry: wait out lock timeouts at BEGIN instead of failing.
    /// let n = cache.transact_with(true, |c| {
    ///     c.incr("a", 1, 0)?;
    ///     c.incr("b", 1, 0)
    /// })?;
    /// assert_eq!(n, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn transact_with<T, E: From<Error>>(
        &self,
        retry: bool,
        f: impl FnOnce(&Cache) -> Result<T, E>,
    ) -> Result<T, E> {
        self.transact_until(retry, None, f)
    }

    /// [`Cache::transact`], waiting for the write lock for at most `wait`
    /// (then [`Error::Timeout`]), whatever the cache's timeout: for a caller
    /// with a deadline of its own. A `wait` too long for the clock is the
    /// cache's timeout.
    ///
    /// # Errors
    ///
    /// As [`Cache::transact`], with [`Error::Timeout`] once `wait` is over.
    ///
    /// ```
    /// use std::time::Duration;
    /// use diskq::Cache;
    /// let dir = tempfile::tempdir()?;
    /// let cache = Cache::open(dir.path())?;
    /// let n = cache.transact_timeout(Duration::from_millis(200), |c| c.incr("runs", 1, 0))?;
    /// assert_eq!(n, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn transact_timeout<T, E: From<Error>>(
        &self,
        wait: Duration,
        f: impl FnOnce(&Cache) -> Result<T, E>,
    ) -> Result<T, E> {
        self.transact_until(false, Some(crate::deadline::from_now(wait)), f)
    }

    fn transact_until<T, E: From<Error>>(
        &self,
        retry: bool,
        deadline: Option<std::time::Instant>,
        f: impl FnOnce(&Cache) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut failure = None;
        let result = self.inner.store.transact_by(retry, deadline, || match f(self) {
            Ok(v) => Ok(v),
            Err(e) => {
                failure = Some(e);
                Err(Error::InvalidUse("the transaction's closure failed".into()))
            }
        });
        result.map_err(|e| failure.take().unwrap_or_else(|| E::from(e)))
    }
}

pub(crate) fn is_live(expire_time: Option<f64>, now: f64) -> bool {
    expire_time.is_none_or(|t| t > now)
}

pub(crate) fn new_row<'a>(p: &'a Prepared, expire_time: Option<f64>, tag: Option<&'a str>) -> crate::store::NewRow<'a> {
    crate::store::NewRow {
        expire_time,
        tag,
        size: p.size,
        mode: p.mode,
        filename: p.filename.as_deref(),
        value: &p.value,
    }
}

fn wrong_kind(key: &Key, wanted: &'static str, found: &Stored) -> Error {
    if matches!(found, Stored::Pickle) {
        return Error::Pickled { key: key.to_string() };
    }
    let kind = match found {
        Stored::Native(Native::Int(_)) => "an integer",
        Stored::Native(Native::Float(_)) => "a float",
        Stored::Native(Native::Text(_)) => "text",
        Stored::Native(Native::Bytes(_)) => "bytes",
        Stored::MsgPack(_) => "a MessagePack value",
        Stored::Pickle => "a pickle",
    };
    Error::decode(key, wanted, format!("the stored value is {kind}"), None)
}

/// A reader over a stored bytes or text value, from [`Cache::read`].
///
/// ```
/// use std::io::Read;
/// let dir = tempfile::tempdir()?;
/// let cache = diskq::Cache::open(dir.path())?;
/// cache.set("greeting", "hello")?;
/// let mut reader: diskq::ValueReader = cache.read("greeting")?.expect("set");
/// assert_eq!(reader.len(), 5);
/// let mut text = String::new();
/// reader.read_to_string(&mut text)?;
/// assert_eq!(text, "hello");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct ValueReader {
    inner: ReaderInner,
    path: Option<PathBuf>,
    len: u64,
}

#[derive(Debug)]
enum ReaderInner {
    Memory(Cursor<Vec<u8>>),
    File(std::io::Take<File>),
}

impl ValueReader {
    fn memory(bytes: Vec<u8>) -> ValueReader {
        ValueReader {
            len: bytes.len() as u64,
            inner: ReaderInner::Memory(Cursor::new(bytes)),
            path: None,
        }
    }

    /// The value file's path, for a value stored in its own file.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::Cache::builder().min_file_size(4).open(dir.path())?;
    /// cache.set_bytes("big", b"0123456789")?;
    /// let reader = cache.read("big")?.expect("set");
    /// let path = reader.path().expect("stored in its own file");
    /// assert_eq!(std::fs::read(path)?, b"0123456789");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The value's length in bytes.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::Cache::open(dir.path())?;
    /// cache.set_bytes("k", b"abc")?;
    /// assert_eq!(cache.read("k")?.expect("set").len(), 3);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True for an empty value.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::Cache::open(dir.path())?;
    /// cache.set_bytes("empty", b"")?;
    /// assert!(cache.read("empty")?.expect("set").is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Read for ValueReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match &mut self.inner {
            ReaderInner::Memory(c) => c.read(buf),
            ReaderInner::File(f) => f.read(buf),
        }
    }
}

/// Names `key` in a [`Error::Corrupt`] about its value (a value file of the
/// wrong length, say), so the user knows which key to delete.
fn of_key(e: Error, key: &Key) -> Error {
    match e {
        Error::Corrupt(message) => Error::Corrupt(format!("key {key}: {message}")),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_is_clone_send_sync() {
        fn assert_traits<T: Clone + Send + Sync + 'static>() {}
        assert_traits::<Cache>();
    }

    #[test]
    fn expiry_follows_the_clock() {
        use std::sync::atomic::{AtomicU64, Ordering};
        let now = Arc::new(AtomicU64::new(1000f64.to_bits()));
        let clock = now.clone();
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::builder()
            .clock(move || UNIX_EPOCH + Duration::from_secs_f64(f64::from_bits(clock.load(Ordering::SeqCst))))
            .open(dir.path())
            .unwrap();
        cache
            .set_with("k", &1, &SetOptions::new().expire(Duration::from_secs(10)))
            .unwrap();
        assert_eq!(cache.get::<i64>("k").unwrap(), Some(1));
        now.store(1010.5f64.to_bits(), Ordering::SeqCst);
        assert_eq!(cache.get::<i64>("k").unwrap(), None);
        assert_eq!(cache.len().unwrap(), 0);
        assert_eq!(cache.expire().unwrap(), 1);
    }
}
