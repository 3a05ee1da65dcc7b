//! What a command works on: one cache directory, or a FanoutCache root
//! (shard folders `000`, `001`, ..., each a cache) whose shards the
//! commands span as python-diskcache's and diskq's `FanoutCache` do: a key
//! goes to its shard by the same hash, counts and listings cover them all.
//!
//! The shards are opened one by one as plain caches with their stored
//! settings, not through `FanoutCache::open`: that one gives each shard its
//! share of a size limit (saved in the shard) and records the shard count,
//! and a read-only command must not write.

use std::fs;
use std::path::{Path, PathBuf};

use diskq::{Cache, Key};

use crate::dir::{self, Access};
use crate::failure::Failure;

/// More shard folders than any fanout cache has: the count stops here.
const MAX_SHARDS: usize = 1000;

/// A cache, or the shards of a fanout cache.
#[derive(Debug)]
pub enum Target {
    /// One cache directory.
    Single(Cache),
    /// A FanoutCache root and its shards, in order.
    Fanout {
        /// The root directory, as given.
        root: PathBuf,
        /// Shard `i` is `root/<i as three digits>`.
        shards: Vec<Cache>,
    },
}

impl Target {
    /// Opens `dir`: a FanoutCache root as its shards, anything else as
    /// [`dir::open`] does (creating a new cache only as `access` allows).
    pub fn open(dir: &Path, access: Access) -> Result<Target, Failure> {
        if !dir::is_fanout_root(dir) {
            return Ok(Target::Single(dir::open(dir, access)?));
        }
        let mut shards = Vec::new();
        while shards.len() < MAX_SHARDS {
            let shard = dir.join(format!("{:03}", shards.len()));
            if !shard.is_dir() {
                break;
            }
            shards.push(dir::open(&shard, access)?);
        }
        // A folder past a gap: a shard is missing, and keys would be looked
        // for in the wrong shard.
        if shard_folders(dir)? != shards.len() {
            return Err(Failure::new(format!(
                "{} is a FanoutCache directory with a shard folder missing: {} is not there",
                dir.display(),
                dir.join(format!("{:03}", shards.len())).display()
            )));
        }
        Ok(Target::Fanout {
            root: dir.to_path_buf(),
            shards,
        })
    }

    /// Every cache the command spans: the one, or each shard in order.
    pub fn shards(&self) -> &[Cache] {
        match self {
            Target::Single(cache) => std::slice::from_ref(cache),
            Target::Fanout { shards, .. } => shards,
        }
    }

    /// The cache that holds `key`: the one, or its shard by FanoutCache's hash.
    pub fn for_key(&self, key: &Key) -> &Cache {
        match self {
            Target::Single(cache) => cache,
            Target::Fanout { shards, .. } => &shards[diskq::fanout::shard_index(key.clone(), shards.len())],
        }
    }

    /// The directory given: the cache's, or the fanout root.
    pub fn directory(&self) -> &Path {
        match self {
            Target::Single(cache) => cache.directory(),
            Target::Fanout { root, .. } => root,
        }
    }

    /// The number of shards of a fanout root; `None` for one cache.
    pub fn fanout_shards(&self) -> Option<usize> {
        match self {
            Target::Single(_) => None,
            Target::Fanout { shards, .. } => Some(shards.len()),
        }
    }
}

/// How many entries of `dir` are named as shard folders (three digits).
fn shard_folders(dir: &Path) -> Result<usize, Failure> {
    let entries = fs::read_dir(dir).map_err(|e| Failure::new(format!("cannot read {}: {e}", dir.display())))?;
    let mut count = 0;
    for entry in entries {
        let entry = entry.map_err(|e| Failure::new(format!("cannot read {}: {e}", dir.display())))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.len() == 3 && name.bytes().all(|b| b.is_ascii_digit()) {
            count += 1;
        }
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fanout_root_is_its_shards_and_routes_keys_as_fanout_cache_does() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let fanout = diskq::FanoutCache::builder()
            .shards(3)
            .open(tmp.path())
            .expect("fanout");
        for key in ["a", "b", "c", "d"] {
            fanout.set(key, key).expect("set");
        }
        let target = Target::open(tmp.path(), Access::Existing).expect("opens");
        assert_eq!(target.fanout_shards(), Some(3));
        for key in ["a", "b", "c", "d"] {
            let key = Key::from(key);
            let value: Option<String> = target.for_key(&key).get(key.clone()).expect("get");
            assert!(value.is_some(), "{key} found in its shard");
        }
    }

    #[test]
    fn a_missing_shard_is_refused() {
        let tmp = tempfile::tempdir().expect("tempdir");
        diskq::FanoutCache::builder()
            .shards(3)
            .open(tmp.path())
            .expect("fanout");
        fs::remove_dir_all(tmp.path().join("001")).expect("remove a shard");
        let err = Target::open(tmp.path(), Access::Existing).expect_err("a shard is missing");
        assert!(err.to_string().contains("001 is not there"), "{err}");
    }
}
