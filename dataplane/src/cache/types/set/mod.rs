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

mod ints;
mod pack;
mod table;

use ints::*;
use pack::*;
use table::*;

#[cfg(test)]
mod tests;
