//! `diskq serve` over HTTP: every route, what bad requests get (a clear
//! 4xx, never a 5xx, and the server keeps serving), the token that
//! writes need, and that serving leaves the directory byte for byte as it
//! was.
#![cfg(feature = "serve")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/pyenv.rs"]
mod pyenv;
#[path = "support/server.rs"]
mod server;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use diskq::{Cache, FanoutCache, LeaseOptions, NackOptions, PushOptions, Side};
use serde_json::{Value, json};
use server::{Server, agent, get, get_json, snapshot, until};

/// A directory with a plain queue, a queue `jobs` with a running lease, a
/// dead letter (nacked with an error) and a delayed item, a queue `urgent`
/// whose job (a priority push) is leased again after a nack with an error,
/// a queue `later` of one delayed item only, and a FanoutCache with a
/// named deque.
fn populated(root: &Path) {
    let cache = Cache::open(root.join("main")).expect("open");
    cache.push("plain item").expect("push");
    let jobs = PushOptions::new().prefix("jobs");
    for job in ["job-1", "job-2", "job-3"] {
        cache.push_with(job, &jobs).expect("push");
    }
    let once = LeaseOptions::new(Duration::from_secs(600))
        .prefix("jobs")
        .max_deliveries(1);
    let failed = cache.lease::<String>(&once).expect("lease").expect("job-1");
    let error = NackOptions::new().side(Side::Front).error("HTTP 503 from example.com");
    assert!(failed.nack_with(&error).expect("nack"), "job-1 is a dead letter");
    let running = cache.lease::<String>(&once).expect("lease").expect("job-2");
    drop(running); // held until it runs out, in ten minutes
    let hour = Duration::from_secs(3600);
    cache.push_with("in an hour", &jobs.clone().delay(hour)).expect("push");
    cache
        .push_with("also in an hour", &PushOptions::new().prefix("later").delay(hour))
        .expect("push");
    let urgent = PushOptions::new().prefix("urgent").priority(5);
    cache.push_job("page me", &urgent).expect("push").expect("pushed");
    let twice = LeaseOptions::new(Duration::from_secs(600)).prefix("urgent");
    let first = cache.lease::<String>(&twice).expect("lease").expect("the job");
    assert!(first.nack_with(&NackOptions::new().error("pager down")).expect("nack"));
    drop(cache.lease::<String>(&twice).expect("lease").expect("again")); // held
    let fanout = FanoutCache::builder().shards(2).open(root.join("fan")).expect("fanout");
    fanout.set("k", "v").expect("set");
    fanout
        .deque::<String>("mail")
        .expect("deque")
        .push_back("hello")
        .expect("push");
}

fn cache_of<'v>(snapshot: &'v Value, id: &str) -> &'v Value {
    snapshot["caches"]
        .as_array()
        .expect("caches")
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no cache {id} in {snapshot}"))
}

fn queue_of(cache: &Value, queue: Value) -> &Value {
    cache["queues"]
        .as_array()
        .expect("queues")
        .iter()
        .find(|q| q["queue"] == queue)
        .unwrap_or_else(|| panic!("no queue {queue} in {cache}"))
}

#[test]
fn every_route_answers() {
    let tmp = tempfile::tempdir().expect("tempdir");
    populated(tmp.path());
    let server = Server::start(tmp.path(), &[]);
    let base = &server.url;

    let mut page = agent().get(format!("{base}/")).call().expect("page");
    assert_eq!(page.status().as_u16(), 200);
    assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .expect("text")
        .to_string();
    assert!(csp.contains("default-src 'self'"), "{csp}");
    let html = page.body_mut().read_to_string().expect("html");
    assert!(html.contains("/app.js") && html.contains("/app.css"), "{html}");
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "nothing from elsewhere"
    );
    for (path, kind, part) in [
        ("/app.js", "text/javascript; charset=utf-8", "/api/snapshot"),
        ("/app.css", "text/css; charset=utf-8", "--queued"),
    ] {
        let mut r = agent().get(format!("{base}{path}")).call().expect("asset");
        assert_eq!(
            (r.status().as_u16(), r.headers()["content-type"].to_str().unwrap()),
            (200, kind)
        );
        let body = r.body_mut().read_to_string().expect("text");
        assert!(body.contains(part), "{path}");
        assert!(!body.contains("https://"), "{path} loads nothing from elsewhere");
    }
    let head = agent().head(format!("{base}/api/snapshot")).call().expect("HEAD");
    assert_eq!(head.status().as_u16(), 200);

    let index = get_json(&format!("{base}/api"));
    assert_eq!(index["writes"], false);
    assert!(index["routes"]["GET /metrics"].is_string(), "{index}");

    let snap = get_json(&format!("{base}/api/snapshot"));
    assert_eq!(snap["writes"], false);
    let ids: Vec<&str> = snap["caches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["fan/000", "fan/001", "fan/deque/mail", "main"]);
    assert_eq!(cache_of(&snap, "fan/000")["kind"], "shard");
    let mail = cache_of(&snap, "fan/deque/mail");
    assert_eq!(mail["kind"], "deque");
    assert_eq!(queue_of(mail, Value::Null)["queued"], 1);
    let main = cache_of(&snap, "main");
    assert_eq!(main["gauges"]["items"], 7);
    assert_eq!(main["settings"]["eviction_policy"], "least-recently-stored");
    assert_eq!(queue_of(main, Value::Null)["queued"], 1);
    let jobs = queue_of(main, json!("jobs"));
    assert_eq!(
        (&jobs["queued"], &jobs["leased"], &jobs["dead_letters"]),
        (&json!(1), &json!(1), &json!(1))
    );
    assert_eq!(jobs["scheduled"], 1, "the delayed item");
    assert_eq!(
        jobs["counters"],
        json!({ "pushed": 4, "popped": 0, "leased": 2, "acked": 0, "nacked": 1,
                "redelivered": 0, "dead_lettered": 1, "scheduled": 1 })
    );
    assert_eq!(jobs["leases_listed"], true);
    // A queue of delayed items only (no key in its range) is found.
    let later = queue_of(main, json!("later"));
    assert_eq!((&later["queued"], &later["scheduled"]), (&json!(0), &json!(1)));
    // A job's lease: under its job key, with the error of its last nack.
    let urgent = queue_of(main, json!("urgent"));
    assert_eq!(
        (&urgent["leased"], &urgent["counters"]["leased"]),
        (&json!(1), &json!(2))
    );
    let job_lease = &urgent["leases"][0];
    assert!(
        job_lease["item"].as_str().unwrap().starts_with("diskq-job-k"),
        "{job_lease}"
    );
    assert_eq!(job_lease["holder"].as_str().unwrap().len(), 16);
    assert_eq!(
        (
            &job_lease["deliveries"],
            &job_lease["last_error"],
            &job_lease["preview"]["text"]
        ),
        (&json!(2), &json!("pager down"), &json!("page me"))
    );
    let lease = &jobs["leases"][0];
    assert_eq!(lease["item"], "jobs-500000000000001");
    assert_eq!((&lease["deliveries"], &lease["expired"]), (&json!(1), &json!(false)));
    assert_eq!(lease["preview"]["text"], "job-2");
    assert_eq!(lease["holder"].as_str().unwrap().len(), 16);
    assert_eq!(lease["last_error"], Value::Null);
    let dead = &jobs["dead_letter_items"][0];
    assert_eq!(dead["key"], "jobs-dead-letter-500000000000000");
    assert_eq!((&dead["size"], &dead["preview"]["text"]), (&json!(5), &json!("job-1")));
    assert_eq!(
        (&dead["deliveries"], &dead["last_error"]),
        (&json!(1), &json!("HTTP 503 from example.com"))
    );
    let dead_at = dead["dead_at"].as_f64().expect("when it died");
    assert!((dead_at - snap["at"].as_f64().unwrap()).abs() < 600.0, "{dead_at}");

    let detail = get_json(&format!("{base}/api/queue?cache=main&queue=jobs&limit=5"));
    assert_eq!(detail["leases"].as_array().unwrap().len(), 1);
    assert_eq!(detail["dead_letter_items"].as_array().unwrap().len(), 1);
    assert_eq!(detail["dead_letter_queue"], "jobs-dead-letter");
    assert_eq!(detail["scheduled"], 1);
    assert_eq!(detail["counters"], jobs["counters"]);
    assert_eq!(
        detail["dead_letter_items"][0]["last_error"],
        "HTTP 503 from example.com"
    );
    assert_eq!(detail["leases_listed"], true);
    let plain = get_json(&format!("{base}/api/queue?cache=main"));
    assert_eq!((&plain["queue"], &plain["queued"]), (&Value::Null, &json!(1)));

    let history = get_json(&format!("{base}/api/history"));
    let samples = history["samples"].as_array().unwrap();
    assert!(!samples.is_empty());
    let last = samples.last().unwrap()["at"].as_f64().unwrap();
    assert_eq!(
        samples.last().unwrap()["caches"]["main"]["queues"][1]["gauges"]["dead_letters"],
        1
    );
    let later = get_json(&format!("{base}/api/history?since={last}"));
    assert!(
        later["samples"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["at"].as_f64().unwrap() > last),
        "only newer samples"
    );

    let (status, metrics) = get(&format!("{base}/metrics"));
    assert_eq!(status, 200);
    assert!(
        metrics.contains("diskq_queue_depth{cache=\"main\",queue=\"jobs\"} 1\n"),
        "{metrics}"
    );
    assert!(metrics.contains("diskq_queue_dead_letters{cache=\"main\",queue=\"jobs\"} 1\n"));
    assert!(metrics.contains("diskq_queue_depth{cache=\"fan/deque/mail\",queue=\"\"} 1\n"));
    assert!(metrics.contains("# TYPE diskq_cache_hits_total counter\n"));
    assert!(
        metrics.contains("diskq_queue_scheduled{cache=\"main\",queue=\"jobs\"} 1\n"),
        "{metrics}"
    );
    assert!(metrics.contains("diskq_queue_scheduled{cache=\"main\",queue=\"later\"} 1\n"));
    assert!(metrics.contains("# TYPE diskq_queue_pushed_total counter\n"));
    for (family, value) in [
        ("pushed", 4),
        ("popped", 0),
        ("leased", 2),
        ("acked", 0),
        ("nacked", 1),
        ("redelivered", 0),
        ("dead_lettered", 1),
        ("scheduled", 1),
    ] {
        let line = format!("diskq_queue_{family}_total{{cache=\"main\",queue=\"jobs\"}} {value}\n");
        assert!(metrics.contains(&line), "{line} in {metrics}");
    }
    assert!(metrics.contains("diskq_queue_leased_total{cache=\"main\",queue=\"urgent\"} 2\n"));
    // A counter and a gauge of one name never mix: the leased gauge is 1.
    assert!(metrics.contains("diskq_queue_leased{cache=\"main\",queue=\"urgent\"} 1\n"));
    assert_eq!(server.stop(), 0);
}

/// Sends raw bytes and returns the status code of the answer.
fn raw_status(base: &str, request: &str) -> u16 {
    let addr = base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).expect("connects");
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    stream.write_all(request.as_bytes()).expect("sends");
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer);
    let status = text
        .split_whitespace()
        .nth(1)
        .unwrap_or_else(|| panic!("no status in {text:?}"));
    status.parse().expect("a status code")
}

#[test]
fn bad_requests_get_a_clear_4xx_and_the_server_keeps_serving() {
    let tmp = tempfile::tempdir().expect("tempdir");
    populated(tmp.path());
    let server = Server::start(tmp.path(), &[]);
    let base = server.url.clone();
    let long = "x".repeat(2000);
    let over = "y".repeat(9000);
    let gets: Vec<(String, u16, &str)> = vec![
        ("/nope".into(), 404, "no such page"),
        ("/api/snapshot/extra".into(), 404, "no such page"),
        ("/../../../etc/passwd".into(), 404, "no such page"),
        ("/app.js/../../../etc/passwd".into(), 404, "no such page"),
        ("/%2e%2e/%2e%2e/etc/passwd".into(), 404, "no such page"),
        ("/api/queue?cache=../../../etc".into(), 404, "no cache"),
        ("/api/queue?cache=%2Fetc%2Fpasswd".into(), 404, "no cache"),
        ("/api/queue?cache=main/../fan/000".into(), 404, "no cache"),
        ("/api/queue?cache=nope&queue=jobs".into(), 404, "no cache"),
        ("/api/queue?cache=main&queue=nope".into(), 404, "no queue"),
        ("/api/queue?cache=fan/000".into(), 404, "no integer-keyed queue"),
        ("/api/queue?queue=jobs".into(), 400, "\"cache\" is missing"),
        ("/api/queue?cache=main&queue=jobs&limit=0".into(), 400, "limit must be"),
        (
            "/api/queue?cache=main&queue=jobs&limit=1001".into(),
            400,
            "limit must be",
        ),
        ("/api/queue?cache=main&queue=jobs&limit=-1".into(), 400, "limit must be"),
        (
            "/api/queue?cache=main&queue=jobs&limit=ten".into(),
            400,
            "limit must be",
        ),
        (
            "/api/queue?cache=main&queue=jobs&limit=99999999999999999999999999".into(),
            400,
            "limit must be",
        ),
        ("/api/queue?cache=main&cache=main".into(), 400, "given twice"),
        ("/api/queue?cache=main&colour=red".into(), 400, "unknown parameter"),
        (format!("/api/queue?cache={long}"), 400, "more than 1024"),
        (format!("/api/queue?cache=main&queue={long}"), 400, "more than 1024"),
        (format!("/api/queue?{long}=1"), 400, "more than 1024"),
        (format!("/api/queue?cache={over}"), 414, "more than 8192"),
        ("/api/history?since=NaN".into(), 400, "since must be"),
        ("/api/history?since=inf".into(), 400, "since must be"),
        ("/api/history?since=yesterday".into(), 400, "since must be"),
        ("/api/history?since=1e400".into(), 400, "since must be"),
        ("/api/snapshot?x=1".into(), 400, "unknown parameter"),
        ("/metrics?format=json".into(), 400, "unknown parameter"),
        ("/api/queue?cache=%FF%FE".into(), 404, "no cache"),
        ("/api/requeue?cache=main&queue=jobs".into(), 405, "POST only"),
        ("/api/purge".into(), 405, "POST only"),
    ];
    for (path, status, part) in &gets {
        let (got, body) = get(&format!("{base}{path}"));
        let shown = &path[..path.len().min(80)];
        assert_eq!(got, *status, "GET {shown}: {body}");
        let doc: Value = serde_json::from_str(&body).unwrap_or_else(|_| panic!("GET {shown}: not JSON: {body}"));
        let error = doc["error"].as_str().unwrap_or_else(|| panic!("GET {shown}: {body}"));
        assert!(error.contains(part), "GET {shown}: {error:?} lacks {part:?}");
        assert!(error.len() < 300, "GET {shown}: a short message, not an echo: {error}");
    }
    let a = agent();
    for (response, allow) in [
        (a.delete(format!("{base}/api/snapshot")).call(), "GET, HEAD"),
        (a.put(format!("{base}/")).send_empty(), "GET, HEAD"),
        (a.post(format!("{base}/metrics")).send_empty(), "GET, HEAD"),
        (
            a.patch(format!("{base}/api/queue?cache=main")).send_empty(),
            "GET, HEAD",
        ),
        (
            a.delete(format!("{base}/api/purge?cache=main&queue=jobs")).call(),
            "POST",
        ),
    ] {
        let response = response.expect("an answer");
        assert_eq!(response.status().as_u16(), 405);
        assert_eq!(response.headers()["allow"], allow);
    }
    // Writes are off without --allow-writes, token or not.
    let off = a
        .post(format!("{base}/api/requeue?cache=main&queue=jobs"))
        .header("X-Diskq-Token", "0".repeat(32))
        .send_empty()
        .expect("an answer");
    assert_eq!(off.status().as_u16(), 403);
    // What tiny_http refuses before us, and a Host that is not ours
    // (DNS rebinding).
    // Longer than HTTP clients send (ureq refuses to): a megabyte.
    let huge = format!(
        "GET /api/queue?cache={} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
        "z".repeat(1 << 20)
    );
    assert_eq!(raw_status(&base, &huge), 414);
    assert_eq!(raw_status(&base, "NONSENSE\r\n\r\n"), 400);
    assert_eq!(raw_status(&base, "GET / HTTP/1.1\r\nno colon here\r\n\r\n"), 400);
    assert_eq!(
        raw_status(
            &base,
            "GET /api/snapshot HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n"
        ),
        403
    );
    assert_eq!(
        raw_status(
            &base,
            "GET /api/snapshot HTTP/1.1\r\nHost: localhost:1\r\nConnection: close\r\n\r\n"
        ),
        200
    );
    assert_eq!(
        raw_status(&base, "GET /api/snapshot HTTP/1.0\r\n\r\n"),
        200,
        "HTTP/1.0 sends no Host"
    );
    // Still serving, and exits cleanly.
    assert_eq!(get(&format!("{base}/api/snapshot")).0, 200);
    assert_eq!(server.stop(), 0);
}

#[test]
fn writes_need_allow_writes_and_the_printed_token() {
    let tmp = tempfile::tempdir().expect("tempdir");
    populated(tmp.path());
    let cache = Cache::open(tmp.path().join("main")).expect("open");
    let once = LeaseOptions::new(Duration::from_secs(600))
        .prefix("jobs")
        .max_deliveries(1);
    let server = Server::start(tmp.path(), &["--allow-writes"]);
    let (base, token) = (server.url.clone(), server.token.clone().expect("a token"));
    assert_eq!(token.len(), 32);
    assert_eq!(get_json(&format!("{base}/api/snapshot"))["writes"], true);
    let post = |route: &str, token: Option<&str>| {
        let mut request = agent().post(format!("{base}{route}"));
        if let Some(t) = token {
            request = request.header("X-Diskq-Token", t);
        }
        let mut response = request.send_empty().expect("an answer");
        let status = response.status().as_u16();
        let body: Value = serde_json::from_str(&response.body_mut().read_to_string().unwrap()).expect("JSON");
        (status, body)
    };
    let requeue = "/api/requeue?cache=main&queue=jobs";
    assert_eq!(post(requeue, None).0, 401);
    assert_eq!(post(requeue, Some("wrong")).0, 403);
    assert_eq!(post(requeue, Some(&token[..31])).0, 403);
    assert_eq!(post(requeue, Some(&token.to_uppercase())).0, 403);
    let (status, body) = post("/api/requeue?cache=main&queue=nope", Some(&token));
    assert_eq!(status, 404, "{body}");
    let (status, body) = post("/api/requeue?cache=main&queue=jobs&key=x", Some(&token));
    assert_eq!(status, 400, "requeue takes no key: {body}");
    assert_eq!(
        cache.backlog(Some("jobs-dead-letter")).unwrap().queued,
        1,
        "nothing done yet"
    );

    let (status, body) = post(requeue, Some(&token));
    assert_eq!((status, body), (200, json!({ "requeued": 1 })));
    assert_eq!(cache.backlog(Some("jobs")).unwrap().queued, 2, "job-1 is back");

    // Two dead letters again, then purged: one by key, then the rest.
    for _ in 0..2 {
        let lease = cache.lease::<String>(&once).expect("lease").expect("an item");
        assert!(lease.nack(Side::Back).expect("nack"));
    }
    let dead: Vec<String> = get_json(&format!("{base}/api/queue?cache=main&queue=jobs"))["dead_letter_items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["key"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(dead.len(), 2);
    let (status, body) = post(
        "/api/purge?cache=main&queue=jobs&key=jobs-500000000000001",
        Some(&token),
    );
    assert_eq!(status, 400, "not a dead letter's key: {body}");
    let (status, body) = post(
        &format!("/api/purge?cache=main&queue=jobs&key={}", dead[0]),
        Some(&token),
    );
    assert_eq!((status, body), (200, json!({ "purged": 1 })));
    let (status, body) = post(
        &format!("/api/purge?cache=main&queue=jobs&key={}", dead[0]),
        Some(&token),
    );
    assert_eq!((status, body), (200, json!({ "purged": 0 })), "gone already");
    let (status, body) = post("/api/purge?cache=main&queue=jobs", Some(&token));
    assert_eq!((status, body), (200, json!({ "purged": 1 })));
    assert_eq!(cache.backlog(Some("jobs-dead-letter")).unwrap().queued, 0);
    assert_eq!(
        cache.backlog(Some("jobs")).unwrap().leased,
        1,
        "the running lease is untouched"
    );
    assert_eq!(server.stop(), 0);
}

#[test]
fn the_page_follows_producers_and_new_caches() {
    let tmp = tempfile::tempdir().expect("tempdir");
    populated(tmp.path());
    let server = Server::start(tmp.path(), &["--interval", "0.05"]);
    let snap = || get_json(&format!("{}/api/snapshot", server.url));
    let cache = Cache::open(tmp.path().join("main")).expect("open");
    cache
        .push_with("job-4", &PushOptions::new().prefix("jobs"))
        .expect("push");
    until(30, "the new depth", || {
        (queue_of(cache_of(&snap(), "main"), json!("jobs"))["queued"] == 2).then_some(())
    });
    // A queue that appears later, and a named deque made after the start.
    cache.push_with("x", &PushOptions::new().prefix("late")).expect("push");
    FanoutCache::builder()
        .shards(2)
        .open(tmp.path().join("fan"))
        .expect("fanout")
        .deque::<u32>("later")
        .expect("deque")
        .push_back(&7)
        .expect("push");
    until(30, "the new queue and deque", || {
        let s = snap();
        let found = s["caches"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["id"] == "fan/deque/later");
        let late = cache_of(&s, "main")["queues"]
            .as_array()
            .unwrap()
            .iter()
            .any(|q| q["queue"] == "late");
        (found && late).then_some(())
    });
    // An emptied queue stays listed, at depth 0.
    assert!(
        cache
            .pull_with::<String>(&diskq::PullOptions::new().prefix("late"))
            .unwrap()
            .is_some()
    );
    until(30, "the emptied queue at 0", || {
        (queue_of(cache_of(&snap(), "main"), json!("late"))["queued"] == 0).then_some(())
    });
    let last = snap();
    let rates = &queue_of(cache_of(&last, "main"), json!("jobs"))["rates"];
    assert!(rates["queued_change_per_s"].is_number(), "{rates}");
    // Rates from the library's counters: pushed once within the minute.
    for name in ["pushed_per_s", "acked_per_s", "dead_lettered_per_s", "scheduled_per_s"] {
        assert!(rates[name].is_number(), "{name} in {rates}");
    }
    until(30, "a push rate", || {
        let s = snap();
        let r = queue_of(cache_of(&s, "main"), json!("jobs"))["rates"]["pushed_per_s"].as_f64()?;
        (r > 0.0).then_some(())
    });
    assert_eq!(server.stop(), 0);
}

#[test]
fn serving_never_writes_to_the_directory() {
    let tmp = tempfile::tempdir().expect("tempdir");
    populated(tmp.path());
    // Closed cleanly: no log files left, as a reader finds a quiet directory.
    let before = snapshot(tmp.path());
    assert!(
        !before.keys().any(|p| p.to_string_lossy().ends_with("-wal")),
        "{:?}",
        before.keys()
    );
    // More samples than a minute at the default interval takes, and every
    // route asked meanwhile.
    let server = Server::start(tmp.path(), &["--interval", "0.01"]);
    let base = server.url.clone();
    let routes = [
        "/",
        "/app.js",
        "/api",
        "/api/snapshot",
        "/api/history",
        "/api/queue?cache=main&queue=jobs&limit=1000",
        "/api/queue?cache=fan/deque/mail",
        "/metrics",
        "/api/queue?cache=nope",
    ];
    until(120, "300 samples", || {
        for route in routes {
            let (status, _) = get(&format!("{base}{route}"));
            assert!(status < 500, "{route}: {status}");
        }
        let history = get_json(&format!("{base}/api/history"));
        (history["samples"].as_array().unwrap().len() >= 300).then_some(())
    });
    let refused = agent()
        .post(format!("{base}/api/purge?cache=main&queue=jobs"))
        .send_empty()
        .expect("an answer");
    assert_eq!(refused.status().as_u16(), 403);
    assert_eq!(server.stop(), 0);
    let after = snapshot(tmp.path());
    assert_eq!(before.keys().collect::<Vec<_>>(), after.keys().collect::<Vec<_>>());
    for (path, entry) in &before {
        assert!(after[path] == *entry, "{} changed", path.display());
    }
}

#[test]
fn a_directory_without_a_cache_is_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    std::fs::write(tmp.path().join("notes.txt"), "mine").unwrap();
    let out = std::process::Command::new(server::DISKQ)
        .args(["serve", tmp.path().to_str().unwrap(), "--port", "0"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("holds no diskq or python-diskcache cache"), "{err}");
    let missing = std::process::Command::new(server::DISKQ)
        .args(["serve", tmp.path().join("gone").to_str().unwrap(), "--port", "0"])
        .output()
        .expect("runs");
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("cannot read"));
    let zero = std::process::Command::new(server::DISKQ)
        .args(["serve", tmp.path().to_str().unwrap(), "--interval", "0"])
        .output()
        .expect("runs");
    assert_eq!(zero.status.code(), Some(1));
}

#[test]
fn a_cache_still_being_created_is_shown_once_it_is_one() {
    let tmp = tempfile::tempdir().expect("tempdir");
    Cache::open(tmp.path().join("ready"))
        .expect("open")
        .push("x")
        .expect("push");
    // What another process's open leaves for a moment: a database without tables.
    std::fs::create_dir(tmp.path().join("later")).unwrap();
    std::fs::write(tmp.path().join("later").join("cache.db"), b"").unwrap();
    let server = Server::start(tmp.path(), &["--interval", "0.05"]);
    let ids = || -> Vec<String> {
        get_json(&format!("{}/api/snapshot", server.url))["caches"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(ids(), ["ready"]);
    Cache::open(tmp.path().join("later")).expect("now a cache");
    until(30, "the new cache", || (ids() == ["later", "ready"]).then_some(()));
    assert_eq!(server.stop(), 0);
}

#[test]
fn a_python_diskcache_directory_is_shown_and_left_as_it_was() {
    let Some(python) = pyenv::python("serving a python-diskcache directory") else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    pyenv::run_code(
        &python,
        r#"
import sys, diskcache
root = sys.argv[1]
c = diskcache.Cache(root + "/cache", statistics=True)
for i in range(3):
    c.push("job %d" % i, prefix="jobs")
c.push("plain")
c.set("k", "v")
c.get("k"); c.get("k"); c.get("missing")
c.close()
f = diskcache.FanoutCache(root + "/fan", shards=2)
d = f.deque("mail")
d.append("hello"); d.append("again")
f.close()
"#,
        tmp.path(),
    );
    let before = snapshot(tmp.path());
    let server = Server::start(tmp.path(), &[]);
    let snap = get_json(&format!("{}/api/snapshot", server.url));
    let cache = cache_of(&snap, "cache");
    assert_eq!(
        (
            &cache["counters"]["hits"],
            &cache["counters"]["misses"],
            &cache["statistics"]
        ),
        (&json!(2), &json!(1), &json!(true))
    );
    assert_eq!(queue_of(cache, json!("jobs"))["queued"], 3);
    assert_eq!(queue_of(cache, Value::Null)["queued"], 1);
    assert_eq!(queue_of(cache_of(&snap, "fan/deque/mail"), Value::Null)["queued"], 2);
    let detail = get_json(&format!("{}/api/queue?cache=cache&queue=jobs", server.url));
    assert_eq!(detail["queued"], 3);
    assert_eq!(server.stop(), 0);
    let after = snapshot(tmp.path());
    assert_eq!(before.keys().collect::<Vec<_>>(), after.keys().collect::<Vec<_>>());
    for (path, entry) in &before {
        assert!(after[path] == *entry, "{} changed", path.display());
    }
}

#[cfg(not(feature = "postgres"))]
#[test]
fn a_postgresql_location_needs_the_postgres_feature() {
    let out = std::process::Command::new(server::DISKQ)
        .args(["serve", "postgres://app:hunter2secret@127.0.0.1/db#jobs", "--port", "0"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cargo feature `postgres`"), "{err}");
    assert!(!err.contains("hunter2secret"), "{err}");
}
