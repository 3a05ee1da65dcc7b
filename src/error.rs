//! The one error type of the crate.

use std::path::PathBuf;

/// Everything that can go wrong in diskq.
///
/// The enum is `#[non_exhaustive]`: match the variants you handle and keep a
/// catch-all arm. Helpers such as [`Error::is_timeout`] answer the common
/// questions without a match.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file-system operation failed; `path` names the file or folder.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file or folder the operation was about.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// SQLite reported an error other than a lock timeout.
    #[error("SQLite error ({code}): {message}")]
    Sqlite {
        /// SQLite's extended result code.
        code: i32,
        /// SQLite's message.
        message: String,
    },
    /// The database stayed locked by another connection past the timeout.
    #[error("database locked past the timeout")]
    Timeout,
    /// A value or key could not be serialized.
    #[error("cannot encode: {0}")]
    Encode(String),
    /// A stored value could not be decoded as the wanted type.
    #[error("cannot decode the value of key {key} as {wanted}: {message}")]
    Decode {
        /// The key whose value was read, as text.
        key: String,
        /// The Rust type that was asked for.
        wanted: &'static str,
        /// Why it failed.
        message: String,
    },
    /// The stored value is a Python pickle; diskq never unpickles (it could run code).
    #[error("the value of key {key} is a Python pickle, which diskq does not read")]
    Pickled {
        /// The key whose value was read, as text.
        key: String,
    },
    /// A key that cannot be stored, such as a NaN float.
    #[error("invalid key: {0}")]
    InvalidKey(String),
    /// The directory is inconsistent in a way that could not be repaired.
    #[error("corrupt cache: {0}")]
    Corrupt(String),
    /// A setting (given on open or read from the Settings table) is invalid.
    #[error("invalid setting {name}: {message}")]
    InvalidSetting {
        /// The setting's name as stored in the Settings table.
        name: String,
        /// What is wrong with it.
        message: String,
    },
    /// The cache path exists but is not a directory.
    #[error("not a directory: {0}")]
    NotADirectory(PathBuf),
    /// The directory's `cache.db` is not an SQLite database.
    #[error("not an SQLite database: {0}")]
    NotADatabase(PathBuf),
    /// The directory was written by a newer diskq with a format this version does not know.
    #[error("unsupported format version {found} (this diskq reads up to {supported})")]
    UnsupportedFormat {
        /// The version found in the Settings table.
        found: i64,
        /// The newest version this build understands.
        supported: i64,
    },
    /// An operation was used in a way it does not support (for example a
    /// re-entrant call from inside another operation's callback).
    #[error("invalid use: {0}")]
    InvalidUse(String),
}

impl Error {
    /// True when the error is a lock timeout ([`Error::Timeout`]).
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Timeout)
    }

    /// True when the error is a failed decode of a stored value.
    pub fn is_decode(&self) -> bool {
        matches!(self, Error::Decode { .. } | Error::Pickled { .. })
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn setting(name: &str, message: impl Into<String>) -> Error {
        Error::InvalidSetting {
            name: name.to_owned(),
            message: message.into(),
        }
    }
}

impl From<rusqlite::Error> for Error {
    fn from(err: rusqlite::Error) -> Error {
        match &err {
            rusqlite::Error::SqliteFailure(e, msg) => {
                if matches!(
                    e.code,
                    rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
                ) {
                    return Error::Timeout;
                }
                Error::Sqlite {
                    code: e.extended_code,
                    message: msg.clone().unwrap_or_else(|| e.to_string()),
                }
            }
            other => Error::Sqlite {
                code: -1,
                message: other.to_string(),
            },
        }
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
