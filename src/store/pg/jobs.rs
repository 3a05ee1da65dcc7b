//! Queue counters and jobs on PostgreSQL.
//!
//! The counters are rows of `diskq_settings` named as on SQLite
//! (`diskq_queue:<queue>:<counter>`), bumped in the transaction that counts;
//! each is spread over up to 64 rows (`...#<n>`, by the connection's server
//! process) so that the pops of one queue do not queue on one row's lock,
//! and read as their sum.
//!
//! Jobs (delayed, prioritized and unique items, and items nacked with a
//! delay) are kept as on a directory: the item is a `diskq_cache` row under
//! the text key `diskq-job-k<16 hex digits>`, outside every queue range,
//! and `diskq_job` holds one row per job (its queue, the item's rowid, its
//! priority, when it is ready, its lease's deadline and token, its delivery
//! count, the last error and its unique key). The table and its indexes
//! are made with the schema, and on the first open of a schema made before
//! they existed.
//!
//! What differs from SQLite is that writers run side by side, so each
//! lookup of a write locks what it will act on:
//! - the next job is `ORDER BY priority DESC, ready, item LIMIT 1 FOR UPDATE
//!   SKIP LOCKED` on the partial index `diskq_job_order (queue, priority
//!   DESC, ready, item) WHERE deadline IS NULL`: concurrent consumers each
//!   take another job and never wait on each other; the walk starts at the
//!   best job and steps only over jobs of a higher priority that are not
//!   due yet;
//! - a lease that ran out is found `FOR UPDATE SKIP LOCKED` on
//!   `diskq_job_queue (queue, deadline)`, and the ack, nack or renew of a
//!   job's lease locks its row, so a redelivery and the holder's ack never
//!   both win;
//! - a push with a unique key first takes an advisory lock on (queue, key),
//!   then looks the key up: of two pushes of one key, from any hosts, the
//!   second sees the first's job once it commits. The unique index
//!   `diskq_job_unique (queue, unique_key)` stands behind it.
//!
//! Plain queues pay almost nothing: SQLite keeps a count of each queue's
//! jobs, which on PostgreSQL would be one row every job push and pop of a
//! queue updates (so they would queue on its row lock). Here the table is
//! its own count: a plain pop asks whether its queue has a job (one index
//! probe) in the round trip of its count, and a lease in the round trip of
//! its look for run-out leases; neither pays a round trip more. The look
//! goes before the count: every consumer of a queue waits for the count's
//! row, locked until the commit, so nothing more should run while it is
//! held. The pop's count statement stays the one of plain queues.

use tokio_postgres::Row;

use super::client::{join2, pg_error};
use super::session::PgSession;
use super::sql;
use crate::error::Result;
use crate::key::Key;
use crate::store::counters::{self, Counter, CounterRow};
use crate::store::jobs::{JobCounts, JobRow, NewJob, job_key};

/// A job row from the columns of `sql::job_cols`.
fn job_at(r: &Row) -> Result<JobRow> {
    Ok(JobRow {
        id: r.try_get(0).map_err(pg_error)?,
        item: r.try_get(1).map_err(pg_error)?,
        priority: r.try_get(2).map_err(pg_error)?,
        ready: r.try_get(3).map_err(pg_error)?,
        deliveries: r.try_get(4).map_err(pg_error)?,
        last_error: r.try_get(5).map_err(pg_error)?,
        deadline: r.try_get(6).map_err(pg_error)?,
        token: r.try_get(7).map_err(pg_error)?,
    })
}

impl PgSession {
    pub(crate) fn count(&self, queue: &str, counter: Counter, n: usize) -> Result<()> {
        if n == 0 {
            return Ok(());
        }
        let n = i64::try_from(n).unwrap_or(i64::MAX);
        self.exec(sql::ADD_TO_COUNTER, &[&counters::key_of(queue, counter), &n])?;
        Ok(())
    }

    /// Counts `n` pops of `queue` and tells whether it has no jobs (false:
    /// it has some, and the caller rolls the pop back, count included): the
    /// count and the look in one round trip.
    pub(crate) fn count_plain_pops(&self, queue: &str, n: usize) -> Result<bool> {
        let n = i64::try_from(n).unwrap_or(i64::MAX);
        let key = counters::key_of(queue, Counter::Popped);
        let (st_count, st_jobs) = (
            self.conn.statement(sql::ADD_TO_COUNTER)?,
            self.conn.statement(sql::JOB_ANY)?,
        );
        let client = &self.conn.client;
        // The look first: the count locks its row until the commit, and
        // every consumer of the queue waits for that row.
        let jobs = self.run(async {
            let (jobs, counted) = join2(
                client.query_one(&st_jobs, &[&queue]),
                client.execute(&st_count, &[&key, &n]),
            )
            .await;
            counted?;
            jobs
        })?;
        let jobs: i64 = jobs.try_get(0).map_err(pg_error)?;
        Ok(jobs == 0)
    }

    /// Counts nothing: the caller culls and counts on its own.
    pub(crate) fn count_pushes_if_none_expired(&self, _queue: &str, _n: usize, _now: f64) -> Result<bool> {
        Ok(false)
    }

    pub(crate) fn counters(&self, queue: &str) -> Result<CounterRow> {
        Ok(self
            .counter_range(Some(queue))?
            .into_iter()
            .find(|(q, _)| q == queue)
            .map(|(_, row)| row)
            .unwrap_or_default())
    }

    pub(crate) fn all_counters(&self) -> Result<Vec<(String, CounterRow)>> {
        self.counter_range(None)
    }

    fn counter_range(&self, queue: Option<&str>) -> Result<Vec<(String, CounterRow)>> {
        let (start, end) = counters::range_of(queue);
        let mut read = Vec::new();
        for row in self.rows(sql::COUNTER_RANGE, &[&start, &end])? {
            let key: String = row.try_get(0).map_err(pg_error)?;
            let value: i64 = row.try_get(1).map_err(pg_error)?;
            read.push((key, value));
        }
        Ok(counters::collect(read))
    }

    /// 1 when `queue` has a job, 0 when it has none (a plain queue). A
    /// lease's look for run-out leases just found out, in its round trip
    /// (`expired_lease`): then that answer, unless a job was added since.
    pub(crate) fn job_gauge(&self, queue: &str) -> Result<i64> {
        if let Some((seen, jobs)) = self.jobs_seen.take()
            && seen == queue
        {
            return Ok(i64::from(jobs));
        }
        self.one_i64(sql::JOB_ANY, &[&queue])
    }

    /// Adds a job row; its item is found by the job's key when `job.item`
    /// is 0 (see [`PgSession::last_rowid`]).
    pub(crate) fn insert_job(&self, job: &NewJob<'_>) -> Result<()> {
        self.jobs_seen.take();
        let key = job_key(job.id);
        self.exec(
            sql::JOB_INSERT,
            &[
                &job.id,
                &job.queue,
                &job.item,
                &job.priority,
                &job.ready,
                &job.deliveries,
                &job.last_error,
                &job.unique_key,
                &key.as_bytes(),
            ],
        )?;
        Ok(())
    }

    /// The job of `queue` holding `unique_key`: (id, item). A write first
    /// takes the advisory lock of the key, held to its commit, so that two
    /// pushes of one key look one after the other.
    pub(crate) fn job_by_unique(&self, queue: &str, unique_key: &str) -> Result<Option<(i64, i64)>> {
        let found = if self.writing {
            let lock = self.lock_number(&[b"u", queue.as_bytes(), unique_key.as_bytes()]);
            self.row_after_lock(lock, sql::JOB_BY_UNIQUE, &[&queue, &unique_key])?
        } else {
            self.row(sql::JOB_BY_UNIQUE, &[&queue, &unique_key])?
        };
        match found {
            Some(r) => Ok(Some((r.try_get(0).map_err(pg_error)?, r.try_get(1).map_err(pg_error)?))),
            None => Ok(None),
        }
    }

    pub(crate) fn job_queue(&self, id: i64) -> Result<Option<String>> {
        self.row(sql::JOB_QUEUE, &[&id])?
            .map(|r| r.try_get(0).map_err(pg_error))
            .transpose()
    }

    pub(crate) fn delete_job(&self, _queue: &str, id: i64) -> Result<()> {
        self.exec(sql::JOB_DELETE, &[&id])?;
        Ok(())
    }

    /// The job of `queue` to take next, if one is ready; in a write, locked
    /// (jobs other transactions hold are stepped over).
    pub(crate) fn next_job(&self, queue: &str, now: f64) -> Result<Option<JobRow>> {
        let statement = if self.writing {
            sql::JOB_NEXT_LOCKED
        } else {
            sql::JOB_NEXT
        };
        self.row(statement, &[&queue, &now])?.map(|r| job_at(&r)).transpose()
    }

    /// The job lease of `queue` that ran out first, locked.
    pub(crate) fn expired_job(&self, queue: &str, now: f64) -> Result<Option<JobRow>> {
        self.row(sql::JOB_EXPIRED, &[&queue, &now])?
            .map(|r| job_at(&r))
            .transpose()
    }

    pub(crate) fn leased_jobs(&self, queue: &str, limit: i64) -> Result<Vec<crate::store::lease::RunningRow>> {
        self.running_rows(sql::JOB_LEASED, queue, limit)
    }

    /// Job `id`; in a write, locked (an ack, nack or renew acts on it next).
    pub(crate) fn job(&self, id: i64) -> Result<Option<JobRow>> {
        let statement = if self.writing {
            sql::JOB_BY_ID_LOCKED
        } else {
            sql::JOB_BY_ID
        };
        self.row(statement, &[&id])?.map(|r| job_at(&r)).transpose()
    }

    pub(crate) fn lease_job(&self, id: i64, deadline: f64, token: i64, deliveries: i64) -> Result<()> {
        self.exec(sql::JOB_LEASE, &[&id, &deadline, &token, &deliveries])?;
        Ok(())
    }

    pub(crate) fn reschedule_job(&self, id: i64, ready: f64, last_error: Option<&str>) -> Result<()> {
        self.exec(sql::JOB_RESCHEDULE, &[&id, &ready, &last_error])?;
        Ok(())
    }

    pub(crate) fn set_job_deadline(&self, id: i64, deadline: f64) -> Result<()> {
        self.exec(sql::JOB_SET_DEADLINE, &[&id, &deadline])?;
        Ok(())
    }

    /// The earliest moment after `now` a job of `queue` becomes ready, or a
    /// job lease of it runs out: what a waiter's next look is timed by.
    pub(crate) fn next_job_event(&self, queue: &str, now: f64) -> Result<Option<f64>> {
        match self.row(sql::JOB_NEXT_EVENT, &[&queue, &now])? {
            Some(r) => r.try_get(0).map_err(pg_error),
            None => Ok(None),
        }
    }

    pub(crate) fn job_counts(&self, queue: &str, now: f64) -> Result<JobCounts> {
        let Some(r) = self.row(sql::JOB_COUNTS, &[&queue, &now])? else {
            return Ok(JobCounts::default());
        };
        Ok(JobCounts {
            ready: r.try_get(0).map_err(pg_error)?,
            scheduled: r.try_get(1).map_err(pg_error)?,
            leased: r.try_get(2).map_err(pg_error)?,
        })
    }

    /// Removes every job of `queue` and its item; returns how many items.
    pub(crate) fn delete_queue_jobs(&mut self, queue: &str) -> Result<usize> {
        let items = self.exec(sql::JOB_DELETE_QUEUE_ITEMS, &[&queue])?;
        self.exec(sql::JOB_DELETE_QUEUE, &[&queue])?;
        Ok(usize::try_from(items).unwrap_or(usize::MAX))
    }

    /// Empties the job table (after a clear of the items).
    pub(crate) fn clear_jobs(&self) -> Result<()> {
        self.exec(sql::JOB_CLEAR, &[])?;
        Ok(())
    }

    /// 0, "not known": an insert here does not return its rowid (a plain
    /// push would pay for it), so [`PgSession::insert_job`] finds a pushed
    /// job's item by its key instead, in its own statement.
    pub(crate) fn last_rowid(&self) -> i64 {
        0
    }

    /// When the row of `key` was stored.
    pub(crate) fn store_time_of(&self, key: &Key) -> Result<Option<f64>> {
        match self.by_key(sql::STORE_TIME, key, &[])? {
            Some(r) => r.try_get(0).map_err(pg_error),
            None => Ok(None),
        }
    }
}
