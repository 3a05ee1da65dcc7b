//! `FanoutCache`: keys spread over N `Cache` shards by python-diskcache's
//! hash, with a short lock timeout that turns a busy shard into a miss
//! instead of a wait; and its named sub-collections.

use std::collections::HashMap;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::cache::{Cache, CacheBuilder, ValueReader};
use crate::error::{Error, Result};
use crate::key::Key;
use crate::options::{Entry, SetOptions};
use crate::settings::EvictionPolicy;

mod bulk;
mod named;
mod shards;

pub use bulk::Keys;

/// The default number of shards (python-diskcache's).
///
/// ```
/// let dir = tempfile::tempdir()?;
/// let cache = diskq::FanoutCache::open(dir.path())?;
/// assert_eq!(cache.shards().len(), diskq::fanout::DEFAULT_SHARDS);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub const DEFAULT_SHARDS: usize = 8;
/// The default lock timeout of each shard (python-diskcache's 10 ms).
///
/// ```
/// use std::time::Duration;
/// let dir = tempfile::tempdir()?;
/// let cache = diskq::FanoutCache::open(dir.path())?;
/// assert_eq!(cache.timeout(), diskq::fanout::DEFAULT_TIMEOUT);
/// assert_eq!(diskq::fanout::DEFAULT_TIMEOUT, Duration::from_millis(10));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(10);
/// The default size limit of the whole cache; each shard gets its share.
const DEFAULT_SIZE_LIMIT: u64 = 1 << 30;
/// How long opening waits for shards that other processes are creating
/// (python-diskcache retries its set-up statements for 60 s).
const OPEN_PATIENCE: Duration = Duration::from_secs(60);
/// The timeout of the shard handles used by operations python-diskcache
/// runs with `retry=True` (`read`, `memoize`).
const PATIENT_TIMEOUT: Duration = Duration::from_secs(60);

/// The shard of `key` among `shards`: python-diskcache's `Disk.hash(key) % shards`.
///
/// - integer: `n mod 0xFFFFFFFF`, non-negative as Python's `%` (so `-1` hashes to `0xFFFFFFFE`);
/// - float: adler32 of the 8 big-endian bytes of the `f64` (`struct.pack('!d', x)`);
/// - text: adler32 of the UTF-8 bytes;
/// - bytes: adler32 of the bytes;
/// - [`Key::Encoded`]: adler32 of the MessagePack bytes (Python would hash
///   its pickle, which diskq never writes, so these keys are diskq's own).
fn shard_of(key: &Key, shards: usize) -> usize {
    let hash = match key {
        Key::Int(n) => {
            // rem_euclid keeps the result in 0..0xFFFFFFFF, as Python's `%` does.
            let h = n.rem_euclid(0xFFFF_FFFF);
            u32::try_from(h).expect("a remainder modulo 0xFFFFFFFF fits in u32")
        }
        Key::Float(x) => adler2::adler32_slice(&x.to_be_bytes()),
        Key::Text(s) => adler2::adler32_slice(s.as_bytes()),
        Key::Bytes(b) | Key::Encoded(b) => adler2::adler32_slice(b),
    };
    (hash as usize) % shards
}

/// The index of the shard that holds `key` in a fanout cache of `shards`
/// shards (see [`FanoutCache`] for the rule), without opening it: for a
/// tool that opens the shards itself. `shards` of 0 counts as 1.
///
/// ```
/// let dir = tempfile::tempdir()?;
/// let cache = diskq::FanoutCache::open(dir.path())?;
/// for key in [diskq::Key::from("hello"), diskq::Key::Int(-1)] {
///     assert_eq!(diskq::fanout::shard_index(key.clone(), 8), cache.shard_index(key));
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn shard_index(key: impl Into<Key>, shards: usize) -> usize {
    shard_of(&key.into(), shards.max(1))
}

/// Opens a [`FanoutCache`] with options.
///
/// The shard count is recorded in the directory (a file `diskq-fanout`,
/// which python-diskcache ignores) when it is first opened, and reopening
/// with another count fails with [`Error::InvalidSetting`] named `shards`
/// instead of looking keys up in the wrong shard. A directory without the
/// record (made by python-diskcache) is counted by its shard folders `000`,
/// `001`, ... instead, and the record written. `timeout` belongs to the
/// handle and is not stored. The [`Cache`] options are passed to every shard, except
/// `size_limit`, which is split evenly between them, as python-diskcache
/// splits it.
///
/// ```
/// use std::time::Duration;
/// use diskq::FanoutCache;
///
/// let dir = tempfile::tempdir()?;
/// let cache = FanoutCache::builder()
///     .shards(4)
///     .timeout(Duration::from_millis(50))
///     .size_limit(256 << 20)
///     .open(dir.path())?;
/// assert_eq!(cache.shards().len(), 4);
/// assert_eq!(cache.shards()[0].size_limit(), 64 << 20);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct FanoutCacheBuilder {
    shards: usize,
    timeout: Duration,
    size_limit: u64,
    cache: CacheBuilder,
}

impl Default for FanoutCacheBuilder {
    fn default() -> Self {
        FanoutCacheBuilder {
            shards: DEFAULT_SHARDS,
            timeout: DEFAULT_TIMEOUT,
            size_limit: DEFAULT_SIZE_LIMIT,
            cache: CacheBuilder::default(),
        }
    }
}

impl FanoutCacheBuilder {
    /// The number of shards (default 8; at least 1).
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::FanoutCache::builder().shards(3).open(dir.path())?;
    /// assert_eq!(cache.shards().len(), 3);
    /// assert!(dir.path().join("002").is_dir());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn shards(mut self, shards: usize) -> Self {
        self.shards = shards;
        self
    }

    /// How long an operation waits for a shard locked by another connection
    /// before it gives up (default 10 ms): a `get` then misses, a `set`
    /// returns `false`, and the timeout is counted in [`FanoutStats::timeouts`].
    ///
    /// ```
    /// use std::time::Duration;
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::FanoutCache::builder().shards(1).timeout(Duration::from_millis(20)).open(dir.path())?;
    /// // While the only shard is locked by a transaction, another thread's set
    /// // gives up after 20 ms and says so with `false`.
    /// cache.shards()[0].transact(|_| {
    ///     let other = cache.clone();
    ///     let stored = std::thread::spawn(move || other.set("k", &1)).join().expect("no panic");
    ///     assert!(!stored.expect("a timeout is not an error"));
    ///     Ok::<_, diskq::Error>(())
    /// })?;
    /// assert_eq!(cache.stats()?.timeouts, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The soft size limit of the whole cache in bytes (default 1 GiB); each
    /// shard gets `size_limit / shards`. Always applied to every shard, as
    /// python-diskcache does, so it replaces the stored limit on each open.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::FanoutCache::builder().shards(4).size_limit(4 << 20).open(dir.path())?;
    /// assert!(cache.shards().iter().all(|s| s.size_limit() == 1 << 20), "a quarter each");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn size_limit(mut self, bytes: u64) -> Self {
        self.size_limit = bytes;
        self
    }

    /// [`CacheBuilder::cull_limit`] of every shard.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::FanoutCache::builder().cull_limit(0).open(dir.path())?;
    /// assert!(cache.shards().iter().all(|s| s.cull_limit() == 0));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn cull_limit(mut self, items: u64) -> Self {
        self.cache = self.cache.cull_limit(items);
        self
    }

    /// [`CacheBuilder::eviction_policy`] of every shard.
    ///
    /// ```
    /// use diskq::EvictionPolicy;
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::FanoutCache::builder().eviction_policy(EvictionPolicy::None).open(dir.path())?;
    /// assert!(cache.shards().iter().all(|s| s.eviction_policy() == EvictionPolicy::None));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn eviction_policy(mut self, policy: EvictionPolicy) -> Self {
        self.cache = self.cache.eviction_policy(policy);
        self
    }

    /// [`CacheBuilder::statistics`] of every shard.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::FanoutCache::builder().statistics(true).open(dir.path())?;
    /// cache.get::<i64>("missing")?;
    /// assert_eq!(cache.stats()?.misses, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn statistics(mut self, on: bool) -> Self {
        self.cache = self.cache.statistics(on);
        self
    }

    /// [`CacheBuilder::tag_index`] of every shard.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::FanoutCache::builder().tag_index(true).open(dir.path())?;
    /// assert!(cache.shards().iter().all(|s| s.tag_index()));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn tag_index(mut self, on: bool) -> Self {
        self.cache = self.cache.tag_index(on);
        self
    }

    /// [`CacheBuilder::min_file_size`] of every shard.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::FanoutCache::builder().min_file_size(4).open(dir.path())?;
    /// cache.set_bytes("big", b"0123456789")?;
    /// assert!(cache.read("big")?.expect("set").path().is_some(), "in its own file");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn min_file_size(mut self, bytes: u64) -> Self {
        self.cache = self.cache.min_file_size(bytes);
        self
    }

    /// [`CacheBuilder::sqlite_cache_size`] of every shard.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::FanoutCache::builder().sqlite_cache_size(512).open(dir.path())?;
    /// let setting = ("sqlite_cache_size".to_string(), "512".to_string());
    /// assert!(cache.shards().iter().all(|s| s.settings().contains(&setting)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn sqlite_cache_size(mut self, pages: i64) -> Self {
        self.cache = self.cache.sqlite_cache_size(pages);
        self
    }

    /// [`CacheBuilder::sqlite_mmap_size`] of every shard.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::FanoutCache::builder().sqlite_mmap_size(0).open(dir.path())?;
    /// let setting = ("sqlite_mmap_size".to_string(), "0".to_string());
    /// assert!(cache.shards().iter().all(|s| s.settings().contains(&setting)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn sqlite_mmap_size(mut self, bytes: i64) -> Self {
        self.cache = self.cache.sqlite_mmap_size(bytes);
        self
    }

    /// [`CacheBuilder::sqlite_synchronous`] of every shard.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::FanoutCache::builder()
    ///     .sqlite_synchronous(diskq::Synchronous::Full)
    ///     .open(dir.path())?;
    /// let setting = ("sqlite_synchronous".to_string(), "2".to_string());
    /// assert!(cache.shards().iter().all(|s| s.settings().contains(&setting)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn sqlite_synchronous(mut self, level: crate::Synchronous) -> Self {
        self.cache = self.cache.sqlite_synchronous(level);
        self
    }

    /// [`CacheBuilder::sqlite_journal_mode`] of every shard.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::FanoutCache::builder().sqlite_journal_mode("wal").open(dir.path())?;
    /// let setting = ("sqlite_journal_mode".to_string(), "wal".to_string());
    /// assert!(cache.shards().iter().all(|s| s.settings().contains(&setting)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn sqlite_journal_mode(mut self, mode: impl Into<String>) -> Self {
        self.cache = self.cache.sqlite_journal_mode(mode);
        self
    }

    /// [`CacheBuilder::sync_files`] of every shard.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::FanoutCache::builder().sync_files(false).open(dir.path())?;
    /// assert!(cache.set_bytes("blob", &[7; 100_000])?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn sync_files(mut self, on: bool) -> Self {
        self.cache = self.cache.sync_files(on);
        self
    }

    /// [`CacheBuilder::clock`] of every shard (for tests that drive expiry).
    ///
    /// ```
    /// use std::time::{Duration, SystemTime};
    /// let dir = tempfile::tempdir()?;
    /// let an_hour_ago = SystemTime::now() - Duration::from_secs(3600);
    /// let past = diskq::FanoutCache::builder().clock(move || an_hour_ago).open(dir.path())?;
    /// past.set_with("k", &1, &diskq::SetOptions::new().expire(Duration::from_secs(60)))?;
    /// // Stored an hour ago for a minute: expired for a handle on the real clock.
    /// assert_eq!(diskq::FanoutCache::open(dir.path())?.get::<i64>("k")?, None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn clock(mut self, clock: impl Fn() -> std::time::SystemTime + Send + Sync + 'static) -> Self {
        self.cache = self.cache.clock(clock);
        self
    }

    /// Opens (creating if needed) the fanout cache in `dir`: shards in
    /// `dir/000`, `dir/001`, ...
    ///
    /// # Errors
    ///
    /// Shards that another process is creating at the same moment are waited
    /// for (up to 60 s), whatever the timeout. Fails with
    /// [`Error::InvalidSetting`] for zero shards or a shard count other than
    /// the directory's, [`Error::NotADirectory`] when `dir` is a file, and as
    /// [`Cache::open`] fails for a shard.
    ///
    /// Also [`Error::Corrupt`] when a shard folder is a symbolic link or the
    /// recorded shard count cannot be read, and [`Error::Timeout`] when shards
    /// another process is making are not ready within 60 s.
    ///
    /// ```
    /// use diskq::{Error, FanoutCache};
    ///
    /// let dir = tempfile::tempdir()?;
    /// FanoutCache::builder().shards(4).open(dir.path())?;
    /// match FanoutCache::builder().shards(8).open(dir.path()) {
    ///     Err(Error::InvalidSetting { name, .. }) => assert_eq!(name, "shards"),
    ///     other => panic!("expected a refusal, got {other:?}"),
    /// }
    /// assert_eq!(FanoutCache::builder().shards(4).open(dir.path())?.shards().len(), 4);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open(self, dir: impl AsRef<Path>) -> Result<FanoutCache> {
        let dir = dir.as_ref();
        if self.shards == 0 {
            return Err(Error::setting("shards", "a fanout cache needs at least one shard"));
        }
        if dir.exists() && !dir.is_dir() {
            return Err(Error::NotADirectory(dir.to_path_buf()));
        }
        shards::settle(dir, self.shards)?;
        let builder = self
            .cache
            .timeout(self.timeout)
            .size_limit(self.size_limit / self.shards as u64);
        let shards = (0..self.shards)
            .map(|i| open_patiently(&builder, dir, &dir.join(format!("{i:03}"))))
            .collect::<Result<Vec<_>>>()?;
        let dir = std::fs::canonicalize(dir).map_err(|e| Error::io(dir, e))?;
        Ok(FanoutCache {
            inner: Arc::new(Inner {
                dir,
                patient: shards.iter().map(|_| OnceLock::new()).collect(),
                shards,
                builder,
                timeout: self.timeout,
                timeouts: AtomicU64::new(0),
                named: Mutex::new(HashMap::new()),
            }),
        })
    }
}

/// Refuses a symbolic link at `dir` or at any folder between `root` and it:
/// a shard or named folder linked elsewhere would put a database anywhere
/// on the system.
fn no_links_below(root: &Path, dir: &Path) -> Result<()> {
    let Ok(relative) = dir.strip_prefix(root) else {
        return Ok(());
    };
    let mut at = root.to_path_buf();
    for part in relative.components() {
        at.push(part);
        match std::fs::symlink_metadata(&at) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(Error::Corrupt(format!(
                    "{} is a symbolic link; diskq does not follow links in its directory",
                    at.display()
                )));
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(Error::io(&at, e)),
        }
    }
    Ok(())
}

/// Opens a cache in `dir` (below the fanout root `root`), retrying while
/// another process holds the set-up lock.
fn open_patiently(builder: &CacheBuilder, root: &Path, dir: &Path) -> Result<Cache> {
    no_links_below(root, dir)?;
    let start = Instant::now();
    loop {
        match builder.clone().open(dir) {
            Err(e) if e.is_timeout() && start.elapsed() < OPEN_PATIENCE => {
                std::thread::sleep(Duration::from_millis(1));
            }
            other => return other,
        }
    }
}

/// A cache spread over several [`Cache`] shards, each in its own directory
/// with its own lock (python-diskcache's `FanoutCache`, on the same format:
/// a Python `FanoutCache` with as many shards finds every key diskq wrote,
/// and the other way round).
///
/// Writers of different shards do not wait for each other. Each shard has a
/// short lock timeout (default 10 ms) and no operation on one key returns
/// [`Error::Timeout`]: when its shard stays locked past the timeout, `get`
/// misses, `set`, `add`, `delete` and `touch` return `false`, `incr` returns
/// `None`, and the timeout is counted in [`FanoutStats::timeouts`]. Other
/// errors (a value that does not decode, an I/O error) are returned as they are.
///
/// A key's shard is python-diskcache's `Disk.hash(key) % shards` (adler32 of
/// text, bytes and float keys, the integer modulo `0xFFFFFFFF` for integer
/// keys), so `1` and `1.0`, which name one row in a [`Cache`], may live in
/// different shards here, as in Python.
///
/// ```
/// use diskq::FanoutCache;
///
/// let dir = tempfile::tempdir()?;
/// let cache = FanoutCache::open(dir.path())?;
/// assert!(cache.set("user:7", "Ada")?);
/// assert_eq!(cache.get::<String>("user:7")?.as_deref(), Some("Ada"));
/// assert_eq!(cache.incr("visits", 1, 0)?, Some(1));
/// assert_eq!(cache.len()?, 2);
/// // Named collections live beside the shards.
/// let jobs = cache.deque::<String>("jobs")?;
/// jobs.push_back("crawl /")?;
/// assert_eq!(jobs.pop_front()?.as_deref(), Some("crawl /"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct FanoutCache {
    inner: Arc<Inner>,
}

struct Inner {
    dir: PathBuf,
    shards: Vec<Cache>,
    /// Long-timeout handles on the shards, opened on first use.
    patient: Vec<OnceLock<Cache>>,
    /// The builder of the shards (for their patient handles).
    builder: CacheBuilder,
    timeout: Duration,
    timeouts: AtomicU64,
    /// Named sub-collections opened so far, by directory.
    named: Mutex<HashMap<PathBuf, Cache>>,
}

impl fmt::Debug for FanoutCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FanoutCache")
            .field("directory", &self.inner.dir)
            .field("shards", &self.inner.shards.len())
            .field("timeout", &self.inner.timeout)
            .finish()
    }
}

/// Hit, miss and timeout counts of a [`FanoutCache`], from [`FanoutCache::stats`].
///
/// ```
/// let dir = tempfile::tempdir()?;
/// let cache = diskq::FanoutCache::builder().statistics(true).open(dir.path())?;
/// cache.set("a", &1)?;
/// cache.get::<i64>("a")?;
/// cache.get::<i64>("b")?;
/// let stats: diskq::fanout::FanoutStats = cache.stats()?;
/// assert_eq!((stats.hits, stats.misses, stats.culled, stats.timeouts), (1, 1, 0, 0));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FanoutStats {
    /// Gets that found a live item, summed over the shards (counted while
    /// statistics are enabled; stored in the shards, shared by processes).
    pub hits: u64,
    /// Gets that found nothing, summed over the shards (as `hits`).
    pub misses: u64,
    /// Live items culled for the size limit, summed over the shards
    /// (always counted; see [`Stats::culled`](crate::Stats::culled)).
    pub culled: u64,
    /// Operations of this handle (and its clones) that found their shard
    /// locked past the timeout, since it was opened or
    /// [`FanoutCache::reset_stats`]. Kept in memory, always counted.
    pub timeouts: u64,
}

impl FanoutCache {
    /// Opens (creating if needed) the fanout cache in `dir` with 8 shards and
    /// a 10 ms timeout.
    ///
    /// # Errors
    ///
    /// As [`FanoutCacheBuilder::open`]: [`Error::InvalidSetting`] when the
    /// directory has another shard count than 8, [`Error::NotADirectory`] when
    /// `dir` is a file, and the errors of [`Cache::open`] for a shard.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::FanoutCache::open(dir.path())?;
    /// assert!(cache.set("k", &1)?);
    /// assert!(dir.path().join("000").is_dir() && dir.path().join("007").is_dir());
    /// assert_eq!(diskq::FanoutCache::open(dir.path())?.get::<i64>("k")?, Some(1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open(dir: impl AsRef<Path>) -> Result<FanoutCache> {
        FanoutCache::builder().open(dir)
    }

    /// A builder for opening with options.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::FanoutCache::builder().shards(2).open(dir.path())?;
    /// assert_eq!(cache.shards().len(), 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn builder() -> FanoutCacheBuilder {
        FanoutCacheBuilder::default()
    }

    /// The directory holding the shards, as an absolute path.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::FanoutCache::open(dir.path())?;
    /// assert_eq!(cache.directory(), dir.path().canonicalize()?);
    /// assert_eq!(cache.shards()[1].directory(), cache.directory().join("001"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn directory(&self) -> &Path {
        &self.inner.dir
    }

    /// The lock timeout of each shard.
    ///
    /// ```
    /// use std::time::Duration;
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::FanoutCache::builder().timeout(Duration::from_millis(50)).open(dir.path())?;
    /// assert_eq!(cache.timeout(), Duration::from_millis(50));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn timeout(&self) -> Duration {
        self.inner.timeout
    }

    /// The shards, in order (`000`, `001`, ...). For reading their settings
    /// or statistics; writing a key into another shard than
    /// [`FanoutCache::shard_index`] names hides it from the fanout cache.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::FanoutCache::open(dir.path())?;
    /// cache.set("k", &1)?;
    /// let shard = &cache.shards()[cache.shard_index("k")];
    /// assert_eq!(shard.get::<i64>("k")?, Some(1));
    /// assert_eq!(cache.shards().iter().map(|s| s.len()).sum::<Result<usize, _>>()?, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn shards(&self) -> &[Cache] {
        &self.inner.shards
    }

    /// The index of the shard that holds `key` (see [`FanoutCache`] for the rule).
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::FanoutCache::open(dir.path())?;
    /// assert_eq!(cache.shard_index(7), 7);
    /// assert_eq!(cache.shard_index(-1), 6); // 0xFFFFFFFE % 8, as in Python
    /// assert_eq!(cache.shard_index("hello"), 5); // zlib.adler32(b"hello") % 8
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn shard_index(&self, key: impl Into<Key>) -> usize {
        shard_of(&key.into(), self.inner.shards.len())
    }

    fn route(&self, key: impl Into<Key>) -> (Key, &Cache) {
        let key = key.into();
        let shard = &self.inner.shards[shard_of(&key, self.inner.shards.len())];
        (key, shard)
    }

    /// A shard handle with a long timeout, for operations that wait.
    fn patient(&self, key: &Key) -> Result<&Cache> {
        let i = shard_of(key, self.inner.shards.len());
        let cell = &self.inner.patient[i];
        if let Some(cache) = cell.get() {
            return Ok(cache);
        }
        let dir = self.inner.shards[i].directory();
        let opened = open_patiently(
            &self.inner.builder.clone().timeout(PATIENT_TIMEOUT),
            &self.inner.dir,
            dir,
        )?;
        Ok(cell.get_or_init(|| opened))
    }

    fn count_timeout(&self) {
        self.inner.timeouts.fetch_add(1, Ordering::Relaxed);
    }

    /// A timeout becomes `fallback` (and is counted); other results pass.
    fn absorb<T>(&self, result: Result<T>, fallback: T) -> Result<T> {
        match result {
            Err(Error::Timeout) => {
                self.count_timeout();
                Ok(fallback)
            }
            other => other,
        }
    }

    /// Runs `op` until it does not time out, counting each timeout.
    fn until_done<T>(&self, mut op: impl FnMut() -> Result<T>) -> Result<T> {
        loop {
            match op() {
                Err(Error::Timeout) => self.count_timeout(),
                other => return other,
            }
        }
    }

    /// The value of `key` decoded as `V`; `None` when absent, expired, or
    /// its shard stayed locked past the timeout ([`Cache::get`]).
    ///
    /// A shard is locked for a get only when the get writes: with statistics
    /// on, or under the least-recently-used and least-frequently-used
    /// policies. Otherwise gets never wait for writers.
    ///
    /// # Errors
    ///
    /// [`Error::Decode`] or [`Error::Pickled`], naming the key, when the value
    /// does not decode as `V`; the storage errors of a read ([the crate's
    /// errors](crate#errors)). A shard timeout is not an error (a miss).
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::FanoutCache::open(dir.path())?;
    /// cache.set("page:/", "<html>")?;
    /// assert_eq!(cache.get::<String>("page:/")?.as_deref(), Some("<html>"));
    /// assert_eq!(cache.get::<String>("page:/missing")?, None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get<V: DeserializeOwned>(&self, key: impl Into<Key>) -> Result<Option<V>> {
        let (key, shard) = self.route(key);
        self.absorb(shard.get(key), None)
    }

    /// The value of `key` with its expiry time and tag ([`Cache::get_entry`]);
    /// `None` as for [`FanoutCache::get`].
    ///
    /// # Errors
    ///
    /// As [`FanoutCache::get`].
    ///
    /// ```
    /// use std::time::Duration;
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::FanoutCache::open(dir.path())?;
    /// cache.set_with("k", &1, &diskq::SetOptions::new().tag("t").expire(Duration::from_secs(60)))?;
    /// let entry = cache.get_entry::<i64>("k")?.expect("live");
    /// assert_eq!((entry.value, entry.tag.as_deref()), (1, Some("t")));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get_entry<V: DeserializeOwned>(&self, key: impl Into<Key>) -> Result<Option<Entry<V>>> {
        let (key, shard) = self.route(key);
        self.absorb(shard.get_entry(key), None)
    }

    /// The raw bytes of a bytes value ([`Cache::get_bytes`]); `None` as for
    /// [`FanoutCache::get`].
    ///
    /// # Errors
    ///
    /// [`Error::Decode`] when the value is not bytes, [`Error::Pickled`] for a
    /// pickle; the storage errors of a read ([the crate's
    /// errors](crate#errors)).
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::FanoutCache::open(dir.path())?;
    /// cache.set_bytes("raw", &[1, 2, 3])?;
    /// assert_eq!(cache.get_bytes("raw")?, Some(vec![1, 2, 3]));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get_bytes(&self, key: impl Into<Key>) -> Result<Option<Vec<u8>>> {
        let (key, shard) = self.route(key);
        self.absorb(shard.get_bytes(key), None)
    }

    /// The values of `keys`, in order: one snapshot read per shard
    /// ([`Cache::get_many`]). Keys of a shard that timed out read as `None`.
    ///
    /// # Errors
    ///
    /// [`Error::Decode`] or [`Error::Pickled`] for the first value that does
    /// not decode as `V`; [`Error::InvalidKey`] for a key that cannot be
    /// stored; the storage errors of a read ([the crate's
    /// errors](crate#errors)).
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::FanoutCache::open(dir.path())?;
    /// cache.set_many([("a", &1), ("b", &2)], &Default::default())?;
    /// let values: Vec<Option<i64>> = cache.get_many(["a", "x", "b"])?;
    /// assert_eq!(values, [Some(1), None, Some(2)]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get_many<K, V, I>(&self, keys: I) -> Result<Vec<Option<V>>>
    where
        K: Into<Key>,
        V: DeserializeOwned,
        I: IntoIterator<Item = K>,
    {
        let keys: Vec<Key> = keys.into_iter().map(Into::into).collect();
        let mut groups = vec![Vec::new(); self.inner.shards.len()];
        for (pos, key) in keys.iter().enumerate() {
            groups[shard_of(key, self.inner.shards.len())].push(pos);
        }
        let mut values: Vec<Option<V>> = keys.iter().map(|_| None).collect();
        for (shard, positions) in self.inner.shards.iter().zip(&groups) {
            if positions.is_empty() {
                continue;
            }
            let found = self.absorb(shard.get_many(positions.iter().map(|&p| &keys[p])), Vec::new())?;
            for (&pos, value) in positions.iter().zip(found) {
                values[pos] = value;
            }
        }
        Ok(values)
    }

    /// A reader over a bytes or text value ([`Cache::read`]): the open value
    /// file for a large value (with its path), memory for a small one.
    /// Waits for a locked shard (as python-diskcache's `read` retries).
    ///
    /// # Errors
    ///
    /// As [`Cache::read`]: [`Error::Decode`] for a value that is neither bytes
    /// nor text, [`Error::Corrupt`] for a value file of the wrong size,
    /// [`Error::Io`] when it cannot be opened.
    ///
    /// ```
    /// use std::io::Read;
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::FanoutCache::builder().min_file_size(4).open(dir.path())?;
    /// cache.set_bytes("page", b"<html>")?;
    /// let mut reader = cache.read("page")?.expect("present");
    /// assert!(reader.path().is_some());
    /// let mut html = String::new();
    /// reader.read_to_string(&mut html)?;
    /// assert_eq!(html, "<html>");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn read(&self, key: impl Into<Key>) -> Result<Option<ValueReader>> {
        let key = key.into();
        let shard = self.patient(&key)?;
        self.until_done(|| shard.read(&key))
    }

    /// True when `key` has a live value; `false` also when its shard stayed
    /// locked past the timeout (counted), which a read almost never meets.
    ///
    /// # Errors
    ///
    /// Only the storage errors of a read ([the crate's errors](crate#errors)).
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::FanoutCache::open(dir.path())?;
    /// cache.set("k", &1)?;
    /// assert!(cache.contains_key("k")?);
    /// assert!(!cache.contains_key("other")?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn contains_key(&self, key: impl Into<Key>) -> Result<bool> {
        let (key, shard) = self.route(key);
        self.absorb(shard.contains_key(key), false)
    }

    /// Stores `value` under `key` ([`Cache::set`]); `true` when stored,
    /// `false` when the shard stayed locked past the timeout.
    ///
    /// # Errors
    ///
    /// [`Error::Encode`] when the value cannot be serialized; [`Error::Io`]
    /// when a large value's file cannot be written; the storage errors of a
    /// write ([the crate's errors](crate#errors)). A shard timeout is not an
    /// error (`Ok(false)`).
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::FanoutCache::open(dir.path())?;
    /// assert!(cache.set("user:7", "alice")?, "stored");
    /// assert_eq!(cache.get::<String>("user:7")?.as_deref(), Some("alice"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set<V: Serialize + ?Sized>(&self, key: impl Into<Key>, value: &V) -> Result<bool> {
        self.set_with(key, value, &SetOptions::default())
    }

    /// [`FanoutCache::set`] with an expiry, a tag, or retry (which waits for
    /// the shard instead of returning `false`).
    ///
    /// # Errors
    ///
    /// As [`FanoutCache::set`]; with `opts.retry` the shard is waited for, so
    /// there is no `false`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use diskq::SetOptions;
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::FanoutCache::open(dir.path())?;
    /// let opts = SetOptions::new().expire(Duration::from_secs(60)).tag("session").retry(true);
    /// assert!(cache.set_with("token", "abc", &opts)?);
    /// assert_eq!(cache.get_entry::<String>("token")?.expect("set").tag.as_deref(), Some("session"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set_with<V: Serialize + ?Sized>(&self, key: impl Into<Key>, value: &V, opts: &SetOptions) -> Result<bool> {
        let (key, shard) = self.route(key);
        self.absorb(shard.set_with(key, value, opts).map(|()| true), false)
    }

    /// Stores raw bytes ([`Cache::set_bytes`]); `false` on a shard timeout.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when a large value's file cannot be written; the storage
    /// errors of a write ([the crate's errors](crate#errors)). A shard timeout
    /// is not an error (`Ok(false)`).
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::FanoutCache::open(dir.path())?;
    /// assert!(cache.set_bytes("raw", b"\x00\x01")?);
    /// assert_eq!(cache.get_bytes("raw")?.as_deref(), Some(&b"\x00\x01"[..]));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set_bytes(&self, key: impl Into<Key>, bytes: &[u8]) -> Result<bool> {
        self.set_bytes_with(key, bytes, &SetOptions::default())
    }

    /// [`FanoutCache::set_bytes`] with options.
    ///
    /// # Errors
    ///
    /// As [`FanoutCache::set_bytes`].
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::FanoutCache::open(dir.path())?;
    /// assert!(cache.set_bytes_with("raw", b"\x00", &diskq::SetOptions::new().tag("blobs"))?);
    /// assert_eq!(cache.evict("blobs")?, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set_bytes_with(&self, key: impl Into<Key>, bytes: &[u8], opts: &SetOptions) -> Result<bool> {
        let (key, shard) = self.route(key);
        self.absorb(shard.set_bytes_with(key, bytes, opts).map(|()| true), false)
    }

    /// Streams `reader` into a value file and stores it under `key` as bytes
    /// ([`Cache::set_reader`]); the size, or `None` when the shard stayed
    /// locked past the timeout (the reader is consumed either way: ask for
    /// [`SetOptions::retry`] to wait instead).
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when `reader` fails or the value file cannot be written;
    /// the storage errors of a write ([the crate's errors](crate#errors)). A
    /// shard timeout is not an error (`Ok(None)`).
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::FanoutCache::open(dir.path())?;
    /// let size = cache.set_reader("blob", &mut &b"streamed"[..], &Default::default())?;
    /// assert_eq!(size, Some(8));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set_reader(&self, key: impl Into<Key>, reader: &mut dyn Read, opts: &SetOptions) -> Result<Option<u64>> {
        let (key, shard) = self.route(key);
        self.absorb(shard.set_reader(key, reader, opts).map(Some), None)
    }

    /// Stores every pair, one transaction per shard ([`Cache::set_many`]):
    /// each shard's part is stored whole or not at all, the whole batch is
    /// not atomic. Returns how many were stored (a shard that timed out
    /// stores none of its part).
    ///
    /// # Errors
    ///
    /// [`Error::Encode`] when a value cannot be serialized (the shards before
    /// it keep their parts); [`Error::Io`] for a value file; the storage errors
    /// of a write ([the crate's errors](crate#errors)).
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::FanoutCache::open(dir.path())?;
    /// let stored = cache.set_many([("a", &1), ("b", &2)], &diskq::SetOptions::new())?;
    /// assert_eq!(stored, 2);
    /// assert_eq!(cache.get_many::<_, i64, _>(["b", "a"])?, [Some(2), Some(1)]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set_many<'v, K, V, I>(&self, items: I, opts: &SetOptions) -> Result<usize>
    where
        K: Into<Key>,
        V: Serialize + ?Sized + 'v,
        I: IntoIterator<Item = (K, &'v V)>,
    {
        let mut groups: Vec<Vec<(Key, &'v V)>> = self.inner.shards.iter().map(|_| Vec::new()).collect();
        for (key, value) in items {
            let key = key.into();
            groups[shard_of(&key, self.inner.shards.len())].push((key, value));
        }
        let mut stored = 0;
        for (shard, group) in self.inner.shards.iter().zip(groups) {
            if !group.is_empty() {
                stored += self.absorb(shard.set_many(group, opts), 0)?;
            }
        }
        Ok(stored)
    }

    /// Stores `value` only if `key` has no live value ([`Cache::add`]);
    /// `true` if it did, `false` if the key was present or the shard stayed
    /// locked past the timeout.
    ///
    /// # Errors
    ///
    /// As [`FanoutCache::set`]; a present key is not an error (`Ok(false)`).
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::FanoutCache::open(dir.path())?;
    /// assert!(cache.add("leader", "worker-1")?);
    /// assert!(!cache.add("leader", "worker-2")?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn add<V: Serialize + ?Sized>(&self, key: impl Into<Key>, value: &V) -> Result<bool> {
        self.add_with(key, value, &SetOptions::default())
    }

    /// [`FanoutCache::add`] with options.
    ///
    /// # Errors
    ///
    /// As [`FanoutCache::add`].
    ///
    /// ```
    /// use std::time::Duration;
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::FanoutCache::open(dir.path())?;
    /// let opts = diskq::SetOptions::new().expire(Duration::from_secs(60));
    /// assert!(cache.add_with("once", &1, &opts)?);
    /// assert!(!cache.add_with("once", &2, &opts)?);
    /// assert_eq!(cache.get::<i64>("once")?, Some(1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn add_with<V: Serialize + ?Sized>(&self, key: impl Into<Key>, value: &V, opts: &SetOptions) -> Result<bool> {
        let (key, shard) = self.route(key);
        self.absorb(shard.add_with(key, value, opts), false)
    }

    /// Adds `delta` to the integer value of `key` ([`Cache::incr`], atomic);
    /// the new value, or `None` when the shard stayed locked past the timeout
    /// (nothing was added).
    ///
    /// # Errors
    ///
    /// [`Error::Decode`] when the value is not an integer, [`Error::Encode`] on
    /// overflow (the value is then unchanged); the storage errors of a write
    /// ([the crate's errors](crate#errors)). A shard timeout is not an error
    /// (`Ok(None)`).
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::FanoutCache::open(dir.path())?;
    /// assert_eq!(cache.incr("hits", 1, 0)?, Some(1));
    /// assert_eq!(cache.incr("hits", 10, 0)?, Some(11));
    /// assert_eq!(cache.decr("hits", 1, 0)?, Some(10));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn incr(&self, key: impl Into<Key>, delta: i64, default: i64) -> Result<Option<i64>> {
        let (key, shard) = self.route(key);
        self.absorb(shard.incr(key, delta, default).map(Some), None)
    }

    /// Subtracts `delta` ([`Cache::decr`]); `None` on a shard timeout.
    ///
    /// # Errors
    ///
    /// As [`FanoutCache::incr`], and [`Error::Encode`] for a `delta` of
    /// `i64::MIN`.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::FanoutCache::open(dir.path())?;
    /// assert_eq!(cache.decr("stock", 1, 10)?, Some(9));
    /// assert_eq!(cache.decr("stock", 2, 10)?, Some(7));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn decr(&self, key: impl Into<Key>, delta: i64, default: i64) -> Result<Option<i64>> {
        let (key, shard) = self.route(key);
        self.absorb(shard.decr(key, delta, default).map(Some), None)
    }

    /// Deletes `key` ([`Cache::delete`]); `true` if it had a live value,
    /// `false` if not or when the shard stayed locked past the timeout.
    ///
    /// # Errors
    ///
    /// The storage errors of a write ([the crate's errors](crate#errors)). A
    /// shard timeout is not an error (`Ok(false)`).
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::FanoutCache::open(dir.path())?;
    /// cache.set("k", &1)?;
    /// assert!(cache.delete("k")?);
    /// assert!(!cache.delete("k")?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn delete(&self, key: impl Into<Key>) -> Result<bool> {
        let (key, shard) = self.route(key);
        self.absorb(shard.delete(key), false)
    }

    /// Removes `key` and returns its value ([`Cache::pop`], atomic); `None`
    /// when absent or when the shard stayed locked past the timeout (the
    /// value is then still there).
    ///
    /// # Errors
    ///
    /// [`Error::Decode`] or [`Error::Pickled`] when the value does not decode
    /// as `V` (it then stays); the storage errors of a write ([the crate's
    /// errors](crate#errors)).
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::FanoutCache::open(dir.path())?;
    /// cache.set("job", "index /")?;
    /// assert_eq!(cache.pop::<String>("job")?.as_deref(), Some("index /"));
    /// assert_eq!(cache.pop::<String>("job")?, None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn pop<V: DeserializeOwned>(&self, key: impl Into<Key>) -> Result<Option<V>> {
        let (key, shard) = self.route(key);
        self.absorb(shard.pop(key), None)
    }

    /// Gives a live `key` a new expiry ([`Cache::touch`]); `true` if it was
    /// live, `false` if not or when the shard stayed locked past the timeout.
    ///
    /// # Errors
    ///
    /// The storage errors of a write ([the crate's errors](crate#errors)). A
    /// shard timeout is not an error (`Ok(false)`).
    ///
    /// ```
    /// use std::time::Duration;
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::FanoutCache::open(dir.path())?;
    /// cache.set("k", &1)?;
    /// assert!(cache.touch("k", Some(Duration::from_secs(60)))?);
    /// assert!(cache.get_entry::<i64>("k")?.expect("live").expire_time.is_some());
    /// assert!(!cache.touch("missing", None)?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn touch(&self, key: impl Into<Key>, expire: Option<Duration>) -> Result<bool> {
        let (key, shard) = self.route(key);
        self.absorb(shard.touch(key, expire), false)
    }

    /// The value of `key` (made as [`Key::of`] makes it), or, on a miss, the
    /// result of `compute`, stored with `expire` ([`Cache::memoize`]: one
    /// caller computes while the others wait). Runs on a handle of the
    /// key's shard with a 60 s timeout, since python-diskcache's memoize
    /// retries on timeouts.
    ///
    /// # Errors
    ///
    /// As [`Cache::memoize`]: `compute`'s own error, or the cache's converted
    /// into `E` ([`Error::Encode`], [`Error::Decode`], the errors of a write;
    /// [`Error::Timeout`] only after 60 s).
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::FanoutCache::open(dir.path())?;
    /// let v = cache.memoize(("fib", 30), None, || Ok::<u64, diskq::Error>(832_040))?;
    /// assert_eq!(v, 832_040);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn memoize<K, V, E, F>(&self, key: K, expire: Option<Duration>, compute: F) -> Result<V, E>
    where
        K: Serialize,
        V: Serialize + DeserializeOwned,
        E: From<Error>,
        F: FnOnce() -> Result<V, E>,
    {
        let key = Key::of(&key)?;
        self.patient(&key)?.memoize_key(key, expire, compute)
    }

    /// Runs `f` with every shard locked (one immediate transaction per
    /// shard, taken in shard order and waited for however long it takes, as
    /// python-diskcache's `FanoutCache.transact` does): the operations `f`
    /// calls on this cache from this thread are isolated from every other
    /// writer, and an `Err` from `f` rolls all of them back.
    ///
    /// The shards commit one after the other, so a reader may see one
    /// shard's changes a moment before another's, and a failure to commit
    /// one shard (a full disk) does not undo the shards already committed.
    /// It stops every writer of the cache while it runs: keep it short.
    ///
    /// # Errors
    ///
    /// `f`'s own error, after every shard is rolled back; the storage errors of
    /// a write ([the crate's errors](crate#errors)) converted into `E`, such as
    /// a shard that fails to commit (the shards committed before it stay).
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::FanoutCache::open(dir.path())?;
    /// cache.transact(|c| {
    ///     c.incr("total", 120, 0)?;
    ///     c.incr("count", 1, 0)?;
    ///     Ok::<_, diskq::Error>(())
    /// })?;
    /// assert_eq!(cache.get::<i64>("total")?, Some(120));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn transact<T, E: From<Error>>(&self, f: impl FnOnce(&FanoutCache) -> Result<T, E>) -> Result<T, E> {
        let mut f = Some(f);
        let mut run = || match f.take() {
            Some(f) => f(self),
            None => Err(E::from(Error::InvalidUse("a transaction body ran twice".into()))),
        };
        lock_shards(&self.inner.shards, &mut run)
    }
}

/// Runs `run` inside a transaction on each of `shards`, nested in order.
fn lock_shards<T, E: From<Error>>(shards: &[Cache], run: &mut dyn FnMut() -> Result<T, E>) -> Result<T, E> {
    match shards.split_first() {
        None => run(),
        Some((first, rest)) => first.transact_with(true, |_| lock_shards(rest, run)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_rule_matches_python_diskcache() {
        // Disk.hash(key) of python-diskcache 5.6.3, printed by Python.
        let cases: [(Key, u64); 12] = [
            (Key::from("hello"), 103547413),
            (Key::from("héllo wörld"), 773523054),
            (Key::from(""), 1),
            (Key::from(&b"\x00bin"[..]), 40501562),
            (Key::from(-1), 4294967294),
            (Key::from(-42), 4294967253),
            (Key::from(i64::MIN), 2147483647),
            (Key::from(i64::MAX), 2147483647),
            (Key::Int(4294967295), 0),
            (Key::from(1.5), 147325240),
            (Key::from(-0.0), 67633281),
            (Key::from(1e300), 262341487),
        ];
        for (key, hash) in cases {
            for shards in [1, 3, 8, 13] {
                assert_eq!(
                    shard_of(&key, shards) as u64,
                    hash % shards as u64,
                    "{key} over {shards}"
                );
            }
        }
    }

    #[test]
    fn fanout_cache_is_clone_send_sync() {
        fn assert_traits<T: Clone + Send + Sync + 'static>() {}
        assert_traits::<FanoutCache>();
    }
}
