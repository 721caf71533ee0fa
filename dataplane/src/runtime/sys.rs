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

/// Whose CPU time [`cpu_times`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CpuOf {
    /// The whole process (every shard).
    Process,
    /// Children the process waited for.
    Children,
    /// The calling thread.
    Thread,
}

/// CPU time used, as (user, system) seconds, from `getrusage` (INFO's cpu section). Zero
/// when the kernel refuses, which it does only for a bad argument.
pub fn cpu_times(of: CpuOf) -> (f64, f64) {
    let who = match of {
        CpuOf::Process => libc::RUSAGE_SELF,
        CpuOf::Children => libc::RUSAGE_CHILDREN,
        CpuOf::Thread => libc::RUSAGE_THREAD,
    };
    let mut ru = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes one `struct rusage` to the pointer, which points at a live,
    // properly aligned, zero-initialised local of that type; `who` is a valid selector.
    let rc = unsafe { libc::getrusage(who, ru.as_mut_ptr()) };
    if rc != 0 {
        return (0.0, 0.0);
    }
    // SAFETY: zero-initialised, and getrusage filled it (rc == 0).
    let ru = unsafe { ru.assume_init() };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (secs(ru.ru_utime), secs(ru.ru_stime))
}

/// The IP address at the other end of a connected TCP socket (getpeername), for the
/// per-address connection limit and protected mode (issue 13, f-hygiene). IPv4-mapped IPv6
/// addresses come back as IPv4.
pub fn peer_ip(fd: RawFd) -> io::Result<std::net::IpAddr> {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    // SAFETY: sockaddr_storage is plain old data; all zeroes is a valid value.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: getpeername writes at most `len` bytes into the live local `ss` and updates `len`.
    let rc = unsafe {
        libc::getpeername(
            fd,
            &mut ss as *mut libc::sockaddr_storage as *mut libc::sockaddr,
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    match ss.ss_family as libc::c_int {
        libc::AF_INET => {
            // SAFETY: the family says the kernel wrote a sockaddr_in, which fits in ss.
            let sin =
                unsafe { &*(&ss as *const libc::sockaddr_storage as *const libc::sockaddr_in) };
            Ok(IpAddr::V4(Ipv4Addr::from(u32::from_be(
                sin.sin_addr.s_addr,
            ))))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says the kernel wrote a sockaddr_in6, which fits in ss.
            let sin6 =
                unsafe { &*(&ss as *const libc::sockaddr_storage as *const libc::sockaddr_in6) };
            Ok(IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr)).to_canonical())
        }
        other => Err(io::Error::other(format!("address family {other}"))),
    }
}

// ----- fd budget (issue 11/13, f-kadmin) -----

/// The process's open-file limit (`ulimit -n`): (soft, hard), RLIM_INFINITY as u64::MAX.
pub fn nofile_limit() -> io::Result<(u64, u64)> {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into the live local `r`.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((r.rlim_cur, r.rlim_max))
}

/// Raise the soft open-file limit to `soft` (at most the hard limit), as Redis does at
/// start-up; returns the soft limit in force afterwards.
pub fn raise_nofile(soft: u64) -> io::Result<u64> {
    let (cur, hard) = nofile_limit()?;
    let want = soft.min(hard);
    if want <= cur {
        return Ok(cur);
    }
    let r = libc::rlimit {
        rlim_cur: want as libc::rlim_t,
        rlim_max: hard as libc::rlim_t,
    };
    // SAFETY: setrlimit reads one rlimit from the live local `r`.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &r) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(want)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_times_grow_with_work() {
        let (u0, s0) = cpu_times(CpuOf::Process);
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        let (u1, s1) = cpu_times(CpuOf::Process);
        assert!(u1 + s1 > u0 + s0, "{u0}+{s0} then {u1}+{s1}");
        let (tu, _) = cpu_times(CpuOf::Thread);
        assert!(tu > 0.0 && tu <= u1 + 0.01);
        assert!(cpu_times(CpuOf::Children).0 >= 0.0);
    }
}
