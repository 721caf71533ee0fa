//! The keyspace: EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT, TTL, PTTL, EXPIRETIME, PEXPIRETIME,
//! PERSIST, TYPE; RENAME, RENAMENX and COPY (both keys on this shard); OBJECT and MEMORY
//! (the key is argument 2); and a shard's part of DEL, UNLINK, EXISTS and TOUCH.

use crate::cache::entry::{kind_name, Entry, KIND_STR};
use crate::cache::evict::lfu_decayed;
use crate::cache::op::Res;
use crate::cache::slot::key_slot;
use crate::cache::store::{Policy, Store};
use crate::cache::types::Obj;
use crate::proto::resp::command::{Cmd, Spec};
use crate::proto::resp::errors::{
    invalid_expire, unknown_subcommand_short, unsupported_option, wrong_args, DB_INDEX,
    FREQ_WITHOUT_LFU, GT_LT, IDLETIME_UNDER_LFU, NOT_INT, NO_SUCH_KEY, NX_XX_GT_LT, OUT_OF_RANGE,
    SAME_OBJECT, SYNTAX,
};
use crate::proto::resp::parse::parse_i64;
use crate::proto::resp::write::Out;
use crate::proto::resp::Args;

pub fn exec(store: &mut Store, spec: &Spec, a: &Args, slot: u16, now: u64, out: &mut Out) {
    let key = a.get(1);
    match spec.cmd {
        Cmd::Expire | Cmd::Pexpire | Cmd::Expireat | Cmd::Pexpireat => {
            expire(store, spec, a, slot, now, out)
        }
        Cmd::Ttl | Cmd::Pttl => match store.peek(slot, key, now) {
            None => out.int(-2),
            Some(e) => match e.expire_ms() {
                None => out.int(-1),
                Some(at) => {
                    let ms = at.saturating_sub(now) as i64;
                    out.int(if spec.cmd == Cmd::Ttl {
                        (ms + 500) / 1000
                    } else {
                        ms
                    });
                }
            },
        },
        Cmd::Persist => match store.peek(slot, key, now) {
            Some(e) if e.expire_ms().is_some() => {
                let e = e.with_expire(None);
                store.replace(slot, e);
                out.int(1);
            }
            _ => out.int(0),
        },
        Cmd::Expiretime | Cmd::Pexpiretime => match store.peek(slot, key, now) {
            None => out.int(-2),
            Some(e) => match e.expire_ms() {
                None => out.int(-1),
                Some(at) if spec.cmd == Cmd::Pexpiretime => out.int(at as i64),
                Some(at) => out.int(at.saturating_add(500) as i64 / 1000),
            },
        },
        Cmd::Type => match store.peek(slot, key, now) {
            None => out.simple("none"),
            Some(e) => out.simple(kind_name(e.kind())),
        },
        Cmd::Rename => rename(store, a, now, false, out),
        Cmd::Renamenx => rename(store, a, now, true, out),
        Cmd::Copy => copy(store, a, now, out),
        Cmd::Object => object(store, a, now, out),
        Cmd::Memory => memory(store, a, now, out),
        Cmd::Sort | Cmd::SortRo => super::sort::sort(store, spec, a, now, out),
        _ => out.error(&wrong_args(spec.name)),
    }
}

/// RENAME / RENAMENX src dst: the value moves with its TTL; a collection's object is handed
/// over whole (O(1)), not copied.
fn rename(store: &mut Store, a: &Args, now: u64, nx: bool, out: &mut Out) {
    let (src, dst) = (a.get(1), a.get(2));
    let (src_slot, dst_slot) = (key_slot(src), key_slot(dst));
    let Some(e) = store.peek(src_slot, src, now) else {
        return out.error(NO_SUCH_KEY);
    };
    if src == dst {
        return if nx { out.int(0) } else { out.ok() };
    }
    let (kind, expire) = (e.kind(), e.expire_ms());
    let moved = if kind == KIND_STR {
        Moved::Str(e.value().to_vec())
    } else {
        Moved::Obj(e.obj_index())
    };
    if store.peek(dst_slot, dst, now).is_some() {
        if nx {
            return out.int(0);
        }
        store.remove(dst_slot, dst);
    }
    let entry = match moved {
        Moved::Str(v) => {
            store.remove(src_slot, src);
            Entry::string(dst, &v, expire, 0)
        }
        Moved::Obj(idx) => {
            // Take the contents out: the emptied source is deleted with its key, and its
            // charge goes with the contents to the new key.
            let Some(empty) = Obj::empty(kind) else {
                panic!("a collection entry of unknown kind {kind}");
            };
            let Some(obj) =
                store.with_obj(src_slot, src, idx, |o| (std::mem::replace(o, empty), true))
            else {
                panic!("a collection entry without its object");
            };
            Entry::object(kind, dst, store.new_obj(obj), expire, 0)
        }
    };
    store.put(dst_slot, entry, now);
    if nx {
        out.int(1)
    } else {
        out.ok()
    }
}

/// What RENAME carries from the source key to the destination.
enum Moved {
    Str(Vec<u8>),
    Obj(u32),
}

/// COPY src dst [DB n] [REPLACE]: a deep copy, TTL included. There is one database.
fn copy(store: &mut Store, a: &Args, now: u64, out: &mut Out) {
    let (src, dst) = (a.get(1), a.get(2));
    let mut replace = false;
    let mut j = 3;
    while j < a.len() {
        if a.eq(j, "REPLACE") {
            replace = true;
        } else if a.eq(j, "DB") && j + 1 < a.len() {
            match a.int(j + 1) {
                None => return out.error(NOT_INT),
                Some(db) if i32::try_from(db).is_err() => return out.error(OUT_OF_RANGE),
                Some(0) => {}
                Some(_) => return out.error(DB_INDEX),
            }
            j += 1;
        } else {
            return out.error(SYNTAX);
        }
        j += 1;
    }
    if src == dst {
        return out.error(SAME_OBJECT);
    }
    let (src_slot, dst_slot) = (key_slot(src), key_slot(dst));
    if store.peek(src_slot, src, now).is_none() {
        return out.int(0);
    }
    let Some(e) = store.get(src_slot, src) else {
        return out.int(0);
    };
    let expire = e.expire_ms();
    let copied = if e.kind() == KIND_STR {
        Err(e.value().to_vec())
    } else {
        match store.obj(e) {
            Some(o) => Ok(o.clone()),
            None => panic!("a collection entry without its object"),
        }
    };
    if store.peek(dst_slot, dst, now).is_some() {
        if !replace {
            return out.int(0);
        }
        store.remove(dst_slot, dst);
    }
    let entry = match copied {
        Err(v) => Entry::string(dst, &v, expire, 0),
        Ok(obj) => {
            let kind = obj.kind();
            Entry::object(kind, dst, store.new_obj(obj), expire, 0)
        }
    };
    store.put(dst_slot, entry, now);
    out.int(1);
}

/// OBJECT's and MEMORY's subcommands, with their arities (Redis's convention).
const OBJECT_SUBCOMMANDS: &[(&str, i32)] = &[
    ("encoding", 3),
    ("freq", 3),
    ("idletime", 3),
    ("refcount", 3),
    ("help", 2),
];
const MEMORY_SUBCOMMANDS: &[(&str, i32)] = &[
    ("usage", -3),
    ("stats", 2),
    ("doctor", 2),
    ("malloc-stats", 2),
    ("purge", 2),
    ("help", 2),
];

/// Check a container command's subcommand and arity as Redis 7.0 does before running it:
/// the lower-case subcommand, or the error to answer.
fn subcommand(
    a: &Args,
    command: &str,
    subs: &[(&'static str, i32)],
) -> Result<&'static str, String> {
    let sub = a.get(1);
    let Some(&(name, arity)) = subs
        .iter()
        .find(|(n, _)| n.as_bytes().eq_ignore_ascii_case(sub))
    else {
        return Err(unknown_subcommand_short(sub, command));
    };
    let ok = if arity >= 0 {
        a.len() == arity as usize
    } else {
        a.len() >= arity.unsigned_abs() as usize
    };
    if !ok {
        return Err(wrong_args(&format!(
            "{}|{name}",
            command.to_ascii_lowercase()
        )));
    }
    Ok(name)
}

/// OBJECT ENCODING|FREQ|IDLETIME|REFCOUNT key, OBJECT HELP.
fn object(store: &mut Store, a: &Args, now: u64, out: &mut Out) {
    let sub = match subcommand(a, "OBJECT", OBJECT_SUBCOMMANDS) {
        Ok(s) => s,
        Err(e) => return out.error(&e),
    };
    if sub == "help" {
        return help(
            out,
            "OBJECT",
            &[
                "ENCODING <key>",
                "    Return the kind of internal representation used in order to store the value",
                "    associated with a <key>.",
                "FREQ <key>",
                "    Return the access frequency index of the <key>. The returned integer is",
                "    proportional to the logarithm of the recent access frequency of the key.",
                "IDLETIME <key>",
                "    Return the idle time of the <key>, that is the approximated number of",
                "    seconds elapsed since the last access to the key.",
                "REFCOUNT <key>",
                "    Return the number of references of the value associated with the specified",
                "    <key>.",
            ],
        );
    }
    let key = a.get(2);
    let (policy, maxmemory) = (store.policy, store.maxmemory_bytes);
    let slot = key_slot(key);
    if store.peek(slot, key, now).is_none() {
        return out.null();
    }
    let Some(e) = store.get(slot, key) else {
        return out.null();
    };
    match sub {
        "encoding" => {
            let enc = match store.obj(e) {
                Some(o) => o.encoding(),
                None => string_encoding(e.value()),
            };
            out.bulk(enc.as_bytes())
        }
        "freq" if policy == Policy::Lfu => out.int(lfu_decayed(e.access(), now) as i64),
        "freq" => out.error(FREQ_WITHOUT_LFU),
        "idletime" if policy == Policy::Lfu => out.error(IDLETIME_UNDER_LFU),
        // LRU stamps here are a logical clock, not a time: idle time is not tracked.
        "idletime" => out.int(0),
        _ => {
            // Redis shares the objects of the integers 0..10000 unless an LRU or LFU policy
            // needs a stamp per key.
            let shared = e.kind() == KIND_STR
                && string_encoding(e.value()) == "int"
                && parse_i64(e.value()).is_some_and(|v| (0..10_000).contains(&v))
                && (maxmemory == 0 || !matches!(policy, Policy::Lru | Policy::Lfu));
            out.int(if shared { i32::MAX as i64 } else { 1 })
        }
    }
}

/// How Redis 7.0 would encode a string value: "int" when it is a canonical 64-bit integer,
/// "embstr" up to 44 bytes, "raw" beyond.
pub fn string_encoding(v: &[u8]) -> &'static str {
    if v.len() <= 20 && parse_i64(v).is_some() {
        "int"
    } else if v.len() <= 44 {
        "embstr"
    } else {
        "raw"
    }
}

/// MEMORY USAGE key [SAMPLES n], MEMORY STATS (this shard's figures), DOCTOR, PURGE,
/// MALLOC-STATS, HELP.
fn memory(store: &mut Store, a: &Args, now: u64, out: &mut Out) {
    let sub = match subcommand(a, "MEMORY", MEMORY_SUBCOMMANDS) {
        Ok(s) => s,
        Err(e) => return out.error(&e),
    };
    match sub {
        "usage" => {
            let mut j = 3;
            while j < a.len() {
                if a.eq(j, "SAMPLES") && j + 1 < a.len() {
                    match a.int(j + 1) {
                        // Every element is counted: the charge is kept exactly.
                        Some(n) if n >= 0 => {}
                        Some(_) => return out.error(SYNTAX),
                        None => return out.error(NOT_INT),
                    }
                    j += 2;
                } else {
                    return out.error(SYNTAX);
                }
            }
            let (key, slot) = (a.get(2), key_slot(a.get(2)));
            if store.peek(slot, key, now).is_none() {
                return out.null();
            }
            match store.get(slot, key) {
                None => out.null(),
                Some(e) => {
                    let bytes = e.cost() + store.obj(e).map_or(0, Obj::cost);
                    out.int(bytes as i64)
                }
            }
        }
        "stats" => {
            let keys = store.keys as i64;
            let used = store.used_memory() as i64;
            out.map(5);
            out.bulk(b"peak.allocated");
            out.int(used);
            out.bulk(b"total.allocated");
            out.int(used);
            out.bulk(b"keys.count");
            out.int(keys);
            out.bulk(b"keys.bytes-per-key");
            out.int(if keys > 0 { used / keys } else { 0 });
            out.bulk(b"dataset.bytes");
            out.int(used);
        }
        "doctor" => out.bulk(
            b"Hi Sam, I can't find any memory issue in your instance. I can only account for what occurs on this base.",
        ),
        "malloc-stats" => out.bulk(b"Stats not supported for the current allocator"),
        "purge" => out.ok(),
        _ => help(
            out,
            "MEMORY",
            &[
                "DOCTOR",
                "    Return memory problems reports.",
                "MALLOC-STATS",
                "    Return internal statistics report from the memory allocator.",
                "PURGE",
                "    Attempt to purge dirty pages for reclamation by the allocator.",
                "STATS",
                "    Return information about the memory usage of the server.",
                "USAGE <key> [SAMPLES <count>]",
                "    Return memory in bytes used by <key> and its value. Nested values are",
                "    sampled up to <count> times (default: 5, 0 means sample all).",
            ],
        ),
    }
}

/// A container command's HELP reply, as Redis's addReplyHelp writes it.
pub fn help(out: &mut Out, command: &str, lines: &[&str]) {
    out.array(lines.len() + 3);
    out.simple(&format!(
        "{command} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"
    ));
    for l in lines {
        out.simple(l);
    }
    out.simple("HELP");
    out.simple("    Prints this help.");
}

fn expire(store: &mut Store, spec: &Spec, a: &Args, slot: u16, now: u64, out: &mut Out) {
    let key = a.get(1);
    let Some(v) = a.int(2) else {
        return out.error(NOT_INT);
    };
    let (unit, abs) = match spec.cmd {
        Cmd::Expire => (1000, false),
        Cmd::Pexpire => (1, false),
        Cmd::Expireat => (1000, true),
        _ => (1, true),
    };
    let (mut nx, mut xx, mut gt, mut lt) = (false, false, false, false);
    for i in 3..a.len() {
        if a.eq(i, "NX") {
            nx = true;
        } else if a.eq(i, "XX") {
            xx = true;
        } else if a.eq(i, "GT") {
            gt = true;
        } else if a.eq(i, "LT") {
            lt = true;
        } else {
            return out.error(&unsupported_option(a.get(i)));
        }
    }
    if nx && (xx || gt || lt) {
        return out.error(NX_XX_GT_LT);
    }
    if gt && lt {
        return out.error(GT_LT);
    }
    // A deadline before the epoch is "already expired".
    let at = match v.checked_mul(unit).and_then(|ms| {
        if abs {
            Some(ms)
        } else {
            ms.checked_add(now as i64)
        }
    }) {
        Some(at) => at,
        None => return out.error(&invalid_expire(spec.name)),
    };
    let Some(e) = store.peek(slot, key, now) else {
        return out.int(0);
    };
    let cur = e.expire_ms();
    let allowed = match cur {
        None => !xx && !gt,
        Some(c) => !nx && (!gt || at > c as i64) && (!lt || at < c as i64),
    };
    if !allowed {
        return out.int(0);
    }
    if at <= now as i64 {
        store.remove(slot, key);
        return out.int(1);
    }
    let e = e.with_expire(Some(at as u64));
    store.replace(slot, e);
    out.int(1);
}

/// DEL's and UNLINK's part: how many of `keys` existed (and are now gone).
pub fn del(store: &mut Store, keys: &[Box<[u8]>], now: u64) -> Res {
    Res::Count(
        keys.iter()
            .filter(|k| store.remove_live(key_slot(k), k, now))
            .count() as i64,
    )
}

/// EXISTS' part (a key named twice counts twice, as in Redis).
pub fn count_existing(store: &mut Store, keys: &[Box<[u8]>], now: u64) -> Res {
    Res::Count(
        keys.iter()
            .filter(|k| store.peek(key_slot(k), k, now).is_some())
            .count() as i64,
    )
}

/// TOUCH's part: refresh the access stamp of the keys that exist; how many did.
pub fn touch(store: &mut Store, keys: &[Box<[u8]>], now: u64) -> Res {
    Res::Count(
        keys.iter()
            .filter(|k| {
                !matches!(
                    store.read(key_slot(k), k, now),
                    crate::cache::store::Found::Missing
                )
            })
            .count() as i64,
    )
}

impl Store {
    /// Delete a key unless it already expired (an expired key counts as absent for DEL).
    pub fn remove_live(&mut self, slot: u16, key: &[u8], now: u64) -> bool {
        self.peek(slot, key, now).is_some() && self.remove(slot, key)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{run, store};
    use crate::txn::ConnId;

    #[test]
    fn ttls() {
        let mut s = store();
        assert_eq!(run(&mut s, 1000, "SET k v PX 1500"), "+OK\r\n");
        assert_eq!(run(&mut s, 1000, "PTTL k"), ":1500\r\n");
        assert_eq!(run(&mut s, 1000, "TTL k"), ":2\r\n");
        assert_eq!(run(&mut s, 1000, "SET k v2 KEEPTTL"), "+OK\r\n");
        assert_eq!(run(&mut s, 1000, "PTTL k"), ":1500\r\n");
        assert_eq!(run(&mut s, 2499, "GET k"), "$2\r\nv2\r\n");
        assert_eq!(run(&mut s, 2500, "GET k"), "$-1\r\n");
        assert_eq!(run(&mut s, 2500, "TTL k"), ":-2\r\n");
        assert_eq!(run(&mut s, 0, "SET p v"), "+OK\r\n");
        assert_eq!(run(&mut s, 0, "TTL p"), ":-1\r\n");
        assert_eq!(run(&mut s, 0, "EXPIRE p 10 XX"), ":0\r\n");
        assert_eq!(run(&mut s, 0, "EXPIRE p 10"), ":1\r\n");
        assert_eq!(run(&mut s, 0, "EXPIRE p 5 GT"), ":0\r\n");
        assert_eq!(run(&mut s, 0, "EXPIRE p 5 LT"), ":1\r\n");
        assert_eq!(run(&mut s, 0, "PERSIST p"), ":1\r\n");
        assert_eq!(run(&mut s, 0, "PERSIST p"), ":0\r\n");
        assert_eq!(run(&mut s, 0, "PEXPIREAT p 1"), ":1\r\n");
        assert_eq!(run(&mut s, 2, "EXISTS p"), ":0\r\n");
        assert_eq!(run(&mut s, 0, "SETEX e 10 v"), "+OK\r\n");
        assert_eq!(run(&mut s, 0, "PTTL e"), ":10000\r\n");
        assert_eq!(run(&mut s, 0, "GETEX e PERSIST"), "$1\r\nv\r\n");
        assert_eq!(run(&mut s, 0, "TTL e"), ":-1\r\n");
        assert_eq!(run(&mut s, 0, "GETEX e PX 50"), "$1\r\nv\r\n");
        assert_eq!(run(&mut s, 0, "PTTL e"), ":50\r\n");
        assert_eq!(
            run(&mut s, 0, "EXPIRE e 1 NX XX"),
            "-ERR NX and XX, GT or LT options at the same time are not compatible\r\n"
        );
        s.check();
    }

    #[test]
    fn rename_moves_value_and_ttl() {
        let mut s = store();
        assert_eq!(run(&mut s, 0, "RENAME nope x"), "-ERR no such key\r\n");
        assert_eq!(run(&mut s, 0, "RENAMENX nope x"), "-ERR no such key\r\n");
        run(&mut s, 0, "SET a 1 PX 5000");
        assert_eq!(run(&mut s, 0, "RENAME a a"), "+OK\r\n");
        assert_eq!(run(&mut s, 0, "RENAMENX a a"), ":0\r\n");
        assert_eq!(run(&mut s, 0, "RENAME a b"), "+OK\r\n");
        assert_eq!(run(&mut s, 0, "EXISTS a"), ":0\r\n");
        assert_eq!(run(&mut s, 0, "GET b"), "$1\r\n1\r\n");
        assert_eq!(run(&mut s, 0, "PTTL b"), ":5000\r\n");
        run(&mut s, 0, "HSET h f v g w");
        run(&mut s, 0, "EXPIRE h 100");
        assert_eq!(run(&mut s, 0, "RENAMENX h b"), ":0\r\n");
        assert_eq!(run(&mut s, 0, "RENAME h b"), "+OK\r\n");
        assert_eq!(run(&mut s, 0, "TYPE b"), "+hash\r\n");
        assert_eq!(run(&mut s, 0, "HGET b g"), "$1\r\nw\r\n");
        assert_eq!(run(&mut s, 0, "TTL b"), ":100\r\n");
        assert_eq!(run(&mut s, 0, "RENAMENX b c"), ":1\r\n");
        assert_eq!(run(&mut s, 0, "HLEN c"), ":2\r\n");
        assert_eq!(s.keys, 1);
        s.check();
    }

    #[test]
    fn copy_is_deep() {
        let mut s = store();
        assert_eq!(run(&mut s, 0, "COPY nope x"), ":0\r\n");
        run(&mut s, 0, "HSET h f v");
        run(&mut s, 0, "PEXPIRE h 7000");
        assert_eq!(
            run(&mut s, 0, "COPY h h"),
            "-ERR source and destination objects are the same\r\n"
        );
        assert_eq!(run(&mut s, 0, "COPY h h2"), ":1\r\n");
        assert_eq!(run(&mut s, 0, "PTTL h2"), ":7000\r\n");
        run(&mut s, 0, "HSET h2 f changed");
        assert_eq!(run(&mut s, 0, "HGET h f"), "$1\r\nv\r\n");
        assert_eq!(run(&mut s, 0, "COPY h h2"), ":0\r\n");
        assert_eq!(run(&mut s, 0, "COPY h h2 REPLACE"), ":1\r\n");
        assert_eq!(run(&mut s, 0, "HGET h2 f"), "$1\r\nv\r\n");
        run(&mut s, 0, "SET str hello");
        assert_eq!(run(&mut s, 0, "COPY str h2 DB 0 REPLACE"), ":1\r\n");
        assert_eq!(run(&mut s, 0, "GET h2"), "$5\r\nhello\r\n");
        assert_eq!(
            run(&mut s, 0, "COPY str x DB 1"),
            "-ERR DB index is out of range\r\n"
        );
        assert_eq!(
            run(&mut s, 0, "COPY str x DB nope"),
            "-ERR value is not an integer or out of range\r\n"
        );
        assert_eq!(run(&mut s, 0, "COPY str x DB"), "-ERR syntax error\r\n");
        assert_eq!(run(&mut s, 0, "COPY str x BOGUS"), "-ERR syntax error\r\n");
        s.check();
    }

    #[test]
    fn expiretime() {
        let mut s = store();
        assert_eq!(run(&mut s, 0, "EXPIRETIME nope"), ":-2\r\n");
        run(&mut s, 0, "SET k v");
        assert_eq!(run(&mut s, 0, "PEXPIRETIME k"), ":-1\r\n");
        run(&mut s, 0, "PEXPIREAT k 1700000000499");
        assert_eq!(run(&mut s, 0, "PEXPIRETIME k"), ":1700000000499\r\n");
        assert_eq!(run(&mut s, 0, "EXPIRETIME k"), ":1700000000\r\n");
    }

    #[test]
    fn object_and_memory() {
        let mut s = store();
        assert_eq!(run(&mut s, 0, "OBJECT ENCODING nope"), "$-1\r\n");
        for (v, enc) in [
            ("12345", "int"),
            ("-9223372036854775808", "int"),
            ("007", "embstr"),
            ("9223372036854775808", "embstr"),
            (&"x".repeat(44)[..], "embstr"),
            (&"x".repeat(45)[..], "raw"),
        ] {
            run(&mut s, 0, &format!("SET k {v}"));
            assert_eq!(
                run(&mut s, 0, "OBJECT ENCODING k"),
                format!("${}\r\n{enc}\r\n", enc.len()),
                "{v}"
            );
        }
        run(&mut s, 0, "HSET h f v");
        assert_eq!(run(&mut s, 0, "object encoding h"), "$8\r\nlistpack\r\n");
        run(&mut s, 0, &format!("HSET h f {}", "v".repeat(65)));
        assert_eq!(run(&mut s, 0, "OBJECT ENCODING h"), "$9\r\nhashtable\r\n");
        run(&mut s, 0, "SET n 100");
        assert_eq!(run(&mut s, 0, "OBJECT REFCOUNT n"), ":2147483647\r\n");
        assert_eq!(run(&mut s, 0, "OBJECT REFCOUNT h"), ":1\r\n");
        assert_eq!(run(&mut s, 0, "OBJECT IDLETIME h"), ":0\r\n");
        assert!(run(&mut s, 0, "OBJECT FREQ h").starts_with("-ERR An LFU maxmemory policy is not"));
        s.policy = crate::cache::store::Policy::Lfu;
        assert!(run(&mut s, 0, "OBJECT IDLETIME h")
            .starts_with("-ERR An LFU maxmemory policy is selected"));
        run(&mut s, 0, "SET fresh v");
        assert_eq!(run(&mut s, 0, "OBJECT FREQ fresh"), ":5\r\n");
        assert_eq!(
            run(&mut s, 0, "OBJECT ENCODING"),
            "-ERR wrong number of arguments for 'object|encoding' command\r\n"
        );
        assert_eq!(
            run(&mut s, 0, "OBJECT nope k"),
            "-ERR unknown subcommand 'nope'. Try OBJECT HELP.\r\n"
        );
        assert!(run(&mut s, 0, "OBJECT HELP").starts_with("*15\r\n+OBJECT <subcommand>"));
        // MEMORY USAGE: the key's charge, entry and contents.
        assert_eq!(run(&mut s, 0, "MEMORY USAGE nope"), "$-1\r\n");
        let small: i64 = run(&mut s, 0, "MEMORY USAGE fresh")[1..]
            .trim()
            .parse()
            .unwrap();
        run(&mut s, 0, &format!("SET big {}", "x".repeat(10_000)));
        let big: i64 = run(&mut s, 0, "MEMORY USAGE big SAMPLES 0")[1..]
            .trim()
            .parse()
            .unwrap();
        assert!(small > 0 && big > 10_000 && big < 10_200, "{small} {big}");
        assert_eq!(
            run(&mut s, 0, "MEMORY USAGE big SAMPLES -1"),
            "-ERR syntax error\r\n"
        );
        assert_eq!(
            run(&mut s, 0, "MEMORY USAGE big FOO"),
            "-ERR syntax error\r\n"
        );
        assert!(run(&mut s, 0, "MEMORY HELP").starts_with("*14\r\n"));
        assert!(run(&mut s, 0, "MEMORY STATS").contains("keys.count"));
    }

    fn conn(n: u32) -> ConnId {
        ConnId {
            shard: 0,
            slot: n,
            gen: 0,
        }
    }

    /// Redis 7's WATCH rules (tests/unit/multi.tcl): writes, deletes, FLUSHALL of a key
    /// that exists and expiry of a key that was live all count; stale keys do not.
    #[test]
    fn watch_follows_redis_rules() {
        let mut s = store();
        run(&mut s, 0, "SET x 1");
        s.watch(conn(1), b"x", 0);
        assert!(!s.watch_changed(conn(1), 0), "nothing happened");
        s.watch(conn(1), b"x", 0);
        run(&mut s, 0, "SET x 2");
        assert!(s.watch_changed(conn(1), 0), "a write");
        assert_eq!(s.watchers(), 0, "EXEC forgets the watches");
        s.watch(conn(1), b"x", 0);
        run(&mut s, 0, "EXPIRE x 10");
        assert!(s.watch_changed(conn(1), 0), "EXPIRE touches");
        // A key that was live when watched and expired since.
        run(&mut s, 0, "SET t v PX 100");
        s.watch(conn(2), b"t", 50);
        assert!(s.watch_changed(conn(2), 150), "expired after WATCH");
        // A key already stale when watched, removed by lazy expiry: no change.
        run(&mut s, 0, "SET st v PX 10");
        s.watch(conn(3), b"st", 20);
        assert_eq!(run(&mut s, 30, "EXISTS st"), ":0\r\n");
        assert!(!s.watch_changed(conn(3), 30), "stale key deleted");
        // FLUSHALL touches keys that exist, not missing ones.
        s.watch(conn(4), b"x", 0);
        s.watch(conn(5), b"missing", 0);
        s.flush(0);
        assert!(s.watch_changed(conn(4), 0));
        assert!(!s.watch_changed(conn(5), 0));
        // UNWATCH forgets.
        s.watch(conn(6), b"y", 0);
        s.unwatch(conn(6));
        run(&mut s, 0, "SET y 1");
        assert!(!s.watch_changed(conn(6), 0));
        assert_eq!(s.watchers(), 0);
    }
}
