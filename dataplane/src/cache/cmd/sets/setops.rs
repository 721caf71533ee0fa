//! Set algebra over several keys: SINTERCARD, and what SINTER, SUNION, SDIFF and their
//! STORE forms share: every key looked up first (`sets_of`), the intersection from the
//! smallest set, union, difference by the cheaper of Redis's two ways, and the STORE end.

use std::ops::Range;

use crate::cache::entry::{Entry, KIND_SET};
use crate::cache::slot::key_slot;
use crate::cache::store::{Found, Store, WrongType};
use crate::cache::types::set::{Member, Set};
use crate::cache::types::Obj;
use crate::proto::resp::errors::{
    SET_LIMIT_NEGATIVE, SET_NUMKEYS_NOT_POSITIVE, SET_NUMKEYS_OVER_ARGS, SYNTAX, WRONGTYPE,
};
use crate::proto::resp::write::Out;
use crate::proto::resp::Args;

/// SINTERCARD numkeys key [key ...] [LIMIT limit]: arguments are checked before any key.
pub(super) fn sintercard(store: &mut Store, a: &Args, now: u64, out: &mut Out) {
    let numkeys = match a.int(1) {
        Some(n) if n >= 1 => n as u64,
        _ => return out.error(SET_NUMKEYS_NOT_POSITIVE),
    };
    if numkeys > (a.len() - 2) as u64 {
        return out.error(SET_NUMKEYS_OVER_ARGS);
    }
    let keys = 2..2 + numkeys as usize;
    let mut limit = 0;
    let mut i = keys.end;
    while i < a.len() {
        if !(a.eq(i, "LIMIT") && i + 1 < a.len()) {
            return out.error(SYNTAX);
        }
        limit = match a.int(i + 1) {
            Some(l) if l >= 0 => l as usize,
            _ => return out.error(SET_LIMIT_NEGATIVE),
        };
        i += 2;
    }
    let sets = match sets_of(store, a, keys, now) {
        Ok(sets) => sets,
        Err(WrongType) => return out.error(WRONGTYPE),
    };
    let n = match smallest_first(&sets) {
        None => 0,
        Some((first, rest)) if limit > 0 => in_all(first, &rest).take(limit).count(),
        Some((first, rest)) => in_all(first, &rest).count(),
    };
    out.int(n as i64)
}

/// The sets of the keys at `keys` for a command that reads them together (None for a
/// missing key). Every key is looked up first, as Redis does (a hit or miss counted each),
/// and a key of another type fails the command before any set is used.
pub(super) fn sets_of<'s>(
    store: &'s mut Store,
    a: &Args,
    keys: Range<usize>,
    now: u64,
) -> Result<Vec<Option<&'s Set>>, WrongType> {
    let mut found = Vec::with_capacity(keys.len());
    for i in keys {
        let (key, slot) = (a.get(i), key_slot(a.get(i)));
        match store.read(slot, key, now) {
            Found::Set(_) => found.push(store.obj_index_of(slot, key, KIND_SET, now)?),
            Found::Missing => found.push(None),
            _ => return Err(WrongType),
        }
    }
    let store: &'s Store = store;
    Ok(found
        .into_iter()
        .map(|idx| match idx.and_then(|i| store.obj_at(i)) {
            Some(Obj::Set(s)) => Some(s),
            _ => None,
        })
        .collect())
}

/// For an intersection: the smallest set and the others, or None when a key is missing
/// (its intersection is empty).
pub(super) fn smallest_first<'s>(sets: &[Option<&'s Set>]) -> Option<(&'s Set, Vec<&'s Set>)> {
    let mut all: Vec<&Set> = sets.iter().copied().collect::<Option<_>>()?;
    all.sort_by_key(|s| s.len());
    let first = all.remove(0);
    // The same key named twice needs no check against itself.
    all.retain(|s| !std::ptr::eq(*s, first));
    Some((first, all))
}

/// Members of `first` that are in every one of `rest`.
pub(super) fn in_all<'s, 'r>(
    first: &'s Set,
    rest: &'r [&'s Set],
) -> impl Iterator<Item = Member<'s>> + 'r
where
    's: 'r,
{
    first
        .iter()
        .filter(move |m| rest.iter().all(|s| s.contains_member(*m)))
}

pub(super) fn union(sets: &[Option<&Set>]) -> Set {
    let mut r = Set::default();
    for s in sets.iter().flatten() {
        s.iter().for_each(|m| {
            r.insert_member(m);
        });
    }
    r
}

/// Members of the first set in none of the others, by whichever of Redis's two ways costs
/// less: test each member of the first against the others (biggest first), or copy the
/// first and remove the others' members.
pub(super) fn diff(sets: &[Option<&Set>]) -> Set {
    let mut r = Set::default();
    let Some((Some(first), rest)) = sets.split_first() else {
        return r;
    };
    let mut others: Vec<&Set> = rest.iter().flatten().copied().collect();
    let test_each = first.len() * (others.len() + 1) / 2;
    let remove_all = first.len() + others.iter().map(|s| s.len()).sum::<usize>();
    if test_each <= remove_all {
        others.sort_by_key(|s| std::cmp::Reverse(s.len()));
        for m in first.iter() {
            if !others.iter().any(|s| s.contains_member(m)) {
                r.insert_member(m);
            }
        }
    } else {
        first.iter().for_each(|m| {
            r.insert_member(m);
        });
        for s in others {
            if r.is_empty() {
                break;
            }
            s.iter().for_each(|m| {
                r.remove_member(m);
            });
        }
    }
    r
}

/// A STORE form's end: the result replaces the destination (whatever it held), or deletes
/// it when empty; the reply is the result's size.
pub(super) fn store_result(store: &mut Store, dest: &[u8], result: Set, now: u64, out: &mut Out) {
    let slot = key_slot(dest);
    let n = result.len();
    if n == 0 {
        store.remove(slot, dest);
    } else {
        let idx = store.new_obj(Obj::Set(result));
        store.put(slot, Entry::object(KIND_SET, dest, idx, None, 0), now);
    }
    out.int(n as i64)
}
