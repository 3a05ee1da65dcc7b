//! Awaited waits: a task waiting for an item holds no thread.
//!
//! A waiting task is a `Notify` waiter of its directory (`wake::Tasks`):
//! every wake of the directory (a push by this process, a ring of the
//! doorbell by another, a commit seen by the fallback poll) wakes one task,
//! and a task that then takes an item wakes the next one, since more may
//! have come. So a ring for one item wakes one task, not all of them, and a
//! burst of items wakes as many tasks as it feeds. A task that is woken and
//! then dropped hands its wake on (`Notify`'s rule), so cancelling a waiter
//! strands no item.
//!
//! One waiting task at a time also watches the directory for the others:
//! on Linux it waits for the doorbell's inotify instance on the runtime's
//! reactor (`AsyncFd`, no thread), and every `wake_poll` it looks at
//! `PRAGMA data_version` (one connection for the process's tasks), which
//! catches the writers that ring nothing (python-diskcache's). When it
//! leaves, it wakes another task to take over.
//!
//! On PostgreSQL the store's `LISTEN` connection (run by diskq's runtime
//! thread) wakes one task per notification the same way; a waiting task
//! also looks again every `wake_poll`, the fallback for a lost connection.
//!
//! An item is only ever taken inside one poll of the future that returns
//! it, by a synchronous call with no await after it: a future dropped at
//! any await has taken nothing, so no item is lost by cancelling a pop.

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::task::Poll;
use std::time::{Duration, Instant};

use ::tokio::sync::futures::Notified;
use ::tokio::time::{sleep, sleep_until};

use crate::error::Result;
use crate::store::{LiteWatcher, Store, TaskWake};

/// How long one attempt at a take may wait for the write lock on the
/// runtime's thread; then the task pauses and tries again. It bounds how
/// long a take held by another process's long transaction blocks a worker.
pub(crate) const LOCK_SLICE: Duration = Duration::from_millis(10);

/// The pause of a task between two attempts when the write lock stayed
/// taken.
const LOCK_PAUSE: Duration = Duration::from_millis(1);

/// Before a read: counts one operation against the task's budget of
/// tokio's cooperative scheduling, and yields to the runtime when the budget
/// is spent. An operation runs inline and returns in its first poll; without
/// this a task that reads in a loop would never yield, and the other tasks
/// of its worker (timers included) would wait for it.
pub(crate) async fn coop() {
    ::tokio::task::consume_budget().await;
}

/// Before a write: yields to the runtime once. A write may wait for the
/// directory's write lock (another process's commits), so a budget of 128
/// writes in one poll could hold a worker for a second; a yield costs about
/// a microsecond, against tens for a commit. Always before the write, never
/// after it: a future dropped at this await has done nothing.
pub(crate) async fn turn() {
    ::tokio::task::yield_now().await;
}

/// Takes an item with `take` (one synchronous call, given how long it may
/// wait for the write lock), waiting between attempts for a wake, until
/// `until`. `next_wake` tells when to look again without a wake (a lease
/// that runs out), `None` for never.
///
/// `None` when nothing was taken in time; an [`Error::Timeout`](crate::Error)
/// when the write lock stayed taken for the whole wait.
pub(crate) async fn take_until<T>(
    store: &Store,
    until: Instant,
    mut take: impl FnMut(Instant) -> Result<Option<T>>,
    mut next_wake: impl FnMut() -> Result<Option<Instant>>,
) -> Result<Option<T>> {
    let wake = TaskWake::of(store);
    let notify = &wake.tasks().notify;
    let mut waiter = Waiter::new(wake);
    let mut baton = Baton { notify, owed: false };
    let mut looked = false;
    loop {
        turn().await;
        // Registered before the look, so that a wake after it is not missed
        // (and forwarded to another task if this one takes an item anyway).
        let mut notified = std::pin::pin!(notify.notified());
        notified.as_mut().enable();
        let slice = crate::deadline::from_now(LOCK_SLICE).min(until);
        match take(slice) {
            Ok(Some(item)) => {
                // Woken for an item, this task got one: more may have come
                // with the same wake, so the next task looks. A watching
                // task's leaving wakes one already (to take over).
                baton.owed &= waiter.watch.is_none();
                return Ok(Some(item));
            }
            // Nothing: the wake (if any) is spent.
            Ok(None) => (looked, baton.owed) = (true, false),
            Err(e) if e.is_timeout() => {
                if Instant::now() < until {
                    // The write lock stayed taken for the slice (or the
                    // cache's timeout is shorter): try again, unhurried, as
                    // the sync waits do.
                    sleep(LOCK_PAUSE).await;
                    continue;
                }
                return if looked { Ok(None) } else { Err(e) };
            }
            Err(e) => return Err(e),
        }
        if Instant::now() >= until {
            return Ok(None);
        }
        let wake = next_wake()?.map_or(until, |at| at.min(until));
        baton.owed = waiter.wait(notified, wake).await?;
    }
}

/// A woken task's debt: until it has looked at the queue, its wake may be
/// the only one for an item, so dropping it (cancelled, or failed) wakes
/// another task; and a look that found an item passes the wake on too.
struct Baton<'a> {
    notify: &'a ::tokio::sync::Notify,
    owed: bool,
}

impl Drop for Baton<'_> {
    fn drop(&mut self) {
        if self.owed {
            self.notify.notify_one();
        }
    }
}

/// Waits until something may have been pushed: a `take_until` waiter.
pub(crate) struct Waiter<'a> {
    wake: TaskWake<'a>,
    /// Set while this task watches the directory for the process's tasks.
    watch: Option<Watch<'a>>,
}

impl<'a> Waiter<'a> {
    /// A waiter; watches the doorbell (once per process and directory)
    /// before the first look, so that no ring after it is missed.
    pub(crate) fn new(wake: TaskWake<'a>) -> Waiter<'a> {
        // Rings that came before count as seen: the caller looks next.
        wake.listen();
        Waiter { wake, watch: None }
    }

    /// Returns when `notified` fires (or this task, watching for the
    /// others, saw a ring or a commit): true; or at `until`: false.
    pub(crate) async fn wait(&mut self, mut notified: Pin<&mut Notified<'_>>, until: Instant) -> Result<bool> {
        let tasks = self.wake.tasks();
        #[cfg(feature = "postgres")]
        if let TaskWake::Postgres(_) = self.wake {
            // Woken by the listening connection; a look every `wake_poll`
            // is the fallback (and starts a lost connection again).
            let look = crate::deadline::from_now(self.wake.poll()).min(until);
            let mut timer = std::pin::pin!(sleep_until(look.into()));
            let notified = poll_fn(|cx| {
                if notified.as_mut().poll(cx).is_ready() {
                    Poll::Ready(true)
                } else if timer.as_mut().poll(cx).is_ready() {
                    Poll::Ready(false)
                } else {
                    Poll::Pending
                }
            })
            .await;
            if !notified {
                self.wake.listen();
            }
            return Ok(notified || Instant::now() < until);
        }
        loop {
            if self.watch.is_none() && !tasks.watching.swap(true, Ordering::AcqRel) {
                self.watch = Watch::new(&self.wake)?;
                if self.watch.is_none() {
                    return Ok(false);
                }
                // The fallback poll counts from now: the caller looks again
                // first, so that a commit between its look and now is seen.
                return Ok(false);
            }
            let Some(watch) = self.watch.as_mut() else {
                let mut timer = std::pin::pin!(sleep_until(until.into()));
                return Ok(poll_fn(|cx| {
                    if notified.as_mut().poll(cx).is_ready() {
                        Poll::Ready(true)
                    } else if timer.as_mut().poll(cx).is_ready() {
                        Poll::Ready(false)
                    } else {
                        Poll::Pending
                    }
                })
                .await);
            };
            let look = crate::deadline::from_now(watch.watcher.next_step()).min(until);
            let woke = {
                let mut rang = std::pin::pin!(watch.rang());
                let mut timer = std::pin::pin!(sleep_until(look.into()));
                poll_fn(|cx| {
                    if notified.as_mut().poll(cx).is_ready() {
                        Poll::Ready(Woke::Notified)
                    } else if let Poll::Ready(rang) = rang.as_mut().poll(cx) {
                        Poll::Ready(Woke::Bell(rang))
                    } else if timer.as_mut().poll(cx).is_ready() {
                        Poll::Ready(Woke::Look)
                    } else {
                        Poll::Pending
                    }
                })
                .await
            };
            match woke {
                Woke::Notified => return Ok(true),
                Woke::Bell(false) => {}
                Woke::Bell(true) => {
                    // This task looks first (and wakes the next task if it
                    // finds an item); waiting threads look too.
                    watch.watcher.notifier().notify_threads();
                    return Ok(true);
                }
                Woke::Look => {
                    if watch.watcher.committed()? {
                        watch.watcher.notifier().notify_threads();
                        return Ok(true);
                    }
                    if Instant::now() >= until {
                        return Ok(false);
                    }
                }
            }
        }
    }
}

/// What ended a watching task's wait.
enum Woke {
    /// A wake of the directory's tasks.
    Notified,
    /// The doorbell's inotify instance was readable; true if it held a ring.
    Bell(bool),
    /// Time for a look at `PRAGMA data_version` (or the wait is over).
    Look,
}

/// The watch of a directory for the tasks of this process: a watcher (the
/// fallback poll's connection) and the doorbell on the reactor.
struct Watch<'a> {
    watcher: LiteWatcher<'a>,
    #[cfg(target_os = "linux")]
    bell: Option<::tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>>,
}

impl<'a> Watch<'a> {
    /// Called by the task that set `Tasks::watching`: on error (or for a
    /// backend without a directory to watch) it is unset.
    fn new(wake: &TaskWake<'a>) -> Result<Option<Watch<'a>>> {
        let watcher = match wake.dir_watcher() {
            Ok(Some(w)) => w,
            other => {
                wake.tasks().watching.store(false, Ordering::Release);
                return other.map(|_| None);
            }
        };
        Ok(Some(Watch {
            #[cfg(target_os = "linux")]
            bell: watcher.notifier().bell.watch_fd().and_then(|fd| {
                // `OwnedFd` keeps one descriptor for its life and the
                // `AsyncFd` owns it: the I/O-safety hole that deprecated
                // this constructor (tokio #8587) is not open here, and its
                // replacement is `unsafe`, which this crate forbids.
                #[allow(deprecated)]
                let fd = ::tokio::io::unix::AsyncFd::with_interest(fd, ::tokio::io::Interest::READABLE);
                fd.ok()
            }),
            watcher,
        }))
    }

    /// Waits for a ring of the doorbell; true after one. Never returns when
    /// the doorbell is not watched (the fallback poll goes on).
    async fn rang(&mut self) -> bool {
        #[cfg(target_os = "linux")]
        if let Some(fd) = self.bell.as_ref() {
            let Ok(mut ready) = fd.readable().await else {
                // The reactor refused the handle: poll from now on.
                self.bell = None;
                return false;
            };
            // The ring that a push began is not a wake: its commit's is.
            let rang = self.watcher.notifier().bell.drain().committed;
            // Read to the end: readiness is cleared unless a ring came since.
            ready.clear_ready();
            return rang;
        }
        std::future::pending().await
    }
}

impl Drop for Watch<'_> {
    fn drop(&mut self) {
        let tasks = &self.watcher.notifier().tasks;
        tasks.watching.store(false, Ordering::Release);
        // Another waiting task takes over the watch.
        tasks.notify.notify_one();
    }
}

/// When a waiter's last look began, on the cache's clock: the job events
/// after it time the next look (see `Cache::next_job_wake`). Atomic, as the
/// waiting future must be `Send`.
pub(crate) struct LookTime(std::sync::atomic::AtomicU64);

impl LookTime {
    pub(crate) fn new(now: f64) -> LookTime {
        LookTime(std::sync::atomic::AtomicU64::new(now.to_bits()))
    }

    pub(crate) fn set(&self, now: f64) {
        self.0.store(now.to_bits(), std::sync::atomic::Ordering::Relaxed);
    }

    pub(crate) fn get(&self) -> f64 {
        f64::from_bits(self.0.load(std::sync::atomic::Ordering::Relaxed))
    }
}
