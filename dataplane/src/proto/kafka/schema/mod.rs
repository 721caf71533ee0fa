//! Every length in a Kafka request checked against the bytes that follow it, before the
//! request is decoded.
//!
//! Why: the `kafka-protocol` crate's array decoders call `Vec::with_capacity(n)` with `n` read
//! from the wire before reading a single element, so a 20-byte frame claiming 2^31 entries
//! asks for tens of gigabytes, and a failed allocation aborts the process. (Its string and
//! bytes decoders slice the input and allocate nothing; the crate's own fix is not released,
//! see docs/reliability.md.) [`check`] walks a request the way the crate's decoder will,
//! from a table of the request's wire layout per API and version ([`tables`], generated from
//! the crate's decoders by `tools/kafka_wire_schema.py`), and refuses any array whose count
//! times its element's least wire size, or any string, bytes or tagged field whose length,
//! exceeds the bytes left in the frame, and any request of more than
//! [`KAFKA_REQUEST_ELEMENTS_MAX`] array elements. A request that passes allocates, when
//! decoded, at most about 41 bytes per byte of the frame (an element takes at least one byte
//! on the wire and at most about 130 in memory; measured in `tests.rs`) and at most about
//! 130 MB; one that fails is closed without decoding.
//!
//! Pure over bytes, run by the shard that received the frame; O(frame) time, no allocation.
//! The walk must read exactly what the crate reads: the tests in `tests.rs` generate random
//! valid requests from each table for every version, and check that the crate decodes each
//! one and consumes exactly its bytes.

#[rustfmt::skip]
pub mod tables;
#[cfg(test)]
mod tests;

use kafka_protocol::messages::ApiKey;

use crate::limits::KAFKA_REQUEST_ELEMENTS_MAX;

/// `flexible` of an API without flexible versions.
pub const NEVER: i16 = i16::MAX;

/// A field's wire type. Compactness follows from the version: in flexible versions strings,
/// bytes and arrays carry varint lengths (plus one, zero meaning null) and every struct ends
/// with a tagged section.
#[derive(Debug, Clone, Copy)]
pub enum Ty {
    /// A fixed number of bytes: integers, booleans, floats, UUIDs.
    Fixed(usize),
    /// A string (int16 length, or compact).
    Str,
    /// Bytes or records (int32 length, or compact).
    Bytes,
    /// An array (int32 count, or compact) of one type.
    Array(&'static Ty),
    /// A struct: its fields in order, then (flexible versions) its tagged section.
    Struct(&'static [Field]),
}

/// One field of a struct, on the wire in versions `lo..=hi`; a tagged field lives in the
/// struct's tagged section under `tag`.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    pub name: &'static str,
    pub lo: i16,
    pub hi: i16,
    pub tag: Option<u32>,
    pub ty: Ty,
}

pub const fn f(name: &'static str, lo: i16, hi: i16, ty: Ty) -> Field {
    Field {
        name,
        lo,
        hi,
        tag: None,
        ty,
    }
}

pub const fn tagged(tag: u32, name: &'static str, lo: i16, hi: i16, ty: Ty) -> Field {
    Field {
        name,
        lo,
        hi,
        tag: Some(tag),
        ty,
    }
}

impl Field {
    fn on(&self, version: i16) -> bool {
        (self.lo..=self.hi).contains(&version)
    }
}

/// A request's layout: the versions the crate decodes, the first flexible one, the fields.
#[derive(Debug)]
pub struct Schema {
    pub key: ApiKey,
    pub lo: i16,
    pub hi: i16,
    pub flexible: i16,
    pub fields: &'static [Field],
}

pub const fn schema(
    key: ApiKey,
    lo: i16,
    hi: i16,
    flexible: i16,
    fields: &'static [Field],
) -> Schema {
    Schema {
        key,
        lo,
        hi,
        flexible,
        fields,
    }
}

/// The table for `key` at `version`, if there is one.
pub fn find(key: ApiKey, version: i16) -> Option<&'static Schema> {
    tables::ALL
        .iter()
        .copied()
        .find(|s| s.key == key && (s.lo..=s.hi).contains(&version))
}

/// Why a request was refused before decoding.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LengthError {
    #[error("no wire layout is known for this API and version")]
    NoSchema,
    #[error("{field}: {count} elements of at least {min} bytes each, {left} bytes left")]
    Array {
        field: &'static str,
        count: u64,
        min: usize,
        left: usize,
    },
    #[error("{field}: {len} bytes claimed, {left} left")]
    Past {
        field: &'static str,
        len: u64,
        left: usize,
    },
    #[error("{field}: negative length {len}")]
    Negative { field: &'static str, len: i64 },
    #[error("{field}: more than {max} array elements in one request")]
    Elements { field: &'static str, max: u64 },
}

/// The request header's fields (v1; v2 adds a tagged section). `client_id` keeps its int16
/// length even in v2, so the header is walked as not flexible.
const HEADER: &[Field] = &[
    f("request_api_key", 0, 2, Ty::Fixed(2)),
    f("request_api_version", 0, 2, Ty::Fixed(2)),
    f("correlation_id", 0, 2, Ty::Fixed(4)),
    f("client_id", 1, 2, Ty::Str),
];

/// Check every length of a request payload (header and body, without the size prefix) of
/// API `key` at `version` against the bytes after it, reading as the crate's decoder will.
/// Bytes after the body are allowed, as the decoder allows them.
pub fn check(key: ApiKey, version: i16, payload: &[u8]) -> Result<(), LengthError> {
    let schema = find(key, version).ok_or(LengthError::NoSchema)?;
    let header_version = key.request_header_version(version);
    let mut w = Walk {
        buf: payload,
        pos: 0,
        version: header_version,
        flexible: false,
        elements: 0,
    };
    w.fields(HEADER)?;
    if header_version >= 2 {
        w.flexible = true;
        w.tagged_section(&[])?;
    }
    w.version = version;
    w.flexible = version >= schema.flexible;
    w.fields(schema.fields)?;
    Ok(())
}

/// Least number of bytes a value of `ty` takes on the wire at `version`.
fn min_size(ty: &Ty, version: i16, flexible: bool) -> usize {
    match ty {
        Ty::Fixed(n) => *n,
        Ty::Str | Ty::Bytes | Ty::Array(_) if flexible => 1,
        Ty::Str => 2,
        Ty::Bytes | Ty::Array(_) => 4,
        Ty::Struct(fields) => {
            let own: usize = fields
                .iter()
                .filter(|f| f.tag.is_none() && f.on(version))
                .map(|f| min_size(&f.ty, version, flexible))
                .sum();
            own + usize::from(flexible)
        }
    }
}

/// A cursor over the payload that reads lengths exactly as kafka-protocol does.
struct Walk<'a> {
    buf: &'a [u8],
    pos: usize,
    version: i16,
    flexible: bool,
    /// Array elements so far, all arrays together.
    elements: u64,
}

impl<'a> Walk<'a> {
    fn left(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn take(&mut self, field: &'static str, n: u64) -> Result<&'a [u8], LengthError> {
        let left = self.left();
        if n > left as u64 {
            return Err(LengthError::Past {
                field,
                len: n,
                left,
            });
        }
        let start = self.pos;
        self.pos += n as usize;
        Ok(&self.buf[start..self.pos])
    }

    /// A big-endian signed integer of `width` bytes (2 or 4).
    fn int(&mut self, field: &'static str, width: usize) -> Result<i64, LengthError> {
        let b = self.take(field, width as u64)?;
        // Start from all ones for a negative number, so the bytes shifted in sign-extend it.
        let sign = -i64::from(b.first().is_some_and(|&x| x >= 0x80));
        Ok(b.iter().fold(sign, |acc, &x| (acc << 8) | x as i64))
    }

    /// An unsigned varint as the crate reads it: at most five bytes, bits past 32 dropped.
    fn uvarint(&mut self, field: &'static str) -> Result<u32, LengthError> {
        let mut value = 0u32;
        for i in 0..5 {
            let b = self.take(field, 1)?[0] as u32;
            value |= (b & 0x7f) << (i * 7);
            if b < 0x80 {
                break;
            }
        }
        Ok(value)
    }

    /// A length or count: int16/int32, or in flexible versions a varint holding it plus one.
    /// `None` is null.
    fn len(&mut self, field: &'static str, width: usize) -> Result<Option<u64>, LengthError> {
        let n = if self.flexible {
            self.uvarint(field)? as i64 - 1
        } else {
            self.int(field, width)?
        };
        match n {
            -1 => Ok(None),
            n if n < -1 => Err(LengthError::Negative { field, len: n }),
            n => Ok(Some(n as u64)),
        }
    }

    fn fields(&mut self, fields: &'static [Field]) -> Result<(), LengthError> {
        let v = self.version;
        for f in fields.iter().filter(|f| f.tag.is_none() && f.on(v)) {
            self.value(f.name, &f.ty)?;
        }
        if self.flexible {
            self.tagged_section(fields)?;
        }
        Ok(())
    }

    /// A count, then (tag, size, value) triples. The crate decodes a known tag's value from
    /// where it starts, whatever its size says, and skips an unknown one by its size.
    fn tagged_section(&mut self, fields: &'static [Field]) -> Result<(), LengthError> {
        let count = self.uvarint("tagged fields")?;
        for _ in 0..count {
            let tag = self.uvarint("tag")?;
            let size = self.uvarint("tagged field size")?;
            let v = self.version;
            match fields.iter().find(|f| f.tag == Some(tag) && f.on(v)) {
                Some(f) => self.value(f.name, &f.ty)?,
                None => {
                    self.take("tagged field", size as u64)?;
                }
            }
        }
        Ok(())
    }

    fn value(&mut self, field: &'static str, ty: &'static Ty) -> Result<(), LengthError> {
        match ty {
            Ty::Fixed(n) => {
                self.take(field, *n as u64)?;
            }
            Ty::Str => {
                if let Some(n) = self.len(field, 2)? {
                    self.take(field, n)?;
                }
            }
            Ty::Bytes => {
                if let Some(n) = self.len(field, 4)? {
                    self.take(field, n)?;
                }
            }
            Ty::Struct(fields) => self.fields(fields)?,
            Ty::Array(elem) => {
                let Some(count) = self.len(field, 4)? else {
                    return Ok(());
                };
                // Every element takes at least a byte, even one whose fields are all absent
                // in this version: the count alone can then never outgrow the frame.
                let min = min_size(elem, self.version, self.flexible).max(1);
                let left = self.left();
                if count.saturating_mul(min as u64) > left as u64 {
                    return Err(LengthError::Array {
                        field,
                        count,
                        min,
                        left,
                    });
                }
                self.elements += count;
                if self.elements > KAFKA_REQUEST_ELEMENTS_MAX {
                    return Err(LengthError::Elements {
                        field,
                        max: KAFKA_REQUEST_ELEMENTS_MAX,
                    });
                }
                for _ in 0..count {
                    self.value(field, elem)?;
                }
            }
        }
        Ok(())
    }
}
