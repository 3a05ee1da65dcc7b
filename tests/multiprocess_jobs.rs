//! Unique jobs across real OS processes: 4 processes push the same unique
//! keys at once; each key is stored once, and the pushes that reported
//! success are exactly one per key.
//!
//! Child processes are this test binary run again with `DISKQ_ROLE` set.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use diskq::{Cache, PullOptions};

#[path = "support/job_scenarios.rs"]
mod scenarios;

const KEYS: usize = 200;
const PROCESSES: usize = 4;

fn open(dir: &Path) -> Cache {
    Cache::builder().timeout(Duration::from_secs(120)).open(dir).unwrap()
}

#[test]
fn child() {
    let Ok(role) = std::env::var("DISKQ_ROLE") else { return };
    assert_eq!(role, "unique-pusher");
    let dir = PathBuf::from(std::env::var("DISKQ_DIR").unwrap());
    let id: usize = std::env::var("DISKQ_ID").unwrap().parse().unwrap();
    let cache = open(&dir);
    // Ready: wait for the parent's go (one line on stdin) so all start at once.
    println!("ready");
    std::io::stdout().flush().unwrap();
    let mut go = String::new();
    std::io::stdin().read_line(&mut go).unwrap();
    let won: Vec<String> = scenarios::push_unique_keys(&cache, id, KEYS)
        .iter()
        .map(usize::to_string)
        .collect();
    println!("won:{}", won.join(","));
}

#[test]
fn unique_pushes_from_four_processes_store_one_item_per_key() {
    let tmp = tempfile::tempdir().unwrap();
    race(tmp.path());
}

/// The same with 4 processes as clients of one PostgreSQL schema.
#[cfg(feature = "postgres")]
#[test]
fn unique_pushes_from_four_postgres_clients_store_one_item_per_key() {
    race(Path::new(&pg::location("unique_processes")));
}

#[cfg(feature = "postgres")]
#[path = "support/pg.rs"]
mod pg;

/// 4 processes push the keys with unique keys into the store at `location`.
fn race(location: &Path) {
    open(location); // make the store before the race
    let mut children: Vec<_> = (0..PROCESSES)
        .map(|id| {
            Command::new(std::env::current_exe().unwrap())
                .args(["--exact", "child", "--nocapture", "--test-threads=1", "--quiet"])
                .env("DISKQ_ROLE", "unique-pusher")
                .env("DISKQ_DIR", location)
                .env("DISKQ_ID", id.to_string())
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut readers: Vec<_> = children
        .iter_mut()
        .map(|c| BufReader::new(c.stdout.take().unwrap()))
        .collect();
    // The test harness prints lines of its own around the child's.
    for r in &mut readers {
        loop {
            let mut line = String::new();
            assert!(r.read_line(&mut line).unwrap() > 0, "a child ended before it was ready");
            if line.trim() == "ready" {
                break;
            }
        }
    }
    for c in &mut children {
        c.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
    }
    let mut wins: HashMap<String, usize> = HashMap::new();
    for (r, c) in readers.iter_mut().zip(&mut children) {
        let mut out = String::new();
        r.read_to_string(&mut out).unwrap();
        assert!(c.wait().unwrap().success());
        let line = out
            .lines()
            .find_map(|l| l.strip_prefix("won:"))
            .expect("a child's report");
        for k in line.split(',').filter(|k| !k.is_empty()) {
            *wins.entry(k.to_string()).or_default() += 1;
        }
    }
    assert_eq!(wins.len(), KEYS, "every key was pushed by someone");
    assert!(wins.values().all(|&n| n == 1), "one successful push per key: {wins:?}");
    let cache = open(location);
    let stored = cache
        .pull_many::<String>(KEYS * PROCESSES, &PullOptions::new().prefix("jobs"))
        .unwrap();
    assert_eq!(stored.len(), KEYS, "one item per key");
    let mut seen: Vec<usize> = stored
        .iter()
        .map(|(_, v)| v.split(' ').next().unwrap().parse().unwrap())
        .collect();
    // Higher priority first.
    let priorities: Vec<usize> = seen.iter().map(|k| k % 3).collect();
    assert!(priorities.windows(2).all(|w| w[0] >= w[1]), "{priorities:?}");
    seen.sort_unstable();
    assert_eq!(seen, (0..KEYS).collect::<Vec<_>>());
    assert_eq!(cache.queue_stats(Some("jobs")).unwrap().pushed, KEYS as u64);
}
