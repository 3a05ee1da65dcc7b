//! Every command of the `diskq` tool, run as a separate process on a
//! directory the test makes, in plain and `--json` output.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fs;
use std::time::{Duration, SystemTime};

use common::{arg, diskq};
use diskq::{Cache, SetOptions};
use serde_json::json;

#[test]
fn set_get_delete_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("cache");
    let d = arg(&d);
    diskq(&["set", d, "greeting", "héllo wörld"]).ok();
    assert_eq!(diskq(&["get", d, "greeting"]).ok().text(), "héllo wörld");
    assert_eq!(
        diskq(&["get", d, "greeting", "--json"]).ok().json(),
        json!({ "key": "greeting", "kind": "text", "value": "héllo wörld" })
    );
    // Text keys by default; --int-key keys are another row.
    diskq(&["set", d, "--int-key", "-5", "minus five"]).ok();
    assert_eq!(diskq(&["get", d, "--int-key", "-5"]).ok().text(), "minus five");
    diskq(&["get", d, "-5"]).absent();
    diskq(&["get", d, "--int-key", "5x"]).fails(1, "\"5x\" is not an integer key");

    diskq(&["delete", d, "greeting"]).ok();
    diskq(&["get", d, "greeting"]).absent();
    let again = diskq(&["delete", d, "greeting", "--json"]).absent();
    assert_eq!(again.json(), json!({ "key": "greeting", "deleted": false }));
    assert_eq!(Cache::open(d).unwrap().len().unwrap(), 1);
}

#[test]
fn numbers_and_messagepack_values_print_as_numbers_and_json() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = Cache::open(tmp.path()).unwrap();
    cache.set("int", &-1234567890123i64).unwrap();
    cache.set("float", &2.5f64).unwrap();
    #[derive(serde::Serialize)]
    struct Page {
        url: String,
        status: u16,
        seen: bool,
    }
    let page = Page {
        url: "/a".into(),
        status: 404,
        seen: true,
    };
    cache.set("page", &page).unwrap();
    cache.set("list", &vec![1, 2, 3]).unwrap();
    let d = arg(tmp.path());
    assert_eq!(diskq(&["get", d, "int"]).ok().text(), "-1234567890123\n");
    assert_eq!(diskq(&["get", d, "float"]).ok().text(), "2.5\n");
    let shown: serde_json::Value = serde_json::from_str(&diskq(&["get", d, "page"]).ok().text()).unwrap();
    assert_eq!(shown, json!({ "url": "/a", "status": 404, "seen": true }));
    assert_eq!(diskq(&["get", d, "list"]).ok().text(), "[1,2,3]\n");
    assert_eq!(
        diskq(&["--json", "get", d, "page"]).ok().json(),
        json!({ "key": "page", "kind": "msgpack", "value": { "url": "/a", "status": 404, "seen": true } })
    );
    assert_eq!(
        diskq(&["--json", "get", d, "int"]).ok().json(),
        json!({ "key": "int", "kind": "int", "value": -1234567890123i64 })
    );
    assert_eq!(
        diskq(&["--json", "get", d, "float"]).ok().json()["kind"],
        json!("float")
    );
}

#[test]
fn large_values_stream_from_their_file() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = Cache::builder().min_file_size(1024).open(tmp.path()).unwrap();
    let big: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    cache.set_bytes("big", &big).unwrap();
    assert!(cache.read("big").unwrap().unwrap().path().is_some(), "in a value file");
    let d = arg(tmp.path());
    assert_eq!(diskq(&["get", d, "big"]).ok().stdout, big);
    let shown = diskq(&["get", d, "big", "--json"]).ok().json();
    assert_eq!(shown["kind"], "bytes");
    assert_eq!(
        shown["value"].as_str().unwrap().len(),
        big.len().div_ceil(3) * 4,
        "base64"
    );
}

#[test]
fn expire_tags_evict_len_keys_clear() {
    let tmp = tempfile::tempdir().unwrap();
    let d = arg(tmp.path());
    diskq(&["set", d, "short", "lived", "--expire", "3600"]).ok();
    diskq(&["set", d, "a", "1", "--tag", "group"]).ok();
    diskq(&["set", d, "b", "2", "--tag", "group"]).ok();
    diskq(&["set", d, "c", "3"]).ok();
    assert_eq!(diskq(&["len", d]).ok().text(), "4\n");
    assert_eq!(diskq(&["keys", d]).ok().text(), "short\na\nb\nc\n");
    assert_eq!(
        diskq(&["keys", d, "--json"]).ok().json(),
        json!(["short", "a", "b", "c"])
    );
    let entry = Cache::open(d).unwrap().get_entry::<String>("a").unwrap().unwrap();
    assert_eq!(entry.tag.as_deref(), Some("group"));

    let expires = Cache::open(d)
        .unwrap()
        .get_entry::<String>("short")
        .unwrap()
        .unwrap()
        .expire_time;
    assert!(expires.is_some_and(|t| t > SystemTime::now() + Duration::from_secs(3000)));
    // Expire it without waiting: a touch through a clock two hours back.
    let back = SystemTime::now() - Duration::from_secs(7200);
    let past = Cache::builder().clock(move || back).open(d).unwrap();
    assert!(past.touch("short", Some(Duration::from_secs(1))).unwrap());
    diskq(&["get", d, "short"]).absent();
    assert_eq!(diskq(&["len", d, "--json"]).ok().json(), json!({ "len": 3 }));
    assert_eq!(diskq(&["expire", d]).ok().text(), "1\n");
    assert_eq!(diskq(&["expire", d, "--json"]).ok().json(), json!({ "removed": 0 }));
    assert_eq!(diskq(&["evict", d, "group"]).ok().text(), "2\n");
    assert_eq!(diskq(&["keys", d]).ok().text(), "c\n");
    assert_eq!(diskq(&["clear", d, "--json"]).ok().json(), json!({ "removed": 1 }));
    assert_eq!(diskq(&["len", d]).ok().text(), "0\n");
    assert_eq!(diskq(&["keys", d, "--json"]).ok().json(), json!([]));
    diskq(&["set", d, "x", "y", "--expire", "-1"]).fails(1, "not a number of seconds from 0 up");
}

#[test]
fn keys_of_every_kind_are_listed() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = Cache::open(tmp.path()).unwrap();
    cache.set("text", &0).unwrap();
    cache.set(-3, &0).unwrap();
    cache.set(1.5, &0).unwrap();
    cache.set(&b"\x00b"[..], &0).unwrap();
    cache.set(diskq::Key::encode(&("user", 7)).unwrap(), &0).unwrap();
    let d = arg(tmp.path());
    assert_eq!(
        diskq(&["keys", d]).ok().text(),
        "text\n-3\n1.5\nb\"\\x00b\"\n[\"user\",7]\n"
    );
    assert_eq!(
        diskq(&["keys", d, "--json"]).ok().json(),
        json!(["text", -3, 1.5, { "bytes": "AGI=" }, { "encoded": ["user", 7] }])
    );
}

#[test]
fn stats_show_the_counters_of_every_queue() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = Cache::open(tmp.path()).unwrap();
    cache
        .push_many(["a", "b", "c"], &diskq::PushOptions::new().prefix("jobs"))
        .unwrap();
    cache
        .pull_with::<String>(&diskq::PullOptions::new().prefix("jobs"))
        .unwrap();
    let lease = cache
        .lease::<String>(&diskq::LeaseOptions::new(Duration::from_secs(60)).prefix("jobs"))
        .unwrap()
        .unwrap();
    assert!(lease.ack().unwrap());
    cache.push(&1).unwrap();
    let d = arg(tmp.path());
    let stats = diskq(&["stats", d, "--json"]).ok().json();
    let jobs = &stats["queues"]["jobs"];
    assert_eq!(
        (jobs["pushed"].clone(), jobs["popped"].clone()),
        (json!(3), json!(1)),
        "{stats}"
    );
    assert_eq!(
        (jobs["leased"].clone(), jobs["acked"].clone()),
        (json!(1), json!(1)),
        "{stats}"
    );
    assert_eq!(jobs["nacked"], 0, "{stats}");
    assert_eq!(stats["queues"][""]["pushed"], 1, "the integer-keyed queue: {stats}");
    let plain = diskq(&["stats", d]).ok().text();
    assert!(
        plain
            .lines()
            .any(|l| l.starts_with("queue:jobs ") && l.contains("pushed=3") && l.contains("acked=1")),
        "{plain}"
    );
}

#[test]
fn stats_show_counts_volume_hits_and_every_setting() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = Cache::builder()
        .statistics(true)
        .min_file_size(16)
        .open(tmp.path())
        .unwrap();
    cache.set("small", &1).unwrap();
    cache.set("file", "0123456789abcdefghij").unwrap();
    cache
        .set_with("old", &1, &SetOptions::new().expire(Duration::from_millis(1)))
        .unwrap();
    std::thread::sleep(Duration::from_millis(20));
    let d = arg(tmp.path());
    cache.get::<i64>("small").unwrap();
    cache.get::<String>("file").unwrap();
    cache.get::<i64>("nothing").unwrap();
    // The tool's get only reads: it counts no hit or miss.
    diskq(&["get", d, "small"]).ok();
    diskq(&["get", d, "nothing"]).absent();

    let stats = diskq(&["stats", d, "--json"]).ok().json();
    assert_eq!(stats["count"], 3, "rows, the expired one included: {stats}");
    assert_eq!(stats["size"], 20);
    assert!(stats["volume"].as_u64().unwrap() >= 4096, "{stats}");
    assert_eq!((stats["hits"].clone(), stats["misses"].clone()), (json!(2), json!(1)));
    assert_eq!(stats["culled"], 0, "{stats}");
    let settings = stats["settings"].as_object().unwrap();
    for (name, want) in [
        ("statistics", json!(1)),
        ("disk_min_file_size", json!(16)),
        ("eviction_policy", json!("least-recently-stored")),
        ("size_limit", json!(1u64 << 30)),
    ] {
        assert_eq!(settings[name], want, "{name}");
    }
    assert!(settings.contains_key("cull_limit") && settings.contains_key("sqlite_mmap_size"));

    let plain = diskq(&["stats", d]).ok().text();
    let rows: Vec<(&str, &str)> = plain
        .lines()
        .map(|l| l.split_once(' ').map(|(k, v)| (k, v.trim())).unwrap())
        .collect();
    let names: Vec<&str> = rows.iter().map(|(k, _)| *k).collect();
    assert_eq!(
        names[..8],
        [
            "directory",
            "count",
            "size",
            "volume",
            "hits",
            "misses",
            "culled",
            "statistics"
        ]
    );
    assert!(
        rows.contains(&("count", "3")) && rows.contains(&("hits", "2")) && rows.contains(&("culled", "0")),
        "{plain}"
    );
    assert_eq!(rows.len(), 7 + settings.len());
}

#[test]
fn check_reports_and_fixes_inconsistencies() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = Cache::builder().min_file_size(8).open(tmp.path()).unwrap();
    cache.set("file", "a value in its own file").unwrap();
    cache.set("kept", "another file value").unwrap();
    let d = arg(tmp.path());
    assert_eq!(diskq(&["check", d]).ok().text(), "");
    assert_eq!(
        diskq(&["check", d, "--json"]).ok().json(),
        json!({ "warnings": [], "remaining": 0 })
    );

    // Break it: an orphan file, and a row whose file is gone.
    let path = cache.read("file").unwrap().unwrap().path().unwrap().to_path_buf();
    fs::remove_file(&path).unwrap();
    let orphan = tmp.path().join("ab").join("cd");
    fs::create_dir_all(&orphan).unwrap();
    fs::write(orphan.join("0123456789abcdef0123456789ab.val"), b"orphan").unwrap();

    let found = diskq(&["check", d]).fails(1, "inconsistencies found (diskq check --fix repairs them)");
    let text = found.text();
    assert!(
        text.contains("MissingFile: ") && text.contains("UnknownFile: "),
        "{text}"
    );
    let report = diskq(&["check", d, "--json"]).fails(1, "inconsistencies").json();
    assert!(report["remaining"].as_u64().unwrap() >= 2, "{report}");
    assert!(
        report["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|w| w["fixed"] == false)
    );

    // The orphan is fresh: a writer may still commit it, so it is kept.
    let kept = diskq(&["check", d, "--fix"]).fails(1, "could not be repaired").text();
    assert!(
        kept.contains("UnknownFile: ") && !kept.contains("UnknownFile: (fixed)"),
        "{kept}"
    );
    assert!(orphan.join("0123456789abcdef0123456789ab.val").exists());
    let fixed = diskq(&["check", d, "--fix", "--grace", "0"]).ok().text();
    assert!(fixed.lines().all(|l| l.ends_with("(fixed)")), "{fixed}");
    diskq(&["check", d]).ok();
    assert_eq!(diskq(&["keys", d]).ok().text(), "kept\n");
}

#[test]
fn directories_that_are_not_caches_are_refused_and_not_created() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("missing");
    let m = arg(&missing);
    for args in [
        vec!["stats", m],
        vec!["check", m],
        vec!["get", m, "k"],
        vec!["delete", m, "k"],
        vec!["keys", m],
        vec!["len", m],
        vec!["clear", m],
        vec!["expire", m],
        vec!["evict", m, "t"],
        vec!["pull", m],
    ] {
        diskq(&args).fails(1, "does not exist (only set and push create a cache)");
    }
    assert!(!missing.exists());

    let stranger = tmp.path().join("stranger");
    fs::create_dir(&stranger).unwrap();
    fs::write(stranger.join("notes.txt"), "mine").unwrap();
    let s = arg(&stranger);
    diskq(&["len", s]).fails(1, "is not a diskq directory (no cache.db)");
    diskq(&["set", s, "k", "v"]).fails(1, "is not empty: refusing");
    diskq(&["push", s, "v"]).fails(1, "is not empty: refusing");
    assert_eq!(fs::read_dir(&stranger).unwrap().count(), 1, "nothing was added");

    let file = tmp.path().join("file");
    fs::write(&file, "x").unwrap();
    diskq(&["set", arg(&file), "k", "v"]).fails(1, "is not a directory");

    let garbage = tmp.path().join("garbage");
    fs::create_dir(&garbage).unwrap();
    fs::write(garbage.join("cache.db"), vec![b'x'; 4096]).unwrap();
    diskq(&["get", arg(&garbage), "k"]).fails(1, "is not an SQLite database");

    let fanout = tmp.path().join("fanout");
    diskq::FanoutCache::open(&fanout).unwrap();
    assert_eq!(diskq(&["len", arg(&fanout)]).ok().text(), "0\n", "spans the shards");
    diskq(&["push", arg(&fanout), "v"]).fails(1, "is a FanoutCache directory, which has no queue");

    // An empty directory may become a cache, by set or push only.
    let empty = tmp.path().join("empty");
    fs::create_dir(&empty).unwrap();
    diskq(&["len", arg(&empty)]).fails(1, "no cache.db");
    assert!(!empty.join("cache.db").exists());
    diskq(&["push", arg(&empty), "v"]).ok();
    assert_eq!(diskq(&["len", arg(&empty)]).ok().text(), "1\n");
}

#[test]
fn usage_errors_are_one_line_with_status_1() {
    let tmp = tempfile::tempdir().unwrap();
    let d = arg(tmp.path());
    diskq(&["get", d]).fails(1, "required arguments were not provided: <KEY>");
    diskq(&["frobnicate", d]).fails(1, "unrecognized subcommand 'frobnicate'");
    diskq(&["pull", d, "--wait", "soon"]).fails(1, "\"soon\" is not a number of seconds");
    let help = diskq(&["--help"]).ok().text();
    assert!(help.contains("pull") && help.contains("--int-key"), "{help}");
    assert!(diskq(&["--version"]).ok().text().starts_with("diskq "));
}

#[test]
fn not_there_is_said_only_to_a_terminal() {
    let tmp = tempfile::tempdir().unwrap();
    let d = arg(tmp.path());
    diskq(&["set", d, "k", "v"]).ok();
    let quiet = diskq(&["get", d, "nokey"]).absent();
    assert_eq!(quiet.stdout, b"");
    // util-linux's `script` runs the command on a pseudo-terminal.
    let on_tty = std::process::Command::new("script")
        .args([
            "-qec",
            &format!("{} get {d} nokey; echo \"status $?\"", common::DISKQ),
            "/dev/null",
        ])
        .stdin(std::process::Stdio::null())
        .output();
    match on_tty {
        Ok(out) => {
            let text = String::from_utf8_lossy(&out.stdout).replace('\r', "");
            assert_eq!(text, "diskq: no key \"nokey\"\nstatus 2\n");
        }
        Err(e) if std::env::var("CI").as_deref() != Ok("true") => {
            eprintln!("skipping the terminal half: `script` (util-linux) does not run: {e}");
        }
        Err(e) => panic!("`script` (util-linux) is required in CI: {e}"),
    }
}
