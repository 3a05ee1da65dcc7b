//! Proptest models of `Deque` and `Index`: random operation sequences run
//! against `VecDeque` (with python's `collections.deque(maxlen=n)` rules for
//! a bounded deque) and an insertion-ordered map (python's dict rules), with
//! the whole contents compared after every step and after reopening the
//! directory.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::cell::Cell;
use std::collections::VecDeque;
use std::fmt::Debug;
use std::path::Path;

use diskq::{Cache, Deque, EvictionPolicy, Index};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Values stored in the deques and indexes under test.
trait Item: Clone + PartialEq + Debug + Serialize + DeserializeOwned {
    /// The predicate of `Retain(k)`.
    fn keep(&self, k: u8) -> bool;
}

impl Item for i64 {
    fn keep(&self, k: u8) -> bool {
        self.rem_euclid(3) != i64::from(k % 3)
    }
}

impl Item for String {
    fn keep(&self, k: u8) -> bool {
        self.len() % 3 != usize::from(k % 3)
    }
}

/// Small integers (so that equal values are common) and sometimes any i64.
fn int_value() -> impl Strategy<Value = i64> + Clone {
    prop_oneof![4 => -20i64..20, 1 => any::<i64>()]
}

/// Short strings, and sometimes one of 2000 to 3000 bytes (stored in a value
/// file by `string_cache`).
fn string_value() -> impl Strategy<Value = String> + Clone {
    prop_oneof![
        6 => "[a-z]{0,5}",
        1 => "\\PC{0,4}",
        1 => ("[a-z]{1,4}", 2000usize..3000).prop_map(|(head, n)| {
            let fill = head.chars().next().unwrap_or('x');
            let mut s = head;
            s.extend(std::iter::repeat_n(fill, n));
            s
        }),
    ]
}

/// A cache whose strings of 1 KiB and more go to value files.
fn string_cache(dir: &Path) -> Cache {
    Cache::builder()
        .eviction_policy(EvictionPolicy::None)
        .min_file_size(1024)
        .sync_files(false)
        .open(dir)
        .unwrap()
}

// ---------------------------------------------------------------- Deque

#[derive(Debug, Clone)]
enum DOp<T> {
    PushBack(T),
    PushFront(T),
    PopFront,
    PopBack,
    Get(usize),
    Clear,
    Extend(Vec<T>),
    PopFrontMany(usize),
    PopBackMany(usize),
    RotateLeft(usize),
    RotateRight(usize),
    Retain(u8),
    /// Walks one iterator from both ends: `true` takes from the front.
    Walk(Vec<bool>),
    /// Drops the handle and opens the directory again; for a bounded deque,
    /// with this new maxlen (`collections.deque` drops the excess from the front).
    Reopen(usize),
}

fn deque_op<T: Item + 'static>(value: impl Strategy<Value = T> + Clone + 'static) -> impl Strategy<Value = DOp<T>> {
    prop_oneof![
        6 => value.clone().prop_map(DOp::PushBack),
        4 => value.clone().prop_map(DOp::PushFront),
        3 => Just(DOp::PopFront),
        3 => Just(DOp::PopBack),
        2 => (0usize..10).prop_map(DOp::Get),
        1 => Just(DOp::Clear),
        2 => proptest::collection::vec(value.clone(), 0..8).prop_map(DOp::Extend),
        // Past the 100-row pages the iterators read.
        1 => proptest::collection::vec(value, 95..130).prop_map(DOp::Extend),
        1 => (0usize..5).prop_map(DOp::PopFrontMany),
        1 => (0usize..5).prop_map(DOp::PopBackMany),
        2 => (0usize..12).prop_map(DOp::RotateLeft),
        2 => (0usize..12).prop_map(DOp::RotateRight),
        1 => any::<u8>().prop_map(DOp::Retain),
        2 => proptest::collection::vec(any::<bool>(), 0..12).prop_map(DOp::Walk),
        1 => (0usize..7).prop_map(DOp::Reopen),
    ]
}

/// The model: a `VecDeque` with `collections.deque(maxlen=n)` rules.
struct DModel<T> {
    items: VecDeque<T>,
    maxlen: Option<usize>,
}

impl<T: Item> DModel<T> {
    fn push_back(&mut self, v: T) {
        self.items.push_back(v);
        if self.maxlen.is_some_and(|m| self.items.len() > m) {
            self.items.pop_front();
        }
    }

    fn push_front(&mut self, v: T) {
        self.items.push_front(v);
        if self.maxlen.is_some_and(|m| self.items.len() > m) {
            self.items.pop_back();
        }
    }

    fn truncate_front(&mut self) {
        if let Some(m) = self.maxlen {
            while self.items.len() > m {
                self.items.pop_front();
            }
        }
    }
}

/// Compares everything observable without changing anything.
fn check_deque<T: Item>(d: &Deque<T>, m: &DModel<T>, rev: bool) -> Result<(), TestCaseError> {
    prop_assert_eq!(d.len().unwrap(), m.items.len());
    prop_assert_eq!(d.is_empty().unwrap(), m.items.is_empty());
    prop_assert_eq!(d.front().unwrap(), m.items.front().cloned());
    prop_assert_eq!(d.back().unwrap(), m.items.back().cloned());
    let forward: Vec<T> = d.iter().unwrap().collect::<Result<_, _>>().unwrap();
    prop_assert_eq!(&forward, &m.items.iter().cloned().collect::<Vec<_>>());
    if rev {
        let backward: Vec<T> = d.iter().unwrap().rev().collect::<Result<_, _>>().unwrap();
        prop_assert_eq!(&backward, &m.items.iter().rev().cloned().collect::<Vec<_>>());
    }
    Ok(())
}

fn run_deque<T: Item>(
    ops: Vec<DOp<T>>,
    maxlen: Option<usize>,
    open: impl Fn(&Path) -> Deque<T>,
) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let bound = |d: Deque<T>, maxlen: Option<usize>| match maxlen {
        Some(n) => d.with_maxlen(n).unwrap(),
        None => d,
    };
    let mut d = bound(open(dir.path()), maxlen);
    prop_assert_eq!(d.maxlen(), maxlen);
    let mut m = DModel {
        items: VecDeque::new(),
        maxlen,
    };
    for (step, op) in ops.into_iter().enumerate() {
        match op {
            DOp::PushBack(v) => {
                d.push_back(&v).unwrap();
                m.push_back(v);
            }
            DOp::PushFront(v) => {
                d.push_front(&v).unwrap();
                m.push_front(v);
            }
            DOp::PopFront => prop_assert_eq!(d.pop_front().unwrap(), m.items.pop_front()),
            DOp::PopBack => prop_assert_eq!(d.pop_back().unwrap(), m.items.pop_back()),
            DOp::Get(i) => prop_assert_eq!(d.get(i).unwrap(), m.items.get(i).cloned()),
            DOp::Clear => {
                prop_assert_eq!(d.clear().unwrap(), m.items.len());
                m.items.clear();
            }
            DOp::Extend(vs) => {
                d.extend(&vs).unwrap();
                m.items.extend(vs);
                m.truncate_front();
            }
            DOp::PopFrontMany(n) => {
                let want: Vec<T> = std::iter::from_fn(|| m.items.pop_front()).take(n).collect();
                prop_assert_eq!(d.pop_front_many(n).unwrap(), want);
            }
            DOp::PopBackMany(n) => {
                let want: Vec<T> = std::iter::from_fn(|| m.items.pop_back()).take(n).collect();
                prop_assert_eq!(d.pop_back_many(n).unwrap(), want);
            }
            DOp::RotateLeft(n) => {
                d.rotate_left(n).unwrap();
                if !m.items.is_empty() {
                    let len = m.items.len();
                    m.items.rotate_left(n % len);
                }
            }
            DOp::RotateRight(n) => {
                d.rotate_right(n).unwrap();
                if !m.items.is_empty() {
                    let len = m.items.len();
                    m.items.rotate_right(n % len);
                }
            }
            DOp::Retain(k) => {
                let mut seen = Vec::new();
                d.retain(|v| {
                    seen.push(v.clone());
                    v.keep(k)
                })
                .unwrap();
                // The predicate sees every item once, front to back.
                prop_assert_eq!(&seen, &m.items.iter().cloned().collect::<Vec<_>>());
                m.items.retain(|v| v.keep(k));
            }
            DOp::Walk(ends) => {
                let mut it = d.iter().unwrap();
                let mut want = m.items.clone();
                for front in ends {
                    let got = if front { it.next() } else { it.next_back() }.transpose().unwrap();
                    let expected = if front { want.pop_front() } else { want.pop_back() };
                    prop_assert_eq!(got, expected);
                }
                let rest: Vec<T> = it.collect::<Result<_, _>>().unwrap();
                prop_assert_eq!(rest, want.into_iter().collect::<Vec<_>>());
            }
            DOp::Reopen(n) => {
                drop(d);
                let new_maxlen = maxlen.map(|_| n);
                d = bound(open(dir.path()), new_maxlen);
                m.maxlen = new_maxlen;
                m.truncate_front();
            }
        }
        check_deque(&d, &m, step % 3 == 0)?;
    }
    drop(d);
    let d = bound(open(dir.path()), m.maxlen);
    check_deque(&d, &m, true)?;
    prop_assert!(d.cache().check().unwrap().is_empty());
    Ok(())
}

// ---------------------------------------------------------------- Index

#[derive(Debug, Clone)]
enum IOp<K, V> {
    Insert(K, V),
    Get(K),
    Remove(K),
    ContainsKey(K),
    Clear,
    First,
    Last,
    PopFirst,
    PopLast,
    GetOrInsert(K, V),
    Extend(Vec<(K, V)>),
    /// Walks `iter()` (or `keys()` / `values()`) from both ends: `true` takes from the front.
    Walk(u8, Vec<bool>),
    Reopen,
}

fn index_op<K: Item + 'static, V: Item + 'static>(
    key: impl Strategy<Value = K> + Clone + 'static,
    value: impl Strategy<Value = V> + Clone + 'static,
    extend: std::ops::Range<usize>,
) -> impl Strategy<Value = IOp<K, V>> {
    prop_oneof![
        8 => (key.clone(), value.clone()).prop_map(|(k, v)| IOp::Insert(k, v)),
        2 => key.clone().prop_map(IOp::Get),
        4 => key.clone().prop_map(IOp::Remove),
        1 => key.clone().prop_map(IOp::ContainsKey),
        1 => Just(IOp::Clear),
        1 => Just(IOp::First),
        1 => Just(IOp::Last),
        2 => Just(IOp::PopFirst),
        2 => Just(IOp::PopLast),
        2 => (key.clone(), value.clone()).prop_map(|(k, v)| IOp::GetOrInsert(k, v)),
        2 => proptest::collection::vec((key, value), extend).prop_map(IOp::Extend),
        2 => (0u8..3, proptest::collection::vec(any::<bool>(), 0..10)).prop_map(|(w, e)| IOp::Walk(w, e)),
        1 => Just(IOp::Reopen),
    ]
}

/// The model: a python dict (insertion order; re-inserting keeps the place).
struct IModel<K, V> {
    items: Vec<(K, V)>,
}

impl<K: Item, V: Item> IModel<K, V> {
    fn position(&self, k: &K) -> Option<usize> {
        self.items.iter().position(|(key, _)| key == k)
    }

    fn get(&self, k: &K) -> Option<&V> {
        self.position(k).map(|i| &self.items[i].1)
    }

    fn insert(&mut self, k: K, v: V) {
        match self.position(&k) {
            Some(i) => self.items[i].1 = v,
            None => self.items.push((k, v)),
        }
    }

    fn remove(&mut self, k: &K) -> Option<V> {
        self.position(k).map(|i| self.items.remove(i).1)
    }
}

fn check_index<K: Item, V: Item>(ix: &Index<K, V>, m: &IModel<K, V>, rev: bool) -> Result<(), TestCaseError> {
    prop_assert_eq!(ix.len().unwrap(), m.items.len());
    prop_assert_eq!(ix.is_empty().unwrap(), m.items.is_empty());
    let items: Vec<(K, V)> = ix.iter().unwrap().collect::<Result<_, _>>().unwrap();
    prop_assert_eq!(&items, &m.items);
    let keys: Vec<K> = ix.keys().unwrap().collect::<Result<_, _>>().unwrap();
    prop_assert_eq!(&keys, &m.items.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>());
    let values: Vec<V> = ix.values().unwrap().collect::<Result<_, _>>().unwrap();
    prop_assert_eq!(&values, &m.items.iter().map(|(_, v)| v.clone()).collect::<Vec<_>>());
    if rev {
        let backward: Vec<(K, V)> = ix.iter().unwrap().rev().collect::<Result<_, _>>().unwrap();
        prop_assert_eq!(&backward, &m.items.iter().rev().cloned().collect::<Vec<_>>());
        let keys: Vec<K> = ix.keys().unwrap().rev().collect::<Result<_, _>>().unwrap();
        prop_assert_eq!(&keys, &m.items.iter().rev().map(|(k, _)| k.clone()).collect::<Vec<_>>());
    }
    Ok(())
}

fn run_index<K: Item, V: Item>(ops: Vec<IOp<K, V>>, open: impl Fn(&Path) -> Index<K, V>) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let mut ix = open(dir.path());
    let mut m = IModel { items: Vec::new() };
    for (step, op) in ops.into_iter().enumerate() {
        match op {
            IOp::Insert(k, v) => {
                ix.insert(&k, &v).unwrap();
                m.insert(k, v);
            }
            IOp::Get(k) => prop_assert_eq!(ix.get(&k).unwrap(), m.get(&k).cloned()),
            IOp::Remove(k) => prop_assert_eq!(ix.remove(&k).unwrap(), m.remove(&k)),
            IOp::ContainsKey(k) => prop_assert_eq!(ix.contains_key(&k).unwrap(), m.get(&k).is_some()),
            IOp::Clear => {
                prop_assert_eq!(ix.clear().unwrap(), m.items.len());
                m.items.clear();
            }
            IOp::First => prop_assert_eq!(ix.first().unwrap(), m.items.first().cloned()),
            IOp::Last => prop_assert_eq!(ix.last().unwrap(), m.items.last().cloned()),
            IOp::PopFirst => {
                let want = if m.items.is_empty() {
                    None
                } else {
                    Some(m.items.remove(0))
                };
                prop_assert_eq!(ix.pop_first().unwrap(), want);
            }
            IOp::PopLast => prop_assert_eq!(ix.pop_last().unwrap(), m.items.pop()),
            IOp::GetOrInsert(k, v) => {
                let called = Cell::new(false);
                let got = ix
                    .get_or_insert_with(&k, || {
                        called.set(true);
                        v.clone()
                    })
                    .unwrap();
                match m.get(&k).cloned() {
                    Some(old) => {
                        prop_assert_eq!(got, old);
                        prop_assert!(!called.get(), "make() ran for a present key");
                    }
                    None => {
                        prop_assert_eq!(&got, &v);
                        prop_assert!(called.get());
                        m.insert(k, v);
                    }
                }
            }
            IOp::Extend(pairs) => {
                ix.extend(pairs.iter().map(|(k, v)| (k, v))).unwrap();
                for (k, v) in pairs {
                    m.insert(k, v);
                }
            }
            IOp::Walk(which, ends) => {
                let mut want: VecDeque<(K, V)> = m.items.iter().cloned().collect();
                let mut take = |front: bool| if front { want.pop_front() } else { want.pop_back() };
                match which {
                    0 => {
                        let mut it = ix.iter().unwrap();
                        for &front in &ends {
                            let got = if front { it.next() } else { it.next_back() }.transpose().unwrap();
                            prop_assert_eq!(got, take(front));
                        }
                        let rest: Vec<(K, V)> = it.collect::<Result<_, _>>().unwrap();
                        prop_assert_eq!(rest, want.into_iter().collect::<Vec<_>>());
                    }
                    1 => {
                        let mut it = ix.keys().unwrap();
                        for &front in &ends {
                            let got = if front { it.next() } else { it.next_back() }.transpose().unwrap();
                            prop_assert_eq!(got, take(front).map(|(k, _)| k));
                        }
                        let rest: Vec<K> = it.collect::<Result<_, _>>().unwrap();
                        prop_assert_eq!(rest, want.into_iter().map(|(k, _)| k).collect::<Vec<_>>());
                    }
                    _ => {
                        let mut it = ix.values().unwrap();
                        for &front in &ends {
                            let got = if front { it.next() } else { it.next_back() }.transpose().unwrap();
                            prop_assert_eq!(got, take(front).map(|(_, v)| v));
                        }
                        let rest: Vec<V> = it.collect::<Result<_, _>>().unwrap();
                        prop_assert_eq!(rest, want.into_iter().map(|(_, v)| v).collect::<Vec<_>>());
                    }
                }
            }
            IOp::Reopen => {
                drop(ix);
                ix = open(dir.path());
            }
        }
        check_index(&ix, &m, step % 3 == 0)?;
    }
    drop(ix);
    let ix = open(dir.path());
    check_index(&ix, &m, true)?;
    prop_assert!(ix.cache().check().unwrap().is_empty());
    Ok(())
}

/// Eight string keys, one empty and one not ASCII.
fn string_key() -> impl Strategy<Value = String> + Clone {
    prop::sample::select(vec!["a", "b", "c", "d", "key-5", "", "é✓", "0"]).prop_map(String::from)
}

/// Eight integer keys, the extremes included.
fn int_key() -> impl Strategy<Value = i64> + Clone {
    prop::sample::select(vec![i64::MIN, -7, -1, 0, 1, 2, 1 << 40, i64::MAX])
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn deque_of_ints_matches_vecdeque(ops in proptest::collection::vec(deque_op(int_value()), 1..40)) {
        run_deque(ops, None, |dir| Deque::<i64>::open(dir).unwrap())?;
    }

    #[test]
    fn deque_of_strings_matches_vecdeque(ops in proptest::collection::vec(deque_op(string_value()), 1..40)) {
        run_deque(ops, None, |dir| Deque::<String>::from_cache(string_cache(dir)))?;
    }

    #[test]
    fn bounded_deque_matches_python_deque_maxlen(
        maxlen in 0usize..6,
        ops in proptest::collection::vec(deque_op(int_value()), 1..40),
    ) {
        run_deque(ops, Some(maxlen), |dir| Deque::<i64>::open(dir).unwrap())?;
    }

    #[test]
    fn index_of_string_keys_matches_dict(
        ops in proptest::collection::vec(index_op(string_key(), int_value(), 0..6), 1..40),
    ) {
        run_index(ops, |dir| Index::<String, i64>::open(dir).unwrap())?;
    }

    #[test]
    fn index_of_int_keys_matches_dict(
        ops in proptest::collection::vec(index_op(int_key(), string_value(), 0..6), 1..40),
    ) {
        run_index(ops, |dir| Index::<i64, String>::from_cache(string_cache(dir)))?;
    }

    /// Many keys, so that the iterators cross their 100-row pages.
    #[test]
    fn big_index_matches_dict(
        ops in proptest::collection::vec(index_op(0i64..300, int_value(), 0..150), 1..30),
    ) {
        run_index(ops, |dir| Index::<i64, i64>::open(dir).unwrap())?;
    }
}

/// The long strings of the generators above do go to value files.
#[test]
fn long_strings_are_stored_in_value_files() {
    let dir = tempfile::tempdir().unwrap();
    let d = Deque::<String>::from_cache(string_cache(dir.path()));
    let long = "y".repeat(2000);
    d.push_back(&long).unwrap();
    d.push_back(&"short".to_string()).unwrap();
    let files = |p: &Path| {
        fn walk(p: &Path, n: &mut usize) {
            for e in std::fs::read_dir(p).unwrap() {
                let e = e.unwrap();
                if e.file_type().unwrap().is_dir() {
                    walk(&e.path(), n);
                } else if e.path().extension().is_some_and(|x| x == "val") {
                    *n += 1;
                }
            }
        }
        let mut n = 0;
        walk(p, &mut n);
        n
    };
    assert_eq!(files(dir.path()), 1);
    assert_eq!(d.pop_front().unwrap(), Some(long));
    assert_eq!(files(dir.path()), 0);
}
