//! Multi-process tests for either backend: real OS processes (this test
//! binary run again with `DISKQ_ROLE` set, its test `child` calling
//! [`child`]) share one store at a location (a directory, or a PostgreSQL
//! URL) and log what they did to files in a directory; the parent checks
//! exact counts afterwards.
//!
//! - [`pops_are_exactly_once`]: producers and consumers running at once
//!   move every item exactly once, with blocking pops.
//! - [`a_killed_consumer_holding_leases_loses_nothing`]: three consumers
//!   lease and ack; one is SIGKILLed holding leases; after those run out
//!   the others finish: every item acked exactly once, none lost, and the
//!   items delivered twice are exactly those the killed process held.

#![allow(dead_code)]

use std::collections::{HashMap, HashSet};
use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use diskq::{Cache, Deque, LeaseOptions};

/// Long enough that a live consumer never loses a lease on a busy machine.
const LEASE: Duration = Duration::from_secs(4);
/// Leases the victim holds when it is killed.
const VICTIM_HELD: usize = 5;

fn cache(queue: &str) -> Cache {
    Cache::builder()
        .timeout(Duration::from_secs(120))
        .eviction_policy(diskq::EvictionPolicy::None)
        .open(queue)
        .unwrap()
}

fn deque(queue: &str) -> Deque<i64> {
    Deque::from_cache(cache(queue))
}

fn log_path(dir: &Path, id: usize) -> PathBuf {
    dir.join(format!("process-{id}.log"))
}

/// Runs this test binary's `child` test as `role`; `wrap` prefixes the
/// command (`ip netns exec NAME`, say).
pub fn spawn(wrap: &[&str], queue: &str, dir: &Path, id: usize, role: &str, arg: i64) -> Child {
    let exe = std::env::current_exe().unwrap();
    let mut cmd = match wrap.split_first() {
        Some((first, rest)) => {
            let mut c = Command::new(first);
            c.args(rest).arg(&exe);
            c
        }
        None => Command::new(&exe),
    };
    cmd.args(["--exact", "child", "--nocapture", "--test-threads=1", "--quiet"])
        .env("DISKQ_ROLE", role)
        .env("DISKQ_QUEUE", queue)
        .env("DISKQ_DIR", dir)
        .env("DISKQ_ID", id.to_string())
        .env("DISKQ_ARG", arg.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

/// The body of every child: does nothing unless `DISKQ_ROLE` is set.
pub fn child() {
    let Ok(role) = std::env::var("DISKQ_ROLE") else { return };
    let queue = std::env::var("DISKQ_QUEUE").unwrap();
    let dir = PathBuf::from(std::env::var("DISKQ_DIR").unwrap());
    let id: usize = std::env::var("DISKQ_ID").unwrap().parse().unwrap();
    let arg: i64 = std::env::var("DISKQ_ARG").unwrap().parse().unwrap();
    // One write(2) per line: a kill never leaves half a line.
    let mut log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path(&dir, id))
        .unwrap();
    match role.as_str() {
        "producer" => produce(&queue, id, arg),
        "popper" => pop_until_done(&queue, arg, &mut log),
        "victim" => lease_and_ack(&queue, Some(arg as usize), &mut log),
        "consumer" => lease_and_ack(&queue, None, &mut log),
        other => panic!("unknown role {other}"),
    }
}

/// Pushes `n` items `id * 1_000_000 + i`, then counts itself done.
fn produce(queue: &str, id: usize, n: i64) {
    let d = deque(queue);
    for i in 0..n {
        d.push_back(&(id as i64 * 1_000_000 + i)).unwrap();
    }
    d.cache().incr("producers-done", 1, 0).unwrap();
}

/// Pops (blocking) until `producers` producers are done and the queue is empty.
fn pop_until_done(queue: &str, producers: i64, log: &mut std::fs::File) {
    let d = deque(queue);
    loop {
        match d.pop_front_timeout(Duration::from_millis(200)).unwrap() {
            Some(v) => log.write_all(format!("P {v}\n").as_bytes()).unwrap(),
            None => {
                let done = d.cache().get::<i64>("producers-done").unwrap().unwrap_or(0);
                // After the last producer, the queue only shrinks: one
                // empty pop then means empty for good.
                if done == producers && d.pop_front().unwrap().is_none() {
                    return;
                }
            }
        }
    }
}

/// Leases up to 5 at a time and acks them, until nothing is queued or
/// leased anywhere; a victim stops after `victim_acks` acks, takes the
/// leases it will die holding, says `HOLDING` on stdout and waits.
fn lease_and_ack(queue: &str, victim_acks: Option<usize>, log: &mut std::fs::File) {
    let d = deque(queue);
    let opts = LeaseOptions::new(LEASE);
    let mut acked = 0;
    loop {
        if victim_acks.is_some_and(|n| acked >= n) {
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
        let mut held = Vec::new();
        while held.len() < 5 {
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

/// The values of the lines `tag ...` of a log: (first field, second field or 0).
fn read_log(path: &Path, tag: &str) -> Vec<(i64, u32)> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let parts: Vec<&str> = line.split(' ').collect();
            (parts[0] == tag).then(|| {
                (
                    parts[1].parse().unwrap(),
                    parts.get(2).map_or(0, |n| n.parse().unwrap()),
                )
            })
        })
        .collect()
}

/// `producers` processes push `each` items while `consumers` processes pop
/// them (blocking): every item is popped exactly once.
pub fn pops_are_exactly_once(wrap: &[&str], queue: &str, dir: &Path, producers: usize, consumers: usize, each: i64) {
    let popping: Vec<Child> = (0..consumers)
        .map(|i| spawn(wrap, queue, dir, 100 + i, "popper", producers as i64))
        .collect();
    let pushing: Vec<Child> = (0..producers)
        .map(|i| spawn(wrap, queue, dir, i, "producer", each))
        .collect();
    for child in pushing.into_iter().chain(popping) {
        let status = child.wait_with_output().unwrap().status;
        assert!(status.success(), "a child failed: {status}");
    }
    let mut seen: HashMap<i64, usize> = HashMap::new();
    for i in 0..consumers {
        for (v, _) in read_log(&log_path(dir, 100 + i), "P") {
            *seen.entry(v).or_default() += 1;
        }
    }
    let want: HashSet<i64> = (0..producers)
        .flat_map(|p| (0..each).map(move |i| p as i64 * 1_000_000 + i))
        .collect();
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "popped more than once: {twice:?}");
    let lost: Vec<_> = want.iter().filter(|v| !seen.contains_key(v)).collect();
    assert!(lost.is_empty(), "lost: {} items, e.g. {:?}", lost.len(), lost.first());
    assert_eq!(seen.len(), want.len(), "popped items that were never pushed");
}

/// `items` items, 3 consumers (`wraps[i]` prefixes consumer i's command),
/// consumer 0 SIGKILLed after `victim_acks` acks while it holds leases.
pub fn a_killed_consumer_holding_leases_loses_nothing(
    wraps: [&[&str]; 3],
    queue: &str,
    dir: &Path,
    items: i64,
    victim_acks: usize,
) {
    let d = deque(queue);
    let all: Vec<i64> = (0..items).collect();
    for batch in all.chunks(1000) {
        d.extend(batch).unwrap();
    }
    // The victim works alone until it holds its leases and says so: the
    // kill always catches it holding exactly those. The others start after.
    let mut victim = spawn(wraps[0], queue, dir, 0, "victim", victim_acks as i64);
    let mut victim_out = BufReader::new(victim.stdout.take().unwrap()).lines();
    assert!(
        victim_out.any(|l| l.unwrap() == "HOLDING"),
        "the victim exited before it held its leases"
    );
    let others: Vec<Child> = (1..3)
        .map(|id| spawn(wraps[id], queue, dir, id, "consumer", 0))
        .collect();
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

    let leased: Vec<Vec<(i64, u32)>> = (0..3).map(|id| read_log(&log_path(dir, id), "L")).collect();
    let acked: Vec<Vec<i64>> = (0..3)
        .map(|id| read_log(&log_path(dir, id), "A").into_iter().map(|(v, _)| v).collect())
        .collect();
    assert_eq!(acked[0].len(), victim_acks);
    let victim_acked: HashSet<i64> = acked[0].iter().copied().collect();
    let held: HashSet<i64> = leased[0]
        .iter()
        .map(|(v, _)| *v)
        .filter(|v| !victim_acked.contains(v))
        .collect();
    assert_eq!(held.len(), VICTIM_HELD, "the victim held its leases when killed");

    // Every item acked exactly once, none lost.
    let mut acks: HashMap<i64, usize> = HashMap::new();
    for v in acked.iter().flatten() {
        *acks.entry(*v).or_default() += 1;
    }
    assert!(acks.values().all(|&n| n == 1), "an item was acked twice");
    let lost: Vec<i64> = all.iter().copied().filter(|v| !acks.contains_key(v)).collect();
    assert!(lost.is_empty(), "items lost: {lost:?}");
    assert!(d.backlog().unwrap().is_empty(), "items left behind");

    // Redelivered: exactly the items the killed process held, each once more.
    let mut deliveries: HashMap<i64, Vec<u32>> = HashMap::new();
    for (v, n) in leased.iter().flatten() {
        deliveries.entry(*v).or_default().push(*n);
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
