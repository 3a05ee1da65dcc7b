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

// ---- Queues (keys 0 < k < 999999999999999, or "prefix-000000000000000") ----

pub(crate) const QUEUE_LAST_KEY: &str =
    "SELECT key FROM Cache WHERE ?1 < key AND key < ?2 AND raw = 1 ORDER BY key DESC LIMIT 1";
pub(crate) const QUEUE_FIRST_KEY: &str =
    "SELECT key FROM Cache WHERE ?1 < key AND key < ?2 AND raw = 1 ORDER BY key ASC LIMIT 1";
/// Pull: 0 key, 1 mode, 2 filename, 3 value, 4 expire_time, 5 tag, 6 size.
pub(crate) const PULL_FRONT: &str = "DELETE FROM Cache WHERE rowid = (SELECT rowid FROM Cache \
     WHERE ?1 < key AND key < ?2 AND raw = 1 ORDER BY key ASC LIMIT 1) \
     RETURNING key, mode, filename, value, expire_time, tag, size";
pub(crate) const PULL_BACK: &str = "DELETE FROM Cache WHERE rowid = (SELECT rowid FROM Cache \
     WHERE ?1 < key AND key < ?2 AND raw = 1 ORDER BY key DESC LIMIT 1) \
     RETURNING key, mode, filename, value, expire_time, tag, size";
pub(crate) const PEEK_FRONT: &str = "SELECT key, mode, filename, value, expire_time, tag, size FROM Cache \
     WHERE ?1 < key AND key < ?2 AND raw = 1 AND (expire_time IS NULL OR expire_time > ?3) \
     ORDER BY key ASC LIMIT 1";
pub(crate) const PEEK_BACK: &str = "SELECT key, mode, filename, value, expire_time, tag, size FROM Cache \
     WHERE ?1 < key AND key < ?2 AND raw = 1 AND (expire_time IS NULL OR expire_time > ?3) \
     ORDER BY key DESC LIMIT 1";

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
