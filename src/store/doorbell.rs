//! Cross-process wakeups: the doorbell file `cache.db.bell`.
//!
//! A commit that can feed a waiter (a push, a nack, a dead letter, a
//! requeue) reads the doorbell's one byte. On Linux a process that has
//! waiters watches the doorbell with one inotify instance per directory: one
//! waiting thread sleeps in `poll(2)` on it and, woken by a ring, wakes the
//! process's other waiters (see `wake::Notifier`). A consumer in another
//! process sees a push within microseconds, and a process with nothing to do
//! uses no CPU.
//!
//! A push rings twice: once as it begins, before it waits for the write
//! lock (a write of the byte: `IN_MODIFY`), and again after its commit (the
//! read: `IN_ACCESS`). Only the second is a wake. The first is heard by one
//! process alone: the one whose thread polls first, holding a `flock` on
//! the doorbell while it polls, watches `IN_MODIFY` too (the others' watches
//! leave it out, so they sleep through it). Woken by it, that process reads
//! the queue it waits on once (bringing what taking the item needs into the
//! processor's caches) and then stays awake, looking at the inotify instance
//! between yields of the processor, until the commit rings, for at most
//! [`SPIN`]: it takes the item as the commit lands instead of being woken
//! from sleep after it, which on a virtual machine costs about as much as
//! the push itself. A push that rolls back (or waits for the lock past
//! [`SPIN`]) leaves the awake process to sleep again after [`SPIN`]; its
//! commit, if one comes, wakes the waiters as any commit does.
//!
//! Nothing depends on the doorbell for correctness. Waiters still look at
//! `PRAGMA data_version` every `wake_poll` (`CacheBuilder::wake_poll`, 50 ms),
//! which catches python-diskcache writers (they ring nothing), a doorbell
//! that was replaced behind our back, and systems or file systems without
//! inotify. Setting `DISKQ_DOORBELL=off` in the environment forces that
//! fallback (for tests, or a file system whose notifications misbehave).
//!
//! The file's name contains `cache.db`, so python-diskcache's `check` (and
//! ours) take it for one of the database's own files.

/// The doorbell's name in a cache directory.
pub(crate) const BELL_NAME: &str = "cache.db.bell";

/// The longest a waiting process stays awake for the commit of a push that
/// rang as it began (see the module docs).
#[cfg(target_os = "linux")]
pub(crate) const SPIN: std::time::Duration = std::time::Duration::from_millis(1);

/// What the rings read from the doorbell say.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Rings {
    /// A commit that may feed a waiter rang, or the doorbell changed: look
    /// at the queue.
    pub(crate) committed: bool,
    /// A push began; its commit rings next.
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    pub(crate) started: bool,
}

/// True unless `DISKQ_DOORBELL=off` (read once per process).
fn enabled() -> bool {
    static ENABLED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ENABLED.get_or_init(|| std::env::var_os("DISKQ_DOORBELL").is_none_or(|v| v != "off"))
}

#[cfg(target_os = "linux")]
mod imp {
    use std::fs::File;
    use std::io;
    use std::mem::MaybeUninit;
    use std::os::fd::{AsFd, OwnedFd};
    use std::os::unix::fs::{FileExt, MetadataExt};
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Mutex, OnceLock};
    use std::time::{Duration, Instant};

    use rustix::event::{PollFd, PollFlags, Timespec, poll};
    use rustix::fs::{FlockOperation, Mode, OFlags, flock, inotify};
    use rustix::io::Errno;

    use super::Rings;

    /// How often a ringer checks that its open doorbell is still the one at
    /// the doorbell's path (it may have been deleted or replaced).
    const RECHECK: Duration = Duration::from_secs(1);

    /// The doorbell of one directory, in one process.
    #[derive(Debug)]
    pub(crate) struct Bell {
        path: PathBuf,
        ringer: Mutex<Option<Ringer>>,
        /// The inotify instance watching the doorbell, made by the first
        /// waiter; `None` when it could not be made.
        inotify: OnceLock<Option<OwnedFd>>,
        /// True while the doorbell is watched.
        live: AtomicBool,
        /// A description of the doorbell whose lock (`flock`, held while
        /// this process polls) makes it the one process that watches the
        /// rings that pushes began, and stays awake for their commits.
        waker: OnceLock<Option<File>>,
        /// True while this process's watch reports those rings.
        starts: AtomicBool,
        /// An eventfd in the polling thread's `poll(2)` set, written by
        /// [`Bell::interrupt`]: another thread of this process that read a
        /// ring from the inotify instance first (a new waiter's `listen`,
        /// the watching task) would otherwise leave the poller asleep.
        interrupt: OnceLock<Option<OwnedFd>>,
    }

    #[derive(Debug)]
    struct Ringer {
        file: File,
        ino: u64,
        checked: Instant,
    }

    /// Opens (creating if needed) the doorbell: never through a symlink,
    /// never blocking on a FIFO; anything but a regular file is refused, and
    /// so is a file with another name somewhere (a hard link: it may be a
    /// file outside the directory, which a push would write). The doorbell
    /// holds one byte, which a ring reads and a push's first ring writes.
    ///
    /// Made with the database file's permissions (as SQLite makes its
    /// `-wal` and `-shm`), so that every user who may write the cache may
    /// ring. One this process may not write (another user's, a read-only
    /// file system) is opened for reading: its rings and its watch still
    /// work, and only the first ring of a push (a write) is lost.
    fn open(path: &Path) -> io::Result<File> {
        let flags = OFlags::CREATE | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
        let db = path.with_file_name("cache.db");
        let mode = std::fs::metadata(db).map_or(0o644, |m| m.mode() & 0o666);
        let fd = match rustix::fs::open(path, OFlags::RDWR | flags, Mode::from_raw_mode(mode)) {
            Err(Errno::ACCESS | Errno::PERM | Errno::ROFS) => {
                rustix::fs::open(path, OFlags::RDONLY | flags, Mode::from_raw_mode(mode))?
            }
            other => other?,
        };
        let file = File::from(fd);
        let meta = file.metadata()?;
        if !meta.is_file() {
            return Err(io::Error::other("the doorbell is not a regular file"));
        }
        if meta.nlink() != 1 {
            return Err(io::Error::other("the doorbell has other names (a hard link)"));
        }
        if meta.len() == 0 {
            file.write_at(&[1], 0)?;
        }
        Ok(file)
    }

    /// Creates the doorbell if needed and watches it (again: a new inode
    /// gets a new watch; the old one ends with its inode). `starts`: the
    /// rings that pushes began are reported too (only the process awake for
    /// commits wants them).
    fn watch(inotify: &OwnedFd, path: &Path, starts: bool) -> io::Result<()> {
        drop(open(path)?);
        use inotify::WatchFlags as W;
        let mut flags = W::ACCESS | W::ATTRIB | W::DELETE_SELF | W::MOVE_SELF | W::DONT_FOLLOW;
        if starts {
            flags |= W::MODIFY;
        }
        inotify::add_watch(inotify, path, flags)?;
        Ok(())
    }

    impl Bell {
        pub(crate) fn new(dir: &Path) -> Bell {
            Bell {
                path: dir.join(super::BELL_NAME),
                ringer: Mutex::new(None),
                inotify: OnceLock::new(),
                live: AtomicBool::new(false),
                waker: OnceLock::new(),
                starts: AtomicBool::new(false),
                interrupt: OnceLock::new(),
            }
        }

        /// Wakes the thread of this process that polls the doorbell, if
        /// one does (a wake it did not read itself: see `interrupt`).
        pub(crate) fn interrupt(&self) {
            if let Some(Some(fd)) = self.interrupt.get() {
                let _ = rustix::io::write(fd, &1u64.to_ne_bytes());
            }
        }

        /// Wakes the waiters of every process watching the doorbell; true
        /// if it rang. Best effort: a doorbell that cannot be rung leaves
        /// them to their fallback poll.
        pub(crate) fn ring(&self) -> bool {
            self.with_ringer(|file| {
                // Reading the doorbell's byte is the ring: inotify reports
                // IN_ACCESS to every watcher, and a read dirties nothing (a
                // write would update the file's mtime and its page).
                let mut byte = [0u8];
                match file.read_at(&mut byte, 0) {
                    Ok(0) => {
                        // Emptied behind our back (a read of nothing
                        // reports nothing): put the byte back and read it.
                        let _ = file.write_at(&[1], 0);
                        file.read_at(&mut byte, 0).is_ok_and(|n| n == 1)
                    }
                    Ok(_) => true,
                    Err(_) => false,
                }
            })
            .unwrap_or(false)
        }

        /// Tells the watchers that a push began: its commit will
        /// [`Bell::ring`]. A write of the doorbell's byte (IN_MODIFY), which
        /// no watcher takes for a wake.
        pub(crate) fn ring_start(&self) {
            self.with_ringer(|file| {
                let _ = file.write_at(&[1], 0);
            });
        }

        /// Runs `f` on this process's open doorbell, opened again when the
        /// one at the path is another (checked at most every [`RECHECK`]).
        fn with_ringer<R>(&self, f: impl FnOnce(&File) -> R) -> Option<R> {
            if !super::enabled() {
                return None;
            }
            let mut ringer = self.ringer.lock().unwrap_or_else(|p| p.into_inner());
            let stale = ringer.as_ref().is_none_or(|r| r.checked.elapsed() >= RECHECK);
            if stale {
                let current = std::fs::symlink_metadata(&self.path).ok().map(|m| m.ino());
                if ringer.as_ref().is_none_or(|r| Some(r.ino) != current) {
                    *ringer = open(&self.path).ok().and_then(|file| {
                        let ino = file.metadata().ok()?.ino();
                        Some(Ringer {
                            file,
                            ino,
                            checked: Instant::now(),
                        })
                    });
                } else if let Some(r) = ringer.as_mut() {
                    r.checked = Instant::now();
                }
            }
            ringer.as_ref().map(|r| f(&r.file))
        }

        /// Makes sure this process watches the doorbell; true if it does.
        /// The watch is in place when this returns, so no ring after it is
        /// missed.
        pub(crate) fn listen(&self) -> bool {
            if !super::enabled() {
                return false;
            }
            self.inotify.get_or_init(|| {
                let fd = inotify::init(inotify::CreateFlags::CLOEXEC | inotify::CreateFlags::NONBLOCK).ok()?;
                watch(&fd, &self.path, false).ok()?;
                let flags = rustix::event::EventfdFlags::CLOEXEC | rustix::event::EventfdFlags::NONBLOCK;
                self.interrupt.get_or_init(|| rustix::event::eventfd(0, flags).ok());
                self.live.store(true, Ordering::Release);
                Some(fd)
            });
            self.live()
        }

        /// True while the doorbell is watched.
        pub(crate) fn live(&self) -> bool {
            self.live.load(Ordering::Acquire)
        }

        /// A second handle on the inotify instance, for a task to wait on
        /// with the async runtime's reactor (rings are then read with
        /// [`Bell::drain`]); `None` while the doorbell is not watched.
        #[cfg(feature = "tokio")]
        pub(crate) fn watch_fd(&self) -> Option<OwnedFd> {
            let fd = self.inotify.get()?.as_ref()?;
            if !self.live() {
                return None;
            }
            fd.try_clone().ok()
        }

        /// Sleeps until a ring or `timeout`; what the rings said. Only one
        /// thread of the process polls at a time; it wakes the others.
        ///
        /// The process that polls first (the holder of the waker lock)
        /// also hears the rings that pushes began: it then stays awake,
        /// looking at the inotify instance between yields of the processor,
        /// until that push's commit rings (at most [`super::SPIN`] and
        /// `timeout`), calling `warm` once first (a read that brings what
        /// taking the item needs into the processor's caches).
        pub(crate) fn poll(&self, timeout: Duration, warm: &mut dyn FnMut()) -> Rings {
            let Some(Some(fd)) = self.inotify.get() else {
                return Rings::default();
            };
            let waker = self.waker.get_or_init(|| open(&self.path).ok()).as_ref();
            let elected = waker.is_some_and(|w| flock(w, FlockOperation::NonBlockingLockExclusive).is_ok());
            if elected != self.starts.load(Ordering::Relaxed) && watch(fd, &self.path, elected).is_ok() {
                self.starts.store(elected, Ordering::Relaxed);
            }
            let deadline = crate::deadline::from_now(timeout);
            let timeout = Timespec {
                tv_sec: i64::try_from(timeout.as_secs()).unwrap_or(i64::MAX),
                tv_nsec: i64::from(timeout.subsec_nanos()),
            };
            let interrupt = self.interrupt.get().and_then(Option::as_ref);
            let polled = match interrupt {
                Some(int) => {
                    let mut fds = [PollFd::new(fd, PollFlags::IN), PollFd::new(int, PollFlags::IN)];
                    let n = poll(&mut fds, Some(&timeout));
                    if !fds[1].revents().is_empty() {
                        // Reset it: the caller looks at what woke it.
                        let _ = rustix::io::read(int, &mut [0u8; 8]);
                    }
                    n
                }
                None => poll(&mut [PollFd::new(fd, PollFlags::IN)], Some(&timeout)),
            };
            let mut rings = match polled {
                Ok(0) | Err(Errno::INTR) => Rings::default(),
                Ok(_) => self.drain(),
                Err(_) => {
                    self.live.store(false, Ordering::Release);
                    Rings::default()
                }
            };
            if elected && rings.started && !rings.committed {
                let until = crate::deadline::from_now(super::SPIN).min(deadline);
                warm();
                while !rings.committed && self.live() && Instant::now() < until {
                    std::thread::yield_now();
                    let more = self.drain();
                    rings.committed |= more.committed;
                }
            }
            if elected && let Some(w) = waker {
                let _ = flock(w, FlockOperation::Unlock);
            }
            rings
        }

        /// Reads the rings that came (without waiting). Watches the
        /// doorbell again when it was deleted, moved or replaced (which
        /// counts as a commit: the waiters look).
        pub(crate) fn drain(&self) -> Rings {
            let Some(Some(fd)) = self.inotify.get() else {
                return Rings::default();
            };
            let mut buf = [MaybeUninit::<u8>::uninit(); 4096];
            let mut reader = inotify::Reader::new(fd.as_fd(), &mut buf);
            let (mut rings, mut rewatch) = (Rings::default(), false);
            loop {
                match reader.next() {
                    Ok(event) => {
                        use inotify::ReadFlags as R;
                        if event.events() == R::MODIFY {
                            rings.started = true;
                        } else {
                            rings.committed = true;
                        }
                        if event
                            .events()
                            .intersects(R::ATTRIB | R::DELETE_SELF | R::MOVE_SELF | R::IGNORED | R::QUEUE_OVERFLOW)
                        {
                            rewatch = true;
                        }
                    }
                    Err(Errno::INTR) => continue,
                    // EAGAIN: drained.
                    Err(_) => break,
                }
            }
            if rewatch && watch(fd, &self.path, self.starts.load(Ordering::Relaxed)).is_err() {
                // Gone for good (a link or a FIFO now): the waiters poll.
                self.live.store(false, Ordering::Release);
            }
            rings
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use std::path::Path;
    use std::time::Duration;

    use super::Rings;

    /// No doorbell here: waiters in other processes poll.
    #[derive(Debug)]
    pub(crate) struct Bell;

    impl Bell {
        pub(crate) fn new(_dir: &Path) -> Bell {
            Bell
        }

        pub(crate) fn ring(&self) -> bool {
            false
        }

        pub(crate) fn ring_start(&self) {}

        pub(crate) fn interrupt(&self) {}

        pub(crate) fn listen(&self) -> bool {
            false
        }

        pub(crate) fn live(&self) -> bool {
            false
        }

        pub(crate) fn poll(&self, _timeout: Duration, _warm: &mut dyn FnMut()) -> Rings {
            Rings::default()
        }

        pub(crate) fn drain(&self) -> Rings {
            Rings::default()
        }
    }
}

pub(crate) use imp::Bell;

#[cfg(test)]
#[cfg(target_os = "linux")]
mod tests {
    use std::cell::Cell;
    use std::time::Duration;

    use rustix::fs::{FlockOperation, flock};

    use super::{BELL_NAME, Bell, Rings};

    /// A long poll: every test below is woken by rings made before or
    /// during it, never by the timeout.
    const LONG: Duration = Duration::from_secs(60);

    /// A directory with two handles on its doorbell, as two processes
    /// would have: one that waits (watching it) and one that pushes.
    fn waiter_and_pusher() -> (tempfile::TempDir, Bell, Bell) {
        let dir = tempfile::tempdir().unwrap();
        let (waiter, pusher) = (Bell::new(dir.path()), Bell::new(dir.path()));
        assert!(waiter.listen());
        (dir, waiter, pusher)
    }

    /// A first poll, woken by a commit's ring: it elects the waiter when
    /// no other process holds the waker lock.
    fn poll_once(waiter: &Bell, pusher: &Bell) {
        pusher.ring();
        assert!(waiter.poll(LONG, &mut || {}).committed);
    }

    /// Holds the waker lock, as another process's polling thread would.
    fn another_process_elected(dir: &tempfile::TempDir) -> std::fs::File {
        let elected = std::fs::File::open(dir.path().join(BELL_NAME)).unwrap();
        flock(&elected, FlockOperation::NonBlockingLockExclusive).unwrap();
        elected
    }

    #[test]
    fn a_ring_that_a_push_began_is_not_a_wake() {
        let (_dir, waiter, pusher) = waiter_and_pusher();
        pusher.ring_start();
        // Not elected yet when the ring came (the watch left IN_MODIFY
        // out until the first poll): nothing to read.
        assert_eq!(waiter.drain(), Rings::default());
        pusher.ring();
        assert_eq!(
            waiter.poll(LONG, &mut || {}),
            Rings {
                committed: true,
                started: false
            }
        );
    }

    #[test]
    fn the_elected_poller_stays_awake_until_the_commit_rings() {
        let (_dir, waiter, pusher) = waiter_and_pusher();
        // A first poll elects the waiter (its watch now hears starts).
        poll_once(&waiter, &pusher);
        pusher.ring_start();
        // The commit rings while the waiter is awake after the start: the
        // warm-up runs once, then the spin sees the commit.
        let warmed = Cell::new(0);
        let rings = waiter.poll(LONG, &mut || {
            warmed.set(warmed.get() + 1);
            pusher.ring();
        });
        assert_eq!(
            rings,
            Rings {
                committed: true,
                started: true
            }
        );
        assert_eq!(warmed.get(), 1);
    }

    #[test]
    fn a_push_that_never_commits_leaves_the_poller_to_sleep_again() {
        let (dir, waiter, pusher) = waiter_and_pusher();
        poll_once(&waiter, &pusher);
        pusher.ring_start();
        // No commit ring follows (the push rolled back): the poll returns
        // after its bounded spin, with no wake.
        assert_eq!(
            waiter.poll(LONG, &mut || {}),
            Rings {
                committed: false,
                started: true
            }
        );
        // The waker lock was let go: another process can be elected.
        another_process_elected(&dir);
    }

    #[test]
    fn a_ring_of_an_emptied_doorbell_still_wakes_a_poller_that_hears_no_starts() {
        let (dir, waiter, pusher) = waiter_and_pusher();
        let _elected = another_process_elected(&dir);
        poll_once(&waiter, &pusher);
        // Emptied behind the ringer's back (the same file, truncated).
        std::fs::File::create(dir.path().join(BELL_NAME)).unwrap();
        waiter.drain();
        pusher.ring();
        assert!(waiter.poll(LONG, &mut || {}).committed);
        assert_eq!(std::fs::read(dir.path().join(BELL_NAME)).unwrap(), [1]);
    }

    #[test]
    fn a_poller_that_is_not_elected_sleeps_through_starts() {
        let (dir, waiter, pusher) = waiter_and_pusher();
        // Another process is the one awake for commits.
        let _elected = another_process_elected(&dir);
        pusher.ring_start();
        assert_eq!(waiter.poll(Duration::ZERO, &mut || {}), Rings::default());
        pusher.ring();
        let rings = waiter.poll(LONG, &mut || panic!("only the elected process warms up"));
        assert!(rings.committed);
        assert!(!rings.started);
    }
}
