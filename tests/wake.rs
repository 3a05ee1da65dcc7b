//! Cross-process wakeups: a consumer blocked in `pop_front_timeout` in one
//! process is woken by pushes made in others, through the doorbell
//! (`cache.db.bell`, watched with inotify on Linux) and, where that cannot
//! reach it, through its fallback poll.
//!
//! The doorbell tests give the waiter a fallback poll of an hour: a round
//! that the doorbell failed to wake would end in the waiter's 120 s timeout
//! (and the test would fail), so a pass shows the doorbell did it. Nothing
//! here asserts a time.
//!
//! Child processes are this test binary run again with `DISKQ_ROLE` set.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/pyenv.rs"]
mod pyenv;

use std::io::{BufRead, BufReader, Lines, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use diskq::{Cache, Deque};

const HOUR: Duration = Duration::from_secs(3600);
/// How long a waiter waits for each item before it reports `NONE`.
const WAIT: Duration = Duration::from_secs(120);

fn open(dir: &Path, wake_poll: Duration) -> Deque<i64> {
    Deque::from_cache(Cache::builder().wake_poll(wake_poll).open(dir).unwrap())
}

/// A waiter process: pops `count` items, each with `pop_front_timeout`,
/// printing `GOT <item>` (or `NONE`) after each.
struct Waiter {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
}

/// The test binary `exe` run again as the child of `role` on `dir`.
fn role_command(exe: &Path, role: &str, dir: &Path) -> Command {
    let mut cmd = Command::new(exe);
    cmd.args(["--exact", "child", "--nocapture", "--test-threads=1", "--quiet"])
        .env("DISKQ_ROLE", role)
        .env("DISKQ_DIR", dir);
    cmd
}

/// The command of a waiter process (see [`Waiter`]) run by `exe`.
fn waiter_command(exe: &Path, dir: &Path, count: usize, wake_poll: Duration) -> Command {
    let mut cmd = role_command(exe, "waiter", dir);
    cmd.env("DISKQ_COUNT", count.to_string())
        .env("DISKQ_WAKE_POLL_MS", wake_poll.as_millis().to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    cmd
}

fn spawn_waiter(dir: &Path, count: usize, wake_poll: Duration, doorbell: bool) -> Waiter {
    let mut cmd = waiter_command(&std::env::current_exe().unwrap(), dir, count, wake_poll);
    if !doorbell {
        cmd.env("DISKQ_DOORBELL", "off");
    }
    Waiter::spawn(cmd)
}

impl Waiter {
    fn spawn(mut cmd: Command) -> Waiter {
        let mut child = cmd.spawn().unwrap();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        Waiter { child, lines }
    }

    /// The next item the waiter reports.
    fn next(&mut self) -> Option<i64> {
        for line in self.lines.by_ref() {
            let line = line.unwrap();
            if let Some(v) = line.strip_prefix("GOT ") {
                return Some(v.parse().unwrap());
            }
            if line == "NONE" {
                return None;
            }
        }
        panic!("the waiter exited early");
    }

    fn finish(mut self) {
        assert!(self.child.wait().unwrap().success(), "the waiter failed");
    }

    /// Waits until the waiter watches the doorbell (it holds an inotify
    /// instance), i.e. it is waiting, or about to look at the queue, which
    /// finds any item pushed after.
    #[cfg(target_os = "linux")]
    fn wait_listening(&self) {
        let fds = PathBuf::from(format!("/proc/{}/fd", self.child.id()));
        let deadline = Instant::now() + WAIT;
        loop {
            let listening = std::fs::read_dir(&fds)
                .unwrap()
                .any(|fd| std::fs::read_link(fd.unwrap().path()).is_ok_and(|l| l.as_os_str() == "anon_inode:inotify"));
            if listening {
                return;
            }
            assert!(Instant::now() < deadline, "the waiter never watched the doorbell");
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

#[test]
fn child() {
    let Ok(role) = std::env::var("DISKQ_ROLE") else { return };
    let dir = PathBuf::from(std::env::var("DISKQ_DIR").unwrap());
    match role.as_str() {
        "waiter" => {
            let count: usize = std::env::var("DISKQ_COUNT").unwrap().parse().unwrap();
            let poll: u64 = std::env::var("DISKQ_WAKE_POLL_MS").unwrap().parse().unwrap();
            let d = open(&dir, Duration::from_millis(poll));
            let mut out = std::io::stdout();
            for _ in 0..count {
                match d.pop_front_timeout(WAIT).unwrap() {
                    Some(v) => writeln!(out, "GOT {v}").unwrap(),
                    None => writeln!(out, "NONE").unwrap(),
                }
                out.flush().unwrap();
            }
        }
        "stepper" => {
            // Pushes 0, 1, ... one for each line read from stdin.
            let d = open(&dir, HOUR);
            for (n, line) in std::io::stdin().lines().enumerate() {
                line.unwrap();
                d.push_back(&(n as i64)).unwrap();
            }
        }
        "pusher" => {
            // Pushes until killed.
            let d = open(&dir, HOUR);
            for n in 1_000_000.. {
                d.push_back(&n).unwrap();
            }
        }
        other => panic!("unknown role {other}"),
    }
}

/// Pushes `0..rounds`, one at a time, each once the waiter reported the last.
fn push_rounds(d: &Deque<i64>, waiter: &mut Waiter, rounds: i64, between: impl Fn(i64)) {
    for n in 0..rounds {
        between(n);
        d.push_back(&n).unwrap();
        assert_eq!(waiter.next(), Some(n), "round {n}: the push did not reach the waiter");
    }
}

#[cfg(target_os = "linux")]
#[test]
fn pushes_by_another_process_wake_a_waiter_through_the_doorbell() {
    let dir = tempfile::tempdir().unwrap();
    let d = open(dir.path(), HOUR);
    let mut waiter = spawn_waiter(dir.path(), 30, HOUR, true);
    waiter.wait_listening();
    push_rounds(&d, &mut waiter, 20, |_| {});
    // A batch push and a push to the front ring too.
    d.extend(&[20, 21, 22, 23, 24]).unwrap();
    for n in 20..25 {
        assert_eq!(waiter.next(), Some(n));
    }
    for n in 25..30 {
        d.push_front(&n).unwrap();
        assert_eq!(waiter.next(), Some(n));
    }
    waiter.finish();
    let bell = dir.path().join("cache.db.bell");
    assert!(bell.is_file(), "the doorbell lives in the directory");
    assert!(
        Cache::open(dir.path()).unwrap().check().unwrap().is_empty(),
        "check knows the doorbell"
    );
}

#[cfg(target_os = "linux")]
#[test]
fn a_deleted_or_replaced_doorbell_still_wakes_the_waiter() {
    let dir = tempfile::tempdir().unwrap();
    let bell = dir.path().join("cache.db.bell");
    let d = open(dir.path(), HOUR);
    let mut waiter = spawn_waiter(dir.path(), 16, HOUR, true);
    waiter.wait_listening();
    push_rounds(&d, &mut waiter, 16, |n| match n % 4 {
        1 => std::fs::remove_file(&bell).unwrap(),
        2 => {
            let new = dir.path().join("bell.new");
            std::fs::write(&new, b"replaced").unwrap();
            std::fs::rename(&new, &bell).unwrap();
        }
        // Emptied: a read of nothing reports nothing, so the ring puts
        // the byte back and reads it.
        3 => std::fs::File::create(&bell).map(drop).unwrap(),
        _ => {}
    });
    waiter.finish();
}

#[test]
fn without_the_doorbell_the_fallback_poll_wakes_the_waiter() {
    let dir = tempfile::tempdir().unwrap();
    let d = open(dir.path(), HOUR);
    let mut waiter = spawn_waiter(dir.path(), 10, Duration::from_millis(50), false);
    push_rounds(&d, &mut waiter, 10, |_| {});
    waiter.finish();
}

#[cfg(unix)]
#[test]
fn a_doorbell_that_is_a_link_or_a_fifo_is_never_written_through_or_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let target = outside.path().join("target");
    std::fs::write(&target, b"untouched").unwrap();
    let empty = outside.path().join("empty");
    std::fs::write(&empty, b"").unwrap();
    let bell = dir.path().join("cache.db.bell");
    std::os::unix::fs::symlink(&target, &bell).unwrap();
    let d = open(dir.path(), HOUR);
    // The waiter cannot watch a link: it falls back to polling.
    let mut waiter = spawn_waiter(dir.path(), 12, Duration::from_millis(50), true);
    push_rounds(&d, &mut waiter, 3, |_| {});
    assert_eq!(std::fs::read(&target).unwrap(), b"untouched");
    std::fs::remove_file(&bell).unwrap();
    assert!(Command::new("mkfifo").arg(&bell).status().unwrap().success());
    for n in 3..6 {
        d.push_back(&n).unwrap();
        assert_eq!(waiter.next(), Some(n));
    }
    // A hard link to a file outside (a push writes the doorbell's byte as
    // it begins, and a ring fills an empty doorbell): refused like the
    // others, so neither file is written. A pusher with no doorbell open
    // looks at the path again at each push.
    for (outside_file, first) in [(&target, 6), (&empty, 9)] {
        std::fs::remove_file(&bell).unwrap();
        std::fs::hard_link(outside_file, &bell).unwrap();
        for n in first..first + 3 {
            d.push_back(&n).unwrap();
            assert_eq!(waiter.next(), Some(n));
        }
    }
    assert_eq!(std::fs::read(&target).unwrap(), b"untouched");
    assert_eq!(std::fs::read(&empty).unwrap(), b"");
    waiter.finish();
}

#[test]
fn a_push_by_python_diskcache_wakes_a_diskq_waiter_by_the_fallback_poll() {
    let Some(python) = pyenv::python("a_push_by_python_diskcache_wakes_a_diskq_waiter") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    open(dir.path(), HOUR).push_back(&-1).unwrap();
    let mut waiter = spawn_waiter(dir.path(), 4, Duration::from_millis(50), true);
    assert_eq!(waiter.next(), Some(-1));
    for n in 0..3 {
        let out = Command::new(&python)
            .args([
                "-c",
                "import sys, diskcache; diskcache.Deque(directory=sys.argv[1]).append(int(sys.argv[2]))",
            ])
            .arg(dir.path())
            .arg(n.to_string())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(waiter.next(), Some(n), "python's push {n} did not reach the waiter");
    }
    waiter.finish();
}

#[cfg(target_os = "linux")]
#[test]
fn a_waker_killed_while_pushing_leaves_waiters_working() {
    let dir = tempfile::tempdir().unwrap();
    let d = open(dir.path(), HOUR);
    let mut pusher = role_command(&std::env::current_exe().unwrap(), "pusher", dir.path())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    // Kill it once it has pushed (and rung) a few hundred times.
    let deadline = Instant::now() + WAIT;
    while d.len().unwrap() < 300 {
        assert!(Instant::now() < deadline, "the pusher did not push");
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(
        Command::new("kill")
            .args(["-KILL", &pusher.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    pusher.wait().unwrap();
    d.clear().unwrap();
    let mut waiter = spawn_waiter(dir.path(), 5, HOUR, true);
    waiter.wait_listening();
    push_rounds(&d, &mut waiter, 5, |_| {});
    waiter.finish();
}

/// A push rings as it begins, before it waits for the write lock, so that
/// one waiting process is awake when it commits. A push that never commits
/// after that first ring (here: one that gave up waiting for the lock that
/// a transaction holds, long past the woken waiter's bounded stay awake)
/// rings no second time: the waiter sleeps again, and the next push that
/// commits still wakes it.
#[cfg(target_os = "linux")]
#[test]
fn a_push_that_gives_up_after_its_first_ring_leaves_the_waiter_to_the_next() {
    let dir = tempfile::tempdir().unwrap();
    let d = open(dir.path(), HOUR);
    let holder = open(dir.path(), HOUR);
    let impatient: Deque<i64> = Deque::from_cache(
        Cache::builder()
            .wake_poll(HOUR)
            .timeout(Duration::from_millis(20))
            .open(dir.path())
            .unwrap(),
    );
    let mut waiter = spawn_waiter(dir.path(), 3, HOUR, true);
    waiter.wait_listening();
    push_rounds(&d, &mut waiter, 3, |_| {
        let (inside, held) = std::sync::mpsc::channel();
        let (release, done) = std::sync::mpsc::channel::<()>();
        std::thread::scope(|s| {
            let holder = &holder;
            s.spawn(move || {
                holder
                    .transact(|_| {
                        inside.send(()).unwrap();
                        done.recv().unwrap();
                        Ok::<_, diskq::Error>(())
                    })
                    .unwrap();
            });
            held.recv().unwrap();
            for _ in 0..3 {
                let err = impatient.push_back(&-1).unwrap_err();
                assert!(err.is_timeout(), "{err}");
            }
            release.send(()).unwrap();
        });
    });
    waiter.finish();
    assert_eq!(d.len().unwrap(), 0, "no push that gave up left an item");
}

/// A cache shared by two users (its files writable by both) whose doorbell
/// only its maker may write: the other user's pushes still ring it, and the
/// other user's waiters still watch it (each opens it for reading). Needs
/// root, to run the other user's processes as `nobody`.
#[cfg(target_os = "linux")]
#[test]
fn a_doorbell_another_user_cannot_write_still_rings_and_is_watched() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    use std::os::unix::process::CommandExt;
    // `/proc/self` belongs to this process's effective user.
    if std::fs::metadata("/proc/self").unwrap().uid() != 0 {
        eprintln!("skipped: running another user's processes needs root");
        return;
    }
    // Both users reach /tmp, whatever TMPDIR says.
    let dir = tempfile::tempdir_in("/tmp").unwrap();
    let d = open(dir.path(), HOUR);
    d.push_back(&-1).unwrap();
    assert_eq!(d.pop_front().unwrap(), Some(-1));
    let bell = dir.path().join("cache.db.bell");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        let mode = if path == bell { 0o644 } else { 0o666 };
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    // The other user runs a copy of this test binary: the build directory
    // may be where it cannot go (under /root, say).
    let bin = tempfile::tempdir_in("/tmp").unwrap();
    std::fs::set_permissions(bin.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let exe = bin.path().join("wake-test");
    std::fs::copy(std::env::current_exe().unwrap(), &exe).unwrap();
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
    let as_nobody = |cmd: &mut Command| {
        cmd.uid(65534).gid(65534).current_dir("/");
    };

    // A waiter of the other user, woken by this user's pushes.
    let mut waiter = {
        let mut cmd = waiter_command(&exe, dir.path(), 5, HOUR);
        as_nobody(&mut cmd);
        Waiter::spawn(cmd)
    };
    waiter.wait_listening();
    push_rounds(&d, &mut waiter, 5, |_| {});
    waiter.finish();

    // The other user's pushes wake this user's waiter.
    let mut waiter = spawn_waiter(dir.path(), 5, HOUR, true);
    waiter.wait_listening();
    let mut cmd = role_command(&exe, "stepper", dir.path());
    cmd.stdin(Stdio::piped()).stdout(Stdio::null());
    as_nobody(&mut cmd);
    let mut stepper = cmd.spawn().unwrap();
    let mut steps = stepper.stdin.take().unwrap();
    for n in 0..5 {
        writeln!(steps, "push").unwrap();
        steps.flush().unwrap();
        assert_eq!(
            waiter.next(),
            Some(n),
            "push {n} by the other user did not reach the waiter"
        );
    }
    drop(steps);
    assert!(stepper.wait().unwrap().success());
    waiter.finish();
    let mode = std::fs::metadata(&bell).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o644, "the doorbell is as it was");
}
