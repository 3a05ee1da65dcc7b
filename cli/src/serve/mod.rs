//! `diskq serve DIR`: a live web page, a JSON API and a Prometheus endpoint
//! showing every queue, lease, dead letter and cache statistic of a
//! directory, while other processes work on it. With the `postgres`
//! feature, DIR may be a PostgreSQL location (`postgres://...#schema`):
//! the same page for that one store, without what only a directory has
//! (value files, folders of caches, the list of running leases).
//!
//! Read-only unless `--allow-writes`: the caches are opened with
//! [`diskq::Cache::open_read_only`] and the tables read with query-only
//! connections, so serving changes nothing in the directory. A background
//! thread samples every cache each interval and keeps the last minutes in
//! memory (the charts and rates); the page's requests read those samples,
//! so any number of them costs the directory nothing more.
//!
//! The HTTP side is tiny_http's (a few threads take requests in turn);
//! [`routes`] answers them.

mod inspect;
mod metrics;
mod routes;
mod sample;
mod writes;

use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, RwLock};
use std::thread;
use std::time::Duration;

use crate::failure::Failure;
use inspect::Location;
use sample::History;

/// Threads answering requests: a slow client ties up one of them only.
const WORKERS: usize = 4;
/// Samples kept at most, whatever `--history` and `--interval` ask: ten
/// hours at the default interval.
const MAX_SAMPLES: f64 = 36_000.0;
/// Every this many samples, the directory is searched again for caches
/// made since.
const REDISCOVER_EVERY: u64 = 10;

/// How `diskq serve` was asked to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// A directory, or a PostgreSQL location.
    pub dir: PathBuf,
    pub bind: IpAddr,
    pub port: u16,
    pub allow_writes: bool,
    /// Time between samples.
    pub interval: Duration,
    /// How long samples are kept (the charts' span).
    pub history: Duration,
}

/// What the request threads share.
#[derive(Debug)]
pub struct State {
    /// The served directory, or the PostgreSQL location without its password.
    pub root: PathBuf,
    /// A PostgreSQL location: one store, nothing to look for on disk.
    pub postgres: bool,
    pub locations: RwLock<Vec<Arc<Location>>>,
    pub history: Mutex<History>,
    pub interval: Duration,
    /// The token a POST must carry; `None` when writes are off.
    pub token: Option<String>,
    /// The address served, for the Host check.
    pub addr: SocketAddr,
}

impl State {
    /// The cache whose id is `id`.
    pub fn location(&self, id: &str) -> Option<Arc<Location>> {
        self.read_locations().iter().find(|l| l.id == id).cloned()
    }

    pub fn read_locations(&self) -> std::sync::RwLockReadGuard<'_, Vec<Arc<Location>>> {
        self.locations.read().unwrap_or_else(|p| p.into_inner())
    }

    pub fn lock_history(&self) -> std::sync::MutexGuard<'_, History> {
        self.history.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Serves until Ctrl-C or SIGTERM; prints the address (and the write
/// token) on `out` first.
pub fn run(opts: &Options, out: &mut dyn Write) -> Result<(), Failure> {
    if opts.interval.is_zero() {
        return Err(Failure::new("--interval must be above zero"));
    }
    let postgres = postgres_location(&opts.dir);
    if postgres.is_some() && opts.allow_writes {
        return Err(Failure::new(
            "--allow-writes is for directories only: a PostgreSQL location is served read-only",
        ));
    }
    let (root, locations) = match postgres {
        Some(location) => open_postgres(location)?,
        None => (opts.dir.clone(), open_all(&opts.dir)?),
    };
    let capacity = (opts.history.as_secs_f64() / opts.interval.as_secs_f64()).ceil();
    // Bounded, so a tiny interval cannot exhaust memory (a sample's
    // numbers take well under a kilobyte for a few queues).
    let capacity = if capacity.is_finite() {
        capacity.min(MAX_SAMPLES) as usize
    } else {
        2
    };
    let server = tiny_http::Server::http(SocketAddr::new(opts.bind, opts.port))
        .map_err(|e| Failure::new(format!("cannot listen on {}:{}: {e}", opts.bind, opts.port)))?;
    let addr = server
        .server_addr()
        .to_ip()
        .ok_or_else(|| Failure::new("the server has no IP address"))?;
    let token = if opts.allow_writes {
        Some(writes::new_token()?)
    } else {
        None
    };
    let mut history = History::new(capacity);
    history.push(sample::take(&locations));
    let state = Arc::new(State {
        root: root.clone(),
        postgres: postgres.is_some(),
        locations: RwLock::new(locations),
        history: Mutex::new(history),
        interval: opts.interval,
        token: token.clone(),
        addr,
    });

    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    let stop_on_signal = stop_tx.clone();
    ctrlc::set_handler(move || {
        let _ = stop_on_signal.send(());
    })
    .map_err(|e| Failure::new(format!("cannot catch Ctrl-C: {e}")))?;

    let shown = if addr.ip().is_unspecified() {
        SocketAddr::new(IpAddr::from([127, 0, 0, 1]), addr.port())
    } else {
        addr
    };
    let mode = if opts.allow_writes {
        "writes allowed"
    } else {
        "read-only"
    };
    writeln!(out, "serving {} at http://{shown}/ ({mode})", root.display()).map_err(Failure::output)?;
    if let Some(token) = &token {
        writeln!(out, "write token: {token}").map_err(Failure::output)?;
    }
    out.flush().map_err(Failure::output)?;

    let server = Arc::new(server);
    let (sampler_stop, sampler_rx) = mpsc::channel::<()>();
    let sampler = {
        let state = Arc::clone(&state);
        thread::spawn(move || sample_until_stopped(&state, &sampler_rx))
    };
    let workers: Vec<_> = (0..WORKERS)
        .map(|_| {
            let (server, state) = (Arc::clone(&server), Arc::clone(&state));
            thread::spawn(move || {
                while let Ok(request) = server.recv() {
                    routes::handle(&state, request);
                }
            })
        })
        .collect();

    // Until a signal (or every sender is gone, which cannot happen while
    // `stop_tx` lives).
    let _ = stop_rx.recv();
    drop(stop_tx);
    let _ = sampler_stop.send(());
    for _ in &workers {
        server.unblock();
    }
    for worker in workers {
        let _ = worker.join();
    }
    let _ = sampler.join();
    // The caches close here, with the last reference to the state, and
    // SQLite removes the log files it made for them.
    drop(state);
    Ok(())
}

/// The PostgreSQL location `dir` names, if it names one (as the library
/// reads them: `postgres://` or `postgresql://`).
fn postgres_location(dir: &Path) -> Option<&str> {
    dir.to_str()
        .filter(|s| s.starts_with("postgres://") || s.starts_with("postgresql://"))
}

/// The store at a PostgreSQL location, opened read-only, and how to show
/// the location (without its password).
#[cfg(feature = "postgres")]
fn open_postgres(location: &str) -> Result<(PathBuf, Vec<Arc<Location>>), Failure> {
    let cache = diskq::Cache::open_read_only(location)?;
    let shown = cache.directory().to_path_buf();
    Ok((shown, vec![Arc::new(Location::open_postgres(cache))]))
}

#[cfg(not(feature = "postgres"))]
fn open_postgres(_location: &str) -> Result<(PathBuf, Vec<Arc<Location>>), Failure> {
    Err(Failure::new(
        "this diskq was built without PostgreSQL support: rebuild it with the cargo feature `postgres` \
         to serve a postgres:// location",
    ))
}

/// Every cache under `root`; none at all is an error.
fn open_all(root: &Path) -> Result<Vec<Arc<Location>>, Failure> {
    match std::fs::metadata(root) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err(Failure::new(format!("{} is not a directory", root.display()))),
        Err(e) => return Err(Failure::new(format!("cannot read {}: {e}", root.display()))),
    }
    let paths = inspect::discover(root)?;
    if paths.is_empty() {
        return Err(Failure::new(format!(
            "{} holds no diskq or python-diskcache cache (no cache.db in it or its folders)",
            root.display()
        )));
    }
    // One that cannot be opened yet (another process is creating it) is
    // looked for again with the caches made later.
    let mut opened = Vec::new();
    let mut first_failure = None;
    for path in &paths {
        match Location::open(root, path) {
            Ok(loc) => opened.push(Arc::new(loc)),
            Err(e) => {
                let _ = writeln!(std::io::stderr(), "diskq: not showing {} for now: {e}", path.display());
                first_failure.get_or_insert(e);
            }
        }
    }
    match (opened.is_empty(), first_failure) {
        (true, Some(e)) => Err(e),
        _ => Ok(opened),
    }
}

/// Samples every interval until told to stop; now and then looks for
/// caches made since (a named deque created after the start).
fn sample_until_stopped(state: &State, stop: &mpsc::Receiver<()>) {
    let mut round: u64 = 0;
    loop {
        match stop.recv_timeout(state.interval) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
        }
        round += 1;
        if !state.postgres && round.is_multiple_of(REDISCOVER_EVERY) {
            add_new_locations(state);
        }
        let locations: Vec<Arc<Location>> = state.read_locations().clone();
        let taken = sample::take(&locations);
        state.lock_history().push(taken);
    }
}

fn add_new_locations(state: &State) {
    let Ok(found) = inspect::discover(&state.root) else {
        return;
    };
    let known: Vec<String> = state.read_locations().iter().map(|l| l.id.clone()).collect();
    let new: Vec<Arc<Location>> = found
        .iter()
        .filter(|path| !known.contains(&inspect::id_of(&state.root, path)))
        // One still being created is tried again next time.
        .filter_map(|path| Location::open(&state.root, path).ok().map(Arc::new))
        .collect();
    if new.is_empty() {
        return;
    }
    let mut locations = state.locations.write().unwrap_or_else(|p| p.into_inner());
    for loc in new {
        if locations.len() < inspect::MAX_CACHES {
            locations.push(loc);
        }
    }
    locations.sort_by(|a, b| a.id.cmp(&b.id));
}
