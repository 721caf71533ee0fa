//! LMOVE and RPOPLPUSH (and the attempt of BLMOVE and BRPOPLPUSH): pop at one end of the
//! source, push at an end of the destination; a list moved onto itself is rotated.

use super::with_list;
use crate::cache::entry::KIND_LIST;
use crate::cache::slot::key_slot;
use crate::cache::store::{Store, WrongType};
use crate::cache::types::list::End;
use crate::proto::resp::errors::WRONGTYPE;
use crate::proto::resp::write::Out;

/// LMOVE: pop at `from` of `src`, push at `to` of `dst`, reply with the element. False
/// (nothing written) when `src` does not exist; a key of another type is an answer.
pub(super) fn lmove(
    store: &mut Store,
    src: &[u8],
    dst: &[u8],
    from: End,
    to: End,
    now: u64,
    out: &mut Out,
) -> bool {
    let src_slot = key_slot(src);
    let sidx = match store.obj_index_of(src_slot, src, KIND_LIST, now) {
        Ok(Some(idx)) => idx,
        Ok(None) => return false,
        Err(WrongType) => {
            out.error(WRONGTYPE);
            return true;
        }
    };
    if src == dst {
        // A rotation: the list is never empty in between (and so keeps its TTL).
        with_list(store, src_slot, src, sidx, |l| {
            if let Some(v) = l.pop(from, |e| e.to_vec()) {
                l.push(to, &v);
                out.bulk(&v);
            }
            ((), true)
        });
        return true;
    }
    let dst_slot = key_slot(dst);
    if store.obj_index_of(dst_slot, dst, KIND_LIST, now).is_err() {
        out.error(WRONGTYPE);
        return true;
    }
    let Some(v) = with_list(store, src_slot, src, sidx, |l| {
        (l.pop(from, |e| e.to_vec()), true)
    }) else {
        return false;
    };
    let Ok(didx) = store.obj_for_write(dst_slot, dst, KIND_LIST, now) else {
        out.error(WRONGTYPE);
        return true;
    };
    with_list(store, dst_slot, dst, didx, |l| {
        l.push(to, &v);
        ((), true)
    });
    out.bulk(&v);
    true
}
