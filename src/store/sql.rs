//! Every SQL statement of diskq, named. Values are always bound parameters.

// ---- Schema (python-diskcache's tables, indexes and triggers) ----

pub(crate) const CREATE_SETTINGS: &str = "CREATE TABLE IF NOT EXISTS Settings ( key TEXT NOT NULL UNIQUE, value)";

pub(crate) const CREATE_CACHE: &str = "CREATE TABLE IF NOT EXISTS Cache (\
     rowid INTEGER PRIMARY KEY, key BLOB, raw INTEGER, store_time REAL, expire_time REAL, \
     access_time REAL, access_count INTEGER DEFAULT 0, tag BLOB, size INTEGER DEFAULT 0, \
     mode INTEGER DEFAULT 0, filename TEXT, value BLOB)";

pub(crate) const CREATE_INDEXES: &[&str] = &[
    "CREATE UNIQUE INDEX IF NOT EXISTS Cache_key_raw ON Cache(key, raw)",
    "CREATE INDEX IF NOT EXISTS Cache_expire_time ON Cache (expire_time)",
    // diskq's own (python-diskcache ignores it): finds whether another row
    // still names a value file before its removal; only file rows are in it.
    "CREATE INDEX IF NOT EXISTS Cache_filename ON Cache (filename) WHERE filename IS NOT NULL",
];

pub(crate) const CREATE_TRIGGERS: &[&str] = &[
    "CREATE TRIGGER IF NOT EXISTS Settings_count_insert AFTER INSERT ON Cache FOR EACH ROW BEGIN \
     UPDATE Settings SET value = value + 1 WHERE key = 'count'; END",
    "CREATE TRIGGER IF NOT EXISTS Settings_count_delete AFTER DELETE ON Cache FOR EACH ROW BEGIN \
     UPDATE Settings SET value = value - 1 WHERE key = 'count'; END",
    "CREATE TRIGGER IF NOT EXISTS Settings_size_insert AFTER INSERT ON Cache FOR EACH ROW BEGIN \
     UPDATE Settings SET value = value + NEW.size WHERE key = 'size'; END",
    "CREATE TRIGGER IF NOT EXISTS Settings_size_update AFTER UPDATE ON Cache FOR EACH ROW BEGIN \
     UPDATE Settings SET value = value + NEW.size - OLD.size WHERE key = 'size'; END",
    "CREATE TRIGGER IF NOT EXISTS Settings_size_delete AFTER DELETE ON Cache FOR EACH ROW BEGIN \
     UPDATE Settings SET value = value - OLD.size WHERE key = 'size'; END",
];

pub(crate) const CREATE_TAG_INDEX: &str = "CREATE INDEX IF NOT EXISTS Cache_tag_rowid ON Cache(tag, rowid)";
pub(crate) const DROP_TAG_INDEX: &str = "DROP INDEX IF EXISTS Cache_tag_rowid";

pub(crate) const SCHEMA_OBJECTS: &str = "SELECT name FROM sqlite_master WHERE type IN ('table', 'index', 'trigger')";
pub(crate) const SETTINGS_TABLE_EXISTS: &str = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'Settings'";
pub(crate) const SELECT_SETTINGS: &str = "SELECT key, value FROM Settings";
pub(crate) const UPSERT_SETTING: &str = "INSERT OR REPLACE INTO Settings VALUES (?1, ?2)";
pub(crate) const INSERT_METADATA: &str = "INSERT OR IGNORE INTO Settings VALUES (?1, 0)";
pub(crate) const SELECT_SETTING: &str = "SELECT value FROM Settings WHERE key = ?1";
pub(crate) const UPDATE_SETTING: &str = "UPDATE Settings SET value = ?2 WHERE key = ?1";
pub(crate) const INCREMENT_HITS: &str = "UPDATE Settings SET value = value + 1 WHERE key = 'hits'";
/// Adds ?2 to the counter row ?1 of the Settings table, creating it.
pub(crate) const ADD_TO_COUNTER: &str = "INSERT INTO Settings (key, value) VALUES (?1, ?2) \
     ON CONFLICT (key) DO UPDATE SET value = coalesce(value, 0) + excluded.value";
pub(crate) const INCREMENT_MISSES: &str = "UPDATE Settings SET value = value + 1 WHERE key = 'misses'";

// ---- Single items ----

/// Columns read to return a value: 0 rowid, 1 mode, 2 filename, 3 value, 4 expire_time, 5 tag, 6 size.
pub(crate) const SELECT_LIVE: &str = "SELECT rowid, mode, filename, value, expire_time, tag, size FROM Cache \
     WHERE key = ?1 AND raw = ?2 AND (expire_time IS NULL OR expire_time > ?3)";
pub(crate) const GET_TOUCH_ACCESS_TIME: &str = "UPDATE Cache SET access_time = ?3 \
     WHERE key = ?1 AND raw = ?2 AND (expire_time IS NULL OR expire_time > ?3) \
     RETURNING rowid, mode, filename, value, expire_time, tag, size";
pub(crate) const GET_COUNT_ACCESS: &str = "UPDATE Cache SET access_count = access_count + 1 \
     WHERE key = ?1 AND raw = ?2 AND (expire_time IS NULL OR expire_time > ?3) \
     RETURNING rowid, mode, filename, value, expire_time, tag, size";
pub(crate) const CONTAINS_LIVE: &str = "SELECT 1 FROM Cache \
     WHERE key = ?1 AND raw = ?2 AND (expire_time IS NULL OR expire_time > ?3)";
/// Any row, live or expired: 0 rowid, 1 filename, 2 expire_time, 3 mode, 4 value.
pub(crate) const SELECT_ANY: &str =
    "SELECT rowid, filename, expire_time, mode, value FROM Cache WHERE key = ?1 AND raw = ?2";
/// Any row, live or expired: 0 rowid, 1 filename, 2 expire_time (no value read).
pub(crate) const SELECT_SLOT: &str = "SELECT rowid, filename, expire_time FROM Cache WHERE key = ?1 AND raw = ?2";
pub(crate) const UPDATE_ROW: &str = "UPDATE Cache SET store_time = ?2, expire_time = ?3, access_time = ?2, \
     access_count = 0, tag = ?4, size = ?5, mode = ?6, filename = ?7, value = ?8 WHERE rowid = ?1";
pub(crate) const INSERT_ROW: &str = "INSERT INTO Cache(key, raw, store_time, expire_time, access_time, \
     access_count, tag, size, mode, filename, value) VALUES (?1, ?2, ?3, ?4, ?3, 0, ?5, ?6, ?7, ?8, ?9)";
pub(crate) const INCR_UPDATE: &str = "UPDATE Cache SET store_time = ?2, value = ?3 WHERE rowid = ?1";
pub(crate) const INCR_UPDATE_LRU: &str =
    "UPDATE Cache SET store_time = ?2, value = ?3, access_time = ?2 WHERE rowid = ?1";
pub(crate) const INCR_UPDATE_LFU: &str =
    "UPDATE Cache SET store_time = ?2, value = ?3, access_count = access_count + 1 WHERE rowid = ?1";
pub(crate) const DELETE_LIVE: &str = "DELETE FROM Cache \
     WHERE key = ?1 AND raw = ?2 AND (expire_time IS NULL OR expire_time > ?3) RETURNING filename";
pub(crate) const POP_LIVE: &str = "DELETE FROM Cache \
     WHERE key = ?1 AND raw = ?2 AND (expire_time IS NULL OR expire_time > ?3) \
     RETURNING rowid, mode, filename, value, expire_time, tag, size";
pub(crate) const TOUCH_LIVE: &str = "UPDATE Cache SET expire_time = ?4 \
     WHERE key = ?1 AND raw = ?2 AND (expire_time IS NULL OR expire_time > ?3)";
pub(crate) const RENAME_KEY: &str = "UPDATE Cache SET key = ?3 WHERE key = ?1 AND raw = ?2";
pub(crate) const DELETE_ROWID: &str = "DELETE FROM Cache WHERE rowid = ?1";

// ---- Queues ----
//
// A queue is the keys `?1 < key < ?2` (python-diskcache's range, see
// `queue::bounds`) of its own shape: an integer for the unprefixed queue, or
// text `<prefix>-` and exactly 15 digits. The shape keeps queue `jobs` from
// taking the keys of queue `jobs-2`, which sort inside its range. The range
// walks the (key, raw) index; the shape is a filter on the index's own
// columns, cheap enough for a COUNT over a long queue:
// - as many bytes as the lower bound ?1 (`octet_length`: `length` and
//   `substr` of text stop at a NUL, which a prefix may hold);
// - the last 15 bytes all digits: '1' and 15 digits read as an integer is at
//   least 10^15, '1' and anything else stops early (at most 14 digits read).
//   A GLOB of 15 `[0-9]` classes says the same at several times the cost,
//   and matches no blob where SQLite is built with LIKE_DOESNT_MATCH_BLOBS.

/// The shape condition of a queue key (see above); the range goes before it.
macro_rules! queue_shape {
    () => {
        "raw = 1 AND (typeof(key) = 'integer' OR (typeof(key) = 'text' AND octet_length(key) = octet_length(?1) \
         AND CAST('1' || substr(CAST(key AS BLOB), -15) AS INTEGER) >= 1000000000000000))"
    };
}

pub(crate) const QUEUE_LAST_KEY: &str = concat!(
    "SELECT key FROM Cache WHERE ?1 < key AND key < ?2 AND ",
    queue_shape!(),
    " ORDER BY key DESC LIMIT 1"
);
pub(crate) const QUEUE_FIRST_KEY: &str = concat!(
    "SELECT key FROM Cache WHERE ?1 < key AND key < ?2 AND ",
    queue_shape!(),
    " ORDER BY key ASC LIMIT 1"
);
/// Pull: 0 key, 1 mode, 2 filename, 3 value, 4 expire_time, 5 tag, 6 size.
pub(crate) const PULL_FRONT: &str = concat!(
    "DELETE FROM Cache WHERE rowid = (SELECT rowid FROM Cache WHERE ?1 < key AND key < ?2 AND ",
    queue_shape!(),
    " ORDER BY key ASC LIMIT 1) RETURNING key, mode, filename, value, expire_time, tag, size"
);
pub(crate) const PULL_BACK: &str = concat!(
    "DELETE FROM Cache WHERE rowid = (SELECT rowid FROM Cache WHERE ?1 < key AND key < ?2 AND ",
    queue_shape!(),
    " ORDER BY key DESC LIMIT 1) RETURNING key, mode, filename, value, expire_time, tag, size"
);
pub(crate) const PEEK_FRONT: &str = concat!(
    "SELECT key, mode, filename, value, expire_time, tag, size FROM Cache WHERE ?1 < key AND key < ?2 AND ",
    queue_shape!(),
    " AND (expire_time IS NULL OR expire_time > ?3) ORDER BY key ASC LIMIT 1"
);
pub(crate) const PEEK_BACK: &str = concat!(
    "SELECT key, mode, filename, value, expire_time, tag, size FROM Cache WHERE ?1 < key AND key < ?2 AND ",
    queue_shape!(),
    " AND (expire_time IS NULL OR expire_time > ?3) ORDER BY key DESC LIMIT 1"
);
// A prefixed queue's edge: the shape among the first 8 keys of the range
// (one statement, as above, in the usual case), else the scan of
// `store::shape`, which steps over the keys of other shapes (a queue
// `jobs-2` inside the range of `jobs`) with the probes and by-key
// statements below.

/// The first 8 keys of a queue range in one order, for the `*_NEAR` statements.
macro_rules! queue_near {
    ($columns:literal, $order:literal) => {
        concat!(
            "(SELECT ",
            $columns,
            " FROM Cache WHERE ?1 < key AND key < ?2 AND raw = 1 ORDER BY key ",
            $order,
            " LIMIT 8)"
        )
    };
}

pub(crate) const QUEUE_LAST_KEY_NEAR: &str = concat!(
    "SELECT key FROM ",
    queue_near!("key, raw", "DESC"),
    " WHERE ",
    queue_shape!(),
    " ORDER BY key DESC LIMIT 1"
);
pub(crate) const QUEUE_FIRST_KEY_NEAR: &str = concat!(
    "SELECT key FROM ",
    queue_near!("key, raw", "ASC"),
    " WHERE ",
    queue_shape!(),
    " ORDER BY key ASC LIMIT 1"
);
pub(crate) const PULL_FRONT_NEAR: &str = concat!(
    "DELETE FROM Cache WHERE rowid = (SELECT rowid FROM ",
    queue_near!("rowid, key, raw", "ASC"),
    " WHERE ",
    queue_shape!(),
    " ORDER BY key ASC LIMIT 1) RETURNING key, mode, filename, value, expire_time, tag, size"
);
pub(crate) const PULL_BACK_NEAR: &str = concat!(
    "DELETE FROM Cache WHERE rowid = (SELECT rowid FROM ",
    queue_near!("rowid, key, raw", "DESC"),
    " WHERE ",
    queue_shape!(),
    " ORDER BY key DESC LIMIT 1) RETURNING key, mode, filename, value, expire_time, tag, size"
);
pub(crate) const PEEK_FRONT_NEAR: &str = concat!(
    "SELECT key, mode, filename, value, expire_time, tag, size FROM Cache WHERE rowid = (SELECT rowid FROM ",
    queue_near!("rowid, key, raw, expire_time", "ASC"),
    " WHERE ",
    queue_shape!(),
    " AND (expire_time IS NULL OR expire_time > ?3) ORDER BY key ASC LIMIT 1)"
);
pub(crate) const PEEK_BACK_NEAR: &str = concat!(
    "SELECT key, mode, filename, value, expire_time, tag, size FROM Cache WHERE rowid = (SELECT rowid FROM ",
    queue_near!("rowid, key, raw, expire_time", "DESC"),
    " WHERE ",
    queue_shape!(),
    " AND (expire_time IS NULL OR expire_time > ?3) ORDER BY key DESC LIMIT 1)"
);
/// The first text key from ?1 (inclusive) below ?2, of any shape.
pub(crate) const QUEUE_PROBE_UP: &str =
    "SELECT key FROM Cache WHERE ?1 <= key AND key < ?2 AND raw = 1 ORDER BY key ASC LIMIT 1";
/// The last text key above ?1 and below ?2, of any shape.
pub(crate) const QUEUE_PROBE_DOWN: &str =
    "SELECT key FROM Cache WHERE ?1 < key AND key < ?2 AND raw = 1 ORDER BY key DESC LIMIT 1";
/// A queue row by its key, removed: same columns as PULL_FRONT.
pub(crate) const PULL_KEY: &str = "DELETE FROM Cache WHERE key = ?1 AND raw = 1 \
     RETURNING key, mode, filename, value, expire_time, tag, size";
/// A queue row by its key: same columns as PEEK_FRONT.
pub(crate) const PEEK_KEY: &str =
    "SELECT key, mode, filename, value, expire_time, tag, size FROM Cache WHERE key = ?1 AND raw = 1";
/// Live items of a queue: the rows of its range (counted in the (key, raw)
/// index alone) minus its expired rows (found through the expire_time index:
/// `+key` keeps the planner off the key index, which would read every row).
pub(crate) const QUEUE_LEN: &str = concat!(
    "SELECT (SELECT COUNT(*) FROM Cache WHERE ?1 < key AND key < ?2 AND ",
    queue_shape!(),
    ") - (SELECT COUNT(*) FROM Cache WHERE expire_time IS NOT NULL AND expire_time <= ?3 \
     AND ?1 < +key AND +key < ?2 AND ",
    queue_shape!(),
    ")"
);
/// Removes up to ?3 rows of a queue, live or expired, from the front.
pub(crate) const DELETE_QUEUE_BATCH: &str = concat!(
    "DELETE FROM Cache WHERE rowid IN (SELECT rowid FROM Cache WHERE ?1 < key AND key < ?2 AND ",
    queue_shape!(),
    " ORDER BY key LIMIT ?3) RETURNING filename"
);
/// Removes the items leased from queue ?1 (their rows sit at lease keys).
pub(crate) const DELETE_LEASED_ITEMS: &str = "DELETE FROM Cache WHERE raw = 1 AND key IN \
     (SELECT key FROM DiskqLease WHERE queue = ?1 AND deadline IS NOT NULL) RETURNING filename";
/// Removes the lease bookkeeping of queue ?1 (after its items are gone).
pub(crate) const DELETE_QUEUE_LEASES: &str = "DELETE FROM DiskqLease WHERE queue = ?1";

// ---- Iteration order (rowid = insertion order) ----

/// peekitem: 0 key, 1 raw, 2 mode, 3 filename, 4 value, 5 expire_time, 6 tag.
pub(crate) const FIRST_ITEM: &str = "SELECT key, raw, mode, filename, value, expire_time, tag, size FROM Cache \
     WHERE expire_time IS NULL OR expire_time > ?1 ORDER BY rowid ASC LIMIT 1";
pub(crate) const LAST_ITEM: &str = "SELECT key, raw, mode, filename, value, expire_time, tag, size FROM Cache \
     WHERE expire_time IS NULL OR expire_time > ?1 ORDER BY rowid DESC LIMIT 1";
pub(crate) const KEYS_ASC: &str = "SELECT rowid, key, raw FROM Cache WHERE ?1 < rowid AND rowid < ?2 \
     AND (expire_time IS NULL OR expire_time > ?3) ORDER BY rowid ASC LIMIT ?4";
pub(crate) const KEYS_DESC: &str = "SELECT rowid, key, raw FROM Cache WHERE ?1 < rowid AND rowid < ?2 \
     AND (expire_time IS NULL OR expire_time > ?3) ORDER BY rowid DESC LIMIT ?4";
pub(crate) const MAX_ROWID: &str = "SELECT COALESCE(MAX(rowid), 0) FROM Cache";

// ---- Bulk removal, each a batch in its own transaction ----

/// The expired rows a write culls: 0 rowid, 1 filename.
pub(crate) const SELECT_EXPIRED: &str = "SELECT rowid, filename FROM Cache \
     WHERE expire_time IS NOT NULL AND expire_time < ?1 ORDER BY expire_time LIMIT ?2";
pub(crate) const DELETE_EXPIRED_BATCH: &str = "DELETE FROM Cache WHERE rowid IN (SELECT rowid FROM Cache \
     WHERE expire_time IS NOT NULL AND expire_time < ?1 ORDER BY expire_time LIMIT ?2) RETURNING filename";
pub(crate) const DELETE_TAG_BATCH: &str = "DELETE FROM Cache WHERE rowid IN (SELECT rowid FROM Cache \
     WHERE tag = ?1 ORDER BY rowid LIMIT ?2) RETURNING filename";
pub(crate) const DELETE_ALL_BATCH: &str =
    "DELETE FROM Cache WHERE rowid IN (SELECT rowid FROM Cache ORDER BY rowid LIMIT ?1) RETURNING filename";
pub(crate) const CULL_STORE_TIME: &str = "DELETE FROM Cache WHERE rowid IN (SELECT rowid FROM Cache \
     ORDER BY store_time LIMIT ?1) RETURNING filename";
pub(crate) const CULL_ACCESS_TIME: &str = "DELETE FROM Cache WHERE rowid IN (SELECT rowid FROM Cache \
     ORDER BY access_time LIMIT ?1) RETURNING filename";
pub(crate) const CULL_ACCESS_COUNT: &str = "DELETE FROM Cache WHERE rowid IN (SELECT rowid FROM Cache \
     ORDER BY access_count LIMIT ?1) RETURNING filename";
pub(crate) const POLICY_INDEX_STORE_TIME: &str = "CREATE INDEX IF NOT EXISTS Cache_store_time ON Cache (store_time)";
pub(crate) const POLICY_INDEX_ACCESS_TIME: &str = "CREATE INDEX IF NOT EXISTS Cache_access_time ON Cache (access_time)";
pub(crate) const POLICY_INDEX_ACCESS_COUNT: &str =
    "CREATE INDEX IF NOT EXISTS Cache_access_count ON Cache (access_count)";

// ---- Sizes and counts ----

/// Bytes in the database file plus bytes in value files (python-diskcache's volume).
/// (A plain `PRAGMA page_count` statement is re-prepared on every run; the
/// table-valued pragma functions are not.)
/// Two columns, added in Rust: the size total may be a REAL after an
/// overflow (a forged row's size), and must not fail a write.
pub(crate) const VOLUME: &str = "SELECT p.page_count * s.page_size, (SELECT value FROM Settings WHERE key = 'size') \
     FROM pragma_page_count() AS p, pragma_page_size() AS s";
/// Live items: the count kept by the triggers minus the expired rows (an index range).
pub(crate) const LEN_LIVE: &str = "SELECT (SELECT value FROM Settings WHERE key = 'count') - \
     (SELECT COUNT(*) FROM Cache WHERE expire_time IS NOT NULL AND expire_time <= ?1)";
pub(crate) const COUNT_ROWS: &str = "SELECT COUNT(key) FROM Cache";
/// Rows naming a file: 0 rowid, 1 key, 2 raw, 3 size, 4 filename.
pub(crate) const FILE_ROWS: &str = "SELECT rowid, key, raw, size, filename FROM Cache WHERE typeof(filename) = 'text'";
/// Rows with a column of a type no writer stores: 0 rowid, 1 key, 2 raw,
/// then the types of 3 mode, 4 filename, 5 expire_time.
pub(crate) const BAD_COLUMN_ROWS: &str = "SELECT rowid, key, raw, typeof(mode), typeof(filename), \
     typeof(expire_time) FROM Cache WHERE typeof(mode) NOT IN ('integer', 'null') \
     OR typeof(filename) NOT IN ('text', 'null') OR typeof(expire_time) NOT IN ('real', 'integer', 'null')";
/// Rows holding their value inline whose size is not 0 (every writer
/// stores 0): 0 rowid, 1 key, 2 raw, 3 size.
pub(crate) const BAD_INLINE_SIZES: &str = "SELECT rowid, key, raw, size FROM Cache \
     WHERE filename IS NULL AND (typeof(size) != 'integer' OR size != 0)";
/// The sizes to add up (summed in Rust: SQLite's SUM fails on overflow).
pub(crate) const NONZERO_SIZES: &str = "SELECT size FROM Cache WHERE typeof(size) = 'integer' AND size != 0";
pub(crate) const UPDATE_SIZE: &str = "UPDATE Cache SET size = ?2 WHERE rowid = ?1";
/// Whether a row names a value file (through `Cache_filename`).
pub(crate) const FILE_IS_NAMED: &str = "SELECT 1 FROM Cache WHERE filename = ?1";
pub(crate) const INTEGRITY_CHECK: &str = "PRAGMA integrity_check";

// ---- Pages of rows with their values ----

/// Items in insertion order: 0 rowid, 1 key, 2 raw, 3 mode, 4 filename, 5 value, 6 expire_time, 7 tag.
pub(crate) const ITEMS_ASC: &str = "SELECT rowid, key, raw, mode, filename, value, expire_time, tag, size FROM Cache \
     WHERE ?1 < rowid AND rowid < ?2 AND (expire_time IS NULL OR expire_time > ?3) ORDER BY rowid ASC LIMIT ?4";
pub(crate) const ITEMS_DESC: &str = "SELECT rowid, key, raw, mode, filename, value, expire_time, tag, size FROM Cache \
     WHERE ?1 < rowid AND rowid < ?2 AND (expire_time IS NULL OR expire_time > ?3) ORDER BY rowid DESC LIMIT ?4";
/// Integer-keyed queue items in key order, same columns (the key is its own cursor).
pub(crate) const QUEUE_ASC: &str = "SELECT key, key, raw, mode, filename, value, expire_time, tag, size FROM Cache \
     WHERE ?1 < key AND key < ?2 AND raw = 1 AND typeof(key) = 'integer' \
     AND (expire_time IS NULL OR expire_time > ?3) ORDER BY key ASC LIMIT ?4";
pub(crate) const QUEUE_DESC: &str = "SELECT key, key, raw, mode, filename, value, expire_time, tag, size FROM Cache \
     WHERE ?1 < key AND key < ?2 AND raw = 1 AND typeof(key) = 'integer' \
     AND (expire_time IS NULL OR expire_time > ?3) ORDER BY key DESC LIMIT ?4";
/// The live queue item at a position: same columns.
pub(crate) const QUEUE_NTH: &str = "SELECT key, key, raw, mode, filename, value, expire_time, tag, size FROM Cache \
     WHERE ?1 < key AND key < ?2 AND raw = 1 AND typeof(key) = 'integer' \
     AND (expire_time IS NULL OR expire_time > ?3) ORDER BY key ASC LIMIT 1 OFFSET ?4";
/// Changes whenever another connection commits.
pub(crate) const DATA_VERSION: &str = "PRAGMA data_version";

#[cfg(test)]
mod tests {
    use super::*;

    /// The query plan of `statement`, one line per step.
    fn plan(conn: &rusqlite::Connection, statement: &str) -> String {
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {statement}")).unwrap();
        let values: [&dyn rusqlite::ToSql; 4] = [&"q-000000000000000", &"q-999999999999999", &1.0, &10];
        let params = &values[..stmt.parameter_count()];
        let rows = stmt.query_map(params, |r| r.get::<_, String>(3)).unwrap();
        rows.collect::<rusqlite::Result<Vec<_>>>().unwrap().join("\n")
    }

    #[test]
    fn queue_statements_walk_the_key_index() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        for statement in [CREATE_SETTINGS, CREATE_CACHE].iter().chain(CREATE_INDEXES) {
            conn.execute_batch(statement).unwrap();
        }
        conn.execute_batch(
            "CREATE TABLE DiskqLease (key TEXT PRIMARY KEY, queue TEXT NOT NULL, deadline REAL, \
             deliveries INTEGER NOT NULL, token INTEGER NOT NULL, item INTEGER NOT NULL)",
        )
        .unwrap();
        for statement in [
            QUEUE_LAST_KEY,
            QUEUE_FIRST_KEY,
            PULL_FRONT,
            PULL_BACK,
            PEEK_FRONT,
            PEEK_BACK,
            DELETE_QUEUE_BATCH,
            QUEUE_LAST_KEY_NEAR,
            QUEUE_FIRST_KEY_NEAR,
            PULL_FRONT_NEAR,
            PULL_BACK_NEAR,
            PEEK_FRONT_NEAR,
            PEEK_BACK_NEAR,
            QUEUE_PROBE_DOWN,
        ] {
            let plan = plan(&conn, statement);
            assert!(
                plan.contains("USING INDEX Cache_key_raw (key>? AND key<?)")
                    || plan.contains("USING COVERING INDEX Cache_key_raw (key>? AND key<?)"),
                "{statement}\n{plan}"
            );
            assert!(!plan.contains("SCAN Cache"), "{statement}\n{plan}");
        }
        // The count: the range in the index alone, the expired rows by expire_time.
        let len = plan(&conn, QUEUE_LEN);
        assert!(
            len.contains("USING COVERING INDEX Cache_key_raw (key>? AND key<?)"),
            "{len}"
        );
        assert!(
            len.contains("USING INDEX Cache_expire_time (expire_time>? AND expire_time<?)"),
            "{len}"
        );
        assert!(!len.contains("SCAN Cache"), "{len}");
        let up = plan(&conn, QUEUE_PROBE_UP);
        assert!(
            up.contains("USING COVERING INDEX Cache_key_raw (key>? AND key<?)"),
            "{up}"
        );
        for statement in [PULL_KEY, PEEK_KEY] {
            let plan = plan(&conn, statement);
            assert!(plan.contains("Cache_key_raw (key=? AND raw=?)"), "{statement}\n{plan}");
        }
        let leased = plan(&conn, DELETE_LEASED_ITEMS);
        assert!(leased.contains("Cache_key_raw"), "{leased}");
    }
}
