//! Listing the running leases of a queue: what is in flight, since how many
//! deliveries, and until when.

use std::time::SystemTime;

use crate::cache::Cache;
use crate::error::Result;
use crate::key::Key;

/// The most running leases one [`Cache::running_leases`] call lists.
const MAX_LISTED: usize = 10_000;

/// A lease of a queue's item that was neither acked nor nacked yet
/// ([`Cache::running_leases`], [`Deque::running_leases`](crate::Deque::running_leases)).
///
/// A lease whose `deadline` has passed has run out but was not taken back
/// yet: the next lease of its queue delivers its item again (or moves it
/// to the dead-letter queue, past `max_deliveries`). A lease whose item was
/// removed meanwhile (deleted by its key, say: an ack of it then finds
/// nothing) is not listed, though [`Backlog::leased`](crate::Backlog::leased)
/// still counts it until the lease runs out.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use diskq::{Deque, LeaseOptions};
/// let dir = tempfile::tempdir()?;
/// let jobs: Deque<String> = Deque::open(dir.path())?;
/// jobs.push_back("resize a.png")?;
/// jobs.push_back("resize b.png")?;
/// let lease = jobs.lease(Duration::from_secs(60))?.expect("queued");
/// let running = jobs.running_leases(10)?;
/// assert_eq!(running.len(), 1);
/// assert_eq!(running[0].deliveries, 1);
/// assert_eq!(running[0].deadline, lease.deadline());
/// assert!(running[0].deadline > SystemTime::now());
/// // The item stays under the lease's key until it is acked.
/// let value: Option<String> = jobs.cache().get(running[0].key.clone())?;
/// assert_eq!(value.as_deref(), Some("resize a.png"));
/// lease.ack()?;
/// assert!(jobs.running_leases(10)?.is_empty());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RunningLease {
    /// The key the leased item is kept under while leased: its lease key
    /// (`diskq-lease-k…`, or `diskq-lease-<16 hex digits>` for a lease
    /// taken by an earlier diskq, before lease keys named their queue
    /// key), or its job key (`diskq-job-k…`) for a delayed,
    /// prioritized or unique item. [`Cache::get`] reads its value there.
    pub key: Key,
    /// When the lease runs out, by the cache's clock.
    pub deadline: SystemTime,
    /// How many times the item has been delivered, this lease included.
    pub deliveries: u32,
    /// Bytes of its stored value.
    pub size: u64,
    /// Why its previous delivery failed, as that delivery's nack said
    /// ([`NackOptions::error`](crate::NackOptions::error)); `None` on a
    /// first delivery or when no reason was given.
    pub last_error: Option<String>,
}

impl Cache {
    /// The running leases of the queue `prefix` (`None`: the integer-keyed
    /// queue), the first to run out first, `limit` at most (and 10 000 at
    /// most): the leases taken by any process that were not acked or nacked
    /// yet, those that ran out and were not taken back included. Among
    /// leases that run out at the same time the order is their keys', so a
    /// shorter listing is the start of a longer one. Nothing is taken or
    /// changed: this is a read (one query per table, in one snapshot), and
    /// works on a cache opened read-only and on PostgreSQL. The values are
    /// neither read nor decoded.
    ///
    /// # Errors
    ///
    /// Only the storage errors of a read ([the crate's errors](crate#errors)).
    ///
    /// ```
    /// use std::time::Duration;
    /// use diskq::{Cache, LeaseOptions, NackOptions, PushOptions};
    /// let dir = tempfile::tempdir()?;
    /// let cache = Cache::open(dir.path())?;
    /// cache.push_many(["https://a.example/", "https://b.example/"], &PushOptions::new().prefix("fetch"))?;
    /// let opts = LeaseOptions::new(Duration::from_secs(30)).prefix("fetch");
    /// let first = cache.lease::<String>(&opts)?.expect("queued");
    /// first.nack_with(&NackOptions::new().error("HTTP 503"))?;
    /// let again = cache.lease::<String>(&opts)?.expect("back at the front");
    /// let other = cache.lease::<String>(&opts)?.expect("the second");
    /// let running = cache.running_leases(Some("fetch"), 100)?;
    /// assert_eq!(running.len(), 2);
    /// let retried = running.iter().find(|l| l.deliveries == 2).expect("the retried one");
    /// assert_eq!(retried.last_error.as_deref(), Some("HTTP 503"));
    /// assert!(cache.running_leases(None, 100)?.is_empty(), "the integer queue is another queue");
    /// # drop((again, other));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn running_leases(&self, prefix: Option<&str>, limit: usize) -> Result<Vec<RunningLease>> {
        let queue = prefix.unwrap_or_default();
        let limit = limit.min(MAX_LISTED);
        let n = i64::try_from(limit).unwrap_or(i64::MAX);
        self.store().read_snapshot(|s| {
            // Each list is in (deadline, key) order and cut at `limit`, so
            // the first `limit` of the two merged are the first of all.
            let mut rows = s.running_leases(queue, n)?;
            rows.extend(s.leased_jobs(queue, n)?);
            rows.sort_by(|a, b| {
                let by_deadline = a.deadline.partial_cmp(&b.deadline).unwrap_or(std::cmp::Ordering::Equal);
                by_deadline.then_with(|| a.key.cmp(&b.key))
            });
            rows.truncate(limit);
            Ok(rows
                .into_iter()
                .map(|row| RunningLease {
                    key: Key::Text(row.key),
                    deadline: crate::options::to_system_time(row.deadline),
                    deliveries: u32::try_from(row.deliveries.max(0)).unwrap_or(u32::MAX),
                    size: u64::try_from(row.size).unwrap_or(0),
                    last_error: row.last_error,
                })
                .collect())
        })
    }
}
