//! The command line: every subcommand and option, parsed by clap.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

/// Use a diskq (or python-diskcache) directory from the shell.
///
/// Exit status: 0 on success, 1 on an error (one line on stderr) or, for
/// `check`, while an inconsistency remains; 2 when the key or queue item
/// asked for is not there.
#[derive(Debug, Parser)]
#[command(name = "diskq", version, max_term_width = 100)]
pub struct Cli {
    /// Print machine-readable JSON instead of plain text.
    #[arg(long, global = true)]
    pub json: bool,

    /// Keys given on the command line are integers (default: text).
    #[arg(long, global = true)]
    pub int_key: bool,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands. Every one but `set` and `push` refuses a directory that
/// is not already a diskq or python-diskcache cache.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Item count, size, volume on disk, hits, misses and every setting.
    Stats {
        /// The cache directory.
        dir: PathBuf,
    },
    /// Check the database against the value files; exit status 1 while an
    /// inconsistency remains.
    Check {
        /// The cache directory.
        dir: PathBuf,
        /// Repair what is found (remove orphan files and rows whose file is
        /// gone or of the wrong length, correct sizes and counts).
        #[arg(long)]
        fix: bool,
        /// With --fix, a file no row names is removed only once it is this
        /// many seconds old: a writer (python-diskcache too) may still be
        /// writing a younger one and commit its row. 0 removes them at once,
        /// safe only while no process writes the directory.
        #[arg(long, value_name = "SECONDS", default_value_t = 3600)]
        grace: u64,
    },
    /// Print the value of KEY (text and bytes as they are, numbers as
    /// numbers, MessagePack values as JSON); exit status 2 when absent.
    Get {
        /// The cache directory.
        dir: PathBuf,
        /// The key (text, or an integer with --int-key).
        #[arg(allow_negative_numbers = true)]
        key: String,
    },
    /// Store VALUE (text; `-` streams bytes from standard input) under KEY.
    Set {
        /// The cache directory (created if needed).
        dir: PathBuf,
        /// The key (text, or an integer with --int-key).
        #[arg(allow_negative_numbers = true)]
        key: String,
        /// The value: text, or `-` for bytes read from standard input.
        #[arg(allow_negative_numbers = true)]
        value: String,
        /// Expire the item this many seconds from now (fractions allowed).
        #[arg(long, value_name = "SECS", value_parser = parse_secs, allow_negative_numbers = true)]
        expire: Option<Duration>,
        /// Tag the item, for `evict`.
        #[arg(long)]
        tag: Option<String>,
    },
    /// Delete KEY; exit status 2 when it was absent.
    Delete {
        /// The cache directory.
        dir: PathBuf,
        /// The key (text, or an integer with --int-key).
        #[arg(allow_negative_numbers = true)]
        key: String,
    },
    /// Print every live key, one a line, in insertion order.
    ///
    /// Integers as digits, floats with a point (`42.0`), text as it is
    /// unless it could be taken for another kind (then quoted: `"42"`),
    /// bytes as `b"..."`; --json gives typed keys. See cli/README.md.
    Keys {
        /// The cache directory.
        dir: PathBuf,
    },
    /// Print the number of live items.
    Len {
        /// The cache directory.
        dir: PathBuf,
    },
    /// Remove every item; print how many.
    Clear {
        /// The cache directory.
        dir: PathBuf,
    },
    /// Remove the expired items; print how many.
    Expire {
        /// The cache directory.
        dir: PathBuf,
    },
    /// Remove the items tagged TAG; print how many.
    Evict {
        /// The cache directory.
        dir: PathBuf,
        /// The tag.
        tag: String,
    },
    /// Push VALUE onto a queue (the back, unless --front); print its key.
    Push {
        /// The cache directory (created if needed).
        dir: PathBuf,
        /// The value: text, or `-` for bytes read from standard input.
        #[arg(allow_negative_numbers = true)]
        value: String,
        /// Push onto the front instead of the back.
        #[arg(long)]
        front: bool,
        /// The queue's name: keys become `P-<15 digits>` text instead of integers.
        #[arg(long, value_name = "P")]
        prefix: Option<String>,
    },
    /// Take the item at the front of a queue (the back with --back) and print
    /// its value; exit status 2 when the queue is empty after the wait.
    Pull {
        /// The cache directory.
        dir: PathBuf,
        /// Take from the back instead of the front.
        #[arg(long)]
        back: bool,
        /// The queue's name, as given to `push`.
        #[arg(long, value_name = "P")]
        prefix: Option<String>,
        /// Wait up to this many seconds for an item pushed by any process
        /// (a huge number waits as long as it can). The wait ends by then
        /// even while another process holds the cache's write lock.
        #[arg(long, value_name = "SECS", value_parser = parse_secs, allow_negative_numbers = true)]
        wait: Option<Duration>,
        /// Move an item that cannot be read (a Python pickle) to the
        /// dead-letter queue (`dead-letter`, or `P-dead-letter` with
        /// --prefix), name it on stderr, and take the next item. Without it
        /// such an item stays in the queue and the pull fails naming its key.
        #[arg(long)]
        dead_letter: bool,
    },
    /// Serve a live web page of DIR's queues, leases, dead letters and
    /// statistics, with a JSON API (`/api/...`) and Prometheus metrics
    /// (`/metrics`), until Ctrl-C.
    ///
    /// Every cache under DIR is shown (DIR itself, a FanoutCache root's
    /// shards and named deques, the folders of a crawl). Read-only: the
    /// directory is never written, unless --allow-writes. See cli/README.md.
    #[cfg(feature = "serve")]
    Serve {
        /// The directory: a cache, a FanoutCache root, or a folder of caches;
        /// or, built with the `postgres` feature, a PostgreSQL location
        /// `postgres://user:password@host/database#schema` (read-only).
        dir: PathBuf,
        /// The port (0: any free one, printed at start).
        #[arg(long, default_value_t = 7478)]
        port: u16,
        /// The address to listen on. Another than the loopback's makes the
        /// page reachable from other machines: nothing in it is secret from
        /// them then.
        #[arg(long, default_value = "127.0.0.1")]
        bind: std::net::IpAddr,
        /// Enable requeueing and purging dead letters from the page and the
        /// API: each POST needs the token printed at start.
        #[arg(long)]
        allow_writes: bool,
        /// Seconds between samples of the directory (fractions allowed).
        #[arg(long, value_name = "SECS", value_parser = parse_secs, default_value = "1")]
        interval: Duration,
        /// Minutes of samples kept for the charts.
        #[arg(long, value_name = "MINUTES", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=1440))]
        history: u64,
    },
    /// The verbs of `verbs.rs` (lease, ack, nack, renew, peek, incr, decr,
    /// dead-letters, requeue, completions).
    #[command(flatten)]
    Verb(crate::verbs::Verb),
}

/// A number of seconds (fractions allowed, not negative) as a `Duration`;
/// one too large for a `Duration` (`1e30`, `inf`) is the longest there is.
pub fn parse_secs(text: &str) -> Result<Duration, String> {
    let secs: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds"))?;
    if secs.is_nan() || secs < 0.0 {
        return Err(format!("{text:?} is not a number of seconds from 0 up"));
    }
    Ok(Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn seconds_parse_with_fractions_and_refuse_nonsense() {
        assert_eq!(parse_secs("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_secs("0"), Ok(Duration::ZERO));
        assert!(parse_secs("-1").is_err());
        assert!(parse_secs("NaN").is_err());
        assert!(parse_secs("soon").is_err());
        assert_eq!(parse_secs("1e19"), Ok(Duration::from_secs(10_000_000_000_000_000_000)));
        assert_eq!(parse_secs("1e30"), Ok(Duration::MAX));
        assert_eq!(parse_secs("inf"), Ok(Duration::MAX));
        assert!(parse_secs("-inf").is_err());
    }

    #[test]
    fn global_flags_go_before_or_after_the_subcommand() {
        let cli = Cli::try_parse_from(["diskq", "get", "d", "--int-key", "-5", "--json"]).expect("parses");
        assert!(cli.json && cli.int_key);
        match cli.command {
            Command::Get { key, .. } => assert_eq!(key, "-5"),
            other => panic!("parsed as {other:?}"),
        }
    }
}
