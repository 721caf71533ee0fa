//! Collection objects: the table of hashes, lists, sets and sorted sets that entries name,
//! small ones moved inline into their entries between commands and back on demand.

use super::{fits_inline, HashObj, Store, WrongType};
use crate::cache::entry::Entry;
use crate::cache::types::Obj;
use crate::limits::COLLECTION_INLINE_BYTES_MAX;

impl Store {
    pub fn hash_obj(&self, e: &Entry) -> Option<&HashObj> {
        match self.obj(e)? {
            Obj::Hash(h) => Some(h),
            _ => None,
        }
    }

    /// The collection object an entry names (an entry [`Store::peek`] or
    /// [`Store::read`] handed out names its collection; one held inline names none).
    pub fn obj(&self, e: &Entry) -> Option<&Obj> {
        if !e.names_object() {
            return None;
        }
        self.objects.get(e.obj_index() as usize)?.as_ref()
    }

    /// The collection object at `index` (from [`Store::obj_index_of`]): lets a command that
    /// reads several keys at once (SINTER, ZUNION ...) hold all their objects together.
    pub fn obj_at(&self, index: u32) -> Option<&Obj> {
        self.objects.get(index as usize)?.as_ref()
    }

    /// Move the collection `key`'s entry holds inline (if it does) into the object table,
    /// so that the entry names it: what every reader and writer of collections expects.
    /// The key is listed for [`Store::settle`]. No write: watchers and blocked clients see
    /// nothing.
    pub(super) fn materialize(&mut self, li: usize, h: u64, key: &[u8]) {
        let Some(e) = self.tables[li].table.find(h, |e| e.key() == key) else {
            return;
        };
        if !e.is_inline() {
            return;
        }
        let Some(obj) = Obj::from_inline(e.kind(), e.value()) else {
            // Only `settle` writes inline forms, from objects: this is a bug, and the
            // entry stays as it is rather than lose the key.
            debug_assert!(false, "an inline collection that does not read back");
            tracing::error!("an inline collection that does not read back");
            return;
        };
        let (kind, expire, access) = (e.kind(), e.expire_ms(), e.access());
        let obj_cost = obj.cost();
        let idx = self.new_obj(obj);
        let named = Entry::object(kind, key, idx, expire, access);
        let Some(e) = self.tables[li].table.find_mut(h, |e| e.key() == key) else {
            return;
        };
        let old = std::mem::replace(e, named);
        self.used_bytes = self.used_bytes + obj_cost + e.cost() - old.cost();
        self.unsettled.push(key.into());
    }

    /// Move the small collections that commands found or made since the last call back
    /// into their entries (each one whose small encoding fits
    /// [`COLLECTION_INLINE_BYTES_MAX`]). Called between commands, never during one: an
    /// object index from [`Store::obj_index_of`] is good until then. No write.
    pub fn settle(&mut self) {
        let mut keys = std::mem::take(&mut self.unsettled);
        let mut buf = std::mem::take(&mut self.inline_buf);
        for key in keys.drain(..) {
            let slot = crate::cache::slot::key_slot(&key) as usize;
            let Some(li) = slot
                .checked_sub(self.first_slot)
                .filter(|&i| i < self.tables.len())
            else {
                continue;
            };
            let h = self.hash_key(&key);
            let Some(e) = self.tables[li].table.find(h, |e| e.key() == &key[..]) else {
                continue;
            };
            let Some(obj) = self.obj(e).filter(|o| fits_inline(o)) else {
                continue;
            };
            buf.clear();
            obj.write_inline(&mut buf);
            let (obj_cost, idx) = (obj.cost(), e.obj_index());
            let inline = Entry::inline(e.kind(), &key, &buf, e.expire_ms(), e.access());
            let Some(e) = self.tables[li].table.find_mut(h, |e| e.key() == &key[..]) else {
                continue;
            };
            let old = std::mem::replace(e, inline);
            self.used_bytes = self.used_bytes + e.cost() - old.cost() - obj_cost;
            if let Some(slot) = self.objects.get_mut(idx as usize) {
                *slot = None;
                self.free_objects.push(idx);
            }
        }
        self.unsettled = keys;
        if buf.capacity() <= COLLECTION_INLINE_BYTES_MAX * 2 {
            self.inline_buf = buf;
        }
        if self.free_objects.len() == self.objects.len() && !self.objects.is_empty() {
            // Only transient objects were held: give their table back.
            self.objects = Vec::new();
            self.free_objects = Vec::new();
        }
    }

    /// Allocate a hash object; returns its index for [`Entry::hash`].
    pub fn new_hash(&mut self) -> u32 {
        self.new_obj(Obj::Hash(HashObj::default()))
    }

    /// Hold `obj`; returns its index for [`Entry::object`]. Its memory is charged when an
    /// entry naming it is put.
    pub fn new_obj(&mut self, obj: Obj) -> u32 {
        match self.free_objects.pop() {
            Some(i) => {
                self.objects[i as usize] = Some(obj);
                i
            }
            None => {
                self.objects.push(Some(obj));
                (self.objects.len() - 1) as u32
            }
        }
    }

    /// The object index of `key`'s collection of `kind`, created empty (as a new key) when
    /// the key is absent. `WrongType` when the key holds another type.
    pub fn obj_for_write(
        &mut self,
        slot: u16,
        key: &[u8],
        kind: u8,
        now_ms: u64,
    ) -> Result<u32, WrongType> {
        match self.peek(slot, key, now_ms) {
            Some(e) if e.kind() == kind => Ok(e.obj_index()),
            Some(_) => Err(WrongType),
            None => {
                let obj = Obj::empty(kind).ok_or(WrongType)?;
                let idx = self.new_obj(obj);
                self.put(slot, Entry::object(kind, key, idx, None, 0), now_ms);
                Ok(idx)
            }
        }
    }

    /// The object index of `key`'s collection of `kind` if it exists: `Ok(None)` when the
    /// key is absent, `WrongType` when it holds another type. Counts no hit or miss.
    pub fn obj_index_of(
        &mut self,
        slot: u16,
        key: &[u8],
        kind: u8,
        now_ms: u64,
    ) -> Result<Option<u32>, WrongType> {
        match self.peek(slot, key, now_ms) {
            None => Ok(None),
            Some(e) if e.kind() == kind => Ok(Some(e.obj_index())),
            Some(_) => Err(WrongType),
        }
    }

    /// Mutate the object at `index` (named by `key`'s entry); `f` returns its result and
    /// whether it changed the object (only a change breaks `key`'s watchers). The memory
    /// charge follows the change. A collection left empty is deleted with its key, as Redis
    /// does.
    pub fn with_obj<R>(
        &mut self,
        slot: u16,
        key: &[u8],
        index: u32,
        f: impl FnOnce(&mut Obj) -> (R, bool),
    ) -> Option<R> {
        let obj = self.objects.get_mut(index as usize)?.as_mut()?;
        let before = obj.cost();
        let (r, changed) = f(obj);
        let after = obj.cost();
        let empty = obj.is_empty();
        self.used_bytes = self.used_bytes + after - before;
        if changed {
            self.touch(key);
        }
        if empty {
            self.remove(slot, key);
        }
        Some(r)
    }

    /// Mutate the hash object of `key`; `f` returns its result and whether it changed the
    /// hash (only a change breaks `key`'s watchers, as in Redis: an HDEL of no field or a
    /// failed HINCRBY does not). The memory charge follows the change.
    pub fn with_hash<R>(
        &mut self,
        key: &[u8],
        index: u32,
        f: impl FnOnce(&mut HashObj) -> (R, bool),
    ) -> Option<R> {
        let Some(Some(Obj::Hash(obj))) = self.objects.get_mut(index as usize) else {
            return None;
        };
        let before = obj.cost();
        let (r, changed) = f(obj);
        let after = obj.cost();
        self.used_bytes = self.used_bytes + after - before;
        if changed {
            self.touch(key);
        }
        Some(r)
    }
}
