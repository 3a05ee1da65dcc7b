//! Leases across real OS processes: 3 consumers lease from 10,000 items and
//! one is SIGKILLed while it holds leases. After those leases run out the
//! others finish: every item is acked exactly once, none is lost, and the
//! items delivered twice are exactly those the killed process held unacked.
//!
//! Child processes are this test binary run again with `DISKQ_ROLE` set.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{HashMap, HashSet};
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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

fn spawn(dir: &Path, id: usize) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child", "--nocapture", "--test-threads=1", "--quiet"])
        .env("DISKQ_ROLE", "consumer")
        .env("DISKQ_DIR", dir)
        .env("DISKQ_ID", id.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

#[test]
fn child() {
    let Ok(_role) = std::env::var("DISKQ_ROLE") else { return };
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
    loop {
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
            // Nothing to lease: done once nothing is queued or leased anywhere.
            if d.is_empty().unwrap() {
                return;
            }
            continue;
        }
        for lease in held {
            let value = *lease.value();
            assert!(lease.ack().unwrap(), "a live consumer lost the lease of {value}");
            log.write_all(format!("A {value}\n").as_bytes()).unwrap();
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
    let mut victim = spawn(dir.path(), 0);
    // The others start once consumer 0 is going, so that on a loaded machine
    // they cannot drain the queue before it has leased its share.
    let deadline = Instant::now() + Duration::from_secs(120);
    while read_log(&log_path(dir.path(), 0)).0.len() < 200 {
        assert!(Instant::now() < deadline, "consumer 0 did not start");
        std::thread::sleep(Duration::from_millis(1));
    }
    let others: Vec<Child> = (1..3).map(|id| spawn(dir.path(), id)).collect();
    // Kill consumer 0 once it has leased a good share, while it holds leases.
    loop {
        let (leased, acked) = read_log(&log_path(dir.path(), 0));
        if leased.len() >= 1_000 && leased.len() > acked.len() {
            break;
        }
        assert!(Instant::now() < deadline, "consumer 0 did not get going");
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(
        Command::new("kill")
            .args(["-KILL", &victim.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    assert!(!victim.wait().unwrap().success());
    for child in others {
        let status = child.wait_with_output().unwrap().status;
        assert!(status.success(), "a live consumer failed: {status}");
    }

    let logs: Vec<_> = (0..3).map(|id| read_log(&log_path(dir.path(), id))).collect();
    let (killed_leased, killed_acked) = &logs[0];
    let killed_acked: HashSet<i64> = killed_acked.iter().copied().collect();
    let held: HashSet<i64> = killed_leased
        .iter()
        .map(|(v, _)| *v)
        .filter(|v| !killed_acked.contains(v))
        .collect();
    assert!(!held.is_empty(), "the kill should catch consumer 0 holding leases");

    // Every item acked exactly once.
    let mut acks: HashMap<i64, usize> = HashMap::new();
    for (_, acked) in &logs {
        for v in acked {
            *acks.entry(*v).or_default() += 1;
        }
    }
    assert!(acks.values().all(|&n| n == 1), "an item was acked twice");
    // The killed process may have committed one ack it did not log.
    let unlogged: Vec<i64> = all.iter().copied().filter(|v| !acks.contains_key(v)).collect();
    assert!(unlogged.len() <= 1, "items lost: {unlogged:?}");
    assert!(unlogged.iter().all(|v| held.contains(v)));
    assert!(d.is_empty().unwrap(), "items left behind");

    // Redelivered items: exactly those the killed process held (one lease
    // in flight at the kill may have committed without its log line).
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
    let expected: HashSet<i64> = held.iter().copied().filter(|v| !unlogged.contains(v)).collect();
    let unexpected: Vec<&i64> = redelivered.difference(&expected).collect();
    assert!(expected.is_subset(&redelivered), "held items not redelivered");
    assert!(
        unexpected.len() <= 1,
        "items redelivered that the killed process did not hold: {unexpected:?}"
    );
    for (v, ns) in &deliveries {
        let mut sorted = ns.clone();
        sorted.sort_unstable();
        let want: Vec<u32> = (1..=ns.len() as u32)
            .map(|n| n + u32::from(unexpected.contains(&v)))
            .collect();
        assert_eq!(sorted, want, "delivery counts of {v}");
    }
    eprintln!(
        "killed holding {} leases; {} redelivered",
        held.len(),
        redelivered.len()
    );
}
