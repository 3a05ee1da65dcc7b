//! Jobs: queue items pushed with a delay, a priority or a uniqueness key,
//! and the retry policy of leases.
//!
//! A job is an item of its queue like any other — pops, leases, batch pops,
//! the backlog and the counters see it — but it is kept in the job table
//! (see `store::jobs`) under a key outside every queue range, so that
//! python-diskcache, which knows nothing of delays or priorities, never
//! pops it as a plain item. The order of a queue's front: jobs of priority
//! above 0 first (higher first), then the plain items and the ready jobs of
//! priority 0 together, first ready first (a plain item is ready when
//! pushed, a delayed job when due), then the jobs below 0.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::cache::{Cache, is_live, new_row};
use crate::codec::{self, Scalar};
use crate::error::{Error, Result};
use crate::key::Key;
use crate::options::{Due, PushOptions, to_unix_seconds};
use crate::store::{Counter, JobRow, NewJob, Session, job_key};

/// How long a failed delivery waits before it is delivered again: applied
/// by [`Lease::nack`](crate::Lease::nack) (a nack without a delay of its
/// own) and to leases that ran out. Set with [`LeaseOptions::retry_policy`](crate::LeaseOptions::retry_policy).
///
/// ```
/// use std::time::Duration;
/// use diskq::RetryPolicy;
/// let policy = RetryPolicy::exponential(Duration::from_secs(1), Duration::from_secs(60));
/// assert_eq!(policy.delay(1), Duration::from_secs(1)); // after the first delivery
/// assert_eq!(policy.delay(3), Duration::from_secs(4));
/// assert_eq!(policy.delay(30), Duration::from_secs(60)); // capped
/// assert_eq!(RetryPolicy::Fixed(Duration::from_secs(5)).delay(9), Duration::from_secs(5));
/// assert_eq!(RetryPolicy::Immediate.delay(9), Duration::ZERO);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum RetryPolicy {
    /// Deliver again at once (a nack puts the item back now; a lease that
    /// ran out goes to the next lease call).
    #[default]
    Immediate,
    /// Wait the same time after every failed delivery.
    Fixed(Duration),
    /// Wait `first` after the first failed delivery, twice as long after
    /// each one more, `max` at most; with `jitter`, a random time between
    /// half of that and all of it (so that items that failed together do
    /// not all come back at once).
    Exponential {
        /// The wait after the first failed delivery.
        first: Duration,
        /// The longest wait.
        max: Duration,
        /// Wait a random time in `[d/2, d]` instead of `d`.
        jitter: bool,
    },
}

impl RetryPolicy {
    /// Exponential backoff without jitter, from `first` up to `max`.
    #[must_use]
    pub fn exponential(first: Duration, max: Duration) -> RetryPolicy {
        RetryPolicy::Exponential {
            first,
            max,
            jitter: false,
        }
    }

    /// The same policy with jitter on (exponential only).
    ///
    /// ```
    /// use std::time::Duration;
    /// let policy = diskq::RetryPolicy::exponential(Duration::from_secs(2), Duration::from_secs(60)).with_jitter();
    /// let d = policy.delay(1);
    /// assert!(d >= Duration::from_secs(1) && d <= Duration::from_secs(2));
    /// ```
    #[must_use]
    pub fn with_jitter(self) -> RetryPolicy {
        match self {
            RetryPolicy::Exponential { first, max, .. } => RetryPolicy::Exponential {
                first,
                max,
                jitter: true,
            },
            other => other,
        }
    }

    /// The wait after the `deliveries`th delivery failed (1 after the first).
    #[must_use]
    pub fn delay(&self, deliveries: u32) -> Duration {
        match *self {
            RetryPolicy::Immediate => Duration::ZERO,
            RetryPolicy::Fixed(d) => d,
            RetryPolicy::Exponential { first, max, jitter } => {
                let doublings = deliveries.saturating_sub(1).min(62);
                let d = first.saturating_mul(1u32 << doublings.min(31)).min(max);
                let d = if doublings > 31 { max } else { d };
                if jitter {
                    let half = d / 2;
                    half + half.mul_f64(random_unit())
                } else {
                    d
                }
            }
        }
    }
}

/// A random number in `[0, 1)` (0 when the system has no random source:
/// jitter is then none, never an error).
fn random_unit() -> f64 {
    let mut bytes = [0u8; 8];
    match getrandom::fill(&mut bytes) {
        Ok(()) => (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64,
        Err(_) => 0.0,
    }
}

/// A random job id.
pub(crate) fn random_id() -> Result<i64> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).map_err(|e| Error::io("<random source>", std::io::Error::other(e.to_string())))?;
    Ok(i64::from_le_bytes(bytes))
}

/// When a job pushed at `now` with `due` becomes ready (Unix seconds).
/// The sum is taken on `SystemTime`, as the clock reads it later, so that
/// the item is ready exactly when the clock reads `now + d`, not one
/// rounding of `f64` later.
pub(crate) fn ready_time(now: SystemTime, due: Option<Due>) -> f64 {
    match due {
        None => to_unix_seconds(now),
        Some(Due::At(t)) => to_unix_seconds(t),
        Some(Due::After(d)) => match now.checked_add(d) {
            Some(t) => to_unix_seconds(t),
            None => to_unix_seconds(now) + secs(d),
        },
    }
}

/// The queue name of a prefix, as the job table and the counters name it.
pub(crate) fn queue_name(prefix: Option<&str>) -> &str {
    prefix.unwrap_or_default()
}

/// What the front of a queue with jobs offers next.
pub(crate) enum Next {
    /// A job (ready, not leased).
    Job(JobRow),
    /// The plain queue's front item (or nothing at all).
    Plain,
}

/// Picks between the best ready job of `queue` and the front of its plain
/// range (see the module's docs for the order).
pub(crate) fn pick(s: &Session, queue: &str, bounds: (&Scalar, &Scalar), now: f64) -> Result<Next> {
    let Some(job) = s.next_job(queue, now)? else {
        return Ok(Next::Plain);
    };
    if job.priority > 0 {
        return Ok(Next::Job(job));
    }
    let front = match s.peek(bounds, now, false)? {
        Some((key, _)) => s.store_time_of(&key)?,
        None => None,
    };
    Ok(match front {
        Some(pushed) if job.priority < 0 || pushed <= job.ready => Next::Plain,
        _ => Next::Job(job),
    })
}

impl Cache {
    /// Pushes a job (see [`PushOptions::due`], [`PushOptions::priority`] and
    /// [`PushOptions::unique_key`]) onto the queue of `opts.prefix`; returns
    /// its key, or `None` when its unique key is taken (by an item of the
    /// queue that is queued, scheduled or leased: nothing is pushed). The
    /// check and the push are one transaction, so of two processes pushing
    /// one key at once exactly one pushes. The key is free again once its
    /// item is popped, acked or dead-lettered.
    ///
    /// A job is kept under a key `diskq-job-k<16 hex digits>` (the key
    /// returned), outside every queue range: python-diskcache's pulls never
    /// take it (its `Deque` iteration and `len` do see it, as they see every
    /// key). `opts.side` does not apply: a job's place follows its priority
    /// and when it is ready.
    ///
    /// # Errors
    ///
    /// [`Error::Encode`] when the value does not serialize, [`Error::InvalidUse`]
    /// on a read-only handle, [`Error::Timeout`] when the write lock stays taken
    /// past the timeout (retried with `opts.retry`; on PostgreSQL a lock wait
    /// past it, not retried), and the storage errors of a write
    /// ([the crate's errors](crate#errors)). A taken unique key is not an error
    /// (`Ok(None)`).
    ///
    /// ```
    /// use std::time::Duration;
    /// use diskq::{Cache, PullOptions, PushOptions};
    /// let dir = tempfile::tempdir()?;
    /// let cache = Cache::open(dir.path())?;
    /// let crawl = PushOptions::new().prefix("jobs").unique_key("https://example.com/");
    /// assert!(cache.push_job("https://example.com/", &crawl)?.is_some());
    /// assert!(cache.push_job("https://example.com/", &crawl)?.is_none(), "already queued");
    /// let urgent = PushOptions::new().prefix("jobs").priority(5);
    /// cache.push_job("urgent", &urgent)?;
    /// let jobs = PullOptions::new().prefix("jobs");
    /// assert_eq!(cache.pull_with::<String>(&jobs)?.map(|(_, v)| v).as_deref(), Some("urgent"));
    /// assert_eq!(cache.pull_with::<String>(&jobs)?.map(|(_, v)| v).as_deref(), Some("https://example.com/"));
    /// assert!(cache.push_job("https://example.com/", &crawl)?.is_some(), "free again");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn push_job<V: Serialize + ?Sized>(&self, value: &V, opts: &PushOptions) -> Result<Option<Key>> {
        Ok(self.push_jobs(std::iter::once(value), opts)?.pop())
    }

    /// Pushes every value as a job with `opts`, in one transaction; returns
    /// the keys of those pushed (a unique key pushes at most one).
    pub(crate) fn push_jobs<'v, V, I>(&self, values: I, opts: &PushOptions) -> Result<Vec<Key>>
    where
        V: Serialize + ?Sized + 'v,
        I: IntoIterator<Item = &'v V>,
    {
        let prepared = self.prepare_all(values)?;
        let files = prepared.iter().filter_map(|p| p.filename.clone()).collect();
        let queue = queue_name(opts.prefix.as_deref());
        let mut ids = Vec::with_capacity(prepared.len());
        for _ in &prepared {
            ids.push(random_id()?);
        }
        if opts.due.is_none() {
            // Ready at once: a waiter may take it as soon as it commits.
            self.store().push_starting();
        }
        self.store().write_with_files(opts.set.retry, files, |s| {
            let clock = self.now_time();
            let now = to_unix_seconds(clock);
            let ready = ready_time(clock, opts.due);
            let expire_time = Self::expire_time(now, opts.set.expire);
            let mut keys = Vec::with_capacity(prepared.len());
            for (p, id) in prepared.iter().zip(&ids) {
                if let Some(unique) = opts.unique_key.as_deref()
                    && let Some((held, item)) = s.job_by_unique(queue, unique)?
                {
                    if s.rowid_of(&Key::Text(job_key(held)))? == Some(item) {
                        // Taken: this value's file (if any) is named by no row.
                        s.remove_after_commit(p.filename.clone());
                        continue;
                    }
                    s.delete_job(queue, held)?; // its item was removed behind our back
                }
                let key = Key::Text(job_key(*id));
                s.insert_row(&key, now, &new_row(p, expire_time, opts.set.tag.as_deref()))?;
                s.insert_job(&NewJob {
                    id: *id,
                    queue,
                    item: s.last_rowid(),
                    priority: i64::from(opts.priority),
                    ready,
                    deliveries: 0,
                    last_error: None,
                    unique_key: opts.unique_key.as_deref(),
                })?;
                keys.push(key);
            }
            s.count(queue, Counter::Pushed, keys.len())?;
            if ready > now {
                s.count(queue, Counter::Scheduled, keys.len())?;
            }
            if !keys.is_empty() {
                s.mark_pushed();
                self.cull_after_write(s, now)?;
            }
            Ok(keys)
        })
    }

    /// Takes the next item of a queue inside `s`, jobs included when the
    /// queue has any (`jobs`); from the back, plain items only.
    pub(crate) fn take_next<V: DeserializeOwned>(
        &self,
        s: &mut Session,
        prefix: Option<&str>,
        bounds: (&Scalar, &Scalar),
        back: bool,
        now: f64,
        jobs: bool,
    ) -> Result<Option<(Key, V)>> {
        if back || !jobs {
            return self.pull_one(s, bounds, back, now);
        }
        let queue = queue_name(prefix);
        loop {
            let job = match pick(s, queue, bounds, now)? {
                Next::Plain => return self.pull_one(s, bounds, back, now),
                Next::Job(job) => job,
            };
            let key = Key::Text(job_key(job.id));
            match self.job_value(s, queue, &key, &job, now)? {
                Some((value, filename)) => {
                    s.delete_rowid(job.item, filename)?;
                    s.delete_job(queue, job.id)?;
                    return Ok(Some((key, value)));
                }
                None => continue, // gone or expired: removed, look again
            }
        }
    }

    /// The value of a job and its file name; `None` (and the job removed)
    /// when its item is gone, expired or its value file is missing.
    pub(crate) fn job_value<V: DeserializeOwned>(
        &self,
        s: &mut Session,
        queue: &str,
        key: &Key,
        job: &JobRow,
        now: f64,
    ) -> Result<Option<(V, Option<String>)>> {
        let row = match s.rowid_of(key)? {
            Some(item) if item == job.item => s.row_by_rowid(item)?,
            _ => None,
        };
        let Some(mut row) = row else {
            s.delete_job(queue, job.id)?;
            return Ok(None);
        };
        row.check(key)?;
        if !is_live(row.expire_time, now) {
            s.delete_rowid(job.item, row.filename.clone())?;
            s.delete_job(queue, job.id)?;
            return Ok(None);
        }
        let filename = row.filename.clone();
        match self.load(&mut row)? {
            Some(stored) => Ok(Some((codec::decode(stored, key)?, filename))),
            None => {
                s.delete_rowid(job.item, None)?;
                s.delete_job(queue, job.id)?;
                Ok(None)
            }
        }
    }

    /// When a waiter on `prefix` whose last look began at `looked` (the
    /// cache's clock, read before the look) should look again at the
    /// latest: the earliest moment after `looked` a job becomes ready or a
    /// job lease runs out, as an `Instant` (`None`: no such moment). A job
    /// that came due while the look ran is such a moment, already past: the
    /// waiter looks again at once instead of missing it.
    pub(crate) fn next_job_wake(&self, prefix: Option<&str>, looked: f64) -> Result<Option<Instant>> {
        let queue = queue_name(prefix);
        let next = self.store().read(|s| s.next_job_event(queue, looked))?;
        Ok(next.map(|at| {
            let secs = (at - self.now()).max(0.0) + WAKE_MARGIN;
            crate::deadline::after(Instant::now(), crate::deadline::seconds(secs))
        }))
    }
}

/// What a pop found out about its queue.
pub(crate) struct Popped<V> {
    pub items: Vec<(Key, V)>,
    /// The queue had jobs when the pop looked.
    pub jobs: bool,
}

/// The marker of a plain pop that found, after the fact, that its queue
/// has jobs: the operation rolls back and is run again, job-aware. Never
/// seen outside this module.
const RETRY_WITH_JOBS: &str = "diskq internal: the queue has jobs, pop again looking at them";

fn retry_with_jobs() -> Error {
    Error::InvalidUse(RETRY_WITH_JOBS.into())
}

fn is_retry_with_jobs(e: &Error) -> bool {
    matches!(e, Error::InvalidUse(m) if m == RETRY_WITH_JOBS)
}

/// The queues this process saw with jobs, by directory: their pops look at
/// the jobs first instead of finding them after a plain pop. A hint only:
/// a plain pop reads the count of jobs either way.
static JOB_QUEUES: Mutex<Vec<(PathBuf, String)>> = Mutex::new(Vec::new());

fn hinted(dir: &Path, queue: &str) -> bool {
    let hints = JOB_QUEUES.lock().unwrap_or_else(PoisonError::into_inner);
    hints.iter().any(|(d, q)| d == dir && q == queue)
}

fn set_hint(dir: &Path, queue: &str, jobs: bool) {
    let mut hints = JOB_QUEUES.lock().unwrap_or_else(PoisonError::into_inner);
    let at = hints.iter().position(|(d, q)| d == dir && q == queue);
    match (at, jobs) {
        (None, true) => hints.push((dir.to_path_buf(), queue.to_owned())),
        (Some(i), false) => {
            hints.swap_remove(i);
        }
        _ => {}
    }
}

/// A transaction runner: `Store::write` or `Store::write_by` with its options.
pub(crate) type Write<'a, V> = dyn FnMut(&mut Session) -> Result<Popped<V>> + 'a;

impl Cache {
    /// Pops up to `n` items of a queue in one transaction of `write` (plain
    /// items, and jobs in their order when the queue has any) and counts
    /// them. A plain queue pays one statement for its count and for
    /// learning that it has no jobs; a queue with jobs (known to this
    /// process) looks at them first.
    pub(crate) fn pop_items<V: DeserializeOwned>(
        &self,
        prefix: Option<&str>,
        n: usize,
        back: bool,
        mut write: impl FnMut(&mut Write<'_, V>) -> Result<Popped<V>>,
    ) -> Result<Vec<(Key, V)>> {
        let queue = queue_name(prefix);
        let (lo, hi) = crate::queue::bounds(prefix);
        let bounds = (&lo, &hi);
        let dir = self.directory();
        let mut aware = !back && hinted(dir, queue);
        loop {
            let result = write(&mut |s: &mut Session| {
                let now = self.now();
                let mut items = Vec::with_capacity(n.min(1024));
                let jobs = if aware {
                    let jobs = s.job_gauge(queue)? > 0;
                    while items.len() < n {
                        match self.take_next(s, prefix, bounds, back, now, jobs)? {
                            Some(item) => items.push(item),
                            None => break,
                        }
                    }
                    s.count(queue, Counter::Popped, items.len())?;
                    jobs
                } else {
                    while items.len() < n {
                        match self.pull_one(s, bounds, back, now)? {
                            Some(item) => items.push(item),
                            None => break,
                        }
                    }
                    if back {
                        // From the back, plain items only.
                        s.count(queue, Counter::Popped, items.len())?;
                        false
                    } else if items.is_empty() {
                        // Nothing plain: the jobs, if any, in this transaction.
                        let jobs = n > 0 && s.job_gauge(queue)? > 0;
                        while jobs && items.len() < n {
                            match self.take_next(s, prefix, bounds, back, now, true)? {
                                Some(item) => items.push(item),
                                None => break,
                            }
                        }
                        s.count(queue, Counter::Popped, items.len())?;
                        jobs
                    } else if !s.count_plain_pops(queue, items.len())? {
                        // A job may have had to go first: undo, and look.
                        return Err(retry_with_jobs());
                    } else {
                        false
                    }
                };
                Ok(Popped { items, jobs })
            });
            match result {
                Err(e) if !aware && is_retry_with_jobs(&e) => {
                    aware = true;
                    set_hint(dir, queue, true);
                }
                Err(e) => return Err(e),
                Ok(popped) => {
                    if !back && aware != popped.jobs {
                        set_hint(dir, queue, popped.jobs);
                    }
                    return Ok(popped.items);
                }
            }
        }
    }
}

/// How long after a job's due time its waiter wakes: enough that the clock
/// has passed it (a wake a hair early finds nothing and waits again), far
/// below what a person or a scheduler notices (W13: lateness p50 ~0.2 ms).
const WAKE_MARGIN: f64 = 0.000_05;

/// `Duration` as seconds, for the clock's arithmetic.
pub(crate) fn secs(d: Duration) -> f64 {
    d.as_secs_f64().min(1e11)
}
