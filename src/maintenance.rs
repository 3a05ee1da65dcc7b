//! Bulk removal, sizes, statistics and `check` on `Cache`.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::SystemTime;

use crate::cache::Cache;
use crate::codec::Scalar;
use crate::disk::{is_temp_name, is_value_folder, is_value_name};
use crate::error::{Error, Result};
use crate::options::{CheckOptions, Stats, Warning, WarningKind};
use crate::settings::{CULLED_KEY, EvictionPolicy};
use crate::store::{Batch, DB_NAME, FileRow, Session};

/// SQLite's primary result code for a damaged database file.
const SQLITE_CORRUPT: i32 = 11;

/// Rows removed per transaction by `expire`, `evict` and `clear`, so that
/// other writers get the lock in between.
const BATCH: u64 = 100;
/// Rows removed per transaction by `cull` (python-diskcache's number).
const CULL_BATCH: u64 = 10;

/// Which rows one bulk removal takes.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Removal<'a> {
    /// Expired at `now`.
    Expired { now: f64 },
    /// With this tag.
    Tagged(&'a str),
    /// Every row.
    All,
    /// The next victims of this eviction policy.
    Policy(EvictionPolicy),
}

impl Removal<'_> {
    fn batch(&self) -> Batch<'_> {
        match *self {
            Removal::Expired { now } => Batch::Expired { now },
            Removal::Tagged(tag) => Batch::Tagged(tag),
            Removal::All => Batch::All,
            Removal::Policy(policy) => Batch::Policy(policy),
        }
    }
}

impl Cache {
    /// Removes one batch of at most `size` rows, in one transaction; returns how many.
    pub(crate) fn remove_batch(&self, which: Removal<'_>, size: u64) -> Result<usize> {
        self.store().write(false, None, |s| s.delete_batch(which.batch(), size))
    }

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
    ///
    /// # Errors
    ///
    /// The errors of any write ([the crate's errors](crate#errors)):
    /// [`Error::Timeout`] when the write lock stays taken past the timeout,
    /// [`Error::InvalidUse`] on a read-only handle. A batch that fails leaves
    /// the batches before it done.
    ///
    /// ```
    /// use std::sync::{Arc, atomic::{AtomicU64, Ordering}};
    /// use std::time::{Duration, SystemTime};
    /// // A clock the example moves by hand.
    /// let now = Arc::new(AtomicU64::new(1_000_000));
    /// let clock = now.clone();
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::Cache::builder()
    ///     .clock(move || SystemTime::UNIX_EPOCH + Duration::from_secs(clock.load(Ordering::SeqCst)))
    ///     .open(dir.path())?;
    /// cache.set_with("brief", &1, &diskq::SetOptions::new().expire(Duration::from_secs(60)))?;
    /// cache.set("forever", &2)?;
    /// now.fetch_add(61, Ordering::SeqCst);
    /// assert_eq!(cache.expire()?, 1);
    /// assert_eq!(cache.len()?, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn expire(&self) -> Result<usize> {
        self.remove_in_batches(Batch::Expired { now: self.now() }, BATCH)
    }

    /// Removes every item with `tag`; returns how many (in batches, as
    /// [`Cache::expire`]).
    ///
    /// # Errors
    ///
    /// The errors of any write ([the crate's errors](crate#errors)):
    /// [`Error::Timeout`] when the write lock stays taken past the timeout,
    /// [`Error::InvalidUse`] on a read-only handle. A batch that fails leaves
    /// the batches before it done.
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
    ///
    /// # Errors
    ///
    /// The errors of any write ([the crate's errors](crate#errors)):
    /// [`Error::Timeout`] when the write lock stays taken past the timeout,
    /// [`Error::InvalidUse`] on a read-only handle. A batch that fails leaves
    /// the batches before it done.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::Cache::open(dir.path())?;
    /// cache.set("a", &1)?;
    /// cache.push("job")?;
    /// assert_eq!(cache.clear()?, 2);
    /// assert!(cache.is_empty()?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn clear(&self) -> Result<usize> {
        let removed = self.remove_in_batches(Batch::All, BATCH)?;
        // Lease bookkeeping of the removed items goes too.
        self.store().write_freeing(|s| {
            s.clear_leases()?;
            s.clear_dead_letters()?;
            s.clear_jobs()
        })?;
        Ok(removed)
    }

    /// Removes expired items, then items by the eviction policy until the
    /// volume is under the size limit; returns how many.
    ///
    /// # Errors
    ///
    /// The errors of any write ([the crate's errors](crate#errors)):
    /// [`Error::Timeout`] when the write lock stays taken past the timeout,
    /// [`Error::InvalidUse`] on a read-only handle.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// // cull_limit 0: writes never cull, so the cache can be over its limit.
    /// let cache = diskq::Cache::builder().size_limit(0).cull_limit(0).open(dir.path())?;
    /// cache.set("a", &1)?;
    /// cache.set("b", &2)?;
    /// assert_eq!(cache.cull()?, 2);
    /// assert_eq!(cache.stats()?.culled, 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
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
    ///
    /// # Errors
    ///
    /// Only the storage errors of a read ([the crate's errors](crate#errors)).
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::Cache::open(dir.path())?;
    /// cache.set("a", &1)?;
    /// cache.set("a", &2)?;
    /// cache.set("b", &3)?;
    /// assert_eq!(cache.len()?, 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn len(&self) -> Result<usize> {
        let n = self.store().read(|s| s.len_live(self.now()))?;
        Ok(usize::try_from(n).unwrap_or(0))
    }

    /// True when no live item is stored.
    ///
    /// # Errors
    ///
    /// Only the storage errors of a read ([the crate's errors](crate#errors)).
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::Cache::open(dir.path())?;
    /// assert!(cache.is_empty()?);
    /// cache.set("a", &1)?;
    /// assert!(!cache.is_empty()?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// Bytes on disk: the database's pages plus the value files.
    ///
    /// # Errors
    ///
    /// Only the storage errors of a read ([the crate's errors](crate#errors)):
    /// the volume is the database's own count, no folder is listed.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::Cache::builder().min_file_size(1024).open(dir.path())?;
    /// let before = cache.volume()?;
    /// cache.set_bytes("big", &[0u8; 100_000])?; // its own file
    /// assert!(cache.volume()? >= before + 100_000);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn volume(&self) -> Result<u64> {
        let v = self.store().read(|s| s.volume())?;
        Ok(u64::try_from(v).unwrap_or(0))
    }

    /// Hits and misses counted so far (while statistics were enabled), and
    /// the items culled for the size limit (always counted).
    ///
    /// # Errors
    ///
    /// Only the storage errors of a read ([the crate's errors](crate#errors)).
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
                // The culled row appears with the first cull; on PostgreSQL
                // the hits and misses rows appear with the first count.
                Scalar::Null => Ok(0),
                other => Err(Error::setting(name, format!("expected an integer, found {other:?}"))),
            };
            Ok(Stats {
                hits: count("hits")?,
                misses: count("misses")?,
                culled: count(CULLED_KEY)?,
                blocking_checkpoints: self.store().blocking_checkpoints(),
            })
        })
    }

    /// Whether hits and misses are being counted.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::Cache::open(dir.path())?;
    /// assert!(!cache.statistics());
    /// cache.set_statistics(true)?;
    /// assert!(cache.statistics());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn statistics(&self) -> bool {
        self.store().statistics()
    }

    /// Turns hit and miss counting on or off, for this handle and (through
    /// the Settings table) for handles opened later.
    ///
    /// # Errors
    ///
    /// The errors of any write ([the crate's errors](crate#errors)):
    /// [`Error::Timeout`] when the write lock stays taken past the timeout,
    /// [`Error::InvalidUse`] on a read-only handle.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::Cache::open(dir.path())?;
    /// cache.set_statistics(true)?;
    /// cache.get::<i64>("missing")?;
    /// assert_eq!(cache.stats()?.misses, 1);
    /// assert!(diskq::Cache::open(dir.path())?.statistics(), "saved for later handles");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set_statistics(&self, enable: bool) -> Result<()> {
        self.store().write(false, None, |s| {
            s.set_setting("statistics", &Scalar::Int(enable.into()))
        })?;
        self.store().statistics.store(enable, Ordering::Relaxed);
        Ok(())
    }

    /// Sets the hit, miss and culled counts back to zero.
    ///
    /// # Errors
    ///
    /// The errors of any write ([the crate's errors](crate#errors)):
    /// [`Error::Timeout`] when the write lock stays taken past the timeout,
    /// [`Error::InvalidUse`] on a read-only handle.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::Cache::builder().statistics(true).open(dir.path())?;
    /// cache.get::<i64>("missing")?;
    /// cache.reset_stats()?;
    /// assert_eq!(cache.stats()?, diskq::Stats::default());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn reset_stats(&self) -> Result<()> {
        self.store().write(false, None, |s| {
            s.set_setting("hits", &Scalar::Int(0))?;
            s.set_setting("misses", &Scalar::Int(0))?;
            s.set_setting(CULLED_KEY, &Scalar::Int(0))
        })
    }

    /// Checks the database and the value files against each other and
    /// reports what it finds, changing nothing ([`Cache::check_with`] with
    /// the default [`CheckOptions`]; [`Cache::repair`] also repairs).
    ///
    /// Writers are held up while it runs (it holds the write lock), except
    /// on a cache opened read-only, where it reads one snapshot.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] when the write lock stays taken past the timeout (not
    /// on a read-only handle); [`Error::Io`] when a value folder cannot be
    /// listed. What it finds wrong is returned as warnings, not as an error.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::Cache::open(dir.path())?;
    /// cache.set("k", &1)?;
    /// assert!(cache.check()?.is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn check(&self) -> Result<Vec<Warning>> {
        self.check_with(&CheckOptions::new())
    }

    /// Checks like [`Cache::check`] and repairs what is safe to repair
    /// (see [`Cache::check_with`]), with the default [`CheckOptions`]: a
    /// file no row names is removed only once it is an hour old. Returns
    /// the warnings, each marked `fixed` or not.
    ///
    /// # Errors
    ///
    /// Refused with [`Error::InvalidUse`] on a cache opened read-only.
    ///
    /// As [`Cache::check_with`] with `fix`: [`Error::Timeout`], [`Error::Io`]
    /// when a file cannot be removed, and [`Error::Corrupt`] when SQLite's
    /// integrity check fails and `VACUUM` cannot rebuild the database (the
    /// message says how to recover).
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::Cache::open(dir.path())?;
    /// cache.set("k", &1)?;
    /// assert!(cache.repair()?.is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn repair(&self) -> Result<Vec<Warning>> {
        self.check_with(&CheckOptions::new().fix(true))
    }

    /// Checks the database and the value files against each other and, with
    /// `opts.fix`, repairs what is safe to repair:
    ///
    /// - a row whose file is missing, or whose file's length differs from
    ///   the row's size (the value is damaged: truncated, or grown behind
    ///   diskq's back), is removed; a file's length is never taken as the
    ///   size;
    /// - a row naming something that is not a value file
    ///   (`ab/cd/<28 hex>.val`: `cache.db`, a path outside the directory)
    ///   is removed, and what it names is left alone;
    /// - a file of value-file shape that no row names is removed once it is
    ///   older than `opts.orphan_grace` (a live writer, python-diskcache
    ///   included, may still commit a younger one), as are empty value
    ///   folders; other files and folders are only reported;
    /// - an impossible size of an inline value is set to 0, and the count
    ///   and size metadata are corrected.
    ///
    /// Reported and left: a file named by two rows
    /// ([`WarningKind::SharedFile`]) and a row with a column of the wrong
    /// type ([`WarningKind::BadColumn`]); `delete` of the key removes such
    /// a row without touching another row's file.
    ///
    /// Writers are held up while it runs (it holds the write lock), except
    /// on a cache opened read-only ([`Cache::open_read_only`]), where it
    /// reads one snapshot and `fix` is refused with [`Error::InvalidUse`].
    ///
    /// # Errors
    ///
    /// [`Error::InvalidUse`] for `fix` on a read-only handle;
    /// [`Error::Timeout`] when the write lock stays taken past the timeout (not
    /// on a read-only handle); [`Error::Io`] when a value folder cannot be
    /// listed or, with `fix`, a file cannot be removed; [`Error::Corrupt`]
    /// when, with `fix`, SQLite's integrity check fails and `VACUUM` cannot
    /// rebuild the database.
    ///
    /// ```
    /// use std::time::Duration;
    /// use diskq::{CheckOptions, WarningKind};
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::Cache::open(dir.path())?;
    /// std::fs::create_dir_all(dir.path().join("ab/cd"))?;
    /// std::fs::write(dir.path().join("ab/cd/0123456789abcdef0123456789ab.val"), b"?")?;
    /// // Young: reported, kept (a writer may be about to commit its row).
    /// let found = cache.check_with(&CheckOptions::new().fix(true))?;
    /// assert!(found.iter().any(|w| w.kind == WarningKind::UnknownFile && !w.fixed));
    /// // With no grace period it goes at once.
    /// let opts = CheckOptions::new().fix(true).orphan_grace(Duration::ZERO);
    /// assert!(cache.check_with(&opts)?.iter().any(|w| w.fixed));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn check_with(&self, opts: &CheckOptions) -> Result<Vec<Warning>> {
        let fix = opts.fix;
        if fix {
            self.store().writable()?;
        }
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
                     repair() again to match rows and value files",
                    self.directory().join(DB_NAME).display()
                ))
            })?;
        }
        // diskq's writers of value files hold this lock shared until their
        // row commits; holding it exclusively keeps their new files from
        // looking like orphans. (python-diskcache takes no such lock: the
        // grace period covers its writers.)
        let _guard = if fix {
            Some(self.store().lock_exclusive()?)
        } else {
            None
        };
        // Opened read-only, the rows are compared in one read snapshot:
        // writers go on meanwhile, so a file one has written but whose row
        // has not committed yet may be reported as unknown.
        let compared = if self.store().is_read_only() {
            self.store().read_snapshot(|s| self.compare(s, opts, &mut warnings))
        } else {
            self.store()
                .write(false, None, |s| self.compare(s, opts, &mut warnings))
        };
        match compared {
            Ok(()) => {}
            // A damaged file may not read far enough to compare rows and
            // files; without `fix` the Integrity warning is the report.
            Err(Error::Sqlite { code, .. }) if corrupt && !fix && code & 0xff == SQLITE_CORRUPT => {}
            Err(e) => return Err(e),
        }
        Ok(warnings)
    }

    /// The rows-against-files part of [`Cache::check_with`], inside one
    /// write transaction.
    fn compare(&self, s: &mut Session, opts: &CheckOptions, warnings: &mut Vec<Warning>) -> Result<()> {
        let fix = opts.fix;
        let dir = self.directory().to_path_buf();
        let disk = &self.store().disk;
        let mut warn = |kind, message: String, fixed| warnings.push(Warning { kind, message, fixed });

        for (rowid, key, column, kind) in s.bad_column_rows()? {
            warn(
                WarningKind::BadColumn,
                format!("row {rowid} (key {key}): its {column} column holds a value of type {kind}"),
                false,
            );
        }
        for (rowid, key, size) in s.bad_inline_sizes()? {
            if fix {
                s.update_size(rowid, 0)?;
            }
            warn(
                WarningKind::BadSize,
                format!("row {rowid} (key {key}) holds its value inline but has size {size}, not 0"),
                fix,
            );
        }

        // Files named by rows that stay; how many rows name each.
        let mut named: HashMap<PathBuf, Vec<String>> = HashMap::new();
        // Files of rows removed here, removed after the commit.
        let mut condemned = HashSet::new();
        // Folders whose content this pass removed: removed when empty,
        // whatever their age.
        let mut emptied = HashSet::new();
        for FileRow {
            rowid,
            key,
            size,
            filename,
        } in s.file_rows()?
        {
            let path = match disk.path(&filename) {
                Ok(path) => path,
                Err(_) => {
                    if fix {
                        // The row goes; what it names is not ours to remove.
                        s.delete_rowid(rowid, None)?;
                    }
                    warn(
                        WarningKind::BadFileName,
                        format!(
                            "row {rowid} (key {key}) names {filename:?}, which is not a value file \
                             (ab/cd/<28 hex>.val)"
                        ),
                        fix,
                    );
                    continue;
                }
            };
            // A file reached through a link is as good as missing:
            // diskq never follows links in its directory.
            let linked = disk.no_links(&path).is_err();
            match fs::symlink_metadata(&path) {
                Ok(meta) if meta.is_file() && !linked => {
                    let len = meta.len();
                    if size.and_then(|n| u64::try_from(n).ok()) != Some(len) {
                        // Neither number can be trusted over the other, and
                        // a huge length (a sparse file) must never become
                        // the size a read allocates: the item goes, its file
                        // after the commit (no writer can still be writing a
                        // file a committed row named).
                        if fix {
                            s.delete_rowid(rowid, Some(filename.clone()))?;
                            condemned.insert(path.clone());
                            if let Some(parent) = path.parent() {
                                emptied.insert(parent.to_path_buf());
                            }
                        }
                        let size = size.map_or_else(|| "not an integer".to_owned(), |n| n.to_string());
                        warn(
                            WarningKind::WrongFileSize,
                            format!(
                                "wrong file size: {} has {len} bytes where row {rowid} (key {key}) says {size}",
                                path.display()
                            ),
                            fix,
                        );
                        if fix {
                            continue;
                        }
                    }
                    named.entry(path).or_default().push(key);
                }
                _ => {
                    if fix {
                        s.delete_rowid(rowid, None)?;
                        // Its folders held a committed file: no grace for them.
                        if let Some(parent) = path.parent() {
                            emptied.insert(parent.to_path_buf());
                        }
                    }
                    warn(
                        WarningKind::MissingFile,
                        format!("file not found: {} (row {rowid}, key {key})", path.display()),
                        fix,
                    );
                }
            }
        }
        for (path, keys) in &named {
            if keys.len() > 1 {
                warn(
                    WarningKind::SharedFile,
                    format!(
                        "{} is named by {} rows (keys {})",
                        path.display(),
                        keys.len(),
                        keys.join(", ")
                    ),
                    false,
                );
            }
        }

        let now = SystemTime::now();
        let old_enough = |meta: &fs::Metadata| {
            meta.modified()
                .ok()
                .and_then(|m| now.duration_since(m).ok())
                .is_some_and(|age| age >= opts.orphan_grace)
        };
        let mut files = Vec::new();
        let mut folders = Vec::new();
        walk(&dir, &mut files, &mut folders)?;
        for path in files {
            let name = relative_name(&dir, &path);
            let top_level = path.parent() == Some(dir.as_path());
            if (top_level && name.starts_with(DB_NAME)) || named.contains_key(&path) || condemned.contains(&path) {
                continue;
            }
            let meta = fs::symlink_metadata(&path).ok();
            // No writer makes links, FIFOs or devices: those go at once
            // (a link is removed itself, never followed), where a value
            // file or folder belongs.
            let regular = meta.as_ref().is_some_and(fs::Metadata::is_file);
            let ours = is_value_name(&name) || is_temp_name(&name) || (!regular && is_value_folder_path(&name));
            let old = !regular || meta.as_ref().is_some_and(old_enough);
            let fixed = fix && ours && old && fs::remove_file(&path).is_ok();
            if fixed && let Some(parent) = path.parent() {
                emptied.insert(parent.to_path_buf());
            }
            let why = if !ours {
                " (not a value file: left alone)"
            } else if !old {
                " (younger than the grace period: a writer may still commit its row, so it is kept)"
            } else {
                ""
            };
            warn(
                WarningKind::UnknownFile,
                format!("unknown file: {}{why}", path.display()),
                fixed,
            );
        }
        // Deepest first, so a folder emptied by its child's removal goes too.
        folders.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
        for folder in folders {
            let empty = fs::read_dir(&folder).map(|mut d| d.next().is_none()).unwrap_or(false);
            if !empty {
                continue;
            }
            let ours = is_value_folder_path(&relative_name(&dir, &folder));
            let old = emptied.contains(&folder) || fs::symlink_metadata(&folder).as_ref().is_ok_and(old_enough);
            let fixed = fix && ours && old && fs::remove_dir(&folder).is_ok();
            if fixed && let Some(parent) = folder.parent() {
                emptied.insert(parent.to_path_buf());
            }
            let why = if !ours {
                " (not a value folder: left alone)"
            } else if !old {
                " (younger than the grace period: kept)"
            } else {
                ""
            };
            warn(
                WarningKind::EmptyDirectory,
                format!("empty directory: {}{why}", folder.display()),
                fixed,
            );
        }

        let stored_count = scalar_int(s.setting("count")?);
        let count = s.count_rows()?;
        if stored_count != count {
            if fix {
                s.set_setting("count", &Scalar::Int(count))?;
            }
            warn(
                WarningKind::CountMismatch,
                format!("Settings.count != COUNT(Cache.key); {stored_count} != {count}"),
                fix,
            );
        }
        let stored_size = s.setting("size")?;
        let size = s.sum_sizes()?;
        let matches = matches!(stored_size, Scalar::Int(n) if i128::from(n) == size);
        if !matches {
            // After the repairs above every size is a file's length, so
            // the total fits; without them it is reported as it is.
            let fixed = fix && i64::try_from(size).is_ok();
            if fixed {
                s.set_setting("size", &Scalar::Int(i64::try_from(size).unwrap_or(i64::MAX)))?;
            }
            warn(
                WarningKind::SizeMismatch,
                format!("Settings.size != SUM(Cache.size); {} != {size}", show(&stored_size)),
                fixed,
            );
        }
        Ok(())
    }
}

/// A Settings value as a message shows it.
fn show(value: &Scalar) -> String {
    match value {
        Scalar::Int(n) => n.to_string(),
        Scalar::Real(x) => x.to_string(),
        other => format!("{other:?}"),
    }
}

/// True for `ab` or `ab/cd`: the folders of value files.
fn is_value_folder_path(name: &str) -> bool {
    let parts: Vec<&str> = name.split('/').collect();
    parts.len() <= 2 && parts.iter().all(|p| is_value_folder(p))
}

/// `path` below `dir`, with `/` between the parts.
fn relative_name(dir: &Path, path: &Path) -> String {
    let relative = path.strip_prefix(dir).unwrap_or(path);
    let parts: Vec<String> = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    parts.join("/")
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
