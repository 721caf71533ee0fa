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
//!
//! This file holds the store's state and its helpers; its methods are grouped by concern:
//! `keys.rs` lookups, puts and removes; `objects.rs` the collection objects and their inline
//! form; `watchers.rs` what a write tells WATCH, blocked clients and moving slots;
//! `memory.rs` the limit and eviction; `expire.rs` active expiry; `scan.rs` KEYS and SCAN.

use hashbrown::DefaultHashBuilder;
use hashbrown::HashTable;
use std::hash::BuildHasher;

use super::entry::Entry;
use super::evict::{lfu_pack, LFU_INIT};
pub use super::evict::{xorshift64, Policy};
pub use super::glob::glob_match;
pub use super::types::hash::FIELD_OVERHEAD_BYTES;
pub use super::types::HashObj;
use super::types::{List, Obj, Set, Zset};
use super::watch::Watches;
use crate::limits::COLLECTION_INLINE_BYTES_MAX;

mod expire;
mod keys;
mod memory;
mod objects;
mod scan;
mod watchers;

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
mod tests;
