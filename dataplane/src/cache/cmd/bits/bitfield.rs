//! BITFIELD and BITFIELD_RO: GET, SET and INCRBY of signed and unsigned fields up to 64
//! (signed) or 63 (unsigned) bits at any bit offset, with OVERFLOW WRAP, SAT or FAIL.

use super::{bit_offset, edit, read_str};
use crate::cache::store::{Store, WrongType};
use crate::proto::resp::errors::{
    BITFIELD_OVERFLOW, BITFIELD_RO_GET_ONLY, BITFIELD_TYPE, BIT_OFFSET, NOT_INT, SYNTAX, WRONGTYPE,
};
use crate::proto::resp::parse::parse_i64;
use crate::proto::resp::write::Out;
use crate::proto::resp::Args;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Overflow {
    Wrap,
    Sat,
    Fail,
}

#[derive(Clone, Copy, Debug)]
enum FieldOp {
    Get,
    Set(i64),
    Incrby(i64),
}

/// One BITFIELD operation on a field of `bits` bits (1 to 64 signed, 1 to 63 unsigned).
#[derive(Clone, Copy, Debug)]
struct Field {
    op: FieldOp,
    offset: u64,
    bits: u32,
    signed: bool,
    overflow: Overflow,
}

/// `i<n>` or `u<n>`: (signed, bits).
fn field_type(arg: &[u8]) -> Option<(bool, u32)> {
    let (&sign, digits) = arg.split_first()?;
    let signed = match sign {
        b'i' => true,
        b'u' => false,
        _ => return None,
    };
    let bits = parse_i64(digits)?;
    let max = if signed { 64 } else { 63 };
    (1..=max).contains(&bits).then_some((signed, bits as u32))
}

/// BITFIELD's operations, checked as Redis checks them (in order, the first bad one
/// answers), and the last bit a SET or INCRBY writes (None when there is none).
fn parse_fields(a: &Args) -> Result<(Vec<Field>, Option<u64>), &'static str> {
    let mut fields = Vec::new();
    let mut overflow = Overflow::Wrap;
    let mut last_write: Option<u64> = None;
    let mut j = 2;
    while j < a.len() {
        let more = a.len() - j - 1;
        let op = if a.eq(j, "GET") && more >= 2 {
            FieldOp::Get
        } else if a.eq(j, "SET") && more >= 3 {
            FieldOp::Set(0)
        } else if a.eq(j, "INCRBY") && more >= 3 {
            FieldOp::Incrby(0)
        } else if a.eq(j, "OVERFLOW") && more >= 1 {
            overflow = if a.eq(j + 1, "WRAP") {
                Overflow::Wrap
            } else if a.eq(j + 1, "SAT") {
                Overflow::Sat
            } else if a.eq(j + 1, "FAIL") {
                Overflow::Fail
            } else {
                return Err(BITFIELD_OVERFLOW);
            };
            j += 2;
            continue;
        } else {
            return Err(SYNTAX);
        };
        let (signed, bits) = field_type(a.get(j + 1)).ok_or(BITFIELD_TYPE)?;
        let offset = bit_offset(a.get(j + 2), Some(bits)).ok_or(BIT_OFFSET)?;
        let op = match op {
            FieldOp::Get => FieldOp::Get,
            write => {
                let end = offset + u64::from(bits) - 1;
                last_write = Some(last_write.map_or(end, |l| l.max(end)));
                let v = a.int(j + 3).ok_or(NOT_INT)?;
                match write {
                    FieldOp::Set(_) => FieldOp::Set(v),
                    _ => FieldOp::Incrby(v),
                }
            }
        };
        fields.push(Field {
            op,
            offset,
            bits,
            signed,
            overflow,
        });
        j += if matches!(op, FieldOp::Get) { 3 } else { 4 };
    }
    Ok((fields, last_write))
}

/// The bytes a field of `bits` bits at bit `offset` spans: (first byte, count, the
/// field's shift from the right of those bytes read as one big-endian number).
fn field_span(offset: u64, bits: u32) -> (usize, usize, u32) {
    let within = (offset & 7) as u32;
    let count = (within + bits).div_ceil(8);
    (
        (offset >> 3) as usize,
        count as usize,
        count * 8 - within - bits,
    )
}

/// The raw bits of a field, zero past the end of `v`.
fn get_field(v: &[u8], offset: u64, bits: u32) -> u64 {
    let (first, count, shift) = field_span(offset, bits);
    let mut n: u128 = 0;
    for i in 0..count {
        n = (n << 8) | u128::from(v.get(first + i).copied().unwrap_or(0));
    }
    ((n >> shift) & field_mask(bits)) as u64
}

/// Write the low `bits` bits of `value` as a field (the bytes it spans are inside `v`).
fn set_field(v: &mut [u8], offset: u64, bits: u32, value: u64) {
    let (first, count, shift) = field_span(offset, bits);
    let Some(bytes) = v.get_mut(first..first + count) else {
        return;
    };
    let mut n: u128 = 0;
    for b in bytes.iter() {
        n = (n << 8) | u128::from(*b);
    }
    let mask = field_mask(bits) << shift;
    n = (n & !mask) | ((u128::from(value) << shift) & mask);
    for (i, b) in bytes.iter_mut().rev().enumerate() {
        *b = (n >> (8 * i)) as u8;
    }
}

fn field_mask(bits: u32) -> u128 {
    (1u128 << bits) - 1
}

/// A field's raw bits as the number its type reads.
fn field_value(raw: u64, f: &Field) -> i128 {
    if f.signed && raw >> (f.bits - 1) & 1 == 1 {
        i128::from(raw) - (1i128 << f.bits)
    } else {
        i128::from(raw)
    }
}

/// The number as `bits` bits wrapped into the type's range (two's complement).
fn wrap(n: i128, f: &Field) -> i128 {
    let m = n.rem_euclid(1i128 << f.bits);
    if f.signed && m >= 1i128 << (f.bits - 1) {
        m - (1i128 << f.bits)
    } else {
        m
    }
}

/// Run one SET or INCRBY on `v` (long enough to hold the field): the reply (None: a FAIL
/// overflow, nothing written) and whether a bit changed.
fn write_field(v: &mut [u8], f: &Field) -> (Option<i64>, bool) {
    let raw = get_field(v, f.offset, f.bits);
    let old = field_value(raw, f);
    let (min, max) = if f.signed {
        (-(1i128 << (f.bits - 1)), (1i128 << (f.bits - 1)) - 1)
    } else {
        (0, (1i128 << f.bits) - 1)
    };
    let target = match f.op {
        // An unsigned field reads the value as Redis does: its 64 bits unsigned.
        FieldOp::Set(x) if !f.signed => i128::from(x as u64),
        FieldOp::Set(x) => i128::from(x),
        FieldOp::Incrby(d) => old + i128::from(d),
        FieldOp::Get => old,
    };
    let new = if target < min || target > max {
        match f.overflow {
            Overflow::Wrap => wrap(target, f),
            Overflow::Sat if target > max => max,
            Overflow::Sat => min,
            Overflow::Fail => return (None, false),
        }
    } else {
        target
    };
    let new_raw = (new as u64) & (field_mask(f.bits) as u64);
    set_field(v, f.offset, f.bits, new_raw);
    let reply = if matches!(f.op, FieldOp::Set(_)) {
        old
    } else {
        new
    };
    (Some(reply as i64), new_raw != raw)
}

fn get_reply(v: &[u8], f: &Field) -> i64 {
    field_value(get_field(v, f.offset, f.bits), f) as i64
}

pub(super) fn bitfield(store: &mut Store, a: &Args, slot: u16, now: u64, ro: bool, out: &mut Out) {
    let (fields, last_write) = match parse_fields(a) {
        Ok(p) => p,
        Err(e) => return out.error(e),
    };
    let key = a.get(1);
    let Some(last_write) = last_write else {
        // Only GETs: a read; a missing key reads as zeros.
        let v = match read_str(store, slot, key, now) {
            Ok(v) => v.unwrap_or(&[]),
            Err(WrongType) => return out.error(WRONGTYPE),
        };
        out.array(fields.len());
        for f in &fields {
            out.int(get_reply(v, f));
        }
        return;
    };
    if ro {
        return out.error(BITFIELD_RO_GET_ONLY);
    }
    let len = (last_write >> 3) as usize + 1;
    let r = edit(store, slot, key, len, now, |v, grew| {
        let mut replies = Vec::with_capacity(fields.len());
        let mut changed = grew;
        for f in &fields {
            let reply = match f.op {
                FieldOp::Get => Some(get_reply(v, f)),
                _ => {
                    let (reply, bits_changed) = write_field(v, f);
                    changed |= bits_changed;
                    reply
                }
            };
            replies.push(reply);
        }
        (replies, changed)
    });
    match r {
        Ok(replies) => {
            out.array(replies.len());
            for r in replies {
                match r {
                    Some(n) => out.int(n),
                    None => out.null(),
                }
            }
        }
        Err(WrongType) => out.error(WRONGTYPE),
    }
}
