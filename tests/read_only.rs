//! `Cache::open_read_only`: reading a directory made by diskq or by the real
//! python-diskcache leaves every file in it byte for byte as it was (names,
//! sizes, contents, modification times), and every write is refused with a
//! clear error before it touches anything.
//!
//! Without Python (or PyPI) the python-diskcache tests skip with a message,
//! except under `CI=true`, where they fail.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/pyenv.rs"]
mod pyenv;

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use diskq::{Cache, CheckOptions, Error, EvictionPolicy, Key, SetOptions};

/// One entry of a directory: a file's length, contents and modification
/// time, or a folder's modification time.
#[derive(Debug, PartialEq, Eq)]
enum Entry {
    File {
        len: u64,
        contents: Vec<u8>,
        modified: SystemTime,
    },
    Folder {
        modified: SystemTime,
    },
}

/// Every file and folder under `dir` (not `dir` itself: see
/// `Cache::open_read_only` on its modification time), by relative path.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Entry> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Entry>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let meta = fs::symlink_metadata(&path).unwrap();
            let modified = meta.modified().unwrap();
            let name = path.strip_prefix(root).unwrap().to_path_buf();
            if meta.is_dir() {
                out.insert(name, Entry::Folder { modified });
                walk(root, &path, out);
            } else {
                let contents = fs::read(&path).unwrap();
                out.insert(
                    name,
                    Entry::File {
                        len: meta.len(),
                        contents,
                        modified,
                    },
                );
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn names(snap: &BTreeMap<PathBuf, Entry>) -> Vec<String> {
    snap.keys().map(|p| p.display().to_string()).collect()
}

/// Asserts that `f` fails with [`Error::InvalidUse`] saying "read-only".
fn refused<T: std::fmt::Debug>(what: &str, result: diskq::Result<T>) {
    match result {
        Err(Error::InvalidUse(message)) => assert!(message.contains("read-only"), "{what}: {message}"),
        other => panic!("{what} on a read-only cache gave {other:?}"),
    }
}

/// Every reading operation, then every kind of write (each refused).
fn read_everything(dir: &Path, keys_wanted: &[Key]) {
    let cache = Cache::open_read_only(dir).unwrap();
    assert!(cache.is_read_only());
    let keys: Vec<Key> = cache.keys().unwrap().map(Result::unwrap).collect();
    for key in keys_wanted {
        assert!(keys.contains(key), "{key} not among {keys:?}");
        assert!(cache.contains_key(key.clone()).unwrap());
    }
    assert_eq!(cache.len().unwrap(), keys.len());
    assert_eq!(cache.get::<i64>("int").unwrap(), Some(42));
    assert_eq!(cache.get::<i64>("int").unwrap(), Some(42));
    assert_eq!(cache.get::<i64>("missing").unwrap(), None);
    assert_eq!(cache.get::<String>("gone").unwrap(), None, "expired");
    let big = cache.get_bytes("big-bytes").unwrap().unwrap();
    assert_eq!(big.len(), 51_200);
    let mut streamed = Vec::new();
    cache
        .read("big-bytes")
        .unwrap()
        .unwrap()
        .read_to_end(&mut streamed)
        .unwrap();
    assert_eq!(streamed, big);
    assert!(cache.get_entry::<String>("text").unwrap().is_some());
    assert!(cache.volume().unwrap() > 0);
    cache.stats().unwrap();
    assert!(!cache.settings().is_empty());
    let warnings = cache.check().unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    let front = cache.peek::<String>().unwrap().map(|(_, v)| v);
    assert_eq!(front.as_deref(), Some("first"), "the queue's front, left in place");
    assert!(cache.first_item::<String>().unwrap().is_some());

    refused("set", cache.set("new", &1));
    refused("set of a value file", cache.set_bytes("new", &[7u8; 100_000]));
    refused("add", cache.add("brand-new", &1));
    refused("incr", cache.incr("int", 1, 0));
    refused("delete", cache.delete("int"));
    refused("pop", cache.pop::<i64>("int"));
    refused("touch", cache.touch("int", Some(Duration::from_secs(5))));
    refused("push", cache.push("job"));
    refused("pull", cache.pull::<String>());
    refused("clear", cache.clear());
    refused("expire", cache.expire());
    refused("cull", cache.cull());
    refused("set_statistics", cache.set_statistics(false));
    refused("reset_stats", cache.reset_stats());
    refused("check with fix", cache.check_with(&CheckOptions::new().fix(true)));
    refused("transact", cache.transact(|c| c.get::<i64>("int")));
    refused(
        "set_with",
        cache.set_with("t", "v", &SetOptions::new().tag("x").expire(Duration::from_secs(9))),
    );
    assert_eq!(cache.get::<i64>("int").unwrap(), Some(42), "nothing changed");
}

#[test]
fn reading_a_diskq_directory_changes_no_file() {
    let tmp = tempfile::tempdir().unwrap();
    {
        // Statistics and least-recently-used eviction: a normal get writes.
        let cache = Cache::builder()
            .statistics(true)
            .eviction_policy(EvictionPolicy::LeastRecentlyUsed)
            .open(tmp.path())
            .unwrap();
        cache.set("text", "héllo").unwrap();
        cache.set("int", &42).unwrap();
        cache.set_bytes("big-bytes", &vec![3u8; 51_200]).unwrap();
        cache.push("first").unwrap();
        cache.push("second").unwrap();
        // Stored an hour ago with a second to live: expired now.
        Cache::builder()
            .clock(|| SystemTime::now() - Duration::from_secs(3600))
            .open(tmp.path())
            .unwrap()
            .set_with("gone", "soon", &SetOptions::new().expire(Duration::from_secs(1)))
            .unwrap();
    }
    let before = snapshot(tmp.path());
    assert!(
        !before.contains_key(Path::new("cache.db-wal")),
        "closed cleanly: {:?}",
        names(&before)
    );

    read_everything(tmp.path(), &[Key::from("text"), Key::from("int")]);
    assert_eq!(snapshot(tmp.path()), before);

    // A second time, with a normal handle open meanwhile (its log files are
    // there while the reader opens and closes, and stay its own).
    let writer = Cache::open(tmp.path()).unwrap();
    let live = snapshot(tmp.path());
    let reader = Cache::open_read_only(tmp.path()).unwrap();
    writer.set("int", &43).unwrap();
    assert_eq!(reader.get::<i64>("int").unwrap(), Some(43), "the reader sees a commit");
    drop(reader);
    assert!(
        tmp.path().join("cache.db-wal").exists(),
        "the writer's log is left to it"
    );
    drop(writer);
    assert!(live.contains_key(Path::new("cache.db-shm")));
}

#[test]
fn opening_read_only_what_is_no_cache_creates_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("missing");
    assert!(matches!(Cache::open_read_only(&missing), Err(Error::Io { .. })));
    assert!(!missing.exists());

    // An empty directory: no cache.db is made.
    assert!(matches!(Cache::open_read_only(tmp.path()), Err(Error::Io { .. })));
    assert!(snapshot(tmp.path()).is_empty());

    // An SQLite file without the cache tables: no schema is made.
    let db = tmp.path().join("cache.db");
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch("PRAGMA journal_mode = wal; CREATE TABLE other (x)")
        .unwrap();
    let before = snapshot(tmp.path());
    match Cache::open_read_only(tmp.path()) {
        Err(Error::InvalidUse(message)) => assert!(message.contains("no cache tables"), "{message}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(snapshot(tmp.path()), before);

    // A file where the directory should be.
    let file = tmp.path().join("file");
    fs::write(&file, b"x").unwrap();
    assert!(matches!(Cache::open_read_only(&file), Err(Error::NotADirectory(_))));
}

#[test]
fn a_read_only_open_takes_no_settings() {
    let tmp = tempfile::tempdir().unwrap();
    Cache::open(tmp.path()).unwrap().set("k", &1).unwrap();
    let before = snapshot(tmp.path());
    let err = Cache::builder()
        .read_only()
        .size_limit(1 << 20)
        .open(tmp.path())
        .unwrap_err();
    assert!(matches!(err, Error::InvalidUse(_)), "{err:?}");
    let cache = Cache::builder()
        .read_only()
        .timeout(Duration::from_secs(2))
        .open(tmp.path())
        .unwrap();
    assert_eq!(cache.size_limit(), 1 << 30, "the stored setting");
    drop(cache);
    assert_eq!(snapshot(tmp.path()), before);
}

fn python() -> Option<PathBuf> {
    pyenv::python("the read-only test on a python-diskcache directory")
}

fn python_made(python: &Path, dir: &Path, how: &str) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/python_read_only.py");
    let out = Command::new(python).arg(script).arg(dir).arg(how).output().unwrap();
    assert!(
        out.status.success(),
        "python_read_only.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn reading_a_python_diskcache_directory_changes_no_file() {
    let Some(python) = python() else { return };
    let tmp = tempfile::tempdir().unwrap();
    python_made(&python, tmp.path(), "closed");
    let before = snapshot(tmp.path());
    assert!(!before.contains_key(Path::new("cache.db-wal")), "{:?}", names(&before));

    read_everything(tmp.path(), &[Key::from("text"), Key::from("int"), Key::from("pickled")]);
    let after = snapshot(tmp.path());
    assert_eq!(names(&after), names(&before), "no file added or removed");
    assert_eq!(after, before);
}

#[test]
fn reading_a_directory_whose_writer_crashed_leaves_its_log() {
    let Some(python) = python() else { return };
    let tmp = tempfile::tempdir().unwrap();
    python_made(&python, tmp.path(), "crashed");
    let before = snapshot(tmp.path());
    let wal = Path::new("cache.db-wal");
    assert!(
        matches!(before.get(wal), Some(Entry::File { len, .. }) if *len > 0),
        "the crashed writer's log: {:?}",
        names(&before)
    );

    let cache = Cache::open_read_only(tmp.path()).unwrap();
    assert_eq!(
        cache.get::<String>("late").unwrap().as_deref(),
        Some("in the log"),
        "the log's commit is read"
    );
    assert_eq!(cache.get::<i64>("int").unwrap(), Some(42));
    drop(cache);

    // The log is not copied into cache.db nor removed. cache.db-shm is the
    // processes' shared memory: SQLite rebuilds it when it finds no other
    // process using it, so only its contents may change.
    let mut after = snapshot(tmp.path());
    assert_eq!(names(&after), names(&before));
    let shm = Path::new("cache.db-shm");
    let mut before = before;
    before.remove(shm);
    after.remove(shm);
    assert_eq!(after, before);
}

#[test]
fn a_read_only_wait_makes_no_doorbell() {
    let dir = tempfile::tempdir().unwrap();
    {
        let cache = Cache::open(dir.path()).unwrap();
        cache.push(&"job").unwrap();
        cache.pull::<String>().unwrap().unwrap();
    }
    let _ = fs::remove_file(dir.path().join("cache.db.bell"));
    let before = snapshot(dir.path());
    let reader = Cache::open_read_only(dir.path()).unwrap();
    // A wait that finds nothing; it must not create the doorbell (or any file).
    assert!(!reader.wait_for_queued(None, Duration::from_millis(30)).unwrap());
    drop(reader);
    assert_eq!(
        names(&snapshot(dir.path())),
        names(&before),
        "a read-only wait created a file"
    );
}

#[test]
fn the_job_queue_reads_change_no_file() {
    use diskq::{LeaseOptions, NackOptions, PushOptions};
    let tmp = tempfile::tempdir().unwrap();
    let opts = LeaseOptions::new(Duration::from_secs(600))
        .prefix("jobs")
        .max_deliveries(1);
    {
        let cache = Cache::open(tmp.path()).unwrap();
        let jobs = PushOptions::new().prefix("jobs");
        cache.push_many(["a", "b", "c"], &jobs).unwrap();
        cache
            .push_with("later", &jobs.clone().delay(Duration::from_secs(3600)))
            .unwrap();
        let failed = cache.lease::<String>(&opts).unwrap().expect("a");
        failed.nack_with(&NackOptions::new().error("boom")).unwrap();
        drop(cache.lease::<String>(&opts).unwrap().expect("b")); // held
    }
    let before = snapshot(tmp.path());
    let cache = Cache::open_read_only(tmp.path()).unwrap();
    let backlog = cache.backlog(Some("jobs")).unwrap();
    assert_eq!((backlog.queued, backlog.leased, backlog.scheduled), (1, 1, 1));
    let stats = cache.queue_stats(Some("jobs")).unwrap();
    assert_eq!((stats.pushed, stats.scheduled, stats.dead_lettered), (4, 1, 1));
    assert_eq!(cache.all_queue_stats().unwrap().len(), 1);
    let dead = cache.dead_letters(&opts, 10).unwrap();
    assert_eq!(dead[0].last_error.as_deref(), Some("boom"));
    assert!(cache.lease::<String>(&opts).is_err());
    assert!(cache.requeue_dead_letters(&opts).is_err());
    assert!(
        cache
            .push_job("x", &PushOptions::new().prefix("jobs").priority(1))
            .is_err()
    );
    drop(cache);
    assert_eq!(snapshot(tmp.path()), before);
}
