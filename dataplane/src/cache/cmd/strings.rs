//! Strings: GET, SET and its options, SETNX, SETEX, PSETEX, GETSET, GETDEL, GETEX, APPEND,
//! STRLEN, INCR/DECR and their BY forms, INCRBYFLOAT; and a shard's part of MGET, MSET and
//! MSETNX.

use super::{deadline, expiry_option, parse_f64};
use crate::cache::entry::{Entry, KIND_STR};
use crate::cache::op::{Pair, Res};
use crate::cache::slot::key_slot;
use crate::cache::store::{Found, Store};
use crate::limits::STRING_BYTES_MAX;
use crate::proto::resp::command::{Cmd, Spec};
use crate::proto::resp::errors::{
    invalid_expire, wrong_args, NAN_OR_INF, NOT_FLOAT, NOT_INT, OVERFLOW, STRING_TOO_LONG, SYNTAX,
    WRONGTYPE,
};
use crate::proto::resp::parse::parse_i64;
use crate::proto::resp::write::{format_double, Out};
use crate::proto::resp::Args;

pub fn exec(store: &mut Store, spec: &Spec, a: &Args, slot: u16, now: u64, out: &mut Out) {
    let key = a.get(1);
    match spec.cmd {
        Cmd::Get => match store.read(slot, key, now) {
            Found::Str(v) => out.bulk(v),
            Found::Missing => out.null(),
            _ => out.error(WRONGTYPE),
        },
        Cmd::Set => set(store, a, slot, now, out),
        Cmd::Setnx => {
            if store.peek(slot, key, now).is_some() {
                out.int(0);
            } else {
                store.put(slot, Entry::string(key, a.get(2), None, 0), now);
                out.int(1);
            }
        }
        Cmd::Setex | Cmd::Psetex => {
            let unit = if spec.cmd == Cmd::Setex { 1000 } else { 1 };
            let Some(v) = a.int(2) else {
                return out.error(NOT_INT);
            };
            match deadline(unit, false, v, now) {
                Some(at) if v > 0 => {
                    store.put(slot, Entry::string(key, a.get(3), Some(at), 0), now);
                    out.ok();
                }
                _ => out.error(&invalid_expire(spec.name)),
            }
        }
        Cmd::Getset => match store.peek(slot, key, now) {
            Some(e) if e.kind() != KIND_STR => out.error(WRONGTYPE),
            old => {
                out.bulk_opt(old.map(|e| e.value()));
                store.put(slot, Entry::string(key, a.get(2), None, 0), now);
            }
        },
        Cmd::Getdel => match store.peek(slot, key, now) {
            Some(e) if e.kind() != KIND_STR => out.error(WRONGTYPE),
            Some(e) => {
                out.bulk(e.value());
                store.remove(slot, key);
            }
            None => out.null(),
        },
        Cmd::Getex => getex(store, a, slot, now, out),
        Cmd::Append => {
            let add = a.get(2);
            let old = match store.peek(slot, key, now) {
                Some(e) if e.kind() != KIND_STR => return out.error(WRONGTYPE),
                Some(e) => e.value().len(),
                None => {
                    store.put(slot, Entry::string(key, add, None, 0), now);
                    return out.int(add.len() as i64);
                }
            };
            if old + add.len() > STRING_BYTES_MAX {
                return out.error(STRING_TOO_LONG);
            }
            // In place: the entry grows once, the old bytes stay where they are.
            let len = store.edit_str(slot, key, old + add.len(), now, |v| {
                v[old..].copy_from_slice(add);
                (v.len(), !add.is_empty())
            });
            out.int(len.unwrap_or(0) as i64);
        }
        Cmd::Strlen => match store.read(slot, key, now) {
            Found::Str(v) => out.int(v.len() as i64),
            Found::Missing => out.int(0),
            _ => out.error(WRONGTYPE),
        },
        Cmd::Incr | Cmd::Decr | Cmd::Incrby | Cmd::Decrby => {
            let by = match spec.cmd {
                Cmd::Incr => Some(1),
                Cmd::Decr => Some(-1),
                Cmd::Incrby => a.int(2),
                _ => a.int(2).and_then(|v| v.checked_neg()),
            };
            let Some(by) = by else {
                return out.error(NOT_INT);
            };
            incr_by(store, slot, key, by, now, out);
        }
        Cmd::Incrbyfloat => incr_by_float(store, slot, key, a.get(2), now, out),
        _ => out.error(&wrong_args(spec.name)),
    }
}

fn incr_by(store: &mut Store, slot: u16, key: &[u8], by: i64, now: u64, out: &mut Out) {
    let (cur, existing) = match store.peek(slot, key, now) {
        Some(e) if e.kind() != KIND_STR => return out.error(WRONGTYPE),
        Some(e) => match parse_i64(e.value()) {
            Some(v) => (v, Some(e.clone())),
            None => return out.error(NOT_INT),
        },
        None => (0, None),
    };
    let Some(v) = cur.checked_add(by) else {
        return out.error(OVERFLOW);
    };
    let mut digits = itoa::Buffer::new();
    let text = digits.format(v).as_bytes();
    match existing {
        Some(e) => {
            store.replace(slot, e.with_value(text));
        }
        None => store.put(slot, Entry::string(key, text, None, 0), now),
    }
    out.int(v);
}

fn incr_by_float(store: &mut Store, slot: u16, key: &[u8], by: &[u8], now: u64, out: &mut Out) {
    let Some(by) = parse_f64(by) else {
        return out.error(NOT_FLOAT);
    };
    let (cur, existing) = match store.peek(slot, key, now) {
        Some(e) if e.kind() != KIND_STR => return out.error(WRONGTYPE),
        Some(e) => match parse_f64(e.value()) {
            Some(v) => (v, Some(e.clone())),
            None => return out.error(NOT_FLOAT),
        },
        None => (0.0, None),
    };
    let v = cur + by;
    if !v.is_finite() {
        return out.error(NAN_OR_INF);
    }
    let text = format_double(v);
    match existing {
        Some(e) => {
            store.replace(slot, e.with_value(text.as_bytes()));
        }
        None => store.put(slot, Entry::string(key, text.as_bytes(), None, 0), now),
    }
    out.bulk(text.as_bytes());
}

fn set(store: &mut Store, a: &Args, slot: u16, now: u64, out: &mut Out) {
    let key = a.get(1);
    let (mut nx, mut xx, mut get, mut keepttl) = (false, false, false, false);
    let mut expire: Option<u64> = None;
    let mut i = 3;
    while i < a.len() {
        let has_next = i + 1 < a.len();
        if a.eq(i, "NX") && !xx {
            nx = true;
        } else if a.eq(i, "XX") && !nx {
            xx = true;
        } else if a.eq(i, "GET") {
            get = true;
        } else if a.eq(i, "KEEPTTL") && expire.is_none() {
            keepttl = true;
        } else if let Some((unit, abs)) =
            expiry_option(a, i).filter(|_| has_next && expire.is_none() && !keepttl)
        {
            let Some(v) = a.int(i + 1) else {
                return out.error(NOT_INT);
            };
            match deadline(unit, abs, v, now) {
                Some(at) if v > 0 => expire = Some(at),
                _ => return out.error(&invalid_expire("set")),
            }
            i += 1;
        } else {
            return out.error(SYNTAX);
        }
        i += 1;
    }
    let old = store.peek(slot, key, now);
    if get {
        if let Some(e) = old {
            if e.kind() != KIND_STR {
                return out.error(WRONGTYPE);
            }
        }
    }
    let exists = old.is_some();
    let old_ttl = old.and_then(|e| e.expire_ms());
    if get {
        out.bulk_opt(old.map(|e| e.value()));
    }
    if (nx && exists) || (xx && !exists) {
        if !get {
            out.null();
        }
        return;
    }
    let ttl = if keepttl { old_ttl } else { expire };
    store.put(slot, Entry::string(key, a.get(2), ttl, 0), now);
    if !get {
        out.ok();
    }
}

fn getex(store: &mut Store, a: &Args, slot: u16, now: u64, out: &mut Out) {
    let key = a.get(1);
    // None: leave the TTL; Some(None): persist; Some(Some(t)): set.
    let mut change: Option<Option<u64>> = None;
    let mut i = 2;
    while i < a.len() {
        if a.eq(i, "PERSIST") && change.is_none() {
            change = Some(None);
            i += 1;
            continue;
        }
        match expiry_option(a, i) {
            Some((unit, abs)) if i + 1 < a.len() && change.is_none() => {
                let Some(v) = a.int(i + 1) else {
                    return out.error(NOT_INT);
                };
                match deadline(unit, abs, v, now) {
                    Some(at) if v > 0 => change = Some(Some(at)),
                    _ => return out.error(&invalid_expire("getex")),
                }
                i += 2;
            }
            _ => return out.error(SYNTAX),
        }
    }
    match store.read(slot, key, now) {
        Found::Missing => return out.null(),
        Found::Str(v) => out.bulk(v),
        _ => return out.error(WRONGTYPE),
    }
    if let Some(ttl) = change {
        if let Some(e) = store.peek(slot, key, now) {
            let e = e.with_expire(ttl);
            store.replace(slot, e);
        }
    }
}

/// MGET's part: each key's string value, None for a missing key or another type.
pub fn mget(store: &mut Store, keys: &[Box<[u8]>], now: u64) -> Res {
    Res::Values(
        keys.iter()
            .map(|k| match store.read(key_slot(k), k, now) {
                Found::Str(v) => Some(v.to_vec()),
                _ => None,
            })
            .collect(),
    )
}

/// MSET's part. `checked`: memory was already checked when the transaction was scheduled.
pub fn mset(store: &mut Store, pairs: &[Pair], now: u64, checked: bool) -> Res {
    if !store.make_room(now) && !checked {
        return Res::Oom;
    }
    for (k, v) in pairs {
        store.put(key_slot(k), Entry::string(k, v, None, 0), now);
    }
    Res::Done
}

/// MSETNX with every key on this shard: set them all only if none exists (1), else 0.
/// `checked` as for [`mset`].
pub fn msetnx(store: &mut Store, pairs: &[Pair], now: u64, checked: bool) -> Res {
    if pairs
        .iter()
        .any(|(k, _)| store.peek(key_slot(k), k, now).is_some())
    {
        return Res::Count(0);
    }
    match mset(store, pairs, now, checked) {
        Res::Done => Res::Count(1),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{run, store};
    use crate::proto::resp::errors::{NOT_FLOAT, NOT_INT, OOM};

    #[test]
    fn strings() {
        let mut s = store();
        assert_eq!(run(&mut s, 0, "GET k"), "$-1\r\n");
        assert_eq!(run(&mut s, 0, "SET k v"), "+OK\r\n");
        assert_eq!(run(&mut s, 0, "GET k"), "$1\r\nv\r\n");
        assert_eq!(run(&mut s, 0, "SET k w NX"), "$-1\r\n");
        assert_eq!(run(&mut s, 0, "SET k w XX GET"), "$1\r\nv\r\n");
        assert_eq!(run(&mut s, 0, "SET n 1 NX XX"), "-ERR syntax error\r\n");
        assert_eq!(
            run(&mut s, 0, "SET n 1 EX 0"),
            "-ERR invalid expire time in 'set' command\r\n"
        );
        assert_eq!(run(&mut s, 0, "SET n 1 EX x"), format!("-{NOT_INT}\r\n"));
        assert_eq!(run(&mut s, 0, "SETNX k z"), ":0\r\n");
        assert_eq!(run(&mut s, 0, "GETSET k a"), "$1\r\nw\r\n");
        assert_eq!(run(&mut s, 0, "APPEND k bc"), ":3\r\n");
        assert_eq!(run(&mut s, 0, "STRLEN k"), ":3\r\n");
        assert_eq!(run(&mut s, 0, "APPEND fresh x"), ":1\r\n");
        assert_eq!(run(&mut s, 0, "APPEND fresh "), ":1\r\n");
        assert_eq!(run(&mut s, 0, "HSET h f v"), ":1\r\n");
        assert!(run(&mut s, 0, "APPEND h x").starts_with("-WRONGTYPE"));
        s.check();
        assert_eq!(run(&mut s, 0, "GETDEL k"), "$3\r\nabc\r\n");
        assert_eq!(run(&mut s, 0, "EXISTS k"), ":0\r\n");
        assert_eq!(run(&mut s, 0, "INCR c"), ":1\r\n");
        assert_eq!(run(&mut s, 0, "INCRBY c 41"), ":42\r\n");
        assert_eq!(run(&mut s, 0, "DECRBY c 2"), ":40\r\n");
        assert_eq!(run(&mut s, 0, "DECR c"), ":39\r\n");
        assert_eq!(run(&mut s, 0, "SET c 9223372036854775807"), "+OK\r\n");
        assert_eq!(
            run(&mut s, 0, "INCR c"),
            "-ERR increment or decrement would overflow\r\n"
        );
        assert_eq!(run(&mut s, 0, "SET f 10.5"), "+OK\r\n");
        assert_eq!(run(&mut s, 0, "INCRBYFLOAT f 0.1"), "$4\r\n10.6\r\n");
        assert_eq!(
            run(&mut s, 0, "INCRBYFLOAT f x"),
            format!("-{NOT_FLOAT}\r\n")
        );
        assert_eq!(run(&mut s, 0, "SET t abc"), "+OK\r\n");
        assert_eq!(run(&mut s, 0, "INCR t"), format!("-{NOT_INT}\r\n"));
        s.check();
    }

    #[test]
    fn noeviction_refuses_writes_over_the_limit() {
        let mut s = store();
        s.maxmemory_bytes = s.fixed_bytes + 200;
        for i in 0..10 {
            run(&mut s, 0, &format!("SET key{i} 0123456789"));
        }
        assert_eq!(run(&mut s, 0, "SET another v"), format!("-{OOM}\r\n"));
        // Reads and deletes still work.
        assert_eq!(run(&mut s, 0, "GET key0"), "$10\r\n0123456789\r\n");
        assert_eq!(run(&mut s, 0, "DEL key0"), ":1\r\n");
    }

    #[test]
    fn msetnx_on_one_shard_is_all_or_nothing() {
        use super::{msetnx, Res};
        let mut s = store();
        let pairs = |ks: &[&str]| -> Vec<super::Pair> {
            ks.iter()
                .map(|k| (k.as_bytes().into(), b"v".as_slice().into()))
                .collect()
        };
        assert!(matches!(
            msetnx(&mut s, &pairs(&["a", "b"]), 0, false),
            Res::Count(1)
        ));
        assert!(matches!(
            msetnx(&mut s, &pairs(&["c", "b"]), 0, false),
            Res::Count(0)
        ));
        assert_eq!(run(&mut s, 0, "EXISTS c"), ":0\r\n");
    }
}
