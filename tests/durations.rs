//! Waits and durations: a timed pop, pull or lease returns by its own
//! deadline while another connection holds the write lock, whatever the
//! cache's timeout; and any `Duration` a caller can pass (`Duration::MAX`
//! included) is valid, never a panic.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use diskq::{BoundedSemaphore, Cache, Deque, EvictionPolicy, FanoutCache, LeaseOptions, Lock, PullOptions, SetOptions};

// ------------------------------------------- timed waits while a lock is held

/// Far above any timed wait here and far below the cache timeout, so a wait
/// that waited for the lock up to the cache timeout fails the test.
const GENEROUS: Duration = Duration::from_secs(10);
const WAIT: Duration = Duration::from_millis(200);

/// Runs `waiter` while another thread holds the write lock of `cache` in a
/// transaction, then releases it. The holder is released only after
/// `waiter` returned, so the lock is held during the whole wait.
fn while_locked<R>(cache: &Cache, waiter: impl FnOnce() -> R) -> R {
    let (held_tx, held_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let holder = cache.clone();
    let holding = thread::spawn(move || {
        holder
            .transact(|c| {
                c.set("holder", &1)?;
                held_tx.send(()).unwrap();
                release_rx.recv().unwrap();
                Ok::<_, diskq::Error>(())
            })
            .unwrap();
    });
    held_rx.recv().unwrap();
    let result = waiter();
    release_tx.send(()).unwrap();
    holding.join().unwrap();
    result
}

fn locked_cache(dir: &std::path::Path) -> Cache {
    Cache::builder()
        .eviction_policy(EvictionPolicy::None)
        .timeout(Duration::from_secs(30))
        .open(dir)
        .unwrap()
}

/// `None` or `Timeout` are both right; the point is returning in time.
fn in_time<T: std::fmt::Debug>(what: &str, started: Instant, result: diskq::Result<Option<T>>) {
    let took = started.elapsed();
    assert!(took < GENEROUS, "{what} took {took:?} for a {WAIT:?} wait");
    match result {
        Ok(None) => {}
        Err(e) if e.is_timeout() => {}
        other => panic!("{what}: expected None or Timeout, got {other:?}"),
    }
}

#[test]
fn a_timed_pop_returns_by_its_deadline_while_another_writer_holds_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let cache = locked_cache(dir.path());
    let jobs: Deque<String> = Deque::from_cache(cache.clone());
    while_locked(&cache, || {
        let started = Instant::now();
        in_time("pop_front_timeout", started, jobs.pop_front_timeout(WAIT));
        let started = Instant::now();
        in_time("pop_back_timeout", started, jobs.pop_back_timeout(WAIT));
    });
    // Once the lock is free, the wait works as before.
    jobs.push_back(&"job".to_string()).unwrap();
    assert_eq!(jobs.pop_front_timeout(WAIT).unwrap().as_deref(), Some("job"));
}

#[test]
fn a_timed_pull_and_lease_return_by_their_deadline_while_the_lock_is_held() {
    let dir = tempfile::tempdir().unwrap();
    let cache = locked_cache(dir.path());
    cache.push("queued").unwrap();
    let pull = PullOptions::new();
    let lease = LeaseOptions::new(Duration::from_secs(60));
    while_locked(&cache, || {
        let started = Instant::now();
        in_time("pull_timeout", started, cache.pull_timeout::<String>(&pull, WAIT));
        let started = Instant::now();
        in_time("lease_timeout", started, cache.lease_timeout::<String>(&lease, WAIT));
        // `retry` does not stretch a timed wait past its deadline either.
        let started = Instant::now();
        in_time(
            "pull_timeout with retry",
            started,
            cache.pull_timeout::<String>(&pull.clone().retry(true), WAIT),
        );
    });
    let (result, took) = while_locked(&cache, || {
        let started = Instant::now();
        (cache.transact_timeout(WAIT, |c| c.incr("n", 1, 0)), started.elapsed())
    });
    assert!(took < GENEROUS, "transact_timeout took {took:?}");
    assert!(result.unwrap_err().is_timeout());
    assert_eq!(cache.transact_timeout(WAIT, |c| c.incr("n", 1, 0)).unwrap(), 1);
    assert_eq!(cache.len().unwrap(), 3, "nothing was taken while locked");
    let (_, value) = cache.pull_timeout::<String>(&pull, WAIT).unwrap().expect("the item");
    assert_eq!(value, "queued");
}

// --------------------------------------------------------- huge durations

#[test]
fn waits_of_duration_max_do_not_panic() {
    let dir = tempfile::tempdir().unwrap();
    let jobs: Deque<String> = Deque::open(dir.path()).unwrap();
    jobs.push_back(&"a".to_string()).unwrap();
    assert_eq!(jobs.pop_front_timeout(Duration::MAX).unwrap().as_deref(), Some("a"));
    jobs.push_back(&"b".to_string()).unwrap();
    assert_eq!(jobs.pop_back_timeout(Duration::MAX).unwrap().as_deref(), Some("b"));
    jobs.push_back(&"c".to_string()).unwrap();
    let lease = jobs
        .lease_timeout(&LeaseOptions::new(Duration::from_secs(60)), Duration::MAX)
        .unwrap()
        .expect("c");
    assert!(lease.ack().unwrap());
    jobs.push_back(&"d".to_string()).unwrap();
    let (_, d) = jobs
        .cache()
        .pull_timeout::<String>(&PullOptions::new(), Duration::MAX)
        .unwrap()
        .expect("d");
    assert_eq!(d, "d");

    // An endless wait on an empty deque gets an item pushed meanwhile.
    let pusher = jobs.clone();
    let push = thread::spawn(move || pusher.push_back(&"later".to_string()).unwrap());
    assert_eq!(jobs.pop_front_timeout(Duration::MAX).unwrap().as_deref(), Some("later"));
    push.join().unwrap();
}

#[test]
fn huge_cache_timeouts_open_and_work() {
    let dir = tempfile::tempdir().unwrap();
    for timeout in [Duration::from_secs(30 * 24 * 3600), Duration::MAX] {
        let cache = Cache::builder().timeout(timeout).open(dir.path()).unwrap();
        cache.set("k", &1).unwrap();
        assert_eq!(cache.get::<i64>("k").unwrap(), Some(1));
        let fanout = FanoutCache::builder()
            .timeout(timeout)
            .open(dir.path().join("fanout"))
            .unwrap();
        assert!(fanout.set("k", &2).unwrap());
        assert_eq!(fanout.get::<i64>("k").unwrap(), Some(2));
    }
}

#[test]
fn leases_of_duration_max_and_their_extension_do_not_panic() {
    let dir = tempfile::tempdir().unwrap();
    let jobs: Deque<String> = Deque::open(dir.path()).unwrap();
    jobs.push_back(&"forever".to_string()).unwrap();
    let opts = LeaseOptions::new(Duration::MAX);
    let mut lease = jobs.lease_with(&opts).unwrap().expect("leased");
    assert!(lease.deadline() > std::time::SystemTime::now() + Duration::from_secs(1000 * 365 * 24 * 3600));
    // Waiting wakes at the next lease deadline, here beyond any clock.
    assert!(jobs.lease_timeout(&opts, Duration::from_millis(20)).unwrap().is_none());
    assert!(lease.renew(Duration::MAX).unwrap());
    assert!(lease.deadline() > std::time::SystemTime::now() + Duration::from_secs(1000 * 365 * 24 * 3600));
    assert!(jobs.lease_with(&opts).unwrap().is_none(), "still leased");
    assert!(lease.ack().unwrap());
    assert!(jobs.is_empty().unwrap());
}

#[test]
fn expiries_of_duration_max_mean_practically_never() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path()).unwrap();
    cache
        .set_with("k", &1, &SetOptions::new().expire(Duration::MAX))
        .unwrap();
    assert_eq!(cache.get::<i64>("k").unwrap(), Some(1));
    let entry = cache.get_entry::<i64>("k").unwrap().expect("live");
    assert!(entry.expire_time.is_some());
    assert!(cache.touch("k", Some(Duration::MAX)).unwrap());
    assert_eq!(cache.expire().unwrap(), 0);
    assert_eq!(cache.get::<i64>("k").unwrap(), Some(1));
    let v: i64 = cache
        .memoize("memo", Some(Duration::MAX), || Ok::<_, diskq::Error>(5))
        .unwrap();
    assert_eq!(v, 5);
    let push = diskq::PushOptions::new().set(SetOptions::new().expire(Duration::MAX));
    cache.push_with("queued", &push).unwrap();
    assert_eq!(
        cache.pull::<String>().unwrap().map(|(_, v)| v).as_deref(),
        Some("queued")
    );
}

#[test]
fn recipes_take_duration_max() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path()).unwrap();
    let lock = Lock::new(&cache, "l", Duration::MAX).unwrap();
    assert!(lock.acquire_timeout(Duration::MAX).unwrap());
    lock.release().unwrap();
    let sem = BoundedSemaphore::new(&cache, "s", 1, Duration::MAX).unwrap();
    assert!(sem.acquire_timeout(Duration::MAX).unwrap());
    sem.release().unwrap();
}
