//! The word-at-a-time bit counting and finding (`bits/scan.rs`) against a bit-by-bit scan.

use super::*;
use crate::cache::cmd::bits::scan::{count_bits, find_bit, popcount};

#[test]
fn word_scans_match_a_bit_by_bit_scan() {
    let mut seed = 1;
    for _ in 0..500 {
        // Long runs of one value, a few other bytes: the jumps over runs are exercised.
        let len = 1 + (rand(&mut seed) % 300) as usize;
        let fill = if rand(&mut seed) % 2 == 0 { 0 } else { 0xFF };
        let v: Vec<u8> = (0..len)
            .map(|_| {
                if rand(&mut seed) % 97 == 0 {
                    rand(&mut seed) as u8
                } else {
                    fill
                }
            })
            .collect();
        let bits = bits_of(&v);
        let n = bits.len() as u64;
        let (mut a, mut b) = (rand(&mut seed) % n, rand(&mut seed) % n);
        if a > b {
            std::mem::swap(&mut a, &mut b);
        }
        let slice = &bits[a as usize..=b as usize];
        assert_eq!(
            count_bits(&v, a, b),
            slice.iter().filter(|x| **x).count() as u64
        );
        for bit in [false, true] {
            let want = slice.iter().position(|x| *x == bit).map(|p| p as u64 + a);
            assert_eq!(find_bit(&v, bit, a, b), want);
        }
    }
    assert_eq!(popcount(&[0xFF; 1001]), 8008);
}
