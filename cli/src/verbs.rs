//! The verbs added to the first set: at-least-once work from the shell
//! (`lease`, `ack`, `nack`, `renew`, and the dead letters, in
//! `lease_cmds.rs`), `peek`, `incr` / `decr`, and shell completions.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, CommandFactory, Subcommand};
use clap_complete::Shell;
use diskq::{PullOptions, Side};
use rmpv::Value;
use serde_json::json;

use crate::args::{Cli, parse_secs};
use crate::commands::{Outcome, emit, parse_key, show_value};
use crate::dir::{self, Access};
use crate::failure::Failure;
use crate::lease_cmds;
use crate::show;
use crate::target::Target;

/// The subcommands of this module, flattened into [`crate::args::Command`].
#[derive(Debug, Subcommand)]
pub enum Verb {
    /// Lease the front item of a queue: print its value, and its lease id on stderr.
    ///
    /// At-least-once work: the value goes to stdout (as `get` prints it) and
    /// the lease id to stderr (with --json, both in one JSON object on
    /// stdout). The item stays in the
    /// directory, hidden from other consumers, until `ack` (done), `nack`
    /// (back in the queue) or the lease runs out (back to the next lease).
    /// Exit status 2 when nothing is available.
    Lease {
        /// The cache directory.
        dir: PathBuf,
        /// How long the item stays hidden (fractions allowed).
        #[arg(long, value_name = "SECS", value_parser = parse_secs, default_value = "60")]
        secs: Duration,
        /// The queue's name, as given to `push`.
        #[arg(long, value_name = "P")]
        prefix: Option<String>,
        /// Wait up to this many seconds for an item pushed by any process
        /// or freed by a lease that runs out.
        #[arg(long, value_name = "SECS", value_parser = parse_secs)]
        wait: Option<Duration>,
        #[command(flatten)]
        letters: DeadLetterArgs,
    },
    /// Done: delete the leased item.
    ///
    /// Exit status 2 when the lease is no longer held (it ran out and the item went to another lease, or it
    /// was acked or nacked already).
    Ack {
        /// The cache directory.
        dir: PathBuf,
        /// The lease id `lease` printed.
        lease: String,
    },
    /// Not done: put the leased item back in its queue now.
    ///
    /// At the front, or the back with --back; in the dead-letter queue
    /// instead once it had --max-deliveries deliveries. Exit status 2 when the lease is no
    /// longer held.
    Nack {
        /// The cache directory.
        dir: PathBuf,
        /// The lease id `lease` printed.
        lease: String,
        /// Put the item at the back of the queue instead of the front.
        #[arg(long)]
        back: bool,
        #[command(flatten)]
        letters: DeadLetterArgs,
    },
    /// Heartbeat: the lease now runs until SECS from now.
    ///
    /// Exit status 2 when the lease is no longer held.
    Renew {
        /// The cache directory.
        dir: PathBuf,
        /// The lease id `lease` printed.
        lease: String,
        /// The new time left (fractions allowed).
        #[arg(long, value_name = "SECS", value_parser = parse_secs)]
        secs: Duration,
    },
    /// Print the item at the front of a queue (the back with --back), leaving it there.
    ///
    /// Exit status 2 when the queue is empty.
    Peek {
        /// The cache directory.
        dir: PathBuf,
        /// Look at the back instead of the front.
        #[arg(long)]
        back: bool,
        /// The queue's name, as given to `push`.
        #[arg(long, value_name = "P")]
        prefix: Option<String>,
    },
    /// Add AMOUNT to the integer under KEY, atomically; print the new value.
    ///
    /// An absent key starts at --default.
    Incr(Counter),
    /// Subtract AMOUNT from the integer under KEY, atomically; print the new value.
    ///
    /// An absent key starts at --default.
    Decr(Counter),
    /// Print how many items the dead-letter queue holds; --list shows them.
    ///
    /// Dead letters are the items that reached --max-deliveries.
    DeadLetters {
        /// The cache directory.
        dir: PathBuf,
        /// The leased queue's name, as given to `push` and `lease`.
        #[arg(long, value_name = "P")]
        prefix: Option<String>,
        /// The dead-letter queue's name (default: `dead-letter`, or
        /// `P-dead-letter` with --prefix).
        #[arg(long = "dead-letter-queue", value_name = "D")]
        dead_letter: Option<String>,
        /// List the dead letters, front first: one JSON object a line
        /// (`{"key":..,"kind":..,"value":..}`), or one JSON array with --json.
        #[arg(long)]
        list: bool,
    },
    /// Move every dead letter back to the back of its queue; print how many.
    ///
    /// Their delivery counts start again from zero.
    Requeue {
        /// The cache directory.
        dir: PathBuf,
        /// The leased queue's name, as given to `push` and `lease`.
        #[arg(long, value_name = "P")]
        prefix: Option<String>,
        /// The dead-letter queue's name (default: `dead-letter`, or
        /// `P-dead-letter` with --prefix).
        #[arg(long = "dead-letter-queue", value_name = "D")]
        dead_letter: Option<String>,
    },
    /// List a queue's running leases (any process's), the first to run out first.
    ///
    /// One JSON object a line (`{"key", "deadline", "expired", "deliveries",
    /// "last_error", "size"}`), or one JSON array with --json.
    Leases {
        /// The cache directory.
        dir: PathBuf,
        /// The queue's name, as given to `push` and `lease`.
        #[arg(long, value_name = "P")]
        prefix: Option<String>,
        /// List at most N (1 to 10000).
        #[arg(long, value_name = "N", default_value_t = 100,
              value_parser = clap::value_parser!(u32).range(1..=10_000))]
        limit: u32,
    },
    /// Print a completion script for SHELL.
    ///
    /// For example `diskq completions bash >
    /// ~/.local/share/bash-completion/completions/diskq`.
    Completions {
        /// The shell.
        shell: Shell,
    },
}

/// What happens to an item that keeps coming back.
#[derive(Debug, Args)]
pub struct DeadLetterArgs {
    /// After this many deliveries, an item whose lease runs out or that is
    /// nacked goes to the dead-letter queue instead (give the same number
    /// to `lease` and `nack`).
    #[arg(long, value_name = "N")]
    pub max_deliveries: Option<u32>,
    /// The dead-letter queue's name (default: `dead-letter`, or
    /// `P-dead-letter` for the queue P).
    #[arg(long = "dead-letter-queue", value_name = "D")]
    pub dead_letter: Option<String>,
}

/// The arguments of `incr` and `decr`.
#[derive(Debug, Args)]
pub struct Counter {
    /// The cache directory.
    dir: PathBuf,
    /// The key (text, or an integer with --int-key).
    #[arg(allow_negative_numbers = true)]
    key: String,
    /// How much to add (incr) or subtract (decr).
    #[arg(default_value_t = 1, allow_negative_numbers = true)]
    amount: i64,
    /// The value an absent key starts from.
    #[arg(long, value_name = "N", default_value_t = 0, allow_negative_numbers = true)]
    default: i64,
}

/// Runs one of this module's verbs.
pub fn run(verb: &Verb, cli: &Cli, out: &mut dyn Write) -> Result<Outcome, Failure> {
    let json = cli.json;
    match verb {
        Verb::Lease {
            dir,
            secs,
            prefix,
            wait,
            letters,
        } => lease_cmds::lease(dir, &letters.options(prefix.clone(), *secs), *wait, json, out),
        Verb::Ack { dir, lease } => lease_cmds::ack(dir, lease, json, out),
        Verb::Nack {
            dir,
            lease,
            back,
            letters,
        } => {
            let side = if *back { Side::Back } else { Side::Front };
            lease_cmds::nack(dir, lease, &letters.options(None, lease_cmds::UNUSED), side, json, out)
        }
        Verb::Renew { dir, lease, secs } => lease_cmds::renew(dir, lease, *secs, json, out),
        Verb::Peek { dir, back, prefix } => {
            let mut opts = PullOptions::new().side(if *back { Side::Back } else { Side::Front });
            opts.prefix = prefix.clone();
            let cache = dir::open(dir, Access::ReadOnly)?;
            match cache.peek_with::<Value>(&opts)? {
                Some((key, value)) => {
                    show_value(out, &key, &value, json)?;
                    Ok(Outcome::Done)
                }
                None => Ok(Outcome::Absent(lease_cmds::empty(prefix.as_deref()))),
            }
        }
        Verb::Incr(counter) => count(counter, false, cli, out),
        Verb::Decr(counter) => count(counter, true, cli, out),
        Verb::DeadLetters {
            dir,
            prefix,
            dead_letter,
            list,
        } => {
            let letters = DeadLetterArgs {
                max_deliveries: None,
                dead_letter: dead_letter.clone(),
            };
            lease_cmds::dead_letters(
                dir,
                &letters.options(prefix.clone(), lease_cmds::UNUSED),
                *list,
                json,
                out,
            )
        }
        Verb::Requeue {
            dir,
            prefix,
            dead_letter,
        } => {
            let letters = DeadLetterArgs {
                max_deliveries: None,
                dead_letter: dead_letter.clone(),
            };
            lease_cmds::requeue(dir, &letters.options(prefix.clone(), lease_cmds::UNUSED), json, out)
        }
        Verb::Leases { dir, prefix, limit } => lease_cmds::leases(dir, prefix.as_deref(), *limit as usize, json, out),
        Verb::Completions { shell } => {
            // Into memory first: the generator panics when a write fails.
            let mut script = Vec::new();
            clap_complete::generate(*shell, &mut Cli::command(), "diskq", &mut script);
            out.write_all(&script).map_err(Failure::output)?;
            Ok(Outcome::Done)
        }
    }
}

impl DeadLetterArgs {
    /// The lease options of the queue `prefix`, with these limits.
    fn options(&self, prefix: Option<String>, duration: Duration) -> diskq::LeaseOptions {
        let mut opts = diskq::LeaseOptions::new(duration);
        opts.prefix = prefix;
        opts.max_deliveries = self.max_deliveries;
        opts.dead_letter = self.dead_letter.clone();
        opts
    }
}

/// `incr` (or `decr`): one atomic update, routed to its shard in a fanout root.
fn count(counter: &Counter, down: bool, cli: &Cli, out: &mut dyn Write) -> Result<Outcome, Failure> {
    let key = parse_key(&counter.key, cli.int_key)?;
    let target = Target::open(&counter.dir, Access::Existing)?;
    let cache = target.for_key(&key);
    let value = if down {
        cache.decr(key.clone(), counter.amount, counter.default)?
    } else {
        cache.incr(key.clone(), counter.amount, counter.default)?
    };
    if cli.json {
        emit(out, &json!({ "key": show::key_json(&key), "value": value }))?;
    } else {
        writeln!(out, "{value}").map_err(Failure::output)?;
    }
    Ok(Outcome::Done)
}
