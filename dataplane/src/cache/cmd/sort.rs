//! SORT and SORT_RO: the elements of a list, set or sorted set, ordered by their numeric
//! value, their bytes (ALPHA), or the values of other keys named by a pattern (BY), with
//! LIMIT, GET patterns, and STORE into a list.
//!
//! BY and GET patterns name keys built from each element. Those keys must live on this
//! store: always on a one-shard node, else only when the pattern has a `{hash tag}` this
//! store owns (Redis Cluster's rule, with "slot" read as "shard").

use super::parse_f64;
use crate::cache::entry::{Entry, KIND_LIST};
use crate::cache::slot::{hash_tag, key_slot, SLOTS};
use crate::cache::store::{Found, Store};
use crate::cache::types::list::End;
use crate::cache::types::{List, Obj};
use crate::proto::resp::command::{Cmd, Spec};
use crate::proto::resp::errors::{
    NOT_INT, SORT_BY_ACROSS_SHARDS, SORT_GET_ACROSS_SHARDS, SORT_NOT_DOUBLE, SYNTAX, WRONGTYPE,
};
use crate::proto::resp::write::Out;
use crate::proto::resp::Args;

struct Options<'a> {
    desc: bool,
    alpha: bool,
    /// Offset and count (a negative count: to the end).
    limit: Option<(i64, i64)>,
    by: Option<&'a [u8]>,
    gets: Vec<&'a [u8]>,
    store_to: Option<&'a [u8]>,
}

fn options<'a>(spec: &Spec, a: &Args<'a>) -> Result<Options<'a>, &'static str> {
    let mut o = Options {
        desc: false,
        alpha: false,
        limit: None,
        by: None,
        gets: Vec::new(),
        store_to: None,
    };
    let n = a.len();
    let mut i = 2;
    while i < n {
        let left = n - i - 1;
        if a.eq(i, "ASC") {
            o.desc = false;
        } else if a.eq(i, "DESC") {
            o.desc = true;
        } else if a.eq(i, "ALPHA") {
            o.alpha = true;
        } else if a.eq(i, "LIMIT") && left >= 2 {
            let (Some(off), Some(count)) = (a.int(i + 1), a.int(i + 2)) else {
                return Err(NOT_INT);
            };
            o.limit = Some((off, count));
            i += 2;
        } else if a.eq(i, "STORE") && left >= 1 && spec.cmd == Cmd::Sort {
            o.store_to = Some(a.get(i + 1));
            i += 1;
        } else if a.eq(i, "BY") && left >= 1 {
            o.by = Some(a.get(i + 1));
            i += 1;
        } else if a.eq(i, "GET") && left >= 1 {
            o.gets.push(a.get(i + 1));
            i += 1;
        } else {
            return Err(SYNTAX);
        }
        i += 1;
    }
    Ok(o)
}

/// May keys made from `pattern` be looked up here?
fn local_pattern(store: &Store, pattern: &[u8]) -> bool {
    if store.slot_range() == (0..SLOTS) {
        return true;
    }
    let tag = hash_tag(pattern);
    tag.len() < pattern.len()
        && !tag.contains(&b'*')
        && store.slot_range().contains(&(key_slot(pattern) as usize))
}

/// The value the pattern names for `elem`: `#` is the element; else the first `*` becomes
/// the element, and `key->field` reads a hash field. None when there is no such value.
fn lookup(store: &mut Store, pattern: &[u8], elem: &[u8], now: u64) -> Option<Vec<u8>> {
    if pattern == b"#" {
        return Some(elem.to_vec());
    }
    let star = pattern.iter().position(|&b| b == b'*')?;
    let arrow = pattern[star + 1..]
        .windows(2)
        .position(|w| w == b"->")
        .map(|p| star + 1 + p)
        .filter(|&p| p + 2 < pattern.len());
    let key_end = arrow.unwrap_or(pattern.len());
    let mut key = Vec::with_capacity(key_end + elem.len());
    key.extend_from_slice(&pattern[..star]);
    key.extend_from_slice(elem);
    key.extend_from_slice(&pattern[star + 1..key_end]);
    let slot = key_slot(&key);
    if !store.slot_range().contains(&(slot as usize)) {
        return None;
    }
    match (store.read(slot, &key, now), arrow) {
        (Found::Str(v), None) => Some(v.to_vec()),
        (Found::Hash(h), Some(p)) => h.get(&pattern[p + 2..]).map(<[u8]>::to_vec),
        _ => None,
    }
}

/// A numeric sort weight as Redis's strtod reads it (an empty value is 0).
fn weight(v: &[u8]) -> Option<f64> {
    if v.is_empty() {
        return Some(0.0);
    }
    parse_f64(v)
}

pub fn sort(store: &mut Store, spec: &Spec, a: &Args, now: u64, out: &mut Out) {
    let o = match options(spec, a) {
        Ok(o) => o,
        Err(e) => return out.error(e),
    };
    if o.by.is_some_and(|p| !local_pattern(store, p)) {
        return out.error(SORT_BY_ACROSS_SHARDS);
    }
    if o.gets
        .iter()
        .any(|p| *p != b"#" && !local_pattern(store, p))
    {
        return out.error(SORT_GET_ACROSS_SHARDS);
    }
    let key = a.get(1);
    let mut elems: Vec<Vec<u8>> = match store.read(key_slot(key), key, now) {
        Found::Missing => Vec::new(),
        Found::List(l) => l.iter_from(0).map(|e| e.to_vec()).collect(),
        Found::Set(s) => s.iter().map(|m| m.to_vec()).collect(),
        Found::Zset(z) => z.iter().map(|(_, m)| m.to_vec()).collect(),
        _ => return out.error(WRONGTYPE),
    };
    // BY without a `*` names no key: the elements keep their order (Redis's "nosort").
    let dontsort = o.by.is_some_and(|p| !p.contains(&b'*'));
    if !dontsort {
        let by_values: Vec<Option<Vec<u8>>> = match o.by {
            Some(p) => elems.iter().map(|e| lookup(store, p, e, now)).collect(),
            None => elems.iter().map(|e| Some(e.clone())).collect(),
        };
        let mut order: Vec<usize> = (0..elems.len()).collect();
        if o.alpha {
            order.sort_by(|&x, &y| {
                let c = match (&by_values[x], &by_values[y]) {
                    (Some(p), Some(q)) => p.cmp(q),
                    (None, None) => std::cmp::Ordering::Equal,
                    (None, _) => std::cmp::Ordering::Less,
                    (_, None) => std::cmp::Ordering::Greater,
                };
                if o.desc {
                    c.reverse()
                } else {
                    c
                }
            });
        } else {
            let mut w = Vec::with_capacity(elems.len());
            for v in &by_values {
                match v.as_deref().map_or(Some(0.0), weight) {
                    Some(x) => w.push(x),
                    None => return out.error(SORT_NOT_DOUBLE),
                }
            }
            order.sort_by(|&x, &y| {
                // Equal weights fall back to the elements' bytes, so the order is defined.
                let c = w[x].total_cmp(&w[y]).then_with(|| elems[x].cmp(&elems[y]));
                if o.desc {
                    c.reverse()
                } else {
                    c
                }
            });
        }
        let mut sorted = Vec::with_capacity(elems.len());
        let mut taken: Vec<Option<Vec<u8>>> = elems.into_iter().map(Some).collect();
        for i in order {
            if let Some(e) = taken[i].take() {
                sorted.push(e);
            }
        }
        elems = sorted;
    } else if o.desc {
        elems.reverse();
    }
    let (start, end) = match o.limit {
        None => (0, elems.len()),
        Some((off, count)) => {
            let start = off.clamp(0, elems.len() as i64) as usize;
            let end = if count < 0 {
                elems.len()
            } else {
                start.saturating_add(count as usize).min(elems.len())
            };
            (start, end)
        }
    };
    let picked = &elems[start..end];
    let rows: Vec<Option<Vec<u8>>> = if o.gets.is_empty() {
        picked.iter().map(|e| Some(e.clone())).collect()
    } else {
        let mut rows = Vec::with_capacity(picked.len() * o.gets.len());
        for e in picked {
            for g in &o.gets {
                rows.push(lookup(store, g, e, now));
            }
        }
        rows
    };
    match o.store_to {
        None => {
            out.array(rows.len());
            for r in &rows {
                out.bulk_opt(r.as_deref());
            }
        }
        Some(dest) => {
            let slot = key_slot(dest);
            if rows.is_empty() {
                store.remove(slot, dest);
            } else {
                // A missing GET value is stored as an empty string, as Redis does.
                let mut list = List::default();
                list.push_all(End::Tail, rows.iter().map(|r| r.as_deref().unwrap_or(b"")));
                let idx = store.new_obj(Obj::List(list));
                store.put(slot, Entry::object(KIND_LIST, dest, idx, None, 0), now);
            }
            out.int(rows.len() as i64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{run, store};

    #[test]
    fn sorts_numbers_bytes_and_patterns_like_redis() {
        let mut s = store();
        run(&mut s, 0, "RPUSH l 3 1 2 10");
        assert_eq!(
            run(&mut s, 0, "SORT l"),
            "*4\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n3\r\n$2\r\n10\r\n"
        );
        assert_eq!(
            run(&mut s, 0, "SORT l ALPHA DESC LIMIT 0 2"),
            "*2\r\n$1\r\n3\r\n$1\r\n2\r\n"
        );
        run(&mut s, 0, "SET w_1 30");
        run(&mut s, 0, "SET w_2 20");
        run(&mut s, 0, "HSET h_3 f 10");
        assert_eq!(
            run(&mut s, 0, "SORT l BY w_* GET # GET h_*->f"),
            "*8\r\n$2\r\n10\r\n$-1\r\n$1\r\n3\r\n$2\r\n10\r\n$1\r\n2\r\n$-1\r\n$1\r\n1\r\n$-1\r\n"
        );
        assert_eq!(
            run(&mut s, 0, "SORT l BY nosort"),
            "*4\r\n$1\r\n3\r\n$1\r\n1\r\n$1\r\n2\r\n$2\r\n10\r\n"
        );
        assert_eq!(run(&mut s, 0, "SORT l STORE dst"), ":4\r\n");
        assert_eq!(run(&mut s, 0, "LRANGE dst 0 0"), "*1\r\n$1\r\n1\r\n");
        assert_eq!(run(&mut s, 0, "SORT nothing STORE dst"), ":0\r\n");
        assert_eq!(run(&mut s, 0, "EXISTS dst"), ":0\r\n");
        run(&mut s, 0, "RPUSH words b a");
        assert!(run(&mut s, 0, "SORT words").starts_with("-ERR One or more scores"));
        assert!(run(&mut s, 0, "SORT_RO l STORE x").starts_with("-ERR syntax error"));
        run(&mut s, 0, "SET str x");
        assert!(run(&mut s, 0, "SORT str").starts_with("-WRONGTYPE"));
        run(&mut s, 0, "SADD st 5 4");
        run(&mut s, 0, "ZADD z 1 b 2 a");
        assert_eq!(run(&mut s, 0, "SORT st"), "*2\r\n$1\r\n4\r\n$1\r\n5\r\n");
        assert_eq!(
            run(&mut s, 0, "SORT z BY nosort"),
            "*2\r\n$1\r\nb\r\n$1\r\na\r\n"
        );
        s.check();
    }
}
