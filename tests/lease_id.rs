//! Lease ids: a lease taken through one handle is resumed, by its id's
//! text, through another (as another process does), under a test clock.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use diskq::{Cache, Error, LeaseId, LeaseOptions, PushOptions, Side};

/// A handle on `dir` whose clock reads `ms` (milliseconds the test moves).
fn with_clock(dir: &Path, ms: &Arc<AtomicU64>) -> Cache {
    let clock = ms.clone();
    Cache::builder()
        .clock(move || std::time::UNIX_EPOCH + Duration::from_millis(clock.load(Ordering::SeqCst)))
        .open(dir)
        .unwrap()
}

fn opts() -> LeaseOptions {
    LeaseOptions::new(Duration::from_secs(10))
}

#[test]
fn a_lease_resumed_by_its_id_acks_nacks_and_renews() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(AtomicU64::new(1_000_000_000));
    // Two handles, as two processes would have, on one clock.
    let (taker, other) = (with_clock(dir.path(), &clock), with_clock(dir.path(), &clock));
    taker.push("a").unwrap();
    taker.push("b").unwrap();

    let lease = taker.lease::<String>(&opts()).unwrap().unwrap();
    let id: LeaseId = lease.id().to_string().parse().unwrap();
    drop(lease); // the taking process is gone; its id lives on
    let resumed = other.resume_lease::<String>(&id, &opts()).unwrap().expect("held");
    assert_eq!((resumed.value().as_str(), resumed.deliveries()), ("a", 1));
    assert_eq!(resumed.id(), id);
    assert!(resumed.ack().unwrap());
    assert!(other.resume_lease::<String>(&id, &opts()).unwrap().is_none(), "acked");

    // Nack through the id: the item comes back, its count kept.
    let lease = taker.lease::<String>(&opts()).unwrap().unwrap();
    let id = lease.id();
    assert!(
        other
            .resume_lease::<String>(&id, &opts())
            .unwrap()
            .unwrap()
            .nack(Side::Front)
            .unwrap()
    );
    let again = taker.lease::<String>(&opts()).unwrap().unwrap();
    assert_eq!((again.value().as_str(), again.deliveries()), ("b", 2));

    // Renew through the id: the lease outlives its first deadline.
    let id = again.id();
    let mut resumed = other.resume_lease::<String>(&id, &opts()).unwrap().unwrap();
    assert!(resumed.renew(Duration::from_secs(60)).unwrap());
    clock.fetch_add(30_000, Ordering::SeqCst);
    assert!(taker.lease::<String>(&opts()).unwrap().is_none(), "still leased");
    clock.fetch_add(31_000, Ordering::SeqCst);
    let next = taker.lease::<String>(&opts()).unwrap().expect("ran out");
    assert_eq!(next.deliveries(), 3);
    assert!(
        other.resume_lease::<String>(&id, &opts()).unwrap().is_none(),
        "the old lease is lost"
    );
    assert!(next.ack().unwrap());
    assert!(taker.is_empty().unwrap());
}

#[test]
fn a_resumed_lease_keeps_its_queue_and_dead_letters_on_nack() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path()).unwrap();
    cache.push_with("job", &PushOptions::new().prefix("jobs")).unwrap();
    let limited = opts().prefix("jobs").max_deliveries(1);
    let id = cache.lease::<String>(&limited).unwrap().unwrap().id();

    let err = cache.resume_lease::<String>(&id, &opts().prefix("other")).unwrap_err();
    assert!(matches!(err, Error::InvalidUse(_)), "{err}");
    assert!(err.to_string().contains("\"jobs\""), "{err}");

    // No prefix given: the lease's own queue, and its dead-letter queue.
    let lease = cache
        .resume_lease::<String>(&id, &opts().max_deliveries(1))
        .unwrap()
        .unwrap();
    assert!(lease.nack(Side::Front).unwrap());
    assert_eq!(cache.backlog(Some("jobs")).unwrap().queued, 0);
    assert_eq!(cache.backlog(Some("jobs-dead-letter")).unwrap().queued, 1);
    assert_eq!(cache.requeue_dead_letters(&opts().prefix("jobs")).unwrap(), 1);
}

#[test]
fn ids_that_name_no_lease_are_none_and_nonsense_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path()).unwrap();
    let id: LeaseId = "0123456789abcdef.0123456789abcdef".parse().unwrap();
    assert!(
        cache.resume_lease::<String>(&id, &opts()).unwrap().is_none(),
        "no lease table yet"
    );
    cache.push("x").unwrap();
    let real = cache.lease::<String>(&opts()).unwrap().unwrap();
    assert!(cache.resume_lease::<String>(&id, &opts()).unwrap().is_none());
    // The right key with a wrong token is not the lease.
    let text = real.id().to_string();
    let forged: LeaseId = format!("{}.0000000000000000", &text[..16]).parse().unwrap();
    assert!(cache.resume_lease::<String>(&forged, &opts()).unwrap().is_none());
    assert!("x".parse::<LeaseId>().is_err());
    let err = cache
        .resume_lease::<String>(&real.id(), &LeaseOptions::new(Duration::from_secs(1)).max_deliveries(0))
        .unwrap_err();
    assert!(matches!(err, Error::InvalidSetting { .. }), "{err}");
}

#[test]
fn an_id_is_the_same_short_text_whatever_the_queue_is_called() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path()).unwrap();
    let queues = ["a.b c-d", "jobs", "jobs-2", "ü\n"];
    for queue in queues {
        cache.push_with(queue, &PushOptions::new().prefix(queue)).unwrap();
    }
    let ids: Vec<String> = queues
        .iter()
        .map(|q| {
            cache
                .lease::<String>(&opts().prefix(*q))
                .unwrap()
                .unwrap()
                .id()
                .to_string()
        })
        .collect();
    for (queue, text) in queues.iter().zip(&ids) {
        assert_eq!(text.len(), 33, "{text}");
        assert!(text.bytes().all(|b| b.is_ascii_hexdigit() || b == b'.'), "{text}");
        let lease = cache
            .resume_lease::<String>(&text.parse().unwrap(), &opts())
            .unwrap()
            .unwrap();
        assert_eq!(lease.value(), queue, "each id finds its own lease");
        assert!(lease.nack(Side::Back).unwrap());
        assert_eq!(cache.backlog(Some(queue)).unwrap().queued, 1, "back in {queue:?}");
    }
}
