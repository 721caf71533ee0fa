//! Small sets of integers: sorted, packed at the narrowest width that holds them.

/// Sorted distinct integers, each `w()` bytes little-endian.
#[derive(Debug, Clone, Default)]
pub(super) struct Ints {
    /// 2, 4 or 8 (0 in a fresh empty set, read as 2).
    pub(super) width: u8,
    pub(super) bytes: Vec<u8>,
}

/// The narrowest width that holds `v`.
pub(super) fn width_of(v: i64) -> usize {
    if i64::from(v as i16) == v {
        2
    } else if i64::from(v as i32) == v {
        4
    } else {
        8
    }
}

/// Sign-extend a little-endian integer of 1 to 8 bytes.
pub(super) fn decode_int(b: &[u8]) -> i64 {
    let mut full = [0u8; 8];
    full[..b.len()].copy_from_slice(b);
    let shift = 64 - 8 * b.len() as u32;
    (i64::from_le_bytes(full) << shift) >> shift
}

impl Ints {
    pub(super) fn w(&self) -> usize {
        (self.width as usize).max(2)
    }

    pub(super) fn len(&self) -> usize {
        self.bytes.len() / self.w()
    }

    pub(super) fn get(&self, i: usize) -> i64 {
        let w = self.w();
        decode_int(&self.bytes[i * w..(i + 1) * w])
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = i64> + '_ {
        self.bytes.chunks_exact(self.w()).map(decode_int)
    }

    pub(super) fn search(&self, v: i64) -> Result<usize, usize> {
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

    pub(super) fn insert(&mut self, v: i64) -> bool {
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

    pub(super) fn remove_at(&mut self, pos: usize) {
        let w = self.w();
        self.bytes.drain(pos * w..(pos + 1) * w);
        shrink(&mut self.bytes);
    }
}

/// Give a small set's block back when it is mostly empty.
pub(super) fn shrink(v: &mut Vec<u8>) {
    if v.capacity() > 2 * v.len() + 16 {
        v.shrink_to(v.len() + v.len() / 8);
    }
}
