//! HGETALL, HKEYS and HVALS of big hashes, and big HSET/HMSET writes, over several loop
//! turns (`shard/sliced.rs` runs the slices).

use super::hash_for_write;
use crate::budget::{Purpose, Tracked};
use crate::cache::slot::key_slot;
use crate::cache::store::{Found, Store};
use crate::cache::types::hash::Frozen;
use crate::limits::{HASH_REPLY_SLICE_PAIRS, HASH_WRITE_SLICE_PAIRS};
use crate::proto::resp::command::{Cmd, Spec};
use crate::proto::resp::errors::WRONGTYPE;
use crate::proto::resp::parse::parse_i64;
use crate::proto::resp::write::Out;
use crate::proto::resp::Args;
use std::ops::Range;

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
