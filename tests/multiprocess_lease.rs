//! Leases across real OS processes: 3 consumers lease from 10,000 items and
//! one is SIGKILLed while it holds leases. After those leases run out the
//! others finish: every item is acked exactly once, none is lost, and the
//! items delivered twice are exactly those the killed process held unacked.
//!
//! Child processes are this test binary run again with `DISKQ_ROLE` set.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{HashMap, HashSet};
use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use diskq::{Cache, Deque, LeaseOptions};

const ITEMS: i64 = 10_000;
/// Long enough that a live consumer never loses a lease on a busy machine.
const LEASE: Duration = Duration::from_secs(4);

fn deque(dir: &Path) -> Deque<i64> {
    Deque::from_cache(
        Cache::builder()
            .timeout(Duration::from_secs(120))
            .open(dir.join("queue"))
            .unwrap(),
    )
}

fn log_path(dir: &Path, id: usize) -> PathBuf {
    dir.join(format!("consumer-{id}.log"))
}

fn spawn(dir: &Path, id: usize, role: &str) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child", "--nocapture", "--test-threads=1", "--quiet"])
        .env("DISKQ_ROLE", role)
        .env("DISKQ_DIR", dir)
        .env("DISKQ_ID", id.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

/// Acks the victim makes before it takes the leases it dies holding.
const VICTIM_ACKS: usize = 300;
/// Leases the victim holds when it is killed.
const VICTIM_HELD: usize = 5;

#[test]
fn child() {
    let Ok(role) = std::env::var("DISKQ_ROLE") else { return };
    let dir = PathBuf::from(std::env::var("DISKQ_DIR").unwrap());
    let id: usize = std::env::var("DISKQ_ID").unwrap().parse().unwrap();
    let d = deque(&dir);
    let opts = LeaseOptions::new(LEASE);
    // One write(2) per line: a kill never leaves half a line.
    let mut log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path(&dir, id))
        .unwrap();
    let mut acked = 0;
    loop {
        if role == "victim" && acked >= VICTIM_ACKS {
            // Take the leases to die holding, log them, tell the parent
            // through stdout, and wait (on stdin) to be killed.
            for _ in 0..VICTIM_HELD {
                let lease = d.lease_with(&opts).unwrap().expect("the queue still has items");
                log.write_all(format!("L {} {}\n", lease.value(), lease.deliveries()).as_bytes())
                    .unwrap();
                std::mem::forget(lease);
            }
            let mut out = std::io::stdout();
            out.write_all(b"HOLDING\n").unwrap();
            out.flush().unwrap();
            let mut rest = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin(), &mut rest).unwrap();
            panic!("the victim was not killed");
        }
        // Hold up to 5 leases at once, then ack them.
        let mut held = Vec::new();
        while held.len() < 5 {
            // A timed lease ends by its deadline; `Err(Timeout)`: the write
            // lock stayed busy for all of the short wait, nothing was leased.
            let leased = match d.lease_timeout(&opts, Duration::from_millis(100)) {
                Err(e) if e.is_timeout() => None,
                other => other.unwrap(),
            };
            match leased {
                Some(lease) => {
                    log.write_all(format!("L {} {}\n", lease.value(), lease.deliveries()).as_bytes())
                        .unwrap();
                    held.push(lease);
                }
                None => break,
            }
        }
        if held.is_empty() {
            // Done once nothing is queued or leased anywhere: a lease held
            // by a dead consumer runs out and is leased again.
            if d.backlog().unwrap().is_empty() {
                return;
            }
            continue;
        }
        for lease in held {
            let value = *lease.value();
            assert!(lease.ack().unwrap(), "a live consumer lost the lease of {value}");
            log.write_all(format!("A {value}\n").as_bytes()).unwrap();
            acked += 1;
        }
    }
}

/// (leased: value -> deliveries seen, acked values in order) of one log.
fn read_log(path: &Path) -> (Vec<(i64, u32)>, Vec<i64>) {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let (mut leased, mut acked) = (Vec::new(), Vec::new());
    for line in text.lines() {
        let parts: Vec<&str> = line.split(' ').collect();
        match parts[..] {
            ["L", v, n] => leased.push((v.parse().unwrap(), n.parse().unwrap())),
            ["A", v] => acked.push(v.parse().unwrap()),
            _ => panic!("bad log line {line:?}"),
        }
    }
    (leased, acked)
}

#[test]
fn a_killed_consumer_holding_leases_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = deque(dir.path());
    let all: Vec<i64> = (0..ITEMS).collect();
    for batch in all.chunks(1000) {
        d.extend(batch).unwrap();
    }
    // The victim works alone until it holds its leases and says so on its
    // stdout: the kill then always catches it holding exactly those, however
    // loaded the machine is. The others start after, so there is work left.
    let mut victim = spawn(dir.path(), 0, "victim");
    // (The test harness prints its own lines first; the reader stays open
    // until the kill, so the victim never writes into a closed pipe.)
    let mut victim_out = BufReader::new(victim.stdout.take().unwrap()).lines();
    assert!(
        victim_out.any(|l| l.unwrap() == "HOLDING"),
        "the victim exited before it held its leases"
    );
    let others: Vec<Child> = (1..3).map(|id| spawn(dir.path(), id, "consumer")).collect();
    assert!(
        Command::new("kill")
            .args(["-KILL", &victim.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    assert!(!victim.wait().unwrap().success());
    drop(victim_out);
    for child in others {
        let status = child.wait_with_output().unwrap().status;
        assert!(status.success(), "a live consumer failed: {status}");
    }

    let logs: Vec<_> = (0..3).map(|id| read_log(&log_path(dir.path(), id))).collect();
    let (killed_leased, killed_acked) = &logs[0];
    assert_eq!(killed_acked.len(), VICTIM_ACKS);
    let killed_acked: HashSet<i64> = killed_acked.iter().copied().collect();
    let held: HashSet<i64> = killed_leased
        .iter()
        .map(|(v, _)| *v)
        .filter(|v| !killed_acked.contains(v))
        .collect();
    assert_eq!(held.len(), VICTIM_HELD, "the victim held its leases when killed");

    // Every item acked exactly once, none lost.
    let mut acks: HashMap<i64, usize> = HashMap::new();
    for (_, acked) in &logs {
        for v in acked {
            *acks.entry(*v).or_default() += 1;
        }
    }
    assert!(acks.values().all(|&n| n == 1), "an item was acked twice");
    let lost: Vec<i64> = all.iter().copied().filter(|v| !acks.contains_key(v)).collect();
    assert!(lost.is_empty(), "items lost: {lost:?}");
    assert!(d.backlog().unwrap().is_empty(), "items left behind");

    // Redelivered: exactly the items the killed process held, each once more.
    let mut deliveries: HashMap<i64, Vec<u32>> = HashMap::new();
    for (leased, _) in &logs {
        for (v, n) in leased {
            deliveries.entry(*v).or_default().push(*n);
        }
    }
    let redelivered: HashSet<i64> = deliveries
        .iter()
        .filter(|(_, ns)| ns.iter().any(|&n| n >= 2))
        .map(|(v, _)| *v)
        .collect();
    assert_eq!(redelivered, held, "redelivered items are the held ones");
    for (v, ns) in &deliveries {
        let mut sorted = ns.clone();
        sorted.sort_unstable();
        let want: Vec<u32> = (1..=ns.len() as u32).collect();
        assert_eq!(sorted, want, "delivery counts of {v}");
        assert_eq!(ns.len(), if held.contains(v) { 2 } else { 1 }, "deliveries of {v}");
    }
}
