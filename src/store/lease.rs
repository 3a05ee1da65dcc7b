//! The lease bookkeeping table and its statements.
//!
//! A leased item stays in the `Cache` table, renamed to a text key
//! `diskq-lease-k<16 hex digits>-<its queue key>` outside every queue range, so no pull of
//! any process (python-diskcache's included) can take it. `DiskqLease`
//! holds, per such key: the queue it came from, the lease deadline, the
//! delivery count and the holder's token. After a `nack` the item is back at
//! a queue key and its row stays (deadline NULL), so the delivery count goes
//! on rising; `item` (the Cache rowid) tells a stale row from a new item that
//! got the same queue key.

use rusqlite::{OptionalExtension, params};

use super::ops::{KeySql, ValueRow};
use super::txn::LiteSession;
use crate::codec::Scalar;
use crate::error::Result;
use crate::key::Key;

const CREATE: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS DiskqLease (\
     key TEXT PRIMARY KEY, queue TEXT NOT NULL, deadline REAL, \
     deliveries INTEGER NOT NULL, token INTEGER NOT NULL, item INTEGER NOT NULL)",
    "CREATE INDEX IF NOT EXISTS DiskqLease_queue_deadline ON DiskqLease (queue, deadline)",
];
const EXPIRED: &str = "SELECT key, deliveries, item FROM DiskqLease \
     WHERE queue = ?1 AND deadline IS NOT NULL AND deadline <= ?2 ORDER BY deadline LIMIT 1";
const NEXT_DEADLINE: &str = "SELECT min(deadline) FROM DiskqLease WHERE queue = ?1 AND deadline IS NOT NULL";
const ROWID: &str = "SELECT rowid FROM Cache WHERE key = ?1 AND raw = 1";
const ROW_BY_ROWID: &str = "SELECT rowid, mode, filename, value, expire_time, tag, size FROM Cache WHERE rowid = ?1";
const BY_KEY: &str = "SELECT deliveries, token, item, deadline FROM DiskqLease WHERE key = ?1";
const UPSERT: &str = "INSERT OR REPLACE INTO DiskqLease (key, queue, deadline, deliveries, token, item) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
const DELETE: &str = "DELETE FROM DiskqLease WHERE key = ?1";
const SET_DEADLINE: &str = "UPDATE DiskqLease SET deadline = ?2 WHERE key = ?1";
const RUNNING: &str = "SELECT COUNT(*) FROM DiskqLease WHERE queue = ?1 AND deadline IS NOT NULL";
/// The stored size of the `Cache` row `c`, as [`ValueRow`]'s readers
/// count it: its file's size, or the bytes of its inline value (8 for a
/// number).
macro_rules! stored_size_sql {
    () => {
        "CASE WHEN typeof(c.filename) = 'text' THEN \
         CASE WHEN typeof(c.size) = 'integer' AND c.size > 0 THEN c.size ELSE 0 END \
         WHEN typeof(c.value) IN ('text', 'blob') THEN length(CAST(c.value AS BLOB)) \
         WHEN typeof(c.value) IN ('integer', 'real') THEN 8 ELSE 0 END"
    };
}
pub(crate) use stored_size_sql;

/// The running leases of a queue whose item is still under the lease key,
/// in key order among equal deadlines (as the merged listing sorts them);
/// rows under job keys are a job's (listed from `DiskqJob`).
const RUNNING_LIST: &str = concat!(
    "SELECT l.key, l.deadline, l.deliveries, NULL, ",
    stored_size_sql!(),
    " FROM DiskqLease l JOIN Cache c ON c.rowid = l.item AND c.key = l.key AND c.raw = 1 \
     WHERE l.queue = ?1 AND l.deadline IS NOT NULL \
     AND NOT (l.key >= 'diskq-job-k' AND l.key < 'diskq-job-l') \
     ORDER BY l.deadline, l.key LIMIT ?2"
);
const EXISTS: &str = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'DiskqLease'";
const CLEAR: &str = "DELETE FROM DiskqLease";

/// The error of a row of `table` (a lease or job row of `queue`) that
/// could not be read: a column of a type no writer stores names the table
/// and the column; any other is SQLite's.
pub(crate) fn damaged_row(table: &str, queue: &str, e: rusqlite::Error) -> crate::error::Error {
    match e {
        rusqlite::Error::InvalidColumnType(_, column, kind) => crate::error::Error::Corrupt(format!(
            "a row of {table} (queue {queue:?}) is damaged: its {column} column holds a value of type {kind}, \
             which no writer stores there"
        )),
        e => e.into(),
    }
}

/// A running lease of a queue (a plain item's or a job's), as
/// `running_leases` and `leased_jobs` list it.
#[derive(Debug, Clone)]
pub(crate) struct RunningRow {
    /// The key the item is kept under: its lease key, or its job key.
    pub key: String,
    pub deadline: f64,
    pub deliveries: i64,
    /// A job's last error (plain leases have none).
    pub last_error: Option<String>,
    /// The stored size of the item's value.
    pub size: i64,
}

/// A `DiskqLease` row.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LeaseRow {
    pub deliveries: i64,
    pub token: i64,
    /// The rowid of the item in `Cache`.
    pub item: i64,
    pub deadline: Option<f64>,
}

impl LiteSession {
    /// Creates the lease table if it is missing.
    pub(crate) fn create_lease_table(&self) -> Result<()> {
        for statement in CREATE {
            self.conn.prepare_cached(statement)?.execute([])?;
        }
        Ok(())
    }

    /// True when the lease table exists.
    pub(crate) fn has_lease_table(&self) -> Result<bool> {
        Ok(self
            .conn
            .prepare_cached(EXISTS)?
            .query_row([], |_| Ok(()))
            .optional()?
            .is_some())
    }

    /// Empties the lease table (after a clear of the items).
    pub(crate) fn clear_leases(&self) -> Result<()> {
        if self.has_lease_table()? {
            self.conn.prepare_cached(CLEAR)?.execute([])?;
        }
        Ok(())
    }

    /// The lease of `queue` that ran out first, if one has: (key, deliveries, item).
    pub(crate) fn expired_lease(&self, queue: &str, now: f64) -> Result<Option<(String, i64, i64)>> {
        let mut stmt = self.conn.prepare_cached(EXPIRED)?;
        Ok(stmt
            .query_row(params![queue, now], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()?)
    }

    /// The earliest deadline of a running lease of `queue`.
    pub(crate) fn next_deadline(&self, queue: &str) -> Result<Option<f64>> {
        Ok(self
            .conn
            .prepare_cached(NEXT_DEADLINE)?
            .query_row([queue], |r| r.get(0))?)
    }

    /// Leases of `queue` not acked or nacked yet (running or run out).
    pub(crate) fn leases_of(&self, queue: &str) -> Result<i64> {
        if !self.has_lease_table()? {
            return Ok(0);
        }
        Ok(self.conn.prepare_cached(RUNNING)?.query_row([queue], |r| r.get(0))?)
    }

    /// The leases of `queue` not acked or nacked yet whose item is still
    /// there, the first to run out first, `limit` at most.
    pub(crate) fn running_leases(&self, queue: &str, limit: i64) -> Result<Vec<RunningRow>> {
        if !self.has_lease_table()? {
            return Ok(Vec::new());
        }
        self.running_rows(RUNNING_LIST, "DiskqLease", queue, limit)
    }

    /// The [`RunningRow`]s `sql` selects for `queue` (`?1`) and `limit` (`?2`).
    pub(crate) fn running_rows(&self, sql: &str, table: &str, queue: &str, limit: i64) -> Result<Vec<RunningRow>> {
        let mut stmt = self.conn.prepare_cached(sql)?;
        let rows = stmt.query_map(params![queue, limit], |r| {
            Ok(RunningRow {
                key: r.get(0)?,
                deadline: r.get(1)?,
                deliveries: r.get(2)?,
                last_error: r.get(3)?,
                size: r.get(4)?,
            })
        })?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(|e| damaged_row(table, queue, e))
    }

    /// Live items of a queue range.
    pub(crate) fn queued(&self, bounds: (&Scalar, &Scalar), now: f64) -> Result<i64> {
        self.queue_len(bounds, now)
    }

    /// The rowid of the item under a raw `key`.
    pub(crate) fn rowid_of(&self, key: &Key) -> Result<Option<i64>> {
        Ok(self
            .conn
            .prepare_cached(ROWID)?
            .query_row([KeySql(key)], |r| r.get(0))
            .optional()?)
    }

    /// The value columns of the item with `rowid`, expired or not.
    pub(crate) fn row_by_rowid(&self, rowid: i64) -> Result<Option<ValueRow>> {
        let mut stmt = self.conn.prepare_cached(ROW_BY_ROWID)?;
        Ok(stmt.query_row([rowid], |r| ValueRow::from_row(r, 1)).optional()?)
    }

    /// The lease row under `key` (a lease key, or the queue key of a nacked item).
    pub(crate) fn lease_row(&self, key: &Key) -> Result<Option<LeaseRow>> {
        let mut stmt = self.conn.prepare_cached(BY_KEY)?;
        Ok(stmt
            .query_row([KeySql(key)], |r| {
                Ok(LeaseRow {
                    deliveries: r.get(0)?,
                    token: r.get(1)?,
                    item: r.get(2)?,
                    deadline: r.get(3)?,
                })
            })
            .optional()?)
    }

    /// Writes the lease row of `key`.
    pub(crate) fn put_lease_row(&self, key: &Key, queue: &str, row: &LeaseRow) -> Result<()> {
        self.conn.prepare_cached(UPSERT)?.execute(params![
            KeySql(key),
            queue,
            row.deadline,
            row.deliveries,
            row.token,
            row.item
        ])?;
        Ok(())
    }

    pub(crate) fn delete_lease_row(&self, key: &Key) -> Result<()> {
        self.conn.prepare_cached(DELETE)?.execute([KeySql(key)])?;
        Ok(())
    }

    pub(crate) fn set_lease_deadline(&self, key: &Key, deadline: f64) -> Result<()> {
        self.conn
            .prepare_cached(SET_DEADLINE)?
            .execute(params![KeySql(key), deadline])?;
        Ok(())
    }
}

/// The lease row whose key lies in `[?1, ?2)`, and its queue.
const KEY_BETWEEN: &str = "SELECT key, queue FROM DiskqLease WHERE key >= ?1 AND key < ?2 ORDER BY key LIMIT 1";

impl LiteSession {
    /// The key and queue of the first lease row whose key lies in `[start, end)`.
    pub(crate) fn lease_key_between(&self, start: &str, end: &str) -> Result<Option<(String, String)>> {
        Ok(self
            .conn
            .prepare_cached(KEY_BETWEEN)?
            .query_row([start, end], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?)
    }
}
