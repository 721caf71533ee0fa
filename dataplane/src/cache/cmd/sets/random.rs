//! SPOP and SRANDMEMBER: members drawn at random with the store's generator; a positive
//! count draws distinct members, SRANDMEMBER's negative count may repeat them (at most
//! `SET_RANDOM_REPEATS_MAX`).

use super::{member, reply_set, with_set};

use crate::cache::entry::KIND_SET;
use crate::cache::store::{Found, Store, WrongType};
use crate::cache::types::set::Set;
use crate::limits::SET_RANDOM_REPEATS_MAX;
use crate::proto::resp::errors::{
    NOT_INT, SET_COUNT_NOT_POSITIVE, SET_COUNT_RANGE, SET_COUNT_TOO_LARGE, SYNTAX, WRONGTYPE,
};
use crate::proto::resp::write::Out;
use crate::proto::resp::Args;

/// SPOP key [count]: the count is checked before the key, as Redis does.
pub(super) fn spop(store: &mut Store, a: &Args, slot: u16, now: u64, out: &mut Out) {
    if a.len() > 3 {
        return out.error(SYNTAX);
    }
    let count = match (a.len() == 3).then(|| a.int(2)) {
        None => None,
        Some(Some(c)) if c >= 0 => Some(c as u64),
        Some(_) => return out.error(SET_COUNT_NOT_POSITIVE),
    };
    let key = a.get(1);
    let idx = match store.obj_index_of(slot, key, KIND_SET, now) {
        Ok(Some(idx)) => idx,
        Ok(None) if count.is_some() => return out.set(0),
        Ok(None) => return out.null(),
        Err(WrongType) => return out.error(WRONGTYPE),
    };
    let mut rng = store.next_rand() | 1;
    with_set(store, slot, key, idx, |s| match count {
        None => {
            s.pop_random(&mut rng, |m| member(out, m));
            ((), true)
        }
        Some(0) => {
            out.set(0);
            ((), false)
        }
        Some(c) if c >= s.len() as u64 => {
            // All of it: the key goes with its last member.
            reply_set(out, s);
            *s = Set::default();
            ((), true)
        }
        Some(c) => {
            out.set(c as usize);
            for _ in 0..c {
                s.pop_random(&mut rng, |m| member(out, m));
            }
            ((), true)
        }
    })
}

/// SRANDMEMBER key [count]: a negative count may repeat members, a positive one does not.
pub(super) fn srandmember(store: &mut Store, a: &Args, slot: u16, now: u64, out: &mut Out) {
    if a.len() > 3 {
        return out.error(SYNTAX);
    }
    let count = match (a.len() == 3).then(|| a.int(2)) {
        None => None,
        Some(None) => return out.error(NOT_INT),
        // Redis takes counts a C long can negate.
        Some(Some(i64::MIN)) => return out.error(SET_COUNT_RANGE),
        Some(Some(c)) => Some(c),
    };
    let mut rng = store.next_rand() | 1;
    let s = match store.read(slot, a.get(1), now) {
        Found::Set(s) => s,
        Found::Missing if count.is_some() => return out.array(0),
        Found::Missing => return out.null(),
        _ => return out.error(WRONGTYPE),
    };
    match count {
        None => member(out, s.at(s.random_pos(&mut rng))),
        Some(0) => out.array(0),
        Some(c) if c < 0 => {
            let n = c.unsigned_abs();
            if n > SET_RANDOM_REPEATS_MAX {
                return out.error(SET_COUNT_TOO_LARGE);
            }
            out.array(n as usize);
            for _ in 0..n {
                member(out, s.at(s.random_pos(&mut rng)));
            }
        }
        Some(c) if c as u64 >= s.len() as u64 => {
            out.array(s.len());
            s.iter().for_each(|m| member(out, m));
        }
        Some(c) => {
            out.array(c as usize);
            s.sample_distinct(c as usize, &mut rng, |m| member(out, m));
        }
    }
}
