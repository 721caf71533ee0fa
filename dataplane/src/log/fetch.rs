//! Reads: Fetch and ListOffsets by timestamp, and reading a consumer's next range ahead.
//!
//! Reads never see bytes that are not yet acknowledged: they are clamped to the committed
//! end of the active segment. Segment reads go through O_DIRECT handles where the
//! filesystem allows, in whole aligned blocks straight into a buffer that then *is* the
//! response's records (no copy). Direct reads have no kernel readahead, so a large fetch
//! starts a read of the partition's next range; a consumer reading on finds it landed.

use std::ops::Range;
use std::os::fd::RawFd;
use std::path::PathBuf;

use bytes::Bytes;

use super::batch::{self, HEADER_BYTES};
use super::ops::{LogOp, LogResult};
use super::partition::end_of_batches;
use super::records;
use super::{owner_key, LogCtx, Logs};
use crate::limits::{FETCH_PARTITION_BYTES_MIN, READ_AHEAD_MIN_BYTES};
use crate::proto::kafka::ErrorCode;
use crate::runtime::aligned::{AlignedBuf, ALIGN};
use crate::runtime::io::Completion;
use crate::runtime::slab::{Slab, SlabKey};
use crate::runtime::{Kind, Owner};
use crate::txn::Dest;

pub struct ReadOp {
    /// The buffer to read into (with the ring while the read is in flight).
    buf: AlignedBuf,
    /// Bytes of the buffer before the first one wanted (direct reads), and how many are
    /// wanted.
    skip: usize,
    len: usize,
    /// For a fetch: the offset asked for.
    offset: i64,
    /// Some(ts): a ListOffsets lookup of the first record with a timestamp of at least ts.
    time: Option<i64>,
    /// Who gets the answer; None for a read-ahead.
    reply: Option<Dest>,
    hw: i64,
    log_start: i64,
    /// The last stable offset, and for a read_committed fetch the aborted transactions
    /// in its range (`txn_index.rs`).
    last_stable: i64,
    aborted: Vec<(i64, i64)>,
    /// The partition, segment and file position read.
    part: SlabKey,
    path: PathBuf,
    position: u64,
}

/// Reads in flight; the completion owner's index and generation are the read's key.
pub type Reads = Slab<ReadOp>;

/// A partition's next range, read when a fetch's read landed, so that a consumer reading on
/// finds it already read (direct reads have no kernel readahead). One per partition.
pub struct Ahead {
    path: PathBuf,
    /// The offset a consumer continuing from the fetch before asks for next: the first
    /// batch of the range read.
    next_offset: i64,
    /// The read's key while in flight.
    reading: Option<SlabKey>,
    /// Once landed: the buffer, the range of it read for, and that range's file position.
    data: Option<(AlignedBuf, Range<usize>, u64)>,
    /// A fetch that arrived while the read was in flight, for the bytes it brings.
    waiter: Option<ReadOp>,
}

/// A fetch answered with an error and no records.
fn fetch_error(e: ErrorCode, high_watermark: i64, log_start: i64) -> LogResult {
    LogResult::Fetched {
        error: e.code(),
        high_watermark,
        log_start,
        records: None,
        last_stable: high_watermark,
        aborted: Vec::new(),
    }
}

fn offset_error(e: ErrorCode) -> LogResult {
    LogResult::Offset {
        error: e.code(),
        offset: -1,
        timestamp: -1,
    }
}

impl Logs {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn fetch(
        &mut self,
        topic: &str,
        partition: i32,
        offset: i64,
        max_bytes: i32,
        committed: bool,
        reply: Dest,
        ctx: &mut LogCtx,
    ) {
        let Some(part) = self.find(topic, partition) else {
            return ctx.reply(
                reply,
                fetch_error(ErrorCode::UnknownTopicOrPartition, -1, -1),
            );
        };
        let Some(p) = self.parts.get(part) else {
            return ctx.reply(
                reply,
                fetch_error(ErrorCode::UnknownTopicOrPartition, -1, -1),
            );
        };
        let (hw, ls) = (p.hw, p.log.log_start());
        // read_committed reads stop at the last stable offset: the first offset of the
        // oldest open transaction (`txn_index.rs`).
        let lso = p.txn.last_stable(hw);
        let end = if committed { lso } else { hw };
        // An empty answer: the consumer is at the end, or nothing readable is there yet.
        let nothing = LogResult::Fetched {
            error: 0,
            high_watermark: hw,
            log_start: ls,
            records: None,
            last_stable: lso,
            aborted: Vec::new(),
        };
        if offset < ls || offset > hw {
            return ctx.reply(reply, fetch_error(ErrorCode::OffsetOutOfRange, hw, ls));
        }
        if offset >= end {
            return ctx.reply(reply, nothing);
        }
        // The client names the size, so it is capped: at most the larger of one whole batch
        // (the topic's max.message.bytes, which no request passes) and
        // FETCH_PARTITION_BYTES_MIN is read and held.
        let batch_max = p
            .config
            .max_message_bytes
            .min(ctx.cfg.max_request_bytes as u64);
        let cap = batch_max.max(FETCH_PARTITION_BYTES_MIN as u64);
        let plan = match p.log.plan_read(offset, (max_bytes.max(1) as u64).min(cap)) {
            Ok(Some(plan)) => plan,
            _ => return ctx.reply(reply, nothing),
        };
        // Never read past what is acknowledged.
        let mut len = plan.len;
        if plan.path == p.committed.0 {
            len = len.min(p.committed.1.saturating_sub(plan.position));
        }
        // Nor, read_committed, past the last stable offset's batch.
        if let Some((path, at)) = p.txn.stable_end().filter(|_| committed && lso < hw) {
            if plan.path == path {
                len = len.min(at.saturating_sub(plan.position));
            }
        }
        let aborted = if committed {
            p.txn.aborted_in(offset, end)
        } else {
            Vec::new()
        };
        let Some(fd) = p.reader(&plan.path) else {
            // An older segment whose handle the cache closed (`readers.rs`).
            let retry = LogOp::Fetch {
                topic: topic.to_string(),
                partition,
                offset,
                max_bytes,
                committed,
            };
            return self.reopen_reader(part, plan.path, retry, reply, ctx);
        };
        if plan.path != p.committed.0 {
            self.readers.touch(part, &plan.path);
        }
        if len == 0 {
            return ctx.reply(reply, nothing);
        }
        let op = ReadOp {
            buf: AlignedBuf::default(),
            skip: 0,
            len: len as usize,
            offset,
            time: None,
            reply: Some(reply),
            hw,
            log_start: ls,
            last_stable: lso,
            aborted,
            part,
            path: plan.path,
            position: plan.position,
        };
        // Already read ahead (or being read): answer from it.
        if let Some(p) = self.parts.get_mut(part) {
            if let Some(a) = p
                .ahead
                .as_mut()
                .filter(|a| a.path == op.path && a.next_offset == op.offset)
            {
                if a.reading.is_some() && a.waiter.is_none() {
                    a.waiter = Some(op);
                    return;
                }
                if let Some((buf, range, at)) = a.data.take() {
                    p.ahead = None;
                    return self.answer_fetch(op, buf, range, at, true, ctx);
                }
            }
        }
        self.submit_read(fd, op, ctx);
    }

    /// ListOffsets: earliest (-2), latest (-1), or the first record at or after a
    /// timestamp (a read of the batch the sparse time index points at).
    pub(super) fn list_offsets(
        &mut self,
        topic: &str,
        partition: i32,
        timestamp: i64,
        committed: bool,
        reply: Dest,
        ctx: &mut LogCtx,
    ) {
        let Some(part) = self.find(topic, partition) else {
            return ctx.reply(reply, offset_error(ErrorCode::UnknownTopicOrPartition));
        };
        let Some(p) = self.parts.get(part) else {
            return ctx.reply(reply, offset_error(ErrorCode::UnknownTopicOrPartition));
        };
        let offset = match timestamp {
            -2 => p.log.log_start(),
            -1 if committed => p.txn.last_stable(p.hw),
            -1 => p.hw,
            ts => {
                let read_committed = committed;
                let committed = (p.committed.0.as_path(), p.committed.1);
                let plan = p.log.plan_time_read(ts, committed);
                let fd = plan.as_ref().and_then(|pl| p.reader(&pl.path));
                if let (Some(plan), None) = (&plan, fd) {
                    // An older segment whose handle the cache closed (`readers.rs`).
                    let retry = LogOp::ListOffsets {
                        topic: topic.to_string(),
                        partition,
                        timestamp,
                        committed: read_committed,
                    };
                    let path = plan.path.clone();
                    return self.reopen_reader(part, path, retry, reply, ctx);
                }
                match (plan, fd) {
                    (Some(plan), Some(fd)) => {
                        let op = ReadOp {
                            buf: AlignedBuf::default(),
                            skip: 0,
                            len: plan.len as usize,
                            offset: -1,
                            time: Some(ts),
                            reply: Some(reply),
                            hw: p.hw,
                            log_start: p.log.log_start(),
                            last_stable: p.hw,
                            aborted: Vec::new(),
                            part,
                            path: plan.path,
                            position: plan.position,
                        };
                        self.submit_read(fd, op, ctx);
                        return;
                    }
                    // No stored record is that new: Kafka answers offset -1.
                    _ => -1,
                }
            }
        };
        let r = LogResult::Offset {
            error: 0,
            offset,
            timestamp: -1,
        };
        ctx.reply(reply, r);
    }

    /// Answer fetch `op` with the bytes `range` of `buf`, read from file position `from`:
    /// whole batches from its offset on. When the batch holding the offset is not whole in
    /// them (it is larger than the fetch's max bytes, or the read stopped before it), it is
    /// read again from that batch, whole: Kafka (KIP-74) returns the first batch even when
    /// it is larger than max bytes, so a consumer always moves on.
    fn answer_fetch(
        &mut self,
        mut op: ReadOp,
        buf: AlignedBuf,
        range: Range<usize>,
        from: u64,
        from_ahead: bool,
        ctx: &mut LogCtx,
    ) {
        let len = range.len().min(op.len);
        let data = &buf.as_slice()[range.start..range.start + len];
        let whole = match scan(data, op.offset) {
            Scan::Whole(whole) => whole,
            Scan::Need { at, size } => {
                let mut op = op;
                return match self.widen(&mut op, from + at as u64, size) {
                    Some(fd) => {
                        self.submit_read(fd, op, ctx);
                    }
                    None => self.answer_nothing(op, ctx),
                };
            }
            Scan::Nothing => return self.answer_nothing(op, ctx),
        };
        if from_ahead {
            ctx.counters.log_read_ahead_hits += 1;
        }
        let next = end_of_batches(&data[whole.clone()], from + whole.start as u64);
        let at = range.start;
        // The read buffer becomes the records as they are: no copy. It is charged to this
        // shard's memory budget (fetch) until the response is built.
        let cap = buf.capacity();
        let tracked = crate::budget::Tracked::new(buf, cap, crate::budget::Purpose::Fetch);
        let records = Some(Bytes::from_owner(tracked).slice(at + whole.start..at + whole.end));
        let result = LogResult::Fetched {
            error: 0,
            high_watermark: op.hw,
            log_start: op.log_start,
            records,
            last_stable: op.last_stable,
            aborted: std::mem::take(&mut op.aborted),
        };
        self.fetch_done(op, result, next, ctx);
    }

    /// Fetch `op` found no batch to answer with: an empty answer.
    fn answer_nothing(&mut self, op: ReadOp, ctx: &mut LogCtx) {
        let result = LogResult::Fetched {
            error: 0,
            high_watermark: op.hw,
            log_start: op.log_start,
            records: None,
            last_stable: op.last_stable,
            aborted: Vec::new(),
        };
        self.fetch_done(op, result, None, ctx);
    }

    /// Make fetch `op` read again from file position `position`: at least the `size` bytes
    /// of the batch there (or a header's worth, then its size is known), within what is
    /// readable of its segment; the handle to read with. None when that reads nothing new
    /// (the same bytes again, or past the readable end) or the partition is gone.
    fn widen(
        &mut self,
        op: &mut ReadOp,
        position: u64,
        size: Option<usize>,
    ) -> Option<(RawFd, bool)> {
        let p = self.parts.get_mut(op.part)?;
        let end = if op.path == p.committed.0 {
            p.committed.1
        } else {
            p.segment_size(&op.path)?
        };
        let fd = p.reader(&op.path)?;
        let want = op.len.max(size.unwrap_or(HEADER_BYTES)) as u64;
        let len = want.min(end.saturating_sub(position)) as usize;
        if len == 0 || (position == op.position && len <= op.len) {
            return None;
        }
        op.position = position;
        op.len = len;
        Some(fd)
    }

    /// A fetch was answered from `op`'s read: reply, and read the partition's next range
    /// ahead when this one was large (a consumer catching up, not one tailing the log).
    fn fetch_done(
        &mut self,
        op: ReadOp,
        result: LogResult,
        next: Option<(u64, i64)>,
        ctx: &mut LogCtx,
    ) {
        if let Some(to) = op.reply {
            ctx.reply(to, result);
        }
        let Some((next, next_offset)) = next.filter(|_| op.len >= READ_AHEAD_MIN_BYTES) else {
            return;
        };
        let Some(p) = self.parts.get_mut(op.part) else {
            return;
        };
        if p.failed || p.ahead.as_ref().is_some_and(|a| a.reading.is_some()) {
            return;
        }
        let Some(fd) = p.reader(&op.path).filter(|&(_, direct)| direct) else {
            return; // buffered reads have the kernel's readahead
        };
        // Only acknowledged bytes: they never change, so the buffer stays good.
        let end = if op.path == p.committed.0 {
            p.committed.1
        } else {
            p.segment_size(&op.path).unwrap_or(0)
        };
        let len = end.saturating_sub(next).min(op.len as u64) as usize;
        if len == 0 {
            return;
        }
        let path = op.path.clone();
        let ahead = ReadOp {
            buf: AlignedBuf::default(),
            skip: 0,
            len,
            offset: -1,
            time: None,
            reply: None,
            hw: -1,
            log_start: -1,
            last_stable: -1,
            aborted: Vec::new(),
            part: op.part,
            path: op.path,
            position: next,
        };
        ctx.counters.log_read_aheads += 1;
        let key = self.submit_read(fd, ahead, ctx);
        if let Some(p) = self.parts.get_mut(op.part) {
            p.ahead = Some(Ahead {
                path,
                next_offset,
                reading: Some(key),
                data: None,
                waiter: None,
            });
        }
    }

    /// Read `op.len` bytes at `op.position` through the ring; `on_read` continues when it
    /// completes. Through an O_DIRECT handle the read covers the whole aligned blocks
    /// around them (`op.skip` bytes lead in). Returns the read's key.
    fn submit_read(
        &mut self,
        (fd, direct): (RawFd, bool),
        mut op: ReadOp,
        ctx: &mut LogCtx,
    ) -> SlabKey {
        let position = op.position;
        let (start, span) = if direct {
            let start = position - position % ALIGN as u64;
            op.skip = (position - start) as usize;
            (start, (op.skip + op.len).next_multiple_of(ALIGN))
        } else {
            (position, op.len)
        };
        let buf = std::mem::take(&mut op.buf);
        let key = self.reads.insert(op);
        let owner = Owner::new(Kind::LogRead, key.slot, key.gen);
        ctx.io.read_at(fd, buf, span, start, owner);
        self.in_flight += 1;
        key
    }

    pub(super) fn on_read(&mut self, c: Completion, ctx: &mut LogCtx) {
        let key = owner_key(&c.owner);
        let res = c.res;
        let Some(mut op) = self.reads.remove(key) else {
            return;
        };
        op.buf = c.held.into_aligned();
        // The bytes wanted: after the lead-in, and never past what was asked for (a direct
        // read's last block can run past the acknowledged end).
        let n = op.buf.len();
        let wanted = op.skip.min(n)..(op.skip + op.len).min(n);
        if let Some(ts) = op.time {
            let r = if res < 0 {
                offset_error(ErrorCode::KafkaStorageError)
            } else {
                let (offset, timestamp) =
                    records::first_at_or_after(&op.buf.as_slice()[wanted], ts).unwrap_or((-1, -1));
                LogResult::Offset {
                    error: 0,
                    offset,
                    timestamp,
                }
            };
            if let Some(to) = op.reply {
                ctx.reply(to, r);
            }
            return;
        }
        if op.reply.is_none() {
            return self.ahead_landed(key, op, res, wanted, ctx);
        }
        if res < 0 {
            let r = fetch_error(ErrorCode::KafkaStorageError, op.hw, op.log_start);
            return self.fetch_done(op, r, None, ctx);
        }
        let buf = std::mem::take(&mut op.buf);
        let from = op.position;
        self.answer_fetch(op, buf, wanted, from, false, ctx);
    }

    /// A read-ahead landed: keep it, or answer the fetch waiting for it.
    fn ahead_landed(
        &mut self,
        key: SlabKey,
        mut op: ReadOp,
        res: i32,
        wanted: Range<usize>,
        ctx: &mut LogCtx,
    ) {
        let Some(p) = self.parts.get_mut(op.part) else {
            return;
        };
        let Some(a) = p.ahead.as_mut().filter(|a| a.reading == Some(key)) else {
            return; // replaced or dropped meanwhile
        };
        a.reading = None;
        let waiter = a.waiter.take();
        if res < 0 {
            p.ahead = None;
        } else {
            a.data = Some((std::mem::take(&mut op.buf), wanted, op.position));
        }
        let Some(w) = waiter else {
            return;
        };
        match p.ahead.take().and_then(|a| a.data) {
            Some((buf, range, at)) => self.answer_fetch(w, buf, range, at, true, ctx),
            // The read-ahead failed: the fetch reads for itself.
            None => match p.reader(&w.path) {
                Some(fd) => {
                    self.submit_read(fd, w, ctx);
                }
                None => {
                    let r = fetch_error(ErrorCode::KafkaStorageError, w.hw, w.log_start);
                    self.fetch_done(w, r, None, ctx);
                }
            },
        }
    }

    /// A fetch waiting for partition `part`'s read-ahead is answered with `error`; the
    /// read-ahead is dropped.
    pub(super) fn drop_read_ahead(&mut self, part: SlabKey, error: ErrorCode, ctx: &mut LogCtx) {
        let waiter = self
            .parts
            .get_mut(part)
            .and_then(|p| p.ahead.take())
            .and_then(|a| a.waiter);
        if let Some(to) = waiter.and_then(|w| w.reply) {
            ctx.reply(to, fetch_error(error, -1, -1));
        }
    }

    /// Whether a read of segment `path` of partition `part` is in flight (a fetch's, a
    /// ListOffsets' or a read-ahead): compaction switches a segment's file only when none is,
    /// since each reads at the positions of the file it was planned on.
    pub(super) fn reading(&self, part: SlabKey, path: &std::path::Path) -> bool {
        reads_segment(&self.reads, part, path)
    }
}

/// Whether one of `reads` in flight reads segment `path` of partition `part` (retention
/// keeps such a segment until the read is done).
pub(super) fn reads_segment(reads: &Reads, part: SlabKey, path: &std::path::Path) -> bool {
    reads
        .iter()
        .any(|(_, op)| op.part == part && op.path == path)
}

/// Where, in bytes read for a fetch from `offset`, the batches it wants are.
#[derive(Debug, PartialEq, Eq)]
enum Scan {
    /// Whole batches, the first the one holding `offset` (or the first after it).
    Whole(Range<usize>),
    /// The wanted batch starts at `at` but is not whole here (`size`: its size, when its
    /// header is), or starts at or after the end of what was read.
    Need { at: usize, size: Option<usize> },
    /// Bytes that are not batches.
    Nothing,
}

/// Walk `buf`'s batches, skipping those that end before `offset`.
fn scan(buf: &[u8], offset: i64) -> Scan {
    let mut pos = 0;
    while pos + HEADER_BYTES <= buf.len() {
        let Ok(h) = batch::peek(&buf[pos..]) else {
            return Scan::Nothing;
        };
        if h.last_offset() < offset {
            pos += h.size;
            continue;
        }
        if pos + h.size > buf.len() {
            return Scan::Need {
                at: pos,
                size: Some(h.size),
            };
        }
        let start = pos;
        while pos + HEADER_BYTES <= buf.len() {
            match batch::peek(&buf[pos..]) {
                Ok(h) if pos + h.size <= buf.len() => pos += h.size,
                _ => break,
            }
        }
        return Scan::Whole(start..pos);
    }
    Scan::Need {
        at: pos,
        size: None,
    }
}

/// The whole batches at the front of `records` that fit in `budget` bytes; at least the
/// first when `at_least_one` (KIP-74: a response's first batch goes out whole, whatever its
/// size).
pub fn batches_within(records: &Bytes, budget: usize, at_least_one: bool) -> Bytes {
    let mut end = 0;
    while end + HEADER_BYTES <= records.len() {
        let Ok(h) = batch::peek(&records[end..]) else {
            break;
        };
        let next = end + h.size;
        if next > records.len() || (next > budget && !(at_least_one && end == 0)) {
            break;
        }
        end = next;
    }
    records.slice(..end)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Batches of `sizes` records each (values of 100 bytes), offsets from 0.
    fn log(sizes: &[usize]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut base = 0;
        for &n in sizes {
            let values: Vec<Vec<u8>> = (0..n).map(|_| vec![b'v'; 100]).collect();
            let refs: Vec<&[u8]> = values.iter().map(|v| v.as_slice()).collect();
            out.extend_from_slice(&batch::build(base, 0, &refs));
            base += n as i64;
        }
        out
    }

    #[test]
    fn scan_finds_the_wanted_batch_or_says_what_to_read() {
        let data = log(&[2, 10, 3]);
        let b0 = batch::peek(&data).unwrap().size;
        let b1 = batch::peek(&data[b0..]).unwrap().size;
        // All there: from the batch holding the offset to the end.
        assert_eq!(scan(&data, 0), Scan::Whole(0..data.len()));
        assert_eq!(scan(&data, 5), Scan::Whole(b0..data.len()));
        // Read cut inside the wanted batch: read it again whole, from its start.
        assert_eq!(
            scan(&data[..b0 + 200], 5),
            Scan::Need {
                at: b0,
                size: Some(b1)
            }
        );
        // Cut inside a batch wanted only after one that is whole: the whole ones go.
        assert_eq!(scan(&data[..b0 + 200], 1), Scan::Whole(0..b0));
        // Cut inside an earlier batch's records (it ends before the offset): skip it.
        assert_eq!(
            scan(&data[..b0 + 100], 13),
            Scan::Need {
                at: b0 + b1,
                size: None
            }
        );
        // Cut inside the header of the wanted batch.
        assert_eq!(scan(&data[..b0 + 30], 5), Scan::Need { at: b0, size: None });
        assert_eq!(scan(&[0u8; 80], 0), Scan::Nothing);
    }

    #[test]
    fn response_budget_keeps_whole_batches_and_at_least_one() {
        let data = Bytes::from(log(&[10, 10, 10]));
        let b = batch::peek(&data).unwrap().size;
        assert_eq!(batches_within(&data, 10, true).len(), b);
        assert_eq!(batches_within(&data, 10, false).len(), 0);
        assert_eq!(batches_within(&data, 2 * b + 5, false).len(), 2 * b);
        assert_eq!(batches_within(&data, usize::MAX, false).len(), 3 * b);
    }
}
