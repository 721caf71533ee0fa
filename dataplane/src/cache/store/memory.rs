//! The memory limit: `used_memory`, whether a write is refused, and eviction by sampling
//! keys under the configured policy.

use super::{Policy, Store};
use crate::cache::evict::lfu_decayed;

impl Store {
    /// Over the memory limit?
    pub fn over_limit(&self) -> bool {
        self.maxmemory_bytes > 0 && self.used_memory() > self.maxmemory_bytes
    }

    /// INFO's `used_memory` for this shard: the data and the store's fixed structures.
    pub fn used_memory(&self) -> usize {
        self.used_bytes + self.fixed_bytes
    }

    /// Would a write that may grow memory be refused now (over the limit, and nothing may be
    /// evicted)?
    pub fn refuses_writes(&self) -> bool {
        self.over_limit() && (self.policy == Policy::Noeviction || self.keys == 0)
    }

    /// Before a write that may grow memory: evict until under the limit. Returns false if the
    /// write must be refused (`noeviction`, or nothing left to evict).
    pub fn make_room(&mut self, now_ms: u64) -> bool {
        while self.over_limit() {
            if self.policy == Policy::Noeviction || self.keys == 0 {
                return false;
            }
            self.evict_one(now_ms);
        }
        true
    }

    /// Sample `samples` keys and evict the best victim for the policy.
    fn evict_one(&mut self, now_ms: u64) {
        let mut best: Option<(u64, usize, Vec<u8>)> = None;
        for _ in 0..self.samples.max(1) {
            if self.nonempty.is_empty() {
                break;
            }
            let r = self.next_rand();
            let li = self.nonempty[(r % self.nonempty.len() as u64) as usize] as usize;
            let pick_r = self.next_rand();
            let t = &self.tables[li].table;
            let pick = (pick_r % t.len() as u64) as usize;
            let Some(e) = t.iter().nth(pick) else {
                continue;
            };
            // Higher score = better victim.
            let score = match self.policy {
                Policy::Lfu => 255 - lfu_decayed(e.access(), now_ms) as u64,
                _ => self.clock.wrapping_sub(e.access()) as u64,
            };
            if best.as_ref().is_none_or(|b| score > b.0) {
                best = Some((score, li, e.key().to_vec()));
            }
        }
        if let Some((_, li, key)) = best {
            let slot = (self.first_slot + li) as u16;
            if self.remove(slot, &key) {
                self.stats.evicted += 1;
            }
        }
    }
}
