//! Every `Cache` operation through the public API.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use diskq::{Cache, EvictionPolicy, Key, PullOptions, PushOptions, SetOptions, Side, WarningKind};
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

/// A clock the test moves by hand.
#[derive(Clone)]
struct TestClock(Arc<AtomicU64>);

impl TestClock {
    fn new() -> TestClock {
        TestClock(Arc::new(AtomicU64::new(1_000_000f64.to_bits())))
    }
    fn advance(&self, secs: f64) {
        let now = f64::from_bits(self.0.load(Ordering::SeqCst));
        self.0.store((now + secs).to_bits(), Ordering::SeqCst);
    }
    fn open(&self, dir: &Path) -> Cache {
        let c = self.0.clone();
        Cache::builder()
            .clock(move || std::time::UNIX_EPOCH + Duration::from_secs_f64(f64::from_bits(c.load(Ordering::SeqCst))))
            .open(dir)
            .unwrap()
    }
}

/// Value files in the directory (not the database or its lock).
fn value_files(dir: &Path) -> usize {
    fn walk(dir: &Path, n: &mut usize) {
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                walk(&e.path(), n);
            } else if !e.file_name().to_string_lossy().starts_with("cache.db") {
                *n += 1;
            }
        }
    }
    let mut n = 0;
    walk(dir, &mut n);
    n
}

fn keys(cache: &Cache) -> Vec<Key> {
    cache.keys().unwrap().map(Result::unwrap).collect()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Page {
    url: String,
    status: u16,
    links: Vec<String>,
}

#[test]
fn values_of_every_kind_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path()).unwrap();
    cache.set("i", &-5i64).unwrap();
    cache.set("f", &0.25f64).unwrap();
    cache.set("s", "text").unwrap();
    cache.set_bytes("b", b"\x00\xff").unwrap();
    let page = Page {
        url: "/".into(),
        status: 200,
        links: vec!["/a".into()],
    };
    cache.set("page", &page).unwrap();
    cache.set("opt", &Some(3u8)).unwrap();
    cache.set("none", &None::<u8>).unwrap();
    cache.set("bool", &true).unwrap();
    cache.set("big", &u64::MAX).unwrap();
    cache.set("nested", &vec![vec![1, 2], vec![3]]).unwrap();
    assert_eq!(cache.get::<i64>("i").unwrap(), Some(-5));
    assert_eq!(cache.get::<f64>("f").unwrap(), Some(0.25));
    assert_eq!(cache.get::<String>("s").unwrap().as_deref(), Some("text"));
    assert_eq!(cache.get_bytes("b").unwrap().as_deref(), Some(&b"\x00\xff"[..]));
    assert_eq!(cache.get::<ByteBuf>("b").unwrap().unwrap().into_vec(), b"\x00\xff");
    assert_eq!(cache.get::<Page>("page").unwrap(), Some(page));
    assert_eq!(cache.get::<Option<u8>>("opt").unwrap(), Some(Some(3)));
    assert_eq!(cache.get::<Option<u8>>("none").unwrap(), Some(None));
    assert_eq!(cache.get::<bool>("bool").unwrap(), Some(true));
    assert_eq!(cache.get::<u64>("big").unwrap(), Some(u64::MAX));
    assert_eq!(
        cache.get::<Vec<Vec<i32>>>("nested").unwrap(),
        Some(vec![vec![1, 2], vec![3]])
    );
    assert_eq!(cache.get::<i64>("absent").unwrap(), None);
    assert_eq!(cache.len().unwrap(), 10);
}

#[test]
fn keys_of_every_kind_are_distinct_rows() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path()).unwrap();
    cache.set(-1, "int").unwrap();
    cache.set("-1", "text").unwrap();
    cache.set(&b"-1"[..], "bytes").unwrap();
    cache.set(-1.5, "float").unwrap();
    cache.set(Key::encode(&("user", 7)).unwrap(), "composite").unwrap();
    assert_eq!(cache.len().unwrap(), 5);
    assert_eq!(cache.get::<String>(-1).unwrap().as_deref(), Some("int"));
    assert_eq!(cache.get::<String>("-1").unwrap().as_deref(), Some("text"));
    assert_eq!(cache.get::<String>(&b"-1"[..]).unwrap().as_deref(), Some("bytes"));
    assert_eq!(cache.get::<String>(-1.5).unwrap().as_deref(), Some("float"));
    assert_eq!(
        cache
            .get::<String>(Key::encode(&("user", 7)).unwrap())
            .unwrap()
            .as_deref(),
        Some("composite")
    );
    // 2 and 2.0 are one key, as in SQLite and Python.
    cache.set(-2, "two").unwrap();
    assert_eq!(cache.get::<String>(-2.0).unwrap().as_deref(), Some("two"));
    let listed = keys(&cache);
    assert_eq!(listed[4].decode::<(String, i64)>().unwrap(), ("user".to_string(), 7));
}

#[test]
fn replacing_keeps_the_key_in_place_and_removes_the_old_file() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::builder().min_file_size(1024).open(dir.path()).unwrap();
    cache.set("a", &1).unwrap();
    cache.set_bytes("b", &[7u8; 5000]).unwrap();
    cache.set("c", &3).unwrap();
    assert_eq!(value_files(dir.path()), 1);
    assert!(cache.read("b").unwrap().unwrap().path().is_some());
    let volume = cache.volume().unwrap();
    cache.set_bytes("b", &[8u8; 6000]).unwrap();
    assert_eq!(value_files(dir.path()), 1, "the replaced file is gone");
    assert!(cache.volume().unwrap() > volume);
    assert_eq!(keys(&cache), [Key::from("a"), Key::from("b"), Key::from("c")]);
    cache.set("b", "small now").unwrap();
    assert_eq!(value_files(dir.path()), 0);
    cache.set("t", &"é".repeat(2000)).unwrap();
    cache
        .set(
            "p",
            &Page {
                url: "x".repeat(3000),
                status: 1,
                links: vec![],
            },
        )
        .unwrap();
    assert_eq!(
        value_files(dir.path()),
        2,
        "large text and large MessagePack go to files"
    );
    assert_eq!(cache.get::<String>("t").unwrap().unwrap(), "é".repeat(2000));
    assert!(cache.delete("t").unwrap());
    assert!(cache.pop::<Page>("p").unwrap().is_some());
    assert_eq!(value_files(dir.path()), 0);
}

#[test]
fn get_entry_returns_expiry_and_tag() {
    let clock = TestClock::new();
    let dir = tempfile::tempdir().unwrap();
    let cache = clock.open(dir.path());
    cache
        .set_with("k", &1, &SetOptions::new().expire(Duration::from_secs(10)).tag("t"))
        .unwrap();
    let e = cache.get_entry::<i64>("k").unwrap().unwrap();
    assert_eq!((e.value, e.tag.as_deref()), (1, Some("t")));
    let expires = e
        .expire_time
        .unwrap()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!((expires - 1_000_010.0).abs() < 1e-6, "{expires}");
    cache.set("plain", &2).unwrap();
    let e = cache.get_entry::<i64>("plain").unwrap().unwrap();
    assert_eq!((e.expire_time, e.tag), (None, None));
}

#[test]
fn add_incr_decr_delete_pop_contains_touch() {
    let clock = TestClock::new();
    let dir = tempfile::tempdir().unwrap();
    let cache = clock.open(dir.path());
    assert!(cache.add("a", &1).unwrap());
    assert!(!cache.add("a", &2).unwrap());
    assert_eq!(cache.get::<i64>("a").unwrap(), Some(1));
    cache
        .set_with("e", &1, &SetOptions::new().expire(Duration::from_secs(5)))
        .unwrap();
    clock.advance(6.0);
    assert!(cache.add("e", &9).unwrap(), "add succeeds over an expired item");
    assert_eq!(cache.get::<i64>("e").unwrap(), Some(9));

    assert_eq!(cache.incr("n", 5, 10).unwrap(), 15);
    assert_eq!(cache.incr("n", 1, 10).unwrap(), 16);
    assert_eq!(cache.decr("n", 20, 0).unwrap(), -4);
    cache
        .set_with("x", &100, &SetOptions::new().expire(Duration::from_secs(1)))
        .unwrap();
    clock.advance(2.0);
    assert_eq!(
        cache.incr("x", 1, 0).unwrap(),
        1,
        "an expired value restarts at the default"
    );
    cache.set("max", &i64::MAX).unwrap();
    assert!(cache.incr("max", 1, 0).is_err());
    assert_eq!(cache.get::<i64>("max").unwrap(), Some(i64::MAX));
    cache.set("word", "w").unwrap();
    let err = cache.incr("word", 1, 0).unwrap_err();
    assert!(err.is_decode() && err.to_string().contains("\"word\""), "{err}");
    assert_eq!(cache.get::<String>("word").unwrap().as_deref(), Some("w"));

    assert!(cache.contains_key("a").unwrap());
    assert!(cache.delete("a").unwrap());
    assert!(!cache.delete("a").unwrap());
    assert!(!cache.contains_key("a").unwrap());

    cache.set("p", "text").unwrap();
    assert!(cache.pop::<i64>("p").is_err(), "wrong type");
    assert!(cache.contains_key("p").unwrap(), "a failed pop leaves the item");
    assert_eq!(cache.pop::<String>("p").unwrap().as_deref(), Some("text"));
    assert_eq!(cache.pop::<String>("p").unwrap(), None);

    cache
        .set_with("t", &1, &SetOptions::new().expire(Duration::from_secs(5)))
        .unwrap();
    assert!(cache.touch("t", Some(Duration::from_secs(100))).unwrap());
    clock.advance(50.0);
    assert!(cache.contains_key("t").unwrap());
    assert!(cache.touch("t", None).unwrap());
    clock.advance(1000.0);
    assert!(cache.contains_key("t").unwrap(), "touch(None) removes the expiry");
    cache
        .set_with("gone", &1, &SetOptions::new().expire(Duration::from_secs(1)))
        .unwrap();
    clock.advance(2.0);
    assert!(
        !cache.touch("gone", None).unwrap(),
        "an expired item cannot be touched back"
    );
}

#[test]
fn expired_items_are_invisible_until_expire_removes_them() {
    let clock = TestClock::new();
    let dir = tempfile::tempdir().unwrap();
    let cache = clock.open(dir.path());
    let soon = SetOptions::new().expire(Duration::from_secs(10));
    cache.set("keep", &1).unwrap();
    cache.set_with("old1", &2, &soon).unwrap();
    cache.set_with("old2", &3, &soon).unwrap();
    cache.push_with(&4, &PushOptions::new().set(soon.clone())).unwrap();
    assert_eq!(cache.len().unwrap(), 4);
    clock.advance(11.0);
    assert_eq!(cache.len().unwrap(), 1);
    assert_eq!(cache.get::<i64>("old1").unwrap(), None);
    assert!(!cache.contains_key("old2").unwrap());
    assert_eq!(keys(&cache), [Key::from("keep")]);
    assert_eq!(cache.peek::<i64>().unwrap(), None);
    assert_eq!(cache.last_item::<i64>().unwrap().unwrap().0, Key::from("keep"));
    assert_eq!(cache.expire().unwrap(), 3);
    assert_eq!(cache.expire().unwrap(), 0);
    assert_eq!(cache.len().unwrap(), 1);
}

#[test]
fn queues_number_like_python_diskcache() {
    let clock = TestClock::new();
    let dir = tempfile::tempdir().unwrap();
    let cache = clock.open(dir.path());
    assert_eq!(cache.pull::<String>().unwrap(), None);
    assert_eq!(cache.push("a").unwrap(), Key::Int(500000000000000));
    assert_eq!(cache.push("b").unwrap(), Key::Int(500000000000001));
    assert_eq!(
        cache.push_with("z", &PushOptions::new().side(Side::Front)).unwrap(),
        Key::Int(499999999999999)
    );
    let jobs = PushOptions::new().prefix("jobs");
    assert_eq!(cache.push_with("j1", &jobs).unwrap(), Key::from("jobs-500000000000000"));
    assert_eq!(cache.push_with("j2", &jobs).unwrap(), Key::from("jobs-500000000000001"));
    assert_eq!(cache.peek::<String>().unwrap().unwrap().1, "z");
    let back = PullOptions::new().side(Side::Back);
    assert_eq!(cache.peek_with::<String>(&back).unwrap().unwrap().1, "b");
    assert_eq!(
        cache.pull_with::<String>(&back).unwrap().unwrap(),
        (Key::Int(500000000000001), "b".into())
    );
    assert_eq!(cache.pull::<String>().unwrap().unwrap().1, "z");
    assert_eq!(cache.pull::<String>().unwrap().unwrap().1, "a");
    assert_eq!(cache.pull::<String>().unwrap(), None);
    let from_jobs = PullOptions::new().prefix("jobs");
    assert_eq!(cache.pull_with::<String>(&from_jobs).unwrap().unwrap().1, "j1");

    // A pull that cannot decode leaves the item at the front.
    cache.push(&7).unwrap();
    assert!(cache.pull::<String>().is_err());
    assert_eq!(cache.pull::<i64>().unwrap().unwrap().1, 7);

    // Expired items are skipped by peek and removed by pull.
    cache
        .push_with(
            "stale",
            &PushOptions::new().set(SetOptions::new().expire(Duration::from_secs(1))),
        )
        .unwrap();
    cache.push("fresh").unwrap();
    clock.advance(2.0);
    assert_eq!(cache.peek::<String>().unwrap().unwrap().1, "fresh");
    assert_eq!(cache.pull::<String>().unwrap().unwrap().1, "fresh");
    assert_eq!(cache.len().unwrap(), 1, "j2 is left");

    cache.set("first", &1).unwrap();
    cache.set("last", &2).unwrap();
    assert_eq!(cache.first_item::<String>().unwrap().unwrap().1, "j2");
    assert_eq!(cache.last_item::<i64>().unwrap().unwrap(), (Key::from("last"), 2));
}

#[test]
fn keys_walk_both_ways_across_pages() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path()).unwrap();
    let n = 257;
    cache
        .transact(|c| {
            for i in 0..n {
                c.set(format!("k{i:03}"), &i)?;
            }
            Ok::<_, diskq::Error>(())
        })
        .unwrap();
    let forward = keys(&cache);
    assert_eq!(forward.len(), n);
    assert_eq!(forward[0], Key::from("k000"));
    let backward: Vec<Key> = cache.keys().unwrap().rev().map(Result::unwrap).collect();
    assert_eq!(backward.iter().rev().cloned().collect::<Vec<_>>(), forward);
    // Alternating ends meet in the middle without repeating a key.
    let mut it = cache.keys().unwrap();
    let mut seen = Vec::new();
    loop {
        match (it.next(), it.next_back()) {
            (Some(a), Some(b)) => {
                seen.push(a.unwrap());
                seen.push(b.unwrap());
            }
            (Some(a), None) | (None, Some(a)) => seen.push(a.unwrap()),
            (None, None) => break,
        }
    }
    seen.sort_by_key(|k| k.to_string());
    assert_eq!(seen, forward);
}

#[test]
fn evict_clear_len() {
    for tag_index in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::builder().tag_index(tag_index).open(dir.path()).unwrap();
        for i in 0..150 {
            let tag = if i % 3 == 0 { "three" } else { "other" };
            cache.set_with(i, &i, &SetOptions::new().tag(tag)).unwrap();
        }
        cache.set(-1, &-1).unwrap();
        assert_eq!(cache.evict("three").unwrap(), 50);
        assert_eq!(cache.len().unwrap(), 101);
        assert!(!cache.contains_key(3).unwrap());
        assert!(cache.contains_key(4).unwrap());
        assert_eq!(cache.evict("nothing").unwrap(), 0);
        assert!(!cache.is_empty().unwrap());
        assert_eq!(cache.clear().unwrap(), 101);
        assert!(cache.is_empty().unwrap());
        assert!(cache.check().unwrap().is_empty());
    }
}

/// Opens a cache that culls one item per write once the volume passes a
/// limit just above the current volume.
fn victim_of(policy: EvictionPolicy, touch: impl Fn(&Cache, &TestClock)) -> Vec<Key> {
    let clock = TestClock::new();
    let dir = tempfile::tempdir().unwrap();
    let cache = {
        let c = clock.0.clone();
        Cache::builder()
            .eviction_policy(policy)
            .cull_limit(0)
            .clock(move || std::time::UNIX_EPOCH + Duration::from_secs_f64(f64::from_bits(c.load(Ordering::SeqCst))))
            .open(dir.path())
            .unwrap()
    };
    for k in ["a", "b", "c"] {
        cache.set(k, &0).unwrap();
        clock.advance(1.0);
    }
    touch(&cache, &clock);
    let limit = cache.volume().unwrap() - 1;
    drop(cache);
    let c = clock.0.clone();
    let cache = Cache::builder()
        .size_limit(limit)
        .cull_limit(1)
        .clock(move || std::time::UNIX_EPOCH + Duration::from_secs_f64(f64::from_bits(c.load(Ordering::SeqCst))))
        .open(dir.path())
        .unwrap();
    cache.set("d", &0).unwrap();
    keys(&cache)
}

#[test]
fn each_eviction_policy_picks_its_victim() {
    let keyset = |ks: &[&str]| ks.iter().map(|k| Key::from(*k)).collect::<Vec<_>>();
    // Least recently stored: "a" was stored first.
    assert_eq!(
        victim_of(EvictionPolicy::LeastRecentlyStored, |_, _| {}),
        keyset(&["b", "c", "d"])
    );
    // Least recently used: reading "a" and "b" makes "c" the oldest access.
    let lru = victim_of(EvictionPolicy::LeastRecentlyUsed, |c, clock| {
        c.get::<i64>("a").unwrap();
        clock.advance(1.0);
        c.get::<i64>("b").unwrap();
    });
    assert_eq!(lru, keyset(&["a", "b", "d"]));
    // Least frequently used: "b" is never read; the new "d" ties with it at
    // zero reads and the older row goes first.
    let lfu = victim_of(EvictionPolicy::LeastFrequentlyUsed, |c, _| {
        for _ in 0..3 {
            c.get::<i64>("a").unwrap();
            c.get::<i64>("c").unwrap();
        }
    });
    assert_eq!(lfu, keyset(&["a", "c", "d"]));
    // None never evicts.
    assert_eq!(
        victim_of(EvictionPolicy::None, |_, _| {}),
        keyset(&["a", "b", "c", "d"])
    );
}

#[test]
fn size_limit_culls_on_write_and_cull_reaches_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let limit = 200_000;
    let cache = Cache::builder()
        .size_limit(limit)
        .cull_limit(2)
        .min_file_size(1024)
        .open(dir.path())
        .unwrap();
    for i in 0..200 {
        cache.set_bytes(i, &[1u8; 4096]).unwrap();
    }
    let volume = cache.volume().unwrap();
    assert!(
        volume < limit + 4 * 4096 + 64 * 1024,
        "volume {volume} ran far past the limit {limit}"
    );
    assert!(!cache.contains_key(0).unwrap(), "the oldest items were culled");
    assert!(cache.contains_key(199).unwrap());
    assert!(value_files(dir.path()) < 200);
    let left = cache.len().unwrap() as u64;
    assert_eq!(cache.stats().unwrap().culled, 200 - left, "every cull is counted");

    // Without culling on write, cull() does the work.
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::builder()
        .size_limit(limit)
        .cull_limit(0)
        .min_file_size(1024)
        .open(dir.path())
        .unwrap();
    for i in 0..100 {
        cache.set_bytes(i, &[1u8; 4096]).unwrap();
    }
    assert!(cache.volume().unwrap() > limit);
    assert_eq!(cache.stats().unwrap().culled, 0);
    let culled = cache.cull().unwrap();
    assert!(culled > 0);
    assert_eq!(cache.stats().unwrap().culled, culled as u64, "cull() counts too");
    assert!(cache.volume().unwrap() <= limit);
    assert!(cache.check().unwrap().is_empty());
}

#[test]
fn statistics_count_hits_and_misses() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::builder().statistics(true).open(dir.path()).unwrap();
    cache.set("k", &1).unwrap();
    cache.get::<i64>("k").unwrap();
    cache.get::<i64>("k").unwrap();
    cache.get::<i64>("absent").unwrap();
    let s = cache.stats().unwrap();
    assert_eq!((s.hits, s.misses), (2, 1));
    cache.set_statistics(false).unwrap();
    cache.get::<i64>("k").unwrap();
    assert_eq!(cache.stats().unwrap().hits, 2);
    assert!(!Cache::open(dir.path()).unwrap().statistics(), "the setting is saved");
    cache.reset_stats().unwrap();
    assert_eq!(cache.stats().unwrap(), diskq::Stats::default());
}

#[test]
fn settings_are_saved_and_explicit_options_override() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::builder()
        .size_limit(12345)
        .cull_limit(3)
        .eviction_policy(EvictionPolicy::LeastFrequentlyUsed)
        .min_file_size(999)
        .open(dir.path())
        .unwrap();
    drop(cache);
    let cache = Cache::open(dir.path()).unwrap();
    assert_eq!(cache.size_limit(), 12345);
    assert_eq!(cache.cull_limit(), 3);
    assert_eq!(cache.eviction_policy(), EvictionPolicy::LeastFrequentlyUsed);
    assert_eq!(cache.min_file_size(), 999);
    let settings = cache.settings();
    assert!(settings.contains(&("eviction_policy".to_string(), "least-frequently-used".to_string())));
    drop(cache);
    let cache = Cache::builder().size_limit(777).open(dir.path()).unwrap();
    assert_eq!(cache.size_limit(), 777);
    assert_eq!(cache.cull_limit(), 3);
    drop(cache);
    assert_eq!(Cache::open(dir.path()).unwrap().size_limit(), 777);
}

#[test]
fn transact_is_atomic_and_rolls_back_files() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::builder().min_file_size(1024).open(dir.path()).unwrap();
    cache.set("kept", &1).unwrap();
    let result: Result<(), diskq::Error> = cache.transact(|c| {
        c.set_bytes("big", &[1u8; 10_000])?;
        c.set("small", &1)?;
        c.delete("kept")?;
        Err(diskq::Error::InvalidUse("abort".into()))
    });
    assert!(result.is_err());
    assert_eq!(cache.get::<i64>("kept").unwrap(), Some(1), "the delete was rolled back");
    assert!(!cache.contains_key("small").unwrap());
    assert_eq!(value_files(dir.path()), 0, "the rolled-back file is removed");

    // Nested blocks are savepoints.
    cache
        .transact(|c| {
            c.set("outer", &1)?;
            let inner: Result<(), diskq::Error> = c.transact(|c| {
                c.set("inner", &1)?;
                Err(diskq::Error::InvalidUse("inner abort".into()))
            });
            assert!(inner.is_err());
            Ok::<_, diskq::Error>(())
        })
        .unwrap();
    assert!(cache.contains_key("outer").unwrap());
    assert!(!cache.contains_key("inner").unwrap());

    // A panic inside a block does not leave the database locked.
    let panicking = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _: Result<(), diskq::Error> = cache.transact(|c| {
            c.set("during-panic", &1)?;
            panic!("boom");
        });
    }));
    assert!(panicking.is_err());
    let other = Cache::builder()
        .timeout(Duration::from_secs(2))
        .open(dir.path())
        .unwrap();
    other.set("after-panic", &1).unwrap();
    assert!(!other.contains_key("during-panic").unwrap());
}

#[test]
fn memoize_computes_once_even_under_a_herd() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path()).unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let cache = cache.clone();
            let calls = calls.clone();
            std::thread::spawn(move || {
                cache
                    .memoize("slow", None, || {
                        calls.fetch_add(1, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(200));
                        Ok::<_, diskq::Error>(42i64)
                    })
                    .unwrap()
            })
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap(), 42);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let v: i64 = cache
        .memoize("slow", None, || -> Result<i64, diskq::Error> { panic!("cached") })
        .unwrap();
    assert_eq!(v, 42);
    let v: i64 = cache
        .memoize("unstored", Some(Duration::ZERO), || Ok::<_, diskq::Error>(5))
        .unwrap();
    assert_eq!(v, 5);
    assert_eq!(cache.len().unwrap(), 1, "ZERO expiry computes without storing");
}

#[test]
fn read_and_set_reader_stream() {
    use std::io::Read;
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path()).unwrap();
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    assert_eq!(
        cache
            .set_reader("blob", &mut &data[..], &SetOptions::default())
            .unwrap(),
        100_000
    );
    let mut reader = cache.read("blob").unwrap().unwrap();
    assert_eq!(reader.len(), 100_000);
    assert!(reader.path().unwrap().starts_with(cache.directory()));
    let mut back = Vec::new();
    reader.read_to_end(&mut back).unwrap();
    assert_eq!(back, data);
    cache.set_bytes("small", b"abc").unwrap();
    let mut small = cache.read("small").unwrap().unwrap();
    assert!(small.path().is_none());
    let mut s = String::new();
    small.read_to_string(&mut s).unwrap();
    assert_eq!(s, "abc");
    assert!(cache.read("absent").unwrap().is_none());
    cache.set("n", &1).unwrap();
    assert!(cache.read("n").unwrap_err().is_decode());
}

#[test]
fn check_finds_and_fixes_orphans_missing_files_and_wrong_sizes() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::builder().min_file_size(1024).open(dir.path()).unwrap();
    cache.set_bytes("lost", &[1u8; 4000]).unwrap();
    cache.set_bytes("short", &[2u8; 4000]).unwrap();
    cache.set("inline", &3).unwrap();
    assert!(cache.check().unwrap().is_empty());

    let orphan_dir = dir.path().join("ab").join("cd");
    std::fs::create_dir_all(&orphan_dir).unwrap();
    let orphan = orphan_dir.join("0123456789abcdef0123456789ab.val");
    std::fs::write(&orphan, b"left by a crash").unwrap();
    let lost = cache.read("lost").unwrap().unwrap().path().unwrap().to_path_buf();
    std::fs::remove_file(&lost).unwrap();
    let short = cache.read("short").unwrap().unwrap().path().unwrap().to_path_buf();
    std::fs::write(&short, [2u8; 10]).unwrap();

    let found = cache.check().unwrap();
    let kinds: Vec<WarningKind> = found.iter().map(|w| w.kind).collect();
    assert!(kinds.contains(&WarningKind::UnknownFile), "{found:?}");
    assert!(kinds.contains(&WarningKind::MissingFile), "{found:?}");
    assert!(kinds.contains(&WarningKind::WrongFileSize), "{found:?}");
    assert!(found.iter().all(|w| !w.fixed));
    assert!(orphan.exists(), "check() changes nothing");
    assert_eq!(cache.get_bytes("lost").unwrap(), None, "a missing file is a miss");

    // The orphan is as fresh as a file a live writer is still writing:
    // only removed with no grace period (a crash left it, no writer runs).
    let opts = diskq::CheckOptions::new()
        .fix(true)
        .orphan_grace(std::time::Duration::ZERO);
    let fixed = cache.check_with(&opts).unwrap();
    assert!(fixed.iter().all(|w| w.fixed), "{fixed:?}");
    assert!(!orphan.exists());
    assert!(!cache.contains_key("lost").unwrap());
    // A file of another length than its row is a damaged value: removed,
    // never taken as it is.
    assert!(!cache.contains_key("short").unwrap());
    assert!(!short.exists());
    assert_eq!(cache.len().unwrap(), 1);
    assert!(cache.check().unwrap().is_empty(), "fixed for good");
}

#[test]
fn batches_are_all_or_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::builder().min_file_size(1024).open(dir.path()).unwrap();
    let big = "b".repeat(5000);
    let items: Vec<(String, &String)> = (0..50).map(|i| (format!("k{i}"), &big)).collect();
    assert_eq!(
        cache
            .set_many(
                items.iter().map(|(k, v)| (k.as_str(), *v)),
                &SetOptions::new().tag("batch")
            )
            .unwrap(),
        50
    );
    assert_eq!(value_files(dir.path()), 50);
    let got: Vec<Option<String>> = cache.get_many(["k0", "absent", "k49"]).unwrap();
    assert_eq!(got, [Some(big.clone()), None, Some(big.clone())]);

    // One bad key: nothing of the batch is stored, and no file is left.
    let bad = [
        (Key::from(-1.0), &big),
        (Key::from(-2.0), &big),
        (Key::from(f64::NAN), &big),
    ];
    assert!(matches!(
        cache.set_many(bad, &SetOptions::default()),
        Err(diskq::Error::InvalidKey(_))
    ));
    assert!(!cache.contains_key(-1.0).unwrap());
    assert_eq!(value_files(dir.path()), 50);
    let ok = cache.set_many([("k0", &f64::NAN), ("k1", &1.0)], &SetOptions::default());
    assert_eq!(ok.unwrap(), 2, "NaN values are MessagePack, not an error");
    assert_eq!(cache.evict("batch").unwrap(), 48);
    assert_eq!(value_files(dir.path()), 0);
    assert!(
        cache.get_many::<_, i64, _>(["k0"]).is_err(),
        "k0 holds a float now, not an integer"
    );
}

#[test]
fn a_failed_operation_inside_a_block_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path()).unwrap();
    cache.push("not a number").unwrap();
    cache
        .transact(|c| {
            // The pull removes the row, then fails to decode it: the row comes
            // back even though the block goes on and commits.
            assert!(c.pull::<i64>().is_err());
            c.set("after", &1)
        })
        .unwrap();
    assert_eq!(cache.pull::<String>().unwrap().unwrap().1, "not a number");
    assert_eq!(cache.get::<i64>("after").unwrap(), Some(1));
}
