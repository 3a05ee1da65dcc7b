//! Load: 2 processes × 4 threads on one directory, ten reads to one write,
//! for a few seconds in the default run and a minute behind `--ignored`.
//! The only error allowed is `Timeout` (the caches have one); the final
//! state must equal what the workers' acknowledged operations imply.
//!
//! Each thread owns a few keys (so the last acknowledged value of each is
//! known), adds to one shared counter, and pushes and pulls items of one
//! shared queue. An operation that timed out may or may not have
//! happened, and is checked as such.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use diskq::{Cache, Error};
use serde::{Deserialize, Serialize};

const PROCESSES: u64 = 2;
const THREADS: u64 = 4;
const KEYS_PER_THREAD: u64 = 8;

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Value {
    owner: u64,
    seq: u64,
    pad: String,
}

/// What one thread did.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Report {
    /// Per owned key: the last acknowledged seq and the last attempted seq.
    keys: BTreeMap<String, (Option<u64>, u64)>,
    incr_acked: i64,
    incr_attempted: i64,
    pushed_acked: Vec<u64>,
    pushed_unsure: Vec<u64>,
    pulled: Vec<u64>,
    reads: u64,
    writes: u64,
    timeouts: u64,
}

fn open(dir: &Path) -> Cache {
    Cache::builder().timeout(Duration::from_secs(5)).open(dir).unwrap()
}

fn key(owner: u64, k: u64) -> String {
    format!("w{owner}k{k}")
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Sorts an outcome: acknowledged, timed out, or a failure of the test.
fn outcome<T>(r: Result<T, Error>, report: &mut Report, what: &str) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(Error::Timeout) => {
            report.timeouts += 1;
            None
        }
        Err(e) => panic!("{what}: an error other than Timeout: {e:?}"),
    }
}

fn worker(cache: &Cache, owner: u64, until: Instant) -> Report {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (owner + 1).wrapping_mul(0x1000_0000_01B3));
    let mut report = Report::default();
    let mut seq = 0u64;
    let mut push_id = owner << 40;
    while Instant::now() < until {
        let r = rng.next();
        if !r.is_multiple_of(11) {
            report.reads += 1;
            let other = rng.next() % (PROCESSES * THREADS);
            let k = rng.next() % KEYS_PER_THREAD;
            if r.is_multiple_of(5) {
                if let Some(n) = outcome(cache.get::<i64>("counter"), &mut report, "get counter") {
                    assert!(n.unwrap_or(0) >= 0);
                }
            } else if let Some(Some(v)) = outcome(cache.get::<Value>(key(other, k)), &mut report, "get") {
                assert_eq!(v.owner, other, "{} holds another worker's value", key(other, k));
            }
            continue;
        }
        report.writes += 1;
        match (r / 11) % 10 {
            0..=5 => {
                seq += 1;
                let k = rng.next() % KEYS_PER_THREAD;
                // One value in ten is large enough for a value file.
                let pad = if seq.is_multiple_of(10) { 40_000 } else { 10 };
                let v = Value {
                    owner,
                    seq,
                    pad: "p".repeat(pad),
                };
                let entry = report.keys.entry(key(owner, k)).or_insert((None, 0));
                entry.1 = seq;
                let acked = match cache.set(key(owner, k), &v) {
                    Ok(()) => true,
                    Err(Error::Timeout) => false,
                    Err(e) => panic!("set: an error other than Timeout: {e:?}"),
                };
                if acked {
                    report.keys.get_mut(&key(owner, k)).unwrap().0 = Some(seq);
                } else {
                    report.timeouts += 1;
                }
            }
            6..=7 => {
                report.incr_attempted += 1;
                if outcome(cache.incr("counter", 1, 0), &mut report, "incr").is_some() {
                    report.incr_acked += 1;
                }
            }
            8 => {
                push_id += 1;
                match outcome(cache.push(&push_id), &mut report, "push") {
                    Some(_) => report.pushed_acked.push(push_id),
                    None => report.pushed_unsure.push(push_id),
                }
            }
            _ => {
                if let Some(Some((_, id))) = outcome(cache.pull::<u64>(), &mut report, "pull") {
                    report.pulled.push(id);
                }
            }
        }
    }
    report
}

/// One worker process: `THREADS` threads on one shared `Cache`.
#[test]
fn load_child() {
    let Ok(dir) = std::env::var("DISKQ_LOAD_DIR") else {
        return;
    };
    let process: u64 = std::env::var("DISKQ_LOAD_PROCESS").unwrap().parse().unwrap();
    let secs: f64 = std::env::var("DISKQ_LOAD_SECS").unwrap().parse().unwrap();
    let cache = open(Path::new(&dir));
    let until = Instant::now() + Duration::from_secs_f64(secs);
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let cache = cache.clone();
            std::thread::spawn(move || worker(&cache, process * THREADS + t, until))
        })
        .collect();
    let reports: Vec<Report> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    println!("REPORTS {}", serde_json::to_string(&reports).unwrap());
}

fn run_load(secs: f64) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    open(dir);
    let exe = std::env::current_exe().unwrap();
    let started = Instant::now();
    let children: Vec<_> = (0..PROCESSES)
        .map(|p| {
            Command::new(&exe)
                .args(["--exact", "load_child", "--nocapture", "--test-threads=1"])
                .env("DISKQ_LOAD_DIR", dir)
                .env("DISKQ_LOAD_PROCESS", p.to_string())
                .env("DISKQ_LOAD_SECS", secs.to_string())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect::<Vec<_>>();
    let children: Vec<_> = children.into_iter().map(|c| c.wait_with_output().unwrap()).collect();
    let elapsed = started.elapsed();
    let mut reports = Vec::new();
    for out in children {
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "worker failed: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let json = stdout
            .lines()
            .find_map(|l| l.split("REPORTS ").nth(1))
            .unwrap_or_else(|| panic!("no report: {stdout}"));
        reports.extend(serde_json::from_str::<Vec<Report>>(json).unwrap());
    }
    assert_eq!(reports.len() as u64, PROCESSES * THREADS);

    let cache = open(dir);
    // Every owned key holds its last acknowledged value, or a later one
    // whose set timed out.
    for (owner, report) in reports.iter().enumerate() {
        for (k, (acked, attempted)) in &report.keys {
            let found = cache.get::<Value>(k.as_str()).unwrap();
            match (found, acked) {
                (Some(v), _) => {
                    assert_eq!(v.owner, owner as u64);
                    assert!(
                        Some(v.seq) >= *acked && v.seq <= *attempted,
                        "{k}: found seq {}, acked {acked:?}, attempted {attempted}",
                        v.seq
                    );
                }
                (None, None) => {}
                (None, Some(seq)) => panic!("{k}: acknowledged seq {seq} is gone"),
            }
        }
    }
    let acked: i64 = reports.iter().map(|r| r.incr_acked).sum();
    let attempted: i64 = reports.iter().map(|r| r.incr_attempted).sum();
    let counter = cache.get::<i64>("counter").unwrap().unwrap_or(0);
    assert!(
        (acked..=attempted).contains(&counter),
        "counter {counter}, acked {acked}, attempted {attempted}"
    );
    // Each acknowledged push was pulled once or is still queued; nothing twice.
    let mut seen = HashSet::new();
    let remaining: Vec<u64> = std::iter::from_fn(|| cache.pull::<u64>().unwrap().map(|(_, v)| v)).collect();
    for id in reports.iter().flat_map(|r| r.pulled.iter()).chain(remaining.iter()) {
        assert!(seen.insert(*id), "item {id} delivered twice");
    }
    let unsure: HashSet<u64> = reports.iter().flat_map(|r| r.pushed_unsure.iter().copied()).collect();
    for id in reports.iter().flat_map(|r| r.pushed_acked.iter()) {
        assert!(seen.remove(id), "item {id} was lost");
    }
    assert!(
        seen.iter().all(|id| unsure.contains(id)),
        "items never pushed: {seen:?}"
    );
    let warnings = cache.check().unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");

    let reads: u64 = reports.iter().map(|r| r.reads).sum();
    let writes: u64 = reports.iter().map(|r| r.writes).sum();
    let timeouts: u64 = reports.iter().map(|r| r.timeouts).sum();
    let pushes: usize = reports.iter().map(|r| r.pushed_acked.len()).sum();
    let pulls: usize = reports.iter().map(|r| r.pulled.len()).sum();
    eprintln!(
        "{PROCESSES} processes x {THREADS} threads for {secs} s (wall {:.1} s): {reads} reads, {writes} writes \
         ({:.0} ops/s), {timeouts} timeouts, counter {counter}, {pushes} pushes, {pulls} pulls, {} left queued",
        elapsed.as_secs_f64(),
        (reads + writes) as f64 / secs,
        remaining.len()
    );
    assert!(
        reads > writes * 5,
        "the mix is read-heavy: {reads} reads, {writes} writes"
    );
}

#[test]
fn two_processes_four_threads_for_five_seconds() {
    run_load(5.0);
}

#[test]
#[ignore = "runs for a minute"]
fn two_processes_four_threads_for_a_minute() {
    run_load(60.0);
}
