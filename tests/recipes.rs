//! The recipes (Lock, RLock, BoundedSemaphore, Averager, Throttle, Barrier,
//! MemoizeStampede) through the public API: exclusion across real OS
//! processes, holders killed with SIGKILL freeing what they held at the
//! expiry (and not before), and the rate and error contracts.
//!
//! Child processes are this test binary run again with `DISKQ_ROLE` set; in a
//! normal run the child test returns at once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use diskq::{Averager, Barrier, BoundedSemaphore, Cache, Error, Lock, MemoizeStampede, RLock, Throttle};

const SECOND: Duration = Duration::from_secs(1);

fn open(dir: &Path) -> Cache {
    Cache::builder().timeout(Duration::from_secs(120)).open(dir).unwrap()
}

/// A child process, killed if the test ends (or fails) before it exits.
struct ChildProcess(Child);

impl Drop for ChildProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(role: &str, dir: &Path, count: usize) -> ChildProcess {
    let child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child", "--nocapture", "--test-threads=1", "--quiet"])
        .env("DISKQ_ROLE", role)
        .env("DISKQ_DIR", dir)
        .env("DISKQ_COUNT", count.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    ChildProcess(child)
}

/// Children start together: each waits for the parent's `go` key.
fn wait_for_go(cache: &Cache) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !cache.contains_key("go").unwrap() {
        assert!(Instant::now() < deadline, "no go signal");
        thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn child() {
    let Ok(role) = std::env::var("DISKQ_ROLE") else { return };
    let dir = PathBuf::from(std::env::var("DISKQ_DIR").unwrap());
    let count: usize = std::env::var("DISKQ_COUNT").unwrap().parse().unwrap();
    let cache = open(&dir);
    wait_for_go(&cache);
    match role.as_str() {
        "lock-counter" => {
            let lock = Lock::new(&cache, "counter-lock", Duration::from_secs(30)).unwrap();
            for _ in 0..count {
                let _guard = lock.lock().unwrap();
                // Deliberately not atomic: only the lock keeps updates apart.
                let n: i64 = cache.get("plain").unwrap().unwrap_or(0);
                cache.set("plain", &(n + 1)).unwrap();
            }
        }
        "holder" => {
            let lock = Lock::new(&cache, "dead-lock", SECOND).unwrap();
            assert!(lock.try_acquire().unwrap());
            let rlock = RLock::new(&cache, "dead-rlock", SECOND).unwrap();
            rlock.acquire().unwrap();
            rlock.acquire().unwrap();
            let sem = BoundedSemaphore::new(&cache, "dead-sem", 2, SECOND).unwrap();
            assert!(sem.try_acquire().unwrap());
            assert!(sem.try_acquire().unwrap());
            println!("RESULT holding");
            // Hold everything until killed.
            thread::sleep(Duration::from_secs(60));
        }
        other => panic!("unknown role {other}"),
    }
}

#[test]
fn lock_keeps_a_plain_counter_exact_across_four_processes() {
    let dir = tempfile::tempdir().unwrap();
    let cache = open(dir.path());
    let started = Instant::now();
    let children: Vec<_> = (0..4).map(|_| spawn("lock-counter", dir.path(), 500)).collect();
    cache.set("go", &1).unwrap();
    for mut child in children {
        assert!(child.0.wait().unwrap().success(), "a child failed");
    }
    eprintln!("4 processes x 500 locked increments: {:?}", started.elapsed());
    assert_eq!(cache.get::<i64>("plain").unwrap(), Some(2000));
    assert!(!Lock::new(&cache, "counter-lock", SECOND).unwrap().locked().unwrap());
}

/// The latest expiry among `keys`, whose values are `V`s.
fn expiry<V: serde::de::DeserializeOwned>(cache: &Cache, keys: &[&str]) -> SystemTime {
    keys.iter()
        .map(|k| {
            let entry = cache.get_entry::<V>(*k).unwrap();
            entry.unwrap_or_else(|| panic!("{k} is not held")).expire_time.unwrap()
        })
        .max()
        .unwrap()
}

#[cfg(unix)]
#[test]
fn a_killed_holder_blocks_others_until_the_expiry_and_no_longer() {
    let dir = tempfile::tempdir().unwrap();
    let cache = open(dir.path());
    let mut child = spawn("holder", dir.path(), 0);
    let stdout = child.0.stdout.take().unwrap();
    cache.set("go", &1).unwrap();
    let mut lines = BufReader::new(stdout).lines();
    assert!(lines.any(|l| l.unwrap().contains("RESULT holding")));

    let lock_expiry = expiry::<String>(&cache, &["dead-lock"]);
    let rlock_expiry = expiry::<(String, u64)>(&cache, &["dead-rlock"]);
    let sem_expiry = expiry::<String>(&cache, &["dead-sem:0", "dead-sem:1"]);
    let status = Command::new("kill")
        .args(["-KILL", &child.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(!child.0.wait().unwrap().success());

    let lock = Lock::new(&cache, "dead-lock", SECOND).unwrap();
    let rlock = RLock::new(&cache, "dead-rlock", SECOND).unwrap();
    let sem = BoundedSemaphore::new(&cache, "dead-sem", 2, SECOND).unwrap();
    assert!(
        SystemTime::now() < lock_expiry,
        "the machine is too slow: the lock expired before the kill"
    );
    // The dead holder still holds everything...
    assert!(lock.locked().unwrap());
    assert!(!lock.try_acquire().unwrap());
    assert!(!rlock.try_acquire().unwrap());
    assert!(!sem.try_acquire().unwrap());
    assert_eq!(sem.available().unwrap(), 0);
    // ...until its expiry, and not after it.
    let check = |what: &str, got: bool, expiry: SystemTime| {
        let now = SystemTime::now();
        assert!(got, "{what} was not freed");
        assert!(now >= expiry, "{what} was taken before its expiry");
        let late = now.duration_since(expiry).unwrap();
        assert!(late < SECOND, "{what} was taken {late:?} after its expiry");
    };
    check("the lock", lock.acquire_timeout(5 * SECOND).unwrap(), lock_expiry);
    check("the rlock", rlock.acquire_timeout(5 * SECOND).unwrap(), rlock_expiry);
    check("slot 1", sem.acquire_timeout(5 * SECOND).unwrap(), sem_expiry);
    check("slot 2", sem.acquire_timeout(5 * SECOND).unwrap(), sem_expiry);
    assert!(!sem.try_acquire().unwrap(), "the bound still holds");
    lock.release().unwrap();
    rlock.release().unwrap();
    sem.release().unwrap();
    sem.release().unwrap();
}

#[test]
fn lock_release_and_guard() {
    let dir = tempfile::tempdir().unwrap();
    let cache = open(dir.path());
    let a = Lock::new(&cache, "l", Duration::from_secs(60)).unwrap();
    let b = Lock::new(&cache, "l", Duration::from_secs(60)).unwrap();
    assert!(matches!(a.release(), Err(Error::InvalidUse(_))), "never acquired");
    assert!(a.try_acquire().unwrap());
    assert!(!b.try_acquire().unwrap());
    assert!(!b.acquire_timeout(Duration::from_millis(30)).unwrap());
    assert!(matches!(b.release(), Err(Error::InvalidUse(_))), "held by another");
    assert!(a.locked().unwrap(), "a failed release changes nothing");
    a.release().unwrap();
    {
        let _guard = b.lock().unwrap();
        assert!(!a.try_acquire().unwrap());
    }
    assert!(!a.locked().unwrap(), "the guard released on drop");

    // A waiter gets the lock soon after the holder releases it.
    let guard = a.lock().unwrap();
    let waiter = {
        let cache = cache.clone();
        thread::spawn(move || {
            let b = Lock::new(&cache, "l", Duration::from_secs(60)).unwrap();
            b.acquire().unwrap();
            b.release().unwrap();
        })
    };
    thread::sleep(Duration::from_millis(50));
    assert!(!waiter.is_finished());
    guard.release().unwrap();
    waiter.join().unwrap();

    // An expired holder cannot release (or refresh) the lock another took.
    // (A second is long enough for the refresh right after the acquire,
    // however loaded the machine; the next holder waits for the expiry.)
    let short = Lock::new(&cache, "short", SECOND).unwrap();
    let next = Lock::new(&cache, "short", Duration::from_secs(60)).unwrap();
    short.acquire().unwrap();
    assert!(short.refresh().unwrap());
    assert!(next.acquire_timeout(60 * SECOND).unwrap());
    assert!(matches!(short.release(), Err(Error::InvalidUse(_))));
    assert!(!short.refresh().unwrap());
    assert!(next.locked().unwrap());
    next.release().unwrap();
}

#[test]
fn bad_settings_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let cache = open(dir.path());
    let named = |r: Result<(), Error>, want: &str| match r {
        Err(Error::InvalidSetting { name, message }) => {
            assert_eq!(name, want);
            assert!(message.contains(want), "{message}");
        }
        other => panic!("expected InvalidSetting {want}, got {other:?}"),
    };
    named(Lock::new(&cache, "l", Duration::ZERO).map(drop), "expire");
    named(RLock::new(&cache, "l", Duration::ZERO).map(drop), "expire");
    named(
        BoundedSemaphore::new(&cache, "s", 1, Duration::ZERO).map(drop),
        "expire",
    );
    named(BoundedSemaphore::new(&cache, "s", 0, SECOND).map(drop), "value");
    named(Averager::new(&cache, "a", Some(Duration::ZERO)).map(drop), "expire");
    named(Throttle::new(&cache, "t", 0, SECOND).map(drop), "count");
    named(Throttle::new(&cache, "t", 1, Duration::ZERO).map(drop), "period");
    named(Barrier::new(&cache, "b", Duration::ZERO).map(drop), "expire");
    named(MemoizeStampede::new(&cache, Duration::ZERO).map(drop), "expire");
    let memo = || MemoizeStampede::new(&cache, SECOND).unwrap();
    named(memo().beta(-1.0).map(drop), "beta");
    named(memo().beta(f64::NAN).map(drop), "beta");
    named(memo().beta(f64::INFINITY).map(drop), "beta");
    assert!(memo().beta(0.0).is_ok());
    assert!(matches!(
        Averager::new(&cache, "a", None).unwrap().add(f64::INFINITY),
        Err(Error::InvalidUse(_))
    ));
    assert_eq!(cache.len().unwrap(), 0, "bad input wrote nothing");
}

#[test]
fn rlock_is_reentrant_and_only_its_holder_releases_it() {
    let dir = tempfile::tempdir().unwrap();
    let cache = open(dir.path());
    let rlock = RLock::new(&cache, "r", Duration::from_secs(60)).unwrap();
    let other_thread = |f: fn(&RLock) -> diskq::Result<bool>| {
        let r = rlock.clone();
        thread::spawn(move || f(&r)).join().unwrap()
    };
    rlock.acquire().unwrap();
    assert!(rlock.try_acquire().unwrap());
    {
        let _third = rlock.lock().unwrap();
        assert_eq!(cache.get::<(String, u64)>("r").unwrap().unwrap().1, 3);
    }
    assert!(!other_thread(|r| r.try_acquire()).unwrap());
    let err = other_thread(|r| r.release().map(|()| true)).unwrap_err();
    assert!(matches!(err, Error::InvalidUse(_)), "{err}");
    rlock.release().unwrap();
    assert!(rlock.locked().unwrap(), "still held once");
    assert!(!other_thread(|r| r.try_acquire()).unwrap());
    rlock.release().unwrap();
    assert!(!rlock.locked().unwrap());
    assert!(matches!(rlock.release(), Err(Error::InvalidUse(_))));
    assert!(!cache.contains_key("r").unwrap(), "the last release deletes the key");
    assert!(other_thread(|r| r.try_acquire()).unwrap());
    assert!(
        matches!(rlock.release(), Err(Error::InvalidUse(_))),
        "held by the other thread"
    );

    // A caller-given holder id is shared by every handle that uses it.
    let job_a = RLock::new(&cache, "job", Duration::from_secs(60))
        .unwrap()
        .holder("job-7");
    let job_b = RLock::new(&cache, "job", Duration::from_secs(60))
        .unwrap()
        .holder("job-7");
    let stranger = RLock::new(&cache, "job", Duration::from_secs(60))
        .unwrap()
        .holder("job-8");
    job_a.acquire().unwrap();
    assert!(job_b.try_acquire().unwrap());
    assert!(!stranger.try_acquire().unwrap());
    assert!(matches!(stranger.release(), Err(Error::InvalidUse(_))));
    job_b.release().unwrap();
    job_a.release().unwrap();
    assert!(stranger.try_acquire().unwrap());
}

#[test]
fn semaphore_bounds_concurrent_holders() {
    let dir = tempfile::tempdir().unwrap();
    let cache = open(dir.path());
    let in_flight = AtomicUsize::new(0);
    let most = AtomicUsize::new(0);
    let runs = AtomicUsize::new(0);
    thread::scope(|s| {
        for _ in 0..6 {
            s.spawn(|| {
                let sem = BoundedSemaphore::new(&cache, "sem", 2, Duration::from_secs(60)).unwrap();
                for _ in 0..5 {
                    let _slot = sem.lock().unwrap();
                    let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    thread::sleep(Duration::from_millis(5));
                    in_flight.fetch_sub(1, Ordering::SeqCst);
                    runs.fetch_add(1, Ordering::SeqCst);
                }
            });
        }
    });
    assert_eq!(runs.load(Ordering::SeqCst), 30);
    let most = most.load(Ordering::SeqCst);
    assert!((1..=2).contains(&most), "{most} holders at once");

    // Release errors: never above the bound, never another holder's slot.
    let a = BoundedSemaphore::new(&cache, "sem", 2, Duration::from_secs(60)).unwrap();
    let b = BoundedSemaphore::new(&cache, "sem", 2, Duration::from_secs(60)).unwrap();
    assert_eq!(a.available().unwrap(), 2);
    assert!(matches!(a.release(), Err(Error::InvalidUse(_))), "above the bound");
    assert!(a.try_acquire().unwrap());
    assert!(a.try_acquire().unwrap());
    assert!(!b.try_acquire().unwrap());
    assert!(!b.acquire_timeout(Duration::from_millis(30)).unwrap());
    assert!(matches!(b.release(), Err(Error::InvalidUse(_))), "b holds no slot");
    assert_eq!(a.available().unwrap(), 0, "a failed release changes nothing");
    a.release().unwrap();
    assert!(b.try_acquire().unwrap());
    a.release().unwrap();
    assert!(matches!(a.release(), Err(Error::InvalidUse(_))), "a gave back both");
    b.release().unwrap();
    assert_eq!(a.available().unwrap(), 2);
}

#[test]
fn semaphore_slot_of_a_vanished_holder_frees_at_expiry() {
    let dir = tempfile::tempdir().unwrap();
    let cache = open(dir.path());
    let gone = BoundedSemaphore::new(&cache, "s", 1, Duration::from_millis(200)).unwrap();
    let slot = gone.lock().unwrap();
    std::mem::forget(slot); // the holder never releases, as if it had died
    let other = BoundedSemaphore::new(&cache, "s", 1, Duration::from_secs(60)).unwrap();
    assert!(!other.try_acquire().unwrap());
    assert!(other.acquire_timeout(2 * SECOND).unwrap());
    assert!(matches!(gone.release(), Err(Error::InvalidUse(_))), "its slot expired");
    assert_eq!(other.available().unwrap(), 0, "and it did not free the new holder's");
}

#[test]
fn averager_counts_every_add() {
    let dir = tempfile::tempdir().unwrap();
    let cache = open(dir.path());
    let ave = Averager::new(&cache, "latency", None).unwrap();
    assert_eq!(ave.get().unwrap(), None);
    ave.add(0.080).unwrap();
    ave.add(0.120).unwrap();
    assert!((ave.get().unwrap().unwrap() - 0.1).abs() < 1e-12);
    ave.add(0.160).unwrap();
    assert!((ave.pop().unwrap().unwrap() - 0.12).abs() < 1e-12);
    assert_eq!(ave.get().unwrap(), None);
    assert_eq!(ave.pop().unwrap(), None);

    thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                let ave = Averager::new(&cache, "latency", None).unwrap();
                for n in 0..100 {
                    ave.add(f64::from(n)).unwrap();
                }
            });
        }
    });
    let (total, count) = cache.get::<(f64, u64)>("latency").unwrap().unwrap();
    assert_eq!(count, 400);
    assert_eq!(total, 4.0 * 4950.0);
    assert_eq!(ave.get().unwrap(), Some(49.5));

    // Expiry follows the cache's clock, which the test moves by hand.
    let now = Arc::new(AtomicU64::new(1_000_000f64.to_bits()));
    let clock = now.clone();
    let timed = Cache::builder()
        .clock(move || std::time::UNIX_EPOCH + Duration::from_secs_f64(f64::from_bits(clock.load(Ordering::SeqCst))))
        .open(dir.path().join("timed"))
        .unwrap();
    let expiring = Averager::new(&timed, "recent", Some(Duration::from_millis(100))).unwrap();
    expiring.add(1.0).unwrap();
    assert_eq!(expiring.get().unwrap(), Some(1.0));
    now.store(1_000_000.15f64.to_bits(), Ordering::SeqCst);
    assert_eq!(expiring.get().unwrap(), None, "reset after the expiry");
}

#[test]
fn barrier_lets_one_caller_in_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let cache = open(dir.path());
    let barrier = Barrier::new(&cache, "section", Duration::from_secs(60)).unwrap();
    let log = Mutex::new(Vec::new());
    thread::scope(|s| {
        for id in 0..4 {
            let (barrier, log) = (&barrier, &log);
            s.spawn(move || {
                for _ in 0..5 {
                    let got = barrier
                        .run(|| {
                            log.lock().unwrap().push(("enter", id));
                            thread::sleep(Duration::from_millis(3));
                            log.lock().unwrap().push(("exit", id));
                            id
                        })
                        .unwrap();
                    assert_eq!(got, id);
                }
            });
        }
    });
    let log = log.into_inner().unwrap();
    assert_eq!(log.len(), 40);
    for pair in log.chunks(2) {
        assert_eq!(pair[0].0, "enter", "{log:?}");
        assert_eq!(pair[1], ("exit", pair[0].1), "sections overlapped: {log:?}");
    }

    // A panic in the section still releases it.
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| barrier.run::<()>(|| panic!("boom"))));
    assert!(panicked.is_err());
    assert!(!Lock::new(&cache, "section", SECOND).unwrap().locked().unwrap());

    // A section that outlives the expiry is reported.
    let short = Barrier::new(&cache, "short", Duration::from_millis(50)).unwrap();
    let err = short.run(|| thread::sleep(Duration::from_millis(150))).unwrap_err();
    assert!(matches!(err, Error::InvalidUse(_)), "{err}");
}

#[test]
fn throttle_keeps_every_period_within_count() {
    let dir = tempfile::tempdir().unwrap();
    let cache = open(dir.path());
    let (count, period) = (5, Duration::from_millis(200));
    let run_for = SECOND;
    let started = Instant::now();
    let calls = Mutex::new(Vec::new());
    thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                let throttle = Throttle::new(&cache, "api", count, period).unwrap();
                while started.elapsed() < run_for {
                    throttle.call(|| calls.lock().unwrap().push(Instant::now())).unwrap();
                }
            });
        }
    });
    let mut calls = calls.into_inner().unwrap();
    calls.sort();
    // A start is never earlier than its slot: starts are spaced period/count
    // apart, after a first burst of at most `count`. (Checked on each start's
    // earliest possible time, not on gaps between starts: on a loaded
    // machine a thread may return late from its wait, which bunches the
    // times it records, but never early.)
    let interval = period / count;
    for (i, t) in calls.iter().enumerate() {
        let earliest = interval.mul_f64((i as f64 - f64::from(count)).max(0.0));
        assert!(
            t.duration_since(started) + Duration::from_millis(2) >= earliest,
            "start {i} came {:?} after the first, before its slot at {earliest:?}",
            t.duration_since(started)
        );
    }
    // About 25 calls in a second (plus the ones reserved just before the
    // end); never more than the slots allow. (No lower bound that a loaded
    // machine could miss: a handful shows the throttle lets calls through.)
    let total = calls.len();
    eprintln!("throttle: {total} calls in {:?}", started.elapsed());
    assert!((5..=30).contains(&total), "{total} calls");

    // try_wait takes a start only when one is due.
    let once = Throttle::new(&cache, "daily", 1, Duration::from_secs(3600)).unwrap();
    assert!(once.try_wait().unwrap());
    assert!(!once.try_wait().unwrap());
}

#[test]
fn memoize_stampede_computes_once_while_fresh_and_again_after_expiry() {
    let dir = tempfile::tempdir().unwrap();
    let cache = open(dir.path());
    let memo = MemoizeStampede::new(&cache, SECOND).unwrap();
    let computed = AtomicUsize::new(0);
    let compute = || -> Result<usize, Error> {
        thread::sleep(Duration::from_millis(50));
        Ok(computed.fetch_add(1, Ordering::SeqCst) + 1)
    };
    let start = std::sync::Barrier::new(8);
    let got: Vec<usize> = thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                s.spawn(|| {
                    start.wait();
                    memo.memoize("report", compute).unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(got, [1; 8], "every caller got the one computed value");
    assert_eq!(computed.load(Ordering::SeqCst), 1);
    // While fresh (ttl ~ 0.9 s, delta 0.05 s: early odds e^-18), served from the cache.
    for _ in 0..20 {
        assert_eq!(memo.memoize("report", compute).unwrap(), 1);
    }
    assert_eq!(computed.load(Ordering::SeqCst), 1);

    let expires = cache
        .get_entry::<(usize, f64)>("report")
        .unwrap()
        .unwrap()
        .expire_time
        .unwrap();
    let (value, delta) = cache.get::<(usize, f64)>("report").unwrap().unwrap();
    assert_eq!(value, 1);
    assert!(delta >= 0.05, "the stored duration {delta}");
    thread::sleep(expires.duration_since(SystemTime::now()).unwrap_or_default() + Duration::from_millis(20));
    assert_eq!(memo.memoize("report", compute).unwrap(), 2, "recomputed after expiry");
    assert_eq!(computed.load(Ordering::SeqCst), 2);
}

#[test]
fn memoize_stampede_recomputes_early_by_beta() {
    let dir = tempfile::tempdir().unwrap();
    let cache = open(dir.path());
    let computed = AtomicUsize::new(0);
    let compute = || -> Result<usize, Error> {
        thread::sleep(Duration::from_millis(10));
        Ok(computed.fetch_add(1, Ordering::SeqCst) + 1)
    };
    let expire = Duration::from_secs(30);
    // With a huge beta, the odds of early recomputation are ~1 at once.
    let eager = MemoizeStampede::new(&cache, expire).unwrap().beta(1e9).unwrap();
    assert_eq!(eager.memoize("k", compute).unwrap(), 1);
    assert_eq!(eager.memoize("k", compute).unwrap(), 2, "recomputed before expiry");
    assert!(cache.contains_key("k").unwrap());
    // With beta 0, never early.
    let lazy = MemoizeStampede::new(&cache, expire).unwrap().beta(0.0).unwrap();
    assert_eq!(lazy.memoize("k", compute).unwrap(), 2);
    assert_eq!(computed.load(Ordering::SeqCst), 2);
    // A failed early recomputation goes to its caller; the value stays.
    let failing = || -> Result<usize, Error> {
        thread::sleep(Duration::from_millis(10));
        Err(Error::InvalidUse("backend down".into()))
    };
    assert!(eager.memoize("k", failing).is_err());
    assert_eq!(lazy.memoize("k", compute).unwrap(), 2);
}
