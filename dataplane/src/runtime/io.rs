//! Every operation a shard submits, with its buffer contract written once.
//!
//! The contract: whatever memory an operation lends the kernel (a send's bytes, a read's
//! buffer, a path, a timespec, an eventfd word) is *moved into* [`Io`] when the operation
//! is submitted and stays in its in-flight slot, unmoved, until the operation's last
//! completion; then it is handed back in the [`Completion`]. Callers cannot free or touch it
//! meanwhile because they do not have it. That is what makes every method here safe to
//! call, and it is why the module holds the `unsafe` pushes and nothing else does.
//!
//! File descriptors are passed by number. They must stay open until the operation has
//! completed; the owners (connections, partitions, file jobs) close theirs only through
//! [`Io::close_fd`] / [`Io::close_file`] after their other operations completed, so a number
//! is never reused under an operation that still names it.
//!
//! A full submission queue is not fatal and not a spin: entries that do not fit wait in a
//! backlog (in order, linked pairs together) and are pushed at the start of the next
//! [`Io::submit_and_wait`]. The in-flight table grows with what is in flight, which the
//! shard bounds (connections, partitions, reads, jobs).
//!
//! Lifecycle: one `Io` per shard, built on the shard's thread (the ring is single-issuer).
//! At drop the ring goes first, then the receive buffers; with operations still in flight
//! their buffers and the receive buffers are leaked rather than freed under the kernel. A
//! shard always exits with its tick timer and control read armed, so that is what happens at
//! every shard exit (the process is ending; an embedder that starts and stops nodes leaks the
//! receive buffers each time).

use std::collections::VecDeque;
use std::ffi::CString;
use std::fs::File;
use std::mem::ManuallyDrop;
use std::os::fd::{FromRawFd, IntoRawFd, RawFd};
use std::time::Duration;

use io_uring::{cqueue, opcode, squeue, types, IoUring};

use super::aligned::AlignedBuf;
use super::bufring::BufRing;
use super::ring::RingFeatures;
use super::slab::{Slab, SlabKey};
use super::{submit, Kind, Owner, UserData};

/// The buffer group multishot receives pick from.
const BUF_GROUP: u16 = 0;

/// Memory an operation lends the kernel, held by `Io` while it is in flight.
#[derive(Default)]
pub enum Held {
    #[default]
    Nothing,
    /// A send's bytes (and the offset the send started at).
    Bytes(Vec<u8>),
    /// A direct-I/O write's or a read's buffer.
    Aligned(AlignedBuf),
    Path(CString),
    Paths(CString, CString),
    Timespec(Box<types::Timespec>),
    /// An eventfd read's 8 bytes.
    Word(Box<[u8; 8]>),
}

impl Held {
    /// The bytes of a send, back from the kernel.
    pub fn into_bytes(self) -> Vec<u8> {
        match self {
            Held::Bytes(b) => b,
            _ => Vec::new(),
        }
    }

    /// The buffer of a write or read, back from the kernel.
    pub fn into_aligned(self) -> AlignedBuf {
        match self {
            Held::Aligned(b) => b,
            _ => AlignedBuf::default(),
        }
    }
}

/// An operation's slot in the in-flight table and the slot's generation, for cancelling
/// it (a cancel of an operation that already completed finds another generation there and
/// is not sent).
pub type OpId = SlabKey;

/// How an operation completes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Once,
    /// Keeps its slot until a completion without MORE.
    Multishot,
    /// A read: its result says how many bytes of the held buffer the kernel filled.
    Fill,
}

struct InFlight {
    owner: Owner,
    held: Held,
    mode: Mode,
    /// A zero-copy send's result, held until its notification says the kernel is done
    /// with the bytes; the owner sees one completion carrying both.
    zc_result: Option<i32>,
}

/// One completion, for its owner.
pub struct Completion {
    pub owner: Owner,
    pub res: i32,
    /// A multishot operation goes on (its slot is kept); false on its last completion.
    pub more: bool,
    /// The provided buffer a receive filled.
    pub buf_id: Option<u16>,
    /// What the operation lent the kernel, back (only on its last completion).
    pub held: Held,
}

impl Completion {
    /// The file a successful open returned, owned by the caller from now on.
    pub fn into_file(self) -> Option<File> {
        if self.res < 0 {
            return None;
        }
        // SAFETY: a successful openat completion's result is a new descriptor that nothing
        // else owns; the File takes sole ownership and closes it once.
        Some(unsafe { File::from_raw_fd(self.res) })
    }

    /// The socket a successful accept returned, by number (its connection owns it and
    /// closes it through [`Io::close_fd`]).
    pub fn accepted_fd(&self) -> Option<RawFd> {
        (self.res >= 0).then_some(self.res)
    }

    /// The socket a successful accept returned, owned (it may travel to another shard,
    /// closing itself if dropped on the way).
    pub fn accepted_owned(&self) -> Option<std::os::fd::OwnedFd> {
        // SAFETY: a successful accept completion's result is a new descriptor that nothing
        // else owns; the OwnedFd takes sole ownership and closes it at most once.
        (self.res >= 0).then(|| unsafe { std::os::fd::OwnedFd::from_raw_fd(self.res) })
    }
}

pub struct Io {
    // Dropped by hand (see Drop): the ring before the buffer ring it references, and the
    // buffer ring not at all while operations may still write into it.
    ring: ManuallyDrop<IoUring>,
    bufring: ManuallyDrop<BufRing>,
    pub features: RingFeatures,
    slots: Slab<InFlight>,
    /// Entries that found the submission queue full, in order; each group is pushed whole.
    backlog: VecDeque<Vec<squeue::Entry>>,
    /// Times an entry had to wait in the backlog (metrics).
    pub backlogged: u64,
    /// Completions read off the ring, reused every turn.
    raw: Vec<(u64, i32, u32)>,
}

impl Io {
    pub fn new(
        ring: IoUring,
        features: RingFeatures,
        recv_buffers: u16,
        recv_buffer_bytes: usize,
    ) -> std::io::Result<Io> {
        let bufring = BufRing::new(&ring, recv_buffers, recv_buffer_bytes, BUF_GROUP)?;
        Ok(Io {
            ring: ManuallyDrop::new(ring),
            bufring: ManuallyDrop::new(bufring),
            features,
            slots: Slab::default(),
            backlog: VecDeque::new(),
            backlogged: 0,
            raw: Vec::new(),
        })
    }

    /// The ring's descriptor, for other shards' doorbells.
    pub fn ring_fd(&self) -> RawFd {
        use std::os::fd::AsRawFd;
        self.ring.as_raw_fd()
    }

    /// Operations submitted and not completed (multishot ones included).
    pub fn in_flight(&self) -> usize {
        self.slots.len()
    }

    fn insert(&mut self, owner: Owner, held: Held, mode: Mode) -> OpId {
        let f = InFlight {
            owner,
            held,
            mode,
            zc_result: None,
        };
        self.slots.insert(f)
    }

    fn user_data(op: OpId) -> u64 {
        UserData::Op {
            slot: op.slot,
            gen: op.gen,
        }
        .encode()
    }

    fn held(&self, op: OpId) -> &Held {
        self.slots.get(op).map_or(&Held::Nothing, |f| &f.held)
    }

    /// Queue `entries` (already tagged) for submission, behind any backlog.
    fn enqueue(&mut self, entries: &[squeue::Entry]) {
        if self.backlog.is_empty() {
            // SAFETY: every entry points only at memory held in `self.slots` (moved in by
            // the method that built it) or at nothing; a slot is freed only by `reap`
            // after the operation's last completion, so the memory outlives the operation.
            match unsafe { submit::push(&mut self.ring, entries) } {
                Ok(()) => return,
                Err(submit::SqFull) => {
                    // Hand what is queued to the kernel and try once more; no waiting.
                    let _ = self.ring.submit();
                    // SAFETY: as above.
                    if unsafe { submit::push(&mut self.ring, entries) }.is_ok() {
                        return;
                    }
                }
            }
        }
        self.backlogged += 1;
        self.backlog.push_back(entries.to_vec());
    }

    /// Register an operation lending `held` and queue its entry, built from the held
    /// memory's stable address. Returns its id.
    fn start(
        &mut self,
        owner: Owner,
        held: Held,
        mode: Mode,
        build: impl FnOnce(&Held) -> squeue::Entry,
    ) -> OpId {
        let op = self.insert(owner, held, mode);
        let e = build(self.held(op)).user_data(Self::user_data(op));
        self.enqueue(&[e]);
        op
    }

    // ----- sockets ----------------------------------------------------------------------

    /// Accept connections on `listener` until cancelled (multishot).
    pub fn accept_multi(&mut self, listener: RawFd, owner: Owner) -> OpId {
        self.start(owner, Held::Nothing, Mode::Multishot, |_| {
            opcode::AcceptMulti::new(types::Fd(listener))
                .flags(libc::SOCK_CLOEXEC)
                .build()
        })
    }

    /// Receive into buffers of the provided ring until cancelled or out of buffers
    /// (multishot); each completion names its buffer, which goes back with [`Io::recycle`].
    pub fn recv_multi(&mut self, fd: RawFd, owner: Owner) -> OpId {
        self.start(owner, Held::Nothing, Mode::Multishot, |_| {
            opcode::RecvMulti::new(types::Fd(fd), BUF_GROUP).build()
        })
    }

    /// Receive up to `max` bytes straight into `buf`, after the bytes it holds (a large
    /// request grows in place: no provided buffer is taken and nothing is copied). The
    /// completion hands the buffer back with the bytes received appended.
    pub fn recv_into(&mut self, fd: RawFd, mut buf: Vec<u8>, max: usize, owner: Owner) -> OpId {
        buf.reserve(max.max(1));
        let spare = buf.spare_capacity_mut();
        let len = spare.len().min(max).min(u32::MAX as usize) as u32;
        // The heap buffer does not move when the vector moves into the slot below.
        let ptr = spare.as_mut_ptr() as *mut u8;
        self.start(owner, Held::Bytes(buf), Mode::Fill, |_| {
            opcode::Recv::new(types::Fd(fd), ptr, len).build()
        })
    }

    /// The bytes a receive completion put in buffer `bid`.
    pub fn recv_bytes(&self, bid: u16, len: usize) -> &[u8] {
        self.bufring.get(bid, len)
    }

    /// Give a receive buffer back to the kernel.
    pub fn recycle(&mut self, bid: u16) {
        self.bufring.recycle(bid);
    }

    /// Send `buf[from..]`; zero-copy when `zero_copy` (the bytes then stay lent until the
    /// kernel's notification, and the completion comes once, after it). The buffer comes
    /// back in the completion.
    pub fn send(
        &mut self,
        fd: RawFd,
        buf: Vec<u8>,
        from: usize,
        zero_copy: bool,
        owner: Owner,
    ) -> OpId {
        self.start(owner, Held::Bytes(buf), Mode::Once, |h| {
            let rest: &[u8] = match h {
                Held::Bytes(b) => &b[from.min(b.len())..],
                _ => &[],
            };
            let (ptr, len) = (rest.as_ptr(), rest.len() as u32);
            if zero_copy {
                opcode::SendZc::new(types::Fd(fd), ptr, len)
                    .flags(libc::MSG_NOSIGNAL)
                    .build()
            } else {
                opcode::Send::new(types::Fd(fd), ptr, len)
                    .flags(libc::MSG_NOSIGNAL)
                    .build()
            }
        })
    }

    /// Close a descriptor the caller owned by number (a socket).
    pub fn close_fd(&mut self, fd: RawFd, owner: Owner) {
        self.start(owner, Held::Nothing, Mode::Once, |_| {
            opcode::Close::new(types::Fd(fd)).build()
        });
    }

    /// Close a file on an io_uring worker (the last close of an unlinked file frees its
    /// blocks, which can take milliseconds).
    pub fn close_file(&mut self, f: File, owner: Owner) {
        let fd = f.into_raw_fd();
        self.start(owner, Held::Nothing, Mode::Once, |_| {
            opcode::Close::new(types::Fd(fd))
                .build()
                .flags(squeue::Flags::ASYNC)
        });
    }

    /// Cancel an operation (its own completion, ECANCELED, follows). One that already
    /// completed is left alone: its slot may hold another operation by now.
    pub fn cancel(&mut self, target: OpId, owner: Owner) {
        if self.slots.get(target).is_none() {
            return;
        }
        let ud = Self::user_data(target);
        self.start(owner, Held::Nothing, Mode::Once, |_| {
            opcode::AsyncCancel::new(ud).build()
        });
    }

    // ----- timers, wake-ups, doorbells ---------------------------------------------------

    /// A one-shot timer.
    pub fn timeout(&mut self, after: Duration, owner: Owner) -> OpId {
        let ts = Box::new(types::Timespec::from(after));
        self.start(owner, Held::Timespec(ts), Mode::Once, |h| {
            let p: *const types::Timespec = match h {
                Held::Timespec(t) => &**t,
                _ => std::ptr::null(),
            };
            opcode::Timeout::new(p).build()
        })
    }

    /// Read the 8-byte counter of an eventfd.
    pub fn read_eventfd(&mut self, fd: RawFd, owner: Owner) -> OpId {
        let mut word = Box::new([0u8; 8]);
        let p = word.as_mut_ptr();
        // The box's heap address does not change when the box moves into the slot.
        self.start(owner, Held::Word(word), Mode::Once, |_| {
            opcode::Read::new(types::Fd(fd), p, 8).build()
        })
    }

    /// Post a doorbell completion (user_data [`UserData::DoorbellFrom`]) into another
    /// shard's ring. Success posts nothing here; a failure completes as
    /// [`Kind::DoorbellFailed`].
    pub fn doorbell(&mut self, target_ring: RawFd, from: u32, to: u32) {
        let e = opcode::MsgRingData::new(
            types::Fd(target_ring),
            0,
            UserData::DoorbellFrom(from).encode(),
            None,
        )
        .build()
        .flags(squeue::Flags::SKIP_SUCCESS)
        .user_data(UserData::DoorbellFailed(to).encode());
        self.enqueue(&[e]);
    }

    // ----- files -------------------------------------------------------------------------

    /// Write all of `buf` at `offset`; with `then_sync`, an fdatasync linked after it
    /// (completing as `then_sync`'s owner). The buffer comes back with the write.
    pub fn write_at(
        &mut self,
        fd: RawFd,
        buf: AlignedBuf,
        offset: u64,
        owner: Owner,
        then_sync: Option<Owner>,
    ) {
        let op = self.insert(owner, Held::Aligned(buf), Mode::Once);
        let (ptr, len) = match self.held(op) {
            Held::Aligned(b) => (b.as_ptr(), b.len() as u32),
            _ => (std::ptr::null(), 0),
        };
        let write = opcode::Write::new(types::Fd(fd), ptr, len)
            .offset(offset)
            .build()
            .user_data(Self::user_data(op));
        match then_sync {
            None => self.enqueue(&[write]),
            Some(sync_owner) => {
                let s = self.insert(sync_owner, Held::Nothing, Mode::Once);
                let sync = opcode::Fsync::new(types::Fd(fd))
                    .flags(types::FsyncFlags::DATASYNC)
                    .build()
                    .user_data(Self::user_data(s));
                self.enqueue(&[write.flags(squeue::Flags::IO_LINK), sync]);
            }
        }
    }

    /// Write all of `data` at offset 0 (small files: `topic.meta`).
    pub fn write_bytes(&mut self, fd: RawFd, data: Vec<u8>, owner: Owner) {
        self.start(owner, Held::Bytes(data), Mode::Once, |h| {
            let d: &[u8] = match h {
                Held::Bytes(b) => b,
                _ => &[],
            };
            opcode::Write::new(types::Fd(fd), d.as_ptr(), d.len() as u32)
                .offset(0)
                .build()
        });
    }

    /// fsync (fdatasync with `data_only`).
    pub fn fsync(&mut self, fd: RawFd, data_only: bool, owner: Owner) {
        self.start(owner, Held::Nothing, Mode::Once, |_| {
            let mut op = opcode::Fsync::new(types::Fd(fd));
            if data_only {
                op = op.flags(types::FsyncFlags::DATASYNC);
            }
            op.build()
        });
    }

    /// Read `len` bytes at `offset` into `buf` (cleared and grown to at least `len`). The
    /// completion hands the buffer back holding exactly the bytes the kernel read.
    pub fn read_at(
        &mut self,
        fd: RawFd,
        mut buf: AlignedBuf,
        len: usize,
        offset: u64,
        owner: Owner,
    ) {
        buf.clear();
        buf.reserve(len.max(1));
        self.start(owner, Held::Aligned(buf), Mode::Fill, |h| {
            let p = match h {
                Held::Aligned(b) => b.as_ptr() as *mut u8,
                _ => std::ptr::null_mut(),
            };
            opcode::Read::new(types::Fd(fd), p, len as u32)
                .offset(offset)
                .build()
        });
    }

    /// open(2) relative to the working directory; [`Completion::into_file`] takes the fd.
    pub fn open_at(&mut self, path: CString, flags: i32, mode: libc::mode_t, owner: Owner) {
        self.start(owner, Held::Path(path), Mode::Once, |h| {
            let p = match h {
                Held::Path(p) => p.as_ptr(),
                _ => std::ptr::null(),
            };
            opcode::OpenAt::new(types::Fd(libc::AT_FDCWD), p)
                .flags(flags | libc::O_CLOEXEC)
                .mode(mode)
                .build()
        });
    }

    pub fn mkdir_at(&mut self, path: CString, mode: libc::mode_t, owner: Owner) {
        self.start(owner, Held::Path(path), Mode::Once, |h| {
            let p = match h {
                Held::Path(p) => p.as_ptr(),
                _ => std::ptr::null(),
            };
            opcode::MkDirAt::new(types::Fd(libc::AT_FDCWD), p)
                .mode(mode)
                .build()
        });
    }

    /// unlink, or rmdir with `dir`.
    pub fn unlink_at(&mut self, path: CString, dir: bool, owner: Owner) {
        self.start(owner, Held::Path(path), Mode::Once, |h| {
            let p = match h {
                Held::Path(p) => p.as_ptr(),
                _ => std::ptr::null(),
            };
            opcode::UnlinkAt::new(types::Fd(libc::AT_FDCWD), p)
                .flags(if dir { libc::AT_REMOVEDIR } else { 0 })
                .build()
        });
    }

    pub fn rename_at(&mut self, from: CString, to: CString, owner: Owner) {
        self.start(owner, Held::Paths(from, to), Mode::Once, |h| {
            let (a, b) = match h {
                Held::Paths(a, b) => (a.as_ptr(), b.as_ptr()),
                _ => (std::ptr::null(), std::ptr::null()),
            };
            let cwd = types::Fd(libc::AT_FDCWD);
            opcode::RenameAt::new(cwd, a, cwd, b).build()
        });
    }

    pub fn ftruncate(&mut self, fd: RawFd, len: u64, owner: Owner) {
        self.start(owner, Held::Nothing, Mode::Once, |_| {
            opcode::Ftruncate::new(types::Fd(fd), len).build()
        });
    }

    // ----- the loop ----------------------------------------------------------------------

    /// Push the backlog, submit, and wait for at least `want` completions.
    pub fn submit_and_wait(&mut self, want: usize) -> std::io::Result<()> {
        while let Some(group) = self.backlog.pop_front() {
            // SAFETY: as in `enqueue`: backlogged entries point at memory held in slots.
            if unsafe { submit::push(&mut self.ring, &group) }.is_err() {
                self.backlog.push_front(group);
                break;
            }
        }
        // Entries still waiting need the kernel to consume the queue first: do not sleep.
        let want = if self.backlog.is_empty() { want } else { 0 };
        match self.ring.submit_and_wait(want) {
            Ok(_) => Ok(()),
            Err(e) if matches!(e.raw_os_error(), Some(libc::EINTR | libc::EBUSY)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Take every completion the ring holds.
    pub fn reap(&mut self, out: &mut Vec<Completion>) {
        let mut raw = std::mem::take(&mut self.raw);
        raw.extend(
            self.ring
                .completion()
                .map(|c| (c.user_data(), c.result(), c.flags())),
        );
        for (ud, res, flags) in raw.drain(..) {
            let done = |owner, held| Completion {
                owner,
                res,
                more: false,
                buf_id: None,
                held,
            };
            match UserData::decode(ud) {
                Some(UserData::DoorbellFrom(from)) => {
                    out.push(done(Owner::new(Kind::Doorbell, from, 0), Held::Nothing))
                }
                Some(UserData::DoorbellFailed(to)) => {
                    out.push(done(Owner::new(Kind::DoorbellFailed, to, 0), Held::Nothing))
                }
                Some(UserData::Op { slot, gen }) => {
                    let op = OpId { slot, gen };
                    if !self.slots.is_current(op) {
                        tracing::warn!(slot, gen, "a completion for a slot that moved on");
                        continue;
                    }
                    if let Some(c) = self.complete(op, res, flags) {
                        out.push(c);
                    }
                }
                None => tracing::warn!(ud, "completion with unknown user_data"),
            }
        }
        self.raw = raw;
    }

    fn complete(&mut self, op: OpId, res: i32, flags: u32) -> Option<Completion> {
        let f = self.slots.get_mut(op)?;
        let more = cqueue::more(flags);
        // A zero-copy send completes twice: its result (with MORE), then a notification
        // once the kernel no longer reads the bytes. The owner hears once, at the end.
        if cqueue::notif(flags) {
            let res = f.zc_result.take().unwrap_or(res);
            return self.finish(op, res, None);
        }
        if more && f.mode != Mode::Multishot {
            f.zc_result = Some(res);
            return None;
        }
        let buf_id = cqueue::buffer_select(flags);
        if more {
            return Some(Completion {
                owner: f.owner,
                res,
                more: true,
                buf_id,
                held: Held::Nothing,
            });
        }
        self.finish(op, res, buf_id)
    }

    fn finish(&mut self, op: OpId, res: i32, buf_id: Option<u16>) -> Option<Completion> {
        let f = self.slots.remove(op)?;
        let mut held = f.held;
        if let (Held::Aligned(b), Mode::Fill, true) = (&mut held, f.mode, res > 0) {
            if res as usize <= b.capacity() {
                // SAFETY: the read completed and the kernel wrote `res` bytes at the start
                // of the buffer (it was given at most the capacity), so they are
                // initialised.
                unsafe { b.set_len(res as usize) };
            }
        }
        if let (Held::Bytes(b), Mode::Fill, true) = (&mut held, f.mode, res > 0) {
            let len = b.len() + res as usize;
            if len <= b.capacity() {
                // SAFETY: the receive completed and the kernel wrote `res` bytes right after
                // the vector's bytes (it was given at most its spare capacity), so they are
                // initialised.
                unsafe { b.set_len(len) };
            }
        }
        Some(Completion {
            owner: f.owner,
            res,
            more: false,
            buf_id,
            held,
        })
    }
}

impl Drop for Io {
    fn drop(&mut self) {
        let in_flight = self.in_flight() > 0;
        // SAFETY: the ring is dropped exactly once, here, and not used after.
        unsafe { ManuallyDrop::drop(&mut self.ring) };
        if in_flight {
            // Operations still in flight (a shard's standing timer and control read at
            // every exit; connections' receives after a forced shutdown) may be written by
            // the kernel while the ring tears down asynchronously: leak their memory and the
            // receive buffers instead of freeing them.
            self.slots.leak();
            return;
        }
        // SAFETY: dropped exactly once, after the ring it was registered with, and with no
        // operation left that could pick one of its buffers.
        unsafe { ManuallyDrop::drop(&mut self.bufring) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::ring;

    fn io(entries: u32) -> Io {
        let (ring, features) = ring::build(entries, None).expect("an io_uring");
        Io::new(ring, features, 8, 4096).expect("receive buffers")
    }

    fn complete(io: &mut Io, n: usize) -> Vec<Completion> {
        let mut got = Vec::new();
        while got.len() < n {
            io.submit_and_wait(1).expect("submit");
            io.reap(&mut got);
        }
        got
    }

    #[test]
    fn a_full_submission_queue_is_an_error_value() {
        let (mut ring, _) = ring::build(8, None).expect("an io_uring");
        let nop = io_uring::opcode::Nop::new().build();
        let cap = ring.submission().capacity();
        for _ in 0..cap {
            // SAFETY: a NOP points at no memory.
            unsafe { submit::push(&mut ring, std::slice::from_ref(&nop)) }.expect("room");
        }
        // SAFETY: as above.
        let full = unsafe { submit::push(&mut ring, std::slice::from_ref(&nop)) };
        assert_eq!(full, Err(submit::SqFull));
        // A linked pair goes in whole or not at all.
        ring.submit().expect("submit");
        // SAFETY: as above.
        let pair = unsafe { submit::push(&mut ring, &vec![nop.clone(); cap + 1]) };
        assert_eq!(pair, Err(submit::SqFull));
        assert_eq!(ring.submission().len(), 0);
    }

    #[test]
    fn more_operations_than_queue_entries_all_complete() {
        let mut io = io(8);
        let n = 64u32;
        for i in 0..n {
            io.timeout(Duration::from_millis(1), Owner::new(Kind::Timer, i, 0));
        }
        let got = complete(&mut io, n as usize);
        let mut owners: Vec<u32> = got.iter().map(|c| c.owner.index).collect();
        owners.sort_unstable();
        assert_eq!(
            owners,
            (0..n).collect::<Vec<_>>(),
            "each operation completed once"
        );
        assert_eq!(io.in_flight(), 0);
    }

    #[test]
    fn buffers_come_back_with_their_completions() {
        use std::os::fd::AsRawFd;
        let path = std::env::temp_dir().join(format!("pinion-io-{}", std::process::id()));
        let f = std::fs::File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .expect("a temp file");
        let mut io = io(8);
        let mut buf = AlignedBuf::default();
        buf.extend_from_slice(b"hello, ring");
        io.write_at(
            f.as_raw_fd(),
            buf,
            0,
            Owner::new(Kind::LogWrite, 1, 0),
            None,
        );
        let w = complete(&mut io, 1).pop().expect("the write");
        assert_eq!(w.res, 11);
        assert_eq!(
            w.held.into_aligned().as_slice(),
            b"hello, ring",
            "the write's buffer is back"
        );
        io.read_at(
            f.as_raw_fd(),
            AlignedBuf::default(),
            64,
            7,
            Owner::new(Kind::LogRead, 2, 0),
        );
        let r = complete(&mut io, 1).pop().expect("the read");
        assert_eq!(r.owner.index, 2);
        assert_eq!(
            r.held.into_aligned().as_slice(),
            b"ring",
            "exactly the bytes read"
        );
        drop(f);
        let _ = std::fs::remove_file(path);
    }
}
