//! The shard count of a fanout root, recorded so that reopening with
//! another count is refused instead of looking keys up in the wrong shard.
//!
//! The count is kept in a small text file in the root, `diskq-fanout`,
//! written once (complete and synced, then linked into place without
//! replacing one that exists). python-diskcache never looks at it: its
//! `FanoutCache` root holds only the shard folders (`000`, `001`, ...) and
//! the `cache`, `deque` and `index` folders of named collections, and its
//! `check` looks only inside the shards. A root without the record (made by
//! python-diskcache, or by an older diskq) is taken as its shard folders
//! say: all of `000` up to the highest one must be the count asked for;
//! the record is then written.

use std::fs;
use std::io::{self, Read, Write};
use std::path::Path;

use crate::error::{Error, Result};

/// The record's file name in the fanout root.
pub(crate) const RECORD_NAME: &str = "diskq-fanout";
/// The record's first line, naming what wrote it.
const HEADER: &str = "diskq FanoutCache";
/// The prefix of the record's line holding the count.
const SHARDS_LINE: &str = "shards = ";
/// More than any record diskq writes: a larger file is not one.
const MAX_RECORD: u64 = 4096;

/// Makes sure the fanout in `root` has `wanted` shards: refuses with
/// [`Error::InvalidSetting`] (named `shards`) a root recorded, or found,
/// with another count, and records the count in a root that has none.
pub(crate) fn settle(root: &Path, wanted: usize) -> Result<()> {
    fs::create_dir_all(root).map_err(|e| Error::io(root, e))?;
    let record = root.join(RECORD_NAME);
    if let Some(recorded) = read_record(&record)? {
        return agree(root, wanted, recorded, &format!("recorded in {}", record.display()));
    }
    if let Some(found) = shard_folders(root)? {
        if found != wanted {
            // A diskq creating the root writes the record before its first
            // shard folder: the folders seen may be its first ones.
            if let Some(recorded) = read_record(&record)? {
                return agree(root, wanted, recorded, &format!("recorded in {}", record.display()));
            }
        }
        agree(root, wanted, found, "counted from its shard folders")?;
    }
    match write_record(root, &record, wanted) {
        Ok(()) => Ok(()),
        // Another process recorded a count first: it must agree.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => match read_record(&record)? {
            Some(recorded) => agree(root, wanted, recorded, &format!("recorded in {}", record.display())),
            None => Ok(()),
        },
        // A root diskq may not write to still opens (its shards may be
        // readable); the folders were counted above.
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem
            ) =>
        {
            Ok(())
        }
        Err(e) => Err(Error::io(&record, e)),
    }
}

fn agree(root: &Path, wanted: usize, found: usize, how: &str) -> Result<()> {
    if wanted == found {
        return Ok(());
    }
    Err(Error::setting(
        "shards",
        format!(
            "{} is a FanoutCache of {found} shards ({how}); opening it with {wanted} would look \
             keys up in the wrong shard: open it with shards({found})",
            root.display()
        ),
    ))
}

/// The recorded count, or `None` without a record.
fn read_record(record: &Path) -> Result<Option<usize>> {
    crate::disk::regular_or_absent(record)?;
    let file = match fs::File::open(record) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(record, e)),
    };
    let mut text = String::new();
    file.take(MAX_RECORD)
        .read_to_string(&mut text)
        .map_err(|e| Error::io(record, e))?;
    let count = text
        .lines()
        .find_map(|line| line.strip_prefix(SHARDS_LINE))
        .and_then(|n| n.trim().parse::<usize>().ok())
        .filter(|&n| n > 0);
    match count {
        Some(n) if text.starts_with(HEADER) => Ok(Some(n)),
        _ => Err(Error::Corrupt(format!(
            "{} is not a diskq fanout record (expected \"{HEADER}\" and a line \"{SHARDS_LINE}N\")",
            record.display()
        ))),
    }
}

/// The shard count the folders of `root` show (one more than the highest
/// shard folder), or `None` when there is none yet.
fn shard_folders(root: &Path) -> Result<Option<usize>> {
    let mut highest: Option<usize> = None;
    for entry in fs::read_dir(root).map_err(|e| Error::io(root, e))? {
        let entry = entry.map_err(|e| Error::io(root, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        // python-diskcache names shards '%03d' % i: three digits or more.
        if name.len() < 3 || !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(i) = name.parse::<usize>() else { continue };
        if format!("{i:03}") != name {
            continue;
        }
        let kind = entry.file_type().map_err(|e| Error::io(entry.path(), e))?;
        if kind.is_symlink() {
            return Err(Error::Corrupt(format!(
                "{} is a symbolic link; diskq does not follow links in its directory",
                entry.path().display()
            )));
        }
        highest = Some(highest.map_or(i, |h| h.max(i)));
    }
    Ok(highest.map(|h| h.saturating_add(1)))
}

/// Writes the record complete and synced under a temporary name, then links
/// it into place; fails with `AlreadyExists` when a record is already there.
fn write_record(root: &Path, record: &Path, shards: usize) -> io::Result<()> {
    let mut temp = tempfile::Builder::new().prefix(".diskq-fanout-").tempfile_in(root)?;
    write!(temp, "{HEADER}\n{SHARDS_LINE}{shards}\n")?;
    temp.as_file().sync_all()?;
    temp.persist_noclobber(record).map_err(|e| e.error)?;
    // The new name is in the folder once the folder is synced (not on Windows,
    // where a folder cannot be opened as a file).
    #[cfg(unix)]
    fs::File::open(root)?.sync_all()?;
    Ok(())
}
