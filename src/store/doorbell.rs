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
    use rustix::fs::{Mode, OFlags, inotify};
    use rustix::io::Errno;

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
    }

    #[derive(Debug)]
    struct Ringer {
        file: File,
        ino: u64,
        checked: Instant,
    }

    /// Opens (creating if needed) the doorbell: never through a symlink,
    /// never blocking on a FIFO; anything but a regular file is refused. The
    /// doorbell holds one byte, which a ring reads.
    fn open(path: &Path) -> io::Result<File> {
        let fd = rustix::fs::open(
            path,
            OFlags::RDWR | OFlags::CREATE | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o644),
        )?;
        let file = File::from(fd);
        let meta = file.metadata()?;
        if !meta.is_file() {
            return Err(io::Error::other("the doorbell is not a regular file"));
        }
        if meta.len() == 0 {
            file.write_at(&[1], 0)?;
        }
        Ok(file)
    }

    /// Creates the doorbell if needed and watches it (again: a new inode
    /// gets a new watch; the old one ends with its inode).
    fn watch(inotify: &OwnedFd, path: &Path) -> io::Result<()> {
        drop(open(path)?);
        use inotify::WatchFlags as W;
        let flags = W::ACCESS | W::MODIFY | W::ATTRIB | W::DELETE_SELF | W::MOVE_SELF | W::DONT_FOLLOW;
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
            }
        }

        /// Wakes the waiters of every process watching the doorbell. Best
        /// effort: a doorbell that cannot be rung leaves them to their
        /// fallback poll.
        pub(crate) fn ring(&self) {
            if !super::enabled() {
                return;
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
            if let Some(r) = ringer.as_ref() {
                // Reading the doorbell's byte is the ring: inotify reports
                // IN_ACCESS to every watcher, and a read dirties nothing (a
                // write would update the file's mtime and its page).
                let mut byte = [0u8];
                if r.file.read_at(&mut byte, 0).is_ok_and(|n| n == 0) {
                    // Emptied behind our back: a write rings too.
                    let _ = r.file.write_at(&[1], 0);
                }
            }
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
                watch(&fd, &self.path).ok()?;
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

        /// Sleeps until a ring or `timeout`; true after a ring (or another
        /// change of the doorbell). Only one thread of the process polls at
        /// a time; it wakes the others.
        pub(crate) fn poll(&self, timeout: Duration) -> bool {
            let Some(Some(fd)) = self.inotify.get() else {
                return false;
            };
            let timeout = Timespec {
                tv_sec: i64::try_from(timeout.as_secs()).unwrap_or(i64::MAX),
                tv_nsec: i64::from(timeout.subsec_nanos()),
            };
            let mut fds = [PollFd::new(fd, PollFlags::IN)];
            match poll(&mut fds, Some(&timeout)) {
                Ok(0) | Err(Errno::INTR) => false,
                Ok(_) => self.drain(),
                Err(_) => {
                    self.live.store(false, Ordering::Release);
                    false
                }
            }
        }

        /// Reads the rings that came (without waiting); true if any did.
        /// Watches the doorbell again when it was deleted, moved or replaced.
        pub(crate) fn drain(&self) -> bool {
            let Some(Some(fd)) = self.inotify.get() else {
                return false;
            };
            let mut buf = [MaybeUninit::<u8>::uninit(); 4096];
            let mut reader = inotify::Reader::new(fd.as_fd(), &mut buf);
            let (mut rang, mut rewatch) = (false, false);
            loop {
                match reader.next() {
                    Ok(event) => {
                        use inotify::ReadFlags as R;
                        rang = true;
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
            if rewatch && watch(fd, &self.path).is_err() {
                // Gone for good (a link or a FIFO now): the waiters poll.
                self.live.store(false, Ordering::Release);
            }
            rang
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use std::path::Path;
    use std::time::Duration;

    /// No doorbell here: waiters in other processes poll.
    #[derive(Debug)]
    pub(crate) struct Bell;

    impl Bell {
        pub(crate) fn new(_dir: &Path) -> Bell {
            Bell
        }

        pub(crate) fn ring(&self) {}

        pub(crate) fn listen(&self) -> bool {
            false
        }

        pub(crate) fn live(&self) -> bool {
            false
        }

        pub(crate) fn poll(&self, _timeout: Duration) -> bool {
            false
        }

        pub(crate) fn drain(&self) -> bool {
            false
        }
    }
}

pub(crate) use imp::Bell;
