//! Active expiry: a bounded sweep of the slots that hold TTL keys (lazy expiry is in
//! `keys.rs`, where a lookup finds an expired key).

use super::Store;

impl Store {
    /// Active expiry: examine up to `budget` entries in slots that hold TTL keys, starting
    /// where the last call stopped. Returns how many keys expired.
    pub fn active_expire(&mut self, now_ms: u64, budget: usize) -> usize {
        if self.ttl_keys == 0 {
            return 0;
        }
        let n = self.tables.len();
        let mut examined = 0;
        let mut expired = 0;
        let mut visited = 0;
        let mut keys = std::mem::take(&mut self.scratch_keys);
        while examined < budget && visited < n {
            let li = self.expire_cursor % n;
            self.expire_cursor = (self.expire_cursor + 1) % n;
            visited += 1;
            let t = &self.tables[li];
            if t.ttl_keys == 0 {
                continue;
            }
            examined += t.table.len();
            keys.clear();
            keys.extend(
                t.table
                    .iter()
                    .filter(|e| e.is_expired(now_ms))
                    .map(|e| e.key().to_vec()),
            );
            for k in &keys {
                // An expiry is not a write: a watcher that saw the key live finds it gone
                // at EXEC (see `watch_changed`), one that watched it stale sees no change.
                let h = self.hash_key(k);
                if self.remove_inner(li, h, k) {
                    self.stats.expired += 1;
                    expired += 1;
                }
            }
        }
        self.scratch_keys = keys;
        expired
    }
}
