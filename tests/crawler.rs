//! The crawler example, run as a user runs it: its worker processes crawl
//! this test's own copy of the synthetic site (which counts the requests
//! for each path), and the stored results are compared with the site.
//!
//! The example binary is built here with the cargo that runs the test (a
//! no-op when `cargo test` has just built it).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../examples/crawler/site.rs"]
mod site;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use diskq::{Cache, Index};
use site::{PageResult, Server};

/// The crawler binary of the same profile as this test, built (or found
/// up to date) by the cargo that runs the test, so it is never stale.
fn crawler() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let exe = std::env::current_exe().unwrap();
        // target/<profile>/deps/crawler-<hash> -> target/<profile>/examples/crawler
        let profile_dir = exe.parent().unwrap().parent().unwrap();
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = Command::new(cargo);
        build
            .args(["build", "--quiet", "-p", "diskq", "--example", "crawler"])
            .current_dir(env!("CARGO_MANIFEST_DIR"));
        if let Some(target_dir) = profile_dir.parent() {
            build.arg("--target-dir").arg(target_dir);
        }
        if profile_dir.file_name().is_some_and(|p| p == "release") {
            build.arg("--release");
        }
        assert!(build.status().unwrap().success(), "building the crawler example");
        let binary = profile_dir.join("examples").join("crawler");
        assert!(binary.exists(), "no crawler binary at {}", binary.display());
        binary
    })
}

/// A crawler run against `server`, its stdout piped.
fn start(server: &Server, dir: &Path, workers: usize) -> Child {
    Command::new(crawler())
        .args(["--workers", &workers.to_string(), "--url", &server.url(), "--dir"])
        .arg(dir)
        .args(["--lease-secs", "5"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

/// Kills the child on drop, so a failing test leaves no crawler behind.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Every stored result, by path.
fn results(dir: &Path) -> BTreeMap<String, PageResult> {
    let pages: Index<String, PageResult> = Index::open(dir.join("pages")).unwrap();
    pages.iter().unwrap().map(|item| item.unwrap()).collect()
}

/// The results match the site: every reachable path, with its status,
/// title and links, and nothing else.
fn assert_matches_site(dir: &Path, pages: u64) {
    let expected = site::reachable(pages);
    let stored = results(dir);
    assert_eq!(
        stored.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>(),
        "the crawled paths are the reachable ones"
    );
    for (path, (status, title, links)) in &expected {
        let got = &stored[path];
        assert_eq!(got.status, *status, "{path}");
        assert_eq!(&got.title, title, "{path}");
        assert_eq!(&got.links, links, "{path}");
        assert_eq!(got.error, None, "{path}");
        assert!(got.size > 0, "{path}");
    }
}

/// Waits until at least `n` pages are stored; fails past `deadline`.
fn wait_for_pages(dir: &Path, n: usize, deadline: Instant) {
    let pages: Index<String, PageResult> = Index::open(dir.join("pages")).unwrap();
    while pages.len().unwrap() < n {
        assert!(Instant::now() < deadline, "the crawl does not progress");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Everything the child prints, until it closes its stdout.
fn output_lines(child: &mut Child) -> Vec<String> {
    let stdout = child.stdout.take().expect("stdout is piped");
    BufReader::new(stdout).lines().map(Result::unwrap).collect()
}

fn stat(dir: &Path, key: &str) -> i64 {
    let stats = Cache::open(dir.join("stats")).unwrap();
    stats.get(key).unwrap().unwrap_or(0)
}

#[test]
fn three_workers_fetch_every_reachable_page_exactly_once() {
    let pages = 400;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(pages).unwrap();
    let mut crawl = Guard(start(&server, dir.path(), 3));
    let lines = output_lines(&mut crawl.0);
    assert!(
        crawl.0.wait().unwrap().success(),
        "the crawler failed:\n{}",
        lines.join("\n")
    );

    let workers: Vec<_> = lines.iter().filter(|l| l.starts_with("worker ")).collect();
    assert_eq!(workers.len(), 3, "{lines:?}");
    let expected = site::reachable(pages);
    let counts = server.counts();
    for path in expected.keys() {
        assert_eq!(counts.get(path), Some(&1), "{path} fetched once");
    }
    assert_eq!(counts.len(), expected.len(), "nothing outside the site was fetched");
    assert_matches_site(dir.path(), pages);
    assert_eq!(stat(dir.path(), "duplicates"), 0);
    let done: i64 = (0..3).map(|w| stat(dir.path(), &format!("worker:{w}"))).sum();
    assert_eq!(done as usize, expected.len(), "per-worker counts add up");
    assert!(
        lines.iter().any(|l| l.contains("pages fetched more than once: 0")),
        "{lines:?}"
    );

    // Run again: nothing left to do, nothing fetched again.
    let mut again = Guard(start(&server, dir.path(), 2));
    assert!(again.0.wait().unwrap().success());
    assert_eq!(server.counts(), counts, "a finished crawl fetches nothing");
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.contains(") Z "))
}

fn sigkill(pid: u32) {
    let status = Command::new("kill").args(["-9", &pid.to_string()]).status().unwrap();
    assert!(status.success(), "kill -9 {pid}");
}

#[cfg(target_os = "linux")]
#[test]
fn a_killed_worker_and_parent_lose_nothing_and_the_next_run_resumes() {
    let pages = 600;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(pages).unwrap();
    let mut crawl = Guard(start(&server, dir.path(), 2));
    let mut stdout = BufReader::new(crawl.0.stdout.take().unwrap()).lines();
    let mut pids = Vec::new();
    while pids.len() < 2 {
        let line = stdout.next().expect("the crawler printed its workers").unwrap();
        if let Some(pid) = line.strip_prefix("worker ").and_then(|l| l.split(" pid ").nth(1)) {
            pids.push(pid.parse::<u32>().unwrap());
        }
    }
    // Let the crawl get going, then kill one worker in the middle of it.
    let deadline = Instant::now() + Duration::from_secs(120);
    wait_for_pages(dir.path(), 100, deadline);
    sigkill(pids[0]);
    // ... and then the parent: the other worker finishes its page and stops.
    wait_for_pages(dir.path(), 200, deadline);
    sigkill(crawl.0.id());
    crawl.0.wait().unwrap();
    while alive(pids[1]) {
        assert!(Instant::now() < deadline, "the orphaned worker did not stop");
        std::thread::sleep(Duration::from_millis(20));
    }
    let part = results(dir.path()).len();
    assert!(
        part < site::reachable(pages).len(),
        "the crawl was interrupted ({part} pages)"
    );

    // The same command again continues from the frontier on disk.
    let mut resumed = Guard(start(&server, dir.path(), 2));
    let lines = output_lines(&mut resumed.0);
    assert!(resumed.0.wait().unwrap().success(), "{lines:?}");
    assert!(
        lines.iter().any(|l| l.contains(&format!("{part} pages already done"))),
        "{lines:?}"
    );

    assert_matches_site(dir.path(), pages);
    let expected = site::reachable(pages);
    let counts = server.counts();
    assert_eq!(counts.len(), expected.len());
    let twice: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    // Only the page the killed worker had in flight may be fetched again:
    // it holds one lease at a time. The parent's death stops the other
    // worker between pages, so it leaves nothing half done.
    eprintln!(
        "killed a worker and the parent at {part} of {} pages; fetched twice: {twice:?}",
        expected.len()
    );
    assert!(twice.len() <= 1, "fetched more than once: {twice:?}");
    assert!(twice.iter().all(|(_, n)| **n == 2), "{twice:?}");
    // The crawler counts a redelivery when it starts fetching, so a worker
    // killed between its count and its request counts one it never made.
    let counted = stat(dir.path(), "duplicates") as usize;
    assert!(counted >= twice.len() && counted <= 1, "duplicates counted: {counted}");
}

#[cfg(target_os = "linux")]
#[test]
fn ctrl_c_stops_between_pages_and_the_next_run_fetches_nothing_twice() {
    use std::os::unix::process::CommandExt;
    let pages = 600;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(pages).unwrap();
    // Its own process group, as a shell job: Ctrl-C signals the whole group.
    let mut crawl = Guard(
        Command::new(crawler())
            .args(["--workers", "2", "--url", &server.url(), "--dir"])
            .arg(dir.path())
            .stdout(Stdio::piped())
            .process_group(0)
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    wait_for_pages(dir.path(), 100, deadline);
    let group = format!("-{}", crawl.0.id());
    assert!(
        Command::new("kill")
            .args(["-INT", "--", &group])
            .status()
            .unwrap()
            .success()
    );
    let lines = output_lines(&mut crawl.0);
    assert!(
        !crawl.0.wait().unwrap().success(),
        "an interrupted crawl is not a finished one"
    );
    assert!(lines.iter().any(|l| l.starts_with("interrupted")), "{lines:?}");
    let part = results(dir.path()).len();
    let frontier: diskq::Deque<String> = diskq::Deque::open(dir.path().join("frontier")).unwrap();
    assert_eq!(frontier.backlog().unwrap().leased, 0, "no page was left in progress");
    assert!(
        part < site::reachable(pages).len(),
        "the crawl was interrupted ({part} pages)"
    );

    let mut resumed = Guard(start(&server, dir.path(), 2));
    assert!(resumed.0.wait().unwrap().success());
    assert_matches_site(dir.path(), pages);
    let counts = server.counts();
    assert!(counts.values().all(|n| *n == 1), "a page was fetched twice");
    assert_eq!(stat(dir.path(), "duplicates"), 0);
}

/// `pickle.dumps((1, 'two'), protocol=5)`: what a Python `Deque.append`
/// of a tuple stores (mode 4).
const PICKLE: &[u8] = &[
    128, 5, 149, 11, 0, 0, 0, 0, 0, 0, 0, 75, 1, 140, 3, 116, 119, 111, 148, 134, 148, 46,
];

#[test]
fn a_frontier_item_no_worker_can_read_goes_to_the_dead_letter_queue_and_the_crawl_finishes() {
    let pages = 50;
    let dir = tempfile::tempdir().unwrap();
    // The first frontier item is a pickle, as if a Python process had
    // appended a tuple before the crawl was seeded.
    let frontier = dir.path().join("frontier");
    Cache::open(&frontier).unwrap();
    let conn = rusqlite::Connection::open(frontier.join("cache.db")).unwrap();
    conn.execute(
        "INSERT INTO Cache (key, raw, store_time, access_time, size, mode, value) \
         VALUES (500000000000000, 1, 0, 0, ?1, 4, ?2)",
        rusqlite::params![PICKLE.len() as i64, PICKLE],
    )
    .unwrap();
    drop(conn);

    let server = Server::start(pages).unwrap();
    // Each delivery of the pickle fails at once; the third moves it to the
    // dead-letter queue.
    let mut crawl = Guard(start(&server, dir.path(), 2));
    let lines = output_lines(&mut crawl.0);
    assert!(
        crawl.0.wait().unwrap().success(),
        "the crawler failed:\n{}",
        lines.join("\n")
    );
    assert_matches_site(dir.path(), pages);
    assert_eq!(
        stat(dir.path(), "error:undecodable frontier item"),
        3,
        "three deliveries"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("no worker could read") && l.ends_with(": 1")),
        "{lines:?}"
    );
    let conn = rusqlite::Connection::open(frontier.join("cache.db")).unwrap();
    let (mode, value): (i64, Vec<u8>) = conn
        .query_row(
            "SELECT mode, value FROM Cache WHERE key = 'dead-letter-500000000000000'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((mode, value.as_slice()), (4, PICKLE), "kept whole");
}
