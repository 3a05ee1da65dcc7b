//! Group commit for the threads of one process.
//!
//! A write that arrives while another thread of this process is writing to
//! the same store does not wait for the write lock itself: it queues here.
//! The writer in front (the *leader*) takes the write lock, runs its own
//! operation, then hands its open transaction to each queued writer in
//! turn — the session moves to the waiting thread, which runs its own
//! operation under a savepoint and hands it back — and commits once for
//! all of them. Each caller returns only after the commit that holds its
//! write; an operation that fails rolls back its savepoint and fails alone;
//! a failed commit fails every operation of the batch. The queue is served
//! in arrival order, and once a batch is committed the first writer still
//! queued leads the next one.
//!
//! Operations run on their own thread (their closures borrow that thread's
//! stack), so nothing but the session crosses threads. `transact` blocks
//! keep their own transaction and do not pass through here.

use std::collections::VecDeque;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Instant;

use super::Session;
use crate::error::{Error, Result};

/// The most operations committed by one transaction: bounds how long the
/// first of them waits for its commit.
pub(super) const MAX_BATCH: usize = 32;

/// The writers of one store in this process.
#[derive(Default)]
pub(super) struct Group {
    state: Mutex<GroupState>,
    /// The last batch committed more than its leader's operation.
    shared: AtomicBool,
}

impl std::fmt::Debug for Group {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let st = lock(&self.state);
        f.debug_struct("Group")
            .field("leading", &st.leading)
            .field("queued", &st.queue.len())
            .finish()
    }
}

#[derive(Default)]
struct GroupState {
    /// The process that made this state (reset in a forked child).
    pid: u32,
    /// A leader is writing: newcomers queue.
    leading: bool,
    queue: VecDeque<Arc<Slot>>,
}

/// One queued writer: where the leader hands it the session or the lead.
#[derive(Default)]
pub(super) struct Slot {
    state: Mutex<SlotState>,
    cv: Condvar,
}

#[derive(Default)]
enum SlotState {
    #[default]
    Waiting,
    /// This writer leads the next batch.
    Lead,
    /// Run the operation on this session, then hand it back.
    Run(Box<Session>),
    /// Handed back by the writer, with how its operation ended.
    Ran(Box<Session>, Ran),
    /// The batch's commit is over: `Ok` once it committed.
    Done(Result<()>),
}

/// How a joined operation ended.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Ran {
    Ok,
    /// Failed and rolled back its savepoint: not part of the commit.
    Failed,
    /// Panicked: its savepoint may still be open.
    Panicked,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// What a writer entering the group is to do.
pub(super) enum Role {
    /// Take the write lock and lead a batch.
    Lead,
    /// Wait in this slot.
    Join(Arc<Slot>),
}

/// What a queued writer was given.
pub(super) enum Turn {
    Lead,
    Run(Box<Session>),
    /// Its wait ended before either: it is no longer queued.
    TimedOut,
}

impl Group {
    fn state(&self) -> MutexGuard<'_, GroupState> {
        let mut st = lock(&self.state);
        let pid = std::process::id();
        if st.pid != pid {
            // Forked: the parent's leader and queued threads are not here.
            *st = GroupState {
                pid,
                ..GroupState::default()
            };
        }
        st
    }

    /// True when the last batch held other writers' operations too.
    pub(super) fn was_shared(&self) -> bool {
        self.shared.load(Ordering::Relaxed)
    }

    pub(super) fn set_shared(&self, shared: bool) {
        self.shared.store(shared, Ordering::Relaxed);
    }

    /// Leads at once when nobody writes, else queues.
    pub(super) fn enter(&self) -> Role {
        let mut st = self.state();
        if st.leading {
            let slot = Arc::new(Slot::default());
            st.queue.push_back(slot.clone());
            Role::Join(slot)
        } else {
            st.leading = true;
            Role::Lead
        }
    }

    /// The next queued writer, taken off the queue, for the leader to hand
    /// its session to.
    pub(super) fn next_joiner(&self) -> Option<Arc<Slot>> {
        self.state().queue.pop_front()
    }

    /// The leader is done: the first queued writer leads next.
    pub(super) fn pass_lead(&self) {
        let mut st = self.state();
        match st.queue.pop_front() {
            Some(next) => {
                drop(st);
                next.put(SlotState::Lead);
            }
            None => st.leading = false,
        }
    }

    /// Waits in `slot` until given the lead or the session, or until
    /// `until` (then leaves the queue, unless served meanwhile).
    pub(super) fn wait_turn(&self, slot: &Arc<Slot>, until: Option<Instant>) -> Turn {
        let mut st = lock(&slot.state);
        loop {
            match std::mem::take(&mut *st) {
                SlotState::Lead => return Turn::Lead,
                SlotState::Run(session) => return Turn::Run(session),
                // Still waiting (Ran and Done are the leader's to wait for).
                other => *st = other,
            }
            let timeout = match until {
                None => None,
                Some(until) => match until.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => Some(left),
                    _ => {
                        drop(st);
                        // Off the queue, unless the leader took it just now.
                        let mut group = self.state();
                        if let Some(pos) = group.queue.iter().position(|s| Arc::ptr_eq(s, slot)) {
                            group.queue.remove(pos);
                            return Turn::TimedOut;
                        }
                        drop(group);
                        st = lock(&slot.state);
                        while matches!(*st, SlotState::Waiting) {
                            st = slot.cv.wait(st).unwrap_or_else(|p| p.into_inner());
                        }
                        continue;
                    }
                },
            };
            st = match timeout {
                None => slot.cv.wait(st).unwrap_or_else(|p| p.into_inner()),
                Some(left) => slot.cv.wait_timeout(st, left).unwrap_or_else(|p| p.into_inner()).0,
            };
        }
    }
}

impl Slot {
    fn put(&self, state: SlotState) {
        *lock(&self.state) = state;
        self.cv.notify_one();
    }

    /// For the leader: hands `session` to this writer and waits until it
    /// is handed back.
    pub(super) fn run(&self, session: Box<Session>) -> (Box<Session>, Ran) {
        self.put(SlotState::Run(session));
        let mut st = lock(&self.state);
        loop {
            match std::mem::take(&mut *st) {
                SlotState::Ran(session, ran) => return (session, ran),
                other => *st = other,
            }
            st = self.cv.wait(st).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// For the writer: hands the session back to the leader.
    pub(super) fn give_back(&self, session: Box<Session>, ran: Ran) {
        self.put(SlotState::Ran(session, ran));
    }

    /// For the leader: tells this writer how the commit ended.
    pub(super) fn done(&self, result: Result<()>) {
        self.put(SlotState::Done(result));
    }

    /// For the writer: waits for the commit of the batch it joined.
    pub(super) fn wait_done(&self) -> Result<()> {
        let mut st = lock(&self.state);
        loop {
            match std::mem::take(&mut *st) {
                SlotState::Done(result) => return result,
                other => *st = other,
            }
            st = self.cv.wait(st).unwrap_or_else(|p| p.into_inner());
        }
    }
}

/// Runs `f` catching a panic, so that the session can be handed back
/// before the panic goes on.
pub(super) fn catch<T>(f: impl FnOnce() -> Result<T>) -> std::thread::Result<Result<T>> {
    panic::catch_unwind(AssertUnwindSafe(f))
}

/// The error each operation of a batch gets when its commit failed: the
/// first gets the error itself, the others a copy of it.
pub(super) fn copy_error(e: &Error) -> Error {
    match e {
        Error::Sqlite { code, source } => Error::Sqlite {
            code: *code,
            source: source.to_string().into(),
        },
        Error::Io { path, source } => Error::io(path.clone(), std::io::Error::new(source.kind(), source.to_string())),
        Error::Timeout => Error::Timeout,
        // A commit fails with SQLite's errors only; this keeps the text.
        other => Error::Sqlite {
            code: -1,
            source: format!("the commit of this write failed: {other}").into(),
        },
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::settings::Overrides;
    use crate::store::{Store, StoreOptions};

    fn group(store: &Store) -> &super::Group {
        match &store.backend {
            crate::store::Backend::Sqlite(lite) => &lite.group,
            #[cfg(feature = "postgres")]
            crate::store::Backend::Postgres(_) => unreachable!("a directory store"),
        }
    }

    fn store(dir: &std::path::Path) -> Store {
        let opts = StoreOptions {
            timeout: Duration::from_secs(10),
            sync_files: false,
            wake_poll: Duration::from_millis(50),
            read_only: false,
        };
        Store::open(dir, &Overrides::default(), &opts).unwrap()
    }

    /// Writers that queue while the leader's operation runs run theirs on
    /// the leader's connection, inside its transaction, and a failing one
    /// leaves the others' writes in.
    #[test]
    fn queued_writers_join_the_leaders_transaction() {
        let tmp = tempfile::tempdir().unwrap();
        let store = store(tmp.path());
        std::thread::scope(|s| {
            let leader = s.spawn(|| {
                store
                    .write(false, None, |session| {
                        // A table only this connection sees.
                        session
                            .lite()
                            .conn
                            .execute_batch("CREATE TEMP TABLE joined(t INTEGER)")?;
                        // Stay in the transaction until three writers queued.
                        while group(&store).state().queue.len() < 3 {
                            std::thread::yield_now();
                        }
                        Ok(())
                    })
                    .unwrap();
            });
            while !group(&store).state().leading {
                std::thread::yield_now();
            }
            let joiners: Vec<_> = (0..3)
                .map(|t| {
                    let store = &store;
                    s.spawn(move || {
                        store.write(false, None, |session| {
                            assert!(!session.lite().conn.is_autocommit(), "inside the leader's transaction");
                            session
                                .lite()
                                .conn
                                .execute("INSERT INTO temp.joined VALUES (?1)", [t])?;
                            if t == 1 {
                                return Err(crate::error::Error::InvalidUse("fails alone".into()));
                            }
                            Ok(t)
                        })
                    })
                })
                .collect();
            leader.join().unwrap();
            let results: Vec<_> = joiners.into_iter().map(|j| j.join().unwrap()).collect();
            assert!(
                matches!(results[0], Ok(0)) && matches!(results[2], Ok(2)),
                "{results:?}"
            );
            assert!(results[1].is_err());
        });
        let rows: Vec<i64> = store
            .read(|session| {
                let mut stmt = session.lite().conn.prepare("SELECT t FROM temp.joined ORDER BY t")?;
                let rows = stmt.query_map([], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
                Ok(rows)
            })
            .unwrap();
        assert_eq!(rows, vec![0, 2], "the failed writer's row rolled back alone");
        assert!(!group(&store).state().leading && group(&store).state().queue.is_empty());
    }
}
