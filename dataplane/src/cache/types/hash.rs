//! Hash values: field → value, in one of Redis 7.0's two encodings.
//!
//! - **packed** (OBJECT ENCODING "listpack"): at most [`HASH_PACKED_ENTRIES_MAX`] pairs whose
//!   fields and values are each at most [`HASH_PACKED_VALUE_BYTES_MAX`] bytes, as one byte
//!   buffer of length-prefixed field, value, field, value ...; a lookup walks it (at most
//!   128 pairs, as Redis's listpack does). A small hash costs one allocation.
//! - **table** ("hashtable"): the pairs in a dense vector (each pair one allocation) and a
//!   hash table of their positions. A removal moves the last pair into the hole.
//!
//! A hash becomes a table when it passes either bound and never goes back, as in Redis.
//!
//! HSCAN's cursor on a table is a position: it walks the vector from the end down, so a
//! field present for the whole scan is returned at least once (a removal moves the last
//! pair, which the scan already passed, into the hole; new pairs are appended behind it).
//! A packed hash is returned whole in one call, with cursor 0 (as Redis does for listpacks).
//!
//! The memory charge ([`HashObj::cost`]) is kept as a running count: O(1).
//!
//! A table is shared (`Arc`) and copied on write: a reply over a big hash (HGETALL, HKEYS,
//! HVALS past `HASH_REPLY_SLICE_PAIRS` pairs) keeps a [`Frozen`] view and is encoded over
//! several loop turns (`shard/sliced.rs`), answering the hash as it was when the command
//! ran. A write to that hash while such a reply is being built copies the table first (one
//! allocation per pair, in the writer's turn); without one, a write changes it in place.

use super::{put_bytes, put_u32, Reader};
use crate::limits::{HASH_PACKED_ENTRIES_MAX, HASH_PACKED_VALUE_BYTES_MAX};
use hashbrown::{DefaultHashBuilder, HashTable};
use std::hash::BuildHasher;
use std::sync::Arc;

/// Memory charged per pair of a table-encoded hash besides its bytes: the pair's allocation
/// header and rounding, its vector slot (a 16-byte fat pointer) and its index slot.
pub const FIELD_OVERHEAD_BYTES: usize = 40;
/// The allocation header and rounding of one heap block.
const ALLOC_OVERHEAD_BYTES: usize = 16;

#[derive(Debug, Clone)]
pub struct HashObj {
    repr: Repr,
}

#[derive(Debug, Clone)]
enum Repr {
    Packed(Packed),
    Table(Arc<Table>),
}

impl Default for HashObj {
    fn default() -> Self {
        HashObj {
            repr: Repr::Packed(Packed::default()),
        }
    }
}

impl HashObj {
    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Packed(p) => p.len as usize,
            Repr::Table(t) => t.pairs.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes charged for the contents. O(1).
    pub fn cost(&self) -> usize {
        match &self.repr {
            Repr::Packed(p) if p.buf.capacity() == 0 => 0,
            Repr::Packed(p) => p.buf.capacity() + ALLOC_OVERHEAD_BYTES,
            Repr::Table(t) => t.cost(),
        }
    }

    /// Bytes of the inline form ([`super::Obj::inline_len`]): only a packed hash has one.
    pub fn inline_len(&self) -> Option<usize> {
        match &self.repr {
            Repr::Packed(p) => Some(4 + p.buf.len()),
            Repr::Table(_) => None,
        }
    }

    /// Append the inline form: the pair count, then the packed bytes as they are.
    pub fn write_inline(&self, out: &mut Vec<u8>) {
        if let Repr::Packed(p) = &self.repr {
            put_u32(out, p.len);
            out.extend_from_slice(&p.buf);
        }
    }

    /// Read back what [`HashObj::write_inline`] wrote.
    pub fn from_inline(b: &[u8]) -> Option<HashObj> {
        let (len, buf) = b.split_first_chunk::<4>()?;
        Some(HashObj {
            repr: Repr::Packed(Packed {
                buf: buf.to_vec(),
                len: u32::from_le_bytes(*len),
            }),
        })
    }

    /// OBJECT ENCODING's answer.
    pub fn encoding(&self) -> &'static str {
        match &self.repr {
            Repr::Packed(_) => "listpack",
            Repr::Table(_) => "hashtable",
        }
    }

    pub fn get(&self, field: &[u8]) -> Option<&[u8]> {
        match &self.repr {
            Repr::Packed(p) => p.find(field).map(|(_, v)| p.slice(v)),
            Repr::Table(t) => t.find(field).map(|i| t.pairs[i].value()),
        }
    }

    pub fn contains(&self, field: &[u8]) -> bool {
        self.get(field).is_some()
    }

    /// Room for `n` more pairs at once, for a big HSET applied in slices (issue 13): no
    /// growth of the table (a copy of every pair and a rehash of its index, tens of
    /// milliseconds at a million pairs) inside one of its slices.
    pub fn reserve(&mut self, n: usize) {
        if let Repr::Packed(_) = &self.repr {
            if self.len() + n <= HASH_PACKED_ENTRIES_MAX {
                return;
            }
            self.convert();
        }
        if let Repr::Table(t) = &mut self.repr {
            let t = Arc::make_mut(t);
            t.pairs.reserve(n);
            let (pairs, hasher) = (&t.pairs, &t.hasher);
            t.index
                .reserve(n, |&j| hasher.hash_one(pairs[j as usize].field()));
        }
    }

    /// Set `field` to `value`; true when the field is new.
    pub fn insert(&mut self, field: &[u8], value: &[u8]) -> bool {
        if let Repr::Packed(p) = &mut self.repr {
            let fits = field.len() <= HASH_PACKED_VALUE_BYTES_MAX
                && value.len() <= HASH_PACKED_VALUE_BYTES_MAX;
            if fits {
                if p.set_existing(field, value) {
                    return false;
                }
                if (p.len as usize) < HASH_PACKED_ENTRIES_MAX {
                    p.push(field, value);
                    return true;
                }
            }
            self.convert();
        }
        match &mut self.repr {
            Repr::Table(t) => Arc::make_mut(t).insert(field, value),
            Repr::Packed(_) => unreachable!("converted above"),
        }
    }

    /// Remove `field`; true when it was there.
    pub fn remove(&mut self, field: &[u8]) -> bool {
        match &mut self.repr {
            Repr::Packed(p) => p.remove(field),
            Repr::Table(t) => Arc::make_mut(t).remove(field),
        }
    }

    /// Every pair, in storage order.
    pub fn iter(&self) -> Iter<'_> {
        match &self.repr {
            Repr::Packed(p) => Iter::Packed { buf: &p.buf },
            Repr::Table(t) => Iter::Table(t.pairs.iter()),
        }
    }

    /// The pair at position `i` (`i < len`) in storage order: O(1) for a table, a walk for
    /// a packed hash (at most 128 pairs).
    pub fn nth(&self, i: usize) -> Option<(&[u8], &[u8])> {
        match &self.repr {
            Repr::Packed(_) => self.iter().nth(i),
            Repr::Table(t) => t.pairs.get(i).map(|p| (p.field(), p.value())),
        }
    }

    /// HSCAN from `cursor`: calls `f` with the pairs of this step (about `count` of them for
    /// a table, all of them for a packed hash) and returns the next cursor (0: done).
    pub fn scan<'a>(
        &'a self,
        cursor: u64,
        count: usize,
        mut f: impl FnMut(&'a [u8], &'a [u8]),
    ) -> u64 {
        let t = match &self.repr {
            Repr::Packed(_) => {
                self.iter().for_each(|(k, v)| f(k, v));
                return 0;
            }
            Repr::Table(t) => t,
        };
        let len = t.pairs.len() as u64;
        let mut at = if cursor == 0 { len } else { cursor.min(len) };
        let mut visited = 0;
        while at > 0 && visited < count.max(1) {
            at -= 1;
            visited += 1;
            let p = &t.pairs[at as usize];
            f(p.field(), p.value());
        }
        at
    }

    /// Move a packed hash into a table.
    fn convert(&mut self) {
        let mut t = Table::with_capacity(self.len() + 1);
        for (k, v) in self.iter() {
            t.insert(k, v);
        }
        self.repr = Repr::Table(Arc::new(t));
    }

    /// A table's pairs as they are now, for a reply built over several turns (None for a
    /// packed hash, which is never large). O(1): later writes copy the table.
    pub fn freeze(&self) -> Option<Frozen> {
        match &self.repr {
            Repr::Table(t) => Some(Frozen(t.clone())),
            Repr::Packed(_) => None,
        }
    }
}

/// A table-encoded hash's pairs as they were when [`HashObj::freeze`] was called.
pub struct Frozen(Arc<Table>);

impl Frozen {
    pub fn len(&self) -> usize {
        self.0.pairs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.pairs.is_empty()
    }

    /// The pair at position `i < len`, in storage order (the order HGETALL answers in).
    pub fn pair(&self, i: usize) -> Option<(&[u8], &[u8])> {
        self.0.pairs.get(i).map(|p| (p.field(), p.value()))
    }
}

/// Pairs of a hash, as (field, value).
pub enum Iter<'a> {
    Packed { buf: &'a [u8] },
    Table(std::slice::Iter<'a, Pair>),
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Iter::Packed { buf } => {
                let (k, rest) = take_item(buf)?;
                let (v, rest) = take_item(rest)?;
                *buf = rest;
                Some((k, v))
            }
            Iter::Table(it) => it.next().map(|p| (p.field(), p.value())),
        }
    }
}

/// One length-prefixed item from the front of a packed buffer, and the rest.
fn take_item(b: &[u8]) -> Option<(&[u8], &[u8])> {
    let (&n, rest) = b.split_first()?;
    let n = n as usize;
    (n <= rest.len()).then(|| rest.split_at(n))
}

/// The packed encoding: `[len u8][bytes]` for field, value, field, value ...
#[derive(Debug, Clone, Default)]
struct Packed {
    buf: Vec<u8>,
    len: u32,
}

impl Packed {
    fn slice(&self, r: std::ops::Range<usize>) -> &[u8] {
        &self.buf[r]
    }

    /// Where `field`'s pair starts, and its value's bytes.
    fn find(&self, field: &[u8]) -> Option<(usize, std::ops::Range<usize>)> {
        let mut at = 0;
        while at < self.buf.len() {
            let klen = self.buf[at] as usize;
            let kstart = at + 1;
            let vat = kstart + klen;
            let vlen = self.buf[vat] as usize;
            let vstart = vat + 1;
            if &self.buf[kstart..vat] == field {
                return Some((at, vstart..vstart + vlen));
            }
            at = vstart + vlen;
        }
        None
    }

    /// Replace the value of an existing field; false when the field is absent.
    fn set_existing(&mut self, field: &[u8], value: &[u8]) -> bool {
        let Some((_, v)) = self.find(field) else {
            return false;
        };
        let grow = value.len().saturating_sub(v.len());
        self.buf.reserve_exact(grow);
        self.buf[v.start - 1] = value.len() as u8;
        self.buf.splice(v, value.iter().copied());
        self.fit();
        true
    }

    fn push(&mut self, field: &[u8], value: &[u8]) {
        self.buf.reserve_exact(2 + field.len() + value.len());
        self.buf.push(field.len() as u8);
        self.buf.extend_from_slice(field);
        self.buf.push(value.len() as u8);
        self.buf.extend_from_slice(value);
        self.len += 1;
    }

    fn remove(&mut self, field: &[u8]) -> bool {
        let Some((start, v)) = self.find(field) else {
            return false;
        };
        self.buf.drain(start..v.end);
        self.len -= 1;
        self.fit();
        true
    }

    /// Give back what a shrink left over (the charge is the capacity).
    fn fit(&mut self) {
        if self.buf.capacity() > self.buf.len() + self.buf.len() / 4 {
            self.buf.shrink_to_fit();
        }
    }
}

/// One pair of a table: `[field length u32 LE][field][value]` in one allocation.
#[derive(Debug, Clone)]
pub struct Pair(Box<[u8]>);

impl Pair {
    fn new(field: &[u8], value: &[u8]) -> Pair {
        let mut v = Vec::with_capacity(4 + field.len() + value.len());
        v.extend_from_slice(&(field.len() as u32).to_le_bytes());
        v.extend_from_slice(field);
        v.extend_from_slice(value);
        Pair(v.into_boxed_slice())
    }

    fn field_len(&self) -> usize {
        u32::from_le_bytes([self.0[0], self.0[1], self.0[2], self.0[3]]) as usize
    }

    fn field(&self) -> &[u8] {
        &self.0[4..4 + self.field_len()]
    }

    fn value(&self) -> &[u8] {
        &self.0[4 + self.field_len()..]
    }

    fn cost(&self) -> usize {
        self.0.len() + FIELD_OVERHEAD_BYTES
    }
}

/// The table encoding: dense pairs and an index of their positions.
#[derive(Clone)]
struct Table {
    pairs: Vec<Pair>,
    index: HashTable<u32>,
    hasher: DefaultHashBuilder,
    /// The sum of the pairs' [`Pair::cost`].
    pair_bytes: usize,
}

impl std::fmt::Debug for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Table")
            .field("pairs", &self.pairs.len())
            .finish()
    }
}

impl Table {
    fn with_capacity(n: usize) -> Table {
        Table {
            pairs: Vec::with_capacity(n),
            index: HashTable::with_capacity(n),
            hasher: DefaultHashBuilder::default(),
            pair_bytes: 0,
        }
    }

    fn cost(&self) -> usize {
        // The vector's spare slots are charged as pairs are (16 bytes each); the index
        // costs its 4-byte slots and control bytes.
        self.pair_bytes
            + (self.pairs.capacity() - self.pairs.len()) * std::mem::size_of::<Pair>()
            + self.index.capacity().saturating_sub(self.index.len()) * 5
            + 2 * ALLOC_OVERHEAD_BYTES
    }

    fn find(&self, field: &[u8]) -> Option<usize> {
        let h = self.hasher.hash_one(field);
        let pairs = &self.pairs;
        self.index
            .find(h, |&i| pairs[i as usize].field() == field)
            .map(|&i| i as usize)
    }

    fn insert(&mut self, field: &[u8], value: &[u8]) -> bool {
        let pair = Pair::new(field, value);
        if let Some(i) = self.find(field) {
            self.pair_bytes = self.pair_bytes + pair.cost() - self.pairs[i].cost();
            self.pairs[i] = pair;
            return false;
        }
        let h = self.hasher.hash_one(field);
        let i = self.pairs.len() as u32;
        self.pair_bytes += pair.cost();
        self.pairs.push(pair);
        let (pairs, hasher) = (&self.pairs, &self.hasher);
        self.index
            .insert_unique(h, i, |&j| hasher.hash_one(pairs[j as usize].field()));
        true
    }

    fn remove(&mut self, field: &[u8]) -> bool {
        let h = self.hasher.hash_one(field);
        let pairs = &self.pairs;
        let Ok(found) = self
            .index
            .find_entry(h, |&i| pairs[i as usize].field() == field)
        else {
            return false;
        };
        let (i, _) = found.remove();
        let i = i as usize;
        let last = self.pairs.len() - 1;
        if i != last {
            // The last pair moves into the hole: re-point its index slot.
            let lh = self.hasher.hash_one(self.pairs[last].field());
            let slot = self.index.find_mut(lh, |&j| j as usize == last);
            if let Some(slot) = slot {
                *slot = i as u32;
            }
        }
        let gone = self.pairs.swap_remove(i);
        self.pair_bytes -= gone.cost();
        if self.pairs.capacity() > 64 && self.pairs.len() < self.pairs.capacity() / 4 {
            self.pairs.shrink_to(self.pairs.len() * 2);
            let (pairs, hasher) = (&self.pairs, &self.hasher);
            self.index.shrink_to(pairs.len() * 2, |&j| {
                hasher.hash_one(pairs[j as usize].field())
            });
        }
        true
    }
}

pub fn dump(h: &HashObj, out: &mut Vec<u8>) {
    put_u32(out, h.len() as u32);
    for (k, v) in h.iter() {
        put_bytes(out, k);
        put_bytes(out, v);
    }
}

pub fn load(r: &mut Reader) -> Option<HashObj> {
    let n = r.count(8)?;
    let mut h = HashObj::default();
    for _ in 0..n {
        let k = r.bytes()?;
        let v = r.bytes()?;
        h.insert(k, v);
    }
    (h.len() == n).then_some(h)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn a_frozen_view_keeps_the_pairs_while_the_hash_changes() {
        let mut h = HashObj::default();
        for i in 0..1000 {
            h.insert(format!("f{i}").as_bytes(), b"v");
        }
        let frozen = h.freeze().expect("a table");
        assert!(
            HashObj::default().freeze().is_none(),
            "a packed hash is never frozen"
        );
        h.insert(b"f0", b"changed");
        h.insert(b"new", b"1");
        h.remove(b"f1");
        check_cost(&h);
        assert_eq!(frozen.len(), 1000);
        let pairs: HashMap<Vec<u8>, Vec<u8>> = (0..frozen.len())
            .map(|i| {
                frozen
                    .pair(i)
                    .map(|(k, v)| (k.to_vec(), v.to_vec()))
                    .unwrap()
            })
            .collect();
        assert_eq!(pairs.len(), 1000);
        assert_eq!(pairs[b"f0".as_slice()], b"v");
        assert!(pairs.contains_key(b"f1".as_slice()) && !pairs.contains_key(b"new".as_slice()));
        assert_eq!(h.get(b"f0"), Some(b"changed".as_slice()));
        assert_eq!(h.len(), 1000);
    }

    fn check_cost(h: &HashObj) {
        if let Repr::Table(t) = &h.repr {
            let real: usize = t.pairs.iter().map(Pair::cost).sum();
            assert_eq!(real, t.pair_bytes);
            assert_eq!(t.index.len(), t.pairs.len());
            for (i, p) in t.pairs.iter().enumerate() {
                assert_eq!(t.find(p.field()), Some(i));
            }
        }
    }

    #[test]
    fn small_hashes_stay_packed_and_big_ones_become_tables() {
        let mut h = HashObj::default();
        assert_eq!(h.cost(), 0);
        for i in 0..HASH_PACKED_ENTRIES_MAX {
            assert!(h.insert(format!("f{i}").as_bytes(), b"v"));
        }
        assert_eq!(h.encoding(), "listpack");
        assert!(!h.insert(b"f1", b"other"));
        assert_eq!(h.get(b"f1"), Some(&b"other"[..]));
        assert!(h.insert(b"one-more", b"v"));
        assert_eq!(h.encoding(), "hashtable");
        assert_eq!(h.len(), HASH_PACKED_ENTRIES_MAX + 1);
        check_cost(&h);
        // Never back, even when small again.
        for i in 0..HASH_PACKED_ENTRIES_MAX {
            assert!(h.remove(format!("f{i}").as_bytes()));
            check_cost(&h);
        }
        assert_eq!((h.len(), h.encoding()), (1, "hashtable"));
        let mut big = HashObj::default();
        big.insert(b"f", &[b'x'; HASH_PACKED_VALUE_BYTES_MAX]);
        assert_eq!(big.encoding(), "listpack");
        big.insert(b"g", &[b'x'; HASH_PACKED_VALUE_BYTES_MAX + 1]);
        assert_eq!(big.encoding(), "hashtable");
        assert_eq!(big.get(b"f").map(<[u8]>::len), Some(64));
    }

    #[test]
    fn behaves_as_a_map_in_both_encodings() {
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        let mut model: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
        let mut h = HashObj::default();
        for step in 0..20_000 {
            let r = crate::cache::store::xorshift64(&mut rng);
            let k = format!("k{}", r % 300).into_bytes();
            let vlen = if step > 10_000 {
                (r >> 20) % 100
            } else {
                (r >> 20) % 10
            };
            let v = vec![b'a' + (r % 26) as u8; vlen as usize];
            if r % 3 == 0 {
                assert_eq!(h.remove(&k), model.remove(&k).is_some());
            } else {
                assert_eq!(h.insert(&k, &v), model.insert(k.clone(), v).is_none());
            }
            assert_eq!(h.len(), model.len());
            if step % 997 == 0 {
                check_cost(&h);
                for (k, v) in &model {
                    assert_eq!(h.get(k), Some(&v[..]));
                }
                assert_eq!(h.iter().count(), model.len());
            }
        }
    }

    #[test]
    fn scan_returns_every_field_present_throughout() {
        let mut h = HashObj::default();
        for i in 0..1000 {
            h.insert(format!("f{i}").as_bytes(), b"v");
        }
        let mut seen = std::collections::HashSet::new();
        let mut cursor = 0;
        let mut round = 0;
        loop {
            cursor = h.scan(cursor, 7, |k, _| {
                seen.insert(k.to_vec());
            });
            // Churn while scanning: remove fields 500.. and add new ones.
            round += 1;
            h.remove(format!("f{}", 500 + round).as_bytes());
            h.insert(format!("new{round}").as_bytes(), b"v");
            if cursor == 0 {
                break;
            }
        }
        for i in (0..500).chain(500 + round + 1..1000) {
            assert!(seen.contains(format!("f{i}").as_bytes()), "f{i} missed");
        }
    }

    #[test]
    fn dump_load_round_trip_and_malformed_input() {
        for n in [0, 3, 200] {
            let mut h = HashObj::default();
            for i in 0..n {
                h.insert(format!("f{i}").as_bytes(), format!("v{i}").as_bytes());
            }
            let mut b = Vec::new();
            dump(&h, &mut b);
            let back = load(&mut Reader(&b)).unwrap();
            assert_eq!(back.len(), n);
            assert_eq!(back.encoding(), h.encoding());
            for (k, v) in h.iter() {
                assert_eq!(back.get(k), Some(v));
            }
            for cut in 0..b.len() {
                assert!(load(&mut Reader(&b[..cut])).is_none(), "cut at {cut}");
            }
        }
        // A count far larger than the bytes that follow is refused before allocating.
        assert!(load(&mut Reader(&[0xff, 0xff, 0xff, 0x7f])).is_none());
        // A field named twice is not a hash's form.
        let mut b = Vec::new();
        put_u32(&mut b, 2);
        for _ in 0..2 {
            put_bytes(&mut b, b"f");
            put_bytes(&mut b, b"v");
        }
        assert!(load(&mut Reader(&b)).is_none());
    }
}
