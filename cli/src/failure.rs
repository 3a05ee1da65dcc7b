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
        Failure::new(chain(&err))
    }
}

/// An error and its causes on one line, `what: why: deeper why`, each
/// level once. diskq's errors never repeat their source in their message;
/// a cause from elsewhere that does is skipped rather than printed twice.
pub fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut line = err.to_string();
    let mut cause = err.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        cause = c.source();
    }
    line
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
    fn library_errors_show_their_cause_once() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let file = tmp.path().join("plain");
        std::fs::write(&file, b"x").expect("write");
        let err = diskq::Cache::open(file.join("cache")).expect_err("under a file");
        let shown = Failure::from(err).to_string();
        assert!(shown.contains("plain"), "names the path: {shown}");
        assert_eq!(shown.matches("(os error").count(), 1, "the OS error once: {shown}");
    }

    #[test]
    fn a_cause_already_in_the_message_is_not_repeated() {
        let io = io::Error::other("disk on fire");
        #[derive(Debug)]
        struct Wrapper(io::Error);
        impl fmt::Display for Wrapper {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "writing failed: {}", self.0)
            }
        }
        impl std::error::Error for Wrapper {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        assert_eq!(chain(&Wrapper(io)), "writing failed: disk on fire");
    }

    #[test]
    fn library_errors_keep_their_message() {
        let f = Failure::from(diskq::Error::Pickled { key: "\"t\"".into() });
        assert!(f.to_string().contains("Python pickle"), "{f}");
    }
}
