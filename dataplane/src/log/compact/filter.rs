//! The pure part of compaction: records inside a stored batch, the map of each key's latest
//! offset, and what a batch becomes when cleaned. No I/O; the compactor (`mod.rs`) feeds it
//! the bytes its slices read.
//!
//! A record is `length, attributes, timestampDelta, offsetDelta, key, value, headers`
//! (zig-zag varints for lengths and deltas; a length of -1 is null). A record whose value is
//! null is a tombstone.
//!
//! A cleaned batch keeps its header's offsets (base offset and last offset delta, as Kafka's
//! cleaner does), producer fields and timestamps; only the records it keeps, uncompressed,
//! and the count and CRC change. Transactional and control batches are never changed.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};

use crate::limits::COMPACT_INFLATED_BYTES_MAX;
use crate::log::batch::{self, BatchHeader, HEADER_BYTES, LOG_OVERHEAD};
use crate::log::records;

/// Attribute bits: the batch belongs to a transaction, or is a control batch (markers).
const TRANSACTIONAL: i16 = 0x10;
const CONTROL: i16 = 0x20;
/// Attribute bits of the compression codec.
const CODEC: i16 = 0x7;

/// One record of an inflated records section.
#[derive(Debug, PartialEq, Eq)]
pub struct Rec<'a> {
    /// The whole record as stored (its length varint included): what a cleaned batch copies.
    pub bytes: &'a [u8],
    pub offset_delta: i64,
    pub key: Option<&'a [u8]>,
    pub tombstone: bool,
}

fn varint(b: &[u8], pos: &mut usize) -> Option<i64> {
    let mut z: u64 = 0;
    for shift in (0..64).step_by(7) {
        let byte = *b.get(*pos)?;
        *pos += 1;
        z |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some((z >> 1) as i64 ^ -((z & 1) as i64));
        }
    }
    None
}

/// The `count` records of `body` (inflated); None when they do not read as records.
pub fn parse(body: &[u8], count: i32) -> Option<Vec<Rec<'_>>> {
    let mut out = Vec::with_capacity(usize::try_from(count).ok()?.min(body.len()));
    let mut pos = 0;
    for _ in 0..count {
        let start = pos;
        let len = usize::try_from(varint(body, &mut pos)?).ok()?;
        let end = pos.checked_add(len).filter(|&e| e <= body.len())?;
        let rec = &body[..end];
        pos += 1; // attributes
        varint(rec, &mut pos)?; // timestamp delta
        let offset_delta = varint(rec, &mut pos)?;
        let klen = varint(rec, &mut pos)?;
        let key = if klen < 0 {
            None
        } else {
            let k = rec.get(pos..pos.checked_add(usize::try_from(klen).ok()?)?)?;
            pos += k.len();
            Some(k)
        };
        let vlen = varint(rec, &mut pos)?;
        out.push(Rec {
            bytes: &body[start..end],
            offset_delta,
            key,
            tombstone: vlen < 0,
        });
        pos = end;
    }
    Some(out)
}

/// A key as the map holds it: 128 bits of two SipHash runs (Kafka's cleaner keeps 128-bit
/// MD5 digests the same way; a collision would need about 2^64 keys).
pub fn key_hash(key: &[u8]) -> u128 {
    let mut a = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut a);
    let mut b = std::collections::hash_map::DefaultHasher::new();
    0x5a_u8.hash(&mut b);
    key.hash(&mut b);
    (u128::from(a.finish()) << 64) | u128::from(b.finish())
}

/// Each key's latest offset over the segments a pass maps.
#[derive(Default)]
pub struct KeyMap {
    latest: HashMap<u128, i64>,
}

impl KeyMap {
    /// Empty the map and make room for `keys` keys, keeping its table: growing a large
    /// table rehashes every entry at once, and freeing one unmaps every page, either of
    /// which in one slice would stall the shard for milliseconds.
    pub fn reset(&mut self, keys: usize) {
        self.latest.clear();
        self.latest.reserve(keys);
    }

    pub fn len(&self) -> usize {
        self.latest.len()
    }

    pub fn is_empty(&self) -> bool {
        self.latest.is_empty()
    }

    /// Note `key` at `offset`; the offset it supersedes, if any.
    fn note(&mut self, key: &[u8], offset: i64) -> Option<i64> {
        match self.latest.insert(key_hash(key), offset) {
            Some(old) if old > offset => {
                self.latest.insert(key_hash(key), old);
                Some(offset)
            }
            old => old,
        }
    }

    fn latest(&self, key: &[u8]) -> Option<i64> {
        self.latest.get(&key_hash(key)).copied()
    }
}

/// Whether compaction leaves batch `h` alone: transactional and control batches.
pub fn untouched(h: &BatchHeader) -> bool {
    h.attributes & (TRANSACTIONAL | CONTROL) != 0
}

/// The records of the batch `b` (header `h`), inflated within the bound.
fn records_of(h: &BatchHeader, b: &[u8]) -> Option<Vec<u8>> {
    let body = b.get(HEADER_BYTES..h.size)?;
    records::inflate(h, body, COMPACT_INFLATED_BYTES_MAX as u64).ok()
}

/// What mapping a batch found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Mapped {
    /// False when the batch may hold a value the map does not know (unreadable, or
    /// transactional): no tombstone may go in that pass, since it could uncover such a value.
    pub readable: bool,
    /// Tombstones in the batch.
    pub tombstones: u64,
}

/// Note every keyed record of batch `b` in `map`, calling `superseded` with the offset of
/// each record a later one replaces. Batches left alone, and batches whose records cannot
/// be read, note nothing (they are then kept whole).
pub fn map_batch(
    h: &BatchHeader,
    b: &[u8],
    map: &mut KeyMap,
    mut superseded: impl FnMut(i64),
) -> Mapped {
    let unreadable = Mapped::default();
    let readable = Mapped {
        readable: true,
        tombstones: 0,
    };
    if h.attributes & CONTROL != 0 {
        return readable;
    }
    if untouched(h) {
        return unreadable;
    }
    let Some(recs) = records_of(h, b) else {
        return unreadable;
    };
    let Some(recs) = parse(&recs, h.record_count) else {
        return unreadable;
    };
    let mut found = readable;
    for r in recs {
        if let Some(k) = r.key {
            found.tombstones += u64::from(r.tombstone);
            if let Some(old) = map.note(k, h.base_offset + r.offset_delta) {
                superseded(old);
            }
        }
    }
    found
}

/// What cleaning made of a batch.
#[derive(Debug, PartialEq, Eq)]
pub enum Cleaned {
    /// Every record stays: the batch is copied as it is.
    Keep,
    /// No record stays.
    Drop,
    /// Some stay: this batch holds them.
    Rebuilt(Vec<u8>),
}

/// Clean batch `b` (header `h`) against `map`: a keyed record stays when it is its key's
/// latest; a tombstone (the latest, null value) stays unless `drop_tombstones`. Records
/// without a key stay (a compacted topic refuses them on produce; older data keeps them).
/// Returns what the batch becomes and how many tombstones it keeps.
pub fn clean_batch(
    h: &BatchHeader,
    b: &[u8],
    map: &KeyMap,
    drop_tombstones: bool,
) -> (Cleaned, u64) {
    if untouched(h) {
        return (Cleaned::Keep, 0);
    }
    let Some(body) = records_of(h, b) else {
        return (Cleaned::Keep, 0);
    };
    let Some(recs) = parse(&body, h.record_count) else {
        return (Cleaned::Keep, 0);
    };
    let mut kept = Vec::with_capacity(recs.len());
    let mut tombstones = 0;
    for r in &recs {
        let stays = match r.key {
            None => true,
            Some(k) => {
                let offset = h.base_offset + r.offset_delta;
                map.latest(k).is_none_or(|l| l <= offset) && !(r.tombstone && drop_tombstones)
            }
        };
        if stays {
            tombstones += u64::from(r.tombstone && r.key.is_some());
            kept.push(r);
        }
    }
    let cleaned = if kept.len() == recs.len() {
        Cleaned::Keep
    } else if kept.is_empty() {
        Cleaned::Drop
    } else {
        Cleaned::Rebuilt(rebuild(b, &kept))
    };
    (cleaned, tombstones)
}

/// Batch `b` holding only `kept` of its records, uncompressed; offsets, timestamps and
/// producer fields as they were.
fn rebuild(b: &[u8], kept: &[&Rec]) -> Vec<u8> {
    let len: usize = kept.iter().map(|r| r.bytes.len()).sum();
    let mut out = Vec::with_capacity(HEADER_BYTES + len);
    out.extend_from_slice(&b[..HEADER_BYTES]);
    for r in kept {
        out.extend_from_slice(r.bytes);
    }
    let batch_len = (out.len() - LOG_OVERHEAD) as i32;
    out[8..12].copy_from_slice(&batch_len.to_be_bytes());
    let attributes = i16::from_be_bytes([out[21], out[22]]) & !CODEC;
    out[21..23].copy_from_slice(&attributes.to_be_bytes());
    out[57..61].copy_from_slice(&(kept.len() as i32).to_be_bytes());
    let crc = crc32c::crc32c(&out[21..]);
    out[17..21].copy_from_slice(&crc.to_be_bytes());
    out
}

/// Whether a produced batch holds a record without a key (a compacted topic refuses it,
/// as Kafka does with INVALID_RECORD). Control batches hold no data records.
pub fn keyless(h: &BatchHeader, b: &[u8]) -> bool {
    if h.attributes & CONTROL != 0 {
        return false;
    }
    let Some(body) = b.get(HEADER_BYTES..h.size).and_then(|body| {
        records::inflate(h, body, crate::limits::PRODUCE_INFLATED_BYTES_MAX as u64).ok()
    }) else {
        return false;
    };
    parse(&body, h.record_count).is_some_and(|recs| recs.iter().any(|r| r.key.is_none()))
}

/// The whole batches at the front of `buf`: their headers and positions in `buf`, and the
/// bytes they span. When none is whole, the size of the first (to read it whole next), or
/// an error when what is there is not a batch.
pub fn whole_batches(buf: &[u8]) -> Result<(Vec<(BatchHeader, usize)>, usize), usize> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos + HEADER_BYTES <= buf.len() {
        let Ok(h) = batch::peek(&buf[pos..]) else {
            break;
        };
        if pos + h.size > buf.len() {
            if out.is_empty() {
                return Err(h.size);
            }
            break;
        }
        out.push((h, pos));
        pos += h.size;
    }
    if out.is_empty() {
        return Err(HEADER_BYTES);
    }
    Ok((out, pos))
}

/// A test record: its key and value (None: null).
#[cfg(test)]
pub type TestRecord<'a> = (Option<&'a [u8]>, Option<&'a [u8]>);

/// Test helper: a stored, uncompressed batch at `base` of `records`.
#[cfg(test)]
pub fn keyed_batch(base: i64, recs: &[TestRecord]) -> Vec<u8> {
    fn put(out: &mut Vec<u8>, v: i64) {
        let mut z = ((v << 1) ^ (v >> 63)) as u64;
        loop {
            let byte = (z & 0x7f) as u8;
            z >>= 7;
            if z == 0 {
                out.push(byte);
                break;
            }
            out.push(byte | 0x80);
        }
    }
    let mut b = batch::build(base, 1000, &vec![&b""[..]; recs.len()]);
    b.truncate(HEADER_BYTES);
    for (i, (k, v)) in recs.iter().enumerate() {
        let mut r = vec![0u8];
        put(&mut r, 0);
        put(&mut r, i as i64);
        for f in [k, v] {
            match f {
                Some(x) => {
                    put(&mut r, x.len() as i64);
                    r.extend_from_slice(x);
                }
                None => put(&mut r, -1),
            }
        }
        put(&mut r, 0);
        put(&mut b, r.len() as i64);
        b.extend_from_slice(&r);
    }
    let len = (b.len() - LOG_OVERHEAD) as i32;
    b[8..12].copy_from_slice(&len.to_be_bytes());
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(batches: &[Vec<u8>], drop_tombstones: bool) -> Vec<(i64, Option<Vec<u8>>)> {
        let mut map = KeyMap::default();
        for b in batches {
            let h = batch::validate(b).unwrap();
            map_batch(&h, b, &mut map, |_| {});
        }
        let mut out = Vec::new();
        for b in batches {
            let h = batch::validate(b).unwrap();
            let cleaned = match clean_batch(&h, b, &map, drop_tombstones).0 {
                Cleaned::Keep => b.clone(),
                Cleaned::Drop => continue,
                Cleaned::Rebuilt(n) => n,
            };
            let nh = batch::validate(&cleaned).unwrap();
            assert_eq!(
                (nh.base_offset, nh.last_offset()),
                (h.base_offset, h.last_offset()),
                "offsets kept"
            );
            for r in parse(&cleaned[HEADER_BYTES..], nh.record_count).unwrap() {
                let v = if r.tombstone {
                    None
                } else {
                    let mut p = 0;
                    // attributes, ts, offset, key len + key, value len: value follows.
                    varint(r.bytes, &mut p).unwrap();
                    p += 1;
                    varint(r.bytes, &mut p).unwrap();
                    varint(r.bytes, &mut p).unwrap();
                    let kl = varint(r.bytes, &mut p).unwrap();
                    p += kl.max(0) as usize;
                    let vl = varint(r.bytes, &mut p).unwrap() as usize;
                    Some(r.bytes[p..p + vl].to_vec())
                };
                out.push((nh.base_offset + r.offset_delta, v));
            }
        }
        out
    }

    #[test]
    fn latest_value_per_key_stays_with_its_offset() {
        let b0 = keyed_batch(
            0,
            &[
                (Some(b"a"), Some(b"a0")),
                (Some(b"b"), Some(b"b0")),
                (Some(b"a"), Some(b"a1")),
            ],
        );
        let b1 = keyed_batch(3, &[(Some(b"c"), Some(b"c0")), (Some(b"b"), None)]);
        let b2 = keyed_batch(5, &[(Some(b"a"), Some(b"a2"))]);
        let kept = state(&[b0.clone(), b1.clone(), b2.clone()], false);
        assert_eq!(
            kept,
            vec![
                (3, Some(b"c0".to_vec())),
                (4, None),
                (5, Some(b"a2".to_vec()))
            ]
        );
        // Past delete.retention.ms the tombstone goes too.
        let kept = state(&[b0, b1, b2], true);
        assert_eq!(
            kept,
            vec![(3, Some(b"c0".to_vec())), (5, Some(b"a2".to_vec()))]
        );
    }

    #[test]
    fn rebuilt_batches_validate_but_are_not_taken_from_producers() {
        let b = keyed_batch(10, &[(Some(b"k"), Some(b"1")), (Some(b"k"), Some(b"2"))]);
        let h = batch::validate(&b).unwrap();
        let mut map = KeyMap::default();
        let mut gone = Vec::new();
        let m = map_batch(&h, &b, &mut map, |o| gone.push(o));
        assert_eq!((m.readable, m.tombstones, gone), (true, 0, vec![10]));
        let (Cleaned::Rebuilt(n), 0) = clean_batch(&h, &b, &map, false) else {
            panic!("one record goes")
        };
        let nh = batch::validate(&n).unwrap();
        assert_eq!((nh.record_count, nh.last_offset_delta), (1, 1));
        assert!(
            batch::validate_produced(&n).is_err(),
            "a hole is not a produce"
        );
    }

    #[test]
    fn transactional_and_keyless_records_stay() {
        let mut t = keyed_batch(0, &[(Some(b"k"), Some(b"old"))]);
        t[22] |= TRANSACTIONAL as u8;
        let crc = crc32c::crc32c(&t[21..]);
        t[17..21].copy_from_slice(&crc.to_be_bytes());
        let newer = keyed_batch(1, &[(Some(b"k"), Some(b"new")), (None, Some(b"x"))]);
        let kept = state(&[t, newer], true);
        assert_eq!(kept.len(), 3, "the transactional batch is left alone");
        let h = batch::validate(&keyed_batch(0, &[(None, Some(b"v"))])).unwrap();
        assert!(keyless(&h, &keyed_batch(0, &[(None, Some(b"v"))])));
        let b = keyed_batch(0, &[(Some(b"k"), None)]);
        assert!(!keyless(&batch::validate(&b).unwrap(), &b));
    }

    #[test]
    fn whole_batches_and_garbage() {
        let a = keyed_batch(0, &[(Some(b"k"), Some(b"v"))]);
        let mut buf = a.clone();
        buf.extend_from_slice(&a[..20]);
        let (hs, end) = whole_batches(&buf).unwrap();
        assert_eq!((hs.len(), end), (1, a.len()));
        assert_eq!(whole_batches(&a[..a.len() - 1]), Err(a.len()));
        assert!(parse(&[0x7f], 1).is_none());
        assert!(parse(&[], 1).is_none());
    }
}
