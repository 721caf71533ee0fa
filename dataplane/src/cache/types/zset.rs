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

// ----- entries ----------------------------------------------------------------------------
//
// An entry is `[tag][score][member length, LEB128][member]`. Tag 0..=8: the score is an
// integer, zigzag-encoded in `tag` little-endian bytes (most scores are integers, often
// timestamps); tag 9: an IEEE double in 8 bytes; tags 10..=255: a small integer score held
// by the tag itself (`tag - SMALL_BIAS`), so such an entry costs two bytes besides its
// member, as in a listpack.

const TAG_F64: u8 = 9;
const TAG_SMALL_MIN: u8 = 10;
/// The score a small-integer tag stands for is `tag - SMALL_BIAS`: -123 ..= 122.
const SMALL_BIAS: i64 = 133;
/// The longest entry header: tag, 8 score bytes, 10 length bytes.
const HEAD_MAX: usize = 19;
/// Integral scores below this magnitude are exact as integers.
const INT_EXACT: f64 = 9_007_199_254_740_992.0; // 2^53

/// The sort order: score (no NaN is ever stored), then member bytes.
#[inline]
pub fn cmp_key(s1: f64, m1: &[u8], s2: f64, m2: &[u8]) -> Ordering {
    match s1.partial_cmp(&s2) {
        Some(Ordering::Equal) | None => m1.cmp(m2),
        Some(o) => o,
    }
}

fn encode_head(score: f64, len: usize, head: &mut [u8; HEAD_MAX]) -> usize {
    let mut p;
    if score.fract() == 0.0
        && score.abs() < INT_EXACT
        && !(score == 0.0 && score.is_sign_negative())
    {
        let v = score as i64;
        if (TAG_SMALL_MIN as i64 - SMALL_BIAS..=255 - SMALL_BIAS).contains(&v) {
            head[0] = (v + SMALL_BIAS) as u8;
            p = 1;
        } else {
            let z = ((v << 1) ^ (v >> 63)) as u64;
            let bytes = (8 - z.leading_zeros() as usize / 8).min(8);
            head[0] = bytes as u8;
            head[1..1 + bytes].copy_from_slice(&z.to_le_bytes()[..bytes]);
            p = 1 + bytes;
        }
    } else {
        head[0] = TAG_F64;
        head[1..9].copy_from_slice(&score.to_bits().to_le_bytes());
        p = 9;
    }
    let mut n = len;
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            head[p] = b;
            return p + 1;
        }
        head[p] = b | 0x80;
        p += 1;
    }
}

/// The entry at `off` of a buffer this module wrote (values from outside arrive in the
/// [`Zset::dump`] form and are re-encoded): its score, member and the next entry's offset.
#[inline]
fn read_at(buf: &[u8], off: usize) -> (f64, &[u8], usize) {
    let tag = buf[off] as usize;
    let mut a = [0u8; 8];
    let (score, mut p) = if tag >= TAG_SMALL_MIN as usize {
        ((tag as i64 - SMALL_BIAS) as f64, off + 1)
    } else if tag == TAG_F64 as usize {
        a.copy_from_slice(&buf[off + 1..off + 9]);
        (f64::from_bits(u64::from_le_bytes(a)), off + 9)
    } else {
        a[..tag].copy_from_slice(&buf[off + 1..off + 1 + tag]);
        let z = u64::from_le_bytes(a);
        let v = ((z >> 1) as i64) ^ -((z & 1) as i64);
        (v as f64, off + 1 + tag)
    };
    let mut len = 0usize;
    let mut shift = 0;
    loop {
        let b = buf[p];
        p += 1;
        len |= ((b & 0x7f) as usize) << shift;
        if b & 0x80 == 0 {
            break;
        }
        shift += 7;
    }
    (score, &buf[p..p + len], p + len)
}

/// What a heap block of `bytes` usable bytes really takes from the allocator (glibc: an
/// 8-byte header, 16-byte granules, 32 bytes at least).
#[inline]
fn heap(bytes: usize) -> usize {
    if bytes == 0 {
        0
    } else {
        ((bytes + 8 + 15) & !15).max(32)
    }
}

// ----- leaves: sorted packed buffers --------------------------------------------------------

#[derive(Debug, Clone, Default)]
struct Leaf {
    buf: Vec<u8>,
    n: u32,
}

/// Entries in order.
#[derive(Clone)]
pub struct LeafIter<'a> {
    buf: &'a [u8],
    off: usize,
}

impl<'a> Iterator for LeafIter<'a> {
    type Item = (f64, &'a [u8]);

    #[inline]
    fn next(&mut self) -> Option<(f64, &'a [u8])> {
        if self.off >= self.buf.len() {
            return None;
        }
        let (s, m, next) = read_at(self.buf, self.off);
        self.off = next;
        Some((s, m))
    }
}

impl Leaf {
    fn iter(&self) -> LeafIter<'_> {
        LeafIter {
            buf: &self.buf,
            off: 0,
        }
    }

    fn mem(&self) -> usize {
        heap(self.buf.capacity())
    }

    /// Where `(score, member)` is: `Ok((index, offset))` when present, else `Err` with
    /// where it would go.
    fn search(&self, score: f64, member: &[u8]) -> Result<(usize, usize), (usize, usize)> {
        let (mut idx, mut off) = (0, 0);
        while off < self.buf.len() {
            let (s, m, next) = read_at(&self.buf, off);
            match cmp_key(s, m, score, member) {
                Ordering::Less => {
                    idx += 1;
                    off = next;
                }
                Ordering::Equal => return Ok((idx, off)),
                Ordering::Greater => return Err((idx, off)),
            }
        }
        Err((idx, off))
    }

    /// The member's entry, found by scanning (no score known): `(index, offset, score)`.
    fn find_member(&self, member: &[u8]) -> Option<(usize, usize, f64)> {
        let (mut idx, mut off) = (0, 0);
        while off < self.buf.len() {
            let (s, m, next) = read_at(&self.buf, off);
            if m == member {
                return Some((idx, off, s));
            }
            idx += 1;
            off = next;
        }
        None
    }

    /// How many leading entries satisfy `pred` (which holds for a prefix), and the offset
    /// of the first that does not.
    fn partition(&self, pred: &impl Fn(f64, &[u8]) -> bool) -> (usize, usize) {
        let (mut idx, mut off) = (0, 0);
        while off < self.buf.len() {
            let (s, m, next) = read_at(&self.buf, off);
            if !pred(s, m) {
                break;
            }
            idx += 1;
            off = next;
        }
        (idx, off)
    }

    /// The offset of entry `idx` (the end when `idx` is the count).
    fn offset(&self, idx: usize) -> usize {
        let mut off = 0;
        for _ in 0..idx {
            off = read_at(&self.buf, off).2;
        }
        off
    }

    fn first(&self) -> Option<(f64, &[u8])> {
        self.iter().next()
    }

    fn last(&self) -> Option<(f64, &[u8])> {
        self.iter().last()
    }

    /// Room for `add` more bytes: grow by an eighth at least, so slack stays small while
    /// most inserts find room.
    fn reserve(&mut self, add: usize) {
        let need = self.buf.len() + add;
        if need > self.buf.capacity() {
            let grow = add.max(self.buf.len() / 8);
            self.buf.reserve_exact(grow);
        }
    }

    /// Give back slack an emptied buffer no longer needs.
    fn trim(&mut self) {
        let len = self.buf.len();
        if self.buf.capacity() > len + len / 4 + 32 {
            self.buf.shrink_to(len + len / 8);
        }
    }

    fn insert(&mut self, off: usize, score: f64, member: &[u8]) {
        let mut head = [0u8; HEAD_MAX];
        let h = encode_head(score, member.len(), &mut head);
        let add = h + member.len();
        let old = self.buf.len();
        self.reserve(add);
        if off == old {
            self.buf.extend_from_slice(&head[..h]);
            self.buf.extend_from_slice(member);
        } else {
            self.buf.resize(old + add, 0);
            self.buf.copy_within(off..old, off + add);
            self.buf[off..off + h].copy_from_slice(&head[..h]);
            self.buf[off + h..off + add].copy_from_slice(member);
        }
        self.n += 1;
    }

    fn push(&mut self, score: f64, member: &[u8]) {
        self.insert(self.buf.len(), score, member);
    }

    /// Remove the entry at `off`.
    fn remove(&mut self, off: usize) {
        let next = read_at(&self.buf, off).2;
        self.buf.drain(off..next);
        self.n -= 1;
        self.trim();
    }

    /// Remove entries `from..to` (indexes).
    fn remove_range(&mut self, from: usize, to: usize) {
        let a = self.offset(from);
        let mut b = a;
        for _ in from..to {
            b = read_at(&self.buf, b).2;
        }
        self.buf.drain(a..b);
        self.n -= (to - from) as u32;
        self.trim();
    }

    /// Move the upper half (by bytes) into a new leaf; both keep at least one entry when
    /// this one has two or more.
    fn split(&mut self) -> Leaf {
        let half = self.buf.len() / 2;
        let (mut idx, mut off) = (0u32, 0usize);
        while off < half && idx + 1 < self.n {
            off = read_at(&self.buf, off).2;
            idx += 1;
        }
        let tail = &self.buf[off..];
        let mut buf = Vec::with_capacity(tail.len() + tail.len() / 8);
        buf.extend_from_slice(tail);
        let right = Leaf {
            buf,
            n: self.n - idx,
        };
        self.buf.truncate(off);
        self.n = idx;
        self.buf.shrink_to(off + off / 8);
        right
    }

    fn append(&mut self, other: &Leaf) {
        self.reserve(other.buf.len());
        self.buf.extend_from_slice(&other.buf);
        self.n += other.n;
    }
}

// ----- the tree -----------------------------------------------------------------------------

/// A separator: every key of the subtree to its right is at or above it, every key to its
/// left below it.
#[derive(Debug, Clone)]
struct Key {
    score: f64,
    member: Box<[u8]>,
}

#[derive(Debug, Clone)]
enum Node {
    Leaf(Leaf),
    Inner(Inner),
}

/// `seps[i]` separates `kids[i]` from `kids[i + 1]`.
#[derive(Debug, Clone, Default)]
struct Inner {
    kids: Vec<Kid>,
    seps: Vec<Key>,
}

#[derive(Debug, Clone)]
struct Kid {
    /// Elements under `node`.
    count: usize,
    node: Node,
}

/// A table slot: the member's score and the upper half of its hash (the member itself is
/// in the tree). Three u32 keep it 12 bytes.
#[derive(Debug, Clone, Copy)]
struct Slot {
    lo: u32,
    hi: u32,
    hash: u32,
}

impl Slot {
    fn new(score: f64, hash: u32) -> Slot {
        let b = score.to_bits();
        Slot {
            lo: b as u32,
            hi: (b >> 32) as u32,
            hash,
        }
    }

    #[inline]
    fn score(&self) -> f64 {
        f64::from_bits(((self.hi as u64) << 32) | self.lo as u64)
    }

    fn set_score(&mut self, score: f64) {
        *self = Slot::new(score, self.hash);
    }
}

/// The table's hash of a member's 32 stored hash bits (spread over 64 so hashbrown's
/// control bits, taken from the top, vary).
#[inline]
fn table_hash(h32: u32) -> u64 {
    (h32 as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

#[derive(Debug, Clone)]
struct Tree {
    root: Node,
    len: usize,
    /// Heap bytes of every node: leaf buffers, inner vectors, separator members.
    node_bytes: usize,
    map: HashTable<Slot>,
    hasher: DefaultHashBuilder,
}

/// Ways an insert ends below a node.
enum Ins {
    /// The key was there already; nothing changed.
    Present,
    Done,
    /// The node split: the separator and the new right sibling with its element count.
    Split(Key, Node, usize),
}

/// Children an inner node is built with, and leaf bytes a leaf is filled to, when a tree is
/// built whole: room is left for inserts before the first splits.
const KIDS_FILL: usize = ZSET_NODE_KIDS_MAX * 3 / 4;
const LEAF_FILL_BYTES: usize = ZSET_LEAF_BYTES_MAX * 3 / 4;

/// The shortest key between the last key of `left` (exclusive) and the first of `right`
/// (inclusive): most separators need no member bytes at all.
fn separator(left: (f64, &[u8]), right: (f64, &[u8])) -> Key {
    let (ls, lm) = left;
    let (rs, rm) = right;
    if ls < rs {
        return Key {
            score: rs,
            member: Box::default(),
        };
    }
    // Equal scores: the shortest prefix of the right member above the left member.
    let common = lm.iter().zip(rm).take_while(|(a, b)| a == b).count();
    let take = (common + 1).min(rm.len());
    Key {
        score: rs,
        member: rm[..take].into(),
    }
}

fn leaf_separator(left: &Leaf, right: &Leaf) -> Key {
    match (left.last(), right.first()) {
        (Some(l), Some(r)) => separator(l, r),
        // A split always leaves entries on both sides; a bound at the right's first key
        // (or nothing) stays correct anyway.
        (_, Some((s, m))) => Key {
            score: s,
            member: m.into(),
        },
        _ => Key {
            score: f64::INFINITY,
            member: Box::default(),
        },
    }
}

fn inner_mem(i: &Inner) -> usize {
    heap(i.kids.capacity() * std::mem::size_of::<Kid>())
        + heap(i.seps.capacity() * std::mem::size_of::<Key>())
        + i.seps.iter().map(|k| heap(k.member.len())).sum::<usize>()
}

fn deep_mem(n: &Node) -> usize {
    match n {
        Node::Leaf(l) => l.mem(),
        Node::Inner(i) => inner_mem(i) + i.kids.iter().map(|k| deep_mem(&k.node)).sum::<usize>(),
    }
}

fn node_count(n: &Node) -> usize {
    match n {
        Node::Leaf(l) => l.n as usize,
        Node::Inner(i) => i.kids.iter().map(|k| k.count).sum(),
    }
}

impl Inner {
    /// The child whose range holds `(score, member)`.
    #[inline]
    fn route(&self, score: f64, member: &[u8]) -> usize {
        self.seps
            .partition_point(|k| cmp_key(k.score, &k.member, score, member) != Ordering::Greater)
    }

    /// Split off the upper half: the separator that goes up, the new node, its count.
    fn split(&mut self) -> (Key, Inner, usize) {
        let mid = self.kids.len() / 2;
        let kids = self.kids.split_off(mid);
        let mut seps = self.seps.split_off(mid - 1);
        let up = seps.remove(0);
        let right = Inner { kids, seps };
        let count = right.kids.iter().map(|k| k.count).sum();
        self.kids.shrink_to(ZSET_NODE_KIDS_MAX / 2 + 1);
        self.seps.shrink_to(ZSET_NODE_KIDS_MAX / 2);
        (up, right, count)
    }
}

fn insert(node: &mut Node, score: f64, member: &[u8], bytes: &mut usize) -> Ins {
    match node {
        Node::Leaf(l) => {
            let off = match l.search(score, member) {
                Ok(_) => return Ins::Present,
                Err((_, off)) => off,
            };
            let before = l.mem();
            l.insert(off, score, member);
            let mut ins = Ins::Done;
            if l.buf.len() > ZSET_LEAF_BYTES_MAX && l.n >= 2 {
                let right = l.split();
                let key = leaf_separator(l, &right);
                let n = right.n as usize;
                *bytes += right.mem();
                ins = Ins::Split(key, Node::Leaf(right), n);
            }
            *bytes = *bytes + l.mem() - before;
            ins
        }
        Node::Inner(inner) => {
            let i = inner.route(score, member);
            let (key, right, rn) = match insert(&mut inner.kids[i].node, score, member, bytes) {
                Ins::Present => return Ins::Present,
                Ins::Done => {
                    inner.kids[i].count += 1;
                    return Ins::Done;
                }
                Ins::Split(key, right, rn) => (key, right, rn),
            };
            let before = inner_mem(inner);
            inner.kids[i].count = inner.kids[i].count + 1 - rn;
            inner.kids.insert(
                i + 1,
                Kid {
                    count: rn,
                    node: right,
                },
            );
            inner.seps.insert(i, key);
            let mut ins = Ins::Done;
            if inner.kids.len() > ZSET_NODE_KIDS_MAX {
                let (up, right, rn) = inner.split();
                *bytes += inner_mem(&right);
                ins = Ins::Split(up, Node::Inner(right), rn);
            }
            *bytes = *bytes + inner_mem(inner) - before;
            ins
        }
    }
}

fn underfull(n: &Node) -> bool {
    match n {
        Node::Leaf(l) => l.buf.len() < ZSET_LEAF_BYTES_MAX / 4,
        Node::Inner(i) => i.kids.len() < ZSET_NODE_KIDS_MAX / 4,
    }
}

fn remove(node: &mut Node, score: f64, member: &[u8], bytes: &mut usize) -> bool {
    match node {
        Node::Leaf(l) => {
            let Ok((_, off)) = l.search(score, member) else {
                return false;
            };
            let before = l.mem();
            l.remove(off);
            *bytes = *bytes + l.mem() - before;
            true
        }
        Node::Inner(inner) => {
            let i = inner.route(score, member);
            if !remove(&mut inner.kids[i].node, score, member, bytes) {
                return false;
            }
            inner.kids[i].count -= 1;
            if inner.kids.len() > 1 && underfull(&inner.kids[i].node) {
                rebalance(inner, i, bytes);
            }
            true
        }
    }
}

/// Merge child `i` with a sibling; when the merged node is too large, split it evenly
/// again (which moves entries between the two).
fn rebalance(inner: &mut Inner, i: usize, bytes: &mut usize) {
    let before = inner_mem(inner);
    let a = if i + 1 < inner.kids.len() { i } else { i - 1 };
    let right = inner.kids.remove(a + 1);
    let sep = inner.seps.remove(a);
    let left = &mut inner.kids[a];
    left.count += right.count;
    let again = match (&mut left.node, right.node) {
        (Node::Leaf(l), Node::Leaf(r)) => {
            let lb = l.mem();
            *bytes -= r.mem();
            l.append(&r);
            let mut again = None;
            if l.buf.len() > ZSET_LEAF_BYTES_MAX && l.n >= 2 {
                let r2 = l.split();
                let key = leaf_separator(l, &r2);
                let n = r2.n as usize;
                *bytes += r2.mem();
                again = Some((key, Node::Leaf(r2), n));
            }
            *bytes = *bytes + l.mem() - lb;
            again
        }
        (Node::Inner(l), Node::Inner(r)) => {
            let lb = inner_mem(l);
            *bytes -= inner_mem(&r);
            l.seps.push(sep);
            l.seps.extend(r.seps);
            l.kids.extend(r.kids);
            let mut again = None;
            if l.kids.len() > ZSET_NODE_KIDS_MAX {
                let (up, r2, n) = l.split();
                *bytes += inner_mem(&r2);
                again = Some((up, Node::Inner(r2), n));
            }
            *bytes = *bytes + inner_mem(l) - lb;
            again
        }
        // Every leaf is at the same depth, so siblings are of one kind.
        _ => unreachable!("siblings at different depths"),
    };
    if let Some((key, node, n)) = again {
        inner.kids[a].count -= n;
        inner.kids.insert(a + 1, Kid { count: n, node });
        inner.seps.insert(a, key);
    }
    *bytes = *bytes + inner_mem(inner) - before;
}

fn contains(mut node: &Node, score: f64, member: &[u8]) -> bool {
    loop {
        match node {
            Node::Leaf(l) => return l.search(score, member).is_ok(),
            Node::Inner(i) => node = &i.kids[i.route(score, member)].node,
        }
    }
}

fn rank_of(mut node: &Node, score: f64, member: &[u8]) -> Option<usize> {
    let mut base = 0;
    loop {
        match node {
            Node::Leaf(l) => return l.search(score, member).ok().map(|(idx, _)| base + idx),
            Node::Inner(i) => {
                let k = i.route(score, member);
                base += i.kids[..k].iter().map(|k| k.count).sum::<usize>();
                node = &i.kids[k].node;
            }
        }
    }
}

fn partition(mut node: &Node, pred: &impl Fn(f64, &[u8]) -> bool) -> usize {
    let mut base = 0;
    loop {
        match node {
            Node::Leaf(l) => return base + l.partition(pred).0,
            Node::Inner(i) => {
                let k = i.seps.partition_point(|s| pred(s.score, &s.member));
                base += i.kids[..k].iter().map(|k| k.count).sum::<usize>();
                node = &i.kids[k].node;
            }
        }
    }
}

/// Entries in order from a rank.
pub struct TreeIter<'a> {
    /// Inner nodes above the current leaf, each with the next child to visit.
    stack: Vec<(&'a Inner, usize)>,
    leaf: LeafIter<'a>,
}

impl<'a> TreeIter<'a> {
    fn new(root: &'a Node, mut rank: usize) -> TreeIter<'a> {
        let mut stack = Vec::new();
        let mut node = root;
        loop {
            match node {
                Node::Leaf(l) => {
                    let off = if rank >= l.n as usize {
                        l.buf.len()
                    } else {
                        l.offset(rank)
                    };
                    return TreeIter {
                        stack,
                        leaf: LeafIter { buf: &l.buf, off },
                    };
                }
                Node::Inner(i) => {
                    let mut k = 0;
                    while k + 1 < i.kids.len() && rank >= i.kids[k].count {
                        rank -= i.kids[k].count;
                        k += 1;
                    }
                    stack.push((i, k + 1));
                    node = &i.kids[k].node;
                }
            }
        }
    }
}

impl<'a> Iterator for TreeIter<'a> {
    type Item = (f64, &'a [u8]);

    fn next(&mut self) -> Option<(f64, &'a [u8])> {
        loop {
            if let Some(e) = self.leaf.next() {
                return Some(e);
            }
            // Up to the nearest ancestor with a child left, then down its leftmost path.
            let mut node = loop {
                let (inner, next) = self.stack.last_mut()?;
                if *next < inner.kids.len() {
                    let n = &inner.kids[*next].node;
                    *next += 1;
                    break n;
                }
                self.stack.pop();
            };
            loop {
                match node {
                    Node::Leaf(l) => {
                        self.leaf = l.iter();
                        break;
                    }
                    Node::Inner(i) => {
                        self.stack.push((i, 1));
                        node = &i.kids[0].node;
                    }
                }
            }
        }
    }
}

impl Tree {
    fn empty(hint: usize) -> Tree {
        Tree {
            root: Node::Leaf(Leaf::default()),
            len: 0,
            node_bytes: 0,
            map: HashTable::with_capacity(hint),
            hasher: DefaultHashBuilder::default(),
        }
    }

    /// A tree over entries in strictly ascending order (unique members).
    fn build<'a>(entries: impl Iterator<Item = (f64, &'a [u8])>, hint: usize) -> Tree {
        let mut t = Tree::empty(hint);
        let mut level: Vec<Kid> = Vec::new();
        let mut seps: Vec<Key> = Vec::new();
        let mut cur = Leaf::default();
        let mut prev: Option<(f64, &[u8])> = None;
        for (s, m) in entries {
            if cur.buf.len() >= LEAF_FILL_BYTES {
                if let Some(p) = prev {
                    seps.push(separator(p, (s, m)));
                }
                let n = cur.n as usize;
                level.push(Kid {
                    count: n,
                    node: Node::Leaf(std::mem::take(&mut cur)),
                });
            }
            cur.push(s, m);
            let h = t.hash32(m);
            t.map
                .insert_unique(table_hash(h), Slot::new(s, h), |x| table_hash(x.hash));
            t.len += 1;
            prev = Some((s, m));
        }
        let n = cur.n as usize;
        level.push(Kid {
            count: n,
            node: Node::Leaf(cur),
        });
        while level.len() > 1 {
            let mut up_level = Vec::with_capacity(level.len() / KIDS_FILL + 1);
            let mut up_seps = Vec::new();
            let mut kids = level.into_iter().peekable();
            let mut seps_it = seps.into_iter();
            while kids.peek().is_some() {
                let mut inner = Inner {
                    kids: Vec::with_capacity(KIDS_FILL),
                    seps: Vec::with_capacity(KIDS_FILL - 1),
                };
                while inner.kids.len() < KIDS_FILL {
                    let Some(k) = kids.next() else { break };
                    if !inner.kids.is_empty() {
                        inner.seps.extend(seps_it.next());
                    }
                    inner.kids.push(k);
                }
                if kids.peek().is_some() {
                    up_seps.extend(seps_it.next());
                }
                let count = inner.kids.iter().map(|k| k.count).sum();
                up_level.push(Kid {
                    count,
                    node: Node::Inner(inner),
                });
            }
            level = up_level;
            seps = up_seps;
        }
        if let Some(root) = level.pop() {
            t.root = root.node;
        }
        t.node_bytes = deep_mem(&t.root);
        t
    }

    #[inline]
    fn hash32(&self, member: &[u8]) -> u32 {
        (self.hasher.hash_one(member) >> 32) as u32
    }

    fn map_mem(&self) -> usize {
        let cap = self.map.capacity();
        if cap == 0 {
            return 0;
        }
        let buckets = (cap * 8 / 7).next_power_of_two();
        heap(buckets * (std::mem::size_of::<Slot>() + 1) + 16)
    }

    fn score(&self, member: &[u8]) -> Option<f64> {
        let h = self.hash32(member);
        let root = &self.root;
        self.map
            .find(table_hash(h), |s| {
                s.hash == h && contains(root, s.score(), member)
            })
            .map(Slot::score)
    }

    fn insert_new(&mut self, score: f64, member: &[u8]) {
        match insert(&mut self.root, score, member, &mut self.node_bytes) {
            Ins::Present => return,
            Ins::Done => {}
            Ins::Split(key, right, rn) => {
                let left = std::mem::replace(&mut self.root, Node::Leaf(Leaf::default()));
                let ln = node_count(&left);
                let root = Inner {
                    kids: vec![
                        Kid {
                            count: ln,
                            node: left,
                        },
                        Kid {
                            count: rn,
                            node: right,
                        },
                    ],
                    seps: vec![key],
                };
                self.node_bytes += inner_mem(&root);
                self.root = Node::Inner(root);
            }
        }
        self.len += 1;
        let h = self.hash32(member);
        self.map
            .insert_unique(table_hash(h), Slot::new(score, h), |x| table_hash(x.hash));
    }

    fn remove_key(&mut self, score: f64, member: &[u8]) -> bool {
        if !remove(&mut self.root, score, member, &mut self.node_bytes) {
            return false;
        }
        self.len -= 1;
        // A root with one child gives way to it.
        while let Node::Inner(i) = &mut self.root {
            if i.kids.len() != 1 {
                break;
            }
            self.node_bytes -= inner_mem(i);
            let Some(kid) = i.kids.pop() else { break };
            self.root = kid.node;
        }
        true
    }

    fn remove(&mut self, member: &[u8]) -> Option<f64> {
        let h = self.hash32(member);
        let root = &self.root;
        let entry = self
            .map
            .find_entry(table_hash(h), |s| {
                s.hash == h && contains(root, s.score(), member)
            })
            .ok()?;
        let score = entry.remove().0.score();
        self.remove_key(score, member);
        self.shrink_map();
        Some(score)
    }

    /// Give back table memory after many removals (Redis resizes under 10% fill).
    fn shrink_map(&mut self) {
        if self.map.capacity() > 8 * self.len + 64 {
            self.map.shrink_to(self.len * 2, |x| table_hash(x.hash));
        }
    }

    fn rescore(&mut self, member: &[u8], old: f64, new: f64) {
        let h = self.hash32(member);
        let root = &self.root;
        if let Some(slot) = self.map.find_mut(table_hash(h), |s| {
            s.hash == h && contains(root, s.score(), member)
        }) {
            slot.set_score(new);
        }
        self.remove_key(old, member);
        // The table already holds the member: insert into the tree only.
        if let Ins::Split(key, right, rn) =
            insert(&mut self.root, new, member, &mut self.node_bytes)
        {
            let left = std::mem::replace(&mut self.root, Node::Leaf(Leaf::default()));
            let ln = node_count(&left);
            let root = Inner {
                kids: vec![
                    Kid {
                        count: ln,
                        node: left,
                    },
                    Kid {
                        count: rn,
                        node: right,
                    },
                ],
                seps: vec![key],
            };
            self.node_bytes += inner_mem(&root);
            self.root = Node::Inner(root);
        }
        self.len += 1;
    }
}

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
mod tests {
    use super::*;
    use std::collections::{BTreeSet, HashMap};

    /// The reference model: a BTreeSet of (ordered score bits, member) plus a map.
    #[derive(Default)]
    struct Model {
        order: BTreeSet<(OrdF64, Vec<u8>)>,
        scores: HashMap<Vec<u8>, f64>,
    }

    #[derive(Clone, Copy, PartialEq)]
    struct OrdF64(f64);
    impl Eq for OrdF64 {}
    impl PartialOrd for OrdF64 {
        fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
            Some(self.cmp(o))
        }
    }
    impl Ord for OrdF64 {
        fn cmp(&self, o: &Self) -> Ordering {
            self.0.partial_cmp(&o.0).unwrap_or(Ordering::Equal)
        }
    }

    impl Model {
        fn set(&mut self, score: f64, m: &[u8]) {
            if let Some(old) = self.scores.insert(m.to_vec(), score) {
                self.order.remove(&(OrdF64(old), m.to_vec()));
            }
            self.order.insert((OrdF64(score), m.to_vec()));
        }
        fn remove(&mut self, m: &[u8]) -> Option<f64> {
            let s = self.scores.remove(m)?;
            self.order.remove(&(OrdF64(s), m.to_vec()));
            Some(s)
        }
        fn entries(&self) -> Vec<(f64, Vec<u8>)> {
            self.order.iter().map(|(s, m)| (s.0, m.clone())).collect()
        }
    }

    fn rng(state: &mut u64) -> u64 {
        crate::cache::store::xorshift64(state)
    }

    fn entries(z: &Zset) -> Vec<(f64, Vec<u8>)> {
        z.iter().map(|(s, m)| (s, m.to_vec())).collect()
    }

    fn set(z: &mut Zset, score: f64, m: &[u8]) {
        match z.score(m) {
            Some(old) => z.rescore(m, old, score),
            None => z.insert_new(score, m),
        }
    }

    #[test]
    fn scores_round_trip_through_entries() {
        for s in [
            0.0,
            -0.0,
            1.0,
            -1.0,
            255.0,
            -256.0,
            1.5,
            1e300,
            -1e-300,
            f64::INFINITY,
            f64::NEG_INFINITY,
            9_007_199_254_740_991.0,
            9_007_199_254_740_992.0,
            -9_007_199_254_740_991.0,
            1_700_000_000.0,
            -123.0,
            -124.0,
            122.0,
            123.0,
        ] {
            let mut l = Leaf::default();
            l.push(s, b"m");
            let (got, m) = l.first().unwrap();
            assert_eq!(got.to_bits(), s.to_bits(), "{s}");
            assert_eq!(m, b"m");
        }
        // Small integers live in the tag; others take the bytes they need.
        let mut l = Leaf::default();
        l.push(5.0, b"");
        assert_eq!(l.buf.len(), 2);
        l.push(1000.0, b"");
        assert_eq!(l.buf.len(), 2 + 4);
    }

    #[test]
    fn random_operations_match_a_reference_model() {
        for (seed, members, ops) in [
            (1u64, 40u64, 3000),
            (7, 300, 20000),
            (99, 5000, 60000),
            (5, 40000, 120000),
        ] {
            let mut st = seed;
            let mut z = Zset::default();
            let mut model = Model::default();
            for op in 0..ops {
                let r = rng(&mut st);
                let m = format!("m{}", r % members).into_bytes();
                // Few distinct scores, so equal scores order by member often.
                let score = match (r >> 20) % 4 {
                    0 => ((r >> 24) % 10) as f64,
                    1 => ((r >> 24) % 1000) as f64 / 7.0,
                    2 => -(((r >> 24) % 50) as f64),
                    _ => ((r >> 24) % 3) as f64 * 1e18,
                };
                match (r >> 8) % 20 {
                    0..=13 => {
                        set(&mut z, score, &m);
                        model.set(score, &m);
                    }
                    14..=16 => assert_eq!(z.remove(&m), model.remove(&m)),
                    17 => {
                        let want = model.entries();
                        let lo = (r >> 30) as usize % (want.len() + 1);
                        let hi = (lo + (r >> 40) as usize % 8).min(want.len());
                        assert_eq!(z.remove_ranks(lo, hi), hi - lo);
                        for (_, m) in &want[lo..hi] {
                            model.remove(m);
                        }
                    }
                    _ => {
                        let max = (r >> 33) & 1 == 1;
                        let first = if max {
                            model.order.iter().next_back().cloned()
                        } else {
                            model.order.iter().next().cloned()
                        };
                        let got = z.pop(max);
                        assert_eq!(got, first.clone().map(|(s, m)| (s.0, m)));
                        if let Some((_, m)) = first {
                            model.remove(&m);
                        }
                    }
                }
                if op % (997 * (1 + members as usize / 5000)) == 0 || op + 1 == ops {
                    z.check();
                    let want = model.entries();
                    assert_eq!(entries(&z), want);
                    for (i, (s, m)) in want.iter().enumerate() {
                        assert_eq!(z.rank(m), Some(i));
                        assert_eq!(z.score(m), Some(*s));
                        assert_eq!(
                            z.get(i).map(|(s, m)| (s, m.to_vec())),
                            Some((*s, m.clone()))
                        );
                        assert_eq!(z.partition(|s2, m2| cmp_key(s2, m2, *s, m).is_lt()), i);
                    }
                    assert_eq!(z.rank(b"absent"), None);
                    assert_eq!(z.score(b"absent"), None);
                    let k = want.len() / 3;
                    let from: Vec<_> = z.iter_from(k).map(|(s, m)| (s, m.to_vec())).collect();
                    assert_eq!(from, want[k..]);
                }
            }
            if members > 1000 {
                assert_eq!(z.encoding(), "skiplist");
            }
        }
    }

    #[test]
    fn encodings_follow_redis_thresholds() {
        let mut z = Zset::default();
        for i in 0..128 {
            z.insert_new(i as f64, format!("{i}").as_bytes());
        }
        assert_eq!(z.encoding(), "listpack");
        z.insert_new(128.0, b"128");
        assert_eq!(z.encoding(), "skiplist");
        z.check();
        // Shrinking does not go back.
        z.remove_ranks(0, 120);
        assert_eq!(z.encoding(), "skiplist");
        z.check();

        let mut z = Zset::default();
        z.insert_new(1.0, &[b'x'; 64]);
        assert_eq!(z.encoding(), "listpack");
        z.insert_new(1.0, &[b'y'; 65]);
        assert_eq!(z.encoding(), "skiplist");
        z.check();

        let small: Vec<(f64, Vec<u8>)> = (0..128).map(|i| (i as f64, vec![b'a'; 64])).collect();
        let small: Vec<(f64, Vec<u8>)> = small
            .into_iter()
            .enumerate()
            .map(|(i, (s, mut m))| {
                m[0..3].copy_from_slice(format!("{i:03}").as_bytes());
                (s, m)
            })
            .collect();
        assert_eq!(Zset::from_sorted(&small).encoding(), "listpack");
        let big: Vec<(f64, Vec<u8>)> = (0..129)
            .map(|i| (1.0, format!("{i:03}").into_bytes()))
            .collect();
        let z = Zset::from_sorted(&big);
        assert_eq!(z.encoding(), "skiplist");
        z.check();
    }

    #[test]
    fn large_sets_rank_and_range_in_a_tree() {
        let entries: Vec<(f64, Vec<u8>)> = (0..100_000)
            .map(|i| ((i / 3) as f64, format!("member:{i:06}").into_bytes()))
            .collect();
        let mut z = Zset::from_sorted(&entries);
        z.check();
        assert_eq!(z.len(), 100_000);
        assert_eq!(z.rank(b"member:054321"), Some(54321));
        assert_eq!(z.get(99_999).map(|(s, _)| s), Some(33333.0));
        assert_eq!(z.partition(|s, _| s < 1000.0), 3000);
        // Inserting into a built tree splits where it must.
        for i in 0..20_000 {
            z.insert_new(0.5, format!("x{i:05}").as_bytes());
        }
        z.check();
        assert_eq!(z.rank(b"x00000"), Some(3));
        assert_eq!(z.remove_ranks(0, 60_000), 60_000);
        z.check();
        for (s, m) in entries.iter().skip(50_000).take(1000) {
            assert_eq!(z.remove(m), Some(*s));
        }
        z.check();
        while z.pop(false).is_some() {}
        assert!(z.is_empty());
    }

    #[test]
    fn cost_follows_the_heap_and_stays_compact() {
        let mut z = Zset::default();
        let mut last = z.cost();
        for i in 0..10_000u32 {
            z.insert_new(i as f64, format!("element:{i}").as_bytes());
            let c = z.cost();
            assert!(c > 0);
            last = c;
        }
        z.check();
        // Well under Redis's ~110 bytes per such element.
        assert!(last / 10_000 < 64, "{} bytes per element", last / 10_000);
        for i in 0..10_000u32 {
            z.remove(format!("element:{i}").as_bytes());
        }
        assert!(z.cost() < 4096, "{}", z.cost());
    }

    #[test]
    fn dump_and_load_round_trip_and_refuse_garbage() {
        for n in [0usize, 1, 5, 128, 129, 3000] {
            let entries: Vec<(f64, Vec<u8>)> = (0..n)
                .map(|i| (i as f64 * 0.5 - 10.0, format!("m{i:05}").into_bytes()))
                .collect();
            let z = Zset::from_sorted(&entries);
            let mut b = Vec::new();
            z.dump(&mut b);
            let back = Zset::load(&mut Reader(&b)).unwrap();
            back.check();
            assert_eq!(entries_of(&back), entries);
            assert_eq!(back.encoding(), z.encoding());
            // Every truncation and a flipped byte anywhere: refused or well-formed, never a
            // panic.
            for cut in 0..b.len().min(300) {
                if let Some(z) = Zset::load(&mut Reader(&b[..cut])) {
                    z.check();
                }
            }
            let mut st = 3;
            for _ in 0..200 {
                let mut bad = b.clone();
                if bad.is_empty() {
                    break;
                }
                let i = rng(&mut st) as usize % bad.len();
                bad[i] ^= 1 << (rng(&mut st) % 8);
                if let Some(z) = Zset::load(&mut Reader(&bad)) {
                    z.check();
                }
            }
        }
        // Duplicates, disorder and NaN are refused.
        let mut b = Vec::new();
        put_u32(&mut b, 2);
        for (s, m) in [(1.0f64, b"a"), (2.0, b"a")] {
            b.extend_from_slice(&s.to_bits().to_le_bytes());
            put_bytes(&mut b, m);
        }
        assert!(Zset::load(&mut Reader(&b)).is_none());
        let mut b = Vec::new();
        put_u32(&mut b, 1);
        b.extend_from_slice(&f64::NAN.to_bits().to_le_bytes());
        put_bytes(&mut b, b"a");
        assert!(Zset::load(&mut Reader(&b)).is_none());
        // A count larger than the bytes can hold allocates nothing.
        let mut b = Vec::new();
        put_u32(&mut b, u32::MAX);
        assert!(Zset::load(&mut Reader(&b)).is_none());
    }

    fn entries_of(z: &Zset) -> Vec<(f64, Vec<u8>)> {
        entries(z)
    }

    #[test]
    fn separators_are_short() {
        assert_eq!(&*separator((1.0, b"zzz"), (2.0, b"aaa")).member, b"");
        assert_eq!(&*separator((1.0, b"abc"), (1.0, b"abd")).member, b"abd");
        assert_eq!(&*separator((1.0, b"ab"), (1.0, b"abcdef")).member, b"abc");
        assert_eq!(&*separator((1.0, b"a"), (1.0, b"b")).member, b"b");
    }
}
