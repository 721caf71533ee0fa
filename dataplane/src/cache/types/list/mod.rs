//! List values: a deque of packed nodes, as Redis's quicklist of listpacks.
//!
//! A node is one byte buffer holding up to [`LIST_NODE_BYTES_MAX`] bytes of entries (an
//! element larger than that has a node of its own). Each entry is
//!
//! ```text
//! header [payload] backlen
//! 0xxxxxxx                  integer 0..=127 (the header is the payload)
//! 10xxxxxx  bytes           string of 0..=63 bytes
//! 110xxxxx  yyyyyyyy bytes  string of 64..=8191 bytes (13-bit length, high bits first)
//! 1110nnnn  n bytes         integer in n = 1..=8 bytes, two's complement, little-endian
//! 11110000  u32 LE, bytes   string of up to 4 GiB
//! 11110001  u64 LE, bytes   longer string
//! ```
//!
//! and `backlen` is the length of header and payload written so that it can be read from
//! its last byte backwards (7 bits per byte, least significant group last, the high bit set
//! on every byte but the first), so a node is walked from either end. An element is stored
//! as an integer exactly when its bytes are an integer's canonical decimal text (no sign
//! but `-`, no leading zero), so decoding gives back the same bytes, and two elements are
//! equal exactly when their encoded forms are: LREM, LPOS and LINSERT compare bytes without
//! decoding.
//!
//! A node keeps room at both ends: `buf[head..]` is its data, `buf[..head]` free room for
//! pushes at the front, and the vector's spare capacity room for pushes at the back, so a
//! push or pop at either end is O(1) amortised (Redis's listpack moves the whole node on a
//! push at the head). Edits in the middle (LSET, LINSERT, LREM) rewrite one node, O(node).
//!
//! Invariants (`check` in tests): no node is empty; `len` is the sum of node counts; a node
//! holds more than [`LIST_NODE_BYTES_MAX`] bytes only when it holds one entry;
//! `node_bytes` is the sum of node capacities plus their allocation overhead.

use super::{put_bytes, put_u32, Reader};
use crate::limits::LIST_NODE_BYTES_MAX;
use crate::proto::resp::parse::parse_i64;
use std::collections::VecDeque;

/// What the allocator spends on one heap block besides the bytes asked for (glibc's chunk
/// header and 16-byte rounding).
const ALLOC_OVERHEAD_BYTES: usize = 16;
/// A node's first buffer is at least this large.
const NODE_MIN_CAP_BYTES: usize = 16;

#[derive(Debug, Clone, Default)]
pub struct List {
    nodes: VecDeque<Node>,
    len: usize,
    /// Capacity of every node buffer plus one allocation overhead each.
    node_bytes: usize,
}

/// Which end of a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    Head,
    Tail,
}

impl List {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes charged for the contents: the node buffers and the node table. O(1).
    pub fn cost(&self) -> usize {
        let table = self.nodes.capacity() * std::mem::size_of::<Node>();
        let table_block = if table > 0 { ALLOC_OVERHEAD_BYTES } else { 0 };
        self.node_bytes + table + table_block
    }

    /// Bytes of the inline form ([`super::Obj::inline_len`]): a list of one node has one.
    pub fn inline_len(&self) -> Option<usize> {
        match self.nodes.front() {
            Some(n) if self.nodes.len() == 1 => Some(4 + n.data_len()),
            _ => None,
        }
    }

    /// Append the inline form: the element count, then the node's entries as they are.
    pub fn write_inline(&self, out: &mut Vec<u8>) {
        if let (Some(n), 1) = (self.nodes.front(), self.nodes.len()) {
            put_u32(out, n.count);
            out.extend_from_slice(n.data());
        }
    }

    /// Read back what [`List::write_inline`] wrote.
    pub fn from_inline(b: &[u8]) -> Option<List> {
        let (count, data) = b.split_first_chunk::<4>()?;
        let count = u32::from_le_bytes(*count);
        let mut l = List::default();
        if count > 0 {
            let node = Node {
                buf: data.to_vec(),
                head: 0,
                count,
            };
            l.len = count as usize;
            l.insert_node(0, node);
        }
        Some(l)
    }

    /// OBJECT ENCODING: Redis 7.0 answers "quicklist" for every list (the "listpack"
    /// encoding of small lists came with 7.2).
    pub fn encoding(&self) -> &'static str {
        "quicklist"
    }

    // ----- node bookkeeping ---------------------------------------------------------------

    fn insert_node(&mut self, at: usize, n: Node) {
        self.node_bytes += n.cap() + ALLOC_OVERHEAD_BYTES;
        if self.nodes.capacity() == 0 {
            // Most lists are small: one node, and no room for more until needed.
            self.nodes.reserve_exact(1);
        }
        self.nodes.insert(at, n);
    }

    fn remove_node(&mut self, at: usize) {
        if let Some(n) = self.nodes.remove(at) {
            self.node_bytes -= n.cap() + ALLOC_OVERHEAD_BYTES;
        }
        self.shrink_table();
    }

    /// Give back most of the node table when the list shrank to under a quarter of it.
    fn shrink_table(&mut self) {
        let (len, cap) = (self.nodes.len(), self.nodes.capacity());
        if cap > 4 && len < cap / 4 {
            self.nodes.shrink_to(len * 2);
        }
    }

    /// Change node `ni` through `f`, keeping `node_bytes` right.
    #[inline]
    fn edit<R>(&mut self, ni: usize, f: impl FnOnce(&mut Node) -> R) -> R {
        let n = &mut self.nodes[ni];
        let before = n.cap();
        let r = f(n);
        let after = n.cap();
        self.node_bytes = self.node_bytes + after - before;
        r
    }

    // ----- ends ---------------------------------------------------------------------------

    pub fn push(&mut self, end: End, elem: &[u8]) {
        let e = Enc::new(elem);
        self.push_enc(end, &e);
    }

    /// Push every element of `elems` at `end` in turn (LPUSH's order: each at the head).
    /// When they fit in the end's node it grows once, to the size they need.
    pub fn push_all<'a>(&mut self, end: End, elems: impl Iterator<Item = &'a [u8]> + Clone) {
        let need: usize = elems.clone().map(|e| Enc::new(e).total()).sum();
        if need == 0 {
            return;
        }
        let ni = match end {
            End::Head => 0,
            End::Tail => self.nodes.len().saturating_sub(1),
        };
        match self.nodes.get(ni).map(Node::data_len) {
            Some(len) if len + need <= LIST_NODE_BYTES_MAX => {
                self.edit(ni, |n| n.make_room(need, end == End::Head));
            }
            None if need <= LIST_NODE_BYTES_MAX => {
                self.insert_node(0, Node::with_capacity(need.max(NODE_MIN_CAP_BYTES)));
            }
            _ => {}
        }
        for e in elems {
            self.push(end, e);
        }
    }

    fn push_enc(&mut self, end: End, e: &Enc) {
        let t = e.total();
        let ni = match end {
            End::Head => 0,
            End::Tail => self.nodes.len().wrapping_sub(1),
        };
        let fits = self
            .nodes
            .get(ni)
            .is_some_and(|n| n.data_len() + t <= LIST_NODE_BYTES_MAX);
        if fits {
            self.edit(ni, |n| match end {
                End::Head => n.push_front(e),
                End::Tail => n.push_back(e),
            });
        } else {
            let mut n = Node::with_capacity(t.max(NODE_MIN_CAP_BYTES));
            n.push_back(e);
            let at = match end {
                End::Head => 0,
                End::Tail => self.nodes.len(),
            };
            self.insert_node(at, n);
        }
        self.len += 1;
    }

    /// Remove the element at `end`, handing it to `f` first.
    pub fn pop<R>(&mut self, end: End, f: impl FnOnce(Elem<'_>) -> R) -> Option<R> {
        let ni = match end {
            End::Head => 0,
            End::Tail => self.nodes.len().checked_sub(1)?,
        };
        let n = self.nodes.get_mut(ni)?;
        let d = n.data();
        let r = match end {
            End::Head => {
                let (next, raw) = entry_at(d, 0);
                let r = f(decode(raw));
                n.head += next;
                r
            }
            End::Tail => {
                let (start, raw) = entry_before(d, d.len());
                let r = f(decode(raw));
                let cut = n.head + start;
                n.buf.truncate(cut);
                r
            }
        };
        n.count -= 1;
        if n.count == 0 {
            self.remove_node(ni);
        }
        self.len -= 1;
        Some(r)
    }

    /// Remove `n` elements at `end` (fewer if the list is shorter).
    pub fn drop_end(&mut self, end: End, n: usize) {
        let mut left = n.min(self.len);
        self.len -= left;
        while left > 0 {
            let ni = match end {
                End::Head => 0,
                End::Tail => self.nodes.len() - 1,
            };
            let count = self.nodes[ni].count as usize;
            if count <= left {
                self.remove_node(ni);
                left -= count;
                continue;
            }
            let k = left as u32;
            self.edit(ni, |node| {
                match end {
                    End::Head => node.head += node.offset_of(k),
                    End::Tail => {
                        let cut = node.head + node.offset_of(node.count - k);
                        node.buf.truncate(cut);
                    }
                }
                node.count -= k;
                node.shrink_if_sparse();
            });
            left = 0;
        }
    }

    // ----- by position --------------------------------------------------------------------

    /// Node, index within it and offset of element `i` (< len), walking from the nearer end.
    fn locate(&self, i: usize) -> (usize, u32, usize) {
        if i < self.len / 2 {
            let mut i = i;
            for (ni, n) in self.nodes.iter().enumerate() {
                let c = n.count as usize;
                if i < c {
                    return (ni, i as u32, n.offset_of(i as u32));
                }
                i -= c;
            }
        } else {
            let mut r = self.len - 1 - i;
            for (ni, n) in self.nodes.iter().enumerate().rev() {
                let c = n.count as usize;
                if r < c {
                    let k = (c - 1 - r) as u32;
                    return (ni, k, n.offset_of(k));
                }
                r -= c;
            }
        }
        unreachable!("list index {i} within len {} not found", self.len)
    }

    /// The element at `i` (0-based from the head).
    pub fn get(&self, i: usize) -> Option<Elem<'_>> {
        if i >= self.len {
            return None;
        }
        let (ni, _, off) = self.locate(i);
        Some(decode(entry_at(self.nodes[ni].data(), off).1))
    }

    /// Elements from `i` towards the tail.
    pub fn iter_from(&self, i: usize) -> Iter<'_> {
        if i >= self.len {
            return Iter {
                list: self,
                ni: self.nodes.len(),
                off: 0,
            };
        }
        let (ni, _, off) = self.locate(i);
        Iter {
            list: self,
            ni,
            off,
        }
    }

    /// Elements from the tail towards the head.
    pub fn iter_rev(&self) -> RevIter<'_> {
        RevIter {
            list: self,
            ni: self.nodes.len(),
            end: 0,
        }
    }

    /// Replace the element at `i`; false when out of range.
    pub fn set(&mut self, i: usize, elem: &[u8]) -> bool {
        if i >= self.len {
            return false;
        }
        let (ni, k, off) = self.locate(i);
        let e = Enc::new(elem);
        let end = entry_at(self.nodes[ni].data(), off).0;
        if end - off == e.total() {
            self.edit(ni, |n| {
                let h = n.head;
                e.write(&mut n.buf[h + off..h + end]);
            });
        } else {
            self.splice(ni, k, off, end, &e);
        }
        true
    }

    /// Insert `elem` before or after the first element equal to `pivot`; false when there
    /// is none.
    pub fn insert(&mut self, pivot: &[u8], after: bool, elem: &[u8]) -> bool {
        let p = Enc::new(pivot);
        let mut found = None;
        'nodes: for (ni, n) in self.nodes.iter().enumerate() {
            let d = n.data();
            let mut off = 0;
            let mut k = 0;
            while off < d.len() {
                let (next, raw) = entry_at(d, off);
                if p.matches(raw) {
                    found = Some(if after {
                        (ni, k + 1, next)
                    } else {
                        (ni, k, off)
                    });
                    break 'nodes;
                }
                off = next;
                k += 1;
            }
        }
        let Some((ni, k, at)) = found else {
            return false;
        };
        let e = Enc::new(elem);
        let t = e.total();
        let room = |n: &Node| n.data_len() + t <= LIST_NODE_BYTES_MAX;
        let node_len = self.nodes[ni].data_len();
        // A full node: a neighbour takes the entry when the place is at the node's edge.
        let neighbour = if room(&self.nodes[ni]) {
            None
        } else if at == 0 && ni > 0 && room(&self.nodes[ni - 1]) {
            Some((ni - 1, End::Tail))
        } else if at == node_len && self.nodes.get(ni + 1).is_some_and(room) {
            Some((ni + 1, End::Head))
        } else {
            None
        };
        match neighbour {
            Some((j, End::Tail)) => self.edit(j, |n| n.push_back(&e)),
            Some((j, End::Head)) => self.edit(j, |n| n.push_front(&e)),
            None => self.splice(ni, k, at, at, &e),
        }
        self.len += 1;
        true
    }

    /// Replace the bytes `a..b` of node `ni` (the entries from index `k`; one entry or
    /// none) with the entry `e`, splitting the node when it would grow past its bound.
    fn splice(&mut self, ni: usize, k: u32, a: usize, b: usize, e: &Enc) {
        let n = &self.nodes[ni];
        let d = n.data();
        let removed = (a != b) as u32;
        let count = n.count - removed + 1;
        let size = d.len() - (b - a) + e.total();
        if size <= LIST_NODE_BYTES_MAX || count == 1 {
            // Keep the node's room, unless it would now be mostly empty.
            let min_cap = if size <= n.cap() && size * 4 >= n.cap() {
                n.cap()
            } else {
                0
            };
            let new = build(
                &[
                    Piece::Bytes(&d[..a]),
                    Piece::Entry(e),
                    Piece::Bytes(&d[b..]),
                ],
                count,
                min_cap,
            );
            self.edit(ni, |n| *n = new);
            return;
        }
        // Split at the place: what is before it, the entry (joined to a side it fits in, or
        // alone), what is after it.
        let (left, right) = (&d[..a], &d[b..]);
        let (lc, rc) = (k, n.count - k - removed);
        let t = e.total();
        let mut parts = Vec::with_capacity(3);
        let left_fits = left.len() + t <= LIST_NODE_BYTES_MAX;
        let right_fits = right.len() + t <= LIST_NODE_BYTES_MAX;
        if left_fits && (left.len() <= right.len() || !right_fits) {
            parts.push(build(&[Piece::Bytes(left), Piece::Entry(e)], lc + 1, 0));
            if rc > 0 {
                parts.push(build(&[Piece::Bytes(right)], rc, 0));
            }
        } else if right_fits {
            if lc > 0 {
                parts.push(build(&[Piece::Bytes(left)], lc, 0));
            }
            parts.push(build(&[Piece::Entry(e), Piece::Bytes(right)], rc + 1, 0));
        } else {
            if lc > 0 {
                parts.push(build(&[Piece::Bytes(left)], lc, 0));
            }
            parts.push(build(&[Piece::Entry(e)], 1, 0));
            if rc > 0 {
                parts.push(build(&[Piece::Bytes(right)], rc, 0));
            }
        }
        self.remove_node(ni);
        for (j, p) in parts.into_iter().enumerate() {
            self.insert_node(ni + j, p);
        }
    }

    /// LREM: remove up to `limit` elements equal to `elem` (all with 0), the first ones from
    /// `from`. Returns how many went.
    pub fn remove_matching(&mut self, elem: &[u8], limit: usize, from: End) -> usize {
        let p = Enc::new(elem);
        let mut left = if limit == 0 { usize::MAX } else { limit };
        let mut removed = 0;
        let nn = self.nodes.len();
        for step in 0..nn {
            if left == 0 {
                break;
            }
            let ni = match from {
                End::Head => step,
                End::Tail => nn - 1 - step,
            };
            let n = &self.nodes[ni];
            let d = n.data();
            let mut matches = 0usize;
            let mut off = 0;
            while off < d.len() {
                let (next, raw) = entry_at(d, off);
                matches += p.matches(raw) as usize;
                off = next;
            }
            if matches == 0 {
                continue;
            }
            let take = matches.min(left);
            // The matches to remove, by their order in the node.
            let skip = match from {
                End::Head => 0,
                End::Tail => matches - take,
            };
            self.edit(ni, |n| {
                let h = n.head;
                let len = n.buf.len();
                let (mut r, mut w, mut seen) = (h, h, 0usize);
                while r < len {
                    let (next, raw) = entry_at(&n.buf, r);
                    let hit = p.matches(raw);
                    let drop = hit && seen >= skip && seen < skip + take;
                    seen += hit as usize;
                    if !drop {
                        if w != r {
                            n.buf.copy_within(r..next, w);
                        }
                        w += next - r;
                    }
                    r = next;
                }
                n.buf.truncate(w);
                n.count -= take as u32;
                n.shrink_if_sparse();
            });
            left -= take;
            removed += take;
        }
        self.len -= removed;
        if removed > 0 {
            self.nodes.retain(|n| n.count > 0);
            self.shrink_table();
            self.node_bytes = self
                .nodes
                .iter()
                .map(|n| n.cap() + ALLOC_OVERHEAD_BYTES)
                .sum();
            self.merge_small();
        }
        removed
    }

    /// Join neighbouring nodes whose data fits in one (after removals in the middle).
    fn merge_small(&mut self) {
        let mut i = 0;
        while i + 1 < self.nodes.len() {
            let (a, b) = (&self.nodes[i], &self.nodes[i + 1]);
            if a.data_len() + b.data_len() <= LIST_NODE_BYTES_MAX / 2 {
                let joined = build(
                    &[Piece::Bytes(a.data()), Piece::Bytes(b.data())],
                    a.count + b.count,
                    0,
                );
                self.remove_node(i + 1);
                self.edit(i, |n| *n = joined);
            } else {
                i += 1;
            }
        }
    }

    /// LPOS: the indexes of elements equal to `elem`, from the head (or from the tail when
    /// `from` is Tail), skipping the first `rank - 1` matches, looking at no more than
    /// `maxlen` elements (0: all); `f` gets each index and says whether to go on.
    pub fn positions(
        &self,
        elem: &[u8],
        from: End,
        rank: u64,
        maxlen: usize,
        mut f: impl FnMut(usize) -> bool,
    ) {
        let p = Enc::new(elem);
        let limit = if maxlen == 0 { self.len } else { maxlen };
        let mut matches = 0u64;
        let mut visit = |index: usize, raw: &[u8]| -> bool {
            if !p.matches(raw) {
                return true;
            }
            matches += 1;
            if matches < rank {
                return true;
            }
            let at = match from {
                End::Head => index,
                End::Tail => self.len - index - 1,
            };
            f(at)
        };
        match from {
            End::Head => {
                for (index, raw) in self.iter_from(0).raw().take(limit).enumerate() {
                    if !visit(index, raw) {
                        return;
                    }
                }
            }
            End::Tail => {
                for (index, raw) in self.iter_rev().raw().take(limit).enumerate() {
                    if !visit(index, raw) {
                        return;
                    }
                }
            }
        }
    }

    // ----- byte form ----------------------------------------------------------------------

    /// The element count (u32: a list can not come near 4G elements in memory), then each
    /// element as bytes.
    pub fn dump(&self, out: &mut Vec<u8>) {
        put_u32(out, self.len as u32);
        for e in self.iter_from(0) {
            e.with_bytes(|b| put_bytes(out, b));
        }
    }

    pub fn load(r: &mut Reader) -> Option<List> {
        let n = r.count(4)?;
        let mut l = List::default();
        for _ in 0..n {
            l.push(End::Tail, r.bytes()?);
        }
        Some(l)
    }

    /// Check the invariants (tests).
    #[cfg(test)]
    pub fn check(&self) {
        let mut len = 0;
        let mut bytes = 0;
        for n in &self.nodes {
            assert!(n.count > 0, "empty node");
            assert!(
                n.data_len() <= LIST_NODE_BYTES_MAX || n.count == 1,
                "oversized node"
            );
            let mut off = 0;
            let mut c = 0;
            while off < n.data_len() {
                off = entry_at(n.data(), off).0;
                c += 1;
            }
            assert_eq!(off, n.data_len(), "entries fill the node");
            assert_eq!(c, n.count, "node count");
            len += c as usize;
            bytes += n.cap() + ALLOC_OVERHEAD_BYTES;
        }
        assert_eq!(len, self.len, "list length");
        assert_eq!(bytes, self.node_bytes, "node bytes");
    }

    #[cfg(test)]
    fn node_count(&self) -> usize {
        self.nodes.len()
    }
}

mod iter;
mod node;

pub use iter::{Iter, RevIter};
pub use node::Elem;
use node::*;

#[cfg(test)]
mod tests;
