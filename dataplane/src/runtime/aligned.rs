//! A growable byte buffer whose memory starts on a 4 KiB boundary, for `O_DIRECT` writes
//! (the kernel wants the user buffer, the file offset and the length all aligned to the
//! device's logical block size; 4 KiB covers every block size we meet).

use std::alloc::{self, Layout};
use std::ptr::NonNull;

impl AsRef<[u8]> for AlignedBuf {
    fn as_ref(&self) -> &[u8] {
        self.as_slice()
    }
}

/// Alignment of buffer, offset and length for direct I/O.
pub const ALIGN: usize = 4096;

pub struct AlignedBuf {
    ptr: NonNull<u8>,
    len: usize,
    cap: usize,
}

// SAFETY: AlignedBuf owns its allocation exclusively, like Vec<u8>.
unsafe impl Send for AlignedBuf {}

impl Default for AlignedBuf {
    fn default() -> Self {
        AlignedBuf {
            ptr: NonNull::dangling(),
            len: 0,
            cap: 0,
        }
    }
}

impl AlignedBuf {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn clear(&mut self) {
        self.len = 0;
    }

    pub fn as_ptr(&self) -> *const u8 {
        self.ptr.as_ptr()
    }

    pub fn as_mut_ptr(&mut self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    pub fn capacity(&self) -> usize {
        self.cap
    }

    /// Declare the first `len` bytes initialised.
    ///
    /// # Safety
    /// `len` is at most the capacity and something (the kernel, for a completed read)
    /// has written those bytes.
    pub unsafe fn set_len(&mut self, len: usize) {
        debug_assert!(len <= self.cap);
        self.len = len;
    }

    pub fn as_slice(&self) -> &[u8] {
        if self.cap == 0 {
            return &[];
        }
        // SAFETY: the first `len` bytes of the allocation are initialised (every growth
        // path writes them) and the allocation lives as long as `self`.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    /// Make room for `extra` more bytes.
    pub fn reserve(&mut self, extra: usize) {
        let need = self.len.checked_add(extra).expect("buffer size overflow");
        if need <= self.cap {
            return;
        }
        let cap = need.max(self.cap * 2).next_multiple_of(ALIGN);
        let layout = Layout::from_size_align(cap, ALIGN).expect("aligned layout");
        // SAFETY: layout has a non-zero size (need > cap >= 0 and cap is rounded up to ALIGN).
        let new = unsafe { alloc::alloc(layout) };
        let Some(new) = NonNull::new(new) else {
            alloc::handle_alloc_error(layout);
        };
        if self.cap > 0 {
            // SAFETY: both regions are valid for `len` bytes and do not overlap (fresh
            // allocation); the old one is freed with the layout it was made with.
            unsafe {
                std::ptr::copy_nonoverlapping(self.ptr.as_ptr(), new.as_ptr(), self.len);
                alloc::dealloc(
                    self.ptr.as_ptr(),
                    Layout::from_size_align_unchecked(self.cap, ALIGN),
                );
            }
        }
        self.ptr = new;
        self.cap = cap;
    }

    pub fn extend_from_slice(&mut self, b: &[u8]) {
        self.reserve(b.len());
        // SAFETY: reserve made room for b.len() bytes past len; b cannot overlap our
        // allocation (we hand out no mutable access to it while b is borrowed).
        unsafe {
            std::ptr::copy_nonoverlapping(b.as_ptr(), self.ptr.as_ptr().add(self.len), b.len());
        }
        self.len += b.len();
    }

    /// Append zero bytes up to the next multiple of [`ALIGN`].
    pub fn pad_to_align(&mut self) {
        let target = self.len.next_multiple_of(ALIGN);
        let extra = target - self.len;
        self.reserve(extra);
        // SAFETY: reserve made room for `extra` bytes past len.
        unsafe { std::ptr::write_bytes(self.ptr.as_ptr().add(self.len), 0, extra) };
        self.len = target;
    }

    /// Mutable view of the initialised bytes.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        if self.cap == 0 {
            return &mut [];
        }
        // SAFETY: as in as_slice, and `&mut self` makes the access exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        if self.cap > 0 {
            // SAFETY: allocated in reserve with exactly this size and alignment.
            unsafe {
                alloc::dealloc(
                    self.ptr.as_ptr(),
                    Layout::from_size_align_unchecked(self.cap, ALIGN),
                )
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_keeps_contents_and_alignment() {
        let mut b = AlignedBuf::default();
        assert!(b.is_empty() && b.as_slice().is_empty());
        b.extend_from_slice(b"hello");
        assert_eq!(b.as_ptr() as usize % ALIGN, 0);
        let big = vec![7u8; 3 * ALIGN + 5];
        b.extend_from_slice(&big);
        assert_eq!(b.as_ptr() as usize % ALIGN, 0);
        assert_eq!(&b.as_slice()[..5], b"hello");
        assert_eq!(b.len(), 5 + big.len());
        b.pad_to_align();
        assert_eq!(b.len(), 4 * ALIGN);
        assert!(b.as_slice()[5 + big.len()..].iter().all(|&x| x == 0));
        b.clear();
        b.pad_to_align();
        assert_eq!(b.len(), 0, "an empty buffer is already aligned");
    }
}
