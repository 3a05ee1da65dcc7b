//! `diskq pull` past an item it cannot read, a `--wait` that ends on time
//! while another process holds the write lock, and waits too long for the
//! clock.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{arg, diskq};
use diskq::Cache;

/// `pickle.dumps((1, 'two'), protocol=5)`, as python-diskcache stores a tuple.
const PICKLE: &[u8] = &[
    128, 5, 149, 11, 0, 0, 0, 0, 0, 0, 0, 75, 1, 140, 3, 116, 119, 111, 148, 134, 148, 46,
];

/// The row python-diskcache's `Deque.append((1, 'two'))` writes at `key`.
fn append_pickle(dir: &std::path::Path, key: i64) {
    let conn = rusqlite::Connection::open(dir.join("cache.db")).unwrap();
    conn.execute(
        "INSERT INTO Cache (key, raw, store_time, expire_time, access_time, access_count, \
         tag, size, mode, filename, value) VALUES (?1, 1, 0, NULL, 0, 0, NULL, ?2, 4, NULL, ?3)",
        rusqlite::params![key, PICKLE.len() as i64, PICKLE],
    )
    .unwrap();
}

#[test]
fn a_pickled_item_is_named_and_pull_dead_letter_gets_past_it() {
    let tmp = tempfile::tempdir().unwrap();
    let d = arg(tmp.path());
    let cache = Cache::open(tmp.path()).unwrap();
    cache.push("one").unwrap();
    append_pickle(tmp.path(), 500_000_000_000_001);
    cache.push("three").unwrap();

    assert_eq!(diskq(&["pull", d]).ok().text(), "one");
    for _ in 0..2 {
        let failed = diskq(&["pull", d]).fails(1, "500000000000001");
        assert!(
            failed.stderr.contains("--dead-letter"),
            "says the way past: {}",
            failed.stderr
        );
        assert!(!failed.stderr.contains("diskq-lease"), "{}", failed.stderr);
    }
    assert_eq!(cache.len().unwrap(), 2, "the failed pulls took nothing");

    let past = diskq(&["pull", d, "--dead-letter"]);
    assert_eq!(
        (past.code, past.text().as_str()),
        (0, "three"),
        "stderr: {}",
        past.stderr
    );
    assert!(
        past.stderr.contains("moved the item 500000000000001") && past.stderr.contains("\"dead-letter\""),
        "{}",
        past.stderr
    );
    assert_eq!(cache.len().unwrap(), 1, "the pickle is kept, in the dead-letter queue");
    diskq(&["pull", d]).absent();
    diskq(&["pull", d, "--prefix", "dead-letter"]).fails(1, "Python pickle");
}

#[test]
fn a_wait_ends_on_time_while_another_process_holds_the_write_lock() {
    let tmp = tempfile::tempdir().unwrap();
    let d = arg(tmp.path());
    let cache = Cache::open(tmp.path()).unwrap();
    let (held_tx, held_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let holder = cache.clone();
    let holding = std::thread::spawn(move || {
        holder
            .transact(|c| {
                c.set("holder", &1)?;
                held_tx.send(()).unwrap();
                release_rx.recv().unwrap();
                Ok::<_, diskq::Error>(())
            })
            .unwrap();
    });
    held_rx.recv().unwrap();
    // The tool's cache timeout is 60 s; its wait is 0.2 s.
    let started = Instant::now();
    let run = diskq(&["pull", d, "--wait", "0.2"]);
    let took = started.elapsed();
    release_tx.send(()).unwrap();
    holding.join().unwrap();
    assert!(took < Duration::from_secs(10), "pull --wait 0.2 took {took:?}");
    match run.code {
        2 => assert_eq!(run.stderr, ""),
        _ => {
            run.fails(1, "locked");
        }
    }
}

#[test]
fn a_wait_too_long_for_the_clock_is_as_long_as_possible() {
    let tmp = tempfile::tempdir().unwrap();
    let d = arg(tmp.path());
    diskq(&["push", d, "a"]).ok();
    diskq(&["push", d, "b"]).ok();
    assert_eq!(diskq(&["pull", d, "--wait", "1e19"]).ok().text(), "a");
    assert_eq!(diskq(&["pull", d, "--wait", "1e300"]).ok().text(), "b");
    diskq(&["pull", d, "--wait", "-1"]).fails(1, "from 0 up");
}
