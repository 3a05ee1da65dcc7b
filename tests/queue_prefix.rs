//! A prefixed queue holds exactly the keys of its own shape, `<prefix>-`
//! and 15 digits (issue 13, point 4): the keys of queue `jobs-2` sort inside
//! the range of queue `jobs`, and neither pull, peek, push numbering,
//! leases nor the backlog of `jobs` may take them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/pyenv.rs"]
mod pyenv;

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use diskq::{Backlog, Cache, Deque, Key, LeaseOptions, PullOptions, PushOptions, SetOptions, Side};
use proptest::prelude::*;

fn push(cache: &Cache, prefix: &str, value: &str) -> Key {
    cache.push_with(value, &PushOptions::new().prefix(prefix)).unwrap()
}

fn pull(cache: &Cache, prefix: &str, side: Side) -> Option<(Key, String)> {
    cache.pull_with(&PullOptions::new().prefix(prefix).side(side)).unwrap()
}

fn peek(cache: &Cache, prefix: &str, side: Side) -> Option<(Key, String)> {
    cache.peek_with(&PullOptions::new().prefix(prefix).side(side)).unwrap()
}

#[test]
fn a_queue_does_not_take_the_items_of_a_queue_whose_prefix_extends_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path()).unwrap();
    push(&cache, "jobs-2", "a");
    push(&cache, "jobs-2", "b");
    assert_eq!(pull(&cache, "jobs", Side::Front), None);
    assert_eq!(pull(&cache, "jobs", Side::Back), None);
    assert_eq!(peek(&cache, "jobs", Side::Front), None);
    assert_eq!(peek(&cache, "jobs", Side::Back), None);
    assert_eq!(cache.backlog(Some("jobs")).unwrap(), Backlog::default());
    // Numbering starts afresh, not from the other queue's last key.
    assert_eq!(push(&cache, "jobs", "x"), Key::from("jobs-500000000000000"));
    let front = cache
        .push_with("w", &PushOptions::new().prefix("jobs").side(Side::Front))
        .unwrap();
    assert_eq!(front, Key::from("jobs-499999999999999"));
    assert_eq!(cache.backlog(Some("jobs")).unwrap().queued, 2);
    assert_eq!(cache.backlog(Some("jobs-2")).unwrap().queued, 2);
    assert_eq!(pull(&cache, "jobs", Side::Front).unwrap().1, "w");
    assert_eq!(pull(&cache, "jobs", Side::Back).unwrap().1, "x");
    assert_eq!(pull(&cache, "jobs", Side::Front), None);
    // The other queue is whole.
    assert_eq!(
        pull(&cache, "jobs-2", Side::Front).unwrap(),
        (Key::from("jobs-2-500000000000000"), "a".into())
    );
    assert_eq!(pull(&cache, "jobs-2", Side::Front).unwrap().1, "b");
    assert!(cache.is_empty().unwrap());
}

#[test]
fn python_made_keys_of_the_shape_are_items_and_others_are_not() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path()).unwrap();
    // python-diskcache names queue items f'{prefix}-{num:015d}'.
    for (num, value) in [
        (7u64, "seven"),
        (500_000_000_000_000, "five"),
        (600_000_000_000_000, "last"),
    ] {
        cache.set(format!("jobs-{num:015}"), &value).unwrap();
    }
    // Keys inside the range of `jobs` but not of its shape.
    let strangers = [
        "jobs-12345",            // too few digits
        "jobs-1234567890123456", // too many
        "jobs-12345678901234x",  // 15 characters, not all digits
        "jobs-1234e5678901234",  // a number, but not digits only
        "jobs- 23456789012345",
        "jobs-+23456789012345",
        "jobs-1234567890123.4",
        "jobs-12345678901234\0",
        "jobs-2-000000000000001", // queue jobs-2
        "jobs-5-dead-letter-000000000000001",
    ];
    for key in strangers {
        cache.set(key, &"stranger").unwrap();
    }
    assert_eq!(cache.backlog(Some("jobs")).unwrap().queued, 3);
    assert_eq!(peek(&cache, "jobs", Side::Back).unwrap().1, "last");
    assert_eq!(
        push(&cache, "jobs", "after"),
        Key::from("jobs-600000000000001"),
        "numbered after the last python-made key"
    );
    let taken: Vec<(Key, String)> = cache.pull_many(10, &PullOptions::new().prefix("jobs")).unwrap();
    let values: Vec<&str> = taken.iter().map(|(_, v)| v.as_str()).collect();
    assert_eq!(values, ["seven", "five", "last", "after"]);
    for key in strangers {
        assert_eq!(
            cache.get::<String>(key).unwrap().as_deref(),
            Some("stranger"),
            "{key} was taken"
        );
    }
}

#[test]
fn leases_and_dead_letters_keep_to_their_queue() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path()).unwrap();
    push(&cache, "jobs-2", "theirs");
    let opts = LeaseOptions::new(Duration::from_secs(60)).prefix("jobs");
    assert!(
        cache.lease::<String>(&opts).unwrap().is_none(),
        "nothing of its own to lease"
    );
    push(&cache, "jobs", "mine");
    let lease = cache.lease::<String>(&opts).unwrap().unwrap();
    assert_eq!(lease.value(), "mine");
    assert_eq!(
        cache.backlog(Some("jobs")).unwrap(),
        Backlog {
            queued: 0,
            leased: 1,
            scheduled: 0
        }
    );
    assert_eq!(
        cache.backlog(Some("jobs-2")).unwrap(),
        Backlog {
            queued: 1,
            leased: 0,
            scheduled: 0
        }
    );
    assert!(lease.ack().unwrap());
    // Dead letters of `jobs` go to `jobs-dead-letter`, a queue of its own.
    let poison = LeaseOptions::new(Duration::from_secs(60))
        .prefix("jobs")
        .max_deliveries(1);
    push(&cache, "jobs", "poison");
    let l = cache.lease::<String>(&poison).unwrap().unwrap();
    assert!(l.nack(Side::Back).unwrap());
    assert_eq!(cache.backlog(Some("jobs")).unwrap(), Backlog::default());
    assert_eq!(cache.backlog(Some("jobs-dead-letter")).unwrap().queued, 1);
    assert_eq!(cache.requeue_dead_letters(&poison).unwrap(), 1);
    assert_eq!(pull(&cache, "jobs", Side::Front).unwrap().1, "poison");
    assert_eq!(pull(&cache, "jobs-2", Side::Front).unwrap().1, "theirs");
}

#[test]
fn the_integer_queue_holds_integer_keys_only() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path()).unwrap();
    // A float key inside the numeric range is no queue item.
    cache.set(2.5, &"float").unwrap();
    assert_eq!(cache.pull::<String>().unwrap(), None);
    assert_eq!(cache.peek::<String>().unwrap(), None);
    assert_eq!(cache.push("first").unwrap(), Key::Int(500_000_000_000_000));
    assert_eq!(cache.backlog(None).unwrap().queued, 1);
    assert_eq!(cache.pull::<String>().unwrap().unwrap().1, "first");
    assert_eq!(cache.get::<String>(2.5).unwrap().as_deref(), Some("float"));
}

#[test]
fn prefixes_of_any_characters_keep_their_shape() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path()).unwrap();
    for prefix in ["jöbs", "", "a*[b]?", "x-9", "a\0b", "%_"] {
        push(&cache, prefix, prefix);
        push(&cache, &format!("{prefix}-1"), "nested");
        assert_eq!(cache.backlog(Some(prefix)).unwrap().queued, 1, "{prefix:?}");
        assert_eq!(pull(&cache, prefix, Side::Back).unwrap().1, prefix);
        assert_eq!(pull(&cache, prefix, Side::Front), None, "{prefix:?}");
        assert_eq!(pull(&cache, &format!("{prefix}-1"), Side::Front).unwrap().1, "nested");
    }
}

#[test]
fn queues_python_made_are_split_by_shape_and_python_does_not_split_them() {
    let Some(python) = pyenv::python("the python-diskcache queue prefix test") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let made = pyenv::run_code(
        &python,
        "import sys, diskcache\n\
         c = diskcache.Cache(sys.argv[1], eviction_policy='none')\n\
         c.set('unrelated', 1)\n\
         c.push('a', prefix='jobs'); c.push('b', prefix='jobs-2'); c.push('c', prefix='jobs')\n\
         d = diskcache.Deque(directory=sys.argv[1])\n\
         d.append('item')\n\
         print(len(d))\n",
        dir.path(),
    );
    assert_eq!(
        made.trim(),
        "5",
        "python-diskcache's Deque counts every key of its cache"
    );
    let cache = Cache::open(dir.path()).unwrap();
    let d: Deque<String> = Deque::from_cache(cache.clone());
    assert_eq!(d.len().unwrap(), 1, "diskq's Deque counts its own items");
    assert_eq!(cache.backlog(Some("jobs")).unwrap().queued, 2);
    assert_eq!(
        pull(&cache, "jobs", Side::Front).unwrap(),
        (Key::from("jobs-500000000000000"), "a".into())
    );
    assert_eq!(
        pull(&cache, "jobs", Side::Front).unwrap(),
        (Key::from("jobs-500000000000001"), "c".into())
    );
    assert_eq!(pull(&cache, "jobs", Side::Front), None);
    assert_eq!(pull(&cache, "jobs-2", Side::Front).unwrap().1, "b");
    // What python-diskcache does instead: its pull of `jobs` takes an item
    // of `jobs-2` (its keys sort inside the range it checks).
    push(&cache, "jobs-2", "theirs");
    let taken = pyenv::run_code(
        &python,
        "import sys, diskcache\n\
         c = diskcache.Cache(sys.argv[1])\n\
         print(c.pull(prefix='jobs'))\n",
        dir.path(),
    );
    assert_eq!(taken.trim(), "('jobs-2-500000000000000', 'theirs')");
}

// ---- A model: any keys around a prefix's range, against a brute-force filter ----

/// A key around the range of queue `p`: `p-` and 15 digits (few distinct
/// ones, so that keys share their starts), or such a key cut short or
/// changed at one place by a byte that sorts next to the digits, or another
/// queue's key (`p-2-...`).
fn key_near_p() -> impl Strategy<Value = String> {
    // Few digit strings, so that keys share their starts (and carries happen).
    let pool = [
        "000000000000001",
        "099999999999999",
        "100000000000000",
        "199999999999999",
        "200000000000000",
        "499999999999999",
        "500000000000000",
        "500000000000001",
        "509999999999999",
        "510000000000000",
        "999999999999998",
    ];
    let digits =
        move || prop_oneof![4 => proptest::sample::select(pool.to_vec()).prop_map(String::from), 1 => "[059]{15}"];
    let odd = proptest::sample::select(vec!["", "-", "/", ":", "a", "\0", "0", "9"]);
    prop_oneof![
        3 => digits().prop_map(|d| format!("p-{d}")),
        5 => (digits(), 0usize..17, odd, "[09a-]{0,2}")
            .prop_map(|(d, at, odd, rest)| format!("p-{}{odd}{rest}", &d[..at.min(15)])),
        1 => digits().prop_map(|d| format!("p-2-{d}")),
    ]
}

fn shaped(key: &str) -> bool {
    key.len() == 17
        && key[2..].bytes().all(|b| b.is_ascii_digit())
        && key != "p-000000000000000"
        && key != "p-999999999999999"
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn a_prefixed_queue_is_exactly_its_shaped_keys(
        keys in proptest::collection::btree_set(key_near_p(), 0..60),
        expired in proptest::collection::vec(proptest::bool::weighted(0.2), 60),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let ms = Arc::new(AtomicU64::new(1_000_000));
        let clock = ms.clone();
        let cache = Cache::builder()
            .clock(move || std::time::UNIX_EPOCH + Duration::from_millis(clock.load(Ordering::SeqCst)))
            .open(dir.path())
            .unwrap();
        let mut live = Vec::new();
        for (key, &gone) in keys.iter().zip(&expired) {
            if gone {
                cache.set_with(key.as_str(), key, &SetOptions::new().expire(Duration::from_secs(1))).unwrap();
            } else {
                cache.set(key.as_str(), key).unwrap();
                if shaped(key) {
                    live.push(key.clone());
                }
            }
        }
        ms.fetch_add(2_000, Ordering::SeqCst);
        // A BTreeSet of Strings is in byte order, as SQLite compares text.
        let first = live.first().cloned();
        let last = live.last().cloned();
        prop_assert_eq!(peek(&cache, "p", Side::Front).map(|(_, v)| v), first);
        prop_assert_eq!(peek(&cache, "p", Side::Back).map(|(_, v)| v), last);
        prop_assert_eq!(cache.backlog(Some("p")).unwrap().queued, live.len());
        let mut taken = Vec::new();
        let mut back = false;
        while let Some((key, value)) = pull(&cache, "p", if back { Side::Back } else { Side::Front }) {
            prop_assert_eq!(Key::from(value.as_str()), key);
            taken.push(value);
            back = !back;
        }
        let mut want = Vec::new();
        let mut model: VecDeque<String> = live.iter().cloned().collect();
        let mut back = false;
        while let Some(v) = if back { model.pop_back() } else { model.pop_front() } {
            want.push(v);
            back = !back;
        }
        prop_assert_eq!(taken, want);
        for (key, &gone) in keys.iter().zip(&expired) {
            if !gone && !shaped(key) {
                prop_assert_eq!(cache.get::<String>(key.as_str()).unwrap(), Some(key.clone()));
            }
        }
    }
}
