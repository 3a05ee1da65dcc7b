//! Decodes an arbitrary stored row (key, raw, mode, value, file name, tag,
//! expiry) through every typed read of diskq's public API. Rows pile up in
//! one directory per fuzzing process, as they would in a damaged file; the
//! directory starts over every 256 inputs to keep each run fast.
#![no_main]

use std::sync::Mutex;

use libfuzzer_sys::fuzz_target;

static DIR: Mutex<Option<(tempfile::TempDir, u32)>> = Mutex::new(None);

fuzz_target!(|data: &[u8]| {
    let mut slot = DIR.lock().unwrap_or_else(|e| e.into_inner());
    if slot.as_ref().is_none_or(|(_, n)| *n >= 256) {
        *slot = Some((tempfile::tempdir().expect("a temporary directory"), 0));
    }
    let (dir, n) = slot.as_mut().expect("set just above");
    *n += 1;
    diskq_fuzz::row::exercise(dir.path(), data);
});
