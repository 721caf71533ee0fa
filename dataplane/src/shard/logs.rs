//! The owner side of the log: the partitions this shard owns, their appends, commits and
//! reads, all through the shard's io_uring.
//!
//! Group commit: the appends one loop turn plans for a partition are written with one
//! `write` at their (contiguous) position, linked to one `fdatasync` under `--fsync
//! always`; the produce replies go out when that completes. A partition has at most one
//! commit in flight; appends planned meanwhile form the next group. A failed or short write
//! puts the partition into a storage-error state: every planned append is undone, its
//! producers get KAFKA_STORAGE_ERROR, and the partition keeps serving reads but takes no
//! more writes (until restart, whose recovery truncates any partial write).
//!
//! Reads never see bytes that are not yet acknowledged: they are clamped to the committed
//! end of the active segment.
//!
//! Everything else on disk (opening a rolled segment, a topic's folders and `topic.meta`,
//! deletes, trimming a rolled segment's padding) is a job in `shard/files.rs`, also through
//! the ring. Only start-up recovery (before the shard serves) uses blocking calls.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::time::Instant;

use bytes::Bytes;
use io_uring::{opcode, squeue, types};

use super::files::{c_path, Job, Step, Then};
use super::join::Outcome;
use super::Shard;
use crate::log::batch;
use crate::log::ops::{LogOp, LogResult};
use crate::log::partition::{segment_path, trim_read, AppendPlan, Partition, PRODUCER_BATCHES};
use crate::log::topics::{self, TopicMeta};
use crate::mesh::{ConnRef, RespBody, Response};
use crate::proto::kafka::ErrorCode;
use crate::runtime::aligned::{AlignedBuf, ALIGN};
use crate::runtime::{Kind, Token};

/// Where a log operation's result goes.
#[derive(Debug, Clone, Copy)]
pub enum ReplyTo {
    Local {
        slot: u32,
        gen: u32,
        seq: u64,
        part: u32,
    },
    Remote {
        shard: usize,
        conn: ConnRef,
        seq: u64,
        part: u32,
        sent: Instant,
    },
}

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

struct PendingAppend {
    /// The batch as produced (a slice of the request, not copied); its base offset is
    /// set to the plan's when it is copied into the commit buffer.
    bytes: Bytes,
    plan: AppendPlan,
    /// The reply is sent with the last batch of a produce request.
    reply: Option<(ReplyTo, i64)>,
}

struct Commit {
    seq: u32,
    /// What the write sends: under direct I/O, from the start of the block holding the
    /// group's first byte, padded with zeros to a whole block.
    buf: AlignedBuf,
    appends: Vec<PendingAppend>,
    synced: bool,
    written: bool,
}

pub struct PartState {
    pub topic: String,
    pub partition: i32,
    log: Partition,
    /// Read handles of every segment, and whether each is O_DIRECT (reads then go in
    /// whole aligned blocks, straight from the disk into our buffer).
    files: HashMap<PathBuf, (File, bool)>,
    /// Write handles of segments with appends pending or in flight (O_DIRECT where the
    /// filesystem allows), and whether each is direct.
    writers: HashMap<PathBuf, (File, bool)>,
    /// Rolled segments whose handles are still being opened; their groups wait.
    opening: Vec<PathBuf>,
    ahead: Option<Ahead>,
    /// Under direct I/O: the planned bytes of the active segment's last partial block
    /// (`tail_path`), which the next group's write starts with.
    tail: Vec<u8>,
    tail_path: PathBuf,
    pending: Vec<PendingAppend>,
    /// Group commits in flight, oldest first; completed strictly in order.
    committing: std::collections::VecDeque<Commit>,
    next_commit: u32,
    /// Buffers of finished commits, reused so large writes do not fault in fresh pages.
    spare: Vec<AlignedBuf>,
    failed: bool,
    /// Acknowledged end: offset and (active segment path, byte size).
    hw: i64,
    committed: (PathBuf, u64),
    dirty_since_sync: bool,
    config: topics::TopicConfig,
    /// Idempotent producers writing here: epoch and their last few batches' sequences.
    /// Rebuilt at start-up from the batches in the log (their headers carry producer id,
    /// epoch and sequence), as Kafka does when it has no producer snapshot.
    producers: HashMap<i64, ProducerState>,
}

/// Group commits of one partition in flight at once.
const COMMITS_IN_FLIGHT: usize = 4;

#[derive(Default)]
struct ProducerState {
    epoch: i16,
    /// (first sequence, last sequence, base offset) of recent batches, oldest first.
    recent: std::collections::VecDeque<(i32, i32, i64)>,
}

/// What the sequence check says about a batch from an idempotent producer.
enum SeqCheck {
    Fresh,
    /// Already stored at this base offset: answer success without storing it again.
    Duplicate(i64),
    Reject(ErrorCode),
}

/// Note a stored batch of an idempotent producer (at `base_offset`) for later checks.
fn remember_batch(
    producers: &mut HashMap<i64, ProducerState>,
    h: &batch::BatchHeader,
    base_offset: i64,
) {
    if h.producer_id < 0 || h.base_sequence < 0 {
        return;
    }
    let st = producers.entry(h.producer_id).or_default();
    if h.producer_epoch > st.epoch {
        st.recent.clear();
    }
    st.epoch = h.producer_epoch;
    st.recent.push_back((
        h.base_sequence,
        h.base_sequence.wrapping_add(h.last_offset_delta),
        base_offset,
    ));
    if st.recent.len() > PRODUCER_BATCHES {
        st.recent.pop_front();
    }
}

fn check_sequence(producers: &HashMap<i64, ProducerState>, h: &batch::BatchHeader) -> SeqCheck {
    if h.producer_id < 0 || h.base_sequence < 0 {
        return SeqCheck::Fresh;
    }
    let Some(st) = producers.get(&h.producer_id) else {
        return SeqCheck::Fresh;
    };
    if h.producer_epoch < st.epoch {
        return SeqCheck::Reject(ErrorCode::InvalidProducerEpoch);
    }
    if h.producer_epoch > st.epoch {
        return if h.base_sequence == 0 {
            SeqCheck::Fresh
        } else {
            SeqCheck::Reject(ErrorCode::OutOfOrderSequenceNumber)
        };
    }
    let last_seq = h.base_sequence.wrapping_add(h.last_offset_delta);
    if let Some(&(_, _, base)) = st
        .recent
        .iter()
        .find(|(f, l, _)| *f == h.base_sequence && *l == last_seq)
    {
        return SeqCheck::Duplicate(base);
    }
    match st.recent.back() {
        Some(&(_, l, _)) if h.base_sequence != l.wrapping_add(1) => {
            SeqCheck::Reject(ErrorCode::OutOfOrderSequenceNumber)
        }
        _ => SeqCheck::Fresh,
    }
}

pub struct ReadOp {
    /// What the read fills (not zeroed first: only the bytes the kernel reports are
    /// exposed). A direct read starts at the block holding the first byte wanted.
    buf: AlignedBuf,
    /// Bytes of `buf` before the first one wanted (direct reads), and how many are wanted.
    skip: usize,
    len: usize,
    /// For a fetch: the offset asked for. For ListOffsets by timestamp: unused.
    offset: i64,
    /// Some(ts): a ListOffsets lookup of the first batch with a timestamp of at least ts.
    time: Option<i64>,
    /// Who gets the answer; None for a read-ahead.
    reply: Option<ReplyTo>,
    hw: i64,
    log_start: i64,
    /// The partition (index on this shard), segment and file position read.
    part: usize,
    path: PathBuf,
    position: u64,
}

/// A partition's next range, read when a fetch's read landed, so that a consumer reading on
/// finds it already read (direct reads have no kernel readahead). One per partition.
struct Ahead {
    path: PathBuf,
    /// The offset a consumer continuing from the fetch before asks for next: the first
    /// batch of the range read.
    next_offset: i64,
    /// The read slot while in flight.
    reading: Option<u32>,
    /// Once landed: the buffer, the range of it read for, and that range's file position.
    data: Option<(AlignedBuf, std::ops::Range<usize>, u64)>,
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

/// Fetch reads at least this large start a read-ahead of the partition's next range.
const READ_AHEAD_MIN: usize = 1 << 20;

/// The log side of a shard.
#[derive(Default)]
pub struct Logs {
    pub topics: std::collections::BTreeMap<String, TopicMeta>,
    pub parts: Vec<PartState>,
    index: HashMap<(String, i32), usize>,
    dirty: Vec<usize>,
    reads: Vec<Option<ReadOp>>,
    free_reads: Vec<u32>,
    pub parked_resps: std::collections::VecDeque<(usize, Response)>,
    pub resume: Vec<u32>,
    last_sync_ms: u64,
    /// File jobs in flight (shard/files.rs).
    pub jobs: super::files::Jobs,
    /// Segment writes, fdatasyncs and reads submitted and not completed: their buffers
    /// must outlive them, so the shard does not exit before this is 0.
    pub in_flight: usize,
    /// Topics being created or deleted on this shard: another create of the name is
    /// refused (Kafka: TOPIC_ALREADY_EXISTS, "marked for deletion") until that is done.
    busy: std::collections::HashSet<String>,
}

fn open_segment(path: &PathBuf) -> std::io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
}

/// A segment's read handle, O_DIRECT when asked for and the filesystem takes it.
fn open_reader(path: &PathBuf, direct: bool) -> std::io::Result<(File, bool)> {
    use std::os::unix::fs::OpenOptionsExt;
    if direct {
        match OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECT)
            .open(path)
        {
            Ok(f) => return Ok((f, true)),
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {}
            Err(e) => return Err(e),
        }
    }
    Ok((open_segment(path)?, false))
}

/// A segment's write handle: O_DIRECT when asked for and the filesystem takes it (tmpfs
/// and some others answer EINVAL), else buffered. Returns the handle and whether it is
/// direct.
fn open_writer(path: &PathBuf, direct: bool) -> std::io::Result<(File, bool)> {
    use std::os::unix::fs::OpenOptionsExt;
    if direct {
        match OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .custom_flags(libc::O_DIRECT)
            .open(path)
        {
            Ok(f) => return Ok((f, true)),
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                tracing::info!(path = %path.display(), "the filesystem refuses O_DIRECT; writing through the page cache");
            }
            Err(e) => return Err(e),
        }
    }
    Ok((open_segment(path)?, false))
}

impl PartState {
    /// A segment's read handle, and whether it is O_DIRECT.
    fn reader(&self, path: &PathBuf) -> Option<(std::os::fd::RawFd, bool)> {
        self.files.get(path).map(|(f, d)| (f.as_raw_fd(), *d))
    }

    pub fn open(
        data_dir: &std::path::Path,
        meta: &TopicMeta,
        partition: i32,
        now_ms: u64,
        direct: bool,
    ) -> std::io::Result<PartState> {
        let dir = topics::partition_dir(data_dir, &meta.name, partition);
        let (log, rep) = Partition::recover(
            &dir,
            meta.config.segment_bytes,
            meta.config.segment_ms,
            now_ms,
        )?;
        if rep.truncated_bytes > 0 || rep.segments_removed > 0 {
            tracing::warn!(topic = %meta.name, partition, cut_bytes = rep.truncated_bytes,
                segments_removed = rep.segments_removed, reason = rep.reason.as_deref().unwrap_or(""),
                "recovery truncated a torn or corrupt log tail");
        }
        let mut files = HashMap::new();
        for s in &log.segments {
            files.insert(s.path.clone(), open_reader(&s.path, direct)?);
        }
        let active = log
            .segments
            .last()
            .map(|s| (s.path.clone(), s.size))
            .unwrap_or_default();
        let (w, direct) = open_writer(&active.0, direct)?;
        // Direct writes rewrite the last partial block whole, so start from its bytes.
        let mut tail = Vec::new();
        if direct && active.1 % ALIGN as u64 != 0 {
            use std::os::unix::fs::FileExt;
            let partial = active.1 % ALIGN as u64;
            tail.resize(partial as usize, 0);
            File::open(&active.0)?.read_exact_at(&mut tail, active.1 - partial)?;
        }
        let mut ps = PartState::assemble(meta, partition, log, files, (w, direct), tail);
        for h in &rep.producer_batches {
            remember_batch(&mut ps.producers, h, h.base_offset);
        }
        Ok(ps)
    }

    /// A partition just created: `log` is [`Partition::empty`], `read` and `write` are its
    /// first segment's handles.
    fn created(
        meta: &TopicMeta,
        partition: i32,
        log: Partition,
        read: (File, bool),
        write: (File, bool),
    ) -> PartState {
        let mut files = HashMap::new();
        if let Some(s) = log.segments.last() {
            files.insert(s.path.clone(), read);
        }
        PartState::assemble(meta, partition, log, files, write, Vec::new())
    }

    fn assemble(
        meta: &TopicMeta,
        partition: i32,
        log: Partition,
        files: HashMap<PathBuf, (File, bool)>,
        write: (File, bool),
        tail: Vec<u8>,
    ) -> PartState {
        let active = log
            .segments
            .last()
            .map(|s| (s.path.clone(), s.size))
            .unwrap_or_default();
        let mut writers = HashMap::new();
        writers.insert(active.0.clone(), write);
        PartState {
            topic: meta.name.clone(),
            partition,
            hw: log.next_offset(),
            log,
            files,
            writers,
            opening: Vec::new(),
            ahead: None,
            tail,
            tail_path: active.0.clone(),
            pending: Vec::new(),
            committing: Default::default(),
            next_commit: 0,
            spare: Vec::new(),
            failed: false,
            committed: active,
            dirty_since_sync: false,
            config: meta.config,
            producers: HashMap::new(),
        }
    }
}

impl Logs {
    /// No operation in flight that points into log buffers (the shard may exit).
    pub fn io_done(&self) -> bool {
        self.in_flight == 0 && self.jobs.is_empty()
    }

    pub fn idle(&self) -> bool {
        self.parked_resps.is_empty() && self.resume.is_empty() && self.dirty.is_empty()
    }

    pub fn add_part(&mut self, p: PartState) {
        self.index
            .insert((p.topic.clone(), p.partition), self.parts.len());
        self.parts.push(p);
    }
}

impl Shard {
    fn owns_partition(&self, topic: &str, partition: i32) -> bool {
        self.owner.shard(topics::partition_slot(topic, partition)) == self.id
    }

    /// Run a log operation on this shard (it owns the partition, or it is a topic-wide op).
    pub(super) fn exec_log(&mut self, op: LogOp, reply: ReplyTo) {
        match op {
            LogOp::CreateTopic(meta) => self.create_topic_here(meta, reply),
            LogOp::DeleteTopic(name) => self.delete_topic_here(&name, reply),
            LogOp::PersistTopic(meta) => self.persist_topic(&meta, reply),
            LogOp::RemoveTopicMeta(name) => self.remove_topic_meta(&name, reply),
            LogOp::Produce {
                topic,
                partition,
                records,
            } => self.produce(&topic, partition, records, reply),
            LogOp::Fetch {
                topic,
                partition,
                offset,
                max_bytes,
            } => self.fetch(&topic, partition, offset, max_bytes, reply),
            LogOp::ListOffsets {
                topic,
                partition,
                timestamp,
            } => {
                let r = match self.logs.index.get(&(topic, partition)) {
                    None => LogResult::Offset {
                        error: ErrorCode::UnknownTopicOrPartition.code(),
                        offset: -1,
                        timestamp: -1,
                    },
                    Some(&i) => {
                        let p = &self.logs.parts[i];
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
                                            part: i,
                                            path: plan.path.clone(),
                                            position: plan.position,
                                        };
                                        self.submit_read(fd, op);
                                        return;
                                    }
                                    // No stored record is that new: Kafka answers offset -1.
                                    _ => -1,
                                }
                            }
                        };
                        LogResult::Offset {
                            error: 0,
                            offset,
                            timestamp: -1,
                        }
                    }
                };
                self.log_reply(reply, r);
            }
        }
    }

    /// Forget a topic; close and delete the partitions this shard owns (a file job; the
    /// answer waits for it). A deleted partition's slot stays (marked failed, out of the
    /// index) so completions still in flight for it land harmlessly.
    fn delete_topic_here(&mut self, name: &str, reply: ReplyTo) {
        let Some(meta) = self.logs.topics.remove(name) else {
            let error = ErrorCode::UnknownTopicOrPartition.code();
            return self.log_reply(reply, LogResult::Created { error });
        };
        let then = Then::Deleted {
            topic: name.to_string(),
            reply,
        };
        let mut job = Job::new(format!("deleting topic {name}"), then);
        let mut handles = Vec::new();
        for p in 0..meta.partitions {
            let Some(i) = self.logs.index.remove(&(name.to_string(), p)) else {
                continue;
            };
            // Appends waiting (for a segment open, for their group's turn) or on the disk
            // are answered now; completions still to come find nothing and are dropped.
            self.drop_appends(i, ErrorCode::UnknownTopicOrPartition);
            // A fetch waiting for a read-ahead is answered too.
            let waiter = self.logs.parts[i].ahead.take().and_then(|a| a.waiter);
            if let Some(to) = waiter.and_then(|w| w.reply) {
                self.log_reply(to, fetch_error(ErrorCode::UnknownTopicOrPartition, -1, -1));
            }
            let ps = &mut self.logs.parts[i];
            ps.failed = true;
            handles.extend(ps.files.drain().map(|(_, (f, _))| f));
            handles.extend(ps.writers.drain().map(|(_, (f, _))| f));
            for path in ps.log.segments.iter().map(|s| &s.path).chain([&ps.log.dir]) {
                match c_path(path) {
                    Ok(c) => {
                        job.step(Step::Unlink {
                            path: c,
                            dir: path == &ps.log.dir,
                        });
                    }
                    Err(e) => tracing::warn!(path = %path.display(), error = %e, "cannot delete"),
                }
            }
        }
        for f in handles {
            let fd = job.give(f);
            job.step(Step::Close { fd });
        }
        if !job.has_steps() {
            return self.log_reply(reply, LogResult::Created { error: 0 });
        }
        self.logs.busy.insert(name.to_string());
        self.start_job(job);
    }

    /// Add a topic; create the partitions this shard owns: their folders and first
    /// segments, through a file job. The topic joins the table when they are all there.
    fn create_topic_here(&mut self, meta: TopicMeta, reply: ReplyTo) {
        if self.logs.topics.contains_key(&meta.name) || self.logs.busy.contains(&meta.name) {
            let error = ErrorCode::TopicAlreadyExists.code();
            return self.log_reply(reply, LogResult::Created { error });
        }
        let partitions: Vec<i32> = (0..meta.partitions)
            .filter(|&p| self.owns_partition(&meta.name, p))
            .collect();
        if partitions.is_empty() {
            self.logs.topics.insert(meta.name.clone(), meta);
            return self.log_reply(reply, LogResult::Created { error: 0 });
        }
        let data_dir = &self.shared.cfg.data_dir;
        let direct = self.shared.cfg.direct_io;
        let name = meta.name.clone();
        let mut paths = vec![
            data_dir.join("log"),
            topics::topic_dir(data_dir, &meta.name),
        ];
        for &p in &partitions {
            let dir = topics::partition_dir(data_dir, &meta.name, p);
            paths.push(segment_path(&dir, 0));
            paths.push(dir);
        }
        let c: Result<Vec<_>, _> = paths.iter().map(|p| c_path(p)).collect();
        let Ok(c) = c else {
            tracing::error!(topic = %name, "a partition path cannot be passed to the kernel");
            let error = ErrorCode::KafkaStorageError.code();
            return self.log_reply(reply, LogResult::Created { error });
        };
        let then = Then::Created {
            meta,
            partitions,
            reply,
        };
        let mut job = Job::new(format!("creating topic {name}"), then);
        job.step(Step::MkDir(c[0].clone()))
            .step(Step::MkDir(c[1].clone()));
        for (k, pair) in c[2..].chunks(2).enumerate() {
            let (segment, dir) = (&pair[0], &pair[1]);
            job.step(Step::MkDir(dir.clone()))
                .open_segment(segment, direct, 2 * k);
        }
        self.logs.busy.insert(name);
        self.start_job(job);
    }

    /// Write `topic.meta`: a temporary file, fsynced, renamed over, then the folder fsynced.
    fn persist_topic(&mut self, meta: &TopicMeta, reply: ReplyTo) {
        let data_dir = &self.shared.cfg.data_dir;
        let dir = topics::topic_dir(data_dir, &meta.name);
        let paths = [
            data_dir.join("log"),
            dir.clone(),
            dir.join("topic.meta.tmp"),
            dir.join("topic.meta"),
        ];
        let c: Result<Vec<_>, _> = paths.iter().map(|p| c_path(p)).collect();
        let Ok(c) = c else {
            let error = ErrorCode::KafkaStorageError.code();
            return self.log_reply(reply, LogResult::Created { error });
        };
        let mut job = Job::new(
            format!("writing {}", paths[3].display()),
            Then::Reply(reply),
        );
        job.step(Step::MkDir(c[0].clone()))
            .step(Step::MkDir(c[1].clone()))
            .step(Step::Open {
                path: c[2].clone(),
                flags: libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC,
                into: 0,
            })
            .step(Step::Write {
                fd: 0,
                data: meta.to_text().into_bytes(),
            })
            .step(Step::Fsync { fd: 0 })
            .step(Step::Close { fd: 0 })
            .step(Step::Rename {
                from: c[2].clone(),
                to: c[3].clone(),
            })
            .sync_dir(c[1].clone(), 1);
        self.start_job(job);
    }

    /// Remove `topic.meta` and make that durable, so a crash while the partitions are
    /// being deleted does not bring the topic back (start-up removes topic folders
    /// without one).
    fn remove_topic_meta(&mut self, name: &str, reply: ReplyTo) {
        let dir = topics::topic_dir(&self.shared.cfg.data_dir, name);
        let (Ok(meta), Ok(cdir)) = (c_path(&dir.join("topic.meta")), c_path(&dir)) else {
            let error = ErrorCode::KafkaStorageError.code();
            return self.log_reply(reply, LogResult::Created { error });
        };
        let mut job = Job::new(format!("removing {name}/topic.meta"), Then::Reply(reply));
        job.step(Step::Unlink {
            path: meta,
            dir: false,
        })
        .sync_dir(cdir, 0);
        self.start_job(job);
    }

    /// A file job ended: continue with what it was for.
    pub(super) fn job_done(&mut self, mut job: Job, result: Result<(), super::files::Failure>) {
        if let Err((step, e)) = &result {
            tracing::error!(job = %job.what, step = %step, error = %e, "file operation failed");
        }
        let storage = |ok: bool| {
            if ok {
                0
            } else {
                ErrorCode::KafkaStorageError.code()
            }
        };
        match std::mem::replace(&mut job.then, Then::Nothing) {
            Then::Nothing => {}
            Then::Reply(reply) => {
                let error = storage(result.is_ok());
                self.log_reply(reply, LogResult::Created { error });
            }
            Then::Deleted { topic, reply } => {
                // The topic is gone from the table either way; what could not be removed
                // is removed at the next start (a folder without topic.meta).
                self.logs.busy.remove(&topic);
                self.log_reply(reply, LogResult::Created { error: 0 });
            }
            Then::Segment { part, path } => {
                let read = job.take_fd(0);
                let write = job.take_fd(1);
                let Some(p) = self.logs.parts.get_mut(part) else {
                    return;
                };
                p.opening.retain(|o| o != &path);
                if p.failed {
                    return; // deleted or failed meanwhile; the handles close here
                }
                match (read, write) {
                    (Some(r), Some(w)) => {
                        p.files.insert(path.clone(), r);
                        p.writers.insert(path, w);
                        if !self.logs.dirty.contains(&part) {
                            self.logs.dirty.push(part);
                        }
                    }
                    _ => {
                        tracing::error!(topic = %p.topic, partition = p.partition,
                            "opening a new segment failed; the partition stops taking writes");
                        p.failed = true;
                        self.fail_partition(part);
                    }
                }
            }
            Then::Created {
                meta,
                partitions,
                reply,
            } => {
                self.logs.busy.remove(&meta.name);
                if result.is_err() {
                    let error = ErrorCode::KafkaStorageError.code();
                    return self.log_reply(reply, LogResult::Created { error });
                }
                let data_dir = self.shared.cfg.data_dir.clone();
                let mut made = Vec::new();
                for (k, &p) in partitions.iter().enumerate() {
                    let (Some(read), Some(write)) = (job.take_fd(2 * k), job.take_fd(2 * k + 1))
                    else {
                        let error = ErrorCode::KafkaStorageError.code();
                        return self.log_reply(reply, LogResult::Created { error });
                    };
                    let dir = topics::partition_dir(&data_dir, &meta.name, p);
                    let log = Partition::empty(
                        &dir,
                        meta.config.segment_bytes,
                        meta.config.segment_ms,
                        self.now_ms,
                    );
                    made.push(PartState::created(&meta, p, log, read, write));
                }
                for ps in made {
                    self.logs.add_part(ps);
                }
                self.logs.topics.insert(meta.name.clone(), meta);
                self.log_reply(reply, LogResult::Created { error: 0 });
            }
        }
    }

    fn produce(&mut self, topic: &str, partition: i32, records: Bytes, reply: ReplyTo) {
        let max_batch = self.shared.cfg.max_message_bytes;
        let now = self.now_ms;
        let err = |e: ErrorCode| LogResult::Produced {
            error: e.code(),
            base_offset: -1,
            log_start: -1,
        };
        let Some(&i) = self.logs.index.get(&(topic.to_string(), partition)) else {
            return self.log_reply(reply, err(ErrorCode::UnknownTopicOrPartition));
        };
        if self.logs.parts[i].failed {
            return self.log_reply(reply, err(ErrorCode::KafkaStorageError));
        }
        // Validate every batch before planning any, so a bad request changes nothing.
        let mut batches = Vec::new();
        let mut pos = 0;
        while pos < records.len() {
            match batch::validate(&records[pos..]) {
                Ok(h) if h.size > max_batch => {
                    return self.log_reply(reply, err(ErrorCode::MessageTooLarge))
                }
                Ok(h) => {
                    batches.push((pos, h));
                    pos += h.size;
                }
                Err(e) => {
                    tracing::debug!(topic, partition, error = %e, "rejected a produced batch");
                    return self.log_reply(reply, err(ErrorCode::of(&e)));
                }
            }
        }
        if batches.is_empty() {
            return self.log_reply(reply, err(ErrorCode::InvalidRequest));
        }
        // Idempotent producers: drop duplicates (answered with their first offset), reject gaps.
        let mut fresh = Vec::new();
        let mut dup_base = None;
        for (pos, h) in batches {
            match check_sequence(&self.logs.parts[i].producers, &h) {
                SeqCheck::Fresh => fresh.push((pos, h)),
                SeqCheck::Duplicate(base) => {
                    dup_base.get_or_insert(base);
                }
                SeqCheck::Reject(e) => return self.log_reply(reply, err(e)),
            }
        }
        if fresh.is_empty() {
            let log_start = self.logs.parts[i].log.log_start();
            let base_offset = dup_base.unwrap_or(-1);
            return self.log_reply(
                reply,
                LogResult::Produced {
                    error: 0,
                    base_offset,
                    log_start,
                },
            );
        }
        let batches = fresh;
        let n = batches.len();
        let p = &mut self.logs.parts[i];
        let mut first_base = -1;
        let mut rolled = Vec::new();
        for (k, (pos, h)) in batches.into_iter().enumerate() {
            let bytes = records.slice(pos..pos + h.size);
            let plan = p.log.plan(bytes.len(), &h, now);
            if first_base < 0 {
                first_base = plan.base_offset;
            }
            remember_batch(&mut p.producers, &h, plan.base_offset);
            if plan.rolled {
                // The new segment's handles open through the ring; its group waits for them.
                p.opening.push(plan.path.clone());
                rolled.push(plan.path.clone());
            }
            let reply = (k + 1 == n).then_some((reply, first_base));
            p.pending.push(PendingAppend { bytes, plan, reply });
        }
        for path in rolled {
            self.open_rolled(i, path);
        }
        if !self.logs.dirty.contains(&i) {
            self.logs.dirty.push(i);
        }
    }

    /// Open a rolled segment's read and write handles (see [`Then::Segment`]).
    fn open_rolled(&mut self, i: usize, path: PathBuf) {
        let Ok(c) = c_path(&path) else {
            tracing::error!(path = %path.display(), "a segment path cannot be passed to the kernel");
            self.logs.parts[i].failed = true;
            return self.fail_partition(i);
        };
        let mut job = Job::new(
            format!("opening {}", path.display()),
            Then::Segment { part: i, path },
        );
        job.open_segment(&c, self.shared.cfg.direct_io, 0);
        self.start_job(job);
    }

    /// Start the group commits that loop turn planned. Called once per turn. Up to
    /// [`COMMITS_IN_FLIGHT`] commits of a partition may be in flight: the next group's write
    /// goes to the page cache while the previous fdatasync runs, and each group is
    /// acknowledged only when its own fdatasync (which covers everything written before it)
    /// completes, in order.
    pub(super) fn flush_log(&mut self) {
        let fsync = self.shared.fsync;
        let dirty = std::mem::take(&mut self.logs.dirty);
        for i in dirty {
            let p = &mut self.logs.parts[i];
            if p.committing.len() >= COMMITS_IN_FLIGHT || p.pending.is_empty() || p.failed {
                continue;
            }
            // One group: contiguous appends to the file of the first one.
            let path = p.pending[0].plan.path.clone();
            let Some((fd, direct)) = p.writers.get(&path).map(|(f, d)| (f.as_raw_fd(), *d)) else {
                if p.opening.contains(&path) {
                    continue; // the open's end marks the partition dirty again
                }
                p.failed = true;
                self.fail_partition(i);
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
            p.next_commit = crate::runtime::next_gen(seq);
            let sync = fsync == Fsync::Always;
            p.committing.push_back(Commit {
                seq,
                buf,
                appends,
                synced: !sync,
                written: false,
            });
            p.dirty_since_sync = true;
            let Some(c) = p.committing.back() else {
                continue;
            };
            let write = opcode::Write::new(types::Fd(fd), c.buf.as_ptr(), c.buf.len() as u32)
                .offset(position)
                .build()
                .user_data(Token::new(Kind::LogWrite, seq, i as u32).encode());
            let write = if sync {
                write.flags(squeue::Flags::IO_LINK)
            } else {
                write
            };
            self.push(write);
            self.logs.in_flight += 1;
            if sync {
                self.logs.in_flight += 1;
                let e = opcode::Fsync::new(types::Fd(fd))
                    .flags(types::FsyncFlags::DATASYNC)
                    .build()
                    .user_data(Token::new(Kind::LogSync, seq, i as u32).encode());
                self.push(e);
            }
            // More pending (a segment roll cut the group): try again next turn.
            if !self.logs.parts[i].pending.is_empty() {
                self.logs.dirty.push(i);
            }
        }
    }

    pub(super) fn on_log_write(&mut self, i: usize, seq: u32, res: i32) {
        let Some(p) = self.logs.parts.get_mut(i) else {
            return;
        };
        let Some(c) = p.committing.iter_mut().find(|c| c.seq == seq) else {
            return;
        };
        if res < 0 || res as usize != c.buf.len() {
            tracing::error!(topic = %p.topic, partition = p.partition, res, wanted = c.buf.len(),
                "log write failed; the partition stops taking writes");
            p.failed = true;
            return self.fail_partition(i);
        }
        c.written = true;
        self.finish_commits(i);
    }

    pub(super) fn on_log_sync(&mut self, i: usize, seq: u32, res: i32) {
        let Some(p) = self.logs.parts.get_mut(i) else {
            return;
        };
        // Not found: the commit already failed (ECANCELED after a failed write).
        let Some(c) = p.committing.iter_mut().find(|c| c.seq == seq) else {
            return;
        };
        if res < 0 {
            tracing::error!(topic = %p.topic, partition = p.partition, error = %std::io::Error::from_raw_os_error(-res),
                "fdatasync failed; the partition stops taking writes");
            p.failed = true;
            return self.fail_partition(i);
        }
        c.synced = true;
        self.finish_commits(i);
    }

    /// Acknowledge finished commits from the oldest on; stop at the first unfinished one.
    fn finish_commits(&mut self, i: usize) {
        let p = &mut self.logs.parts[i];
        let log_start = p.log.log_start();
        let mut replies = Vec::new();
        let mut trims = Vec::new();
        while p.committing.front().is_some_and(|c| c.written && c.synced) {
            let Some(c) = p.committing.pop_front() else {
                break;
            };
            for a in c.appends {
                p.hw = a.plan.last_offset + 1;
                p.committed = (a.plan.path.clone(), a.plan.position + a.plan.len as u64);
                if let Some((to, base)) = a.reply {
                    replies.push((
                        to,
                        LogResult::Produced {
                            error: 0,
                            base_offset: base,
                            log_start,
                        },
                    ));
                }
            }
            if p.spare.len() < COMMITS_IN_FLIGHT {
                p.spare.push(c.buf);
            }
        }
        if p.committing.is_empty() && self.shared.fsync == Fsync::Always {
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
                let size = p
                    .log
                    .segments
                    .iter()
                    .find(|s| s.path == path)
                    .map(|s| s.size);
                let mut job = Job::new(format!("trimming {}", path.display()), Then::Nothing);
                let fd = job.give(f);
                if let (true, Some(len)) = (direct, size) {
                    job.step(Step::Ftruncate { fd, len });
                }
                job.step(Step::Close { fd });
                trims.push(job);
            }
        }
        if !p.pending.is_empty() && !self.logs.dirty.contains(&i) {
            self.logs.dirty.push(i);
        }
        for job in trims {
            self.start_job(job);
        }
        for (to, r) in replies {
            self.log_reply(to, r);
        }
    }

    /// Undo every planned append of partition `i` (newest first) and fail their producers.
    fn fail_partition(&mut self, i: usize) {
        self.drop_appends(i, ErrorCode::KafkaStorageError);
    }

    /// Undo every planned append of partition `i` and answer their producers with `error`.
    fn drop_appends(&mut self, i: usize, error: ErrorCode) {
        let p = &mut self.logs.parts[i];
        let mut all: Vec<PendingAppend> = Vec::new();
        for c in p.committing.drain(..) {
            all.extend(c.appends);
            // Later commits' writes may still be reading their buffers: keep them. The
            // partition writes no more, so they are never reused.
            p.spare.push(c.buf);
        }
        all.append(&mut p.pending);
        for a in all.iter().rev() {
            p.log.undo_append(&a.plan);
        }
        let replies: Vec<ReplyTo> = all.iter().filter_map(|a| a.reply.map(|r| r.0)).collect();
        for to in replies {
            self.log_reply(
                to,
                LogResult::Produced {
                    error: error.code(),
                    base_offset: -1,
                    log_start: -1,
                },
            );
        }
    }

    /// From the tick: interval fsync, and retention (whole old segments deleted).
    pub(super) fn log_tick(&mut self) {
        let now = self.now_ms;
        let interval = matches!(self.shared.fsync, Fsync::Interval(ms) if now.saturating_sub(self.logs.last_sync_ms) >= ms);
        let mut syncs = Vec::new();
        let mut deletes = Vec::new();
        for p in &mut self.logs.parts {
            if interval && p.dirty_since_sync && p.committing.is_empty() {
                if let Some((f, _)) = p.files.get(&p.committed.0) {
                    syncs.push(f.as_raw_fd());
                    p.dirty_since_sync = false;
                }
            }
            for path in p
                .log
                .apply_retention(p.config.retention_bytes, p.config.retention_ms, now)
            {
                let Ok(c) = c_path(&path) else { continue };
                // Unlink, then close the handles (the close of the last one frees the
                // blocks), on an io_uring worker.
                let mut job = Job::new(format!("deleting {}", path.display()), Then::Nothing);
                job.step(Step::Unlink {
                    path: c,
                    dir: false,
                });
                if let Some((f, _)) = p.files.remove(&path) {
                    let fd = job.give(f);
                    job.step(Step::Close { fd });
                }
                // A write handle with a group still in flight closes in finish_commits.
                if !p
                    .committing
                    .iter()
                    .any(|c| c.appends.iter().any(|a| a.plan.path == path))
                {
                    if let Some((f, _)) = p.writers.remove(&path) {
                        let fd = job.give(f);
                        job.step(Step::Close { fd });
                    }
                }
                deletes.push(job);
            }
        }
        if interval {
            self.logs.last_sync_ms = now;
        }
        for job in deletes {
            self.start_job(job);
        }
        for fd in syncs {
            let e = opcode::Fsync::new(types::Fd(fd))
                .flags(types::FsyncFlags::DATASYNC)
                .build()
                .user_data(Token::new(Kind::Cancel, 0, 0).encode());
            self.push(e);
        }
    }

    fn fetch(&mut self, topic: &str, partition: i32, offset: i64, max_bytes: i32, reply: ReplyTo) {
        let Some(&i) = self.logs.index.get(&(topic.to_string(), partition)) else {
            return self.log_reply(
                reply,
                fetch_error(ErrorCode::UnknownTopicOrPartition, -1, -1),
            );
        };
        let p = &self.logs.parts[i];
        let (hw, ls) = (p.hw, p.log.log_start());
        // An empty answer: the consumer is at the end, or nothing readable is there yet.
        let nothing = LogResult::Fetched {
            error: 0,
            high_watermark: hw,
            log_start: ls,
            records: None,
        };
        if offset < ls || offset > hw {
            return self.log_reply(reply, fetch_error(ErrorCode::OffsetOutOfRange, hw, ls));
        }
        if offset == hw {
            return self.log_reply(reply, nothing);
        }
        // The client names the size, so it is capped: at most the larger of one whole batch
        // (--max-message-bytes) and 8 MiB is read and held per partition per fetch.
        let cap = self.shared.cfg.max_message_bytes.max(8 << 20) as u64;
        let plan = match p.log.plan_read(offset, (max_bytes.max(1) as u64).min(cap)) {
            Ok(Some(plan)) => plan,
            _ => return self.log_reply(reply, nothing),
        };
        // Never read past what is acknowledged.
        let mut len = plan.len;
        if plan.path == p.committed.0 {
            len = len.min(p.committed.1.saturating_sub(plan.position));
        }
        let Some(fd) = p.reader(&plan.path) else {
            return self.log_reply(reply, fetch_error(ErrorCode::KafkaStorageError, hw, ls));
        };
        if len == 0 {
            return self.log_reply(reply, nothing);
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
            part: i,
            path: plan.path,
            position: plan.position,
        };
        // Already read ahead (or being read): answer from it.
        let p = &mut self.logs.parts[i];
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
                return self.answer_fetch(op, buf, range, at, true);
            }
        }
        self.submit_read(fd, op);
    }

    /// Answer fetch `op` with the bytes `range` of `buf`, read from file position `from`:
    /// whole batches from its offset on. `from_ahead`: the bytes are a read-ahead's (which
    /// starts at the batch the fetch asks for); with no whole batch there, read again.
    fn answer_fetch(
        &mut self,
        mut op: ReadOp,
        buf: AlignedBuf,
        range: std::ops::Range<usize>,
        from: u64,
        from_ahead: bool,
    ) {
        let len = range.len().min(op.len);
        let data = &buf.as_slice()[range.start..range.start + len];
        let whole = trim_read(data, op.offset);
        if from_ahead && !whole.is_empty() {
            self.metrics.counters.log_read_ahead_hits += 1;
        }
        if whole.is_empty() && from_ahead {
            if let Some(fd) = self
                .logs
                .parts
                .get(op.part)
                .and_then(|p| p.reader(&op.path))
            {
                op.buf = AlignedBuf::default();
                self.submit_read(fd, op);
                return;
            }
        }
        let next =
            crate::log::partition::end_of_batches(&data[whole.clone()], from + whole.start as u64);
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
        self.fetch_done(op, (result, next));
    }

    /// A fetch was answered from `op`'s read: reply, and read the partition's next range
    /// ahead when this one was large (a consumer catching up, not one tailing the log).
    fn fetch_done(&mut self, op: ReadOp, (result, next): (LogResult, Option<(u64, i64)>)) {
        if let Some(to) = op.reply {
            self.log_reply(to, result);
        }
        let Some((next, next_offset)) = next.filter(|_| op.len >= READ_AHEAD_MIN) else {
            return;
        };
        let Some(p) = self.logs.parts.get_mut(op.part) else {
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
            p.log
                .segments
                .iter()
                .find(|s| s.path == op.path)
                .map_or(0, |s| s.size)
        };
        let len = end.saturating_sub(next).min(op.len as u64) as usize;
        if len == 0 {
            return;
        }
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
        let path = ahead.path.clone();
        self.metrics.counters.log_read_aheads += 1;
        let idx = self.submit_read(fd, ahead);
        self.logs.parts[op.part].ahead = Some(Ahead {
            path,
            next_offset,
            reading: Some(idx),
            data: None,
            waiter: None,
        });
    }

    /// Read `op.len` bytes at `op.position` into `op.buf` through the ring; `on_log_read`
    /// continues when it completes. Through an O_DIRECT handle the read covers the whole
    /// aligned blocks around them (`op.skip` bytes lead in). Returns the read's slot.
    fn submit_read(&mut self, (fd, direct): (std::os::fd::RawFd, bool), mut op: ReadOp) -> u32 {
        let position = op.position;
        let (start, span) = if direct {
            let start = position - position % ALIGN as u64;
            op.skip = (position - start) as usize;
            (start, (op.skip + op.len).next_multiple_of(ALIGN))
        } else {
            (position, op.len)
        };
        op.buf.clear();
        op.buf.reserve(span.max(1));
        let idx = match self.logs.free_reads.pop() {
            Some(k) => {
                self.logs.reads[k as usize] = Some(op);
                k
            }
            None => {
                self.logs.reads.push(Some(op));
                (self.logs.reads.len() - 1) as u32
            }
        };
        let Some(Some(op)) = self.logs.reads.get_mut(idx as usize) else {
            return idx;
        };
        // The buffer's heap memory stays put in `reads` until the completion is handled.
        let e = opcode::Read::new(types::Fd(fd), op.buf.as_mut_ptr(), span as u32)
            .offset(start)
            .build()
            .user_data(Token::new(Kind::LogRead, 0, idx).encode());
        self.push(e);
        self.logs.in_flight += 1;
        idx
    }

    pub(super) fn on_log_read(&mut self, idx: u32, res: i32) {
        let Some(mut op) = self.logs.reads.get_mut(idx as usize).and_then(Option::take) else {
            return;
        };
        self.logs.free_reads.push(idx);
        if res > 0 && res as usize <= op.buf.capacity() {
            // SAFETY: the read completed and the kernel wrote `res` bytes at the start of
            // the buffer (it was given at most the capacity), so they are initialised.
            unsafe { op.buf.set_len(res as usize) };
        }
        // The bytes wanted: after the lead-in, and never past what was asked for (a direct
        // read's last block can run past the acknowledged end).
        let wanted = op.skip.min(op.buf.len())..(op.skip + op.len).min(op.buf.len());
        if let Some(ts) = op.time {
            let r = if res < 0 {
                LogResult::Offset {
                    error: ErrorCode::KafkaStorageError.code(),
                    offset: -1,
                    timestamp: -1,
                }
            } else {
                let (offset, timestamp) =
                    crate::log::partition::find_time(&op.buf.as_slice()[wanted], ts)
                        .unwrap_or((-1, -1));
                LogResult::Offset {
                    error: 0,
                    offset,
                    timestamp,
                }
            };
            if let Some(to) = op.reply {
                self.log_reply(to, r);
            }
            return;
        }
        if op.reply.is_none() {
            return self.ahead_landed(idx, op, res, wanted);
        }
        if res < 0 {
            let r = fetch_error(ErrorCode::KafkaStorageError, op.hw, op.log_start);
            return self.fetch_done(op, (r, None));
        }
        let buf = std::mem::take(&mut op.buf);
        let from = op.position;
        self.answer_fetch(op, buf, wanted, from, false);
    }

    /// A read-ahead landed: keep it, or answer the fetch waiting for it.
    fn ahead_landed(&mut self, idx: u32, mut op: ReadOp, res: i32, wanted: std::ops::Range<usize>) {
        let Some(p) = self.logs.parts.get_mut(op.part) else {
            return;
        };
        let Some(a) = p.ahead.as_mut().filter(|a| a.reading == Some(idx)) else {
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
            Some((buf, range, at)) => self.answer_fetch(w, buf, range, at, true),
            None => {
                // The read-ahead failed: the fetch reads for itself.
                match p.reader(&w.path) {
                    Some(fd) => {
                        self.submit_read(fd, w);
                    }
                    None => {
                        let r = fetch_error(ErrorCode::KafkaStorageError, w.hw, w.log_start);
                        self.fetch_done(w, (r, None));
                    }
                }
            }
        }
    }

    /// Deliver a log result to whoever asked.
    pub(super) fn log_reply(&mut self, to: ReplyTo, r: LogResult) {
        match to {
            ReplyTo::Local {
                slot,
                gen,
                seq,
                part,
            } => {
                if self
                    .conns
                    .get(slot as usize)
                    .and_then(|c| c.as_ref())
                    .is_some_and(|c| c.gen == gen)
                {
                    self.accept_part(slot, seq, part, Outcome::Log(r));
                    self.logs.resume.push(slot);
                }
            }
            ReplyTo::Remote {
                shard,
                conn,
                seq,
                part,
                sent,
            } => {
                let resp = Response {
                    conn,
                    seq,
                    part,
                    body: RespBody::Log(r),
                    sent,
                };
                if let Err(resp) = self.mesh.push_resp(shard, resp) {
                    self.logs.parked_resps.push_back((shard, resp));
                }
            }
        }
    }

    /// Responses that found their lane full, and connections whose replies completed.
    pub(super) fn log_housekeeping(&mut self) {
        let mut left = std::collections::VecDeque::new();
        while let Some((shard, resp)) = self.logs.parked_resps.pop_front() {
            if let Err(resp) = self.mesh.push_resp(shard, resp) {
                left.push_back((shard, resp));
            }
        }
        self.logs.parked_resps = left;
        let resume = std::mem::take(&mut self.logs.resume);
        for slot in resume {
            self.mark_dirty(slot);
            self.process(slot);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(pid: i64, epoch: i16, seq: i32, records: i32) -> batch::BatchHeader {
        batch::BatchHeader {
            base_offset: 0,
            size: 100,
            attributes: 0,
            last_offset_delta: records - 1,
            base_timestamp: 0,
            max_timestamp: 0,
            producer_id: pid,
            producer_epoch: epoch,
            base_sequence: seq,
            record_count: records,
        }
    }

    fn state(epoch: i16, batches: &[(i32, i32, i64)]) -> HashMap<i64, ProducerState> {
        let mut m = HashMap::new();
        m.insert(
            7,
            ProducerState {
                epoch,
                recent: batches.iter().copied().collect(),
            },
        );
        m
    }

    #[test]
    fn idempotent_sequences() {
        let s = state(0, &[(0, 9, 100), (10, 19, 110)]);
        // Next in line, unknown producers and non-idempotent batches are fresh.
        assert!(matches!(
            check_sequence(&s, &header(7, 0, 20, 5)),
            SeqCheck::Fresh
        ));
        assert!(matches!(
            check_sequence(&s, &header(8, 0, 42, 1)),
            SeqCheck::Fresh
        ));
        assert!(matches!(
            check_sequence(&s, &header(-1, -1, -1, 1)),
            SeqCheck::Fresh
        ));
        // A retry of a stored batch is answered with where it was stored.
        assert!(matches!(
            check_sequence(&s, &header(7, 0, 10, 10)),
            SeqCheck::Duplicate(110)
        ));
        assert!(matches!(
            check_sequence(&s, &header(7, 0, 0, 10)),
            SeqCheck::Duplicate(100)
        ));
        // A gap, or an overlap that is not a whole stored batch, is out of order.
        assert!(matches!(
            check_sequence(&s, &header(7, 0, 25, 1)),
            SeqCheck::Reject(ErrorCode::OutOfOrderSequenceNumber)
        ));
        assert!(matches!(
            check_sequence(&s, &header(7, 0, 15, 5)),
            SeqCheck::Reject(ErrorCode::OutOfOrderSequenceNumber)
        ));
        // Epochs: older is fenced; a newer one must start at sequence 0.
        let s2 = state(3, &[(0, 0, 5)]);
        assert!(matches!(
            check_sequence(&s2, &header(7, 2, 1, 1)),
            SeqCheck::Reject(ErrorCode::InvalidProducerEpoch)
        ));
        assert!(matches!(
            check_sequence(&s2, &header(7, 4, 0, 1)),
            SeqCheck::Fresh
        ));
        assert!(matches!(
            check_sequence(&s2, &header(7, 4, 3, 1)),
            SeqCheck::Reject(ErrorCode::OutOfOrderSequenceNumber)
        ));
    }

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
