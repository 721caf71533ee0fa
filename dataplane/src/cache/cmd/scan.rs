//! What HSCAN, SSCAN and ZSCAN share: the cursor's syntax and the `[MATCH pattern]
//! [COUNT count]` options after it.

use crate::proto::resp::errors::{NOT_INT, SYNTAX};
use crate::proto::resp::Args;

/// A cursor as Redis reads it (`strtoul`: an optional sign, a minus wrapping around; no
/// spaces, nothing after the digits, nothing past `u64`).
pub(crate) fn parse_cursor(b: &[u8]) -> Option<u64> {
    let (neg, digits) = match b.first()? {
        b'-' => (true, &b[1..]),
        b'+' => (false, &b[1..]),
        _ => (false, b),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let v: u64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Some(if neg { v.wrapping_neg() } else { v })
}

/// The options of a key's scan. `pattern` is `None` for no filter (also for `MATCH *`).
pub(crate) struct ScanOptions<'a> {
    pub count: usize,
    pub pattern: Option<&'a [u8]>,
}

/// Reads `[MATCH pattern] [COUNT count]` pairs from argument `from` on, in any order, the
/// last of each winning (as Redis does). A COUNT below 1, an unknown option or an option
/// without its value is a syntax error; a COUNT that is not an integer answers NOT_INT.
pub(crate) fn parse_options<'a>(
    a: &Args<'a>,
    from: usize,
) -> Result<ScanOptions<'a>, &'static str> {
    let mut o = ScanOptions {
        count: 10,
        pattern: None,
    };
    let mut i = from;
    while i < a.len() {
        if i + 1 >= a.len() {
            return Err(SYNTAX);
        }
        if a.eq(i, "COUNT") {
            o.count = match a.int(i + 1) {
                Some(n) if n >= 1 => usize::try_from(n).map_err(|_| SYNTAX)?,
                Some(_) => return Err(SYNTAX),
                None => return Err(NOT_INT),
            };
        } else if a.eq(i, "MATCH") {
            o.pattern = Some(a.get(i + 1)).filter(|p| *p != b"*");
        } else {
            return Err(SYNTAX);
        }
        i += 2;
    }
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_follow_strtoul() {
        assert_eq!(parse_cursor(b"0"), Some(0));
        assert_eq!(parse_cursor(b"+7"), Some(7));
        assert_eq!(parse_cursor(b"-1"), Some(u64::MAX));
        assert_eq!(parse_cursor(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_cursor(b"18446744073709551616"), None);
        for bad in [&b""[..], b" 1", b"1 ", b"1x", b"-", b"0x10"] {
            assert_eq!(parse_cursor(bad), None, "{bad:?}");
        }
    }
}
