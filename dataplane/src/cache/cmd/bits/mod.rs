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
//!
//! One file per concern: this file dispatches ([`exec`]) and reads and edits a key's string
//! (with the bit-offset and range arguments every command shares); `scan.rs` counts and
//! finds bits a word at a time; `bit.rs` SETBIT, GETBIT, BITCOUNT, BITPOS; `bitop.rs`
//! BITOP; `bitfield.rs` BITFIELD and BITFIELD_RO; `range.rs` GETRANGE, SUBSTR, SETRANGE;
//! `lcs.rs` LCS.

mod bit;
mod bitfield;
mod bitop;
mod lcs;
mod range;
mod scan;
#[cfg(test)]
mod tests;

use bit::{bitcount, bitpos, getbit, setbit};
use bitfield::bitfield;
use bitop::bitop;
use lcs::lcs;
use range::{getrange, setrange};

use crate::cache::entry::{Entry, KIND_STR};
use crate::cache::store::{Found, Store, WrongType};
use crate::limits::STRING_BYTES_MAX;
use crate::proto::resp::command::bits::BitCmd;
use crate::proto::resp::command::{Cmd, Spec};
use crate::proto::resp::errors::wrong_args;
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
