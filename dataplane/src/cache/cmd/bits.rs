//! Bitmaps and string ranges: SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP, BITFIELD and
//! BITFIELD_RO; GETRANGE, SETRANGE, SUBSTR and LCS. Redis 7.0's semantics, replies and
//! error texts (`bitops.c`, `t_string.c`), over string entries (`KIND_STR`).
//!
//! Bit 0 is the most significant bit of the first byte (Redis's order); a missing key or
//! the bytes past a string's end read as zeros. Writes edit the value in place
//! ([`Store::edit_str`]): a SETBIT inside a string costs O(1) whatever its length, and a
//! write past the end grows the entry once with zeros (Redis's `sdsgrowzero`). No string
//! grows past [`STRING_BYTES_MAX`] (Redis's proto-max-bulk-len). BITCOUNT and BITPOS work a
//! 64-bit word at a time.

use crate::cache::entry::{Entry, KIND_STR};
use crate::cache::slot::key_slot;
use crate::cache::store::{Found, Store, WrongType};
use crate::limits::STRING_BYTES_MAX;
use crate::proto::resp::command::bits::BitCmd;
use crate::proto::resp::command::{Cmd, Spec};
use crate::proto::resp::errors::{
    wrong_args, BITFIELD_OVERFLOW, BITFIELD_RO_GET_ONLY, BITFIELD_TYPE, BITOP_NOT_ONE_KEY,
    BITPOS_BIT, BIT_OFFSET, BIT_VALUE, LCS_LEN_AND_IDX, LCS_NOT_STRINGS, LCS_NO_MEMORY,
    LCS_TABLE_TOO_BIG, LCS_TOO_LONG, NOT_INT, OFFSET_OUT_OF_RANGE, STRING_TOO_LONG, SYNTAX,
    WRONGTYPE,
};
use crate::proto::resp::parse::parse_i64;
use crate::proto::resp::write::Out;
use crate::proto::resp::Args;

pub fn exec(store: &mut Store, spec: &Spec, a: &Args, slot: u16, now: u64, out: &mut Out) {
    let Cmd::Bits(cmd) = spec.cmd else {
        return out.error(&wrong_args(spec.name));
    };
    match cmd {
        BitCmd::Setbit => setbit(store, a, slot, now, out),
        BitCmd::Getbit => getbit(store, a, slot, now, out),
        BitCmd::Bitcount => bitcount(store, a, slot, now, out),
        BitCmd::Bitpos => bitpos(store, a, slot, now, out),
        BitCmd::Bitop => bitop(store, a, now, out),
        BitCmd::Bitfield => bitfield(store, a, slot, now, false, out),
        BitCmd::BitfieldRo => bitfield(store, a, slot, now, true, out),
        BitCmd::Getrange | BitCmd::Substr => getrange(store, a, slot, now, out),
        BitCmd::Setrange => setrange(store, a, slot, now, out),
        BitCmd::Lcs => lcs(store, a, now, out),
    }
}

// ----- reading and editing a string ---------------------------------------------------------

/// `key`'s string for reading (a hit or miss is counted): None when absent.
fn read_str<'s>(
    store: &'s mut Store,
    slot: u16,
    key: &[u8],
    now: u64,
) -> Result<Option<&'s [u8]>, WrongType> {
    match store.read(slot, key, now) {
        Found::Str(v) => Ok(Some(v)),
        Found::Missing => Ok(None),
        _ => Err(WrongType),
    }
}

/// Edit `key`'s string, created empty when absent, lengthened with zeros to at least `len`
/// bytes. `f` gets the bytes and whether the key is new or grew (Redis's "dirty": such a
/// write counts as a change even when it sets no bit), and returns its result and whether
/// it changed a byte.
fn edit<R>(
    store: &mut Store,
    slot: u16,
    key: &[u8],
    len: usize,
    now: u64,
    f: impl FnOnce(&mut [u8], bool) -> (R, bool),
) -> Result<R, WrongType> {
    let (grows, created) = match store.peek(slot, key, now) {
        Some(e) if e.kind() != KIND_STR => return Err(WrongType),
        Some(e) => (e.value().len() < len, false),
        None => {
            // Made at its final length: one write, as Redis counts it (the put was it).
            store.put(slot, Entry::string(key, &vec![0; len], None, 0), now);
            (true, true)
        }
    };
    // The key is a live string now, so `edit_str` finds it.
    store
        .edit_str(slot, key, len, now, |v| {
            let (r, changed) = f(v, grows);
            (r, changed && !created)
        })
        .ok_or(WrongType)
}

/// A bit offset argument (GETBIT, SETBIT, BITFIELD). With `field_bits`, `#n` names the
/// n-th field of that width. Refused when negative or when its byte would be at or past
/// [`STRING_BYTES_MAX`].
fn bit_offset(arg: &[u8], field_bits: Option<u32>) -> Option<u64> {
    let (digits, scale) = match (arg.split_first(), field_bits) {
        (Some((b'#', rest)), Some(bits)) => (rest, i64::from(bits)),
        _ => (arg, 1),
    };
    let v = parse_i64(digits)?.checked_mul(scale)?;
    let v = u64::try_from(v).ok()?;
    ((v >> 3) < STRING_BYTES_MAX as u64).then_some(v)
}

/// Redis's conversion of a `start end` pair (negative counts from the end) over `len`
/// units into an inclusive range inside `0..len`; None when it is empty.
fn clamp_range(start: i64, end: i64, len: i64) -> Option<(u64, u64)> {
    let start = if start < 0 { start + len } else { start }.max(0);
    let end = if end < 0 { end + len } else { end }.max(0).min(len - 1);
    (start <= end).then_some((start as u64, end as u64))
}

// ----- bit scanning -------------------------------------------------------------------------

/// The 8 bytes of `v` from byte `at` as a big-endian word (bit 0 the most significant),
/// zero-padded past the end.
#[inline]
fn word_at(v: &[u8], at: usize) -> u64 {
    if let Some(w) = v.get(at..at + 8) {
        return u64::from_be_bytes(w.try_into().unwrap_or_default());
    }
    let mut w = [0u8; 8];
    if let Some(tail) = v.get(at..) {
        let n = tail.len().min(8);
        w[..n].copy_from_slice(&tail[..n]);
    }
    u64::from_be_bytes(w)
}

/// Bytes BITPOS jumps at once over a run of the value it does not look for.
const SKIP_BYTES: usize = 32;

/// Set bits in `v`, a word at a time.
fn popcount(v: &[u8]) -> u64 {
    let words = v.chunks_exact(8);
    let tail: u64 = words
        .remainder()
        .iter()
        .map(|b| u64::from(b.count_ones()))
        .sum();
    words
        .map(|w| u64::from(word_at(w, 0).count_ones()))
        .sum::<u64>()
        + tail
}

/// Set bits among bits `from ..= to` of `v` (both inside it).
fn count_bits(v: &[u8], from: u64, to: u64) -> u64 {
    let (first, last) = ((from >> 3) as usize, (to >> 3) as usize);
    let Some(bytes) = v.get(first..=last) else {
        return 0;
    };
    let mut n = popcount(bytes);
    // Take away the bits of the edge bytes that lie outside the range.
    let before = (0xFFu32 >> (from & 7)) as u8;
    let after = (0xFFu32 >> ((to & 7) + 1)) as u8;
    n -= u64::from((bytes[0] & !before).count_ones());
    n -= u64::from((bytes[bytes.len() - 1] & after).count_ones());
    n
}

/// The first bit equal to `bit` among bits `from ..= to` of `v` (both inside it), a word
/// at a time; runs of bytes that hold only the other value are jumped [`SKIP_BYTES`] at a
/// time.
fn find_bit(v: &[u8], bit: bool, from: u64, to: u64) -> Option<u64> {
    let other = if bit { 0u8 } else { 0xFF };
    let last_byte = (to >> 3) as usize;
    let mut at = from & !63;
    while at <= to {
        if at >= from {
            // Only bytes wholly inside the range, before the last one, are jumped.
            let mut b = (at >> 3) as usize;
            while b + SKIP_BYTES <= last_byte {
                let Some(run) = v.get(b..b + SKIP_BYTES) else {
                    break;
                };
                // No early exit inside the run, so that it compiles to vector operations.
                if run.iter().fold(0, |acc, &x| acc | (x ^ other)) != 0 {
                    break;
                }
                b += SKIP_BYTES;
            }
            at = (b as u64) << 3;
        }
        let mut w = word_at(v, (at >> 3) as usize);
        if !bit {
            w = !w;
        }
        if at < from {
            w &= u64::MAX >> (from - at);
        }
        if to - at < 63 {
            w &= u64::MAX << (63 - (to - at));
        }
        if w != 0 {
            return Some(at + u64::from(w.leading_zeros()));
        }
        at += 64;
    }
    None
}

// ----- SETBIT, GETBIT, BITCOUNT, BITPOS ---------------------------------------------------------

fn setbit(store: &mut Store, a: &Args, slot: u16, now: u64, out: &mut Out) {
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

fn getbit(store: &mut Store, a: &Args, slot: u16, now: u64, out: &mut Out) {
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

fn bitcount(store: &mut Store, a: &Args, slot: u16, now: u64, out: &mut Out) {
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

fn bitpos(store: &mut Store, a: &Args, slot: u16, now: u64, out: &mut Out) {
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

// ----- BITOP --------------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq)]
enum BitOp {
    And,
    Or,
    Xor,
    Not,
}

fn bitop(store: &mut Store, a: &Args, now: u64, out: &mut Out) {
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

// ----- BITFIELD -----------------------------------------------------------------------------

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

fn bitfield(store: &mut Store, a: &Args, slot: u16, now: u64, ro: bool, out: &mut Out) {
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

// ----- GETRANGE, SETRANGE -------------------------------------------------------------------

fn getrange(store: &mut Store, a: &Args, slot: u16, now: u64, out: &mut Out) {
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

fn setrange(store: &mut Store, a: &Args, slot: u16, now: u64, out: &mut Out) {
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

// ----- LCS ----------------------------------------------------------------------------------

/// LCS's options.
struct LcsOpts {
    len: bool,
    idx: bool,
    with_match_len: bool,
    min_match_len: u64,
}

fn lcs_opts(a: &Args) -> Result<LcsOpts, &'static str> {
    let mut o = LcsOpts {
        len: false,
        idx: false,
        with_match_len: false,
        min_match_len: 0,
    };
    let mut j = 3;
    while j < a.len() {
        if a.eq(j, "IDX") {
            o.idx = true;
        } else if a.eq(j, "LEN") {
            o.len = true;
        } else if a.eq(j, "WITHMATCHLEN") {
            o.with_match_len = true;
        } else if a.eq(j, "MINMATCHLEN") && j + 1 < a.len() {
            o.min_match_len = a.int(j + 1).ok_or(NOT_INT)?.max(0) as u64;
            j += 1;
        } else {
            return Err(SYNTAX);
        }
        j += 1;
    }
    if o.len && o.idx {
        return Err(LCS_LEN_AND_IDX);
    }
    Ok(o)
}

/// One matching run LCS IDX reports: inclusive ranges in the first and second string.
struct Match {
    a: (u32, u32),
    b: (u32, u32),
}

fn lcs(store: &mut Store, a: &Args, now: u64, out: &mut Out) {
    let (ka, kb) = (a.get(1), a.get(2));
    // The first string is copied so that both can be read at once.
    let x = match read_str(store, key_slot(ka), ka, now) {
        Ok(v) => v.unwrap_or(&[]).to_vec(),
        Err(WrongType) => return out.error(LCS_NOT_STRINGS),
    };
    let y = match read_str(store, key_slot(kb), kb, now) {
        Ok(v) => v.unwrap_or(&[]),
        Err(WrongType) => return out.error(LCS_NOT_STRINGS),
    };
    let o = match lcs_opts(a) {
        Ok(o) => o,
        Err(e) => return out.error(e),
    };
    if x.len() >= u32::MAX as usize - 1 || y.len() >= u32::MAX as usize - 1 {
        return out.error(LCS_TOO_LONG);
    }
    // The table Redis would build must fit its bound even when a smaller one does here.
    let cells = (x.len() as u64 + 1) * (y.len() as u64 + 1);
    if cells.saturating_mul(4) > STRING_BYTES_MAX as u64 {
        return out.error(LCS_TABLE_TOO_BIG);
    }
    if o.len {
        return out.int(i64::from(lcs_len(&x, y)));
    }
    let w = y.len() + 1;
    let mut t: Vec<u32> = Vec::new();
    if t.try_reserve_exact(cells as usize).is_err() {
        return out.error(LCS_NO_MEMORY);
    }
    // t[i * w + j]: the LCS length of x[..i] and y[..j]. Built a row at a time.
    t.resize(w, 0);
    let mut row = vec![0u32; w];
    for &xi in &x {
        let prev = &t[t.len() - w..];
        lcs_row(xi, y, prev, &mut row);
        t.extend_from_slice(&row);
    }
    let total = t[x.len() * w + y.len()];
    // Walk back from the end as Redis does, collecting the common string and the runs.
    let mut common = vec![0u8; total as usize];
    let mut left = total as usize;
    let mut matches: Vec<Match> = Vec::new();
    let unset = x.len() as u32;
    let (mut a_start, mut a_end, mut b_start, mut b_end) = (unset, 0u32, 0u32, 0u32);
    let (mut i, mut j) = (x.len(), y.len());
    while i > 0 && j > 0 {
        let mut emit = false;
        if x[i - 1] == y[j - 1] {
            common[left - 1] = x[i - 1];
            let (ii, jj) = ((i - 1) as u32, (j - 1) as u32);
            if a_start == unset {
                (a_start, a_end, b_start, b_end) = (ii, ii, jj, jj);
            } else if a_start == ii + 1 && b_start == jj + 1 {
                a_start -= 1;
                b_start -= 1;
            } else {
                emit = true;
            }
            if a_start == 0 || b_start == 0 {
                emit = true;
            }
            left -= 1;
            i -= 1;
            j -= 1;
        } else {
            if t[(i - 1) * w + j] > t[i * w + j - 1] {
                i -= 1;
            } else {
                j -= 1;
            }
            if a_start != unset {
                emit = true;
            }
        }
        if emit {
            let run = u64::from(a_end - a_start) + 1;
            if o.min_match_len == 0 || run >= o.min_match_len {
                matches.push(Match {
                    a: (a_start, a_end),
                    b: (b_start, b_end),
                });
            }
            a_start = unset;
        }
    }
    if !o.idx {
        return out.bulk(&common);
    }
    out.map(2);
    out.bulk(b"matches");
    out.array(matches.len());
    for m in &matches {
        out.array(2 + usize::from(o.with_match_len));
        out.array(2);
        out.int(i64::from(m.a.0));
        out.int(i64::from(m.a.1));
        out.array(2);
        out.int(i64::from(m.b.0));
        out.int(i64::from(m.b.1));
        if o.with_match_len {
            out.int(i64::from(m.a.1 - m.a.0) + 1);
        }
    }
    out.bulk(b"len");
    out.int(i64::from(total));
}

/// One row of the LCS table: `row[j]` for `x[i]` = `xi`, from the row above, `prev`.
#[inline]
fn lcs_row(xi: u8, y: &[u8], prev: &[u32], row: &mut [u32]) {
    let mut left = 0;
    for ((&yj, p), r) in y.iter().zip(prev.windows(2)).zip(row.iter_mut().skip(1)) {
        left = if xi == yj { p[0] + 1 } else { p[1].max(left) };
        *r = left;
    }
}

/// The LCS length alone, with two rows of the table.
fn lcs_len(x: &[u8], y: &[u8]) -> u32 {
    let mut prev = vec![0u32; y.len() + 1];
    let mut row = vec![0u32; y.len() + 1];
    for &xi in x {
        lcs_row(xi, y, &prev, &mut row);
        std::mem::swap(&mut prev, &mut row);
    }
    prev[y.len()]
}
#[cfg(test)]
mod tests {
    use super::super::testing::{run, store};
    use super::super::{exec_key, OomCheck};
    use super::*;
    use crate::proto::resp::command::lookup;

    /// Run a command whose arguments may hold any bytes, in RESP2 or RESP3.
    fn call(s: &mut Store, words: &[&[u8]], resp3: bool) -> Vec<u8> {
        let mut src = Vec::new();
        let mut ranges = Vec::new();
        for w in words {
            let at = src.len();
            src.extend_from_slice(w);
            ranges.push((at, src.len()));
        }
        let a = Args {
            src: &src,
            ranges: &ranges,
        };
        let spec = lookup(a.get(0)).expect("known command");
        assert!(spec.arity_ok(a.len()));
        let mut buf = Vec::new();
        let mut out = Out::new(&mut buf, resp3);
        exec_key(
            s,
            spec,
            &a,
            key_slot(a.get(1)),
            0,
            OomCheck::Refuse,
            &mut out,
        );
        buf
    }

    fn set(s: &mut Store, key: &str, v: &[u8]) {
        assert_eq!(call(s, &[b"SET", key.as_bytes(), v], false), b"+OK\r\n");
    }

    fn get(s: &mut Store, key: &str) -> Vec<u8> {
        let r = call(s, &[b"GET", key.as_bytes()], false);
        if r == b"$-1\r\n" {
            return Vec::new();
        }
        let body = r.splitn(2, |&b| b == b'\n').nth(1).unwrap().to_vec();
        body[..body.len() - 2].to_vec()
    }

    fn int(n: i64) -> String {
        format!(":{n}\r\n")
    }

    fn err(e: &str) -> String {
        format!("-{e}\r\n")
    }

    /// A naive model of every bit of a string, for fuzzing.
    fn bits_of(v: &[u8]) -> Vec<bool> {
        v.iter()
            .flat_map(|b| (0..8).map(move |i| b & (0x80 >> i) != 0))
            .collect()
    }

    fn rand(seed: &mut u64) -> u64 {
        crate::cache::store::xorshift64(seed)
    }

    #[test]
    fn setbit_and_getbit() {
        let mut s = store();
        assert_eq!(run(&mut s, 0, "SETBIT k 1 1"), int(0));
        assert_eq!(get(&mut s, "k"), [0b0100_0000]);
        assert_eq!(run(&mut s, 0, "SETBIT k 1 1"), int(1));
        assert_eq!(run(&mut s, 0, "SETBIT k 1 0"), int(1));
        assert_eq!(get(&mut s, "k"), [0]);
        // "@" is 01000000; "1" is 00110001.
        assert_eq!(run(&mut s, 0, "SET k @"), "+OK\r\n");
        assert_eq!(run(&mut s, 0, "SETBIT k 2 1"), int(0));
        assert_eq!(get(&mut s, "k"), [0b0110_0000]);
        assert_eq!(run(&mut s, 0, "SET k 1"), "+OK\r\n");
        assert_eq!(run(&mut s, 0, "SETBIT k 6 1"), int(0));
        assert_eq!(get(&mut s, "k"), [0b0011_0011]);
        assert_eq!(run(&mut s, 0, "SETBIT k 23 1"), int(0));
        assert_eq!(get(&mut s, "k"), [0b0011_0011, 0, 1]);
        assert_eq!(run(&mut s, 0, "GETBIT k 23"), int(1));
        assert_eq!(run(&mut s, 0, "GETBIT k 2"), int(1));
        assert_eq!(run(&mut s, 0, "GETBIT k 0"), int(0));
        assert_eq!(run(&mut s, 0, "GETBIT k 10000"), int(0));
        assert_eq!(run(&mut s, 0, "GETBIT nokey 0"), int(0));
        for bad in ["-1", "4294967296", "x", "#1"] {
            assert_eq!(
                run(&mut s, 0, &format!("SETBIT k {bad} 1")),
                err(BIT_OFFSET)
            );
            assert_eq!(run(&mut s, 0, &format!("GETBIT k {bad}")), err(BIT_OFFSET));
        }
        for bad in ["-1", "2", "10", "x"] {
            assert_eq!(run(&mut s, 0, &format!("SETBIT k 0 {bad}")), err(BIT_VALUE));
        }
        // The last bit proto-max-bulk-len allows, and the first it does not.
        let last = STRING_BYTES_MAX as u64 * 8 - 1;
        assert_eq!(run(&mut s, 0, &format!("GETBIT k {last}")), int(0));
        assert_eq!(
            run(&mut s, 0, &format!("GETBIT k {}", last + 1)),
            err(BIT_OFFSET)
        );
        run(&mut s, 0, "HSET l a b");
        assert_eq!(run(&mut s, 0, "SETBIT l 0 1"), err(WRONGTYPE));
        assert_eq!(run(&mut s, 0, "GETBIT l 0"), err(WRONGTYPE));
        s.check();
    }

    #[test]
    fn setbit_keeps_the_ttl_and_the_books() {
        let mut s = store();
        run(&mut s, 0, "SET k v EX 100");
        run(&mut s, 0, "SETBIT k 100000 1");
        assert_eq!(run(&mut s, 0, "STRLEN k"), int(12501));
        assert_eq!(run(&mut s, 0, "TTL k"), int(100));
        s.check();
        // An expired key is a missing key.
        assert_eq!(run(&mut s, 200_000, "SETBIT k 0 1"), int(0));
        assert_eq!(run(&mut s, 200_000, "STRLEN k"), int(1));
        assert_eq!(run(&mut s, 200_000, "TTL k"), int(-1));
        s.check();
    }

    #[test]
    fn edit_str_grows_in_place_and_skips_what_it_must_not_edit() {
        let mut s = store();
        run(&mut s, 0, "SET k ab PX 100");
        run(&mut s, 0, "HSET h f v");
        let slot = |k: &[u8]| key_slot(k);
        let r = s.edit_str(slot(b"k"), b"k", 4, 0, |v| {
            v[3] = b'!';
            (v.to_vec(), true)
        });
        assert_eq!(r.as_deref(), Some(&b"ab\0!"[..]));
        s.check();
        assert_eq!(s.edit_str(slot(b"h"), b"h", 1, 0, |_| ((), true)), None);
        assert_eq!(
            s.edit_str(slot(b"none"), b"none", 1, 0, |_| ((), true)),
            None
        );
        // An expired key is removed, not edited.
        assert_eq!(s.edit_str(slot(b"k"), b"k", 1, 100, |_| ((), true)), None);
        assert_eq!(run(&mut s, 100, "EXISTS k"), int(0));
        s.check();
    }

    #[test]
    fn setbit_fuzzing_against_a_model() {
        let mut s = store();
        let mut model = vec![false; 0];
        let mut seed = 9;
        for _ in 0..2000 {
            let bit = (rand(&mut seed) % 2048) as usize;
            let on = rand(&mut seed) % 2 == 1;
            let r = run(&mut s, 0, &format!("SETBIT k {bit} {}", on as u8));
            if model.len() <= bit {
                model.resize((bit / 8 + 1) * 8, false);
            }
            assert_eq!(r, int(model[bit] as i64));
            model[bit] = on;
            assert_eq!(bits_of(&get(&mut s, "k")), model);
        }
        s.check();
    }

    #[test]
    fn bitcount() {
        let mut s = store();
        assert_eq!(run(&mut s, 0, "BITCOUNT nokey"), int(0));
        assert_eq!(run(&mut s, 0, "BITCOUNT nokey 0 1000 bit"), int(0));
        // Redis 7.0 answers a missing key before it reads the range.
        assert_eq!(run(&mut s, 0, "BITCOUNT nokey 0"), int(0));
        run(&mut s, 0, "SET str xxxx");
        assert_eq!(run(&mut s, 0, "BITCOUNT str 4 10"), int(0));
        assert_eq!(run(&mut s, 0, "BITCOUNT str 32 87 bit"), int(0));
        assert_eq!(run(&mut s, 0, "BITCOUNT str -6 -7"), int(0));
        assert_eq!(run(&mut s, 0, "BITCOUNT str -6 -15 bit"), int(0));
        run(&mut s, 0, "SET s foobar");
        let count = |t: &str| bits_of(t.as_bytes()).iter().filter(|b| **b).count() as i64;
        assert_eq!(run(&mut s, 0, "BITCOUNT s"), int(count("foobar")));
        assert_eq!(run(&mut s, 0, "BITCOUNT s 0 -1"), int(count("foobar")));
        assert_eq!(run(&mut s, 0, "BITCOUNT s 1 -2"), int(count("ooba")));
        assert_eq!(run(&mut s, 0, "BITCOUNT s -2 1"), int(0));
        assert_eq!(run(&mut s, 0, "BITCOUNT s 0 1000"), int(count("foobar")));
        assert_eq!(run(&mut s, 0, "BITCOUNT s 0 -1 bit"), int(count("foobar")));
        let bits = bits_of(b"foobar");
        let in_range = |a: usize, b: usize| bits[a..=b].iter().filter(|x| **x).count() as i64;
        assert_eq!(
            run(&mut s, 0, "BITCOUNT s 10 14 bit"),
            int(in_range(10, 14))
        );
        assert_eq!(run(&mut s, 0, "BITCOUNT s 3 14 BIT"), int(in_range(3, 14)));
        assert_eq!(run(&mut s, 0, "BITCOUNT s 3 29 bit"), int(in_range(3, 29)));
        assert_eq!(
            run(&mut s, 0, "BITCOUNT s 10 -34 bit"),
            int(in_range(10, 14))
        );
        assert_eq!(run(&mut s, 0, "BITCOUNT s 3 -19 bit"), int(in_range(3, 29)));
        assert_eq!(run(&mut s, 0, "BITCOUNT s -2 1 bit"), int(0));
        assert_eq!(run(&mut s, 0, "BITCOUNT s 1 1 byte"), int(count("o")));
        assert_eq!(run(&mut s, 0, "BITCOUNT s 0"), err(SYNTAX));
        assert_eq!(run(&mut s, 0, "BITCOUNT s 0 1 hello"), err(SYNTAX));
        assert_eq!(run(&mut s, 0, "BITCOUNT s 0 1 bit x"), err(SYNTAX));
        assert_eq!(run(&mut s, 0, "BITCOUNT s a 1"), err(NOT_INT));
        assert_eq!(
            run(&mut s, 0, "BITCOUNT s 0 4294967296"),
            int(count("foobar"))
        );
        run(&mut s, 0, "SET str ab");
        assert_eq!(run(&mut s, 0, "BITCOUNT str 1 -1"), int(3));
        run(&mut s, 0, "SET str __PPxxxxxxxxxxxxxxxxRR__");
        assert_eq!(run(&mut s, 0, "BITCOUNT str 2 -3"), int(74));
        run(&mut s, 0, "SET e x");
        run(&mut s, 0, "GETDEL e");
        set(&mut s, "e", b"");
        assert_eq!(run(&mut s, 0, "BITCOUNT e"), int(0));
        assert_eq!(run(&mut s, 0, "BITCOUNT e 0 -1 bit"), int(0));
        run(&mut s, 0, "HSET l a b");
        assert_eq!(run(&mut s, 0, "BITCOUNT l"), err(WRONGTYPE));
    }

    #[test]
    fn bitcount_and_bitpos_fuzzing_against_a_model() {
        let mut s = store();
        let mut seed = 77;
        for round in 0..300 {
            let len = (rand(&mut seed) % 100) as usize;
            // Runs of zeros and ones, so that whole words are skipped too.
            let v: Vec<u8> = (0..len)
                .map(|i| match (round + i / 9) % 3 {
                    0 => 0,
                    1 => 0xFF,
                    _ => rand(&mut seed) as u8,
                })
                .collect();
            set(&mut s, "k", &v);
            let bits = bits_of(&v);
            let total = bits.iter().filter(|b| **b).count() as i64;
            assert_eq!(
                call(&mut s, &[b"BITCOUNT", b"k"], false),
                int(total).as_bytes()
            );
            if bits.is_empty() {
                continue;
            }
            let n = bits.len() as u64;
            let (mut a, mut b) = (rand(&mut seed) % n, rand(&mut seed) % n);
            if a > b {
                std::mem::swap(&mut a, &mut b);
            }
            let (a, b) = (a as usize, b as usize);
            let want = bits[a..=b].iter().filter(|x| **x).count();
            let line = format!("BITCOUNT k {a} {b} BIT");
            let words: Vec<&[u8]> = line.split(' ').map(str::as_bytes).collect();
            assert_eq!(call(&mut s, &words, false), int(want as i64).as_bytes());
            for bit in [false, true] {
                let first = bits[a..=b].iter().position(|x| *x == bit);
                let want = first.map_or(-1, |p| (p + a) as i64);
                let line = format!("BITPOS k {} {a} {b} BIT", bit as u8);
                let words: Vec<&[u8]> = line.split(' ').map(str::as_bytes).collect();
                assert_eq!(call(&mut s, &words, false), int(want).as_bytes(), "{line}");
                // Byte ranges, no end: the right is zero-padded.
                let (ba, bb) = (a / 8, len - 1);
                let first = bits[ba * 8..=bb * 8 + 7].iter().position(|x| *x == bit);
                let want = match first {
                    Some(p) => (p + ba * 8) as i64,
                    None if !bit => (len * 8) as i64,
                    None => -1,
                };
                let line = format!("BITPOS k {} {ba}", bit as u8);
                let words: Vec<&[u8]> = line.split(' ').map(str::as_bytes).collect();
                assert_eq!(call(&mut s, &words, false), int(want).as_bytes(), "{line}");
            }
        }
    }

    #[test]
    fn bitpos() {
        let mut s = store();
        assert_eq!(run(&mut s, 0, "BITPOS str 0"), int(0));
        assert_eq!(run(&mut s, 0, "BITPOS str 0 0 -1 bit"), int(0));
        assert_eq!(run(&mut s, 0, "BITPOS str 1"), int(-1));
        assert_eq!(run(&mut s, 0, "BITPOS str 1 0 -1"), int(-1));
        set(&mut s, "str", b"\xff\xf0\x00");
        assert_eq!(run(&mut s, 0, "BITPOS str 0"), int(12));
        assert_eq!(run(&mut s, 0, "BITPOS str 0 0 -1 bit"), int(12));
        assert_eq!(run(&mut s, 0, "BITPOS str 0 1"), int(12));
        assert_eq!(run(&mut s, 0, "BITPOS str 0 1 -1 bit"), int(12));
        set(&mut s, "str", b"\x00\x0f\x00");
        assert_eq!(run(&mut s, 0, "BITPOS str 1"), int(12));
        let mut v = vec![0xFFu8; 27];
        v.push(0x0F);
        set(&mut s, "str", &v);
        for start in 0..=8 {
            assert_eq!(run(&mut s, 0, &format!("BITPOS str 0 {start}")), int(216));
            let bit = start * 8 + 1;
            assert_eq!(
                run(&mut s, 0, &format!("BITPOS str 0 {bit} -1 bit")),
                int(216)
            );
        }
        set(&mut s, "str", b"\x00\xff\x00");
        assert_eq!(run(&mut s, 0, "BITPOS str 0 0 -1"), int(0));
        assert_eq!(run(&mut s, 0, "BITPOS str 0 1 -1"), int(16));
        assert_eq!(run(&mut s, 0, "BITPOS str 0 2 200"), int(16));
        assert_eq!(run(&mut s, 0, "BITPOS str 0 1 1"), int(-1));
        assert_eq!(run(&mut s, 0, "BITPOS str 0 8 8 bit"), int(-1));
        assert_eq!(run(&mut s, 0, "BITPOS str 1 0 -1"), int(8));
        assert_eq!(run(&mut s, 0, "BITPOS str 1 2 -1"), int(-1));
        assert_eq!(run(&mut s, 0, "BITPOS str 1 16 200 bit"), int(-1));
        assert_eq!(run(&mut s, 0, "BITPOS str 1 8 8 bit"), int(8));
        // bit=0 without an end counts the zero padding on the right.
        set(&mut s, "str", b"\xff\xff\xff");
        assert_eq!(run(&mut s, 0, "BITPOS str 0"), int(24));
        assert_eq!(run(&mut s, 0, "BITPOS str 0 0"), int(24));
        assert_eq!(run(&mut s, 0, "BITPOS str 0 0 -1"), int(-1));
        assert_eq!(run(&mut s, 0, "BITPOS str 0 0 -1 bit"), int(-1));
        set(&mut s, "str", b"");
        assert_eq!(run(&mut s, 0, "BITPOS str 1"), int(-1));
        assert_eq!(run(&mut s, 0, "BITPOS str 0"), int(-1));
        assert_eq!(run(&mut s, 0, "BITPOS str 2"), err(BITPOS_BIT));
        assert_eq!(run(&mut s, 0, "BITPOS str x"), err(NOT_INT));
        assert_eq!(run(&mut s, 0, "BITPOS str 1 x"), err(NOT_INT));
        assert_eq!(run(&mut s, 0, "BITPOS str 1 0 x"), err(NOT_INT));
        assert_eq!(run(&mut s, 0, "BITPOS str 1 0 x bits"), err(SYNTAX));
        assert_eq!(run(&mut s, 0, "BITPOS str 1 0 1 bit x"), err(SYNTAX));
        run(&mut s, 0, "HSET l a b");
        assert_eq!(run(&mut s, 0, "BITPOS l 1"), err(WRONGTYPE));
    }

    #[test]
    fn bitop() {
        let mut s = store();
        set(&mut s, "s{t}", b"");
        assert_eq!(run(&mut s, 0, "BITOP NOT dest{t} s{t}"), int(0));
        assert_eq!(run(&mut s, 0, "EXISTS dest{t}"), int(0));
        set(&mut s, "s{t}", b"\xaa\x00\xff\x55");
        assert_eq!(run(&mut s, 0, "BITOP not dest{t} s{t}"), int(4));
        assert_eq!(get(&mut s, "dest{t}"), b"\x55\xff\x00\xaa");
        assert_eq!(run(&mut s, 0, "BITOP NOT s{t} s{t}"), int(4));
        assert_eq!(get(&mut s, "s{t}"), b"\x55\xff\x00\xaa");
        set(&mut s, "a{t}", b"\x01\x02\xff\xff");
        set(&mut s, "b{t}", b"\x01\x02\xff");
        run(&mut s, 0, "BITOP AND r1{t} a{t} b{t}");
        run(&mut s, 0, "BITOP OR r2{t} a{t} b{t}");
        run(&mut s, 0, "BITOP XOR r3{t} a{t} b{t}");
        assert_eq!(get(&mut s, "r1{t}"), b"\x01\x02\xff\x00");
        assert_eq!(get(&mut s, "r2{t}"), b"\x01\x02\xff\xff");
        assert_eq!(get(&mut s, "r3{t}"), b"\x00\x00\x00\xff");
        assert_eq!(run(&mut s, 0, "BITOP AND r1{t} nokey{t} b{t}"), int(3));
        assert_eq!(get(&mut s, "r1{t}"), b"\x00\x00\x00");
        run(&mut s, 0, "SET a{t} 1");
        run(&mut s, 0, "SET b{t} 2");
        run(&mut s, 0, "BITOP XOR dest{t} a{t} b{t} a{t}");
        assert_eq!(get(&mut s, "dest{t}"), b"2");
        // The destination is replaced whatever it held, TTL and all; an empty result
        // deletes it.
        run(&mut s, 0, "HSET d{t} x y");
        run(&mut s, 0, "EXPIRE d{t} 100");
        assert_eq!(run(&mut s, 0, "BITOP OR d{t} a{t}"), int(1));
        assert_eq!(run(&mut s, 0, "TTL d{t}"), int(-1));
        assert_eq!(run(&mut s, 0, "BITOP OR d{t} none{t}"), int(0));
        assert_eq!(run(&mut s, 0, "EXISTS d{t}"), int(0));
        run(&mut s, 0, "HSET c{t} foo bar");
        assert_eq!(
            run(&mut s, 0, "BITOP XOR dest{t} a{t} b{t} c{t} d{t}"),
            err(WRONGTYPE)
        );
        assert_eq!(
            run(&mut s, 0, "BITOP NOT dest{t} a{t} b{t}"),
            err(BITOP_NOT_ONE_KEY)
        );
        assert_eq!(run(&mut s, 0, "BITOP NAND dest{t} a{t}"), err(SYNTAX));
        s.check();
    }

    #[test]
    fn bitop_fuzzing_against_a_model() {
        let mut s = store();
        let mut seed = 3;
        for op in ["AND", "OR", "XOR", "NOT"] {
            for _ in 0..20 {
                let n = if op == "NOT" {
                    1
                } else {
                    1 + rand(&mut seed) % 10
                };
                let vecs: Vec<Vec<u8>> = (0..n)
                    .map(|_| {
                        let len = rand(&mut seed) % 100;
                        (0..len).map(|_| rand(&mut seed) as u8).collect()
                    })
                    .collect();
                let mut words: Vec<Vec<u8>> = vec![b"BITOP".to_vec(), op.into(), b"t{x}".to_vec()];
                for (i, v) in vecs.iter().enumerate() {
                    let k = format!("v{i}{{x}}");
                    set(&mut s, &k, v);
                    words.push(k.into_bytes());
                }
                let max = vecs.iter().map(Vec::len).max().unwrap_or(0);
                let at = |v: &Vec<u8>, i: usize| v.get(i).copied().unwrap_or(0);
                let want: Vec<u8> = (0..max)
                    .map(|i| {
                        let mut b = at(&vecs[0], i);
                        for v in &vecs[1..] {
                            match op {
                                "AND" => b &= at(v, i),
                                "OR" => b |= at(v, i),
                                _ => b ^= at(v, i),
                            }
                        }
                        if op == "NOT" {
                            !b
                        } else {
                            b
                        }
                    })
                    .collect();
                let refs: Vec<&[u8]> = words.iter().map(Vec::as_slice).collect();
                assert_eq!(call(&mut s, &refs, false), int(max as i64).as_bytes());
                assert_eq!(get(&mut s, "t{x}"), want);
            }
        }
        s.check();
    }

    fn bitfield(s: &mut Store, line: &str) -> String {
        run(s, 0, line)
    }

    #[test]
    fn bitfield_basics() {
        let mut s = store();
        let arr = |xs: &[&str]| {
            let mut r = format!("*{}\r\n", xs.len());
            for x in xs {
                if *x == "nil" {
                    r.push_str("$-1\r\n");
                } else {
                    r.push_str(&format!(":{x}\r\n"));
                }
            }
            r
        };
        assert_eq!(bitfield(&mut s, "BITFIELD bits set i8 0 -100"), arr(&["0"]));
        assert_eq!(
            bitfield(&mut s, "BITFIELD bits set i8 0 101"),
            arr(&["-100"])
        );
        assert_eq!(bitfield(&mut s, "BITFIELD bits get i8 0"), arr(&["101"]));
        run(&mut s, 0, "DEL bits");
        assert_eq!(
            bitfield(&mut s, "BITFIELD bits set i8 0 255 set i8 0 100 get i8 0"),
            arr(&["0", "-1", "100"])
        );
        run(&mut s, 0, "DEL bits");
        assert_eq!(
            bitfield(
                &mut s,
                "BITFIELD bits set u8 0 255 incrby u8 0 100 get u8 0"
            ),
            arr(&["0", "99", "99"])
        );
        run(&mut s, 0, "DEL bits");
        assert_eq!(bitfield(&mut s, "BITFIELD bits"), "*0\r\n");
        assert_eq!(run(&mut s, 0, "EXISTS bits"), int(0));
        assert_eq!(bitfield(&mut s, "BITFIELD bits get u8 0"), arr(&["0"]));
        assert_eq!(run(&mut s, 0, "EXISTS bits"), int(0));
        run(&mut s, 0, "BITFIELD bits set u8 #0 65");
        run(&mut s, 0, "BITFIELD bits set u8 #1 66");
        run(&mut s, 0, "BITFIELD bits set u8 #2 67");
        assert_eq!(get(&mut s, "bits"), b"ABC");
        run(&mut s, 0, "SET bits 1");
        assert_eq!(bitfield(&mut s, "BITFIELD bits get u1 0"), arr(&["0"]));
        run(&mut s, 0, "DEL m");
        assert_eq!(
            bitfield(
                &mut s,
                "BITFIELD m SET i8 0 10 SET i8 64 10 INCRBY i8 10 99900"
            ),
            arr(&["0", "0", "60"])
        );
        // Overflow modes.
        run(&mut s, 0, "BITFIELD b set u8 #0 100");
        assert_eq!(
            bitfield(&mut s, "BITFIELD b overflow wrap incrby u8 #0 257"),
            arr(&["101"])
        );
        assert_eq!(
            bitfield(&mut s, "BITFIELD b overflow wrap incrby u8 #0 255"),
            arr(&["100"])
        );
        assert_eq!(
            bitfield(&mut s, "BITFIELD b overflow sat incrby u8 #0 257"),
            arr(&["255"])
        );
        assert_eq!(
            bitfield(&mut s, "BITFIELD b overflow sat incrby u8 #0 -256"),
            arr(&["0"])
        );
        run(&mut s, 0, "BITFIELD b set u8 #0 100");
        assert_eq!(
            bitfield(&mut s, "BITFIELD b overflow sat incrby i8 #0 257"),
            arr(&["127"])
        );
        assert_eq!(
            bitfield(&mut s, "BITFIELD b overflow sat incrby i8 #0 -255"),
            arr(&["-128"])
        );
        assert_eq!(
            bitfield(&mut s, "BITFIELD b overflow fail incrby i8 #0 -1 get i8 #0"),
            arr(&["nil", "-128"])
        );
        // An unsigned SET reads a negative value as its 64 bits unsigned.
        assert_eq!(
            bitfield(&mut s, "BITFIELD b overflow sat set u8 0 -1 get u8 0"),
            arr(&["128", "255"])
        );
        assert_eq!(
            bitfield(&mut s, "BITFIELD b overflow wrap set u8 0 -2 get u8 0"),
            arr(&["255", "254"])
        );
        // 64-bit signed and 63-bit unsigned fields at unaligned offsets.
        assert_eq!(
            bitfield(
                &mut s,
                "BITFIELD w set i64 3 -9223372036854775808 get i64 3 incrby i64 3 -1"
            ),
            arr(&["0", "-9223372036854775808", "9223372036854775807"])
        );
        assert_eq!(
            bitfield(&mut s, "BITFIELD w overflow fail incrby i64 3 1 get u63 3"),
            arr(&["nil", "4611686018427387903"])
        );
        assert_eq!(
            bitfield(&mut s, "BITFIELD w set u63 5 9223372036854775807 get u63 5"),
            arr(&["9223372036854775806", "9223372036854775807"])
        );
        s.check();
    }

    #[test]
    fn bitfield_errors() {
        let mut s = store();
        for t in ["u64", "i65", "i0", "x8", "i", "u08", "i-1"] {
            assert_eq!(
                run(&mut s, 0, &format!("BITFIELD k get {t} 0")),
                err(BITFIELD_TYPE),
                "{t}"
            );
        }
        assert_eq!(run(&mut s, 0, "BITFIELD k get u8 -1"), err(BIT_OFFSET));
        assert_eq!(run(&mut s, 0, "BITFIELD k get u8 #-1"), err(BIT_OFFSET));
        assert_eq!(
            run(&mut s, 0, "BITFIELD k get u8 4294967296"),
            err(BIT_OFFSET)
        );
        assert_eq!(
            run(&mut s, 0, "BITFIELD k get u8 #2305843009213693952"),
            err(BIT_OFFSET)
        );
        assert_eq!(run(&mut s, 0, "BITFIELD k set u8 0 x"), err(NOT_INT));
        assert_eq!(run(&mut s, 0, "BITFIELD k set u8 0"), err(SYNTAX));
        assert_eq!(run(&mut s, 0, "BITFIELD k foo u8 0"), err(SYNTAX));
        assert_eq!(
            run(&mut s, 0, "BITFIELD k overflow what"),
            err(BITFIELD_OVERFLOW)
        );
        assert_eq!(run(&mut s, 0, "BITFIELD k overflow"), err(SYNTAX));
        assert_eq!(run(&mut s, 0, "EXISTS k"), int(0));
        assert_eq!(
            run(&mut s, 0, "BITFIELD_RO k set u8 0 100 get u8 0"),
            err(BITFIELD_RO_GET_ONLY)
        );
        assert_eq!(run(&mut s, 0, "BITFIELD_RO k"), "*0\r\n");
        run(&mut s, 0, "BITFIELD k set u8 0 100");
        assert_eq!(
            run(&mut s, 0, "BITFIELD_RO k get u8 0 get u4 0"),
            "*2\r\n:100\r\n:6\r\n"
        );
        run(&mut s, 0, "HSET l a b");
        assert_eq!(run(&mut s, 0, "BITFIELD l get u8 0"), err(WRONGTYPE));
        assert_eq!(run(&mut s, 0, "BITFIELD l set u8 0 1"), err(WRONGTYPE));
        assert_eq!(run(&mut s, 0, "BITFIELD_RO l get u8 0"), err(WRONGTYPE));
        assert_eq!(run(&mut s, 0, "BITFIELD l"), err(WRONGTYPE));
        s.check();
    }

    #[test]
    fn bitfield_overflow_fuzzing_against_i128() {
        let mut s = store();
        let mut seed = 11;
        for _ in 0..2000 {
            let bits = 1 + (rand(&mut seed) % 64) as u32;
            let signed = bits == 64 || rand(&mut seed) % 2 == 1;
            let range = 1i128 << bits;
            let min = if signed { -(range / 2) } else { 0 };
            let max = min + range - 1;
            let pick = |seed: &mut u64| {
                let r = (rand(seed) as i128).rem_euclid(range * 2) + min * 2;
                r.clamp(i64::MIN as i128, i64::MAX as i128)
            };
            let (value, incr) = (pick(&mut seed), pick(&mut seed));
            let ty = format!("{}{bits}", if signed { "i" } else { "u" });
            run(&mut s, 0, "DEL f");
            let set = run(
                &mut s,
                0,
                &format!("BITFIELD f overflow fail set {ty} 0 {value}"),
            );
            let inc = run(
                &mut s,
                0,
                &format!("BITFIELD f overflow fail incrby {ty} 0 {incr}"),
            );
            let overflow = value > max || value < min || value + incr > max || value + incr < min;
            let failed = set.contains("$-1") || inc.contains("$-1");
            assert_eq!(overflow, failed, "{ty} {value} {incr}");
            // WRAP: the sum modulo 2^bits in the type's range.
            run(&mut s, 0, "DEL f");
            run(
                &mut s,
                0,
                &format!("BITFIELD f overflow wrap set {ty} 0 {value}"),
            );
            run(
                &mut s,
                0,
                &format!("BITFIELD f overflow wrap incrby {ty} 0 {incr}"),
            );
            let got = run(&mut s, 0, &format!("BITFIELD f get {ty} 0"));
            let mut want = (value + incr - min).rem_euclid(range) + min;
            if !signed {
                // An unsigned SET of a negative value wraps its 64-bit pattern first.
                let v = if value < 0 {
                    value + (1i128 << 64)
                } else {
                    value
                };
                want = (v + incr).rem_euclid(range);
            }
            assert_eq!(got, format!("*1\r\n:{want}\r\n"), "{ty} {value} {incr}");
        }
        s.check();
    }

    #[test]
    fn getrange_and_substr() {
        let mut s = store();
        assert_eq!(run(&mut s, 0, "GETRANGE k 0 -1"), "$0\r\n\r\n");
        run(&mut s, 0, "SET k Hello_World");
        let bulk = |t: &str| format!("${}\r\n{t}\r\n", t.len());
        assert_eq!(run(&mut s, 0, "GETRANGE k 0 3"), bulk("Hell"));
        assert_eq!(run(&mut s, 0, "GETRANGE k 0 -1"), bulk("Hello_World"));
        assert_eq!(run(&mut s, 0, "GETRANGE k -4 -1"), bulk("orld"));
        assert_eq!(run(&mut s, 0, "GETRANGE k 5 3"), bulk(""));
        assert_eq!(run(&mut s, 0, "GETRANGE k 5 5000"), bulk("_World"));
        assert_eq!(
            run(&mut s, 0, "GETRANGE k -5000 10000"),
            bulk("Hello_World")
        );
        assert_eq!(run(&mut s, 0, "GETRANGE k -1 -5"), bulk(""));
        assert_eq!(run(&mut s, 0, "SUBSTR k 0 4294967297"), bulk("Hello_World"));
        assert_eq!(run(&mut s, 0, "SUBSTR k 1 1"), bulk("e"));
        assert_eq!(run(&mut s, 0, "GETRANGE k x 1"), err(NOT_INT));
        assert_eq!(run(&mut s, 0, "GETRANGE nokey 0 x"), err(NOT_INT));
        run(&mut s, 0, "HSET l a b");
        assert_eq!(run(&mut s, 0, "GETRANGE l 0 1"), err(WRONGTYPE));
        // Against a model: Tcl's `string range` with Redis's negative indexes.
        let mut seed = 5;
        for _ in 0..500 {
            let len = (rand(&mut seed) % 40) as i64;
            let v: Vec<u8> = (0..len).map(|_| rand(&mut seed) as u8).collect();
            set(&mut s, "b", &v);
            let (a, b) = (
                (rand(&mut seed) % 100) as i64 - 50,
                (rand(&mut seed) % 100) as i64 - 50,
            );
            let got = call(
                &mut s,
                &[
                    b"GETRANGE",
                    b"b",
                    a.to_string().as_bytes(),
                    b.to_string().as_bytes(),
                ],
                false,
            );
            let want: &[u8] = if a < 0 && b < 0 && a > b {
                b""
            } else {
                let ra = if a < 0 { (a + len).max(0) } else { a };
                let rb = if b < 0 { (b + len).max(0) } else { b }.min(len - 1);
                if ra > rb || len == 0 {
                    b""
                } else {
                    &v[ra as usize..=rb as usize]
                }
            };
            let mut w = format!("${}\r\n", want.len()).into_bytes();
            w.extend_from_slice(want);
            w.extend_from_slice(b"\r\n");
            assert_eq!(got, w, "{a} {b} of {len}");
        }
    }

    #[test]
    fn setrange() {
        let mut s = store();
        assert_eq!(run(&mut s, 0, "SETRANGE k 0 foo"), int(3));
        assert_eq!(get(&mut s, "k"), b"foo");
        run(&mut s, 0, "DEL k");
        assert_eq!(
            call(&mut s, &[b"SETRANGE", b"k", b"0", b""], false),
            b":0\r\n"
        );
        assert_eq!(run(&mut s, 0, "EXISTS k"), int(0));
        assert_eq!(run(&mut s, 0, "SETRANGE k 1 foo"), int(4));
        assert_eq!(get(&mut s, "k"), b"\0foo");
        run(&mut s, 0, "SET k foo");
        assert_eq!(run(&mut s, 0, "SETRANGE k 0 b"), int(3));
        assert_eq!(get(&mut s, "k"), b"boo");
        assert_eq!(
            call(&mut s, &[b"SETRANGE", b"k", b"99999999999", b""], false),
            b":3\r\n"
        );
        assert_eq!(run(&mut s, 0, "SETRANGE k 1 b"), int(3));
        assert_eq!(get(&mut s, "k"), b"bbo");
        assert_eq!(run(&mut s, 0, "SETRANGE k 4 bar"), int(7));
        assert_eq!(get(&mut s, "k"), b"bbo\0bar");
        run(&mut s, 0, "SET n 1234");
        assert_eq!(run(&mut s, 0, "SETRANGE n 5 2"), int(6));
        assert_eq!(get(&mut s, "n"), b"1234\x002");
        run(&mut s, 0, "HSET l a b");
        assert_eq!(run(&mut s, 0, "SETRANGE l 0 bar"), err(WRONGTYPE));
        assert_eq!(
            run(&mut s, 0, "SETRANGE k -1 world"),
            err(OFFSET_OUT_OF_RANGE)
        );
        assert_eq!(run(&mut s, 0, "SETRANGE k x world"), err(NOT_INT));
        let max = STRING_BYTES_MAX;
        for k in ["k", "new"] {
            assert_eq!(
                run(&mut s, 0, &format!("SETRANGE {k} {} world", max - 4)),
                err(STRING_TOO_LONG)
            );
            for huge in ["9223372036854775807", "2147483647"] {
                let r = run(&mut s, 0, &format!("SETRANGE {k} {huge} A"));
                assert_eq!(r, err(STRING_TOO_LONG));
            }
        }
        assert_eq!(run(&mut s, 0, "EXISTS new"), int(0));
        run(&mut s, 0, "SET t v PX 5000");
        run(&mut s, 0, "SETRANGE t 3 x");
        assert_eq!(run(&mut s, 0, "PTTL t"), int(5000));
        s.check();
    }

    const RNA1: &str = "CACCTTCCCAGGTAACAAACCAACCAACTTTCGATCTCTTGTAGATCTGTTCTCTAAACGAACTTTAAAATCTGTGTGGCTGTCACTCGGCTGCATGCTTAGTGCACTCACGCAGTATAATTAATAACTAATTACTGTCGTTGACAGGACACGAGTAACTCGTCTATCTTCTGCAGGCTGCTTACGGTTTCGTCCGTGTTGCAGCCGATCATCAGCACATCTAGGTTTCGTCCGGGTGTG";
    const RNA2: &str = "ATTAAAGGTTTATACCTTCCCAGGTAACAAACCAACCAACTTTCGATCTCTTGTAGATCTGTTCTCTAAACGAACTTTAAAATCTGTGTGGCTGTCACTCGGCTGCATGCTTAGTGCACTCACGCAGTATAATTAATAACTAATTACTGTCGTTGACAGGACACGAGTAACTCGTCTATCTTCTGCAGGCTGCTTACGGTTTCGTCCGTGTTGCAGCCGATCATCAGCACATCTAGGTTT";
    const RNALCS: &str = "ACCTTCCCAGGTAACAAACCAACCAACTTTCGATCTCTTGTAGATCTGTTCTCTAAACGAACTTTAAAATCTGTGTGGCTGTCACTCGGCTGCATGCTTAGTGCACTCACGCAGTATAATTAATAACTAATTACTGTCGTTGACAGGACACGAGTAACTCGTCTATCTTCTGCAGGCTGCTTACGGTTTCGTCCGTGTTGCAGCCGATCATCAGCACATCTAGGTTT";

    /// The expected IDX matches as RESP, each `((a0 a1) (b0 b1) [len])`.
    fn matches(ms: &[(u32, u32, u32, u32)], with_len: bool) -> String {
        let mut r = format!("*{}\r\n", ms.len());
        for &(a0, a1, b0, b1) in ms {
            r.push_str(&format!(
                "*{}\r\n*2\r\n:{a0}\r\n:{a1}\r\n*2\r\n:{b0}\r\n:{b1}\r\n",
                2 + with_len as u8
            ));
            if with_len {
                r.push_str(&format!(":{}\r\n", a1 - a0 + 1));
            }
        }
        r
    }

    #[test]
    fn lcs() {
        let mut s = store();
        run(&mut s, 0, &format!("SET virus1{{t}} {RNA1}"));
        run(&mut s, 0, &format!("SET virus2{{t}} {RNA2}"));
        assert_eq!(
            run(&mut s, 0, "LCS virus1{t} virus2{t}"),
            format!("${}\r\n{RNALCS}\r\n", RNALCS.len())
        );
        assert_eq!(
            run(&mut s, 0, "LCS virus1{t} virus2{t} LEN"),
            int(RNALCS.len() as i64)
        );
        let all = [
            (238, 238, 239, 239),
            (236, 236, 238, 238),
            (229, 230, 236, 237),
            (224, 224, 235, 235),
            (1, 222, 13, 234),
        ];
        let len = format!("$3\r\nlen\r\n:{}\r\n", RNALCS.len());
        assert_eq!(
            run(&mut s, 0, "LCS virus1{t} virus2{t} IDX"),
            format!("*4\r\n$7\r\nmatches\r\n{}{len}", matches(&all, false))
        );
        assert_eq!(
            run(&mut s, 0, "LCS virus1{t} virus2{t} IDX WITHMATCHLEN"),
            format!("*4\r\n$7\r\nmatches\r\n{}{len}", matches(&all, true))
        );
        assert_eq!(
            run(
                &mut s,
                0,
                "LCS virus1{t} virus2{t} IDX WITHMATCHLEN MINMATCHLEN 5"
            ),
            format!("*4\r\n$7\r\nmatches\r\n{}{len}", matches(&all[4..], true))
        );
        // RESP3: a map.
        let r3 = call(
            &mut s,
            &[
                b"LCS",
                b"virus1{t}",
                b"virus2{t}",
                b"IDX",
                b"MINMATCHLEN",
                b"5",
            ],
            true,
        );
        assert_eq!(
            String::from_utf8(r3).unwrap(),
            format!("%2\r\n$7\r\nmatches\r\n{}{len}", matches(&all[4..], false))
        );
        assert_eq!(run(&mut s, 0, "LCS a{t} b{t}"), "$0\r\n\r\n");
        assert_eq!(run(&mut s, 0, "LCS a{t} b{t} LEN"), int(0));
        assert_eq!(
            run(&mut s, 0, "LCS a{t} virus1{t} IDX"),
            "*4\r\n$7\r\nmatches\r\n*0\r\n$3\r\nlen\r\n:0\r\n"
        );
        run(&mut s, 0, "SET x{t} ohmytext");
        run(&mut s, 0, "SET y{t} mynewtext");
        assert_eq!(run(&mut s, 0, "LCS x{t} y{t}"), "$6\r\nmytext\r\n");
        assert_eq!(
            run(&mut s, 0, "LCS x{t} y{t} IDX MINMATCHLEN -3 WITHMATCHLEN"),
            format!(
                "*4\r\n$7\r\nmatches\r\n{}$3\r\nlen\r\n:6\r\n",
                matches(&[(4, 7, 5, 8), (2, 3, 0, 1)], true)
            )
        );
        assert_eq!(
            run(&mut s, 0, "LCS x{t} y{t} LEN IDX"),
            err(LCS_LEN_AND_IDX)
        );
        assert_eq!(run(&mut s, 0, "LCS x{t} y{t} MINMATCHLEN"), err(SYNTAX));
        assert_eq!(run(&mut s, 0, "LCS x{t} y{t} MINMATCHLEN x"), err(NOT_INT));
        assert_eq!(run(&mut s, 0, "LCS x{t} y{t} FOO"), err(SYNTAX));
        run(&mut s, 0, "HSET l{t} a b");
        assert_eq!(run(&mut s, 0, "LCS x{t} l{t}"), err(LCS_NOT_STRINGS));
        assert_eq!(run(&mut s, 0, "LCS l{t} x{t} FOO"), err(LCS_NOT_STRINGS));
        // The table Redis would build is bounded by proto-max-bulk-len.
        let big = vec![b'a'; 12_000];
        set(&mut s, "big{t}", &big);
        assert_eq!(
            run(&mut s, 0, "LCS big{t} big{t} LEN"),
            err(LCS_TABLE_TOO_BIG)
        );
        s.check();
    }

    #[test]
    fn writes_break_watches_only_when_they_change_something() {
        use crate::txn::ConnId;
        let mut s = store();
        let conn = ConnId {
            shard: 0,
            slot: 1,
            gen: 1,
        };
        run(&mut s, 0, "SETBIT k 7 1");
        run(&mut s, 0, "BITFIELD f set u8 0 5");
        let quiet = [
            "SETBIT k 7 1",
            "SETBIT k 0 0",
            "BITFIELD f set u8 0 5",
            "BITFIELD f get u8 0",
            "GETBIT k 0",
            "BITCOUNT k",
        ];
        for line in quiet {
            s.watch(conn, b"k", 0);
            s.watch(conn, b"f", 0);
            run(&mut s, 0, line);
            assert!(!s.watch_changed(conn, 0), "{line}");
        }
        for line in [
            "SETBIT k 7 0",
            "SETBIT k 8 0",
            "BITFIELD f incrby u8 0 1",
            "BITFIELD f set u8 8 0",
        ] {
            s.watch(conn, b"k", 0);
            s.watch(conn, b"f", 0);
            run(&mut s, 0, line);
            assert!(s.watch_changed(conn, 0), "{line}");
        }
        s.check();
    }

    #[test]
    fn word_scans_match_a_bit_by_bit_scan() {
        let mut seed = 1;
        for _ in 0..500 {
            // Long runs of one value, a few other bytes: the jumps over runs are exercised.
            let len = 1 + (rand(&mut seed) % 300) as usize;
            let fill = if rand(&mut seed) % 2 == 0 { 0 } else { 0xFF };
            let v: Vec<u8> = (0..len)
                .map(|_| {
                    if rand(&mut seed) % 97 == 0 {
                        rand(&mut seed) as u8
                    } else {
                        fill
                    }
                })
                .collect();
            let bits = bits_of(&v);
            let n = bits.len() as u64;
            let (mut a, mut b) = (rand(&mut seed) % n, rand(&mut seed) % n);
            if a > b {
                std::mem::swap(&mut a, &mut b);
            }
            let slice = &bits[a as usize..=b as usize];
            assert_eq!(
                count_bits(&v, a, b),
                slice.iter().filter(|x| **x).count() as u64
            );
            for bit in [false, true] {
                let want = slice.iter().position(|x| *x == bit).map(|p| p as u64 + a);
                assert_eq!(find_bit(&v, bit, a, b), want);
            }
        }
        assert_eq!(popcount(&[0xFF; 1001]), 8008);
    }

    #[test]
    fn a_write_that_creates_its_key_counts_once() {
        let mut s = store();
        let c0 = s.changes;
        run(&mut s, 0, "SETBIT a 0 0");
        run(&mut s, 0, "BITFIELD b SET i5 0 0");
        assert_eq!(s.changes, c0 + 2);
        run(&mut s, 0, "SETBIT a 0 0");
        run(&mut s, 0, "BITFIELD b SET i5 0 0");
        assert_eq!(s.changes, c0 + 2, "no change, no write");
        run(&mut s, 0, "SETBIT a 0 1");
        assert_eq!(s.changes, c0 + 3);
    }
}
