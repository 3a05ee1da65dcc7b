//! Transactions: every write runs in `BEGIN IMMEDIATE`, value files are
//! removed only after the commit that dropped their rows, and the files a
//! failed transaction wrote are removed with it.
//!
//! `transact` registers its session in a thread-local list, so operations the
//! closure calls on the same cache (on this thread) join the transaction
//! instead of waiting for their own write lock. Nested `transact` calls are
//! savepoints.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use rusqlite::Connection;

use super::group::{self, Group, Ran, Role, Slot, Turn};
use super::writers::{self, WriteGuard};
use super::{Backend, Lite, Session, Store};
use crate::disk::Disk;
use crate::error::{Error, Result};

/// A SQLite connection with the file bookkeeping of its open transaction:
/// the directory backend's [`Session`].
pub(crate) struct LiteSession {
    pub(crate) conn: Connection,
    /// Value files whose rows this transaction dropped: removed after commit.
    pub(super) remove: Vec<String>,
    /// Value files this transaction wrote: removed if it rolls back.
    pub(super) written: Vec<String>,
    savepoints: u32,
    /// A push happened: waiters of this process are woken after commit.
    pub(super) pushed: bool,
}

impl LiteSession {
    pub(super) fn new(conn: Connection) -> LiteSession {
        LiteSession {
            conn,
            remove: Vec::new(),
            written: Vec::new(),
            savepoints: 0,
            pushed: false,
        }
    }

    /// Marks this transaction as one that adds queue items.
    pub(crate) fn mark_pushed(&mut self) {
        self.pushed = true;
    }

    /// Drops from the files to remove those another row still names (two
    /// rows of a forged or copied database naming one file): removing it
    /// would take that row's value. Run inside the transaction, just
    /// before its commit, so the rows looked at are the ones it commits.
    fn keep_shared_files(&mut self) -> Result<()> {
        if self.remove.is_empty() {
            return Ok(());
        }
        let mut stmt = self.conn.prepare_cached(super::sql::FILE_IS_NAMED)?;
        let mut kept = Vec::with_capacity(self.remove.len());
        for name in self.remove.drain(..) {
            if !stmt.exists([&name])? {
                kept.push(name);
            }
        }
        drop(stmt);
        self.remove = kept;
        Ok(())
    }

    /// Remove this value file once the transaction commits.
    pub(crate) fn remove_after_commit(&mut self, filename: Option<String>) {
        if let Some(name) = filename {
            self.remove.push(name);
        }
    }
}

type Shared = Rc<RefCell<Session>>;

thread_local! {
    /// The open `transact` sessions of this thread, by store id.
    static ACTIVE: RefCell<Vec<(usize, Shared)>> = const { RefCell::new(Vec::new()) };
}

pub(super) fn active(id: usize) -> Option<Shared> {
    ACTIVE.with(|a| a.borrow().iter().rev().find(|(i, _)| *i == id).map(|(_, s)| s.clone()))
}

/// Pops this thread's session for `id` when dropped, even on panic.
struct ActiveGuard(usize);

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        ACTIVE.with(|a| {
            let mut a = a.borrow_mut();
            if let Some(pos) = a.iter().rposition(|(i, _)| *i == self.0) {
                a.remove(pos);
            }
        });
    }
}

fn busy_session() -> Error {
    Error::InvalidUse("a cache operation was called from inside another operation's callback".into())
}

impl Store {
    /// Runs `f` in an immediate transaction, or inside this thread's open
    /// `transact` block. `written` is a value file already written for this
    /// operation: it is removed if the operation does not commit.
    pub(crate) fn write<T>(
        &self,
        retry: bool,
        written: Option<&str>,
        f: impl FnOnce(&mut Session) -> Result<T>,
    ) -> Result<T> {
        self.write_with_files(retry, written.map(str::to_owned).into_iter().collect(), f)
    }

    /// [`Store::write`] for operations that wrote several value files.
    pub(crate) fn write_with_files<T>(
        &self,
        retry: bool,
        written: Vec<String>,
        f: impl FnOnce(&mut Session) -> Result<T>,
    ) -> Result<T> {
        self.write_until(retry, None, written, f)
    }

    /// [`Store::write`] for a timed wait: the write lock is waited for until
    /// `deadline` at the latest, then [`Error::Timeout`], even with `retry`.
    pub(crate) fn write_by<T>(
        &self,
        retry: bool,
        deadline: Option<Instant>,
        f: impl FnOnce(&mut Session) -> Result<T>,
    ) -> Result<T> {
        self.write_until(retry, deadline, Vec::new(), f)
    }

    /// Called as a push begins, before it waits for the write lock: on a
    /// directory, tells the waiters of other processes that a commit with
    /// an item is coming (see `doorbell`), so that one of them wakes while
    /// the push runs. Inside a `transact` block nothing is told: its commit
    /// may be far off.
    pub(crate) fn push_starting(&self) {
        if let Backend::Sqlite(lite) = &self.backend
            && !self.read_only
            && active(self.id).is_none()
        {
            lite.notifier.push_started();
        }
    }

    fn write_until<T>(
        &self,
        retry: bool,
        deadline: Option<Instant>,
        written: Vec<String>,
        f: impl FnOnce(&mut Session) -> Result<T>,
    ) -> Result<T> {
        self.writable()?;
        if let Some(shared) = active(self.id) {
            let mut session = shared.try_borrow_mut().map_err(|_| busy_session())?;
            return self.joined(&mut session, written, f);
        }
        match &self.backend {
            Backend::Sqlite(lite) => self.write_lite(lite, retry, deadline, written, f),
            #[cfg(feature = "postgres")]
            Backend::Postgres(pg) => pg.write(retry, deadline, f),
        }
    }

    /// A write on the directory backend: led, or joined to the transaction
    /// of the thread writing now (group commit, see `group`).
    fn write_lite<T>(
        &self,
        lite: &Lite,
        retry: bool,
        deadline: Option<Instant>,
        mut written: Vec<String>,
        f: impl FnOnce(&mut Session) -> Result<T>,
    ) -> Result<T> {
        let slot = match lite.group.enter() {
            Role::Lead => return self.lead(lite, retry, deadline, written, f),
            Role::Join(slot) => slot,
        };
        // Queued behind this process's writer: as long as a wait for the
        // write lock would be.
        let until = deadline.or_else(|| (!retry).then(|| crate::deadline::from_now(self.timeout)));
        match lite.group.wait_turn(&slot, until) {
            Turn::TimedOut => {
                remove_files(&self.disk, &mut written);
                Err(Error::Timeout)
            }
            Turn::Lead => self.lead(lite, retry, deadline, written, f),
            Turn::Run(mut session) => match group::catch(|| self.joined(&mut session, written, f)) {
                Ok(Ok(value)) => {
                    slot.give_back(session, Ran::Ok);
                    slot.wait_done().map(|()| value)
                }
                Ok(Err(e)) => {
                    slot.give_back(session, Ran::Failed);
                    Err(e)
                }
                Err(panic) => {
                    slot.give_back(session, Ran::Panicked);
                    std::panic::resume_unwind(panic)
                }
            },
        }
    }

    /// Leads a group commit (see `group`): takes the write lock, runs `f`,
    /// then the operations of the writers that queued meanwhile, each
    /// under a savepoint on its own thread, and commits them all at once.
    fn lead<T>(
        &self,
        lite: &Lite,
        retry: bool,
        deadline: Option<Instant>,
        written: Vec<String>,
        f: impl FnOnce(&mut Session) -> Result<T>,
    ) -> Result<T> {
        let lead = PassLead(&lite.group);
        let mut session = Session::Sqlite(LiteSession::new(lite.pool.take()?));
        session.lite().written = written;
        let guard = match self.begin(lite, &session.lite().conn, retry, deadline) {
            Ok(guard) => guard,
            Err(e) => return self.finish(lite, session, Err(e), None),
        };
        let value = match f(&mut session) {
            Ok(value) => value,
            // Nobody joined yet: the next writer leads a batch of its own.
            Err(e) => return self.finish(lite, session, Err(e), Some(guard)),
        };
        let mut session = Box::new(session);
        let mut joined = Joined(Vec::new());
        // Writers that shared the last batch are likely on their way back:
        // give them the processor once, so that they join this one rather
        // than wait for its commit. A lone writer never yields.
        let mut yielded = !lite.group.was_shared();
        while joined.0.len() + 1 < group::MAX_BATCH {
            let slot = match lite.group.next_joiner() {
                Some(slot) => slot,
                None if !yielded => {
                    yielded = true;
                    std::thread::yield_now();
                    match lite.group.next_joiner() {
                        Some(slot) => slot,
                        None => break,
                    }
                }
                None => break,
            };
            let marks = session.file_marks();
            let (back, ran) = slot.run(session);
            session = back;
            match ran {
                Ran::Ok => joined.0.push(slot),
                Ran::Failed => {}
                Ran::Panicked => self.undo_panicked(&mut session, marks),
            }
        }
        lite.group.set_shared(!joined.0.is_empty());
        let result = self.finish(lite, *session, Ok(value), Some(guard));
        drop(lead);
        joined.done(result.as_ref().map(|_| ()));
        result
    }

    /// Undoes what a joined operation that panicked left in the batch:
    /// its savepoint, and the files it wrote.
    fn undo_panicked(&self, s: &mut Session, (remove_mark, written_mark): (usize, usize)) {
        let _ = s.execute_batch("ROLLBACK TO diskq_op; RELEASE diskq_op");
        s.keep_removed_before(remove_mark);
        self.drop_written_since(s, written_mark);
    }

    /// Runs `f` on a connection outside any explicit transaction (each
    /// statement is its own snapshot), or inside this thread's open block.
    pub(crate) fn read<T>(&self, f: impl FnOnce(&mut Session) -> Result<T>) -> Result<T> {
        if let Some(shared) = active(self.id) {
            let mut session = shared.try_borrow_mut().map_err(|_| busy_session())?;
            return f(&mut session);
        }
        match &self.backend {
            Backend::Sqlite(lite) => {
                let mut session = Session::Sqlite(LiteSession::new(lite.pool.take()?));
                let result = f(&mut session);
                lite.pool.give(session.into_lite().conn);
                result
            }
            #[cfg(feature = "postgres")]
            Backend::Postgres(pg) => pg.read(f),
        }
    }

    /// Runs `f` in one deferred read transaction: every statement sees the
    /// same snapshot, and the WAL read lock is taken once. Writers are not
    /// blocked (WAL).
    pub(crate) fn read_snapshot<T>(&self, f: impl FnOnce(&mut Session) -> Result<T>) -> Result<T> {
        if let Some(shared) = active(self.id) {
            let mut session = shared.try_borrow_mut().map_err(|_| busy_session())?;
            return f(&mut session);
        }
        #[allow(
            clippy::infallible_destructuring_match,
            reason = "the postgres feature adds a backend"
        )]
        let lite = match &self.backend {
            Backend::Sqlite(lite) => lite,
            #[cfg(feature = "postgres")]
            Backend::Postgres(pg) => return pg.read_snapshot(f),
        };
        let mut session = Session::Sqlite(LiteSession::new(lite.pool.take()?));
        if let Err(e) = session.lite().conn.execute_batch("BEGIN") {
            lite.pool.give(session.into_lite().conn);
            return Err(Error::from(e));
        }
        let result = f(&mut session);
        // Ending a read transaction cannot lose anything; a failure leaves
        // the connection in a transaction, and `give` then drops it.
        let conn = session.into_lite().conn;
        let _ = conn.execute_batch(if result.is_ok() { "COMMIT" } else { "ROLLBACK" });
        lite.pool.give(conn);
        result
    }

    /// Runs `f` inside one immediate transaction; operations on this store
    /// called by `f` on this thread join it. Nested calls are savepoints.
    /// With a `deadline`, the write lock is waited for until then at most
    /// (see [`Store::write_by`]).
    pub(crate) fn transact_by<T>(
        &self,
        retry: bool,
        deadline: Option<Instant>,
        f: impl FnOnce() -> Result<T>,
    ) -> Result<T> {
        self.writable()?;
        if let Some(shared) = active(self.id) {
            return self.nested(&shared, f);
        }
        #[allow(
            clippy::infallible_destructuring_match,
            reason = "the postgres feature adds a backend"
        )]
        let lite = match &self.backend {
            Backend::Sqlite(lite) => lite,
            #[cfg(feature = "postgres")]
            Backend::Postgres(pg) => {
                return pg.transact(retry, deadline, |session| self.run_active(session, f));
            }
        };
        let session = Session::Sqlite(LiteSession::new(lite.pool.take()?));
        let write_lock = match self.begin(lite, &session.as_lite().conn, retry, deadline) {
            Ok(guard) => guard,
            Err(e) => return self.finish(lite, session, Err(e), None),
        };
        let (session, result) = self.run_active(session, f);
        match session {
            Ok(session) => self.finish(lite, session, result, Some(write_lock)),
            Err(e) => Err(e),
        }
    }

    /// Runs `f` with `session` registered as this thread's open block of
    /// this store, and hands the session back.
    pub(super) fn run_active<T>(
        &self,
        session: Session,
        f: impl FnOnce() -> Result<T>,
    ) -> (Result<Session>, Result<T>) {
        let shared = Rc::new(RefCell::new(session));
        ACTIVE.with(|a| a.borrow_mut().push((self.id, shared.clone())));
        let guard = ActiveGuard(self.id);
        let result = f();
        drop(guard);
        let session = Rc::try_unwrap(shared)
            .map_err(|_| Error::InvalidUse("transaction session still borrowed".into()))
            .map(RefCell::into_inner);
        (session, result)
    }

    /// Takes the directory's write lock (see `writers`), then `BEGIN
    /// IMMEDIATE`; each attempt waits at most the store's timeout, and
    /// until `deadline` at the latest. With `retry`, attempts that timed
    /// out go on (until the deadline, if there is one).
    fn begin<'a>(
        &self,
        lite: &'a Lite,
        conn: &Connection,
        retry: bool,
        deadline: Option<Instant>,
    ) -> Result<WriteGuard<'a>> {
        loop {
            let per_attempt = crate::deadline::from_now(self.timeout);
            let until = deadline.map_or(per_attempt, |d| d.min(per_attempt));
            let attempt = lite.writers.acquire(until).and_then(|guard| {
                writers::begin_by(conn, until)?;
                Ok(guard)
            });
            match attempt {
                Err(e) if retry && e.is_timeout() && deadline.is_none_or(|d| Instant::now() < d) => continue,
                other => return other,
            }
        }
    }

    /// Commits on success, rolls back on error; releases the write lock;
    /// removes the files each outcome leaves unreferenced; returns the
    /// connection to the pool.
    fn finish<T>(&self, lite: &Lite, session: Session, result: Result<T>, guard: Option<WriteGuard<'_>>) -> Result<T> {
        let mut session = session.into_lite();
        let result = match result.and_then(|value| session.keep_shared_files().map(|()| value)) {
            Ok(value) => super::pool::run_cached(&session.conn, "COMMIT")
                .map(|()| value)
                .map_err(Error::from),
            Err(e) => Err(e),
        };
        if result.is_ok() {
            lite.writers.after_commit(&session.conn);
        } else if !session.conn.is_autocommit() {
            // SQLite may already have rolled back (after SQLITE_FULL or an I/O
            // error); the first error is the one reported.
            let _ = session.conn.execute_batch("ROLLBACK");
        }
        drop(guard);
        if result.is_ok() {
            remove_files(&self.disk, &mut session.remove);
            session.written.clear();
            if session.pushed {
                lite.notifier.pushed();
            }
        } else {
            session.remove.clear();
            remove_files(&self.disk, &mut session.written);
        }
        lite.pool.give(session.conn);
        result
    }
}

impl Store {
    /// Runs one operation inside this thread's open `transact` block, under
    /// a savepoint: an operation that fails part-way leaves nothing behind,
    /// even if the block goes on.
    fn joined<T>(&self, s: &mut Session, written: Vec<String>, f: impl FnOnce(&mut Session) -> Result<T>) -> Result<T> {
        let (remove_mark, written_mark) = s.file_marks();
        s.wrote(written);
        if let Err(e) = s.execute_batch("SAVEPOINT diskq_op") {
            self.drop_written_since(s, written_mark);
            return Err(e);
        }
        match f(s) {
            Ok(v) => {
                s.execute_batch("RELEASE diskq_op")?;
                Ok(v)
            }
            Err(e) => {
                let _ = s.execute_batch("ROLLBACK TO diskq_op; RELEASE diskq_op");
                s.keep_removed_before(remove_mark);
                self.drop_written_since(s, written_mark);
                Err(e)
            }
        }
    }

    fn nested<T>(&self, shared: &Shared, f: impl FnOnce() -> Result<T>) -> Result<T> {
        let (name, remove_mark, written_mark) = {
            let mut s = shared.try_borrow_mut().map_err(|_| busy_session())?;
            let depth = s.enter_savepoint();
            let name = format!("diskq_{depth}");
            s.execute_batch(&format!("SAVEPOINT {name}"))?;
            let (remove_mark, written_mark) = s.file_marks();
            (name, remove_mark, written_mark)
        };
        let result = f();
        let mut s = shared.try_borrow_mut().map_err(|_| busy_session())?;
        s.leave_savepoint();
        match result {
            Ok(v) => {
                s.execute_batch(&format!("RELEASE {name}"))?;
                Ok(v)
            }
            Err(e) => {
                let _ = s.execute_batch(&format!("ROLLBACK TO {name}; RELEASE {name}"));
                // The rolled-back rows are back, so their files must stay; the
                // files written since the savepoint are referenced by nothing.
                s.keep_removed_before(remove_mark);
                self.drop_written_since(&mut s, written_mark);
                Err(e)
            }
        }
    }

    /// Removes the value files written since `mark` (their rows rolled back).
    fn drop_written_since(&self, s: &mut Session, mark: usize) {
        match s {
            Session::Sqlite(s) => {
                let mut orphans = s.written.split_off(mark);
                remove_files(&self.disk, &mut orphans);
            }
            #[cfg(feature = "postgres")]
            Session::Postgres(_) => {}
        }
    }
}

impl LiteSession {
    pub(super) fn file_marks(&self) -> (usize, usize) {
        (self.remove.len(), self.written.len())
    }

    pub(super) fn wrote(&mut self, written: Vec<String>) {
        self.written.extend(written);
    }

    pub(super) fn keep_removed_before(&mut self, mark: usize) {
        self.remove.truncate(mark);
    }

    pub(super) fn enter_savepoint(&mut self) -> u32 {
        self.savepoints += 1;
        self.savepoints
    }

    pub(super) fn leave_savepoint(&mut self) {
        self.savepoints -= 1;
    }

    pub(super) fn execute_batch(&self, sql: &str) -> Result<()> {
        // One statement (a joined write's savepoint and its release, once
        // per write in a group commit): through the statement cache.
        if sql.contains(';') {
            self.conn.execute_batch(sql).map_err(Error::from)
        } else {
            super::pool::run_cached(&self.conn, sql).map_err(Error::from)
        }
    }
}

/// Hands the lead of the group to the next queued writer when the leader
/// is done, even on panic.
struct PassLead<'a>(&'a Group);

impl Drop for PassLead<'_> {
    fn drop(&mut self) {
        self.0.pass_lead();
    }
}

/// The writers whose operations are in the leader's transaction: told how
/// its commit ended, and told of a failure if the leader panicked first.
struct Joined(Vec<Arc<Slot>>);

impl Joined {
    fn done(mut self, result: std::result::Result<(), &Error>) {
        for slot in self.0.drain(..) {
            slot.done(result.map_err(group::copy_error));
        }
    }
}

impl Drop for Joined {
    fn drop(&mut self) {
        for slot in self.0.drain(..) {
            slot.done(Err(Error::InvalidUse(
                "the thread committing this write panicked; it was not committed".into(),
            )));
        }
    }
}

fn remove_files(disk: &Disk, names: &mut Vec<String>) {
    for name in names.drain(..) {
        disk.remove(&name);
    }
}
