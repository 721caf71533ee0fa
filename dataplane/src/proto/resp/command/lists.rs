//! Lists: the commands, their arity, flags, routes (Redis 7.0's `src/commands/*.json`).
//! Semantics in `cache/cmd/lists.rs`.

use super::{
    s, Cmd, Family as F, KeySpec, Route as R, Spec, BLOCKING, DENYOOM, NOSCRIPT, READONLY, WRITE,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ListCmd {
    Lpush,
    Rpush,
    Lpushx,
    Rpushx,
    Lpop,
    Rpop,
    Llen,
    Lrange,
    Lindex,
    Lset,
    Linsert,
    Lrem,
    Ltrim,
    Lpos,
    Lmove,
    Rpoplpush,
    Lmpop,
    Blpop,
    Brpop,
    Blmove,
    Brpoplpush,
    Blmpop,
}

use ListCmd as L;

const fn c(l: ListCmd) -> Cmd {
    Cmd::Lists(l)
}

/// Source and destination (LMOVE, RPOPLPUSH and their blocking forms).
const TWO: R = R::Multi(KeySpec::Range {
    first: 1,
    last: 2,
    step: 1,
});
/// Every argument but the last (the timeout): BLPOP, BRPOP.
const ALL_BUT_TIMEOUT: R = R::Multi(KeySpec::Range {
    first: 1,
    last: -2,
    step: 1,
});

pub static TABLE: &[Spec] = &[
    s("lpush", c(L::Lpush), -3, WRITE | DENYOOM, R::Key, F::List),
    s("rpush", c(L::Rpush), -3, WRITE | DENYOOM, R::Key, F::List),
    s("lpushx", c(L::Lpushx), -3, WRITE | DENYOOM, R::Key, F::List),
    s("rpushx", c(L::Rpushx), -3, WRITE | DENYOOM, R::Key, F::List),
    s("lpop", c(L::Lpop), -2, WRITE, R::Key, F::List),
    s("rpop", c(L::Rpop), -2, WRITE, R::Key, F::List),
    s("llen", c(L::Llen), 2, READONLY, R::Key, F::List),
    s("lrange", c(L::Lrange), 4, READONLY, R::Key, F::List),
    s("lindex", c(L::Lindex), 3, READONLY, R::Key, F::List),
    s("lset", c(L::Lset), 4, WRITE | DENYOOM, R::Key, F::List),
    s(
        "linsert",
        c(L::Linsert),
        5,
        WRITE | DENYOOM,
        R::Key,
        F::List,
    ),
    s("lrem", c(L::Lrem), 4, WRITE, R::Key, F::List),
    s("ltrim", c(L::Ltrim), 4, WRITE, R::Key, F::List),
    s("lpos", c(L::Lpos), -3, READONLY, R::Key, F::List),
    s("lmove", c(L::Lmove), 5, WRITE | DENYOOM, TWO, F::List),
    s(
        "rpoplpush",
        c(L::Rpoplpush),
        3,
        WRITE | DENYOOM,
        TWO,
        F::List,
    ),
    s(
        "lmpop",
        c(L::Lmpop),
        -4,
        WRITE,
        R::Multi(KeySpec::NumKeys { at: 1, lead: false }),
        F::List,
    ),
    s(
        "blpop",
        c(L::Blpop),
        -3,
        WRITE | NOSCRIPT | BLOCKING,
        ALL_BUT_TIMEOUT,
        F::List,
    ),
    s(
        "brpop",
        c(L::Brpop),
        -3,
        WRITE | NOSCRIPT | BLOCKING,
        ALL_BUT_TIMEOUT,
        F::List,
    ),
    s(
        "blmove",
        c(L::Blmove),
        6,
        WRITE | DENYOOM | NOSCRIPT | BLOCKING,
        TWO,
        F::List,
    ),
    s(
        "brpoplpush",
        c(L::Brpoplpush),
        4,
        WRITE | DENYOOM | NOSCRIPT | BLOCKING,
        TWO,
        F::List,
    ),
    // Redis 7.0 lets scripts call BLMPOP (it answers at once there): no NOSCRIPT.
    s(
        "blmpop",
        c(L::Blmpop),
        -5,
        WRITE | BLOCKING,
        R::Multi(KeySpec::NumKeys { at: 2, lead: false }),
        F::List,
    ),
];
