//! Faults from outside: the disk fills (a file-size limit, and a real
//! 4 MiB file system), the directory becomes read-only, value files are
//! deleted or truncated behind diskq's back, the database file is
//! overwritten in the middle. Each must give a clear error (never a panic)
//! and leave what was stored readable; `repair()` must bring the
//! directory back to a consistent state, or, for a database page SQLite
//! cannot rebuild, fail with `Error::Corrupt` naming the file.
//!
//! The limits, mounts and users are set on child processes (the test
//! binary run again with a role in an environment variable) through `sh`,
//! `prlimit`, `unshare` and `setpriv` from util-linux, so the tests need no
//! `unsafe` and no extra crate. As root (as CI runs) the read-only test
//! runs its child as `nobody`; mounting needs root, and elsewhere that one
//! test says why it skips (it never skips under CI).
#![allow(clippy::unwrap_used)]
#![cfg(target_os = "linux")]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use diskq::{Cache, Error, WarningKind};

#[path = "support/chain.rs"]
#[allow(dead_code)]
mod support_chain;
use support_chain::chain;

const KIB: usize = 1024;

/// Values stored before a fault; all must be readable after it.
fn seed(cache: &Cache) {
    for i in 0..20 {
        cache.set(format!("small{i}"), &format!("value {i}")).unwrap();
        cache.set_bytes(format!("file{i}"), &file_value(i)).unwrap();
        cache.push(&i).unwrap();
    }
}

fn file_value(i: usize) -> Vec<u8> {
    (0..20 * KIB).map(|j| (i * 31 + j) as u8).collect()
}

fn assert_seeded(cache: &Cache) {
    for i in 0..20 {
        assert_eq!(
            cache.get::<String>(format!("small{i}")).unwrap(),
            Some(format!("value {i}"))
        );
        assert_eq!(
            cache.get_bytes(format!("file{i}")).unwrap(),
            Some(file_value(i)),
            "file{i}"
        );
    }
    let queued: Vec<usize> = diskq::Deque::<usize>::from_cache(cache.clone())
        .iter()
        .unwrap()
        .map(|v| v.unwrap())
        .collect();
    assert_eq!(queued, (0..20).collect::<Vec<_>>());
}

fn open(dir: &Path) -> Cache {
    Cache::builder().min_file_size(4 * KIB as u64).open(dir).unwrap()
}

/// Runs this test binary's test `role` in a child, through `wrapper`
/// (a command and its arguments put before the binary).
fn run_child(role: &str, wrapper: &[&str], envs: &[(&str, &Path)]) -> Output {
    let exe = std::env::current_exe().unwrap();
    let mut cmd = Command::new(wrapper[0]);
    cmd.args(&wrapper[1..])
        .arg(&exe)
        .args(["--exact", role, "--nocapture", "--test-threads=1"])
        .env("DISKQ_FAULT_ROLE", role);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {wrapper:?}: {e}"));
    assert!(
        out.status.success(),
        "child {role} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn is_role(role: &str) -> bool {
    std::env::var("DISKQ_FAULT_ROLE").as_deref() == Ok(role)
}

fn dir_env() -> PathBuf {
    PathBuf::from(std::env::var("DISKQ_FAULT_DIR").unwrap())
}

/// `repair()` repairs, a second `check` finds nothing, and no file is
/// left that no row names.
fn assert_repaired(cache: &Cache) -> Vec<diskq::Warning> {
    // The faulting writer is gone: its orphans need no grace period.
    let no_grace = diskq::CheckOptions::new()
        .fix(true)
        .orphan_grace(std::time::Duration::ZERO);
    let warnings = cache.check_with(&no_grace).unwrap();
    let again = cache.check().unwrap();
    assert!(again.is_empty(), "repair() left: {again:?} (it found {warnings:?})");
    warnings
}

// ------------------------------------------------------------ disk full

/// The file-size limit the child runs under: the value files and the
/// database's write-ahead log cannot grow past it.
const FSIZE: usize = 1024 * KIB;

/// Under a file-size limit (with SIGXFSZ ignored, so a write past it
/// fails with EFBIG instead of killing the process): large values, a
/// streamed value and a growing database each fail with a clear error;
/// what was stored stays readable in the same process.
#[test]
fn disk_full_child() {
    if !is_role("disk_full_child") {
        return;
    }
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap();
    let line = limits.lines().find(|l| l.starts_with("Max file size")).unwrap();
    assert!(line.contains(&FSIZE.to_string()), "the limit is not set: {line}");
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let ignored = status.lines().find_map(|l| l.strip_prefix("SigIgn:")).unwrap();
    let ignored = u64::from_str_radix(ignored.trim(), 16).unwrap();
    assert!(ignored & (1 << (25 - 1)) != 0, "SIGXFSZ is not ignored");

    let cache = open(&dir_env());
    assert_seeded(&cache);

    // A value file larger than the limit.
    let err = cache.set_bytes("file0", &vec![1u8; FSIZE + 1]).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err:?}");
    assert!(chain(&err).contains("too large"), "{}", chain(&err));
    assert_eq!(
        cache.get_bytes("file0").unwrap(),
        Some(file_value(0)),
        "the old value stays"
    );
    // The same, streamed.
    let err = cache
        .set_reader(
            "stream",
            &mut std::io::repeat(7).take_bytes(FSIZE as u64 * 2),
            &Default::default(),
        )
        .unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err:?}");
    assert!(!cache.contains_key("stream").unwrap());

    // Fill the database (inline values) until SQLite cannot grow its files.
    let mut stored = 0usize;
    let err = loop {
        match cache.set(format!("fill{stored}"), &"f".repeat(3 * KIB)) {
            Ok(()) => stored += 1,
            Err(e) => break e,
        }
        assert!(stored < 100_000, "the file-size limit never hit the database");
    };
    println!("FILLED {stored} {}", chain(&err));
    assert!(
        matches!(err, Error::Sqlite { .. } | Error::Io { .. }),
        "disk full is an SQLite or I/O error: {err:?}"
    );
    assert!(!err.to_string().is_empty());
    // Later writes fail the same way or succeed; reads go on working.
    for i in 0..5 {
        let _ = cache.set(format!("after{i}"), &i);
        let _ = cache.push(&i);
    }
    assert_eq!(cache.get::<String>("small3").unwrap().as_deref(), Some("value 3"));
    assert_eq!(cache.get_bytes("file3").unwrap(), Some(file_value(3)));
    for i in 0..stored {
        assert!(
            cache.contains_key(format!("fill{i}")).unwrap(),
            "fill{i} acknowledged, then lost"
        );
    }
}

/// Helper: `Read::take` on `io::Repeat` without importing the trait everywhere.
trait TakeBytes {
    fn take_bytes(self, n: u64) -> std::io::Take<std::io::Repeat>;
}
impl TakeBytes for std::io::Repeat {
    fn take_bytes(self, n: u64) -> std::io::Take<std::io::Repeat> {
        std::io::Read::take(self, n)
    }
}

#[test]
fn a_full_disk_is_a_clear_error_and_check_repairs() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cache");
    seed(&open(&dir));
    // `trap '' XFSZ` makes the signal ignored, which survives exec.
    let limit = format!("--fsize={FSIZE}");
    let out = run_child(
        "disk_full_child",
        &["sh", "-c", "trap '' XFSZ; exec prlimit \"$0\" \"$@\"", &limit],
        &[("DISKQ_FAULT_DIR", &dir)],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let filled: usize = stdout
        .lines()
        .find_map(|l| l.split("FILLED ").nth(1))
        .unwrap_or_else(|| panic!("no FILLED line: {stdout}"))
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    eprintln!("disk full after {filled} writes: {stdout}");

    let cache = open(&dir);
    // The failed writes left nothing behind: no temporary file, no folder.
    let warnings = cache.check().unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_seeded(&cache);
    for i in 0..filled {
        assert!(
            cache.contains_key(format!("fill{i}")).unwrap(),
            "fill{i} lost after reopen"
        );
    }
    // With room again, writes work.
    cache.set_bytes("file0", &vec![1u8; FSIZE + 1]).unwrap();
    assert_eq!(cache.get_bytes("file0").unwrap().map(|v| v.len()), Some(FSIZE + 1));
}

/// A real full file system: a 4 MiB tmpfs mounted over the cache directory
/// in a private mount namespace (so it vanishes with the child). Runs
/// inside that namespace from start to end.
#[test]
fn full_file_system_child() {
    if !is_role("full_file_system_child") {
        return;
    }
    let dir = dir_env();
    let out = Command::new("df")
        .arg("-Pk")
        .arg(dir.parent().unwrap())
        .output()
        .unwrap();
    let df = String::from_utf8_lossy(&out.stdout);
    assert!(df.contains("diskq-test"), "the small file system is not mounted: {df}");
    let cache = open(&dir);
    seed(&cache);
    // Ballast beside the cache that an operator can delete to make room again.
    let ballast = dir.with_file_name("ballast");
    std::fs::write(&ballast, vec![0u8; 512 * KIB]).unwrap();

    // Large values until a value file cannot be written.
    let mut big = 0usize;
    let err = loop {
        match cache.set_bytes(format!("big{big}"), &vec![big as u8; 256 * KIB]) {
            Ok(()) => big += 1,
            Err(e) => break e,
        }
        assert!(big < 64, "a 4 MiB file system took {big} values of 256 KiB");
    };
    assert!(matches!(err, Error::Io { .. } | Error::Sqlite { .. }), "{err:?}");
    let why = chain(&err);
    assert!(
        why.contains("space") || why.contains("full"),
        "the message says why: {why}"
    );
    // Small values until the database cannot grow either.
    let mut small = 0usize;
    let err = loop {
        match cache.set(format!("fill{small}"), &"f".repeat(2 * KIB)) {
            Ok(()) => small += 1,
            Err(e) => break e,
        }
        assert!(small < 10_000, "the database never filled the file system");
    };
    println!("FULL after {big} large and {small} small values: {}", chain(&err));
    assert!(matches!(err, Error::Sqlite { .. } | Error::Io { .. }), "{err:?}");
    assert!(!err.to_string().is_empty());
    // A full disk keeps what it had.
    assert_seeded(&cache);
    for i in 0..big {
        assert_eq!(
            cache.get_bytes(format!("big{i}")).unwrap().map(|v| v.len()),
            Some(256 * KIB)
        );
    }
    for i in 0..small {
        assert!(
            cache.contains_key(format!("fill{i}")).unwrap(),
            "fill{i} acknowledged, then lost"
        );
    }
    drop(cache);

    // Room again: nothing was left behind, and writes work.
    std::fs::remove_file(&ballast).unwrap();
    let cache = open(&dir);
    let warnings = cache.check().unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_repaired(&cache);
    assert_seeded(&cache);
    for i in 0..small {
        assert!(
            cache.contains_key(format!("fill{i}")).unwrap(),
            "fill{i} lost after reopen"
        );
    }
    cache.set("after", &1).unwrap();
    cache.set_bytes("after-file", &vec![1u8; 64 * KIB]).unwrap();
    assert_eq!(cache.get::<i64>("after").unwrap(), Some(1));
}

#[test]
fn a_full_file_system_is_a_clear_error_and_loses_nothing() {
    in_small_file_system("full_file_system_child");
}

/// Runs the child test `role` in a private mount namespace with a 4 MiB
/// tmpfs mounted at the parent of `DISKQ_FAULT_DIR`, and echoes its `FULL`
/// line. Skips (outside CI) where mounting is not allowed.
fn in_small_file_system(role: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let mnt = tmp.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let dir = mnt.join("cache");
    let mount = format!(
        "mount -t tmpfs -o size=4m diskq-test {} && exec \"$0\" \"$@\"",
        shell_quote(&mnt)
    );
    let exe = std::env::current_exe().unwrap();
    let out = Command::new("unshare")
        .args(["-m", "sh", "-c", &mount])
        .arg(&exe)
        .args(["--exact", role, "--nocapture", "--test-threads=1"])
        .env("DISKQ_FAULT_ROLE", role)
        .env("DISKQ_FAULT_DIR", &dir)
        .output();
    let out = match out {
        Ok(out) => out,
        Err(e) => panic!("unshare (util-linux) is needed: {e}"),
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() && (stderr.contains("unshare failed") || stderr.contains("mount: ")) {
        // Mounting needs root (CAP_SYS_ADMIN); CI runs as root and never skips.
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "cannot mount a small file system: {stderr}"
        );
        eprintln!("skipping: cannot mount a small file system here: {stderr}");
        return;
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    let line = stdout.lines().find_map(|l| l.split("FULL ").nth(1));
    eprintln!("{}", line.unwrap_or_else(|| panic!("no FULL line: {stdout}")));
    assert_eq!(
        std::fs::read_dir(&mnt).unwrap().count(),
        0,
        "the mount went with the child"
    );
}

/// Bytes available to this user on the file system holding `path` (`df`).
fn available(path: &Path) -> u64 {
    let out = Command::new("df").arg("-Pk").arg(path).output().unwrap();
    let df = String::from_utf8_lossy(&out.stdout);
    let line = df.lines().nth(1).unwrap_or_else(|| panic!("df printed {df}"));
    let kib: u64 = line.split_whitespace().nth(3).unwrap().parse().unwrap();
    kib * 1024
}

fn wal_size(dir: &Path) -> u64 {
    std::fs::metadata(dir.join("cache.db-wal")).map_or(0, |m| m.len())
}

/// A completely full file system, with nothing else to delete: diskq's own
/// `delete` and `clear` still succeed and give the space back, and the
/// write-ahead log does not keep it.
#[test]
fn full_file_system_frees_space_child() {
    if !is_role("full_file_system_frees_space_child") {
        return;
    }
    let dir = dir_env();
    let cache = open(&dir);
    seed(&cache);
    let mut big = 0usize;
    while cache
        .set_bytes(format!("big{big}"), &vec![big as u8; 256 * KIB])
        .is_ok()
    {
        big += 1;
        assert!(big < 64, "a 4 MiB file system took {big} values of 256 KiB");
    }
    let mut small = 0usize;
    let err = loop {
        match cache.set(format!("fill{small}"), &"f".repeat(2 * KIB)) {
            Ok(()) => small += 1,
            Err(e) => break e,
        }
        assert!(small < 10_000, "the database never filled the file system");
    };
    assert!(big > 0 && small > 0, "{big} large, {small} small values");
    let full = available(&dir);
    println!(
        "FULL after {big} large and {small} small values ({full} bytes left, WAL {} bytes): {err}",
        wal_size(&dir)
    );

    // Deleting works on the full file system and frees the value's space.
    assert!(cache.delete("fill0").unwrap(), "fill0");
    assert!(cache.delete("big0").unwrap(), "big0");
    assert!(
        available(&dir) >= full + 256 * KIB as u64,
        "deleting a 256 KiB value freed {} bytes",
        available(&dir).saturating_sub(full)
    );
    assert_seeded(&cache);
    // Full again, then clear.
    while cache.set(format!("refill{small}"), &"f".repeat(2 * KIB)).is_ok() {
        small += 1;
        assert!(small < 20_000, "the database never filled the file system");
    }
    let removed = cache.clear().unwrap();
    assert!(removed >= 2 * 20 + big, "clear removed {removed}");
    assert_eq!(cache.len().unwrap(), 0);
    let wal = wal_size(&dir);
    assert!(wal <= 1 << 20, "the write-ahead log kept {wal} bytes after clear");
    let free = available(&dir);
    assert!(free >= 3 * 1024 * KIB as u64, "clear left only {free} bytes free");
    // And the cache works again.
    seed(&cache);
    assert_seeded(&cache);
    assert_repaired(&cache);
}

#[test]
fn delete_and_clear_free_space_on_a_full_file_system() {
    in_small_file_system("full_file_system_frees_space_child");
}

fn shell_quote(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', "'\\''"))
}

// ------------------------------------------------------------ read-only

fn chmod_tree(path: &Path, dir_mode: u32, file_mode: u32) {
    let meta = std::fs::symlink_metadata(path).unwrap();
    if meta.is_dir() {
        for entry in std::fs::read_dir(path).unwrap() {
            chmod_tree(&entry.unwrap().path(), dir_mode, file_mode);
        }
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(dir_mode)).unwrap();
    } else {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(file_mode)).unwrap();
    }
}

fn chown_tree(path: &Path, uid: u32) {
    std::os::unix::fs::lchown(path, Some(uid), Some(uid)).unwrap();
    if std::fs::symlink_metadata(path).unwrap().is_dir() {
        for entry in std::fs::read_dir(path).unwrap() {
            chown_tree(&entry.unwrap().path(), uid);
        }
    }
}

/// Runs as `nobody` (root ignores permissions): the directory becomes
/// read-only under an open cache, then is opened again read-only.
#[test]
fn read_only_child() {
    if !is_role("read_only_child") {
        return;
    }
    let dir = dir_env();
    let cache = open(&dir);
    assert_seeded(&cache);
    cache.set("before", &1).unwrap();
    chmod_tree(&dir, 0o555, 0o444);
    assert!(
        std::fs::write(dir.join("probe"), b"").is_err(),
        "the directory is still writable: is this running as root?"
    );

    // Under the open cache: a new value file cannot be made.
    let err = cache.set_bytes("new-file", &vec![3u8; 8 * KIB]).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err:?}");
    assert!(chain(&err).contains("ermission denied"), "{}", chain(&err));
    assert_eq!(cache.get_bytes("new-file").unwrap(), None);
    // Small writes may still go through the database's open file; either way no panic.
    let small = cache.set("small-while-open", &2);
    println!("SMALL {}", small.is_ok());
    assert_seeded(&cache);
    drop(cache);

    // Opened again: reads work or the open fails clearly; writes fail clearly.
    match Cache::open(&dir) {
        Ok(cache) => {
            println!("REOPEN ok");
            assert_seeded(&cache);
            let err = cache.set("after", &3).unwrap_err();
            println!("WRITE {}", chain(&err));
            assert!(matches!(err, Error::Sqlite { .. } | Error::Io { .. }), "{err:?}");
            assert!(cache.set_bytes("file-after", &vec![3u8; 8 * KIB]).is_err());
            let warnings = cache.check();
            println!("CHECK {warnings:?}");
        }
        Err(err) => {
            println!("REOPEN {}", chain(&err));
            assert!(matches!(err, Error::Sqlite { .. } | Error::Io { .. }), "{err:?}");
            assert!(
                chain(&err).contains("cache"),
                "the message names the place: {}",
                chain(&err)
            );
        }
    }
}

#[test]
fn a_read_only_directory_is_a_clear_error_and_loses_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let dir = tmp.path().join("cache");
    seed(&open(&dir));
    // A directory we made is ours: owned by 0 when we run as root.
    let root = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(&dir).unwrap()) == 0;
    let out = if root {
        // Give the directory to `nobody`, who can then lose the right to write it.
        chown_tree(&dir, 65534);
        run_child(
            "read_only_child",
            &["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"],
            &[("DISKQ_FAULT_DIR", &dir)],
        )
    } else {
        run_child("read_only_child", &["env"], &[("DISKQ_FAULT_DIR", &dir)])
    };
    eprintln!("{}", String::from_utf8_lossy(&out.stdout));

    chmod_tree(&dir, 0o755, 0o644);
    let cache = open(&dir);
    let warnings = cache.check().unwrap();
    assert!(warnings.is_empty(), "the failed writes left {warnings:?}");
    assert_seeded(&cache);
    assert_eq!(cache.get::<i64>("before").unwrap(), Some(1));
    assert_eq!(cache.get_bytes("new-file").unwrap(), None);
}

// ------------------------------------------------- value files behind our back

/// Path of the value file of `key` (text or integer), from `cache.db`.
fn value_path(cache: &Cache, key: impl rusqlite::ToSql) -> PathBuf {
    let dir = cache.directory();
    let conn = rusqlite::Connection::open(dir.join("cache.db")).unwrap();
    let name: String = conn
        .query_row("SELECT filename FROM Cache WHERE key = ?1 AND raw = 1", [key], |r| {
            r.get(0)
        })
        .unwrap();
    dir.join(name)
}

#[test]
fn a_deleted_value_file_is_a_miss_that_check_reports_and_fixes() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = open(tmp.path());
    seed(&cache);
    #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
    struct Big {
        text: String,
    }
    cache
        .set(
            "struct",
            &Big {
                text: "s".repeat(8 * KIB),
            },
        )
        .unwrap();
    let queue_file_key = cache.push(&"q".repeat(8 * KIB)).unwrap();
    for key in ["file5", "struct"] {
        std::fs::remove_file(value_path(&cache, key)).unwrap();
    }
    std::fs::remove_file(value_path(&cache, queue_file_key.as_int().unwrap())).unwrap();

    // A miss, as for a value removed by a concurrent delete: never a hang.
    assert_eq!(cache.get_bytes("file5").unwrap(), None);
    assert!(cache.read("file5").unwrap().is_none());
    assert_eq!(cache.get::<Big>("struct").unwrap(), None);
    assert_eq!(cache.get_bytes("file6").unwrap(), Some(file_value(6)));

    let warnings = cache.check().unwrap();
    let missing = warnings.iter().filter(|w| w.kind == WarningKind::MissingFile).count();
    assert_eq!(missing, 3, "{warnings:?}");
    assert!(warnings.iter().all(|w| !w.fixed));
    let before = cache.len().unwrap();
    let fixed = assert_repaired(&cache);
    assert!(fixed.iter().all(|w| w.fixed), "{fixed:?}");
    assert_eq!(cache.len().unwrap(), before - 3, "the three rows went");
    assert!(!cache.contains_key("file5").unwrap());
    // The queue skips nothing else and returns nothing twice.
    let items: Vec<usize> = std::iter::from_fn(|| cache.pull::<usize>().unwrap().map(|(_, v)| v)).collect();
    assert_eq!(items, (0..20).collect::<Vec<_>>());
    assert!(cache.pull::<String>().unwrap().is_none());
}

#[test]
fn a_truncated_value_file_is_a_clear_error_that_check_reports_and_fixes() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = open(tmp.path());
    seed(&cache);
    #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
    struct Big {
        items: Vec<String>,
    }
    let big = Big {
        items: (0..1000).map(|i| format!("item {i}")).collect(),
    };
    cache.set("struct", &big).unwrap();
    cache.set("text", &"é".repeat(4 * KIB)).unwrap();
    let cut = |key: &str, len: u64| {
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(value_path(&cache, key))
            .unwrap();
        f.set_len(len).unwrap();
    };
    cut("struct", 100);
    // Cut inside a two-byte character: no longer UTF-8.
    cut("text", 4 * KIB as u64 + 1);
    cut("file7", 10);
    // A queue item of bytes in a file, cut too, behind the 20 seeded items.
    let q = cache.push(serde_bytes::Bytes::new(&[9u8; 8 * KIB])).unwrap();
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(value_path(&cache, q.as_int().unwrap()))
        .unwrap();
    f.set_len(5).unwrap();
    for i in 0..20 {
        assert_eq!(cache.pull::<usize>().unwrap().map(|(_, v)| v), Some(i));
    }
    // The damaged item is an error, and stays (a pull that fails takes nothing).
    let err = cache.pull::<serde_bytes::ByteBuf>().unwrap_err();
    assert!(matches!(err, Error::Corrupt(_)), "{err:?}");
    assert!(cache.contains_key(q.clone()).unwrap());

    // The file's length no longer matches its row: a clear error naming the
    // file, for every kind of value and for the streaming reader.
    for err in [
        cache.get::<Big>("struct").unwrap_err(),
        cache.get::<String>("text").unwrap_err(),
        cache.get_bytes("file7").unwrap_err(),
        cache.read("file7").unwrap_err(),
    ] {
        assert!(matches!(err, Error::Corrupt(_)), "{err:?}");
        assert!(err.to_string().contains(".val"), "{err}");
    }
    let listed: Vec<_> = cache.keys().unwrap().collect();
    assert!(listed.iter().all(|k| k.is_ok()), "listing keys reads no value");
    let warnings = cache.check().unwrap();
    let wrong = warnings.iter().filter(|w| w.kind == WarningKind::WrongFileSize).count();
    assert_eq!(wrong, 4, "{warnings:?}");
    assert!(
        warnings
            .iter()
            .any(|w| w.message.contains("has 10 bytes") && w.message.contains("says 20480")),
        "{warnings:?}"
    );
    let size_before = cache.volume().unwrap();
    assert_repaired(&cache);
    assert!(cache.volume().unwrap() < size_before, "the damaged items are gone");
    assert_eq!(
        cache.get_bytes("file8").unwrap(),
        Some(file_value(8)),
        "others untouched"
    );
    // repair() never takes a file of the wrong length as the value: the
    // damaged items are gone (no short value is ever served), the queue
    // moves on.
    assert_eq!(cache.get_bytes("file7").unwrap(), None);
    assert_eq!(cache.get::<Big>("struct").unwrap(), None);
    assert_eq!(cache.get::<String>("text").unwrap(), None);
    assert_eq!(cache.pull::<serde_bytes::ByteBuf>().unwrap(), None);
    // A damaged value can be replaced.
    cache.set("struct", &big).unwrap();
    assert_eq!(cache.get::<Big>("struct").unwrap(), Some(big));
}

// ---------------------------------------------------------- corrupt database

const PAGE: u64 = 4096;

/// A database of `n` rows, checkpointed so that all of it is in `cache.db`.
fn corruptible(dir: &Path) -> u64 {
    let cache = open(dir);
    for i in 0..400 {
        cache
            .set(format!("key{i}"), &format!("value {i} {}", "v".repeat(200)))
            .unwrap();
    }
    seed(&cache);
    drop(cache);
    let conn = rusqlite::Connection::open(dir.join("cache.db")).unwrap();
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .unwrap();
    drop(conn);
    std::fs::metadata(dir.join("cache.db")).unwrap().len() / PAGE
}

fn overwrite_page(db: &Path, page: u64, byte: u8) {
    use std::io::{Seek, SeekFrom, Write};
    let mut f = std::fs::OpenOptions::new().write(true).open(db).unwrap();
    f.seek(SeekFrom::Start(page * PAGE)).unwrap();
    f.write_all(&vec![byte; PAGE as usize]).unwrap();
    f.sync_all().unwrap();
}

fn is_clear(err: &Error) -> bool {
    !err.to_string().is_empty()
        && matches!(
            err,
            Error::Sqlite { .. } | Error::Corrupt(_) | Error::NotADatabase(_) | Error::Decode { .. }
        )
}

/// Overwrites each page past the first in turn (one copy each) with
/// garbage: opening, reading every key, the queue, `len` and `check` give
/// values or clear errors, never a panic; `repair()` either repairs
/// (everything then reads back whole) or fails with `Error::Corrupt`
/// naming the file. (SQLite's VACUUM cannot rebuild a file with a page of
/// garbage, so most of these end in `Corrupt`.)
#[test]
fn a_corrupt_database_gives_clear_errors_and_check_repairs_what_it_can() {
    let tmp = tempfile::tempdir().unwrap();
    let pristine = tmp.path().join("pristine");
    let pages = corruptible(&pristine);
    assert!(pages > 20, "{pages} pages");
    let (mut detected, mut repaired, mut refused_to_open, mut read_errors) = (0, 0, 0, 0);
    for page in 1..pages {
        let dir = tmp.path().join(format!("p{page}"));
        std::fs::create_dir(&dir).unwrap();
        std::fs::copy(pristine.join("cache.db"), dir.join("cache.db")).unwrap();
        for entry in std::fs::read_dir(&pristine).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_dir() {
                copy_tree(&entry.path(), &dir.join(entry.file_name()));
            }
        }
        overwrite_page(&dir.join("cache.db"), page, 0xA5);
        let cache = match Cache::open(&dir) {
            Ok(cache) => cache,
            Err(err) => {
                assert!(is_clear(&err), "page {page}: open: {err:?}");
                refused_to_open += 1;
                continue;
            }
        };
        let mut errors = 0;
        for i in 0..400 {
            match cache.get::<String>(format!("key{i}")) {
                Ok(Some(v)) => assert!(v.starts_with(&format!("value {i} ")), "page {page}: key{i} = {v}"),
                Ok(None) => {}
                Err(err) => {
                    assert!(is_clear(&err), "page {page}: get: {err:?}");
                    errors += 1;
                }
            }
        }
        if let Err(err) = cache.len() {
            assert!(is_clear(&err), "page {page}: len: {err:?}");
        }
        if let Err(err) = cache.keys().map(|keys| keys.count()) {
            assert!(is_clear(&err), "page {page}: keys: {err:?}");
        }
        if errors > 0 {
            read_errors += 1;
        }
        match cache.check() {
            Ok(w) if w.iter().any(|w| w.kind == WarningKind::Integrity) => detected += 1,
            Ok(w) => assert!(errors == 0, "page {page}: reads failed but check found {w:?}"),
            Err(err) => panic!("page {page}: check() failed instead of reporting: {err:?}"),
        }
        match cache.repair() {
            Ok(_) => match cache.check() {
                Ok(w) if w.is_empty() => {
                    // Repaired: everything reads back whole.
                    for i in 0..400 {
                        let v: String = cache.get(format!("key{i}")).unwrap().unwrap();
                        assert!(v.starts_with(&format!("value {i} ")), "page {page}: key{i}");
                    }
                    assert_seeded(&cache);
                    repaired += 1;
                }
                Ok(w) => panic!("page {page}: repair() succeeded but left {w:?}"),
                Err(err) => panic!("page {page}: repair() succeeded, then check failed: {err:?}"),
            },
            Err(err) => {
                // What check cannot repair is reported as such, naming the file.
                assert!(matches!(err, Error::Corrupt(_)), "page {page}: repair(): {err:?}");
                assert!(err.to_string().contains("cache.db"), "{err}");
            }
        }
        drop(cache);
        std::fs::remove_dir_all(&dir).unwrap();
    }
    eprintln!(
        "{} pages corrupted one at a time: open refused {refused_to_open}, reads failed {read_errors}, \
         check detected {detected}, repair() repaired {repaired}",
        pages - 1
    );
    assert!(detected > 0);
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}
