//! A shard's part of the commands that span the whole keyspace: DBSIZE, FLUSHALL/FLUSHDB,
//! KEYS, SCAN (one shard per call: the cursor is a slot), INFO's keyspace figures, and the
//! eviction settings CONFIG SET changes.

use crate::cache::op::Res;
use crate::cache::store::{Policy, Store};

/// Keyspace figures a shard reports for INFO; the connection's shard sums them.
#[derive(Debug, Clone, Copy, Default)]
pub struct ShardInfo {
    pub keys: u64,
    pub expires: u64,
    pub used_bytes: u64,
    pub maxmemory_bytes: u64,
    pub hits: u64,
    pub misses: u64,
    pub expired: u64,
    pub evicted: u64,
    // Filled in by the shard, not the store:
    pub clients: u64,
    pub commands: u64,
    pub connections_received: u64,
    pub rejected_connections: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

crate::metrics::summed!(ShardInfo {
    keys,
    expires,
    used_bytes,
    maxmemory_bytes,
    hits,
    misses,
    expired,
    evicted,
    clients,
    commands,
    connections_received,
    rejected_connections,
    bytes_in,
    bytes_out,
});

/// An eviction setting CONFIG SET changes on every shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setting {
    /// This shard's share of --maxmemory.
    Maxmemory(usize),
    Policy(Policy),
    Samples(usize),
}

pub fn dbsize(store: &Store) -> Res {
    Res::Count(store.keys as i64)
}

pub fn flush(store: &mut Store, now: u64) -> Res {
    store.flush(now);
    Res::Done
}

pub fn keys(store: &Store, pattern: &[u8], now: u64) -> Res {
    let mut out = Vec::new();
    store.keys_matching(pattern, now, &mut out);
    Res::Keys(out)
}

pub fn scan(
    store: &Store,
    cursor: usize,
    count: usize,
    pattern: Option<&[u8]>,
    kind: Option<u8>,
    now: u64,
) -> Res {
    let mut keys = Vec::new();
    let next = store.scan(cursor, count, pattern, kind, now, &mut keys);
    Res::Scan { next, keys }
}

pub fn info(store: &Store) -> Res {
    Res::Info(ShardInfo {
        keys: store.keys as u64,
        expires: store.ttl_keys as u64,
        used_bytes: store.used_bytes as u64,
        maxmemory_bytes: store.maxmemory_bytes as u64,
        hits: store.stats.hits,
        misses: store.stats.misses,
        expired: store.stats.expired,
        evicted: store.stats.evicted,
        ..ShardInfo::default()
    })
}

pub fn configure(store: &mut Store, s: Setting) -> Res {
    match s {
        Setting::Maxmemory(b) => store.maxmemory_bytes = b,
        Setting::Policy(p) => store.policy = p,
        Setting::Samples(n) => store.samples = n,
    }
    Res::Done
}
