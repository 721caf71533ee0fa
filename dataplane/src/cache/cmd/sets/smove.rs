//! SMOVE source destination member: a member moved between two sets, the destination
//! written only when the member is new there.

use super::with_set;

use crate::cache::entry::KIND_SET;
use crate::cache::slot::key_slot;
use crate::cache::store::{Store, WrongType};
use crate::cache::types::Obj;
use crate::proto::resp::errors::WRONGTYPE;
use crate::proto::resp::write::Out;
use crate::proto::resp::Args;

/// SMOVE source destination member. A missing source answers 0 before any type check;
/// the destination is written only when the member is new there (so its watchers see a
/// change only then, as in Redis).
pub(super) fn smove(store: &mut Store, a: &Args, now: u64, out: &mut Out) {
    let (src, dst, m) = (a.get(1), a.get(2), a.get(3));
    let (src_slot, dst_slot) = (key_slot(src), key_slot(dst));
    let src_idx = match store.obj_index_of(src_slot, src, KIND_SET, now) {
        Ok(Some(idx)) => idx,
        Ok(None) => return out.int(0),
        Err(WrongType) => return out.error(WRONGTYPE),
    };
    let Ok(dst_idx) = store.obj_index_of(dst_slot, dst, KIND_SET, now) else {
        return out.error(WRONGTYPE);
    };
    if src == dst {
        let here = matches!(store.obj_at(src_idx), Some(Obj::Set(s)) if s.contains(m));
        return out.int(here as i64);
    }
    let moved = with_set(store, src_slot, src, src_idx, |s| {
        let r = s.remove(m);
        (r, r)
    });
    if !moved {
        return out.int(0);
    }
    let dst_idx = match dst_idx {
        Some(idx) => idx,
        None => match store.obj_for_write(dst_slot, dst, KIND_SET, now) {
            Ok(idx) => idx,
            Err(WrongType) => return out.error(WRONGTYPE),
        },
    };
    with_set(store, dst_slot, dst, dst_idx, |s| {
        let added = s.insert(m);
        ((), added)
    });
    out.int(1)
}
