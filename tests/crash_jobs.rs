//! Crash test of jobs: a child process pushes plain, delayed, prioritized
//! and unique items and pops them, and is killed (SIGKILL on Unix) at a
//! varying moment, several times over one directory. After each kill the
//! parent checks that every acknowledged push is there once, that every
//! pop took the item the priorities say, that unique keys held no more than
//! one item, and that `check` finds nothing; the one operation in flight at
//! the kill may or may not have committed. At the end, with a clock two
//! hours on, every delayed item comes out too. With the `postgres` feature,
//! the same on a PostgreSQL schema.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use diskq::{Cache, Deque, Key, PushOptions};

/// What op `n` pushes (or pops), from its number alone.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Plain,
    Delayed,
    Priority(i32),
    Unique(u64),
    Pop,
}

fn kind(n: u64) -> Kind {
    if n % 5 == 4 {
        return Kind::Pop;
    }
    match n % 4 {
        0 => Kind::Plain,
        1 => Kind::Delayed,
        2 => Kind::Priority((n % 3) as i32 - 1),
        _ => Kind::Unique(n % 7),
    }
}

fn priority(k: Kind) -> i32 {
    match k {
        Kind::Priority(p) => p,
        Kind::Unique(_) => 1,
        _ => 0,
    }
}

fn open(dir: &Path) -> Deque<u64> {
    Deque::from_cache(Cache::builder().timeout(Duration::from_secs(30)).open(dir).unwrap())
}

#[test]
fn crash_jobs_child() {
    let Ok(dir) = std::env::var("DISKQ_CRASH_JOBS_DIR") else {
        return;
    };
    let from: u64 = std::env::var("DISKQ_CRASH_JOBS_FROM").unwrap().parse().unwrap();
    let d = open(Path::new(&dir));
    for n in from.. {
        println!("B {n}");
        let done = match kind(n) {
            Kind::Pop => format!("{}", d.pop_front().unwrap().map_or(-1, |v| v as i64)),
            Kind::Plain => {
                d.push_back(&n).unwrap();
                "1".into()
            }
            Kind::Delayed => {
                d.push_back_delayed(&n, Duration::from_secs(3600)).unwrap();
                "1".into()
            }
            Kind::Priority(p) => u8::from(d.push_back_with(&n, &PushOptions::new().priority(p)).unwrap()).to_string(),
            Kind::Unique(u) => {
                let opts = PushOptions::new().priority(1).unique_key(format!("u{u}"));
                u8::from(d.push_back_with(&n, &opts).unwrap()).to_string()
            }
        };
        println!("A {n} {done}");
    }
}

/// The items the parent expects: op number -> kind.
type Model = BTreeMap<u64, Kind>;

/// The item a pop takes: highest priority, then the oldest; delayed items
/// are never due while the child runs.
fn front(model: &Model) -> Option<u64> {
    model
        .iter()
        .filter(|(_, k)| **k != Kind::Delayed)
        .max_by(|(a, ka), (b, kb)| priority(**ka).cmp(&priority(**kb)).then(b.cmp(a)))
        .map(|(n, _)| *n)
}

/// Applies op `n` to the model; `outcome` is what the child said (`None`:
/// in flight, assumed committed). Checks what the child said against it.
fn apply(model: &mut Model, n: u64, outcome: Option<i64>) {
    match kind(n) {
        Kind::Pop => {
            let want = front(model);
            if let Some(got) = outcome {
                assert_eq!(got, want.map_or(-1, |v| v as i64), "pop of op {n}");
            }
            if let Some(v) = want {
                model.remove(&v);
            }
        }
        Kind::Unique(u) => {
            let held = model.iter().any(|(m, k)| *k == Kind::Unique(u) && *m != n);
            if let Some(pushed) = outcome {
                assert_eq!(pushed == 1, !held, "unique push of op {n}");
            }
            if !held {
                model.insert(n, kind(n));
            }
        }
        k => {
            model.insert(n, k);
        }
    }
}

/// The op numbers of the items in the directory, by their keys.
fn observe(cache: &Cache) -> Vec<u64> {
    let mut found = Vec::new();
    for key in cache.keys().unwrap() {
        let key: Key = key.unwrap();
        found.push(cache.get::<u64>(&key).unwrap().expect("a value"));
    }
    found.sort_unstable();
    found
}

/// What the child's output said so far.
#[derive(Default)]
struct Log {
    acked: u64,
    in_flight: Option<u64>,
    /// The last op begun.
    last: Option<u64>,
}

impl Log {
    fn handle(&mut self, line: &str, model: &mut Model) {
        let parts: Vec<&str> = line.split(' ').collect();
        match parts.as_slice() {
            ["B", n] => {
                let n = n.parse::<u64>().unwrap();
                self.in_flight = Some(n);
                self.last = Some(n);
            }
            ["A", n, outcome] => {
                let n: u64 = n.parse().unwrap();
                assert_eq!(self.in_flight, Some(n));
                apply(model, n, Some(outcome.parse().unwrap()));
                self.in_flight = None;
                self.acked += 1;
            }
            _ => {} // the test harness's own lines
        }
    }
}

#[test]
fn sigkill_while_pushing_and_popping_jobs_loses_nothing_acknowledged() {
    let tmp = tempfile::tempdir().unwrap();
    crash_rounds(&tmp.path().join("q"), true);
}

/// The same on a PostgreSQL schema: a killed client's transaction is
/// rolled back by the server, so the same holds (there is no `check`).
#[cfg(feature = "postgres")]
#[test]
fn sigkill_of_a_postgres_client_with_jobs_loses_nothing_acknowledged() {
    crash_rounds(Path::new(&pg::location("crash_jobs")), false);
}

#[cfg(feature = "postgres")]
#[path = "support/pg.rs"]
mod pg;

/// Eight rounds of a child killed at a varying moment over the store at
/// `dir`, each checked against the model; `check` run after each when
/// `check` (the directory backend).
fn crash_rounds(dir: &Path, check: bool) {
    open(dir);
    let mut model = Model::new();
    let mut next = 0u64;
    for round in 0..8u64 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "crash_jobs_child",
                "--nocapture",
                "--test-threads=1",
                "--quiet",
            ])
            .env("DISKQ_CRASH_JOBS_DIR", dir)
            .env("DISKQ_CRASH_JOBS_FROM", next.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let kill_after = 20 + (round * 37) % 60;
        let mut log = Log::default();
        for line in lines.by_ref() {
            log.handle(&line.unwrap(), &mut model);
            if log.acked >= kill_after {
                break;
            }
        }
        child.kill().unwrap();
        for line in lines {
            log.handle(&line.unwrap(), &mut model);
        }
        child.wait().unwrap();
        // The op in flight may or may not have committed.
        let cache = Cache::open(dir).unwrap();
        let found = observe(&cache);
        let without: Vec<u64> = model.keys().copied().collect();
        let mut committed = model.clone();
        if let Some(n) = log.in_flight {
            apply(&mut committed, n, None);
        }
        let with: Vec<u64> = committed.keys().copied().collect();
        assert!(
            found == without || found == with,
            "round {round}: {found:?}\nwant {without:?}\nor {with:?}"
        );
        if found == with {
            model = committed;
        }
        next = log.last.map_or(next, |n| n + 1);
        if check {
            let warnings = cache.check().unwrap();
            assert!(warnings.is_empty(), "round {round}: {warnings:?}");
        }
        let backlog = open(dir).backlog().unwrap();
        let delayed = model.values().filter(|k| **k == Kind::Delayed).count();
        assert_eq!(
            (backlog.scheduled, backlog.queued + backlog.scheduled),
            (delayed, model.len())
        );
    }
    assert!(next >= 8 * 20, "the children ran {next} ops");
    assert!(model.values().any(|k| *k == Kind::Delayed) && model.values().any(|k| priority(*k) != 0));
    // Two hours on, the delayed items are due: everything comes out, in order.
    let later = SystemTime::now() + Duration::from_secs(7200);
    let d = Deque::<u64>::from_cache(Cache::builder().clock(move || later).open(dir).unwrap());
    let drained: Vec<u64> = d.drain().collect::<Result<_, _>>().unwrap();
    let mut sorted = drained.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, model.keys().copied().collect::<Vec<_>>());
    let priorities: Vec<i32> = drained.iter().map(|n| priority(kind(*n))).collect();
    assert!(priorities.windows(2).all(|w| w[0] >= w[1]), "{priorities:?}");
    assert!(d.is_empty().unwrap());
}
