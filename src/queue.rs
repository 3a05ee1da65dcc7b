//! Queue operations of `Cache`: push, pull, peek (python-diskcache's
//! numbering) and the first and last items.

use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::cache::{Cache, is_live, new_row};
use crate::codec::{self, Scalar};
use crate::error::{Error, Result};
use crate::key::Key;
use crate::options::{PullOptions, PushOptions, Side};
use crate::store::{Counter, QUEUE_BOUND, Session};

/// The first number of an empty queue, as python-diskcache numbers them.
pub(crate) const FIRST_NUMBER: i64 = 500_000_000_000_000;

/// The key range of a queue: integers, or `"<prefix>-<15 digits>"` text
/// (python-diskcache's bounds, both exclusive). The store's queue statements
/// also check each key's shape (an integer; `<prefix>-` and exactly 15
/// digits), as the range of `jobs` holds the keys of queue `jobs-2` too.
pub(crate) fn bounds(prefix: Option<&str>) -> (Scalar, Scalar) {
    match prefix {
        None => (Scalar::Int(0), Scalar::Int(QUEUE_BOUND)),
        Some(p) => (
            Scalar::Text(format!("{p}-000000000000000")),
            Scalar::Text(format!("{p}-{QUEUE_BOUND}")),
        ),
    }
}

pub(crate) fn number_of(key: &Key) -> Result<i64> {
    match key {
        Key::Int(n) => Ok(*n),
        Key::Text(s) => s
            .rsplit('-')
            .next()
            .and_then(|digits| digits.parse().ok())
            .ok_or_else(|| Error::Corrupt(format!("queue key {s:?} does not end in a number"))),
        other => Err(Error::Corrupt(format!("queue key {other} is not an integer or text"))),
    }
}

pub(crate) fn key_of(prefix: Option<&str>, number: i64) -> Key {
    match prefix {
        None => Key::Int(number),
        Some(p) => Key::Text(format!("{p}-{number:015}")),
    }
}

impl Cache {
    /// Pushes `value` onto the back of the integer-keyed queue; returns its key.
    ///
    /// A python-diskcache `Cache.push` / `Deque` on the same directory sees
    /// the same queue. As there, the queue is the range of integer keys
    /// between 0 and 999999999999999: do not `set` plain integer keys in that
    /// range on a cache used as a queue (or give the queue a prefix). Keys of
    /// other kinds (text, bytes, floats) are never items of this queue.
    ///
    /// # Errors
    ///
    /// [`Error::Encode`] when the value cannot be serialized (a serde error,
    /// such as a map with non-text keys or a failing `Serialize` impl);
    /// [`Error::InvalidUse`] when the queue's key range is used up; the errors
    /// of any write ([the crate's errors](crate#errors)): [`Error::Timeout`]
    /// when the write lock stays taken past the timeout, [`Error::InvalidUse`]
    /// on a read-only handle.
    ///
    /// ```
    /// use diskq::{Cache, Key};
    /// let dir = tempfile::tempdir()?;
    /// let cache = Cache::open(dir.path())?;
    /// assert_eq!(cache.push("first")?, Key::Int(500000000000000));
    /// cache.push("second")?;
    /// assert_eq!(cache.pull::<String>()?, Some((Key::Int(500000000000000), "first".into())));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn push<V: Serialize + ?Sized>(&self, value: &V) -> Result<Key> {
        self.push_with(value, &PushOptions::default())
    }

    /// Pushes with a queue prefix, a side, an expiry or a tag. Atomic: the
    /// key is one past the current end, and concurrent pushes get distinct keys.
    ///
    /// The queue of prefix `p` is exactly the text keys `p-` followed by 15
    /// digits (python-diskcache's `f'{prefix}-{num:015d}'`, whoever made
    /// them); the unprefixed queue is the integer keys from 1 to
    /// 999999999999998. So queues `jobs` and `jobs-2` stay apart in every
    /// push, pull, peek, lease and backlog, although the keys of `jobs-2`
    /// sort inside the range of `jobs`. python-diskcache's own `pull` with
    /// prefix `jobs` does take the items of `jobs-2` (it checks the range
    /// only): where Python pulls, use prefixes that do not extend each other.
    /// A pull of `jobs` steps over all the keys of `jobs-2` in one index
    /// seek, however many there are.
    ///
    /// # Errors
    ///
    /// As [`Cache::push`]; with `opts.retry`, a lock timeout is retried instead
    /// of returned.
    ///
    /// ```
    /// use diskq::{Cache, Key, PullOptions, PushOptions};
    /// let dir = tempfile::tempdir()?;
    /// let cache = Cache::open(dir.path())?;
    /// cache.push_with("theirs", &PushOptions::new().prefix("jobs-2"))?;
    /// let key = cache.push_with("mine", &PushOptions::new().prefix("jobs"))?;
    /// assert_eq!(key, Key::from("jobs-500000000000000"));
    /// let (_, mine): (Key, String) = cache.pull_with(&PullOptions::new().prefix("jobs"))?.expect("an item");
    /// assert_eq!(mine, "mine");
    /// assert!(cache.pull_with::<String>(&PullOptions::new().prefix("jobs"))?.is_none());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn push_with<V: Serialize + ?Sized>(&self, value: &V, opts: &PushOptions) -> Result<Key> {
        let mut keys = self.push_many(std::iter::once(value), opts)?;
        keys.pop().ok_or_else(|| {
            Error::InvalidUse(format!(
                "unique key {:?} is taken in its queue: nothing was pushed (push_job says so without an error)",
                opts.unique_key.as_deref().unwrap_or_default()
            ))
        })
    }

    /// Pushes every value in one transaction (all or none), in order: onto
    /// the back they keep their order, onto the front each goes before the
    /// previous one (as repeated pushes would). Returns their keys.
    ///
    /// One commit for the whole batch instead of one per item.
    ///
    /// # Errors
    ///
    /// [`Error::Encode`] when the value cannot be serialized (a serde error,
    /// such as a map with non-text keys or a failing `Serialize` impl), for any
    /// value (then none is pushed); [`Error::InvalidUse`] when the queue's key
    /// range is used up; the errors of any write ([the crate's
    /// errors](crate#errors)): [`Error::Timeout`] when the write lock stays
    /// taken past the timeout, [`Error::InvalidUse`] on a read-only handle.
    ///
    /// ```
    /// use diskq::{Cache, PullOptions, PushOptions};
    /// let dir = tempfile::tempdir()?;
    /// let cache = Cache::open(dir.path())?;
    /// let keys = cache.push_many(["a", "b", "c"], &PushOptions::new().prefix("jobs"))?;
    /// assert_eq!(keys.len(), 3);
    /// let taken: Vec<(diskq::Key, String)> = cache.pull_many(2, &PullOptions::new().prefix("jobs"))?;
    /// assert_eq!(taken.iter().map(|(_, v)| v.as_str()).collect::<Vec<_>>(), ["a", "b"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn push_many<'v, V, I>(&self, values: I, opts: &PushOptions) -> Result<Vec<Key>>
    where
        V: Serialize + ?Sized + 'v,
        I: IntoIterator<Item = &'v V>,
    {
        if opts.is_job() {
            return self.push_jobs(values, opts);
        }
        let prepared = self.prepare_all(values)?;
        let files = prepared.iter().filter_map(|p| p.filename.clone()).collect();
        let prefix = opts.prefix.as_deref();
        let (lo, hi) = bounds(prefix);
        self.store().push_starting();
        self.store().write_with_files(opts.set.retry, files, |s| {
            let now = self.now();
            let back = opts.side == Side::Back;
            let step = if back { 1 } else { -1 };
            let mut number = match s.queue_edge((&lo, &hi), back)? {
                Some(edge) => number_of(&edge)? + step,
                None => FIRST_NUMBER,
            };
            let expire_time = Self::expire_time(now, opts.set.expire);
            let mut keys = Vec::with_capacity(prepared.len());
            for p in &prepared {
                if number <= 0 || number >= QUEUE_BOUND {
                    return Err(Error::InvalidUse("the queue's key range is used up".into()));
                }
                let key = key_of(prefix, number);
                s.insert_row(&key, now, &new_row(p, expire_time, opts.set.tag.as_deref()))?;
                keys.push(key);
                number += step;
            }
            // One statement counts the push and tells whether any item has
            // expired (the cull's first look, usually finding none).
            let none_expired = s.count_pushes_if_none_expired(prefix.unwrap_or_default(), keys.len(), now)?;
            if !none_expired {
                s.count(prefix.unwrap_or_default(), Counter::Pushed, keys.len())?;
            }
            s.mark_pushed();
            self.cull_after_push(s, now, !none_expired)?;
            Ok(keys)
        })
    }

    /// Takes up to `n` items from one end of a queue in one transaction, in
    /// queue order. If one of them does not decode as `V`, none is taken.
    ///
    /// # Errors
    ///
    /// [`Error::Decode`] or [`Error::Pickled`] (naming the key) when one of the
    /// items does not decode as `V`: nothing is taken. The errors of any write
    /// ([the crate's errors](crate#errors)): [`Error::Timeout`] when the write
    /// lock stays taken past the timeout, [`Error::InvalidUse`] on a read-only
    /// handle.
    ///
    /// ```
    /// use diskq::PullOptions;
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::Cache::open(dir.path())?;
    /// cache.push_many(["a", "b", "c"], &diskq::PushOptions::new())?;
    /// let batch: Vec<(diskq::Key, String)> = cache.pull_many(2, &PullOptions::new())?;
    /// let values: Vec<&str> = batch.iter().map(|(_, v)| v.as_str()).collect();
    /// assert_eq!(values, ["a", "b"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn pull_many<V: DeserializeOwned>(&self, n: usize, opts: &PullOptions) -> Result<Vec<(Key, V)>> {
        self.pop_items(opts.prefix.as_deref(), n, opts.side == Side::Back, |f| {
            self.store().write(opts.retry, None, f)
        })
    }

    /// Removes and decodes the next live item at one end, inside `s`.
    pub(crate) fn pull_one<V: DeserializeOwned>(
        &self,
        s: &mut Session,
        bounds: (&Scalar, &Scalar),
        back: bool,
        now: f64,
    ) -> Result<Option<(Key, V)>> {
        loop {
            let Some((key, mut row)) = s.pull(bounds, back)? else {
                return Ok(None);
            };
            if !is_live(row.expire_time, now) {
                continue;
            }
            match self.load(&mut row)? {
                Some(stored) => return Ok(Some((key.clone(), codec::decode(stored, &key)?))),
                // Its value file is gone (check reports such rows): skip it.
                None => continue,
            }
        }
    }

    /// The live items of a queue (its own keys only), counted in the index.
    pub(crate) fn queue_len(&self, prefix: Option<&str>) -> Result<usize> {
        let (lo, hi) = bounds(prefix);
        let n = self.store().read(|s| s.queue_len((&lo, &hi), self.now()))?;
        Ok(usize::try_from(n).unwrap_or(0))
    }

    /// Removes every item of a queue, expired or not, in batches (each its
    /// own transaction, as [`Cache::clear`]); returns how many.
    pub(crate) fn clear_queue(&self, prefix: Option<&str>) -> Result<usize> {
        const BATCH: u64 = 100;
        let (lo, hi) = bounds(prefix);
        let mut total = 0;
        loop {
            let removed = self
                .store()
                .write(false, None, |s| s.delete_queue_batch((&lo, &hi), BATCH))?;
            total += removed;
            if removed == 0 {
                return Ok(total);
            }
        }
    }

    /// Moves the item at one end of the integer-keyed queue to the other end
    /// by renumbering its key; false when the queue is empty.
    pub(crate) fn requeue(&self, from: Side) -> Result<bool> {
        let (lo, hi) = bounds(None);
        self.store().write(false, None, |s| {
            let from_back = from == Side::Back;
            let Some(moving) = s.queue_edge((&lo, &hi), from_back)? else {
                return Ok(false);
            };
            let other = s.queue_edge((&lo, &hi), !from_back)?.unwrap_or_else(|| moving.clone());
            let number = number_of(&other)? + if from_back { -1 } else { 1 };
            if number <= 0 || number >= QUEUE_BOUND {
                return Err(Error::InvalidUse("the queue's key range is used up".into()));
            }
            s.rename_key(&moving, &key_of(None, number))?;
            Ok(true)
        })
    }

    /// Takes the front item of the integer-keyed queue.
    ///
    /// # Errors
    ///
    /// As [`Cache::pull_with`].
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::Cache::open(dir.path())?;
    /// let key = cache.push("job-1")?;
    /// assert_eq!(cache.pull::<String>()?, Some((key, "job-1".to_string())));
    /// assert_eq!(cache.pull::<String>()?, None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn pull<V: DeserializeOwned>(&self) -> Result<Option<(Key, V)>> {
        self.pull_with(&PullOptions::default())
    }

    /// Takes an item from either end of a queue. Atomic: two consumers never
    /// get the same item. Expired items met on the way are removed. The
    /// value is read and decoded before the removal commits, so an item whose
    /// value does not decode as `V` stays queued (and the error names its
    /// key); [`Cache::dead_letter_undecodable`] moves it out of the way.
    ///
    /// # Errors
    ///
    /// [`Error::Decode`] or [`Error::Pickled`], naming the item's key, when its
    /// value does not decode as `V` (the item stays queued). The errors of any
    /// write ([the crate's errors](crate#errors)): [`Error::Timeout`] when the
    /// write lock stays taken past the timeout, [`Error::InvalidUse`] on a
    /// read-only handle (retried with `opts.retry`).
    ///
    /// ```
    /// use diskq::{PullOptions, PushOptions, Side};
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::Cache::open(dir.path())?;
    /// let jobs = PushOptions::new().prefix("jobs");
    /// cache.push_with("old", &jobs)?;
    /// cache.push_with("new", &jobs)?;
    /// let (_, newest) = cache
    ///     .pull_with::<String>(&PullOptions::new().prefix("jobs").side(Side::Back))?
    ///     .expect("two items");
    /// assert_eq!(newest, "new");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn pull_with<V: DeserializeOwned>(&self, opts: &PullOptions) -> Result<Option<(Key, V)>> {
        self.pull_by(opts, None)
    }

    /// [`Cache::pull_with`], waiting up to `wait` for an item pushed by any
    /// thread or process. A push by a diskq thread or process wakes the
    /// wait as soon as it commits (on Linux through the directory's
    /// doorbell); pushes that ring nothing (python-diskcache's, or any on a
    /// system without inotify) are noticed within
    /// [`CacheBuilder::wake_poll`](crate::CacheBuilder::wake_poll) (50 ms by default).
    ///
    /// The call returns by its own deadline, whatever the cache's timeout:
    /// # Errors
    ///
    /// `None` when no item could be taken in time, [`Error::Timeout`] when
    /// another connection held the write lock for the whole wait. A `wait`
    /// too long for the clock (`Duration::MAX`) waits as long as it can.
    ///
    /// Also the decode errors of [`Cache::pull_with`].
    ///
    /// ```
    /// use std::time::Duration;
    /// use diskq::{Cache, PullOptions};
    /// let dir = tempfile::tempdir()?;
    /// let cache = Cache::open(dir.path())?;
    /// let jobs = PullOptions::new().prefix("jobs");
    /// assert_eq!(cache.pull_timeout::<String>(&jobs, Duration::from_millis(10))?, None);
    /// cache.push_with("resize", &diskq::PushOptions::new().prefix("jobs"))?;
    /// let (_, job) = cache.pull_timeout::<String>(&jobs, Duration::from_secs(10))?.expect("a job");
    /// assert_eq!(job, "resize");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn pull_timeout<V: DeserializeOwned>(&self, opts: &PullOptions, wait: Duration) -> Result<Option<(Key, V)>> {
        let deadline = crate::deadline::from_now(wait);
        // Watch from before the first look, so that no push is missed.
        let mut watcher = self.store().watcher()?;
        watcher.takes_from(opts.prefix.as_deref(), opts.side == Side::Back);
        let mut looked = false;
        loop {
            // The clock before the look: a job due after it wakes the wait.
            let look = self.now();
            match self.pull_by(opts, Some(deadline)) {
                Ok(Some(item)) => return Ok(Some(item)),
                Ok(None) => looked = true,
                Err(e) if e.is_timeout() => {
                    if Instant::now() < deadline {
                        // The store's timeout is shorter than the wait (or
                        // SQLite answered busy at once): try again, unhurried.
                        std::thread::sleep(Duration::from_millis(1));
                        continue;
                    }
                    return if looked { Ok(None) } else { Err(e) };
                }
                Err(e) => return Err(e),
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            // A delayed job that becomes due ends the wait, not later.
            let wake = self
                .next_job_wake(opts.prefix.as_deref(), look)?
                .map_or(deadline, |at| at.min(deadline));
            watcher.wait(wake)?;
        }
    }

    /// Waits up to `wait` until the queue `prefix` (`None`: the integer
    /// queue) holds an item ready to pull; true if it does, false once the
    /// wait is over. Takes no lock and removes nothing, so another consumer
    /// may take the item first: pull, and wait again if it did. A push by
    /// any diskq process wakes the wait at once (on Linux; elsewhere, and
    /// for python-diskcache's pushes, within [`CacheBuilder::wake_poll`](crate::CacheBuilder::wake_poll)).
    ///
    /// # Errors
    ///
    /// Only the storage errors of a read ([the crate's errors](crate#errors)).
    /// Never [`Error::Timeout`]: the wait takes no lock.
    ///
    /// ```
    /// use std::time::Duration;
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::Cache::open(dir.path())?;
    /// assert!(!cache.wait_for_queued(None, Duration::from_millis(20))?);
    /// cache.push(&"job")?;
    /// assert!(cache.wait_for_queued(None, Duration::from_secs(10))?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn wait_for_queued(&self, prefix: Option<&str>, wait: Duration) -> Result<bool> {
        let deadline = crate::deadline::from_now(wait);
        // Watch from before the first look, so that no push is missed.
        let mut watcher = self.store().watcher()?;
        loop {
            let look = self.now();
            if self.backlog(prefix)?.queued > 0 {
                return Ok(true);
            }
            if Instant::now() >= deadline {
                return Ok(false);
            }
            let wake = self
                .next_job_wake(prefix, look)?
                .map_or(deadline, |at| at.min(deadline));
            watcher.wait(wake)?;
        }
    }

    /// [`Cache::pull_with`], waiting for the write lock until `deadline` at most.
    pub(crate) fn pull_by<V: DeserializeOwned>(
        &self,
        opts: &PullOptions,
        deadline: Option<Instant>,
    ) -> Result<Option<(Key, V)>> {
        let mut items = self.pop_items(opts.prefix.as_deref(), 1, opts.side == Side::Back, |f| {
            self.store().write_by(opts.retry, deadline, f)
        })?;
        Ok(items.pop())
    }

    /// The way past an item that a pull cannot decode: moves the item at
    /// the `opts.side` end of the queue to the back of the queue's
    /// dead-letter queue (`"dead-letter"` for the integer-keyed queue,
    /// `"<prefix>-dead-letter"` for a prefixed one, as for
    /// [`LeaseOptions`](crate::LeaseOptions)) when its value does not decode
    /// as `V`, and returns the key it had (the key the pull's error named).
    /// Its stored value is kept as it is, for a reader that can decode it
    /// (python-diskcache for a pickle); [`Cache::requeue_dead_letters`] puts
    /// it back.
    ///
    /// `None`, moving nothing, when the queue is empty or its end item
    /// decodes as `V` (pull it): so a consumer that races another one to
    /// the same bad item never moves a good one.
    ///
    /// # Errors
    ///
    /// The errors of any write ([the crate's errors](crate#errors)):
    /// [`Error::Timeout`] when the write lock stays taken past the timeout,
    /// [`Error::InvalidUse`] on a read-only handle. An item that decodes is not
    /// an error (`Ok(None)`).
    ///
    /// ```
    /// use diskq::{Cache, Error, PullOptions};
    /// let dir = tempfile::tempdir()?;
    /// let cache = Cache::open(dir.path())?;
    /// cache.push("not a number")?;
    /// cache.push(&2)?;
    /// let front = PullOptions::new();
    /// let err = cache.pull_with::<i64>(&front).expect_err("a string is no i64");
    /// assert!(err.is_decode()); // the item stays in the queue
    /// let moved = cache.dead_letter_undecodable::<i64>(&front)?.expect("moved");
    /// assert_eq!(moved, diskq::Key::Int(500000000000000));
    /// assert_eq!(cache.pull_with::<i64>(&front)?.map(|(_, v)| v), Some(2));
    /// let dead = PullOptions::new().prefix("dead-letter");
    /// assert_eq!(cache.pull_with::<String>(&dead)?.map(|(_, v)| v).as_deref(), Some("not a number"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn dead_letter_undecodable<V: DeserializeOwned>(&self, opts: &PullOptions) -> Result<Option<Key>> {
        let prefix = opts.prefix.as_deref();
        let (lo, hi) = bounds(prefix);
        let dead_letter = crate::lease::default_dead_letter(prefix);
        self.store().write(opts.retry, None, |s| {
            let now = self.now();
            loop {
                let Some((key, mut row)) = s.peek((&lo, &hi), now, opts.side == Side::Back)? else {
                    return Ok(None);
                };
                let Some(stored) = self.load(&mut row)? else {
                    // Its value file is gone: drop it, as a pull does.
                    if let Some(rowid) = s.rowid_of(&key)? {
                        s.delete_rowid(rowid, None)?;
                    }
                    continue;
                };
                return match codec::decode::<V>(stored, &key) {
                    Ok(_) => Ok(None),
                    Err(e) if e.is_decode() => {
                        let dead = crate::lease::queue_key(s, Some(&dead_letter), Side::Back)?;
                        let item = s.rowid_of(&key)?;
                        s.rename_key(&key, &dead)?;
                        // A nacked item's delivery count stays at its old key.
                        let mut deliveries = None;
                        if s.has_lease_table()? {
                            deliveries = s
                                .lease_row(&key)?
                                .filter(|row| Some(row.item) == item)
                                .map(|row| row.deliveries);
                            s.delete_lease_row(&key)?;
                        }
                        let why = e.to_string();
                        crate::lease::record_dead_letter(
                            s,
                            &dead,
                            prefix.unwrap_or_default(),
                            deliveries,
                            Some(&why),
                            now,
                        )?;
                        s.count(prefix.unwrap_or_default(), Counter::DeadLettered, 1)?;
                        s.mark_pushed();
                        Ok(Some(key))
                    }
                    Err(e) => Err(e),
                };
            }
        })
    }

    /// The front item of the integer-keyed queue, left in place.
    ///
    /// # Errors
    ///
    /// As [`Cache::peek_with`].
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::Cache::open(dir.path())?;
    /// cache.push("next")?;
    /// assert_eq!(cache.peek::<String>()?.map(|(_, v)| v).as_deref(), Some("next"));
    /// assert!(cache.pull::<String>()?.is_some(), "the peek left it queued");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn peek<V: DeserializeOwned>(&self) -> Result<Option<(Key, V)>> {
        self.peek_with(&PullOptions::default())
    }

    /// The item at either end of a queue, left in place. Expired items are
    /// skipped (not shown).
    ///
    /// # Errors
    ///
    /// [`Error::Decode`] or [`Error::Pickled`], naming the key, when the end
    /// item does not decode as `V`; the storage errors of a read ([the crate's
    /// errors](crate#errors)).
    ///
    /// ```
    /// use diskq::{PullOptions, PushOptions, Side};
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::Cache::open(dir.path())?;
    /// cache.push_many(["a", "b"], &PushOptions::new().prefix("jobs"))?;
    /// let back = cache.peek_with::<String>(&PullOptions::new().prefix("jobs").side(Side::Back))?;
    /// assert_eq!(back.map(|(_, v)| v).as_deref(), Some("b"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn peek_with<V: DeserializeOwned>(&self, opts: &PullOptions) -> Result<Option<(Key, V)>> {
        let (lo, hi) = bounds(opts.prefix.as_deref());
        self.store().read(|s| {
            let Some((key, mut row)) = s.peek((&lo, &hi), self.now(), opts.side == Side::Back)? else {
                return Ok(None);
            };
            match self.load(&mut row)? {
                Some(stored) => Ok(Some((key.clone(), codec::decode(stored, &key)?))),
                None => Ok(None),
            }
        })
    }

    /// The first item in insertion order (python-diskcache's
    /// `peekitem(last=False)`), left in place; expired items are skipped.
    ///
    /// # Errors
    ///
    /// [`Error::Decode`] or [`Error::Pickled`], naming the key, when the item
    /// does not decode as `V`.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::Cache::open(dir.path())?;
    /// cache.set("a", &1)?;
    /// cache.set("b", &2)?;
    /// assert_eq!(cache.first_item::<i64>()?, Some(("a".into(), 1)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn first_item<V: DeserializeOwned>(&self) -> Result<Option<(Key, V)>> {
        self.edge_item(false)
    }

    /// The last item in insertion order (python-diskcache's
    /// `peekitem(last=True)`), left in place; expired items are skipped.
    ///
    /// # Errors
    ///
    /// [`Error::Decode`] or [`Error::Pickled`], naming the key, when the item
    /// does not decode as `V`.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::Cache::open(dir.path())?;
    /// cache.set("a", &1)?;
    /// cache.set("b", &2)?;
    /// assert_eq!(cache.last_item::<i64>()?, Some(("b".into(), 2)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn last_item<V: DeserializeOwned>(&self) -> Result<Option<(Key, V)>> {
        self.edge_item(true)
    }

    fn edge_item<V: DeserializeOwned>(&self, last: bool) -> Result<Option<(Key, V)>> {
        self.store().read(|s| {
            let Some((key, mut row)) = s.edge_item(last, self.now())? else {
                return Ok(None);
            };
            match self.load(&mut row)? {
                Some(stored) => Ok(Some((key.clone(), codec::decode(stored, &key)?))),
                None => Ok(None),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_numbers_follow_python_diskcache() {
        assert_eq!(key_of(Some("q"), FIRST_NUMBER), Key::Text("q-500000000000000".into()));
        assert_eq!(key_of(Some("q"), 7), Key::Text("q-000000000000007".into()));
        assert_eq!(number_of(&Key::Text("a-b-000000000000012".into())).unwrap(), 12);
        assert_eq!(number_of(&Key::Int(5)).unwrap(), 5);
        assert!(number_of(&Key::Text("nodigits".into())).is_err());
    }
}
