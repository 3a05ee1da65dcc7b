//! Runs the built `diskq` binary and checks what it printed.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// The binary under test, built by cargo for the integration tests.
pub const DISKQ: &str = env!("CARGO_BIN_EXE_diskq");

/// What one run of the tool did.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Run {
    /// Standard output as text.
    pub fn text(&self) -> String {
        String::from_utf8(self.stdout.clone()).expect("UTF-8 output")
    }

    /// Standard output parsed as one JSON document.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    /// Asserts exit status 0 and an empty stderr; returns self.
    #[track_caller]
    pub fn ok(self) -> Run {
        assert_eq!((self.code, self.stderr.as_str()), (0, ""), "stdout: {:?}", self.text());
        self
    }

    /// Asserts this exit status and a one-line `diskq: ` message containing `part`.
    #[track_caller]
    pub fn fails(self, code: i32, part: &str) -> Run {
        assert_eq!(self.code, code, "stderr: {}", self.stderr);
        assert!(self.stderr.starts_with("diskq: "), "stderr: {:?}", self.stderr);
        assert_eq!(self.stderr.lines().count(), 1, "one line: {:?}", self.stderr);
        assert!(self.stderr.contains(part), "{:?} lacks {part:?}", self.stderr);
        self
    }
}

impl Run {
    /// Asserts exit status 2 (not there) with nothing on stderr, which is
    /// not a terminal here; returns self.
    #[track_caller]
    pub fn absent(self) -> Run {
        assert_eq!((self.code, self.stderr.as_str()), (2, ""), "stdout: {:?}", self.text());
        self
    }
}

/// Runs `diskq ARGS` with no standard input.
pub fn diskq(args: &[&str]) -> Run {
    diskq_with_stdin(args, None)
}

/// Runs `diskq ARGS`, feeding `stdin` when given.
pub fn diskq_with_stdin(args: &[&str], stdin: Option<&[u8]>) -> Run {
    let mut child = Command::new(DISKQ)
        .args(args)
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the diskq binary runs");
    if let Some(bytes) = stdin {
        let mut pipe = child.stdin.take().expect("piped stdin");
        // A writer thread, so a child that fills its stdout pipe first
        // cannot deadlock us.
        let bytes = bytes.to_vec();
        std::thread::spawn(move || pipe.write_all(&bytes).expect("child reads stdin"));
    }
    finish(child.wait_with_output().expect("diskq finishes"))
}

/// Runs a shell command line with `$DISKQ` naming the binary.
pub fn shell(script: &str, dir: &Path) -> Run {
    let out = Command::new("bash")
        .arg("-c")
        .arg(script)
        .env("DISKQ", DISKQ)
        .env("D", dir)
        .stdin(Stdio::null())
        .output()
        .expect("bash runs");
    finish(out)
}

fn finish(out: Output) -> Run {
    Run {
        code: out.status.code().expect("exited, not killed"),
        stdout: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `path` as a `&str` argument.
pub fn arg(path: &Path) -> &str {
    path.to_str().expect("UTF-8 temp path")
}
