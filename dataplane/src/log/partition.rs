//! One topic-partition's log: its segments, offsets, sparse index and retention (its
//! start-up recovery is in `recovery.rs`).
//!
//! Owned by exactly one shard. I/O is kept behind a seam: the partition *plans* an append
//! (assigning offsets, choosing the segment file and position, updating the index) and a
//! read (file and byte range), and the shard carries the plans out through its io_uring.
//! Start-up recovery is the exception: it reads and truncates files directly, before the
//! shard serves (start-up may block).
//!
//! On disk: `<dir>/<base-offset, 20 digits>.log`, each file a sequence of RecordBatch v2
//! batches exactly as produced, with broker-assigned base offsets.
//!
//! Invariants: segments are sorted by base offset and do not overlap; in a topic that is
//! not compacted they are dense (each segment starts at the offset after the previous one's
//! last, and each batch at the offset after the one before it, the first at its segment's
//! base). Only compaction leaves holes, as in Kafka: in a compacted topic's log (see
//! [`Offsets`]) a cleaned segment may end before the next one starts and offsets inside a
//! segment only grow. Below the log start (retention, DeleteRecords) nothing is read.
//! `next_offset` is one past the last stored record; every byte of every segment below its
//! `size` is a validated batch.

use std::path::{Path, PathBuf};

use super::batch::{self, BatchHeader, HEADER_BYTES};
use crate::limits::INDEX_INTERVAL_BYTES;

pub use super::recovery::{Offsets, Recovery, COMPACTED_FILE, LOG_START_FILE};

#[derive(Debug, Clone)]
pub struct Segment {
    pub base: i64,
    pub path: PathBuf,
    pub size: u64,
    /// (offset, position of the batch that starts at or contains it), sparse, ascending.
    pub index: Vec<(i64, u64)>,
    /// For each index entry, the newest timestamp among the batches from it to the next one.
    pub index_ts: Vec<i64>,
    /// Offset after this segment's last record (== base when empty).
    pub end: i64,
    pub max_timestamp: i64,
    pub created_ms: u64,
    bytes_since_index: u64,
}

impl Segment {
    pub(super) fn new(dir: &Path, base: i64, now_ms: u64) -> Segment {
        Segment {
            base,
            path: segment_path(dir, base),
            size: 0,
            index: Vec::new(),
            index_ts: Vec::new(),
            end: base,
            max_timestamp: -1,
            created_ms: now_ms,
            bytes_since_index: INDEX_INTERVAL_BYTES,
        }
    }

    pub(super) fn note_batch(&mut self, h: &BatchHeader, position: u64) {
        if self.bytes_since_index >= INDEX_INTERVAL_BYTES {
            self.index.push((h.base_offset, position));
            self.index_ts.push(h.max_timestamp);
            self.bytes_since_index = 0;
        }
        if let Some(t) = self.index_ts.last_mut() {
            *t = (*t).max(h.max_timestamp);
        }
        self.bytes_since_index += h.size as u64;
        self.size = position + h.size as u64;
        self.end = h.last_offset() + 1;
        self.max_timestamp = self.max_timestamp.max(h.max_timestamp);
    }

    /// Position of the batch that holds `offset`, or an earlier one (scan forward from it).
    pub fn position_for(&self, offset: i64) -> u64 {
        match self.index.partition_point(|&(o, _)| o <= offset) {
            0 => 0,
            i => self.index[i - 1].1,
        }
    }
}

pub fn segment_path(dir: &Path, base: i64) -> PathBuf {
    dir.join(format!("{base:020}.log"))
}

/// Where an append goes. The shard writes `len` bytes at `position` of `path`; `rolled`
/// says a new, empty segment file must be created first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendPlan {
    pub path: PathBuf,
    pub position: u64,
    pub len: usize,
    pub base_offset: i64,
    pub last_offset: i64,
    pub rolled: bool,
}

/// Where a fetch reads: `len` bytes from `position` of `path`, to be trimmed to whole
/// batches and to batches that end after the requested offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadPlan {
    pub path: PathBuf,
    pub position: u64,
    pub len: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    #[error("offset {offset} is outside the log [{start}, {end})")]
    OutOfRange { offset: i64, start: i64, end: i64 },
}

pub struct Partition {
    pub dir: PathBuf,
    pub segments: Vec<Segment>,
    pub segment_bytes: u64,
    pub segment_ms: u64,
    /// The log start offset DeleteRecords moved (0 when none did): below it nothing is
    /// served, even where it falls inside a segment that is still on disk. Kept in
    /// [`LOG_START_FILE`].
    pub start_floor: i64,
    /// [`COMPACTED_FILE`] is in the folder: compaction may have left holes.
    pub compacted: bool,
}

/// Whether the first of `segments` lies wholly below the log start `floor` and goes: the
/// next segment starts at or below the floor, as Kafka decides it. Not "the first segment
/// ends at or below the floor": compaction may empty the first segment (kept, as it holds
/// the log start) or leave a hole after it, and the offsets in that hole up to the next
/// segment's base still belong to it. The active (last) segment always stays.
pub(super) fn below_start(segments: &[Segment], floor: i64) -> bool {
    segments.len() > 1 && segments[1].base <= floor
}

impl Partition {
    /// A new, empty partition in `dir`, whose first segment (offset 0) the caller creates.
    pub fn empty(dir: &Path, segment_bytes: u64, segment_ms: u64, now_ms: u64) -> Partition {
        Partition {
            dir: dir.to_path_buf(),
            segments: vec![Segment::new(dir, 0, now_ms)],
            segment_bytes,
            segment_ms,
            start_floor: 0,
            compacted: false,
        }
    }

    pub fn log_start(&self) -> i64 {
        self.segments
            .first()
            .map_or(0, |s| s.base)
            .max(self.start_floor)
    }

    /// DeleteRecords: move the log start offset up to `offset` (at most the log's end; a
    /// lower one than the current start changes nothing) and drop the whole segments below
    /// it, never the active one. Returns the dropped segments' files, to delete.
    pub fn delete_before(&mut self, offset: i64) -> Vec<PathBuf> {
        let offset = offset.min(self.next_offset());
        if offset > self.start_floor {
            self.start_floor = offset;
        }
        let mut removed = Vec::new();
        while below_start(&self.segments, self.start_floor) {
            removed.push(self.segments.remove(0).path);
        }
        removed
    }

    /// Offset the next record gets (Kafka's log end offset).
    pub fn next_offset(&self) -> i64 {
        self.segments.last().map_or(0, |s| s.end)
    }

    pub fn size_bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.size).sum()
    }

    /// Assign offsets to a validated batch and decide where it goes. Rolls to a new segment
    /// when the active one would pass `segment_bytes` or is older than `segment_ms`.
    pub fn plan_append(&mut self, b: &mut [u8], h: &BatchHeader, now_ms: u64) -> AppendPlan {
        let plan = self.plan(b.len(), h, now_ms);
        batch::set_base_offset(b, plan.base_offset);
        plan
    }

    /// [`Partition::plan_append`] for a batch of `len` bytes whose base offset the caller
    /// sets to the plan's `base_offset` when it copies the batch out.
    pub fn plan(&mut self, len: usize, h: &BatchHeader, now_ms: u64) -> AppendPlan {
        let next = self.next_offset();
        let active = self
            .segments
            .last()
            .expect("a partition always has a segment");
        let too_big = active.size > 0 && active.size + len as u64 > self.segment_bytes;
        let too_old =
            active.size > 0 && now_ms.saturating_sub(active.created_ms) >= self.segment_ms;
        let rolled = too_big || too_old;
        if rolled {
            self.segments.push(Segment::new(&self.dir, next, now_ms));
        }
        let seg = self.segments.last_mut().expect("just ensured");
        let position = seg.size;
        let mut placed = *h;
        placed.base_offset = next;
        seg.note_batch(&placed, position);
        AppendPlan {
            path: seg.path.clone(),
            position,
            len,
            base_offset: next,
            last_offset: placed.last_offset(),
            rolled,
        }
    }

    /// Undo the last `plan_append` whose write failed (disk full, I/O error).
    pub fn undo_append(&mut self, plan: &AppendPlan) {
        if plan.rolled && self.segments.len() > 1 {
            self.segments.pop();
            return;
        }
        if let Some(seg) = self.segments.last_mut() {
            seg.size = plan.position;
            seg.end = plan.base_offset;
            while seg.index.last().is_some_and(|&(_, p)| p >= plan.position) {
                seg.index.pop();
                seg.index_ts.pop();
            }
        }
    }

    /// Where to read for a fetch from `offset`, up to `max_bytes` (at least one whole batch
    /// is always included, as Kafka does, so a large batch cannot stall a consumer).
    pub fn plan_read(&self, offset: i64, max_bytes: u64) -> Result<Option<ReadPlan>, ReadError> {
        let (start, end) = (self.log_start(), self.next_offset());
        if offset < start || offset > end {
            return Err(ReadError::OutOfRange { offset, start, end });
        }
        if offset == end {
            return Ok(None);
        }
        let mut i = self
            .segments
            .partition_point(|s| s.base <= offset)
            .saturating_sub(1);
        // A hole compaction left at a segment's end: the next segment holds what follows.
        while i + 1 < self.segments.len() && offset >= self.segments[i].end {
            i += 1;
        }
        let seg = &self.segments[i];
        let position = seg.position_for(offset);
        let len = (seg.size - position).min(max_bytes.max(1));
        Ok(Some(ReadPlan {
            path: seg.path.clone(),
            position,
            len,
        }))
    }

    /// Where to look for the first batch whose newest timestamp is at least `ts` (Kafka's
    /// ListOffsets by timestamp): the index block that must hold it, or None when no stored
    /// batch is that new. `committed` bounds the active segment to acknowledged bytes.
    pub fn plan_time_read(&self, ts: i64, committed: (&Path, u64)) -> Option<ReadPlan> {
        let seg = self.segments.iter().find(|s| s.max_timestamp >= ts)?;
        let k = seg.index_ts.iter().position(|&t| t >= ts)?;
        let start = seg.index[k].1;
        let mut end = seg.index.get(k + 1).map_or(seg.size, |e| e.1);
        if seg.path == committed.0 {
            end = end.min(committed.1);
        }
        (end > start).then(|| ReadPlan {
            path: seg.path.clone(),
            position: start,
            len: end - start,
        })
    }

    /// Delete whole segments, oldest first, while the log is over `retention_bytes` or the
    /// oldest segment's newest record is older than `retention_ms`. Stops at the first
    /// segment that must stay: the active one, one holding an offset at or past `acked` (an
    /// append planned, waiting or in flight that is not acknowledged yet: its group is
    /// still to be written through the segment's write handle), or one `busy` names (a read
    /// of it in flight). Returns the files to delete; the log start moves to the first
    /// remaining segment.
    pub fn apply_retention(
        &mut self,
        retention_bytes: Option<u64>,
        retention_ms: Option<u64>,
        now_ms: u64,
        acked: i64,
        busy: impl Fn(&Path) -> bool,
    ) -> Vec<PathBuf> {
        let mut removed = Vec::new();
        while self.segments.len() > 1 {
            let total = self.size_bytes();
            let oldest = &self.segments[0];
            if oldest.end > acked || busy(&oldest.path) {
                break;
            }
            let over_size = retention_bytes.is_some_and(|r| total - oldest.size >= r && total > r);
            let newest_ms = if oldest.max_timestamp >= 0 {
                oldest.max_timestamp as u64
            } else {
                oldest.created_ms
            };
            let expired = retention_ms.is_some_and(|r| now_ms.saturating_sub(newest_ms) > r);
            if !(over_size || expired) {
                break;
            }
            removed.push(self.segments.remove(0).path);
        }
        removed
    }
}

/// The first batch in `buf` whose newest timestamp is at least `ts`: its base offset and
/// the timestamp to report (the first record's when it already qualifies, else the batch's
/// newest: the answer is exact to the batch).
pub fn find_time(buf: &[u8], ts: i64) -> Option<(i64, i64)> {
    let mut pos = 0;
    while pos + HEADER_BYTES <= buf.len() {
        let h = batch::peek(&buf[pos..]).ok()?;
        if h.max_timestamp >= ts {
            let t = if h.base_timestamp >= ts {
                h.base_timestamp
            } else {
                h.max_timestamp
            };
            return Some((h.base_offset, t));
        }
        pos += h.size;
    }
    None
}

/// After the whole batches of `buf`, which was read from file position `position`: the
/// position and offset that follow the last one. None when `buf` holds no whole batch.
pub fn end_of_batches(buf: &[u8], position: u64) -> Option<(u64, i64)> {
    let mut pos = 0;
    let mut next = None;
    while pos + HEADER_BYTES <= buf.len() {
        let Ok(h) = batch::peek(&buf[pos..]) else {
            break;
        };
        if pos + h.size > buf.len() {
            break;
        }
        pos += h.size;
        next = Some((position + pos as u64, h.last_offset() + 1));
    }
    next
}

/// Trim bytes read for a fetch: drop batches that end before `offset` and a partial batch
/// at the end. Returns the range of `buf` to send.
pub fn trim_read(buf: &[u8], offset: i64) -> std::ops::Range<usize> {
    let mut start = None;
    let mut pos = 0;
    while pos + HEADER_BYTES <= buf.len() {
        let Ok(h) = batch::peek(&buf[pos..]) else {
            break;
        };
        if pos + h.size > buf.len() {
            break;
        }
        if start.is_none() && h.last_offset() >= offset {
            start = Some(pos);
        }
        pos += h.size;
    }
    match start {
        Some(s) => s..pos,
        None => 0..0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::recovery::PAD_BLOCK;
    use std::fs;
    use std::io::Write;
    use std::io::{Seek, SeekFrom};

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("pinion-log-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    /// Carry out an append plan with plain file I/O (the shard uses io_uring).
    fn append(p: &mut Partition, values: &[&[u8]], now: u64) -> AppendPlan {
        let mut b = batch::build(0, now as i64, values);
        let h = batch::validate(&b).unwrap();
        let plan = p.plan_append(&mut b, &h, now);
        let mut f = fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(false)
            .open(&plan.path)
            .unwrap();
        f.seek(SeekFrom::Start(plan.position)).unwrap();
        f.write_all(&b).unwrap();
        plan
    }

    fn read_all(p: &Partition, from: i64) -> Vec<BatchHeader> {
        let mut out = Vec::new();
        let mut off = from;
        while let Some(plan) = p.plan_read(off, 1 << 20).unwrap() {
            let data = fs::read(&plan.path).unwrap();
            let chunk = &data[plan.position as usize..(plan.position + plan.len) as usize];
            let r = trim_read(chunk, off);
            assert!(!r.is_empty());
            let mut pos = r.start;
            while pos < r.end {
                let h = batch::validate(&chunk[pos..]).unwrap();
                pos += h.size;
                off = h.last_offset() + 1;
                out.push(h);
            }
        }
        out
    }

    #[test]
    fn append_roll_read_and_recover() {
        let dir = tmp("roll");
        let (mut p, rep) = Partition::recover(&dir, 300, u64::MAX, 0, Offsets::Dense).unwrap();
        assert_eq!((rep.segments, p.next_offset()), (1, 0));
        for i in 0..20 {
            let v = format!("value-{i:03}");
            append(&mut p, &[v.as_bytes(), b"x"], 1000 + i);
        }
        assert_eq!(p.next_offset(), 40);
        assert!(p.segments.len() > 3, "segments rolled at 300 bytes");
        let hs = read_all(&p, 0);
        assert_eq!(hs.len(), 20);
        assert_eq!(
            hs.iter().map(|h| h.base_offset).collect::<Vec<_>>(),
            (0..40).step_by(2).collect::<Vec<_>>()
        );
        // Reading from the middle of a batch starts at the batch that holds the offset.
        assert_eq!(read_all(&p, 13)[0].base_offset, 12);
        assert_eq!(p.plan_read(40, 100).unwrap(), None);
        assert!(p.plan_read(41, 100).is_err());
        // A clean restart finds everything.
        let (q, rep) = Partition::recover(&dir, 300, u64::MAX, 0, Offsets::Dense).unwrap();
        assert_eq!(
            (q.next_offset(), rep.batches, rep.truncated_bytes),
            (40, 20, 0)
        );
        assert_eq!(q.segments.len(), p.segments.len());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn recovery_truncates_a_torn_tail() {
        let dir = tmp("torn");
        let (mut p, _) = Partition::recover(&dir, 1 << 20, u64::MAX, 0, Offsets::Dense).unwrap();
        for i in 0..10 {
            append(&mut p, &[format!("r{i}").as_bytes()], 0);
        }
        let path = p.segments[0].path.clone();
        let good = fs::metadata(&path).unwrap().len();
        // A torn write: half of an eleventh batch.
        let b = batch::build(10, 0, &[b"torn-record-that-never-finished"]);
        let mut f = fs::OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&b[..b.len() / 2]).unwrap();
        drop(f);
        let (q, rep) = Partition::recover(&dir, 1 << 20, u64::MAX, 0, Offsets::Dense).unwrap();
        assert_eq!(q.next_offset(), 10);
        assert_eq!(rep.truncated_bytes, (b.len() / 2) as u64);
        assert!(rep.reason.unwrap().contains("torn"));
        assert_eq!(fs::metadata(&path).unwrap().len(), good);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn direct_write_padding_is_trimmed_without_cutting_later_segments() {
        let dir = tmp("padding");
        // Small segments, so the log rolls: every segment ends in direct-write padding.
        let (mut p, _) = Partition::recover(&dir, 200, u64::MAX, 0, Offsets::Dense).unwrap();
        for i in 0..6 {
            append(
                &mut p,
                &[format!("record-{i}-{}", "x".repeat(100)).as_bytes()],
                0,
            );
        }
        assert!(p.segments.len() >= 3);
        let sizes: Vec<u64> = p.segments.iter().map(|s| s.size).collect();
        for s in &p.segments {
            let f = fs::OpenOptions::new().write(true).open(&s.path).unwrap();
            f.set_len(s.size.next_multiple_of(PAD_BLOCK)).unwrap();
        }
        let (q, rep) = Partition::recover(&dir, 200, u64::MAX, 0, Offsets::Dense).unwrap();
        assert_eq!(q.next_offset(), 6, "every record kept");
        assert_eq!(rep.truncated_bytes, 0);
        assert_eq!(rep.segments_removed, 0);
        assert!(rep.reason.is_none());
        for (s, size) in q.segments.iter().zip(sizes) {
            assert_eq!(
                fs::metadata(&s.path).unwrap().len(),
                size,
                "padding trimmed"
            );
        }
        // A whole block of zeros is not padding: that is damage, and is cut.
        let last = &q.segments[0].path;
        let f = fs::OpenOptions::new().write(true).open(last).unwrap();
        f.set_len(fs::metadata(last).unwrap().len() + PAD_BLOCK)
            .unwrap();
        let (r, rep) = Partition::recover(&dir, 200, u64::MAX, 0, Offsets::Dense).unwrap();
        assert!(rep.reason.is_some());
        assert_eq!(r.segments.len(), 1);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn recovery_cuts_at_a_corrupt_batch_and_drops_later_segments() {
        let dir = tmp("corrupt");
        let (mut p, _) = Partition::recover(&dir, 200, u64::MAX, 0, Offsets::Dense).unwrap();
        let mut plans = Vec::new();
        for i in 0..12 {
            plans.push(append(&mut p, &[format!("record-{i:02}").as_bytes()], 0));
        }
        assert!(p.segments.len() >= 3);
        // Flip a byte inside the 5th batch's records.
        let target = &plans[4];
        let mut data = fs::read(&target.path).unwrap();
        data[target.position as usize + HEADER_BYTES + 3] ^= 0xff;
        fs::write(&target.path, &data).unwrap();
        let (q, rep) = Partition::recover(&dir, 200, u64::MAX, 0, Offsets::Dense).unwrap();
        assert_eq!(
            q.next_offset(),
            4,
            "everything from the corrupt batch on is cut"
        );
        assert!(rep.reason.unwrap().contains("CRC"));
        assert!(rep.segments_removed >= 1);
        assert_eq!(read_all(&q, 0).len(), 4);
        // Appends continue at the cut.
        let mut q = q;
        assert_eq!(append(&mut q, &[b"after"], 0).base_offset, 4);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_base_offset_flipped_forward_is_cut_unless_the_log_may_have_holes() {
        // Twelve one-record batches, several per segment; a bit flipped in the base offset
        // of batch `flip` (the CRC does not cover it) moves it forward by `by`.
        let write = |name: &str, flip: usize, by: u8, compacted: bool| {
            let dir = tmp(name);
            let (mut p, _) = Partition::recover(&dir, 200, u64::MAX, 0, Offsets::Dense).unwrap();
            let plans: Vec<_> = (0..12)
                .map(|i| append(&mut p, &[format!("record-{i:02}").as_bytes()], 0))
                .collect();
            assert!(p.segments.len() >= 3);
            let target = &plans[flip];
            let mut data = fs::read(&target.path).unwrap();
            data[target.position as usize + 7] ^= by;
            fs::write(&target.path, &data).unwrap();
            if compacted {
                fs::write(dir.join(COMPACTED_FILE), b"").unwrap();
            }
            dir
        };
        let dir = write("flip-dense", 4, 0x08, false);
        let (q, rep) = Partition::recover(&dir, 200, u64::MAX, 0, Offsets::Dense).unwrap();
        assert_eq!(q.next_offset(), 4, "cut at the flipped batch");
        assert!(
            rep.reason
                .as_deref()
                .unwrap()
                .contains("12 where 4 was due"),
            "{rep:?}"
        );
        assert!(rep.segments_removed >= 1);
        assert_eq!(read_all(&q, 0).len(), 4);
        // Whole segments that leave a gap are cut as well: a later segment, renamed up.
        let last = q.segments.last().unwrap().path.clone();
        fs::copy(&last, segment_path(&dir, 40)).unwrap();
        let (q, rep) = Partition::recover(&dir, 200, u64::MAX, 0, Offsets::Dense).unwrap();
        assert_eq!((q.next_offset(), rep.segments_removed), (4, 1), "{rep:?}");
        assert!(!segment_path(&dir, 40).exists());
        fs::remove_dir_all(&dir).unwrap();

        // Where a compacted topic's log (or one that was: COMPACTED_FILE) may hold a hole,
        // a jump forward is one: the last batch moved from 11 to 27 stays. (A jump in the
        // middle is still cut there, as the batch after it goes back.)
        for (name, offsets, marked) in [
            ("flip-dense-last", Offsets::Dense, false),
            ("flip-holes", Offsets::Holes, false),
            ("flip-marked", Offsets::Dense, true),
        ] {
            let dir = write(name, 11, 0x10, marked);
            let (q, rep) = Partition::recover(&dir, 200, u64::MAX, 0, offsets).unwrap();
            let kept = if offsets == Offsets::Dense && !marked {
                (11, 11)
            } else {
                assert_eq!(
                    (rep.truncated_bytes, rep.segments_removed),
                    (0, 0),
                    "{rep:?}"
                );
                (28, 12)
            };
            assert_eq!((q.next_offset(), read_all(&q, 0).len()), kept, "{name}");
            fs::remove_dir_all(&dir).unwrap();
        }
    }

    #[test]
    fn a_jump_past_the_largest_offset_is_cut_not_a_panic() {
        // Found by the segment_recovery fuzz target: in a log that may hold holes, a batch
        // whose base offset jumps near i64::MAX overflowed `last_offset`.
        let dir = tmp("offset-overflow");
        fs::create_dir_all(&dir).unwrap();
        let mut log = batch::build(0, 1_000, &[b"a"]);
        log.extend(batch::build(i64::MAX - 1, 1_000, &[b"b", b"c"]));
        fs::write(segment_path(&dir, 0), &log).unwrap();
        let (p, rep) = Partition::recover(&dir, 1 << 20, u64::MAX, 0, Offsets::Holes).unwrap();
        assert_eq!(p.next_offset(), 1);
        assert!(
            rep.reason.as_deref().unwrap().contains("cannot hold"),
            "{rep:?}"
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn offsets_by_timestamp() {
        let dir = tmp("time");
        let (mut p, _) = Partition::recover(&dir, 1 << 20, u64::MAX, 0, Offsets::Dense).unwrap();
        for i in 0..300u64 {
            append(
                &mut p,
                &[format!("value-{i:04}-{}", "z".repeat(40)).as_bytes()],
                10_000 + i * 10,
            );
        }
        let seg = &p.segments[0];
        assert!(seg.index.len() > 2 && seg.index.len() == seg.index_ts.len());
        let data = fs::read(&seg.path).unwrap();
        let committed = (seg.path.as_path(), seg.size);
        for (ts, want) in [
            (0, 0),
            (10_000, 0),
            (10_005, 1),
            (11_500, 150),
            (12_990, 299),
        ] {
            let plan = p.plan_time_read(ts, committed).unwrap();
            let chunk = &data[plan.position as usize..(plan.position + plan.len) as usize];
            assert_eq!(find_time(chunk, ts).map(|x| x.0), Some(want), "ts {ts}");
        }
        assert!(p.plan_time_read(13_000, committed).is_none());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn failed_write_is_undone() {
        let dir = tmp("undo");
        let (mut p, _) = Partition::recover(&dir, 1 << 20, u64::MAX, 0, Offsets::Dense).unwrap();
        append(&mut p, &[b"a"], 0);
        let mut b = batch::build(0, 0, &[b"lost"]);
        let h = batch::validate(&b).unwrap();
        let plan = p.plan_append(&mut b, &h, 0);
        assert_eq!(p.next_offset(), 2);
        p.undo_append(&plan);
        assert_eq!(p.next_offset(), 1);
        assert_eq!(append(&mut p, &[b"b"], 0).base_offset, 1);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn delete_before_moves_the_start_and_survives_recovery() {
        let dir = tmp("delete-records");
        let (mut p, _) = Partition::recover(&dir, 200, u64::MAX, 0, Offsets::Dense).unwrap();
        for i in 0..12 {
            append(&mut p, &[format!("record-{i:02}").as_bytes()], 1_000 + i);
        }
        let segments = p.segments.len();
        // Inside the third segment: the two before it go, the start is exact.
        let mid = p.segments[2].base + 1;
        let gone = p.delete_before(mid);
        assert_eq!(gone.len(), 2);
        assert_eq!(p.segments.len(), segments - 2);
        assert_eq!(p.log_start(), mid);
        assert!(p.plan_read(mid - 1, 100).is_err());
        assert!(p.plan_read(mid, 100).unwrap().is_some());
        // A lower offset changes nothing; one past the end stops at the end.
        assert!(p.delete_before(1).is_empty());
        assert_eq!(p.log_start(), mid);
        for path in &gone {
            fs::remove_file(path).unwrap();
        }
        fs::write(dir.join(LOG_START_FILE), format!("{mid}\n")).unwrap();
        let (q, _) = Partition::recover(&dir, 200, u64::MAX, 0, Offsets::Dense).unwrap();
        assert_eq!((q.log_start(), q.next_offset()), (mid, 12));
        // A crash after the file was renamed, before the unlinks: recovery drops them.
        p.delete_before(100);
        assert_eq!(p.log_start(), 12);
        assert_eq!(p.segments.len(), 1, "the active segment always stays");
        fs::write(dir.join(LOG_START_FILE), "12\n").unwrap();
        let (q, _) = Partition::recover(&dir, 200, u64::MAX, 0, Offsets::Dense).unwrap();
        assert_eq!((q.log_start(), q.segments.len()), (12, 1));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_emptied_first_segment_keeps_the_log_start() {
        // Compaction emptied the first segment (kept: it holds the log start) and left a
        // hole after what it kept of the second.
        let dir = tmp("emptied-first");
        fs::create_dir_all(&dir).unwrap();
        fs::write(segment_path(&dir, 0), b"").unwrap();
        fs::write(segment_path(&dir, 3), batch::build(5, 1_000, &[b"kept"])).unwrap();
        let (mut p, rep) = Partition::recover(&dir, 1 << 20, u64::MAX, 0, Offsets::Holes).unwrap();
        assert_eq!(
            (rep.truncated_bytes, rep.segments_removed),
            (0, 0),
            "{rep:?}"
        );
        assert_eq!(
            (p.log_start(), p.next_offset(), p.segments.len()),
            (0, 6, 2)
        );
        // DeleteRecords into the hole: the start is exact, the first segment stays (it
        // holds the offsets up to the next one's base).
        assert!(p.delete_before(2).is_empty());
        assert_eq!(p.log_start(), 2);
        assert_eq!(read_all(&p, 2)[0].base_offset, 5);
        fs::write(dir.join(LOG_START_FILE), "2\n").unwrap();
        let (q, _) = Partition::recover(&dir, 1 << 20, u64::MAX, 0, Offsets::Holes).unwrap();
        assert_eq!((q.log_start(), q.segments.len()), (2, 2));
        // At the next segment's base it goes.
        assert_eq!(p.delete_before(3), vec![segment_path(&dir, 0)]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn retention_deletes_whole_old_segments() {
        let dir = tmp("retention");
        let (mut p, _) = Partition::recover(&dir, 200, u64::MAX, 0, Offsets::Dense).unwrap();
        for i in 0..12 {
            append(&mut p, &[format!("record-{i:02}").as_bytes()], 1_000 + i);
        }
        let before = p.segments.len();
        let acked = p.next_offset();
        let gone = p.apply_retention(Some(250), None, 2_000, acked, |_| false);
        assert!(!gone.is_empty() && p.segments.len() < before);
        assert!(p.size_bytes() <= 250 + 200);
        assert!(p.log_start() > 0);
        assert!(p.plan_read(0, 100).is_err());
        let all_old = p.apply_retention(None, Some(10), 1_000_000, acked, |_| false);
        assert!(!all_old.is_empty());
        assert_eq!(p.segments.len(), 1, "the active segment always stays");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn retention_keeps_segments_with_unacknowledged_appends_or_reads() {
        let dir = tmp("retention-pending");
        let (mut p, _) = Partition::recover(&dir, 200, u64::MAX, 0, Offsets::Dense).unwrap();
        for i in 0..12 {
            append(&mut p, &[format!("record-{i:02}").as_bytes()], 1_000 + i);
        }
        assert!(p.segments.len() >= 4);
        // Only the first segment is acknowledged: the second still has a group to write,
        // however far over the limit the planned log is.
        let acked = p.segments[0].end;
        let second = p.segments[1].path.clone();
        let gone = p.apply_retention(Some(1), Some(0), 1_000_000, acked, |_| false);
        assert_eq!(gone.len(), 1);
        assert_eq!(p.segments[0].path, second);
        // All acknowledged, but a read of the oldest is in flight: it stays.
        let acked = p.next_offset();
        let gone = p.apply_retention(Some(1), None, 2_000, acked, |path| path == second);
        assert!(gone.is_empty());
        assert_eq!(p.segments[0].path, second);
        let gone = p.apply_retention(Some(1), None, 2_000, acked, |_| false);
        assert!(!gone.is_empty());
        fs::remove_dir_all(&dir).unwrap();
    }
}
