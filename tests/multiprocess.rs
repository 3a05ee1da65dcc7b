//! Threads and real OS processes on one directory: exact counts, every queue
//! item taken exactly once, transactions atomic across processes, and lock
//! timeouts that end in `Error::Timeout` instead of a hang.
//!
//! Child processes are this test binary run again with `DISKQ_ROLE` set; in a
//! normal run the child test returns at once.
#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use diskq::{Cache, PullOptions, PushOptions, SetOptions};

fn open(dir: &Path) -> Cache {
    Cache::builder().timeout(Duration::from_secs(120)).open(dir).unwrap()
}

fn spawn(role: &str, dir: &Path, id: usize, count: usize) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child", "--nocapture", "--test-threads=1", "--quiet"])
        .env("DISKQ_ROLE", role)
        .env("DISKQ_DIR", dir)
        .env("DISKQ_ID", id.to_string())
        .env("DISKQ_COUNT", count.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

/// Waits for a child and returns its `RESULT ` lines.
fn results(child: Child) -> Vec<String> {
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "child failed: {}", out.status);
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.strip_prefix("RESULT ").map(str::to_owned))
        .collect()
}

/// Children start together: each waits for the parent's `go` key.
fn wait_for_go(cache: &Cache) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !cache.contains_key("go").unwrap() {
        assert!(Instant::now() < deadline, "no go signal");
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn item(producer: usize, n: usize) -> String {
    // Every 100th item is large enough for a value file.
    let pad = if n.is_multiple_of(100) { 40_000 } else { 0 };
    format!("p{producer}-{n:06}-{}", "x".repeat(pad))
}

fn parse_item(s: &str) -> (usize, usize) {
    let mut parts = s.split('-');
    let producer = parts.next().unwrap()[1..].parse().unwrap();
    let n = parts.next().unwrap().parse().unwrap();
    (producer, n)
}

#[test]
fn child() {
    let Ok(role) = std::env::var("DISKQ_ROLE") else { return };
    let dir = PathBuf::from(std::env::var("DISKQ_DIR").unwrap());
    let id: usize = std::env::var("DISKQ_ID").unwrap().parse().unwrap();
    let count: usize = std::env::var("DISKQ_COUNT").unwrap().parse().unwrap();
    let cache = open(&dir);
    wait_for_go(&cache);
    match role.as_str() {
        "incr" => {
            let added = cache.add("first", &id).unwrap();
            println!("RESULT added {added}");
            for _ in 0..count {
                cache.incr("counter", 1, 0).unwrap();
            }
        }
        "producer" => {
            let jobs = PushOptions::new().prefix("jobs");
            for n in 0..count {
                let v = item(id, n);
                // Alternate between the integer queue and a prefixed one.
                if n % 2 == 0 {
                    cache.push(&v).unwrap()
                } else {
                    cache.push_with(&v, &jobs).unwrap()
                };
            }
            cache.incr("producers-done", 1, 0).unwrap();
        }
        "consumer" => {
            let queues = [PullOptions::new(), PullOptions::new().prefix("jobs")];
            loop {
                let done = cache.get::<i64>("producers-done").unwrap() == Some(2);
                let mut got_any = false;
                for q in &queues {
                    if let Some((_, v)) = cache.pull_with::<String>(q).unwrap() {
                        let (producer, n) = parse_item(&v);
                        assert_eq!(v, item(producer, n), "item damaged");
                        println!("RESULT {producer} {n}");
                        got_any = true;
                    }
                }
                if done && !got_any {
                    break;
                }
            }
        }
        "transact" => {
            for _ in 0..count {
                cache
                    .transact(|c| {
                        let v: i64 = c.get("plain")?.unwrap_or(0);
                        c.set("plain", &(v + 1))
                    })
                    .unwrap();
            }
        }
        "holder" => {
            cache
                .transact(|c| {
                    c.set("held", "by holder")?;
                    println!("RESULT holding");
                    // Hold until the parent writes `release` (or `count` ms pass).
                    let until = Instant::now() + Duration::from_millis(count as u64);
                    while !dir.join("release").exists() && Instant::now() < until {
                        std::thread::sleep(Duration::from_millis(2));
                    }
                    Ok::<_, diskq::Error>(())
                })
                .unwrap();
        }
        other => panic!("unknown role {other}"),
    }
}

#[test]
fn eight_threads_incr_one_key_to_8000() {
    let dir = tempfile::tempdir().unwrap();
    let cache = open(dir.path());
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let cache = cache.clone();
            std::thread::spawn(move || {
                for _ in 0..1000 {
                    cache.incr("n", 1, 0).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(cache.get::<i64>("n").unwrap(), Some(8000));
}

#[test]
fn processes_incr_and_add_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let cache = open(dir.path());
    let children: Vec<_> = (0..3).map(|id| spawn("incr", dir.path(), id, 1000)).collect();
    cache.set("go", &1).unwrap();
    let added: Vec<bool> = children
        .into_iter()
        .flat_map(results)
        .map(|line| line.strip_prefix("added ").unwrap().parse().unwrap())
        .collect();
    assert_eq!(cache.get::<i64>("counter").unwrap(), Some(3000));
    assert_eq!(
        added.iter().filter(|a| **a).count(),
        1,
        "exactly one add wins: {added:?}"
    );
    // The handle opened before the children ran still works.
    cache.set("after", &true).unwrap();
    assert_eq!(cache.get::<bool>("after").unwrap(), Some(true));
}

#[test]
fn two_producers_two_consumers_move_every_item_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let cache = open(dir.path());
    const PER_PRODUCER: usize = 2000;
    let mut children: Vec<_> = (0..2).map(|id| spawn("consumer", dir.path(), id, 0)).collect();
    children.extend((0..2).map(|id| spawn("producer", dir.path(), id, PER_PRODUCER)));
    cache.set("go", &1).unwrap();
    let mut seen = HashSet::new();
    let mut per_consumer = Vec::new();
    for child in children {
        let lines = results(child);
        let items: Vec<(usize, usize)> = lines
            .iter()
            .map(|l| {
                let mut p = l.split(' ');
                (p.next().unwrap().parse().unwrap(), p.next().unwrap().parse().unwrap())
            })
            .collect();
        for it in &items {
            assert!(seen.insert(*it), "item {it:?} taken twice");
        }
        per_consumer.push(items);
    }
    assert_eq!(seen.len(), 2 * PER_PRODUCER, "items lost");
    // Within one consumer, each producer's items of one queue come in order.
    for items in &per_consumer {
        for producer in 0..2 {
            for parity in 0..2 {
                let ns: Vec<usize> = items
                    .iter()
                    .filter(|(p, n)| *p == producer && n % 2 == parity)
                    .map(|(_, n)| *n)
                    .collect();
                assert!(
                    ns.windows(2).all(|w| w[0] < w[1]),
                    "out of order for producer {producer}"
                );
            }
        }
    }
    assert_eq!(cache.len().unwrap(), 2, "only the go and producers-done keys remain");
    assert!(cache.check().unwrap().is_empty());
}

#[test]
fn transact_makes_read_modify_write_atomic_across_processes() {
    let dir = tempfile::tempdir().unwrap();
    let cache = open(dir.path());
    let children: Vec<_> = (0..2).map(|id| spawn("transact", dir.path(), id, 500)).collect();
    cache.set("go", &1).unwrap();
    for child in children {
        results(child);
    }
    assert_eq!(cache.get::<i64>("plain").unwrap(), Some(1000));
}

#[test]
fn a_lock_held_past_the_timeout_is_a_timeout_error() {
    let dir = tempfile::tempdir().unwrap();
    let cache = open(dir.path());
    cache.set("held", "before").unwrap();
    // The holder keeps its transaction until told to release (at most 120 s):
    // a set that waited for the lock instead of timing out would succeed.
    let mut holder = spawn("holder", dir.path(), 0, 120_000);
    let stdout = holder.stdout.take().unwrap();
    cache.set("go", &1).unwrap();
    // Wait until the holder is inside its transaction.
    use std::io::BufRead;
    let mut lines = std::io::BufReader::new(stdout).lines();
    assert!(lines.any(|l| l.unwrap().contains("RESULT holding")));

    let impatient = Cache::builder()
        .timeout(Duration::from_millis(200))
        .open(dir.path())
        .unwrap();
    let err = impatient.set("other", &1).unwrap_err();
    assert!(err.is_timeout(), "{err}");
    // Readers are not blocked by the writer and see the committed state.
    assert_eq!(impatient.get::<String>("held").unwrap().as_deref(), Some("before"));
    assert_eq!(impatient.get::<i64>("other").unwrap(), None);
    // With retry, the write waits for the holder and then succeeds.
    std::fs::write(dir.path().join("release"), b"").unwrap();
    impatient.set_with("other", &2, &SetOptions::new().retry(true)).unwrap();
    assert!(holder.wait().unwrap().success());
    assert_eq!(cache.get::<i64>("other").unwrap(), Some(2));
    assert_eq!(cache.get::<String>("held").unwrap().as_deref(), Some("by holder"));
}
