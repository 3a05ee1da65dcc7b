//! Jobs beside python-diskcache: its `Deque` pops the plain items only,
//! never a delayed, prioritized or unique one (they live outside its key
//! range), and it opens a directory with diskq's counters and job table.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/pyenv.rs"]
mod pyenv;

use std::time::Duration;

use diskq::{Deque, PushOptions};

#[test]
fn python_deque_pops_plain_items_and_leaves_jobs() {
    let Some(python) = pyenv::python("the python-diskcache jobs interop test") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d: Deque<String> = Deque::open(dir.path()).unwrap();
    d.push_back("plain 1").unwrap();
    d.push_back_delayed("delayed", Duration::from_secs(3600)).unwrap();
    assert!(d.push_back_with("urgent", &PushOptions::new().priority(5)).unwrap());
    assert!(d.push_back_with("unique", &PushOptions::new().unique_key("u")).unwrap());
    d.push_back("plain 2").unwrap();
    let popped = pyenv::run_code(
        &python,
        "import sys, diskcache\n\
         d = diskcache.Deque(directory=sys.argv[1])\n\
         out = []\n\
         while True:\n\
         \x20   try:\n\
         \x20       out.append(d.popleft())\n\
         \x20   except IndexError:\n\
         \x20       break\n\
         d.append('from python')\n\
         print(','.join(out))\n",
        dir.path(),
    );
    assert_eq!(popped.trim(), "plain 1,plain 2", "python pops plain items only");
    // diskq still has the jobs, in their order, and python's item.
    assert_eq!(d.backlog().unwrap().scheduled, 1);
    assert_eq!(d.pop_front_many(5).unwrap(), ["urgent", "unique", "from python"]);
    let stats = d.stats().unwrap();
    assert_eq!(
        (stats.pushed, stats.popped, stats.scheduled),
        (5, 3, 1),
        "python's pops are not counted"
    );
}
