//! Cross-process wakeups: the doorbell file `cache.db.bell`.
//!
//! A commit that can feed a waiter (a push, a nack, a dead letter, a
//! requeue) writes one byte to the doorbell. On Linux a process that has
//! waiters watches the doorbell with inotify, through one listener thread
//! per directory, which wakes the process's waiters through its
//! [`Notifier`](super::Notifier): a consumer in another process sees a push
//! within microseconds, and a process with nothing to do sleeps in `poll(2)`.
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
    use std::sync::{Mutex, Weak};
    use std::time::{Duration, Instant};

    use rustix::event::{PollFd, PollFlags, poll};
    use rustix::fs::{Mode, OFlags, inotify};
    use rustix::io::Errno;

    use super::super::Notifier;

    /// How often a ringer checks that its open doorbell is still the one at
    /// the doorbell's path (it may have been deleted or replaced).
    const RECHECK: Duration = Duration::from_secs(1);

    /// The doorbell of one directory, in one process.
    #[derive(Debug)]
    pub(crate) struct Bell {
        path: PathBuf,
        ringer: Mutex<Option<Ringer>>,
        listener: Mutex<Listener>,
        /// True while a listener thread watches the doorbell.
        live: AtomicBool,
    }

    #[derive(Debug)]
    struct Ringer {
        file: File,
        ino: u64,
        checked: Instant,
    }

    #[derive(Debug)]
    enum Listener {
        NotStarted,
        /// The write end of the pipe that stops the listener thread: dropped
        /// with the bell, which makes the read end readable.
        Running(#[allow(dead_code)] OwnedFd),
        Failed,
    }

    /// Opens (creating if needed) the doorbell: never through a symlink,
    /// never blocking on a FIFO; anything but a regular file is refused.
    fn open(path: &Path) -> io::Result<File> {
        let fd = rustix::fs::open(
            path,
            OFlags::WRONLY | OFlags::CREATE | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o644),
        )?;
        let file = File::from(fd);
        if !file.metadata()?.is_file() {
            return Err(io::Error::other("the doorbell is not a regular file"));
        }
        Ok(file)
    }

    impl Bell {
        pub(crate) fn new(dir: &Path) -> Bell {
            Bell {
                path: dir.join(super::BELL_NAME),
                ringer: Mutex::new(None),
                listener: Mutex::new(Listener::NotStarted),
                live: AtomicBool::new(false),
            }
        }

        /// Wakes the waiters of other processes. Best effort: a doorbell
        /// that cannot be rung leaves them to their fallback poll.
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
                // One byte at offset 0: the file stays one byte long, and
                // inotify reports IN_MODIFY to every watcher.
                let _ = r.file.write_at(&[1], 0);
            }
        }

        /// Makes sure this process watches the doorbell, so that `notifier`
        /// is woken by other processes' rings; true if it does. The watch is
        /// in place when this returns, so no ring after it is missed.
        pub(crate) fn listen(&self, notifier: Weak<Notifier>) -> bool {
            if !super::enabled() {
                return false;
            }
            let mut listener = self.listener.lock().unwrap_or_else(|p| p.into_inner());
            if matches!(*listener, Listener::NotStarted) {
                *listener = match self.start(notifier) {
                    Ok(stop) => {
                        self.live.store(true, Ordering::Release);
                        Listener::Running(stop)
                    }
                    Err(_) => Listener::Failed,
                };
            }
            self.live.load(Ordering::Acquire)
        }

        /// True while a listener thread watches the doorbell.
        pub(crate) fn live(&self) -> bool {
            self.live.load(Ordering::Acquire)
        }

        fn start(&self, notifier: Weak<Notifier>) -> io::Result<OwnedFd> {
            let inotify = inotify::init(inotify::CreateFlags::CLOEXEC | inotify::CreateFlags::NONBLOCK)?;
            watch(&inotify, &self.path)?;
            let (stop_read, stop_write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
            let path = self.path.clone();
            std::thread::Builder::new()
                .name("diskq-doorbell".into())
                .spawn(move || listen_loop(&inotify, &stop_read, &path, &notifier))?;
            Ok(stop_write)
        }
    }

    /// Creates the doorbell if needed and watches it (again).
    fn watch(inotify: &OwnedFd, path: &Path) -> io::Result<()> {
        drop(open(path)?);
        use inotify::WatchFlags as W;
        let flags = W::MODIFY | W::ATTRIB | W::DELETE_SELF | W::MOVE_SELF | W::DONT_FOLLOW;
        inotify::add_watch(inotify, path, flags)?;
        Ok(())
    }

    /// The listener thread: sleeps in poll(2) until a ring (or a stop), then
    /// wakes the process's waiters. Ends when the bell is dropped, or when
    /// the doorbell can no longer be watched (the waiters then poll).
    fn listen_loop(inotify: &OwnedFd, stop: &OwnedFd, path: &Path, notifier: &Weak<Notifier>) {
        let mut buf = [MaybeUninit::<u8>::uninit(); 4096];
        let ok = loop {
            let mut fds = [PollFd::new(inotify, PollFlags::IN), PollFd::new(stop, PollFlags::IN)];
            match poll(&mut fds, None) {
                Ok(_) => {}
                Err(Errno::INTR) => continue,
                Err(_) => break false,
            }
            if !fds[1].revents().is_empty() {
                return;
            }
            let mut rewatch = false;
            let mut reader = inotify::Reader::new(inotify.as_fd(), &mut buf);
            loop {
                match reader.next() {
                    Ok(event) => {
                        use inotify::ReadFlags as R;
                        if event
                            .events()
                            .intersects(R::ATTRIB | R::DELETE_SELF | R::MOVE_SELF | R::IGNORED)
                        {
                            rewatch = true;
                        }
                    }
                    Err(Errno::INTR) => continue,
                    // EAGAIN: drained.
                    Err(_) => break,
                }
            }
            // The doorbell was deleted, moved or replaced: watch whatever is
            // at its path now (a new inode gets a new watch).
            if rewatch && watch(inotify, path).is_err() {
                break false;
            }
            match notifier.upgrade() {
                Some(n) => n.notify(),
                None => return,
            }
        };
        if !ok && let Some(n) = notifier.upgrade() {
            n.bell.live.store(false, Ordering::Release);
            // Wake the waiters, so that they switch to polling at once.
            n.notify();
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use std::path::Path;
    use std::sync::Weak;

    use super::super::Notifier;

    /// No doorbell here: waiters in other processes poll.
    #[derive(Debug)]
    pub(crate) struct Bell;

    impl Bell {
        pub(crate) fn new(_dir: &Path) -> Bell {
            Bell
        }

        pub(crate) fn ring(&self) {}

        pub(crate) fn listen(&self, _notifier: Weak<Notifier>) -> bool {
            false
        }

        pub(crate) fn live(&self) -> bool {
            false
        }
    }
}

pub(crate) use imp::Bell;
