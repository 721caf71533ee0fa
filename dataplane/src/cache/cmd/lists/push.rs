//! LPUSH, RPUSH and the LPUSHX, RPUSHX that push only onto a list that exists.

use super::with_list;
use crate::cache::entry::KIND_LIST;
use crate::cache::store::{Store, WrongType};
use crate::cache::types::list::End;
use crate::proto::resp::command::lists::ListCmd as L;
use crate::proto::resp::errors::WRONGTYPE;
use crate::proto::resp::write::Out;
use crate::proto::resp::Args;

pub(super) fn push(store: &mut Store, cmd: L, a: &Args, slot: u16, now: u64, out: &mut Out) {
    let key = a.get(1);
    let end = match cmd {
        L::Lpush | L::Lpushx => End::Head,
        _ => End::Tail,
    };
    let idx = if matches!(cmd, L::Lpushx | L::Rpushx) {
        match store.obj_index_of(slot, key, KIND_LIST, now) {
            Ok(Some(idx)) => idx,
            Ok(None) => return out.int(0),
            Err(WrongType) => return out.error(WRONGTYPE),
        }
    } else {
        match store.obj_for_write(slot, key, KIND_LIST, now) {
            Ok(idx) => idx,
            Err(WrongType) => return out.error(WRONGTYPE),
        }
    };
    let len = with_list(store, slot, key, idx, |l| {
        l.push_all(end, (2..a.len()).map(|i| a.get(i)));
        (l.len(), true)
    });
    out.int(len as i64)
}
