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

#[derive(Debug, Clone)]
struct Node {
    /// `buf[head..]` holds the entries; `buf[..head]` is room for pushes at the front.
    buf: Vec<u8>,
    head: usize,
    count: u32,
}

/// One element as stored: an integer, or bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Elem<'a> {
    Str(&'a [u8]),
    Int(i64),
}

impl Elem<'_> {
    /// Call `f` with the element's bytes (an integer is formatted on the stack).
    #[inline]
    pub fn with_bytes<R>(self, f: impl FnOnce(&[u8]) -> R) -> R {
        match self {
            Elem::Str(s) => f(s),
            Elem::Int(v) => f(itoa::Buffer::new().format(v).as_bytes()),
        }
    }

    pub fn to_vec(self) -> Vec<u8> {
        self.with_bytes(|b| b.to_vec())
    }
}

/// An element's encoded form, ready to be written or compared: `head` (the header, and an
/// integer's bytes) followed by `body` (a string's bytes).
#[derive(Clone, Copy)]
struct Enc<'a> {
    head: [u8; 9],
    head_len: u8,
    body: &'a [u8],
}

impl<'a> Enc<'a> {
    pub fn new(elem: &'a [u8]) -> Enc<'a> {
        let mut head = [0u8; 9];
        if let Some(v) = parse_i64(elem) {
            if (0..=127).contains(&v) {
                head[0] = v as u8;
                return Enc {
                    head,
                    head_len: 1,
                    body: &[],
                };
            }
            let n = int_bytes(v);
            head[0] = 0xE0 | n as u8;
            head[1..=n].copy_from_slice(&v.to_le_bytes()[..n]);
            return Enc {
                head,
                head_len: 1 + n as u8,
                body: &[],
            };
        }
        let len = elem.len();
        let head_len = if len < 64 {
            head[0] = 0x80 | len as u8;
            1
        } else if len < 8192 {
            head[0] = 0xC0 | (len >> 8) as u8;
            head[1] = len as u8;
            2
        } else if let Ok(l) = u32::try_from(len) {
            head[0] = 0xF0;
            head[1..5].copy_from_slice(&l.to_le_bytes());
            5
        } else {
            head[0] = 0xF1;
            head[1..9].copy_from_slice(&(len as u64).to_le_bytes());
            9
        };
        Enc {
            head,
            head_len,
            body: elem,
        }
    }

    fn head(&self) -> &[u8] {
        &self.head[..self.head_len as usize]
    }

    /// Header and payload.
    fn body_len(&self) -> usize {
        self.head_len as usize + self.body.len()
    }

    /// Bytes the entry takes in a node.
    fn total(&self) -> usize {
        let b = self.body_len();
        b + backlen_len(b)
    }

    /// Is `raw` (an entry's header and payload) this element?
    #[inline]
    fn matches(&self, raw: &[u8]) -> bool {
        let h = self.head_len as usize;
        raw.len() == self.body_len() && raw[..h] == *self.head() && raw[h..] == *self.body
    }

    /// Write the whole entry into `dst` (exactly `total()` bytes).
    fn write(&self, dst: &mut [u8]) {
        let h = self.head_len as usize;
        let b = self.body_len();
        dst[..h].copy_from_slice(self.head());
        dst[h..b].copy_from_slice(self.body);
        write_backlen(b, &mut dst[b..]);
    }
}

/// Bytes of the smallest two's-complement form of `v`.
fn int_bytes(v: i64) -> usize {
    (1..8)
        .find(|&n| {
            let bits = 8 * n as u32;
            let lo = -(1i64 << (bits - 1));
            let hi = (1i64 << (bits - 1)) - 1;
            (lo..=hi).contains(&v)
        })
        .unwrap_or(8)
}

fn backlen_len(body: usize) -> usize {
    let mut n = 1;
    let mut v = body >> 7;
    while v > 0 {
        n += 1;
        v >>= 7;
    }
    n
}

/// The body length in the form read backwards from its last byte.
fn write_backlen(body: usize, dst: &mut [u8]) {
    let n = dst.len();
    let mut v = body;
    for (i, d) in dst.iter_mut().rev().enumerate() {
        *d = (v & 0x7F) as u8 | if i + 1 < n { 0x80 } else { 0 };
        v >>= 7;
    }
}

/// Header and payload length of the entry starting at `data[0]`.
#[inline]
fn body_len_at(data: &[u8]) -> usize {
    let b = data[0];
    match b {
        0x00..=0x7F => 1,
        0x80..=0xBF => 1 + (b & 0x3F) as usize,
        0xC0..=0xDF => 2 + (((b & 0x1F) as usize) << 8 | data[1] as usize),
        0xE0..=0xEF => 1 + (b & 0x0F) as usize,
        0xF0 => 5 + u32::from_le_bytes([data[1], data[2], data[3], data[4]]) as usize,
        _ => {
            let mut l = [0u8; 8];
            l.copy_from_slice(&data[1..9]);
            9 + u64::from_le_bytes(l) as usize
        }
    }
}

/// Where the entry at `p` ends (past its backlen), and its body.
#[inline]
fn entry_at(data: &[u8], p: usize) -> (usize, &[u8]) {
    let b = body_len_at(&data[p..]);
    (p + b + backlen_len(b), &data[p..p + b])
}

/// Where the entry that ends at `e` starts, and its body.
#[inline]
fn entry_before(data: &[u8], e: usize) -> (usize, &[u8]) {
    let mut i = e - 1;
    let mut v = (data[i] & 0x7F) as usize;
    let mut shift = 7;
    while data[i] & 0x80 != 0 {
        i -= 1;
        v |= ((data[i] & 0x7F) as usize) << shift;
        shift += 7;
    }
    (i - v, &data[i - v..i])
}

/// Decode an entry's header and payload.
#[inline]
fn decode(raw: &[u8]) -> Elem<'_> {
    let b = raw[0];
    match b {
        0x00..=0x7F => Elem::Int(b as i64),
        0xE0..=0xEF => {
            let n = (b & 0x0F) as usize;
            let fill = if raw[n] & 0x80 != 0 { 0xFF } else { 0 };
            let mut v = [fill; 8];
            v[..n].copy_from_slice(&raw[1..=n]);
            Elem::Int(i64::from_le_bytes(v))
        }
        0x80..=0xBF => Elem::Str(&raw[1..]),
        0xC0..=0xDF => Elem::Str(&raw[2..]),
        0xF0 => Elem::Str(&raw[5..]),
        _ => Elem::Str(&raw[9..]),
    }
}

impl Node {
    fn with_capacity(cap: usize) -> Node {
        Node {
            buf: Vec::with_capacity(cap),
            head: 0,
            count: 0,
        }
    }

    #[inline]
    fn data(&self) -> &[u8] {
        &self.buf[self.head..]
    }

    #[inline]
    fn data_len(&self) -> usize {
        self.buf.len() - self.head
    }

    #[inline]
    fn cap(&self) -> usize {
        self.buf.capacity()
    }

    /// Make room for `need` more bytes at the front or the back: grow by half (up to a full
    /// node), or move the data within the buffer when the room is on the other side.
    fn make_room(&mut self, need: usize, front: bool) {
        let len = self.buf.len();
        let cap = self.cap();
        if (front && self.head >= need) || (!front && cap - len >= need) {
            return;
        }
        let data = len - self.head;
        let want = data + need;
        let new_cap = if want <= cap {
            cap
        } else {
            want.max((cap + cap / 2).clamp(NODE_MIN_CAP_BYTES, LIST_NODE_BYTES_MAX))
        };
        if new_cap == cap {
            if front {
                self.buf.resize(cap, 0);
                self.buf.copy_within(self.head..len, cap - data);
                self.head = cap - data;
            } else {
                self.buf.copy_within(self.head..len, 0);
                self.buf.truncate(data);
                self.head = 0;
            }
            return;
        }
        let mut b = Vec::with_capacity(new_cap);
        if front {
            b.resize(new_cap - data, 0);
        }
        let head = b.len();
        b.extend_from_slice(&self.buf[self.head..]);
        self.buf = b;
        self.head = head;
    }

    fn push_back(&mut self, e: &Enc) {
        let t = e.total();
        self.make_room(t, false);
        let at = self.buf.len();
        self.buf.resize(at + t, 0);
        e.write(&mut self.buf[at..]);
        self.count += 1;
    }

    fn push_front(&mut self, e: &Enc) {
        let t = e.total();
        self.make_room(t, true);
        self.head -= t;
        let h = self.head;
        e.write(&mut self.buf[h..h + t]);
        self.count += 1;
    }

    /// Offset in `data()` of the entry `k` (< count), walking from the nearer end.
    fn offset_of(&self, k: u32) -> usize {
        let d = self.data();
        if k <= self.count / 2 {
            let mut p = 0;
            for _ in 0..k {
                p = entry_at(d, p).0;
            }
            p
        } else {
            let mut e = d.len();
            for _ in k..self.count {
                e = entry_before(d, e).0;
            }
            e
        }
    }

    /// Give back most of the room when the data shrank to under a quarter of it.
    fn shrink_if_sparse(&mut self) {
        let data = self.data_len();
        if self.cap() > NODE_MIN_CAP_BYTES * 4 && data < self.cap() / 4 {
            let mut b = Vec::with_capacity(data.max(NODE_MIN_CAP_BYTES));
            b.extend_from_slice(self.data());
            self.buf = b;
            self.head = 0;
        }
    }
}

/// A node built from pieces of existing data and new entries.
enum Piece<'a, 'b> {
    Bytes(&'a [u8]),
    Entry(&'a Enc<'b>),
}

fn build(pieces: &[Piece], count: u32, min_cap: usize) -> Node {
    let size: usize = pieces
        .iter()
        .map(|p| match p {
            Piece::Bytes(b) => b.len(),
            Piece::Entry(e) => e.total(),
        })
        .sum();
    let mut n = Node::with_capacity(size.max(min_cap));
    for p in pieces {
        match p {
            Piece::Bytes(b) => n.buf.extend_from_slice(b),
            Piece::Entry(e) => {
                let at = n.buf.len();
                n.buf.resize(at + e.total(), 0);
                e.write(&mut n.buf[at..]);
            }
        }
    }
    n.count = count;
    n
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

/// Elements from a position towards the tail.
pub struct Iter<'a> {
    list: &'a List,
    ni: usize,
    off: usize,
}

impl<'a> Iter<'a> {
    /// The entries' encoded bodies instead of their elements.
    fn raw(self) -> RawIter<'a> {
        RawIter(self)
    }

    #[inline]
    fn next_raw(&mut self) -> Option<&'a [u8]> {
        let mut n = self.list.nodes.get(self.ni)?;
        if self.off >= n.data_len() {
            self.ni += 1;
            self.off = 0;
            n = self.list.nodes.get(self.ni)?;
        }
        let (next, raw) = entry_at(n.data(), self.off);
        self.off = next;
        Some(raw)
    }
}

impl<'a> Iterator for Iter<'a> {
    type Item = Elem<'a>;

    #[inline]
    fn next(&mut self) -> Option<Elem<'a>> {
        self.next_raw().map(decode)
    }
}

struct RawIter<'a>(Iter<'a>);

impl<'a> Iterator for RawIter<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        self.0.next_raw()
    }
}

/// Elements from the tail towards the head.
pub struct RevIter<'a> {
    list: &'a List,
    /// The node being read is `ni - 1`; its entries before `end` are still to come.
    ni: usize,
    end: usize,
}

impl<'a> RevIter<'a> {
    fn raw(self) -> RevRawIter<'a> {
        RevRawIter(self)
    }

    #[inline]
    fn next_raw(&mut self) -> Option<&'a [u8]> {
        if self.end == 0 {
            self.ni = self.ni.checked_sub(1)?;
            self.end = self.list.nodes.get(self.ni)?.data_len();
        }
        let n = self.list.nodes.get(self.ni)?;
        let (start, raw) = entry_before(n.data(), self.end);
        self.end = start;
        Some(raw)
    }
}

impl<'a> Iterator for RevIter<'a> {
    type Item = Elem<'a>;

    #[inline]
    fn next(&mut self) -> Option<Elem<'a>> {
        self.next_raw().map(decode)
    }
}

struct RevRawIter<'a>(RevIter<'a>);

impl<'a> Iterator for RevRawIter<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        self.0.next_raw()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque as Model;

    fn all(l: &List) -> Vec<Vec<u8>> {
        l.iter_from(0).map(|e| e.to_vec()).collect()
    }

    fn xorshift(s: &mut u64) -> u64 {
        *s ^= *s << 13;
        *s ^= *s >> 7;
        *s ^= *s << 17;
        *s
    }

    /// Elements of every encoding: small and large integers, short, medium and long strings.
    fn element(r: u64) -> Vec<u8> {
        match r % 9 {
            0 => (r % 128).to_string().into_bytes(),
            1 => ((r >> 8) as i64 - (1 << 40)).to_string().into_bytes(),
            2 => i64::MIN.to_string().into_bytes(),
            3 => format!("0{}", r % 100).into_bytes(),
            4 => vec![b'a' + (r % 26) as u8; (r % 70) as usize],
            5 => vec![b'm'; 64 + (r % 300) as usize],
            6 => vec![b'z'; 9000 + (r % 20) as usize],
            7 => b"-0".to_vec(),
            _ => format!("e{}", r % 7).into_bytes(),
        }
    }

    #[test]
    fn encodings_round_trip_exact_bytes() {
        for s in [
            "0",
            "127",
            "128",
            "-1",
            "-128",
            "-129",
            "32767",
            "-32768",
            "8388607",
            "2147483648",
            "9223372036854775807",
            "-9223372036854775808",
            "9223372036854775808",
            "+1",
            "01",
            "-0",
            "",
            "1.5",
            " 1",
        ] {
            let mut l = List::default();
            l.push(End::Tail, s.as_bytes());
            l.push(End::Head, s.as_bytes());
            assert_eq!(all(&l), vec![s.as_bytes().to_vec(); 2], "{s:?}");
            l.check();
        }
        for len in [0, 63, 64, 8191, 8192, 70_000] {
            let v = vec![7u8; len];
            let mut l = List::default();
            l.push(End::Tail, b"x");
            l.push(End::Tail, &v);
            l.push(End::Head, &v);
            assert_eq!(l.get(1).map(|e| e.to_vec()), Some(b"x".to_vec()));
            assert_eq!(l.get(2).map(|e| e.to_vec()), Some(v.clone()));
            assert_eq!(
                l.iter_rev().map(|e| e.to_vec()).collect::<Vec<_>>(),
                vec![v.clone(), b"x".to_vec(), v.clone()]
            );
            l.check();
        }
        // Integers are stored compactly.
        assert_eq!(Enc::new(b"5").total(), 2);
        assert_eq!(Enc::new(b"123456").total(), 5);
        assert_eq!(Enc::new(b"abc").total(), 5);
    }

    #[test]
    fn operations_match_a_model() {
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        for round in 0..40 {
            let mut l = List::default();
            let mut m: Model<Vec<u8>> = Model::new();
            // Odd rounds use small elements only, so that full nodes of many entries are
            // split and joined; even rounds mix in elements larger than a node.
            let ops = if round % 2 == 1 { 3000 } else { 600 };
            for _ in 0..ops {
                let r = xorshift(&mut seed);
                let mut e = element(xorshift(&mut seed) >> 3);
                if round % 2 == 1 {
                    e.truncate(40);
                }
                // Lean on pushes so lists get long enough to span several nodes.
                match r % 16 {
                    0..=3 => {
                        l.push(End::Tail, &e);
                        m.push_back(e);
                    }
                    4 => {
                        // Several at once, at either end.
                        let more = [e.clone(), b"x".to_vec(), e.repeat(2)];
                        let end = if r & 1 << 40 != 0 {
                            End::Head
                        } else {
                            End::Tail
                        };
                        l.push_all(end, more.iter().map(|v| v.as_slice()));
                        for v in more {
                            match end {
                                End::Head => m.push_front(v),
                                End::Tail => m.push_back(v),
                            }
                        }
                    }
                    5..=8 => {
                        l.push(End::Head, &e);
                        m.push_front(e);
                    }
                    9 => {
                        let got = l.pop(End::Head, |x| x.to_vec());
                        assert_eq!(got, m.pop_front());
                    }
                    10 => {
                        let got = l.pop(End::Tail, |x| x.to_vec());
                        assert_eq!(got, m.pop_back());
                    }
                    11 if !m.is_empty() => {
                        let i = (r >> 8) as usize % m.len();
                        assert!(l.set(i, &e));
                        m[i] = e;
                    }
                    12 if !m.is_empty() => {
                        let i = (r >> 8) as usize % m.len();
                        let pivot = m[i].clone();
                        let first = m.iter().position(|x| *x == pivot).unwrap();
                        let after = r & 1 << 20 != 0;
                        assert!(l.insert(&pivot, after, &e));
                        m.insert(first + after as usize, e);
                    }
                    13 if !m.is_empty() => {
                        let i = (r >> 8) as usize % m.len();
                        let x = m[i].clone();
                        // Odd rounds remove few at a time, so their lists grow long.
                        let limit = (r >> 30) as usize % 3 + (round % 2);
                        let from = if r & 1 << 40 != 0 {
                            End::Head
                        } else {
                            End::Tail
                        };
                        let n = l.remove_matching(&x, limit, from);
                        let hits: Vec<usize> = (0..m.len()).filter(|&j| m[j] == x).collect();
                        let take = if limit == 0 {
                            hits.len()
                        } else {
                            limit.min(hits.len())
                        };
                        let gone: Vec<usize> = match from {
                            End::Head => hits[..take].to_vec(),
                            End::Tail => hits[hits.len() - take..].to_vec(),
                        };
                        assert_eq!(n, take);
                        for j in gone.into_iter().rev() {
                            m.remove(j);
                        }
                    }
                    14 => {
                        let k = (r >> 8) as usize % 5;
                        let end = if r & 1 << 40 != 0 {
                            End::Head
                        } else {
                            End::Tail
                        };
                        l.drop_end(end, k);
                        for _ in 0..k.min(m.len()) {
                            match end {
                                End::Head => m.pop_front(),
                                End::Tail => m.pop_back(),
                            };
                        }
                    }
                    _ => {
                        let i = (r >> 8) as usize % (m.len() + 1);
                        assert_eq!(l.get(i).map(|x| x.to_vec()), m.get(i).cloned());
                    }
                }
                l.check();
                assert_eq!(l.len(), m.len());
            }
            assert_eq!(
                all(&l),
                m.iter().cloned().collect::<Vec<_>>(),
                "round {round}"
            );
            if round % 2 == 1 {
                assert!(
                    l.node_count() >= 3,
                    "round {round}: {} nodes, {} long",
                    l.node_count(),
                    l.len()
                );
            }
            let rev: Vec<Vec<u8>> = l.iter_rev().map(|e| e.to_vec()).collect();
            assert_eq!(rev, m.iter().rev().cloned().collect::<Vec<_>>());
            for i in 0..m.len() {
                let tail: Vec<Vec<u8>> = l.iter_from(i).map(|e| e.to_vec()).collect();
                assert_eq!(tail, m.iter().skip(i).cloned().collect::<Vec<_>>());
            }
        }
    }

    #[test]
    fn long_lists_span_nodes_and_pay_for_them() {
        let mut l = List::default();
        for i in 0..100_000 {
            l.push(End::Tail, format!("element:{i}").as_bytes());
        }
        l.check();
        assert!(l.node_count() > 100);
        assert_eq!(
            l.get(54_321).map(|e| e.to_vec()),
            Some(b"element:54321".to_vec())
        );
        // About the bytes of the entries: 14 bytes each, and little else.
        let per = l.cost() as f64 / 100_000.0;
        assert!((14.0..16.0).contains(&per), "{per} bytes per element");
        l.drop_end(End::Head, 99_990);
        l.check();
        assert_eq!(l.len(), 10);
        assert!(l.cost() < 1024, "{}", l.cost());
        // A small list costs about its bytes.
        let mut s = List::default();
        for i in 0..10 {
            s.push(End::Tail, format!("v{i}").as_bytes());
        }
        assert!(s.cost() < 160, "{}", s.cost());
        // Pushed at once, they get a node of just their size.
        let mut s = List::default();
        let words: Vec<String> = (0..10).map(|i| format!("value:{i}")).collect();
        s.push_all(End::Tail, words.iter().map(|w| w.as_bytes()));
        s.push_all(End::Head, words.iter().map(|w| w.as_bytes()));
        s.check();
        assert_eq!(s.nodes[0].cap(), s.nodes[0].data_len());
        let mut want: Vec<&String> = words.iter().rev().collect();
        want.extend(words.iter());
        assert_eq!(
            all(&s),
            want.iter()
                .map(|w| w.as_bytes().to_vec())
                .collect::<Vec<_>>()
        );
        s.push_all(End::Tail, std::iter::empty());
        s.check();
    }

    #[test]
    fn positions_follow_rank_and_maxlen() {
        let mut l = List::default();
        for e in ["a", "b", "c", "1", "2", "3", "c", "c"] {
            l.push(End::Tail, e.as_bytes());
        }
        let pos = |from, rank, maxlen, count: usize| {
            let mut v = Vec::new();
            l.positions(b"c", from, rank, maxlen, |i| {
                v.push(i);
                v.len() < count
            });
            v
        };
        assert_eq!(pos(End::Head, 1, 0, 9), [2, 6, 7]);
        assert_eq!(pos(End::Head, 2, 0, 9), [6, 7]);
        assert_eq!(pos(End::Tail, 1, 0, 2), [7, 6]);
        assert_eq!(pos(End::Head, 1, 3, 9), [2]);
        assert_eq!(pos(End::Tail, 1, 3, 9), [7, 6]);
        assert_eq!(pos(End::Head, 4, 0, 9), Vec::<usize>::new());
    }

    #[test]
    fn dump_load_round_trip_and_malformed_input() {
        let mut l = List::default();
        for i in 0..3000 {
            l.push(End::Head, format!("{}", i * 7919 - 5000).as_bytes());
            l.push(End::Tail, format!("s{i}").as_bytes());
        }
        l.push(End::Tail, &vec![b'q'; 20_000]);
        let mut b = Vec::new();
        l.dump(&mut b);
        let back = List::load(&mut Reader(&b)).unwrap();
        back.check();
        assert_eq!(all(&back), all(&l));
        // Truncated or lying input is refused, not trusted.
        for cut in [0, 3, 4, 10, b.len() - 1] {
            let mut r = Reader(&b[..cut]);
            assert!(List::load(&mut r).is_none(), "cut at {cut}");
        }
        let mut huge = Vec::new();
        put_u32(&mut huge, u32::MAX);
        assert!(List::load(&mut Reader(&huge)).is_none());
        // Random bytes: refused or read, never a panic, and what is read is well formed.
        let mut seed = 42u64;
        for _ in 0..2000 {
            let n = (xorshift(&mut seed) % 40) as usize;
            let junk: Vec<u8> = (0..n).map(|_| (xorshift(&mut seed) % 7) as u8).collect();
            if let Some(l) = List::load(&mut Reader(&junk)) {
                l.check();
            }
        }
        let mut e = Vec::new();
        List::default().dump(&mut e);
        assert!(List::load(&mut Reader(&e)).unwrap().is_empty());
    }
}
