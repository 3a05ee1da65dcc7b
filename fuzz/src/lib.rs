//! Fuzzing support for diskq: see `row` and `fuzz_targets/`.
//!
//! Run with `cargo +nightly fuzz run decode_row` from this folder. The same
//! code runs on stable in CI through `tests/fuzz_corpus.rs`.

pub mod row;
