//! The behavioural suite shared with the PostgreSQL backend
//! (`support/suite.rs`), on temporary directories.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/suite.rs"]
mod suite;

/// A fresh temporary directory, kept for the test's length.
struct At(
    #[allow(dead_code, reason = "kept for the test's length")] tempfile::TempDir,
    String,
);

impl At {
    fn location(&self) -> &str {
        &self.1
    }
}

fn at(_name: &str) -> At {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().to_str().expect("a UTF-8 temporary path").to_owned();
    At(dir, path)
}

behaviour_suite!(at);

/// Without the `postgres` feature a PostgreSQL location is a clear error,
/// and nothing is created (not a directory named `postgres:`).
#[cfg(not(feature = "postgres"))]
#[test]
fn a_postgres_location_needs_the_feature() {
    let err = diskq::Deque::<u32>::open("postgres://localhost/db").unwrap_err();
    assert!(matches!(err, diskq::Error::Unsupported { .. }), "{err:?}");
    assert!(err.to_string().contains("`postgres`"), "{err}");
    assert!(!std::path::Path::new("postgres:").exists());
}
