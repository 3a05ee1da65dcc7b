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
//! count; after `max_deliveries` it goes to a dead-letter queue). Work may
//! then be done twice, so make it idempotent.
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
//! lock in the process, processes on OS file locks `cache.db.wturn` and
//! `cache.db.wlock`) and are woken when the lock is let go, instead of
//! sleeping in SQLite's busy handler. Commits run no checkpoint: a
//! background thread per process and directory does, and a write runs one
//! itself only when a reader that stays open has let the log grow past
//! 64 MiB ([`Stats::blocking_checkpoints`]). [`Cache::transact`] makes a
//! group of operations atomic.
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
//! The directory must be on a local file system (not NFS).
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
//! transaction and [`Cache::transact`] is one transaction; a pop is
//! exactly-once and a lease at-least-once; pops and leases take their row
//! `FOR UPDATE SKIP LOCKED`, so consumers never wait on each other; blocked
//! pops wake through `LISTEN`/`NOTIFY` (with [`CacheBuilder::wake_poll`] as
//! the fallback). Values are stored as on a directory: native scalars and
//! MessagePack. Times (expiry, lease deadlines) are each client's clock:
//! keep the hosts' clocks in sync (NTP).
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
//! - `postgres`: the PostgreSQL backend (see above); brings tokio-postgres
//!   and tokio. Without it a `postgres://` location is an
//!   [`Error::Unsupported`].
//!
//! The minimum supported Rust is 1.89 (`File::lock`).

mod batch;
mod cache;
mod codec;
mod deadline;
pub mod deque;
mod disk;
mod error;
pub mod fanout;
pub mod index;
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

pub use cache::{Cache, CacheBuilder, Clock, ValueReader};
pub use deque::Deque;
pub use error::{Error, Result};
pub use fanout::{FanoutCache, FanoutCacheBuilder};
pub use index::Index;
pub use key::Key;
pub use keys::Keys;
pub use lease::{Backlog, Lease, LeaseId, LeaseOptions};
pub use options::{CheckOptions, Entry, PullOptions, PushOptions, SetOptions, Side, Stats, Warning, WarningKind};
pub use recipes::{
    Averager, Barrier, BoundedSemaphore, Lock, LockGuard, MemoizeStampede, RLock, RLockGuard, SemaphoreGuard, Throttle,
};
pub use settings::{EvictionPolicy, Synchronous};
