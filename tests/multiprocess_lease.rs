//! Leases across real OS processes: 3 consumers lease from 10,000 items and
//! one is SIGKILLed while it holds leases. After those leases run out the
//! others finish: every item is acked exactly once, none is lost, and the
//! items delivered twice are exactly those the killed process held unacked.
//!
//! The test itself is in `support/mp.rs`, shared with the PostgreSQL
//! backend's (`pg_multiprocess.rs`). Child processes are this test binary
//! run again with `DISKQ_ROLE` set.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/mp.rs"]
mod mp;

#[test]
fn child() {
    mp::child();
}

#[test]
fn a_killed_consumer_holding_leases_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let queue = dir.path().join("queue");
    mp::a_killed_consumer_holding_leases_loses_nothing(
        [&[], &[], &[]],
        queue.to_str().unwrap(),
        dir.path(),
        10_000,
        300,
    );
}
