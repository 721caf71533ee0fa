//! Lists: LPUSH, RPUSH, LPUSHX, RPUSHX, LPOP, RPOP, LLEN, LRANGE, LINDEX, LSET, LINSERT,
//! LREM, LTRIM, LPOS, LMOVE, RPOPLPUSH, LMPOP, and one attempt of the blocking BLPOP, BRPOP,
//! BLMOVE, BRPOPLPUSH and BLMPOP, with Redis 7.0's replies, argument order of checks and
//! error texts (`t_list.c`).
//!
//! Commands with several keys (LMOVE, RPOPLPUSH, LMPOP and the blocking ones) run with all
//! their keys on this store and find each key's slot with `key_slot`. A list is never left
//! empty: `Store::with_obj` deletes the key of a list that a command emptied.
//!
//! A blocking command's attempt (`try_blocking`) answers when a key has data (or its
//! arguments are wrong) and otherwise writes nothing and says how long the command would
//! wait; waiting itself is the shard's business.
//!
//! One file per concern: this file dispatches ([`exec`], [`try_blocking`], [`timed_out`]),
//! runs the commands of a few lines each (LLEN, LRANGE, LINDEX, LSET, LINSERT, LREM, LTRIM)
//! and holds what the others share (a key's list, LEFT/RIGHT, index and range arguments, a
//! blocking timeout); `push.rs` the pushes; `pop.rs` the pops: LPOP, RPOP, LMPOP and the
//! blocking BLPOP, BRPOP, BLMPOP; `lpos.rs` LPOS; `lmove.rs` LMOVE, RPOPLPUSH and their
//! blocking forms.

mod lmove;
mod lpos;
mod pop;
mod push;
#[cfg(test)]
mod tests;

use lmove::lmove;
use lpos::lpos;
use pop::{bpop, mpop, mpop_args, pop};
use push::push;

use super::Attempt;
use crate::cache::entry::KIND_LIST;
use crate::cache::store::{Found, Store, WrongType};
use crate::cache::types::list::{End, List};
use crate::cache::types::Obj;
use crate::proto::resp::command::lists::ListCmd as L;
use crate::proto::resp::command::{Cmd, Spec};
use crate::proto::resp::errors::{
    wrong_args, INDEX_OUT_OF_RANGE, NOT_INT, NO_SUCH_KEY, SYNTAX, TIMEOUT_NEGATIVE,
    TIMEOUT_NOT_FLOAT, TIMEOUT_OUT_OF_RANGE, WRONGTYPE,
};
use crate::proto::resp::write::Out;
use crate::proto::resp::Args;

pub fn exec(store: &mut Store, spec: &Spec, a: &Args, slot: u16, now: u64, out: &mut Out) {
    let Cmd::Lists(cmd) = spec.cmd else {
        return out.error(&wrong_args(spec.name));
    };
    let key = a.get(1);
    match cmd {
        L::Lpush | L::Rpush | L::Lpushx | L::Rpushx => push(store, cmd, a, slot, now, out),
        L::Lpop | L::Rpop => pop(store, spec, cmd, a, slot, now, out),
        L::Llen => match store.read(slot, key, now) {
            Found::List(l) => out.int(l.len() as i64),
            Found::Missing => out.int(0),
            _ => out.error(WRONGTYPE),
        },
        L::Lrange => {
            let (Some(start), Some(stop)) = (a.int(2), a.int(3)) else {
                return out.error(NOT_INT);
            };
            match store.read(slot, key, now) {
                Found::List(l) => match range(l.len(), start, stop) {
                    Some((first, n)) => {
                        out.array(n);
                        for e in l.iter_from(first).take(n) {
                            e.with_bytes(|b| out.bulk(b));
                        }
                    }
                    None => out.array(0),
                },
                Found::Missing => out.array(0),
                _ => out.error(WRONGTYPE),
            }
        }
        L::Lindex => match store.read(slot, key, now) {
            Found::List(l) => {
                let Some(i) = a.int(2) else {
                    return out.error(NOT_INT);
                };
                match index(l.len(), i).and_then(|i| l.get(i)) {
                    Some(e) => e.with_bytes(|b| out.bulk(b)),
                    None => out.null(),
                }
            }
            Found::Missing => out.null(),
            _ => out.error(WRONGTYPE),
        },
        L::Lset => {
            let idx = match store.obj_index_of(slot, key, KIND_LIST, now) {
                Ok(Some(idx)) => idx,
                Ok(None) => return out.error(NO_SUCH_KEY),
                Err(WrongType) => return out.error(WRONGTYPE),
            };
            let Some(i) = a.int(2) else {
                return out.error(NOT_INT);
            };
            let value = a.get(3);
            let done = with_list(store, slot, key, idx, |l| {
                let done = index(l.len(), i).is_some_and(|i| l.set(i, value));
                (done, done)
            });
            if done {
                out.ok()
            } else {
                out.error(INDEX_OUT_OF_RANGE)
            }
        }
        L::Linsert => {
            let after = if a.eq(2, "AFTER") {
                true
            } else if a.eq(2, "BEFORE") {
                false
            } else {
                return out.error(SYNTAX);
            };
            let idx = match store.obj_index_of(slot, key, KIND_LIST, now) {
                Ok(Some(idx)) => idx,
                Ok(None) => return out.int(0),
                Err(WrongType) => return out.error(WRONGTYPE),
            };
            let (pivot, value) = (a.get(3), a.get(4));
            let n = with_list(store, slot, key, idx, |l| {
                if l.insert(pivot, after, value) {
                    (l.len() as i64, true)
                } else {
                    (-1, false)
                }
            });
            out.int(n)
        }
        L::Lrem => {
            let Some(count) = a.int(2) else {
                return out.error(NOT_INT);
            };
            let idx = match store.obj_index_of(slot, key, KIND_LIST, now) {
                Ok(Some(idx)) => idx,
                Ok(None) => return out.int(0),
                Err(WrongType) => return out.error(WRONGTYPE),
            };
            let from = if count < 0 { End::Tail } else { End::Head };
            let limit = usize::try_from(count.unsigned_abs()).unwrap_or(usize::MAX);
            let value = a.get(3);
            let n = with_list(store, slot, key, idx, |l| {
                let n = l.remove_matching(value, limit, from);
                (n, n > 0)
            });
            out.int(n as i64)
        }
        L::Ltrim => {
            let (Some(start), Some(stop)) = (a.int(2), a.int(3)) else {
                return out.error(NOT_INT);
            };
            let idx = match store.obj_index_of(slot, key, KIND_LIST, now) {
                Ok(Some(idx)) => idx,
                Ok(None) => return out.ok(),
                Err(WrongType) => return out.error(WRONGTYPE),
            };
            with_list(store, slot, key, idx, |l| {
                let len = l.len();
                let (left, right) = match range(len, start, stop) {
                    Some((first, n)) => (first, len - first - n),
                    None => (len, 0),
                };
                l.drop_end(End::Head, left);
                l.drop_end(End::Tail, right);
                ((), true)
            });
            out.ok()
        }
        L::Lpos => lpos(store, a, slot, now, out),
        L::Lmove | L::Rpoplpush => {
            let ends = if cmd == L::Lmove {
                end_arg(a, 3).zip(end_arg(a, 4))
            } else {
                Some((End::Tail, End::Head))
            };
            let Some((from, to)) = ends else {
                return out.error(SYNTAX);
            };
            if !lmove(store, a.get(1), a.get(2), from, to, now, out) {
                out.null();
            }
        }
        L::Lmpop => match mpop_args(a, 1) {
            Ok(m) => {
                if !mpop(store, a, &m, now, out) {
                    out.null_array();
                }
            }
            Err(e) => out.error(e),
        },
        L::Blpop | L::Brpop | L::Blmove | L::Brpoplpush | L::Blmpop => {
            if let Attempt::WouldBlock { .. } = try_blocking(store, spec, a, now, out) {
                timed_out(spec, out);
            }
        }
    }
}

/// One attempt of a blocking command (see `cache::cmd::try_blocking`): the arguments are
/// checked as Redis checks them (an error is an answer), then the first key with data is
/// served. When no key has data nothing is written.
pub fn try_blocking(store: &mut Store, spec: &Spec, a: &Args, now: u64, out: &mut Out) -> Attempt {
    let Cmd::Lists(cmd) = spec.cmd else {
        out.error(&wrong_args(spec.name));
        return Attempt::Answered;
    };
    let n = a.len();
    let (served, timeout_arg) = match cmd {
        L::Blpop | L::Brpop => {
            let timeout_ms = match parse_timeout(a.get(n - 1), now) {
                Ok(t) => t,
                Err(e) => return error(out, e),
            };
            let end = if cmd == L::Blpop {
                End::Head
            } else {
                End::Tail
            };
            (bpop(store, a, 1..n - 1, end, now, out), timeout_ms)
        }
        L::Blmove | L::Brpoplpush => {
            let ends = if cmd == L::Blmove {
                end_arg(a, 3).zip(end_arg(a, 4))
            } else {
                Some((End::Tail, End::Head))
            };
            let Some((from, to)) = ends else {
                return error(out, SYNTAX);
            };
            let timeout_ms = match parse_timeout(a.get(n - 1), now) {
                Ok(t) => t,
                Err(e) => return error(out, e),
            };
            (
                lmove(store, a.get(1), a.get(2), from, to, now, out),
                timeout_ms,
            )
        }
        L::Blmpop => {
            let m = match mpop_args(a, 2) {
                Ok(m) => m,
                Err(e) => return error(out, e),
            };
            let timeout_ms = match parse_timeout(a.get(1), now) {
                Ok(t) => t,
                Err(e) => return error(out, e),
            };
            (mpop(store, a, &m, now, out), timeout_ms)
        }
        _ => return error(out, &wrong_args(spec.name)),
    };
    if served {
        Attempt::Answered
    } else {
        Attempt::WouldBlock {
            timeout_ms: timeout_arg,
        }
    }
}

/// A blocking command's reply when its timeout passes: a null array, or for BLMOVE and
/// BRPOPLPUSH (whose answer is one element) a null bulk string.
pub fn timed_out(spec: &Spec, out: &mut Out) {
    match spec.cmd {
        Cmd::Lists(L::Blmove | L::Brpoplpush) => out.null(),
        _ => out.null_array(),
    }
}

fn error(out: &mut Out, e: &str) -> Attempt {
    out.error(e);
    Attempt::Answered
}

/// A blocking command's timeout: seconds as a float, turned into milliseconds rounded up
/// (Redis's `getTimeoutFromObjectOrReply`); `None` for 0, which waits forever. `now_ms`
/// bounds it so that the deadline fits the clock.
pub fn parse_timeout(b: &[u8], now_ms: u64) -> Result<Option<u64>, &'static str> {
    let secs = super::parse_f64(b).ok_or(TIMEOUT_NOT_FLOAT)?;
    let ms = secs * 1000.0;
    if ms > i64::MAX as f64 {
        return Err(TIMEOUT_OUT_OF_RANGE);
    }
    let ms = ms.ceil();
    if ms < 0.0 {
        return Err(TIMEOUT_NEGATIVE);
    }
    let ms = ms as u64;
    if ms > (i64::MAX as u64).saturating_sub(now_ms) {
        return Err(TIMEOUT_OUT_OF_RANGE);
    }
    Ok((ms > 0).then_some(ms))
}

/// Run `f` on the list at `idx` (named by `key`); `f` says whether it changed the list.
fn with_list<R>(
    store: &mut Store,
    slot: u16,
    key: &[u8],
    idx: u32,
    f: impl FnOnce(&mut List) -> (R, bool),
) -> R {
    let r = store.with_obj(slot, key, idx, |o| match o {
        Obj::List(l) => {
            let (r, changed) = f(l);
            (Some(r), changed)
        }
        _ => (None, false),
    });
    match r.flatten() {
        Some(r) => r,
        // The entry says list and names an object the store does not hold as one: the
        // books are broken.
        None => panic!("list entry without its list"),
    }
}

/// LEFT or RIGHT.
fn end_arg(a: &Args, i: usize) -> Option<End> {
    if a.eq(i, "LEFT") {
        Some(End::Head)
    } else if a.eq(i, "RIGHT") {
        Some(End::Tail)
    } else {
        None
    }
}

/// An index as LINDEX and LSET take it (negative from the tail), if within `len`.
fn index(len: usize, i: i64) -> Option<usize> {
    let i = if i < 0 { len as i64 + i } else { i };
    usize::try_from(i).ok().filter(|&i| i < len)
}

/// LRANGE's and LTRIM's inclusive `start..=stop` (negative from the tail) as the first
/// index and the number of elements; None when empty.
fn range(len: usize, start: i64, stop: i64) -> Option<(usize, usize)> {
    let llen = len as i64;
    let start = if start < 0 { llen + start } else { start }.max(0);
    let stop = if stop < 0 { llen + stop } else { stop };
    if start > stop || start >= llen {
        return None;
    }
    let stop = stop.min(llen - 1);
    Some((start as usize, (stop - start + 1) as usize))
}
