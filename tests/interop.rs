//! Interoperability with the real python-diskcache, installed from PyPI into
//! `target/pyenv`: Python writes and diskq reads, diskq writes and Python
//! reads, and both increment one counter at once.
//!
//! Without Python (or PyPI) the tests skip with a message, except under
//! `CI=true`, where they fail.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/pyenv.rs"]
mod pyenv;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use diskq::{Cache, Deque, Error, Index, Key, PullOptions, PushOptions, SetOptions, Side};

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop").join(name)
}

/// The venv's python with diskcache installed (see `support/pyenv.rs`).
fn python() -> Option<PathBuf> {
    pyenv::python("the python-diskcache interop test")
}

fn run_python(python: &Path, name: &str, args: &[&str]) -> String {
    let out = Command::new(python).arg(script(name)).args(args).output().unwrap();
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
fn diskq_reads_what_python_wrote() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_str().unwrap();
    let written: usize = run_python(&python, "python_writes.py", &[path]).trim().parse().unwrap();

    let cache = Cache::open(dir.path()).unwrap();
    assert_eq!(cache.len().unwrap(), written);
    assert_eq!(cache.get::<String>("text").unwrap().as_deref(), Some("héllo wörld"));
    assert_eq!(
        cache.get_bytes("bytes").unwrap().as_deref(),
        Some(&b"\x00\x01binary\xff"[..])
    );
    assert_eq!(cache.get::<i64>("int").unwrap(), Some(-1234567890123));
    assert_eq!(cache.get::<f64>("float").unwrap(), Some(2.5));
    assert_eq!(cache.get::<String>(-42).unwrap().as_deref(), Some("int key"));
    assert_eq!(cache.get::<String>(-1.5).unwrap().as_deref(), Some("float key"));
    assert_eq!(
        cache.get::<String>(&b"\x00bin"[..]).unwrap().as_deref(),
        Some("bytes key")
    );

    let big: Vec<u8> = (0..200).flat_map(|_| 0..=255u8).collect();
    assert_eq!(cache.get_bytes("big-bytes").unwrap(), Some(big));
    let big_reader = cache.read("big-bytes").unwrap().unwrap();
    assert!(
        big_reader.path().is_some(),
        "python stored 51,200 bytes in a value file"
    );
    assert_eq!(cache.get::<String>("big-text").unwrap(), Some("ü".repeat(40000)));

    let entry = cache.get_entry::<String>("expiring").unwrap().unwrap();
    assert_eq!(entry.value, "soon");
    assert!(entry.expire_time.is_some());
    let entry = cache.get_entry::<i64>("tagged").unwrap().unwrap();
    assert_eq!(entry.tag.as_deref(), Some("group-a"));

    match cache.get::<i64>("pickled") {
        Err(Error::Pickled { key }) => assert_eq!(key, "\"pickled\""),
        other => panic!("a pickle must be refused, got {other:?}"),
    }
    assert!(cache.contains_key("pickled").unwrap(), "a refused pickle is left alone");

    let mut queue = Vec::new();
    while let Some((key, value)) = cache.pull::<String>().unwrap() {
        queue.push((key, value));
    }
    let want: Vec<(Key, String)> = [(499999999999999, "zeroth"), (500000000000000, "first")]
        .into_iter()
        .chain([(500000000000001, "second"), (500000000000002, "third")])
        .map(|(k, v)| (Key::Int(k), v.to_string()))
        .collect();
    assert_eq!(queue, want);
    let jobs = PullOptions::new().prefix("jobs");
    let (key, job) = cache.pull_with::<serde_bytes::ByteBuf>(&jobs).unwrap().unwrap();
    assert_eq!(
        (key, job.into_vec()),
        (Key::from("jobs-500000000000000"), b"job-1".to_vec())
    );
    let (key, _) = cache.pull_with::<serde_bytes::ByteBuf>(&jobs).unwrap().unwrap();
    assert_eq!(key, Key::from("jobs-500000000000001"));

    let warnings = cache.check().unwrap();
    assert!(warnings.is_empty(), "check of a python-made directory: {warnings:?}");
    // diskq and python-diskcache can keep sharing it.
    cache.set("from-rust", "ok").unwrap();
    drop(cache);
    let out = Command::new(&python)
        .args([
            "-c",
            "import sys, diskcache; print(diskcache.Cache(sys.argv[1])['from-rust'])",
            path,
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "ok",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[derive(serde::Deserialize, Debug)]
struct Report {
    problems: Vec<String>,
    warnings: Vec<String>,
    queue: Vec<(i64, String)>,
    jobs: Vec<(String, String)>,
    len: usize,
}

#[test]
fn python_reads_what_diskq_wrote() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path()).unwrap();
    cache.set("text", "héllo wörld").unwrap();
    cache.set_bytes("bytes", b"\x00\x01binary\xff").unwrap();
    cache.set("int", &-1234567890123i64).unwrap();
    cache.set("float", &2.5).unwrap();
    cache.set(-42, "int key").unwrap();
    cache.set(-1.5, "float key").unwrap();
    cache.set(&b"\x00bin"[..], "bytes key").unwrap();
    let big: Vec<u8> = (0..200).flat_map(|_| 0..=255u8).collect();
    cache.set_bytes("big-bytes", &big).unwrap();
    cache.set("big-text", &"ü".repeat(40000)).unwrap();
    cache
        .set_with("expiring", "soon", &SetOptions::new().expire(Duration::from_secs(3600)))
        .unwrap();
    cache.set_with("tagged", &7, &SetOptions::new().tag("group-a")).unwrap();
    for item in ["first", "second", "third"] {
        cache.push(item).unwrap();
    }
    cache
        .push_with("zeroth", &PushOptions::new().side(Side::Front))
        .unwrap();
    let jobs = PushOptions::new().prefix("jobs");
    assert_eq!(
        cache.push_with("job-1", &jobs).unwrap(),
        Key::from("jobs-500000000000000")
    );
    cache.push_with("job-2", &jobs).unwrap();
    let total = cache.len().unwrap();
    drop(cache);

    let out = Command::new(&python)
        .arg(script("python_reads.py"))
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    let report: Report = serde_json::from_str(line).unwrap_or_else(|_| {
        panic!(
            "no report from python ({}):\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert!(
        report.problems.is_empty(),
        "python read wrong values: {:?}",
        report.problems
    );
    assert!(
        report.warnings.is_empty(),
        "python's check warns: {:?}",
        report.warnings
    );
    let order: Vec<String> = report.queue.iter().map(|(_, v)| v.clone()).collect();
    assert_eq!(order, ["zeroth", "first", "second", "third"]);
    assert_eq!(report.queue[1].0, 500000000000000);
    let jobs: Vec<&str> = report.jobs.iter().map(|(_, v)| v.as_str()).collect();
    assert_eq!(jobs, ["job-1", "job-2"]);
    assert_eq!(report.jobs[1].0, "jobs-500000000000001");
    assert_eq!(report.len, total - 6, "python pulled the 6 queue items");
    assert!(out.status.success());
}

#[test]
fn python_and_diskq_increment_one_counter_at_once() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::builder()
        .timeout(Duration::from_secs(60))
        .open(dir.path())
        .unwrap();
    let mut child = Command::new(&python)
        .arg(script("python_incr.py"))
        .arg(dir.path())
        .arg("300")
        .spawn()
        .unwrap();
    cache.set("go", &1).unwrap();
    for _ in 0..300 {
        cache.incr("counter", 1, 0).unwrap();
    }
    assert!(child.wait().unwrap().success());
    assert_eq!(cache.get::<i64>("counter").unwrap(), Some(600));
}

#[test]
fn diskq_deque_and_index_read_what_python_wrote() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (dq, ix) = (dir.path().join("deque"), dir.path().join("index"));
    run_python(
        &python,
        "python_deque_index.py",
        &["write", dq.to_str().unwrap(), ix.to_str().unwrap()],
    );

    let d: Deque<String> = Deque::open(&dq).unwrap();
    let big = format!("big-{}", "y".repeat(40000));
    let items: Vec<String> = d.iter().unwrap().collect::<Result<_, _>>().unwrap();
    assert_eq!(items, ["d", "a", "b", "c", big.as_str()]);
    assert_eq!(d.get(1).unwrap().as_deref(), Some("a"));
    assert_eq!(d.pop_back().unwrap(), Some(big));
    d.rotate_left(1).unwrap();
    assert_eq!(d.pop_front_many(10).unwrap(), ["a", "b", "c", "d"]);

    let index: Index<String, i64> = Index::open(&ix).unwrap();
    let all: Vec<(String, i64)> = index.iter().unwrap().collect::<Result<_, _>>().unwrap();
    let want: Vec<(String, i64)> = [("y", 20), ("x", 3), ("w", 4), ("big", 1 << 62)]
        .into_iter()
        .map(|(k, v)| (k.into(), v))
        .collect();
    assert_eq!(all, want);
    assert_eq!(index.pop_last().unwrap(), Some(("big".into(), 1 << 62)));
    assert_eq!(index.first().unwrap(), Some(("y".into(), 20)));
    assert!(index.cache().check().unwrap().is_empty());
}

#[derive(serde::Deserialize, Debug)]
struct DequeIndexReport {
    deque: Vec<String>,
    deque_reversed: Vec<String>,
    deque_len: usize,
    index: Vec<(String, i64)>,
    index_keys_reversed: Vec<String>,
    deque_popleft: String,
    deque_pop: String,
    index_popitem: (String, i64),
    index_popfirst: (String, i64),
    deque_after: Vec<String>,
    index_after: Vec<(String, i64)>,
}

#[test]
fn python_deque_and_index_read_what_diskq_wrote() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (dq, ix) = (dir.path().join("deque"), dir.path().join("index"));
    let d: Deque<String> = Deque::open(&dq).unwrap();
    d.extend(&["b".to_string(), "c".to_string(), "d".to_string(), "e".to_string()])
        .unwrap();
    d.push_front(&"a".to_string()).unwrap();
    d.rotate_right(2).unwrap(); // d e a b c
    d.retain(|v| v != "b").unwrap();
    let index: Index<String, i64> = Index::open(&ix).unwrap();
    for (k, v) in [("one", 1), ("two", 2), ("three", 3)] {
        index.insert(k, &v).unwrap();
    }
    index.insert("one", &10).unwrap();
    index.remove("two").unwrap();
    index.insert("two", &22).unwrap();
    drop((d, index));

    let line = run_python(
        &python,
        "python_deque_index.py",
        &["read", dq.to_str().unwrap(), ix.to_str().unwrap()],
    );
    let report: DequeIndexReport = serde_json::from_str(line.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("no report from python ({e}): {line}"));
    assert_eq!(report.deque, ["d", "e", "a", "c"]);
    assert_eq!(report.deque_reversed, ["c", "a", "e", "d"]);
    assert_eq!(report.deque_len, 4);
    let want: Vec<(String, i64)> = [("one", 10), ("three", 3), ("two", 22)]
        .map(|(k, v)| (k.into(), v))
        .into();
    assert_eq!(report.index, want);
    assert_eq!(report.index_keys_reversed, ["two", "three", "one"]);
    assert_eq!((report.deque_popleft.as_str(), report.deque_pop.as_str()), ("d", "c"));
    assert_eq!(report.index_popitem, ("two".into(), 22));
    assert_eq!(report.index_popfirst, ("one".into(), 10));
    assert_eq!(report.deque_after, ["e", "a"]);
    assert_eq!(report.index_after, [("three".to_string(), 3)]);
    // And diskq sees what Python left.
    let d: Deque<String> = Deque::open(&dq).unwrap();
    assert_eq!(d.iter().unwrap().collect::<Result<Vec<_>, _>>().unwrap(), ["e", "a"]);
    let index: Index<String, i64> = Index::open(&ix).unwrap();
    assert_eq!(index.len().unwrap(), 1);
}

/// The keys of `tests/interop/python_fanout.py`, named as it names them.
fn fanout_keys() -> Vec<(Key, String)> {
    let text = |s: &str| (Key::from(s), format!("str:{s:?}").replace('"', "'"));
    let bytes = |b: &[u8]| {
        let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
        (Key::from(b.to_vec()), format!("b:{hex}"))
    };
    let int = |n: i64| (Key::from(n), format!("int:{n}"));
    let float = |x: f64, repr: &str| (Key::from(x), format!("float:{repr}"));
    vec![
        text("hello"),
        text("héllo wörld"),
        text(""),
        text("a"),
        bytes(b"\x00bin"),
        bytes(b""),
        bytes(&[0xff; 10]),
        int(16),
        int(1),
        int(7),
        int(-1),
        int(-42),
        int(i64::MAX),
        int(i64::MIN),
        int(4294967295),
        int(4294967296),
        float(1.5, "1.5"),
        float(-1.5, "-1.5"),
        float(0.25, "0.25"),
        float(1e300, "1e+300"),
        float(2.5, "2.5"),
    ]
}

#[test]
fn fanout_shards_agree_with_python_both_ways() {
    let Some(python) = python() else { return };
    for shards in [8usize, 3] {
        // Python writes; diskq finds each key in the shard Python chose.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_str().unwrap();
        let out = run_python(&python, "python_fanout.py", &["write", path, &shards.to_string()]);
        let placed: Vec<(String, usize)> = serde_json::from_str(out.trim()).unwrap();
        let cache = diskq::FanoutCache::builder().shards(shards).open(dir.path()).unwrap();
        let keys = fanout_keys();
        assert_eq!(placed.len(), keys.len());
        for ((key, name), (py_name, py_shard)) in keys.iter().zip(&placed) {
            assert_eq!(name, py_name, "the key lists agree");
            assert_eq!(cache.shard_index(key), *py_shard, "{name} over {shards} shards");
            assert_eq!(
                cache.get::<String>(key).unwrap().as_deref(),
                Some(name.as_str()),
                "{name}"
            );
        }
        assert_eq!(cache.len().unwrap(), keys.len());
        let named = cache.cache("named").unwrap();
        assert_eq!(named.get::<String>("inside").unwrap().as_deref(), Some("named cache"));
        let jobs: Deque<String> = cache.deque("jobs").unwrap();
        assert_eq!(
            jobs.iter().unwrap().collect::<Result<Vec<_>, _>>().unwrap(),
            ["j1", "j2"]
        );
        let ix: Index<String, i64> = cache.index("ix").unwrap();
        assert_eq!(ix.get(&"k".to_string()).unwrap(), Some(7));

        // diskq writes; Python finds every key.
        let dir = tempfile::tempdir().unwrap();
        let cache = diskq::FanoutCache::builder().shards(shards).open(dir.path()).unwrap();
        for (key, name) in &keys {
            assert!(cache.set(key, name).unwrap());
        }
        cache.cache("named").unwrap().set("inside", "named cache").unwrap();
        let jobs: Deque<String> = cache.deque("jobs").unwrap();
        jobs.extend(&["j1".to_string(), "j2".to_string()]).unwrap();
        let ix: Index<String, i64> = cache.index("ix").unwrap();
        ix.insert(&"k".to_string(), &7).unwrap();
        drop((cache, jobs, ix));
        let path = dir.path().to_str().unwrap();
        let out = run_python(&python, "python_fanout.py", &["read", path, &shards.to_string()]);
        let report: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
        for (_, name) in &keys {
            assert_eq!(
                report["found"][name.as_str()],
                serde_json::json!(name),
                "python finds {name}"
            );
        }
        assert_eq!(report["len"], serde_json::json!(keys.len()));
        assert_eq!(report["named"], serde_json::json!("named cache"));
        assert_eq!(report["jobs"], serde_json::json!(["j1", "j2"]));
        assert_eq!(report["ix"], serde_json::json!({"k": 7}));
    }
}
