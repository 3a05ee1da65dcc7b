//! Per-queue counters: exact, persisted, per queue, and rolled back with
//! the transaction that counted.

use std::time::{Duration, SystemTime};

use diskq::{Cache, Deque, LeaseOptions, PullOptions, PushOptions, QueueStats, Side};

fn at(clock: &std::sync::Arc<std::sync::atomic::AtomicU64>) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(clock.load(std::sync::atomic::Ordering::SeqCst))
}

#[test]
fn every_queue_operation_counts_once_in_its_own_queue() {
    let dir = tempfile::tempdir().unwrap();
    let clock = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(1_000));
    let c = clock.clone();
    let cache = Cache::builder().clock(move || at(&c)).open(dir.path()).unwrap();
    let jobs = PushOptions::new().prefix("jobs");
    cache.push_many(["a", "b", "c", "d"], &jobs).unwrap();
    cache.push_with("e", &jobs).unwrap();
    assert_eq!(
        cache
            .pull_many::<String>(2, &PullOptions::new().prefix("jobs"))
            .unwrap()
            .len(),
        2
    );
    let opts = LeaseOptions::new(Duration::from_secs(10))
        .prefix("jobs")
        .max_deliveries(2);
    let first = cache.lease::<String>(&opts).unwrap().unwrap();
    assert!(first.ack().unwrap());
    let second = cache.lease::<String>(&opts).unwrap().unwrap();
    assert!(second.nack(Side::Back).unwrap());
    let _dropped = cache.lease::<String>(&opts).unwrap().unwrap(); // runs out
    clock.fetch_add(11, std::sync::atomic::Ordering::SeqCst);
    // The run-out lease is found and redelivered (its second delivery).
    let again = cache.lease::<String>(&opts).unwrap().unwrap();
    assert_eq!(again.deliveries(), 2);
    assert!(again.nack(Side::Front).unwrap()); // its second: dead letter

    let stats = cache.queue_stats(Some("jobs")).unwrap();
    let mut want = QueueStats::default();
    (want.pushed, want.popped, want.leased, want.acked) = (5, 2, 4, 1);
    (want.nacked, want.redelivered, want.dead_lettered) = (2, 1, 1);
    assert_eq!(stats, want);
    assert_eq!(cache.queue_stats(None).unwrap(), QueueStats::default());
    assert_eq!(
        cache.queue_stats(Some("job")).unwrap(),
        QueueStats::default(),
        "no prefix match"
    );
    let all = cache.all_queue_stats().unwrap();
    assert_eq!(all, vec![("jobs".to_string(), want)]);
}

#[test]
fn counters_survive_reopening_and_are_shared_by_handles() {
    let dir = tempfile::tempdir().unwrap();
    {
        let d: Deque<u32> = Deque::open(dir.path()).unwrap();
        d.extend(&[1, 2, 3]).unwrap();
        d.pop_front().unwrap();
    }
    let other: Deque<u32> = Deque::open(dir.path()).unwrap();
    other.push_back(&4).unwrap();
    let stats = other.stats().unwrap();
    assert_eq!((stats.pushed, stats.popped), (4, 1));
    // A pop of an empty queue counts nothing.
    other.pop_front_many(10).unwrap();
    other.pop_front().unwrap();
    assert_eq!(other.stats().unwrap().popped, 4);
}

#[test]
fn a_rolled_back_transaction_counts_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path()).unwrap();
    let failed: Result<(), diskq::Error> = cache.transact(|c| {
        c.push(&1)?;
        c.push(&2)?;
        Err(diskq::Error::InvalidUse("roll back".into()))
    });
    assert!(failed.is_err());
    assert_eq!(cache.queue_stats(None).unwrap().pushed, 0);
    assert!(cache.is_empty().unwrap());
}

#[test]
fn queue_names_that_extend_each_other_keep_their_own_counts() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path()).unwrap();
    for (name, n) in [("a", 1), ("a:b", 2), ("a:b:c", 3), ("ab", 4)] {
        let values: Vec<u32> = (0..n).collect();
        cache.push_many(&values, &PushOptions::new().prefix(name)).unwrap();
    }
    let all: Vec<(String, u64)> = cache
        .all_queue_stats()
        .unwrap()
        .into_iter()
        .map(|(q, s)| (q, s.pushed))
        .collect();
    let want = [("a", 1), ("a:b", 2), ("a:b:c", 3), ("ab", 4)].map(|(q, n)| (q.to_string(), n));
    assert_eq!(all, want);
    assert_eq!(cache.queue_stats(Some("a:b")).unwrap().pushed, 2);
}

#[test]
fn pops_count_right_while_the_queue_has_jobs_and_after() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path()).unwrap();
    let q = PushOptions::new().prefix("q");
    let from = PullOptions::new().prefix("q");
    cache.push_with(&1, &q).unwrap();
    assert_eq!(cache.pull_with::<u32>(&from).unwrap().map(|(_, v)| v), Some(1));
    cache.push_with(&2, &q).unwrap();
    cache.push_with(&3, &q.clone().priority(1)).unwrap();
    cache
        .push_with(&4, &q.clone().delay(Duration::from_secs(3600)))
        .unwrap();
    assert_eq!(cache.queue_stats(Some("q")).unwrap().popped, 1);
    // The job first, although a plain pop looks first.
    assert_eq!(cache.pull_with::<u32>(&from).unwrap().map(|(_, v)| v), Some(3));
    assert_eq!(cache.pull_with::<u32>(&from).unwrap().map(|(_, v)| v), Some(2));
    assert_eq!(
        cache.pull_with::<u32>(&from).unwrap(),
        None,
        "the delayed one is not due"
    );
    assert_eq!(cache.queue_stats(Some("q")).unwrap().popped, 3);
    cache.clear().unwrap();
    cache.push_with(&5, &q).unwrap();
    assert_eq!(cache.pull_with::<u32>(&from).unwrap().map(|(_, v)| v), Some(5));
    let stats = cache.queue_stats(Some("q")).unwrap();
    assert_eq!((stats.pushed, stats.popped, stats.scheduled), (5, 4, 1));
}
