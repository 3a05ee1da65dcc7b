//! Jobs on the lease queue: delayed items, priorities, unique keys, retry
//! with backoff, driven by a test clock, on a directory (the scenarios are
//! in `support/job_scenarios.rs`; `pg_jobs.rs` runs them on PostgreSQL).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/job_scenarios.rs"]
mod scenarios;

/// Runs `scenario` on a fresh directory with a test clock.
fn on_a_directory(scenario: fn(&diskq::Cache, &std::sync::atomic::AtomicU64)) {
    let dir = tempfile::tempdir().unwrap();
    let (cache, clock) = scenarios::clocked(dir.path());
    scenario(&cache, &clock);
}

#[test]
fn delayed_items_stay_invisible_until_due_and_count_as_scheduled() {
    on_a_directory(scenarios::delayed_items_stay_invisible_until_due_and_count_as_scheduled);
}

#[test]
fn priorities_go_first_and_fifo_within_one() {
    on_a_directory(scenarios::priorities_go_first_and_fifo_within_one);
}

#[test]
fn a_unique_key_is_held_while_queued_scheduled_or_leased() {
    on_a_directory(scenarios::a_unique_key_is_held_while_queued_scheduled_or_leased);
}

#[test]
fn nack_with_a_delay_and_an_error_comes_back_later_with_them() {
    on_a_directory(scenarios::nack_with_a_delay_and_an_error_comes_back_later_with_them);
}

#[test]
fn a_retry_policy_delays_nacks_and_leases_that_ran_out() {
    on_a_directory(scenarios::a_retry_policy_delays_nacks_and_leases_that_ran_out);
}

#[test]
fn expired_and_cleared_jobs_go_and_deque_len_counts_jobs() {
    on_a_directory(scenarios::expired_and_cleared_jobs_go_and_deque_len_counts_jobs);
}

#[test]
fn a_job_lease_resumes_by_id() {
    on_a_directory(scenarios::a_job_lease_resumes_by_id);
}

#[test]
fn a_delayed_item_wakes_a_blocked_waiter_when_due() {
    let dir = tempfile::tempdir().unwrap();
    scenarios::a_delayed_item_wakes_a_blocked_waiter_when_due(dir.path());
}
