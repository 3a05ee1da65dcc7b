//! Dead letters: the items a queue gave up on, with their delivery count
//! and the last error a nack gave (see `store/dead.rs` for where that is
//! kept, and why not in the item's lease or job row).

use std::time::SystemTime;

use super::LeaseOptions;
use crate::cache::Cache;
use crate::codec::Scalar;
use crate::error::Result;
use crate::key::Key;
use crate::queue::bounds;
use crate::store::{DeadRecord, Session};

/// The most dead letters one [`Cache::dead_letters`] call lists.
const MAX_LISTED: usize = 10_000;

/// An item of a dead-letter queue, and what is known of how it got there
/// ([`Cache::dead_letters`], [`Deque::dead_letters`](crate::Deque::dead_letters)).
///
/// `deliveries`, `last_error` and `dead_at` are known for an item that
/// diskq moved there (a lease past `max_deliveries`, a nack at the limit,
/// [`Cache::dead_letter_undecodable`]), in a directory or on PostgreSQL;
/// they are `None` for an item pushed onto the dead-letter queue directly
/// (by python-diskcache, say).
///
/// ```
/// use std::time::Duration;
/// use diskq::{Deque, LeaseOptions, NackOptions};
/// let dir = tempfile::tempdir()?;
/// let jobs: Deque<String> = Deque::open(dir.path())?;
/// jobs.push_back("resize huge.png")?;
/// let opts = LeaseOptions::new(Duration::from_secs(30)).max_deliveries(1);
/// let job = jobs.lease_with(&opts)?.expect("queued");
/// job.nack_with(&NackOptions::new().error("out of memory"))?; // the last try: a dead letter
/// let dead = jobs.dead_letters(&opts, 10)?;
/// assert_eq!(dead.len(), 1);
/// assert_eq!((dead[0].deliveries, dead[0].last_error.as_deref()), (Some(1), Some("out of memory")));
/// assert_eq!(jobs.pop_dead_letter(&opts)?.as_deref(), Some("resize huge.png"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct DeadLetter {
    /// Its key in the dead-letter queue (`dead-letter-500000000000000`).
    pub key: Key,
    /// Bytes of its stored value.
    pub size: u64,
    /// How many times it was delivered (leased) before it was given up on.
    pub deliveries: Option<u32>,
    /// The error text of the last failed delivery: the last nack's
    /// [`NackOptions::error`](crate::NackOptions::error), or why its value
    /// could not be decoded.
    pub last_error: Option<String>,
    /// When it was moved to the dead-letter queue.
    pub dead_at: Option<SystemTime>,
}

/// The record to keep for an item moved to `dead` (its new key) from
/// `queue`, inside the moving transaction.
pub(crate) fn record(
    s: &Session,
    dead: &Key,
    queue: &str,
    deliveries: Option<i64>,
    last_error: Option<&str>,
    now: f64,
) -> Result<()> {
    let (Key::Text(key), Some(item)) = (dead, s.rowid_of(dead)?) else {
        return Ok(());
    };
    s.record_dead_letter(
        key,
        &DeadRecord {
            item,
            queue: queue.to_owned(),
            stored: s.store_time_of(dead)?,
            deliveries,
            last_error: last_error.map(str::to_owned),
            dead_at: now,
        },
    )
}

/// Bytes of a stored value: its file's, or its inline bytes'.
fn stored_size(filename: Option<&String>, size: Option<i64>, value: &Scalar) -> u64 {
    let n = match (filename, value) {
        (Some(_), _) => size.unwrap_or(0),
        (None, Scalar::Text(t)) => i64::try_from(t.len()).unwrap_or(i64::MAX),
        (None, Scalar::Blob(b)) => i64::try_from(b.len()).unwrap_or(i64::MAX),
        (None, Scalar::Int(_) | Scalar::Real(_)) => 8,
        (None, Scalar::Null) => 0,
    };
    u64::try_from(n).unwrap_or(0)
}

impl Cache {
    /// The dead letters of `opts` (the items of its dead-letter queue,
    /// [`LeaseOptions::dead_letter_prefix`]), front first, `limit` at most
    /// (and 10 000 at most), each with its delivery count and last
    /// error when known (see [`DeadLetter`]). Nothing is taken or changed:
    /// this is a read, and works on a cache opened read-only. The values
    /// are not read (one that does not decode is listed all the same); get
    /// one with [`Cache::get`] by its key.
    ///
    /// # Errors
    ///
    /// Only the storage errors of a read ([the crate's errors](crate#errors)).
    ///
    /// ```
    /// use std::time::Duration;
    /// use diskq::{Cache, Key, LeaseOptions, NackOptions, PushOptions};
    /// let dir = tempfile::tempdir()?;
    /// let cache = Cache::open(dir.path())?;
    /// cache.push_with("https://example.com/", &PushOptions::new().prefix("fetch"))?;
    /// let opts = LeaseOptions::new(Duration::from_secs(30)).prefix("fetch").max_deliveries(2);
    /// for error in ["HTTP 503", "HTTP 500"] {
    ///     let job = cache.lease::<String>(&opts)?.expect("queued");
    ///     job.nack_with(&NackOptions::new().error(error))?;
    /// }
    /// let dead = cache.dead_letters(&opts, 100)?;
    /// assert_eq!(dead[0].key, Key::from("fetch-dead-letter-500000000000000"));
    /// assert_eq!(dead[0].deliveries, Some(2));
    /// assert_eq!(dead[0].last_error.as_deref(), Some("HTTP 500"));
    /// assert_eq!(cache.get::<String>(dead[0].key.clone())?.as_deref(), Some("https://example.com/"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn dead_letters(&self, opts: &LeaseOptions, limit: usize) -> Result<Vec<DeadLetter>> {
        let dead = opts.dead_letter_prefix();
        let (lo, hi) = bounds(Some(&dead));
        let limit = limit.min(MAX_LISTED);
        self.store().read_snapshot(|s| {
            let mut listed = Vec::new();
            let mut from = lo.clone();
            while listed.len() < limit {
                let Some(key) = s.queue_edge((&from, &hi), false)? else {
                    break;
                };
                from = match &key {
                    Key::Text(t) => Scalar::Text(t.clone()),
                    _ => break, // a text range holds text keys only
                };
                let Some(item) = s.rowid_of(&key)? else {
                    continue;
                };
                let Some(row) = s.row_by_rowid(item)? else {
                    continue;
                };
                let record = match s.dead_letter_record(&key)? {
                    Some(r) if r.item == item && r.stored == s.store_time_of(&key)? => Some(r),
                    _ => None, // stale: another item's
                };
                listed.push(DeadLetter {
                    size: stored_size(row.filename.as_ref(), row.size, &row.value),
                    deliveries: record
                        .as_ref()
                        .and_then(|r| r.deliveries)
                        .map(|n| u32::try_from(n).unwrap_or(u32::MAX)),
                    last_error: record.as_ref().and_then(|r| r.last_error.clone()),
                    dead_at: record.map(|r| crate::options::to_system_time(r.dead_at)),
                    key,
                });
            }
            Ok(listed)
        })
    }
}
