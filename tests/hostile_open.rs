//! A hostile directory at open: Settings rows that would remove SQLite's
//! atomicity, and links, FIFOs and other non-regular files at the names
//! diskq opens (`cache.db`, its `-wal`, `-shm` and `-journal` files, the
//! `cache.db.lock` file). Each is refused with a clear error; nothing
//! outside the directory is created or changed, and nothing hangs.
#![allow(clippy::unwrap_used)]
#![cfg(unix)]

use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use diskq::{Cache, Error};
use rusqlite::types::Value;

fn setting(dir: &Path, key: &str) -> Value {
    rusqlite::Connection::open(dir.join("cache.db"))
        .unwrap()
        .query_row("SELECT value FROM Settings WHERE key = ?1", [key], |r| r.get(0))
        .unwrap()
}

fn set_setting(dir: &Path, key: &str, value: &Value) {
    rusqlite::Connection::open(dir.join("cache.db"))
        .unwrap()
        .execute("UPDATE Settings SET value = ?2 WHERE key = ?1", (key, value))
        .unwrap();
}

// ------------------------------------------------------------------ settings

#[test]
fn settings_that_remove_atomicity_are_refused_and_an_explicit_option_replaces_them() {
    for (key, bad) in [
        ("sqlite_journal_mode", Value::Text("off".into())),
        ("sqlite_journal_mode", Value::Text("OFF".into())),
        ("sqlite_journal_mode", Value::Text("memory".into())),
        ("sqlite_synchronous", Value::Integer(0)),
    ] {
        let dir = tempfile::tempdir().unwrap();
        Cache::open(dir.path()).unwrap().set("k", &1).unwrap();
        set_setting(dir.path(), key, &bad);
        match Cache::open(dir.path()) {
            Err(Error::InvalidSetting { name, message }) => {
                assert_eq!(name, key, "{message}");
                assert!(message.contains("diskq does not allow"), "{key}: {message}");
            }
            other => panic!("{key} = {bad:?}: expected InvalidSetting, got {other:?}"),
        }
        assert_eq!(setting(dir.path(), key), bad, "{key} was changed by a refused open");
        // An explicit, safe option replaces the stored row.
        let builder = match key {
            "sqlite_journal_mode" => Cache::builder().sqlite_journal_mode("wal"),
            _ => Cache::builder().sqlite_synchronous(diskq::Synchronous::Normal),
        };
        let cache = builder.open(dir.path()).unwrap();
        assert_eq!(cache.get::<i64>("k").unwrap(), Some(1));
        cache.set("k2", &2).unwrap();
        drop(cache);
        let fixed = match key {
            "sqlite_journal_mode" => Value::Text("wal".into()),
            _ => Value::Integer(1),
        };
        assert_eq!(setting(dir.path(), key), fixed);
        assert_eq!(Cache::open(dir.path()).unwrap().get::<i64>("k2").unwrap(), Some(2));
    }
    // The options themselves refuse what would break atomicity.
    let dir = tempfile::tempdir().unwrap();
    for builder in [
        Cache::builder().sqlite_journal_mode("off"),
        Cache::builder().sqlite_journal_mode("memory"),
    ] {
        assert!(matches!(builder.open(dir.path()), Err(Error::InvalidSetting { .. })));
    }
    // Journal modes that keep commits atomic are still accepted.
    for mode in ["delete", "truncate", "persist", "wal"] {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::builder().sqlite_journal_mode(mode).open(dir.path()).unwrap();
        cache.set("k", &1).unwrap();
        drop(cache);
        assert_eq!(setting(dir.path(), "sqlite_journal_mode"), Value::Text(mode.into()));
        assert_eq!(Cache::open(dir.path()).unwrap().get::<i64>("k").unwrap(), Some(1));
    }
}

// ------------------------------------------------------- links and FIFOs

/// How long an operation may take before the test calls it a hang. Far
/// above what any of them needs; only the old code (which blocked for ever
/// on a FIFO) ever reaches it.
const HANG: Duration = Duration::from_secs(60);

/// Runs `op` on a thread and returns its result, or fails the test when it
/// has not returned within [`HANG`] (the thread is left blocked; the test
/// process ends without it).
fn bounded<T: Send + 'static>(what: &str, op: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(op());
    });
    rx.recv_timeout(HANG)
        .unwrap_or_else(|_| panic!("{what} did not return within {HANG:?}: it hangs"))
}

fn mkfifo(path: &Path) {
    let status = std::process::Command::new("mkfifo").arg(path).status().unwrap();
    assert!(status.success(), "mkfifo {}", path.display());
}

/// Every file below `dir` with its contents (links as their target), to
/// prove that nothing there was created or changed.
fn snapshot(dir: &Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                stack.push(path.clone());
                out.push((path, Vec::new()));
            } else if meta.file_type().is_symlink() {
                let target = std::fs::read_link(&path).unwrap();
                out.push((path, target.into_os_string().into_encoded_bytes()));
            } else if meta.is_file() {
                let data = std::fs::read(&path).unwrap();
                out.push((path, data));
            } else {
                out.push((path, b"<special>".to_vec()));
            }
        }
    }
    out.sort();
    out
}

fn assert_refused<T: std::fmt::Debug>(what: &str, result: diskq::Result<T>, name: &str) {
    match result {
        Err(Error::Corrupt(message)) => {
            assert!(message.contains(name), "{what}: the error names {name}: {message}");
            assert!(
                message.contains("symbolic link") || message.contains("not a regular file"),
                "{what}: the error says why: {message}"
            );
        }
        other => panic!("{what}: expected Error::Corrupt naming {name}, got {other:?}"),
    }
}

fn is_fifo(path: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::symlink_metadata(path).unwrap().file_type().is_fifo()
}

#[test]
fn a_fifo_lock_file_is_refused_without_blocking() {
    // A new directory: opening must create the schema under the lock.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cache");
    std::fs::create_dir(&dir).unwrap();
    mkfifo(&dir.join("cache.db.lock"));
    let d = dir.clone();
    let opened = bounded("open with a FIFO lock file", move || Cache::open(&d).map(drop));
    assert_refused("open", opened, "cache.db.lock");
    assert!(is_fifo(&dir.join("cache.db.lock")));

    // An existing cache: a large set and repair() take the lock.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let cache = Cache::builder().min_file_size(1024).open(&dir).unwrap();
    cache.set("k", &1).unwrap();
    std::fs::remove_file(dir.join("cache.db.lock")).unwrap();
    mkfifo(&dir.join("cache.db.lock"));
    let c = cache.clone();
    let set = bounded("a large set with a FIFO lock file", move || {
        c.set_bytes("big", &vec![7u8; 64 * 1024])
    });
    assert_refused("large set", set, "cache.db.lock");
    let c = cache.clone();
    let checked = bounded("repair() with a FIFO lock file", move || c.repair());
    assert_refused("repair()", checked, "cache.db.lock");
    assert!(is_fifo(&dir.join("cache.db.lock")));
    assert_eq!(cache.get::<i64>("k").unwrap(), Some(1));
    assert!(!cache.contains_key("big").unwrap());
}

#[test]
fn a_linked_lock_file_is_refused_and_its_target_never_created() {
    let outside = tempfile::tempdir().unwrap();
    let target = outside.path().join("created-by-diskq");
    let before = snapshot(outside.path());

    // A new directory.
    let tmp = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(&target, tmp.path().join("cache.db.lock")).unwrap();
    assert_refused("open", Cache::open(tmp.path()), "cache.db.lock");
    assert!(!target.exists(), "diskq created the link's target");

    // An existing cache: a large set and repair().
    let tmp = tempfile::tempdir().unwrap();
    let cache = Cache::builder().min_file_size(1024).open(tmp.path()).unwrap();
    cache.set("k", &1).unwrap();
    std::fs::remove_file(tmp.path().join("cache.db.lock")).unwrap();
    std::os::unix::fs::symlink(&target, tmp.path().join("cache.db.lock")).unwrap();
    assert_refused(
        "large set",
        cache.set_bytes("big", &vec![7u8; 64 * 1024]),
        "cache.db.lock",
    );
    assert_refused("repair()", cache.repair(), "cache.db.lock");
    assert!(!target.exists(), "diskq created the link's target");
    assert_eq!(snapshot(outside.path()), before);
    assert_eq!(cache.get::<i64>("k").unwrap(), Some(1));
}

#[test]
fn a_linked_reserve_file_is_left_alone_and_its_target_never_created() {
    let outside = tempfile::tempdir().unwrap();
    let target = outside.path().join("created-by-diskq");
    let tmp = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(&target, tmp.path().join("cache.db.reserve")).unwrap();
    let cache = Cache::open(tmp.path()).unwrap();
    cache.set("k", &1).unwrap();
    assert!(cache.delete("k").unwrap());
    cache.clear().unwrap();
    drop(cache);
    assert!(!target.exists(), "diskq created the link's target");
    assert!(snapshot(outside.path()).is_empty());
    let link = std::fs::symlink_metadata(tmp.path().join("cache.db.reserve")).unwrap();
    assert!(link.file_type().is_symlink(), "the link was replaced");
}

#[test]
fn a_linked_database_is_refused_and_the_target_left_alone() {
    let outside = tempfile::tempdir().unwrap();
    let other = Cache::open(outside.path()).unwrap();
    other.set("theirs", &1).unwrap();
    drop(other);
    let before = snapshot(outside.path());

    let tmp = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(outside.path().join("cache.db"), tmp.path().join("cache.db")).unwrap();
    let opened = Cache::open(tmp.path());
    assert_refused("open", opened, "cache.db");
    assert_eq!(snapshot(outside.path()), before, "the linked database was touched");
    let other = Cache::open(outside.path()).unwrap();
    assert_eq!(other.get::<i64>("theirs").unwrap(), Some(1));
}

#[test]
fn a_fifo_database_is_refused_without_blocking() {
    let tmp = tempfile::tempdir().unwrap();
    mkfifo(&tmp.path().join("cache.db"));
    let d = tmp.path().to_path_buf();
    let opened = bounded("open with a FIFO cache.db", move || Cache::open(&d).map(drop));
    assert_refused("open", opened, "cache.db");
    assert!(is_fifo(&tmp.path().join("cache.db")));
}

#[test]
fn linked_or_special_wal_and_shm_files_are_refused() {
    for suffix in ["-wal", "-shm", "-journal"] {
        let outside = tempfile::tempdir().unwrap();
        let target = outside.path().join("target");
        let tmp = tempfile::tempdir().unwrap();
        let cache = Cache::open(tmp.path()).unwrap();
        cache.set("k", &1).unwrap();
        drop(cache);
        let name = format!("cache.db{suffix}");
        let companion = tmp.path().join(&name);
        let _ = std::fs::remove_file(&companion);
        std::os::unix::fs::symlink(&target, &companion).unwrap();
        assert_refused(&name, Cache::open(tmp.path()), &name);
        assert!(!target.exists(), "{name}: diskq created the link's target");
        assert!(snapshot(outside.path()).is_empty());

        std::fs::remove_file(&companion).unwrap();
        mkfifo(&companion);
        let d = tmp.path().to_path_buf();
        let opened = bounded("open with a FIFO companion", move || Cache::open(&d).map(drop));
        assert_refused(&name, opened, &name);
        std::fs::remove_file(&companion).unwrap();
        assert_eq!(Cache::open(tmp.path()).unwrap().get::<i64>("k").unwrap(), Some(1));
    }
}

#[test]
fn a_linked_fanout_shard_folder_is_refused() {
    let outside = tempfile::tempdir().unwrap();
    let target = outside.path().join("shard");
    std::fs::create_dir(&target).unwrap();
    let before = snapshot(outside.path());
    let tmp = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(&target, tmp.path().join("000")).unwrap();
    assert_refused("fanout open", diskq::FanoutCache::open(tmp.path()), "000");
    assert_eq!(
        snapshot(outside.path()),
        before,
        "diskq wrote into the shard's link target"
    );
}
