//! Sets: the commands, their arity, flags, routes (Redis 7.0's `src/commands/s*.json`).
//! Semantics in `cache/cmd/sets.rs`.

use super::{s, Cmd, Family as F, KeySpec, Route as R, Spec, DENYOOM, READONLY, WRITE};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SetCmd {
    Sadd,
    Srem,
    Smembers,
    Sismember,
    Smismember,
    Scard,
    Spop,
    Srandmember,
    Smove,
    Sinter,
    Sunion,
    Sdiff,
    Sinterstore,
    Sunionstore,
    Sdiffstore,
    Sintercard,
    Sscan,
}

use SetCmd as C;

/// Every key from argument 1 on (SINTER ...; the STORE forms' destination first).
const ALL_KEYS: R = R::Multi(KeySpec::Range {
    first: 1,
    last: -1,
    step: 1,
});

pub static TABLE: &[Spec] = &[
    s(
        "sadd",
        Cmd::Sets(C::Sadd),
        -3,
        WRITE | DENYOOM,
        R::Key,
        F::Set,
    ),
    s("srem", Cmd::Sets(C::Srem), -3, WRITE, R::Key, F::Set),
    s(
        "smembers",
        Cmd::Sets(C::Smembers),
        2,
        READONLY,
        R::Key,
        F::Set,
    ),
    s(
        "sismember",
        Cmd::Sets(C::Sismember),
        3,
        READONLY,
        R::Key,
        F::Set,
    ),
    s(
        "smismember",
        Cmd::Sets(C::Smismember),
        -3,
        READONLY,
        R::Key,
        F::Set,
    ),
    s("scard", Cmd::Sets(C::Scard), 2, READONLY, R::Key, F::Set),
    s("spop", Cmd::Sets(C::Spop), -2, WRITE, R::Key, F::Set),
    s(
        "srandmember",
        Cmd::Sets(C::Srandmember),
        -2,
        READONLY,
        R::Key,
        F::Set,
    ),
    s(
        "smove",
        Cmd::Sets(C::Smove),
        4,
        WRITE,
        R::Multi(KeySpec::Range {
            first: 1,
            last: 2,
            step: 1,
        }),
        F::Set,
    ),
    s(
        "sinter",
        Cmd::Sets(C::Sinter),
        -2,
        READONLY,
        ALL_KEYS,
        F::Set,
    ),
    s(
        "sunion",
        Cmd::Sets(C::Sunion),
        -2,
        READONLY,
        ALL_KEYS,
        F::Set,
    ),
    s("sdiff", Cmd::Sets(C::Sdiff), -2, READONLY, ALL_KEYS, F::Set),
    s(
        "sinterstore",
        Cmd::Sets(C::Sinterstore),
        -3,
        WRITE | DENYOOM,
        ALL_KEYS,
        F::Set,
    ),
    s(
        "sunionstore",
        Cmd::Sets(C::Sunionstore),
        -3,
        WRITE | DENYOOM,
        ALL_KEYS,
        F::Set,
    ),
    s(
        "sdiffstore",
        Cmd::Sets(C::Sdiffstore),
        -3,
        WRITE | DENYOOM,
        ALL_KEYS,
        F::Set,
    ),
    s(
        "sintercard",
        Cmd::Sets(C::Sintercard),
        -3,
        READONLY,
        R::Multi(KeySpec::NumKeys { at: 1, lead: false }),
        F::Set,
    ),
    s("sscan", Cmd::Sets(C::Sscan), -3, READONLY, R::Key, F::Set),
];
