//! Leases (at-least-once delivery): every operation under a test clock, a
//! property test against a model queue, and lost leases.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::VecDeque;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use diskq::{Cache, Deque, Error, Index, Lease, LeaseOptions, PushOptions, Side};
use proptest::prelude::*;

/// A deque whose clock (in ms) the test drives.
fn deque_with_clock(dir: &Path) -> (Deque<i64>, Arc<AtomicU64>) {
    let ms = Arc::new(AtomicU64::new(1_000_000_000));
    let clock = ms.clone();
    let cache = Cache::builder()
        .eviction_policy(diskq::EvictionPolicy::None)
        .clock(move || std::time::UNIX_EPOCH + Duration::from_millis(clock.load(Ordering::SeqCst)))
        .open(dir)
        .unwrap();
    (Deque::from_cache(cache), ms)
}

fn items(d: &Deque<i64>) -> Vec<i64> {
    d.iter().unwrap().collect::<Result<_, _>>().unwrap()
}

const MINUTE: Duration = Duration::from_secs(60);

#[test]
fn a_lease_hides_the_item_until_ack_or_nack() {
    let dir = tempfile::tempdir().unwrap();
    let (d, _) = deque_with_clock(dir.path());
    d.extend(&[1, 2, 3]).unwrap();
    let a = d.lease(MINUTE).unwrap().unwrap();
    assert_eq!((*a.value(), a.deliveries()), (1, 1));
    // Leased items stay in the deque (and its length) but no pop takes them.
    assert_eq!(d.len().unwrap(), 3);
    assert_eq!(items(&d), [2, 3]);
    assert_eq!(d.pop_front().unwrap(), Some(2));
    let b = d.lease(MINUTE).unwrap().unwrap();
    assert_eq!(*b.value(), 3);
    assert!(d.lease(MINUTE).unwrap().is_none());
    assert!(d.pop_front().unwrap().is_none());
    assert_eq!(
        d.backlog().unwrap(),
        diskq::Backlog {
            queued: 0,
            leased: 2,
            scheduled: 0
        }
    );
    assert!(a.ack().unwrap());
    assert!(b.nack(Side::Back).unwrap());
    assert_eq!(
        d.backlog().unwrap(),
        diskq::Backlog {
            queued: 1,
            leased: 0,
            scheduled: 0
        }
    );
    assert_eq!(items(&d), [3]);
    let again = d.lease(MINUTE).unwrap().unwrap();
    assert_eq!(
        (*again.value(), again.deliveries()),
        (3, 2),
        "a nack keeps the delivery count"
    );
    assert!(again.ack().unwrap());
    assert!(d.is_empty().unwrap());
}

#[test]
fn nack_to_the_front_or_back() {
    let dir = tempfile::tempdir().unwrap();
    let (d, _) = deque_with_clock(dir.path());
    d.extend(&[1, 2, 3]).unwrap();
    let one = d.lease(MINUTE).unwrap().unwrap();
    let two = d.lease(MINUTE).unwrap().unwrap();
    assert!(one.nack(Side::Back).unwrap());
    assert!(two.nack(Side::Front).unwrap());
    assert_eq!(items(&d), [2, 3, 1]);
}

#[test]
fn a_lease_that_runs_out_goes_to_the_next_lease() {
    let dir = tempfile::tempdir().unwrap();
    let (d, ms) = deque_with_clock(dir.path());
    d.extend(&[1, 2]).unwrap();
    let mut held = d.lease(Duration::from_secs(10)).unwrap().unwrap();
    ms.fetch_add(9_000, Ordering::SeqCst);
    assert!(
        held.renew(Duration::from_secs(10)).unwrap(),
        "a heartbeat before the end"
    );
    ms.fetch_add(9_000, Ordering::SeqCst);
    assert_eq!(
        *d.lease(MINUTE).unwrap().unwrap().value(),
        2,
        "still held after the heartbeat"
    );
    ms.fetch_add(1_001, Ordering::SeqCst);
    // Ran out: the next lease gets it first, delivered a second time.
    let next = d.lease(MINUTE).unwrap().unwrap();
    assert_eq!((*next.value(), next.deliveries()), (1, 2));
    // The first holder lost it: its ack, nack and heartbeat say so.
    assert!(!held.renew(MINUTE).unwrap());
    assert!(!held.ack().unwrap());
    assert!(next.ack().unwrap());
}

#[test]
fn dropping_a_lease_leaves_it_to_run_out() {
    let dir = tempfile::tempdir().unwrap();
    let (d, ms) = deque_with_clock(dir.path());
    d.push_back(&7).unwrap();
    drop(d.lease(Duration::from_secs(5)).unwrap().unwrap());
    assert!(d.lease(MINUTE).unwrap().is_none());
    ms.fetch_add(5_000, Ordering::SeqCst);
    let again = d.lease(MINUTE).unwrap().unwrap();
    assert_eq!((*again.value(), again.deliveries()), (7, 2));
}

#[test]
fn max_deliveries_sends_a_poison_item_to_the_dead_letters() {
    let dir = tempfile::tempdir().unwrap();
    let (d, ms) = deque_with_clock(dir.path());
    d.extend(&[1, 2]).unwrap();
    let opts = LeaseOptions::new(Duration::from_secs(5)).max_deliveries(3);
    for delivery in 1..=3 {
        let l = d.lease_with(&opts).unwrap().unwrap();
        assert_eq!((*l.value(), l.deliveries()), (1, delivery));
        assert!(l.nack(Side::Front).unwrap());
    }
    // Delivered 3 times and nacked: a dead letter now.
    assert_eq!(items(&d), [2]);
    assert_eq!(d.pop_dead_letter(&opts).unwrap(), None::<i64>.or(Some(1)));
    // A lease that runs out counts as a failed delivery too.
    for _ in 1..=3 {
        let l = d.lease_with(&opts).unwrap().unwrap();
        assert_eq!(*l.value(), 2);
        drop(l);
        ms.fetch_add(5_000, Ordering::SeqCst);
    }
    assert!(d.lease_with(&opts).unwrap().is_none());
    assert_eq!(d.len().unwrap(), 1, "the dead letter is still stored");
    assert_eq!(d.requeue_dead_letters(&opts).unwrap(), 1);
    let back = d.lease_with(&opts).unwrap().unwrap();
    assert_eq!((*back.value(), back.deliveries()), (2, 1));
    back.ack().unwrap();
    assert!(d.is_empty().unwrap());
}

#[test]
fn prefixed_queues_of_cache_and_index_lease_too() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path()).unwrap();
    let jobs = PushOptions::new().prefix("jobs");
    cache.push_many(["a", "b"], &jobs).unwrap();
    cache.push("plain").unwrap();
    let opts = LeaseOptions::new(MINUTE).prefix("jobs");
    let a: Lease<String> = cache.lease(&opts).unwrap().unwrap();
    assert_eq!(a.value(), "a");
    let ix: Index<String, String> = Index::from_cache(cache.clone());
    let b = ix.lease_with(&opts).unwrap().unwrap();
    assert_eq!(b.value(), "b");
    assert!(cache.lease::<String>(&opts).unwrap().is_none());
    assert_eq!(
        cache.pull::<String>().unwrap().unwrap().1,
        "plain",
        "other queues are untouched"
    );
    a.ack().unwrap();
    b.ack().unwrap();
    assert!(cache.is_empty().unwrap());
}

#[test]
fn bad_options_and_clear() {
    let dir = tempfile::tempdir().unwrap();
    let (d, _) = deque_with_clock(dir.path());
    d.push_back(&1).unwrap();
    let zero = d.lease(Duration::ZERO).unwrap_err();
    assert!(matches!(zero, Error::InvalidSetting { .. }), "{zero}");
    let no_deliveries = d.lease_with(&LeaseOptions::new(MINUTE).max_deliveries(0)).unwrap_err();
    assert!(matches!(no_deliveries, Error::InvalidSetting { .. }));
    let prefixed = d.lease_with(&LeaseOptions::new(MINUTE).prefix("x")).unwrap_err();
    assert!(matches!(prefixed, Error::InvalidUse(_)));
    assert_eq!(d.len().unwrap(), 1, "bad options change nothing");
    // A value of the wrong type is an error and stays queued.
    let wrong: Deque<String> = Deque::from_cache(d.cache().clone());
    assert!(wrong.lease(MINUTE).unwrap_err().is_decode());
    let held = d.lease(MINUTE).unwrap().unwrap();
    assert_eq!(d.clear().unwrap(), 1);
    assert!(!held.ack().unwrap(), "cleared");
    d.push_back(&2).unwrap();
    assert_eq!(d.lease(MINUTE).unwrap().unwrap().deliveries(), 1);
}

#[test]
fn a_blocking_lease_waits_for_a_push_or_a_lease_to_run_out() {
    let dir = tempfile::tempdir().unwrap();
    let d: Deque<i64> = Deque::open(dir.path()).unwrap();
    let opts = LeaseOptions::new(Duration::from_millis(300));
    assert!(d.lease_timeout(&opts, Duration::from_millis(20)).unwrap().is_none());
    let pusher = d.clone();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        pusher.push_back(&5).unwrap();
    });
    let first = d.lease_timeout(&opts, Duration::from_secs(30)).unwrap().unwrap();
    t.join().unwrap();
    assert_eq!(*first.value(), 5);
    // Nothing is pushed again: the wait ends when the first lease runs out.
    let second = d.lease_timeout(&opts, Duration::from_secs(30)).unwrap().unwrap();
    assert_eq!((*second.value(), second.deliveries()), (5, 2));
    assert!(second.ack().unwrap());
}

/// One step of the property test.
#[derive(Debug, Clone)]
enum Op {
    Push,
    Lease,
    Ack(usize),
    Nack(usize, bool),
    Extend(usize),
    Advance(u64),
    DropHandle(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => Just(Op::Push),
        4 => Just(Op::Lease),
        2 => any::<usize>().prop_map(Op::Ack),
        2 => (any::<usize>(), any::<bool>()).prop_map(|(i, b)| Op::Nack(i, b)),
        1 => any::<usize>().prop_map(Op::Extend),
        2 => (0u64..2_500).prop_map(Op::Advance),
        1 => any::<usize>().prop_map(Op::DropHandle),
    ]
}

/// A leased item in the model: value, deliveries, deadline, handle that holds it.
#[derive(Debug, Clone)]
struct Held {
    value: i64,
    deliveries: u32,
    deadline: f64,
    handle: usize,
}

const LEASE: Duration = Duration::from_secs(1);
const MAX: u32 = 3;

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn leases_match_a_model_queue(ops in proptest::collection::vec(op(), 1..60)) {
        let dir = tempfile::tempdir().unwrap();
        let (d, ms) = deque_with_clock(dir.path());
        let opts = LeaseOptions::new(LEASE).max_deliveries(MAX);
        let now = || ms.load(Ordering::SeqCst) as f64 / 1000.0;
        // The model: queued (value, deliveries so far), leases, dead letters.
        let mut queue: VecDeque<(i64, u32)> = VecDeque::new();
        let mut leased: Vec<Held> = Vec::new();
        let mut dead: Vec<i64> = Vec::new();
        let mut handles: Vec<Option<Lease<i64>>> = Vec::new();
        let mut next_value = 0;
        for op in ops {
            // Every step moves the clock, so no two deadlines are equal.
            ms.fetch_add(1, Ordering::SeqCst);
            match op {
                Op::Push => {
                    d.push_back(&next_value).unwrap();
                    queue.push_back((next_value, 0));
                    next_value += 1;
                }
                Op::Lease => {
                    let got = d.lease_with(&opts).unwrap();
                    let t = now();
                    leased.sort_by(|a, b| a.deadline.total_cmp(&b.deadline));
                    let mut want = None;
                    while let Some(pos) = leased.iter().position(|h| h.deadline <= t) {
                        if leased[pos].deliveries >= MAX {
                            dead.push(leased.remove(pos).value);
                            continue;
                        }
                        let h = &mut leased[pos];
                        h.deliveries += 1;
                        h.deadline = t + LEASE.as_secs_f64();
                        h.handle = handles.len();
                        want = Some((h.value, h.deliveries));
                        break;
                    }
                    if want.is_none() && let Some((value, before)) = queue.pop_front() {
                        leased.push(Held { value, deliveries: before + 1, deadline: t + LEASE.as_secs_f64(), handle: handles.len() });
                        want = Some((value, before + 1));
                    }
                    prop_assert_eq!(got.as_ref().map(|l| (*l.value(), l.deliveries())), want);
                    handles.push(got);
                }
                Op::Ack(i) | Op::Nack(i, _) | Op::Extend(i) | Op::DropHandle(i) if !handles.is_empty() => {
                    let i = i % handles.len();
                    let Some(mut lease) = handles[i].take() else { continue };
                    let t = now();
                    let pos = leased.iter().position(|h| h.handle == i);
                    match op {
                        Op::Ack(_) => {
                            prop_assert_eq!(lease.ack().unwrap(), pos.is_some());
                            if let Some(p) = pos { leased.remove(p); }
                        }
                        Op::Nack(_, front) => {
                            let side = if front { Side::Front } else { Side::Back };
                            prop_assert_eq!(lease.nack(side).unwrap(), pos.is_some());
                            if let Some(p) = pos {
                                let h = leased.remove(p);
                                if h.deliveries >= MAX {
                                    dead.push(h.value);
                                } else if front {
                                    queue.push_front((h.value, h.deliveries));
                                } else {
                                    queue.push_back((h.value, h.deliveries));
                                }
                            }
                        }
                        Op::Extend(_) => {
                            prop_assert_eq!(lease.renew(LEASE).unwrap(), pos.is_some());
                            if let Some(p) = pos { leased[p].deadline = t + LEASE.as_secs_f64(); }
                            handles[i] = Some(lease);
                        }
                        _ => drop(lease),
                    }
                }
                Op::Advance(by) => {
                    ms.fetch_add(by, Ordering::SeqCst);
                }
                _ => {}
            }
            let want: Vec<i64> = queue.iter().map(|(v, _)| *v).collect();
            prop_assert_eq!(items(&d), want);
            prop_assert_eq!(d.len().unwrap(), queue.len() + leased.len() + dead.len());
        }
        let mut dead_letters = Vec::new();
        while let Some(v) = d.pop_dead_letter(&opts).unwrap() {
            dead_letters.push(v);
        }
        prop_assert_eq!(dead_letters, dead);
    }
}
