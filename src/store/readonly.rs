//! Opening a directory for reading only, so that it stays byte for byte as
//! it was: no Settings row, no lock or reserve file, no schema, and no
//! write-ahead log left behind.
//!
//! Why the connections are not simply `SQLITE_OPEN_READONLY`: in WAL mode a
//! reader takes part in the log's shared-memory protocol, so SQLite needs
//! `cache.db-wal` and `cache.db-shm`. After a clean close (python-diskcache
//! and diskq both leave only `cache.db`) a read-only connection creates the
//! two files, when the directory is writable, and cannot remove them when it
//! closes: removing them needs the exclusive lock on `cache.db` that only a
//! writable file handle can take. `immutable=1` would avoid the files but
//! skips all locking, so it would misread a directory that another process
//! writes. Instead each connection opens the file for reading and writing
//! with `PRAGMA query_only` set first, which makes SQLite refuse every
//! statement that would change the database: the last such connection to
//! close takes the exclusive lock and removes the log and shared-memory
//! files it made (the log is empty, so nothing is copied into `cache.db`).
//!
//! When `cache.db-wal` was there already (another process has the
//! directory open, or one crashed and left its log), the connections are
//! told not to checkpoint on close (`SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE`), so
//! they never copy a log's frames into `cache.db` or remove files that were
//! there before. SQLite still writes to `cache.db-shm` while reading (the
//! read marks of the shared-memory index): that file is memory shared by the
//! processes, not data.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::pool;
use crate::error::Result;

/// Forbids every change to the database through the connection.
const QUERY_ONLY: &str = "PRAGMA query_only = 1";

/// The name SQLite gives the write-ahead log of `db_path`.
pub(crate) fn wal_path(db_path: &Path) -> std::path::PathBuf {
    let mut name = db_path.as_os_str().to_owned();
    name.push("-wal");
    name.into()
}

/// The files SQLite opens beside the database (as in `pool::connect`).
const COMPANION_SUFFIXES: [&str; 3] = ["-wal", "-shm", "-journal"];

/// Opens a connection that reads `db_path` and never changes it: like
/// `pool::connect` (the same refusal of links and special files, statement
/// cache and plans), but the file is never created, and with `keep_log`
/// closing the connection never checkpoints or removes the write-ahead log.
pub(crate) fn connect(db_path: &Path, timeout: Duration, keep_log: bool) -> Result<Connection> {
    crate::disk::regular_or_absent(db_path)?;
    for suffix in COMPANION_SUFFIXES {
        let mut name = db_path.as_os_str().to_owned();
        name.push(suffix);
        crate::disk::regular_or_absent(Path::new(&name))?;
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_NOFOLLOW;
    let conn = Connection::open_with_flags(db_path, flags).map_err(|e| pool::open_error(db_path, e))?;
    // Before any statement reads the database (and so opens its log).
    pool::run_pragma(&conn, QUERY_ONLY)?;
    if keep_log {
        conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)?;
    }
    conn.busy_timeout(timeout)?;
    conn.set_prepared_statement_cache_capacity(pool::STATEMENT_CACHE);
    conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    pool::run_pragma(&conn, "PRAGMA temp_store = MEMORY")?;
    Ok(conn)
}
