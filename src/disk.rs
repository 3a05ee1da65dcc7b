//! Value files: naming, atomic writes, reads and removal after commit.
//!
//! A value too large for the database lives in a file named by 128 random
//! bits in hex, split as python-diskcache splits it: `ab/cd/<28 hex>.val`.
//! A file is written under a temporary name in its final folder, synced and
//! renamed before the row naming it commits; it is removed only after the
//! commit that dropped its row. A crash can therefore leave an orphan file
//! (which `check` removes) but never a row without its file.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// The value files of one cache directory.
#[derive(Debug, Clone)]
pub(crate) struct Disk {
    dir: PathBuf,
    sync: bool,
    timeout: Duration,
}

/// How many times a write retries when another process removes the (empty)
/// folder between our `create_dir_all` and our file creation.
const CREATE_ATTEMPTS: usize = 10;

impl Disk {
    pub(crate) fn new(dir: PathBuf, sync: bool, timeout: Duration) -> Disk {
        Disk { dir, sync, timeout }
    }

    /// A fresh relative file name, `ab/cd/<28 hex>.val`, always with `/`.
    pub(crate) fn new_name() -> Result<String> {
        let mut raw = [0u8; 16];
        getrandom::fill(&mut raw).map_err(|e| Error::io("<random source>", io::Error::other(e.to_string())))?;
        let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        Ok(format!("{}/{}/{}.val", &hex[..2], &hex[2..4], &hex[4..]))
    }

    /// The full path of a stored file name, refusing names that could leave
    /// the directory (absolute paths, `..`), whoever wrote the row.
    pub(crate) fn path(&self, filename: &str) -> Result<PathBuf> {
        let mut path = self.dir.clone();
        let mut parts = 0;
        for part in filename.split(['/', '\\']) {
            let component = Path::new(part).components().next();
            match component {
                Some(Component::Normal(c)) if Path::new(part).components().count() == 1 => path.push(c),
                _ => {
                    return Err(Error::Corrupt(format!(
                        "value file name {filename:?} does not name a file inside the cache directory"
                    )));
                }
            }
            parts += 1;
        }
        if parts == 0 {
            return Err(Error::Corrupt("empty value file name".into()));
        }
        Ok(path)
    }

    /// Refuses a value file path with a symbolic link below the cache
    /// directory (a folder or the file itself), or with anything but a
    /// folder or a regular file where those belong: diskq never reads,
    /// writes or removes through a link, which could lead out of the
    /// directory, nor opens a FIFO or a device, which could block or never
    /// end. Components that do not exist yet are fine (a write creates them).
    pub(crate) fn no_links(&self, path: &Path) -> Result<()> {
        let relative = path
            .strip_prefix(&self.dir)
            .expect("value file paths are built inside the cache directory");
        let parts = relative.components().count();
        let mut at = self.dir.clone();
        for (i, part) in relative.components().enumerate() {
            at.push(part);
            let last = i + 1 == parts;
            match fs::symlink_metadata(&at) {
                Ok(meta) if meta.file_type().is_symlink() => {
                    return Err(Error::Corrupt(format!(
                        "{} is a symbolic link; diskq does not follow links in its directory",
                        at.display()
                    )));
                }
                Ok(meta) if (last && !meta.is_file()) || (!last && !meta.is_dir()) => {
                    return Err(Error::Corrupt(format!(
                        "{} is not a {}",
                        at.display(),
                        if last { "regular file" } else { "folder" }
                    )));
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(Error::io(&at, e)),
            }
        }
        Ok(())
    }

    /// Writes `data` to a new value file; returns its name and size.
    pub(crate) fn write_bytes(&self, data: &[u8]) -> Result<(String, u64)> {
        self.write_with(|file| {
            file.write_all(data)?;
            Ok(data.len() as u64)
        })
    }

    /// Streams `reader` to a new value file without holding it in memory.
    pub(crate) fn write_reader(&self, reader: &mut dyn Read) -> Result<(String, u64)> {
        self.write_with(|file| io::copy(reader, file))
    }

    fn write_with(&self, fill: impl FnOnce(&mut File) -> io::Result<u64>) -> Result<(String, u64)> {
        let name = Self::new_name()?;
        let path = self.path(&name)?;
        let folder = path
            .parent()
            .expect("a value file path has two folder levels")
            .to_path_buf();
        let mut temp = None;
        for attempt in 1..=CREATE_ATTEMPTS {
            self.no_links(&path)?;
            if let Err(e) = fs::create_dir_all(&folder) {
                if attempt == CREATE_ATTEMPTS {
                    return Err(Error::io(&folder, e));
                }
                continue;
            }
            match tempfile::Builder::new().prefix(".").suffix(".tmp").tempfile_in(&folder) {
                Ok(t) => {
                    temp = Some(t);
                    break;
                }
                // Another process removed the empty folder in between: again.
                Err(e) if e.kind() == io::ErrorKind::NotFound && attempt < CREATE_ATTEMPTS => continue,
                Err(e) => return Err(Error::io(&folder, e)),
            }
        }
        let mut temp = temp.ok_or_else(|| Error::io(&folder, io::Error::other("could not create a value file")))?;
        let written = fill(temp.as_file_mut()).and_then(|size| {
            if self.sync {
                temp.as_file().sync_data()?;
            }
            Ok(size)
        });
        let size = match written {
            Ok(size) => size,
            Err(e) => {
                let err = Error::io(temp.path(), e);
                // Dropping the temporary file removes it; its folders go too once empty.
                drop(temp);
                self.remove_empty_folders(&path);
                return Err(err);
            }
        };
        if let Err(e) = temp.persist_noclobber(&path) {
            drop(e.file);
            self.remove_empty_folders(&path);
            return Err(Error::io(&path, e.error));
        }
        Ok((name, size))
    }

    /// A shared lock on the directory's lock file, held from before a value
    /// file is written until its row commits: `check(fix)` takes the lock
    /// exclusively before it removes unknown files, so it never removes a
    /// file whose row is about to commit.
    pub(crate) fn writer_guard(&self) -> Result<File> {
        lock_file(&self.dir.join(crate::store::LOCK_NAME), self.timeout, true)
    }

    /// Opens a value file; `None` when it is gone (removed by a concurrent
    /// delete, or lost: `check` reports it).
    pub(crate) fn open(&self, filename: &str) -> Result<Option<(File, PathBuf)>> {
        let path = self.path(filename)?;
        self.no_links(&path)?;
        match File::open(&path) {
            Ok(f) => Ok(Some((f, path))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(path, e)),
        }
    }

    /// Reads a whole value file; `None` when it is gone. With the row's
    /// `size`, a file of another length (truncated or rewritten behind
    /// diskq's back) is [`Error::Corrupt`] rather than a short value.
    pub(crate) fn read(&self, filename: &str, size: Option<i64>) -> Result<Option<Vec<u8>>> {
        let Some((mut file, path)) = self.open(filename)? else {
            return Ok(None);
        };
        let mut data = Vec::with_capacity(file.metadata().map(|m| m.len() as usize).unwrap_or(0));
        file.read_to_end(&mut data).map_err(|e| Error::io(&path, e))?;
        check_size(&path, data.len() as u64, size)?;
        Ok(Some(data))
    }

    /// Removes a value file and its folders once empty. Errors are ignored:
    /// another process may be removing the same file, and a file left behind
    /// is an orphan that `check` finds.
    pub(crate) fn remove(&self, filename: &str) {
        let Ok(path) = self.path(filename) else { return };
        if self.no_links(&path).is_err() {
            return;
        }
        let _ = fs::remove_file(&path);
        self.remove_empty_folders(&path);
    }

    /// Removes the two folders of a value file path, deepest first, while empty.
    fn remove_empty_folders(&self, path: &Path) {
        let mut folder = path.parent();
        for _ in 0..2 {
            let Some(f) = folder else { break };
            if f == self.dir || fs::remove_dir(f).is_err() {
                break;
            }
            folder = f.parent();
        }
    }
}

/// Fails when a value file's length differs from its row's `size` (when known).
pub(crate) fn check_size(path: &Path, len: u64, size: Option<i64>) -> Result<()> {
    match size {
        Some(size) if u64::try_from(size).ok() != Some(len) => Err(Error::Corrupt(format!(
            "value file {} has {len} bytes where its row says {size}: it was changed outside diskq \
             (check reports it; check(true) accepts the file as it is)",
            path.display()
        ))),
        _ => Ok(()),
    }
}

/// Refuses `path` when it is a symbolic link or anything but a regular file
/// (a FIFO, a socket, a device, a folder); a missing path is fine. diskq
/// never opens a name in its directory through a link, which could lead
/// anywhere on the system, nor a special file, which could block for ever.
pub(crate) fn regular_or_absent(path: &Path) -> Result<()> {
    match fs::symlink_metadata(path) {
        Ok(meta) => regular(path, &meta),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(path, e)),
    }
}

/// Refuses `meta` (of `path`, not followed) unless it is a regular file.
fn regular(path: &Path, meta: &fs::Metadata) -> Result<()> {
    let kind = meta.file_type();
    if kind.is_symlink() {
        return Err(Error::Corrupt(format!(
            "{} is a symbolic link; diskq does not follow links in its directory",
            path.display()
        )));
    }
    if !kind.is_file() {
        return Err(Error::Corrupt(format!(
            "{} is not a regular file (a folder, FIFO, socket or device); diskq opens only \
             regular files in its directory",
            path.display()
        )));
    }
    Ok(())
}

/// Locks `path` (created if needed), shared or exclusive, waiting up to
/// `timeout`; the lock lasts as long as the returned file. A link or a
/// special file at `path` is refused ([`regular_or_absent`]); the open
/// itself does not follow a link and does not block (on Unix), so one put
/// there after the check is refused too.
pub(crate) fn lock_file(path: &Path, timeout: Duration, shared: bool) -> Result<File> {
    regular_or_absent(path)?;
    let mut options = fs::OpenOptions::new();
    options.create(true).truncate(false).write(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
    }
    let file = match options.open(path) {
        Ok(file) => file,
        Err(e) => {
            // A link or FIFO swapped in after the check: say what it is.
            regular_or_absent(path)?;
            return Err(Error::io(path, e));
        }
    };
    let meta = file.metadata().map_err(|e| Error::io(path, e))?;
    regular(path, &meta)?;
    let start = Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        let attempt = if shared {
            file.try_lock_shared()
        } else {
            file.try_lock()
        };
        match attempt {
            Ok(()) => return Ok(file),
            Err(fs::TryLockError::WouldBlock) => {
                if start.elapsed() >= timeout {
                    return Err(Error::Timeout);
                }
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(20));
            }
            Err(fs::TryLockError::Error(e)) => return Err(Error::io(path, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_have_python_diskcache_shape() {
        let name = Disk::new_name().unwrap();
        let parts: Vec<&str> = name.split('/').collect();
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[0].len(), 2);
        assert_eq!(parts[1].len(), 2);
        assert_eq!(parts[2].len(), 28 + 4);
        assert!(parts[2].ends_with(".val"));
        assert_ne!(name, Disk::new_name().unwrap());
    }

    #[test]
    fn paths_never_leave_the_directory() {
        let d = Disk::new(PathBuf::from("/c"), false, Duration::from_secs(1));
        assert_eq!(d.path("ab/cd/x.val").unwrap(), PathBuf::from("/c/ab/cd/x.val"));
        assert_eq!(d.path("ab\\cd\\x.val").unwrap(), PathBuf::from("/c/ab/cd/x.val"));
        for bad in ["../x", "/etc/passwd", "ab/../../x", "", "ab//x", "./x"] {
            assert!(d.path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn write_read_remove() {
        let dir = tempfile::tempdir().unwrap();
        let d = Disk::new(dir.path().to_path_buf(), true, Duration::from_secs(1));
        let (name, size) = d.write_bytes(b"hello").unwrap();
        assert_eq!(size, 5);
        assert_eq!(d.read(&name, Some(5)).unwrap().unwrap(), b"hello");
        assert!(matches!(d.read(&name, Some(4)), Err(Error::Corrupt(_))));
        let (name2, size2) = d.write_reader(&mut &b"stream"[..]).unwrap();
        assert_eq!(size2, 6);
        d.remove(&name);
        d.remove(&name2);
        assert!(d.read(&name, None).unwrap().is_none());
        // Both folder levels are gone once empty.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
