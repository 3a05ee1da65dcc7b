//! Shared by the `workloads` and `ceiling` bench programs: sizes, values,
//! timing and the JSON line each measurement prints.
//!
//! A line looks like
//! `{"impl":"diskq","workload":"W1","phase":"set","ops":20000,"seconds":1.2,
//! "ops_per_s":16000,"median_us":55.0,"p99_us":140.0}`; W1 and W2 add
//! `latencies_us` (every op, for the percentile pictures), W6 adds
//! `mb_per_s`. `benches/merge.py` reads these lines.

#![allow(dead_code)]

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Items of W1–W4, W7, W9.
pub const N: usize = 20_000;
/// Bytes of a small value.
pub const VALUE_LEN: usize = 100;
/// Items per transaction in W9.
pub const BATCH: usize = 100;
/// W10: threads, and sets per thread.
pub const THREADS: usize = 8;
pub const PER_THREAD: usize = 2_500;

/// `key-<n>`, the key of BENCH.md.
pub fn key(n: usize) -> String {
    format!("key-{n}")
}

/// `n` pseudo-random values of `len` bytes (xorshift, fixed seed).
pub fn values(n: usize, len: usize, seed: u64) -> Vec<Vec<u8>> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    (state >> 24) as u8
                })
                .collect()
        })
        .collect()
}

/// Where the fresh directories go: `DISKQ_BENCH_DIR`, or the system's
/// temporary folder.
pub fn scratch() -> tempfile::TempDir {
    match std::env::var_os("DISKQ_BENCH_DIR") {
        Some(base) => {
            let base = PathBuf::from(base);
            std::fs::create_dir_all(&base).expect("create DISKQ_BENCH_DIR");
            tempfile::tempdir_in(base).expect("temp dir")
        }
        None => tempfile::tempdir().expect("temp dir"),
    }
}

/// Per-op latencies of one phase, and its total time.
#[derive(Default)]
pub struct Timer {
    pub lat_ns: Vec<u64>,
    pub total: Duration,
}

impl Timer {
    pub fn with_capacity(n: usize) -> Timer {
        Timer {
            lat_ns: Vec::with_capacity(n),
            total: Duration::ZERO,
        }
    }

    /// Runs and times one op.
    #[inline]
    pub fn op<T>(&mut self, f: impl FnOnce() -> T) -> T {
        let start = Instant::now();
        let out = f();
        let took = start.elapsed();
        self.lat_ns.push(took.as_nanos() as u64);
        self.total += took;
        out
    }
}

/// The `q` quantile (0..=1) of sorted nanoseconds, in microseconds.
pub fn quantile_us(sorted: &[u64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i] as f64 / 1000.0
}

/// One measurement, printed as a JSON line.
pub struct Report<'a> {
    pub imp: &'a str,
    pub workload: &'a str,
    pub phase: &'a str,
    pub ops: usize,
    pub seconds: f64,
    /// Per-op latencies (ns) when each op was timed.
    pub lat_ns: Option<&'a [u64]>,
    /// Bytes moved, for MB/s (W6).
    pub bytes: Option<u64>,
    /// Include every latency (W1, W2).
    pub raw: bool,
    /// Free-form extra fields, already JSON (`"key":value` pairs).
    pub extra: String,
}

impl Report<'_> {
    pub fn print(&self) {
        let mut line = format!(
            "{{\"impl\":\"{}\",\"workload\":\"{}\",\"phase\":\"{}\",\"ops\":{},\"seconds\":{:.6},\"ops_per_s\":{:.1}",
            self.imp,
            self.workload,
            self.phase,
            self.ops,
            self.seconds,
            self.ops as f64 / self.seconds
        );
        if let Some(bytes) = self.bytes {
            let _ = write!(line, ",\"mb_per_s\":{:.1}", bytes as f64 / 1e6 / self.seconds);
        }
        if let Some(lat) = self.lat_ns {
            let mut sorted = lat.to_vec();
            sorted.sort_unstable();
            let _ = write!(
                line,
                ",\"median_us\":{:.2},\"p99_us\":{:.2}",
                quantile_us(&sorted, 0.5),
                quantile_us(&sorted, 0.99)
            );
            if self.raw {
                line.push_str(",\"latencies_us\":[");
                for (i, ns) in lat.iter().enumerate() {
                    if i > 0 {
                        line.push(',');
                    }
                    let _ = write!(line, "{:.2}", *ns as f64 / 1000.0);
                }
                line.push(']');
            }
        }
        if !self.extra.is_empty() {
            line.push(',');
            line.push_str(&self.extra);
        }
        line.push('}');
        println!("{line}");
    }
}

/// Reports a timed phase.
pub fn report_timer(imp: &str, workload: &str, phase: &str, t: &Timer, raw: bool) {
    Report {
        imp,
        workload,
        phase,
        ops: t.lat_ns.len(),
        seconds: t.total.as_secs_f64(),
        lat_ns: Some(&t.lat_ns),
        bytes: None,
        raw,
        extra: String::new(),
    }
    .print();
}

/// Which workloads to run: `--only W1,W2` among the arguments (cargo bench
/// adds `--bench`, which is ignored), or all.
pub fn selected() -> Vec<String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut only = Vec::new();
    let mut i = 0;
    while i < args.len() {
        if args[i] == "--only" && i + 1 < args.len() {
            only.extend(args[i + 1].split(',').map(|s| s.trim().to_uppercase()));
            i += 1;
        }
        i += 1;
    }
    only
}

/// `--repeat N`: run the read phases (W2, W3) N times over, reporting the
/// last, so a profiler gets enough samples of them (default 1).
pub fn repeat() -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == "--repeat")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(1)
}

pub fn wanted(only: &[String], id: &str) -> bool {
    only.is_empty() || only.iter().any(|o| o == id)
}
