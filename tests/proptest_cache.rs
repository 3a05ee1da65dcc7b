//! A proptest model of `Cache`: random operations against a `HashMap` with
//! expiry times and a `VecDeque` for the queue, under a clock the test moves.
#![allow(clippy::unwrap_used)]

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use diskq::{Cache, SetOptions};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Set(u8, i64, Option<u8>),
    Get(u8),
    Delete(u8),
    Add(u8, i64),
    Incr(u8, i64),
    Pop(u8),
    Touch(u8, Option<u8>),
    Push(i64),
    Pull,
    Advance(u8),
    Expire,
}

fn op() -> impl Strategy<Value = Op> {
    let key = 0u8..6;
    prop_oneof![
        (key.clone(), any::<i64>(), proptest::option::of(1u8..20)).prop_map(|(k, v, e)| Op::Set(k, v, e)),
        key.clone().prop_map(Op::Get),
        key.clone().prop_map(Op::Delete),
        (key.clone(), any::<i64>()).prop_map(|(k, v)| Op::Add(k, v)),
        (key.clone(), -1000i64..1000).prop_map(|(k, d)| Op::Incr(k, d)),
        key.clone().prop_map(Op::Pop),
        (key, proptest::option::of(1u8..20)).prop_map(|(k, e)| Op::Touch(k, e)),
        any::<i64>().prop_map(Op::Push),
        Just(Op::Pull),
        (1u8..15).prop_map(Op::Advance),
        Just(Op::Expire),
    ]
}

/// Value and expiry time of each live key.
#[derive(Default)]
struct Model {
    now: f64,
    items: HashMap<u8, (i64, Option<f64>)>,
    queue: VecDeque<i64>,
}

impl Model {
    fn live(&self, k: u8) -> Option<i64> {
        self.items
            .get(&k)
            .filter(|(_, exp)| exp.is_none_or(|t| t > self.now))
            .map(|(v, _)| *v)
    }
    fn expiry(&self, e: Option<u8>) -> Option<f64> {
        e.map(|s| self.now + f64::from(s))
    }
}

fn key(k: u8) -> String {
    format!("k{k}")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn cache_matches_the_model(ops in proptest::collection::vec(op(), 1..60)) {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(AtomicU64::new(1000f64.to_bits()));
        let c = clock.clone();
        // cull_limit 0: writes do not remove expired items, so expire() counts them all.
        let cache = Cache::builder().cull_limit(0).clock(move || std::time::UNIX_EPOCH + Duration::from_secs_f64(f64::from_bits(c.load(Ordering::SeqCst)))).open(dir.path()).unwrap();
        let mut m = Model { now: 1000.0, ..Model::default() };
        let opts = |e: Option<u8>| SetOptions { expire: e.map(|s| Duration::from_secs(u64::from(s))), ..SetOptions::default() };
        for op in ops {
            match op {
                Op::Set(k, v, e) => {
                    cache.set_with(key(k), &v, &opts(e)).unwrap();
                    let exp = m.expiry(e);
                    m.items.insert(k, (v, exp));
                }
                Op::Get(k) => prop_assert_eq!(cache.get::<i64>(key(k)).unwrap(), m.live(k)),
                Op::Delete(k) => {
                    let was = m.live(k).is_some();
                    prop_assert_eq!(cache.delete(key(k)).unwrap(), was);
                    if was { m.items.remove(&k); }
                }
                Op::Add(k, v) => {
                    let added = m.live(k).is_none();
                    prop_assert_eq!(cache.add(key(k), &v).unwrap(), added);
                    if added { m.items.insert(k, (v, None)); }
                }
                Op::Incr(k, d) => {
                    let current = m.live(k);
                    match current.unwrap_or(0).checked_add(d) {
                        Some(new) => {
                            prop_assert_eq!(cache.incr(key(k), d, 0).unwrap(), new);
                            let exp = if current.is_some() { m.items[&k].1 } else { None };
                            m.items.insert(k, (new, exp));
                        }
                        None => prop_assert!(cache.incr(key(k), d, 0).is_err()),
                    }
                }
                Op::Pop(k) => {
                    let was = m.live(k);
                    prop_assert_eq!(cache.pop::<i64>(key(k)).unwrap(), was);
                    if was.is_some() { m.items.remove(&k); }
                }
                Op::Touch(k, e) => {
                    let live = m.live(k).is_some();
                    prop_assert_eq!(cache.touch(key(k), e.map(|s| Duration::from_secs(u64::from(s)))).unwrap(), live);
                    if live {
                        let exp = m.expiry(e);
                        m.items.get_mut(&k).unwrap().1 = exp;
                    }
                }
                Op::Push(v) => {
                    cache.push(&v).unwrap();
                    m.queue.push_back(v);
                }
                Op::Pull => prop_assert_eq!(cache.pull::<i64>().unwrap().map(|(_, v)| v), m.queue.pop_front()),
                Op::Advance(s) => {
                    m.now += f64::from(s);
                    clock.store(m.now.to_bits(), Ordering::SeqCst);
                }
                Op::Expire => {
                    let now = m.now;
                    let expired = m.items.values().filter(|(_, e)| e.is_some_and(|t| t < now)).count();
                    prop_assert_eq!(cache.expire().unwrap(), expired);
                    m.items.retain(|_, (_, e)| e.is_none_or(|t| t >= now));
                }
            }
            let live = (0..6).filter(|k| m.live(*k).is_some()).count();
            prop_assert_eq!(cache.len().unwrap(), live + m.queue.len());
        }
        prop_assert!(cache.check().unwrap().is_empty());
    }
}
