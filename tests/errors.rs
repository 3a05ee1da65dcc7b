//! Bad input gets a clear error and changes nothing.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use diskq::{Cache, Error};

#[path = "support/chain.rs"]
#[allow(dead_code)]
mod support_chain;
use support_chain::chain;

fn settings_conn(dir: &std::path::Path) -> rusqlite::Connection {
    rusqlite::Connection::open(dir.join("cache.db")).unwrap()
}

fn setting(dir: &std::path::Path, key: &str) -> rusqlite::types::Value {
    settings_conn(dir)
        .query_row("SELECT value FROM Settings WHERE key = ?1", [key], |r| r.get(0))
        .unwrap()
}

#[test]
fn a_file_is_not_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plain");
    std::fs::write(&file, b"data").unwrap();
    match Cache::open(&file) {
        Err(Error::NotADirectory(p)) => assert_eq!(p, file),
        other => panic!("expected NotADirectory, got {other:?}"),
    }
    assert_eq!(std::fs::read(&file).unwrap(), b"data");
}

/// Opening inside, and opening, a directory this process may not write.
#[cfg(unix)]
fn check_unwritable(locked: &std::path::Path) {
    let inside = locked.join("cache");
    let err = Cache::open(&inside).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err:?}");
    assert!(err.to_string().contains("locked"), "the message names the path: {err}");
    let err = Cache::open(locked).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err:?}");
    assert_eq!(std::fs::read_dir(locked).unwrap().count(), 0, "nothing was created");
}

/// The unprivileged half of the permission test (run as `nobody` when the
/// tests run as root, who may write anywhere).
#[cfg(unix)]
#[test]
fn permission_child() {
    let Ok(locked) = std::env::var("DISKQ_LOCKED_DIR") else {
        return;
    };
    check_unwritable(std::path::Path::new(&locked));
}

#[cfg(unix)]
#[test]
fn a_directory_without_permission_is_an_io_error() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let locked = dir.path().join("locked");
    std::fs::create_dir(&locked).unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o555)).unwrap();
    let probe = locked.join("probe");
    if std::fs::write(&probe, b"").is_err() {
        check_unwritable(&locked);
        return;
    }
    // Root ignores permissions: run the check as `nobody` instead.
    std::fs::remove_file(&probe).unwrap();
    let status = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", "permission_child", "--nocapture", "--test-threads=1"])
        .env("DISKQ_LOCKED_DIR", &locked)
        .status();
    match status {
        Ok(status) => assert!(status.success(), "the unprivileged check failed: {status}"),
        Err(e) if std::env::var("CI").as_deref() == Ok("true") => panic!("setpriv is needed as root: {e}"),
        Err(e) => eprintln!("skipping: running as root and setpriv is not runnable: {e}"),
    }
}

#[test]
fn a_cache_db_that_is_not_sqlite_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = b"this is not an SQLite database, just some bytes that fill a page ".repeat(100);
    std::fs::write(dir.path().join("cache.db"), &garbage).unwrap();
    match Cache::open(dir.path()) {
        Err(Error::NotADatabase(p)) => assert!(p.ends_with("cache.db")),
        other => panic!("expected NotADatabase, got {other:?}"),
    }
    assert_eq!(std::fs::read(dir.path().join("cache.db")).unwrap(), garbage);
}

#[test]
fn invalid_settings_rows_are_refused_and_left_alone() {
    for (key, bad) in [
        ("size_limit", rusqlite::types::Value::Integer(-5)),
        (
            "eviction_policy",
            rusqlite::types::Value::Text("most-recently-loved".into()),
        ),
        ("cull_limit", rusqlite::types::Value::Text("ten".into())),
        ("disk_min_file_size", rusqlite::types::Value::Integer(-1)),
        (
            "sqlite_journal_mode",
            rusqlite::types::Value::Text("wal; DROP TABLE Cache".into()),
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        Cache::open(dir.path()).unwrap().set("k", &1).unwrap();
        settings_conn(dir.path())
            .execute("UPDATE Settings SET value = ?2 WHERE key = ?1", (key, &bad))
            .unwrap();
        match Cache::open(dir.path()) {
            Err(Error::InvalidSetting { name, message }) => {
                assert_eq!(name, key);
                assert!(!message.is_empty());
            }
            other => panic!("{key}: expected InvalidSetting, got {other:?}"),
        }
        assert_eq!(setting(dir.path(), key), bad, "{key} was changed");
        // An explicit, valid option on open replaces the bad row.
        if key == "size_limit" {
            let cache = Cache::builder().size_limit(1 << 20).open(dir.path()).unwrap();
            assert_eq!(cache.get::<i64>("k").unwrap(), Some(1));
            assert_eq!(setting(dir.path(), key), rusqlite::types::Value::Integer(1 << 20));
        }
    }
}

#[test]
fn a_newer_format_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    Cache::open(dir.path()).unwrap();
    settings_conn(dir.path())
        .execute("UPDATE Settings SET value = 99 WHERE key = 'diskq_format_version'", [])
        .unwrap();
    match Cache::open(dir.path()) {
        Err(Error::UnsupportedFormat { found, .. }) => assert_eq!(found, 99),
        other => panic!("expected UnsupportedFormat, got {other:?}"),
    }
}

#[test]
fn nan_keys_and_wrong_types_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path()).unwrap();
    assert!(matches!(cache.set(f64::NAN, &1), Err(Error::InvalidKey(_))));
    assert!(matches!(cache.get::<i64>(f64::NAN), Err(Error::InvalidKey(_))));
    assert_eq!(cache.len().unwrap(), 0);

    #[derive(serde::Serialize)]
    struct Point {
        x: i32,
        y: i32,
    }
    cache.set("point", &Point { x: 1, y: 2 }).unwrap();
    let err = cache.get::<i64>("point").unwrap_err();
    match &err {
        Error::Decode { key, wanted, .. } => {
            assert_eq!(key, "\"point\"");
            assert_eq!(*wanted, "i64");
        }
        other => panic!("expected Decode, got {other:?}"),
    }
    assert!(
        err.to_string().contains("point") && err.to_string().contains("i64"),
        "{err}"
    );
    cache.set("text", "not a number").unwrap();
    assert!(cache.get::<u32>("text").unwrap_err().is_decode());
    assert!(cache.get_bytes("text").unwrap_err().is_decode());
    assert_eq!(cache.get::<String>("text").unwrap().as_deref(), Some("not a number"));
}

#[test]
fn values_that_fail_to_serialize_change_nothing() {
    struct Unserializable;
    impl serde::Serialize for Unserializable {
        fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
            Err(serde::ser::Error::custom("refuses to serialize"))
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path()).unwrap();
    cache.set("k", &1).unwrap();
    let err = cache.set("k", &Unserializable).unwrap_err();
    assert!(matches!(err, Error::Encode { .. }), "{err:?}");
    assert!(chain(&err).contains("refuses to serialize"), "{}", chain(&err));
    assert_eq!(cache.get::<i64>("k").unwrap(), Some(1));
    assert!(cache.push(&Unserializable).is_err());
    assert_eq!(cache.len().unwrap(), 1);
}

#[test]
fn a_short_timeout_on_a_held_lock_is_a_timeout_not_a_hang() {
    let dir = tempfile::tempdir().unwrap();
    let holder = Cache::open(dir.path()).unwrap();
    let waiter = Cache::builder()
        .timeout(Duration::from_millis(100))
        .open(dir.path())
        .unwrap();
    let (locked_tx, locked_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let t = std::thread::spawn(move || {
        holder
            .transact(|c| {
                c.set("held", &1)?;
                locked_tx.send(()).unwrap();
                release_rx.recv().unwrap();
                Ok::<_, Error>(())
            })
            .unwrap();
    });
    locked_rx.recv().unwrap();
    assert!(waiter.incr("n", 1, 0).unwrap_err().is_timeout());
    assert!(waiter.push(&1).unwrap_err().is_timeout());
    release_tx.send(()).unwrap();
    t.join().unwrap();
    assert_eq!(waiter.incr("n", 1, 0).unwrap(), 1);
}

/// No level of an error's chain repeats the text of the level below it.
fn assert_each_cause_once(err: &Error) -> Vec<String> {
    let levels = support_chain::levels(err);
    for pair in levels.windows(2) {
        assert!(
            !pair[0].contains(&pair[1]),
            "{:?} repeats its source {:?}; the chain: {}",
            pair[0],
            pair[1],
            chain(err)
        );
    }
    levels
}

#[test]
fn an_io_error_shows_the_os_error_once() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plain");
    std::fs::write(&file, b"data").unwrap();
    let err = Cache::open(file.join("cache")).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err:?}");
    let levels = assert_each_cause_once(&err);
    assert!(levels[0].contains("plain"), "the message names the path: {levels:?}");
    assert_eq!(chain(&err).matches("(os error").count(), 1, "{}", chain(&err));
    let os = std::error::Error::source(&err).unwrap();
    assert!(
        os.downcast_ref::<std::io::Error>().is_some(),
        "the cause is the io::Error"
    );
}

#[test]
fn an_sqlite_error_chains_its_message_and_keeps_its_code() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path()).unwrap();
    settings_conn(dir.path())
        .execute_batch(
            "CREATE TRIGGER refuse BEFORE INSERT ON Cache BEGIN SELECT RAISE(ABORT, 'refused by a trigger'); END",
        )
        .unwrap();
    let err = cache.set("k", &1).unwrap_err();
    assert!(matches!(err, Error::Sqlite { .. }), "{err:?}");
    // SQLITE_CONSTRAINT_TRIGGER
    assert_eq!(err.sqlite_code(), Some(1811), "{err:?}");
    let levels = assert_each_cause_once(&err);
    assert_eq!(levels.len(), 2, "{levels:?}");
    assert_eq!(levels[1], "refused by a trigger");
    assert_eq!(chain(&err).matches("refused by a trigger").count(), 1);
    assert_eq!(Error::Timeout.sqlite_code(), None);
    assert!(cache.get::<i64>("k").unwrap().is_none(), "nothing was stored");
}

#[test]
fn decode_and_encode_errors_chain_the_serializers_error() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path()).unwrap();
    cache.set("list", &vec![1, 2, 3]).unwrap();
    let err = cache.get::<String>("list").unwrap_err();
    match &err {
        Error::Decode {
            key, wanted, message, ..
        } => {
            assert_eq!(key, "\"list\"");
            assert!(wanted.contains("String"), "{wanted}");
            assert!(!message.is_empty());
        }
        other => panic!("expected Decode, got {other:?}"),
    }
    let levels = assert_each_cause_once(&err);
    assert_eq!(
        levels.len(),
        2,
        "the MessagePack decoder's error is the source: {levels:?}"
    );

    struct Unserializable;
    impl serde::Serialize for Unserializable {
        fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
            Err(serde::ser::Error::custom("refuses to serialize"))
        }
    }
    let err = cache.set("k", &Unserializable).unwrap_err();
    let levels = assert_each_cause_once(&err);
    assert_eq!(levels.len(), 2, "{levels:?}");
    assert!(levels[1].contains("refuses to serialize"), "{levels:?}");
}
