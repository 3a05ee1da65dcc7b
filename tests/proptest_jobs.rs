//! Model-based property test of a queue with jobs, on a test clock: plain
//! pushes, delayed and prioritized pushes with unique keys, pops, leases
//! acked or nacked with a delay, and the clock moving, against a std model.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use diskq::{Cache, LeaseOptions, NackOptions, PushOptions};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
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
    Advance(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => Just(Op::Plain),
        3 => (prop_oneof![Just(0u64), 1..50u64], -1..=2i32, proptest::option::of(0..4u8))
            .prop_map(|(delay_ms, priority, unique)| Op::Job { delay_ms, priority, unique }),
        3 => Just(Op::Pop),
        1 => Just(Op::LeaseAck),
        1 => (1..50u64).prop_map(|delay_ms| Op::LeaseNack { delay_ms }),
        2 => (1..40u64).prop_map(Op::Advance),
    ]
}

/// One item of the model.
#[derive(Debug, Clone)]
struct Item {
    value: u64,
    /// A plain queue item (else a job).
    plain: bool,
    priority: i32,
    /// When it was pushed (plain) or becomes ready (job), in ms.
    ready: u64,
    /// Insertion order (the item's rowid order).
    seq: u64,
    unique: Option<u8>,
}

#[derive(Default)]
struct Model {
    items: Vec<Item>,
    seq: u64,
}

impl Model {
    /// The index of the item a pop takes at `now`.
    fn next(&self, now: u64) -> Option<usize> {
        let job = self
            .items
            .iter()
            .enumerate()
            .filter(|(_, i)| !i.plain && i.ready <= now)
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
            .filter(|(_, i)| i.plain)
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
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn a_queue_with_jobs_behaves_as_its_model(ops in proptest::collection::vec(op(), 1..60)) {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(AtomicU64::new(1_000_000_000_000));
        let c = clock.clone();
        let cache = Cache::builder()
            .clock(move || SystemTime::UNIX_EPOCH + Duration::from_millis(c.load(Ordering::SeqCst)))
            .open(dir.path())
            .unwrap();
        let lease = LeaseOptions::new(Duration::from_secs(3600));
        let mut model = Model::default();
        let mut next_value = 0u64;
        for op in ops {
            let now = clock.load(Ordering::SeqCst);
            match op {
                Op::Plain => {
                    next_value += 1;
                    cache.push(&next_value).unwrap();
                    model.seq += 1;
                    model.items.push(Item { value: next_value, plain: true, priority: 0, ready: now, seq: model.seq, unique: None });
                }
                Op::Job { delay_ms, priority, unique } => {
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
                        model.items.push(Item { value: next_value, plain: false, priority, ready: now + delay_ms, seq: model.seq, unique });
                    }
                }
                Op::Pop => {
                    let got = cache.pull::<u64>().unwrap().map(|(_, v)| v);
                    let want = model.next(now).map(|i| model.items.remove(i).value);
                    prop_assert_eq!(got, want);
                }
                Op::LeaseAck => {
                    let got = cache.lease::<u64>(&lease).unwrap();
                    let want = model.next(now).map(|i| model.items.remove(i).value);
                    prop_assert_eq!(got.as_ref().map(|l| *l.value()), want);
                    if let Some(l) = got {
                        prop_assert!(l.ack().unwrap());
                    }
                }
                Op::LeaseNack { delay_ms } => {
                    let got = cache.lease::<u64>(&lease).unwrap();
                    let want = model.next(now);
                    prop_assert_eq!(got.as_ref().map(|l| *l.value()), want.map(|i| model.items[i].value));
                    if let (Some(l), Some(i)) = (got, want) {
                        prop_assert!(l.nack_with(&NackOptions::new().delay(Duration::from_millis(delay_ms))).unwrap());
                        // Back as a job of its priority, ready after the delay.
                        let item = &mut model.items[i];
                        item.plain = false;
                        item.ready = now + delay_ms;
                    }
                }
                Op::Advance(ms) => {
                    clock.fetch_add(ms, Ordering::SeqCst);
                }
            }
            let now = clock.load(Ordering::SeqCst);
            let backlog = cache.backlog(None).unwrap();
            let scheduled = model.items.iter().filter(|i| !i.plain && i.ready > now).count();
            prop_assert_eq!(backlog.scheduled, scheduled);
            prop_assert_eq!(backlog.queued, model.items.len() - scheduled);
            prop_assert_eq!(backlog.leased, 0);
        }
    }
}
