//! Per-call options and small result types.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Options of a write: expiry, tag, and whether to retry on a lock timeout.
///
/// ```
/// use std::time::Duration;
/// use diskq::SetOptions;
/// let opts = SetOptions::new().expire(Duration::from_secs(60)).tag("session");
/// assert_eq!(opts.tag.as_deref(), Some("session"));
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
#[must_use = "options do nothing until passed to a call"]
pub struct SetOptions {
    /// The item expires this long after the write (default: never).
    pub expire: Option<Duration>,
    /// A tag, for [`Cache::evict`](crate::Cache::evict).
    pub tag: Option<String>,
    /// Retry instead of returning [`Error::Timeout`](crate::Error::Timeout)
    /// when the database stays locked past the timeout.
    pub retry: bool,
}

impl SetOptions {
    /// No expiry, no tag, no retry.
    ///
    /// ```
    /// let opts = diskq::SetOptions::new();
    /// assert_eq!((opts.expire, opts.tag, opts.retry), (None, None, false));
    /// ```
    pub fn new() -> SetOptions {
        SetOptions::default()
    }

    /// Sets the expiry.
    ///
    /// ```
    /// use std::time::{Duration, SystemTime};
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::Cache::open(dir.path())?;
    /// cache.set_with("otp", &123456, &diskq::SetOptions::new().expire(Duration::from_secs(300)))?;
    /// let expires = cache.get_entry::<i64>("otp")?.expect("live").expire_time.expect("expires");
    /// assert!(expires <= SystemTime::now() + Duration::from_secs(300));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn expire(mut self, expire: Duration) -> SetOptions {
        self.expire = Some(expire);
        self
    }

    /// Sets the tag.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::Cache::open(dir.path())?;
    /// let user7 = diskq::SetOptions::new().tag("user-7");
    /// cache.set_with("cart:7", &3, &user7)?;
    /// cache.set_with("prefs:7", "dark", &user7)?;
    /// assert_eq!(cache.evict("user-7")?, 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn tag(mut self, tag: impl Into<String>) -> SetOptions {
        self.tag = Some(tag.into());
        self
    }

    /// Retries on lock timeouts.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::Cache::open(dir.path())?;
    /// // Waits out a busy write lock instead of returning Error::Timeout.
    /// cache.set_with("k", &1, &diskq::SetOptions::new().retry(true))?;
    /// assert_eq!(cache.get::<i64>("k")?, Some(1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn retry(mut self, retry: bool) -> SetOptions {
        self.retry = retry;
        self
    }
}

/// An end of a queue.
///
/// ```
/// use diskq::{Cache, PullOptions, PushOptions, Side};
/// let dir = tempfile::tempdir()?;
/// let cache = Cache::open(dir.path())?;
/// cache.push("b")?;
/// cache.push_with("a", &PushOptions::new().side(Side::Front))?; // jumps the queue
/// let (_, first) = cache.pull_with::<String>(&PullOptions::new().side(Side::Front))?.expect("two");
/// assert_eq!(first, "a");
/// assert_eq!(Side::default(), Side::Back);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Side {
    /// The end with the smallest key.
    Front,
    /// The end with the largest key.
    #[default]
    Back,
}

/// Options of [`Cache::push_with`](crate::Cache::push_with).
///
/// ```
/// use diskq::{PushOptions, Side};
/// let opts = PushOptions::new().prefix("jobs").side(Side::Front);
/// assert_eq!(opts.prefix.as_deref(), Some("jobs"));
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
#[must_use = "options do nothing until passed to a call"]
pub struct PushOptions {
    /// Queue name: keys become `"<prefix>-<15 digits>"` text; without it,
    /// integer keys (python-diskcache's numbering, from 500000000000000).
    pub prefix: Option<String>,
    /// Which end to push onto (default: back).
    pub side: Side,
    /// Expiry and tag of the item, and retry.
    pub set: SetOptions,
}

impl PushOptions {
    /// Integer keys, back of the queue, no expiry.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::Cache::open(dir.path())?;
    /// let key = cache.push_with("job", &diskq::PushOptions::new())?; // as `push`
    /// assert!(key.as_int().is_some(), "an integer key, as python-diskcache's");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new() -> PushOptions {
        PushOptions::default()
    }

    /// Uses the named queue.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::Cache::open(dir.path())?;
    /// let key = cache.push_with("job", &diskq::PushOptions::new().prefix("emails"))?;
    /// assert_eq!(key.as_str(), Some("emails-500000000000000"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn prefix(mut self, prefix: impl Into<String>) -> PushOptions {
        self.prefix = Some(prefix.into());
        self
    }

    /// Pushes onto `side`.
    ///
    /// ```
    /// use diskq::{PushOptions, Side};
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::Cache::open(dir.path())?;
    /// cache.push("normal")?;
    /// cache.push_with("urgent", &PushOptions::new().side(Side::Front))?;
    /// assert_eq!(cache.pull::<String>()?.map(|(_, v)| v).as_deref(), Some("urgent"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn side(mut self, side: Side) -> PushOptions {
        self.side = side;
        self
    }

    /// Expiry, tag and retry of the pushed item.
    ///
    /// ```
    /// use std::time::Duration;
    /// use diskq::{PushOptions, SetOptions};
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::Cache::open(dir.path())?;
    /// let opts = PushOptions::new().set(SetOptions::new().tag("batch-1").expire(Duration::from_secs(600)));
    /// let key = cache.push_with("job", &opts)?;
    /// assert_eq!(cache.get_entry::<String>(key)?.expect("queued").tag.as_deref(), Some("batch-1"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set(mut self, set: SetOptions) -> PushOptions {
        self.set = set;
        self
    }
}

/// Options of [`Cache::pull_with`](crate::Cache::pull_with) and
/// [`Cache::peek_with`](crate::Cache::peek_with).
///
/// ```
/// use diskq::{PullOptions, Side};
/// let opts = PullOptions::new().prefix("jobs").side(Side::Back);
/// assert_eq!(opts.side, Side::Back);
/// ```
#[derive(Debug, Clone, PartialEq)]
#[must_use = "options do nothing until passed to a call"]
pub struct PullOptions {
    /// Queue name, as in [`PushOptions::prefix`].
    pub prefix: Option<String>,
    /// Which end to take from (default: front).
    pub side: Side,
    /// Retry on lock timeouts.
    pub retry: bool,
}

impl Default for PullOptions {
    fn default() -> Self {
        PullOptions {
            prefix: None,
            side: Side::Front,
            retry: false,
        }
    }
}

impl PullOptions {
    /// Integer keys, front of the queue.
    ///
    /// ```
    /// use diskq::{PullOptions, Side};
    /// let opts = PullOptions::new();
    /// assert_eq!((opts.prefix, opts.side, opts.retry), (None, Side::Front, false));
    /// ```
    pub fn new() -> PullOptions {
        PullOptions::default()
    }

    /// Uses the named queue.
    ///
    /// ```
    /// use diskq::{PullOptions, PushOptions};
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::Cache::open(dir.path())?;
    /// cache.push_with("mail", &PushOptions::new().prefix("emails"))?;
    /// assert!(cache.pull::<String>()?.is_none(), "not in the integer queue");
    /// let (_, job) = cache.pull_with::<String>(&PullOptions::new().prefix("emails"))?.expect("queued");
    /// assert_eq!(job, "mail");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn prefix(mut self, prefix: impl Into<String>) -> PullOptions {
        self.prefix = Some(prefix.into());
        self
    }

    /// Takes from `side`.
    ///
    /// ```
    /// use diskq::{PullOptions, Side};
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::Cache::open(dir.path())?;
    /// cache.push_many([&1, &2, &3], &diskq::PushOptions::new())?;
    /// let (_, last) = cache.pull_with::<i64>(&PullOptions::new().side(Side::Back))?.expect("three");
    /// assert_eq!(last, 3); // a stack: last in, first out
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn side(mut self, side: Side) -> PullOptions {
        self.side = side;
        self
    }

    /// Retries on lock timeouts.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::Cache::open(dir.path())?;
    /// cache.push("job")?;
    /// // Waits out a busy write lock instead of returning Error::Timeout.
    /// let job = cache.pull_with::<String>(&diskq::PullOptions::new().retry(true))?;
    /// assert!(job.is_some());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn retry(mut self, retry: bool) -> PullOptions {
        self.retry = retry;
        self
    }
}

/// A value with its expiry time and tag.
///
/// ```
/// let dir = tempfile::tempdir()?;
/// let cache = diskq::Cache::open(dir.path())?;
/// cache.set_with("k", "v", &diskq::SetOptions::new().tag("t"))?;
/// let entry: diskq::Entry<String> = cache.get_entry("k")?.expect("set");
/// assert_eq!(entry, diskq::Entry { value: "v".to_string(), expire_time: None, tag: Some("t".into()) });
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Entry<V> {
    /// The value.
    pub value: V,
    /// When the item expires, if it does.
    pub expire_time: Option<SystemTime>,
    /// The item's tag.
    pub tag: Option<String>,
}

/// Hit and miss counts, kept while statistics are enabled, and the count of
/// items culled, always kept.
///
/// ```
/// let dir = tempfile::tempdir()?;
/// let cache = diskq::Cache::builder().statistics(true).open(dir.path())?;
/// cache.set("a", &1)?;
/// cache.get::<i64>("a")?;
/// cache.get::<i64>("a")?;
/// cache.get::<i64>("b")?;
/// let stats: diskq::Stats = cache.stats()?;
/// assert_eq!((stats.hits, stats.misses, stats.culled), (2, 1, 0));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    /// Gets that found a live item.
    pub hits: u64,
    /// Gets that found nothing (or only an expired item).
    pub misses: u64,
    /// Live items removed by the eviction policy because the cache was over
    /// its size limit (by writes and by [`Cache::cull`](crate::Cache::cull)),
    /// counted by diskq whether or not statistics are on. Expired items
    /// removed are not counted; culls made by python-diskcache are not seen.
    pub culled: u64,
    /// Checkpoints a write of this process ran itself, waiting for readers,
    /// because the write-ahead log had grown past its bound (64 MiB) — a
    /// reader that stayed open kept the background checkpoints from
    /// finishing. Counted in this process, for this directory, since it
    /// was first opened here (no other process's are seen).
    pub blocking_checkpoints: u64,
}

/// What [`Cache::check`](crate::Cache::check) found.
///
/// ```
/// use diskq::WarningKind;
/// let dir = tempfile::tempdir()?;
/// let cache = diskq::Cache::builder().min_file_size(4).open(dir.path())?;
/// cache.set_bytes("big", b"0123456789")?;
/// let path = cache.read("big")?.expect("set").path().expect("a file").to_path_buf();
/// std::fs::remove_file(path)?; // damage behind diskq's back
/// let kinds: Vec<WarningKind> = cache.check()?.into_iter().map(|w| w.kind).collect();
/// assert!(kinds.contains(&WarningKind::MissingFile), "{kinds:?}");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum WarningKind {
    /// SQLite's integrity check reported a problem.
    Integrity,
    /// A value file's size differs from its row's `size`.
    WrongFileSize,
    /// A row names a value file that does not exist.
    MissingFile,
    /// A row names a value file outside the directory (a forged row).
    BadFileName,
    /// A file in the directory that no row names (an orphan).
    UnknownFile,
    /// An empty value folder.
    EmptyDirectory,
    /// The `count` metadata differs from the rows.
    CountMismatch,
    /// The `size` metadata differs from the rows.
    SizeMismatch,
    /// Two or more rows name one value file (a forged or copied row):
    /// deleting one keeps the file for the others. Not repaired (which row
    /// owns it cannot be known); deleting the extra keys resolves it.
    SharedFile,
    /// A row's `size` is impossible for its value: not an integer, or not 0
    /// for a value stored in the row (sizes near 2^62 in a forged
    /// database). `repair()` sets it to 0, as every writer does.
    BadSize,
    /// A column of a row holds a type no writer stores there (a text
    /// `mode`, say), so the row cannot be read; the message names the key
    /// and the column. Not repaired: the row's value may still be wanted,
    /// and `delete` of the key removes it.
    BadColumn,
}

/// How [`Cache::check_with`](crate::Cache::check_with) runs: whether it
/// repairs, and how old a file no row names must be before it is removed.
///
/// A value file is written before the row naming it commits, and
/// python-diskcache (which takes no diskq lock) may be streaming one while
/// `check` runs: a file younger than `orphan_grace` may still get its row,
/// so it is reported (not fixed) instead of removed, as git's `prune` keeps
/// young objects. The same holds for an empty value folder.
///
/// ```
/// use std::time::Duration;
/// let dir = tempfile::tempdir()?;
/// let cache = diskq::Cache::open(dir.path())?;
/// let opts = diskq::CheckOptions::new().fix(true).orphan_grace(Duration::from_secs(600));
/// assert!(cache.check_with(&opts)?.is_empty());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "options do nothing until passed to a call"]
pub struct CheckOptions {
    /// Repair what is found (default: only report).
    pub fix: bool,
    /// A file or empty folder that no row names is removed only once its
    /// modification time is at least this old (default: one hour,
    /// [`CheckOptions::DEFAULT_ORPHAN_GRACE`]). `Duration::ZERO` removes
    /// them at once: only safe when no process writes the directory.
    pub orphan_grace: Duration,
}

impl CheckOptions {
    /// The default grace period of orphan files: one hour.
    ///
    /// ```
    /// use std::time::Duration;
    /// use diskq::CheckOptions;
    /// assert_eq!(CheckOptions::DEFAULT_ORPHAN_GRACE, Duration::from_secs(3600));
    /// assert_eq!(CheckOptions::new().orphan_grace, CheckOptions::DEFAULT_ORPHAN_GRACE);
    /// ```
    pub const DEFAULT_ORPHAN_GRACE: Duration = Duration::from_secs(3600);

    /// Report only, with the default grace period.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::Cache::open(dir.path())?;
    /// cache.set("k", &1)?;
    /// assert!(cache.check_with(&diskq::CheckOptions::new())?.is_empty(), "nothing wrong");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new() -> CheckOptions {
        CheckOptions::default()
    }

    /// Repair what is found.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::Cache::builder().min_file_size(4).open(dir.path())?;
    /// cache.set_bytes("big", b"0123456789")?;
    /// let path = cache.read("big")?.expect("set").path().expect("a file").to_path_buf();
    /// std::fs::remove_file(path)?;
    /// let found = cache.check_with(&diskq::CheckOptions::new().fix(true))?;
    /// assert!(found.iter().all(|w| w.fixed), "{found:?}");
    /// assert!(cache.check()?.is_empty(), "repaired: the row of the lost file is gone");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn fix(mut self, fix: bool) -> CheckOptions {
        self.fix = fix;
        self
    }

    /// How old an orphan file must be before it is removed.
    ///
    /// ```
    /// use std::time::Duration;
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::Cache::open(dir.path())?;
    /// // A file of value-file shape that no row names, made just now.
    /// std::fs::create_dir_all(dir.path().join("ab/cd"))?;
    /// std::fs::write(dir.path().join("ab/cd/0123456789abcdef0123456789ab.val"), b"x")?;
    /// let opts = diskq::CheckOptions::new().fix(true);
    /// let kept = cache.check_with(&opts)?; // younger than an hour: reported, kept
    /// assert!(kept.iter().any(|w| w.kind == diskq::WarningKind::UnknownFile && !w.fixed));
    /// let removed = cache.check_with(&opts.orphan_grace(Duration::ZERO))?; // no process writes here
    /// assert!(removed.iter().any(|w| w.kind == diskq::WarningKind::UnknownFile && w.fixed));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn orphan_grace(mut self, grace: Duration) -> CheckOptions {
        self.orphan_grace = grace;
        self
    }
}

impl Default for CheckOptions {
    fn default() -> CheckOptions {
        CheckOptions {
            fix: false,
            orphan_grace: CheckOptions::DEFAULT_ORPHAN_GRACE,
        }
    }
}

/// One inconsistency found by [`Cache::check`](crate::Cache::check).
///
/// ```
/// let dir = tempfile::tempdir()?;
/// let cache = diskq::Cache::builder().min_file_size(4).open(dir.path())?;
/// cache.set_bytes("big", b"0123456789")?;
/// let path = cache.read("big")?.expect("set").path().expect("a file").to_path_buf();
/// std::fs::write(&path, b"short")?; // truncated behind diskq's back
/// for warning in cache.repair()? {
///     println!("{warning}"); // its message, and "(fixed)" when repaired
///     assert!(warning.fixed);
/// }
/// assert_eq!(cache.get_bytes("big")?, None, "the damaged value was removed");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// Its kind.
    pub kind: WarningKind,
    /// A sentence naming the file or numbers involved.
    pub message: String,
    /// True when `repair()` repaired it.
    pub fixed: bool,
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{}", self.message, if self.fixed { " (fixed)" } else { "" })
    }
}

pub(crate) fn to_system_time(secs: f64) -> SystemTime {
    if secs >= 0.0 {
        UNIX_EPOCH + Duration::from_secs_f64(secs.min(1e11))
    } else {
        UNIX_EPOCH
    }
}
