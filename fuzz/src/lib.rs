//! Fuzzing support for diskq: see `row` and `fuzz_targets/`.
//!
//! Run with `cargo +nightly fuzz run decode_row` from this folder. The same
//! code runs on stable in CI through `tests/fuzz_corpus.rs`.

// The row code lives with the tests, so that the published crate (which
// leaves this folder out) still carries it for `tests/fuzz_corpus.rs`.
#[path = "../../tests/support/fuzz_row.rs"]
pub mod row;
