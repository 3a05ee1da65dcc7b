//! Per-queue counters: how many items each queue has had pushed, popped,
//! leased, acked, nacked, redelivered, dead-lettered and scheduled.
//!
//! Each counter is a `Settings` row `diskq_queue:<queue>:<counter>` (`<queue>`
//! is `""` for the integer-keyed queue, else its prefix), bumped by the
//! transaction that does the counted thing. A table of diskq's own was
//! measured first and dropped: every push and pop already rewrites the
//! `Settings` page (python-diskcache's triggers keep `count` and `size`
//! there), so a counter in it adds one statement and no page to the commit,
//! where a separate table added a page to every commit (a W4 push cost 14%
//! more instructions with it, 6% with the `Settings` row). python-diskcache
//! reads the rows as settings it does not know (it keeps them as attributes
//! of its `Cache` and writes them back when it opens the directory, so a
//! count bumped during a Python open can be lost); the `diskq_` prefix keeps
//! them away from its pragmas (`sqlite_`) and its `Disk` arguments (`disk_`).

use rusqlite::params;

use super::txn::Session;
use crate::error::Result;

/// One counter of a queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Counter {
    Pushed,
    Popped,
    Leased,
    Acked,
    Nacked,
    Redelivered,
    DeadLettered,
    Scheduled,
}

const ALL: [Counter; 8] = [
    Counter::Pushed,
    Counter::Popped,
    Counter::Leased,
    Counter::Acked,
    Counter::Nacked,
    Counter::Redelivered,
    Counter::DeadLettered,
    Counter::Scheduled,
];

impl Counter {
    fn name(self) -> &'static str {
        match self {
            Counter::Pushed => "pushed",
            Counter::Popped => "popped",
            Counter::Leased => "leased",
            Counter::Acked => "acked",
            Counter::Nacked => "nacked",
            Counter::Redelivered => "redelivered",
            Counter::DeadLettered => "dead_lettered",
            Counter::Scheduled => "scheduled",
        }
    }
}

/// The Settings key of a counter of `queue`.
fn key(queue: &str, counter: Counter) -> String {
    format!("{KEY_PREFIX}{queue}:{}", counter.name())
}

const KEY_PREFIX: &str = "diskq_queue:";
/// The first key past every counter key (`;` follows `:`).
const KEY_END: &str = "diskq_queue;";
const BUMP: &str = "UPDATE Settings SET value = value + ?2 WHERE key = ?1";
const CREATE: &str = "INSERT INTO Settings (key, value) VALUES (?1, ?2)";
const SELECT_RANGE: &str = "SELECT key, value FROM Settings WHERE key >= ?1 AND key < ?2 ORDER BY key";

/// The counters of one queue, as stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct CounterRow {
    pub pushed: i64,
    pub popped: i64,
    pub leased: i64,
    pub acked: i64,
    pub nacked: i64,
    pub redelivered: i64,
    pub dead_lettered: i64,
    pub scheduled: i64,
}

impl CounterRow {
    fn set(&mut self, counter: Counter, value: i64) {
        let slot = match counter {
            Counter::Pushed => &mut self.pushed,
            Counter::Popped => &mut self.popped,
            Counter::Leased => &mut self.leased,
            Counter::Acked => &mut self.acked,
            Counter::Nacked => &mut self.nacked,
            Counter::Redelivered => &mut self.redelivered,
            Counter::DeadLettered => &mut self.dead_lettered,
            Counter::Scheduled => &mut self.scheduled,
        };
        *slot = value;
    }
}

impl Session {
    /// Adds `n` to a counter of `queue`, inside the current write.
    pub(crate) fn count(&self, queue: &str, counter: Counter, n: usize) -> Result<()> {
        if n == 0 {
            return Ok(());
        }
        let n = i64::try_from(n).unwrap_or(i64::MAX);
        let name = key(queue, counter);
        if self.conn.prepare_cached(BUMP)?.execute(params![name, n])? == 0 {
            self.conn.prepare_cached(CREATE)?.execute(params![name, n])?;
        }
        Ok(())
    }

    /// The counters of `queue` (zeros for a queue never counted).
    pub(crate) fn counters(&self, queue: &str) -> Result<CounterRow> {
        let start = format!("{KEY_PREFIX}{queue}:");
        let end = format!("{KEY_PREFIX}{queue};");
        Ok(self
            .counter_rows(&start, &end)?
            .into_iter()
            .find(|(q, _)| q == queue)
            .map(|(_, row)| row)
            .unwrap_or_default())
    }

    /// The counters of every queue counted so far, by queue name.
    pub(crate) fn all_counters(&self) -> Result<Vec<(String, CounterRow)>> {
        self.counter_rows(KEY_PREFIX, KEY_END)
    }

    fn counter_rows(&self, start: &str, end: &str) -> Result<Vec<(String, CounterRow)>> {
        let mut stmt = self.conn.prepare_cached(SELECT_RANGE)?;
        let mut rows = stmt.query([start, end])?;
        let mut found: Vec<(String, CounterRow)> = Vec::new();
        while let Some(r) = rows.next()? {
            let name: String = r.get(0)?;
            let value = match super::ops::scalar(r.get_ref(1)?) {
                crate::codec::Scalar::Int(n) => n,
                _ => continue, // not a count diskq wrote
            };
            let Some((queue, counter)) = name
                .strip_prefix(KEY_PREFIX)
                .and_then(|rest| rest.rsplit_once(':'))
                .and_then(|(q, c)| ALL.iter().find(|k| k.name() == c).map(|k| (q, *k)))
            else {
                continue;
            };
            match found.last_mut() {
                Some((q, row)) if q == queue => row.set(counter, value),
                _ => {
                    let mut row = CounterRow::default();
                    row.set(counter, value);
                    found.push((queue.to_owned(), row));
                }
            }
        }
        // Queue names that share a beginning ("a" and "a:b") interleave.
        found.sort_by(|a, b| a.0.cmp(&b.0));
        found.dedup_by(|b, a| {
            if a.0 == b.0 {
                for c in ALL {
                    let v = b.1.get(c);
                    if v != 0 {
                        a.1.set(c, v);
                    }
                }
                true
            } else {
                false
            }
        });
        Ok(found)
    }
}

impl CounterRow {
    fn get(&self, counter: Counter) -> i64 {
        match counter {
            Counter::Pushed => self.pushed,
            Counter::Popped => self.popped,
            Counter::Leased => self.leased,
            Counter::Acked => self.acked,
            Counter::Nacked => self.nacked,
            Counter::Redelivered => self.redelivered,
            Counter::DeadLettered => self.dead_lettered,
            Counter::Scheduled => self.scheduled,
        }
    }
}
