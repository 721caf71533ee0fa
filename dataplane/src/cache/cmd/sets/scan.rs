//! SSCAN key cursor [MATCH pattern] [COUNT count] over a set's own cursor order.

use super::member;

use crate::cache::cmd::scan::{parse_cursor, parse_options, ScanOptions};
use crate::cache::store::{glob_match, Found, Store};
use crate::proto::resp::errors::{INVALID_CURSOR, WRONGTYPE};
use crate::proto::resp::write::Out;
use crate::proto::resp::Args;

/// SSCAN key cursor [MATCH pattern] [COUNT count]. The cursor is checked before the key,
/// the options after it (a missing key answers an empty scan whatever they are).
pub(super) fn sscan(store: &mut Store, a: &Args, slot: u16, now: u64, out: &mut Out) {
    let Some(cursor) = parse_cursor(a.get(2)) else {
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
    let ScanOptions { count, pattern } = match parse_options(a, 3) {
        Ok(o) => o,
        Err(e) => return out.error(e),
    };
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
