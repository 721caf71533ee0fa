//! File-system work other than segment reads and writes, through the shard's io_uring:
//! opening a rolled segment, creating and deleting a topic's folders, writing and removing
//! `topic.meta`, unlinking retained-out segments, trimming a rolled segment's padding. None
//! of it blocks the shard's loop (an unlink of a large segment can take milliseconds while
//! the filesystem frees its extents; an open or mkdir can wait on the journal).
//!
//! A [`Job`] is a list of [`Step`]s run in order, one in flight at a time; the first failure
//! ends it. Its [`Then`] says what its end continues with (in `shard/logs.rs`). Handles a
//! job opens sit in its `fds` until the continuation takes them.
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
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use io_uring::{opcode, squeue, types};

use super::logs::ReplyTo;
use super::Shard;
use crate::log::topics::TopicMeta;
use crate::runtime::{Kind, Token};

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
    /// Close handle slot `fd`, on an io_uring worker (IOSQE_ASYNC).
    Close {
        fd: usize,
    },
}

/// What a finished job continues with.
pub enum Then {
    /// A rolled segment of partition `part` (index on this shard): fds[0] is its read
    /// handle, fds[1] its write handle.
    Segment { part: usize, path: PathBuf },
    /// A topic's partitions on this shard: for the k-th of `partitions`, fds[2k] and
    /// fds[2k+1] are its first segment's read and write handles.
    Created {
        meta: TopicMeta,
        partitions: Vec<i32>,
        reply: ReplyTo,
    },
    /// A topic's partitions on this shard are gone.
    Deleted { topic: String, reply: ReplyTo },
    /// Answer a log op with `Created { error }`: 0, or KAFKA_STORAGE_ERROR on failure.
    Reply(ReplyTo),
    /// Nothing waits; a failure is logged.
    Nothing,
}

pub struct Job {
    /// What the job does, for logs.
    pub what: String,
    steps: VecDeque<Step>,
    current: Option<Step>,
    /// Handles opened by the job's steps, and whether each was opened O_DIRECT.
    pub fds: Vec<Option<(File, bool)>>,
    pub then: Then,
}

impl Job {
    pub fn new(what: impl Into<String>, then: Then) -> Job {
        Job {
            what: what.into(),
            steps: VecDeque::new(),
            current: None,
            fds: Vec::new(),
            then,
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

    /// Whether the job has any steps.
    pub fn has_steps(&self) -> bool {
        !self.steps.is_empty()
    }

    /// Take the handle a step opened into slot `i`.
    pub fn take_fd(&mut self, i: usize) -> Option<(File, bool)> {
        self.fds.get_mut(i).and_then(Option::take)
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

/// Jobs in flight, by slot (the token's index).
#[derive(Default)]
pub struct Jobs {
    slots: Vec<Option<Job>>,
    free: Vec<u32>,
}

impl Jobs {
    pub fn is_empty(&self) -> bool {
        self.slots.len() == self.free.len()
    }

    fn insert(&mut self, job: Job) -> u32 {
        match self.free.pop() {
            Some(i) => {
                self.slots[i as usize] = Some(job);
                i
            }
            None => {
                self.slots.push(Some(job));
                self.slots.len() as u32 - 1
            }
        }
    }

    fn get_mut(&mut self, i: u32) -> Option<&mut Job> {
        self.slots.get_mut(i as usize).and_then(Option::as_mut)
    }

    fn remove(&mut self, i: u32) -> Option<Job> {
        let job = self.slots.get_mut(i as usize)?.take()?;
        self.free.push(i);
        Some(job)
    }
}

/// Why a job ended early: the step that failed and the error.
pub type Failure = (String, std::io::Error);

impl Shard {
    pub(super) fn start_job(&mut self, job: Job) {
        let i = self.logs.jobs.insert(job);
        self.next_step(i);
    }

    /// Issue job `i`'s next step, or end the job when none is left.
    fn next_step(&mut self, i: u32) {
        let Some(job) = self.logs.jobs.get_mut(i) else {
            return;
        };
        let Some(step) = job.steps.pop_front() else {
            if let Some(job) = self.logs.jobs.remove(i) {
                self.job_done(job, Ok(()));
            }
            return;
        };
        let fd_of = |fds: &[Option<(File, bool)>], k: usize| {
            fds.get(k)
                .and_then(Option::as_ref)
                .map_or(-1, |(f, _)| f.as_raw_fd())
        };
        let cwd = types::Fd(libc::AT_FDCWD);
        let close = match &step {
            Step::Close { fd } => job.fds.get_mut(*fd).and_then(Option::take),
            _ => None,
        };
        let job_fds = &job.fds;
        let current = job.current.insert(step);
        // The entry points into `current`'s heap buffers (CString, Vec), which stay in the
        // job slot, unmoved, until this step's completion is handled.
        let e = match current {
            Step::MkDir(p) => opcode::MkDirAt::new(cwd, p.as_ptr()).mode(DIR_MODE).build(),
            Step::Open { path, flags, .. } => opcode::OpenAt::new(cwd, path.as_ptr())
                .flags(*flags | libc::O_CLOEXEC)
                .mode(FILE_MODE)
                .build(),
            Step::Write { fd, data } => opcode::Write::new(
                types::Fd(fd_of(job_fds, *fd)),
                data.as_ptr(),
                data.len() as u32,
            )
            .offset(0)
            .build(),
            Step::Fsync { fd } => opcode::Fsync::new(types::Fd(fd_of(job_fds, *fd))).build(),
            Step::Ftruncate { fd, len } => {
                opcode::Ftruncate::new(types::Fd(fd_of(job_fds, *fd)), *len).build()
            }
            Step::Rename { from, to } => {
                opcode::RenameAt::new(cwd, from.as_ptr(), cwd, to.as_ptr()).build()
            }
            Step::Unlink { path, dir } => opcode::UnlinkAt::new(cwd, path.as_ptr())
                .flags(if *dir { libc::AT_REMOVEDIR } else { 0 })
                .build(),
            Step::Close { .. } => {
                // The ring closes the descriptor; the File gives up ownership of it. A slot
                // already empty closes -1, which fails harmlessly with EBADF.
                let fd = close.map_or(-1, |(f, _)| f.into_raw_fd());
                opcode::Close::new(types::Fd(fd))
                    .build()
                    .flags(squeue::Flags::ASYNC)
            }
        };
        self.push(e.user_data(Token::new(Kind::File, 0, i).encode()));
    }

    /// A step of job `i` completed with `res`.
    pub(super) fn on_file(&mut self, i: u32, res: i32) {
        let Some(job) = self.logs.jobs.get_mut(i) else {
            return;
        };
        let Some(step) = job.current.take() else {
            return;
        };
        let err = (res < 0).then(|| -res);
        let failed = match (&step, err) {
            (_, None) => {
                if let Step::Open { flags, into, .. } = &step {
                    if job.fds.len() <= *into {
                        job.fds.resize_with(*into + 1, || None);
                    }
                    // SAFETY: a successful openat returns a new descriptor that nothing else
                    // owns; the File takes sole ownership and closes it once.
                    let f = unsafe { File::from_raw_fd(res) };
                    job.fds[*into] = Some((f, flags & libc::O_DIRECT != 0));
                }
                if let Step::Write { data, .. } = &step {
                    (res as usize != data.len()).then(|| ("short write".to_string(), libc::EIO))
                } else {
                    None
                }
            }
            (Step::MkDir(_), Some(libc::EEXIST)) => None,
            (Step::Close { .. }, Some(_)) => None, // nothing to do about it; the fd is gone
            (Step::Unlink { .. }, Some(libc::ENOENT)) => None,
            (Step::Open { path, flags, into }, Some(libc::EINVAL))
                if flags & libc::O_DIRECT != 0 =>
            {
                tracing::info!(path = %path.to_string_lossy(), "the filesystem refuses O_DIRECT; writing through the page cache");
                let retry = Step::Open {
                    path: path.clone(),
                    flags: flags & !libc::O_DIRECT,
                    into: *into,
                };
                job.steps.push_front(retry);
                None
            }
            (Step::Ftruncate { fd, len }, Some(libc::EINVAL | libc::EOPNOTSUPP)) => {
                // Kernels before 6.9 have no IORING_OP_FTRUNCATE: do it here, blocking.
                match job.fds.get(*fd).and_then(Option::as_ref) {
                    Some((f, _)) => f.set_len(*len).err().map(|e| {
                        (
                            "ftruncate".to_string(),
                            e.raw_os_error().unwrap_or(libc::EIO),
                        )
                    }),
                    None => Some(("ftruncate".to_string(), libc::EBADF)),
                }
            }
            (s, Some(e)) => Some((step_name(s), e)),
        };
        match failed {
            None => self.next_step(i),
            Some((what, errno)) => {
                if let Some(job) = self.logs.jobs.remove(i) {
                    self.job_done(job, Err((what, std::io::Error::from_raw_os_error(errno))));
                }
            }
        }
    }
}

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
    }
}
