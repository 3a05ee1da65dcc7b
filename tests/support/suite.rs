//! One behavioural suite for both backends: each test takes a location
//! (a directory's path, or a `postgres://...#schema` URL) and holds for
//! either. `tests/backend_directory.rs` runs it on temporary directories,
//! `tests/pg_suite.rs` on schemas of the test PostgreSQL server; the
//! [`behaviour_suite!`] macro writes the `#[test]` functions of both.

#![allow(dead_code)]

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use diskq::{
    Cache, Deque, EvictionPolicy, Index, LeaseOptions, NackOptions, PullOptions, PushOptions, SetOptions, Side,
};
use proptest::prelude::*;
use serde::{Deserialize, Serialize};

/// A clock the test moves by hand (seconds since the epoch).
#[derive(Clone)]
pub struct Clock(Arc<AtomicU64>);

impl Clock {
    pub fn new() -> Clock {
        Clock(Arc::new(AtomicU64::new(1_700_000_000f64.to_bits())))
    }
    pub fn advance(&self, secs: f64) {
        let now = f64::from_bits(self.0.load(Ordering::SeqCst));
        self.0.store((now + secs).to_bits(), Ordering::SeqCst);
    }
    fn reader(&self) -> impl Fn() -> SystemTime + Send + Sync + 'static {
        let at = self.0.clone();
        move || SystemTime::UNIX_EPOCH + Duration::from_secs_f64(f64::from_bits(at.load(Ordering::SeqCst)))
    }
}

/// A cache on `loc` with eviction policy `none` and the given clock.
pub fn cache_with_clock(loc: &str, clock: &Clock) -> Cache {
    Cache::builder()
        .eviction_policy(EvictionPolicy::None)
        .clock(clock.reader())
        .open(loc)
        .expect("open the cache")
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub id: u32,
    pub url: String,
    pub tags: Vec<String>,
}

pub fn deque_pushes_and_pops_at_both_ends(loc: &str) {
    let d = Deque::<i64>::open(loc).unwrap();
    assert!(d.is_empty().unwrap());
    d.push_back(&1).unwrap();
    d.push_back(&2).unwrap();
    d.push_front(&0).unwrap();
    d.extend([&3, &4, &5]).unwrap();
    assert_eq!(d.len().unwrap(), 6);
    assert_eq!(d.front().unwrap(), Some(0));
    assert_eq!(d.back().unwrap(), Some(5));
    assert_eq!(d.get(2).unwrap(), Some(2));
    assert_eq!(d.get(6).unwrap(), None);
    let forward: Vec<i64> = d.iter().unwrap().collect::<Result<_, _>>().unwrap();
    assert_eq!(forward, [0, 1, 2, 3, 4, 5]);
    let backward: Vec<i64> = d.iter().unwrap().rev().collect::<Result<_, _>>().unwrap();
    assert_eq!(backward, [5, 4, 3, 2, 1, 0]);
    assert_eq!(d.pop_front().unwrap(), Some(0));
    assert_eq!(d.pop_back().unwrap(), Some(5));
    assert_eq!(d.pop_front_many(2).unwrap(), [1, 2]);
    assert_eq!(d.pop_back_many(5).unwrap(), [4, 3]);
    assert_eq!(d.pop_front().unwrap(), None);
    assert_eq!(d.pop_back().unwrap(), None);
    d.extend([&7, &8]).unwrap();
    assert_eq!(d.clear().unwrap(), 2);
    assert!(d.is_empty().unwrap());
}

pub fn deque_keeps_values_as_stored(loc: &str) {
    let jobs = Deque::<Job>::open(loc).unwrap();
    let job = Job {
        id: 7,
        url: "https://example.com/a".into(),
        tags: vec!["x".into(), "y".into()],
    };
    jobs.push_back(&job).unwrap();
    assert_eq!(jobs.pop_front().unwrap(), Some(job));
    let big = Deque::<Vec<u8>>::open(loc).unwrap();
    // Past the directory backend's inline threshold (a value file there).
    let value: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    big.push_back(&value).unwrap();
    assert_eq!(big.pop_front().unwrap(), Some(value));
    let texts = Deque::<String>::open(loc).unwrap();
    texts.push_back("héllo").unwrap();
    assert_eq!(texts.pop_back().unwrap().as_deref(), Some("héllo"));
    let floats = Deque::<f64>::open(loc).unwrap();
    floats.push_back(&1.5).unwrap();
    assert_eq!(floats.pop_back().unwrap(), Some(1.5));
}

pub fn deque_maxlen_drops_from_the_other_end(loc: &str) {
    let d = Deque::<u32>::open(loc).unwrap().with_maxlen(3).unwrap();
    for n in 0..5 {
        d.push_back(&n).unwrap();
    }
    let items: Vec<u32> = d.iter().unwrap().collect::<Result<_, _>>().unwrap();
    assert_eq!(items, [2, 3, 4]);
    d.push_front(&9).unwrap();
    let items: Vec<u32> = d.iter().unwrap().collect::<Result<_, _>>().unwrap();
    assert_eq!(items, [9, 2, 3]);
}

pub fn deque_rotates_retains_drains_and_transacts(loc: &str) {
    let d = Deque::<u32>::open(loc).unwrap();
    d.extend([&1, &2, &3, &4]).unwrap();
    d.rotate_left(1).unwrap();
    assert_eq!(d.iter().unwrap().collect::<Result<Vec<_>, _>>().unwrap(), [2, 3, 4, 1]);
    d.rotate_right(2).unwrap();
    assert_eq!(d.iter().unwrap().collect::<Result<Vec<_>, _>>().unwrap(), [4, 1, 2, 3]);
    d.retain(|n| n % 2 == 0).unwrap();
    assert_eq!(d.iter().unwrap().collect::<Result<Vec<_>, _>>().unwrap(), [4, 2]);
    // A failing block leaves nothing behind.
    let failed: Result<(), diskq::Error> = d.transact(|d| {
        d.push_back(&10)?;
        d.pop_front()?;
        Err(diskq::Error::InvalidUse("give up".into()))
    });
    assert!(failed.is_err());
    assert_eq!(d.iter().unwrap().collect::<Result<Vec<_>, _>>().unwrap(), [4, 2]);
    d.transact(|d| {
        d.push_back(&6)?;
        d.push_front(&0)
    })
    .unwrap();
    let drained: Vec<u32> = d.drain().collect::<Result<_, _>>().unwrap();
    assert_eq!(drained, [0, 4, 2, 6]);
    assert!(d.is_empty().unwrap());
}

pub fn deque_blocking_pop_wakes_on_a_push(loc: &str) {
    let d = Deque::<u32>::open(loc).unwrap();
    assert_eq!(d.pop_front_timeout(Duration::from_millis(30)).unwrap(), None);
    let waiter = {
        let d = Deque::<u32>::open(loc).unwrap();
        std::thread::spawn(move || d.pop_front_timeout(Duration::from_secs(60)))
    };
    d.push_back(&42).unwrap();
    assert_eq!(waiter.join().unwrap().unwrap(), Some(42));
    let back_waiter = {
        let d = Deque::<u32>::open(loc).unwrap();
        std::thread::spawn(move || d.pop_back_timeout(Duration::from_secs(60)))
    };
    d.push_back(&43).unwrap();
    assert_eq!(back_waiter.join().unwrap().unwrap(), Some(43));
}

pub fn leases_ack_nack_renew(loc: &str) {
    let d = Deque::<String>::open(loc).unwrap();
    d.extend(["a", "b"]).unwrap();
    let a = d.lease(Duration::from_secs(60)).unwrap().expect("a");
    assert_eq!(a.value(), "a");
    assert_eq!(a.deliveries(), 1);
    let backlog = d.backlog().unwrap();
    assert_eq!((backlog.queued, backlog.leased), (1, 1));
    let b = d.lease(Duration::from_secs(60)).unwrap().expect("b");
    assert_eq!(b.value(), "b");
    assert!(d.lease(Duration::from_secs(60)).unwrap().is_none(), "both leased");
    assert_eq!(d.len().unwrap(), 2, "leased items are the deque's");
    assert_eq!(d.backlog().unwrap().queued, 0, "but not queued");
    assert!(a.nack(Side::Front).unwrap());
    let mut again = d.lease(Duration::from_secs(60)).unwrap().expect("a again");
    assert_eq!((again.value().as_str(), again.deliveries()), ("a", 2));
    assert!(again.renew(Duration::from_secs(120)).unwrap());
    assert!(again.ack().unwrap());
    assert!(b.ack().unwrap());
    let backlog = d.backlog().unwrap();
    assert_eq!((backlog.queued, backlog.leased), (0, 0));
    assert!(d.cache().is_empty().unwrap());
}

pub fn leases_run_out_and_are_redelivered(loc: &str) {
    let clock = Clock::new();
    let d = Deque::<u32>::from_cache(cache_with_clock(loc, &clock));
    d.push_back(&5).unwrap();
    let first = d.lease(Duration::from_secs(30)).unwrap().expect("5");
    assert!(d.lease(Duration::from_secs(30)).unwrap().is_none());
    clock.advance(31.0);
    let second = d.lease(Duration::from_secs(30)).unwrap().expect("redelivered");
    assert_eq!((*second.value(), second.deliveries()), (5, 2));
    assert!(!first.ack().unwrap(), "the lost lease acks nothing");
    assert!(second.ack().unwrap());
    assert!(d.lease(Duration::from_secs(30)).unwrap().is_none());
}

pub fn leases_dead_letter_after_max_deliveries(loc: &str) {
    let d = Deque::<u32>::open(loc).unwrap();
    d.push_back(&1).unwrap();
    let opts = LeaseOptions::new(Duration::from_secs(60)).max_deliveries(2);
    for _ in 0..2 {
        let l = d.lease_with(&opts).unwrap().expect("1");
        assert!(l.nack(Side::Back).unwrap());
    }
    assert!(d.lease_with(&opts).unwrap().is_none(), "in the dead-letter queue now");
    assert_eq!(d.requeue_dead_letters(&opts).unwrap(), 1);
    let l = d.lease_with(&opts).unwrap().expect("back");
    assert_eq!(l.deliveries(), 1, "requeued items start counting again");
    assert!(l.nack(Side::Back).unwrap());
    let l = d.lease_with(&opts).unwrap().expect("again");
    assert!(l.nack(Side::Back).unwrap());
    assert_eq!(d.pop_dead_letter(&opts).unwrap(), Some(1));
    assert_eq!(d.pop_dead_letter(&opts).unwrap(), None);
}

/// A dead letter keeps what was known when it was moved: its deliveries,
/// the last nack's error, when; a requeue gives it a fresh count, and an
/// item pushed onto the dead-letter queue directly has no record.
pub fn dead_letters_keep_their_record(loc: &str) {
    let d = Deque::<String>::open(loc).unwrap();
    d.push_back(&"resize".to_owned()).unwrap();
    let opts = LeaseOptions::new(Duration::from_secs(60)).max_deliveries(2);
    let before = SystemTime::now() - Duration::from_secs(1);
    for error in ["no memory", "no disk"] {
        let l = d.lease_with(&opts).unwrap().expect("queued");
        assert!(l.nack_with(&NackOptions::new().error(error)).unwrap());
    }
    let dead = d.dead_letters(&opts, 10).unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].deliveries, Some(2));
    assert_eq!(dead[0].last_error.as_deref(), Some("no disk"));
    let at = dead[0].dead_at.expect("when it was moved");
    assert!(
        at >= before && at <= SystemTime::now() + Duration::from_secs(1),
        "{at:?}"
    );
    // Requeued, it is no dead letter; dead again, its new record counts anew.
    assert_eq!(d.requeue_dead_letters(&opts).unwrap(), 1);
    assert!(d.dead_letters(&opts, 10).unwrap().is_empty());
    for _ in 0..2 {
        let l = d.lease_with(&opts).unwrap().expect("requeued");
        assert!(l.nack(Side::Back).unwrap());
    }
    let dead = d.dead_letters(&opts, 10).unwrap();
    assert_eq!((dead.len(), dead[0].deliveries), (1, Some(2)));
    assert_eq!(dead[0].last_error, None, "plain nacks gave no error");
    // Pushed straight onto the dead-letter queue: no record.
    let cache = Cache::open(loc).unwrap();
    cache
        .push_with(&"by hand", &PushOptions::new().prefix("dead-letter"))
        .unwrap();
    let dead = d.dead_letters(&opts, 10).unwrap();
    assert_eq!(dead.len(), 2);
    assert_eq!((dead[1].deliveries, dead[1].dead_at), (None, None));
    assert_eq!(d.pop_dead_letter(&opts).unwrap().as_deref(), Some("resize"));
    assert_eq!(d.dead_letters(&opts, 10).unwrap().len(), 1);
}

/// The running leases of a queue, plain items and jobs alike, first to
/// run out first; a lease that ran out stays listed until the next lease
/// takes it back; acked and nacked ones are gone; queues stay apart.
pub fn running_leases_list_what_is_in_flight(loc: &str) {
    let clock = Clock::new();
    let cache = cache_with_clock(loc, &clock);
    let d = Deque::<String>::from_cache(cache.clone());
    d.extend(["a", "b", "c"]).unwrap();
    // A job (a priority push) in the same queue.
    cache.push_with(&"urgent", &PushOptions::new().priority(5)).unwrap();
    assert!(d.running_leases(10).unwrap().is_empty());
    let urgent = d.lease(Duration::from_secs(50)).unwrap().expect("the job first");
    assert_eq!(urgent.value(), "urgent");
    assert!(urgent.nack_with(&NackOptions::new().error("busy")).unwrap());
    let urgent = d.lease(Duration::from_secs(50)).unwrap().expect("the job again");
    let a = d.lease(Duration::from_secs(30)).unwrap().expect("a");
    let b = d.lease(Duration::from_secs(90)).unwrap().expect("b");
    let running = d.running_leases(10).unwrap();
    let seen: Vec<_> = running
        .iter()
        .map(|l| (l.deadline, l.deliveries, l.last_error.as_deref(), l.size))
        .collect();
    assert_eq!(
        seen,
        [
            (a.deadline(), 1, None, 1),
            (urgent.deadline(), 2, Some("busy"), 6),
            (b.deadline(), 1, None, 1),
        ]
    );
    for (listed, value) in running.iter().zip(["a", "urgent", "b"]) {
        assert_eq!(cache.get::<String>(listed.key.clone()).unwrap().as_deref(), Some(value));
    }
    assert_eq!(d.running_leases(2).unwrap(), running[..2], "the first to run out first");
    assert_eq!(d.running_leases(0).unwrap(), []);
    // A reader (a read-only handle) sees the same.
    assert_eq!(
        Cache::open_read_only(loc)
            .unwrap()
            .running_leases(None, 10)
            .unwrap()
            .len(),
        3
    );
    // Another queue has its own.
    cache.push_with(&"other", &PushOptions::new().prefix("other")).unwrap();
    let other = cache
        .lease::<String>(&LeaseOptions::new(Duration::from_secs(10)).prefix("other"))
        .unwrap()
        .expect("queued");
    assert_eq!(cache.running_leases(Some("other"), 10).unwrap().len(), 1);
    assert_eq!(d.running_leases(10).unwrap().len(), 3);
    // Run out: still listed, with its deadline passed, until a lease takes
    // it back.
    clock.advance(40.0);
    let running = d.running_leases(10).unwrap();
    assert_eq!(running.len(), 3);
    assert!(running[0].deadline < (clock.reader())());
    let again = d.lease(Duration::from_secs(60)).unwrap().expect("a, redelivered");
    assert_eq!(again.value(), "a");
    let running = d.running_leases(10).unwrap();
    assert_eq!(running.len(), 3);
    assert_eq!(running.iter().map(|l| l.deliveries).collect::<Vec<_>>(), [2, 1, 2]);
    assert!(!a.ack().unwrap(), "the run-out lease acks nothing");
    assert!(again.ack().unwrap());
    assert!(urgent.ack().unwrap());
    assert!(b.nack(Side::Back).unwrap());
    assert!(d.running_leases(10).unwrap().is_empty());
    assert!(other.ack().unwrap());
    assert!(cache.running_leases(Some("other"), 10).unwrap().is_empty());
}

/// Leases that run out at the same moment (one clock reading) are listed
/// in one order, whatever the limit, plain items and jobs mixed; a lease
/// whose item was removed is not listed; sizes are the stored values'.
pub fn running_leases_are_one_order_and_skip_removed_items(loc: &str) {
    let clock = Clock::new();
    let cache = cache_with_clock(loc, &clock);
    let opts = LeaseOptions::new(Duration::from_secs(60)).prefix("q");
    let push = PushOptions::new().prefix("q");
    for n in 0..6 {
        cache.push_with(&format!("plain-{n}"), &push).unwrap();
        cache.push_with(&n, &push.clone().priority(n)).unwrap();
    }
    let mut held = Vec::new();
    while let Some(lease) = cache.lease::<serde_json::Value>(&opts).unwrap() {
        held.push(lease);
    }
    assert_eq!(held.len(), 12);
    let all = cache.running_leases(Some("q"), 100).unwrap();
    assert_eq!(all.len(), 12);
    assert!(all.iter().all(|l| l.deadline == all[0].deadline), "one clock reading");
    for k in 0..=12 {
        assert_eq!(cache.running_leases(Some("q"), k).unwrap(), all[..k], "limit {k}");
    }
    let mut sizes: Vec<u64> = all.iter().map(|l| l.size).collect();
    sizes.sort_unstable();
    assert_eq!(sizes, [7, 7, 7, 7, 7, 7, 8, 8, 8, 8, 8, 8], "six texts, six integers");
    // Removed by its key while leased: no longer listed.
    assert!(cache.delete(all[3].key.clone()).unwrap());
    let now = cache.running_leases(Some("q"), 100).unwrap();
    assert_eq!(now.len(), 11);
    assert!(!now.contains(&all[3]));
    for lease in held {
        lease.ack().unwrap();
    }
    assert!(cache.running_leases(Some("q"), 100).unwrap().is_empty());
}

pub fn lease_timeout_waits_for_a_push(loc: &str) {
    let d = Deque::<u32>::open(loc).unwrap();
    let opts = LeaseOptions::new(Duration::from_secs(60));
    assert!(d.lease_timeout(&opts, Duration::from_millis(30)).unwrap().is_none());
    let waiter = {
        let d = Deque::<u32>::open(loc).unwrap();
        let opts = opts.clone();
        std::thread::spawn(move || {
            d.lease_timeout(&opts, Duration::from_secs(60))
                .map(|l| l.map(|l| l.into_value()))
        })
    };
    d.push_back(&11).unwrap();
    assert_eq!(waiter.join().unwrap().unwrap(), Some(11));
}

pub fn index_keeps_insertion_order(loc: &str) {
    let index = Index::<String, u32>::open(loc).unwrap();
    assert!(index.is_empty().unwrap());
    for (k, v) in [("b", 2), ("a", 1), ("c", 3)] {
        index.insert(k, &v).unwrap();
    }
    index.insert("a", &10).unwrap(); // keeps its place
    assert_eq!(index.get("a").unwrap(), Some(10));
    assert_eq!(index.get("zz").unwrap(), None);
    assert!(index.contains_key("b").unwrap());
    assert_eq!(index.len().unwrap(), 3);
    let items: Vec<(String, u32)> = index.iter().unwrap().collect::<Result<_, _>>().unwrap();
    assert_eq!(items, [("b".into(), 2), ("a".into(), 10), ("c".into(), 3)]);
    let keys: Vec<String> = index.keys().unwrap().rev().collect::<Result<_, _>>().unwrap();
    assert_eq!(keys, ["c", "a", "b"]);
    let values: Vec<u32> = index.values().unwrap().collect::<Result<_, _>>().unwrap();
    assert_eq!(values, [2, 10, 3]);
    assert_eq!(index.first().unwrap(), Some(("b".into(), 2)));
    assert_eq!(index.last().unwrap(), Some(("c".into(), 3)));
    assert_eq!(index.remove("b").unwrap(), Some(2));
    assert_eq!(index.remove("b").unwrap(), None);
    assert_eq!(index.pop_last().unwrap(), Some(("c".into(), 3)));
    assert_eq!(index.pop_first().unwrap(), Some(("a".into(), 10)));
    assert_eq!(index.pop_first().unwrap(), None);
    let mut made = 0;
    assert_eq!(
        index
            .get_or_insert_with("k", || {
                made += 1;
                7
            })
            .unwrap(),
        7
    );
    assert_eq!(
        index
            .get_or_insert_with("k", || {
                made += 1;
                8
            })
            .unwrap(),
        7
    );
    assert_eq!(made, 1);
    let (x, y) = ("x".to_string(), "y".to_string());
    index.extend([(&x, &1), (&y, &2)]).unwrap();
    assert_eq!(index.clear().unwrap(), 3);
}

pub fn keys_of_every_kind_keep_their_kind_and_order(loc: &str) {
    let c = Cache::builder()
        .eviction_policy(EvictionPolicy::None)
        .open(loc)
        .unwrap();
    let keys = [
        diskq::Key::from(5i64),
        diskq::Key::from(-1.5f64),
        diskq::Key::from("text"),
        diskq::Key::from(b"text".as_slice()),
        diskq::Key::of(&(1u8, "tuple")).unwrap(),
    ];
    for (n, k) in keys.iter().enumerate() {
        c.set(k, &(n as i64)).unwrap();
    }
    for (n, k) in keys.iter().enumerate() {
        assert_eq!(c.get::<i64>(k).unwrap(), Some(n as i64), "{k}");
    }
    let back: Vec<diskq::Key> = c.keys().unwrap().collect::<Result<_, _>>().unwrap();
    assert_eq!(back, keys);
    let last = c.keys().unwrap().next_back().transpose().unwrap();
    assert_eq!(last.as_ref(), keys.last());
}

pub fn cache_operations(loc: &str) {
    let clock = Clock::new();
    let c = cache_with_clock(loc, &clock);
    c.set("k", &"v").unwrap();
    assert_eq!(c.get::<String>("k").unwrap().as_deref(), Some("v"));
    assert!(!c.add("k", &"other").unwrap());
    assert!(c.add("new", &1).unwrap());
    assert_eq!(c.incr("n", 5, 0).unwrap(), 5);
    assert_eq!(c.incr("n", 2, 0).unwrap(), 7);
    assert_eq!(c.decr("n", 10, 0).unwrap(), -3);
    assert_eq!(c.pop::<i64>("n").unwrap(), Some(-3));
    assert_eq!(c.pop::<i64>("n").unwrap(), None);
    assert!(c.delete("k").unwrap());
    assert!(!c.delete("k").unwrap());
    assert!(c.contains_key("new").unwrap());
    c.set_with("soon", &1, &SetOptions::new().expire(Duration::from_secs(10)))
        .unwrap();
    assert_eq!(c.len().unwrap(), 2);
    clock.advance(11.0);
    assert_eq!(c.get::<i64>("soon").unwrap(), None);
    assert_eq!(c.len().unwrap(), 1, "expired items are not counted");
    assert!(c.add("soon", &2).unwrap(), "an expired key can be added again");
    assert!(c.touch("soon", Some(Duration::from_secs(5))).unwrap());
    clock.advance(6.0);
    assert!(!c.contains_key("soon").unwrap());
    assert_eq!(c.expire().unwrap(), 1);
    c.set_bytes("raw", b"\x00\x01").unwrap();
    assert_eq!(c.get_bytes("raw").unwrap().as_deref(), Some(&b"\x00\x01"[..]));
}

pub fn cache_transact_is_atomic(loc: &str) {
    let c = Cache::builder()
        .eviction_policy(EvictionPolicy::None)
        .open(loc)
        .unwrap();
    c.set("balance", &10).unwrap();
    let failed: Result<(), diskq::Error> = c.transact(|c| {
        c.incr("balance", -5, 0)?;
        c.set("log", &"moved")?;
        Err(diskq::Error::InvalidUse("abort".into()))
    });
    assert!(failed.is_err());
    assert_eq!(c.get::<i64>("balance").unwrap(), Some(10));
    assert!(!c.contains_key("log").unwrap());
    let n = c
        .transact(|c| {
            c.incr("balance", -5, 0)?;
            // A nested block that fails rolls back alone.
            let inner: Result<(), diskq::Error> = c.transact(|c| {
                c.set("inner", &1)?;
                Err(diskq::Error::InvalidUse("inner".into()))
            });
            assert!(inner.is_err());
            c.incr("balance", 0, 0)
        })
        .unwrap();
    assert_eq!(n, 5);
    assert!(!c.contains_key("inner").unwrap());
}

pub fn cache_named_queues_stay_apart(loc: &str) {
    let c = Cache::builder()
        .eviction_policy(EvictionPolicy::None)
        .open(loc)
        .unwrap();
    let jobs = PushOptions::new().prefix("jobs");
    let jobs2 = PushOptions::new().prefix("jobs-2");
    c.push_with(&"j1", &jobs).unwrap();
    c.push_with(&"k1", &jobs2).unwrap();
    c.push_with(&"j2", &jobs).unwrap();
    c.push(&"plain").unwrap();
    c.set("jobs-500000000000000x", &"not a queue key").unwrap();
    let from_jobs = PullOptions::new().prefix("jobs");
    let (key, v) = c.pull_with::<String>(&from_jobs).unwrap().unwrap();
    assert_eq!(
        (key.to_string().as_str(), v.as_str()),
        ("\"jobs-500000000000000\"", "j1")
    );
    assert_eq!(
        c.pull_with::<String>(&from_jobs.clone().side(Side::Back))
            .unwrap()
            .unwrap()
            .1,
        "j2"
    );
    assert_eq!(c.pull_with::<String>(&from_jobs).unwrap(), None);
    assert_eq!(
        c.pull_with::<String>(&PullOptions::new().prefix("jobs-2"))
            .unwrap()
            .unwrap()
            .1,
        "k1"
    );
    assert_eq!(c.pull::<String>().unwrap().unwrap().1, "plain");
    assert_eq!(c.peek::<String>().unwrap(), None);
    let keys = c.push_many([&"a", &"b"], &jobs).unwrap();
    assert_eq!(keys.len(), 2);
    let taken = c.pull_many::<String>(5, &from_jobs).unwrap();
    assert_eq!(taken.into_iter().map(|(_, v)| v).collect::<Vec<_>>(), ["a", "b"]);
}

/// Runs `ops` on a deque at `loc` and on a `VecDeque`, comparing every answer.
pub fn deque_matches_the_model(loc: &str, ops: &[(u8, i32)]) {
    let d = Deque::<i32>::open(loc).unwrap();
    d.clear().unwrap();
    let mut model = VecDeque::new();
    for &(op, v) in ops {
        match op % 6 {
            0 => {
                d.push_back(&v).unwrap();
                model.push_back(v);
            }
            1 => {
                d.push_front(&v).unwrap();
                model.push_front(v);
            }
            2 => assert_eq!(d.pop_front().unwrap(), model.pop_front()),
            3 => assert_eq!(d.pop_back().unwrap(), model.pop_back()),
            4 => {
                let lease = d.lease(Duration::from_secs(60)).unwrap();
                assert_eq!(lease.as_ref().map(|l| *l.value()), model.front().copied());
                if let Some(l) = lease {
                    if v % 2 == 0 {
                        assert!(l.ack().unwrap());
                        model.pop_front();
                    } else {
                        assert!(l.nack(Side::Back).unwrap());
                        let front = model.pop_front().expect("leased the front");
                        model.push_back(front);
                    }
                }
            }
            _ => assert_eq!(
                d.get(v.unsigned_abs() as usize % 4).unwrap(),
                model.get(v.unsigned_abs() as usize % 4).copied()
            ),
        }
        assert_eq!(d.len().unwrap(), model.len());
    }
    let all: Vec<i32> = d.iter().unwrap().collect::<Result<_, _>>().unwrap();
    assert_eq!(all, model.into_iter().collect::<Vec<_>>());
}

/// Runs `ops` on an index at `loc` and on an insertion-ordered model.
pub fn index_matches_the_model(loc: &str, ops: &[(u8, u8, i32)]) {
    let index = Index::<u8, i32>::open(loc).unwrap();
    index.clear().unwrap();
    // Insertion order: a key keeps its place when its value changes.
    let mut order: Vec<u8> = Vec::new();
    let mut values: BTreeMap<u8, i32> = BTreeMap::new();
    for &(op, k, v) in ops {
        let k = k % 8;
        match op % 5 {
            0 | 1 => {
                index.insert(&k, &v).unwrap();
                if values.insert(k, v).is_none() {
                    order.push(k);
                }
            }
            2 => {
                let removed = values.remove(&k);
                order.retain(|o| *o != k);
                assert_eq!(index.remove(&k).unwrap(), removed);
            }
            3 => {
                let first = order.first().copied();
                if first.is_some() {
                    order.remove(0);
                }
                let expected = first.map(|f| (f, values.remove(&f).expect("ordered keys have values")));
                assert_eq!(index.pop_first().unwrap(), expected);
            }
            _ => {
                let last = order.pop();
                let expected = last.map(|l| (l, values.remove(&l).expect("ordered keys have values")));
                assert_eq!(index.pop_last().unwrap(), expected);
            }
        }
        assert_eq!(index.len().unwrap(), order.len());
    }
    let all: Vec<(u8, i32)> = index.iter().unwrap().collect::<Result<_, _>>().unwrap();
    let expected: Vec<(u8, i32)> = order.iter().map(|k| (*k, values[k])).collect();
    assert_eq!(all, expected);
}

pub fn deque_ops() -> impl Strategy<Value = Vec<(u8, i32)>> {
    proptest::collection::vec((any::<u8>(), -50i32..50), 0..40)
}

pub fn index_ops() -> impl Strategy<Value = Vec<(u8, u8, i32)>> {
    proptest::collection::vec((any::<u8>(), any::<u8>(), -50i32..50), 0..40)
}

/// Writes a `#[test]` per suite test; `$loc(name)` gives a value whose
/// `.location()` is where the test runs (and which lives as long as the test).
#[macro_export]
macro_rules! behaviour_suite {
    ($loc:path) => {
        $crate::behaviour_suite!(@tests $loc;
            deque_pushes_and_pops_at_both_ends,
            deque_keeps_values_as_stored,
            deque_maxlen_drops_from_the_other_end,
            deque_rotates_retains_drains_and_transacts,
            deque_blocking_pop_wakes_on_a_push,
            leases_ack_nack_renew,
            leases_run_out_and_are_redelivered,
            leases_dead_letter_after_max_deliveries,
            dead_letters_keep_their_record,
            running_leases_list_what_is_in_flight,
            running_leases_are_one_order_and_skip_removed_items,
            lease_timeout_waits_for_a_push,
            index_keeps_insertion_order,
            keys_of_every_kind_keep_their_kind_and_order,
            cache_operations,
            cache_transact_is_atomic,
            cache_named_queues_stay_apart,
        );

        proptest::proptest! {
            #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]
            #[test]
            fn deque_matches_a_vecdeque(ops in suite::deque_ops()) {
                let at = $loc("deque_model");
                suite::deque_matches_the_model(at.location(), &ops);
            }

            #[test]
            fn index_matches_an_ordered_map(ops in suite::index_ops()) {
                let at = $loc("index_model");
                suite::index_matches_the_model(at.location(), &ops);
            }
        }
    };
    (@tests $loc:path; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                let at = $loc(stringify!($name));
                suite::$name(at.location());
            }
        )*
    };
}
