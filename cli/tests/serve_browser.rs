//! The page of `diskq serve` in a real browser: headless Chromium driven
//! by chromedriver (WebDriver, through fantoccini), while other processes
//! push, lease, ack and nack with the `diskq` tool (and the library, for a
//! delayed push and a nack with an error text). The page must show the
//! depth change, a lease appear and go, a dead letter listed with its
//! delivery count and last error, a scheduled count and the queue's
//! counters; a screenshot is kept in `target/tmp/serve-page.png`.
//!
//! Needs Debian's `chromium` and `chromium-driver` (CI's test script
//! installs them). Without them the test says so and passes, except under
//! `CI=true`, where it fails.
#![cfg(feature = "serve")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/server.rs"]
mod server;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use diskq::{Cache, LeaseOptions, NackOptions, PushOptions};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use server::{DISKQ, Server};

/// How long any one thing the page should show may take to show.
const DEADLINE: Duration = Duration::from_secs(30);

/// `diskq ARGS`: its stdout and stderr, asserting exit status 0.
fn diskq(args: &[&str]) -> (String, String) {
    let out = Command::new(DISKQ)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("diskq runs");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(out.status.success(), "diskq {args:?}: {stderr}");
    (stdout, stderr)
}

/// The first of `names` found on the PATH.
fn find_program(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    names
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |dir| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

/// chromedriver on a free port, once it says it is ready.
struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    async fn start(program: &Path) -> Driver {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(program)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver runs");
        // Owned at once, so that a panic below still ends it.
        let driver = Driver {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let agent = server::agent();
        let start = Instant::now();
        loop {
            let ready = agent
                .get(format!("{}/status", driver.url))
                .call()
                .ok()
                .and_then(|mut r| r.body_mut().read_to_string().ok())
                .and_then(|body| serde_json::from_str::<Value>(&body).ok())
                .is_some_and(|status| status["value"]["ready"] == true);
            if ready {
                return driver;
            }
            assert!(start.elapsed() < DEADLINE, "chromedriver did not get ready");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Evaluates `expression` in the page until it is neither null nor false
/// (and, when given, equals `want`); returns it. Panics past [`DEADLINE`],
/// saying what was awaited and what the page showed last.
async fn until(client: &Client, what: &str, expression: &str, want: Option<Value>) -> Value {
    let script = format!("return ({expression});");
    let start = Instant::now();
    loop {
        let got = client.execute(&script, vec![]).await.expect("the script runs");
        let done = match &want {
            Some(w) => got == *w,
            None => !got.is_null() && got != Value::Bool(false),
        };
        if done {
            return got;
        }
        assert!(start.elapsed() < DEADLINE, "the page never showed {what}: last {got}");
        // Looking at the page's state again shortly; not a timing assumption.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The text of a cell of the row of queue `jobs`.
fn cell(class: &str) -> String {
    format!(
        "(document.querySelector('tr[data-queue-row][data-queue=\"jobs\"] td.{class}') || {{}}).textContent || null"
    )
}

#[tokio::test(flavor = "current_thread")]
async fn the_page_shows_depth_leases_and_dead_letters_as_they_change() {
    let (Some(chromium), Some(chromedriver)) = (
        find_program(&["chromium", "chromium-browser", "google-chrome"]),
        find_program(&["chromedriver"]),
    ) else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI must have chromium and chromedriver (apt-get install chromium chromium-driver)"
        );
        eprintln!("skipped: no chromium or chromedriver on the PATH (apt-get install chromium chromium-driver)");
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("queue");
    let d = dir.to_str().expect("UTF-8 path");
    diskq(&["push", d, "first job", "--prefix", "jobs"]);
    let server = Server::start(&dir, &["--interval", "0.1"]);

    let driver = Driver::start(&chromedriver).await;
    let profile = tmp.path().join("chromium-profile");
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--window-size=1280,900",
                format!("--user-data-dir={}", profile.display()),
            ],
        }),
    );
    let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a browser session");
    client.goto(&format!("{}/", server.url)).await.expect("the page loads");

    until(
        &client,
        "the read-only badge",
        "document.getElementById('mode').textContent",
        Some(json!("read-only")),
    )
    .await;
    until(&client, "the first depth", &cell("depth"), Some(json!("1"))).await;

    // A producer (another process) pushes; the depth shown follows.
    for (round, expected) in [(1, "3"), (2, "5")] {
        diskq(&["push", d, &format!("job {round}a"), "--prefix", "jobs"]);
        diskq(&["push", d, &format!("job {round}b"), "--prefix", "jobs"]);
        until(
            &client,
            &format!("depth {expected}"),
            &cell("depth"),
            Some(json!(expected)),
        )
        .await;
    }

    // A consumer leases the front item: the lease is listed, then acked, gone.
    let (_, lease) = diskq(&["lease", d, "--prefix", "jobs", "--secs", "300"]);
    let lease = lease.trim().to_string();
    let leased_row = "document.querySelector('tr.lease[data-item=\"jobs-500000000000000\"]') !== null";
    until(&client, "the lease", leased_row, Some(json!(true))).await;
    until(&client, "one leased", &cell("leased"), Some(json!("1"))).await;
    until(&client, "depth 4", &cell("depth"), Some(json!("4"))).await;
    let holder = until(
        &client,
        "the lease's holder",
        "(document.querySelector('tr.lease td:nth-child(2)') || {}).textContent || null",
        None,
    )
    .await;
    assert_eq!(
        Some(holder.as_str().unwrap()),
        lease.split('.').next(),
        "the lease's name, not its token"
    );
    diskq(&["ack", d, &lease]);
    until(
        &client,
        "the lease gone",
        "document.querySelectorAll('tr.lease').length",
        Some(json!(0)),
    )
    .await;
    until(&client, "none leased", &cell("leased"), Some(json!("0"))).await;

    // One that fails on its only delivery becomes a dead letter, listed
    // with its delivery count and the error its worker gave (the lease is
    // taken by the tool and nacked, by its id, through the library).
    let (_, failing) = diskq(&["lease", d, "--prefix", "jobs", "--max-deliveries", "1"]);
    let cache = Cache::open(&dir).expect("the library opens it too");
    let once = LeaseOptions::new(Duration::from_secs(300))
        .prefix("jobs")
        .max_deliveries(1);
    let id = failing.trim().parse().expect("a lease id");
    let failed = cache
        .resume_lease::<String>(&id, &once)
        .expect("resumed")
        .expect("still held");
    assert!(
        failed
            .nack_with(&NackOptions::new().error("HTTP 503 from example.com"))
            .expect("nacked")
    );
    let dead = "document.querySelector('tr.dead-letter[data-key=\"jobs-dead-letter-500000000000000\"]')";
    let dead_row = format!("({dead} || {{}}).textContent || null");
    let shown = until(&client, "the dead letter", &dead_row, None).await;
    assert!(shown.as_str().unwrap().contains("job 1a"), "its value shown: {shown}");
    until(
        &client,
        "the dead letter's last error",
        &format!("({dead}?.querySelector('td.last-error') || {{}}).textContent || null"),
        Some(json!("HTTP 503 from example.com")),
    )
    .await;
    until(
        &client,
        "the dead letter's deliveries",
        &format!("({dead}?.querySelector('td.deliveries') || {{}}).textContent || null"),
        Some(json!("1")),
    )
    .await;
    until(&client, "one dead letter", &cell("dead"), Some(json!("1"))).await;
    until(&client, "depth 3", &cell("depth"), Some(json!("3"))).await;
    // A delayed push is scheduled, not in the depth.
    until(&client, "none scheduled", &cell("scheduled"), Some(json!("0"))).await;
    cache
        .push_with(
            "in an hour",
            &PushOptions::new().prefix("jobs").delay(Duration::from_secs(3600)),
        )
        .expect("a delayed push");
    until(&client, "one scheduled", &cell("scheduled"), Some(json!("1"))).await;
    until(&client, "depth 3 still", &cell("depth"), Some(json!("3"))).await;
    // The library's counters of the queue: 6 pushed (one delayed), 2
    // leased, 1 acked, 1 nacked and dead-lettered, 1 scheduled.
    let counter = |name: &str| {
        format!(
            "(document.querySelector('tr[data-counters][data-queue=\"jobs\"] td.counter-{name}') || {{}}).textContent || null"
        )
    };
    for (name, value) in [
        ("pushed", "6"),
        ("leased", "2"),
        ("acked", "1"),
        ("nacked", "1"),
        ("dead_lettered", "1"),
        ("scheduled", "1"),
    ] {
        until(
            &client,
            &format!("the {name} counter"),
            &counter(name),
            Some(json!(value)),
        )
        .await;
    }
    // The chart has drawn the depth's history.
    until(
        &client,
        "a depth chart",
        "(document.querySelector('tr[data-queue-row][data-queue=\"jobs\"] svg path') || {}).getAttribute?.('d')?.length > 20",
        Some(json!(true)),
    )
    .await;
    // Nothing came from anywhere but the server.
    let loaded = client
        .execute(
            "return performance.getEntriesByType('resource').map(e => e.name);",
            vec![],
        )
        .await
        .expect("the script runs");
    for url in loaded.as_array().expect("a list") {
        assert!(url.as_str().unwrap().starts_with(&server.url), "loaded {url}");
    }

    let png = client.screenshot().await.expect("a screenshot");
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("serve-page.png");
    std::fs::write(&shot, &png).expect("the screenshot is kept");
    eprintln!("screenshot: {}", shot.display());

    assert_eq!(server.stop(), 0);

    // With --allow-writes, the page's button requeues the dead letter once
    // the printed token is given; a wrong token is refused and said so.
    let server = Server::start(&dir, &["--interval", "0.1", "--allow-writes"]);
    client.goto(&format!("{}/", server.url)).await.expect("the page loads");
    until(
        &client,
        "the writes badge",
        "document.getElementById('mode').textContent",
        Some(json!("writes allowed")),
    )
    .await;
    let button = "document.querySelector('[data-dead-letters][data-queue=\"jobs\"] button[data-action=\"requeue\"]')";
    until(
        &client,
        "the requeue button",
        &format!("{button} !== null"),
        Some(json!(true)),
    )
    .await;
    let token = client.find(Locator::Css("#token")).await.expect("the token field");
    token.send_keys("not the token").await.expect("typed");
    client
        .execute(&format!("{button}.click(); return null;"), vec![])
        .await
        .expect("clicked");
    let problem = until(
        &client,
        "the refusal",
        "(() => { const p = document.getElementById('problem'); return p.hidden ? null : p.textContent; })()",
        None,
    )
    .await;
    assert!(problem.as_str().unwrap().contains("wrong X-Diskq-Token"), "{problem}");
    until(&client, "still one dead letter", &cell("dead"), Some(json!("1"))).await;
    token.clear().await.expect("cleared");
    token
        .send_keys(server.token.as_deref().expect("a token"))
        .await
        .expect("typed");
    client
        .execute(&format!("{button}.click(); return null;"), vec![])
        .await
        .expect("clicked");
    until(&client, "no dead letter", &cell("dead"), Some(json!("0"))).await;
    until(&client, "depth 4", &cell("depth"), Some(json!("4"))).await;
    until(
        &client,
        "the refusal gone",
        "document.getElementById('problem').hidden",
        Some(json!(true)),
    )
    .await;

    client.close().await.expect("the session ends");
    drop(driver);
    assert_eq!(server.stop(), 0);
}
