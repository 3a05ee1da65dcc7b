//! Group commit: writes of several threads of one process share
//! transactions. Every write is acknowledged only once committed, a write
//! that fails fails alone, a queued write still times out, and a SIGKILL in
//! the middle of several writer threads loses nothing acknowledged.
#![allow(clippy::unwrap_used)]

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Barrier};
use std::time::Duration;

use diskq::{Cache, CheckOptions, Deque, Error, WarningKind};

const THREADS: usize = 8;

fn open(dir: &Path) -> Cache {
    Cache::builder()
        .min_file_size(1024)
        .timeout(Duration::from_secs(30))
        .open(dir)
        .unwrap()
}

/// The value thread `t` writes as its `n`th: some large enough for a value file.
fn value(t: usize, n: u64) -> Vec<u8> {
    let len = if n.is_multiple_of(5) { 1500 } else { 16 };
    let mut v = format!("{t}:{n}:").into_bytes();
    v.resize(len, b'.');
    v
}

#[test]
fn every_write_of_many_threads_lands_with_its_value() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = open(tmp.path());
    let barrier = Arc::new(Barrier::new(THREADS));
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let (cache, barrier) = (cache.clone(), barrier.clone());
            s.spawn(move || {
                barrier.wait();
                for n in 0..300u64 {
                    cache.set_bytes(format!("k{t}-{n}").as_str(), &value(t, n)).unwrap();
                    if n.is_multiple_of(3) {
                        // A read of the write just acknowledged sees it.
                        assert_eq!(
                            cache.get_bytes(format!("k{t}-{n}").as_str()).unwrap(),
                            Some(value(t, n))
                        );
                    }
                }
            });
        }
    });
    assert_eq!(cache.len().unwrap(), THREADS * 300, "len");
    for t in 0..THREADS {
        for n in 0..300u64 {
            assert_eq!(
                cache.get_bytes(format!("k{t}-{n}").as_str()).unwrap(),
                Some(value(t, n)),
                "k{t}-{n}"
            );
        }
    }
    assert!(cache.check().unwrap().is_empty(), "check");
}

#[test]
fn a_failing_write_fails_alone_among_others() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = open(tmp.path());
    cache.set("text", &"not a number").unwrap();
    let barrier = Arc::new(Barrier::new(THREADS));
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let (cache, barrier) = (cache.clone(), barrier.clone());
            s.spawn(move || {
                barrier.wait();
                for n in 0..200u64 {
                    if t.is_multiple_of(2) {
                        // Fails every time: the value is text.
                        assert!(cache.incr("text", 1, 0).is_err(), "incr of text");
                        // Adds under a key the others share: exactly one wins.
                        cache.add(format!("shared-{n}").as_str(), &(t as u64)).unwrap();
                    } else {
                        cache.set(format!("k{t}-{n}").as_str(), &n).unwrap();
                        assert_eq!(cache.incr(format!("c{t}").as_str(), 1, 0).unwrap(), n as i64 + 1);
                    }
                }
            });
        }
    });
    assert_eq!(cache.get::<String>("text").unwrap().as_deref(), Some("not a number"));
    for t in (1..THREADS).step_by(2) {
        for n in 0..200u64 {
            assert_eq!(cache.get::<u64>(format!("k{t}-{n}").as_str()).unwrap(), Some(n));
        }
        assert_eq!(cache.get::<i64>(format!("c{t}").as_str()).unwrap(), Some(200));
    }
    for n in 0..200u64 {
        let winner = cache.get::<u64>(format!("shared-{n}").as_str()).unwrap().unwrap();
        assert!(winner.is_multiple_of(2), "shared-{n} written by an adding thread");
    }
}

#[test]
fn a_write_queued_behind_a_waiting_writer_times_out() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = Cache::builder()
        .timeout(Duration::from_millis(200))
        .open(tmp.path())
        .unwrap();
    // A second handle of its own (another store) holds the write lock in a
    // transact block until the writers below have given up.
    let holder = Cache::builder()
        .timeout(Duration::from_millis(200))
        .open(tmp.path())
        .unwrap();
    let (locked_tx, locked_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    std::thread::scope(|s| {
        s.spawn(move || {
            holder
                .transact(|c| {
                    c.set("held", &1)?;
                    locked_tx.send(()).unwrap();
                    release_rx.recv().unwrap();
                    Ok::<_, Error>(())
                })
                .unwrap();
        });
        locked_rx.recv().unwrap();
        let results: Vec<_> = (0..4)
            .map(|t| {
                let cache = cache.clone();
                s.spawn(move || cache.set(format!("w{t}").as_str(), &t))
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect();
        for r in &results {
            assert!(matches!(r, Err(e) if e.is_timeout()), "{r:?}");
        }
        release_tx.send(()).unwrap();
    });
    // The lock is free again: the writers' turn comes back.
    cache.set("after", &1).unwrap();
    assert_eq!(cache.get::<i64>("held").unwrap(), Some(1));
    for t in 0..4 {
        assert_eq!(cache.get::<i64>(format!("w{t}").as_str()).unwrap(), None);
    }
}

/// The child of the crash test: `THREADS` threads set their own keys and
/// push to one deque, printing `S t n` / `P t n` on stdout once a write is
/// acknowledged.
#[test]
fn group_crash_child() {
    let Ok(dir) = std::env::var("DISKQ_GROUP_CRASH_DIR") else {
        return;
    };
    let from: u64 = std::env::var("DISKQ_GROUP_CRASH_FROM").unwrap().parse().unwrap();
    let cache = open(Path::new(&dir));
    let out = Arc::new(std::sync::Mutex::new(std::io::stdout()));
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let (cache, out) = (cache.clone(), out.clone());
            s.spawn(move || {
                let deque: Deque<u64> = Deque::from_cache(cache.clone());
                for n in from.. {
                    if n.is_multiple_of(2) {
                        cache.set_bytes(format!("k{t}-{n}").as_str(), &value(t, n)).unwrap();
                        writeln!(out.lock().unwrap(), "S {t} {n}").unwrap();
                    } else {
                        deque.push_back(&(t as u64 * 1_000_000 + n)).unwrap();
                        writeln!(out.lock().unwrap(), "P {t} {n}").unwrap();
                    }
                    out.lock().unwrap().flush().unwrap();
                }
            });
        }
    });
}

#[test]
fn sigkill_among_writer_threads_loses_nothing_acknowledged() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cache");
    open(&dir);
    let exe = std::env::current_exe().unwrap();
    let mut acked_sets: Vec<(usize, u64)> = Vec::new();
    let mut acked_pushes: HashSet<u64> = HashSet::new();
    let mut from = 0u64;
    for round in 0..6u64 {
        let mut child = Command::new(&exe)
            .args(["--exact", "group_crash_child", "--nocapture", "--test-threads=1"])
            .env("DISKQ_GROUP_CRASH_DIR", &dir)
            .env("DISKQ_GROUP_CRASH_FROM", from.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        // Killed once it has acknowledged a number of writes that differs by round.
        let want = 50 + round * 97;
        let mut seen = 0;
        while seen < want {
            let Some(line) = lines.next() else { break };
            let line = line.unwrap();
            let parts: Vec<&str> = line.split(' ').collect();
            // Only the child's own lines (libtest prints its own too).
            let (t, n): (usize, u64) = match parts.as_slice() {
                ["S" | "P", t, n] => (t.parse().unwrap(), n.parse().unwrap()),
                _ => continue,
            };
            match parts[0] {
                "S" => acked_sets.push((t, n)),
                "P" => {
                    acked_pushes.insert(t as u64 * 1_000_000 + n);
                }
                _ => continue,
            }
            seen += 1;
        }
        child.kill().unwrap();
        // What it printed before the kill was acknowledged too.
        for line in lines.map_while(std::result::Result::ok) {
            let parts: Vec<&str> = line.split(' ').collect();
            if let [kind @ ("S" | "P"), t, n] = parts.as_slice() {
                let (t, n): (usize, u64) = (t.parse().unwrap(), n.parse().unwrap());
                if *kind == "S" {
                    acked_sets.push((t, n));
                } else if *kind == "P" {
                    acked_pushes.insert(t as u64 * 1_000_000 + n);
                }
            }
        }
        child.wait().unwrap();
        from += 100_000;

        let cache = open(&dir);
        // No writer runs now: the killed one's unfinished value files go at once.
        let no_grace = CheckOptions::new().fix(true).orphan_grace(Duration::ZERO);
        for w in cache.check_with(&no_grace).unwrap() {
            assert!(
                matches!(w.kind, WarningKind::UnknownFile | WarningKind::EmptyDirectory),
                "round {round}: check found {w}"
            );
        }
        for &(t, n) in &acked_sets {
            assert_eq!(
                cache.get_bytes(format!("k{t}-{n}").as_str()).unwrap(),
                Some(value(t, n)),
                "round {round}: acknowledged set k{t}-{n}"
            );
        }
        let deque: Deque<u64> = Deque::from_cache(cache.clone());
        let items: Vec<u64> = deque.iter().unwrap().map(|r| r.unwrap()).collect();
        let mut count: HashMap<u64, usize> = HashMap::new();
        for item in &items {
            *count.entry(*item).or_default() += 1;
        }
        assert!(count.values().all(|c| *c == 1), "round {round}: a pushed item twice");
        for item in &acked_pushes {
            assert!(count.contains_key(item), "round {round}: acknowledged push {item} lost");
        }
        let left = cache.check().unwrap();
        assert!(left.is_empty(), "round {round}: repair left {left:?}");
    }
    assert!(acked_sets.len() > 100 && acked_pushes.len() > 100);
}
