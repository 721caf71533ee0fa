//! Hashes: HSET, HMSET, HSETNX, HGET, HMGET, HGETALL, HKEYS, HVALS, HDEL, HLEN, HEXISTS,
//! HSTRLEN, HINCRBY, HINCRBYFLOAT, HRANDFIELD, HSCAN (Redis 7.0's t_hash.c semantics).

use super::parse_f64;
use crate::cache::cmd::scan::{parse_cursor, parse_options, ScanOptions};
use crate::cache::entry::{Entry, KIND_HASH};
use crate::cache::store::{glob_match, Found, HashObj, Store};
use crate::limits::RANDOM_REPEATS_MAX;
use crate::proto::resp::command::{Cmd, Spec};
use crate::proto::resp::errors::{
    wrong_args, HASH_NOT_FLOAT, HASH_NOT_INT, INVALID_CURSOR, NAN_OR_INF, NOT_FLOAT, NOT_INT,
    OUT_OF_RANGE, OVERFLOW, SYNTAX, VALUE_NAN_OR_INF, WRONGTYPE,
};
use crate::proto::resp::parse::parse_i64;
use crate::proto::resp::write::{format_double, Out};
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
                        added += h.insert(a.get(i), a.get(i + 1)) as i64;
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
        Cmd::Hsetnx => {
            let Some(idx) = hash_for_write(store, slot, key, now) else {
                return out.error(WRONGTYPE);
            };
            let (field, value) = (a.get(2), a.get(3));
            let added = store
                .with_hash(key, idx, |h| {
                    if h.contains(field) {
                        (false, false)
                    } else {
                        (h.insert(field, value), true)
                    }
                })
                .unwrap_or(false);
            out.int(added as i64);
        }
        Cmd::Hget => match store.read(slot, key, now) {
            Found::Hash(h) => out.bulk_opt(h.get(a.get(2))),
            Found::Missing => out.null(),
            _ => out.error(WRONGTYPE),
        },
        Cmd::Hmget => match store.read(slot, key, now) {
            found @ (Found::Hash(_) | Found::Missing) => {
                out.array(a.len() - 2);
                for i in 2..a.len() {
                    match &found {
                        Found::Hash(h) => out.bulk_opt(h.get(a.get(i))),
                        _ => out.null(),
                    }
                }
            }
            _ => out.error(WRONGTYPE),
        },
        Cmd::Hgetall => match store.read(slot, key, now) {
            Found::Hash(h) => {
                out.map(h.len());
                for (k, v) in h.iter() {
                    out.bulk(k);
                    out.bulk(v);
                }
            }
            Found::Missing => out.map(0),
            _ => out.error(WRONGTYPE),
        },
        Cmd::Hkeys | Cmd::Hvals => match store.read(slot, key, now) {
            Found::Hash(h) => {
                out.array(h.len());
                for (k, v) in h.iter() {
                    out.bulk(if spec.cmd == Cmd::Hkeys { k } else { v });
                }
            }
            Found::Missing => out.array(0),
            _ => out.error(WRONGTYPE),
        },
        Cmd::Hlen => match store.read(slot, key, now) {
            Found::Hash(h) => out.int(h.len() as i64),
            Found::Missing => out.int(0),
            _ => out.error(WRONGTYPE),
        },
        Cmd::Hexists => match store.read(slot, key, now) {
            Found::Hash(h) => out.int(h.contains(a.get(2)) as i64),
            Found::Missing => out.int(0),
            _ => out.error(WRONGTYPE),
        },
        Cmd::Hstrlen => match store.read(slot, key, now) {
            Found::Hash(h) => out.int(h.get(a.get(2)).map_or(0, <[u8]>::len) as i64),
            Found::Missing => out.int(0),
            _ => out.error(WRONGTYPE),
        },
        Cmd::Hdel => {
            let idx = match store.peek(slot, key, now) {
                None => return out.int(0),
                Some(e) if e.kind() != KIND_HASH => return out.error(WRONGTYPE),
                Some(e) => e.obj_index(),
            };
            let (removed, empty) = store
                .with_hash(key, idx, |h| {
                    let n = (2..a.len()).filter(|&i| h.remove(a.get(i))).count();
                    ((n, h.is_empty()), n > 0)
                })
                .unwrap_or((0, false));
            if empty {
                store.remove(slot, key);
            }
            out.int(removed as i64);
        }
        Cmd::Hincrby => hincrby(store, a, slot, now, out),
        Cmd::Hincrbyfloat => hincrbyfloat(store, a, slot, now, out),
        Cmd::Hrandfield => hrandfield(store, a, slot, now, out),
        Cmd::Hscan => hscan(store, a, slot, now, out),
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
        let cur = match h.get(field).map(parse_i64) {
            Some(Some(n)) => n,
            Some(None) => return (Err(HASH_NOT_INT), false),
            None => 0,
        };
        let Some(n) = cur.checked_add(by) else {
            return (Err(OVERFLOW), false);
        };
        h.insert(field, itoa::Buffer::new().format(n).as_bytes());
        (Ok(n), true)
    });
    match r {
        Some(Ok(n)) => out.int(n),
        Some(Err(e)) => out.error(e),
        // The entry names a hash object the store does not hold: the books are broken.
        None => panic!("hash entry without its object"),
    }
}

fn hincrbyfloat(store: &mut Store, a: &Args, slot: u16, now: u64, out: &mut Out) {
    let key = a.get(1);
    let Some(by) = parse_f64(a.get(3)) else {
        return out.error(NOT_FLOAT);
    };
    if by.is_infinite() {
        return out.error(VALUE_NAN_OR_INF);
    }
    let Some(idx) = hash_for_write(store, slot, key, now) else {
        return out.error(WRONGTYPE);
    };
    let field = a.get(2);
    let r = store.with_hash(key, idx, |h| {
        let cur = match h.get(field).map(parse_f64) {
            Some(Some(n)) => n,
            Some(None) => return (Err(HASH_NOT_FLOAT), false),
            None => 0.0,
        };
        let v = cur + by;
        if !v.is_finite() {
            return (Err(NAN_OR_INF), false);
        }
        let text = format_double(v);
        h.insert(field, text.as_bytes());
        (Ok(text), true)
    });
    match r {
        Some(Ok(text)) => out.bulk(text.as_bytes()),
        Some(Err(e)) => out.error(e),
        None => panic!("hash entry without its object"),
    }
}

/// HRANDFIELD key [count [WITHVALUES]].
fn hrandfield(store: &mut Store, a: &Args, slot: u16, now: u64, out: &mut Out) {
    let key = a.get(1);
    if a.len() == 2 {
        let r = store.next_rand();
        return match store.read(slot, key, now) {
            Found::Hash(h) => out.bulk_opt(h.nth(r as usize % h.len()).map(|(k, _)| k)),
            Found::Missing => out.null(),
            _ => out.error(WRONGTYPE),
        };
    }
    let count = match a.int(2) {
        Some(n) if n != i64::MIN => n,
        Some(_) => return out.error(OUT_OF_RANGE),
        None => return out.error(NOT_INT),
    };
    let withvalues = match a.len() {
        3 => false,
        4 if a.eq(3, "WITHVALUES") => true,
        _ => return out.error(SYNTAX),
    };
    if withvalues && !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&count) {
        return out.error(OUT_OF_RANGE);
    }
    // Random numbers first: the read below holds the store.
    let size = match store.peek(slot, key, now) {
        None => 0,
        Some(e) if e.kind() != KIND_HASH => return out.error(WRONGTYPE),
        Some(_) => store
            .get(slot, key)
            .and_then(|e| store.hash_obj(e))
            .map_or(0, HashObj::len),
    };
    let wanted = usize::try_from(count.unsigned_abs()).unwrap_or(usize::MAX);
    if count < 0 && size > 0 && wanted > RANDOM_REPEATS_MAX {
        return out.error(OUT_OF_RANGE);
    }
    let picks: Vec<usize> = if size == 0 || count == 0 {
        Vec::new()
    } else if count < 0 || wanted == 1 {
        // With repetitions, in random order.
        (0..wanted)
            .map(|_| store.next_rand() as usize % size)
            .collect()
    } else if wanted >= size {
        (0..size).collect()
    } else {
        distinct_picks(store, size, wanted)
    };
    let Found::Hash(h) = store.read(slot, key, now) else {
        return out.array(0);
    };
    if withvalues && !out.resp3 {
        out.array(picks.len() * 2);
    } else {
        out.array(picks.len());
    }
    // A packed hash walks its buffer per pick; gather its pairs once instead.
    let pairs: Vec<(&[u8], &[u8])> = if h.encoding() == "listpack" {
        h.iter().collect()
    } else {
        Vec::new()
    };
    for i in picks {
        let pair = match pairs.get(i) {
            Some(&p) => Some(p),
            None => h.nth(i),
        };
        let Some((k, v)) = pair else { continue };
        if withvalues {
            if out.resp3 {
                out.array(2);
            }
            out.bulk(k);
            out.bulk(v);
        } else {
            out.bulk(k);
        }
    }
}

/// `wanted` distinct positions below `size` (wanted < size), in random order.
fn distinct_picks(store: &mut Store, size: usize, wanted: usize) -> Vec<usize> {
    if wanted * 3 > size {
        // Close to the whole hash: shuffle the positions and keep a prefix.
        let mut all: Vec<usize> = (0..size).collect();
        for i in 0..wanted {
            let j = i + store.next_rand() as usize % (size - i);
            all.swap(i, j);
        }
        all.truncate(wanted);
        return all;
    }
    let mut seen = hashbrown::HashSet::with_capacity(wanted);
    let mut picks = Vec::with_capacity(wanted);
    while picks.len() < wanted {
        let i = store.next_rand() as usize % size;
        if seen.insert(i) {
            picks.push(i);
        }
    }
    picks
}

/// HSCAN key cursor [MATCH pattern] [COUNT count].
fn hscan(store: &mut Store, a: &Args, slot: u16, now: u64, out: &mut Out) {
    let Some(cursor) = parse_cursor(a.get(2)) else {
        return out.error(INVALID_CURSOR);
    };
    let h = match store.read(slot, a.get(1), now) {
        Found::Hash(h) => h,
        Found::Missing => {
            out.array(2);
            out.bulk(b"0");
            return out.array(0);
        }
        _ => return out.error(WRONGTYPE),
    };
    let ScanOptions { count, pattern } = match parse_options(a, 3) {
        Ok(o) => o,
        Err(e) => return out.error(e),
    };
    let mut found: Vec<(&[u8], &[u8])> = Vec::new();
    let next = h.scan(cursor, count, |k, v| {
        if pattern.is_none_or(|p| glob_match(p, k, false)) {
            found.push((k, v));
        }
    });
    out.array(2);
    out.bulk(itoa::Buffer::new().format(next).as_bytes());
    out.array(found.len() * 2);
    for (k, v) in found {
        out.bulk(k);
        out.bulk(v);
    }
}

/// The hash object for a write to `key`, created if the key is absent; `None` if the key
/// holds another type.
fn hash_for_write(store: &mut Store, slot: u16, key: &[u8], now: u64) -> Option<u32> {
    match store.peek(slot, key, now) {
        Some(e) if e.kind() == KIND_HASH => Some(e.obj_index()),
        Some(_) => None,
        None => {
            let idx = store.new_hash();
            store.put(slot, Entry::hash(key, idx, None, 0), now);
            Some(idx)
        }
    }
}

mod sliced;
pub use sliced::{wants_slices, wants_write_slices, SlicedReply, SlicedWrite};

#[cfg(test)]
mod tests;
