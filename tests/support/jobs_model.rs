//! The model of a queue with jobs on a test clock (µs), and the run that
//! checks a cache against it: `proptest_jobs.rs` on a directory,
//! `pg_jobs.rs` on PostgreSQL.
#![allow(dead_code)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use diskq::{Cache, LeaseOptions, NackOptions, PushOptions, RetryPolicy};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

/// The lease's duration and the backoff after one ran out, in µs. Not
/// whole milliseconds, as the clock's steps are: a lease never runs out
/// exactly when the clock is read, where a rounding of `f64` would decide.
pub const LEASE_US: u64 = 100_500;
pub const BACKOFF_US: u64 = 20_250;

#[derive(Debug, Clone)]
pub enum Op {
    Plain,
    Job {
        delay_ms: u64,
        priority: i32,
        unique: Option<u8>,
    },
    Pop,
    LeaseAck,
    LeaseNack {
        delay_ms: u64,
    },
    /// Lease and drop the lease: it runs out.
    LeaseDrop,
    Advance(u64),
}

pub fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => Just(Op::Plain),
        3 => (prop_oneof![Just(0u64), 1..50u64], -1..=2i32, proptest::option::of(0..4u8))
            .prop_map(|(delay_ms, priority, unique)| Op::Job { delay_ms, priority, unique }),
        3 => Just(Op::Pop),
        1 => Just(Op::LeaseAck),
        1 => (1..50u64).prop_map(|delay_ms| Op::LeaseNack { delay_ms }),
        1 => Just(Op::LeaseDrop),
        2 => (1..80u64).prop_map(Op::Advance),
    ]
}

/// One item of the model.
#[derive(Debug, Clone)]
struct Item {
    value: u64,
    /// A plain queue item (else a job), leased or not.
    plain: bool,
    priority: i32,
    /// When a job becomes ready, when a plain item was pushed (µs).
    ready: u64,
    /// Insertion order (the item's rowid order).
    seq: u64,
    unique: Option<u8>,
    /// The deadline of its lease (µs), while leased.
    leased: Option<u64>,
    deliveries: u32,
}

#[derive(Default)]
struct Model {
    items: Vec<Item>,
    seq: u64,
}

impl Model {
    /// The index of the item a pop takes at `now`.
    fn next(&self, now: u64) -> Option<usize> {
        let free = |i: &&Item| i.leased.is_none();
        let job = self
            .items
            .iter()
            .enumerate()
            .filter(|(_, i)| free(i) && !i.plain && i.ready <= now)
            .max_by(|(_, a), (_, b)| {
                a.priority
                    .cmp(&b.priority)
                    .then(b.ready.cmp(&a.ready))
                    .then(b.seq.cmp(&a.seq))
            });
        let plain = self
            .items
            .iter()
            .enumerate()
            .filter(|(_, i)| free(i) && i.plain)
            .min_by_key(|(_, i)| i.seq);
        match (job, plain) {
            (Some((j, job)), _) if job.priority > 0 => Some(j),
            (Some((j, job)), Some((p, plain))) => {
                if job.priority < 0 || plain.ready <= job.ready {
                    Some(p)
                } else {
                    Some(j)
                }
            }
            (Some((j, _)), None) => Some(j),
            (None, Some((p, _))) => Some(p),
            (None, None) => None,
        }
    }

    /// The index of the item a lease at `now` takes, its lease taken: leases
    /// that ran out first (plain items', then jobs', by deadline), each back
    /// after the backoff or, if that is over, leased again; then `next`.
    fn lease(&mut self, now: u64) -> Option<usize> {
        for plain in [true, false] {
            loop {
                let expired = self
                    .items
                    .iter()
                    .enumerate()
                    .filter(|(_, i)| i.plain == plain && i.leased.is_some_and(|d| d <= now))
                    .min_by_key(|(_, i)| i.leased)
                    .map(|(at, _)| at);
                let Some(at) = expired else { break };
                let item = &mut self.items[at];
                let ready = item.leased.expect("leased") + BACKOFF_US;
                if ready > now {
                    // Backing off: a job, ready later (a plain item's priority is 0).
                    item.plain = false;
                    item.ready = ready;
                    item.leased = None;
                } else {
                    item.leased = Some(now + LEASE_US);
                    item.deliveries += 1;
                    return Some(at);
                }
            }
        }
        let at = self.next(now)?;
        let item = &mut self.items[at];
        item.leased = Some(now + LEASE_US);
        item.deliveries += 1;
        Some(at)
    }
}

/// A cache at `location` whose clock reads the returned counter (µs since the epoch).
pub fn clocked(location: impl AsRef<std::path::Path>) -> (Cache, Arc<AtomicU64>) {
    let clock = Arc::new(AtomicU64::new(1_000_000_000_000_000));
    let c = clock.clone();
    let cache = Cache::builder()
        .clock(move || SystemTime::UNIX_EPOCH + Duration::from_micros(c.load(Ordering::SeqCst)))
        .open(location)
        .unwrap();
    (cache, clock)
}

/// Runs `ops` on `cache` (fresh, its clock `clock`) and on the model,
/// comparing every answer and the backlog after each step.
pub fn check(cache: &Cache, clock: &AtomicU64, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let lease = LeaseOptions::new(Duration::from_micros(LEASE_US))
        .retry_policy(RetryPolicy::Fixed(Duration::from_micros(BACKOFF_US)));
    let mut model = Model::default();
    let mut next_value = 0u64;
    for op in ops {
        let now = clock.load(Ordering::SeqCst);
        match op {
            Op::Plain => {
                next_value += 1;
                cache.push(&next_value).unwrap();
                model.seq += 1;
                model.items.push(Item {
                    value: next_value,
                    plain: true,
                    priority: 0,
                    ready: now,
                    seq: model.seq,
                    unique: None,
                    leased: None,
                    deliveries: 0,
                });
            }
            Op::Job {
                delay_ms,
                priority,
                unique,
            } => {
                next_value += 1;
                let mut opts = PushOptions::new().priority(priority);
                if delay_ms > 0 {
                    opts = opts.delay(Duration::from_millis(delay_ms));
                }
                if let Some(u) = unique {
                    opts = opts.unique_key(format!("u{u}"));
                }
                let pushed = cache.push_job(&next_value, &opts).unwrap().is_some();
                let taken = unique.is_some() && model.items.iter().any(|i| i.unique == unique);
                prop_assert_eq!(pushed, !taken, "unique key {:?}", unique);
                if pushed {
                    model.seq += 1;
                    model.items.push(Item {
                        value: next_value,
                        plain: false,
                        priority,
                        ready: now + delay_ms * 1000,
                        seq: model.seq,
                        unique,
                        leased: None,
                        deliveries: 0,
                    });
                }
            }
            Op::Pop => {
                let got = cache.pull::<u64>().unwrap().map(|(_, v)| v);
                let want = model.next(now).map(|i| model.items.remove(i).value);
                prop_assert_eq!(got, want);
            }
            Op::LeaseAck | Op::LeaseNack { .. } | Op::LeaseDrop => {
                let got = cache.lease::<u64>(&lease).unwrap();
                let want = model.lease(now);
                prop_assert_eq!(
                    got.as_ref().map(|l| (*l.value(), l.deliveries())),
                    want.map(|i| (model.items[i].value, model.items[i].deliveries))
                );
                if let (Some(l), Some(i)) = (got, want) {
                    match op {
                        Op::LeaseAck => {
                            prop_assert!(l.ack().unwrap());
                            model.items.remove(i);
                        }
                        Op::LeaseNack { delay_ms } => {
                            let nack = NackOptions::new().delay(Duration::from_millis(delay_ms));
                            prop_assert!(l.nack_with(&nack).unwrap());
                            // Back as a job of its priority, ready after the delay.
                            let item = &mut model.items[i];
                            item.plain = false;
                            item.ready = now + delay_ms * 1000;
                            item.leased = None;
                        }
                        _ => {
                            drop(l);
                            // No two leases run out at one moment.
                            clock.fetch_add(1000, Ordering::SeqCst);
                        }
                    }
                }
            }
            Op::Advance(ms) => {
                clock.fetch_add(ms * 1000, Ordering::SeqCst);
            }
        }
        let now = clock.load(Ordering::SeqCst);
        let backlog = cache.backlog(None).unwrap();
        let leased = model.items.iter().filter(|i| i.leased.is_some()).count();
        let scheduled = model
            .items
            .iter()
            .filter(|i| i.leased.is_none() && !i.plain && i.ready > now)
            .count();
        prop_assert_eq!(backlog.leased, leased);
        prop_assert_eq!(backlog.scheduled, scheduled);
        prop_assert_eq!(backlog.queued, model.items.len() - scheduled - leased);
    }
    Ok(())
}
