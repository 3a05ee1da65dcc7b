//! Workers on several (simulated) hosts: Linux network namespaces made by
//! the test, one for the database and three for worker hosts, joined by
//! veth pairs on a bridge in the database's namespace (and one more pair
//! for this test process, which fills the queue and checks it). The
//! server listens only on the bridge's address; each worker process runs
//! in its host's namespace (`ip netns exec`), so its only way to the queue
//! is the network. The shared tests of `support/mp.rs` then run across the
//! hosts: exactly-once pops, and a host's consumer SIGKILLed holding leases
//! whose items the other hosts finish once the leases run out. Then the
//! crawler example crawls a site served by this process with its frontier,
//! seen-set and results in the database (`--postgres`), one crawler on
//! each host: every page is fetched once; one host's crawler and workers
//! are SIGKILLed mid-crawl, and the other hosts finish its pages.
//!
//! Needs root and `ip` (iproute2); the namespaces and links are removed
//! afterwards, and ones left by a killed run are removed by the next.
#![cfg(feature = "postgres")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

#[path = "support/mp.rs"]
mod mp;
#[path = "support/pg.rs"]
mod pg;
#[path = "../examples/crawler/site.rs"]
mod site;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use diskq::Index;
use site::PageResult;

#[test]
fn child() {
    mp::child();
}

/// Runs `ip args...`, panicking with its output when it fails.
fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `ip` inside namespace `ns`.
fn ip_in(ns: &str, args: &[&str]) {
    let mut all = vec!["netns", "exec", ns, "ip"];
    all.extend_from_slice(args);
    ip(&all);
}

const PREFIX: &str = "dqt";

/// The namespaces of one run (`dqt<pid>db`, `dqt<pid>h0`, ...), removed on drop.
struct Net {
    pid: u32,
    hosts: Vec<String>,
    db: String,
    /// This process's end of its link to the bridge.
    link: String,
}

impl Net {
    fn name(pid: u32, what: &str) -> String {
        format!("{PREFIX}{pid}{what}")
    }

    /// Removes what earlier runs that were killed left behind.
    fn sweep() {
        let out = Command::new("ip")
            .args(["netns", "list"])
            .output()
            .expect("ip netns list");
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let name = line.split_whitespace().next().unwrap_or_default();
            let Some(rest) = name.strip_prefix(PREFIX) else {
                continue;
            };
            let pid: String = rest.chars().take_while(char::is_ascii_digit).collect();
            if !pid.is_empty() && !std::path::Path::new(&format!("/proc/{pid}")).exists() {
                let _ = Command::new("ip").args(["netns", "del", name]).status();
            }
        }
    }

    /// The database namespace with a bridge at `10.<a>.<b>.1/24`, `hosts`
    /// host namespaces at `.2`, `.3`, ..., and this process at `.254`.
    fn make(hosts: usize, subnet: &str) -> Net {
        Net::sweep();
        let pid = std::process::id();
        let db = Net::name(pid, "db");
        let mut net = Net {
            pid,
            hosts: Vec::new(),
            db: db.clone(),
            link: Net::name(pid, "r"),
        };
        ip(&["netns", "add", &db]);
        ip_in(&db, &["link", "set", "lo", "up"]);
        ip_in(&db, &["link", "add", "br0", "type", "bridge"]);
        ip_in(&db, &["addr", "add", &format!("{subnet}.1/24"), "dev", "br0"]);
        ip_in(&db, &["link", "set", "br0", "up"]);
        let attach = |near: &str, far: &str| {
            ip(&["link", "add", near, "type", "veth", "peer", "name", far]);
            ip(&["link", "set", far, "netns", &db]);
            ip_in(&db, &["link", "set", far, "master", "br0"]);
            ip_in(&db, &["link", "set", far, "up"]);
        };
        for h in 0..hosts {
            let ns = Net::name(pid, &format!("h{h}"));
            ip(&["netns", "add", &ns]);
            net.hosts.push(ns.clone());
            let (near, far) = (Net::name(pid, &format!("h{h}")), Net::name(pid, &format!("h{h}p")));
            attach(&near, &far);
            ip(&["link", "set", &near, "netns", &ns]);
            ip_in(&ns, &["link", "set", "lo", "up"]);
            ip_in(&ns, &["addr", "add", &format!("{subnet}.{}/24", h + 2), "dev", &near]);
            ip_in(&ns, &["link", "set", &near, "up"]);
        }
        let far = Net::name(pid, "rp");
        attach(&net.link, &far);
        ip(&["addr", "add", &format!("{subnet}.254/24"), "dev", &net.link]);
        ip(&["link", "set", &net.link, "up"]);
        net
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        // Deleting a namespace destroys its veth ends, and with them their peers.
        let _ = Command::new("ip").args(["link", "del", &self.link]).status();
        for ns in self.hosts.iter().chain([&self.db]) {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
        let left: Vec<String> = String::from_utf8_lossy(
            &Command::new("ip")
                .args(["netns", "list"])
                .output()
                .map(|o| o.stdout)
                .unwrap_or_default(),
        )
        .lines()
        .filter(|l| l.starts_with(&format!("{PREFIX}{}", self.pid)))
        .map(str::to_owned)
        .collect();
        if !std::thread::panicking() {
            assert!(left.is_empty(), "namespaces left: {left:?}");
        }
    }
}

fn can_make_namespaces() -> Result<(), String> {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout == b"0\n")
        .unwrap_or(false);
    if !root {
        return Err("not root".into());
    }
    if Command::new("ip").arg("-V").output().is_err() {
        return Err("no `ip` command (iproute2)".into());
    }
    Ok(())
}

#[test]
fn workers_on_three_hosts_share_one_queue() {
    if let Err(why) = can_make_namespaces() {
        eprintln!("skipped: cannot make network namespaces ({why})");
        return;
    }
    let pid = std::process::id();
    // A subnet of this run's own, so concurrent runs do not meet.
    let subnet = format!("10.{}.{}", 100 + pid % 100, (pid / 100) % 250);
    let net = Net::make(3, &subnet);
    let dir = tempfile::tempdir().unwrap();
    let port = 5432;
    let db_dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("pg-hosts-{pid}"));
    let _ = std::fs::remove_dir_all(&db_dir);
    let wrap = ["ip", "netns", "exec", net.db.as_str()];
    let cluster = pg::start_cluster(
        &db_dir,
        &format!("{subnet}.1"),
        port,
        &wrap,
        Some(&format!("{subnet}.0/24")),
    );
    let url = format!("postgres://postgres@{subnet}.1:{port}/postgres");
    let host = |h: usize| vec!["ip", "netns", "exec", net.hosts[h].as_str()];
    let (h0, h1, h2) = (host(0), host(1), host(2));

    // The database is reachable only over the bridge: not on the hosts' loopback.
    let local = Command::new("ip")
        .args(["netns", "exec", &net.hosts[0], "bash", "-c"])
        .arg(format!("exec 3<>/dev/tcp/127.0.0.1/{port}"))
        .status();
    if let Ok(status) = local {
        assert!(!status.success(), "a host reached a server on its own loopback");
    }

    crawl_across_hosts(&url, &subnet, [&h0, &h1, &h2]);
    mp::pops_are_exactly_once(&[&h0, &h1, &h2], &format!("{url}#pops"), dir.path(), 3, 3, 300);
    let logs = tempfile::tempdir().unwrap();
    mp::a_killed_consumer_holding_leases_loses_nothing(
        [&h0, &h1, &h2],
        &format!("{url}#leases"),
        logs.path(),
        600,
        100,
    );
    cluster.stop();
    assert!(!db_dir.exists(), "the cluster's folder is removed");
    drop(net);
}

/// The crawler binary (this test's profile), built with the `postgres`
/// feature by the cargo that runs the test.
fn crawler() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let exe = std::env::current_exe().unwrap();
        let profile_dir = exe.parent().unwrap().parent().unwrap();
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = Command::new(cargo);
        build
            .args([
                "build",
                "--quiet",
                "-p",
                "diskq",
                "--features",
                "postgres",
                "--example",
                "crawler",
            ])
            .current_dir(env!("CARGO_MANIFEST_DIR"));
        if let Some(target_dir) = profile_dir.parent() {
            build.arg("--target-dir").arg(target_dir);
        }
        if profile_dir.file_name().is_some_and(|p| p == "release") {
            build.arg("--release");
        }
        assert!(build.status().unwrap().success(), "building the crawler example");
        profile_dir.join("examples").join("crawler")
    })
}

/// Kills (SIGKILL) a process by pid; false when it was gone already.
fn kill(pid: u32) -> bool {
    Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .is_ok_and(|s| s.success())
}

/// One crawler per host on a site served here; host 0's is SIGKILLed with
/// its workers once some pages are stored.
fn crawl_across_hosts(url: &str, subnet: &str, hosts: [&[&str]; 3]) {
    const PAGES: u64 = 300;
    const WORKERS: usize = 2;
    let server = site::Server::start_on(&format!("{subnet}.254"), PAGES).unwrap();
    let location = format!("{url}#crawl");
    let start = |host: &[&str]| {
        Command::new(host[0])
            .args(&host[1..])
            .arg(crawler())
            .args(["--postgres", &location, "--url", &server.url()])
            .args(["--workers", &WORKERS.to_string(), "--lease-secs", "3"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap()
    };
    // Host 0 starts first and seeds the crawl; its worker pids come first
    // on its stdout.
    let mut victim = start(hosts[0]);
    let mut victim_out = BufReader::new(victim.stdout.take().unwrap()).lines();
    let mut pids = vec![victim.id()];
    while pids.len() < 1 + WORKERS {
        let line = victim_out.next().expect("the crawler prints its workers").unwrap();
        if let Some(rest) = line.strip_prefix("worker ") {
            pids.push(rest.rsplit(' ').next().unwrap().parse().unwrap());
        }
    }
    let others: Vec<_> = hosts[1..].iter().map(|h| start(h)).collect();
    let pages: Index<String, PageResult> = Index::open(format!("{url}#crawl_pages")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while pages.len().unwrap() < 60 {
        assert!(Instant::now() < deadline, "the crawl does not progress");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The host dies: its crawler and its workers at once.
    let killed = pids.iter().filter(|pid| kill(**pid)).count();
    assert!(killed >= 1, "host 0's crawler was running");
    let _ = victim.wait();
    drop(victim_out);
    for child in others {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "a crawler failed:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }

    // Every reachable page stored once, as the site serves it.
    let expected = site::reachable(PAGES);
    let stored: BTreeMap<String, PageResult> = pages.iter().unwrap().map(|i| i.unwrap()).collect();
    assert_eq!(
        stored.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>(),
        "the crawled paths are the reachable ones"
    );
    for (path, (status, title, links)) in &expected {
        let got = &stored[path];
        assert_eq!((got.status, &got.title, &got.links), (*status, title, links), "{path}");
        assert_eq!(got.error, None, "{path}");
    }
    // Fetched once, but for the pages the killed workers had in hand (one
    // lease each), fetched again by the other hosts.
    let counts = server.counts();
    assert_eq!(counts.len(), expected.len(), "nothing outside the site was fetched");
    let again: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(again.iter().all(|(_, n)| **n == 2), "{again:?}");
    assert!(
        again.len() <= WORKERS,
        "only the killed workers' pages come twice: {again:?}"
    );
    let backlog = diskq::Deque::<String>::open(format!("{url}#crawl_frontier"))
        .unwrap()
        .backlog()
        .unwrap();
    assert!(backlog.is_empty(), "the frontier is done: {backlog:?}");
}
