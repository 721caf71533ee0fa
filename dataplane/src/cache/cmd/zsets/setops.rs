//! ZUNION, ZINTER, ZDIFF, their STORE forms and ZINTERCARD over sorted sets and plain
//! sets (whose members score 1): WEIGHTS, AGGREGATE, WITHSCORES and LIMIT as Redis 7.0
//! reads them, every input looked up before the options are read.

use std::borrow::Cow;

use super::scores::{parse_float, parse_long};
use super::{element, header, put_result};
use crate::cache::entry::Entry;
use crate::cache::slot::key_slot;
use crate::cache::store::{Found, Store};
use crate::cache::types::set::Member;
use crate::cache::types::zset::cmp_key;
use crate::cache::types::{Obj, Set, Zset};
use crate::proto::resp::command::Spec;
use crate::proto::resp::errors::{
    at_least_one_key, LIMIT_NEGATIVE, NOT_INT, SYNTAX, WEIGHT_NOT_FLOAT, WRONGTYPE,
};
use crate::proto::resp::write::Out;
use crate::proto::resp::Args;
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Op {
    Union,
    Inter,
    Diff,
    /// ZINTERCARD: the intersection's size only.
    Card,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Aggregate {
    Sum,
    Min,
    Max,
}

/// Redis's `zunionInterAggregate`, comparisons and the NaN convention included.
fn aggregate(target: &mut f64, val: f64, how: Aggregate) {
    match how {
        Aggregate::Sum => {
            *target += val;
            // +inf plus -inf is taken as 0.
            if target.is_nan() {
                *target = 0.0;
            }
        }
        Aggregate::Min => *target = if val < *target { val } else { *target },
        Aggregate::Max => *target = if val > *target { val } else { *target },
    }
}

/// An input of ZUNION and its kin: a sorted set, a plain set (every member scores 1), or
/// nothing.
#[derive(Clone, Copy)]
enum Src<'a> {
    None,
    Zset(&'a Zset),
    Set(&'a Set),
}

impl<'a> Src<'a> {
    fn len(&self) -> usize {
        match self {
            Src::None => 0,
            Src::Zset(z) => z.len(),
            Src::Set(s) => s.len(),
        }
    }

    /// The member's score in this input.
    fn score(&self, m: &[u8]) -> Option<f64> {
        match self {
            Src::None => None,
            Src::Zset(z) => z.score(m),
            // A plain set's members score 1, as in Redis.
            Src::Set(s) => s.contains(m).then_some(1.0),
        }
    }

    /// Every (score, member). A member is borrowed from its input, except a plain set's
    /// integer members, which are spelled out.
    fn entries(&self) -> Box<dyn Iterator<Item = (f64, Cow<'a, [u8]>)> + 'a> {
        match *self {
            Src::None => Box::new(std::iter::empty()),
            Src::Zset(z) => Box::new(z.iter().map(|(s, m)| (s, Cow::Borrowed(m)))),
            Src::Set(s) => Box::new(s.iter().map(|m| {
                let member = match m {
                    Member::Bytes(b) => Cow::Borrowed(b),
                    m => Cow::Owned(m.to_vec()),
                };
                (1.0, member)
            })),
        }
    }
}

pub(super) fn setop(
    store: &mut Store,
    spec: &Spec,
    a: &Args,
    now: u64,
    op: Op,
    to_key: bool,
    out: &mut Out,
) {
    let nk = if to_key { 2 } else { 1 };
    let Some(n) = a.int(nk) else {
        return out.error(NOT_INT);
    };
    if n < 1 {
        return out.error(&at_least_one_key(spec.name));
    }
    if n > (a.len() - nk - 1) as i64 {
        return out.error(SYNTAX);
    }
    let n = n as usize;
    // Look every input up first (each counts a hit or a miss), as Redis does before it
    // reads the options.
    let mut found: Vec<Option<u32>> = Vec::with_capacity(n);
    for j in 0..n {
        let key = a.get(nk + 1 + j);
        let slot = key_slot(key);
        match store.read(slot, key, now) {
            Found::Missing => {
                found.push(None);
                continue;
            }
            Found::Zset(_) | Found::Set(_) => {}
            _ => return out.error(WRONGTYPE),
        }
        found.push(store.peek(slot, key, now).map(Entry::obj_index));
    }
    let mut weights = vec![1.0f64; n];
    let mut how = Aggregate::Sum;
    let mut withscores = false;
    let mut limit = 0usize;
    let mut j = nk + 1 + n;
    let plain = matches!(op, Op::Union | Op::Inter);
    while j < a.len() {
        let left = a.len() - j;
        if plain && left > n && a.eq(j, "WEIGHTS") {
            j += 1;
            for w in weights.iter_mut() {
                match parse_float(a.get(j)) {
                    Some(v) => *w = v,
                    None => return out.error(WEIGHT_NOT_FLOAT),
                }
                j += 1;
            }
        } else if plain && left >= 2 && a.eq(j, "AGGREGATE") {
            how = if a.eq(j + 1, "SUM") {
                Aggregate::Sum
            } else if a.eq(j + 1, "MIN") {
                Aggregate::Min
            } else if a.eq(j + 1, "MAX") {
                Aggregate::Max
            } else {
                return out.error(SYNTAX);
            };
            j += 2;
        } else if !to_key && op != Op::Card && a.eq(j, "WITHSCORES") {
            withscores = true;
            j += 1;
        } else if op == Op::Card && left >= 2 && a.eq(j, "LIMIT") {
            match parse_long(a.get(j + 1), 0, i64::MAX) {
                Some(l) => limit = l as usize,
                None => return out.error(LIMIT_NEGATIVE),
            }
            j += 2;
        } else {
            return out.error(SYNTAX);
        }
    }
    let srcs: Vec<Src> = found
        .iter()
        .map(|f| match f.and_then(|i| store.obj_at(i)) {
            Some(Obj::Zset(z)) => Src::Zset(z),
            Some(Obj::Set(s)) => Src::Set(s),
            _ => Src::None,
        })
        .collect();
    // Smallest input first for union and intersection (Redis sorts them so too).
    let mut order: Vec<usize> = (0..n).collect();
    if op != Op::Diff {
        order.sort_by_key(|&i| srcs[i].len());
    }
    let mut result: Vec<(f64, Cow<[u8]>)> = Vec::new();
    let mut card = 0usize;
    match op {
        Op::Inter | Op::Card => {
            let first = order[0];
            for (s, m) in srcs[first].entries() {
                let mut total = weights[first] * s;
                if total.is_nan() {
                    total = 0.0;
                }
                let mut everywhere = true;
                for &k in &order[1..] {
                    match srcs[k].score(&m) {
                        Some(v) => aggregate(&mut total, v * weights[k], how),
                        None => {
                            everywhere = false;
                            break;
                        }
                    }
                }
                if !everywhere {
                    continue;
                }
                if op == Op::Card {
                    card += 1;
                    if limit > 0 && card >= limit {
                        break;
                    }
                } else {
                    result.push((total, m));
                }
            }
        }
        Op::Union => {
            let largest = order.last().map_or(0, |&i| srcs[i].len());
            let mut acc: hashbrown::HashMap<Cow<[u8]>, f64> =
                hashbrown::HashMap::with_capacity(largest);
            for &k in &order {
                for (s, m) in srcs[k].entries() {
                    let mut v = weights[k] * s;
                    if v.is_nan() {
                        v = 0.0;
                    }
                    acc.entry(m)
                        .and_modify(|t| aggregate(t, v, how))
                        .or_insert(v);
                }
            }
            result.extend(acc.into_iter().map(|(m, s)| (s, m)));
        }
        Op::Diff => {
            for (s, m) in srcs[0].entries() {
                if srcs[1..].iter().all(|o| o.score(&m).is_none()) {
                    result.push((s, m));
                }
            }
        }
    }
    if op == Op::Card {
        return out.int(card as i64);
    }
    result.sort_unstable_by(|x, y| cmp_key(x.0, &x.1, y.0, &y.1));
    if to_key {
        let z = Zset::from_sorted(&result);
        let len = z.len();
        put_result(store, a.get(1), z, now);
        return out.int(len as i64);
    }
    header(out, result.len(), withscores);
    for (s, m) in &result {
        element(out, *s, m, withscores);
    }
}
