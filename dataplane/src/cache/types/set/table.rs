//! Large sets: a linear-probing table kept in hash order (exact SSCAN), members in one arena.

use super::*;

/// One slot of a [`Table`]: a member's hash and the offset of its bytes in the arena.
/// Three u32 rather than a u64 offset, so a slot is 12 bytes and not 16.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Slot {
    pub(super) hash: u32,
    pub(super) lo: u32,
    pub(super) hi: u32,
}

pub(super) const EMPTY: Slot = Slot {
    hash: 0,
    lo: u32::MAX,
    hi: u32::MAX,
};

impl Slot {
    pub(super) fn new(hash: u32, off: usize) -> Slot {
        let off = off as u64;
        Slot {
            hash,
            lo: off as u32,
            hi: (off >> 32) as u32,
        }
    }

    pub(super) fn is_empty(self) -> bool {
        self == EMPTY
    }

    pub(super) fn off(self) -> usize {
        ((self.hi as u64) << 32 | self.lo as u64) as usize
    }
}

/// Smallest table: 16 buckets.
pub(super) const TABLE_MIN_BITS: u32 = 4;
/// Random slots tried before [`Table::random_pos`] settles for the next member after one
/// (never needed at the load the table keeps, bar a one in ten million chance).
pub(super) const RANDOM_TRIES: usize = 256;

/// Members a table of `1 << bits` buckets may hold: 3/4 of them. Linear probing stays
/// short there (about 8 slots moved per insert at the worst), and a grown table is 3/8 full.
pub(super) fn capacity_of(bits: u32) -> usize {
    (1usize << bits) / 4 * 3
}

/// The fewest bits whose table holds `n` members.
pub(super) fn bits_for(n: usize) -> u32 {
    let mut bits = TABLE_MIN_BITS;
    while capacity_of(bits) < n {
        bits += 1;
    }
    bits
}

/// Tail slots reserved past the buckets: runs near the end spill there instead of wrapping.
pub(super) fn tail_reserve(buckets: usize) -> usize {
    16 + buckets / 64
}

pub(super) fn put_len(out: &mut Vec<u8>, mut n: usize) {
    while n >= 0x80 {
        out.push(n as u8 | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// A length written by `put_len` at the front of `b`: (length, header bytes).
pub(super) fn read_len(b: &[u8]) -> (usize, usize) {
    let mut n = 0usize;
    for (i, &byte) in b.iter().enumerate() {
        n |= ((byte & 0x7f) as usize) << (7 * i);
        if byte < 0x80 {
            return (n, i + 1);
        }
    }
    (n, b.len())
}

pub(super) fn len_header(n: usize) -> usize {
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
pub(super) struct Table {
    /// `1 << bits` buckets, then the tail runs spill into.
    pub(super) slots: Vec<Slot>,
    pub(super) bits: u32,
    pub(super) len: usize,
    pub(super) arena: Vec<u8>,
    /// Arena bytes of removed members.
    pub(super) garbage: usize,
}

/// A member's hash: one hash function for every table of the process (randomly seeded at
/// start), so a set that travels between shards (`Obj::dump`, `Obj::load`) comes back in the
/// same order: its byte form is unchanged when its members are, and SSCAN cursors stay
/// valid across the trip.
pub(super) fn hash_of(m: &[u8]) -> u32 {
    static HASHER: OnceLock<DefaultHashBuilder> = OnceLock::new();
    (HASHER.get_or_init(DefaultHashBuilder::default).hash_one(m) >> 32) as u32
}

impl Table {
    pub(super) fn with_capacity(n: usize) -> Table {
        let bits = bits_for(n);
        Table {
            slots: empty_slots(bits),
            bits,
            len: 0,
            arena: Vec::new(),
            garbage: 0,
        }
    }

    pub(super) fn hash(&self, m: &[u8]) -> u32 {
        hash_of(m)
    }

    pub(super) fn home(&self, hash: u32) -> usize {
        (hash >> (32 - self.bits)) as usize
    }

    pub(super) fn member(&self, s: Slot) -> &[u8] {
        let off = s.off();
        let (n, h) = read_len(&self.arena[off..]);
        &self.arena[off + h..off + h + n]
    }

    /// `Ok(slot)` of `m`, or `Err(slot)` where it belongs.
    pub(super) fn find(&self, hash: u32, m: &[u8]) -> Result<usize, usize> {
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

    pub(super) fn insert(&mut self, m: &[u8]) -> bool {
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

    pub(super) fn remove(&mut self, m: &[u8]) -> bool {
        match self.find(self.hash(m), m) {
            Ok(pos) => {
                self.remove_at(pos);
                true
            }
            Err(_) => false,
        }
    }

    /// Put `s` at `pos`, shifting the run from there one slot on.
    pub(super) fn place(&mut self, pos: usize, s: Slot) {
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
    pub(super) fn push_slot(&mut self, s: Slot) {
        if self.slots.len() == self.slots.capacity() {
            self.slots.reserve_exact(tail_reserve(self.slots.len()));
        }
        self.slots.push(s);
    }

    pub(super) fn remove_at(&mut self, pos: usize) {
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
    pub(super) fn rebuild(&mut self, bits: u32) {
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
    pub(super) fn compact(&mut self) {
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
    pub(super) fn append(&mut self, m: &[u8]) -> usize {
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
    pub(super) fn random_pos(&self, rng: &mut u64) -> usize {
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

    pub(super) fn scan<'a>(
        &'a self,
        cursor: u64,
        count: usize,
        mut f: impl FnMut(&'a [u8]),
    ) -> u64 {
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
    pub(super) fn check(&self) {
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

pub(super) fn empty_slots(bits: u32) -> Vec<Slot> {
    let buckets = 1usize << bits;
    let mut v = Vec::with_capacity(buckets + tail_reserve(buckets));
    v.resize(buckets, EMPTY);
    v
}
