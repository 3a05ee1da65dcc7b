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
use crate::store::{Store, Watcher};

/// How long one attempt at a take may wait for the write lock on the
/// runtime's thread; then the task pauses and tries again. It bounds how
/// long a take held by another process's long transaction blocks a worker.
pub(crate) const LOCK_SLICE: Duration = Duration::from_millis(10);

/// The pause of a task between two attempts when the write lock stayed
/// taken (the sync waits pause as long).
const LOCK_PAUSE: Duration = Duration::from_millis(1);

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
    let notify = &store.notifier.tasks.notify;
    let mut waiter = Waiter::new(store);
    let mut looked = false;
    loop {
        // Registered before the look, so that a wake after it is not missed.
        let mut notified = std::pin::pin!(notify.notified());
        notified.as_mut().enable();
        let slice = crate::deadline::from_now(LOCK_SLICE).min(until);
        match take(slice) {
            Ok(Some(item)) => {
                // More may have come with the same wake.
                notify.notify_one();
                return Ok(Some(item));
            }
            Ok(None) => looked = true,
            Err(e) if e.is_timeout() => {
                if Instant::now() < until {
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
        waiter.wait(notified, wake).await?;
    }
}

/// Waits until something may have been pushed: a `take_until` waiter.
pub(crate) struct Waiter<'a> {
    store: &'a Store,
    /// Set while this task watches the directory for the process's tasks.
    watch: Option<Watch<'a>>,
}

impl<'a> Waiter<'a> {
    /// A waiter; watches the doorbell (once per process and directory)
    /// before the first look, so that no ring after it is missed.
    pub(crate) fn new(store: &'a Store) -> Waiter<'a> {
        if !store.is_read_only() {
            // Rings that came before count as seen: the caller looks next.
            store.notifier.listen();
        }
        Waiter { store, watch: None }
    }

    /// Returns when `notified` fires (or this task, watching for the
    /// others, saw a ring or a commit), or at `until`.
    pub(crate) async fn wait(&mut self, mut notified: Pin<&mut Notified<'_>>, until: Instant) -> Result<()> {
        let tasks = &self.store.notifier.tasks;
        loop {
            if self.watch.is_none() && !tasks.watching.swap(true, Ordering::AcqRel) {
                self.watch = Some(Watch::new(self.store)?);
            }
            let Some(watch) = self.watch.as_mut() else {
                let mut timer = std::pin::pin!(sleep_until(until.into()));
                poll_fn(|cx| {
                    if notified.as_mut().poll(cx).is_ready() || timer.as_mut().poll(cx).is_ready() {
                        Poll::Ready(())
                    } else {
                        Poll::Pending
                    }
                })
                .await;
                return Ok(());
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
                Woke::Notified => return Ok(()),
                Woke::Bell(false) => {}
                Woke::Bell(true) => {
                    // This task looks next itself; one other task is woken,
                    // in case the ring was for more than one item.
                    self.store.notifier.notify();
                    return Ok(());
                }
                Woke::Look => {
                    if watch.watcher.committed()? {
                        self.store.notifier.notify();
                        return Ok(());
                    }
                    if Instant::now() >= until {
                        return Ok(());
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
    watcher: Watcher<'a>,
    #[cfg(target_os = "linux")]
    bell: Option<::tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>>,
}

impl<'a> Watch<'a> {
    /// Called by the task that set `Tasks::watching`: on error it is unset.
    fn new(store: &'a Store) -> Result<Watch<'a>> {
        let watcher = match store.watcher() {
            Ok(w) => w,
            Err(e) => {
                store.notifier.tasks.watching.store(false, Ordering::Release);
                return Err(e);
            }
        };
        Ok(Watch {
            #[cfg(target_os = "linux")]
            bell: store.notifier.bell.watch_fd().and_then(|fd| {
                // `OwnedFd` keeps one descriptor for its life and the
                // `AsyncFd` owns it: the I/O-safety hole that deprecated
                // this constructor (tokio #8587) is not open here, and its
                // replacement is `unsafe`, which this crate forbids.
                #[allow(deprecated)]
                let fd = ::tokio::io::unix::AsyncFd::with_interest(fd, ::tokio::io::Interest::READABLE);
                fd.ok()
            }),
            watcher,
        })
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
            let rang = self.watcher.store().notifier.bell.drain();
            // Read to the end: readiness is cleared unless a ring came since.
            ready.clear_ready();
            return rang;
        }
        std::future::pending().await
    }
}

impl Drop for Watch<'_> {
    fn drop(&mut self) {
        let tasks = &self.watcher.store().notifier.tasks;
        tasks.watching.store(false, Ordering::Release);
        // Another waiting task takes over the watch.
        tasks.notify.notify_one();
    }
}
