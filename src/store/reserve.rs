//! A small reserve file, `cache.db.reserve`, kept in the directory so that
//! diskq can free space on a full disk.
//!
//! In WAL mode even a delete must append to the write-ahead log, and
//! checkpointing the log into the database may need the database to grow:
//! on a file system with no byte left, neither works, and a cache could not
//! remove anything. The reserve holds [`RESERVE_BYTES`] of real (not
//! sparse) space; a freeing operation that fails with "database or disk is
//! full" deletes it and tries again. It is made again once the log could be
//! checkpointed and truncated. Its name contains `cache.db`, so neither
//! diskq's `check` nor python-diskcache's takes it for an unknown file.

use std::fs;
use std::io::{self, Write};
use std::path::Path;

/// The reserve's file name in the cache directory.
pub(crate) const RESERVE_NAME: &str = "cache.db.reserve";
/// The reserve's size: the log frames of a freeing transaction (a delete,
/// a batch of `clear`), with room to spare.
pub(crate) const RESERVE_BYTES: u64 = 256 * 1024;

/// Makes the reserve in `dir` when it is missing or short; true when it is
/// whole afterwards. A reserve that cannot be written whole is removed (the
/// space goes back to the user). A link or a special file at its name is
/// left alone (and is no reserve).
pub(crate) fn make(dir: &Path) -> bool {
    let path = dir.join(RESERVE_NAME);
    match fs::symlink_metadata(&path) {
        Ok(meta) if meta.is_file() && meta.len() == RESERVE_BYTES => return true,
        Ok(meta) if !meta.is_file() => return false,
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(_) => return false,
    }
    write(dir, &path).is_ok()
}

/// Writes the reserve under a temporary name and renames it into place, so
/// that processes opening one directory at once never leave a short or
/// sparse reserve. A temporary file that cannot be written whole is removed
/// (its space goes back to the user).
fn write(dir: &Path, path: &Path) -> io::Result<()> {
    let mut temp = tempfile::Builder::new()
        .prefix(&format!("{RESERVE_NAME}."))
        .tempfile_in(dir)?;
    // Zeros written out, so the file system really allocates them.
    let chunk = [0u8; 64 * 1024];
    let mut left = RESERVE_BYTES;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        temp.write_all(&chunk[..n])?;
        left -= n as u64;
    }
    temp.flush()?;
    temp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Deletes the reserve, giving its space to the operation about to retry;
/// true when there was one.
pub(crate) fn release(dir: &Path) -> bool {
    let path = dir.join(RESERVE_NAME);
    match fs::symlink_metadata(&path) {
        Ok(meta) if meta.is_file() => fs::remove_file(&path).is_ok(),
        _ => false,
    }
}
