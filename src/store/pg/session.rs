//! The row operations of the PostgreSQL backend, under the names and
//! signatures of the SQLite ones (see `store::session`).
//!
//! SQLite runs one writer at a time, so the layers above read and then
//! write without fear of a concurrent writer. PostgreSQL runs writers side
//! by side (READ COMMITTED), so a write session locks what it reads before
//! acting on it:
//! - pulls, the peek that starts a lease and the look for a run-out lease
//!   take their row `FOR UPDATE SKIP LOCKED`: concurrent consumers each get
//!   another row and never wait on each other;
//! - the lookups of `set`, `add` and `incr` first take an advisory lock on
//!   the key (an absent key has no row to lock), then lock the row;
//! - the lease lookups of `ack`, `nack` and `renew` lock the lease row;
//! - finding the free number at an end of a queue (push, nack, requeue)
//!   takes an advisory lock on the queue, so two pushers never pick the
//!   same number; the lock is held to the commit, as SQLite's write lock.

use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use std::cell::Cell;
use std::future::Future;

use super::client::{Conn, block_on, join2, pg_error};
use super::sql;
use crate::codec::Scalar;
use crate::error::{Error, Result};
use crate::key::Key;
use crate::settings::EvictionPolicy;
use crate::store::dead::DeadRecord;
use crate::store::lease::{LeaseRow, RunningRow};
use crate::store::ops::{Batch, FileRow, KeyRow, NewRow, PageKind, PageRow, QUEUE_BOUND, ValueRow};

pub(super) type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

/// A pooled connection inside (or outside) a transaction.
pub(crate) struct PgSession {
    pub(crate) conn: Conn,
    /// A write transaction: lookups lock what they find.
    pub(crate) writing: bool,
    /// A push happened: the commit notifies the store's channel.
    pub(crate) pushed: bool,
    savepoints: u32,
    /// A `BEGIN` not sent yet: it goes out with the first statement, in
    /// the same round trip.
    begin_pending: Cell<bool>,
    /// The lock timeout (milliseconds) the pending `BEGIN` sets, if any.
    begin_lock_timeout: Cell<Option<u64>>,
    /// The store's schema, which the advisory lock numbers include.
    schema: std::sync::Arc<str>,
    /// Whether a queue had jobs, as the look for run-out leases found out
    /// in its round trip; taken by the next `job_gauge` of that queue,
    /// dropped by a job insert (see `pg::jobs`).
    pub(super) jobs_seen: std::cell::RefCell<Option<(String, bool)>>,
}

/// FNV-1a, 64 bits: a hash that every build and platform computes alike,
/// as advisory lock numbers must be the same on every host.
fn fnv(parts: &[&[u8]]) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in part.iter().chain(&[0xff]) {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h as i64
}

/// The key columns `(kind, ki, kb)`.
fn key_cols(key: &Key) -> (i16, i64, &[u8]) {
    match key {
        Key::Int(n) => (sql::KIND_INT, *n, &[]),
        // 0.0 and -0.0 are one key, as in SQLite.
        Key::Float(x) => (sql::KIND_FLOAT, if *x == 0.0 { 0 } else { x.to_bits() as i64 }, &[]),
        Key::Text(s) => (sql::KIND_TEXT, 0, s.as_bytes()),
        Key::Bytes(b) => (sql::KIND_BYTES, 0, b),
        Key::Encoded(b) => (sql::KIND_ENCODED, 0, b),
    }
}

/// The queue columns `(qname, qnum)` of a key: the integer queue's, a
/// prefixed queue's (`<prefix>-` and 15 digits), or none.
fn queue_cols(key: &Key) -> (Option<&str>, Option<i64>) {
    match key {
        Key::Int(n) => (Some(""), Some(*n)),
        Key::Text(s) => {
            let b = s.as_bytes();
            let n = b.len();
            if n >= 16 && b[n - 16] == b'-' && b[n - 15..].iter().all(u8::is_ascii_digit) {
                match s[n - 15..].parse() {
                    Ok(number) => (Some(&s[..n - 15]), Some(number)),
                    Err(_) => (None, None),
                }
            } else {
                (None, None)
            }
        }
        _ => (None, None),
    }
}

/// A queue's `(qname, lo, hi)` from its bounds (see `queue::bounds`).
fn queue_range(bounds: (&Scalar, &Scalar)) -> Result<(String, i64, i64)> {
    match bounds {
        (Scalar::Int(lo), Scalar::Int(hi)) => Ok((String::new(), *lo, *hi)),
        (Scalar::Text(lo), Scalar::Text(hi)) if lo.len() >= 16 && hi.len() == lo.len() => {
            let cut = lo.len() - 15;
            let number = |t: &str| {
                t.get(cut..)
                    .and_then(|d| d.parse::<i64>().ok())
                    .ok_or_else(|| Error::InvalidUse(format!("bad queue bound {t:?}")))
            };
            Ok((lo[..cut].to_owned(), number(lo)?, number(hi)?))
        }
        _ => Err(Error::InvalidUse("bad queue bounds".into())),
    }
}

/// A key read back from `(kind, ki, kb)` at column `at`.
fn key_at(r: &Row, at: usize) -> Result<Key> {
    let kind: i16 = r.try_get(at).map_err(pg_error)?;
    let ki: i64 = r.try_get(at + 1).map_err(pg_error)?;
    let kb: Vec<u8> = r.try_get(at + 2).map_err(pg_error)?;
    Ok(match kind {
        sql::KIND_INT => Key::Int(ki),
        sql::KIND_FLOAT => Key::Float(f64::from_bits(ki as u64)),
        sql::KIND_TEXT => {
            Key::Text(String::from_utf8(kb).map_err(|_| Error::Corrupt("a text key is not valid UTF-8".into()))?)
        }
        sql::KIND_BYTES => Key::Bytes(kb),
        sql::KIND_ENCODED => Key::Encoded(kb),
        other => return Err(Error::Corrupt(format!("a row has a key of unknown kind {other}"))),
    })
}

/// `(vi, vr, vt, vb)`: at most one is set.
type ValueCols<'a> = (Option<i64>, Option<f64>, Option<&'a str>, Option<&'a [u8]>);

/// The value columns `(vi, vr, vt, vb)` of a scalar.
fn value_cols(v: &Scalar) -> ValueCols<'_> {
    match v {
        Scalar::Null => (None, None, None, None),
        Scalar::Int(n) => (Some(*n), None, None, None),
        Scalar::Real(x) => (None, Some(*x), None, None),
        Scalar::Text(t) => (None, None, Some(t), None),
        Scalar::Blob(b) => (None, None, None, Some(b)),
    }
}

/// The scalar in `(vi, vr, vt, vb)` at column `at`.
fn scalar_at(r: &Row, at: usize) -> Result<Scalar> {
    if let Some(n) = r.try_get::<_, Option<i64>>(at).map_err(pg_error)? {
        return Ok(Scalar::Int(n));
    }
    if let Some(x) = r.try_get::<_, Option<f64>>(at + 1).map_err(pg_error)? {
        return Ok(Scalar::Real(x));
    }
    if let Some(t) = r.try_get::<_, Option<String>>(at + 2).map_err(pg_error)? {
        return Ok(Scalar::Text(t));
    }
    if let Some(b) = r.try_get::<_, Option<Vec<u8>>>(at + 3).map_err(pg_error)? {
        return Ok(Scalar::Blob(b));
    }
    Ok(Scalar::Null)
}

/// The value columns (`mode, vi, vr, vt, vb, expire_time, tag, size`) at `at`.
fn value_at(r: &Row, at: usize) -> Result<ValueRow> {
    Ok(ValueRow {
        mode: r.try_get(at).map_err(pg_error)?,
        filename: None,
        value: scalar_at(r, at + 1)?,
        expire_time: r.try_get(at + 5).map_err(pg_error)?,
        tag: r.try_get(at + 6).map_err(pg_error)?,
        size: Some(r.try_get(at + 7).map_err(pg_error)?),
        bad_column: None,
    })
}

/// A lease table key: the text of the key (an integer queue key as digits,
/// as SQLite's TEXT column stores it).
fn lease_key_text(key: &Key) -> String {
    match key {
        Key::Int(n) => n.to_string(),
        Key::Text(t) => t.clone(),
        other => other.to_string(),
    }
}

fn count(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

fn limit(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

pub(super) fn unsupported(what: &str) -> Error {
    Error::Unsupported {
        backend: "PostgreSQL",
        what: what.into(),
    }
}

impl PgSession {
    pub(crate) fn new(conn: Conn, writing: bool, schema: std::sync::Arc<str>) -> PgSession {
        PgSession {
            conn,
            writing,
            pushed: false,
            savepoints: 0,
            begin_pending: Cell::new(false),
            begin_lock_timeout: Cell::new(None),
            schema,
            jobs_seen: std::cell::RefCell::new(None),
        }
    }

    /// Makes the session's transaction begin with its first statement;
    /// with `lock_timeout` (milliseconds) for its lock waits.
    pub(crate) fn begin_lazily(&self, lock_timeout: Option<u64>) {
        self.begin_pending.set(true);
        self.begin_lock_timeout.set(lock_timeout);
    }

    /// Runs `request` (made, not yet polled), after the pending `BEGIN`
    /// if there is one, in one round trip.
    pub(super) fn run<T>(
        &self,
        request: impl Future<Output = std::result::Result<T, tokio_postgres::Error>>,
    ) -> Result<T> {
        if !self.begin_pending.replace(false) {
            return block_on(request).map_err(pg_error);
        }
        let begin = self.conn.statement("BEGIN")?;
        let client = &self.conn.client;
        let result = match self.begin_lock_timeout.take() {
            None => {
                let (begun, result) = block_on(join2(client.execute(&begin, &[]), request));
                begun.map_err(pg_error)?;
                result
            }
            Some(ms) => {
                let set = self.conn.statement(sql::SET_LOCK_TIMEOUT)?;
                let ms = ms.to_string();
                let ((begun, set), result) = block_on(join2(
                    join2(client.execute(&begin, &[]), client.execute(&set, &[&ms])),
                    request,
                ));
                begun.map_err(pg_error)?;
                set.map_err(pg_error)?;
                result
            }
        };
        result.map_err(pg_error)
    }

    pub(super) fn rows(&self, statement: &'static str, params: Params<'_>) -> Result<Vec<Row>> {
        let st = self.conn.statement(statement)?;
        self.run(self.conn.client.query(&st, params))
    }

    pub(super) fn row(&self, statement: &'static str, params: Params<'_>) -> Result<Option<Row>> {
        let st = self.conn.statement(statement)?;
        self.run(self.conn.client.query_opt(&st, params))
    }

    pub(super) fn exec(&self, statement: &'static str, params: Params<'_>) -> Result<u64> {
        let st = self.conn.statement(statement)?;
        self.run(self.conn.client.execute(&st, params))
    }

    /// Takes the advisory lock `lock`, then runs `statement`: two
    /// statements (the second's snapshot is taken once the lock is held),
    /// one round trip.
    pub(super) fn row_after_lock(&self, lock: i64, statement: &'static str, params: Params<'_>) -> Result<Option<Row>> {
        let (st_lock, st) = (self.conn.statement(sql::XACT_LOCK)?, self.conn.statement(statement)?);
        let client = &self.conn.client;
        self.run(async {
            let (locked, row) = join2(client.query_opt(&st_lock, &[&lock]), client.query_opt(&st, params)).await;
            locked?;
            row
        })
    }

    pub(super) fn one_i64(&self, statement: &'static str, params: Params<'_>) -> Result<i64> {
        match self.row(statement, params)? {
            Some(r) => r.try_get(0).map_err(pg_error),
            None => Ok(0),
        }
    }

    pub(crate) fn execute_batch(&self, statements: &str) -> Result<()> {
        let statements = match (self.begin_pending.replace(false), self.begin_lock_timeout.take()) {
            (false, _) => statements.to_owned(),
            (true, None) => format!("BEGIN; {statements}"),
            (true, Some(ms)) => format!("BEGIN; SET LOCAL lock_timeout = {ms}; {statements}"),
        };
        block_on(self.conn.client.batch_execute(&statements)).map_err(pg_error)
    }

    pub(crate) fn mark_pushed(&mut self) {
        self.pushed = true;
    }

    pub(crate) fn enter_savepoint(&mut self) -> u32 {
        self.savepoints += 1;
        self.savepoints
    }

    pub(crate) fn leave_savepoint(&mut self) {
        self.savepoints -= 1;
    }

    /// The number of the advisory lock on `what` (a key, a queue).
    pub(super) fn lock_number(&self, what: &[&[u8]]) -> i64 {
        let mut parts = vec![self.schema.as_bytes()];
        parts.extend_from_slice(what);
        fnv(&parts)
    }

    /// Takes the store's transaction lock, held until this transaction
    /// ends. A `transact` body locks each key and queue it touches as it
    /// goes, in the body's order; two bodies running at once could take two
    /// of them in opposite orders and deadlock (seen on the crawler, whose
    /// body adds a link's key and pushes to the frontier's queue). Bodies of
    /// one store therefore run one at a time, as they do on a directory;
    /// single operations take one key or queue lock each and never wait
    /// for this one.
    pub(super) fn lock_transact(&self) -> Result<()> {
        let lock = self.lock_number(&[b"t"]);
        self.exec(sql::XACT_LOCK, &[&lock]).map(drop)
    }

    fn key_lock(&self, key: &Key) -> i64 {
        let (kind, ki, kb) = key_cols(key);
        self.lock_number(&[b"k", &kind.to_le_bytes(), &ki.to_le_bytes(), kb])
    }

    fn queue_lock(&self, qname: &str) -> i64 {
        self.lock_number(&[b"q", qname.as_bytes()])
    }

    pub(super) fn by_key(&self, statement: &'static str, key: &Key, rest: Params<'_>) -> Result<Option<Row>> {
        let (kind, ki, kb) = key_cols(key);
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![&kind, &ki, &kb];
        params.extend_from_slice(rest);
        self.row(statement, &params)
    }

    // ---- the operations of `store::session` ----

    pub(crate) fn get_live(&self, key: &Key, now: f64) -> Result<Option<ValueRow>> {
        self.by_key(sql::SELECT_LIVE, key, &[&now])?
            .map(|r| value_at(&r, 1))
            .transpose()
    }

    /// No eviction policy runs on PostgreSQL, so there is no access to record.
    pub(crate) fn get_recording(&self, key: &Key, now: f64, _policy: EvictionPolicy) -> Result<Option<ValueRow>> {
        self.get_live(key, now)
    }

    pub(crate) fn count_access(&self, hit: bool) -> Result<()> {
        let name = if hit { "hits" } else { "misses" };
        self.exec(sql::ADD_TO_COUNTER, &[&name, &1i64])?;
        Ok(())
    }

    pub(crate) fn contains_live(&self, key: &Key, now: f64) -> Result<bool> {
        Ok(self.by_key(sql::CONTAINS_LIVE, key, &[&now])?.is_some())
    }

    fn find(&self, key: &Key) -> Result<Option<KeyRow>> {
        let found = if self.writing {
            let (kind, ki, kb) = key_cols(key);
            self.row_after_lock(self.key_lock(key), sql::SELECT_ANY_LOCKED, &[&kind, &ki, &kb])?
        } else {
            self.by_key(sql::SELECT_ANY, key, &[])?
        };
        let Some(r) = found else {
            return Ok(None);
        };
        Ok(Some(KeyRow {
            rowid: r.try_get(0).map_err(pg_error)?,
            filename: None,
            expire_time: r.try_get(1).map_err(pg_error)?,
            mode: r.try_get(2).map_err(pg_error)?,
            value: scalar_at(&r, 3)?,
        }))
    }

    pub(crate) fn find_any(&self, key: &Key) -> Result<Option<KeyRow>> {
        self.find(key)
    }

    pub(crate) fn find_slot(&self, key: &Key) -> Result<Option<KeyRow>> {
        self.find(key)
    }

    pub(crate) fn update_row(&self, rowid: i64, now: f64, row: &NewRow<'_>) -> Result<()> {
        no_file(row)?;
        let (vi, vr, vt, vb) = value_cols(row.value);
        self.exec(
            sql::UPDATE_ROW,
            &[
                &rowid,
                &now,
                &row.expire_time,
                &row.tag,
                &row.size,
                &row.mode,
                &vi,
                &vr,
                &vt,
                &vb,
            ],
        )?;
        Ok(())
    }

    pub(crate) fn insert_row(&self, key: &Key, now: f64, row: &NewRow<'_>) -> Result<()> {
        no_file(row)?;
        let (kind, ki, kb) = key_cols(key);
        let (qname, qnum) = queue_cols(key);
        let (vi, vr, vt, vb) = value_cols(row.value);
        self.exec(
            sql::INSERT_ROW,
            &[
                &kind,
                &ki,
                &kb,
                &qname,
                &qnum,
                &now,
                &row.expire_time,
                &row.tag,
                &row.size,
                &row.mode,
                &vi,
                &vr,
                &vt,
                &vb,
            ],
        )?;
        Ok(())
    }

    pub(crate) fn upsert(&mut self, key: &Key, now: f64, row: &NewRow<'_>) -> Result<()> {
        match self.find_slot(key)? {
            Some(old) => self.update_row(old.rowid, now, row),
            None => self.insert_row(key, now, row),
        }
    }

    pub(crate) fn incr_update(&self, rowid: i64, now: f64, value: i64, _policy: EvictionPolicy) -> Result<()> {
        self.exec(sql::INCR_UPDATE, &[&rowid, &now, &value])?;
        Ok(())
    }

    pub(crate) fn delete_live(&mut self, key: &Key, now: f64) -> Result<bool> {
        Ok(self.by_key(sql::DELETE_LIVE, key, &[&now])?.is_some())
    }

    pub(crate) fn pop_live(&mut self, key: &Key, now: f64) -> Result<Option<ValueRow>> {
        self.by_key(sql::POP_LIVE, key, &[&now])?
            .map(|r| value_at(&r, 1))
            .transpose()
    }

    pub(crate) fn touch_live(&self, key: &Key, now: f64, expire_time: Option<f64>) -> Result<bool> {
        let (kind, ki, kb) = key_cols(key);
        Ok(self.exec(sql::TOUCH_LIVE, &[&kind, &ki, &kb, &now, &expire_time])? > 0)
    }

    pub(crate) fn rename_key(&self, from: &Key, to: &Key) -> Result<()> {
        let (kind, ki, kb) = key_cols(from);
        let (tkind, tki, tkb) = key_cols(to);
        let (qname, qnum) = queue_cols(to);
        self.exec(sql::RENAME_KEY, &[&kind, &ki, &kb, &tkind, &tki, &tkb, &qname, &qnum])?;
        Ok(())
    }

    pub(crate) fn delete_rowid(&mut self, rowid: i64, _filename: Option<String>) -> Result<()> {
        self.exec(sql::DELETE_ROWID, &[&rowid])?;
        Ok(())
    }

    pub(crate) fn queue_edge(&self, bounds: (&Scalar, &Scalar), back: bool) -> Result<Option<Key>> {
        let (qname, lo, hi) = queue_range(bounds)?;
        let statement = if back {
            sql::QUEUE_LAST_KEY
        } else {
            sql::QUEUE_FIRST_KEY
        };
        let found = if self.writing {
            // The caller numbers a new item from this edge.
            self.row_after_lock(self.queue_lock(&qname), statement, &[&qname, &lo, &hi])?
        } else {
            self.row(statement, &[&qname, &lo, &hi])?
        };
        found.map(|r| key_at(&r, 0)).transpose()
    }

    pub(crate) fn pull(&mut self, bounds: (&Scalar, &Scalar), back: bool) -> Result<Option<(Key, ValueRow)>> {
        let (qname, lo, hi) = queue_range(bounds)?;
        let statement = if back { sql::PULL_BACK } else { sql::PULL_FRONT };
        match self.row(statement, &[&qname, &lo, &hi])? {
            Some(r) => Ok(Some((key_at(&r, 0)?, value_at(&r, 3)?))),
            None => Ok(None),
        }
    }

    pub(crate) fn peek(&self, bounds: (&Scalar, &Scalar), now: f64, back: bool) -> Result<Option<(Key, ValueRow)>> {
        let (qname, lo, hi) = queue_range(bounds)?;
        let statement = match (back, self.writing) {
            (false, false) => sql::PEEK_FRONT,
            (true, false) => sql::PEEK_BACK,
            (false, true) => sql::PEEK_FRONT_LOCKED,
            (true, true) => sql::PEEK_BACK_LOCKED,
        };
        match self.row(statement, &[&qname, &lo, &hi, &now])? {
            Some(r) => Ok(Some((key_at(&r, 0)?, value_at(&r, 3)?))),
            None => Ok(None),
        }
    }

    pub(crate) fn queue_len(&self, bounds: (&Scalar, &Scalar), now: f64) -> Result<i64> {
        let (qname, lo, hi) = queue_range(bounds)?;
        self.one_i64(sql::QUEUE_LEN, &[&qname, &lo, &hi, &now])
    }

    pub(crate) fn delete_queue_batch(&mut self, bounds: (&Scalar, &Scalar), n: u64) -> Result<usize> {
        let (qname, lo, hi) = queue_range(bounds)?;
        Ok(count(
            self.exec(sql::DELETE_QUEUE_BATCH, &[&qname, &lo, &hi, &limit(n)])?,
        ))
    }

    pub(crate) fn delete_queue_leases(&mut self, queue: &str) -> Result<usize> {
        let n = self.exec(sql::DELETE_LEASED_ITEMS, &[&queue])?;
        self.exec(sql::DELETE_QUEUE_LEASES, &[&queue])?;
        Ok(count(n))
    }

    pub(crate) fn edge_item(&self, last: bool, now: f64) -> Result<Option<(Key, ValueRow)>> {
        let statement = if last { sql::LAST_ITEM } else { sql::FIRST_ITEM };
        match self.row(statement, &[&now])? {
            Some(r) => Ok(Some((key_at(&r, 0)?, value_at(&r, 3)?))),
            None => Ok(None),
        }
    }

    pub(crate) fn page(
        &self,
        kind: PageKind,
        (lo, hi): (i64, i64),
        now: f64,
        ascending: bool,
        n: i64,
    ) -> Result<Vec<PageRow>> {
        let statement = match (kind, ascending) {
            (PageKind::Keys, true) => sql::KEYS_ASC,
            (PageKind::Keys, false) => sql::KEYS_DESC,
            (PageKind::Items, true) => sql::ITEMS_ASC,
            (PageKind::Items, false) => sql::ITEMS_DESC,
            (PageKind::Queue, true) => sql::QUEUE_ASC,
            (PageKind::Queue, false) => sql::QUEUE_DESC,
        };
        let rows = self.rows(statement, &[&lo, &hi, &now, &n])?;
        rows.iter()
            .map(|r| {
                let cursor: i64 = r.try_get(0).map_err(pg_error)?;
                let value = match kind {
                    PageKind::Keys => None,
                    _ => Some(value_at(r, 4)?),
                };
                Ok((cursor, key_at(r, 1), value))
            })
            .collect()
    }

    pub(crate) fn queue_nth(&self, n: i64, now: f64) -> Result<Option<(i64, Key, Option<ValueRow>)>> {
        match self.row(sql::QUEUE_NTH, &[&0i64, &QUEUE_BOUND, &now, &n])? {
            Some(r) => Ok(Some((
                r.try_get(0).map_err(pg_error)?,
                key_at(&r, 1)?,
                Some(value_at(&r, 4)?),
            ))),
            None => Ok(None),
        }
    }

    pub(crate) fn max_rowid(&self) -> Result<i64> {
        self.one_i64(sql::MAX_ROWID, &[])
    }

    pub(crate) fn delete_batch(&mut self, batch: Batch<'_>, n: u64) -> Result<usize> {
        let n = limit(n);
        let removed = match batch {
            Batch::Expired { now } => self.exec(sql::DELETE_EXPIRED_BATCH, &[&now, &n])?,
            Batch::Tagged(tag) => self.exec(sql::DELETE_TAG_BATCH, &[&tag, &n])?,
            Batch::All => self.exec(sql::DELETE_ALL_BATCH, &[&n])?,
            // Opening refuses every policy but `none` (see `pg::settings`).
            Batch::Policy(_) => 0,
        };
        Ok(count(removed))
    }

    pub(crate) fn volume(&self) -> Result<i64> {
        self.one_i64(sql::VOLUME, &[])
    }

    pub(crate) fn cull_expired(&mut self, now: f64, n: u64) -> Result<usize> {
        // A plain look first: a write usually finds nothing to cull, and
        // the delete's row locks are not worth taking then.
        if self.row(sql::ANY_EXPIRED, &[&now])?.is_none() {
            return Ok(0);
        }
        Ok(count(self.exec(sql::DELETE_EXPIRED_BATCH, &[&now, &limit(n)])?))
    }

    pub(crate) fn len_live(&self, now: f64) -> Result<i64> {
        self.one_i64(sql::LEN_LIVE, &[&now])
    }

    pub(crate) fn setting(&self, name: &str) -> Result<Scalar> {
        match self.row(sql::SELECT_SETTING, &[&name])? {
            Some(r) => scalar_at(&r, 0),
            None => Ok(Scalar::Null),
        }
    }

    pub(crate) fn set_setting(&self, name: &str, value: &Scalar) -> Result<()> {
        let (vi, vr, vt, vb) = value_cols(value);
        self.exec(sql::UPSERT_SETTING, &[&name, &vi, &vr, &vt, &vb])?;
        Ok(())
    }

    pub(crate) fn count_rows(&self) -> Result<i64> {
        self.one_i64(sql::COUNT_ROWS, &[])
    }

    pub(crate) fn sum_sizes(&self) -> Result<i128> {
        let text: String = match self.row(sql::SUM_SIZES, &[])? {
            Some(r) => r.try_get(0).map_err(pg_error)?,
            None => return Ok(0),
        };
        text.parse()
            .map_err(|_| Error::Corrupt(format!("the sizes add up to {text:?}")))
    }

    /// No row names a file: values are always inline.
    pub(crate) fn file_rows(&self) -> Result<Vec<FileRow>> {
        Ok(Vec::new())
    }

    /// Typed columns hold no value of another type.
    pub(crate) fn bad_column_rows(&self) -> Result<Vec<(i64, String, &'static str, String)>> {
        Ok(Vec::new())
    }

    pub(crate) fn bad_inline_sizes(&self) -> Result<Vec<(i64, String, String)>> {
        Ok(Vec::new())
    }

    pub(crate) fn update_size(&self, rowid: i64, size: i64) -> Result<()> {
        self.exec(sql::UPDATE_SIZE, &[&rowid, &size])?;
        Ok(())
    }

    pub(crate) fn integrity_problems(&self) -> Result<Vec<String>> {
        Err(unsupported(
            "check (the server keeps its own integrity; there are no value files to compare)",
        ))
    }

    pub(crate) fn vacuum(&self) -> Result<()> {
        Err(unsupported("vacuum (the server's autovacuum reclaims space)"))
    }

    // ---- leases ----

    /// The lease table is made with the schema.
    pub(crate) fn create_lease_table(&self) -> Result<()> {
        Ok(())
    }

    pub(crate) fn has_lease_table(&self) -> Result<bool> {
        Ok(true)
    }

    pub(crate) fn clear_leases(&self) -> Result<()> {
        self.exec(sql::LEASE_CLEAR, &[])?;
        Ok(())
    }

    /// The oldest run-out lease of `queue`; in the same round trip, whether
    /// the queue has jobs (the lease looks at them next, see `pg::jobs`).
    pub(crate) fn expired_lease(&self, queue: &str, now: f64) -> Result<Option<(String, i64, i64)>> {
        let (st, st_jobs) = (
            self.conn.statement(sql::LEASE_EXPIRED)?,
            self.conn.statement(sql::JOB_ANY)?,
        );
        let client = &self.conn.client;
        let (found, jobs) = self.run(async {
            let (found, jobs) = join2(
                client.query_opt(&st, &[&queue, &now]),
                client.query_one(&st_jobs, &[&queue]),
            )
            .await;
            Ok((found?, jobs?))
        })?;
        let jobs: i64 = jobs.try_get(0).map_err(pg_error)?;
        self.jobs_seen.replace(Some((queue.to_owned(), jobs > 0)));
        match found {
            Some(r) => Ok(Some((
                r.try_get(0).map_err(pg_error)?,
                r.try_get(1).map_err(pg_error)?,
                r.try_get(2).map_err(pg_error)?,
            ))),
            None => Ok(None),
        }
    }

    pub(crate) fn next_deadline(&self, queue: &str) -> Result<Option<f64>> {
        match self.row(sql::LEASE_NEXT_DEADLINE, &[&queue])? {
            Some(r) => r.try_get(0).map_err(pg_error),
            None => Ok(None),
        }
    }

    pub(crate) fn leases_of(&self, queue: &str) -> Result<i64> {
        self.one_i64(sql::LEASE_RUNNING, &[&queue])
    }

    pub(crate) fn running_leases(&self, queue: &str, limit: i64) -> Result<Vec<RunningRow>> {
        self.running_rows(sql::LEASE_RUNNING_LIST, queue, limit)
    }

    /// The [`RunningRow`]s `statement` selects for `queue` and `limit`.
    pub(super) fn running_rows(&self, statement: &'static str, queue: &str, limit: i64) -> Result<Vec<RunningRow>> {
        self.rows(statement, &[&queue, &limit])?
            .iter()
            .map(|r| {
                Ok(RunningRow {
                    key: r.try_get(0).map_err(pg_error)?,
                    deadline: r.try_get(1).map_err(pg_error)?,
                    deliveries: r.try_get(2).map_err(pg_error)?,
                    last_error: r.try_get(3).map_err(pg_error)?,
                    size: r.try_get(4).map_err(pg_error)?,
                })
            })
            .collect()
    }

    pub(crate) fn queued(&self, bounds: (&Scalar, &Scalar), now: f64) -> Result<i64> {
        self.queue_len(bounds, now)
    }

    pub(crate) fn rowid_of(&self, key: &Key) -> Result<Option<i64>> {
        self.by_key(sql::ROWID, key, &[])?
            .map(|r| r.try_get(0).map_err(pg_error))
            .transpose()
    }

    pub(crate) fn row_by_rowid(&self, rowid: i64) -> Result<Option<ValueRow>> {
        self.row(sql::ROW_BY_ROWID, &[&rowid])?
            .map(|r| value_at(&r, 1))
            .transpose()
    }

    pub(crate) fn lease_row(&self, key: &Key) -> Result<Option<LeaseRow>> {
        let statement = if self.writing {
            sql::LEASE_BY_KEY_LOCKED
        } else {
            sql::LEASE_BY_KEY
        };
        let key = lease_key_text(key);
        match self.row(statement, &[&key])? {
            Some(r) => Ok(Some(LeaseRow {
                deliveries: r.try_get(0).map_err(pg_error)?,
                token: r.try_get(1).map_err(pg_error)?,
                item: r.try_get(2).map_err(pg_error)?,
                deadline: r.try_get(3).map_err(pg_error)?,
            })),
            None => Ok(None),
        }
    }

    pub(crate) fn put_lease_row(&self, key: &Key, queue: &str, row: &LeaseRow) -> Result<()> {
        let key = lease_key_text(key);
        self.exec(
            sql::LEASE_UPSERT,
            &[&key, &queue, &row.deadline, &row.deliveries, &row.token, &row.item],
        )?;
        Ok(())
    }

    pub(crate) fn delete_lease_row(&self, key: &Key) -> Result<()> {
        self.exec(sql::LEASE_DELETE, &[&lease_key_text(key)])?;
        Ok(())
    }

    pub(crate) fn set_lease_deadline(&self, key: &Key, deadline: f64) -> Result<()> {
        self.exec(sql::LEASE_SET_DEADLINE, &[&lease_key_text(key), &deadline])?;
        Ok(())
    }

    /// Records the dead letter now under `key` (see `store/dead.rs`).
    pub(crate) fn record_dead_letter(&self, key: &str, record: &DeadRecord) -> Result<()> {
        self.exec(
            sql::DEAD_UPSERT,
            &[
                &key,
                &record.item,
                &record.queue,
                &record.stored,
                &record.deliveries,
                &record.last_error,
                &record.dead_at,
            ],
        )?;
        Ok(())
    }

    /// The record of the dead letter under `key`, stale ones included (the
    /// caller compares `item`).
    pub(crate) fn dead_letter_record(&self, key: &Key) -> Result<Option<DeadRecord>> {
        let Key::Text(key) = key else {
            return Ok(None);
        };
        let Some(r) = self.row(sql::DEAD_BY_KEY, &[key])? else {
            return Ok(None);
        };
        Ok(Some(DeadRecord {
            item: r.try_get(0).map_err(pg_error)?,
            queue: r.try_get(1).map_err(pg_error)?,
            stored: r.try_get(2).map_err(pg_error)?,
            deliveries: r.try_get(3).map_err(pg_error)?,
            last_error: r.try_get(4).map_err(pg_error)?,
            dead_at: r.try_get(5).map_err(pg_error)?,
        }))
    }

    /// Drops the record under `key` (the item left the dead-letter queue).
    pub(crate) fn forget_dead_letter(&self, key: &Key) -> Result<()> {
        if let Key::Text(key) = key {
            self.exec(sql::DEAD_DELETE, &[key])?;
        }
        Ok(())
    }

    /// Drops every record (after a clear of the items).
    pub(crate) fn clear_dead_letters(&self) -> Result<()> {
        self.exec(sql::DEAD_CLEAR, &[])?;
        Ok(())
    }

    pub(crate) fn lease_key_between(&self, start: &str, end: &str) -> Result<Option<(String, String)>> {
        match self.row(sql::LEASE_KEY_BETWEEN, &[&start, &end])? {
            Some(r) => Ok(Some((r.try_get(0).map_err(pg_error)?, r.try_get(1).map_err(pg_error)?))),
            None => Ok(None),
        }
    }
}

/// A row naming a value file cannot be written: the PostgreSQL backend
/// keeps every value inline (opening sets no file threshold).
fn no_file(row: &NewRow<'_>) -> Result<()> {
    match row.filename {
        None => Ok(()),
        Some(_) => Err(unsupported("value files (values are stored inline)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_columns_follow_the_key_shapes() {
        assert_eq!(
            queue_cols(&Key::Int(500_000_000_000_000)),
            (Some(""), Some(500_000_000_000_000))
        );
        assert_eq!(
            queue_cols(&Key::Text("jobs-500000000000001".into())),
            (Some("jobs-"), Some(500_000_000_000_001))
        );
        assert_eq!(queue_cols(&Key::Text("jobs-50000000000001".into())), (None, None));
        assert_eq!(queue_cols(&Key::Text("jobs500000000000001".into())), (None, None));
        assert_eq!(queue_cols(&Key::Bytes(b"x".to_vec())), (None, None));
        let (lo, hi) = crate::queue::bounds(Some("jobs"));
        assert_eq!(queue_range((&lo, &hi)).unwrap(), ("jobs-".to_owned(), 0, QUEUE_BOUND));
        let (lo, hi) = crate::queue::bounds(None);
        assert_eq!(queue_range((&lo, &hi)).unwrap(), (String::new(), 0, QUEUE_BOUND));
    }

    #[test]
    fn lock_numbers_are_stable() {
        // The same on every host and build: workers on two machines must agree.
        assert_eq!(fnv(&[b"diskq", b"q", b""]), fnv(&[b"diskq", b"q", b""]));
        assert_ne!(fnv(&[b"a", b"bc"]), fnv(&[b"ab", b"c"]));
        assert_eq!(fnv(&[]), 0xcbf2_9ce4_8422_2325_u64 as i64);
    }
}
