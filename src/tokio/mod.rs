//! Async counterparts of [`Cache`](crate::Cache), [`Deque`](crate::Deque),
//! [`Index`](crate::Index) and [`Lease`](crate::Lease) for tokio (cargo
//! feature `tokio`), with the same names and methods: `async fn` where the
//! sync method returns, and `Send` futures, for `tokio::spawn` on a
//! multi-threaded runtime.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use diskq::tokio::Deque;
//!
//! let dir = tempfile::tempdir()?;
//! let jobs: Deque<String> = Deque::open(dir.path()).await?;
//! let consumer = {
//!     let jobs = jobs.clone();
//!     // Waits without a thread until a push by any process.
//!     tokio::spawn(async move { jobs.pop_front_timeout(Duration::from_secs(10)).await })
//! };
//! jobs.push_back("resize img-1").await?;
//! assert_eq!(consumer.await??.as_deref(), Some("resize img-1"));
//! # Ok(()) }
//! ```
//!
//! The same directory is open to sync handles, threads and other processes
//! at once, and `sync()` gives any handle's sync form (for the operations
//! this module does not repeat: iteration, `check`, `stats`, ...).
//!
//! # Waiting costs no thread
//!
//! An awaited `pop_front_timeout`, `pull_timeout`, `lease_timeout` or
//! `wait_for_queued` waits on the directory's wake-ups with no thread of its
//! own: a push by this process wakes it at once, a push by another diskq
//! process through the doorbell (on Linux, the directory's `cache.db.bell`
//! watched with inotify on the runtime's reactor), and any other commit
//! (python-diskcache's pushes ring nothing) within
//! [`CacheBuilder::wake_poll`](crate::CacheBuilder::wake_poll), on a tokio
//! timer. One waiting task per process and directory watches for the
//! others; a wake wakes one task, and a task that takes an item wakes the
//! next, so a thousand idle consumers cost a thousand small futures, not a
//! thousand threads, and a push for one of them does not wake them all.
//!
//! The runtime needs its IO and time drivers (`Builder::enable_all`, which
//! `#[tokio::main]` turns on): tokio's timers and reactor panic without them.
//!
//! # Operations run inline
//!
//! Every operation runs on the task's own thread, inside the poll that
//! returns its result, as a call to the sync method would; none goes to the
//! blocking pool (only the `open`s do). Measured with `cargo bench
//! --features tokio --bench async_ops` (release, 2 shared cores, a 100-byte
//! value, medians):
//!
//! | operation   | sync    | awaited (inline) | `spawn_blocking` of the sync call |
//! |-------------|---------|------------------|-----------------------------------|
//! | `get`       | 3.1 µs  | 4.2 µs           | 31 µs                             |
//! | `push_back` | 62 µs   | 56 µs            | 103 µs                            |
//!
//! A trip through the blocking pool costs 30 to 40 µs, ten times a `get`;
//! inline costs about a microsecond (tokio's cooperative budget before a
//! read, one yield before a write, so that a task looping over a backlog
//! lets its worker's other tasks run). Inline also makes every operation
//! cancellation-safe: a future dropped before it returned did nothing, and
//! one that returned did all.
//!
//! What inline costs: a write waits for the directory's write lock on the
//! runtime's thread, up to the cache's timeout (`CacheBuilder::timeout`),
//! as would any blocking call; a write of a large value writes its file
//! there. A take (a pop, pull or lease) waits for the lock at most 10 ms
//! at a time and then yields to the runtime before trying again. For a
//! directory whose write lock other processes hold for long, give the
//! cache a short timeout, or run such writes in `spawn_blocking` with the
//! sync handle ([`Cache::sync`]).
//!
//! # Cancellation
//!
//! Dropping the future of a pop, pull or lease at any await (a
//! `tokio::time::timeout` or `select!` that ran out) loses no item: an item
//! is taken only inside the poll that returns it, with no await between
//! the take and the return. The item is still queued, or it is in the
//! returned value. A task woken for an item and dropped before it looked
//! hands the wake to another waiting task.
//!
//! # One runtime per process, preferably
//!
//! The tasks of a process that wait on one directory share one watching
//! task, whichever runtime it runs on. Pushes by this process wake every
//! runtime's tasks, but a ring from another process reaches them through
//! the watching task: if its runtime is not driven (a current-thread
//! runtime between two `block_on` calls), the tasks of other runtimes see
//! other processes' pushes only when it runs again or their wait ends.
//!
//! # PostgreSQL
//!
//! With the `postgres` feature too, the same handles open a PostgreSQL
//! schema (`Deque::open("postgres://host/db#schema")`). A waiting task is
//! woken through LISTEN/NOTIFY: the store's listening connection (one per
//! process and schema, on the thread diskq runs PostgreSQL's connections
//! on) wakes one waiting task per `NOTIFY`, as the doorbell does for a
//! directory, and `wake_poll` bounds the wait when that connection is lost.
//! The operations themselves are still the sync calls run inline, so each
//! holds its worker for a round trip to the server; awaiting the driver's
//! futures directly is the next step.

mod cache;
mod deque;
mod index;
mod lease;
pub(crate) mod wait;

pub use cache::Cache;
pub use deque::Deque;
pub use index::Index;
pub use lease::Lease;
