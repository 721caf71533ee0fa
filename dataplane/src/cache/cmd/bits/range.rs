//! GETRANGE (and its alias SUBSTR) and SETRANGE: byte ranges of a string, read with
//! Redis's clamping of negative indexes, written in place with the string grown by zeros.

use super::{clamp_range, edit, read_str};
use crate::cache::entry::KIND_STR;
use crate::cache::store::{Store, WrongType};
use crate::limits::STRING_BYTES_MAX;
use crate::proto::resp::errors::{NOT_INT, OFFSET_OUT_OF_RANGE, STRING_TOO_LONG, WRONGTYPE};
use crate::proto::resp::write::Out;
use crate::proto::resp::Args;

pub(super) fn getrange(store: &mut Store, a: &Args, slot: u16, now: u64, out: &mut Out) {
    let (Some(start), Some(end)) = (a.int(2), a.int(3)) else {
        return out.error(NOT_INT);
    };
    let v = match read_str(store, slot, a.get(1), now) {
        Ok(v) => v.unwrap_or(&[]),
        Err(WrongType) => return out.error(WRONGTYPE),
    };
    if start < 0 && end < 0 && start > end {
        return out.bulk(b"");
    }
    match clamp_range(start, end, v.len() as i64) {
        Some((s, e)) => out.bulk(&v[s as usize..=e as usize]),
        None => out.bulk(b""),
    }
}

pub(super) fn setrange(store: &mut Store, a: &Args, slot: u16, now: u64, out: &mut Out) {
    let Some(offset) = a.int(2) else {
        return out.error(NOT_INT);
    };
    let Ok(offset) = usize::try_from(offset) else {
        return out.error(OFFSET_OUT_OF_RANGE);
    };
    let (key, value) = (a.get(1), a.get(3));
    let current = match store.peek(slot, key, now) {
        Some(e) if e.kind() != KIND_STR => return out.error(WRONGTYPE),
        e => e.map(|e| e.value().len()),
    };
    if value.is_empty() {
        // Setting nothing creates nothing and answers the length there is.
        return out.int(current.unwrap_or(0) as i64);
    }
    let Some(end) = offset
        .checked_add(value.len())
        .filter(|&e| e <= STRING_BYTES_MAX)
    else {
        return out.error(STRING_TOO_LONG);
    };
    let r = edit(store, slot, key, end, now, |v, _| {
        v[offset..end].copy_from_slice(value);
        (v.len(), true)
    });
    match r {
        Ok(len) => out.int(len as i64),
        Err(WrongType) => out.error(WRONGTYPE),
    }
}
