//! Lease ids: a lease taken by one process, acked, nacked or renewed by
//! another (a shell worker runs `diskq lease` and later `diskq ack`).
//!
//! A lease is its item's lease key (`diskq-lease-k<16 hex digits>-<queue
//! key>`, see `store/lease.rs`) and the holder's token. Both are already on
//! disk, and the 16 random hex digits name the lease key alone, so the id
//! is only `<16 hex digits>.<16 hex digits of the token>`: short, and safe
//! in a shell whatever the queue's name. Whoever holds the id holds the
//! lease, as whoever holds the [`Lease`] does.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::de::DeserializeOwned;

use super::{LEASE_KEY_PREFIX, Lease, LeaseOptions, held, held_job};
use crate::cache::Cache;
use crate::codec;
use crate::error::{Error, Result};
use crate::key::Key;
use crate::store::{JOB_KEY_PREFIX, Session, job_key};

/// The start of lease keys made before they named their queue key
/// (`diskq-lease-<16 hex digits>`), which may still be running.
const OLD_LEASE_KEY_PREFIX: &str = "diskq-lease-";
/// Hex digits in each half of an id.
const HALF: usize = 16;

/// The name of a running lease, to pass it to another process: its
/// [`Display`](fmt::Display) form (`<16 hex digits>.<16 hex digits>`)
/// parses back with [`str::parse`], and [`Cache::resume_lease`] turns it
/// into the [`Lease`] again, in any process that opens the directory.
///
/// ```
/// use std::time::Duration;
/// use diskq::{Cache, LeaseId, LeaseOptions};
/// let dir = tempfile::tempdir()?;
/// let cache = Cache::open(dir.path())?;
/// cache.push("job-1")?;
/// let opts = LeaseOptions::new(Duration::from_secs(60));
/// let lease = cache.lease::<String>(&opts)?.expect("one job");
/// let text = lease.id().to_string(); // hand this to another process
/// assert_eq!(text.len(), 33);
/// let id: LeaseId = text.parse()?;
/// assert_eq!(id, lease.id());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LeaseId {
    /// The 16 hex digits of the lease key.
    key: String,
    token: i64,
}

impl LeaseId {
    /// The lease key this id names, and its queue, if it is in the table.
    fn find(&self, s: &Session) -> Result<Option<(Key, String)>> {
        for prefix in [LEASE_KEY_PREFIX, OLD_LEASE_KEY_PREFIX] {
            // The digits end the key or are followed by `-`; `.` sorts
            // right after `-`.
            let start = format!("{prefix}{}", self.key);
            let end = format!("{start}.");
            if let Some((key, queue)) = s.lease_key_between(&start, &end)? {
                return Ok(Some((Key::Text(key), queue)));
            }
        }
        Ok(None)
    }
}

impl fmt::Display for LeaseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:016x}", self.key, self.token.cast_unsigned())
    }
}

impl FromStr for LeaseId {
    type Err = Error;

    /// Parses the [`Display`](fmt::Display) form; anything else is an
    /// [`Error::InvalidUse`] that quotes the text.
    ///
    /// ```
    /// use diskq::LeaseId;
    /// assert!("0123456789abcdef.fedcba9876543210".parse::<LeaseId>().is_ok());
    /// assert!("not-a-lease".parse::<LeaseId>().is_err());
    /// ```
    fn from_str(text: &str) -> Result<LeaseId> {
        let refuse = || {
            Error::InvalidUse(format!(
                "{text:?} is not a lease id (16 hex digits, a dot, 16 hex digits)"
            ))
        };
        let hex = |half: &str| {
            if half.len() == HALF && half.bytes().all(|b| b.is_ascii_hexdigit()) {
                u64::from_str_radix(half, 16).ok()
            } else {
                None
            }
        };
        let (key, token) = text.trim().split_once('.').ok_or_else(refuse)?;
        let key = hex(key).ok_or_else(refuse)?;
        let token = hex(token).ok_or_else(refuse)?;
        Ok(LeaseId {
            // The form the lease key was written in (lower case).
            key: format!("{key:016x}"),
            token: token.cast_signed(),
        })
    }
}

impl<V> Lease<V> {
    /// The lease's id, for another process to ack, nack or renew it with
    /// [`Cache::resume_lease`].
    ///
    /// ```
    /// use std::time::Duration;
    /// use diskq::{Cache, LeaseOptions};
    /// let dir = tempfile::tempdir()?;
    /// let cache = Cache::open(dir.path())?;
    /// cache.push("job-1")?;
    /// let lease = cache.lease::<String>(&LeaseOptions::new(Duration::from_secs(60)))?.expect("a job");
    /// println!("leased {}", lease.id());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn id(&self) -> LeaseId {
        // Lease keys are made by `Cache::lease`: one of the two prefixes,
        // then 16 hex digits.
        let key = match &self.key {
            Key::Text(text) => {
                let rest = text
                    .strip_prefix(LEASE_KEY_PREFIX)
                    .or_else(|| text.strip_prefix(OLD_LEASE_KEY_PREFIX))
                    .or_else(|| text.strip_prefix(JOB_KEY_PREFIX))
                    .unwrap_or(text);
                rest.get(..HALF).unwrap_or(rest).to_string()
            }
            other => other.to_string(),
        };
        LeaseId { key, token: self.token }
    }
}

impl Cache {
    /// The running lease named `id` (from [`Lease::id`], perhaps in another
    /// process), with its item's value, to [`ack`](Lease::ack),
    /// [`nack`](Lease::nack) or [`renew`](Lease::renew) it. `None` when
    /// the lease is no longer held: it was acked or nacked, or it ran out and
    /// the item went to another lease (or its item was removed). A lease that
    /// ran out but whose item nobody took yet is still held, as it is for
    /// the [`Lease`] itself.
    ///
    /// The lease's queue is its own: `opts.prefix` may be `None` (take the
    /// lease's), and when it names a queue it must be the lease's
    /// ([`Error::InvalidUse`] otherwise). `opts.max_deliveries`,
    /// `opts.dead_letter` and `opts.retry` apply to a later nack as they do
    /// to a lease's; `opts.duration` is not used (the lease keeps its
    /// deadline). Reading the lease writes nothing.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidUse`] when `opts.prefix` names another queue than the
    /// lease's; [`Error::Decode`] or [`Error::Pickled`] when the item's value
    /// does not decode as `V`; the storage errors of a read ([the crate's
    /// errors](crate#errors)).
    ///
    /// ```
    /// use std::time::Duration;
    /// use diskq::{Cache, LeaseId, LeaseOptions};
    /// let dir = tempfile::tempdir()?;
    /// let cache = Cache::open(dir.path())?;
    /// cache.push("job-1")?;
    /// let opts = LeaseOptions::new(Duration::from_secs(60));
    /// let id = cache.lease::<String>(&opts)?.expect("a job").id().to_string();
    ///
    /// // Later, perhaps in another process:
    /// let id: LeaseId = id.parse()?;
    /// let lease = cache.resume_lease::<String>(&id, &opts)?.expect("still held");
    /// assert_eq!(lease.value(), "job-1");
    /// assert!(lease.ack()?);
    /// assert!(cache.resume_lease::<String>(&id, &opts)?.is_none(), "acked: gone");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn resume_lease<V: DeserializeOwned>(&self, id: &LeaseId, opts: &LeaseOptions) -> Result<Option<Lease<V>>> {
        // The duration is not used here; the other options are checked as
        // a lease checks them.
        let mut checked = opts.clone();
        checked.duration = Duration::from_secs(1);
        checked.validate()?;
        if let Some(lease) = self.resume_job_lease(id, &checked)? {
            return Ok(Some(lease));
        }
        let found = self.store().read(|s| {
            if !s.has_lease_table()? {
                return Ok(None);
            }
            let Some((key, queue)) = id.find(s)? else {
                return Ok(None);
            };
            let Some(row) = held(s, &key, id.token)? else {
                return Ok(None);
            };
            let Some(mut item) = s.row_by_rowid(row.item)? else {
                return Ok(None);
            };
            match self.load(&mut item)? {
                Some(stored) => {
                    let value = codec::decode::<V>(stored, &super::queue_key_of(&key))?;
                    Ok(Some((key, row, queue, value)))
                }
                // The value file is gone: the next lease drops the item.
                None => Ok(None),
            }
        })?;
        let Some((key, row, queue, value)) = found else {
            return Ok(None);
        };
        let prefix = resumed_prefix(id, opts, queue)?;
        Ok(Some(Lease {
            cache: self.clone(),
            key,
            token: id.token,
            deliveries: u32::try_from(row.deliveries).unwrap_or(u32::MAX),
            deadline: row.deadline.unwrap_or_default(),
            opts: LeaseOptions { prefix, ..checked },
            value,
            job: None,
            last_error: None,
        }))
    }

    /// [`Cache::resume_lease`] of a job's lease (its id names the job).
    fn resume_job_lease<V: DeserializeOwned>(&self, id: &LeaseId, opts: &LeaseOptions) -> Result<Option<Lease<V>>> {
        let Ok(job_id) = u64::from_str_radix(&id.key, 16).map(u64::cast_signed) else {
            return Ok(None);
        };
        let found = self.store().read(|s| {
            let Some(job) = held_job(s, job_id, id.token)? else {
                return Ok(None);
            };
            let queue = s.job_queue(job_id)?.unwrap_or_default();
            let key = Key::Text(job_key(job_id));
            let Some(mut item) = s.row_by_rowid(job.item)? else {
                return Ok(None);
            };
            match self.load(&mut item)? {
                Some(stored) => Ok(Some((key.clone(), job, queue, codec::decode::<V>(stored, &key)?))),
                None => Ok(None),
            }
        })?;
        let Some((key, job, queue, value)) = found else {
            return Ok(None);
        };
        let prefix = resumed_prefix(id, opts, queue)?;
        Ok(Some(Lease {
            cache: self.clone(),
            key,
            token: id.token,
            deliveries: u32::try_from(job.deliveries).unwrap_or(u32::MAX),
            deadline: job.deadline.unwrap_or_default(),
            opts: LeaseOptions { prefix, ..opts.clone() },
            value,
            job: Some(job_id),
            last_error: job.last_error,
        }))
    }
}

/// The queue prefix of a resumed lease whose item is of `queue`: the one
/// the options name, which must be that queue, or else the item's own.
fn resumed_prefix(id: &LeaseId, opts: &LeaseOptions, queue: String) -> Result<Option<String>> {
    match &opts.prefix {
        Some(p) if *p != queue => Err(Error::InvalidUse(format!(
            "lease {id} is of the queue {queue:?}, not of {p:?}"
        ))),
        Some(p) => Ok(Some(p.clone())),
        None if queue.is_empty() => Ok(None),
        None => Ok(Some(queue)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_print_and_parse_back() {
        let id = LeaseId {
            key: "00000000000000ff".into(),
            token: -1,
        };
        assert_eq!(id.to_string(), "00000000000000ff.ffffffffffffffff");
        assert_eq!(id.to_string().parse::<LeaseId>().expect("parses"), id);
        let upper: LeaseId = "00000000000000FF.FFFFFFFFFFFFFFFF".parse().expect("parses");
        assert_eq!(upper, id, "hex digits in either case");
        for bad in [
            "",
            ".",
            "ff.ff",
            "00000000000000ff",
            "00000000000000ff.fffffffffffffffg",
            "+0000000000000ff.ffffffffffffffff",
        ] {
            let err = bad.parse::<LeaseId>().expect_err(bad);
            assert!(err.to_string().contains("is not a lease id"), "{err}");
        }
    }
}
