//! Iteration: KEYS (whole or sliced), SCAN by slot cursor, and a slot's keys for migration.

use super::{glob_match, Store};
use crate::limits::SCAN_EMPTY_SLOTS_MAX;

impl Store {
    /// The keys of one slot (moving it: `cache/migrate.rs`), expired ones too when
    /// `with_expired`.
    pub fn slot_keys(&self, slot: u16, now_ms: u64, with_expired: bool) -> Vec<Box<[u8]>> {
        self.tables[self.local(slot)]
            .table
            .iter()
            .filter(|e| with_expired || !e.is_expired(now_ms))
            .map(|e| e.key().into())
            .collect()
    }

    /// Live keys matching `pattern`, in slot order.
    pub fn keys_matching(&self, pattern: &[u8], now_ms: u64, out: &mut Vec<Vec<u8>>) {
        let all = pattern == b"*";
        for t in &self.tables {
            for e in t.table.iter() {
                if !e.is_expired(now_ms) && (all || glob_match(pattern, e.key(), false)) {
                    out.push(e.key().to_vec());
                }
            }
        }
    }

    /// One slice of a sliced KEYS: `emit` each live key matching `pattern` of this shard's
    /// slot tables from local index `from` on, whole slots until at least `budget` entries were
    /// examined. Returns the index to go on from (`None` after the last slot) and how many
    /// entries it examined (an empty slot counts one).
    pub fn keys_slice(
        &self,
        pattern: &[u8],
        now_ms: u64,
        from: usize,
        budget: usize,
        mut emit: impl FnMut(&[u8]),
    ) -> (Option<usize>, usize) {
        let all = pattern == b"*";
        let mut examined = 0;
        let mut i = from;
        while i < self.tables.len() {
            let t = &self.tables[i].table;
            examined += 1 + t.len();
            for e in t.iter() {
                if !e.is_expired(now_ms) && (all || glob_match(pattern, e.key(), false)) {
                    emit(e.key());
                }
            }
            i += 1;
            if examined >= budget {
                break;
            }
        }
        ((i < self.tables.len()).then_some(i), examined)
    }

    /// SCAN from global slot `cursor`: whole slots until `count` keys or the end of this
    /// shard's range. Returns the next cursor (the next slot, 0 after the last slot).
    pub fn scan(
        &self,
        cursor: usize,
        count: usize,
        pattern: Option<&[u8]>,
        kind: Option<u8>,
        now_ms: u64,
        out: &mut Vec<Vec<u8>>,
    ) -> usize {
        let end = self.first_slot + self.tables.len();
        let mut slot = cursor.max(self.first_slot);
        let mut visited = 0;
        let visit_max = count.saturating_mul(10).max(SCAN_EMPTY_SLOTS_MAX);
        while slot < end {
            let t = &self.tables[slot - self.first_slot];
            visited += 1 + t.table.len();
            for e in t.table.iter() {
                if e.is_expired(now_ms) {
                    continue;
                }
                if kind.is_some_and(|k| k != e.kind()) {
                    continue;
                }
                if pattern.is_some_and(|p| !glob_match(p, e.key(), false)) {
                    continue;
                }
                out.push(e.key().to_vec());
            }
            slot += 1;
            if out.len() >= count || visited >= visit_max {
                break;
            }
        }
        if slot >= crate::cache::slot::SLOTS {
            0
        } else {
            slot
        }
    }
}
