//! Every route of `diskq serve`, and what a bad request gets: a 4xx with a
//! JSON `{"error": "..."}` saying what was wrong, never a 5xx for the
//! client's input. See cli/README.md for the API.

use std::collections::BTreeMap;
use std::io::Cursor;
use std::sync::Arc;

use serde_json::{Map, Value as Json, json};
use tiny_http::{Header, Method, Request, Response, StatusCode};

use super::inspect::{Location, Queue, dead_letter_queue};
use super::sample::{self, LISTED, Sample, queue_json};
use super::{State, metrics, writes};

/// A longer request target is refused (414): no route needs one.
const MAX_URL: usize = 8192;
/// A longer parameter value is refused (400): no cache id or queue name
/// is that long in practice, and nothing is looked up with it.
const MAX_VALUE: usize = 1024;
/// The most items `/api/queue` lists.
const MAX_LIMIT: usize = 1000;
/// The window of the rates in `/api/snapshot`.
const RATE_WINDOW_SECS: f64 = 60.0;

const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const APP_CSS: &str = include_str!("assets/app.css");

/// The page loads nothing but what we serve.
const CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; \
     connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// A request answered: status, content type, body.
struct Reply {
    status: u16,
    content_type: &'static str,
    body: String,
    allow: Option<&'static str>,
}

impl Reply {
    fn json(status: u16, body: &Json) -> Reply {
        Reply {
            status,
            content_type: "application/json",
            body: body.to_string(),
            allow: None,
        }
    }

    fn ok(body: &Json) -> Reply {
        Reply::json(200, body)
    }

    fn error(status: u16, message: impl Into<String>) -> Reply {
        Reply::json(status, &json!({ "error": message.into() }))
    }

    fn text(content_type: &'static str, body: &str) -> Reply {
        Reply {
            status: 200,
            content_type,
            body: body.to_string(),
            allow: None,
        }
    }
}

/// Answers one request. Nothing the client sends reaches a panic: every
/// input is checked, and a failure to read the directory is a 503 naming
/// the cache (the directory is busy or gone, not the request wrong).
pub fn handle(state: &State, mut request: Request) {
    let reply = answer(state, &mut request);
    let mut response = Response::new(
        StatusCode(reply.status),
        Vec::new(),
        Cursor::new(reply.body.into_bytes()),
        None,
        None,
    );
    for (name, value) in [
        ("Content-Type", reply.content_type),
        ("Cache-Control", "no-store"),
        ("X-Content-Type-Options", "nosniff"),
        ("Content-Security-Policy", CSP),
        ("Referrer-Policy", "no-referrer"),
    ] {
        if let Ok(h) = Header::from_bytes(name, value) {
            response.add_header(h);
        }
    }
    if let Some(allow) = reply.allow
        && let Ok(h) = Header::from_bytes("Allow", allow)
    {
        response.add_header(h);
    }
    // A client gone before its answer is no concern of the server's.
    let _ = request.respond(response);
}

fn answer(state: &State, request: &mut Request) -> Reply {
    let url = request.url().to_string();
    if url.len() > MAX_URL {
        return Reply::error(
            414,
            format!("the request target is {} bytes, more than {MAX_URL}", url.len()),
        );
    }
    if let Err(reply) = check_host(state, request) {
        return reply;
    }
    let (path, query) = url.split_once('?').unwrap_or((&url, ""));
    let params = match parse_query(query) {
        Ok(p) => p,
        Err(reply) => return reply,
    };
    let method = request.method().clone();
    let reading = matches!(method, Method::Get | Method::Head);
    match path {
        "/" | "/index.html" | "/app.js" | "/app.css" | "/api" | "/api/snapshot" | "/api/history" | "/api/queue"
        | "/metrics"
            if !reading =>
        {
            method_not_allowed("GET, HEAD")
        }
        "/api/requeue" | "/api/purge" if method != Method::Post => method_not_allowed("POST"),
        "/" | "/index.html" => {
            no_params(&params).unwrap_or_else(|| Reply::text("text/html; charset=utf-8", INDEX_HTML))
        }
        "/app.js" => no_params(&params).unwrap_or_else(|| Reply::text("text/javascript; charset=utf-8", APP_JS)),
        "/app.css" => no_params(&params).unwrap_or_else(|| Reply::text("text/css; charset=utf-8", APP_CSS)),
        "/api" => no_params(&params).unwrap_or_else(|| Reply::ok(&api_index(state))),
        "/api/snapshot" => no_params(&params).unwrap_or_else(|| snapshot(state)),
        "/api/history" => history(state, &params),
        "/api/queue" => queue_detail(state, &params),
        "/metrics" => no_params(&params).unwrap_or_else(|| metrics_page(state)),
        "/api/requeue" => write(state, request, &params, Write::Requeue),
        "/api/purge" => write(state, request, &params, Write::Purge),
        _ => Reply::error(404, format!("no such page: {}", shorten(path))),
    }
}

fn method_not_allowed(allow: &'static str) -> Reply {
    let mut reply = Reply::error(405, format!("this route answers {allow} only"));
    reply.allow = Some(allow);
    reply
}

/// A path or value cut for an error message.
fn shorten(text: &str) -> String {
    match text.char_indices().nth(80) {
        Some((at, _)) => format!("{}...", &text[..at]),
        None => text.to_string(),
    }
}

/// When served on a loopback address, requests must name it (or
/// `localhost`) as their Host: a page elsewhere that makes its own name
/// point at 127.0.0.1 (DNS rebinding) is refused.
fn check_host(state: &State, request: &Request) -> Result<(), Reply> {
    if !state.addr.ip().is_loopback() {
        return Ok(());
    }
    let Some(host) = request.headers().iter().find(|h| h.field.equiv("Host")) else {
        return Ok(()); // HTTP/1.0 has none
    };
    let host = host.value.as_str();
    let name = match host.rsplit_once(':') {
        Some((name, port)) if !name.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) && !host.ends_with(']') => {
            name
        }
        _ => host,
    };
    if matches!(name, "localhost" | "127.0.0.1" | "[::1]") || name == state.addr.ip().to_string() {
        Ok(())
    } else {
        Err(Reply::error(
            403,
            format!("Host {:?} is not this server's address", shorten(host)),
        ))
    }
}

/// The query's parameters; a repeated or overlong one is refused.
fn parse_query(query: &str) -> Result<BTreeMap<String, String>, Reply> {
    let mut params = BTreeMap::new();
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        if value.len() > MAX_VALUE || name.len() > MAX_VALUE {
            return Err(Reply::error(
                400,
                format!(
                    "the parameter {:?} is {} bytes long, more than {MAX_VALUE}",
                    shorten(&name),
                    value.len().max(name.len())
                ),
            ));
        }
        if params.insert(name.to_string(), value.into_owned()).is_some() {
            return Err(Reply::error(
                400,
                format!("the parameter {:?} is given twice", shorten(&name)),
            ));
        }
    }
    Ok(params)
}

/// A 400 for any parameter not in `known`.
fn unknown_params(params: &BTreeMap<String, String>, known: &[&str]) -> Option<Reply> {
    params.keys().find(|k| !known.contains(&k.as_str())).map(|k| {
        let expected = if known.is_empty() {
            "none".to_string()
        } else {
            known.join(", ")
        };
        Reply::error(
            400,
            format!("unknown parameter {:?} (this route takes: {expected})", shorten(k)),
        )
    })
}

fn no_params(params: &BTreeMap<String, String>) -> Option<Reply> {
    unknown_params(params, &[])
}

/// The cache named by `cache`, and the queue named by `queue` (absent:
/// the integer-keyed queue) which must be one of its queues.
fn cache_and_queue(state: &State, params: &BTreeMap<String, String>) -> Result<(Arc<Location>, Queue), Reply> {
    let Some(id) = params.get("cache") else {
        return Err(Reply::error(
            400,
            "the parameter \"cache\" is missing (a cache id from /api/snapshot)",
        ));
    };
    let Some(loc) = state.location(id) else {
        return Err(Reply::error(
            404,
            format!("no cache {:?} in {}", shorten(id), state.root.display()),
        ));
    };
    let queue: Queue = params.get("queue").cloned();
    match loc.has_queue(&queue) {
        Ok(true) => Ok((loc, queue)),
        Ok(false) => Err(Reply::error(
            404,
            match &queue {
                Some(q) => format!("no queue {:?} in the cache {:?}", shorten(q), loc.id),
                None => format!("the cache {:?} has no integer-keyed queue", loc.id),
            },
        )),
        Err(e) => Err(unavailable(&loc, &e)),
    }
}

fn unavailable(loc: &Location, e: &crate::failure::Failure) -> Reply {
    Reply::error(503, format!("cannot read the cache {:?} now: {e}", loc.id))
}

/// A whole number from `min` to `max`.
fn bounded(
    params: &BTreeMap<String, String>,
    name: &str,
    default: usize,
    min: usize,
    max: usize,
) -> Result<usize, Reply> {
    let Some(text) = params.get(name) else {
        return Ok(default);
    };
    match text.parse::<usize>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(Reply::error(
            400,
            format!(
                "{name} must be a whole number from {min} to {max}, not {:?}",
                shorten(text)
            ),
        )),
    }
}

fn api_index(state: &State) -> Json {
    json!({
        "directory": state.root.display().to_string(),
        "writes": state.token.is_some(),
        "routes": {
            "GET /api/snapshot": "every cache and queue now, with rates over the last minute",
            "GET /api/history?since=T": "the samples taken after T (seconds since the epoch), for charts",
            "GET /api/queue?cache=ID&queue=NAME&limit=N": "a queue's counts, counters, leases and dead letters (N up to 1000)",
            "GET /metrics": "the latest sample in Prometheus' text format",
            "POST /api/requeue?cache=ID&queue=NAME": "dead letters back to their queue (--allow-writes, X-Diskq-Token)",
            "POST /api/purge?cache=ID&queue=NAME[&key=K]": "dead letters deleted (--allow-writes, X-Diskq-Token)",
        },
    })
}

fn latest(state: &State) -> Option<(Arc<Sample>, Option<Arc<Sample>>)> {
    let history = state.lock_history();
    let latest = history.latest()?;
    Some((latest, history.window_start(RATE_WINDOW_SECS)))
}

fn snapshot(state: &State) -> Reply {
    let Some((now, start)) = latest(state) else {
        return Reply::error(503, "no sample taken yet");
    };
    let locations = state.read_locations().clone();
    let caches: Vec<Json> = now
        .caches
        .iter()
        .map(|c| {
            let loc = locations.iter().find(|l| l.id == c.id);
            let rates = start.as_ref().map_or(json!({}), |s| sample::rates(s, &now, &c.id));
            let settings: Map<String, Json> = loc
                .map(|l| l.cache.settings())
                .unwrap_or_default()
                .into_iter()
                .map(|(name, value)| {
                    let value = value.parse::<i64>().map(Json::from).unwrap_or(Json::String(value));
                    (name, value)
                })
                .collect();
            let queues: Vec<Json> = c
                .queues
                .iter()
                .map(|q| {
                    let name = sample::queue_name(&q.queue);
                    json!({
                        "queue": queue_json(&q.queue),
                        "dead_letter_queue": dead_letter_queue(&q.queue),
                        "queued": q.gauges.get("queued").map(|v| sample::number(*v)),
                        "leased": q.gauges.get("leased").map(|v| sample::number(*v)),
                        "expired_leases": q.gauges.get("expired_leases").map(|v| sample::number(*v)),
                        "dead_letters": q.gauges.get("dead_letters").map(|v| sample::number(*v)),
                        "scheduled": q.gauges.get("scheduled").map(|v| sample::number(*v)),
                        "counters": sample::numbers(&q.counters),
                        "rates": rates["queues"].get(&name).cloned().unwrap_or(json!({})),
                        "leases": q.leases.iter().map(|l| l.to_json(now.at)).collect::<Vec<_>>(),
                        // Always: kept for clients of the releases that
                        // listed no PostgreSQL lease.
                        "leases_listed": true,
                        "dead_letter_items": q.dead_letters.iter().map(|d| d.to_json()).collect::<Vec<_>>(),
                        "listed_at_most": LISTED,
                    })
                })
                .collect();
            let mut rates = rates;
            if let Some(map) = rates.as_object_mut() {
                map.remove("queues");
            }
            json!({
                "id": c.id,
                "kind": loc.map_or("cache", |l| l.kind),
                "backend": if loc.is_some_and(|l| l.is_postgres()) { "postgres" } else { "directory" },
                "path": loc.map(|l| l.cache.directory().display().to_string()),
                "error": c.error,
                "statistics": loc.is_some_and(|l| l.cache.statistics()),
                "gauges": sample::numbers(&c.gauges),
                "counters": sample::numbers(&c.counters),
                "rates": rates,
                "settings": settings,
                "queues": queues,
            })
        })
        .collect();
    Reply::ok(&json!({
        "directory": state.root.display().to_string(),
        "writes": state.token.is_some(),
        "interval": state.interval.as_secs_f64(),
        "at": now.at,
        "rate_window": start.as_ref().map(|s| now.at - s.at),
        "caches": caches,
    }))
}

fn history(state: &State, params: &BTreeMap<String, String>) -> Reply {
    if let Some(reply) = unknown_params(params, &["since"]) {
        return reply;
    }
    let since = match params.get("since") {
        None => f64::NEG_INFINITY,
        Some(text) => match text.parse::<f64>() {
            Ok(t) if t.is_finite() => t,
            _ => {
                return Reply::error(
                    400,
                    format!(
                        "since must be a number of seconds since the epoch, not {:?}",
                        shorten(text)
                    ),
                );
            }
        },
    };
    let samples = state.lock_history().since(since);
    let list: Vec<Json> = samples.iter().map(|s| sample::compact(s)).collect();
    Reply::ok(&json!({ "interval": state.interval.as_secs_f64(), "samples": list }))
}

fn queue_detail(state: &State, params: &BTreeMap<String, String>) -> Reply {
    if let Some(reply) = unknown_params(params, &["cache", "queue", "limit"]) {
        return reply;
    }
    let limit = match bounded(params, "limit", 100, 1, MAX_LIMIT) {
        Ok(n) => n,
        Err(reply) => return reply,
    };
    let (loc, queue) = match cache_and_queue(state, params) {
        Ok(found) => found,
        Err(reply) => return reply,
    };
    let read = || -> Result<Json, crate::failure::Failure> {
        let backlog = loc.cache.backlog(queue.as_deref())?;
        let dead = loc.cache.backlog(Some(&dead_letter_queue(&queue)))?;
        let stats = loc.cache.queue_stats(queue.as_deref())?;
        let now = sample::now();
        let leases: Vec<Json> = loc.leases(&queue, limit)?.iter().map(|l| l.to_json(now)).collect();
        let letters: Vec<Json> = loc.dead_letters(&queue, limit)?.iter().map(|d| d.to_json()).collect();
        Ok(json!({
            "cache": loc.id,
            "queue": queue_json(&queue),
            "dead_letter_queue": dead_letter_queue(&queue),
            "at": now,
            "queued": backlog.queued,
            "leased": backlog.leased,
            "dead_letters": dead.queued,
            "scheduled": backlog.scheduled,
            "counters": {
                "pushed": stats.pushed,
                "popped": stats.popped,
                "leased": stats.leased,
                "acked": stats.acked,
                "nacked": stats.nacked,
                "redelivered": stats.redelivered,
                "dead_lettered": stats.dead_lettered,
                "scheduled": stats.scheduled,
            },
            "leases": leases,
            "leases_listed": true,
            "dead_letter_items": letters,
            "limit": limit,
        }))
    };
    match read() {
        Ok(doc) => Reply::ok(&doc),
        Err(e) => unavailable(&loc, &e),
    }
}

fn metrics_page(state: &State) -> Reply {
    match latest(state) {
        Some((now, _)) => Reply::text(metrics::CONTENT_TYPE, &metrics::render(&now)),
        None => Reply::error(503, "no sample taken yet"),
    }
}

#[derive(Debug, Clone, Copy)]
enum Write {
    Requeue,
    Purge,
}

fn write(state: &State, request: &Request, params: &BTreeMap<String, String>, what: Write) -> Reply {
    let known: &[&str] = match what {
        Write::Requeue => &["cache", "queue"],
        Write::Purge => &["cache", "queue", "key"],
    };
    let Some(expected) = &state.token else {
        return Reply::error(403, "writes are off: start diskq serve with --allow-writes");
    };
    let given = request
        .headers()
        .iter()
        .find(|h| h.field.equiv("X-Diskq-Token"))
        .map(|h| h.value.as_str().to_string());
    match given {
        None => {
            return Reply::error(
                401,
                "the X-Diskq-Token header is missing (diskq serve printed the token)",
            );
        }
        Some(t) if !writes::same_token(&t, expected) => return Reply::error(403, "wrong X-Diskq-Token"),
        Some(_) => {}
    }
    if let Some(reply) = unknown_params(params, known) {
        return reply;
    }
    let (loc, queue) = match cache_and_queue(state, params) {
        Ok(found) => found,
        Err(reply) => return reply,
    };
    let key = params.get("key").map(String::as_str);
    if let Some(k) = key
        && !writes::is_dead_letter_key(&queue, k)
    {
        return Reply::error(
            400,
            format!(
                "{:?} is not a key of the dead-letter queue {:?}",
                shorten(k),
                dead_letter_queue(&queue)
            ),
        );
    }
    let done = match what {
        Write::Requeue => writes::requeue(&loc, &queue).map(|n| json!({ "requeued": n })),
        Write::Purge => writes::purge(&loc, &queue, key).map(|n| json!({ "purged": n })),
    };
    match done {
        Ok(doc) => Reply::ok(&doc),
        // Locked past the timeout, or the disk refused: try again later.
        Err(e) => Reply::error(503, format!("the cache {:?} was not changed: {e}", loc.id)),
    }
}
