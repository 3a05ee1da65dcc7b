//! A `Deque` over a `Cache` that holds other keys sees only its own queue
//! (issue 13, point 1): `len`, `clear`, iteration, `get`, `front`/`back`,
//! pops, `rotate_*`, `retain` and `maxlen` leave the other keys alone, as a
//! `VecDeque` beside other variables would. A property test runs random
//! operations against `VecDeque` with random other keys set and removed in
//! between.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, VecDeque};
use std::sync::mpsc;
use std::time::Duration;

use diskq::{Cache, Deque, EvictionPolicy, Key, LeaseOptions, PushOptions, Side};
use proptest::prelude::*;

/// A cache for a deque (eviction `none`, as `Deque::open` makes).
fn open(dir: &std::path::Path) -> Cache {
    Cache::builder()
        .eviction_policy(EvictionPolicy::None)
        .open(dir)
        .unwrap()
}

/// Keys that are no item of the integer-keyed queue, each with its value:
/// text, bytes, a float inside the queue's numeric range, integers just
/// outside it, a prefixed queue's item and an encoded key.
fn other_keys() -> Vec<(Key, i64)> {
    vec![
        (Key::from("unrelated"), 1),
        (Key::from(&b"bytes"[..]), 2),
        (Key::Float(2.5), 3),
        (Key::Int(0), 4),
        (Key::Int(999_999_999_999_999), 5),
        (Key::Int(-7), 6),
        (Key::from("jobs-500000000000000"), 7),
        (Key::encode(&(1, "composite")).unwrap(), 8),
    ]
}

fn set_others(cache: &Cache) {
    for (key, value) in other_keys() {
        cache.set(key, &value).unwrap();
    }
}

fn assert_others_intact(cache: &Cache) {
    for (key, value) in other_keys() {
        assert_eq!(
            cache.get::<i64>(key.clone()).unwrap(),
            Some(value),
            "key {key} was touched"
        );
    }
}

fn items(d: &Deque<i64>) -> Vec<i64> {
    d.iter().unwrap().collect::<Result<_, _>>().unwrap()
}

#[test]
fn len_clear_and_reads_see_only_the_deques_items() {
    let dir = tempfile::tempdir().unwrap();
    let cache = open(dir.path());
    set_others(&cache);
    let d: Deque<i64> = Deque::from_cache(cache.clone());
    assert_eq!(d.len().unwrap(), 0);
    assert!(d.is_empty().unwrap());
    assert_eq!(d.front().unwrap(), None);
    assert_eq!(d.back().unwrap(), None);
    assert_eq!(d.pop_front().unwrap(), None, "no other key is popped");
    assert_eq!(d.pop_back().unwrap(), None);
    assert!(d.pop_front_many(10).unwrap().is_empty());
    assert_eq!(d.pop_front_timeout(Duration::ZERO).unwrap(), None);

    d.push_back(&10).unwrap();
    assert_eq!(d.len().unwrap(), 1);
    assert_eq!(items(&d), [10]);
    assert_eq!(d.iter().unwrap().rev().collect::<Result<Vec<_>, _>>().unwrap(), [10]);
    assert_eq!(d.get(0).unwrap(), Some(10));
    assert_eq!(d.get(1).unwrap(), None);
    assert_eq!((d.front().unwrap(), d.back().unwrap()), (Some(10), Some(10)));
    assert_eq!(d.clear().unwrap(), 1, "clear counts the deque's items only");
    assert!(d.is_empty().unwrap());
    assert_others_intact(&cache);
    assert_eq!(cache.len().unwrap(), other_keys().len());
}

#[test]
fn pops_rotate_and_retain_leave_other_keys_alone() {
    let dir = tempfile::tempdir().unwrap();
    let cache = open(dir.path());
    set_others(&cache);
    let d: Deque<i64> = Deque::from_cache(cache.clone());
    d.extend(&[1, 2, 3]).unwrap();
    d.rotate_left(1).unwrap();
    assert_eq!(items(&d), [2, 3, 1]);
    d.rotate_right(5).unwrap();
    assert_eq!(items(&d), [3, 1, 2], "5 mod 3 items, not mod every key");
    d.retain(|v| *v != 1).unwrap();
    assert_eq!(items(&d), [3, 2]);
    assert_eq!(d.pop_front().unwrap(), Some(3));
    assert_eq!(d.pop_back().unwrap(), Some(2));
    assert_eq!(d.pop_front().unwrap(), None);
    assert_others_intact(&cache);
}

#[test]
fn maxlen_bounds_the_deque_not_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let cache = open(dir.path());
    set_others(&cache);
    // Bounding a deque whose cache holds more other keys than the bound
    // returns (it used to loop for ever, holding the write lock).
    let (tx, rx) = mpsc::channel();
    let bounding = cache.clone();
    std::thread::spawn(move || {
        let d: Deque<i64> = Deque::from_cache(bounding);
        tx.send(d.with_maxlen(3).map(|d| d.len())).unwrap();
    });
    let bounded = rx.recv_timeout(Duration::from_secs(60)).expect("with_maxlen returns");
    assert_eq!(bounded.unwrap().unwrap(), 0);
    assert_others_intact(&cache);

    let d: Deque<i64> = Deque::from_cache(cache.clone()).with_maxlen(2).unwrap();
    d.push_back(&1).unwrap();
    d.push_back(&2).unwrap();
    d.push_back(&3).unwrap();
    assert_eq!(items(&d), [2, 3]);
    d.push_front(&0).unwrap();
    assert_eq!(items(&d), [0, 2]);
    d.extend(&[4, 5, 6]).unwrap();
    assert_eq!(items(&d), [5, 6]);
    assert_others_intact(&cache);

    // Over the bound already: trimmed from the front, and only the deque.
    let unbounded: Deque<i64> = Deque::from_cache(cache.clone());
    unbounded.extend(&[7, 8, 9]).unwrap();
    let d = unbounded.with_maxlen(1).unwrap();
    assert_eq!(items(&d), [9]);
    assert_others_intact(&cache);
}

#[test]
fn prefixed_queues_beside_the_deque_are_not_its_items() {
    let dir = tempfile::tempdir().unwrap();
    let cache = open(dir.path());
    cache.push_many(["x", "y"], &PushOptions::new().prefix("jobs")).unwrap();
    let d: Deque<i64> = Deque::from_cache(cache.clone());
    d.push_back(&1).unwrap();
    assert_eq!(d.len().unwrap(), 1);
    assert_eq!(d.clear().unwrap(), 1);
    assert_eq!(cache.len().unwrap(), 2, "the prefixed queue stays");
}

#[test]
fn leased_items_and_dead_letters_count_and_clear_with_the_deque() {
    let dir = tempfile::tempdir().unwrap();
    let cache = open(dir.path());
    set_others(&cache);
    let d: Deque<i64> = Deque::from_cache(cache.clone());
    d.extend(&[1, 2, 3]).unwrap();
    let held = d.lease(Duration::from_secs(60)).unwrap().unwrap();
    let opts = LeaseOptions::new(Duration::from_secs(60)).max_deliveries(1);
    let poison = d.lease_with(&opts).unwrap().unwrap();
    assert!(poison.nack(Side::Back).unwrap(), "to the dead letters");
    // Queued 3, leased 1, one dead letter: all the deque's, none of the others.
    assert_eq!(d.len().unwrap(), 3);
    assert_eq!(items(&d), [3], "positional reads see the queued items");
    assert_eq!(
        d.backlog().unwrap(),
        diskq::Backlog {
            queued: 1,
            leased: 1,
            scheduled: 0
        }
    );
    assert_eq!(d.clear().unwrap(), 3);
    assert!(d.is_empty().unwrap());
    assert!(!held.ack().unwrap(), "the cleared lease is gone");
    assert_eq!(d.pop_dead_letter(&opts).unwrap(), None);
    assert_others_intact(&cache);
    assert_eq!(cache.len().unwrap(), other_keys().len());
}

// ---- A model: a Deque beside arbitrary other keys behaves like VecDeque ----

/// A key that is never an item of the integer-keyed queue nor of the
/// deque's dead-letter queue.
fn other_key() -> impl Strategy<Value = Key> {
    prop_oneof![
        "[a-z0-9-]{0,12}".prop_map(Key::Text),
        "q-[0-9]{15}".prop_map(Key::Text),
        proptest::collection::vec(any::<u8>(), 0..6).prop_map(Key::Bytes),
        // Integers outside 0 < k < 999999999999999.
        prop_oneof![i64::MIN..=0, 999_999_999_999_999i64..=i64::MAX].prop_map(Key::Int),
        // Non-integral floats (an integral one equals an integer key in SQLite).
        (-1_000_000_000_000_000i64..1_000_000_000_000_000).prop_map(|n| Key::Float(n as f64 + 0.5)),
    ]
}

#[derive(Debug, Clone)]
enum Op {
    PushBack(i64),
    PushFront(i64),
    Extend(Vec<i64>),
    PopFront,
    PopBack,
    RotateLeft(usize),
    RotateRight(usize),
    Retain(i64),
    Clear,
    SetOther(Key, i64),
    DeleteOther(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (-50i64..50).prop_map(Op::PushBack),
        2 => (-50i64..50).prop_map(Op::PushFront),
        1 => proptest::collection::vec(-50i64..50, 0..4).prop_map(Op::Extend),
        2 => Just(Op::PopFront),
        1 => Just(Op::PopBack),
        1 => (0usize..8).prop_map(Op::RotateLeft),
        1 => (0usize..8).prop_map(Op::RotateRight),
        1 => (0i64..3).prop_map(Op::Retain),
        1 => Just(Op::Clear),
        3 => (other_key(), any::<i64>()).prop_map(|(k, v)| Op::SetOther(k, v)),
        1 => any::<usize>().prop_map(Op::DeleteOther),
    ]
}

/// `collections.deque(maxlen=n)` rules: a push onto a full deque drops from the other end.
fn bound(model: &mut VecDeque<i64>, maxlen: Option<usize>, pushed_back: bool) {
    if let Some(max) = maxlen {
        while model.len() > max {
            if pushed_back {
                model.pop_front();
            } else {
                model.pop_back();
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn a_deque_beside_other_keys_behaves_like_vecdeque(
        ops in proptest::collection::vec(op(), 1..40),
        maxlen in proptest::option::of(0usize..5),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let cache = open(dir.path());
        let d: Deque<i64> = Deque::from_cache(cache.clone());
        let d = match maxlen {
            Some(m) => d.with_maxlen(m).unwrap(),
            None => d,
        };
        let mut model: VecDeque<i64> = VecDeque::new();
        let mut others: BTreeMap<String, (Key, i64)> = BTreeMap::new();
        for op in ops {
            match op {
                Op::PushBack(v) => {
                    d.push_back(&v).unwrap();
                    model.push_back(v);
                    bound(&mut model, maxlen, true);
                }
                Op::PushFront(v) => {
                    d.push_front(&v).unwrap();
                    model.push_front(v);
                    bound(&mut model, maxlen, false);
                }
                Op::Extend(vs) => {
                    d.extend(&vs).unwrap();
                    model.extend(&vs);
                    bound(&mut model, maxlen, true);
                }
                Op::PopFront => prop_assert_eq!(d.pop_front().unwrap(), model.pop_front()),
                Op::PopBack => prop_assert_eq!(d.pop_back().unwrap(), model.pop_back()),
                Op::RotateLeft(n) => {
                    d.rotate_left(n).unwrap();
                    if !model.is_empty() {
                        let n = n % model.len();
                        model.rotate_left(n);
                    }
                }
                Op::RotateRight(n) => {
                    d.rotate_right(n).unwrap();
                    if !model.is_empty() {
                        let n = n % model.len();
                        model.rotate_right(n);
                    }
                }
                Op::Retain(k) => {
                    d.retain(|v| v.rem_euclid(3) != k).unwrap();
                    model.retain(|v| v.rem_euclid(3) != k);
                }
                Op::Clear => {
                    prop_assert_eq!(d.clear().unwrap(), model.len());
                    model.clear();
                }
                Op::SetOther(key, v) => {
                    cache.set(key.clone(), &v).unwrap();
                    others.insert(format!("{key:?}"), (key, v));
                }
                Op::DeleteOther(i) => {
                    if !others.is_empty() {
                        let name = others.keys().nth(i % others.len()).unwrap().clone();
                        let (key, _) = others.remove(&name).unwrap();
                        prop_assert!(cache.delete(key).unwrap());
                    }
                }
            }
            prop_assert_eq!(d.len().unwrap(), model.len());
            prop_assert_eq!(d.is_empty().unwrap(), model.is_empty());
            prop_assert_eq!(items(&d), Vec::from(model.clone()));
            prop_assert_eq!(d.front().unwrap(), model.front().copied());
            prop_assert_eq!(d.back().unwrap(), model.back().copied());
            let last = model.len().saturating_sub(1);
            prop_assert_eq!(d.get(last).unwrap(), model.get(last).copied());
            prop_assert_eq!(cache.len().unwrap(), model.len() + others.len());
        }
        for (key, value) in others.values() {
            prop_assert_eq!(cache.get::<i64>(key.clone()).unwrap(), Some(*value));
        }
    }
}
