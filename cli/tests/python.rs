//! The tool on a directory made by the real python-diskcache (installed from
//! PyPI into the workspace's `target/pyenv`, as the library's interop tests
//! do): every command, scalar and bytes values, value files, queues, and a
//! pickle reported as one. Then Python reads what the tool wrote.
//!
//! Without Python (or PyPI) the test skips with a message, except under
//! `CI=true`, where it fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
// A copy of the library's `tests/support/pyenv.rs`: the published tool
// crate cannot reach outside its folder. `the_pyenv_copy_matches_the_library`
// keeps the two the same.
#[path = "support/pyenv.rs"]
mod pyenv;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{arg, diskq, diskq_with_stdin};
use serde_json::json;

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python").join(name)
}

/// The venv's python with diskcache installed, in the workspace's
/// `target/pyenv`, shared with the library's interop tests.
fn python() -> Option<PathBuf> {
    pyenv::python("the python-diskcache test of the diskq tool")
}

fn run_python(python: &Path, name: &str, dir: &Path) -> String {
    let out = Command::new(python).arg(script(name)).arg(dir).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{name} failed ({}):\nstdout: {stdout}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn every_command_works_on_a_python_diskcache_directory() {
    let Some(python) = python() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("py");
    let d = arg(&dir);
    let written: usize = run_python(&python, "writes.py", &dir).trim().parse().unwrap();
    assert_eq!(written, 14);

    // Reads: every kind as it is, and as JSON.
    assert_eq!(diskq(&["get", d, "text"]).ok().text(), "héllo wörld");
    assert_eq!(diskq(&["get", d, "bytes"]).ok().stdout, b"\x00\x01binary\xff");
    assert_eq!(diskq(&["get", d, "int"]).ok().text(), "-1234567890123\n");
    assert_eq!(diskq(&["get", d, "float"]).ok().text(), "2.5\n");
    assert_eq!(diskq(&["get", d, "--int-key", "-7"]).ok().text(), "int key");
    let big: Vec<u8> = (0..200).flat_map(|_| 0..=255u8).collect();
    assert_eq!(diskq(&["get", d, "big-bytes"]).ok().stdout, big);
    assert_eq!(diskq(&["get", d, "big-text"]).ok().text(), "ü".repeat(40000));
    for (key, kind, value) in [
        ("text", "text", json!("héllo wörld")),
        ("bytes", "bytes", json!("AAFiaW5hcnn/")),
        ("int", "int", json!(-1234567890123i64)),
        ("float", "float", json!(2.5)),
    ] {
        assert_eq!(
            diskq(&["get", d, key, "--json"]).ok().json(),
            json!({ "key": key, "kind": kind, "value": value })
        );
    }
    assert_eq!(
        diskq(&["--json", "get", d, "big-text"]).ok().json()["value"],
        json!("ü".repeat(40000))
    );

    // A pickle is reported as one, in plain and JSON mode, and left alone.
    diskq(&["get", d, "pickled"]).fails(1, "the value of key \"pickled\" is a Python pickle");
    diskq(&["get", d, "pickled", "--json"]).fails(1, "is a Python pickle");
    diskq(&["pull", d, "--prefix", "pickles"]).fails(1, "is a Python pickle");

    // Listing, counting, statistics, checking.
    assert_eq!(diskq(&["len", d]).ok().text(), "14\n");
    let keys = diskq(&["keys", d, "--json"]).ok().json();
    assert_eq!(
        keys,
        json!([
            "text",
            "bytes",
            "int",
            "float",
            -7,
            "big-bytes",
            "big-text",
            "pickled",
            "tagged",
            500000000000000i64,
            500000000000001i64,
            499999999999999i64,
            "jobs-500000000000000",
            "pickles-500000000000000"
        ])
    );
    let stats = diskq(&["stats", d, "--json"]).ok().json();
    assert_eq!(stats["count"], 14);
    assert!(stats["size"].as_u64().unwrap() >= 51_200 + 80_000, "{stats}");
    assert_eq!(stats["settings"]["eviction_policy"], "least-recently-stored");
    assert_eq!(stats["settings"]["disk_min_file_size"], 32768);
    assert_eq!(diskq(&["check", d]).ok().text(), "");

    // The queues Python pushed, in Python's order.
    assert_eq!(diskq(&["pull", d]).ok().text(), "zeroth");
    assert_eq!(diskq(&["pull", d, "--back"]).ok().text(), "second");
    assert_eq!(
        diskq(&["pull", d, "--json"]).ok().json(),
        json!({ "key": 500000000000000i64, "kind": "text", "value": "first" })
    );
    diskq(&["pull", d]).absent();
    assert_eq!(diskq(&["pull", d, "--prefix", "jobs"]).ok().text(), "job-1");

    // Writes, which Python then reads.
    diskq(&["set", d, "from-cli", "written by diskq"]).ok();
    let stdin: Vec<u8> = (0..4).flat_map(|_| 0..=255u8).collect();
    diskq_with_stdin(&["set", d, "stdin", "-"], Some(&stdin)).ok();
    diskq(&["set", d, "--int-key", "41", "int key from diskq"]).ok();
    diskq_with_stdin(&["push", d, "-", "--prefix", "cli"], Some(b"pushed bytes")).ok();
    run_python(&python, "reads.py", &dir);

    // Removal commands.
    assert_eq!(diskq(&["evict", d, "group-a"]).ok().text(), "1\n");
    diskq(&["delete", d, "text"]).ok();
    diskq(&["get", d, "text"]).absent();
    assert_eq!(diskq(&["expire", d]).ok().text(), "0\n");
    let left = diskq(&["len", d]).ok().text().trim().parse::<usize>().unwrap();
    assert_eq!(diskq(&["clear", d]).ok().text(), format!("{left}\n"));
    diskq(&["check", d]).ok();
    assert_eq!(diskq(&["len", d]).ok().text(), "0\n");
}

#[test]
fn python_opens_the_queues_and_culled_counts_the_tool_made() {
    let Some(python) = python() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let queue = tmp.path().join("queue");
    let q = arg(&queue);
    diskq(&["push", q, "from the tool"]).ok();
    let cache = tmp.path().join("cache");
    let c = arg(&cache);
    diskq(&["set", c, "k", "v"]).ok();
    drop(diskq::Cache::builder().size_limit(1).open(c).unwrap());
    for i in 0..3 {
        diskq(&["set", c, &format!("k{i}"), "v"]).ok();
    }
    let culled = diskq(&["stats", c, "--json"]).ok().json()["culled"].clone();
    assert!(culled.as_u64().unwrap() >= 3, "{culled}");

    let out = Command::new(&python)
        .arg(script("settings_rows.py"))
        .args([&queue, &cache])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout, format!("none\n2\nleast-recently-stored {culled}\n"));
    // Python's open wrote the rows back unchanged.
    assert_eq!(diskq(&["stats", c, "--json"]).ok().json()["culled"], culled);
    assert_eq!(diskq(&["pull", q]).ok().text(), "from the tool");
    assert_eq!(diskq(&["pull", q]).ok().text(), "from python");
}

#[test]
fn a_python_fanout_cache_is_used_across_its_shards() {
    let Some(python) = python() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("fanout");
    let d = arg(&root);
    run_python_args(&python, "fanout.py", &[d, "write"]);

    // Every key is found in the shard Python's hash put it in.
    assert_eq!(
        diskq(&["len", d]).ok().text(),
        "21
"
    );
    assert_eq!(diskq(&["stats", d, "--json"]).ok().json()["shards"], 4);
    for i in 0..10 {
        assert_eq!(
            diskq(&["get", d, &format!("text-{i}")]).ok().text(),
            format!("value {i}")
        );
        assert_eq!(
            diskq(&["get", d, "--int-key", &i.to_string()]).ok().text(),
            format!("{}\n", i * 10)
        );
    }
    assert_eq!(diskq(&["keys", d]).ok().text().lines().count(), 21);

    // What the tool writes, Python finds.
    for i in 0..10 {
        diskq(&["set", d, &format!("from-cli-{i}"), &format!("cli {i}")]).ok();
    }
    assert_eq!(diskq(&["incr", d, "hits", "3"]).ok().text(), "8\n");
    diskq(&["delete", d, "--int-key", "3"]).ok();
    run_python_args(&python, "fanout.py", &[d, "read"]);
}

fn run_python_args(python: &Path, name: &str, args: &[&str]) {
    let out = Command::new(python).arg(script(name)).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{name} failed:\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The copy of `pyenv.rs` in `cli/tests/support/` is the library's, byte
/// for byte (checked in the repository; the published crate has only its own).
#[test]
fn the_pyenv_copy_matches_the_library() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let library = manifest.join("../tests/support/pyenv.rs");
    if !library.exists() {
        eprintln!("skipping: outside the repository, only this crate's copy exists");
        return;
    }
    let copy = std::fs::read(manifest.join("tests/support/pyenv.rs")).unwrap();
    assert!(
        std::fs::read(&library).unwrap() == copy,
        "cli/tests/support/pyenv.rs differs from tests/support/pyenv.rs: copy the library's over it"
    );
}
