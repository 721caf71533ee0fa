//! Set values, in one of three encodings chosen by content as Redis chooses its own, and
//! never given up for a smaller one when members leave (Redis neither):
//!
//! - **ints**: sorted integers packed at the width the widest needs (2, 4 or 8 bytes), while
//!   every member is an integer in Redis's canonical form (`parse_i64`) and there are at
//!   most [`SET_INTSET_ENTRIES_MAX`]: Redis's intset. OBJECT ENCODING says `intset`.
//! - **pack**: up to [`SET_PACK_ENTRIES_MAX`] members of at most
//!   [`SET_PACK_MEMBER_BYTES_MAX`] bytes in one buffer, each behind its length byte, searched
//!   linearly (a listpack in spirit). Redis 7.0 keeps such sets in a hash table and says
//!   `hashtable`, and so do we: the encoding is how the bytes are kept, not what clients see.
//! - **table**: a hash table for everything larger ([`Table`]).
//!
//! Memory: [`Set::cost`] is O(1), computed from the capacities of the set's few heap blocks
//! (an allocation's capacity is what it really holds), plus the object's slot in the store.
//! A large set costs its slots (12 bytes each, at a load between 3/8 and 3/4) and its
//! members' bytes each behind a length byte: about 40 bytes per short member, where
//! redis-server spends about 60 (dict entry, sds, bucket).

use std::hash::BuildHasher;
use std::sync::OnceLock;

use hashbrown::DefaultHashBuilder;

use super::{put_bytes, put_u32, Reader};
use crate::cache::evict::xorshift64;
use crate::limits::{SET_INTSET_ENTRIES_MAX, SET_PACK_ENTRIES_MAX, SET_PACK_MEMBER_BYTES_MAX};
use crate::proto::resp::parse::parse_i64;

/// What the allocator spends on one heap block besides the bytes asked for (its header and
/// rounding, on average).
const ALLOC_OVERHEAD_BYTES: usize = 16;

/// A member as a set holds it: an integer of the ints encoding, or bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Member<'a> {
    Int(i64),
    Bytes(&'a [u8]),
}

impl Member<'_> {
    /// Call `f` with the member's bytes (an integer as its decimal text).
    pub fn with_bytes<R>(self, f: impl FnOnce(&[u8]) -> R) -> R {
        match self {
            Member::Int(v) => f(itoa::Buffer::new().format(v).as_bytes()),
            Member::Bytes(b) => f(b),
        }
    }

    pub fn to_vec(self) -> Vec<u8> {
        self.with_bytes(|b| b.to_vec())
    }
}

#[derive(Debug, Clone)]
pub struct Set(Repr);

#[derive(Debug, Clone)]
enum Repr {
    Ints(Ints),
    Pack(Pack),
    Table(Box<Table>),
}

impl Default for Set {
    /// An empty set starts as ints, as Redis's `setTypeCreate` of an integer (a first member
    /// that is not one converts it at once, exactly as Redis would have created a table).
    fn default() -> Set {
        Set(Repr::Ints(Ints::default()))
    }
}

/// Whether a pack may hold `count` members with one of `member_len` bytes among them.
fn fits_pack(count: usize, member_len: usize) -> bool {
    count <= SET_PACK_ENTRIES_MAX && member_len <= SET_PACK_MEMBER_BYTES_MAX
}

/// Tags of the inline form.
const INLINE_INTS: u8 = 0;
const INLINE_PACK: u8 = 1;

fn heap(bytes: usize) -> usize {
    if bytes == 0 {
        0
    } else {
        bytes + ALLOC_OVERHEAD_BYTES
    }
}

impl Set {
    pub fn len(&self) -> usize {
        match &self.0 {
            Repr::Ints(i) => i.len(),
            Repr::Pack(p) => p.count as usize,
            Repr::Table(t) => t.len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes charged for the set: its heap blocks and its slot in the store. O(1).
    pub fn cost(&self) -> usize {
        let blocks = match &self.0 {
            Repr::Ints(i) => heap(i.bytes.capacity()),
            Repr::Pack(p) => heap(p.bytes.capacity()),
            Repr::Table(t) => {
                heap(std::mem::size_of::<Table>())
                    + heap(t.slots.capacity() * std::mem::size_of::<Slot>())
                    + heap(t.arena.capacity())
            }
        };
        std::mem::size_of::<super::Obj>() + blocks
    }

    /// Bytes of the inline form ([`super::Obj::inline_len`]): the ints and pack encodings
    /// have one, a table has none.
    pub fn inline_len(&self) -> Option<usize> {
        match &self.0 {
            Repr::Ints(i) => Some(2 + i.bytes.len()),
            Repr::Pack(p) => Some(5 + p.bytes.len()),
            Repr::Table(_) => None,
        }
    }

    /// Append the inline form: a tag (0 ints, 1 pack), the width or the member count, then
    /// the encoding's bytes as they are.
    pub fn write_inline(&self, out: &mut Vec<u8>) {
        match &self.0 {
            Repr::Ints(i) => {
                out.extend_from_slice(&[INLINE_INTS, i.width]);
                out.extend_from_slice(&i.bytes);
            }
            Repr::Pack(p) => {
                out.push(INLINE_PACK);
                put_u32(out, p.count);
                out.extend_from_slice(&p.bytes);
            }
            Repr::Table(_) => {}
        }
    }

    /// Read back what [`Set::write_inline`] wrote.
    pub fn from_inline(b: &[u8]) -> Option<Set> {
        match b.split_first()? {
            (&INLINE_INTS, rest) => {
                let (&width, bytes) = rest.split_first()?;
                Some(Set(Repr::Ints(Ints {
                    width,
                    bytes: bytes.to_vec(),
                })))
            }
            (&INLINE_PACK, rest) => {
                let (count, bytes) = rest.split_first_chunk::<4>()?;
                Some(Set(Repr::Pack(Pack {
                    count: u32::from_le_bytes(*count),
                    bytes: bytes.to_vec(),
                })))
            }
            _ => None,
        }
    }

    /// OBJECT ENCODING's answer, as Redis 7.0 gives it.
    pub fn encoding(&self) -> &'static str {
        match &self.0 {
            Repr::Ints(_) => "intset",
            Repr::Pack(_) | Repr::Table(_) => "hashtable",
        }
    }

    pub fn contains(&self, m: &[u8]) -> bool {
        match &self.0 {
            Repr::Ints(i) => parse_i64(m).is_some_and(|v| i.search(v).is_ok()),
            Repr::Pack(p) => p.find(m).is_some(),
            Repr::Table(t) => t.find(t.hash(m), m).is_ok(),
        }
    }

    /// Membership of a member of another set (an integer of an ints set is compared as
    /// an integer where this set is ints too).
    pub fn contains_member(&self, m: Member) -> bool {
        match (m, &self.0) {
            (Member::Int(v), Repr::Ints(i)) => i.search(v).is_ok(),
            (Member::Bytes(b), _) => self.contains(b),
            (m, _) => m.with_bytes(|b| self.contains(b)),
        }
    }

    /// Add `m`; false when it was a member already.
    pub fn insert(&mut self, m: &[u8]) -> bool {
        match &mut self.0 {
            Repr::Ints(i) => match parse_i64(m) {
                Some(v) if i.search(v).is_ok() => false,
                Some(v) if i.len() < SET_INTSET_ENTRIES_MAX => i.insert(v),
                _ => {
                    self.leave_ints(m.len());
                    self.insert(m)
                }
            },
            Repr::Pack(p) => {
                if p.find(m).is_some() {
                    return false;
                }
                if fits_pack(p.count as usize + 1, m.len()) {
                    p.push(m);
                    return true;
                }
                self.become_table(1);
                self.insert(m)
            }
            Repr::Table(t) => t.insert(m),
        }
    }

    /// Add a member of another set (an integer goes into ints without being printed).
    pub fn insert_member(&mut self, m: Member) -> bool {
        match (m, &mut self.0) {
            (Member::Int(v), Repr::Ints(i)) if i.len() < SET_INTSET_ENTRIES_MAX => i.insert(v),
            (Member::Bytes(b), _) => self.insert(b),
            (m, _) => m.with_bytes(|b| self.insert(b)),
        }
    }

    /// Remove `m`; false when it was not a member.
    pub fn remove(&mut self, m: &[u8]) -> bool {
        match &mut self.0 {
            Repr::Ints(i) => match parse_i64(m).map(|v| i.search(v)) {
                Some(Ok(pos)) => {
                    i.remove_at(pos);
                    true
                }
                _ => false,
            },
            Repr::Pack(p) => match p.find(m) {
                Some(off) => {
                    p.remove_at_offset(off);
                    true
                }
                None => false,
            },
            Repr::Table(t) => t.remove(m),
        }
    }

    /// Remove a member of another set.
    pub fn remove_member(&mut self, m: Member) -> bool {
        match (m, &mut self.0) {
            (Member::Int(v), Repr::Ints(i)) => match i.search(v) {
                Ok(pos) => {
                    i.remove_at(pos);
                    true
                }
                Err(_) => false,
            },
            (Member::Bytes(b), _) => self.remove(b),
            (m, _) => m.with_bytes(|b| self.remove(b)),
        }
    }

    /// Ints cannot hold a member of `len` bytes that is not an integer, or one more integer:
    /// move to a pack when everything fits one, else to a table.
    fn leave_ints(&mut self, len: usize) {
        let Repr::Ints(ints) = &self.0 else {
            return;
        };
        let n = ints.len();
        if fits_pack(n + 1, len) {
            let mut p = Pack::default();
            p.bytes.reserve_exact(n * 4 + len + 1);
            for v in ints.iter() {
                p.push(itoa::Buffer::new().format(v).as_bytes());
            }
            self.0 = Repr::Pack(p);
        } else {
            self.become_table(1);
        }
    }

    /// Move every member into a table with room for `more` members besides.
    fn become_table(&mut self, more: usize) {
        let n = self.len();
        let mut t = Table::with_capacity(n + more);
        for m in self.iter() {
            m.with_bytes(|b| t.insert(b));
        }
        self.0 = Repr::Table(Box::new(t));
    }

    pub fn iter(&self) -> Iter<'_> {
        Iter {
            repr: &self.0,
            pos: 0,
        }
    }

    /// A uniformly random position of a member (for [`Set::at`] and [`Set::remove_at`]).
    /// The set must not be empty.
    pub fn random_pos(&self, rng: &mut u64) -> usize {
        match &self.0 {
            Repr::Ints(_) | Repr::Pack(_) => (xorshift64(rng) % self.len().max(1) as u64) as usize,
            Repr::Table(t) => t.random_pos(rng),
        }
    }

    /// The member at a position [`Set::random_pos`] gave.
    pub fn at(&self, pos: usize) -> Member<'_> {
        match &self.0 {
            Repr::Ints(i) => Member::Int(i.get(pos)),
            Repr::Pack(p) => Member::Bytes(p.member_at_offset(p.offset_of(pos))),
            Repr::Table(t) => Member::Bytes(t.member(t.slots[pos])),
        }
    }

    /// Remove the member at a position [`Set::random_pos`] gave.
    pub fn remove_at(&mut self, pos: usize) {
        match &mut self.0 {
            Repr::Ints(i) => i.remove_at(pos),
            Repr::Pack(p) => p.remove_at_offset(p.offset_of(pos)),
            Repr::Table(t) => t.remove_at(pos),
        }
    }

    /// Remove a uniformly random member, handing it to `f` first. The set must not be empty.
    pub fn pop_random(&mut self, rng: &mut u64, f: impl FnOnce(Member)) {
        let pos = self.random_pos(rng);
        f(self.at(pos));
        self.remove_at(pos);
    }

    /// Hand `count` distinct random members (`count` < len) to `f`. Like Redis: when
    /// `count` is a large part of the set, a partial shuffle of all members; otherwise random
    /// picks until enough distinct ones.
    pub fn sample_distinct<'a>(
        &'a self,
        count: usize,
        rng: &mut u64,
        mut f: impl FnMut(Member<'a>),
    ) {
        let n = self.len();
        let count = count.min(n);
        if count.saturating_mul(3) > n {
            let mut all: Vec<Member> = self.iter().collect();
            for i in 0..count {
                let j = i + (xorshift64(rng) % (n - i) as u64) as usize;
                all.swap(i, j);
                f(all[i]);
            }
        } else {
            let mut seen = hashbrown::HashSet::with_capacity(count);
            while seen.len() < count {
                let pos = self.random_pos(rng);
                if seen.insert(pos) {
                    f(self.at(pos));
                }
            }
        }
    }

    /// SSCAN: hand members from `cursor` on to `f`, about `count` of them, and return the
    /// cursor that continues (0 when done). Ints and packs are small and answer whole (cursor
    /// 0), as Redis's intsets and listpacks do. A table's cursor is a hash value: see
    /// [`Table`] for why every member present for the whole scan is returned exactly once.
    pub fn scan<'a>(&'a self, cursor: u64, count: usize, mut f: impl FnMut(Member<'a>)) -> u64 {
        match &self.0 {
            Repr::Table(t) => t.scan(cursor, count, |b| f(Member::Bytes(b))),
            _ => {
                self.iter().for_each(f);
                0
            }
        }
    }

    /// The byte form: a tag (0: ints, 1: strings), the member count, the members (ints as
    /// i64 LE, strings as length and bytes). The encoding survives the trip, as it does when
    /// Redis moves a key.
    pub fn dump(&self, out: &mut Vec<u8>) {
        match &self.0 {
            Repr::Ints(i) => {
                put_u32(out, 0);
                put_u32(out, i.len() as u32);
                for v in i.iter() {
                    out.extend_from_slice(&v.to_le_bytes());
                }
            }
            _ => {
                put_u32(out, 1);
                put_u32(out, self.len() as u32);
                for m in self.iter() {
                    m.with_bytes(|b| put_bytes(out, b));
                }
            }
        }
    }

    /// Read what [`Set::dump`] wrote; None for anything else (unsorted or repeated integers,
    /// repeated strings, too many integers for ints, short input).
    pub fn load(r: &mut Reader) -> Option<Set> {
        match r.u32()? {
            0 => {
                let n = r.count(8)?;
                if n > SET_INTSET_ENTRIES_MAX {
                    return None;
                }
                let mut ints = Ints::default();
                let mut last = None;
                for _ in 0..n {
                    let v = r.u64()? as i64;
                    if last.is_some_and(|l| l >= v) {
                        return None;
                    }
                    last = Some(v);
                    ints.insert(v);
                }
                Some(Set(Repr::Ints(ints)))
            }
            1 => {
                let n = r.count(4)?;
                let mut set = if n <= SET_PACK_ENTRIES_MAX {
                    Set(Repr::Pack(Pack::default()))
                } else {
                    Set(Repr::Table(Box::new(Table::with_capacity(n))))
                };
                for _ in 0..n {
                    if !set.insert(r.bytes()?) {
                        return None;
                    }
                }
                Some(set)
            }
            _ => None,
        }
    }

    /// Check the encoding's invariants (tests).
    #[cfg(test)]
    pub fn check(&self) {
        match &self.0 {
            Repr::Ints(i) => {
                assert!(i.len() <= SET_INTSET_ENTRIES_MAX);
                let v: Vec<i64> = i.iter().collect();
                assert!(v.windows(2).all(|w| w[0] < w[1]), "ints sorted");
                assert!(v.iter().all(|&x| width_of(x) <= i.w()));
            }
            Repr::Pack(p) => {
                let n = p.iter().count();
                assert_eq!(n, p.count as usize);
                assert!(n <= SET_PACK_ENTRIES_MAX);
            }
            Repr::Table(t) => t.check(),
        }
    }
}

/// Members of a set, in its order (ints ascending; a table by hash).
pub struct Iter<'a> {
    repr: &'a Repr,
    pos: usize,
}

impl<'a> Iterator for Iter<'a> {
    type Item = Member<'a>;

    fn next(&mut self) -> Option<Member<'a>> {
        match self.repr {
            Repr::Ints(i) => {
                let v = (self.pos < i.len()).then(|| i.get(self.pos))?;
                self.pos += 1;
                Some(Member::Int(v))
            }
            Repr::Pack(p) => {
                // `pos` is a byte offset into the pack.
                let m = p.bytes.get(self.pos..).and_then(pack_next)?;
                self.pos += 1 + m.len();
                Some(Member::Bytes(m))
            }
            Repr::Table(t) => {
                let (i, s) = t
                    .slots
                    .iter()
                    .enumerate()
                    .skip(self.pos)
                    .find(|(_, s)| !s.is_empty())?;
                self.pos = i + 1;
                Some(Member::Bytes(t.member(*s)))
            }
        }
    }
}

// ----- ints -------------------------------------------------------------------------------

/// Sorted distinct integers, each `w()` bytes little-endian.
#[derive(Debug, Clone, Default)]
struct Ints {
    /// 2, 4 or 8 (0 in a fresh empty set, read as 2).
    width: u8,
    bytes: Vec<u8>,
}

/// The narrowest width that holds `v`.
fn width_of(v: i64) -> usize {
    if i64::from(v as i16) == v {
        2
    } else if i64::from(v as i32) == v {
        4
    } else {
        8
    }
}

/// Sign-extend a little-endian integer of 1 to 8 bytes.
fn decode_int(b: &[u8]) -> i64 {
    let mut full = [0u8; 8];
    full[..b.len()].copy_from_slice(b);
    let shift = 64 - 8 * b.len() as u32;
    (i64::from_le_bytes(full) << shift) >> shift
}

impl Ints {
    fn w(&self) -> usize {
        (self.width as usize).max(2)
    }

    fn len(&self) -> usize {
        self.bytes.len() / self.w()
    }

    fn get(&self, i: usize) -> i64 {
        let w = self.w();
        decode_int(&self.bytes[i * w..(i + 1) * w])
    }

    fn iter(&self) -> impl Iterator<Item = i64> + '_ {
        self.bytes.chunks_exact(self.w()).map(decode_int)
    }

    fn search(&self, v: i64) -> Result<usize, usize> {
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.get(mid).cmp(&v) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Ok(mid),
            }
        }
        Err(lo)
    }

    fn insert(&mut self, v: i64) -> bool {
        let Err(pos) = self.search(v) else {
            return false;
        };
        if width_of(v) > self.w() {
            let w = width_of(v);
            let mut bytes = Vec::with_capacity((self.len() + 1) * w);
            for x in self.iter() {
                bytes.extend_from_slice(&x.to_le_bytes()[..w]);
            }
            self.bytes = bytes;
            self.width = w as u8;
        }
        let w = self.w();
        if self.bytes.capacity() - self.bytes.len() < w {
            // Little slack: small sets are many, and each block is charged as it is.
            self.bytes
                .reserve_exact(w.max(self.bytes.len() / 8 / w * w));
        }
        let at = pos * w;
        self.bytes
            .splice(at..at, v.to_le_bytes()[..w].iter().copied());
        true
    }

    fn remove_at(&mut self, pos: usize) {
        let w = self.w();
        self.bytes.drain(pos * w..(pos + 1) * w);
        shrink(&mut self.bytes);
    }
}

/// Give a small set's block back when it is mostly empty.
fn shrink(v: &mut Vec<u8>) {
    if v.capacity() > 2 * v.len() + 16 {
        v.shrink_to(v.len() + v.len() / 8);
    }
}

// ----- pack -------------------------------------------------------------------------------

/// Members in one buffer, each as a length byte and its bytes, in insertion order.
#[derive(Debug, Clone, Default)]
struct Pack {
    count: u32,
    bytes: Vec<u8>,
}

/// The member at the front of `b` (a length byte, then the bytes).
fn pack_next(b: &[u8]) -> Option<&[u8]> {
    let (&n, rest) = b.split_first()?;
    rest.get(..n as usize)
}

impl Pack {
    #[cfg(test)]
    fn iter(&self) -> impl Iterator<Item = &[u8]> + '_ {
        let mut off = 0;
        std::iter::from_fn(move || {
            let m = pack_next(self.bytes.get(off..)?)?;
            off += 1 + m.len();
            Some(m)
        })
    }

    /// The byte offset of `m`, if it is a member.
    fn find(&self, m: &[u8]) -> Option<usize> {
        let mut off = 0;
        while let Some(x) = self.bytes.get(off..).and_then(pack_next) {
            if x == m {
                return Some(off);
            }
            off += 1 + x.len();
        }
        None
    }

    /// The byte offset of the `i`-th member.
    fn offset_of(&self, i: usize) -> usize {
        let mut off = 0;
        for _ in 0..i {
            off += 1 + self.bytes[off] as usize;
        }
        off
    }

    fn member_at_offset(&self, off: usize) -> &[u8] {
        self.bytes
            .get(off..)
            .and_then(pack_next)
            .unwrap_or_default()
    }

    /// Append a member (the caller checked it is new and fits).
    fn push(&mut self, m: &[u8]) {
        debug_assert!(m.len() <= SET_PACK_MEMBER_BYTES_MAX);
        let need = 1 + m.len();
        if self.bytes.capacity() - self.bytes.len() < need {
            self.bytes.reserve_exact(need.max(self.bytes.len() / 8));
        }
        self.bytes.push(m.len() as u8);
        self.bytes.extend_from_slice(m);
        self.count += 1;
    }

    fn remove_at_offset(&mut self, off: usize) {
        let n = self.bytes[off] as usize;
        self.bytes.drain(off..off + 1 + n);
        self.count -= 1;
        shrink(&mut self.bytes);
    }
}

// ----- table ------------------------------------------------------------------------------

/// One slot of a [`Table`]: a member's hash and the offset of its bytes in the arena.
/// Three u32 rather than a u64 offset, so a slot is 12 bytes and not 16.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Slot {
    hash: u32,
    lo: u32,
    hi: u32,
}

const EMPTY: Slot = Slot {
    hash: 0,
    lo: u32::MAX,
    hi: u32::MAX,
};

impl Slot {
    fn new(hash: u32, off: usize) -> Slot {
        let off = off as u64;
        Slot {
            hash,
            lo: off as u32,
            hi: (off >> 32) as u32,
        }
    }

    fn is_empty(self) -> bool {
        self == EMPTY
    }

    fn off(self) -> usize {
        ((self.hi as u64) << 32 | self.lo as u64) as usize
    }
}

/// Smallest table: 16 buckets.
const TABLE_MIN_BITS: u32 = 4;
/// Random slots tried before [`Table::random_pos`] settles for the next member after one
/// (never needed at the load the table keeps, bar a one in ten million chance).
const RANDOM_TRIES: usize = 256;

/// Members a table of `1 << bits` buckets may hold: 3/4 of them. Linear probing stays
/// short there (about 8 slots moved per insert at the worst), and a grown table is 3/8 full.
fn capacity_of(bits: u32) -> usize {
    (1usize << bits) / 4 * 3
}

/// The fewest bits whose table holds `n` members.
fn bits_for(n: usize) -> u32 {
    let mut bits = TABLE_MIN_BITS;
    while capacity_of(bits) < n {
        bits += 1;
    }
    bits
}

/// Tail slots reserved past the buckets: runs near the end spill there instead of wrapping.
fn tail_reserve(buckets: usize) -> usize {
    16 + buckets / 64
}

fn put_len(out: &mut Vec<u8>, mut n: usize) {
    while n >= 0x80 {
        out.push(n as u8 | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// A length written by `put_len` at the front of `b`: (length, header bytes).
fn read_len(b: &[u8]) -> (usize, usize) {
    let mut n = 0usize;
    for (i, &byte) in b.iter().enumerate() {
        n |= ((byte & 0x7f) as usize) << (7 * i);
        if byte < 0x80 {
            return (n, i + 1);
        }
    }
    (n, b.len())
}

fn len_header(n: usize) -> usize {
    (usize::BITS - (n | 1).leading_zeros()).div_ceil(7) as usize
}

/// A hash table whose slots stay sorted by hash: linear probing without wrap-around, where
/// each member sits at or after its home slot (the top `bits` bits of its 32-bit hash) with
/// no empty slot in between, and members appear in hash order (an insert shifts the run
/// after its place one slot on; a removal shifts the run back: Robin Hood order). Members'
/// bytes live in one arena, each behind its length; removed bytes are reclaimed by
/// compacting when they are half the arena.
///
/// Sorted by hash is what makes SSCAN exact: the cursor is a hash value, and a call returns
/// every member whose hash lies in `[cursor, next)`. Growing, shrinking, compacting and
/// travelling between shards never change a member's hash ([`hash_of`]), so every member
/// present for the whole scan is returned, and exactly once.
#[derive(Debug, Clone)]
struct Table {
    /// `1 << bits` buckets, then the tail runs spill into.
    slots: Vec<Slot>,
    bits: u32,
    len: usize,
    arena: Vec<u8>,
    /// Arena bytes of removed members.
    garbage: usize,
}

/// A member's hash: one hash function for every table of the process (randomly seeded at
/// start), so a set that travels between shards (`Obj::dump`, `Obj::load`) comes back in the
/// same order: its byte form is unchanged when its members are, and SSCAN cursors stay
/// valid across the trip.
fn hash_of(m: &[u8]) -> u32 {
    static HASHER: OnceLock<DefaultHashBuilder> = OnceLock::new();
    (HASHER.get_or_init(DefaultHashBuilder::default).hash_one(m) >> 32) as u32
}

impl Table {
    fn with_capacity(n: usize) -> Table {
        let bits = bits_for(n);
        Table {
            slots: empty_slots(bits),
            bits,
            len: 0,
            arena: Vec::new(),
            garbage: 0,
        }
    }

    fn hash(&self, m: &[u8]) -> u32 {
        hash_of(m)
    }

    fn home(&self, hash: u32) -> usize {
        (hash >> (32 - self.bits)) as usize
    }

    fn member(&self, s: Slot) -> &[u8] {
        let off = s.off();
        let (n, h) = read_len(&self.arena[off..]);
        &self.arena[off + h..off + h + n]
    }

    /// `Ok(slot)` of `m`, or `Err(slot)` where it belongs.
    fn find(&self, hash: u32, m: &[u8]) -> Result<usize, usize> {
        let mut i = self.home(hash);
        while let Some(&s) = self.slots.get(i) {
            if s.is_empty() || s.hash > hash {
                return Err(i);
            }
            if s.hash == hash && self.member(s) == m {
                return Ok(i);
            }
            i += 1;
        }
        Err(i)
    }

    fn insert(&mut self, m: &[u8]) -> bool {
        let hash = self.hash(m);
        let Err(mut pos) = self.find(hash, m) else {
            return false;
        };
        if self.len >= capacity_of(self.bits) {
            self.rebuild(self.bits + 1);
            pos = match self.find(hash, m) {
                Err(p) => p,
                Ok(_) => return false,
            };
        }
        let off = self.append(m);
        self.place(pos, Slot::new(hash, off));
        self.len += 1;
        true
    }

    fn remove(&mut self, m: &[u8]) -> bool {
        match self.find(self.hash(m), m) {
            Ok(pos) => {
                self.remove_at(pos);
                true
            }
            Err(_) => false,
        }
    }

    /// Put `s` at `pos`, shifting the run from there one slot on.
    fn place(&mut self, pos: usize, s: Slot) {
        let end = self.slots[pos.min(self.slots.len())..]
            .iter()
            .position(|s| s.is_empty())
            .map_or(self.slots.len(), |e| pos + e);
        if end == self.slots.len() {
            self.push_slot(EMPTY);
        }
        self.slots.copy_within(pos..end, pos + 1);
        self.slots[pos] = s;
    }

    /// Append a tail slot without letting the vector double.
    fn push_slot(&mut self, s: Slot) {
        if self.slots.len() == self.slots.capacity() {
            self.slots.reserve_exact(tail_reserve(self.slots.len()));
        }
        self.slots.push(s);
    }

    fn remove_at(&mut self, pos: usize) {
        let s = self.slots[pos];
        let n = self.member(s).len();
        self.garbage += len_header(n) + n;
        // Backward shift: members after it move back while that keeps them at or after
        // their homes.
        let mut j = pos;
        while let Some(&next) = self.slots.get(j + 1) {
            if next.is_empty() || self.home(next.hash) > j {
                break;
            }
            self.slots[j] = next;
            j += 1;
        }
        self.slots[j] = EMPTY;
        let buckets = 1usize << self.bits;
        while self.slots.len() > buckets && self.slots.last().is_some_and(|s| s.is_empty()) {
            self.slots.pop();
        }
        self.len -= 1;
        if self.bits > TABLE_MIN_BITS && self.len < (1usize << self.bits) / 8 {
            self.rebuild(bits_for(self.len * 2));
        }
        if self.garbage * 2 > self.arena.len() {
            self.compact();
        }
    }

    /// Re-place every member in a table of `1 << bits` buckets (order is kept: it is the
    /// hash order, whatever the size).
    fn rebuild(&mut self, bits: u32) {
        let old = std::mem::replace(&mut self.slots, empty_slots(bits));
        self.bits = bits;
        let mut next = 0;
        for s in old.into_iter().filter(|s| !s.is_empty()) {
            let p = self.home(s.hash).max(next);
            if p == self.slots.len() {
                self.push_slot(s);
            } else {
                self.slots[p] = s;
            }
            next = p + 1;
        }
    }

    /// Copy the live members into a fresh arena.
    fn compact(&mut self) {
        let mut arena = Vec::with_capacity(self.arena.len() - self.garbage);
        for s in self.slots.iter_mut().filter(|s| !s.is_empty()) {
            let off = s.off();
            let (n, h) = read_len(&self.arena[off..]);
            *s = Slot::new(s.hash, arena.len());
            arena.extend_from_slice(&self.arena[off..off + h + n]);
        }
        self.arena = arena;
        self.garbage = 0;
    }

    /// Append a member's bytes to the arena; its offset. The arena grows by half, not
    /// double: it is most of a large set's memory.
    fn append(&mut self, m: &[u8]) -> usize {
        let need = len_header(m.len()) + m.len();
        if self.arena.capacity() - self.arena.len() < need {
            self.arena
                .reserve_exact(need.max(self.arena.capacity() / 2));
        }
        let off = self.arena.len();
        put_len(&mut self.arena, m.len());
        self.arena.extend_from_slice(m);
        off
    }

    /// A uniformly random occupied slot: random slots until one is occupied (the table is
    /// kept at least 1/8 full, so a few tries).
    fn random_pos(&self, rng: &mut u64) -> usize {
        let n = self.slots.len() as u64;
        for _ in 0..RANDOM_TRIES {
            let i = (xorshift64(rng) % n) as usize;
            if !self.slots[i].is_empty() {
                return i;
            }
        }
        let start = (xorshift64(rng) % n) as usize;
        (start..self.slots.len())
            .chain(0..start)
            .find(|&i| !self.slots[i].is_empty())
            .unwrap_or(0)
    }

    fn scan<'a>(&'a self, cursor: u64, count: usize, mut f: impl FnMut(&'a [u8])) -> u64 {
        let Ok(from) = u32::try_from(cursor) else {
            return 0;
        };
        let count = count.max(1);
        let mut emitted = 0;
        let mut last = None;
        for &s in &self.slots[self.home(from)..] {
            if s.is_empty() || s.hash < from {
                continue;
            }
            // Whole hash values only: the next cursor must not split members that share one.
            if emitted >= count && last != Some(s.hash) {
                return s.hash as u64;
            }
            f(self.member(s));
            emitted += 1;
            last = Some(s.hash);
        }
        0
    }

    #[cfg(test)]
    fn check(&self) {
        assert!(self.bits >= TABLE_MIN_BITS);
        assert!(self.slots.len() >= 1 << self.bits);
        let mut n = 0;
        let mut prev_hash = 0;
        let mut live = 0;
        for (i, &s) in self.slots.iter().enumerate() {
            if s.is_empty() {
                continue;
            }
            n += 1;
            assert!(s.hash >= prev_hash, "sorted by hash");
            prev_hash = s.hash;
            let home = self.home(s.hash);
            assert!(home <= i, "at or after home");
            assert!(
                self.slots[home..i].iter().all(|s| !s.is_empty()),
                "no gap between home and slot"
            );
            let m = self.member(s);
            assert_eq!(self.hash(m), s.hash);
            live += len_header(m.len()) + m.len();
        }
        assert_eq!(n, self.len);
        assert_eq!(live + self.garbage, self.arena.len());
    }
}

fn empty_slots(bits: u32) -> Vec<Slot> {
    let buckets = 1usize << bits;
    let mut v = Vec::with_capacity(buckets + tail_reserve(buckets));
    v.resize(buckets, EMPTY);
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::types::Obj;

    fn set_of(members: &[&str]) -> Set {
        let mut s = Set::default();
        for m in members {
            s.insert(m.as_bytes());
        }
        s
    }

    fn sorted(s: &Set) -> Vec<Vec<u8>> {
        let mut v: Vec<Vec<u8>> = s.iter().map(Member::to_vec).collect();
        v.sort();
        v
    }

    #[test]
    fn ints_pack_and_widths() {
        let mut s = Set::default();
        assert!(s.insert(b"5"));
        assert!(!s.insert(b"5"));
        assert!(s.insert(b"-3"));
        assert_eq!(s.encoding(), "intset");
        // Widening keeps every member and the order.
        assert!(s.insert(b"100000"));
        assert!(s.insert(b"-9223372036854775808"));
        assert!(s.contains(b"100000") && s.contains(b"-3") && !s.contains(b"4"));
        assert_eq!(
            s.iter().collect::<Vec<_>>(),
            [
                Member::Int(i64::MIN),
                Member::Int(-3),
                Member::Int(5),
                Member::Int(100000)
            ]
        );
        s.check();
        // Not canonical integers: a table of strings from then on, even when removed.
        assert!(!s.contains(b"05") && !s.contains(b"+5") && !s.contains(b"-0"));
        assert!(s.insert(b"05"));
        assert_eq!(s.encoding(), "hashtable");
        assert!(s.contains(b"5") && s.contains(b"05"));
        assert!(s.remove(b"05"));
        assert_eq!(s.encoding(), "hashtable");
        assert_eq!(s.len(), 4);
        s.check();
    }

    #[test]
    fn conversions_follow_redis_thresholds() {
        let mut s = Set::default();
        for i in 0..SET_INTSET_ENTRIES_MAX {
            assert!(s.insert(i.to_string().as_bytes()));
        }
        assert_eq!(s.encoding(), "intset");
        assert!(!s.insert(b"7"));
        assert_eq!(s.encoding(), "intset");
        assert!(s.insert(b"512"));
        assert_eq!(s.encoding(), "hashtable");
        assert!(matches!(s.0, Repr::Table(_)));
        assert_eq!(s.len(), 513);
        s.check();

        let mut p = set_of(&["a", "b"]);
        assert!(matches!(p.0, Repr::Pack(_)));
        for i in 0..SET_PACK_ENTRIES_MAX - 2 {
            p.insert(format!("m{i}").as_bytes());
        }
        assert!(matches!(p.0, Repr::Pack(_)));
        p.insert(b"one more");
        assert!(matches!(p.0, Repr::Table(_)));
        assert_eq!(p.len(), SET_PACK_ENTRIES_MAX + 1);
        p.check();

        let mut long = set_of(&["a"]);
        long.insert(&[b'x'; SET_PACK_MEMBER_BYTES_MAX + 1]);
        assert!(matches!(long.0, Repr::Table(_)));
        assert!(long.contains(b"a"));
        long.check();
    }

    #[test]
    fn table_grows_shrinks_and_compacts_keeping_its_invariants() {
        let mut s = Set::default();
        let n = 20_000;
        for i in 0..n {
            assert!(s.insert(format!("member:{i}").as_bytes()));
            if i % 997 == 0 {
                s.check();
            }
        }
        s.check();
        assert_eq!(s.len(), n);
        for i in 0..n {
            assert!(s.contains(format!("member:{i}").as_bytes()));
        }
        assert!(!s.contains(b"member:x"));
        for i in (0..n).filter(|i| i % 10 != 0) {
            assert!(s.remove(format!("member:{i}").as_bytes()));
            if i % 1001 == 0 {
                s.check();
            }
        }
        s.check();
        assert_eq!(s.len(), n / 10);
        let Repr::Table(t) = &s.0 else {
            panic!("still a table")
        };
        assert!(t.bits <= 13, "shrank from 15 bits: {} bits", t.bits);
        assert!(t.garbage * 2 <= t.arena.len());
        for i in 0..n {
            assert_eq!(s.contains(format!("member:{i}").as_bytes()), i % 10 == 0);
        }
    }

    #[test]
    fn cost_follows_real_blocks() {
        let empty = Set::default().cost();
        let mut s = Set::default();
        for i in 0..100_000 {
            s.insert(format!("element:{i}").as_bytes());
        }
        let per_member = (s.cost() - empty) / 100_000;
        // ~12-byte slots at 3/8..3/4 load, plus ~14 arena bytes with up to half slack.
        assert!(per_member < 60, "{per_member} bytes per member");
        let small = set_of(&["a", "bb", "ccc"]);
        assert!(small.cost() - empty < 64, "{}", small.cost());
    }

    #[test]
    fn dump_and_load_round_trip() {
        let mut big = Set::default();
        for i in 0..1000 {
            big.insert(format!("m{i}").as_bytes());
        }
        let cases = [
            Set::default(),
            set_of(&["1", "-70000", "9223372036854775807"]),
            set_of(&["a", "", "ccc"]),
            set_of(&["1", "a"]),
            big,
        ];
        for s in cases {
            let mut b = Vec::new();
            Obj::Set(s.clone()).dump(&mut b);
            let Some(Obj::Set(back)) = Obj::load(&b) else {
                panic!("load failed")
            };
            assert_eq!(sorted(&back), sorted(&s));
            assert_eq!(back.encoding(), s.encoding());
            back.check();
            // Every truncation is refused, never a panic.
            for cut in 0..b.len() {
                assert!(Obj::load(&b[..cut]).is_none());
            }
        }
        // A set that travels and comes back unchanged has the same byte form (a gathered
        // cross-shard command writes back only what changed), tables included.
        let mut t = Set::default();
        for i in 0..3000 {
            t.insert(format!("m{i}").as_bytes());
        }
        for i in 0..2500 {
            t.remove(format!("m{i}").as_bytes());
        }
        for s in [t, set_of(&["b", "a", "c"])] {
            let mut once = Vec::new();
            Obj::Set(s).dump(&mut once);
            let mut twice = Vec::new();
            Obj::load(&once).expect("loads").dump(&mut twice);
            assert_eq!(once, twice);
        }
        // A table of integer-looking strings stays a table.
        let mut s = set_of(&["1", "x"]);
        s.remove(b"x");
        let mut b = Vec::new();
        Obj::Set(s).dump(&mut b);
        assert_eq!(Obj::load(&b).map(|o| o.encoding()), Some("hashtable"));
    }

    #[test]
    fn load_refuses_malformed_forms() {
        let kind = crate::cache::entry::KIND_SET;
        let form = |tag: u32, n: u32, body: &[u8]| {
            let mut b = vec![kind];
            b.extend_from_slice(&tag.to_le_bytes());
            b.extend_from_slice(&n.to_le_bytes());
            b.extend_from_slice(body);
            b
        };
        // Unsorted and repeated integers.
        let mut body = Vec::new();
        body.extend_from_slice(&2i64.to_le_bytes());
        body.extend_from_slice(&1i64.to_le_bytes());
        assert!(Obj::load(&form(0, 2, &body)).is_none());
        // A count larger than the bytes could hold.
        assert!(Obj::load(&form(1, u32::MAX, b"")).is_none());
        // A repeated string.
        let mut body = Vec::new();
        put_bytes(&mut body, b"a");
        put_bytes(&mut body, b"a");
        assert!(Obj::load(&form(1, 2, &body)).is_none());
        // An unknown tag.
        assert!(Obj::load(&form(7, 0, b"")).is_none());
    }

    #[test]
    fn random_picks_are_uniform_in_every_encoding() {
        let ints: Vec<String> = (0..10).map(|i| i.to_string()).collect();
        let strs: Vec<String> = (0..10).map(|i| format!("s{i}")).collect();
        let mut table = Set::default();
        for i in 0..1000 {
            table.insert(format!("t{i}").as_bytes());
        }
        for i in 10..1000 {
            table.remove(format!("t{i}").as_bytes());
        }
        assert!(matches!(table.0, Repr::Table(_)));
        let ints = set_of(&ints.iter().map(|s| s.as_str()).collect::<Vec<_>>());
        let strs = set_of(&strs.iter().map(|s| s.as_str()).collect::<Vec<_>>());
        let mut rng = 0x9e3779b97f4a7c15u64;
        for s in [&ints, &strs, &table] {
            let mut hits = std::collections::HashMap::new();
            for _ in 0..10_000 {
                let p = s.random_pos(&mut rng);
                *hits.entry(s.at(p).to_vec()).or_insert(0u32) += 1;
            }
            assert_eq!(hits.len(), 10);
            // Chi-square with 9 degrees of freedom: 40 is a one in 100k failure.
            let chi: f64 = hits
                .values()
                .map(|&h| (h as f64 - 1000.0).powi(2) / 1000.0)
                .sum();
            assert!(chi < 40.0, "{} chi-square {chi}", s.encoding());
            let mut seen = Vec::new();
            s.sample_distinct(4, &mut rng, |m| seen.push(m.to_vec()));
            seen.sort();
            seen.dedup();
            assert_eq!(seen.len(), 4);
        }
    }

    #[test]
    fn scan_returns_every_member_present_throughout_once() {
        let mut s = Set::default();
        for i in 0..5000 {
            s.insert(format!("keep:{i}").as_bytes());
        }
        let mut got = Vec::new();
        let mut cursor = 0;
        let mut round = 0;
        loop {
            let mut batch = Vec::new();
            cursor = s.scan(cursor, 10, |m| batch.push(m.to_vec()));
            assert!(batch.len() <= 20);
            got.extend(batch);
            round += 1;
            // Churn between calls: grow past a resize, then shrink past another, compact.
            match round {
                50 => (0..20_000).for_each(|i| {
                    s.insert(format!("tmp:{i}").as_bytes());
                }),
                200 => (0..20_000).for_each(|i| {
                    s.remove(format!("tmp:{i}").as_bytes());
                }),
                _ => {}
            }
            if cursor == 0 {
                break;
            }
        }
        s.check();
        let keep: Vec<Vec<u8>> = got
            .iter()
            .filter(|m| m.starts_with(b"keep:"))
            .cloned()
            .collect();
        let mut unique = keep.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 5000, "every member present throughout");
        assert_eq!(keep.len(), 5000, "and each once");
    }
}
