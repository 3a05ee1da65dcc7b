//! Closed standard streams: an item leaves the queue only once it is
//! written, and a closed standard input is no empty value.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{arg, diskq, shell};

#[test]
fn a_pull_into_a_closed_output_keeps_the_item() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("q");
    let d = arg(&dir);
    diskq(&["push", d, "job-1"]).ok();
    let run = shell(r#""$DISKQ" pull "$D" >&- ; echo "status $?""#, &dir);
    assert_eq!(run.text(), "status 1\n", "{}", run.stderr);
    assert!(run.stderr.contains("standard output is closed"), "{}", run.stderr);
    assert_eq!(diskq(&["len", d]).ok().text(), "1\n", "the item is still queued");
    assert_eq!(diskq(&["pull", d]).ok().text(), "job-1");
}

#[test]
fn a_pull_whose_write_fails_keeps_the_item() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("q");
    let d = arg(&dir);
    diskq(&["push", d, "front"]).ok();
    diskq(&["push", d, "back"]).ok();
    // /dev/full fails every write with "No space left on device".
    let run = shell(
        r#""$DISKQ" pull "$D" > /dev/full; echo "status $?"
        "$DISKQ" pull "$D" --back --json > /dev/full; echo "status $?""#,
        &dir,
    );
    assert_eq!(run.text(), "status 1\nstatus 1\n", "{}", run.stderr);
    assert!(run.stderr.contains("stays in the queue"), "{}", run.stderr);
    assert!(run.stderr.contains("No space left"), "{}", run.stderr);
    assert_eq!(diskq(&["len", d]).ok().text(), "2\n", "both items are still queued");
    assert_eq!(diskq(&["pull", d]).ok().text(), "front");
    assert_eq!(diskq(&["pull", d]).ok().text(), "back");
}

#[test]
fn a_closed_input_is_no_empty_value() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("c");
    let d = arg(&dir);
    let run = shell(
        r#""$DISKQ" set "$D" k - <&- ; echo "set $?"
        "$DISKQ" push "$D" - <&- ; echo "push $?""#,
        &dir,
    );
    assert_eq!(run.text(), "set 1\npush 1\n", "{}", run.stderr);
    assert_eq!(
        run.stderr.matches("standard input is closed").count(),
        2,
        "{}",
        run.stderr
    );
    assert!(!dir.exists(), "nothing was created");

    // An empty input on purpose is an empty value.
    let run = shell(r#""$DISKQ" set "$D" k - < /dev/null && echo stored"#, &dir);
    assert_eq!(run.text(), "stored\n", "{}", run.stderr);
    assert_eq!(diskq(&["get", d, "k"]).ok().stdout, b"");
    diskq(&["set", d, "other", "x"]).ok();
    let run = shell(r#""$DISKQ" set "$D" other - <&- ; echo "set $?""#, &dir);
    assert_eq!(run.text(), "set 1\n", "{}", run.stderr);
    assert_eq!(diskq(&["get", d, "other"]).ok().text(), "x", "the old value is kept");
}

#[test]
fn a_pull_discarded_on_purpose_still_works() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("q");
    let d = arg(&dir);
    diskq(&["push", d, "drop-me"]).ok();
    let run = shell(r#""$DISKQ" pull "$D" > /dev/null && echo pulled"#, &dir);
    assert_eq!(run.text(), "pulled\n", "{}", run.stderr);
    assert_eq!(diskq(&["len", d]).ok().text(), "0\n");
}
