//! Pushing submission entries. A full submission queue is an error value, never a spin or a
//! block: the caller ([`super::io::Io`]) keeps what did not fit and pushes it at the start
//! of the next loop turn, after the kernel has consumed what was queued.

use io_uring::{squeue, IoUring};

/// The submission queue has no free entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the io_uring submission queue is full")]
pub struct SqFull;

/// Push `entries` as one group: all of them or none (linked entries must stay adjacent).
///
/// # Safety
/// Every buffer, path or struct an entry points to must stay valid and unmoved until the
/// operation's completion arrives (for multishot operations: until the final completion
/// without the MORE flag).
pub unsafe fn push(ring: &mut IoUring, entries: &[squeue::Entry]) -> Result<(), SqFull> {
    let mut sq = ring.submission();
    if sq.capacity() - sq.len() < entries.len() {
        return Err(SqFull);
    }
    for e in entries {
        // SAFETY: the caller upholds the buffer-lifetime contract stated above; room for
        // every entry was checked, so no push below can fail half-way.
        if unsafe { sq.push(e) }.is_err() {
            return Err(SqFull);
        }
    }
    Ok(())
}
