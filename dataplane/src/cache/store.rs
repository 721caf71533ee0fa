//! A shard's keyspace: one hash table per owned slot, memory accounting, TTLs, eviction.
//!
//! Owned by exactly one shard; never shared. The shard owns a contiguous range of slots, so
//! a SCAN cursor (a slot number) walks shards in order and each slot is returned whole, which
//! gives SCAN's guarantee (every key present for the whole scan is returned) without a
//! rehash-proof cursor.
//!
//! Collections (hashes, lists, sets, sorted sets) live in `objects`, indexed by the `u32` the
//! key's entry holds; a freed index is reused. A collection in its small encoding lives
//! inside its entry instead (`Entry::inline`), as a string does: it costs no object slot
//! and no heap block of its own. Whoever reads or writes it finds it in `objects` all the
//! same: [`Store::peek`] moves an inline collection into the table (materialize), and
//! [`Store::settle`], which the shard calls between commands, moves the small ones back;
//! [`Store::read`] only decodes it into a read view, leaving the entry as it is. An object index is therefore good for one command, never longer.
//!
//! Invariants, checked by `check()` in tests: `keys` is the sum of table lengths, `ttl_keys`
//! of the per-slot TTL counts, `used_bytes` of entry and hash costs, and `nonempty` lists
//! exactly the slots with keys.

use hashbrown::DefaultHashBuilder;
use hashbrown::HashTable;
use std::hash::BuildHasher;

use super::entry::Entry;
use super::evict::{lfu_decayed, lfu_pack, touch, LFU_INIT};
pub use super::evict::{xorshift64, Policy};
pub use super::glob::glob_match;
pub use super::types::hash::FIELD_OVERHEAD_BYTES;
pub use super::types::HashObj;
use super::types::{List, Obj, Set, Zset};
use super::watch::Watches;
use crate::limits::{COLLECTION_INLINE_BYTES_MAX, SCAN_EMPTY_SLOTS_MAX};
use crate::txn::ConnId;

#[derive(Debug, Default, Clone, Copy)]
pub struct Stats {
    pub hits: u64,
    pub misses: u64,
    pub expired: u64,
    pub evicted: u64,
}

#[derive(Default)]
struct SlotTable {
    table: HashTable<Entry>,
    ttl_keys: u32,
}

pub struct Store {
    first_slot: usize,
    tables: Vec<SlotTable>,
    /// Local indexes of slots that hold keys, for O(1) random sampling.
    nonempty: Vec<u32>,
    nonempty_pos: Vec<u32>,
    objects: Vec<Option<Obj>>,
    free_objects: Vec<u32>,
    /// Keys whose collection sits in `objects` although it may fit its entry: materialized
    /// or created since the last [`Store::settle`].
    unsettled: Vec<Box<[u8]>>,
    /// Where [`Store::settle`] writes an inline form.
    inline_buf: Vec<u8>,
    /// The inline collection [`Store::read`] last handed out, decoded.
    view: Option<Obj>,
    hasher: DefaultHashBuilder,
    /// Bytes of the stored data: entries, collection objects and their bookkeeping.
    pub used_bytes: usize,
    /// Bytes of the store's own fixed structures (a table head and a list position per
    /// owned slot), allocated at start whatever is stored: part of `used_memory`, as
    /// Redis's start-up memory is part of its own.
    pub fixed_bytes: usize,
    pub keys: usize,
    pub ttl_keys: usize,
    /// 0 means no limit.
    pub maxmemory_bytes: usize,
    pub policy: Policy,
    pub samples: usize,
    /// Logical clock: bumped per access (LRU) or per insert (FIFO).
    clock: u32,
    rng: u64,
    expire_cursor: usize,
    pub stats: Stats,
    scratch_keys: Vec<Vec<u8>>,
    /// WATCHed keys of this shard and their watchers.
    watches: Watches,
    /// Writes since start (INFO's rdb_changes_since_last_save: nothing is saved, so this
    /// counts every write that changed a key).
    pub changes: u64,
    /// Keys that blocked clients wait on (BLPOP ...), with how many wait on each.
    blocked: hashbrown::HashMap<Box<[u8]>, u32>,
    /// Blocked-on keys written since the shard last served its waiters, each once.
    ready: Vec<Box<[u8]>>,
    /// What flushes dropped, freed a few items per loop turn (`cache/lazy_free.rs`).
    pub lazy_free: super::lazy_free::LazyFree,
    /// Redis settings CONFIG SET stored without effect (`config::INERT_SETTINGS`).
    pub inert: super::cmd::server::InertValues,
    /// Slots of this shard on the move (`cache/migrate.rs`); empty when nothing moves.
    pub gates: hashbrown::HashMap<u16, super::migrate::Gate>,
}

const NOT_LISTED: u32 = u32::MAX;

/// Does `obj` have an inline form small enough to live in its entry?
fn fits_inline(obj: &Obj) -> bool {
    obj.inline_len()
        .is_some_and(|n| n <= COLLECTION_INLINE_BYTES_MAX)
}

/// What a read found.
pub enum Found<'a> {
    Missing,
    Str(&'a [u8]),
    Hash(&'a HashObj),
    List(&'a List),
    Set(&'a Set),
    Zset(&'a Zset),
}

impl<'a> Found<'a> {
    /// A collection found, or nothing.
    fn of(obj: Option<&'a Obj>) -> Found<'a> {
        match obj {
            Some(Obj::Hash(o)) => Found::Hash(o),
            Some(Obj::List(o)) => Found::List(o),
            Some(Obj::Set(o)) => Found::Set(o),
            Some(Obj::Zset(o)) => Found::Zset(o),
            None => Found::Missing,
        }
    }
}

/// A key holds a value of another type than the command works on (`WRONGTYPE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WrongType;

impl Store {
    /// A store owning slots `first_slot .. first_slot + count`.
    pub fn new(first_slot: usize, count: usize, seed: u64) -> Store {
        let mut tables = Vec::with_capacity(count);
        tables.resize_with(count, SlotTable::default);
        let fixed_bytes = count * (std::mem::size_of::<SlotTable>() + std::mem::size_of::<u32>());
        Store {
            first_slot,
            tables,
            nonempty: Vec::new(),
            nonempty_pos: vec![NOT_LISTED; count],
            objects: Vec::new(),
            free_objects: Vec::new(),
            unsettled: Vec::new(),
            inline_buf: Vec::new(),
            view: None,
            hasher: DefaultHashBuilder::default(),
            used_bytes: 0,
            fixed_bytes,
            keys: 0,
            ttl_keys: 0,
            maxmemory_bytes: 0,
            policy: Policy::Noeviction,
            samples: 5,
            clock: 0,
            rng: seed | 1,
            expire_cursor: 0,
            stats: Stats::default(),
            scratch_keys: Vec::new(),
            watches: Watches::default(),
            changes: 0,
            blocked: hashbrown::HashMap::new(),
            ready: Vec::new(),
            lazy_free: Default::default(),
            inert: Default::default(),
            gates: hashbrown::HashMap::new(),
        }
    }

    pub fn slot_range(&self) -> std::ops::Range<usize> {
        self.first_slot..self.first_slot + self.tables.len()
    }

    #[inline]
    fn local(&self, slot: u16) -> usize {
        let i = slot as usize - self.first_slot;
        debug_assert!(i < self.tables.len(), "slot {slot} not owned");
        i
    }

    #[inline]
    fn hash_key(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key)
    }

    /// The shard's random stream (eviction sampling; SPOP, SRANDMEMBER ...).
    pub fn next_rand(&mut self) -> u64 {
        xorshift64(&mut self.rng)
    }

    fn fresh_access(&mut self, now_ms: u64) -> u32 {
        match self.policy {
            Policy::Lfu => lfu_pack(LFU_INIT, now_ms),
            _ => {
                self.clock = self.clock.wrapping_add(1);
                self.clock
            }
        }
    }

    fn list_slot(&mut self, li: usize) {
        if self.nonempty_pos[li] == NOT_LISTED {
            self.nonempty_pos[li] = self.nonempty.len() as u32;
            self.nonempty.push(li as u32);
        }
    }

    fn unlist_slot(&mut self, li: usize) {
        let pos = self.nonempty_pos[li];
        if pos == NOT_LISTED {
            return;
        }
        let last = self.nonempty.len() - 1;
        self.nonempty.swap(pos as usize, last);
        let moved = self.nonempty[pos as usize] as usize;
        self.nonempty_pos[moved] = pos;
        self.nonempty.pop();
        self.nonempty_pos[li] = NOT_LISTED;
    }

    fn entry_cost(&self, e: &Entry) -> usize {
        let mut c = e.cost();
        if let Some(o) = self.obj(e) {
            c += o.cost();
        }
        c
    }

    /// Free the object an entry names (when it names one).
    fn free_obj(&mut self, e: &Entry) {
        if !e.names_object() {
            return;
        }
        let idx = e.obj_index() as usize;
        if let Some(slot) = self.objects.get_mut(idx) {
            if slot.take().is_some() {
                self.free_objects.push(idx as u32);
            }
        }
    }

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

    /// A write to `key`: its watchers' transactions must fail.
    #[inline]
    fn touch(&mut self, key: &[u8]) {
        self.changes += 1;
        if !self.gates.is_empty() {
            super::migrate::touched(&mut self.gates, key);
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
            if super::slot::key_slot(k) == slot && !self.ready.contains(k) {
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
    fn is_live(&self, key: &[u8], now_ms: u64) -> bool {
        let slot = super::slot::key_slot(key) as usize;
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

    fn remove_inner(&mut self, li: usize, h: u64, key: &[u8]) -> bool {
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

    /// Move the collection `key`'s entry holds inline (if it does) into the object table,
    /// so that the entry names it: what every reader and writer of collections expects.
    /// The key is listed for [`Store::settle`]. No write: watchers and blocked clients see
    /// nothing.
    fn materialize(&mut self, li: usize, h: u64, key: &[u8]) {
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
            let slot = super::slot::key_slot(&key) as usize;
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
        if slot >= super::slot::SLOTS {
            0
        } else {
            slot
        }
    }

    /// Check the accounting invariants (tests and debug builds).
    pub fn check(&self) {
        let keys: usize = self.tables.iter().map(|t| t.table.len()).sum();
        assert_eq!(keys, self.keys, "key count");
        let ttl: usize = self.tables.iter().map(|t| t.ttl_keys as usize).sum();
        assert_eq!(ttl, self.ttl_keys, "ttl count");
        let ttl_real = self
            .tables
            .iter()
            .flat_map(|t| t.table.iter())
            .filter(|e| e.expire_ms().is_some())
            .count();
        assert_eq!(ttl_real, self.ttl_keys, "ttl entries");
        let used: usize = self
            .tables
            .iter()
            .flat_map(|t| t.table.iter())
            .map(|e| self.entry_cost(e))
            .sum();
        assert_eq!(used, self.used_bytes, "used bytes");
        let listed = self.tables.iter().filter(|t| !t.table.is_empty()).count();
        assert_eq!(listed, self.nonempty.len(), "nonempty list");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::slot::key_slot;

    fn store() -> Store {
        Store::new(0, super::super::slot::SLOTS, 42)
    }

    #[test]
    fn put_read_remove_keep_the_books() {
        let mut s = store();
        for i in 0..1000 {
            let k = format!("key:{i}");
            let ttl = if i % 3 == 0 { Some(10_000) } else { None };
            s.put(
                key_slot(k.as_bytes()),
                Entry::string(k.as_bytes(), b"v", ttl, 0),
                0,
            );
        }
        s.check();
        assert_eq!(s.keys, 1000);
        assert_eq!(s.ttl_keys, 334);
        // Overwrite keeps counts right.
        s.put(
            key_slot(b"key:0"),
            Entry::string(b"key:0", b"longer value", None, 0),
            0,
        );
        s.check();
        assert_eq!(s.ttl_keys, 333);
        assert!(
            matches!(s.read(key_slot(b"key:0"), b"key:0", 0), Found::Str(v) if v == b"longer value")
        );
        assert!(s.remove(key_slot(b"key:1"), b"key:1"));
        assert!(!s.remove(key_slot(b"key:1"), b"key:1"));
        s.check();
        let before = s.used_bytes;
        s.flush(0);
        assert!(before > 0);
        assert_eq!((s.keys, s.used_bytes), (0, 0));
        s.check();
    }

    #[test]
    fn small_collections_live_inline_between_commands() {
        use crate::cache::entry::KIND_SET;
        let mut s = store();
        let (key, slot) = (&b"small"[..], key_slot(b"small"));
        let idx = s.obj_for_write(slot, key, KIND_SET, 0).unwrap();
        s.with_obj(slot, key, idx, |o| {
            let Obj::Set(set) = o else { unreachable!() };
            for m in [&b"1"[..], b"20", b"300"] {
                set.insert(m);
            }
            ((), true)
        });
        s.check();
        let (changes, used) = (s.changes, s.used_bytes);
        s.settle();
        s.check();
        let e = s.get(slot, key).unwrap();
        assert!(e.is_inline(), "a 3-member set lives in its entry");
        assert!(s.objects.is_empty(), "and holds no object slot");
        assert!(s.used_bytes < used, "which costs less");
        // A reader finds the object as before, and nothing counts as a write.
        let idx = s.obj_index_of(slot, key, KIND_SET, 0).unwrap().unwrap();
        assert!(matches!(s.obj_at(idx), Some(Obj::Set(set)) if set.len() == 3));
        s.check();
        s.settle();
        assert_eq!(s.changes, changes);
        assert!(s.get(slot, key).unwrap().is_inline());
        // A read decodes it without touching the entry.
        assert!(matches!(s.read(slot, key, 0), Found::Set(set) if set.len() == 3));
        assert!(s.get(slot, key).unwrap().is_inline() && s.objects.is_empty());
        s.check();
        // A collection too large for its entry keeps its slot.
        let idx = s.obj_index_of(slot, key, KIND_SET, 0).unwrap().unwrap();
        s.with_obj(slot, key, idx, |o| {
            let Obj::Set(set) = o else { unreachable!() };
            for i in 0..COLLECTION_INLINE_BYTES_MAX {
                set.insert(format!("member:{i}").as_bytes());
            }
            ((), true)
        });
        s.settle();
        s.check();
        assert!(s.get(slot, key).unwrap().names_object());
    }

    #[test]
    fn lazy_and_active_expiry() {
        let mut s = store();
        for i in 0..100 {
            let k = format!("t{i}");
            s.put(
                key_slot(k.as_bytes()),
                Entry::string(k.as_bytes(), b"v", Some(100), 0),
                0,
            );
        }
        assert!(matches!(s.read(key_slot(b"t1"), b"t1", 50), Found::Str(_)));
        assert!(matches!(
            s.read(key_slot(b"t1"), b"t1", 100),
            Found::Missing
        ));
        assert_eq!(s.stats.expired, 1);
        let mut total = 0;
        for _ in 0..100 {
            total += s.active_expire(200, 10_000);
        }
        assert_eq!(total, 99);
        assert_eq!(s.keys, 0);
        s.check();
    }

    #[test]
    fn lru_evicts_cold_keys_first() {
        let mut s = store();
        s.policy = Policy::Lru;
        s.samples = 10;
        for i in 0..200 {
            let k = format!("k{i}");
            s.put(
                key_slot(k.as_bytes()),
                Entry::string(k.as_bytes(), &[0; 32], None, 0),
                0,
            );
        }
        // Touch the second half so the first half is the cold one.
        for i in 100..200 {
            let k = format!("k{i}");
            let _ = s.read(key_slot(k.as_bytes()), k.as_bytes(), 0);
        }
        s.maxmemory_bytes = s.fixed_bytes + s.used_bytes / 2;
        assert!(s.make_room(0));
        s.check();
        let hot_left = (100..200).filter(|i| {
            let k = format!("k{i}");
            s.peek(key_slot(k.as_bytes()), k.as_bytes(), 0).is_some()
        });
        assert!(
            hot_left.count() >= 90,
            "hot keys should survive LRU eviction"
        );
        s.policy = Policy::Noeviction;
        s.maxmemory_bytes = 1;
        assert!(!s.make_room(0));
    }

    #[test]
    fn scan_visits_every_key_once() {
        let mut s = Store::new(0, 8192, 1);
        let mut want = std::collections::BTreeSet::new();
        for i in 0..5000 {
            let k = format!("s{i}");
            let slot = key_slot(k.as_bytes());
            if (slot as usize) < 8192 {
                s.put(slot, Entry::string(k.as_bytes(), b"v", None, 0), 0);
                want.insert(k.into_bytes());
            }
        }
        let mut got = Vec::new();
        let mut cursor = 0;
        loop {
            let mut out = Vec::new();
            cursor = s.scan(cursor, 10, None, None, 0, &mut out);
            got.extend(out);
            if cursor == 0 || cursor >= 8192 {
                break;
            }
        }
        assert_eq!(got.len(), want.len());
        assert_eq!(
            got.into_iter().collect::<std::collections::BTreeSet<_>>(),
            want
        );
    }
}
