//! Building a shard's io_uring: probe what the kernel offers, prefer `SINGLE_ISSUER` +
//! `DEFER_TASKRUN` (completions run only when this thread enters the ring, no IPIs), or
//! `SQPOLL` when asked, and fall back to a plain ring with a log line saying what was lost.
//! Environment errors are turned into messages that say what to change.

use std::io;

use io_uring::{opcode, IoUring, Probe};

#[derive(Debug, Clone, Copy, Default)]
pub struct RingFeatures {
    pub single_issuer: bool,
    pub defer_taskrun: bool,
    pub sqpoll: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum RingError {
    #[error("io_uring is not allowed here ({0}): check `sysctl kernel.io_uring_disabled` (must be 0) and any seccomp filter of the container")]
    Disabled(io::Error),
    #[error("io_uring ring of {entries} entries could not be created ({err}): raise the locked-memory limit (`ulimit -l`) or lower --sq-entries")]
    NoMemory { entries: u32, err: io::Error },
    #[error("io_uring setup failed: {0}")]
    Other(io::Error),
    #[error("this kernel lacks io_uring {0}, which pinion needs (Linux 6.0 or newer has it)")]
    Missing(&'static str),
}

fn classify(entries: u32, err: io::Error) -> RingError {
    match err.raw_os_error() {
        Some(libc::EPERM) | Some(libc::EACCES) | Some(libc::ENOSYS) => RingError::Disabled(err),
        Some(libc::ENOMEM) => RingError::NoMemory { entries, err },
        _ => RingError::Other(err),
    }
}

/// Create the ring for the calling thread (which becomes its only submitter).
pub fn build(
    sq_entries: u32,
    sqpoll_idle_ms: Option<u32>,
) -> Result<(IoUring, RingFeatures), RingError> {
    let cq_entries = sq_entries.saturating_mul(4);
    let f = |sqpoll, single_issuer, defer_taskrun| RingFeatures {
        sqpoll,
        single_issuer,
        defer_taskrun,
    };
    // Best first; each later one drops a feature the kernel may refuse.
    let attempts: [(&str, RingFeatures); 3] = match sqpoll_idle_ms {
        Some(_) => [
            ("sqpoll+single_issuer", f(true, true, false)),
            ("sqpoll", f(true, false, false)),
            ("plain", f(false, false, false)),
        ],
        None => [
            ("single_issuer+defer_taskrun", f(false, true, true)),
            ("single_issuer", f(false, true, false)),
            ("plain", f(false, false, false)),
        ],
    };
    let mut last_err = None;
    for (name, f) in attempts {
        let mut b = IoUring::builder();
        b.setup_cqsize(cq_entries).setup_clamp();
        if f.sqpoll {
            b.setup_sqpoll(sqpoll_idle_ms.unwrap_or(1000));
        }
        if f.single_issuer {
            b.setup_single_issuer();
        }
        if f.defer_taskrun {
            b.setup_defer_taskrun();
            // The kernel flags deferred completions (IORING_SQ_TASKRUN), so a turn that does
            // not wait (lazy freeing, sliced KEYS) still enters with GETEVENTS and runs them:
            // without it a busy loop reaps no receive until its long work is done.
            b.setup_taskrun_flag();
        }
        match b.build(sq_entries) {
            Ok(ring) => {
                if name != attempts[0].0 {
                    tracing::warn!(
                        wanted = attempts[0].0,
                        got = name,
                        "io_uring features missing on this kernel; running with fewer"
                    );
                }
                probe(&ring)?;
                return Ok((ring, f));
            }
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                last_err = Some(e);
                continue;
            }
            Err(e) => return Err(classify(sq_entries, e)),
        }
    }
    Err(classify(
        sq_entries,
        last_err.unwrap_or_else(|| io::Error::from_raw_os_error(libc::EINVAL)),
    ))
}

/// Check that every opcode the shard uses exists.
fn probe(ring: &IoUring) -> Result<(), RingError> {
    let mut p = Probe::new();
    ring.submitter()
        .register_probe(&mut p)
        .map_err(RingError::Other)?;
    let needed: [(u8, &'static str); 7] = [
        (opcode::AcceptMulti::CODE, "ACCEPT"),
        (opcode::RecvMulti::CODE, "RECV"),
        (opcode::Send::CODE, "SEND"),
        (opcode::MsgRingData::CODE, "MSG_RING"),
        (opcode::Timeout::CODE, "TIMEOUT"),
        (opcode::AsyncCancel::CODE, "ASYNC_CANCEL"),
        (opcode::Read::CODE, "READ"),
    ];
    for (code, name) in needed {
        if !p.is_supported(code) {
            return Err(RingError::Missing(name));
        }
    }
    Ok(())
}
