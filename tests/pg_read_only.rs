//! A PostgreSQL store opened read-only changes nothing on the server: every
//! write is refused, its connections' transactions are read-only (the server
//! refuses writes too), and a schema that is not there is not made.
#![cfg(feature = "postgres")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/pg.rs"]
mod pg;

use std::time::Duration;

use diskq::{Cache, LeaseOptions, NackOptions, PushOptions};

#[test]
fn a_read_only_store_reads_and_refuses_writes() {
    let location = pg::location("read_only");
    let cache = Cache::open(&location).unwrap();
    cache
        .push_many(["a", "b", "c"], &PushOptions::new().prefix("jobs"))
        .unwrap();
    let opts = LeaseOptions::new(Duration::from_secs(60))
        .prefix("jobs")
        .max_deliveries(1);
    let lease = cache.lease::<String>(&opts).unwrap().expect("queued");
    lease.nack_with(&NackOptions::new().error("bad input")).unwrap(); // a dead letter
    let _held = cache.lease::<String>(&opts).unwrap().expect("queued");

    let ro = Cache::open_read_only(&location).unwrap();
    assert!(ro.is_read_only());
    assert_eq!(ro.directory(), std::path::Path::new(&location), "the location as given");
    // No hit or miss counted yet (statistics off): zeros, not an error.
    let stats = ro.stats().unwrap();
    assert_eq!((stats.hits, stats.misses, stats.culled), (0, 0, 0));
    assert_eq!(cache.stats().unwrap().hits, 0);
    let backlog = ro.backlog(Some("jobs")).unwrap();
    assert_eq!((backlog.queued, backlog.leased, backlog.scheduled), (1, 1, 0));
    let stats = ro.queue_stats(Some("jobs")).unwrap();
    assert_eq!(
        (stats.pushed, stats.leased, stats.nacked, stats.dead_lettered),
        (3, 2, 1, 1)
    );
    assert_eq!(ro.all_queue_stats().unwrap().len(), 1);
    let dead = ro.dead_letters(&opts, 10).unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(
        (dead[0].deliveries, dead[0].last_error.as_deref()),
        (Some(1), Some("bad input")),
        "the dead letter's record, read without writing"
    );
    assert_eq!(ro.get::<String>(dead[0].key.clone()).unwrap().as_deref(), Some("a"));
    assert!(ro.push("x").is_err());
    assert!(ro.lease::<String>(&opts).is_err());
    assert_eq!(ro.backlog(Some("jobs")).unwrap(), backlog, "nothing changed");
}

#[test]
fn a_read_only_open_of_a_missing_schema_makes_nothing() {
    let location = pg::location("read_only_missing");
    let err = Cache::open_read_only(&location).unwrap_err();
    assert!(err.to_string().contains("no diskq tables"), "{err}");
    // Still missing: a writable open now makes it, empty.
    let cache = Cache::open(&location).unwrap();
    assert!(cache.all_queue_stats().unwrap().is_empty());
    assert_eq!(cache.len().unwrap(), 0);
}
