//! LPOS key element [RANK rank] [COUNT num-matches] [MAXLEN len]: the positions of an
//! element, from the head or (a negative RANK) the tail.

use crate::cache::store::{Found, Store};
use crate::cache::types::list::End;
use crate::proto::resp::errors::{
    LPOS_COUNT_NEGATIVE, LPOS_MAXLEN_NEGATIVE, LPOS_RANK_ZERO, NOT_INT, SYNTAX, WRONGTYPE,
};
use crate::proto::resp::write::Out;
use crate::proto::resp::Args;

pub(super) fn lpos(store: &mut Store, a: &Args, slot: u16, now: u64, out: &mut Out) {
    let (mut rank, mut count, mut maxlen) = (1i64, None, 0usize);
    let mut j = 3;
    while j < a.len() {
        let more = j + 1 < a.len();
        if a.eq(j, "RANK") && more {
            j += 1;
            rank = match a.int(j) {
                Some(0) => return out.error(LPOS_RANK_ZERO),
                Some(r) => r,
                None => return out.error(NOT_INT),
            };
        } else if a.eq(j, "COUNT") && more {
            j += 1;
            match a.int(j).and_then(|c| usize::try_from(c).ok()) {
                Some(c) => count = Some(c),
                None => return out.error(LPOS_COUNT_NEGATIVE),
            }
        } else if a.eq(j, "MAXLEN") && more {
            j += 1;
            match a.int(j).and_then(|c| usize::try_from(c).ok()) {
                Some(m) => maxlen = m,
                None => return out.error(LPOS_MAXLEN_NEGATIVE),
            }
        } else {
            return out.error(SYNTAX);
        }
        j += 1;
    }
    let from = if rank < 0 { End::Tail } else { End::Head };
    let rank = rank.unsigned_abs();
    let l = match store.read(slot, a.get(1), now) {
        Found::List(l) => l,
        Found::Missing if count.is_some() => return out.array(0),
        Found::Missing => return out.null(),
        _ => return out.error(WRONGTYPE),
    };
    let elem = a.get(2);
    match count {
        Some(count) => {
            let mut found = Vec::new();
            l.positions(elem, from, rank, maxlen, |i| {
                found.push(i);
                count == 0 || found.len() < count
            });
            out.array(found.len());
            for i in found {
                out.int(i as i64);
            }
        }
        None => {
            let mut found = None;
            l.positions(elem, from, rank, maxlen, |i| {
                found = Some(i);
                false
            });
            match found {
                Some(i) => out.int(i as i64),
                None => out.null(),
            }
        }
    }
}
