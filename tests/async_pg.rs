//! The async handles on the PostgreSQL backend: tasks waiting on a schema
//! are woken by another process's pushes through LISTEN/NOTIFY (the
//! waiting process's fallback poll is an hour, so nothing else could wake
//! them in time), each item delivered exactly once; and cancelled pops
//! lose nothing there either.
//!
//! Child processes are this test binary run again with `DISKQ_ROLE` set.
#![cfg(all(feature = "tokio", feature = "postgres"))]
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/pg.rs"]
mod pg;

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::time::Duration;

use diskq::tokio::Deque;

const TASKS: usize = 100;
const ITEMS: i64 = 1000;
const STOP: i64 = -1;
const HOUR: Duration = Duration::from_secs(3600);
/// No pop waits this long in a passing run.
const WAIT: Duration = Duration::from_secs(120);

/// Not a test of its own: the child process's entry point.
#[test]
fn child() {
    let (Some(role), Some(location)) = (std::env::var_os("DISKQ_ROLE"), std::env::var("DISKQ_LOCATION").ok()) else {
        return;
    };
    assert_eq!(role, "pusher");
    let jobs = diskq::Deque::<i64>::open(&location).unwrap();
    let items: Vec<i64> = (0..ITEMS).collect();
    for batch in items.chunks(10) {
        jobs.extend(batch).unwrap();
    }
    jobs.extend(&vec![STOP; TASKS]).unwrap();
}

#[test]
fn tasks_are_woken_by_another_process_through_notify() {
    let location = pg::location("async_notify");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let delivered: Arc<Vec<AtomicU8>> = Arc::new((0..ITEMS).map(|_| AtomicU8::new(0)).collect());
    let total = rt.block_on(async {
        let cache = diskq::Cache::builder().wake_poll(HOUR).open(&location).unwrap();
        let jobs: Deque<i64> = diskq::Deque::from_cache(cache).into();
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
                            None => panic!("no item within {WAIT:?}: a lost NOTIFY"),
                        }
                    }
                })
            })
            .collect();
        while started.load(Ordering::Relaxed) < TASKS {
            tokio::task::yield_now().await;
        }
        let location = location.clone();
        let status = tokio::task::spawn_blocking(move || {
            Command::new(std::env::current_exe().unwrap())
                .args(["--exact", "child", "--nocapture", "--test-threads=1", "--quiet"])
                .env("DISKQ_ROLE", "pusher")
                .env("DISKQ_LOCATION", location)
                .stdout(Stdio::null())
                .status()
        })
        .await
        .unwrap()
        .unwrap();
        assert!(status.success(), "pusher: {status}");
        let mut total = 0;
        for t in tasks {
            total += t.await.unwrap();
        }
        assert!(jobs.is_empty().await.unwrap());
        total
    });
    for (n, count) in delivered.iter().enumerate() {
        assert_eq!(count.load(Ordering::Relaxed), 1, "item {n}");
    }
    assert_eq!(total, usize::try_from(ITEMS).unwrap());
}

#[test]
fn cancelled_pops_lose_no_item_on_postgres() {
    let location = pg::location("async_cancel");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let delivered: Arc<Vec<AtomicU8>> = Arc::new((0..ITEMS).map(|_| AtomicU8::new(0)).collect());
    let cancelled = rt.block_on(async {
        let jobs: Deque<i64> = Deque::open(&location).await.unwrap();
        let got = Arc::new(AtomicUsize::new(0));
        let pushed = Arc::new(AtomicBool::new(false));
        let consumers: Vec<_> = (0..4)
            .map(|i: u64| {
                let (jobs, delivered, got, pushed) = (jobs.clone(), delivered.clone(), got.clone(), pushed.clone());
                tokio::spawn(async move {
                    let (mut cancelled, mut turn) = (0, i);
                    while got.load(Ordering::Relaxed) < usize::try_from(ITEMS).unwrap() || cancelled < 50 {
                        if pushed.load(Ordering::Acquire) && jobs.is_empty().await.unwrap() && cancelled >= 50 {
                            // Nothing left to deliver: the count below tells if an item was lost.
                            break;
                        }
                        turn += 1;
                        // A timeout of 0 to 2.9 ms: often mid-wait, sometimes at once.
                        let pause = Duration::from_micros((turn * 7919) % 3000);
                        match tokio::time::timeout(pause, jobs.pop_front_timeout(HOUR)).await {
                            Ok(item) => {
                                let n = item.unwrap().expect("an hour's wait does not end empty");
                                delivered[usize::try_from(n).unwrap()].fetch_add(1, Ordering::Relaxed);
                                got.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(_) => cancelled += 1,
                        }
                    }
                    cancelled
                })
            })
            .collect();
        for n in 0..ITEMS {
            jobs.push_back(&n).await.unwrap();
        }
        pushed.store(true, Ordering::Release);
        let mut cancelled = 0;
        for c in consumers {
            cancelled += c.await.unwrap();
        }
        assert!(jobs.is_empty().await.unwrap());
        cancelled
    });
    for (n, count) in delivered.iter().enumerate() {
        assert_eq!(count.load(Ordering::Relaxed), 1, "item {n}");
    }
    assert!(cancelled >= 200);
}
