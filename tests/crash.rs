//! Crash tests: a child process writes in a loop and is SIGKILLed at a random
//! moment, many times over one directory. After each kill the parent checks
//! that `check(true)` leaves a consistent directory, that every acknowledged
//! write is there, and that the queue lost and duplicated nothing. The one
//! operation in flight at the kill may or may not have committed: both
//! outcomes are accepted, nothing else.
#![allow(clippy::unwrap_used)]

use std::collections::{HashMap, VecDeque};
use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use diskq::{Cache, Key, WarningKind};
use serde::{Deserialize, Serialize};

const KEYS: u64 = 24;
/// Large values go to value files (min_file_size is 1 KiB in these tests).
const LARGE: usize = 3000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Value {
    op: u64,
    pad: String,
}

fn value(op: u64) -> Value {
    let len = if op.is_multiple_of(3) { LARGE } else { 8 };
    Value {
        op,
        pad: "x".repeat(len),
    }
}

/// What operation `op` does, derived from its number alone so that parent
/// and child agree without talking.
#[derive(Debug, Clone, Copy)]
enum Op {
    Set(u64),
    Delete(u64),
    Push,
    Pull,
}

fn op_of(op: u64) -> Op {
    // A small LCG on the op number picks the kind and the key.
    let h = op.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407) >> 33;
    match h % 8 {
        0..=2 => Op::Set(h / 8 % KEYS),
        3 => Op::Delete(h / 8 % KEYS),
        4..=5 => Op::Push,
        _ => Op::Pull,
    }
}

fn open(dir: &Path) -> Cache {
    Cache::builder()
        .min_file_size(1024)
        .timeout(Duration::from_secs(30))
        .open(dir)
        .unwrap()
}

/// The child: runs operations from `DISKQ_CRASH_FROM` on, logging `B <op>`
/// before each and `A <op> [<pulled op>]` once it is acknowledged.
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var("DISKQ_CRASH_DIR") else {
        return;
    };
    let from: u64 = std::env::var("DISKQ_CRASH_FROM").unwrap().parse().unwrap();
    let dir = Path::new(&dir);
    let cache = open(dir);
    let mut log = OpenOptions::new()
        .append(true)
        .create(true)
        .open(dir.join("oplog"))
        .unwrap();
    // One write(2) per line, unbuffered: a SIGKILL lands before or after it,
    // and cannot lose what it returned for.
    let mut log_line = |line: String| log.write_all(format!("{line}\n").as_bytes()).unwrap();
    for op in from.. {
        log_line(format!("B {op}"));
        let ack = match op_of(op) {
            Op::Set(k) => {
                cache.set(format!("k{k}"), &value(op)).unwrap();
                format!("A {op}")
            }
            Op::Delete(k) => {
                cache.delete(format!("k{k}")).unwrap();
                format!("A {op}")
            }
            Op::Push => {
                cache.push(&value(op)).unwrap();
                format!("A {op}")
            }
            Op::Pull => match cache.pull::<Value>().unwrap() {
                Some((_, v)) => format!("A {op} {}", v.op),
                None => format!("A {op} -"),
            },
        };
        log_line(ack);
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
struct Model {
    values: HashMap<u64, u64>,
    queue: VecDeque<u64>,
}

impl Model {
    /// Applies an operation; for a pull, `pulled` is what the child got
    /// (`None` when it was in flight: the model then takes the front).
    fn apply(&mut self, op: u64, pulled: Option<Option<u64>>) {
        match op_of(op) {
            Op::Set(k) => {
                self.values.insert(k, op);
            }
            Op::Delete(k) => {
                self.values.remove(&k);
            }
            Op::Push => self.queue.push_back(op),
            Op::Pull => {
                let front = self.queue.pop_front();
                if let Some(got) = pulled {
                    assert_eq!(
                        got, front,
                        "pull {op} returned {got:?}, the queue's front was {front:?}"
                    );
                }
            }
        }
    }
}

/// The state found on disk, in the model's terms.
fn observe(cache: &Cache) -> Model {
    let mut values = HashMap::new();
    for k in 0..KEYS {
        if let Some(v) = cache.get::<Value>(format!("k{k}")).unwrap() {
            assert_eq!(v, value(v.op), "value of k{k} is torn");
            values.insert(k, v.op);
        }
    }
    let mut queue = VecDeque::new();
    for key in cache.keys().unwrap() {
        let key = key.unwrap();
        if let Key::Int(_) = key {
            let v: Value = cache.get(&key).unwrap().unwrap();
            assert_eq!(v, value(v.op), "queue item {key} is torn");
            queue.push_back(v.op);
        }
    }
    Model { values, queue }
}

fn run_kills(rounds: usize) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    open(dir);
    let exe = std::env::current_exe().unwrap();
    let mut model = Model::default();
    let mut next_op = 0u64;
    let mut in_flight_commits = 0;
    for round in 0..rounds {
        let _ = std::fs::remove_file(dir.join("oplog"));
        let mut child = Command::new(&exe)
            .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
            .env("DISKQ_CRASH_DIR", dir)
            .env("DISKQ_CRASH_FROM", next_op.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Kill at a varying moment: early rounds often during start-up.
        let wait_ms = 30 + (round as u64 * 37) % 170;
        std::thread::sleep(Duration::from_millis(wait_ms));
        child.kill().unwrap();
        child.wait().unwrap();

        let log = std::fs::read_to_string(dir.join("oplog")).unwrap_or_default();
        let mut begun = None;
        for line in log.lines() {
            let parts: Vec<&str> = line.split(' ').collect();
            match parts.as_slice() {
                ["B", op] => begun = Some(op.parse::<u64>().unwrap()),
                ["A", op, rest @ ..] => {
                    let op: u64 = op.parse().unwrap();
                    assert_eq!(Some(op), begun, "log out of order");
                    let pulled = match rest {
                        ["-"] => Some(None),
                        [n] => Some(Some(n.parse().unwrap())),
                        _ => None,
                    };
                    model.apply(op, pulled);
                    next_op = op + 1;
                    begun = None;
                }
                // A torn last line: the kill hit the log write itself.
                _ => {}
            }
        }

        let cache = open(dir);
        let warnings = cache.check(true).unwrap();
        for w in &warnings {
            assert!(
                matches!(w.kind, WarningKind::UnknownFile | WarningKind::EmptyDirectory),
                "round {round}: check found {w}"
            );
        }
        assert!(
            cache.check(false).unwrap().is_empty(),
            "round {round}: check(true) left problems"
        );

        let found = observe(&cache);
        if found == model {
            if let Some(op) = begun {
                // The in-flight op did not commit (or changed nothing): it is redone next round.
                next_op = op;
            }
        } else {
            let op = begun.unwrap_or_else(|| panic!("round {round}: state differs with nothing in flight"));
            let mut with = model.clone();
            with.apply(op, None);
            assert_eq!(
                found,
                with,
                "round {round}: state is neither before nor after op {op} ({:?})",
                op_of(op)
            );
            model = with;
            next_op = op + 1;
            in_flight_commits += 1;
        }
        assert_eq!(
            cache.len().unwrap(),
            model.values.len() + model.queue.len(),
            "round {round}: len"
        );
    }
    eprintln!("{rounds} kills survived; {in_flight_commits} in-flight operations had committed; {next_op} operations");
}

#[test]
fn sigkill_during_writes_loses_nothing_acknowledged() {
    run_kills(25);
}

#[test]
#[ignore = "long: 300 kills"]
fn sigkill_many_times() {
    run_kills(300);
}
