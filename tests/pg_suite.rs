//! The behavioural suite shared with the directory backend
//! (`support/suite.rs`), each test on a fresh schema of the test
//! PostgreSQL server (`support/pg.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![cfg(feature = "postgres")]

#[path = "support/pg.rs"]
mod pg;
#[path = "support/suite.rs"]
mod suite;

struct At(String);

impl At {
    fn location(&self) -> &str {
        &self.0
    }
}

fn at(name: &str) -> At {
    At(pg::location(name))
}

behaviour_suite!(at);
