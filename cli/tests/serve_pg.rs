//! `diskq serve` of a PostgreSQL location (`postgres://...#schema`), against
//! a throwaway server started under target/ (the library's test helper,
//! included from tests/support/pg.rs): the page and API show what applies to
//! that backend (queues, counts, counters, dead letters; no value files, no
//! lease list), the location's password is never shown, nothing in the
//! schema changes while serving, and bad locations are refused clearly.
#![cfg(all(feature = "serve", feature = "postgres"))]
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../tests/support/pg.rs"]
mod pg;
#[path = "support/server.rs"]
mod server;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use diskq::{Cache, LeaseOptions, NackOptions, PushOptions};
use serde_json::{Value, json};
use server::{DISKQ, Server, get, get_json, until};

/// The location with a password in it (the test server trusts every
/// client, so any password connects): serving must never show it.
fn with_password(location: &str) -> String {
    location.replacen("postgres://postgres@", "postgres://postgres:hunter2secret@", 1)
}

fn psql() -> PathBuf {
    match &pg::server().cluster {
        Some(cluster) => cluster.bin.join("psql"),
        None => PathBuf::from("psql"),
    }
}

/// One line of `psql -At` output per row of `sql`.
fn query(sql: &str) -> String {
    let out = Command::new(psql())
        .args(["-X", "-At", "-d", &pg::server().url, "-c", sql])
        .output()
        .expect("psql runs");
    assert!(out.status.success(), "{sql}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("text")
}

/// Every row of every table of `schema`, as text: equal before and after
/// means nothing was written.
fn contents(schema: &str) -> String {
    let tables = query(&format!(
        "SELECT tablename FROM pg_tables WHERE schemaname = '{schema}' ORDER BY 1"
    ));
    let mut all = String::new();
    for table in tables.lines() {
        all.push_str(table);
        all.push('\n');
        all.push_str(&query(&format!(
            "SELECT coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '') FROM \"{schema}\".\"{table}\" t"
        )));
    }
    all
}

fn schema_of(location: &str) -> &str {
    location.rsplit_once('#').expect("a schema").1
}

#[test]
fn a_postgresql_location_is_served_read_only() {
    let location = pg::location("serve");
    let cache = Cache::open(&location).unwrap();
    cache.push("plain").unwrap();
    let push_jobs = PushOptions::new().prefix("jobs");
    cache.push_many(["job-1", "job-2", "job-3"], &push_jobs).unwrap();
    let once = LeaseOptions::new(Duration::from_secs(600))
        .prefix("jobs")
        .max_deliveries(1);
    let failed = cache.lease::<String>(&once).unwrap().expect("job-1");
    failed.nack_with(&NackOptions::new().error("out of memory")).unwrap(); // a dead letter
    let running = cache.lease::<String>(&once).unwrap().expect("job-2");
    let before = contents(schema_of(&location));
    assert!(before.contains("job-3"), "{before}");

    let secret_location = with_password(&location);
    let server = Server::start(Path::new(&secret_location), &["--interval", "0.05"]);
    let base = server.url.clone();
    let snap = get_json(&format!("{base}/api/snapshot"));
    let text = snap.to_string();
    assert!(!text.contains("hunter2secret"), "the password is shown: {text}");
    assert!(
        snap["directory"].as_str().unwrap().contains(":***@"),
        "{}",
        snap["directory"]
    );
    let caches = snap["caches"].as_array().unwrap();
    assert_eq!(caches.len(), 1);
    let c = &caches[0];
    assert_eq!(
        (&c["id"], &c["kind"], &c["backend"]),
        (&json!("."), &json!("postgres"), &json!("postgres"))
    );
    assert_eq!(c["error"], Value::Null, "{c}");
    assert_eq!(c["gauges"]["items"], 4, "plain, job-1 (dead), job-2 (leased), job-3");
    assert!(c["gauges"].get("size").is_none(), "no value files: {c}");
    let queues = c["queues"].as_array().unwrap();
    let jobs = queues.iter().find(|q| q["queue"] == "jobs").expect("the jobs queue");
    assert_eq!(
        (
            &jobs["queued"],
            &jobs["leased"],
            &jobs["dead_letters"],
            &jobs["scheduled"]
        ),
        (&json!(1), &json!(1), &json!(1), &json!(0))
    );
    assert_eq!(jobs["leases_listed"], true);
    let leases = jobs["leases"].as_array().unwrap();
    assert_eq!(leases.len(), 1, "{jobs}");
    let lease = &leases[0];
    assert_eq!(
        (&lease["item"], &lease["deliveries"], &lease["expired"]),
        (&json!("jobs-500000000000001"), &json!(1), &json!(false)),
        "{lease}"
    );
    assert_eq!(
        (&lease["preview"]["text"], &lease["size"]),
        (&json!("job-2"), &json!(5))
    );
    let deadline = running
        .deadline()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!((lease["deadline"].as_f64().unwrap() - deadline).abs() < 1e-3, "{lease}");
    assert_eq!(
        jobs["counters"],
        json!({ "pushed": 3, "popped": 0, "leased": 2, "acked": 0, "nacked": 1,
                "redelivered": 0, "dead_lettered": 1, "scheduled": 0 })
    );
    let dead = &jobs["dead_letter_items"][0];
    assert_eq!(dead["key"], "jobs-dead-letter-500000000000000");
    assert_eq!((&dead["preview"]["text"], &dead["size"]), (&json!("job-1"), &json!(5)));
    assert_eq!(
        (&dead["deliveries"], &dead["last_error"]),
        (&json!(1), &json!("out of memory")),
        "the dead letter's record"
    );
    assert!(dead["dead_at"].is_number(), "{dead}");
    assert!(
        queues.iter().any(|q| q["queue"] == Value::Null),
        "the integer-keyed queue"
    );

    let detail = get_json(&format!("{base}/api/queue?cache=.&queue=jobs"));
    assert_eq!(
        (&detail["queued"], &detail["leases"][0]["preview"]["text"]),
        (&json!(1), &json!("job-2"))
    );
    let (status, body) = get(&format!("{base}/api/queue?cache=.&queue=nope"));
    assert_eq!(status, 404, "{body}");
    let (status, body) = get(&format!("{base}/api/queue?cache=postgres"));
    assert_eq!(status, 404, "{body}");
    let (status, metrics) = get(&format!("{base}/metrics"));
    assert_eq!(status, 200);
    assert!(
        metrics.contains("diskq_queue_depth{cache=\".\",queue=\"jobs\"} 1\n"),
        "{metrics}"
    );
    assert!(metrics.contains("diskq_queue_pushed_total{cache=\".\",queue=\"jobs\"} 3\n"));
    assert!(!metrics.contains("hunter2secret"));
    let page = get(&format!("{base}/")).1;
    assert!(page.contains("/app.js"));

    // Live: a push shows, and so does a queue made meanwhile.
    cache.push_with("job-4", &push_jobs).unwrap();
    cache.push_with("x", &PushOptions::new().prefix("late")).unwrap();
    until(30, "the push and the new queue", || {
        let s = get_json(&format!("{base}/api/snapshot"));
        let queues = s["caches"][0]["queues"].as_array()?.clone();
        let jobs = queues.iter().find(|q| q["queue"] == "jobs")?;
        let late = queues.iter().any(|q| q["queue"] == "late");
        (jobs["queued"] == 2 && late).then_some(())
    });
    let before = contents(schema_of(&location));
    until(30, "50 samples", || {
        let h = get_json(&format!("{base}/api/history"));
        (h["samples"].as_array()?.len() >= 50).then_some(())
    });
    assert_eq!(server.stop(), 0);
    assert_eq!(contents(schema_of(&location)), before, "serving wrote to the schema");
}

/// `diskq serve ARGS`: its exit code and standard error.
fn refused(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(DISKQ)
        .arg("serve")
        .args(args)
        .args(["--port", "0"])
        .output()
        .expect("runs");
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn bad_postgresql_locations_are_refused_and_make_nothing() {
    let location = pg::location("serve_missing");
    let schema = schema_of(&location).to_string();
    let (code, err) = refused(&[&with_password(&location)]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("no diskq tables"), "{err}");
    assert!(!err.contains("hunter2secret"), "{err}");
    assert_eq!(
        query(&format!("SELECT count(*) FROM pg_namespace WHERE nspname = '{schema}'")).trim(),
        "0",
        "no schema made"
    );
    let (code, err) = refused(&[&format!("{}#Not_Valid", pg::server().url)]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("schema"), "{err}");
    Cache::open(&location).unwrap().push("x").unwrap();
    let (code, err) = refused(&[&location, "--allow-writes"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("--allow-writes is for directories only"), "{err}");
    // Nobody listens there: a clear error, not a hang.
    let dead = format!(
        "postgres://postgres@127.0.0.1:{}/postgres#x",
        pg::free_port("127.0.0.1")
    );
    let (code, err) = refused(&[&dead]);
    assert_eq!(code, Some(1), "{err}");
    assert!(!err.is_empty());
}
