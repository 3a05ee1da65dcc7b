//! The shape of a prefixed queue's keys, `<prefix>-` and exactly 15 digits,
//! and how a scan steps over keys of another shape without reading them.
//!
//! The keys of queue `jobs-2` (`jobs-2-500000000000000`, ...) sort inside the
//! range of queue `jobs`, between `jobs-199999999999999` and
//! `jobs-200000000000000`. A front pull of `jobs` that filters them one by
//! one reads every key of `jobs-2`; instead, on meeting a key of another
//! shape, the scan jumps to the first key that can have the right shape.
//! Every key between is of the wrong shape too, so whole other queues are
//! stepped over in one index seek. All of this works on bytes: a key of a
//! hostile directory need not be UTF-8.

/// Where a scan goes on after a key of the wrong shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Skip {
    /// Ascending: go on from this key, inclusive.
    From(Vec<u8>),
    /// Descending: go on below this key, exclusive.
    Below(Vec<u8>),
    /// Ascending: no key after it can have the shape.
    Done,
}

/// The digits after `<prefix>-`.
const DIGITS: usize = 15;

/// True when `key` is `head` (`<prefix>-`, `head_len` bytes, which the key
/// starts with) and then exactly 15 ASCII digits.
pub(super) fn is_shaped(head_len: usize, key: &[u8]) -> bool {
    key.len() == head_len + DIGITS && key[head_len..].iter().all(u8::is_ascii_digit)
}

/// After `key` (which starts with the `head_len` bytes of `<prefix>-` and is
/// not of the shape), where the next key of the shape can be, going up
/// (`back = false`) or down. Every key strictly between `key` and the bound
/// (and the bound itself, going down) is of the wrong shape, and the bound
/// is past `key` (above it going up; at most `key` going down, exclusive).
pub(super) fn skip(head_len: usize, key: &[u8], back: bool) -> Skip {
    let (head, tail) = key.split_at(head_len.min(key.len()));
    let digits = tail.iter().take_while(|b| b.is_ascii_digit()).count();
    let after = tail.get(digits).copied();
    let lead = |len: usize| [head, &tail[..len]].concat();
    if digits >= DIGITS {
        // 15 digits and more bytes: above every key of this 15-digit start.
        return match back {
            false => successor(head, &tail[..DIGITS]),
            true => Skip::Below([lead(DIGITS), vec![0]].concat()),
        };
    }
    // Fewer digits, then `after` (or the end): not a digit.
    let low = after.is_none_or(|b| b < b'0');
    match (back, low) {
        // Below every key that goes on with a digit.
        (false, true) => Skip::From([lead(digits), b"0".to_vec()].concat()),
        (true, true) => Skip::Below(lead(digits)),
        // Above every key that goes on with a digit.
        (false, false) => successor(head, &tail[..digits]),
        (true, false) => Skip::Below([lead(digits), b":".to_vec()].concat()),
    }
}

/// The first key above every key that starts with `head` + `digits`: the
/// digits with trailing 9s dropped and the last one incremented.
fn successor(head: &[u8], digits: &[u8]) -> Skip {
    let kept = digits.iter().rposition(|&b| b != b'9');
    match kept {
        None => Skip::Done,
        Some(i) => {
            let mut next = [head, &digits[..=i]].concat();
            if let Some(last) = next.last_mut() {
                *last += 1;
            }
            Skip::From(next)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: usize = 5; // "jobs-"

    #[test]
    fn the_shape_is_the_head_and_15_digits() {
        assert!(is_shaped(HEAD, b"jobs-500000000000000"));
        assert!(!is_shaped(HEAD, b"jobs-50000000000000"));
        assert!(!is_shaped(HEAD, b"jobs-5000000000000000"));
        assert!(!is_shaped(HEAD, b"jobs-50000000000000x"));
        assert!(!is_shaped(HEAD, b"jobs-2-500000000000000"));
    }

    #[test]
    fn a_nested_queue_is_stepped_over_at_once() {
        let nested = b"jobs-2-500000000000000";
        assert_eq!(skip(HEAD, nested, false), Skip::From(b"jobs-20".to_vec()));
        assert_eq!(skip(HEAD, nested, true), Skip::Below(b"jobs-2".to_vec()));
        let above = b"jobs-12x";
        assert_eq!(skip(HEAD, above, false), Skip::From(b"jobs-13".to_vec()));
        assert_eq!(skip(HEAD, above, true), Skip::Below(b"jobs-12:".to_vec()));
        assert_eq!(skip(HEAD, b"jobs-199x", false), Skip::From(b"jobs-2".to_vec()));
        assert_eq!(skip(HEAD, b"jobs-99x", false), Skip::Done);
        let long = b"jobs-1234567890123459-x";
        assert_eq!(skip(HEAD, long, false), Skip::From(b"jobs-123456789012346".to_vec()));
        assert_eq!(skip(HEAD, long, true), Skip::Below(b"jobs-123456789012345\0".to_vec()));
        assert_eq!(skip(HEAD, b"jobs-", false), Skip::From(b"jobs-0".to_vec()));
    }
}
