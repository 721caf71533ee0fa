//! Collection values: each key of a collection type names one [`Obj`] held by the store
//! (`Store::objects`), and the entry keeps only its index.
//!
//! Every type keeps its own memory charge up to date ([`Obj::cost`] is O(1) except where a
//! type says otherwise), and can write itself to and read itself from a self-describing byte
//! form ([`Obj::dump`], [`Obj::load`]): that form carries values between shards when a
//! command's keys live on several of them.

pub mod hash;
pub mod list;
pub mod set;
pub mod zset;

pub use hash::HashObj;
pub use list::List;
pub use set::Set;
pub use zset::Zset;

use super::entry::{KIND_HASH, KIND_LIST, KIND_SET, KIND_ZSET};

#[derive(Debug, Clone)]
pub enum Obj {
    Hash(HashObj),
    List(List),
    Set(Set),
    Zset(Zset),
}

impl Obj {
    /// The entry kind that names this object.
    pub fn kind(&self) -> u8 {
        match self {
            Obj::Hash(_) => KIND_HASH,
            Obj::List(_) => KIND_LIST,
            Obj::Set(_) => KIND_SET,
            Obj::Zset(_) => KIND_ZSET,
        }
    }

    /// An empty object of `kind`.
    pub fn empty(kind: u8) -> Option<Obj> {
        Some(match kind {
            KIND_HASH => Obj::Hash(HashObj::default()),
            KIND_LIST => Obj::List(List::default()),
            KIND_SET => Obj::Set(Set::default()),
            KIND_ZSET => Obj::Zset(Zset::default()),
            _ => return None,
        })
    }

    /// Bytes charged to `used_memory` for the object's contents.
    pub fn cost(&self) -> usize {
        match self {
            Obj::Hash(h) => h.cost(),
            Obj::List(l) => l.cost(),
            Obj::Set(s) => s.cost(),
            Obj::Zset(z) => z.cost(),
        }
    }

    /// Elements (fields, members, items).
    pub fn len(&self) -> usize {
        match self {
            Obj::Hash(h) => h.len(),
            Obj::List(l) => l.len(),
            Obj::Set(s) => s.len(),
            Obj::Zset(z) => z.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// OBJECT ENCODING's answer.
    pub fn encoding(&self) -> &'static str {
        match self {
            Obj::Hash(h) => h.encoding(),
            Obj::List(l) => l.encoding(),
            Obj::Set(s) => s.encoding(),
            Obj::Zset(z) => z.encoding(),
        }
    }

    /// Bytes of the object's inline form, when it has one: a collection in its small
    /// encoding (one packed buffer) can live inside its key's entry, as a string does
    /// (`Store::settle`), and costs no object slot and no heap block of its own.
    pub fn inline_len(&self) -> Option<usize> {
        match self {
            Obj::Hash(h) => h.inline_len(),
            Obj::List(l) => l.inline_len(),
            Obj::Set(s) => s.inline_len(),
            Obj::Zset(z) => z.inline_len(),
        }
    }

    /// Append the inline form (when [`Obj::inline_len`] says there is one): the small
    /// encoding's bytes as they are, behind what it needs to be rebuilt. Unlike
    /// [`Obj::dump`] this is not checked on the way back: it never leaves the store.
    pub fn write_inline(&self, out: &mut Vec<u8>) {
        match self {
            Obj::Hash(h) => h.write_inline(out),
            Obj::List(l) => l.write_inline(out),
            Obj::Set(s) => s.write_inline(out),
            Obj::Zset(z) => z.write_inline(out),
        }
    }

    /// The object of `kind` an inline form holds; None when the bytes are too short to be
    /// one.
    pub fn from_inline(kind: u8, b: &[u8]) -> Option<Obj> {
        Some(match kind {
            KIND_HASH => Obj::Hash(HashObj::from_inline(b)?),
            KIND_LIST => Obj::List(List::from_inline(b)?),
            KIND_SET => Obj::Set(Set::from_inline(b)?),
            KIND_ZSET => Obj::Zset(Zset::from_inline(b)?),
            _ => return None,
        })
    }

    /// Append the object's byte form (its kind first) to `out`.
    pub fn dump(&self, out: &mut Vec<u8>) {
        out.push(self.kind());
        match self {
            Obj::Hash(h) => hash::dump(h, out),
            Obj::List(l) => l.dump(out),
            Obj::Set(s) => s.dump(out),
            Obj::Zset(z) => z.dump(out),
        }
    }

    /// Read back what [`Obj::dump`] wrote; None when the bytes are not such a form.
    pub fn load(b: &[u8]) -> Option<Obj> {
        let (&kind, rest) = b.split_first()?;
        let mut r = Reader(rest);
        let obj = match kind {
            KIND_HASH => Obj::Hash(hash::load(&mut r)?),
            KIND_LIST => Obj::List(List::load(&mut r)?),
            KIND_SET => Obj::Set(Set::load(&mut r)?),
            KIND_ZSET => Obj::Zset(Zset::load(&mut r)?),
            _ => return None,
        };
        r.0.is_empty().then_some(obj)
    }
}

/// Writing the byte form: lengths as u32 LE, then bytes.
pub fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_u32(out, b.len() as u32);
    out.extend_from_slice(b);
}

pub fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// Reading the byte form; every read checks what is left first.
pub struct Reader<'a>(pub &'a [u8]);

impl<'a> Reader<'a> {
    pub fn u32(&mut self) -> Option<u32> {
        let (h, t) = self.0.split_first_chunk::<4>()?;
        self.0 = t;
        Some(u32::from_le_bytes(*h))
    }

    pub fn u64(&mut self) -> Option<u64> {
        let (h, t) = self.0.split_first_chunk::<8>()?;
        self.0 = t;
        Some(u64::from_le_bytes(*h))
    }

    pub fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.u32()? as usize;
        if n > self.0.len() {
            return None;
        }
        let (h, t) = self.0.split_at(n);
        self.0 = t;
        Some(h)
    }

    /// A count of items each at least `min_item` bytes long: refused when the rest cannot
    /// hold that many, so no allocation is sized by an unchecked number.
    pub fn count(&mut self, min_item: usize) -> Option<usize> {
        let n = self.u32()? as usize;
        (n.saturating_mul(min_item.max(1)) <= self.0.len()).then_some(n)
    }
}
