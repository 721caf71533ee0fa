//! Small sets of strings: members packed one after another in one buffer.

use super::*;

/// Members in one buffer, each as a length byte and its bytes, in insertion order.
#[derive(Debug, Clone, Default)]
pub(super) struct Pack {
    pub(super) count: u32,
    pub(super) bytes: Vec<u8>,
}

/// The member at the front of `b` (a length byte, then the bytes).
pub(super) fn pack_next(b: &[u8]) -> Option<&[u8]> {
    let (&n, rest) = b.split_first()?;
    rest.get(..n as usize)
}

impl Pack {
    #[cfg(test)]
    pub(super) fn iter(&self) -> impl Iterator<Item = &[u8]> + '_ {
        let mut off = 0;
        std::iter::from_fn(move || {
            let m = pack_next(self.bytes.get(off..)?)?;
            off += 1 + m.len();
            Some(m)
        })
    }

    /// The byte offset of `m`, if it is a member.
    pub(super) fn find(&self, m: &[u8]) -> Option<usize> {
        let mut off = 0;
        while let Some(x) = self.bytes.get(off..).and_then(pack_next) {
            if x == m {
                return Some(off);
            }
            off += 1 + x.len();
        }
        None
    }

    /// The byte offset of the `i`-th member.
    pub(super) fn offset_of(&self, i: usize) -> usize {
        let mut off = 0;
        for _ in 0..i {
            off += 1 + self.bytes[off] as usize;
        }
        off
    }

    pub(super) fn member_at_offset(&self, off: usize) -> &[u8] {
        self.bytes
            .get(off..)
            .and_then(pack_next)
            .unwrap_or_default()
    }

    /// Append a member (the caller checked it is new and fits).
    pub(super) fn push(&mut self, m: &[u8]) {
        debug_assert!(m.len() <= SET_PACK_MEMBER_BYTES_MAX);
        let need = 1 + m.len();
        if self.bytes.capacity() - self.bytes.len() < need {
            self.bytes.reserve_exact(need.max(self.bytes.len() / 8));
        }
        self.bytes.push(m.len() as u8);
        self.bytes.extend_from_slice(m);
        self.count += 1;
    }

    pub(super) fn remove_at_offset(&mut self, off: usize) {
        let n = self.bytes[off] as usize;
        self.bytes.drain(off..off + 1 + n);
        self.count -= 1;
        shrink(&mut self.bytes);
    }
}
