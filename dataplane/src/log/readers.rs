//! The read handles of partitions' older segments, as a bounded cache per shard.
//!
//! A partition's active segment keeps its read and write handles open (every produce and
//! every tailing fetch uses them), so an idle partition holds 2 descriptors, which is what
//! `--max-partitions` budgets (`shard/node.rs`). A segment that is no longer active keeps
//! its read handle only while it is among the `SEGMENT_READERS_PER_SHARD` (limits.rs) most
//! recently read older segments of the shard; the least recently read is closed (through
//! a file job, after whatever was issued on it) when another comes in. A fetch or
//! ListOffsets that needs an older segment whose handle was closed opens it again through
//! a file job and runs again when it is open. So rolled segments, however many, never
//! take descriptors past the bound: without it each held one for as long as it was on disk
//! (a partition of k segments held k + 1), which is how a node ran out of descriptors.
//!
//! Owned by one shard. Entries name a partition by its slab key, so a deleted partition's
//! entries match nothing and leave with the next evictions.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use super::files::{c_path, Job, Step, Then};
use super::ops::{LogOp, LogResult};
use super::{LogCtx, Logs};
use crate::limits::SEGMENT_READERS_PER_SHARD;
use crate::proto::kafka::ErrorCode;
use crate::runtime::slab::SlabKey;
use crate::txn::Dest;

type Key = (SlabKey, PathBuf);

/// Least recently read first.
pub struct ReaderCache {
    max: usize,
    clock: u64,
    stamps: HashMap<Key, u64>,
    order: BTreeMap<u64, Key>,
}

impl Default for ReaderCache {
    fn default() -> ReaderCache {
        ReaderCache::new(SEGMENT_READERS_PER_SHARD)
    }
}

impl ReaderCache {
    pub fn new(max: usize) -> ReaderCache {
        ReaderCache {
            max: max.max(1),
            clock: 0,
            stamps: HashMap::new(),
            order: BTreeMap::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.stamps.len()
    }

    pub fn is_empty(&self) -> bool {
        self.stamps.is_empty()
    }

    /// Mark `path` of `part` as just read (nothing when it is not an entry).
    pub fn touch(&mut self, part: SlabKey, path: &Path) {
        let key = (part, path.to_path_buf());
        if let Some(old) = self.stamps.get(&key).copied() {
            self.order.remove(&old);
            self.clock += 1;
            self.stamps.insert(key.clone(), self.clock);
            self.order.insert(self.clock, key);
        }
    }

    /// Let go of the `n` least recently read entries (their handles are to be closed).
    pub fn shed(&mut self, n: usize) -> Vec<Key> {
        let mut out = Vec::new();
        while out.len() < n {
            let Some((_, k)) = self.order.pop_first() else {
                break;
            };
            self.stamps.remove(&k);
            out.push(k);
        }
        out
    }

    /// Add an older segment's open read handle; returns the entries past the bound, least
    /// recently read first, whose handles are to be closed.
    pub fn insert(&mut self, part: SlabKey, path: PathBuf) -> Vec<Key> {
        let key = (part, path);
        if let Some(old) = self.stamps.remove(&key) {
            self.order.remove(&old);
        }
        self.clock += 1;
        self.stamps.insert(key.clone(), self.clock);
        self.order.insert(self.clock, key);
        let mut out = Vec::new();
        while self.stamps.len() > self.max {
            let Some((_, k)) = self.order.pop_first() else {
                break;
            };
            self.stamps.remove(&k);
            out.push(k);
        }
        out
    }
}

impl Logs {
    /// Segment `path` of `part` is no longer active: its read handle joins the cache, and
    /// the handles the cache lets go are closed.
    pub(super) fn retire_reader(&mut self, part: SlabKey, path: PathBuf, ctx: &mut LogCtx) {
        let victims = self.readers.insert(part, path);
        self.close_readers(victims, ctx);
    }

    /// The segment before `path` in `part` stopped being active (`path` was rolled to):
    /// its read handle joins the cache.
    pub(super) fn retire_segment_before(&mut self, part: SlabKey, path: &Path, ctx: &mut LogCtx) {
        let Some(p) = self.parts.get(part) else {
            return;
        };
        let segs = &p.log.segments;
        let before = segs
            .iter()
            .position(|s| s.path == path)
            .and_then(|i| i.checked_sub(1))
            .map(|i| segs[i].path.clone());
        if let Some(before) = before.filter(|b| p.files.contains_key(b)) {
            self.retire_reader(part, before, ctx);
        }
    }

    /// Close the read handles of `victims` that are still open and not active.
    pub(super) fn close_readers(&mut self, victims: Vec<Key>, ctx: &mut LogCtx) {
        let mut job = Job::new("closing idle segment handles", Then::Nothing);
        for (part, path) in victims {
            let Some(p) = self.parts.get_mut(part) else {
                continue;
            };
            if p.log.segments.last().is_some_and(|s| s.path == path) {
                continue; // active again (cannot happen: segments only roll forward)
            }
            if let Some((f, _)) = p.files.remove(&path) {
                job.close(f);
            }
        }
        if job.has_steps() {
            self.start_job(job, ctx);
        }
    }

    /// A rolled segment's open ran out of descriptors: the partition's appends keep
    /// waiting for it (it stays in `opening`), half the cache's handles are closed, and the
    /// open is tried again from the next tick. Each partition rolling holds 2 descriptors
    /// more until its previous segment's last group commits (then that write handle
    /// closes and the read handle joins the cache), so many partitions rolling at once can
    /// pass the limit for a moment; failing them would stop their writes for good.
    pub(super) fn roll_open_later(&mut self, part: SlabKey, path: PathBuf, ctx: &mut LogCtx) {
        if self.roll_opens.is_empty() {
            tracing::warn!(
                "out of file descriptors opening rolled segments; retrying from the next tick (raise `ulimit -n` or lower --max-partitions if this repeats)"
            );
        }
        let n = self.readers.len().div_ceil(2);
        let victims = self.readers.shed(n);
        self.close_readers(victims, ctx);
        self.roll_opens.push((part, path));
    }

    /// From the tick: open again the rolled segments that ran out of descriptors.
    pub(super) fn retry_roll_opens(&mut self, ctx: &mut LogCtx) {
        for (part, path) in std::mem::take(&mut self.roll_opens) {
            if self.parts.get(part).is_some() {
                self.open_rolled(part, path, ctx);
            }
        }
    }

    /// Called at start-up after a partition's segments were opened: the older ones' read
    /// handles join the cache (those past it close at once: start-up may block).
    pub(super) fn cache_recovered_readers(&mut self, part: SlabKey) {
        let Some(p) = self.parts.get(part) else {
            return;
        };
        let older: Vec<PathBuf> = p
            .log
            .segments
            .iter()
            .rev()
            .skip(1)
            .rev()
            .map(|s| s.path.clone())
            .collect();
        for path in older {
            for (vpart, vpath) in self.readers.insert(part, path) {
                if let Some(v) = self.parts.get_mut(vpart) {
                    drop(v.files.remove(&vpath));
                }
            }
        }
    }

    /// An older segment's read handle was closed: open it again (a file job), then run
    /// `retry` (the Fetch or ListOffsets that needed it) again.
    pub(super) fn reopen_reader(
        &mut self,
        part: SlabKey,
        path: PathBuf,
        retry: LogOp,
        reply: Dest,
        ctx: &mut LogCtx,
    ) {
        let Ok(c) = c_path(&path) else {
            return ctx.reply(reply, retry_failed(&retry));
        };
        let direct = if ctx.cfg.direct_io { libc::O_DIRECT } else { 0 };
        let then = Then::Reader {
            part,
            path: path.clone(),
            retry: Box::new(retry),
            reply,
        };
        let mut job = Job::new(format!("reopening {}", path.display()), then);
        job.step(Step::Open {
            path: c,
            flags: libc::O_RDONLY | direct,
            into: 0,
        });
        self.start_job(job, ctx);
    }

    /// The reopen ended: with the handle, the operation runs again; without, it is
    /// answered KAFKA_STORAGE_ERROR.
    pub(super) fn reader_reopened(
        &mut self,
        part: SlabKey,
        path: PathBuf,
        handle: Option<(std::fs::File, bool)>,
        retry: LogOp,
        reply: Dest,
        ctx: &mut LogCtx,
    ) {
        let (Some(handle), Some(p)) = (handle, self.parts.get_mut(part)) else {
            return ctx.reply(reply, retry_failed(&retry));
        };
        if !p.log.segments.iter().any(|s| s.path == path) {
            // Deleted meanwhile (retention, DeleteRecords): the operation finds out.
            drop(handle);
            return self.exec(retry, reply, ctx);
        }
        if let Some(old) = p.files.insert(path.clone(), handle) {
            // Two reopens of one segment crossed: the later handle stays.
            let mut job = Job::new("closing a duplicate segment handle", Then::Nothing);
            job.close(old.0);
            self.start_job(job, ctx);
        }
        self.retire_reader(part, path, ctx);
        self.exec(retry, reply, ctx);
    }
}

/// The answer to a Fetch or ListOffsets whose segment could not be opened again.
fn retry_failed(op: &LogOp) -> LogResult {
    let error = ErrorCode::KafkaStorageError.code();
    match op {
        LogOp::ListOffsets { .. } => LogResult::Offset {
            error,
            offset: -1,
            timestamp: -1,
        },
        _ => LogResult::Fetched {
            error,
            high_watermark: -1,
            log_start: -1,
            records: None,
            last_stable: -1,
            aborted: Vec::new(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_least_recently_read_go_first() {
        let k = |slot| SlabKey { slot, gen: 0 };
        let mut c = ReaderCache::new(2);
        assert!(c.insert(k(1), "a".into()).is_empty());
        assert!(c.insert(k(1), "b".into()).is_empty());
        c.touch(k(1), Path::new("a"));
        assert_eq!(c.insert(k(2), "c".into()), vec![(k(1), PathBuf::from("b"))]);
        assert_eq!(c.insert(k(2), "d".into()), vec![(k(1), PathBuf::from("a"))]);
        // Inserting one already there moves it, and evicts nothing.
        assert!(c.insert(k(2), "c".into()).is_empty());
        assert_eq!(c.len(), 2);
    }
}
