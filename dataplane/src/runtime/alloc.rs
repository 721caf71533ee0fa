//! A counting allocator for the unit tests and the fuzz targets: the system allocator, plus per-thread figures of
//! what the calling thread allocates, so a test can assert that some code stays within a
//! memory bound ([`measure`]).
//!
//! The node itself runs on the system allocator unchanged. It once served requests of 1 GiB
//! or more with `mmap(MAP_NORESERVE)`, because the Kafka decoders reserved capacity for
//! counts read off the wire; a hostile frame could ask for any size, and Rust aborts on a
//! failed allocation. That still failed under `vm.overcommit_memory=2` or an address-space
//! limit. Now no request reaches those decoders before `proto::kafka::schema` has checked
//! every count against the bytes that follow, so no allocation is sized from the wire
//! before its bytes are there.

// The fuzz targets (`fuzz/`) assert the same bound, so they build it with the feature
// `count-alloc`; the node never does.
#[cfg(any(test, feature = "count-alloc"))]
pub use counting::{measure, Usage};

#[cfg(any(test, feature = "count-alloc"))]
mod counting {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;

    #[global_allocator]
    static COUNTING: Counting = Counting;

    thread_local! {
        /// Bytes this thread holds (allocated here and not yet freed here).
        static HELD: Cell<usize> = const { Cell::new(0) };
        /// The most `HELD` has been since the current [`measure`] began.
        static PEAK: Cell<usize> = const { Cell::new(0) };
        /// The largest single block asked for since the current [`measure`] began.
        static LARGEST: Cell<usize> = const { Cell::new(0) };
    }

    /// What a closure allocated on its thread.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Usage {
        /// The most it held at once, above what the thread held when it began.
        pub peak_bytes: usize,
        /// Its largest single allocation (or reallocation's new size).
        pub largest_bytes: usize,
    }

    /// Run `f` and report what it allocated on this thread.
    pub fn measure<R>(f: impl FnOnce() -> R) -> (R, Usage) {
        let base = HELD.with(Cell::get);
        PEAK.with(|p| p.set(base));
        LARGEST.with(|l| l.set(0));
        let r = f();
        let usage = Usage {
            peak_bytes: PEAK.with(Cell::get) - base,
            largest_bytes: LARGEST.with(Cell::get),
        };
        (r, usage)
    }

    fn grew(by: usize, block: usize) {
        // try_with: a thread being torn down still frees (its counters are simply gone).
        let _ = HELD.try_with(|h| {
            let now = h.get().saturating_add(by);
            h.set(now);
            let _ = PEAK.try_with(|p| p.set(p.get().max(now)));
        });
        let _ = LARGEST.try_with(|l| l.set(l.get().max(block)));
    }

    fn shrank(by: usize) {
        // Saturating: a block freed on another thread than the one that allocated it.
        let _ = HELD.try_with(|h| h.set(h.get().saturating_sub(by)));
    }

    struct Counting;

    // SAFETY: every method forwards to `System` with the caller's own arguments and only
    // updates thread-local counters (const-initialised cells that never allocate), so the
    // blocks, their layouts and the GlobalAlloc contract are exactly System's.
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, l: Layout) -> *mut u8 {
            // SAFETY: forwarded with the caller's layout.
            let p = unsafe { System.alloc(l) };
            if !p.is_null() {
                grew(l.size(), l.size());
            }
            p
        }

        unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
            // SAFETY: forwarded with the caller's layout.
            let p = unsafe { System.alloc_zeroed(l) };
            if !p.is_null() {
                grew(l.size(), l.size());
            }
            p
        }

        unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
            // SAFETY: p came from System (through this allocator) with this layout.
            unsafe { System.dealloc(p, l) };
            shrank(l.size());
        }

        unsafe fn realloc(&self, p: *mut u8, l: Layout, new_size: usize) -> *mut u8 {
            // SAFETY: p came from System with layout l; new_size is the caller's.
            let q = unsafe { System.realloc(p, l, new_size) };
            if !q.is_null() {
                shrank(l.size());
                grew(new_size, new_size);
            }
            q
        }
    }
}

#[cfg(test)]
mod tests {
    use super::measure;

    #[test]
    fn measure_sees_this_threads_allocations() {
        let (v, u) = measure(|| Vec::<u8>::with_capacity(1 << 20));
        assert!(
            u.largest_bytes >= 1 << 20 && u.peak_bytes >= 1 << 20,
            "{u:?}"
        );
        let ((), u) = measure(|| drop(v));
        assert_eq!(u.peak_bytes, 0);
        let ((), u) = measure(|| {
            let mut w: Vec<u64> = Vec::new();
            for i in 0..1000 {
                w.push(i);
            }
        });
        assert!((8000..64_000).contains(&u.peak_bytes), "{u:?}");
    }
}
