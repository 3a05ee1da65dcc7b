//! The tool's reading commands (`stats`, `get`, `keys`, `len`, `peek`,
//! `leases`, `dead-letters`, `check` without `--fix`) leave a directory
//! byte for byte as it was: every file's name, length, contents and
//! modification time, and every folder's, are the same before and after. On a python-diskcache directory (installed
//! from PyPI into `target/pyenv`) and on one diskq made.
//!
//! Without Python (or PyPI) the python-diskcache test skips with a message,
//! except under `CI=true`, where it fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "support/pyenv.rs"]
mod pyenv;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use common::{arg, diskq};
use diskq::{Cache, EvictionPolicy};

/// A file's length, contents and modification time; a folder's time.
type Entry = (Option<Vec<u8>>, u64, SystemTime);

/// Every file and folder under `dir` (not `dir` itself, whose modification
/// time changes when SQLite makes and removes its log files), by path.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Entry> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Entry>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let meta = fs::symlink_metadata(&path).unwrap();
            let name = path.strip_prefix(root).unwrap().to_path_buf();
            let contents = meta.is_file().then(|| fs::read(&path).unwrap());
            out.insert(name, (contents, meta.len(), meta.modified().unwrap()));
            if meta.is_dir() {
                walk(root, &path, out);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// Runs every reading command, plain and `--json`, and checks that the
/// directory is unchanged after each.
fn read_with_every_command(dir: &Path) {
    let d = arg(dir);
    let before = snapshot(dir);
    let names: Vec<_> = before.keys().collect();
    assert!(
        !before.contains_key(Path::new("cache.db-wal")),
        "closed cleanly: {names:?}"
    );
    let runs: &[&[&str]] = &[
        &["stats", d],
        &["stats", d, "--json"],
        &["get", d, "text"],
        &["get", d, "text", "--json"],
        &["get", d, "big-bytes"],
        &["get", d, "int"],
        &["keys", d],
        &["keys", d, "--json"],
        &["len", d],
        &["check", d],
        &["check", d, "--json"],
        &["peek", d],
        &["dead-letters", d],
        &["dead-letters", d, "--list"],
        &["leases", d],
        &["leases", d, "--json"],
    ];
    for args in runs {
        diskq(args).ok();
        let after = snapshot(dir);
        assert_eq!(
            after.keys().collect::<Vec<_>>(),
            names,
            "diskq {args:?} added or removed a file"
        );
        assert!(after == before, "diskq {args:?} changed a file");
    }
    diskq(&["get", d, "missing"]).absent();
    assert!(snapshot(dir) == before, "a get of a missing key changed a file");
}

#[test]
fn reading_commands_leave_a_python_diskcache_directory_as_it_was() {
    let Some(python) = pyenv::python("the read-only commands on a python-diskcache directory") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/read_only.py");
    let out = Command::new(python).arg(script).arg(tmp.path()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    read_with_every_command(tmp.path());
}

#[test]
fn reading_commands_leave_a_diskq_directory_as_it_was() {
    let tmp = tempfile::tempdir().unwrap();
    {
        let cache = Cache::builder()
            .statistics(true)
            .eviction_policy(EvictionPolicy::LeastRecentlyUsed)
            .min_file_size(1024)
            .open(tmp.path())
            .unwrap();
        cache.set("text", "héllo").unwrap();
        cache.set("int", &42).unwrap();
        cache.set_bytes("big-bytes", &vec![7u8; 4096]).unwrap();
        cache.push("first").unwrap();
        // A running lease of a plain item and of a job, for `leases`.
        cache.push("second").unwrap();
        cache
            .push_with(&"urgent", &diskq::PushOptions::new().priority(1))
            .unwrap();
        let opts = diskq::LeaseOptions::new(std::time::Duration::from_secs(3600));
        for _ in 0..2 {
            let lease = cache.lease::<String>(&opts).unwrap().expect("queued");
            drop(lease); // still running: dropping a lease does not end it
        }
        assert_eq!(cache.running_leases(None, 10).unwrap().len(), 2);
    }
    read_with_every_command(tmp.path());
}
