//! Whether standard input or output was closed when the tool started.
//!
//! A Rust program never sees a closed standard stream: before `main`, the
//! runtime opens `/dev/null` (read-write) on each of the descriptors 0, 1
//! and 2 that is closed, so that no file the program opens later lands on
//! them. Reads then give end of file and writes vanish, which is how
//! `diskq set DIR k - <&-` stored an empty value and `diskq pull DIR >&-`
//! threw an item away. The tool looks for that `/dev/null` instead.
//!
//! A shell's `</dev/null` opens it for reading only and `>/dev/null` for
//! writing only, so both still work (to store an empty value, to discard an
//! item on purpose). A parent that hands over `/dev/null` opened read-write
//! (Python's `subprocess.DEVNULL` does) looks the same as a closed stream.
//! Only Linux shows a descriptor's open mode without `unsafe` code; on other
//! systems nothing is detected.

/// Standard input's descriptor.
const STDIN: u8 = 0;
/// Standard output's descriptor.
const STDOUT: u8 = 1;
/// Standard error's descriptor.
const STDERR: u8 = 2;

/// True when standard input was closed when the tool started.
pub fn stdin_closed() -> bool {
    closed_at_start(STDIN)
}

/// True when standard output was closed when the tool started.
pub fn stdout_closed() -> bool {
    closed_at_start(STDOUT)
}

/// True when standard error was closed when the tool started.
pub fn stderr_closed() -> bool {
    closed_at_start(STDERR)
}

#[cfg(target_os = "linux")]
fn closed_at_start(fd: u8) -> bool {
    use std::path::Path;
    /// `O_ACCMODE` and `O_RDWR` of Linux's open flags.
    const ACCESS_MODE: u32 = 0o3;
    const READ_WRITE: u32 = 0o2;
    let Ok(target) = std::fs::read_link(format!("/proc/self/fd/{fd}")) else {
        return false;
    };
    if target != Path::new("/dev/null") {
        return false;
    }
    let Ok(info) = std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}")) else {
        return false;
    };
    info.lines()
        .find_map(|line| line.strip_prefix("flags:"))
        .and_then(|flags| u32::from_str_radix(flags.trim(), 8).ok())
        .is_some_and(|flags| flags & ACCESS_MODE == READ_WRITE)
}

#[cfg(not(target_os = "linux"))]
fn closed_at_start(_fd: u8) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_descriptor_that_is_no_standard_stream_is_not_closed() {
        // Descriptor numbers far above any this test process opens.
        assert!(!closed_at_start(250));
    }
}
