//! A `Deque` shared by real OS processes: 2 producers and 2 consumers move
//! 20,000 items with no loss and no duplicate, with plain and with blocking
//! pops (consumers started first), and a consumer SIGKILLed in its loop
//! loses nothing it had not already taken.
//!
//! Child processes are this test binary run again with `DISKQ_ROLE` set; in a
//! normal run the child test returns at once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{HashMap, HashSet};
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use diskq::{Cache, Deque};

const ITEMS_PER_PRODUCER: usize = 10_000;

fn deque(dir: &Path) -> Deque<String> {
    Deque::from_cache(Cache::builder().timeout(Duration::from_secs(120)).open(dir).unwrap())
}

fn control(dir: &Path) -> Cache {
    Cache::builder()
        .timeout(Duration::from_secs(120))
        .open(dir.join("control"))
        .unwrap()
}

fn spawn(role: &str, dir: &Path, id: usize) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child", "--nocapture", "--test-threads=1", "--quiet"])
        .env("DISKQ_ROLE", role)
        .env("DISKQ_DIR", dir)
        .env("DISKQ_ID", id.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

fn item(producer: usize, n: usize) -> String {
    // Every 500th item is large enough for a value file.
    let pad = if n.is_multiple_of(500) { 5_000 } else { 0 };
    format!("p{producer}-{n:06}-{}", "x".repeat(pad))
}

fn parse_item(s: &str) -> (usize, usize) {
    let mut parts = s.split('-');
    let producer = parts.next().unwrap()[1..].parse().unwrap();
    (producer, parts.next().unwrap().parse().unwrap())
}

#[test]
fn child() {
    let Ok(role) = std::env::var("DISKQ_ROLE") else { return };
    let dir = PathBuf::from(std::env::var("DISKQ_DIR").unwrap());
    let id: usize = std::env::var("DISKQ_ID").unwrap().parse().unwrap();
    let d = deque(&dir.join("queue"));
    let ctl = control(&dir);
    match role.as_str() {
        "producer" => {
            if id == 0 {
                for n in 0..ITEMS_PER_PRODUCER {
                    d.push_back(&item(id, n)).unwrap();
                }
            } else {
                let all: Vec<String> = (0..ITEMS_PER_PRODUCER).map(|n| item(id, n)).collect();
                for batch in all.chunks(50) {
                    d.extend(batch).unwrap();
                }
            }
            ctl.incr("producers-done", 1, 0).unwrap();
        }
        "consumer" | "blocking-consumer" => {
            let blocking = role == "blocking-consumer";
            // Both consumers start together, so neither drains the queue
            // before the other is running, however loaded the machine.
            ctl.incr("consumers-ready", 1, 0).unwrap();
            let deadline = Instant::now() + Duration::from_secs(120);
            while ctl.get::<i64>("consumers-ready").unwrap() != Some(2) {
                assert!(Instant::now() < deadline, "the other consumer did not start");
                std::thread::sleep(Duration::from_millis(1));
            }
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            loop {
                // Read the flag before popping: if both producers were done
                // and the pop finds nothing, nothing more will come.
                let done = ctl.get::<i64>("producers-done").unwrap() == Some(2);
                let taken = match (blocking, id) {
                    (true, _) => match d.pop_front_timeout(Duration::from_millis(200)) {
                        Ok(taken) => taken.into_iter().collect(),
                        // A timed pop ends by its deadline: under this much
                        // contention the write lock can stay busy for all of
                        // a short wait. Nothing was taken; look again.
                        Err(e) if e.is_timeout() => continue,
                        Err(e) => panic!("{e}"),
                    },
                    (false, 0) => d.pop_front().unwrap().into_iter().collect(),
                    (false, _) => d.pop_front_many(25).unwrap(),
                };
                if taken.is_empty() {
                    if done {
                        break;
                    }
                    if !blocking {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                }
                for v in taken {
                    let (p, n) = parse_item(&v);
                    assert_eq!(v, item(p, n), "an item came back changed");
                    writeln!(out, "RESULT p{p}-{n}").unwrap();
                }
            }
        }
        "logging-consumer" => {
            // Logs each item right after its pop, in one write(2).
            let mut log = OpenOptions::new()
                .create(true)
                .append(true)
                .open(dir.join("taken.log"))
                .unwrap();
            while let Some(v) = d.pop_front_timeout(Duration::from_secs(5)).unwrap() {
                log.write_all(format!("{v}\n").as_bytes()).unwrap();
            }
        }
        other => panic!("unknown role {other}"),
    }
}

/// The `RESULT` lines of a child that exited with success.
fn results(child: Child) -> Vec<String> {
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "child failed: {}", out.status);
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.strip_prefix("RESULT ").map(str::to_owned))
        .collect()
}

fn move_items(consumer_role: &str, consumers_first: bool) {
    let dir = tempfile::tempdir().unwrap();
    let (producers, consumers) = if consumers_first {
        let consumers: Vec<Child> = (0..2).map(|id| spawn(consumer_role, dir.path(), id)).collect();
        // The consumers are waiting on the empty deque before anything is pushed.
        let ctl = control(dir.path());
        let deadline = Instant::now() + Duration::from_secs(120);
        while ctl.get::<i64>("consumers-ready").unwrap() != Some(2) {
            assert!(Instant::now() < deadline, "the consumers did not start");
            std::thread::sleep(Duration::from_millis(1));
        }
        (
            vec![spawn("producer", dir.path(), 0), spawn("producer", dir.path(), 1)],
            consumers,
        )
    } else {
        let producers: Vec<Child> = (0..2).map(|id| spawn("producer", dir.path(), id)).collect();
        (
            producers,
            (0..2).map(|id| spawn(consumer_role, dir.path(), id)).collect(),
        )
    };
    for p in producers {
        assert!(p.wait_with_output().unwrap().status.success());
    }
    let per_consumer: Vec<Vec<String>> = consumers.into_iter().map(results).collect();
    let mut seen = HashSet::new();
    for taken in &per_consumer {
        // Each consumer sees each producer's items in push order.
        let mut last: HashMap<usize, usize> = HashMap::new();
        for line in taken {
            let mut parts = line.split('-');
            let p: usize = parts.next().unwrap()[1..].parse().unwrap();
            let n: usize = parts.next().unwrap().parse().unwrap();
            if let Some(prev) = last.insert(p, n) {
                assert!(prev < n, "producer {p}: {n} after {prev}");
            }
            assert!(seen.insert((p, n)), "item p{p}-{n} taken twice");
        }
    }
    assert_eq!(seen.len(), 2 * ITEMS_PER_PRODUCER, "items lost");
    assert!(per_consumer.iter().all(|t| !t.is_empty()), "a consumer took nothing");
    assert!(deque(&dir.path().join("queue")).is_empty().unwrap());
}

#[test]
fn two_producers_two_consumers_move_20000_items_exactly_once() {
    move_items("consumer", false);
}

#[test]
fn blocking_consumers_started_first_get_every_item_once() {
    move_items("blocking-consumer", true);
}

#[test]
fn a_killed_consumer_loses_only_the_item_it_took() {
    let dir = tempfile::tempdir().unwrap();
    let queue = dir.path().join("queue");
    let d = deque(&queue);
    let total = 4_000;
    let all: Vec<String> = (0..total).map(|n| item(0, n)).collect();
    for batch in all.chunks(500) {
        d.extend(batch).unwrap();
    }
    let log_path = dir.path().join("taken.log");
    let mut in_flight_losses = 0;
    for round in 0..6u64 {
        let before = std::fs::read_to_string(&log_path).unwrap_or_default().lines().count();
        let mut child = spawn("logging-consumer", dir.path(), 0);
        // Wait until it has taken something, then kill it a little later.
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::fs::read_to_string(&log_path).unwrap_or_default().lines().count() == before {
            assert!(Instant::now() < deadline, "the consumer took nothing");
            std::thread::sleep(Duration::from_millis(1));
        }
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        std::thread::sleep(Duration::from_micros(u64::from(nanos % 20_000) + round * 1_000));
        let status = Command::new("kill")
            .args(["-KILL", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let exit = child.wait().unwrap();
        assert!(
            !exit.success(),
            "round {round}: the consumer ran out of items before the kill"
        );

        // Account: everything pushed is either logged or still queued, except
        // at most one item per kill (taken, not yet logged).
        let logged: Vec<String> = std::fs::read_to_string(&log_path)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect();
        let left: Vec<String> = d.iter().unwrap().collect::<Result<_, _>>().unwrap();
        let logged_set: HashSet<&String> = logged.iter().collect();
        assert_eq!(logged_set.len(), logged.len(), "an item was taken twice");
        assert!(
            left.iter().all(|v| !logged_set.contains(v)),
            "a taken item is still queued"
        );
        // Items leave the front in order: the log is a prefix of what was
        // pushed, and the queue is the rest minus the in-flight item, if any.
        assert_eq!(logged[..], all[..logged.len()]);
        let missing = total - logged.len() - left.len();
        assert!(missing <= 1, "round {round}: {missing} items lost");
        assert_eq!(left[..], all[total - left.len()..]);
        if missing == 1 {
            in_flight_losses += 1;
            // Account for it as taken, so the next round's prefix check holds.
            let mut log = OpenOptions::new().append(true).open(&log_path).unwrap();
            log.write_all(format!("{}\n", all[logged.len()]).as_bytes()).unwrap();
        }
    }
    eprintln!("{in_flight_losses} of 6 kills fell between a pop's commit and its log line");
    assert!(
        in_flight_losses < 6,
        "every kill lost an item: the log is not written after each pop"
    );
}
