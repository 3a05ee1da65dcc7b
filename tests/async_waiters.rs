//! A thousand tasks await pops on one queue, on a runtime of two worker
//! threads and a blocking pool of two; another OS process pushes 10,000
//! items. Every item is delivered exactly once, the runtime's timer task
//! keeps ticking (the runtime was never blocked for long), and the
//! process's threads stay few: waiting holds no thread.
//!
//! A second test runs the waiter in a process with the doorbell off
//! (`DISKQ_DOORBELL=off`): only the fallback poll, on a tokio timer, can
//! see the other process's pushes.
//!
//! Child processes are this test binary run again with `DISKQ_ROLE` set.
#![cfg(feature = "tokio")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/pyenv.rs"]
mod pyenv;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use diskq::tokio::Deque;

const TASKS: usize = 1000;
const ITEMS: i64 = 10_000;
/// No pop waits this long in a passing run; a lost wake-up would.
const WAIT: Duration = Duration::from_secs(120);
/// The end-of-work item: one per task.
const STOP: i64 = -1;

fn spawn_child(role: &str, dir: &Path) -> Command {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", "child", "--nocapture", "--test-threads=1", "--quiet"])
        .env("DISKQ_ROLE", role)
        .env("DISKQ_DIR", dir)
        .stderr(Stdio::inherit());
    cmd
}

/// Not a test of its own: the child processes' entry point.
#[test]
fn child() {
    let (Some(role), Some(dir)) = (std::env::var_os("DISKQ_ROLE"), std::env::var_os("DISKQ_DIR")) else {
        return;
    };
    match role.to_str().unwrap() {
        "pusher" => {
            // Pushes in small batches, as producers do, then one stop per task.
            let jobs = diskq::Deque::<i64>::open(&dir).unwrap();
            let items: Vec<i64> = (0..ITEMS).collect();
            for batch in items.chunks(10) {
                jobs.extend(batch).unwrap();
            }
            jobs.extend(&vec![STOP; TASKS]).unwrap();
        }
        "mixed-pusher" => {
            let jobs = diskq::Deque::<i64>::open(&dir).unwrap();
            for n in 0..MIXED_ITEMS {
                jobs.push_back(&n).unwrap();
            }
            jobs.extend(&vec![STOP; MIXED_WAITERS * 2]).unwrap();
        }
        "thousand" => thousand_waiting_tasks(),
        "poll-waiter" => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let cache = diskq::Cache::builder()
                    .wake_poll(Duration::from_millis(20))
                    .open(&dir)
                    .unwrap();
                let jobs: Deque<i64> = diskq::Deque::from_cache(cache).into();
                let mut out = std::io::stdout();
                writeln!(out, "READY").unwrap();
                out.flush().unwrap();
                for _ in 0..3 {
                    let got = jobs.pop_front_timeout(WAIT).await.unwrap();
                    writeln!(out, "GOT {got:?}").unwrap();
                    out.flush().unwrap();
                }
            });
        }
        other => panic!("unknown role {other}"),
    }
}

fn threads_now() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(0, |d| d.count())
}

/// Runs in a process of its own, so that its thread counts are its own
/// (the harness runs the other tests in threads beside it).
#[test]
fn a_thousand_waiting_tasks_share_two_threads() {
    let dir = tempfile::tempdir().unwrap();
    let out = spawn_child("thousand", dir.path())
        .stdout(Stdio::piped())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    for line in stdout.lines().filter(|l| l.starts_with("REPORT")) {
        eprintln!("{line}");
    }
    assert!(out.status.success(), "{}", out.status);
    assert!(stdout.contains("REPORT"), "the child reported nothing");
}

fn thousand_waiting_tasks() {
    let dir = tempfile::tempdir().unwrap();
    let threads_before = threads_now();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let delivered: Arc<Vec<AtomicU8>> = Arc::new((0..ITEMS).map(|_| AtomicU8::new(0)).collect());
    let report = rt.block_on(async {
        let jobs: Deque<i64> = Deque::open(dir.path()).await.unwrap();
        let started = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..TASKS)
            .map(|_| {
                let (jobs, delivered, started) = (jobs.clone(), delivered.clone(), started.clone());
                tokio::spawn(async move {
                    started.fetch_add(1, Ordering::Relaxed);
                    let mut mine = 0usize;
                    loop {
                        match jobs.pop_front_timeout(WAIT).await.unwrap() {
                            Some(STOP) => return mine,
                            Some(n) => {
                                delivered[usize::try_from(n).unwrap()].fetch_add(1, Ordering::Relaxed);
                                mine += 1;
                            }
                            None => panic!("no item within {WAIT:?}: a lost wake-up"),
                        }
                    }
                })
            })
            .collect();
        while started.load(Ordering::Relaxed) < TASKS {
            tokio::task::yield_now().await;
        }
        // A timer task on the same runtime: how late is each 10 ms tick?
        let done = Arc::new(AtomicBool::new(false));
        let ticker = {
            let done = done.clone();
            tokio::spawn(async move {
                let (mut worst, mut ticks, mut max_threads) = (Duration::ZERO, 0u32, 0usize);
                let mut next = Instant::now();
                while !done.load(Ordering::Relaxed) {
                    next += Duration::from_millis(10);
                    tokio::time::sleep_until(next.into()).await;
                    worst = worst.max(Instant::now().saturating_duration_since(next));
                    ticks += 1;
                    max_threads = max_threads.max(threads_now());
                }
                (worst, ticks, max_threads)
            })
        };
        let waiting_threads = threads_now();
        let start = Instant::now();
        let status = spawn_child("pusher", dir.path()).status().unwrap();
        assert!(status.success(), "pusher: {status}");
        let mut per_task = Vec::new();
        for t in tasks {
            per_task.push(t.await.unwrap());
        }
        let elapsed = start.elapsed();
        done.store(true, Ordering::Relaxed);
        let (worst, ticks, max_threads) = ticker.await.unwrap();
        assert!(jobs.is_empty().await.unwrap());
        (per_task, elapsed, worst, ticks, waiting_threads, max_threads)
    });
    let (per_task, elapsed, worst, ticks, waiting_threads, max_threads) = report;
    for (n, count) in delivered.iter().enumerate() {
        assert_eq!(count.load(Ordering::Relaxed), 1, "item {n}");
    }
    assert_eq!(per_task.iter().sum::<usize>(), usize::try_from(ITEMS).unwrap());
    let busy = per_task.iter().filter(|&&n| n > 0).count();
    println!(
        "REPORT {TASKS} tasks, {ITEMS} items in {elapsed:?} ({busy} tasks got items); timer: {ticks} ticks, \
         worst lateness {worst:?}; threads: {threads_before} before the runtime, {waiting_threads} with \
         {TASKS} tasks waiting, {max_threads} at most while items flowed"
    );
    // Generous: a runtime blocked by a waiting pop would be late by seconds.
    assert!(worst < Duration::from_secs(2), "the timer was {worst:?} late");
    // Two workers, two blocking threads at most, this test's threads and the
    // store's own (checkpointer, lock helper): a thread per waiter would be
    // a thousand.
    assert!(max_threads < threads_before + 16, "{max_threads} threads");
}

const MIXED_ITEMS: i64 = 2000;
const MIXED_WAITERS: usize = 4;

#[test]
fn threads_and_tasks_wait_together_for_another_process() {
    // Sync waiters watch the doorbell with poll(2) and tasks with the
    // reactor, on one inotify instance: whichever reads a ring wakes both.
    let dir = tempfile::tempdir().unwrap();
    let delivered: Arc<Vec<AtomicU8>> = Arc::new((0..MIXED_ITEMS).map(|_| AtomicU8::new(0)).collect());
    let record = |delivered: &[AtomicU8], n: i64| {
        delivered[usize::try_from(n).unwrap()].fetch_add(1, Ordering::Relaxed);
    };
    let threads: Vec<_> = (0..MIXED_WAITERS)
        .map(|_| {
            let (dir, delivered) = (dir.path().to_path_buf(), delivered.clone());
            std::thread::spawn(move || {
                let jobs = diskq::Deque::<i64>::open(dir).unwrap();
                let mut mine = 0;
                loop {
                    match jobs.pop_front_timeout(WAIT).unwrap().expect("an item in time") {
                        STOP => return mine,
                        n => {
                            record(&delivered, n);
                            mine += 1;
                        }
                    }
                }
            })
        })
        .collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let by_tasks: usize = rt.block_on(async {
        let jobs: Deque<i64> = Deque::open(dir.path()).await.unwrap();
        let tasks: Vec<_> = (0..MIXED_WAITERS)
            .map(|_| {
                let (jobs, delivered) = (jobs.clone(), delivered.clone());
                tokio::spawn(async move {
                    let mut mine = 0;
                    loop {
                        match jobs.pop_front_timeout(WAIT).await.unwrap().expect("an item in time") {
                            STOP => return mine,
                            n => {
                                record(&delivered, n);
                                mine += 1;
                            }
                        }
                    }
                })
            })
            .collect();
        let pusher = spawn_child("mixed-pusher", dir.path())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let status = tokio::task::spawn_blocking(move || {
            let mut p = pusher;
            p.wait()
        })
        .await
        .unwrap()
        .unwrap();
        assert!(status.success());
        let mut total = 0;
        for t in tasks {
            total += t.await.unwrap();
        }
        total
    });
    let by_threads: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
    for (n, count) in delivered.iter().enumerate() {
        assert_eq!(count.load(Ordering::Relaxed), 1, "item {n}");
    }
    eprintln!("{by_threads} items to threads, {by_tasks} to tasks");
    assert_eq!(by_threads + by_tasks, usize::try_from(MIXED_ITEMS).unwrap());
}

#[test]
fn without_the_doorbell_the_fallback_poll_wakes_a_waiting_task() {
    let dir = tempfile::tempdir().unwrap();
    let jobs = diskq::Deque::<i64>::open(dir.path()).unwrap();
    let mut waiter = spawn_child("poll-waiter", dir.path())
        .env("DISKQ_DOORBELL", "off")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // The test harness of the child prints lines of its own.
    let mut lines = BufReader::new(waiter.stdout.take().unwrap())
        .lines()
        .map(Result::unwrap)
        .filter(|l| l == "READY" || l.starts_with("GOT"));
    assert_eq!(lines.next().as_deref(), Some("READY"));
    for n in 0..3 {
        jobs.push_back(&n).unwrap();
        assert_eq!(lines.next(), Some(format!("GOT Some({n})")));
    }
    assert!(waiter.wait().unwrap().success());
}

#[test]
fn a_push_by_python_diskcache_wakes_a_waiting_task_by_the_fallback_poll() {
    // python-diskcache rings no doorbell: the watching task's look at
    // `PRAGMA data_version`, on a tokio timer, is what wakes the waiter.
    let Some(python) = pyenv::python("a_push_by_python_diskcache_wakes_a_waiting_task") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let cache = diskq::Cache::builder()
            .wake_poll(Duration::from_millis(50))
            .open(dir.path())
            .unwrap();
        let jobs: Deque<i64> = diskq::Deque::from_cache(cache).into();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let waiter = tokio::spawn(async move {
            for _ in 0..3 {
                tx.send(jobs.pop_front_timeout(WAIT).await.unwrap()).unwrap();
            }
        });
        for n in 0..3 {
            let (python, dir) = (python.clone(), dir.path().to_path_buf());
            tokio::task::spawn_blocking(move || {
                let code = format!("import sys, diskcache; diskcache.Deque(directory=sys.argv[1]).append({n})");
                pyenv::run_code(&python, &code, &dir)
            })
            .await
            .unwrap();
            assert_eq!(
                rx.recv().await.unwrap(),
                Some(n),
                "python's push {n} did not reach the task"
            );
        }
        waiter.await.unwrap();
    });
}
