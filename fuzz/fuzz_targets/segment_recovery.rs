//! Segment recovery over damaged files: `log::partition::Partition::recover`, the scan a
//! shard runs over every segment of every partition at start-up, on a partition folder
//! written from the input (in a private folder under /dev/shm, or the temporary folder).
//!
//! Input: a mode byte, then segment files separated by the 8 bytes `%SEGMENT`. Mode bit 0:
//! each segment's base offset is its first 8 bytes (big-endian, shifted into ±2^61)
//! instead of the offset that follows the previous segment's batches, so the fuzzer can
//! name gaps, overlaps and negative bases. Bit 1: before writing, the batches of each file
//! get magic 2 and a right CRC (so the fuzzer reaches the checks after the CRC); bit 2:
//! and base offsets that continue the log. Bit 3: the partition is a compacted topic's
//! (`Offsets::Holes`: offsets may jump forward, the holes compaction leaves); without it,
//! a topic's that is not (`Offsets::Dense`).
//!
//! Checked: recovery succeeds (damage is cut, never an error or a panic); afterwards every
//! segment file is exactly whole, valid batches (length, magic, CRC-32C, count) with
//! offsets from its base that are dense (each segment and batch starts where the one
//! before ended), or only grow with bit 3, matching what recovery reports (size, end, batch
//! count); and a second recovery of the same folder cuts and removes nothing and finds the
//! same log.
#![no_main]

use std::fs;
use std::path::PathBuf;

use libfuzzer_sys::fuzz_target;
use pinion::log::batch::{self, HEADER_BYTES, LOG_OVERHEAD};
use pinion::log::partition::{segment_path, Offsets, Partition};

const SEPARATOR: &[u8] = b"%SEGMENT";

fn folder() -> PathBuf {
    let root = if fs::metadata("/dev/shm").is_ok_and(|m| m.is_dir()) {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    root.join(format!("pinion-fuzz-recovery-{}", std::process::id()))
}

fn split(data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = data;
    while let Some(i) = rest.windows(SEPARATOR.len()).position(|w| w == SEPARATOR) {
        out.push(&rest[..i]);
        rest = &rest[i + SEPARATOR.len()..];
    }
    out.push(rest);
    out
}

/// Give the batches of `seg` magic 2 and a right CRC, and with `offsets` base offsets
/// continuing from `next`; stops at the first batch that does not fit.
fn repair(seg: &mut [u8], mut next: i64, offsets: bool) {
    let mut pos = 0;
    while seg.len() - pos >= HEADER_BYTES {
        let b = &mut seg[pos..];
        let len = i32::from_be_bytes([b[8], b[9], b[10], b[11]]);
        if len < (HEADER_BYTES - LOG_OVERHEAD) as i32 || LOG_OVERHEAD + len as usize > b.len() {
            return;
        }
        let size = LOG_OVERHEAD + len as usize;
        b[16] = 2;
        if offsets {
            b[0..8].copy_from_slice(&next.to_be_bytes());
        }
        let crc = crc32c::crc32c(&b[21..size]);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        let delta = i32::from_be_bytes([b[23], b[24], b[25], b[26]]);
        next = next.wrapping_add(i64::from(delta)).wrapping_add(1);
        pos += size;
    }
}

/// The offset after the whole batches of `seg` (`base` when none), wrapping: the harness
/// must not trip on offsets near the ends of i64 that the code under test has to handle.
fn next_offset(seg: &[u8], base: i64) -> i64 {
    let mut pos = 0;
    let mut next = base;
    while let Ok(h) = batch::peek(&seg[pos..]) {
        if seg.len() - pos < h.size {
            break;
        }
        next = h
            .base_offset
            .wrapping_add(i64::from(h.last_offset_delta))
            .wrapping_add(1);
        pos += h.size;
    }
    next
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let dir = folder();
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("a scratch folder");

    let mut next = 0i64;
    for chunk in split(rest).into_iter().take(8) {
        let (base, body) = if mode & 1 == 1 {
            if chunk.len() < 8 {
                continue;
            }
            let (b, body) = chunk.split_at(8);
            // Within ±2^61: offsets are counted from 0 by the broker (see record_batch.rs).
            (
                i64::from_be_bytes(b.try_into().unwrap_or_default()) >> 2,
                body,
            )
        } else {
            (next, chunk)
        };
        let mut body = body.to_vec();
        if mode & 2 == 2 {
            repair(&mut body, base, mode & 4 == 4);
        }
        next = next_offset(&body, base);
        fs::write(segment_path(&dir, base), &body).expect("writing a segment");
    }

    let offsets = if mode & 8 == 8 {
        Offsets::Holes
    } else {
        Offsets::Dense
    };
    let (p, rep) = Partition::recover(&dir, 1 << 30, u64::MAX >> 1, 0, offsets)
        .unwrap_or_else(|e| panic!("recovery failed: {e}"));
    assert_eq!(rep.segments, p.segments.len());
    assert!(!p.segments.is_empty());
    let mut batches = 0u64;
    let mut expected: Option<i64> = None;
    for s in &p.segments {
        // Segments do not overlap; they continue the log, or with holes (a compacted
        // topic's) start at or after its end (log/partition.rs, its invariants).
        if let Some(e) = expected {
            match offsets {
                Offsets::Dense => {
                    assert_eq!(s.base, e, "segment {} does not continue the log", s.base)
                }
                Offsets::Holes => assert!(
                    s.base >= e,
                    "segment {} overlaps the log, which runs to {e}",
                    s.base
                ),
            }
        }
        let bytes = fs::read(&s.path).expect("a recovered segment is readable");
        assert_eq!(bytes.len() as u64, s.size, "segment {} size", s.base);
        let mut pos = 0;
        let mut at = s.base;
        while pos < bytes.len() {
            let h = batch::validate(&bytes[pos..])
                .unwrap_or_else(|e| panic!("segment {} keeps a bad batch at {pos}: {e}", s.base));
            match offsets {
                Offsets::Dense => assert_eq!(
                    h.base_offset, at,
                    "segment {} jumps to {} at {pos}",
                    s.base, h.base_offset
                ),
                Offsets::Holes => assert!(
                    h.base_offset >= at,
                    "segment {} goes back to {} at {pos}",
                    s.base,
                    h.base_offset
                ),
            }
            at = h.last_offset() + 1;
            pos += h.size;
            batches += 1;
        }
        assert_eq!(at, s.end, "segment {} end", s.base);
        expected = Some(s.end);
    }
    assert_eq!(batches, rep.batches);

    // Recovery is idempotent: the second finds a whole log.
    let (p2, rep2) = Partition::recover(&dir, 1 << 30, u64::MAX >> 1, 0, offsets)
        .unwrap_or_else(|e| panic!("second recovery failed: {e}"));
    assert_eq!(rep2.truncated_bytes, 0, "{:?}", rep2.reason);
    assert_eq!(rep2.segments_removed, 0, "{:?}", rep2.reason);
    assert_eq!(rep2.batches, rep.batches);
    assert_eq!(rep2.producer_batches, rep.producer_batches);
    let ends: Vec<_> = p.segments.iter().map(|s| (s.base, s.end, s.size)).collect();
    let ends2: Vec<_> = p2
        .segments
        .iter()
        .map(|s| (s.base, s.end, s.size))
        .collect();
    assert_eq!(ends, ends2);
    let _ = fs::remove_dir_all(&dir);
});
