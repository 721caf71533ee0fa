//! Sets: SADD, SREM, SMEMBERS, SISMEMBER, SMISMEMBER, SCARD, SPOP, SRANDMEMBER, SMOVE,
//! SINTER, SUNION, SDIFF and their STORE forms, SINTERCARD, SSCAN.
//!
//! Semantics and replies as Redis 7.0's `t_set.c`: RESP3 sets (`~`) where Redis sends them
//! (SMEMBERS, SINTER, SUNION, SDIFF, SPOP with a count), arrays for SRANDMEMBER,
//! SMISMEMBER and SSCAN. Commands of several keys (SMOVE, SINTER ... SINTERCARD) run with
//! all their keys on this store and find each key's slot with `key_slot`.
//!
//! One file per concern: this file dispatches ([`exec`]), runs the one-key commands
//! (SADD, SREM, SMEMBERS, SISMEMBER, SMISMEMBER, SCARD) and SINTER, SUNION, SDIFF and their
//! STORE forms, and holds the member replies and a key's set; `setops.rs` the set algebra
//! those use (reading the keys together, intersection, union, difference, storing a
//! result) and SINTERCARD; `random.rs` SPOP and SRANDMEMBER; `smove.rs` SMOVE; `scan.rs`
//! SSCAN.

mod random;
mod scan;
mod setops;
mod smove;
#[cfg(test)]
mod tests;

use random::{spop, srandmember};
use scan::sscan;
use setops::{diff, in_all, sets_of, sintercard, smallest_first, store_result, union};
use smove::smove;

use crate::cache::entry::KIND_SET;
use crate::cache::store::{Found, Store, WrongType};
use crate::cache::types::set::{Member, Set};
use crate::cache::types::Obj;
use crate::proto::resp::command::sets::SetCmd;
use crate::proto::resp::command::{Cmd, Spec};
use crate::proto::resp::errors::{wrong_args, WRONGTYPE};
use crate::proto::resp::write::Out;
use crate::proto::resp::Args;

pub fn exec(store: &mut Store, spec: &Spec, a: &Args, slot: u16, now: u64, out: &mut Out) {
    let Cmd::Sets(cmd) = spec.cmd else {
        return out.error(&wrong_args(spec.name));
    };
    match cmd {
        SetCmd::Sadd => sadd(store, a, slot, now, out),
        SetCmd::Srem => srem(store, a, slot, now, out),
        SetCmd::Smembers => match store.read(slot, a.get(1), now) {
            Found::Set(s) => reply_set(out, s),
            Found::Missing => out.set(0),
            _ => out.error(WRONGTYPE),
        },
        SetCmd::Sismember => match store.read(slot, a.get(1), now) {
            Found::Set(s) => out.int(s.contains(a.get(2)) as i64),
            Found::Missing => out.int(0),
            _ => out.error(WRONGTYPE),
        },
        SetCmd::Smismember => {
            let set = match store.read(slot, a.get(1), now) {
                Found::Set(s) => Some(s),
                Found::Missing => None,
                _ => return out.error(WRONGTYPE),
            };
            out.array(a.len() - 2);
            for i in 2..a.len() {
                out.int(set.is_some_and(|s| s.contains(a.get(i))) as i64);
            }
        }
        SetCmd::Scard => match store.read(slot, a.get(1), now) {
            Found::Set(s) => out.int(s.len() as i64),
            Found::Missing => out.int(0),
            _ => out.error(WRONGTYPE),
        },
        SetCmd::Spop => spop(store, a, slot, now, out),
        SetCmd::Srandmember => srandmember(store, a, slot, now, out),
        SetCmd::Smove => smove(store, a, now, out),
        SetCmd::Sinter => match sets_of(store, a, 1..a.len(), now) {
            Ok(sets) => {
                let members: Vec<Member> = match smallest_first(&sets) {
                    Some((first, rest)) => in_all(first, &rest).collect(),
                    None => Vec::new(),
                };
                out.set(members.len());
                members.into_iter().for_each(|m| member(out, m));
            }
            Err(WrongType) => out.error(WRONGTYPE),
        },
        SetCmd::Sunion | SetCmd::Sdiff => match sets_of(store, a, 1..a.len(), now) {
            Ok(sets) if cmd == SetCmd::Sunion => reply_set(out, &union(&sets)),
            Ok(sets) => reply_set(out, &diff(&sets)),
            Err(WrongType) => out.error(WRONGTYPE),
        },
        SetCmd::Sinterstore | SetCmd::Sunionstore | SetCmd::Sdiffstore => {
            let result = match sets_of(store, a, 2..a.len(), now) {
                Ok(sets) => match cmd {
                    SetCmd::Sinterstore => {
                        let mut r = Set::default();
                        if let Some((first, rest)) = smallest_first(&sets) {
                            in_all(first, &rest).for_each(|m| {
                                r.insert_member(m);
                            });
                        }
                        r
                    }
                    SetCmd::Sunionstore => union(&sets),
                    _ => diff(&sets),
                },
                Err(WrongType) => return out.error(WRONGTYPE),
            };
            store_result(store, a.get(1), result, now, out)
        }
        SetCmd::Sintercard => sintercard(store, a, now, out),
        SetCmd::Sscan => sscan(store, a, slot, now, out),
    }
}

fn member(out: &mut Out, m: Member) {
    match m {
        Member::Int(v) => out.bulk(itoa::Buffer::new().format(v).as_bytes()),
        Member::Bytes(b) => out.bulk(b),
    }
}

/// A whole set as a RESP3 set (an array in RESP2).
fn reply_set(out: &mut Out, s: &Set) {
    out.set(s.len());
    s.iter().for_each(|m| member(out, m));
}

/// Run `f` on the set at `index`, which `key` names; `f` says whether it changed the set
/// (only a change breaks WATCH). A set left empty is deleted with its key.
fn with_set<R>(
    store: &mut Store,
    slot: u16,
    key: &[u8],
    index: u32,
    f: impl FnOnce(&mut Set) -> (R, bool),
) -> R {
    let r = store.with_obj(slot, key, index, |o| match o {
        Obj::Set(s) => {
            let (r, changed) = f(s);
            (Some(r), changed)
        }
        _ => (None, false),
    });
    // The entry names a set object the store does not hold: the books are broken.
    r.flatten().expect("set entry without its set object")
}

fn sadd(store: &mut Store, a: &Args, slot: u16, now: u64, out: &mut Out) {
    let key = a.get(1);
    let Ok(idx) = store.obj_for_write(slot, key, KIND_SET, now) else {
        return out.error(WRONGTYPE);
    };
    let added = with_set(store, slot, key, idx, |s| {
        let n = (2..a.len()).filter(|&i| s.insert(a.get(i))).count();
        (n, n > 0)
    });
    out.int(added as i64)
}

fn srem(store: &mut Store, a: &Args, slot: u16, now: u64, out: &mut Out) {
    let key = a.get(1);
    let idx = match store.obj_index_of(slot, key, KIND_SET, now) {
        Ok(Some(idx)) => idx,
        Ok(None) => return out.int(0),
        Err(WrongType) => return out.error(WRONGTYPE),
    };
    let removed = with_set(store, slot, key, idx, |s| {
        let n = (2..a.len()).filter(|&i| s.remove(a.get(i))).count();
        (n, n > 0)
    });
    out.int(removed as i64)
}
