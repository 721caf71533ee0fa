//! A partition as its owner shard holds it: the pure [`Partition`] (segments, index,
//! planning) plus what the shard's I/O needs: file handles, group commits waiting and in
//! flight, the acknowledged end, read-ahead, and idempotent producers.

use std::collections::{HashMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};

use super::commit::{Commit, PendingAppend};
use super::fetch::Ahead;
use super::partition::{Offsets, Partition};
use super::producers::{self, Producers};
use super::topics::{self, Cleanup, TopicConfig, TopicMeta};
use crate::runtime::aligned::{AlignedBuf, ALIGN};

/// A segment's read and write handles, each with whether it is O_DIRECT.
pub type SegmentHandles = ((File, bool), (File, bool));

pub struct PartState {
    pub topic: String,
    pub partition: i32,
    pub log: Partition,
    /// Read handles of every segment, and whether each is O_DIRECT (reads then go in
    /// whole aligned blocks, straight from the disk into our buffer).
    pub files: HashMap<PathBuf, (File, bool)>,
    /// Write handles of segments with appends pending or in flight (O_DIRECT where the
    /// filesystem allows), and whether each is direct.
    pub writers: HashMap<PathBuf, (File, bool)>,
    /// Rolled segments whose handles are still being opened; their groups wait.
    pub opening: Vec<PathBuf>,
    pub ahead: Option<Ahead>,
    /// Under direct I/O: the planned bytes of the active segment's last partial block
    /// (`tail_path`), which the next group's write starts with.
    pub tail: Vec<u8>,
    pub tail_path: PathBuf,
    pub pending: Vec<PendingAppend>,
    /// Group commits in flight, oldest first; completed strictly in order.
    pub committing: VecDeque<Commit>,
    pub next_commit: u32,
    /// Buffers of finished commits, reused so large writes do not fault in fresh pages.
    pub spare: Vec<AlignedBuf>,
    /// A write or an open failed: the partition takes no more writes (reads go on).
    pub failed: bool,
    /// Acknowledged end: offset and (active segment path, byte size).
    pub hw: i64,
    pub committed: (PathBuf, u64),
    pub dirty_since_sync: bool,
    pub config: TopicConfig,
    pub producers: Producers,
    /// Transactions: open ones (the last stable offset) and the aborted index.
    pub txn: super::txn_index::TxnIndex,
}

fn open_segment(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
}

/// A segment's read handle at start-up, O_DIRECT when asked for and the filesystem takes
/// it.
fn open_reader(path: &Path, direct: bool) -> std::io::Result<(File, bool)> {
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

/// A segment's write handle at start-up: O_DIRECT when asked for and the filesystem takes
/// it (tmpfs and some others answer EINVAL), else buffered.
fn open_writer(path: &Path, direct: bool) -> std::io::Result<(File, bool)> {
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
    pub fn reader(&self, path: &Path) -> Option<(RawFd, bool)> {
        self.files.get(path).map(|(f, d)| (f.as_raw_fd(), *d))
    }

    /// Recover a partition from its folder (start-up, blocking I/O).
    pub fn open(
        data_dir: &Path,
        meta: &TopicMeta,
        partition: i32,
        now_ms: u64,
        direct: bool,
    ) -> std::io::Result<PartState> {
        let dir = topics::partition_dir(data_dir, &meta.name, partition);
        // Only a compacted topic's log may have holes (`Partition::recover`).
        let offsets = match meta.config.cleanup {
            Cleanup::Delete => Offsets::Dense,
            Cleanup::Compact | Cleanup::CompactDelete => Offsets::Holes,
        };
        let (log, rep) = Partition::recover(
            &dir,
            meta.config.segment_bytes,
            meta.config.segment_ms,
            now_ms,
            offsets,
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
            producers::remember(&mut ps.producers, h, h.base_offset);
        }
        ps.txn = rep.txn;
        // Markers fenced older epochs of their producers (they carry no sequence, so the
        // idempotent state above does not see them).
        for (pid, epoch) in ps.txn.take_marker_epochs() {
            producers::fence(&mut ps.producers, pid, epoch);
        }
        Ok(ps)
    }

    /// A partition just created: `log` is [`Partition::empty`], `read` and `write` are its
    /// first segment's handles.
    pub fn created(
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
            committing: VecDeque::new(),
            next_commit: 0,
            spare: Vec::new(),
            failed: false,
            committed: active,
            dirty_since_sync: false,
            config: meta.config,
            producers: HashMap::new(),
            txn: Default::default(),
        }
    }

    /// The size of the segment at `path` as the partition plans it (acknowledged or not).
    pub fn segment_size(&self, path: &Path) -> Option<u64> {
        self.log
            .segments
            .iter()
            .find(|s| s.path == path)
            .map(|s| s.size)
    }
}
