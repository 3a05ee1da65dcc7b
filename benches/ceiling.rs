//! The raw-SQLite ceiling of `shared/BENCH.md`: only the SQL each operation
//! needs, through rusqlite, on the schema diskq creates (python-diskcache's
//! tables, indexes and count/size triggers), WAL, `synchronous = NORMAL`,
//! cached statements, one immediate transaction per write.
//!
//! `cargo bench --bench ceiling [-- --only W1,W2]` prints the same JSON
//! lines as `workloads`, with `"impl":"ceiling"`.
//!
//! What it leaves out on purpose, and diskq does: the cull after each write
//! (a select of expired rows and the volume check), value encoding, the
//! connection pool. So `diskq ÷ ceiling` is what diskq's own work costs.

mod common;

use std::sync::{Arc, Barrier};
use std::time::Instant;

use common::{BATCH, N, PER_THREAD, Report, THREADS, Timer, VALUE_LEN, key, report_timer, values};
use rusqlite::{Connection, OptionalExtension, params};

const IMP: &str = "ceiling";

/// diskq's schema (src/store/sql.rs), with its Settings metadata rows.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS Settings ( key TEXT NOT NULL UNIQUE, value);
INSERT OR IGNORE INTO Settings VALUES ('count', 0);
INSERT OR IGNORE INTO Settings VALUES ('size', 0);
INSERT OR IGNORE INTO Settings VALUES ('hits', 0);
INSERT OR IGNORE INTO Settings VALUES ('misses', 0);
CREATE TABLE IF NOT EXISTS Cache (rowid INTEGER PRIMARY KEY, key BLOB, raw INTEGER, store_time REAL,
  expire_time REAL, access_time REAL, access_count INTEGER DEFAULT 0, tag BLOB, size INTEGER DEFAULT 0,
  mode INTEGER DEFAULT 0, filename TEXT, value BLOB);
CREATE UNIQUE INDEX IF NOT EXISTS Cache_key_raw ON Cache(key, raw);
CREATE INDEX IF NOT EXISTS Cache_expire_time ON Cache (expire_time);
CREATE INDEX IF NOT EXISTS Cache_store_time ON Cache (store_time);
CREATE TRIGGER IF NOT EXISTS Settings_count_insert AFTER INSERT ON Cache FOR EACH ROW BEGIN
  UPDATE Settings SET value = value + 1 WHERE key = 'count'; END;
CREATE TRIGGER IF NOT EXISTS Settings_count_delete AFTER DELETE ON Cache FOR EACH ROW BEGIN
  UPDATE Settings SET value = value - 1 WHERE key = 'count'; END;
CREATE TRIGGER IF NOT EXISTS Settings_size_insert AFTER INSERT ON Cache FOR EACH ROW BEGIN
  UPDATE Settings SET value = value + NEW.size WHERE key = 'size'; END;
CREATE TRIGGER IF NOT EXISTS Settings_size_update AFTER UPDATE ON Cache FOR EACH ROW BEGIN
  UPDATE Settings SET value = value + NEW.size - OLD.size WHERE key = 'size'; END;
CREATE TRIGGER IF NOT EXISTS Settings_size_delete AFTER DELETE ON Cache FOR EACH ROW BEGIN
  UPDATE Settings SET value = value - OLD.size WHERE key = 'size'; END;
";

const SELECT_SLOT: &str = "SELECT rowid FROM Cache WHERE key = ?1 AND raw = 1";
const INSERT_ROW: &str = "INSERT INTO Cache(key, raw, store_time, expire_time, access_time, access_count, \
     tag, size, mode, filename, value) VALUES (?1, 1, ?2, NULL, ?2, 0, NULL, 0, 1, NULL, ?3)";
const UPDATE_ROW: &str = "UPDATE Cache SET store_time = ?2, expire_time = NULL, access_time = ?2, \
     access_count = 0, tag = NULL, size = 0, mode = 1, filename = NULL, value = ?3 WHERE rowid = ?1";
const SELECT_LIVE: &str = "SELECT mode, filename, value FROM Cache \
     WHERE key = ?1 AND raw = 1 AND (expire_time IS NULL OR expire_time > ?2)";
const QUEUE_LAST_KEY: &str =
    "SELECT key FROM Cache WHERE 0 < key AND key < 999999999999999 AND raw = 1 ORDER BY key DESC LIMIT 1";
const PULL_FRONT: &str = "DELETE FROM Cache WHERE rowid = (SELECT rowid FROM Cache \
     WHERE 0 < key AND key < 999999999999999 AND raw = 1 ORDER BY key ASC LIMIT 1) \
     RETURNING key, mode, filename, value";
const PULL_FRONT_MANY: &str = "DELETE FROM Cache WHERE rowid IN (SELECT rowid FROM Cache \
     WHERE 0 < key AND key < 999999999999999 AND raw = 1 ORDER BY key ASC LIMIT ?1) \
     RETURNING key, mode, filename, value";
const KEYS_ASC: &str = "SELECT rowid, key, raw FROM Cache WHERE ?1 < rowid \
     AND (expire_time IS NULL OR expire_time > ?2) ORDER BY rowid ASC LIMIT 100";

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// A connection as diskq's pool sets it up (its default pragmas).
fn connect(dir: &std::path::Path) -> Connection {
    let conn = Connection::open(dir.join("cache.db")).expect("open");
    conn.busy_timeout(std::time::Duration::from_secs(60))
        .expect("busy timeout");
    conn.set_prepared_statement_cache_capacity(64);
    conn.execute_batch(
        "PRAGMA journal_mode = wal; PRAGMA synchronous = 1; PRAGMA cache_size = 8192; PRAGMA mmap_size = 67108864;",
    )
    .expect("pragmas");
    conn
}

fn create(dir: &std::path::Path) -> Connection {
    let conn = Connection::open(dir.join("cache.db")).expect("open");
    conn.execute_batch("PRAGMA auto_vacuum = 1; PRAGMA journal_mode = wal;")
        .expect("pragmas");
    conn.execute_batch(&format!("BEGIN IMMEDIATE; {SCHEMA} COMMIT;"))
        .expect("schema");
    drop(conn);
    connect(dir)
}

/// One set: find the key's row, update it in place or insert.
fn set(conn: &Connection, k: &str, v: &[u8]) {
    conn.execute_batch("BEGIN IMMEDIATE").expect("begin");
    let t = now();
    let rowid: Option<i64> = conn
        .prepare_cached(SELECT_SLOT)
        .expect("prepare")
        .query_row([k], |r| r.get(0))
        .optional()
        .expect("select");
    match rowid {
        Some(rowid) => conn
            .prepare_cached(UPDATE_ROW)
            .expect("prepare")
            .execute(params![rowid, t, v])
            .expect("update"),
        None => conn
            .prepare_cached(INSERT_ROW)
            .expect("prepare")
            .execute(params![k, t, v])
            .expect("insert"),
    };
    conn.execute_batch("COMMIT").expect("commit");
}

fn get(conn: &Connection, k: &str) -> Option<Vec<u8>> {
    conn.prepare_cached(SELECT_LIVE)
        .expect("prepare")
        .query_row(params![k, now()], |r| r.get::<_, Vec<u8>>(2))
        .optional()
        .expect("select")
}

/// Pushes onto the back: the last key plus one.
fn push_in_txn(conn: &Connection, v: &[u8]) {
    let last: Option<i64> = conn
        .prepare_cached(QUEUE_LAST_KEY)
        .expect("prepare")
        .query_row([], |r| r.get(0))
        .optional()
        .expect("last key");
    let k = last.map_or(500_000_000_000_000, |k| k + 1);
    conn.prepare_cached(INSERT_ROW)
        .expect("prepare")
        .execute(params![k, now(), v])
        .expect("insert");
}

fn pop(conn: &Connection) -> Option<Vec<u8>> {
    conn.execute_batch("BEGIN IMMEDIATE").expect("begin");
    let got = conn
        .prepare_cached(PULL_FRONT)
        .expect("prepare")
        .query_row([], |r| r.get::<_, Vec<u8>>(3))
        .optional()
        .expect("pull");
    conn.execute_batch("COMMIT").expect("commit");
    got
}

/// The expired-rows select diskq runs after every write (src/store/sql.rs).
const SELECT_EXPIRED: &str = "SELECT rowid, filename FROM Cache \
     WHERE expire_time IS NOT NULL AND expire_time < ?1 ORDER BY expire_time LIMIT ?2";
/// The same without the LIMIT parameter: the caller stops after `limit` rows.
const SELECT_EXPIRED_UNLIMITED: &str = "SELECT rowid, filename FROM Cache \
     WHERE expire_time IS NOT NULL AND expire_time < ?1 ORDER BY expire_time";

/// `--experiments`: what one cached statement costs when a bound LIMIT
/// makes SQLite re-prepare it on every use (rusqlite clears the bindings of
/// a statement returned to its cache, and SQLite >= 3.47 expires a
/// statement whose LIMIT parameter is cleared or rebound), against the
/// same statement without the parameter and with the query planner
/// stability guarantee (QPSG) on.
fn experiments() {
    let dir = common::scratch();
    let conn = create(dir.path());
    let vals = values(N, VALUE_LEN, 1);
    for (n, v) in vals.iter().enumerate() {
        set(&conn, &key(n), v);
    }
    const RUNS: usize = 100_000;
    let run = |conn: &Connection, sql: &str, limit: Option<i64>| {
        let start = Instant::now();
        for _ in 0..RUNS {
            let mut stmt = conn.prepare_cached(sql).expect("prepare");
            let rows: Vec<(i64, Option<String>)> = match limit {
                Some(l) => stmt
                    .query_map(params![now(), l], |r| Ok((r.get(0)?, r.get(1)?)))
                    .expect("query")
                    .collect::<rusqlite::Result<_>>()
                    .expect("rows"),
                None => stmt
                    .query_map(params![now()], |r| Ok((r.get(0)?, r.get(1)?)))
                    .expect("query")
                    .take(10)
                    .collect::<rusqlite::Result<_>>()
                    .expect("rows"),
            };
            assert!(rows.is_empty());
        }
        start.elapsed().as_secs_f64()
    };
    let secs = run(&conn, SELECT_EXPIRED, Some(10));
    common::plain(
        IMP,
        "X1",
        "select expired, LIMIT ?2 (as diskq)",
        RUNS,
        secs,
        String::new(),
    );
    let secs = run(&conn, SELECT_EXPIRED_UNLIMITED, None);
    common::plain(
        IMP,
        "X1",
        "select expired, no LIMIT, take(10)",
        RUNS,
        secs,
        String::new(),
    );
    conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)
        .expect("QPSG");
    conn.flush_prepared_statement_cache();
    let secs = run(&conn, SELECT_EXPIRED, Some(10));
    common::plain(
        IMP,
        "X1",
        "select expired, LIMIT ?2, QPSG on",
        RUNS,
        secs,
        String::new(),
    );

    // Batches of 100 pushes as W9, bare, under a savepoint (as diskq's
    // Deque::extend runs push_many inside transact), and under a savepoint
    // with temp_store = MEMORY (the sub-journal kept in memory).
    for (phase, savepoint, memory) in [
        ("push batches of 100", false, false),
        ("push batches of 100 in a SAVEPOINT", true, false),
        ("push batches of 100 in a SAVEPOINT, temp_store = MEMORY", true, true),
    ] {
        let dir = common::scratch();
        let conn = create(dir.path());
        if memory {
            conn.execute_batch("PRAGMA temp_store = MEMORY").expect("temp_store");
        }
        let vals = values(N, VALUE_LEN, 9);
        let start = Instant::now();
        for chunk in vals.chunks(BATCH) {
            conn.execute_batch("BEGIN IMMEDIATE").expect("begin");
            if savepoint {
                conn.execute_batch("SAVEPOINT diskq_op").expect("savepoint");
            }
            for v in chunk {
                push_in_txn(&conn, v);
            }
            if savepoint {
                conn.execute_batch("RELEASE diskq_op").expect("release");
            }
            conn.execute_batch("COMMIT").expect("commit");
        }
        common::plain(IMP, "X2", phase, N, start.elapsed().as_secs_f64(), String::new());
    }
}

fn main() {
    if std::env::args().any(|a| a == "--experiments") {
        experiments();
        return;
    }
    let only = common::selected();
    let run = |id: &str| common::wanted(&only, id);
    if run("W1") || run("W2") || run("W3") {
        let dir = common::scratch();
        let conn = create(dir.path());
        let vals = values(N, VALUE_LEN, 1);
        let keys: Vec<String> = (0..N).map(key).collect();
        let mut t = Timer::with_capacity(N);
        for (k, v) in keys.iter().zip(&vals) {
            t.op(|| set(&conn, k, v));
        }
        if run("W1") {
            report_timer(IMP, "W1", "set", &t, true);
        }
        if run("W2") {
            let mut t = Timer::default();
            for _ in 0..common::repeat() {
                t = Timer::with_capacity(N);
                for k in &keys {
                    assert!(t.op(|| get(&conn, k)).is_some());
                }
            }
            report_timer(IMP, "W2", "get hit", &t, true);
        }
        if run("W3") {
            let absent: Vec<String> = (N..2 * N).map(key).collect();
            let mut t = Timer::default();
            for _ in 0..common::repeat() {
                t = Timer::with_capacity(N);
                for k in &absent {
                    assert!(t.op(|| get(&conn, k)).is_none());
                }
            }
            report_timer(IMP, "W3", "get miss", &t, false);
        }
    }
    if run("W4") {
        let dir = common::scratch();
        let conn = create(dir.path());
        let vals = values(N, VALUE_LEN, 4);
        let mut t = Timer::with_capacity(N);
        for v in &vals {
            t.op(|| {
                conn.execute_batch("BEGIN IMMEDIATE").expect("begin");
                push_in_txn(&conn, v);
                conn.execute_batch("COMMIT").expect("commit");
            });
        }
        report_timer(IMP, "W4", "push_back", &t, false);
        let mut t = Timer::with_capacity(N);
        for _ in 0..N {
            assert!(t.op(|| pop(&conn)).is_some());
        }
        report_timer(IMP, "W4", "pop_front", &t, false);
    }
    if run("W7") {
        let dir = common::scratch();
        let conn = create(dir.path());
        let vals = values(N, VALUE_LEN, 7);
        let keys: Vec<String> = (0..N).map(key).collect();
        let mut t = Timer::with_capacity(N);
        for (k, v) in keys.iter().zip(&vals) {
            t.op(|| set(&conn, k, v));
        }
        report_timer(IMP, "W7", "insert", &t, false);
        // Pages of 100 keys by rowid, each its own statement, as an iterator
        // that does not hold a read transaction between pages.
        let start = Instant::now();
        let (mut cursor, mut seen) = (0i64, 0usize);
        loop {
            let mut stmt = conn.prepare_cached(KEYS_ASC).expect("prepare");
            let page: Vec<(i64, String)> = stmt
                .query_map(params![cursor, now()], |r| Ok((r.get(0)?, r.get(1)?)))
                .expect("query")
                .collect::<rusqlite::Result<_>>()
                .expect("rows");
            let Some(last) = page.last() else { break };
            cursor = last.0;
            seen += page.len();
        }
        assert_eq!(seen, N);
        common::plain(
            IMP,
            "W7",
            "iterate keys",
            N,
            start.elapsed().as_secs_f64(),
            String::new(),
        );
    }
    if run("W9") {
        let dir = common::scratch();
        let conn = create(dir.path());
        let vals = values(N, VALUE_LEN, 9);
        let start = Instant::now();
        for chunk in vals.chunks(BATCH) {
            conn.execute_batch("BEGIN IMMEDIATE").expect("begin");
            for v in chunk {
                push_in_txn(&conn, v);
            }
            conn.execute_batch("COMMIT").expect("commit");
        }
        common::plain(
            IMP,
            "W9",
            "push batches of 100",
            N,
            start.elapsed().as_secs_f64(),
            String::new(),
        );
        let start = Instant::now();
        let mut taken = 0;
        while taken < N {
            conn.execute_batch("BEGIN IMMEDIATE").expect("begin");
            let got: Vec<Vec<u8>> = conn
                .prepare_cached(PULL_FRONT_MANY)
                .expect("prepare")
                .query_map([BATCH as i64], |r| r.get(3))
                .expect("pull")
                .collect::<rusqlite::Result<_>>()
                .expect("rows");
            conn.execute_batch("COMMIT").expect("commit");
            assert!(!got.is_empty());
            taken += got.len();
        }
        common::plain(
            IMP,
            "W9",
            "pop batches of 100",
            N,
            start.elapsed().as_secs_f64(),
            String::new(),
        );
    }
    if run("W10") {
        let dir = common::scratch();
        drop(create(dir.path()));
        let barrier = Arc::new(Barrier::new(THREADS + 1));
        let vals = Arc::new(values(PER_THREAD, VALUE_LEN, 10));
        let path = dir.path().to_path_buf();
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let (barrier, vals, path) = (barrier.clone(), vals.clone(), path.clone());
                std::thread::spawn(move || {
                    let conn = connect(&path);
                    let keys: Vec<String> = (0..PER_THREAD).map(|i| key(t * PER_THREAD + i)).collect();
                    let mut timer = Timer::with_capacity(PER_THREAD);
                    barrier.wait();
                    for (k, v) in keys.iter().zip(vals.iter()) {
                        timer.op(|| set(&conn, k, v));
                    }
                    timer.lat_ns
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        let mut lat = Vec::new();
        for h in handles {
            lat.extend(h.join().expect("a writer thread"));
        }
        Report {
            imp: IMP,
            workload: "W10",
            phase: "8 threads set",
            ops: THREADS * PER_THREAD,
            seconds: start.elapsed().as_secs_f64(),
            lat_ns: Some(&lat),
            bytes: None,
            raw: false,
            extra: String::new(),
        }
        .print();
    }
}
