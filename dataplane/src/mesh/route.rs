//! Slot → shard ownership on this node (keys and log partitions both map to slots). Each shard owns one contiguous range of the 16384
//! slots (shard `i` of `n` owns `[i*16384/n, (i+1)*16384/n)`), which keeps SCAN cursors
//! simple: a cursor is a slot, and slots are visited shard by shard.

use crate::cache::slot::SLOTS;

pub struct SlotTable {
    owner: Vec<u16>,
}

impl SlotTable {
    pub fn new(nshards: usize) -> SlotTable {
        let mut owner = vec![0u16; SLOTS];
        for s in 0..nshards {
            for o in &mut owner[Self::range_of(s, nshards)] {
                *o = s as u16;
            }
        }
        SlotTable { owner }
    }

    pub fn range_of(shard: usize, nshards: usize) -> std::ops::Range<usize> {
        shard * SLOTS / nshards..(shard + 1) * SLOTS / nshards
    }

    #[inline]
    pub fn shard(&self, slot: u16) -> usize {
        self.owner[slot as usize & (SLOTS - 1)] as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_cover_every_slot_once() {
        for n in [1, 2, 3, 7, 16, 64] {
            let t = SlotTable::new(n);
            let mut count = vec![0; n];
            for slot in 0..SLOTS {
                let s = t.shard(slot as u16);
                assert!(SlotTable::range_of(s, n).contains(&slot));
                count[s] += 1;
            }
            assert!(count.iter().all(|&c| c >= SLOTS / n));
        }
    }
}
