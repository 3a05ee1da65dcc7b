//! The seam between the cache's logic and its backends.
//!
//! [`Session`] is one backend's open connection (inside a transaction or
//! not) and the row operations the layers above build on: `Cache`,
//! `Deque`, `Index`, leases and maintenance call these and nothing else,
//! so no code outside `store/` speaks SQL or sees a backend's types.
//!
//! It is an enum, not a trait object: the directory backend (SQLite) pays
//! one predictable branch per operation, the closures given to
//! [`Store::write`](super::Store::write) and friends stay generic (no boxing,
//! no `dyn` with generic methods), and a build without the `postgres`
//! feature has a one-variant enum the compiler sees through.
//!
//! Each backend implements every operation under the same name and
//! signature; [`dispatch!`] writes the forwarding methods. An operation a
//! backend cannot do (the directory's integrity check on PostgreSQL, say)
//! returns [`Error::Unsupported`](crate::Error::Unsupported) there.

use super::counters::{Counter, CounterRow};
use super::dead::DeadRecord;
use super::jobs::{JobCounts, JobRow, NewJob};
use super::lease::{LeaseRow, RunningRow};
use super::ops::{Batch, FileRow, KeyRow, NewRow, PageKind, PageRow, ValueRow};
use super::txn::LiteSession;
use crate::codec::Scalar;
use crate::error::Result;
use crate::key::Key;
use crate::settings::EvictionPolicy;

/// One backend's connection and the operations on it.
pub(crate) enum Session {
    /// The directory backend: SQLite plus value files.
    Sqlite(LiteSession),
    /// The PostgreSQL backend.
    #[cfg(feature = "postgres")]
    Postgres(super::pg::PgSession),
}

/// Forwards each listed operation to the backend's method of that name.
macro_rules! dispatch {
    ($receiver:tt $( $(#[$meta:meta])* fn $name:ident($($arg:ident: $ty:ty),* $(,)?) -> $ret:ty; )*) => {
        impl Session {
            $(
                $(#[$meta])*
                pub(crate) fn $name(self: dispatch!(@receiver $receiver) $(, $arg: $ty)*) -> $ret {
                    match self {
                        Session::Sqlite(s) => s.$name($($arg),*),
                        #[cfg(feature = "postgres")]
                        Session::Postgres(s) => s.$name($($arg),*),
                    }
                }
            )*
        }
    };
    (@receiver shared) => { &Self };
    (@receiver exclusive) => { &mut Self };
}

dispatch! {
    shared
    /// The live row of `key`.
    fn get_live(key: &Key, now: f64) -> Result<Option<ValueRow>>;
    /// The live row of `key`, recording the access the policy needs.
    fn get_recording(key: &Key, now: f64, policy: EvictionPolicy) -> Result<Option<ValueRow>>;
    /// Counts a hit or a miss.
    fn count_access(hit: bool) -> Result<()>;
    /// True when `key` has a live value.
    fn contains_live(key: &Key, now: f64) -> Result<bool>;
    /// The row of `key`, live or expired, with its value.
    fn find_any(key: &Key) -> Result<Option<KeyRow>>;
    /// The row of `key`, live or expired, without its value.
    fn find_slot(key: &Key) -> Result<Option<KeyRow>>;
    /// Rewrites row `rowid`.
    fn update_row(rowid: i64, now: f64, row: &NewRow<'_>) -> Result<()>;
    /// Inserts a row for `key`.
    fn insert_row(key: &Key, now: f64, row: &NewRow<'_>) -> Result<()>;
    /// Stores an incremented integer in row `rowid`.
    fn incr_update(rowid: i64, now: f64, value: i64, policy: EvictionPolicy) -> Result<()>;
    /// Sets the expiry of the live row of `key`; true if there was one.
    fn touch_live(key: &Key, now: f64, expire_time: Option<f64>) -> Result<bool>;
    /// Gives the row of `from` the key `to`.
    fn rename_key(from: &Key, to: &Key) -> Result<()>;
    /// The first or last key of a queue, expired items included.
    fn queue_edge(bounds: (&Scalar, &Scalar), back: bool) -> Result<Option<Key>>;
    /// The first or last live item of a queue, left in place.
    fn peek(bounds: (&Scalar, &Scalar), now: f64, back: bool) -> Result<Option<(Key, ValueRow)>>;
    /// The live items of a queue.
    fn queue_len(bounds: (&Scalar, &Scalar), now: f64) -> Result<i64>;
    /// The first or last live item in insertion order.
    fn edge_item(last: bool, now: f64) -> Result<Option<(Key, ValueRow)>>;
    /// A page of live rows (see `PageKind`).
    fn page(kind: PageKind, range: (i64, i64), now: f64, ascending: bool, limit: i64) -> Result<Vec<PageRow>>;
    /// The live item at position `n` of the integer queue.
    fn queue_nth(n: i64, now: f64) -> Result<Option<(i64, Key, Option<ValueRow>)>>;
    /// The largest cursor of an insertion-order page.
    fn max_rowid() -> Result<i64>;
    /// The bytes the cache takes.
    fn volume() -> Result<i64>;
    /// The live rows.
    fn len_live(now: f64) -> Result<i64>;
    /// A Settings row.
    fn setting(name: &str) -> Result<Scalar>;
    /// Writes a Settings row.
    fn set_setting(name: &str, value: &Scalar) -> Result<()>;
    /// The rows, expired included.
    fn count_rows() -> Result<i64>;
    /// The sum of the stored sizes.
    fn sum_sizes() -> Result<i128>;
    /// The rows that name value files.
    fn file_rows() -> Result<Vec<FileRow>>;
    /// Rows with a column of a type no writer stores.
    fn bad_column_rows() -> Result<Vec<(i64, String, &'static str, String)>>;
    /// Inline rows whose stored size is wrong.
    fn bad_inline_sizes() -> Result<Vec<(i64, String, String)>>;
    /// Sets the stored size of row `rowid`.
    fn update_size(rowid: i64, size: i64) -> Result<()>;
    /// What the backend's own integrity check reports.
    fn integrity_problems() -> Result<Vec<String>>;
    /// Gives free space back.
    fn vacuum() -> Result<()>;
    /// Creates the lease table if it is missing.
    fn create_lease_table() -> Result<()>;
    /// True when the lease table exists.
    fn has_lease_table() -> Result<bool>;
    /// Deletes every lease row.
    fn clear_leases() -> Result<()>;
    /// The oldest expired lease of `queue`: (key, deliveries, item).
    fn expired_lease(queue: &str, now: f64) -> Result<Option<(String, i64, i64)>>;
    /// The earliest lease deadline of `queue`.
    fn next_deadline(queue: &str) -> Result<Option<f64>>;
    /// The running leases of `queue`.
    fn leases_of(queue: &str) -> Result<i64>;
    /// The running leases of `queue`, the first to run out first.
    fn running_leases(queue: &str, limit: i64) -> Result<Vec<RunningRow>>;
    /// The live items of a queue, as the backlog counts them.
    fn queued(bounds: (&Scalar, &Scalar), now: f64) -> Result<i64>;
    /// The rowid of the row of `key`.
    fn rowid_of(key: &Key) -> Result<Option<i64>>;
    /// The value columns of row `rowid`.
    fn row_by_rowid(rowid: i64) -> Result<Option<ValueRow>>;
    /// The lease row of `key`.
    fn lease_row(key: &Key) -> Result<Option<LeaseRow>>;
    /// Writes the lease row of `key`.
    fn put_lease_row(key: &Key, queue: &str, row: &LeaseRow) -> Result<()>;
    /// Deletes the lease row of `key`.
    fn delete_lease_row(key: &Key) -> Result<()>;
    /// Sets the deadline of the lease row of `key`.
    fn set_lease_deadline(key: &Key, deadline: f64) -> Result<()>;
    /// The key and queue of the first lease row with a key in `[start, end)`.
    fn lease_key_between(start: &str, end: &str) -> Result<Option<(String, String)>>;

    // Queue counters (`counters.rs`).
    /// Adds `n` to a counter of `queue`.
    fn count(queue: &str, counter: Counter, n: usize) -> Result<()>;
    /// Counts `n` pops of `queue` unless it has jobs (then false).
    fn count_plain_pops(queue: &str, n: usize) -> Result<bool>;
    /// Counts `n` pushes of `queue` if no item has expired by `now`; false
    /// (counting nothing) when one has, or the backend cannot tell in one go.
    fn count_pushes_if_none_expired(queue: &str, n: usize, now: f64) -> Result<bool>;
    /// The counters of `queue`.
    fn counters(queue: &str) -> Result<CounterRow>;
    /// The counters of every queue counted so far.
    fn all_counters() -> Result<Vec<(String, CounterRow)>>;

    // Jobs: delayed, prioritized and unique items (`jobs.rs`).
    /// How many jobs `queue` has (0: a plain queue).
    fn job_gauge(queue: &str) -> Result<i64>;
    /// Adds a job row for an item inserted just now.
    fn insert_job(job: &NewJob<'_>) -> Result<()>;
    /// The job of `queue` holding `unique_key`: (id, item).
    fn job_by_unique(queue: &str, unique_key: &str) -> Result<Option<(i64, i64)>>;
    /// The queue of job `id`.
    fn job_queue(id: i64) -> Result<Option<String>>;
    /// Deletes job `id` of `queue`.
    fn delete_job(queue: &str, id: i64) -> Result<()>;
    /// The next ready job of `queue`.
    fn next_job(queue: &str, now: f64) -> Result<Option<JobRow>>;
    /// A leased job of `queue` whose lease ran out.
    fn expired_job(queue: &str, now: f64) -> Result<Option<JobRow>>;
    /// The leased jobs of `queue`, the first to run out first.
    fn leased_jobs(queue: &str, limit: i64) -> Result<Vec<RunningRow>>;
    /// Job `id`.
    fn job(id: i64) -> Result<Option<JobRow>>;
    /// Marks job `id` leased.
    fn lease_job(id: i64, deadline: f64, token: i64, deliveries: i64) -> Result<()>;
    /// Makes job `id` ready again at `ready`.
    fn reschedule_job(id: i64, ready: f64, last_error: Option<&str>) -> Result<()>;
    /// Sets the lease deadline of job `id`.
    fn set_job_deadline(id: i64, deadline: f64) -> Result<()>;
    /// When `queue` next changes by itself (a job comes due, a lease runs out).
    fn next_job_event(queue: &str, now: f64) -> Result<Option<f64>>;
    /// The ready, scheduled and leased jobs of `queue`.
    fn job_counts(queue: &str, now: f64) -> Result<JobCounts>;
    /// Deletes every job row.
    fn clear_jobs() -> Result<()>;
    /// The rowid of the row just inserted.
    fn last_rowid() -> i64;
    /// When the row of `key` was stored.
    fn store_time_of(key: &Key) -> Result<Option<f64>>;
}

dispatch! {
    exclusive
    /// Inserts or replaces the row of `key`.
    fn upsert(key: &Key, now: f64, row: &NewRow<'_>) -> Result<()>;
    /// Deletes the live row of `key`; true if there was one.
    fn delete_live(key: &Key, now: f64) -> Result<bool>;
    /// Deletes and returns the live row of `key`.
    fn pop_live(key: &Key, now: f64) -> Result<Option<ValueRow>>;
    /// Deletes row `rowid` (and its file after commit).
    fn delete_rowid(rowid: i64, filename: Option<String>) -> Result<()>;
    /// Takes the first or last live item of a queue.
    fn pull(bounds: (&Scalar, &Scalar), back: bool) -> Result<Option<(Key, ValueRow)>>;
    /// Deletes at most `limit` items of a queue.
    fn delete_queue_batch(bounds: (&Scalar, &Scalar), limit: u64) -> Result<usize>;
    /// Deletes the leased items of a queue and their lease rows.
    fn delete_queue_leases(queue: &str) -> Result<usize>;
    /// Deletes at most `limit` rows of a batch.
    fn delete_batch(batch: Batch<'_>, limit: u64) -> Result<usize>;
    /// Deletes at most `limit` expired rows.
    fn cull_expired(now: f64, limit: u64) -> Result<usize>;
    /// Deletes the jobs of `queue` and their items.
    fn delete_queue_jobs(queue: &str) -> Result<usize>;
}

impl Session {
    /// Marks this transaction as one that adds queue items: waiters are
    /// woken after it commits.
    pub(crate) fn mark_pushed(&mut self) {
        match self {
            Session::Sqlite(s) => s.mark_pushed(),
            #[cfg(feature = "postgres")]
            Session::Postgres(s) => s.mark_pushed(),
        }
    }

    /// Removes this value file once the transaction commits.
    pub(crate) fn remove_after_commit(&mut self, filename: Option<String>) {
        match self {
            Session::Sqlite(s) => s.remove_after_commit(filename),
            // No PostgreSQL row names a file (values are always inline).
            #[cfg(feature = "postgres")]
            Session::Postgres(_) => {}
        }
    }

    /// Runs a statement of transaction control (savepoints).
    pub(super) fn execute_batch(&self, sql: &str) -> Result<()> {
        match self {
            Session::Sqlite(s) => s.execute_batch(sql),
            #[cfg(feature = "postgres")]
            Session::Postgres(s) => s.execute_batch(sql),
        }
    }

    /// How many files are to be removed and were written, so far.
    pub(super) fn file_marks(&self) -> (usize, usize) {
        match self {
            Session::Sqlite(s) => s.file_marks(),
            #[cfg(feature = "postgres")]
            Session::Postgres(_) => (0, 0),
        }
    }

    /// Notes value files this operation wrote.
    pub(super) fn wrote(&mut self, written: Vec<String>) {
        match self {
            Session::Sqlite(s) => s.wrote(written),
            #[cfg(feature = "postgres")]
            Session::Postgres(_) => debug_assert!(written.is_empty(), "PostgreSQL writes no value files"),
        }
    }

    /// Forgets the files to remove noted after `mark` (their rows are back).
    pub(super) fn keep_removed_before(&mut self, mark: usize) {
        match self {
            Session::Sqlite(s) => s.keep_removed_before(mark),
            #[cfg(feature = "postgres")]
            Session::Postgres(_) => {}
        }
    }

    /// Opens one more savepoint level; returns the new depth.
    pub(super) fn enter_savepoint(&mut self) -> u32 {
        match self {
            Session::Sqlite(s) => s.enter_savepoint(),
            #[cfg(feature = "postgres")]
            Session::Postgres(s) => s.enter_savepoint(),
        }
    }

    /// Closes a savepoint level.
    pub(super) fn leave_savepoint(&mut self) {
        match self {
            Session::Sqlite(s) => s.leave_savepoint(),
            #[cfg(feature = "postgres")]
            Session::Postgres(s) => s.leave_savepoint(),
        }
    }

    /// The SQLite session; only the directory backend makes these.
    pub(super) fn lite(&mut self) -> &mut LiteSession {
        match self {
            Session::Sqlite(s) => s,
            #[cfg(feature = "postgres")]
            Session::Postgres(_) => unreachable!("a directory store's sessions are SQLite sessions"),
        }
    }

    /// [`Session::lite`] by shared reference.
    pub(super) fn as_lite(&self) -> &LiteSession {
        match self {
            Session::Sqlite(s) => s,
            #[cfg(feature = "postgres")]
            Session::Postgres(_) => unreachable!("a directory store's sessions are SQLite sessions"),
        }
    }

    /// [`Session::lite`] by value.
    pub(super) fn into_lite(self) -> LiteSession {
        match self {
            Session::Sqlite(s) => s,
            #[cfg(feature = "postgres")]
            Session::Postgres(_) => unreachable!("a directory store's sessions are SQLite sessions"),
        }
    }
}

dispatch! {
    shared
    /// Records the dead letter now under `key` (`dead.rs`).
    fn record_dead_letter(key: &str, record: &DeadRecord) -> Result<()>;
    /// The record kept for the dead letter under `key`, stale ones included.
    fn dead_letter_record(key: &Key) -> Result<Option<DeadRecord>>;
    /// Drops the record under `key`.
    fn forget_dead_letter(key: &Key) -> Result<()>;
    /// Drops every record.
    fn clear_dead_letters() -> Result<()>;
}
