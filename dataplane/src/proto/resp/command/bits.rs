//! Bitmaps and string ranges: the commands, their arity, flags, routes (Redis 7.0's, from
//! `src/commands/*.json`). Semantics in `cache/cmd/bits.rs`.

#[allow(unused_imports)]
use super::{
    s, Cmd, Family as F, KeySpec, Route as R, Spec, BLOCKING, DENYOOM, NOSCRIPT, READONLY, WRITE,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BitCmd {
    Setbit,
    Getbit,
    Bitcount,
    Bitpos,
    Bitop,
    Bitfield,
    BitfieldRo,
    Getrange,
    Setrange,
    Substr,
    Lcs,
}

use BitCmd as B;

/// BITOP's keys: the destination (argument 2) and every source after it.
const BITOP_KEYS: R = R::Multi(KeySpec::Range {
    first: 2,
    last: -1,
    step: 1,
});
/// LCS's two keys.
const LCS_KEYS: R = R::Multi(KeySpec::Range {
    first: 1,
    last: 2,
    step: 1,
});

pub static TABLE: &[Spec] = &[
    s(
        "setbit",
        Cmd::Bits(B::Setbit),
        4,
        WRITE | DENYOOM,
        R::Key,
        F::Bitmap,
    ),
    s(
        "getbit",
        Cmd::Bits(B::Getbit),
        3,
        READONLY,
        R::Key,
        F::Bitmap,
    ),
    s(
        "bitcount",
        Cmd::Bits(B::Bitcount),
        -2,
        READONLY,
        R::Key,
        F::Bitmap,
    ),
    s(
        "bitpos",
        Cmd::Bits(B::Bitpos),
        -3,
        READONLY,
        R::Key,
        F::Bitmap,
    ),
    s(
        "bitop",
        Cmd::Bits(B::Bitop),
        -4,
        WRITE | DENYOOM,
        BITOP_KEYS,
        F::Bitmap,
    ),
    s(
        "bitfield",
        Cmd::Bits(B::Bitfield),
        -2,
        WRITE | DENYOOM,
        R::Key,
        F::Bitmap,
    ),
    s(
        "bitfield_ro",
        Cmd::Bits(B::BitfieldRo),
        -2,
        READONLY,
        R::Key,
        F::Bitmap,
    ),
    s(
        "getrange",
        Cmd::Bits(B::Getrange),
        4,
        READONLY,
        R::Key,
        F::Bitmap,
    ),
    s(
        "setrange",
        Cmd::Bits(B::Setrange),
        4,
        WRITE | DENYOOM,
        R::Key,
        F::Bitmap,
    ),
    s(
        "substr",
        Cmd::Bits(B::Substr),
        4,
        READONLY,
        R::Key,
        F::Bitmap,
    ),
    s("lcs", Cmd::Bits(B::Lcs), -3, READONLY, LCS_KEYS, F::Bitmap),
];
