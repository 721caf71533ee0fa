//! Hash values: field → value.

use super::{put_bytes, put_u32, Reader};
use hashbrown::HashMap;

/// A hash value's fields. Charged per field in `used_bytes`.
pub type HashObj = HashMap<Box<[u8]>, Box<[u8]>>;

/// Memory charged per hash field besides its bytes.
pub const FIELD_OVERHEAD_BYTES: usize = 48;

/// The charge for a hash's contents. O(fields).
pub fn cost(h: &HashObj) -> usize {
    h.iter()
        .map(|(k, v)| k.len() + v.len() + FIELD_OVERHEAD_BYTES)
        .sum()
}

pub fn dump(h: &HashObj, out: &mut Vec<u8>) {
    put_u32(out, h.len() as u32);
    for (k, v) in h {
        put_bytes(out, k);
        put_bytes(out, v);
    }
}

pub fn load(r: &mut Reader) -> Option<HashObj> {
    let n = r.count(8)?;
    let mut h = HashObj::with_capacity(n);
    for _ in 0..n {
        let k = r.bytes()?;
        let v = r.bytes()?;
        h.insert(k.into(), v.into());
    }
    Some(h)
}
