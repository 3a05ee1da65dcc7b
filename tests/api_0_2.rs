//! The 0.2 API polish (issue 17 points 3–8), through the public API.
#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::time::Duration;

use diskq::{Cache, Deque, Key};

#[test]
fn an_integer_and_an_equal_float_key_name_one_row_and_compare_equal() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path()).unwrap();
    cache.set(1, &"one").unwrap();
    // The store finds the integer's row under the float (SQLite compares
    // INTEGER and REAL numerically in the UNIQUE(key, raw) index).
    assert_eq!(cache.get::<String>(1.0).unwrap().as_deref(), Some("one"));
    cache.set(1.0, &"uno").unwrap();
    assert_eq!(cache.len().unwrap(), 1);
    assert_eq!(cache.get::<String>(1).unwrap().as_deref(), Some("uno"));
    // Key follows that identity.
    assert_eq!(Key::Int(1), Key::Float(1.0));
    assert_eq!(Key::Int(0), Key::Float(-0.0));
    assert_ne!(Key::Int(1), Key::Float(1.5));
    assert_ne!(Key::Int(1), Key::from("1"));
    assert_ne!(Key::from("a"), Key::from(&b"a"[..]));
    assert_ne!(Key::Bytes(vec![1]), Key::Encoded(vec![1]));
    let set: HashSet<Key> = [Key::Int(1), Key::Float(1.0), Key::Float(2.5), Key::from("x")]
        .into_iter()
        .collect();
    assert_eq!(set.len(), 3);
    assert!(set.contains(&Key::Float(1.0)));
    // A float key that is not integral, and i64::MAX against 2^63, stay apart.
    cache.set(2.5, &"f").unwrap();
    assert_eq!(cache.get::<String>(2).unwrap(), None);
    assert_ne!(Key::Int(i64::MAX), Key::Float(9_223_372_036_854_775_808.0));
    let nan = Key::Float(f64::NAN);
    assert_eq!(nan, nan.clone());
}

#[test]
fn unsigned_keys_convert_and_refuse_above_i64_max() {
    assert_eq!(Key::try_from(5u64).unwrap(), Key::Int(5));
    assert_eq!(Key::try_from(5usize).unwrap(), Key::Int(5));
    assert_eq!(Key::try_from(i64::MAX as u64).unwrap(), Key::Int(i64::MAX));
    let err = Key::try_from(i64::MAX as u64 + 1).unwrap_err();
    assert!(matches!(err, diskq::Error::InvalidKey(_)), "{err:?}");
    assert!(err.to_string().contains("i64::MAX"), "{err}");
}

#[test]
fn a_lease_gives_up_its_value_without_a_clone() {
    let dir = tempfile::tempdir().unwrap();
    let deque = Deque::<String>::open(dir.path()).unwrap();
    deque.push_back(&"job".to_string()).unwrap();
    let lease = deque.lease(Duration::from_secs(60)).unwrap().unwrap();
    let job: String = lease.into_value();
    assert_eq!(job, "job");
    // Not acked: the item is still held by the lease, not lost.
    assert_eq!(deque.backlog().unwrap().leased, 1);
}

#[test]
fn a_lock_clone_is_the_same_holder_like_an_rlock_clone() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path()).unwrap();
    let lock = diskq::Lock::new(&cache, "job", Duration::from_secs(60)).unwrap();
    lock.acquire().unwrap();
    let moved = lock.clone();
    std::thread::spawn(move || moved.release()).join().unwrap().unwrap();
    assert!(!lock.locked().unwrap(), "the clone released the original's hold");
    // A new handle is another holder: it cannot release.
    lock.acquire().unwrap();
    let other = diskq::Lock::new(&cache, "job", Duration::from_secs(60)).unwrap();
    assert!(matches!(other.release(), Err(diskq::Error::InvalidUse(_))));
    assert!(lock.locked().unwrap());
    let rlock = diskq::RLock::new(&cache, "r", Duration::from_secs(60))
        .unwrap()
        .holder("w");
    let _copy = rlock.clone();
    let sem = diskq::BoundedSemaphore::new(&cache, "s", 1, Duration::from_secs(60)).unwrap();
    sem.acquire().unwrap();
    let sem2 = sem.clone();
    sem2.release().unwrap();
    assert!(sem.try_acquire().unwrap(), "the clone freed the slot");
}

#[test]
fn the_synchronous_level_is_an_enum_stored_as_its_number() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::builder()
        .sqlite_synchronous(diskq::Synchronous::Extra)
        .open(dir.path())
        .unwrap();
    let level = cache
        .settings()
        .into_iter()
        .find(|(name, _)| name == "sqlite_synchronous");
    assert_eq!(level, Some(("sqlite_synchronous".to_string(), "3".to_string())));
}

#[test]
fn a_lease_deadline_is_a_system_time_by_the_cache_clock() {
    use std::time::{SystemTime, UNIX_EPOCH};
    let dir = tempfile::tempdir().unwrap();
    let start = UNIX_EPOCH + Duration::from_secs(1_000_000);
    let cache = Cache::builder().clock(move || start).open(dir.path()).unwrap();
    let deque: Deque<u8> = Deque::from_cache(cache);
    deque.push_back(&1).unwrap();
    let mut lease = deque.lease(Duration::from_secs(30)).unwrap().unwrap();
    assert_eq!(lease.deadline(), start + Duration::from_secs(30));
    assert!(lease.renew(Duration::from_secs(90)).unwrap());
    assert_eq!(lease.deadline(), start + Duration::from_secs(90));
    assert!(lease.deadline() < SystemTime::now());
}

#[test]
fn deques_and_indexes_take_borrowed_forms() {
    let dir = tempfile::tempdir().unwrap();
    let jobs = Deque::<String>::open(dir.path().join("jobs")).unwrap();
    jobs.push_back("b").unwrap();
    jobs.push_front("a").unwrap();
    jobs.push_back(&"c".to_string()).unwrap();
    jobs.extend(["d", "e"]).unwrap();
    let all: Vec<String> = jobs.iter().unwrap().map(|r| r.unwrap()).collect();
    assert_eq!(all, ["a", "b", "c", "d", "e"]);
    let blobs = Deque::<Vec<u8>>::open(dir.path().join("blobs")).unwrap();
    blobs.push_back(&[1u8, 2][..]).unwrap();
    assert_eq!(blobs.pop_front().unwrap(), Some(vec![1, 2]));

    let index = diskq::Index::<String, String>::open(dir.path().join("index")).unwrap();
    index.insert("k", "v").unwrap();
    index.insert(&"k2".to_string(), &"v2".to_string()).unwrap();
    assert_eq!(index.get("k").unwrap().as_deref(), Some("v"));
    assert!(index.contains_key("k2").unwrap());
    assert_eq!(index.get_or_insert_with("k3", || "v3".into()).unwrap(), "v3");
    assert_eq!(index.remove("k").unwrap().as_deref(), Some("v"));
    // The borrowed form names the same row as the owned one.
    assert_eq!(index.get(&"k2".to_string()).unwrap().as_deref(), Some("v2"));
    let paths = diskq::Index::<std::path::PathBuf, u8>::open(dir.path().join("paths")).unwrap();
    paths.insert(std::path::Path::new("/a/b"), &1).unwrap();
    assert_eq!(paths.get(&std::path::PathBuf::from("/a/b")).unwrap(), Some(1));
}

#[test]
fn iterators_are_fused_and_references_iterate() {
    let dir = tempfile::tempdir().unwrap();
    let deque = Deque::<u32>::open(dir.path().join("d")).unwrap();
    deque.extend(&[1, 2]).unwrap();
    let mut it = deque.iter().unwrap();
    assert_eq!(it.by_ref().map(|r| r.unwrap()).collect::<Vec<_>>(), [1, 2]);
    // A push after the end does not revive an ended iterator.
    deque.push_back(&3).unwrap();
    assert!(it.next().is_none());
    assert!(it.next_back().is_none());
    let mut seen = Vec::new();
    for item in &deque {
        seen.push(item.unwrap());
    }
    assert_eq!(seen, [1, 2, 3]);

    let index = diskq::Index::<String, u32>::open(dir.path().join("i")).unwrap();
    index.insert("a", &1).unwrap();
    let mut keys = index.keys().unwrap();
    assert_eq!(keys.next().unwrap().unwrap(), "a");
    assert!(keys.next().is_none());
    index.insert("b", &2).unwrap();
    assert!(keys.next().is_none());
    let mut items = Vec::new();
    for item in &index {
        items.push(item.unwrap());
    }
    assert_eq!(items, [("a".to_string(), 1), ("b".to_string(), 2)]);
    let cache = Cache::open(dir.path().join("c")).unwrap();
    cache.set("k", &1).unwrap();
    let mut ck = cache.keys().unwrap();
    assert!(ck.next().is_some() && ck.next().is_none());
    cache.set("k2", &1).unwrap();
    assert!(ck.next().is_none());
}

#[test]
fn drain_pops_until_empty_and_stops_at_an_undecodable_item() {
    let dir = tempfile::tempdir().unwrap();
    let deque = Deque::<u32>::open(dir.path()).unwrap();
    deque.extend(&[1, 2, 3]).unwrap();
    let mut drain = deque.drain();
    assert_eq!(drain.next().unwrap().unwrap(), 1);
    // Items pushed meanwhile are drained too; dropping early keeps the rest.
    deque.push_back(&4).unwrap();
    drop(drain);
    assert_eq!(deque.len().unwrap(), 3);
    let rest: Vec<u32> = deque.drain().map(|r| r.unwrap()).collect();
    assert_eq!(rest, [2, 3, 4]);
    assert!(deque.is_empty().unwrap());

    // An item of another type: the error is yielded once, the item stays.
    let strings = Deque::<String>::from_cache(deque.cache().clone());
    strings.push_back("not a number").unwrap();
    deque.push_back(&5).unwrap();
    let mut drain = deque.drain();
    assert!(drain.next().unwrap().unwrap_err().is_decode());
    assert!(drain.next().is_none());
    assert_eq!(deque.len().unwrap(), 2);
}
