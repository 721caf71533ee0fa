//! One key's entry, packed into a single allocation so that a small string costs one heap
//! block plus one table slot (Redis spends three: dict entry, key sds, value object).
//!
//! Layout of the bytes:
//! ```text
//! [0]      kind        0 string, 1 hash, 2 list, 3 set, 4 zset
//! [1]      flags       bit 0: has a TTL; bit 1: a collection held inline
//! [2..6]   key length  u32 LE
//! [6..10]  access      u32 LE: LRU/FIFO stamp or LFU counter, by eviction policy
//! [10..18] expire-at   u64 LE unix ms, present only with the TTL flag
//! key bytes, then the value: the string's bytes; for a collection, a u32 LE index into
//! the store's collection objects (`cache/types`), or, with the inline flag, the
//! collection's small encoding itself (`Obj::write_inline`)
//! ```

pub const KIND_STR: u8 = 0;
pub const KIND_HASH: u8 = 1;
pub const KIND_LIST: u8 = 2;
pub const KIND_SET: u8 = 3;
pub const KIND_ZSET: u8 = 4;
const FLAG_TTL: u8 = 1;
const FLAG_INLINE: u8 = 2;

/// The name TYPE answers for a kind.
pub fn kind_name(kind: u8) -> &'static str {
    match kind {
        KIND_STR => "string",
        KIND_HASH => "hash",
        KIND_LIST => "list",
        KIND_SET => "set",
        KIND_ZSET => "zset",
        _ => "none",
    }
}

/// The kind a TYPE name (as SCAN's TYPE option takes it) stands for.
pub fn kind_of_name(name: &[u8]) -> Option<u8> {
    [KIND_STR, KIND_HASH, KIND_LIST, KIND_SET, KIND_ZSET]
        .into_iter()
        .find(|&k| kind_name(k).as_bytes().eq_ignore_ascii_case(name))
}
const HEADER: usize = 10;

/// What a packed entry costs in memory besides its bytes: the allocator's rounding and
/// header, and the table slot (16-byte fat pointer + control byte, at typical load).
pub const OVERHEAD_BYTES: usize = 40;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry(Box<[u8]>);

impl Entry {
    fn build(kind: u8, key: &[u8], value: &[u8], expire_ms: Option<u64>, access: u32) -> Entry {
        Entry::build_flagged(kind, 0, key, value, expire_ms, access)
    }

    /// `flags` other than the TTL's, which follows `expire_ms`.
    fn build_flagged(
        kind: u8,
        flags: u8,
        key: &[u8],
        value: &[u8],
        expire_ms: Option<u64>,
        access: u32,
    ) -> Entry {
        let ttl_len = if expire_ms.is_some() { 8 } else { 0 };
        let mut v = Vec::with_capacity(HEADER + ttl_len + key.len() + value.len());
        v.push(kind);
        let ttl = if expire_ms.is_some() { FLAG_TTL } else { 0 };
        v.push((flags & !FLAG_TTL) | ttl);
        v.extend_from_slice(&(key.len() as u32).to_le_bytes());
        v.extend_from_slice(&access.to_le_bytes());
        if let Some(at) = expire_ms {
            v.extend_from_slice(&at.to_le_bytes());
        }
        v.extend_from_slice(key);
        v.extend_from_slice(value);
        Entry(v.into_boxed_slice())
    }

    pub fn string(key: &[u8], value: &[u8], expire_ms: Option<u64>, access: u32) -> Entry {
        Entry::build(KIND_STR, key, value, expire_ms, access)
    }

    pub fn hash(key: &[u8], index: u32, expire_ms: Option<u64>, access: u32) -> Entry {
        Entry::object(KIND_HASH, key, index, expire_ms, access)
    }

    /// An entry for a collection (any kind but [`KIND_STR`]) held at `index` in the store.
    pub fn object(kind: u8, key: &[u8], index: u32, expire_ms: Option<u64>, access: u32) -> Entry {
        debug_assert!(kind != KIND_STR);
        Entry::build(kind, key, &index.to_le_bytes(), expire_ms, access)
    }

    /// A collection (any kind but [`KIND_STR`]) whose small encoding `bytes`
    /// (`Obj::write_inline`) is held in the entry itself.
    pub fn inline(
        kind: u8,
        key: &[u8],
        bytes: &[u8],
        expire_ms: Option<u64>,
        access: u32,
    ) -> Entry {
        debug_assert!(kind != KIND_STR);
        Entry::build_flagged(kind, FLAG_INLINE, key, bytes, expire_ms, access)
    }

    /// Is the value a collection (held inline or named by index) rather than string bytes?
    #[inline]
    pub fn is_object(&self) -> bool {
        self.kind() != KIND_STR
    }

    /// Does the entry hold its collection inline ([`Entry::inline`]) rather than name it?
    #[inline]
    pub fn is_inline(&self) -> bool {
        self.0[1] & FLAG_INLINE != 0
    }

    /// Does the value name a collection in the store's object table?
    #[inline]
    pub fn names_object(&self) -> bool {
        self.is_object() && !self.is_inline()
    }

    #[inline]
    pub fn kind(&self) -> u8 {
        self.0[0]
    }

    #[inline]
    fn key_start(&self) -> usize {
        if self.0[1] & FLAG_TTL != 0 {
            HEADER + 8
        } else {
            HEADER
        }
    }

    #[inline]
    fn key_len(&self) -> usize {
        u32::from_le_bytes([self.0[2], self.0[3], self.0[4], self.0[5]]) as usize
    }

    #[inline]
    pub fn key(&self) -> &[u8] {
        let s = self.key_start();
        &self.0[s..s + self.key_len()]
    }

    #[inline]
    pub fn value(&self) -> &[u8] {
        &self.0[self.key_start() + self.key_len()..]
    }

    pub fn hash_index(&self) -> u32 {
        self.obj_index()
    }

    /// The store index of a collection's object.
    pub fn obj_index(&self) -> u32 {
        let v = self.value();
        u32::from_le_bytes([v[0], v[1], v[2], v[3]])
    }

    #[inline]
    pub fn expire_ms(&self) -> Option<u64> {
        if self.0[1] & FLAG_TTL != 0 {
            let mut b = [0u8; 8];
            b.copy_from_slice(&self.0[HEADER..HEADER + 8]);
            Some(u64::from_le_bytes(b))
        } else {
            None
        }
    }

    #[inline]
    pub fn is_expired(&self, now_ms: u64) -> bool {
        matches!(self.expire_ms(), Some(at) if at <= now_ms)
    }

    #[inline]
    pub fn access(&self) -> u32 {
        u32::from_le_bytes([self.0[6], self.0[7], self.0[8], self.0[9]])
    }

    #[inline]
    pub fn set_access(&mut self, v: u32) {
        self.0[6..10].copy_from_slice(&v.to_le_bytes());
    }

    /// The same key and value with another expiry.
    pub fn with_expire(&self, expire_ms: Option<u64>) -> Entry {
        Entry::build_flagged(
            self.kind(),
            self.0[1],
            self.key(),
            self.value(),
            expire_ms,
            self.access(),
        )
    }

    /// The same key and expiry with another string value.
    pub fn with_value(&self, value: &[u8]) -> Entry {
        Entry::build(KIND_STR, self.key(), value, self.expire_ms(), self.access())
    }

    /// A string's value bytes, to edit in place (SETBIT, SETRANGE, BITFIELD).
    #[inline]
    pub fn value_mut(&mut self) -> &mut [u8] {
        debug_assert!(self.kind() == KIND_STR);
        let start = self.key_start() + self.key_len();
        &mut self.0[start..]
    }

    /// Lengthen a string's value with zero bytes to `len` (nothing when it is that long
    /// already): one reallocation of the entry, which the allocator may do in place, as
    /// Redis's `sdsgrowzero` does.
    pub fn grow_value(&mut self, len: usize) {
        debug_assert!(self.kind() == KIND_STR);
        let want = self.key_start() + self.key_len() + len;
        if want <= self.0.len() {
            return;
        }
        let mut v = std::mem::take(&mut self.0).into_vec();
        v.reserve_exact(want - v.len());
        v.resize(want, 0);
        self.0 = v.into_boxed_slice();
    }

    /// Bytes this entry is charged for in `used_memory`.
    #[inline]
    pub fn cost(&self) -> usize {
        self.0.len() + OVERHEAD_BYTES
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_round_trip() {
        let mut e = Entry::string(b"key", b"value", None, 7);
        assert_eq!(
            (e.key(), e.value(), e.expire_ms(), e.access()),
            (&b"key"[..], &b"value"[..], None, 7)
        );
        e.set_access(9);
        let t = e.with_expire(Some(1234));
        assert_eq!(
            (t.key(), t.value(), t.expire_ms(), t.access()),
            (&b"key"[..], &b"value"[..], Some(1234), 9)
        );
        assert!(t.is_expired(1234) && !t.is_expired(1233));
        let v = t.with_value(b"");
        assert_eq!((v.value(), v.expire_ms()), (&b""[..], Some(1234)));
        let h = Entry::hash(b"h", 42, None, 0);
        assert_eq!((h.kind(), h.hash_index()), (KIND_HASH, 42));
        assert!(h.names_object() && !h.is_inline());
        let i = Entry::inline(KIND_SET, b"s", b"\x00\x02ab", None, 3).with_expire(Some(9));
        assert!(i.is_inline() && !i.names_object() && i.is_object());
        assert_eq!(
            (i.key(), i.value(), i.expire_ms(), i.access()),
            (&b"s"[..], &b"\x00\x02ab"[..], Some(9), 3)
        );
        assert!(!i.with_expire(None).names_object());
    }
}
