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

use super::ops::LogResult;
use super::partition::{end_of_batches, find_time, trim_read};
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
    /// Some(ts): a ListOffsets lookup of the first batch with a timestamp of at least ts.
    time: Option<i64>,
    /// Who gets the answer; None for a read-ahead.
    reply: Option<Dest>,
    hw: i64,
    log_start: i64,
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
    pub(super) fn fetch(
        &mut self,
        topic: &str,
        partition: i32,
        offset: i64,
        max_bytes: i32,
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
        // An empty answer: the consumer is at the end, or nothing readable is there yet.
        let nothing = LogResult::Fetched {
            error: 0,
            high_watermark: hw,
            log_start: ls,
            records: None,
        };
        if offset < ls || offset > hw {
            return ctx.reply(reply, fetch_error(ErrorCode::OffsetOutOfRange, hw, ls));
        }
        if offset == hw {
            return ctx.reply(reply, nothing);
        }
        // The client names the size, so it is capped: at most the larger of one whole batch
        // (--max-message-bytes) and FETCH_PARTITION_BYTES_MIN is read and held.
        let cap = ctx.cfg.max_message_bytes.max(FETCH_PARTITION_BYTES_MIN) as u64;
        let plan = match p.log.plan_read(offset, (max_bytes.max(1) as u64).min(cap)) {
            Ok(Some(plan)) => plan,
            _ => return ctx.reply(reply, nothing),
        };
        // Never read past what is acknowledged.
        let mut len = plan.len;
        if plan.path == p.committed.0 {
            len = len.min(p.committed.1.saturating_sub(plan.position));
        }
        let Some(fd) = p.reader(&plan.path) else {
            return ctx.reply(reply, fetch_error(ErrorCode::KafkaStorageError, hw, ls));
        };
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
            -1 => p.hw,
            ts => {
                let committed = (p.committed.0.as_path(), p.committed.1);
                let plan = p.log.plan_time_read(ts, committed);
                let fd = plan.as_ref().and_then(|pl| p.reader(&pl.path));
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
    /// whole batches from its offset on. `from_ahead`: the bytes are a read-ahead's (which
    /// starts at the batch the fetch asks for); with no whole batch there, read again.
    fn answer_fetch(
        &mut self,
        op: ReadOp,
        buf: AlignedBuf,
        range: Range<usize>,
        from: u64,
        from_ahead: bool,
        ctx: &mut LogCtx,
    ) {
        let len = range.len().min(op.len);
        let data = &buf.as_slice()[range.start..range.start + len];
        let whole = trim_read(data, op.offset);
        if from_ahead && !whole.is_empty() {
            ctx.counters.log_read_ahead_hits += 1;
        }
        if whole.is_empty() && from_ahead {
            let fd = self.parts.get_mut(op.part).and_then(|p| p.reader(&op.path));
            if let Some(fd) = fd {
                self.submit_read(fd, op, ctx);
                return;
            }
        }
        let next = end_of_batches(&data[whole.clone()], from + whole.start as u64);
        let at = range.start;
        // The read buffer becomes the records as they are: no copy.
        let records = (!whole.is_empty())
            .then(|| Bytes::from_owner(buf).slice(at + whole.start..at + whole.end));
        let result = LogResult::Fetched {
            error: 0,
            high_watermark: op.hw,
            log_start: op.log_start,
            records,
        };
        self.fetch_done(op, result, next, ctx);
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
                    find_time(&op.buf.as_slice()[wanted], ts).unwrap_or((-1, -1));
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
}
