//! Queue counters and job options on PostgreSQL: the counters count as on a
//! directory; delayed, prioritized and unique pushes and delayed nacks, which
//! this backend does not keep yet, fail with `Error::Unsupported` and change
//! nothing.
#![cfg(feature = "postgres")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/pg.rs"]
mod pg;

use std::time::Duration;

use diskq::{Deque, Error, NackOptions, PushOptions, Side};

fn unsupported<T: std::fmt::Debug>(r: Result<T, Error>) {
    assert!(
        matches!(
            r,
            Err(Error::Unsupported {
                backend: "PostgreSQL",
                ..
            })
        ),
        "{r:?}"
    );
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
    let stats = jobs.stats().unwrap();
    assert_eq!(
        (stats.pushed, stats.popped, stats.leased, stats.nacked, stats.acked),
        (3, 1, 2, 1, 1),
        "{stats:?}"
    );
    let all = jobs.cache().all_queue_stats().unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].0, "");
}

#[test]
fn job_options_are_refused_and_change_nothing() {
    let jobs: Deque<String> = Deque::open(pg::location("jobs")).unwrap();
    jobs.push_back("plain").unwrap();
    unsupported(jobs.push_back_delayed("later", Duration::from_secs(60)));
    unsupported(jobs.push_back_with("urgent", &PushOptions::new().priority(3)));
    unsupported(jobs.push_back_with("once", &PushOptions::new().unique_key("k")));
    // Plain options still work.
    assert!(jobs.push_back_with("also plain", &PushOptions::new()).unwrap());
    let lease = jobs.lease(Duration::from_secs(30)).unwrap().unwrap();
    unsupported(lease.nack_with(&NackOptions::new().delay(Duration::from_secs(60))));
    // The refused nack changed nothing: the lease runs on; the queue holds
    // exactly what the plain pushes put there.
    let backlog = jobs.backlog().unwrap();
    assert_eq!((backlog.queued, backlog.leased, backlog.scheduled), (1, 1, 0));
    assert_eq!(jobs.pop_front().unwrap().as_deref(), Some("also plain"));
}
