//! The Redis peer of `shared/BENCH.md`: W2, W4, W5 and W11 against a
//! `redis-server` on loopback, one JSON line per measurement (as
//! `benches/workloads.rs`, with `"impl":"redis"`).
//!
//! `cargo bench --bench redis_peer -- --port PORT [--only W2,W11]`;
//! `bash benches/compare.sh` starts a throwaway server (127.0.0.1, no
//! persistence) and runs this beside diskq and python-diskcache.
//!
//! The client is the few lines of RESP below over one `TcpStream` per
//! process (`TCP_NODELAY`, one write per command), not a client crate: the
//! protocol is five reply types, and a crate would be compiled into every
//! `cargo test` of the library as a dev-dependency. It is as fast as
//! Redis's own C client: `--c-client` runs `redis-benchmark` (one
//! connection, no pipelining) for W2's GET and W4's LPUSH/RPOP and prints
//! its numbers as `"impl":"redis-benchmark"`, to check that. (A Python
//! client, redis-py 8.1, tripled W11's idle wake p50 here: about 540 µs
//! against 170 µs, so the peer is in Rust, like diskq's side.)
//!
//! - W2: the 20,000 keys of W1 are SET in one pipeline (not timed), then each
//!   GET is timed.
//! - W4: LPUSH 20,000 items, then RPOP them all (FIFO, as push_back and
//!   pop_front), one client, each op timed.
//! - W5: 2 producer processes LPUSH 10,000 items each, 2 consumer processes
//!   BRPOP until all 20,000 are taken (each exactly once, checked).
//! - W11: this process LPUSHes its wall-clock time every 1, 20 and 100 ms
//!   (100 items each); 1, then 4, consumer processes wait in BRPOP.
//!
//! Every workload starts on an empty database (FLUSHALL). The children are
//! this binary again with `DISKQ_BENCH_ROLE` set; each prints `ready`, waits
//! for `go` on stdin, works, then prints its result.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{
    N, Timer, VALUE_LEN, W11_INTERVALS, W11_ITEMS, Worker, finish, go, item, key, plain, report_timer, values, wall_ns,
};

const IMP: &str = "redis";
/// W5: items per producer.
const PER_CHILD: usize = 10_000;
/// The W5 item a consumer stops at.
const STOP: u64 = u64::MAX;

/// A RESP2 reply.
#[derive(Debug)]
enum Reply {
    Status,
    Int,
    Nil,
    Bulk(Vec<u8>),
    Array(Vec<Reply>),
}

/// One connection to the server.
struct Redis {
    w: TcpStream,
    r: BufReader<TcpStream>,
    buf: Vec<u8>,
}

impl Redis {
    fn connect(port: u16) -> Redis {
        let w = TcpStream::connect(("127.0.0.1", port)).expect("connect to redis-server");
        w.set_nodelay(true).expect("TCP_NODELAY");
        let r = BufReader::new(w.try_clone().expect("clone the stream"));
        Redis { w, r, buf: Vec::new() }
    }

    /// Appends one command to the send buffer.
    fn queue(&mut self, args: &[&[u8]]) {
        let b = &mut self.buf;
        b.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
        for a in args {
            b.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            b.extend_from_slice(a);
            b.extend_from_slice(b"\r\n");
        }
    }

    fn flush(&mut self) {
        self.w.write_all(&self.buf).expect("send to redis-server");
        self.buf.clear();
    }

    /// Sends one command and reads its reply.
    fn call(&mut self, args: &[&[u8]]) -> Reply {
        self.queue(args);
        self.flush();
        self.read()
    }

    fn line(&mut self) -> Vec<u8> {
        let mut l = Vec::new();
        self.r.read_until(b'\n', &mut l).expect("read from redis-server");
        assert!(l.ends_with(b"\r\n"), "redis-server closed the connection");
        l.truncate(l.len() - 2);
        l
    }

    fn read(&mut self) -> Reply {
        let l = self.line();
        let n = || -> i64 {
            std::str::from_utf8(&l[1..])
                .ok()
                .and_then(|s| s.parse().ok())
                .expect("a RESP length")
        };
        match l.first() {
            Some(b'+') => Reply::Status,
            Some(b':') => Reply::Int,
            Some(b'-') => panic!("redis-server: {}", String::from_utf8_lossy(&l[1..])),
            Some(b'$') if n() < 0 => Reply::Nil,
            Some(b'$') => {
                let mut v = vec![0; n() as usize + 2];
                self.r.read_exact(&mut v).expect("read a bulk reply");
                v.truncate(v.len() - 2);
                Reply::Bulk(v)
            }
            Some(b'*') if n() < 0 => Reply::Nil,
            Some(b'*') => Reply::Array((0..n()).map(|_| self.read()).collect()),
            _ => panic!("not a RESP reply: {:?}", String::from_utf8_lossy(&l)),
        }
    }

    /// BRPOP's value, waiting up to a minute.
    fn brpop(&mut self, list: &[u8]) -> Vec<u8> {
        match self.call(&[b"BRPOP", list, b"60"]) {
            Reply::Array(mut kv) if kv.len() == 2 => match kv.pop() {
                Some(Reply::Bulk(v)) => v,
                other => panic!("BRPOP: {other:?}"),
            },
            other => panic!("BRPOP: no item or stop within 60 s ({other:?})"),
        }
    }
}

fn main() {
    let port: u16 = arg("--port")
        .or_else(|| std::env::var("DISKQ_BENCH_REDIS_PORT").ok())
        .and_then(|p| p.parse().ok())
        .expect("--port PORT (of a redis-server on 127.0.0.1)");
    if let Ok(role) = std::env::var("DISKQ_BENCH_ROLE") {
        child(&role, port);
        return;
    }
    let only = common::selected();
    let run = |id: &str| common::wanted(&only, id);
    if std::env::args().any(|a| a == "--c-client") {
        c_client(port, run("W2"), run("W4"));
        return;
    }
    let mut r = Redis::connect(port);
    if run("W2") {
        w2(&mut r);
    }
    if run("W4") {
        w4(&mut r);
    }
    if run("W5") {
        w5(&mut r, port);
    }
    if run("W11") {
        w11(&mut r, port);
    }
    r.call(&[b"FLUSHALL"]);
}

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

fn w2(r: &mut Redis) {
    r.call(&[b"FLUSHALL"]);
    let keys: Vec<String> = (0..N).map(key).collect();
    for (k, v) in keys.iter().zip(values(N, VALUE_LEN, 1)) {
        r.queue(&[b"SET", k.as_bytes(), &v]);
    }
    r.flush();
    for _ in 0..N {
        r.read();
    }
    let mut t = Timer::with_capacity(N);
    for k in &keys {
        let got = t.op(|| r.call(&[b"GET", k.as_bytes()]));
        assert!(matches!(got, Reply::Bulk(_)), "W2: every key is there");
    }
    report_timer(IMP, "W2", "get hit", &t, true);
}

fn w4(r: &mut Redis) {
    r.call(&[b"FLUSHALL"]);
    let vals = values(N, VALUE_LEN, 4);
    let mut t = Timer::with_capacity(N);
    for v in &vals {
        t.op(|| r.call(&[b"LPUSH", b"w4", v]));
    }
    report_timer(IMP, "W4", "push_back", &t, false);
    let mut t = Timer::with_capacity(N);
    for _ in 0..N {
        let got = t.op(|| r.call(&[b"RPOP", b"w4"]));
        assert!(matches!(got, Reply::Bulk(_)), "W4: every item comes back");
    }
    report_timer(IMP, "W4", "pop_front", &t, false);
}

fn spawn(role: &str, port: u16, id: usize) -> Worker {
    let exe = std::env::current_exe().expect("the bench binary's path");
    let mut cmd = Command::new(exe);
    cmd.env("DISKQ_BENCH_ROLE", role)
        .env("DISKQ_BENCH_REDIS_PORT", port.to_string())
        .env("DISKQ_BENCH_ID", id.to_string());
    common::start(&mut cmd, &format!("{role} {id}"))
}

fn w5(r: &mut Redis, port: u16) {
    r.call(&[b"FLUSHALL"]);
    let mut producers: Vec<Worker> = (0..2).map(|i| spawn("producer", port, i)).collect();
    let mut consumers: Vec<Worker> = (0..2).map(|i| spawn("consumer", port, i)).collect();
    let start = go(&mut consumers);
    go(&mut producers);
    for p in producers {
        finish(p);
    }
    for _ in 0..2 {
        r.call(&[b"LPUSH", b"w5", &item(STOP)]);
    }
    let mut taken: Vec<u64> = Vec::with_capacity(2 * PER_CHILD);
    let mut per_consumer = Vec::new();
    for c in consumers {
        let ids: Vec<u64> = finish(c)
            .split_whitespace()
            .map(|s| s.parse().expect("an item id"))
            .collect();
        per_consumer.push(ids.len());
        taken.extend(ids);
    }
    let secs = start.elapsed().as_secs_f64();
    taken.sort_unstable();
    let exactly_once = taken == (0..(2 * PER_CHILD) as u64).collect::<Vec<_>>();
    assert!(exactly_once, "W5: every item is taken exactly once");
    plain(
        IMP,
        "W5",
        "2 producers + 2 consumers",
        2 * PER_CHILD,
        secs,
        format!("\"exactly_once\":{exactly_once},\"per_consumer\":{per_consumer:?}"),
    );
}

/// W11 as in `benches/workloads.rs`, with LPUSH and BRPOP.
fn w11(r: &mut Redis, port: u16) {
    for consumers in [1usize, 4] {
        for interval in W11_INTERVALS {
            r.call(&[b"FLUSHALL"]);
            let mut workers: Vec<Worker> = (0..consumers).map(|i| spawn("waiter", port, i)).collect();
            go(&mut workers);
            // As diskq's W11: let the consumers block in BRPOP first.
            std::thread::sleep(Duration::from_millis(200));
            let start = Instant::now();
            for n in 0..W11_ITEMS {
                let due = start + Duration::from_millis(interval * n as u64);
                if let Some(pause) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(pause);
                }
                r.call(&[b"LPUSH", b"w11", wall_ns().to_string().as_bytes()]);
            }
            for _ in 0..consumers {
                r.call(&[b"LPUSH", b"w11", b"0"]);
            }
            let secs = start.elapsed().as_secs_f64();
            common::report_wake(IMP, interval, secs, workers);
        }
    }
}

fn child(role: &str, port: u16) {
    let id: usize = std::env::var("DISKQ_BENCH_ID")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut r = Redis::connect(port);
    let ready = || {
        println!("ready");
        std::io::stdout().flush().expect("flush ready");
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).expect("read go");
    };
    match role {
        "producer" => {
            let items: Vec<Vec<u8>> = (0..PER_CHILD).map(|i| item((id * PER_CHILD + i) as u64)).collect();
            ready();
            for v in &items {
                r.call(&[b"LPUSH", b"w5", v]);
            }
        }
        "consumer" => {
            ready();
            let mut ids = Vec::with_capacity(2 * PER_CHILD);
            loop {
                let v = r.brpop(b"w5");
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
            ready();
            let mut lat = Vec::new();
            loop {
                let v = r.brpop(b"w11");
                let pushed: u64 = std::str::from_utf8(&v)
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .expect("a push time");
                if pushed == 0 {
                    break;
                }
                lat.push(wall_ns().saturating_sub(pushed));
            }
            let text: Vec<String> = lat.iter().map(u64::to_string).collect();
            println!("{}", text.join(" "));
        }
        other => panic!("unknown role {other}"),
    }
}

/// `redis-benchmark` (C, one connection, no pipelining) for the ops of W2
/// and W4, printed as `"impl":"redis-benchmark"` lines.
fn c_client(port: u16, w2: bool, w4: bool) {
    // (redis-benchmark's -t, then each test's name, workload and phase)
    type Phase = (&'static str, &'static str, &'static str);
    let mut tests: Vec<(&str, Vec<Phase>)> = Vec::new();
    if w2 {
        tests.push(("set,get", vec![("GET", "W2", "get hit")]));
    }
    if w4 {
        tests.push((
            "lpush,rpop",
            vec![("LPUSH", "W4", "push_back"), ("RPOP", "W4", "pop_front")],
        ));
    }
    let mut r = Redis::connect(port);
    for (t, phases) in tests {
        r.call(&[b"FLUSHALL"]);
        let out = Command::new("redis-benchmark")
            .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-c", "1"])
            .args(["-n", &N.to_string(), "-d", &VALUE_LEN.to_string(), "-t", t, "--csv"])
            .output()
            .expect("run redis-benchmark");
        assert!(out.status.success(), "redis-benchmark failed");
        // "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let f: Vec<&str> = line.split(',').map(|s| s.trim_matches('"')).collect();
            let Some(&(test, w, phase)) = phases.iter().find(|p| f.first() == Some(&p.0)) else {
                continue;
            };
            let num = |i: usize| f.get(i).and_then(|s| s.parse::<f64>().ok()).expect("a number");
            let rps = num(1);
            println!(
                "{{\"impl\":\"redis-benchmark\",\"workload\":\"{w}\",\"phase\":\"{phase}\",\"ops\":{N},\
                 \"seconds\":{:.6},\"ops_per_s\":{rps:.1},\"median_us\":{:.1},\"p99_us\":{:.1},\
                 \"client\":\"redis-benchmark -c 1 {test}\"}}",
                N as f64 / rps,
                num(4) * 1000.0,
                num(6) * 1000.0
            );
        }
    }
    r.call(&[b"FLUSHALL"]);
}
