//! Inside a stored batch: the records' offsets and timestamps, for ListOffsets by timestamp,
//! which answers the first *record* at or after the time (as Kafka does), not the batch.
//!
//! A record is `length, attributes, timestampDelta, offsetDelta, key, value, headers`, all
//! lengths and deltas zig-zag varints; only the first four are read, the rest skipped.
//! Compressed batches (gzip, snappy in Kafka's xerial framing or raw, lz4 frames, zstd) are
//! inflated as a stream, never whole, and at most [`TIME_LOOKUP_INFLATED_BYTES_MAX`] bytes
//! of one batch: a batch that inflates to more (or does not inflate) is answered to the
//! batch, its base offset. Pure over bytes; runs on the partition's owner shard.

use std::io::{self, BufReader, Read};

use super::batch::{self, BatchHeader, HEADER_BYTES};
use crate::limits::TIME_LOOKUP_INFLATED_BYTES_MAX;

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
        let offset = h.base_offset + varint(&mut counted)?;
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
