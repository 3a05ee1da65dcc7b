//! Cancellation: pops and leases dropped at random moments (a
//! `tokio::time::timeout` or a `select!` that ran out) while another
//! process and a task push lose no item and deliver none twice.
//!
//! Child processes are this test binary run again with `DISKQ_ROLE` set.
#![cfg(feature = "tokio")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::future::{Future, poll_fn};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use diskq::LeaseOptions;
use diskq::tokio::Deque;

/// Items the other process pushes (0..N), and the task (N..2N).
const N: i64 = 3000;
const CONSUMERS: usize = 8;
const HOUR: Duration = Duration::from_secs(3600);

/// Not a test of its own: the child process's entry point.
#[test]
fn child() {
    let Some(dir) = std::env::var_os("DISKQ_DIR") else {
        return;
    };
    let jobs = diskq::Deque::<i64>::open(dir).unwrap();
    for n in 0..N {
        jobs.push_back(&n).unwrap();
    }
}

/// Cancellations a consumer makes at least, whatever the machine's speed.
const CANCELS: usize = 150;

/// A small xorshift generator (seeded by the task's number): pauses of 0 to
/// 1,999 us and poll counts of 1 to 3.
struct Pauses(u64);

impl Pauses {
    fn new(seed: u64) -> Pauses {
        Pauses(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn pause(&mut self) -> Duration {
        Duration::from_micros(self.next_u64() % 2000)
    }

    fn polls(&mut self) -> u64 {
        1 + self.next_u64() % 3
    }
}

/// Runs `op`, or drops it unfinished: after a random pause with `timeout`
/// (`how` 0) or `select!` (1), or after a random number of polls (2: one
/// poll always stops at the yield before the take, two at the take's wait
/// or right after it). `None` when dropped.
async fn maybe_cancel<F: Future>(op: F, how: usize, pauses: &mut Pauses) -> Option<F::Output> {
    match how % 3 {
        0 => tokio::time::timeout(pauses.pause(), op).await.ok(),
        1 => tokio::select! {
            got = op => Some(got),
            () = tokio::time::sleep(pauses.pause()) => None,
        },
        _ => {
            let mut op = std::pin::pin!(op);
            for _ in 0..pauses.polls() {
                if let Poll::Ready(got) = poll_fn(|cx| Poll::Ready(op.as_mut().poll(cx))).await {
                    return Some(got);
                }
                tokio::task::yield_now().await;
            }
            None
        }
    }
}

struct Tally {
    delivered: Vec<AtomicU8>,
    total: AtomicUsize,
    cancelled: AtomicUsize,
    /// Set once both producers are done.
    pushed: AtomicBool,
}

impl Tally {
    fn new() -> Arc<Tally> {
        Arc::new(Tally {
            delivered: (0..2 * N).map(|_| AtomicU8::new(0)).collect(),
            total: AtomicUsize::new(0),
            cancelled: AtomicUsize::new(0),
            pushed: AtomicBool::new(false),
        })
    }

    fn got(&self, n: i64) {
        self.delivered[usize::try_from(n).unwrap()].fetch_add(1, Ordering::Relaxed);
        self.total.fetch_add(1, Ordering::Relaxed);
    }

    /// True once every item was delivered, or once nothing is left to
    /// deliver (then `check` tells whether an item was lost).
    async fn done(&self, jobs: &Deque<i64>) -> bool {
        if self.total.load(Ordering::Relaxed) >= usize::try_from(2 * N).unwrap() {
            return true;
        }
        self.pushed.load(Ordering::Acquire) && jobs.backlog().await.unwrap().queued == 0
    }

    fn check(&self) {
        for (n, count) in self.delivered.iter().enumerate() {
            assert_eq!(count.load(Ordering::Relaxed), 1, "item {n}");
        }
    }
}

/// Runs `consume` in `CONSUMERS` tasks while another process pushes 0..N
/// and a task pushes N..2N; returns once every item was delivered.
fn run(consume: impl Fn(Deque<i64>, Arc<Tally>, usize) -> tokio::task::JoinHandle<()>) -> Arc<Tally> {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let tally = Tally::new();
    rt.block_on(async {
        let jobs: Deque<i64> = Deque::open(dir.path()).await.unwrap();
        let consumers: Vec<_> = (0..CONSUMERS)
            .map(|i| consume(jobs.clone(), tally.clone(), i))
            .collect();
        let mut pusher = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "child", "--nocapture", "--test-threads=1", "--quiet"])
            .env("DISKQ_DIR", dir.path())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let own = {
            let jobs = jobs.clone();
            tokio::spawn(async move {
                for n in N..2 * N {
                    jobs.push_back(&n).await.unwrap();
                }
            })
        };
        own.await.unwrap();
        assert!(pusher.wait().unwrap().success());
        tally.pushed.store(true, Ordering::Release);
        for c in consumers {
            c.await.unwrap();
        }
        let backlog = jobs.backlog().await.unwrap();
        assert!(backlog.is_empty(), "left: {backlog:?}");
    });
    tally.check();
    tally
}

#[test]
fn cancelled_pops_lose_no_item() {
    let tally = run(|jobs, tally, i| {
        tokio::spawn(async move {
            let mut pauses = Pauses::new(i as u64);
            let (mut turn, mut cancelled) = (0u64, 0usize);
            while !tally.done(&jobs).await || cancelled < CANCELS {
                turn += 1;
                match maybe_cancel(jobs.pop_front_timeout(HOUR), i + turn as usize, &mut pauses).await {
                    Some(got) => tally.got(got.unwrap().expect("an hour's wait does not end empty")),
                    None => {
                        cancelled += 1;
                        tally.cancelled.fetch_add(1, Ordering::Relaxed);
                    }
                }
                if turn.is_multiple_of(64) {
                    // A pop that is dropped before its first poll.
                    drop(jobs.pop_back_timeout(HOUR));
                }
            }
        })
    });
    let cancelled = tally.cancelled.load(Ordering::Relaxed);
    eprintln!("{} items delivered once each; {cancelled} pops cancelled", 2 * N);
    assert!(cancelled >= CONSUMERS * CANCELS);
}

#[test]
fn cancelled_leases_lose_no_item() {
    // A lease of an hour: an item leased by a dropped future would stay
    // invisible past the test, and the count (or the backlog) would fail.
    let opts = Arc::new(LeaseOptions::new(HOUR));
    let acked = Arc::new(Mutex::new(0usize));
    let tally = run(|jobs, tally, i| {
        let (opts, acked) = (opts.clone(), acked.clone());
        tokio::spawn(async move {
            let mut pauses = Pauses::new(1000 + i as u64);
            let (mut turn, mut cancelled) = (0usize, 0usize);
            while !tally.done(&jobs).await || cancelled < CANCELS {
                turn += 1;
                match maybe_cancel(jobs.lease_timeout(&opts, HOUR), i + turn, &mut pauses).await {
                    Some(lease) => {
                        let lease = lease.unwrap().expect("an hour's wait does not end empty");
                        let n = *lease.value();
                        assert!(lease.ack().await.unwrap());
                        tally.got(n);
                        *acked.lock().unwrap() += 1;
                    }
                    None => {
                        cancelled += 1;
                        tally.cancelled.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        })
    });
    let cancelled = tally.cancelled.load(Ordering::Relaxed);
    eprintln!(
        "{} items leased and acked once each; {cancelled} leases cancelled",
        2 * N
    );
    assert_eq!(*acked.lock().unwrap(), usize::try_from(2 * N).unwrap());
    assert!(cancelled >= CONSUMERS * CANCELS);
}
