//! The keyspace core: looking a key up (read, peek, get), putting, replacing, editing and
//! removing entries, with the key and TTL counts and the memory charge kept right.

use std::hash::BuildHasher;

use super::{fits_inline, Found, SlotTable, Store, NOT_LISTED};
use crate::cache::entry::Entry;
use crate::cache::evict::{touch, Policy};
use crate::cache::types::Obj;

impl Store {
    /// Look a key up for reading: an expired key is removed, hits and misses counted, the
    /// access stamp refreshed. The key is hashed once; the second probe (to hand out the
    /// reference) hits the bucket the first one just touched.
    pub fn read(&mut self, slot: u16, key: &[u8], now_ms: u64) -> Found<'_> {
        let li = self.local(slot);
        let h = self.hash_key(key);
        let expired = match self.tables[li].table.find_mut(h, |e| e.key() == key) {
            None => {
                self.stats.misses += 1;
                return Found::Missing;
            }
            Some(e) if e.is_expired(now_ms) => true,
            Some(e) => {
                let stamp = touch(
                    self.policy,
                    &mut self.clock,
                    &mut self.rng,
                    e.access(),
                    now_ms,
                );
                e.set_access(stamp);
                false
            }
        };
        if expired {
            self.remove_inner(li, h, key);
            self.stats.expired += 1;
            self.stats.misses += 1;
            return Found::Missing;
        }
        self.stats.hits += 1;
        match self.tables[li].table.find(h, |e| e.key() == key) {
            // A read leaves an inline collection where it is: it is decoded into the
            // store's one read view, good until the next read.
            Some(e) if e.is_inline() => {
                self.view = Obj::from_inline(e.kind(), e.value());
                Found::of(self.view.as_ref())
            }
            Some(e) if e.is_object() => Found::of(self.obj_at(e.obj_index())),
            Some(e) => Found::Str(e.value()),
            None => Found::Missing,
        }
    }

    /// Look a key up without counting a hit or miss (for writes and metadata). An expired
    /// key is removed first.
    pub fn peek(&mut self, slot: u16, key: &[u8], now_ms: u64) -> Option<&Entry> {
        let li = self.local(slot);
        let h = self.hash_key(key);
        let expired = self.tables[li]
            .table
            .find(h, |e| e.key() == key)?
            .is_expired(now_ms);
        if expired {
            self.remove_inner(li, h, key);
            self.stats.expired += 1;
            return None;
        }
        self.materialize(li, h, key);
        self.tables[li].table.find(h, |e| e.key() == key)
    }

    /// Look a key up without side effects (no expiry, no hit count, no access stamp): for
    /// a caller that already removed it if expired (with [`Store::peek`]).
    pub fn get(&self, slot: u16, key: &[u8]) -> Option<&Entry> {
        let li = self.local(slot);
        self.tables[li]
            .table
            .find(self.hash_key(key), |e| e.key() == key)
    }

    /// Insert or replace the entry for its key. A replaced hash value is freed. An existing
    /// key is replaced in place: one probe, no key copy.
    pub fn put(&mut self, slot: u16, mut entry: Entry, now_ms: u64) {
        self.touch(entry.key());
        let li = self.local(slot);
        let h = self.hash_key(entry.key());
        let stamp = self.fresh_access(now_ms);
        let new_ttl = entry.expire_ms().is_some();
        let obj = self.obj(&entry);
        let new_cost = entry.cost() + obj.map_or(0, Obj::cost);
        if obj.is_some_and(fits_inline) {
            self.unsettled.push(entry.key().into());
        }
        if let Some(old) = self.tables[li]
            .table
            .find_mut(h, |e| e.key() == entry.key())
        {
            // FIFO keeps the original insertion stamp on overwrite; the others restart it.
            entry.set_access(if self.policy == Policy::Fifo {
                old.access()
            } else {
                stamp
            });
            let old = std::mem::replace(old, entry);
            self.count_ttl_change(li, old.expire_ms().is_some(), new_ttl);
            self.used_bytes = self.used_bytes + new_cost - self.entry_cost(&old);
            self.free_obj(&old);
            return;
        }
        entry.set_access(stamp);
        self.used_bytes += new_cost;
        self.keys += 1;
        if new_ttl {
            self.ttl_keys += 1;
            self.tables[li].ttl_keys += 1;
        }
        let hasher = &self.hasher;
        self.tables[li]
            .table
            .insert_unique(h, entry, |e| hasher.hash_one(e.key()));
        self.list_slot(li);
    }

    /// Replace an existing entry's bytes (new value or expiry) without touching hash objects
    /// or the access stamp. Returns false if the key is absent.
    pub fn replace(&mut self, slot: u16, entry: Entry) -> bool {
        self.touch(entry.key());
        let li = self.local(slot);
        let h = self.hash_key(entry.key());
        let Some(old) = self.tables[li]
            .table
            .find_mut(h, |e| e.key() == entry.key())
        else {
            return false;
        };
        let access = old.access();
        let old_cost = old.cost();
        let old_ttl = old.expire_ms().is_some();
        let new_ttl = entry.expire_ms().is_some();
        let new_cost = entry.cost();
        *old = entry;
        old.set_access(access);
        self.used_bytes = self.used_bytes + new_cost - old_cost;
        self.count_ttl_change(li, old_ttl, new_ttl);
        true
    }

    /// Edit `key`'s string value in place (SETBIT, SETRANGE, BITFIELD): it is first
    /// lengthened with zero bytes to at least `len`, then handed to `f`, which returns its
    /// result and whether it changed a byte. A change or a growth breaks the key's
    /// watchers; the memory charge follows the growth. The access stamp is kept (as
    /// [`Store::replace`] keeps it). None, and `f` is not called, when the key is absent
    /// (or expired) or holds no string.
    pub fn edit_str<R>(
        &mut self,
        slot: u16,
        key: &[u8],
        len: usize,
        now_ms: u64,
        f: impl FnOnce(&mut [u8]) -> (R, bool),
    ) -> Option<R> {
        let li = self.local(slot);
        let h = self.hash_key(key);
        let e = self.tables[li].table.find_mut(h, |e| e.key() == key)?;
        if e.is_object() {
            return None;
        }
        if e.is_expired(now_ms) {
            self.remove_inner(li, h, key);
            self.stats.expired += 1;
            return None;
        }
        let before = e.cost();
        e.grow_value(len);
        let grown = e.cost() - before;
        let (r, changed) = f(e.value_mut());
        self.used_bytes += grown;
        if changed || grown > 0 {
            self.touch(key);
        }
        Some(r)
    }

    /// Keep the TTL counts right when an entry in local slot `li` is replaced.
    fn count_ttl_change(&mut self, li: usize, had_ttl: bool, has_ttl: bool) {
        match (had_ttl, has_ttl) {
            (false, true) => {
                self.ttl_keys += 1;
                self.tables[li].ttl_keys += 1;
            }
            (true, false) => {
                self.ttl_keys -= 1;
                self.tables[li].ttl_keys -= 1;
            }
            _ => {}
        }
    }

    /// Delete a key (a write: its watchers see it); true when it existed. Frees its hash
    /// value.
    pub fn remove(&mut self, slot: u16, key: &[u8]) -> bool {
        let li = self.local(slot);
        let h = self.hash_key(key);
        let removed = self.remove_inner(li, h, key);
        if removed {
            self.touch(key);
        }
        removed
    }

    pub(super) fn remove_inner(&mut self, li: usize, h: u64, key: &[u8]) -> bool {
        let Ok(found) = self.tables[li].table.find_entry(h, |e| e.key() == key) else {
            return false;
        };
        let (e, _) = found.remove();
        let cost = self.entry_cost(&e);
        self.used_bytes -= cost;
        self.keys -= 1;
        if e.expire_ms().is_some() {
            self.ttl_keys -= 1;
            self.tables[li].ttl_keys -= 1;
        }
        self.free_obj(&e);
        if self.tables[li].table.is_empty() {
            self.unlist_slot(li);
            // Give a slot's memory back when it empties.
            self.tables[li].table.shrink_to(0, |_| 0);
        }
        true
    }

    /// Drop every key (a write to every watched key that exists).
    pub fn flush(&mut self, now_ms: u64) {
        if !self.watches.is_empty() {
            for k in self.watches.keys() {
                if self.is_live(&k, now_ms) {
                    self.watches.touch(&k);
                }
            }
        }
        // Freed later, a slot's table at a time (`lazy_free.rs`), not inside the command.
        let full: Vec<SlotTable> = (self.nonempty.iter())
            .map(|&li| std::mem::take(&mut self.tables[li as usize]))
            .collect();
        self.lazy_free.defer(full);
        self.lazy_free.defer(std::mem::take(&mut self.objects));
        self.nonempty.clear();
        self.nonempty_pos.iter_mut().for_each(|p| *p = NOT_LISTED);
        self.objects.clear();
        self.free_objects.clear();
        self.unsettled.clear();
        self.used_bytes = 0;
        self.keys = 0;
        self.ttl_keys = 0;
    }
}
