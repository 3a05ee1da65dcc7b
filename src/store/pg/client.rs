//! Connections to PostgreSQL: a runtime thread owned by diskq, a bounded
//! pool, and the listener that wakes blocked waiters.
//!
//! tokio-postgres splits a connection in two: a `Client` that sends
//! requests and a `Connection` future that does the socket I/O. The
//! connection futures run on one tokio runtime that diskq starts on its own
//! thread (once per process); the clients' futures only wait on channels,
//! so diskq's blocking calls drive them with [`block_on`] on the caller's
//! thread, with no runtime there. That is why the blocking API works inside
//! a tokio runtime too (the sync `postgres` crate calls `Runtime::block_on`
//! and panics there), and why an async API can later await the same
//! futures directly.

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use tokio_postgres::{AsyncMessage, Client, Config, NoTls, Statement};

use crate::error::{Error, Result};

/// Runs `future` to completion on this thread, parking between polls.
///
/// Unlike `futures::executor::block_on` it has no guard against nesting,
/// and unlike tokio's it needs no runtime: it may be called anywhere,
/// inside an async task included (where it blocks that worker thread, as
/// any blocking call does).
pub(crate) fn block_on<F: Future>(future: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
        fn wake_by_ref(self: &Arc<Self>) {
            self.0.unpark();
        }
    }
    let mut future = std::pin::pin!(future);
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
        std::thread::park();
    }
}

/// The process's runtime for connection futures, started on first use.
fn runtime() -> Result<&'static tokio::runtime::Handle> {
    static HANDLE: OnceLock<std::result::Result<tokio::runtime::Handle, String>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            let handle = rt.handle().clone();
            std::thread::Builder::new()
                .name("diskq-postgres".into())
                .spawn(move || rt.block_on(std::future::pending::<()>()))
                .map_err(|e| e.to_string())?;
            Ok(handle)
        })
        .as_ref()
        .map_err(|e| Error::io("<diskq postgres runtime>", std::io::Error::other(e.clone())))
}

/// A PostgreSQL error as diskq reports it: a lock wait past the timeout is
/// [`Error::Timeout`]; anything else [`Error::Postgres`] with the SQLSTATE.
pub(crate) fn pg_error(e: tokio_postgres::Error) -> Error {
    let code = e.code().map(|c| c.code().to_owned());
    match code.as_deref() {
        // lock_not_available (lock_timeout), query_canceled (statement_timeout)
        Some("55P03") | Some("57014") => Error::Timeout,
        _ => Error::Postgres {
            code,
            source: Box::new(e),
        },
    }
}

/// Opens one connection, within `timeout`.
pub(crate) fn connect(config: &Config, timeout: Duration) -> Result<Client> {
    let config = config.clone();
    let task = runtime()?.spawn(async move {
        let Ok(connected) = tokio::time::timeout(timeout, config.connect(NoTls)).await else {
            return Ok(None);
        };
        let (client, connection) = connected?;
        tokio::spawn(async move {
            // Ends when the client is dropped or the server goes away; the
            // client's calls then fail, and the pool drops it.
            let _ = connection.await;
        });
        Ok::<_, tokio_postgres::Error>(Some(client))
    });
    match block_on(task) {
        Ok(Ok(Some(client))) => Ok(client),
        Ok(Ok(None)) => Err(Error::Timeout),
        Ok(Err(e)) => Err(pg_error(e)),
        Err(e) => Err(Error::io(
            "<diskq postgres runtime>",
            std::io::Error::other(e.to_string()),
        )),
    }
}

/// A pooled connection and its prepared statements.
pub(crate) struct Conn {
    pub(crate) client: Client,
    statements: RefCell<HashMap<&'static str, Statement>>,
}

impl Conn {
    /// The prepared statement for `sql` (prepared once per connection).
    pub(crate) fn statement(&self, sql: &'static str) -> Result<Statement> {
        if let Some(s) = self.statements.borrow().get(sql) {
            return Ok(s.clone());
        }
        let s = block_on(self.client.prepare(sql)).map_err(pg_error)?;
        self.statements.borrow_mut().insert(sql, s.clone());
        Ok(s)
    }
}

/// A bounded pool: at most `max` connections open, idle ones reused; a
/// caller finding all in use waits for one (up to the timeout).
pub(crate) struct Pool {
    config: Config,
    /// Statements run on every new connection (the schema's search path,
    /// the lock timeout).
    setup: String,
    timeout: Duration,
    max: usize,
    state: Mutex<PoolState>,
    freed: Condvar,
}

struct PoolState {
    idle: Vec<Conn>,
    open: usize,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool").field("max", &self.max).finish_non_exhaustive()
    }
}

impl Pool {
    pub(crate) fn new(config: Config, setup: String, timeout: Duration, max: usize) -> Pool {
        Pool {
            config,
            setup,
            timeout,
            max: max.max(1),
            state: Mutex::new(PoolState {
                idle: Vec::new(),
                open: 0,
            }),
            freed: Condvar::new(),
        }
    }

    fn state(&self) -> MutexGuard<'_, PoolState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// An idle connection, a new one, or (all `max` in use) the first given
    /// back within the timeout.
    pub(crate) fn take(&self) -> Result<Conn> {
        let until = crate::deadline::from_now(self.timeout);
        let mut st = self.state();
        loop {
            while let Some(conn) = st.idle.pop() {
                if !conn.client.is_closed() {
                    return Ok(conn);
                }
                st.open -= 1;
            }
            if st.open < self.max {
                st.open += 1;
                drop(st);
                return self.open().inspect_err(|_| {
                    self.state().open -= 1;
                    self.freed.notify_one();
                });
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Error::Timeout);
            }
            st = self.freed.wait_timeout(st, left).unwrap_or_else(|p| p.into_inner()).0;
        }
    }

    fn open(&self) -> Result<Conn> {
        let client = connect(&self.config, self.timeout)?;
        block_on(client.batch_execute(&self.setup)).map_err(pg_error)?;
        Ok(Conn {
            client,
            statements: RefCell::new(HashMap::new()),
        })
    }

    /// Gives back a connection; `healthy` false (a transaction that could not
    /// be ended, a broken socket) closes it instead.
    pub(crate) fn give(&self, conn: Conn, healthy: bool) {
        let mut st = self.state();
        if healthy && !conn.client.is_closed() {
            st.idle.push(conn);
        } else {
            st.open -= 1;
        }
        drop(st);
        self.freed.notify_one();
    }
}

/// Wakes the waiters of one store when a commit anywhere may have fed them:
/// a connection that `LISTEN`s on the store's channel bumps a version.
pub(crate) struct Listener {
    config: Config,
    channel: String,
    timeout: Duration,
    state: Mutex<ListenState>,
    changed: Condvar,
    /// Waiting tasks (`crate::tokio`): each wake wakes one.
    #[cfg(feature = "tokio")]
    pub(crate) tasks: tokio::sync::Notify,
}

#[derive(Default)]
struct ListenState {
    version: u64,
    /// The listening connection, while it lives.
    client: Option<Client>,
    /// False once its connection ended (the server restarted, say).
    live: bool,
}

impl std::fmt::Debug for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listener")
            .field("channel", &self.channel)
            .finish_non_exhaustive()
    }
}

impl Listener {
    pub(crate) fn new(config: Config, channel: String, timeout: Duration) -> Arc<Listener> {
        Arc::new(Listener {
            config,
            channel,
            timeout,
            state: Mutex::new(ListenState::default()),
            changed: Condvar::new(),
            #[cfg(feature = "tokio")]
            tasks: tokio::sync::Notify::new(),
        })
    }

    fn state(&self) -> MutexGuard<'_, ListenState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Wakes this process's waiters of the store.
    pub(crate) fn notify(&self) {
        let mut st = self.state();
        st.version = st.version.wrapping_add(1);
        self.changed.notify_all();
        #[cfg(feature = "tokio")]
        self.tasks.notify_one();
    }

    /// Makes sure a connection listens (reconnecting after a lost one) and
    /// returns the version a new waiter has seen. A failure to listen is
    /// not an error: waiters then poll.
    pub(crate) fn listen(self: &Arc<Self>) -> u64 {
        let live = self.state().live;
        if !live {
            let _ = self.start();
        }
        self.state().version
    }

    fn start(self: &Arc<Self>) -> Result<()> {
        let config = self.config.clone();
        let me = Arc::downgrade(self);
        let channel = self.channel.clone();
        let timeout = self.timeout;
        let task = runtime()?.spawn(async move {
            let Ok(connected) = tokio::time::timeout(timeout, config.connect(NoTls)).await else {
                return Ok(None);
            };
            let (client, mut connection) = connected?;
            tokio::spawn(async move {
                std::future::poll_fn(|cx| {
                    loop {
                        match connection.poll_message(cx) {
                            Poll::Ready(Some(Ok(AsyncMessage::Notification(_)))) => match me.upgrade() {
                                Some(listener) => listener.notify(),
                                None => return Poll::Ready(()),
                            },
                            Poll::Ready(Some(Ok(_))) => {}
                            Poll::Ready(Some(Err(_)) | None) => return Poll::Ready(()),
                            Poll::Pending => return Poll::Pending,
                        }
                    }
                })
                .await;
                if let Some(listener) = me.upgrade() {
                    let mut st = listener.state();
                    st.live = false;
                    st.client = None;
                    // Waiters look again (a commit may have gone unheard).
                    st.version = st.version.wrapping_add(1);
                    listener.changed.notify_all();
                    #[cfg(feature = "tokio")]
                    listener.tasks.notify_one();
                }
            });
            client.batch_execute(&format!("LISTEN {channel}")).await?;
            Ok::<_, tokio_postgres::Error>(Some(client))
        });
        let client = match block_on(task) {
            Ok(Ok(Some(client))) => client,
            Ok(Ok(None)) => return Err(Error::Timeout),
            Ok(Err(e)) => return Err(pg_error(e)),
            Err(e) => {
                return Err(Error::io(
                    "<diskq postgres runtime>",
                    std::io::Error::other(e.to_string()),
                ));
            }
        };
        let mut st = self.state();
        st.client = Some(client);
        st.live = true;
        Ok(())
    }

    /// Waits up to `pause` for a wake after `seen`; the new version if one came.
    pub(crate) fn wait(&self, seen: u64, pause: Duration) -> Option<u64> {
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
            st = self.changed.wait_timeout(st, left).unwrap_or_else(|p| p.into_inner()).0;
        }
    }
}
