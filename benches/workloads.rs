//! The workloads W1–W13 of `shared/BENCH.md` on diskq, one JSON line per
//! measurement on stdout (see `benches/common/mod.rs`).
//!
//! `cargo bench --bench workloads [-- --only W1,W5]`; `bash benches/compare.sh`
//! runs it beside python-diskcache and the raw-SQLite ceiling.
//!
//! The multi-process workloads (W5, W8, W11, W12) re-run this binary with
//! `DISKQ_BENCH_ROLE` naming the child's role. Each child opens the
//! directory, prints `ready`, waits for `go` on stdin, works, then prints its
//! result; the parent times from `go` to the last child's exit and checks
//! exact counts.

mod common;

use std::io::{Read, Write};
use std::process::Command;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use common::{
    BATCH, N, PER_THREAD, Report, THREADS, Timer, VALUE_LEN, W11_INTERVALS, W11_ITEMS, Worker, finish, go, item, key,
    plain, report_timer, values, wall_ns,
};
use diskq::{Cache, Deque, FanoutCache, Index};
use serde_bytes::ByteBuf;

const IMP: &str = "diskq";

/// Where W4, W5, W9 and W11 keep their queue: a fresh schema of the
/// PostgreSQL database `DISKQ_BENCH_PG_URL` names when it is set (a build
/// with `--features postgres`), else the scratch directory `dir`.
fn at(dir: &tempfile::TempDir) -> std::path::PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    match std::env::var("DISKQ_BENCH_PG_URL") {
        Ok(url) => {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            format!("{url}#bench_{}_{n}", std::process::id()).into()
        }
        Err(_) => dir.path().to_path_buf(),
    }
}

/// The name the results carry: `diskq-pg` on PostgreSQL.
fn imp() -> &'static str {
    if std::env::var_os("DISKQ_BENCH_PG_URL").is_some() {
        "diskq-pg"
    } else {
        IMP
    }
}
/// W5: items per producer; W8: keys per writer.
const PER_CHILD: usize = 10_000;
/// The W5 item a consumer stops at.
const STOP: u64 = u64::MAX;

fn main() {
    if let Ok(role) = std::env::var("DISKQ_BENCH_ROLE") {
        child(&role);
        return;
    }
    let only = common::selected();
    let run = |id: &str| common::wanted(&only, id);
    if run("W1") || run("W2") || run("W3") {
        w1_w3(&only);
    }
    if run("W4") {
        w4();
    }
    if run("W5") {
        w5();
    }
    if run("W6") {
        w6();
    }
    if run("W7") {
        w7();
    }
    if run("W8") {
        w8();
    }
    if run("W9") {
        w9();
    }
    if run("W11") {
        w11();
    }
    if run("W10") {
        w10();
    }
    if run("W12") {
        w12();
    }
    if run("W13") {
        w13();
    }
}

fn w1_w3(only: &[String]) {
    let dir = common::scratch();
    let cache = Cache::open(dir.path()).expect("open");
    let vals = values(N, VALUE_LEN, 1);
    let keys: Vec<String> = (0..N).map(key).collect();
    let mut t = Timer::with_capacity(N);
    for (k, v) in keys.iter().zip(&vals) {
        t.op(|| cache.set_bytes(k.as_str(), v).expect("set"));
    }
    if common::wanted(only, "W1") {
        report_timer(IMP, "W1", "set", &t, true);
    }
    if common::wanted(only, "W2") {
        let mut t = Timer::default();
        for _ in 0..common::repeat() {
            t = Timer::with_capacity(N);
            for k in &keys {
                let got = t.op(|| cache.get_bytes(k.as_str()).expect("get"));
                assert!(got.is_some(), "W2: every get hits");
            }
        }
        report_timer(IMP, "W2", "get hit", &t, true);
    }
    if common::wanted(only, "W3") {
        let absent: Vec<String> = (N..2 * N).map(key).collect();
        let mut t = Timer::default();
        for _ in 0..common::repeat() {
            t = Timer::with_capacity(N);
            for k in &absent {
                let got = t.op(|| cache.get_bytes(k.as_str()).expect("get"));
                assert!(got.is_none(), "W3: every get misses");
            }
        }
        report_timer(IMP, "W3", "get miss", &t, false);
    }
}

fn w4() {
    let dir = common::scratch();
    let loc = at(&dir);
    let d: Deque<ByteBuf> = Deque::open(loc.as_path()).expect("open");
    let vals: Vec<ByteBuf> = values(N, VALUE_LEN, 4).into_iter().map(ByteBuf::from).collect();
    let mut t = Timer::with_capacity(N);
    for v in &vals {
        t.op(|| d.push_back(v).expect("push"));
    }
    report_timer(imp(), "W4", "push_back", &t, false);
    let mut t = Timer::with_capacity(N);
    for _ in 0..N {
        let got = t.op(|| d.pop_front().expect("pop"));
        assert!(got.is_some(), "W4: every pop finds an item");
    }
    report_timer(imp(), "W4", "pop_front", &t, false);
}

fn w6() {
    const COUNT: usize = 200;
    const SIZE: usize = 1 << 20;
    let dir = common::scratch();
    let cache = Cache::open(dir.path()).expect("open");
    let mut big = values(1, SIZE, 6).pop().expect("one value");
    let start = Instant::now();
    for n in 0..COUNT {
        big[..8].copy_from_slice(&(n as u64).to_le_bytes());
        cache.set_bytes(key(n), &big).expect("set");
    }
    let bytes = (COUNT * SIZE) as u64;
    print_mb(
        "W6",
        "set 1 MiB",
        COUNT,
        start.elapsed().as_secs_f64(),
        bytes,
        String::new(),
    );

    // Streamed reads first, so the high-water mark of resident memory shows
    // what `read` itself needs (get_bytes below holds whole values).
    let hwm_before = peak_rss_kb();
    let mut buf = vec![0u8; 64 << 10];
    let start = Instant::now();
    let mut total = 0u64;
    for n in 0..COUNT {
        let mut reader = cache.read(key(n)).expect("read").expect("present");
        loop {
            let got = reader.read(&mut buf).expect("read");
            if got == 0 {
                break;
            }
            total += got as u64;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(total, bytes, "W6: read returns every byte");
    let growth = peak_rss_kb().saturating_sub(hwm_before);
    print_mb(
        "W6",
        "read 1 MiB (streamed)",
        COUNT,
        secs,
        bytes,
        format!("\"peak_rss_growth_kb\":{growth}"),
    );

    let start = Instant::now();
    for n in 0..COUNT {
        let got = cache.get_bytes(key(n)).expect("get").expect("present");
        assert_eq!(got.len(), SIZE);
    }
    print_mb(
        "W6",
        "get 1 MiB",
        COUNT,
        start.elapsed().as_secs_f64(),
        bytes,
        String::new(),
    );
}

fn print_mb(workload: &str, phase: &str, ops: usize, seconds: f64, bytes: u64, extra: String) {
    Report {
        imp: IMP,
        workload,
        phase,
        ops,
        seconds,
        lat_ns: None,
        bytes: Some(bytes),
        raw: false,
        extra,
    }
    .print();
}

/// VmHWM of this process, in KiB (0 where /proc is missing).
fn peak_rss_kb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn w7() {
    let dir = common::scratch();
    let idx: Index<String, ByteBuf> = Index::open(dir.path()).expect("open");
    let vals: Vec<ByteBuf> = values(N, VALUE_LEN, 7).into_iter().map(ByteBuf::from).collect();
    let keys: Vec<String> = (0..N).map(key).collect();
    let mut t = Timer::with_capacity(N);
    for (k, v) in keys.iter().zip(&vals) {
        t.op(|| idx.insert(k, v).expect("insert"));
    }
    report_timer(IMP, "W7", "insert", &t, false);
    let start = Instant::now();
    let mut seen = 0;
    for (k, expected) in idx.keys().expect("keys").zip(&keys) {
        assert_eq!(&k.expect("key"), expected, "W7: keys come in insertion order");
        seen += 1;
    }
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(seen, N);
    plain(IMP, "W7", "iterate keys", N, secs, String::new());
}

fn w9() {
    let dir = common::scratch();
    let loc = at(&dir);
    let d: Deque<ByteBuf> = Deque::open(loc.as_path()).expect("open");
    let vals: Vec<ByteBuf> = values(N, VALUE_LEN, 9).into_iter().map(ByteBuf::from).collect();
    let start = Instant::now();
    for chunk in vals.chunks(BATCH) {
        d.extend(chunk).expect("extend");
    }
    plain(
        imp(),
        "W9",
        "push batches of 100",
        N,
        start.elapsed().as_secs_f64(),
        String::new(),
    );
    let start = Instant::now();
    let mut taken = 0;
    while taken < N {
        let got = d.pop_front_many(BATCH).expect("pop many");
        assert!(!got.is_empty(), "W9: the queue holds every pushed item");
        taken += got.len();
    }
    assert_eq!(taken, N);
    plain(
        imp(),
        "W9",
        "pop batches of 100",
        N,
        start.elapsed().as_secs_f64(),
        String::new(),
    );
}

fn w10() {
    let dir = common::scratch();
    let cache = Cache::open(dir.path()).expect("open");
    let barrier = Arc::new(Barrier::new(THREADS + 1));
    let vals = Arc::new(values(PER_THREAD, VALUE_LEN, 10));
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let (cache, barrier, vals) = (cache.clone(), barrier.clone(), vals.clone());
            std::thread::spawn(move || {
                let keys: Vec<String> = (0..PER_THREAD).map(|i| key(t * PER_THREAD + i)).collect();
                let mut timer = Timer::with_capacity(PER_THREAD);
                barrier.wait();
                for (k, v) in keys.iter().zip(vals.iter()) {
                    timer.op(|| cache.set_bytes(k.as_str(), v).expect("set"));
                }
                timer.lat_ns
            })
        })
        .collect();
    barrier.wait();
    let start = Instant::now();
    let mut lat = Vec::with_capacity(THREADS * PER_THREAD);
    for h in handles {
        lat.extend(h.join().expect("a writer thread"));
    }
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(cache.len().expect("len"), THREADS * PER_THREAD, "W10: every set landed");
    Report {
        imp: IMP,
        workload: "W10",
        phase: "8 threads set",
        ops: THREADS * PER_THREAD,
        seconds: secs,
        lat_ns: Some(&lat),
        bytes: None,
        raw: false,
        extra: String::new(),
    }
    .print();
}

// ---- Multi-process workloads ----

fn spawn(role: &str, dir: &std::path::Path, id: usize) -> Worker {
    let exe = std::env::current_exe().expect("the bench binary's path");
    let mut cmd = Command::new(exe);
    cmd.env("DISKQ_BENCH_ROLE", role)
        .env("DISKQ_BENCH_PATH", dir)
        .env("DISKQ_BENCH_ID", id.to_string());
    common::start(&mut cmd, &format!("{role} {id}"))
}

fn w5() {
    let dir = common::scratch();
    let loc = at(&dir);
    let d: Deque<ByteBuf> = Deque::open(loc.as_path()).expect("open");
    let mut producers: Vec<Worker> = (0..2).map(|i| spawn("producer", loc.as_path(), i)).collect();
    let mut consumers: Vec<Worker> = (0..2).map(|i| spawn("consumer", loc.as_path(), i)).collect();
    let start = go(&mut consumers);
    go(&mut producers);
    for p in producers {
        finish(p);
    }
    // FIFO: the stops come after every item, one for each consumer.
    for _ in 0..2 {
        d.push_back(&ByteBuf::from(item(STOP))).expect("push stop");
    }
    let mut taken: Vec<u64> = Vec::with_capacity(2 * PER_CHILD);
    let mut per_consumer = Vec::new();
    for c in consumers {
        let out = finish(c);
        let ids: Vec<u64> = out.split_whitespace().map(|s| s.parse().expect("an item id")).collect();
        per_consumer.push(ids.len());
        taken.extend(ids);
    }
    let secs = start.elapsed().as_secs_f64();
    taken.sort_unstable();
    let expected: Vec<u64> = (0..(2 * PER_CHILD) as u64).collect();
    let exactly_once = taken == expected;
    assert!(exactly_once, "W5: every item is taken exactly once");
    plain(
        imp(),
        "W5",
        "2 producers + 2 consumers",
        2 * PER_CHILD,
        secs,
        format!("\"exactly_once\":{exactly_once},\"per_consumer\":{per_consumer:?}"),
    );
}

fn w8() {
    let dir = common::scratch();
    let fanout = FanoutCache::builder().shards(4).open(dir.path()).expect("open");
    let mut writers: Vec<Worker> = (0..2).map(|i| spawn("fanout", dir.path(), i)).collect();
    let start = go(&mut writers);
    let mut retries = 0u64;
    for w in writers {
        retries += finish(w).trim().parse::<u64>().expect("a retry count");
    }
    let secs = start.elapsed().as_secs_f64();
    for n in 0..2 * PER_CHILD {
        assert!(
            fanout.get_bytes(key(n)).expect("get").is_some(),
            "W8: every key was set"
        );
    }
    plain(
        IMP,
        "W8",
        "2 processes set",
        2 * PER_CHILD,
        secs,
        format!("\"timeouts_retried\":{retries}"),
    );
}

/// W11: wake latency across processes. The parent pushes an item (its push
/// time) every 1, 20 and 100 ms while 1, then 4, consumer processes wait in
/// `pop_front_timeout`; each consumer reports pop time minus push time.
fn w11() {
    for consumers in [1usize, 4] {
        for interval in W11_INTERVALS {
            let dir = common::scratch();
            let loc = at(&dir);
            let d: Deque<u64> = Deque::open(loc.as_path()).expect("open");
            let mut workers: Vec<Worker> = (0..consumers).map(|i| spawn("waiter", loc.as_path(), i)).collect();
            go(&mut workers);
            // Let the consumers block before the first push: they print
            // nothing until they are done, so give them a moment to wait.
            std::thread::sleep(Duration::from_millis(200));
            let start = Instant::now();
            for n in 0..W11_ITEMS {
                let due = start + Duration::from_millis(interval * n as u64);
                if let Some(pause) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(pause);
                }
                d.push_back(&wall_ns()).expect("push");
            }
            for _ in 0..consumers {
                d.push_back(&0).expect("push stop");
            }
            let secs = start.elapsed().as_secs_f64();
            common::report_wake(imp(), interval, secs, workers);
        }
    }
}

/// W13: 1,000 delayed items due over 1 s, one every millisecond (pushed
/// before the first is due, each with its own due time); one consumer waits
/// in `pop_front_timeout` and takes them as they become due. Reports how
/// late each was taken (pop time minus due time).
fn w13() {
    const ITEMS: u64 = 1_000;
    let dir = common::scratch();
    let d: Deque<u64> = Deque::open(dir.path()).expect("open");
    // The first is due once all are pushed: 1,000 pushes take ~30 ms on an
    // idle machine, but over 300 ms were seen on a shared one, so 2 s.
    let first = wall_ns() + 2_000_000_000;
    for n in 0..ITEMS {
        let due = first + n * 1_000_000;
        let at = std::time::UNIX_EPOCH + Duration::from_nanos(due);
        d.push_back_with(&due, &diskq::PushOptions::new().at(at)).expect("push");
    }
    assert!(wall_ns() < first, "W13: the pushes ended after the first item was due");
    let start = Instant::now();
    let mut late_ns = Vec::with_capacity(ITEMS as usize);
    let mut early = 0usize;
    while late_ns.len() < ITEMS as usize {
        let due = d
            .pop_front_timeout(Duration::from_secs(10))
            .expect("pop")
            .expect("W13: every delayed item comes out");
        let now = wall_ns();
        if now < due {
            early += 1;
        }
        late_ns.push(now.saturating_sub(due));
    }
    let secs = start.elapsed().as_secs_f64();
    let mut sorted = late_ns.clone();
    sorted.sort_unstable();
    let max_us = *sorted.last().unwrap_or(&0) as f64 / 1000.0;
    Report {
        imp: IMP,
        workload: "W13",
        phase: "lateness",
        ops: late_ns.len(),
        seconds: secs,
        lat_ns: Some(&late_ns),
        bytes: None,
        // Every lateness: merge.py pools the rounds' items before taking
        // the percentiles.
        raw: true,
        extra: format!("\"max_us\":{max_us:.2},\"early\":{early}"),
    }
    .print();
    assert_eq!(early, 0, "W13: an item was taken before it was due");
}

/// W12: writers (processes, then threads) and distinct sets per writer.
const W12_WRITERS: usize = 8;
const W12_PER_WRITER: usize = 2_000;

/// W12: 8 processes set at once, 2,000 distinct 100-byte values each, each
/// set timed; then the same with 8 threads of one process.
fn w12() {
    let total = W12_WRITERS * W12_PER_WRITER;
    let dir = common::scratch();
    let cache = Cache::open(dir.path()).expect("open");
    let mut workers: Vec<Worker> = (0..W12_WRITERS).map(|i| spawn("setter", dir.path(), i)).collect();
    let start = go(&mut workers);
    let mut lat: Vec<u64> = Vec::with_capacity(total);
    for w in workers {
        lat.extend(
            finish(w)
                .split_whitespace()
                .map(|s| s.parse::<u64>().expect("a latency")),
        );
    }
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(lat.len(), total, "W12: every set was timed");
    assert_eq!(cache.len().expect("len"), total, "W12: every set landed");
    w12_report("8 processes set", secs, &lat, &cache);
    drop(cache);

    let dir = common::scratch();
    let cache = Cache::open(dir.path()).expect("open");
    let barrier = Arc::new(Barrier::new(W12_WRITERS + 1));
    let handles: Vec<_> = (0..W12_WRITERS)
        .map(|t| {
            let (cache, barrier) = (cache.clone(), barrier.clone());
            std::thread::spawn(move || {
                let (keys, vals) = w12_items(t);
                let mut timer = Timer::with_capacity(W12_PER_WRITER);
                barrier.wait();
                for (k, v) in keys.iter().zip(&vals) {
                    timer.op(|| cache.set_bytes(k.as_str(), v).expect("set"));
                }
                timer.lat_ns
            })
        })
        .collect();
    barrier.wait();
    let start = Instant::now();
    let mut lat = Vec::with_capacity(total);
    for h in handles {
        lat.extend(h.join().expect("a writer thread"));
    }
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(cache.len().expect("len"), total, "W12: every set landed");
    w12_report("8 threads set", secs, &lat, &cache);
}

/// The keys and values of W12 writer `id`.
fn w12_items(id: usize) -> (Vec<String>, Vec<Vec<u8>>) {
    let keys = (0..W12_PER_WRITER).map(|i| key(id * W12_PER_WRITER + i)).collect();
    (keys, values(W12_PER_WRITER, VALUE_LEN, 120 + id as u64))
}

fn w12_report(phase: &str, secs: f64, lat: &[u64], cache: &Cache) {
    let mut sorted = lat.to_vec();
    sorted.sort_unstable();
    let q = |x| common::quantile_us(&sorted, x);
    let blocking = cache.stats().map(|s| s.blocking_checkpoints).unwrap_or(0);
    Report {
        imp: IMP,
        workload: "W12",
        phase,
        ops: lat.len(),
        seconds: secs,
        lat_ns: Some(lat),
        bytes: None,
        raw: true,
        extra: format!(
            "\"p999_us\":{:.2},\"max_us\":{:.2},\"blocking_checkpoints\":{blocking}",
            q(0.999),
            q(1.0)
        ),
    }
    .print();
}

fn child(role: &str) {
    let dir = std::env::var_os("DISKQ_BENCH_PATH").expect("DISKQ_BENCH_PATH");
    let id: usize = std::env::var("DISKQ_BENCH_ID")
        .expect("DISKQ_BENCH_ID")
        .parse()
        .expect("a numeric id");
    let ready = || {
        println!("ready");
        std::io::stdout().flush().expect("flush");
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).expect("go line");
    };
    match role {
        "producer" => {
            let d: Deque<ByteBuf> = Deque::open(&dir).expect("open");
            let items: Vec<ByteBuf> = (0..PER_CHILD)
                .map(|i| ByteBuf::from(item((id * PER_CHILD + i) as u64)))
                .collect();
            ready();
            for v in &items {
                d.push_back(v).expect("push");
            }
        }
        "consumer" => {
            let d: Deque<ByteBuf> = Deque::open(&dir).expect("open");
            ready();
            let mut ids = Vec::with_capacity(2 * PER_CHILD);
            loop {
                let v = d
                    .pop_front_timeout(Duration::from_secs(60))
                    .expect("pop")
                    .expect("an item or a stop within 60 s");
                let id = u64::from_le_bytes(v[..8].try_into().expect("8 bytes of id"));
                if id == STOP {
                    break;
                }
                ids.push(id);
            }
            let text: Vec<String> = ids.iter().map(u64::to_string).collect();
            println!("{}", text.join(" "));
        }
        "waiter" => {
            let d: Deque<u64> = Deque::open(&dir).expect("open");
            ready();
            let mut lat = Vec::new();
            loop {
                let pushed = d
                    .pop_front_timeout(Duration::from_secs(60))
                    .expect("pop")
                    .expect("an item or a stop within 60 s");
                if pushed == 0 {
                    break;
                }
                lat.push(wall_ns().saturating_sub(pushed));
            }
            let text: Vec<String> = lat.iter().map(u64::to_string).collect();
            println!("{}", text.join(" "));
        }
        "fanout" => {
            let f = FanoutCache::builder().shards(4).open(&dir).expect("open");
            let vals = values(PER_CHILD, VALUE_LEN, 80 + id as u64);
            let keys: Vec<String> = (0..PER_CHILD).map(|i| key(id * PER_CHILD + i)).collect();
            ready();
            let mut retries = 0u64;
            for (k, v) in keys.iter().zip(&vals) {
                // A busy shard times out after 10 ms and `set` returns false,
                // as in python-diskcache; retry so every key lands.
                while !f.set_bytes(k.as_str(), v).expect("set") {
                    retries += 1;
                }
            }
            println!("{retries}");
        }
        "setter" => {
            let cache = Cache::open(&dir).expect("open");
            let (keys, vals) = w12_items(id);
            let mut timer = Timer::with_capacity(W12_PER_WRITER);
            ready();
            for (k, v) in keys.iter().zip(&vals) {
                timer.op(|| cache.set_bytes(k.as_str(), v).expect("set"));
            }
            let text: Vec<String> = timer.lat_ns.iter().map(u64::to_string).collect();
            println!("{}", text.join(" "));
        }
        other => panic!("unknown DISKQ_BENCH_ROLE {other}"),
    }
}
