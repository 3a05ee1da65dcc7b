//! Per-queue counters ([`QueueStats`]): what a queue has done, persisted.

use crate::cache::Cache;
use crate::error::Result;
use crate::store::CounterRow;

/// What one queue has done since its directory was made: how many items
/// were pushed, popped, leased, acked, nacked, redelivered (taken again
/// after a lease ran out), dead-lettered and scheduled (pushed or nacked
/// with a delay). From [`Cache::queue_stats`] or
/// [`Deque::stats`](crate::Deque::stats).
///
/// Each count is kept by the transaction that does the counted thing, so it
/// is exact, survives restarts and is shared by every diskq process on the
/// directory; a transaction that rolls back counts nothing. Counts only
/// grow: take two snapshots for a rate. python-diskcache's pushes and pulls
/// on the same directory are not counted (it knows nothing of them).
///
/// ```
/// use std::time::Duration;
/// let dir = tempfile::tempdir()?;
/// let jobs = diskq::Deque::<String>::open(dir.path())?;
/// jobs.extend(["a", "b", "c"])?;
/// jobs.pop_front()?;
/// jobs.lease(Duration::from_secs(60))?.expect("a job").ack()?;
/// let stats = jobs.stats()?;
/// assert_eq!((stats.pushed, stats.popped, stats.leased, stats.acked), (3, 1, 1, 1));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct QueueStats {
    /// Items pushed (a batch push counts each item).
    pub pushed: u64,
    /// Items popped (pulled), at-most-once.
    pub popped: u64,
    /// Leases given, redeliveries included.
    pub leased: u64,
    /// Leases acked while still held.
    pub acked: u64,
    /// Leases nacked while still held (those that went to the dead-letter
    /// queue included).
    pub nacked: u64,
    /// Leases that ran out and whose item was found by a later lease call
    /// (to be leased again, retried later or dead-lettered).
    pub redelivered: u64,
    /// Items moved to the queue's dead-letter queue (after `max_deliveries`,
    /// or by `dead_letter_undecodable`).
    pub dead_lettered: u64,
    /// Items pushed with a delay, or put back with one (a nack with a
    /// delay, a retry policy's backoff).
    pub scheduled: u64,
}

impl From<CounterRow> for QueueStats {
    fn from(row: CounterRow) -> QueueStats {
        let n = |v: i64| u64::try_from(v).unwrap_or(0);
        QueueStats {
            pushed: n(row.pushed),
            popped: n(row.popped),
            leased: n(row.leased),
            acked: n(row.acked),
            nacked: n(row.nacked),
            redelivered: n(row.redelivered),
            dead_lettered: n(row.dead_lettered),
            scheduled: n(row.scheduled),
        }
    }
}

impl Cache {
    /// The counters of the queue `prefix` (`None`: the integer-keyed queue);
    /// zeros for a queue nothing was counted for. Read in one snapshot, so
    /// the counts agree with each other.
    ///
    /// # Errors
    ///
    /// The storage errors of a read ([the crate's errors](crate#errors)). A queue
    /// that never counted anything is not an error: its counters are zeros.
    ///
    /// ```
    /// use diskq::{Cache, PullOptions, PushOptions};
    /// let dir = tempfile::tempdir()?;
    /// let cache = Cache::open(dir.path())?;
    /// cache.push_many(["a", "b"], &PushOptions::new().prefix("jobs"))?;
    /// cache.pull_with::<String>(&PullOptions::new().prefix("jobs"))?;
    /// let stats = cache.queue_stats(Some("jobs"))?;
    /// assert_eq!((stats.pushed, stats.popped), (2, 1));
    /// assert_eq!(cache.queue_stats(None)?.pushed, 0); // another queue
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn queue_stats(&self, prefix: Option<&str>) -> Result<QueueStats> {
        let queue = prefix.unwrap_or_default();
        self.store().read(|s| Ok(s.counters(queue)?.into()))
    }

    /// The counters of every queue that has counted something, by name
    /// (`""` is the integer-keyed queue), in name order.
    ///
    /// # Errors
    ///
    /// The storage errors of a read ([the crate's errors](crate#errors)).
    ///
    /// ```
    /// use diskq::{Cache, PushOptions};
    /// let dir = tempfile::tempdir()?;
    /// let cache = Cache::open(dir.path())?;
    /// cache.push("x")?;
    /// cache.push_with("y", &PushOptions::new().prefix("jobs"))?;
    /// let names: Vec<String> = cache.all_queue_stats()?.into_iter().map(|(name, _)| name).collect();
    /// assert_eq!(names, ["", "jobs"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn all_queue_stats(&self) -> Result<Vec<(String, QueueStats)>> {
        self.store()
            .read(|s| Ok(s.all_counters()?.into_iter().map(|(q, row)| (q, row.into())).collect()))
    }
}
