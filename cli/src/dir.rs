//! Which directories the tool agrees to open: a cache made by diskq or
//! python-diskcache, or (for `set` and `push` only) a new one.
//!
//! `Cache::open` creates whatever is missing, which is right for a program
//! that owns its directory and wrong for a tool given a path by hand: a typo
//! would leave a new empty cache behind, and a stranger's SQLite file named
//! `cache.db` would get our tables. So the tool looks first.

use std::fs;
use std::io::ErrorKind;
use std::path::Path;

use diskq::{Cache, EvictionPolicy};
use rusqlite::{Connection, OpenFlags};

use crate::failure::Failure;

/// The database file python-diskcache and diskq keep in a cache directory.
const DB_NAME: &str = "cache.db";

/// Files a cache directory holds while a process is creating it: a
/// directory with only these in it may still become a cache.
const BEING_CREATED: &[&str] = &[".lock", "cache.db-journal", "cache.db-wal", "cache.db-shm"];

/// Whether the command may create the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// The directory must already be a cache.
    Existing,
    /// The directory must already be a cache, which is opened only to read
    /// ([`Cache::open_read_only`]): the command leaves it byte for byte as
    /// it was.
    ReadOnly,
    /// A missing or empty directory becomes a new cache (`set`).
    CreateIfNew,
    /// A missing or empty directory becomes a new queue (`push`): a cache
    /// with eviction policy `none`, as a `Deque` opens it, so that no size
    /// limit ever culls an item the tool said it stored. An existing cache
    /// keeps its own settings.
    CreateQueueIfNew,
}

impl Access {
    fn creates(self) -> bool {
        matches!(self, Access::CreateIfNew | Access::CreateQueueIfNew)
    }

    /// Creates the cache (or opens it, when another process just did).
    fn create(self, dir: &Path) -> Result<Cache, Failure> {
        let builder = Cache::builder();
        let builder = match self {
            Access::CreateQueueIfNew => builder.eviction_policy(EvictionPolicy::None),
            _ => builder,
        };
        Ok(builder.open(dir)?)
    }
}

/// The `count` and `size` rows python-diskcache keeps in its Settings table
/// (rows, expired ones included, and bytes in value files).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Metadata {
    /// Rows in the Cache table.
    pub count: i64,
    /// Bytes of the value files, as the rows record them.
    pub size: i64,
}

/// Opens the cache in `dir` after making sure it is one (or, with
/// [`Access::CreateIfNew`], may become one).
pub fn open(dir: &Path, access: Access) -> Result<Cache, Failure> {
    let shown = dir.display();
    match fs::metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err(Failure::new(format!("{shown} is not a directory"))),
        Err(e) if e.kind() == ErrorKind::NotFound => {
            return match access {
                _ if access.creates() => access.create(dir),
                _ => Err(Failure::new(format!(
                    "{shown} does not exist (only set and push create a cache)"
                ))),
            };
        }
        Err(e) => return Err(Failure::new(format!("cannot read {shown}: {e}"))),
    }
    let db = dir.join(DB_NAME);
    if !db.exists() {
        return match access {
            _ if access.creates() && is_empty_or_being_created(dir)? => access.create(dir),
            _ if is_fanout_root(dir) => Err(Failure::new(format!(
                "{shown} is a FanoutCache directory, which has no queue: give one of its shards, such as {}",
                dir.join("000").display()
            ))),
            _ if access.creates() => Err(Failure::new(format!(
                "{shown} is not a diskq directory (no {DB_NAME}) and is not empty: refusing to make a cache in it"
            ))),
            _ => Err(Failure::new(format!("{shown} is not a diskq directory (no {DB_NAME})"))),
        };
    }
    match tables(&db)? {
        Tables::Cache => {}
        Tables::None if access.creates() => return access.create(dir),
        Tables::None => {
            return Err(Failure::new(format!(
                "{} has no tables: not a diskq cache (or one still being created)",
                db.display()
            )));
        }
        Tables::Other => {
            return Err(Failure::new(format!(
                "{} is an SQLite database of something else (no Cache and Settings tables)",
                db.display()
            )));
        }
    }
    Ok(match access {
        Access::ReadOnly => Cache::open_read_only(dir)?,
        _ => Cache::open(dir)?,
    })
}

/// True when `dir` is a FanoutCache root: no cache of its own, and a first
/// shard folder `000` that is one.
pub fn is_fanout_root(dir: &Path) -> bool {
    !dir.join(DB_NAME).exists() && dir.join("000").join(DB_NAME).is_file()
}

/// The Settings table's `count` and `size` rows of the cache in `dir`.
pub fn metadata(dir: &Path) -> Result<Metadata, Failure> {
    let db = dir.join(DB_NAME);
    let conn = connect(&db)?;
    let read = |name: &str| -> Result<i64, Failure> {
        conn.query_row("SELECT value FROM Settings WHERE key = ?1", [name], |r| {
            r.get::<_, Option<i64>>(0)
        })
        .map(|v| v.unwrap_or(0))
        .map_err(|e| Failure::new(format!("cannot read the {name} of {}: {e}", db.display())))
    };
    Ok(Metadata {
        count: read("count")?,
        size: read("size")?,
    })
}

/// What a `cache.db` holds.
enum Tables {
    /// python-diskcache's Cache and Settings tables.
    Cache,
    /// No table at all: a database just created.
    None,
    /// Tables of something else.
    Other,
}

fn tables(db: &Path) -> Result<Tables, Failure> {
    let conn = connect(db)?;
    let (all, ours): (i64, i64) = conn
        .query_row(
            "SELECT count(*), count(CASE WHEN name IN ('Cache', 'Settings') THEN 1 END) \
             FROM sqlite_master WHERE type = 'table'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .map_err(|e| match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::NotADatabase) => {
                Failure::new(format!("{} is not an SQLite database", db.display()))
            }
            _ => Failure::new(format!("cannot read {}: {e}", db.display())),
        })?;
    Ok(match (all, ours) {
        (_, 2) => Tables::Cache,
        (0, _) => Tables::None,
        _ => Tables::Other,
    })
}

/// A connection that only reads, and never creates the file: opened for
/// writing with `query_only` set, as the library's read-only open does, so
/// that closing it removes the log files SQLite made for it; a log that was
/// there before is never checkpointed or removed (see `Cache::open_read_only`).
pub fn connect(db: &Path) -> Result<Connection, Failure> {
    let cannot = |e: rusqlite::Error| Failure::new(format!("cannot open {}: {e}", db.display()));
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    let keep_log = fs::symlink_metadata(&wal).is_ok();
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_NOFOLLOW;
    let conn = Connection::open_with_flags(db, flags).map_err(cannot)?;
    conn.pragma_update(None, "query_only", true).map_err(cannot)?;
    if keep_log {
        conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)
            .map_err(cannot)?;
    }
    conn.busy_timeout(std::time::Duration::from_secs(60)).map_err(cannot)?;
    Ok(conn)
}

fn is_empty_or_being_created(dir: &Path) -> Result<bool, Failure> {
    let entries = fs::read_dir(dir).map_err(|e| Failure::new(format!("cannot read {}: {e}", dir.display())))?;
    for entry in entries {
        let entry = entry.map_err(|e| Failure::new(format!("cannot read {}: {e}", dir.display())))?;
        if !BEING_CREATED.iter().any(|name| entry.file_name() == *name) {
            return Ok(false);
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(result: Result<Cache, Failure>) -> String {
        match result {
            Ok(cache) => panic!("opened {cache:?}"),
            Err(f) => f.to_string(),
        }
    }

    #[test]
    fn a_missing_directory_is_created_only_when_asked() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("new");
        assert!(message(open(&dir, Access::Existing)).contains("does not exist"));
        assert!(!dir.exists());
        open(&dir, Access::CreateIfNew).expect("created");
        assert!(dir.join(DB_NAME).is_file());
        open(&dir, Access::Existing).expect("now a cache");
    }

    #[test]
    fn strangers_are_refused_and_left_alone() {
        let tmp = tempfile::tempdir().expect("tempdir");
        fs::write(tmp.path().join("notes.txt"), "mine").expect("write");
        assert!(message(open(tmp.path(), Access::CreateIfNew)).contains("not empty"));
        assert!(message(open(tmp.path(), Access::Existing)).contains("no cache.db"));
        assert!(!tmp.path().join(DB_NAME).exists());

        let other = tempfile::tempdir().expect("tempdir");
        let db = other.path().join(DB_NAME);
        Connection::open(&db)
            .and_then(|c| c.execute("CREATE TABLE people (name TEXT)", []))
            .expect("another app's database");
        assert!(message(open(other.path(), Access::CreateIfNew)).contains("something else"));

        let garbage = tempfile::tempdir().expect("tempdir");
        fs::write(garbage.path().join(DB_NAME), vec![7u8; 4096]).expect("write");
        assert!(message(open(garbage.path(), Access::Existing)).contains("not an SQLite database"));
    }

    #[test]
    fn metadata_counts_rows_and_file_bytes() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let cache = Cache::builder().min_file_size(4).open(tmp.path()).expect("open");
        cache.set("a", "0123456789").expect("set");
        cache.set("b", &1).expect("set");
        assert_eq!(metadata(tmp.path()).expect("metadata"), Metadata { count: 2, size: 10 });
    }
}
