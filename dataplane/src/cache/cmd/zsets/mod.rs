//! Sorted sets: ZADD, ZINCRBY, ZREM, ZCARD, ZSCORE, ZMSCORE, ZRANK, ZREVRANK, ZCOUNT,
//! ZLEXCOUNT, ZRANDMEMBER, ZSCAN; ZRANGE (BYSCORE, BYLEX, REV, LIMIT) and ZRANGESTORE with
//! the older ZRANGEBYSCORE, ZREVRANGEBYSCORE, ZRANGEBYLEX, ZREVRANGEBYLEX, ZREVRANGE;
//! ZREMRANGEBYSCORE, ZREMRANGEBYRANK, ZREMRANGEBYLEX; ZPOPMIN, ZPOPMAX, ZMPOP and the
//! blocking BZPOPMIN, BZPOPMAX, BZMPOP (one attempt each: see [`try_blocking`]); ZUNION,
//! ZINTER, ZDIFF, their STORE forms and ZINTERCARD.
//!
//! Semantics, reply shapes and error texts are Redis 7.0's (`t_zset.c`), including the order
//! in which it checks arguments and keys. Scores print as Redis 7.0 prints them (`%.17g`):
//! a RESP3 double, a bulk string in RESP2. A command whose keys are several finds each
//! key's slot itself; they all live in this store.
//!
//! One file per concern: this file dispatches ([`exec`], [`try_blocking`], [`timed_out`])
//! and holds what every command shares (reading and changing a key's sorted set, the reply
//! shapes); `scores.rs` prints and parses scores; `bounds.rs` reads score and lex ranges and
//! rank spans; `add.rs` ZADD, ZINCRBY, ZREM; `range.rs` ZRANGE and its family, the
//! ZREMRANGE commands; `pop.rs` the pops, plain and blocking; `randmember.rs` ZRANDMEMBER;
//! `scan.rs` ZSCAN; `setops.rs` ZUNION, ZINTER, ZDIFF, their STORE forms and ZINTERCARD.

mod add;
mod bounds;
mod pop;
mod randmember;
mod range;
mod scan;
mod scores;
mod setops;
#[cfg(test)]
mod tests;

use add::{zadd, zrem};
use bounds::{LexRange, ScoreRange};
use pop::{parse_mpop, parse_timeout, pop_first, reply_mpop, zpop};
use randmember::zrandmember;
use range::{zrange, zremrange, By};
use scan::zscan;
use scores::score;
use setops::{setop, Op};

use super::Attempt;
use crate::cache::entry::{Entry, KIND_ZSET};
use crate::cache::slot::key_slot;
use crate::cache::store::{Found, Store, WrongType};
use crate::cache::types::{Obj, Zset};
use crate::proto::resp::command::zsets::ZsetCmd as Z;
use crate::proto::resp::command::{Cmd, Spec};
use crate::proto::resp::errors::{wrong_args, MIN_MAX_NOT_FLOAT, MIN_MAX_NOT_LEX, WRONGTYPE};
use crate::proto::resp::write::Out;
use crate::proto::resp::Args;

pub fn exec(store: &mut Store, spec: &Spec, a: &Args, slot: u16, now: u64, out: &mut Out) {
    let Cmd::Zsets(cmd) = spec.cmd else {
        return out.error(&wrong_args(spec.name));
    };
    match cmd {
        Z::Zadd => zadd(store, a, slot, now, false, out),
        Z::Zincrby => zadd(store, a, slot, now, true, out),
        Z::Zrem => zrem(store, a, slot, now, out),
        Z::Zcard => match read(store, slot, a.get(1), now) {
            Ok(z) => out.int(z.map_or(0, Zset::len) as i64),
            Err(WrongType) => out.error(WRONGTYPE),
        },
        Z::Zscore => match read(store, slot, a.get(1), now) {
            Ok(Some(z)) => match z.score(a.get(2)) {
                Some(s) => score(out, s),
                None => out.null(),
            },
            Ok(None) => out.null(),
            Err(WrongType) => out.error(WRONGTYPE),
        },
        Z::Zmscore => match read(store, slot, a.get(1), now) {
            Ok(z) => {
                out.array(a.len() - 2);
                for i in 2..a.len() {
                    match z.and_then(|z| z.score(a.get(i))) {
                        Some(s) => score(out, s),
                        None => out.null(),
                    }
                }
            }
            Err(WrongType) => out.error(WRONGTYPE),
        },
        Z::Zrank | Z::Zrevrank => match read(store, slot, a.get(1), now) {
            Ok(Some(z)) => match z.rank(a.get(2)) {
                Some(r) if cmd == Z::Zrank => out.int(r as i64),
                Some(r) => out.int((z.len() - 1 - r) as i64),
                None => out.null(),
            },
            Ok(None) => out.null(),
            Err(WrongType) => out.error(WRONGTYPE),
        },
        Z::Zcount => {
            let Some(range) = ScoreRange::parse(a.get(2), a.get(3)) else {
                return out.error(MIN_MAX_NOT_FLOAT);
            };
            match read(store, slot, a.get(1), now) {
                Ok(z) => out.int(z.map_or(0, |z| range.count(z)) as i64),
                Err(WrongType) => out.error(WRONGTYPE),
            }
        }
        Z::Zlexcount => {
            let Some(range) = LexRange::parse(a.get(2), a.get(3)) else {
                return out.error(MIN_MAX_NOT_LEX);
            };
            match read(store, slot, a.get(1), now) {
                Ok(z) => out.int(z.map_or(0, |z| range.count(z)) as i64),
                Err(WrongType) => out.error(WRONGTYPE),
            }
        }
        Z::Zrandmember => zrandmember(store, a, slot, now, out),
        Z::Zscan => zscan(store, a, slot, now, out),
        Z::Zrange => zrange(store, a, 1, false, None, None, now, out),
        Z::Zrangestore => zrange(store, a, 2, true, None, None, now, out),
        Z::Zrangebyscore => zrange(store, a, 1, false, Some(By::Score), Some(false), now, out),
        Z::Zrevrangebyscore => zrange(store, a, 1, false, Some(By::Score), Some(true), now, out),
        Z::Zrangebylex => zrange(store, a, 1, false, Some(By::Lex), Some(false), now, out),
        Z::Zrevrangebylex => zrange(store, a, 1, false, Some(By::Lex), Some(true), now, out),
        Z::Zrevrange => zrange(store, a, 1, false, Some(By::Rank), Some(true), now, out),
        Z::Zremrangebyscore => zremrange(store, a, slot, now, By::Score, out),
        Z::Zremrangebyrank => zremrange(store, a, slot, now, By::Rank, out),
        Z::Zremrangebylex => zremrange(store, a, slot, now, By::Lex, out),
        Z::Zpopmin | Z::Zpopmax => zpop(store, a, slot, now, cmd == Z::Zpopmax, out),
        Z::Zmpop => match parse_mpop(a, 1) {
            Ok((keys, max, count)) => match pop_first(store, &keys, max, count, now) {
                Ok(Some((key, popped))) => reply_mpop(out, key, &popped),
                Ok(None) => out.null_array(),
                Err(WrongType) => out.error(WRONGTYPE),
            },
            Err(e) => out.error(e),
        },
        Z::Zunion => setop(store, spec, a, now, Op::Union, false, out),
        Z::Zinter => setop(store, spec, a, now, Op::Inter, false, out),
        Z::Zdiff => setop(store, spec, a, now, Op::Diff, false, out),
        Z::Zunionstore => setop(store, spec, a, now, Op::Union, true, out),
        Z::Zinterstore => setop(store, spec, a, now, Op::Inter, true, out),
        Z::Zdiffstore => setop(store, spec, a, now, Op::Diff, true, out),
        Z::Zintercard => setop(store, spec, a, now, Op::Card, false, out),
        // Blocking commands run through `try_blocking` (see `cache::cmd::exec_key`).
        Z::Bzpopmin | Z::Bzpopmax | Z::Bzmpop => out.error(&wrong_args(spec.name)),
    }
}

/// One attempt of BZPOPMIN, BZPOPMAX or BZMPOP: the timeout is checked first (as Redis
/// does), then the keys in order; the first that exists answers (a wrong type is an error),
/// and when none does nothing is written and the command would wait.
pub fn try_blocking(store: &mut Store, spec: &Spec, a: &Args, now: u64, out: &mut Out) -> Attempt {
    let Cmd::Zsets(cmd) = spec.cmd else {
        out.error(&wrong_args(spec.name));
        return Attempt::Answered;
    };
    match cmd {
        Z::Bzpopmin | Z::Bzpopmax => {
            let timeout_ms = match parse_timeout(a.get(a.len() - 1)) {
                Ok(t) => t,
                Err(e) => {
                    out.error(e);
                    return Attempt::Answered;
                }
            };
            let keys: Vec<&[u8]> = (1..a.len() - 1).map(|i| a.get(i)).collect();
            match pop_first(store, &keys, cmd == Z::Bzpopmax, 1, now) {
                Ok(Some((key, popped))) => {
                    // A flat [key, member, score], in RESP2 and RESP3 alike.
                    out.array(1 + 2 * popped.len());
                    out.bulk(key);
                    for (s, m) in &popped {
                        out.bulk(m);
                        score(out, *s);
                    }
                }
                Ok(None) => return Attempt::WouldBlock { timeout_ms },
                Err(WrongType) => out.error(WRONGTYPE),
            }
        }
        Z::Bzmpop => {
            let (keys, max, count) = match parse_mpop(a, 2) {
                Ok(p) => p,
                Err(e) => {
                    out.error(e);
                    return Attempt::Answered;
                }
            };
            let timeout_ms = match parse_timeout(a.get(1)) {
                Ok(t) => t,
                Err(e) => {
                    out.error(e);
                    return Attempt::Answered;
                }
            };
            match pop_first(store, &keys, max, count, now) {
                Ok(Some((key, popped))) => reply_mpop(out, key, &popped),
                Ok(None) => return Attempt::WouldBlock { timeout_ms },
                Err(WrongType) => out.error(WRONGTYPE),
            }
        }
        _ => out.error(&wrong_args(spec.name)),
    }
    Attempt::Answered
}

/// A blocking command's reply when its timeout passes: the null array (RESP3 `_`).
pub fn timed_out(_spec: &Spec, out: &mut Out) {
    out.null_array();
}

// ----- access -------------------------------------------------------------------------------

/// The sorted set at `key` for a read (a hit or miss is counted): None when absent.
fn read<'s>(
    store: &'s mut Store,
    slot: u16,
    key: &[u8],
    now: u64,
) -> Result<Option<&'s Zset>, WrongType> {
    match store.read(slot, key, now) {
        Found::Zset(z) => Ok(Some(z)),
        Found::Missing => Ok(None),
        _ => Err(WrongType),
    }
}

/// Change the sorted set at object `idx` (named by `key`); `f` returns its result and
/// whether it changed the set. An emptied set goes with its key.
fn with_zset<R>(
    store: &mut Store,
    slot: u16,
    key: &[u8],
    idx: u32,
    f: impl FnOnce(&mut Zset) -> (R, bool),
) -> Option<R> {
    store
        .with_obj(slot, key, idx, |obj| match obj {
            Obj::Zset(z) => {
                let (r, changed) = f(z);
                (Some(r), changed)
            }
            _ => (None, false),
        })
        .flatten()
}

/// Make `key` hold `z` (a new value, no TTL), or delete it when `z` is empty.
fn put_result(store: &mut Store, key: &[u8], z: Zset, now: u64) {
    let slot = key_slot(key);
    if z.is_empty() {
        store.remove(slot, key);
    } else {
        let idx = store.new_obj(Obj::Zset(z));
        store.put(slot, Entry::object(KIND_ZSET, key, idx, None, 0), now);
    }
}

// ----- replies ------------------------------------------------------------------------------

/// The array header for `n` elements (with scores: a flat array of 2n in RESP2, n pairs in
/// RESP3, as Redis answers ZRANGE WITHSCORES).
fn header(out: &mut Out, n: usize, withscores: bool) {
    if withscores && !out.resp3 {
        out.array(2 * n);
    } else {
        out.array(n);
    }
}

fn element(out: &mut Out, s: f64, m: &[u8], withscores: bool) {
    if withscores {
        if out.resp3 {
            out.array(2);
        }
        out.bulk(m);
        score(out, s);
    } else {
        out.bulk(m);
    }
}
