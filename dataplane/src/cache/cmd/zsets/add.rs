//! ZADD (NX, XX, CH, INCR, GT, LT), ZINCRBY and ZREM: the commands that add, rescore and
//! remove members. Every score is parsed before anything changes.

use super::scores::{parse_float, score};
use super::with_zset;
use crate::cache::entry::KIND_ZSET;
use crate::cache::store::{Store, WrongType};
use crate::proto::resp::errors::{
    NOT_FLOAT, SCORE_NAN, SYNTAX, WRONGTYPE, ZADD_GT_LT_NX, ZADD_INCR_PAIR, ZADD_XX_NX,
};
use crate::proto::resp::write::Out;
use crate::proto::resp::Args;
pub(super) fn zadd(store: &mut Store, a: &Args, slot: u16, now: u64, zincrby: bool, out: &mut Out) {
    let key = a.get(1);
    let (mut nx, mut xx, mut ch, mut incr, mut gt, mut lt) =
        (false, false, false, zincrby, false, false);
    let mut i = 2;
    while i < a.len() {
        if a.eq(i, "NX") {
            nx = true;
        } else if a.eq(i, "XX") {
            xx = true;
        } else if a.eq(i, "CH") {
            ch = true;
        } else if a.eq(i, "INCR") {
            incr = true;
        } else if a.eq(i, "GT") {
            gt = true;
        } else if a.eq(i, "LT") {
            lt = true;
        } else {
            break;
        }
        i += 1;
    }
    let pairs = a.len() - i;
    if pairs == 0 || pairs % 2 != 0 {
        return out.error(SYNTAX);
    }
    if nx && xx {
        return out.error(ZADD_XX_NX);
    }
    if (nx && (gt || lt)) || (gt && lt) {
        return out.error(ZADD_GT_LT_NX);
    }
    if incr && pairs > 2 {
        return out.error(ZADD_INCR_PAIR);
    }
    // Every score is parsed before anything changes: the command applies fully or not.
    let mut scores = Vec::with_capacity(pairs / 2);
    for j in (i..a.len()).step_by(2) {
        match parse_float(a.get(j)) {
            Some(s) => scores.push(s),
            None => return out.error(NOT_FLOAT),
        }
    }
    let (idx, created) = match store.obj_index_of(slot, key, KIND_ZSET, now) {
        Err(WrongType) => return out.error(WRONGTYPE),
        Ok(Some(idx)) => (idx, false),
        // No key and XX: nothing to do.
        Ok(None) if xx => return if incr { out.null() } else { out.int(0) },
        Ok(None) => match store.obj_for_write(slot, key, KIND_ZSET, now) {
            Ok(idx) => (idx, true),
            Err(WrongType) => return out.error(WRONGTYPE),
        },
    };
    let r = with_zset(store, slot, key, idx, |z| {
        if created {
            let bytes = (i + 1..a.len()).step_by(2).map(|j| a.get(j).len()).sum();
            z.reserve(scores.len(), bytes);
        }
        let (mut added, mut updated, mut processed) = (0i64, 0i64, 0i64);
        let mut last = 0.0;
        for (k, &s) in scores.iter().enumerate() {
            let member = a.get(i + 1 + 2 * k);
            match z.score(member) {
                Some(cur) => {
                    if nx {
                        continue;
                    }
                    let mut s = s;
                    if incr {
                        s += cur;
                        if s.is_nan() {
                            return (Err(SCORE_NAN), added + updated > 0);
                        }
                    }
                    if (lt && s >= cur) || (gt && s <= cur) {
                        continue;
                    }
                    processed += 1;
                    last = s;
                    if s != cur {
                        z.rescore(member, cur, s);
                        updated += 1;
                    }
                }
                None => {
                    if xx {
                        continue;
                    }
                    z.insert_new(s, member);
                    added += 1;
                    processed += 1;
                    last = s;
                }
            }
        }
        (Ok((added, updated, processed, last)), added + updated > 0)
    });
    match r {
        Some(Ok((added, updated, processed, last))) => {
            if incr {
                if processed > 0 {
                    score(out, last)
                } else {
                    out.null()
                }
            } else {
                out.int(if ch { added + updated } else { added })
            }
        }
        Some(Err(e)) => out.error(e),
        None => out.error(WRONGTYPE),
    }
}

pub(super) fn zrem(store: &mut Store, a: &Args, slot: u16, now: u64, out: &mut Out) {
    let key = a.get(1);
    let idx = match store.obj_index_of(slot, key, KIND_ZSET, now) {
        Ok(Some(idx)) => idx,
        Ok(None) => return out.int(0),
        Err(WrongType) => return out.error(WRONGTYPE),
    };
    let removed = with_zset(store, slot, key, idx, |z| {
        let mut n = 0;
        for i in 2..a.len() {
            n += z.remove(a.get(i)).is_some() as i64;
            if z.is_empty() {
                break;
            }
        }
        (n, n > 0)
    });
    out.int(removed.unwrap_or(0));
}
