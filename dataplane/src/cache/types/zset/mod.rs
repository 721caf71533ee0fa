//! Sorted-set values: members ordered by score, then by member bytes; each member once.
//!
//! Owned by the shard that owns the key, inside its store. Two encodings, named as Redis
//! names them (OBJECT ENCODING answers `listpack` or `skiplist`):
//!
//! - **listpack**: while the set has at most [`ZSET_LISTPACK_ENTRIES_MAX`] members of at
//!   most [`ZSET_LISTPACK_VALUE_BYTES_MAX`] bytes, it is one sorted packed buffer (a
//!   [`Leaf`]): a score, a length and the member bytes per entry, no per-member allocation.
//!   A lookup scans it, as Redis scans its listpack.
//! - **skiplist**: past either bound, an order-statistic B+ tree whose leaves are such
//!   packed buffers (split past [`ZSET_LEAF_BYTES_MAX`]) and whose inner nodes keep each
//!   child's element count, so rank, select and range bounds cost O(log n); plus a hash table
//!   member → score. A table slot holds the score and 32 bits of the member's hash, not the
//!   member: a candidate slot is confirmed by finding `(score, member)` in the tree, so each
//!   member's bytes are stored once. ZSCORE is a hash probe plus one tree descent.
//!
//! Like Redis, a set never goes back from skiplist to listpack while it lives; sets built
//! whole (a store command's result, a value loaded from its byte form) take the encoding
//! their size calls for.
//!
//! Invariants (checked by [`Zset::check`] in tests): entries strictly ascending by
//! `(score, member)` across leaves; no NaN score; every member once; inner counts are their
//! subtrees' element counts; every separator lies between the last key of its left subtree
//! (exclusive) and the first key of its right one (inclusive); all leaves at one depth; the
//! table has exactly one slot per member, holding its score; `node_bytes` is the sum of the
//! nodes' heap sizes.

use std::cmp::Ordering;
use std::hash::BuildHasher;

use hashbrown::{DefaultHashBuilder, HashTable};

use super::{put_bytes, put_u32, Reader};
use crate::limits::{
    ZSET_LEAF_BYTES_MAX, ZSET_LISTPACK_ENTRIES_MAX, ZSET_LISTPACK_VALUE_BYTES_MAX,
    ZSET_NODE_KIDS_MAX,
};

mod pack;
mod tree;

use pack::*;
pub use pack::{cmp_key, LeafIter};
pub use tree::TreeIter;
use tree::*;

// ----- the value ----------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Repr {
    Pack(Leaf),
    Tree(Box<Tree>),
}

#[derive(Debug, Clone)]
pub struct Zset {
    repr: Repr,
}

impl Default for Zset {
    fn default() -> Zset {
        Zset {
            repr: Repr::Pack(Leaf::default()),
        }
    }
}

/// Entries in order, from some rank.
pub enum Iter<'a> {
    Pack(LeafIter<'a>),
    Tree(TreeIter<'a>),
}

impl<'a> Iterator for Iter<'a> {
    type Item = (f64, &'a [u8]);

    #[inline]
    fn next(&mut self) -> Option<(f64, &'a [u8])> {
        match self {
            Iter::Pack(i) => i.next(),
            Iter::Tree(i) => i.next(),
        }
    }
}

/// Whether a set of `len` members, the longest `longest` bytes, fits the packed encoding.
fn fits_pack(len: usize, longest: usize) -> bool {
    len <= ZSET_LISTPACK_ENTRIES_MAX && longest <= ZSET_LISTPACK_VALUE_BYTES_MAX
}

impl Zset {
    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Pack(l) => l.n as usize,
            Repr::Tree(t) => t.len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes charged for the contents: the heap the value really holds. O(1).
    pub fn cost(&self) -> usize {
        match &self.repr {
            Repr::Pack(l) => l.mem(),
            Repr::Tree(t) => heap(std::mem::size_of::<Tree>()) + t.node_bytes + t.map_mem(),
        }
    }

    /// Bytes of the inline form ([`super::Obj::inline_len`]): only a packed set has one.
    pub fn inline_len(&self) -> Option<usize> {
        match &self.repr {
            Repr::Pack(l) => Some(4 + l.buf.len()),
            Repr::Tree(_) => None,
        }
    }

    /// Append the inline form: the entry count, then the leaf's bytes as they are.
    pub fn write_inline(&self, out: &mut Vec<u8>) {
        if let Repr::Pack(l) = &self.repr {
            put_u32(out, l.n);
            out.extend_from_slice(&l.buf);
        }
    }

    /// Read back what [`Zset::write_inline`] wrote.
    pub fn from_inline(b: &[u8]) -> Option<Zset> {
        let (n, buf) = b.split_first_chunk::<4>()?;
        Some(Zset {
            repr: Repr::Pack(Leaf {
                buf: buf.to_vec(),
                n: u32::from_le_bytes(*n),
            }),
        })
    }

    pub fn encoding(&self) -> &'static str {
        match &self.repr {
            Repr::Pack(_) => "listpack",
            Repr::Tree(_) => "skiplist",
        }
    }

    /// A set of entries already in strictly ascending order with unique members (a store
    /// command's result), in the encoding its size calls for.
    pub fn from_sorted<M: AsRef<[u8]>>(entries: &[(f64, M)]) -> Zset {
        let longest = entries
            .iter()
            .map(|(_, m)| m.as_ref().len())
            .max()
            .unwrap_or(0);
        let it = entries.iter().map(|(s, m)| (*s + 0.0, m.as_ref()));
        if fits_pack(entries.len(), longest) {
            let mut l = Leaf::default();
            for (s, m) in it {
                l.push(s, m);
            }
            Zset {
                repr: Repr::Pack(l),
            }
        } else {
            Zset {
                repr: Repr::Tree(Box::new(Tree::build(it, entries.len()))),
            }
        }
    }

    /// Room for `members` more entries of `member_bytes` bytes in all, when they will stay
    /// packed: a new key's ZADD sizes its buffer once instead of growing it per member.
    pub fn reserve(&mut self, members: usize, member_bytes: usize) {
        if let Repr::Pack(l) = &mut self.repr {
            if l.n as usize + members <= ZSET_LISTPACK_ENTRIES_MAX {
                // Two header bytes per entry cover small-integer scores; others grow.
                l.buf.reserve_exact(member_bytes + 2 * members);
            }
        }
    }

    /// The member's score.
    pub fn score(&self, member: &[u8]) -> Option<f64> {
        match &self.repr {
            Repr::Pack(l) => l.find_member(member).map(|(_, _, s)| s),
            Repr::Tree(t) => t.score(member),
        }
    }

    /// Add a member that is not in the set (check with [`Zset::score`] first). A score of
    /// -0 is kept as 0, as Redis's listpack keeps it.
    pub fn insert_new(&mut self, score: f64, member: &[u8]) {
        let score = score + 0.0;
        if let Repr::Pack(l) = &mut self.repr {
            if fits_pack(l.n as usize + 1, member.len()) {
                if let Err((_, off)) = l.search(score, member) {
                    l.insert(off, score, member);
                }
                return;
            }
            let t = Tree::build(l.iter(), l.n as usize + 1);
            self.repr = Repr::Tree(Box::new(t));
        }
        if let Repr::Tree(t) = &mut self.repr {
            t.insert_new(score, member);
        }
    }

    /// Move a member from score `old` (its current one) to `new`.
    pub fn rescore(&mut self, member: &[u8], old: f64, new: f64) {
        let new = new + 0.0;
        match &mut self.repr {
            Repr::Pack(l) => {
                if let Ok((_, off)) = l.search(old, member) {
                    l.remove(off);
                }
                if let Err((_, off)) = l.search(new, member) {
                    l.insert(off, new, member);
                }
            }
            Repr::Tree(t) => t.rescore(member, old, new),
        }
    }

    /// Remove a member; its score when it was there.
    pub fn remove(&mut self, member: &[u8]) -> Option<f64> {
        match &mut self.repr {
            Repr::Pack(l) => {
                let (_, off, s) = l.find_member(member)?;
                l.remove(off);
                Some(s)
            }
            Repr::Tree(t) => t.remove(member),
        }
    }

    /// The member's rank (0 for the lowest).
    pub fn rank(&self, member: &[u8]) -> Option<usize> {
        match &self.repr {
            Repr::Pack(l) => l.find_member(member).map(|(i, _, _)| i),
            Repr::Tree(t) => rank_of(&t.root, t.score(member)?, member),
        }
    }

    /// How many entries satisfy `pred`, which must hold for a prefix of the order (and be
    /// consistent for keys not in the set: it is asked about separators too).
    pub fn partition(&self, pred: impl Fn(f64, &[u8]) -> bool) -> usize {
        match &self.repr {
            Repr::Pack(l) => l.partition(&pred).0,
            Repr::Tree(t) => partition(&t.root, &pred),
        }
    }

    /// Entries in order from `rank`.
    pub fn iter_from(&self, rank: usize) -> Iter<'_> {
        match &self.repr {
            Repr::Pack(l) => Iter::Pack(LeafIter {
                buf: &l.buf,
                off: if rank >= l.n as usize {
                    l.buf.len()
                } else {
                    l.offset(rank)
                },
            }),
            Repr::Tree(t) => Iter::Tree(TreeIter::new(&t.root, rank)),
        }
    }

    pub fn iter(&self) -> Iter<'_> {
        self.iter_from(0)
    }

    /// The entry at `rank`.
    pub fn get(&self, rank: usize) -> Option<(f64, &[u8])> {
        self.iter_from(rank).next()
    }

    /// Remove the entries of ranks `start..end`; how many went.
    pub fn remove_ranks(&mut self, start: usize, end: usize) -> usize {
        let end = end.min(self.len());
        if start >= end {
            return 0;
        }
        match &mut self.repr {
            Repr::Pack(l) => l.remove_range(start, end),
            Repr::Tree(t) => {
                let doomed: Vec<(f64, Vec<u8>)> = TreeIter::new(&t.root, start)
                    .take(end - start)
                    .map(|(s, m)| (s, m.to_vec()))
                    .collect();
                for (s, m) in &doomed {
                    let h = t.hash32(m);
                    let bits = s.to_bits();
                    if let Ok(e) = t.map.find_entry(table_hash(h), |x| {
                        x.hash == h && x.score().to_bits() == bits
                    }) {
                        e.remove();
                    }
                    t.remove_key(*s, m);
                }
                t.shrink_map();
            }
        }
        end - start
    }

    /// Remove and return the lowest (or, with `max`, the highest) entry.
    pub fn pop(&mut self, max: bool) -> Option<(f64, Vec<u8>)> {
        let rank = if max { self.len().checked_sub(1)? } else { 0 };
        let (s, m) = self.get(rank)?;
        let m = m.to_vec();
        self.remove_ranks(rank, rank + 1);
        Some((s, m))
    }

    /// Append the byte form: the count, then each entry's score bits and member, in order.
    pub fn dump(&self, out: &mut Vec<u8>) {
        put_u32(out, self.len() as u32);
        for (s, m) in self.iter() {
            out.extend_from_slice(&s.to_bits().to_le_bytes());
            put_bytes(out, m);
        }
    }

    /// Read back what [`Zset::dump`] wrote: entries must be in strictly ascending order
    /// with unique members and no NaN.
    pub fn load(r: &mut Reader) -> Option<Zset> {
        let n = r.count(12)?;
        let mut entries: Vec<(f64, &[u8])> = Vec::with_capacity(n);
        let mut seen = hashbrown::HashSet::with_capacity(n);
        for _ in 0..n {
            let s = f64::from_bits(r.u64()?);
            let m = r.bytes()?;
            if s.is_nan() || !seen.insert(m) {
                return None;
            }
            if entries
                .last()
                .is_some_and(|&(ps, pm)| cmp_key(ps, pm, s, m) != Ordering::Less)
            {
                return None;
            }
            entries.push((s, m));
        }
        Some(Zset::from_sorted(&entries))
    }

    /// Check every invariant of the module header (tests).
    #[cfg(test)]
    pub fn check(&self) {
        let all: Vec<(f64, Vec<u8>)> = self.iter().map(|(s, m)| (s, m.to_vec())).collect();
        assert_eq!(all.len(), self.len(), "length");
        for w in all.windows(2) {
            assert_eq!(
                cmp_key(w[0].0, &w[0].1, w[1].0, &w[1].1),
                Ordering::Less,
                "order"
            );
        }
        let members: hashbrown::HashSet<&[u8]> = all.iter().map(|(_, m)| &m[..]).collect();
        assert_eq!(members.len(), all.len(), "unique members");
        match &self.repr {
            Repr::Pack(l) => {
                let longest = all.iter().map(|(_, m)| m.len()).max().unwrap_or(0);
                assert!(fits_pack(l.n as usize, longest), "packed past the bounds");
            }
            Repr::Tree(t) => {
                fn walk(n: &Node, depth: usize, depths: &mut Vec<usize>) -> usize {
                    match n {
                        Node::Leaf(l) => {
                            assert_eq!(l.iter().count(), l.n as usize, "leaf count");
                            depths.push(depth);
                            l.n as usize
                        }
                        Node::Inner(i) => {
                            assert_eq!(i.seps.len() + 1, i.kids.len(), "separators");
                            assert!(i.kids.len() <= ZSET_NODE_KIDS_MAX, "fanout");
                            for (k, kid) in i.kids.iter().enumerate() {
                                assert_eq!(walk(&kid.node, depth + 1, depths), kid.count);
                                let sub: Vec<(f64, Vec<u8>)> = TreeIter::new(&kid.node, 0)
                                    .map(|(s, m)| (s, m.to_vec()))
                                    .collect();
                                if k > 0 {
                                    let sep = &i.seps[k - 1];
                                    for (s, m) in &sub {
                                        assert_ne!(
                                            cmp_key(*s, m, sep.score, &sep.member),
                                            Ordering::Less,
                                            "separator above a key on its right"
                                        );
                                    }
                                }
                                if k + 1 < i.kids.len() {
                                    let sep = &i.seps[k];
                                    for (s, m) in &sub {
                                        assert_eq!(
                                            cmp_key(*s, m, sep.score, &sep.member),
                                            Ordering::Less,
                                            "separator at or below a key on its left"
                                        );
                                    }
                                }
                            }
                            i.kids.iter().map(|k| k.count).sum()
                        }
                    }
                }
                let mut depths = Vec::new();
                assert_eq!(walk(&t.root, 0, &mut depths), t.len, "tree count");
                assert!(depths.windows(2).all(|w| w[0] == w[1]), "leaf depths");
                assert_eq!(t.node_bytes, deep_mem(&t.root), "node bytes");
                assert_eq!(t.map.len(), t.len, "table size");
                for (s, m) in &all {
                    assert_eq!(
                        t.score(m).map(f64::to_bits),
                        Some(s.to_bits()),
                        "table score"
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
