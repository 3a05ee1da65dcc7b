//! Options, the eviction policies, their defaults, and the Settings table rows.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use crate::codec::Scalar;
use crate::error::{Error, Result};

/// The on-disk format version diskq writes into the Settings table
/// (row `diskq_format_version`). A directory without the row was made by
/// python-diskcache and is format 1.
pub(crate) const FORMAT_VERSION: i64 = 1;
pub(crate) const FORMAT_VERSION_KEY: &str = "diskq_format_version";
/// The Settings row counting the live items culled for the size limit
/// ([`Stats::culled`](crate::Stats::culled)). python-diskcache reads every
/// Settings row back as an attribute of its Cache on open (and writes it
/// back unchanged); only `sqlite_` and `disk_` rows mean something to it.
pub(crate) const CULLED_KEY: &str = "diskq_culled";

/// SQLite's `PRAGMA synchronous` level, for
/// [`CacheBuilder::sqlite_synchronous`](crate::CacheBuilder::sqlite_synchronous).
///
/// `OFF` (0), which lets a power loss corrupt the database, has no variant:
/// diskq refuses it (a stored `sqlite_synchronous = 0` row from another
/// program is refused with [`Error::InvalidSetting`] too).
///
/// ```
/// use diskq::Synchronous;
/// let dir = tempfile::tempdir()?;
/// let cache = diskq::Cache::builder().sqlite_synchronous(Synchronous::Full).open(dir.path())?;
/// assert_eq!(Synchronous::default(), Synchronous::Normal);
/// assert_eq!(Synchronous::Full.level(), 2);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Synchronous {
    /// `NORMAL` (1), the default: in WAL mode every commit is atomic and
    /// survives a crash of any process; a power loss may roll back the last
    /// commits, never tear them.
    #[default]
    Normal,
    /// `FULL` (2): also survives a power loss, at one fsync per commit.
    Full,
    /// `EXTRA` (3): FULL, and the directory is synced too in rollback
    /// journal modes.
    Extra,
}

impl Synchronous {
    /// The pragma's number, as stored in the Settings table (1, 2 or 3).
    ///
    /// ```
    /// use diskq::Synchronous;
    /// assert_eq!(Synchronous::Normal.level(), 1);
    /// assert_eq!(Synchronous::Extra.level(), 3);
    /// ```
    #[must_use]
    pub fn level(self) -> i64 {
        match self {
            Synchronous::Normal => 1,
            Synchronous::Full => 2,
            Synchronous::Extra => 3,
        }
    }
}

/// Which items a cull removes first when the cache is over its size limit.
///
/// The names are python-diskcache's, as stored in the Settings table.
///
/// ```
/// use diskq::EvictionPolicy;
/// let p: EvictionPolicy = "least-recently-used".parse().unwrap();
/// assert_eq!(p, EvictionPolicy::LeastRecentlyUsed);
/// assert_eq!(p.to_string(), "least-recently-used");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum EvictionPolicy {
    /// Oldest `store_time` first (the default). Reads stay read-only.
    #[default]
    LeastRecentlyStored,
    /// Oldest `access_time` first; every hit writes its access time.
    LeastRecentlyUsed,
    /// Smallest `access_count` first; every hit increments the count.
    LeastFrequentlyUsed,
    /// Never evict (queues, deques and indexes use this).
    None,
}

impl EvictionPolicy {
    /// The name stored in the Settings table.
    ///
    /// ```
    /// use diskq::EvictionPolicy;
    /// assert_eq!(EvictionPolicy::LeastFrequentlyUsed.as_str(), "least-frequently-used");
    /// assert_eq!(EvictionPolicy::None.as_str(), "none");
    /// ```
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            EvictionPolicy::LeastRecentlyStored => "least-recently-stored",
            EvictionPolicy::LeastRecentlyUsed => "least-recently-used",
            EvictionPolicy::LeastFrequentlyUsed => "least-frequently-used",
            EvictionPolicy::None => "none",
        }
    }
}

impl fmt::Display for EvictionPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EvictionPolicy {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "least-recently-stored" => EvictionPolicy::LeastRecentlyStored,
            "least-recently-used" => EvictionPolicy::LeastRecentlyUsed,
            "least-frequently-used" => EvictionPolicy::LeastFrequentlyUsed,
            "none" => EvictionPolicy::None,
            other => {
                return Err(Error::setting(
                    "eviction_policy",
                    format!(
                        "unknown policy {other:?} (expected least-recently-stored, \
                         least-recently-used, least-frequently-used or none)"
                    ),
                ));
            }
        })
    }
}

impl Scalar {
    fn int(&self, name: &str) -> Result<i64> {
        match self {
            Scalar::Int(n) => Ok(*n),
            Scalar::Real(x) if x.fract() == 0.0 && x.abs() < 9.0e15 => Ok(*x as i64),
            other => Err(Error::setting(name, format!("expected an integer, found {other:?}"))),
        }
    }

    fn non_negative(&self, name: &str) -> Result<u64> {
        let n = self.int(name)?;
        u64::try_from(n).map_err(|_| Error::setting(name, format!("must not be negative, found {n}")))
    }

    fn flag(&self, name: &str) -> Result<bool> {
        match self.int(name)? {
            0 => Ok(false),
            1 => Ok(true),
            n => Err(Error::setting(name, format!("expected 0 or 1, found {n}"))),
        }
    }

    fn text(&self, name: &str) -> Result<&str> {
        match self {
            Scalar::Text(s) => Ok(s),
            other => Err(Error::setting(name, format!("expected text, found {other:?}"))),
        }
    }
}

/// Every setting of a cache directory, as persisted in its Settings table.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Settings {
    pub statistics: bool,
    pub tag_index: bool,
    pub eviction_policy: EvictionPolicy,
    pub size_limit: u64,
    pub cull_limit: u64,
    pub sqlite_auto_vacuum: i64,
    pub sqlite_cache_size: i64,
    pub sqlite_journal_mode: String,
    pub sqlite_mmap_size: i64,
    pub sqlite_synchronous: i64,
    pub min_file_size: u64,
    /// Kept for python-diskcache, which reads it as its Disk's pickle protocol.
    pub pickle_protocol: i64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            statistics: false,
            tag_index: false,
            eviction_policy: EvictionPolicy::LeastRecentlyStored,
            size_limit: 1 << 30,
            cull_limit: 10,
            sqlite_auto_vacuum: 1,
            sqlite_cache_size: 1 << 13,
            sqlite_journal_mode: "wal".into(),
            sqlite_mmap_size: 1 << 26,
            sqlite_synchronous: 1,
            min_file_size: 1 << 15,
            pickle_protocol: 5,
        }
    }
}

/// Options given explicitly on open: each one overrides the stored setting and is saved.
#[derive(Debug, Clone, Default)]
pub(crate) struct Overrides {
    pub statistics: Option<bool>,
    pub tag_index: Option<bool>,
    pub eviction_policy: Option<EvictionPolicy>,
    pub size_limit: Option<u64>,
    pub cull_limit: Option<u64>,
    pub sqlite_cache_size: Option<i64>,
    pub sqlite_mmap_size: Option<i64>,
    pub sqlite_synchronous: Option<i64>,
    pub sqlite_journal_mode: Option<String>,
    pub min_file_size: Option<u64>,
}

impl Overrides {
    /// True when any option is given (a read-only open takes none).
    pub(crate) fn any(&self) -> bool {
        let Overrides {
            statistics,
            tag_index,
            eviction_policy,
            size_limit,
            cull_limit,
            sqlite_cache_size,
            sqlite_mmap_size,
            sqlite_synchronous,
            sqlite_journal_mode,
            min_file_size,
        } = self;
        statistics.is_some()
            || tag_index.is_some()
            || eviction_policy.is_some()
            || size_limit.is_some()
            || cull_limit.is_some()
            || sqlite_cache_size.is_some()
            || sqlite_mmap_size.is_some()
            || sqlite_synchronous.is_some()
            || sqlite_journal_mode.is_some()
            || min_file_size.is_some()
    }

    /// True when the option stored under `name` is given explicitly.
    fn names(&self, name: &str) -> bool {
        match name {
            "statistics" => self.statistics.is_some(),
            "tag_index" => self.tag_index.is_some(),
            "eviction_policy" => self.eviction_policy.is_some(),
            "size_limit" => self.size_limit.is_some(),
            "cull_limit" => self.cull_limit.is_some(),
            "sqlite_cache_size" => self.sqlite_cache_size.is_some(),
            "sqlite_mmap_size" => self.sqlite_mmap_size.is_some(),
            "sqlite_synchronous" => self.sqlite_synchronous.is_some(),
            "sqlite_journal_mode" => self.sqlite_journal_mode.is_some(),
            "disk_min_file_size" => self.min_file_size.is_some(),
            _ => false,
        }
    }
}

/// The journal modes SQLite knows.
const JOURNAL_MODES: [&str; 6] = ["delete", "truncate", "persist", "memory", "wal", "off"];
/// The journal modes that keep a commit atomic across a crash. `memory`
/// keeps the rollback journal in RAM and `off` keeps none: a crash in the
/// middle of a commit leaves a half-written, possibly corrupt database.
const ATOMIC_JOURNAL_MODES: [&str; 4] = ["delete", "truncate", "persist", "wal"];

impl Settings {
    /// Defaults, then the stored rows, then the explicit options; validated.
    pub(crate) fn resolve(stored: &HashMap<String, Scalar>, overrides: &Overrides) -> Result<Settings> {
        let mut s = Settings::default();
        for (name, value) in stored {
            // An explicit option replaces the stored row, even an invalid one.
            if overrides.names(name) {
                continue;
            }
            match name.as_str() {
                "statistics" => s.statistics = value.flag(name)?,
                "tag_index" => s.tag_index = value.flag(name)?,
                "eviction_policy" => s.eviction_policy = value.text(name)?.parse()?,
                "size_limit" => s.size_limit = value.non_negative(name)?,
                "cull_limit" => s.cull_limit = value.non_negative(name)?,
                "sqlite_auto_vacuum" => s.sqlite_auto_vacuum = value.int(name)?,
                "sqlite_cache_size" => s.sqlite_cache_size = value.int(name)?,
                "sqlite_journal_mode" => s.sqlite_journal_mode = value.text(name)?.to_ascii_lowercase(),
                "sqlite_mmap_size" => s.sqlite_mmap_size = value.int(name)?,
                "sqlite_synchronous" => s.sqlite_synchronous = value.int(name)?,
                "disk_min_file_size" => s.min_file_size = value.non_negative(name)?,
                "disk_pickle_protocol" => s.pickle_protocol = value.int(name)?,
                FORMAT_VERSION_KEY => {
                    let found = value.int(name)?;
                    if found > FORMAT_VERSION {
                        return Err(Error::UnsupportedFormat {
                            found,
                            supported: FORMAT_VERSION,
                        });
                    }
                }
                // Metadata rows and settings of other tools are left alone.
                _ => {}
            }
        }
        let o = overrides;
        s.statistics = o.statistics.unwrap_or(s.statistics);
        s.tag_index = o.tag_index.unwrap_or(s.tag_index);
        s.eviction_policy = o.eviction_policy.unwrap_or(s.eviction_policy);
        s.size_limit = o.size_limit.unwrap_or(s.size_limit);
        s.cull_limit = o.cull_limit.unwrap_or(s.cull_limit);
        s.sqlite_cache_size = o.sqlite_cache_size.unwrap_or(s.sqlite_cache_size);
        s.sqlite_mmap_size = o.sqlite_mmap_size.unwrap_or(s.sqlite_mmap_size);
        s.sqlite_synchronous = o.sqlite_synchronous.unwrap_or(s.sqlite_synchronous);
        if let Some(mode) = &o.sqlite_journal_mode {
            s.sqlite_journal_mode = mode.to_ascii_lowercase();
        }
        s.min_file_size = o.min_file_size.unwrap_or(s.min_file_size);
        s.validate()?;
        Ok(s)
    }

    fn validate(&self) -> Result<()> {
        for (name, n) in [
            ("size_limit", self.size_limit),
            ("cull_limit", self.cull_limit),
            ("disk_min_file_size", self.min_file_size),
        ] {
            if i64::try_from(n).is_err() {
                return Err(Error::setting(name, format!("{n} is larger than SQLite's integers")));
            }
        }
        if !(0..=2).contains(&self.sqlite_auto_vacuum) {
            return Err(Error::setting("sqlite_auto_vacuum", "expected 0, 1 or 2"));
        }
        if !(0..=3).contains(&self.sqlite_synchronous) {
            return Err(Error::setting(
                "sqlite_synchronous",
                "expected 1 (NORMAL), 2 (FULL) or 3 (EXTRA)",
            ));
        }
        if self.sqlite_synchronous == 0 {
            return Err(Error::setting(
                "sqlite_synchronous",
                "0 (OFF) lets a power loss corrupt the database, which diskq does not allow; \
                 use 1 (NORMAL), 2 (FULL) or 3 (EXTRA), or open with an explicit \
                 sqlite_synchronous option to replace the stored row",
            ));
        }
        if self.sqlite_mmap_size < 0 {
            return Err(Error::setting("sqlite_mmap_size", "must not be negative"));
        }
        if !JOURNAL_MODES.contains(&self.sqlite_journal_mode.as_str()) {
            return Err(Error::setting(
                "sqlite_journal_mode",
                format!("unknown journal mode {:?}", self.sqlite_journal_mode),
            ));
        }
        if !ATOMIC_JOURNAL_MODES.contains(&self.sqlite_journal_mode.as_str()) {
            return Err(Error::setting(
                "sqlite_journal_mode",
                format!(
                    "{:?} makes commits non-atomic (a crash mid-commit corrupts the database), \
                     which diskq does not allow; use wal (the default), delete, truncate or \
                     persist, or open with an explicit sqlite_journal_mode option to replace \
                     the stored row",
                    self.sqlite_journal_mode
                ),
            ));
        }
        Ok(())
    }

    /// The rows to persist, python-diskcache's names first, then ours.
    pub(crate) fn rows(&self) -> Vec<(&'static str, Scalar)> {
        use Scalar::{Int, Text};
        vec![
            ("statistics", Int(self.statistics.into())),
            ("tag_index", Int(self.tag_index.into())),
            ("eviction_policy", Text(self.eviction_policy.as_str().into())),
            ("size_limit", Int(self.size_limit as i64)),
            ("cull_limit", Int(self.cull_limit as i64)),
            ("sqlite_auto_vacuum", Int(self.sqlite_auto_vacuum)),
            ("sqlite_cache_size", Int(self.sqlite_cache_size)),
            ("sqlite_journal_mode", Text(self.sqlite_journal_mode.clone())),
            ("sqlite_mmap_size", Int(self.sqlite_mmap_size)),
            ("sqlite_synchronous", Int(self.sqlite_synchronous)),
            ("disk_min_file_size", Int(self.min_file_size as i64)),
            ("disk_pickle_protocol", Int(self.pickle_protocol)),
            (FORMAT_VERSION_KEY, Int(FORMAT_VERSION)),
        ]
    }

    /// The per-connection pragmas, in the order they must be applied. The
    /// values were validated, so formatting them into the PRAGMA text is safe.
    pub(crate) fn connection_pragmas(&self) -> Vec<String> {
        vec![
            format!("PRAGMA journal_mode = {}", self.sqlite_journal_mode),
            format!("PRAGMA synchronous = {}", self.sqlite_synchronous),
            format!("PRAGMA cache_size = {}", self.sqlite_cache_size),
            format!("PRAGMA mmap_size = {}", self.sqlite_mmap_size),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(rows: &[(&str, Scalar)]) -> HashMap<String, Scalar> {
        rows.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
    }

    #[test]
    fn stored_rows_override_defaults_and_options_override_rows() {
        let rows = stored(&[("size_limit", Scalar::Int(100)), ("cull_limit", Scalar::Int(3))]);
        let o = Overrides {
            cull_limit: Some(7),
            ..Default::default()
        };
        let s = Settings::resolve(&rows, &o).unwrap();
        assert_eq!(s.size_limit, 100);
        assert_eq!(s.cull_limit, 7);
        assert_eq!(s.eviction_policy, EvictionPolicy::LeastRecentlyStored);
    }

    #[test]
    fn invalid_rows_are_refused_with_their_name() {
        let bad = [
            ("size_limit", Scalar::Int(-1)),
            ("eviction_policy", Scalar::Text("random".into())),
            ("statistics", Scalar::Text("yes".into())),
            ("sqlite_journal_mode", Scalar::Text("wal; DROP TABLE Cache".into())),
            ("sqlite_synchronous", Scalar::Int(9)),
        ];
        for (name, value) in bad {
            let err = Settings::resolve(&stored(&[(name, value)]), &Overrides::default()).unwrap_err();
            assert!(err.to_string().contains(name), "{err}");
        }
        let newer = stored(&[(FORMAT_VERSION_KEY, Scalar::Int(FORMAT_VERSION + 1))]);
        assert!(matches!(
            Settings::resolve(&newer, &Overrides::default()),
            Err(Error::UnsupportedFormat { .. })
        ));
    }

    #[test]
    fn rows_round_trip() {
        let s = Settings {
            eviction_policy: EvictionPolicy::LeastFrequentlyUsed,
            statistics: true,
            ..Default::default()
        };
        let rows: HashMap<String, Scalar> = s.rows().into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        assert_eq!(Settings::resolve(&rows, &Overrides::default()).unwrap(), s);
        assert!(s.rows().iter().all(|(k, _)| *k != "count"));
    }
}
