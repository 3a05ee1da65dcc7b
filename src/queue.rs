//! Queue operations of `Cache`: push, pull, peek (python-diskcache's
//! numbering) and peekitem.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::cache::{Cache, is_live, new_row};
use crate::codec::{self, Scalar};
use crate::error::{Error, Result};
use crate::key::Key;
use crate::options::{PullOptions, PushOptions, Side};

/// The first number of an empty queue, as python-diskcache numbers them.
const FIRST_NUMBER: i64 = 500_000_000_000_000;
/// Queue numbers lie strictly between 0 and this.
const NUMBER_BOUND: i64 = 999_999_999_999_999;

/// The key range of a queue: integers, or `"<prefix>-<15 digits>"` text.
fn bounds(prefix: Option<&str>) -> (Scalar, Scalar) {
    match prefix {
        None => (Scalar::Int(0), Scalar::Int(NUMBER_BOUND)),
        Some(p) => (
            Scalar::Text(format!("{p}-000000000000000")),
            Scalar::Text(format!("{p}-{NUMBER_BOUND}")),
        ),
    }
}

fn number_of(key: &Key) -> Result<i64> {
    match key {
        Key::Int(n) => Ok(*n),
        Key::Text(s) => s
            .rsplit('-')
            .next()
            .and_then(|digits| digits.parse().ok())
            .ok_or_else(|| Error::Corrupt(format!("queue key {s:?} does not end in a number"))),
        other => Err(Error::Corrupt(format!("queue key {other} is not an integer or text"))),
    }
}

fn key_of(prefix: Option<&str>, number: i64) -> Key {
    match prefix {
        None => Key::Int(number),
        Some(p) => Key::Text(format!("{p}-{number:015}")),
    }
}

impl Cache {
    /// Pushes `value` onto the back of the integer-keyed queue; returns its key.
    ///
    /// A python-diskcache `Cache.push` / `Deque` on the same directory sees
    /// the same queue. As there, the queue is the range of integer keys
    /// between 0 and 999999999999999: do not `set` plain integer keys in that
    /// range on a cache used as a queue (or give the queue a prefix).
    ///
    /// ```
    /// use diskq::{Cache, Key};
    /// let dir = tempfile::tempdir()?;
    /// let cache = Cache::open(dir.path())?;
    /// assert_eq!(cache.push("first")?, Key::Int(500000000000000));
    /// cache.push("second")?;
    /// assert_eq!(cache.pull::<String>()?, Some((Key::Int(500000000000000), "first".into())));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn push<V: Serialize + ?Sized>(&self, value: &V) -> Result<Key> {
        self.push_with(value, &PushOptions::default())
    }

    /// Pushes with a queue prefix, a side, an expiry or a tag. Atomic: the
    /// key is one past the current end, and concurrent pushes get distinct keys.
    pub fn push_with<V: Serialize + ?Sized>(&self, value: &V, opts: &PushOptions) -> Result<Key> {
        let prepared = self.prepare(codec::encode(value)?)?;
        let prefix = opts.prefix.as_deref();
        let (lo, hi) = bounds(prefix);
        self.store().write(opts.set.retry, prepared.filename.as_deref(), |s| {
            let now = self.now();
            let back = opts.side == Side::Back;
            let number = match s.queue_edge((&lo, &hi), back)? {
                Some(edge) => number_of(&edge)? + if back { 1 } else { -1 },
                None => FIRST_NUMBER,
            };
            if number <= 0 || number >= NUMBER_BOUND {
                return Err(Error::InvalidUse("the queue's key range is used up".into()));
            }
            let key = key_of(prefix, number);
            let row = new_row(
                &prepared,
                Self::expire_time(now, opts.set.expire),
                opts.set.tag.as_deref(),
            );
            s.insert_row(&key, now, &row)?;
            self.cull_after_write(s, now)?;
            Ok(key)
        })
    }

    /// Takes the front item of the integer-keyed queue.
    pub fn pull<V: DeserializeOwned>(&self) -> Result<Option<(Key, V)>> {
        self.pull_with(&PullOptions::default())
    }

    /// Takes an item from either end of a queue. Atomic: two consumers never
    /// get the same item. Expired items met on the way are removed. The
    /// value is read and decoded before the removal commits, so an item whose
    /// value does not decode as `V` stays queued (and the error says why).
    pub fn pull_with<V: DeserializeOwned>(&self, opts: &PullOptions) -> Result<Option<(Key, V)>> {
        let (lo, hi) = bounds(opts.prefix.as_deref());
        self.store().write(opts.retry, None, |s| {
            let now = self.now();
            loop {
                let Some((key, mut row)) = s.pull((&lo, &hi), opts.side == Side::Back)? else {
                    return Ok(None);
                };
                if !is_live(row.expire_time, now) {
                    continue;
                }
                match self.load(&mut row)? {
                    Some(stored) => return Ok(Some((key.clone(), codec::decode(stored, &key)?))),
                    // Its value file is gone (check reports such rows): skip it.
                    None => continue,
                }
            }
        })
    }

    /// The front item of the integer-keyed queue, left in place.
    pub fn peek<V: DeserializeOwned>(&self) -> Result<Option<(Key, V)>> {
        self.peek_with(&PullOptions::default())
    }

    /// The item at either end of a queue, left in place. Expired items are
    /// skipped (not shown).
    pub fn peek_with<V: DeserializeOwned>(&self, opts: &PullOptions) -> Result<Option<(Key, V)>> {
        let (lo, hi) = bounds(opts.prefix.as_deref());
        self.store().read(|s| {
            let Some((key, mut row)) = s.peek((&lo, &hi), self.now(), opts.side == Side::Back)? else {
                return Ok(None);
            };
            match self.load(&mut row)? {
                Some(stored) => Ok(Some((key.clone(), codec::decode(stored, &key)?))),
                None => Ok(None),
            }
        })
    }

    /// The first (`last = false`) or last item in insertion order, left in
    /// place; expired items are skipped.
    pub fn peekitem<V: DeserializeOwned>(&self, last: bool) -> Result<Option<(Key, V)>> {
        self.store().read(|s| {
            let Some((key, mut row)) = s.edge_item(last, self.now())? else {
                return Ok(None);
            };
            match self.load(&mut row)? {
                Some(stored) => Ok(Some((key.clone(), codec::decode(stored, &key)?))),
                None => Ok(None),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_numbers_follow_python_diskcache() {
        assert_eq!(key_of(Some("q"), FIRST_NUMBER), Key::Text("q-500000000000000".into()));
        assert_eq!(key_of(Some("q"), 7), Key::Text("q-000000000000007".into()));
        assert_eq!(number_of(&Key::Text("a-b-000000000000012".into())).unwrap(), 12);
        assert_eq!(number_of(&Key::Int(5)).unwrap(), 5);
        assert!(number_of(&Key::Text("nodigits".into())).is_err());
    }
}
