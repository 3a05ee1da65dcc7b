//! What `serve` reads from a directory: the caches in it, the queues of
//! each, and the leases and dead letters of a queue.
//!
//! Counts come from the library ([`Cache::backlog`], [`Cache::stats`],
//! [`Cache::queue_stats`]) and so do the running leases
//! ([`Cache::running_leases`]) and the dead letters
//! ([`Cache::dead_letters`], with their delivery counts and last errors),
//! through a cache opened read-only. Which queues a cache holds the
//! library does not list: in a directory they are read here from the
//! tables with a connection of our own, opened as the library's read-only
//! connections are (`PRAGMA query_only`, see `dir::connect`), so serving
//! never writes to the directory either way.
//!
//! A PostgreSQL location (`postgres://...#schema`, with the `postgres`
//! feature) is one [`Location`] without that connection: its queues are
//! those its counters name.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use diskq::{Cache, Key, LeaseOptions};
use rmpv::Value;
use rusqlite::{Connection, OptionalExtension};
use serde_json::{Value as Json, json};

use crate::dir::{self, Access};
use crate::failure::Failure;
use crate::lease_cmds::unix_seconds;
use crate::show;

/// How deep under the served directory caches are looked for: a fanout
/// root's named deque is `ROOT/deque/NAME`, and the root may itself be a
/// folder of the served one (`DIR/crawl/deque/NAME`).
const MAX_DEPTH: usize = 4;
/// More caches than a page can show: the walk stops here.
pub const MAX_CACHES: usize = 256;
/// More queues than a page can show: a cache's are listed up to here.
pub const MAX_QUEUES: usize = 256;
/// The last number of a queue's key range (python-diskcache's bound).
const QUEUE_BOUND: i64 = 999_999_999_999_999;
/// The digits that end a prefixed queue's key: `<prefix>-<15 digits>`.
const NUMBER_DIGITS: usize = 15;
/// Where lease keys start (`diskq-lease-k<16 hex>-<queue key>`), and the
/// first text past them.
const LEASE_KEYS: &str = "diskq-lease-k";
const PAST_LEASE_KEYS: &str = "diskq-lease-l";
/// The search for a cache's queues runs again once this many times as
/// long as it took has passed.
const SCAN_SHARE: u32 = 20;
/// Values up to this size are shown (a few lines of text); larger ones
/// only by size.
const PREVIEW_MAX_BYTES: i64 = 4096;
/// Characters of a value shown in a preview.
const PREVIEW_CHARS: usize = 160;

/// The next text key past `?1` shaped as a prefixed queue's key. Integer
/// keys sort before text, so the scan starts in the text keys; the keys of
/// one queue are skipped at once by the caller (it moves `?1` past them).
const NEXT_QUEUE_KEY: &str = "SELECT key FROM Cache WHERE key > ?1 AND raw = 1 AND typeof(key) = 'text' \
     AND key GLOB '*-[0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]' \
     ORDER BY key LIMIT 1";
/// Whether the integer-keyed queue (python-diskcache's `push`, a `Deque`) has an item.
const HAS_INT_QUEUE: &str =
    "SELECT 1 FROM Cache WHERE key > 0 AND key < ?1 AND raw = 1 AND typeof(key) = 'integer' LIMIT 1";
const HAS_LEASE_TABLE: &str = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'DiskqLease'";
/// Queues with leases (every item of a queue may be leased).
const LEASED_QUEUES: &str = "SELECT DISTINCT queue FROM DiskqLease WHERE deadline IS NOT NULL LIMIT ?1";
const HAS_JOB_TABLE: &str = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'DiskqJob'";
/// Queues with jobs (delayed, prioritized or unique items, kept outside
/// the queue's key range: a queue of scheduled items only has no key in it).
const JOB_QUEUES: &str = "SELECT DISTINCT queue FROM DiskqJob LIMIT ?1";
/// Where job keys start.
const JOB_KEYS: &str = "diskq-job-k";
/// Dead letters a listing reads at most (the library's bound).
const MAX_DEAD_LETTERS: usize = 10_000;
const SETTING: &str = "SELECT value FROM Settings WHERE key = ?1";

/// One cache under the served directory.
#[derive(Debug)]
pub struct Location {
    /// Its path relative to the served directory (`.` for the directory
    /// itself), which names it in the API.
    pub id: String,
    /// What it is: `cache`, `shard`, `deque`, `index`, `named cache`, or
    /// `postgres` (a PostgreSQL location).
    pub kind: &'static str,
    /// Opened read-only. Dropped before `conn` (fields drop in order).
    pub cache: Cache,
    /// Our own read-only connection to a directory's `cache.db`; none for
    /// a PostgreSQL location.
    conn: Option<Mutex<Connection>>,
    /// Every queue seen so far, so that one that empties stays shown.
    queues: Mutex<BTreeSet<Queue>>,
    /// When the queues were last searched for, and how long it took.
    scan: Mutex<Option<(Instant, Duration)>>,
}

/// A queue: `None` for the integer-keyed one, else its prefix.
pub type Queue = Option<String>;

/// The dead-letter queue `diskq`'s leases use for `queue` by default.
pub fn dead_letter_queue(queue: &Queue) -> String {
    match queue {
        None => "dead-letter".to_string(),
        Some(p) => format!("{p}-dead-letter"),
    }
}

/// The queue whose default dead-letter queue `name` is, if it is one.
fn parent_of_dead_letters(name: &str) -> Option<Queue> {
    if name == "dead-letter" {
        return Some(None);
    }
    name.strip_suffix("-dead-letter").map(|p| Some(p.to_string()))
}

/// Every cache under `root` (itself included), in path order: folders
/// holding a `cache.db` that is a diskq or python-diskcache cache, looked
/// for down to [`MAX_DEPTH`]. A cache's own folders (value files) are not
/// searched; links are not followed.
pub fn discover(root: &Path) -> Result<Vec<PathBuf>, Failure> {
    let mut found = Vec::new();
    walk(root, root, 0, &mut found)?;
    found.sort();
    Ok(found)
}

/// The id [`Location::open`] gives the cache at `path` under `root`.
pub fn id_of(root: &Path, path: &Path) -> String {
    let relative = path.strip_prefix(root).unwrap_or(path);
    match relative.to_string_lossy().into_owned() {
        s if s.is_empty() => ".".to_string(),
        s => s,
    }
}

fn walk(root: &Path, dir: &Path, depth: usize, found: &mut Vec<PathBuf>) -> Result<(), Failure> {
    if found.len() >= MAX_CACHES {
        return Ok(());
    }
    if dir.join("cache.db").is_file() {
        found.push(dir.to_path_buf());
        return Ok(());
    }
    if depth >= MAX_DEPTH {
        return Ok(());
    }
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        // The root must be readable; a folder under it that is not is skipped.
        Err(e) if dir != root => {
            let _ = e;
            return Ok(());
        }
        Err(e) => return Err(Failure::new(format!("cannot read {}: {e}", dir.display()))),
    };
    let mut subdirs: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok())
        .filter(|entry| entry.file_type().is_ok_and(|t| t.is_dir()))
        .filter(|entry| !entry.file_name().to_string_lossy().starts_with('.'))
        .map(|entry| entry.path())
        .collect();
    subdirs.sort();
    for sub in subdirs {
        walk(root, &sub, depth + 1, found)?;
    }
    Ok(())
}

impl Location {
    /// Opens the cache at `path` (under `root`) read-only.
    pub fn open(root: &Path, path: &Path) -> Result<Location, Failure> {
        // Our connection first, and reading at once: it alone sees whether
        // the write-ahead log was there before, and so whether closing it
        // (last, see the field order) removes the log files SQLite made.
        // The cache's connections, opened after, find the log there and
        // leave it alone.
        let db = path.join("cache.db");
        let conn = dir::connect(&db)?;
        conn.query_row("SELECT count(*) FROM sqlite_master", [], |_| Ok(()))
            .map_err(|e| Failure::new(format!("cannot read {}: {e}", db.display())))?;
        let cache = dir::open(path, Access::ReadOnly)?;
        Ok(Location {
            kind: kind_of(path),
            id: id_of(root, path),
            cache,
            conn: Some(Mutex::new(conn)),
            queues: Mutex::new(BTreeSet::new()),
            scan: Mutex::new(None),
        })
    }

    /// Opens a PostgreSQL location read-only (the library asks the server
    /// for read-only transactions, and makes no schema): id `.`.
    #[cfg(feature = "postgres")]
    pub fn open_postgres(cache: Cache) -> Location {
        Location {
            id: ".".to_string(),
            kind: "postgres",
            cache,
            conn: None,
            queues: Mutex::new(BTreeSet::new()),
            scan: Mutex::new(None),
        }
    }

    /// True for a PostgreSQL location.
    pub fn is_postgres(&self) -> bool {
        self.conn.is_none()
    }

    /// Our connection; `None` for a PostgreSQL location.
    fn conn(&self) -> Option<std::sync::MutexGuard<'_, Connection>> {
        // A panic while holding it left nothing half-done: reads only.
        self.conn
            .as_ref()
            .map(|c| c.lock().unwrap_or_else(|poisoned| poisoned.into_inner()))
    }

    fn sql_error(&self, e: rusqlite::Error) -> Failure {
        Failure::new(format!("cannot read {}: {e}", self.cache.directory().display()))
    }

    /// The Settings table's `count` (rows) and `size` (bytes in value
    /// files); on PostgreSQL the live items and no size (no value files).
    pub fn count_and_size(&self) -> Result<(i64, Option<i64>), Failure> {
        let Some(conn) = self.conn() else {
            let items = self.cache.len()?;
            return Ok((i64::try_from(items).unwrap_or(i64::MAX), None));
        };
        let read = |name: &str| -> Result<i64, Failure> {
            conn.query_row(SETTING, [name], |r| r.get::<_, Option<i64>>(0))
                .optional()
                .map(|v| v.flatten().unwrap_or(0))
                .map_err(|e| self.sql_error(e))
        };
        Ok((read("count")?, Some(read("size")?)))
    }

    /// The queues of the cache: those found now and every one seen before,
    /// integer-keyed first, then by name. Dead-letter queues are not
    /// listed: their items count as their queue's dead letters.
    ///
    /// Finding them reads every text key that is not a queue item (the
    /// items of a queue are skipped at once), which takes a while in a
    /// large cache of other keys: the search runs again only once the time
    /// since the last one is [`SCAN_SHARE`] times as long as that one took,
    /// so it costs at most about 1/20 of the server's time.
    pub fn queues(&self) -> Result<Vec<Queue>, Failure> {
        let due = {
            let scan = self.scan.lock().unwrap_or_else(|p| p.into_inner());
            scan.is_none_or(|(at, took)| at.elapsed() >= took * SCAN_SHARE)
        };
        if due {
            self.rescan()?;
        }
        Ok(self.seen().iter().cloned().collect())
    }

    fn seen(&self) -> std::sync::MutexGuard<'_, BTreeSet<Queue>> {
        self.queues.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn rescan(&self) -> Result<(), Failure> {
        let start = Instant::now();
        let found = self.find_queues()?;
        *self.scan.lock().unwrap_or_else(|p| p.into_inner()) = Some((Instant::now(), start.elapsed()));
        let mut seen = self.seen();
        for queue in found {
            if seen.len() >= MAX_QUEUES {
                break;
            }
            seen.insert(queue);
        }
        Ok(())
    }

    /// True when `queue` is one of [`Location::queues`]; one not seen yet
    /// is looked for at once.
    pub fn has_queue(&self, queue: &Queue) -> Result<bool, Failure> {
        if self.seen().contains(queue) {
            return Ok(true);
        }
        self.rescan()?;
        Ok(self.seen().contains(queue))
    }

    fn find_queues(&self) -> Result<BTreeSet<Queue>, Failure> {
        let mut queues = BTreeSet::new();
        let mut add = |name: Option<String>| {
            // A dead-letter queue stands for its queue, which may be empty.
            let queue = match &name {
                Some(n) => parent_of_dead_letters(n).unwrap_or(name),
                None => None,
            };
            queues.insert(queue);
        };
        // Every queue diskq pushed to, popped or leased from has counters
        // (a queue only python-diskcache used has none: found below).
        let counted = self.cache.all_queue_stats()?;
        for (name, _) in counted.into_iter().take(MAX_QUEUES) {
            add(if name.is_empty() { None } else { Some(name) });
        }
        let Some(conn) = self.conn() else {
            return Ok(queues);
        };
        let has_int = conn
            .query_row(HAS_INT_QUEUE, [QUEUE_BOUND], |_| Ok(()))
            .optional()
            .map_err(|e| self.sql_error(e))?;
        if has_int.is_some() {
            add(None);
        }
        let mut next = conn.prepare_cached(NEXT_QUEUE_KEY).map_err(|e| self.sql_error(e))?;
        let mut cursor = String::new();
        let mut rounds = 0;
        while rounds < MAX_QUEUES {
            rounds += 1;
            let key: Option<String> = next
                .query_row([&cursor], |r| r.get(0))
                .optional()
                .map_err(|e| self.sql_error(e))?;
            let Some(key) = key else { break };
            // The GLOB matched `-` and 15 ASCII digits: a char boundary.
            let prefix = &key[..key.len() - NUMBER_DIGITS - 1];
            if prefix.starts_with(LEASE_KEYS) {
                cursor = PAST_LEASE_KEYS.to_string();
                continue;
            }
            // Every key of this queue sorts up to its last number. (A queue
            // named like this one followed by `-<digits>` sorts among them
            // and is found only through its leases, if any.)
            cursor = format!("{prefix}-{QUEUE_BOUND}");
            add(Some(prefix.to_string()));
        }
        if has_job_table(&conn).map_err(|e| self.sql_error(e))? {
            let mut stmt = conn.prepare_cached(JOB_QUEUES).map_err(|e| self.sql_error(e))?;
            let names = stmt
                .query_map([MAX_QUEUES as i64], |r| r.get::<_, String>(0))
                .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
                .map_err(|e| self.sql_error(e))?;
            for name in names {
                add(if name.is_empty() { None } else { Some(name) });
            }
        }
        let leases_taken = has_lease_table(&conn).map_err(|e| self.sql_error(e))?;
        if leases_taken {
            let mut stmt = conn.prepare_cached(LEASED_QUEUES).map_err(|e| self.sql_error(e))?;
            let names = stmt
                .query_map([MAX_QUEUES as i64], |r| r.get::<_, String>(0))
                .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
                .map_err(|e| self.sql_error(e))?;
            for name in names {
                add(if name.is_empty() { None } else { Some(name) });
            }
        }
        // An empty queue leaves no trace but these: a named deque is one,
        // and a cache where leases were taken and that has no named queue
        // was leased from its integer-keyed queue (a `Deque`, drained).
        if queues.is_empty() && (self.kind == "deque" || leases_taken) {
            queues.insert(None);
        }
        Ok(queues)
    }

    /// The running leases of `queue` (of its plain items and of its jobs),
    /// the first to run out first, `limit` at most, as the library lists
    /// them ([`Cache::running_leases`], a directory or PostgreSQL alike).
    pub fn leases(&self, queue: &Queue, limit: usize) -> Result<Vec<LeaseInfo>, Failure> {
        let running = self.cache.running_leases(queue.as_deref(), limit)?;
        // Those whose item is gone by the time its value is read (acked
        // meanwhile) are left out.
        Ok(running
            .into_iter()
            .filter_map(|lease| {
                let Key::Text(key) = &lease.key else {
                    return None;
                };
                let (holder, item) = split_lease_key(key);
                let size = i64::try_from(lease.size).unwrap_or(i64::MAX);
                Some(LeaseInfo {
                    preview: self.preview(&lease.key, size)?,
                    item,
                    holder,
                    deadline: unix_seconds(lease.deadline),
                    deliveries: i64::from(lease.deliveries),
                    size,
                    last_error: lease.last_error,
                })
            })
            .collect())
    }

    /// The dead letters of `queue` (the items of its default dead-letter
    /// queue), front first, `limit` at most, with their delivery counts and
    /// last errors when the library recorded them.
    pub fn dead_letters(&self, queue: &Queue, limit: usize) -> Result<Vec<DeadLetter>, Failure> {
        // Only the queue and the dead-letter queue of the options are read.
        let mut opts = LeaseOptions::new(Duration::from_secs(1));
        opts.prefix = queue.clone();
        let listed = self.cache.dead_letters(&opts, limit.min(MAX_DEAD_LETTERS))?;
        Ok(listed
            .into_iter()
            .filter_map(|d| {
                let Key::Text(key) = &d.key else {
                    return None; // a dead-letter queue's keys are text
                };
                let size = i64::try_from(d.size).unwrap_or(i64::MAX);
                Some(DeadLetter {
                    preview: self.preview(&d.key, size)?,
                    key: key.clone(),
                    size,
                    deliveries: d.deliveries.map(i64::from),
                    last_error: d.last_error,
                    dead_at: d
                        .dead_at
                        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                        .map(|d| d.as_secs_f64()),
                })
            })
            .collect())
    }

    /// A short view of a small value (kind and the start of it): `None`
    /// when the item is gone meanwhile (acked, requeued), `Some(None)` for
    /// a large value (not read). A get through the read-only cache counts
    /// no hit and changes nothing.
    fn preview(&self, key: &Key, size: i64) -> Option<Option<Json>> {
        if size > PREVIEW_MAX_BYTES {
            return Some(None);
        }
        Some(match self.cache.get::<Value>(key.clone()) {
            Ok(Some(value)) => {
                let shown = show::value_json(key, &value);
                let kind = shown.get("kind").cloned().unwrap_or(Json::Null);
                let text = match shown.get("value") {
                    Some(Json::String(s)) => s.clone(),
                    Some(other) => other.to_string(),
                    None => String::new(),
                };
                Some(json!({ "kind": kind, "text": shorten(&text) }))
            }
            Ok(None) => return None,
            Err(e) if e.is_decode() => Some(json!({ "kind": "unreadable", "text": shorten(&e.to_string()) })),
            Err(_) => None,
        })
    }
}

/// `text` cut to [`PREVIEW_CHARS`] characters, with `…` when cut.
fn shorten(text: &str) -> String {
    match text.char_indices().nth(PREVIEW_CHARS) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

fn has_lease_table(conn: &Connection) -> rusqlite::Result<bool> {
    Ok(conn.query_row(HAS_LEASE_TABLE, [], |_| Ok(())).optional()?.is_some())
}

fn has_job_table(conn: &Connection) -> rusqlite::Result<bool> {
    Ok(conn.query_row(HAS_JOB_TABLE, [], |_| Ok(())).optional()?.is_some())
}

/// A lease key's 16 hex digits (which name the lease, not its holder's
/// token: the page shows them without handing out the lease) and the
/// queue key its item had.
fn split_lease_key(key: &str) -> (String, Json) {
    // A job is leased under its own key, which its 16 hex digits name.
    if let Some(hex) = key.strip_prefix(JOB_KEYS) {
        return (hex.to_string(), Json::String(key.to_string()));
    }
    let rest = key.strip_prefix(LEASE_KEYS).unwrap_or(key);
    let (hex, item) = match rest.split_at_checked(16) {
        Some((hex, tail)) => (hex.to_string(), tail.strip_prefix('-').unwrap_or(tail)),
        None => (rest.to_string(), ""),
    };
    let item = match item.parse::<i64>() {
        Ok(n) => Json::from(n),
        Err(_) => Json::String(item.to_string()),
    };
    (hex, item)
}

/// What a folder is, by its place: a shard (`000`) or named collection
/// (`deque/NAME`, `index/NAME`, `cache/NAME`) of a fanout root, or a cache.
fn kind_of(path: &Path) -> &'static str {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    let parent = path.parent();
    let parent_name = parent
        .and_then(Path::file_name)
        .map(|n| n.to_string_lossy().into_owned());
    let fanout_root = |root: Option<&Path>| root.is_some_and(dir::is_fanout_root);
    if name
        .as_deref()
        .is_some_and(|n| n.len() == 3 && n.bytes().all(|b| b.is_ascii_digit()))
        && fanout_root(parent)
    {
        return "shard";
    }
    match parent_name.as_deref() {
        Some(kind @ ("deque" | "index" | "cache")) if fanout_root(parent.and_then(Path::parent)) => match kind {
            "deque" => "deque",
            "index" => "index",
            _ => "named cache",
        },
        _ => "cache",
    }
}

/// A running lease, as the API shows it.
#[derive(Debug, Clone)]
pub struct LeaseInfo {
    /// The queue key the item had.
    pub item: Json,
    /// The 16 hex digits naming the lease.
    pub holder: String,
    /// When it runs out, in seconds since the Unix epoch.
    pub deadline: f64,
    pub deliveries: i64,
    pub size: i64,
    pub preview: Option<Json>,
    /// The error of the last failed delivery (a job's; a plain item nacked
    /// with an error becomes a job).
    pub last_error: Option<String>,
}

impl LeaseInfo {
    pub fn to_json(&self, now: f64) -> Json {
        json!({
            "item": self.item,
            "holder": self.holder,
            "deadline": self.deadline,
            "expired": self.deadline <= now,
            "deliveries": self.deliveries,
            "last_error": self.last_error,
            "size": self.size,
            "preview": self.preview,
        })
    }
}

/// A dead letter, as the API shows it.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    pub key: String,
    pub size: i64,
    /// Recorded by the library when it moved the item (see
    /// [`diskq::DeadLetter`]); `None` for an item pushed there directly,
    /// and on PostgreSQL.
    pub deliveries: Option<i64>,
    pub last_error: Option<String>,
    /// When it was moved, in seconds since the Unix epoch.
    pub dead_at: Option<f64>,
    pub preview: Option<Json>,
}

impl DeadLetter {
    pub fn to_json(&self) -> Json {
        json!({
            "key": self.key,
            "size": self.size,
            "deliveries": self.deliveries,
            "last_error": self.last_error,
            "dead_at": self.dead_at,
            "preview": self.preview,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_keys_split_into_their_name_and_item() {
        let (hex, item) = split_lease_key("diskq-lease-k0123456789abcdef-500000000000001");
        assert_eq!((hex.as_str(), item), ("0123456789abcdef", json!(500000000000001_i64)));
        let (_, item) = split_lease_key("diskq-lease-k0123456789abcdef-jobs-500000000000000");
        assert_eq!(item, json!("jobs-500000000000000"));
    }

    #[test]
    fn previews_are_cut_on_a_character() {
        let long = "é".repeat(PREVIEW_CHARS + 5);
        let cut = shorten(&long);
        assert_eq!(cut.chars().count(), PREVIEW_CHARS + 1);
        assert!(cut.ends_with('…'));
        assert_eq!(shorten("short"), "short");
    }

    #[test]
    fn queues_are_found_with_their_dead_letters_and_leases() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let cache = Cache::open(tmp.path()).expect("open");
        cache.push("plain").expect("push");
        for q in ["jobs", "mail", "a-b"] {
            cache.push_with(q, &diskq::PushOptions::new().prefix(q)).expect("push");
        }
        cache.set("page:1", "not a queue").expect("set");
        cache.set("x-123", "not a queue either").expect("set");
        // Every item of `all-leased` leased; `gone` has only dead letters.
        cache
            .push_with("one", &diskq::PushOptions::new().prefix("all-leased"))
            .expect("push");
        let opts = diskq::LeaseOptions::new(Duration::from_secs(60)).prefix("all-leased");
        let lease = cache.lease::<String>(&opts).expect("lease").expect("an item");
        cache
            .push_with("dead", &diskq::PushOptions::new().prefix("gone-dead-letter"))
            .expect("push");
        let paths = discover(tmp.path()).expect("discover");
        assert_eq!(paths.len(), 1);
        let found = [Location::open(tmp.path(), &paths[0]).expect("opens")];
        let queues = found[0].queues().expect("queues");
        let names: Vec<Option<&str>> = queues.iter().map(|q| q.as_deref()).collect();
        assert_eq!(
            names,
            [
                None,
                Some("a-b"),
                Some("all-leased"),
                Some("gone"),
                Some("jobs"),
                Some("mail")
            ]
        );
        let leases = found[0].leases(&Some("all-leased".into()), 10).expect("leases");
        assert_eq!(leases.len(), 1);
        assert_eq!(leases[0].deliveries, 1);
        assert_eq!(leases[0].item, json!("all-leased-500000000000000"));
        assert_eq!(leases[0].preview, Some(json!({ "kind": "text", "text": "one" })));
        let dead = found[0].dead_letters(&Some("gone".into()), 10).expect("dead letters");
        assert_eq!(dead.len(), 1);
        assert_eq!(
            (dead[0].key.as_str(), dead[0].size),
            ("gone-dead-letter-500000000000000", 4)
        );
        lease.ack().expect("ack");
        // Seen once, listed while the server runs.
        assert!(found[0].has_queue(&Some("all-leased".into())).expect("queues"));
    }

    #[test]
    fn a_drained_deque_is_still_a_queue() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (leased, plain) = (tmp.path().join("leased"), tmp.path().join("plain"));
        let deque = diskq::Deque::<u32>::open(&leased).expect("open");
        deque.push_back(&1).expect("push");
        deque
            .lease(Duration::from_secs(60))
            .expect("lease")
            .expect("an item")
            .ack()
            .expect("ack");
        diskq::Cache::open(&plain).expect("open").set("k", "v").expect("set");
        let queues = |dir: &Path| {
            Location::open(tmp.path(), dir)
                .expect("opens")
                .queues()
                .expect("queues")
        };
        assert_eq!(queues(&leased), [None]);
        assert!(
            queues(&plain).is_empty(),
            "a cache never leased from has no queue to show"
        );
    }
}
