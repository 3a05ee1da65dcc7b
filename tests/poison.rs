//! A queue item no consumer can decode (a tuple a Python `Deque` appended,
//! pickled) must not wedge the queue: pops fail with its real key and leave
//! it in place, `dead_letter_undecodable` moves it out of the way whole, and
//! leases count its deliveries until it reaches the dead-letter queue.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/pyenv.rs"]
mod pyenv;

use std::path::Path;
use std::time::Duration;

use diskq::{Cache, Deque, Error, Key, LeaseOptions, PullOptions, PushOptions, Side};

/// `pickle.dumps((1, 'two'), protocol=5)`, as python-diskcache stores a tuple.
const PICKLE: &[u8] = &[
    128, 5, 149, 11, 0, 0, 0, 0, 0, 0, 0, 75, 1, 140, 3, 116, 119, 111, 148, 134, 148, 46,
];
const FIRST: i64 = 500_000_000_000_000;

/// Writes the row python-diskcache's `Deque.append((1, 'two'))` writes:
/// the next integer key, mode 4 (pickle), the pickle inline.
fn append_pickle(dir: &Path, key: &Key) {
    let conn = rusqlite::Connection::open(dir.join("cache.db")).unwrap();
    let key: rusqlite::types::Value = match key {
        Key::Int(n) => (*n).into(),
        Key::Text(s) => s.clone().into(),
        other => panic!("not a queue key: {other:?}"),
    };
    conn.execute(
        "INSERT INTO Cache (key, raw, store_time, expire_time, access_time, access_count, \
         tag, size, mode, filename, value) VALUES (?1, 1, 0, NULL, 0, 0, NULL, ?2, 4, NULL, ?3)",
        rusqlite::params![key, PICKLE.len() as i64, PICKLE],
    )
    .unwrap();
}

/// The mode and value of the row stored under text key `key`.
fn raw_row(dir: &Path, key: &str) -> Option<(i64, Vec<u8>)> {
    let conn = rusqlite::Connection::open(dir.join("cache.db")).unwrap();
    let mut stmt = conn.prepare("SELECT mode, value FROM Cache WHERE key = ?1").unwrap();
    let mut rows = stmt.query([key]).unwrap();
    rows.next().unwrap().map(|r| (r.get(0).unwrap(), r.get(1).unwrap()))
}

/// "one", the pickle, "three", "four".
fn queue_with_poison_second(dir: &Path) -> Deque<String> {
    let jobs: Deque<String> = Deque::open(dir).unwrap();
    jobs.push_back(&"one".to_string()).unwrap();
    append_pickle(dir, &Key::Int(FIRST + 1));
    jobs.push_back(&"three".to_string()).unwrap();
    jobs.push_back(&"four".to_string()).unwrap();
    jobs
}

fn names_key(err: &Error, key: &str) {
    let text = err.to_string();
    assert!(err.is_decode(), "a decode error: {err:?}");
    assert!(text.contains(key), "the error names the item's key {key}: {text}");
    assert!(!text.contains("diskq-lease"), "no internal lease key: {text}");
}

#[test]
fn a_pop_fails_with_the_real_key_and_dead_letter_undecodable_gets_past_it() {
    let dir = tempfile::tempdir().unwrap();
    let jobs = queue_with_poison_second(dir.path());
    assert_eq!(jobs.pop_front().unwrap().as_deref(), Some("one"));
    for _ in 0..2 {
        let err = jobs.pop_front().expect_err("a pickle is not a String");
        names_key(&err, &(FIRST + 1).to_string());
        assert_eq!(jobs.len().unwrap(), 3, "the failed pop left the item in place");
    }
    // The end item decodes: nothing is moved.
    assert_eq!(jobs.dead_letter_undecodable(Side::Back).unwrap(), None);
    assert_eq!(
        jobs.dead_letter_undecodable(Side::Front).unwrap(),
        Some(Key::Int(FIRST + 1))
    );
    assert_eq!(jobs.pop_front().unwrap().as_deref(), Some("three"));
    assert_eq!(jobs.pop_front().unwrap().as_deref(), Some("four"));
    assert_eq!(jobs.pop_front().unwrap(), None);
    assert_eq!(jobs.dead_letter_undecodable(Side::Front).unwrap(), None, "empty");
    // Moved whole: python-diskcache can still read it.
    assert_eq!(
        raw_row(dir.path(), "dead-letter-500000000000000"),
        Some((4, PICKLE.to_vec()))
    );
    assert_eq!(jobs.cache().len().unwrap(), 1, "nothing lost");
}

#[test]
fn dead_letter_undecodable_uses_the_prefixed_queue_dead_letter_queue() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path()).unwrap();
    let jobs = PushOptions::new().prefix("jobs");
    append_pickle(dir.path(), &Key::Text(format!("jobs-{FIRST}")));
    cache.push_with("two", &jobs).unwrap();
    let pull = PullOptions::new().prefix("jobs");
    let err = cache.pull_with::<String>(&pull).expect_err("a pickle");
    names_key(&err, &format!("jobs-{FIRST}"));
    assert!(matches!(err, Error::Pickled { .. }), "{err:?}");
    assert_eq!(
        cache.dead_letter_undecodable::<String>(&pull).unwrap(),
        Some(Key::Text(format!("jobs-{FIRST}")))
    );
    assert_eq!(
        cache.pull_with::<String>(&pull).unwrap().map(|(_, v)| v).as_deref(),
        Some("two")
    );
    assert_eq!(
        raw_row(dir.path(), "jobs-dead-letter-500000000000000"),
        Some((4, PICKLE.to_vec()))
    );
}

#[test]
fn a_lease_of_a_poison_item_counts_as_a_delivery_until_the_dead_letter_queue() {
    let dir = tempfile::tempdir().unwrap();
    let jobs = queue_with_poison_second(dir.path());
    let opts = LeaseOptions::new(Duration::from_secs(3600)).max_deliveries(2);

    let one = jobs.lease_with(&opts).unwrap().expect("one");
    assert_eq!(one.value(), "one");
    assert!(one.ack().unwrap());

    // Delivery 1 fails at once: the pickle is back where it was.
    let err = jobs.lease_with(&opts).expect_err("delivery 1 of the pickle");
    names_key(&err, &(FIRST + 1).to_string());
    assert_eq!(jobs.backlog().unwrap().queued, 3, "{:?}", jobs.backlog().unwrap());
    // Delivery 2 of 2 fails too, and moves it to the dead-letter queue.
    let err = jobs.lease_with(&opts).expect_err("delivery 2 of the pickle");
    names_key(&err, &(FIRST + 1).to_string());

    let three = jobs.lease_with(&opts).unwrap().expect("three is not wedged");
    assert_eq!(three.value(), "three");
    let four = jobs.lease_with(&opts).unwrap().expect("four");
    assert_eq!(four.value(), "four");
    assert!(three.ack().unwrap() && four.ack().unwrap());
    assert!(jobs.lease_with(&opts).unwrap().is_none());
    assert!(jobs.backlog().unwrap().is_empty(), "{:?}", jobs.backlog().unwrap());
    assert_eq!(
        raw_row(dir.path(), "dead-letter-500000000000000"),
        Some((4, PICKLE.to_vec())),
        "the pickle is in the dead-letter queue, stored bytes kept"
    );
    assert_eq!(jobs.cache().len().unwrap(), 1, "nothing lost");
    // And it can be put back, for a reader that can decode it.
    assert_eq!(jobs.requeue_dead_letters(&opts).unwrap(), 1);
}

#[test]
fn a_poison_item_whose_lease_ran_out_is_counted_and_named_too() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::builder()
        .clock(|| std::time::UNIX_EPOCH + Duration::from_secs(1000))
        .open(dir.path())
        .unwrap();
    let ints: Deque<i64> = Deque::from_cache(cache.clone());
    ints.push_back(&1).unwrap();
    let opts = LeaseOptions::new(Duration::from_millis(1)).max_deliveries(3);
    // Leased as an i64, and dropped without an ack: its lease runs out.
    drop(ints.lease_with(&opts).unwrap().expect("leased"));
    let later = Cache::builder()
        .clock(|| std::time::UNIX_EPOCH + Duration::from_secs(2000))
        .open(dir.path())
        .unwrap();
    let strings: Deque<String> = Deque::from_cache(later.clone());
    let err = strings.lease_with(&opts).expect_err("an i64 is no String");
    names_key(&err, &FIRST.to_string());
    let err = strings.lease_with(&opts).expect_err("delivery 3 of 3");
    names_key(&err, &FIRST.to_string());
    assert!(strings.lease_with(&opts).unwrap().is_none());
    let dead = PullOptions::new().prefix("dead-letter");
    assert_eq!(later.pull_with::<i64>(&dead).unwrap().map(|(_, v)| v), Some(1));
}

#[test]
fn without_a_delivery_limit_dead_letter_undecodable_gets_a_lease_consumer_past_it() {
    let dir = tempfile::tempdir().unwrap();
    let jobs = queue_with_poison_second(dir.path());
    let opts = LeaseOptions::new(Duration::from_secs(3600));
    jobs.lease_with(&opts).unwrap().expect("one").ack().unwrap();
    let mut rest = Vec::new();
    loop {
        match jobs.lease_with(&opts) {
            Ok(Some(lease)) => {
                rest.push(lease.value().clone());
                lease.ack().unwrap();
            }
            Ok(None) => break,
            Err(e) if e.is_decode() => {
                names_key(&e, &(FIRST + 1).to_string());
                assert_eq!(
                    jobs.dead_letter_undecodable(Side::Front).unwrap(),
                    Some(Key::Int(FIRST + 1))
                );
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(rest, ["three", "four"]);
    assert_eq!(jobs.len().unwrap(), 1, "the pickle is kept, in the dead-letter queue");
}

#[test]
fn a_tuple_a_python_deque_appended_is_moved_past_and_python_still_reads_it() {
    let Some(py) = pyenv::python("the poison item interop test") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    pyenv::run_code(
        &py,
        "import sys; from diskcache import Deque\n\
         d = Deque(directory=sys.argv[1])\n\
         d.extend(['one', (1, 'two'), 'three', 'four'])",
        dir.path(),
    );
    let jobs: Deque<String> = Deque::open(dir.path()).unwrap();
    assert_eq!(jobs.pop_front().unwrap().as_deref(), Some("one"));
    let err = jobs.pop_front().expect_err("a pickled tuple");
    names_key(&err, &(FIRST + 1).to_string());
    assert_eq!(
        jobs.dead_letter_undecodable(Side::Front).unwrap(),
        Some(Key::Int(FIRST + 1))
    );
    assert_eq!(jobs.pop_front().unwrap().as_deref(), Some("three"));
    assert_eq!(jobs.pop_front().unwrap().as_deref(), Some("four"));
    let dead = pyenv::run_code(
        &py,
        "import sys; from diskcache import Cache\n\
         print(Cache(sys.argv[1]).pull(prefix='dead-letter'))",
        dir.path(),
    );
    assert_eq!(dead.trim(), "('dead-letter-500000000000000', (1, 'two'))");
}
