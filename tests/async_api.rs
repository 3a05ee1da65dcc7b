//! The async handles (`diskq::tokio`): the same operations as the sync
//! ones, on one directory with them, `Send` futures, and awaited waits
//! woken by sync pushes, async pushes and leases that run out.
#![cfg(feature = "tokio")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use diskq::tokio::{Cache, Deque, Index};
use diskq::{LeaseOptions, PullOptions, PushOptions, Side};

const LONG: Duration = Duration::from_secs(60);

fn assert_send<F: std::future::Future + Send>(f: F) -> F {
    f
}

#[tokio::test]
async fn deque_operations_match_the_sync_deque() {
    let dir = tempfile::tempdir().unwrap();
    let jobs: Deque<String> = Deque::open(dir.path()).await.unwrap();
    jobs.extend(["b", "c"]).await.unwrap();
    jobs.push_front("a").await.unwrap();
    jobs.push_back(&"d".to_string()).await.unwrap();
    assert_eq!(jobs.len().await.unwrap(), 4);
    assert_eq!(jobs.front().await.unwrap().as_deref(), Some("a"));
    assert_eq!(jobs.back().await.unwrap().as_deref(), Some("d"));
    assert_eq!(jobs.get(1).await.unwrap().as_deref(), Some("b"));
    assert_eq!(jobs.pop_front().await.unwrap().as_deref(), Some("a"));
    assert_eq!(jobs.pop_back().await.unwrap().as_deref(), Some("d"));
    // The sync deque on the directory sees the same queue.
    let sync: diskq::Deque<String> = diskq::Deque::open(dir.path()).unwrap();
    assert_eq!(sync.pop_front().unwrap().as_deref(), Some("b"));
    sync.push_back("e").unwrap();
    assert_eq!(jobs.pop_front_many(5).await.unwrap(), ["c", "e"]);
    assert!(jobs.is_empty().await.unwrap());
    assert_eq!(jobs.pop_front_timeout(Duration::from_millis(20)).await.unwrap(), None);
    let bounded = jobs.clone().with_maxlen(2).await.unwrap();
    bounded.extend(["1", "2", "3"]).await.unwrap();
    assert_eq!(bounded.pop_back_many(5).await.unwrap(), ["3", "2"]);
    jobs.push_back("x").await.unwrap();
    assert_eq!(jobs.clear().await.unwrap(), 1);
}

#[tokio::test]
async fn futures_are_send() {
    let dir = tempfile::tempdir().unwrap();
    let jobs: Deque<u64> = Deque::open(dir.path()).await.unwrap();
    assert_send(jobs.push_back(&1)).await.unwrap();
    assert_send(jobs.pop_front_timeout(LONG)).await.unwrap();
    assert_send(jobs.lease_timeout(&LeaseOptions::new(LONG), Duration::ZERO))
        .await
        .unwrap();
    let cache = jobs.cache();
    assert_send(cache.get::<u64>("k")).await.unwrap();
    assert_send(cache.wait_for_queued(None, Duration::ZERO)).await.unwrap();
    let index: Index<String, u64> = Index::from_cache(cache);
    assert_send(index.pull_timeout(&PullOptions::new(), Duration::ZERO))
        .await
        .unwrap();
    // And they run inside tokio::spawn on a multi-threaded runtime.
    let popped = tokio::spawn(async move { jobs.pop_front_timeout(LONG).await });
    diskq::Deque::<u64>::open(dir.path()).unwrap().push_back(&7).unwrap();
    assert_eq!(popped.await.unwrap().unwrap(), Some(7));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_pop_is_woken_by_a_sync_push_from_a_thread() {
    let dir = tempfile::tempdir().unwrap();
    let jobs: Deque<u64> = Deque::open(dir.path()).await.unwrap();
    let waiters: Vec<_> = (0..8)
        .map(|_| {
            let jobs = jobs.clone();
            tokio::spawn(async move { jobs.pop_front_timeout(LONG).await.unwrap() })
        })
        .collect();
    let path = dir.path().to_path_buf();
    std::thread::spawn(move || {
        let sync = diskq::Deque::<u64>::open(&path).unwrap();
        for n in 0..8 {
            sync.push_back(&n).unwrap();
        }
    })
    .join()
    .unwrap();
    let mut got = Vec::new();
    for w in waiters {
        got.push(w.await.unwrap().expect("an item within a minute"));
    }
    got.sort_unstable();
    assert_eq!(got, (0..8).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_lease_that_runs_out_wakes_a_waiting_lease() {
    let dir = tempfile::tempdir().unwrap();
    let jobs: Deque<String> = Deque::open(dir.path()).await.unwrap();
    jobs.push_back("job").await.unwrap();
    let first = jobs.lease(Duration::from_millis(50)).await.unwrap().expect("the job");
    assert_eq!(first.deliveries(), 1);
    // Nothing pushes: only the lease's end can feed this wait.
    let again = jobs
        .lease_timeout(&LeaseOptions::new(LONG), LONG)
        .await
        .unwrap()
        .expect("the job again once the first lease ran out");
    assert_eq!(again.value(), "job");
    assert_eq!(again.deliveries(), 2);
    assert!(!first.ack().await.unwrap(), "the first lease was lost");
    assert!(again.nack(Side::Back).await.unwrap());
    let mut third = jobs.lease(LONG).await.unwrap().expect("nacked back");
    let running = jobs.running_leases(10).await.unwrap();
    assert_eq!(running.len(), 1);
    assert_eq!((running[0].deadline, running[0].deliveries), (third.deadline(), 3));
    assert_eq!(jobs.cache().running_leases(None, 10).await.unwrap(), running);
    assert!(third.renew(LONG).await.unwrap());
    assert!(third.ack().await.unwrap());
    assert!(jobs.is_empty().await.unwrap());
    let prefixed = LeaseOptions::new(LONG).prefix("other");
    assert!(
        jobs.lease_timeout(&prefixed, LONG)
            .await
            .unwrap_err()
            .to_string()
            .contains("no prefix")
    );
}

#[tokio::test]
async fn cache_and_index_operations() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path()).await.unwrap();
    cache.set("a", "x").await.unwrap();
    assert_eq!(cache.get::<String>("a").await.unwrap().as_deref(), Some("x"));
    assert!(!cache.add("a", "y").await.unwrap());
    assert_eq!(cache.incr("n", 2, 0).await.unwrap(), 2);
    assert_eq!(cache.decr("n", 1, 0).await.unwrap(), 1);
    assert!(cache.contains_key("a").await.unwrap());
    assert!(cache.touch("a", Some(LONG)).await.unwrap());
    assert_eq!(cache.pop::<String>("a").await.unwrap().as_deref(), Some("x"));
    assert!(cache.delete("n").await.unwrap());
    cache.set_bytes("b", b"raw").await.unwrap();
    assert_eq!(cache.get_bytes("b").await.unwrap().as_deref(), Some(&b"raw"[..]));
    assert_eq!(cache.len().await.unwrap(), 1);
    assert_eq!(cache.clear().await.unwrap(), 1);
    assert!(cache.is_empty().await.unwrap());

    let jobs = PushOptions::new().prefix("jobs");
    let pull = PullOptions::new().prefix("jobs");
    let waiter = {
        let cache = cache.clone();
        tokio::spawn(async move { cache.wait_for_queued(Some("jobs"), LONG).await.unwrap() })
    };
    cache.push_with("resize", &jobs).await.unwrap();
    assert!(waiter.await.unwrap());
    let (_, job) = cache.pull_timeout::<String>(&pull, LONG).await.unwrap().unwrap();
    assert_eq!(job, "resize");
    assert_eq!(
        cache
            .pull_timeout::<String>(&pull, Duration::from_millis(10))
            .await
            .unwrap(),
        None
    );
    let n = cache.transact(|c| c.incr("t", 1, 0)).await.unwrap();
    assert_eq!(n, 1);

    let index: Index<String, u64> = Index::open(dir.path().join("index")).await.unwrap();
    index.insert("one", &1).await.unwrap();
    index.extend([(&"two".to_string(), &2)]).await.unwrap();
    assert_eq!(index.get("one").await.unwrap(), Some(1));
    assert_eq!(index.last().await.unwrap(), Some(("two".into(), 2)));
    assert_eq!(index.get_or_insert_with("three", || 3).await.unwrap(), 3);
    assert_eq!(index.pop_first().await.unwrap(), Some(("one".into(), 1)));
    assert_eq!(index.remove("two").await.unwrap(), Some(2));
    assert_eq!(index.len().await.unwrap(), 1);
    index.push(&9).await.unwrap();
    let lease = index.lease_with(&LeaseOptions::new(LONG)).await.unwrap().unwrap();
    assert_eq!(*lease.value(), 9);
    assert!(lease.ack().await.unwrap());
}

#[tokio::test]
async fn an_expired_deadline_still_looks_once() {
    let dir = tempfile::tempdir().unwrap();
    let jobs: Deque<u64> = Deque::open(dir.path()).await.unwrap();
    jobs.push_back(&1).await.unwrap();
    assert_eq!(jobs.pop_front_timeout(Duration::ZERO).await.unwrap(), Some(1));
    assert_eq!(jobs.pop_front_timeout(Duration::ZERO).await.unwrap(), None);
    // A wait too long for the clock is "as long as possible", not a panic.
    jobs.push_back(&2).await.unwrap();
    assert_eq!(jobs.pop_front_timeout(Duration::MAX).await.unwrap(), Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_options_through_the_async_handles() {
    let dir = tempfile::tempdir().unwrap();
    let jobs: Deque<String> = Deque::open(dir.path()).await.unwrap();
    // A delayed item: a waiting pop gets it once due, not before.
    let delay = Duration::from_millis(200);
    let pushed = std::time::Instant::now();
    jobs.push_back_delayed("later", delay).await.unwrap();
    assert_eq!(jobs.pop_front().await.unwrap(), None, "not due yet");
    assert_eq!(jobs.backlog().await.unwrap().scheduled, 1);
    // The wait ends when the item is due, not at its timeout (a minute):
    // nothing else wakes it.
    let due = tokio::time::timeout(LONG / 2, jobs.pop_front_timeout(LONG)).await;
    let due = due.expect("a delayed item that came due did not end the wait");
    assert_eq!(due.unwrap().as_deref(), Some("later"));
    assert!(pushed.elapsed() >= delay, "taken before it was due");
    // The same for a waiting lease.
    jobs.push_back_delayed("lease me later", delay).await.unwrap();
    let lease = tokio::time::timeout(LONG / 2, jobs.lease_timeout(&diskq::LeaseOptions::new(LONG), LONG)).await;
    let lease = lease.expect("a delayed item that came due did not end the lease's wait");
    let lease = lease.unwrap().unwrap();
    assert_eq!(lease.value(), "lease me later");
    assert!(lease.ack().await.unwrap());
    // Priorities and unique keys.
    jobs.push_back("plain").await.unwrap();
    assert!(
        jobs.push_back_with("urgent", &PushOptions::new().priority(5))
            .await
            .unwrap()
    );
    let once = PushOptions::new().unique_key("report");
    assert!(jobs.push_back_with("report", &once).await.unwrap());
    assert!(!jobs.push_back_with("report", &once).await.unwrap(), "already queued");
    assert_eq!(jobs.pop_front().await.unwrap().as_deref(), Some("urgent"));
    // A nack with a delay and a reason; the counters saw it all.
    let lease = jobs.lease(LONG).await.unwrap().unwrap();
    assert_eq!(lease.value(), "plain");
    let nack = diskq::NackOptions::new()
        .delay(Duration::from_secs(3600))
        .error("try later");
    assert!(lease.nack_with(&nack).await.unwrap());
    let stats = jobs.stats().await.unwrap();
    assert_eq!((stats.pushed, stats.nacked), (5, 1), "{stats:?}");
    let cache = jobs.cache();
    assert!(
        cache
            .push_job("x", &PushOptions::new().prefix("q").priority(1))
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(cache.queue_stats(Some("q")).await.unwrap().pushed, 1);
    assert_eq!(cache.all_queue_stats().await.unwrap().len(), 2);
}
