//! Runs `diskq serve` as a child process for the tests: reads the address
//! (and the write token) it prints, and stops it with SIGTERM, as Ctrl-C
//! would, waiting for it to exit.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

/// The binary under test.
pub const DISKQ: &str = env!("CARGO_BIN_EXE_diskq");

/// A running `diskq serve`.
pub struct Server {
    child: Option<Child>,
    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub url: String,
    /// The write token, with `--allow-writes`.
    pub token: Option<String>,
}

impl Server {
    /// `diskq serve DIR --port 0 EXTRA...`, once it listens.
    pub fn start(dir: &Path, extra: &[&str]) -> Server {
        let mut child = Command::new(DISKQ)
            .arg("serve")
            .arg(dir)
            .args(["--port", "0"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("diskq serve runs");
        let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        let first = lines.next().expect("a first line").expect("text");
        let url = first
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("no address in {first:?}"))
            .trim_end_matches('/')
            .to_string();
        let token = if extra.contains(&"--allow-writes") {
            let line = lines.next().expect("a token line").expect("text");
            Some(line.strip_prefix("write token: ").expect("the token line").to_string())
        } else {
            None
        };
        Server {
            child: Some(child),
            url,
            token,
        }
    }

    /// Stops it as Ctrl-C does and returns its exit status.
    pub fn stop(mut self) -> i32 {
        let mut child = self.child.take().expect("running");
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
        child.wait().expect("exits").code().expect("exited, not killed")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// An HTTP client that returns 4xx and 5xx answers instead of failing.
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

/// Status and body of `GET url`.
pub fn get(url: &str) -> (u16, String) {
    let mut response = agent().get(url).call().expect("an answer");
    let status = response.status().as_u16();
    (status, response.body_mut().read_to_string().expect("a text body"))
}

/// The JSON of `GET url`, which must answer 200.
pub fn get_json(url: &str) -> serde_json::Value {
    let (status, body) = get(url);
    assert_eq!(status, 200, "GET {url}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {url} is not JSON ({e}): {body}"))
}

/// Calls `check` until it returns `Some`, or panics after `secs`.
pub fn until<T>(secs: u64, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        // Polling a server's state, not timing it: a short pause between looks.
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A file's contents and length and modification time; a folder's time.
type Entry = (Option<Vec<u8>>, u64, Option<SystemTime>);

/// Every file and folder under `dir`, by path. Folders that hold a
/// `cache.db` have no time: SQLite makes and removes its log files in
/// them while the cache is open, which changes their time only.
pub fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Entry> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Entry>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let meta = fs::symlink_metadata(&path).unwrap();
            let name = path.strip_prefix(root).unwrap().to_path_buf();
            let contents = meta.is_file().then(|| fs::read(&path).unwrap());
            let time = if meta.is_dir() && path.join("cache.db").exists() {
                None
            } else {
                Some(meta.modified().unwrap())
            };
            out.insert(name, (contents, meta.len(), time));
            if meta.is_dir() {
                walk(root, &path, out);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}
