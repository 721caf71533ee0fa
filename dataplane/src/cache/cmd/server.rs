//! A shard's part of the commands that span the whole keyspace: DBSIZE, FLUSHALL/FLUSHDB,
//! KEYS, RANDOMKEY, SCAN (one shard per call: the cursor is a slot), INFO's figures, and the
//! settings CONFIG SET changes on every shard.

use crate::cache::op::Res;
use crate::cache::store::{Policy, Stats, Store};
use crate::metrics::{CmdStat, ShardMetrics};

/// Figures a shard reports for INFO; the connection's shard sums them.
#[derive(Debug, Clone, Default)]
pub struct ShardInfo {
    pub keys: u64,
    pub expires: u64,
    pub used_bytes: u64,
    pub maxmemory_bytes: u64,
    pub hits: u64,
    pub misses: u64,
    pub expired: u64,
    pub evicted: u64,
    pub changes: u64,
    // Filled in by the shard, not the store ([`ShardInfo::shard_figures`]):
    pub clients: u64,
    pub blocked_clients: u64,
    pub commands: u64,
    pub connections_received: u64,
    pub rejected_connections: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Per command, by its place in the table (INFO commandstats).
    pub by_command: Vec<CmdStat>,
}

impl ShardInfo {
    /// Add another shard's figures.
    pub fn add(&mut self, o: &ShardInfo) {
        // Destructured so that a new field cannot be left out of the sum.
        let ShardInfo {
            keys,
            expires,
            used_bytes,
            maxmemory_bytes,
            hits,
            misses,
            expired,
            evicted,
            changes,
            clients,
            blocked_clients,
            commands,
            connections_received,
            rejected_connections,
            bytes_in,
            bytes_out,
            by_command,
        } = o;
        self.keys += keys;
        self.expires += expires;
        self.used_bytes += used_bytes;
        self.maxmemory_bytes += maxmemory_bytes;
        self.hits += hits;
        self.misses += misses;
        self.expired += expired;
        self.evicted += evicted;
        self.changes += changes;
        self.clients += clients;
        self.blocked_clients += blocked_clients;
        self.commands += commands;
        self.connections_received += connections_received;
        self.rejected_connections += rejected_connections;
        self.bytes_in += bytes_in;
        self.bytes_out += bytes_out;
        if self.by_command.len() < by_command.len() {
            self.by_command.resize(by_command.len(), CmdStat::default());
        }
        for (a, b) in self.by_command.iter_mut().zip(by_command) {
            a.add(b);
        }
    }

    /// The shard's own figures, which the store does not know: `open` connections, and its
    /// counters since the last CONFIG RESETSTAT.
    pub fn shard_figures(&mut self, m: &ShardMetrics, open: u64) {
        let k = m.since_reset();
        self.clients = open;
        self.blocked_clients = m.counters.blocked_clients;
        self.commands = k.commands;
        self.connections_received = k.connections_accepted;
        self.rejected_connections = k.connections_rejected;
        self.bytes_in = k.bytes_in;
        self.bytes_out = k.bytes_out;
        self.by_command.clone_from(&m.commands.by_command);
    }
}

/// A setting CONFIG SET changes on every shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Setting {
    /// This shard's share of --maxmemory.
    Maxmemory(usize),
    Policy(Policy),
    Samples(usize),
    /// A Redis setting kept only to be reported (`config::INERT_SETTINGS[index]`).
    Inert {
        index: usize,
        value: Box<str>,
    },
    /// CONFIG RESETSTAT: the store's statistics start again (the shard's own are reset by
    /// the shard, `ShardMetrics::reset_stats`).
    ResetStats,
}

/// The values CONFIG SET gave the settings of `config::INERT_SETTINGS` (unset ones report
/// their default). Every shard keeps the same values, so any shard answers CONFIG GET.
#[derive(Debug, Clone, Default)]
pub struct InertValues(Vec<Option<Box<str>>>);

impl InertValues {
    pub fn get(&self, index: usize) -> Option<&str> {
        self.0.get(index)?.as_deref()
    }

    fn set(&mut self, index: usize, value: Box<str>) {
        if self.0.len() <= index {
            self.0.resize(index + 1, None);
        }
        self.0[index] = Some(value);
    }
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

/// RANDOMKEY's part: one live key of this shard picked at random (from a random slot
/// onwards, wrapping), and how many keys the shard holds, by which the join weighs shards.
pub fn random_key(store: &Store, seed: u64, now: u64) -> Res {
    let range = store.slot_range();
    if store.keys == 0 || range.is_empty() {
        return Res::RandomKey {
            key: None,
            weight: 0,
        };
    }
    let mut rng = seed | 1;
    let start = range.start + (crate::cache::store::xorshift64(&mut rng) as usize) % range.len();
    let mut found = Vec::new();
    // From the random slot to the end of the range, then from its start: the first slot
    // with live keys gives them.
    for from in [start, range.start] {
        let mut cursor = from;
        while found.is_empty() && cursor >= from && cursor < range.end {
            let next = store.scan(cursor, 1, None, None, now, &mut found);
            if next == 0 || next <= cursor {
                break;
            }
            cursor = next;
        }
        if !found.is_empty() {
            break;
        }
    }
    let pick = (crate::cache::store::xorshift64(&mut rng) as usize) % found.len().max(1);
    Res::RandomKey {
        key: found.into_iter().nth(pick),
        weight: store.keys as u64,
    }
}

pub fn info(store: &Store) -> Res {
    Res::Info(ShardInfo {
        keys: store.keys as u64,
        expires: store.ttl_keys as u64,
        used_bytes: store.used_memory() as u64,
        maxmemory_bytes: store.maxmemory_bytes as u64,
        hits: store.stats.hits,
        misses: store.stats.misses,
        expired: store.stats.expired,
        evicted: store.stats.evicted,
        changes: store.changes,
        ..ShardInfo::default()
    })
}

pub fn configure(store: &mut Store, s: &Setting) -> Res {
    match s {
        Setting::Maxmemory(b) => store.maxmemory_bytes = *b,
        Setting::Policy(p) => store.policy = *p,
        Setting::Samples(n) => store.samples = *n,
        Setting::Inert { index, value } => store.inert.set(*index, value.clone()),
        Setting::ResetStats => store.stats = Stats::default(),
    }
    Res::Done
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::cmd::testing::{run, store};

    #[test]
    fn random_key_finds_a_live_key_from_any_start() {
        let mut s = store();
        assert!(matches!(
            random_key(&s, 1, 0),
            Res::RandomKey {
                key: None,
                weight: 0
            }
        ));
        run(&mut s, 0, "SET foo x");
        run(&mut s, 0, "SET bar y");
        run(&mut s, 0, "SET gone z PX 10");
        let mut seen = std::collections::HashSet::new();
        for seed in 0..200u64 {
            let Res::RandomKey { key, weight } = random_key(&s, seed * 7919, 100) else {
                panic!("not a random key");
            };
            assert_eq!(weight, 3);
            seen.insert(String::from_utf8(key.expect("a key")).unwrap());
        }
        let want: std::collections::HashSet<String> =
            ["foo", "bar"].iter().map(|s| s.to_string()).collect();
        assert_eq!(seen, want);
    }

    #[test]
    fn settings_and_reset() {
        let mut s = store();
        configure(
            &mut s,
            &Setting::Inert {
                index: 3,
                value: "100".into(),
            },
        );
        assert_eq!(s.inert.get(3), Some("100"));
        assert_eq!(s.inert.get(2), None);
        run(&mut s, 0, "GET nope");
        assert_eq!(s.stats.misses, 1);
        configure(&mut s, &Setting::ResetStats);
        assert_eq!(s.stats.misses, 0);
    }
}
