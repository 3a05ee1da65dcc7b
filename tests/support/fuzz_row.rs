//! Hostile stored rows, made from arbitrary bytes and fed through diskq's
//! public API: a row (key, raw, mode, value, filename, tag, expiry) is
//! written straight into `cache.db` with rusqlite, as a damaged file or a
//! foreign writer could leave it, and then read back through every typed
//! read. Any answer is fine except a panic, a hang or a file touched
//! outside the cache directory.
//!
//! Shared by the cargo-fuzz target (`fuzz/fuzz_targets/decode_row.rs`,
//! through `fuzz/src/lib.rs`) and the stable test that runs it in CI
//! (`tests/fuzz_corpus.rs`). It lives here, not in `fuzz/`, because the
//! published crate leaves `fuzz/` out and its tests must still compile.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use diskq::{Cache, Key};
use rusqlite::types::Value;

/// Reads fields off the front of the input; runs dry into zeros.
struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((b, rest)) => {
                self.0 = rest;
                *b
            }
            None => 0,
        }
    }
    fn int(&mut self) -> i64 {
        let mut n = [0u8; 8];
        for b in &mut n {
            *b = self.byte();
        }
        i64::from_le_bytes(n)
    }
    fn blob(&mut self) -> Vec<u8> {
        let len = (self.byte() as usize).min(self.0.len());
        let (b, rest) = self.0.split_at(len);
        self.0 = rest;
        b.to_vec()
    }
    /// A stored cell: mostly small, typical values, sometimes extreme ones.
    fn cell(&mut self) -> Value {
        match self.byte() % 9 {
            0 => Value::Null,
            1 => Value::Integer(i64::from(self.byte() as i8)),
            2 => Value::Integer(self.int()),
            3 => Value::Real(f64::from_bits(self.int() as u64)),
            4 => Value::Real(f64::from(self.byte()) / 4.0),
            5 => Value::Text(String::from_utf8_lossy(&self.blob()).into_owned()),
            // Valid MessagePack is likelier from a small prefix menu.
            6 => {
                let mut b = match self.byte() % 6 {
                    0 => vec![0x81, 0xA1, b'a'],
                    1 => vec![0x92],
                    2 => vec![0xDD, 0xFF, 0xFF, 0xFF, 0xFF],
                    3 => vec![0xC4],
                    4 => vec![0xCB],
                    _ => vec![],
                };
                b.extend(self.blob());
                Value::Blob(b)
            }
            _ => Value::Blob(self.blob()),
        }
    }
}

/// One row as it would sit in the `Cache` table.
#[derive(Debug)]
pub struct Row {
    pub key: Value,
    pub raw: Value,
    pub mode: Value,
    pub value: Value,
    pub filename: Value,
    /// Content of the value file, written when `filename` is a plain
    /// value-file name (never anything that could leave the directory).
    pub file: Option<Vec<u8>>,
    pub tag: Value,
    pub expire_time: Value,
    pub size: Value,
}

/// Builds a row from fuzzer bytes.
pub fn row(data: &[u8]) -> Row {
    let mut b = Bytes(data);
    let key = b.cell();
    let raw = match b.byte() % 4 {
        0 => Value::Integer(0),
        1 => Value::Integer(1),
        _ => b.cell(),
    };
    let mode = match b.byte() % 3 {
        0 => Value::Integer(i64::from(b.byte() % 7)),
        _ => b.cell(),
    };
    let value = b.cell();
    let (filename, file) = match b.byte() % 4 {
        0 => (Value::Null, None),
        1 => (
            Value::Text("ab/cd/0123456789abcdef0123456789ab.val".into()),
            Some(b.blob()),
        ),
        2 => (Value::Text("ab/cd/missing.val".into()), None),
        _ => (b.cell(), None),
    };
    let tag = b.cell();
    let expire_time = match b.byte() % 3 {
        0 => Value::Null,
        _ => b.cell(),
    };
    let size = b.cell();
    Row {
        key,
        raw,
        mode,
        value,
        filename,
        file,
        tag,
        expire_time,
        size,
    }
}

const INSERT: &str = "INSERT OR REPLACE INTO Cache \
    (key, raw, store_time, expire_time, access_time, access_count, tag, size, mode, filename, value) \
    VALUES (?1, ?2, 0, ?3, 0, 0, ?4, ?5, ?6, ?7, ?8)";

#[derive(serde::Deserialize, Debug)]
#[allow(dead_code)]
struct Page {
    url: String,
    status: u16,
    tags: Vec<String>,
}

#[derive(serde::Deserialize, Debug)]
#[allow(dead_code)]
enum Shape {
    Unit,
    Pair(i32, i32),
    Named { a: Option<bool> },
}

/// Every typed read of `key`; each may fail, none may panic.
fn read_all(cache: &Cache, key: &Key) {
    fn show<T: std::fmt::Debug>(r: diskq::Result<T>) {
        if let Err(e) = r {
            assert!(!e.to_string().is_empty(), "an error without a message: {e:?}");
        }
    }
    show(cache.get::<i64>(key));
    show(cache.get::<u8>(key));
    show(cache.get::<u64>(key));
    show(cache.get::<f32>(key));
    show(cache.get::<f64>(key));
    show(cache.get::<bool>(key));
    show(cache.get::<char>(key));
    show(cache.get::<()>(key));
    show(cache.get::<String>(key));
    show(cache.get::<Vec<u8>>(key));
    show(cache.get::<serde_bytes::ByteBuf>(key));
    show(cache.get::<Option<i64>>(key));
    show(cache.get::<Vec<String>>(key));
    show(cache.get::<(i64, String)>(key));
    show(cache.get::<BTreeMap<String, i64>>(key));
    show(cache.get::<Page>(key));
    show(cache.get::<Shape>(key));
    show(cache.get_entry::<String>(key));
    show(cache.get_bytes(key));
    show(cache.contains_key(key));
    match cache.read(key) {
        Ok(Some(reader)) => {
            if let Some(path) = reader.path() {
                assert!(
                    path.starts_with(cache.directory()),
                    "read {path:?} outside the directory"
                );
            }
            let mut data = Vec::new();
            // Bounded: a hostile row must not make this read for ever.
            let _ = reader.take(1 << 20).read_to_end(&mut data);
        }
        other => show(other),
    }
}

/// Writes the row from `data` into the cache in `dir` and reads it back
/// every way there is. `dir` is a fresh directory or one left by earlier
/// calls (rows pile up, as they would in a damaged file).
pub fn exercise(dir: &Path, data: &[u8]) {
    let cache = Cache::builder()
        .min_file_size(64)
        .open(dir)
        .expect("a fresh cache opens");
    let row = row(data);
    if let Some(content) = &row.file {
        let path = dir.join("ab/cd/0123456789abcdef0123456789ab.val");
        std::fs::create_dir_all(path.parent().expect("has a folder")).expect("value folder");
        std::fs::write(&path, content).expect("value file");
    }
    let conn = rusqlite::Connection::open(dir.join("cache.db")).expect("cache.db opens");
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .expect("busy timeout");
    let inserted = conn.execute(
        INSERT,
        rusqlite::params![
            row.key,
            row.raw,
            row.expire_time,
            row.tag,
            row.size,
            row.mode,
            row.filename,
            row.value
        ],
    );
    drop(conn);
    if inserted.is_err() {
        return;
    }

    // The key as a caller would name it.
    let raw = !matches!(row.raw, Value::Integer(0));
    let key = match &row.key {
        Value::Integer(n) => Some(Key::Int(*n)),
        Value::Real(x) if !x.is_nan() => Some(Key::Float(*x)),
        Value::Text(t) => Some(Key::Text(t.clone())),
        Value::Blob(b) if raw => Some(Key::Bytes(b.clone())),
        Value::Blob(b) => Some(Key::Encoded(b.clone())),
        _ => None,
    };
    if let Some(key) = &key {
        read_all(&cache, key);
        let _ = key.decode::<(String, i64)>();
        let _ = key.decode::<serde_bytes::ByteBuf>();
    }
    // Every key the cache lists, both ways, and the items at its ends.
    if let Ok(keys) = cache.keys() {
        for k in keys.take(64).flatten() {
            read_all(&cache, &k);
        }
    }
    if let Ok(keys) = cache.keys() {
        let _ = keys.rev().take(64).count();
    }
    let _ = cache.first_item::<String>();
    let _ = cache.last_item::<i64>();
    let _ = cache.peek::<i64>();
    let _ = cache.len();
    let _ = cache.volume();
    let _ = cache.check();
    let _ = cache.pull::<String>();
    if let Some(key) = &key {
        let _ = cache.pop::<serde_bytes::ByteBuf>(key);
    }
    let _ = cache.expire();
    // repair() may remove rows and files, but only inside the directory.
    let _ = cache.repair();
}
