//! Moving a slot's keys to another node (issue 12, "Moving data when the map changes"):
//! the store's side. The mover thread (`cluster/mover.rs`) drives it with two internal
//! commands, both routed like a single-key command to the shard that holds the slot:
//!
//! - `PINION.MOVESLOT <tag> <sub> ...` where `<tag>` is any key of the slot:
//!   `FREEZE` (the old owner: from now on commands for the slot get TRYAGAIN; answers the
//!   number of keys, or `-GONE host:port` when the slot was handed over already), `TAKE
//!   count bytes` (the next keys of the frozen slot as `[key, pttl, payload]` triples, an
//!   empty array at the end), `GONE host port` (delete the slot's keys: they are on the new
//!   owner; from now on commands for the slot get `-ASK slot host:port`), `OPEN` (undo a
//!   freeze after a failure: the keys never left), `BEGIN` (the new owner: drop whatever a
//!   failed earlier attempt left of the slot, and any gate).
//! - `PINION.MOVEIN <key> <pttl> <payload>` (the new owner): store one key.
//!
//! The payload is `cache/dump.rs`'s form without the expiry (flags byte 0), and the TTL
//! travels beside it as milliseconds left (-1: none), so a key's expiry survives the move
//! whatever the two nodes' clocks say. It is pinion's own form, not Redis's DUMP format, so
//! the commands have pinion's names, not DUMP and RESTORE.
//!
//! A gate is checked where a command runs on the owning shard ([`intercept`], called by
//! `exec_key`): a command checked by the connection's shard before the freeze and run here
//! after it is refused, so no write lands in a slot after its keys were taken.
//!
//! Owner: the shard that holds the slot; the gates live in its `Store`.

use super::dump::{dump_key, restore_key};
use super::slot::key_slot;
use super::store::Store;
use crate::proto::resp::command::cluster::ClusterCmd;
use crate::proto::resp::command::{Cmd, Spec};
use crate::proto::resp::errors::TRYAGAIN;
use crate::proto::resp::write::Out;
use crate::proto::resp::Args;

/// `dump.rs`'s flag: an expiry follows the flags byte.
const FLAG_TTL: u8 = 1;

/// A slot of this shard on the move.
#[derive(Debug)]
pub enum Gate {
    /// Its keys are being streamed: the names taken at the freeze, how many were sent, and
    /// whether a key of the slot was written since the freeze (a command that reached
    /// this shard without passing the gate: a part of a multi-shard command dispatched
    /// just before the freeze); then the slot is not handed over.
    Frozen {
        keys: Vec<Box<[u8]>>,
        pos: usize,
        dirty: bool,
    },
    /// Its keys are on the new owner, reached at (host, port).
    Gone { host: String, port: u16 },
}

/// Runs the move commands, and refuses commands for a slot on the move. True when it
/// answered (the caller runs nothing else).
pub fn intercept(
    store: &mut Store,
    spec: &Spec,
    a: &Args,
    slot: u16,
    now: u64,
    out: &mut Out,
) -> bool {
    match spec.cmd {
        Cmd::Cluster(ClusterCmd::MoveSlot) => {
            move_slot(store, a, slot, now, out);
            return true;
        }
        Cmd::Cluster(ClusterCmd::MoveIn) => {
            move_in(store, a, now, out);
            return true;
        }
        _ => {}
    }
    if store.gates.is_empty() {
        return false;
    }
    match store.gates.get(&slot) {
        None => false,
        Some(Gate::Frozen { .. }) => {
            out.error(TRYAGAIN);
            true
        }
        Some(Gate::Gone { host, port }) => {
            out.error(&format!("ASK {slot} {host}:{port}"));
            true
        }
    }
}

/// A key was written (`Store::touch`): a frozen slot's keys are no longer what streams.
pub fn touched(gates: &mut hashbrown::HashMap<u16, Gate>, key: &[u8]) {
    if let Some(Gate::Frozen { dirty, .. }) = gates.get_mut(&key_slot(key)) {
        *dirty = true;
    }
}

fn int(b: &[u8]) -> Option<i64> {
    std::str::from_utf8(b).ok()?.parse().ok()
}

/// Deletes every key of `slot`; how many.
fn clear_slot(store: &mut Store, slot: u16, now: u64) -> usize {
    let keys = store.slot_keys(slot, now, true);
    for k in &keys {
        store.remove(slot, k);
    }
    keys.len()
}

fn move_slot(store: &mut Store, a: &Args, slot: u16, now: u64, out: &mut Out) {
    let sub = a.get(2);
    let is = |w: &str| sub.eq_ignore_ascii_case(w.as_bytes());
    if is("freeze") && a.len() == 3 {
        match store.gates.get(&slot) {
            Some(Gate::Gone { host, port }) => out.error(&format!("GONE {host}:{port}")),
            _ => {
                let keys = store.slot_keys(slot, now, false);
                out.int(keys.len() as i64);
                store.gates.insert(
                    slot,
                    Gate::Frozen {
                        keys,
                        pos: 0,
                        dirty: false,
                    },
                );
            }
        }
    } else if is("take") && a.len() == 5 {
        let (Some(count), Some(bytes)) = (int(a.get(3)), int(a.get(4))) else {
            out.error("ERR PINION.MOVESLOT TAKE count bytes: not integers");
            return;
        };
        let Some(Gate::Frozen { keys, pos, dirty }) = store.gates.remove(&slot) else {
            out.error("ERR PINION.MOVESLOT TAKE: the slot is not frozen");
            return;
        };
        let (count, bytes) = (count.max(1) as usize, bytes.max(1) as usize);
        let mut taken: Vec<(&[u8], i64, Vec<u8>)> = Vec::new();
        let mut size = 0;
        let mut next = pos;
        while next < keys.len() && taken.len() < count && size < bytes {
            let key = &keys[next];
            next += 1;
            let Some((pttl, payload)) = take_key(store, key, now) else {
                continue; // deleted or expired since the freeze
            };
            size += key.len() + payload.len();
            taken.push((key, pttl, payload));
        }
        out.array(taken.len() * 3);
        for (k, pttl, p) in &taken {
            out.bulk(k);
            out.int(*pttl);
            out.bulk(p);
        }
        drop(taken);
        store.gates.insert(
            slot,
            Gate::Frozen {
                keys,
                pos: next,
                dirty,
            },
        );
    } else if is("gone") && a.len() == 5 {
        let Some(port) = int(a.get(4)).and_then(|p| u16::try_from(p).ok()) else {
            out.error("ERR PINION.MOVESLOT GONE host port: bad port");
            return;
        };
        let host = String::from_utf8_lossy(a.get(3)).into_owned();
        if matches!(
            store.gates.get(&slot),
            Some(Gate::Frozen { dirty: true, .. })
        ) {
            // The mover reopens it; the keys stay here, the late write with them.
            out.error("ERR PINION.MOVESLOT GONE: a key of the slot was written during the move");
            return;
        }
        let n = clear_slot(store, slot, now);
        store.gates.insert(slot, Gate::Gone { host, port });
        // Clients blocked on its keys (BLPOP ...) are answered `-MOVED` to the new owner
        // when the shard next serves its waiters (`shard/blocked.rs`).
        store.ready_slot(slot);
        out.int(n as i64);
    } else if is("open") && a.len() == 3 {
        store.gates.remove(&slot);
        out.ok();
    } else if is("begin") && a.len() == 3 {
        store.gates.remove(&slot);
        let n = clear_slot(store, slot, now);
        out.int(n as i64);
    } else {
        out.error("ERR PINION.MOVESLOT tag FREEZE|TAKE count bytes|GONE host port|OPEN|BEGIN");
    }
}

/// A key as (milliseconds left or -1, payload without the expiry); None when it is gone.
pub fn take_key(store: &mut Store, key: &[u8], now: u64) -> Option<(i64, Vec<u8>)> {
    let d = dump_key(store, key, now)?;
    let (&flags, rest) = d.split_first()?;
    if flags & FLAG_TTL == 0 {
        return Some((-1, d));
    }
    let (at, value) = rest.split_first_chunk::<8>()?;
    let at = u64::from_le_bytes(*at);
    if at <= now {
        return None;
    }
    let mut p = Vec::with_capacity(1 + value.len());
    p.push(flags & !FLAG_TTL);
    p.extend_from_slice(value);
    Some(((at - now) as i64, p))
}

/// Stores a key that [`take_key`] gave; false when the payload is not such a form.
pub fn put_key(store: &mut Store, key: &[u8], pttl: i64, payload: &[u8], now: u64) -> bool {
    let Some((&flags, value)) = payload.split_first() else {
        return false;
    };
    if flags & FLAG_TTL != 0 {
        return false;
    }
    if pttl < 0 {
        return restore_key(store, key, Some(payload), now);
    }
    let mut d = Vec::with_capacity(9 + value.len());
    d.push(flags | FLAG_TTL);
    d.extend_from_slice(&now.saturating_add(pttl as u64).to_le_bytes());
    d.extend_from_slice(value);
    restore_key(store, key, Some(&d), now)
}

fn move_in(store: &mut Store, a: &Args, now: u64, out: &mut Out) {
    let key = a.get(1);
    let Some(pttl) = int(a.get(2)) else {
        out.error("ERR PINION.MOVEIN key pttl payload: pttl is not an integer");
        return;
    };
    store.gates.remove(&key_slot(key));
    if put_key(store, key, pttl, a.get(3), now) {
        out.ok();
    } else {
        out.error("ERR PINION.MOVEIN: the payload is not a moved key");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::cmd::testing::{run, store};

    #[test]
    fn every_type_and_its_ttl_travel_whole() {
        let mut a = store();
        run(&mut a, 1000, "set s hello");
        run(&mut a, 1000, "pexpire s 5000");
        run(&mut a, 1000, "hset h f1 v1 f2 v2");
        run(&mut a, 1000, "rpush l a b c");
        run(&mut a, 1000, "sadd st x y");
        run(&mut a, 1000, "zadd z 1 one 2 two");
        run(&mut a, 1000, "set plain 1");
        let mut b = store();
        for k in ["s", "h", "l", "st", "z", "plain"] {
            let (pttl, p) = take_key(&mut a, k.as_bytes(), 1000).unwrap();
            if k == "s" {
                assert!(pttl > 0 && pttl <= 5000, "{pttl}");
            } else {
                assert_eq!(pttl, -1);
            }
            // The other node's clock is an hour ahead: the TTL left is what travels.
            assert!(put_key(&mut b, k.as_bytes(), pttl, &p, 1000 + 3_600_000));
        }
        assert!(take_key(&mut a, b"missing", 1000).is_none());
        assert!(!put_key(&mut b, b"x", 5, b"", 0));
        for cmd in [
            "hgetall h",
            "lrange l 0 -1",
            "smembers st",
            "zrange z 0 -1 withscores",
        ] {
            assert_eq!(run(&mut a, 1000, cmd), run(&mut b, 3_601_000, cmd), "{cmd}");
        }
        let (pttl, _) = take_key(&mut b, b"s", 1000 + 3_600_000).unwrap();
        assert!(pttl > 0 && pttl <= 5000, "{pttl}");
    }

    #[test]
    fn a_frozen_slot_refuses_commands_and_is_not_handed_over_after_a_late_write() {
        let mut s = store();
        run(&mut s, 0, "set a 1");
        run(&mut s, 0, "set {a}2 2");
        assert_eq!(run(&mut s, 0, "pinion.moveslot a freeze"), ":2\r\n");
        assert!(run(&mut s, 0, "get a").starts_with("-TRYAGAIN "));
        let took = run(&mut s, 0, "pinion.moveslot a take 1 100");
        assert!(took.starts_with("*3\r\n"), "{took}");
        // A write that did not pass the gate (as a part of a multi-shard command would).
        let slot = key_slot(b"a");
        s.remove(slot, b"{a}2");
        let gone = run(&mut s, 0, "pinion.moveslot a gone 127.0.0.1 7001");
        assert!(
            gone.starts_with("-ERR PINION.MOVESLOT GONE: a key"),
            "{gone}"
        );
        assert_eq!(run(&mut s, 0, "pinion.moveslot a open"), "+OK\r\n");
        assert_eq!(run(&mut s, 0, "get a"), "$1\r\n1\r\n");
        // A clean move: the keys leave and the slot redirects.
        assert_eq!(run(&mut s, 0, "pinion.moveslot a freeze"), ":1\r\n");
        assert_eq!(
            run(&mut s, 0, "pinion.moveslot a gone 127.0.0.1 7001"),
            ":1\r\n"
        );
        assert_eq!(
            run(&mut s, 0, "get a"),
            format!("-ASK {slot} 127.0.0.1:7001\r\n")
        );
        assert_eq!(
            run(&mut s, 0, "pinion.moveslot a freeze"),
            "-GONE 127.0.0.1:7001\r\n"
        );
        assert_eq!(run(&mut s, 0, "pinion.moveslot a begin"), ":0\r\n");
        assert_eq!(run(&mut s, 0, "get a"), "$-1\r\n");
    }
}
