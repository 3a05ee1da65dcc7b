//! The one error type of the crate.
//!
//! Each variant's message says what diskq was doing; the cause (the
//! operating system's error, SQLite's message, the MessagePack decoder's
//! complaint) is its [`source`](std::error::Error::source), never repeated in
//! the message, so that a report that walks the chain (as `anyhow` and
//! `eyre` do) shows each cause once.

use std::fmt;
use std::path::PathBuf;

/// The cause of an error, as [`Error`]'s variants chain it.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong in diskq.
///
/// The enum is `#[non_exhaustive]`: match the variants you handle and keep a
/// catch-all arm. Helpers such as [`Error::is_timeout`] answer the common
/// questions without a match.
///
/// A variant's message ([`Display`](fmt::Display)) says what failed and
/// never repeats its cause, which is its
/// [`source`](std::error::Error::source): print the chain to see why, as
/// error reports (`anyhow`, `eyre`) do.
///
/// ```
/// use std::error::Error as _;
/// let dir = tempfile::tempdir()?;
/// let file = dir.path().join("plain");
/// std::fs::write(&file, b"not a folder")?;
/// let err = diskq::Cache::open(file.join("cache")).unwrap_err();
/// let mut chain = vec![err.to_string()];
/// let mut cause = err.source();
/// while let Some(c) = cause {
///     chain.push(c.to_string());
///     cause = c.source();
/// }
/// // "I/O error on .../plain/cache", then "Not a directory (os error 20)"
/// assert_eq!(chain.len(), 2);
/// assert!(chain[0].contains("plain") && !chain[0].contains("os error"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file-system operation failed; `path` names the file or folder.
    #[error("I/O error on {path}")]
    Io {
        /// The file or folder the operation was about.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// SQLite reported an error other than a lock timeout. The source
    /// holds SQLite's message; [`Error::sqlite_code`] gives the code.
    #[error("{}", sqlite_headline(*code))]
    Sqlite {
        /// SQLite's extended result code, or -1 when the failure came from
        /// the SQLite bindings rather than from SQLite (a column of an
        /// unexpected type, say).
        code: i32,
        /// SQLite's message (or the bindings' one).
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
    /// The database stayed locked by another connection past the timeout.
    #[error("database locked past the timeout")]
    Timeout,
    /// A value or key could not be serialized (or a number does not fit).
    #[error("cannot encode: {message}")]
    Encode {
        /// What could not be encoded.
        message: String,
        /// The serializer's error, when there is one.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
    },
    /// A stored value could not be decoded as the wanted type.
    #[error("cannot decode the value of key {key} as {wanted}: {message}")]
    Decode {
        /// The key whose value was read, as text.
        key: String,
        /// The Rust type that was asked for.
        wanted: &'static str,
        /// What diskq found (the decoder's own words are the source).
        message: String,
        /// The decoder's error, when there is one.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
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
    /// PostgreSQL (or the connection to it) reported an error other than a
    /// lock timeout. The source holds the server's or the client's message.
    #[error("{}", postgres_headline(code.as_deref()))]
    Postgres {
        /// The server's SQLSTATE code (`"23505"`, ...), when the server answered.
        code: Option<String>,
        /// The server's or the client's message.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
    /// The backend does not do this operation or option: the PostgreSQL
    /// backend has no value files, eviction policies, SQLite settings or
    /// `check`, and a build without the `postgres` feature opens no
    /// PostgreSQL location.
    #[error("{what}: not supported by {backend}")]
    Unsupported {
        /// The backend, or the build.
        backend: &'static str,
        /// The operation or option.
        what: String,
    },
    /// An operation was used in a way it does not support (for example a
    /// re-entrant call from inside another operation's callback).
    #[error("invalid use: {0}")]
    InvalidUse(String),
}

impl Error {
    /// True when the error is a lock timeout ([`Error::Timeout`]).
    ///
    /// ```
    /// use std::time::Duration;
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::Cache::builder().timeout(Duration::from_millis(20)).open(dir.path())?;
    /// cache.transact(|_| {
    ///     // Another thread cannot write while this transaction holds the lock.
    ///     let other = cache.clone();
    ///     let result = std::thread::spawn(move || other.set("k", &1)).join().expect("no panic");
    ///     assert!(result.expect_err("locked").is_timeout());
    ///     Ok::<_, diskq::Error>(())
    /// })?;
    /// assert!(!diskq::Error::InvalidKey("x".into()).is_timeout());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Timeout)
    }

    /// True when the error is a failed decode of a stored value.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let cache = diskq::Cache::open(dir.path())?;
    /// cache.set("n", &7)?;
    /// let err = cache.get::<String>("n").unwrap_err();
    /// assert!(err.is_decode());
    /// assert!(err.to_string().contains(r#"key "n""#), "{err}");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn is_decode(&self) -> bool {
        matches!(self, Error::Decode { .. } | Error::Pickled { .. })
    }

    /// SQLite's extended result code, for an [`Error::Sqlite`] that came
    /// from SQLite (`None` for every other error).
    ///
    /// ```
    /// let err = diskq::Error::Timeout;
    /// assert_eq!(err.sqlite_code(), None);
    /// ```
    #[must_use]
    pub fn sqlite_code(&self) -> Option<i32> {
        match self {
            Error::Sqlite { code, .. } if *code >= 0 => Some(*code),
            _ => None,
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// An [`Error::Encode`] without a cause.
    pub(crate) fn encode(message: impl Into<String>) -> Error {
        Error::Encode {
            message: message.into(),
            source: None,
        }
    }

    /// An [`Error::Encode`] caused by `source`.
    pub(crate) fn encode_by(message: impl Into<String>, source: impl Into<BoxError>) -> Error {
        Error::Encode {
            message: message.into(),
            source: Some(source.into()),
        }
    }

    /// An [`Error::Decode`] of the value of `key` as `wanted`.
    pub(crate) fn decode(
        key: impl fmt::Display,
        wanted: &'static str,
        message: impl Into<String>,
        source: Option<BoxError>,
    ) -> Error {
        Error::Decode {
            key: key.to_string(),
            wanted,
            message: message.into(),
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
                let message = match msg {
                    Some(m) => m.clone(),
                    None => rusqlite::ffi::code_to_str(e.extended_code).to_owned(),
                };
                Error::Sqlite {
                    code: e.extended_code,
                    source: Box::new(SqliteMessage(message)),
                }
            }
            // rusqlite's other errors print their own causes (and return
            // them from `source` too): keep the text, end the chain there.
            other => Error::Sqlite {
                code: -1,
                source: Box::new(SqliteMessage(other.to_string())),
            },
        }
    }
}

/// What SQLite (or the bindings) said, as the source of [`Error::Sqlite`]:
/// a message without the code (the code is in the variant) and without a
/// further source.
#[derive(Debug)]
struct SqliteMessage(String);

impl fmt::Display for SqliteMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SqliteMessage {}

fn sqlite_headline(code: i32) -> String {
    if code < 0 {
        "SQLite call failed".to_owned()
    } else {
        format!("SQLite error (extended code {code})")
    }
}

fn postgres_headline(code: Option<&str>) -> String {
    match code {
        Some(code) => format!("PostgreSQL error (SQLSTATE {code})"),
        None => "PostgreSQL connection failed".to_owned(),
    }
}

/// The crate's result type.
///
/// ```
/// fn first_job(dir: &std::path::Path) -> diskq::Result<Option<String>> {
///     let jobs: diskq::Deque<String> = diskq::Deque::open(dir)?;
///     jobs.pop_front()
/// }
/// let dir = tempfile::tempdir()?;
/// assert_eq!(first_job(dir.path())?, None);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub type Result<T, E = Error> = std::result::Result<T, E>;
