//! `push` and `pull` across processes and shell pipelines, the empty-queue
//! exit status, and values of 10 MiB from standard input.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{DISKQ, arg, diskq, diskq_with_stdin, shell};
use diskq::{Cache, Key, PullOptions};
use serde_json::json;

/// 10 MiB that are not all alike (a byte pattern that repeats every 251).
fn ten_mib() -> Vec<u8> {
    (0..10usize << 20).map(|i| (i % 251) as u8).collect()
}

#[test]
fn push_prints_keys_and_pull_takes_from_either_end() {
    let tmp = tempfile::tempdir().unwrap();
    let d = arg(tmp.path());
    assert_eq!(diskq(&["push", d, "b"]).ok().text(), "500000000000000\n");
    assert_eq!(diskq(&["push", d, "c"]).ok().text(), "500000000000001\n");
    assert_eq!(
        diskq(&["push", d, "a", "--front", "--json"]).ok().json(),
        json!({ "key": 499999999999999i64 })
    );
    assert_eq!(
        diskq(&["push", d, "job", "--prefix", "jobs"]).ok().text(),
        "jobs-500000000000000\n"
    );
    assert_eq!(diskq(&["pull", d]).ok().text(), "a");
    assert_eq!(
        diskq(&["pull", d, "--back", "--json"]).ok().json(),
        json!({ "key": 500000000000001i64, "kind": "text", "value": "c" })
    );
    assert_eq!(diskq(&["pull", d, "--prefix", "jobs"]).ok().text(), "job");
    diskq(&["pull", d, "--prefix", "jobs"]).absent();
    assert_eq!(diskq(&["pull", d]).ok().text(), "b");
    let empty = diskq(&["pull", d, "--json"]).absent();
    assert_eq!(empty.stdout, b"", "nothing on stdout when empty");
}

#[test]
fn a_prefix_does_not_pull_the_items_of_a_longer_prefix() {
    let tmp = tempfile::tempdir().unwrap();
    let d = arg(tmp.path());
    assert_eq!(
        diskq(&["push", d, "theirs", "--prefix", "jobs-2"]).ok().text(),
        "jobs-2-500000000000000\n"
    );
    diskq(&["pull", d, "--prefix", "jobs"]).absent();
    assert_eq!(
        diskq(&["push", d, "mine", "--prefix", "jobs"]).ok().text(),
        "jobs-500000000000000\n"
    );
    assert_eq!(diskq(&["pull", d, "--prefix", "jobs", "--back"]).ok().text(), "mine");
    assert_eq!(diskq(&["pull", d, "--prefix", "jobs-2"]).ok().text(), "theirs");
}

#[test]
fn an_empty_queue_exits_2_after_the_wait() {
    let tmp = tempfile::tempdir().unwrap();
    let d = arg(tmp.path());
    diskq(&["set", d, "not", "a queue item"]).ok();
    let start = Instant::now();
    diskq(&["pull", d, "--wait", "0.5"]).absent();
    let waited = start.elapsed();
    assert!(waited >= Duration::from_millis(500), "waited only {waited:?}");
    assert!(waited < Duration::from_secs(5), "waited {waited:?}");
    assert_eq!(diskq(&["len", d]).ok().text(), "1\n", "the other item is untouched");
}

#[test]
fn a_waiting_pull_gets_an_item_pushed_by_another_process() {
    let tmp = tempfile::tempdir().unwrap();
    let d = arg(tmp.path());
    diskq(&["set", d, "unrelated", "x"]).ok();
    let consumer = Command::new(DISKQ)
        .args(["pull", d, "--prefix", "work", "--wait", "20"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let pushed = Instant::now();
    diskq(&["push", d, "hello from a producer", "--prefix", "work"]).ok();
    let out = consumer.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.stdout, b"hello from a producer");
    assert!(pushed.elapsed() < Duration::from_secs(5), "noticed the push late");
}

#[test]
fn shell_pipelines_move_every_item_once() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("q");
    // A producer loop and a consumer loop, separate processes each time;
    // the consumer stops at the first empty pull (exit status 2).
    let run = shell(
        r#"
        set -eu
        for i in $(seq 1 30); do "$DISKQ" push "$D" "item-$i" >/dev/null; done
        while v=$("$DISKQ" pull "$D"); do echo "$v"; done
        status=0; "$DISKQ" pull "$D" 2>/dev/null || status=$?
        echo "status $status"
        "$DISKQ" len "$D"
        "#,
        &dir,
    )
    .ok();
    let want: Vec<String> = (1..=30)
        .map(|i| format!("item-{i}"))
        .chain(["status 2".to_string(), "0".to_string()])
        .collect();
    assert_eq!(run.text().lines().collect::<Vec<_>>(), want);

    // Values through pipes: stdin into push, pull's output into the next
    // command, and a consumer started before its producer.
    let run = shell(
        r#"
        set -euo pipefail
        "$DISKQ" pull "$D" --prefix p --wait 20 > "$D.out" &
        consumer=$!
        sleep 0.3
        printf 'piped\x00bytes' | "$DISKQ" push "$D" - --prefix p
        wait $consumer
        od -An -c "$D.out" | tr -s ' '
        "$DISKQ" push "$D" "one" >/dev/null
        "$DISKQ" pull "$D" | "$DISKQ" set "$D" copied -
        "$DISKQ" get "$D" copied
        "#,
        &dir,
    )
    .ok();
    assert_eq!(run.text(), "p-500000000000000\n p i p e d \\0 b y t e s\none");
}

#[test]
fn concurrent_consumers_split_the_queue() {
    let tmp = tempfile::tempdir().unwrap();
    let d = arg(tmp.path());
    let cache = Cache::open(d).unwrap();
    for i in 0..60 {
        cache.push(&format!("job-{i}")).unwrap();
    }
    // Three shell consumers, each pulling until the queue is empty.
    let consumers: Vec<_> = (0..3)
        .map(|_| {
            Command::new("bash")
                .arg("-c")
                .arg(r#"while v=$("$DISKQ" pull "$D"); do echo "$v"; done"#)
                .env("DISKQ", DISKQ)
                .env("D", d)
                .stdout(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut taken: Vec<String> = consumers
        .into_iter()
        .flat_map(|c| {
            let out = c.wait_with_output().unwrap();
            String::from_utf8(out.stdout)
                .unwrap()
                .lines()
                .map(String::from)
                .collect::<Vec<_>>()
        })
        .collect();
    taken.sort();
    let mut want: Vec<String> = (0..60).map(|i| format!("job-{i}")).collect();
    want.sort();
    assert_eq!(taken, want, "every job exactly once");
}

#[test]
fn ten_mib_from_stdin_through_set_and_push() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("q");
    let d = arg(&dir);
    let big = ten_mib();

    let set = diskq_with_stdin(&["set", d, "big", "-", "--json"], Some(&big)).ok();
    assert_eq!(set.json(), json!({ "key": "big", "size": big.len() }));
    let cache = Cache::open(d).unwrap();
    let reader = cache.read("big").unwrap().unwrap();
    assert_eq!(reader.len(), big.len() as u64);
    assert!(reader.path().is_some(), "streamed into a value file");
    let got = diskq(&["get", d, "big"]).ok();
    assert!(got.stdout == big, "get gave back {} other bytes", got.stdout.len());

    let key = diskq_with_stdin(&["push", d, "-", "--prefix", "blobs"], Some(&big)).ok();
    assert_eq!(key.text(), "blobs-500000000000000\n");
    let peeked: (Key, serde_bytes::ByteBuf) = cache.peek_with(&PullOptions::new().prefix("blobs")).unwrap().unwrap();
    assert!(peeked.1.as_slice() == big, "pushed as bytes");
    let pulled = diskq(&["pull", d, "--prefix", "blobs"]).ok();
    assert!(
        pulled.stdout == big,
        "pull gave back {} other bytes",
        pulled.stdout.len()
    );

    // And through a shell pipe, which delivers it in pieces.
    let run = shell(
        r#"set -euo pipefail
        head -c 10485760 /dev/urandom > "$D.in"
        "$DISKQ" set "$D" piped - < "$D.in"
        "$DISKQ" get "$D" piped | cmp - "$D.in" && echo same"#,
        &dir,
    )
    .ok();
    assert_eq!(run.text(), "same\n");
}

#[test]
fn a_closed_output_pipe_is_not_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = Cache::open(tmp.path()).unwrap();
    let items: Vec<(String, i64)> = (0..20_000).map(|i| (format!("key-{i}"), i)).collect();
    cache
        .set_many(items.iter().map(|(k, v)| (k.as_str(), v)), &Default::default())
        .unwrap();
    let run = shell(
        r#"set -o pipefail; "$DISKQ" keys "$D" | head -n 1; echo "status $?""#,
        tmp.path(),
    );
    assert_eq!(run.stderr, "");
    assert_eq!(run.text(), "key-0\nstatus 0\n");
}

#[test]
fn a_queue_made_by_push_never_culls_its_items() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("q");
    let d = arg(&dir);
    diskq(&["push", d, "first"]).ok();
    let stats = diskq(&["stats", d, "--json"]).ok().json();
    assert_eq!(stats["settings"]["eviction_policy"], "none", "{stats}");
    // A size limit far below what the queue holds: with any other policy
    // every push would cull.
    drop(Cache::builder().size_limit(1).open(d).unwrap());
    for i in 0..20 {
        diskq(&["push", d, &format!("item-{i}")]).ok();
    }
    assert_eq!(diskq(&["len", d]).ok().text(), "21\n");
    let stats = diskq(&["stats", d, "--json"]).ok().json();
    assert_eq!(stats["culled"], 0, "{stats}");
    assert_eq!(stats["settings"]["size_limit"], 1, "{stats}");
    assert_eq!(diskq(&["pull", d]).ok().text(), "first");
}

#[test]
fn a_push_into_an_existing_cache_keeps_its_policy_and_counts_its_culls() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("c");
    let d = arg(&dir);
    // `set` makes a cache with python-diskcache's defaults; the user then
    // chooses a tiny size limit.
    diskq(&["set", d, "k", "v"]).ok();
    drop(Cache::builder().size_limit(1).open(d).unwrap());
    for i in 0..5 {
        diskq(&["push", d, &format!("item-{i}")]).ok();
    }
    let stats = diskq(&["stats", d, "--json"]).ok().json();
    assert_eq!(stats["settings"]["eviction_policy"], "least-recently-stored", "{stats}");
    let left: u64 = diskq(&["len", d]).ok().text().trim().parse().unwrap();
    assert!(left < 6, "the size limit culled");
    assert_eq!(stats["culled"], 6 - left, "every culled item is counted: {stats}");
    let text = diskq(&["stats", d]).ok().text();
    let row = text.lines().find(|l| l.starts_with("culled")).unwrap_or_default();
    assert_eq!(
        row.split_whitespace().nth(1),
        Some((6 - left).to_string().as_str()),
        "{text}"
    );
    assert_eq!(Cache::open(d).unwrap().stats().unwrap().culled, 6 - left);
}
