//! Kafka `RecordBatch` v2 headers: parse, validate, assign offsets. Pure functions over the
//! bytes a producer sent; the batch is stored exactly as received except for its base
//! offset, which the broker assigns (the CRC-32C does not cover it, so it stays valid).
//!
//! ```text
//! offset  size  field
//!      0     8  baseOffset
//!      8     4  batchLength           (bytes after this field)
//!     12     4  partitionLeaderEpoch
//!     16     1  magic                 (2)
//!     17     4  crc                   (CRC-32C of bytes 21..end)
//!     21     2  attributes            (bits 0-2 compression, 4 transactional, 5 control)
//!     23     4  lastOffsetDelta
//!     27     8  baseTimestamp
//!     35     8  maxTimestamp
//!     43     8  producerId
//!     51     2  producerEpoch
//!     53     4  baseSequence
//!     57     4  recordCount
//!     61        records
//! ```

/// Size of the fixed header.
pub const HEADER_BYTES: usize = 61;
/// Bytes before `batchLength`'s span starts (baseOffset + batchLength).
pub const LOG_OVERHEAD: usize = 12;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    #[error("batch shorter than its {HEADER_BYTES}-byte header")]
    Short,
    #[error("batch length {0} is impossible")]
    Length(i32),
    #[error("batch declares {declared} bytes but {available} are present")]
    Truncated { declared: usize, available: usize },
    #[error("unsupported record batch magic {0} (only v2)")]
    Magic(i8),
    #[error("CRC mismatch: header says {stored:#010x}, bytes give {computed:#010x}")]
    Crc { stored: u32, computed: u32 },
    #[error("record count {count} does not match last offset delta {delta}")]
    Count { count: i32, delta: i32 },
    #[error(transparent)]
    Records(#[from] super::records::RecordsError),
}

/// The header fields pinion uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    /// Whole batch size in bytes, header included.
    pub size: usize,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub record_count: i32,
}

impl BatchHeader {
    pub fn last_offset(&self) -> i64 {
        self.base_offset + self.last_offset_delta as i64
    }

    pub fn compression(&self) -> u8 {
        (self.attributes & 0x7) as u8
    }

    pub fn is_control(&self) -> bool {
        self.attributes & 0x20 != 0
    }
}

fn i16_at(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}

fn i32_at(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn i64_at(b: &[u8], at: usize) -> i64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    i64::from_be_bytes(x)
}

/// Read the header of the batch at the front of `b` without checking its CRC. Returns the
/// header; `size` says how many bytes of `b` the batch spans (which may exceed `b.len()`).
pub fn peek(b: &[u8]) -> Result<BatchHeader, BatchError> {
    if b.len() < LOG_OVERHEAD {
        return Err(BatchError::Short);
    }
    let len = i32_at(b, 8);
    if len < (HEADER_BYTES - LOG_OVERHEAD) as i32 {
        return Err(BatchError::Length(len));
    }
    let size = LOG_OVERHEAD + len as usize;
    if b.len() < HEADER_BYTES {
        return Err(BatchError::Truncated {
            declared: size,
            available: b.len(),
        });
    }
    let magic = b[16] as i8;
    if magic != 2 {
        return Err(BatchError::Magic(magic));
    }
    Ok(BatchHeader {
        base_offset: i64_at(b, 0),
        size,
        attributes: i16_at(b, 21),
        last_offset_delta: i32_at(b, 23),
        base_timestamp: i64_at(b, 27),
        max_timestamp: i64_at(b, 35),
        producer_id: i64_at(b, 43),
        producer_epoch: i16_at(b, 51),
        base_sequence: i32_at(b, 53),
        record_count: i32_at(b, 57),
    })
}

/// Parse and fully validate the batch at the front of `b`: length within `b`, magic 2,
/// CRC-32C, and a record count that agrees with the last offset delta. Paired with the
/// same check at recovery, so a batch is checked before it is written and after it is read.
pub fn validate(b: &[u8]) -> Result<BatchHeader, BatchError> {
    let h = peek(b)?;
    if b.len() < h.size {
        return Err(BatchError::Truncated {
            declared: h.size,
            available: b.len(),
        });
    }
    let stored = u32::from_be_bytes([b[17], b[18], b[19], b[20]]);
    let computed = crc32c::crc32c(&b[21..h.size]);
    if stored != computed {
        return Err(BatchError::Crc { stored, computed });
    }
    // A compacted batch keeps its offsets and fewer records (Kafka's cleaner keeps the
    // original last offset delta), so a stored batch may hold fewer records than its span.
    if h.record_count < 0 || (h.record_count > 0 && h.last_offset_delta < h.record_count - 1) {
        return Err(BatchError::Count {
            count: h.record_count,
            delta: h.last_offset_delta,
        });
    }
    Ok(h)
}

/// [`validate`] for a batch a client produced, plus what Kafka's log validator checks of a
/// client's batch: at least one record, and records that are exactly the `recordCount`
/// well-formed records the header declares (walked, inflated where compressed; see
/// `records::check`). The header's count decides the offsets the batch takes, so a count
/// its records do not back would move the log's offsets by that much.
pub fn validate_produced(b: &[u8]) -> Result<BatchHeader, BatchError> {
    let h = validate(b)?;
    if h.record_count == 0 || h.last_offset_delta != h.record_count - 1 {
        return Err(BatchError::Count {
            count: 0,
            delta: h.last_offset_delta,
        });
    }
    super::records::check(&h, &b[HEADER_BYTES..h.size])?;
    Ok(h)
}

/// Give the batch its base offset (the broker's job on append).
pub fn set_base_offset(b: &mut [u8], offset: i64) {
    b[0..8].copy_from_slice(&offset.to_be_bytes());
}

/// Build a valid uncompressed batch of `values` (no keys, no headers), for tests and benches.
pub fn build(base_offset: i64, timestamp: i64, values: &[&[u8]]) -> Vec<u8> {
    fn varint(out: &mut Vec<u8>, v: i64) {
        let mut z = ((v << 1) ^ (v >> 63)) as u64;
        loop {
            let byte = (z & 0x7f) as u8;
            z >>= 7;
            if z == 0 {
                out.push(byte);
                break;
            }
            out.push(byte | 0x80);
        }
    }
    let mut records = Vec::new();
    for (i, v) in values.iter().enumerate() {
        let mut r = Vec::new();
        r.push(0); // attributes
        varint(&mut r, 0); // timestamp delta
        varint(&mut r, i as i64); // offset delta
        varint(&mut r, -1); // key: null
        varint(&mut r, v.len() as i64);
        r.extend_from_slice(v);
        varint(&mut r, 0); // headers
        varint(&mut records, r.len() as i64);
        records.extend_from_slice(&r);
    }
    let mut b = Vec::with_capacity(HEADER_BYTES + records.len());
    b.extend_from_slice(&base_offset.to_be_bytes());
    b.extend_from_slice(&((HEADER_BYTES - LOG_OVERHEAD + records.len()) as i32).to_be_bytes());
    b.extend_from_slice(&0i32.to_be_bytes()); // leader epoch
    b.push(2);
    b.extend_from_slice(&[0; 4]); // crc, filled below
    b.extend_from_slice(&0i16.to_be_bytes());
    b.extend_from_slice(&(values.len() as i32 - 1).to_be_bytes());
    b.extend_from_slice(&timestamp.to_be_bytes());
    b.extend_from_slice(&timestamp.to_be_bytes());
    b.extend_from_slice(&(-1i64).to_be_bytes()); // producer id
    b.extend_from_slice(&(-1i16).to_be_bytes());
    b.extend_from_slice(&(-1i32).to_be_bytes());
    b.extend_from_slice(&(values.len() as i32).to_be_bytes());
    b.extend_from_slice(&records);
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_batches_validate_and_keep_their_crc_across_offset_assignment() {
        let mut b = build(0, 1_700_000_000_000, &[b"a", b"bc", b"def"]);
        let h = validate(&b).unwrap();
        assert_eq!(
            (h.record_count, h.last_offset_delta, h.size),
            (3, 2, b.len())
        );
        set_base_offset(&mut b, 41);
        let h = validate(&b).unwrap();
        assert_eq!((h.base_offset, h.last_offset()), (41, 43));
    }

    #[test]
    fn every_corruption_is_caught() {
        let b = build(0, 0, &[b"hello", b"world"]);
        // Bytes 12..16 (the partition leader epoch) are outside the CRC on purpose: the
        // broker may set them. Every other byte after the base offset is checked.
        for i in (8..12).chain(16..b.len()) {
            let mut c = b.clone();
            c[i] ^= 0x40;
            assert!(validate(&c).is_err(), "flip at byte {i} went unnoticed");
        }
        for cut in 0..b.len() {
            assert!(validate(&b[..cut]).is_err(), "cut at {cut} went unnoticed");
        }
        let mut neg = b.clone();
        neg[8..12].copy_from_slice(&(-5i32).to_be_bytes());
        assert_eq!(validate(&neg), Err(BatchError::Length(-5)));
    }
}
