//! Entries and leaves: the packed buffers a small set is, and a tree's leaves are.

use super::*;

// An entry is `[tag][score][member length, LEB128][member]`. Tag 0..=8: the score is an
// integer, zigzag-encoded in `tag` little-endian bytes (most scores are integers, often
// timestamps); tag 9: an IEEE double in 8 bytes; tags 10..=255: a small integer score held
// by the tag itself (`tag - SMALL_BIAS`), so such an entry costs two bytes besides its
// member, as in a listpack.

pub(super) const TAG_F64: u8 = 9;
pub(super) const TAG_SMALL_MIN: u8 = 10;
/// The score a small-integer tag stands for is `tag - SMALL_BIAS`: -123 ..= 122.
pub(super) const SMALL_BIAS: i64 = 133;
/// The longest entry header: tag, 8 score bytes, 10 length bytes.
pub(super) const HEAD_MAX: usize = 19;
/// Integral scores below this magnitude are exact as integers.
pub(super) const INT_EXACT: f64 = 9_007_199_254_740_992.0; // 2^53

/// The sort order: score (no NaN is ever stored), then member bytes.
#[inline]
pub fn cmp_key(s1: f64, m1: &[u8], s2: f64, m2: &[u8]) -> Ordering {
    match s1.partial_cmp(&s2) {
        Some(Ordering::Equal) | None => m1.cmp(m2),
        Some(o) => o,
    }
}

pub(super) fn encode_head(score: f64, len: usize, head: &mut [u8; HEAD_MAX]) -> usize {
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
pub(super) fn read_at(buf: &[u8], off: usize) -> (f64, &[u8], usize) {
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
pub(super) fn heap(bytes: usize) -> usize {
    if bytes == 0 {
        0
    } else {
        ((bytes + 8 + 15) & !15).max(32)
    }
}

// ----- leaves: sorted packed buffers --------------------------------------------------------

#[derive(Debug, Clone, Default)]
pub(super) struct Leaf {
    pub(super) buf: Vec<u8>,
    pub(super) n: u32,
}

/// Entries in order.
#[derive(Clone)]
pub struct LeafIter<'a> {
    pub(super) buf: &'a [u8],
    pub(super) off: usize,
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
    pub(super) fn iter(&self) -> LeafIter<'_> {
        LeafIter {
            buf: &self.buf,
            off: 0,
        }
    }

    pub(super) fn mem(&self) -> usize {
        heap(self.buf.capacity())
    }

    /// Where `(score, member)` is: `Ok((index, offset))` when present, else `Err` with
    /// where it would go.
    pub(super) fn search(
        &self,
        score: f64,
        member: &[u8],
    ) -> Result<(usize, usize), (usize, usize)> {
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
    pub(super) fn find_member(&self, member: &[u8]) -> Option<(usize, usize, f64)> {
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
    pub(super) fn partition(&self, pred: &impl Fn(f64, &[u8]) -> bool) -> (usize, usize) {
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
    pub(super) fn offset(&self, idx: usize) -> usize {
        let mut off = 0;
        for _ in 0..idx {
            off = read_at(&self.buf, off).2;
        }
        off
    }

    pub(super) fn first(&self) -> Option<(f64, &[u8])> {
        self.iter().next()
    }

    pub(super) fn last(&self) -> Option<(f64, &[u8])> {
        self.iter().last()
    }

    /// Room for `add` more bytes: grow by an eighth at least, so slack stays small while
    /// most inserts find room.
    pub(super) fn reserve(&mut self, add: usize) {
        let need = self.buf.len() + add;
        if need > self.buf.capacity() {
            let grow = add.max(self.buf.len() / 8);
            self.buf.reserve_exact(grow);
        }
    }

    /// Give back slack an emptied buffer no longer needs.
    pub(super) fn trim(&mut self) {
        let len = self.buf.len();
        if self.buf.capacity() > len + len / 4 + 32 {
            self.buf.shrink_to(len + len / 8);
        }
    }

    pub(super) fn insert(&mut self, off: usize, score: f64, member: &[u8]) {
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

    pub(super) fn push(&mut self, score: f64, member: &[u8]) {
        self.insert(self.buf.len(), score, member);
    }

    /// Remove the entry at `off`.
    pub(super) fn remove(&mut self, off: usize) {
        let next = read_at(&self.buf, off).2;
        self.buf.drain(off..next);
        self.n -= 1;
        self.trim();
    }

    /// Remove entries `from..to` (indexes).
    pub(super) fn remove_range(&mut self, from: usize, to: usize) {
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
    pub(super) fn split(&mut self) -> Leaf {
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

    pub(super) fn append(&mut self, other: &Leaf) {
        self.reserve(other.buf.len());
        self.buf.extend_from_slice(&other.buf);
        self.n += other.n;
    }
}
