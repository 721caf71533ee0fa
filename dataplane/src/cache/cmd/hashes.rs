//! Hashes: HSET, HMSET, HGET, HMGET, HGETALL, HDEL, HLEN, HEXISTS, HINCRBY.

use crate::cache::entry::{Entry, KIND_HASH};
use crate::cache::store::{Found, Store};
use crate::proto::resp::command::{Cmd, Spec};
use crate::proto::resp::errors::{wrong_args, HASH_NOT_INT, NOT_INT, OVERFLOW, WRONGTYPE};
use crate::proto::resp::parse::parse_i64;
use crate::proto::resp::write::Out;
use crate::proto::resp::Args;

pub fn exec(store: &mut Store, spec: &Spec, a: &Args, slot: u16, now: u64, out: &mut Out) {
    let key = a.get(1);
    match spec.cmd {
        Cmd::Hset | Cmd::Hmset => {
            if a.len() % 2 != 0 {
                return out.error(&wrong_args(spec.name));
            }
            let Some(idx) = hash_for_write(store, slot, key, now) else {
                return out.error(WRONGTYPE);
            };
            let added = store
                .with_hash(key, idx, |h| {
                    let mut added = 0;
                    for i in (2..a.len()).step_by(2) {
                        let old = h.insert(a.get(i).into(), a.get(i + 1).into());
                        added += old.is_none() as i64;
                    }
                    (added, true)
                })
                .unwrap_or(0);
            if spec.cmd == Cmd::Hset {
                out.int(added)
            } else {
                out.ok()
            }
        }
        Cmd::Hget => match store.read(slot, key, now) {
            Found::Hash(h) => out.bulk_opt(h.get(a.get(2)).map(|v| &v[..])),
            Found::Missing => out.null(),
            _ => out.error(WRONGTYPE),
        },
        Cmd::Hmget => match store.read(slot, key, now) {
            found @ (Found::Hash(_) | Found::Missing) => {
                out.array(a.len() - 2);
                for i in 2..a.len() {
                    match &found {
                        Found::Hash(h) => out.bulk_opt(h.get(a.get(i)).map(|v| &v[..])),
                        _ => out.null(),
                    }
                }
            }
            _ => out.error(WRONGTYPE),
        },
        Cmd::Hgetall => match store.read(slot, key, now) {
            Found::Hash(h) => {
                out.map(h.len());
                for (k, v) in h {
                    out.bulk(k);
                    out.bulk(v);
                }
            }
            Found::Missing => out.map(0),
            _ => out.error(WRONGTYPE),
        },
        Cmd::Hlen => match store.read(slot, key, now) {
            Found::Hash(h) => out.int(h.len() as i64),
            Found::Missing => out.int(0),
            _ => out.error(WRONGTYPE),
        },
        Cmd::Hexists => match store.read(slot, key, now) {
            Found::Hash(h) => out.int(h.contains_key(a.get(2)) as i64),
            Found::Missing => out.int(0),
            _ => out.error(WRONGTYPE),
        },
        Cmd::Hdel => {
            let idx = match store.peek(slot, key, now) {
                None => return out.int(0),
                Some(e) if e.kind() != KIND_HASH => return out.error(WRONGTYPE),
                Some(e) => e.hash_index(),
            };
            let (removed, empty) = store
                .with_hash(key, idx, |h| {
                    let n = (2..a.len())
                        .filter(|&i| h.remove(a.get(i)).is_some())
                        .count();
                    ((n, h.is_empty()), n > 0)
                })
                .unwrap_or((0, false));
            if empty {
                store.remove(slot, key);
            }
            out.int(removed as i64);
        }
        Cmd::Hincrby => hincrby(store, a, slot, now, out),
        _ => out.error(&wrong_args(spec.name)),
    }
}

fn hincrby(store: &mut Store, a: &Args, slot: u16, now: u64, out: &mut Out) {
    let key = a.get(1);
    let Some(by) = a.int(3) else {
        return out.error(NOT_INT);
    };
    let Some(idx) = hash_for_write(store, slot, key, now) else {
        return out.error(WRONGTYPE);
    };
    let field = a.get(2);
    let r = store.with_hash(key, idx, |h| {
        let cur = match h.get(field).map(|v| parse_i64(v)) {
            Some(Some(n)) => n,
            Some(None) => return (Err(HASH_NOT_INT), false),
            None => 0,
        };
        let Some(n) = cur.checked_add(by) else {
            return (Err(OVERFLOW), false);
        };
        h.insert(
            field.into(),
            itoa::Buffer::new().format(n).as_bytes().into(),
        );
        (Ok(n), true)
    });
    match r {
        Some(Ok(n)) => out.int(n),
        Some(Err(e)) => out.error(e),
        // The entry names a hash object the store does not hold: the books are broken.
        None => panic!("hash entry without its object"),
    }
}

/// The hash object for a write to `key`, created if the key is absent; `None` if the key
/// holds another type.
fn hash_for_write(store: &mut Store, slot: u16, key: &[u8], now: u64) -> Option<u32> {
    match store.peek(slot, key, now) {
        Some(e) if e.kind() == KIND_HASH => Some(e.hash_index()),
        Some(_) => None,
        None => {
            let idx = store.new_hash();
            store.put(slot, Entry::hash(key, idx, None, 0), now);
            Some(idx)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{run, store};
    use crate::proto::resp::errors::WRONGTYPE;

    #[test]
    fn hashes_and_types() {
        let mut s = store();
        assert_eq!(run(&mut s, 0, "HSET h a 1 b 2"), ":2\r\n");
        assert_eq!(run(&mut s, 0, "HSET h a 3"), ":0\r\n");
        assert_eq!(run(&mut s, 0, "HGET h a"), "$1\r\n3\r\n");
        assert_eq!(run(&mut s, 0, "HMGET h a nope"), "*2\r\n$1\r\n3\r\n$-1\r\n");
        assert_eq!(run(&mut s, 0, "HLEN h"), ":2\r\n");
        assert_eq!(run(&mut s, 0, "HEXISTS h b"), ":1\r\n");
        assert_eq!(run(&mut s, 0, "HINCRBY h a 10"), ":13\r\n");
        assert_eq!(
            run(&mut s, 0, "HSET h a 1 b"),
            "-ERR wrong number of arguments for 'hset' command\r\n"
        );
        assert_eq!(run(&mut s, 0, "TYPE h"), "+hash\r\n");
        assert_eq!(run(&mut s, 0, "GET h"), format!("-{WRONGTYPE}\r\n"));
        assert_eq!(run(&mut s, 0, "SET str x"), "+OK\r\n");
        assert_eq!(run(&mut s, 0, "HGET str a"), format!("-{WRONGTYPE}\r\n"));
        assert_eq!(run(&mut s, 0, "TYPE str"), "+string\r\n");
        assert_eq!(run(&mut s, 0, "TYPE nope"), "+none\r\n");
        assert_eq!(run(&mut s, 0, "HDEL h a b c"), ":2\r\n");
        assert_eq!(run(&mut s, 0, "EXISTS h"), ":0\r\n");
        s.check();
        // Overwriting a hash with a string frees the hash.
        assert_eq!(run(&mut s, 0, "HSET h2 f v"), ":1\r\n");
        assert_eq!(run(&mut s, 0, "SET h2 v"), "+OK\r\n");
        s.check();
    }
}
