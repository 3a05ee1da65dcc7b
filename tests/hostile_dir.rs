//! A directory made hostile on purpose, as if `cache.db` and its value
//! files came from somewhere untrusted (issue 13): rows naming files that
//! are not value files, value files far larger than their rows, sizes near
//! 2^62, columns of the wrong type; and an orphan file that a live writer
//! (python-diskcache, which takes no diskq lock) may still be writing.
//! Each must give a clear error naming the key, never an abort, never a
//! removal outside the value files, and `check` must report it.
#![allow(clippy::unwrap_used)]

#[path = "support/pyenv.rs"]
mod pyenv;

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use diskq::{Cache, CheckOptions, Error, Warning, WarningKind};

fn open(dir: &Path) -> Cache {
    Cache::builder().min_file_size(4).open(dir).unwrap()
}

fn db(dir: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(dir.join("cache.db")).unwrap()
}

fn filename_of(dir: &Path, key: &str) -> String {
    db(dir)
        .query_row("SELECT filename FROM Cache WHERE key = ?1", [key], |r| r.get(0))
        .unwrap()
}

fn kinds(warnings: &[Warning]) -> Vec<WarningKind> {
    warnings.iter().map(|w| w.kind).collect()
}

fn is_corrupt_naming(err: &Error, words: &[&str]) -> bool {
    let text = err.to_string();
    matches!(err, Error::Corrupt(_)) && words.iter().all(|w| text.contains(w))
}

/// A file of value-file shape that no row names: what python-diskcache's
/// `set(..., read=True)` leaves while it streams the value, before its row
/// commits.
fn orphan(dir: &Path) -> PathBuf {
    let folder = dir.join("ab").join("cd");
    fs::create_dir_all(&folder).unwrap();
    let path = folder.join("0123456789abcdef0123456789ab.val");
    fs::write(&path, b"half a value").unwrap();
    path
}

fn age(path: &Path, by: Duration) {
    let file = File::options().write(true).open(path).unwrap();
    file.set_modified(SystemTime::now() - by).unwrap();
}

// ---- Point 3: an orphan a live writer may still commit is kept ----

#[test]
fn check_fix_keeps_a_young_orphan_and_reports_it() {
    let dir = tempfile::tempdir().unwrap();
    let cache = open(dir.path());
    let path = orphan(dir.path());
    let warnings = cache.repair().unwrap();
    let unknown: Vec<_> = warnings.iter().filter(|w| w.kind == WarningKind::UnknownFile).collect();
    assert_eq!(unknown.len(), 1, "{warnings:?}");
    assert!(!unknown[0].fixed, "{warnings:?}");
    assert!(path.exists(), "a file younger than the grace period is kept");
    // Its folders are not empty, so not removed either.
    assert!(path.parent().unwrap().is_dir());
}

#[test]
fn check_fix_removes_an_orphan_older_than_the_grace_period() {
    let dir = tempfile::tempdir().unwrap();
    let cache = open(dir.path());
    let path = orphan(dir.path());
    age(&path, Duration::from_secs(2 * 3600));
    let warnings = cache.repair().unwrap();
    assert!(
        warnings.iter().any(|w| w.kind == WarningKind::UnknownFile && w.fixed),
        "{warnings:?}"
    );
    assert!(!path.exists());
    assert!(!dir.path().join("ab").exists(), "its empty folders go too");
}

#[test]
fn the_grace_period_is_an_option() {
    let dir = tempfile::tempdir().unwrap();
    let cache = open(dir.path());
    let path = orphan(dir.path());
    age(&path, Duration::from_secs(120));
    let keep = CheckOptions::new().fix(true).orphan_grace(Duration::from_secs(600));
    assert!(cache.check_with(&keep).unwrap().iter().all(|w| !w.fixed));
    assert!(path.exists());
    let remove = CheckOptions::new().fix(true).orphan_grace(Duration::from_secs(60));
    assert!(cache.check_with(&remove).unwrap().iter().any(|w| w.fixed));
    assert!(!path.exists());
}

/// The real python-diskcache streams a value (`set(..., read=True)`) and
/// stops half-way (its reader waits on a pipe) while `repair()` runs:
/// the file it is writing is kept, its set commits, and the value reads
/// back. (Python takes no diskq lock: only the grace period protects it.)
#[test]
fn check_fix_beside_a_streaming_python_writer_keeps_its_file() {
    use std::io::{BufRead, BufReader, Write};
    use std::process::{Command, Stdio};
    let Some(python) = pyenv::python("the check-beside-python test") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let program = r#"
import sys, diskcache
class Stream:
    def __init__(self):
        self.told = False
    def read(self, n=-1):
        if not self.told:
            # The value file is open by now: tell the parent, then wait.
            print("writing", flush=True)
            self.told = True
        line = sys.stdin.buffer.readline()
        return b"" if line in (b"", b"end\n") else line
cache = diskcache.Cache(sys.argv[1])
print(cache.set("streamed", Stream(), read=True), flush=True)
"#;
    let mut child = Command::new(python)
        .args(["-c", program])
        .arg(dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line, "writing\n");

    let cache = Cache::open(dir.path()).unwrap();
    let warnings = cache.repair().unwrap();
    assert!(
        warnings.iter().any(|w| w.kind == WarningKind::UnknownFile && !w.fixed),
        "{warnings:?}"
    );

    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"half one\nhalf two\nend\n").unwrap();
    drop(stdin);
    line.clear();
    out.read_line(&mut line).unwrap();
    assert_eq!(line, "True\n");
    assert!(child.wait().unwrap().success());
    assert_eq!(
        cache.get_bytes("streamed").unwrap().as_deref(),
        Some(&b"half one\nhalf two\n"[..])
    );
    assert!(cache.check().unwrap().is_empty(), "{:?}", cache.check());
}

#[test]
fn check_fix_leaves_files_that_are_not_value_files() {
    let dir = tempfile::tempdir().unwrap();
    let cache = open(dir.path());
    let notes = dir.path().join("notes.txt");
    fs::write(&notes, b"mine").unwrap();
    age(&notes, Duration::from_secs(48 * 3600));
    let warnings = cache.repair().unwrap();
    assert!(
        warnings.iter().any(|w| w.kind == WarningKind::UnknownFile && !w.fixed),
        "{warnings:?}"
    );
    assert!(notes.exists());
}

// ---- Point 8: only value-file names are ever opened or removed ----

/// Turns the row of `key` into a file-backed row naming `filename`.
fn forge_filename(dir: &Path, key: &str, filename: &str, size: i64) {
    let n = db(dir)
        .execute(
            "UPDATE Cache SET mode = 2, value = NULL, filename = ?2, size = ?3 WHERE key = ?1",
            rusqlite::params![key, filename, size],
        )
        .unwrap();
    assert_eq!(n, 1);
}

#[test]
fn a_row_naming_cache_db_never_removes_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let cache = open(dir.path());
    cache.set("other", &7).unwrap();
    cache.set("k", &1).unwrap();
    let db_len = fs::metadata(dir.path().join("cache.db")).unwrap().len() as i64;
    forge_filename(dir.path(), "k", "cache.db", db_len);

    let err = cache.delete("k").unwrap_err();
    assert!(is_corrupt_naming(&err, &["\"k\"", "cache.db"]), "{err}");
    let err = cache.get_bytes("k").unwrap_err();
    assert!(is_corrupt_naming(&err, &["\"k\""]), "{err}");
    let err = cache.pop::<Vec<u8>>("k").unwrap_err();
    assert!(is_corrupt_naming(&err, &["\"k\""]), "{err}");
    assert!(dir.path().join("cache.db").is_file());
    assert_eq!(cache.get::<i64>("other").unwrap(), Some(7));
    // A set replacing such a row replaces the row only.
    cache.set("k2", &1).unwrap();
    forge_filename(dir.path(), "k2", "cache.db", db_len);
    cache.set("k2", &5).unwrap();
    assert!(dir.path().join("cache.db").is_file());
    assert_eq!(cache.get::<i64>("k2").unwrap(), Some(5));
    assert_eq!(cache.get::<i64>("other").unwrap(), Some(7));

    let warnings = cache.check().unwrap();
    assert!(kinds(&warnings).contains(&WarningKind::BadFileName), "{warnings:?}");
    cache.repair().unwrap();
    assert!(dir.path().join("cache.db").is_file());
    assert_eq!(cache.get::<i64>("other").unwrap(), Some(7));
    assert!(!cache.contains_key("k").unwrap());
    assert!(cache.check().unwrap().is_empty());
}

#[test]
fn rows_naming_paths_outside_or_odd_names_are_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let victim = outside.path().join("victim");
    fs::write(&victim, b"12345").unwrap();
    let cache = open(dir.path());
    let names = [
        format!("../{}/victim", outside.path().file_name().unwrap().to_string_lossy()),
        victim.display().to_string(),
        "ab/cd/notes.txt".to_string(),
        "ab/cd/../../cache.db".to_string(),
        "abc/cd/0123456789abcdef0123456789ab.val".to_string(),
    ];
    for (i, name) in names.iter().enumerate() {
        let key = format!("k{i}");
        cache.set(key.as_str(), &1).unwrap();
        forge_filename(dir.path(), &key, name, 5);
        let err = cache.delete(key.as_str()).unwrap_err();
        assert!(is_corrupt_naming(&err, &[&format!("{key:?}")]), "{name}: {err}");
    }
    assert!(victim.exists());
    assert!(dir.path().join("cache.db").is_file());
    let warnings = cache.check().unwrap();
    let bad = warnings.iter().filter(|w| w.kind == WarningKind::BadFileName).count();
    assert_eq!(bad, names.len(), "{warnings:?}");
}

#[test]
fn a_file_named_by_two_rows_outlives_the_delete_of_one() {
    let dir = tempfile::tempdir().unwrap();
    let cache = open(dir.path());
    cache.set_bytes("a", b"value of a").unwrap();
    cache.set_bytes("b", b"value of b").unwrap();
    let a_file = filename_of(dir.path(), "a");
    let b_file = filename_of(dir.path(), "b");
    forge_filename(dir.path(), "b", &a_file, 10);
    fs::remove_file(dir.path().join(&b_file)).unwrap();

    let warnings = cache.check().unwrap();
    assert!(kinds(&warnings).contains(&WarningKind::SharedFile), "{warnings:?}");

    assert!(cache.delete("b").unwrap());
    assert_eq!(cache.get_bytes("a").unwrap().as_deref(), Some(&b"value of a"[..]));
    // And the other way round with a pop and a set that replaces.
    forge_filename(dir.path(), "a", &a_file, 10);
    cache.set("c", &1).unwrap();
    forge_filename(dir.path(), "c", &a_file, 10);
    cache.set("c", &2).unwrap();
    assert_eq!(cache.pop::<Vec<u8>>("a").unwrap().as_deref(), Some(&b"value of a"[..]));
    assert!(!dir.path().join(&a_file).exists(), "the last row's removal removes it");
}

// ---- Point 9: a value file far larger than its row ----

const TIB: u64 = 1 << 40;

#[test]
fn a_huge_sparse_value_file_is_corrupt_not_an_abort() {
    let dir = tempfile::tempdir().unwrap();
    let cache = open(dir.path());
    cache.set_bytes("k", b"12345").unwrap();
    let item = cache.push(&serde_bytes::ByteBuf::from(b"queued".to_vec())).unwrap();
    let item_text = item.to_string();
    for key_sql in ["'k'", &item_text] {
        let name: String = db(dir.path())
            .query_row(&format!("SELECT filename FROM Cache WHERE key = {key_sql}"), [], |r| {
                r.get(0)
            })
            .unwrap();
        File::options()
            .write(true)
            .open(dir.path().join(name))
            .unwrap()
            .set_len(TIB)
            .unwrap();
    }

    let err = cache.get_bytes("k").unwrap_err();
    assert!(is_corrupt_naming(&err, &["\"k\""]), "{err}");
    let err = cache.pop::<Vec<u8>>("k").unwrap_err();
    assert!(is_corrupt_naming(&err, &["\"k\""]), "{err}");
    let err = cache.read("k").unwrap_err();
    assert!(matches!(err, Error::Corrupt(_)), "{err}");
    let err = cache.pull::<serde_bytes::ByteBuf>().unwrap_err();
    assert!(matches!(err, Error::Corrupt(_)), "{err}");
    // Nothing was taken.
    assert!(cache.contains_key("k").unwrap());
    assert!(cache.contains_key(item.clone()).unwrap());

    let warnings = cache.check().unwrap();
    let wrong = warnings.iter().filter(|w| w.kind == WarningKind::WrongFileSize).count();
    assert_eq!(wrong, 2, "{warnings:?}");
    // The repair never takes the file's length for the value's size: the
    // item is damaged, and it goes.
    cache.repair().unwrap();
    assert_eq!(cache.get_bytes("k").unwrap(), None);
    assert_eq!(cache.pull::<serde_bytes::ByteBuf>().unwrap(), None);
    assert!(cache.volume().unwrap() < TIB);
    assert!(cache.check().unwrap().is_empty(), "{:?}", cache.check());
}

// ---- Point 11: sizes near 2^62 ----

#[test]
fn sizes_near_2_to_the_62_are_reported_and_repaired() {
    let dir = tempfile::tempdir().unwrap();
    let cache = open(dir.path());
    cache.set("inline1", &1).unwrap();
    cache.set("inline2", &2).unwrap();
    cache.set_bytes("file", b"0123456789").unwrap();
    let huge: i64 = 1 << 62;
    db(dir.path())
        .execute(
            "UPDATE Cache SET size = ?1 WHERE key IN ('inline1', 'inline2', 'file')",
            [huge],
        )
        .unwrap();

    let warnings = cache.check().unwrap();
    assert!(!warnings.is_empty());
    assert!(warnings.iter().all(|w| !w.fixed));
    let warnings = cache.repair().unwrap();
    assert!(warnings.iter().any(|w| w.fixed), "{warnings:?}");
    assert!(cache.check().unwrap().is_empty(), "{:?}", cache.check());
    cache.set("after", &3).unwrap();
    cache.stats().unwrap();
    assert!(cache.volume().unwrap() < 1 << 40);
    assert_eq!(cache.get::<i64>("inline1").unwrap(), Some(1));
}

#[test]
fn set_stats_and_volume_survive_a_huge_size_total() {
    let dir = tempfile::tempdir().unwrap();
    let cache = open(dir.path());
    cache.set("a", &1).unwrap();
    cache.set("b", &2).unwrap();
    db(dir.path())
        .execute("UPDATE Cache SET size = ?1", [i64::MAX / 2 + 10])
        .unwrap();
    // The size total went past i64 (SQLite made it a REAL).
    cache.set("c", &3).unwrap();
    cache.stats().unwrap();
    cache.volume().unwrap();
    cache.repair().unwrap();
    assert!(cache.check().unwrap().is_empty());
}

// ---- Point 13: a column of the wrong type ----

#[test]
fn a_text_mode_names_the_key_and_the_column() {
    let dir = tempfile::tempdir().unwrap();
    let cache = open(dir.path());
    cache.set("k", &1).unwrap();
    cache.set("ok", &2).unwrap();
    db(dir.path())
        .execute("UPDATE Cache SET mode = 'one' WHERE key = 'k'", [])
        .unwrap();
    let err = cache.get::<i64>("k").unwrap_err();
    assert!(is_corrupt_naming(&err, &["\"k\"", "mode"]), "{err}");
    let err = cache.pop::<i64>("k").unwrap_err();
    assert!(is_corrupt_naming(&err, &["\"k\"", "mode"]), "{err}");
    let err = cache.incr("k", 1, 0).unwrap_err();
    assert!(is_corrupt_naming(&err, &["\"k\"", "mode"]), "{err}");
    assert_eq!(cache.get::<i64>("ok").unwrap(), Some(2));

    let warnings = cache.check().unwrap();
    let bad: Vec<_> = warnings.iter().filter(|w| w.kind == WarningKind::BadColumn).collect();
    assert_eq!(bad.len(), 1, "{warnings:?}");
    assert!(
        bad[0].message.contains("\"k\"") && bad[0].message.contains("mode"),
        "{warnings:?}"
    );
    // repair() leaves the row (its value may still be wanted); delete works.
    let warnings = cache.repair().unwrap();
    assert!(warnings.iter().any(|w| w.kind == WarningKind::BadColumn && !w.fixed));
    assert!(cache.delete("k").unwrap());
    assert!(cache.check().unwrap().is_empty());
}

#[test]
fn a_text_mode_in_a_queue_names_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let cache = open(dir.path());
    let key = cache.push(&1).unwrap();
    db(dir.path()).execute("UPDATE Cache SET mode = 'x'", []).unwrap();
    let err = cache.pull::<i64>().unwrap_err();
    assert!(is_corrupt_naming(&err, &[&key.to_string(), "mode"]), "{err}");
    let err = cache.peek::<i64>().unwrap_err();
    assert!(is_corrupt_naming(&err, &[&key.to_string(), "mode"]), "{err}");
    assert!(cache.contains_key(key).unwrap());
}

// ---- Point 7: new value folders (and the rename) are synced before the row commits ----

const ROLE: &str = "DISKQ_HOSTILE_ROLE";

/// The child of [`new_value_folders_are_synced_before_the_row_commits`]:
/// one file-backed write into a new cache, run under `strace`.
#[test]
fn sync_child() {
    if std::env::var(ROLE).as_deref() != Ok("sync") {
        return;
    }
    let dir = PathBuf::from(std::env::var("DISKQ_HOSTILE_DIR").unwrap());
    let cache = open(&dir);
    cache.set_bytes("k", b"a value in its own file").unwrap();
}

/// Traced with `strace -f -y` (each descriptor shown with its path): the
/// write must fsync the cache folder after making `ab`, `ab` after making
/// `ab/cd`, and `ab/cd` after renaming the value file into it, all before
/// the row's commit reaches the write-ahead log. Without strace (or
/// without ptrace rights) it says so and skips, except under CI.
#[cfg(target_os = "linux")]
#[test]
fn new_value_folders_are_synced_before_the_row_commits() {
    use std::process::Command;
    let usable = Command::new("strace")
        .args(["-qq", "-e", "trace=none", "true"])
        .status()
        .is_ok_and(|s| s.success());
    if !usable {
        assert!(
            std::env::var_os("CI").is_none(),
            "strace is needed (and allowed to trace) under CI"
        );
        eprintln!("skipped: strace is not installed or may not trace here");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = fs::canonicalize(tmp.path()).unwrap().join("cache");
    let log = tmp.path().join("strace.log");
    let status = Command::new("strace")
        .args(["-f", "-y", "-qq", "-o"])
        .arg(&log)
        .args([
            "-e",
            "trace=mkdir,mkdirat,rename,renameat,renameat2,link,linkat,fsync,fdatasync,pwrite64,write",
        ])
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", "sync_child", "--test-threads=1"])
        .env(ROLE, "sync")
        .env("DISKQ_HOSTILE_DIR", &dir)
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let name = filename_of(&dir, "k");
    let (top, folder) = (dir.join(&name[..2]), dir.join(&name[..5]));
    let file = dir.join(&name);
    let lines: Vec<String> = fs::read_to_string(&log).unwrap().lines().map(str::to_owned).collect();
    let find = |from: usize, what: &dyn Fn(&str) -> bool| -> Option<usize> {
        lines.iter().skip(from).position(|l| what(l)).map(|i| i + from)
    };
    let synced = |path: &Path| {
        let fd = format!("</{}>)", path.display().to_string().trim_start_matches('/'));
        move |l: &str| (l.contains("fsync(") || l.contains("fdatasync(")) && l.contains(&fd)
    };
    let made = |path: &Path| {
        let quoted = format!("\"{}\"", path.display());
        move |l: &str| l.contains("mkdir") && l.contains(&quoted) && l.trim_end().ends_with("= 0")
    };
    let show = || lines.join("\n");
    let made_top = find(0, &made(&top)).unwrap_or_else(|| panic!("no mkdir of {}:\n{}", top.display(), show()));
    find(made_top, &synced(&dir)).unwrap_or_else(|| panic!("the cache folder is not synced after mkdir:\n{}", show()));
    let made_folder =
        find(made_top, &made(&folder)).unwrap_or_else(|| panic!("no mkdir of {}:\n{}", folder.display(), show()));
    find(made_folder, &synced(&top))
        .unwrap_or_else(|| panic!("{} is not synced after mkdir:\n{}", top.display(), show()));
    let file_quoted = format!("\"{}\"", file.display());
    let renamed = find(made_folder, &|l: &str| {
        (l.contains("rename") || l.contains("link")) && l.contains(&file_quoted)
    })
    .unwrap_or_else(|| panic!("no rename to {}:\n{}", file.display(), show()));
    let folder_synced = find(renamed, &synced(&folder))
        .unwrap_or_else(|| panic!("{} is not synced after the rename:\n{}", folder.display(), show()));
    let wal = format!(
        "</{}>",
        dir.join("cache.db-wal").display().to_string().trim_start_matches('/')
    );
    let committed = find(renamed, &|l: &str| l.contains("pwrite64(") && l.contains(&wal))
        .unwrap_or_else(|| panic!("no write of the row to the WAL:\n{}", show()));
    assert!(
        folder_synced < committed,
        "the row committed before its folder was synced:\n{}",
        show()
    );
}

// ---- Running leases read from rows of any shape ----

/// Lease and job rows that no diskq wrote (counts and deadlines out of
/// range, an item that is gone) are listed as far as they go or left out;
/// a row whose columns have the wrong type is an error, not a panic; and
/// nothing changes.
#[test]
fn running_leases_of_odd_rows_are_listed_or_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cache = open(dir.path());
    cache.push("job").unwrap();
    let lease = cache
        .lease::<String>(&diskq::LeaseOptions::new(Duration::from_secs(60)))
        .unwrap()
        .expect("queued");
    let conn = db(dir.path());
    // Out of range, but its item is there: listed, clamped.
    let odd = "diskq-lease-kffffffffffffffff-1";
    cache.set(odd, "odd").unwrap();
    let item: i64 = conn
        .query_row("SELECT rowid FROM Cache WHERE key = ?1", [odd], |r| r.get(0))
        .unwrap();
    conn.execute(
        "INSERT INTO DiskqLease (key, queue, deadline, deliveries, token, item) \
         VALUES (?1, '', -5.0, 9223372036854775807, 1, ?2)",
        rusqlite::params![odd, item],
    )
    .unwrap();
    // Its item gone: not listed (an ack of it finds nothing either).
    conn.execute(
        "INSERT INTO DiskqLease (key, queue, deadline, deliveries, token, item) \
         VALUES ('diskq-lease-keeeeeeeeeeeeeeee-2', '', 1.0, 1, 1, 999999)",
        [],
    )
    .unwrap();
    let running = cache.running_leases(None, 10).unwrap();
    assert_eq!(running.len(), 2, "{running:?}");
    assert_eq!(running[0].key, diskq::Key::from(odd));
    assert_eq!(running[0].deadline, SystemTime::UNIX_EPOCH);
    assert_eq!((running[0].deliveries, running[0].size), (u32::MAX, 3));
    assert_eq!(running[1].deadline, lease.deadline());

    // The wrong types, in a lease row and in a job row.
    let rows = |conn: &rusqlite::Connection, table: &str| -> i64 {
        conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .unwrap()
    };
    conn.execute("UPDATE DiskqLease SET deadline = 'soon' WHERE key = ?1", [odd])
        .unwrap();
    let before = rows(&conn, "DiskqLease");
    let err = cache.running_leases(None, 10).unwrap_err();
    assert!(is_corrupt_naming(&err, &["DiskqLease", "deadline"]), "{err}");
    assert_eq!(rows(&conn, "DiskqLease"), before);
    conn.execute("DELETE FROM DiskqLease WHERE key = ?1", [odd]).unwrap();

    cache
        .push_with(&"urgent", &diskq::PushOptions::new().priority(1).prefix("jobs"))
        .unwrap();
    let job = cache
        .lease::<String>(&diskq::LeaseOptions::new(Duration::from_secs(60)).prefix("jobs"))
        .unwrap()
        .expect("the job");
    assert_eq!(cache.running_leases(Some("jobs"), 10).unwrap().len(), 1);
    conn.execute("UPDATE DiskqJob SET deliveries = 'many'", []).unwrap();
    let err = cache.running_leases(Some("jobs"), 10).unwrap_err();
    assert!(is_corrupt_naming(&err, &["DiskqJob", "deliveries"]), "{err}");
    conn.execute("UPDATE DiskqJob SET deliveries = 1", []).unwrap();
    assert!(job.ack().unwrap());
    assert!(lease.ack().unwrap());
}
