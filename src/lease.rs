//! Leases: at-least-once delivery from a queue.
//!
//! A pop (`pull`, `pop_front`) is at-most-once: the item is gone the moment
//! it is taken, so a consumer that dies before finishing loses it. A lease
//! takes the front item for a while instead: the item stays on disk,
//! invisible to other consumers, until the holder acks it (done: deleted),
//! nacks it (back in the queue now) or the lease runs out (back to the next
//! lease, its delivery count one higher). Every step is one immediate
//! transaction; no background thread is needed, because the next lease call
//! of any process finds the leases that ran out.

use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;

use crate::cache::Cache;
use crate::codec::{self, Scalar};
use crate::error::{Error, Result};
use crate::jobs::{Next, RetryPolicy, pick, secs};
use crate::key::Key;
use crate::options::Side;
use crate::queue::{FIRST_NUMBER, bounds, key_of, number_of};
use crate::store::{Counter, JobRow, LeaseRow, NewJob, QUEUE_BOUND, Session, job_key};

mod dead;
mod id;
mod running;

pub use dead::DeadLetter;
pub(crate) use dead::record as record_dead_letter;
pub use id::LeaseId;
pub use running::RunningLease;

/// How to lease: from which queue, for how long, and what to do with an
/// item that keeps failing.
///
/// ```
/// use std::time::Duration;
/// use diskq::LeaseOptions;
/// let opts = LeaseOptions::new(Duration::from_secs(30)).prefix("jobs").max_deliveries(5);
/// assert_eq!(opts.dead_letter_prefix(), "jobs-dead-letter");
/// ```
#[derive(Debug, Clone, PartialEq)]
#[must_use = "options do nothing until passed to a call"]
pub struct LeaseOptions {
    /// The queue: `None` for the integer-keyed queue (a `Deque`), or a prefix.
    pub prefix: Option<String>,
    /// How long the item stays invisible to other consumers.
    pub duration: Duration,
    /// After this many deliveries, an item whose lease runs out or that is
    /// nacked goes to the dead-letter queue instead of back to the queue.
    pub max_deliveries: Option<u32>,
    /// The prefix of the dead-letter queue; `None`: `"dead-letter"` for the
    /// integer-keyed queue, `"<prefix>-dead-letter"` for a prefixed one.
    pub dead_letter: Option<String>,
    /// Wait for the write lock without limit instead of failing with
    /// [`Error::Timeout`].
    pub retry: bool,
    /// How long a failed delivery (a nack without a delay of its own, a
    /// lease that ran out) waits before the item is delivered again.
    pub retry_policy: RetryPolicy,
}

/// How to nack: where the item goes back, after how long, and why
/// ([`Lease::nack_with`]).
///
/// ```
/// use std::time::Duration;
/// let opts = diskq::NackOptions::new().delay(Duration::from_secs(30)).error("timed out");
/// assert_eq!(opts.error.as_deref(), Some("timed out"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[must_use = "options do nothing until passed to a call"]
pub struct NackOptions {
    /// The end of the queue a plain item goes back to at once (a job, or an
    /// item put back with a delay, takes its place by priority and due time).
    pub side: Side,
    /// How long until the item is delivered again; `None`: the lease's
    /// [`RetryPolicy`].
    pub delay: Option<Duration>,
    /// Why the delivery failed: the next lease of the item shows it
    /// ([`Lease::last_error`]).
    pub error: Option<String>,
}

impl NackOptions {
    /// Back at the back of the queue, after the retry policy's delay.
    pub fn new() -> NackOptions {
        NackOptions::default()
    }

    /// Puts a plain item back at `side`.
    pub fn side(mut self, side: Side) -> NackOptions {
        self.side = side;
        self
    }

    /// Delivers the item again after `delay`, whatever the retry policy.
    pub fn delay(mut self, delay: Duration) -> NackOptions {
        self.delay = Some(delay);
        self
    }

    /// Records why the delivery failed.
    pub fn error(mut self, error: impl Into<String>) -> NackOptions {
        self.error = Some(error.into());
        self
    }
}

impl LeaseOptions {
    /// A lease of `duration` on the integer-keyed queue, no delivery limit.
    ///
    /// ```
    /// use std::time::Duration;
    /// let opts = diskq::LeaseOptions::new(Duration::from_secs(30));
    /// assert_eq!((opts.duration, opts.prefix, opts.max_deliveries), (Duration::from_secs(30), None, None));
    /// ```
    pub fn new(duration: Duration) -> LeaseOptions {
        LeaseOptions {
            prefix: None,
            duration,
            max_deliveries: None,
            dead_letter: None,
            retry: false,
            retry_policy: RetryPolicy::Immediate,
        }
    }

    /// How long failed deliveries wait before the next (see [`RetryPolicy`]).
    ///
    /// ```
    /// use std::time::Duration;
    /// use diskq::{LeaseOptions, RetryPolicy};
    /// let opts = LeaseOptions::new(Duration::from_secs(30))
    ///     .retry_policy(RetryPolicy::exponential(Duration::from_secs(1), Duration::from_secs(300)).with_jitter());
    /// assert!(matches!(opts.retry_policy, RetryPolicy::Exponential { jitter: true, .. }));
    /// ```
    pub fn retry_policy(mut self, policy: RetryPolicy) -> LeaseOptions {
        self.retry_policy = policy;
        self
    }

    /// Leases from the queue with this prefix.
    ///
    /// ```
    /// use std::time::Duration;
    /// use diskq::{LeaseOptions, PushOptions};
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::Cache::open(dir.path())?;
    /// cache.push_with("resize 1.png", &PushOptions::new().prefix("images"))?;
    /// let opts = LeaseOptions::new(Duration::from_secs(30)).prefix("images");
    /// let lease = cache.lease::<String>(&opts)?.expect("queued under the prefix");
    /// assert_eq!(lease.value(), "resize 1.png");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn prefix(mut self, prefix: impl Into<String>) -> LeaseOptions {
        self.prefix = Some(prefix.into());
        self
    }

    /// Sends an item to the dead-letter queue after `n` deliveries.
    ///
    /// ```
    /// use std::sync::{Arc, atomic::{AtomicU64, Ordering}};
    /// use std::time::{Duration, SystemTime};
    /// let now = Arc::new(AtomicU64::new(1_000_000)); // seconds, moved by hand
    /// let clock = now.clone();
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::Cache::builder()
    ///     .clock(move || SystemTime::UNIX_EPOCH + Duration::from_secs(clock.load(Ordering::SeqCst)))
    ///     .open(dir.path())?;
    /// let jobs: diskq::Deque<String> = diskq::Deque::from_cache(cache);
    /// jobs.push_back("crashes the worker")?;
    /// let opts = diskq::LeaseOptions::new(Duration::from_secs(30)).max_deliveries(2);
    /// for _ in 0..2 {
    ///     let _lost = jobs.lease_with(&opts)?.expect("delivered"); // the worker dies...
    ///     now.fetch_add(31, Ordering::SeqCst); // ...and its lease runs out
    /// }
    /// assert!(jobs.lease_with(&opts)?.is_none(), "two deliveries: a dead letter now");
    /// assert_eq!(jobs.pop_dead_letter(&opts)?.as_deref(), Some("crashes the worker"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn max_deliveries(mut self, n: u32) -> LeaseOptions {
        self.max_deliveries = Some(n);
        self
    }

    /// Names the dead-letter queue's prefix.
    ///
    /// ```
    /// use std::time::Duration;
    /// use diskq::{LeaseOptions, Side};
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::Cache::open(dir.path())?;
    /// cache.push("bad job")?;
    /// let opts = LeaseOptions::new(Duration::from_secs(30)).max_deliveries(1).dead_letter("failed");
    /// cache.lease::<String>(&opts)?.expect("queued").nack(Side::Back)?;
    /// assert_eq!(cache.backlog(Some("failed"))?.queued, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn dead_letter(mut self, prefix: impl Into<String>) -> LeaseOptions {
        self.dead_letter = Some(prefix.into());
        self
    }

    /// Waits for the write lock without limit.
    ///
    /// ```
    /// use std::time::Duration;
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::Cache::open(dir.path())?;
    /// cache.push("job")?;
    /// // Waits out a busy write lock instead of returning Error::Timeout.
    /// let opts = diskq::LeaseOptions::new(Duration::from_secs(30)).retry(true);
    /// assert!(cache.lease::<String>(&opts)?.expect("queued").ack()?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn retry(mut self, retry: bool) -> LeaseOptions {
        self.retry = retry;
        self
    }

    /// The prefix of the dead-letter queue these options use.
    ///
    /// ```
    /// use std::time::Duration;
    /// use diskq::LeaseOptions;
    /// let opts = LeaseOptions::new(Duration::from_secs(30));
    /// assert_eq!(opts.dead_letter_prefix(), "dead-letter");
    /// assert_eq!(opts.clone().prefix("jobs").dead_letter_prefix(), "jobs-dead-letter");
    /// assert_eq!(opts.dead_letter("parked").dead_letter_prefix(), "parked");
    /// ```
    #[must_use]
    pub fn dead_letter_prefix(&self) -> String {
        match &self.dead_letter {
            Some(d) => d.clone(),
            None => default_dead_letter(self.prefix.as_deref()),
        }
    }

    fn validate(&self) -> Result<()> {
        if self.duration.is_zero() {
            return Err(Error::InvalidSetting {
                name: "lease duration".into(),
                message: "must be above zero".into(),
            });
        }
        if self.max_deliveries == Some(0) {
            return Err(Error::InvalidSetting {
                name: "max_deliveries".into(),
                message: "must be at least 1".into(),
            });
        }
        if self.dead_letter_prefix() == self.prefix.as_deref().unwrap_or_default() {
            return Err(Error::InvalidSetting {
                name: "dead_letter".into(),
                message: "the dead-letter queue must differ from the leased queue".into(),
            });
        }
        Ok(())
    }
}

/// The dead-letter queue of a queue, unless named otherwise: `"dead-letter"`
/// for the integer-keyed queue, `"<prefix>-dead-letter"` for a prefixed one.
pub(crate) fn default_dead_letter(prefix: Option<&str>) -> String {
    match prefix {
        None => "dead-letter".to_string(),
        Some(p) => format!("{p}-dead-letter"),
    }
}

/// The work of a queue at one moment, from [`Cache::backlog`] or
/// [`Deque::backlog`](crate::Deque::backlog).
///
/// ```
/// use std::time::Duration;
/// let dir = tempfile::tempdir()?;
/// let jobs: diskq::Deque<u32> = diskq::Deque::open(dir.path())?;
/// jobs.extend(&[1, 2])?;
/// let lease = jobs.lease(Duration::from_secs(30))?.expect("queued");
/// assert_eq!(jobs.backlog()?, diskq::Backlog { queued: 1, leased: 1, scheduled: 0 });
/// lease.ack()?;
/// jobs.pop_front()?;
/// assert!(jobs.backlog()?.is_empty(), "no work left");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Backlog {
    /// Items in the queue, ready to pop or lease.
    pub queued: usize,
    /// Items leased and not yet acked or nacked (their leases may have run out).
    pub leased: usize,
    /// Items not visible yet: pushed with a delay, or put back with one,
    /// and not due.
    pub scheduled: usize,
}

impl Backlog {
    /// True when nothing is queued, leased or scheduled.
    ///
    /// ```
    /// let idle = diskq::Backlog { queued: 0, leased: 0, scheduled: 0 };
    /// assert!(idle.is_empty());
    /// assert!(!diskq::Backlog { leased: 1, ..idle }.is_empty(), "a lease may still run out");
    /// assert!(!diskq::Backlog { scheduled: 1, ..idle }.is_empty(), "a delayed item comes due");
    /// ```
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.queued == 0 && self.leased == 0 && self.scheduled == 0
    }
}

/// A leased item: its value, and the right to ack, nack or renew it.
///
/// Dropping a lease without [`Lease::ack`] or [`Lease::nack`] does nothing:
/// the item stays invisible until the lease runs out, then goes to the next
/// lease (this is what happens when the holder crashes). It is never lost
/// silently.
///
/// ```
/// use std::sync::{Arc, atomic::{AtomicU64, Ordering}};
/// use std::time::{Duration, SystemTime};
/// let now = Arc::new(AtomicU64::new(1_000_000)); // seconds, moved by hand
/// let clock = now.clone();
/// let dir = tempfile::tempdir()?;
/// let cache = diskq::Cache::builder()
///     .clock(move || SystemTime::UNIX_EPOCH + Duration::from_secs(clock.load(Ordering::SeqCst)))
///     .open(dir.path())?;
/// let jobs: diskq::Deque<String> = diskq::Deque::from_cache(cache);
/// jobs.push_back("fetch /")?;
/// let opts = diskq::LeaseOptions::new(Duration::from_secs(30));
/// let first: diskq::Lease<String> = jobs.lease_with(&opts)?.expect("queued");
/// drop(first); // the consumer dies without acking
/// assert!(jobs.lease_with(&opts)?.is_none(), "hidden until the lease runs out");
/// now.fetch_add(31, Ordering::SeqCst);
/// let second = jobs.lease_with(&opts)?.expect("delivered again");
/// assert_eq!((second.value().as_str(), second.deliveries()), ("fetch /", 2));
/// assert!(second.ack()?);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Lease<V> {
    cache: Cache,
    key: Key,
    token: i64,
    deliveries: u32,
    deadline: f64,
    opts: LeaseOptions,
    value: V,
    /// The job id, when the item is a job (it stays under its job key).
    job: Option<i64>,
    last_error: Option<String>,
}

impl<V> Lease<V> {
    /// The item's value.
    ///
    /// ```
    /// use std::time::Duration;
    /// let dir = tempfile::tempdir()?;
    /// let jobs: diskq::Deque<String> = diskq::Deque::open(dir.path())?;
    /// jobs.push_back("resize 1.png")?;
    /// let lease = jobs.lease(Duration::from_secs(30))?.expect("queued");
    /// assert_eq!(lease.value(), "resize 1.png");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn value(&self) -> &V {
        &self.value
    }

    /// The item's value, giving up the lease without acking or nacking it:
    /// the item stays invisible until the lease runs out, then goes to the
    /// next lease (as when a lease is dropped). Use it when the value is all
    /// you need, e.g. to move it into a worker that acks through another path
    /// or not at all.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// use std::time::Duration;
    /// let deque = diskq::Deque::<String>::open(dir.path()).unwrap();
    /// deque.push_back("job").unwrap();
    /// let lease = deque.lease(Duration::from_secs(60)).unwrap().unwrap();
    /// let job: String = lease.into_value();
    /// assert_eq!(job, "job");
    /// assert_eq!(deque.len().unwrap(), 1); // still there, leased
    /// ```
    pub fn into_value(self) -> V {
        self.value
    }

    /// Why the previous delivery failed, as its nack said
    /// ([`NackOptions::error`]); `None` on a first delivery, or when no
    /// reason was given.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// use std::time::Duration;
    /// use diskq::NackOptions;
    /// let deque = diskq::Deque::<u32>::open(dir.path())?;
    /// deque.push_back(&7)?;
    /// let job = deque.lease(Duration::from_secs(30))?.expect("an item");
    /// assert_eq!(job.last_error(), None);
    /// job.nack_with(&NackOptions::new().error("disk full"))?;
    /// let again = deque.lease(Duration::from_secs(30))?.expect("back");
    /// assert_eq!((again.deliveries(), again.last_error()), (2, Some("disk full")));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }

    /// How many times the item has been delivered, this time included (1 on
    /// the first lease; more after leases ran out or nacks).
    ///
    /// ```
    /// use std::time::Duration;
    /// use diskq::Side;
    /// let dir = tempfile::tempdir()?;
    /// let jobs: diskq::Deque<String> = diskq::Deque::open(dir.path())?;
    /// jobs.push_back("job")?;
    /// let first = jobs.lease(Duration::from_secs(30))?.expect("queued");
    /// assert_eq!(first.deliveries(), 1);
    /// first.nack(Side::Front)?;
    /// assert_eq!(jobs.lease(Duration::from_secs(30))?.expect("back").deliveries(), 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn deliveries(&self) -> u32 {
        self.deliveries
    }

    /// When the lease runs out, by the cache's clock (the system clock
    /// unless the cache was opened with [`CacheBuilder::clock`](crate::CacheBuilder::clock)).
    /// A lease given a duration too long for the clock runs out at the
    /// latest time `SystemTime` holds here (about year 5138).
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// use std::time::{Duration, SystemTime};
    /// let deque = diskq::Deque::<u32>::open(dir.path())?;
    /// deque.push_back(&7)?;
    /// let job = deque.lease(Duration::from_secs(30))?.expect("an item");
    /// assert!(job.deadline() > SystemTime::now());
    /// assert!(job.deadline() <= SystemTime::now() + Duration::from_secs(30));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn deadline(&self) -> std::time::SystemTime {
        crate::options::to_system_time(self.deadline)
    }

    /// Done: deletes the item. `false` when the lease had run out and the
    /// item went to another consumer (or was removed) meanwhile: then the
    /// other consumer owns it, and the work was done twice.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] when the write lock stays taken past the timeout
    /// (retried without limit with the lease's `retry` option), and the storage
    /// errors of a write ([the crate's errors](crate#errors)). A lost lease is
    /// not an error (`Ok(false)`).
    ///
    /// ```
    /// use std::sync::{Arc, atomic::{AtomicU64, Ordering}};
    /// use std::time::{Duration, SystemTime};
    /// let now = Arc::new(AtomicU64::new(1_000_000)); // seconds, moved by hand
    /// let clock = now.clone();
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::Cache::builder()
    ///     .clock(move || SystemTime::UNIX_EPOCH + Duration::from_secs(clock.load(Ordering::SeqCst)))
    ///     .open(dir.path())?;
    /// let jobs: diskq::Deque<String> = diskq::Deque::from_cache(cache);
    /// jobs.push_back("job")?;
    /// let opts = diskq::LeaseOptions::new(Duration::from_secs(30));
    /// let slow = jobs.lease_with(&opts)?.expect("queued");
    /// now.fetch_add(31, Ordering::SeqCst); // took too long: the lease ran out
    /// let fast = jobs.lease_with(&opts)?.expect("delivered again");
    /// assert!(fast.ack()?, "the current holder's ack deletes the item");
    /// assert!(!slow.ack()?, "the lost lease's ack does nothing");
    /// assert!(jobs.is_empty()?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn ack(self) -> Result<bool> {
        let (cache, key, token) = (&self.cache, &self.key, self.token);
        cache.store().write(self.opts.retry, None, |s| {
            if let Some(id) = self.job {
                let Some(job) = held_job(s, id, token)? else {
                    return Ok(false);
                };
                if let Some(value) = s.row_by_rowid(job.item)? {
                    s.delete_rowid(job.item, value.filename)?;
                }
                s.delete_job(queue_name(&self.opts), id)?;
                s.count(queue_name(&self.opts), Counter::Acked, 1)?;
                return Ok(true);
            }
            let Some(row) = held(s, key, token)? else {
                return Ok(false);
            };
            if let Some(value) = s.row_by_rowid(row.item)? {
                s.delete_rowid(row.item, value.filename)?;
            }
            s.delete_lease_row(key)?;
            s.count(queue_name(&self.opts), Counter::Acked, 1)?;
            Ok(true)
        })
    }

    /// Not done: puts the item back in its queue, at the front or the
    /// back, keeping its delivery count (or in the dead-letter queue, if it
    /// has had its maximum of deliveries). `false` when the lease was lost.
    /// With a [`RetryPolicy`] on the lease's options, the item comes back
    /// after the policy's delay (see [`Lease::nack_with`]); without one, now.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] when the write lock stays taken past the timeout
    /// (retried without limit with the lease's `retry` option), and the storage
    /// errors of a write ([the crate's errors](crate#errors)). A lost lease is
    /// not an error (`Ok(false)`).
    ///
    /// ```
    /// use std::time::Duration;
    /// use diskq::Side;
    /// let dir = tempfile::tempdir()?;
    /// let jobs: diskq::Deque<String> = diskq::Deque::open(dir.path())?;
    /// jobs.extend(["a", "b"])?;
    /// let a = jobs.lease(Duration::from_secs(30))?.expect("queued");
    /// assert!(a.nack(Side::Back)?); // try it again later, after "b"
    /// assert_eq!(jobs.iter()?.collect::<Result<Vec<_>, _>>()?, ["b", "a"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn nack(self, side: Side) -> Result<bool> {
        self.nack_with(&NackOptions::new().side(side))
    }

    /// Not done, with a delay and a reason: the item is delivered again
    /// after `opts.delay` (or the retry policy's delay), and its next lease
    /// shows `opts.error` ([`Lease::last_error`]). Meanwhile it counts as
    /// scheduled in the backlog. An item with its maximum of deliveries goes
    /// to the dead-letter queue instead. `false` when the lease was lost.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] when the write lock stays taken past the timeout
    /// (retried without limit with the lease's `retry` option), and the storage
    /// errors of a write ([the crate's errors](crate#errors)). A lost lease is not
    /// an error (`Ok(false)`).
    ///
    /// ```
    /// use std::time::Duration;
    /// use diskq::{Deque, NackOptions};
    /// let dir = tempfile::tempdir()?;
    /// let jobs: Deque<String> = Deque::open(dir.path())?;
    /// jobs.push_back("flaky")?;
    /// let job = jobs.lease(Duration::from_secs(60))?.expect("a job");
    /// assert!(job.nack_with(&NackOptions::new().delay(Duration::from_secs(3600)).error("HTTP 503"))?);
    /// assert!(jobs.lease(Duration::from_secs(60))?.is_none(), "not before an hour");
    /// assert_eq!(jobs.backlog()?.scheduled, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn nack_with(self, nack: &NackOptions) -> Result<bool> {
        let (cache, key, token) = (&self.cache, &self.key, self.token);
        let delay = nack
            .delay
            .unwrap_or_else(|| self.opts.retry_policy.delay(self.deliveries));
        let queue = queue_name(&self.opts);
        cache.store().write(self.opts.retry, None, |s| {
            let clock = cache.now_time();
            let now = crate::options::to_unix_seconds(clock);
            let ready = crate::jobs::ready_time(clock, Some(crate::options::Due::After(delay)));
            if let Some(id) = self.job {
                let Some(job) = held_job(s, id, token)? else {
                    return Ok(false);
                };
                s.count(queue, Counter::Nacked, 1)?;
                if self
                    .opts
                    .max_deliveries
                    .is_some_and(|max| job.deliveries >= i64::from(max))
                {
                    let why = nack.error.as_deref().or(job.last_error.as_deref());
                    job_to_dead_letter(s, &job, job.deliveries, why, &self.opts, now)?;
                    return Ok(true);
                }
                let error = nack.error.as_deref().or(job.last_error.as_deref());
                s.reschedule_job(id, ready, error)?;
                if !delay.is_zero() {
                    s.count(queue, Counter::Scheduled, 1)?;
                }
                s.mark_pushed();
                return Ok(true);
            }
            let Some(row) = held(s, key, token)? else {
                return Ok(false);
            };
            s.count(queue, Counter::Nacked, 1)?;
            if !delay.is_zero() || nack.error.is_some() {
                if self
                    .opts
                    .max_deliveries
                    .is_some_and(|max| row.deliveries >= i64::from(max))
                {
                    to_dead_letter(s, key, &self.opts, nack.error.as_deref(), now)?;
                    return Ok(true);
                }
                lease_to_job(s, key, &row, queue, ready, nack.error.as_deref())?;
                if !delay.is_zero() {
                    s.count(queue, Counter::Scheduled, 1)?;
                }
                return Ok(true);
            }
            let side = nack.side;
            if self
                .opts
                .max_deliveries
                .is_some_and(|max| row.deliveries >= i64::from(max))
            {
                to_dead_letter(s, key, &self.opts, None, now)?;
                return Ok(true);
            }
            let back_in = queue_key(s, self.opts.prefix.as_deref(), side)?;
            s.rename_key(key, &back_in)?;
            s.delete_lease_row(key)?;
            let kept = LeaseRow {
                deadline: None,
                token: 0,
                ..row
            };
            s.put_lease_row(&back_in, self.opts.prefix.as_deref().unwrap_or_default(), &kept)?;
            s.mark_pushed();
            Ok(true)
        })
    }

    /// Heartbeat: the lease now runs until `duration` from now. `false`
    /// when the lease was already lost (it ran out and another consumer
    /// took the item, or the item was removed).
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] when the write lock stays taken past the timeout
    /// (retried without limit with the lease's `retry` option), and the storage
    /// errors of a write ([the crate's errors](crate#errors)). A lost lease is
    /// not an error (`Ok(false)`).
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// use std::time::Duration;
    /// let deque = diskq::Deque::<u32>::open(dir.path())?;
    /// deque.push_back(&7)?;
    /// let mut job = deque.lease(Duration::from_secs(30))?.expect("an item");
    /// assert!(job.renew(Duration::from_secs(30))?); // still ours, for 30 s more
    /// job.ack()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn renew(&mut self, duration: Duration) -> Result<bool> {
        let deadline = self.cache.now() + duration.as_secs_f64();
        let (cache, key, token) = (&self.cache, &self.key, self.token);
        let job = self.job;
        let renewed = cache.store().write(self.opts.retry, None, |s| {
            if let Some(id) = job {
                if held_job(s, id, token)?.is_none() {
                    return Ok(false);
                }
                s.set_job_deadline(id, deadline)?;
                return Ok(true);
            }
            if held(s, key, token)?.is_none() {
                return Ok(false);
            }
            s.set_lease_deadline(key, deadline)?;
            Ok(true)
        })?;
        if renewed {
            self.deadline = deadline;
        }
        Ok(renewed)
    }
}

/// The counters' name of the leased queue (`""`: the integer-keyed one).
fn queue_name(opts: &LeaseOptions) -> &str {
    opts.prefix.as_deref().unwrap_or_default()
}

/// The job row of `id` if `token` still holds its lease.
fn held_job(s: &Session, id: i64, token: i64) -> Result<Option<JobRow>> {
    Ok(s.job(id)?
        .filter(|job| job.token == Some(token) && job.deadline.is_some()))
}

/// Turns a leased plain item into a job of `queue`, ready at `ready`: it
/// moves out of the queue range, keeping its delivery count.
fn lease_to_job(
    s: &mut Session,
    key: &Key,
    row: &LeaseRow,
    queue: &str,
    ready: f64,
    error: Option<&str>,
) -> Result<()> {
    let id = crate::jobs::random_id()?;
    s.rename_key(key, &Key::Text(job_key(id)))?;
    s.delete_lease_row(key)?;
    s.insert_job(&NewJob {
        id,
        queue,
        item: row.item,
        priority: 0,
        ready,
        deliveries: row.deliveries,
        last_error: error,
        unique_key: None,
    })?;
    s.mark_pushed();
    Ok(())
}

/// Moves a job to the back of the dead-letter queue (a plain item there),
/// freeing its unique key; its `deliveries` and last error `why` are
/// recorded (see `store/dead.rs`).
fn job_to_dead_letter(
    s: &mut Session,
    job: &JobRow,
    deliveries: i64,
    why: Option<&str>,
    opts: &LeaseOptions,
    now: f64,
) -> Result<()> {
    let dead = queue_key(s, Some(&opts.dead_letter_prefix()), Side::Back)?;
    s.rename_key(&Key::Text(job_key(job.id)), &dead)?;
    s.delete_job(queue_name(opts), job.id)?;
    dead::record(s, &dead, queue_name(opts), Some(deliveries), why, now)?;
    s.count(queue_name(opts), Counter::DeadLettered, 1)?;
    s.mark_pushed();
    Ok(())
}

/// The lease row of `key` if `token` still holds it.
fn held(s: &Session, key: &Key, token: i64) -> Result<Option<LeaseRow>> {
    Ok(s.lease_row(key)?
        .filter(|row| row.token == token && row.deadline.is_some()))
}

/// A free key at one end of a queue.
pub(crate) fn queue_key(s: &Session, prefix: Option<&str>, side: Side) -> Result<Key> {
    let (lo, hi) = bounds(prefix);
    let back = side == Side::Back;
    let number = match s.queue_edge((&lo, &hi), back)? {
        Some(edge) => number_of(&edge)? + if back { 1 } else { -1 },
        None => FIRST_NUMBER,
    };
    if number <= 0 || number >= QUEUE_BOUND {
        return Err(Error::InvalidUse("the queue's key range is used up".into()));
    }
    Ok(key_of(prefix, number))
}

/// Moves a leased item to the back of the dead-letter queue, recording its
/// delivery count and the error `why` its last delivery failed with.
fn to_dead_letter(s: &mut Session, key: &Key, opts: &LeaseOptions, why: Option<&str>, now: f64) -> Result<()> {
    let dead = queue_key(s, Some(&opts.dead_letter_prefix()), Side::Back)?;
    let deliveries = s.lease_row(key)?.map(|row| row.deliveries);
    s.rename_key(key, &dead)?;
    s.delete_lease_row(key)?;
    dead::record(s, &dead, queue_name(opts), deliveries, why, now)?;
    s.count(queue_name(opts), Counter::DeadLettered, 1)?;
    s.mark_pushed();
    Ok(())
}

/// The key a leased item is held under: outside every queue range, and
/// naming the queue key it had (for error messages).
fn lease_key(id: i64, queue_key: &Key) -> Key {
    match queue_key {
        Key::Int(n) => Key::Text(format!("{LEASE_KEY_PREFIX}{id:016x}-{n}")),
        Key::Text(t) => Key::Text(format!("{LEASE_KEY_PREFIX}{id:016x}-{t}")),
        // Queue keys are integers or text; a lease of anything else keeps the id alone.
        _ => Key::Text(format!("{LEASE_KEY_PREFIX}{id:016x}")),
    }
}

/// The queue key a [`lease_key`] names, or the lease key itself when it
/// names none (leases made before keys named them).
fn queue_key_of(lease_key: &Key) -> Key {
    let named = match lease_key {
        Key::Text(t) => t
            .strip_prefix(LEASE_KEY_PREFIX)
            .and_then(|rest| rest.get(17..).filter(|_| rest.as_bytes().get(16) == Some(&b'-'))),
        _ => None,
    };
    match named {
        Some(text) => text
            .parse::<i64>()
            .map_or_else(|_| Key::Text(text.to_owned()), Key::Int),
        None => lease_key.clone(),
    }
}

/// A letter after `diskq-lease-` keeps lease keys above the range of a
/// queue named `diskq-lease` (its keys go on with digits).
const LEASE_KEY_PREFIX: &str = "diskq-lease-k";

/// What a lease transaction found.
enum Taken<V> {
    Lease(Key, LeaseRow, V),
    /// A job's lease: its key, lease, id, last error and value.
    Job(Key, LeaseRow, i64, Option<String>, V),
    Nothing,
    /// A delivery of an item that does not decode: committed, then reported.
    Undecodable(Error),
}

/// A leased item's value, read inside the lease transaction.
enum Leased<V> {
    Value(V),
    /// Its value file is gone: the item was dropped.
    Gone,
    /// It does not decode as the wanted type (a Python pickle, another type).
    Undecodable(Error),
}

/// A delivery of an item that does not decode counts, and fails at once
/// (as a nack would): the item goes back where it was, at the front of its
/// queue under the key the error names, its delivery count one higher; the
/// delivery that reaches `max_deliveries` moves it whole (its stored value
/// untouched) to the dead-letter queue instead, so a poison item cannot
/// wedge a queue with a delivery limit.
fn failed_delivery<V>(
    s: &mut Session,
    key: &Key,
    was: &Key,
    row: &LeaseRow,
    opts: &LeaseOptions,
    e: Error,
    now: f64,
) -> Result<Taken<V>> {
    if opts.max_deliveries.is_some_and(|max| row.deliveries >= i64::from(max)) {
        to_dead_letter(s, key, opts, Some(&e.to_string()), now)?;
        return Ok(Taken::Undecodable(e));
    }
    let (lo, hi) = bounds(opts.prefix.as_deref());
    let free = in_range(was, (&lo, &hi)) && s.rowid_of(was)?.is_none();
    let back_in = if free {
        was.clone()
    } else {
        queue_key(s, opts.prefix.as_deref(), Side::Front)?
    };
    s.rename_key(key, &back_in)?;
    s.delete_lease_row(key)?;
    let kept = LeaseRow {
        deadline: None,
        token: 0,
        ..*row
    };
    s.put_lease_row(&back_in, opts.prefix.as_deref().unwrap_or_default(), &kept)?;
    s.mark_pushed();
    Ok(Taken::Undecodable(e))
}

/// True when `key` lies in a queue's key range (exclusive bounds).
fn in_range(key: &Key, (lo, hi): (&Scalar, &Scalar)) -> bool {
    match (key, lo, hi) {
        (Key::Int(n), Scalar::Int(lo), Scalar::Int(hi)) => lo < n && n < hi,
        (Key::Text(t), Scalar::Text(lo), Scalar::Text(hi)) => lo < t && t < hi,
        _ => false,
    }
}

fn random_i64() -> Result<i64> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).map_err(|e| Error::io("<random source>", std::io::Error::other(e.to_string())))?;
    Ok(i64::from_le_bytes(bytes))
}

impl Cache {
    /// Leases the front item of a queue (at-least-once delivery): the item
    /// stays on disk, invisible to other consumers, until the returned
    /// [`Lease`] is acked or nacked or runs out. Items whose lease ran out
    /// are delivered first. `None` when nothing is available.
    ///
    /// # Errors
    ///
    /// An item whose value does not decode as `V` (a Python pickle, a value
    /// of another type) fails with [`Error::Decode`] or [`Error::Pickled`]
    /// naming its queue key, and that delivery counts and fails at once: the
    /// item stays at the front of the queue, its delivery count one higher,
    /// and the delivery that reaches `max_deliveries` moves it to the
    /// dead-letter queue whole (its stored value kept, for a reader that
    /// can decode it), so the next lease takes the next item. Without
    /// `max_deliveries`, [`Cache::dead_letter_undecodable`] moves it.
    ///
    /// The errors of any write ([the crate's errors](crate#errors)):
    /// [`Error::Timeout`] when the write lock stays taken past the timeout,
    /// [`Error::InvalidUse`] on a read-only handle; [`Error::InvalidUse`] when
    /// the queue's key range is used up (moving an item to the dead-letter
    /// queue).
    ///
    /// [`Error::InvalidSetting`] for options that cannot work: a zero
    /// duration, `max_deliveries` of 0, or a dead-letter queue that is the
    /// leased queue itself.
    ///
    /// ```
    /// use std::time::Duration;
    /// use diskq::{Cache, LeaseOptions, Side};
    /// let dir = tempfile::tempdir()?;
    /// let cache = Cache::open(dir.path())?;
    /// cache.push("job-1")?;
    /// let opts = LeaseOptions::new(Duration::from_secs(60));
    /// let lease = cache.lease::<String>(&opts)?.expect("one job");
    /// assert_eq!(lease.value(), "job-1");
    /// assert!(cache.lease::<String>(&opts)?.is_none(), "invisible while leased");
    /// lease.nack(Side::Front)?; // give it back
    /// let again = cache.lease::<String>(&opts)?.expect("back in the queue");
    /// assert_eq!(again.deliveries(), 2);
    /// again.ack()?; // done: deleted
    /// assert!(cache.is_empty()?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn lease<V: DeserializeOwned>(&self, opts: &LeaseOptions) -> Result<Option<Lease<V>>> {
        self.lease_by(opts, None)
    }

    /// [`Cache::lease`], waiting for the write lock until `deadline` at most.
    pub(crate) fn lease_by<V: DeserializeOwned>(
        &self,
        opts: &LeaseOptions,
        deadline: Option<Instant>,
    ) -> Result<Option<Lease<V>>> {
        opts.validate()?;
        let queue = opts.prefix.as_deref().unwrap_or_default();
        let (lo, hi) = bounds(opts.prefix.as_deref());
        let token = random_i64()?;
        let lease_id = random_i64()?;
        let taken = self.store().write_by(opts.retry, deadline, |s| {
            s.create_lease_table()?;
            let now = self.now();
            let deadline = now + opts.duration.as_secs_f64();
            // Leases that ran out go first.
            while let Some((expired, deliveries, item)) = s.expired_lease(queue, now)? {
                let key = Key::Text(expired);
                if s.rowid_of(&key)? != Some(item) {
                    s.delete_lease_row(&key)?; // its item was removed
                    continue;
                }
                s.count(queue, Counter::Redelivered, 1)?;
                if opts.max_deliveries.is_some_and(|max| deliveries >= i64::from(max)) {
                    to_dead_letter(s, &key, opts, None, now)?;
                    continue;
                }
                let delay = opts.retry_policy.delay(u32::try_from(deliveries).unwrap_or(u32::MAX));
                if !delay.is_zero() {
                    // Due the policy's delay after the lease ran out.
                    let ran_out = s.lease_row(&key)?.and_then(|r| r.deadline).unwrap_or(now);
                    let ready = ran_out + secs(delay);
                    if ready > now {
                        let row = LeaseRow {
                            deliveries,
                            token: 0,
                            item,
                            deadline: None,
                        };
                        lease_to_job(s, &key, &row, queue, ready, None)?;
                        s.count(queue, Counter::Scheduled, 1)?;
                        continue;
                    }
                }
                let row = LeaseRow {
                    deliveries: deliveries + 1,
                    token,
                    item,
                    deadline: Some(deadline),
                };
                s.put_lease_row(&key, queue, &row)?;
                let was = queue_key_of(&key);
                match self.lease_value(s, &was, &key, item)? {
                    Leased::Value(value) => {
                        s.count(queue, Counter::Leased, 1)?;
                        return Ok(Taken::Lease(key, row, value));
                    }
                    Leased::Gone => continue,
                    Leased::Undecodable(e) => return failed_delivery(s, &key, &was, &row, opts, e, now),
                }
            }
            if s.job_gauge(queue)? > 0 {
                while let Some(job) = s.expired_job(queue, now)? {
                    s.count(queue, Counter::Redelivered, 1)?;
                    if opts.max_deliveries.is_some_and(|max| job.deliveries >= i64::from(max)) {
                        job_to_dead_letter(s, &job, job.deliveries, job.last_error.as_deref(), opts, now)?;
                        continue;
                    }
                    let delay = opts
                        .retry_policy
                        .delay(u32::try_from(job.deliveries).unwrap_or(u32::MAX));
                    let ready = job.deadline.unwrap_or(now) + secs(delay);
                    if ready > now {
                        s.reschedule_job(job.id, ready, job.last_error.as_deref())?;
                        s.count(queue, Counter::Scheduled, 1)?;
                        continue;
                    }
                    match self.lease_job_now(s, queue, &job, token, deadline, now, opts)? {
                        Taken::Nothing => continue,
                        taken => return Ok(taken),
                    }
                }
                while let Next::Job(job) = pick(s, queue, (&lo, &hi), now)? {
                    match self.lease_job_now(s, queue, &job, token, deadline, now, opts)? {
                        Taken::Nothing => continue, // its item was gone: removed
                        taken => return Ok(taken),
                    }
                }
            }
            let Some((front, _)) = s.peek((&lo, &hi), now, false)? else {
                return Ok(Taken::Nothing);
            };
            let Some(item) = s.rowid_of(&front)? else {
                return Ok(Taken::Nothing);
            };
            // A nacked item keeps its delivery count.
            let before = match s.lease_row(&front)? {
                Some(row) => {
                    s.delete_lease_row(&front)?;
                    if row.item == item { row.deliveries } else { 0 }
                }
                None => 0,
            };
            let lease_key = lease_key(lease_id, &front);
            s.rename_key(&front, &lease_key)?;
            let row = LeaseRow {
                deliveries: before + 1,
                token,
                item,
                deadline: Some(deadline),
            };
            s.put_lease_row(&lease_key, queue, &row)?;
            // A decode error names the key the item had in its queue.
            match self.lease_value(s, &front, &lease_key, item)? {
                Leased::Value(value) => {
                    s.count(queue, Counter::Leased, 1)?;
                    Ok(Taken::Lease(lease_key, row, value))
                }
                Leased::Gone => Ok(Taken::Nothing),
                Leased::Undecodable(e) => failed_delivery(s, &lease_key, &front, &row, opts, e, now),
            }
        })?;
        match taken {
            Taken::Lease(key, row, value) => Ok(Some(Lease {
                cache: self.clone(),
                key,
                token,
                deliveries: u32::try_from(row.deliveries).unwrap_or(u32::MAX),
                deadline: row.deadline.unwrap_or_default(),
                opts: opts.clone(),
                value,
                job: None,
                last_error: None,
            })),
            Taken::Job(key, row, id, last_error, value) => Ok(Some(Lease {
                cache: self.clone(),
                key,
                token,
                deliveries: u32::try_from(row.deliveries).unwrap_or(u32::MAX),
                deadline: row.deadline.unwrap_or_default(),
                opts: opts.clone(),
                value,
                job: Some(id),
                last_error,
            })),
            Taken::Nothing => Ok(None),
            // The delivery was counted (and committed) all the same.
            Taken::Undecodable(e) => Err(e),
        }
    }

    /// Leases `job` to `token` until `deadline`, inside `s`: the lease, or
    /// `Nothing` when its item was gone (the job is removed), or the decode
    /// error of a delivery that counted (the job is ready again, or dead).
    #[allow(clippy::too_many_arguments)]
    fn lease_job_now<V: DeserializeOwned>(
        &self,
        s: &mut Session,
        queue: &str,
        job: &JobRow,
        token: i64,
        deadline: f64,
        now: f64,
        opts: &LeaseOptions,
    ) -> Result<Taken<V>> {
        let key = Key::Text(job_key(job.id));
        let deliveries = job.deliveries + 1;
        s.lease_job(job.id, deadline, token, deliveries)?;
        match self.job_value::<V>(s, queue, &key, job, now) {
            Ok(Some((value, _))) => {
                s.count(queue, Counter::Leased, 1)?;
                let row = LeaseRow {
                    deliveries,
                    token,
                    item: job.item,
                    deadline: Some(deadline),
                };
                Ok(Taken::Job(key, row, job.id, job.last_error.clone(), value))
            }
            Ok(None) => Ok(Taken::Nothing),
            Err(e) if e.is_decode() => {
                if opts.max_deliveries.is_some_and(|max| deliveries >= i64::from(max)) {
                    job_to_dead_letter(s, job, deliveries, Some(&e.to_string()), opts, now)?;
                } else {
                    s.reschedule_job(job.id, now, job.last_error.as_deref())?;
                }
                Ok(Taken::Undecodable(e))
            }
            Err(e) => Err(e),
        }
    }

    /// Loads and decodes a leased item (a decode error names `shown`); drops
    /// it when its value file is gone.
    fn lease_value<V: DeserializeOwned>(
        &self,
        s: &mut Session,
        shown: &Key,
        key: &Key,
        item: i64,
    ) -> Result<Leased<V>> {
        let Some(mut row) = s.row_by_rowid(item)? else {
            return Ok(Leased::Gone);
        };
        match self.load(&mut row)? {
            Some(stored) => match codec::decode(stored, shown) {
                Ok(value) => Ok(Leased::Value(value)),
                Err(e) if e.is_decode() => Ok(Leased::Undecodable(e)),
                Err(e) => Err(e),
            },
            None => {
                s.delete_rowid(item, None)?;
                s.delete_lease_row(key)?;
                Ok(Leased::Gone)
            }
        }
    }

    /// Moves every item of the dead-letter queue of `opts` back to the back
    /// of the leased queue, in one transaction; returns how many. Their
    /// delivery counts start again from zero.
    ///
    /// # Errors
    ///
    /// The errors of any write ([the crate's errors](crate#errors)):
    /// [`Error::Timeout`] when the write lock stays taken past the timeout,
    /// [`Error::InvalidUse`] on a read-only handle; [`Error::InvalidUse`] when
    /// the leased queue's key range is used up; [`Error::InvalidSetting`] for
    /// invalid options, as [`Cache::lease`].
    ///
    /// ```
    /// use std::time::Duration;
    /// use diskq::{LeaseOptions, Side};
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::Cache::open(dir.path())?;
    /// cache.push("job")?;
    /// let opts = LeaseOptions::new(Duration::from_secs(30)).max_deliveries(1);
    /// cache.lease::<String>(&opts)?.expect("queued").nack(Side::Back)?; // a dead letter now
    /// assert_eq!(cache.requeue_dead_letters(&opts)?, 1);
    /// assert_eq!(cache.lease::<String>(&opts)?.expect("requeued").deliveries(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn requeue_dead_letters(&self, opts: &LeaseOptions) -> Result<usize> {
        opts.validate()?;
        let dead = opts.dead_letter_prefix();
        let (lo, hi) = bounds(Some(&dead));
        self.store().write(opts.retry, None, |s| {
            let mut moved = 0;
            while let Some(front) = s.queue_edge((&lo, &hi), false)? {
                let key = queue_key(s, opts.prefix.as_deref(), Side::Back)?;
                s.rename_key(&front, &key)?;
                s.forget_dead_letter(&front)?;
                moved += 1;
            }
            if moved > 0 {
                s.mark_pushed();
            }
            Ok(moved)
        })
    }

    /// How many items of a queue wait, and how many are leased, read in one
    /// snapshot. A queue whose backlog is zero on both counts has no work
    /// left: nothing queued, and no consumer that could still push more or
    /// whose lease could still run out.
    ///
    /// # Errors
    ///
    /// Only the storage errors of a read ([the crate's errors](crate#errors)).
    ///
    /// ```
    /// use std::time::Duration;
    /// use diskq::{LeaseOptions, PushOptions};
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::Cache::open(dir.path())?;
    /// cache.push_many(["a", "b", "c"], &PushOptions::new().prefix("jobs"))?;
    /// let _held = cache.lease::<String>(&LeaseOptions::new(Duration::from_secs(30)).prefix("jobs"))?;
    /// let backlog = cache.backlog(Some("jobs"))?;
    /// assert_eq!((backlog.queued, backlog.leased), (2, 1));
    /// assert!(cache.backlog(None)?.is_empty(), "the integer queue is another queue");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn backlog(&self, prefix: Option<&str>) -> Result<Backlog> {
        let (lo, hi) = bounds(prefix);
        self.store().read_snapshot(|s| {
            let now = self.now();
            let queued = s.queued((&lo, &hi), now)?;
            let leased = s.leases_of(prefix.unwrap_or_default())?;
            let jobs = s.job_counts(prefix.unwrap_or_default(), now)?;
            Ok(Backlog {
                queued: (queued + jobs.ready).try_into().unwrap_or(0),
                leased: (leased + jobs.leased).try_into().unwrap_or(0),
                scheduled: jobs.scheduled.try_into().unwrap_or(0),
            })
        })
    }

    /// [`Cache::lease`], waiting up to `wait` for an item: pushed by any
    /// thread or process, or freed by a lease that runs out.
    ///
    /// # Errors
    ///
    /// Returns by its own deadline, whatever the cache's timeout: `None`
    /// when no item could be leased in time, [`Error::Timeout`] when another
    /// connection held the write lock for the whole wait. `Duration::MAX`
    /// waits as long as it can.
    ///
    /// Also the errors of [`Cache::lease`].
    ///
    /// ```
    /// use std::time::Duration;
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::Cache::open(dir.path())?;
    /// let opts = diskq::LeaseOptions::new(Duration::from_secs(30));
    /// let producer = {
    ///     let cache = cache.clone();
    ///     std::thread::spawn(move || cache.push("job"))
    /// };
    /// let lease = cache.lease_timeout::<String>(&opts, Duration::from_secs(10))?.expect("pushed");
    /// assert_eq!(lease.value(), "job");
    /// producer.join().expect("no panic")?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn lease_timeout<V: DeserializeOwned>(&self, opts: &LeaseOptions, wait: Duration) -> Result<Option<Lease<V>>> {
        let until = crate::deadline::from_now(wait);
        let queue = opts.prefix.as_deref().unwrap_or_default().to_string();
        let mut watcher = self.store().watcher()?;
        watcher.takes_from(opts.prefix.as_deref(), false);
        let mut looked = false;
        loop {
            // The clock before the look: a job due after it wakes the wait.
            let look = self.now();
            match self.lease_by(opts, Some(until)) {
                Ok(Some(lease)) => return Ok(Some(lease)),
                Ok(None) => looked = true,
                Err(e) if e.is_timeout() => {
                    if Instant::now() < until {
                        // The store's timeout is shorter than the wait (or
                        // SQLite answered busy at once): try again, unhurried.
                        std::thread::sleep(Duration::from_millis(1));
                        continue;
                    }
                    return if looked { Ok(None) } else { Err(e) };
                }
                Err(e) => return Err(e),
            }
            let now = Instant::now();
            if now >= until {
                return Ok(None);
            }
            // Wake up when the next running lease runs out, at the latest.
            let next = self.store().read(|s| {
                let lease = if s.has_lease_table()? {
                    s.next_deadline(&queue)?
                } else {
                    None
                };
                // A job that becomes due, or whose lease runs out.
                let job = s.next_job_event(&queue, look)?;
                Ok(match (lease, job) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                })
            })?;
            let wake = match next {
                Some(deadline) => {
                    let secs = (deadline - self.now()).max(0.0) + 0.001;
                    crate::deadline::after(now, crate::deadline::seconds(secs))
                }
                None => until,
            };
            watcher.wait(wake.min(until))?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_keys_name_the_queue_key_and_stay_outside_queue_ranges() {
        for queue_key in [Key::Int(500_000_000_000_001), Key::Text("jobs-500000000000000".into())] {
            let leased = lease_key(0x0123_4567_89ab_cdef, &queue_key);
            assert_eq!(queue_key_of(&leased), queue_key);
            let (lo, hi) = bounds(Some("diskq-lease"));
            let (Scalar::Text(lo), Scalar::Text(hi), Key::Text(k)) = (lo, hi, &leased) else {
                panic!("text bounds and keys");
            };
            assert!(
                !(lo.as_str() < k.as_str() && k.as_str() < hi.as_str()),
                "{k} in {lo}..{hi}"
            );
        }
        let old = Key::Text("diskq-lease-0123456789abcdef".into());
        assert_eq!(queue_key_of(&old), old);
    }
}
