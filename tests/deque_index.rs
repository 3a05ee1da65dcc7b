//! `Deque` and `Index` through the public API: every operation, bounds,
//! blocking pops, transactions, persistence across reopening, and errors.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::VecDeque;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use diskq::{Cache, Deque, Error, Index, Key, PullOptions, PushOptions, Side};
use serde::{Deserialize, Serialize};

fn items<T: serde::de::DeserializeOwned + serde::Serialize>(d: &Deque<T>) -> Vec<T> {
    d.iter().unwrap().collect::<Result<_, _>>().unwrap()
}

fn deque(dir: &Path) -> Deque<i64> {
    Deque::open(dir).unwrap()
}

#[test]
fn deque_ends_indexing_and_iteration() {
    let dir = tempfile::tempdir().unwrap();
    let d = deque(dir.path());
    assert!(d.is_empty().unwrap());
    assert_eq!(d.pop_front().unwrap(), None);
    assert_eq!(d.pop_back().unwrap(), None);
    assert_eq!(d.front().unwrap(), None);
    for n in 1..=3 {
        d.push_back(&n).unwrap();
    }
    d.push_front(&0).unwrap();
    assert_eq!(items(&d), [0, 1, 2, 3]);
    assert_eq!(d.len().unwrap(), 4);
    assert_eq!((d.front().unwrap(), d.back().unwrap()), (Some(0), Some(3)));
    assert_eq!(
        (d.get(0).unwrap(), d.get(2).unwrap(), d.get(4).unwrap()),
        (Some(0), Some(2), None)
    );
    let rev: Vec<i64> = d.iter().unwrap().rev().collect::<Result<_, _>>().unwrap();
    assert_eq!(rev, [3, 2, 1, 0]);
    // Both ends of one iterator meet in the middle without repeating.
    let mut it = d.iter().unwrap();
    assert_eq!(it.next().unwrap().unwrap(), 0);
    assert_eq!(it.next_back().unwrap().unwrap(), 3);
    assert_eq!(it.next().unwrap().unwrap(), 1);
    assert_eq!(it.next_back().unwrap().unwrap(), 2);
    assert!(it.next().is_none() && it.next_back().is_none());
    assert_eq!(d.pop_back().unwrap(), Some(3));
    assert_eq!(d.pop_front().unwrap(), Some(0));
    assert_eq!(d.clear().unwrap(), 2);
    assert!(d.is_empty().unwrap());
}

#[test]
fn deque_iterates_across_many_pages_and_large_values() {
    let dir = tempfile::tempdir().unwrap();
    let d: Deque<String> = Deque::open(dir.path()).unwrap();
    let expected: Vec<String> = (0..450)
        .map(|n| {
            if n % 50 == 0 {
                format!("{n}{}", "L".repeat(70_000))
            } else {
                n.to_string()
            }
        })
        .collect();
    d.extend(&expected).unwrap();
    assert_eq!(items(&d), expected);
    let mut rev: Vec<String> = d.iter().unwrap().rev().collect::<Result<_, _>>().unwrap();
    rev.reverse();
    assert_eq!(rev, expected);
    assert_eq!(d.get(400).unwrap().as_ref(), Some(&expected[400]));
    // Items popped while an iterator runs: the rest of its current page may
    // still be yielded, later pages skip them; nothing repeats or reorders.
    let mut it = d.iter().unwrap();
    assert_eq!(it.next().unwrap().unwrap(), expected[0]);
    d.pop_front_many(200).unwrap();
    let rest: Vec<String> = it.collect::<Result<_, _>>().unwrap();
    let positions: Vec<usize> = rest
        .iter()
        .map(|v| expected.iter().position(|e| e == v).unwrap())
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
    assert!(positions.iter().all(|p| !(101..200).contains(p)), "{positions:?}");
    assert_eq!(rest[rest.len() - 250..], expected[200..]);
}

#[test]
fn deque_maxlen_drops_from_the_other_end() {
    let dir = tempfile::tempdir().unwrap();
    let d = deque(dir.path()).with_maxlen(3).unwrap();
    assert_eq!(d.maxlen(), Some(3));
    d.extend(&[1, 2, 3, 4, 5]).unwrap();
    assert_eq!(items(&d), [3, 4, 5]);
    d.push_back(&6).unwrap();
    assert_eq!(items(&d), [4, 5, 6]);
    d.push_front(&0).unwrap();
    assert_eq!(items(&d), [0, 4, 5]);
    // A bound smaller than the contents trims them from the front.
    let d = d.with_maxlen(1).unwrap();
    assert_eq!(items(&d), [5]);
    let zero = deque(dir.path()).with_maxlen(0).unwrap();
    zero.push_back(&9).unwrap();
    assert!(zero.is_empty().unwrap());
}

#[test]
fn deque_batches_rotate_and_retain() {
    let dir = tempfile::tempdir().unwrap();
    let d = deque(dir.path());
    d.extend(&(0..10).collect::<Vec<_>>()).unwrap();
    assert_eq!(d.pop_front_many(3).unwrap(), [0, 1, 2]);
    assert_eq!(d.pop_back_many(2).unwrap(), [9, 8]);
    assert_eq!(items(&d), [3, 4, 5, 6, 7]);
    let mut model: VecDeque<i64> = (3..8).collect();
    for (left, n) in [(true, 2), (false, 1), (true, 7), (false, 11), (true, 0)] {
        if left {
            d.rotate_left(n).unwrap();
            model.rotate_left(n % model.len());
        } else {
            d.rotate_right(n).unwrap();
            model.rotate_right(n % model.len());
        }
        assert_eq!(items(&d), Vec::from(model.clone()));
    }
    d.retain(|n| n % 2 == 1).unwrap();
    model.retain(|n| n % 2 == 1);
    assert_eq!(items(&d), Vec::from(model.clone()));
    // Pushes after a rotation still go to the right ends.
    d.push_front(&100).unwrap();
    d.push_back(&200).unwrap();
    assert_eq!(d.front().unwrap(), Some(100));
    assert_eq!(d.back().unwrap(), Some(200));
    assert_eq!(d.pop_front_many(100).unwrap().len(), model.len() + 2);
    d.rotate_left(3).unwrap(); // empty: nothing to do
}

#[test]
fn deque_transact_is_all_or_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = deque(dir.path());
    d.extend(&[1, 2]).unwrap();
    let failed: Result<(), Error> = d.transact(|d| {
        d.pop_front()?;
        d.push_back(&3)?;
        Err(Error::InvalidUse("changed my mind".into()))
    });
    assert!(failed.is_err());
    assert_eq!(items(&d), [1, 2]);
    let moved = d.transact(|d| {
        let x = d.pop_front()?.unwrap();
        d.push_back(&(x * 10))?;
        Ok::<_, Error>(x)
    });
    assert_eq!(moved.unwrap(), 1);
    assert_eq!(items(&d), [2, 10]);
}

#[test]
fn deque_wrong_type_is_a_decode_error_and_stays() {
    let dir = tempfile::tempdir().unwrap();
    Deque::<String>::open(dir.path())
        .unwrap()
        .push_back(&"text".to_string())
        .unwrap();
    let d = deque(dir.path());
    let err = d.pop_front().unwrap_err();
    assert!(err.is_decode(), "{err}");
    assert!(items_result(&d).is_err());
    assert_eq!(
        Deque::<String>::open(dir.path())
            .unwrap()
            .pop_front()
            .unwrap()
            .as_deref(),
        Some("text")
    );
}

fn items_result(d: &Deque<i64>) -> Result<Vec<i64>, Error> {
    d.iter()?.collect()
}

#[test]
fn blocking_pop_waits_for_a_push_from_another_thread() {
    let dir = tempfile::tempdir().unwrap();
    let d = deque(dir.path());
    assert_eq!(d.pop_front_timeout(Duration::from_millis(30)).unwrap(), None);
    let pusher = d.clone();
    let t = thread::spawn(move || {
        thread::sleep(Duration::from_millis(100));
        pusher.push_back(&7).unwrap();
    });
    let start = Instant::now();
    assert_eq!(d.pop_front_timeout(Duration::from_secs(30)).unwrap(), Some(7));
    assert!(start.elapsed() < Duration::from_secs(30));
    t.join().unwrap();
    let pusher = d.clone();
    let t = thread::spawn(move || {
        thread::sleep(Duration::from_millis(50));
        pusher.push_front(&6).unwrap();
    });
    assert_eq!(d.pop_back_timeout(Duration::from_secs(30)).unwrap(), Some(6));
    t.join().unwrap();
}

#[test]
fn many_blocked_consumers_share_the_items_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let d = deque(dir.path());
    let consumers: Vec<_> = (0..4)
        .map(|_| {
            let d = d.clone();
            thread::spawn(move || {
                let mut got = Vec::new();
                while let Some(n) = d.pop_front_timeout(Duration::from_secs(2)).unwrap() {
                    if n < 0 {
                        break;
                    }
                    got.push(n);
                }
                got
            })
        })
        .collect();
    for n in 0..400 {
        d.push_back(&n).unwrap();
    }
    for _ in 0..4 {
        d.push_back(&-1).unwrap();
    }
    let mut all: Vec<i64> = consumers.into_iter().flat_map(|c| c.join().unwrap()).collect();
    all.sort_unstable();
    assert_eq!(all, (0..400).collect::<Vec<_>>());
}

#[test]
fn deque_persists_and_is_the_cache_queue() {
    let dir = tempfile::tempdir().unwrap();
    {
        let d: Deque<String> = Deque::open(dir.path()).unwrap();
        d.extend(&["a".to_string(), "b".to_string()]).unwrap();
        d.push_front(&"z".to_string()).unwrap();
    }
    let d: Deque<String> = Deque::open(dir.path()).unwrap();
    assert_eq!(items(&d), ["z", "a", "b"]);
    // The same items are the integer queue of the cache underneath.
    let cache = Cache::open(dir.path()).unwrap();
    let (key, v): (Key, String) = cache.pull().unwrap().unwrap();
    assert_eq!((key, v.as_str()), (Key::Int(499_999_999_999_999), "z"));
    assert_eq!(Deque::<String>::from_cache(cache).len().unwrap(), 2);
}

#[test]
fn index_keeps_insertion_order() {
    let dir = tempfile::tempdir().unwrap();
    let ix: Index<String, i64> = Index::open(dir.path()).unwrap();
    assert!(ix.is_empty().unwrap());
    assert_eq!((ix.first().unwrap(), ix.pop_last().unwrap()), (None, None));
    for (k, v) in [("c", 3), ("a", 1), ("b", 2)] {
        ix.insert(k, &v).unwrap();
    }
    // Re-inserting keeps the place, as a Python dict does.
    ix.insert("c", &30).unwrap();
    let all: Vec<(String, i64)> = ix.iter().unwrap().collect::<Result<_, _>>().unwrap();
    assert_eq!(all, [("c".into(), 30), ("a".into(), 1), ("b".into(), 2)]);
    let keys: Vec<String> = ix.keys().unwrap().rev().collect::<Result<_, _>>().unwrap();
    assert_eq!(keys, ["b", "a", "c"]);
    let values: Vec<i64> = ix.values().unwrap().collect::<Result<_, _>>().unwrap();
    assert_eq!(values, [30, 1, 2]);
    assert_eq!(ix.get("a").unwrap(), Some(1));
    assert_eq!(ix.get("zz").unwrap(), None);
    assert!(ix.contains_key("b").unwrap());
    assert_eq!(ix.first().unwrap(), Some(("c".into(), 30)));
    assert_eq!(ix.last().unwrap(), Some(("b".into(), 2)));
    assert_eq!(ix.remove("a").unwrap(), Some(1));
    assert_eq!(ix.remove("a").unwrap(), None);
    // A removed key comes back last.
    ix.insert("a", &11).unwrap();
    assert_eq!(ix.pop_last().unwrap(), Some(("a".into(), 11)));
    assert_eq!(ix.pop_first().unwrap(), Some(("c".into(), 30)));
    assert_eq!(ix.len().unwrap(), 1);
    assert_eq!(ix.clear().unwrap(), 1);
}

#[test]
fn index_get_or_insert_with_extend_and_composite_keys() {
    let dir = tempfile::tempdir().unwrap();
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Doc {
        title: String,
        words: u32,
    }
    let ix: Index<(String, u32), Doc> = Index::open(dir.path()).unwrap();
    let k1 = ("en".to_string(), 1);
    let k2 = ("fr".to_string(), 1);
    let doc = |t: &str| Doc {
        title: t.into(),
        words: 3,
    };
    assert_eq!(ix.get_or_insert_with(&k1, || doc("one")).unwrap(), doc("one"));
    assert_eq!(ix.get_or_insert_with(&k1, || unreachable!()).unwrap(), doc("one"));
    ix.extend([(&k2, &doc("un")), (&k1, &doc("uno"))]).unwrap();
    let all: Vec<((String, u32), Doc)> = ix.iter().unwrap().collect::<Result<_, _>>().unwrap();
    assert_eq!(all, [(k1.clone(), doc("uno")), (k2.clone(), doc("un"))]);
    // Composite keys are MessagePack; their Key is Key::of.
    assert!(ix.cache().contains_key(Key::of(&k2).unwrap()).unwrap());
}

#[test]
fn index_queue_transact_and_memoize() {
    let dir = tempfile::tempdir().unwrap();
    let ix: Index<String, String> = Index::open(dir.path()).unwrap();
    let k1 = ix.push("first").unwrap();
    let k2 = ix.push_with("jobs-a", &PushOptions::new().prefix("jobs")).unwrap();
    ix.push_with("jobs-b", &PushOptions::new().prefix("jobs")).unwrap();
    assert_eq!(k1, Key::Int(500_000_000_000_000));
    assert_eq!(k2, Key::Text("jobs-500000000000000".into()));
    assert_eq!(ix.pull().unwrap(), Some((k1, "first".to_string())));
    let last = ix
        .pull_with(&PullOptions::new().prefix("jobs").side(Side::Back))
        .unwrap();
    assert_eq!(last.map(|(_, v)| v).as_deref(), Some("jobs-b"));
    // Text keys of the prefixed queue decode as K = String.
    assert_eq!(
        ix.first().unwrap(),
        Some(("jobs-500000000000000".to_string(), "jobs-a".to_string()))
    );

    let mut calls = 0;
    for _ in 0..3 {
        let v = ix
            .memoize("answer", || {
                calls += 1;
                Ok::<_, Error>("42".to_string())
            })
            .unwrap();
        assert_eq!(v, "42");
    }
    assert_eq!(calls, 1);
    assert_eq!(ix.get("answer").unwrap().as_deref(), Some("42"));

    let failed: Result<(), Error> = ix.transact(|ix| {
        ix.insert("x", "1")?;
        ix.remove("answer")?;
        Err(Error::InvalidUse("no".into()))
    });
    assert!(failed.is_err());
    assert!(!ix.contains_key("x").unwrap());
    assert!(ix.contains_key("answer").unwrap());
}

#[test]
fn index_persists_and_reports_bad_types() {
    let dir = tempfile::tempdir().unwrap();
    {
        let ix: Index<i64, String> = Index::open(dir.path()).unwrap();
        for n in [5, -1, 3] {
            ix.insert(&n, &format!("v{n}")).unwrap();
        }
    }
    let ix: Index<i64, String> = Index::open(dir.path()).unwrap();
    let keys: Vec<i64> = ix.keys().unwrap().collect::<Result<_, _>>().unwrap();
    assert_eq!(keys, [5, -1, 3]);
    // The keys are the native integers another program would use.
    assert_eq!(
        Cache::open(dir.path()).unwrap().get::<String>(-1).unwrap().as_deref(),
        Some("v-1")
    );

    let wrong: Index<i64, i64> = Index::open(dir.path()).unwrap();
    let err = wrong.get(&5).unwrap_err();
    assert!(matches!(&err, Error::Decode { key, .. } if key == "5"), "{err}");
    assert!(wrong.pop_first().unwrap_err().is_decode());
    assert_eq!(ix.len().unwrap(), 3, "a failed pop leaves the item");
    let wrong_keys: Index<String, String> = Index::open(dir.path()).unwrap();
    assert!(wrong_keys.keys().unwrap().next().unwrap().unwrap_err().is_decode());
    assert!(matches!(ix.get(&0).map(|_| ()), Ok(())));
    // SQLite cannot hold a NaN real, so a NaN key is stored encoded.
    let nan: Index<f64, i64> = Index::open(dir.path()).unwrap();
    nan.insert(&f64::NAN, &1).unwrap();
    assert!(matches!(Key::of(&f64::NAN).unwrap(), Key::Encoded(_)));
    assert_eq!(nan.get(&f64::NAN).unwrap(), Some(1));
    assert!(nan.last().unwrap().unwrap().0.is_nan());
}
