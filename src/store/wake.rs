//! Waking waiters: the threads of this process blocked in a timed pop,
//! pull or lease of a directory, when a commit may have fed them.
//!
//! A commit that adds queue items (in any thread) bumps the directory's
//! [`Notifier`] version and rings the doorbell (`doorbell.rs`). Waiting
//! threads look at the version; one of them at a time sleeps on the
//! doorbell's inotify instance (the others on a condvar) and, woken by a
//! ring from any process, bumps the version for all. Every waiter also looks
//! at `PRAGMA data_version` every `wake_poll`, which catches commits that
//! rang nothing (python-diskcache's).
//!
//! With the `tokio` feature, tasks wait too (`crate::tokio::wait`): each
//! wake also wakes one waiting task through [`Tasks`], and a woken task that
//! takes an item wakes the next one, so a ring for one item does not wake a
//! thousand tasks. One task at a time watches the doorbell for the others,
//! on the runtime's reactor, and runs the fallback poll on a timer.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, Weak};
use std::time::{Duration, Instant};

use super::{Backend, Lite, LiteSession, Store, doorbell};
use crate::codec::Scalar;
use crate::error::Result;

/// The longest pause of a waiter between two looks at the database, which
/// bounds how late it notices a push by a process that rang no doorbell
/// (python-diskcache), or by any process where the doorbell is not watched.
pub(crate) const WAKE_POLL: Duration = Duration::from_millis(50);

/// Wakes the waiters of a directory: the threads of this process at once,
/// and those of other processes through the doorbell.
#[derive(Debug)]
pub(crate) struct Notifier {
    state: Mutex<State>,
    changed: Condvar,
    pub(crate) bell: doorbell::Bell,
    /// The tasks of this process waiting on the directory.
    #[cfg(feature = "tokio")]
    pub(crate) tasks: Tasks,
}

/// The async waiters of a directory (or of a PostgreSQL store) in this process.
#[cfg(feature = "tokio")]
#[derive(Debug, Default)]
pub(crate) struct Tasks {
    /// Each wake wakes one task (or leaves a permit for the next); a task
    /// that is woken and then dropped hands the wake on (`Notify`'s rule).
    pub(crate) notify: ::tokio::sync::Notify,
    /// True while a task watches the doorbell for the others.
    pub(crate) watching: std::sync::atomic::AtomicBool,
}

#[derive(Debug, Default)]
struct State {
    /// Bumped by every wake.
    version: u64,
    /// True while a thread sleeps on the doorbell for the others.
    polling: bool,
}

impl Notifier {
    /// The notifier of a directory, shared by every store open on it in this process.
    pub(crate) fn of(dir: &Path) -> Arc<Notifier> {
        static ALL: OnceLock<Mutex<HashMap<PathBuf, Weak<Notifier>>>> = OnceLock::new();
        let mut all = ALL
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(n) = all.get(dir).and_then(Weak::upgrade) {
            return n;
        }
        all.retain(|_, w| w.strong_count() > 0);
        let n = Arc::new(Notifier {
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
            bell: doorbell::Bell::new(dir),
            #[cfg(feature = "tokio")]
            tasks: Tasks::default(),
        });
        all.insert(dir.to_path_buf(), Arc::downgrade(&n));
        n
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Wakes this process's waiters: every thread, and one task (which
    /// wakes the next if it finds an item).
    pub(crate) fn notify(&self) {
        self.notify_threads();
        #[cfg(feature = "tokio")]
        self.tasks.notify.notify_one();
    }

    /// Wakes this process's waiting threads (not its tasks), the one that
    /// sleeps on the doorbell included: it did not read this wake there.
    pub(crate) fn notify_threads(&self) {
        self.bump(true);
    }

    /// Bumps the version for the waiting threads; `interrupt`: wakes the
    /// thread that sleeps on the doorbell too (through `Bell::interrupt`).
    fn bump(&self, interrupt: bool) {
        let mut st = self.state();
        st.version = st.version.wrapping_add(1);
        self.changed.notify_all();
        if interrupt && st.polling {
            self.bell.interrupt();
        }
    }

    /// A push began: tells the other processes' waiters that its commit
    /// comes next (see `doorbell`).
    pub(crate) fn push_started(&self) {
        self.bell.ring_start();
    }

    /// After a commit that can feed a waiter: wakes the waiters of this
    /// process and of every other process watching the doorbell. The ring
    /// reaches this process's thread that sleeps on the doorbell too; a
    /// doorbell that could not be rung wakes it directly.
    pub(crate) fn pushed(&self) {
        self.bump(false);
        #[cfg(feature = "tokio")]
        self.tasks.notify.notify_one();
        if !self.bell.ring() && self.state().polling {
            self.bell.interrupt();
        }
    }

    /// Starts watching the doorbell (once per process and directory) and
    /// returns the version a new waiter has seen: rings that came before
    /// count as seen, since the waiter looks at the queue next.
    pub(crate) fn listen(&self) -> u64 {
        if self.bell.listen() && self.bell.drain().committed {
            // Someone else's waiters may be owed this wake.
            self.notify();
        }
        self.state().version
    }

    /// Waits up to `pause` for a wake after `seen`; the version if one came.
    fn wait(&self, seen: u64, pause: Duration, warm: &mut dyn FnMut()) -> Option<u64> {
        let deadline = crate::deadline::from_now(pause);
        let mut st = self.state();
        loop {
            if st.version != seen {
                return Some(st.version);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            if !st.polling && self.bell.live() {
                // This thread sleeps on the doorbell for the process.
                st.polling = true;
                drop(st);
                let rings = self.bell.poll(left, warm);
                st = self.state();
                st.polling = false;
                if rings.committed {
                    st.version = st.version.wrapping_add(1);
                    #[cfg(feature = "tokio")]
                    self.tasks.notify.notify_one();
                }
                // Wake the others: to see the ring, or to take over.
                self.changed.notify_all();
                continue;
            }
            st = self.changed.wait_timeout(st, left).unwrap_or_else(|p| p.into_inner()).0;
        }
    }
}

/// Watches a directory for commits: pushes by this process and rings of
/// the doorbell by others (at once), and any commit (`PRAGMA data_version`,
/// every `wake_poll` when the doorbell is watched, else polled with a
/// backoff up to it).
pub(crate) struct LiteWatcher<'a> {
    store: &'a Store,
    lite: &'a Lite,
    session: Option<LiteSession>,
    seen_notice: u64,
    seen_version: i64,
    pause: Duration,
    /// The queue a woken waiter will take from (its key bounds and end),
    /// read once while a push that began is committing (see `doorbell`).
    warm: Option<Box<(Scalar, Scalar, bool)>>,
}

/// Waits for a commit that may feed a blocked pop, of either backend.
pub(crate) enum Watcher<'a> {
    Sqlite(LiteWatcher<'a>),
    #[cfg(feature = "postgres")]
    Postgres(super::pg::PgWatcher),
}

impl<'a> Watcher<'a> {
    /// A watcher for a blocking pop.
    pub(crate) fn new(store: &'a Store) -> Result<Watcher<'a>> {
        match &store.backend {
            Backend::Sqlite(lite) => LiteWatcher::new(store, lite).map(Watcher::Sqlite),
            #[cfg(feature = "postgres")]
            Backend::Postgres(pg) => Ok(Watcher::Postgres(pg.watcher())),
        }
    }

    /// The queue this watcher's waiter takes from (`prefix`, `back`): read
    /// while a push in another process is committing, so that taking its
    /// item finds what it needs in the processor's caches.
    pub(crate) fn takes_from(&mut self, prefix: Option<&str>, back: bool) {
        match self {
            Watcher::Sqlite(w) => {
                let (lo, hi) = crate::queue::bounds(prefix);
                w.warm = Some(Box::new((lo, hi, back)));
            }
            #[cfg(feature = "postgres")]
            Watcher::Postgres(_) => {}
        }
    }

    /// Returns when something may have been pushed, or at `deadline`.
    pub(crate) fn wait(&mut self, deadline: Instant) -> Result<()> {
        match self {
            Watcher::Sqlite(w) => w.wait(deadline),
            #[cfg(feature = "postgres")]
            Watcher::Postgres(w) => w.wait(deadline),
        }
    }
}

impl<'a> LiteWatcher<'a> {
    /// A watcher of the directory; it holds one connection while it lives.
    fn new(store: &'a Store, lite: &'a Lite) -> Result<LiteWatcher<'a>> {
        // The doorbell is watched before the first look at the queue, so
        // no ring after that look is missed. A read-only store makes no
        // doorbell (that would create a file): it polls, unless another
        // handle of this process watches the doorbell already.
        let seen_notice = if store.is_read_only() {
            lite.notifier.state().version
        } else {
            lite.notifier.listen()
        };
        let session = LiteSession::new(lite.pool.take()?);
        let seen_version = session.data_version()?;
        Ok(LiteWatcher {
            store,
            lite,
            session: Some(session),
            seen_notice,
            seen_version,
            pause: Duration::from_millis(1),
            warm: None,
        })
    }

    /// Returns when something may have been pushed, or at `deadline`.
    fn wait(&mut self, deadline: Instant) -> Result<()> {
        loop {
            let now = Instant::now();
            if now >= deadline {
                return Ok(());
            }
            // With the doorbell watched, the poll is only the fallback for
            // writers that ring nothing; else it is the only way to notice
            // other processes, and starts fast.
            let poll = self.store.wake_poll;
            let step = if self.lite.notifier.bell.live() {
                poll
            } else {
                let step = self.pause.min(poll);
                self.pause = (self.pause * 2).min(poll);
                step
            };
            let (session, queue) = (self.session.as_ref(), self.warm.as_deref());
            let mut warm = || {
                if let (Some(s), Some((lo, hi, back))) = (session, queue) {
                    // Only the reads matter: what it finds is not used.
                    let _ = s.peek((lo, hi), 0.0, *back);
                }
            };
            if let Some(version) = self
                .lite
                .notifier
                .wait(self.seen_notice, step.min(deadline - now), &mut warm)
            {
                self.seen_notice = version;
                return Ok(());
            }
            let session = self
                .session
                .as_ref()
                .expect("a watcher holds its connection until dropped");
            let version = session.data_version()?;
            if version != self.seen_version {
                self.seen_version = version;
                return Ok(());
            }
        }
    }
}

/// What a task that watches the doorbell for the others needs of its
/// watcher: the fallback poll, one look at a time.
#[cfg(feature = "tokio")]
impl<'a> LiteWatcher<'a> {
    /// The directory's notifier.
    pub(crate) fn notifier(&self) -> &'a Notifier {
        &self.lite.notifier
    }

    /// How long to wait before the next look at `PRAGMA data_version`:
    /// `wake_poll` while the doorbell is watched, else a backoff from 1 ms
    /// up to it (a change seen starts the backoff again).
    pub(crate) fn next_step(&mut self) -> Duration {
        let poll = self.store.wake_poll;
        if self.lite.notifier.bell.live() {
            return poll;
        }
        let step = self.pause.min(poll);
        self.pause = (self.pause * 2).min(poll);
        step
    }

    /// True when another connection committed since the last look.
    pub(crate) fn committed(&mut self) -> Result<bool> {
        let session = self
            .session
            .as_ref()
            .expect("a watcher holds its connection until dropped");
        let version = session.data_version()?;
        if version == self.seen_version {
            return Ok(false);
        }
        self.seen_version = version;
        self.pause = Duration::from_millis(1);
        Ok(true)
    }
}

/// How the tasks of this process learn of commits to a store: the
/// directory's notifier (doorbell, fallback poll), or a PostgreSQL store's
/// `LISTEN` connection.
#[cfg(feature = "tokio")]
pub(crate) enum TaskWake<'a> {
    Dir {
        store: &'a Store,
        lite: &'a Lite,
    },
    #[cfg(feature = "postgres")]
    Postgres(&'a super::pg::Pg),
}

#[cfg(feature = "tokio")]
impl<'a> TaskWake<'a> {
    /// The wake of `store`'s backend.
    pub(crate) fn of(store: &'a Store) -> TaskWake<'a> {
        match &store.backend {
            Backend::Sqlite(lite) => TaskWake::Dir { store, lite },
            #[cfg(feature = "postgres")]
            Backend::Postgres(pg) => TaskWake::Postgres(pg),
        }
    }

    /// The tasks waiting on the store.
    pub(crate) fn tasks(&self) -> &'a Tasks {
        match self {
            TaskWake::Dir { lite, .. } => &lite.notifier.tasks,
            #[cfg(feature = "postgres")]
            TaskWake::Postgres(pg) => pg.tasks(),
        }
    }

    /// Before a waiter's first look: starts watching (the doorbell, or the
    /// `LISTEN` connection), so that no wake after the look is missed.
    pub(crate) fn listen(&self) {
        match self {
            TaskWake::Dir { store, lite } => {
                if !store.is_read_only() {
                    lite.notifier.listen();
                }
            }
            #[cfg(feature = "postgres")]
            TaskWake::Postgres(pg) => pg.listen(),
        }
    }

    /// A watcher of the directory (its fallback poll's connection); `None`
    /// for PostgreSQL, whose listening connection is watched already.
    pub(crate) fn dir_watcher(&self) -> Result<Option<LiteWatcher<'a>>> {
        match self {
            TaskWake::Dir { store, lite } => LiteWatcher::new(store, lite).map(Some),
            #[cfg(feature = "postgres")]
            TaskWake::Postgres(_) => Ok(None),
        }
    }

    /// The longest wait of a task without a look (the fallback poll).
    #[cfg(feature = "postgres")]
    pub(crate) fn poll(&self) -> Duration {
        match self {
            TaskWake::Dir { store, .. } => store.wake_poll,
            #[cfg(feature = "postgres")]
            TaskWake::Postgres(pg) => pg.wake_poll(),
        }
    }
}

impl Drop for LiteWatcher<'_> {
    fn drop(&mut self) {
        if let Some(session) = self.session.take() {
            self.lite.pool.give(session.conn);
        }
    }
}

#[cfg(test)]
#[cfg(target_os = "linux")]
mod tests {
    use std::time::{Duration, Instant};

    use super::Notifier;

    /// Longer than any test runs: a waiter still asleep after it was not woken.
    const LONG: Duration = Duration::from_secs(60);

    /// A wake that another thread of the process read from the doorbell
    /// (a new waiter's `listen`, the watching task) reaches the thread
    /// asleep on the doorbell too, which no ring will wake (issue 15's
    /// review: it slept until its fallback poll).
    #[test]
    fn a_wake_read_by_another_thread_reaches_the_thread_asleep_on_the_doorbell() {
        let dir = tempfile::tempdir().unwrap();
        let n = Notifier::of(dir.path());
        let seen = n.listen();
        assert!(n.bell.live(), "inotify watches the doorbell here");
        let (tx, rx) = std::sync::mpsc::channel();
        let waiter = {
            let n = n.clone();
            std::thread::spawn(move || tx.send(n.wait(seen, LONG, &mut || {})).unwrap())
        };
        let start = Instant::now();
        while !n.state().polling {
            assert!(start.elapsed() < LONG, "the waiter never polled");
            std::thread::yield_now();
        }
        // No ring: only the version moves, as after a drain by another thread.
        n.notify_threads();
        let woke = rx.recv_timeout(LONG / 2).expect("the polling thread was woken");
        assert_eq!(woke, Some(seen.wrapping_add(1)));
        waiter.join().unwrap();
    }
}
