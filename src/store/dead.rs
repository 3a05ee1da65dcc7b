//! The dead-letter records: what is known of an item when it was moved to a
//! dead-letter queue (its delivery count and the last error a nack gave).
//!
//! A dead letter is a plain item of its dead-letter queue (a `Cache` row
//! under `<dead-letter prefix>-<15 digits>`), so that `pop_dead_letter`,
//! `requeue_dead_letters` and python-diskcache's pulls take it like any
//! queue item. Its lease row (a leased plain item) or its job row (a job)
//! is dropped by the move: the lease row belongs to the leased queue's
//! bookkeeping, and a `DiskqJob` row makes its item a job of its queue
//! (counted in the queue's job gauge, taken by its pops and leases, held
//! under a `diskq-job-k` key outside the dead-letter queue's range). So the
//! move writes a row here instead, keyed by the dead letter's key:
//! `DiskqDeadLetter (key, item, queue, stored, deliveries, last_error,
//! dead_at)`, `item` and `stored` being the `Cache` row's rowid and
//! `store_time` (a record whose item is gone, popped by a process that
//! knows nothing of this table, is stale and ignored, even when a new item
//! gets the key and SQLite reuses the rowid; the next dead letter under
//! that key replaces it).
//!
//! A PostgreSQL store keeps the same record in its `diskq_dead_letter`
//! table (`pg/sql.rs`, made on the first open of a schema that lacks it);
//! its rowids are never reused, so `stored` is only a second check there.

use rusqlite::{OptionalExtension, params};

use super::txn::LiteSession;
use crate::error::Result;
use crate::key::Key;

const CREATE: &str = "CREATE TABLE IF NOT EXISTS DiskqDeadLetter (key TEXT PRIMARY KEY, item INTEGER NOT NULL, \
     queue TEXT NOT NULL, stored REAL, deliveries INTEGER, last_error TEXT, dead_at REAL NOT NULL)";
const EXISTS: &str = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'DiskqDeadLetter'";
const UPSERT: &str = "INSERT OR REPLACE INTO DiskqDeadLetter (key, item, queue, stored, deliveries, last_error, dead_at) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
const BY_KEY: &str = "SELECT item, queue, stored, deliveries, last_error, dead_at FROM DiskqDeadLetter WHERE key = ?1";
const DELETE: &str = "DELETE FROM DiskqDeadLetter WHERE key = ?1";
const CLEAR: &str = "DELETE FROM DiskqDeadLetter";

/// A `DiskqDeadLetter` row.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DeadRecord {
    /// The rowid of the item in `Cache` when it was moved.
    pub item: i64,
    /// The queue it was leased from (`""`: the integer-keyed one).
    pub queue: String,
    /// The item's `store_time`: with `item`, it tells this item from a later
    /// one that got the same key and a reused rowid.
    pub stored: Option<f64>,
    pub deliveries: Option<i64>,
    pub last_error: Option<String>,
    /// When it was moved, in Unix seconds.
    pub dead_at: f64,
}

impl LiteSession {
    fn has_dead_letter_table(&self) -> Result<bool> {
        Ok(self
            .conn
            .prepare_cached(EXISTS)?
            .query_row([], |_| Ok(()))
            .optional()?
            .is_some())
    }

    /// Records the dead letter now under `key` (text: a dead-letter queue's key).
    pub(crate) fn record_dead_letter(&self, key: &str, record: &DeadRecord) -> Result<()> {
        self.conn.prepare_cached(CREATE)?.execute([])?;
        self.conn.prepare_cached(UPSERT)?.execute(params![
            key,
            record.item,
            record.queue,
            record.stored,
            record.deliveries,
            record.last_error,
            record.dead_at
        ])?;
        Ok(())
    }

    /// The record of the dead letter under `key`, if one was kept (stale
    /// ones included: the caller compares `item`).
    pub(crate) fn dead_letter_record(&self, key: &Key) -> Result<Option<DeadRecord>> {
        let Key::Text(key) = key else {
            return Ok(None);
        };
        if !self.has_dead_letter_table()? {
            return Ok(None);
        }
        Ok(self
            .conn
            .prepare_cached(BY_KEY)?
            .query_row([key], |r| {
                Ok(DeadRecord {
                    item: r.get(0)?,
                    queue: r.get(1)?,
                    stored: r.get(2)?,
                    deliveries: r.get(3)?,
                    last_error: r.get(4)?,
                    dead_at: r.get(5)?,
                })
            })
            .optional()?)
    }

    /// Drops the record under `key` (the item left the dead-letter queue).
    pub(crate) fn forget_dead_letter(&self, key: &Key) -> Result<()> {
        if let Key::Text(key) = key
            && self.has_dead_letter_table()?
        {
            self.conn.prepare_cached(DELETE)?.execute([key])?;
        }
        Ok(())
    }

    /// Drops every record (after a clear of the items).
    pub(crate) fn clear_dead_letters(&self) -> Result<()> {
        if self.has_dead_letter_table()? {
            self.conn.prepare_cached(CLEAR)?.execute([])?;
        }
        Ok(())
    }
}
