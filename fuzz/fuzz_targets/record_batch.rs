//! RecordBatch validation: the records of one partition of a Produce request, walked as
//! `log/commit.rs` does (`batch::validate_produced` batch after batch: length, magic,
//! CRC-32C, the count, then every record, inflated as a bounded stream where compressed),
//! and the readers of stored batches (`records::first_at_or_after` for ListOffsets by time,
//! `partition::find_time`, `end_of_batches`, `trim_read` for fetches).
//!
//! The first byte is a mode: bit 0 set makes the first batch's length field, magic and CRC
//! right (so the fuzzer spends its time in the records, not on the CRC); bits 1-3 set the
//! compression codec of that batch (values past 4 stay as they are). The next 8 bytes are
//! the timestamp to look up.
//!
//! Checked: no panic; an accepted batch lies within the input and its count agrees with
//! its last offset delta; validation allocates at most 1 MiB plus 32 bytes per input byte
//! (it inflates through a 16 KiB buffer; a snappy block is inflated whole, and no larger
//! than its bytes allow); the fetch readers return ranges inside the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pinion::log::batch::{self, HEADER_BYTES, LOG_OVERHEAD};
use pinion::log::partition::{end_of_batches, find_time, trim_read};
use pinion::log::records::first_at_or_after;
use pinion::runtime::alloc::measure;

/// What validating `len` bytes of batches may allocate at its peak: the 16 KiB read
/// buffer and such, plus a snappy block inflated whole (at most 22 bytes per byte,
/// `limits::SNAPPY_INFLATE_RATIO_MAX`).
fn bound(len: usize) -> usize {
    (1 << 20) + 32 * len
}

/// Base offsets of the batches of `b` masked to below 2^62.
fn plausible_offsets(b: &mut [u8]) {
    let mut pos = 0;
    while let Ok(h) = batch::peek(&b[pos..]) {
        let base = h.base_offset & ((1 << 62) - 1);
        b[pos..pos + 8].copy_from_slice(&base.to_be_bytes());
        pos += h.size;
        if pos >= b.len() {
            break;
        }
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 9 {
        return;
    }
    let mode = data[0];
    let ts = i64::from_be_bytes(data[1..9].try_into().unwrap_or_default());
    let mut b = data[9..].to_vec();
    if mode & 1 == 1 && b.len() >= HEADER_BYTES {
        let codec = (mode >> 1) & 7;
        if codec <= 4 {
            let attrs = (i16::from_be_bytes([b[21], b[22]]) & !7) | i16::from(codec);
            b[21..23].copy_from_slice(&attrs.to_be_bytes());
        }
        let len = (b.len() - LOG_OVERHEAD) as i32;
        b[8..12].copy_from_slice(&len.to_be_bytes());
        b[16] = 2;
        let crc = crc32c::crc32c(&b[21..]);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
    }

    // The produce path: every batch validated before any is planned.
    let (accepted, usage) = measure(|| {
        let mut pos = 0;
        let mut accepted = Vec::new();
        while pos < b.len() {
            match batch::validate_produced(&b[pos..]) {
                Ok(h) => {
                    accepted.push((pos, h));
                    pos += h.size;
                }
                Err(_) => break,
            }
        }
        accepted
    });
    assert!(
        usage.peak_bytes <= bound(b.len()),
        "validating {} bytes allocated {} at its peak",
        b.len(),
        usage.peak_bytes
    );
    for (pos, h) in &accepted {
        assert!(pos + h.size <= b.len() && h.size >= HEADER_BYTES);
        assert!(h.record_count > 0 && h.last_offset_delta == h.record_count - 1);
        // The same bytes validate again, alone.
        assert_eq!(batch::validate(&b[*pos..pos + h.size]), Ok(*h));
    }

    // Readers of stored batches (these bytes come from the log, written after validation,
    // but a damaged file is read by them too). Stored base offsets are the broker's, counted
    // from 0: they stay far from i64::MAX (2^62 at a billion records a second is 146 years),
    // so the batches read get base offsets below 2^62; record offsets stay any varint.
    plausible_offsets(&mut b);
    let _ = first_at_or_after(&b, ts);
    let _ = find_time(&b, ts);
    if let Some((end, _)) = end_of_batches(&b, 0) {
        assert!(end as usize <= b.len());
    }
    let r = trim_read(&b, ts);
    assert!(r.start <= r.end && r.end <= b.len());
});
