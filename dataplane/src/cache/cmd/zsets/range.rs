//! ZRANGE (BYSCORE, BYLEX, REV, LIMIT), ZRANGESTORE and the older ZRANGEBYSCORE,
//! ZREVRANGEBYSCORE, ZRANGEBYLEX, ZREVRANGEBYLEX, ZREVRANGE (Redis's
//! `zrangeGenericCommand`); ZREMRANGEBYSCORE, ZREMRANGEBYRANK, ZREMRANGEBYLEX.

use super::bounds::{rank_span, LexRange, ScoreRange};
use super::{element, header, put_result, read, with_zset};
use crate::cache::entry::KIND_ZSET;
use crate::cache::slot::key_slot;
use crate::cache::store::{Store, WrongType};
use crate::cache::types::Zset;
use crate::proto::resp::errors::{
    LIMIT_WITH_RANK, MIN_MAX_NOT_FLOAT, MIN_MAX_NOT_LEX, NOT_INT, SYNTAX, WITHSCORES_WITH_BYLEX,
    WRONGTYPE,
};
use crate::proto::resp::write::Out;
use crate::proto::resp::Args;
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum By {
    Rank,
    Score,
    Lex,
}

/// ZRANGE, ZRANGESTORE and the older range commands (Redis's `zrangeGenericCommand`): `src`
/// is the source key's position, `by` and `rev` are fixed by the older commands and taken
/// from the options (BYSCORE, BYLEX, REV) by ZRANGE and ZRANGESTORE.
#[allow(clippy::too_many_arguments)]
pub(super) fn zrange(
    store: &mut Store,
    a: &Args,
    src: usize,
    to_key: bool,
    by: Option<By>,
    rev: Option<bool>,
    now: u64,
    out: &mut Out,
) {
    // An option may set the kind and the direction once, and only where the command
    // leaves them open.
    let (mut by_opt, mut rev_opt) = (by, rev);
    let mut withscores = false;
    let (mut offset, mut limit) = (0i64, -1i64);
    let mut j = src + 3;
    while j < a.len() {
        let left = a.len() - j - 1;
        if !to_key && a.eq(j, "WITHSCORES") {
            withscores = true;
        } else if a.eq(j, "LIMIT") && left >= 2 {
            match (a.int(j + 1), a.int(j + 2)) {
                (Some(o), Some(l)) => (offset, limit) = (o, l),
                _ => return out.error(NOT_INT),
            }
            j += 2;
        } else if rev_opt.is_none() && a.eq(j, "REV") {
            rev_opt = Some(true);
        } else if by_opt.is_none() && a.eq(j, "BYLEX") {
            by_opt = Some(By::Lex);
        } else if by_opt.is_none() && a.eq(j, "BYSCORE") {
            by_opt = Some(By::Score);
        } else {
            return out.error(SYNTAX);
        }
        j += 1;
    }
    let by = by_opt.unwrap_or(By::Rank);
    let rev = rev_opt.unwrap_or(false);
    if limit != -1 && by == By::Rank {
        return out.error(LIMIT_WITH_RANK);
    }
    if withscores && by == By::Lex {
        return out.error(WITHSCORES_WITH_BYLEX);
    }
    // By score or lex, a reverse range is given as max, min.
    let (lo_arg, hi_arg) = if rev && by != By::Rank {
        (a.get(src + 2), a.get(src + 1))
    } else {
        (a.get(src + 1), a.get(src + 2))
    };
    enum Range<'a> {
        Rank(i64, i64),
        Score(ScoreRange),
        Lex(LexRange<'a>),
    }
    let range = match by {
        By::Rank => match (
            crate::proto::resp::parse::parse_i64(lo_arg),
            crate::proto::resp::parse::parse_i64(hi_arg),
        ) {
            (Some(s), Some(e)) => Range::Rank(s, e),
            _ => return out.error(NOT_INT),
        },
        By::Score => match ScoreRange::parse(lo_arg, hi_arg) {
            Some(r) => Range::Score(r),
            None => return out.error(MIN_MAX_NOT_FLOAT),
        },
        By::Lex => match LexRange::parse(lo_arg, hi_arg) {
            Some(r) => Range::Lex(r),
            None => return out.error(MIN_MAX_NOT_LEX),
        },
    };
    let key = a.get(src);
    let z = match read(store, key_slot(key), key, now) {
        Err(WrongType) => return out.error(WRONGTYPE),
        Ok(Some(z)) => z,
        Ok(None) => {
            if to_key {
                put_result(store, a.get(1), Zset::default(), now);
                out.int(0);
            } else {
                out.array(0);
            }
            return;
        }
    };
    // The ranks `lo..hi` that answer, in ascending order.
    let (lo, hi) = match range {
        Range::Rank(s, e) => match rank_span(s, e, z.len()) {
            Some((s, e)) if rev => (z.len() - 1 - e, z.len() - s),
            Some((s, e)) => (s, e + 1),
            None => (0, 0),
        },
        Range::Score(r) => page(r.ranks(z), offset, limit, rev),
        Range::Lex(r) => page(r.ranks(z), offset, limit, rev),
    };
    if to_key {
        let entries: Vec<(f64, &[u8])> = z.iter_from(lo).take(hi - lo).collect();
        let result = Zset::from_sorted(&entries);
        let n = result.len();
        put_result(store, a.get(1), result, now);
        return out.int(n as i64);
    }
    header(out, hi - lo, withscores);
    if rev {
        let entries: Vec<(f64, &[u8])> = z.iter_from(lo).take(hi - lo).collect();
        for &(s, m) in entries.iter().rev() {
            element(out, s, m, withscores);
        }
    } else {
        for (s, m) in z.iter_from(lo).take(hi - lo) {
            element(out, s, m, withscores);
        }
    }
}

/// LIMIT offset count over the in-range ranks `start..end`, walked from the top when
/// `rev`: the ranks that answer, ascending. A negative offset answers nothing and a
/// negative count means all (Redis's loops behave so).
fn page((start, end): (usize, usize), offset: i64, limit: i64, rev: bool) -> (usize, usize) {
    if offset < 0 {
        return (0, 0);
    }
    let span = end - start;
    let off = (offset as u64).min(span as u64) as usize;
    let take = if limit < 0 {
        span - off
    } else {
        (limit as u64).min((span - off) as u64) as usize
    };
    if rev {
        (end - off - take, end - off)
    } else {
        (start + off, start + off + take)
    }
}

pub(super) fn zremrange(store: &mut Store, a: &Args, slot: u16, now: u64, by: By, out: &mut Out) {
    let key = a.get(1);
    enum Range<'a> {
        Rank(i64, i64),
        Score(ScoreRange),
        Lex(LexRange<'a>),
    }
    let range = match by {
        By::Rank => match (a.int(2), a.int(3)) {
            (Some(s), Some(e)) => Range::Rank(s, e),
            _ => return out.error(NOT_INT),
        },
        By::Score => match ScoreRange::parse(a.get(2), a.get(3)) {
            Some(r) => Range::Score(r),
            None => return out.error(MIN_MAX_NOT_FLOAT),
        },
        By::Lex => match LexRange::parse(a.get(2), a.get(3)) {
            Some(r) => Range::Lex(r),
            None => return out.error(MIN_MAX_NOT_LEX),
        },
    };
    let idx = match store.obj_index_of(slot, key, KIND_ZSET, now) {
        Ok(Some(idx)) => idx,
        Ok(None) => return out.int(0),
        Err(WrongType) => return out.error(WRONGTYPE),
    };
    let n = with_zset(store, slot, key, idx, |z| {
        let (s, e) = match &range {
            Range::Rank(s, e) => match rank_span(*s, *e, z.len()) {
                Some((s, e)) => (s, e + 1),
                None => (0, 0),
            },
            Range::Score(r) => r.ranks(z),
            Range::Lex(r) => r.ranks(z),
        };
        let n = z.remove_ranks(s, e);
        (n, n > 0)
    });
    out.int(n.unwrap_or(0) as i64);
}
