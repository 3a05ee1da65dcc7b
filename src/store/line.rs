//! The line in front of the cross-process write lock, on Linux: processes
//! that wait to write get the lock in the order they came.
//!
//! An OS file lock does not queue its waiters: when it is let go the
//! kernel wakes them all and whichever runs first wins, so with eight
//! writer processes one of them could lose round after round (issue 16
//! measured sets that waited for two and three rounds of the others). The
//! line keeps the order in open file description locks (`F_OFD_SETLKW`) on
//! bytes of `cache.db.wturn`, which the kernel lets go when their process
//! dies:
//!
//! - A process joins by taking a ticket (a counter in the file's first
//!   eight bytes, read and bumped under a lock on those bytes) and locking
//!   its ticket's slot byte.
//! - It has passed once it can lock the slot of the ticket before its own:
//!   the process in front let its slot go (its write is over, it gave up
//!   waiting, or it died). Only one process waits on each slot, so a let-go
//!   wakes one waiter, not all.
//! - It then takes the write lock (`cache.db.wlock`: held by the process in
//!   front until its write is over, or by a process that took it without
//!   the line — one going ahead of the line a few times in a row, see
//!   `STREAK` in `writers.rs`, or one where the line failed) and leaves the
//!   line, letting its slot go, once its write is over.
//!
//! The line is an order, not the exclusion: the write lock is. The slot is
//! locked before the counter is let go, so tickets are placed in the order
//! they were taken. A process that finds its slot still held (by a ticket
//! [`SLOTS`] older: that many processes waiting) takes no place and waits
//! for the write lock alone. Every wait in the line is for an older ticket,
//! so the waits cannot form a cycle. No wait on the counter outlasts the
//! caller's deadline.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::time::Instant;

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, fcntl};

/// Slots in the line: with more processes than this waiting at once, one
/// whose ticket's slot is still held takes no place and waits for the
/// write lock alone.
const SLOTS: u64 = 4096;
/// Where the slot bytes start in the file (past the ticket counter).
const SLOTS_AT: u64 = 4096;
/// The ticket counter's bytes.
const COUNTER: (u64, u64) = (0, 8);

/// A process's place in the line: its ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Place {
    ticket: u64,
}

impl Place {
    fn slot(self) -> (u64, u64) {
        (SLOTS_AT + self.ticket % SLOTS, 1)
    }

    fn ahead(self) -> (u64, u64) {
        (SLOTS_AT + self.ticket.wrapping_sub(1) % SLOTS, 1)
    }
}

/// The line of one directory, on this process's own open file description
/// of `cache.db.wturn` (locks of one description do not exclude each
/// other, so a process holds one place at a time).
#[derive(Debug)]
pub(super) struct Line {
    file: File,
}

/// How a lock call is to behave.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Lock,
    TryLock,
    Unlock,
}

impl Line {
    /// The line on `file` (opened for reading and writing), or `None` where
    /// the kernel or the file system has no open file description locks.
    pub(super) fn new(file: File) -> Option<Line> {
        let line = Line { file };
        line.range(COUNTER, Op::Unlock).ok()?;
        Some(line)
    }

    /// Locks, tries to lock or unlocks `range`; `Ok(false)` when a try finds
    /// it taken.
    fn range(&self, (start, len): (u64, u64), op: Op) -> io::Result<bool> {
        let l_type = match op {
            Op::Lock | Op::TryLock => libc::F_WRLCK,
            Op::Unlock => libc::F_UNLCK,
        };
        let flock = libc::flock {
            l_type: l_type as libc::c_short,
            l_whence: libc::SEEK_SET as libc::c_short,
            l_start: libc::off_t::try_from(start).map_err(io::Error::other)?,
            l_len: libc::off_t::try_from(len).map_err(io::Error::other)?,
            // Must be 0 for open file description locks.
            l_pid: 0,
        };
        let fd = &self.file;
        loop {
            let done = match op {
                Op::Lock => fcntl(fd, FcntlArg::F_OFD_SETLKW(&flock)),
                Op::TryLock | Op::Unlock => fcntl(fd, FcntlArg::F_OFD_SETLK(&flock)),
            };
            match done {
                Ok(_) => return Ok(true),
                Err(Errno::EINTR) => {}
                Err(Errno::EAGAIN | Errno::EACCES) if op == Op::TryLock => return Ok(false),
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Joins the line: takes a ticket and locks its slot, before letting
    /// the counter go. `None` when the counter stays taken until `until`
    /// (another process holds it for a moment only, unless it is stopped),
    /// or when the ticket's slot is held (by a ticket [`SLOTS`] older).
    pub(super) fn join(&self, until: Instant) -> io::Result<Option<Place>> {
        if !crate::deadline::poll_until(until, || self.range(COUNTER, Op::TryLock))? {
            return Ok(None);
        }
        let placed = self.bump().and_then(|ticket| {
            let place = Place { ticket };
            Ok(self.range(place.slot(), Op::TryLock)?.then_some(place))
        });
        let _ = self.range(COUNTER, Op::Unlock);
        placed
    }

    /// Reads the ticket counter and writes it back bumped (under the
    /// counter's lock); the ticket read.
    fn bump(&self) -> io::Result<u64> {
        let mut bytes = [0u8; 8];
        let mut read = 0;
        while read < bytes.len() {
            match self.file.read_at(&mut bytes[read..], read as u64) {
                Ok(0) => break,
                Ok(n) => read += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        // A short or foreign file counts from what it holds: the counter
        // orders, it excludes nothing.
        let ticket = u64::from_le_bytes(bytes);
        self.file.write_all_at(&ticket.wrapping_add(1).to_le_bytes(), 0)?;
        Ok(ticket)
    }

    /// True once the process in front has left (its slot could be locked,
    /// and is let go again at once). With `wait`, sleeps in the kernel until
    /// it has.
    pub(super) fn pass(&self, place: Place, wait: bool) -> io::Result<bool> {
        let op = if wait { Op::Lock } else { Op::TryLock };
        if !self.range(place.ahead(), op)? {
            return Ok(false);
        }
        let _ = self.range(place.ahead(), Op::Unlock);
        Ok(true)
    }

    /// Leaves the line: the next process passes.
    pub(super) fn leave(&self, place: Place) {
        let _ = self.range(place.slot(), Op::Unlock);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn far() -> Instant {
        Instant::now() + Duration::from_secs(60)
    }

    /// Two lines on one directory's file: two open file descriptions, as
    /// two processes have (the directory lives as long as they do).
    fn two_lines() -> (tempfile::TempDir, Line, Line) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("cache.db.wturn");
        let (a, b) = (
            Line::new(open(&path)).expect("ofd"),
            Line::new(open(&path)).expect("ofd"),
        );
        (dir, a, b)
    }

    fn open(path: &std::path::Path) -> File {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .expect("open")
    }

    #[test]
    fn tickets_pass_in_order() {
        let (_dir, a, b) = two_lines();
        let first = a.join(far()).expect("join").expect("a place");
        let second = b.join(far()).expect("join").expect("a place");
        assert_eq!(second.ticket, first.ticket + 1);
        assert!(a.pass(first, false).expect("pass"), "nobody is in front of the first");
        assert!(!b.pass(second, false).expect("pass"), "the second waits for the first");
        a.leave(first);
        assert!(b.pass(second, false).expect("pass"), "the first left");
        b.leave(second);
        let third = a.join(far()).expect("join").expect("a place");
        assert_eq!(third.ticket, second.ticket + 1);
        assert!(a.pass(third, false).expect("pass"));
        a.leave(third);
    }

    #[test]
    fn a_closed_description_leaves_the_line() {
        let (_dir, a, b) = two_lines();
        let _first = a.join(far()).expect("join").expect("a place");
        let second = b.join(far()).expect("join").expect("a place");
        assert!(!b.pass(second, false).expect("pass"));
        // As when the process in front dies: the kernel lets its locks go.
        drop(a);
        assert!(b.pass(second, false).expect("pass"));
    }

    #[test]
    fn a_waiter_sleeps_until_the_one_in_front_leaves() {
        let (_dir, a, b) = two_lines();
        let b = std::sync::Arc::new(b);
        let first = a.join(far()).expect("join").expect("a place");
        let second = b.join(far()).expect("join").expect("a place");
        let (tx, rx) = std::sync::mpsc::channel();
        let waiter = {
            let b = b.clone();
            std::thread::spawn(move || {
                let passed = b.pass(second, true).expect("pass");
                tx.send(passed).expect("send");
            })
        };
        // Still waiting: nothing was sent before the first left.
        assert!(rx.try_recv().is_err());
        a.leave(first);
        assert!(rx.recv().expect("recv"));
        waiter.join().expect("join");
        b.leave(second);
    }

    #[test]
    fn a_held_counter_ends_at_the_deadline() {
        let (_dir, a, b) = two_lines();
        // As a process stopped while taking its ticket.
        assert!(a.range(COUNTER, Op::TryLock).expect("lock"));
        assert_eq!(b.join(Instant::now() + Duration::from_millis(5)).expect("join"), None);
        a.range(COUNTER, Op::Unlock).expect("unlock");
        assert!(b.join(far()).expect("join").is_some());
    }

    #[test]
    fn a_slot_still_held_gives_no_place() {
        let (_dir, a, b) = two_lines();
        let first = a.join(far()).expect("join").expect("a place");
        // The counter comes round to the first ticket's slot again.
        b.file
            .write_all_at(&(first.ticket + SLOTS).to_le_bytes(), 0)
            .expect("write");
        assert_eq!(b.join(far()).expect("join"), None);
        a.leave(first);
        assert!(b.join(far()).expect("join").is_some());
    }

    #[test]
    fn garbage_in_the_counter_still_orders() {
        let (_dir, a, b) = two_lines();
        a.file.write_all_at(&u64::MAX.to_le_bytes(), 0).expect("write");
        let first = a.join(far()).expect("join").expect("a place");
        let second = b.join(far()).expect("join").expect("a place");
        assert_eq!(first.ticket, u64::MAX);
        assert_eq!(second.ticket, 0);
        assert!(!b.pass(second, false).expect("pass"));
        a.leave(first);
        assert!(b.pass(second, false).expect("pass"));
    }
}
