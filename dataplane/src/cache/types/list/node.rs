//! A node: one packed buffer of entries (a listpack), its entry codec and how nodes are built.

use super::*;

#[derive(Debug, Clone)]
pub(super) struct Node {
    /// `buf[head..]` holds the entries; `buf[..head]` is room for pushes at the front.
    pub(super) buf: Vec<u8>,
    pub(super) head: usize,
    pub(super) count: u32,
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
pub(super) struct Enc<'a> {
    pub(super) head: [u8; 9],
    pub(super) head_len: u8,
    pub(super) body: &'a [u8],
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

    pub(super) fn head(&self) -> &[u8] {
        &self.head[..self.head_len as usize]
    }

    /// Header and payload.
    pub(super) fn body_len(&self) -> usize {
        self.head_len as usize + self.body.len()
    }

    /// Bytes the entry takes in a node.
    pub(super) fn total(&self) -> usize {
        let b = self.body_len();
        b + backlen_len(b)
    }

    /// Is `raw` (an entry's header and payload) this element?
    #[inline]
    pub(super) fn matches(&self, raw: &[u8]) -> bool {
        let h = self.head_len as usize;
        raw.len() == self.body_len() && raw[..h] == *self.head() && raw[h..] == *self.body
    }

    /// Write the whole entry into `dst` (exactly `total()` bytes).
    pub(super) fn write(&self, dst: &mut [u8]) {
        let h = self.head_len as usize;
        let b = self.body_len();
        dst[..h].copy_from_slice(self.head());
        dst[h..b].copy_from_slice(self.body);
        write_backlen(b, &mut dst[b..]);
    }
}

/// Bytes of the smallest two's-complement form of `v`.
pub(super) fn int_bytes(v: i64) -> usize {
    (1..8)
        .find(|&n| {
            let bits = 8 * n as u32;
            let lo = -(1i64 << (bits - 1));
            let hi = (1i64 << (bits - 1)) - 1;
            (lo..=hi).contains(&v)
        })
        .unwrap_or(8)
}

pub(super) fn backlen_len(body: usize) -> usize {
    let mut n = 1;
    let mut v = body >> 7;
    while v > 0 {
        n += 1;
        v >>= 7;
    }
    n
}

/// The body length in the form read backwards from its last byte.
pub(super) fn write_backlen(body: usize, dst: &mut [u8]) {
    let n = dst.len();
    let mut v = body;
    for (i, d) in dst.iter_mut().rev().enumerate() {
        *d = (v & 0x7F) as u8 | if i + 1 < n { 0x80 } else { 0 };
        v >>= 7;
    }
}

/// Header and payload length of the entry starting at `data[0]`.
#[inline]
pub(super) fn body_len_at(data: &[u8]) -> usize {
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
pub(super) fn entry_at(data: &[u8], p: usize) -> (usize, &[u8]) {
    let b = body_len_at(&data[p..]);
    (p + b + backlen_len(b), &data[p..p + b])
}

/// Where the entry that ends at `e` starts, and its body.
#[inline]
pub(super) fn entry_before(data: &[u8], e: usize) -> (usize, &[u8]) {
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
pub(super) fn decode(raw: &[u8]) -> Elem<'_> {
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
    pub(super) fn with_capacity(cap: usize) -> Node {
        Node {
            buf: Vec::with_capacity(cap),
            head: 0,
            count: 0,
        }
    }

    #[inline]
    pub(super) fn data(&self) -> &[u8] {
        &self.buf[self.head..]
    }

    #[inline]
    pub(super) fn data_len(&self) -> usize {
        self.buf.len() - self.head
    }

    #[inline]
    pub(super) fn cap(&self) -> usize {
        self.buf.capacity()
    }

    /// Make room for `need` more bytes at the front or the back: grow by half (up to a full
    /// node), or move the data within the buffer when the room is on the other side.
    pub(super) fn make_room(&mut self, need: usize, front: bool) {
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

    pub(super) fn push_back(&mut self, e: &Enc) {
        let t = e.total();
        self.make_room(t, false);
        let at = self.buf.len();
        self.buf.resize(at + t, 0);
        e.write(&mut self.buf[at..]);
        self.count += 1;
    }

    pub(super) fn push_front(&mut self, e: &Enc) {
        let t = e.total();
        self.make_room(t, true);
        self.head -= t;
        let h = self.head;
        e.write(&mut self.buf[h..h + t]);
        self.count += 1;
    }

    /// Offset in `data()` of the entry `k` (< count), walking from the nearer end.
    pub(super) fn offset_of(&self, k: u32) -> usize {
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
    pub(super) fn shrink_if_sparse(&mut self) {
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
pub(super) enum Piece<'a, 'b> {
    Bytes(&'a [u8]),
    Entry(&'a Enc<'b>),
}

pub(super) fn build(pieces: &[Piece], count: u32, min_cap: usize) -> Node {
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
