//! A partition's start-up recovery: every segment's batches checked, a torn or corrupt tail
//! cut, the log start and the idempotent producers' and transactions' state rebuilt.
//!
//! It reads and truncates files with plain blocking calls, before the shard serves (and on a
//! pull's thread, for a copied partition). Split out of `partition.rs`, which holds the
//! partition and its plans.

use std::fs;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

use super::batch::{self, BatchHeader, HEADER_BYTES};
use super::partition::{below_start, segment_path, Partition, Segment};
use crate::limits::PRODUCER_BATCHES;

/// Direct writes go in whole 4 KiB blocks, so a segment may end in up to 4095 zero bytes.
pub(super) const PAD_BLOCK: u64 = 4096;

/// Whether `pos..len` of `f` is the zero padding of a direct write.
fn is_padding(f: &mut fs::File, pos: u64, len: u64) -> io::Result<bool> {
    if len - pos >= PAD_BLOCK {
        return Ok(false);
    }
    let mut rest = vec![0u8; (len - pos) as usize];
    f.seek(SeekFrom::Start(pos))?;
    f.read_exact(&mut rest)?;
    Ok(rest.iter().all(|&b| b == 0))
}
/// What recovery found and did, for the log line.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Recovery {
    pub segments: usize,
    pub batches: u64,
    /// Bytes cut from the tail (a torn write or a corrupt batch and what followed it).
    pub truncated_bytes: u64,
    /// Why the first cut happened.
    pub reason: Option<String>,
    pub segments_removed: usize,
    /// The last few batches (up to `limits::PRODUCER_BATCHES` each) of every idempotent producer
    /// in the log, oldest first, as stored: what their sequence checks resume from.
    pub producer_batches: Vec<BatchHeader>,
    /// Transactions: open ones and the aborted index, rebuilt from the batches.
    pub txn: super::txn_index::TxnIndex,
}

/// The file in a partition's folder that keeps the log start offset DeleteRecords set
/// (Kafka keeps it in `log-start-offset-checkpoint`): the offset in decimal.
pub const LOG_START_FILE: &str = "log-start-offset";

/// What recovery accepts between a batch and the next (or a segment and the next).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offsets {
    /// A topic that is not compacted: each continues exactly where the one before ended. A
    /// batch whose base offset is anything else (a bit flipped in it: the CRC does not
    /// cover it) is corrupt, and recovery cuts the log there.
    Dense,
    /// A compacted topic (`cleanup.policy` with `compact`), or one that was (see
    /// [`COMPACTED_FILE`]): offsets only grow; a gap is a hole compaction left.
    Holes,
}

/// The file in a partition's folder that says compaction has put a cleaned segment in
/// place there (empty; made before the first one, see `log/compact`): its log may hold
/// holes even when the topic's `cleanup.policy` no longer includes `compact`.
pub const COMPACTED_FILE: &str = "compacted";

/// The log start offset kept in `dir`, 0 when none was set or the file cannot be read.
fn read_start_floor(dir: &Path) -> i64 {
    fs::read_to_string(dir.join(LOG_START_FILE))
        .ok()
        .and_then(|t| t.trim().parse::<i64>().ok())
        .unwrap_or(0)
        .max(0)
}

impl Partition {
    /// Open (creating the folder if needed) and recover: every batch of every segment is
    /// validated (length, magic, CRC-32C, offsets continuing from the previous batch, or
    /// past it with [`Offsets::Holes`]); at the first batch that fails, the segment is
    /// truncated there and later segments are removed, so a corrupt batch is never served.
    /// `offsets` is what the topic's policy allows; a folder holding [`COMPACTED_FILE`]
    /// allows holes whatever it says.
    pub fn recover(
        dir: &Path,
        segment_bytes: u64,
        segment_ms: u64,
        now_ms: u64,
        offsets: Offsets,
    ) -> io::Result<(Partition, Recovery)> {
        fs::create_dir_all(dir)?;
        let compacted = dir.join(COMPACTED_FILE).exists();
        let holes = offsets == Offsets::Holes || compacted;
        let mut bases: Vec<i64> = Vec::new();
        for e in fs::read_dir(dir)? {
            let name = e?.file_name();
            let name = name.to_string_lossy();
            if name.ends_with(super::compact::CLEANED_SUFFIX) {
                // A compaction that did not finish: the segment it was for is still whole.
                fs::remove_file(dir.join(name.as_ref()))?;
                continue;
            }
            if let Some(stem) = name.strip_suffix(".log") {
                if let Ok(b) = stem.parse::<i64>() {
                    bases.push(b);
                }
            }
        }
        bases.sort_unstable();
        let mut rep = Recovery::default();
        // Per producer: (batch number in the log, header) of its last batches.
        let mut producers: std::collections::HashMap<
            i64,
            std::collections::VecDeque<(u64, BatchHeader)>,
        > = Default::default();
        let mut segments: Vec<Segment> = Vec::new();
        let mut cut = false;
        for base in bases {
            let path = segment_path(dir, base);
            if cut {
                fs::remove_file(&path)?;
                rep.segments_removed += 1;
                continue;
            }
            let expected = segments.last().map_or(base, |s: &Segment| s.end);
            let mut seg = Segment::new(dir, base, now_ms);
            seg.created_ms = fs::metadata(&path)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(now_ms, |d| d.as_millis() as u64);
            if base < expected || (base > expected && !holes) {
                // An overlap with the segment before, or a gap where there can be no hole
                // (only compaction leaves them): the file cannot belong here.
                rep.reason.get_or_insert(if base < expected {
                    format!("segment {base} overlaps the log, which runs to {expected}")
                } else {
                    format!("segment {base} leaves a gap after the log, which runs to {expected}")
                });
                fs::remove_file(&path)?;
                rep.segments_removed += 1;
                cut = true;
                continue;
            }
            let mut f = fs::OpenOptions::new().read(true).write(true).open(&path)?;
            let file_len = f.metadata()?.len();
            let mut pos = 0u64;
            let mut next = base;
            let mut buf = Vec::new();
            let mut header = [0u8; HEADER_BYTES];
            while pos < file_len {
                let problem = (|| -> Result<BatchHeader, String> {
                    if file_len - pos < HEADER_BYTES as u64 {
                        return Err(format!("torn header at byte {pos}"));
                    }
                    f.seek(SeekFrom::Start(pos)).map_err(|e| e.to_string())?;
                    f.read_exact(&mut header).map_err(|e| e.to_string())?;
                    let h = batch::peek(&header).map_err(|e| format!("{e} at byte {pos}"))?;
                    if (file_len - pos) < h.size as u64 {
                        return Err(format!("torn batch at byte {pos}"));
                    }
                    buf.resize(h.size, 0);
                    f.seek(SeekFrom::Start(pos)).map_err(|e| e.to_string())?;
                    f.read_exact(&mut buf).map_err(|e| e.to_string())?;
                    let h = batch::validate(&buf).map_err(|e| format!("{e} at byte {pos}"))?;
                    if h.base_offset < next || (h.base_offset > next && !holes) {
                        return Err(format!(
                            "batch at byte {pos} has offset {} where {next} was due",
                            h.base_offset
                        ));
                    }
                    // Offsets the log can hold: a span that does not go back, and a last
                    // offset with one after it (a forward jump in a compacted log could
                    // otherwise name one past i64).
                    let last = (h.last_offset_delta >= 0)
                        .then(|| h.base_offset.checked_add(i64::from(h.last_offset_delta)))
                        .flatten();
                    if last.is_none_or(|l| l == i64::MAX) {
                        return Err(format!(
                            "batch at byte {pos} spans offsets {} + {}, which the log cannot hold",
                            h.base_offset, h.last_offset_delta
                        ));
                    }
                    Ok(h)
                })();
                match problem {
                    Ok(h) => {
                        if h.producer_id >= 0 && h.base_sequence >= 0 {
                            let recent = producers.entry(h.producer_id).or_default();
                            recent.push_back((rep.batches, h));
                            if recent.len() > PRODUCER_BATCHES {
                                recent.pop_front();
                            }
                        }
                        rep.txn.recovered(&h, &buf, &path, pos);
                        seg.note_batch(&h, pos);
                        rep.batches += 1;
                        next = h.last_offset() + 1;
                        pos += h.size as u64;
                    }
                    Err(_) if is_padding(&mut f, pos, file_len)? => {
                        // Zeros after the last batch, less than a block: the padding of a
                        // direct write. Trim it; the log is whole.
                        f.set_len(pos)?;
                        f.sync_all()?;
                        break;
                    }
                    Err(why) => {
                        rep.reason.get_or_insert(why);
                        rep.truncated_bytes += file_len - pos;
                        f.set_len(pos)?;
                        f.sync_all()?;
                        cut = true;
                        break;
                    }
                }
            }
            segments.push(seg);
        }
        if segments.is_empty() {
            let s = Segment::new(dir, 0, now_ms);
            fs::File::create(&s.path)?;
            segments.push(s);
        }
        // A DeleteRecords acknowledged before a crash that came before its segments were
        // unlinked: they go now (never the active one).
        let start_floor = read_start_floor(dir).min(segments.last().map_or(0, |s| s.end));
        while below_start(&segments, start_floor) {
            fs::remove_file(&segments[0].path)?;
            segments.remove(0);
        }
        rep.segments = segments.len();
        // Only batches that passed the checks were noted (the scan stops at a cut), so all
        // of them are still in the log; put them back in log order.
        let mut kept: Vec<(u64, BatchHeader)> = producers.into_values().flatten().collect();
        kept.sort_by_key(|(n, _)| *n);
        rep.producer_batches = kept.into_iter().map(|(_, h)| h).collect();
        Ok((
            Partition {
                dir: dir.to_path_buf(),
                segments,
                segment_bytes,
                segment_ms,
                start_floor,
                compacted,
            },
            rep,
        ))
    }
}
