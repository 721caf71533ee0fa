//! The node's global allocator: the system allocator, except that requests of 1 GiB or more
//! are served by `mmap(MAP_NORESERVE)`.
//!
//! Why: the `kafka-protocol` decoders reserve `Vec::with_capacity(n)` with `n` taken from
//! the wire before reading the elements, so one hostile request can ask for hundreds of
//! gigabytes. The system allocator refuses that and Rust aborts the process on allocation
//! failure: every connection of the node would be lost to one bad frame. A `MAP_NORESERVE`
//! mapping only reserves address space (Linux's default overcommit heuristic does not
//! charge it); the decoder then fails on the short buffer and drops the untouched mapping.
//! Memory that is really used is committed page by page as it is touched, exactly as large
//! `malloc` blocks are.

use std::alloc::{GlobalAlloc, Layout, System};

/// Requests this large (or larger) get their own lazily committed mapping.
const HUGE: usize = crate::limits::HUGE_ALLOC_BYTES;
const PAGE: usize = 4096;

pub struct NodeAlloc;

fn huge(l: &Layout) -> bool {
    l.size() >= HUGE && l.align() <= PAGE
}

// SAFETY: every method hands blocks of at least the requested size and alignment (mmap is
// page-aligned, and only layouts aligned to at most a page take that path), and frees each
// block the way it was obtained: huge layouts with munmap, others through System. The
// layout passed to dealloc/realloc is the one the block was allocated with (GlobalAlloc's
// contract), so `huge` selects the same path for both.
unsafe impl GlobalAlloc for NodeAlloc {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        if huge(&l) {
            // SAFETY: an anonymous private mapping; no existing memory is touched.
            let p = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    l.size(),
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                    -1,
                    0,
                )
            };
            if p == libc::MAP_FAILED {
                return std::ptr::null_mut();
            }
            return p as *mut u8;
        }
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc(l) }
    }

    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        if huge(&l) {
            // SAFETY: fresh anonymous mappings are zero-filled.
            return unsafe { self.alloc(l) };
        }
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc_zeroed(l) }
    }

    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        if huge(&l) {
            // SAFETY: p was returned by mmap for exactly l.size() bytes (see alloc).
            unsafe { libc::munmap(p as *mut libc::c_void, l.size()) };
            return;
        }
        // SAFETY: p came from System with this layout.
        unsafe { System.dealloc(p, l) }
    }

    unsafe fn realloc(&self, p: *mut u8, l: Layout, new_size: usize) -> *mut u8 {
        let new = Layout::from_size_align(new_size, l.align());
        match new {
            Ok(n) if !huge(&l) && !huge(&n) => {
                // SAFETY: both sides are System blocks with the caller's layout.
                unsafe { System.realloc(p, l, new_size) }
            }
            Ok(n) => {
                // Crossing the threshold: move the bytes between the two kinds of block.
                // SAFETY: n is a valid layout; the copy covers the smaller of the two sizes,
                // inside both blocks; the old block is freed the way it was obtained.
                unsafe {
                    let q = self.alloc(n);
                    if !q.is_null() {
                        std::ptr::copy_nonoverlapping(p, q, l.size().min(new_size));
                        self.dealloc(p, l);
                    }
                    q
                }
            }
            Err(_) => std::ptr::null_mut(),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_wire_sized_reservation_does_not_abort_the_process() {
        // What a hostile Kafka frame makes the decoder do: reserve ~50 GB, use none of it.
        let v: Vec<[u8; 64]> = Vec::with_capacity(800_000_000);
        assert!(v.capacity() >= 800_000_000);
        drop(v);
        // Growing across the threshold keeps the contents.
        let mut w: Vec<u8> = Vec::with_capacity(16);
        w.extend_from_slice(b"kept");
        w.reserve(1 << 30);
        assert_eq!(&w[..4], b"kept");
    }
}
