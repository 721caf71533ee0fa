//! The order-statistic B+ tree (and its member table) of a large sorted set.

use super::*;

/// A separator: every key of the subtree to its right is at or above it, every key to its
/// left below it.
#[derive(Debug, Clone)]
pub(super) struct Key {
    pub(super) score: f64,
    pub(super) member: Box<[u8]>,
}

#[derive(Debug, Clone)]
pub(super) enum Node {
    Leaf(Leaf),
    Inner(Inner),
}

/// `seps[i]` separates `kids[i]` from `kids[i + 1]`.
#[derive(Debug, Clone, Default)]
pub(super) struct Inner {
    pub(super) kids: Vec<Kid>,
    pub(super) seps: Vec<Key>,
}

#[derive(Debug, Clone)]
pub(super) struct Kid {
    /// Elements under `node`.
    pub(super) count: usize,
    pub(super) node: Node,
}

/// A table slot: the member's score and the upper half of its hash (the member itself is
/// in the tree). Three u32 keep it 12 bytes.
#[derive(Debug, Clone, Copy)]
pub(super) struct Slot {
    pub(super) lo: u32,
    pub(super) hi: u32,
    pub(super) hash: u32,
}

impl Slot {
    pub(super) fn new(score: f64, hash: u32) -> Slot {
        let b = score.to_bits();
        Slot {
            lo: b as u32,
            hi: (b >> 32) as u32,
            hash,
        }
    }

    #[inline]
    pub(super) fn score(&self) -> f64 {
        f64::from_bits(((self.hi as u64) << 32) | self.lo as u64)
    }

    pub(super) fn set_score(&mut self, score: f64) {
        *self = Slot::new(score, self.hash);
    }
}

/// The table's hash of a member's 32 stored hash bits (spread over 64 so hashbrown's
/// control bits, taken from the top, vary).
#[inline]
pub(super) fn table_hash(h32: u32) -> u64 {
    (h32 as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

#[derive(Debug, Clone)]
pub(super) struct Tree {
    pub(super) root: Node,
    pub(super) len: usize,
    /// Heap bytes of every node: leaf buffers, inner vectors, separator members.
    pub(super) node_bytes: usize,
    pub(super) map: HashTable<Slot>,
    pub(super) hasher: DefaultHashBuilder,
}

/// Ways an insert ends below a node.
pub(super) enum Ins {
    /// The key was there already; nothing changed.
    Present,
    Done,
    /// The node split: the separator and the new right sibling with its element count.
    Split(Key, Node, usize),
}

/// Children an inner node is built with, and leaf bytes a leaf is filled to, when a tree is
/// built whole: room is left for inserts before the first splits.
pub(super) const KIDS_FILL: usize = ZSET_NODE_KIDS_MAX * 3 / 4;
pub(super) const LEAF_FILL_BYTES: usize = ZSET_LEAF_BYTES_MAX * 3 / 4;

/// The shortest key between the last key of `left` (exclusive) and the first of `right`
/// (inclusive): most separators need no member bytes at all.
pub(super) fn separator(left: (f64, &[u8]), right: (f64, &[u8])) -> Key {
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

pub(super) fn leaf_separator(left: &Leaf, right: &Leaf) -> Key {
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

pub(super) fn inner_mem(i: &Inner) -> usize {
    heap(i.kids.capacity() * std::mem::size_of::<Kid>())
        + heap(i.seps.capacity() * std::mem::size_of::<Key>())
        + i.seps.iter().map(|k| heap(k.member.len())).sum::<usize>()
}

pub(super) fn deep_mem(n: &Node) -> usize {
    match n {
        Node::Leaf(l) => l.mem(),
        Node::Inner(i) => inner_mem(i) + i.kids.iter().map(|k| deep_mem(&k.node)).sum::<usize>(),
    }
}

pub(super) fn node_count(n: &Node) -> usize {
    match n {
        Node::Leaf(l) => l.n as usize,
        Node::Inner(i) => i.kids.iter().map(|k| k.count).sum(),
    }
}

impl Inner {
    /// The child whose range holds `(score, member)`.
    #[inline]
    pub(super) fn route(&self, score: f64, member: &[u8]) -> usize {
        self.seps
            .partition_point(|k| cmp_key(k.score, &k.member, score, member) != Ordering::Greater)
    }

    /// Split off the upper half: the separator that goes up, the new node, its count.
    pub(super) fn split(&mut self) -> (Key, Inner, usize) {
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

pub(super) fn insert(node: &mut Node, score: f64, member: &[u8], bytes: &mut usize) -> Ins {
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

pub(super) fn underfull(n: &Node) -> bool {
    match n {
        Node::Leaf(l) => l.buf.len() < ZSET_LEAF_BYTES_MAX / 4,
        Node::Inner(i) => i.kids.len() < ZSET_NODE_KIDS_MAX / 4,
    }
}

pub(super) fn remove(node: &mut Node, score: f64, member: &[u8], bytes: &mut usize) -> bool {
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
pub(super) fn rebalance(inner: &mut Inner, i: usize, bytes: &mut usize) {
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

pub(super) fn contains(mut node: &Node, score: f64, member: &[u8]) -> bool {
    loop {
        match node {
            Node::Leaf(l) => return l.search(score, member).is_ok(),
            Node::Inner(i) => node = &i.kids[i.route(score, member)].node,
        }
    }
}

pub(super) fn rank_of(mut node: &Node, score: f64, member: &[u8]) -> Option<usize> {
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

pub(super) fn partition(mut node: &Node, pred: &impl Fn(f64, &[u8]) -> bool) -> usize {
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
    pub(super) stack: Vec<(&'a Inner, usize)>,
    pub(super) leaf: LeafIter<'a>,
}

impl<'a> TreeIter<'a> {
    pub(super) fn new(root: &'a Node, mut rank: usize) -> TreeIter<'a> {
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
    pub(super) fn empty(hint: usize) -> Tree {
        Tree {
            root: Node::Leaf(Leaf::default()),
            len: 0,
            node_bytes: 0,
            map: HashTable::with_capacity(hint),
            hasher: DefaultHashBuilder::default(),
        }
    }

    /// A tree over entries in strictly ascending order (unique members).
    pub(super) fn build<'a>(entries: impl Iterator<Item = (f64, &'a [u8])>, hint: usize) -> Tree {
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
    pub(super) fn hash32(&self, member: &[u8]) -> u32 {
        (self.hasher.hash_one(member) >> 32) as u32
    }

    pub(super) fn map_mem(&self) -> usize {
        let cap = self.map.capacity();
        if cap == 0 {
            return 0;
        }
        let buckets = (cap * 8 / 7).next_power_of_two();
        heap(buckets * (std::mem::size_of::<Slot>() + 1) + 16)
    }

    pub(super) fn score(&self, member: &[u8]) -> Option<f64> {
        let h = self.hash32(member);
        let root = &self.root;
        self.map
            .find(table_hash(h), |s| {
                s.hash == h && contains(root, s.score(), member)
            })
            .map(Slot::score)
    }

    pub(super) fn insert_new(&mut self, score: f64, member: &[u8]) {
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

    pub(super) fn remove_key(&mut self, score: f64, member: &[u8]) -> bool {
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

    pub(super) fn remove(&mut self, member: &[u8]) -> Option<f64> {
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
    pub(super) fn shrink_map(&mut self) {
        if self.map.capacity() > 8 * self.len + 64 {
            self.map.shrink_to(self.len * 2, |x| table_hash(x.hash));
        }
    }

    pub(super) fn rescore(&mut self, member: &[u8], old: f64, new: f64) {
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
