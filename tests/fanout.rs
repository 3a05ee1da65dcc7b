//! `FanoutCache`: python-diskcache's shard choice, every operation, the
//! operations that span shards, named sub-collections, and a shard locked
//! by another process turning gets into misses and sets into `false`.
//!
//! The lock holder is this test binary run again with `DISKQ_ROLE` set; in
//! a normal run the `child` test returns at once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use diskq::{Cache, Error, FanoutCache, Key, SetOptions, WarningKind};

/// Keys and their shard among 8 and among 3, as python-diskcache 5.6.3
/// computes it (`Disk.hash(key) % shards`, printed by `python3 -c`).
fn python_shards() -> Vec<(Key, usize, usize)> {
    vec![
        (Key::from("hello"), 5, 1),
        (Key::from("héllo wörld"), 6, 0),
        (Key::from(""), 1, 1),
        (Key::from("a"), 2, 1),
        (Key::from(&b"\x00bin"[..]), 2, 2),
        (Key::from(&b""[..]), 1, 1),
        (Key::from(vec![0xff; 10]), 7, 2),
        (Key::from(16), 0, 1),
        (Key::from(1), 1, 1),
        (Key::from(7), 7, 1),
        (Key::from(-1), 6, 2),
        (Key::from(-42), 5, 0),
        (Key::from(i64::MAX), 7, 1),
        (Key::from(i64::MIN), 7, 1),
        (Key::Int(4294967295), 0, 0),
        (Key::Int(4294967296), 1, 1),
        (Key::from(1.5), 0, 1),
        (Key::from(-1.5), 0, 1),
        (Key::from(0.0), 1, 0),
        (Key::from(-0.0), 1, 0),
        (Key::from(1e300), 7, 1),
        (Key::from(2.5), 5, 2),
    ]
}

/// The shard holding `key`, found by asking every shard directly.
fn holders(cache: &FanoutCache, key: &Key) -> Vec<usize> {
    (0..cache.shards().len())
        .filter(|&i| cache.shards()[i].contains_key(key).unwrap())
        .collect()
}

#[test]
fn shard_choice_matches_python_diskcache() {
    let dir = tempfile::tempdir().unwrap();
    let eight = FanoutCache::open(dir.path().join("eight")).unwrap();
    let three = FanoutCache::builder().shards(3).open(dir.path().join("three")).unwrap();
    for (key, in_eight, in_three) in python_shards() {
        assert_eq!(eight.shard_index(&key), in_eight, "{key} over 8 shards");
        assert_eq!(three.shard_index(&key), in_three, "{key} over 3 shards");
        assert!(eight.set(&key, &key.to_string()).unwrap());
        assert!(three.set(&key, &key.to_string()).unwrap());
    }
    // -0.0 and 0.0 are one SQLite row (in one shard), so 21 items, not 22.
    assert_eq!(eight.len().unwrap(), 21);
    for (key, in_eight, in_three) in python_shards() {
        assert_eq!(holders(&eight, &key), [in_eight], "{key}");
        assert_eq!(holders(&three, &key), [in_three], "{key}");
    }
    // Encoded keys hash their MessagePack bytes (adler32 237962016).
    let encoded = Key::encode(&("user", 42)).unwrap();
    assert_eq!(encoded, Key::Encoded(b"\x92\xa4user\x2a".to_vec()));
    assert_eq!(eight.shard_index(&encoded), 237962016 % 8);
    assert_eq!(three.shard_index(&encoded), 237962016 % 3);
    // 1 and 1.0 are one key in a Cache but hash differently, as in Python.
    assert_ne!(eight.shard_index(2), eight.shard_index(2.0));
}

#[test]
fn key_operations_route_to_one_shard() {
    let dir = tempfile::tempdir().unwrap();
    let cache = FanoutCache::builder().min_file_size(64).open(dir.path()).unwrap();
    assert_eq!(cache.directory(), dir.path().canonicalize().unwrap());
    assert_eq!(cache.timeout(), Duration::from_millis(10));
    let names: Vec<PathBuf> = cache.shards().iter().map(|s| s.directory().to_path_buf()).collect();
    let want: Vec<PathBuf> = (0..8).map(|i| cache.directory().join(format!("00{i}"))).collect();
    assert_eq!(names, want);

    assert!(cache.set("hello", "world").unwrap());
    assert_eq!(holders(&cache, &Key::from("hello")), [5]);
    assert_eq!(cache.get::<String>("hello").unwrap().as_deref(), Some("world"));
    assert_eq!(cache.get::<String>("absent").unwrap(), None);
    assert!(cache.get::<i64>("hello").unwrap_err().is_decode());
    assert!(cache.contains_key("hello").unwrap());
    assert!(!cache.contains_key("absent").unwrap());

    let opts = SetOptions::new().expire(Duration::from_secs(60)).tag("t");
    assert!(cache.set_with(-42, &1.25, &opts).unwrap());
    let entry = cache.get_entry::<f64>(-42).unwrap().unwrap();
    assert_eq!((entry.value, entry.tag.as_deref()), (1.25, Some("t")));
    assert!(entry.expire_time.is_some());
    assert!(cache.touch(-42, None).unwrap());
    assert_eq!(cache.get_entry::<f64>(-42).unwrap().unwrap().expire_time, None);
    assert!(!cache.touch("absent", None).unwrap());

    assert!(cache.set_bytes(&b"\x00bin"[..], b"small").unwrap());
    assert_eq!(
        cache.get_bytes(&b"\x00bin"[..]).unwrap().as_deref(),
        Some(&b"small"[..])
    );
    let big = vec![7u8; 1000];
    assert!(cache.set_bytes_with(1.5, &big, &SetOptions::new()).unwrap());
    let mut reader = cache.read(1.5).unwrap().unwrap();
    assert!(reader.path().unwrap().starts_with(cache.shards()[0].directory()));
    let mut read_back = Vec::new();
    std::io::Read::read_to_end(&mut reader, &mut read_back).unwrap();
    assert_eq!(read_back, big);
    assert!(cache.read("absent").unwrap().is_none());
    let size = cache.set_reader(7, &mut &big[..500], &SetOptions::new()).unwrap();
    assert_eq!(size, Some(500));
    assert_eq!(cache.get_bytes(7).unwrap().map(|b| b.len()), Some(500));

    assert!(cache.add("once", &1).unwrap());
    assert!(!cache.add("once", &2).unwrap());
    assert!(cache.add_with("twice", &2, &SetOptions::new().tag("x")).unwrap());
    assert_eq!(cache.get::<i64>("once").unwrap(), Some(1));

    assert_eq!(cache.incr("n", 5, 10).unwrap(), Some(15));
    assert_eq!(cache.decr("n", 20, 0).unwrap(), Some(-5));
    assert!(cache.incr("hello", 1, 0).unwrap_err().is_decode());

    assert_eq!(cache.pop::<i64>("n").unwrap(), Some(-5));
    assert_eq!(cache.pop::<i64>("n").unwrap(), None);
    assert!(cache.delete("once").unwrap());
    assert!(!cache.delete("once").unwrap());

    let values: Vec<i64> = (0..20).collect();
    let stored = cache
        .set_many(values.iter().map(|n| (*n, n)), &SetOptions::new())
        .unwrap();
    assert_eq!(stored, 20);
    let got: Vec<Option<i64>> = cache.get_many([3, 100, 19, 8]).unwrap();
    assert_eq!(got, [Some(3), None, Some(19), Some(8)]);
    for n in 0..20 {
        assert_eq!(holders(&cache, &Key::from(n)), [n as usize % 8]);
    }

    let mut calls = 0;
    let mut square = |n: i64| {
        cache
            .memoize(("square", n), None, || {
                calls += 1;
                Ok::<_, Error>(n * n)
            })
            .unwrap()
    };
    assert_eq!(square(12), 144);
    assert_eq!(square(12), 144);
    assert_eq!(calls, 1);
    let memo_key = Key::encode(&("square", 12)).unwrap();
    assert_eq!(holders(&cache, &memo_key), [cache.shard_index(&memo_key)]);

    assert!(cache.set(f64::NAN, &1).unwrap_err().to_string().contains("NaN"));
    assert_eq!(cache.stats().unwrap().timeouts, 0);
}

#[test]
fn operations_span_every_shard() {
    let now = Arc::new(AtomicU64::new(1000f64.to_bits()));
    let clock = now.clone();
    let dir = tempfile::tempdir().unwrap();
    let cache = FanoutCache::builder()
        .statistics(true)
        .tag_index(true)
        .min_file_size(64)
        .clock(move || std::time::UNIX_EPOCH + Duration::from_secs_f64(f64::from_bits(clock.load(Ordering::SeqCst))))
        .open(dir.path())
        .unwrap();
    assert!(cache.is_empty().unwrap());
    assert!(cache.statistics());
    let soon = SetOptions::new().expire(Duration::from_secs(10));
    for n in 0..40i64 {
        let opts = if n % 4 == 0 {
            soon.clone()
        } else {
            SetOptions::new().tag(format!("t{}", n % 2))
        };
        assert!(cache.set_with(n, &format!("{n:0>100}"), &opts).unwrap());
    }
    assert_eq!(cache.len().unwrap(), 40);
    assert!(!cache.is_empty().unwrap());
    assert!(cache.shards().iter().all(|s| s.len().unwrap() == 5));
    let volumes: u64 = cache.shards().iter().map(|s| s.volume().unwrap()).sum();
    assert_eq!(cache.volume().unwrap(), volumes);

    // Keys: shard 000's first (0, 8, 16, ...), then 001's; reversed exactly.
    let keys: Vec<i64> = cache.keys().unwrap().map(|k| k.unwrap().as_int().unwrap()).collect();
    let want: Vec<i64> = (0..8).flat_map(|s| (0..5).map(move |i| s + 8 * i)).collect();
    assert_eq!(keys, want);
    let mut back: Vec<i64> = cache
        .keys()
        .unwrap()
        .rev()
        .map(|k| k.unwrap().as_int().unwrap())
        .collect();
    back.reverse();
    assert_eq!(back, want);
    let mut both = cache.keys().unwrap();
    assert_eq!(both.next().unwrap().unwrap(), Key::Int(0));
    assert_eq!(both.next_back().unwrap().unwrap(), Key::Int(39));
    assert_eq!(both.count(), 38);

    // Statistics are summed over shards.
    for n in [1, 2, 3, 100, 101] {
        cache.get::<String>(n).unwrap();
    }
    let stats = cache.stats().unwrap();
    assert_eq!((stats.hits, stats.misses, stats.timeouts), (3, 2, 0));
    cache.reset_stats().unwrap();
    assert_eq!(cache.stats().unwrap(), diskq::fanout::FanoutStats::default());
    cache.set_statistics(false).unwrap();
    assert!(!cache.statistics());
    assert!(cache.shards().iter().all(|s| !s.statistics()));
    cache.get::<String>(1).unwrap();
    assert_eq!(cache.stats().unwrap().hits, 0);

    // Expiry follows the shards' clock.
    now.store(1011f64.to_bits(), Ordering::SeqCst);
    assert_eq!(cache.len().unwrap(), 30);
    assert_eq!(cache.expire().unwrap(), 10);
    assert_eq!(cache.evict("t1").unwrap(), 20);
    assert_eq!(cache.len().unwrap(), 10);

    // check: a clean cache, then an orphan file in one shard.
    assert!(cache.check().unwrap().is_empty());
    let orphan = cache.shards()[3]
        .directory()
        .join("ab/cd/0123456789abcdef0123456789ab.val");
    std::fs::create_dir_all(orphan.parent().unwrap()).unwrap();
    std::fs::write(&orphan, b"left by a crash").unwrap();
    // Fresh, as a file a live writer is writing: kept by default.
    assert!(cache.repair().unwrap().iter().all(|w| !w.fixed));
    assert!(orphan.exists());
    let no_grace = diskq::CheckOptions::new().fix(true).orphan_grace(Duration::ZERO);
    let warnings = cache.check_with(&no_grace).unwrap();
    assert!(
        warnings.iter().any(|w| w.kind == WarningKind::UnknownFile && w.fixed),
        "{warnings:?}"
    );
    assert!(!orphan.exists());
    assert!(cache.check().unwrap().is_empty());

    assert_eq!(cache.clear().unwrap(), 10);
    assert!(cache.is_empty().unwrap());
    assert_eq!(cache.keys().unwrap().count(), 0);
}

#[test]
fn size_limit_is_split_and_cull_works_per_shard() {
    let dir = tempfile::tempdir().unwrap();
    let default = FanoutCache::open(dir.path().join("default")).unwrap();
    assert!(default.shards().iter().all(|s| s.size_limit() == (1 << 30) / 8));
    let cache = FanoutCache::builder()
        .shards(4)
        .size_limit(4000)
        .cull_limit(0)
        .open(dir.path().join("small"))
        .unwrap();
    assert!(
        cache
            .shards()
            .iter()
            .all(|s| s.size_limit() == 1000 && s.cull_limit() == 0)
    );
    for n in 0..30 {
        cache.set(n, &n).unwrap();
    }
    // Each shard's database alone is over 1000 bytes: cull empties them all.
    assert_eq!(cache.cull().unwrap(), 30);
    assert!(cache.is_empty().unwrap());
    // Reopening with other options applies them to every shard.
    drop(cache);
    let reopened = FanoutCache::builder()
        .shards(4)
        .eviction_policy(diskq::EvictionPolicy::LeastRecentlyUsed)
        .open(dir.path().join("small"))
        .unwrap();
    assert!(reopened.shards().iter().all(|s| s.size_limit() == (1 << 30) / 4
        && s.eviction_policy() == diskq::EvictionPolicy::LeastRecentlyUsed));
}

#[test]
fn transact_locks_every_shard() {
    let dir = tempfile::tempdir().unwrap();
    let cache = FanoutCache::open(dir.path()).unwrap();
    let keys = [0, 1, 2, 3, 4, 5, 6, 7];
    cache
        .transact(|c| {
            for k in keys {
                c.incr(k, 10, 0)?;
            }
            Ok::<_, Error>(())
        })
        .unwrap();
    let failed: Result<(), Error> = cache.transact(|c| {
        for k in keys {
            c.incr(k, 1, 0)?;
        }
        c.set("also", &1)?;
        Err(Error::InvalidUse("stop".into()))
    });
    assert!(matches!(failed, Err(Error::InvalidUse(m)) if m == "stop"));
    for k in keys {
        assert_eq!(cache.get::<i64>(k).unwrap(), Some(10), "key {k} rolled back");
    }
    assert!(!cache.contains_key("also").unwrap());
    let total = cache
        .transact(|c| {
            let mut sum = 0;
            for k in keys {
                sum += c.get::<i64>(k)?.unwrap_or(0);
            }
            Ok::<_, Error>(sum)
        })
        .unwrap();
    assert_eq!(total, 80);
}

#[test]
fn named_collections_live_where_python_puts_them() {
    let dir = tempfile::tempdir().unwrap();
    let fanout = FanoutCache::open(dir.path()).unwrap();
    let root = fanout.directory().to_path_buf();

    let sessions = fanout.cache("sessions").unwrap();
    assert_eq!(sessions.directory(), root.join("cache/sessions"));
    sessions.set("k", "v").unwrap();
    assert_eq!(
        fanout.cache("sessions").unwrap().get::<String>("k").unwrap().as_deref(),
        Some("v")
    );
    assert!(!fanout.contains_key("k").unwrap(), "a named cache is not a shard");
    let nested = fanout.cache("a/b").unwrap();
    assert_eq!(nested.directory(), root.join("cache/a/b"));
    let custom = fanout
        .cache_with("sized", Cache::builder().size_limit(1 << 20))
        .unwrap();
    assert_eq!(custom.size_limit(), 1 << 20);

    let jobs = fanout.deque::<String>("jobs").unwrap();
    assert_eq!(jobs.cache().directory(), root.join("deque/jobs"));
    assert_eq!(jobs.cache().eviction_policy(), diskq::EvictionPolicy::None);
    jobs.push_back("one").unwrap();
    assert_eq!(fanout.deque::<String>("jobs").unwrap().len().unwrap(), 1);

    let ranks = fanout.index::<String, i64>("ranks").unwrap();
    assert_eq!(ranks.cache().directory(), root.join("index/ranks"));
    assert_eq!(ranks.cache().eviction_policy(), diskq::EvictionPolicy::None);
    ranks.insert("x", &1).unwrap();
    assert_eq!(fanout.index::<String, i64>("ranks").unwrap().get("x").unwrap(), Some(1));
    // Same name, different kinds: different directories.
    assert_eq!(fanout.index::<String, i64>("jobs").unwrap().len().unwrap(), 0);

    let bad = [
        "",
        ".",
        "..",
        "../up",
        "a/../b",
        "a/./b",
        "/abs",
        "a/",
        "a//b",
        "back\\slash",
        "nul\0",
    ];
    for name in bad {
        for result in [
            fanout.cache(name).map(drop),
            fanout.cache_with(name, Cache::builder()).map(drop),
            fanout.deque::<i64>(name).map(drop),
            fanout.index::<i64, i64>(name).map(drop),
        ] {
            match result {
                Err(Error::InvalidUse(message)) => assert!(message.contains("name"), "{message}"),
                other => panic!("name {name:?} must be refused, got {other:?}"),
            }
        }
    }
    let dirs: Vec<String> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| !n.starts_with('0') && n != "diskq-fanout")
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(dirs, ["cache", "deque", "index"], "refused names created nothing");
}

#[test]
fn bad_options_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    match FanoutCache::builder().shards(0).open(dir.path()) {
        Err(Error::InvalidSetting { name, .. }) => assert_eq!(name, "shards"),
        other => panic!("zero shards must be refused, got {other:?}"),
    }
    let file = dir.path().join("file");
    std::fs::write(&file, b"x").unwrap();
    assert!(matches!(FanoutCache::open(&file), Err(Error::NotADirectory(_))));
}

fn spawn_holder(dirs: &[&Path], signals: &Path) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child", "--nocapture", "--test-threads=1", "--quiet"])
        .env("DISKQ_ROLE", "hold")
        .env("DISKQ_DIRS", std::env::join_paths(dirs).unwrap())
        .env("DISKQ_SIGNALS", signals)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

fn wait_for(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !path.exists() {
        assert!(Instant::now() < deadline, "no signal file {}", path.display());
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The child: holds the write lock of each `DISKQ_DIRS` shard (nested
/// transactions) until the parent creates `release`.
#[test]
fn child() {
    let Ok(role) = std::env::var("DISKQ_ROLE") else { return };
    assert_eq!(role, "hold");
    let dirs: Vec<PathBuf> = std::env::split_paths(&std::env::var_os("DISKQ_DIRS").unwrap()).collect();
    let signals = PathBuf::from(std::env::var("DISKQ_SIGNALS").unwrap());
    let shards: Vec<Cache> = dirs
        .iter()
        .map(|d| Cache::builder().timeout(Duration::from_secs(60)).open(d).unwrap())
        .collect();
    fn hold(shards: &[Cache], signals: &Path) -> Result<(), Error> {
        match shards.split_first() {
            Some((first, rest)) => first.transact(|_| hold(rest, signals)),
            None => {
                std::fs::write(signals.join("ready"), b"").unwrap();
                wait_for(&signals.join("release"));
                Ok(())
            }
        }
    }
    hold(&shards, &signals).unwrap();
}

#[test]
fn a_locked_shard_is_a_miss_not_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let (counted_dir, plain_dir, signals) = (dir.path().join("counted"), dir.path().join("plain"), dir.path());
    // Statistics on: every get writes, so a get needs the shard's lock.
    let cache = FanoutCache::builder().statistics(true).open(&counted_dir).unwrap();
    let plain = FanoutCache::open(&plain_dir).unwrap();
    for n in 0..16i64 {
        cache.set(n, &n).unwrap();
        plain.set(n, &n).unwrap();
    }
    let mut holder = spawn_holder(&[&counted_dir.join("000"), &plain_dir.join("000")], signals);
    wait_for(&signals.join("ready"));

    // Key 8 lives in shard 000, key 1 in shard 001. The holder keeps the
    // lock until `release` exists: an operation that waited for the lock
    // instead of giving up would never return (the holder gives up after
    // 120 s, and then the operation would succeed and fail its assertion).
    assert_eq!(cache.get::<i64>(8).unwrap(), None);
    assert_eq!(cache.get_entry::<i64>(8).unwrap(), None);
    assert_eq!(cache.get_bytes(8).unwrap(), None);
    // A batch read takes no lock (and records no statistics): it does not wait.
    assert_eq!(cache.get_many::<_, i64, _>([8, 1]).unwrap(), [Some(8), Some(1)]);
    assert_eq!(cache.get::<i64>(1).unwrap(), Some(1), "other shards work");
    assert!(!cache.set(8, &80).unwrap());
    assert!(!cache.set_bytes(8, b"x").unwrap());
    assert_eq!(cache.set_reader(8, &mut &b"x"[..], &SetOptions::new()).unwrap(), None);
    assert!(!cache.add(0, &1).unwrap());
    assert_eq!(cache.incr(8, 1, 0).unwrap(), None);
    assert_eq!(cache.decr(8, 1, 0).unwrap(), None);
    assert!(!cache.delete(8).unwrap());
    assert!(!cache.touch(8, None).unwrap());
    assert_eq!(cache.pop::<i64>(8).unwrap(), None);
    assert_eq!(cache.set_many([(8, &1), (1, &10)], &SetOptions::new()).unwrap(), 1);
    assert!(cache.set(9, &90).unwrap(), "other shards take writes");
    assert_eq!(cache.stats().unwrap().timeouts, 13);

    // Without statistics a get only reads: WAL readers never wait.
    assert_eq!(plain.get::<i64>(8).unwrap(), Some(8));
    assert!(plain.contains_key(8).unwrap());
    assert!(!plain.set(8, &80).unwrap());
    assert_eq!(plain.stats().unwrap().timeouts, 1);

    // A bulk removal waits for the shard, as python-diskcache's does.
    let clearing = {
        let plain = plain.clone();
        std::thread::spawn(move || plain.clear().unwrap())
    };
    // Release once the clear has been seen waiting (its timeouts counted).
    let deadline = Instant::now() + Duration::from_secs(120);
    while plain.stats().unwrap().timeouts <= 2 {
        assert!(Instant::now() < deadline, "the clear's waits were not counted");
        std::thread::sleep(Duration::from_millis(1));
    }
    std::fs::write(signals.join("release"), b"").unwrap();
    assert_eq!(clearing.join().unwrap(), 16, "every item counted");
    assert!(plain.stats().unwrap().timeouts > 2, "the waits were counted");
    assert!(holder.wait().unwrap().success());

    // Released: everything works again, and nothing was half-written.
    assert_eq!(cache.get::<i64>(8).unwrap(), Some(8));
    assert_eq!(cache.get::<i64>(0).unwrap(), Some(0));
    assert_eq!(cache.get::<i64>(1).unwrap(), Some(10));
    assert!(cache.set(8, &80).unwrap());
    cache.reset_stats().unwrap();
    assert_eq!(cache.stats().unwrap().timeouts, 0);
}

// ------------------------------------------------------------ shard count

/// The names in a fanout root, sorted.
fn root_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

fn assert_shards_refused(result: diskq::Result<FanoutCache>, recorded: usize) {
    match result {
        Err(Error::InvalidSetting { name, message }) => {
            assert_eq!(name, "shards", "{message}");
            assert!(
                message.contains(&format!("shards({recorded})")),
                "the message says which count to use: {message}"
            );
        }
        other => panic!("expected InvalidSetting for shards, got {other:?}"),
    }
}

#[test]
fn reopening_with_another_shard_count_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cache = FanoutCache::open(dir.path()).unwrap();
    for i in 0..20 {
        assert!(cache.set(format!("key{i}"), &i).unwrap());
    }
    drop(cache);
    let before = root_names(dir.path());
    for other in [1, 3, 9, 16] {
        assert_shards_refused(FanoutCache::builder().shards(other).open(dir.path()), 8);
    }
    assert_eq!(root_names(dir.path()), before, "a refused open created shard folders");
    let cache = FanoutCache::builder().shards(8).open(dir.path()).unwrap();
    for i in 0..20 {
        assert_eq!(cache.get::<i64>(format!("key{i}")).unwrap(), Some(i), "key{i}");
    }
    assert_eq!(cache.len().unwrap(), 20);
}

#[test]
fn a_root_without_the_record_is_counted_by_its_shard_folders() {
    // As python-diskcache (or an older diskq) leaves a root: shard folders only.
    let dir = tempfile::tempdir().unwrap();
    let cache = FanoutCache::builder().shards(4).open(dir.path()).unwrap();
    assert!(cache.set("k", &1).unwrap());
    drop(cache);
    std::fs::remove_file(dir.path().join("diskq-fanout")).unwrap();
    let before = root_names(dir.path());
    assert_shards_refused(FanoutCache::open(dir.path()), 4);
    assert_eq!(root_names(dir.path()), before, "a refused open created shard folders");
    // The right count opens it and records it.
    let cache = FanoutCache::builder().shards(4).open(dir.path()).unwrap();
    assert_eq!(cache.get::<i64>("k").unwrap(), Some(1));
    drop(cache);
    assert!(dir.path().join("diskq-fanout").is_file());
    assert_shards_refused(FanoutCache::builder().shards(2).open(dir.path()), 4);
    // A record that is not one is a clear error, not a guess.
    std::fs::write(dir.path().join("diskq-fanout"), b"shards: lots").unwrap();
    assert!(matches!(
        FanoutCache::builder().shards(4).open(dir.path()),
        Err(Error::Corrupt(_))
    ));
}

#[path = "support/pyenv.rs"]
mod pyenv;

#[test]
fn a_python_made_root_keeps_its_shard_count() {
    let Some(python) = pyenv::python("the python-diskcache fanout shard-count test") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let script = "import sys, diskcache\n\
                  c = diskcache.FanoutCache(sys.argv[1], shards=3)\n\
                  if sys.argv[2] == 'write':\n    \
                      [c.set('key%d' % i, i) for i in range(20)]\n\
                  else:\n    \
                      assert all(c.get('key%d' % i) == i for i in range(20)), 'lost keys'\n    \
                      assert c.get('from-diskq') == 'yes'\n    \
                      import warnings\n    \
                      with warnings.catch_warnings(record=True) as seen:\n        \
                          warnings.simplefilter('always')\n        \
                          c.check()\n    \
                      assert not seen, [str(w.message) for w in seen]\n\
                  c.close()\n";
    let run = |what: &str| {
        let out = Command::new(&python)
            .args(["-c", script, dir.path().to_str().unwrap(), what])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "python {what}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run("write");
    let before = root_names(dir.path());
    assert_shards_refused(FanoutCache::open(dir.path()), 3);
    assert_eq!(root_names(dir.path()), before, "a refused open created shard folders");
    let cache = FanoutCache::builder().shards(3).open(dir.path()).unwrap();
    for i in 0..20 {
        assert_eq!(cache.get::<i64>(format!("key{i}")).unwrap(), Some(i), "key{i}");
    }
    assert!(cache.set("from-diskq", "yes").unwrap());
    drop(cache);
    // The record diskq wrote does not disturb python-diskcache.
    assert!(dir.path().join("diskq-fanout").is_file());
    run("read");
    assert_shards_refused(FanoutCache::open(dir.path()), 3);
}

#[test]
fn openers_racing_on_a_new_root_agree() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("fan");
    let start = Arc::new(std::sync::Barrier::new(6));
    let openers: Vec<_> = (0..6)
        .map(|_| {
            let (root, start) = (root.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                FanoutCache::builder().shards(4).open(&root).map(|c| c.shards().len())
            })
        })
        .collect();
    for opener in openers {
        assert_eq!(opener.join().unwrap().unwrap(), 4);
    }
    assert_shards_refused(FanoutCache::open(&root), 4);
}
