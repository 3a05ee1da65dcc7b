//! Recipes: locks, a semaphore, a running average, a throttle, a barrier
//! and stampede-proof memoizing, shared by every thread and process that
//! opens the same directory (python-diskcache's `diskcache.recipes`).
//!
//! Each recipe is built only on public [`Cache`](crate::Cache) operations
//! (`add`, `get`, `set`, `delete`, `transact`, ...), so it is exactly as
//! atomic as those are: across threads and OS processes.
//!
//! ```
//! use std::time::Duration;
//! use diskq::{Averager, Lock};
//!
//! let dir = tempfile::tempdir()?;
//! let cache = diskq::Cache::open(dir.path())?;
//!
//! // A lock that a dead holder keeps for at most 30 s.
//! let lock = Lock::new(&cache, "report-123", Duration::from_secs(30))?;
//! {
//!     let _guard = lock.lock()?;
//!     // ... one process at a time here ...
//! }
//! let latency = Averager::new(&cache, "latency", None)?;
//! latency.add(0.080)?;
//! latency.add(0.120)?;
//! assert!((latency.get()?.unwrap() - 0.1).abs() < 1e-12);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Keys
//!
//! Every recipe takes a name from you and stores under text keys made from
//! it; keep those keys for the recipe alone (a lock whose key holds some
//! other value is never free).
//!
//! | Recipe | Keys | Value |
//! |---|---|---|
//! | [`Lock`], [`Barrier`] | `name` | the holder's token (text) |
//! | [`RLock`] | `name` | `(holder, count)` |
//! | [`BoundedSemaphore`] | `name:0` … `name:{value-1}`, one per slot | the holder's token (text) |
//! | [`Averager`] | `name` | `(total, count)` |
//! | [`Throttle`] | `name` | the next free start time, in seconds since the Unix epoch |
//! | [`MemoizeStampede`] | your key (as [`Key::of`](crate::Key::of) makes it) | `(value, seconds the computation took)` |
//!
//! Locks and semaphore slots carry an expiry: a holder that dies (or hangs)
//! past it stops blocking the others. Choose it longer than the work it
//! guards. The rows are tiny, but a cache with an eviction policy may still
//! cull them when it is over its size limit, freeing a lock early; keep
//! recipes in a cache that stays under its limit (or uses
//! [`EvictionPolicy::None`](crate::EvictionPolicy::None)).
//!
//! Waiting never spins: a blocked caller looks again after a pause that
//! doubles from 1 ms up to 50 ms (with jitter), so a freed lock is taken
//! within about 50 ms.

use std::process;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::deadline::seconds;
use crate::error::{Error, Result};

mod averager;
mod barrier;
mod lock;
mod rlock;
mod semaphore;
mod stampede;
mod throttle;

pub use averager::Averager;
pub use barrier::Barrier;
pub use lock::{Lock, LockGuard};
pub use rlock::{RLock, RLockGuard};
pub use semaphore::{BoundedSemaphore, SemaphoreGuard};
pub use stampede::MemoizeStampede;
pub use throttle::Throttle;

/// The first pause of a blocked caller.
const FIRST_PAUSE: Duration = Duration::from_millis(1);
/// The longest pause between two looks of a blocked caller.
const MAX_PAUSE: Duration = Duration::from_millis(50);

/// Calls `attempt` until it returns true or `timeout` has passed (`None`:
/// for ever), pausing between calls. True when an attempt succeeded; the
/// first attempt is made even with a zero timeout.
fn wait_for(timeout: Option<Duration>, mut attempt: impl FnMut() -> Result<bool>) -> Result<bool> {
    // A timeout too large for `Instant` is as good as none.
    let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
    let mut pause = FIRST_PAUSE;
    loop {
        if attempt()? {
            return Ok(true);
        }
        let mut nap = pause.mul_f64(0.5 + 0.5 * random_unit());
        if let Some(deadline) = deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(false);
            }
            nap = nap.min(left);
        }
        thread::sleep(nap);
        pause = (pause * 2).min(MAX_PAUSE);
    }
}

/// A token naming one holder, unique among the processes alive on this
/// machine (process id and a per-process counter) and, thanks to the random
/// part, across time as well.
fn holder_token() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let mut random = [0u8; 8];
    if getrandom::fill(&mut random).is_err() {
        // Without a random source the process id and counter still keep
        // live holders apart; the clock separates reused process ids.
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        random = (nanos as u64).to_le_bytes();
    }
    format!(
        "{}-{}-{:016x}",
        process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        u64::from_le_bytes(random)
    )
}

/// A uniform random number in (0, 1]; 1 when the system has no random
/// source (callers treat 1 as "no jitter" and "no early recomputation").
fn random_unit() -> f64 {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        return 1.0;
    }
    // 53 random bits: every value is exact in an f64.
    let bits = u64::from_le_bytes(bytes) >> 11;
    (bits as f64 + 1.0) / (1u64 << 53) as f64
}

/// Now, in seconds since the Unix epoch, from the system clock (the
/// recipes that compare times across processes need a shared clock).
fn wall_clock() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Refuses a zero duration where only a positive one makes sense.
fn positive(recipe: &str, name: &str, value: Duration) -> Result<Duration> {
    if value.is_zero() {
        return Err(Error::InvalidSetting {
            name: name.to_owned(),
            message: format!("{recipe}'s {name} must be more than zero"),
        });
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_unit_is_in_the_half_open_unit_interval() {
        for _ in 0..1000 {
            let x = random_unit();
            assert!(x > 0.0 && x <= 1.0, "{x}");
        }
    }

    #[test]
    fn tokens_differ() {
        assert_ne!(holder_token(), holder_token());
    }

    #[test]
    fn wait_for_gives_up_after_the_timeout() {
        let mut calls = 0;
        let started = Instant::now();
        let got = wait_for(Some(Duration::from_millis(30)), || {
            calls += 1;
            Ok(false)
        });
        assert!(!got.unwrap_or(true));
        assert!(started.elapsed() >= Duration::from_millis(30));
        assert!(calls >= 2, "looked {calls} times");
        let mut once = 0;
        assert!(
            !wait_for(Some(Duration::ZERO), || {
                once += 1;
                Ok(false)
            })
            .unwrap_or(true)
        );
        assert_eq!(once, 1);
    }
}
