//! What only the PostgreSQL backend has to show: operations it does not do
//! are clear errors, an unreachable server is an error within the timeout,
//! concurrent writers of one key stay atomic, transactions never deadlock, and the blocking API works
//! inside a tokio runtime.
#![cfg(feature = "postgres")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use diskq::{Cache, Deque, Error, EvictionPolicy, FanoutCache, Index};

#[path = "support/pg.rs"]
mod pg;

fn unsupported(result: Result<impl std::fmt::Debug, Error>, what: &str) {
    match result {
        Err(e @ Error::Unsupported { .. }) => assert!(e.to_string().contains(what), "{e}"),
        other => panic!("wanted Unsupported ({what}), got {other:?}"),
    }
}

#[test]
fn what_postgres_does_not_do_is_a_clear_error() {
    let loc = pg::location("unsupported");
    unsupported(
        Cache::builder()
            .eviction_policy(EvictionPolicy::LeastRecentlyUsed)
            .open(&loc),
        "eviction",
    );
    unsupported(Cache::builder().min_file_size(10).open(&loc), "value files");
    unsupported(Cache::builder().sqlite_cache_size(10).open(&loc), "SQLite");
    unsupported(FanoutCache::open(&loc), "FanoutCache");
    // The default policy of a Cache is `none` there, not an error.
    let cache = Cache::open(&loc).unwrap();
    assert_eq!(cache.eviction_policy(), EvictionPolicy::None);
    unsupported(cache.check(), "check");
    // Values past the directory's file threshold stay inline: they work.
    let big = vec![7u8; 1 << 20];
    cache.set_bytes("big", &big).unwrap();
    assert_eq!(cache.get_bytes("big").unwrap(), Some(big));
    // Jobs are not among the refusals: a delayed, prioritized, unique push
    // and a nack with a delay work as on a directory (tests/pg_jobs.rs).
    let job = diskq::PushOptions::new()
        .delay(Duration::from_secs(60))
        .priority(2)
        .unique_key("once");
    assert!(cache.push_job("later", &job).unwrap().is_some());
    assert!(cache.push_job("again", &job).unwrap().is_none(), "the key is taken");
    cache.push("now").unwrap();
    let lease = cache
        .lease::<String>(&diskq::LeaseOptions::new(Duration::from_secs(30)))
        .unwrap()
        .unwrap();
    let nack = diskq::NackOptions::new().delay(Duration::from_secs(60));
    assert!(lease.nack_with(&nack).unwrap());
    assert_eq!(cache.backlog(None).unwrap().scheduled, 2);
    // Nothing was made on the local disk for the location.
    assert!(!std::path::Path::new("postgres:").exists());
}

#[test]
fn an_unreachable_server_is_an_error_within_the_timeout() {
    let port = pg::free_port("127.0.0.1");
    let started = Instant::now();
    let err = Deque::<u32>::open(format!("postgres://postgres@127.0.0.1:{port}/postgres"))
        .map(drop)
        .unwrap_err();
    assert!(matches!(err, Error::Postgres { .. } | Error::Timeout), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
    // A location that does not parse, and a schema name that cannot be one.
    assert!(matches!(
        Cache::open("postgres://h:notaport/db"),
        Err(Error::Postgres { code: None, .. })
    ));
    assert!(matches!(
        Cache::open("postgres://h/db#No-Such"),
        Err(Error::InvalidUse(_))
    ));
}

#[test]
fn a_refused_connection_is_reported_and_passwords_stay_hidden() {
    // The test server trusts every user, so a wrong password passes; a
    // database that does not exist is refused at connect the same way.
    let server = &pg::server().url;
    let (base, _) = server.rsplit_once('/').unwrap();
    let err = Cache::open(format!("{base}/no_such_database")).unwrap_err();
    assert!(
        matches!(&err, Error::Postgres { code: Some(c), .. } if c == "3D000"),
        "{err:?}"
    );
    let with_password = pg::location("shown").replacen("postgres@", "postgres:hunter2@", 1);
    let cache = Cache::open(&with_password).unwrap();
    assert!(!format!("{cache:?}").contains("hunter2"));
    assert!(!cache.directory().to_string_lossy().contains("hunter2"));
}

#[test]
fn concurrent_writers_of_one_key_stay_atomic() {
    let loc = pg::location("atomic");
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let cache = Cache::open(&loc).unwrap();
            std::thread::spawn(move || {
                let mut added = 0;
                for i in 0..50 {
                    cache.incr("counter", 1, 0).unwrap();
                    if cache.add(format!("once-{i}"), &1).unwrap() {
                        added += 1;
                    }
                }
                added
            })
        })
        .collect();
    let added: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
    let cache = Cache::open(&loc).unwrap();
    assert_eq!(cache.get::<i64>("counter").unwrap(), Some(200));
    assert_eq!(added, 50, "each key added by exactly one writer");
}

#[test]
fn transactions_that_lock_in_opposite_orders_do_not_deadlock() {
    // Each body touches two keys and a queue, half of them in the other
    // order: run at once on PostgreSQL's per-key locks they would deadlock
    // (SQLSTATE 40P01, one body failing) without the store's transaction lock.
    let loc = pg::location("opposite");
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let cache = Cache::open(&loc).unwrap();
            let queue: Deque<u64> = Deque::open(&loc).unwrap();
            std::thread::spawn(move || {
                for i in 0..100_u64 {
                    let (first, second) = if (t + i) % 2 == 0 { ("a", "b") } else { ("b", "a") };
                    cache
                        .transact(|c| {
                            c.incr(first, 1, 0)?;
                            queue.push_back(&i)?;
                            c.incr(second, 1, 0)?;
                            Ok::<_, Error>(())
                        })
                        .unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let cache = Cache::open(&loc).unwrap();
    assert_eq!(cache.get::<i64>("a").unwrap(), Some(400));
    assert_eq!(cache.get::<i64>("b").unwrap(), Some(400));
    assert_eq!(Deque::<u64>::open(&loc).unwrap().len().unwrap(), 400);
}

#[test]
fn the_blocking_api_works_inside_a_tokio_runtime() {
    let loc = pg::location("tokio");
    let body = |loc: String| {
        let d = Deque::<String>::open(&loc).unwrap();
        d.push_back("inside").unwrap();
        let index = Index::<String, u32>::open(&loc).unwrap();
        index.insert("k", &1).unwrap();
        (d.pop_front().unwrap(), index.get("k").unwrap())
    };
    let want = (Some("inside".to_owned()), Some(1));
    let current = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let multi = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    for rt in [&current, &multi] {
        // In `block_on`, in a task of the runtime's own threads and on its
        // blocking pool.
        assert_eq!(rt.block_on(async { body(loc.clone()) }), want);
        let (l1, l2) = (loc.clone(), loc.clone());
        assert_eq!(rt.block_on(rt.spawn(async move { body(l1) })).unwrap(), want);
        assert_eq!(rt.block_on(rt.spawn_blocking(move || body(l2))).unwrap(), want);
    }
    // A task of a LocalSet, on either runtime (where tokio's
    // `block_in_place` would panic: diskq's waits for the server must not
    // use it).
    for rt in [&current, &multi] {
        let (local, loc) = (tokio::task::LocalSet::new(), loc.clone());
        let got = local.block_on(
            rt,
            async move { tokio::task::spawn_local(async move { body(loc) }).await },
        );
        assert_eq!(got.unwrap(), want);
    }
}

#[test]
fn two_handles_on_one_schema_see_one_store_and_schemas_stay_apart() {
    let a = pg::location("apart_a");
    let b = pg::location("apart_b");
    let d1 = Deque::<u32>::open(&a).unwrap();
    let d2 = Deque::<u32>::open(&a).unwrap();
    let other = Deque::<u32>::open(&b).unwrap();
    d1.push_back(&1).unwrap();
    assert_eq!(other.pop_front().unwrap(), None);
    assert_eq!(d2.pop_front().unwrap(), Some(1));
}
