//! A provided buffer ring (`IORING_REGISTER_PBUF_RING`) that multishot receives fill.
//!
//! Lifecycle: created once per shard at start-up and registered with the shard's ring; the
//! kernel picks a buffer for each receive completion and reports its id in the CQE flags;
//! the shard reads the bytes, then hands the buffer back with [`BufRing::recycle`]. The ring
//! and buffer memory are freed only after the io_uring they are registered with is dropped
//! (the shard declares the ring before this struct, so it drops first).
//!
//! Memory: `entries * 16` bytes of ring (page-aligned) plus `entries * buf_bytes` of buffers.
//! The ring itself counts against the locked-memory limit on kernels that account it.

use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::io;
use std::sync::atomic::{AtomicU16, Ordering};

use io_uring::types::BufRingEntry;
use io_uring::IoUring;

pub struct BufRing {
    ring: *mut BufRingEntry,
    layout: Layout,
    mask: u16,
    tail: u16,
    /// Buffer memory the kernel writes into; a raw allocation because the kernel, not Rust,
    /// mutates it between `recycle` and the completion that names the buffer.
    bufs: *mut u8,
    bufs_len: usize,
    buf_bytes: usize,
    pub bgid: u16,
}

impl BufRing {
    /// Allocate `entries` (a power of two) buffers of `buf_bytes`, register them as group
    /// `bgid` with `uring`, and hand all of them to the kernel.
    pub fn new(uring: &IoUring, entries: u16, buf_bytes: usize, bgid: u16) -> io::Result<BufRing> {
        assert!(
            entries.is_power_of_two(),
            "buffer ring size must be a power of two"
        );
        let layout =
            Layout::from_size_align(entries as usize * std::mem::size_of::<BufRingEntry>(), 4096)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        // SAFETY: the layout has a non-zero size (entries >= 1) and a valid alignment.
        let ring = unsafe { alloc_zeroed(layout) } as *mut BufRingEntry;
        if ring.is_null() {
            return Err(io::Error::from(io::ErrorKind::OutOfMemory));
        }
        let mut me = BufRing {
            ring,
            layout,
            mask: entries - 1,
            tail: 0,
            bufs: Box::into_raw(vec![0u8; entries as usize * buf_bytes].into_boxed_slice())
                as *mut u8,
            bufs_len: entries as usize * buf_bytes,
            buf_bytes,
            bgid,
        };
        // SAFETY: `ring` points to `entries` zeroed, page-aligned entries that live until
        // `self` drops, which happens after the io_uring is dropped (see module docs).
        unsafe {
            uring
                .submitter()
                .register_buf_ring_with_flags(ring as u64, entries, bgid, 0)?
        };
        for bid in 0..entries {
            me.add(bid);
        }
        me.publish();
        Ok(me)
    }

    fn add(&mut self, bid: u16) {
        let idx = (self.tail & self.mask) as usize;
        // SAFETY: idx < entries; the kernel only reads entries between its head and our
        // published tail, and this slot is past the published tail until `publish`.
        let entry = unsafe { &mut *self.ring.add(idx) };
        entry.set_addr(self.bufs as u64 + (bid as usize * self.buf_bytes) as u64);
        entry.set_len(self.buf_bytes as u32);
        entry.set_bid(bid);
        self.tail = self.tail.wrapping_add(1);
    }

    fn publish(&self) {
        // SAFETY: `ring` is the base of an initialised buffer ring; the tail field overlays
        // the first entry's reserved field, which the kernel reads with acquire semantics.
        let tail = unsafe { &*(BufRingEntry::tail(self.ring) as *const AtomicU16) };
        tail.store(self.tail, Ordering::Release);
    }

    /// The bytes the kernel wrote into buffer `bid` for a completion of `len` bytes.
    pub fn get(&self, bid: u16, len: usize) -> &[u8] {
        let start = (bid & self.mask) as usize * self.buf_bytes;
        // SAFETY: the kernel finished writing this buffer (its completion was observed) and
        // does not touch it again until `recycle` hands it back; start+len stays inside the
        // allocation because bid is masked and len is clamped to one buffer.
        unsafe { std::slice::from_raw_parts(self.bufs.add(start), len.min(self.buf_bytes)) }
    }

    /// Give buffer `bid` back to the kernel.
    pub fn recycle(&mut self, bid: u16) {
        self.add(bid);
        self.publish();
    }
}

impl Drop for BufRing {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout; the io_uring that referenced it has
        // been dropped already (field order in the shard), so the kernel holds no reference.
        unsafe { dealloc(self.ring as *mut u8, self.layout) };
        // SAFETY: `bufs` came from `Box::into_raw` of a boxed slice of `bufs_len` bytes, and
        // the kernel no longer references it (same reason as above).
        drop(unsafe {
            Box::from_raw(std::ptr::slice_from_raw_parts_mut(self.bufs, self.bufs_len))
        });
    }
}
