//! What the server samples every interval: each cache's statistics and
//! each queue's counts, kept in memory for the last minutes, from which
//! the rates are computed.
//!
//! Every number of a sample is a gauge (a depth, a size) or a counter (a
//! count that only grows, such as hits). Rates are computed the same way
//! for every counter (its rise over a window, per second, as Prometheus'
//! `rate` does) and for the depth gauges (their change per second). The
//! library's per-queue counters ([`diskq::QueueStats`]: pushed, popped,
//! leased, acked, nacked, redelivered, dead-lettered, scheduled) are the
//! counters of a [`QueueSample`]: their rates say how fast work moves
//! (a depth that stays put while items are pushed and acked at the same
//! pace has a change of zero, and a push rate that is not).

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value as Json, json};

use super::inspect::{DeadLetter, LeaseInfo, Location, Queue, dead_letter_queue};
use crate::failure::Failure;

/// Leases and dead letters kept per queue in a sample (the page's tables);
/// `/api/queue` lists more.
pub const LISTED: usize = 20;

/// One cache at one moment.
#[derive(Debug, Clone)]
pub struct CacheSample {
    /// The [`Location`]'s id.
    pub id: String,
    pub gauges: BTreeMap<&'static str, f64>,
    pub counters: BTreeMap<&'static str, f64>,
    pub queues: Vec<QueueSample>,
    /// Why this cache could not be read this time, if it could not.
    pub error: Option<String>,
}

/// One queue at one moment.
#[derive(Debug, Clone)]
pub struct QueueSample {
    pub queue: Queue,
    pub gauges: BTreeMap<&'static str, f64>,
    pub counters: BTreeMap<&'static str, f64>,
    pub leases: Vec<LeaseInfo>,
    pub dead_letters: Vec<DeadLetter>,
}

/// Every cache at one moment.
#[derive(Debug, Clone)]
pub struct Sample {
    /// Seconds since the Unix epoch.
    pub at: f64,
    pub caches: Vec<CacheSample>,
}

/// The current time in seconds since the Unix epoch.
pub fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Reads every cache once. A cache that cannot be read (a writer holds a
/// lock SQLite waits on past the timeout, a file vanished) is sampled with
/// its error instead of failing the whole sample.
pub fn take(locations: &[Arc<Location>]) -> Sample {
    let at = now();
    let caches = locations.iter().map(|loc| sample_cache(loc, at)).collect();
    Sample { at, caches }
}

fn sample_cache(loc: &Location, at: f64) -> CacheSample {
    let mut sample = CacheSample {
        id: loc.id.clone(),
        gauges: BTreeMap::new(),
        counters: BTreeMap::new(),
        queues: Vec::new(),
        error: None,
    };
    if let Err(e) = fill_cache(loc, at, &mut sample) {
        sample.error = Some(e.to_string());
    }
    sample
}

fn fill_cache(loc: &Location, at: f64, sample: &mut CacheSample) -> Result<(), Failure> {
    let cache = &loc.cache;
    let (count, size) = loc.count_and_size()?;
    let stats = cache.stats()?;
    sample.gauges.insert("items", count as f64);
    if let Some(size) = size {
        sample.gauges.insert("size", size as f64);
    }
    sample.gauges.insert("volume", cache.volume()? as f64);
    sample.gauges.insert("size_limit", cache.size_limit() as f64);
    sample.counters.insert("hits", stats.hits as f64);
    sample.counters.insert("misses", stats.misses as f64);
    sample.counters.insert("culled", stats.culled as f64);
    for queue in loc.queues()? {
        let backlog = cache.backlog(queue.as_deref())?;
        let dead = cache.backlog(Some(&dead_letter_queue(&queue)))?;
        let leases = if backlog.leased > 0 {
            loc.leases(&queue, LISTED)?
        } else {
            Vec::new()
        };
        let dead_letters = if dead.queued > 0 {
            loc.dead_letters(&queue, LISTED)?
        } else {
            Vec::new()
        };
        // The lists are read a moment after the counts: a list not cut
        // short is the fresher count, and the page agrees with itself.
        let fresher = |count: usize, listed: usize| if listed < LISTED { listed } else { count.max(listed) };
        let mut gauges = BTreeMap::new();
        gauges.insert("queued", backlog.queued as f64);
        gauges.insert("scheduled", backlog.scheduled as f64);
        gauges.insert("leased", fresher(backlog.leased, leases.len()) as f64);
        gauges.insert("dead_letters", fresher(dead.queued, dead_letters.len()) as f64);
        // Leases that ran out are counted as leased until the next lease
        // call hands their items out again.
        let expired = leases.iter().filter(|l| l.deadline <= at).count();
        gauges.insert("expired_leases", expired as f64);
        let stats = cache.queue_stats(queue.as_deref())?;
        let counters = BTreeMap::from([
            ("pushed", stats.pushed as f64),
            ("popped", stats.popped as f64),
            ("leased", stats.leased as f64),
            ("acked", stats.acked as f64),
            ("nacked", stats.nacked as f64),
            ("redelivered", stats.redelivered as f64),
            ("dead_lettered", stats.dead_lettered as f64),
            ("scheduled", stats.scheduled as f64),
        ]);
        sample.queues.push(QueueSample {
            queue,
            gauges,
            counters,
            leases,
            dead_letters,
        });
    }
    Ok(())
}

/// The samples of the last minutes, oldest first.
#[derive(Debug)]
pub struct History {
    samples: VecDeque<Arc<Sample>>,
    capacity: usize,
}

impl History {
    /// Keeps `capacity` samples at most (at least 2, for a rate).
    pub fn new(capacity: usize) -> History {
        History {
            samples: VecDeque::new(),
            capacity: capacity.max(2),
        }
    }

    /// Adds the latest sample. Only the latest keeps its lease and
    /// dead-letter lists (the charts need the numbers alone), so the
    /// history's memory is its numbers'.
    pub fn push(&mut self, sample: Sample) {
        if self.samples.len() == self.capacity {
            self.samples.pop_front();
        }
        if let Some(previous) = self.samples.back_mut() {
            let listed = previous
                .caches
                .iter()
                .flat_map(|c| &c.queues)
                .any(|q| !q.leases.is_empty() || !q.dead_letters.is_empty());
            if listed {
                let mut numbers = Sample::clone(previous);
                for queue in numbers.caches.iter_mut().flat_map(|c| c.queues.iter_mut()) {
                    queue.leases = Vec::new();
                    queue.dead_letters = Vec::new();
                }
                *previous = Arc::new(numbers);
            }
        }
        self.samples.push_back(Arc::new(sample));
    }

    pub fn latest(&self) -> Option<Arc<Sample>> {
        self.samples.back().cloned()
    }

    /// The samples taken after `since` (seconds since the epoch).
    pub fn since(&self, since: f64) -> Vec<Arc<Sample>> {
        self.samples.iter().filter(|s| s.at > since).cloned().collect()
    }

    /// The oldest sample at most `window` seconds older than the latest:
    /// the start of a rate over that window.
    pub fn window_start(&self, window: f64) -> Option<Arc<Sample>> {
        let latest = self.samples.back()?;
        self.samples
            .iter()
            .find(|s| latest.at - s.at <= window)
            .filter(|s| s.at < latest.at)
            .cloned()
    }
}

/// Per-second rates of a cache between two samples: each counter's rise
/// (a counter that went down was reset: its rate is its new value), and
/// each queue's depth change, keyed as `<name>_per_s`.
pub fn rates(from: &Sample, to: &Sample, cache: &str) -> Json {
    let secs = to.at - from.at;
    let (Some(a), Some(b)) = (find(from, cache), find(to, cache)) else {
        return Json::Object(Map::new());
    };
    if secs <= 0.0 {
        return Json::Object(Map::new());
    }
    let mut out = Map::new();
    for (name, now) in &b.counters {
        let before = a.counters.get(name).copied().unwrap_or(0.0);
        let rise = if *now >= before { now - before } else { *now };
        out.insert(format!("{name}_per_s"), json!(rise / secs));
    }
    let mut queues = Map::new();
    for q in &b.queues {
        let mut rates = Map::new();
        // A queue not seen then was empty then (every queue seen stays
        // listed), unless the cache could not be read.
        let old = a.queues.iter().find(|o| o.queue == q.queue);
        if old.is_some() || a.error.is_none() {
            let before = |map: fn(&QueueSample) -> &BTreeMap<&'static str, f64>, name: &str| {
                old.and_then(|o| map(o).get(name).copied()).unwrap_or(0.0)
            };
            for (name, now) in &q.counters {
                let before = before(|o| &o.counters, name);
                let rise = if *now >= before { now - before } else { *now };
                rates.insert(format!("{name}_per_s"), json!(rise / secs));
            }
            for name in ["queued", "dead_letters"] {
                let delta = q.gauges.get(name).copied().unwrap_or(0.0) - before(|o| &o.gauges, name);
                rates.insert(format!("{name}_change_per_s"), json!(delta / secs));
            }
        }
        queues.insert(queue_name(&q.queue), Json::Object(rates));
    }
    out.insert("queues".into(), Json::Object(queues));
    Json::Object(out)
}

fn find<'s>(sample: &'s Sample, cache: &str) -> Option<&'s CacheSample> {
    sample.caches.iter().find(|c| c.id == cache)
}

/// A queue's name as a JSON map key: its prefix, or `""` for the
/// integer-keyed queue (whose JSON `queue` field is `null`).
pub fn queue_name(queue: &Queue) -> String {
    queue.clone().unwrap_or_default()
}

/// A queue as JSON: its prefix, or `null` for the integer-keyed one.
pub fn queue_json(queue: &Queue) -> Json {
    queue.as_ref().map_or(Json::Null, |p| Json::String(p.clone()))
}

/// Numbers as JSON: whole ones as integers (`4`, not `4.0`).
pub fn numbers(map: &BTreeMap<&'static str, f64>) -> Json {
    Json::Object(map.iter().map(|(k, v)| (k.to_string(), number(*v))).collect())
}

/// A number as JSON: a whole one as an integer.
pub fn number(v: f64) -> Json {
    if v.fract() == 0.0 && v.abs() < 9.0e15 {
        Json::from(v as i64)
    } else {
        json!(v)
    }
}

/// A compact sample for the charts: per cache, its numbers and each
/// queue's, without the lease and dead-letter lists.
pub fn compact(sample: &Sample) -> Json {
    let caches: Map<String, Json> = sample
        .caches
        .iter()
        .map(|c| {
            let queues: Vec<Json> = c
                .queues
                .iter()
                .map(|q| json!({ "queue": queue_json(&q.queue), "gauges": numbers(&q.gauges), "counters": numbers(&q.counters) }))
                .collect();
            (
                c.id.clone(),
                json!({ "gauges": numbers(&c.gauges), "counters": numbers(&c.counters), "queues": queues }),
            )
        })
        .collect();
    json!({ "at": sample.at, "caches": caches })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(at: f64, hits: f64, queued: f64) -> Sample {
        let mut counters = BTreeMap::new();
        counters.insert("hits", hits);
        let mut gauges = BTreeMap::new();
        gauges.insert("queued", queued);
        Sample {
            at,
            caches: vec![CacheSample {
                id: ".".into(),
                gauges: BTreeMap::new(),
                counters,
                queues: vec![QueueSample {
                    queue: None,
                    gauges,
                    counters: BTreeMap::new(),
                    leases: Vec::new(),
                    dead_letters: Vec::new(),
                }],
                error: None,
            }],
        }
    }

    #[test]
    fn rates_are_rises_per_second_and_depth_changes() {
        let r = rates(&sample(10.0, 5.0, 100.0), &sample(12.0, 9.0, 90.0), ".");
        assert_eq!(r["hits_per_s"], json!(2.0));
        assert_eq!(r["queues"][""]["queued_change_per_s"], json!(-5.0));
        // A counter that went down was reset (statistics cleared).
        let r = rates(&sample(10.0, 50.0, 0.0), &sample(12.0, 4.0, 0.0), ".");
        assert_eq!(r["hits_per_s"], json!(2.0));
        assert_eq!(
            rates(&sample(10.0, 0.0, 0.0), &sample(12.0, 0.0, 0.0), "nope"),
            json!({})
        );
    }

    #[test]
    fn history_keeps_its_capacity_and_finds_windows() {
        let mut h = History::new(3);
        for i in 0..5 {
            h.push(sample(f64::from(i), 0.0, 0.0));
        }
        assert_eq!(h.since(-1.0).len(), 3);
        assert_eq!(h.since(3.0).len(), 1);
        assert_eq!(h.latest().map(|s| s.at), Some(4.0));
        assert_eq!(h.window_start(1.5).map(|s| s.at), Some(3.0));
        assert_eq!(h.window_start(60.0).map(|s| s.at), Some(2.0));
        assert!(h.window_start(0.5).is_none(), "no older sample in the window");
    }

    #[test]
    fn only_the_latest_sample_keeps_its_lists() {
        let listed = |at: f64| {
            let mut s = sample(at, 0.0, 1.0);
            s.caches[0].queues[0].dead_letters.push(DeadLetter {
                key: "dead-letter-500000000000000".into(),
                size: 1,
                deliveries: None,
                last_error: None,
                dead_at: None,
                preview: None,
            });
            s
        };
        let mut h = History::new(10);
        h.push(listed(1.0));
        h.push(listed(2.0));
        let all = h.since(0.0);
        assert!(all[0].caches[0].queues[0].dead_letters.is_empty());
        assert_eq!(all[0].caches[0].queues[0].gauges["queued"], 1.0, "the numbers stay");
        assert_eq!(all[1].caches[0].queues[0].dead_letters.len(), 1);
    }
}
