//! At-least-once work from the shell: `lease` takes an item for a while and
//! prints its lease id, and later `ack`, `nack` or `renew` runs (any
//! process) name the lease by that id. The dead-letter queue holds the items
//! that reached their delivery limit: `dead-letters` shows it, `requeue`
//! empties it back into its queue.

use std::io::{self, IsTerminal, Write};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use diskq::{Cache, Key, Lease, LeaseId, LeaseOptions, Side};
use rmpv::Value;
use serde_json::{Value as Json, json};

use crate::commands::{Outcome, emit};
use crate::dir::{self, Access};
use crate::failure::Failure;
use crate::show;
use crate::streams;

/// The duration of the options of a command that takes no lease: the
/// library reads only the queue and the delivery limits from them.
pub const UNUSED: Duration = Duration::from_secs(1);

/// What `Absent` says for an empty queue.
pub fn empty(prefix: Option<&str>) -> String {
    let queue = prefix.map_or(String::new(), |p| format!(" {p:?}"));
    format!("the queue{queue} is empty")
}

/// What `Absent` says for a lease that is gone.
fn lost(id: &LeaseId) -> String {
    format!("lease {id} is not held: it was acked or nacked, or it ran out and its item went back to the queue")
}

/// `diskq lease`: takes an item, then writes its value (stdout) and lease id
/// (stderr). An item whose value or id cannot be written is nacked at once,
/// so it goes to the next consumer instead of hiding until its lease runs out.
pub fn lease(
    dir: &Path,
    opts: &LeaseOptions,
    wait: Option<Duration>,
    json: bool,
    out: &mut dyn Write,
) -> Result<Outcome, Failure> {
    // Checked first: the runtime put /dev/null there, and writes would vanish.
    if streams::stdout_closed() || (!json && streams::stderr_closed()) {
        return Err(Failure::new(
            "standard output or error is closed: nowhere to write the item and its lease id, so nothing was leased",
        ));
    }
    let cache = dir::open(dir, Access::Existing)?;
    let taken = match wait {
        Some(wait) => cache.lease_timeout::<Value>(opts, wait)?,
        None => cache.lease::<Value>(opts)?,
    };
    let Some(lease) = taken else {
        return Ok(Outcome::Absent(empty(opts.prefix.as_deref())));
    };
    let id = lease.id();
    let written = if json {
        let mut shown = show::value_json(&Key::from(id.to_string()), lease.value());
        if let Some(map) = shown.as_object_mut() {
            map.remove("key");
            map.insert("lease".into(), Json::String(id.to_string()));
            map.insert("deliveries".into(), Json::from(lease.deliveries()));
            map.insert("deadline".into(), Json::from(unix_seconds(lease.deadline())));
        }
        emit(out, &shown).and_then(|()| out.flush().map_err(Failure::output))
    } else {
        // At a terminal the value (text has no newline of its own) and the
        // id would share a line; a file or pipe gets the id alone.
        let newline = if io::stdout().is_terminal() && io::stderr().is_terminal() {
            "\n"
        } else {
            ""
        };
        show::write_value(out, lease.value())
            .and_then(|()| out.flush())
            .and_then(|()| writeln!(io::stderr(), "{newline}{id}"))
            .map_err(Failure::output)
    };
    match written {
        Ok(()) => Ok(Outcome::Done),
        Err(failure) => {
            let back = lease.nack(Side::Front)?;
            let fate = if back {
                "is back in the queue"
            } else {
                "was lost meanwhile"
            };
            Err(Failure::new(format!(
                "the leased item was not written, and {fate}: {failure}"
            )))
        }
    }
}

/// The lease named by `text`, or why there is none.
fn resume(cache: &Cache, text: &str, opts: &LeaseOptions) -> Result<Result<Lease<Value>, Outcome>, Failure> {
    let id: LeaseId = text.parse()?;
    Ok(cache
        .resume_lease::<Value>(&id, opts)?
        .ok_or_else(|| Outcome::Absent(lost(&id))))
}

/// `diskq ack`.
pub fn ack(dir: &Path, text: &str, json: bool, out: &mut dyn Write) -> Result<Outcome, Failure> {
    let cache = dir::open(dir, Access::Existing)?;
    let lease = match resume(&cache, text, &LeaseOptions::new(UNUSED))? {
        Ok(lease) => lease,
        Err(absent) => return Ok(absent),
    };
    let id = lease.id();
    if !lease.ack()? {
        return Ok(Outcome::Absent(lost(&id)));
    }
    if json {
        emit(out, &json!({ "lease": id.to_string(), "acked": true }))?;
    }
    Ok(Outcome::Done)
}

/// `diskq nack`.
pub fn nack(
    dir: &Path,
    text: &str,
    opts: &LeaseOptions,
    side: Side,
    json: bool,
    out: &mut dyn Write,
) -> Result<Outcome, Failure> {
    let cache = dir::open(dir, Access::Existing)?;
    let lease = match resume(&cache, text, opts)? {
        Ok(lease) => lease,
        Err(absent) => return Ok(absent),
    };
    let id = lease.id();
    if !lease.nack(side)? {
        return Ok(Outcome::Absent(lost(&id)));
    }
    if json {
        emit(out, &json!({ "lease": id.to_string(), "nacked": true }))?;
    }
    Ok(Outcome::Done)
}

/// `diskq renew`.
pub fn renew(dir: &Path, text: &str, secs: Duration, json: bool, out: &mut dyn Write) -> Result<Outcome, Failure> {
    let cache = dir::open(dir, Access::Existing)?;
    let mut lease = match resume(&cache, text, &LeaseOptions::new(UNUSED))? {
        Ok(lease) => lease,
        Err(absent) => return Ok(absent),
    };
    if !lease.renew(secs)? {
        return Ok(Outcome::Absent(lost(&lease.id())));
    }
    if json {
        emit(
            out,
            &json!({ "lease": lease.id().to_string(), "deadline": unix_seconds(lease.deadline()) }),
        )?;
    }
    Ok(Outcome::Done)
}

/// `diskq dead-letters`: the count, or the items front first.
pub fn dead_letters(
    dir: &Path,
    opts: &LeaseOptions,
    list: bool,
    json: bool,
    out: &mut dyn Write,
) -> Result<Outcome, Failure> {
    let cache = dir::open(dir, Access::ReadOnly)?;
    let dead = opts.dead_letter_prefix();
    if !list {
        let n = cache.backlog(Some(&dead))?.queued;
        if json {
            emit(out, &json!({ "dead_letters": n }))?;
        } else {
            writeln!(out, "{n}").map_err(Failure::output)?;
        }
        return Ok(Outcome::Done);
    }
    // The queue's keys are `D-<15 digits>`: in key order, front first.
    let mut keys = Vec::new();
    for key in cache.keys()? {
        if let Key::Text(text) = key? {
            let number = text.strip_prefix(&dead).and_then(|rest| rest.strip_prefix('-'));
            if number.is_some_and(|n| n.len() == 15 && n.bytes().all(|b| b.is_ascii_digit())) {
                keys.push(text);
            }
        }
    }
    keys.sort_unstable();
    let mut items = Vec::new();
    for text in keys {
        let key = Key::Text(text);
        // Gone meanwhile (requeued or expired): not a dead letter any more.
        if let Some(value) = cache.get::<Value>(key.clone())? {
            let item = show::value_json(&key, &value);
            if json {
                items.push(item);
            } else {
                emit(out, &item)?;
            }
        }
    }
    if json {
        emit(out, &Json::Array(items))?;
    }
    Ok(Outcome::Done)
}

/// `diskq leases`: the running leases of a queue, read-only.
pub fn leases(
    dir: &Path,
    prefix: Option<&str>,
    limit: usize,
    json: bool,
    out: &mut dyn Write,
) -> Result<Outcome, Failure> {
    let cache = dir::open(dir, Access::ReadOnly)?;
    let now = unix_seconds(SystemTime::now());
    let items: Vec<Json> = cache
        .running_leases(prefix, limit)?
        .into_iter()
        .map(|lease| {
            let deadline = unix_seconds(lease.deadline);
            json!({
                "key": show::key_json(&lease.key),
                "deadline": deadline,
                "expired": deadline <= now,
                "deliveries": lease.deliveries,
                "last_error": lease.last_error,
                "size": lease.size,
            })
        })
        .collect();
    if json {
        emit(out, &Json::Array(items))?;
    } else {
        for item in &items {
            emit(out, item)?;
        }
    }
    Ok(Outcome::Done)
}

/// `diskq requeue`.
pub fn requeue(dir: &Path, opts: &LeaseOptions, json: bool, out: &mut dyn Write) -> Result<Outcome, Failure> {
    let moved = dir::open(dir, Access::Existing)?.requeue_dead_letters(opts)?;
    if json {
        emit(out, &json!({ "requeued": moved }))?;
    } else {
        writeln!(out, "{moved}").map_err(Failure::output)?;
    }
    Ok(Outcome::Done)
}

/// A lease deadline as the `--json` output shows it: seconds since the Unix
/// epoch (negative before it).
pub(crate) fn unix_seconds(t: SystemTime) -> f64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(since) => since.as_secs_f64(),
        Err(before) => -before.duration().as_secs_f64(),
    }
}
