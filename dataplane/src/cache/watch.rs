//! WATCH on this shard: which connections watch which of its keys, and whether anything
//! they watch has changed since.
//!
//! Redis 7's rules, which the store follows: any write to a watched key (a command, a
//! delete, an eviction, FLUSHALL/FLUSHDB of a key that exists) marks its watchers dirty; a
//! key that was live when watched and has expired by EXEC also counts as changed; a key
//! that was already expired when watched and is merely removed does not.
//!
//! Lifecycle: a connection's watches here are registered by WATCH, and forgotten by the
//! EXEC that checks them, by DISCARD or UNWATCH, or when the connection closes (its shard
//! sends an unwatch). Memory is one entry per watched key and watcher.

use hashbrown::HashMap;

use crate::txn::ConnId;

#[derive(Default)]
struct Watcher {
    /// Each watched key, and whether it was live when watched.
    keys: Vec<(Box<[u8]>, bool)>,
    dirty: bool,
}

#[derive(Default)]
pub struct Watches {
    by_key: HashMap<Box<[u8]>, Vec<ConnId>>,
    by_conn: HashMap<ConnId, Watcher>,
}

impl Watches {
    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    pub fn watch(&mut self, conn: ConnId, key: &[u8], live: bool) {
        let w = self.by_conn.entry(conn).or_default();
        if w.keys.iter().any(|(k, _)| &k[..] == key) {
            return;
        }
        w.keys.push((key.into(), live));
        self.by_key.entry(key.into()).or_default().push(conn);
    }

    /// `key` was written: its watchers' transactions must fail.
    pub fn touch(&mut self, key: &[u8]) {
        if let Some(conns) = self.by_key.get(key) {
            for c in conns {
                if let Some(w) = self.by_conn.get_mut(c) {
                    w.dirty = true;
                }
            }
        }
    }

    /// Every watched key, for FLUSHALL (which touches those that exist).
    pub fn keys(&self) -> Vec<Box<[u8]>> {
        self.by_key.keys().cloned().collect()
    }

    /// Whether anything `conn` watches changed (`live` says whether a key is live now);
    /// its watches are forgotten either way.
    pub fn check_and_forget(&mut self, conn: ConnId, live: impl Fn(&[u8]) -> bool) -> bool {
        let Some(w) = self.by_conn.get(&conn) else {
            return false;
        };
        let dirty = w.dirty || w.keys.iter().any(|(k, was)| *was && !live(k));
        self.forget(conn);
        dirty
    }

    pub fn forget(&mut self, conn: ConnId) {
        let Some(w) = self.by_conn.remove(&conn) else {
            return;
        };
        for (k, _) in w.keys {
            if let Some(conns) = self.by_key.get_mut(&k) {
                conns.retain(|c| *c != conn);
                if conns.is_empty() {
                    self.by_key.remove(&k);
                }
            }
        }
    }

    /// Watchers registered (tests).
    pub fn watchers(&self) -> usize {
        self.by_conn.len()
    }
}
