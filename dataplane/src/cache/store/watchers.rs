//! Who a write concerns: every write `touch`es its key, which breaks WATCHes, lists keys
//! that blocked clients (BLPOP ...) wait on as ready, and marks slots on the move.

use super::Store;
use crate::txn::ConnId;

impl Store {
    /// A write to `key`: its watchers' transactions must fail.
    #[inline]
    pub(super) fn touch(&mut self, key: &[u8]) {
        self.changes += 1;
        if !self.gates.is_empty() {
            crate::cache::migrate::touched(&mut self.gates, key);
        }
        if !self.watches.is_empty() {
            self.watches.touch(key);
        }
        if !self.blocked.is_empty()
            && self.blocked.contains_key(key)
            && !self.ready.iter().any(|k| &k[..] == key)
        {
            self.ready.push(key.into());
        }
    }

    /// A client waits on `key`: a write to it lists it as ready.
    pub fn block_key(&mut self, key: &[u8]) {
        *self.blocked.entry(key.into()).or_insert(0) += 1;
    }

    /// A client stopped waiting on `key`.
    pub fn unblock_key(&mut self, key: &[u8]) {
        if let Some(n) = self.blocked.get_mut(key) {
            *n -= 1;
            if *n == 0 {
                self.blocked.remove(key);
            }
        }
    }

    /// pback2: slot `slot` was handed over (`cache/migrate.rs`): every key of it that
    /// clients wait on is listed as ready, so that its waiters are redirected.
    pub fn ready_slot(&mut self, slot: u16) {
        for k in self.blocked.keys() {
            if crate::cache::slot::key_slot(k) == slot && !self.ready.contains(k) {
                self.ready.push(k.clone());
            }
        }
    }

    /// Were keys that clients wait on written?
    #[inline]
    pub fn has_ready(&self) -> bool {
        !self.ready.is_empty()
    }

    /// The blocked-on keys written since the last call, in the order they were written.
    pub fn take_ready(&mut self, out: &mut Vec<Box<[u8]>>) {
        out.append(&mut self.ready);
    }

    /// Put keys that could not be served yet (a transaction holds them) back on the list.
    pub fn keep_ready(&mut self, key: Box<[u8]>) {
        if !self.ready.contains(&key) {
            self.ready.push(key);
        }
    }

    /// Is `key` present and not expired (without removing it or counting a hit)?
    pub(super) fn is_live(&self, key: &[u8], now_ms: u64) -> bool {
        let slot = crate::cache::slot::key_slot(key) as usize;
        let Some(li) = slot
            .checked_sub(self.first_slot)
            .filter(|&i| i < self.tables.len())
        else {
            return false;
        };
        let h = self.hash_key(key);
        self.tables[li]
            .table
            .find(h, |e| e.key() == key)
            .is_some_and(|e| !e.is_expired(now_ms))
    }

    /// WATCH `key` for `conn`.
    pub fn watch(&mut self, conn: ConnId, key: &[u8], now_ms: u64) {
        let live = self.is_live(key, now_ms);
        self.watches.watch(conn, key, live);
    }

    /// EXEC's check: did anything `conn` watches here change? Forgets its watches.
    pub fn watch_changed(&mut self, conn: ConnId, now_ms: u64) -> bool {
        let mut w = std::mem::take(&mut self.watches);
        let dirty = w.check_and_forget(conn, |k| self.is_live(k, now_ms));
        self.watches = w;
        dirty
    }

    pub fn unwatch(&mut self, conn: ConnId) {
        self.watches.forget(conn);
    }

    /// Connections with watches here (tests).
    pub fn watchers(&self) -> usize {
        self.watches.watchers()
    }
}
