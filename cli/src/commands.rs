//! Each subcommand, run against a cache and writing to the given output.

use std::io::{self, Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use diskq::{Cache, CheckOptions, Error, Key, PullOptions, PushOptions, SetOptions, Side};
use rmpv::Value;
use serde_json::{Map, Value as Json, json};

use crate::args::{Cli, Command};
use crate::dir::{self, Access};
use crate::failure::Failure;
use crate::show;
use crate::streams;
use crate::target::Target;
use crate::verbs;

/// How a command that did not fail ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// It did what was asked (exit status 0).
    Done,
    /// The key or queue item asked for is not there (exit status 2); the
    /// message says what was missing.
    Absent(String),
    /// `check` left inconsistencies in place (exit status 1).
    Inconsistent(String),
}

/// Runs the parsed command line, writing its output to `out`.
pub fn run(cli: &Cli, out: &mut dyn Write) -> Result<Outcome, Failure> {
    let json = cli.json;
    let key_of = |text: &str| parse_key(text, cli.int_key);
    match &cli.command {
        Command::Stats { dir } => stats(dir, json, out),
        Command::Check { dir, fix, grace } => check(dir, *fix, Duration::from_secs(*grace), json, out),
        Command::Get { dir, key } => get(dir, &key_of(key)?, json, out),
        Command::Set {
            dir,
            key,
            value,
            expire,
            tag,
        } => {
            let mut opts = SetOptions::new();
            opts.expire = *expire;
            opts.tag = tag.clone();
            set(dir, &key_of(key)?, value, &opts, json, out)
        }
        Command::Delete { dir, key } => {
            let key = key_of(key)?;
            let deleted = Target::open(dir, Access::Existing)?.for_key(&key).delete(&key)?;
            if json {
                emit(out, &json!({ "key": show::key_json(&key), "deleted": deleted }))?;
            }
            Ok(if deleted {
                Outcome::Done
            } else {
                Outcome::Absent(format!("no key {key}"))
            })
        }
        Command::Keys { dir } => keys(&Target::open(dir, Access::ReadOnly)?, json, out),
        Command::Len { dir } => {
            let len = sum(dir, Access::ReadOnly, Cache::len)?;
            count(out, json, "len", len)
        }
        Command::Clear { dir } => {
            let removed = sum(dir, Access::Existing, Cache::clear)?;
            count(out, json, "removed", removed)
        }
        Command::Expire { dir } => {
            let removed = sum(dir, Access::Existing, Cache::expire)?;
            count(out, json, "removed", removed)
        }
        Command::Evict { dir, tag } => {
            let removed = sum(dir, Access::Existing, |c| c.evict(tag))?;
            count(out, json, "removed", removed)
        }
        Command::Push {
            dir,
            value,
            front,
            prefix,
        } => {
            let mut opts = PushOptions::new().side(if *front { Side::Front } else { Side::Back });
            opts.prefix = prefix.clone();
            push(dir, value, &opts, json, out)
        }
        Command::Pull {
            dir,
            back,
            prefix,
            wait,
            dead_letter,
        } => {
            let mut opts = PullOptions::new().side(if *back { Side::Back } else { Side::Front });
            opts.prefix = prefix.clone();
            pull(dir, &opts, *wait, *dead_letter, json, out)
        }
        #[cfg(feature = "serve")]
        Command::Serve {
            dir,
            port,
            bind,
            allow_writes,
            interval,
            history,
        } => {
            let opts = crate::serve::Options {
                dir: dir.clone(),
                bind: *bind,
                port: *port,
                allow_writes: *allow_writes,
                interval: *interval,
                history: Duration::from_secs(history.saturating_mul(60)),
            };
            crate::serve::run(&opts, out)?;
            Ok(Outcome::Done)
        }
        Command::Verb(verb) => verbs::run(verb, cli, out),
    }
}

/// `op` run on the cache in `dir`, or on each shard of a fanout root, summed.
fn sum(dir: &Path, access: Access, op: impl Fn(&Cache) -> diskq::Result<usize>) -> Result<usize, Failure> {
    let mut total = 0;
    for shard in Target::open(dir, access)?.shards() {
        total += op(shard)?;
    }
    Ok(total)
}

/// A key from the command line: text, or an integer with `--int-key`.
pub fn parse_key(text: &str, int: bool) -> Result<Key, Failure> {
    if !int {
        return Ok(Key::from(text));
    }
    text.trim()
        .parse::<i64>()
        .map(Key::Int)
        .map_err(|_| Failure::new(format!("{text:?} is not an integer key (from -2^63 to 2^63-1)")))
}

/// The names of a queue's counters, in the order of [`queue_counts`].
const QUEUE_COUNTERS: [&str; 8] = [
    "pushed",
    "popped",
    "leased",
    "acked",
    "nacked",
    "redelivered",
    "dead_lettered",
    "scheduled",
];

fn queue_counts(q: &diskq::QueueStats) -> [u64; 8] {
    [
        q.pushed,
        q.popped,
        q.leased,
        q.acked,
        q.nacked,
        q.redelivered,
        q.dead_lettered,
        q.scheduled,
    ]
}

fn stats(dir: &Path, json: bool, out: &mut dyn Write) -> Result<Outcome, Failure> {
    let target = Target::open(dir, Access::ReadOnly)?;
    let (mut meta, mut volume, mut stats) = (dir::Metadata::default(), 0, diskq::Stats::default());
    let mut queues: std::collections::BTreeMap<String, [u64; 8]> = std::collections::BTreeMap::new();
    for shard in target.shards() {
        let m = dir::metadata(shard.directory())?;
        meta.count += m.count;
        meta.size += m.size;
        volume += shard.volume()?;
        let s = shard.stats()?;
        stats.hits += s.hits;
        stats.misses += s.misses;
        stats.culled += s.culled;
        for (name, q) in shard.all_queue_stats()? {
            let total = queues.entry(name).or_default();
            for (sum, n) in total.iter_mut().zip(queue_counts(&q)) {
                *sum += n;
            }
        }
    }
    // Each shard has its own settings; a fanout root shows its first's.
    let settings = target.shards().first().map(Cache::settings).unwrap_or_default();
    let shards = target.fanout_shards();
    if json {
        let settings: Map<String, Json> = settings
            .into_iter()
            .map(|(name, value)| {
                let value = value.parse::<i64>().map(Json::from).unwrap_or(Json::String(value));
                (name, value)
            })
            .collect();
        let mut doc = json!({
            "directory": target.directory().display().to_string(),
            "count": meta.count,
            "size": meta.size,
            "volume": volume,
            "hits": stats.hits,
            "misses": stats.misses,
            "culled": stats.culled,
            "settings": settings,
            "queues": queues.iter().map(|(name, counts)| {
                let fields: Map<String, Json> =
                    QUEUE_COUNTERS.iter().zip(counts).map(|(k, v)| ((*k).to_string(), Json::from(*v))).collect();
                (name.clone(), Json::Object(fields))
            }).collect::<Map<String, Json>>(),
        });
        if let (Some(n), Some(map)) = (shards, doc.as_object_mut()) {
            map.insert("shards".into(), Json::from(n));
        }
        emit(out, &doc)?;
        return Ok(Outcome::Done);
    }
    let mut rows = vec![
        ("directory".to_string(), target.directory().display().to_string()),
        ("count".to_string(), meta.count.to_string()),
        ("size".to_string(), meta.size.to_string()),
        ("volume".to_string(), volume.to_string()),
        ("hits".to_string(), stats.hits.to_string()),
        ("misses".to_string(), stats.misses.to_string()),
        ("culled".to_string(), stats.culled.to_string()),
    ];
    if let Some(n) = shards {
        rows.insert(1, ("shards".to_string(), n.to_string()));
    }
    rows.extend(settings);
    for (name, counts) in &queues {
        let counts: Vec<String> = QUEUE_COUNTERS
            .iter()
            .zip(counts)
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        rows.push((format!("queue:{name}"), counts.join(" ")));
    }
    let width = rows.iter().map(|(name, _)| name.len()).max().unwrap_or(0);
    for (name, value) in rows {
        writeln!(out, "{name:<width$}  {value}").map_err(Failure::output)?;
    }
    Ok(Outcome::Done)
}

fn check(dir: &Path, fix: bool, grace: Duration, json: bool, out: &mut dyn Write) -> Result<Outcome, Failure> {
    let opts = CheckOptions::new().fix(fix).orphan_grace(grace);
    let access = if fix { Access::Existing } else { Access::ReadOnly };
    let mut warnings = Vec::new();
    for shard in Target::open(dir, access)?.shards() {
        warnings.extend(shard.check_with(&opts)?);
    }
    let remaining = warnings.iter().filter(|w| !w.fixed).count();
    if json {
        let list: Vec<Json> = warnings
            .iter()
            .map(|w| json!({ "kind": format!("{:?}", w.kind), "message": w.message, "fixed": w.fixed }))
            .collect();
        emit(out, &json!({ "warnings": list, "remaining": remaining }))?;
    } else {
        for w in &warnings {
            writeln!(out, "{:?}: {w}", w.kind).map_err(Failure::output)?;
        }
    }
    Ok(match remaining {
        0 => Outcome::Done,
        n if fix => Outcome::Inconsistent(format!("{n} inconsistencies could not be repaired")),
        n => Outcome::Inconsistent(format!("{n} inconsistencies found (diskq check --fix repairs them)")),
    })
}

fn get(dir: &Path, key: &Key, json: bool, out: &mut dyn Write) -> Result<Outcome, Failure> {
    let target = Target::open(dir, Access::ReadOnly)?;
    let cache = target.for_key(key);
    let absent = || Outcome::Absent(format!("no key {key}"));
    // Text and bytes are streamed from their file, never held whole in
    // memory. The cache is open read-only, so no get counts hits and
    // misses, and `read` loses nothing.
    if !json {
        match cache.read(key) {
            Ok(Some(mut reader)) => {
                copy(&mut reader, out, key)?;
                return Ok(Outcome::Done);
            }
            Ok(None) => return Ok(absent()),
            // A number or MessagePack value: read below.
            Err(Error::Decode { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    match cache.get::<Value>(key)? {
        Some(value) => {
            show_value(out, key, &value, json)?;
            Ok(Outcome::Done)
        }
        None => Ok(absent()),
    }
}

fn set(
    dir: &Path,
    key: &Key,
    value: &str,
    opts: &SetOptions,
    json: bool,
    out: &mut dyn Write,
) -> Result<Outcome, Failure> {
    if value == "-" {
        refuse_closed_stdin()?;
    }
    let target = Target::open(dir, Access::CreateIfNew)?;
    let cache = target.for_key(key);
    let size = if value == "-" {
        cache.set_reader(key, &mut io::stdin().lock(), opts)?
    } else {
        cache.set_with(key, value, opts)?;
        value.len() as u64
    };
    if json {
        emit(out, &json!({ "key": show::key_json(key), "size": size }))?;
    }
    Ok(Outcome::Done)
}

/// Every key, in insertion order (shard after shard for a fanout root).
fn keys(target: &Target, json: bool, out: &mut dyn Write) -> Result<Outcome, Failure> {
    let all = target.shards().iter().map(Cache::keys).collect::<Result<Vec<_>, _>>()?;
    let all = all.into_iter().flatten();
    if json {
        // One array, written as the keys come: a large cache is never held
        // in memory.
        out.write_all(b"[").map_err(Failure::output)?;
        for (i, key) in all.enumerate() {
            let sep = if i == 0 { "" } else { "," };
            write!(out, "{sep}{}", show::key_json(&key?)).map_err(Failure::output)?;
        }
        out.write_all(b"]\n").map_err(Failure::output)?;
    } else {
        for key in all {
            writeln!(out, "{}", show::key_line(&key?)).map_err(Failure::output)?;
        }
    }
    Ok(Outcome::Done)
}

fn push(dir: &Path, value: &str, opts: &PushOptions, json: bool, out: &mut dyn Write) -> Result<Outcome, Failure> {
    if value == "-" {
        refuse_closed_stdin()?;
    }
    let cache = dir::open(dir, Access::CreateQueueIfNew)?;
    let key = if value == "-" {
        // The library has no streaming push: the value is read whole.
        let mut bytes = Vec::new();
        io::stdin()
            .lock()
            .read_to_end(&mut bytes)
            .map_err(|e| Failure::new(format!("cannot read standard input: {e}")))?;
        cache.push_with(&Value::Binary(bytes), opts)?
    } else {
        cache.push_with(value, opts)?
    };
    if json {
        emit(out, &json!({ "key": show::key_json(&key) }))?;
    } else {
        writeln!(out, "{}", show::key_text(&key)).map_err(Failure::output)?;
    }
    Ok(Outcome::Done)
}

fn pull(
    dir: &Path,
    opts: &PullOptions,
    wait: Option<Duration>,
    dead_letter: bool,
    json: bool,
    out: &mut dyn Write,
) -> Result<Outcome, Failure> {
    if streams::stdout_closed() {
        // Checked first: the runtime put /dev/null there, and every write
        // would "succeed".
        return Err(Failure::new(
            "standard output is closed: nowhere to write the item, so the queue is left as it was",
        ));
    }
    let cache = dir::open(dir, Access::Existing)?;
    // A wait too long for the clock is as long as it can be.
    let deadline = wait.map(|wait| {
        let now = Instant::now();
        now.checked_add(wait)
            .or_else(|| now.checked_add(Duration::from_secs(100 * 365 * 24 * 3600)))
            .unwrap_or(now)
    });
    loop {
        match pull_written(&cache, opts, deadline, dead_letter, json, out) {
            Ok(true) => return Ok(Outcome::Done),
            Ok(false) => {}
            // The store's timeout ran out before the wait: try again.
            Err(Pulled::Locked) if deadline.is_some_and(|d| Instant::now() < d) => continue,
            Err(Pulled::Locked) => return Err(Error::Timeout.into()),
            Err(Pulled::Failed(f)) => return Err(f),
        }
        // Wait, taking no lock, until an item shows up (a push by any diskq
        // process wakes the wait at once).
        let left = deadline.map_or(Duration::ZERO, |d| d.saturating_duration_since(Instant::now()));
        if left.is_zero() || !cache.wait_for_queued(opts.prefix.as_deref(), left)? {
            let queue = opts.prefix.as_deref().map_or(String::new(), |p| format!(" {p:?}"));
            return Ok(Outcome::Absent(format!("the queue{queue} is empty")));
        }
    }
}

/// Why [`pull_written`] took nothing.
enum Pulled {
    /// The write lock stayed held by another process.
    Locked,
    /// Anything else: the command fails.
    Failed(Failure),
}

impl From<Error> for Pulled {
    fn from(e: Error) -> Pulled {
        match e {
            Error::Timeout => Pulled::Locked,
            e => Pulled::Failed(e.into()),
        }
    }
}

/// Takes one item and writes it, in one transaction: the item leaves the
/// queue only once it is written and flushed, and stays when the write
/// fails. False when the queue is empty. With a `deadline`, the write lock
/// is waited for until then at most, whatever the cache's timeout.
///
/// An item that cannot be read (a Python pickle) stays in the queue and
/// fails the pull, naming its key; with `dead_letter`, it is moved to the
/// queue's dead-letter queue (said on stderr once committed) and the next
/// item is taken.
///
/// The queue's write lock is held while the item is written: other writers
/// wait while a reader that does not read (a full pipe) holds the output,
/// and fail with a timeout past theirs, rather than an item being lost. A
/// lease would not hold the lock, but leases take only the front item and
/// hide the item's key until acked, from Python consumers too.
fn pull_written(
    cache: &Cache,
    opts: &PullOptions,
    deadline: Option<Instant>,
    dead_letter: bool,
    json: bool,
    out: &mut dyn Write,
) -> Result<bool, Pulled> {
    let dead_letters = match &opts.prefix {
        Some(p) => format!("{p}-dead-letter"),
        None => "dead-letter".to_string(),
    };
    let mut moved = Vec::new();
    let mut take = |c: &Cache| -> Result<bool, Failure> {
        let (key, value) = loop {
            match c.pull_with::<Value>(opts) {
                Ok(Some(item)) => break item,
                Ok(None) => return Ok(false),
                Err(e) if e.is_decode() && dead_letter => match c.dead_letter_undecodable::<Value>(opts)? {
                    Some(key) => moved.push(key),
                    None => return Err(e.into()),
                },
                Err(e) if e.is_decode() => {
                    return Err(Failure::new(format!(
                        "{e}; it stays in the queue (diskq pull --dead-letter moves it to the dead-letter \
                         queue {dead_letters:?})"
                    )));
                }
                Err(e) => return Err(e.into()),
            }
        };
        show_value(out, &key, &value, json)
            .and_then(|()| out.flush().map_err(Failure::output))
            .map_err(|f| Failure::new(format!("the item {key} was not written, and stays in the queue: {f}")))?;
        Ok(true)
    };
    let taken = match deadline {
        Some(deadline) => {
            let left = deadline.saturating_duration_since(Instant::now());
            cache.transact_timeout(left, |c| take(c).map_err(Pulled::Failed))?
        }
        None => cache.transact_with(opts.retry, |c| take(c).map_err(Pulled::Failed))?,
    };
    for key in moved {
        let _ = writeln!(
            io::stderr(),
            "diskq: moved the item {key}, which cannot be read, to the dead-letter queue {dead_letters:?}"
        );
    }
    Ok(taken)
}

/// Standard input closed is no empty value: refuse it before anything is
/// created or changed.
pub fn refuse_closed_stdin() -> Result<(), Failure> {
    if streams::stdin_closed() {
        return Err(Failure::new(
            "standard input is closed: no value to read (use `< /dev/null` for an empty one)",
        ));
    }
    Ok(())
}

pub fn show_value(out: &mut dyn Write, key: &Key, value: &Value, json: bool) -> Result<(), Failure> {
    if json {
        emit(out, &show::value_json(key, value))
    } else {
        show::write_value(out, value).map_err(Failure::output)
    }
}

/// Copies a stored value to the output, telling a failed read of the value
/// from a failed write.
fn copy(reader: &mut dyn Read, out: &mut dyn Write, key: &Key) -> Result<(), Failure> {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Failure::new(format!("cannot read the value of key {key}: {e}"))),
        };
        out.write_all(&buf[..n]).map_err(Failure::output)?;
    }
}

fn count(out: &mut dyn Write, json: bool, name: &str, n: usize) -> Result<Outcome, Failure> {
    if json {
        emit(out, &json!({ name: n }))?;
    } else {
        writeln!(out, "{n}").map_err(Failure::output)?;
    }
    Ok(Outcome::Done)
}

pub fn emit(out: &mut dyn Write, value: &Json) -> Result<(), Failure> {
    writeln!(out, "{value}").map_err(Failure::output)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_text_unless_asked_for_integers() {
        assert_eq!(parse_key("42", false).expect("text"), Key::from("42"));
        assert_eq!(parse_key("-42", true).expect("int"), Key::Int(-42));
        let err = parse_key("4x", true).expect_err("not an integer");
        assert!(err.to_string().contains("\"4x\" is not an integer key"), "{err}");
    }
}
