//! The crawler's local test site and the record it keeps per page.
//!
//! The site is synthetic and deterministic: page `i` of `n` lives at
//! `/page/<i>` (page 0 at `/`), titled `Page <i>`, and links to the next
//! page (so every page is reachable from `/`) and to four others chosen by a
//! hash of `i`, written in several ways (absolute path, relative path, with a
//! fragment, repeated). About one link in twenty points past the last page
//! (a 404); every page also links outside the site (skipped by the crawler).
//! Every 50th page is slow. The server counts the requests for each path.
//!
//! This file is shared by `examples/crawler/main.rs` and `tests/crawler.rs`.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What the crawler stores for each page (in an `Index` keyed by path).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PageResult {
    /// The HTTP status; 0 when the page could not be fetched at all.
    pub status: u16,
    /// Body size in bytes.
    pub size: u64,
    /// The `<title>`, if any.
    pub title: Option<String>,
    /// Links on the page that stay on the site, resolved, without fragments.
    pub links: Vec<String>,
    /// The worker that stored it.
    pub worker: usize,
    /// Why the page could not be fetched (status 0).
    pub error: Option<String>,
}

/// The path of page `i`.
pub fn path_of(i: u64) -> String {
    if i == 0 { "/".to_string() } else { format!("/page/{i}") }
}

fn page_number(path: &str) -> Option<u64> {
    if path == "/" {
        return Some(0);
    }
    path.strip_prefix("/page/")?.parse().ok()
}

fn mix(mut x: u64) -> u64 {
    // SplitMix64: a fixed, well-spread hash of the page number.
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The targets (page numbers, some past the end) that page `i` links to.
fn targets(i: u64, pages: u64) -> Vec<u64> {
    let mut out = Vec::new();
    if i + 1 < pages {
        out.push(i + 1);
    }
    let range = pages + pages / 20 + 1;
    for k in 0..4 {
        out.push(mix(i * 8 + k) % range);
    }
    out
}

/// The HTML of page `i`.
fn render(i: u64, pages: u64) -> String {
    let mut links = String::new();
    for (k, t) in targets(i, pages).into_iter().enumerate() {
        let href = match k {
            // Relative to /page/<i> (and to / for page 0, written absolute).
            2 if i != 0 && t != 0 => format!("./{t}"),
            3 => format!("{}#part-{k}", path_of(t)),
            _ => path_of(t),
        };
        links.push_str(&format!("<li><a href=\"{href}\">to {t}</a></li>\n"));
    }
    // A repeated link, one outside the site, one that is not HTTP.
    if let Some(first) = targets(i, pages).first() {
        links.push_str(&format!("<li><a href=\"{}\">again</a></li>\n", path_of(*first)));
    }
    links.push_str(&format!(
        "<li><a href=\"https://example.invalid/{i}\">elsewhere</a></li>\n"
    ));
    links.push_str("<li><a href=\"mailto:someone@example.invalid\">mail</a></li>\n");
    format!(
        "<!doctype html><html><head><title>Page {i}</title></head>\n<body><h1>Page {i}</h1><ul>\n{links}</ul></body></html>\n"
    )
}

/// What the site answers for `path`: status, body, and a delay.
pub fn respond(path: &str, pages: u64) -> (u16, String, Duration) {
    match page_number(path) {
        Some(i) if i < pages => {
            let delay = if i % 50 == 7 {
                Duration::from_millis(20)
            } else {
                Duration::ZERO
            };
            (200, render(i, pages), delay)
        }
        _ => (
            404,
            "<html><head><title>Not found</title></head><body>no such page</body></html>".into(),
            Duration::ZERO,
        ),
    }
}

/// Every path reachable from `/`, with its status and title, and the site
/// paths it links to (sorted, deduplicated): what a complete crawl finds.
pub fn reachable(pages: u64) -> BTreeMap<String, (u16, Option<String>, Vec<String>)> {
    let mut found = BTreeMap::new();
    let mut todo = VecDeque::from([path_of(0)]);
    while let Some(path) = todo.pop_front() {
        if found.contains_key(&path) {
            continue;
        }
        let entry = match page_number(&path) {
            Some(i) if i < pages => {
                let mut links: Vec<String> = targets(i, pages).into_iter().map(path_of).collect();
                links.sort();
                links.dedup();
                todo.extend(links.iter().cloned());
                (200, Some(format!("Page {i}")), links)
            }
            _ => (404, Some("Not found".to_string()), Vec::new()),
        };
        found.insert(path, entry);
    }
    found
}

/// The site on a local port, answering from a few threads.
pub struct Server {
    server: Arc<tiny_http::Server>,
    threads: Vec<JoinHandle<()>>,
    counts: Arc<Mutex<HashMap<String, u32>>>,
    host: String,
    port: u16,
}

impl Server {
    /// Starts serving `pages` pages on 127.0.0.1 (a free port).
    pub fn start(pages: u64) -> std::io::Result<Server> {
        Server::start_on("127.0.0.1", pages)
    }

    /// Starts serving `pages` pages on the address `host` (a free port).
    pub fn start_on(host: &str, pages: u64) -> std::io::Result<Server> {
        let server = tiny_http::Server::http((host, 0)).map_err(std::io::Error::other)?;
        let port = server
            .server_addr()
            .to_ip()
            .map(|a| a.port())
            .ok_or(std::io::Error::other("no TCP port"))?;
        let server = Arc::new(server);
        let counts = Arc::new(Mutex::new(HashMap::new()));
        let threads = (0..4)
            .map(|_| {
                let (server, counts) = (server.clone(), counts.clone());
                std::thread::spawn(move || {
                    while let Ok(request) = server.recv() {
                        let path = request.url().to_string();
                        *counts
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .entry(path.clone())
                            .or_insert(0) += 1;
                        let (status, body, delay) = respond(&path, pages);
                        std::thread::sleep(delay);
                        let html = tiny_http::Header::from_bytes("Content-Type", "text/html; charset=utf-8")
                            .expect("a valid header");
                        let response = tiny_http::Response::from_string(body)
                            .with_status_code(status)
                            .with_header(html);
                        // A client that hung up is not the server's problem.
                        let _ = request.respond(response);
                    }
                })
            })
            .collect();
        Ok(Server {
            server,
            threads,
            counts,
            host: host.to_owned(),
            port,
        })
    }

    /// The site's root URL.
    pub fn url(&self) -> String {
        format!("http://{}:{}/", self.host, self.port)
    }

    /// Requests served so far, per path.
    pub fn counts(&self) -> HashMap<String, u32> {
        self.counts.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.server.unblock();
        for _ in 1..self.threads.len() {
            self.server.unblock();
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}
