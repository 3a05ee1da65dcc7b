//! Writers under contention: the write lock's handoff (threads and
//! processes, python-diskcache beside them, processes killed while waiting
//! or holding), checkpoints off the write path with a bound on the log, and
//! no thread left behind once a directory's handles are dropped.
//!
//! Child processes are this test binary run again with `DISKQ_ROLE` set; in
//! a normal run the child test returns at once.
#![allow(clippy::unwrap_used)]

#[path = "support/pyenv.rs"]
mod pyenv;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use diskq::{Cache, Error};

/// A child process, killed if the test ends before it does.
struct Kid(Child);

impl Drop for Kid {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl std::ops::Deref for Kid {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Kid {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

fn spawn(role: &str, dir: &Path, id: usize) -> (Kid, BufReader<ChildStdout>) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child", "--nocapture", "--test-threads=1", "--quiet"])
        .env("DISKQ_ROLE", role)
        .env("DISKQ_DIR", dir)
        .env("DISKQ_ID", id.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let out = BufReader::new(child.stdout.take().unwrap());
    (Kid(child), out)
}

/// The next `OUT ` line the child prints (the harness prints its own lines too).
fn line(out: &mut BufReader<ChildStdout>) -> String {
    loop {
        let mut s = String::new();
        assert!(out.read_line(&mut s).unwrap() > 0, "the child ended early");
        if let Some(rest) = s.trim().strip_prefix("OUT ") {
            return rest.to_owned();
        }
    }
}

#[test]
fn child() {
    let Ok(role) = std::env::var("DISKQ_ROLE") else { return };
    let dir = PathBuf::from(std::env::var("DISKQ_DIR").unwrap());
    let id: usize = std::env::var("DISKQ_ID").unwrap().parse().unwrap();
    let cache = Cache::builder().timeout(Duration::from_secs(120)).open(&dir).unwrap();
    match role.as_str() {
        // Holds the write lock until killed.
        "holder" => {
            cache
                .transact(|c| {
                    c.set("held", &id)?;
                    println!("OUT holding");
                    loop {
                        std::thread::park();
                    }
                    #[allow(unreachable_code)]
                    Ok::<(), Error>(())
                })
                .unwrap();
        }
        // Waits for the write lock (held by a holder) until killed.
        "waiter" => {
            println!("OUT waiting");
            cache.set("waiter", &id).unwrap();
            println!("OUT set");
        }
        // Pushes its id to the directory's deque (waiting in line behind a holder).
        "queued" => {
            let deque: diskq::Deque<usize> = diskq::Deque::open(&dir).unwrap();
            deque.push_back(&id).unwrap();
            println!("OUT pushed");
        }
        // Sets distinct keys until the key "stop" appears.
        "writer" => {
            println!("OUT started");
            let value = vec![id as u8; 100];
            let mut n = 0u64;
            while !cache.contains_key("stop").unwrap() {
                cache.set_bytes(format!("w{id}-{n}"), &value).unwrap();
                n += 1;
            }
            println!("OUT {n}");
        }
        // Counts this process's threads around a handle's life.
        "threads" => {
            let before = threads();
            {
                let cache = Cache::open(dir.join("inner")).unwrap();
                // Enough log pages for the checkpointer to run.
                let value = vec![7u8; 3000];
                for n in 0..2000 {
                    cache.set_bytes(n, &value).unwrap();
                }
                let clone = cache.clone();
                drop(cache);
                clone.set("last", &1).unwrap();
            }
            println!("OUT {before} {}", threads());
        }
        other => panic!("unknown role {other}"),
    }
}

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

/// A set that must not wait long: the directory's lock is free.
fn set_promptly(dir: &Path) {
    let cache = Cache::builder().timeout(Duration::from_secs(10)).open(dir).unwrap();
    let start = Instant::now();
    cache.set("after", &1).unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "the write lock was left taken"
    );
}

#[test]
fn a_writer_killed_while_holding_the_lock_leaves_it_free() {
    let dir = tempfile::tempdir().unwrap();
    let (mut holder, mut out) = spawn("holder", dir.path(), 1);
    assert_eq!(line(&mut out), "holding");
    holder.kill().unwrap();
    holder.wait().unwrap();
    set_promptly(dir.path());
    let cache = Cache::open(dir.path()).unwrap();
    assert_eq!(
        cache.get::<usize>("held").unwrap(),
        None,
        "the killed transaction rolled back"
    );
}

#[test]
fn writers_killed_while_waiting_leave_nothing_stuck() {
    let dir = tempfile::tempdir().unwrap();
    let (mut holder, mut hout) = spawn("holder", dir.path(), 1);
    assert_eq!(line(&mut hout), "holding");
    let mut waiters: Vec<_> = (0..3).map(|i| spawn("waiter", dir.path(), 10 + i)).collect();
    for (_, out) in &mut waiters {
        assert_eq!(line(out), "waiting");
    }
    // One waiter waits for the lock, one for its turn in the line in front
    // of it (the turnstile where there is no line);
    // killing them (and then the holder) must free both.
    for (w, _) in &mut waiters[..2] {
        w.kill().unwrap();
        w.wait().unwrap();
    }
    holder.kill().unwrap();
    holder.wait().unwrap();
    // The last waiter gets the lock.
    let (mut last, mut out) = waiters.pop().unwrap();
    assert_eq!(line(&mut out), "set");
    assert!(last.wait().unwrap().success());
    set_promptly(dir.path());
}

/// The tickets handed out by the line in front of the write lock (the
/// counter at the start of `cache.db.wturn`).
#[cfg(target_os = "linux")]
fn tickets(dir: &Path) -> u64 {
    let bytes = std::fs::read(dir.join("cache.db.wturn")).unwrap_or_default();
    bytes.get(..8).map_or(0, |b| u64::from_le_bytes(b.try_into().unwrap()))
}

#[test]
#[cfg(target_os = "linux")]
fn waiting_processes_write_in_the_order_they_came() {
    let dir = tempfile::tempdir().unwrap();
    drop(diskq::Deque::<usize>::open(dir.path()).unwrap());
    let (mut holder, mut hout) = spawn("holder", dir.path(), 1);
    assert_eq!(line(&mut hout), "holding");
    let first = tickets(dir.path());
    let mut queued = Vec::new();
    for n in 0..4u64 {
        queued.push(spawn("queued", dir.path(), 100 + n as usize));
        // The next one comes once this one is in line (it took a ticket).
        let deadline = Instant::now() + Duration::from_secs(60);
        while tickets(dir.path()) < first + n + 1 {
            assert!(Instant::now() < deadline, "process {n} never joined the line");
            std::thread::yield_now();
        }
    }
    holder.kill().unwrap();
    holder.wait().unwrap();
    for (mut kid, mut out) in queued {
        assert_eq!(line(&mut out), "pushed");
        assert!(kid.wait().unwrap().success());
    }
    let deque: diskq::Deque<usize> = diskq::Deque::open(dir.path()).unwrap();
    let order: Vec<usize> = deque.iter().unwrap().map(Result::unwrap).collect();
    assert_eq!(
        order,
        vec![100, 101, 102, 103],
        "the processes wrote in the order they queued"
    );
}

#[test]
fn a_lock_held_by_another_thread_times_out() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::builder()
        .timeout(Duration::from_millis(200))
        .open(dir.path())
        .unwrap();
    let (held_tx, held_rx) = std::sync::mpsc::channel();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let holder = {
        let cache = cache.clone();
        std::thread::spawn(move || {
            cache
                .transact(|c| {
                    c.set("a", &1)?;
                    held_tx.send(()).unwrap();
                    done_rx.recv().unwrap();
                    Ok::<(), Error>(())
                })
                .unwrap();
        })
    };
    held_rx.recv().unwrap();
    let start = Instant::now();
    assert!(matches!(cache.set("b", &2), Err(Error::Timeout)));
    assert!(start.elapsed() < Duration::from_secs(5));
    done_tx.send(()).unwrap();
    holder.join().unwrap();
    cache.set("b", &2).unwrap();
}

#[test]
fn a_second_handle_inside_a_transaction_times_out_instead_of_hanging() {
    let dir = tempfile::tempdir().unwrap();
    let one = Cache::builder()
        .timeout(Duration::from_millis(200))
        .open(dir.path())
        .unwrap();
    let two = Cache::builder()
        .timeout(Duration::from_millis(200))
        .open(dir.path())
        .unwrap();
    let inner = one.transact(|c| {
        c.set("a", &1)?;
        Ok::<_, Error>(two.set("b", &2))
    });
    assert!(matches!(inner, Ok(Err(Error::Timeout))), "{inner:?}");
    assert_eq!(one.get::<i32>("a").unwrap(), Some(1));
    two.set("b", &2).unwrap();
}

#[test]
fn no_thread_is_left_after_the_last_handle_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, mut out) = spawn("threads", dir.path(), 0);
    let counts: Vec<usize> = line(&mut out).split(' ').map(|n| n.parse().unwrap()).collect();
    assert!(child.wait().unwrap().success());
    assert_eq!(counts[0], counts[1], "threads before and after (before, after)");
}

#[test]
fn the_log_stays_bounded_under_a_reader_that_stays_open() {
    const BOUND: u64 = 64 << 20;
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::builder()
        .timeout(Duration::from_secs(60))
        .open(dir.path())
        .unwrap();
    cache.set("seed", &0).unwrap();
    let wal = dir.path().join("cache.db-wal");
    // A reader whose snapshot keeps every checkpoint from finishing, until
    // a writer waits for it (a blocking checkpoint has begun), or the log
    // is twice past the bound (it would grow without end).
    let reader = {
        let db = dir.path().join("cache.db");
        let (wal, cache) = (wal.clone(), cache.clone());
        let (tx, rx) = std::sync::mpsc::channel();
        let handle = std::thread::spawn(move || {
            let conn = rusqlite::Connection::open(db).unwrap();
            conn.execute_batch("BEGIN").unwrap();
            let _: i64 = conn.query_row("SELECT count(*) FROM Cache", [], |r| r.get(0)).unwrap();
            tx.send(()).unwrap();
            while cache.stats().unwrap().blocking_checkpoints == 0
                && std::fs::metadata(&wal).map_or(0, |m| m.len()) <= 2 * BOUND
            {
                std::thread::sleep(Duration::from_millis(5));
            }
            conn.execute_batch("COMMIT").unwrap();
        });
        rx.recv().unwrap();
        handle
    };
    // 20 KiB values stay in the database: about 6 log pages a set, 150 MiB
    // of log in all.
    let value = vec![5u8; 20_000];
    let mut largest = 0;
    for n in 0..6500 {
        cache.set_bytes(n, &value).unwrap();
        largest = largest.max(std::fs::metadata(&wal).map_or(0, |m| m.len()));
    }
    reader.join().unwrap();
    assert!(largest < BOUND + (8 << 20), "the log grew to {largest} bytes");
    assert!(cache.stats().unwrap().blocking_checkpoints >= 1);
}

#[test]
fn python_writers_beside_diskq_writers_are_not_starved() {
    let Some(python) = pyenv::python("the python-beside-diskq writers test") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    Cache::open(dir.path()).unwrap().set("seed", &0).unwrap();
    let mut writers: Vec<_> = (0..4).map(|i| spawn("writer", dir.path(), i)).collect();
    for (_, out) in &mut writers {
        assert_eq!(line(out), "started");
    }
    // python-diskcache's own busy handling, with a 10 s timeout per set: a
    // set starved for longer raises diskcache.Timeout and fails the script.
    let script = r#"
import sys, diskcache
c = diskcache.Cache(sys.argv[1], timeout=10)
for n in range(300):
    c.set(f"py-{n}", b"p" * 100)
print("ok")
"#;
    let out = Command::new(python)
        .args(["-c", script])
        .arg(dir.path())
        .output()
        .unwrap();
    let cache = Cache::open(dir.path()).unwrap();
    cache.set("stop", &1).unwrap();
    let mut written = 0u64;
    for (mut w, mut wout) in writers {
        written += line(&mut wout).parse::<u64>().unwrap();
        assert!(w.wait().unwrap().success());
    }
    assert!(out.status.success(), "python: {}", String::from_utf8_lossy(&out.stderr));
    assert!(written > 0);
    for n in 0..300 {
        assert!(cache.contains_key(format!("py-{n}")).unwrap(), "py-{n}");
    }
}
