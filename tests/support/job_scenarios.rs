//! Job scenarios (delayed items, priorities, unique keys, retry with
//! backoff), each run on a cache with a test clock; `tests/jobs.rs` runs
//! them on a directory, `tests/pg_jobs.rs` on a directory and on PostgreSQL.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use diskq::{Backlog, Cache, LeaseOptions, NackOptions, PullOptions, PushOptions, RetryPolicy, Side};

/// One racer of the unique-push tests (`tests/pg_jobs.rs`,
/// `tests/multiprocess_jobs.rs`): pushes `key-0` … `key-{keys - 1}` to queue
/// `jobs`, each with its unique key and priority `k % 3`; the keys whose push
/// it won. All racers walk the keys in one order, so the pushes of each key
/// meet at about the same moment (from different starting points they
/// would, at one speed, never meet).
pub fn push_unique_keys(cache: &Cache, id: usize, keys: usize) -> Vec<usize> {
    let mut won = Vec::new();
    for k in 0..keys {
        let opts = PushOptions::new()
            .prefix("jobs")
            .unique_key(format!("key-{k}"))
            .priority((k % 3) as i32);
        if cache.push_job(&format!("{k} from {id}"), &opts).unwrap().is_some() {
            won.push(k);
        }
    }
    won
}

/// A cache at `location` whose clock reads the returned counter
/// (milliseconds since the epoch).
pub fn clocked(location: impl AsRef<Path>) -> (Cache, Arc<AtomicU64>) {
    let clock = Arc::new(AtomicU64::new(1_000_000_000_000));
    let c = clock.clone();
    let cache = Cache::builder()
        .clock(move || SystemTime::UNIX_EPOCH + Duration::from_millis(c.load(Ordering::SeqCst)))
        .open(location)
        .expect("open");
    (cache, clock)
}

pub fn advance(clock: &AtomicU64, ms: u64) {
    clock.fetch_add(ms, Ordering::SeqCst);
}

pub fn pull(cache: &Cache) -> Option<String> {
    cache.pull::<String>().expect("pull").map(|(_, v)| v)
}

pub fn delayed_items_stay_invisible_until_due_and_count_as_scheduled(cache: &Cache, clock: &AtomicU64) {
    cache
        .push_with("in 10 s", &PushOptions::new().delay(Duration::from_secs(10)))
        .unwrap();
    let at = SystemTime::UNIX_EPOCH + Duration::from_millis(clock.load(Ordering::SeqCst) + 5_000);
    cache
        .push_many(["at 5 s a", "at 5 s b"], &PushOptions::new().at(at))
        .unwrap();
    assert_eq!(pull(cache), None);
    let opts = LeaseOptions::new(Duration::from_secs(60));
    assert!(cache.lease::<String>(&opts).unwrap().is_none());
    assert_eq!(
        cache.backlog(None).unwrap(),
        Backlog {
            queued: 0,
            leased: 0,
            scheduled: 3
        }
    );
    advance(clock, 4_999);
    assert_eq!(pull(cache), None, "one millisecond early");
    advance(clock, 1);
    assert_eq!(
        cache.backlog(None).unwrap(),
        Backlog {
            queued: 2,
            leased: 0,
            scheduled: 1
        }
    );
    advance(clock, 1);
    cache.push("plain, pushed after they were due").unwrap();
    assert_eq!(pull(cache).as_deref(), Some("at 5 s a"));
    let lease = cache.lease::<String>(&opts).unwrap().unwrap();
    assert_eq!(lease.value(), "at 5 s b");
    assert_eq!(
        cache.backlog(None).unwrap(),
        Backlog {
            queued: 1,
            leased: 1,
            scheduled: 1
        }
    );
    assert!(lease.ack().unwrap());
    assert_eq!(pull(cache).as_deref(), Some("plain, pushed after they were due"));
    advance(clock, 5_000);
    assert_eq!(pull(cache).as_deref(), Some("in 10 s"));
    assert!(cache.backlog(None).unwrap().is_empty());
    assert!(cache.is_empty().unwrap());
    let stats = cache.queue_stats(None).unwrap();
    assert_eq!((stats.pushed, stats.scheduled, stats.popped), (4, 3, 3));
}

pub fn priorities_go_first_and_fifo_within_one(cache: &Cache, clock: &AtomicU64) {
    let jobs = PushOptions::new().prefix("jobs");
    cache.push_with("plain 1", &jobs).unwrap();
    advance(clock, 1);
    cache.push_many(["low a", "low b"], &jobs.clone().priority(-1)).unwrap();
    cache
        .push_many(["high a", "high b"], &jobs.clone().priority(5))
        .unwrap();
    advance(clock, 1);
    cache.push_with("mid", &jobs.clone().priority(2)).unwrap();
    cache.push_with("plain 2", &jobs).unwrap();
    advance(clock, 1);
    cache.push_with("high c", &jobs.clone().priority(5)).unwrap();
    let from = PullOptions::new().prefix("jobs");
    let lease = LeaseOptions::new(Duration::from_secs(60)).prefix("jobs");
    let first = cache.lease::<String>(&lease).unwrap().unwrap();
    assert_eq!(first.value(), "high a");
    let batch: Vec<String> = cache.pull_many(4, &from).unwrap().into_iter().map(|(_, v)| v).collect();
    assert_eq!(batch, ["high b", "high c", "mid", "plain 1"]);
    assert!(first.nack(Side::Front).unwrap(), "back, ahead of the plain items");
    let rest: Vec<String> = cache
        .pull_many(10, &from)
        .unwrap()
        .into_iter()
        .map(|(_, v)| v)
        .collect();
    assert_eq!(rest, ["high a", "plain 2", "low a", "low b"]);
}

pub fn a_unique_key_is_held_while_queued_scheduled_or_leased(cache: &Cache, clock: &AtomicU64) {
    let once = PushOptions::new().unique_key("k");
    assert!(cache.push_job("1", &once).unwrap().is_some());
    assert!(cache.push_job("2", &once).unwrap().is_none(), "queued");
    let err = cache.push_with("2", &once).unwrap_err();
    assert!(err.to_string().contains("taken"), "{err}");
    assert!(
        cache
            .push_job("other queue", &once.clone().prefix("q"))
            .unwrap()
            .is_some(),
        "keys are per queue"
    );
    let opts = LeaseOptions::new(Duration::from_secs(10)).max_deliveries(2);
    let lease = cache.lease::<String>(&opts).unwrap().unwrap();
    assert!(cache.push_job("3", &once).unwrap().is_none(), "leased");
    assert!(
        lease
            .nack_with(&NackOptions::new().delay(Duration::from_secs(5)))
            .unwrap()
    );
    assert!(cache.push_job("4", &once).unwrap().is_none(), "scheduled again");
    advance(clock, 5_000);
    let lease = cache.lease::<String>(&opts).unwrap().unwrap();
    assert_eq!((lease.value().as_str(), lease.deliveries()), ("1", 2));
    assert!(lease.nack(Side::Back).unwrap(), "its second delivery: dead letter");
    assert!(cache.push_job("5", &once).unwrap().is_some(), "free once dead-lettered");
    let lease = cache.lease::<String>(&opts).unwrap().unwrap();
    assert!(lease.ack().unwrap());
    assert!(cache.push_job("6", &once).unwrap().is_some(), "free once acked");
    assert_eq!(pull(cache).as_deref(), Some("6"));
    assert!(cache.push_job("7", &once).unwrap().is_some(), "free once popped");
    // A unique key's item removed behind diskq's back frees it too.
    let key = cache.push_job("8", &once.clone().prefix("r")).unwrap().unwrap();
    assert!(cache.delete(key).unwrap());
    assert!(cache.push_job("9", &once.clone().prefix("r")).unwrap().is_some());
}

pub fn nack_with_a_delay_and_an_error_comes_back_later_with_them(cache: &Cache, clock: &AtomicU64) {
    cache.push("job").unwrap();
    let opts = LeaseOptions::new(Duration::from_secs(60));
    let lease = cache.lease::<String>(&opts).unwrap().unwrap();
    let nack = NackOptions::new().delay(Duration::from_secs(30)).error("HTTP 503");
    assert!(lease.nack_with(&nack).unwrap());
    assert_eq!(
        cache.backlog(None).unwrap(),
        Backlog {
            queued: 0,
            leased: 0,
            scheduled: 1
        }
    );
    advance(clock, 29_999);
    assert!(cache.lease::<String>(&opts).unwrap().is_none());
    advance(clock, 1);
    let again = cache.lease::<String>(&opts).unwrap().unwrap();
    assert_eq!((again.deliveries(), again.last_error()), (2, Some("HTTP 503")));
    // A later nack without a reason keeps the last one.
    assert!(again.nack(Side::Back).unwrap());
    let third = cache.lease::<String>(&opts).unwrap().unwrap();
    assert_eq!((third.deliveries(), third.last_error()), (3, Some("HTTP 503")));
    assert!(third.ack().unwrap());
    assert!(cache.is_empty().unwrap());
    let stats = cache.queue_stats(None).unwrap();
    assert_eq!((stats.leased, stats.nacked, stats.acked, stats.scheduled), (3, 2, 1, 1));
}

pub fn a_retry_policy_delays_nacks_and_leases_that_ran_out(cache: &Cache, clock: &AtomicU64) {
    let policy = RetryPolicy::exponential(Duration::from_secs(1), Duration::from_secs(3));
    let opts = LeaseOptions::new(Duration::from_secs(10)).retry_policy(policy);
    cache.push("job").unwrap();
    let first = cache.lease::<String>(&opts).unwrap().unwrap();
    assert!(first.nack(Side::Front).unwrap()); // 1 s
    advance(clock, 999);
    assert!(cache.lease::<String>(&opts).unwrap().is_none());
    advance(clock, 1);
    let second = cache.lease::<String>(&opts).unwrap().unwrap();
    assert_eq!(second.deliveries(), 2);
    drop(second); // runs out at +10 s, then waits 2 s
    advance(clock, 10_000);
    assert!(cache.lease::<String>(&opts).unwrap().is_none(), "ran out, backing off");
    assert_eq!(cache.backlog(None).unwrap().scheduled, 1);
    advance(clock, 1_999);
    assert!(cache.lease::<String>(&opts).unwrap().is_none());
    advance(clock, 1);
    let third = cache.lease::<String>(&opts).unwrap().unwrap();
    assert_eq!(third.deliveries(), 3);
    drop(third); // a job's lease runs out: 3 s (4 s capped)
    advance(clock, 12_999);
    assert!(cache.lease::<String>(&opts).unwrap().is_none());
    advance(clock, 1);
    let fourth = cache.lease::<String>(&opts).unwrap().unwrap();
    assert_eq!(fourth.deliveries(), 4);
    assert!(fourth.ack().unwrap());
    assert_eq!(cache.queue_stats(None).unwrap().redelivered, 2);
}

/// With the system clock, the wait is real; `location` is opened with a
/// fallback poll of 30 s, so only the due time can end the waits early.
pub fn a_delayed_item_wakes_a_blocked_waiter_when_due(location: &Path) {
    let cache = Cache::builder()
        .wake_poll(Duration::from_secs(30))
        .open(location)
        .unwrap();
    let delay = Duration::from_millis(300);
    // Before the push, which reads the clock the due time counts from (a
    // push to a server takes a round trip or more).
    let start = Instant::now();
    cache.push_with("soon", &PushOptions::new().delay(delay)).unwrap();
    let got = cache
        .pull_timeout::<String>(&PullOptions::new(), Duration::from_secs(20))
        .unwrap();
    let waited = start.elapsed();
    assert_eq!(got.map(|(_, v)| v).as_deref(), Some("soon"));
    // Not before it was due, and well before the 30 s poll would have looked.
    assert!(waited >= delay - Duration::from_millis(5), "{waited:?}");
    assert!(waited < Duration::from_secs(10), "{waited:?}");
    cache
        .push_with("leased soon", &PushOptions::new().delay(delay))
        .unwrap();
    let opts = LeaseOptions::new(Duration::from_secs(60));
    let start = Instant::now();
    let lease = cache
        .lease_timeout::<String>(&opts, Duration::from_secs(20))
        .unwrap()
        .unwrap();
    assert!(start.elapsed() < Duration::from_secs(10));
    assert!(lease.ack().unwrap());
    cache.push_with("waited for", &PushOptions::new().delay(delay)).unwrap();
    assert!(cache.wait_for_queued(None, Duration::from_secs(20)).unwrap());
}

pub fn expired_and_cleared_jobs_go_and_deque_len_counts_jobs(cache: &Cache, clock: &AtomicU64) {
    let set = diskq::SetOptions::new().expire(Duration::from_secs(1));
    cache
        .push_with("expires", &PushOptions::new().priority(1).set(set))
        .unwrap();
    cache.push_with("stays", &PushOptions::new().priority(1)).unwrap();
    advance(clock, 1_000);
    assert_eq!(pull(cache).as_deref(), Some("stays"));
    assert_eq!(pull(cache), None);
    let d = diskq::Deque::<String>::from_cache(cache.clone());
    d.push_back("plain").unwrap();
    d.push_back_delayed("later", Duration::from_secs(60)).unwrap();
    assert!(d.push_back_with("high", &PushOptions::new().priority(3)).unwrap());
    assert_eq!(d.len().unwrap(), 3);
    assert_eq!(d.clear().unwrap(), 3);
    assert!(d.is_empty().unwrap() && cache.is_empty().unwrap());
    cache
        .push_with("a", &PushOptions::new().delay(Duration::from_secs(5)))
        .unwrap();
    cache.clear().unwrap();
    advance(clock, 10_000);
    assert_eq!(pull(cache), None);
    assert!(cache.backlog(None).unwrap().is_empty());
    assert!(
        d.push_back_with("x", &PushOptions::new().prefix("p")).is_err(),
        "a deque has no prefix"
    );
}

pub fn a_job_lease_resumes_by_id(cache: &Cache, _clock: &AtomicU64) {
    cache
        .push_with("job", &PushOptions::new().prefix("q").priority(2))
        .unwrap();
    let opts = LeaseOptions::new(Duration::from_secs(60)).prefix("q");
    let lease = cache.lease::<String>(&opts).unwrap().unwrap();
    let id = lease.id();
    let resumed = cache
        .resume_lease::<String>(&id, &LeaseOptions::new(Duration::from_secs(1)))
        .unwrap()
        .unwrap();
    assert_eq!(resumed.value(), "job");
    let mut resumed = resumed;
    assert!(resumed.renew(Duration::from_secs(60)).unwrap());
    assert!(resumed.ack().unwrap());
    assert!(!lease.ack().unwrap(), "acked once");
    assert!(cache.resume_lease::<String>(&id, &opts).unwrap().is_none());
}
