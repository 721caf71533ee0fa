//! File-system work other than segment reads and writes, through the shard's io_uring:
//! opening a rolled segment, creating and deleting a topic's folders, writing and removing
//! `topic.meta`, unlinking retained-out segments, trimming a rolled segment's padding. None
//! of it blocks the shard's loop (an unlink of a large segment can take milliseconds while
//! the filesystem frees its extents; an open or mkdir can wait on the journal).
//!
//! A [`Job`] is a list of [`Step`]s run in order, one in flight at a time; the first failure
//! ends it. Its [`Then`] says what its end continues with. Handles a job opens sit in its
//! `fds` until the continuation takes them.
//!
//! Handles the shard is done with (a retained-out or deleted segment's) are given to a job
//! and closed by a [`Step::Close`] after its unlinks: the close of a file's last reference
//! is where the filesystem frees an unlinked file's blocks, so it runs on an io_uring
//! worker too. Closing through the job, after earlier steps completed, also means an
//! operation pushed earlier in the same loop turn was issued before its descriptor number
//! could be reused.

use std::collections::VecDeque;
use std::ffi::CString;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::ops::LogResult;
use super::topics::TopicMeta;
use super::{owner_key, LogCtx, Logs};
use crate::proto::kafka::ErrorCode;
use crate::runtime::aligned::AlignedBuf;
use crate::runtime::io::Completion;
use crate::runtime::slab::{Slab, SlabKey};
use crate::runtime::{Kind, Owner};
use crate::txn::Dest;

pub enum Step {
    /// mkdir; a folder already there is fine.
    MkDir(CString),
    /// open(2) into handle slot `into`. Refused O_DIRECT (EINVAL: tmpfs and others) is
    /// retried without it.
    Open {
        path: CString,
        flags: i32,
        into: usize,
    },
    /// Write all of `data` at offset 0 through handle slot `fd`.
    Write {
        fd: usize,
        data: Vec<u8>,
    },
    Fsync {
        fd: usize,
    },
    /// ftruncate(2) through handle slot `fd`.
    Ftruncate {
        fd: usize,
        len: u64,
    },
    Rename {
        from: CString,
        to: CString,
    },
    /// unlink, or rmdir with `dir`; already gone is fine.
    Unlink {
        path: CString,
        dir: bool,
    },
    /// Close handle slot `fd`, on an io_uring worker.
    Close {
        fd: usize,
    },
    /// Read up to `len` bytes at `at` through handle slot `fd` (a buffered handle); the
    /// bytes read go to the job's `read` (compaction).
    ReadAt {
        fd: usize,
        at: u64,
        len: usize,
    },
    /// Write all of `data` at `at` through handle slot `fd` (compaction's cleaned segment).
    WriteAt {
        fd: usize,
        at: u64,
        data: AlignedBuf,
    },
}

/// What a finished job continues with.
pub enum Then {
    /// A rolled segment of partition `part`: fds[0] is its read handle, fds[1] its write
    /// handle.
    Segment { part: SlabKey, path: PathBuf },
    /// A topic's partitions on this shard: for the k-th of `partitions`, fds[2k] and
    /// fds[2k+1] are its first segment's read and write handles.
    Created {
        meta: TopicMeta,
        partitions: Vec<i32>,
        reply: Dest,
    },
    /// A topic's partitions on this shard are gone.
    Deleted { topic: String, reply: Dest },
    /// A retention unlink of partition `part`'s segment (counted in `Logs::retaining`).
    Retained { part: SlabKey },
    /// Answer a log op with `Created { error }`: 0, or KAFKA_STORAGE_ERROR on failure.
    Reply(Dest),
    /// `topic.meta` of a topic this shard claimed is written: answer like `Reply`; on
    /// failure the claim is dropped (the create goes no further).
    Persisted { topic: String, reply: Dest },
    /// Nothing waits; a failure is logged.
    Nothing,
    // Admin.
    /// A partition's new log start offset is durable (DeleteRecords): answer `Offset`
    /// with it, or KAFKA_STORAGE_ERROR on failure.
    RecordsDeleted {
        part: SlabKey,
        replies: Vec<Dest>,
        log_start: i64,
    },
    /// An older segment's read handle is open again (fds[0]): run `retry` again
    /// (`readers.rs`).
    Reader {
        part: SlabKey,
        path: PathBuf,
        retry: Box<super::ops::LogOp>,
        reply: Dest,
    },

    /// A step of a compaction pass: the shard's next compaction slice continues it
    /// (`compact/`), with the job's handles and what it read.
    Compact,
}

/// The step in flight, as much of it as its completion needs.
enum Current {
    Step(Step),
    /// A write of this many bytes (the bytes are with the ring).
    Wrote(usize),
}

pub struct Job {
    /// What the job does, for logs.
    pub what: String,
    steps: VecDeque<Step>,
    current: Option<Current>,
    /// Handles opened by the job's steps, and whether each was opened O_DIRECT.
    fds: Vec<Option<(File, bool)>>,
    then: Then,
    /// What a [`Step::ReadAt`] read.
    pub read: Option<AlignedBuf>,
}

/// Why a job ended early: the step that failed and the error.
pub type Failure = (String, std::io::Error);

impl Job {
    pub fn new(what: impl Into<String>, then: Then) -> Job {
        Job {
            what: what.into(),
            steps: VecDeque::new(),
            current: None,
            fds: Vec::new(),
            then,
            read: None,
        }
    }

    pub fn step(&mut self, s: Step) -> &mut Job {
        self.steps.push_back(s);
        self
    }

    /// Open a segment (creating it): its read handle into slot `into`, its write handle
    /// into `into + 1`, both O_DIRECT when `direct` (each falls back where refused).
    pub fn open_segment(&mut self, path: &CString, direct: bool, into: usize) -> &mut Job {
        let direct = if direct { libc::O_DIRECT } else { 0 };
        self.step(Step::Open {
            path: path.clone(),
            flags: libc::O_RDWR | libc::O_CREAT | direct,
            into,
        })
        .step(Step::Open {
            path: path.clone(),
            flags: libc::O_WRONLY | libc::O_CREAT | direct,
            into: into + 1,
        })
    }

    /// fsync folder `dir` through slot `into`, so a rename or unlink in it is durable.
    pub fn sync_dir(&mut self, dir: CString, into: usize) -> &mut Job {
        self.step(Step::Open {
            path: dir,
            flags: libc::O_RDONLY | libc::O_DIRECTORY,
            into,
        })
        .step(Step::Fsync { fd: into })
        .step(Step::Close { fd: into })
    }

    /// Hand the job a handle to close with a later [`Step::Close`]; returns its slot.
    pub fn give(&mut self, f: File) -> usize {
        self.fds.push(Some((f, false)));
        self.fds.len() - 1
    }

    /// Give the job a handle and close it as its next step.
    pub fn close(&mut self, f: File) -> &mut Job {
        let fd = self.give(f);
        self.step(Step::Close { fd })
    }

    /// Hand the job a handle in slot `slot` (for its steps, or to give back at its end).
    pub fn put(&mut self, slot: usize, f: (File, bool)) -> &mut Job {
        if self.fds.len() <= slot {
            self.fds.resize_with(slot + 1, || None);
        }
        self.fds[slot] = Some(f);
        self
    }

    pub fn has_steps(&self) -> bool {
        !self.steps.is_empty()
    }

    /// Take the handle a step opened into slot `i`.
    pub fn take_fd(&mut self, i: usize) -> Option<(File, bool)> {
        self.fds.get_mut(i).and_then(Option::take)
    }

    fn fd(&self, k: usize) -> i32 {
        self.fds
            .get(k)
            .and_then(Option::as_ref)
            .map_or(-1, |(f, _)| f.as_raw_fd())
    }
}

/// A path as the kernel takes it. Paths come from the data dir and validated topic names,
/// so an interior NUL is a configuration error, reported like any failed step.
pub fn c_path(p: &Path) -> std::io::Result<CString> {
    CString::new(p.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "path holds a NUL"))
}

pub const FILE_MODE: libc::mode_t = 0o644;
pub const DIR_MODE: libc::mode_t = 0o755;

/// Jobs in flight; the completion owner's index and generation are the job's key.
pub type Jobs = Slab<Job>;

fn step_name(s: &Step) -> String {
    match s {
        Step::MkDir(p) => format!("mkdir {}", p.to_string_lossy()),
        Step::Open { path, .. } => format!("open {}", path.to_string_lossy()),
        Step::Write { .. } => "write".into(),
        Step::Fsync { .. } => "fsync".into(),
        Step::Ftruncate { .. } => "ftruncate".into(),
        Step::Rename { from, to } => {
            format!(
                "rename {} to {}",
                from.to_string_lossy(),
                to.to_string_lossy()
            )
        }
        Step::Unlink { path, .. } => format!("unlink {}", path.to_string_lossy()),
        Step::Close { .. } => "close".into(),
        Step::ReadAt { .. } => "read".into(),
        Step::WriteAt { .. } => "write".into(),
    }
}

impl Logs {
    pub(super) fn start_job(&mut self, job: Job, ctx: &mut LogCtx) {
        let key = self.jobs.insert(job);
        self.next_step(key, ctx);
    }

    /// Issue job `key`'s next step, or end the job when none is left.
    fn next_step(&mut self, key: SlabKey, ctx: &mut LogCtx) {
        let owner = Owner::new(Kind::File, key.slot, key.gen);
        loop {
            let Some(job) = self.jobs.get_mut(key) else {
                return;
            };
            let Some(step) = job.steps.pop_front() else {
                if let Some(job) = self.jobs.remove(key) {
                    self.job_done(job, Ok(()), ctx);
                }
                return;
            };
            let io = &mut *ctx.io;
            match &step {
                Step::MkDir(p) => io.mkdir_at(p.clone(), DIR_MODE, owner),
                Step::Open { path, flags, .. } => {
                    io.open_at(path.clone(), *flags, FILE_MODE, owner)
                }
                Step::Write { fd, data } => {
                    let fd = job.fd(*fd);
                    job.current = Some(Current::Wrote(data.len()));
                    if let Step::Write { data, .. } = step {
                        io.write_bytes(fd, data, owner);
                    }
                    return;
                }
                Step::Fsync { fd } => io.fsync(job.fd(*fd), false, owner),
                Step::Ftruncate { fd, len } => io.ftruncate(job.fd(*fd), *len, owner),
                Step::Rename { from, to } => io.rename_at(from.clone(), to.clone(), owner),
                Step::Unlink { path, dir } => io.unlink_at(path.clone(), *dir, owner),
                Step::ReadAt { fd, at, len } => {
                    let buf = job.read.take().unwrap_or_default();
                    io.read_at(job.fd(*fd), buf, *len, *at, owner)
                }
                Step::WriteAt { fd, at, .. } => {
                    let (fd, at) = (job.fd(*fd), *at);
                    if let Step::WriteAt { data, .. } = step {
                        job.current = Some(Current::Wrote(data.len()));
                        io.write_at(fd, data, at, owner, None);
                    }
                    return;
                }
                Step::Close { fd } => match job.take_fd(*fd) {
                    Some((f, _)) => io.close_file(f, owner),
                    // Nothing to close (the handle was never opened): on to the next step.
                    None => continue,
                },
            }
            job.current = Some(Current::Step(step));
            return;
        }
    }

    /// A step of a job completed.
    pub(super) fn on_file(&mut self, c: Completion, ctx: &mut LogCtx) {
        let key = owner_key(&c.owner);
        let res = c.res;
        let Some(job) = self.jobs.get_mut(key) else {
            return;
        };
        let Some(current) = job.current.take() else {
            return;
        };
        let err = (res < 0).then_some(-res);
        let failed = match (current, err) {
            (Current::Wrote(len), None) => {
                (res as usize != len).then(|| ("short write".to_string(), libc::EIO))
            }
            (Current::Wrote(_), Some(e)) => Some(("write".to_string(), e)),
            (Current::Step(Step::ReadAt { .. }), None) => {
                job.read = Some(c.held.into_aligned());
                None
            }
            (Current::Step(step), None) => {
                if let Step::Open { flags, into, .. } = step {
                    if job.fds.len() <= into {
                        job.fds.resize_with(into + 1, || None);
                    }
                    job.fds[into] = c.into_file().map(|f| (f, flags & libc::O_DIRECT != 0));
                }
                None
            }
            (Current::Step(Step::MkDir(_)), Some(libc::EEXIST)) => None,
            // Nothing to do about a failed close; the descriptor is gone either way.
            (Current::Step(Step::Close { .. }), Some(_)) => None,
            (Current::Step(Step::Unlink { .. }), Some(libc::ENOENT)) => None,
            (Current::Step(Step::Open { path, flags, into }), Some(libc::EINVAL))
                if flags & libc::O_DIRECT != 0 =>
            {
                tracing::info!(path = %path.to_string_lossy(), "the filesystem refuses O_DIRECT; writing through the page cache");
                job.steps.push_front(Step::Open {
                    path,
                    flags: flags & !libc::O_DIRECT,
                    into,
                });
                None
            }
            (Current::Step(Step::Ftruncate { fd, len }), Some(libc::EINVAL | libc::EOPNOTSUPP)) => {
                // Kernels before 6.9 have no IORING_OP_FTRUNCATE: do it here, blocking.
                match job.fds.get(fd).and_then(Option::as_ref) {
                    Some((f, _)) => f.set_len(len).err().map(|e| {
                        (
                            "ftruncate".to_string(),
                            e.raw_os_error().unwrap_or(libc::EIO),
                        )
                    }),
                    None => Some(("ftruncate".to_string(), libc::EBADF)),
                }
            }
            (Current::Step(s), Some(e)) => Some((step_name(&s), e)),
        };
        match failed {
            None => self.next_step(key, ctx),
            Some((what, errno)) => {
                if let Some(job) = self.jobs.remove(key) {
                    let e = std::io::Error::from_raw_os_error(errno);
                    self.job_done(job, Err((what, e)), ctx);
                }
            }
        }
    }

    /// A file job ended: continue with what it was for.
    fn job_done(&mut self, mut job: Job, result: Result<(), Failure>, ctx: &mut LogCtx) {
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
            Then::Retained { part } => {
                if let Some(n) = self.retaining.get_mut(&part) {
                    *n = n.saturating_sub(1);
                    if *n == 0 {
                        self.retaining.remove(&part);
                    }
                }
            }
            Then::Compact => self.compact_landed(job, result),
            Then::Reply(reply) => {
                let error = storage(result.is_ok());
                ctx.reply(reply, LogResult::Created { error });
            }
            Then::Persisted { topic, reply } => {
                if result.is_err() {
                    self.claimed.remove(&topic);
                }
                let error = storage(result.is_ok());
                ctx.reply(reply, LogResult::Created { error });
            }
            Then::Deleted { topic, reply } => {
                // The topic is gone from the table either way; what could not be removed
                // is removed at the next start (a folder without topic.meta).
                self.busy.remove(&topic);
                ctx.reply(reply, LogResult::Created { error: 0 });
            }
            Then::Segment { part, path } => {
                let read = job.take_fd(0);
                let write = job.take_fd(1);
                // Out of descriptors for a moment (many partitions rolling at once): try
                // again from the next tick instead of failing the partition (`readers.rs`).
                let emfile = matches!(&result, Err((_, e))
                    if matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)));
                if emfile {
                    return self.roll_open_later(part, path, ctx);
                }
                self.segment_opened(part, path, read.zip(write), ctx);
            }
            Then::Reader {
                part,
                path,
                retry,
                reply,
            } => {
                let handle = job.take_fd(0).filter(|_| result.is_ok());
                self.reader_reopened(part, path, handle, *retry, reply, ctx);
            }
            Then::RecordsDeleted {
                part,
                replies,
                log_start,
            } => self.log_start_written(part, replies, log_start, result.is_ok(), ctx),
            Then::Created {
                meta,
                partitions,
                reply,
            } => {
                let handles = (0..partitions.len())
                    .map(|k| job.take_fd(2 * k).zip(job.take_fd(2 * k + 1)))
                    .collect::<Option<Vec<_>>>()
                    .filter(|_| result.is_ok());
                self.topic_created(meta, partitions, handles, reply, ctx);
            }
        }
    }
}
