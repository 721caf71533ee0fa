//! Inside a stored batch: the records' offsets and timestamps, for ListOffsets by timestamp,
//! which answers the first *record* at or after the time (as Kafka does), not the batch.
//!
//! A record is `length, attributes, timestampDelta, offsetDelta, key, value, headers`, all
//! lengths and deltas zig-zag varints; only the first four are read, the rest skipped.
//! Compressed batches (gzip, snappy in Kafka's xerial framing or raw, lz4 frames, zstd) are
//! inflated as a stream, never whole, and at most [`TIME_LOOKUP_INFLATED_BYTES_MAX`] bytes
//! of one batch: a batch that inflates to more (or does not inflate) is answered to the
//! batch, its base offset. Pure over bytes; runs on the partition's owner shard.
//!
//! On produce, [`check`] walks every record of a batch (inflated as a stream, at most
//! [`PRODUCE_INFLATED_BYTES_MAX`]) and refuses a batch whose records are not exactly its
//! `recordCount` well-formed records, as Kafka's `DefaultRecord.readFrom` and its
//! "records still remaining" check do: the header's count is what offsets are assigned by.

use std::io::{self, BufRead, BufReader, Read};

use super::batch::{self, BatchHeader, HEADER_BYTES};
use crate::limits::{
    PRODUCE_INFLATED_BYTES_MAX, PRODUCE_ZSTD_WINDOW_LOG_MAX, SNAPPY_INFLATE_RATIO_MAX,
    TIME_LOOKUP_INFLATED_BYTES_MAX,
};

/// Attribute bit: every record's timestamp is the batch's max timestamp (LogAppendTime).
const LOG_APPEND_TIME: i16 = 0x8;

/// The first record at or after `ts` in the batches of `buf`: its offset and timestamp.
/// Batches whose newest timestamp is older are skipped unread. Where a batch's records
/// cannot be read (see the module header), the batch's base offset answers.
pub fn first_at_or_after(buf: &[u8], ts: i64) -> Option<(i64, i64)> {
    let mut pos = 0;
    while pos + HEADER_BYTES <= buf.len() {
        let h = batch::peek(&buf[pos..]).ok()?;
        let end = (pos + h.size).min(buf.len());
        if h.max_timestamp >= ts {
            if h.attributes & LOG_APPEND_TIME != 0 {
                return Some((h.base_offset, h.max_timestamp));
            }
            match find_in_batch(&h, &buf[pos + HEADER_BYTES..end], ts) {
                Ok(Some(found)) => return Some(found),
                // Every record is older than the header says: on to the next batch.
                Ok(None) => {}
                Err(e) => {
                    tracing::debug!(offset = h.base_offset, error = %e, "records of a batch unreadable; answering to the batch");
                    let t = if h.base_timestamp >= ts {
                        h.base_timestamp
                    } else {
                        h.max_timestamp
                    };
                    return Some((h.base_offset, t));
                }
            }
        }
        pos += h.size;
    }
    None
}

/// The first record of batch `h` (records section `body`) at or after `ts`.
fn find_in_batch(h: &BatchHeader, body: &[u8], ts: i64) -> io::Result<Option<(i64, i64)>> {
    let limit = TIME_LOOKUP_INFLATED_BYTES_MAX as u64;
    match h.compression() {
        0 => scan(body, h, ts),
        1 => scan(flate2::read::MultiGzDecoder::new(body).take(limit), h, ts),
        2 => scan(Snappy::new(body, limit)?, h, ts),
        3 => scan(lz4::Decoder::new(body)?.take(limit), h, ts),
        4 => scan(zstd::stream::read::Decoder::new(body)?.take(limit), h, ts),
        c => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("compression {c}"),
        )),
    }
}

/// Read `h.record_count` records from `r`; the first with a timestamp of at least `ts`.
fn scan(r: impl Read, h: &BatchHeader, ts: i64) -> io::Result<Option<(i64, i64)>> {
    let mut r = BufReader::new(r);
    for _ in 0..h.record_count {
        let len = varint(&mut r)?;
        let mut counted = Counted {
            inner: &mut r,
            read: 0,
        };
        let mut attributes = [0u8; 1];
        counted.read_exact(&mut attributes)?;
        let t = h.base_timestamp.wrapping_add(varint(&mut counted)?);
        // A stored delta is any varint (batches written before produce walked the
        // records); one past i64 answers to the batch (found by tools/fuzz.sh).
        let offset = h
            .base_offset
            .checked_add(varint(&mut counted)?)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "record offset"))?;
        if t >= ts {
            return Ok(Some((offset, t)));
        }
        let rest = u64::try_from(len)
            .ok()
            .and_then(|l| l.checked_sub(counted.read))
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "record length"))?;
        if io::copy(&mut (&mut r).take(rest), &mut io::sink())? != rest {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
    }
    Ok(None)
}

/// Why a batch's records were refused on produce.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordsError {
    /// The records disagree with the header or are malformed (Kafka: INVALID_RECORD).
    #[error("record {index}: {why}")]
    Invalid { index: i32, why: &'static str },
    /// The records cannot be inflated, or inflate past the bound (Kafka: CORRUPT_MESSAGE).
    #[error("records cannot be inflated: {0}")]
    Inflate(String),
}

/// Check that `body` (the records section of batch `h`) holds exactly `h.record_count`
/// well-formed records, with offset deltas 0, 1, 2, ... and nothing after the last.
pub fn check(h: &BatchHeader, body: &[u8]) -> Result<(), RecordsError> {
    check_within(h, body, PRODUCE_INFLATED_BYTES_MAX as u64)
}

/// [`check`], inflating at most `limit` bytes.
fn check_within(h: &BatchHeader, body: &[u8], limit: u64) -> Result<(), RecordsError> {
    let inflate = |e: io::Error| RecordsError::Inflate(e.to_string());
    // Inflated streams are read through a buffer; plain records are walked in place.
    match h.compression() {
        0 => walk(body, h.record_count, false),
        1 => walk(
            buffered(flate2::read::MultiGzDecoder::new(body).take(limit)),
            h.record_count,
            true,
        ),
        2 => walk(
            buffered(Snappy::new(body, limit).map_err(inflate)?),
            h.record_count,
            true,
        ),
        3 => walk(
            buffered(lz4::Decoder::new(body).map_err(inflate)?.take(limit)),
            h.record_count,
            true,
        ),
        4 => ZSTD.with_borrow_mut(|dctx| {
            let dctx = dctx.get_or_insert_with(zstd_context);
            let zstd = zstd::stream::read::Decoder::with_context(body, dctx);
            walk(buffered(zstd.take(limit)), h.record_count, true)
        }),
        _ => Err(RecordsError::Inflate("unknown compression codec".into())),
    }
}

thread_local! {
    /// The shard's zstd context, kept between batches: creating one per batch was a
    /// visible share of a zstd produce's profile.
    static ZSTD: std::cell::RefCell<Option<zstd::zstd_safe::DCtx<'static>>> =
        const { std::cell::RefCell::new(None) };
}

/// A zstd context whose window (the memory it keeps) is at most
/// 2^[`PRODUCE_ZSTD_WINDOW_LOG_MAX`] bytes; a frame asking more does not inflate.
fn zstd_context() -> zstd::zstd_safe::DCtx<'static> {
    let mut d = zstd::zstd_safe::DCtx::create();
    let _ = d.set_parameter(zstd::zstd_safe::DParameter::WindowLogMax(
        PRODUCE_ZSTD_WINDOW_LOG_MAX,
    ));
    d
}

/// The buffer an inflated batch's records are read through.
const RECORDS_READ_BUFFER_BYTES: usize = 16 << 10;

fn buffered<R: Read>(r: R) -> BufReader<R> {
    BufReader::with_capacity(RECORDS_READ_BUFFER_BYTES, r)
}

/// Walk `count` records of `r`, then require its end. `inflated` says an early end may be
/// the inflate bound rather than missing records.
fn walk(mut r: impl BufRead, count: i32, inflated: bool) -> Result<(), RecordsError> {
    for index in 0..count {
        let mut w = Walker {
            r: &mut r,
            read: 0,
            len: u64::MAX,
            index,
            inflated,
        };
        let len = w.varint()?;
        if len <= 0 || len > i64::from(i32::MAX) {
            return Err(w.invalid("invalid record size"));
        }
        (w.read, w.len) = (0, len as u64);
        w.byte()?; // attributes
        w.varint()?; // timestamp delta
        if w.varint()? != i64::from(index) {
            return Err(w.invalid("offset delta out of sequence"));
        }
        let key = w.varint()?;
        w.bytes(key, true)?;
        let value = w.varint()?;
        w.bytes(value, true)?;
        let headers = w.varint()?;
        if !(0..=i64::from(i32::MAX)).contains(&headers) {
            return Err(w.invalid("invalid header count"));
        }
        for _ in 0..headers {
            let k = w.varint()?;
            w.bytes(k, false)?;
            let v = w.varint()?;
            w.bytes(v, true)?;
        }
        if w.read != len as u64 {
            return Err(w.invalid("record size disagrees with its fields"));
        }
    }
    match r.fill_buf() {
        Ok([]) => Ok(()),
        Ok(_) => Err(RecordsError::Invalid {
            index: count,
            why: "bytes after the last record the count declares",
        }),
        Err(e) => Err(RecordsError::Inflate(e.to_string())),
    }
}

/// One record's reader: counts the bytes read since `read` was last reset, and keeps them
/// within the record's length `len`.
struct Walker<'a, R> {
    r: &'a mut R,
    read: u64,
    len: u64,
    index: i32,
    inflated: bool,
}

impl<R: BufRead> Walker<'_, R> {
    fn invalid(&self, why: &'static str) -> RecordsError {
        RecordsError::Invalid {
            index: self.index,
            why,
        }
    }

    fn ended(&self) -> RecordsError {
        if self.inflated {
            RecordsError::Inflate("records end early, or inflate past the bound".into())
        } else {
            self.invalid("records end before the count the batch declares")
        }
    }

    fn fill(&mut self) -> Result<&[u8], RecordsError> {
        match self.r.fill_buf() {
            Ok(b) => Ok(b),
            Err(e) => Err(RecordsError::Inflate(e.to_string())),
        }
    }

    fn byte(&mut self) -> Result<u8, RecordsError> {
        if self.read >= self.len {
            return Err(self.invalid("record size disagrees with its fields"));
        }
        let b = match self.fill()?.first() {
            Some(&b) => b,
            None => return Err(self.ended()),
        };
        self.r.consume(1);
        self.read += 1;
        Ok(b)
    }

    /// A zig-zag varint of at most 64 bits (Kafka's varlong; varints fit in it).
    fn varint(&mut self) -> Result<i64, RecordsError> {
        let mut z: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            z |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok((z >> 1) as i64 ^ -((z & 1) as i64));
            }
        }
        Err(self.invalid("varint too long"))
    }

    /// Skip a field of `len` bytes; -1 is null, where `nullable`.
    fn bytes(&mut self, len: i64, nullable: bool) -> Result<(), RecordsError> {
        if len == -1 && nullable {
            return Ok(());
        }
        if !(0..=i64::from(i32::MAX)).contains(&len) {
            return Err(self.invalid("invalid field length"));
        }
        if self.read + len as u64 > self.len {
            return Err(self.invalid("record size disagrees with its fields"));
        }
        let mut left = len as u64;
        while left > 0 {
            let have = self.fill()?.len() as u64;
            if have == 0 {
                return Err(self.ended());
            }
            let k = have.min(left);
            self.r.consume(k as usize);
            left -= k;
        }
        self.read += len as u64;
        Ok(())
    }
}

/// A reader that counts the bytes read through it.
struct Counted<R> {
    inner: R,
    read: u64,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        Ok(n)
    }
}

/// A zig-zag varint of at most 64 bits.
fn varint(r: &mut impl Read) -> io::Result<i64> {
    let mut z: u64 = 0;
    for shift in (0..64).step_by(7) {
        let mut b = [0u8; 1];
        r.read_exact(&mut b)?;
        z |= u64::from(b[0] & 0x7f) << shift;
        if b[0] & 0x80 == 0 {
            return Ok((z >> 1) as i64 ^ -((z & 1) as i64));
        }
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidData,
        "varint too long",
    ))
}

/// The records section `body` of batch `h`, inflated whole (compaction rewrites records):
/// at most `limit` bytes, past which it is an error. An uncompressed one is copied.
pub fn inflate(h: &BatchHeader, body: &[u8], limit: u64) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    let cap = limit.saturating_add(1);
    match h.compression() {
        0 => out.extend_from_slice(body),
        1 => {
            flate2::read::MultiGzDecoder::new(body)
                .take(cap)
                .read_to_end(&mut out)?;
        }
        2 => {
            Snappy::new(body, cap)?.read_to_end(&mut out)?;
        }
        3 => {
            lz4::Decoder::new(body)?.take(cap).read_to_end(&mut out)?;
        }
        4 => ZSTD.with_borrow_mut(|dctx| {
            let dctx = dctx.get_or_insert_with(zstd_context);
            zstd::stream::read::Decoder::with_context(body, dctx)
                .take(cap)
                .read_to_end(&mut out)
                .map(|_| ())
        })?,
        c => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("compression {c}"),
            ))
        }
    }
    if out.len() as u64 > limit {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "records inflate past the bound",
        ));
    }
    Ok(out)
}

/// Kafka's snappy: xerial framing (a magic header, then blocks of `[length: i32][raw snappy]`)
/// or, without the magic, one raw snappy block. Each block is inflated when reached, its
/// size checked against what is left of `limit` first.
struct Snappy<'a> {
    /// Blocks not yet inflated.
    rest: &'a [u8],
    framed: bool,
    block: io::Cursor<Vec<u8>>,
    left: u64,
}

const XERIAL_MAGIC: &[u8] = b"\x82SNAPPY\x00";
/// Magic, version and compatible version.
const XERIAL_HEADER_BYTES: usize = 16;

impl<'a> Snappy<'a> {
    fn new(body: &'a [u8], limit: u64) -> io::Result<Snappy<'a>> {
        let framed = body.starts_with(XERIAL_MAGIC);
        let rest = if framed {
            body.get(XERIAL_HEADER_BYTES..)
                .ok_or(io::ErrorKind::UnexpectedEof)?
        } else {
            body
        };
        Ok(Snappy {
            rest,
            framed,
            block: io::Cursor::new(Vec::new()),
            left: limit,
        })
    }

    /// Inflate the next block; false when none is left.
    fn next_block(&mut self) -> io::Result<bool> {
        if self.rest.is_empty() {
            return Ok(false);
        }
        let raw = if self.framed {
            let (len, rest) = self
                .rest
                .split_first_chunk::<4>()
                .ok_or(io::ErrorKind::UnexpectedEof)?;
            let len = u32::from_be_bytes(*len) as usize;
            let raw = rest.get(..len).ok_or(io::ErrorKind::UnexpectedEof)?;
            self.rest = &rest[len..];
            raw
        } else {
            std::mem::take(&mut self.rest)
        };
        let bad = |e: snap::Error| io::Error::new(io::ErrorKind::InvalidData, e);
        let n = snap::raw::decompress_len(raw).map_err(bad)?;
        // The length is the block's claim: no more than its bytes can inflate to, so a few
        // bytes cannot make us allocate up to the bound (found by tools/fuzz.sh).
        if n as u64 > (raw.len() as u64).saturating_mul(SNAPPY_INFLATE_RATIO_MAX) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "snappy block claims more than its bytes inflate to",
            ));
        }
        if n as u64 > self.left {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "batch inflates past the lookup bound",
            ));
        }
        self.left -= n as u64;
        let mut out = std::mem::take(self.block.get_mut());
        out.resize(n, 0);
        let got = snap::raw::Decoder::new()
            .decompress(raw, &mut out)
            .map_err(bad)?;
        out.truncate(got);
        self.block = io::Cursor::new(out);
        Ok(true)
    }
}

impl Read for Snappy<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let n = self.block.read(buf)?;
            if n > 0 || buf.is_empty() {
                return Ok(n);
            }
            if !self.next_block()? {
                return Ok(0);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::protocol::StrBytes;
    use kafka_protocol::records::{
        Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };

    /// One batch of `n` records, record i at `t0 + 1000 * i`, with `compression`.
    fn timed_batch(base: i64, n: i64, t0: i64, compression: Compression) -> Vec<u8> {
        let records: Vec<Record> = (0..n)
            .map(|i| Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: 0,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: TimestampType::Creation,
                offset: base + i,
                // One batch needs offset - sequence alike for all its records.
                sequence: i as i32,
                timestamp: t0 + 1000 * i,
                key: Some(format!("key-{i}").into_bytes().into()),
                value: Some(vec![b'v'; 300 + i as usize].into()),
                headers: [(StrBytes::from_static_str("h"), Some(vec![1u8, 2].into()))]
                    .into_iter()
                    .collect(),
            })
            .collect();
        let mut out = bytes::BytesMut::new();
        let opts = RecordEncodeOptions {
            version: 2,
            compression,
        };
        RecordBatchEncoder::encode(&mut out, &records, &opts).unwrap();
        out.to_vec()
    }

    #[test]
    fn finds_the_first_record_at_or_after_the_time_with_every_codec() {
        let t0 = 1_700_000_000_000;
        for c in [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let mut log = timed_batch(0, 10, t0, c);
            assert_eq!(batch::peek(&log).unwrap().size, log.len(), "one batch");
            log.extend(timed_batch(10, 10, t0 + 10_000, c));
            for (ts, want) in [
                (0, Some((0, t0))),
                (t0, Some((0, t0))),
                (t0 + 3_500, Some((4, t0 + 4_000))),
                (t0 + 9_000, Some((9, t0 + 9_000))),
                (t0 + 9_001, Some((10, t0 + 10_000))),
                (t0 + 15_500, Some((16, t0 + 16_000))),
                (t0 + 19_001, None),
            ] {
                assert_eq!(first_at_or_after(&log, ts), want, "{c:?} ts {ts}");
            }
        }
    }

    /// Found by the `record_batch` fuzz target: a record offset past i64 overflowed the
    /// time lookup (a panic with overflow checks, a wrapped offset without).
    #[test]
    fn a_record_offset_past_i64_answers_to_the_batch() {
        let t0 = 1_700_000_000_000;
        let mut log = timed_batch(0, 10, t0, Compression::None);
        let base = i64::MAX - 2;
        batch::set_base_offset(&mut log, base);
        // Record 3 would be at i64::MAX + 1; the answer is the batch's base offset.
        assert_eq!(first_at_or_after(&log, t0 + 5000), Some((base, t0 + 9000)));
        // Records before the overflow are still found.
        assert_eq!(
            first_at_or_after(&log, t0 + 1000),
            Some((base + 1, t0 + 1000))
        );
    }

    #[test]
    fn unreadable_records_answer_to_the_batch() {
        let t0 = 1_000_000;
        let mut b = timed_batch(0, 10, t0, Compression::Gzip);
        // Break the compressed records (the CRC is not what this reads).
        let n = b.len();
        for x in &mut b[HEADER_BYTES + 10..n - 4] {
            *x = 0x5a;
        }
        assert_eq!(first_at_or_after(&b, t0 + 3_500), Some((0, t0 + 9_000)));
        // Truncated plain records too.
        let b = timed_batch(0, 10, t0, Compression::None);
        let cut = &b[..b.len() - 500];
        let mut fixed = cut.to_vec();
        let len = (fixed.len() - 12) as i32;
        fixed[8..12].copy_from_slice(&len.to_be_bytes());
        assert_eq!(first_at_or_after(&fixed, t0 + 8_500), Some((0, t0 + 9_000)));
    }

    /// `b` with its header's record count and last offset delta set to `count`, CRC fixed.
    fn recount(mut b: Vec<u8>, count: i32) -> Vec<u8> {
        b[23..27].copy_from_slice(&(count - 1).to_be_bytes());
        b[57..61].copy_from_slice(&count.to_be_bytes());
        let crc = crc32c::crc32c(&b[21..]);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        b
    }

    fn checked(b: &[u8]) -> Result<(), RecordsError> {
        let h = batch::validate(b).unwrap();
        check(&h, &b[HEADER_BYTES..h.size])
    }

    #[test]
    fn produced_records_are_walked_with_every_codec() {
        for c in [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let b = timed_batch(0, 10, 1_000, c);
            assert_eq!(checked(&b), Ok(()), "{c:?}");
            // A count the records do not back, either way.
            let invalid = |r: Result<(), RecordsError>| {
                matches!(r, Err(RecordsError::Invalid { .. }))
                    || (c != Compression::None && matches!(r, Err(RecordsError::Inflate(_))))
            };
            assert!(invalid(checked(&recount(b.clone(), 11))), "{c:?} 11");
            assert!(
                matches!(
                    checked(&recount(b.clone(), 9)),
                    Err(RecordsError::Invalid { index: 9, .. })
                ),
                "{c:?} 9"
            );
            assert!(invalid(checked(&recount(b.clone(), i32::MAX))), "{c:?} max");
        }
    }

    #[test]
    fn a_count_of_two_billion_over_one_short_body_is_invalid() {
        let mut b = batch::build(0, 0, &[b"x"]);
        // One 8-byte body under a count of 2^31 - 1, as a hostile producer sent it.
        b.truncate(HEADER_BYTES);
        b.extend_from_slice(&[0u8; 8]);
        let len = (b.len() - batch::LOG_OVERHEAD) as i32;
        b[8..12].copy_from_slice(&len.to_be_bytes());
        let b = recount(b, i32::MAX);
        assert!(
            batch::validate(&b).is_ok(),
            "the header alone agrees with itself"
        );
        assert!(matches!(
            batch::validate_produced(&b),
            Err(batch::BatchError::Records(RecordsError::Invalid {
                index: 0,
                ..
            }))
        ));
    }

    #[test]
    fn malformed_records_are_invalid() {
        let good = batch::build(0, 0, &[b"hello", b"world"]);
        assert_eq!(checked(&good), Ok(()));
        // Each byte of the records section changed: a length, a delta or a field breaks.
        let mut caught = 0;
        for i in HEADER_BYTES..good.len() {
            let mut b = good.clone();
            b[i] = b[i].wrapping_add(1);
            let crc = crc32c::crc32c(&b[21..]);
            b[17..21].copy_from_slice(&crc.to_be_bytes());
            caught += checked(&b).is_err() as usize;
        }
        // Attributes and timestamp deltas and the values' bytes may take any value.
        assert!(
            caught >= 8,
            "only {caught} of the structural bytes were caught"
        );
        // Offset deltas out of sequence.
        let mut b = good.clone();
        let second = HEADER_BYTES + 1 + good[HEADER_BYTES] as usize / 2;
        assert_eq!(
            b[second + 3],
            2,
            "the second record's offset delta (zig-zag 1)"
        );
        b[second + 3] = 0;
        let crc = crc32c::crc32c(&b[21..]);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        assert!(matches!(
            checked(&b),
            Err(RecordsError::Invalid { index: 1, .. })
        ));
    }

    #[test]
    fn compressed_garbage_and_bombs_are_corrupt() {
        let mut b = timed_batch(0, 10, 1_000, Compression::Gzip);
        let n = b.len();
        for x in &mut b[HEADER_BYTES + 10..n - 4] {
            *x = 0x5a;
        }
        let crc = crc32c::crc32c(&b[21..]);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        // Garbage may inflate to bytes that are not records, or fail to inflate.
        assert!(checked(&b).is_err());
        for c in [
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let b = timed_batch(0, 10, 1_000, c);
            let h = batch::validate(&b).unwrap();
            let body = &b[HEADER_BYTES..];
            assert_eq!(check_within(&h, body, 1 << 20), Ok(()), "{c:?}");
            assert!(
                matches!(check_within(&h, body, 1000), Err(RecordsError::Inflate(_))),
                "{c:?}"
            );
        }
    }

    /// Found by the `record_batch` fuzz target: a snappy block's length header was
    /// allocated (zeroed) before its bytes were inflated, so a 90-byte batch claiming 50 MiB
    /// took 50 MiB.
    #[test]
    fn a_snappy_block_claiming_more_than_it_holds_allocates_nothing() {
        let mut b = timed_batch(0, 1, 1_000, Compression::Snappy);
        b.truncate(HEADER_BYTES);
        // A raw block: the varint 50 MiB, then one literal byte.
        let mut block = Vec::new();
        let mut n: u32 = 50 << 20;
        while n >= 0x80 {
            block.push(n as u8 | 0x80);
            n >>= 7;
        }
        block.extend_from_slice(&[n as u8, 0x00, b'a']);
        b.extend_from_slice(&block);
        let len = (b.len() - 12) as i32;
        b[8..12].copy_from_slice(&len.to_be_bytes());
        let crc = crc32c::crc32c(&b[21..]);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        let h = batch::validate(&b).unwrap();
        assert_eq!(h.compression(), 2);
        let (r, usage) = crate::runtime::alloc::measure(|| check(&h, &b[HEADER_BYTES..]));
        assert!(matches!(r, Err(RecordsError::Inflate(_))), "{r:?}");
        assert!(usage.peak_bytes < 1 << 20, "{usage:?}");
        // Nor for a time lookup.
        let (_, usage) = crate::runtime::alloc::measure(|| first_at_or_after(&b, 0));
        assert!(usage.peak_bytes < 1 << 20, "{usage:?}");
    }

    #[test]
    fn a_batch_inflating_past_the_bound_answers_to_the_batch() {
        let t0 = 5_000;
        let records: Vec<Record> = (0..3)
            .map(|i| Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: 0,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: TimestampType::Creation,
                offset: i,
                sequence: i as i32,
                timestamp: t0 + i,
                key: None,
                value: Some(vec![0u8; TIME_LOOKUP_INFLATED_BYTES_MAX].into()),
                headers: Default::default(),
            })
            .collect();
        for compression in [Compression::Gzip, Compression::Zstd, Compression::Snappy] {
            let mut out = bytes::BytesMut::new();
            let opts = RecordEncodeOptions {
                version: 2,
                compression,
            };
            RecordBatchEncoder::encode(&mut out, &records, &opts).unwrap();
            // The first record is within the bound, the third is past it.
            assert_eq!(
                first_at_or_after(&out, t0),
                Some((0, t0)),
                "{compression:?}"
            );
            assert_eq!(
                first_at_or_after(&out, t0 + 2),
                Some((0, t0 + 2)),
                "{compression:?}"
            );
        }
    }
}
