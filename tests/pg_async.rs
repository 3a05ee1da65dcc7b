//! The async handles on PostgreSQL: tasks awaiting pops and leases on a
//! queue of the test server are woken by another process's pushes through
//! `LISTEN/NOTIFY` (the fallback poll is set longer than the test), every item reaches exactly one task, and a pop dropped
//! while it waits loses nothing.
#![cfg(all(feature = "tokio", feature = "postgres"))]
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/pg.rs"]
mod pg;

use std::collections::HashSet;
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use diskq::LeaseOptions;
use diskq::tokio::Deque;

const TASKS: usize = 100;
const ITEMS: u64 = 1_000;
/// How long a task waits for an item: longer than the test may take.
const WAIT: Duration = Duration::from_secs(3600);
/// No delivery takes this long in a passing run; a lost wake-up would
/// (the fallback poll is off, see `open`).
const LIVENESS: Duration = Duration::from_secs(60);

/// The deque at `location`, with a fallback poll longer than any wait: only
/// the `LISTEN` connection can wake its tasks.
fn open(location: &str) -> Deque<u64> {
    let cache = diskq::Cache::builder()
        .wake_poll(Duration::from_secs(3600))
        .open(location)
        .unwrap();
    Deque::from_cache(diskq::tokio::Cache::from(cache))
}

/// Not a test of its own: the pushing process. Waits for a line on its
/// standard input (the tasks wait by then), then pushes the items.
#[test]
fn pusher_child() {
    let Ok(location) = std::env::var("DISKQ_PG_ASYNC_AT") else {
        return;
    };
    let deque: diskq::Deque<u64> = diskq::Deque::open(&location).unwrap();
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).unwrap();
    for i in 0..ITEMS {
        deque.push_back(&i).unwrap();
    }
}

fn pusher(location: &str) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "pusher_child", "--nocapture", "--test-threads=1", "--quiet"])
        .env("DISKQ_PG_ASYNC_AT", location)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_tasks_take_another_process_pushes_exactly_once() {
    let location = pg::location("async_pops");
    let deque = open(&location);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let (deque, seen) = (deque.clone(), seen.clone());
            tokio::spawn(async move {
                while let Some(item) = deque.pop_front_timeout(WAIT).await.unwrap() {
                    seen.lock().unwrap().push(item);
                }
                // A wait ran out: fine only once every item was taken (a
                // lost wake-up leaves items queued while tasks wait).
                seen.lock().unwrap().len() as u64 == ITEMS
            })
        })
        .collect();
    // The tasks are waiting (or about to: a push before a task's first look
    // is taken by that look).
    tokio::task::yield_now().await;
    let mut child = pusher(&location);
    writeln!(child.stdin.take().unwrap(), "go").unwrap();
    let start = std::time::Instant::now();
    while (seen.lock().unwrap().len() as u64) < ITEMS {
        assert!(
            start.elapsed() < LIVENESS,
            "items stayed queued while tasks waited: a lost wake-up"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for t in tasks {
        if t.is_finished() {
            assert!(t.await.unwrap(), "a task's wait ran out while items were queued");
        } else {
            t.abort();
        }
    }
    assert!(child.wait().unwrap().success());
    let seen = std::mem::take(&mut *seen.lock().unwrap());
    let distinct: HashSet<u64> = seen.iter().copied().collect();
    assert_eq!(seen.len() as u64, ITEMS, "no item taken twice");
    assert_eq!(distinct, (0..ITEMS).collect(), "no item lost");
    assert_eq!(deque.len().await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_pop_loses_nothing_and_a_lease_wakes_on_a_push() {
    let location = pg::location("async_cancel");
    let deque = open(&location);
    // Pops given up at once, over and over, while items arrive.
    let pushing = {
        let deque = deque.clone();
        tokio::spawn(async move {
            for i in 0..200u64 {
                deque.push_back(&i).await.unwrap();
                tokio::task::yield_now().await;
            }
        })
    };
    let mut taken = Vec::new();
    for n in 0..2_000u64 {
        let cut = Duration::from_micros(n % 500);
        if let Ok(Some(item)) = tokio::time::timeout(cut, deque.pop_front_timeout(WAIT))
            .await
            .map(Result::unwrap)
        {
            taken.push(item);
        }
    }
    pushing.await.unwrap();
    while let Some(item) = deque.pop_front().await.unwrap() {
        taken.push(item);
    }
    taken.sort_unstable();
    assert_eq!(taken, (0..200).collect::<Vec<_>>(), "each item exactly once");

    // A lease awaited on an empty queue is woken by another process's push.
    let opts = LeaseOptions::new(Duration::from_secs(30));
    let waiting = {
        let deque = deque.clone();
        tokio::spawn(async move { deque.lease_timeout(&opts, WAIT).await.unwrap() })
    };
    tokio::task::yield_now().await;
    let mut child = pusher(&location);
    writeln!(child.stdin.take().unwrap(), "go").unwrap();
    let lease = tokio::time::timeout(LIVENESS, waiting)
        .await
        .expect("the lease's wait was woken by the push")
        .unwrap()
        .expect("a lease");
    assert_eq!(*lease.value(), 0);
    lease.ack().await.unwrap();
    assert!(child.wait().unwrap().success());
}
