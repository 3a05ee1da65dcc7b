//! A web crawler whose frontier and seen-set live in one diskq directory, so
//! several worker processes share the work and a killed crawl resumes.
//!
//! With no arguments it serves a synthetic site of a few thousand pages on
//! 127.0.0.1 (some links repeat, some leave the site, some are 404s, some
//! pages are slow) and crawls it with one worker process per core.
//!
//! Each worker loops: lease a path from the frontier `Deque` (at-least-once:
//! a worker killed mid-page leaves its path to be redelivered), fetch it,
//! parse its links, add each unseen link to the seen-set and push it in one
//! transaction (only the process whose `add` wins pushes it), store the
//! page's result in an `Index`, and ack the lease. Workers stop when the
//! frontier's backlog is empty: nothing queued, nothing leased.
//!
//! Kill it at any moment (Ctrl-C, or SIGKILL of a worker or the parent) and
//! run the same command again: it continues from the frontier on disk. Pages
//! that were stored are not fetched again. Ctrl-C lets every worker finish
//! its page first; a page a SIGKILLed worker was in the middle of is fetched again once its lease runs out (`--lease-secs`,
//! default 10): each worker holds one lease at a time, so that is at most one
//! page per killed worker. Workers whose parent died finish their page and
//! stop. `--max-pages N` stops the workers once N pages are stored.
//!
//! With `--postgres postgres://USER@HOST/DB` (a build with the `postgres`
//! feature) the frontier, seen-set, results and counters live in that
//! database instead (schemas `crawl_frontier`, `crawl_pages`,
//! `crawl_stats`; `...#NAME` names them `NAME_frontier`, ...), so the same
//! command on several machines crawls one site together: give each the
//! site's `--url`.
//!
//! ```text
//! cargo run --release --example crawler -- [--workers N] [--pages N] [--url URL]
//!     [--dir PATH | --postgres URL] [--fresh] [--lease-secs S] [--max-pages N]
//! ```

mod site;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, ExitCode};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use diskq::{Cache, Deque, Index, LeaseOptions, Side};
use indicatif::{ProgressBar, ProgressStyle};
use site::PageResult;
use url::Url;

/// Set by Ctrl-C (SIGINT): workers finish the page in hand and
/// stop, the parent waits for them and prints the summary.
static STOP: AtomicBool = AtomicBool::new(false);

/// Deliveries of a page before it is recorded as failed.
const MAX_DELIVERIES: u32 = 3;
/// The frontier's dead-letter queue (the default of `LeaseOptions`).
const DEAD_LETTER: &str = "dead-letter";

struct Args {
    workers: usize,
    pages: u64,
    url: Option<String>,
    dir: PathBuf,
    /// The database instead of `dir`.
    postgres: Option<String>,
    fresh: bool,
    lease: Duration,
    max_pages: Option<u64>,
    worker: Option<usize>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        workers: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2),
        pages: 3_000,
        url: None,
        dir: PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("target")
            .join("example-crawler"),
        postgres: None,
        fresh: false,
        lease: Duration::from_secs(10),
        max_pages: None,
        worker: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().ok_or(format!("{arg} needs a value"));
        let number = |s: String| s.parse::<u64>().map_err(|e| format!("{arg}: {e}"));
        match arg.as_str() {
            "--workers" => args.workers = number(value()?)? as usize,
            "--pages" => args.pages = number(value()?)?,
            "--url" => args.url = Some(value()?),
            "--dir" => args.dir = PathBuf::from(value()?),
            "--postgres" => args.postgres = Some(value()?),
            "--fresh" => args.fresh = true,
            "--lease-secs" => args.lease = Duration::from_secs(number(value()?)?),
            "--max-pages" => args.max_pages = Some(number(value()?)?),
            "--worker" => args.worker = Some(number(value()?)? as usize),
            "-h" | "--help" => {
                return Err(
                    "usage: crawler [--workers N] [--pages N] [--url URL] [--dir PATH | --postgres URL] [--fresh] \
                            [--lease-secs S] [--max-pages N]"
                        .into(),
                );
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if args.workers == 0 || args.pages == 0 || args.lease.is_zero() {
        return Err("--workers, --pages and --lease-secs must be at least 1".into());
    }
    Ok(args)
}

/// The crawl's directory: the frontier (a `Deque` of paths, whose cache
/// also holds the seen-set as `seen:<path>` keys, so that "add if unseen"
/// and "push" commit together), the results `Index`, and counters.
struct Crawl {
    frontier: Deque<String>,
    pages: Index<String, PageResult>,
    stats: Cache,
}

fn open(args: &Args) -> diskq::Result<Crawl> {
    let builder = || {
        Cache::builder()
            .timeout(Duration::from_secs(60))
            .eviction_policy(diskq::EvictionPolicy::None)
    };
    // A directory per part, or a schema per part of one database.
    let at = |part: &str| match &args.postgres {
        Some(url) => {
            let (url, name) = url.split_once('#').unwrap_or((url, "crawl"));
            PathBuf::from(format!("{url}#{name}_{part}"))
        }
        None => args.dir.join(part),
    };
    Ok(Crawl {
        frontier: Deque::from_cache(builder().open(at("frontier"))?),
        pages: Index::from_cache(builder().open(at("pages"))?),
        stats: builder().open(at("stats"))?,
    })
}

/// Where the crawl is kept, as messages show it.
fn place(args: &Args) -> String {
    match &args.postgres {
        Some(url) => url.clone(),
        None => args.dir.display().to_string(),
    }
}

/// The part of a URL the crawl stores: path and query, no fragment.
fn site_path(url: &Url) -> String {
    match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    }
}

/// The site links of a page: resolved against it, on the same origin,
/// without fragments; sorted and deduplicated.
fn extract_links(base: &Url, html: &str) -> (Option<String>, Vec<String>) {
    let doc = scraper::Html::parse_document(html);
    let anchors = scraper::Selector::parse("a[href]").expect("a valid selector");
    let title_sel = scraper::Selector::parse("title").expect("a valid selector");
    let title = doc
        .select(&title_sel)
        .next()
        .map(|t| t.text().collect::<String>().trim().to_string());
    let mut links: Vec<String> = doc
        .select(&anchors)
        .filter_map(|a| a.value().attr("href"))
        .filter_map(|href| base.join(href).ok())
        .filter(|u| u.origin() == base.origin())
        .map(|u| site_path(&u))
        .collect();
    links.sort();
    links.dedup();
    (title, links)
}

/// Fetches one page: its result, or an error worth a retry.
fn fetch(agent: &ureq::Agent, url: &Url, worker: usize) -> Result<PageResult, String> {
    let mut response = agent.get(url.as_str()).call().map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let is_html = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    let body = response.body_mut().read_to_string().map_err(|e| e.to_string())?;
    let (title, links) = if is_html && status < 400 {
        extract_links(url, &body)
    } else {
        (None, Vec::new())
    };
    let title = title.or_else(|| if is_html { extract_links(url, &body).0 } else { None });
    Ok(PageResult {
        status,
        size: body.len() as u64,
        title,
        links,
        worker,
        error: None,
    })
}

fn worker(id: usize, args: &Args, origin: &Url) -> Result<(), Box<dyn std::error::Error>> {
    let crawl = open(args)?;
    let parent = std::os::unix::process::parent_id();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(args.lease * 2 / 3))
        .user_agent("diskq-crawler-example")
        .build()
        .into();
    let opts = LeaseOptions::new(args.lease)
        .max_deliveries(MAX_DELIVERIES)
        .dead_letter(DEAD_LETTER);
    loop {
        // An orphaned worker (its parent and the site it served are gone)
        // stops; its lease runs out and the next run fetches the page.
        if std::os::unix::process::parent_id() != parent || STOP.load(Ordering::Relaxed) {
            return Ok(());
        }
        if args
            .max_pages
            .is_some_and(|max| crawl.pages.len().unwrap_or(0) as u64 >= max)
        {
            return Ok(());
        }
        let lease = match crawl.frontier.lease_timeout(&opts, Duration::from_millis(250)) {
            Ok(Some(lease)) => lease,
            Ok(None) if crawl.frontier.backlog()?.is_empty() => return Ok(()),
            // The frontier's write lock stayed busy for all of the short
            // wait (a timed lease ends by its deadline): look again.
            Ok(None) | Err(diskq::Error::Timeout) => continue,
            // A frontier item that is not a path (a Python process pushed
            // a tuple, say): that delivery counts as a failed one, and
            // after MAX_DELIVERIES the item waits, whole, in the frontier's
            // dead-letter queue (see the summary) while the crawl goes on.
            Err(error) if error.is_decode() => {
                eprintln!("worker {id}: skipped a frontier item: {error}");
                crawl.stats.incr("error:undecodable frontier item", 1, 0)?;
                continue;
            }
            Err(error) => return Err(error.into()),
        };
        let path = lease.value().clone();
        if crawl.stats.incr(format!("fetches:{path}"), 1, 0)? > 1 {
            crawl.stats.incr("duplicates", 1, 0)?;
        }
        let url = origin.join(&path)?;
        let result = match fetch(&agent, &url, id) {
            Ok(result) => result,
            Err(error) if lease.deliveries() < MAX_DELIVERIES => {
                crawl.stats.incr(format!("error:{}", error_kind(&error)), 1, 0)?;
                lease.nack(Side::Back)?;
                continue;
            }
            Err(error) => {
                crawl.stats.incr(format!("error:{}", error_kind(&error)), 1, 0)?;
                PageResult {
                    status: 0,
                    size: 0,
                    title: None,
                    links: Vec::new(),
                    worker: id,
                    error: Some(error),
                }
            }
        };
        // Add the unseen links and push them, all in one transaction.
        let frontier = &crawl.frontier;
        frontier.cache().transact(|c| {
            for link in &result.links {
                if c.add(format!("seen:{link}"), &1)? {
                    frontier.push_back(link)?;
                    c.incr("discovered", 1, 0)?;
                }
            }
            Ok::<_, diskq::Error>(())
        })?;
        if result.status >= 400 {
            crawl.stats.incr(format!("error:HTTP {}", result.status), 1, 0)?;
        }
        crawl.pages.insert(&path, &result)?;
        crawl.stats.incr(format!("worker:{id}"), 1, 0)?;
        // Done: only now is the path gone from the frontier.
        lease.ack()?;
    }
}

fn error_kind(error: &str) -> String {
    let lower = error.to_lowercase();
    ["timeout", "timed out", "connection refused", "dns", "tls", "io"]
        .iter()
        .find(|k| lower.contains(*k))
        .map_or("fetch failed", |k| k)
        .to_string()
}

/// Checks that the directory belongs to this site, seeds it if new.
fn prepare(crawl: &Crawl, site: &str, start: &str) -> Result<(), String> {
    let recorded: Option<String> = crawl.stats.get("site").map_err(|e| with_causes(&e))?;
    match recorded {
        Some(s) if s != site => {
            return Err(format!(
                "the directory holds a crawl of {s}, not {site}: use --fresh or another --dir"
            ));
        }
        Some(_) => {}
        None => crawl.stats.set("site", site).map_err(|e| with_causes(&e))?,
    }
    let frontier = &crawl.frontier;
    frontier
        .cache()
        .transact(|c| {
            if c.add(format!("seen:{start}"), &1)? {
                frontier.push_back(&start.to_string())?;
                c.incr("discovered", 1, 0)?;
            }
            Ok::<_, diskq::Error>(())
        })
        .map_err(|e| with_causes(&e))
}

/// An error and its causes on one line (diskq's messages do not repeat them).
fn with_causes(e: &diskq::Error) -> String {
    let mut line = e.to_string();
    for cause in std::iter::successors(std::error::Error::source(e), |c| c.source()) {
        line.push_str(&format!(": {cause}"));
    }
    line
}

fn parent(args: &Args) -> Result<bool, Box<dyn std::error::Error>> {
    if args.fresh && args.postgres.is_none() && args.dir.exists() {
        std::fs::remove_dir_all(&args.dir)?;
    }
    let crawl = open(args)?;
    if args.fresh && args.postgres.is_some() {
        crawl.frontier.cache().clear()?;
        crawl.pages.clear()?;
        crawl.stats.clear()?;
    }
    // The local site runs in this process; a real site is given by --url.
    let (server, origin, site) = match &args.url {
        Some(u) => {
            let url = Url::parse(u)?;
            (None, url.clone(), url.origin().ascii_serialization())
        }
        None => {
            let server = site::Server::start(args.pages)?;
            let url = Url::parse(&server.url())?;
            (Some(server), url, format!("the local site of {} pages", args.pages))
        }
    };
    prepare(&crawl, &site, &site_path(&origin))?;
    let done_before = crawl.pages.len()?;
    println!(
        "crawling {site} from {origin} into {} ({done_before} pages already done)",
        place(args)
    );
    let held = crawl.frontier.backlog()?.leased;
    if held > 0 {
        println!(
            "{held} pages were in progress when the last run stopped: they are fetched again \
             when their leases run out (within {} s)",
            args.lease.as_secs()
        );
    }

    let started = Instant::now();
    let exe = std::env::current_exe()?;
    let mut children: Vec<(usize, Child)> = Vec::new();
    for id in 0..args.workers {
        let mut cmd = Command::new(&exe);
        cmd.args(["--worker", &id.to_string(), "--url", origin.as_str(), "--dir"])
            .arg(&args.dir);
        if let Some(url) = &args.postgres {
            cmd.args(["--postgres", url]);
        }
        cmd.args(["--lease-secs", &args.lease.as_secs().to_string()]);
        if let Some(max) = args.max_pages {
            cmd.args(["--max-pages", &max.to_string()]);
        }
        let child = cmd.spawn()?;
        println!("worker {id} pid {}", child.id());
        children.push((id, child));
    }

    let bar = ProgressBar::new(1);
    bar.set_style(ProgressStyle::with_template(
        "{elapsed_precise} [{bar:40}] {pos}/{len} pages ({per_sec})",
    )?);
    let mut failed = Vec::new();
    while !children.is_empty() {
        let discovered: u64 = crawl.frontier.cache().get("discovered")?.unwrap_or(0);
        bar.set_length(discovered.max(1));
        bar.set_position(crawl.pages.len()? as u64);
        let mut running = Vec::new();
        for (id, mut child) in children {
            match child.try_wait()? {
                Some(status) if !status.success() => failed.push((id, status)),
                Some(_) => {}
                None => running.push((id, child)),
            }
        }
        children = running;
        std::thread::sleep(Duration::from_millis(100));
    }
    bar.finish_and_clear();
    if STOP.load(Ordering::Relaxed) {
        println!("interrupted: every worker finished the page in hand and stopped");
    }
    let elapsed = started.elapsed();
    drop(server);

    summary(&crawl, args, done_before, elapsed)?;
    for (id, status) in &failed {
        println!("worker {id} ended badly ({status}): its page in flight goes to the next run or worker");
    }
    let backlog = crawl.frontier.backlog()?;
    if !backlog.is_empty() {
        println!(
            "not finished: {} paths queued, {} leased; run the same command again to continue",
            backlog.queued, backlog.leased
        );
    }
    Ok(backlog.is_empty() || args.max_pages.is_some())
}

fn summary(crawl: &Crawl, args: &Args, done_before: usize, elapsed: Duration) -> diskq::Result<()> {
    let done = crawl.pages.len()?;
    let mut per_worker = BTreeMap::new();
    let mut errors = BTreeMap::new();
    for key in crawl.stats.keys()? {
        let Some(name) = key?.as_str().map(str::to_owned) else {
            continue;
        };
        if let Some(id) = name.strip_prefix("worker:") {
            per_worker.insert(
                id.parse::<usize>().unwrap_or(usize::MAX),
                crawl.stats.get::<i64>(name.as_str())?,
            );
        } else if let Some(kind) = name.strip_prefix("error:") {
            errors.insert(kind.to_string(), crawl.stats.get::<i64>(name.as_str())?.unwrap_or(0));
        }
    }
    let duplicates: i64 = crawl.stats.get("duplicates")?.unwrap_or(0);
    println!("pages crawled: {done} ({} in this run)", done - done_before);
    for (id, n) in per_worker {
        println!("  worker {id}: {} pages", n.unwrap_or(0));
    }
    for (kind, n) in &errors {
        println!("  errors, {kind}: {n}");
    }
    println!("pages fetched more than once: {duplicates}");
    let dead = crawl.frontier.cache().backlog(Some(DEAD_LETTER))?.queued;
    if dead > 0 {
        println!("frontier items no worker could read, kept in the queue {DEAD_LETTER:?}: {dead}");
    }
    println!(
        "{} workers, {elapsed:.2?}, {:.0} pages/s",
        args.workers,
        (done - done_before) as f64 / elapsed.as_secs_f64().max(1e-9)
    );
    Ok(())
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    // Ctrl-C reaches the parent and its workers (one process group): each
    // stops between pages, so nothing is left half done. A SIGKILL cannot be
    // caught; its page waits for its lease to run out.
    if let Err(e) = ctrlc::set_handler(|| STOP.store(true, Ordering::Relaxed)) {
        eprintln!("warning: no Ctrl-C handler ({e}); an interrupted page is fetched again later");
    }
    let result = match args.worker {
        Some(id) => match args.url.as_deref().map(Url::parse) {
            Some(Ok(origin)) => worker(id, &args, &origin).map(|()| true),
            _ => Err("a worker needs --url".into()),
        },
        None => parent(&args),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            // The error, then each cause (diskq's messages do not repeat them).
            let causes: String = std::iter::successors(e.source(), |c| c.source())
                .map(|c| format!(": {c}"))
                .collect();
            eprintln!("error: {e}{causes}");
            ExitCode::FAILURE
        }
    }
}
