//! The pops: LPOP and RPOP (with or without a count), LMPOP's arguments and its pop from the
//! first key that holds a list, and the pop of BLPOP and BRPOP. A pop that empties a list
//! deletes its key (`Store::with_obj`).

use super::{end_arg, with_list};
use crate::cache::entry::KIND_LIST;
use crate::cache::slot::key_slot;
use crate::cache::store::{Store, WrongType};
use crate::cache::types::list::{End, List};
use crate::proto::resp::command::lists::ListCmd as L;
use crate::proto::resp::command::Spec;
use crate::proto::resp::errors::{
    wrong_args, COUNT_POSITIVE, MUST_BE_POSITIVE, NUMKEYS_POSITIVE, SYNTAX, WRONGTYPE,
};
use crate::proto::resp::write::Out;
use crate::proto::resp::Args;

pub(super) fn pop(
    store: &mut Store,
    spec: &Spec,
    cmd: L,
    a: &Args,
    slot: u16,
    now: u64,
    out: &mut Out,
) {
    if a.len() > 3 {
        return out.error(&wrong_args(spec.name));
    }
    let count = match a.len() {
        3 => match a.int(2).and_then(|c| usize::try_from(c).ok()) {
            Some(c) => Some(c),
            None => return out.error(MUST_BE_POSITIVE),
        },
        _ => None,
    };
    let key = a.get(1);
    let end = if cmd == L::Lpop { End::Head } else { End::Tail };
    let idx = match store.obj_index_of(slot, key, KIND_LIST, now) {
        Ok(Some(idx)) => idx,
        Ok(None) if count.is_some() => return out.null_array(),
        Ok(None) => return out.null(),
        Err(WrongType) => return out.error(WRONGTYPE),
    };
    match count {
        Some(0) => out.array(0),
        Some(n) => with_list(store, slot, key, idx, |l| {
            pop_reply(l, end, n, out);
            ((), true)
        }),
        None => with_list(store, slot, key, idx, |l| {
            l.pop(end, |e| e.with_bytes(|b| out.bulk(b)));
            ((), true)
        }),
    }
}

/// Pop up to `n` elements at `end`, replying with them as an array in the order popped.
fn pop_reply(l: &mut List, end: End, n: usize, out: &mut Out) {
    let n = n.min(l.len());
    out.array(n);
    match end {
        End::Head => l
            .iter_from(0)
            .take(n)
            .for_each(|e| e.with_bytes(|b| out.bulk(b))),
        End::Tail => l
            .iter_rev()
            .take(n)
            .for_each(|e| e.with_bytes(|b| out.bulk(b))),
    }
    l.drop_end(end, n);
}

/// LMPOP's and BLMPOP's parsed arguments: keys `first .. first + n`, the end, the count.
pub(super) struct Mpop {
    first: usize,
    n: usize,
    end: End,
    count: usize,
}

/// Parse `numkeys key... LEFT|RIGHT [COUNT count]` with numkeys at argument `at`.
pub(super) fn mpop_args(a: &Args, at: usize) -> Result<Mpop, &'static str> {
    let n = a
        .int(at)
        .and_then(|n| usize::try_from(n).ok())
        .filter(|&n| n > 0)
        .ok_or(NUMKEYS_POSITIVE)?;
    let where_at = match n.checked_add(at + 1) {
        Some(w) if w < a.len() => w,
        _ => return Err(SYNTAX),
    };
    let end = end_arg(a, where_at).ok_or(SYNTAX)?;
    let mut count = None;
    let mut j = where_at + 1;
    while j < a.len() {
        if count.is_none() && a.eq(j, "COUNT") && j + 1 < a.len() {
            j += 1;
            let c = a
                .int(j)
                .and_then(|c| usize::try_from(c).ok())
                .filter(|&c| c > 0)
                .ok_or(COUNT_POSITIVE)?;
            count = Some(c);
        } else {
            return Err(SYNTAX);
        }
        j += 1;
    }
    Ok(Mpop {
        first: at + 1,
        n,
        end,
        count: count.unwrap_or(1),
    })
}

/// Pop from the first of the keys that holds a list: `[key, [elements]]`. False (nothing
/// written) when none does; a key of another type before it is an answer.
pub(super) fn mpop(store: &mut Store, a: &Args, m: &Mpop, now: u64, out: &mut Out) -> bool {
    for i in m.first..m.first + m.n {
        let key = a.get(i);
        let slot = key_slot(key);
        match store.obj_index_of(slot, key, KIND_LIST, now) {
            Ok(Some(idx)) => {
                with_list(store, slot, key, idx, |l| {
                    out.array(2);
                    out.bulk(key);
                    pop_reply(l, m.end, m.count, out);
                    ((), true)
                });
                return true;
            }
            Ok(None) => {}
            Err(WrongType) => {
                out.error(WRONGTYPE);
                return true;
            }
        }
    }
    false
}

/// BLPOP/BRPOP: pop one element from the first of `keys` that holds a list: `[key,
/// element]`. False (nothing written) when none does.
pub(super) fn bpop(
    store: &mut Store,
    a: &Args,
    keys: std::ops::Range<usize>,
    end: End,
    now: u64,
    out: &mut Out,
) -> bool {
    for i in keys {
        let key = a.get(i);
        let slot = key_slot(key);
        match store.obj_index_of(slot, key, KIND_LIST, now) {
            Ok(Some(idx)) => {
                with_list(store, slot, key, idx, |l| {
                    out.array(2);
                    out.bulk(key);
                    l.pop(end, |e| e.with_bytes(|b| out.bulk(b)));
                    ((), true)
                });
                return true;
            }
            Ok(None) => {}
            Err(WrongType) => {
                out.error(WRONGTYPE);
                return true;
            }
        }
    }
    false
}
