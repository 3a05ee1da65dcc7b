//! Dead letters keep their delivery count and last error: every way an item
//! gets to a dead-letter queue records them, `Cache::dead_letters` reads
//! them back (also through a read-only handle), requeueing and clearing
//! forget them, and python-diskcache still takes the items.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/pyenv.rs"]
mod pyenv;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use diskq::{Cache, Deque, Key, LeaseOptions, NackOptions, PullOptions, PushOptions, Side};

/// A cache whose clock the test moves, and the hand that moves it.
fn clocked(dir: &std::path::Path) -> (Cache, Arc<AtomicU64>) {
    let now = Arc::new(AtomicU64::new(2_000_000_000));
    let clock = now.clone();
    let cache = Cache::builder()
        .clock(move || SystemTime::UNIX_EPOCH + Duration::from_secs(clock.load(Ordering::SeqCst)))
        .open(dir)
        .unwrap();
    (cache, now)
}

#[test]
fn a_lease_that_runs_out_past_the_limit_keeps_its_deliveries() {
    let dir = tempfile::tempdir().unwrap();
    let (cache, now) = clocked(dir.path());
    cache.push("slow").unwrap();
    let opts = LeaseOptions::new(Duration::from_secs(10)).max_deliveries(2);
    for _ in 0..2 {
        drop(cache.lease::<String>(&opts).unwrap().expect("delivered"));
        now.fetch_add(11, Ordering::SeqCst);
    }
    assert!(cache.lease::<String>(&opts).unwrap().is_none(), "given up on");
    let dead = cache.dead_letters(&opts, 10).unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].key, Key::from("dead-letter-500000000000000"));
    assert_eq!(dead[0].deliveries, Some(2));
    assert_eq!(dead[0].last_error, None, "no nack gave a reason");
    assert_eq!(dead[0].size, 4);
    assert_eq!(
        dead[0].dead_at,
        Some(SystemTime::UNIX_EPOCH + Duration::from_secs(2_000_000_022))
    );
}

#[test]
fn the_last_nacks_error_is_kept_for_plain_items_and_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path()).unwrap();
    // A plain item nacked with an error at its last delivery.
    cache.push_with("plain", &PushOptions::new().prefix("a")).unwrap();
    let a = LeaseOptions::new(Duration::from_secs(60)).prefix("a").max_deliveries(1);
    let job = cache.lease::<String>(&a).unwrap().expect("queued");
    assert!(job.nack_with(&NackOptions::new().error("boom")).unwrap());
    // A job (delayed push) nacked three times, the last without a reason:
    // the last reason given stays.
    cache
        .push_job("job", &PushOptions::new().prefix("b").priority(1))
        .unwrap();
    let b = LeaseOptions::new(Duration::from_secs(60)).prefix("b").max_deliveries(3);
    for error in [Some("HTTP 503"), Some("HTTP 500"), None] {
        let job = cache.lease::<String>(&b).unwrap().expect("ready");
        let nack = match error {
            Some(e) => NackOptions::new().error(e),
            None => NackOptions::new(),
        };
        assert!(job.nack_with(&nack).unwrap());
    }
    let dead_a = cache.dead_letters(&a, 10).unwrap();
    assert_eq!(
        (dead_a[0].deliveries, dead_a[0].last_error.as_deref()),
        (Some(1), Some("boom"))
    );
    let dead_b = cache.dead_letters(&b, 10).unwrap();
    assert_eq!(dead_b[0].key, Key::from("b-dead-letter-500000000000000"));
    assert_eq!(
        (dead_b[0].deliveries, dead_b[0].last_error.as_deref()),
        (Some(3), Some("HTTP 500"))
    );
    assert_eq!(cache.queue_stats(Some("b")).unwrap().dead_lettered, 1);
}

#[test]
fn undecodable_items_keep_the_decode_error() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path()).unwrap();
    cache.push("not a number").unwrap();
    cache.push_with("also not", &PushOptions::new().prefix("q")).unwrap();
    // Leased as the wrong type at the limit of one delivery.
    let opts = LeaseOptions::new(Duration::from_secs(60)).max_deliveries(1);
    assert!(cache.lease::<i64>(&opts).unwrap_err().is_decode());
    let dead = cache.dead_letters(&opts, 10).unwrap();
    assert_eq!(dead[0].deliveries, Some(1));
    let error = dead[0].last_error.as_deref().expect("the decode error");
    assert!(error.contains("500000000000000"), "{error}");
    // Moved by dead_letter_undecodable, never leased.
    let q = PullOptions::new().prefix("q");
    assert!(cache.dead_letter_undecodable::<i64>(&q).unwrap().is_some());
    let q_dead = cache
        .dead_letters(&LeaseOptions::new(Duration::from_secs(1)).prefix("q"), 10)
        .unwrap();
    assert_eq!(q_dead[0].deliveries, None, "never delivered");
    assert!(
        q_dead[0]
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("q-500000000000000"))
    );
}

#[test]
fn listing_reads_only_and_requeue_and_clear_forget() {
    let dir = tempfile::tempdir().unwrap();
    let d: Deque<String> = Deque::open(dir.path()).unwrap();
    let opts = LeaseOptions::new(Duration::from_secs(60)).max_deliveries(1);
    for n in 0..5 {
        d.push_back(&format!("job {n}")).unwrap();
        let job = d.lease_with(&opts).unwrap().expect("queued");
        job.nack_with(&NackOptions::new().error(format!("error {n}"))).unwrap();
    }
    // Pushed onto the dead-letter queue by hand: nothing known of it.
    d.cache()
        .push_with("by hand", &PushOptions::new().prefix("dead-letter"))
        .unwrap();
    let ro = Cache::open_read_only(dir.path()).unwrap();
    let listed = ro.dead_letters(&opts, 4).unwrap();
    assert_eq!(listed.len(), 4, "limited");
    let errors: Vec<_> = ro
        .dead_letters(&opts, 100)
        .unwrap()
        .into_iter()
        .map(|d| d.last_error)
        .collect();
    assert_eq!(
        errors,
        [
            Some("error 0".to_string()),
            Some("error 1".into()),
            Some("error 2".into()),
            Some("error 3".into()),
            Some("error 4".into()),
            None
        ]
    );
    assert_eq!(
        d.len().unwrap(),
        6,
        "listing took nothing (a deque's len counts its dead letters)"
    );
    // Popped by the front: the rest keep theirs.
    assert_eq!(d.pop_dead_letter(&opts).unwrap().as_deref(), Some("job 0"));
    assert_eq!(ro.dead_letters(&opts, 100).unwrap().len(), 5);
    // Requeued: back in the queue with a fresh count; a later dead letter
    // under a reused key does not inherit an old record.
    assert_eq!(d.requeue_dead_letters(&opts).unwrap(), 5);
    assert!(ro.dead_letters(&opts, 100).unwrap().is_empty());
    let job = d.lease_with(&opts).unwrap().expect("requeued");
    assert_eq!(job.deliveries(), 1);
    assert!(job.nack(Side::Back).unwrap());
    let again = ro.dead_letters(&opts, 100).unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!((again[0].deliveries, again[0].last_error.as_deref()), (Some(1), None));
    d.clear().unwrap();
    assert!(ro.dead_letters(&opts, 100).unwrap().is_empty());
}

#[test]
fn deque_dead_letters_refuse_a_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let d: Deque<String> = Deque::open(dir.path()).unwrap();
    let opts = LeaseOptions::new(Duration::from_secs(60)).prefix("other");
    assert!(d.dead_letters(&opts, 10).is_err());
}

#[test]
fn python_diskcache_takes_dead_letters_and_opens_the_directory() {
    let Some(python) = pyenv::python("the python-diskcache dead-letter interop test") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path()).unwrap();
    cache.push("poison").unwrap();
    let opts = LeaseOptions::new(Duration::from_secs(60)).max_deliveries(1);
    let job = cache.lease::<String>(&opts).unwrap().expect("queued");
    job.nack_with(&NackOptions::new().error("bad input")).unwrap();
    assert_eq!(cache.dead_letters(&opts, 10).unwrap().len(), 1);
    drop(cache);
    let out = pyenv::run_code(
        &python,
        "import sys, diskcache\n\
         c = diskcache.Cache(directory=sys.argv[1])\n\
         key, value = c.pull(prefix='dead-letter')\n\
         print(key, value)\n",
        dir.path(),
    );
    assert_eq!(out.trim(), "dead-letter-500000000000000 poison");
    // The record left behind is stale: its item is gone, nothing is listed.
    let cache = Cache::open(dir.path()).unwrap();
    assert!(cache.dead_letters(&opts, 10).unwrap().is_empty());
    cache
        .push_with("fresh", &PushOptions::new().prefix("dead-letter"))
        .unwrap();
    let listed = cache.dead_letters(&opts, 10).unwrap();
    assert_eq!((listed.len(), listed[0].last_error.as_deref()), (1, None));
}
