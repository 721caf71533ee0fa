//! BITOP AND, OR, XOR, NOT: the destination gets the bytewise result over the longest
//! input (shorter ones read as zeros), or is deleted when every input is empty or missing.

use super::read_str;
use crate::cache::entry::Entry;
use crate::cache::slot::key_slot;
use crate::cache::store::{Store, WrongType};
use crate::proto::resp::errors::{BITOP_NOT_ONE_KEY, SYNTAX, WRONGTYPE};
use crate::proto::resp::write::Out;
use crate::proto::resp::Args;

#[derive(Clone, Copy, PartialEq, Eq)]
enum BitOp {
    And,
    Or,
    Xor,
    Not,
}

pub(super) fn bitop(store: &mut Store, a: &Args, now: u64, out: &mut Out) {
    let op = if a.eq(1, "AND") {
        BitOp::And
    } else if a.eq(1, "OR") {
        BitOp::Or
    } else if a.eq(1, "XOR") {
        BitOp::Xor
    } else if a.eq(1, "NOT") {
        BitOp::Not
    } else {
        return out.error(SYNTAX);
    };
    if op == BitOp::Not && a.len() != 4 {
        return out.error(BITOP_NOT_ONE_KEY);
    }
    // First the sources' types and lengths (a missing key is an empty string) ...
    let mut max_len = 0;
    for i in 3..a.len() {
        let k = a.get(i);
        match read_str(store, key_slot(k), k, now) {
            Ok(v) => max_len = max_len.max(v.map_or(0, <[u8]>::len)),
            Err(WrongType) => return out.error(WRONGTYPE),
        }
    }
    let dest = a.get(2);
    let dest_slot = key_slot(dest);
    if max_len == 0 {
        store.remove(dest_slot, dest);
        return out.int(0);
    }
    // ... then the result, one source at a time, shorter ones zero-padded, built where it
    // will be stored (no copy of a result that may be hundreds of megabytes).
    let mut result = Entry::string(dest, b"", None, 0);
    result.grow_value(max_len);
    let res = result.value_mut();
    for i in 3..a.len() {
        let k = a.get(i);
        let v = store
            .peek(key_slot(k), k, now)
            .map_or(&[][..], Entry::value);
        if i == 3 {
            res[..v.len()].copy_from_slice(v);
            if op == BitOp::Not {
                res.iter_mut().for_each(|b| *b = !*b);
            }
            continue;
        }
        match op {
            BitOp::And => {
                res.iter_mut().zip(v).for_each(|(r, s)| *r &= s);
                res[v.len()..].fill(0);
            }
            BitOp::Or => res.iter_mut().zip(v).for_each(|(r, s)| *r |= s),
            BitOp::Xor => res.iter_mut().zip(v).for_each(|(r, s)| *r ^= s),
            BitOp::Not => {}
        }
    }
    // As SET: the destination's old value (of any type) and TTL go.
    store.put(dest_slot, result, now);
    out.int(max_len as i64);
}
