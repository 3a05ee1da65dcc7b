//! The real python-diskcache for tests: a virtual environment under the
//! workspace's `target/pyenv` with the pinned version installed from PyPI.
//! Shared by the library's interop tests and the `diskq` tool's tests
//! (included with `#[path]`; not a test target of its own). The tool's
//! crate keeps a copy in `cli/tests/support/`, since a published crate
//! cannot include a file outside its folder; a test there checks the copy.
//!
//! Without Python (or PyPI) a test skips with a message, except under
//! `CI=true`, where it fails.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The python-diskcache version the tests install.
pub const DISKCACHE_VERSION: &str = "5.6.3";

/// The venv's python with diskcache installed (made on first use), or
/// `None` (after saying why) when it cannot be had outside CI. `what` names
/// the skipped test in that message.
pub fn python(what: &str) -> Option<PathBuf> {
    static PYTHON: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let found = PYTHON.get_or_init(|| {
        // The workspace root (where Cargo.lock is), whichever crate runs.
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
        let root = manifest.ancestors().find(|dir| dir.join("Cargo.lock").exists());
        let venv = root.unwrap_or(manifest).join("target/pyenv");
        install(&venv)
    });
    match found {
        Ok(python) => Some(python.clone()),
        Err(why) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("python-diskcache is required in CI: {why}")
        }
        Err(why) => {
            eprintln!("skipping {what}: {why}");
            None
        }
    }
}

/// Runs a python-diskcache snippet (`python -c code dir`, so `dir` is
/// `sys.argv[1]`) and returns its stdout; fails the test if Python fails.
#[allow(dead_code)] // not every test that includes this file runs snippets
pub fn run_code(python: &Path, code: &str, dir: &Path) -> String {
    let out = Command::new(python).arg("-c").arg(code).arg(dir).output().unwrap();
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn install(venv: &Path) -> Result<PathBuf, String> {
    let python = venv.join("bin/python");
    let has_diskcache = |python: &Path| {
        Command::new(python)
            .args([
                "-c",
                &format!("import diskcache; assert diskcache.__version__ == '{DISKCACHE_VERSION}'"),
            ])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if has_diskcache(&python) {
        return Ok(python);
    }
    match Command::new("python3").arg("-m").arg("venv").arg(venv).output() {
        Ok(o) if o.status.success() => {}
        Ok(o) => {
            return Err(format!(
                "python3 -m venv failed: {}",
                String::from_utf8_lossy(&o.stderr)
            ));
        }
        Err(e) => return Err(format!("python3 not found: {e}")),
    }
    let pip = Command::new(venv.join("bin/pip"))
        .args(["install", "--quiet", &format!("diskcache=={DISKCACHE_VERSION}")])
        .output();
    match pip {
        Ok(o) if o.status.success() && has_diskcache(&python) => Ok(python),
        Ok(o) => Err(format!(
            "pip install diskcache failed: {}",
            String::from_utf8_lossy(&o.stderr)
        )),
        Err(e) => Err(format!("pip not runnable: {e}")),
    }
}
