//! Bit scanning over a string's bytes, a 64-bit big-endian word at a time (bit 0 the most
//! significant bit of the first byte): population counts over a byte span (BITCOUNT) and
//! the first set or clear bit in one (BITPOS).

/// The 8 bytes of `v` from byte `at` as a big-endian word (bit 0 the most significant),
/// zero-padded past the end.
#[inline]
fn word_at(v: &[u8], at: usize) -> u64 {
    if let Some(w) = v.get(at..at + 8) {
        return u64::from_be_bytes(w.try_into().unwrap_or_default());
    }
    let mut w = [0u8; 8];
    if let Some(tail) = v.get(at..) {
        let n = tail.len().min(8);
        w[..n].copy_from_slice(&tail[..n]);
    }
    u64::from_be_bytes(w)
}

/// Bytes BITPOS jumps at once over a run of the value it does not look for.
const SKIP_BYTES: usize = 32;

/// Set bits in `v`, a word at a time.
pub(super) fn popcount(v: &[u8]) -> u64 {
    let words = v.chunks_exact(8);
    let tail: u64 = words
        .remainder()
        .iter()
        .map(|b| u64::from(b.count_ones()))
        .sum();
    words
        .map(|w| u64::from(word_at(w, 0).count_ones()))
        .sum::<u64>()
        + tail
}

/// Set bits among bits `from ..= to` of `v` (both inside it).
pub(super) fn count_bits(v: &[u8], from: u64, to: u64) -> u64 {
    let (first, last) = ((from >> 3) as usize, (to >> 3) as usize);
    let Some(bytes) = v.get(first..=last) else {
        return 0;
    };
    let mut n = popcount(bytes);
    // Take away the bits of the edge bytes that lie outside the range.
    let before = (0xFFu32 >> (from & 7)) as u8;
    let after = (0xFFu32 >> ((to & 7) + 1)) as u8;
    n -= u64::from((bytes[0] & !before).count_ones());
    n -= u64::from((bytes[bytes.len() - 1] & after).count_ones());
    n
}

/// The first bit equal to `bit` among bits `from ..= to` of `v` (both inside it), a word
/// at a time; runs of bytes that hold only the other value are jumped [`SKIP_BYTES`] at a
/// time.
pub(super) fn find_bit(v: &[u8], bit: bool, from: u64, to: u64) -> Option<u64> {
    let other = if bit { 0u8 } else { 0xFF };
    let last_byte = (to >> 3) as usize;
    let mut at = from & !63;
    while at <= to {
        if at >= from {
            // Only bytes wholly inside the range, before the last one, are jumped.
            let mut b = (at >> 3) as usize;
            while b + SKIP_BYTES <= last_byte {
                let Some(run) = v.get(b..b + SKIP_BYTES) else {
                    break;
                };
                // No early exit inside the run, so that it compiles to vector operations.
                if run.iter().fold(0, |acc, &x| acc | (x ^ other)) != 0 {
                    break;
                }
                b += SKIP_BYTES;
            }
            at = (b as u64) << 3;
        }
        let mut w = word_at(v, (at >> 3) as usize);
        if !bit {
            w = !w;
        }
        if at < from {
            w &= u64::MAX >> (from - at);
        }
        if to - at < 63 {
            w &= u64::MAX << (63 - (to - at));
        }
        if w != 0 {
            return Some(at + u64::from(w.leading_zeros()));
        }
        at += 64;
    }
    None
}
