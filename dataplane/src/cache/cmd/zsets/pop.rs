//! ZPOPMIN, ZPOPMAX, ZMPOP and what the blocking BZPOPMIN, BZPOPMAX, BZMPOP share with
//! them: popping from the first of several keys that exists, ZMPOP's arguments and reply,
//! and a blocking timeout as Redis reads it.

use super::scores::{parse_float, parse_long, score};
use super::with_zset;
use crate::cache::entry::KIND_ZSET;
use crate::cache::slot::key_slot;
use crate::cache::store::{Store, WrongType};
use crate::cache::types::Zset;
use crate::proto::resp::errors::{
    COUNT_NOT_POSITIVE, MUST_BE_POSITIVE, NUMKEYS_NOT_POSITIVE, SYNTAX, TIMEOUT_NEGATIVE,
    TIMEOUT_NOT_FLOAT, TIMEOUT_OUT_OF_RANGE, WRONGTYPE,
};
use crate::proto::resp::write::Out;
use crate::proto::resp::Args;
/// Pop up to `count` entries from the low (or, with `max`, the high) end, in pop order.
fn pop_many(z: &mut Zset, max: bool, count: usize) -> Vec<(f64, Vec<u8>)> {
    let n = count.min(z.len());
    let lo = if max { z.len() - n } else { 0 };
    let mut popped: Vec<(f64, Vec<u8>)> = z
        .iter_from(lo)
        .take(n)
        .map(|(s, m)| (s, m.to_vec()))
        .collect();
    if max {
        popped.reverse();
    }
    z.remove_ranks(lo, lo + n);
    popped
}

/// The key that answered a pop and what was popped from it, in pop order.
type Popped<'k> = Option<(&'k [u8], Vec<(f64, Vec<u8>)>)>;

/// Pop from the first of `keys` that exists (Redis checks keys in order and stops at the
/// first that exists, so a wrong type after it is never seen).
pub(super) fn pop_first<'k>(
    store: &mut Store,
    keys: &[&'k [u8]],
    max: bool,
    count: usize,
    now: u64,
) -> Result<Popped<'k>, WrongType> {
    for &key in keys {
        let slot = key_slot(key);
        let Some(idx) = store.obj_index_of(slot, key, KIND_ZSET, now)? else {
            continue;
        };
        let popped = with_zset(store, slot, key, idx, |z| {
            let p = pop_many(z, max, count);
            let changed = !p.is_empty();
            (p, changed)
        });
        return Ok(Some((key, popped.unwrap_or_default())));
    }
    Ok(None)
}

pub(super) fn zpop(store: &mut Store, a: &Args, slot: u16, now: u64, max: bool, out: &mut Out) {
    if a.len() > 3 {
        return out.error(SYNTAX);
    }
    let count = if a.len() == 3 {
        match parse_long(a.get(2), 0, i64::MAX) {
            Some(c) => Some(c as usize),
            None => return out.error(MUST_BE_POSITIVE),
        }
    } else {
        None
    };
    let key = a.get(1);
    let idx = match store.obj_index_of(slot, key, KIND_ZSET, now) {
        Ok(Some(idx)) => idx,
        Ok(None) => return out.array(0),
        Err(WrongType) => return out.error(WRONGTYPE),
    };
    if count == Some(0) {
        return out.array(0);
    }
    let popped = with_zset(store, slot, key, idx, |z| {
        let p = pop_many(z, max, count.unwrap_or(1));
        let changed = !p.is_empty();
        (p, changed)
    })
    .unwrap_or_default();
    // With a count, RESP3 answers [member, score] pairs; otherwise a flat array.
    let nested = out.resp3 && count.is_some();
    out.array(if nested {
        popped.len()
    } else {
        2 * popped.len()
    });
    for (s, m) in &popped {
        if nested {
            out.array(2);
        }
        out.bulk(m);
        score(out, *s);
    }
}

/// ZMPOP's (and BZMPOP's) arguments after the key count at `at`: the keys, MIN or MAX, and
/// COUNT (1 when absent).
pub(super) fn parse_mpop<'a>(
    a: &Args<'a>,
    at: usize,
) -> Result<(Vec<&'a [u8]>, bool, usize), &'static str> {
    let numkeys = parse_long(a.get(at), 1, i64::MAX).ok_or(NUMKEYS_NOT_POSITIVE)? as usize;
    let where_at = match at.checked_add(numkeys).and_then(|w| w.checked_add(1)) {
        Some(w) if w < a.len() => w,
        _ => return Err(SYNTAX),
    };
    let max = if a.eq(where_at, "MIN") {
        false
    } else if a.eq(where_at, "MAX") {
        true
    } else {
        return Err(SYNTAX);
    };
    let mut count = None;
    let mut j = where_at + 1;
    while j < a.len() {
        if count.is_none() && a.eq(j, "COUNT") && j + 1 < a.len() {
            j += 1;
            count = Some(parse_long(a.get(j), 1, i64::MAX).ok_or(COUNT_NOT_POSITIVE)? as usize);
        } else {
            return Err(SYNTAX);
        }
        j += 1;
    }
    let keys = (at + 1..where_at).map(|i| a.get(i)).collect();
    Ok((keys, max, count.unwrap_or(1)))
}

/// [key, [[member, score], ...]] in RESP2 and RESP3 alike.
pub(super) fn reply_mpop(out: &mut Out, key: &[u8], popped: &[(f64, Vec<u8>)]) {
    out.array(2);
    out.bulk(key);
    out.array(popped.len());
    for (s, m) in popped {
        out.array(2);
        out.bulk(m);
        score(out, *s);
    }
}

/// A blocking timeout in seconds (a float), as Redis reads it: None waits forever.
pub(super) fn parse_timeout(b: &[u8]) -> Result<Option<u64>, &'static str> {
    let secs = parse_float(b).ok_or(TIMEOUT_NOT_FLOAT)?;
    let ms = (secs * 1000.0).ceil();
    if ms < 0.0 {
        return Err(TIMEOUT_NEGATIVE);
    }
    if ms >= i64::MAX as f64 {
        return Err(TIMEOUT_OUT_OF_RANGE);
    }
    let ms = ms as u64;
    Ok((ms > 0).then_some(ms))
}
