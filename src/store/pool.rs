//! A small pool of SQLite connections to one `cache.db`.
//!
//! Connections are `!Sync`, so each operation takes one from the pool, uses
//! it alone and gives it back. At most [`MAX_IDLE`] idle connections are kept,
//! so a burst of threads does not leave file handles open for ever. A pool
//! inherited through `fork` is never used by the child: its connections are
//! leaked (not closed, which would disturb the parent's locks) and new ones
//! are opened.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::writers::{self, Writers};
use crate::error::{Error, Result};

/// Idle connections kept for reuse.
const MAX_IDLE: usize = 16;
/// Prepared statements cached per connection (diskq has fewer than this).
pub(crate) const STATEMENT_CACHE: usize = 96;

#[derive(Debug)]
pub(crate) struct Pool {
    db_path: PathBuf,
    timeout: Duration,
    pragmas: Vec<String>,
    idle: Mutex<Idle>,
    writers: Arc<Writers>,
    /// Connections only read (`readonly::connect`); the flag is its `keep_log`.
    read_only: Option<bool>,
}

#[derive(Debug)]
struct Idle {
    pid: u32,
    conns: Vec<Connection>,
}

impl Pool {
    pub(crate) fn new(db_path: PathBuf, timeout: Duration, pragmas: Vec<String>, writers: Arc<Writers>) -> Pool {
        Pool {
            db_path,
            timeout,
            pragmas,
            writers,
            idle: Mutex::new(Idle {
                pid: std::process::id(),
                conns: Vec::new(),
            }),
            read_only: None,
        }
    }

    /// This pool, opening its connections with `readonly::connect`.
    pub(crate) fn read_only(mut self, keep_log: bool) -> Pool {
        self.read_only = Some(keep_log);
        self
    }

    /// An idle connection, or a new one.
    pub(crate) fn take(&self) -> Result<Connection> {
        let reused = {
            let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
            let pid = std::process::id();
            if idle.pid != pid {
                // Forked: the parent's connections must not be used or closed here.
                for conn in idle.conns.drain(..) {
                    std::mem::forget(conn);
                }
                idle.pid = pid;
            }
            idle.conns.pop()
        };
        match reused {
            Some(conn) => Ok(conn),
            None => self.open(),
        }
    }

    /// Returns a connection that is outside any transaction.
    pub(crate) fn give(&self, conn: Connection) {
        if !conn.is_autocommit() {
            // A transaction could not be ended: closing rolls it back.
            return;
        }
        // No process check here: after a fork, `take` runs first in the child
        // and drops the parent's connections, so what comes back is the child's.
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.conns.len() < MAX_IDLE {
            idle.conns.push(conn);
        }
    }

    fn open(&self) -> Result<Connection> {
        let mut conn = match self.read_only {
            Some(keep_log) => super::readonly::connect(&self.db_path, self.timeout, keep_log)?,
            None => connect(&self.db_path, self.timeout)?,
        };
        for pragma in &self.pragmas {
            run_pragma(&conn, pragma)?;
        }
        if self.read_only.is_none() {
            writers::install_hook(&mut conn, self.writers.signal())?;
        }
        Ok(conn)
    }
}

/// Checkpoints the whole write-ahead log and truncates it to zero bytes.
pub(crate) const CHECKPOINT_TRUNCATE: &str = "PRAGMA wal_checkpoint(TRUNCATE)";
/// The most the write-ahead log keeps of its file after a checkpoint, in
/// bytes. SQLite reuses the log from its start after each checkpoint that
/// caught up with it (see `writers`: every 8,192 pages, 32 MiB, under a
/// steady stream of writes) and would keep the file at the largest
/// size it ever reached, which long readers or a burst can make much
/// larger; with this limit the file shrinks back to 64 MiB (the
/// writers' hard bound on the log) instead. Not smaller: a log cut shorter
/// than its usual size grows again on every cycle, and appending to a file
/// costs more than overwriting it (1 MiB made every set ~8 µs slower, W5
/// a third slower). A full disk truncates the log to nothing (`reserve`).
const JOURNAL_SIZE_LIMIT: &str = "PRAGMA journal_size_limit = 67108864";

/// Turns off the checkpoint SQLite runs inside the commit that takes the
/// log past 1,000 pages.
const NO_AUTOCHECKPOINT: &str = "PRAGMA wal_autocheckpoint = 0";

/// The files SQLite opens beside the database, by the suffix it adds to its name.
const COMPANION_SUFFIXES: [&str; 3] = ["-wal", "-shm", "-journal"];

/// Opens a connection with the busy handler and statement cache set, no
/// settings' pragmas.
///
/// The database and the files SQLite opens beside it must each be a regular
/// file or absent: a link (which would send reads and writes to a database
/// anywhere on the system) or a FIFO or device (where SQLite's first read
/// blocks for ever) is refused with [`Error::Corrupt`] before SQLite opens
/// anything, and SQLite is asked not to follow a link put there later.
pub(crate) fn connect(db_path: &Path, timeout: Duration) -> Result<Connection> {
    crate::disk::regular_or_absent(db_path)?;
    for suffix in COMPANION_SUFFIXES {
        let mut name = db_path.as_os_str().to_owned();
        name.push(suffix);
        crate::disk::regular_or_absent(Path::new(&name))?;
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_NOFOLLOW;
    let mut conn = Connection::open_with_flags(db_path, flags).map_err(|e| open_error(db_path, e))?;
    writers::set_busy_handler(&mut conn, timeout)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    // Keep each cached statement's plan: without this, SQLite re-prepares a
    // statement with a bound `LIMIT ?` every time its bindings are reset,
    // which rusqlite does on every return to the cache (3.6 µs of a set).
    conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    // Savepoint sub-journals and temporary b-trees in memory instead of
    // spilled temp files (a batch inside a transact block wrote ~70% of its
    // time there). Durability is unaffected: recovery goes through the WAL.
    run_pragma(&conn, "PRAGMA temp_store = MEMORY")?;
    run_pragma(&conn, JOURNAL_SIZE_LIMIT)?;
    // No commit runs a checkpoint: the checkpointer thread does (see
    // `writers`). python-diskcache's connections keep their own setting.
    run_pragma(&conn, NO_AUTOCHECKPOINT)?;
    Ok(conn)
}

/// Runs a statement that returns no rows (`BEGIN IMMEDIATE`, `COMMIT`)
/// through the connection's statement cache: prepared once, not parsed and
/// finalized on every transaction as `execute_batch` does.
pub(crate) fn run_cached(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(drop)
}

/// Runs a PRAGMA that may return a row (journal_mode does).
pub(crate) fn run_pragma(conn: &Connection, pragma: &str) -> Result<()> {
    let mut stmt = conn.prepare(pragma)?;
    let mut rows = stmt.query([])?;
    while rows.next()?.is_some() {}
    Ok(())
}

/// Maps "file is not a database" to [`Error::NotADatabase`].
pub(crate) fn open_error(db_path: &Path, err: rusqlite::Error) -> Error {
    if let rusqlite::Error::SqliteFailure(e, _) = &err {
        if e.code == rusqlite::ErrorCode::NotADatabase {
            return Error::NotADatabase(db_path.to_path_buf());
        }
        if e.code == rusqlite::ErrorCode::CannotOpen {
            return Error::io(db_path, std::io::Error::other(err.to_string()));
        }
    }
    Error::from(err)
}
