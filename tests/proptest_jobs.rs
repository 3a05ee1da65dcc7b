//! Model-based property test of a queue with jobs, on a test clock: plain
//! pushes, delayed and prioritized pushes with unique keys, pops, leases
//! acked, nacked with a delay or dropped (they run out, then come back
//! after the retry policy's backoff), and the clock moving, against a std
//! model (in `support/jobs_model.rs`, which `pg_jobs.rs` runs on PostgreSQL).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/jobs_model.rs"]
mod model;

use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn a_queue_with_jobs_behaves_as_its_model(ops in proptest::collection::vec(model::op(), 1..70)) {
        let dir = tempfile::tempdir().unwrap();
        let (cache, clock) = model::clocked(dir.path());
        model::check(&cache, &clock, ops)?;
    }
}
