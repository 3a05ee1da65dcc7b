//! `/metrics`: the latest sample in Prometheus' text format (version
//! 0.0.4), one series per cache and queue, labelled `cache` (its id) and
//! `queue` (its prefix, `""` for the integer-keyed queue).

use std::fmt::Write as _;

use super::sample::{Sample, queue_name};

/// The Content-Type of the text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Each exported number: its name, type, help, and where it comes from.
struct Family {
    name: &'static str,
    kind: &'static str,
    help: &'static str,
    /// The gauge or counter of a cache sample (`cache:`), a gauge of a
    /// queue sample (`queue:`) or a counter of one (`queue_counter:`).
    source: &'static str,
}

const FAMILIES: &[Family] = &[
    Family {
        name: "diskq_cache_items",
        kind: "gauge",
        help: "Rows in the cache, expired ones included.",
        source: "cache:items",
    },
    Family {
        name: "diskq_cache_size_bytes",
        kind: "gauge",
        help: "Bytes of the value files.",
        source: "cache:size",
    },
    Family {
        name: "diskq_cache_volume_bytes",
        kind: "gauge",
        help: "Bytes on disk: database pages and value files.",
        source: "cache:volume",
    },
    Family {
        name: "diskq_cache_size_limit_bytes",
        kind: "gauge",
        help: "The size limit culling keeps the cache under.",
        source: "cache:size_limit",
    },
    Family {
        name: "diskq_cache_hits_total",
        kind: "counter",
        help: "Gets that found a live item (while statistics are on).",
        source: "cache:hits",
    },
    Family {
        name: "diskq_cache_misses_total",
        kind: "counter",
        help: "Gets that found nothing (while statistics are on).",
        source: "cache:misses",
    },
    Family {
        name: "diskq_cache_culled_total",
        kind: "counter",
        help: "Live items removed for the size limit.",
        source: "cache:culled",
    },
    Family {
        name: "diskq_queue_depth",
        kind: "gauge",
        help: "Items in the queue, ready to pop or lease.",
        source: "queue:queued",
    },
    Family {
        name: "diskq_queue_leased",
        kind: "gauge",
        help: "Items leased and not yet acked or nacked.",
        source: "queue:leased",
    },
    Family {
        name: "diskq_queue_expired_leases",
        kind: "gauge",
        help: "Leases that ran out and wait for the next lease call.",
        source: "queue:expired_leases",
    },
    Family {
        name: "diskq_queue_dead_letters",
        kind: "gauge",
        help: "Items in the queue's dead-letter queue.",
        source: "queue:dead_letters",
    },
    Family {
        name: "diskq_queue_scheduled",
        kind: "gauge",
        help: "Items pushed or put back with a delay, not due yet.",
        source: "queue:scheduled",
    },
    Family {
        name: "diskq_queue_pushed_total",
        kind: "counter",
        help: "Items pushed onto the queue (by diskq; python-diskcache's pushes are not counted).",
        source: "queue_counter:pushed",
    },
    Family {
        name: "diskq_queue_popped_total",
        kind: "counter",
        help: "Items popped (at-most-once).",
        source: "queue_counter:popped",
    },
    Family {
        name: "diskq_queue_leased_total",
        kind: "counter",
        help: "Leases given, redeliveries included.",
        source: "queue_counter:leased",
    },
    Family {
        name: "diskq_queue_acked_total",
        kind: "counter",
        help: "Leases acked while still held.",
        source: "queue_counter:acked",
    },
    Family {
        name: "diskq_queue_nacked_total",
        kind: "counter",
        help: "Leases nacked while still held.",
        source: "queue_counter:nacked",
    },
    Family {
        name: "diskq_queue_redelivered_total",
        kind: "counter",
        help: "Leases that ran out and whose item a later lease call found.",
        source: "queue_counter:redelivered",
    },
    Family {
        name: "diskq_queue_dead_lettered_total",
        kind: "counter",
        help: "Items moved to the queue's dead-letter queue.",
        source: "queue_counter:dead_lettered",
    },
    Family {
        name: "diskq_queue_scheduled_total",
        kind: "counter",
        help: "Items pushed with a delay or put back with one.",
        source: "queue_counter:scheduled",
    },
];

/// The exposition of `sample`.
pub fn render(sample: &Sample) -> String {
    let mut out = String::new();
    for family in FAMILIES {
        let _ = writeln!(out, "# HELP {} {}", family.name, family.help);
        let _ = writeln!(out, "# TYPE {} {}", family.name, family.kind);
        let (scope, field) = family.source.split_once(':').unwrap_or(("", family.source));
        for cache in &sample.caches {
            if scope == "cache" {
                let value = cache.gauges.get(field).or_else(|| cache.counters.get(field));
                if let Some(v) = value {
                    let _ = writeln!(out, "{}{{cache=\"{}\"}} {v}", family.name, escape(&cache.id));
                }
                continue;
            }
            for queue in &cache.queues {
                let value = match scope {
                    "queue_counter" => queue.counters.get(field),
                    _ => queue.gauges.get(field),
                };
                if let Some(v) = value {
                    let _ = writeln!(
                        out,
                        "{}{{cache=\"{}\",queue=\"{}\"}} {v}",
                        family.name,
                        escape(&cache.id),
                        escape(&queue_name(&queue.queue))
                    );
                }
            }
        }
    }
    let unreadable = sample.caches.iter().filter(|c| c.error.is_some()).count();
    let _ = writeln!(
        out,
        "# HELP diskq_serve_unreadable_caches Caches the last sample could not read."
    );
    let _ = writeln!(out, "# TYPE diskq_serve_unreadable_caches gauge");
    let _ = writeln!(out, "diskq_serve_unreadable_caches {unreadable}");
    out
}

/// A label value as the text format wants it: `\`, `"` and newlines escaped.
fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
