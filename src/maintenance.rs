//! Bulk removal, sizes, statistics and `check` on `Cache`.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use crate::cache::Cache;
use crate::codec::Scalar;
use crate::error::{Error, Result};
use crate::options::{Stats, Warning, WarningKind};
use crate::settings::{CULLED_KEY, EvictionPolicy};
use crate::store::{Batch, DB_NAME};

/// SQLite's primary result code for a damaged database file.
const SQLITE_CORRUPT: i32 = 11;

/// Rows removed per transaction by `expire`, `evict` and `clear`, so that
/// other writers get the lock in between.
const BATCH: u64 = 100;
/// Rows removed per transaction by `cull` (python-diskcache's number).
const CULL_BATCH: u64 = 10;

impl Cache {
    fn remove_in_batches(&self, batch: Batch<'_>, size: u64) -> Result<usize> {
        let mut total = 0;
        loop {
            let removed = self.store().write_freeing(|s| s.delete_batch(batch, size))?;
            total += removed;
            if removed == 0 {
                return Ok(total);
            }
        }
    }

    /// Removes every expired item; returns how many. Runs in batches, each
    /// its own transaction, so concurrent writers are not held up.
    pub fn expire(&self) -> Result<usize> {
        self.remove_in_batches(Batch::Expired { now: self.now() }, BATCH)
    }

    /// Removes every item with `tag`; returns how many (in batches, as
    /// [`Cache::expire`]).
    ///
    /// ```
    /// use diskq::{Cache, SetOptions};
    /// let dir = tempfile::tempdir()?;
    /// let cache = Cache::builder().tag_index(true).open(dir.path())?;
    /// cache.set_with("a", &1, &SetOptions::new().tag("user-7"))?;
    /// cache.set_with("b", &2, &SetOptions::new().tag("user-7"))?;
    /// cache.set("c", &3)?;
    /// assert_eq!(cache.evict("user-7")?, 2);
    /// assert_eq!(cache.len()?, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn evict(&self, tag: &str) -> Result<usize> {
        self.remove_in_batches(Batch::Tagged(tag), BATCH)
    }

    /// Removes every item; returns how many (in batches, as [`Cache::expire`]).
    pub fn clear(&self) -> Result<usize> {
        let removed = self.remove_in_batches(Batch::All, BATCH)?;
        // Lease bookkeeping of the removed items goes too.
        self.store().write_freeing(|s| s.clear_leases())?;
        Ok(removed)
    }

    /// Removes expired items, then items by the eviction policy until the
    /// volume is under the size limit; returns how many.
    pub fn cull(&self) -> Result<usize> {
        let mut count = self.expire()?;
        let policy = self.eviction_policy();
        if policy == EvictionPolicy::None {
            return Ok(count);
        }
        let limit = self.size_limit();
        while self.volume()? > limit {
            let removed = self
                .store()
                .write_freeing(|s| s.delete_batch(Batch::Policy(policy), CULL_BATCH))?;
            if removed == 0 {
                break;
            }
            count += removed;
        }
        Ok(count)
    }

    /// The number of live (unexpired) items.
    pub fn len(&self) -> Result<usize> {
        let n = self.store().read(|s| s.len_live(self.now()))?;
        Ok(usize::try_from(n).unwrap_or(0))
    }

    /// True when no live item is stored.
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// Bytes on disk: the database's pages plus the value files.
    pub fn volume(&self) -> Result<u64> {
        let v = self.store().read(|s| s.volume())?;
        Ok(u64::try_from(v).unwrap_or(0))
    }

    /// Hits and misses counted so far (while statistics were enabled), and
    /// the items culled for the size limit (always counted).
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::Cache::builder().size_limit(0).open(dir.path())?;
    /// cache.set("a", &1)?; // over the limit at once: culled
    /// assert_eq!(cache.stats()?.culled, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn stats(&self) -> Result<Stats> {
        self.store().read(|s| {
            let count = |name| match s.setting(name)? {
                Scalar::Int(n) => Ok(u64::try_from(n).unwrap_or(0)),
                // The culled row appears with the first cull.
                Scalar::Null if name == CULLED_KEY => Ok(0),
                other => Err(Error::setting(name, format!("expected an integer, found {other:?}"))),
            };
            Ok(Stats {
                hits: count("hits")?,
                misses: count("misses")?,
                culled: count(CULLED_KEY)?,
            })
        })
    }

    /// Whether hits and misses are being counted.
    pub fn statistics(&self) -> bool {
        self.store().statistics()
    }

    /// Turns hit and miss counting on or off, for this handle and (through
    /// the Settings table) for handles opened later.
    pub fn set_statistics(&self, enable: bool) -> Result<()> {
        self.store().write(false, None, |s| {
            s.set_setting("statistics", &Scalar::Int(enable.into()))
        })?;
        self.store().statistics.store(enable, Ordering::Relaxed);
        Ok(())
    }

    /// Sets the hit, miss and culled counts back to zero.
    pub fn reset_stats(&self) -> Result<()> {
        self.store().write(false, None, |s| {
            s.set_setting("hits", &Scalar::Int(0))?;
            s.set_setting("misses", &Scalar::Int(0))?;
            s.set_setting(CULLED_KEY, &Scalar::Int(0))
        })
    }

    /// Checks the database and the value files against each other and, with
    /// `fix`, repairs what it finds: rows whose file is missing are removed,
    /// files no row names (orphans a crash left) are removed, wrong sizes and
    /// the count and size metadata are corrected, empty folders removed.
    ///
    /// Writers are held up while it runs (it holds the write lock).
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::Cache::open(dir.path())?;
    /// cache.set("k", &1)?;
    /// assert!(cache.check(false)?.is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn check(&self, fix: bool) -> Result<Vec<Warning>> {
        let mut warnings = Vec::new();
        let problems = match self.store().read(|s| s.integrity_problems()) {
            Ok(problems) => problems,
            // Damage bad enough to stop the check itself is one more problem.
            Err(Error::Sqlite { code, source }) if code & 0xff == SQLITE_CORRUPT => vec![source.to_string()],
            Err(e) => return Err(e),
        };
        let corrupt = !problems.is_empty();
        for message in problems {
            warnings.push(Warning {
                kind: WarningKind::Integrity,
                message,
                fixed: false,
            });
        }
        if corrupt && fix {
            // VACUUM rebuilds the file from what still reads; when that
            // fails the damage is beyond check, and it says so.
            self.store().read(|s| s.vacuum()).map_err(|e| {
                Error::Corrupt(format!(
                    "{}: SQLite's integrity check failed and VACUUM could not rebuild the file ({e}); \
                     with no process using the directory, restore it from a copy or recover its \
                     readable rows into a new file (the sqlite3 shell's .recover), then run \
                     check(true) again to match rows and value files",
                    self.directory().join(DB_NAME).display()
                ))
            })?;
        }
        // Writers of value files hold this lock shared until their row
        // commits; holding it exclusively keeps their new files from looking
        // like orphans.
        let _guard = if fix {
            Some(self.store().lock_exclusive()?)
        } else {
            None
        };
        let dir = self.directory().to_path_buf();
        let compared = self.store().write(false, None, |s| {
            let mut known = HashSet::new();
            for (rowid, size, filename) in s.file_rows()? {
                let path = match self.store().disk.path(&filename) {
                    Ok(path) => path,
                    Err(_) => {
                        let message = format!("row {rowid} names a file outside the directory: {filename:?}");
                        if fix {
                            s.delete_rowid(rowid, None)?;
                        }
                        warnings.push(Warning {
                            kind: WarningKind::BadFileName,
                            message,
                            fixed: fix,
                        });
                        continue;
                    }
                };
                // A file reached through a link is as good as missing:
                // diskq never follows links in its directory.
                let linked = self.store().disk.no_links(&path).is_err();
                match fs::symlink_metadata(&path) {
                    Ok(meta) if meta.is_file() && !linked => {
                        known.insert(path.clone());
                        let real = meta.len() as i64;
                        if real != size {
                            if fix {
                                s.update_size(rowid, real)?;
                            }
                            warnings.push(Warning {
                                kind: WarningKind::WrongFileSize,
                                message: format!("wrong file size: {}, {real} != {size}", path.display()),
                                fixed: fix,
                            });
                        }
                    }
                    _ => {
                        if fix {
                            s.delete_rowid(rowid, None)?;
                        }
                        warnings.push(Warning {
                            kind: WarningKind::MissingFile,
                            message: format!("file not found: {}", path.display()),
                            fixed: fix,
                        });
                    }
                }
            }
            let mut files = Vec::new();
            let mut folders = Vec::new();
            walk(&dir, &mut files, &mut folders)?;
            for path in files {
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let top_level = path.parent() == Some(dir.as_path());
                if (top_level && name.starts_with(DB_NAME)) || known.contains(&path) {
                    continue;
                }
                if fix {
                    let _ = fs::remove_file(&path);
                }
                warnings.push(Warning {
                    kind: WarningKind::UnknownFile,
                    message: format!("unknown file: {}", path.display()),
                    fixed: fix,
                });
            }
            // Deepest first, so a folder emptied by its child's removal goes too.
            folders.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
            for folder in folders {
                let empty = fs::read_dir(&folder).map(|mut d| d.next().is_none()).unwrap_or(false);
                if empty {
                    let fixed = fix && fs::remove_dir(&folder).is_ok();
                    warnings.push(Warning {
                        kind: WarningKind::EmptyDirectory,
                        message: format!("empty directory: {}", folder.display()),
                        fixed,
                    });
                }
            }
            let stored_count = scalar_int(s.setting("count")?);
            let count = s.count_rows()?;
            if stored_count != count {
                if fix {
                    s.set_setting("count", &Scalar::Int(count))?;
                }
                warnings.push(Warning {
                    kind: WarningKind::CountMismatch,
                    message: format!("Settings.count != COUNT(Cache.key); {stored_count} != {count}"),
                    fixed: fix,
                });
            }
            let stored_size = scalar_int(s.setting("size")?);
            let size = s.sum_sizes()?;
            if stored_size != size {
                if fix {
                    s.set_setting("size", &Scalar::Int(size))?;
                }
                warnings.push(Warning {
                    kind: WarningKind::SizeMismatch,
                    message: format!("Settings.size != SUM(Cache.size); {stored_size} != {size}"),
                    fixed: fix,
                });
            }
            Ok(())
        });
        match compared {
            Ok(()) => {}
            // A damaged file may not read far enough to compare rows and
            // files; without `fix` the Integrity warning is the report.
            Err(Error::Sqlite { code, .. }) if corrupt && !fix && code & 0xff == SQLITE_CORRUPT => {}
            Err(e) => return Err(e),
        }
        Ok(warnings)
    }
}

fn scalar_int(value: Scalar) -> i64 {
    match value {
        Scalar::Int(n) => n,
        Scalar::Real(x) => x as i64,
        _ => -1,
    }
}

/// Every file (symlinks included, never followed) and folder below `dir`.
fn walk(dir: &Path, files: &mut Vec<PathBuf>, folders: &mut Vec<PathBuf>) -> Result<()> {
    let entries = fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let path = entry.path();
        let kind = entry.file_type().map_err(|e| Error::io(&path, e))?;
        if kind.is_dir() {
            walk(&path, files, folders)?;
            folders.push(path);
        } else {
            files.push(path);
        }
    }
    Ok(())
}
