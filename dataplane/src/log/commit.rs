//! Produce: validating and planning appends, group commit, durability, and what a failed
//! write does; plus the tick's interval fsync and retention.
//!
//! Group commit: the appends one loop turn plans for a partition are written with one
//! `write` at their (contiguous) position, linked to one `fdatasync` under `--fsync
//! always`; the produce replies go out when that completes. Up to
//! [`COMMITS_IN_FLIGHT`] commits of a partition may be in flight, acknowledged strictly in
//! order. A failed or short write puts the partition into a storage-error state: every
//! planned append is undone, its producers get KAFKA_STORAGE_ERROR, and the partition keeps
//! serving reads but takes no more writes (until restart, whose recovery truncates any
//! partial write).

use std::os::fd::AsRawFd;
use std::path::PathBuf;

use bytes::Bytes;

use super::batch;
use super::files::{c_path, Job, Step, Then};
use super::ops::LogResult;
use super::partition::AppendPlan;
use super::producers::{self, SeqCheck};
use super::{owner_key, LogCtx, Logs};
use crate::limits::COMMITS_IN_FLIGHT;
use crate::proto::kafka::ErrorCode;
use crate::runtime::aligned::ALIGN;
use crate::runtime::io::Completion;
use crate::runtime::slab::SlabKey;
use crate::runtime::{next_gen, Kind, Owner};
use crate::txn::Dest;

/// How produced data is made durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fsync {
    /// fdatasync after every group commit, before the produce is acknowledged.
    Always,
    /// fdatasync from the tick every this many ms; acknowledged after the write.
    Interval(u64),
    /// Never; the kernel writes back when it likes.
    Never,
}

pub fn parse_fsync(s: &str) -> Result<Fsync, String> {
    match s {
        "always" => Ok(Fsync::Always),
        "never" => Ok(Fsync::Never),
        _ => match s.strip_prefix("interval:").map(str::parse::<u64>) {
            Some(Ok(ms)) if ms > 0 => Ok(Fsync::Interval(ms)),
            _ => Err(format!("'{s}': use always, never or interval:<ms>")),
        },
    }
}

pub struct PendingAppend {
    /// The batch as produced (a slice of the request, not copied); its base offset is
    /// set to the plan's when it is copied into the commit buffer.
    bytes: Bytes,
    pub plan: AppendPlan,
    /// The reply is sent with the last batch of a produce request.
    reply: Option<(Dest, i64)>,
}

pub struct Commit {
    seq: u32,
    appends: Vec<PendingAppend>,
    synced: bool,
    written: bool,
}

impl Commit {
    /// Appends of this commit that go to `path`.
    pub fn writes_to(&self, path: &std::path::Path) -> bool {
        self.appends.iter().any(|a| a.plan.path == path)
    }
}

fn produced(error: ErrorCode) -> LogResult {
    LogResult::Produced {
        error: error.code(),
        base_offset: -1,
        log_start: -1,
    }
}

impl Logs {
    pub(super) fn produce(
        &mut self,
        topic: &str,
        partition: i32,
        records: Bytes,
        reply: Dest,
        ctx: &mut LogCtx,
    ) {
        let Some(part) = self.find(topic, partition) else {
            return ctx.reply(reply, produced(ErrorCode::UnknownTopicOrPartition));
        };
        let Some(p) = self.parts.get_mut(part) else {
            return ctx.reply(reply, produced(ErrorCode::UnknownTopicOrPartition));
        };
        if p.failed {
            return ctx.reply(reply, produced(ErrorCode::KafkaStorageError));
        }
        let max_batch = usize::try_from(p.config.max_message_bytes).unwrap_or(usize::MAX);
        // Validate every batch before planning any, so a bad request changes nothing.
        let mut batches = Vec::new();
        let mut pos = 0;
        while pos < records.len() {
            match batch::validate_produced(&records[pos..]) {
                Ok(h) if h.size > max_batch => {
                    return ctx.reply(reply, produced(ErrorCode::MessageTooLarge))
                }
                // A compacted topic refuses records without a key (Kafka: INVALID_RECORD).
                Ok(h)
                    if p.config.cleanup != super::topics::Cleanup::Delete
                        && super::compact::filter::keyless(&h, &records[pos..pos + h.size]) =>
                {
                    return ctx.reply(reply, produced(ErrorCode::InvalidRecord))
                }
                Ok(h) => {
                    // Transactions: only the coordinator writes control batches.
                    if let Err(e) =
                        super::txn_index::check_produced(&h).and_then(|_| p.txn.check_produce(&h))
                    {
                        return ctx.reply(reply, produced(e));
                    }
                    batches.push((pos, h));
                    pos += h.size;
                }
                Err(e) => {
                    tracing::debug!(topic, partition, error = %e, "rejected a produced batch");
                    return ctx.reply(reply, produced(ErrorCode::of(&e)));
                }
            }
        }
        if batches.is_empty() {
            return ctx.reply(reply, produced(ErrorCode::InvalidRequest));
        }
        // Idempotent producers: drop duplicates (answered with their first offset), reject
        // gaps.
        let mut fresh = Vec::new();
        let mut dup_base = None;
        for (pos, h) in batches {
            match producers::check(&p.producers, &h) {
                SeqCheck::Fresh => fresh.push((pos, h)),
                SeqCheck::Duplicate(base) => {
                    dup_base.get_or_insert(base);
                }
                SeqCheck::Reject(e) => return ctx.reply(reply, produced(e)),
            }
        }
        if fresh.is_empty() {
            let r = LogResult::Produced {
                error: 0,
                base_offset: dup_base.unwrap_or(-1),
                log_start: p.log.log_start(),
            };
            return ctx.reply(reply, r);
        }
        let n = fresh.len();
        let mut first_base = -1;
        let mut rolled = Vec::new();
        for (k, (pos, h)) in fresh.into_iter().enumerate() {
            let bytes = records.slice(pos..pos + h.size);
            let plan = p.log.plan(bytes.len(), &h, ctx.now_ms);
            if first_base < 0 {
                first_base = plan.base_offset;
            }
            producers::remember(&mut p.producers, &h, plan.base_offset);
            // Transactions: a transactional batch opens its producer's transaction here.
            if h.attributes & super::txn_index::TRANSACTIONAL != 0 {
                p.txn
                    .note_data(h.producer_id, plan.base_offset, &plan.path, plan.position);
            }
            if plan.rolled {
                // The new segment's handles open through the ring; its group waits for them.
                p.opening.push(plan.path.clone());
                rolled.push(plan.path.clone());
            }
            let reply = (k + 1 == n).then_some((reply, first_base));
            p.pending.push(PendingAppend { bytes, plan, reply });
        }
        for path in rolled {
            self.open_rolled(part, path, ctx);
        }
        self.mark_dirty(part);
    }

    /// Append one batch this node writes itself (a transaction marker, `txn_index.rs`),
    /// answered like a produce once durable. Its base offset, or None (answered with an
    /// error) when the partition is gone or failed.
    pub(super) fn append_own(
        &mut self,
        part: SlabKey,
        bytes: Bytes,
        h: &batch::BatchHeader,
        reply: Dest,
        ctx: &mut LogCtx,
    ) -> Option<i64> {
        let Some(p) = self.parts.get_mut(part).filter(|p| !p.failed) else {
            ctx.reply(reply, produced(ErrorCode::KafkaStorageError));
            return None;
        };
        let plan = p.log.plan(bytes.len(), h, ctx.now_ms);
        let base = plan.base_offset;
        let rolled = plan.rolled.then(|| plan.path.clone());
        if let Some(path) = &rolled {
            p.opening.push(path.clone());
        }
        p.pending.push(PendingAppend {
            bytes,
            plan,
            reply: Some((reply, base)),
        });
        if let Some(path) = rolled {
            self.open_rolled(part, path, ctx);
        }
        self.mark_dirty(part);
        Some(base)
    }

    /// Open a rolled segment's read and write handles (see [`Then::Segment`]).
    pub(super) fn open_rolled(&mut self, part: SlabKey, path: PathBuf, ctx: &mut LogCtx) {
        // The segment before it is no longer active: its read handle goes to the shard's
        // bounded cache now, before the new segment's two handles open (`readers.rs`).
        self.retire_segment_before(part, &path, ctx);
        let Ok(c) = c_path(&path) else {
            tracing::error!(path = %path.display(), "a segment path cannot be passed to the kernel");
            return self.fail_partition(part, ctx);
        };
        let mut job = Job::new(
            format!("opening {}", path.display()),
            Then::Segment { part, path },
        );
        job.open_segment(&c, ctx.cfg.direct_io, 0);
        self.start_job(job, ctx);
    }

    /// A rolled segment's handles are open (or the open failed).
    pub(super) fn segment_opened(
        &mut self,
        part: SlabKey,
        path: PathBuf,
        handles: Option<super::state::SegmentHandles>,
        ctx: &mut LogCtx,
    ) {
        let Some(p) = self.parts.get_mut(part) else {
            return; // deleted meanwhile; the handles close here
        };
        p.opening.retain(|o| o != &path);
        if p.failed {
            return;
        }
        match handles {
            Some((r, w)) => {
                p.files.insert(path.clone(), r);
                p.writers.insert(path, w);
                self.mark_dirty(part);
            }
            None => {
                tracing::error!(topic = %p.topic, partition = p.partition,
                    "opening a new segment failed; the partition stops taking writes");
                self.fail_partition(part, ctx);
            }
        }
    }

    /// Start the group commits this loop turn planned. Called once per turn. The next
    /// group's write goes to the disk while the previous fdatasync runs, and each group is
    /// acknowledged only when its own fdatasync (which covers everything written before
    /// it) completes, in order.
    pub fn flush(&mut self, ctx: &mut LogCtx) {
        let fsync = ctx.cfg.fsync;
        // This turn's list; `dirty` starts the next one empty, in the spare allocation.
        let mut dirty = std::mem::replace(&mut self.dirty, std::mem::take(&mut self.flushing));
        for part in dirty.drain(..) {
            let Some(p) = self.parts.get_mut(part) else {
                continue;
            };
            if p.committing.len() >= COMMITS_IN_FLIGHT || p.pending.is_empty() || p.failed {
                continue;
            }
            // One group: contiguous appends to the file of the first one.
            let path = p.pending[0].plan.path.clone();
            let Some((fd, direct)) = p.writers.get(&path).map(|(f, d)| (f.as_raw_fd(), *d)) else {
                if p.opening.contains(&path) {
                    continue; // the open's end marks the partition dirty again
                }
                tracing::error!(topic = %p.topic, partition = p.partition, path = %path.display(),
                    "a planned append's segment has no write handle; the partition stops taking writes");
                self.fail_partition(part, ctx);
                continue;
            };
            // Direct writes rewrite the previous group's last block: wait until that write
            // is done (its fdatasync may still run), so the two cannot land out of order.
            if direct && p.committing.back().is_some_and(|c| !c.written) {
                continue;
            }
            let cut = p
                .pending
                .iter()
                .skip(1)
                .position(|a| a.plan.path != path)
                .map_or(p.pending.len(), |k| k + 1);
            let appends: Vec<PendingAppend> = p.pending.drain(..cut).collect();
            let mut buf = p.spare.pop().unwrap_or_default();
            buf.clear();
            if direct && p.tail_path != path {
                // The first group of a new segment starts at byte 0.
                p.tail.clear();
                p.tail_path = path.clone();
            }
            // Direct writes start with the block's bytes already planned; buffered ones
            // start at the group's own first byte.
            let lead: &[u8] = if direct { &p.tail } else { &[] };
            buf.reserve(lead.len() + appends.iter().map(|a| a.bytes.len()).sum::<usize>() + ALIGN);
            buf.extend_from_slice(lead);
            let position = appends[0].plan.position - lead.len() as u64;
            for a in &appends {
                let at = buf.len();
                buf.extend_from_slice(&a.bytes);
                batch::set_base_offset(&mut buf.as_mut_slice()[at..], a.plan.base_offset);
            }
            if direct {
                let end = buf.len();
                let keep = end % ALIGN;
                p.tail.clear();
                p.tail.extend_from_slice(&buf.as_slice()[end - keep..end]);
                buf.pad_to_align();
            }
            let seq = p.next_commit;
            p.next_commit = next_gen(seq);
            let sync = fsync == Fsync::Always;
            p.committing.push_back(Commit {
                seq,
                appends,
                synced: !sync,
                written: false,
            });
            p.dirty_since_sync = true;
            let more = !p.pending.is_empty();
            let owner = Owner::new(Kind::LogWrite, part.slot, part.gen).with_aux(seq);
            let sync_owner =
                sync.then(|| Owner::new(Kind::LogSync, part.slot, part.gen).with_aux(seq));
            // The commit buffer is charged to the memory budget (produce) while it is written.
            crate::budget::charge(crate::budget::Purpose::Produce, buf.len());
            ctx.io.write_at(fd, buf, position, owner, sync_owner);
            self.in_flight += 1 + sync as usize;
            // More pending (a segment roll cut the group): try again next turn.
            if more {
                self.dirty.push(part);
            }
        }
        self.flushing = dirty;
    }

    pub(super) fn on_write(&mut self, c: Completion, ctx: &mut LogCtx) {
        let (part, seq) = (owner_key(&c.owner), c.owner.aux);
        let res = c.res;
        let buf = c.held.into_aligned();
        crate::budget::release(crate::budget::Purpose::Produce, buf.len());
        let Some(p) = self.parts.get_mut(part) else {
            return;
        };
        let Some(k) = p.committing.iter().position(|c| c.seq == seq) else {
            return;
        };
        if res < 0 || res as usize != buf.len() {
            tracing::error!(topic = %p.topic, partition = p.partition, res, wanted = buf.len(),
                "log write failed; the partition stops taking writes");
            return self.fail_partition(part, ctx);
        }
        p.committing[k].written = true;
        // One large produce must not pin its commit buffer's memory for the partition's life.
        if p.spare.len() < COMMITS_IN_FLIGHT
            && buf.capacity() <= crate::limits::COMMIT_BUF_KEEP_BYTES
        {
            p.spare.push(buf);
        }
        self.finish_commits(part, ctx);
    }

    pub(super) fn on_sync(&mut self, c: Completion, ctx: &mut LogCtx) {
        let (part, seq) = (owner_key(&c.owner), c.owner.aux);
        let Some(p) = self.parts.get_mut(part) else {
            return;
        };
        // Not found: the commit already failed (ECANCELED after a failed write).
        let Some(k) = p.committing.iter().position(|c| c.seq == seq) else {
            return;
        };
        if c.res < 0 {
            tracing::error!(topic = %p.topic, partition = p.partition, error = %std::io::Error::from_raw_os_error(-c.res),
                "fdatasync failed; the partition stops taking writes");
            return self.fail_partition(part, ctx);
        }
        p.committing[k].synced = true;
        self.finish_commits(part, ctx);
    }

    /// Acknowledge finished commits from the oldest on; stop at the first unfinished one.
    fn finish_commits(&mut self, part: SlabKey, ctx: &mut LogCtx) {
        let always = ctx.cfg.fsync == Fsync::Always;
        let Some(p) = self.parts.get_mut(part) else {
            return;
        };
        let log_start = p.log.log_start();
        let mut trims = Vec::new();
        while p.committing.front().is_some_and(|c| c.written && c.synced) {
            let Some(c) = p.committing.pop_front() else {
                break;
            };
            for a in c.appends {
                p.hw = a.plan.last_offset + 1;
                p.committed = (a.plan.path.clone(), a.plan.position + a.plan.len as u64);
                if let Some((to, base)) = a.reply {
                    let r = LogResult::Produced {
                        error: 0,
                        base_offset: base,
                        log_start,
                    };
                    ctx.reply(to, r);
                }
            }
        }
        if p.committing.is_empty() && always {
            p.dirty_since_sync = false;
        }
        if p.committing.is_empty() && p.writers.len() > 1 {
            // Close write handles of rolled-out segments nothing is writing any more, and
            // cut their direct-write padding so the file is exactly its batches (a file
            // job: ftruncate, then close; recovery trims the padding if it fails).
            let active = p.log.segments.last().map(|s| s.path.clone());
            let done: Vec<PathBuf> = p
                .writers
                .keys()
                .filter(|k| {
                    Some(*k) != active.as_ref() && !p.pending.iter().any(|a| &a.plan.path == *k)
                })
                .cloned()
                .collect();
            for path in done {
                let Some((f, direct)) = p.writers.remove(&path) else {
                    continue;
                };
                let size = p.segment_size(&path);
                let mut job = Job::new(format!("trimming {}", path.display()), Then::Nothing);
                let fd = job.give(f);
                if let (true, Some(len)) = (direct, size) {
                    job.step(Step::Ftruncate { fd, len });
                }
                job.step(Step::Close { fd });
                trims.push(job);
            }
        }
        if !p.pending.is_empty() {
            self.mark_dirty(part);
        }
        for job in trims {
            self.start_job(job, ctx);
        }
    }

    /// Undo every planned append of partition `part`, fail their producers, and take no
    /// more writes.
    pub(super) fn fail_partition(&mut self, part: SlabKey, ctx: &mut LogCtx) {
        if let Some(p) = self.parts.get_mut(part) {
            p.failed = true;
        }
        self.drop_appends(part, ErrorCode::KafkaStorageError, ctx);
    }

    /// Undo every planned append of partition `part` (newest first) and answer their
    /// producers with `error`. Commits in flight keep their buffers with the ring; their
    /// completions then find nothing to finish.
    pub(super) fn drop_appends(&mut self, part: SlabKey, error: ErrorCode, ctx: &mut LogCtx) {
        let Some(p) = self.parts.get_mut(part) else {
            return;
        };
        let mut all: Vec<PendingAppend> = Vec::new();
        for c in p.committing.drain(..) {
            all.extend(c.appends);
        }
        all.append(&mut p.pending);
        for a in all.iter().rev() {
            p.log.undo_append(&a.plan);
        }
        for (to, _) in all.iter().filter_map(|a| a.reply) {
            ctx.reply(to, produced(error));
        }
    }

    /// From the tick: interval fsync, and retention (whole old segments deleted).
    pub fn tick(&mut self, ctx: &mut LogCtx) {
        self.retry_roll_opens(ctx);
        let now = ctx.now_ms;
        let interval = matches!(ctx.cfg.fsync, Fsync::Interval(ms) if now.saturating_sub(self.last_sync_ms) >= ms);
        let mut syncs = Vec::new();
        let mut deletes = Vec::new();
        for slot in 0..self.parts.capacity() as u32 {
            let (Some(gen), Some(p)) = (self.parts.gen(slot), self.parts.at_mut(slot)) else {
                continue;
            };
            let part = SlabKey { slot, gen };
            if interval && p.dirty_since_sync && p.committing.is_empty() {
                if let Some((f, _)) = p.files.get(&p.committed.0) {
                    syncs.push(f.as_raw_fd());
                    p.dirty_since_sync = false;
                }
            }
            let (bytes, ms) = p.config.deletion();
            // Only acknowledged segments go, and none a read is in flight on: a segment
            // with a group still to write keeps its write handle (see `apply_retention`).
            let reads = &self.reads;
            let busy = |path: &std::path::Path| super::fetch::reads_segment(reads, part, path);
            let removed = p.log.apply_retention(bytes, ms, now, p.hw, busy);
            if !removed.is_empty() {
                p.txn.trim(p.log.log_start()); // Transactions: markers gone with them
            }
            for path in removed {
                let Ok(c) = c_path(&path) else { continue };
                // Unlink, then close the handles (the close of the last one frees the
                // blocks), on an io_uring worker.
                let mut job = Job::new(
                    format!("deleting {}", path.display()),
                    Then::Retained { part },
                );
                *self.retaining.entry(part).or_insert(0) += 1;
                job.step(Step::Unlink {
                    path: c,
                    dir: false,
                });
                if let Some((f, _)) = p.files.remove(&path) {
                    job.close(f);
                }
                // Every append to it is acknowledged, so no group writes through its write
                // handle any more (one still open closes here, not in finish_commits).
                debug_assert!(!p.committing.iter().any(|c| c.writes_to(&path)));
                if let Some((f, _)) = p.writers.remove(&path) {
                    job.close(f);
                }
                deletes.push(job);
            }
        }
        if interval {
            self.last_sync_ms = now;
        }
        for job in deletes {
            self.start_job(job, ctx);
        }
        for fd in syncs {
            ctx.io.fsync(fd, true, Owner::new(Kind::Ignore, 0, 0));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fsync_flag_parses() {
        assert_eq!(parse_fsync("always"), Ok(Fsync::Always));
        assert_eq!(parse_fsync("never"), Ok(Fsync::Never));
        assert_eq!(parse_fsync("interval:250"), Ok(Fsync::Interval(250)));
        for bad in ["", "sometimes", "interval:", "interval:0", "interval:x"] {
            assert!(parse_fsync(bad).is_err(), "{bad}");
        }
    }
}
