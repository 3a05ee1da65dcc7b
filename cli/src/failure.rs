//! Why a command failed, as the one line the tool prints on stderr.

use std::fmt;
use std::io;

/// A failed command: exit status 1 and one line on stderr, or nothing at all
/// when standard output was closed under us (`diskq keys DIR | head -1`).
#[derive(Debug)]
pub struct Failure {
    message: String,
    quiet: bool,
}

impl Failure {
    /// A failure with this message (one line, without the `diskq: ` prefix).
    pub fn new(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            quiet: false,
        }
    }

    /// A failure to write the output. A closed pipe is no error of ours: the
    /// reader had enough, as when `head` stops reading.
    pub fn output(err: io::Error) -> Failure {
        Failure {
            quiet: err.kind() == io::ErrorKind::BrokenPipe,
            message: format!("cannot write the output: {err}"),
        }
    }

    /// True when nothing should be printed (the output pipe was closed).
    pub fn is_quiet(&self) -> bool {
        self.quiet
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // One line, whatever the source's message holds.
        let mut first = true;
        for part in self.message.lines().map(str::trim).filter(|l| !l.is_empty()) {
            if !first {
                f.write_str(" ")?;
            }
            f.write_str(part)?;
            first = false;
        }
        Ok(())
    }
}

impl From<diskq::Error> for Failure {
    fn from(err: diskq::Error) -> Failure {
        Failure::new(err.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_is_one_line() {
        let f = Failure::new("first\n  second\n\nthird");
        assert_eq!(f.to_string(), "first second third");
        assert!(!f.is_quiet());
    }

    #[test]
    fn only_a_closed_pipe_is_quiet() {
        assert!(Failure::output(io::Error::from(io::ErrorKind::BrokenPipe)).is_quiet());
        let full = Failure::output(io::Error::other("disk full"));
        assert!(!full.is_quiet());
        assert_eq!(full.to_string(), "cannot write the output: disk full");
    }

    #[test]
    fn library_errors_keep_their_message() {
        let f = Failure::from(diskq::Error::Pickled { key: "\"t\"".into() });
        assert!(f.to_string().contains("Python pickle"), "{f}");
    }
}
