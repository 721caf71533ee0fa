//! SSCAN key cursor [MATCH pattern] [COUNT count] over a set's own cursor order.

use super::member;

use crate::cache::store::{glob_match, Found, Store};
use crate::proto::resp::errors::{INVALID_CURSOR, NOT_INT, SYNTAX, WRONGTYPE};
use crate::proto::resp::write::Out;
use crate::proto::resp::Args;

/// SSCAN key cursor [MATCH pattern] [COUNT count]. The cursor is checked before the key,
/// the options after it (a missing key answers an empty scan whatever they are).
pub(super) fn sscan(store: &mut Store, a: &Args, slot: u16, now: u64, out: &mut Out) {
    let Some(cursor) = std::str::from_utf8(a.get(2))
        .ok()
        .and_then(|c| c.parse::<u64>().ok())
    else {
        return out.error(INVALID_CURSOR);
    };
    let s = match store.read(slot, a.get(1), now) {
        Found::Set(s) => s,
        Found::Missing => {
            out.array(2);
            out.bulk(b"0");
            return out.array(0);
        }
        _ => return out.error(WRONGTYPE),
    };
    let (mut count, mut pattern) = (10usize, None);
    let mut i = 3;
    while i < a.len() {
        if i + 1 >= a.len() {
            return out.error(SYNTAX);
        }
        if a.eq(i, "COUNT") {
            count = match a.int(i + 1) {
                Some(n) if n >= 1 => n as usize,
                Some(_) => return out.error(SYNTAX),
                None => return out.error(NOT_INT),
            };
        } else if a.eq(i, "MATCH") {
            // "*" matches everything: no filter at all.
            pattern = Some(a.get(i + 1)).filter(|p| *p != b"*");
        } else {
            return out.error(SYNTAX);
        }
        i += 2;
    }
    let mut found = Vec::new();
    let next = s.scan(cursor, count, |m| {
        if pattern.is_none_or(|p| m.with_bytes(|b| glob_match(p, b, false))) {
            found.push(m);
        }
    });
    out.array(2);
    out.bulk(itoa::Buffer::new().format(next).as_bytes());
    out.array(found.len());
    found.into_iter().for_each(|m| member(out, m));
}
