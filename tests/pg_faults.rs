//! The PostgreSQL server restarting under a worker (`pg_ctl restart`): the
//! worker gets clear errors, its connections are replaced, it finishes, and
//! nothing acknowledged is lost. Its own test binary: the restart would cut
//! the other tests' connections.
#![cfg(feature = "postgres")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use diskq::{Deque, Error, LeaseOptions};

#[path = "support/pg.rs"]
mod pg;

const ITEMS: i64 = 300;

#[test]
fn a_server_restart_mid_work_loses_nothing() {
    let Some(cluster) = &pg::server().cluster else {
        eprintln!("skipped: DISKQ_TEST_PG_URL names a server this test cannot restart");
        return;
    };
    let loc = pg::location("restart");
    let d = Deque::<i64>::open(&loc).unwrap();
    d.extend((0..ITEMS).collect::<Vec<_>>().iter()).unwrap();
    let (progress, acks_seen) = mpsc::channel::<()>();
    let worker = {
        let d = Deque::<i64>::open(&loc).unwrap();
        std::thread::spawn(move || {
            let opts = LeaseOptions::new(Duration::from_secs(2));
            let (mut acked, mut uncertain, mut errors) = (Vec::new(), Vec::new(), Vec::new());
            let give_up = Instant::now() + Duration::from_secs(120);
            loop {
                assert!(Instant::now() < give_up, "the worker did not finish: {errors:?}");
                let lease = match d.lease_timeout(&opts, Duration::from_millis(500)) {
                    Ok(Some(lease)) => lease,
                    Ok(None) => match d.backlog() {
                        Ok(b) if b.is_empty() => return (acked, uncertain, errors),
                        Ok(_) => continue,
                        Err(e) => {
                            errors.push(e);
                            continue;
                        }
                    },
                    Err(e) => {
                        errors.push(e);
                        continue;
                    }
                };
                let value = *lease.value();
                match lease.ack() {
                    Ok(true) => {
                        acked.push(value);
                        let _ = progress.send(());
                    }
                    // The lease ran out meanwhile: the item comes again.
                    Ok(false) => {}
                    // The commit may or may not have happened.
                    Err(e) => {
                        uncertain.push(value);
                        errors.push(e);
                    }
                }
            }
        })
    };
    for _ in 0..50 {
        acks_seen.recv().unwrap();
    }
    cluster.restart();
    // A blocked pop still wakes after the restart (its listening connection
    // is made again, or the fallback poll sees the push).
    let other = pg::location("restart_wake");
    let waiter = {
        let w = Deque::<u32>::open(&other).unwrap();
        std::thread::spawn(move || w.pop_front_timeout(Duration::from_secs(60)))
    };
    Deque::<u32>::open(&other).unwrap().push_back(&9).unwrap();
    assert_eq!(waiter.join().unwrap().unwrap(), Some(9));

    let (acked, uncertain, errors) = worker.join().unwrap();
    for e in &errors {
        assert!(
            matches!(e, Error::Postgres { .. } | Error::Timeout),
            "unclear error: {e:?}"
        );
    }
    let unique: HashSet<i64> = acked.iter().copied().collect();
    assert_eq!(unique.len(), acked.len(), "an item was acked twice");
    let done: HashSet<i64> = unique.iter().chain(&uncertain).copied().collect();
    let lost: Vec<i64> = (0..ITEMS).filter(|v| !done.contains(v)).collect();
    assert!(lost.is_empty(), "lost: {lost:?}");
    assert!(acked.len() > 50, "work went on after the restart");
    assert!(d.backlog().unwrap().is_empty());
    eprintln!(
        "{} errors during the restart, {} uncertain acks",
        errors.len(),
        uncertain.len()
    );
}
