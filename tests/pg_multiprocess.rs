//! The PostgreSQL backend across real OS processes (the tests of
//! `support/mp.rs`, shared with the directory backend): producers and
//! consumers moving items exactly once, and a consumer SIGKILLed while it
//! holds leases losing nothing acked.
#![cfg(feature = "postgres")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/mp.rs"]
mod mp;
#[path = "support/pg.rs"]
mod pg;

#[test]
fn child() {
    mp::child();
}

#[test]
fn pops_by_several_processes_are_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    mp::pops_are_exactly_once(&[], &pg::location("pops"), dir.path(), 2, 3, 1_000);
}

#[test]
fn a_killed_consumer_holding_leases_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    mp::a_killed_consumer_holding_leases_loses_nothing([&[], &[], &[]], &pg::location("kill"), dir.path(), 1_500, 200);
}
