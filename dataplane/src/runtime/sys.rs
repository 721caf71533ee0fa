//! The few plain system calls pinion makes outside a shard's ring: creating and signalling
//! the control eventfds (start-up, the main thread) and closing descriptors at shutdown.
//! Shards never call these while serving.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// A close-on-exec eventfd starting at 0.
pub fn eventfd() -> io::Result<OwnedFd> {
    // SAFETY: eventfd takes no pointers; a negative return is an error we report.
    let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh, valid descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Add 1 to an eventfd, waking whoever has a read on it.
pub fn eventfd_signal(fd: &OwnedFd) -> io::Result<()> {
    let one: u64 = 1;
    // SAFETY: writes 8 bytes from a live local u64 to a descriptor we own.
    let n = unsafe { libc::write(fd.as_raw_fd(), &one as *const u64 as *const libc::c_void, 8) };
    if n == 8 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Close a descriptor directly, at shutdown, after the shard's loop has ended (no
/// operation of its ring can still use it, and its connection owned it alone). Callers
/// must not pass a descriptor whose close was already submitted to the ring.
pub fn close_after_loop(fd: RawFd) {
    // SAFETY: the caller's descriptor is open and owned by nobody else; the OwnedFd closes
    // it exactly once.
    drop(unsafe { OwnedFd::from_raw_fd(fd) });
}

/// Take an exclusive advisory lock (flock) on `file` without waiting. Ok(false) when another
/// open file description holds it; the lock lasts while `file` stays open.
pub fn try_lock_exclusive(file: &std::fs::File) -> io::Result<bool> {
    // SAFETY: flock takes a descriptor `file` owns and flags; no pointers.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        return Ok(true);
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(false)
    } else {
        Err(e)
    }
}
