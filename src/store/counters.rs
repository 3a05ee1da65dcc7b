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

use super::txn::LiteSession;
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

/// The statement adding `?2` to counter `$name` of queue `?1`, and the one
/// making the row; the key is put together by SQLite, not formatted here
/// (a `format!` per count cost a sixth of the statement).
macro_rules! counter_sql {
    ($name:literal) => {
        (
            concat!(
                "UPDATE Settings SET value = value + ?2 WHERE key = 'diskq_queue:' || ?1 || ':",
                $name,
                "'"
            ),
            concat!(
                "INSERT INTO Settings (key, value) VALUES ('diskq_queue:' || ?1 || ':",
                $name,
                "', ?2)"
            ),
        )
    };
}

impl Counter {
    fn statements(self) -> (&'static str, &'static str) {
        match self {
            Counter::Pushed => counter_sql!("pushed"),
            // Its sign says whether the queue has jobs (see `POPPED_PLAIN`).
            Counter::Popped => (POPPED_BUMP, POPPED_CREATE),
            Counter::Leased => counter_sql!("leased"),
            Counter::Acked => counter_sql!("acked"),
            Counter::Nacked => counter_sql!("nacked"),
            Counter::Redelivered => counter_sql!("redelivered"),
            Counter::DeadLettered => counter_sql!("dead_lettered"),
            Counter::Scheduled => counter_sql!("scheduled"),
        }
    }

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

const KEY_PREFIX: &str = "diskq_queue:";
/// The first key past every counter key (`;` follows `:`).
const KEY_END: &str = "diskq_queue;";
/// Adds `?2` to the push count of queue `?1` if no item of the cache has
/// expired by `?3` (the condition of `sql::SELECT_EXPIRED`): a push then
/// skips the cull's separate look for expired items.
const PUSHED_IF_NONE_EXPIRED: &str = "UPDATE Settings SET value = value + ?2 \
     WHERE key = 'diskq_queue:' || ?1 || ':pushed' \
     AND NOT EXISTS (SELECT 1 FROM Cache WHERE expire_time IS NOT NULL AND expire_time < ?3)";
const PUSHED_IF_NONE_EXPIRED_INTEGER_QUEUE: &str = "UPDATE Settings SET value = value + ?2 \
     WHERE key = 'diskq_queue::pushed' AND ?1 = '' \
     AND NOT EXISTS (SELECT 1 FROM Cache WHERE expire_time IS NOT NULL AND expire_time < ?3)";

/// Adds `?2` to the pop count of queue `?1` unless the queue has jobs.
///
/// The pop count's row carries whether its queue has jobs in its sign: `n`
/// pops are stored as `n` while the queue has none, as `-n - 1` while it
/// has some (flipped by the transaction that adds the first job or removes
/// the last, `mark_jobs`). So the pop of a plain queue learns that it has no
/// jobs for the price of its count, one statement: a condition on the same
/// row. (A second row read in the statement, or a `RETURNING` clause, cost
/// as much again: a W4 pop was 12% dearer with them, 6% with this.)
const POPPED_PLAIN: &str =
    "UPDATE Settings SET value = value + ?2 WHERE key = 'diskq_queue:' || ?1 || ':popped' AND value >= 0";
/// `POPPED_PLAIN` of the integer-keyed queue (`?1` unused): a literal key
/// spares the hottest statement a concatenation.
const POPPED_PLAIN_INTEGER_QUEUE: &str =
    "UPDATE Settings SET value = value + ?2 WHERE key = 'diskq_queue::popped' AND value >= 0 AND ?1 = ''";
const POPPED_BUMP: &str = "UPDATE Settings SET value = CASE WHEN value < 0 THEN value - ?2 ELSE value + ?2 END \
     WHERE key = 'diskq_queue:' || ?1 || ':popped'";
const POPPED_CREATE: &str = "INSERT INTO Settings (key, value) VALUES ('diskq_queue:' || ?1 || ':popped', \
     CASE WHEN EXISTS (SELECT 1 FROM Settings WHERE key = 'diskq_queue:' || ?1 || ':jobs' AND value > 0) \
     THEN -?2 - 1 ELSE ?2 END)";
const POPPED_MARK_JOBS: &str =
    "UPDATE Settings SET value = -value - 1 WHERE key = 'diskq_queue:' || ?1 || ':popped' AND value >= 0";
const POPPED_MARK_NO_JOBS: &str =
    "UPDATE Settings SET value = -value - 1 WHERE key = 'diskq_queue:' || ?1 || ':popped' AND value < 0";
const POPPED_MARK_NONE_HAS_JOBS: &str = "UPDATE Settings SET value = -value - 1 \
     WHERE key >= 'diskq_queue:' AND key < 'diskq_queue;' AND key LIKE '%:popped' AND value < 0";
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

impl LiteSession {
    /// Adds `n` to a counter of `queue`, inside the current write.
    pub(crate) fn count(&self, queue: &str, counter: Counter, n: usize) -> Result<()> {
        if n == 0 {
            return Ok(());
        }
        let n = i64::try_from(n).unwrap_or(i64::MAX);
        let (bump, create) = counter.statements();
        if self.conn.prepare_cached(bump)?.execute(params![queue, n])? == 0 {
            self.conn.prepare_cached(create)?.execute(params![queue, n])?;
        }
        Ok(())
    }

    /// Adds `n` to the pop count of `queue` unless the queue has jobs, in
    /// one statement: the pop of a plain queue learns that it has none for
    /// the price of its count. `false`, counting nothing, when it has jobs.
    pub(crate) fn count_plain_pops(&self, queue: &str, n: usize) -> Result<bool> {
        let by = i64::try_from(n).unwrap_or(i64::MAX);
        let statement = if queue.is_empty() {
            POPPED_PLAIN_INTEGER_QUEUE
        } else {
            POPPED_PLAIN
        };
        if self.conn.prepare_cached(statement)?.execute(params![queue, by])? > 0 {
            return Ok(true);
        }
        // The queue's first pop (no count yet), or jobs.
        if self.job_gauge(queue)? > 0 {
            return Ok(false);
        }
        self.count(queue, Counter::Popped, n)?;
        self.mark_jobs(queue, false)?;
        Ok(true)
    }

    /// Adds `n` to the push count of `queue` if no item has expired by
    /// `now`; `false`, counting nothing, when one has (or the count's row
    /// is not made yet).
    pub(crate) fn count_pushes_if_none_expired(&self, queue: &str, n: usize, now: f64) -> Result<bool> {
        if n == 0 {
            return Ok(false);
        }
        let by = i64::try_from(n).unwrap_or(i64::MAX);
        Ok(self
            .conn
            .prepare_cached(if queue.is_empty() {
                PUSHED_IF_NONE_EXPIRED_INTEGER_QUEUE
            } else {
                PUSHED_IF_NONE_EXPIRED
            })?
            .execute(params![queue, by, now])?
            > 0)
    }

    /// Records in the pop count's sign whether `queue` has jobs.
    pub(crate) fn mark_jobs(&self, queue: &str, has_jobs: bool) -> Result<()> {
        let statement = if has_jobs {
            POPPED_MARK_JOBS
        } else {
            POPPED_MARK_NO_JOBS
        };
        self.conn.prepare_cached(statement)?.execute([queue])?;
        Ok(())
    }

    /// Records that no queue has jobs (after the job table was emptied).
    pub(crate) fn mark_no_jobs_anywhere(&self) -> Result<()> {
        self.conn.prepare_cached(POPPED_MARK_NONE_HAS_JOBS)?.execute([])?;
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
        let mut read = Vec::new();
        while let Some(r) = rows.next()? {
            let name: String = r.get(0)?;
            let value = match super::ops::scalar(r.get_ref(1)?) {
                // A pop count of a queue with jobs (see `POPPED_PLAIN`).
                crate::codec::Scalar::Int(n) if n < 0 => -(n + 1),
                crate::codec::Scalar::Int(n) => n,
                _ => continue, // not a count diskq wrote
            };
            read.push((name, value));
        }
        Ok(collect(read))
    }
}

/// The Settings key of `counter` of `queue` (the same on every backend).
#[cfg(feature = "postgres")]
pub(super) fn key_of(queue: &str, counter: Counter) -> String {
    format!("{KEY_PREFIX}{queue}:{}", counter.name())
}

/// The key range of the counters of `queue`, or of every queue.
#[cfg(feature = "postgres")]
pub(super) fn range_of(queue: Option<&str>) -> (String, String) {
    match queue {
        Some(q) => (format!("{KEY_PREFIX}{q}:"), format!("{KEY_PREFIX}{q};")),
        None => (KEY_PREFIX.to_owned(), KEY_END.to_owned()),
    }
}

/// The counters of each queue, from counter rows (key, count) in key order.
pub(super) fn collect(read: Vec<(String, i64)>) -> Vec<(String, CounterRow)> {
    let mut found: Vec<(String, CounterRow)> = Vec::new();
    for (name, value) in read {
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
    found
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
