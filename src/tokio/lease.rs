//! The async [`Lease`]: ack, nack and renew awaited.

use std::time::{Duration, Instant};

use super::wait::turn;
use crate::cache::Cache as SyncCache;
use crate::error::Result;
use crate::lease::NackOptions;
use crate::options::Side;

/// A leased item (see [`crate::Lease`]), whose ack, nack and renew are
/// awaited. Dropping it without an ack or a nack leaves the item invisible
/// until the lease runs out, then to the next lease, as for the sync lease.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use diskq::tokio::Deque;
/// let dir = tempfile::tempdir()?;
/// let jobs: Deque<String> = Deque::open(dir.path()).await?;
/// jobs.push_back("fetch https://example.com/").await?;
/// let mut job = jobs.lease(Duration::from_secs(60)).await?.expect("a job");
/// assert_eq!(job.value(), "fetch https://example.com/");
/// assert!(job.renew(Duration::from_secs(60)).await?); // a heartbeat
/// assert!(job.ack().await?);
/// assert!(jobs.is_empty().await?);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Lease<V> {
    inner: crate::Lease<V>,
}

impl<V> From<crate::Lease<V>> for Lease<V> {
    fn from(inner: crate::Lease<V>) -> Lease<V> {
        Lease { inner }
    }
}

impl<V> Lease<V> {
    /// The item's value.
    pub fn value(&self) -> &V {
        self.inner.value()
    }

    /// The item's value, giving up the lease without acking or nacking it
    /// (see [`crate::Lease::into_value`]).
    pub fn into_value(self) -> V {
        self.inner.into_value()
    }

    /// How many times the item has been delivered, this time included.
    pub fn deliveries(&self) -> u32 {
        self.inner.deliveries()
    }

    /// When the lease runs out, by the cache's clock.
    pub fn deadline(&self) -> std::time::SystemTime {
        self.inner.deadline()
    }

    /// The sync lease (to ack it from a thread, say).
    pub fn into_sync(self) -> crate::Lease<V> {
        self.inner
    }

    /// Done: deletes the item; `false` when the lease was lost meanwhile
    /// (see [`crate::Lease::ack`]).
    ///
    /// # Errors
    ///
    /// Those of [`crate::Lease::ack`], which this awaits.
    pub async fn ack(self) -> Result<bool> {
        turn().await;
        self.inner.ack()
    }

    /// Not done: puts the item back at the front or the back of its queue
    /// (see [`crate::Lease::nack`]).
    ///
    /// # Errors
    ///
    /// Those of [`crate::Lease::nack`], which this awaits.
    pub async fn nack(self, side: Side) -> Result<bool> {
        turn().await;
        self.inner.nack(side)
    }

    /// Not done, with a delay and a reason (see [`crate::Lease::nack_with`]).
    ///
    /// # Errors
    ///
    /// Those of [`crate::Lease::nack_with`], which this awaits.
    pub async fn nack_with(self, nack: &NackOptions) -> Result<bool> {
        turn().await;
        self.inner.nack_with(nack)
    }

    /// The error text the last nack gave, if any (see [`crate::Lease::last_error`]).
    #[must_use]
    pub fn last_error(&self) -> Option<&str> {
        self.inner.last_error()
    }

    /// Heartbeat: the lease now runs until `duration` from now; `false`
    /// when it was already lost (see [`crate::Lease::renew`]).
    ///
    /// # Errors
    ///
    /// Those of [`crate::Lease::renew`], which this awaits.
    pub async fn renew(&mut self, duration: Duration) -> Result<bool> {
        turn().await;
        self.inner.renew(duration)
    }
}

/// When the next running lease of `queue` runs out (then its item can be
/// leased again) or a job of it becomes due, as an `Instant`; `None` when
/// neither is to come.
pub(crate) fn next_lease_end(cache: &SyncCache, queue: &str, looked: f64) -> Result<Option<Instant>> {
    let next = cache.store().read(|s| {
        let lease = if s.has_lease_table()? {
            s.next_deadline(queue)?
        } else {
            None
        };
        // A job that becomes due, or whose lease runs out.
        // After `looked` (the clock before the last look; see `next_job_wake`).
        let job = s.next_job_event(queue, looked)?;
        Ok(match (lease, job) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        })
    })?;
    Ok(next.map(|deadline| {
        // A millisecond late, so that the lease has run out when looked at.
        let secs = (deadline - cache.now()).max(0.0) + 0.001;
        crate::deadline::from_now(crate::deadline::seconds(secs))
    }))
}
