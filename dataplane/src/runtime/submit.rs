//! Pushing submission entries. A full submission queue is not an error and not a block: the
//! queue is submitted to the kernel to make room, and the push is retried.

use io_uring::{squeue, IoUring};

/// Push one entry.
///
/// # Safety
/// Every buffer, path or struct the entry points to must stay valid and unmoved until the
/// operation's completion arrives (for multishot operations: until the final completion
/// without the MORE flag).
pub unsafe fn push(ring: &mut IoUring, entry: &squeue::Entry) {
    loop {
        // SAFETY: the caller upholds the buffer-lifetime contract stated above.
        let pushed = unsafe { ring.submission().push(entry) };
        if pushed.is_ok() {
            return;
        }
        // Queue full: hand what is queued to the kernel. An error here (EBUSY when the CQ
        // overflows) is retried after completions are reaped by the caller's next loop turn;
        // we only need room, which `submit` makes even when it reports EBUSY for a subset.
        if let Err(e) = ring.submit() {
            tracing::warn!(error = %e, "io_uring submit while making room in a full SQ");
            std::thread::yield_now();
        }
    }
}
