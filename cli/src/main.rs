//! `diskq`: use a diskq or python-diskcache directory from the shell.
//!
//! ```text
//! diskq set DIR KEY VALUE [--expire SECS] [--tag TAG]   # VALUE `-` streams stdin
//! diskq get DIR KEY
//! diskq push DIR VALUE [--front] [--prefix P]           # prints the key
//! diskq pull DIR [--back] [--prefix P] [--wait SECS] [--dead-letter]  # status 2: empty
//! diskq lease DIR [--secs S] [--prefix P]               # value on stdout, lease id on stderr
//! diskq ack DIR LEASE | nack DIR LEASE [--back] | renew DIR LEASE --secs S
//! diskq stats DIR | check DIR [--fix] | keys DIR | len DIR | ...
//! diskq serve DIR [--port N] [--bind ADDR] [--allow-writes]  # a live web page
//! ```
//!
//! Exit status: 0 done, 1 error (one line on stderr) or inconsistency left by
//! `check`, 2 key or queue item not there (said on stderr only when it is a
//! terminal). See `cli/README.md`.

mod args;
mod commands;
mod dir;
mod failure;
mod lease_cmds;
#[cfg(feature = "serve")]
mod serve;
mod show;
mod streams;
mod target;
mod verbs;

use std::io::{self, BufWriter, IsTerminal, Write};
use std::process::ExitCode;

use clap::Parser;
use clap::error::ErrorKind;

use crate::args::Cli;
use crate::commands::Outcome;

/// Exit status of an error, and of `check` while an inconsistency remains.
const FAILED: u8 = 1;
/// Exit status when the key or queue item asked for is not there.
const ABSENT: u8 = 2;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            // Help goes to stdout; a closed pipe there is nobody's error.
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            return ExitCode::from(FAILED);
        }
        Err(e) => {
            complain(&usage_error(&e.to_string()));
            return ExitCode::from(FAILED);
        }
    };
    let mut out = BufWriter::new(io::stdout().lock());
    let result = commands::run(&cli, &mut out);
    // What was written before a failure still goes out.
    let flushed = out.flush().map_err(failure::Failure::output);
    match result.and_then(|outcome| flushed.map(|()| outcome)) {
        Ok(Outcome::Done) => ExitCode::SUCCESS,
        Ok(Outcome::Absent(why)) => {
            // Scripts test the status (`while v=$(diskq pull DIR)`), and a
            // line per loop would be noise; a person at a terminal is told.
            if io::stderr().is_terminal() {
                complain(&why);
            }
            ExitCode::from(ABSENT)
        }
        Ok(Outcome::Inconsistent(why)) => {
            complain(&why);
            ExitCode::from(FAILED)
        }
        Err(f) if f.is_quiet() => ExitCode::SUCCESS,
        Err(f) => {
            complain(&f.to_string());
            ExitCode::from(FAILED)
        }
    }
}

/// Prints `diskq: <message>` on stderr. A failure to write to stderr has
/// nowhere to be reported, and the exit status still tells.
fn complain(message: &str) {
    let _ = writeln!(io::stderr(), "diskq: {message}");
}

/// clap's error in one line: its first paragraph, without the usage and
/// tips that follow.
fn usage_error(rendered: &str) -> String {
    let first: Vec<&str> = rendered
        .lines()
        .map(str::trim)
        .take_while(|line| !line.is_empty())
        .collect();
    let text = first.join(" ");
    let text = text.strip_prefix("error: ").unwrap_or(&text);
    format!("{text} (see diskq --help)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_errors_fit_on_one_line() {
        let rendered = "error: the following required arguments were not provided:\n  <KEY>\n\nUsage: diskq get <DIR> <KEY>\n\nFor more information, try '--help'.\n";
        assert_eq!(
            usage_error(rendered),
            "the following required arguments were not provided: <KEY> (see diskq --help)"
        );
    }
}
