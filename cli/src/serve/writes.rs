//! The only writes `serve` makes, and only with `--allow-writes`: dead
//! letters requeued (back to their queue) or purged (deleted). Each is a
//! POST carrying the token printed at start in an `X-Diskq-Token` header:
//! a page of another site cannot send that header to us without our
//! consent (a CORS preflight we never grant), and another user of the
//! machine does not know the token.

use std::time::Duration;

use diskq::{Key, LeaseOptions};

use super::inspect::{Location, Queue, dead_letter_queue};
use crate::dir::{self, Access};
use crate::failure::Failure;

/// Dead letters a purge deletes at most in one transaction; a larger
/// queue takes several purges.
pub const PURGE_MAX: usize = 100_000;

/// A fresh token: 128 random bits as 32 hex digits.
pub fn new_token() -> Result<String, Failure> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| Failure::new(format!("no random numbers for the write token: {e}")))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Compares in time that does not depend on where the texts differ.
pub fn same_token(given: &str, expected: &str) -> bool {
    let (a, b) = (given.as_bytes(), expected.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn options(queue: &Queue) -> LeaseOptions {
    // The library reads only the queue and its dead-letter queue from them.
    let opts = LeaseOptions::new(Duration::from_secs(1));
    match queue {
        Some(p) => opts.prefix(p.clone()),
        None => opts,
    }
}

/// Moves every dead letter of `queue` back to its back; returns how many.
pub fn requeue(loc: &Location, queue: &Queue) -> Result<usize, Failure> {
    let cache = dir::open(loc.cache.directory(), Access::Existing)?;
    Ok(cache.requeue_dead_letters(&options(queue))?)
}

/// Deletes the dead letters of `queue` (only `key`, when given), in one
/// transaction; returns how many.
pub fn purge(loc: &Location, queue: &Queue, key: Option<&str>) -> Result<usize, Failure> {
    let cache = dir::open(loc.cache.directory(), Access::Existing)?;
    cache.transact(|c| -> Result<usize, Failure> {
        // The write lock is ours: the listing, read by another
        // connection, is the state this transaction changes.
        let keys: Vec<String> = match key {
            Some(k) => vec![k.to_string()],
            None => loc.dead_letters(queue, PURGE_MAX)?.into_iter().map(|d| d.key).collect(),
        };
        let mut purged = 0;
        for k in keys {
            if c.delete(Key::Text(k))? {
                purged += 1;
            }
        }
        Ok(purged)
    })
}

/// True when `key` names an item of `queue`'s dead-letter queue.
pub fn is_dead_letter_key(queue: &Queue, key: &str) -> bool {
    let dead = dead_letter_queue(queue);
    key.strip_prefix(&dead)
        .and_then(|rest| rest.strip_prefix('-'))
        .is_some_and(|n| n.len() == 15 && n.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_fresh_hex_and_compared_whole() {
        let (a, b) = (new_token().expect("token"), new_token().expect("token"));
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
        assert!(same_token(&a, &a.clone()));
        assert!(!same_token(&a, &b));
        assert!(!same_token(&a[..31], &a));
        assert!(!same_token("", &a));
    }

    #[test]
    fn dead_letter_keys_are_recognised() {
        assert!(is_dead_letter_key(&None, "dead-letter-500000000000000"));
        assert!(is_dead_letter_key(
            &Some("jobs".into()),
            "jobs-dead-letter-500000000000003"
        ));
        assert!(!is_dead_letter_key(&Some("jobs".into()), "jobs-500000000000003"));
        assert!(!is_dead_letter_key(&None, "dead-letter-5"));
        assert!(!is_dead_letter_key(&None, "settings"));
    }
}
