//! Queue counters and jobs on PostgreSQL.
//!
//! The counters are rows of `diskq_settings` named as on SQLite
//! (`diskq_queue:<queue>:<counter>`), bumped in the transaction that counts.
//!
//! Jobs (delayed, prioritized and unique items) are not stored on this
//! backend yet: a push that asks for one, or a nack with a delay, fails with
//! [`Error::Unsupported`](crate::Error::Unsupported) and changes nothing.
//! Every queue is then a plain one, and the job lookups that plain pops,
//! leases and backlogs make find nothing.

use super::session::PgSession;
use super::sql;
use crate::error::Result;
use crate::key::Key;
use crate::store::counters::{self, Counter, CounterRow};
use crate::store::jobs::{JobCounts, JobRow, NewJob};

const NO_JOBS: &str = "delayed, prioritized and unique items (and nacks with a delay)";

impl PgSession {
    pub(crate) fn count(&self, queue: &str, counter: Counter, n: usize) -> Result<()> {
        if n == 0 {
            return Ok(());
        }
        let n = i64::try_from(n).unwrap_or(i64::MAX);
        self.exec(sql::ADD_TO_COUNTER, &[&counters::key_of(queue, counter), &n])?;
        Ok(())
    }

    /// No queue has jobs here: every pop is a plain one.
    pub(crate) fn count_plain_pops(&self, queue: &str, n: usize) -> Result<bool> {
        self.count(queue, Counter::Popped, n)?;
        Ok(true)
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
            let key: String = row.try_get(0).map_err(super::client::pg_error)?;
            let value: i64 = row.try_get(1).map_err(super::client::pg_error)?;
            read.push((key, value));
        }
        Ok(counters::collect(read))
    }

    pub(crate) fn job_gauge(&self, _queue: &str) -> Result<i64> {
        Ok(0)
    }

    pub(crate) fn insert_job(&self, _job: &NewJob<'_>) -> Result<()> {
        Err(super::session::unsupported(NO_JOBS))
    }

    pub(crate) fn job_by_unique(&self, _queue: &str, _unique_key: &str) -> Result<Option<(i64, i64)>> {
        Err(super::session::unsupported(NO_JOBS))
    }

    pub(crate) fn job_queue(&self, _id: i64) -> Result<Option<String>> {
        Ok(None)
    }

    pub(crate) fn delete_job(&self, _queue: &str, _id: i64) -> Result<()> {
        Ok(())
    }

    pub(crate) fn next_job(&self, _queue: &str, _now: f64) -> Result<Option<JobRow>> {
        Ok(None)
    }

    pub(crate) fn expired_job(&self, _queue: &str, _now: f64) -> Result<Option<JobRow>> {
        Ok(None)
    }

    pub(crate) fn job(&self, _id: i64) -> Result<Option<JobRow>> {
        Ok(None)
    }

    pub(crate) fn lease_job(&self, _id: i64, _deadline: f64, _token: i64, _deliveries: i64) -> Result<()> {
        Err(super::session::unsupported(NO_JOBS))
    }

    pub(crate) fn reschedule_job(&self, _id: i64, _ready: f64, _last_error: Option<&str>) -> Result<()> {
        Err(super::session::unsupported(NO_JOBS))
    }

    pub(crate) fn set_job_deadline(&self, _id: i64, _deadline: f64) -> Result<()> {
        Err(super::session::unsupported(NO_JOBS))
    }

    pub(crate) fn next_job_event(&self, _queue: &str, _now: f64) -> Result<Option<f64>> {
        Ok(None)
    }

    pub(crate) fn job_counts(&self, _queue: &str, _now: f64) -> Result<JobCounts> {
        Ok(JobCounts::default())
    }

    pub(crate) fn delete_queue_jobs(&mut self, _queue: &str) -> Result<usize> {
        Ok(0)
    }

    pub(crate) fn clear_jobs(&self) -> Result<()> {
        Ok(())
    }

    /// Only a job's insert asks, and there are none here.
    pub(crate) fn last_rowid(&self) -> i64 {
        0
    }

    /// Only a merge of plain items with jobs asks, and there are none here.
    pub(crate) fn store_time_of(&self, _key: &Key) -> Result<Option<f64>> {
        Ok(None)
    }
}
