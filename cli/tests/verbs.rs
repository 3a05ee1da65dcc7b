//! The verbs for shell workers and operators: `lease` / `ack` / `nack` /
//! `renew` across processes, `peek`, `incr` / `decr`, the dead letters,
//! completions, keys that tell their kinds apart, and FanoutCache roots.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{DISKQ, arg, diskq, shell};
use diskq::{Cache, FanoutCache, PushOptions};
use serde_json::json;

/// How long a test waits for a lease to run out before it fails: far more
/// than the lease durations used, so only a lost item can reach it.
const PATIENCE: Duration = Duration::from_secs(60);

/// `diskq lease ARGS` in its own process: the value (stdout) and lease id (stderr).
fn lease(args: &[&str]) -> (String, String) {
    let mut all = vec!["lease"];
    all.extend_from_slice(args);
    let run = diskq(&all);
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    let id = run.stderr.strip_suffix('\n').expect("one line").to_string();
    assert_eq!(id.len(), 33, "a lease id: {id:?}");
    (run.text(), id)
}

/// Runs `lease ARGS` again and again until it gives an item: a lease that
/// ran out comes back without the test sleeping a fixed time.
fn lease_when_back(args: &[&str]) -> (String, String) {
    let start = Instant::now();
    loop {
        let mut all = vec!["lease"];
        all.extend_from_slice(args);
        let run = diskq(&all);
        match run.code {
            0 => return (run.text(), run.stderr.trim_end().to_string()),
            2 => assert!(start.elapsed() < PATIENCE, "the item never came back"),
            _ => panic!("lease failed: {}", run.stderr),
        }
    }
}

#[test]
fn a_shell_worker_takes_work_at_least_once_across_processes() {
    let tmp = tempfile::tempdir().unwrap();
    let d = arg(tmp.path());
    for job in ["one", "two", "three"] {
        diskq(&["push", d, job]).ok();
    }

    // Leased by one process, acked by another: gone.
    let (value, id) = lease(&[d, "--secs", "60"]);
    assert_eq!(value, "one");
    diskq(&["ack", d, &id]).ok();
    diskq(&["ack", d, &id]).absent();
    diskq(&["nack", d, &id]).absent();

    // Nacked: back at the front, its delivery count one higher.
    let (value, id) = lease(&[d]);
    assert_eq!(value, "two");
    assert_eq!(diskq(&["len", d]).ok().text(), "2\n", "a leased item stays on disk");
    diskq(&["nack", d, &id]).ok();
    let back = diskq(&["lease", d, "--json"]).ok().json();
    assert_eq!((&back["value"], &back["deliveries"]), (&json!("two"), &json!(2)));
    assert_eq!(back["kind"], "text");

    // Not acked: hidden while the lease runs, back when it has run out.
    let (value, id) = lease(&[d, "--secs", "0.001"]);
    assert_eq!(value, "three");
    let (again, new_id) = lease_when_back(&[d, "--secs", "60"]);
    assert_eq!(again, "three");
    assert_ne!(new_id, id);
    diskq(&["ack", d, &id]).absent(); // the old holder lost it
    diskq(&["ack", d, &new_id]).ok();
    // "two" is still leased by the --json run above.
    diskq(&["lease", d]).absent();
    assert_eq!(diskq(&["len", d]).ok().text(), "1\n");
}

#[test]
fn lease_waits_for_an_item_pushed_by_another_process() {
    let tmp = tempfile::tempdir().unwrap();
    let d = arg(tmp.path());
    diskq(&["push", d, "first"]).ok();
    diskq(&["pull", d]).ok();
    diskq(&["lease", d, "--wait", "0.01"]).absent();
    let waiter = Command::new(DISKQ)
        .args(["lease", d, "--wait", "60", "--json"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    diskq(&["push", d, "late"]).ok();
    let out = waiter.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let leased: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(leased["value"], "late");
    diskq(&["ack", d, leased["lease"].as_str().unwrap()]).ok();
}

#[test]
fn renew_keeps_a_lease_running_or_lets_it_run_out() {
    let tmp = tempfile::tempdir().unwrap();
    let d = arg(tmp.path());
    diskq(&["push", d, "job", "--prefix", "jobs"]).ok();
    let (_, id) = lease(&[d, "--prefix", "jobs", "--secs", "3600"]);
    let renewed = diskq(&["renew", d, &id, "--secs", "7200", "--json"]).ok().json();
    assert_eq!(renewed["lease"], json!(id));
    assert!(renewed["deadline"].as_f64().unwrap() > 0.0);
    diskq(&["lease", d, "--prefix", "jobs"]).absent();
    // Renewed to almost nothing: it runs out, and the next lease gets it.
    diskq(&["renew", d, &id, "--secs", "0.001"]).ok();
    let (value, _) = lease_when_back(&[d, "--prefix", "jobs"]);
    assert_eq!(value, "job");
    diskq(&["renew", d, &id, "--secs", "60"]).absent();
    diskq(&["renew", d, "0123", "--secs", "60"]).fails(1, "is not a lease id");
}

#[test]
fn a_bash_loop_drains_a_queue_and_acks_each_job() {
    let tmp = tempfile::tempdir().unwrap();
    for n in 0..5 {
        Cache::open(tmp.path()).unwrap().push(&format!("job {n}")).unwrap();
    }
    let script = r#"
        set -u
        while true; do
            "$DISKQ" lease "$D" --secs 60 >"$D.job" 2>"$D.lease" || { echo "status $?"; break; }
            cat "$D.job"; echo
            "$DISKQ" ack "$D" "$(cat "$D.lease")" || exit 9
        done
    "#;
    let run = shell(script, tmp.path());
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.text(), "job 0\njob 1\njob 2\njob 3\njob 4\nstatus 2\n");
    assert!(Cache::open(tmp.path()).unwrap().is_empty().unwrap());
}

#[test]
fn lease_refuses_nonsense_and_leaves_the_item_when_it_cannot_write() {
    let tmp = tempfile::tempdir().unwrap();
    let d = arg(tmp.path());
    diskq(&["push", d, "job"]).ok();
    diskq(&["lease", d, "--secs", "0"]).fails(1, "lease duration");
    diskq(&["lease", d, "--secs", "soon"]).fails(1, "is not a number of seconds");
    diskq(&["ack", d, "nonsense"]).fails(1, "\"nonsense\" is not a lease id");
    diskq(&["ack", d, "0123456789abcdef.0123456789abcdef"]).absent();
    let closed = shell(r#""$DISKQ" lease "$D" >&-"#, tmp.path());
    assert_eq!(closed.code, 1, "{}", closed.stderr);
    assert!(closed.stderr.contains("nothing was leased"), "{}", closed.stderr);
    let backlog = Cache::open(tmp.path()).unwrap().backlog(None).unwrap();
    assert_eq!((backlog.queued, backlog.leased), (1, 0));
    diskq(&["lease", tmp.path().join("nowhere").to_str().unwrap()]).fails(1, "does not exist");
}

#[test]
fn leases_lists_what_other_processes_hold() {
    let tmp = tempfile::tempdir().unwrap();
    let d = arg(tmp.path());
    for job in ["one", "two", "three"] {
        diskq(&["push", d, job, "--prefix", "jobs"]).ok();
    }
    assert_eq!(diskq(&["leases", d, "--prefix", "jobs"]).ok().text(), "");
    let (_, short) = lease(&[d, "--prefix", "jobs", "--secs", "30"]);
    let (_, long) = lease(&[d, "--prefix", "jobs", "--secs", "600"]);
    diskq(&["nack", d, &short]).ok();
    let (_, again) = lease(&[d, "--prefix", "jobs", "--secs", "60"]);
    let listed = diskq(&["leases", d, "--prefix", "jobs"]).ok().text();
    let lines: Vec<serde_json::Value> = listed.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2, "{listed}");
    // The first to run out first: the 60 s lease (its second delivery), then the 600 s one.
    assert_eq!(
        lines
            .iter()
            .map(|l| (&l["deliveries"], &l["expired"], &l["size"]))
            .collect::<Vec<_>>(),
        [
            (&json!(2), &json!(false), &json!(3)),
            (&json!(1), &json!(false), &json!(3))
        ]
    );
    assert!(lines[0]["deadline"].as_f64().unwrap() < lines[1]["deadline"].as_f64().unwrap());
    assert!(
        lines[0]["key"].as_str().unwrap().starts_with("diskq-lease-k"),
        "{listed}"
    );
    let array = diskq(&["leases", d, "--prefix", "jobs", "--json"]).ok().json();
    assert_eq!(array, json!(lines));
    assert_eq!(
        diskq(&["leases", d, "--prefix", "jobs", "--limit", "1"])
            .ok()
            .text()
            .lines()
            .count(),
        1
    );
    assert_eq!(diskq(&["leases", d]).ok().text(), "", "another queue");
    diskq(&["leases", d, "--limit", "0"]).fails(1, "--limit");
    diskq(&["ack", d, &again]).ok();
    diskq(&["ack", d, &long]).ok();
    assert_eq!(diskq(&["leases", d, "--prefix", "jobs"]).ok().text(), "");
}

#[test]
fn items_that_keep_failing_become_dead_letters_and_come_back_on_requeue() {
    let tmp = tempfile::tempdir().unwrap();
    let d = arg(tmp.path());
    let cache = Cache::open(tmp.path()).unwrap();
    cache.push_with("bad", &PushOptions::new().prefix("jobs")).unwrap();
    cache.push_with(&7, &PushOptions::new().prefix("jobs")).unwrap();
    let limit = ["--prefix", "jobs", "--max-deliveries", "1"];
    for _ in 0..2 {
        let mut args = vec![d];
        args.extend_from_slice(&limit);
        let (_, id) = lease(&args);
        diskq(&["nack", d, &id, "--max-deliveries", "1"]).ok();
    }
    diskq(&["lease", d, "--prefix", "jobs"]).absent();
    assert_eq!(diskq(&["dead-letters", d, "--prefix", "jobs"]).ok().text(), "2\n");
    assert_eq!(
        diskq(&["dead-letters", d]).ok().text(),
        "0\n",
        "another queue's dead letters"
    );
    assert_eq!(
        diskq(&["dead-letters", d, "--prefix", "jobs", "--json"]).ok().json(),
        json!({ "dead_letters": 2 })
    );
    let listed = diskq(&["dead-letters", d, "--prefix", "jobs", "--list"]).ok().text();
    let lines: Vec<serde_json::Value> = listed.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(
        lines,
        [
            json!({ "key": "jobs-dead-letter-500000000000000", "kind": "text", "value": "bad" }),
            json!({ "key": "jobs-dead-letter-500000000000001", "kind": "int", "value": 7 }),
        ]
    );
    let array = diskq(&["dead-letters", d, "--prefix", "jobs", "--list", "--json"])
        .ok()
        .json();
    assert_eq!(array, json!(lines));
    assert_eq!(diskq(&["requeue", d, "--prefix", "jobs"]).ok().text(), "2\n");
    assert_eq!(diskq(&["dead-letters", d, "--prefix", "jobs"]).ok().text(), "0\n");
    assert_eq!(lease(&[d, "--prefix", "jobs"]).0, "bad");

    // A named dead-letter queue.
    diskq(&["push", d, "x"]).ok();
    let (_, id) = lease(&[d]);
    diskq(&[
        "nack",
        d,
        &id,
        "--max-deliveries",
        "1",
        "--dead-letter-queue",
        "graveyard",
    ])
    .ok();
    assert_eq!(
        diskq(&["dead-letters", d, "--dead-letter-queue", "graveyard"])
            .ok()
            .text(),
        "1\n"
    );
    assert_eq!(
        diskq(&["requeue", d, "--dead-letter-queue", "graveyard", "--json"])
            .ok()
            .json(),
        json!({ "requeued": 1 })
    );
}

#[test]
fn peek_shows_either_end_and_takes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let d = arg(tmp.path());
    diskq(&["peek", d]).fails(1, "no cache.db");
    diskq(&["push", d, "first"]).ok();
    diskq(&["push", d, "last"]).ok();
    diskq(&["push", d, "job", "--prefix", "jobs"]).ok();
    assert_eq!(diskq(&["peek", d]).ok().text(), "first");
    assert_eq!(diskq(&["peek", d, "--back"]).ok().text(), "last");
    assert_eq!(
        diskq(&["peek", d, "--prefix", "jobs", "--json"]).ok().json(),
        json!({ "key": "jobs-500000000000000", "kind": "text", "value": "job" })
    );
    diskq(&["peek", d, "--prefix", "other"]).absent();
    assert_eq!(diskq(&["len", d]).ok().text(), "3\n", "nothing taken");
}

#[test]
fn incr_and_decr_count_atomically_from_a_default() {
    let tmp = tempfile::tempdir().unwrap();
    let d = arg(tmp.path());
    diskq(&["set", d, "name", "Ada"]).ok();
    assert_eq!(diskq(&["incr", d, "hits"]).ok().text(), "1\n");
    assert_eq!(diskq(&["incr", d, "hits", "10"]).ok().text(), "11\n");
    assert_eq!(diskq(&["decr", d, "hits", "-4"]).ok().text(), "15\n");
    assert_eq!(diskq(&["decr", d, "left", "--default", "3"]).ok().text(), "2\n");
    assert_eq!(
        diskq(&["incr", d, "--int-key", "7", "--json"]).ok().json(),
        json!({ "key": 7, "value": 1 })
    );
    let cache = Cache::open(tmp.path()).unwrap();
    assert_eq!(cache.get::<i64>("hits").unwrap(), Some(15));
    assert_eq!(cache.get::<i64>(7).unwrap(), Some(1));
    diskq(&["incr", d, "name"]).fails(1, "needs an integer");
    diskq(&["incr", d, "hits", "many"]).fails(1, "invalid value");
    assert_eq!(cache.get::<String>("name").unwrap().as_deref(), Some("Ada"));
}

#[test]
fn completions_are_printed_for_each_shell() {
    for (shell, mark) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef diskq"),
        ("fish", "complete -c diskq"),
    ] {
        let script = diskq(&["completions", shell]).ok().text();
        assert!(script.contains(mark), "{shell}: {script}");
        for verb in ["lease", "ack", "dead-letters", "completions"] {
            assert!(script.contains(verb), "{shell} lacks {verb}");
        }
    }
    diskq(&["completions", "cmd.exe"]).fails(1, "invalid value");
}

#[test]
fn keys_tell_integer_and_text_keys_apart() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = Cache::open(tmp.path()).unwrap();
    cache.set(42, &0).unwrap();
    cache.set("42", &0).unwrap();
    cache.set(42.0f64 + 0.5, &0).unwrap();
    cache.set("42.5", &0).unwrap();
    cache.set("plain", &0).unwrap();
    cache.set("two\nlines", &0).unwrap();
    let d = arg(tmp.path());
    assert_eq!(
        diskq(&["keys", d]).ok().text(),
        "42\n\"42\"\n42.5\n\"42.5\"\nplain\n\"two\\nlines\"\n"
    );
    assert_eq!(
        diskq(&["keys", d, "--json"]).ok().json(),
        json!([42, "42", 42.5, "42.5", "plain", "two\nlines"])
    );
}

#[test]
fn a_fanout_root_is_used_across_its_shards() {
    let tmp = tempfile::tempdir().unwrap();
    let fanout = FanoutCache::builder().shards(4).open(tmp.path()).unwrap();
    let keys = ["a", "b", "c", "d", "e", "f"];
    for key in keys {
        assert!(fanout.set(key, key).unwrap());
    }
    let d = arg(tmp.path());
    assert_eq!(diskq(&["len", d]).ok().text(), "6\n");
    assert_eq!(diskq(&["get", d, "c"]).ok().text(), "c");
    diskq(&["get", d, "zz"]).absent();

    // set, incr and delete go to the key's shard, where FanoutCache finds them.
    diskq(&["set", d, "new", "value"]).ok();
    diskq(&["incr", d, "--int-key", "12345", "5"]).ok();
    assert_eq!(fanout.get::<String>("new").unwrap().as_deref(), Some("value"));
    assert_eq!(fanout.get::<i64>(12345).unwrap(), Some(5));
    let shard = &fanout.shards()[fanout.shard_index("new")];
    assert_eq!(
        shard.get::<String>("new").unwrap().as_deref(),
        Some("value"),
        "in its own shard"
    );
    diskq(&["delete", d, "a"]).ok();
    assert_eq!(fanout.get::<String>("a").unwrap(), None);

    // keys lists every shard's; stats sums them.
    let mut listed: Vec<String> = diskq(&["keys", d]).ok().text().lines().map(String::from).collect();
    listed.sort();
    assert_eq!(listed, ["12345", "b", "c", "d", "e", "f", "new"]);
    let stats = diskq(&["stats", d, "--json"]).ok().json();
    assert_eq!((&stats["count"], &stats["shards"]), (&json!(7), &json!(4)));
    let plain = diskq(&["stats", d]).ok().text();
    assert!(
        plain.lines().any(|l| l.split_whitespace().eq(["shards", "4"])),
        "{plain}"
    );
    diskq(&["check", d]).ok();
    assert_eq!(diskq(&["clear", d]).ok().text(), "7\n");
    assert!(fanout.is_empty().unwrap());

    // A queue command names a shard or a named deque instead.
    diskq(&["lease", d]).fails(1, "which has no queue");
    diskq(&["push", d, "x"]).fails(1, "give one of its shards");
}
