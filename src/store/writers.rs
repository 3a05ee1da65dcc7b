//! Writers under contention: a fair handoff of the write lock, and
//! checkpoints off the write path.
//!
//! **Handoff.** SQLite's own busy handler sleeps 1, 2, 5, 10 … 100 ms
//! between looks at a taken write lock, while other writers keep winning
//! it. diskq's write transactions (`BEGIN IMMEDIATE` … `COMMIT`) instead
//! queue, in arrival order, on an in-process lock per directory, and the
//! thread at its head takes OS file locks shared by the processes (a place
//! in the line on `cache.db.wturn` on Linux, the turnstile `cache.db.wturn`
//! elsewhere, then `cache.db.wlock`; see `OsLock` and `line.rs`) before
//! `BEGIN IMMEDIATE`; a process that waits sleeps in the kernel and is woken
//! when the lock is let go. A process that just wrote may go ahead of the
//! waiting ones a few times in a row ([`STREAK`]). An OS file lock dies with its process: a writer
//! killed while waiting or holding leaves nothing behind. python-diskcache
//! writers take no such lock; they meet diskq's at SQLite's lock, where
//! diskq waits with short sleeps too (see [`set_busy_handler`]). Every wait
//! is bounded by the caller's deadline, then [`Error::Timeout`].
//!
//! **Checkpoints.** diskq's connections run with `wal_autocheckpoint = 0`,
//! so no commit runs a checkpoint; a hook on each commit notes the log's
//! size and wakes a checkpointer thread (one per process and directory,
//! started by the first write, ended when the last handle of the directory
//! in the process is dropped), which runs `PASSIVE` checkpoints on its own
//! connection. A log past [`WAL_BOUND_PAGES`] (a reader that stays open
//! keeps checkpoints from finishing) makes the committing writer run a
//! blocking checkpoint itself, counted in [`Writers::blocking_checkpoints`].
//!
//! A process forked from one that used these sees its own state afresh (the
//! process id is checked, as the pool does): no thread, no lock holder, its
//! own lock files. It still keeps open the parent's descriptions of them
//! (close-on-exec is not close-on-fork, and closing them needs their
//! ownership, which the parent's helper thread shares): a parent that dies
//! while writing or in line leaves its lock or place held until such a
//! child exits or execs too (the crate docs' fork section).

use std::collections::{HashMap, VecDeque};
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, LazyLock, Mutex, MutexGuard, Weak};
use std::thread::{JoinHandle, ThreadId};
use std::time::{Duration, Instant};

use rusqlite::Connection;

use crate::error::{Error, Result};

/// The cross-process write lock's file name. It starts with `cache.db`, so
/// python-diskcache's `check` does not take it for an unknown value file.
pub(crate) const WLOCK_NAME: &str = "cache.db.wlock";
/// The file in front of the write lock: the line on Linux (`line.rs`), the
/// turnstile elsewhere (see `OsLock`).
pub(crate) const WTURN_NAME: &str = "cache.db.wturn";
/// Log pages after which the checkpointer runs (8 MiB of 4 KiB pages).
const CHECKPOINT_PAGES: i64 = 2000;
/// Log pages (64 MiB of 4 KiB pages) past which a committing writer runs a
/// blocking checkpoint itself.
pub(crate) const WAL_BOUND_PAGES: i64 = 16_384;
/// Log pages past which the checkpointer finishes a checkpoint under the
/// write lock, so that the log starts again (32 MiB of 4 KiB pages).
const RESTART_PAGES: i64 = 8192;
/// How long the checkpointer waits for the write lock to finish a checkpoint.
const RESTART_PATIENCE: Duration = Duration::from_millis(500);
/// Transactions a process (or a thread, in its process) may run in a row
/// ahead of waiting ones before it queues again.
const STREAK: u32 = 8;
/// Looks at the line (or the turnstile) and the lock before a writer waits
/// through the helper thread, and the pause between two.
const QUICK_LOOKS: u32 = 3;
const QUICK_PAUSE: Duration = Duration::from_micros(30);
/// Passive checkpoint: copies what it can, waits for nobody.
const CHECKPOINT_PASSIVE: &str = "PRAGMA wal_checkpoint(PASSIVE)";
/// Blocking checkpoint: waits (with the busy handler) for readers, then
/// lets the next writer start the log from its beginning.
const CHECKPOINT_RESTART: &str = "PRAGMA wal_checkpoint(RESTART)";

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The log's size as the commits of this process saw it, and the
/// checkpointer's wake-up.
#[derive(Debug, Default)]
pub(crate) struct Signal {
    /// Pages in the log after the latest commit.
    pages: AtomicI64,
    state: Mutex<SignalState>,
    cv: Condvar,
}

#[derive(Debug, Default)]
struct SignalState {
    /// The log's pages when the checkpointer last started.
    done: i64,
    stop: bool,
}

impl Signal {
    /// Called by the commit hook: the log now holds `pages` pages.
    fn committed(&self, pages: i64) {
        self.pages.store(pages, Ordering::Relaxed);
        let mut st = lock(&self.state);
        if pages < st.done {
            // The log started again from its beginning.
            st.done = 0;
        }
        if pages - st.done >= CHECKPOINT_PAGES {
            self.cv.notify_one();
        }
    }

    fn stop(&self) {
        lock(&self.state).stop = true;
        self.cv.notify_all();
    }
}

/// Installs the commit hook that reports the log's size to `signal`. It
/// replaces SQLite's auto-checkpoint, which `wal_autocheckpoint = 0` (run
/// before) turned off.
pub(crate) fn install_hook(conn: &mut Connection, signal: Arc<Signal>) -> Result<()> {
    conn.wal_hook(Some(move |_: &mut rusqlite::hooks::Wal, pages: i32| {
        signal.committed(i64::from(pages));
        Ok(())
    }))?;
    Ok(())
}

/// SQLite's pause before lock attempt `attempt + 1`: 50 µs, growing to 1 ms.
fn busy_pause(attempt: i32) -> Duration {
    let level = (attempt / 4).clamp(0, 5) as u32;
    Duration::from_micros((50u64 << level).min(1000))
}

thread_local! {
    /// Times in a row this thread took a directory's in-process lock ahead
    /// of threads that waited for it.
    static BARGES: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
    /// The deadline of the `BEGIN IMMEDIATE` this thread runs, if any: it
    /// replaces the connection's own timeout (see [`begin_by`]).
    static BEGIN_UNTIL: std::cell::Cell<Option<Instant>> = const { std::cell::Cell::new(None) };
}

/// Waits for a busy database with short sleeps (50 µs to 1 ms) for at most
/// `timeout` per statement (or until the deadline of [`begin_by`]), instead
/// of SQLite's 1 … 100 ms steps.
pub(crate) fn set_busy_handler(conn: &mut Connection, timeout: Duration) -> Result<()> {
    let mut until = Instant::now();
    conn.busy_handler(Some(move |attempt: i32| {
        if let Some(deadline) = BEGIN_UNTIL.get() {
            return wait_until(attempt, deadline);
        }
        if attempt == 0 {
            until = crate::deadline::from_now(timeout);
        }
        wait_until(attempt, until)
    }))?;
    Ok(())
}

/// Runs `BEGIN IMMEDIATE` on `conn`, waiting for SQLite's lock until
/// `until` at most.
pub(crate) fn begin_by(conn: &Connection, until: Instant) -> Result<()> {
    BEGIN_UNTIL.set(Some(until));
    let begun = super::pool::run_cached(conn, "BEGIN IMMEDIATE").map_err(Error::from);
    BEGIN_UNTIL.set(None);
    begun
}

/// A busy handler's pause before attempt `attempt + 1`: false (give up) at `until`.
fn wait_until(attempt: i32, until: Instant) -> bool {
    let left = until.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return false;
    }
    std::thread::sleep(busy_pause(attempt).min(left));
    true
}

/// The writers of one directory in this process; dropping the last one
/// ends the checkpointer thread.
#[derive(Debug)]
pub(crate) struct Writers {
    inner: Arc<Inner>,
}

impl std::ops::Deref for Writers {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.inner
    }
}

/// What the writers and the checkpointer of one directory share.
#[derive(Debug)]
pub(crate) struct Inner {
    db_path: PathBuf,
    wlock_path: PathBuf,
    wturn_path: PathBuf,
    timeout: Duration,
    state: Mutex<State>,
    cv: Condvar,
    blocking: AtomicU64,
}

#[derive(Debug)]
struct State {
    pid: u32,
    holder: Option<ThreadId>,
    queue: VecDeque<u64>,
    next: u64,
    /// The cross-process lock files, opened by the first write.
    os: Option<Arc<OsLock>>,
    signal: Arc<Signal>,
    checkpointer: Option<JoinHandle<()>>,
}

static REGISTRY: LazyLock<Mutex<HashMap<PathBuf, Weak<Writers>>>> = LazyLock::new(Default::default);

impl Writers {
    /// The writers of the database at `db_path` (canonical) in this process.
    pub(crate) fn of(db_path: &Path, timeout: Duration) -> Arc<Writers> {
        let mut reg = lock(&REGISTRY);
        reg.retain(|_, w| w.strong_count() > 0);
        if let Some(w) = reg.get(db_path).and_then(Weak::upgrade) {
            return w;
        }
        let beside = |name: &str| {
            let mut path = db_path.as_os_str().to_owned();
            path.push(&name["cache.db".len()..]);
            PathBuf::from(path)
        };
        let w = Arc::new(Writers {
            inner: Arc::new(Inner {
                db_path: db_path.to_path_buf(),
                wlock_path: beside(WLOCK_NAME),
                wturn_path: beside(WTURN_NAME),
                timeout,
                state: Mutex::new(State {
                    pid: std::process::id(),
                    holder: None,
                    queue: VecDeque::new(),
                    next: 0,
                    os: None,
                    signal: Arc::default(),
                    checkpointer: None,
                }),
                cv: Condvar::new(),
                blocking: AtomicU64::new(0),
            }),
        });
        reg.insert(db_path.to_path_buf(), Arc::downgrade(&w));
        w
    }

    /// Takes the write lock (see [`Inner::acquire`]), starting this
    /// process's checkpointer for the directory first if it is not running.
    pub(crate) fn acquire(&self, until: Instant) -> Result<WriteGuard<'_>> {
        {
            let mut st = self.state();
            if st.checkpointer.is_none() {
                let (inner, signal) = (self.inner.clone(), st.signal.clone());
                st.checkpointer = std::thread::Builder::new()
                    .name("diskq-checkpoint".into())
                    .spawn(move || checkpointer(&inner, &signal))
                    .ok();
            }
        }
        self.inner.acquire(until)
    }
}

impl Inner {
    /// The state, reset first in a process forked since it was last used.
    fn state(&self) -> MutexGuard<'_, State> {
        let mut st = lock(&self.state);
        let pid = std::process::id();
        if st.pid != pid {
            // The parent's threads (holder, waiters, checkpointer) do not
            // exist here; its lock file's description is shared with the
            // parent, so it must not be unlocked here, only closed.
            st.pid = pid;
            st.holder = None;
            st.queue.clear();
            // Leaked, not dropped: the parent's helper thread holds a clone.
            std::mem::forget(st.os.take());
            st.signal = Arc::default();
            std::mem::forget(st.checkpointer.take());
        }
        st
    }

    /// The signal that connections opened now must report commits to.
    pub(crate) fn signal(&self) -> Arc<Signal> {
        self.state().signal.clone()
    }

    /// Blocking checkpoints run by writers of this process on this directory.
    pub(crate) fn blocking_checkpoints(&self) -> u64 {
        self.blocking.load(Ordering::Relaxed)
    }

    /// Takes the write lock of this directory for this thread: first in
    /// line among this process's writers, then the OS file lock shared by
    /// the processes. [`Error::Timeout`] at `until`. A thread that holds it
    /// already (a second handle of the directory used inside a `transact`
    /// block) gets a guard that holds nothing, and meets SQLite's lock.
    pub(crate) fn acquire(&self, until: Instant) -> Result<WriteGuard<'_>> {
        let me = std::thread::current().id();
        let mut st = self.state();
        if st.holder == Some(me) {
            return Ok(WriteGuard {
                writers: self,
                os: None,
                owned: false,
            });
        }
        if st.holder.is_none() {
            // Free: taken at once when nobody waits, or by a thread that has
            // not yet gone ahead of the waiters `STREAK` times in a row.
            let streak = BARGES.get();
            if st.queue.is_empty() || streak < STREAK {
                BARGES.set(if st.queue.is_empty() { 0 } else { streak + 1 });
                st.holder = Some(me);
                return self.take_os(st, until);
            }
        }
        BARGES.set(0);
        let ticket = st.next;
        st.next += 1;
        st.queue.push_back(ticket);
        loop {
            if st.holder.is_none() && st.queue.front() == Some(&ticket) {
                st.queue.pop_front();
                st.holder = Some(me);
                break;
            }
            let now = Instant::now();
            if now >= until {
                st.queue.retain(|t| *t != ticket);
                drop(st);
                self.cv.notify_all();
                return Err(Error::Timeout);
            }
            st = self
                .cv
                .wait_timeout(st, until - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        self.take_os(st, until)
    }

    /// The OS locks, for the thread that now holds the in-process lock.
    fn take_os<'a>(&'a self, mut st: MutexGuard<'_, State>, until: Instant) -> Result<WriteGuard<'a>> {
        if st.os.is_none() {
            st.os = OsLock::open(&self.wlock_path, &self.wturn_path).map(Arc::new);
        }
        let os = st.os.clone();
        drop(st);
        let mut guard = WriteGuard {
            writers: self,
            os,
            owned: true,
        };
        if let Some(os) = &guard.os
            && !os.take(until)
        {
            // Not taken: released as the in-process lock alone.
            guard.os = None;
            drop(guard);
            return Err(Error::Timeout);
        }
        Ok(guard)
    }

    /// After a commit: a log past the bound is checkpointed by the writer
    /// itself, waiting for readers up to the timeout.
    pub(crate) fn after_commit(&self, conn: &Connection) {
        let signal = self.state().signal.clone();
        if signal.pages.load(Ordering::Relaxed) <= WAL_BOUND_PAGES {
            return;
        }
        self.blocking.fetch_add(1, Ordering::Relaxed);
        // SQLite answers "busy" at once, without the busy handler, while
        // another connection (the checkpointer) is checkpointing: wait for it.
        let until = crate::deadline::from_now(self.timeout);
        let mut attempt = 0;
        loop {
            let busy = conn.query_row(CHECKPOINT_RESTART, [], |r| r.get::<_, i64>(0));
            if !matches!(busy, Ok(1)) || !wait_until(attempt, until) {
                break;
            }
            attempt += 1;
        }
        signal.pages.store(0, Ordering::Relaxed);
    }
}

impl Drop for Writers {
    fn drop(&mut self) {
        let (signal, handle, pid, os) = {
            let mut st = lock(&self.inner.state);
            (st.signal.clone(), st.checkpointer.take(), st.pid, st.os.take())
        };
        let same_process = pid == std::process::id();
        if let Some(os) = os {
            os.shutdown(same_process);
        }
        signal.stop();
        if let Some(handle) = handle {
            if same_process {
                let _ = handle.join();
            } else {
                std::mem::forget(handle);
            }
        }
    }
}

/// The checkpointer thread: a passive checkpoint each time the log grew by
/// [`CHECKPOINT_PAGES`], until stopped.
///
/// Under a steady stream of writes a passive checkpoint never catches up
/// with the log's end, and SQLite starts the log again from its beginning
/// only when a write begins with every frame copied. So once the log is
/// past [`RESTART_PAGES`], the checkpoint is finished under the write lock
/// (copying what came in since the first pass: little), and the next
/// writer starts the log afresh.
fn checkpointer(inner: &Inner, signal: &Signal) {
    let mut conn: Option<Connection> = None;
    loop {
        {
            let mut st = lock(&signal.state);
            loop {
                if st.stop {
                    return;
                }
                let pages = signal.pages.load(Ordering::Relaxed);
                if pages - st.done >= CHECKPOINT_PAGES {
                    st.done = pages;
                    break;
                }
                st = signal.cv.wait(st).unwrap_or_else(|p| p.into_inner());
            }
        }
        if conn.is_none() {
            conn = super::pool::connect(&inner.db_path, inner.timeout).ok();
        }
        let Some(c) = &conn else { continue };
        // A failure (another checkpoint running, an I/O error) leaves the
        // log to the next round or to the bound.
        let Ok((busy, log, copied)) = passive(c) else { continue };
        if busy != 0 || log < RESTART_PAGES || copied < 0 {
            continue;
        }
        let until = crate::deadline::from_now(RESTART_PATIENCE.min(inner.timeout));
        if let Ok(guard) = inner.acquire(until) {
            let _ = passive(c);
            drop(guard);
        }
    }
}

/// Runs a passive checkpoint: (busy, frames in the log, frames copied).
fn passive(conn: &Connection) -> rusqlite::Result<(i64, i64, i64)> {
    conn.query_row(CHECKPOINT_PASSIVE, [], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
}

/// The lock files shared by the processes, and this process's helper
/// thread that waits for them in the kernel.
///
/// The write lock is `cache.db.wlock`; `cache.db.wturn` is the turnstile in
/// front of it: a process waits for the turnstile, then (holding it) for the
/// lock, and lets the turnstile go once it has the lock. So at most one
/// process waits for the lock itself, and a writer that just let it go
/// queues behind the others (in the turnstile) instead of taking it again
/// at once. The kernel wakes a waiter as soon as a lock is let go; since no
/// blocking lock takes a timeout, a helper thread blocks in it, and the
/// writer waits for the helper with its deadline. A writer that gave up
/// leaves what the helper then gets to the next writer of the process, or
/// it is let go.
///
/// On Linux the turnstile's file holds the line instead (`line.rs`): the
/// processes waiting pass in the order they came, not as the turnstile's
/// wakeups fall; the turnstile remains where the kernel has no open file
/// description locks. With the line, the processes that passed wait for the
/// lock itself (usually one; more when one in front gave up).
///
/// A writer that gave up (its deadline) while the helper waits leaves the
/// helper waiting in the line or for the lock: the processes behind wait for
/// it to get the lock, which it then lets go at once (or hands to the next
/// writer of this process).
#[derive(Debug)]
struct OsLock {
    lock: File,
    turn: File,
    /// The line on the turnstile's file, where the kernel has open file
    /// description locks (Linux): processes then pass in the order they
    /// came, instead of as the turnstile's wakeups fall.
    #[cfg(target_os = "linux")]
    line: Option<super::line::Line>,
    hs: Mutex<Handoff>,
    cv: Condvar,
    helper: Mutex<Option<JoinHandle<()>>>,
}

#[derive(Debug, Default)]
struct Handoff {
    /// A writer of this process waits for the lock.
    want: bool,
    /// The helper got the lock for the writer that waits.
    held: bool,
    /// The helper waits in the kernel.
    inflight: bool,
    /// The writer took the turnstile but not the lock: the helper waits for
    /// the lock alone.
    has_turn: bool,
    /// Transactions in a row this process took without the line (or the
    /// turnstile).
    streak: u32,
    /// This process's place in the line, from joining it until its write
    /// is over (or it gave up).
    #[cfg(target_os = "linux")]
    place: Option<super::line::Place>,
    /// The process in front of `place` has left.
    #[cfg(target_os = "linux")]
    passed: bool,
    stop: bool,
}

impl OsLock {
    /// Both files, or none when they cannot be opened (a read-only
    /// directory, something else at their names): writers then meet at
    /// SQLite's lock alone.
    fn open(lock: &Path, turn: &Path) -> Option<OsLock> {
        let turn = open_lock_file(turn)?;
        Some(OsLock {
            lock: open_lock_file(lock)?,
            #[cfg(target_os = "linux")]
            line: turn.try_clone().ok().and_then(super::line::Line::new),
            turn,
            hs: Mutex::default(),
            cv: Condvar::new(),
            helper: Mutex::new(None),
        })
    }

    /// Takes the lock for this process's writer (the head of its queue);
    /// false at `until`. A file system without locks counts as taken.
    fn take(self: &Arc<Self>, until: Instant) -> bool {
        let mut hs = lock(&self.hs);
        // A process that has the lock in turn may write a few times over
        // before it queues again: fewer switches between processes, and the
        // others wait for at most that many transactions more.
        if !hs.inflight && !hs.held && hs.streak < STREAK {
            match self.lock.try_lock() {
                Ok(()) => {
                    hs.streak += 1;
                    return true;
                }
                Err(fs::TryLockError::WouldBlock) => {}
                Err(fs::TryLockError::Error(_)) => return true,
            }
        }
        hs.streak = 0;
        #[cfg(target_os = "linux")]
        if let Some(line) = &self.line {
            return self.take_in_line(line, hs, until);
        }
        // A few quick looks first: most waits are for one short transaction,
        // shorter than two thread wakeups through the helper.
        let mut looks = 0;
        while !hs.inflight && !hs.held && !hs.has_turn {
            match self.turn.try_lock() {
                Ok(()) => match self.lock.try_lock() {
                    Ok(()) => {
                        let _ = self.turn.unlock();
                        return true;
                    }
                    Err(fs::TryLockError::WouldBlock) => hs.has_turn = true,
                    Err(fs::TryLockError::Error(_)) => {
                        let _ = self.turn.unlock();
                        return true;
                    }
                },
                Err(fs::TryLockError::WouldBlock) => {}
                Err(fs::TryLockError::Error(_)) => return true,
            }
            looks += 1;
            if hs.has_turn || looks > QUICK_LOOKS || Instant::now() >= until {
                break;
            }
            std::thread::sleep(QUICK_PAUSE);
        }
        hs.want = true;
        if !self.ensure_helper() {
            // No thread: wait here, looking now and then.
            hs.want = false;
            let has_turn = std::mem::take(&mut hs.has_turn);
            drop(hs);
            return self.poll(has_turn, until);
        }
        self.await_helper(hs, until)
    }

    /// Takes the lock through the line: joins it (unless this process's
    /// place is still in it), a few quick looks for the process in front to
    /// leave and for the lock, then through the helper thread.
    #[cfg(target_os = "linux")]
    fn take_in_line(
        self: &Arc<Self>,
        line: &super::line::Line,
        mut hs: MutexGuard<'_, Handoff>,
        until: Instant,
    ) -> bool {
        if !hs.inflight && !hs.held && hs.place.is_none() {
            match line.join(until) {
                Ok(Some(place)) => {
                    hs.place = Some(place);
                    hs.passed = false;
                }
                // No place (the counter stayed taken, the slot was held) or
                // the line failed (an I/O error on its file): the lock alone.
                Ok(None) | Err(_) => {
                    drop(hs);
                    return lock_by(&self.lock, until);
                }
            }
        }
        let mut looks = 0;
        while !hs.inflight && !hs.held {
            let Some(place) = hs.place else { break };
            if !hs.passed {
                hs.passed = line.pass(place, false).unwrap_or(true);
            }
            if hs.passed {
                match self.lock.try_lock() {
                    Ok(()) => return true,
                    Err(fs::TryLockError::WouldBlock) => {}
                    Err(fs::TryLockError::Error(_)) => return true,
                }
            }
            looks += 1;
            if looks > QUICK_LOOKS || Instant::now() >= until {
                break;
            }
            std::thread::sleep(QUICK_PAUSE);
        }
        hs.want = true;
        if !self.ensure_helper() {
            hs.want = false;
            let (place, passed) = (hs.place.take(), std::mem::take(&mut hs.passed));
            drop(hs);
            // No thread: wait here, looking now and then.
            let pass = |p| {
                let Ok(passed) = crate::deadline::poll_until(until, || {
                    Ok::<_, std::convert::Infallible>(line.pass(p, false).unwrap_or(true))
                });
                passed
            };
            let got = place.is_none_or(|p| passed || pass(p)) && lock_by(&self.lock, until);
            if let Some(p) = place {
                if got {
                    lock(&self.hs).place = Some(p);
                } else {
                    line.leave(p);
                }
            }
            return got;
        }
        self.await_helper(hs, until)
    }

    /// Leaves the line after the write (or a wait that gave up), unless
    /// the helper holds the place (it lets it go when it is done).
    fn leave_line(&self) {
        let mut hs = lock(&self.hs);
        if !hs.inflight {
            self.leave_line_locked(&mut hs);
        }
    }

    /// Leaves the line, with `hs` held (so that no writer takes up the
    /// place in between).
    fn leave_line_locked(&self, hs: &mut Handoff) {
        #[cfg(target_os = "linux")]
        if let Some(line) = &self.line {
            hs.passed = false;
            if let Some(place) = hs.place.take() {
                line.leave(place);
            }
        }
        #[cfg(not(target_os = "linux"))]
        let _ = hs;
    }

    /// Waits for the helper to get the lock (`want` is set); false at
    /// `until`.
    fn await_helper(self: &Arc<Self>, mut hs: MutexGuard<'_, Handoff>, until: Instant) -> bool {
        self.cv.notify_all();
        loop {
            if hs.held {
                hs.held = false;
                hs.want = false;
                return true;
            }
            let now = Instant::now();
            if now >= until {
                hs.want = false;
                if std::mem::take(&mut hs.has_turn) {
                    let _ = self.turn.unlock();
                }
                if !hs.inflight {
                    self.leave_line_locked(&mut hs);
                }
                return false;
            }
            hs = self
                .cv
                .wait_timeout(hs, until - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// Starts the helper thread if it is not running; false if it cannot be.
    fn ensure_helper(self: &Arc<Self>) -> bool {
        let mut helper = lock(&self.helper);
        if helper.is_none() {
            let me = self.clone();
            *helper = std::thread::Builder::new()
                .name("diskq-wlock".into())
                .spawn(move || me.help())
                .ok();
        }
        helper.is_some()
    }

    fn help(&self) {
        loop {
            let has_turn = {
                let mut hs = lock(&self.hs);
                loop {
                    if hs.stop {
                        return;
                    }
                    if hs.want && !hs.inflight && !hs.held {
                        break;
                    }
                    hs = self.cv.wait(hs).unwrap_or_else(|p| p.into_inner());
                }
                hs.inflight = true;
                std::mem::take(&mut hs.has_turn)
            };
            if !self.wait_in_line() {
                if !has_turn {
                    lock_blocking(&self.turn);
                }
                lock_blocking(&self.lock);
                let _ = self.turn.unlock();
            }
            let mut hs = lock(&self.hs);
            hs.inflight = false;
            if hs.want && !hs.stop {
                hs.held = true;
                self.cv.notify_all();
            } else {
                let _ = self.lock.unlock();
                self.leave_line_locked(&mut hs);
            }
        }
    }

    /// For the helper: waits in the line (joining it if the writer has
    /// not) for the process in front, then for the lock; false where there
    /// is no line (the turnstile then).
    fn wait_in_line(&self) -> bool {
        #[cfg(target_os = "linux")]
        if let Some(line) = &self.line {
            let (place, passed) = {
                let hs = lock(&self.hs);
                (hs.place, hs.passed)
            };
            let place = match place {
                Some(p) => Some(p),
                // The writer's place went (it gave up): a new one, or the
                // lock alone.
                None => line
                    .join(crate::deadline::from_now(Duration::from_secs(1)))
                    .ok()
                    .flatten(),
            };
            if let Some(p) = place {
                if !passed {
                    let _ = line.pass(p, true);
                }
                let mut hs = lock(&self.hs);
                hs.place = Some(p);
                hs.passed = true;
            }
            lock_blocking(&self.lock);
            return true;
        }
        false
    }

    /// Without a helper: the turnstile, then the lock, each looked at
    /// every 20 µs to 1 ms.
    fn poll(&self, has_turn: bool, until: Instant) -> bool {
        if !has_turn && !lock_by(&self.turn, until) {
            return false;
        }
        let got = lock_by(&self.lock, until);
        let _ = self.turn.unlock();
        got
    }

    /// Stops the helper; joined unless it waits in the kernel (it then ends
    /// once it has the locks, and lets them go).
    fn shutdown(&self, same_process: bool) {
        let inflight = {
            let mut hs = lock(&self.hs);
            hs.stop = true;
            hs.inflight
        };
        self.cv.notify_all();
        let handle = lock(&self.helper).take();
        match handle {
            Some(h) if same_process && !inflight => {
                let _ = h.join();
            }
            Some(h) if !same_process => std::mem::forget(h),
            _ => {}
        }
    }
}

/// Opens a lock file (not following a link, not blocking on a FIFO).
fn open_lock_file(path: &Path) -> Option<File> {
    crate::disk::regular_or_absent(path).ok()?;
    let mut options = fs::OpenOptions::new();
    // Read too: the line keeps its ticket counter in the turnstile's file.
    options.create(true).truncate(false).read(true).write(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC);
    }
    let file = options.open(path).ok()?;
    file.metadata().ok().filter(fs::Metadata::is_file)?;
    Some(file)
}

/// Takes the OS lock on `file`, sleeping in the kernel until it is free
/// (again after a signal). Another error (a file system without locks)
/// ends the wait: the helper then goes on as if it had the lock, as
/// [`lock_by`] counts such a lock as taken.
fn lock_blocking(file: &File) {
    loop {
        match file.lock() {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            _ => return,
        }
    }
}

/// Takes the OS lock on `file`, looking every 20 µs to 1 ms; false at
/// `until`. A file system without locks counts as taken.
fn lock_by(file: &File, until: Instant) -> bool {
    let Ok(got) = crate::deadline::poll_until(until, || {
        Ok::<_, std::convert::Infallible>(!matches!(file.try_lock(), Err(fs::TryLockError::WouldBlock)))
    });
    got
}

/// The write lock of a directory held by this thread; released on drop.
#[derive(Debug)]
pub(crate) struct WriteGuard<'a> {
    writers: &'a Inner,
    os: Option<Arc<OsLock>>,
    owned: bool,
}

impl Drop for WriteGuard<'_> {
    fn drop(&mut self) {
        if !self.owned {
            return;
        }
        if let Some(os) = &self.os {
            let _ = os.lock.unlock();
            os.leave_line();
        }
        let mut st = self.writers.state();
        st.holder = None;
        drop(st);
        self.writers.cv.notify_all();
    }
}
