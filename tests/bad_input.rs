//! Hostile input to the public entry points: huge streamed values, huge and
//! empty keys, keys of every kind side by side, NaN and infinite keys,
//! overflowing counters, odd queue prefixes, values that fail to serialize
//! in batches, more invalid Settings rows, odd characters in paths, and
//! symbolic links in the value folders. (tests/errors.rs has the first
//! round of these: bad paths, a database that is not SQLite, NaN keys on
//! set and get, a wrong-type decode, a failing serialize on set and push.)
#![allow(clippy::unwrap_used)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use diskq::{Cache, Deque, Error, Key, PullOptions, PushOptions, SetOptions, WarningKind};

#[path = "support/chain.rs"]
#[allow(dead_code)]
mod support_chain;
use support_chain::chain;

const MIB: u64 = 1 << 20;

// ---------------------------------------------------------------- huge values

/// A reader that makes `len` bytes out of nothing: 64 KiB blocks of a fixed
/// pseudo-random pattern, each starting with its block number, so a block
/// read back in the wrong place or torn is caught. Feeds every byte it hands
/// out to a checksum.
struct Generator {
    pattern: Vec<u8>,
    len: u64,
    at: u64,
    sum: adler2::Adler32,
}

const BLOCK: usize = 64 * 1024;

fn pattern() -> Vec<u8> {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    (0..BLOCK)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Block `n` of the generated stream.
fn block(pattern: &[u8], n: u64) -> Vec<u8> {
    let mut b = pattern.to_vec();
    b[..8].copy_from_slice(&n.to_le_bytes());
    b
}

impl Generator {
    fn new(len: u64) -> Generator {
        Generator {
            pattern: pattern(),
            len,
            at: 0,
            sum: adler2::Adler32::new(),
        }
    }
}

impl Read for Generator {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let offset = (self.at % BLOCK as u64) as usize;
        let n = buf.len().min(BLOCK - offset).min((self.len - self.at) as usize);
        if n == 0 {
            return Ok(0);
        }
        let mut b = self.pattern[offset..offset + n].to_vec();
        // The block number sits in the block's first 8 bytes.
        let number = (self.at / BLOCK as u64).to_le_bytes();
        for (i, byte) in b.iter_mut().enumerate() {
            if offset + i < 8 {
                *byte = number[offset + i];
            }
        }
        buf[..n].copy_from_slice(&b);
        self.sum.write_slice(&b);
        self.at += n as u64;
        Ok(n)
    }
}

/// Peak resident memory of this process, from /proc (Linux).
fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Free bytes on the file system of `dir`, from `df`.
fn free_bytes(dir: &Path) -> u64 {
    let out = std::process::Command::new("df").arg("-Pk").arg(dir).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().nth(1).unwrap_or_else(|| panic!("df printed {text:?}"));
    let kib: u64 = line.split_whitespace().nth(3).unwrap().parse().unwrap();
    kib * 1024
}

/// Streams `len` bytes in, checks the stored size, streams them back out
/// comparing each block and the checksum; returns the peak memory.
fn stream_through(dir: &Path, len: u64) -> Option<u64> {
    // Above the default size limit (1 GiB) a set is followed by a cull that
    // takes the newest item too when it is the only one (as in
    // python-diskcache): raise the limit.
    let cache = Cache::builder().size_limit(1 << 40).open(dir).unwrap();
    let mut generator = Generator::new(len);
    let size = cache.set_reader("huge", &mut generator, &SetOptions::new()).unwrap();
    assert_eq!(size, len);
    assert_eq!(generator.at, len, "the whole reader was consumed");
    let written_sum = generator.sum.checksum();

    let mut reader = cache.read("huge").unwrap().expect("stored");
    assert_eq!(reader.len(), len, "stored size");
    let file = reader.path().expect("a value this large is a file").to_path_buf();
    assert!(file.starts_with(dir));
    assert_eq!(std::fs::metadata(&file).unwrap().len(), len);
    let pattern = pattern();
    let mut sum = adler2::Adler32::new();
    let mut buf = vec![0u8; BLOCK];
    let mut n = 0u64;
    let mut total = 0u64;
    loop {
        let want = BLOCK.min((len - total) as usize);
        if want == 0 {
            break;
        }
        reader.read_exact(&mut buf[..want]).unwrap();
        assert!(buf[..want] == block(&pattern, n)[..want], "block {n} differs");
        sum.write_slice(&buf[..want]);
        total += want as u64;
        n += 1;
    }
    assert_eq!(reader.read(&mut buf).unwrap(), 0, "no bytes past the stored size");
    assert_eq!(sum.checksum(), written_sum, "checksum of the value read back");
    drop(reader);
    assert!(cache.check().unwrap().is_empty());
    assert!(cache.delete("huge").unwrap());
    assert!(!file.exists(), "the value file goes with its row");
    peak_rss_bytes()
}

/// The half of the huge-value tests that runs in a fresh process, so that
/// its peak memory is its own.
#[test]
fn huge_value_child() {
    let Ok(len) = std::env::var("DISKQ_HUGE_LEN") else {
        return;
    };
    let dir = std::env::var("DISKQ_HUGE_DIR").unwrap();
    let peak = stream_through(Path::new(&dir), len.parse().unwrap());
    println!("PEAK {}", peak.unwrap_or(0));
}

/// Runs `huge_value_child` for `len` bytes; checks its peak memory stayed
/// far below the value's size.
fn huge_value(len: u64, peak_limit: u64) {
    let tmp = tempfile::tempdir().unwrap();
    let free = free_bytes(tmp.path());
    assert!(
        free > len * 2 + 512 * MIB,
        "this test needs {} MiB free where tempfile puts its directory, {} MiB are",
        (len * 2 + 512 * MIB) / MIB,
        free / MIB
    );
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "huge_value_child", "--nocapture", "--test-threads=1"])
        .env("DISKQ_HUGE_LEN", len.to_string())
        .env("DISKQ_HUGE_DIR", tmp.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let peak: u64 = stdout
        .lines()
        .find_map(|l| l.split("PEAK ").nth(1))
        .unwrap_or_else(|| panic!("the child reports its peak memory: {stdout}"))
        .parse()
        .unwrap();
    if cfg!(target_os = "linux") {
        assert!(peak > 0, "VmHWM is readable on Linux");
        assert!(
            peak < peak_limit,
            "peak memory {} MiB for a {} MiB value: it was buffered",
            peak / MIB,
            len / MIB
        );
    }
    eprintln!("{} MiB streamed in and out; peak memory {} MiB", len / MIB, peak / MIB);
}

#[test]
fn a_64_mib_value_streams_through_set_reader_and_read() {
    huge_value(64 * MIB, 48 * MIB);
}

#[test]
#[ignore = "writes and reads 1 GiB (about a minute in a debug build)"]
fn a_1_gib_value_streams_through_set_reader_and_read() {
    huge_value(1024 * MIB + 12345, 64 * MIB);
}

/// A reader that fails half-way leaves no file and no row.
#[test]
fn a_failing_reader_leaves_nothing() {
    struct Failing(u64);
    impl Read for Failing {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.0 == 0 {
                return Err(std::io::Error::other("the source broke"));
            }
            let n = buf.len().min(self.0 as usize);
            buf[..n].fill(7);
            self.0 -= n as u64;
            Ok(n)
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path()).unwrap();
    cache.set_bytes("k", b"old").unwrap();
    let err = cache
        .set_reader("k", &mut Failing(100_000), &SetOptions::new())
        .unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err:?}");
    assert!(chain(&err).contains("the source broke"), "{err}");
    assert_eq!(cache.get_bytes("k").unwrap().as_deref(), Some(&b"old"[..]));
    let warnings = cache.check().unwrap();
    assert!(warnings.is_empty(), "no temporary file left: {warnings:?}");
    let mut files = Vec::new();
    files_below(dir.path(), &mut files);
    assert!(
        files
            .iter()
            .all(|f| f.file_name().unwrap().to_string_lossy().starts_with("cache.db")),
        "{files:?}"
    );
}

fn files_below(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            files_below(&entry.path(), out);
        } else {
            out.push(entry.path());
        }
    }
}

// ----------------------------------------------------------------------- keys

#[test]
fn empty_keys_and_empty_values_are_ordinary() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::builder().min_file_size(16).open(dir.path()).unwrap();
    cache.set("", &1).unwrap();
    cache.set(&b""[..], &2).unwrap();
    cache.set(Key::encode(&()).unwrap(), &3).unwrap();
    cache.set(Key::encode(&Vec::<u8>::new()).unwrap(), &4).unwrap();
    assert_eq!(cache.get::<i64>("").unwrap(), Some(1));
    assert_eq!(cache.get::<i64>(&b""[..]).unwrap(), Some(2));
    assert_eq!(cache.get::<i64>(Key::encode(&()).unwrap()).unwrap(), Some(3));
    assert_eq!(
        cache.get::<i64>(Key::encode(&Vec::<u8>::new()).unwrap()).unwrap(),
        Some(4)
    );
    assert_eq!(cache.len().unwrap(), 4);
    // Empty values: inline, and streamed (an empty value file).
    cache.set("e", "").unwrap();
    cache.set_bytes("b", b"").unwrap();
    assert_eq!(
        cache
            .set_reader("r", &mut std::io::empty(), &SetOptions::new())
            .unwrap(),
        0
    );
    assert_eq!(cache.get::<String>("e").unwrap().as_deref(), Some(""));
    assert_eq!(cache.get_bytes("b").unwrap().as_deref(), Some(&b""[..]));
    assert_eq!(cache.get_bytes("r").unwrap().as_deref(), Some(&b""[..]));
    let mut r = cache.read("r").unwrap().unwrap();
    assert!(r.is_empty());
    assert_eq!(r.read(&mut [0u8; 4]).unwrap(), 0);
    // An empty prefix is a prefix like any other.
    let k = cache.push_with(&5, &PushOptions::new().prefix("")).unwrap();
    let (got, v): (Key, i64) = cache.pull_with(&PullOptions::new().prefix("")).unwrap().unwrap();
    assert_eq!((got, v), (k, 5));
    assert!(cache.check().unwrap().is_empty());
    assert!(cache.delete("").unwrap());
    assert_eq!(cache.get::<i64>(&b""[..]).unwrap(), Some(2), "only the text key went");
}

#[test]
fn huge_keys_work_or_fail_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path()).unwrap();
    let text = "k".repeat(16 << 20);
    let bytes = vec![0xFFu8; 16 << 20];
    cache.set(text.as_str(), &1).unwrap();
    cache.set(bytes.as_slice(), &2).unwrap();
    assert_eq!(cache.get::<i64>(text.as_str()).unwrap(), Some(1));
    assert_eq!(cache.get::<i64>(bytes.as_slice()).unwrap(), Some(2));
    // One byte shorter is another key.
    assert_eq!(cache.get::<i64>(&text[1..]).unwrap(), None);
    let keys: Vec<Key> = cache.keys().unwrap().map(|k| k.unwrap()).collect();
    assert_eq!(keys, [Key::from(text.as_str()), Key::from(bytes.as_slice())]);
    assert!(cache.delete(text.as_str()).unwrap());
    assert_eq!(cache.len().unwrap(), 1);
}

#[test]
fn keys_of_every_kind_side_by_side() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path()).unwrap();
    let keys = [
        Key::Int(1),
        Key::Text("1".into()),
        Key::Bytes(b"1".to_vec()),
        Key::encode(&(1, "1")).unwrap(),
        Key::encode(&[1u8]).unwrap(),
        Key::Int(0),
        Key::Int(i64::MIN),
        Key::Int(i64::MAX),
        Key::Float(0.5),
        Key::Float(f64::INFINITY),
        Key::Float(f64::NEG_INFINITY),
        Key::Float(f64::MIN_POSITIVE),
        Key::Float(-1e300),
        Key::Text("\0nul\u{1F600}".into()),
        Key::Text("'; DROP TABLE Cache; --".into()),
        Key::Bytes(vec![0, 255, 0]),
    ];
    for (i, k) in keys.iter().enumerate() {
        cache.set(k.clone(), &(i as i64)).unwrap();
    }
    assert_eq!(cache.len().unwrap(), keys.len(), "every key is distinct");
    for (i, k) in keys.iter().enumerate() {
        assert_eq!(cache.get::<i64>(k.clone()).unwrap(), Some(i as i64), "{k:?}");
    }
    let listed: Vec<Key> = cache.keys().unwrap().map(|k| k.unwrap()).collect();
    assert_eq!(listed, keys, "keys come back as they went in, in insertion order");
    for k in &keys {
        assert!(cache.delete(k.clone()).unwrap(), "{k:?}");
    }
    assert!(cache.is_empty().unwrap());
}

#[test]
fn an_integer_and_the_equal_float_are_one_key_as_in_python() {
    // python-diskcache (and Python's dict) treat 1 and 1.0 as one key;
    // SQLite compares them equal too. Whichever was set last wins.
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path()).unwrap();
    cache.set(Key::Int(1), &"int").unwrap();
    cache.set(Key::Float(1.0), &"float").unwrap();
    assert_eq!(cache.len().unwrap(), 1);
    assert_eq!(cache.get::<String>(Key::Int(1)).unwrap().as_deref(), Some("float"));
    assert_eq!(cache.get::<String>(Key::Float(1.0)).unwrap().as_deref(), Some("float"));
    // -0.0 and 0.0 are equal keys as well.
    cache.set(Key::Float(-0.0), &"zero").unwrap();
    assert_eq!(cache.get::<String>(Key::Float(0.0)).unwrap().as_deref(), Some("zero"));
}

#[test]
fn nan_keys_are_refused_by_every_entry_point() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path()).unwrap();
    let nan = || Key::Float(f64::NAN);
    let is_invalid = |r: Result<(), Error>, what: &str| match r {
        Err(Error::InvalidKey(m)) => assert!(!m.is_empty()),
        other => panic!("{what}: expected InvalidKey, got {other:?}"),
    };
    is_invalid(cache.set_bytes(nan(), b"x"), "set_bytes");
    is_invalid(
        cache.set_reader(nan(), &mut &b"x"[..], &SetOptions::new()).map(drop),
        "set_reader",
    );
    is_invalid(cache.add(nan(), &1).map(drop), "add");
    is_invalid(cache.incr(nan(), 1, 0).map(drop), "incr");
    is_invalid(cache.decr(nan(), 1, 0).map(drop), "decr");
    is_invalid(cache.delete(nan()).map(drop), "delete");
    is_invalid(cache.pop::<i64>(nan()).map(drop), "pop");
    is_invalid(cache.contains_key(nan()).map(drop), "contains_key");
    is_invalid(cache.touch(nan(), None).map(drop), "touch");
    is_invalid(cache.get_entry::<i64>(nan()).map(drop), "get_entry");
    is_invalid(cache.get_bytes(nan()).map(drop), "get_bytes");
    is_invalid(cache.read(nan()).map(drop), "read");
    is_invalid(cache.get_many::<_, i64, _>([Key::Int(1), nan()]).map(drop), "get_many");
    is_invalid(
        cache
            .set_many([(Key::Int(1), &1), (nan(), &2)], &SetOptions::new())
            .map(drop),
        "set_many",
    );
    // memoize takes any serde key: a NaN becomes an encoded key (as a NaN
    // value becomes MessagePack), stored and found again like any other.
    assert_eq!(cache.memoize(f64::NAN, None, || Ok::<_, Error>(1i64)).unwrap(), 1);
    assert_eq!(cache.memoize(f64::NAN, None, || Ok::<_, Error>(2i64)).unwrap(), 1);
    assert!(cache.clear().unwrap() > 0);
    // A NaN inside an encoded key is just bytes: it is a key like any other.
    let k = Key::encode(&(f64::NAN,)).unwrap();
    cache.set(k.clone(), &1).unwrap();
    assert_eq!(cache.get::<i64>(k).unwrap(), Some(1));
    assert_eq!(cache.len().unwrap(), 1, "nothing else was written");
}

// ----------------------------------------------------------- values, counters

#[test]
fn counters_that_overflow_are_errors_and_keep_their_value() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path()).unwrap();
    cache.set("max", &i64::MAX).unwrap();
    assert!(cache.incr("max", 1, 0).is_err());
    assert_eq!(cache.get::<i64>("max").unwrap(), Some(i64::MAX));
    cache.set("min", &i64::MIN).unwrap();
    assert!(cache.decr("min", 1, 0).is_err());
    assert!(cache.incr("min", i64::MIN, 0).is_err());
    assert_eq!(cache.get::<i64>("min").unwrap(), Some(i64::MIN));
    assert!(cache.decr("new", i64::MIN, 0).is_err(), "0 - i64::MIN overflows");
    assert!(!cache.contains_key("new").unwrap());
    cache.set("text", "7").unwrap();
    assert!(cache.incr("text", 1, 0).is_err(), "incr of a text value");
    assert_eq!(cache.get::<String>("text").unwrap().as_deref(), Some("7"));
}

#[test]
fn extreme_expiry_durations() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path()).unwrap();
    cache
        .set_with("forever", &1, &SetOptions::new().expire(Duration::MAX))
        .unwrap();
    assert_eq!(cache.get::<i64>("forever").unwrap(), Some(1));
    assert!(
        cache
            .get_entry::<i64>("forever")
            .unwrap()
            .unwrap()
            .expire_time
            .is_some()
    );
    assert!(cache.touch("forever", Some(Duration::MAX)).unwrap());
    cache
        .set_with("now", &1, &SetOptions::new().expire(Duration::ZERO))
        .unwrap();
    assert_eq!(cache.get::<i64>("now").unwrap(), None, "expires at once");
    assert_eq!(cache.len().unwrap(), 1);
    assert!(cache.check().unwrap().is_empty());
}

#[test]
fn a_failing_value_in_a_batch_writes_none_of_it() {
    /// Serializes as its number, except a negative one, which fails.
    #[derive(serde::Deserialize)]
    #[serde(transparent)]
    struct Item(i64);
    impl serde::Serialize for Item {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            if self.0 < 0 {
                return Err(serde::ser::Error::custom("bad value"));
            }
            s.serialize_i64(self.0)
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path()).unwrap();
    let items = [Item(1), Item(-1), Item(3)];
    let err = cache
        .set_many(
            [
                (Key::Int(1), &items[0]),
                (Key::Int(2), &items[1]),
                (Key::Int(3), &items[2]),
            ],
            &SetOptions::new(),
        )
        .unwrap_err();
    assert!(matches!(err, Error::Encode { .. }), "{err:?}");
    assert!(cache.push_many(items.iter(), &PushOptions::new()).is_err());
    assert!(cache.add("k", &items[1]).is_err());
    assert!(cache.memoize("m", None, || Ok::<_, Error>(Item(-2))).is_err());
    let deque: Deque<Item> = Deque::from_cache(cache.clone());
    assert!(deque.extend(&items).is_err());
    assert!(deque.push_front(&items[1]).is_err());
    let left: Vec<Key> = cache.keys().unwrap().map(|k| k.unwrap()).collect();
    assert!(left.is_empty(), "nothing of a failed batch was written: {left:?}");
    assert!(cache.check().unwrap().is_empty());
}

#[test]
fn values_that_are_wrong_for_the_asked_type() {
    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    struct V1 {
        a: u8,
    }
    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct V2 {
        a: u8,
        b: String,
    }
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::builder().min_file_size(8).open(dir.path()).unwrap();
    cache.set("big", &300i64).unwrap();
    cache.set("neg", &-1i64).unwrap();
    cache.set("float", &1.5f64).unwrap();
    cache.set("bytes", serde_bytes::Bytes::new(&[0xFF, 0xFE])).unwrap();
    cache.set("longtext", "a text long enough for a value file").unwrap();
    cache.set("v1", &V1 { a: 1 }).unwrap();
    let decode = |r: Result<(), Error>, what: &str| match r {
        Err(e @ Error::Decode { .. }) => assert!(e.to_string().contains(what), "{e}"),
        other => panic!("{what}: expected Decode, got {other:?}"),
    };
    decode(cache.get::<u8>("big").map(drop), "big");
    decode(cache.get::<u64>("neg").map(drop), "neg");
    decode(cache.get::<i64>("float").map(drop), "float");
    decode(cache.get::<String>("bytes").map(drop), "bytes");
    decode(cache.get::<i64>("longtext").map(drop), "longtext");
    decode(cache.get::<V2>("v1").map(drop), "v1");
    decode(cache.get::<Vec<String>>("v1").map(drop), "v1");
    decode(cache.pop::<bool>("big").map(drop), "big");
    assert_eq!(cache.get::<V1>("v1").unwrap(), Some(V1 { a: 1 }));
    assert_eq!(
        cache.get::<i64>("big").unwrap(),
        Some(300),
        "a failed pop keeps the value"
    );
    assert!(cache.read("v1").unwrap_err().is_decode(), "read of a struct");
    assert!(cache.read("big").unwrap_err().is_decode(), "read of an integer");
    assert_eq!(cache.len().unwrap(), 6);
}

// ------------------------------------------------------------------ prefixes

#[test]
fn queue_prefixes_with_pattern_characters_stay_apart() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path()).unwrap();
    let prefixes = ["a", "a%", "a_", "_", "%", "a-b", "a-", "'", "\\", "ä", "a\0b", "a b"];
    for (i, p) in prefixes.iter().enumerate() {
        for j in 0..3 {
            cache.push_with(&(i * 10 + j), &PushOptions::new().prefix(*p)).unwrap();
        }
    }
    // Plain pushes (integer keys) are a queue of their own.
    cache.push(&999usize).unwrap();
    for (i, p) in prefixes.iter().enumerate() {
        let opts = PullOptions::new().prefix(*p);
        let got: Vec<usize> = std::iter::from_fn(|| cache.pull_with::<usize>(&opts).unwrap().map(|(_, v)| v)).collect();
        assert_eq!(got, [i * 10, i * 10 + 1, i * 10 + 2], "prefix {p:?}");
    }
    assert_eq!(cache.pull::<usize>().unwrap().map(|(_, v)| v), Some(999));
    assert!(cache.is_empty().unwrap());
}

// ------------------------------------------------------------------ settings

#[test]
fn more_invalid_settings_rows_are_refused() {
    use rusqlite::types::Value;
    for (key, bad) in [
        ("statistics", Value::Text("yes".into())),
        ("tag_index", Value::Real(0.5)),
        ("size_limit", Value::Text("1GB".into())),
        ("size_limit", Value::Null),
        ("cull_limit", Value::Integer(-1)),
        ("cull_limit", Value::Blob(vec![1, 2])),
        ("disk_min_file_size", Value::Text("big".into())),
        ("sqlite_mmap_size", Value::Text("lots".into())),
        ("sqlite_cache_size", Value::Blob(vec![0])),
        ("sqlite_synchronous", Value::Text("2; PRAGMA writable_schema=1".into())),
        ("sqlite_journal_mode", Value::Integer(3)),
        ("eviction_policy", Value::Null),
        ("eviction_policy", Value::Text("".into())),
        ("diskq_format_version", Value::Text("one".into())),
    ] {
        let dir = tempfile::tempdir().unwrap();
        Cache::open(dir.path()).unwrap().set("k", &1).unwrap();
        let conn = rusqlite::Connection::open(dir.path().join("cache.db")).unwrap();
        conn.execute("UPDATE Settings SET value = ?2 WHERE key = ?1", (key, &bad))
            .unwrap();
        match Cache::open(dir.path()) {
            Err(e @ (Error::InvalidSetting { .. } | Error::UnsupportedFormat { .. })) => {
                if let Error::InvalidSetting { name, .. } = &e {
                    assert_eq!(name, key);
                }
            }
            other => panic!("{key} = {bad:?}: expected InvalidSetting, got {other:?}"),
        }
        let now: Value = conn
            .query_row("SELECT value FROM Settings WHERE key = ?1", [key], |r| r.get(0))
            .unwrap();
        assert_eq!(now, bad, "{key} was changed");
    }
}

// --------------------------------------------------------------------- paths

#[test]
fn paths_with_odd_characters() {
    let tmp = tempfile::tempdir().unwrap();
    for name in [
        "with space",
        "ünïcödé-😀",
        "question?mode=ro",
        "hash#frag",
        "percent%20",
        "file:looks-like-a-uri",
        "-leading-dash",
        "quote'\"",
        "new\nline",
        ":memory:",
        "semi;colon",
    ] {
        let dir = tmp.path().join(name);
        {
            let cache = Cache::builder().min_file_size(8).open(&dir).unwrap();
            cache.set("small", &1).unwrap();
            cache.set("large", "a value in a file").unwrap();
        }
        assert!(
            dir.join("cache.db").is_file(),
            "{name:?}: the database is inside the directory"
        );
        let cache = Cache::open(&dir).unwrap();
        assert_eq!(cache.get::<i64>("small").unwrap(), Some(1), "{name:?}");
        assert_eq!(
            cache.get::<String>("large").unwrap().as_deref(),
            Some("a value in a file")
        );
        assert!(cache.check().unwrap().is_empty(), "{name:?}");
        assert_eq!(cache.directory(), dir);
    }
    // Nothing was created beside the directories asked for.
    let mut made: Vec<String> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    made.sort();
    assert_eq!(made.len(), 11, "{made:?}");
}

// ------------------------------------------------------------------ symlinks

/// A cache whose value folders exist, plus an outside folder holding a file
/// that must survive.
#[cfg(unix)]
struct Linked {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    outside: PathBuf,
    cache: Cache,
}

#[cfg(unix)]
fn linked() -> Linked {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cache");
    let outside = tmp.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("secret"), b"outside data").unwrap();
    let cache = Cache::builder().min_file_size(8).open(&dir).unwrap();
    Linked {
        _tmp: tmp,
        dir,
        outside,
        cache,
    }
}

#[cfg(unix)]
fn value_file(cache: &Cache, key: &str) -> PathBuf {
    cache.read(key).unwrap().unwrap().path().unwrap().to_path_buf()
}

/// A value folder replaced by a link to a folder outside: reads, deletes
/// and `check` never reach through it.
#[cfg(unix)]
#[test]
fn a_linked_value_folder_is_never_followed() {
    let l = linked();
    l.cache.set_bytes("k", b"value in a file").unwrap();
    let file = value_file(&l.cache, "k");
    let top = l
        .dir
        .join(file.strip_prefix(&l.dir).unwrap().components().next().unwrap());
    // Move the real folder outside and link to it.
    let moved = l.outside.join("moved");
    std::fs::rename(&top, &moved).unwrap();
    std::os::unix::fs::symlink(&moved, &top).unwrap();
    let target = moved.join(file.strip_prefix(&top).unwrap());
    assert!(target.is_file());

    match l.cache.get_bytes("k") {
        Err(e @ Error::Corrupt(_)) => assert!(e.to_string().contains("symbolic link"), "{e}"),
        other => panic!("expected Corrupt, got {other:?}"),
    }
    assert!(l.cache.read("k").is_err());
    let warnings = l.cache.check().unwrap();
    assert!(
        warnings.iter().any(|w| w.kind == WarningKind::MissingFile),
        "{warnings:?}"
    );
    l.cache.delete("k").unwrap();
    assert!(target.is_file(), "the delete removed a file outside the directory");
    l.cache.repair().unwrap();
    assert!(l.cache.check().unwrap().is_empty());
    assert!(target.is_file(), "check removed a file outside the directory");
    assert!(
        std::fs::symlink_metadata(&top).is_err(),
        "check removed the link itself"
    );
    assert_eq!(std::fs::read(l.outside.join("secret")).unwrap(), b"outside data");
}

/// Every possible top-level value folder is a link to outside: a large
/// write fails clearly and writes nothing outside.
#[cfg(unix)]
#[test]
fn writes_never_go_through_a_linked_value_folder() {
    let l = linked();
    for i in 0..=255u8 {
        std::os::unix::fs::symlink(&l.outside, l.dir.join(format!("{i:02x}"))).unwrap();
    }
    let err = l.cache.set_bytes("k", b"value in a file").unwrap_err();
    assert!(matches!(err, Error::Corrupt(_)), "{err:?}");
    let err = l
        .cache
        .set_reader("k", &mut &b"streamed value"[..], &SetOptions::new())
        .unwrap_err();
    assert!(matches!(err, Error::Corrupt(_)), "{err:?}");
    let outside: Vec<_> = std::fs::read_dir(&l.outside).unwrap().collect();
    assert_eq!(outside.len(), 1, "something was written outside: {outside:?}");
    assert!(!l.cache.contains_key("k").unwrap());
    // Small values do not touch the folders.
    l.cache.set_bytes("small", b"x").unwrap();
    // repair() removes the links (not their target), and writes work again.
    let warnings = l.cache.repair().unwrap();
    assert_eq!(
        warnings.iter().filter(|w| w.kind == WarningKind::UnknownFile).count(),
        256
    );
    assert!(l.outside.join("secret").is_file());
    l.cache.set_bytes("k", b"value in a file").unwrap();
    assert!(value_file(&l.cache, "k").starts_with(&l.dir));
}

/// A value file replaced by a link to a file outside: its content is never
/// served, and removing the row leaves the outside file alone.
#[cfg(unix)]
#[test]
fn a_linked_value_file_is_never_read() {
    let l = linked();
    l.cache.set_bytes("k", b"value in a file").unwrap();
    let file = value_file(&l.cache, "k");
    std::fs::remove_file(&file).unwrap();
    std::os::unix::fs::symlink(l.outside.join("secret"), &file).unwrap();
    assert!(l.cache.get_bytes("k").is_err(), "served a file outside the directory");
    assert!(l.cache.read("k").is_err());
    let warnings = l.cache.repair().unwrap();
    assert!(
        warnings.iter().any(|w| w.kind == WarningKind::MissingFile),
        "{warnings:?}"
    );
    assert!(l.cache.check().unwrap().is_empty());
    assert!(!l.cache.contains_key("k").unwrap());
    assert_eq!(std::fs::read(l.outside.join("secret")).unwrap(), b"outside data");
}

// ------------------------------------------------------------ extreme numbers

#[test]
fn extreme_counts_and_indexes() {
    let dir = tempfile::tempdir().unwrap();
    let deque: Deque<u32> = Deque::open(dir.path()).unwrap();
    deque.extend(&[1, 2, 3]).unwrap();
    assert!(matches!(deque.get(usize::MAX), Ok(None) | Err(Error::InvalidUse(_))));
    assert_eq!(deque.get(2).unwrap(), Some(3));
    deque.rotate_left(usize::MAX).unwrap();
    deque.rotate_right(usize::MAX - 1).unwrap();
    let mut items: Vec<u32> = deque.iter().unwrap().map(|v| v.unwrap()).collect();
    items.sort_unstable();
    assert_eq!(items, [1, 2, 3], "rotations move items, never lose them");
    assert_eq!(deque.pop_front_many(usize::MAX).unwrap().len(), 3);
    deque.extend(&[4, 5]).unwrap();
    let cache = deque.cache().clone();
    assert_eq!(
        cache.pull_many::<u32>(usize::MAX, &PullOptions::new()).unwrap().len(),
        2
    );
    let deque = deque.with_maxlen(0).unwrap();
    deque.push_back(&6).unwrap();
    assert!(deque.is_empty().unwrap(), "a deque bounded at 0 keeps nothing");
}

/// A row at the very end of the queue's key range (a foreign writer, or a
/// very old queue): a push past it is a clear error, not an overflow.
#[test]
fn a_queue_at_the_end_of_its_key_range() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path()).unwrap();
    cache.set(Key::Int(999_999_999_999_998), &"last").unwrap();
    match cache.push(&"one more") {
        Err(Error::InvalidUse(m)) => assert!(!m.is_empty()),
        other => panic!("expected InvalidUse, got {other:?}"),
    }
    // The front still works.
    let k = cache
        .push_with(&"front", &PushOptions::new().side(diskq::Side::Front))
        .unwrap();
    assert!(k.as_int().unwrap() < 999_999_999_999_998);
    cache.set(Key::Int(1), &"first").unwrap();
    assert!(
        cache
            .push_with(&"x", &PushOptions::new().side(diskq::Side::Front))
            .is_err()
    );
    assert_eq!(cache.len().unwrap(), 3);
}

/// A FIFO where a value file belongs: a read would block for ever on it.
/// diskq refuses it at once, and `repair()` removes it.
#[cfg(unix)]
#[test]
fn a_fifo_in_place_of_a_value_file_is_refused_not_waited_on() {
    let l = linked();
    l.cache.set_bytes("k", b"value in a file").unwrap();
    let file = value_file(&l.cache, "k");
    std::fs::remove_file(&file).unwrap();
    let made = std::process::Command::new("mkfifo").arg(&file).status().unwrap();
    assert!(made.success());
    let cache = l.cache.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send((cache.get_bytes("k").map(drop), cache.read("k").map(drop)));
    });
    let (get, read) = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("a read of a FIFO value file hangs");
    for r in [get, read] {
        match r {
            Err(e @ Error::Corrupt(_)) => assert!(e.to_string().contains("not a regular file"), "{e}"),
            other => panic!("expected Corrupt, got {other:?}"),
        }
    }
    let warnings = l.cache.repair().unwrap();
    assert!(
        warnings.iter().any(|w| w.kind == WarningKind::MissingFile),
        "{warnings:?}"
    );
    assert!(l.cache.check().unwrap().is_empty());
    assert!(std::fs::symlink_metadata(&file).is_err(), "check removed the FIFO");
}
