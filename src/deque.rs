//! `Deque<T>`: a persistent double-ended queue shared by processes, and its iterator.

use std::borrow::Borrow;
use std::marker::PhantomData;
use std::path::Path;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::cache::Cache;
use crate::codec;
use crate::counters::QueueStats;
use crate::error::{Error, Result};
use crate::keys::Pager;
use crate::lease::{Backlog, Lease, LeaseOptions};
use crate::options::{PullOptions, PushOptions, Side};
use crate::queue::bounds;
use crate::settings::EvictionPolicy;

/// A persistent double-ended queue in a directory, shared by threads and
/// processes (python-diskcache's `Deque`, on the same format).
///
/// Every operation is one transaction, so a pop hands an item to exactly one
/// consumer. A pop is at-most-once: a consumer that dies after its pop loses
/// the item. `T` is any serde type; integers, floats, strings and bytes are
/// stored so that a Python `diskcache.Deque` on the same directory sees them.
///
/// ```
/// use std::time::Duration;
/// use diskq::Deque;
///
/// let dir = tempfile::tempdir()?;
/// let jobs: Deque<String> = Deque::open(dir.path())?;
/// jobs.push_back("b")?;
/// jobs.push_back("c")?;
/// jobs.push_front("a")?;
/// assert_eq!(jobs.len()?, 3);
/// assert_eq!(jobs.pop_front()?.as_deref(), Some("a"));
/// assert_eq!(jobs.back()?.as_deref(), Some("c"));
/// let items: Vec<String> = jobs.iter()?.collect::<Result<_, _>>()?;
/// assert_eq!(items, ["b", "c"]);
/// // Wait up to 10 ms for an item pushed by any process.
/// jobs.clear()?;
/// assert_eq!(jobs.pop_front_timeout(Duration::from_millis(10))?, None);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Its keys, beside others
///
/// A deque owns only its queue's keys in its cache: the integer keys of
/// python-diskcache's queue range (0 to 999999999999999), the items leased
/// from it (see [`Deque::lease`]) and its default dead-letter queue
/// (`dead-letter-<15 digits>`). Other keys of the same cache (a seen-set
/// beside a crawler's frontier, say) are not items: `len`, `clear`, `iter`,
/// `get`, `front`/`back`, the pops, `rotate_*`, `retain` and `maxlen` neither
/// count, show nor remove them, as a `VecDeque` beside other variables.
/// python-diskcache's `Deque` differs: its `len` counts and its `clear`
/// removes every key of the cache, and its iteration walks them all.
///
/// [`Deque::len`] counts what the deque holds: queued items, leased items
/// and dead letters. The positional operations (`iter`, `get`, `front`,
/// `back`, pops, `rotate_*`, `retain`) and `maxlen` see the queued items
/// only; [`Deque::backlog`] tells queued from leased.
///
/// ```
/// use diskq::{Cache, Deque};
/// let dir = tempfile::tempdir()?;
/// let cache = Cache::open(dir.path())?;
/// cache.set("seen:https://example.com/", &true)?;
/// let frontier: Deque<String> = Deque::from_cache(cache.clone());
/// frontier.push_back("https://example.com/a")?;
/// assert_eq!(frontier.len()?, 1);
/// assert_eq!(frontier.clear()?, 1);
/// assert!(cache.contains_key("seen:https://example.com/")?);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Deque<T> {
    cache: Cache,
    maxlen: Option<usize>,
    _items: PhantomData<fn() -> T>,
}

impl<T> Clone for Deque<T> {
    fn clone(&self) -> Self {
        Deque {
            cache: self.cache.clone(),
            maxlen: self.maxlen,
            _items: PhantomData,
        }
    }
}

impl<T> std::fmt::Debug for Deque<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deque")
            .field("directory", &self.cache.directory())
            .field("maxlen", &self.maxlen)
            .finish()
    }
}

/// The dead-letter queue of a deque's leases when their options name none
/// (`LeaseOptions::dead_letter_prefix` without a prefix).
const DEAD_LETTERS: &str = "dead-letter";

const FRONT: PullOptions = PullOptions {
    prefix: None,
    side: Side::Front,
    retry: false,
};
const BACK: PullOptions = PullOptions {
    prefix: None,
    side: Side::Back,
    retry: false,
};

impl<T: Serialize + DeserializeOwned> Deque<T> {
    /// Opens (creating if needed) the deque in `dir`, with eviction policy
    /// `none` (a deque never drops items to save space).
    ///
    /// # Errors
    ///
    /// As [`Cache::open`]: [`Error::NotADirectory`], [`Error::NotADatabase`],
    /// [`Error::InvalidSetting`], [`Error::UnsupportedFormat`] or [`Error::Io`]
    /// when the directory cannot be opened as a cache.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let jobs: diskq::Deque<String> = diskq::Deque::open(dir.path())?;
    /// jobs.push_back("a")?;
    /// // Another handle, in this process or another, sees the same items.
    /// let same: diskq::Deque<String> = diskq::Deque::open(dir.path())?;
    /// assert_eq!(same.pop_front()?.as_deref(), Some("a"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open(dir: impl AsRef<Path>) -> Result<Deque<T>> {
        Ok(Deque::from_cache(
            Cache::builder().eviction_policy(EvictionPolicy::None).open(dir)?,
        ))
    }

    /// A deque over an open cache: its integer-keyed queue, beside whatever
    /// other keys the cache holds (see [the type's docs](Deque#its-keys-beside-others)).
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::Cache::open(dir.path())?;
    /// let numbers: diskq::Deque<i64> = diskq::Deque::from_cache(cache.clone());
    /// numbers.push_back(&7)?;
    /// // The deque is the cache's integer-keyed queue.
    /// assert_eq!(cache.pull::<i64>()?.map(|(_, v)| v), Some(7));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn from_cache(cache: Cache) -> Deque<T> {
        Deque {
            cache,
            maxlen: None,
            _items: PhantomData,
        }
    }

    /// Bounds the deque: a push onto a full deque drops an item from the
    /// other end, as `collections.deque` and python-diskcache do. Items over
    /// the bound now are dropped from the front. The bound belongs to this
    /// handle (python-diskcache does not persist it either). It bounds the
    /// queued items: leased items and dead letters are neither counted
    /// against it nor dropped, and neither are the cache's other keys.
    ///
    /// # Errors
    ///
    /// The errors of any write ([the crate's errors](crate#errors)):
    /// [`Error::Timeout`] when the write lock stays taken past the timeout,
    /// [`Error::InvalidUse`] on a read-only handle, when items over the bound
    /// have to be dropped.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let recent = diskq::Deque::<u32>::open(dir.path())?.with_maxlen(3)?;
    /// recent.extend(&[1, 2, 3, 4, 5])?;
    /// assert_eq!(recent.iter()?.collect::<Result<Vec<_>, _>>()?, [3, 4, 5]);
    /// recent.push_front(&0)?; // full: drops from the back
    /// assert_eq!(recent.iter()?.collect::<Result<Vec<_>, _>>()?, [0, 3, 4]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_maxlen(mut self, maxlen: usize) -> Result<Deque<T>> {
        self.maxlen = Some(maxlen);
        self.cache.transact(|_| self.trim(maxlen, &FRONT))?;
        Ok(self)
    }

    /// Drops queued items from one end until at most `maxlen` are left.
    fn trim(&self, maxlen: usize, from: &PullOptions) -> Result<()> {
        let over = self.cache.queue_len(None)?.saturating_sub(maxlen);
        if over > 0 {
            self.cache.pull_many::<serde::de::IgnoredAny>(over, from)?;
        }
        Ok(())
    }

    /// The bound set by [`Deque::with_maxlen`].
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let d = diskq::Deque::<u32>::open(dir.path())?;
    /// assert_eq!(d.maxlen(), None);
    /// assert_eq!(d.with_maxlen(10)?.maxlen(), Some(10));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn maxlen(&self) -> Option<usize> {
        self.maxlen
    }

    /// The cache underneath.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let jobs: diskq::Deque<String> = diskq::Deque::open(dir.path())?;
    /// jobs.push_back("a")?;
    /// let cache = jobs.cache();
    /// assert_eq!(cache.eviction_policy(), diskq::EvictionPolicy::None);
    /// assert_eq!(cache.len()?, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    fn push<Q: Serialize + ?Sized>(&self, value: &Q, side: Side) -> Result<()> {
        let opts = PushOptions {
            side,
            ..PushOptions::default()
        };
        match self.maxlen {
            None => self.cache.push_with(value, &opts).map(drop),
            Some(maxlen) => self.cache.transact(|c| {
                c.push_with(value, &opts)?;
                self.trim(maxlen, if side == Side::Back { &FRONT } else { &BACK })
            }),
        }
    }

    /// Appends an item at the back.
    ///
    /// Takes `T` or any form `T` borrows as (`&str` for a `Deque<String>`,
    /// `&[u8]` for a `Deque<Vec<u8>>`, `&Path` for a `Deque<PathBuf>`), the
    /// way `HashMap::get` takes a borrowed key; std's borrowed forms
    /// serialize as their owned types do, so the item reads back as `T`.
    /// A `Deque<i64>` still takes only `i64`s.
    ///
    /// # Errors
    ///
    /// [`Error::Encode`] when the item cannot be serialized;
    /// [`Error::InvalidUse`] when the queue's key range is used up; the errors
    /// of any write ([the crate's errors](crate#errors)): [`Error::Timeout`]
    /// when the write lock stays taken past the timeout, [`Error::InvalidUse`]
    /// on a read-only handle.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let jobs = diskq::Deque::<String>::open(dir.path())?;
    /// jobs.push_back("resize img-1")?;
    /// jobs.push_back(&String::from("resize img-2"))?;
    /// assert_eq!(jobs.pop_front()?.as_deref(), Some("resize img-1"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// ```compile_fail
    /// # let dir = tempfile::tempdir().unwrap();
    /// let numbers = diskq::Deque::<i64>::open(dir.path()).unwrap();
    /// numbers.push_back("7").unwrap(); // an i64 does not borrow as a str
    /// ```
    pub fn push_back<Q: Serialize + ?Sized>(&self, value: &Q) -> Result<()>
    where
        T: Borrow<Q>,
    {
        self.push(value, Side::Back)
    }

    /// Prepends an item at the front; takes `T` or a borrowed form, like
    /// [`Deque::push_back`].
    ///
    /// # Errors
    ///
    /// As [`Deque::push_back`].
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let jobs = diskq::Deque::<String>::open(dir.path())?;
    /// jobs.push_back("later")?;
    /// jobs.push_front("urgent")?;
    /// assert_eq!(jobs.pop_front()?.as_deref(), Some("urgent"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn push_front<Q: Serialize + ?Sized>(&self, value: &Q) -> Result<()>
    where
        T: Borrow<Q>,
    {
        self.push(value, Side::Front)
    }

    /// Appends an item that no pop or lease takes before `delay` has passed
    /// (by the cache's clock); meanwhile [`Deque::backlog`] counts it as
    /// scheduled. A consumer waiting in [`Deque::pop_front_timeout`] or
    /// [`Deque::lease_timeout`] is woken when it becomes due. Once due, it
    /// goes before plain items pushed after that moment.
    ///
    /// The item is kept outside the deque's key range (see
    /// [`Cache::push_job`]): a python-diskcache `Deque` on the directory does
    /// not pop it. [`Deque::iter`], `get`, `front` and `back` show plain
    /// items only.
    ///
    /// # Errors
    ///
    /// [`Error::Encode`] when the value does not serialize, [`Error::InvalidUse`]
    /// on a read-only handle, [`Error::Timeout`] when the write lock stays taken
    /// past the timeout (on PostgreSQL: a lock wait past it), and the storage
    /// errors of a write
    /// ([the crate's errors](crate#errors)). Nothing is pushed on an error.
    ///
    /// ```
    /// use std::time::Duration;
    /// let dir = tempfile::tempdir()?;
    /// let jobs = diskq::Deque::<String>::open(dir.path())?;
    /// jobs.push_back_delayed("later", Duration::from_secs(3600))?;
    /// jobs.push_back("now")?;
    /// assert_eq!(jobs.pop_front()?.as_deref(), Some("now"));
    /// assert_eq!(jobs.pop_front()?, None, "not due for an hour");
    /// assert_eq!(jobs.backlog()?.scheduled, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn push_back_delayed<Q: Serialize + ?Sized>(&self, value: &Q, delay: Duration) -> Result<()>
    where
        T: Borrow<Q>,
    {
        self.push_back_with(value, &PushOptions::new().delay(delay)).map(drop)
    }

    /// Appends an item with options: a delay or due time, a priority
    /// (higher first; plain items are 0; FIFO within a priority), a
    /// uniqueness key. `false` when the unique key is taken by an item of
    /// the deque that is queued, scheduled or leased: nothing was pushed.
    /// The prefix of `opts` must be `None`, and `maxlen` does not bound jobs.
    ///
    /// # Errors
    ///
    /// [`Error::Encode`] when the value does not serialize, [`Error::InvalidUse`]
    /// when `opts` names a prefix (a deque has its own queue) or on a read-only
    /// handle, [`Error::Timeout`] when the write lock stays taken past the
    /// timeout (on PostgreSQL: a lock wait past it, such as a push of the same
    /// unique key by another client that does not commit), and the storage
    /// errors of a write
    /// ([the crate's errors](crate#errors)). A taken unique key is not an error
    /// (`Ok(false)`).
    ///
    /// ```
    /// use diskq::PushOptions;
    /// let dir = tempfile::tempdir()?;
    /// let jobs = diskq::Deque::<String>::open(dir.path())?;
    /// jobs.push_back("plain")?;
    /// assert!(jobs.push_back_with("urgent", &PushOptions::new().priority(9))?);
    /// let once = PushOptions::new().unique_key("report-2026-12-01");
    /// assert!(jobs.push_back_with("report", &once)?);
    /// assert!(!jobs.push_back_with("report", &once)?, "already queued");
    /// assert_eq!(jobs.pop_front_many(3)?, ["urgent", "plain", "report"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn push_back_with<Q: Serialize + ?Sized>(&self, value: &Q, opts: &PushOptions) -> Result<bool>
    where
        T: Borrow<Q>,
    {
        if opts.prefix.is_some() {
            return Err(Error::InvalidUse(
                "a deque pushes to the integer-keyed queue: no prefix".into(),
            ));
        }
        if !opts.is_job() {
            let opts = PushOptions {
                side: Side::Back,
                ..opts.clone()
            };
            return match self.maxlen {
                None => self.cache.push_with(value, &opts).map(|_| true),
                Some(maxlen) => self.cache.transact(|c| {
                    c.push_with(value, &opts)?;
                    self.trim(maxlen, &FRONT).map(|()| true)
                }),
            };
        }
        Ok(self.cache.push_job(value, opts)?.is_some())
    }

    /// Appends every item at the back in one transaction (all or none);
    /// the items are `&T` or a borrowed form, like [`Deque::push_back`].
    ///
    /// # Errors
    ///
    /// [`Error::Encode`] when the item cannot be serialized (then none is
    /// pushed); the errors of any write ([the crate's errors](crate#errors)):
    /// [`Error::Timeout`] when the write lock stays taken past the timeout,
    /// [`Error::InvalidUse`] on a read-only handle.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let jobs = diskq::Deque::<String>::open(dir.path())?;
    /// jobs.extend(["a", "b"])?;
    /// jobs.extend(&["c".to_string()])?;
    /// assert_eq!(jobs.len()?, 3);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn extend<'a, Q, I>(&self, values: I) -> Result<()>
    where
        Q: Serialize + ?Sized + 'a,
        T: Borrow<Q>,
        I: IntoIterator<Item = &'a Q>,
    {
        let Some(maxlen) = self.maxlen else {
            // One transaction already; no savepoint needed around it.
            self.cache.push_many(values, &PushOptions::default())?;
            return Ok(());
        };
        self.cache.transact(|c| {
            c.push_many(values, &PushOptions::default())?;
            self.trim(maxlen, &FRONT)
        })
    }

    /// Removes and returns the front item.
    ///
    /// # Errors
    ///
    /// An item that does not decode as `T` (a tuple a Python `Deque`
    /// appended is a pickle) fails with [`Error::Pickled`] or
    /// [`Error::Decode`] naming its key and stays in place;
    /// [`Deque::dead_letter_undecodable`] moves it out of the way.
    ///
    /// The errors of any write ([the crate's errors](crate#errors)):
    /// [`Error::Timeout`] when the write lock stays taken past the timeout,
    /// [`Error::InvalidUse`] on a read-only handle.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let jobs: diskq::Deque<String> = diskq::Deque::open(dir.path())?;
    /// jobs.extend(["first", "second"])?;
    /// assert_eq!(jobs.pop_front()?.as_deref(), Some("first"));
    /// assert_eq!(jobs.pop_front()?.as_deref(), Some("second"));
    /// assert_eq!(jobs.pop_front()?, None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn pop_front(&self) -> Result<Option<T>> {
        Ok(self.cache.pull_with(&FRONT)?.map(|(_, v)| v))
    }

    /// Removes and returns the back item.
    ///
    /// # Errors
    ///
    /// As [`Deque::pop_front`]: an item that does not decode as `T` fails with
    /// [`Error::Pickled`] or [`Error::Decode`] naming its key and stays in
    /// place.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let stack: diskq::Deque<u8> = diskq::Deque::open(dir.path())?;
    /// stack.extend(&[1, 2, 3])?;
    /// assert_eq!(stack.pop_back()?, Some(3));
    /// assert_eq!(stack.pop_back()?, Some(2));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn pop_back(&self) -> Result<Option<T>> {
        Ok(self.cache.pull_with(&BACK)?.map(|(_, v)| v))
    }

    /// Removes up to `n` items from the front in one transaction, in order.
    ///
    /// # Errors
    ///
    /// [`Error::Decode`] or [`Error::Pickled`], naming the key, when an item
    /// does not decode as `T`: then none is removed. The errors of any write
    /// ([the crate's errors](crate#errors)): [`Error::Timeout`] when the write
    /// lock stays taken past the timeout, [`Error::InvalidUse`] on a read-only
    /// handle.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let jobs: diskq::Deque<u32> = diskq::Deque::open(dir.path())?;
    /// jobs.extend(&[1, 2, 3, 4, 5])?;
    /// assert_eq!(jobs.pop_front_many(3)?, [1, 2, 3]);
    /// assert_eq!(jobs.pop_front_many(10)?, [4, 5]);
    /// assert!(jobs.pop_front_many(10)?.is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn pop_front_many(&self, n: usize) -> Result<Vec<T>> {
        Ok(self.cache.pull_many(n, &FRONT)?.into_iter().map(|(_, v)| v).collect())
    }

    /// Removes up to `n` items from the back in one transaction, back first.
    ///
    /// # Errors
    ///
    /// [`Error::Decode`] or [`Error::Pickled`], naming the key, when an item
    /// does not decode as `T`: then none is removed. The errors of any write
    /// ([the crate's errors](crate#errors)): [`Error::Timeout`] when the write
    /// lock stays taken past the timeout, [`Error::InvalidUse`] on a read-only
    /// handle.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let jobs: diskq::Deque<u32> = diskq::Deque::open(dir.path())?;
    /// jobs.extend(&[1, 2, 3, 4, 5])?;
    /// assert_eq!(jobs.pop_back_many(2)?, [5, 4]);
    /// assert_eq!(jobs.len()?, 3);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn pop_back_many(&self, n: usize) -> Result<Vec<T>> {
        Ok(self.cache.pull_many(n, &BACK)?.into_iter().map(|(_, v)| v).collect())
    }

    /// Waits up to `timeout` for a front item pushed by any thread or
    /// process. A push by a diskq thread or process wakes the wait as soon
    /// as it commits (on Linux, other processes ring the directory's
    /// doorbell, `cache.db.bell`, watched with inotify); pushes that ring
    /// nothing (python-diskcache's, or any on a system without inotify) are
    /// noticed within [`CacheBuilder::wake_poll`](crate::CacheBuilder::wake_poll)
    /// (50 ms by default). An idle wait uses no CPU but for that poll.
    ///
    /// # Errors
    ///
    /// Returns by its own deadline, whatever the cache's timeout: `None`
    /// when no item could be taken in time, [`Error::Timeout`] when another
    /// process held the write lock for the whole wait. `Duration::MAX`
    /// waits as long as it can.
    ///
    /// Also the decode errors of [`Deque::pop_front`].
    ///
    /// ```
    /// use std::time::Duration;
    /// let dir = tempfile::tempdir()?;
    /// let jobs: diskq::Deque<String> = diskq::Deque::open(dir.path())?;
    /// let producer = {
    ///     let jobs = jobs.clone();
    ///     std::thread::spawn(move || jobs.push_back("wake up"))
    /// };
    /// // Blocks until the push commits (or 10 s pass).
    /// assert_eq!(jobs.pop_front_timeout(Duration::from_secs(10))?.as_deref(), Some("wake up"));
    /// producer.join().expect("no panic")?;
    /// assert_eq!(jobs.pop_front_timeout(Duration::from_millis(1))?, None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn pop_front_timeout(&self, timeout: Duration) -> Result<Option<T>> {
        self.pop_timeout(Side::Front, timeout)
    }

    /// [`Deque::pop_front_timeout`] at the back.
    ///
    /// # Errors
    ///
    /// As [`Deque::pop_front_timeout`].
    ///
    /// ```
    /// use std::time::Duration;
    /// let dir = tempfile::tempdir()?;
    /// let jobs: diskq::Deque<u8> = diskq::Deque::open(dir.path())?;
    /// jobs.extend(&[1, 2])?;
    /// assert_eq!(jobs.pop_back_timeout(Duration::from_millis(10))?, Some(2));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn pop_back_timeout(&self, timeout: Duration) -> Result<Option<T>> {
        self.pop_timeout(Side::Back, timeout)
    }

    fn pop_timeout(&self, side: Side, timeout: Duration) -> Result<Option<T>> {
        let opts = if side == Side::Front { &FRONT } else { &BACK };
        Ok(self.cache.pull_timeout(opts, timeout)?.map(|(_, v)| v))
    }

    /// Leases the front item for `duration`: at-least-once delivery, for
    /// work that must not be lost when a consumer dies (see [`Lease`]). The
    /// item stays in the deque (and in [`Deque::len`]) but no other pop or
    /// lease takes it until the lease is acked, nacked or runs out; then the
    /// next lease gets it first. Use [`Deque::pop_front`] when losing an item
    /// to a crash is acceptable: it is one write cheaper.
    ///
    /// # Errors
    ///
    /// As [`Cache::lease`]: an item that does not decode as `T` fails with
    /// [`Error::Decode`] or [`Error::Pickled`] and counts as a failed delivery;
    /// [`Error::Timeout`] when the write lock stays taken past the timeout;
    /// [`Error::InvalidUse`] on a read-only handle; [`Error::InvalidSetting`]
    /// for a zero `duration`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use diskq::{Deque, Side};
    /// let dir = tempfile::tempdir()?;
    /// let jobs: Deque<String> = Deque::open(dir.path())?;
    /// jobs.push_back("fetch https://example.com/")?;
    /// let job = jobs.lease(Duration::from_secs(60))?.expect("a job");
    /// // ... do the work; a crash here leaves the job to the next lease ...
    /// assert!(job.ack()?);
    /// assert!(jobs.is_empty()?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn lease(&self, duration: Duration) -> Result<Option<Lease<T>>> {
        self.cache.lease(&LeaseOptions::new(duration))
    }

    /// [`Deque::lease`] with a delivery limit and a dead-letter queue (the
    /// prefix of `opts` must be `None`: a deque is the integer-keyed queue).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidUse`] when `opts` names a prefix; otherwise as
    /// [`Deque::lease`].
    ///
    /// ```
    /// use std::time::Duration;
    /// use diskq::{LeaseOptions, Side};
    /// let dir = tempfile::tempdir()?;
    /// let jobs: diskq::Deque<String> = diskq::Deque::open(dir.path())?;
    /// jobs.push_back("flaky")?;
    /// let opts = LeaseOptions::new(Duration::from_secs(30)).max_deliveries(2);
    /// jobs.lease_with(&opts)?.expect("first delivery").nack(Side::Front)?;
    /// jobs.lease_with(&opts)?.expect("second delivery").nack(Side::Front)?; // the last one
    /// assert!(jobs.lease_with(&opts)?.is_none(), "in the dead-letter queue now");
    /// assert_eq!(jobs.pop_dead_letter(&opts)?.as_deref(), Some("flaky"));
    /// // A deque leases from its own queue only.
    /// assert!(jobs.lease_with(&opts.clone().prefix("other")).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn lease_with(&self, opts: &LeaseOptions) -> Result<Option<Lease<T>>> {
        Self::deque_options(opts)?;
        self.cache.lease(opts)
    }

    /// [`Deque::lease_with`], waiting up to `wait` for an item pushed by any
    /// process or freed by a lease that ran out. Returns by its own deadline
    /// (see [`Cache::lease_timeout`]).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidUse`] when `opts` names a prefix; [`Error::Timeout`]
    /// when another process held the write lock for the whole wait; the decode
    /// errors of [`Deque::lease`].
    ///
    /// ```
    /// use std::time::Duration;
    /// let dir = tempfile::tempdir()?;
    /// let jobs: diskq::Deque<String> = diskq::Deque::open(dir.path())?;
    /// let opts = diskq::LeaseOptions::new(Duration::from_secs(30));
    /// assert!(jobs.lease_timeout(&opts, Duration::from_millis(10))?.is_none());
    /// jobs.push_back("job")?;
    /// let lease = jobs.lease_timeout(&opts, Duration::from_secs(10))?.expect("queued");
    /// assert_eq!(lease.value(), "job");
    /// assert!(lease.ack()?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn lease_timeout(&self, opts: &LeaseOptions, wait: Duration) -> Result<Option<Lease<T>>> {
        Self::deque_options(opts)?;
        self.cache.lease_timeout(opts, wait)
    }

    /// The way past an item that [`Deque::pop_front`] (or `pop_back`, for
    /// `Side::Back`) cannot decode as `T`, such as a tuple a Python `Deque`
    /// appended (pickled): a pop of it fails with [`Error::Pickled`] or
    /// [`Error::Decode`] naming its key and leaves it in place, so every
    /// consumer would meet it again. This moves it, undecoded and whole, to
    /// the back of the dead-letter queue (prefix `"dead-letter"`, where
    /// [`Deque::pop_dead_letter`] and [`Deque::requeue_dead_letters`] with
    /// default [`LeaseOptions`] find it) and returns the key it had.
    ///
    /// `None`, moving nothing, when the deque is empty or that end decodes
    /// as `T`: a consumer that lost a race for the bad item to another one
    /// never moves a good item. See [`Cache::dead_letter_undecodable`].
    ///
    /// # Errors
    ///
    /// The errors of any write ([the crate's errors](crate#errors)):
    /// [`Error::Timeout`] when the write lock stays taken past the timeout,
    /// [`Error::InvalidUse`] on a read-only handle; [`Error::InvalidUse`] when
    /// the dead-letter queue's key range is used up. An item that decodes is
    /// not an error (`Ok(None)`).
    ///
    /// ```
    /// use diskq::{Deque, Side};
    /// let dir = tempfile::tempdir()?;
    /// let strings: Deque<String> = Deque::open(dir.path())?;
    /// strings.cache().push(&7)?; // not a string
    /// strings.push_back("next")?;
    /// let err = strings.pop_front().expect_err("7 is not a String");
    /// assert!(err.is_decode());
    /// assert!(strings.dead_letter_undecodable(Side::Front)?.is_some());
    /// assert_eq!(strings.pop_front()?.as_deref(), Some("next"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn dead_letter_undecodable(&self, side: Side) -> Result<Option<crate::Key>> {
        self.cache
            .dead_letter_undecodable::<T>(if side == Side::Front { &FRONT } else { &BACK })
    }

    /// Takes the front item of the dead-letter queue of `opts`: items that
    /// reached `max_deliveries`.
    ///
    /// # Errors
    ///
    /// [`Error::Decode`] or [`Error::Pickled`], naming the key, when an item
    /// does not decode as `T` (it then stays); the errors of any write ([the
    /// crate's errors](crate#errors)): [`Error::Timeout`] when the write lock
    /// stays taken past the timeout, [`Error::InvalidUse`] on a read-only
    /// handle.
    ///
    /// ```
    /// use std::time::Duration;
    /// use diskq::{LeaseOptions, Side};
    /// let dir = tempfile::tempdir()?;
    /// let jobs: diskq::Deque<String> = diskq::Deque::open(dir.path())?;
    /// jobs.push_back("poison")?;
    /// let opts = LeaseOptions::new(Duration::from_secs(30)).max_deliveries(1);
    /// jobs.lease_with(&opts)?.expect("delivered").nack(Side::Back)?; // gives up: dead letter
    /// assert_eq!(jobs.pop_dead_letter(&opts)?.as_deref(), Some("poison"));
    /// assert_eq!(jobs.pop_dead_letter(&opts)?, None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn pop_dead_letter(&self, opts: &LeaseOptions) -> Result<Option<T>> {
        let pull = PullOptions {
            prefix: Some(opts.dead_letter_prefix()),
            side: Side::Front,
            retry: opts.retry,
        };
        Ok(self.cache.pull_with(&pull)?.map(|(_, v)| v))
    }

    /// The dead letters of `opts`, front first, `limit` at most, with their
    /// delivery counts and last errors (see [`Cache::dead_letters`]). A read:
    /// nothing is taken.
    ///
    /// # Errors
    ///
    /// Only the storage errors of a read ([the crate's errors](crate#errors)).
    ///
    /// ```
    /// use std::time::Duration;
    /// use diskq::{LeaseOptions, NackOptions};
    /// let dir = tempfile::tempdir()?;
    /// let jobs: diskq::Deque<String> = diskq::Deque::open(dir.path())?;
    /// jobs.push_back("poison")?;
    /// let opts = LeaseOptions::new(Duration::from_secs(30)).max_deliveries(1);
    /// jobs.lease_with(&opts)?.expect("delivered").nack_with(&NackOptions::new().error("panicked"))?;
    /// let dead = jobs.dead_letters(&opts, 10)?;
    /// assert_eq!(dead[0].last_error.as_deref(), Some("panicked"));
    /// assert_eq!(jobs.pop_dead_letter(&opts)?.as_deref(), Some("poison"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn dead_letters(&self, opts: &LeaseOptions, limit: usize) -> Result<Vec<crate::DeadLetter>> {
        Self::deque_options(opts)?;
        self.cache.dead_letters(opts, limit)
    }

    /// Moves every dead letter of `opts` back to the back of the deque.
    ///
    /// # Errors
    ///
    /// The errors of any write ([the crate's errors](crate#errors)):
    /// [`Error::Timeout`] when the write lock stays taken past the timeout,
    /// [`Error::InvalidUse`] on a read-only handle; [`Error::InvalidUse`] when
    /// the deque's key range is used up.
    ///
    /// ```
    /// use std::time::Duration;
    /// use diskq::{LeaseOptions, Side};
    /// let dir = tempfile::tempdir()?;
    /// let jobs: diskq::Deque<String> = diskq::Deque::open(dir.path())?;
    /// jobs.push_back("retry me")?;
    /// let opts = LeaseOptions::new(Duration::from_secs(30)).max_deliveries(1);
    /// jobs.lease_with(&opts)?.expect("delivered").nack(Side::Back)?;
    /// assert!(jobs.lease_with(&opts)?.is_none());
    /// // After fixing the cause: back into the queue, delivery count reset.
    /// assert_eq!(jobs.requeue_dead_letters(&opts)?, 1);
    /// let again = jobs.lease_with(&opts)?.expect("queued again");
    /// assert_eq!(again.deliveries(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn requeue_dead_letters(&self, opts: &LeaseOptions) -> Result<usize> {
        Self::deque_options(opts)?;
        self.cache.requeue_dead_letters(opts)
    }

    /// Items queued and items leased, in one snapshot (see [`Cache::backlog`]):
    /// a deque whose backlog is empty has no work left, even if its cache
    /// holds other keys.
    ///
    /// # Errors
    ///
    /// Only the storage errors of a read ([the crate's errors](crate#errors)).
    ///
    /// ```
    /// use std::time::Duration;
    /// let dir = tempfile::tempdir()?;
    /// let jobs: diskq::Deque<u32> = diskq::Deque::open(dir.path())?;
    /// jobs.extend(&[1, 2, 3])?;
    /// let _held = jobs.lease(Duration::from_secs(30))?.expect("queued");
    /// let backlog = jobs.backlog()?;
    /// assert_eq!((backlog.queued, backlog.leased), (2, 1));
    /// assert!(!backlog.is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn backlog(&self) -> Result<Backlog> {
        self.cache.backlog(None)
    }

    /// The deque's running leases (taken by any process, not acked or
    /// nacked yet), the first to run out first, `limit` at most (see
    /// [`Cache::running_leases`]).
    ///
    /// # Errors
    ///
    /// Only the storage errors of a read ([the crate's errors](crate#errors)).
    ///
    /// ```
    /// use std::time::Duration;
    /// let dir = tempfile::tempdir()?;
    /// let jobs: diskq::Deque<u32> = diskq::Deque::open(dir.path())?;
    /// jobs.extend(&[1, 2, 3])?;
    /// let short = jobs.lease(Duration::from_secs(10))?.expect("queued");
    /// let long = jobs.lease(Duration::from_secs(60))?.expect("queued");
    /// let running = jobs.running_leases(10)?;
    /// assert_eq!(running.len(), 2);
    /// assert_eq!((running[0].deadline, running[1].deadline), (short.deadline(), long.deadline()));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn running_leases(&self, limit: usize) -> Result<Vec<crate::RunningLease>> {
        self.cache.running_leases(None, limit)
    }

    /// The deque's counters: pushed, popped, leased, acked, nacked,
    /// redelivered, dead-lettered, scheduled (see [`QueueStats`]).
    ///
    /// # Errors
    ///
    /// The storage errors of a read ([the crate's errors](crate#errors)).
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let jobs = diskq::Deque::<u32>::open(dir.path())?;
    /// jobs.extend(&[1, 2])?;
    /// jobs.pop_front_many(5)?;
    /// assert_eq!((jobs.stats()?.pushed, jobs.stats()?.popped), (2, 2));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn stats(&self) -> Result<QueueStats> {
        self.cache.queue_stats(None)
    }

    fn deque_options(opts: &LeaseOptions) -> Result<()> {
        match opts.prefix {
            None => Ok(()),
            Some(_) => Err(Error::InvalidUse(
                "a deque leases from the integer-keyed queue: no prefix".into(),
            )),
        }
    }

    /// The front item, left in place.
    ///
    /// # Errors
    ///
    /// [`Error::Decode`] or [`Error::Pickled`], naming the key, when an item
    /// does not decode as `T`; the storage errors of a read ([the crate's
    /// errors](crate#errors)).
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let jobs: diskq::Deque<u32> = diskq::Deque::open(dir.path())?;
    /// assert_eq!(jobs.front()?, None);
    /// jobs.extend(&[1, 2])?;
    /// assert_eq!(jobs.front()?, Some(1));
    /// assert_eq!(jobs.len()?, 2, "left in place");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn front(&self) -> Result<Option<T>> {
        Ok(self.cache.peek_with(&FRONT)?.map(|(_, v)| v))
    }

    /// The back item, left in place.
    ///
    /// # Errors
    ///
    /// [`Error::Decode`] or [`Error::Pickled`], naming the key, when an item
    /// does not decode as `T`; the storage errors of a read ([the crate's
    /// errors](crate#errors)).
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let jobs: diskq::Deque<u32> = diskq::Deque::open(dir.path())?;
    /// jobs.extend(&[1, 2])?;
    /// assert_eq!(jobs.back()?, Some(2));
    /// assert_eq!(jobs.len()?, 2, "left in place");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn back(&self) -> Result<Option<T>> {
        Ok(self.cache.peek_with(&BACK)?.map(|(_, v)| v))
    }

    /// The item at position `index` from the front.
    ///
    /// # Errors
    ///
    /// [`Error::Decode`] or [`Error::Pickled`], naming the key, when an item
    /// does not decode as `T`; [`Error::InvalidUse`] for an `index` above
    /// `i64::MAX`; the storage errors of a read ([the crate's
    /// errors](crate#errors)).
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let letters: diskq::Deque<char> = diskq::Deque::open(dir.path())?;
    /// letters.extend(&['a', 'b', 'c'])?;
    /// assert_eq!(letters.get(1)?, Some('b'));
    /// assert_eq!(letters.get(3)?, None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get(&self, index: usize) -> Result<Option<T>> {
        let n = i64::try_from(index).map_err(|_| Error::InvalidUse("index out of range".into()))?;
        self.cache.store().read(|s| match s.queue_nth(n, self.cache.now())? {
            Some((_, key, Some(mut row))) => self.cache.load(&mut row)?.map(|st| codec::decode(st, &key)).transpose(),
            _ => Ok(None),
        })
    }

    /// The number of items the deque holds: queued, scheduled, leased and dead letters
    /// (not the cache's other keys; python-diskcache's `len` counts those
    /// too). Read in one snapshot, from the key index.
    ///
    /// # Errors
    ///
    /// Only the storage errors of a read ([the crate's errors](crate#errors)).
    ///
    /// ```
    /// use std::time::Duration;
    /// let dir = tempfile::tempdir()?;
    /// let jobs: diskq::Deque<u32> = diskq::Deque::open(dir.path())?;
    /// jobs.extend(&[1, 2])?;
    /// let _lease = jobs.lease(Duration::from_secs(30))?;
    /// assert_eq!(jobs.len()?, 2, "a leased item still counts");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn len(&self) -> Result<usize> {
        let (lo, hi) = bounds(None);
        let (dead_lo, dead_hi) = bounds(Some(DEAD_LETTERS));
        let n = self.cache.store().read_snapshot(|s| {
            let now = self.cache.now();
            let jobs = s.job_counts("", now)?;
            Ok(s.queue_len((&lo, &hi), now)?
                + s.leases_of("")?
                + s.queue_len((&dead_lo, &dead_hi), now)?
                + jobs.ready
                + jobs.scheduled
                + jobs.leased)
        })?;
        Ok(usize::try_from(n).unwrap_or(0))
    }

    /// True when the deque holds no item (queued, leased or dead letter),
    /// whatever else its cache holds.
    ///
    /// # Errors
    ///
    /// Only the storage errors of a read ([the crate's errors](crate#errors)).
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let jobs: diskq::Deque<u32> = diskq::Deque::open(dir.path())?;
    /// assert!(jobs.is_empty()?);
    /// jobs.push_back(&1)?;
    /// assert!(!jobs.is_empty()?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// Removes every item the deque holds (queued, leased and dead letters;
    /// a held lease's ack then returns false); returns how many. The
    /// cache's other keys stay (python-diskcache's `clear` removes them).
    /// Runs in batches, each its own transaction, as [`Cache::clear`].
    ///
    /// # Errors
    ///
    /// The errors of any write ([the crate's errors](crate#errors)):
    /// [`Error::Timeout`] when the write lock stays taken past the timeout,
    /// [`Error::InvalidUse`] on a read-only handle. A batch that fails leaves
    /// the batches before it done.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let jobs: diskq::Deque<u32> = diskq::Deque::open(dir.path())?;
    /// jobs.extend(&[1, 2, 3])?;
    /// assert_eq!(jobs.clear()?, 3);
    /// assert!(jobs.is_empty()?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn clear(&self) -> Result<usize> {
        let leased = self.cache.store().write(false, None, |s| {
            let jobs = s.delete_queue_jobs("")?;
            Ok(jobs + s.delete_queue_leases("")?)
        })?;
        Ok(leased + self.cache.clear_queue(None)? + self.cache.clear_queue(Some(DEAD_LETTERS))?)
    }

    /// The items from front to back; `.rev()` walks from the back. Each
    /// item is a `Result` (a page may fail to read, an item may not decode
    /// as `T`). `&Deque` is also [`IntoIterator`], for a `for` loop.
    ///
    /// # Errors
    ///
    /// None at present: the walk reads nothing before the first `next`, so
    /// the errors come with the items (each a `Result`: a page that cannot
    /// be read, an item that does not decode as `T`).
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let jobs = diskq::Deque::<String>::open(dir.path())?;
    /// jobs.extend(["a", "b", "c"])?;
    /// let newest_first: Vec<String> = jobs.iter()?.rev().collect::<Result<_, _>>()?;
    /// assert_eq!(newest_first, ["c", "b", "a"]);
    /// for job in &jobs {
    ///     println!("{}", job?);
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn iter(&self) -> Result<Iter<T>> {
        Ok(self.into_iter())
    }

    /// Pops items from the front until the deque is empty: the consumer
    /// loop `while let Some(item) = deque.pop_front()? { ... }` as an
    /// iterator. Unlike `Vec::drain`, it removes nothing it does not yield:
    /// dropping it early leaves the rest in place.
    ///
    /// Each item is popped in its own transaction when `next` is called, so
    /// items pushed meanwhile (by any process) are drained too, and several
    /// processes may drain one deque, each item going to one of them. A
    /// yielded item is already removed: if the process crashes before it is
    /// done with it, that item is lost and the rest stay queued (a pop is
    /// at-most-once; lease instead, [`Deque::lease`], for at-least-once).
    /// An error (an item that does not decode as `T` stays at the front;
    /// the database is busy past the timeout) is yielded once and ends the
    /// iteration, which is fused.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let jobs = diskq::Deque::<u32>::open(dir.path())?;
    /// jobs.extend(&[1, 2, 3])?;
    /// let mut done = 0;
    /// for job in jobs.drain() {
    ///     done += job?;
    /// }
    /// assert_eq!(done, 6);
    /// assert!(jobs.is_empty()?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn drain(&self) -> Drain<T> {
        Drain {
            deque: self.clone(),
            done: false,
        }
    }

    /// Moves `n` items from the front to the back, in one transaction
    /// (`VecDeque::rotate_left`).
    ///
    /// # Errors
    ///
    /// The errors of any write ([the crate's errors](crate#errors)):
    /// [`Error::Timeout`] when the write lock stays taken past the timeout,
    /// [`Error::InvalidUse`] on a read-only handle.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let ring: diskq::Deque<u32> = diskq::Deque::open(dir.path())?;
    /// ring.extend(&[1, 2, 3, 4])?;
    /// ring.rotate_left(1)?;
    /// assert_eq!(ring.iter()?.collect::<Result<Vec<_>, _>>()?, [2, 3, 4, 1]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn rotate_left(&self, n: usize) -> Result<()> {
        self.rotate(n, Side::Front)
    }

    /// Moves `n` items from the back to the front, in one transaction
    /// (`VecDeque::rotate_right`).
    ///
    /// # Errors
    ///
    /// The errors of any write ([the crate's errors](crate#errors)):
    /// [`Error::Timeout`] when the write lock stays taken past the timeout,
    /// [`Error::InvalidUse`] on a read-only handle.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let ring: diskq::Deque<u32> = diskq::Deque::open(dir.path())?;
    /// ring.extend(&[1, 2, 3, 4])?;
    /// ring.rotate_right(1)?;
    /// assert_eq!(ring.iter()?.collect::<Result<Vec<_>, _>>()?, [4, 1, 2, 3]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn rotate_right(&self, n: usize) -> Result<()> {
        self.rotate(n, Side::Back)
    }

    fn rotate(&self, n: usize, from: Side) -> Result<()> {
        self.cache.transact(|c| {
            let len = self.cache.queue_len(None)?;
            if len == 0 {
                return Ok(());
            }
            for _ in 0..n % len {
                // The row is renumbered in place: no value is read or rewritten.
                c.requeue(from)?;
            }
            Ok(())
        })
    }

    /// Keeps only the items for which `keep` returns true, in one transaction.
    ///
    /// # Errors
    ///
    /// [`Error::Decode`] or [`Error::Pickled`], naming the key, when an item
    /// does not decode as `T`: then nothing is removed. The errors of any write
    /// ([the crate's errors](crate#errors)): [`Error::Timeout`] when the write
    /// lock stays taken past the timeout, [`Error::InvalidUse`] on a read-only
    /// handle.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let numbers: diskq::Deque<u32> = diskq::Deque::open(dir.path())?;
    /// numbers.extend(&[1, 2, 3, 4, 5, 6])?;
    /// numbers.retain(|n| n % 2 == 0)?;
    /// assert_eq!(numbers.iter()?.collect::<Result<Vec<_>, _>>()?, [2, 4, 6]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn retain(&self, mut keep: impl FnMut(&T) -> bool) -> Result<()> {
        self.cache.transact(|c| {
            let mut drop = Vec::new();
            let mut pager = c.queue_pager();
            while let Some(row) = pager.next_row() {
                let (key, stored) = row?;
                if let Some(stored) = stored {
                    let value: T = codec::decode(stored, &key)?;
                    if !keep(&value) {
                        drop.push(key);
                    }
                }
            }
            for key in drop {
                c.delete(key)?;
            }
            Ok(())
        })
    }

    /// Runs `f` in one transaction: the deque operations it calls (on this
    /// thread) are atomic together, across processes.
    ///
    /// # Errors
    ///
    /// As [`Cache::transact`]: `f`'s own error after the rollback, or the
    /// transaction's [`Error::Timeout`] (and the other errors of a write)
    /// converted into `E`.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let jobs: diskq::Deque<u32> = diskq::Deque::open(dir.path())?;
    /// jobs.extend(&[1, 2, 3])?;
    /// // Move the front item to the back, atomically for every process.
    /// jobs.transact(|d| {
    ///     if let Some(first) = d.pop_front()? {
    ///         d.push_back(&first)?;
    ///     }
    ///     Ok::<_, diskq::Error>(())
    /// })?;
    /// assert_eq!(jobs.iter()?.collect::<Result<Vec<_>, _>>()?, [2, 3, 1]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn transact<R, E: From<Error>>(&self, f: impl FnOnce(&Deque<T>) -> Result<R, E>) -> Result<R, E> {
        self.cache.transact(|_| f(self))
    }
}

/// The items of a [`Deque`] from front to back (double-ended), from
/// [`Deque::iter`]. Items are read a page (100 items, one snapshot) at a
/// time: an item popped before its page is read is skipped.
///
/// ```
/// let dir = tempfile::tempdir()?;
/// let jobs: diskq::Deque<u32> = diskq::Deque::open(dir.path())?;
/// jobs.extend(&[1, 2, 3])?;
/// let iter: diskq::deque::Iter<u32> = jobs.iter()?;
/// let backwards: Vec<u32> = iter.rev().collect::<Result<_, _>>()?;
/// assert_eq!(backwards, [3, 2, 1]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Iter<T> {
    pager: Pager,
    _items: PhantomData<fn() -> T>,
}

fn decoded<T: DeserializeOwned>(row: Result<(crate::Key, Option<codec::Stored>)>) -> Option<Result<T>> {
    match row {
        Ok((key, Some(stored))) => Some(codec::decode(stored, &key)),
        Ok((key, None)) => Some(Err(Error::Corrupt(format!("no value was read for key {key}")))),
        Err(e) => Some(Err(e)),
    }
}

impl<T: DeserializeOwned> Iterator for Iter<T> {
    type Item = Result<T>;

    fn next(&mut self) -> Option<Result<T>> {
        decoded(self.pager.next_row()?)
    }
}

impl<T: DeserializeOwned> DoubleEndedIterator for Iter<T> {
    fn next_back(&mut self) -> Option<Result<T>> {
        decoded(self.pager.next_back_row()?)
    }
}

impl<T: DeserializeOwned> std::iter::FusedIterator for Iter<T> {}

/// `for item in &deque`: the items from front to back, as [`Deque::iter`]
/// (which cannot fail for a deque: the walk reads nothing until `next`).
impl<T: Serialize + DeserializeOwned> IntoIterator for &Deque<T> {
    type Item = Result<T>;
    type IntoIter = Iter<T>;

    fn into_iter(self) -> Iter<T> {
        Iter {
            pager: self.cache.queue_pager(),
            _items: PhantomData,
        }
    }
}

/// Pops the items of a [`Deque`] from the front, one transaction each, until
/// it is empty; from [`Deque::drain`].
///
/// ```
/// let dir = tempfile::tempdir()?;
/// let jobs: diskq::Deque<String> = diskq::Deque::open(dir.path())?;
/// jobs.extend(["a", "b"])?;
/// let drain: diskq::deque::Drain<String> = jobs.drain();
/// let done: Vec<String> = drain.collect::<Result<_, _>>()?;
/// assert_eq!(done, ["a", "b"]);
/// assert!(jobs.is_empty()?);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Drain<T> {
    deque: Deque<T>,
    done: bool,
}

impl<T: Serialize + DeserializeOwned> Iterator for Drain<T> {
    type Item = Result<T>;

    fn next(&mut self) -> Option<Result<T>> {
        if self.done {
            return None;
        }
        match self.deque.pop_front() {
            Ok(Some(item)) => Some(Ok(item)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

impl<T: Serialize + DeserializeOwned> std::iter::FusedIterator for Drain<T> {}
