//! Command semantics on the shard that owns the key(s). Pure over a [`Store`], a clock value
//! and an output buffer: no I/O, so every command is unit-tested here without sockets.
//!
//! Single-key commands write their RESP reply directly ([`exec_key`]). Multi-key and
//! all-shard commands are split by the connection's shard into [`PartOp`]s, each run on its
//! owner ([`exec_part`]), and the [`PartResult`]s are joined back in request order.

use super::entry::{Entry, KIND_HASH, KIND_STR};
use super::store::{Found, Store};
use crate::proto::resp::command::{Cmd, Spec, DENYOOM};
use crate::proto::resp::parse::parse_i64;
use crate::proto::resp::write::{format_double, Out};

pub const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";
pub const NOT_INT: &str = "ERR value is not an integer or out of range";
pub const NOT_FLOAT: &str = "ERR value is not a valid float";
pub const SYNTAX: &str = "ERR syntax error";
pub const OOM: &str = "OOM command not allowed when used memory > 'maxmemory'.";

/// A request's arguments: ranges into a buffer the parser filled.
#[derive(Clone, Copy)]
pub struct Args<'a> {
    pub src: &'a [u8],
    pub ranges: &'a [(usize, usize)],
}

impl<'a> Args<'a> {
    #[inline]
    pub fn len(&self) -> usize {
        self.ranges.len()
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    #[inline]
    pub fn get(&self, i: usize) -> &'a [u8] {
        let (s, e) = self.ranges[i];
        &self.src[s..e]
    }

    pub fn int(&self, i: usize) -> Option<i64> {
        parse_i64(self.get(i))
    }

    pub fn eq(&self, i: usize, word: &str) -> bool {
        self.get(i).eq_ignore_ascii_case(word.as_bytes())
    }
}

fn parse_f64(b: &[u8]) -> Option<f64> {
    let s = std::str::from_utf8(b).ok()?;
    if s.is_empty() || s.trim() != s {
        return None;
    }
    let v: f64 = match s.to_ascii_lowercase().as_str() {
        "inf" | "+inf" | "infinity" => f64::INFINITY,
        "-inf" | "-infinity" => f64::NEG_INFINITY,
        _ => s.parse().ok()?,
    };
    if v.is_nan() {
        return None;
    }
    Some(v)
}

/// An expiry option turned into an absolute unix-ms deadline.
fn deadline(unit_ms: i64, absolute: bool, v: i64, now_ms: u64) -> Option<u64> {
    let ms = v.checked_mul(unit_ms)?;
    let at = if absolute {
        ms
    } else {
        ms.checked_add(now_ms as i64)?
    };
    u64::try_from(at).ok()
}

/// Run a single-key command. `slot` is the key's slot, already computed for routing.
pub fn exec_key(store: &mut Store, spec: &Spec, a: &Args, slot: u16, now: u64, out: &mut Out) {
    if spec.flags & DENYOOM != 0 && !store.make_room(now) {
        out.error(OOM);
        return;
    }
    let key = a.get(1);
    match spec.cmd {
        Cmd::Get => match store.read(slot, key, now) {
            Found::Str(v) => out.bulk(v),
            Found::Missing => out.null(),
            Found::Hash(_) => out.error(WRONGTYPE),
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
                _ => out.error(&format!(
                    "ERR invalid expire time in '{}' command",
                    spec.name
                )),
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
            let e = match store.peek(slot, key, now) {
                Some(e) if e.kind() != KIND_STR => return out.error(WRONGTYPE),
                Some(e) => {
                    let mut v = Vec::with_capacity(e.value().len() + a.get(2).len());
                    v.extend_from_slice(e.value());
                    v.extend_from_slice(a.get(2));
                    e.with_value(&v)
                }
                None => Entry::string(key, a.get(2), None, 0),
            };
            let len = e.value().len() as i64;
            if !store.replace(slot, e.clone()) {
                store.put(slot, e, now);
            }
            out.int(len);
        }
        Cmd::Strlen => match store.read(slot, key, now) {
            Found::Str(v) => out.int(v.len() as i64),
            Found::Missing => out.int(0),
            Found::Hash(_) => out.error(WRONGTYPE),
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
        Cmd::Incrbyfloat => {
            let Some(by) = parse_f64(a.get(2)) else {
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
                return out.error("ERR increment would produce NaN or Infinity");
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
        Cmd::Type => match store.peek(slot, key, now) {
            None => out.simple("none"),
            Some(e) if e.kind() == KIND_HASH => out.simple("hash"),
            Some(_) => out.simple("string"),
        },
        Cmd::Del | Cmd::Unlink => out.int(store.remove_live(slot, key, now) as i64),
        Cmd::Exists => out.int(store.peek(slot, key, now).is_some() as i64),
        Cmd::Hset | Cmd::Hmset => {
            if a.len() % 2 != 0 {
                return out.error(&format!(
                    "ERR wrong number of arguments for '{}' command",
                    spec.name
                ));
            }
            let Some(idx) = hash_for_write(store, slot, key, now) else {
                return out.error(WRONGTYPE);
            };
            let added = store
                .with_hash(idx, |h| {
                    let mut added = 0;
                    for i in (2..a.len()).step_by(2) {
                        let old = h.insert(a.get(i).into(), a.get(i + 1).into());
                        added += old.is_none() as i64;
                    }
                    added
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
            Found::Str(_) => out.error(WRONGTYPE),
        },
        Cmd::Hmget => match store.read(slot, key, now) {
            Found::Str(_) => out.error(WRONGTYPE),
            found => {
                out.array(a.len() - 2);
                for i in 2..a.len() {
                    match &found {
                        Found::Hash(h) => out.bulk_opt(h.get(a.get(i)).map(|v| &v[..])),
                        _ => out.null(),
                    }
                }
            }
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
            Found::Str(_) => out.error(WRONGTYPE),
        },
        Cmd::Hlen => match store.read(slot, key, now) {
            Found::Hash(h) => out.int(h.len() as i64),
            Found::Missing => out.int(0),
            Found::Str(_) => out.error(WRONGTYPE),
        },
        Cmd::Hexists => match store.read(slot, key, now) {
            Found::Hash(h) => out.int(h.contains_key(a.get(2)) as i64),
            Found::Missing => out.int(0),
            Found::Str(_) => out.error(WRONGTYPE),
        },
        Cmd::Hdel => {
            let idx = match store.peek(slot, key, now) {
                None => return out.int(0),
                Some(e) if e.kind() != KIND_HASH => return out.error(WRONGTYPE),
                Some(e) => e.hash_index(),
            };
            let (removed, empty) = store
                .with_hash(idx, |h| {
                    let n = (2..a.len())
                        .filter(|&i| h.remove(a.get(i)).is_some())
                        .count();
                    (n, h.is_empty())
                })
                .unwrap_or((0, false));
            if empty {
                store.remove(slot, key);
            }
            out.int(removed as i64);
        }
        Cmd::Hincrby => {
            let Some(by) = a.int(3) else {
                return out.error(NOT_INT);
            };
            let Some(idx) = hash_for_write(store, slot, key, now) else {
                return out.error(WRONGTYPE);
            };
            let field = a.get(2);
            let r = store.with_hash(idx, |h| {
                let cur = match h.get(field) {
                    Some(v) => match parse_i64(v) {
                        Some(n) => n,
                        None => return Err("ERR hash value is not an integer"),
                    },
                    None => 0,
                };
                let n = cur
                    .checked_add(by)
                    .ok_or("ERR increment or decrement would overflow")?;
                h.insert(
                    field.into(),
                    itoa::Buffer::new().format(n).as_bytes().into(),
                );
                Ok(n)
            });
            match r {
                Some(Ok(n)) => out.int(n),
                Some(Err(e)) => out.error(e),
                None => out.error("ERR internal: hash object missing"),
            }
        }
        _ => out.error(&format!("ERR '{}' is not a single-key command", spec.name)),
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
        return out.error("ERR increment or decrement would overflow");
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
        } else if has_next
            && expire.is_none()
            && !keepttl
            && ["EX", "PX", "EXAT", "PXAT"].iter().any(|w| a.eq(i, w))
        {
            let (unit, abs) = if a.eq(i, "EX") {
                (1000, false)
            } else if a.eq(i, "PX") {
                (1, false)
            } else if a.eq(i, "EXAT") {
                (1000, true)
            } else {
                (1, true)
            };
            let Some(v) = a.int(i + 1) else {
                return out.error(NOT_INT);
            };
            match deadline(unit, abs, v, now) {
                Some(at) if v > 0 => expire = Some(at),
                _ => return out.error("ERR invalid expire time in 'set' command"),
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
        let unit_abs = if a.eq(i, "EX") {
            Some((1000, false))
        } else if a.eq(i, "PX") {
            Some((1, false))
        } else if a.eq(i, "EXAT") {
            Some((1000, true))
        } else if a.eq(i, "PXAT") {
            Some((1, true))
        } else {
            None
        };
        match unit_abs {
            Some((unit, abs)) if i + 1 < a.len() && change.is_none() => {
                let Some(v) = a.int(i + 1) else {
                    return out.error(NOT_INT);
                };
                match deadline(unit, abs, v, now) {
                    Some(at) if v > 0 => change = Some(Some(at)),
                    _ => return out.error("ERR invalid expire time in 'getex' command"),
                }
                i += 2;
            }
            _ => return out.error(SYNTAX),
        }
    }
    match store.read(slot, key, now) {
        Found::Missing => return out.null(),
        Found::Hash(_) => return out.error(WRONGTYPE),
        Found::Str(v) => out.bulk(v),
    }
    if let Some(ttl) = change {
        if let Some(e) = store.peek(slot, key, now) {
            let e = e.with_expire(ttl);
            store.replace(slot, e);
        }
    }
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
            return out.error(&format!(
                "ERR Unsupported option {}",
                String::from_utf8_lossy(a.get(i))
            ));
        }
    }
    if nx && (xx || gt || lt) {
        return out.error("ERR NX and XX, GT or LT options at the same time are not compatible");
    }
    if gt && lt {
        return out.error("ERR GT and LT options at the same time are not compatible");
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
        None => {
            return out.error(&format!(
                "ERR invalid expire time in '{}' command",
                spec.name
            ))
        }
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

/// A piece of a multi-key or all-shard command, run on one shard.
#[derive(Debug, Clone)]
pub enum PartOp {
    Mget(Vec<Vec<u8>>),
    Mset(Vec<(Vec<u8>, Vec<u8>)>),
    /// MSET only if none of the keys exist; run after a `CountExisting` round found none.
    Del(Vec<Vec<u8>>),
    CountExisting(Vec<Vec<u8>>),
    Dbsize,
    Flush,
    Keys(Vec<u8>),
    Scan {
        cursor: usize,
        count: usize,
        pattern: Option<Vec<u8>>,
        kind: Option<u8>,
    },
    Info,
    SetMaxmemory(usize),
    SetPolicy(super::store::Policy),
    SetSamples(usize),
}

/// Keyspace figures a shard reports for INFO.
#[derive(Debug, Clone, Copy, Default)]
pub struct ShardInfo {
    pub keys: u64,
    pub expires: u64,
    pub used_bytes: u64,
    pub maxmemory_bytes: u64,
    pub hits: u64,
    pub misses: u64,
    pub expired: u64,
    pub evicted: u64,
    // Filled in by the shard, not the store:
    pub clients: u64,
    pub commands: u64,
    pub connections_received: u64,
    pub rejected_connections: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

#[derive(Debug, Clone)]
pub enum PartResult {
    Values(Vec<Option<Vec<u8>>>),
    Count(i64),
    Keys(Vec<Vec<u8>>),
    Scan { next: usize, keys: Vec<Vec<u8>> },
    Info(ShardInfo),
    Done,
    Oom,
}

pub fn exec_part(store: &mut Store, op: PartOp, now: u64) -> PartResult {
    use super::slot::key_slot;
    match op {
        PartOp::Mget(keys) => PartResult::Values(
            keys.iter()
                .map(|k| match store.read(key_slot(k), k, now) {
                    Found::Str(v) => Some(v.to_vec()),
                    _ => None,
                })
                .collect(),
        ),
        PartOp::Mset(pairs) => {
            if !store.make_room(now) {
                return PartResult::Oom;
            }
            for (k, v) in pairs {
                store.put(key_slot(&k), Entry::string(&k, &v, None, 0), now);
            }
            PartResult::Done
        }
        PartOp::Del(keys) => PartResult::Count(
            keys.iter()
                .filter(|k| store.remove_live(key_slot(k), k, now))
                .count() as i64,
        ),
        PartOp::CountExisting(keys) => PartResult::Count(
            keys.iter()
                .filter(|k| store.peek(key_slot(k), k, now).is_some())
                .count() as i64,
        ),
        PartOp::Dbsize => PartResult::Count(store.keys as i64),
        PartOp::Flush => {
            store.flush();
            PartResult::Done
        }
        PartOp::Keys(pattern) => {
            let mut out = Vec::new();
            store.keys_matching(&pattern, now, &mut out);
            PartResult::Keys(out)
        }
        PartOp::Scan {
            cursor,
            count,
            pattern,
            kind,
        } => {
            let mut keys = Vec::new();
            let next = store.scan(cursor, count, pattern.as_deref(), kind, now, &mut keys);
            PartResult::Scan { next, keys }
        }
        PartOp::Info => PartResult::Info(ShardInfo {
            keys: store.keys as u64,
            expires: store.ttl_keys as u64,
            used_bytes: store.used_bytes as u64,
            maxmemory_bytes: store.maxmemory_bytes as u64,
            hits: store.stats.hits,
            misses: store.stats.misses,
            expired: store.stats.expired,
            evicted: store.stats.evicted,
            ..ShardInfo::default()
        }),
        PartOp::SetMaxmemory(b) => {
            store.maxmemory_bytes = b;
            PartResult::Done
        }
        PartOp::SetPolicy(p) => {
            store.policy = p;
            PartResult::Done
        }
        PartOp::SetSamples(n) => {
            store.samples = n;
            PartResult::Done
        }
    }
}

impl Store {
    /// Delete a key unless it already expired (an expired key counts as absent for DEL).
    pub fn remove_live(&mut self, slot: u16, key: &[u8], now: u64) -> bool {
        self.peek(slot, key, now).is_some() && self.remove(slot, key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::slot::key_slot;
    use crate::proto::resp::command::lookup;

    /// Run one command line against a store and return the raw RESP2 reply.
    fn run(store: &mut Store, now: u64, line: &str) -> String {
        let words: Vec<&str> = line.split(' ').collect();
        let mut src = Vec::new();
        let mut ranges = Vec::new();
        for w in &words {
            let s = src.len();
            src.extend_from_slice(w.as_bytes());
            ranges.push((s, src.len()));
        }
        let a = Args {
            src: &src,
            ranges: &ranges,
        };
        let spec = lookup(a.get(0)).expect("known command");
        assert!(spec.arity_ok(a.len()), "arity for {line}");
        let mut buf = Vec::new();
        let mut out = Out::new(&mut buf, false);
        exec_key(store, spec, &a, key_slot(a.get(1)), now, &mut out);
        String::from_utf8(buf).unwrap()
    }

    fn store() -> Store {
        Store::new(0, crate::cache::slot::SLOTS, 7)
    }

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

    #[test]
    fn noeviction_refuses_writes_over_the_limit() {
        let mut s = store();
        s.maxmemory_bytes = 200;
        for i in 0..10 {
            run(&mut s, 0, &format!("SET key{i} 0123456789"));
        }
        assert_eq!(run(&mut s, 0, "SET another v"), format!("-{OOM}\r\n"));
        // Reads and deletes still work.
        assert_eq!(run(&mut s, 0, "GET key0"), "$10\r\n0123456789\r\n");
        assert_eq!(run(&mut s, 0, "DEL key0"), ":1\r\n");
    }
}
