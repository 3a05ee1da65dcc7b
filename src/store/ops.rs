//! Row operations: each a cached statement (or two) on a session.

use rusqlite::types::{ToSql, ToSqlOutput, ValueRef};
use rusqlite::{OptionalExtension, Row, params};

use super::shape::{self, Skip};
use super::sql;
use super::txn::LiteSession;
use crate::codec::Scalar;
use crate::error::{Error, Result};
use crate::key::Key;
use crate::settings::EvictionPolicy;

/// Binds a key in its native SQLite type.
pub(crate) struct KeySql<'a>(pub &'a Key);

impl ToSql for KeySql<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self.0 {
            Key::Int(n) => ValueRef::Integer(*n),
            Key::Float(x) => ValueRef::Real(*x),
            Key::Text(s) => ValueRef::Text(s.as_bytes()),
            Key::Bytes(b) | Key::Encoded(b) => ValueRef::Blob(b),
        }))
    }
}

/// Binds a stored scalar in its SQLite type.
pub(crate) struct ScalarSql<'a>(pub &'a Scalar);

impl ToSql for ScalarSql<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self.0 {
            Scalar::Null => ValueRef::Null,
            Scalar::Int(n) => ValueRef::Integer(*n),
            Scalar::Real(x) => ValueRef::Real(*x),
            Scalar::Text(s) => ValueRef::Text(s.as_bytes()),
            Scalar::Blob(b) => ValueRef::Blob(b),
        }))
    }
}

/// Binds bytes as TEXT (a bound made from a stored key need not be UTF-8).
struct TextSql<'a>(&'a [u8]);

impl ToSql for TextSql<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(ValueRef::Text(self.0)))
    }
}

/// A prefixed queue's bounds (`<prefix>-` and 15 zeros or nines) and the
/// length of `<prefix>-`; `None` for the integer queue.
fn text_bounds<'a>(bounds: (&'a Scalar, &'a Scalar)) -> Option<(&'a [u8], &'a [u8], usize)> {
    match bounds {
        (Scalar::Text(lo), Scalar::Text(hi)) => Some((lo.as_bytes(), hi.as_bytes(), lo.len().saturating_sub(15))),
        _ => None,
    }
}

/// A prefixed queue's key, read back (it is `<prefix>-` and digits).
fn queue_text_key(key: Vec<u8>) -> Result<Key> {
    String::from_utf8(key)
        .map(Key::Text)
        .map_err(|_| Error::Corrupt("a queue key is not valid UTF-8".into()))
}

pub(crate) fn scalar(v: ValueRef<'_>) -> Scalar {
    match v {
        ValueRef::Null => Scalar::Null,
        ValueRef::Integer(n) => Scalar::Int(n),
        ValueRef::Real(x) => Scalar::Real(x),
        ValueRef::Text(t) => Scalar::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Scalar::Blob(b.to_vec()),
    }
}

/// Reads a stored key back.
pub(crate) fn key_from(v: ValueRef<'_>, raw: bool) -> Result<Key> {
    Ok(match v {
        ValueRef::Integer(n) => Key::Int(n),
        ValueRef::Real(x) => Key::Float(x),
        ValueRef::Text(t) => Key::Text(
            String::from_utf8(t.to_vec()).map_err(|_| Error::Corrupt("a text key is not valid UTF-8".into()))?,
        ),
        ValueRef::Blob(b) if raw => Key::Bytes(b.to_vec()),
        ValueRef::Blob(b) => Key::Encoded(b.to_vec()),
        ValueRef::Null => return Err(Error::Corrupt("a row has a NULL key".into())),
    })
}

/// A row naming a value file, as `check` compares it with the files.
#[derive(Debug)]
pub(crate) struct FileRow {
    pub rowid: i64,
    /// The key as messages show it.
    pub key: String,
    /// `None` when the column is not an integer.
    pub size: Option<i64>,
    pub filename: String,
}

/// A row's key (column `at`, raw flag at `at + 1`) as messages show it.
fn key_text(r: &Row<'_>, at: usize) -> rusqlite::Result<String> {
    let raw = !matches!(r.get_ref(at + 1)?, ValueRef::Integer(0));
    Ok(match key_from(r.get_ref(at)?, raw) {
        Ok(key) => key.to_string(),
        Err(e) => format!("<{e}>"),
    })
}

/// The exclusive upper bound of integer queue keys.
pub(crate) const QUEUE_BOUND: i64 = 999_999_999_999_999;

/// One row of a page: its cursor, its key (an error for a damaged key, kept
/// per row so that one bad row does not hide the rest of the page) and its
/// value columns.
pub(crate) type PageRow = (i64, Result<Key>, Option<ValueRow>);

/// Reads (cursor, key, value columns) from an ITEMS_/QUEUE_ row.
fn item_row(r: &Row<'_>) -> Result<PageRow> {
    let raw = r.get::<_, Option<i64>>(2)?.unwrap_or(1) != 0;
    let cursor = match r.get_ref(0)? {
        ValueRef::Integer(n) => n,
        _ => return Err(Error::Corrupt("a row cursor is not an integer".into())),
    };
    let row = ValueRow::from_row(r, 3)?;
    let key = key_from(r.get_ref(1)?, raw).and_then(|key| row.check(&key).map(|()| key));
    Ok((cursor, key, Some(row)))
}

fn raw_flag(key: &Key) -> i64 {
    i64::from(key.is_raw())
}

/// The columns that hold a value, plus its expiry and tag.
#[derive(Debug, Clone)]
pub(crate) struct ValueRow {
    pub mode: i64,
    pub filename: Option<String>,
    pub value: Scalar,
    pub expire_time: Option<f64>,
    pub tag: Option<String>,
    /// The stored size, when the statement read it (a value file's length).
    pub size: Option<i64>,
    /// A column of a type no writer stores (a damaged or forged row): its
    /// name and SQLite type. [`ValueRow::check`] turns it into an error
    /// naming the key.
    pub bad_column: Option<(&'static str, &'static str)>,
}

/// SQLite's name of a value's type, for messages.
fn type_name(v: ValueRef<'_>) -> &'static str {
    match v {
        ValueRef::Null => "null",
        ValueRef::Integer(_) => "integer",
        ValueRef::Real(_) => "real",
        ValueRef::Text(_) => "text",
        ValueRef::Blob(_) => "blob",
    }
}

impl ValueRow {
    /// Reads columns `first .. first + 5`: mode, filename, value, expire_time,
    /// tag, and `size` when the statement has a column after them. A column
    /// of the wrong type does not fail here (the key is not known yet): it is
    /// noted in `bad_column`.
    pub(super) fn from_row(row: &Row<'_>, first: usize) -> rusqlite::Result<ValueRow> {
        let mut bad = None;
        let mut note = |column, v: ValueRef<'_>| {
            bad.get_or_insert((column, type_name(v)));
        };
        let size = if row.as_ref().column_count() > first + 5 {
            match row.get_ref(first + 5)? {
                ValueRef::Integer(n) => Some(n),
                ValueRef::Null => None,
                v => {
                    note("size", v);
                    None
                }
            }
        } else {
            None
        };
        let mode = match row.get_ref(first)? {
            ValueRef::Integer(n) => n,
            ValueRef::Null => 0,
            v => {
                note("mode", v);
                0
            }
        };
        let filename = match row.get_ref(first + 1)? {
            ValueRef::Text(t) => match std::str::from_utf8(t) {
                Ok(t) => Some(t.to_owned()),
                Err(_) => {
                    note("filename", ValueRef::Text(t));
                    None
                }
            },
            ValueRef::Null => None,
            v => {
                note("filename", v);
                None
            }
        };
        let expire_time = match row.get_ref(first + 3)? {
            ValueRef::Real(x) => Some(x),
            ValueRef::Integer(n) => Some(n as f64),
            ValueRef::Null => None,
            v => {
                note("expire_time", v);
                None
            }
        };
        Ok(ValueRow {
            size,
            mode,
            filename,
            value: scalar(row.get_ref(first + 2)?),
            expire_time,
            tag: match scalar(row.get_ref(first + 4)?) {
                Scalar::Null => None,
                Scalar::Text(s) => Some(s),
                Scalar::Int(n) => Some(n.to_string()),
                Scalar::Real(x) => Some(x.to_string()),
                Scalar::Blob(b) => Some(String::from_utf8_lossy(&b).into_owned()),
            },
            bad_column: bad,
        })
    }

    /// Refuses a row no writer makes, naming `key`: a column of the wrong
    /// type, or a file name that is not a value file's (a forged row could
    /// name `cache.db` or another key's file).
    pub(crate) fn check(&self, key: &Key) -> Result<()> {
        if let Some((column, kind)) = self.bad_column {
            return Err(bad_column(key, column, kind));
        }
        if let Some(name) = &self.filename {
            check_filename(key, name)?;
            // Without a size a read could not tell a file grown behind
            // diskq's back (every writer stores one).
            if self.size.is_none() {
                return Err(bad_column(key, "size", "null"));
            }
        }
        Ok(())
    }
}

/// The error for a row whose `column` holds a value of SQLite type `kind`.
pub(crate) fn bad_column(key: &Key, column: &str, kind: &str) -> Error {
    Error::Corrupt(format!(
        "the row of key {key} is damaged: its {column} column holds a value of type {kind}, \
         which no writer stores there (check reports it)"
    ))
}

/// Refuses a row's `filename` that is not a value file name, naming `key`.
pub(crate) fn check_filename(key: &Key, name: &str) -> Result<()> {
    if crate::disk::is_value_name(name) {
        Ok(())
    } else {
        Err(Error::Corrupt(format!(
            "the row of key {key} names {name:?}, which is not a value file name \
             (ab/cd/<28 hex digits>.val): diskq neither opens nor removes it (check reports the row)"
        )))
    }
}

/// Reads a `filename` column leniently: anything but text names no file
/// (such a name is never opened or removed).
fn lenient_filename(v: ValueRef<'_>) -> Option<String> {
    match v {
        ValueRef::Text(t) => std::str::from_utf8(t).ok().map(str::to_owned),
        _ => None,
    }
}

/// A row as `set`, `add` and `incr` find it, live or expired.
#[derive(Debug)]
pub(crate) struct KeyRow {
    pub rowid: i64,
    pub filename: Option<String>,
    pub expire_time: Option<f64>,
    pub mode: i64,
    pub value: Scalar,
}

/// The columns a write sets.
#[derive(Debug)]
pub(crate) struct NewRow<'a> {
    pub expire_time: Option<f64>,
    pub tag: Option<&'a str>,
    pub size: i64,
    pub mode: i64,
    pub filename: Option<&'a str>,
    pub value: &'a Scalar,
}

/// Which rows a page of [`Session::page`] walks, and in which order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PageKind {
    /// Keys only, insertion (rowid) order; the cursor is the rowid.
    Keys,
    /// Keys and values, insertion order; the cursor is the rowid.
    Items,
    /// The integer-keyed queue, key order; the cursor is the key.
    Queue,
}

/// Which rows a batch removal takes.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Batch<'a> {
    Expired { now: f64 },
    Tagged(&'a str),
    All,
    Policy(EvictionPolicy),
}

/// A row read for `key`, refused when no writer would have made it.
fn checked(row: Option<ValueRow>, key: &Key) -> Result<Option<ValueRow>> {
    if let Some(r) = &row {
        r.check(key)?;
    }
    Ok(row)
}

impl LiteSession {
    pub(crate) fn get_live(&self, key: &Key, now: f64) -> Result<Option<ValueRow>> {
        let mut stmt = self.conn.prepare_cached(sql::SELECT_LIVE)?;
        let row = stmt
            .query_row(params![KeySql(key), raw_flag(key), now], |r| ValueRow::from_row(r, 1))
            .optional()?;
        checked(row, key)
    }

    /// A get that also records the access the policy ranks by.
    pub(crate) fn get_recording(&self, key: &Key, now: f64, policy: EvictionPolicy) -> Result<Option<ValueRow>> {
        let statement = match policy {
            EvictionPolicy::LeastRecentlyUsed => sql::GET_TOUCH_ACCESS_TIME,
            EvictionPolicy::LeastFrequentlyUsed => sql::GET_COUNT_ACCESS,
            _ => return self.get_live(key, now),
        };
        let mut stmt = self.conn.prepare_cached(statement)?;
        let row = stmt
            .query_row(params![KeySql(key), raw_flag(key), now], |r| ValueRow::from_row(r, 1))
            .optional()?;
        checked(row, key)
    }

    pub(crate) fn count_access(&self, hit: bool) -> Result<()> {
        let statement = if hit {
            sql::INCREMENT_HITS
        } else {
            sql::INCREMENT_MISSES
        };
        self.conn.prepare_cached(statement)?.execute([])?;
        Ok(())
    }

    pub(crate) fn contains_live(&self, key: &Key, now: f64) -> Result<bool> {
        let mut stmt = self.conn.prepare_cached(sql::CONTAINS_LIVE)?;
        Ok(stmt.exists(params![KeySql(key), raw_flag(key), now])?)
    }

    /// The row of `key`, live or expired, with its value (for `incr`).
    pub(crate) fn find_any(&self, key: &Key) -> Result<Option<KeyRow>> {
        self.find(key, true)
    }

    /// The row of `key` without reading its value (for writes that replace it).
    pub(crate) fn find_slot(&self, key: &Key) -> Result<Option<KeyRow>> {
        self.find(key, false)
    }

    fn find(&self, key: &Key, with_value: bool) -> Result<Option<KeyRow>> {
        let statement = if with_value { sql::SELECT_ANY } else { sql::SELECT_SLOT };
        let mut stmt = self.conn.prepare_cached(statement)?;
        let row = stmt.query_row(params![KeySql(key), raw_flag(key)], |r| {
            let mut bad = None;
            let mode = match with_value {
                true => match r.get_ref(3)? {
                    ValueRef::Integer(n) => n,
                    ValueRef::Null => 0,
                    v => {
                        bad = Some(("mode", type_name(v)));
                        0
                    }
                },
                false => 0,
            };
            let expire_time = match r.get_ref(2)? {
                ValueRef::Real(x) => Some(x),
                ValueRef::Integer(n) => Some(n as f64),
                ValueRef::Null => None,
                v => {
                    bad = Some(("expire_time", type_name(v)));
                    None
                }
            };
            let row = KeyRow {
                rowid: r.get(0)?,
                filename: lenient_filename(r.get_ref(1)?),
                expire_time,
                mode,
                value: if with_value {
                    scalar(r.get_ref(4)?)
                } else {
                    Scalar::Null
                },
            };
            Ok((row, bad))
        });
        match row.optional()? {
            Some((_, Some((column, kind)))) => Err(bad_column(key, column, kind)),
            Some((row, None)) => Ok(Some(row)),
            None => Ok(None),
        }
    }

    pub(crate) fn update_row(&self, rowid: i64, now: f64, row: &NewRow<'_>) -> Result<()> {
        let mut stmt = self.conn.prepare_cached(sql::UPDATE_ROW)?;
        stmt.execute(params![
            rowid,
            now,
            row.expire_time,
            row.tag,
            row.size,
            row.mode,
            row.filename,
            ScalarSql(row.value)
        ])?;
        Ok(())
    }

    pub(crate) fn insert_row(&self, key: &Key, now: f64, row: &NewRow<'_>) -> Result<()> {
        let mut stmt = self.conn.prepare_cached(sql::INSERT_ROW)?;
        stmt.execute(params![
            KeySql(key),
            raw_flag(key),
            now,
            row.expire_time,
            row.tag,
            row.size,
            row.mode,
            row.filename,
            ScalarSql(row.value)
        ])?;
        Ok(())
    }

    /// `set`: update the row of `key` in place (keeping its position) or insert
    /// it; the replaced value's file is removed after commit.
    pub(crate) fn upsert(&mut self, key: &Key, now: f64, row: &NewRow<'_>) -> Result<()> {
        match self.find_slot(key)? {
            Some(old) => {
                self.update_row(old.rowid, now, row)?;
                self.remove_after_commit(old.filename);
            }
            None => self.insert_row(key, now, row)?,
        }
        Ok(())
    }

    pub(crate) fn incr_update(&self, rowid: i64, now: f64, value: i64, policy: EvictionPolicy) -> Result<()> {
        let statement = match policy {
            EvictionPolicy::LeastRecentlyUsed => sql::INCR_UPDATE_LRU,
            EvictionPolicy::LeastFrequentlyUsed => sql::INCR_UPDATE_LFU,
            _ => sql::INCR_UPDATE,
        };
        self.conn
            .prepare_cached(statement)?
            .execute(params![rowid, now, value])?;
        Ok(())
    }

    /// Deletes the live row of `key`; true if there was one.
    pub(crate) fn delete_live(&mut self, key: &Key, now: f64) -> Result<bool> {
        let mut stmt = self.conn.prepare_cached(sql::DELETE_LIVE)?;
        let filename: Option<Option<String>> = stmt
            .query_row(params![KeySql(key), raw_flag(key), now], |r| {
                Ok(match r.get_ref(0)? {
                    ValueRef::Null => None,
                    // Not text: refused below like any other odd name.
                    v => Some(lenient_filename(v).unwrap_or_else(|| format!("<{}>", type_name(v)))),
                })
            })
            .optional()?;
        drop(stmt);
        match filename {
            Some(name) => {
                // A forged name: the delete fails (and rolls back) rather
                // than remove whatever the row names.
                if let Some(name) = &name {
                    check_filename(key, name)?;
                }
                self.remove_after_commit(name);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Deletes the live row of `key` and returns its value columns. The
    /// caller reads the value file before commit; removal follows commit.
    pub(crate) fn pop_live(&mut self, key: &Key, now: f64) -> Result<Option<ValueRow>> {
        let mut stmt = self.conn.prepare_cached(sql::POP_LIVE)?;
        let row = stmt
            .query_row(params![KeySql(key), raw_flag(key), now], |r| ValueRow::from_row(r, 1))
            .optional()?;
        drop(stmt);
        if let Some(r) = &row {
            r.check(key)?;
            self.remove_after_commit(r.filename.clone());
        }
        Ok(row)
    }

    pub(crate) fn touch_live(&self, key: &Key, now: f64, expire_time: Option<f64>) -> Result<bool> {
        let mut stmt = self.conn.prepare_cached(sql::TOUCH_LIVE)?;
        Ok(stmt.execute(params![KeySql(key), raw_flag(key), now, expire_time])? > 0)
    }

    /// Gives the row of `from` the key `to` (same kind of key).
    pub(crate) fn rename_key(&self, from: &Key, to: &Key) -> Result<()> {
        self.conn
            .prepare_cached(sql::RENAME_KEY)?
            .execute(params![KeySql(from), raw_flag(from), KeySql(to)])?;
        Ok(())
    }

    pub(crate) fn delete_rowid(&mut self, rowid: i64, filename: Option<String>) -> Result<()> {
        self.conn.prepare_cached(sql::DELETE_ROWID)?.execute([rowid])?;
        self.remove_after_commit(filename);
        Ok(())
    }

    /// The first or last key of a queue range (expired items included: they
    /// still hold their numbers).
    pub(crate) fn queue_edge(&self, bounds: (&Scalar, &Scalar), back: bool) -> Result<Option<Key>> {
        let text = text_bounds(bounds);
        let statement = match (back, text.is_some()) {
            (true, false) => sql::QUEUE_LAST_KEY,
            (false, false) => sql::QUEUE_FIRST_KEY,
            (true, true) => sql::QUEUE_LAST_KEY_NEAR,
            (false, true) => sql::QUEUE_FIRST_KEY_NEAR,
        };
        if let Some(range) = text {
            let near = {
                let mut stmt = self.conn.prepare_cached(statement)?;
                let mut rows = stmt.query(params![ScalarSql(bounds.0), ScalarSql(bounds.1)])?;
                match rows.next()? {
                    Some(r) => Some(key_from(r.get_ref(0)?, true)?),
                    None => None,
                }
            };
            return match near {
                Some(key) => Ok(Some(key)),
                None => self.shaped_edge(range, back, None)?.map(queue_text_key).transpose(),
            };
        }
        let mut stmt = self.conn.prepare_cached(statement)?;
        let mut rows = stmt.query(params![ScalarSql(bounds.0), ScalarSql(bounds.1)])?;
        match rows.next()? {
            Some(r) => Ok(Some(key_from(r.get_ref(0)?, true)?)),
            None => Ok(None),
        }
    }

    /// Removes the front or back row of a queue range, expired or not.
    pub(crate) fn pull(&mut self, bounds: (&Scalar, &Scalar), back: bool) -> Result<Option<(Key, ValueRow)>> {
        let text = text_bounds(bounds);
        let statement = match (back, text.is_some()) {
            (true, false) => sql::PULL_BACK,
            (false, false) => sql::PULL_FRONT,
            (true, true) => sql::PULL_BACK_NEAR,
            (false, true) => sql::PULL_FRONT_NEAR,
        };
        let mut found = {
            let mut stmt = self.conn.prepare_cached(statement)?;
            let mut rows = stmt.query(params![ScalarSql(bounds.0), ScalarSql(bounds.1)])?;
            match rows.next()? {
                Some(r) => Some((key_from(r.get_ref(0)?, true)?, ValueRow::from_row(r, 1)?)),
                None => None,
            }
        };
        if found.is_none()
            && let Some(range) = text
            && let Some(key) = self.shaped_edge(range, back, None)?
        {
            let mut stmt = self.conn.prepare_cached(sql::PULL_KEY)?;
            let mut rows = stmt.query([TextSql(&key)])?;
            if let Some(r) = rows.next()? {
                found = Some((key_from(r.get_ref(0)?, true)?, ValueRow::from_row(r, 1)?));
            }
        }
        if let Some((key, row)) = &found {
            row.check(key)?;
            self.remove_after_commit(row.filename.clone());
        }
        Ok(found)
    }

    /// The front or back live row of a queue range.
    pub(crate) fn peek(&self, bounds: (&Scalar, &Scalar), now: f64, back: bool) -> Result<Option<(Key, ValueRow)>> {
        let text = text_bounds(bounds);
        let statement = match (back, text.is_some()) {
            (true, false) => sql::PEEK_BACK,
            (false, false) => sql::PEEK_FRONT,
            (true, true) => sql::PEEK_BACK_NEAR,
            (false, true) => sql::PEEK_FRONT_NEAR,
        };
        {
            let mut stmt = self.conn.prepare_cached(statement)?;
            let mut rows = stmt.query(params![ScalarSql(bounds.0), ScalarSql(bounds.1), now])?;
            if let Some(r) = rows.next()? {
                let (key, row) = (key_from(r.get_ref(0)?, true)?, ValueRow::from_row(r, 1)?);
                row.check(&key)?;
                return Ok(Some((key, row)));
            }
        }
        let Some(range) = text else {
            return Ok(None);
        };
        // The scan that steps over other shapes, and over expired items.
        let mut start = None;
        while let Some(key) = self.shaped_edge(range, back, start.take())? {
            let mut stmt = self.conn.prepare_cached(sql::PEEK_KEY)?;
            let mut rows = stmt.query([TextSql(&key)])?;
            if let Some(r) = rows.next()? {
                let row = ValueRow::from_row(r, 1)?;
                if row.expire_time.is_none_or(|t| t > now) {
                    let key = key_from(r.get_ref(0)?, true)?;
                    row.check(&key)?;
                    return Ok(Some((key, row)));
                }
            }
            start = Some(if back { key } else { [key.as_slice(), &[0]].concat() });
        }
        Ok(None)
    }

    /// The first (or last) key of the queue's shape in a prefixed queue's
    /// range, stepping over keys of other shapes (see `store::shape`).
    /// `start` narrows the range: going up, the scan starts there
    /// (inclusive); going down, below it.
    fn shaped_edge(
        &self,
        (lo, hi, head): (&[u8], &[u8], usize),
        back: bool,
        start: Option<Vec<u8>>,
    ) -> Result<Option<Vec<u8>>> {
        // Up: from `from` (inclusive) below `hi`; down: above `lo` below `below`.
        let (mut from, mut below) = match (back, start) {
            (false, Some(s)) => (s, hi.to_vec()),
            (true, Some(s)) => (lo.to_vec(), s),
            // Just above `lo`: the range excludes it (python-diskcache's bounds).
            (_, None) => ([lo, &[0]].concat(), hi.to_vec()),
        };
        loop {
            let key: Option<Vec<u8>> = {
                let (statement, a, b) = if back {
                    (sql::QUEUE_PROBE_DOWN, lo, below.as_slice())
                } else {
                    (sql::QUEUE_PROBE_UP, from.as_slice(), hi)
                };
                let mut stmt = self.conn.prepare_cached(statement)?;
                let mut rows = stmt.query([TextSql(a), TextSql(b)])?;
                match rows.next()? {
                    Some(r) => Some(r.get_ref(0)?.as_bytes().map_err(rusqlite::Error::from)?.to_vec()),
                    None => None,
                }
            };
            let Some(key) = key else {
                return Ok(None);
            };
            if shape::is_shaped(head, &key) {
                return Ok(Some(key));
            }
            match shape::skip(head, &key, back) {
                Skip::From(bound) => from = bound,
                Skip::Below(bound) => below = bound,
                Skip::Done => return Ok(None),
            }
        }
    }

    /// Live items of a queue range (the queue's keys only, see `sql::QUEUE_LEN`).
    pub(crate) fn queue_len(&self, bounds: (&Scalar, &Scalar), now: f64) -> Result<i64> {
        let mut stmt = self.conn.prepare_cached(sql::QUEUE_LEN)?;
        Ok(stmt.query_row(params![ScalarSql(bounds.0), ScalarSql(bounds.1), now], |r| r.get(0))?)
    }

    /// Removes up to `limit` rows of a queue range, expired or not; returns how many.
    pub(crate) fn delete_queue_batch(&mut self, bounds: (&Scalar, &Scalar), limit: u64) -> Result<usize> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let names: Vec<Option<String>> = {
            let mut stmt = self.conn.prepare_cached(sql::DELETE_QUEUE_BATCH)?;
            stmt.query_map(params![ScalarSql(bounds.0), ScalarSql(bounds.1), limit], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?
        };
        let count = names.len();
        for name in names {
            self.remove_after_commit(name);
        }
        Ok(count)
    }

    /// Removes the items leased from `queue` (`""`: the integer-keyed one)
    /// and the queue's lease bookkeeping; returns how many items.
    pub(crate) fn delete_queue_leases(&mut self, queue: &str) -> Result<usize> {
        if !self.has_lease_table()? {
            return Ok(0);
        }
        let names: Vec<Option<String>> = {
            let mut stmt = self.conn.prepare_cached(sql::DELETE_LEASED_ITEMS)?;
            stmt.query_map([queue], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?
        };
        self.conn.prepare_cached(sql::DELETE_QUEUE_LEASES)?.execute([queue])?;
        let count = names.len();
        for name in names {
            self.remove_after_commit(name);
        }
        Ok(count)
    }

    /// The first or last live row in insertion order.
    pub(crate) fn edge_item(&self, last: bool, now: f64) -> Result<Option<(Key, ValueRow)>> {
        let statement = if last { sql::LAST_ITEM } else { sql::FIRST_ITEM };
        let mut stmt = self.conn.prepare_cached(statement)?;
        let mut rows = stmt.query([now])?;
        match rows.next()? {
            Some(r) => {
                let raw = r.get::<_, Option<i64>>(1)?.unwrap_or(1) != 0;
                let (key, row) = (key_from(r.get_ref(0)?, raw)?, ValueRow::from_row(r, 2)?);
                row.check(&key)?;
                Ok(Some((key, row)))
            }
            None => Ok(None),
        }
    }

    /// Live keys with `lo < rowid < hi`, in rowid order, at most `limit`.
    pub(crate) fn keys_page(
        &self,
        lo: i64,
        hi: i64,
        now: f64,
        ascending: bool,
        limit: i64,
    ) -> Result<Vec<(i64, Result<Key>)>> {
        let statement = if ascending { sql::KEYS_ASC } else { sql::KEYS_DESC };
        let mut stmt = self.conn.prepare_cached(statement)?;
        let mut rows = stmt.query(params![lo, hi, now, limit])?;
        let mut page = Vec::new();
        while let Some(r) = rows.next()? {
            let raw = r.get::<_, Option<i64>>(2)?.unwrap_or(1) != 0;
            page.push((r.get(0)?, key_from(r.get_ref(1)?, raw)));
        }
        Ok(page)
    }

    /// Live rows with `lo < cursor < hi`, in cursor order, at most `limit`:
    /// (cursor, key, value columns unless `Keys`).
    pub(crate) fn page(
        &self,
        kind: PageKind,
        (lo, hi): (i64, i64),
        now: f64,
        ascending: bool,
        limit: i64,
    ) -> Result<Vec<PageRow>> {
        if kind == PageKind::Keys {
            let keys = self.keys_page(lo, hi, now, ascending, limit)?;
            return Ok(keys.into_iter().map(|(rowid, key)| (rowid, key, None)).collect());
        }
        let statement = match (kind, ascending) {
            (PageKind::Queue, true) => sql::QUEUE_ASC,
            (PageKind::Queue, false) => sql::QUEUE_DESC,
            (_, true) => sql::ITEMS_ASC,
            (_, false) => sql::ITEMS_DESC,
        };
        let mut stmt = self.conn.prepare_cached(statement)?;
        let mut rows = stmt.query(params![lo, hi, now, limit])?;
        let mut page = Vec::new();
        while let Some(r) = rows.next()? {
            page.push(item_row(r)?);
        }
        Ok(page)
    }

    /// The live item at position `n` (from the front) of the integer queue.
    pub(crate) fn queue_nth(&self, n: i64, now: f64) -> Result<Option<(i64, Key, Option<ValueRow>)>> {
        let mut stmt = self.conn.prepare_cached(sql::QUEUE_NTH)?;
        let mut rows = stmt.query(params![0, QUEUE_BOUND, now, n])?;
        match rows.next()? {
            Some(r) => {
                let (cursor, key, row) = item_row(r)?;
                Ok(Some((cursor, key?, row)))
            }
            None => Ok(None),
        }
    }

    /// SQLite's counter of commits by other connections (this connection's view).
    pub(crate) fn data_version(&self) -> Result<i64> {
        Ok(self
            .conn
            .prepare_cached(sql::DATA_VERSION)?
            .query_row([], |r| r.get(0))?)
    }

    pub(crate) fn max_rowid(&self) -> Result<i64> {
        Ok(self.conn.prepare_cached(sql::MAX_ROWID)?.query_row([], |r| r.get(0))?)
    }

    /// Deletes up to `limit` rows of a batch; returns how many.
    pub(crate) fn delete_batch(&mut self, batch: Batch<'_>, limit: u64) -> Result<usize> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let names: Vec<Option<String>> = {
            let (statement, first): (&str, Option<&dyn ToSql>) = match &batch {
                Batch::Expired { now } => (sql::DELETE_EXPIRED_BATCH, Some(now)),
                Batch::Tagged(tag) => (sql::DELETE_TAG_BATCH, Some(tag)),
                Batch::All => (sql::DELETE_ALL_BATCH, None),
                Batch::Policy(EvictionPolicy::LeastRecentlyStored) => (sql::CULL_STORE_TIME, None),
                Batch::Policy(EvictionPolicy::LeastRecentlyUsed) => (sql::CULL_ACCESS_TIME, None),
                Batch::Policy(EvictionPolicy::LeastFrequentlyUsed) => (sql::CULL_ACCESS_COUNT, None),
                Batch::Policy(EvictionPolicy::None) => return Ok(0),
            };
            let mut stmt = self.conn.prepare_cached(statement)?;
            let rows = match first {
                Some(p) => stmt
                    .query_map(params![p, limit], |r| Ok(lenient_filename(r.get_ref(0)?)))?
                    .collect::<rusqlite::Result<Vec<_>>>(),
                None => stmt
                    .query_map(params![limit], |r| Ok(lenient_filename(r.get_ref(0)?)))?
                    .collect::<rusqlite::Result<Vec<_>>>(),
            };
            rows?
        };
        let count = names.len();
        for name in names {
            self.remove_after_commit(name);
        }
        if matches!(batch, Batch::Policy(_)) && count > 0 {
            // Live items dropped for the size limit: never silently.
            let n = i64::try_from(count).unwrap_or(i64::MAX);
            self.conn
                .prepare_cached(sql::ADD_TO_COUNTER)?
                .execute(params![crate::settings::CULLED_KEY, n])?;
        }
        Ok(count)
    }

    /// Database bytes plus value-file bytes (saturating, whatever the
    /// stored size total holds).
    pub(crate) fn volume(&self) -> Result<i64> {
        let (pages, size) = self
            .conn
            .prepare_cached(sql::VOLUME)?
            .query_row([], |r| Ok((r.get::<_, i64>(0)?, scalar(r.get_ref(1)?))))?;
        let size = match size {
            Scalar::Int(n) => n,
            // `as` saturates: a REAL past i64 is the largest size.
            Scalar::Real(x) => x as i64,
            _ => 0,
        };
        Ok(pages.saturating_add(size))
    }

    /// Removes up to `limit` expired rows, for the cull after a write. A
    /// plain select (usually empty) then deletes by rowid: cheaper on this
    /// hot path than one `DELETE ... RETURNING`.
    pub(crate) fn cull_expired(&mut self, now: f64, limit: u64) -> Result<usize> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows: Vec<(i64, Option<String>)> = {
            let mut stmt = self.conn.prepare_cached(sql::SELECT_EXPIRED)?;
            stmt.query_map(params![now, limit], |r| {
                Ok((r.get(0)?, lenient_filename(r.get_ref(1)?)))
            })?
            .collect::<rusqlite::Result<_>>()?
        };
        let count = rows.len();
        for (rowid, filename) in rows {
            self.delete_rowid(rowid, filename)?;
        }
        Ok(count)
    }

    pub(crate) fn len_live(&self, now: f64) -> Result<i64> {
        Ok(self
            .conn
            .prepare_cached(sql::LEN_LIVE)?
            .query_row([now], |r| r.get(0))?)
    }

    pub(crate) fn setting(&self, name: &str) -> Result<Scalar> {
        let mut stmt = self.conn.prepare_cached(sql::SELECT_SETTING)?;
        Ok(stmt
            .query_row([name], |r| Ok(scalar(r.get_ref(0)?)))
            .optional()?
            .unwrap_or(Scalar::Null))
    }

    pub(crate) fn set_setting(&self, name: &str, value: &Scalar) -> Result<()> {
        self.conn
            .prepare_cached(sql::UPDATE_SETTING)?
            .execute(params![name, ScalarSql(value)])?;
        Ok(())
    }

    pub(crate) fn count_rows(&self) -> Result<i64> {
        Ok(self.conn.query_row(sql::COUNT_ROWS, [], |r| r.get(0))?)
    }

    /// The total of the rows' sizes, exact (it may pass `i64`).
    pub(crate) fn sum_sizes(&self) -> Result<i128> {
        let mut stmt = self.conn.prepare(sql::NONZERO_SIZES)?;
        let mut rows = stmt.query([])?;
        let mut total = 0i128;
        while let Some(r) = rows.next()? {
            total += i128::from(r.get::<_, i64>(0)?);
        }
        Ok(total)
    }

    /// Every row naming a file.
    pub(crate) fn file_rows(&self) -> Result<Vec<FileRow>> {
        let mut stmt = self.conn.prepare(sql::FILE_ROWS)?;
        let rows = stmt.query_map([], |r| {
            let size = match r.get_ref(3)? {
                ValueRef::Integer(n) => Some(n),
                _ => None,
            };
            Ok(FileRow {
                rowid: r.get(0)?,
                key: key_text(r, 1)?,
                size,
                // FILE_ROWS reads text only; not UTF-8 is no value file name.
                filename: String::from_utf8_lossy(r.get_ref(4)?.as_bytes().unwrap_or_default()).into_owned(),
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Rows with a column of the wrong type: rowid, key, column, its type.
    pub(crate) fn bad_column_rows(&self) -> Result<Vec<(i64, String, &'static str, String)>> {
        let mut stmt = self.conn.prepare(sql::BAD_COLUMN_ROWS)?;
        let mut rows = stmt.query([])?;
        let mut found = Vec::new();
        while let Some(r) = rows.next()? {
            let types: [String; 3] = [r.get(3)?, r.get(4)?, r.get(5)?];
            let allowed: [&[&str]; 3] = [&["integer", "null"], &["text", "null"], &["real", "integer", "null"]];
            for (i, column) in ["mode", "filename", "expire_time"].into_iter().enumerate() {
                if !allowed[i].contains(&types[i].as_str()) {
                    found.push((r.get(0)?, key_text(r, 1)?, column, types[i].clone()));
                }
            }
        }
        Ok(found)
    }

    /// Inline rows whose size is not 0: rowid, key, the size as text.
    pub(crate) fn bad_inline_sizes(&self) -> Result<Vec<(i64, String, String)>> {
        let mut stmt = self.conn.prepare(sql::BAD_INLINE_SIZES)?;
        let rows = stmt.query_map([], |r| {
            let size = match scalar(r.get_ref(3)?) {
                Scalar::Null => "NULL".to_owned(),
                Scalar::Int(n) => n.to_string(),
                Scalar::Real(x) => x.to_string(),
                Scalar::Text(t) => format!("{t:?}"),
                Scalar::Blob(b) => format!("a blob of {} bytes", b.len()),
            };
            Ok((r.get(0)?, key_text(r, 1)?, size))
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub(crate) fn update_size(&self, rowid: i64, size: i64) -> Result<()> {
        self.conn.execute(sql::UPDATE_SIZE, params![rowid, size])?;
        Ok(())
    }

    /// SQLite's own integrity check: the problems it lists (empty when "ok").
    pub(crate) fn integrity_problems(&self) -> Result<Vec<String>> {
        let mut stmt = self.conn.prepare(sql::INTEGRITY_CHECK)?;
        let rows: Vec<String> = stmt.query_map([], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
        Ok(if rows.len() == 1 && rows[0] == "ok" {
            Vec::new()
        } else {
            rows
        })
    }

    pub(crate) fn vacuum(&self) -> Result<()> {
        self.conn.execute_batch("VACUUM")?;
        Ok(())
    }
}
