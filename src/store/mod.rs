//! The only place that speaks SQL: schema, statements, connections,
//! transactions.

mod counters;
mod dead;
mod doorbell;
mod group;
mod jobs;
mod lease;
#[cfg(target_os = "linux")]
mod line;
mod ops;
#[cfg(feature = "postgres")]
mod pg;
mod pool;
mod readonly;
mod reserve;
mod session;
mod shape;
pub(crate) mod sql;
mod txn;
mod wake;
mod writers;

use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension};

pub(crate) use counters::{Counter, CounterRow};
pub(crate) use dead::DeadRecord;
pub(crate) use jobs::{JOB_KEY_PREFIX, JobRow, NewJob, job_key};
pub(crate) use lease::LeaseRow;
pub(crate) use ops::{Batch, FileRow, NewRow, PageKind, PageRow, QUEUE_BOUND, ValueRow};
pub(crate) use session::Session;
use txn::LiteSession;
#[cfg(feature = "tokio")]
pub(crate) use wake::{LiteWatcher, TaskWake};
pub(crate) use wake::{Notifier, WAKE_POLL, Watcher};

use crate::codec::Scalar;
use crate::disk::Disk;
use crate::error::{Error, Result};
use crate::settings::{EvictionPolicy, Overrides, Settings};
use pool::Pool;
use writers::Writers;

/// The database file's name, as python-diskcache names it.
pub(crate) const DB_NAME: &str = "cache.db";
/// The lock file that serializes schema creation. Its name contains
/// `cache.db` so that python-diskcache's `check` does not take it for an
/// unknown value file.
pub(crate) const LOCK_NAME: &str = "cache.db.lock";

static NEXT_ID: AtomicUsize = AtomicUsize::new(1);

/// One open `cache.db`: its settings, connection pool and value files.
#[derive(Debug)]
pub(crate) struct Store {
    id: usize,
    pub(crate) dir: PathBuf,
    pub(crate) settings: Settings,
    pub(crate) statistics: AtomicBool,
    pub(crate) disk: Disk,
    timeout: Duration,
    wake_poll: Duration,
    /// Opened with [`StoreOptions::read_only`]: every write is refused.
    read_only: bool,
    backend: Backend,
}

/// What holds the rows: the backend's connections and its bookkeeping.
#[derive(Debug)]
enum Backend {
    /// `cache.db` in the directory (and value files beside it).
    Sqlite(Lite),
    /// Tables in a PostgreSQL schema.
    #[cfg(feature = "postgres")]
    Postgres(Box<pg::Pg>),
}

/// The directory backend's state.
#[derive(Debug)]
pub(crate) struct Lite {
    pool: Pool,
    writers: Arc<Writers>,
    notifier: Arc<Notifier>,
    /// This process's threads writing through this store (group commit).
    group: group::Group,
    /// A freeing operation met a full disk: later ones truncate the log and
    /// make the reserve again, until that has worked.
    recovering: AtomicBool,
}

/// How to open a store, beyond the persisted settings.
#[derive(Debug, Clone)]
pub(crate) struct StoreOptions {
    pub timeout: Duration,
    pub sync_files: bool,
    /// The longest pause of a waiter between two looks at the database.
    pub wake_poll: Duration,
    /// Open an existing cache only to read it (see `readonly`): nothing in
    /// the directory is created or changed, and writes are refused.
    pub read_only: bool,
}

impl Store {
    /// Opens (creating if needed) the cache directory `dir`.
    pub(crate) fn open(dir: &Path, overrides: &Overrides, opts: &StoreOptions) -> Result<Store> {
        if let Some(location) = postgres_location(dir) {
            return Store::open_postgres(location, overrides, opts);
        }
        if opts.read_only {
            return Store::open_read_only(dir, overrides, opts);
        }
        prepare_directory(dir)?;
        // An absolute path keeps new connections and value files right if
        // the process changes its working directory later.
        let dir = &fs::canonicalize(dir).map_err(|e| Error::io(dir, e))?;
        let db_path = dir.join(DB_NAME);
        if fs::symlink_metadata(&db_path).is_ok_and(|m| m.is_dir()) {
            return Err(Error::NotADatabase(db_path));
        }
        let mut conn = pool::connect(&db_path, opts.timeout)?;
        let mut settings = read_and_resolve(&conn, &db_path, overrides)?;
        if !schema_is_current(&conn, &settings)? {
            let _lock = crate::disk::lock_file(&dir.join(LOCK_NAME), opts.timeout, false)?;
            // Another process may have created the schema while we waited.
            settings = read_and_resolve(&conn, &db_path, overrides)?;
            if !schema_is_current(&conn, &settings)? {
                initialize(&conn, &settings)?;
            }
        }
        let pragmas = settings.connection_pragmas();
        for pragma in &pragmas {
            pool::run_pragma(&conn, pragma)?;
        }
        let writers = Writers::of(&db_path, opts.timeout);
        writers::install_hook(&mut conn, writers.signal())?;
        let pool = Pool::new(db_path, opts.timeout, pragmas, writers.clone());
        pool.give(conn);
        // Best effort: a read-only or full directory opens without one.
        reserve::make(dir);
        Ok(Store::new(dir, settings, pool, writers, opts))
    }

    fn new(dir: &Path, settings: Settings, pool: Pool, writers: Arc<Writers>, opts: &StoreOptions) -> Store {
        Store {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            dir: dir.to_path_buf(),
            statistics: AtomicBool::new(settings.statistics),
            settings,
            disk: Disk::new(dir.to_path_buf(), opts.sync_files, opts.timeout),
            timeout: opts.timeout,
            wake_poll: opts.wake_poll,
            read_only: opts.read_only,
            backend: Backend::Sqlite(Lite {
                pool,
                writers,
                notifier: Notifier::of(dir),
                group: group::Group::default(),
                recovering: AtomicBool::new(false),
            }),
        }
    }

    #[cfg(feature = "postgres")]
    fn open_postgres(location: &str, overrides: &Overrides, opts: &StoreOptions) -> Result<Store> {
        let opened = if opts.read_only {
            // The server refuses every write of these connections, so a
            // read-only store changes nothing there, not even the schema
            // the open would otherwise make.
            pg::open(&read_only_location(location), overrides, opts.timeout, opts.wake_poll).map_err(|e| {
                // read_only_sql_transaction: the open wanted to make the tables.
                if matches!(&e, Error::Postgres { code: Some(code), .. } if code == "25006") {
                    Error::InvalidUse(format!(
                        "{} has no diskq tables (or older ones): a read-only open makes nothing",
                        redacted(location)
                    ))
                } else {
                    e
                }
            })?
        } else {
            pg::open(location, overrides, opts.timeout, opts.wake_poll)?
        };
        // A read-only store shows the location it was given, not the
        // option added to it (and never a password).
        let shown = PathBuf::from(if opts.read_only {
            redacted(location)
        } else {
            opened.shown
        });
        Ok(Store {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            statistics: AtomicBool::new(opened.settings.statistics),
            settings: opened.settings,
            // Never used: no PostgreSQL row names a file.
            disk: Disk::new(shown.clone(), false, opts.timeout),
            dir: shown,
            timeout: opts.timeout,
            wake_poll: opts.wake_poll,
            read_only: opts.read_only,
            backend: Backend::Postgres(Box::new(opened.pg)),
        })
    }

    #[cfg(not(feature = "postgres"))]
    fn open_postgres(location: &str, _overrides: &Overrides, _opts: &StoreOptions) -> Result<Store> {
        Err(Error::Unsupported {
            backend: "this build of diskq",
            what: format!("PostgreSQL locations ({location}): enable the cargo feature `postgres`"),
        })
    }

    /// True for a PostgreSQL store (no directory, no value files).
    pub(crate) fn is_postgres(&self) -> bool {
        !matches!(self.backend, Backend::Sqlite(_))
    }

    /// [`Error::Unsupported`] for an operation only the directory backend has.
    pub(crate) fn directory_only(&self, what: &str) -> Result<()> {
        if self.is_postgres() {
            return Err(Error::Unsupported {
                backend: "PostgreSQL",
                what: what.into(),
            });
        }
        Ok(())
    }

    /// Opens the existing cache in `dir` for reading: no directory, file,
    /// schema or Settings row is made, and the settings are the stored ones.
    fn open_read_only(dir: &Path, overrides: &Overrides, opts: &StoreOptions) -> Result<Store> {
        if overrides.any() {
            return Err(Error::InvalidUse(
                "a read-only open cannot change settings: give none but timeout and clock".into(),
            ));
        }
        match fs::metadata(dir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return Err(Error::NotADirectory(dir.to_path_buf())),
            Err(e) => return Err(Error::io(dir, e)),
        }
        let dir = &fs::canonicalize(dir).map_err(|e| Error::io(dir, e))?;
        let db_path = dir.join(DB_NAME);
        match fs::symlink_metadata(&db_path) {
            Ok(m) if m.is_dir() => return Err(Error::NotADatabase(db_path)),
            Ok(_) => {}
            Err(e) => return Err(Error::io(&db_path, e)),
        }
        // A log that is there already belongs to another process (or to
        // one that crashed): leave it as found.
        let keep_log = fs::symlink_metadata(readonly::wal_path(&db_path)).is_ok();
        let conn = readonly::connect(&db_path, opts.timeout, keep_log)?;
        let settings = read_and_resolve(&conn, &db_path, overrides)?;
        let names = schema_names(&conn)?;
        if !["Settings", "Cache"].iter().all(|n| names.contains(*n)) {
            return Err(Error::InvalidUse(format!(
                "{} has no cache tables yet, and a read-only open does not create them",
                db_path.display()
            )));
        }
        // The journal mode is the file's; changing it would write.
        let pragmas: Vec<String> = settings
            .connection_pragmas()
            .into_iter()
            .filter(|p| !p.starts_with("PRAGMA journal_mode"))
            .collect();
        for pragma in &pragmas {
            pool::run_pragma(&conn, pragma)?;
        }
        let writers = Writers::of(&db_path, opts.timeout);
        let pool = Pool::new(db_path, opts.timeout, pragmas, writers.clone()).read_only(keep_log);
        pool.give(conn);
        Ok(Store::new(dir, settings, pool, writers, opts))
    }

    /// True when opened only to read: every write fails with [`Error::InvalidUse`].
    pub(crate) fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// [`Error::InvalidUse`] when opened read-only, before a write touches anything.
    pub(crate) fn writable(&self) -> Result<()> {
        if self.read_only {
            return Err(Error::InvalidUse(format!(
                "the cache in {} was opened read-only: writes are refused",
                self.dir.display()
            )));
        }
        Ok(())
    }

    /// An exclusive lock on the directory's lock file (see `Disk::writer_guard`).
    pub(crate) fn lock_exclusive(&self) -> Result<File> {
        self.writable()?;
        self.directory_only("check (it compares the rows with value files, which PostgreSQL has none of)")?;
        crate::disk::lock_file(&self.dir.join(LOCK_NAME), self.timeout, false)
    }

    /// [`Store::write`] for an operation that frees space (delete, pop,
    /// clear, expire, evict, cull), so that it works on a full disk.
    ///
    /// In WAL mode even a delete must append to the write-ahead log. When
    /// the operation fails with `SQLITE_FULL` (and no `transact` block is
    /// open on this thread), the directory's reserve file is deleted, the
    /// log checkpointed and truncated (which may free much more, when the
    /// database has room to absorb it), and the operation runs once more.
    /// After that, each freeing operation of this handle tries again to
    /// truncate the log (the value files it removed made room for that),
    /// and once that works, makes the reserve again.
    pub(crate) fn write_freeing<T>(&self, mut f: impl FnMut(&mut Session) -> Result<T>) -> Result<T> {
        #[allow(
            clippy::infallible_destructuring_match,
            reason = "the postgres feature adds a backend"
        )]
        let lite = match &self.backend {
            Backend::Sqlite(lite) => lite,
            // A server's full disk is the server's to handle.
            #[cfg(feature = "postgres")]
            Backend::Postgres(_) => return self.write(false, None, f),
        };
        let first = self.write(false, None, &mut f);
        let result = match first {
            Err(e) if is_disk_full(&e) && txn::active(self.id).is_none() => {
                lite.recovering.store(true, Ordering::Relaxed);
                reserve::release(&self.dir);
                self.truncate_wal(lite);
                // Still full: the first error is the one to report.
                self.write(false, None, &mut f).map_err(|_| e)
            }
            other => other,
        };
        if result.is_ok()
            && lite.recovering.load(Ordering::Relaxed)
            && self.truncate_wal(lite)
            && reserve::make(&self.dir)
        {
            lite.recovering.store(false, Ordering::Relaxed);
        }
        result
    }

    /// Checkpoints the whole write-ahead log into the database and truncates
    /// it to zero bytes; true when that was done. Readers that stay longer
    /// than [`CHECKPOINT_PATIENCE`] (or the timeout, if shorter), or a
    /// database that cannot grow, leave the log as it was.
    fn truncate_wal(&self, lite: &Lite) -> bool {
        let Ok(mut conn) = lite.pool.take() else { return false };
        if writers::set_busy_handler(&mut conn, self.timeout.min(CHECKPOINT_PATIENCE)).is_err() {
            return false;
        }
        // The row is (busy, log frames, checkpointed frames); busy = 1 when
        // readers or writers kept the checkpoint from completing.
        let busy = conn.query_row(pool::CHECKPOINT_TRUNCATE, [], |row| row.get::<_, i64>(0));
        // A connection left with the short timeout is dropped, not reused.
        if writers::set_busy_handler(&mut conn, self.timeout).is_ok() {
            lite.pool.give(conn);
        }
        matches!(busy, Ok(0))
    }

    /// A watcher for a blocking pop; it holds one connection while it lives.
    pub(crate) fn watcher(&self) -> Result<Watcher<'_>> {
        Watcher::new(self)
    }

    pub(crate) fn statistics(&self) -> bool {
        self.statistics.load(Ordering::Relaxed)
    }

    /// Blocking checkpoints this process's writers ran on this directory
    /// (the log had grown past its bound).
    pub(crate) fn blocking_checkpoints(&self) -> u64 {
        match &self.backend {
            Backend::Sqlite(lite) => lite.writers.blocking_checkpoints(),
            #[cfg(feature = "postgres")]
            Backend::Postgres(_) => 0,
        }
    }
}

/// The PostgreSQL location `dir` spells (`postgres://...`), if it is one.
pub(crate) fn postgres_location(dir: &Path) -> Option<&str> {
    let text = dir.to_str()?;
    (text.starts_with("postgres://") || text.starts_with("postgresql://")).then_some(text)
}

/// How long a checkpoint after a full disk waits for readers: a freeing
/// operation must not stall behind another process's long read.
const CHECKPOINT_PATIENCE: Duration = Duration::from_millis(200);

/// True for SQLite's "database or disk is full".
fn is_disk_full(e: &Error) -> bool {
    matches!(e, Error::Sqlite { code, .. } if code & 0xff == rusqlite::ffi::SQLITE_FULL)
}

fn prepare_directory(dir: &Path) -> Result<()> {
    match fs::metadata(dir) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(Error::NotADirectory(dir.to_path_buf())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => fs::create_dir_all(dir).map_err(|e| Error::io(dir, e)),
        Err(e) => Err(Error::io(dir, e)),
    }
}

fn read_and_resolve(conn: &Connection, db_path: &Path, overrides: &Overrides) -> Result<Settings> {
    let stored = read_settings(conn).map_err(|e| match e {
        Error::Sqlite { code, .. } if code & 0xff == rusqlite::ffi::SQLITE_NOTADB => {
            Error::NotADatabase(db_path.to_path_buf())
        }
        other => other,
    })?;
    Settings::resolve(&stored, overrides)
}

/// The Settings rows, or none when the table does not exist yet.
fn read_settings(conn: &Connection) -> Result<HashMap<String, Scalar>> {
    let exists = conn
        .query_row(sql::SETTINGS_TABLE_EXISTS, [], |_| Ok(()))
        .optional()?
        .is_some();
    if !exists {
        return Ok(HashMap::new());
    }
    let mut stmt = conn.prepare(sql::SELECT_SETTINGS)?;
    let rows = stmt.query_map([], |row| Ok((row.get::<_, String>(0)?, ops::scalar(row.get_ref(1)?))))?;
    rows.collect::<rusqlite::Result<HashMap<_, _>>>().map_err(Error::from)
}

fn policy_index(policy: EvictionPolicy) -> Option<(&'static str, &'static str)> {
    match policy {
        EvictionPolicy::LeastRecentlyStored => Some(("Cache_store_time", sql::POLICY_INDEX_STORE_TIME)),
        EvictionPolicy::LeastRecentlyUsed => Some(("Cache_access_time", sql::POLICY_INDEX_ACCESS_TIME)),
        EvictionPolicy::LeastFrequentlyUsed => Some(("Cache_access_count", sql::POLICY_INDEX_ACCESS_COUNT)),
        EvictionPolicy::None => None,
    }
}

/// The names of the tables, indexes and triggers of the database.
fn schema_names(conn: &Connection) -> Result<HashSet<String>> {
    let mut stmt = conn.prepare(sql::SCHEMA_OBJECTS)?;
    let names = stmt.query_map([], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
    Ok(names)
}

/// True when every table, index, trigger and Settings row is already as
/// `settings` wants it, so opening needs no write.
fn schema_is_current(conn: &Connection, settings: &Settings) -> Result<bool> {
    let names = schema_names(conn)?;
    let mut required = vec![
        "Settings",
        "Cache",
        "Cache_key_raw",
        "Cache_expire_time",
        "Cache_filename",
        "Settings_count_insert",
        "Settings_count_delete",
        "Settings_size_insert",
        "Settings_size_update",
        "Settings_size_delete",
    ];
    required.extend(policy_index(settings.eviction_policy).map(|(name, _)| name));
    if !required.iter().all(|n| names.contains(*n)) {
        return Ok(false);
    }
    if names.contains("Cache_tag_rowid") != settings.tag_index {
        return Ok(false);
    }
    let stored = read_settings(conn)?;
    let rows_match = settings.rows().iter().all(|(k, v)| stored.get(*k) == Some(v));
    let metadata = ["count", "size", "hits", "misses"]
        .iter()
        .all(|k| stored.contains_key(*k));
    Ok(rows_match && metadata)
}

/// Creates the schema and writes the settings (under the lock file).
fn initialize(conn: &Connection, settings: &Settings) -> Result<()> {
    // auto_vacuum only takes effect before the first table exists, and the
    // journal mode cannot change inside a transaction.
    pool::run_pragma(conn, &format!("PRAGMA auto_vacuum = {}", settings.sqlite_auto_vacuum))?;
    pool::run_pragma(conn, &format!("PRAGMA journal_mode = {}", settings.sqlite_journal_mode))?;
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let result = (|| -> Result<()> {
        conn.execute(sql::CREATE_SETTINGS, [])?;
        for (key, value) in settings.rows() {
            conn.execute(sql::UPSERT_SETTING, rusqlite::params![key, ops::ScalarSql(&value)])?;
        }
        for key in ["count", "size", "hits", "misses"] {
            conn.execute(sql::INSERT_METADATA, [key])?;
        }
        conn.execute(sql::CREATE_CACHE, [])?;
        for stmt in sql::CREATE_INDEXES {
            conn.execute(stmt, [])?;
        }
        if let Some((_, create)) = policy_index(settings.eviction_policy) {
            conn.execute(create, [])?;
        }
        for stmt in sql::CREATE_TRIGGERS {
            conn.execute(stmt, [])?;
        }
        let tag = if settings.tag_index {
            sql::CREATE_TAG_INDEX
        } else {
            sql::DROP_TAG_INDEX
        };
        conn.execute(tag, [])?;
        Ok(())
    })();
    match result {
        Ok(()) => conn.execute_batch("COMMIT").map_err(Error::from),
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

/// `location` with the connection option that makes every transaction of
/// the session read-only (`default_transaction_read_only`), added to the
/// user's `options` parameter if there is one.
#[cfg(feature = "postgres")]
fn read_only_location(location: &str) -> String {
    const READ_ONLY: &str = "-c%20default_transaction_read_only%3Don";
    let (url, schema) = match location.split_once('#') {
        Some((url, schema)) => (url, Some(schema)),
        None => (location, None),
    };
    let with = match url.split_once('?') {
        None => format!("{url}?options={READ_ONLY}"),
        Some((base, query)) => {
            let pairs: Vec<String> = query
                .split('&')
                .map(|pair| match pair.strip_prefix("options=") {
                    Some(value) if !value.is_empty() => format!("options={value}%20{READ_ONLY}"),
                    Some(_) => format!("options={READ_ONLY}"),
                    None => pair.to_owned(),
                })
                .collect();
            let mut query = pairs.join("&");
            if !pairs.iter().any(|p| p.starts_with("options=")) {
                query.push_str(&format!("&options={READ_ONLY}"));
            }
            format!("{base}?{query}")
        }
    };
    match schema {
        Some(schema) => format!("{with}#{schema}"),
        None => with,
    }
}

/// A location for a message: without the password of `user:password@`.
#[cfg(feature = "postgres")]
fn redacted(location: &str) -> String {
    let Some((scheme, rest)) = location.split_once("://") else {
        return location.to_owned();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..end].rfind('@') {
        Some(at) => match rest[..at].split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***{}", &rest[at..]),
            None => location.to_owned(),
        },
        None => location.to_owned(),
    }
}

#[cfg(all(test, feature = "postgres"))]
mod tests {
    use super::*;

    #[test]
    fn read_only_locations_ask_the_server_for_read_only_transactions() {
        const RO: &str = "-c%20default_transaction_read_only%3Don";
        assert_eq!(
            read_only_location("postgres://u@h/db#s"),
            format!("postgres://u@h/db?options={RO}#s")
        );
        assert_eq!(
            read_only_location("postgres://u@h/db?sslmode=disable"),
            format!("postgres://u@h/db?sslmode=disable&options={RO}")
        );
        assert_eq!(
            read_only_location("postgres://u@h/db?options=-c%20a%3Db&x=1#s"),
            format!("postgres://u@h/db?options=-c%20a%3Db%20{RO}&x=1#s")
        );
        assert_eq!(redacted("postgres://u:secret@h/db#s"), "postgres://u:***@h/db#s");
    }
}
