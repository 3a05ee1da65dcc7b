//! Jobs on PostgreSQL: delayed items, priorities, unique keys, retry with
//! backoff and the queue counters, as on a directory. Each scenario of
//! `support/job_scenarios.rs` runs on a directory and on a PostgreSQL
//! schema in one test, with a test clock (the PostgreSQL backend reads
//! time through the cache's clock too); the model of `proptest_jobs.rs`
//! runs on PostgreSQL; unique pushes race from 4 handles (each its own
//! connections, as 4 processes would be) and consumers race for jobs; a
//! schema made before the job table gets it on open. (`crash_jobs.rs` and
//! `multiprocess_jobs.rs` also run on PostgreSQL with the `postgres`
//! feature: a killed client, unique pushes from 4 processes.)
#![cfg(feature = "postgres")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/pg.rs"]
mod pg;

#[path = "support/job_scenarios.rs"]
mod scenarios;

#[path = "support/jobs_model.rs"]
mod model;

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Barrier, Mutex};
use std::time::Duration;

use diskq::{Cache, Deque, LeaseOptions, NackOptions, PullOptions, PushOptions, Side};
use proptest::prelude::*;

/// Runs `scenario` on a fresh directory, then on a fresh PostgreSQL
/// schema: the same steps, the same answers.
fn on_both(name: &str, scenario: fn(&Cache, &AtomicU64)) {
    let dir = tempfile::tempdir().unwrap();
    let (cache, clock) = scenarios::clocked(dir.path());
    scenario(&cache, &clock);
    let (cache, clock) = scenarios::clocked(pg::location(name));
    scenario(&cache, &clock);
}

#[test]
fn delayed_items_stay_invisible_until_due_and_count_as_scheduled() {
    on_both(
        "delayed",
        scenarios::delayed_items_stay_invisible_until_due_and_count_as_scheduled,
    );
}

#[test]
fn priorities_go_first_and_fifo_within_one() {
    on_both("priorities", scenarios::priorities_go_first_and_fifo_within_one);
}

#[test]
fn a_unique_key_is_held_while_queued_scheduled_or_leased() {
    on_both(
        "unique",
        scenarios::a_unique_key_is_held_while_queued_scheduled_or_leased,
    );
}

#[test]
fn nack_with_a_delay_and_an_error_comes_back_later_with_them() {
    on_both(
        "nack_with",
        scenarios::nack_with_a_delay_and_an_error_comes_back_later_with_them,
    );
}

#[test]
fn a_retry_policy_delays_nacks_and_leases_that_ran_out() {
    on_both("retry", scenarios::a_retry_policy_delays_nacks_and_leases_that_ran_out);
}

#[test]
fn expired_and_cleared_jobs_go_and_deque_len_counts_jobs() {
    on_both(
        "cleared",
        scenarios::expired_and_cleared_jobs_go_and_deque_len_counts_jobs,
    );
}

#[test]
fn a_job_lease_resumes_by_id() {
    on_both("resume", scenarios::a_job_lease_resumes_by_id);
}

#[test]
fn a_delayed_item_wakes_a_blocked_waiter_when_due() {
    // The fallback poll is 30 s: only the due time ends the waits early.
    scenarios::a_delayed_item_wakes_a_blocked_waiter_when_due(std::path::Path::new(&pg::location("wake")));
}

proptest! {
    // Each case a fresh schema; fewer cases than on a directory (each step
    // is a few round trips to the server).
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn a_queue_with_jobs_behaves_as_its_model_on_postgres(ops in proptest::collection::vec(model::op(), 1..70)) {
        let (cache, clock) = model::clocked(pg::location("model"));
        model::check(&cache, &clock, ops)?;
    }
}

#[test]
fn counters_count_on_postgres() {
    let jobs: Deque<String> = Deque::open(pg::location("counters")).unwrap();
    jobs.extend(["a", "b", "c"]).unwrap();
    assert_eq!(jobs.pop_front().unwrap().as_deref(), Some("a"));
    let lease = jobs.lease(Duration::from_secs(30)).unwrap().unwrap();
    assert!(lease.nack(Side::Back).unwrap());
    let lease = jobs.lease(Duration::from_secs(30)).unwrap().unwrap();
    assert!(lease.ack().unwrap());
    // Jobs count in the same rows.
    jobs.push_back_delayed("later", Duration::from_secs(3600)).unwrap();
    assert!(jobs.push_back_with("urgent", &PushOptions::new().priority(3)).unwrap());
    assert_eq!(jobs.pop_front().unwrap().as_deref(), Some("urgent"));
    let lease = jobs.lease(Duration::from_secs(30)).unwrap().unwrap();
    assert_eq!(lease.value(), "b", "nacked to the back before");
    assert!(
        lease
            .nack_with(&NackOptions::new().delay(Duration::from_secs(60)).error("busy"))
            .unwrap()
    );
    let stats = jobs.stats().unwrap();
    assert_eq!(
        (
            stats.pushed,
            stats.popped,
            stats.leased,
            stats.nacked,
            stats.acked,
            stats.scheduled
        ),
        (5, 2, 3, 2, 1, 2),
        "{stats:?}"
    );
    let backlog = jobs.backlog().unwrap();
    assert_eq!((backlog.queued, backlog.leased, backlog.scheduled), (0, 0, 2));
    let all = jobs.cache().all_queue_stats().unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].0, "");
}

const KEYS: usize = 200;
const PUSHERS: usize = 4;

#[test]
fn unique_pushes_from_four_handles_at_once_store_one_item_per_key() {
    let loc = pg::location("unique_race");
    let start = Arc::new(Barrier::new(PUSHERS));
    let pushers: Vec<_> = (0..PUSHERS)
        .map(|id| {
            let (loc, start) = (loc.clone(), start.clone());
            std::thread::spawn(move || {
                // A handle of its own: its own connections, as a process's.
                let cache = Cache::builder().timeout(Duration::from_secs(60)).open(&loc).unwrap();
                start.wait();
                scenarios::push_unique_keys(&cache, id, KEYS)
            })
        })
        .collect();
    let mut wins: HashMap<usize, usize> = HashMap::new();
    for p in pushers {
        for k in p.join().unwrap() {
            *wins.entry(k).or_default() += 1;
        }
    }
    assert_eq!(wins.len(), KEYS, "every key was pushed by someone");
    assert!(wins.values().all(|&n| n == 1), "one successful push per key: {wins:?}");
    let cache = Cache::open(&loc).unwrap();
    assert_eq!(cache.backlog(Some("jobs")).unwrap().queued, KEYS);
    let stored = cache
        .pull_many::<String>(KEYS * PUSHERS, &PullOptions::new().prefix("jobs"))
        .unwrap();
    assert_eq!(stored.len(), KEYS, "one item per key");
    let mut seen: Vec<usize> = stored
        .iter()
        .map(|(_, v)| v.split(' ').next().unwrap().parse().unwrap())
        .collect();
    let priorities: Vec<usize> = seen.iter().map(|k| k % 3).collect();
    assert!(
        priorities.windows(2).all(|w| w[0] >= w[1]),
        "higher first: {priorities:?}"
    );
    seen.sort_unstable();
    assert_eq!(seen, (0..KEYS).collect::<Vec<_>>());
    let stats = cache.queue_stats(Some("jobs")).unwrap();
    assert_eq!((stats.pushed, stats.popped), (KEYS as u64, KEYS as u64));
    // Every key is free again.
    let again = PushOptions::new().prefix("jobs").unique_key("key-0");
    assert!(cache.push_job("again", &again).unwrap().is_some());
}

#[test]
fn consumers_racing_for_jobs_take_each_once() {
    const ITEMS: usize = 300;
    let loc = pg::location("job_race");
    let cache = Cache::open(&loc).unwrap();
    // Jobs of three priorities and plain items, mixed.
    for i in 0..ITEMS {
        let opts = PushOptions::new().prefix("q");
        let opts = match i % 4 {
            0 => opts,
            n => opts.priority(n as i32 - 2),
        };
        cache.push_with(&i, &opts).unwrap();
    }
    let taken = Arc::new(Mutex::new(Vec::new()));
    let start = Arc::new(Barrier::new(4));
    let consumers: Vec<_> = (0..4)
        .map(|id| {
            let (loc, taken, start) = (loc.clone(), taken.clone(), start.clone());
            std::thread::spawn(move || {
                let cache = Cache::builder().timeout(Duration::from_secs(60)).open(&loc).unwrap();
                let lease = LeaseOptions::new(Duration::from_secs(600)).prefix("q");
                let pull = PullOptions::new().prefix("q");
                start.wait();
                loop {
                    // Half the consumers pop, half lease and ack.
                    let got = if id % 2 == 0 {
                        cache.pull_with::<usize>(&pull).unwrap().map(|(_, v)| v)
                    } else {
                        cache.lease::<usize>(&lease).unwrap().map(|l| {
                            let v = *l.value();
                            assert!(l.ack().unwrap(), "the lease was ours");
                            v
                        })
                    };
                    match got {
                        Some(v) => taken.lock().unwrap().push(v),
                        None => return,
                    }
                }
            })
        })
        .collect();
    for c in consumers {
        c.join().unwrap();
    }
    let mut taken = taken.lock().unwrap().clone();
    taken.sort_unstable();
    assert_eq!(taken, (0..ITEMS).collect::<Vec<_>>(), "each exactly once");
    assert!(cache.backlog(Some("q")).unwrap().is_empty());
}

#[test]
fn plain_queues_skip_the_job_table_and_a_job_makes_pops_look_at_it() {
    let cache = Cache::open(pg::location("plain_then_jobs")).unwrap();
    cache.push_many(["a", "b"], &PushOptions::new()).unwrap();
    assert_eq!(scenarios::pull(&cache).as_deref(), Some("a"));
    // Another handle (another process) pushes a job that must go first.
    let other = Cache::open(cache.directory()).unwrap();
    other.push_with("urgent", &PushOptions::new().priority(1)).unwrap();
    assert_eq!(scenarios::pull(&cache).as_deref(), Some("urgent"));
    assert_eq!(scenarios::pull(&cache).as_deref(), Some("b"));
    assert_eq!(scenarios::pull(&cache), None);
    assert_eq!(cache.queue_stats(None).unwrap().popped, 3);
}

/// The `psql` that reaches the test server.
fn psql(sql: &str) {
    let server = pg::server();
    let bin = match &server.cluster {
        Some(c) => c.bin.join("psql"),
        None => "psql".into(),
    };
    let out = std::process::Command::new(bin)
        .arg(&server.url)
        .args(["-v", "ON_ERROR_STOP=1", "-q", "-c", sql])
        .output()
        .expect("run psql");
    assert!(out.status.success(), "psql: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn a_schema_made_before_jobs_gets_the_job_table_on_open() {
    let loc = pg::location("old_schema");
    let schema = loc.rsplit_once('#').unwrap().1.to_owned();
    {
        let cache = Cache::open(&loc).unwrap();
        cache.push("plain").unwrap();
    }
    // As a schema of the release before jobs: no job table (nor the
    // dead-letter records' table, which came later).
    psql(&format!(
        "DROP TABLE \"{schema}\".diskq_job; DROP TABLE \"{schema}\".diskq_dead_letter"
    ));
    let cache = Cache::open(&loc).unwrap();
    assert!(
        cache
            .push_job("later", &PushOptions::new().priority(2))
            .unwrap()
            .is_some()
    );
    assert_eq!(cache.backlog(None).unwrap().queued, 2);
    assert_eq!(scenarios::pull(&cache).as_deref(), Some("later"));
    assert_eq!(scenarios::pull(&cache).as_deref(), Some("plain"));
}

#[test]
fn a_schema_made_before_dead_letter_records_gets_their_table_on_open() {
    let loc = pg::location("old_dead_letters");
    let schema = loc.rsplit_once('#').unwrap().1.to_owned();
    let opts = LeaseOptions::new(Duration::from_secs(60)).max_deliveries(1);
    {
        let cache = Cache::open(&loc).unwrap();
        cache.push("first").unwrap();
        let lease = cache.lease::<String>(&opts).unwrap().expect("queued");
        assert!(lease.nack_with(&NackOptions::new().error("old")).unwrap());
    }
    // As a schema of the release before the records: no table, and the
    // dead letter it moved has no record.
    psql(&format!("DROP TABLE \"{schema}\".diskq_dead_letter"));
    let cache = Cache::open(&loc).unwrap();
    let dead = cache.dead_letters(&opts, 10).unwrap();
    assert_eq!((dead.len(), dead[0].deliveries), (1, None));
    cache.push("second").unwrap();
    let lease = cache.lease::<String>(&opts).unwrap().expect("queued");
    assert!(lease.nack_with(&NackOptions::new().error("new")).unwrap());
    let dead = cache.dead_letters(&opts, 10).unwrap();
    assert_eq!(dead.len(), 2);
    assert_eq!(
        (dead[1].deliveries, dead[1].last_error.as_deref()),
        (Some(1), Some("new"))
    );
}

/// An awaited wait (no thread held) wakes when a delayed item is due too,
/// on both backends; the fallback poll is 30 s.
#[cfg(feature = "tokio")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_awaited_wait_wakes_when_a_delayed_item_is_due() {
    let dir = tempfile::tempdir().unwrap();
    for location in [dir.path().to_string_lossy().into_owned(), pg::location("async_wake")] {
        let sync = Cache::builder()
            .wake_poll(Duration::from_secs(30))
            .open(&location)
            .unwrap();
        let cache = diskq::tokio::Cache::from(sync.clone());
        let deque = diskq::tokio::Deque::<String>::from_cache(cache.clone());
        let delay = Duration::from_millis(200);
        let soon = PushOptions::new().delay(delay);
        let wait = Duration::from_secs(20);
        let start = std::time::Instant::now();
        sync.push_with("pulled", &soon).unwrap();
        let got = cache.pull_timeout::<String>(&PullOptions::new(), wait).await.unwrap();
        assert_eq!(got.map(|(_, v)| v).as_deref(), Some("pulled"));
        let waited = start.elapsed();
        // Not before it was due (the clocks may differ by a hair), and
        // long before the fallback poll.
        assert!(
            waited >= delay - Duration::from_millis(5) && waited < Duration::from_secs(10),
            "{location}: {waited:?}"
        );
        sync.push_with("popped", &soon).unwrap();
        assert_eq!(deque.pop_front_timeout(wait).await.unwrap().as_deref(), Some("popped"));
        sync.push_with("leased", &soon).unwrap();
        let lease = cache
            .lease_timeout::<String>(&LeaseOptions::new(Duration::from_secs(60)), wait)
            .await
            .unwrap()
            .unwrap();
        assert!(lease.ack().await.unwrap());
        sync.push_with("queued", &soon).unwrap();
        let start = std::time::Instant::now();
        assert!(cache.wait_for_queued(None, wait).await.unwrap());
        assert!(start.elapsed() < Duration::from_secs(10), "{location}");
    }
}
