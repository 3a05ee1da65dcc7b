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
            _ => Cache::builder().sqlite_synchronous(1),
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
        Cache::builder().sqlite_synchronous(0),
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
