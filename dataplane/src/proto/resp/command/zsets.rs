//! Sorted sets: the commands, their arity, flags, routes. Semantics in `cache/cmd`.
//!
//! Arity, flags and key positions are Redis 7.0's (`src/commands/z*.json`, `bz*.json`).

use super::{
    s, Cmd, Family as F, KeySpec, Route as R, Spec, BLOCKING, DENYOOM, NOSCRIPT, READONLY, WRITE,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ZsetCmd {
    Zadd,
    Zincrby,
    Zrem,
    Zcard,
    Zscore,
    Zmscore,
    Zrank,
    Zrevrank,
    Zcount,
    Zlexcount,
    Zrandmember,
    Zscan,
    Zrange,
    Zrangestore,
    Zrangebyscore,
    Zrevrangebyscore,
    Zrangebylex,
    Zrevrangebylex,
    Zrevrange,
    Zremrangebyscore,
    Zremrangebyrank,
    Zremrangebylex,
    Zpopmin,
    Zpopmax,
    Zmpop,
    Bzpopmin,
    Bzpopmax,
    Bzmpop,
    Zunion,
    Zinter,
    Zdiff,
    Zunionstore,
    Zinterstore,
    Zdiffstore,
    Zintercard,
}

use ZsetCmd as Z;

const fn z(name: &'static str, cmd: ZsetCmd, arity: i32, flags: u8, route: R) -> Spec {
    s(name, Cmd::Zsets(cmd), arity, flags, route, F::Zset)
}

/// Keys counted at argument `at`, argument 1 a key too with `lead`.
const fn numkeys(at: usize, lead: bool) -> R {
    R::Multi(KeySpec::NumKeys { at, lead })
}

pub static TABLE: &[Spec] = &[
    z("zadd", Z::Zadd, -4, WRITE | DENYOOM, R::Key),
    z("zincrby", Z::Zincrby, 4, WRITE | DENYOOM, R::Key),
    z("zrem", Z::Zrem, -3, WRITE, R::Key),
    z("zcard", Z::Zcard, 2, READONLY, R::Key),
    z("zscore", Z::Zscore, 3, READONLY, R::Key),
    z("zmscore", Z::Zmscore, -3, READONLY, R::Key),
    z("zrank", Z::Zrank, 3, READONLY, R::Key),
    z("zrevrank", Z::Zrevrank, 3, READONLY, R::Key),
    z("zcount", Z::Zcount, 4, READONLY, R::Key),
    z("zlexcount", Z::Zlexcount, 4, READONLY, R::Key),
    z("zrandmember", Z::Zrandmember, -2, READONLY, R::Key),
    z("zscan", Z::Zscan, -3, READONLY, R::Key),
    z("zrange", Z::Zrange, -4, READONLY, R::Key),
    z(
        "zrangestore",
        Z::Zrangestore,
        -5,
        WRITE | DENYOOM,
        R::Multi(KeySpec::Range {
            first: 1,
            last: 2,
            step: 1,
        }),
    ),
    z("zrangebyscore", Z::Zrangebyscore, -4, READONLY, R::Key),
    z(
        "zrevrangebyscore",
        Z::Zrevrangebyscore,
        -4,
        READONLY,
        R::Key,
    ),
    z("zrangebylex", Z::Zrangebylex, -4, READONLY, R::Key),
    z("zrevrangebylex", Z::Zrevrangebylex, -4, READONLY, R::Key),
    z("zrevrange", Z::Zrevrange, -4, READONLY, R::Key),
    z("zremrangebyscore", Z::Zremrangebyscore, 4, WRITE, R::Key),
    z("zremrangebyrank", Z::Zremrangebyrank, 4, WRITE, R::Key),
    z("zremrangebylex", Z::Zremrangebylex, 4, WRITE, R::Key),
    z("zpopmin", Z::Zpopmin, -2, WRITE, R::Key),
    z("zpopmax", Z::Zpopmax, -2, WRITE, R::Key),
    z("zmpop", Z::Zmpop, -4, WRITE, numkeys(1, false)),
    z(
        "bzpopmin",
        Z::Bzpopmin,
        -3,
        WRITE | NOSCRIPT | BLOCKING,
        R::Multi(KeySpec::Range {
            first: 1,
            last: -2,
            step: 1,
        }),
    ),
    z(
        "bzpopmax",
        Z::Bzpopmax,
        -3,
        WRITE | NOSCRIPT | BLOCKING,
        R::Multi(KeySpec::Range {
            first: 1,
            last: -2,
            step: 1,
        }),
    ),
    z("bzmpop", Z::Bzmpop, -5, WRITE | BLOCKING, numkeys(2, false)),
    z("zunion", Z::Zunion, -3, READONLY, numkeys(1, false)),
    z("zinter", Z::Zinter, -3, READONLY, numkeys(1, false)),
    z("zdiff", Z::Zdiff, -3, READONLY, numkeys(1, false)),
    z(
        "zunionstore",
        Z::Zunionstore,
        -4,
        WRITE | DENYOOM,
        numkeys(2, true),
    ),
    z(
        "zinterstore",
        Z::Zinterstore,
        -4,
        WRITE | DENYOOM,
        numkeys(2, true),
    ),
    z(
        "zdiffstore",
        Z::Zdiffstore,
        -4,
        WRITE | DENYOOM,
        numkeys(2, true),
    ),
    z("zintercard", Z::Zintercard, -3, READONLY, numkeys(1, false)),
];
