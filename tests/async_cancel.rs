//! Cancellation: pops and leases dropped at random moments (a
//! `tokio::time::timeout` or a `select!` that ran out) while another
//! process and a task push lose no item and deliver none twice.
//!
//! Child processes are this test binary run again with `DISKQ_ROLE` set.
#![cfg(feature = "tokio")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

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

/// A small xorshift generator: a pause of 0 to 1,999 us, differing by task.
struct Pauses(u64);

impl Pauses {
    fn new(salt: u64) -> Pauses {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
        Pauses((u64::try_from(nanos % u128::from(u64::MAX)).unwrap() ^ salt.wrapping_mul(0x9e37_79b9_7f4a_7c15)) | 1)
    }

    fn next(&mut self) -> Duration {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        Duration::from_micros(self.0 % 2000)
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
            let mut turn = 0u64;
            while !tally.done(&jobs).await {
                turn += 1;
                let pause = pauses.next();
                // Half the tasks cancel with `timeout`, half with `select!`.
                let got = if i % 2 == 0 {
                    tokio::time::timeout(pause, jobs.pop_front_timeout(HOUR)).await.ok()
                } else {
                    tokio::select! {
                        got = jobs.pop_front_timeout(HOUR) => Some(got),
                        () = tokio::time::sleep(pause) => None,
                    }
                };
                match got {
                    Some(got) => tally.got(got.unwrap().expect("an hour's wait does not end empty")),
                    None => _ = tally.cancelled.fetch_add(1, Ordering::Relaxed),
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
    assert!(cancelled >= 1000, "only {cancelled} pops were cancelled");
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
            while !tally.done(&jobs).await {
                match tokio::time::timeout(pauses.next(), jobs.lease_timeout(&opts, HOUR)).await {
                    Ok(lease) => {
                        let lease = lease.unwrap().expect("an hour's wait does not end empty");
                        let n = *lease.value();
                        assert!(lease.ack().await.unwrap());
                        tally.got(n);
                        *acked.lock().unwrap() += 1;
                    }
                    Err(_) => _ = tally.cancelled.fetch_add(1, Ordering::Relaxed),
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
    assert!(cancelled >= 1000, "only {cancelled} leases were cancelled");
}
