//! The fuzz target's code (`tests/support/fuzz_row.rs`, which
//! `fuzz/src/lib.rs` includes) on stable, so CI runs it:
//! random bytes become hostile stored rows, written into `cache.db`
//! directly and read back through every typed read. Also a few rows made
//! by hand that the byte decoder cannot make (text that is not UTF-8).
#![allow(clippy::unwrap_used)]

#[path = "support/fuzz_row.rs"]
#[allow(dead_code)]
mod row;

use std::path::Path;

use diskq::{Cache, Key};
use proptest::prelude::*;

/// A file beside the cache directory that nothing may touch.
fn sentinel(tmp: &Path) -> std::path::PathBuf {
    let path = tmp.join("sentinel.val");
    std::fs::write(&path, b"outside").unwrap();
    path
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 80, ..ProptestConfig::default() })]

    /// A handful of random rows piled into one directory.
    #[test]
    fn random_rows_never_panic(rows in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..96), 1..5)) {
        let tmp = tempfile::tempdir().unwrap();
        let outside = sentinel(tmp.path());
        let dir = tmp.path().join("cache");
        for data in &rows {
            row::exercise(&dir, data);
        }
        prop_assert_eq!(std::fs::read(&outside).unwrap(), b"outside");
    }
}

/// Rows that are valid in SQLite's eyes but wrong in diskq's, one per kind
/// of damage: each read is an error or a miss, never a panic.
#[test]
fn hand_made_rows() {
    let cases: &[&[u8]] = &[
        // key NULL (cell kind 0), raw 1, mode 5 (MessagePack) with garbage.
        &[0, 1, 0, 5, 6, 2, 4, 1, 2, 3, 4],
        // text key, mode 2 (bytes in a file), file present but short.
        &[5, 1, b'k', 1, 0, 2, 0, 1, 3, b'a', b'b', b'c'],
        // text key, mode 3 (text in a file) whose file is missing.
        &[5, 1, b'k', 1, 0, 3, 0, 2],
        // integer key, mode 4 (a pickle).
        &[1, 7, 1, 0, 4, 7, 2, 0x80, 0x04],
        // blob key with raw 0 (encoded) that is not MessagePack, mode 99.
        &[7, 2, 0xC1, 0xC1, 0, 1, 1, 99],
        // huge MessagePack array header with nothing behind it.
        &[5, 1, b'a', 1, 0, 5, 6, 2, 0],
    ];
    let tmp = tempfile::tempdir().unwrap();
    let outside = sentinel(tmp.path());
    let dir = tmp.path().join("cache");
    for data in cases {
        row::exercise(&dir, data);
    }
    assert_eq!(std::fs::read(&outside).unwrap(), b"outside");
    let cache = Cache::open(&dir).unwrap();
    cache.repair().unwrap();
    assert!(
        cache.check().unwrap().is_empty(),
        "repair() brings the rows back in line"
    );
}

/// Text that is not UTF-8, as a key and as a value (rusqlite only binds
/// valid text, so the row is made with a CAST).
#[test]
fn text_that_is_not_utf8() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path()).unwrap();
    cache.set("good", &1).unwrap();
    let conn = rusqlite::Connection::open(dir.path().join("cache.db")).unwrap();
    conn.execute(
        "INSERT INTO Cache (key, raw, store_time, access_time, mode, value) \
         VALUES (CAST(x'ff6b' AS TEXT), 1, 0, 0, 1, CAST(x'c328' AS TEXT)), ('badvalue', 1, 0, 0, 1, CAST(x'fffe' AS TEXT))",
        [],
    )
    .unwrap();
    // An inline text value is read lossily (replacement characters), while
    // a text value *file* that is not UTF-8 is Error::Corrupt: see the note
    // in the reliability report.
    assert_eq!(
        cache.get::<String>("badvalue").unwrap().as_deref(),
        Some("\u{FFFD}\u{FFFD}")
    );
    let keys: Vec<_> = cache.keys().unwrap().collect();
    assert_eq!(keys.len(), 3, "{keys:?}");
    assert!(
        keys.iter().any(|k| k.is_err()),
        "the key that is not UTF-8 is an error: {keys:?}"
    );
    assert_eq!(cache.get::<i64>("good").unwrap(), Some(1));
    assert_eq!(cache.get::<i64>(Key::Text("k".into())).unwrap(), None);
}
