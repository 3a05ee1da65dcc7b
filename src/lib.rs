//! # diskq
//!
//! Persistent, multi-process caches and work queues kept in one directory:
//! an SQLite database (`cache.db`) plus value files. Several OS processes and
//! threads open the same directory at once, and every write is atomic.
//!
//! diskq speaks the on-disk format of Python's
//! [`diskcache`](https://pypi.org/project/diskcache/) for integers, floats,
//! text and bytes, so a Python process and a Rust process can share one
//! directory. Other values are stored as MessagePack, never pickle: nothing in
//! a directory can make a reader run code.
//!
//! ## Cache
//!
//! ```
//! use std::time::Duration;
//! use diskq::{Cache, SetOptions};
//!
//! let dir = tempfile::tempdir()?;
//! let cache = Cache::open(dir.path())?;
//!
//! cache.set("greeting", "hello")?;
//! assert_eq!(cache.get::<String>("greeting")?.as_deref(), Some("hello"));
//!
//! // Any serde type is a value; structs are stored as MessagePack.
//! #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
//! struct Page { url: String, status: u16 }
//! let page = Page { url: "/".into(), status: 200 };
//! cache.set_with("page:/", &page, &SetOptions::new().expire(Duration::from_secs(3600)))?;
//! assert_eq!(cache.get::<Page>("page:/")?, Some(page));
//!
//! // Atomic counters and queues, shared by every process on the directory.
//! cache.incr("visits", 1, 0)?;
//! cache.push("job-1")?;
//! let (_key, job): (_, String) = cache.pull()?.expect("one job");
//! assert_eq!(job, "job-1");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Deque
//!
//! A double-ended queue of any serde type; every push and pop is one
//! transaction, so an item goes to exactly one consumer of any process.
//!
//! ```
//! use std::time::Duration;
//! use diskq::Deque;
//!
//! let dir = tempfile::tempdir()?;
//! let jobs: Deque<u64> = Deque::open(dir.path())?;
//! jobs.extend(&[1, 2, 3])?; // one commit for the batch
//! jobs.push_front(&0)?;
//! assert_eq!(jobs.pop_front()?, Some(0));
//! assert_eq!(jobs.pop_back_many(2)?, [3, 2]);
//! // Blocks (without spinning) until a push by any process, or the timeout.
//! assert_eq!(jobs.pop_front_timeout(Duration::from_millis(50))?, Some(1));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Pop or lease: at-most-once or at-least-once
//!
//! A pop ([`Deque::pop_front`], [`Cache::pull`]) removes the item in the same
//! transaction that hands it out: each item goes to exactly one consumer,
//! but one that dies before finishing its work loses the item. A lease
//! ([`Deque::lease`], [`Cache::lease`]) hands the item out but keeps it,
//! hidden, until the consumer acks it; if the consumer dies, the lease runs
//! out and the next consumer gets the item again (with a higher delivery
//! count; after `max_deliveries` it goes to a dead-letter queue, where
//! [`Cache::dead_letters`] lists it with its delivery count and the last
//! error a nack gave). Work may then be done twice, so make it idempotent.
//! [`Cache::running_leases`] lists what is in flight meanwhile: each
//! running lease's deadline, delivery count and last error, whichever
//! process took it.
//!
//! A crawler is the example: popping a URL from the frontier and crashing
//! before the page is stored loses that URL for good; leasing it costs one
//! more commit (the ack) and a restarted crawl fetches it again.
//!
//! ```
//! use std::time::Duration;
//! use diskq::{Deque, LeaseOptions, Side};
//!
//! let dir = tempfile::tempdir()?;
//! let frontier: Deque<String> = Deque::open(dir.path())?;
//! frontier.push_back("https://example.com/")?;
//! let opts = LeaseOptions::new(Duration::from_secs(30)).max_deliveries(3);
//! while let Some(mut url) = frontier.lease_with(&opts)? {
//!     // fetch and store the page; for slow work, send heartbeats:
//!     url.renew(Duration::from_secs(30))?;
//!     let fetched = true;
//!     if fetched { url.ack()?; } else { url.nack(Side::Back)?; }
//! }
//! assert!(frontier.is_empty()?);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Job queues: delays, priorities, unique jobs, retries, counters
//!
//! A push may carry a due time ([`PushOptions::delay`], [`PushOptions::at`]),
//! a priority ([`PushOptions::priority`]: higher first, FIFO within one) or a
//! uniqueness key ([`PushOptions::unique_key`]: a second push of a key whose
//! item is queued, scheduled or leased pushes nothing, atomically across
//! processes). Pops, batch pops and leases follow them; a blocked waiter
//! wakes when the earliest delayed item is due. A failed delivery comes back
//! after a delay ([`Lease::nack_with`], or a [`RetryPolicy`] on the lease
//! options, for nacks and for leases that ran out) with its delivery count
//! and the reason it failed ([`Lease::last_error`]). Every queue counts what
//! it does ([`Cache::queue_stats`], `diskq stats`).
//!
//! Such items ("jobs") are kept in the same `cache.db`, under text keys
//! `diskq-job-k<16 hex digits>` outside every queue's key range, with a row
//! each in a table of diskq's own (`DiskqJob`), as leased items are kept
//! under `diskq-lease-k…` keys: python-diskcache's `Deque` and `pull` on the
//! same directory never take them for plain items (its `len` and iteration
//! walk every key of its cache, and so see them). The counters are
//! `Settings` rows `diskq_queue:<queue>:<counter>`. On PostgreSQL the same
//! items and counters live in the store's schema (a `diskq_job` table, see
//! the PostgreSQL section below), with the same behaviour.
//!
//! ```
//! use std::time::Duration;
//! use diskq::{Deque, LeaseOptions, NackOptions, PushOptions, RetryPolicy};
//!
//! let dir = tempfile::tempdir()?;
//! let jobs: Deque<String> = Deque::open(dir.path())?;
//! jobs.push_back("resize a.png")?;
//! jobs.push_back_delayed("send the digest", Duration::from_secs(3600))?;
//! jobs.push_back_with("page the on-call", &PushOptions::new().priority(10))?;
//! let opts = LeaseOptions::new(Duration::from_secs(30))
//!     .max_deliveries(5)
//!     .retry_policy(RetryPolicy::exponential(Duration::from_secs(1), Duration::from_secs(300)).with_jitter());
//! let job = jobs.lease_with(&opts)?.expect("a job");
//! assert_eq!(job.value(), "page the on-call");
//! job.nack_with(&NackOptions::new().error("pager down"))?; // back in about a second
//! assert_eq!(jobs.pop_front()?.as_deref(), Some("resize a.png"));
//! let backlog = jobs.backlog()?;
//! assert_eq!((backlog.queued, backlog.scheduled), (0, 2));
//! assert_eq!(jobs.stats()?.nacked, 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Index
//!
//! A map that keeps insertion order, shared by processes.
//!
//! ```
//! use diskq::Index;
//!
//! let dir = tempfile::tempdir()?;
//! let seen: Index<String, u16> = Index::open(dir.path())?;
//! seen.insert("https://example.com/", &200)?;
//! seen.insert("https://example.com/a", &404)?;
//! assert_eq!(seen.get("https://example.com/a")?, Some(404));
//! assert_eq!(seen.pop_first()?, Some(("https://example.com/".into(), 200)));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Async (tokio)
//!
//! With the cargo feature `tokio`, [`tokio`] has the same
//! types with the same methods, awaited: a waiting pop holds no thread, so a
//! thousand consumer tasks can wait on two worker threads, and dropping a
//! pop's future (a `timeout`, a `select!`) never loses its item. Sync and
//! async handles, threads and processes share one directory.
//!
//! ```
//! # #[cfg(feature = "tokio")]
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//!
//! let dir = tempfile::tempdir()?;
//! // Sync: blocks the thread for the wait.
//! let jobs: diskq::Deque<u64> = diskq::Deque::open(dir.path())?;
//! jobs.push_back(&1)?;
//! assert_eq!(jobs.pop_front_timeout(Duration::from_millis(50))?, Some(1));
//! // Async: the same queue; the task waits, no thread does.
//! let jobs: diskq::tokio::Deque<u64> = diskq::tokio::Deque::open(dir.path()).await?;
//! jobs.push_back(&2).await?;
//! assert_eq!(jobs.pop_front_timeout(Duration::from_millis(50)).await?, Some(2));
//! # Ok(()) }
//! # #[cfg(not(feature = "tokio"))]
//! # fn main() {}
//! ```
//!
//! ## FanoutCache
//!
//! Keys spread over shards (subdirectories `000`, `001`, ...) by
//! python-diskcache's own hash, each shard with its own write lock; a shard
//! locked past the short timeout makes a `get` a miss and a `set` `false`
//! instead of a wait.
//!
//! ```
//! use diskq::FanoutCache;
//!
//! let dir = tempfile::tempdir()?;
//! let cache = FanoutCache::builder().shards(4).open(dir.path())?;
//! assert!(cache.set("page:/", "<html>...</html>")?);
//! assert_eq!(cache.get::<String>("page:/")?.as_deref(), Some("<html>...</html>"));
//! let jobs = cache.deque::<String>("jobs")?; // named collections in the same directory
//! jobs.push_back("crawl /")?;
//! assert_eq!(cache.len()?, 1, "named collections are not shards");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Recipes
//!
//! Locks, a semaphore, a throttle, a barrier, a running average and
//! stampede-proof memoizing, built on Cache operations and so shared by
//! every process on the directory (see [`recipes`]).
//!
//! ```
//! use std::time::Duration;
//! use diskq::{BoundedSemaphore, Lock, Throttle};
//!
//! let dir = tempfile::tempdir()?;
//! let cache = diskq::Cache::open(dir.path())?;
//! let lock = Lock::new(&cache, "nightly-report", Duration::from_secs(300))?;
//! {
//!     let _held = lock.lock()?; // one holder in all processes; a dead one frees it at expiry
//! }
//! let downloads = BoundedSemaphore::new(&cache, "downloads", 4, Duration::from_secs(60))?;
//! let _slot = downloads.lock()?;
//! let api = Throttle::new(&cache, "api", 10, Duration::from_secs(1))?; // 10 calls per second
//! api.wait()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Concurrency
//!
//! SQLite runs in WAL mode: readers never wait, writers queue on one lock
//! (`BEGIN IMMEDIATE`) and give up with [`Error::Timeout`] after the
//! cache's timeout. diskq's writers queue in arrival order (threads on a
//! lock in the process; processes, on Linux, in a line of OS file locks on
//! `cache.db.wturn` in front of the lock `cache.db.wlock`, elsewhere at a
//! turnstile there) and are woken when the lock is let go, instead of
//! sleeping in SQLite's busy handler; a writer that just wrote may go ahead
//! of the waiting ones up to 8 times in a row, which keeps the handoffs
//! between processes few. Commits run no checkpoint: a background thread
//! per process and directory does, and a write runs one itself only when a
//! reader that stays open has let the log grow past 64 MiB
//! ([`Stats::blocking_checkpoints`]). [`Cache::transact`] makes a group of
//! operations atomic.
//! Large values live in files written before their row commits and removed
//! after the commit that drops it, so a crash at any moment leaves at worst an
//! orphan file, which [`Cache::check`] removes once it is older than a grace
//! period ([`CheckOptions`]), so that a writer still at work keeps its file.
//!
//! A consumer blocked in a timed wait ([`Deque::pop_front_timeout`],
//! [`Deque::lease_timeout`], [`Cache::pull_timeout`],
//! [`Cache::wait_for_queued`]) wakes as soon as a push by any diskq thread
//! or process commits: on Linux a push rings the directory's doorbell
//! (`cache.db.bell`, watched with inotify). Pushes that ring nothing
//! (python-diskcache's, or any where inotify is missing) are noticed within
//! [`CacheBuilder::wake_poll`] (50 ms by default).
//!
//! The directory must be on a local file system (see [below](#several-processes-containers-network-file-systems)).
//!
//! ## When the disk fills
//!
//! A write on a full file system fails with a clear error ([`Error::Sqlite`]
//! "database or disk is full", or [`Error::Io`] for a value file) and
//! changes nothing. Removing still works: each directory keeps a 256 KiB
//! reserve file, `cache.db.reserve`, which a [`Cache::delete`],
//! [`Cache::pop`], [`Cache::clear`], [`Cache::expire`], [`Cache::evict`] or
//! [`Cache::cull`] that finds the disk full deletes before it tries again;
//! the write-ahead log is then checkpointed and truncated to zero bytes as
//! soon as there is room for it, and the reserve made again. So, when the
//! disk fills: remove what you can spare with those operations (value files
//! give their space back at once; rows stored inline do once the log is
//! truncated), or lower the size limit and [`Cache::cull`]. If the
//! database's own rows fill the disk and a removal still fails, free some
//! space outside the directory (as much as the `cache.db-wal` file holds)
//! and remove again; never delete `cache.db-wal` by hand, it holds the
//! latest commits. After a checkpoint the log keeps at most 64 MiB of its file.
//!
//! ## Errors
//!
//! Every fallible call returns [`Result`], with one [`Error`] enum for the
//! crate. Each method's `# Errors` section names the failures of its own;
//! on top of those, any call that touches the directory can fail with:
//!
//! - [`Error::Sqlite`] or [`Error::Io`] when the database or a value file
//!   cannot be read or written: a full disk, a permission taken away, an
//!   I/O error (the error carries SQLite's code or the file's path);
//! - [`Error::Corrupt`] when what it reads cannot have been written by diskq
//!   or python-diskcache (a row of the wrong shape, a value file whose size
//!   differs from its row's);
//! - [`Error::InvalidKey`] for a key that cannot be stored (a NaN float).
//!
//! A call that writes (every one that adds, changes or removes an item, and
//! a `get` when statistics are on or the eviction policy records accesses)
//! can also fail with [`Error::Timeout`], when other writers keep the write
//! lock past the cache's timeout ([`CacheBuilder::timeout`], 60 s by
//! default; a call whose options say `retry` tries again instead), and with
//! [`Error::InvalidUse`] on a handle opened read-only
//! ([`Cache::open_read_only`]). A failed write changes nothing, except that
//! the bulk removals that run in batches ([`Cache::expire`], [`Cache::clear`],
//! [`Cache::evict`]) keep the batches done before the failure.
//!
//! ## Durability: what a crash or a power loss keeps
//!
//! Every write is one SQLite transaction, so after any failure a reader
//! sees each write whole or not at all: never half a batch or a torn
//! database, and (with value files synced, the default) never a row without
//! its value file. What a failure can take back depends
//! on the failure and on [`CacheBuilder::sqlite_synchronous`] (saved in the
//! directory, so every process of it uses the same):
//!
//! - A crash of the process (a panic, `kill -9`, an out-of-memory kill)
//!   loses nothing that committed, whatever the synchronous setting: the
//!   commit is in the write-ahead log, which the operating system keeps.
//! - A power loss or an operating-system crash with the default,
//!   [`Synchronous::Normal`]: the database stays consistent, but the last
//!   commits before the failure (those since the log was last synced, which
//!   happens at each checkpoint) may be rolled back. A `set` that returned
//!   may then be gone, a popped item back in its queue, an acked lease
//!   leased again.
//! - A power loss with [`Synchronous::Full`] (or `Extra`): a write that
//!   returned `Ok` survives; each commit costs one fsync of the log.
//!
//! Values of at least [`CacheBuilder::min_file_size`] bytes live in their
//! own files, which are synced, with the folders made for them, before
//! their row commits ([`CacheBuilder::sync_files`], on by default). With
//! `sync_files(false)` a power loss (not a process crash) can leave a
//! committed row whose file is empty or missing: reading it fails or
//! misses, and [`Cache::check`] reports it. These guarantees hold only as
//! far as the disk honours fsync (some consumer drives and virtual disks
//! acknowledge writes they have not stored).
//!
//! ## Processes, threads and `fork`
//!
//! A [`Cache`] is `Clone + Send + Sync`, and its clones share one pool of
//! connections: share a handle between the threads of a process, and open
//! the directory once in each process. Handles of any number of processes
//! may be open on one directory at once.
//!
//! A handle inherited through `fork(2)` is not broken: diskq notices the
//! new process id and gives the child its own SQLite connections and lock
//! files, leaving the parent's alone (SQLite forbids using a connection
//! across `fork`). But a child forked while another thread of the parent
//! held one of diskq's locks (any thread in an operation, or the
//! checkpointer thread that the first write starts) can block on that lock
//! for ever, as with any multi-threaded program that forks. So: spawn
//! workers with [`std::process::Command`] (fork and exec) and open the
//! directory in each, or fork before the parent opens it; after a bare
//! `fork` in a multi-threaded parent, open the directory anew in the child
//! rather than use the inherited handle. A bare `fork` also leaves the
//! parent's open lock files (close-on-exec, not close-on-fork) in the child:
//! if the parent then dies while writing, or while waiting to write, the
//! directory's write lock stays taken until that child exits or execs too.
//!
//! ## Blocking calls in async code
//!
//! The handles at the crate root are synchronous: every call blocks its
//! thread on disk I/O and SQLite, and the timed waits
//! ([`Deque::pop_front_timeout`], [`Cache::pull_timeout`], ...) block for up
//! to their timeout. In a tokio runtime use the handles of [`tokio`] (the
//! `tokio` feature), whose waits hold no thread; without that feature, run
//! the calls on the runtime's blocking pool
//! (`tokio::task::spawn_blocking(move || cache.get::<String>("k"))` on a
//! cloned handle), never directly in a task.
//!
//! ## Clocks: expiry and leases follow the wall clock
//!
//! Expiry times ([`SetOptions::expire`], and so the expiry of the
//! [`recipes`]' locks and semaphore slots) and lease deadlines
//! ([`LeaseOptions`], [`Lease::renew`]) are stored as wall-clock times
//! ([`SystemTime`](std::time::SystemTime), seconds since the Unix epoch, as
//! python-diskcache stores them) and compared with each process's clock
//! when read. A clock that jumps forward makes entries expire early and
//! leases run out early: another consumer then gets a leased item while its
//! first consumer still works on it (work done twice, which at-least-once
//! work must tolerate anyway). A clock that jumps back keeps entries alive,
//! and the items of leases whose consumer died hidden, for that much longer.
//! Timeouts and timed waits are not affected: they use the monotonic clock
//! ([`Instant`](std::time::Instant)). Keep the clock synced by slewing
//! (NTP, chrony), and lease for much longer than the largest correction you
//! expect. [`CacheBuilder::clock`] replaces the clock, for tests.
//!
//! ## Several processes, containers, network file systems
//!
//! All processes of a directory must run on one machine (one kernel), and
//! the directory must be on a local file system. SQLite's write-ahead log
//! shares memory between processes through `cache.db-shm`, and diskq's
//! write queue and doorbell use OS file locks and inotify: none of that
//! works between machines. On NFS, SMB or a cluster file system, locks are
//! unreliable and commits of two hosts can corrupt the database; do not
//! share a directory that way (give each host its own, or use the
//! PostgreSQL backend below). Containers on one host that bind-mount the same local
//! directory are fine, as are python-diskcache processes beside diskq's.
//!
//! ## PostgreSQL: workers on several machines
//!
//! A directory serves the processes of one machine. With the `postgres`
//! feature, the same [`Deque`], leases, [`Index`] and [`Cache`] live in a
//! PostgreSQL database instead, for workers on many machines: only the line
//! that opens them changes, to a location
//! `postgres://user:password@host:port/database#schema` (or `postgresql://`).
//! The `#schema` part names the PostgreSQL schema that holds this queue's
//! tables (lowercase letters, digits and `_`; `diskq` when left out), made on
//! first open like a directory; one database holds many.
//!
//! ```no_run
//! # // Needs a PostgreSQL server and the `postgres` feature.
//! use std::time::Duration;
//! use diskq::{Deque, Index};
//!
//! let frontier: Deque<String> = Deque::open("postgres://crawler:secret@db.internal/crawl#frontier")?;
//! let seen: Index<String, u64> = Index::open("postgres://crawler:secret@db.internal/crawl#seen")?;
//! frontier.push_back("https://example.com/")?;
//! // Any process on any machine: at-least-once, as on a directory.
//! if let Some(job) = frontier.lease(Duration::from_secs(60))? {
//!     seen.insert(job.value(), &200)?;
//!     job.ack()?;
//! }
//! # Ok::<(), diskq::Error>(())
//! ```
//!
//! The guarantees are the directory's: each operation is one PostgreSQL
//! transaction and [`Cache::transact`] is one transaction (the bodies of
//! one store run one at a time, as on a directory, so that two of them
//! never lock the same keys in opposite orders); a pop is
//! exactly-once and a lease at-least-once; pops and leases take their row
//! `FOR UPDATE SKIP LOCKED`, so consumers never wait on each other; blocked
//! pops wake through `LISTEN`/`NOTIFY` (with [`CacheBuilder::wake_poll`] as
//! the fallback). Values are stored as on a directory: native scalars and
//! MessagePack. Times (expiry, lease deadlines, due times of delayed
//! items) are each client's clock: keep the hosts' clocks in sync (NTP).
//!
//! The job-queue features work there as on a directory: delayed,
//! prioritized and unique items, nacks with a delay, retry policies and
//! the queue counters, and dead letters keep their record (a
//! `diskq_dead_letter` table). A job is a row of a `diskq_job` table (both
//! made on the first open of a schema that lacks them); the next job is taken in one
//! indexed `ORDER BY priority DESC, ready, item ... FOR UPDATE SKIP LOCKED`,
//! so consumers on many hosts never wait on each other; a unique push first
//! takes an advisory lock on its queue and key, so of two pushes of a key
//! from any hosts one pushes; a plain queue's pop learns that it has no
//! jobs in the round trip that counts it. A waiter wakes on `NOTIFY` or when
//! the earliest delayed item of its queue is due.
//!
//! What a PostgreSQL store does not do, each a clear
//! [`Error::Unsupported`]: value files (every value is stored inline, in a
//! `bytea` column; [`CacheBuilder::min_file_size`] is refused), eviction
//! policies other than `none` (the default there; a size limit culls
//! nothing), the `sqlite_*` settings, [`Cache::check`] and `repair`,
//! [`FanoutCache`], and python-diskcache interop (its processes read
//! directories only). A lock wait past the timeout is [`Error::Timeout`]
//! and is not retried (the transaction's work so far is gone with it);
//! a lost connection is [`Error::Postgres`], and the next operation uses a
//! new one. Each store keeps at most 16 connections (and one more that
//! listens while a pop waits). The client is tokio-postgres on a runtime
//! thread of diskq's own, so the blocking API also works inside a tokio
//! runtime (it blocks that thread, as any blocking call does). A process
//! that forks must open its stores again in the child.
//!
//! ## Cargo features
//!
//! - `bundled` (default): SQLite is compiled into the crate, so nothing
//!   needs installing. With `default-features = false` the system's
//!   `libsqlite3` is linked instead; it must be 3.45.3 or newer (the oldest
//!   that rusqlite 0.43 supports). See the README when another crate of the
//!   build brings rusqlite too.
//! - `tokio`: the async handles of [`tokio`] (tokio's `rt`,
//!   `sync`, `time` and `net`; the runtime needs its IO and time drivers).
//! - `postgres`: the PostgreSQL backend (see above); brings tokio-postgres
//!   and tokio. Without it a `postgres://` location is an
//!   [`Error::Unsupported`].
//!
//! The minimum supported Rust is 1.89 (`File::lock`).

// Two of clippy's pedantic lints, for the library only: every pure getter
// says that dropping its result is a mistake, and every fallible call says
// which errors it returns and when.
#![warn(clippy::must_use_candidate, clippy::missing_errors_doc)]

mod batch;
mod cache;
mod codec;
mod counters;
mod deadline;
pub mod deque;
mod disk;
mod error;
pub mod fanout;
pub mod index;
mod jobs;
mod key;
mod keys;
mod lease;
mod maintenance;
mod memoize;
mod options;
mod queue;
pub mod recipes;
mod settings;
mod store;
#[cfg(feature = "tokio")]
pub mod tokio;

pub use cache::{Cache, CacheBuilder, Clock, ValueReader};
pub use counters::QueueStats;
pub use deque::Deque;
pub use error::{Error, Result};
pub use fanout::{FanoutCache, FanoutCacheBuilder};
pub use index::Index;
pub use jobs::RetryPolicy;
pub use key::Key;
pub use keys::Keys;
pub use lease::{Backlog, DeadLetter, Lease, LeaseId, LeaseOptions, NackOptions, RunningLease};
pub use options::{CheckOptions, Due, Entry, PullOptions, PushOptions, SetOptions, Side, Stats, Warning, WarningKind};
pub use recipes::{
    Averager, Barrier, BoundedSemaphore, Lock, LockGuard, MemoizeStampede, RLock, RLockGuard, SemaphoreGuard, Throttle,
};
pub use settings::{EvictionPolicy, Synchronous};

// The README's Rust snippets, compiled and run by `cargo test --doc`.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
