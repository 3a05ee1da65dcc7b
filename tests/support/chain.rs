//! An error and its causes as one line, the way an error report (`anyhow`,
//! `eyre`) prints them: each level's message once, joined by `": "`.

use std::error::Error;

/// The messages of `err` and of each of its sources, outermost first.
pub fn levels(err: &(dyn Error + 'static)) -> Vec<String> {
    let mut levels = vec![err.to_string()];
    let mut cause = err.source();
    while let Some(c) = cause {
        levels.push(c.to_string());
        cause = c.source();
    }
    levels
}

/// `levels(err)` joined by `": "`.
pub fn chain(err: &(dyn Error + 'static)) -> String {
    levels(err).join(": ")
}
