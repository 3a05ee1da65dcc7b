//! The job table: items pushed with a delay, a priority or a uniqueness key.
//!
//! Such an item (a "job") is a `Cache` row under the text key
//! `diskq-job-k<16 hex digits>`, outside every queue range, so no pull of
//! any process (python-diskcache's included) mistakes it for a plain queue
//! item; `DiskqJob` holds, per job: its queue, the `Cache` rowid of its
//! item, its priority, when it is ready, its lease (deadline and holder's
//! token, NULL when not leased), its delivery count, the last error a nack
//! gave and its uniqueness key (unique per queue, so two pushes of one key
//! cannot both insert, whichever processes make them). The row stays while
//! the job is leased and goes when it is taken, acked or dead-lettered.
//!
//! A `Settings` row `diskq_queue:<queue>:jobs` counts the jobs of a queue,
//! kept by the transactions that add and remove them: a plain queue's pop
//! reads it (one indexed row) and, finding zero, never looks at the table.

use rusqlite::{OptionalExtension, params};

use super::txn::LiteSession;
use crate::codec::Scalar;
use crate::error::Result;

const CREATE: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS DiskqJob (id INTEGER PRIMARY KEY, queue TEXT NOT NULL, \
     item INTEGER NOT NULL, priority INTEGER NOT NULL, ready REAL NOT NULL, deadline REAL, \
     token INTEGER, deliveries INTEGER NOT NULL DEFAULT 0, last_error TEXT, unique_key TEXT)",
    "CREATE INDEX IF NOT EXISTS DiskqJob_order ON DiskqJob (queue, priority, ready, item) WHERE deadline IS NULL",
    "CREATE INDEX IF NOT EXISTS DiskqJob_ready ON DiskqJob (queue, ready) WHERE deadline IS NULL",
    "CREATE INDEX IF NOT EXISTS DiskqJob_leased ON DiskqJob (queue, deadline) WHERE deadline IS NOT NULL",
    "CREATE UNIQUE INDEX IF NOT EXISTS DiskqJob_unique ON DiskqJob (queue, unique_key) WHERE unique_key IS NOT NULL",
];
const INSERT: &str = "INSERT INTO DiskqJob (id, queue, item, priority, ready, deliveries, last_error, unique_key) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";
const BY_UNIQUE: &str = "SELECT id, item FROM DiskqJob WHERE queue = ?1 AND unique_key = ?2";
/// The highest priority below `?2` that a job of the queue has, ready or
/// not: one step down the index. (Asking for the highest priority with a
/// ready job in one statement walked every job of the queue: 15 ms a pop
/// with 100,000 delayed jobs.)
const TOP_PRIORITY: &str = "SELECT priority FROM DiskqJob WHERE queue = ?1 AND deadline IS NULL AND priority < ?2 \
     ORDER BY priority DESC LIMIT 1";
const FIRST_READY: &str = "SELECT id, item, priority, ready, deliveries, last_error FROM DiskqJob \
     WHERE queue = ?1 AND deadline IS NULL AND priority = ?2 AND ready <= ?3 ORDER BY ready, item LIMIT 1";
const EXPIRED: &str = "SELECT id, item, priority, ready, deliveries, last_error, deadline FROM DiskqJob \
     WHERE queue = ?1 AND deadline IS NOT NULL AND deadline <= ?2 ORDER BY deadline LIMIT 1";
const BY_ID: &str =
    "SELECT id, item, priority, ready, deliveries, last_error, deadline, token FROM DiskqJob WHERE id = ?1";
/// The leased jobs of a queue whose item is still under the job key, in
/// key order among equal deadlines (as the merged listing sorts them).
const LEASED: &str = concat!(
    "SELECT printf('diskq-job-k%016x', j.id) AS k, j.deadline, j.deliveries, j.last_error, ",
    super::lease::stored_size_sql!(),
    " FROM DiskqJob j JOIN Cache c ON c.rowid = j.item AND c.key = printf('diskq-job-k%016x', j.id) \
     AND c.raw = 1 WHERE j.queue = ?1 AND j.deadline IS NOT NULL ORDER BY j.deadline, k LIMIT ?2"
);
const JOB_TABLE: &str = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'DiskqJob'";
const DELETE: &str = "DELETE FROM DiskqJob WHERE id = ?1";
const QUEUE_OF: &str = "SELECT queue FROM DiskqJob WHERE id = ?1";
const LEASE: &str = "UPDATE DiskqJob SET deadline = ?2, token = ?3, deliveries = ?4 WHERE id = ?1";
const RESCHEDULE: &str = "UPDATE DiskqJob SET deadline = NULL, token = NULL, ready = ?2, last_error = ?3 WHERE id = ?1";
const SET_DEADLINE: &str = "UPDATE DiskqJob SET deadline = ?2 WHERE id = ?1";
const NEXT_READY: &str = "SELECT min(ready) FROM DiskqJob WHERE queue = ?1 AND deadline IS NULL AND ready > ?2";
const NEXT_DEADLINE: &str = "SELECT min(deadline) FROM DiskqJob WHERE queue = ?1 AND deadline IS NOT NULL";
const COUNTS: &str = "SELECT count(*) FILTER (WHERE deadline IS NULL AND ready <= ?2), \
     count(*) FILTER (WHERE deadline IS NULL AND ready > ?2), count(*) FILTER (WHERE deadline IS NOT NULL) \
     FROM DiskqJob WHERE queue = ?1";
const QUEUE_ITEMS: &str = "SELECT id, item FROM DiskqJob WHERE queue = ?1";
const CLEAR: &str = "DELETE FROM DiskqJob";
const CLEAR_GAUGES: &str = "DELETE FROM Settings WHERE key >= 'diskq_queue:' AND key < 'diskq_queue;' \
     AND key LIKE '%:jobs'";
const GAUGE_BUMP: &str = "UPDATE Settings SET value = value + ?2 WHERE key = 'diskq_queue:' || ?1 || ':jobs'";
const GAUGE_CREATE: &str = "INSERT INTO Settings (key, value) VALUES ('diskq_queue:' || ?1 || ':jobs', ?2)";
const GAUGE: &str = "SELECT value FROM Settings WHERE key = 'diskq_queue:' || ?1 || ':jobs'";

/// True when SQLite refused a statement because a table is missing.
fn is_missing_table(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(_, Some(message)) if message.starts_with("no such table"))
}

/// The `Cache` key of job `id`.
pub(crate) fn job_key(id: i64) -> String {
    format!("{JOB_KEY_PREFIX}{id:016x}")
}

/// A letter after `diskq-job-` keeps job keys above the range of a queue
/// named `diskq-job` (its keys go on with digits).
pub(crate) const JOB_KEY_PREFIX: &str = "diskq-job-k";

/// A `DiskqJob` row.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct JobRow {
    pub id: i64,
    /// The rowid of the item in `Cache`.
    pub item: i64,
    pub priority: i64,
    pub ready: f64,
    pub deliveries: i64,
    pub last_error: Option<String>,
    /// The lease's deadline, when leased.
    pub deadline: Option<f64>,
    pub token: Option<i64>,
}

fn job_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<JobRow> {
    let columns = r.as_ref().column_count();
    Ok(JobRow {
        id: r.get(0)?,
        item: r.get(1)?,
        priority: r.get(2)?,
        ready: r.get(3)?,
        deliveries: r.get(4)?,
        last_error: r.get(5)?,
        deadline: if columns > 6 { r.get(6)? } else { None },
        token: if columns > 7 { r.get(7)? } else { None },
    })
}

/// A new job's columns.
#[derive(Debug)]
pub(crate) struct NewJob<'a> {
    pub id: i64,
    pub queue: &'a str,
    pub item: i64,
    pub priority: i64,
    pub ready: f64,
    pub deliveries: i64,
    pub last_error: Option<&'a str>,
    pub unique_key: Option<&'a str>,
}

/// How many jobs of a queue are ready, scheduled (not yet ready) and leased.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct JobCounts {
    pub ready: i64,
    pub scheduled: i64,
    pub leased: i64,
}

impl LiteSession {
    /// Creates the job table if it is missing.
    pub(crate) fn create_job_table(&self) -> Result<()> {
        for statement in CREATE {
            self.conn.prepare_cached(statement)?.execute([])?;
        }
        Ok(())
    }

    /// How many jobs `queue` holds, by the count kept beside the table (0
    /// when it has never had one).
    pub(crate) fn job_gauge(&self, queue: &str) -> Result<i64> {
        let value = self
            .conn
            .prepare_cached(GAUGE)?
            .query_row([queue], |r| Ok(super::ops::scalar(r.get_ref(0)?)))
            .optional()?;
        Ok(match value {
            Some(Scalar::Int(n)) => n,
            _ => 0,
        })
    }

    fn bump_gauge(&self, queue: &str, by: i64) -> Result<()> {
        if self.conn.prepare_cached(GAUGE_BUMP)?.execute(params![queue, by])? == 0 {
            self.conn
                .prepare_cached(GAUGE_CREATE)?
                .execute(params![queue, by.max(0)])?;
        }
        // The first job added, or the last removed: the pop count says so.
        self.mark_jobs(queue, self.job_gauge(queue)? > 0)
    }

    /// Adds a job row (the item's `Cache` row is inserted already).
    pub(crate) fn insert_job(&self, job: &NewJob<'_>) -> Result<()> {
        self.create_job_table()?;
        self.conn.prepare_cached(INSERT)?.execute(params![
            job.id,
            job.queue,
            job.item,
            job.priority,
            job.ready,
            job.deliveries,
            job.last_error,
            job.unique_key
        ])?;
        self.bump_gauge(job.queue, 1)
    }

    /// The job of `queue` holding `unique_key`: (id, item).
    pub(crate) fn job_by_unique(&self, queue: &str, unique_key: &str) -> Result<Option<(i64, i64)>> {
        let found = self.conn.prepare_cached(BY_UNIQUE).and_then(|mut stmt| {
            stmt.query_row([queue, unique_key], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
        });
        match found {
            Err(e) if is_missing_table(&e) => Ok(None),
            other => Ok(other?),
        }
    }

    /// The queue of job `id`.
    pub(crate) fn job_queue(&self, id: i64) -> Result<Option<String>> {
        Ok(self
            .conn
            .prepare_cached(QUEUE_OF)?
            .query_row([id], |r| r.get(0))
            .optional()?)
    }

    /// Removes job row `id` of `queue` (not its item).
    pub(crate) fn delete_job(&self, queue: &str, id: i64) -> Result<()> {
        if self.conn.prepare_cached(DELETE)?.execute([id])? > 0 {
            self.bump_gauge(queue, -1)?;
        }
        Ok(())
    }

    /// The job of `queue` to take next, if one is ready: the highest
    /// priority, then the earliest ready, then the oldest item.
    pub(crate) fn next_job(&self, queue: &str, now: f64) -> Result<Option<JobRow>> {
        let mut below = i64::MAX;
        loop {
            // Priorities from the highest down, each one index step; the
            // first that has a ready job gives it.
            let top: Option<i64> = self
                .conn
                .prepare_cached(TOP_PRIORITY)?
                .query_row(params![queue, below], |r| r.get(0))
                .optional()?;
            let Some(priority) = top else {
                return Ok(None);
            };
            let first = self
                .conn
                .prepare_cached(FIRST_READY)?
                .query_row(params![queue, priority, now], job_row)
                .optional()?;
            if first.is_some() {
                return Ok(first);
            }
            below = priority;
        }
    }

    /// The job lease of `queue` that ran out first, if one has.
    pub(crate) fn expired_job(&self, queue: &str, now: f64) -> Result<Option<JobRow>> {
        Ok(self
            .conn
            .prepare_cached(EXPIRED)?
            .query_row(params![queue, now], job_row)
            .optional()?)
    }

    /// The leased jobs of `queue` (running or run out), the first to run
    /// out first, `limit` at most.
    pub(crate) fn leased_jobs(&self, queue: &str, limit: i64) -> Result<Vec<super::lease::RunningRow>> {
        let exists = self.conn.prepare_cached(JOB_TABLE)?.exists([])?;
        if !exists {
            return Ok(Vec::new());
        }
        self.running_rows(LEASED, "DiskqJob", queue, limit)
    }

    /// Job row `id`.
    pub(crate) fn job(&self, id: i64) -> Result<Option<JobRow>> {
        let found = self
            .conn
            .prepare_cached(BY_ID)
            .and_then(|mut stmt| stmt.query_row([id], job_row).optional());
        match found {
            Err(e) if is_missing_table(&e) => Ok(None),
            other => Ok(other?),
        }
    }

    /// Leases job `id` to `token` until `deadline`, its `deliveries`th delivery.
    pub(crate) fn lease_job(&self, id: i64, deadline: f64, token: i64, deliveries: i64) -> Result<()> {
        self.conn
            .prepare_cached(LEASE)?
            .execute(params![id, deadline, token, deliveries])?;
        Ok(())
    }

    /// Ends the lease of job `id`: it is ready again at `ready`.
    pub(crate) fn reschedule_job(&self, id: i64, ready: f64, last_error: Option<&str>) -> Result<()> {
        self.conn
            .prepare_cached(RESCHEDULE)?
            .execute(params![id, ready, last_error])?;
        Ok(())
    }

    pub(crate) fn set_job_deadline(&self, id: i64, deadline: f64) -> Result<()> {
        self.conn.prepare_cached(SET_DEADLINE)?.execute(params![id, deadline])?;
        Ok(())
    }

    /// The earliest moment after `now` a job of `queue` becomes ready, or a
    /// job lease of it runs out.
    pub(crate) fn next_job_event(&self, queue: &str, now: f64) -> Result<Option<f64>> {
        if self.job_gauge(queue)? <= 0 {
            return Ok(None);
        }
        let ready: Option<f64> = self
            .conn
            .prepare_cached(NEXT_READY)?
            .query_row(params![queue, now], |r| r.get(0))?;
        let deadline: Option<f64> = self
            .conn
            .prepare_cached(NEXT_DEADLINE)?
            .query_row([queue], |r| r.get(0))?;
        Ok(match (ready, deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        })
    }

    /// The jobs of `queue`, ready, scheduled and leased.
    pub(crate) fn job_counts(&self, queue: &str, now: f64) -> Result<JobCounts> {
        if self.job_gauge(queue)? <= 0 {
            return Ok(JobCounts::default());
        }
        Ok(self.conn.prepare_cached(COUNTS)?.query_row(params![queue, now], |r| {
            Ok(JobCounts {
                ready: r.get(0)?,
                scheduled: r.get(1)?,
                leased: r.get(2)?,
            })
        })?)
    }

    /// Removes every job of `queue` and its item; returns how many items.
    pub(crate) fn delete_queue_jobs(&mut self, queue: &str) -> Result<usize> {
        if self.job_gauge(queue)? <= 0 {
            return Ok(0);
        }
        let jobs: Vec<(i64, i64)> = {
            let mut stmt = self.conn.prepare_cached(QUEUE_ITEMS)?;
            let rows = stmt.query_map([queue], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        let mut removed = 0;
        for (id, item) in jobs {
            let key = crate::key::Key::Text(job_key(id));
            if self.rowid_of(&key)? == Some(item) {
                let filename = self.row_by_rowid(item)?.and_then(|row| row.filename);
                self.delete_rowid(item, filename)?;
                removed += 1;
            }
            self.delete_job(queue, id)?;
        }
        Ok(removed)
    }

    /// Empties the job table and its counts (after a clear of the items).
    pub(crate) fn clear_jobs(&self) -> Result<()> {
        match self.conn.prepare_cached(CLEAR).and_then(|mut s| s.execute([])) {
            Err(e) if is_missing_table(&e) => {}
            other => {
                other?;
            }
        }
        self.conn.prepare_cached(CLEAR_GAUGES)?.execute([])?;
        self.mark_no_jobs_anywhere()
    }

    /// The rowid of the row just inserted on this connection.
    pub(crate) fn last_rowid(&self) -> i64 {
        self.conn.last_insert_rowid()
    }
}

const STORE_TIME: &str = "SELECT store_time FROM Cache WHERE key = ?1 AND raw = 1";

impl LiteSession {
    /// When the row of a raw `key` was stored.
    pub(crate) fn store_time_of(&self, key: &crate::key::Key) -> Result<Option<f64>> {
        Ok(self
            .conn
            .prepare_cached(STORE_TIME)?
            .query_row([super::ops::KeySql(key)], |r| r.get(0))
            .optional()?)
    }
}
