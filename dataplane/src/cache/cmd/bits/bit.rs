//! SETBIT, GETBIT, BITCOUNT and BITPOS (their BYTE and BIT units): single bits of a string
//! and the counting and finding of bits over a range of it.

use super::scan::{count_bits, find_bit};
use super::{bit_offset, clamp_range, edit, read_str};
use crate::cache::store::{Store, WrongType};
use crate::proto::resp::errors::{BITPOS_BIT, BIT_OFFSET, BIT_VALUE, NOT_INT, SYNTAX, WRONGTYPE};
use crate::proto::resp::write::Out;
use crate::proto::resp::Args;

pub(super) fn setbit(store: &mut Store, a: &Args, slot: u16, now: u64, out: &mut Out) {
    let Some(offset) = bit_offset(a.get(2), None) else {
        return out.error(BIT_OFFSET);
    };
    let on = match a.int(3) {
        Some(0) => false,
        Some(1) => true,
        _ => return out.error(BIT_VALUE),
    };
    let byte = (offset >> 3) as usize;
    let mask = 0x80u8 >> (offset & 7);
    let r = edit(store, slot, a.get(1), byte + 1, now, |v, _| {
        let was = v[byte] & mask != 0;
        if on {
            v[byte] |= mask;
        } else {
            v[byte] &= !mask;
        }
        (was, was != on)
    });
    match r {
        Ok(was) => out.int(i64::from(was)),
        Err(WrongType) => out.error(WRONGTYPE),
    }
}

pub(super) fn getbit(store: &mut Store, a: &Args, slot: u16, now: u64, out: &mut Out) {
    let Some(offset) = bit_offset(a.get(2), None) else {
        return out.error(BIT_OFFSET);
    };
    match read_str(store, slot, a.get(1), now) {
        Ok(v) => {
            let byte = v.and_then(|v| v.get((offset >> 3) as usize)).unwrap_or(&0);
            out.int(i64::from(byte & (0x80 >> (offset & 7)) != 0));
        }
        Err(WrongType) => out.error(WRONGTYPE),
    }
}

/// `BYTE` or `BIT` (the unit of BITCOUNT's and BITPOS's range): true for BIT.
fn unit_is_bit(a: &Args, i: usize) -> Option<bool> {
    if a.eq(i, "BIT") {
        Some(true)
    } else if a.eq(i, "BYTE") {
        Some(false)
    } else {
        None
    }
}

/// A byte range `first ..= last` as the bit range it covers.
fn byte_bits(first: u64, last: u64) -> (u64, u64) {
    (first << 3, (last << 3) + 7)
}

pub(super) fn bitcount(store: &mut Store, a: &Args, slot: u16, now: u64, out: &mut Out) {
    // As Redis 7.0 does: a missing key answers 0 before the arguments are looked at.
    let v = match read_str(store, slot, a.get(1), now) {
        Ok(Some(v)) => v,
        Ok(None) => return out.int(0),
        Err(WrongType) => return out.error(WRONGTYPE),
    };
    let len = v.len() as i64;
    let range = match a.len() {
        2 => clamp_range(0, -1, len).map(|(s, e)| byte_bits(s, e)),
        4 | 5 => {
            let (Some(start), Some(end)) = (a.int(2), a.int(3)) else {
                return out.error(NOT_INT);
            };
            if start < 0 && end < 0 && start > end {
                return out.int(0);
            }
            let bit = if a.len() == 5 {
                match unit_is_bit(a, 4) {
                    Some(b) => b,
                    None => return out.error(SYNTAX),
                }
            } else {
                false
            };
            if bit {
                clamp_range(start, end, len * 8)
            } else {
                clamp_range(start, end, len).map(|(s, e)| byte_bits(s, e))
            }
        }
        _ => return out.error(SYNTAX),
    };
    out.int(range.map_or(0, |(from, to)| count_bits(v, from, to)) as i64);
}

pub(super) fn bitpos(store: &mut Store, a: &Args, slot: u16, now: u64, out: &mut Out) {
    let bit = match a.int(2) {
        Some(0) => false,
        Some(1) => true,
        Some(_) => return out.error(BITPOS_BIT),
        None => return out.error(NOT_INT),
    };
    // A missing key is an endless run of zeros, whatever the range (Redis 7.0).
    let v = match read_str(store, slot, a.get(1), now) {
        Ok(Some(v)) => v,
        Ok(None) => return out.int(if bit { -1 } else { 0 }),
        Err(WrongType) => return out.error(WRONGTYPE),
    };
    let len = v.len() as i64;
    let (range, end_given) = match a.len() {
        3 => (clamp_range(0, -1, len).map(|(s, e)| byte_bits(s, e)), false),
        4..=6 => {
            let Some(start) = a.int(3) else {
                return out.error(NOT_INT);
            };
            let is_bit = if a.len() == 6 {
                match unit_is_bit(a, 5) {
                    Some(b) => b,
                    None => return out.error(SYNTAX),
                }
            } else {
                false
            };
            let end = if a.len() >= 5 {
                match a.int(4) {
                    Some(e) => e,
                    None => return out.error(NOT_INT),
                }
            } else {
                -1
            };
            let range = if is_bit {
                clamp_range(start, end, len * 8)
            } else {
                clamp_range(start, end, len).map(|(s, e)| byte_bits(s, e))
            };
            (range, a.len() >= 5)
        }
        _ => return out.error(SYNTAX),
    };
    let Some((from, to)) = range else {
        // An empty range holds neither a 0 nor a 1.
        return out.int(-1);
    };
    let pos = match find_bit(v, bit, from, to) {
        Some(p) => p as i64,
        // Without an explicit end the string counts as zero-padded on the right.
        None if !bit && !end_given => to as i64 + 1,
        None => -1,
    };
    out.int(pos);
}
