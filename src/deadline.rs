//! Turning a caller's `Duration` into a deadline or a lock timeout without
//! overflow. Any `Duration` a caller passes is valid: one too large for the
//! clock or for SQLite means "as long as possible", never a panic.

use std::time::{Duration, Instant};

/// `now + wait`, or the latest instant the clock can hold near it when the
/// sum overflows (about a century is always representable, and is as good
/// as never for a wait).
pub(crate) fn after(now: Instant, wait: Duration) -> Instant {
    if let Some(deadline) = now.checked_add(wait) {
        return deadline;
    }
    let mut far = Duration::from_secs(100 * 365 * 24 * 3600);
    loop {
        if let Some(deadline) = now.checked_add(far) {
            return deadline;
        }
        far /= 2;
    }
}

/// The deadline of a wait of `wait` starting now.
pub(crate) fn from_now(wait: Duration) -> Instant {
    after(Instant::now(), wait)
}

/// Looks with `look` until it is done (`Ok(true)`) or `until` passes
/// (`Ok(false)`), sleeping 20 µs after the first look and doubling the
/// pause up to 1 ms: the wait of an OS lock that has no timed wait. An error
/// of `look` ends the wait.
pub(crate) fn poll_until<E>(until: Instant, mut look: impl FnMut() -> Result<bool, E>) -> Result<bool, E> {
    let mut pause = Duration::from_micros(20);
    loop {
        if look()? {
            return Ok(true);
        }
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(false);
        }
        std::thread::sleep(pause.min(left));
        pause = (pause * 2).min(Duration::from_millis(1));
    }
}

/// Seconds as a `Duration`: zero for negative or NaN, [`Duration::MAX`]
/// when too large (infinity included).
pub(crate) fn seconds(secs: f64) -> Duration {
    if secs.is_nan() || secs <= 0.0 {
        return Duration::ZERO;
    }
    Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_waits_saturate() {
        let now = Instant::now();
        assert!(after(now, Duration::MAX) > after(now, Duration::from_secs(3600)));
        assert_eq!(after(now, Duration::from_secs(1)), now + Duration::from_secs(1));
        assert_eq!(seconds(f64::INFINITY), Duration::MAX);
        assert_eq!(seconds(f64::NAN), Duration::ZERO);
        assert_eq!(seconds(-1.0), Duration::ZERO);
        assert_eq!(seconds(1.5), Duration::from_millis(1500));
    }
}
