//! Hashes: HSET, HMSET, HSETNX, HGET, HMGET, HGETALL, HKEYS, HVALS, HDEL, HLEN, HEXISTS,
//! HSTRLEN, HINCRBY, HINCRBYFLOAT, HRANDFIELD, HSCAN (Redis 7.0's t_hash.c semantics).

use super::parse_f64;
use crate::budget::{Purpose, Tracked};
use crate::cache::cmd::scan::{parse_cursor, parse_options, ScanOptions};
use crate::cache::entry::{Entry, KIND_HASH};
use crate::cache::slot::key_slot;
use crate::cache::store::{glob_match, Found, HashObj, Store};
use crate::cache::types::hash::Frozen;
use crate::limits::{HASH_REPLY_SLICE_PAIRS, HASH_WRITE_SLICE_PAIRS, RANDOM_REPEATS_MAX};
use crate::proto::resp::command::{Cmd, Spec};
use crate::proto::resp::errors::{
    wrong_args, HASH_NOT_FLOAT, HASH_NOT_INT, INVALID_CURSOR, NAN_OR_INF, NOT_FLOAT, NOT_INT,
    OUT_OF_RANGE, OVERFLOW, SYNTAX, VALUE_NAN_OR_INF, WRONGTYPE,
};
use crate::proto::resp::parse::parse_i64;
use crate::proto::resp::write::{format_double, Out};
use crate::proto::resp::Args;
use std::ops::Range;

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

/// HGETALL, HKEYS or HVALS of a hash with more than `HASH_REPLY_SLICE_PAIRS` pairs, built
/// over several loop turns (`shard/sliced.rs`) so that the shard serves other clients in
/// between: a [`Frozen`] view answers the hash as it was when the command ran, whatever
/// writes come meanwhile.
pub struct SlicedReply {
    frozen: Frozen,
    cmd: Cmd,
    resp3: bool,
    next: usize,
    reply: Vec<u8>,
}

/// Would `a` (as `spec`) be answered in slices? A look at the key without side effects:
/// [`SlicedReply::start`] does the read.
pub fn wants_slices(store: &Store, spec: &Spec, a: &Args) -> bool {
    if !matches!(spec.cmd, Cmd::Hgetall | Cmd::Hkeys | Cmd::Hvals) || a.len() != 2 {
        return false;
    }
    let key = a.get(1);
    store
        .get(key_slot(key), key)
        .and_then(|e| store.hash_obj(e))
        .is_some_and(|h| h.len() > HASH_REPLY_SLICE_PAIRS)
}

impl SlicedReply {
    /// The command, started, when it is to be answered in slices; None: run it whole.
    pub fn start(
        store: &mut Store,
        spec: &Spec,
        a: &Args,
        now: u64,
        resp3: bool,
    ) -> Option<SlicedReply> {
        if !wants_slices(store, spec, a) {
            return None;
        }
        let key = a.get(1);
        let Found::Hash(h) = store.read(key_slot(key), key, now) else {
            return None;
        };
        let frozen = h.freeze()?;
        let mut reply = Vec::new();
        let mut out = Out::new(&mut reply, resp3);
        match spec.cmd {
            Cmd::Hgetall => out.map(frozen.len()),
            _ => out.array(frozen.len()),
        }
        Some(SlicedReply {
            frozen,
            cmd: spec.cmd,
            resp3,
            next: 0,
            reply,
        })
    }

    /// Encode up to `budget` more pairs: how many it encoded, and the whole reply once
    /// the last is in.
    pub fn step(&mut self, budget: usize) -> (usize, Option<Vec<u8>>) {
        let start = self.next;
        let end = (self.next + budget).min(self.frozen.len());
        let mut out = Out::new(&mut self.reply, self.resp3);
        for i in self.next..end {
            let Some((k, v)) = self.frozen.pair(i) else {
                break;
            };
            match self.cmd {
                Cmd::Hgetall => {
                    out.bulk(k);
                    out.bulk(v);
                }
                Cmd::Hkeys => out.bulk(k),
                _ => out.bulk(v),
            }
        }
        self.next = end;
        let done = (self.next >= self.frozen.len()).then(|| std::mem::take(&mut self.reply));
        (end - start, done)
    }
}

/// HSET or HMSET of more than `HASH_WRITE_SLICE_PAIRS` pairs, applied over several loop
/// turns (`shard/sliced.rs`). The shard holds the key in its scheduler from the start to
/// the last slice, so every other command on the key waits for the whole write: it is
/// atomic to other clients, as Redis's.
///
/// It owns the command's frame (moved out of the connection's query buffer, or out of the
/// mesh batch it came in, when it is large: no copy) and reads its pairs slice by slice
/// from it: no turn parses or copies the whole request (issue 13: a 1M-field HSET). The
/// frame stays charged to the memory budget, as input, until the write is done.
pub struct SlicedWrite {
    frame: Tracked<Vec<u8>>,
    key: Range<usize>,
    cmd: Cmd,
    slot: u16,
    /// Where the next field's bulk header starts in `frame`, and how many pairs are left.
    pos: usize,
    left: usize,
    added: i64,
    resp3: bool,
}

impl std::fmt::Debug for SlicedWrite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlicedWrite")
            .field("cmd", &self.cmd)
            .field("left", &self.left)
            .finish()
    }
}

/// Would `a` (as `spec`) be applied in slices?
pub fn wants_write_slices(spec: &Spec, a: &Args) -> bool {
    big_write(spec.cmd, a.len())
}

fn big_write(cmd: Cmd, argc: usize) -> bool {
    matches!(cmd, Cmd::Hset | Cmd::Hmset)
        && argc % 2 == 0
        && (argc - 2) / 2 > HASH_WRITE_SLICE_PAIRS
}

/// The bulk string whose header starts at `frame[pos]`: its bytes and where the next one
/// starts. None when the frame is not a valid multibulk there (it was checked whole by the
/// parser that took it off the connection, so only a bug gets None).
fn bulk_at(frame: &[u8], pos: usize) -> Option<(Range<usize>, usize)> {
    let rest = frame.get(pos..)?;
    if rest.first() != Some(&b'$') {
        return None;
    }
    let eol = rest.iter().position(|&c| c == b'\r')?;
    let len = usize::try_from(parse_i64(&rest[1..eol])?).ok()?;
    let start = pos + eol + 2;
    let end = start.checked_add(len)?;
    (frame.get(end..end + 2)? == b"\r\n").then_some((start..end, end + 2))
}

/// The head of the multibulk `frame`: its argument count, the command's table entry, the
/// key and where argument 2 starts. Reads three headers, however long the frame.
fn frame_head(frame: &[u8]) -> Option<(usize, Cmd, Range<usize>, usize)> {
    if frame.first() != Some(&b'*') {
        return None;
    }
    let eol = frame.iter().position(|&c| c == b'\r')?;
    let argc = usize::try_from(parse_i64(&frame[1..eol])?).ok()?;
    let (name, pos) = bulk_at(frame, eol + 2)?;
    let (key, pos) = bulk_at(frame, pos)?;
    let spec = crate::proto::resp::command::lookup(&frame[name])?;
    Some((argc, spec.cmd, key, pos))
}

impl SlicedWrite {
    /// The command in `frame` (a whole multibulk request, owned), when it is an HSET or
    /// HMSET to apply in slices; the frame back otherwise. Reads only its head.
    pub fn from_frame(frame: Vec<u8>, resp3: bool) -> Result<SlicedWrite, Vec<u8>> {
        let Some((argc, cmd, key, pos)) = frame_head(&frame) else {
            return Err(frame);
        };
        if !big_write(cmd, argc) {
            return Err(frame);
        }
        let cap = frame.capacity();
        Ok(SlicedWrite {
            frame: Tracked::new(frame, cap, Purpose::Input),
            key,
            cmd,
            slot: 0,
            pos,
            left: (argc - 2) / 2,
            added: 0,
            resp3,
        })
    }

    /// Whether `frame` would be a [`SlicedWrite`] (reads only its head).
    pub fn wanted(frame: &[u8]) -> bool {
        frame_head(frame).is_some_and(|(argc, cmd, _, _)| big_write(cmd, argc))
    }

    /// The command started, when it is to be applied in slices (None: run it whole), or
    /// its error answered at once (WRONGTYPE, out of memory), encoded. `a` was parsed from
    /// `frame` (a multibulk request), which is copied.
    pub fn start(
        store: &mut Store,
        spec: &Spec,
        a: &Args,
        frame: &[u8],
        now: u64,
        resp3: bool,
    ) -> Option<Result<SlicedWrite, Vec<u8>>> {
        if !wants_write_slices(spec, a) {
            return None;
        }
        let mut w = SlicedWrite::from_frame(frame.to_vec(), resp3).ok()?;
        Some(w.begin(store, now).map(|()| w))
    }

    /// Check the write can start now (its key held): an error answered at once (WRONGTYPE,
    /// out of memory), encoded, else the key's hash exists from here on.
    pub fn begin(&mut self, store: &mut Store, now: u64) -> Result<(), Vec<u8>> {
        let refuse = |e: &str| {
            let mut b = Vec::new();
            Out::new(&mut b, self.resp3).error(e);
            Err(b)
        };
        if !store.make_room(now) {
            return refuse(crate::proto::resp::errors::OOM);
        }
        let key = &self.frame.as_ref()[self.key.clone()];
        self.slot = key_slot(key);
        let Some(idx) = hash_for_write(store, self.slot, key, now) else {
            return refuse(WRONGTYPE);
        };
        // Its room at once: the hash does not grow (copy and rehash) inside a slice.
        let left = self.left;
        store.with_hash(key, idx, |h| {
            h.reserve(left);
            ((), false)
        });
        Ok(())
    }

    /// Apply up to `budget` more pairs: how many it applied, and the reply once the last
    /// is in.
    pub fn step(&mut self, store: &mut Store, budget: usize, now: u64) -> (usize, Option<Vec<u8>>) {
        let frame = self.frame.as_ref();
        let key = &frame[self.key.clone()];
        let n = budget.min(self.left);
        let mut pos = self.pos;
        let mut broken = false;
        // The key is held: nothing else has written it since the last slice. (Recreated
        // if active expiry or eviction removed it in between.)
        if let Some(idx) = hash_for_write(store, self.slot, key, now) {
            self.added += store
                .with_hash(key, idx, |h| {
                    let mut added = 0;
                    for _ in 0..n {
                        let pair = bulk_at(frame, pos)
                            .and_then(|(f, p)| bulk_at(frame, p).map(|(v, p)| (f, v, p)));
                        let Some((f, v, next)) = pair else {
                            broken = true;
                            break;
                        };
                        added += h.insert(&frame[f], &frame[v]) as i64;
                        pos = next;
                    }
                    (added, true)
                })
                .unwrap_or(0);
        } else {
            // Skip the slice's pairs (the key cannot be a hash any more: not reached while
            // held, but never applied to another type).
            for _ in 0..2 * n {
                match bulk_at(frame, pos) {
                    Some((_, p)) => pos = p,
                    None => {
                        broken = true;
                        break;
                    }
                }
            }
        }
        self.pos = pos;
        self.left -= n;
        let mut reply = Vec::new();
        if broken {
            self.left = 0;
            tracing::error!("a sliced HSET's frame does not parse past its head");
            Out::new(&mut reply, self.resp3).error("ERR Protocol error: invalid multibulk");
            return (n, Some(reply));
        }
        if self.left > 0 {
            return (n, None);
        }
        let mut out = Out::new(&mut reply, self.resp3);
        if self.cmd == Cmd::Hset {
            out.int(self.added)
        } else {
            out.ok()
        }
        (n, Some(reply))
    }

    /// The key, for the scheduler's hold.
    pub fn key(&self) -> &[u8] {
        &self.frame.as_ref()[self.key.clone()]
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{run, store};
    use super::SlicedWrite;
    use crate::limits::HASH_WRITE_SLICE_PAIRS;
    use crate::proto::resp::errors::WRONGTYPE;

    fn hset_frame(cmd: &str, key: &str, n: usize) -> Vec<u8> {
        let mut f = format!(
            "*{}\r\n${}\r\n{cmd}\r\n${}\r\n{key}\r\n",
            2 + 2 * n,
            cmd.len(),
            key.len()
        );
        for i in 0..n {
            let (k, v) = (format!("f{i}"), format!("value-{i}"));
            f += &format!("${}\r\n{k}\r\n${}\r\n{v}\r\n", k.len(), v.len());
        }
        f.into_bytes()
    }

    #[test]
    fn a_big_hset_reads_its_pairs_from_its_frame_slice_by_slice() {
        let mut s = store();
        let n = HASH_WRITE_SLICE_PAIRS * 2 + 3;
        // Small ones, and other commands, are not taken.
        assert!(SlicedWrite::from_frame(hset_frame("HSET", "h", 10), false).is_err());
        assert!(SlicedWrite::from_frame(hset_frame("HGET", "h", n), false).is_err());
        assert!(SlicedWrite::from_frame(b"*3\r\n$4\r\nHSET".to_vec(), false).is_err());
        assert!(SlicedWrite::wanted(&hset_frame("hset", "h", n)));
        let mut w = SlicedWrite::from_frame(hset_frame("hset", "h", n), false).unwrap();
        assert_eq!(w.key(), b"h");
        w.begin(&mut s, 0).unwrap();
        let mut slices = 0;
        let reply = loop {
            slices += 1;
            let (done, reply) = w.step(&mut s, HASH_WRITE_SLICE_PAIRS, 0);
            assert!(done <= HASH_WRITE_SLICE_PAIRS);
            if let Some(r) = reply {
                break r;
            }
        };
        assert_eq!(slices, 3);
        assert_eq!(reply, format!(":{n}\r\n").into_bytes());
        assert_eq!(run(&mut s, 0, "HLEN h"), format!(":{n}\r\n"));
        assert_eq!(
            run(&mut s, 0, &format!("HGET h f{}", n - 1)),
            format!("$11\r\nvalue-{}\r\n", n - 1)
        );
        // HMSET answers OK; a key of another type is refused before any pair is applied.
        let mut w = SlicedWrite::from_frame(hset_frame("HMSET", "h", n), true).unwrap();
        w.begin(&mut s, 0).unwrap();
        while w.step(&mut s, HASH_WRITE_SLICE_PAIRS, 0).1.is_none() {}
        assert_eq!(run(&mut s, 0, "SET str x"), "+OK\r\n");
        let mut w = SlicedWrite::from_frame(hset_frame("HSET", "str", n), false).unwrap();
        assert_eq!(
            w.begin(&mut s, 0).unwrap_err(),
            format!("-{WRONGTYPE}\r\n").into_bytes()
        );
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
    fn setnx_strlen_keys_vals() {
        let mut s = store();
        assert_eq!(run(&mut s, 0, "HSETNX h f v"), ":1\r\n");
        assert_eq!(run(&mut s, 0, "HSETNX h f w"), ":0\r\n");
        assert_eq!(run(&mut s, 0, "HGET h f"), "$1\r\nv\r\n");
        assert_eq!(run(&mut s, 0, "HSTRLEN h f"), ":1\r\n");
        assert_eq!(run(&mut s, 0, "HSTRLEN h nope"), ":0\r\n");
        assert_eq!(run(&mut s, 0, "HSTRLEN nope f"), ":0\r\n");
        assert_eq!(run(&mut s, 0, "HSET h g ww"), ":1\r\n");
        assert_eq!(run(&mut s, 0, "HKEYS h"), "*2\r\n$1\r\nf\r\n$1\r\ng\r\n");
        assert_eq!(run(&mut s, 0, "HVALS h"), "*2\r\n$1\r\nv\r\n$2\r\nww\r\n");
        assert_eq!(run(&mut s, 0, "HKEYS nope"), "*0\r\n");
        run(&mut s, 0, "SET str x");
        for c in ["HSETNX str f v", "HSTRLEN str f", "HKEYS str", "HVALS str"] {
            assert_eq!(run(&mut s, 0, c), format!("-{WRONGTYPE}\r\n"), "{c}");
        }
        s.check();
    }

    #[test]
    fn incrbyfloat() {
        let mut s = store();
        assert_eq!(run(&mut s, 0, "HINCRBYFLOAT h f 10.5"), "$4\r\n10.5\r\n");
        assert_eq!(run(&mut s, 0, "HINCRBYFLOAT h f 0.1"), "$4\r\n10.6\r\n");
        assert_eq!(run(&mut s, 0, "HINCRBYFLOAT h f -10.6"), "$1\r\n0\r\n");
        assert_eq!(run(&mut s, 0, "HSET h s hello"), ":1\r\n");
        assert_eq!(
            run(&mut s, 0, "HINCRBYFLOAT h s 1"),
            "-ERR hash value is not a float\r\n"
        );
        assert_eq!(
            run(&mut s, 0, "HINCRBYFLOAT h f x"),
            "-ERR value is not a valid float\r\n"
        );
        assert_eq!(
            run(&mut s, 0, "HINCRBYFLOAT h f +inf"),
            "-ERR value is NaN or Infinity\r\n"
        );
        assert_eq!(run(&mut s, 0, "HSET h big 1.5e308"), ":1\r\n");
        assert_eq!(
            run(&mut s, 0, "HINCRBYFLOAT h big 1.5e308"),
            "-ERR increment would produce NaN or Infinity\r\n"
        );
        // A failed increment of a new key leaves no key behind.
        run(&mut s, 0, "HINCRBY n f x");
        assert_eq!(run(&mut s, 0, "EXISTS n"), ":0\r\n");
        assert_eq!(run(&mut s, 0, "HSET n f notanumber"), ":1\r\n");
        assert_eq!(
            run(&mut s, 0, "HINCRBY n f 1"),
            "-ERR hash value is not an integer\r\n"
        );
        s.check();
    }

    fn count_items(reply: &str) -> usize {
        reply.lines().filter(|l| l.starts_with('$')).count()
    }

    #[test]
    fn randfield() {
        let mut s = store();
        assert_eq!(run(&mut s, 0, "HRANDFIELD nope"), "$-1\r\n");
        assert_eq!(run(&mut s, 0, "HRANDFIELD nope 5"), "*0\r\n");
        run(&mut s, 0, "HSET h a 1 b 2 c 3");
        let one = run(&mut s, 0, "HRANDFIELD h");
        assert!(["$1\r\na\r\n", "$1\r\nb\r\n", "$1\r\nc\r\n"].contains(&one.as_str()));
        assert_eq!(run(&mut s, 0, "HRANDFIELD h 0"), "*0\r\n");
        assert_eq!(count_items(&run(&mut s, 0, "HRANDFIELD h 2")), 2);
        assert_eq!(count_items(&run(&mut s, 0, "HRANDFIELD h 10")), 3);
        assert_eq!(count_items(&run(&mut s, 0, "HRANDFIELD h -10")), 10);
        let wv = run(&mut s, 0, "HRANDFIELD h 10 WITHVALUES");
        assert!(wv.starts_with("*6\r\n"), "{wv}");
        assert_eq!(
            count_items(&run(&mut s, 0, "HRANDFIELD h -5 withvalues")),
            10
        );
        assert_eq!(run(&mut s, 0, "HRANDFIELD h 1 x"), "-ERR syntax error\r\n");
        assert_eq!(
            run(&mut s, 0, "HRANDFIELD h -9223372036854775808"),
            "-ERR value is out of range\r\n"
        );
        assert_eq!(
            run(&mut s, 0, "HRANDFIELD h -9223372036854775807 WITHVALUES"),
            "-ERR value is out of range\r\n"
        );
        // Repetitions past the bound are refused (the reply is built whole), but a missing
        // key is still an empty array.
        assert_eq!(
            run(&mut s, 0, "HRANDFIELD h -5000000"),
            "-ERR value is out of range\r\n"
        );
        assert_eq!(run(&mut s, 0, "HRANDFIELD nope -5000000"), "*0\r\n");
        // Distinct picks in a big (table) hash.
        for i in 0..500 {
            run(&mut s, 0, &format!("HSET big f{i} v"));
        }
        let r = run(&mut s, 0, "HRANDFIELD big 100");
        let fields: std::collections::HashSet<&str> =
            r.lines().filter(|l| l.starts_with('f')).collect();
        assert_eq!(fields.len(), 100);
        let r = run(&mut s, 0, "HRANDFIELD big 400");
        let fields: std::collections::HashSet<&str> =
            r.lines().filter(|l| l.starts_with('f')).collect();
        assert_eq!(fields.len(), 400);
    }

    #[test]
    fn scan() {
        let mut s = store();
        assert_eq!(run(&mut s, 0, "HSCAN nope 0"), "*2\r\n$1\r\n0\r\n*0\r\n");
        assert_eq!(run(&mut s, 0, "HSCAN nope x"), "-ERR invalid cursor\r\n");
        run(&mut s, 0, "HSET small a 1 b 2 ab 3");
        assert_eq!(
            run(&mut s, 0, "HSCAN small 0 MATCH a*"),
            "*2\r\n$1\r\n0\r\n*4\r\n$1\r\na\r\n$1\r\n1\r\n$2\r\nab\r\n$1\r\n3\r\n"
        );
        assert_eq!(
            run(&mut s, 0, "HSCAN small 0 COUNT 0"),
            "-ERR syntax error\r\n"
        );
        assert_eq!(
            run(&mut s, 0, "HSCAN small 0 COUNT"),
            "-ERR syntax error\r\n"
        );
        assert_eq!(
            run(&mut s, 0, "HSCAN small 0 COUNT x"),
            "-ERR value is not an integer or out of range\r\n"
        );
        for i in 0..1000 {
            run(&mut s, 0, &format!("HSET big f{i} v{i}"));
        }
        let mut seen = std::collections::HashSet::new();
        let mut cursor = "0".to_string();
        loop {
            let r = run(&mut s, 0, &format!("HSCAN big {cursor} COUNT 50"));
            let lines: Vec<&str> = r.lines().collect();
            cursor = lines[2].to_string();
            for l in &lines[4..] {
                if l.starts_with('f') {
                    seen.insert(l.to_string());
                }
            }
            if cursor == "0" {
                break;
            }
        }
        assert_eq!(seen.len(), 1000);
        run(&mut s, 0, "SET str x");
        assert_eq!(run(&mut s, 0, "HSCAN str 0"), format!("-{WRONGTYPE}\r\n"));
    }

    #[test]
    fn memory_charge_follows_fields() {
        let mut s = store();
        for i in 0..300 {
            run(&mut s, 0, &format!("HSET h f{i} {}", "v".repeat(i % 90)));
            if i % 50 == 0 {
                s.check();
            }
        }
        let full = s.used_bytes;
        for i in 0..299 {
            run(&mut s, 0, &format!("HDEL h f{i}"));
        }
        s.check();
        assert!(s.used_bytes < full / 10, "{} of {full}", s.used_bytes);
        run(&mut s, 0, "HDEL h f299");
        assert_eq!((s.keys, s.used_bytes), (0, 0));
    }
}
