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

// The child processes of the multi-process workloads (W5, W8, W11): the
// bench binary run again with `DISKQ_BENCH_ROLE` naming the child's role.
// Each child prints `ready`, waits for `go` on stdin, works, then prints its
// result.

/// A child process of a multi-process workload.
pub struct Worker {
    child: std::process::Child,
    out: std::io::BufReader<std::process::ChildStdout>,
}

/// Starts `cmd` (this bench binary with its role in the environment) and
/// waits for its `ready` line.
pub fn start(cmd: &mut std::process::Command, what: &str) -> Worker {
    use std::io::BufRead;
    use std::process::Stdio;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn a child");
    let mut out = std::io::BufReader::new(child.stdout.take().expect("piped stdout"));
    let mut line = String::new();
    out.read_line(&mut line).expect("child's ready line");
    assert_eq!(line.trim(), "ready", "child {what} did not start");
    Worker { child, out }
}

/// Tells every worker to go; the time it did.
pub fn go(workers: &mut [Worker]) -> Instant {
    use std::io::Write;
    let start = Instant::now();
    for w in workers.iter_mut() {
        let stdin = w.child.stdin.as_mut().expect("piped stdin");
        stdin.write_all(b"go\n").expect("send go");
        stdin.flush().expect("flush go");
    }
    start
}

/// Waits for a worker and returns what it printed after `ready`.
pub fn finish(mut w: Worker) -> String {
    use std::io::Read;
    let mut rest = String::new();
    w.out.read_to_string(&mut rest).expect("child output");
    let status = w.child.wait().expect("wait child");
    assert!(status.success(), "a child failed: {status}");
    rest
}

/// A W5 item: its id in the first 8 bytes, then filler.
pub fn item(id: u64) -> Vec<u8> {
    let mut v = vec![0xA5u8; VALUE_LEN];
    v[..8].copy_from_slice(&id.to_le_bytes());
    v
}

/// Nanoseconds since the Unix epoch: the one clock every process shares.
pub fn wall_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("a clock after 1970")
        .as_nanos() as u64
}

/// Reports a measurement that was not timed op by op.
pub fn plain(imp: &str, workload: &str, phase: &str, ops: usize, seconds: f64, extra: String) {
    Report {
        imp,
        workload,
        phase,
        ops,
        seconds,
        lat_ns: None,
        bytes: None,
        raw: false,
        extra,
    }
    .print();
}

/// W11: pushes per interval.
pub const W11_ITEMS: usize = 100;
/// W11: the intervals between pushes, in milliseconds.
pub const W11_INTERVALS: [u64; 3] = [1, 20, 100];

/// Waits for the W11 consumers and reports one W11 row: the push-to-pop
/// latencies (ns) they printed.
pub fn report_wake(imp: &str, interval: u64, seconds: f64, workers: Vec<Worker>) {
    let consumers = workers.len();
    let mut lat: Vec<u64> = Vec::new();
    for w in workers {
        lat.extend(
            finish(w)
                .split_whitespace()
                .map(|s| s.parse::<u64>().expect("a latency")),
        );
    }
    assert_eq!(lat.len(), W11_ITEMS, "W11: every item is popped once");
    lat.sort_unstable();
    let q = |x| quantile_us(&lat, x);
    let all: Vec<String> = lat.iter().map(|ns| format!("{:.1}", *ns as f64 / 1000.0)).collect();
    plain(
        imp,
        "W11",
        &format!(
            "every {interval} ms, {consumers} consumer{}",
            if consumers > 1 { "s" } else { "" }
        ),
        W11_ITEMS,
        seconds,
        format!(
            "\"median_us\":{:.1},\"p90_us\":{:.1},\"p99_us\":{:.1},\"max_us\":{:.1},\"latencies_us\":[{}]",
            q(0.5),
            q(0.9),
            q(0.99),
            q(1.0),
            all.join(",")
        ),
    );
}
