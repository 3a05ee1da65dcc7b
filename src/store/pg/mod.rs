//! The PostgreSQL backend: the same rows as the directory backend, in
//! tables of a PostgreSQL schema, for workers on several machines.
//!
//! A store is opened from a location `postgres://user:password@host:port/database#schema`
//! (`postgresql://` too; any libpq-style URL tokio-postgres reads). The
//! `#schema` part names the PostgreSQL schema that holds this store's
//! tables (default `diskq`), so one database holds many caches, deques and
//! indexes; it is made on first open, as a directory is.
//!
//! Each operation is one PostgreSQL transaction (READ COMMITTED; see
//! `session` for the row locks that keep it exactly as atomic as SQLite's
//! one-writer transactions), `transact` is one transaction, and blocked
//! pops wake through `LISTEN`/`NOTIFY` on a channel named after the schema,
//! with `wake_poll` as the fallback bound.

mod client;
mod jobs;
pub(crate) mod session;
mod sql;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub(crate) use session::PgSession;
use tokio_postgres::Config;

use self::client::{Listener, Pool, block_on, pg_error};
use super::Session;
use crate::codec::Scalar;
use crate::error::{Error, Result};
use crate::settings::{EvictionPolicy, Overrides, Settings};

/// Connections a store opens at most (each a server process).
const MAX_CONNECTIONS: usize = 16;

/// How long the listening connection may take to connect.
const LISTEN_CONNECT: Duration = Duration::from_secs(2);

/// The schema of a location without `#schema`.
const DEFAULT_SCHEMA: &str = "diskq";

/// A parsed location: the connection settings and the schema.
struct Location {
    config: Config,
    schema: String,
    /// The location as messages show it (no password).
    shown: String,
}

fn parse(location: &str, timeout: Duration) -> Result<Location> {
    let (url, schema) = match location.split_once('#') {
        Some((url, schema)) => (url, schema),
        None => (location, DEFAULT_SCHEMA),
    };
    let valid = !schema.is_empty()
        && schema.len() <= 63
        && schema.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && schema
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !valid {
        return Err(Error::InvalidUse(format!(
            "the schema {schema:?} after '#' in a PostgreSQL location must be 1 to 63 lowercase \
             letters, digits and '_', starting with a letter or '_'"
        )));
    }
    let mut config: Config = url.parse().map_err(|e: tokio_postgres::Error| Error::Postgres {
        code: None,
        source: format!("cannot read the PostgreSQL location: {e}").into(),
    })?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(timeout);
    }
    if config.get_application_name().is_none() {
        config.application_name("diskq");
    }
    Ok(Location {
        config,
        schema: schema.to_owned(),
        shown: redact(location),
    })
}

/// `location` with the password of `user:password@` replaced by `***`.
fn redact(location: &str) -> String {
    let Some((scheme, rest)) = location.split_once("://") else {
        return location.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => match rest[..at].split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***{}", &rest[at..]),
            None => location.to_owned(),
        },
        None => location.to_owned(),
    }
}

/// The PostgreSQL backend of one store.
#[derive(Debug)]
pub(crate) struct Pg {
    pool: Pool,
    listener: Arc<Listener>,
    schema: Arc<str>,
    timeout: Duration,
    wake_poll: Duration,
}

/// What [`open`] gives the store: the backend, its settings and how to show it.
pub(crate) struct Opened {
    pub pg: Pg,
    pub settings: Settings,
    pub shown: String,
}

/// Refuses the options PostgreSQL does not have.
fn refuse_sqlite_options(overrides: &Overrides) -> Result<()> {
    let unsupported = |what: &str| {
        Err(Error::Unsupported {
            backend: "PostgreSQL",
            what: what.into(),
        })
    };
    if overrides.eviction_policy.is_some_and(|p| p != EvictionPolicy::None) {
        return unsupported("eviction policies (a PostgreSQL store culls nothing; use EvictionPolicy::None)");
    }
    if overrides.min_file_size.is_some() {
        return unsupported("value files (min_file_size): values are stored inline");
    }
    if overrides.sqlite_cache_size.is_some()
        || overrides.sqlite_mmap_size.is_some()
        || overrides.sqlite_synchronous.is_some()
        || overrides.sqlite_journal_mode.is_some()
    {
        return unsupported("SQLite settings (sqlite_*)");
    }
    Ok(())
}

/// Connects, creates the schema and its tables if missing, and reads the settings.
pub(crate) fn open(location: &str, overrides: &Overrides, timeout: Duration, wake_poll: Duration) -> Result<Opened> {
    refuse_sqlite_options(overrides)?;
    let loc = parse(location, timeout)?;
    let schema: Arc<str> = loc.schema.clone().into();
    // Identifiers cannot be bound; the schema name was checked above.
    // Every statement diskq runs finds its rows through an index; but a
    // prepared statement keeps the plan made when the table was small (a
    // new queue starts empty), and a sequential scan planned for an empty
    // table makes each push and lookup read the whole table once it has
    // grown, until an autoanalyze happens to replan it. Refusing sequential
    // scans keeps the index plans from the start. That penalty inflates
    // the plans' costs past the JIT threshold, which would then compile
    // the few plans that still scan (a count of a small table, 40 ms
    // instead of 0.1): no JIT either, as none of these short statements
    // gains from it.
    let setup = format!(
        "SET search_path TO \"{}\"; SET enable_seqscan = off; SET jit = off; SET lock_timeout = {}",
        loc.schema,
        timeout.as_millis().clamp(1, i32::MAX as u128)
    );
    let pool = Pool::new(loc.config.clone(), setup, timeout, MAX_CONNECTIONS);
    let pg = Pg {
        // A listener that cannot connect at once only costs latency (waiters
        // poll), so a dead server does not hold a timed pop for the timeout.
        listener: Listener::new(
            loc.config.clone(),
            format!("diskq_{}", loc.schema),
            timeout.min(LISTEN_CONNECT),
        ),
        pool,
        schema,
        timeout,
        wake_poll,
    };
    let stored = pg.initialize()?;
    let mut settings = Settings::resolve(&stored, overrides)?;
    settings.eviction_policy = EvictionPolicy::None;
    settings.min_file_size = u64::MAX;
    if overrides.any() {
        pg.write(false, None, |s| {
            for (name, value) in settings.rows() {
                if ["statistics", "tag_index", "size_limit", "cull_limit"].contains(&name) {
                    s.set_setting(name, &value)?;
                }
            }
            Ok(())
        })?;
    }
    Ok(Opened {
        pg,
        settings,
        shown: loc.shown,
    })
}

impl Pg {
    /// Creates what is missing (under an advisory lock, as concurrent
    /// `CREATE ... IF NOT EXISTS` race) and returns the stored settings.
    fn initialize(&self) -> Result<HashMap<String, Scalar>> {
        let conn = self.pool.take()?;
        let session = PgSession::new(conn, true, self.schema.clone());
        let result = (|| {
            // The last object made: when it is there, so is the rest, and
            // the open takes no lock (CREATE INDEX IF NOT EXISTS would lock
            // the table against writers even when the index exists). A
            // schema made before the job table was added lacks it, so its
            // first open by this version makes what is missing.
            let last = format!("\"{}\".{}", self.schema, sql::LAST_CREATED);
            let complete = {
                let st = session.conn.statement("SELECT to_regclass($1)::text")?;
                let row = block_on(session.conn.client.query_one(&st, &[&last])).map_err(pg_error)?;
                row.try_get::<_, Option<String>>(0).map_err(pg_error)?.is_some()
            };
            session.execute_batch("BEGIN")?;
            if !complete {
                session.execute_batch(sql::INIT_LOCK)?;
                session.execute_batch(&format!("CREATE SCHEMA IF NOT EXISTS \"{}\"", self.schema))?;
                for statement in sql::CREATE {
                    session.execute_batch(statement)?;
                }
                if session.setting(sql::FORMAT_KEY)? == Scalar::Null {
                    session.set_setting(sql::FORMAT_KEY, &Scalar::Int(sql::FORMAT))?;
                }
            }
            let format = session.setting(sql::FORMAT_KEY)?;
            if let Scalar::Int(found) = format
                && found > sql::FORMAT
            {
                return Err(Error::UnsupportedFormat {
                    found,
                    supported: sql::FORMAT,
                });
            }
            let mut stored = HashMap::new();
            for name in ["statistics", "tag_index", "size_limit", "cull_limit"] {
                match session.setting(name)? {
                    Scalar::Null => {}
                    value => {
                        stored.insert(name.to_owned(), value);
                    }
                }
            }
            session.execute_batch("COMMIT")?;
            Ok(stored)
        })();
        self.finish_plain(session, result)
    }

    /// Ends whatever transaction `session` is in (rolling back after an
    /// error) and gives its connection back.
    fn finish_plain<T>(&self, session: PgSession, result: Result<T>) -> Result<T> {
        let healthy = match &result {
            Ok(_) => true,
            Err(_) => session.execute_batch("ROLLBACK").is_ok(),
        };
        self.pool.give(session.conn, healthy);
        result
    }

    fn begin(&self, deadline: Option<Instant>) -> Result<PgSession> {
        let conn = self.pool.take()?;
        let session = PgSession::new(conn, true, self.schema.clone());
        // A timed wait: row and advisory lock waits end by the deadline.
        let lock_timeout = deadline.map(|d| {
            let left = d.saturating_duration_since(Instant::now()).min(self.timeout);
            left.as_millis().clamp(1, i32::MAX as u128) as u64
        });
        // Sent with the first statement, in its round trip.
        session.begin_lazily(lock_timeout);
        Ok(session)
    }

    /// Commits (notifying waiters first when it pushed) or rolls back.
    fn finish<T>(&self, session: PgSession, result: Result<T>) -> Result<T> {
        let result = match result {
            Ok(value) => {
                // NOTIFY is transactional: it is delivered on commit.
                let notify = if session.pushed {
                    format!("NOTIFY diskq_{}", self.schema)
                } else {
                    String::new()
                };
                match session.execute_batch(&format!("{notify}; COMMIT")) {
                    Ok(()) => Ok(value),
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(e),
        };
        let healthy = match &result {
            Ok(_) => true,
            // A failed commit ends the transaction too; ROLLBACK then only warns.
            Err(_) => session.execute_batch("ROLLBACK").is_ok(),
        };
        if result.is_ok() && session.pushed {
            self.listener.notify();
        }
        self.pool.give(session.conn, healthy);
        result
    }

    /// One write transaction around `f`. A lock wait past the timeout (or
    /// past `deadline`) is [`Error::Timeout`]; it is not retried, whatever
    /// `retry` says, as the transaction's work so far is lost with it.
    pub(crate) fn write<T>(
        &self,
        _retry: bool,
        deadline: Option<Instant>,
        f: impl FnOnce(&mut Session) -> Result<T>,
    ) -> Result<T> {
        let session = self.begin(deadline)?;
        let mut session = Session::Postgres(session);
        let result = f(&mut session);
        self.finish(into_pg(session), result)
    }

    /// `f` outside a transaction: each statement sees the latest commits.
    pub(crate) fn read<T>(&self, f: impl FnOnce(&mut Session) -> Result<T>) -> Result<T> {
        let conn = self.pool.take()?;
        let mut session = Session::Postgres(PgSession::new(conn, false, self.schema.clone()));
        let result = f(&mut session);
        let session = into_pg(session);
        let healthy = !session.conn.client.is_closed();
        self.pool.give(session.conn, healthy);
        result
    }

    /// `f` in one read-only snapshot.
    pub(crate) fn read_snapshot<T>(&self, f: impl FnOnce(&mut Session) -> Result<T>) -> Result<T> {
        let conn = self.pool.take()?;
        let session = PgSession::new(conn, false, self.schema.clone());
        if let Err(e) = session.execute_batch("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY") {
            self.pool.give(session.conn, false);
            return Err(e);
        }
        let mut session = Session::Postgres(session);
        let result = f(&mut session);
        let session = into_pg(session);
        let end = session.execute_batch(if result.is_ok() { "COMMIT" } else { "ROLLBACK" });
        self.pool.give(session.conn, end.is_ok());
        result
    }

    /// One transaction around `body`, which gets the session to register
    /// as the thread's open block and hands it back.
    pub(crate) fn transact<T>(
        &self,
        _retry: bool,
        deadline: Option<Instant>,
        body: impl FnOnce(Session) -> (Result<Session>, Result<T>),
    ) -> Result<T> {
        let session = self.begin(deadline)?;
        if let Err(e) = session.lock_transact() {
            return self.finish(session, Err(e));
        }
        let (session, result) = body(Session::Postgres(session));
        match session {
            Ok(session) => self.finish(into_pg(session), result),
            Err(e) => Err(e),
        }
    }

    /// The tasks of this process waiting on the store.
    #[cfg(feature = "tokio")]
    pub(crate) fn tasks(&self) -> &crate::store::wake::Tasks {
        &self.listener.tasks
    }

    /// Makes sure a connection listens for the store's notifications.
    #[cfg(feature = "tokio")]
    pub(crate) fn listen(&self) {
        self.listener.listen();
    }

    /// The longest wait of a waiter without a look.
    #[cfg(feature = "tokio")]
    pub(crate) fn wake_poll(&self) -> Duration {
        self.wake_poll
    }

    /// A watcher for a blocking pop.
    pub(crate) fn watcher(&self) -> PgWatcher {
        PgWatcher {
            seen: self.listener.listen(),
            listener: self.listener.clone(),
            poll: self.wake_poll,
        }
    }
}

fn into_pg(session: Session) -> PgSession {
    match session {
        Session::Postgres(s) => s,
        Session::Sqlite(_) => unreachable!("a PostgreSQL store's sessions are PostgreSQL sessions"),
    }
}

/// Waits for a `NOTIFY` of the store's channel (from any host), or
/// `wake_poll` at most: the fallback for a lost listening connection.
pub(crate) struct PgWatcher {
    listener: Arc<Listener>,
    seen: u64,
    poll: Duration,
}

impl PgWatcher {
    /// Returns when something may have been pushed, or at `deadline`.
    pub(crate) fn wait(&mut self, deadline: Instant) -> Result<()> {
        let now = Instant::now();
        if now >= deadline {
            return Ok(());
        }
        if let Some(version) = self.listener.wait(self.seen, self.poll.min(deadline - now)) {
            self.seen = version;
        } else {
            // A lost listener is started again by the next look.
            self.seen = self.listener.listen();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse_and_hide_their_password() {
        let is = |s: &str| crate::store::postgres_location(std::path::Path::new(s)).is_some();
        assert!(is("postgres://u@h/db") && is("postgresql://u@h/db"));
        assert!(!is("/tmp/postgres://x") && !is("postgres"));
        let loc = parse(
            "postgres://me:secret@db.example:5433/jobs#crawl",
            Duration::from_secs(1),
        )
        .unwrap();
        assert_eq!(loc.schema, "crawl");
        assert_eq!(loc.shown, "postgres://me:***@db.example:5433/jobs#crawl");
        assert_eq!(loc.config.get_dbname(), Some("jobs"));
        let loc = parse("postgres://me@db/jobs", Duration::from_secs(1)).unwrap();
        assert_eq!(loc.schema, DEFAULT_SCHEMA);
        assert_eq!(loc.shown, "postgres://me@db/jobs");
        for bad in [
            "postgres://h/db#",
            "postgres://h/db#Crawl",
            "postgres://h/db#a-b",
            "postgres://h/db#1a",
        ] {
            assert!(
                matches!(parse(bad, Duration::from_secs(1)), Err(Error::InvalidUse(_))),
                "{bad}"
            );
        }
    }
}
